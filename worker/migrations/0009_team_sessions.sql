-- The team domain as the sign-in hub: an app session handed off by the team domain names the
-- team session it came from, so that a logout on the team domain ends every app session it gave.

ALTER TABLE sessions ADD COLUMN parent_nonce TEXT;  -- the team session's `identity_nonce`

CREATE INDEX sessions_by_parent ON sessions (parent_nonce);

-- Users SCIM deleted, by folded email (userName and work email): with `user_deprovision`,
-- their Entra bearer tokens are refused until SCIM provisions them again (a disabled user is
-- found in scim_users with active = 0).

CREATE TABLE scim_deprovisioned (
  email_key  TEXT PRIMARY KEY,
  deleted_ms INTEGER NOT NULL
);

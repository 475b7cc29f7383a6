-- Sign-in states (single use, short-lived, bound to the browser) and sessions (revocable).

CREATE TABLE login_states (
  state        TEXT PRIMARY KEY,   -- random, sent to Entra and back
  binding_hash TEXT NOT NULL,      -- SHA-256 of the browser's EA_Login cookie
  nonce        TEXT NOT NULL,      -- must come back in the ID token
  verifier     TEXT,               -- PKCE code verifier (S256), when enabled
  idp_id       TEXT NOT NULL,
  redirect     TEXT NOT NULL,      -- a path on the same host
  created_ms   INTEGER NOT NULL
);

CREATE TABLE sessions (
  identity_nonce TEXT PRIMARY KEY, -- the application token's `identity_nonce`
  user_id        TEXT,             -- Entra oid
  email          TEXT,
  identity       TEXT NOT NULL,    -- the identity JSON (groups included) kept server-side
  app_id         TEXT NOT NULL,
  created_ms     INTEGER NOT NULL,
  expires_ms     INTEGER NOT NULL,
  revoked_ms     INTEGER           -- set by logout, deprovisioning or group changes
);

CREATE INDEX sessions_by_user ON sessions (user_id);

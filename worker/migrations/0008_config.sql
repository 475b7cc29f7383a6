-- The configuration stored in the gateway: immutable versions (who wrote each, when, why),
-- one active pointer, and every activation (for rollback and the audit trail). Written only
-- through the management API under /cdn-cgi/access/api/, which validates a document before it
-- stores it; isolates read `config_active` at most every CONFIG_REFRESH_SECONDS.

CREATE TABLE config_versions (
  version      INTEGER PRIMARY KEY AUTOINCREMENT,
  document     TEXT NOT NULL,      -- the JSON text as written
  sha256       TEXT NOT NULL,      -- hex SHA-256 of `document`
  author       TEXT NOT NULL,      -- the admin token's name
  comment      TEXT NOT NULL,
  created_ms   INTEGER NOT NULL,
  base_version INTEGER NOT NULL,   -- the active version it was written against (0: none)
  write_id     TEXT NOT NULL UNIQUE
);

CREATE TABLE config_active (
  id           INTEGER PRIMARY KEY CHECK (id = 1),
  version      INTEGER NOT NULL,
  activated_ms INTEGER NOT NULL,
  activated_by TEXT NOT NULL
);

CREATE TABLE config_activations (
  id           INTEGER PRIMARY KEY AUTOINCREMENT,
  version      INTEGER NOT NULL,   -- activated
  previous     INTEGER NOT NULL,   -- active before (0: none stored)
  action       TEXT NOT NULL,      -- put, activate, rollback
  activated_ms INTEGER NOT NULL,
  activated_by TEXT NOT NULL,
  write_id     TEXT NOT NULL UNIQUE
);

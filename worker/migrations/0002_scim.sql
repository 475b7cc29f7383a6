-- The directory Entra (or another SCIM client) provisions at /cdn-cgi/access/scim/v2.
--
-- Resources are kept as sent (JSON, without `id` and `meta`, which are rendered from the
-- columns); the columns hold what filters, uniqueness and the gateway look up. Keys ending
-- in `_key` are ASCII-lowercased, the same folding as SQLite's NOCASE and lower().

CREATE TABLE scim_users (
  id             TEXT PRIMARY KEY,          -- server-assigned GUID
  user_name_key  TEXT NOT NULL UNIQUE,      -- userName, folded: unique without case
  external_id    TEXT,                      -- as sent (case-exact)
  work_email_key TEXT,                      -- emails[type eq "work"].value, folded
  display_name_key TEXT,
  active         INTEGER NOT NULL,          -- 0 or 1
  resource       TEXT NOT NULL,             -- the User as sent, without id and meta
  version        INTEGER NOT NULL,          -- bumped by every write (optimistic concurrency)
  created_ms     INTEGER NOT NULL,
  modified_ms    INTEGER NOT NULL
);
CREATE INDEX scim_users_by_external_id ON scim_users (external_id);
CREATE INDEX scim_users_by_work_email ON scim_users (work_email_key);

CREATE TABLE scim_groups (
  id               TEXT PRIMARY KEY,        -- server-assigned GUID
  display_name_key TEXT NOT NULL UNIQUE,    -- displayName, folded: unique without case
  external_id      TEXT,
  policy_id        TEXT NOT NULL,           -- the id policies name: externalId when it is a GUID
                                            -- (Entra's object id), else id
  resource         TEXT NOT NULL,           -- the Group as sent, without id, meta and members
  version          INTEGER NOT NULL,
  created_ms       INTEGER NOT NULL,
  modified_ms      INTEGER NOT NULL
);
CREATE INDEX scim_groups_by_external_id ON scim_groups (external_id);
CREATE INDEX scim_groups_by_policy_id ON scim_groups (policy_id);

-- Direct memberships; a member is a user or a group (nesting).
CREATE TABLE scim_members (
  group_id    TEXT NOT NULL,
  member_id   TEXT NOT NULL,
  member_kind TEXT NOT NULL CHECK (member_kind IN ('User', 'Group')),
  PRIMARY KEY (group_id, member_id)
);
CREATE INDEX scim_members_by_member ON scim_members (member_id);

-- Counters: `directory` changes whenever something the policy engine compiles in changes
-- (group names, policy ids, group-in-group memberships), so gateways know to rebuild.
CREATE TABLE scim_state (
  name  TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
INSERT INTO scim_state (name, value) VALUES ('directory', 0);

-- A write whose resource changed since it was read inserts NULL here, which fails the NOT
-- NULL constraint and rolls back the whole batch: no update is lost to a concurrent one.
CREATE TABLE scim_write_guard (
  must_not_be_null INTEGER NOT NULL
);

-- Deprovisioning and group changes find a user's sessions by email.
CREATE INDEX sessions_by_email ON sessions (email COLLATE NOCASE);

-- Users a write touches, by email key, recorded inside the write's batch (and emptied at its
-- end): `revoke` 1 ends their sessions, 0 recomputes their stored groups (`automatic`).
CREATE TABLE scim_affected (
  email_key TEXT PRIMARY KEY,
  revoke    INTEGER NOT NULL
);

-- Policies name groups by policy id: two groups with one id would merge in every rule.
CREATE UNIQUE INDEX scim_groups_unique_policy_id ON scim_groups (policy_id);

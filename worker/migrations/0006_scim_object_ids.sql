-- Users are keyed by Entra's immutable object id — the `oid` of their tokens — instead of an
-- email address: Entra sends it as the SCIM `externalId` when the provisioning app maps
-- `objectId` there. With `user_deprovision`, a user who is active must be bound so
-- (the SCIM endpoint refuses an active user whose externalId is not a GUID).

-- externalId as a lowercase GUID, or NULL when it is not one (Entra's default mapping,
-- mailNickname). One SCIM user per object id.
ALTER TABLE scim_users ADD COLUMN oid TEXT;
UPDATE scim_users SET oid = lower(external_id)
  WHERE external_id GLOB '[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]-[0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F][0-9a-fA-F]'
  AND NOT EXISTS (SELECT 1 FROM scim_users o WHERE lower(o.external_id) = lower(scim_users.external_id)
                    AND (o.created_ms < scim_users.created_ms
                         OR (o.created_ms = scim_users.created_ms AND o.id < scim_users.id)));
CREATE UNIQUE INDEX scim_users_by_oid ON scim_users (oid);

-- Users SCIM deleted, by object id: with `user_deprovision`, their Entra bearer tokens are
-- refused until SCIM provisions them again. (`scim_deprovisioned` keeps the addresses of
-- deleted users that had no object id: those still refuse identities SCIM cannot key.)
CREATE TABLE scim_deleted_oids (
  oid        TEXT PRIMARY KEY,
  deleted_ms INTEGER NOT NULL
);

-- The users a write touches, by object id (emptied at the end of every write's batch).
DROP TABLE scim_affected;
CREATE TABLE scim_affected (
  oid    TEXT PRIMARY KEY,
  revoke INTEGER NOT NULL
);

-- Revocations find a user's sessions by object id, without case.
CREATE INDEX sessions_by_user_nocase ON sessions (user_id COLLATE NOCASE);

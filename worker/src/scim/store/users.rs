//! `scim_users`, and the users SCIM deleted (`scim_deleted_oids`, `scim_deprovisioned`):
//! reads, writes, and why SCIM refuses an identity.

use std::time::Duration;

use edge_access_scim::{apply, fold, PatchRequest, ResourceKind, ScimError, UserRecord};
use serde::Deserialize;
use serde_json::{Map, Value};
use worker::{D1Database, D1PreparedStatement};

use super::batch::{retry, Attempt};
use super::effects::{Effects, Touched};
use super::query::{list_params, projection, where_clause};
use super::render::{list_response, Meta};
use super::{new_id, not_found, stored_text, Failure, Store};
use crate::d1::{self, Binds, Param};
use crate::time::UnixMillis;

/// How long a deleted user stays refused: longer than any Entra token or session lives,
/// short enough that a reused address is not refused for ever.
pub const DELETED_FOR: Duration = Duration::from_secs(7 * 24 * 3600);

/// The columns of a user row.
const COLUMNS: &str = "id, user_name_key, work_email_key, oid, active, resource, version, \
                       created_ms, modified_ms";

#[derive(Deserialize)]
pub(super) struct UserRow {
    pub(super) id: String,
    user_name_key: String,
    work_email_key: Option<String>,
    /// The object id the user is bound to.
    #[serde(default)]
    pub(super) oid: Option<String>,
    active: f64,
    resource: String,
    version: f64,
    created_ms: f64,
    modified_ms: f64,
    /// `COUNT(*) OVER ()` in list pages.
    #[serde(default)]
    total: f64,
}

impl UserRow {
    fn meta(&self) -> Meta {
        Meta {
            created: d1::millis(self.created_ms),
            modified: d1::millis(self.modified_ms),
            version: d1::int(self.version),
        }
    }

    /// The user as it is served and patched (see [`UserRecord::normalised`]).
    fn resource(&self) -> Result<Map<String, Value>, Failure> {
        let resource: Map<String, Value> = serde_json::from_str(&self.resource)
            .map_err(|e| Failure::Internal(format!("stored user `{}`: {e}", self.id)))?;
        Ok(UserRecord::normalised(resource))
    }

    /// The folded addresses the user is known by.
    pub(super) fn keys(&self) -> Vec<String> {
        std::iter::once(self.user_name_key.clone())
            .chain(self.work_email_key.clone())
            .collect()
    }
}

impl Store<'_> {
    async fn user_row(&self, id: &str) -> Result<Option<UserRow>, Failure> {
        let mut binds = Binds::default();
        let id = binds.text(&fold(id));
        Ok(self
            .statement(
                &format!("SELECT {COLUMNS} FROM scim_users WHERE id = {id}"),
                &binds,
            )?
            .first(None)
            .await?)
    }

    fn render_user(&self, row: &UserRow) -> Result<Value, Failure> {
        Ok(self.render(ResourceKind::User, &row.id, row.resource()?, row.meta()))
    }

    pub async fn get_user(&self, id: &str, query: &[(String, String)]) -> Result<Value, Failure> {
        let projection = projection(query)?;
        let row = self
            .user_row(id)
            .await?
            .ok_or_else(|| not_found(ResourceKind::User, id))?;
        Ok(projection.apply(self.render_user(&row)?))
    }

    pub async fn list_users(&self, query: &[(String, String)]) -> Result<Value, Failure> {
        let projection = projection(query)?;
        let (conditions, page) = list_params(query, ResourceKind::User)?;
        let mut binds = Binds::default();
        let clause = where_clause(&conditions, ResourceKind::User, &mut binds);
        let rows: Vec<UserRow> = self
            .page(
                &format!("SELECT {COLUMNS}, COUNT(*) OVER () AS total FROM scim_users"),
                &clause,
                "created_ms, id",
                &binds,
                page,
            )
            .await?;
        let total = match rows.first() {
            Some(row) => d1::int(row.total),
            None => self.count("scim_users", &clause, &binds, page).await?,
        };
        let resources = rows
            .iter()
            .map(|row| self.render_user(row).map(|r| projection.apply(r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_response(total, page.start_index, resources))
    }

    /// With `user_deprovision`, an active user must be bound to an object id.
    fn check_bound(&self, record: &UserRecord) -> Result<(), ScimError> {
        if self.settings.config.user_deprovision {
            record.check_bound()?;
        }
        Ok(())
    }

    pub async fn create_user(&self, body: &Value) -> Result<(Value, String), Failure> {
        let record = UserRecord::from_body(body)?;
        self.check_bound(&record)?;
        // A taken userName or object id fails the insert (UNIQUE), answered 409.
        let id = new_id()?;
        let mut binds = Binds::default();
        let (id_at, name, external, oid, email, display, active, resource, now) = (
            binds.text(&id),
            binds.text(&record.user_name_key),
            binds.opt(record.external_id.as_deref()),
            binds.opt(record.object_id.as_deref()),
            binds.opt(record.work_email_key.as_deref()),
            binds.opt(record.display_name_key.as_deref()),
            binds.flag(record.active),
            binds.text(&stored_text(&record.resource)?),
            binds.millis(self.now),
        );
        let insert = self.statement(
            &format!(
                "INSERT INTO scim_users (id, user_name_key, external_id, oid, work_email_key, \
                 display_name_key, active, resource, version, created_ms, modified_ms) \
                 VALUES ({id_at}, {name}, {external}, {oid}, {email}, {display}, {active}, \
                 {resource}, 1, {now}, {now})"
            ),
            &binds,
        )?;
        let batch = self.around(
            None,
            Effects::default(),
            vec![insert, self.undelete(&record)?],
        )?;
        self.submit(&id, batch)
            .await
            .map_err(|e| Failure::from(super::batch::classify(e)))?;
        let meta = Meta {
            created: self.now,
            modified: self.now,
            version: 1,
        };
        let rendered = self.render(ResourceKind::User, &id, record.resource, meta);
        Ok((rendered, self.location(ResourceKind::User, &id)))
    }

    pub async fn replace_user(&self, id: &str, body: &Value) -> Result<Value, Failure> {
        self.write_user(id, |stored| UserRecord::replacing(body, stored))
            .await
    }

    pub async fn patch_user(&self, id: &str, body: &Value) -> Result<Value, Failure> {
        let patch = PatchRequest::parse(body)?;
        self.write_user(id, |stored| {
            let mut resource = stored.clone();
            apply(&mut resource, &patch)?;
            UserRecord::from_resource(resource)
        })
        .await
    }

    /// Reads the user, computes its new record with `change`, writes it guarded by the
    /// version read, with the effects on sessions; retried when the version moved.
    async fn write_user(
        &self,
        id: &str,
        change: impl Fn(&Map<String, Value>) -> Result<UserRecord, ScimError>,
    ) -> Result<Value, Failure> {
        retry(async || {
            let row = self
                .user_row(id)
                .await?
                .ok_or_else(|| not_found(ResourceKind::User, id))?;
            let record = change(&row.resource()?)?;
            self.check_bound(&record)?;
            if record.user_name_key != row.user_name_key {
                self.name_free(ResourceKind::User, &record.user_name_key, &row.id)
                    .await?;
            }
            let mut effects = Effects::default();
            let was_active = d1::int(row.active) == 1;
            if self.settings.config.user_deprovision && was_active && !record.active {
                self.deprovision(&mut effects, &row)?;
            }
            let read_version = d1::int(row.version);
            let version = read_version + 1;
            let mut write = Vec::new();
            if record.active {
                write.push(self.undelete(&record)?);
            }
            let mut binds = Binds::default();
            let (id_at, name, external, email, display, active, resource, version_at, now, oid) = (
                binds.text(&row.id),
                binds.text(&record.user_name_key),
                binds.opt(record.external_id.as_deref()),
                binds.opt(record.work_email_key.as_deref()),
                binds.opt(record.display_name_key.as_deref()),
                binds.flag(record.active),
                binds.text(&stored_text(&record.resource)?),
                binds.number(version),
                binds.millis(self.now),
                binds.opt(record.object_id.as_deref()),
            );
            write.push(self.statement(
                &format!(
                    "UPDATE scim_users SET user_name_key = {name}, external_id = {external}, \
                     work_email_key = {email}, display_name_key = {display}, active = {active}, \
                     resource = {resource}, version = {version_at}, modified_ms = {now}, \
                     oid = {oid} WHERE id = {id_at}"
                ),
                &binds,
            )?);
            let guard = self.version_guard(&row.id, read_version)?;
            let batch = self.around(Some(guard), effects, write)?;
            Ok(match Attempt::of(self.submit(&row.id, batch).await)? {
                Attempt::Again => Attempt::Again,
                Attempt::Done(()) => {
                    let meta = Meta {
                        created: d1::millis(row.created_ms),
                        modified: self.now,
                        version,
                    };
                    Attempt::Done(self.render(ResourceKind::User, &row.id, record.resource, meta))
                }
            })
        })
        .await
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), Failure> {
        retry(async || {
            let row = self
                .user_row(id)
                .await?
                .ok_or_else(|| not_found(ResourceKind::User, id))?;
            let mut effects = Effects::default();
            if self.settings.config.user_deprovision {
                self.deprovision(&mut effects, &row)?;
            }
            // Leaving every group is a membership change too.
            self.touch(
                &mut effects,
                Touched::Members(std::slice::from_ref(&row.id)),
                true,
            )?;
            let mut binds = Binds::default();
            let id_at = binds.text(&row.id);
            let write = vec![
                self.statement(
                    &format!("DELETE FROM scim_members WHERE member_id = {id_at}"),
                    &binds,
                )?,
                self.statement(
                    &format!("DELETE FROM scim_users WHERE id = {id_at}"),
                    &binds,
                )?,
                self.remember_deleted(&row)?,
            ];
            let guard = self.version_guard(&row.id, d1::int(row.version))?;
            let batch = self.around(Some(guard), effects, write)?;
            Attempt::of(self.submit(&row.id, batch).await)
        })
        .await
    }

    /// Fails the batch when user `id` no longer has `version`.
    fn version_guard(&self, id: &str, version: u64) -> Result<D1PreparedStatement, Failure> {
        let mut binds = Binds::default();
        let (id, version) = (binds.text(id), binds.number(version));
        self.statement(
            &format!(
                "INSERT INTO scim_write_guard (must_not_be_null) SELECT NULL WHERE NOT EXISTS \
                 (SELECT 1 FROM scim_users WHERE id = {id} AND version = {version})"
            ),
            &binds,
        )
    }

    /// Remembers a deleted user, so that the gateway refuses their bearer tokens for
    /// [`DELETED_FOR`]: by object id, or by addresses for a user that had none.
    fn remember_deleted(&self, row: &UserRow) -> Result<D1PreparedStatement, Failure> {
        let mut binds = Binds::default();
        match &row.oid {
            Some(oid) => {
                let (oid, now) = (binds.text(oid), binds.millis(self.now));
                self.statement(
                    &format!(
                        "INSERT OR REPLACE INTO scim_deleted_oids (oid, deleted_ms) \
                         VALUES ({oid}, {now})"
                    ),
                    &binds,
                )
            }
            None => {
                let (keys, now) = (binds.json_list(&row.keys()), binds.millis(self.now));
                self.statement(
                    &format!(
                        "INSERT OR REPLACE INTO scim_deprovisioned (email_key, deleted_ms) \
                         SELECT value, {now} FROM json_each({keys})"
                    ),
                    &binds,
                )
            }
        }
    }

    /// Forgets that `record`'s user was deleted (provisioned again): its object id, and its
    /// addresses for a user that had none.
    fn undelete(&self, record: &UserRecord) -> Result<D1PreparedStatement, Failure> {
        let mut binds = Binds::default();
        match &record.object_id {
            Some(oid) => {
                let oid = binds.text(oid);
                self.statement(
                    &format!("DELETE FROM scim_deleted_oids WHERE oid = {oid}"),
                    &binds,
                )
            }
            None => {
                let keys: Vec<String> = std::iter::once(record.user_name_key.clone())
                    .chain(record.work_email_key.clone())
                    .collect();
                let keys = binds.json_list(&keys);
                self.statement(
                    &format!(
                        "DELETE FROM scim_deprovisioned WHERE email_key IN \
                         (SELECT value FROM json_each({keys}))"
                    ),
                    &binds,
                )
            }
        }
    }
}

/// SQL for why SCIM refuses the identity with object id `oid` (lowercase) and `email`
/// (lowercase, or NULL), each a placeholder the caller binds, with `since` the cut-off for
/// deletions: `'disabled'`, `'deleted'` (after `since`), `'unbound'`, or NULL for none. The
/// object id decides for a user SCIM has bound to it; only when SCIM binds no user to it do
/// addresses count, and only to refuse: a user stored without an object id (disabled, or
/// from before `user_deprovision` required one) with the identity's address cannot be told
/// apart from it.
pub fn refusal(oid: Param, email: Param, since: Param) -> String {
    format!(
        "(CASE \
           WHEN EXISTS (SELECT 1 FROM scim_users WHERE oid = {oid} AND active = 0) THEN 'disabled' \
           WHEN EXISTS (SELECT 1 FROM scim_users WHERE oid = {oid}) THEN NULL \
           WHEN EXISTS (SELECT 1 FROM scim_deleted_oids \
                        WHERE oid = {oid} AND deleted_ms > {since}) THEN 'deleted' \
           WHEN EXISTS (SELECT 1 FROM scim_users WHERE oid IS NULL \
                        AND (user_name_key = {email} OR work_email_key = {email})) THEN 'unbound' \
           WHEN EXISTS (SELECT 1 FROM scim_deprovisioned \
                        WHERE email_key = {email} AND deleted_ms > {since}) THEN 'deleted' \
         END)"
    )
}

/// [`refusal`] for a statement whose values the caller numbers itself: `oid`, `email` and
/// `since` are the 1-based positions they are bound at.
pub fn refusal_sql(oid: usize, email: usize, since: usize) -> String {
    refusal(Param::at(oid), Param::at(email), Param::at(since))
}

/// Why SCIM refuses the identity with object id `oid` and `email` (see [`refusal`]): with
/// `user_deprovision`, the gateway then refuses their Entra bearer tokens, which it cannot
/// revoke.
///
/// # Errors
///
/// When D1 fails.
pub async fn deprovisioned(
    db: &D1Database,
    oid: &str,
    email: Option<&str>,
    now: UnixMillis,
) -> Result<Option<String>, worker::Error> {
    #[derive(Deserialize)]
    struct Why {
        why: Option<String>,
    }
    let mut binds = Binds::default();
    let oid = binds.text(&fold(oid));
    let email = binds.opt(email.map(fold).as_deref());
    let since = binds.millis(now.saturating_sub(DELETED_FOR));
    let why: Option<Why> = binds
        .prepare(db, &format!("SELECT {} AS why", refusal(oid, email, since)))?
        .first(None)
        .await?;
    Ok(why.and_then(|w| w.why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_deleted_user_is_refused_for_a_week() {
        assert_eq!(DELETED_FOR.as_millis(), 604_800_000);
    }

    #[test]
    fn the_refusal_names_its_placeholders() {
        let sql = refusal_sql(8, 9, 10);
        assert!(sql.contains("oid = ?8 AND active = 0"));
        assert!(sql.contains("user_name_key = ?9 OR work_email_key = ?9"));
        assert!(sql.contains("deleted_ms > ?10"));
        assert!(!sql.contains("?1 ") && !sql.contains("?2"));
    }
}

//! The `sessions` table: one row per signed-in session, keyed by the application token's
//! `identity_nonce`, holding the identity as [`StoredIdentity`] JSON. This module owns its
//! statements: the insert at sign-in ([`insert`], guarded by SCIM's refusal in the same
//! statement), the gateway's look-up and logout ([`crate::session`]) and what SCIM
//! provisioning does to sessions ([`crate::scim`]).
//!
//! SCIM's statements reach into the stored identity with SQLite's JSON functions, at
//! [`IDP_ID`] and [`GROUPS`]: the paths of [`StoredIdentity`]'s fields, pinned by a test.

use policy_core::{Email, GroupId, Identity};
use serde::{Deserialize, Serialize};
use worker::{D1Database, D1PreparedStatement};

use crate::d1::{self, Binds};
use crate::time::UnixMillis;

/// Where [`StoredIdentity::idp_id`] is in the stored JSON.
pub const IDP_ID: &str = "$.idp_id";

/// Where [`StoredIdentity::groups`] is in the stored JSON.
pub const GROUPS: &str = "$.groups";

/// A live session's row.
#[derive(Debug)]
pub struct Row {
    /// [`StoredIdentity`] as JSON.
    pub identity: String,
    pub created: UnixMillis,
}

/// The session with `identity_nonce`, unless revoked or expired at `now`.
///
/// # Errors
///
/// When D1 fails.
pub async fn live(
    db: &D1Database,
    identity_nonce: &str,
    now: UnixMillis,
) -> Result<Option<Row>, worker::Error> {
    #[derive(Deserialize)]
    struct Stored {
        identity: String,
        created_ms: f64,
    }
    let mut binds = Binds::default();
    let nonce = binds.text(identity_nonce);
    let now = binds.millis(now);
    let row: Option<Stored> = binds
        .prepare(
            db,
            &format!(
                "SELECT identity, created_ms FROM sessions WHERE identity_nonce = {nonce} \
                 AND revoked_ms IS NULL AND expires_ms > {now}"
            ),
        )?
        .first(None)
        .await?;
    Ok(row.map(|r| Row {
        identity: r.identity,
        created: d1::millis(r.created_ms),
    }))
}

/// A session to store at sign-in.
pub struct NewSession<'a> {
    /// The application token's `identity_nonce`: the row's key.
    pub identity_nonce: &'a str,
    pub identity: &'a StoredIdentity,
    /// The app signed in to.
    pub app_id: &'a str,
    /// When the user signed in with the identity provider (for a session handed off by the
    /// team domain, the team session's sign-in).
    pub created: UnixMillis,
    pub expires: UnixMillis,
    /// The team session an app session was handed off from: ending it ends this one.
    pub parent: Option<&'a str>,
    /// With `user_deprovision`: no row for a user SCIM refuses.
    pub guard: Option<Guard<'a>>,
}

/// SCIM's say on the user, decided in the insert itself, so a deprovisioning that lands
/// mid-sign-in cannot be missed.
pub struct Guard<'a> {
    /// The user's object id.
    pub oid: &'a str,
    /// The user's address, lowercased.
    pub email: Option<&'a str>,
    /// Deletions since then still refuse.
    pub deleted_since: UnixMillis,
    /// SQL that is NULL unless SCIM refuses the user, given the positions of `oid`, `email`
    /// and `deleted_since` (`scim::refusal_sql`).
    pub refusal: fn(usize, usize, usize) -> String,
}

/// Stores `session`; `false` when its guard refused it (nothing stored).
///
/// # Errors
///
/// When D1 fails, or the identity does not serialize.
pub async fn insert(db: &D1Database, session: &NewSession<'_>) -> Result<bool, worker::Error> {
    let identity = serde_json::to_string(session.identity)
        .map_err(|e| worker::Error::RustError(format!("stored identity: {e}")))?;
    let mut binds = Binds::default();
    let nonce = binds.text(session.identity_nonce);
    let user = binds.opt(session.identity.user_id.as_deref());
    let email = binds.opt(session.identity.email.as_deref());
    let identity = binds.text(&identity);
    let app = binds.text(session.app_id);
    let created = binds.millis(session.created);
    let expires = binds.millis(session.expires);
    let parent = binds.opt(session.parent);
    let condition = match &session.guard {
        Some(guard) => {
            let oid = binds.text(guard.oid);
            let email = binds.opt(guard.email);
            let since = binds.millis(guard.deleted_since);
            let refusal = (guard.refusal)(oid.position(), email.position(), since.position());
            format!("WHERE {refusal} IS NULL")
        }
        None => String::new(),
    };
    let inserted = binds
        .prepare(
            db,
            &format!(
                "INSERT INTO sessions (identity_nonce, user_id, email, identity, app_id, \
                 created_ms, expires_ms, parent_nonce) SELECT {nonce}, {user}, {email}, \
                 {identity}, {app}, {created}, {expires}, {parent} {condition}"
            ),
        )?
        .run()
        .await?;
    let changes = inserted.meta().ok().flatten().and_then(|m| m.changes);
    Ok(changes != Some(0))
}

/// Revokes the session with `identity_nonce` (and the app sessions handed off from it, when it
/// is a team session) and, with `user`, every session of that user.
///
/// # Errors
///
/// When D1 fails.
pub async fn revoke(
    db: &D1Database,
    identity_nonce: &str,
    user: Option<&str>,
    now: UnixMillis,
) -> Result<(), worker::Error> {
    let mut binds = Binds::default();
    let now = binds.millis(now);
    let nonce = binds.text(identity_nonce);
    let sql = match user {
        Some(user) => {
            let user = binds.text(user);
            format!(
                "UPDATE sessions SET revoked_ms = {now} WHERE revoked_ms IS NULL \
                 AND (identity_nonce = {nonce} OR parent_nonce = {nonce} \
                 OR (user_id IS NOT NULL AND user_id = {user}))"
            )
        }
        None => format!(
            "UPDATE sessions SET revoked_ms = {now} WHERE revoked_ms IS NULL \
             AND (identity_nonce = {nonce} OR parent_nonce = {nonce})"
        ),
    };
    binds.prepare(db, &sql)?.run().await?;
    Ok(())
}

/// Revokes, from `now`, the sessions that identity provider `idp_id` signed in for users
/// whose object id (`user_id`, without case) `users` selects (SQL, run in the same batch).
///
/// # Errors
///
/// When D1 refuses the statement.
pub fn revoke_users(
    db: &D1Database,
    now: UnixMillis,
    idp_id: &str,
    users: &str,
) -> Result<D1PreparedStatement, worker::Error> {
    let mut binds = Binds::default();
    let now = binds.millis(now);
    let idp = binds.text(idp_id);
    binds.prepare(
        db,
        &format!(
            "UPDATE sessions SET revoked_ms = {now} WHERE revoked_ms IS NULL \
             AND json_extract(identity, '{IDP_ID}') = {idp} \
             AND user_id COLLATE NOCASE IN ({users})"
        ),
    )
}

/// Revokes, from `now`, the sessions `idp_id` signed in with one of `emails` (without case):
/// for a user known only by its addresses.
///
/// # Errors
///
/// When D1 refuses the statement.
pub fn revoke_addresses(
    db: &D1Database,
    now: UnixMillis,
    idp_id: &str,
    emails: &[String],
) -> Result<D1PreparedStatement, worker::Error> {
    let mut binds = Binds::default();
    let now = binds.millis(now);
    let idp = binds.text(idp_id);
    let emails = binds.json_list(emails);
    binds.prepare(
        db,
        &format!(
            "UPDATE sessions SET revoked_ms = {now} WHERE revoked_ms IS NULL \
             AND json_extract(identity, '{IDP_ID}') = {idp} \
             AND email COLLATE NOCASE IN (SELECT value FROM json_each({emails}))"
        ),
    )
}

/// Replaces the stored groups of the live sessions `idp_id` signed in for the users `users`
/// selects (as [`revoke_users`]) with `groups`: SQL evaluating to a JSON array of group ids
/// for the row's `sessions.user_id`.
///
/// # Errors
///
/// When D1 refuses the statement.
pub fn set_groups(
    db: &D1Database,
    now: UnixMillis,
    idp_id: &str,
    users: &str,
    groups: &str,
) -> Result<D1PreparedStatement, worker::Error> {
    let mut binds = Binds::default();
    let now = binds.millis(now);
    let idp = binds.text(idp_id);
    binds.prepare(
        db,
        &format!(
            "UPDATE sessions SET identity = json_set(identity, '{GROUPS}', json(({groups}))) \
             WHERE revoked_ms IS NULL AND expires_ms > {now} \
             AND json_extract(identity, '{IDP_ID}') = {idp} \
             AND user_id COLLATE NOCASE IN ({users})"
        ),
    )
}

/// The identity as stored server-side (groups included), keyed by `identity_nonce`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredIdentity {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub idp_id: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub acrs: Vec<String>,
    pub claims: Vec<(String, Vec<String>)>,
    pub country: Option<String>,
}

impl StoredIdentity {
    pub fn from_identity(identity: &Identity, country: Option<String>) -> StoredIdentity {
        let strings = |v: &[Box<str>]| v.iter().map(|s| s.to_string()).collect();
        StoredIdentity {
            email: identity.email.as_ref().map(|e| e.as_str().to_owned()),
            user_id: identity.user_id.as_deref().map(Into::into),
            tenant_id: identity.tenant_id.as_deref().map(Into::into),
            idp_id: identity.idp_id.as_deref().map(Into::into),
            groups: identity.groups.iter().map(ToString::to_string).collect(),
            amr: strings(&identity.amr),
            acrs: strings(&identity.acrs),
            claims: identity
                .claims
                .iter()
                .filter(|(name, _)| !is_bulky_claim(name))
                .map(|(name, values)| (name.to_string(), strings(values)))
                .collect(),
            country,
        }
    }

    pub fn to_identity(&self) -> Identity {
        let boxed = |v: &[String]| v.iter().map(|s| s.as_str().into()).collect();
        let mut identity = Identity::default();
        identity.email = self.email.as_deref().and_then(|e| Email::parse(e).ok());
        identity.user_id = self.user_id.as_deref().map(Into::into);
        identity.tenant_id = self.tenant_id.as_deref().map(Into::into);
        identity.idp_id = self.idp_id.as_deref().map(Into::into);
        identity.groups = self
            .groups
            .iter()
            .filter_map(|g| GroupId::parse(g).ok())
            .collect();
        identity.amr = boxed(&self.amr);
        identity.acrs = boxed(&self.acrs);
        identity.claims = self
            .claims
            .iter()
            .map(|(n, v)| (n.as_str().into(), boxed(v)))
            .collect();
        identity
    }
}

/// Claims not worth keeping per session (token bookkeeping, or the groups kept separately).
fn is_bulky_claim(name: &str) -> bool {
    matches!(
        name,
        "groups"
            | "_claim_names"
            | "_claim_sources"
            | "aio"
            | "uti"
            | "rh"
            | "nonce"
            | "iat"
            | "nbf"
            | "exp"
            | "sid"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::*;

    fn stored() -> StoredIdentity {
        StoredIdentity {
            email: Some("ada@example.com".into()),
            user_id: Some("7a1b2c3d-0000-4000-8000-00000000000a".into()),
            tenant_id: None,
            idp_id: Some("entra".into()),
            groups: vec!["11111111-1111-4111-8111-111111111111".into()],
            amr: vec![],
            acrs: vec![],
            claims: vec![],
            country: None,
        }
    }

    /// The top-level field a `$.name` path names.
    fn field(path: &str) -> &str {
        path.strip_prefix("$.").unwrap()
    }

    #[test]
    fn the_sql_paths_are_the_stored_identitys_fields() {
        let value = serde_json::to_value(stored()).unwrap();
        assert_eq!(value[field(IDP_ID)], json!("entra"));
        assert_eq!(
            value[field(GROUPS)],
            json!(["11111111-1111-4111-8111-111111111111"])
        );
    }

    #[test]
    fn groups_set_at_the_path_read_back_as_the_identitys_groups() {
        // What `json_set(identity, GROUPS, …)` does, then the gateway's reading of the row.
        let mut value = serde_json::to_value(stored()).unwrap();
        let replaced = json!(["22222222-2222-4222-8222-222222222222"]);
        value[field(GROUPS)] = replaced.clone();
        let read: StoredIdentity = serde_json::from_value(value).unwrap();
        assert_eq!(Value::from(read.groups.clone()), replaced);
        assert_eq!(read.email.as_deref(), Some("ada@example.com"));
        let identity = read.to_identity();
        assert_eq!(
            identity
                .groups
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["22222222-2222-4222-8222-222222222222"]
        );
    }
}

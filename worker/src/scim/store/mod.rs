//! The SCIM directory in D1: users, groups and memberships, and what their changes do to
//! sessions. One module per concern:
//!
//! - [`users`]: `scim_users`, the deleted users' tables (`scim_deleted_oids`,
//!   `scim_deprovisioned`), and why SCIM refuses an identity ([`refusal_sql`]).
//! - [`groups`]: `scim_groups` and `scim_members`.
//! - [`effects`]: a write's batch — its guard, the users it touches (`scim_affected`), their
//!   sessions (through [`crate::session_store`]) and the directory generation (`scim_state`).
//! - [`batch`]: what a failed batch means, and the retry of writes that conflicted.
//! - [`query`]: filters and pages as SQL; [`render`]: resources and list responses as served.
//!
//! Every write is one `batch` (a transaction). Updates start with a guard that fails the batch
//! when what the write was computed from changed since it was read, and are then retried from
//! the read ([`batch::retry`]: a write still conflicting after [`batch::ATTEMPTS`] is a 503
//! with `Retry-After`): no concurrent write is lost. A user's guard is its `version`; a group's
//! is its stored resource (without members), so member changes — inserts and deletes of rows,
//! which commute — never conflict with each other, only with a change of the group's other
//! attributes. The effects on sessions ride in the same batch:
//!
//! - `user_deprovision`: a user set inactive or deleted has every session revoked.
//! - `identity_update_behavior: reauth`: a membership change (of the user, or of a group the
//!   user is under) revokes the user's sessions; `group_member_deprovision` does so for
//!   removals.
//! - `automatic`: the stored identity's `groups` become the user's SCIM groups (transitively,
//!   by their policy ids).
//!
//! Deleted users leave their object ids in `scim_deleted_oids` until SCIM provisions them
//! again, so the gateway can refuse their bearer tokens ([`deprovisioned`]).
//!
//! Users are keyed by Entra's object id: a SCIM user whose `externalId` is a GUID is bound
//! to it (Entra sends the object id there when the provisioning app maps `objectId` to
//! `externalId`), and a session belongs to the SCIM user bound to its `user_id` — the
//! token's `oid`, immutable — when it came from the provisioned identity provider. Email
//! addresses, which Entra lets administrators set to anything, never say whose a session is.
//! With `user_deprovision` an active user must be bound (a write that leaves one unbound is
//! refused), so every user SCIM can disable is one the gateway can find; a user stored
//! before that (a disabled one, or one written before the rule) is found by its addresses
//! only to refuse: its sessions are revoked by email, and the gateway refuses identities
//! it cannot tell apart from it ([`refusal_sql`]).

mod batch;
mod effects;
mod groups;
mod query;
mod render;
mod users;

pub use users::{deprovisioned, refusal_sql, DELETED_FOR};

use edge_access_scim::{ResourceKind, ScimError, ScimType};
use serde::Deserialize;
use serde_json::{Map, Value};
use worker::{D1Database, D1PreparedStatement};

use super::Failure;
use crate::config::ScimSettings;
use crate::d1::Binds;
use crate::time::UnixMillis;

/// One request's view of the directory: its database, the provider's `scim_config`, the
/// request's time (every row it writes carries it) and the base URL of its resources.
pub struct Store<'a> {
    db: D1Database,
    settings: &'a ScimSettings,
    now: UnixMillis,
    base: &'a str,
}

impl<'a> Store<'a> {
    pub fn new(db: D1Database, settings: &'a ScimSettings, now: UnixMillis, base: &'a str) -> Self {
        Store {
            db,
            settings,
            now,
            base,
        }
    }

    fn statement(&self, sql: &str, binds: &Binds) -> Result<D1PreparedStatement, Failure> {
        Ok(binds.prepare(&self.db, sql)?)
    }

    /// A 409 when another resource than `except` holds the unique name `key` (a user's
    /// `userName`, a group's `displayName`), both folded.
    async fn name_free(&self, kind: ResourceKind, key: &str, except: &str) -> Result<(), Failure> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let mut binds = Binds::default();
        let key = binds.text(key);
        let (sql, attribute) = match kind {
            ResourceKind::User => (
                format!("SELECT id FROM scim_users WHERE user_name_key = {key}"),
                "userName",
            ),
            ResourceKind::Group => (
                format!("SELECT id FROM scim_groups WHERE display_name_key = {key}"),
                "displayName",
            ),
        };
        let taken: Option<Id> = self.statement(&sql, &binds)?.first(None).await?;
        match taken {
            Some(t) if t.id != except => Err(uniqueness(format!(
                "{attribute} is already taken (by {} `{}`)",
                kind.as_str().to_ascii_lowercase(),
                t.id
            ))),
            _ => Ok(()),
        }
    }
}

fn not_found(kind: ResourceKind, id: &str) -> Failure {
    Failure::NotFound(format!("{} `{id}` not found", kind.as_str()))
}

fn uniqueness(detail: String) -> Failure {
    Failure::Scim(ScimError::new(ScimType::Uniqueness, detail))
}

/// The largest resource stored (members apart): far above any real user or group, well
/// below D1's row limit.
const MAX_RESOURCE: usize = 256 * 1024;

/// A resource as stored: its JSON text, at most [`MAX_RESOURCE`] bytes.
fn stored_text(resource: &Map<String, Value>) -> Result<String, Failure> {
    let text = Value::Object(resource.clone()).to_string();
    if text.len() > MAX_RESOURCE {
        return Err(Failure::Scim(ScimError::new(
            ScimType::InvalidValue,
            format!("the resource is larger than {MAX_RESOURCE} bytes"),
        )));
    }
    Ok(text)
}

/// A new resource id: a random UUID.
fn new_id() -> Result<String, Failure> {
    crate::crypto::random_uuid().map_err(|e| Failure::Internal(format!("crypto: {e:?}")))
}

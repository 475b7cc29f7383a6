//! Users, groups and memberships in D1, and what their changes do to sessions.
//!
//! Every write is one `batch` (a transaction). Updates start with a guard that fails the batch
//! when what the write was computed from changed since it was read, and are then retried from
//! the read (after a short random pause; a write still conflicting after [`ATTEMPTS`] is a 503
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

use edge_access_scim::{
    apply, conditions, fold, split_members, Condition, Filter, GroupRecord, MemberChange, Page,
    PatchRequest, Projection, ResourceKind, ScimError, ScimType, UserRecord,
};
use policy_core::{GroupId, IdentityUpdateBehavior};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use super::discovery::MAX_RESULTS;
use super::Failure;
use crate::config::ScimSettings;

/// Page size when the client gives no `count`.
const DEFAULT_COUNT: u64 = 100;

/// Attempts at a write whose resource keeps changing underneath.
const ATTEMPTS: usize = 4;

/// Waits a random 5–25 ms times the attempt before writing again, so writes that collided
/// do not collide again in step.
async fn back_off(attempt: usize) {
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    let ms = ((5.0 + js_sys::Math::random() * 20.0) * attempt as f64) as u64;
    worker::Delay::from(std::time::Duration::from_millis(ms)).await;
}

const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

pub struct Store<'a> {
    db: D1Database,
    settings: &'a ScimSettings,
    now_ms: u64,
    base: &'a str,
}

#[derive(Deserialize)]
struct UserRow {
    id: String,
    user_name_key: String,
    work_email_key: Option<String>,
    /// The object id the user is bound to.
    #[serde(default)]
    oid: Option<String>,
    active: f64,
    resource: String,
    version: f64,
    created_ms: f64,
    modified_ms: f64,
    /// `COUNT(*) OVER ()` in list pages.
    #[serde(default)]
    total: f64,
}

#[derive(Deserialize)]
struct GroupRow {
    id: String,
    display_name_key: String,
    policy_id: String,
    resource: String,
    version: f64,
    created_ms: f64,
    modified_ms: f64,
    /// JSON array of `{"value","type"}` when selected.
    #[serde(default)]
    members: Option<String>,
    /// `COUNT(*) OVER ()` in list pages.
    #[serde(default)]
    total: f64,
}

#[derive(Deserialize)]
struct MemberRow {
    id: String,
    kind: String,
}

#[derive(Deserialize)]
struct Count {
    n: f64,
}

/// Integral D1 numbers (JavaScript doubles) back to integers.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub fn int(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        n as u64
    } else {
        0
    }
}

#[allow(clippy::cast_precision_loss)]
fn num(n: u64) -> JsValue {
    JsValue::from(n as f64)
}

fn text(s: &str) -> JsValue {
    JsValue::from(s)
}

fn opt(s: Option<&str>) -> JsValue {
    s.map_or(JsValue::NULL, JsValue::from)
}

fn json_list(items: &[String]) -> JsValue {
    JsValue::from(Value::from(items.to_vec()).to_string())
}

fn iso(ms: u64) -> String {
    #[allow(clippy::cast_precision_loss)]
    let date = js_sys::Date::new(&JsValue::from(ms as f64));
    date.to_iso_string().into()
}

fn not_found(kind: ResourceKind, id: &str) -> Failure {
    Failure::NotFound(format!("{} `{id}` not found", kind.as_str()))
}

fn uniqueness(detail: String) -> Failure {
    Failure::Scim(ScimError::new(ScimType::Uniqueness, detail))
}

/// What a failed batch means: a guard saw the resource move (retry), an added member is
/// neither a user nor a group, or a failure to answer with.
enum BatchError {
    Conflict,
    MissingMember,
    Failed(Failure),
}

fn classify(e: worker::Error) -> BatchError {
    let text = e.to_string();
    let taken = |what: &str| BatchError::Failed(uniqueness(what.into()));
    if text.contains("scim_write_guard") {
        BatchError::Conflict
    } else if text.contains("scim_member_guard") {
        BatchError::MissingMember
    } else if text.contains("UNIQUE constraint failed: scim_users.user_name_key") {
        taken("userName is already taken")
    } else if text.contains("UNIQUE constraint failed: scim_users.oid") {
        taken("externalId is already the object id of another user")
    } else if text.contains("UNIQUE constraint failed: scim_groups.display_name_key") {
        taken("displayName is already taken")
    } else if text.contains("UNIQUE constraint failed: scim_groups.policy_id") {
        taken("externalId is already the id of another group")
    } else {
        BatchError::Failed(e.into())
    }
}

/// A failed batch that is not retried (a create has nothing to retry against).
impl From<BatchError> for Failure {
    fn from(e: BatchError) -> Failure {
        match e {
            BatchError::Conflict | BatchError::MissingMember => Failure::Busy,
            BatchError::Failed(failure) => failure,
        }
    }
}

/// The id policies name a group by: its externalId when that is a GUID (Entra's object id),
/// else the server's id.
fn policy_id(id: &str, external_id: Option<&str>) -> String {
    external_id
        .and_then(|e| GroupId::parse(e.trim()).ok())
        .or_else(|| GroupId::parse(id).ok())
        .map_or_else(|| id.to_owned(), |g| g.to_string())
}

/// What a write does to sessions and gateways. The users it touches are recorded in
/// `scim_affected` by statements that run inside the write's batch, before the write — so the
/// set is exactly the one the write changes, even under concurrent writes.
#[derive(Default)]
struct Effects {
    /// Statements filling `scim_affected` (run before the write).
    record: Vec<D1PreparedStatement>,
    /// The compiled directory (names, policy ids, nesting) changed.
    directory: bool,
}

/// A write's batch, with where its session statements are.
#[derive(Default)]
struct Prepared {
    statements: Vec<D1PreparedStatement>,
    revoke_at: Option<usize>,
    regroup_at: Option<usize>,
}

/// Where the users touched by a membership change are found: under these members (users or
/// groups, transitively), or under every current member of a group.
enum Touched<'s> {
    Members(&'s [String]),
    MembersOf(&'s str),
}

impl<'a> Store<'a> {
    pub fn new(db: D1Database, settings: &'a ScimSettings, now_ms: u64, base: &'a str) -> Self {
        Store {
            db,
            settings,
            now_ms,
            base,
        }
    }

    fn statement(&self, sql: &str, args: &[JsValue]) -> Result<D1PreparedStatement, Failure> {
        Ok(self.db.prepare(sql).bind(args)?)
    }

    // ---- users -------------------------------------------------------------------------

    async fn user_row(&self, id: &str) -> Result<Option<UserRow>, Failure> {
        Ok(self
            .statement(
                "SELECT id, user_name_key, work_email_key, oid, active, resource, version, \
                 created_ms, modified_ms FROM scim_users WHERE id = ?1",
                &[text(&fold(id))],
            )?
            .first(None)
            .await?)
    }

    fn render_user(&self, row: &UserRow) -> Result<Value, Failure> {
        let resource = stored_user(row)?;
        Ok(self.render(ResourceKind::User, &row.id, resource, row_meta(row)))
    }

    fn render(
        &self,
        kind: ResourceKind,
        id: &str,
        resource: Map<String, Value>,
        (created, modified, version): (u64, u64, u64),
    ) -> Value {
        let mut out = Map::new();
        let schemas = resource
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| json!([kind.schema()]));
        out.insert("schemas".into(), schemas);
        out.insert("id".into(), Value::String(id.to_owned()));
        for (k, v) in resource {
            if !k.eq_ignore_ascii_case("schemas") {
                out.insert(k, v);
            }
        }
        out.insert(
            "meta".into(),
            json!({
                "resourceType": kind.as_str(),
                "created": iso(created),
                "lastModified": iso(modified),
                "location": format!("{}/{}s/{id}", self.base, kind.as_str()),
                "version": format!("W/\"{version}\""),
            }),
        );
        Value::Object(out)
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
        let (clause, args) = where_clause(&conditions, ResourceKind::User);
        let rows: Vec<UserRow> = self
            .page(
                "SELECT id, user_name_key, work_email_key, oid, active, resource, version, \
                 created_ms, modified_ms, COUNT(*) OVER () AS total FROM scim_users",
                &clause,
                "created_ms, id",
                &args,
                page,
            )
            .await?;
        let total = match rows.first() {
            Some(row) => int(row.total),
            None => self.count("scim_users", &clause, &args, page).await?,
        };
        let resources = rows
            .iter()
            .map(|row| self.render_user(row).map(|r| projection.apply(r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_response(total, page, resources))
    }

    /// One page of `select` (with `COUNT(*) OVER () AS total`) under `clause`: a single
    /// query, which also counts every match.
    async fn page<T: serde::de::DeserializeOwned>(
        &self,
        select: &str,
        clause: &str,
        order: &str,
        args: &[JsValue],
        page: Page,
    ) -> Result<Vec<T>, Failure> {
        if page.count == 0 {
            return Ok(Vec::new());
        }
        let mut page_args = args.to_vec();
        page_args.push(num(page.count));
        page_args.push(num(page.start_index - 1));
        let n = args.len();
        Ok(self
            .statement(
                &format!(
                    "{select}{clause} ORDER BY {order} LIMIT ?{} OFFSET ?{}",
                    n + 1,
                    n + 2
                ),
                &page_args,
            )?
            .all()
            .await?
            .results()?)
    }

    /// The number of matches when the page came back empty: none on a first page, else
    /// counted (a page past the end, or `count=0`).
    async fn count(
        &self,
        table: &str,
        clause: &str,
        args: &[JsValue],
        page: Page,
    ) -> Result<u64, Failure> {
        if page.count > 0 && page.start_index == 1 {
            return Ok(0);
        }
        let total: Option<Count> = self
            .statement(&format!("SELECT COUNT(*) AS n FROM {table}{clause}"), args)?
            .first(None)
            .await?;
        Ok(total.map_or(0, |c| int(c.n)))
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
        let resource = stored_text(&record.resource)?;
        let insert = self.statement(
            "INSERT INTO scim_users (id, user_name_key, external_id, oid, work_email_key, \
             display_name_key, active, resource, version, created_ms, modified_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 1, ?9, ?9)",
            &[
                text(&id),
                text(&record.user_name_key),
                opt(record.external_id.as_deref()),
                opt(record.object_id.as_deref()),
                opt(record.work_email_key.as_deref()),
                opt(record.display_name_key.as_deref()),
                num(u64::from(record.active)),
                text(&resource),
                num(self.now_ms),
            ],
        )?;
        let prepared = Prepared {
            statements: vec![insert, self.undelete(&record)?],
            ..Prepared::default()
        };
        self.submit(&id, prepared)
            .await
            .map_err(|e| Failure::from(classify(e)))?;
        let rendered = self.render(
            ResourceKind::User,
            &id,
            record.resource,
            (self.now_ms, self.now_ms, 1),
        );
        let location = format!("{}/Users/{id}", self.base);
        Ok((rendered, location))
    }

    /// A 409 when another resource than `except` holds the unique name `key` (a user's
    /// `userName`, a group's `displayName`), both folded.
    async fn name_free(&self, kind: ResourceKind, key: &str, except: &str) -> Result<(), Failure> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let (sql, attribute) = match kind {
            ResourceKind::User => (
                "SELECT id FROM scim_users WHERE user_name_key = ?1",
                "userName",
            ),
            ResourceKind::Group => (
                "SELECT id FROM scim_groups WHERE display_name_key = ?1",
                "displayName",
            ),
        };
        let taken: Option<Id> = self.statement(sql, &[text(key)])?.first(None).await?;
        match taken {
            Some(t) if t.id != except => Err(uniqueness(format!(
                "{attribute} is already taken (by {} `{}`)",
                kind.as_str().to_ascii_lowercase(),
                t.id
            ))),
            _ => Ok(()),
        }
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
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let row = self
                .user_row(id)
                .await?
                .ok_or_else(|| not_found(ResourceKind::User, id))?;
            let record = change(&stored_user(&row)?)?;
            self.check_bound(&record)?;
            if record.user_name_key != row.user_name_key {
                self.name_free(ResourceKind::User, &record.user_name_key, &row.id)
                    .await?;
            }
            let mut effects = Effects::default();
            let was_active = int(row.active) == 1;
            if self.settings.config.user_deprovision && was_active && !record.active {
                self.deprovision(&mut effects, &row)?;
            }
            let version = int(row.version) + 1;
            let mut write = Vec::new();
            if record.active {
                write.push(self.undelete(&record)?);
            }
            write.push(self.statement(
                "UPDATE scim_users SET user_name_key = ?2, external_id = ?3, work_email_key = ?4, \
                 display_name_key = ?5, active = ?6, resource = ?7, version = ?8, modified_ms = ?9, \
                 oid = ?10 WHERE id = ?1",
                &[
                    text(&row.id),
                    text(&record.user_name_key),
                    opt(record.external_id.as_deref()),
                    opt(record.work_email_key.as_deref()),
                    opt(record.display_name_key.as_deref()),
                    num(u64::from(record.active)),
                    text(&stored_text(&record.resource)?),
                    num(version),
                    num(self.now_ms),
                    opt(record.object_id.as_deref()),
                ],
            )?);
            let guard = self.guard("scim_users", &row.id, int(row.version))?;
            let batch = self.around(Some(guard), effects, write)?;
            match self.submit(&row.id, batch).await {
                Ok(()) => {
                    return Ok(self.render(
                        ResourceKind::User,
                        &row.id,
                        record.resource,
                        (int(row.created_ms), self.now_ms, version),
                    ));
                }
                Err(e) => match classify(e) {
                    BatchError::Failed(failure) => return Err(failure),
                    BatchError::Conflict | BatchError::MissingMember => continue,
                },
            }
        }
        Err(Failure::Busy)
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), Failure> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
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
            let write = vec![
                self.statement(
                    "DELETE FROM scim_members WHERE member_id = ?1",
                    &[text(&row.id)],
                )?,
                self.statement("DELETE FROM scim_users WHERE id = ?1", &[text(&row.id)])?,
                self.remember_deleted(&row)?,
            ];
            let guard = self.guard("scim_users", &row.id, int(row.version))?;
            let batch = self.around(Some(guard), effects, write)?;
            match self.submit(&row.id, batch).await {
                Ok(()) => return Ok(()),
                Err(e) => match classify(e) {
                    BatchError::Failed(failure) => return Err(failure),
                    BatchError::Conflict | BatchError::MissingMember => continue,
                },
            }
        }
        Err(Failure::Busy)
    }

    // ---- groups ------------------------------------------------------------------------

    async fn group_row(&self, id: &str, members: bool) -> Result<Option<GroupRow>, Failure> {
        let members = if members { MEMBERS_COLUMN } else { "" };
        Ok(self
            .statement(
                &format!(
                    "SELECT g.id, g.display_name_key, g.policy_id, g.resource, g.version, \
                     g.created_ms, g.modified_ms{members} FROM scim_groups g WHERE g.id = ?1"
                ),
                &[text(&fold(id))],
            )?
            .first(None)
            .await?)
    }

    fn render_group(&self, row: &GroupRow) -> Result<Value, Failure> {
        let mut resource: Map<String, Value> = serde_json::from_str(&row.resource)
            .map_err(|e| Failure::Internal(format!("stored group `{}`: {e}", row.id)))?;
        if let Some(members) = &row.members {
            let members: Value = serde_json::from_str(members)
                .map_err(|e| Failure::Internal(format!("members of `{}`: {e}", row.id)))?;
            resource.insert("members".into(), members);
        }
        Ok(self.render(
            ResourceKind::Group,
            &row.id,
            resource,
            (int(row.created_ms), int(row.modified_ms), int(row.version)),
        ))
    }

    pub async fn get_group(&self, id: &str, query: &[(String, String)]) -> Result<Value, Failure> {
        let projection = projection(query)?;
        let row = self
            .group_row(id, projection.returns("members"))
            .await
            .map_err(too_many_members)?
            .ok_or_else(|| not_found(ResourceKind::Group, id))?;
        Ok(projection.apply(self.render_group(&row)?))
    }

    pub async fn list_groups(&self, query: &[(String, String)]) -> Result<Value, Failure> {
        let projection = projection(query)?;
        let (conditions, page) = list_params(query, ResourceKind::Group)?;
        let (clause, args) = where_clause(&conditions, ResourceKind::Group);
        let members = if projection.returns("members") {
            MEMBERS_COLUMN
        } else {
            ""
        };
        let rows: Vec<GroupRow> = self
            .page(
                &format!(
                    "SELECT g.id, g.display_name_key, g.policy_id, g.resource, g.version, \
                     g.created_ms, g.modified_ms{members}, COUNT(*) OVER () AS total \
                     FROM scim_groups g"
                ),
                &clause,
                "g.created_ms, g.id",
                &args,
                page,
            )
            .await
            .map_err(too_many_members)?;
        let total = match rows.first() {
            Some(row) => int(row.total),
            None => self.count("scim_groups g", &clause, &args, page).await?,
        };
        let resources = rows
            .iter()
            .map(|row| self.render_group(row).map(|r| projection.apply(r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_response(total, page, resources))
    }

    pub async fn create_group(&self, body: &Value) -> Result<(Value, String), Failure> {
        let record = GroupRecord::from_body(body)?;
        // A taken displayName (or externalId) fails the insert (UNIQUE), answered 409.
        let id = new_id()?;
        // Checked here (not only in the batch) for the kinds the answer shows.
        let mut members = self.members(&record.members, &id).await?;
        let mut ids: Vec<String> = Vec::with_capacity(members.len());
        members.retain(|m| {
            let new = !ids.contains(&m.id);
            if new {
                ids.push(m.id.clone());
            }
            new
        });
        let policy = policy_id(&id, record.external_id.as_deref());
        let mut effects = Effects {
            directory: true,
            ..Effects::default()
        };
        self.touch(&mut effects, Touched::Members(&ids), false)?;
        let mut write = vec![self.statement(
            "INSERT INTO scim_groups (id, display_name_key, external_id, policy_id, resource, \
             version, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
            &[
                text(&id),
                text(&record.display_name_key),
                opt(record.external_id.as_deref()),
                text(&policy),
                text(&stored_text(&record.resource)?),
                num(self.now_ms),
            ],
        )?];
        write.extend(self.member_change(&id, &MemberChange::Add(ids))?);
        let batch = self.around(None, effects, write)?;
        self.submit(&id, batch)
            .await
            .map_err(|e| Failure::from(classify(e)))?;
        let mut resource = record.resource;
        resource.insert("members".into(), members_json(&members));
        let rendered = self.render(
            ResourceKind::Group,
            &id,
            resource,
            (self.now_ms, self.now_ms, 1),
        );
        Ok((rendered, format!("{}/Groups/{id}", self.base)))
    }

    /// The members named by `ids` with their kind, in order; an id that is neither a user
    /// nor a group, or the group itself, is an `invalidValue` error.
    async fn members(&self, ids: &[String], group_id: &str) -> Result<Vec<MemberRow>, Failure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let folded: Vec<String> = ids.iter().map(|i| fold(i)).collect();
        let found: Vec<MemberRow> = self
            .statement(
                "SELECT id, 'User' AS kind FROM scim_users WHERE id IN (SELECT value FROM json_each(?1)) \
                 UNION ALL SELECT id, 'Group' AS kind FROM scim_groups WHERE id IN (SELECT value FROM json_each(?1))",
                &[json_list(&folded)],
            )?
            .all()
            .await?
            .results()?;
        let mut out = Vec::new();
        for (id, original) in folded.iter().zip(ids) {
            if id == group_id {
                return Err(Failure::Scim(ScimError::new(
                    ScimType::InvalidValue,
                    format!("group `{group_id}` cannot be a member of itself"),
                )));
            }
            let Some(member) = found.iter().find(|m| &m.id == id) else {
                return Err(Failure::Scim(ScimError::new(
                    ScimType::InvalidValue,
                    format!("member `{original}` is neither a user nor a group"),
                )));
            };
            out.push(MemberRow {
                id: member.id.clone(),
                kind: member.kind.clone(),
            });
        }
        Ok(out)
    }

    pub async fn replace_group(&self, id: &str, body: &Value) -> Result<Value, Failure> {
        let record = GroupRecord::from_body(body)?;
        let members: Vec<String> = record.members.iter().map(|m| fold(m)).collect();
        let id = self
            .write_group(id, |_| {
                Ok((record.clone(), vec![MemberChange::Replace(members.clone())]))
            })
            .await?;
        self.get_group(&id, &[]).await
    }

    pub async fn patch_group(&self, id: &str, body: &Value) -> Result<(), Failure> {
        let patch = PatchRequest::parse(body)?;
        let (rest, changes) = split_members(&patch)?;
        self.write_group(id, |stored| {
            let mut resource = stored.clone();
            apply(&mut resource, &rest)?;
            Ok((GroupRecord::from_resource(resource)?, changes.clone()))
        })
        .await
        .map(|_| ())
    }

    /// Reads the group (never its members), computes its new record and member changes with
    /// `change`, and writes them guarded by the stored resource they were computed from (not
    /// the version, which member changes move): each member change becomes inserts or deletes,
    /// added members are checked inside the batch. Answers the group's id.
    async fn write_group(
        &self,
        id: &str,
        change: impl Fn(&Map<String, Value>) -> Result<(GroupRecord, Vec<MemberChange>), ScimError>,
    ) -> Result<String, Failure> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let row = self
                .group_row(id, false)
                .await?
                .ok_or_else(|| not_found(ResourceKind::Group, id))?;
            let stored: Map<String, Value> = serde_json::from_str(&row.resource)
                .map_err(|e| Failure::Internal(format!("stored group `{}`: {e}", row.id)))?;
            let (record, changes) = change(&stored)?;
            if record.display_name_key != row.display_name_key {
                self.name_free(ResourceKind::Group, &record.display_name_key, &row.id)
                    .await?;
            }
            let added: Vec<String> = changes
                .iter()
                .flat_map(|c| c.added().iter().cloned())
                .collect();
            if added.contains(&row.id) {
                return Err(Failure::Scim(ScimError::new(
                    ScimType::InvalidValue,
                    format!("group `{}` cannot be a member of itself", row.id),
                )));
            }
            let policy = policy_id(&row.id, record.external_id.as_deref());
            let mut effects = Effects {
                directory: record.display_name_key != row.display_name_key
                    || policy != row.policy_id,
                ..Effects::default()
            };
            for change in &changes {
                match change {
                    MemberChange::Add(ids) => {
                        self.touch(&mut effects, Touched::Members(ids), false)?
                    }
                    MemberChange::Remove(ids) => {
                        self.touch(&mut effects, Touched::Members(ids), true)?;
                    }
                    // Everyone under the group counts as removed (those who stay are touched
                    // too: a replace does not say who stays).
                    MemberChange::RemoveAll => {
                        self.touch(&mut effects, Touched::MembersOf(&row.id), true)?;
                    }
                    MemberChange::Replace(ids) => {
                        self.touch(&mut effects, Touched::MembersOf(&row.id), true)?;
                        self.touch(&mut effects, Touched::Members(ids), false)?;
                    }
                }
            }
            if policy != row.policy_id {
                // Everyone under the group is now in a group with another policy id.
                self.touch(&mut effects, Touched::MembersOf(&row.id), false)?;
            }
            let mut write = vec![self.statement(
                "UPDATE scim_groups SET display_name_key = ?2, external_id = ?3, policy_id = ?4, \
                 resource = ?5, version = version + 1, modified_ms = ?6 WHERE id = ?1",
                &[
                    text(&row.id),
                    text(&record.display_name_key),
                    opt(record.external_id.as_deref()),
                    text(&policy),
                    text(&stored_text(&record.resource)?),
                    num(self.now_ms),
                ],
            )?];
            for change in &changes {
                write.extend(self.member_change(&row.id, change)?);
            }
            let guard = self.statement(
                "INSERT INTO scim_write_guard (must_not_be_null) SELECT NULL WHERE NOT EXISTS \
                 (SELECT 1 FROM scim_groups WHERE id = ?1 AND resource = ?2)",
                &[text(&row.id), text(&row.resource)],
            )?;
            let batch = self.around(Some(guard), effects, write)?;
            match self.submit(&row.id, batch).await {
                Ok(()) => return Ok(row.id),
                Err(e) => match classify(e) {
                    BatchError::Conflict => continue,
                    BatchError::MissingMember => {
                        // Which one, precisely (or none any more: then try again).
                        self.members(&added, &row.id).await?;
                        continue;
                    }
                    BatchError::Failed(failure) => return Err(failure),
                },
            }
        }
        Err(Failure::Busy)
    }

    /// The statements of one member change. Added ids must each be a user or a group, or the
    /// batch fails (`scim_member_guard`); the directory generation moves when a group joins or
    /// leaves.
    fn member_change(
        &self,
        group_id: &str,
        change: &MemberChange,
    ) -> Result<Vec<D1PreparedStatement>, Failure> {
        let mut out = Vec::new();
        let groups_moved = |ids: &[String]| -> Result<D1PreparedStatement, Failure> {
            self.statement(
                "UPDATE scim_state SET value = value + 1 WHERE name = 'directory' \
                 AND EXISTS (SELECT 1 FROM scim_groups WHERE id IN (SELECT value FROM json_each(?1)))",
                &[json_list(ids)],
            )
        };
        match change {
            MemberChange::Remove(ids) if !ids.is_empty() => {
                out.push(groups_moved(ids)?);
                out.push(self.statement(
                    "DELETE FROM scim_members WHERE group_id = ?1 \
                     AND member_id IN (SELECT value FROM json_each(?2))",
                    &[text(group_id), json_list(ids)],
                )?);
            }
            MemberChange::RemoveAll | MemberChange::Replace(_) => {
                out.push(self.statement(
                    "UPDATE scim_state SET value = value + 1 WHERE name = 'directory' \
                     AND EXISTS (SELECT 1 FROM scim_members WHERE group_id = ?1 AND member_kind = 'Group')",
                    &[text(group_id)],
                )?);
                out.push(self.statement(
                    "DELETE FROM scim_members WHERE group_id = ?1",
                    &[text(group_id)],
                )?);
            }
            MemberChange::Remove(_) | MemberChange::Add(_) => {}
        }
        let added = change.added();
        if !added.is_empty() {
            let list = json_list(added);
            out.push(self.statement(
                "INSERT INTO scim_member_guard (must_not_be_null) SELECT NULL WHERE \
                 (SELECT COUNT(*) FROM scim_users WHERE id IN (SELECT value FROM json_each(?1))) + \
                 (SELECT COUNT(*) FROM scim_groups WHERE id IN (SELECT value FROM json_each(?1))) < ?2",
                &[list.clone(), num(added.len() as u64)],
            )?);
            out.push(self.statement(
                "INSERT OR IGNORE INTO scim_members (group_id, member_id, member_kind) \
                 SELECT ?1, id, 'User' FROM scim_users WHERE id IN (SELECT value FROM json_each(?2)) \
                 UNION ALL SELECT ?1, id, 'Group' FROM scim_groups WHERE id IN (SELECT value FROM json_each(?2))",
                &[text(group_id), list],
            )?);
            out.push(groups_moved(added)?);
        }
        Ok(out)
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), Failure> {
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                back_off(attempt).await;
            }
            let row = self
                .group_row(id, false)
                .await?
                .ok_or_else(|| not_found(ResourceKind::Group, id))?;
            let mut effects = Effects {
                directory: true,
                ..Effects::default()
            };
            self.touch(&mut effects, Touched::MembersOf(&row.id), true)?;
            let write = vec![
                self.statement(
                    "DELETE FROM scim_members WHERE group_id = ?1 OR member_id = ?1",
                    &[text(&row.id)],
                )?,
                self.statement("DELETE FROM scim_groups WHERE id = ?1", &[text(&row.id)])?,
            ];
            // Nothing here was computed from the group's attributes: it only has to be there.
            let guard = self.statement(
                "INSERT INTO scim_write_guard (must_not_be_null) SELECT NULL WHERE NOT EXISTS \
                 (SELECT 1 FROM scim_groups WHERE id = ?1)",
                &[text(&row.id)],
            )?;
            let batch = self.around(Some(guard), effects, write)?;
            match self.submit(&row.id, batch).await {
                Ok(()) => return Ok(()),
                Err(e) => match classify(e) {
                    BatchError::Failed(failure) => return Err(failure),
                    BatchError::Conflict | BatchError::MissingMember => continue,
                },
            }
        }
        Err(Failure::Busy)
    }

    // ---- effects -----------------------------------------------------------------------

    /// Records what a membership change of the users with `keys` does under the provider's
    /// `scim_config`.
    /// What a membership change does to the touched users' sessions under the provider's
    /// `scim_config`: `Some(true)` revokes them, `Some(false)` recomputes their stored groups.
    fn membership_effect(&self, removal: bool) -> Option<bool> {
        let config = &self.settings.config;
        if config.identity_update_behavior == IdentityUpdateBehavior::Reauth
            || (removal && config.group_member_deprovision)
        {
            Some(true)
        } else if config.identity_update_behavior == IdentityUpdateBehavior::Automatic {
            Some(false)
        } else {
            None
        }
    }

    /// Records the users a membership change touches (nothing when it does not matter).
    fn touch(
        &self,
        effects: &mut Effects,
        touched: Touched<'_>,
        removal: bool,
    ) -> Result<(), Failure> {
        let Some(revoke) = self.membership_effect(removal) else {
            return Ok(());
        };
        let (seed, arg) = match touched {
            Touched::Members([]) => return Ok(()),
            Touched::Members(ids) => ("SELECT value FROM json_each(?1)", json_list(ids)),
            Touched::MembersOf(group) => (
                "SELECT member_id FROM scim_members WHERE group_id = ?1",
                text(group),
            ),
        };
        effects.record.push(self.statement(
            &format!(
                "WITH RECURSIVE down(id) AS ({seed} \
                   UNION SELECT m.member_id FROM scim_members m JOIN down ON m.group_id = down.id) \
                 INSERT INTO scim_affected (oid, revoke) \
                 SELECT oid, ?2 FROM scim_users \
                   WHERE id IN (SELECT id FROM down) AND oid IS NOT NULL \
                 ON CONFLICT (oid) DO UPDATE SET revoke = max(revoke, excluded.revoke)"
            ),
            &[arg, num(u64::from(revoke))],
        )?);
        Ok(())
    }

    /// Records a user whose sessions end (deprovisioning), by object id. A user without one
    /// (stored before `user_deprovision` required it, or stored disabled) has the sessions of
    /// its addresses revoked instead: the direction that cannot let anyone in.
    fn deprovision(&self, effects: &mut Effects, row: &UserRow) -> Result<(), Failure> {
        match &row.oid {
            Some(oid) => effects.record.push(self.statement(
                "INSERT INTO scim_affected (oid, revoke) VALUES (?1, 1) \
                 ON CONFLICT (oid) DO UPDATE SET revoke = 1",
                &[text(oid)],
            )?),
            None => effects.record.push(self.statement(
                "UPDATE sessions SET revoked_ms = ?1 WHERE revoked_ms IS NULL \
                 AND json_extract(identity, '$.idp_id') = ?2 \
                 AND email COLLATE NOCASE IN (SELECT value FROM json_each(?3))",
                &[
                    num(self.now_ms),
                    text(&self.settings.idp_id),
                    json_list(&keys_of(row)),
                ],
            )?),
        }
        Ok(())
    }

    /// Remembers a deleted user, so that the gateway refuses their bearer tokens for
    /// [`DELETED_FOR_MS`]: by object id, or by addresses for a user that had none.
    fn remember_deleted(&self, row: &UserRow) -> Result<D1PreparedStatement, Failure> {
        match &row.oid {
            Some(oid) => self.statement(
                "INSERT OR REPLACE INTO scim_deleted_oids (oid, deleted_ms) VALUES (?1, ?2)",
                &[text(oid), num(self.now_ms)],
            ),
            None => self.statement(
                "INSERT OR REPLACE INTO scim_deprovisioned (email_key, deleted_ms) \
                 SELECT value, ?2 FROM json_each(?1)",
                &[json_list(&keys_of(row)), num(self.now_ms)],
            ),
        }
    }

    /// The batch: the guard, what records the touched users, their revocations, the write,
    /// the recomputed groups of the others (which see the new memberships), then the
    /// directory generation.
    fn around(
        &self,
        guard: Option<D1PreparedStatement>,
        effects: Effects,
        write: Vec<D1PreparedStatement>,
    ) -> Result<Prepared, Failure> {
        let mut batch: Vec<D1PreparedStatement> = guard.into_iter().collect();
        let any = !effects.record.is_empty();
        batch.extend(effects.record);
        let mut prepared = Prepared::default();
        if any {
            prepared.revoke_at = Some(batch.len());
            batch.push(self.statement(
                "UPDATE sessions SET revoked_ms = ?1 WHERE revoked_ms IS NULL \
                 AND json_extract(identity, '$.idp_id') = ?2 \
                 AND user_id COLLATE NOCASE IN (SELECT oid FROM scim_affected WHERE revoke = 1)",
                &[num(self.now_ms), text(&self.settings.idp_id)],
            )?);
        }
        batch.extend(write);
        if any {
            prepared.regroup_at = Some(batch.len());
            // A session's SCIM user is the active one bound to its object id; none (deleted,
            // disabled) means no groups.
            batch.push(self.statement(
                "UPDATE sessions SET identity = json_set(identity, '$.groups', json(( \
                   WITH RECURSIVE up(g) AS ( \
                     SELECT m.group_id FROM scim_members m WHERE m.member_id = \
                       (SELECT u.id FROM scim_users u WHERE u.active = 1 \
                          AND u.oid = lower(sessions.user_id)) \
                     UNION SELECT m.group_id FROM scim_members m JOIN up ON m.member_id = up.g) \
                   SELECT json_group_array(g.policy_id) FROM up JOIN scim_groups g ON g.id = up.g))) \
                 WHERE revoked_ms IS NULL AND expires_ms > ?1 \
                 AND json_extract(identity, '$.idp_id') = ?2 \
                 AND user_id COLLATE NOCASE IN (SELECT oid FROM scim_affected WHERE revoke = 0)",
                &[num(self.now_ms), text(&self.settings.idp_id)],
            )?);
            batch.push(self.statement("DELETE FROM scim_affected", &[])?);
        }
        if effects.directory {
            batch.push(self.bump_directory()?);
        }
        prepared.statements = batch;
        Ok(prepared)
    }

    /// Runs a batch; logs how many sessions it revoked and updated.
    async fn submit(&self, id: &str, prepared: Prepared) -> Result<(), worker::Error> {
        let results = self.db.batch(prepared.statements).await?;
        let changed = |at: Option<usize>| {
            at.and_then(|i| results.get(i))
                .and_then(|r| r.meta().ok().flatten())
                .and_then(|m| m.changes)
                .unwrap_or(0)
        };
        for (event, count) in [
            ("scim_sessions_revoked", changed(prepared.revoke_at)),
            ("scim_identities_updated", changed(prepared.regroup_at)),
        ] {
            if count > 0 {
                crate::log::event(event, &[("resource", id), ("sessions", &count.to_string())]);
            }
        }
        Ok(())
    }

    /// Forgets that `record`'s user was deleted (provisioned again): its object id, and its
    /// addresses for a user that had none.
    fn undelete(&self, record: &UserRecord) -> Result<D1PreparedStatement, Failure> {
        match &record.object_id {
            Some(oid) => {
                self.statement("DELETE FROM scim_deleted_oids WHERE oid = ?1", &[text(oid)])
            }
            None => {
                let keys: Vec<String> = std::iter::once(record.user_name_key.clone())
                    .chain(record.work_email_key.clone())
                    .collect();
                self.statement(
                    "DELETE FROM scim_deprovisioned WHERE email_key IN \
                     (SELECT value FROM json_each(?1))",
                    &[json_list(&keys)],
                )
            }
        }
    }

    fn bump_directory(&self) -> Result<D1PreparedStatement, Failure> {
        self.statement(
            "UPDATE scim_state SET value = value + 1 WHERE name = 'directory'",
            &[],
        )
    }

    /// Fails the batch when `table`'s row `id` no longer has `version`.
    fn guard(&self, table: &str, id: &str, version: u64) -> Result<D1PreparedStatement, Failure> {
        self.statement(
            &format!(
                "INSERT INTO scim_write_guard (must_not_be_null) SELECT NULL WHERE NOT EXISTS \
                 (SELECT 1 FROM {table} WHERE id = ?1 AND version = ?2)"
            ),
            &[text(id), num(version)],
        )
    }
}

/// A member list too long for one D1 value: the client is told to leave members out (Entra
/// always does).
fn too_many_members(failure: Failure) -> Failure {
    match failure {
        Failure::Internal(why) if why.contains("too big") => Failure::Scim(ScimError::new(
            ScimType::TooMany,
            "the group has too many members to return at once; ask with \
             excludedAttributes=members",
        )),
        other => other,
    }
}

/// Selects a group's members as a JSON array.
const MEMBERS_COLUMN: &str = ", (SELECT json_group_array(json_object('value', m.member_id, \
     'type', m.member_kind)) FROM scim_members m WHERE m.group_id = g.id) AS members";

fn row_meta(row: &UserRow) -> (u64, u64, u64) {
    (int(row.created_ms), int(row.modified_ms), int(row.version))
}

fn keys_of(row: &UserRow) -> Vec<String> {
    std::iter::once(row.user_name_key.clone())
        .chain(row.work_email_key.clone())
        .collect()
}

fn members_json(members: &[MemberRow]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| json!({ "value": m.id, "type": m.kind }))
            .collect(),
    )
}

/// The largest resource stored (members apart): far above any real user or group, well
/// below D1's row limit.
const MAX_RESOURCE: usize = 256 * 1024;

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

fn new_id() -> Result<String, Failure> {
    let global: web_sys::WorkerGlobalScope = wasm_bindgen::JsCast::unchecked_into(js_sys::global());
    global
        .crypto()
        .map(|c| c.random_uuid())
        .map_err(|e| Failure::Internal(format!("crypto: {e:?}")))
}

fn param<'q>(query: &'q [(String, String)], name: &str) -> Option<&'q str> {
    query
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// What `attributes` and `excludedAttributes` ask to be returned (`id` and `schemas` always).
fn projection(query: &[(String, String)]) -> Result<Projection, Failure> {
    Ok(Projection::parse(
        param(query, "attributes"),
        param(query, "excludedAttributes"),
    )?)
}

/// A stored user as it is served and patched (see [`UserRecord::normalised`]).
fn stored_user(row: &UserRow) -> Result<Map<String, Value>, Failure> {
    let resource: Map<String, Value> = serde_json::from_str(&row.resource)
        .map_err(|e| Failure::Internal(format!("stored user `{}`: {e}", row.id)))?;
    Ok(UserRecord::normalised(resource))
}

fn list_params(
    query: &[(String, String)],
    kind: ResourceKind,
) -> Result<(Vec<Condition>, Page), Failure> {
    let conditions = match param(query, "filter") {
        Some(text) => conditions(&Filter::parse(text)?, kind)?,
        None => Vec::new(),
    };
    let page = Page::parse(
        param(query, "startIndex"),
        param(query, "count"),
        DEFAULT_COUNT,
        MAX_RESULTS,
    )?;
    Ok((conditions, page))
}

fn where_clause(conditions: &[Condition], kind: ResourceKind) -> (String, Vec<JsValue>) {
    let prefix = match kind {
        ResourceKind::User => "",
        ResourceKind::Group => "g.",
    };
    let mut parts = Vec::new();
    let mut args = Vec::new();
    for c in conditions {
        let n = args.len() + 1;
        if let Condition::Member(id) = c {
            parts.push(format!(
                "EXISTS (SELECT 1 FROM scim_members m WHERE m.group_id = {prefix}id \
                 AND m.member_id = ?{n})"
            ));
            args.push(text(id));
            continue;
        }
        let (column, value) = match c {
            Condition::Id(v) => ("id", text(v)),
            Condition::UserName(v) => ("user_name_key", text(v)),
            Condition::ExternalId(v) => ("external_id", text(v)),
            Condition::WorkEmail(v) => ("work_email_key", text(v)),
            Condition::DisplayName(v) => ("display_name_key", text(v)),
            Condition::Active(b) => ("active", num(u64::from(*b))),
            // Handled above.
            Condition::Member(_) => continue,
        };
        parts.push(format!("{prefix}{column} = ?{n}"));
        args.push(value);
    }
    if parts.is_empty() {
        (String::new(), args)
    } else {
        (format!(" WHERE {}", parts.join(" AND ")), args)
    }
}

fn list_response(total: u64, page: Page, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": page.start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// How long a deleted user stays refused: longer than any Entra token or session lives,
/// short enough that a reused address is not refused for ever.
pub const DELETED_FOR_MS: u64 = 7 * 24 * 3600 * 1000;

/// SQL for why SCIM refuses the identity with object id `?oid` (lowercase) and email `?email`
/// (lowercase, or NULL): `'disabled'`, `'deleted'` (after `?since`), `'unbound'`, or NULL
/// for none. The object id decides for a user SCIM has bound to it; only when SCIM binds no
/// user to it do addresses count, and only to refuse: a user stored without an object id
/// (disabled, or from before `user_deprovision` required one) with the identity's address
/// cannot be told apart from it.
pub fn refusal_sql(oid: usize, email: usize, since: usize) -> String {
    format!(
        "(CASE \
           WHEN EXISTS (SELECT 1 FROM scim_users WHERE oid = ?{oid} AND active = 0) THEN 'disabled' \
           WHEN EXISTS (SELECT 1 FROM scim_users WHERE oid = ?{oid}) THEN NULL \
           WHEN EXISTS (SELECT 1 FROM scim_deleted_oids \
                        WHERE oid = ?{oid} AND deleted_ms > ?{since}) THEN 'deleted' \
           WHEN EXISTS (SELECT 1 FROM scim_users WHERE oid IS NULL \
                        AND (user_name_key = ?{email} OR work_email_key = ?{email})) THEN 'unbound' \
           WHEN EXISTS (SELECT 1 FROM scim_deprovisioned \
                        WHERE email_key = ?{email} AND deleted_ms > ?{since}) THEN 'deleted' \
         END)"
    )
}

/// Why SCIM refuses the identity with object id `oid` and `email` (see [`refusal_sql`]):
/// with `user_deprovision`, the gateway then refuses their Entra bearer tokens, which it
/// cannot revoke.
pub async fn deprovisioned(
    db: &D1Database,
    oid: &str,
    email: Option<&str>,
    now_ms: u64,
) -> Result<Option<String>, worker::Error> {
    #[derive(Deserialize)]
    struct Why {
        why: Option<String>,
    }
    let why: Option<Why> = db
        .prepare(format!("SELECT {} AS why", refusal_sql(1, 2, 3)))
        .bind(&[
            text(&fold(oid)),
            opt(email.map(fold).as_deref()),
            num(now_ms.saturating_sub(DELETED_FOR_MS)),
        ])?
        .first(None)
        .await?;
    Ok(why.and_then(|w| w.why))
}

//! Users, groups and memberships in D1, and what their changes do to sessions.
//!
//! Every write is one `batch` (a transaction). Updates start with a guard that fails the batch
//! when the resource's `version` moved since it was read, and are then retried from the read:
//! no concurrent write is lost. The effects on sessions ride in the same batch:
//!
//! - `user_deprovision`: a user set inactive or deleted has every session revoked.
//! - `identity_update_behavior: reauth`: a membership change (of the user, or of a group the
//!   user is under) revokes the user's sessions; `group_member_deprovision` does so for
//!   removals.
//! - `automatic`: the stored identity's `groups` become the user's SCIM groups (transitively,
//!   by their policy ids).
//!
//! Deleted users leave their email keys in `scim_deprovisioned` until SCIM provisions them
//! again, so the gateway can refuse their bearer tokens ([`deprovisioned`]).
//!
//! Sessions belong to a SCIM user when their email is the user's `userName` or work email
//! (Entra maps `userPrincipalName` and `mail` there), without case, and came from the
//! provisioned identity provider.

use edge_access_scim::{
    apply, conditions, fold, Condition, Filter, GroupRecord, Page, PatchRequest, ResourceKind,
    ScimError, ScimType, UserRecord,
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

#[derive(Deserialize)]
struct Keys {
    user_name_key: String,
    work_email_key: Option<String>,
}

/// Integral D1 numbers (JavaScript doubles) back to integers.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
fn int(n: f64) -> u64 {
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

/// What a failed batch means: a moved version (retry), a taken unique value, or trouble.
enum BatchError {
    Conflict,
    MissingMember,
    Unique(String),
    Other(worker::Error),
}

fn classify(e: worker::Error) -> BatchError {
    let text = e.to_string();
    if text.contains("scim_write_guard") {
        BatchError::Conflict
    } else if text.contains("scim_member_guard") {
        BatchError::MissingMember
    } else if text.contains("UNIQUE constraint failed: scim_users.user_name_key") {
        BatchError::Unique("userName is already taken".into())
    } else if text.contains("UNIQUE constraint failed: scim_groups.display_name_key") {
        BatchError::Unique("displayName is already taken".into())
    } else {
        BatchError::Other(e)
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

/// What a write changed that sessions care about.
#[derive(Default)]
struct Effects {
    /// Users (their email keys) whose sessions end.
    revoke: Vec<String>,
    /// Users (their email keys) whose stored groups are recomputed.
    regroup: Vec<String>,
    /// The compiled directory (names, policy ids, nesting) changed.
    directory: bool,
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
                "SELECT id, user_name_key, work_email_key, active, resource, version, \
                 created_ms, modified_ms FROM scim_users WHERE id = ?1",
                &[text(&fold(id))],
            )?
            .first(None)
            .await?)
    }

    fn render_user(&self, row: &UserRow) -> Result<Value, Failure> {
        let resource: Map<String, Value> = serde_json::from_str(&row.resource)
            .map_err(|e| Failure::Internal(format!("stored user `{}`: {e}", row.id)))?;
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

    pub async fn get_user(&self, id: &str) -> Result<Value, Failure> {
        let row = self
            .user_row(id)
            .await?
            .ok_or_else(|| not_found(ResourceKind::User, id))?;
        self.render_user(&row)
    }

    pub async fn list_users(&self, query: &[(String, String)]) -> Result<Value, Failure> {
        let (conditions, page) = list_params(query, ResourceKind::User)?;
        let (clause, args) = where_clause(&conditions, ResourceKind::User);
        let rows: Vec<UserRow> = self
            .page(
                "SELECT id, user_name_key, work_email_key, active, resource, version, \
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
            .map(|row| self.render_user(row).map(|r| exclude(r, query)))
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

    pub async fn create_user(&self, body: &Value) -> Result<(Value, String), Failure> {
        let record = UserRecord::from_body(body)?;
        // A taken userName fails the insert (UNIQUE), answered 409.
        let id = new_id()?;
        let resource = Value::Object(record.resource.clone()).to_string();
        let insert = self.statement(
            "INSERT INTO scim_users (id, user_name_key, external_id, work_email_key, \
             display_name_key, active, resource, version, created_ms, modified_ms) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8, ?8)",
            &[
                text(&id),
                text(&record.user_name_key),
                opt(record.external_id.as_deref()),
                opt(record.work_email_key.as_deref()),
                opt(record.display_name_key.as_deref()),
                num(u64::from(record.active)),
                text(&resource),
                num(self.now_ms),
            ],
        )?;
        let keys: Vec<String> = std::iter::once(record.user_name_key.clone())
            .chain(record.work_email_key.clone())
            .collect();
        self.run(vec![insert, self.undelete(&keys)?]).await?;
        let rendered = self.render(
            ResourceKind::User,
            &id,
            record.resource,
            (self.now_ms, self.now_ms, 1),
        );
        let location = format!("{}/Users/{id}", self.base);
        Ok((rendered, location))
    }

    async fn user_name_free(&self, key: &str, except: Option<&str>) -> Result<(), Failure> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let taken: Option<Id> = self
            .statement(
                "SELECT id FROM scim_users WHERE user_name_key = ?1",
                &[text(key)],
            )?
            .first(None)
            .await?;
        match taken {
            Some(t) if Some(t.id.as_str()) != except => Err(uniqueness(format!(
                "userName is already taken (by user `{}`)",
                t.id
            ))),
            _ => Ok(()),
        }
    }

    pub async fn replace_user(&self, id: &str, body: &Value) -> Result<Value, Failure> {
        let record = UserRecord::from_body(body)?;
        self.write_user(id, |_| Ok(record.clone())).await
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
        for _ in 0..ATTEMPTS {
            let row = self
                .user_row(id)
                .await?
                .ok_or_else(|| not_found(ResourceKind::User, id))?;
            let stored: Map<String, Value> = serde_json::from_str(&row.resource)
                .map_err(|e| Failure::Internal(format!("stored user `{}`: {e}", row.id)))?;
            let record = change(&stored)?;
            if record.user_name_key != row.user_name_key {
                self.user_name_free(&record.user_name_key, Some(&row.id))
                    .await?;
            }
            let mut effects = Effects::default();
            let was_active = int(row.active) == 1;
            if self.settings.config.user_deprovision && was_active && !record.active {
                effects.revoke = keys_of(&row);
            }
            let version = int(row.version) + 1;
            let mut batch = vec![self.guard("scim_users", &row.id, int(row.version))?];
            batch.extend(self.revocations(&effects)?);
            if record.active {
                let keys: Vec<String> = std::iter::once(record.user_name_key.clone())
                    .chain(record.work_email_key.clone())
                    .collect();
                batch.push(self.undelete(&keys)?);
            }
            batch.push(self.statement(
                "UPDATE scim_users SET user_name_key = ?2, external_id = ?3, work_email_key = ?4, \
                 display_name_key = ?5, active = ?6, resource = ?7, version = ?8, modified_ms = ?9 \
                 WHERE id = ?1",
                &[
                    text(&row.id),
                    text(&record.user_name_key),
                    opt(record.external_id.as_deref()),
                    opt(record.work_email_key.as_deref()),
                    opt(record.display_name_key.as_deref()),
                    num(u64::from(record.active)),
                    text(&Value::Object(record.resource.clone()).to_string()),
                    num(version),
                    num(self.now_ms),
                ],
            )?);
            match self.db.batch(batch).await {
                Ok(_) => {
                    self.log_effects(&row.id, &effects);
                    return Ok(self.render(
                        ResourceKind::User,
                        &row.id,
                        record.resource,
                        (int(row.created_ms), self.now_ms, version),
                    ));
                }
                Err(e) => match classify(e) {
                    BatchError::Conflict | BatchError::MissingMember => continue,
                    BatchError::Unique(detail) => return Err(uniqueness(detail)),
                    BatchError::Other(e) => return Err(e.into()),
                },
            }
        }
        Err(Failure::Busy)
    }

    pub async fn delete_user(&self, id: &str) -> Result<(), Failure> {
        for _ in 0..ATTEMPTS {
            let row = self
                .user_row(id)
                .await?
                .ok_or_else(|| not_found(ResourceKind::User, id))?;
            let mut effects = Effects::default();
            if self.settings.config.user_deprovision {
                effects.revoke = keys_of(&row);
            }
            // Leaving every group is a membership change too.
            let in_groups = self.memberships_matter(true) && self.groups_of(&row.id).await?;
            if in_groups {
                self.membership_effects(&mut effects, keys_of(&row), true);
            }
            let mut batch = vec![self.guard("scim_users", &row.id, int(row.version))?];
            batch.extend(self.revocations(&effects)?);
            batch.push(self.statement(
                "DELETE FROM scim_members WHERE member_id = ?1",
                &[text(&row.id)],
            )?);
            batch.push(self.statement("DELETE FROM scim_users WHERE id = ?1", &[text(&row.id)])?);
            batch.push(self.statement(
                "INSERT OR REPLACE INTO scim_deprovisioned (email_key, deleted_ms) \
                 SELECT value, ?2 FROM json_each(?1)",
                &[json_list(&keys_of(&row)), num(self.now_ms)],
            )?);
            batch.extend(self.regroupings(&effects)?);
            match self.db.batch(batch).await {
                Ok(_) => {
                    self.log_effects(&row.id, &effects);
                    return Ok(());
                }
                Err(e) => match classify(e) {
                    BatchError::Conflict | BatchError::MissingMember => continue,
                    BatchError::Unique(detail) => return Err(uniqueness(detail)),
                    BatchError::Other(e) => return Err(e.into()),
                },
            }
        }
        Err(Failure::Busy)
    }

    async fn groups_of(&self, user_id: &str) -> Result<bool, Failure> {
        let n: Option<Count> = self
            .statement(
                "SELECT COUNT(*) AS n FROM scim_members WHERE member_id = ?1",
                &[text(user_id)],
            )?
            .first(None)
            .await?;
        Ok(n.is_some_and(|n| int(n.n) > 0))
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
        let with_members = !excludes(query, "members");
        let row = self
            .group_row(id, with_members)
            .await?
            .ok_or_else(|| not_found(ResourceKind::Group, id))?;
        Ok(exclude(self.render_group(&row)?, query))
    }

    pub async fn list_groups(&self, query: &[(String, String)]) -> Result<Value, Failure> {
        let (conditions, page) = list_params(query, ResourceKind::Group)?;
        let (clause, args) = where_clause(&conditions, ResourceKind::Group);
        let members = if excludes(query, "members") {
            ""
        } else {
            MEMBERS_COLUMN
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
            .await?;
        let total = match rows.first() {
            Some(row) => int(row.total),
            None => self.count("scim_groups g", &clause, &args, page).await?,
        };
        let resources = rows
            .iter()
            .map(|row| self.render_group(row).map(|r| exclude(r, query)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_response(total, page, resources))
    }

    pub async fn create_group(&self, body: &Value) -> Result<(Value, String), Failure> {
        let record = GroupRecord::from_body(body)?;
        // A taken displayName fails the insert (UNIQUE), answered 409.
        let id = new_id()?;
        let members = self.members(&record.members, &id).await?;
        let policy = policy_id(&id, record.external_id.as_deref());
        let mut effects = Effects {
            directory: true,
            ..Effects::default()
        };
        let affected = self.users_under(&members, false).await?;
        self.membership_effects(&mut effects, affected, false);
        let mut batch = self.revocations(&effects)?;
        batch.push(self.statement(
            "INSERT INTO scim_groups (id, display_name_key, external_id, policy_id, resource, \
             version, created_ms, modified_ms) VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6)",
            &[
                text(&id),
                text(&record.display_name_key),
                opt(record.external_id.as_deref()),
                text(&policy),
                text(&Value::Object(record.resource.clone()).to_string()),
                num(self.now_ms),
            ],
        )?);
        batch.extend(self.add_members(&id, &members)?);
        batch.extend(self.regroupings(&effects)?);
        batch.push(self.bump_directory()?);
        self.run(batch).await?;
        self.log_effects(&id, &effects);
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

    async fn display_name_free(&self, key: &str, except: Option<&str>) -> Result<(), Failure> {
        #[derive(Deserialize)]
        struct Id {
            id: String,
        }
        let taken: Option<Id> = self
            .statement(
                "SELECT id FROM scim_groups WHERE display_name_key = ?1",
                &[text(key)],
            )?
            .first(None)
            .await?;
        match taken {
            Some(t) if Some(t.id.as_str()) != except => Err(uniqueness(format!(
                "displayName is already taken (by group `{}`)",
                t.id
            ))),
            _ => Ok(()),
        }
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

    fn add_members(
        &self,
        group_id: &str,
        members: &[MemberRow],
    ) -> Result<Vec<D1PreparedStatement>, Failure> {
        let of = |kind: &str| -> Vec<String> {
            members
                .iter()
                .filter(|m| m.kind == kind)
                .map(|m| m.id.clone())
                .collect()
        };
        let mut out = Vec::new();
        for (kind, table) in [("User", "scim_users"), ("Group", "scim_groups")] {
            let ids = of(kind);
            if !ids.is_empty() {
                // Only members that still exist when the batch runs.
                out.push(self.statement(
                    &format!(
                        "INSERT OR IGNORE INTO scim_members (group_id, member_id, member_kind) \
                         SELECT ?1, id, '{kind}' FROM {table} WHERE id IN (SELECT value FROM json_each(?2))"
                    ),
                    &[text(group_id), json_list(&ids)],
                )?);
            }
        }
        Ok(out)
    }

    /// The email keys of the users in `members`, directly or (for groups) transitively.
    async fn users_under(
        &self,
        members: &[MemberRow],
        removal: bool,
    ) -> Result<Vec<String>, Failure> {
        if !self.memberships_matter(removal) {
            return Ok(Vec::new());
        }
        let users: Vec<String> = members
            .iter()
            .filter(|m| m.kind == "User")
            .map(|m| m.id.clone())
            .collect();
        let groups: Vec<String> = members
            .iter()
            .filter(|m| m.kind == "Group")
            .map(|m| m.id.clone())
            .collect();
        if users.is_empty() && groups.is_empty() {
            return Ok(Vec::new());
        }
        let rows: Vec<Keys> = self
            .statement(
                "WITH RECURSIVE down(id) AS ( \
                   SELECT value FROM json_each(?2) \
                   UNION SELECT m.member_id FROM scim_members m JOIN down ON m.group_id = down.id \
                     WHERE m.member_kind = 'Group') \
                 SELECT user_name_key, work_email_key FROM scim_users \
                 WHERE id IN (SELECT value FROM json_each(?1)) \
                    OR id IN (SELECT m.member_id FROM scim_members m JOIN down ON m.group_id = down.id \
                              WHERE m.member_kind = 'User')",
                &[json_list(&users), json_list(&groups)],
            )?
            .all()
            .await?
            .results()?;
        Ok(rows
            .into_iter()
            .flat_map(|k| std::iter::once(k.user_name_key).chain(k.work_email_key))
            .collect())
    }

    pub async fn replace_group(&self, id: &str, body: &Value) -> Result<Value, Failure> {
        let record = GroupRecord::from_body(body)?;
        self.write_group(id, false, |_| Ok(record.clone())).await
    }

    pub async fn patch_group(&self, id: &str, body: &Value) -> Result<(), Failure> {
        let patch = PatchRequest::parse(body)?;
        self.write_group(id, true, |stored| {
            let mut resource = stored.clone();
            apply(&mut resource, &patch)?;
            GroupRecord::from_resource(resource)
        })
        .await
        .map(|_| ())
    }

    /// Reads the group with its members, computes the new record with `change` (given the
    /// stored resource with `members`), and writes the difference guarded by the version.
    ///
    /// A PATCH whose membership changes touch no session (`quick`) checks added members
    /// inside the write batch instead of reading them first: one round trip less.
    async fn write_group(
        &self,
        id: &str,
        quick: bool,
        change: impl Fn(&Map<String, Value>) -> Result<GroupRecord, ScimError>,
    ) -> Result<Value, Failure> {
        let quick = quick && !self.memberships_matter(false);
        for _ in 0..ATTEMPTS {
            let row = self
                .group_row(id, true)
                .await?
                .ok_or_else(|| not_found(ResourceKind::Group, id))?;
            let mut stored: Map<String, Value> = serde_json::from_str(&row.resource)
                .map_err(|e| Failure::Internal(format!("stored group `{}`: {e}", row.id)))?;
            let before: Vec<MemberRow> =
                serde_json::from_str::<Vec<Value>>(row.members.as_deref().unwrap_or("[]"))
                    .map_err(|e| Failure::Internal(format!("members of `{}`: {e}", row.id)))?
                    .iter()
                    .filter_map(|m| {
                        Some(MemberRow {
                            id: m.get("value")?.as_str()?.to_owned(),
                            kind: m.get("type")?.as_str()?.to_owned(),
                        })
                    })
                    .collect();
            stored.insert(
                "members".into(),
                Value::Array(
                    before
                        .iter()
                        .map(|m| json!({ "value": m.id, "type": m.kind }))
                        .collect(),
                ),
            );
            let record = change(&stored)?;
            if record.display_name_key != row.display_name_key {
                self.display_name_free(&record.display_name_key, Some(&row.id))
                    .await?;
            }
            let after_ids: Vec<String> = record.members.iter().map(|m| fold(m)).collect();
            let added_ids: Vec<String> = after_ids
                .iter()
                .filter(|id| !before.iter().any(|b| &&b.id == id))
                .cloned()
                .collect();
            if added_ids.contains(&row.id) {
                return Err(Failure::Scim(ScimError::new(
                    ScimType::InvalidValue,
                    format!("group `{}` cannot be a member of itself", row.id),
                )));
            }
            let added = if quick {
                Vec::new()
            } else {
                self.members(&added_ids, &row.id).await?
            };
            let removed: Vec<MemberRow> = before
                .into_iter()
                .filter(|b| !after_ids.contains(&b.id))
                .collect();
            let policy = policy_id(&row.id, record.external_id.as_deref());
            let mut effects = Effects {
                directory: record.display_name_key != row.display_name_key
                    || policy != row.policy_id
                    || added.iter().chain(&removed).any(|m| m.kind == "Group"),
                ..Effects::default()
            };
            let added_users = self.users_under(&added, false).await?;
            let removed_users = self.users_under(&removed, true).await?;
            self.membership_effects(&mut effects, added_users, false);
            self.membership_effects(&mut effects, removed_users, true);
            if policy != row.policy_id {
                // Everyone under the group is now in a group with another policy id.
                let all = self
                    .users_under(
                        &[MemberRow {
                            id: row.id.clone(),
                            kind: "Group".into(),
                        }],
                        false,
                    )
                    .await?;
                self.membership_effects(&mut effects, all, false);
            }
            let version = int(row.version) + 1;
            let mut batch = vec![self.guard("scim_groups", &row.id, int(row.version))?];
            batch.extend(self.revocations(&effects)?);
            batch.push(self.statement(
                "UPDATE scim_groups SET display_name_key = ?2, external_id = ?3, policy_id = ?4, \
                 resource = ?5, version = ?6, modified_ms = ?7 WHERE id = ?1",
                &[
                    text(&row.id),
                    text(&record.display_name_key),
                    opt(record.external_id.as_deref()),
                    text(&policy),
                    text(&Value::Object(record.resource.clone()).to_string()),
                    num(version),
                    num(self.now_ms),
                ],
            )?);
            if !removed.is_empty() {
                let ids: Vec<String> = removed.iter().map(|m| m.id.clone()).collect();
                batch.push(self.statement(
                    "DELETE FROM scim_members WHERE group_id = ?1 \
                     AND member_id IN (SELECT value FROM json_each(?2))",
                    &[text(&row.id), json_list(&ids)],
                )?);
            }
            if quick && !added_ids.is_empty() {
                batch.extend(self.add_unchecked_members(&row.id, &added_ids)?);
            } else {
                batch.extend(self.add_members(&row.id, &added)?);
            }
            batch.extend(self.regroupings(&effects)?);
            if effects.directory {
                batch.push(self.bump_directory()?);
            }
            match self.db.batch(batch).await {
                Ok(_) => {
                    self.log_effects(&row.id, &effects);
                    let mut resource = record.resource;
                    let members: Vec<MemberRow> = record
                        .members
                        .iter()
                        .map(|m| fold(m))
                        .filter_map(|m| {
                            added
                                .iter()
                                .find(|a| a.id == m)
                                .map(|a| MemberRow {
                                    id: a.id.clone(),
                                    kind: a.kind.clone(),
                                })
                                .or_else(|| {
                                    stored_member(&stored, &m).map(|kind| MemberRow {
                                        id: m.clone(),
                                        kind,
                                    })
                                })
                        })
                        .collect();
                    resource.insert("members".into(), members_json(&members));
                    return Ok(self.render(
                        ResourceKind::Group,
                        &row.id,
                        resource,
                        (int(row.created_ms), self.now_ms, version),
                    ));
                }
                Err(e) => match classify(e) {
                    BatchError::Conflict => continue,
                    BatchError::MissingMember => {
                        // Which one, precisely (or none any more: then try again).
                        self.members(&added_ids, &row.id).await?;
                        continue;
                    }
                    BatchError::Unique(detail) => return Err(uniqueness(detail)),
                    BatchError::Other(e) => return Err(e.into()),
                },
            }
        }
        Err(Failure::Busy)
    }

    /// Adds members whose kinds were not read: the batch fails (`scim_member_guard`) unless
    /// every id is a user or a group, and the directory generation moves if a group is added.
    fn add_unchecked_members(
        &self,
        group_id: &str,
        ids: &[String],
    ) -> Result<Vec<D1PreparedStatement>, Failure> {
        let list = json_list(ids);
        Ok(vec![
            self.statement(
                "INSERT INTO scim_member_guard (must_not_be_null) SELECT NULL WHERE \
                 (SELECT COUNT(*) FROM scim_users WHERE id IN (SELECT value FROM json_each(?1))) + \
                 (SELECT COUNT(*) FROM scim_groups WHERE id IN (SELECT value FROM json_each(?1))) < ?2",
                &[list.clone(), num(ids.len() as u64)],
            )?,
            self.statement(
                "INSERT OR IGNORE INTO scim_members (group_id, member_id, member_kind) \
                 SELECT ?1, id, 'User' FROM scim_users WHERE id IN (SELECT value FROM json_each(?2)) \
                 UNION ALL SELECT ?1, id, 'Group' FROM scim_groups WHERE id IN (SELECT value FROM json_each(?2))",
                &[text(group_id), list.clone()],
            )?,
            self.statement(
                "UPDATE scim_state SET value = value + 1 WHERE name = 'directory' \
                 AND EXISTS (SELECT 1 FROM scim_groups WHERE id IN (SELECT value FROM json_each(?1)))",
                &[list],
            )?,
        ])
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), Failure> {
        for _ in 0..ATTEMPTS {
            let row = self
                .group_row(id, false)
                .await?
                .ok_or_else(|| not_found(ResourceKind::Group, id))?;
            let mut effects = Effects {
                directory: true,
                ..Effects::default()
            };
            let under = self
                .users_under(
                    &[MemberRow {
                        id: row.id.clone(),
                        kind: "Group".into(),
                    }],
                    true,
                )
                .await?;
            self.membership_effects(&mut effects, under, true);
            let mut batch = vec![self.guard("scim_groups", &row.id, int(row.version))?];
            batch.extend(self.revocations(&effects)?);
            batch.push(self.statement(
                "DELETE FROM scim_members WHERE group_id = ?1 OR member_id = ?1",
                &[text(&row.id)],
            )?);
            batch.push(self.statement("DELETE FROM scim_groups WHERE id = ?1", &[text(&row.id)])?);
            batch.extend(self.regroupings(&effects)?);
            batch.push(self.bump_directory()?);
            match self.db.batch(batch).await {
                Ok(_) => {
                    self.log_effects(&row.id, &effects);
                    return Ok(());
                }
                Err(e) => match classify(e) {
                    BatchError::Conflict | BatchError::MissingMember => continue,
                    BatchError::Unique(detail) => return Err(uniqueness(detail)),
                    BatchError::Other(e) => return Err(e.into()),
                },
            }
        }
        Err(Failure::Busy)
    }

    // ---- effects -----------------------------------------------------------------------

    /// Records what a membership change of the users with `keys` does under the provider's
    /// `scim_config`.
    /// Whether a membership change (a removal, or an addition) touches sessions at all.
    fn memberships_matter(&self, removal: bool) -> bool {
        let config = &self.settings.config;
        config.identity_update_behavior != IdentityUpdateBehavior::NoAction
            || (removal && config.group_member_deprovision)
    }

    fn membership_effects(&self, effects: &mut Effects, keys: Vec<String>, removal: bool) {
        if keys.is_empty() {
            return;
        }
        let config = &self.settings.config;
        let revoke = config.identity_update_behavior == IdentityUpdateBehavior::Reauth
            || (removal && config.group_member_deprovision);
        if revoke {
            effects.revoke.extend(keys);
        } else if config.identity_update_behavior == IdentityUpdateBehavior::Automatic {
            effects.regroup.extend(keys);
        }
    }

    /// Revokes the live sessions of `effects.revoke` (runs before the write in the batch).
    fn revocations(&self, effects: &Effects) -> Result<Vec<D1PreparedStatement>, Failure> {
        if effects.revoke.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![self.statement(
            "UPDATE sessions SET revoked_ms = ?1 WHERE revoked_ms IS NULL \
             AND json_extract(identity, '$.idp_id') = ?2 \
             AND email COLLATE NOCASE IN (SELECT value FROM json_each(?3))",
            &[
                num(self.now_ms),
                text(&self.settings.idp_id),
                json_list(&dedup(&effects.revoke)),
            ],
        )?])
    }

    /// Sets the stored groups of `effects.regroup`'s live sessions to their SCIM groups
    /// (runs after the write in the batch, so it sees the new memberships).
    fn regroupings(&self, effects: &Effects) -> Result<Vec<D1PreparedStatement>, Failure> {
        let keys: Vec<String> = dedup(&effects.regroup)
            .into_iter()
            .filter(|k| !effects.revoke.contains(k))
            .collect();
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        Ok(vec![self.statement(
            "UPDATE sessions SET identity = json_set(identity, '$.groups', json(( \
               WITH RECURSIVE up(g) AS ( \
                 SELECT m.group_id FROM scim_members m JOIN scim_users u ON u.id = m.member_id \
                   WHERE u.user_name_key = lower(sessions.email) OR u.work_email_key = lower(sessions.email) \
                 UNION SELECT m.group_id FROM scim_members m JOIN up ON m.member_id = up.g) \
               SELECT json_group_array(g.policy_id) FROM up JOIN scim_groups g ON g.id = up.g))) \
             WHERE revoked_ms IS NULL AND expires_ms > ?1 \
             AND json_extract(identity, '$.idp_id') = ?2 \
             AND email COLLATE NOCASE IN (SELECT value FROM json_each(?3))",
            &[
                num(self.now_ms),
                text(&self.settings.idp_id),
                json_list(&keys),
            ],
        )?])
    }

    /// Forgets that users with these email keys were deleted (they are provisioned again).
    fn undelete(&self, keys: &[String]) -> Result<D1PreparedStatement, Failure> {
        self.statement(
            "DELETE FROM scim_deprovisioned WHERE email_key IN (SELECT value FROM json_each(?1))",
            &[json_list(keys)],
        )
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

    async fn run(&self, batch: Vec<D1PreparedStatement>) -> Result<(), Failure> {
        match self.db.batch(batch).await {
            Ok(_) => Ok(()),
            Err(e) => match classify(e) {
                BatchError::Unique(detail) => Err(uniqueness(detail)),
                BatchError::Conflict | BatchError::MissingMember => Err(Failure::Busy),
                BatchError::Other(e) => Err(e.into()),
            },
        }
    }

    fn log_effects(&self, id: &str, effects: &Effects) {
        if !effects.revoke.is_empty() {
            crate::log::event(
                "scim_sessions_revoked",
                &[
                    ("resource", id),
                    ("users", &dedup(&effects.revoke).len().to_string()),
                ],
            );
        }
        if !effects.regroup.is_empty() {
            crate::log::event(
                "scim_identities_updated",
                &[
                    ("resource", id),
                    ("users", &dedup(&effects.regroup).len().to_string()),
                ],
            );
        }
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

fn dedup(keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(keys.len());
    for k in keys {
        if !out.contains(k) {
            out.push(k.clone());
        }
    }
    out
}

fn stored_member(stored: &Map<String, Value>, id: &str) -> Option<String> {
    stored
        .get("members")?
        .as_array()?
        .iter()
        .find(|m| m.get("value").and_then(Value::as_str) == Some(id))?
        .get("type")?
        .as_str()
        .map(str::to_owned)
}

fn members_json(members: &[MemberRow]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| json!({ "value": m.id, "type": m.kind }))
            .collect(),
    )
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

fn excludes(query: &[(String, String)], attribute: &str) -> bool {
    param(query, "excludedAttributes").is_some_and(|list| {
        list.split(',')
            .any(|a| a.trim().eq_ignore_ascii_case(attribute))
    })
}

/// Drops `excludedAttributes` (never `id` or `schemas`, which are always returned).
fn exclude(mut resource: Value, query: &[(String, String)]) -> Value {
    if let (Some(list), Value::Object(map)) = (param(query, "excludedAttributes"), &mut resource) {
        for name in list.split(',').map(str::trim) {
            if name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("schemas") {
                continue;
            }
            map.retain(|k, _| !k.eq_ignore_ascii_case(name));
        }
    }
    resource
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
        let (column, value) = match c {
            Condition::Id(v) => ("id", text(v)),
            Condition::UserName(v) => ("user_name_key", text(v)),
            Condition::ExternalId(v) => ("external_id", text(v)),
            Condition::WorkEmail(v) => ("work_email_key", text(v)),
            Condition::DisplayName(v) => ("display_name_key", text(v)),
            Condition::Active(b) => ("active", num(u64::from(*b))),
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

/// Whether SCIM disabled or deleted the user with this email (folded): with `user_deprovision`,
/// the gateway then refuses their Entra bearer tokens, which it cannot revoke.
pub async fn deprovisioned(db: &D1Database, email: &str) -> Result<bool, worker::Error> {
    #[derive(Deserialize)]
    struct Hit {
        #[allow(dead_code)]
        hit: f64,
    }
    let key = fold(email);
    let hit: Option<Hit> = db
        .prepare(
            "SELECT 1 AS hit FROM scim_users WHERE active = 0 \
               AND (user_name_key = ?1 OR work_email_key = ?1) \
               AND NOT EXISTS (SELECT 1 FROM scim_users WHERE active = 1 \
                 AND (user_name_key = ?1 OR work_email_key = ?1)) \
             UNION ALL SELECT 1 AS hit FROM scim_deprovisioned WHERE email_key = ?1 LIMIT 1",
        )
        .bind(&[text(&key)])?
        .first(None)
        .await?;
    Ok(hit.is_some())
}

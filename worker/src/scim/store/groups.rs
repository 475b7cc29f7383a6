//! `scim_groups` and `scim_members`: reads, writes, and member changes.

use edge_access_scim::{
    apply, fold, group_policy_id, split_members, GroupRecord, MemberChange, PatchRequest,
    ResourceKind, ScimError, ScimType,
};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use worker::D1PreparedStatement;

use super::batch::{classify, retry, Attempt, BatchError};
use super::effects::{Effects, Touched};
use super::query::{list_params, projection, where_clause};
use super::render::{list_response, Meta};
use super::{new_id, not_found, stored_text, Failure, Store};
use crate::d1::{self, Binds};

/// The columns of a group row, the group selected as `g`.
const COLUMNS: &str = "g.id, g.display_name_key, g.policy_id, g.resource, g.version, \
                       g.created_ms, g.modified_ms";

/// Selects a group's members as a JSON array.
const MEMBERS_COLUMN: &str = ", (SELECT json_group_array(json_object('value', m.member_id, \
     'type', m.member_kind)) FROM scim_members m WHERE m.group_id = g.id) AS members";

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

impl GroupRow {
    /// The group as stored (members apart).
    fn resource(&self) -> Result<Map<String, Value>, Failure> {
        serde_json::from_str(&self.resource)
            .map_err(|e| Failure::Internal(format!("stored group `{}`: {e}", self.id)))
    }
}

#[derive(Deserialize)]
struct MemberRow {
    id: String,
    kind: String,
}

/// The id policies name a group by (see [`group_policy_id`]); the server's id when neither
/// is a GUID.
fn policy_id(id: &str, external_id: Option<&str>) -> String {
    group_policy_id(id, external_id).unwrap_or_else(|| id.to_owned())
}

impl Store<'_> {
    async fn group_row(&self, id: &str, members: bool) -> Result<Option<GroupRow>, Failure> {
        let members = if members { MEMBERS_COLUMN } else { "" };
        let mut binds = Binds::default();
        let id = binds.text(&fold(id));
        Ok(self
            .statement(
                &format!("SELECT {COLUMNS}{members} FROM scim_groups g WHERE g.id = {id}"),
                &binds,
            )?
            .first(None)
            .await?)
    }

    fn render_group(&self, row: &GroupRow) -> Result<Value, Failure> {
        let mut resource = row.resource()?;
        if let Some(members) = &row.members {
            let members: Value = serde_json::from_str(members)
                .map_err(|e| Failure::Internal(format!("members of `{}`: {e}", row.id)))?;
            resource.insert("members".into(), members);
        }
        let meta = Meta {
            created: d1::millis(row.created_ms),
            modified: d1::millis(row.modified_ms),
            version: d1::int(row.version),
        };
        Ok(self.render(ResourceKind::Group, &row.id, resource, meta))
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
        let mut binds = Binds::default();
        let clause = where_clause(&conditions, ResourceKind::Group, &mut binds);
        let members = if projection.returns("members") {
            MEMBERS_COLUMN
        } else {
            ""
        };
        let rows: Vec<GroupRow> = self
            .page(
                &format!("SELECT {COLUMNS}{members}, COUNT(*) OVER () AS total FROM scim_groups g"),
                &clause,
                "g.created_ms, g.id",
                &binds,
                page,
            )
            .await
            .map_err(too_many_members)?;
        let total = match rows.first() {
            Some(row) => d1::int(row.total),
            None => self.count("scim_groups g", &clause, &binds, page).await?,
        };
        let resources = rows
            .iter()
            .map(|row| self.render_group(row).map(|r| projection.apply(r)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(list_response(total, page.start_index, resources))
    }

    pub async fn create_group(&self, body: &Value) -> Result<(Value, String), Failure> {
        let record = GroupRecord::from_body(body)?;
        // A taken displayName (or externalId) fails the insert (UNIQUE), answered 409.
        let id = new_id()?;
        // The members, folded and without duplicates, in request order; checked inside the
        // batch, which also answers their kinds.
        let mut ids: Vec<String> = Vec::with_capacity(record.members.len());
        for member in record.members.iter().map(|m| fold(m)) {
            if member == id {
                return Err(self_member(&id));
            }
            if !ids.contains(&member) {
                ids.push(member);
            }
        }
        let policy = policy_id(&id, record.external_id.as_deref());
        let mut effects = Effects::new(true);
        self.touch(&mut effects, Touched::Members(&ids), false)?;
        let mut binds = Binds::default();
        let (id_at, name, external, policy_at, resource, now) = (
            binds.text(&id),
            binds.text(&record.display_name_key),
            binds.opt(record.external_id.as_deref()),
            binds.text(&policy),
            binds.text(&stored_text(&record.resource)?),
            binds.millis(self.now),
        );
        let insert = self.statement(
            &format!(
                "INSERT INTO scim_groups (id, display_name_key, external_id, policy_id, \
                 resource, version, created_ms, modified_ms) \
                 VALUES ({id_at}, {name}, {external}, {policy_at}, {resource}, 1, {now}, {now})"
            ),
            &binds,
        )?;
        let mut write = Vec::new();
        if !ids.is_empty() {
            // First, so that a member that does not exist is refused before a taken name,
            // as when members were read before the batch.
            write.push(self.members_exist(&ids)?);
        }
        write.push(insert);
        if !ids.is_empty() {
            write.push(self.insert_members(&id, &ids)?);
            let mut binds = Binds::default();
            let (group, list) = (binds.text(&id), binds.json_list(&ids));
            write.push(self.statement(
                &format!(
                    "SELECT m.member_id AS id, m.member_kind AS kind \
                     FROM json_each({list}) j \
                     JOIN scim_members m ON m.group_id = {group} AND m.member_id = j.value \
                     ORDER BY j.key"
                ),
                &binds,
            )?);
        }
        let batch = self.around(None, effects, write)?;
        let inserted = batch.last_written();
        let results = match self.submit(&id, batch).await.map_err(classify) {
            Ok(results) => results,
            Err(BatchError::MissingMember) => {
                // Which one, precisely (or none any more: the write raced a create).
                self.members(&record.members, &id).await?;
                return Err(Failure::Busy);
            }
            Err(e) => return Err(e.into()),
        };
        let members: Vec<MemberRow> = match inserted.and_then(|at| results.get(at)) {
            Some(rows) if !ids.is_empty() => rows.results()?,
            _ => Vec::new(),
        };
        let mut resource = record.resource;
        resource.insert("members".into(), members_json(&members));
        let meta = Meta {
            created: self.now,
            modified: self.now,
            version: 1,
        };
        let rendered = self.render(ResourceKind::Group, &id, resource, meta);
        Ok((rendered, self.location(ResourceKind::Group, &id)))
    }

    /// The members named by `ids` with their kind, in order; an id that is neither a user
    /// nor a group, or the group itself, is an `invalidValue` error.
    async fn members(&self, ids: &[String], group_id: &str) -> Result<Vec<MemberRow>, Failure> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let folded: Vec<String> = ids.iter().map(|i| fold(i)).collect();
        let mut binds = Binds::default();
        let list = binds.json_list(&folded);
        let found: Vec<MemberRow> = self
            .statement(
                &format!(
                    "SELECT id, 'User' AS kind FROM scim_users \
                     WHERE id IN (SELECT value FROM json_each({list})) \
                     UNION ALL SELECT id, 'Group' AS kind FROM scim_groups \
                     WHERE id IN (SELECT value FROM json_each({list}))"
                ),
                &binds,
            )?
            .all()
            .await?
            .results()?;
        let mut out = Vec::new();
        for (id, original) in folded.iter().zip(ids) {
            if id == group_id {
                return Err(self_member(group_id));
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
        if rest.operations.is_empty() && self.change_members(id, &changes).await? {
            return Ok(());
        }
        self.write_group(id, |stored| {
            let mut resource = stored.clone();
            apply(&mut resource, &rest)?;
            Ok((GroupRecord::from_resource(resource)?, changes.clone()))
        })
        .await
        .map(|_| ())
    }

    /// A PATCH that changes members only, in one batch without reading the group first:
    /// nothing it writes was computed from the stored resource, so its guard only asks that
    /// the group exist, and added members are checked inside the batch as in
    /// [`Store::write_group`]. `false` when that batch failed on its guards (the group is
    /// gone, an added member is neither a user nor a group, or the group adds itself):
    /// nothing was written, and the caller takes the path that reads the group and says
    /// precisely why.
    async fn change_members(&self, id: &str, changes: &[MemberChange]) -> Result<bool, Failure> {
        let id = fold(id);
        if changes.iter().any(|c| c.added().contains(&id)) {
            return Ok(false);
        }
        let mut effects = Effects::new(false);
        self.touch_changes(&mut effects, &id, changes)?;
        let mut binds = Binds::default();
        let (id_at, now) = (binds.text(&id), binds.millis(self.now));
        let mut write = vec![self.statement(
            &format!(
                "UPDATE scim_groups SET version = version + 1, modified_ms = {now} \
                 WHERE id = {id_at}"
            ),
            &binds,
        )?];
        for change in changes {
            write.extend(self.member_change(&id, change)?);
        }
        let guard = self.resource_guard(&id, None)?;
        let batch = self.around(Some(guard), effects, write)?;
        match self.submit(&id, batch).await.map_err(classify) {
            Ok(_) => Ok(true),
            Err(BatchError::Conflict | BatchError::MissingMember) => Ok(false),
            Err(BatchError::Failed(failure)) => Err(failure),
        }
    }

    /// Records the users that `changes` to group `group_id`'s members touch.
    fn touch_changes(
        &self,
        effects: &mut Effects,
        group_id: &str,
        changes: &[MemberChange],
    ) -> Result<(), Failure> {
        for change in changes {
            match change {
                MemberChange::Add(ids) => {
                    self.touch(effects, Touched::Members(ids), false)?;
                }
                MemberChange::Remove(ids) => {
                    self.touch(effects, Touched::Members(ids), true)?;
                }
                // Everyone under the group counts as removed (those who stay are touched
                // too: a replace does not say who stays).
                MemberChange::RemoveAll => {
                    self.touch(effects, Touched::MembersOf(group_id), true)?;
                }
                MemberChange::Replace(ids) => {
                    self.touch(effects, Touched::MembersOf(group_id), true)?;
                    self.touch(effects, Touched::Members(ids), false)?;
                }
            }
        }
        Ok(())
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
        retry(async || {
            let row = self
                .group_row(id, false)
                .await?
                .ok_or_else(|| not_found(ResourceKind::Group, id))?;
            let (record, changes) = change(&row.resource()?)?;
            if record.display_name_key != row.display_name_key {
                self.name_free(ResourceKind::Group, &record.display_name_key, &row.id)
                    .await?;
            }
            let added: Vec<String> = changes
                .iter()
                .flat_map(|c| c.added().iter().cloned())
                .collect();
            if added.contains(&row.id) {
                return Err(self_member(&row.id));
            }
            let policy = policy_id(&row.id, record.external_id.as_deref());
            let mut effects = Effects::new(
                record.display_name_key != row.display_name_key || policy != row.policy_id,
            );
            self.touch_changes(&mut effects, &row.id, &changes)?;
            if policy != row.policy_id {
                // Everyone under the group is now in a group with another policy id.
                self.touch(&mut effects, Touched::MembersOf(&row.id), false)?;
            }
            let mut binds = Binds::default();
            let (id_at, name, external, policy_at, resource, now) = (
                binds.text(&row.id),
                binds.text(&record.display_name_key),
                binds.opt(record.external_id.as_deref()),
                binds.text(&policy),
                binds.text(&stored_text(&record.resource)?),
                binds.millis(self.now),
            );
            let mut write = vec![self.statement(
                &format!(
                    "UPDATE scim_groups SET display_name_key = {name}, external_id = {external}, \
                     policy_id = {policy_at}, resource = {resource}, version = version + 1, \
                     modified_ms = {now} WHERE id = {id_at}"
                ),
                &binds,
            )?];
            for change in &changes {
                write.extend(self.member_change(&row.id, change)?);
            }
            let guard = self.resource_guard(&row.id, Some(&row.resource))?;
            let batch = self.around(Some(guard), effects, write)?;
            match self.submit(&row.id, batch).await.map_err(classify) {
                Ok(_) => Ok(Attempt::Done(row.id)),
                Err(BatchError::Conflict) => Ok(Attempt::Again),
                Err(BatchError::MissingMember) => {
                    // Which one, precisely (or none any more: then try again).
                    self.members(&added, &row.id).await?;
                    Ok(Attempt::Again)
                }
                Err(BatchError::Failed(failure)) => Err(failure),
            }
        })
        .await
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
            let mut binds = Binds::default();
            let ids = binds.json_list(ids);
            self.statement(
                &format!(
                    "UPDATE scim_state SET value = value + 1 WHERE name = 'directory' \
                     AND EXISTS (SELECT 1 FROM scim_groups \
                                 WHERE id IN (SELECT value FROM json_each({ids})))"
                ),
                &binds,
            )
        };
        match change {
            MemberChange::Remove(ids) if !ids.is_empty() => {
                out.push(groups_moved(ids)?);
                let mut binds = Binds::default();
                let (group, ids) = (binds.text(group_id), binds.json_list(ids));
                out.push(self.statement(
                    &format!(
                        "DELETE FROM scim_members WHERE group_id = {group} \
                         AND member_id IN (SELECT value FROM json_each({ids}))"
                    ),
                    &binds,
                )?);
            }
            MemberChange::RemoveAll | MemberChange::Replace(_) => {
                let mut binds = Binds::default();
                let group = binds.text(group_id);
                out.push(self.statement(
                    &format!(
                        "UPDATE scim_state SET value = value + 1 WHERE name = 'directory' \
                         AND EXISTS (SELECT 1 FROM scim_members \
                                     WHERE group_id = {group} AND member_kind = 'Group')"
                    ),
                    &binds,
                )?);
                out.push(self.statement(
                    &format!("DELETE FROM scim_members WHERE group_id = {group}"),
                    &binds,
                )?);
            }
            MemberChange::Remove(_) | MemberChange::Add(_) => {}
        }
        let added = change.added();
        if !added.is_empty() {
            out.push(self.members_exist(added)?);
            out.push(self.insert_members(group_id, added)?);
            out.push(groups_moved(added)?);
        }
        Ok(out)
    }

    /// Fails the batch (`scim_member_guard`) unless each of `added` is a user or a group.
    fn members_exist(&self, added: &[String]) -> Result<D1PreparedStatement, Failure> {
        let mut binds = Binds::default();
        let (list, count) = (binds.json_list(added), binds.number(added.len() as u64));
        self.statement(
            &format!(
                "INSERT INTO scim_member_guard (must_not_be_null) SELECT NULL WHERE \
                 (SELECT COUNT(*) FROM scim_users \
                  WHERE id IN (SELECT value FROM json_each({list}))) + \
                 (SELECT COUNT(*) FROM scim_groups \
                  WHERE id IN (SELECT value FROM json_each({list}))) < {count}"
            ),
            &binds,
        )
    }

    /// Makes `added` (users and groups) members of group `group_id`, each with its kind.
    fn insert_members(
        &self,
        group_id: &str,
        added: &[String],
    ) -> Result<D1PreparedStatement, Failure> {
        let mut binds = Binds::default();
        let (group, list) = (binds.text(group_id), binds.json_list(added));
        self.statement(
            &format!(
                "INSERT OR IGNORE INTO scim_members (group_id, member_id, member_kind) \
                 SELECT {group}, id, 'User' FROM scim_users \
                 WHERE id IN (SELECT value FROM json_each({list})) \
                 UNION ALL SELECT {group}, id, 'Group' FROM scim_groups \
                 WHERE id IN (SELECT value FROM json_each({list}))"
            ),
            &binds,
        )
    }

    pub async fn delete_group(&self, id: &str) -> Result<(), Failure> {
        retry(async || {
            let row = self
                .group_row(id, false)
                .await?
                .ok_or_else(|| not_found(ResourceKind::Group, id))?;
            let mut effects = Effects::new(true);
            self.touch(&mut effects, Touched::MembersOf(&row.id), true)?;
            let mut binds = Binds::default();
            let id_at = binds.text(&row.id);
            let write = vec![
                self.statement(
                    &format!(
                        "DELETE FROM scim_members WHERE group_id = {id_at} OR member_id = {id_at}"
                    ),
                    &binds,
                )?,
                self.statement(
                    &format!("DELETE FROM scim_groups WHERE id = {id_at}"),
                    &binds,
                )?,
            ];
            // Nothing here was computed from the group's attributes: it only has to be there.
            let guard = self.resource_guard(&row.id, None)?;
            let batch = self.around(Some(guard), effects, write)?;
            Attempt::of(self.submit(&row.id, batch).await)
        })
        .await
    }

    /// Fails the batch when group `id` is gone or, with `resource`, no longer stores it.
    fn resource_guard(
        &self,
        id: &str,
        resource: Option<&str>,
    ) -> Result<D1PreparedStatement, Failure> {
        let mut binds = Binds::default();
        let id = binds.text(id);
        let same = match resource {
            Some(resource) => format!(" AND resource = {}", binds.text(resource)),
            None => String::new(),
        };
        self.statement(
            &format!(
                "INSERT INTO scim_write_guard (must_not_be_null) SELECT NULL WHERE NOT EXISTS \
                 (SELECT 1 FROM scim_groups WHERE id = {id}{same})"
            ),
            &binds,
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

fn self_member(group_id: &str) -> Failure {
    Failure::Scim(ScimError::new(
        ScimType::InvalidValue,
        format!("group `{group_id}` cannot be a member of itself"),
    ))
}

fn members_json(members: &[MemberRow]) -> Value {
    Value::Array(
        members
            .iter()
            .map(|m| json!({ "value": m.id, "type": m.kind }))
            .collect(),
    )
}

//! A group PATCH split into its member changes and the rest: members are kept as rows, not
//! in the stored resource, so a server turns each change into inserts and deletes without
//! reading every member of a large group.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::patch::{Operation, OperationKind, PatchRequest};
use crate::path::AttrPath;
use crate::GROUP_SCHEMA;

/// One change to a group's members, in request order. Ids are folded (server ids are
/// lowercase GUIDs) and without duplicates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberChange {
    /// Add these members (already present ones stay).
    Add(Vec<String>),
    /// Remove these members (absent ones are ignored).
    Remove(Vec<String>),
    /// Remove every member.
    RemoveAll,
    /// Make these the members.
    Replace(Vec<String>),
}

impl MemberChange {
    /// The ids this change adds.
    pub fn added(&self) -> &[String] {
        match self {
            MemberChange::Add(ids) | MemberChange::Replace(ids) => ids,
            MemberChange::Remove(_) | MemberChange::RemoveAll => &[],
        }
    }
}

fn is_members(path: &AttrPath) -> bool {
    path.attr.eq_ignore_ascii_case("members")
        && path
            .urn
            .as_deref()
            .is_none_or(|urn| urn.eq_ignore_ascii_case(GROUP_SCHEMA))
}

/// Member ids from a `members` value: an array of `{"value": id, …}` (a single object is
/// taken as one); `$ref`, `display` and `type` are ignored.
pub fn member_ids(value: &Value) -> Result<Vec<String>, ScimError> {
    let items = match value {
        Value::Array(items) => items.as_slice(),
        Value::Object(_) => std::slice::from_ref(value),
        _ => {
            return Err(ScimError::new(
                ScimType::InvalidValue,
                "`members` must be an array of objects with a `value`",
            ))
        }
    };
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        match item.as_object().and_then(|m| crate::attribute(m, "value")) {
            Some(Value::String(id)) if !id.trim().is_empty() => {
                let id = crate::fold(id.trim());
                if !ids.contains(&id) {
                    ids.push(id);
                }
            }
            _ => {
                return Err(ScimError::new(
                    ScimType::InvalidValue,
                    format!("`members[{i}].value` must be a member id"),
                ))
            }
        }
    }
    Ok(ids)
}

/// Splits `patch` into the operations on other attributes (for [`crate::apply`]) and the
/// member changes.
///
/// # Errors
/// `invalidValue` for member values without ids, `invalidPath` for member selections other
/// than `members[value eq "…"]` removes.
pub fn split_members(patch: &PatchRequest) -> Result<(PatchRequest, Vec<MemberChange>), ScimError> {
    let mut rest = Vec::new();
    let mut changes = Vec::new();
    for (i, op) in patch.operations.iter().enumerate() {
        let at =
            |e: ScimError| ScimError::new(e.scim_type, format!("Operations[{i}]: {}", e.detail));
        match (&op.path, op.kind, &op.value) {
            (Some(path), kind, value) if is_members(path) => {
                let change = match (&path.filter, &path.sub_attr, kind, value) {
                    (None, None, OperationKind::Add, Some(v)) => {
                        MemberChange::Add(member_ids(v).map_err(at)?)
                    }
                    (None, None, OperationKind::Replace, Some(v)) => {
                        MemberChange::Replace(member_ids(v).map_err(at)?)
                    }
                    (None, None, OperationKind::Remove, Some(v)) => {
                        MemberChange::Remove(member_ids(v).map_err(at)?)
                    }
                    (None, None, OperationKind::Remove, None) => MemberChange::RemoveAll,
                    (Some(filter), None, OperationKind::Remove, _)
                        if filter.attr.eq_ignore_ascii_case("value") =>
                    {
                        MemberChange::Remove(vec![crate::fold(filter.value.trim())])
                    }
                    _ => {
                        return Err(at(ScimError::new(
                            ScimType::InvalidPath,
                            "members can be added, replaced or removed; a selection only as \
                             `remove` with `members[value eq \"…\"]`",
                        )))
                    }
                };
                changes.push(change);
            }
            (
                None,
                kind @ (OperationKind::Add | OperationKind::Replace),
                Some(Value::Object(values)),
            ) => {
                let mut others = Map::new();
                for (key, value) in values {
                    let members = AttrPath::parse(key).is_ok_and(|p| {
                        is_members(&p) && p.filter.is_none() && p.sub_attr.is_none()
                    });
                    if members {
                        let ids = member_ids(value).map_err(at)?;
                        changes.push(match kind {
                            OperationKind::Add => MemberChange::Add(ids),
                            _ => MemberChange::Replace(ids),
                        });
                    } else {
                        others.insert(key.clone(), value.clone());
                    }
                }
                if !others.is_empty() {
                    rest.push(Operation {
                        kind,
                        path: None,
                        value: Some(Value::Object(others)),
                    });
                }
            }
            _ => rest.push(op.clone()),
        }
    }
    Ok((PatchRequest { operations: rest }, changes))
}

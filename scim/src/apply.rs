//! Applying a checked PATCH to a stored resource (a JSON object), all or nothing: the
//! operations run on a copy that replaces the original only when every one succeeded.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::patch::{Operation, OperationKind, PatchRequest};
use crate::path::AttrPath;

/// What a PATCH changed that matters beyond the stored resource: deactivation and group
/// membership (which revoke sessions, depending on `scim_config`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// The new `active`, when an operation set it.
    pub active: Option<bool>,
    /// Member ids added to a group (ignoring ones already there).
    pub members_added: Vec<String>,
    /// Member ids removed from a group.
    pub members_removed: Vec<String>,
}

/// Applies `patch` to `resource`, all or nothing.
///
/// # Errors
/// [`ScimError`] for an operation that cannot apply; `resource` is then unchanged.
pub fn apply(
    resource: &mut Map<String, Value>,
    patch: &PatchRequest,
) -> Result<Changes, ScimError> {
    let mut copy = resource.clone();
    let mut changes = Changes::default();
    for op in &patch.operations {
        apply_one(&mut copy, op, &mut changes)?;
    }
    *resource = copy;
    Ok(changes)
}

fn apply_one(
    resource: &mut Map<String, Value>,
    op: &Operation,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    match (&op.path, op.kind, &op.value) {
        (None, OperationKind::Add | OperationKind::Replace, Some(Value::Object(values))) => {
            for (key, value) in values {
                match value {
                    // `"urn:…:extension:enterprise:2.0:User": { "department": "…" }`: the
                    // extension object's attributes, each set in it.
                    Value::Object(inner) if is_extension_urn(key) => {
                        for (name, value) in inner {
                            let path = AttrPath::parse(&format!("{key}:{name}"))?;
                            set(resource, &path, value.clone(), op.kind, changes)?;
                        }
                    }
                    _ => {
                        let path = AttrPath::parse(key)?;
                        set(resource, &path, value.clone(), op.kind, changes)?;
                    }
                }
            }
            Ok(())
        }
        (Some(path), OperationKind::Add | OperationKind::Replace, Some(value)) => {
            set(resource, path, value.clone(), op.kind, changes)
        }
        (Some(path), OperationKind::Remove, value) => {
            remove(resource, path, value.as_ref(), changes)
        }
        _ => Err(ScimError::new(
            ScimType::InvalidSyntax,
            "operation without a target",
        )),
    }
}

/// A schema extension's URN (not a core schema's): its attributes live in an object under it.
fn is_extension_urn(key: &str) -> bool {
    key.get(..39)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:ietf:params:scim:schemas:extension:"))
}

/// The path names a top-level attribute: no URN, or a core schema's (`…:core:2.0:User:active`
/// is `active`).
fn top_level(path: &AttrPath) -> bool {
    path.urn.as_deref().is_none_or(|urn| {
        urn.eq_ignore_ascii_case(crate::USER_SCHEMA)
            || urn.eq_ignore_ascii_case(crate::GROUP_SCHEMA)
    })
}

/// The object an attribute lives in: the resource, or its schema-extension object.
fn container<'a>(
    resource: &'a mut Map<String, Value>,
    path: &AttrPath,
) -> Result<&'a mut Map<String, Value>, ScimError> {
    let Some(urn) = path.urn.as_ref().filter(|_| !top_level(path)) else {
        return Ok(resource);
    };
    let key = existing_key(resource, urn).unwrap_or_else(|| urn.clone());
    let slot = resource
        .entry(key)
        .or_insert_with(|| Value::Object(Map::new()));
    slot.as_object_mut().ok_or_else(|| {
        ScimError::new(
            ScimType::InvalidPath,
            format!("`{urn}` is not an extension object"),
        )
    })
}

/// The stored spelling of `name`, compared without case.
fn existing_key(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

fn member_id(v: &Value) -> Option<String> {
    v.get("value").and_then(Value::as_str).map(str::to_owned)
}

/// `id` and `meta` belong to the server.
fn writable(path: &AttrPath) -> Result<(), ScimError> {
    let owned = top_level(path)
        && (path.attr.eq_ignore_ascii_case("id") || path.attr.eq_ignore_ascii_case("meta"));
    if owned {
        return Err(ScimError::new(
            ScimType::Mutability,
            format!("`{}` is set by the server", path.attr),
        ));
    }
    Ok(())
}

fn set(
    resource: &mut Map<String, Value>,
    path: &AttrPath,
    value: Value,
    kind: OperationKind,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    writable(path)?;
    if path.is("active") && top_level(path) {
        changes.active = value.as_bool();
    }
    let is_members = path.attr.eq_ignore_ascii_case("members");
    let target = container(resource, path)?;
    let key = existing_key(target, &path.attr).unwrap_or_else(|| path.attr.clone());
    match (&path.filter, &path.sub_attr) {
        (None, None) => {
            let existing = target.get_mut(&key);
            match (kind, existing, value) {
                (OperationKind::Add, Some(Value::Array(items)), Value::Array(new)) => {
                    for item in new {
                        let known = items.iter().any(|i| {
                            i == &item
                                || (member_id(i).is_some() && member_id(i) == member_id(&item))
                        });
                        if !known {
                            if is_members {
                                changes.members_added.extend(member_id(&item));
                            }
                            items.push(item);
                        }
                    }
                }
                (_, _, value) => {
                    if is_members {
                        if let Value::Array(new) = &value {
                            changes
                                .members_added
                                .extend(new.iter().filter_map(member_id));
                        }
                    }
                    target.insert(key, value);
                }
            }
            Ok(())
        }
        (None, Some(sub)) => {
            let slot = target
                .entry(key)
                .or_insert_with(|| Value::Object(Map::new()));
            let object = slot.as_object_mut().ok_or_else(|| {
                ScimError::new(
                    ScimType::InvalidPath,
                    format!("`{}` has no sub-attributes", path.attr),
                )
            })?;
            let sub_key = existing_key(object, sub).unwrap_or_else(|| sub.clone());
            object.insert(sub_key, value);
            Ok(())
        }
        (Some(filter), sub) => {
            let slot = target
                .entry(key)
                .or_insert_with(|| Value::Array(Vec::new()));
            let items = slot.as_array_mut().ok_or_else(|| {
                ScimError::new(
                    ScimType::InvalidPath,
                    format!("`{}` is not multi-valued", path.attr),
                )
            })?;
            let matches = |item: &Value| {
                item.get(&filter.attr).and_then(Value::as_str) == Some(filter.value.as_str())
            };
            let mut found = false;
            for item in items.iter_mut().filter(|i| matches(i)) {
                found = true;
                match sub {
                    Some(sub) => {
                        if let Some(object) = item.as_object_mut() {
                            object.insert(sub.clone(), value.clone());
                        }
                    }
                    None => *item = value.clone(),
                }
            }
            if !found {
                // `emails[type eq "work"].value` on a user without a work email creates it.
                let mut entry = Map::new();
                entry.insert(filter.attr.clone(), Value::String(filter.value.clone()));
                match sub {
                    Some(sub) => {
                        entry.insert(sub.clone(), value);
                    }
                    None => {
                        if let Value::Object(fields) = value {
                            entry.extend(fields);
                        }
                    }
                }
                items.push(Value::Object(entry));
            }
            Ok(())
        }
    }
}

fn remove(
    resource: &mut Map<String, Value>,
    path: &AttrPath,
    value: Option<&Value>,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    writable(path)?;
    let is_members = path.attr.eq_ignore_ascii_case("members");
    let target = container(resource, path)?;
    let Some(key) = existing_key(target, &path.attr) else {
        // Removing what is not there leaves nothing to do (idempotent).
        return Ok(());
    };
    match (&path.filter, &path.sub_attr, value) {
        (Some(filter), None, _) => {
            if let Some(Value::Array(items)) = target.get_mut(&key) {
                let before = items.len();
                items.retain(|i| {
                    i.get(&filter.attr).and_then(Value::as_str) != Some(filter.value.as_str())
                });
                if is_members && items.len() != before {
                    changes.members_removed.push(filter.value.clone());
                }
            }
        }
        (Some(filter), Some(sub), _) => {
            if let Some(Value::Array(items)) = target.get_mut(&key) {
                for item in items.iter_mut() {
                    if item.get(&filter.attr).and_then(Value::as_str) == Some(filter.value.as_str())
                    {
                        if let Some(object) = item.as_object_mut() {
                            object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                        }
                    }
                }
            }
        }
        (None, Some(sub), _) => {
            if let Some(Value::Object(object)) = target.get_mut(&key) {
                object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
            }
        }
        (None, None, Some(Value::Array(remove))) => {
            // The default dialect: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`.
            let ids: Vec<String> = remove.iter().filter_map(member_id).collect();
            if let Some(Value::Array(items)) = target.get_mut(&key) {
                let gone: Vec<String> = items
                    .iter()
                    .filter_map(member_id)
                    .filter(|id| ids.contains(id))
                    .collect();
                items.retain(|i| member_id(i).is_none_or(|id| !ids.contains(&id)));
                if is_members {
                    changes.members_removed.extend(gone);
                }
            }
        }
        (None, None, _) => {
            if is_members {
                if let Some(Value::Array(items)) = target.get(&key) {
                    changes
                        .members_removed
                        .extend(items.iter().filter_map(member_id));
                }
            }
            target.remove(&key);
        }
    }
    Ok(())
}

//! Applying a checked PATCH to a stored resource (a JSON object), all or nothing: the
//! operations run on a copy that replaces the original only when every one succeeded.
//!
//! Attribute names compare without case everywhere — top-level, sub-attributes, and the
//! attribute a selection (`phoneNumbers[type eq "mobile"]`) compares — as RFC 7643 §2.1 says;
//! the stored spelling is kept, and a new attribute gets its schema's spelling
//! ([`canonical`]). The values a selection compares (`type`, `value`, `primary`, `display`)
//! are `caseExact: false` in RFC 7643 and compare without case too.
//!
//! RFC 7644 §3.5.2 as this server applies it:
//! - `add` and `replace` on a complex single-valued attribute (`name`, `manager`) set the
//!   sub-attributes given and keep the others; `null` unassigns one. Multi-valued attributes
//!   are replaced whole (`replace`) or appended to (`add`, skipping entries already there).
//! - `id`, `meta` and `schemas` belong to the server (`mutability`); so does removing what
//!   this server requires: a user's `userName` and `active` (removing `active` would leave
//!   the user neither enabled nor disabled — it is refused, so it can never re-enable one), a
//!   group's `displayName`.
//! - On a user, `manager` without a schema URN is the enterprise extension's (core User has
//!   none), where Entra reads it.
//! - `remove` with a `value` on a single-valued attribute removes it only when it holds that
//!   value (Microsoft's reference SCIM code does the same for `manager`).

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::patch::{Operation, OperationKind, PatchRequest};
use crate::path::{AttrPath, ValueFilter};
use crate::resource::ResourceKind;
use crate::{ENTERPRISE_USER, GROUP_SCHEMA, USER_SCHEMA};

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

/// Applies `patch` to `resource`, all or nothing. Whether `resource` is a user or a group is
/// read from its `schemas`.
///
/// # Errors
/// [`ScimError`] for an operation that cannot apply; `resource` is then unchanged.
pub fn apply(
    resource: &mut Map<String, Value>,
    patch: &PatchRequest,
) -> Result<Changes, ScimError> {
    let mut copy = resource.clone();
    let kind = kind_of(&copy);
    let mut changes = Changes::default();
    for op in &patch.operations {
        apply_one(&mut copy, kind, op, &mut changes)?;
    }
    *resource = copy;
    Ok(changes)
}

fn apply_one(
    resource: &mut Map<String, Value>,
    kind: Option<ResourceKind>,
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
                            set(resource, kind, &path, value.clone(), op.kind, changes)?;
                        }
                    }
                    _ => {
                        let path = AttrPath::parse(key)?;
                        set(resource, kind, &path, value.clone(), op.kind, changes)?;
                    }
                }
            }
            Ok(())
        }
        (Some(path), OperationKind::Add | OperationKind::Replace, Some(value)) => {
            set(resource, kind, path, value.clone(), op.kind, changes)
        }
        (Some(path), OperationKind::Remove, value) => {
            remove(resource, kind, path, value.as_ref(), changes)
        }
        _ => Err(ScimError::new(
            ScimType::InvalidSyntax,
            "operation without a target",
        )),
    }
}

/// A user or a group, by the core schema its `schemas` lists.
fn kind_of(resource: &Map<String, Value>) -> Option<ResourceKind> {
    let schemas = crate::attribute(resource, "schemas").and_then(Value::as_array)?;
    let lists = |urn: &str| {
        schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    };
    if lists(USER_SCHEMA) {
        Some(ResourceKind::User)
    } else if lists(GROUP_SCHEMA) {
        Some(ResourceKind::Group)
    } else {
        None
    }
}

/// A schema extension's URN (not a core schema's): its attributes live in an object under it.
pub(crate) fn is_extension_urn(key: &str) -> bool {
    key.get(..39)
        .is_some_and(|p| p.eq_ignore_ascii_case("urn:ietf:params:scim:schemas:extension:"))
}

/// The path names a top-level attribute: no URN, or a core schema's (`…:core:2.0:User:active`
/// is `active`).
fn top_level(path: &AttrPath) -> bool {
    path.urn.as_deref().is_none_or(|urn| {
        urn.eq_ignore_ascii_case(USER_SCHEMA) || urn.eq_ignore_ascii_case(GROUP_SCHEMA)
    })
}

/// `path` with the schema it lives in made explicit where the path leaves it out: a user's
/// `manager` is the enterprise extension's.
fn resolve(path: &AttrPath, kind: Option<ResourceKind>) -> AttrPath {
    let mut path = path.clone();
    if kind == Some(ResourceKind::User)
        && path.urn.is_none()
        && path.attr.eq_ignore_ascii_case("manager")
    {
        path.urn = Some(ENTERPRISE_USER.to_owned());
    }
    path
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

/// The spelling of `name` in the core and enterprise schemas (RFC 7643 §4, §8.7), or `name`
/// as sent for an attribute they do not define.
pub(crate) fn canonical(name: &str) -> String {
    const NAMES: &[&str] = &[
        "userName",
        "name",
        "displayName",
        "nickName",
        "profileUrl",
        "title",
        "userType",
        "preferredLanguage",
        "locale",
        "timezone",
        "active",
        "emails",
        "phoneNumbers",
        "ims",
        "photos",
        "addresses",
        "groups",
        "entitlements",
        "roles",
        "x509Certificates",
        "externalId",
        "members",
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "value",
        "display",
        "type",
        "primary",
        "$ref",
        "employeeNumber",
        "costCenter",
        "organization",
        "division",
        "department",
        "manager",
    ];
    NAMES
        .iter()
        .find(|n| n.eq_ignore_ascii_case(name))
        .map_or_else(|| name.to_owned(), |n| (*n).to_owned())
}

/// The value a multi-valued entry (or a `manager`) stands for: a string itself, or an
/// object's `value`.
fn entry_value(v: &Value) -> Option<&str> {
    match v {
        Value::String(s) => Some(s),
        Value::Object(map) => crate::attribute(map, "value").and_then(Value::as_str),
        _ => None,
    }
}

/// Two entries of a multi-valued attribute are the same when equal or of the same value.
fn same_entry(a: &Value, b: &Value) -> bool {
    a == b
        || matches!((entry_value(a), entry_value(b)), (Some(x), Some(y)) if x.eq_ignore_ascii_case(y))
}

fn member_id(v: &Value) -> Option<String> {
    v.as_object()
        .and_then(|map| crate::attribute(map, "value"))
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Whether `item` is selected by `[attr eq value]`: its `attr` (without case) equals the
/// value (strings without case; booleans and numbers by their text).
fn selects(item: &Value, filter: &ValueFilter) -> bool {
    let Some(found) = item
        .as_object()
        .and_then(|map| crate::attribute(map, &filter.attr))
    else {
        return false;
    };
    match (found, &filter.literal) {
        (Value::String(a), Value::String(b)) => a.eq_ignore_ascii_case(b),
        (Value::String(_), _) | (_, Value::String(_)) => false,
        (a, b) => a == b,
    }
}

/// `id`, `meta` and `schemas` belong to the server.
fn writable(path: &AttrPath) -> Result<(), ScimError> {
    let owned = top_level(path)
        && ["id", "meta", "schemas"]
            .iter()
            .any(|a| path.attr.eq_ignore_ascii_case(a));
    if owned {
        return Err(ScimError::new(
            ScimType::Mutability,
            format!("`{}` is set by the server", path.attr),
        ));
    }
    Ok(())
}

/// Removing an attribute this server requires (RFC 7644 §3.5.2.2: `mutability`).
fn removable(path: &AttrPath, kind: Option<ResourceKind>) -> Result<(), ScimError> {
    let required: &[&str] = match kind {
        Some(ResourceKind::User) => &["userName", "active"],
        Some(ResourceKind::Group) => &["displayName"],
        None => &[],
    };
    let whole = top_level(path) && path.filter.is_none() && path.sub_attr.is_none();
    if whole && required.iter().any(|a| path.attr.eq_ignore_ascii_case(a)) {
        return Err(ScimError::new(
            ScimType::Mutability,
            format!(
                "`{}` is required and cannot be removed (replace it instead)",
                path.attr
            ),
        ));
    }
    Ok(())
}

/// Sets the sub-attributes of `new` in `existing`, keeping the others; `null` unassigns.
fn merge(existing: &mut Map<String, Value>, new: Map<String, Value>) {
    for (name, value) in new {
        let key = existing_key(existing, &name).unwrap_or_else(|| canonical(&name));
        if value.is_null() {
            existing.remove(&key);
        } else {
            existing.insert(key, value);
        }
    }
}

fn set(
    resource: &mut Map<String, Value>,
    kind: Option<ResourceKind>,
    path: &AttrPath,
    value: Value,
    op: OperationKind,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    let path = &resolve(path, kind);
    writable(path)?;
    if path.is("active") && top_level(path) {
        changes.active = value.as_bool();
    }
    let is_members = path.attr.eq_ignore_ascii_case("members");
    let target = container(resource, path)?;
    let key = existing_key(target, &path.attr).unwrap_or_else(|| canonical(&path.attr));
    match (&path.filter, &path.sub_attr) {
        (None, None) => {
            match (op, target.get_mut(&key), value) {
                (OperationKind::Add, Some(Value::Array(items)), Value::Array(new)) => {
                    for item in new {
                        if !items.iter().any(|i| same_entry(i, &item)) {
                            if is_members {
                                changes.members_added.extend(member_id(&item));
                            }
                            items.push(item);
                        }
                    }
                }
                // A complex single-valued attribute: the sub-attributes given, the rest kept
                // (RFC 7644 §3.5.2.1, §3.5.2.3).
                (_, Some(Value::Object(existing)), Value::Object(new)) => merge(existing, new),
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
            merge(object, Map::from_iter([(sub.clone(), value)]));
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
            let mut found = false;
            for item in items.iter_mut().filter(|i| selects(i, filter)) {
                found = true;
                match (sub, item.as_object_mut()) {
                    (Some(sub), Some(object)) => {
                        merge(object, Map::from_iter([(sub.clone(), value.clone())]));
                    }
                    (Some(_), None) => {}
                    (None, _) => *item = value.clone(),
                }
            }
            if !found {
                // `emails[type eq "work"].value` on a user without a work email creates it.
                let mut entry = Map::new();
                entry.insert(canonical(&filter.attr), filter.literal.clone());
                match (sub, value) {
                    (Some(sub), value) => merge(&mut entry, Map::from_iter([(sub.clone(), value)])),
                    (None, Value::Object(fields)) => merge(&mut entry, fields),
                    (None, _) => {}
                }
                items.push(Value::Object(entry));
            }
            Ok(())
        }
    }
}

fn remove(
    resource: &mut Map<String, Value>,
    kind: Option<ResourceKind>,
    path: &AttrPath,
    value: Option<&Value>,
    changes: &mut Changes,
) -> Result<(), ScimError> {
    let path = &resolve(path, kind);
    writable(path)?;
    removable(path, kind)?;
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
                items.retain(|i| !selects(i, filter));
                if is_members && items.len() != before {
                    changes.members_removed.push(filter.value.clone());
                }
            }
        }
        (Some(filter), Some(sub), _) => {
            if let Some(Value::Array(items)) = target.get_mut(&key) {
                for item in items.iter_mut().filter(|i| selects(i, filter)) {
                    if let Some(object) = item.as_object_mut() {
                        object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
                    }
                }
            }
        }
        (None, Some(sub), _) => {
            if let Some(Value::Object(object)) = target.get_mut(&key) {
                object.retain(|k, _| !k.eq_ignore_ascii_case(sub));
            }
        }
        (None, None, Some(given)) if !given.is_null() => {
            // The default dialect: `{"op":"Remove","path":"members","value":[{"value":"id"}]}`;
            // on a single-valued attribute (`manager`), only the value it holds is removed.
            let given = match given {
                Value::Array(items) => items.as_slice(),
                other => std::slice::from_ref(other),
            };
            match target.get_mut(&key) {
                Some(Value::Array(items)) => {
                    let gone: Vec<String> = items
                        .iter()
                        .filter(|i| given.iter().any(|g| same_entry(i, g)))
                        .filter_map(member_id)
                        .collect();
                    items.retain(|i| !given.iter().any(|g| same_entry(i, g)));
                    if is_members {
                        changes.members_removed.extend(gone);
                    }
                }
                Some(stored) if given.iter().any(|g| same_entry(stored, g)) => {
                    target.remove(&key);
                }
                Some(_) | None => {}
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

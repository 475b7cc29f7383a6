//! The enterprise User extension's `manager` (RFC 7643 §4.3): a complex attribute whose
//! `value` is the manager's id.
//!
//! Entra sends only the id — `{"op": "Add", "path": "urn:…:enterprise:2.0:User:manager",
//! "value": "<id>"}`, or the URN-qualified key of a path-less `replace`, and Microsoft's own
//! schema example writes `"manager": "<id>"` in a body — but reads the user back expecting
//! `{"value": "<id>"}`: a string there fails its deserialiser, and Entra stops updating that
//! user, deprovisioning included. So every shape Entra (or the tutorial's one-entry array
//! with `$ref`) sends is stored, and served, as `{"value": "<id>"}`; an empty id is no
//! manager. `$ref` and `displayName` are not kept: the id is what a client reads, and a
//! stale `$ref` beside a new `value` would be worse than none.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::ENTERPRISE_USER;

/// Moves a top-level `manager` (core User has none) into the enterprise extension — one
/// already there wins — and makes the extension's `manager` `{"value": id}`, or removes it
/// for an empty id. An extension object left empty is removed.
///
/// # Errors
/// `invalidValue` for a manager that is not an id: a number, an object without a string
/// `value`, several entries.
pub(crate) fn normalise(resource: &mut Map<String, Value>) -> Result<(), ScimError> {
    let top: Vec<String> = resource
        .keys()
        .filter(|k| k.eq_ignore_ascii_case("manager"))
        .cloned()
        .collect();
    let mut moved = None;
    for key in top {
        moved = resource.remove(&key).filter(|v| !v.is_null());
    }
    let extension_key = resource
        .keys()
        .find(|k| k.eq_ignore_ascii_case(ENTERPRISE_USER))
        .cloned();
    let extension_key = match (extension_key, &moved) {
        (Some(key), _) => key,
        (None, Some(_)) => {
            resource.insert(ENTERPRISE_USER.to_owned(), Value::Object(Map::new()));
            ENTERPRISE_USER.to_owned()
        }
        (None, None) => return Ok(()),
    };
    let Some(Value::Object(extension)) = resource.get_mut(&extension_key) else {
        return Ok(());
    };
    let keys: Vec<String> = extension
        .keys()
        .filter(|k| k.eq_ignore_ascii_case("manager"))
        .cloned()
        .collect();
    let mut sent = None;
    for key in keys {
        sent = extension.remove(&key);
    }
    if let Some(id) = manager_id(sent.or(moved).as_ref())? {
        let mut manager = Map::new();
        manager.insert("value".into(), Value::String(id));
        extension.insert("manager".into(), Value::Object(manager));
    }
    if extension.is_empty() {
        resource.remove(&extension_key);
    }
    Ok(())
}

/// The manager's id in any shape Entra sends; `None` for none (absent, null, empty).
fn manager_id(value: Option<&Value>) -> Result<Option<String>, ScimError> {
    let bad = || {
        ScimError::new(
            ScimType::InvalidValue,
            "`manager` must be the manager's id, or {\"value\": id}",
        )
    };
    let id = match value {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(id)) => id,
        Some(Value::Object(manager)) => match crate::attribute(manager, "value") {
            Some(Value::String(id)) => id,
            _ => return Err(bad()),
        },
        Some(Value::Array(entries)) => {
            return match entries.as_slice() {
                [] => Ok(None),
                [one @ Value::Object(_)] => manager_id(Some(one)),
                _ => Err(bad()),
            }
        }
        Some(_) => return Err(bad()),
    };
    let id = id.trim();
    Ok((!id.is_empty()).then(|| id.to_owned()))
}

//! PATCH requests (RFC 7644 §3.5.2) in both of Entra's dialects, checked whole before any of
//! them is applied: a request with one bad operation is refused entirely. The message's own
//! attribute names (`schemas`, `Operations`, `op`, `path`, `value`) compare without case, as
//! every SCIM attribute name does (RFC 7643 §2.1).

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::path::AttrPath;
use crate::PATCH_OP;

/// `add`, `replace` or `remove` (Entra's default dialect capitalises them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// Add values (to multi-valued attributes) or set.
    Add,
    /// Replace values.
    Replace,
    /// Remove values.
    Remove,
}

/// One operation, normalised: `active` values are booleans whichever dialect sent them.
#[derive(Debug, Clone, PartialEq)]
pub struct Operation {
    /// What to do.
    pub kind: OperationKind,
    /// Where; `None` for a path-less add/replace, whose value is an object of attributes.
    pub path: Option<AttrPath>,
    /// The value (absent for most removes).
    pub value: Option<Value>,
}

/// A parsed PatchOp message.
#[derive(Debug, Clone, PartialEq)]
pub struct PatchRequest {
    /// The operations, in order.
    pub operations: Vec<Operation>,
}

impl PatchRequest {
    /// Parses a PatchOp body.
    ///
    /// # Errors
    /// [`ScimError`] with the `scimType` of the first problem; nothing is applied.
    pub fn parse(body: &Value) -> Result<PatchRequest, ScimError> {
        let syntax = |why: String| ScimError::new(ScimType::InvalidSyntax, why);
        let Value::Object(message) = body else {
            return Err(syntax("a PatchOp message must be a JSON object".into()));
        };
        let schemas = crate::attribute(message, "schemas").and_then(Value::as_array);
        if !schemas.is_some_and(|s| s.iter().any(|u| u.as_str() == Some(PATCH_OP))) {
            return Err(syntax(format!("`schemas` must contain `{PATCH_OP}`")));
        }
        let operations = crate::attribute(message, "Operations")
            .and_then(Value::as_array)
            .ok_or_else(|| syntax("`Operations` must be an array".into()))?;
        if operations.is_empty() {
            return Err(syntax("`Operations` is empty".into()));
        }
        if operations.len() > 1000 {
            return Err(syntax("more than 1000 operations".into()));
        }
        let operations = operations
            .iter()
            .enumerate()
            .map(|(i, op)| {
                parse_operation(op).map_err(|e| {
                    ScimError::new(e.scim_type, format!("Operations[{i}]: {}", e.detail))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(PatchRequest { operations })
    }
}

fn parse_operation(op: &Value) -> Result<Operation, ScimError> {
    let syntax = |why: &str| ScimError::new(ScimType::InvalidSyntax, why);
    let Value::Object(fields) = op else {
        return Err(syntax("an operation must be an object"));
    };
    let name = crate::attribute(fields, "op")
        .and_then(Value::as_str)
        .ok_or_else(|| syntax("`op` is missing"))?;
    let kind = match name.to_ascii_lowercase().as_str() {
        "add" => OperationKind::Add,
        "replace" => OperationKind::Replace,
        "remove" => OperationKind::Remove,
        _ => return Err(syntax(&format!("unknown op `{name}`"))),
    };
    let path = match crate::attribute(fields, "path") {
        None => None,
        Some(Value::String(p)) => Some(AttrPath::parse(p)?),
        Some(_) => {
            return Err(ScimError::new(
                ScimType::InvalidPath,
                "`path` must be a string",
            ))
        }
    };
    let value = fields
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("value"))
        .map(|(_, v)| v.clone());
    match (kind, &path, &value) {
        (OperationKind::Remove, None, _) => {
            return Err(ScimError::new(
                ScimType::NoTarget,
                "`remove` needs a `path`",
            ))
        }
        (OperationKind::Add | OperationKind::Replace, _, None) => {
            return Err(ScimError::new(ScimType::InvalidValue, "`value` is missing"))
        }
        (OperationKind::Add | OperationKind::Replace, None, Some(v)) if !v.is_object() => {
            return Err(ScimError::new(
                ScimType::InvalidValue,
                "a path-less operation needs an object `value`",
            ))
        }
        _ => {}
    }
    let value = match (&path, value) {
        (Some(p), Some(v)) if p.is("active") => Some(Value::Bool(boolean(&v)?)),
        (None, Some(Value::Object(map))) => Some(Value::Object(normalise_active(map)?)),
        (_, v) => v,
    };
    Ok(Operation { kind, path, value })
}

/// `true`/`false`, or Entra's default-dialect strings `"True"`/`"False"`.
fn boolean(value: &Value) -> Result<bool, ScimError> {
    match value {
        Value::Bool(b) => Ok(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Ok(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Ok(false),
        other => Err(ScimError::new(
            ScimType::InvalidValue,
            format!("`active` must be a boolean, not {other}"),
        )),
    }
}

/// `active` in a path-less value, in any case or prefixed with a core schema's URN
/// (`urn:ietf:params:scim:schemas:core:2.0:User:active` is the same attribute), as a boolean.
fn normalise_active(mut map: Map<String, Value>) -> Result<Map<String, Value>, ScimError> {
    for (key, value) in &mut map {
        if names_active(key) {
            *value = Value::Bool(boolean(value)?);
        }
    }
    Ok(map)
}

fn names_active(key: &str) -> bool {
    AttrPath::parse(key).is_ok_and(|path| {
        path.is("active")
            && path.urn.as_deref().is_none_or(|urn| {
                urn.eq_ignore_ascii_case(crate::USER_SCHEMA)
                    || urn.eq_ignore_ascii_case(crate::GROUP_SCHEMA)
            })
    })
}

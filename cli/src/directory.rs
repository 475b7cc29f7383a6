//! The gateway's SCIM group export read as the nesting and names the policy engine needs.
//!
//! The input is the body of `GET /cdn-cgi/access/scim/v2/Groups` (a SCIM `ListResponse`) or a
//! plain JSON array of Group resources. Each group gets a *policy id*, the id `azureAD` rules and
//! tokens use: its `externalId` (Entra's group object id) when that is a GUID, otherwise its
//! `id` when that is a GUID; a group with neither is skipped with a warning. A member of group P
//! whose `value` is the `id` of another group C in the file, whatever its `type`, makes C a child
//! of P; other members are users and do not matter here.
//!
//! Design choices: the known fields are checked strictly and every problem is reported with
//! its JSON path (a directory that half loads would make a test pass or fail for the wrong
//! reason), while unknown fields (`meta`, extensions…) are ignored, as a SCIM client must.

use std::collections::{HashMap, HashSet};
use std::fmt;

use policy_core::GroupId;
use serde_json::{Map, Value};

/// The schema a Group resource names in `schemas`.
const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";

/// What a SCIM group export contributes to [`policy_core::Options`].
#[derive(Debug, Default)]
pub(crate) struct ScimDirectory {
    /// Child → parent edges between policy ids, without repeats.
    pub(crate) group_parents: Vec<(GroupId, GroupId)>,
    /// Display names by policy id.
    pub(crate) group_names: Vec<(GroupId, Box<str>)>,
    /// Groups skipped or otherwise worth a person's attention.
    pub(crate) warnings: Vec<String>,
}

/// A problem in a SCIM group export, at a JSON path.
#[derive(Debug)]
pub(crate) struct DirectoryError {
    path: String,
    message: String,
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// One Group resource as far as the engine cares.
struct Group<'j> {
    path: String,
    id: &'j str,
    external_id: Option<&'j str>,
    display_name: &'j str,
    members: Vec<&'j str>,
}

/// Reads a SCIM group export.
///
/// # Errors
/// Every [`DirectoryError`] found: not JSON, a wrong top-level shape, a resource that is not
/// an object or not a Group, a known field of the wrong type, a missing `id` or
/// `displayName`, or two resources with the same `id`.
pub(crate) fn parse(text: &str) -> Result<ScimDirectory, Vec<DirectoryError>> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        vec![DirectoryError {
            path: String::new(),
            message: format!("not JSON: {e}"),
        }]
    })?;
    let mut errors = Vec::new();
    let mut warnings = Vec::new();
    let (resources, prefix) = match &value {
        Value::Array(items) => (items.as_slice(), ""),
        Value::Object(list) => (
            list_resources(list, &mut errors, &mut warnings),
            "Resources",
        ),
        other => {
            return Err(vec![DirectoryError {
                path: String::new(),
                message: format!(
                    "expected a SCIM ListResponse (an object with `Resources`) or an array of \
                     Group resources, found {}",
                    kind(other)
                ),
            }])
        }
    };

    let mut groups = Vec::with_capacity(resources.len());
    let mut by_id: HashMap<&str, usize> = HashMap::with_capacity(resources.len());
    for (i, resource) in resources.iter().enumerate() {
        let path = format!("{prefix}[{i}]");
        let Some(group) = group(resource, path, &mut errors) else {
            continue;
        };
        match by_id.get(group.id) {
            Some(&first) => errors.push(DirectoryError {
                message: format!(
                    "duplicate id `{}` (also {})",
                    group.id,
                    groups
                        .get(first)
                        .map_or("?", |g: &Group<'_>| g.path.as_str())
                ),
                path: format!("{}.id", group.path),
            }),
            None => {
                by_id.insert(group.id, groups.len());
                groups.push(group);
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }

    let policy_ids: Vec<Option<GroupId>> = groups.iter().map(policy_id).collect();
    let mut out = ScimDirectory {
        warnings,
        ..ScimDirectory::default()
    };
    let mut named: HashMap<GroupId, &str> = HashMap::new();
    for (group, pid) in groups.iter().zip(&policy_ids) {
        let Some(pid) = *pid else {
            out.warnings.push(format!(
                "{} (`{}`, id `{}`): neither `externalId` nor `id` is a GUID; skipped",
                group.path, group.display_name, group.id
            ));
            continue;
        };
        if let Some(first) = named.insert(pid, &group.path) {
            out.warnings.push(format!(
                "{}: policy id `{pid}` is also the policy id of {first}; the last name wins",
                group.path
            ));
        }
        out.group_names.push((pid, group.display_name.into()));
    }

    let mut seen = HashSet::new();
    for (parent, parent_pid) in groups.iter().zip(&policy_ids) {
        let Some(parent_pid) = *parent_pid else {
            continue;
        };
        for value in &parent.members {
            let child_pid = by_id
                .get(value)
                .and_then(|&c| policy_ids.get(c).copied().flatten());
            if let Some(child_pid) = child_pid {
                if seen.insert((child_pid, parent_pid)) {
                    out.group_parents.push((child_pid, parent_pid));
                }
            }
        }
    }
    Ok(out)
}

/// The `Resources` of a `ListResponse` (empty, with an error, when they cannot be had).
fn list_resources<'j>(
    list: &'j Map<String, Value>,
    errors: &mut Vec<DirectoryError>,
    warnings: &mut Vec<String>,
) -> &'j [Value] {
    let total = match list.get("totalResults") {
        None => None,
        Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
        Some(other) => {
            errors.push(DirectoryError {
                path: "totalResults".into(),
                message: format!("must be a non-negative integer, found {}", kind(other)),
            });
            None
        }
    };
    let resources = match list.get("Resources") {
        Some(Value::Array(items)) => items.as_slice(),
        // RFC 7644 §3.4.2: `Resources` may be left out when there are none.
        None if total == Some(0) => &[],
        None => {
            errors.push(DirectoryError {
                path: "Resources".into(),
                message: "missing: expected a SCIM ListResponse (an object with `Resources`) \
                          or an array of Group resources"
                    .into(),
            });
            &[]
        }
        Some(other) => {
            errors.push(DirectoryError {
                path: "Resources".into(),
                message: format!("must be an array, found {}", kind(other)),
            });
            &[]
        }
    };
    if let Some(total) = total {
        if total > resources.len() as u64 {
            warnings.push(format!(
                "totalResults is {total} but only {} resources are here: a single page of a \
                 larger directory, nesting may be missing",
                resources.len()
            ));
        }
    }
    resources
}

/// Checks one Group resource, pushing its problems to `errors`.
fn group<'j>(
    resource: &'j Value,
    path: String,
    errors: &mut Vec<DirectoryError>,
) -> Option<Group<'j>> {
    let before = errors.len();
    let Value::Object(o) = resource else {
        errors.push(DirectoryError {
            message: format!("must be an object, found {}", kind(resource)),
            path,
        });
        return None;
    };
    let mut fail = |field: &str, message: String| {
        errors.push(DirectoryError {
            path: format!("{path}.{field}"),
            message,
        });
    };
    match o.get("schemas") {
        None => {}
        Some(Value::Array(schemas)) => {
            let mut names = schemas.iter().map(Value::as_str);
            if names.clone().any(|s| s.is_none()) {
                fail("schemas", "must be an array of strings".into());
            } else if !names.any(|s| s.is_some_and(|s| s.eq_ignore_ascii_case(GROUP_SCHEMA))) {
                fail(
                    "schemas",
                    format!("does not name `{GROUP_SCHEMA}`: not a Group resource"),
                );
            }
        }
        Some(other) => fail(
            "schemas",
            format!("must be an array of strings, found {}", kind(other)),
        ),
    }
    let id = required_string(o, "id", &mut fail);
    let display_name = required_string(o, "displayName", &mut fail);
    let external_id = match o.get("externalId") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            fail(
                "externalId",
                format!("must be a string, found {}", kind(other)),
            );
            None
        }
    };
    let mut members = Vec::new();
    match o.get("members") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (j, member) in items.iter().enumerate() {
                let at = format!("members[{j}]");
                match member {
                    Value::Object(m) => match m.get("value") {
                        Some(Value::String(v)) => members.push(v.as_str()),
                        None => fail(&format!("{at}.value"), "missing".into()),
                        Some(other) => fail(
                            &format!("{at}.value"),
                            format!("must be a string, found {}", kind(other)),
                        ),
                    },
                    other => fail(&at, format!("must be an object, found {}", kind(other))),
                }
            }
        }
        Some(other) => fail(
            "members",
            format!("must be an array, found {}", kind(other)),
        ),
    }
    if errors.len() != before {
        return None;
    }
    Some(Group {
        path,
        id: id?,
        external_id,
        display_name: display_name?,
        members,
    })
}

fn required_string<'j>(
    o: &'j Map<String, Value>,
    field: &str,
    fail: &mut impl FnMut(&str, String),
) -> Option<&'j str> {
    match o.get(field) {
        Some(Value::String(s)) => Some(s),
        None => {
            fail(field, "missing".into());
            None
        }
        Some(other) => {
            fail(field, format!("must be a string, found {}", kind(other)));
            None
        }
    }
}

/// The id `azureAD` rules and tokens use for `group`, by the gateway's rule
/// ([`edge_access_scim::group_policy_id`]).
fn policy_id(group: &Group<'_>) -> Option<GroupId> {
    edge_access_scim::group_policy_id(group.id, group.external_id)
        .and_then(|id| GroupId::parse(&id).ok())
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gid(s: &str) -> GroupId {
        GroupId::parse(s).unwrap()
    }

    const P: &str = "11111111-1111-4111-8111-111111111111";
    const C: &str = "22222222-2222-4222-8222-222222222222";

    #[test]
    fn external_id_wins_then_id_then_skipped() {
        let dir = parse(&format!(
            r#"[
              {{ "id": "aaaaaaaa-0000-4000-8000-000000000001", "externalId": "{P}", "displayName": "Parent",
                 "members": [ {{ "value": "child-server-id" }}, {{ "value": "some-user", "type": "User" }},
                              {{ "value": "no-guid" }} ] }},
              {{ "id": "child-server-id", "externalId": "{C}", "displayName": "Child" }},
              {{ "id": "no-guid", "externalId": "not-a-guid-either", "displayName": "Odd" }},
              {{ "id": "{C}", "externalId": "", "displayName": "Child copy" }}
            ]"#
        ))
        .unwrap();
        assert_eq!(dir.group_parents, vec![(gid(C), gid(P))]);
        assert_eq!(dir.group_names.len(), 3);
        assert_eq!(dir.group_names[0], (gid(P), "Parent".into()));
        assert_eq!(dir.warnings.len(), 2, "{:?}", dir.warnings);
        assert!(dir.warnings[0].contains("[2] (`Odd`, id `no-guid`)"));
        assert!(dir.warnings[1].contains("[3]: policy id"));
    }

    #[test]
    fn an_external_id_with_whitespace_names_the_group_as_the_gateway_does() {
        // The gateway stores this group under `P` (its externalId, trimmed); a test run
        // against its export must see the same id.
        let dir = parse(&format!(
            r#"[{{ "id": "{C}", "externalId": " {P} ", "displayName": "Padded" }}]"#
        ))
        .unwrap();
        assert_eq!(dir.group_names, vec![(gid(P), "Padded".into())]);
    }

    #[test]
    fn empty_list_response_without_resources() {
        let dir = parse(r#"{"schemas": [], "totalResults": 0}"#).unwrap();
        assert!(dir.group_parents.is_empty() && dir.warnings.is_empty());
        let errors = parse(r#"{"totalResults": 1}"#).unwrap_err();
        assert_eq!(errors[0].path, "Resources");
    }

    #[test]
    fn duplicate_ids_are_refused() {
        let errors = parse(r#"[{"id": "x", "displayName": "A"}, {"id": "x", "displayName": "B"}]"#)
            .unwrap_err();
        assert_eq!(errors[0].to_string(), "[1].id: duplicate id `x` (also [0])");
    }
}

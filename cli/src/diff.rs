//! `edge-access policy diff OLD NEW`: what a change to a configuration document does — the apps,
//! reusable policies, Access groups, lists, identity providers and service tokens added,
//! removed and changed (by id, ignoring API metadata such as `updated_at`), and with
//! `--requests` the requests whose decision changes.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use policy_core::suite::TestFile;
use policy_core::{Engine, Request, Verdict};
use serde_json::{json, Value};

/// API metadata that says nothing about access.
const METADATA: &[&str] = &[
    "created_at",
    "updated_at",
    "uid",
    "reusable",
    "app_count",
    "version",
];

/// The sections compared, by their key in the document.
const SECTIONS: &[(&str, &str)] = &[
    ("apps", "app"),
    ("policies", "policy"),
    ("groups", "access group"),
    ("lists", "list"),
    ("identity_providers", "identity provider"),
    ("service_tokens", "service token"),
];

/// One difference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    /// `added`, `removed` or `changed`.
    pub(crate) what: &'static str,
    /// The kind of item (`app`, `policy`, …).
    pub(crate) kind: &'static str,
    pub(crate) id: String,
    /// For `changed`: the fields that differ.
    pub(crate) fields: Vec<String>,
}

/// A request whose decision differs.
#[derive(Debug, Clone)]
pub(crate) struct Decided {
    pub(crate) name: String,
    pub(crate) old: Verdict,
    pub(crate) new: Verdict,
}

fn strip_metadata(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .filter(|(k, _)| !METADATA.contains(&k.as_str()))
                .map(|(k, v)| (k.clone(), strip_metadata(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(strip_metadata).collect()),
        other => other.clone(),
    }
}

fn by_id(document: &Value, section: &str) -> BTreeMap<String, Value> {
    document
        .get(section)
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .enumerate()
                .map(|(i, item)| {
                    let id = item
                        .get("id")
                        .and_then(Value::as_str)
                        .map_or_else(|| format!("#{i}"), str::to_owned);
                    (id, strip_metadata(item))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The differences between two documents (both already known to load).
pub(crate) fn changes(old: &Value, new: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    for &(section, kind) in SECTIONS {
        let (before, after) = (by_id(old, section), by_id(new, section));
        for id in before.keys().filter(|id| !after.contains_key(*id)) {
            out.push(Change {
                what: "removed",
                kind,
                id: id.clone(),
                fields: Vec::new(),
            });
        }
        for (id, item) in &after {
            match before.get(id) {
                None => out.push(Change {
                    what: "added",
                    kind,
                    id: id.clone(),
                    fields: Vec::new(),
                }),
                Some(previous) if previous != item => {
                    let keys = |v: &Value| -> Vec<String> {
                        v.as_object()
                            .map(|m| m.keys().cloned().collect())
                            .unwrap_or_default()
                    };
                    let mut fields: Vec<String> = keys(previous);
                    for k in keys(item) {
                        if !fields.contains(&k) {
                            fields.push(k);
                        }
                    }
                    fields.retain(|k| previous.get(k) != item.get(k));
                    fields.sort();
                    out.push(Change {
                        what: "changed",
                        kind,
                        id: id.clone(),
                        fields,
                    });
                }
                Some(_) => {}
            }
        }
    }
    for key in ["team_domain", "directory"] {
        if old.get(key) != new.get(key) {
            out.push(Change {
                what: "changed",
                kind: "document",
                id: key.to_owned(),
                fields: Vec::new(),
            });
        }
    }
    out
}

/// Named requests from `text`: a JSON array of requests, or a policy test file (its cases).
pub(crate) fn requests(text: &str) -> Result<Vec<(String, Request)>, String> {
    if let Ok(file) = TestFile::from_json(text) {
        return file
            .cases()
            .iter()
            .filter_map(|case| {
                Request::from_json(&case.request)
                    .ok()
                    .map(|r| Ok((case.name.clone(), r)))
            })
            .collect();
    }
    let value: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
    let Some(items) = value.as_array() else {
        return Err("expected an array of requests or a policy test file".into());
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let request = Request::from_json(&item.to_string())
                .map_err(|e| format!("[{i}]: {}", e.to_string().replace('\n', "; ")))?;
            let name = item
                .get("app")
                .and_then(Value::as_str)
                .map_or_else(|| format!("request {i}"), |app| format!("[{i}] {app}"));
            Ok((name, request))
        })
        .collect()
}

/// The requests whose outcome or deciding policy differs between the engines.
pub(crate) fn decisions(
    old: &Engine,
    new: &Engine,
    requests: &[(String, Request)],
) -> Result<Vec<Decided>, String> {
    let mut out = Vec::new();
    for (name, request) in requests {
        let a = old.evaluate(request).map_err(|e| format!("{name}: {e}"))?;
        let b = new.evaluate(request).map_err(|e| format!("{name}: {e}"))?;
        let key = |v: &Verdict| (v.outcome, v.app.clone(), v.policy.clone());
        if key(&a) != key(&b) {
            out.push(Decided {
                name: name.clone(),
                old: a,
                new: b,
            });
        }
    }
    Ok(out)
}

fn deciding(v: &Verdict) -> String {
    match &v.policy {
        Some((id, name, _)) => format!("{} by `{}`", v.outcome, id.as_deref().unwrap_or(name)),
        None => v.outcome.to_string(),
    }
}

pub(crate) fn human(changes: &[Change], decided: Option<&[Decided]>) -> String {
    let mut text = String::new();
    if changes.is_empty() {
        text.push_str(
            "no changes to apps, policies, groups, lists, identity providers or service tokens\n",
        );
    }
    for c in changes {
        let sign = match c.what {
            "added" => '+',
            "removed" => '-',
            _ => '~',
        };
        let _ = write!(text, "{sign} {} `{}` {}", c.kind, c.id, c.what);
        if !c.fields.is_empty() {
            let _ = write!(text, ": {}", c.fields.join(", "));
        }
        text.push('\n');
    }
    if let Some(decided) = decided {
        let _ = writeln!(text, "\n{} requests decided differently", decided.len());
        for d in decided {
            let _ = writeln!(
                text,
                "  {}: {} → {}",
                d.name,
                deciding(&d.old),
                deciding(&d.new)
            );
        }
    }
    text
}

pub(crate) fn json_report(changes: &[Change], decided: Option<&[Decided]>) -> Value {
    json!({
        "changes": changes.iter().map(|c| json!({
            "change": c.what, "kind": c.kind, "id": c.id, "fields": c.fields,
        })).collect::<Vec<_>>(),
        "requests": decided.map(|d| d.iter().map(|d| json!({
            "name": d.name, "old": d.old.to_value(), "new": d.new.to_value(),
        })).collect::<Vec<_>>()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_what_changed_by_id_ignoring_metadata() {
        let old = json!({ "apps": [
            { "id": "a", "name": "A", "domain": "a.example.com", "updated_at": "2024" },
            { "id": "b", "name": "B" } ],
            "policies": [{ "id": "p", "decision": "allow" }] });
        let new = json!({ "apps": [
            { "id": "a", "name": "A", "domain": "a.example.com", "updated_at": "2026" },
            { "id": "c", "name": "C" } ],
            "policies": [{ "id": "p", "decision": "deny" }] });
        let got: Vec<String> = changes(&old, &new)
            .iter()
            .map(|c| format!("{} {} {} {:?}", c.what, c.kind, c.id, c.fields))
            .collect();
        assert_eq!(
            got,
            [
                "removed app b []",
                "added app c []",
                "changed policy p [\"decision\"]",
            ]
        );
    }
}

//! `edge-access config import FILE…`: one configuration document from saved answers of
//! Cloudflare's Access API (apps, reusable policies, Access groups, identity providers,
//! service tokens, lists), each the whole envelope or its `result`. The document is loaded
//! with the engine before it is written; the read-only fields of the API's objects are left
//! out of it, each named on stderr, and any other warning is listed there too.

use std::fmt::Write as _;
use std::io::Write;

use policy_core::Engine;
use serde_json::{Map, Value};

use crate::{fmt, read, report, write_out, CliError};

/// What a saved answer holds, in the document's own order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Kind {
    IdentityProviders,
    Lists,
    ServiceTokens,
    Groups,
    Policies,
    Apps,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::IdentityProviders,
        Kind::Lists,
        Kind::ServiceTokens,
        Kind::Groups,
        Kind::Policies,
        Kind::Apps,
    ];

    /// Its key in the document.
    fn key(self) -> &'static str {
        match self {
            Kind::IdentityProviders => "identity_providers",
            Kind::Lists => "lists",
            Kind::ServiceTokens => "service_tokens",
            Kind::Groups => "groups",
            Kind::Policies => "policies",
            Kind::Apps => "apps",
        }
    }

    /// What an object of the API is, by the fields only that collection has.
    fn of(object: &Map<String, Value>) -> Option<Kind> {
        let has = |key: &str| object.contains_key(key);
        if has("domain") || has("aud") || has("destinations") || has("self_hosted_domains") {
            Some(Kind::Apps)
        } else if has("decision") {
            Some(Kind::Policies)
        } else if has("config") {
            Some(Kind::IdentityProviders)
        } else if has("include") {
            Some(Kind::Groups)
        } else if has("client_id") {
            Some(Kind::ServiceTokens)
        } else if has("items") || has("count") {
            Some(Kind::Lists)
        } else {
            None
        }
    }
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// Saved answers of Cloudflare's API (`GET …/access/apps`, `…/access/policies`,
    /// `…/access/groups`, `…/access/identity_providers`, `…/access/service_tokens`,
    /// `…/gateway/lists`): the envelope or its `result`, an array or one object.
    #[arg(value_name = "FILE", required = true)]
    pub files: Vec<String>,
    /// The gateway's team domain (`https://access.example.com`).
    #[arg(long, value_name = "URL")]
    pub team_domain: String,
    /// What every FILE holds, when its objects do not show it.
    #[arg(long, value_enum)]
    pub kind: Option<Kind>,
    /// Write the document here instead of standard output.
    #[arg(long, value_name = "FILE")]
    pub out: Option<String>,
}

pub fn run(args: &ImportArgs, out: &mut impl Write) -> Result<(), CliError> {
    if args.files.iter().filter(|f| *f == "-").count() > 1 {
        return Err(CliError::Usage(
            "only one of the files can be standard input".into(),
        ));
    }
    let mut collected: Vec<(Kind, Vec<Value>)> = Kind::ALL.iter().map(|k| (*k, vec![])).collect();
    for file in &args.files {
        let text = read(file)?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|e| CliError::Load(format!("`{file}` is not JSON: {e}")))?;
        let (kind, items) = collection(file, value, args.kind)?;
        report(&format!(
            "`{file}`: {} {}",
            items.len(),
            kind.map_or("objects", Kind::key)
        ));
        if let Some(slot) = kind.and_then(|k| collected.iter_mut().find(|(c, _)| *c == k)) {
            slot.1.extend(items);
        }
    }
    let mut document = assemble(&args.team_domain, collected).map_err(CliError::Load)?;
    let read_only: Vec<String> = load(&document)?
        .1
        .warnings()
        .iter()
        .filter(|w| w.is_read_only_field())
        .map(|w| w.path.clone())
        .collect();
    for path in &read_only {
        remove_at(&mut document, path);
        report(&format!(
            "left out {path}: read-only field of Cloudflare's API"
        ));
    }
    if !read_only.is_empty() {
        report(&format!(
            "left out {} read-only fields of Cloudflare's API",
            read_only.len()
        ));
    }
    let (mut text, engine) = load(&document)?;
    for w in engine.warnings() {
        report(&format!("warning: {w}"));
    }
    if !text.ends_with('\n') {
        text.push('\n');
    }
    match &args.out {
        Some(path) => std::fs::write(path, &text)
            .map_err(|e| CliError::Load(format!("cannot write `{path}`: {e}"))),
        None => write_out(out, &text),
    }
}

/// `document` formatted as `policy fmt` does, and loaded with the engine.
fn load(document: &Value) -> Result<(String, Engine), CliError> {
    let text = fmt::format(&fmt::Node::parse(&document.to_string()).map_err(CliError::Load)?);
    let engine = Engine::from_json(&text).map_err(|errors| {
        let mut message = format!(
            "the imported document does not load ({} problems):",
            errors.errors().len()
        );
        for e in errors.errors() {
            let _ = write!(message, "\n  {e}");
        }
        CliError::Load(message)
    })?;
    Ok((text, engine))
}

/// Removes the member a warning's JSON path (`apps[0].policies[1].created_at`) names, if
/// `document` has it. The engine's paths are keys joined by `.` and indices in `[n]`; the
/// keys it warns about as read-only are plain names.
fn remove_at(document: &mut Value, path: &str) {
    let (parent, key) = path.rsplit_once('.').unwrap_or(("", path));
    let mut at = document;
    for part in parent.split('.').filter(|p| !p.is_empty()) {
        let (name, indices) = part
            .split_once('[')
            .map_or((part, ""), |(n, rest)| (n, rest));
        let Some(next) = at.get_mut(name) else { return };
        at = next;
        for index in indices.split('[').filter(|i| !i.is_empty()) {
            let Some(next) = index
                .strip_suffix(']')
                .and_then(|i| i.parse::<usize>().ok())
                .and_then(|i| at.get_mut(i))
            else {
                return;
            };
            at = next;
        }
    }
    if let Value::Object(object) = at {
        object.remove(key);
    }
}

/// The objects of one saved answer and what they are (`None`: no objects).
fn collection(
    file: &str,
    value: Value,
    kind: Option<Kind>,
) -> Result<(Option<Kind>, Vec<Value>), CliError> {
    let result = unwrap_envelope(file, value)?;
    let items = match result {
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => {
            return Err(CliError::Load(format!(
                "`{file}`: expected an object or an array of objects, found {}",
                kind_of(&other)
            )))
        }
    };
    let mut found = kind;
    for (i, item) in items.iter().enumerate() {
        let Value::Object(object) = item else {
            return Err(CliError::Load(format!(
                "`{file}`: item {i} is {}, not an object",
                kind_of(item)
            )));
        };
        if kind.is_some() {
            continue;
        }
        match (Kind::of(object), found) {
            (None, _) => {
                return Err(CliError::Load(format!(
                    "`{file}`: cannot tell what item {i} is; name it with --kind"
                )))
            }
            (Some(k), Some(f)) if k != f => {
                return Err(CliError::Load(format!(
                    "`{file}`: item {i} is one of {}, the ones before it of {}; one collection per file",
                    k.key(),
                    f.key()
                )))
            }
            (Some(k), _) => found = Some(k),
        }
    }
    Ok((found, items))
}

/// The `result` of an API envelope (`success`, `errors`, `messages`, `result`,
/// `result_info`), refused unless it succeeded; anything else as it is.
fn unwrap_envelope(file: &str, value: Value) -> Result<Value, CliError> {
    let Value::Object(mut object) = value else {
        return Ok(value);
    };
    let envelope = object.contains_key("result")
        && ["success", "errors", "messages"]
            .iter()
            .any(|k| object.contains_key(*k));
    if !envelope {
        return Ok(Value::Object(object));
    }
    let errors = match object.get("errors") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(errors)) => errors.clone(),
        Some(other) => vec![other.clone()],
    };
    let failed = matches!(object.get("success"), Some(s) if *s != Value::Bool(true));
    if failed || !errors.is_empty() {
        let mut message = format!("`{file}`: the API answered with an error, nothing to import");
        for e in &errors {
            let code = e.get("code").map(Value::to_string).unwrap_or_default();
            let text = e
                .get("message")
                .and_then(Value::as_str)
                .map_or_else(|| e.to_string(), str::to_owned);
            let _ = write!(message, "\n  {code} {text}");
        }
        return Err(CliError::Load(message));
    }
    let result = object.remove("result").unwrap_or(Value::Null);
    if let (Some(total), Value::Array(items)) = (
        object
            .get("result_info")
            .and_then(|i| i.get("total_count"))
            .and_then(Value::as_u64),
        &result,
    ) {
        if total > u64::try_from(items.len()).unwrap_or(u64::MAX) {
            report(&format!(
                "warning: `{file}` holds {} of {total} objects: save every page (`?page=`)",
                items.len()
            ));
        }
    }
    Ok(result)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// One document from the collections. An app's copy of a reusable policy that is imported
/// too becomes a link to it (its `id` and `precedence`); apps Cloudflare serves without a
/// hostname to protect (`warp`, `app_launcher`, `saas`, …) are left out, each named.
fn assemble(team_domain: &str, collected: Vec<(Kind, Vec<Value>)>) -> Result<Value, String> {
    let reusable: Vec<String> = collected
        .iter()
        .filter(|(k, _)| *k == Kind::Policies)
        .flat_map(|(_, items)| items)
        .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let mut document = Map::new();
    document.insert("team_domain".into(), Value::String(team_domain.into()));
    for (kind, mut items) in collected {
        if items.is_empty() {
            continue;
        }
        if kind == Kind::Apps {
            items.retain(|app| {
                let t = app.get("type").and_then(Value::as_str);
                let keep = matches!(t, None | Some("self_hosted"));
                if !keep {
                    let name = app.get("name").and_then(Value::as_str).unwrap_or("");
                    report(&format!(
                        "warning: app `{name}` of type `{}` left out: only `self_hosted` apps are served",
                        t.unwrap_or("")
                    ));
                }
                keep
            });
            for app in &mut items {
                link_reusable(app, &reusable);
                drop_domain_mirrors(app)?;
            }
        }
        document.insert(kind.key().into(), Value::Array(items));
    }
    Ok(Value::Object(document))
}

/// `self_hosted_domains` and `destinations`, which the API returns beside `domain`: left out
/// (named on stderr) when they name the app's `domain` only; anything more is refused, as an
/// app protects one domain here.
fn drop_domain_mirrors(app: &mut Value) -> Result<(), String> {
    let Value::Object(object) = app else {
        return Ok(());
    };
    let name = object
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    let domain = object
        .get("domain")
        .and_then(Value::as_str)
        .map(str::to_owned);
    for key in ["self_hosted_domains", "destinations"] {
        let Some(value) = object.get(key) else {
            continue;
        };
        let same = match value {
            Value::Null => true,
            Value::Array(items) => items.iter().all(|item| {
                let uri = match item {
                    Value::String(s) => Some(s.as_str()),
                    Value::Object(d) if d.get("type").and_then(Value::as_str) == Some("public") => {
                        d.get("uri").and_then(Value::as_str)
                    }
                    _ => None,
                };
                uri.is_some() && uri == domain.as_deref()
            }),
            _ => false,
        };
        if !same {
            return Err(format!(
                "app `{name}`: `{key}` names more than its `domain`; an app protects one domain \
                 here: make one app per domain"
            ));
        }
        object.remove(key);
        report(&format!(
            "warning: app `{name}`: `{key}` same as `domain`, ignored"
        ));
    }
    Ok(())
}

fn link_reusable(app: &mut Value, reusable: &[String]) {
    let Some(Value::Array(policies)) = app.get_mut("policies") else {
        return;
    };
    for policy in policies {
        let Value::Object(p) = policy else { continue };
        let Some(id) = p.get("id").and_then(Value::as_str) else {
            continue;
        };
        let body = p.contains_key("decision") || p.contains_key("include");
        if body && reusable.iter().any(|r| r == id) {
            let mut link = Map::new();
            link.insert("id".into(), Value::String(id.into()));
            if let Some(precedence) = p.get("precedence") {
                link.insert("precedence".into(), precedence.clone());
            }
            *policy = Value::Object(link);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_by_shape() {
        for (object, kind) in [
            (
                json!({"id": "a", "domain": "x.example.com"}),
                Some(Kind::Apps),
            ),
            (
                json!({"id": "p", "decision": "allow", "include": []}),
                Some(Kind::Policies),
            ),
            (json!({"id": "g", "include": []}), Some(Kind::Groups)),
            (
                json!({"id": "i", "type": "azureAD", "config": {}}),
                Some(Kind::IdentityProviders),
            ),
            (
                json!({"id": "t", "client_id": "c.access"}),
                Some(Kind::ServiceTokens),
            ),
            (
                json!({"id": "l", "type": "EMAIL", "items": []}),
                Some(Kind::Lists),
            ),
            (json!({"id": "?", "name": "n"}), None),
        ] {
            let Value::Object(o) = object else { continue };
            assert_eq!(Kind::of(&o), kind, "{o:?}");
        }
    }

    #[test]
    fn a_failed_answer_is_refused() {
        for envelope in [
            json!({"success": false, "errors": [], "messages": [], "result": null}),
            json!({"success": true, "errors": [{"code": 10000, "message": "Authentication error"}],
                   "messages": [], "result": []}),
        ] {
            let result = unwrap_envelope("apps.json", envelope);
            assert!(
                matches!(&result, Err(CliError::Load(m))
                    if m.starts_with("`apps.json`: the API answered with an error")),
                "{result:?}"
            );
        }
    }

    #[test]
    fn domain_mirrors_are_left_out_other_domains_refused() {
        let mut app = json!({"name": "Ledger", "domain": "ledger.example.com",
            "self_hosted_domains": ["ledger.example.com"],
            "destinations": [{"type": "public", "uri": "ledger.example.com"}]});
        assert_eq!(drop_domain_mirrors(&mut app), Ok(()));
        assert_eq!(
            app,
            json!({"name": "Ledger", "domain": "ledger.example.com"})
        );
        for (key, value) in [
            (
                "self_hosted_domains",
                json!(["ledger.example.com", "books.example.com"]),
            ),
            (
                "destinations",
                json!([{"type": "public", "uri": "books.example.com"}]),
            ),
            (
                "destinations",
                json!([{"type": "private", "cidr": "10.0.0.0/8"}]),
            ),
            ("destinations", json!("ledger.example.com")),
        ] {
            let mut app = json!({"name": "Ledger", "domain": "ledger.example.com", key: value});
            let refused = drop_domain_mirrors(&mut app);
            assert!(
                refused.as_ref().is_err_and(|m| m.starts_with(&format!(
                    "app `Ledger`: `{key}` names more than its `domain`"
                ))),
                "{value}: {refused:?}"
            );
        }
    }

    #[test]
    fn read_only_paths_are_removed_and_others_left_alone() {
        let mut doc = json!({"created_at": "t", "apps": [{"uid": "u"},
            {"uid": "v", "policies": [{"id": "p", "updated_at": "t"}]}],
            "lists": [{"items": [{"value": "a", "created_at": "t"}]}]});
        for path in [
            "created_at",
            "apps[1].uid",
            "apps[1].policies[0].updated_at",
            "lists[0].items[0].created_at",
            "apps[7].uid",
            "apps[x].uid",
            "nothing.here",
        ] {
            remove_at(&mut doc, path);
        }
        assert_eq!(
            doc,
            json!({"apps": [{"uid": "u"}, {"policies": [{"id": "p"}]}],
                "lists": [{"items": [{"value": "a"}]}]})
        );
    }

    #[test]
    fn a_bare_object_is_its_own_result() {
        let app = json!({"id": "a", "domain": "x.example.com", "result": 1});
        assert_eq!(unwrap_envelope("f", app.clone()).ok(), Some(app));
    }
}

//! `edge-access policy fmt`: one canonical layout for configuration documents and policy test
//! files, so diffs in review show changes, not styles.
//!
//! Keys come in a fixed order per kind of object (the order the README's tables give: `id`,
//! `name`, then what the object is about, then the rest alphabetically); indentation is two
//! spaces; an array or object is written on one line when that line fits in 100 columns and it
//! holds nothing long itself, else one item per line. Nothing is dropped: a file with a
//! duplicate key is refused (it has two readings); strings are kept exactly and numbers keep
//! their value (written in their canonical form: `1.5e3` becomes `1500.0`).

use std::fmt::Write as _;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A JSON value that keeps its keys in order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(String),
    Array(Vec<Node>),
    Object(Vec<(String, Node)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
        deserializer.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node, E> {
        Ok(Node::Bool(b))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E: de::Error>(self, n: f64) -> Result<Node, E> {
        serde_json::Number::from_f64(n)
            .map(Node::Number)
            .ok_or_else(|| E::custom("a number JSON cannot hold"))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node, E> {
        Ok(Node::String(s.to_owned()))
    }
    fn visit_string<E>(self, s: String) -> Result<Node, E> {
        Ok(Node::String(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries: Vec<(String, Node)> = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            if entries.iter().any(|(k, _)| *k == key) {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Node::Object(entries))
    }
}

impl Node {
    /// Parses JSON text, refusing duplicate keys.
    pub(crate) fn parse(text: &str) -> Result<Node, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
    }
}

/// What an object is, for its key order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Document,
    IdentityProvider,
    IdpConfig,
    ScimConfig,
    ServiceToken,
    List,
    ListItem,
    Group,
    Policy,
    App,
    Directory,
    TestFile,
    Case,
    Expect,
    Request,
    Identity,
    Other,
}

fn order(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Document => &[
            "$schema",
            "team_domain",
            "identity_providers",
            "service_tokens",
            "lists",
            "groups",
            "policies",
            "apps",
            "directory",
        ],
        Kind::IdentityProvider => &["id", "name", "type", "config", "scim_config"],
        Kind::IdpConfig => &[
            "client_id",
            "directory_id",
            "support_groups",
            "pkce_enabled",
            "prompt",
            "email_claim_name",
            "conditional_access_enabled",
            "azure_cloud",
            "claims",
        ],
        Kind::ScimConfig => &[
            "enabled",
            "user_deprovision",
            "seat_deprovision",
            "group_member_deprovision",
            "identity_update_behavior",
        ],
        Kind::ServiceToken => &["id", "name", "client_id", "client_secret_sha256"],
        Kind::List => &["id", "name", "type", "description", "items"],
        Kind::ListItem => &["value", "description"],
        Kind::Group => &["id", "name", "include", "require", "exclude"],
        Kind::Policy => &[
            "id",
            "name",
            "precedence",
            "decision",
            "include",
            "require",
            "exclude",
            "session_duration",
        ],
        Kind::App => &[
            "id",
            "name",
            "domain",
            "aud",
            "type",
            "session_duration",
            "allowed_idps",
            "auto_redirect_to_identity",
            "allow_encoded_slashes",
            "custom_deny_url",
            "custom_non_identity_deny_url",
            "custom_deny_message",
            "policies",
        ],
        Kind::Directory => &["group_parents", "group_names"],
        Kind::TestFile => &[
            "$schema",
            "description",
            "config",
            "document",
            "directory",
            "expect_load_errors",
            "cases",
        ],
        Kind::Case => &["name", "request", "expect", "expect_request_error"],
        Kind::Expect => &["outcome", "policy", "session_duration", "trace_contains"],
        Kind::Request => &["app", "identity", "service_token", "ip", "country", "mtls"],
        Kind::Identity => &[
            "email",
            "user_id",
            "tenant_id",
            "idp_id",
            "groups",
            "amr",
            "acrs",
            "claims",
        ],
        Kind::Other => &[],
    }
}

/// The kind of the value under `key` in an object of kind `parent` (for arrays: of its items).
fn child(parent: Kind, key: &str) -> Kind {
    match (parent, key) {
        (Kind::Document, "identity_providers") => Kind::IdentityProvider,
        (Kind::Document, "service_tokens") => Kind::ServiceToken,
        (Kind::Document, "lists") => Kind::List,
        (Kind::Document, "groups") => Kind::Group,
        (Kind::Document | Kind::App, "policies") => Kind::Policy,
        (Kind::Document, "apps") => Kind::App,
        (Kind::Document, "directory") => Kind::Directory,
        (Kind::IdentityProvider, "config") => Kind::IdpConfig,
        (Kind::IdentityProvider, "scim_config") => Kind::ScimConfig,
        (Kind::List, "items") => Kind::ListItem,
        (Kind::TestFile, "document") => Kind::Document,
        (Kind::TestFile, "cases") => Kind::Case,
        (Kind::Case, "request") => Kind::Request,
        (Kind::Case, "expect") => Kind::Expect,
        (Kind::Request, "identity") => Kind::Identity,
        _ => Kind::Other,
    }
}

/// The canonical text of a document or test file.
pub(crate) fn format(node: &Node) -> String {
    let has =
        |key: &str| matches!(node, Node::Object(entries) if entries.iter().any(|(k, _)| k == key));
    let kind = if has("cases") || has("expect_load_errors") {
        Kind::TestFile
    } else if has("app") && !has("apps") {
        Kind::Request
    } else {
        Kind::Document
    };
    let mut out = String::new();
    write(node, kind, 0, &mut out);
    out.push('\n');
    out
}

fn sorted(entries: &[(String, Node)], kind: Kind) -> Vec<&(String, Node)> {
    let known = order(kind);
    let mut list: Vec<&(String, Node)> = entries.iter().collect();
    list.sort_by_key(|(k, _)| match known.iter().position(|n| n == k) {
        Some(i) => (0, i, String::new()),
        None => (1, 0, k.clone()),
    });
    list
}

fn compact(node: &Node, kind: Kind) -> String {
    match node {
        Node::Null => "null".into(),
        Node::Bool(b) => b.to_string(),
        Node::Number(n) => n.to_string(),
        Node::String(s) => serde_json::to_string(s).unwrap_or_default(),
        Node::Array(items) => {
            let inner: Vec<String> = items.iter().map(|i| compact(i, kind)).collect();
            format!("[{}]", inner.join(", "))
        }
        Node::Object(entries) => {
            let inner: Vec<String> = sorted(entries, kind)
                .into_iter()
                .map(|(k, v)| {
                    format!(
                        "{}: {}",
                        serde_json::to_string(k).unwrap_or_default(),
                        compact(v, child(kind, k))
                    )
                })
                .collect();
            format!("{{{}}}", inner.join(", "))
        }
    }
}

/// Whether `node` may go on one line: it has no container whose own line would be long.
fn small(node: &Node) -> bool {
    match node {
        Node::Array(items) => items.iter().all(|i| !is_container(i) || short(i)),
        Node::Object(entries) => entries.iter().all(|(_, v)| !is_container(v) || short(v)),
        _ => true,
    }
}

fn is_container(node: &Node) -> bool {
    matches!(node, Node::Array(_) | Node::Object(_))
}

fn short(node: &Node) -> bool {
    compact(node, Kind::Other).len() <= 40
}

/// Apps, policies, groups, identity providers and the document are always expanded.
fn always_expanded(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::Document
            | Kind::TestFile
            | Kind::App
            | Kind::Policy
            | Kind::Group
            | Kind::IdentityProvider
            | Kind::Case
            | Kind::List
    )
}

fn write(node: &Node, kind: Kind, indent: usize, out: &mut String) {
    let one_line = compact(node, kind);
    let expanded_object = matches!(node, Node::Object(_)) && always_expanded(kind);
    if !is_container(node) || (!expanded_object && small(node) && indent + one_line.len() <= 100) {
        out.push_str(&one_line);
        return;
    }
    let pad = " ".repeat(indent + 2);
    match node {
        Node::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push_str("[\n");
            for (i, item) in items.iter().enumerate() {
                out.push_str(&pad);
                write(item, kind, indent + 2, out);
                out.push_str(if i + 1 < items.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}]", " ".repeat(indent));
        }
        Node::Object(entries) => {
            if entries.is_empty() {
                out.push_str("{}");
                return;
            }
            out.push_str("{\n");
            let list = sorted(entries, kind);
            for (i, (key, value)) in list.iter().enumerate() {
                let _ = write!(
                    out,
                    "{pad}{}: ",
                    serde_json::to_string(key).unwrap_or_default()
                );
                write(value, child(kind, key), indent + 2, out);
                out.push_str(if i + 1 < list.len() { ",\n" } else { "\n" });
            }
            let _ = write!(out, "{}}}", " ".repeat(indent));
        }
        _ => out.push_str(&one_line),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_and_stable() {
        let messy = r#"{"apps":[{"policies":[{"include":[{"everyone":{}}],"decision":"allow","name":"All"}],"aud":"a","domain":"w.example.com","name":"Wiki","id":"wiki"}],"team_domain":"https://access.example.com","identity_providers":[]}"#;
        let once = format(&Node::parse(messy).unwrap());
        assert_eq!(
            once,
            r#"{
  "team_domain": "https://access.example.com",
  "identity_providers": [],
  "apps": [
    {
      "id": "wiki",
      "name": "Wiki",
      "domain": "w.example.com",
      "aud": "a",
      "policies": [
        {
          "name": "All",
          "decision": "allow",
          "include": [{"everyone": {}}]
        }
      ]
    }
  ]
}
"#
        );
        assert_eq!(format(&Node::parse(&once).unwrap()), once, "idempotent");
        // Nothing lost or changed: the same value as before.
        let a: serde_json::Value = serde_json::from_str(messy).unwrap();
        let b: serde_json::Value = serde_json::from_str(&once).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn refuses_two_readings_and_keeps_numbers() {
        assert!(Node::parse(r#"{"a": 1, "a": 2}"#)
            .unwrap_err()
            .contains("duplicate key `a`"));
        let text = format(&Node::parse(r#"{"n": 12345678901234567890, "f": 1.5e3}"#).unwrap());
        assert!(
            text.contains("12345678901234567890") && text.contains("1500.0"),
            "{text}"
        );
    }
}

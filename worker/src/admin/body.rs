//! The management API's request bodies and query parameters: strict (unknown fields refused),
//! bounded, and the document kept as the exact JSON text sent (so the loader sees duplicate
//! keys and reports paths in the writer's own text).

use serde::Deserialize;
use serde_json::value::RawValue;

/// The largest request body accepted (bytes).
pub const MAX_BODY: usize = 2 * 1024 * 1024 - 64 * 1024;

/// The longest comment accepted (characters).
const MAX_COMMENT: usize = 1000;

/// `PUT /config`: a new version, activated at once unless the base version is stale.
#[derive(Debug)]
pub struct PutConfig {
    /// The document's JSON text (an object).
    pub document: String,
    /// The active version the writer read (0: none stored).
    pub base_version: u64,
    pub comment: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPut {
    document: Box<RawValue>,
    base_version: u64,
    #[serde(default)]
    comment: String,
}

/// `POST /config/versions/{n}/activate` and `POST /config/rollback` (the body may be empty).
#[derive(Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Activate {
    /// The active version the writer read; the current one when absent.
    #[serde(default)]
    pub base_version: Option<u64>,
    #[serde(default)]
    pub comment: String,
}

/// `PUT /custom_pages/{app_id}/{kind}`: the page's HTML.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPage {
    html: String,
}

/// Parses a `PUT /custom_pages/…` body (the HTML is checked by the caller).
///
/// # Errors
///
/// Not a JSON object, or unknown or missing fields.
pub fn page(body: &str) -> Result<String, String> {
    object(body)?;
    let raw: RawPage = serde_json::from_str(body).map_err(|e| format!("invalid body: {e}"))?;
    Ok(raw.html)
}

/// A body must be a JSON object (serde would also read a struct from an array).
fn object(body: &str) -> Result<(), String> {
    if body.trim_start().starts_with('{') {
        Ok(())
    } else {
        Err("invalid body: expected a JSON object".into())
    }
}

/// Checks a version's comment: at most 1000 characters, no control characters.
///
/// # Errors
///
/// Which of the two it breaks.
pub fn comment(comment: &str) -> Result<(), String> {
    if comment.chars().count() > MAX_COMMENT {
        return Err(format!("comment: longer than {MAX_COMMENT} characters"));
    }
    if comment.chars().any(char::is_control) {
        return Err("comment: control characters are not accepted".into());
    }
    Ok(())
}

/// Parses a `PUT /config` body.
///
/// # Errors
///
/// Not JSON, unknown or missing fields, a document that is not an object, a bad comment.
pub fn put(body: &str) -> Result<PutConfig, String> {
    object(body)?;
    let raw: RawPut = serde_json::from_str(body).map_err(|e| format!("invalid body: {e}"))?;
    let document = raw.document.get().to_owned();
    if !document.trim_start().starts_with('{') {
        return Err("document: expected a JSON object".into());
    }
    comment(&raw.comment)?;
    Ok(PutConfig {
        document,
        base_version: raw.base_version,
        comment: raw.comment,
    })
}

/// Parses an activation body (empty: `{}`).
///
/// # Errors
///
/// Not JSON, unknown fields, a bad comment.
pub fn activate(body: &str) -> Result<Activate, String> {
    if body.trim().is_empty() {
        return Ok(Activate::default());
    }
    object(body)?;
    let parsed: Activate = serde_json::from_str(body).map_err(|e| format!("invalid body: {e}"))?;
    comment(&parsed.comment)?;
    Ok(parsed)
}

/// A version number in a path or query: a positive integer.
pub fn version(text: &str) -> Option<u64> {
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|v| *v > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_keeps_the_document_text_as_sent() {
        let put = put(r#"{"document": {"b": 1, "a": [2]}, "base_version": 3, "comment": "why"}"#)
            .unwrap();
        assert_eq!(put.document, r#"{"b": 1, "a": [2]}"#);
        assert_eq!((put.base_version, put.comment.as_str()), (3, "why"));
        let dup = super::put(r#"{"document": {"a": 1, "a": 2}, "base_version": 0}"#).unwrap();
        assert_eq!(
            dup.document, r#"{"a": 1, "a": 2}"#,
            "the loader sees the duplicate"
        );
    }

    #[test]
    fn malformed_puts_are_refused() {
        let long = format!(
            r#"{{"document": {{}}, "base_version": 0, "comment": "{}"}}"#,
            "x".repeat(1001)
        );
        for bad in [
            "",
            "null",
            "[]",
            "{",
            r#"{"base_version": 0}"#,
            r#"{"document": {}}"#,
            r#"{"document": "{}", "base_version": 0}"#,
            r#"{"document": [], "base_version": 0}"#,
            r#"{"document": {}, "base_version": -1}"#,
            r#"{"document": {}, "base_version": "1"}"#,
            r#"{"document": {}, "base_version": 1.5}"#,
            r#"{"document": {}, "base_version": 0, "extra": 1}"#,
            r#"{"document": {}, "base_version": 0, "comment": "a\u0000b"}"#,
            r#"{"document": {}, "base_version": 0, "document": {}}"#,
            r#"[{}, 0, ""]"#,
            long.as_str(),
        ] {
            assert!(put(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn activation_bodies_are_strict() {
        assert_eq!(activate("").unwrap(), Activate::default());
        assert_eq!(activate("{}").unwrap(), Activate::default());
        assert_eq!(
            activate(r#"{"base_version": 4}"#).unwrap().base_version,
            Some(4)
        );
        for bad in ["[]", "{", r#"{"version": 1}"#, r#"{"base_version": "4"}"#] {
            assert!(activate(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn versions_are_positive_integers() {
        assert_eq!(version("12"), Some(12));
        for bad in [
            "",
            "0",
            "-1",
            "+1",
            "1.0",
            " 1",
            "1e3",
            "9999999999999999",
            "０",
        ] {
            assert_eq!(version(bad), None, "{bad}");
        }
    }
}

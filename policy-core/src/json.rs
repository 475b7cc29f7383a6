//! A JSON tree that keeps object keys in document order and rejects duplicate keys, plus the
//! path-tracking accessors the document and request parsers are written with.
//!
//! Design choice: `serde_json::Value` silently keeps the last of two equal keys, so a document
//! with `"decision": "deny", "decision": "allow"` would load as `allow`. Configuration that
//! decides access must not have two readings, so this tree refuses it.

use alloc::borrow::{Cow, ToOwned};
use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};

/// A parsed JSON value; strings without escapes borrow from the input text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Json<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Vec<(Cow<'a, str>, Json<'a>)>),
}

impl<'a> Json<'a> {
    pub(crate) fn parse(text: &'a str) -> Result<Json<'a>, String> {
        serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))
    }

    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Json::Null => "null",
            Json::Bool(_) => "a boolean",
            Json::Number(_) => "a number",
            Json::String(_) => "a string",
            Json::Array(_) => "an array",
            Json::Object(_) => "an object",
        }
    }

    /// The value as compact JSON text (used for claim values and messages).
    pub(crate) fn to_text(&self) -> String {
        match self {
            Json::String(s) => s.to_string(),
            Json::Null => "null".to_owned(),
            Json::Bool(b) => b.to_string(),
            Json::Number(n) => n.to_string(),
            Json::Array(_) | Json::Object(_) => "…".to_owned(),
        }
    }
}

impl<'de> Deserialize<'de> for Json<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Json<'de>, D::Error> {
        deserializer.deserialize_any(JsonVisitor)
    }
}

/// An object key, borrowed from the input when it has no escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Key<'de>, D::Error> {
        deserializer.deserialize_str(KeyVisitor)
    }
}

struct KeyVisitor;

impl<'de> Visitor<'de> for KeyVisitor {
    type Value = Key<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Key<'de>, E> {
        Ok(Key(Cow::Owned(v)))
    }
}

struct JsonVisitor;

impl<'de> Visitor<'de> for JsonVisitor {
    type Value = Json<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Json<'de>, E> {
        Ok(Json::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Json<'de>, E> {
        Ok(Json::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Json<'de>, E> {
        serde_json::Number::from_f64(v)
            .map(Json::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Borrowed(v)))
    }
    fn visit_str<E>(self, v: &str) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<Json<'de>, E> {
        Ok(Json::String(Cow::Owned(v)))
    }
    fn visit_unit<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_none<E>(self) -> Result<Json<'de>, E> {
        Ok(Json::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json<'de>, A::Error> {
        let mut entries: Vec<(Cow<'de, str>, Json<'de>)> = Vec::new();
        // Small objects are scanned; large ones (a directory of thousands of groups) hashed.
        let mut seen: Option<hashbrown::HashSet<Cow<'de, str>>> = None;
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let duplicate = match &mut seen {
                Some(set) => !set.insert(key.clone()),
                None => {
                    let dup = entries.iter().any(|(k, _)| *k == key);
                    if entries.len() >= 32 {
                        seen = Some(
                            entries
                                .iter()
                                .map(|(k, _)| k.clone())
                                .chain([key.clone()])
                                .collect(),
                        );
                    }
                    dup
                }
            };
            if duplicate {
                return Err(de::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value()?;
            entries.push((key, value));
        }
        Ok(Json::Object(entries))
    }
}

/// A location in a JSON document, built on the stack as the parser descends and turned into
/// text (`apps[2].policies[0].include[1]`) only when an error is reported.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
}

impl<'a> Path<'a> {
    pub(crate) fn key(&'a self, key: &'a str) -> Path<'a> {
        Path::Key(self, key)
    }
    pub(crate) fn index(&'a self, index: usize) -> Path<'a> {
        Path::Index(self, index)
    }
}

impl fmt::Display for Path<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Root => Ok(()),
            Path::Key(parent, key) => {
                parent.fmt(f)?;
                if !matches!(parent, Path::Root) {
                    f.write_str(".")?;
                }
                f.write_str(key)
            }
            Path::Index(parent, index) => {
                parent.fmt(f)?;
                write!(f, "[{index}]")
            }
        }
    }
}

/// Collects problems found while walking a document, each with its path.
#[derive(Debug, Default)]
pub(crate) struct Problems {
    pub(crate) list: Vec<(String, String)>,
}

impl Problems {
    pub(crate) fn add(&mut self, path: &Path<'_>, message: impl Into<String>) {
        self.list.push((path.to_string(), message.into()));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// `value` as a string, or a problem.
    pub(crate) fn string<'j>(&mut self, value: &'j Json<'_>, path: &Path<'_>) -> Option<&'j str> {
        match value {
            Json::String(s) => Some(s.as_ref()),
            other => {
                self.add(path, format!("expected a string, found {}", other.kind()));
                None
            }
        }
    }

    /// `value` as a non-empty string, or a problem.
    pub(crate) fn nonempty<'j>(&mut self, value: &'j Json<'_>, path: &Path<'_>) -> Option<&'j str> {
        let s = self.string(value, path)?;
        if s.trim().is_empty() {
            self.add(path, "expected a non-empty string");
            return None;
        }
        Some(s)
    }

    pub(crate) fn boolean(&mut self, value: &Json<'_>, path: &Path<'_>) -> Option<bool> {
        match value {
            Json::Bool(b) => Some(*b),
            other => {
                self.add(path, format!("expected a boolean, found {}", other.kind()));
                None
            }
        }
    }

    pub(crate) fn array<'j>(
        &mut self,
        value: &'j Json<'j>,
        path: &Path<'_>,
    ) -> Option<&'j [Json<'j>]> {
        match value {
            Json::Array(items) => Some(items),
            other => {
                self.add(path, format!("expected an array, found {}", other.kind()));
                None
            }
        }
    }

    /// `value` as a non-negative integer that fits in `u32`, or a problem.
    pub(crate) fn integer(&mut self, value: &Json<'_>, path: &Path<'_>) -> Option<u32> {
        let n = match value {
            Json::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok()),
            _ => None,
        };
        if n.is_none() {
            self.add(
                path,
                format!(
                    "expected an integer from 0 to {}, found {}",
                    u32::MAX,
                    value.to_text()
                ),
            );
        }
        n
    }

    /// `value` as an object whose keys are all in `known` (or in `ignored`, which are accepted
    /// and skipped), or a problem for every other key.
    pub(crate) fn object<'j>(
        &mut self,
        value: &'j Json<'j>,
        path: &Path<'_>,
        known: &[&str],
        ignored: &[&str],
    ) -> Option<Obj<'j>> {
        match value {
            Json::Object(entries) => {
                for (key, _) in entries {
                    if !known.contains(&key.as_ref()) && !ignored.contains(&key.as_ref()) {
                        self.add(path, format!("unknown field `{key}`"));
                    }
                }
                Some(Obj { entries })
            }
            other => {
                self.add(path, format!("expected an object, found {}", other.kind()));
                None
            }
        }
    }
}

/// A JSON object being read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Obj<'j> {
    pub(crate) entries: &'j [(Cow<'j, str>, Json<'j>)],
}

impl<'j> Obj<'j> {
    /// The value of `key`, treating `null` as absent.
    pub(crate) fn get(&self, key: &str) -> Option<&'j Json<'j>> {
        self.entries
            .iter()
            .find(|(k, v)| k == key && !matches!(v, Json::Null))
            .map(|(_, v)| v)
    }

    /// The value of `key`, or a `missing field` problem reported at `path` (the object).
    pub(crate) fn required(
        &self,
        key: &str,
        path: &Path<'_>,
        problems: &mut Problems,
    ) -> Option<&'j Json<'j>> {
        let value = self.get(key);
        if value.is_none() {
            problems.add(path, format!("missing field `{key}`"));
        }
        value
    }
}

/// A boxed string, for compiled data that never grows.
pub(crate) fn boxed(s: &str) -> Box<str> {
    Box::from(s)
}

/// 1-based line and column of the value at `path` (`apps[2].policies[0]`; `""` is the root) in
/// the JSON `text`, found by a small scanner (the text need not be valid past that value).
pub(crate) fn position(text: &str, path: &str) -> Option<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut at = skip_ws(bytes, 0);
    for step in path_steps(path) {
        at = match step {
            Step::Key(key) => find_key(bytes, at, key)?,
            Step::Index(index) => find_index(bytes, at, index)?,
        };
    }
    let before = bytes.get(..at)?;
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let line_start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    let column = text.get(line_start..at)?.chars().count() + 1;
    Some((line, column))
}

enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn path_steps(path: &str) -> Vec<Step<'_>> {
    let mut steps = Vec::new();
    for part in path.split('.').filter(|p| !p.is_empty()) {
        let (key, mut rest) = match part.find('[') {
            Some(i) => (part.get(..i).unwrap_or(""), part.get(i..).unwrap_or("")),
            None => (part, ""),
        };
        if !key.is_empty() {
            steps.push(Step::Key(key));
        }
        while let Some(end) = rest.find(']') {
            if let Some(index) = rest.get(1..end).and_then(|n| n.parse().ok()) {
                steps.push(Step::Index(index));
            }
            rest = rest.get(end + 1..).unwrap_or("");
        }
    }
    steps
}

fn skip_ws(bytes: &[u8], mut at: usize) -> usize {
    while bytes.get(at).is_some_and(u8::is_ascii_whitespace) {
        at += 1;
    }
    at
}

/// The end of the string starting at `at` (on its opening quote), past the closing quote.
fn skip_string(bytes: &[u8], mut at: usize) -> Option<usize> {
    at += 1;
    loop {
        match bytes.get(at)? {
            b'\\' => at += 2,
            b'"' => return Some(at + 1),
            _ => at += 1,
        }
    }
}

/// The end of the value starting at `at`.
fn skip_value(bytes: &[u8], at: usize) -> Option<usize> {
    match bytes.get(at)? {
        b'"' => skip_string(bytes, at),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut i = at;
            loop {
                match bytes.get(i)? {
                    b'"' => {
                        i = skip_string(bytes, i)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(i + 1);
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
        }
        _ => {
            let mut i = at;
            while bytes
                .get(i)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']') && !b.is_ascii_whitespace())
            {
                i += 1;
            }
            Some(i)
        }
    }
}

/// In the object at `at`, where the value of the first `key` starts.
fn find_key(bytes: &[u8], at: usize, key: &str) -> Option<usize> {
    if bytes.get(at) != Some(&b'{') {
        return None;
    }
    let mut i = skip_ws(bytes, at + 1);
    while bytes.get(i) == Some(&b'"') {
        let end = skip_string(bytes, i)?;
        let name = core::str::from_utf8(bytes.get(i + 1..end - 1)?).ok()?;
        let colon = skip_ws(bytes, end);
        let value = skip_ws(bytes, colon + 1);
        if name == key {
            return Some(value);
        }
        let after = skip_ws(bytes, skip_value(bytes, value)?);
        if bytes.get(after) != Some(&b',') {
            return None;
        }
        i = skip_ws(bytes, after + 1);
    }
    None
}

/// In the array at `at`, where element `index` starts.
fn find_index(bytes: &[u8], at: usize, index: usize) -> Option<usize> {
    if bytes.get(at) != Some(&b'[') {
        return None;
    }
    let mut i = skip_ws(bytes, at + 1);
    for _ in 0..index {
        let after = skip_ws(bytes, skip_value(bytes, i)?);
        if bytes.get(after) != Some(&b',') {
            return None;
        }
        i = skip_ws(bytes, after + 1);
    }
    bytes.get(i).is_some_and(|&b| b != b']').then_some(i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_of_paths() {
        let text = "{\n  \"a\": {\"b\": [1, {\"c\": \"x,]}\"}, 3]},\n  \"d\": [\n    true\n  ]\n}";
        assert_eq!(position(text, ""), Some((1, 1)));
        assert_eq!(position(text, "a"), Some((2, 8)));
        assert_eq!(position(text, "a.b[1]"), Some((2, 18)));
        assert_eq!(position(text, "a.b[1].c"), Some((2, 24)));
        assert_eq!(position(text, "a.b[2]"), Some((2, 33)));
        assert_eq!(position(text, "d[0]"), Some((4, 5)));
        assert_eq!(position(text, "d[1]"), None);
        assert_eq!(position(text, "zz"), None);
        assert_eq!(position("{\"a\": [", "a[0]"), None);
    }
}

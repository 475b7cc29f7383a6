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

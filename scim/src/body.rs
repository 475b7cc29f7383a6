//! Request bodies as JSON, with every object's attribute names unique without case.
//!
//! Design choice: `serde_json::Value` keeps the last of two equal keys, so
//! `{"active": false, "active": true}` would be stored as active while a reader that keeps the
//! first sees a disabled user. SCIM attribute names are case-insensitive (RFC 7643 §2.1), so
//! `userName` and `username` in one object are the same attribute sent twice, just as two
//! `userName`s are. A body with two readings is refused (`invalidSyntax`, naming the attribute
//! and its JSON path), as the policy loader refuses duplicate keys in configuration.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

use crate::error::{ScimError, ScimType};

/// Parses a request body: JSON, one value, no attribute twice in any object (without case).
///
/// # Errors
/// `invalidSyntax`: the body is not JSON, or an object names an attribute twice (the detail
/// names it and its path, such as `emails[0].value`).
pub fn parse_body(bytes: &[u8]) -> Result<Value, ScimError> {
    let found = RefCell::new(None);
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let parsed = Node {
        path: &Path::Root,
        found: &found,
    }
    .deserialize(&mut deserializer)
    .and_then(|value| deserializer.end().map(|()| value));
    match (parsed, found.into_inner()) {
        (_, Some(duplicate)) => Err(ScimError::new(
            ScimType::InvalidSyntax,
            duplicate.to_string(),
        )),
        (Ok(value), None) => Ok(value),
        (Err(e), None) => Err(ScimError::new(
            ScimType::InvalidSyntax,
            format!("the body is not JSON: {e}"),
        )),
    }
}

/// Where a value sits in the body, built on the stack while parsing and written out
/// (`Operations[1].value.name`) only for an error.
#[derive(Clone, Copy)]
enum Path<'a> {
    Root,
    Key(&'a Path<'a>, &'a str),
    Index(&'a Path<'a>, usize),
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

/// The first attribute found twice.
struct Duplicate {
    /// Its path, with the first spelling.
    path: String,
    first: String,
    second: String,
}

impl fmt::Display for Duplicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "duplicate attribute `{}` at `{}`", self.first, self.path)?;
        if self.first != self.second {
            write!(
                f,
                " (also sent as `{}`; SCIM attribute names are case-insensitive)",
                self.second
            )?;
        }
        Ok(())
    }
}

/// A value to parse at `path`; the first duplicate found anywhere is recorded in `found`.
struct Node<'p> {
    path: &'p Path<'p>,
    found: &'p RefCell<Option<Duplicate>>,
}

impl<'de> DeserializeSeed<'de> for Node<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

/// Objects up to this many attributes are searched; larger ones hashed.
const SCANNED: usize = 16;

impl<'de> Visitor<'de> for Node<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        loop {
            let path = Path::Index(self.path, items.len());
            let node = Node {
                path: &path,
                found: self.found,
            };
            match seq.next_element_seed(node)? {
                Some(item) => items.push(item),
                None => return Ok(Value::Array(items)),
            }
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut object = Map::new();
        // Folded name → the spelling first seen.
        let mut scanned: Vec<(String, String)> = Vec::new();
        let mut hashed: Option<HashMap<String, String>> = None;
        while let Some(key) = map.next_key::<String>()? {
            let folded = key.to_ascii_lowercase();
            let first = match &mut hashed {
                Some(names) => names.get(&folded).cloned(),
                None => scanned
                    .iter()
                    .find(|(name, _)| *name == folded)
                    .map(|(_, spelling)| spelling.clone()),
            };
            if let Some(first) = first {
                let path = Path::Key(self.path, &first).to_string();
                *self.found.borrow_mut() = Some(Duplicate {
                    path,
                    first,
                    second: key,
                });
                return Err(de::Error::custom("duplicate attribute"));
            }
            match &mut hashed {
                Some(names) => {
                    names.insert(folded, key.clone());
                }
                None if scanned.len() < SCANNED => scanned.push((folded, key.clone())),
                None => {
                    let mut names: HashMap<String, String> = scanned.drain(..).collect();
                    names.insert(folded, key.clone());
                    hashed = Some(names);
                }
            }
            let path = Path::Key(self.path, &key);
            let value = map.next_value_seed(Node {
                path: &path,
                found: self.found,
            })?;
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

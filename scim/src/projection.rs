//! `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.5): which attributes a GET or a list
//! returns. `id` and `schemas` are always returned (`returned: always`, RFC 7643 §3.1, §7);
//! every other attribute only when `attributes` names it (or a sub-attribute of it), and
//! never when `excludedAttributes` names it. Names follow the attribute notation of RFC 7644
//! §3.10 — `userName`, `name.givenName`, `emails.value`, URN-qualified ones such as
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager`, or a whole
//! extension's URN — and compare without case. A name the resource does not have selects
//! nothing; a name that is not an attribute name (a `[…]` selection, stray spaces) is refused.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::path::AttrPath;
use crate::{GROUP_SCHEMA, USER_SCHEMA};

/// The most attribute names one parameter may list.
pub const MAX_ATTRIBUTES: usize = 100;

/// What a request asked to be returned.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Projection {
    /// `attributes`: only these (with `id` and `schemas`); `None` for the default set.
    include: Option<Vec<Selector>>,
    /// `excludedAttributes`.
    exclude: Vec<Selector>,
}

/// One attribute name, as written and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Selector {
    text: String,
    path: AttrPath,
}

impl Projection {
    /// Reads the `attributes` and `excludedAttributes` query values (comma-separated
    /// attribute names); an absent or empty one asks for nothing.
    ///
    /// # Errors
    /// `invalidValue` naming a name that is not an attribute name, or more than
    /// [`MAX_ATTRIBUTES`] names.
    pub fn parse(
        attributes: Option<&str>,
        excluded: Option<&str>,
    ) -> Result<Projection, ScimError> {
        let include = attributes
            .map(|list| selectors("attributes", list))
            .transpose()?
            .filter(|list| !list.is_empty());
        let exclude = excluded
            .map(|list| selectors("excludedAttributes", list))
            .transpose()?
            .unwrap_or_default();
        Ok(Projection { include, exclude })
    }

    /// Whether the top-level core attribute `name` (such as `members`) can be in what is
    /// returned: a server need not read what it will not return.
    pub fn returns(&self, name: &str) -> bool {
        let names = |s: &Selector| is_core(&s.path) && s.path.attr.eq_ignore_ascii_case(name);
        let included = self
            .include
            .as_ref()
            .is_none_or(|list| list.iter().any(names));
        let excluded = self
            .exclude
            .iter()
            .any(|s| names(s) && s.path.sub_attr.is_none());
        included && !excluded
    }

    /// `resource` (a rendered resource object) with only what was asked for.
    pub fn apply(&self, resource: Value) -> Value {
        let Value::Object(all) = resource else {
            return resource;
        };
        let mut out = match &self.include {
            None => all.clone(),
            Some(list) => {
                let mut out: Map<String, Value> = all
                    .iter()
                    .filter(|(k, _)| always(k))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                for selector in list {
                    copy(&all, &mut out, selector);
                }
                out
            }
        };
        for selector in &self.exclude {
            drop_selected(&mut out, selector);
        }
        Value::Object(out)
    }
}

fn selectors(parameter: &str, list: &str) -> Result<Vec<Selector>, ScimError> {
    let bad = |why: String| ScimError::new(ScimType::InvalidValue, format!("`{parameter}`: {why}"));
    let names: Vec<&str> = list
        .split(',')
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() > MAX_ATTRIBUTES {
        return Err(bad(format!("more than {MAX_ATTRIBUTES} attribute names")));
    }
    names
        .into_iter()
        .map(|text| {
            let path = AttrPath::parse(text).map_err(|e| bad(e.detail))?;
            if path.filter.is_some() {
                return Err(bad(format!(
                    "`{text}` is a selection; name attributes (`emails.value`)"
                )));
            }
            Ok(Selector {
                text: text.to_owned(),
                path,
            })
        })
        .collect()
}

/// Attributes returned whatever is asked.
fn always(name: &str) -> bool {
    name.eq_ignore_ascii_case("id") || name.eq_ignore_ascii_case("schemas")
}

fn is_core(path: &AttrPath) -> bool {
    path.urn.as_deref().is_none_or(|urn| {
        urn.eq_ignore_ascii_case(USER_SCHEMA) || urn.eq_ignore_ascii_case(GROUP_SCHEMA)
    })
}

fn key_of(map: &Map<String, Value>, name: &str) -> Option<String> {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned()
}

/// Where a selector's attribute lives: `None` for the resource itself, else the key of its
/// extension object.
enum Place {
    /// The whole value under this top-level key (a whole extension).
    Whole(String),
    /// In the resource, or in the extension object under this key.
    In(Option<String>),
}

fn place(resource: &Map<String, Value>, selector: &Selector) -> Option<Place> {
    if let Some(key) = key_of(resource, &selector.text) {
        return Some(Place::Whole(key));
    }
    if is_core(&selector.path) {
        return Some(Place::In(None));
    }
    let urn = selector.path.urn.as_deref()?;
    let key = key_of(resource, urn)?;
    resource
        .get(&key)?
        .is_object()
        .then_some(Place::In(Some(key)))
}

/// `value` with only `sub` (an object's, or each entry's of an array).
fn pick(value: &Value, sub: &str) -> Option<Value> {
    let only = |object: &Map<String, Value>| -> Map<String, Value> {
        object
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(sub))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    };
    match value {
        Value::Object(object) => {
            let picked = only(object);
            (!picked.is_empty()).then_some(Value::Object(picked))
        }
        Value::Array(items) => Some(Value::Array(
            items
                .iter()
                .map(|item| match item {
                    Value::Object(object) => Value::Object(only(object)),
                    other => other.clone(),
                })
                .collect(),
        )),
        _ => None,
    }
}

/// Adds `new` to `existing`; both come from the same resource, so objects merge key by key
/// and arrays entry by entry.
fn union(existing: &mut Value, new: Value) {
    match (existing, new) {
        (Value::Object(a), Value::Object(b)) => {
            for (k, v) in b {
                match a.get_mut(&k) {
                    Some(slot) => union(slot, v),
                    None => {
                        a.insert(k, v);
                    }
                }
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() => {
            for (slot, v) in a.iter_mut().zip(b) {
                union(slot, v);
            }
        }
        _ => {}
    }
}

fn put(out: &mut Map<String, Value>, key: String, value: Value) {
    match out.get_mut(&key) {
        Some(existing) => union(existing, value),
        None => {
            out.insert(key, value);
        }
    }
}

fn copy(resource: &Map<String, Value>, out: &mut Map<String, Value>, selector: &Selector) {
    let container = match place(resource, selector) {
        None => return,
        Some(Place::Whole(key)) => {
            if let Some(value) = resource.get(&key) {
                put(out, key, value.clone());
            }
            return;
        }
        Some(Place::In(container)) => container,
    };
    let source = match &container {
        None => Some(resource),
        Some(key) => resource.get(key).and_then(Value::as_object),
    };
    let Some(source) = source else {
        return;
    };
    let Some(key) = key_of(source, &selector.path.attr) else {
        return;
    };
    let Some(value) = source.get(&key) else {
        return;
    };
    let picked = match &selector.path.sub_attr {
        None => Some(value.clone()),
        Some(sub) => pick(value, sub),
    };
    let Some(picked) = picked else {
        return;
    };
    match container {
        None => put(out, key, picked),
        Some(extension) => put(
            out,
            extension,
            Value::Object(Map::from_iter([(key, picked)])),
        ),
    }
}

fn drop_selected(out: &mut Map<String, Value>, selector: &Selector) {
    let container = match place(out, selector) {
        None => return,
        Some(Place::Whole(key)) => {
            if !always(&key) {
                out.remove(&key);
            }
            return;
        }
        Some(Place::In(container)) => container,
    };
    let target = match &container {
        None => Some(out),
        Some(key) => out.get_mut(key).and_then(Value::as_object_mut),
    };
    let Some(target) = target else {
        return;
    };
    let Some(key) = key_of(target, &selector.path.attr) else {
        return;
    };
    if container.is_none() && always(&key) {
        return;
    }
    match (&selector.path.sub_attr, target.get_mut(&key)) {
        (None, _) => {
            target.remove(&key);
        }
        (Some(sub), Some(Value::Object(object))) => {
            object.retain(|k, _| !k.eq_ignore_ascii_case(sub))
        }
        (Some(sub), Some(Value::Array(items))) => {
            for item in items.iter_mut().filter_map(Value::as_object_mut) {
                item.retain(|k, _| !k.eq_ignore_ascii_case(sub));
            }
        }
        (Some(_), _) => {}
    }
}

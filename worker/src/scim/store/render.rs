//! Resources as served: `schemas` first, `id`, the stored attributes, `meta`; list
//! responses.

use edge_access_scim::ResourceKind;
use serde_json::{json, Map, Value};
use wasm_bindgen::JsValue;

use super::Store;
use crate::time::UnixMillis;

const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

/// What `meta` says of a resource besides its kind and location.
#[derive(Clone, Copy, Debug)]
pub struct Meta {
    pub created: UnixMillis,
    pub modified: UnixMillis,
    pub version: u64,
}

impl Store<'_> {
    /// `resource` (as stored) served as the `kind` with `id`.
    pub(super) fn render(
        &self,
        kind: ResourceKind,
        id: &str,
        resource: Map<String, Value>,
        meta: Meta,
    ) -> Value {
        let mut out = Map::new();
        let schemas = resource
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("schemas"))
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| json!([kind.schema()]));
        out.insert("schemas".into(), schemas);
        out.insert("id".into(), Value::String(id.to_owned()));
        for (k, v) in resource {
            if !k.eq_ignore_ascii_case("schemas") {
                out.insert(k, v);
            }
        }
        out.insert(
            "meta".into(),
            json!({
                "resourceType": kind.as_str(),
                "created": iso(meta.created),
                "lastModified": iso(meta.modified),
                "location": self.location(kind, id),
                "version": format!("W/\"{}\"", meta.version),
            }),
        );
        Value::Object(out)
    }

    /// Where the `kind` with `id` is served.
    pub(super) fn location(&self, kind: ResourceKind, id: &str) -> String {
        format!("{}/{}s/{id}", self.base, kind.as_str())
    }
}

/// A page of resources out of `total` matches, from `start_index`.
pub fn list_response(total: u64, start_index: u64, resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

/// An instant as SCIM's `dateTime` (ISO 8601, UTC).
fn iso(at: UnixMillis) -> String {
    let date = js_sys::Date::new(&JsValue::from(at.millis() as f64));
    date.to_iso_string().into()
}

//! What changed between two configuration documents: one entry per added, removed or changed
//! value, at the JSON path the loader's errors use (`apps[2].policies[0]`).

use serde_json::{json, Map, Value};

/// One change at `path`.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub path: String,
    pub from: Option<Value>,
    pub to: Option<Value>,
}

impl Change {
    /// `{"path", "op": "add" | "remove" | "change", "from", "to"}`.
    pub fn to_json(&self) -> Value {
        let op = match (&self.from, &self.to) {
            (None, _) => "add",
            (_, None) => "remove",
            _ => "change",
        };
        json!({ "path": self.path, "op": op, "from": self.from, "to": self.to })
    }
}

/// The changes from `from` to `to`, objects compared key by key and arrays index by index.
pub fn diff(from: &Value, to: &Value) -> Vec<Change> {
    let mut changes = Vec::new();
    walk(String::new(), from, to, &mut changes);
    changes
}

fn key_path(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

fn walk(path: String, from: &Value, to: &Value, changes: &mut Vec<Change>) {
    match (from, to) {
        (Value::Object(a), Value::Object(b)) => objects(&path, a, b, changes),
        (Value::Array(a), Value::Array(b)) => {
            for i in 0..a.len().max(b.len()) {
                let at = format!("{path}[{i}]");
                match (a.get(i), b.get(i)) {
                    (Some(x), Some(y)) => walk(at, x, y, changes),
                    (x, y) => changes.push(Change {
                        path: at,
                        from: x.cloned(),
                        to: y.cloned(),
                    }),
                }
            }
        }
        (a, b) if a == b => {}
        (a, b) => changes.push(Change {
            path,
            from: Some(a.clone()),
            to: Some(b.clone()),
        }),
    }
}

fn objects(path: &str, a: &Map<String, Value>, b: &Map<String, Value>, changes: &mut Vec<Change>) {
    for (key, x) in a {
        match b.get(key) {
            Some(y) => walk(key_path(path, key), x, y, changes),
            None => changes.push(Change {
                path: key_path(path, key),
                from: Some(x.clone()),
                to: None,
            }),
        }
    }
    for (key, y) in b {
        if !a.contains_key(key) {
            changes.push(Change {
                path: key_path(path, key),
                from: None,
                to: Some(y.clone()),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_documents_have_no_changes() {
        let doc = json!({"apps": [{"id": "a", "policies": [1, 2]}], "groups": []});
        assert_eq!(diff(&doc, &doc.clone()), []);
    }

    #[test]
    fn changes_name_their_paths() {
        let from = json!({"apps": [{"name": "A", "tags": ["x"]}], "gone": 1});
        let to = json!({"apps": [{"name": "B", "tags": ["x", "y"]}, {"name": "C"}], "new": true});
        let got: Vec<Value> = diff(&from, &to).iter().map(Change::to_json).collect();
        assert_eq!(
            got,
            [
                json!({"path": "apps[0].name", "op": "change", "from": "A", "to": "B"}),
                json!({"path": "apps[0].tags[1]", "op": "add", "from": null, "to": "y"}),
                json!({"path": "apps[1]", "op": "add", "from": null, "to": {"name": "C"}}),
                json!({"path": "gone", "op": "remove", "from": 1, "to": null}),
                json!({"path": "new", "op": "add", "from": null, "to": true}),
            ]
        );
        assert_eq!(diff(&json!(1), &json!("1")).len(), 1);
    }
}

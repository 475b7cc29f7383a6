//! The directory section: group nesting and display names.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::ids::GroupId;
use crate::json::{boxed, Json, Path};

use super::Loader;

/// The document directory's child → parent edges, and the group display names (the
/// options', then the document's).
pub(super) type DirectoryParts = (Vec<(GroupId, GroupId)>, HashMap<GroupId, Box<str>>);

impl<'j> Loader<'j, '_> {
    pub(super) fn directory(&mut self, v: Option<&'j Json<'j>>, path: &Path<'_>) -> DirectoryParts {
        let mut edges: Vec<(GroupId, GroupId)> = Vec::new();
        let mut names: HashMap<GroupId, Box<str>> =
            self.options.group_names.iter().cloned().collect();
        let Some(v) = v else { return (edges, names) };
        let Some(o) = self
            .p
            .object(v, path, &["group_parents", "group_names"], &[])
        else {
            return (edges, names);
        };
        if let Some(gp) = o.get("group_parents") {
            let at = path.key("group_parents");
            match gp {
                Json::Object(map) => {
                    for (child, parents) in map {
                        let cp = at.key(child);
                        let child_id = match GroupId::parse(child) {
                            Ok(g) => Some(g),
                            Err(e) => {
                                self.p.add(&cp, format!("`{child}` is {e}"));
                                None
                            }
                        };
                        let items = self.p.array(parents, &cp).unwrap_or(&[]);
                        for (i, parent) in items.iter().enumerate() {
                            let pp = cp.index(i);
                            let Some(s) = self.p.string(parent, &pp) else {
                                continue;
                            };
                            match (GroupId::parse(s), child_id) {
                                (Ok(p), Some(c)) => edges.push((c, p)),
                                (Ok(_), None) => {}
                                (Err(e), _) => self.p.add(&pp, format!("`{s}` is {e}")),
                            }
                        }
                    }
                }
                other => self
                    .p
                    .add(&at, format!("expected an object, found {}", other.kind())),
            }
        }
        if let Some(gn) = o.get("group_names") {
            let at = path.key("group_names");
            match gn {
                Json::Object(entries) => {
                    for (id, name) in entries {
                        let np = at.key(id);
                        let Some(name) = self.p.string(name, &np) else {
                            continue;
                        };
                        match GroupId::parse(id) {
                            Ok(g) => {
                                names.insert(g, boxed(name));
                            }
                            Err(e) => self.p.add(&np, format!("`{id}` is {e}")),
                        }
                    }
                }
                other => self
                    .p
                    .add(&at, format!("expected an object, found {}", other.kind())),
            }
        }
        (edges, names)
    }
}

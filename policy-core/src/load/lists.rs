//! Lists (`lists[]`) of emails, IPs, countries and domains.

use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use crate::ids::Email;
use crate::json::{boxed, Json, Path};
use crate::model::{List, ListItems};
use crate::net::IpRange;

use super::Loader;

/// A list's read-only fields: the API's, and its count of items.
const LIST_READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "uid",
    "reusable",
    "app_count",
    "version",
    "count",
];

impl<'j> Loader<'j, '_> {
    pub(super) fn list(&mut self, v: &'j Json<'j>, path: &Path<'_>) {
        let Some(o) = self.object(
            v,
            path,
            &["id", "name", "type", "items", "description"],
            LIST_READ_ONLY,
        ) else {
            return;
        };
        let id = o
            .required("id", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        let kind = o.required("type", path, &mut self.p).and_then(|v| {
            let s = self.p.string(v, &path.key("type"))?;
            match s {
                "EMAIL" | "IP" => Some(s),
                other => {
                    self.p.add(
                        &path.key("type"),
                        format!("unsupported list type `{other}` (`EMAIL` or `IP`)"),
                    );
                    None
                }
            }
        });
        let items_path = path.key("items");
        let items = o
            .required("items", path, &mut self.p)
            .and_then(|v| self.p.array(v, &items_path));
        let (Some(id), Some(name), Some(kind), Some(items)) = (id, name, kind, items) else {
            return;
        };
        let mut emails: Vec<Box<str>> = Vec::new();
        let mut ranges: Vec<IpRange> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = items_path.index(i);
            let Some(io) = self.object(item, &at, &["value", "description"], &["created_at"])
            else {
                continue;
            };
            let Some(value) = io.required("value", &at, &mut self.p) else {
                continue;
            };
            let Some(value) = self.p.string(value, &at.key("value")) else {
                continue;
            };
            if kind == "EMAIL" {
                match Email::parse(value) {
                    Ok(e) => emails.push(boxed(e.as_str())),
                    Err(e) => self.p.add(&at.key("value"), format!("{e} `{value}`")),
                }
            } else {
                match IpRange::parse(value) {
                    Ok(r) => ranges.push(r),
                    Err(m) => self.p.add(&at.key("value"), m),
                }
            }
        }
        emails.sort_unstable();
        emails.dedup();
        let index = u32::try_from(self.lists.len()).unwrap_or(u32::MAX);
        if self.list_index.insert(id, index).is_some() {
            self.p.add(&path.key("id"), format!("duplicate id `{id}`"));
            return;
        }
        let items = if kind == "EMAIL" {
            ListItems::Emails(emails)
        } else {
            ListItems::Ranges(ranges)
        };
        self.lists.push(List {
            id: boxed(id),
            name: boxed(name),
            items,
        });
    }
}

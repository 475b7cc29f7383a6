//! Access groups (`groups[]`) and the check that their references form no cycle.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::json::{boxed, Json, Path};
use crate::model::{AccessGroup, Rules};

use super::rules::Needs;
use super::{Loader, READ_ONLY};

/// A group → group reference found in an Access group, kept for the cycle check.
pub(super) struct GroupEdge {
    pub(super) from: u32,
    pub(super) to: u32,
    pub(super) path: String,
}

impl<'j> Loader<'j, '_> {
    pub(super) fn access_group(&mut self, v: &'j Json<'j>, path: &Path<'_>) -> Option<AccessGroup> {
        let o = self.object(
            v,
            path,
            &["id", "name", "include", "require", "exclude", "is_default"],
            READ_ONLY,
        )?;
        let id = o
            .get("id")
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        let (rules, needs) = self.rules(&o, path);
        self.group_needs.push(needs);
        Some(AccessGroup {
            id: boxed(id?),
            name: boxed(name?),
            rules: rules?,
        })
    }

    /// Rejects group reference cycles, bounds nesting depth, and folds what each group needs
    /// through the groups it references.
    pub(super) fn check_group_graph(&mut self, groups: &[Option<AccessGroup>]) {
        let n = groups.len();
        self.group_needs.resize(n, Needs::default());
        let mut out: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n];
        for (e, edge) in self.group_edges.iter().enumerate() {
            if let Some(list) = out.get_mut(edge.from as usize) {
                list.push((edge.to, e));
            }
        }
        // Iterative DFS with colours; a grey target closes a cycle.
        let mut colour = vec![0u8; n]; // 0 white, 1 grey, 2 black
        let mut cycles: Vec<Vec<(u32, usize)>> = Vec::new();
        for start in 0..n {
            if colour.get(start) != Some(&0) {
                continue;
            }
            let mut stack: Vec<(u32, usize, Option<usize>)> =
                vec![(u32::try_from(start).unwrap_or(u32::MAX), 0, None)];
            if let Some(c) = colour.get_mut(start) {
                *c = 1;
            }
            while let Some(&mut (node, ref mut next, _)) = stack.last_mut() {
                let edges = out.get(node as usize).map_or(&[][..], Vec::as_slice);
                if let Some(&(to, edge)) = edges.get(*next) {
                    *next += 1;
                    match colour.get(to as usize).copied() {
                        Some(0) => {
                            if let Some(c) = colour.get_mut(to as usize) {
                                *c = 1;
                            }
                            stack.push((to, 0, Some(edge)));
                        }
                        Some(1) => {
                            // The cycle: the stack from `to` upwards, then this edge.
                            let from = stack.iter().position(|(g, _, _)| *g == to).unwrap_or(0);
                            let mut cycle: Vec<(u32, usize)> = stack
                                .get(from + 1..)
                                .unwrap_or(&[])
                                .iter()
                                .filter_map(|(_, _, e)| e.map(|e| (0, e)))
                                .collect();
                            cycle.push((0, edge));
                            cycles.push(cycle);
                        }
                        _ => {}
                    }
                } else {
                    if let Some(c) = colour.get_mut(node as usize) {
                        *c = 2;
                    }
                    stack.pop();
                }
            }
        }
        for cycle in &cycles {
            let edges: Vec<&GroupEdge> = cycle
                .iter()
                .filter_map(|(_, e)| self.group_edges.get(*e))
                .collect();
            // Report at the reference inside the first group (document order) on the cycle.
            let Some(first) = edges.iter().min_by_key(|e| e.from) else {
                continue;
            };
            let start = edges.iter().position(|e| e.from == first.from).unwrap_or(0);
            let name = |g: u32| {
                groups
                    .get(g as usize)
                    .and_then(Option::as_ref)
                    .map_or_else(|| format!("#{g}"), |g| g.id.to_string())
            };
            let mut text = format!("`{}`", name(first.from));
            for k in 0..edges.len() {
                if let Some(e) = edges.get((start + k) % edges.len()) {
                    text.push_str(&format!(" -> `{}`", name(e.to)));
                }
            }
            let path = first.path.clone();
            self.p
                .list
                .push((path, format!("access group cycle: {text}")));
        }
        if !cycles.is_empty() {
            return;
        }
        // Acyclic: depth and needs by memoised post-order.
        let limit = self.options.limits.max_access_group_depth;
        let mut depth: Vec<Option<usize>> = vec![None; n];
        for start in 0..n {
            let mut stack: Vec<(u32, usize)> = vec![(u32::try_from(start).unwrap_or(u32::MAX), 0)];
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if depth.get(node as usize).copied().flatten().is_some() {
                    stack.pop();
                    continue;
                }
                let edges = out.get(node as usize).map_or(&[][..], Vec::as_slice);
                if let Some(&(to, _)) = edges.get(*next) {
                    *next += 1;
                    if depth.get(to as usize).copied().flatten().is_none() {
                        stack.push((to, 0));
                    }
                    continue;
                }
                let mut d = 1;
                let mut needs = self
                    .group_needs
                    .get(node as usize)
                    .copied()
                    .unwrap_or_default();
                for &(to, _) in edges {
                    d = d.max(1 + depth.get(to as usize).copied().flatten().unwrap_or(0));
                    needs = needs.union(
                        self.group_needs
                            .get(to as usize)
                            .copied()
                            .unwrap_or_default(),
                    );
                }
                if let Some(slot) = depth.get_mut(node as usize) {
                    *slot = Some(d);
                }
                if let Some(slot) = self.group_needs.get_mut(node as usize) {
                    *slot = needs;
                }
                stack.pop();
            }
        }
        for (g, d) in depth.iter().enumerate() {
            if d.unwrap_or(0) > limit {
                let path = format!("groups[{g}]");
                self.p.list.push((
                    path,
                    format!("access groups nest more than {limit} deep through this group"),
                ));
            }
        }
    }
}

pub(super) fn placeholder_group() -> AccessGroup {
    AccessGroup {
        id: boxed(""),
        name: boxed(""),
        rules: Rules::default(),
    }
}

//! Nested Entra groups: the part of the group directory that matters to the rules, and the
//! closure of a user's groups over it.
//!
//! Invariant: for every group `G` some rule names ("referenced"), and every set of user groups
//! `U`, `closure(U).contains(G)` holds exactly when `G` is reachable from some `u ∈ U` by
//! following zero or more child → parent edges of the directory. Cycles are allowed and end.
//!
//! Design choice: at construction only the groups that can reach a referenced group are kept
//! (a reverse walk from the referenced groups), renumbered densely with the referenced groups
//! first. A request then walks only edges that can matter, and its visited set is a bitset
//! over the kept groups whose first bits are the answers.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;

use crate::ids::GroupId;

/// Bounds on the work a directory and a request may cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Distinct groups in the directory.
    pub max_directory_groups: usize,
    /// Child → parent edges in the directory.
    pub max_directory_edges: usize,
    /// Groups carried by one request.
    pub max_request_groups: usize,
    /// Edges walked while computing one request's closure.
    pub max_closure_steps: usize,
    /// Depth of Access groups referencing Access groups.
    pub max_access_group_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_directory_groups: 1_000_000,
            max_directory_edges: 10_000_000,
            max_request_groups: 20_000,
            max_closure_steps: 2_000_000,
            max_access_group_depth: 32,
        }
    }
}

/// A directory that breaks a [`Limits`] bound.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum HierarchyError {
    /// More distinct groups than `max_directory_groups`.
    TooManyGroups {
        /// The bound.
        limit: usize,
    },
    /// More edges than `max_directory_edges`.
    TooManyEdges {
        /// The bound.
        limit: usize,
    },
}

impl fmt::Display for HierarchyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HierarchyError::TooManyGroups { limit } => {
                write!(f, "the directory has more than {limit} groups")
            }
            HierarchyError::TooManyEdges { limit } => {
                write!(f, "the directory has more than {limit} parent edges")
            }
        }
    }
}

/// Work a single request's closure may not exceed.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ClosureError {
    /// The request carries more groups than `max_request_groups`.
    TooManyRequestGroups {
        /// Groups in the request.
        count: usize,
        /// The bound.
        limit: usize,
    },
    /// Walking the directory took more than `max_closure_steps` edges.
    StepBudgetExceeded {
        /// The bound.
        limit: usize,
    },
}

impl fmt::Display for ClosureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClosureError::TooManyRequestGroups { count, limit } => {
                write!(
                    f,
                    "the request carries {count} groups, more than the limit of {limit}"
                )
            }
            ClosureError::StepBudgetExceeded { limit } => {
                write!(f, "nested-group closure walked more than {limit} edges")
            }
        }
    }
}

/// The relevant part of a group directory, compiled for closure queries.
#[derive(Clone, Debug, Default)]
pub struct GroupHierarchy {
    /// Kept groups → dense index; referenced groups are `0..referenced.len()`.
    index: HashMap<GroupId, u32>,
    referenced: Vec<GroupId>,
    /// CSR adjacency over kept groups: parents of `i` are `parents[offsets[i]..offsets[i + 1]]`.
    offsets: Vec<u32>,
    parents: Vec<u32>,
    max_request_groups: usize,
    max_closure_steps: usize,
}

impl GroupHierarchy {
    /// Compiles the directory `edges` (child, parent) for queries about `referenced` groups.
    ///
    /// # Errors
    /// [`HierarchyError`] when the directory exceeds `limits`.
    pub fn new(
        edges: &[(GroupId, GroupId)],
        referenced: &[GroupId],
        limits: &Limits,
    ) -> Result<GroupHierarchy, HierarchyError> {
        if edges.len() > limits.max_directory_edges {
            return Err(HierarchyError::TooManyEdges {
                limit: limits.max_directory_edges,
            });
        }
        // Number every group: referenced first, then directory groups in edge order.
        let mut all: HashMap<GroupId, u32> = HashMap::with_capacity(referenced.len() + edges.len());
        let mut ids: Vec<GroupId> = Vec::new();
        let number = |g: GroupId, all: &mut HashMap<GroupId, u32>, ids: &mut Vec<GroupId>| {
            *all.entry(g).or_insert_with(|| {
                ids.push(g);
                u32::try_from(ids.len() - 1).unwrap_or(u32::MAX)
            })
        };
        for &g in referenced {
            number(g, &mut all, &mut ids);
        }
        let referenced_count = ids.len();
        let mut numbered: Vec<(u32, u32)> = Vec::with_capacity(edges.len());
        for &(child, parent) in edges {
            let c = number(child, &mut all, &mut ids);
            let p = number(parent, &mut all, &mut ids);
            if ids.len() > limits.max_directory_groups {
                return Err(HierarchyError::TooManyGroups {
                    limit: limits.max_directory_groups,
                });
            }
            numbered.push((c, p));
        }
        let n = ids.len();

        // Reverse walk (parent → children) from the referenced groups marks what to keep.
        let children = csr(n, numbered.iter().map(|&(c, p)| (p, c)));
        let mut keep = vec![false; n];
        let mut stack: Vec<u32> = Vec::new();
        for r in 0..referenced_count {
            if let Some(k) = keep.get_mut(r) {
                *k = true;
            }
            stack.push(u32::try_from(r).unwrap_or(u32::MAX));
        }
        while let Some(g) = stack.pop() {
            for &c in children.neighbours(g) {
                if let Some(k) = keep.get_mut(c as usize) {
                    if !*k {
                        *k = true;
                        stack.push(c);
                    }
                }
            }
        }

        // Renumber the kept groups densely (the referenced ones keep 0..r).
        let mut dense = vec![u32::MAX; n];
        let mut index = HashMap::new();
        for (old, &kept) in keep.iter().enumerate() {
            if kept {
                let new = u32::try_from(index.len()).unwrap_or(u32::MAX);
                if let (Some(d), Some(&id)) = (dense.get_mut(old), ids.get(old)) {
                    *d = new;
                    index.insert(id, new);
                }
            }
        }
        let dense_of = |g: u32| dense.get(g as usize).copied().unwrap_or(u32::MAX);
        let kept_edges = numbered.iter().filter_map(|&(c, p)| {
            let (c, p) = (dense_of(c), dense_of(p));
            (c != u32::MAX && p != u32::MAX).then_some((c, p))
        });
        let parents = csr(index.len(), kept_edges);
        Ok(GroupHierarchy {
            index,
            referenced: ids
                .get(..referenced_count)
                .map(<[GroupId]>::to_vec)
                .unwrap_or_default(),
            offsets: parents.offsets,
            parents: parents.targets,
            max_request_groups: limits.max_request_groups,
            max_closure_steps: limits.max_closure_steps,
        })
    }

    /// The dense index of a referenced group, for [`Closure::contains_index`].
    pub fn referenced_index(&self, group: GroupId) -> Option<u32> {
        self.index
            .get(&group)
            .copied()
            .filter(|&i| (i as usize) < self.referenced.len())
    }

    /// The referenced groups, in index order.
    pub fn referenced(&self) -> &[GroupId] {
        &self.referenced
    }

    /// How many directory groups were kept because they can reach a referenced group.
    pub fn kept_groups(&self) -> usize {
        self.index.len()
    }

    /// The referenced groups reachable from `groups`.
    ///
    /// # Errors
    /// [`ClosureError`] when the request or the walk exceeds the limits.
    pub fn closure(&self, groups: &[GroupId]) -> Result<Closure, ClosureError> {
        if groups.len() > self.max_request_groups {
            return Err(ClosureError::TooManyRequestGroups {
                count: groups.len(),
                limit: self.max_request_groups,
            });
        }
        let mut visited = Bitset::new(if self.referenced.is_empty() {
            0
        } else {
            self.index.len()
        });
        if self.referenced.is_empty() {
            return Ok(Closure { visited });
        }
        let mut queue: Vec<u32> = Vec::new();
        for g in groups {
            if let Some(&i) = self.index.get(g) {
                if visited.insert(i) {
                    queue.push(i);
                }
            }
        }
        let mut steps = 0usize;
        while let Some(g) = queue.pop() {
            let start = self.offsets.get(g as usize).copied().unwrap_or(0) as usize;
            let end = self.offsets.get(g as usize + 1).copied().unwrap_or(0) as usize;
            for &p in self.parents.get(start..end).unwrap_or(&[]) {
                steps += 1;
                if steps > self.max_closure_steps {
                    return Err(ClosureError::StepBudgetExceeded {
                        limit: self.max_closure_steps,
                    });
                }
                if visited.insert(p) {
                    queue.push(p);
                }
            }
        }
        Ok(Closure { visited })
    }
}

/// The result of [`GroupHierarchy::closure`].
#[derive(Clone, Debug)]
pub struct Closure {
    visited: Bitset,
}

impl Closure {
    /// Whether referenced group number `index` is in the closure.
    pub fn contains_index(&self, index: u32) -> bool {
        self.visited.contains(index)
    }

    /// Whether `group` (which must be referenced) is in the closure.
    pub fn contains(&self, hierarchy: &GroupHierarchy, group: GroupId) -> bool {
        hierarchy
            .referenced_index(group)
            .is_some_and(|i| self.contains_index(i))
    }
}

#[derive(Clone, Debug)]
struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)],
        }
    }
    /// Sets bit `i`; `true` if it was clear.
    fn insert(&mut self, i: u32) -> bool {
        match self.words.get_mut((i / 64) as usize) {
            Some(w) => {
                let bit = 1u64 << (i % 64);
                let was_clear = *w & bit == 0;
                *w |= bit;
                was_clear
            }
            None => false,
        }
    }
    fn contains(&self, i: u32) -> bool {
        self.words
            .get((i / 64) as usize)
            .is_some_and(|w| w & (1u64 << (i % 64)) != 0)
    }
}

struct Csr {
    offsets: Vec<u32>,
    targets: Vec<u32>,
}

impl Csr {
    fn neighbours(&self, node: u32) -> &[u32] {
        let start = self.offsets.get(node as usize).copied().unwrap_or(0) as usize;
        let end = self.offsets.get(node as usize + 1).copied().unwrap_or(0) as usize;
        self.targets.get(start..end).unwrap_or(&[])
    }
}

/// Compressed adjacency of `edges` (from, to) over `n` nodes, duplicates removed.
fn csr(n: usize, edges: impl Iterator<Item = (u32, u32)> + Clone) -> Csr {
    let mut counts = vec![0u32; n + 1];
    for (from, _) in edges.clone() {
        if let Some(c) = counts.get_mut(from as usize + 1) {
            *c += 1;
        }
    }
    for i in 1..counts.len() {
        let prev = counts.get(i - 1).copied().unwrap_or(0);
        if let Some(c) = counts.get_mut(i) {
            *c += prev;
        }
    }
    let mut fill = counts.clone();
    let mut targets = vec![0u32; counts.last().copied().unwrap_or(0) as usize];
    for (from, to) in edges {
        if let Some(slot) = fill.get_mut(from as usize) {
            if let Some(t) = targets.get_mut(*slot as usize) {
                *t = to;
            }
            *slot += 1;
        }
    }
    // Sort and dedup each node's list, compacting in place.
    let mut write = 0usize;
    let mut offsets = Vec::with_capacity(n + 1);
    offsets.push(0u32);
    for node in 0..n {
        let start = counts.get(node).copied().unwrap_or(0) as usize;
        let end = counts.get(node + 1).copied().unwrap_or(0) as usize;
        if let Some(list) = targets.get_mut(start..end) {
            list.sort_unstable();
        }
        let mut last = None;
        for i in start..end {
            let t = targets.get(i).copied().unwrap_or(0);
            if last != Some(t) {
                if let Some(w) = targets.get_mut(write) {
                    *w = t;
                }
                write += 1;
                last = Some(t);
            }
        }
        offsets.push(u32::try_from(write).unwrap_or(u32::MAX));
    }
    targets.truncate(write);
    Csr { offsets, targets }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(n: u128) -> GroupId {
        GroupId::from_u128(n)
    }

    #[test]
    fn nested_and_cyclic() {
        // 1 -> 2 -> 3 -> 1 (cycle), 4 -> 3, 5 alone; rules name 3 and 5.
        let edges = [
            (g(1), g(2)),
            (g(2), g(3)),
            (g(3), g(1)),
            (g(4), g(3)),
            (g(6), g(7)),
        ];
        let h = GroupHierarchy::new(&edges, &[g(3), g(5)], &Limits::default()).unwrap();
        assert_eq!(h.kept_groups(), 5); // 3, 5, 1, 2, 4 — not 6 or 7
        let c = h.closure(&[g(4)]).unwrap();
        assert!(c.contains(&h, g(3)));
        assert!(!c.contains(&h, g(5)));
        let c = h.closure(&[g(1), g(5)]).unwrap();
        assert!(c.contains(&h, g(3)) && c.contains(&h, g(5)));
        let c = h.closure(&[g(6), g(99)]).unwrap();
        assert!(!c.contains(&h, g(3)) && !c.contains(&h, g(5)));
    }

    #[test]
    fn limits_are_typed_errors() {
        let limits = Limits {
            max_directory_edges: 1,
            ..Limits::default()
        };
        let edges = [(g(1), g(2)), (g(2), g(3))];
        assert_eq!(
            GroupHierarchy::new(&edges, &[g(3)], &limits).unwrap_err(),
            HierarchyError::TooManyEdges { limit: 1 }
        );
        let limits = Limits {
            max_closure_steps: 1,
            ..Limits::default()
        };
        let h = GroupHierarchy::new(&edges, &[g(3)], &limits).unwrap();
        assert_eq!(
            h.closure(&[g(1)]).unwrap_err(),
            ClosureError::StepBudgetExceeded { limit: 1 }
        );
        let limits = Limits {
            max_request_groups: 1,
            ..Limits::default()
        };
        let h = GroupHierarchy::new(&edges, &[g(3)], &limits).unwrap();
        assert!(matches!(
            h.closure(&[g(1), g(2)]),
            Err(ClosureError::TooManyRequestGroups { count: 2, limit: 1 })
        ));
    }
}

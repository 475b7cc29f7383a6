//! Nested Entra groups: the part of the group directory that matters to the rules, and the
//! closure of a user's groups over it.
//!
//! Invariant: for every group `G` some rule names ("referenced"), and every set of user groups
//! `U`, `closure(U).contains(G)` holds exactly when `G` is reachable from some `u ∈ U` by
//! following zero or more child → parent edges of the directory. Cycles are allowed and end.
//!
//! Design choice: all the work happens once, when the document is compiled. Only the groups
//! that can reach a referenced group are kept (a reverse walk from the referenced groups); their
//! strongly connected components (a directory may have cycles) are found with Tarjan's
//! algorithm, which emits every component after all the components above it, so each
//! component's *membership mask* — the referenced groups it reaches, one bit each — is its own
//! bits OR its parents' masks. A request's closure is then one hash lookup and one OR per user
//! group: no graph walk on the request path.

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
    /// Size of the membership masks, in 64-bit words: kept components × ⌈referenced groups /
    /// 64⌉ (the default, 4Mi words, is 32 MiB).
    pub max_membership_words: usize,
    /// Depth of Access groups referencing Access groups.
    pub max_access_group_depth: usize,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_directory_groups: 1_000_000,
            max_directory_edges: 10_000_000,
            max_request_groups: 20_000,
            max_membership_words: 4 << 20,
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
    /// The membership masks would exceed `max_membership_words`.
    TooManyMemberships {
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
            HierarchyError::TooManyMemberships { limit } => write!(
                f,
                "nested-group masks would need more than {limit} words: too many rule groups for this directory"
            ),
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
        }
    }
}

/// The relevant part of a group directory, compiled for closure queries.
#[derive(Clone, Debug, Default)]
pub struct GroupHierarchy {
    /// Kept group → its component.
    component: HashMap<GroupId, u32>,
    referenced: Vec<GroupId>,
    /// `words` 64-bit words per component: bit `i` set when referenced group `i` is reachable.
    masks: Vec<u64>,
    words: usize,
    max_request_groups: usize,
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
        drop(all);
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
        drop(children);
        let kept = |v: u32| keep.get(v as usize).copied().unwrap_or(false);
        let parents = csr(
            n,
            numbered
                .iter()
                .copied()
                .filter(|&(c, p)| kept(c) && kept(p)),
        );
        drop(numbered);

        let words = referenced_count.div_ceil(64);
        let (component, count) = components(n, &keep, &parents);
        if count.saturating_mul(words) > limits.max_membership_words {
            return Err(HierarchyError::TooManyMemberships {
                limit: limits.max_membership_words,
            });
        }
        let masks = membership_masks(n, referenced_count, words, &component, count, &parents);
        let mut by_id = HashMap::with_capacity(count);
        for (node, &c) in component.iter().enumerate() {
            if c != u32::MAX {
                if let Some(&id) = ids.get(node) {
                    by_id.insert(id, c);
                }
            }
        }
        Ok(GroupHierarchy {
            component: by_id,
            referenced: ids
                .get(..referenced_count)
                .map(<[GroupId]>::to_vec)
                .unwrap_or_default(),
            masks,
            words,
            max_request_groups: limits.max_request_groups,
        })
    }

    /// The bit of a referenced group, for [`Closure::contains_index`].
    pub fn referenced_index(&self, group: GroupId) -> Option<u32> {
        self.referenced
            .iter()
            .position(|g| *g == group)
            .and_then(|i| u32::try_from(i).ok())
    }

    /// The referenced groups, in bit order.
    pub fn referenced(&self) -> &[GroupId] {
        &self.referenced
    }

    /// How many directory groups were kept because they can reach a referenced group.
    pub fn kept_groups(&self) -> usize {
        self.component.len()
    }

    /// The referenced groups reachable from `groups`.
    ///
    /// # Errors
    /// [`ClosureError`] when the request carries more groups than the limit.
    pub fn closure(&self, groups: &[GroupId]) -> Result<Closure, ClosureError> {
        if groups.len() > self.max_request_groups {
            return Err(ClosureError::TooManyRequestGroups {
                count: groups.len(),
                limit: self.max_request_groups,
            });
        }
        let mut mask = vec![0u64; self.words];
        if self.words == 0 {
            return Ok(Closure { mask });
        }
        for g in groups {
            if let Some(&c) = self.component.get(g) {
                let start = c as usize * self.words;
                let words = self.masks.get(start..start + self.words).unwrap_or(&[]);
                for (m, w) in mask.iter_mut().zip(words) {
                    *m |= w;
                }
            }
        }
        Ok(Closure { mask })
    }
}

/// The result of [`GroupHierarchy::closure`]: the referenced groups reached, one bit each.
#[derive(Clone, Debug)]
pub struct Closure {
    mask: Vec<u64>,
}

impl Closure {
    /// Whether referenced group number `index` is in the closure.
    pub fn contains_index(&self, index: u32) -> bool {
        self.mask
            .get((index / 64) as usize)
            .is_some_and(|w| w & (1u64 << (index % 64)) != 0)
    }

    /// Whether `group` (which must be referenced) is in the closure.
    pub fn contains(&self, hierarchy: &GroupHierarchy, group: GroupId) -> bool {
        hierarchy
            .referenced_index(group)
            .is_some_and(|i| self.contains_index(i))
    }
}

/// Strongly connected components of the kept nodes over child → parent edges (iterative
/// Tarjan). Components are numbered in emission order, so every component's parents have
/// smaller numbers. Returns the component of each node (`u32::MAX` if not kept) and the count.
fn components(n: usize, keep: &[bool], parents: &Csr) -> (Vec<u32>, usize) {
    const NONE: u32 = u32::MAX;
    let mut order = vec![NONE; n];
    let mut low = vec![0u32; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![NONE; n];
    let mut stack: Vec<u32> = Vec::new();
    let mut call: Vec<(u32, usize)> = Vec::new();
    let mut next = 0u32;
    let mut count = 0u32;
    let mut enter = |v: u32, order: &mut [u32], low: &mut [u32], on_stack: &mut [bool]| {
        if let (Some(o), Some(l), Some(s)) = (
            order.get_mut(v as usize),
            low.get_mut(v as usize),
            on_stack.get_mut(v as usize),
        ) {
            *o = next;
            *l = next;
            *s = true;
        }
        next += 1;
    };
    for start in 0..n {
        if !keep.get(start).copied().unwrap_or(false) || order.get(start) != Some(&NONE) {
            continue;
        }
        let start = u32::try_from(start).unwrap_or(NONE);
        enter(start, &mut order, &mut low, &mut on_stack);
        stack.push(start);
        call.push((start, 0));
        while let Some(&mut (v, ref mut pos)) = call.last_mut() {
            if let Some(&w) = parents.neighbours(v).get(*pos) {
                *pos += 1;
                if order.get(w as usize) == Some(&NONE) {
                    enter(w, &mut order, &mut low, &mut on_stack);
                    stack.push(w);
                    call.push((w, 0));
                } else if on_stack.get(w as usize).copied().unwrap_or(false) {
                    let ow = order.get(w as usize).copied().unwrap_or(NONE);
                    if let Some(lv) = low.get_mut(v as usize) {
                        *lv = (*lv).min(ow);
                    }
                }
                continue;
            }
            call.pop();
            let lv = low.get(v as usize).copied().unwrap_or(NONE);
            if let Some(&(u, _)) = call.last() {
                if let Some(lu) = low.get_mut(u as usize) {
                    *lu = (*lu).min(lv);
                }
            }
            if lv == order.get(v as usize).copied().unwrap_or(NONE) {
                while let Some(w) = stack.pop() {
                    if let Some(s) = on_stack.get_mut(w as usize) {
                        *s = false;
                    }
                    if let Some(c) = component.get_mut(w as usize) {
                        *c = count;
                    }
                    if w == v {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    (component, count as usize)
}

/// Each component's mask: its own referenced groups, OR the masks of the components above it
/// (which, numbered earlier, are already complete).
fn membership_masks(
    n: usize,
    referenced: usize,
    words: usize,
    component: &[u32],
    count: usize,
    parents: &Csr,
) -> Vec<u64> {
    let mut masks = vec![0u64; count * words];
    if words == 0 {
        return masks;
    }
    // Kept nodes grouped by component, in component order.
    let mut members: Vec<u32> = (0..n)
        .filter(|&v| component.get(v).is_some_and(|&c| c != u32::MAX))
        .filter_map(|v| u32::try_from(v).ok())
        .collect();
    members.sort_unstable_by_key(|&v| component.get(v as usize).copied().unwrap_or(u32::MAX));
    let mut scratch = vec![0u64; words];
    let mut i = 0;
    while let Some(&first) = members.get(i) {
        let c = component.get(first as usize).copied().unwrap_or(u32::MAX);
        scratch.iter_mut().for_each(|w| *w = 0);
        while let Some(&v) = members.get(i) {
            if component.get(v as usize).copied() != Some(c) {
                break;
            }
            if (v as usize) < referenced {
                if let Some(w) = scratch.get_mut((v / 64) as usize) {
                    *w |= 1u64 << (v % 64);
                }
            }
            for &p in parents.neighbours(v) {
                let pc = component.get(p as usize).copied().unwrap_or(u32::MAX);
                if pc != c && pc != u32::MAX {
                    let start = pc as usize * words;
                    if let Some(pm) = masks.get(start..start + words) {
                        for (s, w) in scratch.iter_mut().zip(pm) {
                            *s |= w;
                        }
                    }
                }
            }
            i += 1;
        }
        let start = c as usize * words;
        if let Some(out) = masks.get_mut(start..start + words) {
            out.copy_from_slice(&scratch);
        }
    }
    masks
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
    fn more_than_64_referenced_groups() {
        // A chain 0 <- 1 <- … <- 199: every group reaches every group above it.
        let edges: Vec<_> = (1..200u128).map(|i| (g(i), g(i - 1))).collect();
        let referenced: Vec<_> = (0..200u128).step_by(2).map(g).collect();
        let h = GroupHierarchy::new(&edges, &referenced, &Limits::default()).unwrap();
        let c = h.closure(&[g(131)]).unwrap();
        for i in (0..200u128).step_by(2) {
            assert_eq!(c.contains(&h, g(i)), i <= 131, "{i}");
        }
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
            max_directory_groups: 2,
            ..Limits::default()
        };
        assert_eq!(
            GroupHierarchy::new(&edges, &[g(3)], &limits).unwrap_err(),
            HierarchyError::TooManyGroups { limit: 2 }
        );
        let limits = Limits {
            max_membership_words: 1,
            ..Limits::default()
        };
        assert_eq!(
            GroupHierarchy::new(&edges, &[g(3)], &limits).unwrap_err(),
            HierarchyError::TooManyMemberships { limit: 1 }
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

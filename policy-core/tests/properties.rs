//! Property tests: the compiled nested-group closure against a naive breadth-first model, and
//! the parsers of untrusted input against arbitrary text.
#![cfg(not(target_arch = "wasm32"))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::collections::{BTreeSet, VecDeque};

use policy_core::{Engine, GroupHierarchy, GroupId, Limits, Request, Target};
use proptest::prelude::*;

fn g(n: u8) -> GroupId {
    GroupId::from_u128(0x5b3e_8c1a_0d6f_4a39_9c55_0000_0000_0000 | u128::from(n))
}

/// Every group reachable from `start` over child → parent edges, by plain BFS.
fn naive_closure(edges: &[(u8, u8)], start: &[u8]) -> BTreeSet<u8> {
    let mut seen: BTreeSet<u8> = start.iter().copied().collect();
    let mut queue: VecDeque<u8> = start.iter().copied().collect();
    while let Some(x) = queue.pop_front() {
        for &(c, p) in edges {
            if c == x && seen.insert(p) {
                queue.push_back(p);
            }
        }
    }
    seen
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random directories (cycles, self-loops, diamonds, duplicates included) over 40 groups.
    #[test]
    fn closure_matches_naive_bfs(
        edges in prop::collection::vec((0u8..40, 0u8..40), 0..160),
        referenced in prop::collection::btree_set(0u8..45, 0..12),
        user in prop::collection::vec(0u8..45, 0..20),
    ) {
        let edge_ids: Vec<_> = edges.iter().map(|&(c, p)| (g(c), g(p))).collect();
        let referenced: Vec<u8> = referenced.into_iter().collect();
        let referenced_ids: Vec<_> = referenced.iter().map(|&r| g(r)).collect();
        let h = GroupHierarchy::new(&edge_ids, &referenced_ids, &Limits::default()).unwrap();
        let user_ids: Vec<_> = user.iter().map(|&u| g(u)).collect();
        let closure = h.closure(&user_ids).unwrap();
        let expected = naive_closure(&edges, &user);
        for &r in &referenced {
            prop_assert_eq!(closure.contains(&h, g(r)), expected.contains(&r), "group {}", r);
        }
        // The kept part of the directory never exceeds what can reach a referenced group.
        let can_reach: BTreeSet<u8> = (0u8..45)
            .filter(|&x| naive_closure(&edges, &[x]).iter().any(|y| referenced.contains(y)))
            .collect();
        prop_assert_eq!(h.kept_groups(), can_reach.len());
    }

    #[test]
    fn request_parser_never_panics(text in ".{0,200}") {
        let _ = Request::from_json(&text);
    }

    #[test]
    fn request_parser_never_panics_on_json_shapes(
        app in ".{0,40}", email in ".{0,30}", group in ".{0,40}", ip in ".{0,40}", country in ".{0,4}",
    ) {
        let text = serde_json::json!({
            "app": app, "identity": { "email": email, "groups": [group] }, "ip": ip, "country": country,
        }).to_string();
        let _ = Request::from_json(&text);
    }

    #[test]
    fn target_parser_never_panics(text in "\\PC{0,80}") {
        if let Ok(t) = Target::parse(&text) {
            // Normalisation is idempotent.
            let again = Target::parse(&t.to_string()).unwrap();
            prop_assert_eq!(again, t);
        }
    }

    #[test]
    fn document_parser_never_panics(text in ".{0,300}") {
        let _ = Engine::from_json(&text);
    }

    #[test]
    fn document_parser_never_panics_on_rule_shapes(
        key in "[a-zA-Z_-]{1,20}", field in "[a-z_]{1,15}", value in ".{0,40}", decision in "[a-z_]{0,12}",
    ) {
        let text = serde_json::json!({
            "team_domain": "https://access.example.com",
            "apps": [{ "id": "a", "name": "a", "domain": "a.example.com", "aud": "x",
                       "policies": [{ "name": "p", "decision": decision,
                                      "include": [{ key: { field: value } }] }] }],
        }).to_string();
        let _ = Engine::from_json(&text);
    }
}

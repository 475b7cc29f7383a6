//! The parsers of untrusted SCIM input never panic, whatever they are given.
#![allow(clippy::unwrap_used, reason = "test code: a failure panics")]

use edge_access_scim::{AttrPath, Filter, PatchRequest};
use proptest::prelude::*;

proptest! {
    #[test]
    fn filter_parser_never_panics(text in "\\PC{0,120}") {
        let _ = Filter::parse(&text);
    }

    #[test]
    fn filter_parser_never_panics_on_filter_shapes(
        attr in "[a-zA-Z.\\[\\]\" ]{0,30}", op in "(eq|EQ|co|and|or|pr|)", value in "\\PC{0,20}",
    ) {
        let _ = Filter::parse(&format!("{attr} {op} {value}"));
        let _ = Filter::parse(&format!("{attr} {op} \"{value}\" and {attr} eq {value}"));
    }

    #[test]
    fn path_parser_never_panics(text in "\\PC{0,80}") {
        let _ = AttrPath::parse(&text);
    }

    #[test]
    fn patch_parser_never_panics(op in "\\PC{0,10}", path in "\\PC{0,40}", value in "\\PC{0,20}") {
        let body = serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{ "op": op, "path": path, "value": value }, { "op": op, "value": { "active": value } }],
        });
        let _ = PatchRequest::parse(&body);
    }
}

/// Arbitrary JSON, a few levels deep.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        "\\PC{0,12}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("userName".to_owned()),
                    Just("displayName".to_owned()),
                    Just("emails".to_owned()),
                    Just("members".to_owned()),
                    Just("active".to_owned()),
                    Just("value".to_owned()),
                    Just("type".to_owned()),
                    "[a-zA-Z.:]{0,10}",
                ],
                inner,
                0..5,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn resource_checks_never_panic_and_accepted_records_are_consistent(
        body in json_value(), schema in prop_oneof![
            Just(edge_access_scim::USER_SCHEMA), Just(edge_access_scim::GROUP_SCHEMA)],
    ) {
        let mut body = body;
        if let serde_json::Value::Object(map) = &mut body {
            map.insert("schemas".into(), serde_json::json!([schema]));
        }
        if let Ok(user) = edge_access_scim::UserRecord::from_body(&body) {
            // What is stored passes the same check again, to the same record.
            let again = edge_access_scim::UserRecord::from_resource(user.resource.clone()).unwrap();
            prop_assert_eq!(again, user.clone());
            prop_assert_eq!(user.user_name_key, edge_access_scim::fold(&user.user_name));
        }
        if let Ok(group) = edge_access_scim::GroupRecord::from_body(&body) {
            prop_assert!(!group.resource.contains_key("members"));
            let mut unique = group.members.clone();
            unique.sort();
            unique.dedup();
            prop_assert_eq!(unique.len(), group.members.len());
        }
    }

    #[test]
    fn list_pages_never_panic(start in "\\PC{0,24}", count in "\\PC{0,24}") {
        if let Ok(page) = edge_access_scim::Page::parse(Some(&start), Some(&count), 100, 1000) {
            prop_assert!(page.start_index >= 1 && page.count <= 1000);
        }
    }
}

/// Whether some object in `value` has two keys equal without ASCII case.
fn has_folded_duplicate(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::Object(map) => {
            let mut folded: Vec<String> = map.keys().map(|k| k.to_ascii_lowercase()).collect();
            folded.sort();
            folded.windows(2).any(|w| w.first() == w.get(1))
                || map.values().any(has_folded_duplicate)
        }
        serde_json::Value::Array(items) => items.iter().any(has_folded_duplicate),
        _ => false,
    }
}

proptest! {
    #[test]
    fn body_parser_never_panics(text in "\\PC{0,200}") {
        let _ = edge_access_scim::parse_body(text.as_bytes());
    }

    #[test]
    fn bodies_read_as_serde_json_reads_them_unless_a_name_repeats(body in json_value()) {
        let text = body.to_string();
        match edge_access_scim::parse_body(text.as_bytes()) {
            Ok(parsed) => {
                prop_assert!(!has_folded_duplicate(&body));
                prop_assert_eq!(parsed, body);
            }
            Err(error) => {
                prop_assert!(has_folded_duplicate(&body), "{}", error);
                prop_assert!(error.detail.starts_with("duplicate attribute `"), "{}", error);
            }
        }
    }
}

//! The parsers of untrusted SCIM input never panic, whatever they are given.
#![allow(clippy::unwrap_used)]

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

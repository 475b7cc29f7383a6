//! Group PATCHes split into member changes (kept as rows by servers) and the rest; and paths
//! that name core attributes with their schema URN.

#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use edge_access_scim::{apply, split_members, MemberChange, PatchRequest, ScimType};
use serde_json::{json, Value};

fn patch(operations: Value) -> PatchRequest {
    PatchRequest::parse(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": operations
    }))
    .unwrap()
}

fn split(operations: Value) -> Result<(PatchRequest, Vec<MemberChange>), ScimType> {
    split_members(&patch(operations)).map_err(|e| e.scim_type)
}

#[test]
fn both_dialects_member_operations_become_changes() {
    // Default dialect (reference §5.3): Add/Remove with value arrays and `$ref: null`.
    let (rest, changes) = split(json!([
        { "op": "Add", "path": "members", "value": [{ "$ref": null, "value": "F648F8D5" }, { "value": "f648f8d5" }] },
        { "op": "Remove", "path": "members", "value": [{ "$ref": null, "value": "u2" }] },
        { "op": "Replace", "path": "displayName", "value": "Renamed" }
    ]))
    .unwrap();
    assert_eq!(
        changes,
        [
            MemberChange::Add(vec!["f648f8d5".into()]),
            MemberChange::Remove(vec!["u2".into()])
        ]
    );
    assert_eq!(rest.operations.len(), 1);
    // aadOptscim062020: remove by selection; path-less add with members among other keys.
    let (rest, changes) = split(json!([
        { "op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]" },
        { "op": "add", "value": { "members": [{ "value": "u3" }], "displayName": "X" } },
        { "op": "replace", "value": { "members": [{ "value": "u4" }] } },
        { "op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members" }
    ]))
    .unwrap();
    assert_eq!(
        changes,
        [
            MemberChange::Remove(vec!["7f4bc1a3-285e-48ae-8202-5accb43efb0e".into()]),
            MemberChange::Add(vec!["u3".into()]),
            MemberChange::Replace(vec!["u4".into()]),
            MemberChange::RemoveAll,
        ]
    );
    assert_eq!(rest.operations.len(), 1, "only displayName is left");
    assert_eq!(
        rest.operations[0].value,
        Some(json!({ "displayName": "X" }))
    );
}

#[test]
fn member_operations_that_cannot_apply_are_refused() {
    for (ops, expected) in [
        (
            json!([{ "op": "add", "path": "members", "value": [{ "display": "no id" }] }]),
            ScimType::InvalidValue,
        ),
        (
            json!([{ "op": "add", "path": "members", "value": "u1" }]),
            ScimType::InvalidValue,
        ),
        (
            json!([{ "op": "replace", "path": "members[value eq \"u1\"].display", "value": "x" }]),
            ScimType::InvalidPath,
        ),
        (
            json!([{ "op": "add", "path": "members[value eq \"u1\"]", "value": { "value": "u1" } }]),
            ScimType::InvalidPath,
        ),
        (
            json!([{ "op": "add", "value": { "members": [{ "value": 7 }] } }]),
            ScimType::InvalidValue,
        ),
    ] {
        assert_eq!(split(ops.clone()).unwrap_err(), expected, "{ops}");
    }
}

#[test]
fn core_schema_urn_paths_name_top_level_attributes() {
    let mut user = json!({ "userName": "a", "active": true })
        .as_object()
        .unwrap()
        .clone();
    let changes = apply(
        &mut user,
        &patch(json!([
            { "op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active", "value": false }
        ])),
    )
    .unwrap();
    assert_eq!(user["active"], false);
    assert_eq!(changes.active, Some(false));
    assert!(!user.contains_key("urn:ietf:params:scim:schemas:core:2.0:User"));
    // The server's attributes stay the server's, with or without the URN.
    for path in [
        "id",
        "urn:ietf:params:scim:schemas:core:2.0:User:id",
        "meta",
    ] {
        let error = apply(
            &mut user,
            &patch(json!([{ "op": "replace", "path": path, "value": "x" }])),
        )
        .unwrap_err();
        assert_eq!(error.scim_type, ScimType::Mutability, "{path}");
    }
    // A path-less value keyed by a whole extension URN sets attributes inside it.
    apply(
        &mut user,
        &patch(json!([{ "op": "replace", "value": {
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "R&D" } } }])),
    )
    .unwrap();
    assert_eq!(
        user["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["department"],
        "R&D"
    );
    assert_eq!(user["active"], false);
}

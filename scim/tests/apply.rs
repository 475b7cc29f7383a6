//! PATCH applied to stored resources: both dialects end in the same state, members are added
//! and removed idempotently, and a failing request changes nothing.
#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use edge_access_scim::{apply, PatchRequest};
use serde_json::{json, Map, Value};

fn user() -> Map<String, Value> {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com", "active": true, "externalId": "ada",
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "emails": [{ "type": "work", "value": "ada@example.com", "primary": true }]
    })
    .as_object()
    .unwrap()
    .clone()
}

fn patch(ops: Value) -> PatchRequest {
    PatchRequest::parse(
        &json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops }),
    )
    .unwrap()
}

#[test]
fn both_dialects_reach_the_same_state() {
    let mut default = user();
    let changes = apply(&mut default, &patch(json!([
        { "op": "Replace", "path": "displayName", "value": "Ada L." },
        { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "ada.l@example.com" },
        { "op": "Replace", "path": "name.familyName", "value": "King" },
        { "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "42" },
        { "op": "Replace", "path": "active", "value": "False" }
    ]))).unwrap();
    assert_eq!(changes.active, Some(false));

    let mut flagged = user();
    apply(&mut flagged, &patch(json!([
        { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "ada.l@example.com" },
        { "op": "replace", "value": { "displayName": "Ada L.", "name.familyName": "King",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "42", "active": false } }
    ]))).unwrap();
    assert_eq!(default, flagged);
    assert_eq!(default["emails"][0]["value"], "ada.l@example.com");
    assert_eq!(
        default["emails"][0]["primary"], true,
        "other sub-attributes are kept"
    );
    assert_eq!(default["name"]["givenName"], "Ada");
    assert_eq!(
        default["urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"]["employeeNumber"],
        "42"
    );
}

#[test]
fn a_core_urn_active_key_is_a_boolean_and_a_reported_deactivation() {
    // Path-less, the core schema's URN before `active` names the same attribute as `active`.
    let mut u = user();
    let changes = apply(
        &mut u,
        &patch(json!([{ "op": "replace", "value": {
        "urn:ietf:params:scim:schemas:core:2.0:User:active": "False" } }])),
    )
    .unwrap();
    assert_eq!(changes.active, Some(false));
    assert_eq!(u["active"], json!(false));
    let maybe = PatchRequest::parse(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "replace", "value": {
            "urn:ietf:params:scim:schemas:core:2.0:User:active": "maybe" } }] }));
    assert!(maybe.is_err());
}

#[test]
fn a_missing_work_email_is_created() {
    let mut u = user();
    u.remove("emails");
    apply(&mut u, &patch(json!([{ "op": "Add", "path": "emails[type eq \"work\"].value", "value": "new@example.com" }]))).unwrap();
    assert_eq!(
        u["emails"],
        json!([{ "type": "work", "value": "new@example.com" }])
    );
}

#[test]
fn members_are_added_and_removed_idempotently() {
    let mut group = json!({ "displayName": "Engineering", "members": [] })
        .as_object()
        .unwrap()
        .clone();
    let add = patch(
        json!([{ "op": "Add", "path": "members", "value": [{ "$ref": null, "value": "u1" }, { "value": "u2" }] }]),
    );
    let changes = apply(&mut group, &add).unwrap();
    assert_eq!(changes.members_added, ["u1", "u2"]);
    let changes = apply(&mut group, &add).unwrap();
    assert!(
        changes.members_added.is_empty(),
        "adding again changes nothing"
    );
    assert_eq!(group["members"].as_array().unwrap().len(), 2);

    // Default dialect: remove by value array.
    let changes = apply(&mut group, &patch(json!([{ "op": "Remove", "path": "members", "value": [{ "$ref": null, "value": "u1" }] }]))).unwrap();
    assert_eq!(changes.members_removed, ["u1"]);
    // Flagged dialect: remove by value filter; again is a no-op.
    let remove = patch(json!([{ "op": "remove", "path": "members[value eq \"u2\"]" }]));
    assert_eq!(apply(&mut group, &remove).unwrap().members_removed, ["u2"]);
    assert!(apply(&mut group, &remove)
        .unwrap()
        .members_removed
        .is_empty());
    assert_eq!(group["members"], json!([]));
}

#[test]
fn a_failing_request_changes_nothing() {
    let mut u = user();
    let before = u.clone();
    // The second operation cannot apply (`name` is an object; `userName` has no sub-attributes).
    let bad = patch(json!([
        { "op": "replace", "path": "displayName", "value": "changed" },
        { "op": "replace", "path": "userName.first", "value": "x" }
    ]));
    assert!(apply(&mut u, &bad).is_err());
    assert_eq!(u, before);
}

//! Filters and PATCH requests exactly as Entra sends them (reference §5.2–5.3), both dialects,
//! and what must be refused.

use edge_access_scim::{AttrPath, Filter, OperationKind, PatchRequest, ScimType, ENTERPRISE_USER};
use serde_json::{json, Value};

#[test]
fn filters_entra_sends() {
    let f =
        Filter::parse(r#"userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee""#).unwrap();
    assert!(f.all[0].path.is("userName"));
    assert_eq!(
        f.all[0].value,
        json!("Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee")
    );

    // Test Connection: a random GUID as the matching property.
    let f = Filter::parse(r#"userName eq "0f9d6c3a-1b2e-4c5d-8e7f-9a0b1c2d3e4f""#).unwrap();
    assert_eq!(f.all.len(), 1);

    let f = Filter::parse(r#"emails[type eq "work"].value eq "ada@example.com""#).unwrap();
    let path = &f.all[0].path;
    assert_eq!(path.attr, "emails");
    assert_eq!(path.filter.as_ref().unwrap().attr, "type");
    assert_eq!(path.filter.as_ref().unwrap().value, "work");
    assert_eq!(path.sub_attr.as_deref(), Some("value"));

    // The unquoted value of Microsoft's own sample.
    let f = Filter::parse("externalId eq jyoung").unwrap();
    assert_eq!(f.all[0].value, json!("jyoung"));

    let f = Filter::parse(r#"displayName eq "Group \"A\"" and externalId EQ "8aa1""#).unwrap();
    assert_eq!(f.all.len(), 2);
    assert_eq!(f.all[0].value, json!("Group \"A\""));

    let f = Filter::parse(r#"name.familyName eq "Young""#).unwrap();
    assert_eq!(f.all[0].path.sub_attr.as_deref(), Some("familyName"));
}

#[test]
fn filters_that_are_refused() {
    for bad in [
        "",
        "userName",
        "userName eq",
        r#"userName co "a""#,
        r#"userName eq "a" or userName eq "b""#,
        r#"not (userName eq "a")"#,
        r#"userName eq "unterminated"#,
        r#"emails[type eq "work".value eq "x""#,
        r#"userName pr"#,
        r#"userName eq "a" and"#,
        r#"1bad eq "a""#,
        r#"emails[type co "work"].value eq "x""#,
    ] {
        let e = Filter::parse(bad).unwrap_err();
        assert_eq!(e.scim_type, ScimType::InvalidFilter, "{bad}");
    }
    assert!(Filter::parse(&"a".repeat(3000)).is_err());
}

fn patch(ops: Value) -> Value {
    json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops })
}

#[test]
fn default_dialect() {
    // Disable: capital Replace, "False" as a string.
    let p = PatchRequest::parse(&patch(
        json!([{ "op": "Replace", "path": "active", "value": "False" }]),
    ))
    .unwrap();
    assert_eq!(p.operations[0].kind, OperationKind::Replace);
    assert_eq!(p.operations[0].value, Some(json!(false)));
    // One op per attribute, URN-prefixed extension attribute.
    let p = PatchRequest::parse(&patch(json!([
        { "op": "Replace", "path": "displayName", "value": "Pvlo" },
        { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "TestBcwqnm@test.microsoft.com" },
        { "op": "Replace", "path": "name.givenName", "value": "Gtfd" },
        { "op": "Replace", "path": "externalId", "value": "Eqpj" },
        { "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Eqpj" }
    ]))).unwrap();
    assert_eq!(p.operations.len(), 5);
    let urn = p.operations[4].path.as_ref().unwrap();
    assert_eq!(urn.urn.as_deref(), Some(ENTERPRISE_USER));
    assert_eq!(urn.attr, "employeeNumber");
    // Members with `$ref: null`, added and removed by value array.
    let p = PatchRequest::parse(&patch(json!([{ "op": "Add", "path": "members", "value": [{ "$ref": null, "value": "f648f8d5ea4e4cd38e9c" }] }]))).unwrap();
    assert!(p.operations[0].path.as_ref().unwrap().is("members"));
    let p = PatchRequest::parse(&patch(json!([{ "op": "Remove", "path": "members", "value": [{ "$ref": null, "value": "u1091" }] }]))).unwrap();
    assert_eq!(p.operations[0].kind, OperationKind::Remove);
}

#[test]
fn aad_opt_scim_062020_dialect() {
    let p = PatchRequest::parse(&patch(
        json!([{ "op": "replace", "path": "active", "value": false }]),
    ))
    .unwrap();
    assert_eq!(p.operations[0].value, Some(json!(false)));
    // Path-less replace with dotted and URN-prefixed keys.
    let p = PatchRequest::parse(&patch(json!([
        { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com" },
        { "op": "replace", "value": { "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq", "active": "True" } }
    ]))).unwrap();
    assert!(p.operations[1].path.is_none());
    assert_eq!(
        p.operations[1].value.as_ref().unwrap()["active"],
        json!(true)
    );
    // Remove a member by a value filter.
    let p = PatchRequest::parse(&patch(json!([{ "op": "remove", "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]" }]))).unwrap();
    let path = p.operations[0].path.as_ref().unwrap();
    assert_eq!(path.attr, "members");
    assert_eq!(
        path.filter.as_ref().unwrap().value,
        "7f4bc1a3-285e-48ae-8202-5accb43efb0e"
    );
    assert!(path.sub_attr.is_none());
}

#[test]
fn malformed_patches_are_refused_whole() {
    let cases: Vec<(Value, ScimType)> = vec![
        (json!("not an object"), ScimType::InvalidSyntax),
        (json!({ "Operations": [] }), ScimType::InvalidSyntax),
        (
            json!({ "schemas": ["urn:other"], "Operations": [{ "op": "add", "path": "a", "value": 1 }] }),
            ScimType::InvalidSyntax,
        ),
        (patch(json!([])), ScimType::InvalidSyntax),
        (patch(json!({ "op": "add" })), ScimType::InvalidSyntax),
        (
            patch(json!([{ "op": "frobnicate", "path": "a", "value": 1 }])),
            ScimType::InvalidSyntax,
        ),
        (
            patch(json!([{ "path": "a", "value": 1 }])),
            ScimType::InvalidSyntax,
        ),
        (patch(json!([{ "op": "remove" }])), ScimType::NoTarget),
        (
            patch(json!([{ "op": "add", "path": "displayName" }])),
            ScimType::InvalidValue,
        ),
        (
            patch(json!([{ "op": "replace", "value": "not an object" }])),
            ScimType::InvalidValue,
        ),
        (
            patch(json!([{ "op": "replace", "path": "active", "value": "maybe" }])),
            ScimType::InvalidValue,
        ),
        (
            patch(json!([{ "op": "replace", "path": 7, "value": 1 }])),
            ScimType::InvalidPath,
        ),
        (
            patch(json!([{ "op": "replace", "path": "members[value co \"x\"]", "value": 1 }])),
            ScimType::InvalidPath,
        ),
        (
            patch(json!([{ "op": "replace", "path": "a:b", "value": 1 }])),
            ScimType::InvalidPath,
        ),
        // One good operation does not save a request with a bad one.
        (
            patch(
                json!([{ "op": "replace", "path": "displayName", "value": "ok" }, { "op": "remove" }]),
            ),
            ScimType::NoTarget,
        ),
    ];
    for (body, expected) in cases {
        let e = PatchRequest::parse(&body).unwrap_err();
        assert_eq!(e.scim_type, expected, "{body}");
        assert_eq!(e.to_json()["status"], "400");
    }
}

#[test]
fn paths() {
    assert!(AttrPath::parse("userName").unwrap().is("USERNAME"));
    for bad in [
        "",
        "a.",
        ".a",
        "a[",
        "a]",
        "a[b eq \"c\"",
        "a b",
        "urn:x:",
        "a..b",
    ] {
        assert!(AttrPath::parse(bad).is_err(), "{bad}");
    }
}

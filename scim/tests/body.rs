//! Request bodies: JSON whose objects never name an attribute twice, without case (RFC 7643
//! §2.1: attribute names are case-insensitive). A body with two readings is `invalidSyntax`,
//! naming the attribute and its JSON path; every other JSON body reads exactly as
//! `serde_json` reads it.

#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use edge_access_scim::{parse_body, PatchRequest, ScimType, UserRecord};
use serde_json::{json, Value};

/// The refusal's detail; the body must be refused as `invalidSyntax`.
fn refused(body: &str) -> String {
    let error = parse_body(body.as_bytes()).unwrap_err();
    assert_eq!(error.scim_type, ScimType::InvalidSyntax, "{body}: {error}");
    assert_eq!(error.status(), 400);
    error.detail
}

#[test]
fn an_attribute_sent_twice_is_refused_with_its_path() {
    let cases = [
        // Top level: the last one would win.
        (
            r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com", "active": false, "active": true}"#,
            "duplicate attribute `active` at `active`",
        ),
        // A nested object.
        (
            r#"{"userName": "ada@example.com",
                "name": {"givenName": "Ada", "familyName": "Lovelace", "givenName": "Eve"}}"#,
            "duplicate attribute `givenName` at `name.givenName`",
        ),
        // An array element.
        (
            r#"{"userName": "ada@example.com", "emails": [
                {"type": "work", "value": "ada@example.com"},
                {"type": "home", "value": "a@home.example", "value": "eve@example.com"}]}"#,
            "duplicate attribute `value` at `emails[1].value`",
        ),
        // An extension object.
        (
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":
                {"manager": {"value": "1", "value": "2"}}}"#,
            "duplicate attribute `value` at \
             `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.manager.value`",
        ),
        // A PatchOp: inside an operation, and inside a path-less operation's value.
        (
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "Replace", "path": "displayName", "value": "A"},
                {"op": "Replace", "path": "active", "value": "True", "path": "displayName"}]}"#,
            "duplicate attribute `path` at `Operations[1].path`",
        ),
        (
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
                {"op": "replace", "value": {"displayName": "A", "displayName": "B"}}]}"#,
            "duplicate attribute `displayName` at `Operations[0].value.displayName`",
        ),
        // A group's members.
        (
            r#"{"displayName": "Team", "members": [{"value": "a"}, {"value": "b", "value": "c"}]}"#,
            "duplicate attribute `value` at `members[1].value`",
        ),
        // The same name once escaped: one attribute after decoding.
        (
            r#"{"userName": "ada@example.com", "user\u004eame": "eve@example.com"}"#,
            "duplicate attribute `userName` at `userName`",
        ),
    ];
    for (body, detail) in cases {
        assert_eq!(refused(body), detail, "{body}");
    }
}

#[test]
fn names_differing_only_in_case_are_the_same_attribute() {
    let cases = [
        (
            r#"{"userName": "ada@example.com", "username": "eve@example.com"}"#,
            "duplicate attribute `userName` at `userName` (also sent as `username`; SCIM \
             attribute names are case-insensitive)",
        ),
        (
            r#"{"userName": "a", "name": {"givenName": "Ada", "GIVENNAME": "Eve"}}"#,
            "duplicate attribute `givenName` at `name.givenName` (also sent as `GIVENNAME`; \
             SCIM attribute names are case-insensitive)",
        ),
        (
            r#"{"emails": [{"type": "work", "Type": "home", "value": "a@example.com"}]}"#,
            "duplicate attribute `type` at `emails[0].type` (also sent as `Type`; SCIM \
             attribute names are case-insensitive)",
        ),
        // `Operations` and `operations`: the server reads either.
        (
            r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "active", "value": "True"}],
                "operations": [{"op": "Replace", "path": "active", "value": "False"}]}"#,
            "duplicate attribute `Operations` at `Operations` (also sent as `operations`; \
             SCIM attribute names are case-insensitive)",
        ),
        (
            r#"{"Operations": [{"op": "add", "Op": "remove", "path": "members"}]}"#,
            "duplicate attribute `op` at `Operations[0].op` (also sent as `Op`; SCIM \
             attribute names are case-insensitive)",
        ),
        // Schema URNs are case-insensitive too.
        (
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "A"},
                "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER": {"department": "B"}}"#,
            "duplicate attribute `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` \
             at `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` (also sent as \
             `URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER`; SCIM attribute names \
             are case-insensitive)",
        ),
    ];
    for (body, detail) in cases {
        assert_eq!(refused(body), detail, "{body}");
    }
}

#[test]
fn a_duplicate_in_a_large_object_is_found() {
    // Past the size where names are hashed instead of searched.
    let mut fields: Vec<String> = (0..100).map(|i| format!("\"attr{i}\": {i}")).collect();
    fields.push("\"ATTR57\": 0".into());
    let body = format!("{{{}}}", fields.join(", "));
    assert_eq!(
        refused(&body),
        "duplicate attribute `attr57` at `attr57` (also sent as `ATTR57`; SCIM attribute \
         names are case-insensitive)"
    );
    // And a large object without one reads whole.
    let body = format!("{{{}}}", fields[..100].join(", "));
    assert_eq!(
        parse_body(body.as_bytes())
            .unwrap()
            .as_object()
            .unwrap()
            .len(),
        100
    );
}

#[test]
fn the_same_name_in_different_objects_is_fine() {
    let body = r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com", "value": "top",
        "name": {"value": "nested"},
        "emails": [{"type": "work", "value": "ada@example.com"}, {"type": "home", "value": "a@home.example"}],
        "x": [[{"value": 1}], [{"value": 2}]]}"#;
    let parsed = parse_body(body.as_bytes()).unwrap();
    assert_eq!(parsed["emails"][1]["value"], "a@home.example");
    assert_eq!(parsed["x"][1][0]["value"], 2);
}

#[test]
fn every_other_body_reads_as_serde_json_reads_it() {
    let bodies = [
        r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com",
            "active": true, "addresses": null, "n": -12, "big": 18446744073709551615, "f": 1.5e3,
            "s": "caf\u00e9 \"q\"", "emails": [], "name": {}}"#,
        "[]",
        "  \"text\"  ",
        "null",
        "7",
    ];
    for body in bodies {
        let expected: Value = serde_json::from_str(body).unwrap();
        assert_eq!(parse_body(body.as_bytes()).unwrap(), expected, "{body}");
    }
}

#[test]
fn what_is_not_json_is_invalid_syntax() {
    for body in [
        "",
        "{",
        "not json",
        r#"{"userName": "a"} {"userName": "b"}"#,
        r#"{"userName": "a",}"#,
        "[1, 2",
        "\u{feff}{}",
    ] {
        let detail = refused(body);
        assert!(
            detail.starts_with("the body is not JSON: "),
            "{body}: {detail}"
        );
    }
    // Deep nesting stops at serde_json's recursion limit, with an error rather than a crash.
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    assert!(refused(&deep).starts_with("the body is not JSON: "));
}

#[test]
fn a_refused_body_never_reaches_the_resource_rules() {
    // The last-one-wins reading would be a valid, active user.
    let body = r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "ada@example.com", "active": "False", "Active": true}"#;
    let lenient: Value = serde_json::from_str(body).unwrap();
    assert!(UserRecord::from_body(&lenient).is_ok());
    assert!(parse_body(body.as_bytes()).is_err());
    // A PatchOp read whole is the one that applies.
    let patch = json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "op": "Replace", "path": "active", "value": "False" }] });
    let parsed = parse_body(patch.to_string().as_bytes()).unwrap();
    assert_eq!(
        PatchRequest::parse(&parsed).unwrap(),
        PatchRequest::parse(&patch).unwrap()
    );
}

//! Users and groups checked before storage, filters turned into column conditions, list
//! pages: what a server accepts, normalises and refuses (with the `scimType` it answers).

use edge_access_scim::{
    conditions, group_policy_id, Condition, Filter, GroupRecord, Page, ResourceKind, ScimType,
    UserRecord,
};
use serde_json::{json, Value};

fn user(body: Value) -> Result<UserRecord, ScimType> {
    UserRecord::from_body(&body).map_err(|e| e.scim_type)
}

fn group(body: Value) -> Result<GroupRecord, ScimType> {
    GroupRecord::from_body(&body).map_err(|e| e.scim_type)
}

fn filter(text: &str, kind: ResourceKind) -> Result<Vec<Condition>, ScimType> {
    Filter::parse(text)
        .and_then(|f| conditions(&f, kind))
        .map_err(|e| e.scim_type)
}

#[test]
fn entras_create_user_payload_is_kept_as_sent() {
    // Reference §5.3, Create User.
    let body = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "emails": [{ "primary": true, "type": "work",
                     "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com" }],
        "meta": { "resourceType": "User" },
        "name": { "formatted": "givenName familyName", "familyName": "familyName", "givenName": "givenName" },
        "roles": []
    });
    let record = user(body.clone()).unwrap();
    assert_eq!(
        record.user_name,
        "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    );
    assert_eq!(
        record.user_name_key,
        "test_user_00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    );
    assert_eq!(
        record.external_id.as_deref(),
        Some("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")
    );
    assert_eq!(
        record.work_email_key.as_deref(),
        Some("test_user_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com")
    );
    assert!(record.active);
    // Everything but `meta` is stored as sent.
    let mut expected = body.as_object().unwrap().clone();
    expected.remove("meta");
    assert_eq!(record.resource, expected);
}

#[test]
fn the_older_example_with_a_malformed_urn_and_nulls_is_accepted() {
    // Reference §5.3, "Example 2": an unknown (malformed) schema URN and explicit nulls.
    let record = user(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
        "externalId": "jyoung", "userName": "jyoung@testuser.com", "active": true,
        "addresses": null, "displayName": "Joy Young",
        "emails": [{ "type": "work", "value": "jyoung@Contoso.com", "primary": true }],
        "meta": { "resourceType": "User" }, "name": { "familyName": "Young", "givenName": "Joy" },
        "phoneNumbers": null, "preferredLanguage": null, "title": null, "department": null, "manager": null
    }))
    .unwrap();
    assert_eq!(record.work_email_key.as_deref(), Some("jyoung@contoso.com"));
    assert_eq!(record.display_name_key.as_deref(), Some("joy young"));
    for gone in [
        "addresses",
        "phoneNumbers",
        "preferredLanguage",
        "title",
        "manager",
        "meta",
    ] {
        assert!(!record.resource.contains_key(gone), "{gone} kept");
    }
}

#[test]
fn active_is_a_boolean_whichever_dialect_sent_it() {
    let base = |active: Value| {
        json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "a@example.com", "active": active })
    };
    assert!(!user(base(json!("False"))).unwrap().active);
    assert!(user(base(json!("true"))).unwrap().active);
    assert!(!user(base(json!(false))).unwrap().active);
    assert_eq!(
        user(base(json!("False"))).unwrap().resource["active"],
        json!(false)
    );
    assert!(
        user(base(Value::Null)).unwrap().active,
        "absent means active"
    );
    assert_eq!(user(base(json!("no"))), Err(ScimType::InvalidValue));
    assert_eq!(user(base(json!(0))), Err(ScimType::InvalidValue));
}

#[test]
fn users_that_cannot_be_stored_are_refused_with_the_attribute_named() {
    let cases = [
        (json!([]), ScimType::InvalidSyntax),
        (json!("user"), ScimType::InvalidSyntax),
        (json!({ "userName": "a" }), ScimType::InvalidSyntax),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "userName": "a" }),
            ScimType::InvalidSyntax,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"] }),
            ScimType::InvalidValue,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "  " }),
            ScimType::InvalidValue,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": 7 }),
            ScimType::InvalidValue,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a",
                    "externalId": { "x": 1 } }),
            ScimType::InvalidValue,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a",
                    "emails": "a@example.com" }),
            ScimType::InvalidValue,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a",
                    "emails": [{ "type": "work" }] }),
            ScimType::InvalidValue,
        ),
        (
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a",
                    "emails": [{ "type": "work", "value": "x@a" }, { "type": "Work", "value": "y@a" }] }),
            ScimType::InvalidValue,
        ),
    ];
    for (body, expected) in cases {
        let detail = UserRecord::from_body(&body).unwrap_err();
        assert_eq!(detail.scim_type, expected, "{body}: {detail}");
    }
    let detail = UserRecord::from_body(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "a", "emails": [{ "type": "work" }]
    }))
    .unwrap_err()
    .detail;
    assert!(detail.contains("emails[0].value"), "{detail}");
}

#[test]
fn groups_keep_members_apart_without_duplicates() {
    // Reference §5.3, Create Group (with its second, Microsoft-specific schema URN).
    let record = group(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group",
                    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
        "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
        "displayName": "displayName",
        "meta": { "resourceType": "Group" }
    }))
    .unwrap();
    assert!(record.members.is_empty());
    assert_eq!(record.display_name_key, "displayname");
    let record = group(json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": "Team",
        "members": [{ "value": "u1", "$ref": null }, { "value": "g2", "type": "Group" }, { "value": "u1" }]
    }))
    .unwrap();
    assert_eq!(record.members, ["u1", "g2"]);
    assert!(!record.resource.contains_key("members"));
}

#[test]
fn groups_that_cannot_be_stored_are_refused() {
    let g = |extra: Value| {
        let mut body = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "T" });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        group(body)
    };
    assert_eq!(
        g(json!({ "displayName": "" })).unwrap_err(),
        ScimType::InvalidValue
    );
    assert_eq!(
        g(json!({ "displayName": null })).unwrap_err(),
        ScimType::InvalidValue
    );
    assert_eq!(
        g(json!({ "members": { "value": "u1" } })).unwrap_err(),
        ScimType::InvalidValue
    );
    assert_eq!(
        g(json!({ "members": [{ "display": "no value" }] })).unwrap_err(),
        ScimType::InvalidValue
    );
    assert_eq!(
        g(json!({ "members": [{ "value": 5 }] })).unwrap_err(),
        ScimType::InvalidValue
    );
    assert_eq!(
        group(json!({ "displayName": "no schemas" })).unwrap_err(),
        ScimType::InvalidSyntax
    );
}

#[test]
fn entras_filters_become_column_conditions() {
    assert_eq!(
        filter(
            r#"userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee""#,
            ResourceKind::User
        ),
        Ok(vec![Condition::UserName(
            "test_user_00aa00aa-bb11-cc22-dd33-44ee44ee44ee".into()
        )])
    );
    // Entra's own sample leaves the value unquoted.
    assert_eq!(
        filter("externalId eq jyoung", ResourceKind::User),
        Ok(vec![Condition::ExternalId("jyoung".into())])
    );
    assert_eq!(
        filter(
            "externalId eq 0012345 and userName eq 5",
            ResourceKind::User
        ),
        Ok(vec![
            Condition::ExternalId("0012345".into()),
            Condition::UserName("5".into())
        ])
    );
    assert_eq!(
        filter(
            r#"emails[type eq "work"].value eq "A@Example.com" and active eq true"#,
            ResourceKind::User
        ),
        Ok(vec![
            Condition::WorkEmail("a@example.com".into()),
            Condition::Active(true)
        ])
    );
    assert_eq!(
        filter(r#"displayName eq "displayName""#, ResourceKind::Group),
        Ok(vec![Condition::DisplayName("displayname".into())])
    );
    assert_eq!(
        filter(
            r#"urn:ietf:params:scim:schemas:core:2.0:User:userName eq "x""#,
            ResourceKind::User
        ),
        Ok(vec![Condition::UserName("x".into())])
    );
}

#[test]
fn filters_on_what_is_not_indexed_are_invalid_filters() {
    for (text, kind) in [
        (r#"userName eq "x""#, ResourceKind::Group),
        (r#"nickName eq "x""#, ResourceKind::User),
        (r#"emails[type eq "home"].value eq "x""#, ResourceKind::User),
        (r#"emails.value eq "x""#, ResourceKind::User),
        // The membership check (`members[value eq "…"]`) is a filter; other selections of
        // members are not.
        (r#"members[display eq "x"]"#, ResourceKind::Group),
        (r#"members[value eq "x"]"#, ResourceKind::User),
        (r#"active eq "maybe""#, ResourceKind::User),
        (r#"userName co "x""#, ResourceKind::User),
        (r#"userName eq "x"#, ResourceKind::User),
        (r#"(userName eq "x")"#, ResourceKind::User),
        (r#"userName eq "x" or userName eq "y""#, ResourceKind::User),
        (
            r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "1""#,
            ResourceKind::User,
        ),
        ("", ResourceKind::User),
    ] {
        assert_eq!(
            filter(text, kind),
            Err(ScimType::InvalidFilter),
            "{text} on {kind:?}"
        );
    }
}

#[test]
fn list_pages_follow_rfc_7644() {
    let page = |s: Option<&str>, c: Option<&str>| Page::parse(s, c, 100, 1000);
    assert_eq!(
        page(None, None).unwrap(),
        Page {
            start_index: 1,
            count: 100
        }
    );
    assert_eq!(
        page(Some("0"), Some("-5")).unwrap(),
        Page {
            start_index: 1,
            count: 0
        }
    );
    assert_eq!(
        page(Some("21"), Some("5000")).unwrap(),
        Page {
            start_index: 21,
            count: 1000
        }
    );
    for (s, c) in [
        (Some("one"), None),
        (None, Some("1.5")),
        (Some(""), None),
        (None, Some("99999999999999999999999")),
    ] {
        assert_eq!(
            page(s, c).unwrap_err().scim_type,
            ScimType::InvalidValue,
            "{s:?} {c:?}"
        );
    }
}

#[test]
fn a_guid_external_id_binds_the_user_to_an_object_id() {
    let body = |external_id: Value| {
        json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": "ada@example.com", "externalId": external_id })
    };
    // Entra's objectId mapped to externalId: the token's `oid`, lowercase.
    let bound = user(body(json!("0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF"))).unwrap();
    assert_eq!(
        bound.object_id.as_deref(),
        Some("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef")
    );
    assert_eq!(
        bound.external_id.as_deref(),
        Some("0A21F0F2-8D2A-4F8E-BF98-7363C4AED4EF"),
        "externalId itself stays as sent"
    );
    assert!(bound.check_bound().is_ok());
    // Entra's default mapping (mailNickname), other shapes, none at all: not bound.
    for external_id in [
        json!("jyoung"),
        json!("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4e"),
        json!("0a21f0f28d2a4f8ebf987363c4aed4ef"),
        json!("{0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef}"),
        json!(" 0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"),
        json!("0a21f0f2-8d2a-4f8e-bf98-7363c4aed4eg"),
        json!("0a21f0f2-8d2a-4f8e-bf98-7363c4a-d4ef"),
        json!(null),
    ] {
        let record = user(body(external_id.clone())).unwrap();
        assert_eq!(record.object_id, None, "{external_id}");
        let error = record.check_bound().unwrap_err();
        assert_eq!(error.scim_type, ScimType::InvalidValue, "{external_id}");
        assert!(
            error.detail.contains("`externalId`") && error.detail.contains("objectId"),
            "{error}"
        );
    }
    // A disabled user is stored whatever its externalId: refusing a disable keeps a user in.
    let mut disabled = body(json!("jyoung"));
    disabled["active"] = json!("False");
    assert!(user(disabled).unwrap().check_bound().is_ok());
    assert_eq!(
        edge_access_scim::object_id("9D8C7B6A-5F4E-4D3C-8B2A-1F0E9D8C7B6A").as_deref(),
        Some("9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a")
    );
}

#[test]
fn a_groups_policy_id_is_its_external_object_id_else_its_id() {
    let oid = "7A1B2C3D-0000-4000-8000-00000000000A";
    let server = "11111111-2222-4333-8444-555555555555";
    let lower = oid.to_ascii_lowercase();
    assert_eq!(group_policy_id(server, Some(oid)), Some(lower.clone()));
    // Whitespace around the object id does not make it another group.
    assert_eq!(
        group_policy_id(server, Some(&format!(" {oid}\t"))),
        Some(lower)
    );
    // Not a GUID, empty or absent: the server's id.
    for external in [Some("Engineering"), Some(""), None, Some("7a1b2c3d-0000")] {
        assert_eq!(
            group_policy_id(server, external),
            Some(server.to_owned()),
            "{external:?}"
        );
    }
    // Neither is a GUID: none.
    assert_eq!(group_policy_id("group-1", Some("Engineering")), None);
    assert_eq!(group_policy_id("group-1", None), None);
}

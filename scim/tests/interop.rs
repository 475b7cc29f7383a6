//! Entra's provisioning requests replayed against the crate, for what Entra reads back: the
//! enterprise `manager` (sent as a bare id, read back as `{"value": id}`), attribute names
//! inside filtered paths without case (RFC 7643 §2.1), removes and replaces that must not
//! re-enable a user, change `schemas` or drop sub-attributes (RFC 7644 §3.5.2), the group
//! membership check (`id eq "…" and members[value eq "…"]`) and `attributes=` (RFC 7644
//! §3.4.2.5).
#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use edge_access_scim::{
    apply, conditions, member_ids, Condition, Filter, GroupRecord, PatchRequest, Projection,
    ResourceKind, ScimType, UserRecord, ENTERPRISE_USER, USER_SCHEMA,
};
use serde_json::{json, Map, Value};

const MANAGER_ID: &str = "45619541-95de-4d5e-9872-571b5d2c5577";

fn object(value: Value) -> Map<String, Value> {
    value.as_object().unwrap().clone()
}

/// A user as Entra creates it (reference §5.3), with a mobile phone.
fn user() -> Map<String, Value> {
    object(json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER],
        "userName": "ada@example.com", "active": true, "externalId": "ada",
        "name": { "formatted": "Ada Lovelace", "givenName": "Ada", "familyName": "Lovelace" },
        "emails": [{ "type": "work", "value": "ada@example.com", "primary": true }],
        "phoneNumbers": [{ "type": "mobile", "value": "+1 555 0100" }]
    }))
}

fn patch(ops: Value) -> PatchRequest {
    PatchRequest::parse(&json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": ops
    }))
    .unwrap()
}

/// The user after `ops` and the checks a server stores it with.
fn patched(stored: &Map<String, Value>, ops: Value) -> Result<UserRecord, ScimType> {
    let mut resource = stored.clone();
    apply(&mut resource, &patch(ops)).map_err(|e| e.scim_type)?;
    UserRecord::from_resource(resource).map_err(|e| e.scim_type)
}

fn manager_of(record: &UserRecord) -> Option<&Value> {
    record.resource.get(ENTERPRISE_USER)?.get("manager")
}

// ---- manager ----------------------------------------------------------------------------

#[test]
fn the_manager_entra_sends_as_an_id_is_kept_as_a_complex_attribute() {
    let expected = json!({ "value": MANAGER_ID });
    let cases = [
        // The default dialect, as captured from Entra (`Add`, the URN-qualified path, the id).
        json!([{ "op": "Add", "path": format!("{ENTERPRISE_USER}:manager"), "value": MANAGER_ID }]),
        // aadOptscim062020 with a path.
        json!([{ "op": "add", "path": format!("{ENTERPRISE_USER}:manager"), "value": MANAGER_ID }]),
        // aadOptscim062020's path-less replace with the URN-qualified key.
        json!([{ "op": "replace", "value": { format!("{ENTERPRISE_USER}:manager"): MANAGER_ID } }]),
        // Path-less, the extension as an object.
        json!([{ "op": "replace", "value": { ENTERPRISE_USER: { "manager": MANAGER_ID } } }]),
        // The tutorial's request: the unqualified path, a one-entry array with `$ref`.
        json!([{ "op": "Add", "path": "manager", "value": [
            { "$ref": format!("http://.../scim/Users/{MANAGER_ID}"), "value": MANAGER_ID }] }]),
        // Already complex, and a sub-attribute path.
        json!([{ "op": "replace", "path": format!("{ENTERPRISE_USER}:manager"),
                 "value": { "value": MANAGER_ID, "displayName": "Grace" } }]),
        json!([{ "op": "Replace", "path": format!("{ENTERPRISE_USER}:manager.value"), "value": MANAGER_ID }]),
    ];
    for ops in cases {
        let record = patched(&user(), ops.clone()).unwrap();
        assert_eq!(manager_of(&record), Some(&expected), "{ops}");
        assert!(
            !record.resource.contains_key("manager"),
            "the manager lives in the enterprise extension: {ops}"
        );
    }
}

#[test]
fn a_manager_in_a_create_or_replace_body_is_complex_too() {
    // Microsoft's schema example writes the manager as a bare string.
    for manager in [
        json!("123456"),
        json!({ "value": "123456" }),
        json!([{ "value": "123456" }]),
    ] {
        let body = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER], "userName": "u@example.com",
            ENTERPRISE_USER: { "manager": manager.clone(), "department": "R&D" }
        });
        let record = UserRecord::from_body(&body).unwrap();
        assert_eq!(
            manager_of(&record),
            Some(&json!({ "value": "123456" })),
            "{manager}"
        );
        assert_eq!(record.resource[ENTERPRISE_USER]["department"], "R&D");
    }
    // An unqualified manager (core User has none) moves into the extension.
    let body = json!({ "schemas": [USER_SCHEMA], "userName": "u@example.com", "manager": "m1" });
    let record = UserRecord::from_body(&body).unwrap();
    assert_eq!(manager_of(&record), Some(&json!({ "value": "m1" })));
    assert!(!record.resource.contains_key("manager"));
    assert!(
        record.resource["schemas"]
            .as_array()
            .unwrap()
            .contains(&json!(ENTERPRISE_USER)),
        "the extension's schema is listed: {:?}",
        record.resource
    );
    // No manager: nothing, not an empty object.
    for manager in [json!(""), json!({ "value": "" }), json!([])] {
        let body = json!({ "schemas": [USER_SCHEMA], "userName": "u@example.com",
                           ENTERPRISE_USER: { "manager": manager.clone() } });
        let record = UserRecord::from_body(&body).unwrap();
        assert_eq!(manager_of(&record), None, "{manager}");
    }
}

#[test]
fn a_manager_stored_as_a_string_is_read_back_complex() {
    // A user stored before managers were kept complex.
    let mut stored = user();
    stored.insert(ENTERPRISE_USER.into(), json!({ "manager": MANAGER_ID }));
    let record = UserRecord::from_resource(stored.clone()).unwrap();
    assert_eq!(manager_of(&record), Some(&json!({ "value": MANAGER_ID })));
    assert_eq!(UserRecord::normalised(stored.clone()), record.resource);
    // What does not pass the checks is served as stored.
    let odd = object(json!({ "schemas": [USER_SCHEMA], "emails": 7 }));
    assert_eq!(UserRecord::normalised(odd.clone()), odd);
    // And a PATCH of another attribute leaves it complex.
    let record = patched(
        &stored,
        json!([{ "op": "Replace", "path": "displayName", "value": "Ada" }]),
    )
    .unwrap();
    assert_eq!(manager_of(&record), Some(&json!({ "value": MANAGER_ID })));
}

#[test]
fn the_manager_is_removed_as_the_reference_code_removes_it() {
    let with = patched(
        &user(),
        json!([{ "op": "Add", "path": format!("{ENTERPRISE_USER}:manager"), "value": MANAGER_ID }]),
    )
    .unwrap()
    .resource;
    for ops in [
        json!([{ "op": "Remove", "path": format!("{ENTERPRISE_USER}:manager") }]),
        json!([{ "op": "remove", "path": "manager" }]),
        json!([{ "op": "Remove", "path": format!("{ENTERPRISE_USER}:manager"),
                 "value": [{ "value": MANAGER_ID.to_ascii_uppercase() }] }]),
    ] {
        assert_eq!(
            manager_of(&patched(&with, ops.clone()).unwrap()),
            None,
            "{ops}"
        );
    }
    // Removing another manager than the stored one leaves it.
    let kept = patched(
        &with,
        json!([{ "op": "Remove", "path": format!("{ENTERPRISE_USER}:manager"), "value": [{ "value": "someone-else" }] }]),
    )
    .unwrap();
    assert_eq!(manager_of(&kept), Some(&json!({ "value": MANAGER_ID })));
}

#[test]
fn managers_that_are_not_an_id_are_refused() {
    for manager in [
        json!(7),
        json!(true),
        json!({ "displayName": "no value" }),
        json!({ "value": 7 }),
        json!([{ "value": "a" }, { "value": "b" }]),
        json!(["a"]),
    ] {
        let ops = json!([{ "op": "replace", "path": format!("{ENTERPRISE_USER}:manager"), "value": manager.clone() }]);
        assert_eq!(
            patched(&user(), ops).unwrap_err(),
            ScimType::InvalidValue,
            "{manager}"
        );
    }
}

// ---- attribute names without case -------------------------------------------------------

#[test]
fn attribute_names_in_filtered_paths_compare_without_case() {
    // The mobile number is updated, not duplicated (`Type`, `Value`, `Mobile` as sent).
    for path in [
        r#"phoneNumbers[type eq "mobile"].value"#,
        r#"phoneNumbers[Type eq "mobile"].Value"#,
        r#"PHONENUMBERS[TYPE eq "Mobile"].VALUE"#,
    ] {
        let record = patched(
            &user(),
            json!([{ "op": "Replace", "path": path, "value": "+1 555 0199" }]),
        )
        .unwrap();
        assert_eq!(
            record.resource["phoneNumbers"],
            json!([{ "type": "mobile", "value": "+1 555 0199" }]),
            "{path}"
        );
    }
    // The same shape on emails updates the work address (it used to add a second one, refused).
    let record = patched(
        &user(),
        json!([{ "op": "Replace", "path": r#"emails[Type eq "Work"].Value"#, "value": "ada.l@example.com" }]),
    )
    .unwrap();
    assert_eq!(
        record.resource["emails"],
        json!([{ "type": "work", "value": "ada.l@example.com", "primary": true }])
    );
    assert_eq!(record.work_email_key.as_deref(), Some("ada.l@example.com"));
    // A selection without a match creates the entry with the attributes' own spelling.
    let record = patched(
        &user(),
        json!([{ "op": "Add", "path": r#"phoneNumbers[Type eq "work"].Value"#, "value": "+1 555 0111" }]),
    )
    .unwrap();
    assert_eq!(
        record.resource["phoneNumbers"][1],
        json!({ "type": "work", "value": "+1 555 0111" })
    );
    // Removes select without case too; so does `primary eq true`.
    let record = patched(
        &user(),
        json!([{ "op": "Remove", "path": r#"phoneNumbers[TYPE eq "MOBILE"]"# },
               { "op": "Remove", "path": "emails[Primary eq true].Primary" }]),
    )
    .unwrap();
    assert_eq!(record.resource["phoneNumbers"], json!([]));
    assert_eq!(
        record.resource["emails"],
        json!([{ "type": "work", "value": "ada@example.com" }])
    );
    // A sub-attribute path without a selection keeps the stored spelling.
    let record = patched(
        &user(),
        json!([{ "op": "Replace", "path": "Name.FamilyName", "value": "King" }]),
    )
    .unwrap();
    assert_eq!(
        record.resource["name"],
        json!({ "formatted": "Ada Lovelace", "givenName": "Ada", "familyName": "King" })
    );
}

#[test]
fn member_values_and_message_fields_compare_without_case() {
    assert_eq!(
        member_ids(&json!([{ "Value": "U1" }, { "VALUE": "u2" }])).unwrap(),
        ["u1", "u2"]
    );
    let group = GroupRecord::from_body(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "G",
        "members": [{ "Value": "u1" }]
    }))
    .unwrap();
    assert_eq!(group.members, ["u1"]);
    // `Op`, `Path`, `Value`, `Schemas`.
    let p = PatchRequest::parse(&json!({
        "Schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{ "Op": "Replace", "Path": "active", "Value": "False" }]
    }))
    .unwrap();
    assert_eq!(p.operations[0].value, Some(json!(false)));
    let record =
        UserRecord::from_body(&json!({ "SCHEMAS": [USER_SCHEMA], "userName": "u" })).unwrap();
    assert_eq!(record.user_name, "u");
}

// ---- removes and replaces ---------------------------------------------------------------

#[test]
fn removing_active_never_re_enables_a_user() {
    let mut disabled = user();
    disabled.insert("active".into(), json!(false));
    for ops in [
        json!([{ "op": "Remove", "path": "active" }]),
        json!([{ "op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active" }]),
        json!([{ "op": "Remove", "path": "ACTIVE", "value": "False" }]),
    ] {
        assert_eq!(
            patched(&disabled, ops.clone()).unwrap_err(),
            ScimType::Mutability,
            "{ops}"
        );
    }
    // userName is required as well.
    assert_eq!(
        patched(&user(), json!([{ "op": "Remove", "path": "userName" }])).unwrap_err(),
        ScimType::Mutability
    );
}

#[test]
fn a_replace_without_active_keeps_the_stored_state() {
    let mut disabled = user();
    disabled.insert("active".into(), json!(false));
    let body =
        json!({ "schemas": [USER_SCHEMA], "userName": "ada@example.com", "displayName": "Ada" });
    let record = UserRecord::replacing(&body, &disabled).unwrap();
    assert!(!record.active);
    assert_eq!(record.resource["active"], false);
    // A body that says `active` decides.
    let mut body = body;
    body["active"] = json!("True");
    assert!(UserRecord::replacing(&body, &disabled).unwrap().active);
}

#[test]
fn schemas_belong_to_the_server() {
    for ops in [
        json!([{ "op": "replace", "path": "schemas", "value": ["x"] }]),
        json!([{ "op": "Replace", "value": { "schemas": ["x"] } }]),
        json!([{ "op": "add", "path": "schemas", "value": ["urn:x"] }]),
        json!([{ "op": "remove", "path": "schemas" }]),
    ] {
        assert_eq!(
            patched(&user(), ops.clone()).unwrap_err(),
            ScimType::Mutability,
            "{ops}"
        );
    }
    // A resource stored with broken schemas is repaired, not refused.
    let mut broken = user();
    broken.insert("schemas".into(), json!(["x"]));
    let record = UserRecord::from_resource(broken).unwrap();
    assert_eq!(record.resource["schemas"], json!([USER_SCHEMA, "x"]));
}

#[test]
fn replacing_part_of_a_complex_attribute_keeps_the_rest() {
    let expected =
        json!({ "formatted": "Ada Lovelace", "givenName": "Augusta", "familyName": "Lovelace" });
    for ops in [
        json!([{ "op": "Replace", "path": "name", "value": { "givenName": "Augusta" } }]),
        json!([{ "op": "replace", "value": { "name": { "givenName": "Augusta" } } }]),
        json!([{ "op": "add", "path": "name", "value": { "GIVENNAME": "Augusta" } }]),
    ] {
        let record = patched(&user(), ops.clone()).unwrap();
        assert_eq!(record.resource["name"], expected, "{ops}");
    }
    // A null sub-attribute is unassigned.
    let record = patched(
        &user(),
        json!([{ "op": "replace", "path": "name", "value": { "formatted": null } }]),
    )
    .unwrap();
    assert_eq!(
        record.resource["name"],
        json!({ "givenName": "Ada", "familyName": "Lovelace" })
    );
    // Multi-valued attributes are still replaced whole (RFC 7644 §3.5.2.3).
    let record = patched(
        &user(),
        json!([{ "op": "replace", "path": "phoneNumbers", "value": [{ "type": "work", "value": "1" }] }]),
    )
    .unwrap();
    assert_eq!(
        record.resource["phoneNumbers"],
        json!([{ "type": "work", "value": "1" }])
    );
}

// ---- the membership check and attributes= ----------------------------------------------

fn group_conditions(text: &str) -> Result<Vec<Condition>, ScimType> {
    Filter::parse(text)
        .and_then(|f| conditions(&f, ResourceKind::Group))
        .map_err(|e| e.scim_type)
}

#[test]
fn the_membership_check_is_a_filter() {
    let g = "7A3E5B0C-0000-4000-8000-000000000001";
    let u = "7A3E5B0C-0000-4000-8000-000000000002";
    let expected = vec![
        Condition::Id(g.to_ascii_lowercase()),
        Condition::Member(u.to_ascii_lowercase()),
    ];
    for text in [
        format!(r#"id eq "{g}" and members[value eq "{u}"]"#),
        format!(r#"id eq "{g}" and members.value eq "{u}""#),
        // Microsoft's reference code's form.
        format!(r#"id eq "{g}" and members eq "{u}""#),
        format!(r#"ID EQ "{g}" AND Members[Value EQ "{u}"]"#),
    ] {
        assert_eq!(group_conditions(&text).unwrap(), expected, "{text}");
    }
    assert_eq!(
        group_conditions(r#"members[value eq "u1"]"#).unwrap(),
        [Condition::Member("u1".into())]
    );
    assert_eq!(
        group_conditions(r#"members[value eq "u1"] and displayName eq "G""#).unwrap(),
        [
            Condition::Member("u1".into()),
            Condition::DisplayName("g".into())
        ]
    );
}

#[test]
fn membership_filters_beyond_the_check_are_refused() {
    for text in [
        r#"members[value eq "a" or value eq "b"]"#,
        r#"members[value eq "a" and type eq "User"]"#,
        r#"members[display eq "a"]"#,
        r#"members[type eq "User"]"#,
        r#"members[value co "a"]"#,
        r#"members[value eq "a"].display eq "x""#,
        r#"members[value eq "a"] eq "x""#,
        r#"members.display eq "a""#,
        r#"members pr"#,
        r#"members[value eq "a"] or id eq "b""#,
        r#"not (members[value eq "a"])"#,
        r#"members[value eq "a"]]"#,
        r#"members[value eq true]"#,
    ] {
        assert_eq!(
            group_conditions(text).unwrap_err(),
            ScimType::InvalidFilter,
            "{text}"
        );
    }
    // Users have no members.
    assert_eq!(
        Filter::parse(r#"members[value eq "a"]"#)
            .and_then(|f| conditions(&f, ResourceKind::User))
            .unwrap_err()
            .scim_type,
        ScimType::InvalidFilter
    );
}

fn rendered_user() -> Value {
    json!({
        "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": "u1", "userName": "ada@example.com",
        "name": { "givenName": "Ada", "familyName": "Lovelace" },
        "emails": [{ "type": "work", "value": "ada@example.com" }, { "type": "home", "value": "a@home" }],
        ENTERPRISE_USER: { "manager": { "value": "m1" }, "department": "R&D" },
        "meta": { "resourceType": "User", "version": "W/\"1\"" }
    })
}

fn project(attributes: Option<&str>, excluded: Option<&str>) -> Value {
    Projection::parse(attributes, excluded)
        .unwrap()
        .apply(rendered_user())
}

#[test]
fn attributes_select_what_is_returned_with_id_and_schemas_always() {
    assert_eq!(
        project(Some("id"), None),
        json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": "u1" })
    );
    assert_eq!(
        project(Some("USERNAME, name.givenName,emails.value"), None),
        json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": "u1", "userName": "ada@example.com",
                "name": { "givenName": "Ada" },
                "emails": [{ "value": "ada@example.com" }, { "value": "a@home" }] })
    );
    assert_eq!(
        project(
            Some(&format!(
                "{USER_SCHEMA}:userName,{ENTERPRISE_USER}:manager,meta"
            )),
            None
        ),
        json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": "u1", "userName": "ada@example.com",
                ENTERPRISE_USER: { "manager": { "value": "m1" } },
                "meta": { "resourceType": "User", "version": "W/\"1\"" } })
    );
    assert_eq!(
        project(Some(ENTERPRISE_USER), None)[ENTERPRISE_USER],
        json!({ "manager": { "value": "m1" }, "department": "R&D" })
    );
    // Exclusions, sub-attributes included; id and schemas stay.
    let excluded = project(
        None,
        Some(&format!(
            "emails,name.familyName,id,schemas,{ENTERPRISE_USER}:department"
        )),
    );
    assert!(excluded.get("emails").is_none());
    assert_eq!(excluded["name"], json!({ "givenName": "Ada" }));
    assert_eq!(excluded["id"], "u1");
    assert_eq!(
        excluded[ENTERPRISE_USER],
        json!({ "manager": { "value": "m1" } })
    );
    // Unknown attributes select nothing; no parameter returns everything.
    assert_eq!(
        project(Some("nickName"), None),
        json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": "u1" })
    );
    assert_eq!(project(None, None), rendered_user());
    assert_eq!(project(Some(""), None), rendered_user());
    // Whether members would be returned (a server need not read them otherwise).
    let p = Projection::parse(Some("id"), None).unwrap();
    assert!(!p.returns("members"));
    assert!(Projection::parse(Some("displayName,Members"), None)
        .unwrap()
        .returns("members"));
    assert!(!Projection::parse(None, Some("members"))
        .unwrap()
        .returns("members"));
    assert!(Projection::parse(None, None).unwrap().returns("members"));
    assert!(Projection::parse(None, Some("members.display"))
        .unwrap()
        .returns("members"));
}

#[test]
fn attributes_that_are_not_attribute_names_are_refused() {
    for bad in [
        r#"emails[type eq "work"]"#,
        "a b",
        "name.",
        "urn:x:",
        &"a,".repeat(200),
    ] {
        assert_eq!(
            Projection::parse(Some(bad), None).unwrap_err().scim_type,
            ScimType::InvalidValue,
            "{bad}"
        );
        assert_eq!(
            Projection::parse(None, Some(bad)).unwrap_err().scim_type,
            ScimType::InvalidValue,
            "{bad}"
        );
    }
}

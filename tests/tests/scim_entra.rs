//! The worker's SCIM endpoint (`/cdn-cgi/access/scim/v2`) as Entra ID provisioning drives it:
//! Entra's whole provisioning cycle in both PATCH dialects (`emulator::provisioning`), every
//! verbatim request of Microsoft's SCIM tutorial (reference §5.3), and refusals that must leave
//! the stored directory exactly as it was.
//!
//! One stack for the binary; its tests run in parallel, each on resources with names of its
//! own. Needs `cargo xtask build-worker` first; see `harness.rs`.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::collections::BTreeSet;
use std::sync::OnceLock;
use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig, SCIM_PATH, SCIM_TOKEN};
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::{Fixtures, User};
use entra_emulator::provisioning::{
    entra_reads_user, patch_op, Changes, CycleOptions, CycleReport, Dialect, Directory, ExternalId,
    ScimClient, ENTERPRISE_USER, ERROR_SCHEMA, GROUP_SCHEMA, LIST_RESPONSE, MANAGER_PATH, PATCH_OP,
    SCIM_MEDIA_TYPE, USER_SCHEMA,
};
use serde_json::{json, Value};

const IDP: &str = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";

/// One Entra ID provider with SCIM enabled, and one app so the gateway has work to do.
///
/// Without `user_deprovision`: with it, users must be bound to their Entra object id
/// (`externalId` ← `objectId`), and the tutorial's payloads and Entra's default mappings
/// (`externalId` ← `mailNickname`) are what this file checks the endpoint against. The
/// binding and what deprovisioning does with it are in `scim_sessions.rs`.
fn document() -> Value {
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}", "support_groups": true },
            "scim_config": { "enabled": true, "user_deprovision": false, "identity_update_behavior": "no_action" } }],
        "apps": [
            { "id": "public", "name": "Public", "domain": "${WORKER_HOST}/public", "aud": "aud-public",
              "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }
        ]
    })
}

/// The binary's stack, or `None` when end-to-end tests are skipped here.
fn stack(test: &str) -> Option<&'static Stack> {
    if !Stack::should_run(&format!("scim_entra::{test}")).unwrap() {
        return None;
    }
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        Stack::start(StackConfig::new(document()).named("scim_entra")).map_err(|e| e.to_string())
    });
    match stack {
        Ok(stack) => Some(stack),
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

fn client(stack: &Stack, dialect: Dialect) -> ScimClient {
    ScimClient::new(&format!("{}{SCIM_PATH}", stack.url()), SCIM_TOKEN, dialect)
        .with_http(HttpClient::with_timeout(Duration::from_secs(30)))
}

/// A request that may go wrong, through the client (so with the right token).
fn send(
    c: &ScimClient,
    method: &str,
    path: &str,
    query: &[(&str, &str)],
    body: &str,
) -> HttpResponse {
    let body = (!body.is_empty()).then_some(body.as_bytes());
    c.send(method, path, query, body).unwrap()
}

fn send_json(c: &ScimClient, method: &str, path: &str, body: &Value) -> HttpResponse {
    c.send_json(method, path, &[], body).unwrap()
}

fn assert_media_type(response: &HttpResponse, what: &str) {
    let content_type = response.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with(SCIM_MEDIA_TYPE),
        "{what}: Content-Type `{content_type}`, not {SCIM_MEDIA_TYPE}: {response:?}"
    );
}

/// `response` is a SCIM error with this status and `scimType` (none for `None`).
fn assert_scim_error(response: &HttpResponse, status: u16, scim_type: Option<&str>, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert_media_type(response, what);
    let body = response
        .json()
        .unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {response:?}"));
    assert_eq!(body["schemas"], json!([ERROR_SCHEMA]), "{what}: {body}");
    assert_eq!(body["status"], json!(status.to_string()), "{what}: {body}");
    match scim_type {
        Some(scim_type) => assert_eq!(body["scimType"], scim_type, "{what}: {body}"),
        None => assert!(body.get("scimType").is_none(), "{what}: {body}"),
    }
    assert!(
        body.get("detail").is_none_or(Value::is_string),
        "{what}: {body}"
    );
}

/// A 200 or 201 SCIM answer's body.
fn ok_json(response: &HttpResponse, status: u16, what: &str) -> Value {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert_media_type(response, what);
    response.json().unwrap()
}

fn assert_no_content(response: &HttpResponse, what: &str) {
    assert_eq!(response.status, 204, "{what}: {response:?}");
    assert!(response.body.is_empty(), "{what}: {response:?}");
}

fn is_lowercase_guid(id: &str) -> bool {
    let parts: Vec<&str> = id.split('-').collect();
    parts.len() == 5
        && parts.iter().zip([8, 4, 4, 4, 12]).all(|(part, length)| {
            part.len() == length
                && part
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        })
}

/// A server-made resource: lowercase GUID id, `meta` with the resource type, both
/// timestamps and a location ending in its path.
fn assert_server_made(resource: &Value, resource_type: &str, what: &str) -> String {
    let id = resource["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{what}: no id: {resource}"));
    assert!(
        is_lowercase_guid(id),
        "{what}: id `{id}` is not a lowercase GUID"
    );
    let meta = &resource["meta"];
    assert_eq!(meta["resourceType"], resource_type, "{what}: {resource}");
    assert!(meta["created"].is_string(), "{what}: {resource}");
    assert!(meta["lastModified"].is_string(), "{what}: {resource}");
    let location = meta["location"].as_str().unwrap_or_default();
    assert!(
        location.ends_with(&format!("/{resource_type}s/{id}")),
        "{what}: location `{location}`"
    );
    id.to_owned()
}

/// The whole answer to each GET (every one a 200 with a JSON body): what a refused request
/// must not change.
fn snapshot(c: &ScimClient, gets: &[(&str, &[(&str, &str)])]) -> Vec<(String, Value)> {
    gets.iter()
        .map(|(path, query)| {
            let what = format!("GET {path} {query:?}");
            let body = ok_json(&send(c, "GET", path, query, ""), 200, &what);
            (what, body)
        })
        .collect()
}

fn filter_eq(attribute: &str, value: &str) -> String {
    format!("{attribute} eq {}", Value::String(value.to_owned()))
}

fn new_user(c: &ScimClient, user_name: &str, display_name: &str) -> String {
    let user = User {
        key: user_name.to_owned(),
        oid: "00000000-0000-4000-8000-000000000000".into(),
        upn: user_name.to_owned(),
        mail: Some(user_name.to_owned()),
        name: display_name.to_owned(),
        ..User::default()
    };
    c.create_user(&user).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn new_group(c: &ScimClient, display_name: &str, members: &[&str]) -> String {
    let members: Vec<Value> = members.iter().map(|id| json!({ "value": id })).collect();
    let body =
        json!({ "schemas": [GROUP_SCHEMA], "displayName": display_name, "members": members });
    let created = ok_json(&send_json(c, "POST", "/Groups", &body), 201, display_name);
    created["id"].as_str().unwrap().to_owned()
}

fn member_values(group: &Value) -> BTreeSet<String> {
    group["members"]
        .as_array()
        .unwrap_or_else(|| panic!("no members array: {group}"))
        .iter()
        .map(|member| member["value"].as_str().unwrap().to_owned())
        .collect()
}

fn random_guid() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut hex = String::new();
    while hex.len() < 32 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(hex.len());
        hex.push_str(&format!("{:016x}", hasher.finish()));
    }
    format!(
        "{}-{}-4{}-8{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[13..16],
        &hex[17..20],
        &hex[20..32]
    )
}

// ---------------------------------------------------------------------------------------
// (a) Entra's cycle
// ---------------------------------------------------------------------------------------

fn run_and_check_cycle(
    test: &str,
    dialect: Dialect,
    mapping: ExternalId,
    tag: &str,
    nest_groups: bool,
) {
    let Some(stack) = stack(test) else { return };
    let c = client(stack, dialect).with_external_id(mapping);
    let directory = Directory::from_fixtures(&Fixtures::load_default().unwrap()).tagged(tag);
    let options = CycleOptions {
        nest_groups,
        ..CycleOptions::for_directory(&directory)
    };
    let report = c.run_cycle(&directory, &options).unwrap();
    assert_eq!(report.users_created, directory.users.len());
    assert_eq!(report.users_matched, 0);
    assert_eq!(report.groups_created, directory.groups.len());
    assert_eq!(report.groups_matched, 0);
    if !nest_groups {
        assert_eq!(report.group_memberships, 0);
    }

    // What went over the wire: Test Connection first, every answer 2xx and SCIM-typed.
    let exchanges = c.exchanges();
    assert_eq!(exchanges.len(), report.requests);
    assert!(
        exchanges[0]
            .path
            .starts_with("/Users?filter=userName eq \""),
        "{:?}",
        exchanges[0]
    );
    assert!(
        exchanges[1]
            .path
            .starts_with("/Groups?excludedAttributes=members&filter=displayName eq \""),
        "{:?}",
        exchanges[1]
    );
    for exchange in &exchanges {
        let status = exchange.status.unwrap();
        assert!((200..300).contains(&status), "{exchange:?}");
        if status != 204 {
            assert!(
                exchange
                    .content_type
                    .as_deref()
                    .unwrap_or_default()
                    .starts_with(SCIM_MEDIA_TYPE),
                "{exchange:?}"
            );
        }
    }
    let count = |method: &str, prefix: &str| {
        exchanges
            .iter()
            .filter(|e| e.method == method && e.path.starts_with(prefix))
            .count()
    };
    assert_eq!(count("POST", "/Users"), directory.users.len());
    assert_eq!(count("POST", "/Groups"), directory.groups.len());
    assert_eq!(count("PATCH", "/Groups/"), report.membership_requests + 1);
    assert_eq!(count("PATCH", "/Users/"), 2, "the update and the disable");
    assert_eq!(count("DELETE", "/Users/"), 1);

    check_state(&c, &directory, &options, &report);
}

/// The stored directory after a cycle, through the endpoint's GETs.
fn check_state(
    c: &ScimClient,
    directory: &Directory,
    options: &CycleOptions,
    report: &CycleReport,
) {
    let changes = &options.changes;
    let (updated, update) = changes.update.clone().unwrap();
    let (removed, removed_from) = changes.remove_member.clone().unwrap();
    let disabled = changes.disable.clone().unwrap();
    let deleted = changes.delete.clone().unwrap();

    for user in &directory.users {
        let id = report.user_id(&user.key).unwrap();
        let what = format!("user {} ({id})", user.key);
        if user.key == deleted {
            assert_scim_error(
                &send(c, "GET", &format!("/Users/{id}"), &[], ""),
                404,
                None,
                &what,
            );
            assert_eq!(c.users_by_user_name(&user.upn).unwrap().total_results, 0);
            assert_eq!(
                c.users_by_external_id(user.external_id(c.external_id()))
                    .unwrap()
                    .total_results,
                0
            );
            continue;
        }
        let resource = c.user(id).unwrap().unwrap_or_else(|| panic!("{what}: 404"));
        assert_server_made(&resource, "User", &what);
        assert_eq!(resource["id"], id);
        assert!(
            resource["schemas"]
                .as_array()
                .unwrap()
                .contains(&json!(USER_SCHEMA)),
            "{what}: {resource}"
        );
        assert_eq!(resource["userName"], user.upn, "{what}");
        assert_eq!(
            resource["externalId"],
            user.external_id(c.external_id()),
            "{what}"
        );
        assert_eq!(
            resource["active"],
            json!(user.key != disabled),
            "{what}: {resource}"
        );
        let this = (user.key == updated).then_some(&update);
        let display = this
            .and_then(|u| u.display_name.clone())
            .unwrap_or(user.name.clone());
        let family = this
            .and_then(|u| u.family_name.clone())
            .or(user.family_name().map(str::to_owned));
        let mail = this
            .and_then(|u| u.work_email.clone())
            .unwrap_or(user.provisioned_mail().to_owned());
        assert_eq!(resource["displayName"], display, "{what}");
        assert_eq!(resource["name"]["givenName"], user.given_name(), "{what}");
        assert_eq!(resource["name"]["familyName"], json!(family), "{what}");
        assert_eq!(
            resource["emails"],
            json!([{ "primary": true, "type": "work", "value": mail }]),
            "{what}"
        );
        if let Some(number) = this.and_then(|u| u.employee_number.clone()) {
            assert_eq!(
                resource[ENTERPRISE_USER]["employeeNumber"], number,
                "{what}: {resource}"
            );
        }
        let found = c.users_by_user_name(&user.upn).unwrap();
        assert_eq!(found.total_results, 1, "{what}");
        assert_eq!(found.resources[0], resource, "{what}");
        let by_mail = c
            .list_resources(
                "Users",
                &[(
                    "filter",
                    &filter_eq("emails[type eq \"work\"].value", &mail),
                )],
            )
            .unwrap();
        assert_eq!(by_mail.resources, std::slice::from_ref(&resource), "{what}");
    }

    for group in &directory.groups {
        let id = report.group_id(&group.id).unwrap();
        let what = format!("group {} ({id})", group.display_name);
        let resource = c
            .group(id, false)
            .unwrap()
            .unwrap_or_else(|| panic!("{what}: 404"));
        assert_server_made(&resource, "Group", &what);
        assert_eq!(resource["displayName"], group.display_name, "{what}");
        assert_eq!(resource["externalId"], group.id, "{what}");
        let mut expected: BTreeSet<String> = directory
            .user_members(group)
            .into_iter()
            .filter(|user| !(user.key == removed && group.id == removed_from))
            .map(|user| report.user_id(&user.key).unwrap().to_owned())
            .collect();
        let mut groups = BTreeSet::new();
        if options.nest_groups {
            for child in directory.group_members(group) {
                groups.insert(report.group_id(&child.id).unwrap().to_owned());
            }
            expected.extend(groups.iter().cloned());
        }
        assert_eq!(member_values(&resource), expected, "{what}: {resource}");
        for member in resource["members"].as_array().unwrap() {
            let kind = if groups.contains(member["value"].as_str().unwrap()) {
                "Group"
            } else {
                "User"
            };
            assert_eq!(member["type"], kind, "{what}: {member}");
        }
        let without = c.group(id, true).unwrap().unwrap();
        assert!(without.get("members").is_none(), "{what}: {without}");
        let found = c.groups_by_display_name(&group.display_name).unwrap();
        assert_eq!(found.resources, [without], "{what}");
    }
}

#[test]
fn entra_cycle_in_the_default_dialect() {
    run_and_check_cycle(
        "entra_cycle_in_the_default_dialect",
        Dialect::Default,
        ExternalId::MailNickname,
        "dflt",
        false,
    );
}

/// The compliant dialect, with group nesting and the app mapping `objectId` to `externalId`.
#[test]
fn entra_cycle_in_the_aad_opt_scim_062020_dialect_with_nested_groups() {
    run_and_check_cycle(
        "entra_cycle_in_the_aad_opt_scim_062020_dialect_with_nested_groups",
        Dialect::AadOptscim062020,
        ExternalId::ObjectId,
        "aad",
        true,
    );
}

/// A second cycle over the same directory finds everything by `userName` and `displayName`:
/// it creates only the user the first one deleted, sends back what the first one changed
/// (and re-enables the disabled user), and ends in the same state.
#[test]
fn a_second_cycle_matches_instead_of_creating() {
    let Some(stack) = stack("a_second_cycle_matches_instead_of_creating") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let directory = Directory::from_fixtures(&Fixtures::load_default().unwrap()).tagged("again");
    let options = CycleOptions::for_directory(&directory);
    let first = c.run_cycle(&directory, &options).unwrap();
    let second = c.run_cycle(&directory, &options).unwrap();
    assert_eq!(second.users_created, 1, "{second}");
    assert_eq!(second.users_matched, directory.users.len() - 1, "{second}");
    assert_eq!(
        second.users_updated, 2,
        "the renamed and the disabled user: {second}"
    );
    assert_eq!(second.groups_created, 0, "{second}");
    assert_eq!(second.groups, first.groups);
    let deleted = options.changes.delete.clone().unwrap();
    for (key, id) in &first.users {
        if *key != deleted {
            assert_eq!(second.user_id(key), Some(id.as_str()), "{key}");
        }
    }
    check_state(&c, &directory, &options, &second);
}

// ---------------------------------------------------------------------------------------
// (b) Microsoft's tutorial, verbatim (reference §5.3); only ids are the server's own
// ---------------------------------------------------------------------------------------

const CREATE_USER: &str = r#"{
    "schemas": [
        "urn:ietf:params:scim:schemas:core:2.0:User",
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
    "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
    "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
    "active": true,
    "emails": [{
        "primary": true,
        "type": "work",
        "value": "Test_User_11bb11bb-cc22-dd33-ee44-55ff55ff55ff@testuser.com"
    }],
    "meta": {
        "resourceType": "User"
    },
    "name": {
        "formatted": "givenName familyName",
        "familyName": "familyName",
        "givenName": "givenName"
    },
    "roles": []
}"#;

const UPDATE_USER_MULTI_VALUED: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [
            {
            "op": "Replace",
            "path": "emails[type eq \"work\"].value",
            "value": "updatedEmail@microsoft.com"
            },
            {
            "op": "Replace",
            "path": "name.familyName",
            "value": "updatedFamilyName"
            }
    ]
}"#;

const UPDATE_USER_SINGLE_VALUED: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "userName",
        "value": "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    }]
}"#;

const DISABLE_USER: &str = r#"{
    "Operations": [
        {
            "op": "Replace",
            "path": "active",
            "value": false
        }
    ],
    "schemas": [
        "urn:ietf:params:scim:api:messages:2.0:PatchOp"
    ]
}"#;

const CREATE_GROUP: &str = r#"{
    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group", "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group"],
    "externalId": "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159",
    "displayName": "displayName",
    "meta": {
        "resourceType": "Group"
    }
}"#;

const UPDATE_GROUP_NON_MEMBER: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Replace",
        "path": "displayName",
        "value": "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    }]
}"#;

/// The tutorial's member id, replaced by a user the server made.
const TUTORIAL_MEMBER_ID: &str = "f648f8d5ea4e4cd38e9c";

const ADD_MEMBERS: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Add",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "f648f8d5ea4e4cd38e9c"
        }]
    }]
}"#;

const REMOVE_MEMBERS: &str = r#"{
    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
    "Operations": [{
        "op": "Remove",
        "path": "members",
        "value": [{
            "$ref": null,
            "value": "f648f8d5ea4e4cd38e9c"
        }]
    }]
}"#;

/// "Example 2": the malformed enterprise URN (`…:2.0User`) and explicit nulls are the
/// tutorial's.
const EXAMPLE_2: &str = r#"{ "schemas": [ "urn:ietf:params:scim:schemas:core:2.0:User", "urn:ietf:params:scim:schemas:extension:enterprise:2.0User"],
  "externalId":"jyoung", "userName":"jyoung@testuser.com", "active":true, "addresses":null, "displayName":"Joy Young",
  "emails": [ { "type":"work", "value":"jyoung@Contoso.com", "primary":true}],
  "meta": { "resourceType":"User"}, "name":{ "familyName":"Young", "givenName":"Joy"},
  "phoneNumbers":null, "preferredLanguage":null, "title":null, "department":null, "manager":null}"#;

/// The tutorial's manager id, replaced by a user the server made.
const TUTORIAL_MANAGER_ID: &str = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee";

const MANAGER_PATCH: &str = r#"{ "schemas": [ "urn:ietf:params:scim:api:messages:2.0:PatchOp"],
  "Operations": [ { "op":"Add", "path":"manager",
    "value": [ { "$ref":"http://.../scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee", "value":"00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}]}]}"#;

fn assert_list(list: &Value, total: u64, what: &str) -> Vec<Value> {
    assert_eq!(list["schemas"], json!([LIST_RESPONSE]), "{what}: {list}");
    assert_eq!(list["totalResults"], total, "{what}: {list}");
    assert_eq!(list["startIndex"], 1, "{what}: {list}");
    let resources = list["Resources"]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: no Resources: {list}"));
    assert_eq!(list["itemsPerPage"], resources.len(), "{what}: {list}");
    resources.clone()
}

#[test]
fn tutorial_user_requests_answer_as_documented() {
    let Some(stack) = stack("tutorial_user_requests_answer_as_documented") else {
        return;
    };
    let c = client(stack, Dialect::Default);

    // Create User: 201, everything stored as sent, with the server's id and meta.
    let sent: Value = serde_json::from_str(CREATE_USER).unwrap();
    let created = ok_json(
        &send(&c, "POST", "/Users", &[], CREATE_USER),
        201,
        "Create User",
    );
    let id = assert_server_made(&created, "User", "Create User");
    for (name, value) in sent.as_object().unwrap() {
        if name != "meta" {
            assert_eq!(
                &created[name], value,
                "Create User: `{name}` as sent: {created}"
            );
        }
    }

    // Get User.
    let got = ok_json(
        &send(&c, "GET", &format!("/Users/{id}"), &[], ""),
        200,
        "Get User",
    );
    assert_eq!(got, created);

    // Get User, not found.
    assert_scim_error(
        &send(&c, "GET", "/Users/5171a35d82074e068ce2", &[], ""),
        404,
        None,
        "Get User (missing)",
    );

    // Get User by query, and a query with zero results.
    let filter = r#"userName eq "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee""#;
    let list = ok_json(
        &send(&c, "GET", "/Users", &[("filter", filter)], ""),
        200,
        "by query",
    );
    assert_eq!(
        assert_list(&list, 1, "by query"),
        std::slice::from_ref(&created)
    );
    let none = ok_json(
        &send(
            &c,
            "GET",
            "/Users",
            &[("filter", r#"userName eq "non-existent user""#)],
            "",
        ),
        200,
        "zero results",
    );
    // `itemsPerPage` counts this page's resources (RFC 7644 §3.4.2), not the tutorial's 20.
    assert_eq!(
        none,
        json!({ "schemas": [LIST_RESPONSE], "totalResults": 0, "Resources": [], "startIndex": 1,
                "itemsPerPage": 0 })
    );

    // Update User [multi-valued attributes]: 200 with the whole user.
    let path = format!("/Users/{id}");
    let updated = ok_json(
        &send(&c, "PATCH", &path, &[], UPDATE_USER_MULTI_VALUED),
        200,
        "multi-valued",
    );
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(
        updated["emails"],
        json!([{ "primary": true, "type": "work", "value": "updatedEmail@microsoft.com" }])
    );
    assert_eq!(updated["name"]["familyName"], "updatedFamilyName");
    assert_eq!(updated["name"]["givenName"], "givenName");
    assert_eq!(updated["userName"], created["userName"]);
    assert_eq!(updated["externalId"], created["externalId"]);
    assert_eq!(updated["meta"]["created"], created["meta"]["created"]);

    // Update User [single-valued attributes]: the user is found by the new name only.
    let renamed = ok_json(
        &send(&c, "PATCH", &path, &[], UPDATE_USER_SINGLE_VALUED),
        200,
        "single-valued",
    );
    assert_eq!(
        renamed["userName"],
        "5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com"
    );
    assert_eq!(
        c.users_by_user_name("Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee")
            .unwrap()
            .total_results,
        0
    );
    let found = c
        .users_by_user_name("5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com")
        .unwrap();
    assert_eq!(found.resources, std::slice::from_ref(&renamed));

    // Disable User (the tutorial's boolean).
    let disabled = ok_json(
        &send(&c, "PATCH", &path, &[], DISABLE_USER),
        200,
        "Disable User",
    );
    assert_eq!(disabled["active"], false);
    assert_eq!(c.user(&id).unwrap().unwrap(), disabled);

    // Delete User: 204, then gone from GET and from filters.
    assert_no_content(&send(&c, "DELETE", &path, &[], ""), "Delete User");
    assert_scim_error(&send(&c, "GET", &path, &[], ""), 404, None, "deleted user");
    assert_eq!(
        c.users_by_user_name("5b50642d-79fc-4410-9e90-4c077cdd1a59@testuser.com")
            .unwrap()
            .total_results,
        0
    );
    assert_scim_error(
        &send(&c, "DELETE", &path, &[], ""),
        404,
        None,
        "deleted twice",
    );
}

#[test]
fn tutorial_group_requests_answer_as_documented() {
    let Some(stack) = stack("tutorial_group_requests_answer_as_documented") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let member = new_user(&c, "tutorial.member@example.com", "Tutorial Member");

    // Create Group: 201 with no members.
    let sent: Value = serde_json::from_str(CREATE_GROUP).unwrap();
    let created = ok_json(
        &send(&c, "POST", "/Groups", &[], CREATE_GROUP),
        201,
        "Create Group",
    );
    let id = assert_server_made(&created, "Group", "Create Group");
    assert_eq!(created["members"], json!([]), "{created}");
    assert_eq!(created["displayName"], "displayName");
    assert_eq!(created["externalId"], sent["externalId"]);
    assert_eq!(created["schemas"], sent["schemas"]);
    let path = format!("/Groups/{id}");

    // Get Group without members, and by displayName.
    let without = ok_json(
        &send(&c, "GET", &path, &[("excludedAttributes", "members")], ""),
        200,
        "Get Group",
    );
    assert!(without.get("members").is_none(), "{without}");
    assert_eq!(without["id"], id.as_str());
    let list = ok_json(
        &send(
            &c,
            "GET",
            "/Groups",
            &[
                ("excludedAttributes", "members"),
                ("filter", r#"displayName eq "displayName""#),
            ],
            "",
        ),
        200,
        "Get Group by displayName",
    );
    assert_eq!(assert_list(&list, 1, "by displayName"), [without]);

    // Update Group [non-member attributes]: 204.
    assert_no_content(
        &send(&c, "PATCH", &path, &[], UPDATE_GROUP_NON_MEMBER),
        "Update Group",
    );
    let group = c.group(&id, false).unwrap().unwrap();
    assert_eq!(
        group["displayName"],
        "1879db59-3bdf-4490-ad68-ab880a269474updatedDisplayName"
    );
    assert_eq!(group["members"], json!([]));

    // Add Members (`$ref: null`), then Remove Members: 204 each.
    let add = ADD_MEMBERS.replace(TUTORIAL_MEMBER_ID, &member);
    assert_no_content(&send(&c, "PATCH", &path, &[], &add), "Add Members");
    let group = c.group(&id, false).unwrap().unwrap();
    assert_eq!(
        member_values(&group),
        BTreeSet::from([member.clone()]),
        "{group}"
    );
    assert_eq!(group["members"][0]["type"], "User", "{group}");
    let remove = REMOVE_MEMBERS.replace(TUTORIAL_MEMBER_ID, &member);
    assert_no_content(&send(&c, "PATCH", &path, &[], &remove), "Remove Members");
    assert_eq!(c.group(&id, false).unwrap().unwrap()["members"], json!([]));

    // Delete Group: 204, then 404; the member user is still there.
    assert_no_content(&send(&c, "DELETE", &path, &[], ""), "Delete Group");
    assert_scim_error(&send(&c, "GET", &path, &[], ""), 404, None, "deleted group");
    assert!(c.user(&member).unwrap().is_some());
}

#[test]
fn tutorial_example_2_the_unquoted_filter_and_the_manager_patch() {
    let Some(stack) = stack("tutorial_example_2_the_unquoted_filter_and_the_manager_patch") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let manager = new_user(&c, "tutorial.manager@example.com", "Tutorial Manager");

    // Example 2, malformed URN and nulls included, is a user like any other.
    let created = ok_json(
        &send(&c, "POST", "/Users", &[], EXAMPLE_2),
        201,
        "Example 2",
    );
    let id = assert_server_made(&created, "User", "Example 2");
    assert_eq!(created["userName"], "jyoung@testuser.com");
    assert_eq!(created["externalId"], "jyoung");
    assert_eq!(created["displayName"], "Joy Young");
    assert_eq!(created["active"], true);
    assert_eq!(
        created["name"],
        json!({ "familyName": "Young", "givenName": "Joy" })
    );
    assert_eq!(
        created["emails"],
        json!([{ "type": "work", "value": "jyoung@Contoso.com", "primary": true }])
    );

    // The tutorial's unquoted filter value.
    let list = ok_json(
        &send(
            &c,
            "GET",
            "/Users",
            &[("filter", "externalId eq jyoung")],
            "",
        ),
        200,
        "unquoted",
    );
    assert_eq!(
        assert_list(&list, 1, "externalId eq jyoung"),
        std::slice::from_ref(&created)
    );

    // The enterprise manager as the tutorial adds it.
    let patch = MANAGER_PATCH.replace(TUTORIAL_MANAGER_ID, &manager);
    let updated = ok_json(
        &send(&c, "PATCH", &format!("/Users/{id}"), &[], &patch),
        200,
        "manager",
    );
    assert_eq!(updated["id"], id.as_str());
    // Stored in the enterprise extension and read back complex (RFC 7643 §4.3), as Entra
    // reads it.
    assert_eq!(
        updated[ENTERPRISE_USER]["manager"],
        json!({ "value": manager }),
        "{updated}"
    );
    assert!(updated.get("manager").is_none(), "{updated}");
    assert_eq!(c.user(&id).unwrap().unwrap(), updated);
}

// ---------------------------------------------------------------------------------------
// (c) Refusals: the right SCIM error, and nothing changed
// ---------------------------------------------------------------------------------------

#[test]
fn wrong_or_missing_tokens_are_refused() {
    let Some(stack) = stack("wrong_or_missing_tokens_are_refused") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let id = new_user(&c, "auth.target@example.com", "Auth Target");
    let user_path = format!("/Users/{id}");
    let gets: Vec<(&str, &[(&str, &str)])> = vec![
        (&user_path, &[]),
        (
            "/Users",
            &[("filter", r#"userName eq "auth.created@example.com""#)],
        ),
    ];
    let before = snapshot(&c, &gets);

    let base = format!("{}{SCIM_PATH}", stack.url());
    let http = HttpClient::new();
    let body = User {
        key: "x".into(),
        oid: "00000000-0000-4000-8000-000000000000".into(),
        upn: "auth.created@example.com".into(),
        mail: Some("auth.created@example.com".into()),
        name: "Auth Created".into(),
        ..User::default()
    }
    .create_payload()
    .to_string();
    let disable = Dialect::Default.set_active(false).to_string();
    let authorizations: [(&str, Option<String>); 5] = [
        ("no Authorization", None),
        ("a wrong token", Some("Bearer wrong-token".into())),
        (
            "the token with another scheme",
            Some(format!("Basic {SCIM_TOKEN}")),
        ),
        (
            "the token's prefix",
            Some(format!("Bearer {}", &SCIM_TOKEN[..SCIM_TOKEN.len() - 1])),
        ),
        ("an empty bearer", Some("Bearer ".into())),
    ];
    for (what, authorization) in &authorizations {
        for (method, path, body) in [
            ("GET", "/Users", ""),
            ("GET", user_path.as_str(), ""),
            ("GET", "/Groups", ""),
            ("POST", "/Users", body.as_str()),
            ("PATCH", user_path.as_str(), disable.as_str()),
            ("DELETE", user_path.as_str(), ""),
        ] {
            let mut headers = vec![("content-type", SCIM_MEDIA_TYPE)];
            if let Some(authorization) = authorization {
                headers.push(("authorization", authorization));
            }
            let response = http
                .request(method, &format!("{base}{path}"), &headers, body.as_bytes())
                .unwrap();
            assert_scim_error(&response, 401, None, &format!("{what}: {method} {path}"));
        }
    }
    assert_eq!(snapshot(&c, &gets), before);
}

#[test]
fn malformed_bodies_and_wrong_schemas_change_nothing() {
    let Some(stack) = stack("malformed_bodies_and_wrong_schemas_change_nothing") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "malformed.user@example.com", "Malformed User");
    let group = new_group(&c, "Malformed group", &[&user]);
    let (user_path, group_path) = (format!("/Users/{user}"), format!("/Groups/{group}"));
    let gets: Vec<(&str, &[(&str, &str)])> = vec![
        (&user_path, &[]),
        (&group_path, &[]),
        (
            "/Users",
            &[("filter", r#"userName eq "malformed.new@example.com""#)],
        ),
        (
            "/Groups",
            &[("filter", r#"displayName eq "Malformed new group""#)],
        ),
    ];
    let before = snapshot(&c, &gets);

    let new_user_body = r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "malformed.new@example.com""#;
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("POST", "/Users", new_user_body.into(), "invalidSyntax"),
        ("POST", "/Users", "[]".into(), "invalidSyntax"),
        ("POST", "/Users", "not json".into(), "invalidSyntax"),
        ("POST", "/Groups", r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "#.into(), "invalidSyntax"),
        ("PATCH", &user_path, r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Replace", "path": "active", "value": "False"}"#.into(), "invalidSyntax"),
        ("PATCH", &group_path, r#"{"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [{"op": "Remove", "path": "members""#.into(), "invalidSyntax"),
        ("PUT", &user_path, r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "#.into(), "invalidSyntax"),
        ("PUT", &group_path, "{".into(), "invalidSyntax"),
        // Wrong schemas.
        ("POST", "/Users", json!({ "schemas": [GROUP_SCHEMA], "userName": "malformed.new@example.com" }).to_string(), "invalidSyntax"),
        ("POST", "/Users", json!({ "userName": "malformed.new@example.com" }).to_string(), "invalidSyntax"),
        ("POST", "/Groups", json!({ "schemas": [USER_SCHEMA], "displayName": "Malformed new group" }).to_string(), "invalidSyntax"),
        ("PATCH", &user_path, json!({ "schemas": [USER_SCHEMA], "Operations": [{ "op": "Replace", "path": "active", "value": "False" }] }).to_string(), "invalidSyntax"),
        ("PATCH", &group_path, json!({ "Operations": [{ "op": "Remove", "path": "members", "value": [{ "value": user }] }] }).to_string(), "invalidSyntax"),
        ("PUT", &user_path, json!({ "schemas": [GROUP_SCHEMA], "userName": "malformed.user@example.com" }).to_string(), "invalidSyntax"),
    ];
    for (method, path, body, scim_type) in &cases {
        let response = send(&c, method, path, &[], body);
        assert_scim_error(
            &response,
            400,
            Some(scim_type),
            &format!("{method} {path} {body}"),
        );
    }
    assert_eq!(snapshot(&c, &gets), before);
}

/// A body that names an attribute twice in one object — exactly, or in another case, as SCIM
/// attribute names are case-insensitive — has two readings: refused whole, as the policy
/// loader refuses duplicate keys, and every stored resource answers byte for byte as before.
#[test]
fn bodies_with_an_attribute_twice_are_refused_and_change_nothing() {
    let Some(stack) = stack("bodies_with_an_attribute_twice_are_refused_and_change_nothing") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "twice.user@example.com", "Twice User");
    let group = new_group(&c, "Twice group", &[&user]);
    let (user_path, group_path) = (format!("/Users/{user}"), format!("/Groups/{group}"));
    let gets: Vec<(&str, &[(&str, &str)])> = vec![
        (&user_path, &[]),
        (&group_path, &[]),
        (
            "/Users",
            &[("filter", r#"userName eq "twice.new@example.com""#)],
        ),
        ("/Users", &[("filter", r#"displayName eq "Twice User""#)]),
        (
            "/Groups",
            &[("filter", r#"displayName eq "Twice new group""#)],
        ),
        ("/Groups", &[("filter", r#"displayName eq "Twice group""#)]),
    ];
    let raw = |gets: &[(&str, &[(&str, &str)])]| -> Vec<String> {
        gets.iter()
            .map(|(path, query)| {
                let answer = send(&c, "GET", path, query, "");
                assert_eq!(answer.status, 200, "{answer:?}");
                answer.body
            })
            .collect()
    };
    let before = raw(&gets);

    const USER: &str = r#""schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]"#;
    const GROUP: &str = r#""schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"]"#;
    const PATCH: &str = r#""schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]"#;
    let cases: Vec<(&str, &str, String, &str)> = vec![
        // Users: top level, nested, array elements, case variants.
        ("POST", "/Users",
         format!(r#"{{{USER}, "userName": "twice.new@example.com", "active": false, "active": true}}"#),
         "`active` at `active`"),
        ("POST", "/Users",
         format!(r#"{{{USER}, "userName": "twice.new@example.com", "username": "twice.other@example.com"}}"#),
         "`userName` at `userName` (also sent as `username`"),
        ("POST", "/Users",
         format!(r#"{{{USER}, "userName": "twice.new@example.com", "name": {{"givenName": "A", "givenname": "B"}}}}"#),
         "`givenName` at `name.givenName` (also sent as `givenname`"),
        ("POST", "/Users",
         format!(r#"{{{USER}, "userName": "twice.new@example.com",
                   "emails": [{{"type": "work", "value": "twice.new@example.com", "value": "x@example.com"}}]}}"#),
         "`value` at `emails[0].value`"),
        ("PUT", &user_path,
         format!(r#"{{{USER}, "userName": "twice.user@example.com", "displayName": "A", "DisplayName": "B"}}"#),
         "`displayName` at `displayName` (also sent as `DisplayName`"),
        ("PUT", &user_path,
         format!(r#"{{{USER}, "userName": "twice.user@example.com",
                   "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {{"department": "A", "Department": "B"}}}}"#),
         "`department` at `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User.department`"),
        // PATCH: inside an operation, a path-less value, the operations list itself.
        ("PATCH", &user_path,
         format!(r#"{{{PATCH}, "Operations": [{{"op": "Replace", "path": "active", "value": "True", "value": "False"}}]}}"#),
         "`value` at `Operations[0].value`"),
        ("PATCH", &user_path,
         format!(r#"{{{PATCH}, "Operations": [{{"op": "replace", "value": {{"displayName": "A", "displayname": "B"}}}}]}}"#),
         "`displayName` at `Operations[0].value.displayName`"),
        ("PATCH", &user_path,
         format!(r#"{{{PATCH}, "Operations": [{{"op": "Replace", "path": "displayName", "value": "A"}}],
                   "operations": [{{"op": "Replace", "path": "active", "value": "False"}}]}}"#),
         "`Operations` at `Operations` (also sent as `operations`"),
        // Groups.
        ("POST", "/Groups",
         format!(r#"{{{GROUP}, "displayName": "Twice new group", "displayname": "Other"}}"#),
         "`displayName` at `displayName` (also sent as `displayname`"),
        ("POST", "/Groups",
         format!(r#"{{{GROUP}, "displayName": "Twice new group", "members": [{{"value": "{user}", "Value": "{group}"}}]}}"#),
         "`value` at `members[0].value` (also sent as `Value`"),
        ("PUT", &group_path,
         format!(r#"{{{GROUP}, "displayName": "Twice group", "externalId": "a", "externalId": "b"}}"#),
         "`externalId` at `externalId`"),
        ("PATCH", &group_path,
         format!(r#"{{{PATCH}, "Operations": [{{"op": "Remove", "path": "members",
                   "value": [{{"$ref": null, "value": "{user}", "value": "{group}"}}]}}]}}"#),
         "`value` at `Operations[0].value[0].value`"),
        ("PATCH", &group_path,
         format!(r#"{{{PATCH}, "Operations": [{{"op": "Add", "path": "members", "value": [], "Path": "displayName"}}]}}"#),
         "`path` at `Operations[0].path` (also sent as `Path`"),
    ];
    for (method, path, body, detail) in &cases {
        let what = format!("{method} {path} {body}");
        let response = send(&c, method, path, &[], body);
        assert_scim_error(&response, 400, Some("invalidSyntax"), &what);
        let answer = response.json().unwrap();
        let said = answer["detail"].as_str().unwrap_or_default();
        assert!(
            said.starts_with("duplicate attribute ") && said.contains(detail),
            "{what}: {answer}"
        );
    }
    assert_eq!(raw(&gets), before);
}

#[test]
fn a_patch_with_one_bad_operation_among_good_ones_changes_nothing() {
    let Some(stack) = stack("a_patch_with_one_bad_operation_among_good_ones_changes_nothing")
    else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "partial.user@example.com", "Partial User");
    let other = new_user(&c, "partial.other@example.com", "Partial Other");
    let group = new_group(&c, "Partial group", &[&user]);
    let (user_path, group_path) = (format!("/Users/{user}"), format!("/Groups/{group}"));
    let other_path = format!("/Users/{other}");
    let gets: Vec<(&str, &[(&str, &str)])> =
        vec![(&user_path, &[]), (&group_path, &[]), (&other_path, &[])];
    let before = snapshot(&c, &gets);

    let good_user = |bad: Value| {
        json!({ "schemas": [PATCH_OP], "Operations": [
            { "op": "Replace", "path": "displayName", "value": "Changed" },
            bad,
            { "op": "Replace", "path": "name.familyName", "value": "Changed" } ] })
    };
    let good_group = |bad: Value| {
        json!({ "schemas": [PATCH_OP], "Operations": [
            { "op": "Add", "path": "members", "value": [{ "value": other }] },
            bad,
            { "op": "Replace", "path": "displayName", "value": "Partial group changed" } ] })
    };
    let cases: Vec<(&str, Value, &str)> = vec![
        (
            &user_path,
            good_user(
                json!({ "op": "Replace", "path": "emails[type eq \"work\"", "value": "x@example.com" }),
            ),
            "invalidPath",
        ),
        (
            &user_path,
            good_user(json!({ "op": "Frobnicate", "path": "displayName", "value": "x" })),
            "invalidSyntax",
        ),
        (&user_path, good_user(json!({ "op": "Remove" })), "noTarget"),
        (
            &user_path,
            good_user(json!({ "op": "Replace", "path": "active", "value": "maybe" })),
            "invalidValue",
        ),
        (
            &user_path,
            good_user(json!({ "op": "Replace", "path": "userName", "value": 7 })),
            "invalidValue",
        ),
        (
            &user_path,
            json!({ "schemas": [PATCH_OP], "Operations": [
            { "op": "replace", "value": { "displayName": "Changed", "name.familyName": "Changed" } },
            { "op": "replace", "path": "active", "value": "maybe" } ] }),
            "invalidValue",
        ),
        (
            &group_path,
            good_group(
                json!({ "op": "Add", "path": "members", "value": [{ "value": random_guid() }] }),
            ),
            "invalidValue",
        ),
        (
            &group_path,
            good_group(json!({ "op": "remove", "path": "members[value eq \"" })),
            "invalidPath",
        ),
        (
            &group_path,
            good_group(json!({ "op": "Remove" })),
            "noTarget",
        ),
    ];
    for (path, body, scim_type) in &cases {
        let response = send_json(&c, "PATCH", path, body);
        assert_scim_error(
            &response,
            400,
            Some(scim_type),
            &format!("PATCH {path} {body}"),
        );
    }
    assert_eq!(snapshot(&c, &gets), before);
}

#[test]
fn bad_filters_and_paging_are_refused() {
    let Some(stack) = stack("bad_filters_and_paging_are_refused") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "filters.user@example.com", "Filters User");
    let user_path = format!("/Users/{user}");
    let gets: Vec<(&str, &[(&str, &str)])> = vec![
        (&user_path, &[]),
        (
            "/Users",
            &[("filter", r#"userName eq "filters.user@example.com""#)],
        ),
    ];
    let before = snapshot(&c, &gets);

    for (path, filter) in [
        ("/Users", r#"userName co "x""#),
        ("/Users", r#"userName sw "filters""#),
        ("/Users", r#"userName eq "unterminated"#),
        ("/Users", r#"userName eq "a" or userName eq "b""#),
        ("/Users", r#"nickName eq "x""#),
        ("/Users", r#"userName eq"#),
        ("/Users", ""),
        ("/Groups", r#"userName eq "filters.user@example.com""#),
        ("/Groups", r#"displayName co "x""#),
    ] {
        let response = send(&c, "GET", path, &[("filter", filter)], "");
        assert_scim_error(
            &response,
            400,
            Some("invalidFilter"),
            &format!("{path} filter={filter}"),
        );
    }
    for (name, value) in [
        ("startIndex", "abc"),
        ("count", "ten"),
        ("startIndex", "1.5"),
        ("count", ""),
    ] {
        let response = send(&c, "GET", "/Users", &[(name, value)], "");
        assert_scim_error(
            &response,
            400,
            Some("invalidValue"),
            &format!("{name}={value}"),
        );
    }
    assert_eq!(snapshot(&c, &gets), before);
}

#[test]
fn pages_over_a_filter() {
    let Some(stack) = stack("pages_over_a_filter") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let ids: BTreeSet<String> = (0..3)
        .map(|n| new_user(&c, &format!("paging.{n}@example.com"), "Paging Person"))
        .collect();
    let filter = filter_eq("displayName", "Paging Person");
    let page = |start: &str, count: &str| {
        let list = ok_json(
            &send(
                &c,
                "GET",
                "/Users",
                &[("filter", &filter), ("startIndex", start), ("count", count)],
                "",
            ),
            200,
            "page",
        );
        assert_eq!(list["totalResults"], 3, "{list}");
        list
    };
    let first = page("1", "2");
    assert_eq!(first["startIndex"], 1);
    assert_eq!(first["itemsPerPage"], 2, "{first}");
    let second = page("3", "2");
    assert_eq!(second["startIndex"], 3);
    assert_eq!(second["Resources"].as_array().unwrap().len(), 1, "{second}");
    let seen: BTreeSet<String> = first["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .chain(second["Resources"].as_array().unwrap())
        .map(|user| user["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(seen, ids);
    let empty = page("1", "0");
    assert_eq!(
        empty["Resources"].as_array().map_or(0, Vec::len),
        0,
        "{empty}"
    );
}

#[test]
fn duplicate_names_are_refused_with_uniqueness() {
    let Some(stack) = stack("duplicate_names_are_refused_with_uniqueness") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let first = new_user(&c, "dup.first@example.com", "Dup First");
    let second = new_user(&c, "dup.second@example.com", "Dup Second");
    let group = new_group(&c, "Dup group", &[]);
    let other_group = new_group(&c, "Dup other group", &[]);
    let paths = [
        format!("/Users/{first}"),
        format!("/Users/{second}"),
        format!("/Groups/{group}"),
        format!("/Groups/{other_group}"),
    ];
    let mut gets: Vec<(&str, &[(&str, &str)])> =
        paths.iter().map(|p| (p.as_str(), &[][..])).collect();
    gets.push((
        "/Users",
        &[("filter", r#"userName eq "DUP.FIRST@example.com""#)],
    ));
    gets.push(("/Groups", &[("filter", r#"displayName eq "dup GROUP""#)]));
    let before = snapshot(&c, &gets);

    let user = |name: &str| {
        json!({ "schemas": [USER_SCHEMA], "userName": name, "active": true }).to_string()
    };
    let rename_user = |name: &str| {
        json!({ "schemas": [PATCH_OP], "Operations": [{ "op": "Replace", "path": "userName", "value": name }] }).to_string()
    };
    let group_body =
        |name: &str| json!({ "schemas": [GROUP_SCHEMA], "displayName": name }).to_string();
    let rename_group = |name: &str| {
        json!({ "schemas": [PATCH_OP], "Operations": [{ "op": "Replace", "path": "displayName", "value": name }] }).to_string()
    };
    let cases: Vec<(&str, &str, String)> = vec![
        ("POST", "/Users", user("dup.first@example.com")),
        ("POST", "/Users", user("DUP.First@Example.COM")),
        ("PATCH", &paths[1], rename_user("Dup.First@example.com")),
        ("PUT", &paths[1], user("dup.FIRST@example.com")),
        ("POST", "/Groups", group_body("Dup group")),
        ("POST", "/Groups", group_body("DUP GROUP")),
        ("PATCH", &paths[3], rename_group("dup Group")),
        ("PUT", &paths[3], group_body("dup group")),
    ];
    for (method, path, body) in &cases {
        let response = send(&c, method, path, &[], body);
        assert_scim_error(
            &response,
            409,
            Some("uniqueness"),
            &format!("{method} {path} {body}"),
        );
    }
    assert_eq!(snapshot(&c, &gets), before);
}

#[test]
fn members_that_do_not_exist_are_refused() {
    let Some(stack) = stack("members_that_do_not_exist_are_refused") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "members.user@example.com", "Members User");
    let group = new_group(&c, "Members group", &[&user]);
    let group_path = format!("/Groups/{group}");
    let gets: Vec<(&str, &[(&str, &str)])> = vec![
        (&group_path, &[]),
        (
            "/Groups",
            &[("filter", r#"displayName eq "Members new group""#)],
        ),
    ];
    let before = snapshot(&c, &gets);

    let missing = random_guid();
    let cases: Vec<(&str, &str, Value)> = vec![
        (
            "POST",
            "/Groups",
            json!({ "schemas": [GROUP_SCHEMA], "displayName": "Members new group",
            "members": [{ "value": user }, { "value": missing }] }),
        ),
        (
            "PATCH",
            &group_path,
            Dialect::Default.add_members(&[&missing]),
        ),
        (
            "PATCH",
            &group_path,
            Dialect::AadOptscim062020.add_members(&[&user, "not-a-guid"]),
        ),
        (
            "PUT",
            &group_path,
            json!({ "schemas": [GROUP_SCHEMA], "displayName": "Members group",
            "members": [{ "value": missing, "type": "User" }] }),
        ),
    ];
    for (method, path, body) in &cases {
        let response = send_json(&c, method, path, body);
        assert_scim_error(
            &response,
            400,
            Some("invalidValue"),
            &format!("{method} {path} {body}"),
        );
    }
    assert_eq!(snapshot(&c, &gets), before);
}

/// A group created with members is written and answered by one batch: the answer lists
/// them in request order, each once, with its kind; a taken name is still a 409 and a
/// member that does not exist still a 400 (before the name), each writing nothing.
#[test]
fn groups_created_with_members_answer_them_and_refuse_as_before() {
    let Some(stack) = stack("groups_created_with_members_answer_them_and_refuse_as_before") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "created.with@example.com", "Created With");
    let inner = new_group(&c, "Created-with inner group", &[]);
    let body = json!({ "schemas": [GROUP_SCHEMA], "displayName": "Created-with group",
        "members": [{ "value": inner }, { "value": user.to_uppercase() }, { "value": user }] });
    let created = ok_json(&send_json(&c, "POST", "/Groups", &body), 201, "create");
    assert_eq!(
        created["members"],
        json!([{ "value": inner, "type": "Group" }, { "value": user, "type": "User" }]),
        "{created}"
    );
    let id = created["id"].as_str().unwrap();
    let stored = c.group(id, false).unwrap().unwrap();
    assert_eq!(
        member_values(&stored),
        BTreeSet::from([inner.clone(), user.clone()])
    );

    let member_of = filter_eq("members.value", &user);
    let named = filter_eq("displayName", "Created-with group");
    let (member_of, named) = (
        [("filter", member_of.as_str())],
        [("filter", named.as_str())],
    );
    let gets: Vec<(&str, &[(&str, &str)])> = vec![("/Groups", &member_of), ("/Groups", &named)];
    let before = snapshot(&c, &gets);
    let taken = json!({ "schemas": [GROUP_SCHEMA], "displayName": "CREATED-WITH group",
        "members": [{ "value": user }] });
    assert_scim_error(
        &send_json(&c, "POST", "/Groups", &taken),
        409,
        Some("uniqueness"),
        "a taken name with a member",
    );
    let missing = random_guid();
    let taken_and_missing = json!({ "schemas": [GROUP_SCHEMA],
        "displayName": "Created-with group", "members": [{ "value": user }, { "value": missing }] });
    let response = send_json(&c, "POST", "/Groups", &taken_and_missing);
    assert_scim_error(&response, 400, Some("invalidValue"), "a missing member");
    let detail = response.json().unwrap()["detail"].to_string();
    assert!(detail.contains(&missing), "names the member: {detail}");
    assert_eq!(snapshot(&c, &gets), before);
}

/// A PATCH of members only is written without reading the group first: a missing group is
/// still a 404, a group added to itself still a 400, a member that is neither a user nor a
/// group still names itself, each writing nothing; an id in capitals still finds the group,
/// and `meta.version` still moves by one.
#[test]
fn member_only_patches_refuse_as_before_and_write_nothing() {
    let Some(stack) = stack("member_only_patches_refuse_as_before_and_write_nothing") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "member.only@example.com", "Member Only");
    let group = new_group(&c, "Member-only group", &[]);
    let group_path = format!("/Groups/{group}");
    let member_of = filter_eq("members.value", &user);
    let member_of = [("filter", member_of.as_str())];
    let gets: Vec<(&str, &[(&str, &str)])> = vec![(&group_path, &[]), ("/Groups", &member_of)];
    let before = snapshot(&c, &gets);

    let missing = format!("/Groups/{}", random_guid());
    let absent = random_guid();
    let cases: Vec<(&str, Value, u16, Option<&str>)> = vec![
        (&missing, Dialect::Default.add_members(&[&user]), 404, None),
        (&missing, Dialect::Default.remove_member(&user), 404, None),
        (
            &missing,
            Dialect::AadOptscim062020.remove_member(&user),
            404,
            None,
        ),
        (
            &group_path,
            Dialect::Default.add_members(&[&user, &group]),
            400,
            Some("invalidValue"),
        ),
        (
            &group_path,
            Dialect::AadOptscim062020.add_members(&[&group.to_uppercase()]),
            400,
            Some("invalidValue"),
        ),
        (
            &group_path,
            Dialect::Default.add_members(&[&user, &absent]),
            400,
            Some("invalidValue"),
        ),
    ];
    for (path, body, status, scim_type) in &cases {
        let response = send_json(&c, "PATCH", path, body);
        assert_scim_error(
            &response,
            *status,
            *scim_type,
            &format!("PATCH {path} {body}"),
        );
        if *status == 400 && body.to_string().contains(&absent) {
            let detail = response.json().unwrap()["detail"].to_string();
            assert!(detail.contains(&absent), "names the member: {detail}");
        }
    }
    assert_eq!(snapshot(&c, &gets), before);

    let version = |group: &Value| group["meta"]["version"].as_str().unwrap().to_owned();
    let stored = c.group(&group, false).unwrap().unwrap();
    let upper = format!("/Groups/{}", group.to_uppercase());
    let response = send_json(&c, "PATCH", &upper, &Dialect::Default.add_members(&[&user]));
    assert_no_content(&response, "PATCH by the id in capitals");
    let now = c.group(&group, false).unwrap().unwrap();
    assert_eq!(member_values(&now), BTreeSet::from([user.clone()]));
    let number = |v: &str| -> u64 {
        v.trim_start_matches("W/\"")
            .trim_end_matches('"')
            .parse()
            .unwrap()
    };
    assert_eq!(number(&version(&now)), number(&version(&stored)) + 1);
    assert_eq!(now["displayName"], stored["displayName"]);
}

#[test]
fn missing_resources_are_404() {
    let Some(stack) = stack("missing_resources_are_404") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let missing = random_guid();
    for resource in ["Users", "Groups"] {
        let path = format!("/{resource}/{missing}");
        let patch = Dialect::Default.set_active(true).to_string();
        let put = if resource == "Users" {
            json!({ "schemas": [USER_SCHEMA], "userName": "missing@example.com" })
        } else {
            json!({ "schemas": [GROUP_SCHEMA], "displayName": "Missing group" })
        }
        .to_string();
        for (method, body) in [
            ("GET", ""),
            ("PATCH", patch.as_str()),
            ("PUT", put.as_str()),
            ("DELETE", ""),
        ] {
            let response = send(&c, method, &path, &[], body);
            assert_scim_error(&response, 404, None, &format!("{method} {path}"));
        }
    }
    assert_eq!(
        c.users_by_user_name("missing@example.com")
            .unwrap()
            .total_results,
        0
    );
    assert_eq!(
        c.groups_by_display_name("Missing group")
            .unwrap()
            .total_results,
        0
    );
}

// ---------------------------------------------------------------------------------------
// The rest of the endpoint: PUT, defaults, discovery
// ---------------------------------------------------------------------------------------

#[test]
fn put_replaces_users_and_groups() {
    let Some(stack) = stack("put_replaces_users_and_groups") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let user = new_user(&c, "put.user@example.com", "Put User");
    let before = c.user(&user).unwrap().unwrap();
    let replacement = json!({ "schemas": [USER_SCHEMA], "userName": "put.user@example.com",
        "externalId": "put", "active": "False", "emails": [{ "type": "work", "value": "put.user@example.com" }] });
    let replaced = ok_json(
        &send_json(&c, "PUT", &format!("/Users/{user}"), &replacement),
        200,
        "PUT user",
    );
    assert_eq!(replaced["id"], user.as_str());
    assert_eq!(replaced["meta"]["created"], before["meta"]["created"]);
    assert_eq!(
        replaced["active"], false,
        "\"False\" is stored as false: {replaced}"
    );
    assert_eq!(replaced["externalId"], "put");
    assert!(
        replaced.get("displayName").is_none(),
        "PUT replaces: {replaced}"
    );
    assert!(replaced.get("name").is_none(), "PUT replaces: {replaced}");
    assert_eq!(c.user(&user).unwrap().unwrap(), replaced);

    let child = new_group(&c, "Put child group", &[]);
    let group = new_group(&c, "Put group", &[&user]);
    let body = json!({ "schemas": [GROUP_SCHEMA], "displayName": "Put group renamed",
        "members": [{ "value": child, "type": "Group" }] });
    let replaced = ok_json(
        &send_json(&c, "PUT", &format!("/Groups/{group}"), &body),
        200,
        "PUT group",
    );
    assert_eq!(replaced["displayName"], "Put group renamed");
    assert_eq!(member_values(&replaced), BTreeSet::from([child.clone()]));
    assert_eq!(replaced["members"][0]["type"], "Group");
    assert_eq!(c.group(&group, false).unwrap().unwrap(), replaced);
}

#[test]
fn users_are_active_unless_told_otherwise_and_active_strings_become_booleans() {
    let Some(stack) =
        stack("users_are_active_unless_told_otherwise_and_active_strings_become_booleans")
    else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let plain = ok_json(
        &send_json(
            &c,
            "POST",
            "/Users",
            &json!({ "schemas": [USER_SCHEMA], "userName": "active.default@example.com" }),
        ),
        201,
        "no active",
    );
    assert_eq!(plain["active"], true, "{plain}");
    let off = ok_json(
        &send_json(
            &c,
            "POST",
            "/Users",
            &json!({ "schemas": [USER_SCHEMA], "userName": "active.string@example.com", "active": "False" }),
        ),
        201,
        "active \"False\"",
    );
    assert_eq!(off["active"], false, "{off}");
    let id = off["id"].as_str().unwrap();
    let on = c
        .patch_user(id, &Dialect::Default.set_active(true))
        .unwrap();
    assert_eq!(on["active"], true, "{on}");
    let filtered = c
        .list_resources(
            "Users",
            &[(
                "filter",
                r#"userName eq "active.string@example.com" and active eq true"#,
            )],
        )
        .unwrap();
    assert_eq!(filtered.resources, [on]);
}

#[test]
fn discovery_documents_are_served() {
    let Some(stack) = stack("discovery_documents_are_served") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let config = ok_json(
        &send(&c, "GET", "/ServiceProviderConfig", &[], ""),
        200,
        "ServiceProviderConfig",
    );
    assert!(
        config
            .to_string()
            .contains("urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"),
        "{config}"
    );
    assert_eq!(config["patch"]["supported"], true, "{config}");
    assert_eq!(config["filter"]["supported"], true, "{config}");
    let types = ok_json(
        &send(&c, "GET", "/ResourceTypes", &[], ""),
        200,
        "ResourceTypes",
    )
    .to_string();
    assert!(
        types.contains(USER_SCHEMA) && types.contains(GROUP_SCHEMA),
        "{types}"
    );
    let schemas = ok_json(&send(&c, "GET", "/Schemas", &[], ""), 200, "Schemas").to_string();
    assert!(
        schemas.contains(USER_SCHEMA) && schemas.contains(GROUP_SCHEMA),
        "{schemas}"
    );
}

// ---------------------------------------------------------------------------------------
// (d) Entra interop: what Entra sends, read back as Entra reads it
// ---------------------------------------------------------------------------------------

/// Entra links managers after the users exist, sending the bare id, and reads every user
/// back expecting `{"value": id}`: a second cycle matches without sending anything again.
#[test]
fn managers_are_linked_and_read_back_in_both_dialects() {
    let Some(stack) = stack("managers_are_linked_and_read_back_in_both_dialects") else {
        return;
    };
    for (dialect, mapping, tag) in [
        (Dialect::Default, ExternalId::MailNickname, "mgr-dflt"),
        (Dialect::AadOptscim062020, ExternalId::ObjectId, "mgr-aad"),
    ] {
        let c = client(stack, dialect).with_external_id(mapping);
        let mut directory =
            Directory::from_fixtures(&Fixtures::load_default().unwrap()).tagged(tag);
        let boss = directory.users[0].key.clone();
        for user in directory.users.iter_mut().skip(1) {
            user.manager = Some(boss.clone());
        }
        let managed = directory.users.len() - 1;
        let options = CycleOptions {
            changes: Changes::default(),
            ..CycleOptions::for_directory(&directory)
        };
        let first = c
            .run_cycle(&directory, &options)
            .unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert_eq!(first.managers_linked, managed, "{dialect}: {first}");
        let boss_id = first.user_id(&boss).unwrap();
        for user in directory.users.iter().skip(1) {
            let resource = c.user(first.user_id(&user.key).unwrap()).unwrap().unwrap();
            assert_eq!(entra_reads_user(&resource), None, "{dialect}: {resource}");
            assert_eq!(
                resource[ENTERPRISE_USER]["manager"],
                json!({ "value": boss_id }),
                "{dialect}: {resource}"
            );
            assert!(
                resource["schemas"]
                    .as_array()
                    .unwrap()
                    .contains(&json!(ENTERPRISE_USER)),
                "{dialect}: {resource}"
            );
        }
        let second = c
            .run_cycle(&directory, &options)
            .unwrap_or_else(|e| panic!("{dialect}: {e}"));
        assert_eq!(second.users_matched, directory.users.len(), "{dialect}");
        assert_eq!(second.users_updated, 0, "{dialect}: {second}");
        assert_eq!(second.managers_linked, 0, "{dialect}: {second}");
    }
}

/// A user whose manager was stored in any shape Entra (or the tutorial) sends stays readable:
/// each answer is one Entra can deserialise, and clearing the manager works.
#[test]
fn every_shape_of_manager_reads_back_complex() {
    let Some(stack) = stack("every_shape_of_manager_reads_back_complex") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let manager = new_user(&c, "shapes.manager@example.com", "Shapes Manager");
    let id = new_user(&c, "shapes.report@example.com", "Shapes Report");
    let path = format!("/Users/{id}");
    let expected = json!({ "value": manager });
    for operations in [
        json!([{ "op": "Add", "path": MANAGER_PATH, "value": manager }]),
        json!([{ "op": "add", "path": MANAGER_PATH, "value": manager }]),
        json!([{ "op": "replace", "value": { MANAGER_PATH: manager } }]),
        json!([{ "op": "replace", "value": { ENTERPRISE_USER: { "manager": manager } } }]),
        json!([{ "op": "Add", "path": "manager", "value": [{ "$ref": null, "value": manager }] }]),
        json!([{ "op": "Replace", "path": format!("{MANAGER_PATH}.value"), "value": manager }]),
    ] {
        assert_no_content_or_user(&c, &path, &operations, &expected);
    }
    // PUT with the string of Microsoft's schema example.
    let body = json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER],
        "userName": "shapes.report@example.com", ENTERPRISE_USER: { "manager": manager } });
    let replaced = ok_json(&send_json(&c, "PUT", &path, &body), 200, "PUT");
    assert_eq!(replaced[ENTERPRISE_USER]["manager"], expected, "{replaced}");
    // Removed, then not there.
    let removed = c
        .patch_user(
            &id,
            &patch_op(vec![json!({ "op": "Remove", "path": MANAGER_PATH })]),
        )
        .unwrap();
    assert!(
        removed
            .get(ENTERPRISE_USER)
            .is_none_or(|e| e.get("manager").is_none()),
        "{removed}"
    );
    // A manager that is no id is refused, and nothing changes.
    let before = c.user(&id).unwrap().unwrap();
    let bad = patch_op(vec![
        json!({ "op": "Add", "path": MANAGER_PATH, "value": 7 }),
    ]);
    assert_scim_error(
        &send_json(&c, "PATCH", &path, &bad),
        400,
        Some("invalidValue"),
        "manager 7",
    );
    assert_eq!(c.user(&id).unwrap().unwrap(), before);
}

/// Sends `operations` to the user at `path`; the answer and a fresh GET hold `manager`
/// `expected` and are readable by Entra.
fn assert_no_content_or_user(c: &ScimClient, path: &str, operations: &Value, expected: &Value) {
    let what = format!("PATCH {operations}");
    let answer = ok_json(
        &send_json(
            c,
            "PATCH",
            path,
            &patch_op(operations.as_array().unwrap().clone()),
        ),
        200,
        &what,
    );
    assert_eq!(
        answer[ENTERPRISE_USER]["manager"], *expected,
        "{what}: {answer}"
    );
    assert_eq!(entra_reads_user(&answer), None, "{what}");
    let got = ok_json(&send(c, "GET", path, &[], ""), 200, &what);
    assert_eq!(got, answer, "{what}");
}

/// Attribute names in filtered paths compare without case (RFC 7643 §2.1): the entry is
/// updated, on every multi-valued attribute alike.
#[test]
fn filtered_paths_compare_attribute_names_without_case() {
    let Some(stack) = stack("filtered_paths_compare_attribute_names_without_case") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let body = json!({ "schemas": [USER_SCHEMA], "userName": "case.paths@example.com",
        "emails": [{ "type": "work", "value": "case.paths@example.com", "primary": true }],
        "phoneNumbers": [{ "type": "mobile", "value": "+1 555 0100" }] });
    let created = ok_json(&send_json(&c, "POST", "/Users", &body), 201, "create");
    let id = created["id"].as_str().unwrap();
    let phone = c
        .patch_user(
            id,
            &patch_op(vec![json!({ "op": "Replace",
            "path": "phoneNumbers[Type eq \"mobile\"].Value", "value": "+1 555 0199" })]),
        )
        .unwrap();
    assert_eq!(
        phone["phoneNumbers"],
        json!([{ "type": "mobile", "value": "+1 555 0199" }]),
        "{phone}"
    );
    let email = c
        .patch_user(
            id,
            &patch_op(vec![json!({ "op": "Replace",
            "path": "emails[Type eq \"Work\"].Value", "value": "case.paths.new@example.com" })]),
        )
        .unwrap();
    assert_eq!(
        email["emails"],
        json!([{ "type": "work", "value": "case.paths.new@example.com", "primary": true }]),
        "{email}"
    );
    let found = c
        .list_resources(
            "Users",
            &[(
                "filter",
                r#"emails[type eq "work"].value eq "case.paths.new@example.com""#,
            )],
        )
        .unwrap();
    assert_eq!(found.resources, [email]);
}

/// Removing `active` never re-enables a user; `schemas` belongs to the server; a partial
/// complex value keeps the other sub-attributes; a PUT without `active` keeps the state.
#[test]
fn removes_and_replaces_keep_what_they_do_not_name() {
    let Some(stack) = stack("removes_and_replaces_keep_what_they_do_not_name") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let id = new_user(&c, "keeps.state@example.com", "Keeps State");
    let path = format!("/Users/{id}");
    let disabled = c.disable_user(&id).unwrap();
    assert_eq!(disabled["active"], false);
    for (operations, scim_type) in [
        (json!([{ "op": "Remove", "path": "active" }]), "mutability"),
        (
            json!([{ "op": "remove", "path": "urn:ietf:params:scim:schemas:core:2.0:User:active" }]),
            "mutability",
        ),
        (
            json!([{ "op": "Remove", "path": "userName" }]),
            "mutability",
        ),
        (
            json!([{ "op": "replace", "path": "schemas", "value": ["x"] }]),
            "mutability",
        ),
        (
            json!([{ "op": "Replace", "value": { "schemas": ["x"] } }]),
            "mutability",
        ),
    ] {
        let what = format!("PATCH {operations}");
        let message = patch_op(operations.as_array().unwrap().clone());
        assert_scim_error(
            &send_json(&c, "PATCH", &path, &message),
            400,
            Some(scim_type),
            &what,
        );
        assert_eq!(c.user(&id).unwrap().unwrap(), disabled, "{what}");
    }
    // Part of `name`, with a path or path-less: the other sub-attributes stay.
    let renamed = c
        .patch_user(
            &id,
            &patch_op(vec![
                json!({ "op": "Replace", "path": "name", "value": { "givenName": "Kept" } }),
            ]),
        )
        .unwrap();
    let mut name = disabled["name"].clone();
    name["givenName"] = json!("Kept");
    assert_eq!(renamed["name"], name, "{renamed}");
    let renamed = c
        .patch_user(
            &id,
            &patch_op(vec![
                json!({ "op": "replace", "value": { "name": { "familyName": "State" } } }),
            ]),
        )
        .unwrap();
    name["familyName"] = json!("State");
    assert_eq!(renamed["name"], name, "{renamed}");
    assert_eq!(renamed["active"], false);
    // PUT without `active` keeps the user disabled; with it, it decides.
    let body = json!({ "schemas": [USER_SCHEMA], "userName": "keeps.state@example.com" });
    let replaced = ok_json(&send_json(&c, "PUT", &path, &body), 200, "PUT");
    assert_eq!(replaced["active"], false, "{replaced}");
    let mut body = body;
    body["active"] = json!(true);
    let replaced = ok_json(&send_json(&c, "PUT", &path, &body), 200, "PUT active");
    assert_eq!(replaced["active"], true, "{replaced}");
}

/// Entra's provisioning sends changes to one group from several workers at once: adds and
/// removes of different members all apply; a write that still has to be retried says when.
#[test]
fn concurrent_member_changes_to_one_group_do_not_conflict() {
    let Some(stack) = stack("concurrent_member_changes_to_one_group_do_not_conflict") else {
        return;
    };
    let c = client(stack, Dialect::AadOptscim062020);
    let users: Vec<String> = (0..20)
        .map(|i| {
            new_user(
                &c,
                &format!("concurrent.{i}@example.com"),
                &format!("Concurrent {i}"),
            )
        })
        .collect();
    let group = new_group(&c, "Concurrent group", &[]);
    let patch_all = |messages: Vec<Value>| -> Vec<HttpResponse> {
        std::thread::scope(|scope| {
            let handles: Vec<_> = messages
                .iter()
                .map(|message| {
                    let c = &c;
                    let path = format!("/Groups/{group}");
                    scope.spawn(move || send_json(c, "PATCH", &path, message))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        })
    };
    // Ten adds at once.
    let adds: Vec<Value> = users[..10]
        .iter()
        .map(|u| Dialect::AadOptscim062020.add_members(&[u]))
        .collect();
    for answer in patch_all(adds) {
        assert_no_content(&answer, "concurrent add");
    }
    let expected: BTreeSet<String> = users[..10].iter().cloned().collect();
    assert_eq!(
        member_values(&c.group(&group, false).unwrap().unwrap()),
        expected
    );
    // Five removes and five adds at once, in both dialects' shapes.
    let mut changes: Vec<Value> = users[..5]
        .iter()
        .enumerate()
        .map(|(i, u)| Dialect::ALL[i % 2].remove_member(u))
        .collect();
    changes.extend(
        users[10..15]
            .iter()
            .map(|u| Dialect::Default.add_members(&[u])),
    );
    for answer in patch_all(changes) {
        assert_no_content(&answer, "concurrent add or remove");
    }
    let expected: BTreeSet<String> = users[5..15].iter().cloned().collect();
    assert_eq!(
        member_values(&c.group(&group, false).unwrap().unwrap()),
        expected
    );
    // Renames do read and write the same resource: each lands, or is a 503 that says when to
    // retry; the group ends with one of the names.
    let renames: Vec<Value> = (0..8)
        .map(|i| patch_op(vec![json!({ "op": "replace", "path": "displayName", "value": format!("Concurrent group {i}") })]))
        .collect();
    let answers = patch_all(renames);
    assert!(answers.iter().any(|a| a.status == 204), "{answers:?}");
    for answer in &answers {
        if answer.status != 204 {
            assert_scim_error(answer, 503, None, "concurrent rename");
            let retry = answer.header("retry-after").unwrap_or_default();
            assert!(retry.parse::<u64>().is_ok_and(|s| s >= 1), "{answer:?}");
        }
    }
    let group_now = c.group(&group, false).unwrap().unwrap();
    assert!(
        group_now["displayName"]
            .as_str()
            .unwrap()
            .starts_with("Concurrent group "),
        "{group_now}"
    );
    assert_eq!(
        member_values(&group_now),
        expected,
        "renames keep the members"
    );
}

/// The membership check of Microsoft's reference SCIM code, and `attributes=`.
#[test]
fn the_membership_check_and_attribute_selection() {
    let Some(stack) = stack("the_membership_check_and_attribute_selection") else {
        return;
    };
    let c = client(stack, Dialect::Default);
    let member = new_user(&c, "check.member@example.com", "Check Member");
    let other = new_user(&c, "check.other@example.com", "Check Other");
    let group = new_group(&c, "Membership check", &[&member]);
    assert!(c.has_member(&group, &member).unwrap());
    assert!(!c.has_member(&group, &other).unwrap());
    assert!(!c
        .has_member(&group, "00000000-0000-4000-8000-000000000000")
        .unwrap());
    // The answer holds the group's id and schemas only.
    let filter = format!(r#"id eq "{group}" and members[value eq "{member}"]"#);
    let list = ok_json(
        &send(
            &c,
            "GET",
            "/Groups",
            &[("attributes", "id"), ("filter", &filter)],
            "",
        ),
        200,
        "membership check",
    );
    assert_eq!(
        assert_list(&list, 1, "membership check"),
        [json!({ "schemas": [GROUP_SCHEMA], "id": group })]
    );
    // The same check spelled as the reference code and RFC 7644 also allow, in any case.
    for filter in [
        format!(r#"id eq "{group}" and members eq "{member}""#),
        format!(
            r#"id eq "{group}" and members.value eq "{}""#,
            member.to_ascii_uppercase()
        ),
        format!(r#"ID EQ "{group}" AND MEMBERS[VALUE EQ "{member}"]"#),
        format!(r#"members[value eq "{member}"] and displayName eq "membership check""#),
    ] {
        let list = c
            .list_resources(
                "Groups",
                &[("excludedAttributes", "members"), ("filter", &filter)],
            )
            .unwrap();
        assert_eq!(list.total_results, 1, "{filter}");
        assert_eq!(list.resources[0]["id"], group.as_str(), "{filter}");
    }
    // What stays unsupported is an invalid filter.
    for filter in [
        format!(r#"members[value eq "{member}" or value eq "{other}"]"#),
        format!(r#"members[display eq "{member}"]"#),
        format!(r#"members[value co "{member}"]"#),
        format!(r#"id eq "{group}" or members[value eq "{member}"]"#),
        "members pr".to_owned(),
    ] {
        assert_scim_error(
            &send(&c, "GET", "/Groups", &[("filter", &filter)], ""),
            400,
            Some("invalidFilter"),
            &filter,
        );
    }
    // attributes= and excludedAttributes= on GET and lists; id and schemas always.
    let user = ok_json(
        &send(
            &c,
            "GET",
            &format!("/Users/{member}"),
            &[("attributes", "userName,name.givenName")],
            "",
        ),
        200,
        "attributes",
    );
    assert_eq!(
        user,
        json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": member,
                "userName": "check.member@example.com", "name": { "givenName": "Check" } })
    );
    let list = c
        .list_resources(
            "Users",
            &[
                ("attributes", "emails.value"),
                ("filter", r#"userName eq "check.member@example.com""#),
            ],
        )
        .unwrap();
    assert_eq!(
        list.resources,
        [
            json!({ "schemas": [USER_SCHEMA, ENTERPRISE_USER], "id": member,
                 "emails": [{ "value": "check.member@example.com" }] })
        ]
    );
    let without = ok_json(
        &send(
            &c,
            "GET",
            &format!("/Users/{member}"),
            &[("excludedAttributes", "name.familyName,emails,id")],
            "",
        ),
        200,
        "excludedAttributes",
    );
    assert_eq!(without["id"], member.as_str());
    assert!(without.get("emails").is_none(), "{without}");
    assert_eq!(
        without["name"],
        json!({ "formatted": "Check Member", "givenName": "Check" })
    );
    let group_only = ok_json(
        &send(
            &c,
            "GET",
            &format!("/Groups/{group}"),
            &[("attributes", "members.value")],
            "",
        ),
        200,
        "members.value",
    );
    assert_eq!(
        group_only,
        json!({ "schemas": [GROUP_SCHEMA], "id": group, "members": [{ "value": member }] })
    );
    assert_scim_error(
        &send(
            &c,
            "GET",
            "/Users",
            &[("attributes", r#"emails[type eq "work"]"#)],
            "",
        ),
        400,
        Some("invalidValue"),
        "a selection in attributes",
    );
}

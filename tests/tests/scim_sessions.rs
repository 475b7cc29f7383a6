//! What SCIM provisioning does at the edge, under `wrangler dev`: Entra's requests (through
//! the emulator's provisioning client) change who gets in on the very next request.
//!
//! Two stacks, one per `scim_config`:
//! - `reauth` with `user_deprovision`: a disabled or deleted user's sessions end; a group
//!   membership change sends the user back to sign in.
//! - `automatic`: a signed-in user's stored groups follow SCIM (and replace the token's);
//!   groups nested through SCIM satisfy a parent-group rule; SCIM display names appear in
//!   the refusal traces of the decision log.
//!
//! SCIM users are bound to the people who sign in by Entra's object id (the tokens' `oid`),
//! which Entra sends as `externalId` when the provisioning app maps `objectId` there: the
//! client here does so ([`ExternalId::ObjectId`]). A third stack, like the first, checks that
//! the binding — never an email claim — decides who is deprovisioned.
//!
//! The deprovisioning of a session held by a real browser is in `signin_browser.rs`.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::sync::OnceLock;
use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig, SCIM_PATH, SCIM_TOKEN};
use entra_emulator::fixtures::{Fixtures, Group, User};
use entra_emulator::provisioning::{Dialect, Directory, ExternalId, ScimClient, ERROR_SCHEMA};
use entra_emulator::TokenRequest;
use serde_json::{json, Value};
use signin_common::{Agent, IDP, TEAM_DOMAIN};

const BINARY: &str = "scim_sessions";

/// Groups only SCIM knows about (no token carries them).
const SCIM_ONLY: &str = "5c1a9e07-3b2d-4f6e-8a1c-0d9e8f7a6b5c";
const INCIDENT_COMMANDERS: &str = "9d8c7b6a-5f4e-4d3c-8b2a-1f0e9d8c7b6a";
const SUSPENDED: &str = "1e2d3c4b-5a69-4788-9a6b-5c4d3e2f1a0b";

fn document(fixtures: &Fixtures, scim_config: Value) -> Value {
    let azure = |id: &str| json!({ "azureAD": { "id": id, "identity_provider_id": IDP } });
    json!({
        "team_domain": TEAM_DOMAIN,
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}",
                        "support_groups": true, "pkce_enabled": true },
            "scim_config": scim_config }],
        "apps": [
            { "id": "staff", "name": "Staff portal", "domain": "${WORKER_HOST}/staff", "aud": "aud-staff",
              "policies": [
                { "name": "Suspended", "decision": "deny", "include": [azure(SUSPENDED)] },
                { "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] } ] },
            { "id": "eng", "name": "Engineering tools", "domain": "${WORKER_HOST}/eng", "aud": "aud-eng",
              "policies": [{ "name": "Engineering (nested)", "decision": "allow",
                             "include": [azure(fixtures.group_id("Engineering").unwrap())] }] },
            { "id": "scim", "name": "SCIM-granted", "domain": "${WORKER_HOST}/scim-only", "aud": "aud-scim",
              "policies": [{ "name": "SCIM-only group", "decision": "allow", "include": [azure(SCIM_ONLY)] }] },
            { "id": "open", "name": "Anyone signed in", "domain": "${WORKER_HOST}/open", "aud": "aud-open",
              "policies": [{ "name": "Everyone", "decision": "allow", "include": [{ "everyone": {} }] }] },
            { "id": "incidents", "name": "Incident room", "domain": "${WORKER_HOST}/incidents", "aud": "aud-incidents",
              "policies": [{ "name": "Incident commanders", "decision": "allow", "include": [azure(INCIDENT_COMMANDERS)] }] }
        ],
        "directory": { "group_parents": fixtures.group_parents() }
    })
}

fn start(name: &str, scim_config: Value) -> Result<Stack, String> {
    let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
    let stack = Stack::start(
        StackConfig::new(document(&fixtures, scim_config)).named(&format!("{BINARY}-{name}")),
    )
    .map_err(|e| e.to_string())?;
    signin_common::warm_up(&stack);
    Ok(stack)
}

fn reauth_stack() -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    STACK
        .get_or_init(|| {
            start(
                "reauth",
                json!({ "enabled": true, "user_deprovision": true, "identity_update_behavior": "reauth" }),
            )
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("the stack did not start: {e}"))
}

/// `user_deprovision` and `reauth`, for the tests of how users are keyed (each with users of
/// its own).
fn keyed_stack() -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    STACK
        .get_or_init(|| {
            start(
                "keyed",
                json!({ "enabled": true, "user_deprovision": true, "identity_update_behavior": "reauth" }),
            )
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("the stack did not start: {e}"))
}

fn automatic_stack() -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    STACK
        .get_or_init(|| {
            start(
                "automatic",
                json!({ "enabled": true, "identity_update_behavior": "automatic" }),
            )
        })
        .as_ref()
        .unwrap_or_else(|e| panic!("the stack did not start: {e}"))
}

fn should_run(test: &str) -> bool {
    Stack::should_run(&format!("{BINARY}::{test}")).unwrap()
}

/// Entra's provisioning client, its app mapping `objectId` to `externalId`.
fn scim(stack: &Stack, dialect: Dialect) -> ScimClient {
    ScimClient::new(&format!("{}{SCIM_PATH}", stack.url()), SCIM_TOKEN, dialect)
        .with_external_id(ExternalId::ObjectId)
}

fn directory() -> Directory {
    Directory::from_fixtures(&Fixtures::load_default().unwrap())
}

fn user(key: &str) -> User {
    directory().user(key).unwrap().clone()
}

fn group(object_id: &str, name: &str) -> Group {
    Group {
        id: object_id.into(),
        display_name: name.into(),
        ..Group::default()
    }
}

fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

/// Calls `path` on the stack with a fresh Entra access token of fixture user `user`: the
/// answer for each call.
fn bearer_caller<'s>(
    stack: &'s Stack,
    user: &str,
    path: &'s str,
) -> impl Fn() -> entra_emulator::client::HttpResponse + 's {
    bearer_caller_with(stack, user, &json!({}), path)
}

/// [`bearer_caller`] with `claims` set over the token's own (`null` removes one).
fn bearer_caller_with<'s>(
    stack: &'s Stack,
    user: &str,
    claims: &Value,
    path: &'s str,
) -> impl Fn() -> entra_emulator::client::HttpResponse + 's {
    let claims = claims.as_object().cloned().unwrap_or_default();
    let token = stack
        .emulator()
        .mint(&TokenRequest {
            user: user.into(),
            claims,
            ..TokenRequest::default()
        })
        .unwrap();
    let http = entra_emulator::client::HttpClient::new();
    move || {
        http.get_with(
            &format!("{}{path}", stack.url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
    }
}

/// Where a navigation ended: the origin's page (200) or a redirect to sign in.
fn assert_signed_in(agent: &mut Agent<'_>, path: &str, user: &str) {
    let page = agent.navigate(path);
    assert_eq!(page.status, 200, "{user} on {path}: {page:?}");
    let echo = signin_common::echoed(&page);
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        format!("{user}@example.com")
    );
}

fn assert_sent_to_sign_in(agent: &mut Agent<'_>, path: &str, what: &str) {
    let page = agent.navigate(path);
    assert_eq!(page.status, 302, "{what}: {page:?}");
    assert!(
        page.header("location")
            .is_some_and(|l| l.contains("/cdn-cgi/access/login")),
        "{what}: {page:?}"
    );
}

#[test]
fn a_user_disabled_with_the_string_false_loses_every_session() {
    if !should_run("disabled_user") {
        return;
    }
    let stack = reauth_stack();
    let scim = scim(stack, Dialect::Default);
    let ada = scim.create_user(&user("ada")).unwrap();
    // Two sessions (two browsers) and one for another user.
    let mut laptop = Agent::new(stack);
    let mut phone = Agent::new(stack);
    let mut other = Agent::new(stack);
    laptop.signed_in("/staff/inbox", "ada");
    phone.signed_in("/staff/inbox", "ada");
    other.signed_in("/staff/inbox", "bob");
    assert_signed_in(&mut laptop, "/staff/inbox", "ada");

    let disabled = scim.disable_user(&id_of(&ada)).unwrap();
    assert_eq!(disabled["active"], false, "{disabled}");

    assert_sent_to_sign_in(&mut laptop, "/staff/inbox", "ada's laptop after disable");
    assert_sent_to_sign_in(&mut phone, "/staff/inbox", "ada's phone after disable");
    let api = phone.api("/staff/api");
    assert_eq!(api.status, 401, "{api:?}");
    assert_signed_in(&mut other, "/staff/inbox", "bob");
    stack
        .wait_for_log("scim_sessions_revoked", Duration::from_secs(5))
        .unwrap();
    let revoked = signin_common::log_line(stack, "scim_sessions_revoked");
    assert!(!revoked.contains("ada@example.com"), "{revoked}");
}

#[test]
fn a_hard_deleted_user_loses_every_session() {
    if !should_run("deleted_user") {
        return;
    }
    let stack = reauth_stack();
    let scim = scim(stack, Dialect::AadOptscim062020);
    let dora = scim.create_user(&user("dora")).unwrap();
    let mut agent = Agent::new(stack);
    agent.signed_in("/staff/home", "dora");
    scim.delete_user(&id_of(&dora)).unwrap();
    assert_sent_to_sign_in(&mut agent, "/staff/home", "dora after delete");
    // No new session either, while SCIM says she is gone.
    let refused = agent.sign_in("/staff/home", "dora");
    assert_eq!(refused.status, 403, "{refused:?}");
    assert!(
        !refused
            .header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("CF_Authorization=") && !c.contains("Max-Age=0")),
        "{refused:?}"
    );
    // Provisioned again: signing in works.
    scim.create_user(&user("dora")).unwrap();
    agent.signed_in("/staff/home", "dora");
    assert_signed_in(&mut agent, "/staff/home", "dora");
}

#[test]
fn with_reauth_a_group_membership_change_forces_a_new_sign_in() {
    if !should_run("reauth_group_change") {
        return;
    }
    let stack = reauth_stack();
    let scim = scim(stack, Dialect::AadOptscim062020);
    let grace = scim.create_user(&user("grace")).unwrap();
    let team = scim
        .create_group(&group(
            "7a6b5c4d-3e2f-4a1b-9c8d-7e6f5a4b3c2d",
            "Reauth team",
        ))
        .unwrap();
    let mut agent = Agent::new(stack);
    let mut bystander = Agent::new(stack);
    agent.signed_in("/staff/a", "grace");
    bystander.signed_in("/staff/a", "bob");

    scim.add_members(&id_of(&team), &[&id_of(&grace)]).unwrap();
    assert_sent_to_sign_in(&mut agent, "/staff/a", "grace after being added to a group");
    assert_signed_in(&mut bystander, "/staff/a", "bob");

    agent.signed_in("/staff/a", "grace");
    assert_signed_in(&mut agent, "/staff/a", "grace");
    scim.remove_member(&id_of(&team), &id_of(&grace)).unwrap();
    assert_sent_to_sign_in(
        &mut agent,
        "/staff/a",
        "grace after being removed from a group",
    );

    // A change to an attribute that is not a membership keeps the session.
    agent.signed_in("/staff/a", "grace");
    let update = entra_emulator::provisioning::UserUpdate {
        display_name: Some("Grace B. Hopper".into()),
        ..Default::default()
    };
    scim.update_user(&id_of(&grace), &update).unwrap();
    assert_signed_in(&mut agent, "/staff/a", "grace");
}

#[test]
fn with_automatic_the_stored_groups_follow_scim() {
    if !should_run("automatic_groups") {
        return;
    }
    let stack = automatic_stack();
    let scim = scim(stack, Dialect::Default);
    let grace = scim.create_user(&user("grace")).unwrap();
    let granted = scim
        .create_group(&group(SCIM_ONLY, "SCIM-only access"))
        .unwrap();
    let mut agent = Agent::new(stack);
    agent.signed_in("/eng/build", "grace");
    let before = agent.navigate("/scim-only/x");
    assert_eq!(before.status, 403, "{before:?}");

    scim.add_members(&id_of(&granted), &[&id_of(&grace)])
        .unwrap();
    // Same session, no sign-in: SCIM's groups now decide.
    assert_signed_in(&mut agent, "/scim-only/x", "grace");
    // They replace the token's groups (Cloudflare's documented behaviour): the nested
    // Engineering membership came from the token, SCIM does not have it.
    let eng = agent.navigate("/eng/build");
    assert_eq!(eng.status, 403, "{eng:?}");

    scim.remove_member(&id_of(&granted), &id_of(&grace))
        .unwrap();
    let after = agent.navigate("/scim-only/x");
    assert_eq!(after.status, 403, "{after:?}");
    stack
        .wait_for_log("scim_identities_updated", Duration::from_secs(5))
        .unwrap();

    // Another SCIM user whose work email is grace's does not lend her its groups: a session
    // follows the user whose userName is its email.
    let mut impostor = user("mallory");
    impostor.upn = "impostor@contractor.example".into();
    impostor.mail = Some("grace@example.com".into());
    let impostor = scim.create_user(&impostor).unwrap();
    scim.add_members(&id_of(&granted), &[&id_of(&impostor)])
        .unwrap();
    let still = agent.navigate("/scim-only/x");
    assert_eq!(still.status, 403, "{still:?}");
}

#[test]
fn groups_nested_through_scim_satisfy_a_parent_group_rule() {
    if !should_run("nested_groups") {
        return;
    }
    let stack = automatic_stack();
    let scim = scim(stack, Dialect::AadOptscim062020);
    // dora's token carries only On-call (her direct group); nothing in the configuration puts
    // On-call under Incident commanders.
    let fixtures = Fixtures::load_default().unwrap();
    let on_call_id = fixtures.group_id("On-call").unwrap();
    let call = bearer_caller(stack, "dora", "/incidents/board");
    assert_eq!(call().status, 403);

    let commanders = scim
        .create_group(&group(INCIDENT_COMMANDERS, "Incident commanders"))
        .unwrap();
    let on_call = scim.create_group(&group(on_call_id, "On-call")).unwrap();
    scim.add_members(&id_of(&commanders), &[&id_of(&on_call)])
        .unwrap();
    let allowed = call();
    assert_eq!(allowed.status, 200, "{allowed:?}");

    scim.remove_member(&id_of(&commanders), &id_of(&on_call))
        .unwrap();
    assert_eq!(call().status, 403);

    // Nesting two levels deep: On-call ⊂ Responders ⊂ Incident commanders.
    let responders = scim
        .create_group(&group("2b3c4d5e-6f70-4182-93a4-b5c6d7e8f901", "Responders"))
        .unwrap();
    scim.add_members(&id_of(&responders), &[&id_of(&on_call)])
        .unwrap();
    scim.add_members(&id_of(&commanders), &[&id_of(&responders)])
        .unwrap();
    assert_eq!(call().status, 200);
    // Deleting the middle group cuts the path.
    scim.delete_group(&id_of(&responders)).unwrap();
    assert_eq!(call().status, 403);
}

#[test]
fn refusal_traces_name_scim_groups() {
    if !should_run("traces") {
        return;
    }
    let stack = automatic_stack();
    let scim = scim(stack, Dialect::Default);
    let bob = scim.create_user(&user("bob")).unwrap();
    let suspended = scim
        .create_group(&group(SUSPENDED, "Suspended for review"))
        .unwrap();
    let mut agent = Agent::new(stack);
    agent.signed_in("/staff/home", "bob");
    scim.add_members(&id_of(&suspended), &[&id_of(&bob)])
        .unwrap();
    let refused = agent.navigate("/staff/home");
    assert_eq!(refused.status, 403, "{refused:?}");
    stack
        .wait_for_log("Suspended for review", Duration::from_secs(5))
        .unwrap();
    let line = signin_common::log_line(stack, "Suspended for review");
    assert!(line.contains(SUSPENDED), "{line}");
    assert!(line.contains("\"outcome\":\"block\""), "{line}");
}

#[test]
fn a_deprovisioned_users_bearer_tokens_are_refused_until_scim_brings_them_back() {
    if !should_run("bearer_deprovisioned") {
        return;
    }
    let stack = reauth_stack();
    let scim = scim(stack, Dialect::Default);
    let caller = bearer_caller(stack, "mallory", "/open/api");
    let call = || caller().status;
    assert_eq!(call(), 200, "before SCIM knows mallory");
    let mallory = scim.create_user(&user("mallory")).unwrap();
    assert_eq!(call(), 200, "provisioned and active");
    scim.disable_user(&id_of(&mallory)).unwrap();
    assert_eq!(call(), 401, "disabled");
    scim.patch_user(&id_of(&mallory), &Dialect::Default.set_active(true))
        .unwrap();
    assert_eq!(call(), 200, "enabled again");
    scim.delete_user(&id_of(&mallory)).unwrap();
    assert_eq!(call(), 401, "deleted");
    let again = scim.create_user(&user("mallory")).unwrap();
    assert_eq!(call(), 200, "provisioned again");
    scim.delete_user(&id_of(&again)).unwrap();
    let line = signin_common::log_line(stack, "deprovisioned (SCIM)");
    assert!(line.contains("\"status\":401"), "{line}");
}

#[test]
fn a_large_group_changes_member_by_member() {
    if !should_run("large_group") {
        return;
    }
    let stack = reauth_stack();
    let scim = scim(stack, Dialect::AadOptscim062020);
    // 1,500 users, added 100 per PATCH as Entra batches them; then one removal. No write reads
    // the member list, so the group's size does not matter to it.
    let http = entra_emulator::client::HttpClient::new();
    let base = format!("{}{SCIM_PATH}", stack.url());
    let auth = format!("Bearer {SCIM_TOKEN}");
    let group = scim
        .create_group(&group(
            "3c4d5e6f-7081-4293-a4b5-c6d7e8f90a1b",
            "Everyone (large)",
        ))
        .unwrap();
    let mut ids = Vec::new();
    for n in 0..1500 {
        // Bound to object ids of their own, as `user_deprovision` requires.
        let body = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                           "userName": format!("bulk{n}@large.example"),
                           "externalId": format!("b01c{n:04x}-0000-4000-8000-{n:012x}") });
        let created = http
            .request(
                "POST",
                &format!("{base}/Users"),
                &[
                    ("authorization", &auth),
                    ("content-type", "application/scim+json"),
                ],
                body.to_string().as_bytes(),
            )
            .unwrap();
        assert_eq!(created.status, 201, "{created:?}");
        ids.push(created.json().unwrap()["id"].as_str().unwrap().to_owned());
    }
    for chunk in ids.chunks(100) {
        let refs: Vec<&str> = chunk.iter().map(String::as_str).collect();
        scim.add_members(&id_of(&group), &refs).unwrap();
    }
    scim.remove_member(&id_of(&group), &ids[700]).unwrap();
    let full = http
        .get_with(
            &format!("{base}/Groups/{}", id_of(&group)),
            &[("authorization", &auth)],
        )
        .unwrap();
    assert_eq!(full.status, 200);
    let members = full.json().unwrap()["members"].as_array().unwrap().len();
    assert_eq!(members, 1499);
}

#[test]
fn scim_nesting_speaks_only_for_the_provisioned_provider() {
    if !should_run("scoped_nesting") {
        return;
    }
    // Two providers: the emulator's tenant (no SCIM) and another one that SCIM provisions.
    // Nesting provisioned for the other tenant must not widen the emulator tenant's rules.
    let fixtures = Fixtures::load_default().unwrap();
    let mut document = document(&fixtures, json!({ "enabled": false }));
    document["identity_providers"]
        .as_array_mut()
        .unwrap()
        .push(json!({ "id": "6b1f2e3d-4c5a-4b69-8e7f-102132435465", "name": "Partner tenant",
            "type": "azureAD",
            "config": { "client_id": "7c2a3b4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                        "directory_id": "8d3b4c5e-6f70-4b8c-9dae-1f2a3b4c5d6e", "support_groups": true },
            "scim_config": { "enabled": true, "identity_update_behavior": "no_action" } }));
    let stack =
        Stack::start(StackConfig::new(document).named(&format!("{BINARY}-scoped"))).unwrap();
    let scim = scim(&stack, Dialect::AadOptscim062020);
    let commanders = scim
        .create_group(&group(INCIDENT_COMMANDERS, "Incident commanders"))
        .unwrap();
    let on_call = scim
        .create_group(&group(fixtures.group_id("On-call").unwrap(), "On-call"))
        .unwrap();
    scim.add_members(&id_of(&commanders), &[&id_of(&on_call)])
        .unwrap();
    let answer = bearer_caller(&stack, "dora", "/incidents/board")();
    assert_eq!(answer.status, 403, "{answer:?}");
}

/// Someone Entra provisions under addresses of their own, bound by `oid` (their tokens are
/// fixture user bob's with that `oid` set).
fn keyed_person(key: &str, oid: &str) -> User {
    User {
        key: key.into(),
        oid: oid.into(),
        upn: format!("{key}@example.com"),
        mail: Some(format!("{key}@example.com")),
        name: "Keyed Person".into(),
        ..User::default()
    }
}

#[test]
fn deprovisioning_follows_the_object_id_whatever_the_email_claims_say() {
    if !should_run("keyed_bearer") {
        return;
    }
    let stack = keyed_stack();
    let scim = scim(stack, Dialect::Default);
    let oid = "6a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d";
    let person = keyed_person("keyed.bearer", oid);
    // The same person's tokens: with the address SCIM has, with no email-like claim at all
    // (as API tokens often are), and with another address. The person is made up, unknown to
    // Graph: an empty `groups` claim keeps Graph out of it (a token without one has its
    // groups read through Graph).
    let callers = [
        (
            "the address SCIM has",
            bearer_caller_with(
                stack,
                "bob",
                &json!({ "oid": oid, "email": person.provisioned_mail(), "preferred_username": person.provisioned_mail(), "groups": [] }),
                "/open/api",
            ),
        ),
        (
            "no email-like claim",
            bearer_caller_with(
                stack,
                "bob",
                &json!({ "oid": oid, "email": null, "preferred_username": null, "groups": [] }),
                "/open/api",
            ),
        ),
        (
            "another address",
            bearer_caller_with(
                stack,
                "bob",
                &json!({ "oid": oid, "email": "someone.else@example.com",
                          "preferred_username": "someone.else@example.com", "groups": [] }),
                "/open/api",
            ),
        ),
    ];
    let expect = |status: u16, when: &str| {
        for (what, call) in &callers {
            let answer = call();
            assert_eq!(answer.status, status, "{what}, {when}: {answer:?}");
        }
    };
    expect(200, "before SCIM knows them");
    let id = id_of(&scim.create_user(&person).unwrap());
    expect(200, "provisioned and active");
    scim.disable_user(&id).unwrap();
    expect(401, "disabled");
    scim.patch_user(&id, &Dialect::Default.set_active(true))
        .unwrap();
    expect(200, "enabled again");
    scim.delete_user(&id).unwrap();
    expect(401, "deleted");
    scim.create_user(&person).unwrap();
    expect(200, "provisioned again");
}

#[test]
fn with_user_deprovision_a_token_without_an_object_id_is_refused() {
    if !should_run("keyed_no_oid") {
        return;
    }
    // No `oid`: the user cannot be keyed, so whether SCIM deprovisioned them cannot be known.
    let call = bearer_caller_with(
        keyed_stack(),
        "bob",
        &json!({ "oid": null, "groups": [] }),
        "/open/api",
    );
    let answer = call();
    assert_eq!(answer.status, 401, "{answer:?}");
    let line = signin_common::log_line(keyed_stack(), "no object id");
    assert!(line.contains("\"status\":401"), "{line}");
    assert!(line.contains("user_deprovision"), "{line}");
    // Without `user_deprovision` nothing needs the key.
    let call = bearer_caller_with(
        automatic_stack(),
        "bob",
        &json!({ "oid": null, "groups": [] }),
        "/open/api",
    );
    let answer = call();
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[test]
fn sessions_end_by_object_id_when_scim_knows_other_addresses() {
    if !should_run("keyed_sessions") {
        return;
    }
    let stack = keyed_stack();
    let scim = scim(stack, Dialect::AadOptscim062020);
    let mut agent = Agent::new(stack);
    agent.signed_in("/staff/desk", "ada");
    // Entra provisions ada under addresses her tokens do not carry: only the object id binds
    // the SCIM user to her session.
    let mut ada = user("ada");
    ada.upn = "a.lovelace@corp.example".into();
    ada.mail = Some("a.lovelace@corp.example".into());
    let id = id_of(&scim.create_user(&ada).unwrap());
    assert_signed_in(&mut agent, "/staff/desk", "ada");

    scim.disable_user(&id).unwrap();
    assert_sent_to_sign_in(&mut agent, "/staff/desk", "ada after disable");
    let refused = agent.sign_in("/staff/desk", "ada");
    assert_eq!(refused.status, 403, "{refused:?}");

    scim.patch_user(&id, &Dialect::AadOptscim062020.set_active(true))
        .unwrap();
    agent.signed_in("/staff/desk", "ada");
    assert_signed_in(&mut agent, "/staff/desk", "ada");
}

#[test]
fn with_user_deprovision_users_must_be_bound_to_their_object_id() {
    if !should_run("keyed_binding") {
        return;
    }
    let stack = keyed_stack();
    let base = format!("{}{SCIM_PATH}", stack.url());
    let person = keyed_person("keyed.binding", "7b2c3d4e-5f60-4b7c-8d9e-0f1a2b3c4d5e");
    let assert_refused = |answer: &entra_emulator::client::HttpResponse, what: &str| {
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
        let body = answer.json().unwrap();
        assert_eq!(body["schemas"], json!([ERROR_SCHEMA]), "{what}: {body}");
        assert_eq!(body["scimType"], "invalidValue", "{what}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains("`externalId`") && detail.contains("objectId"),
            "{what}: {body}"
        );
    };

    // Entra's default mapping (mailNickname) cannot bind a user: refused, nothing stored.
    let entra_default = ScimClient::new(&base, SCIM_TOKEN, Dialect::Default);
    let answer = entra_default
        .send_json("POST", "/Users", &[], &person.create_payload())
        .unwrap();
    assert_refused(&answer, "created with externalId ← mailNickname");
    assert_eq!(
        entra_default
            .users_by_user_name(&person.upn)
            .unwrap()
            .total_results,
        0
    );

    // Bound, then changes that would unbind it are refused and leave it byte for byte.
    let scim = scim(stack, Dialect::Default);
    let id = id_of(&scim.create_user(&person).unwrap());
    let http = entra_emulator::client::HttpClient::new();
    let auth = format!("Bearer {SCIM_TOKEN}");
    let read = || {
        http.get_with(&format!("{base}/Users/{id}"), &[("authorization", &auth)])
            .unwrap()
            .body
    };
    let before = read();
    let unbind = Dialect::Default.update_user(&entra_emulator::provisioning::UserUpdate {
        external_id: Some(person.mail_nickname().into()),
        ..Default::default()
    });
    let answer = scim
        .send_json("PATCH", &format!("/Users/{id}"), &[], &unbind)
        .unwrap();
    assert_refused(&answer, "externalId replaced by the mailNickname");
    let mut replacement = person.create_payload();
    replacement.as_object_mut().unwrap().remove("externalId");
    let answer = scim
        .send_json("PUT", &format!("/Users/{id}"), &[], &replacement)
        .unwrap();
    assert_refused(&answer, "replaced without externalId");
    assert_eq!(read(), before);

    // A disable is never refused, bound or not; and a SCIM user who is not bound, here one
    // stored disabled, refuses anyone with its address whose object id SCIM does not know:
    // they cannot be told apart.
    let legacy = json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": "keyed.legacy@example.com", "externalId": "klegacy", "active": "False" });
    let answer = scim.send_json("POST", "/Users", &[], &legacy).unwrap();
    assert_eq!(answer.status, 201, "{answer:?}");
    let call = bearer_caller_with(
        stack,
        "bob",
        &json!({ "oid": "8c3d4e5f-6071-4c8d-9eaf-102132435465",
                 "preferred_username": "keyed.legacy@example.com", "groups": [] }),
        "/open/api",
    );
    assert_eq!(call().status, 401);
    let line = signin_common::log_line(stack, "not bound to an object id");
    assert!(line.contains("\"status\":401"), "{line}");
}

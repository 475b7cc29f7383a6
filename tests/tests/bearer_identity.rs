//! Who an Entra bearer token makes the caller, end to end (the built worker under
//! `wrangler dev`, the Entra ID emulator, the echo origin): app-only tokens are no users, and
//! a user whose groups overflow the token is in the same kind of groups as one whose token
//! lists them.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it); see `harness.rs`.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::{Fixtures, GroupMembershipClaims};
use entra_emulator::TokenRequest;
use serde_json::{json, Value};

const IDP: &str = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";

fn document(fixtures: &Fixtures) -> Value {
    let azure = |name: &str| json!({ "azureAD": { "id": fixtures.group_id(name).unwrap(), "identity_provider_id": IDP } });
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}", "support_groups": true } }],
        "apps": [
            { "id": "everyone", "name": "Anyone signed in", "domain": "${WORKER_HOST}/everyone", "aud": "aud-everyone",
              "policies": [{ "name": "Everyone", "decision": "allow", "include": [{ "everyone": {} }] }] },
            { "id": "eng", "name": "Engineering", "domain": "${WORKER_HOST}/eng", "aud": "aud-eng",
              "policies": [{ "name": "Engineering (nested)", "decision": "allow", "include": [azure("Engineering")] }] },
            { "id": "program", "name": "Program 19 (a Microsoft 365 group)", "domain": "${WORKER_HOST}/program", "aud": "aud-program",
              "policies": [{ "name": "Program 19", "decision": "allow", "include": [azure("Program 19")] }] }
        ]
        // No `directory.group_parents`: the groups come from the token or Graph alone
        // (transitively), so a nesting the document declared cannot bring Program 19 back.
    })
}

fn bearer(stack: &Stack, path: &str, token: &str) -> HttpResponse {
    HttpClient::with_timeout(Duration::from_secs(20))
        .get_with(
            &format!("{}{path}", stack.url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
}

fn assert_refused(response: &HttpResponse, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert!(
        !response.body.contains("\"headers\""),
        "{what}: the origin answered"
    );
}

/// An app-only token for the gateway's own API from the emulator's token endpoint (client
/// credentials, as any client of the tenant can get one).
fn client_credentials_token(stack: &Stack, scope: &str) -> String {
    let emulator = stack.emulator();
    let response = HttpClient::new()
        .post_form(
            &emulator.token_endpoint(),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", emulator.client_id()),
                ("client_secret", emulator.client_secret()),
                ("scope", scope),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn app_only_tokens_are_not_users() {
    if !Stack::should_run("bearer_identity::app_only_tokens_are_not_users").unwrap() {
        return;
    }
    let fixtures = Fixtures::load_default().unwrap();
    let stack =
        Stack::start(StackConfig::new(document(&fixtures)).named("bearer-app-only")).unwrap();
    let emulator = stack.emulator();

    // A user passes the `everyone` policy.
    let user = emulator.mint(&TokenRequest::v2("ada")).unwrap();
    assert_eq!(bearer(&stack, "/everyone/x", &user).status, 200);

    // An application acting as itself (client credentials) is nobody: refused, whatever the
    // policies say, by application id URI and by client id.
    let client_id = emulator.client_id().to_owned();
    for scope in [
        format!("api://{client_id}/.default"),
        format!("{client_id}/.default"),
    ] {
        let app = client_credentials_token(&stack, &scope);
        let response = bearer(&stack, "/everyone/x", &app);
        assert_refused(&response, 401, &scope);
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    }
    // Also when told by the optional `idtyp` claim, or by `oid` = `sub` on a token otherwise
    // shaped like a user's.
    let oid = fixtures.user("ada").unwrap().oid.clone();
    for (what, request) in [
        (
            "idtyp app",
            TokenRequest::v2("ada").with_claim("idtyp", "app"),
        ),
        (
            "oid = sub",
            TokenRequest::v2("ada").with_claim("sub", oid.as_str()),
        ),
        (
            "v1, oid = sub",
            TokenRequest::v1("ada").with_claim("sub", oid.as_str()),
        ),
    ] {
        let token = emulator.mint(&request).unwrap();
        assert_refused(&bearer(&stack, "/everyone/x", &token), 401, what);
    }
    assert_eq!(
        stack.origin().requests(),
        1,
        "only the user reached the origin"
    );
    assert!(stack
        .worker_log_json()
        .iter()
        .any(|line| line["event"] == "decision"
            && line["status"] == 401
            && line["reason"]
                .as_str()
                .unwrap_or("")
                .contains("app-only token")));
}

#[test]
fn overage_users_count_security_groups_unless_configured() {
    if !Stack::should_run("bearer_identity::overage_users_count_security_groups_unless_configured")
        .unwrap()
    {
        return;
    }
    // By default the registration's groups claim lists security groups (`SecurityGroup`):
    // Graph is asked for those only, so the overage user — whose token lists no groups — is
    // not in the Microsoft 365 group Program 19, as no token user would be, while nested
    // security groups (Engineering) still count.
    let fixtures = Fixtures::load_default().unwrap();
    let stack =
        Stack::start(StackConfig::new(document(&fixtures)).named("bearer-overage-security"))
            .unwrap();
    let overage = stack.emulator().mint(&TokenRequest::v2("overage")).unwrap();
    assert_eq!(bearer(&stack, "/eng/x", &overage).status, 200);
    assert_refused(
        &bearer(&stack, "/program/x", &overage),
        403,
        "a Microsoft 365 group through Graph",
    );
    drop(stack);

    // With `group_membership_claims: "All"` (the registration's groups claim lists every
    // group) Graph is asked for all groups, and Program 19 counts.
    let mut all = fixtures.clone();
    all.group_membership_claims = Some(GroupMembershipClaims::All);
    let mut config = document(&all);
    config["identity_providers"][0]["config"]["group_membership_claims"] = json!("All");
    let mut stack_config = StackConfig::new(config).named("bearer-overage-all");
    stack_config.fixtures = Some(all);
    let stack = Stack::start(stack_config).unwrap();
    let overage = stack.emulator().mint(&TokenRequest::v2("overage")).unwrap();
    assert_eq!(bearer(&stack, "/eng/x", &overage).status, 200);
    assert_eq!(bearer(&stack, "/program/x", &overage).status, 200);
}

#[test]
fn a_provider_without_groups_gives_bearer_users_none() {
    if !Stack::should_run("bearer_identity::a_provider_without_groups_gives_bearer_users_none")
        .unwrap()
    {
        return;
    }
    // With `support_groups` off the gateway reads no groups from the provider, whichever token
    // brings the user: a bearer token's `groups` claim counts no more than a sign-in's, so an
    // API caller is decided as the same user signed in would be.
    let fixtures = Fixtures::load_default().unwrap();
    let backend = fixtures.group_id("Backend").unwrap().to_owned();
    let mut config = document(&fixtures);
    config["identity_providers"][0]["config"]["support_groups"] = json!(false);
    config["apps"].as_array_mut().unwrap().push(json!(
        { "id": "backend", "name": "Backend", "domain": "${WORKER_HOST}/backend", "aud": "aud-backend",
          "policies": [{ "name": "Backend", "decision": "allow",
                         "include": [{ "azureAD": { "id": backend, "identity_provider_id": IDP } }] }] }
    ));
    let stack = Stack::start(StackConfig::new(config).named("bearer-no-groups")).unwrap();
    let ada = stack.emulator().mint(&TokenRequest::v2("ada")).unwrap();
    // The token does list the group: the refusal below is the setting's doing.
    let payload = ada.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(
        &base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
            .unwrap(),
    )
    .unwrap();
    assert!(
        claims["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g == &json!(backend)),
        "{claims}"
    );
    assert_eq!(bearer(&stack, "/everyone/x", &ada).status, 200);
    assert_refused(
        &bearer(&stack, "/backend/x", &ada),
        403,
        "a group rule of a provider without support_groups",
    );
}

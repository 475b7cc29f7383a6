//! The gateway against Entra as Microsoft documents it (the emulator's strict behaviour, see
//! `entra_claims.rs`), end to end: `auth_method` rules with tokens that carry `amr` only in
//! v1, one email for a person on the browser and API paths, tokens without a groups claim,
//! silent sign-ins Entra refuses, configured v1 audiences, app-specific signing keys and
//! Graph in a national cloud.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it); see `harness.rs`.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

mod signin_common;

use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::{Cloud, Fixtures};
use entra_emulator::TokenRequest;
use serde_json::{json, Value};
use signin_common::{query, Agent, IDP};

fn idp(extra: Value) -> Value {
    let mut config = json!({ "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}",
                             "pkce_enabled": true });
    for (name, value) in extra.as_object().unwrap() {
        config[name] = value.clone();
    }
    json!([{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD", "config": config }])
}

fn app(id: &str, include: Value, require: Value, exclude: Value) -> Value {
    json!({ "id": id, "name": id, "domain": format!("${{WORKER_HOST}}/{id}"), "aud": format!("aud-{id}"),
            "policies": [{ "name": id, "decision": "allow", "include": [include],
                          "require": require, "exclude": exclude }] })
}

fn document(idp_config: Value, apps: Vec<Value>) -> Value {
    json!({ "team_domain": "https://access.example.com", "identity_providers": idp(idp_config),
            "apps": apps })
}

fn start(name: &str, document: Value, fixtures: Option<Fixtures>) -> Option<Stack> {
    if !Stack::should_run(&format!("entra_gateway::{name}")).unwrap() {
        return None;
    }
    let mut config = StackConfig::new(document).named(&format!("entra-{name}"));
    config.fixtures = fixtures;
    Some(Stack::start(config).unwrap())
}

fn bearer(stack: &Stack, path: &str, token: &str) -> HttpResponse {
    HttpClient::with_timeout(Duration::from_secs(20))
        .get_with(
            &format!("{}{path}", stack.url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
}

fn azure(fixtures: &Fixtures, group: &str) -> Value {
    json!({ "azureAD": { "id": fixtures.group_id(group).unwrap(), "identity_provider_id": IDP } })
}

#[test]
fn auth_method_rules_read_amr_from_a_v1_sign_in() {
    // Entra puts `amr` in v1 tokens only: with an `auth_method` rule the gateway signs in
    // through the v1 endpoints, whose ID token carries it.
    let mfa = json!([{ "auth_method": { "auth_method": "mfa" } }]);
    let document = document(
        json!({}),
        vec![app("mfa", json!({ "everyone": {} }), mfa, json!([]))],
    );
    let Some(stack) = start("auth_method", document, None) else {
        return;
    };
    let mut agent = Agent::new(&stack);
    let authorize = agent.begin_sign_in("/mfa/");
    let emulator = stack.emulator();
    assert!(
        authorize.starts_with(&format!(
            "{}/{}/oauth2/authorize?",
            emulator.url(),
            emulator.tenant_id()
        )),
        "{authorize}"
    );
    let callback = agent.choose_user(&authorize, "ada");
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 302, "ada (pwd, mfa): {answer:?}");
    assert_eq!(answer.header("location"), Some("/mfa/"));
    assert_eq!(agent.navigate("/mfa/").status, 200);
    // Bob signed in with a password alone.
    let mut agent = Agent::new(&stack);
    let answer = agent.sign_in("/mfa/", "bob");
    assert_eq!(answer.status, 403, "bob (pwd): {answer:?}");
    // Bearer tokens: v1 ones carry `amr`, v2 ones never do.
    assert_eq!(
        bearer(
            &stack,
            "/mfa/",
            &emulator.mint(&TokenRequest::v1("ada")).unwrap()
        )
        .status,
        200
    );
    assert_eq!(
        bearer(
            &stack,
            "/mfa/",
            &emulator.mint(&TokenRequest::v2("ada")).unwrap()
        )
        .status,
        403
    );
}

#[test]
fn email_rules_and_silent_sign_in() {
    // Ada's UPN is ada@example.com, her mail ada.lovelace@example.net. Her v2 ID token
    // carries both (`email` from the `email` scope), her access tokens only the UPN: the
    // identity's email is the UPN on both paths, so `email` rules answer alike.
    let document = document(
        json!({ "prompt": "none" }),
        vec![
            app(
                "upn",
                json!({ "email": { "email": "ada@example.com" } }),
                json!([]),
                json!([]),
            ),
            app(
                "mail",
                json!({ "email": { "email": "ada.lovelace@example.net" } }),
                json!([]),
                json!([]),
            ),
        ],
    );
    let Some(stack) = start("email_and_silent", document, None) else {
        return;
    };
    let emulator = stack.emulator();
    // `prompt=none` with nobody signed in at Entra: `login_required`, and the gateway starts
    // an interactive sign-in instead of failing.
    let mut agent = Agent::new(&stack);
    let authorize = agent.begin_sign_in("/upn/");
    assert_eq!(query(&authorize, "prompt").as_deref(), Some("none"));
    let silent = agent.http.get(&authorize).unwrap();
    assert_eq!(silent.status, 302, "{silent:?}");
    let callback = silent.header("location").unwrap().to_owned();
    assert_eq!(query(&callback, "error").as_deref(), Some("login_required"));
    let again = agent.navigate(&callback);
    assert_eq!(again.status, 302, "{again:?}");
    let login = again.header("location").unwrap().to_owned();
    assert!(login.contains("/cdn-cgi/access/login?"), "{login}");
    let authorize = agent.begin_login(&login);
    assert_eq!(
        query(&authorize, "prompt").as_deref(),
        Some("select_account"),
        "{authorize}"
    );
    let callback = agent.choose_user(&authorize, "ada");
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some("/upn/"));
    let echoed = signin_common::echoed(&agent.navigate("/upn/"));
    assert_eq!(
        echoed["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    // The same answer for the same person with a bearer token, v1 or v2.
    for request in [TokenRequest::v1("ada"), TokenRequest::v2("ada")] {
        let token = emulator.mint(&request).unwrap();
        assert_eq!(bearer(&stack, "/upn/", &token).status, 200);
        assert_eq!(bearer(&stack, "/mail/", &token).status, 403);
    }
    // …and the mail is not her address in a session either.
    let mut agent = Agent::new(&stack);
    let authorize = agent.begin_sign_in("/mail/");
    let callback = agent.http.get(&authorize).unwrap();
    let login = agent
        .navigate(callback.header("location").unwrap())
        .header("location")
        .unwrap()
        .to_owned();
    let authorize = agent.begin_login(&login);
    let callback = agent.choose_user(&authorize, "ada");
    assert_eq!(agent.navigate(&callback).status, 403);
}

#[test]
fn tokens_without_groups_are_read_through_graph() {
    // The registration emits no group claims: no `groups`, no overage marker. Mallory is in
    // Blocked users; an `exclude` on it must still keep her out.
    let mut fixtures = Fixtures::load_default().unwrap();
    fixtures.group_membership_claims = None;
    let blocked = azure(&fixtures, "Blocked users");
    let engineering = azure(&fixtures, "Engineering");
    let document = document(
        json!({ "support_groups": true }),
        vec![
            app(
                "staff",
                json!({ "everyone": {} }),
                json!([]),
                json!([blocked]),
            ),
            app("eng", engineering, json!([]), json!([])),
        ],
    );
    let Some(stack) = start("groups_absent", document, Some(fixtures)) else {
        return;
    };
    let emulator = stack.emulator();
    let mallory = emulator.mint(&TokenRequest::v2("mallory")).unwrap();
    assert_eq!(bearer(&stack, "/staff/", &mallory).status, 403);
    let ada = emulator.mint(&TokenRequest::v1("ada")).unwrap();
    assert_eq!(bearer(&stack, "/staff/", &ada).status, 200);
    assert_eq!(bearer(&stack, "/eng/", &ada).status, 200);
    let mut agent = Agent::new(&stack);
    assert_eq!(agent.sign_in("/staff/", "mallory").status, 403);
    let mut agent = Agent::new(&stack);
    agent.signed_in("/eng/", "grace");
    // Groups by name (sAMAccountName) are a configuration error, not the user's refusal.
    let by_name = emulator
        .mint(&TokenRequest::v2("ada").with_claim("groups", json!(["backend", "engineering"])))
        .unwrap();
    let answer = bearer(&stack, "/staff/", &by_name);
    assert_eq!(answer.status, 500, "{answer:?}");
    stack
        .wait_for_log("emit Group IDs", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn configured_audiences_and_app_signing_keys() {
    // The API's Application ID URI is not `api://{client id}`, and its registration signs
    // with its own key (claims mapping), published only with `?appid=`.
    let mut fixtures = Fixtures::load_default().unwrap();
    fixtures.app_signing_key = true;
    let document = document(
        json!({ "audiences": ["https://api.example.com/edge"], "app_signing_key": true }),
        vec![app("api", json!({ "everyone": {} }), json!([]), json!([]))],
    );
    let Some(stack) = start("audiences", document, Some(fixtures)) else {
        return;
    };
    let emulator = stack.emulator();
    for audience in [
        "https://api.example.com/edge",
        "https://api.example.com/edge/",
    ] {
        let token = emulator
            .mint(&TokenRequest::v1("ada").with_audience(audience))
            .unwrap();
        let answer = bearer(&stack, "/api/", &token);
        assert_eq!(answer.status, 200, "{audience}: {answer:?}");
    }
    for audience in [
        format!("api://{}", emulator.client_id()),
        "https://api.example.com/other".to_owned(),
    ] {
        let token = emulator
            .mint(&TokenRequest::v1("ada").with_audience(&audience))
            .unwrap();
        assert_eq!(bearer(&stack, "/api/", &token).status, 401, "{audience}");
    }
    // Sign-ins are signed by the app's key too.
    let mut agent = Agent::new(&stack);
    agent.signed_in("/api/", "ada");
}

#[test]
fn graph_follows_the_configured_cloud() {
    // A tenant in the US Government cloud: the client credentials scope names its Graph.
    let mut fixtures = Fixtures::load_default().unwrap();
    fixtures.cloud = Cloud::UsGovernment;
    let engineering = azure(&fixtures, "Engineering");
    let document = document(
        json!({ "support_groups": true, "azure_cloud": "us" }),
        vec![app("eng", engineering, json!([]), json!([]))],
    );
    let Some(stack) = start("cloud", document, Some(fixtures)) else {
        return;
    };
    let overage = stack.emulator().mint(&TokenRequest::v2("overage")).unwrap();
    let answer = bearer(&stack, "/eng/", &overage);
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(stack.emulator().client_credentials_issued(), 1);
}

//! The SCIM endpoint without a usable `SCIM_TOKEN` (not set, or shorter than the worker
//! accepts): every request is a 401 in the SCIM error schema — an authentication problem,
//! which is what Entra's "Test Connection" then reports — never a 500, and the worker's log
//! says why. One stack per case; needs `cargo xtask build-worker` first (see `harness.rs`).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig, SCIM_PATH};
use entra_emulator::client::HttpClient;
use entra_emulator::provisioning::{
    Dialect, ProvisioningError, ScimClient, ERROR_SCHEMA, SCIM_MEDIA_TYPE,
};
use serde_json::{json, Value};

const IDP: &str = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";

fn document() -> Value {
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}" },
            "scim_config": { "enabled": true } }],
        "apps": [
            { "id": "public", "name": "Public", "domain": "${WORKER_HOST}/public", "aud": "aud-public",
              "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }
        ]
    })
}

/// Entra's Test Connection and a few other requests with `token`, against a worker whose
/// `SCIM_TOKEN` is `configured`: each a SCIM 401; the log names `reason`.
fn refuses_everything(test: &str, configured: &str, token: &str, reason: &str) {
    if !Stack::should_run(&format!("scim_token::{test}")).unwrap() {
        return;
    }
    let stack = Stack::start(
        StackConfig::new(document())
            .named(test)
            .with_var("SCIM_TOKEN", configured),
    )
    .unwrap();
    let c = ScimClient::new(
        &format!("{}{SCIM_PATH}", stack.url()),
        token,
        Dialect::Default,
    );

    match c.test_connection() {
        Err(ProvisioningError::Status {
            status: 401,
            expected: 200,
            ..
        }) => {}
        other => panic!("Test Connection: {other:?}"),
    }
    for (method, path, body) in [
        ("GET", "/Users", None),
        ("GET", "/Groups", None),
        (
            "POST",
            "/Users",
            Some(r#"{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "x"}"#),
        ),
        (
            "PATCH",
            "/Users/00000000-0000-4000-8000-000000000000",
            Some("{}"),
        ),
        (
            "DELETE",
            "/Groups/00000000-0000-4000-8000-000000000000",
            None,
        ),
    ] {
        let what = format!("{method} {path}");
        let answer = c.send(method, path, &[], body.map(str::as_bytes)).unwrap();
        assert_eq!(answer.status, 401, "{what}: {answer:?}");
        assert!(
            answer
                .header("content-type")
                .unwrap_or_default()
                .starts_with(SCIM_MEDIA_TYPE),
            "{what}: {answer:?}"
        );
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{what}");
        let error = answer.json().unwrap();
        assert_eq!(error["schemas"], json!([ERROR_SCHEMA]), "{what}: {error}");
        assert_eq!(error["status"], "401", "{what}: {error}");
        assert!(
            !error.to_string().contains("SCIM_TOKEN"),
            "the client is not told why: {error}"
        );
        assert!(!answer.body.contains(token), "{what}: {answer:?}");
    }
    let log = stack
        .wait_for_log(reason, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("the log does not say `{reason}`: {e}"));
    let line = log
        .lines()
        .find(|line| line.contains(reason))
        .unwrap_or_default();
    assert!(line.contains("\"event\":\"scim_refused\""), "{line}");
    assert!(line.contains("\"status\":\"401\""), "{line}");
    // (Wrangler itself lists the vars it was given at start-up; the worker's lines are events.)
    for line in log.lines().filter(|line| line.contains("\"event\":")) {
        assert!(!line.contains(token), "the worker logged the token: {line}");
    }
    // The gateway itself keeps working.
    let public = HttpClient::new()
        .get(&format!("{}/public/x", stack.url()))
        .unwrap();
    assert_eq!(public.status, 200, "{public:?}");
}

#[test]
fn without_a_scim_token_every_request_is_a_401() {
    refuses_everything(
        "without_a_scim_token_every_request_is_a_401",
        "",
        "any-token-entra-might-hold-0123456789",
        "SCIM_TOKEN secret is not set",
    );
}

/// A token too short to be accepted (a bearer token that never expires must not be
/// guessable) is refused even when presented exactly.
#[test]
fn with_a_short_scim_token_every_request_is_a_401() {
    refuses_everything(
        "with_a_short_scim_token_every_request_is_a_401",
        "guessable",
        "guessable",
        "SCIM_TOKEN is shorter than 24 characters",
    );
}

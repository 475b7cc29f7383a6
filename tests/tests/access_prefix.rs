//! The gateway's endpoints under another prefix (`ACCESS_PATH_PREFIX=/auth/edge`), end to end
//! under `wrangler dev`: the sign-in sends Entra the prefix's callback as `redirect_uri` (the
//! emulator's app registration lists only that one), health, the management API, the
//! identity and the keys answer there, and the default prefix `/cdn-cgi/access` is then an
//! ordinary path: decided by the policies and forwarded to the origin. A prefix that is not
//! valid fails every request closed, naming the variable.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::sync::OnceLock;
use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpClient;
use entra_emulator::fixtures::Fixtures;
use entra_emulator::urlencoded;
use serde_json::json;
use signin_common::{echoed, query, Agent};

const BINARY: &str = "access_prefix";
const PREFIX: &str = "/auth/edge";
const READ_TOKEN: &str = "admin-read-token-prefix-5e1c9a7b3d";
/// SHA-256 of [`READ_TOKEN`].
const READ_TOKEN_SHA256: &str = "6078261b92fef6796461ce242238a081411f1126b5c63b52f373c6da4f715adb";

fn stack(test: &str) -> Option<&'static Stack> {
    if !Stack::should_run(&format!("{BINARY}::{test}")).unwrap() {
        return None;
    }
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        let mut fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
        // Entra knows the new callback only: a sign-in naming the old one would be refused.
        fixtures.redirect_uris = vec![format!("http://127.0.0.1{PREFIX}/callback")];
        let mut document = signin_common::document(&fixtures);
        // Everything under `/cdn-cgi` on this host is an app like any other.
        document["apps"].as_array_mut().unwrap().push(json!({
            "id": "old-prefix", "name": "Under /cdn-cgi", "domain": "${WORKER_HOST}/cdn-cgi",
            "aud": "aud-old-prefix",
            "policies": [{ "name": "Staff", "decision": "allow",
                "include": [{ "email_domain": { "domain": "example.com" } }] }] }));
        let mut config = StackConfig::new(document)
            .named(BINARY)
            .with_var("ACCESS_PATH_PREFIX", PREFIX)
            .with_var("ADMIN_TOKENS", &format!("auditor:read:{READ_TOKEN_SHA256}"));
        config.fixtures = Some(fixtures);
        Stack::start(config).map_err(|e| e.to_string())
    });
    match stack {
        Ok(stack) => Some(stack),
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

/// Signs `user` in through the prefix for `path`; the browser then holds the session.
fn sign_in(agent: &mut Agent<'_>, path: &str, user: &str) {
    let url = agent.stack.url().to_owned();
    let protected = agent.navigate(path);
    assert_eq!(protected.status, 302, "{path}: {protected:?}");
    let login = protected.header("location").unwrap().to_owned();
    assert_eq!(
        login,
        format!(
            "{url}{PREFIX}/login?redirect_url={}",
            urlencoded::encode(path)
        ),
        "{protected:?}"
    );
    let authorize = agent.begin_login(&login);
    assert_eq!(
        query(&authorize, "redirect_uri").as_deref(),
        Some(format!("{url}{PREFIX}/callback").as_str()),
        "{authorize}"
    );
    let binding = agent.binding_cookie().unwrap();
    assert_eq!(binding.path, format!("{PREFIX}/"), "{}", binding.set_cookie);
    let callback = agent.stack.emulator().sign_in(&authorize, user).unwrap();
    assert!(
        callback.starts_with(&format!("{url}{PREFIX}/callback?")),
        "{callback}"
    );
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some(path), "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_some(), "{answer:?}");
}

#[test]
fn the_sign_in_and_every_endpoint_use_the_prefix() {
    let Some(stack) = stack("the_sign_in_and_every_endpoint_use_the_prefix") else {
        return;
    };
    let mut agent = Agent::new(stack);
    sign_in(&mut agent, "/staff/reports", "dora");
    let page = agent.navigate("/staff/reports");
    assert_eq!(echoed(&page)["path"], "/staff/reports");

    let identity = agent.api(&format!("{PREFIX}/get-identity"));
    assert_eq!(identity.status, 200, "{identity:?}");
    assert!(
        identity.json().unwrap()["email"].is_string(),
        "{identity:?}"
    );
    let certs = agent.api(&format!("{PREFIX}/certs"));
    assert_eq!(certs.status, 200, "{certs:?}");
    assert!(certs.json().unwrap()["keys"].is_array(), "{certs:?}");

    let http = HttpClient::new();
    let health = http
        .get(&format!("{}{PREFIX}/health", stack.url()))
        .unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(health.json().unwrap()["status"], "ok", "{health:?}");

    let api = format!("{}{PREFIX}/api/config", stack.url());
    let auth = format!("Bearer {READ_TOKEN}");
    let config = http
        .get_with(&api, &[("authorization", auth.as_str())])
        .unwrap();
    assert_eq!(config.status, 200, "{config:?}");
    assert_eq!(config.json().unwrap()["success"], true, "{config:?}");
    let anonymous = http.get(&api).unwrap();
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(anonymous.json().unwrap()["success"], false);

    // Signing out, at the prefix, ends the session.
    let out = agent.navigate(&format!("{PREFIX}/logout"));
    assert!(matches!(out.status, 200 | 302), "{out:?}");
    assert_eq!(agent.navigate("/staff/reports").status, 302);
}

#[test]
fn the_default_prefix_is_an_ordinary_protected_path() {
    let Some(stack) = stack("the_default_prefix_is_an_ordinary_protected_path") else {
        return;
    };
    let mut agent = Agent::new(stack);
    // Not the gateway's sign-in: the app under `/cdn-cgi` wants a session first.
    for path in [
        "/cdn-cgi/access/login?redirect_url=%2Fstaff%2Fx",
        "/cdn-cgi/access/health",
        "/cdn-cgi/access/certs",
        "/cdn-cgi/access/api/config",
    ] {
        let answer = agent.navigate(path);
        assert_eq!(answer.status, 302, "{path}: {answer:?}");
        let location = answer.header("location").unwrap();
        assert!(
            location.starts_with(&format!("{}{PREFIX}/login?redirect_url=", stack.url())),
            "{path}: {location}"
        );
    }
    let api = agent.api("/cdn-cgi/access/api/config");
    assert_eq!(api.status, 401, "{api:?}");
    assert!(
        !api.body.contains("\"success\""),
        "the management API answered: {api:?}"
    );

    // Signed in, the origin gets them, with the gateway's assertion like any protected path.
    sign_in(&mut agent, "/cdn-cgi/access/health", "dora");
    for path in [
        "/cdn-cgi/access/health",
        "/cdn-cgi/access/certs",
        "/cdn-cgi/access/logout",
    ] {
        let echo = echoed(&agent.navigate(path));
        assert_eq!(echo["path"], path, "{echo}");
        assert!(
            echo["headers"]["cf-access-jwt-assertion"].is_string(),
            "{path}: {echo}"
        );
    }
    // Still signed in: `/cdn-cgi/access/logout` was the origin's.
    assert_eq!(agent.navigate("/staff/x").status, 200);
}

#[test]
fn an_invalid_prefix_fails_closed_naming_the_variable() {
    if !Stack::should_run(&format!("{BINARY}::an_invalid_prefix_fails_closed")).unwrap() {
        return;
    }
    let fixtures = Fixtures::load_default().unwrap();
    let stack = Stack::start(
        StackConfig::new(signin_common::document(&fixtures))
            .named("access_prefix_invalid")
            .with_var("ACCESS_PATH_PREFIX", "/auth/../edge"),
    )
    .unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    let http = HttpClient::new();
    for path in ["/public/x", "/cdn-cgi/access/health", "/auth/edge/health"] {
        let answer = http.get(&format!("{}{path}", stack.url())).unwrap();
        assert_eq!(answer.status, 500, "{path}: {answer:?}");
        assert!(!answer.body.contains("\"headers\""), "{path}: {answer:?}");
    }
    let log = stack
        .wait_for_log(
            "ACCESS_PATH_PREFIX `/auth/../edge` must not contain `..`",
            Duration::from_secs(30),
        )
        .unwrap();
    assert!(log.contains("\"config_error\""));
}

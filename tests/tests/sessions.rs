//! Sessions under `wrangler dev`: each app's own session duration on a host whose apps share
//! one session cookie, and logout (this browser by `GET`, every session of the user only by a
//! same-origin `POST`).
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr
)]

mod signin_common;

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use edge_access_tests::stack::{Stack, StackConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use signin_common::{echoed, log_line, Agent, IDP, TEAM_DOMAIN};

const BINARY: &str = "sessions";

/// The strict apps' session duration. Long enough that a request right after signing in is
/// inside it on a loaded machine; the tests only ever wait until it has passed.
const STRICT_SECS: u64 = 8;

const CI_CLIENT_ID: &str = "e367826f93b8d71185e03fe518aff3b4.access";
const CI_SECRET: &str = "ci-secret-7d1e3a9c5b2f4e60";

/// Apps on the worker's host: `/lenient` (the default 24 h), `/strict` (the app's own short
/// session), `/policy-strict` (a 24 h app whose allowing policy has a short session), `/ci`
/// (service auth).
fn document() -> Value {
    let staff = json!({ "email_domain": { "domain": "example.com" } });
    let strict = format!("{STRICT_SECS}s");
    json!({
        "team_domain": TEAM_DOMAIN,
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}",
                        "support_groups": true, "pkce_enabled": true } }],
        "service_tokens": [{ "id": "ci", "name": "CI pipeline", "client_id": CI_CLIENT_ID,
            "client_secret_sha256": hex(&Sha256::digest(CI_SECRET.as_bytes())) }],
        "apps": [
            { "id": "lenient", "name": "Lenient", "domain": "${WORKER_HOST}/lenient", "aud": "aud-lenient",
              "policies": [{ "name": "Staff", "decision": "allow", "include": [staff] }] },
            { "id": "strict", "name": "Strict", "domain": "${WORKER_HOST}/strict", "aud": "aud-strict",
              "session_duration": strict,
              "policies": [{ "name": "Staff", "decision": "allow", "include": [staff] }] },
            { "id": "policy-strict", "name": "Strict policy", "domain": "${WORKER_HOST}/policy-strict",
              "aud": "aud-policy-strict",
              "policies": [{ "name": "Staff, briefly", "decision": "allow", "include": [staff],
                             "session_duration": strict }] },
            { "id": "ci", "name": "CI hooks", "domain": "${WORKER_HOST}/ci", "aud": "aud-ci",
              "policies": [{ "name": "CI token", "decision": "non_identity",
                             "include": [{ "service_token": { "token_id": "ci" } }] }] }
        ]
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The binary's stack, or `None` when the end-to-end tests are skipped here.
fn stack(test: &str) -> Option<&'static Stack> {
    if !Stack::should_run(&format!("{BINARY}::{test}")).unwrap() {
        return None;
    }
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        let stack =
            Stack::start(StackConfig::new(document()).named(BINARY)).map_err(|e| e.to_string())?;
        signin_common::warm_up_at(&stack, "/lenient/warm-up");
        Ok(stack)
    });
    match stack {
        Ok(stack) => Some(stack),
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

/// `cookie` is no session at `path`: a navigation is sent to sign in, an API call gets 401,
/// and the origin sees neither.
fn assert_signed_out(stack: &Stack, path: &str, cookie: &str, what: &str) {
    let mut agent = Agent::new(stack);
    agent.set_cookie("CF_Authorization", cookie);
    let navigation = agent.navigate(path);
    assert_eq!(
        navigation.status, 302,
        "{what} (navigation): {navigation:?}"
    );
    assert!(
        navigation
            .header("location")
            .unwrap()
            .contains("/cdn-cgi/access/login?redirect_url="),
        "{what}: {navigation:?}"
    );
    let api = agent.api(path);
    assert_eq!(api.status, 401, "{what} (API): {api:?}");
    assert!(!api.body.contains("\"headers\""), "{what}: {api:?}");
}

/// `cookie` is a session at `path`: the origin answers, told who the user is.
fn assert_signed_in(stack: &Stack, path: &str, cookie: &str, email: &str, what: &str) {
    let mut agent = Agent::new(stack);
    agent.set_cookie("CF_Authorization", cookie);
    let answer = agent.navigate(path);
    assert_eq!(answer.status, 200, "{what}: {answer:?}");
    assert_eq!(
        echoed(&answer)["headers"]["cf-access-authenticated-user-email"],
        email,
        "{what}"
    );
}

#[test]
fn each_app_enforces_its_own_session_duration_on_a_shared_cookie() {
    let Some(stack) = stack("each_app_enforces_its_own_session_duration") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let cookie = agent.signed_in("/lenient/home", "ada");
    let signed_in = Instant::now();
    // The cookie names every app on the host; fresh, it serves the strict ones too.
    let (_, claims) = signin_common::jwt_parts(&cookie);
    for aud in ["aud-lenient", "aud-strict", "aud-policy-strict"] {
        assert!(
            claims["aud"].as_array().unwrap().iter().any(|a| a == aud),
            "{claims}"
        );
    }
    assert_signed_in(stack, "/strict/page", &cookie, "ada@example.com", "fresh");

    // Once the strict duration has passed since ada signed in, the strict apps (the app's own
    // duration, and a policy's) ask for a new sign-in; the lenient app still serves her.
    let wait = Duration::from_secs(STRICT_SECS + 1).saturating_sub(signed_in.elapsed());
    std::thread::sleep(wait);
    assert_signed_out(stack, "/strict/page", &cookie, "the strict app");
    assert_signed_out(stack, "/policy-strict/page", &cookie, "the strict policy");
    let line = log_line(stack, "older than the session duration");
    assert!(line.contains("\"app\":\"strict\""), "{line}");
    assert_signed_in(
        stack,
        "/lenient/home",
        &cookie,
        "ada@example.com",
        "lenient",
    );

    // Signing in again at the strict app gives a session it takes.
    let fresh = agent.signed_in("/strict/page", "ada");
    assert_ne!(fresh, cookie);
    assert_signed_in(
        stack,
        "/strict/page",
        &fresh,
        "ada@example.com",
        "new sign-in",
    );
}

/// `POST /cdn-cgi/access/logout` from `agent` with `headers`.
fn post_logout(
    agent: &mut Agent<'_>,
    headers: &[(&str, &str)],
) -> edge_access_tests::client::HttpResponse {
    agent.request("POST", "/cdn-cgi/access/logout", headers)
}

#[test]
fn logout_by_get_ends_this_browsers_session_only() {
    let Some(stack) = stack("logout_by_get_ends_this_browsers_session_only") else {
        return;
    };
    let mut laptop = Agent::new(stack);
    let mut phone = Agent::new(stack);
    let laptop_cookie = laptop.signed_in("/lenient/a", "grace");
    let phone_cookie = phone.signed_in("/lenient/b", "grace");

    // A link or an <img> on a page: a plain GET.
    let out = laptop.request("GET", "/cdn-cgi/access/logout", &[("accept", "image/*")]);
    assert_eq!(out.status, 200, "{out:?}");
    assert!(
        out.header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("CF_Authorization=;") && c.contains("Max-Age=0")),
        "{out:?}"
    );
    assert_signed_out(
        stack,
        "/lenient/a",
        &laptop_cookie,
        "the browser that logged out",
    );
    assert_signed_in(
        stack,
        "/lenient/b",
        &phone_cookie,
        "grace@example.com",
        "grace's other browser after a GET logout",
    );
}

#[test]
fn logout_everywhere_is_a_same_origin_post() {
    let Some(stack) = stack("logout_everywhere_is_a_same_origin_post") else {
        return;
    };
    let mut laptop = Agent::new(stack);
    let mut phone = Agent::new(stack);
    let mut other = Agent::new(stack);
    let laptop_cookie = laptop.signed_in("/lenient/a", "bob");
    let phone_cookie = phone.signed_in("/lenient/b", "bob");
    let other_cookie = other.signed_in("/lenient/c", "dora");

    // Cross-origin (a form on another site, or no proof of origin at all): refused by the
    // gateway (its own page), nothing revoked, the cookie kept. (`wrangler dev` itself answers
    // a foreign host name in `Origin`, such as `https://evil.example`, with "Invalid Origin
    // header" before the worker sees it; loopback origins that differ from the gateway's in
    // port, scheme or host name do reach the worker.)
    let own_origin = stack.url().to_owned();
    let port = stack.addr().port();
    let other_scheme = format!("https://127.0.0.1:{port}");
    let other_host = format!("http://localhost:{port}");
    let refused: [(&str, Vec<(&str, &str)>); 5] = [
        ("another port", vec![("origin", "http://127.0.0.1:1")]),
        ("another scheme", vec![("origin", &other_scheme)]),
        ("another host name", vec![("origin", &other_host)]),
        (
            "no Origin, cross-site fetch metadata",
            vec![("sec-fetch-site", "cross-site")],
        ),
        ("no Origin and no fetch metadata", vec![]),
    ];
    for (what, headers) in &refused {
        let answer = post_logout(&mut phone, headers);
        assert_eq!(answer.status, 403, "{what}: {answer:?}");
        assert!(answer.body.contains("Access denied"), "{what}: {answer:?}");
        assert!(
            answer
                .header_all("set-cookie")
                .iter()
                .all(|c| !c.starts_with("CF_Authorization=")),
            "{what}: {answer:?}"
        );
        assert_signed_in(stack, "/lenient/a", &laptop_cookie, "bob@example.com", what);
        assert_signed_in(stack, "/lenient/b", &phone_cookie, "bob@example.com", what);
    }
    log_line(stack, "logout everywhere refused");

    // From the gateway's own origin: every session of the user ends; others keep theirs.
    let out = post_logout(&mut phone, &[("origin", &own_origin)]);
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.body.contains("Signed out"), "{out:?}");
    assert!(phone.cookie("CF_Authorization").is_none());
    assert_signed_out(stack, "/lenient/b", &phone_cookie, "the browser that asked");
    assert_signed_out(stack, "/lenient/a", &laptop_cookie, "bob's other browser");
    assert_signed_in(
        stack,
        "/lenient/c",
        &other_cookie,
        "dora@example.com",
        "another user",
    );
    let line = log_line(stack, "\"scope\":\"everywhere\"");
    assert!(line.contains("\"event\":\"logout\""), "{line}");
}

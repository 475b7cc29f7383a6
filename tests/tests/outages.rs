//! Outages of what the gateway depends on, under `wrangler dev`: Entra ID unreachable (the
//! worker's `ENTRA_AUTHORITY` is a port nobody listens on) and D1 failing (the stack's
//! `sessions` table is dropped after the migrations). Each one is answered closed, with 502 or
//! 503 and `Retry-After`, never with the origin's answer, and the log names the dependency.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::net::TcpListener;
use std::sync::OnceLock;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpResponse;
use entra_emulator::fixtures::Fixtures;
use entra_emulator::TokenRequest;
use serde_json::{json, Value};
use signin_common::{jwt_parts, log_line, now_secs, query, sign_rs256, Agent, TEAM_DOMAIN};

const BINARY: &str = "outages";

fn stack(test: &str) -> Option<&'static Stack> {
    if !Stack::should_run(&format!("{BINARY}::{test}")).unwrap() {
        return None;
    }
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
        // A port that was free a moment ago and that nothing listens on.
        let unreachable = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?;
        Stack::start(
            StackConfig::new(signin_common::document(&fixtures))
                .named(BINARY)
                .with_var("ENTRA_AUTHORITY", &format!("http://{unreachable}"))
                .with_d1_setup("DROP TABLE sessions"),
        )
        .map_err(|e| e.to_string())
    });
    match stack {
        Ok(stack) => Some(stack),
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

/// A closed answer to an outage: `status`, `Retry-After`, the gateway's own page.
fn assert_unavailable(answer: &HttpResponse, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: {answer:?}");
    let retry = answer
        .header("retry-after")
        .unwrap_or_else(|| panic!("{what}: no Retry-After: {answer:?}"));
    assert!(
        retry.parse::<u32>().is_ok_and(|s| s > 0),
        "{what}: Retry-After {retry:?}"
    );
    assert!(!answer.body.contains("\"headers\""), "{what}: {answer:?}");
    assert!(
        answer
            .header("set-cookie")
            .is_none_or(|c| !c.starts_with("CF_Authorization=e")),
        "{what}: a session was issued: {answer:?}"
    );
}

#[test]
fn entra_unreachable_at_the_callback_is_502_not_a_failed_sign_in() {
    let Some(stack) = stack("entra_unreachable_at_the_callback") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let login = agent.navigate("/staff/outage");
    assert_eq!(login.status, 302, "{login:?}");
    let answer = agent.navigate(login.header("location").unwrap());
    assert_eq!(answer.status, 302, "{answer:?}");
    // The gateway sends the browser to its (unreachable) authority; the user signs in at the
    // emulator with the same request, which comes back with a code.
    let authorize = answer.header("location").unwrap().to_owned();
    let (_, rest) = authorize.split_once("/oauth2/").unwrap();
    let (base, _) = stack
        .emulator()
        .authorize_endpoint()
        .split_once("/oauth2/")
        .map(|(b, r)| (b.to_owned(), r.to_owned()))
        .unwrap();
    let at_emulator = format!("{base}/oauth2/{rest}");
    let callback = agent.choose_user(&at_emulator, "ada");
    assert!(query(&callback, "code").is_some());

    // The code cannot be redeemed: the identity provider is down, not the sign-in refused.
    let answer = agent.navigate(&callback);
    assert_unavailable(&answer, 502, "token endpoint unreachable");
    assert!(
        !answer.body.contains("Sign-in could not finish"),
        "{answer:?}"
    );
    assert!(agent.cookie("CF_Authorization").is_none());
    let line = log_line(stack, "identity provider unavailable");
    assert!(line.contains("token endpoint"), "{line}");

    // Bearer tokens cannot be checked without the identity provider's keys: 503.
    let token = stack.emulator().mint(&TokenRequest::v2("ada")).unwrap();
    let answer = agent.request(
        "GET",
        "/staff/api",
        &[("authorization", &format!("Bearer {token}"))],
    );
    assert_unavailable(&answer, 503, "keys unavailable");
}

/// A session cookie for ada signed with the gateway's own key (its session row cannot be read:
/// the table is gone).
fn cookie(stack: &Stack) -> String {
    let mut agent = Agent::new(stack);
    let certs: Value = agent.api("/cdn-cgi/access/certs").json().unwrap();
    let kid = certs["keys"][0]["kid"].as_str().unwrap().to_owned();
    let now = now_secs();
    let token = sign_rs256(
        stack.session_signing_jwk().unwrap(),
        &json!({ "alg": "RS256", "kid": kid, "typ": "JWT" }),
        &json!({ "aud": ["aud-staff"], "email": "ada@example.com", "sub": "ada-oid",
                 "iss": TEAM_DOMAIN, "type": "app", "identity_nonce": "n0nce-of-a-lost-session",
                 "iat": now, "nbf": now, "exp": now + 600 }),
    );
    assert_eq!(jwt_parts(&token).1["type"], "app");
    token
}

#[test]
fn d1_failing_is_503_on_every_path_that_needs_it() {
    let Some(stack) = stack("d1_failing_is_503") else {
        return;
    };
    let mut agent = Agent::new(stack);
    agent.set_cookie("CF_Authorization", &cookie(stack));
    let navigation = agent.navigate("/staff/page");
    assert_unavailable(&navigation, 503, "a page with a session cookie");
    let api = agent.api("/staff/api");
    assert_unavailable(&api, 503, "an API call with a session cookie");
    let identity = agent.api("/cdn-cgi/access/get-identity");
    assert_unavailable(&identity, 503, "get-identity");
    let out = agent.navigate("/cdn-cgi/access/logout");
    assert_unavailable(&out, 503, "logout");
    assert!(!out.body.contains("Signed out"), "{out:?}");
    let line = log_line(stack, "storage unavailable");
    assert!(line.contains("D1"), "{line}");

    // Without a cookie nothing needs D1: a page still asks for sign-in, the bypass app works.
    let mut anonymous = Agent::new(stack);
    assert_eq!(anonymous.navigate("/staff/page").status, 302);
    assert_eq!(anonymous.navigate("/public/logo.svg").status, 200);
}

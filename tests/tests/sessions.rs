//! Sessions under `wrangler dev`: each app's own session duration on a host whose apps share
//! one session cookie, the `Cf-Access-Jwt-Assertion` every allowed request carries (session
//! cookies, Entra bearer tokens, service tokens) verified as an origin would, and logout (this
//! browser by `GET`, every session of the user only by a same-origin `POST`).
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
use std::time::{Duration, Instant};

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::TokenRequest;
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
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

/// The gateway's keys, as an origin fetches them.
fn certs(stack: &Stack) -> JwkSet {
    let mut agent = Agent::new(stack);
    let certs = agent.api("/cdn-cgi/access/certs");
    assert_eq!(certs.status, 200, "{certs:?}");
    serde_json::from_str(&certs.body).unwrap()
}

/// Verifies `assertion` as an origin does: the key by `kid` from the certs endpoint, RS256,
/// the team domain, `audience`. Returns the claims.
fn verify_assertion(stack: &Stack, assertion: &str, audience: &str) -> Value {
    let header = jsonwebtoken::decode_header(assertion).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.unwrap();
    let jwks = certs(stack);
    let key = DecodingKey::from_jwk(jwks.find(&kid).unwrap()).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[audience]);
    validation.set_issuer(&[TEAM_DOMAIN]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let claims = jsonwebtoken::decode::<Value>(assertion, &key, &validation)
        .unwrap_or_else(|e| panic!("the assertion does not verify for {audience}: {e}"))
        .claims;
    // For this app only: another app's audience is refused.
    let mut other = validation.clone();
    other.set_audience(&["aud-of-another-app"]);
    assert!(jsonwebtoken::decode::<Value>(assertion, &key, &other).is_err());
    assert_eq!(claims["type"], "app", "{claims}");
    assert!(claims["iat"].as_i64().unwrap() <= claims["exp"].as_i64().unwrap());
    assert_eq!(claims["nbf"], claims["iat"], "{claims}");
    claims
}

/// The assertion the origin received.
fn forwarded_assertion(echo: &Value) -> String {
    echo["headers"]["cf-access-jwt-assertion"]
        .as_str()
        .unwrap_or_else(|| panic!("no Cf-Access-Jwt-Assertion reached the origin: {echo}"))
        .to_owned()
}

#[test]
fn every_allowed_request_reaches_the_origin_with_a_verifiable_assertion() {
    let Some(stack) = stack("every_allowed_request_has_an_assertion") else {
        return;
    };
    let ada = stack.emulator().fixtures().user("ada").unwrap().oid.clone();
    let mut agent = Agent::new(stack);

    // A session cookie: its application token.
    let cookie = agent.signed_in("/lenient/cookie", "ada");
    let echo = echoed(&agent.navigate("/lenient/cookie"));
    let assertion = forwarded_assertion(&echo);
    let claims = verify_assertion(stack, &assertion, "aud-lenient");
    assert_eq!(assertion, cookie);
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["sub"], ada.as_str());

    // An Entra bearer token: a user token like Access's, for this app.
    let bearer = stack.emulator().mint(&TokenRequest::v2("ada")).unwrap();
    let api = Agent::new(stack);
    let send_bearer = |forged: &str| {
        api.http
            .get_with(
                &format!("{}/lenient/api/orders", stack.url()),
                &[
                    ("authorization", &format!("Bearer {bearer}")),
                    ("cf-access-jwt-assertion", forged),
                ],
            )
            .unwrap()
    };
    let echo = echoed(&send_bearer("forged.by.client"));
    let assertion = forwarded_assertion(&echo);
    assert_ne!(assertion, "forged.by.client");
    let claims = verify_assertion(stack, &assertion, "aud-lenient");
    assert_eq!(claims["aud"], json!(["aud-lenient"]), "{claims}");
    assert_eq!(claims["email"], "ada@example.com", "{claims}");
    assert_eq!(claims["sub"], ada.as_str(), "{claims}");
    assert!(claims.get("common_name").is_none(), "{claims}");
    assert!(claims["identity_nonce"].is_string(), "{claims}");
    // A second request is served the same way (the gateway may reuse a recent assertion).
    let again = forwarded_assertion(&echoed(&send_bearer("")));
    verify_assertion(stack, &again, "aud-lenient");

    // A service token: `common_name` is the client id, `sub` empty, no user.
    let ci = api
        .http
        .get_with(
            &format!("{}/ci/hook", stack.url()),
            &[
                ("cf-access-client-id", CI_CLIENT_ID),
                ("cf-access-client-secret", CI_SECRET),
            ],
        )
        .unwrap();
    let echo = echoed(&ci);
    let assertion = forwarded_assertion(&echo);
    let claims = verify_assertion(stack, &assertion, "aud-ci");
    assert_eq!(claims["aud"], json!(["aud-ci"]), "{claims}");
    assert_eq!(claims["common_name"], CI_CLIENT_ID, "{claims}");
    assert_eq!(claims["sub"], "", "{claims}");
    assert!(claims.get("email").is_none(), "{claims}");
    assert!(
        echo["headers"]
            .get("cf-access-authenticated-user-email")
            .is_none(),
        "{echo}"
    );

    // Neither assertion is a session: an origin that leaks one leaks no sign-in.
    let bearer_assertion = forwarded_assertion(&echoed(&send_bearer("")));
    assert_signed_out(
        stack,
        "/lenient/api/orders",
        &bearer_assertion,
        "a bearer request's assertion as a cookie",
    );
    assert_signed_out(
        stack,
        "/lenient/api/orders",
        &assertion,
        "a service token's assertion as a cookie",
    );
}

/// `POST /cdn-cgi/access/logout` from `agent` with `headers`.
fn post_logout(
    agent: &mut Agent<'_>,
    headers: &[(&str, &str)],
) -> entra_emulator::client::HttpResponse {
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

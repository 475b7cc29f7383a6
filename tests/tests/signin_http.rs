//! The browser sign-in at the HTTP level, under `wrangler dev`: the whole round trip with
//! cookies carried by hand, the application token verified by an origin with a standard JWT
//! library (`jsonwebtoken`) against `/cdn-cgi/access/certs`, and every way a sign-in or a
//! session must be refused: tampered, foreign and replayed `state`, a replayed code, a wrong
//! PKCE verifier, a wrong nonce, expired and revoked sessions, cookies signed by another key,
//! open-redirect attempts, and XHR/API requests (401, never a redirect).
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::time::{Duration, Instant};

use edge_access_tests::stack::Stack;
use entra_emulator::{pkce_challenge, Fault};
use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use signin_common::{
    echoed, foreign_jwk, jwt_parts, log_line, now_secs, query, resign, with_query, Agent,
    BRIEF_SESSION_SECS, TEAM_DOMAIN,
};

const BINARY: &str = "signin_http";

/// The shared stack, or `None` when the end-to-end tests are skipped here.
fn stack(test: &str) -> Option<&'static Stack> {
    if !Stack::should_run(&format!("{BINARY}::{test}")).unwrap() {
        return None;
    }
    Some(signin_common::stack(BINARY))
}

/// A refusal that is not the origin's answer.
fn assert_not_origin(response: &entra_emulator::client::HttpResponse, what: &str) {
    assert!(
        !response.body.contains("\"headers\""),
        "{what}: the origin answered: {response:?}"
    );
}

/// A request with `cookie` as the session is treated as having no session: a navigation is
/// sent to sign in, an API call gets 401.
fn assert_no_session(stack: &Stack, path: &str, cookie: &str, what: &str) {
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
    assert_not_origin(&api, what);
    let identity = agent.api("/cdn-cgi/access/get-identity");
    assert_eq!(identity.status, 401, "{what} (get-identity): {identity:?}");
}

#[test]
fn sign_in_round_trip_and_an_origin_verifies_the_assertion_with_jsonwebtoken() {
    let Some(stack) = stack("sign_in_round_trip") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let path = "/staff/reports?q=1";
    let authorize = agent.begin_sign_in(path);
    // The authorize request: code flow, state, nonce, PKCE S256, back to this host.
    assert_eq!(query(&authorize, "response_type").as_deref(), Some("code"));
    assert_eq!(
        query(&authorize, "client_id").as_deref(),
        Some(stack.emulator().client_id())
    );
    assert_eq!(
        query(&authorize, "redirect_uri").unwrap(),
        format!("{}/cdn-cgi/access/callback", stack.url())
    );
    assert_eq!(
        query(&authorize, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(query(&authorize, "code_challenge").unwrap().len(), 43);
    assert!(query(&authorize, "state").unwrap().len() >= 32);
    assert!(query(&authorize, "nonce").unwrap().len() >= 32);
    let binding = agent
        .jar
        .iter()
        .find(|c| c.name.starts_with("EA_Login_"))
        .unwrap()
        .set_cookie
        .clone();
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/cdn-cgi/access/",
    ] {
        assert!(
            binding.contains(attribute),
            "EA_Login lacks {attribute}: {binding}"
        );
    }

    let started = Instant::now();
    let callback = agent.choose_user(&authorize, "ada");
    let answer = agent.navigate(&callback);
    let took = started.elapsed();
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some(path));
    let set_cookies = answer.header_all("set-cookie");
    let session = set_cookies
        .iter()
        .find(|c| c.starts_with("CF_Authorization="))
        .unwrap_or_else(|| panic!("no session cookie: {answer:?}"));
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(
            session.contains(attribute),
            "CF_Authorization lacks {attribute}: {session}"
        );
    }
    assert!(
        set_cookies
            .iter()
            .any(|c| c.starts_with("EA_Login_") && c.contains("=;") && c.contains("Max-Age=0")),
        "the binding cookie is not cleared: {set_cookies:?}"
    );
    assert!(agent.binding_cookie().is_none());
    eprintln!("callback (code exchange, ID token, decision, session) took {took:?}");

    // The origin gets the request with the user's identity and the application token, not
    // what the client claims.
    let cookie = agent.cookie("CF_Authorization").unwrap();
    let echo = echoed(&agent.request(
        "GET",
        path,
        &[
            ("accept", "text/html"),
            ("cf-access-authenticated-user-email", "admin@example.com"),
            ("cf-access-jwt-assertion", "forged.by.client"),
        ],
    ));
    assert_eq!(echo["path"], path);
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    let assertion = echo["headers"]["cf-access-jwt-assertion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(assertion, cookie);
    assert!(
        !echo["headers"]["cookie"]
            .as_str()
            .unwrap_or_default()
            .contains("EA_Login"),
        "{echo}"
    );

    // An origin verifies the assertion with a standard JWT library against the certs
    // endpoint: the kid picks the key, RS256, the app's audience, the team domain.
    let certs = agent.api("/cdn-cgi/access/certs");
    assert_eq!(certs.status, 200, "{certs:?}");
    let jwks: JwkSet = serde_json::from_str(&certs.body).unwrap();
    let header = jsonwebtoken::decode_header(&assertion).unwrap();
    assert_eq!(header.alg, Algorithm::RS256);
    let kid = header.kid.unwrap();
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in {}", certs.body));
    let key = DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&["aud-staff"]);
    validation.set_issuer(&[TEAM_DOMAIN]);
    validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    let verified = jsonwebtoken::decode::<Value>(&assertion, &key, &validation).unwrap();
    let claims = verified.claims;
    assert_eq!(claims["email"], "ada@example.com");
    assert_eq!(claims["type"], "app");
    assert_eq!(
        claims["sub"],
        stack.emulator().fixtures().user("ada").unwrap().oid
    );
    assert!(claims["identity_nonce"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    // The same library refuses it for another app's audience, and refuses a forged one.
    let mut other_app = validation.clone();
    other_app.set_audience(&["aud-on-another-host"]);
    assert!(jsonwebtoken::decode::<Value>(&assertion, &key, &other_app).is_err());
    let forged = resign(&assertion, &foreign_jwk(), &kid, |_| {});
    assert!(jsonwebtoken::decode::<Value>(&forged, &key, &validation).is_err());

    // Another app on the same host takes the same session, decided by its own policies.
    assert_eq!(agent.api("/eng/build").status, 200);

    // get-identity: the stored identity, groups included.
    let identity = agent.api("/cdn-cgi/access/get-identity");
    assert_eq!(identity.status, 200, "{identity:?}");
    let identity: Value = identity.json().unwrap();
    assert_eq!(identity["email"], "ada@example.com");
    let engineering = stack.emulator().fixtures().group_id("Engineering").unwrap();
    assert!(
        identity["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["id"].as_str() == Some(engineering)),
        "{identity}"
    );
    let line = log_line(stack, "\"event\":\"sign_in\"");
    assert!(line.contains("\"outcome\":\"allow\""), "{line}");
}

#[test]
fn get_identity_answers_in_access_s_shape_with_groups_named_by_scim() {
    let Some(stack) = stack("get_identity_answers_in_access_s_shape_with_groups_named_by_scim")
    else {
        return;
    };
    // SCIM names one of grace's groups (SRE, by its object id as externalId).
    let sre = stack.emulator().fixtures().group_id("SRE").unwrap();
    signin_common::scim_group(stack, "Site reliability (SCIM)", sre);

    // Without a session: 401.
    let mut anonymous = Agent::new(stack);
    let refused = anonymous.api("/cdn-cgi/access/get-identity");
    assert_eq!(refused.status, 401, "{refused:?}");
    assert!(!refused.body.contains("\"email\""), "{refused:?}");

    let mut agent = Agent::new(stack);
    agent.signed_in("/staff/identity", "grace");
    let answer = agent.api("/cdn-cgi/access/get-identity");
    assert_eq!(answer.status, 200, "{answer:?}");
    let identity: Value = answer.json().unwrap();
    assert_eq!(identity["email"], "grace@example.com");
    assert_eq!(identity["idp"]["type"], "azureAD");
    assert_eq!(identity["idp"]["id"], signin_common::IDP);
    assert_eq!(identity["id"], identity["user_uuid"]);
    assert!(identity["user_uuid"].is_string(), "{identity}");
    assert!(
        identity["iat"].as_u64().unwrap() <= now_secs().unsigned_abs(),
        "{identity}"
    );
    for (field, value) in [
        ("auth_status", json!("NONE")),
        ("service_token_status", json!(false)),
        ("is_warp", json!(false)),
        ("is_gateway", json!(false)),
        ("devicePosture", json!({})),
    ] {
        assert_eq!(identity[field], value, "{field}: {identity}");
    }
    for field in [
        "geo",
        "amr",
        "ip",
        "common_name",
        "service_token_id",
        "account_id",
        "gateway_account_id",
        "device_id",
        "device_sessions",
        "version",
        "name",
    ] {
        assert!(identity.get(field).is_some(), "{field}: {identity}");
    }
    let groups = identity["groups"].as_array().unwrap();
    let named = groups
        .iter()
        .find(|g| g["id"] == sre)
        .unwrap_or_else(|| panic!("{identity}"));
    assert_eq!(named["name"], "Site reliability (SCIM)", "{identity}");
    assert!(groups.iter().all(|g| g["id"].is_string()), "{identity}");
}

#[test]
fn tampered_state_is_refused() {
    let Some(stack) = stack("tampered_state_is_refused") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let authorize = agent.begin_sign_in("/staff/tampered");
    let callback = agent.choose_user(&authorize, "ada");
    let state = query(&callback, "state").unwrap();
    let origin_requests = stack.origin().requests();

    // Another value, a truncated one, and none at all.
    let mut flipped = state.clone().into_bytes();
    flipped[0] = if flipped[0] == b'A' { b'B' } else { b'A' };
    for (what, tampered) in [
        (
            "flipped",
            with_query(&callback, "state", &String::from_utf8(flipped).unwrap()),
        ),
        (
            "truncated",
            with_query(&callback, "state", &state[..state.len() - 4]),
        ),
        ("empty", with_query(&callback, "state", "")),
        (
            "absent",
            callback.split("&state=").next().unwrap().to_owned(),
        ),
    ] {
        let answer = agent.navigate(&tampered);
        assert_eq!(answer.status, 403, "{what} state: {answer:?}");
        assert!(answer
            .header_all("set-cookie")
            .iter()
            .all(|c| !c.starts_with("CF_Authorization=")));
        assert!(
            answer.body.contains("Sign-in could not finish"),
            "{what}: {answer:?}"
        );
    }
    log_line(stack, "unknown or already used state");
    assert!(agent.cookie("CF_Authorization").is_none());
    // (Every answer above came from the gateway itself; other tests share the stack's origin,
    // so its request count is not compared here.)
    let _ = origin_requests;

    // The untouched state still finishes this browser's sign-in.
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 302, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_some());
}

#[test]
fn state_from_another_browser_is_refused() {
    let Some(stack) = stack("state_from_another_browser_is_refused") else {
        return;
    };
    let mut victim = Agent::new(stack);
    let authorize = victim.begin_sign_in("/staff/victim");
    let callback = victim.choose_user(&authorize, "ada");
    // An attacker's browser presents the victim's callback: no EA_Login, or its own.
    let mut attacker = Agent::new(stack);
    attacker.begin_sign_in("/staff/attacker");
    let answer = attacker.navigate(&callback);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(attacker.cookie("CF_Authorization").is_none());
    log_line(stack, "the state belongs to another browser");
    // The state was used up by that attempt: the victim signs in again rather than finish.
    let answer = victim.navigate(&callback);
    assert_eq!(answer.status, 403, "{answer:?}");
    victim.signed_in("/staff/victim", "ada");
}

#[test]
fn replayed_state_and_code_are_refused() {
    let Some(stack) = stack("replayed_state_and_code_are_refused") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let authorize = agent.begin_sign_in("/staff/replay");
    let binding = agent.binding_cookie().unwrap();
    let callback = agent.choose_user(&authorize, "ada");
    let first = agent.navigate(&callback);
    assert_eq!(first.status, 302, "{first:?}");

    // The same callback again, with the binding cookie put back: the state was single use.
    let mut replay = Agent::new(stack);
    replay.jar = agent.jar.clone();
    replay.jar.retain(|c| c.name != "CF_Authorization");
    replay.jar.push(binding);
    let answer = replay.navigate(&callback);
    assert_eq!(answer.status, 403, "replayed state: {answer:?}");
    assert!(replay.cookie("CF_Authorization").is_none());

    // The used code with a fresh state of another sign-in: the identity provider refuses to
    // redeem a code twice.
    let mut thief = Agent::new(stack);
    let fresh = thief.begin_sign_in("/staff/replay");
    let code = query(&callback, "code").unwrap();
    let state = query(&fresh, "state").unwrap();
    let spliced = format!(
        "{}/cdn-cgi/access/callback?code={}&state={}",
        stack.url(),
        entra_emulator::urlencoded::encode(&code),
        entra_emulator::urlencoded::encode(&state)
    );
    let answer = thief.navigate(&spliced);
    assert_eq!(answer.status, 403, "replayed code: {answer:?}");
    assert!(thief.cookie("CF_Authorization").is_none());
    log_line(stack, "token endpoint: HTTP 400 invalid_grant");
}

#[test]
fn wrong_pkce_verifier_is_refused() {
    let Some(stack) = stack("wrong_pkce_verifier_is_refused") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let authorize = agent.begin_sign_in("/staff/pkce");
    // The code is issued for another verifier's challenge (an injected code): the gateway's
    // own verifier does not match it at the token endpoint.
    let other = pkce_challenge("an-attackers-own-verifier-0123456789-abcdefghijkl");
    let injected = with_query(&authorize, "code_challenge", &other);
    let callback = agent.choose_user(&injected, "ada");
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_none());
    log_line(stack, "token endpoint: HTTP 400 invalid_grant");
}

#[test]
fn wrong_nonce_is_refused() {
    let Some(stack) = stack("wrong_nonce_is_refused") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let authorize = agent.begin_sign_in("/staff/nonce");
    let injected = with_query(&authorize, "nonce", "a-nonce-the-gateway-never-sent");
    let callback = agent.choose_user(&injected, "ada");
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_none());
    let line = log_line(stack, "ID token:");
    assert!(line.to_lowercase().contains("nonce"), "{line}");
}

#[test]
fn expired_session_is_refused() {
    let Some(stack) = stack("expired_session_is_refused") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let answer = agent.sign_in("/brief/page", "ada");
    assert_eq!(answer.status, 302, "{answer:?}");
    let set_cookie = answer
        .header_all("set-cookie")
        .into_iter()
        .find(|c| c.starts_with("CF_Authorization="))
        .unwrap()
        .to_owned();
    assert!(
        set_cookie.contains(&format!("Max-Age={BRIEF_SESSION_SECS}")),
        "{set_cookie}"
    );
    let cookie = agent.cookie("CF_Authorization").unwrap();
    let (_, claims) = jwt_parts(&cookie);
    let exp = claims["exp"].as_i64().unwrap();
    assert!(exp - now_secs() <= i64::try_from(BRIEF_SESSION_SECS).unwrap());
    echoed(&agent.navigate("/brief/page"));

    // Past its end, a browser would have dropped the cookie; one that kept it gets nowhere.
    let wait = u64::try_from(exp - now_secs() + 1).unwrap_or(0);
    std::thread::sleep(Duration::from_secs(wait));
    assert_no_session(stack, "/brief/page", &cookie, "expired token");
    log_line(stack, "token has expired");

    // Signed with the gateway's own key (as if it leaked) and given a new `exp`, the session
    // is still over: the server side expired too.
    let jwk = stack.session_signing_jwk().unwrap();
    let kid = jwt_parts(&cookie).0["kid"].as_str().unwrap().to_owned();
    let extended = resign(&cookie, jwk, &kid, |claims| {
        claims["exp"] = json!(now_secs() + 3600);
    });
    assert_no_session(
        stack,
        "/brief/page",
        &extended,
        "expired session, extended token",
    );
    log_line(stack, "revoked or expired session");
}

#[test]
fn revoked_session_is_refused() {
    let Some(stack) = stack("revoked_session_is_refused") else {
        return;
    };
    // grace signs in from two browsers.
    let mut laptop = Agent::new(stack);
    let mut phone = Agent::new(stack);
    let laptop_cookie = laptop.signed_in("/staff/a", "grace");
    let phone_cookie = phone.signed_in("/staff/b", "grace");
    echoed(&laptop.navigate("/staff/a"));
    echoed(&phone.navigate("/staff/b"));
    // Another user's session is not touched by grace's logout.
    let mut other = Agent::new(stack);
    other.signed_in("/staff/c", "dora");

    // Logout everywhere: a POST from the gateway's own origin (a plain GET ends only this
    // browser's session: `sessions::logout_by_get_ends_this_browsers_session_only`).
    let own_origin = stack.url().to_owned();
    let out = laptop.request(
        "POST",
        "/cdn-cgi/access/logout",
        &[("origin", &own_origin), ("accept", "text/html")],
    );
    assert_eq!(out.status, 200, "{out:?}");
    assert!(out.body.contains("Signed out"), "{out:?}");
    assert!(
        out.header_all("set-cookie")
            .iter()
            .any(|c| c.starts_with("CF_Authorization=;") && c.contains("Max-Age=0")),
        "{out:?}"
    );
    assert!(laptop.cookie("CF_Authorization").is_none());
    log_line(stack, "\"event\":\"logout\"");

    // The cookie kept after logout, and grace's other browser: both revoked.
    assert_no_session(
        stack,
        "/staff/a",
        &laptop_cookie,
        "cookie kept after logout",
    );
    assert_no_session(stack, "/staff/b", &phone_cookie, "grace's other session");
    // Re-signed with the gateway's key and a new `exp`: still revoked server-side.
    let jwk = stack.session_signing_jwk().unwrap();
    let kid = jwt_parts(&laptop_cookie).0["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    let extended = resign(&laptop_cookie, jwk, &kid, |claims| {
        claims["exp"] = json!(now_secs() + 3600);
    });
    assert_no_session(
        stack,
        "/staff/a",
        &extended,
        "revoked session, extended token",
    );
    echoed(&other.navigate("/staff/c"));

    // A new sign-in makes a new session.
    laptop.signed_in("/staff/a", "grace");
    echoed(&laptop.navigate("/staff/a"));
}

#[test]
fn cookie_signed_by_another_key_is_refused() {
    let Some(stack) = stack("cookie_signed_by_another_key_is_refused") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let cookie = agent.signed_in("/staff/keys", "ada");
    echoed(&agent.navigate("/staff/keys"));
    let (header, _) = jwt_parts(&cookie);
    let gateway_kid = header["kid"].as_str().unwrap().to_owned();
    let foreign = foreign_jwk();
    let foreign_kid = foreign["kid"].as_str().unwrap().to_owned();
    let origin_requests = stack.origin().requests();

    let forgeries = [
        (
            "the same claims, another key and its kid",
            resign(&cookie, &foreign, &foreign_kid, |_| {}),
        ),
        (
            "the same claims, another key under the gateway's kid",
            resign(&cookie, &foreign, &gateway_kid, |_| {}),
        ),
        (
            "another user's email, another key under the gateway's kid",
            resign(&cookie, &foreign, &gateway_kid, |claims| {
                claims["email"] = json!("admin@example.com");
            }),
        ),
        ("the payload changed, the signature kept", {
            let parts: Vec<&str> = cookie.split('.').collect();
            let (_, mut claims) = jwt_parts(&cookie);
            claims["email"] = json!("admin@example.com");
            format!(
                "{}.{}.{}",
                parts[0],
                base64_url(&claims.to_string()),
                parts[2]
            )
        }),
        ("alg none", {
            let (_, claims) = jwt_parts(&cookie);
            format!(
                "{}.{}.",
                base64_url(&json!({ "alg": "none", "kid": gateway_kid }).to_string()),
                base64_url(&claims.to_string())
            )
        }),
        (
            "an Entra token for the user, signed by the identity provider",
            stack
                .emulator()
                .mint(&entra_emulator::TokenRequest::v2("ada"))
                .unwrap(),
        ),
    ];
    for (what, forged) in &forgeries {
        assert_no_session(stack, "/staff/keys", forged, what);
    }
    // (Each refusal above is a redirect to sign in, never the origin's answer; a global count
    // of origin requests cannot tell, as other tests share this stack.)
    let _ = origin_requests;
    // A forged cookie cannot log the real session out either.
    let mut forger = Agent::new(stack);
    forger.set_cookie("CF_Authorization", &forgeries[1].1);
    assert_eq!(forger.navigate("/cdn-cgi/access/logout").status, 200);
    echoed(&agent.navigate("/staff/keys"));
    log_line(stack, "session_refused");
}

fn base64_url(text: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}

#[test]
fn open_redirect_attempts_stay_on_the_gateway() {
    let Some(stack) = stack("open_redirect_attempts_stay_on_the_gateway") else {
        return;
    };
    let attempts = [
        "https://evil.example/",
        "http://evil.example/staff/x",
        "//evil.example/staff/x",
        "///evil.example/staff/x",
        "/\\evil.example/staff/x",
        "\\\\evil.example/staff/x",
        "/\t/evil.example",
        "/\r\nLocation: https://evil.example/",
        " //evil.example",
        "javascript:alert(document.domain)",
        "https:evil.example",
        "evil.example/staff/x",
        "",
    ];
    for attempt in attempts {
        let mut agent = Agent::new(stack);
        let login = format!(
            "/cdn-cgi/access/login?redirect_url={}",
            entra_emulator::urlencoded::encode(attempt)
        );
        let authorize = agent.begin_login(&login);
        // The identity provider is only ever asked to come back to this host.
        assert_eq!(
            query(&authorize, "redirect_uri").unwrap(),
            format!("{}/cdn-cgi/access/callback", stack.url()),
            "{attempt:?}"
        );
        let callback = agent.choose_user(&authorize, "ada");
        let answer = agent.navigate(&callback);
        match answer.status {
            // The target was replaced by `/`, which no app covers.
            404 => {}
            302 => {
                let location = answer.header("location").unwrap();
                assert!(
                    location.starts_with('/')
                        && !location.starts_with("//")
                        && !location.contains('\\')
                        && !location.chars().any(char::is_control),
                    "{attempt:?} redirected to {location:?}"
                );
            }
            _ => panic!("{attempt:?}: {answer:?}"),
        }
        assert!(
            answer
                .header("location")
                .is_none_or(|l| !l.contains("evil.example") || l.starts_with("/staff")),
            "{attempt:?}: {answer:?}"
        );
    }

    // A legitimate target with its own query survives the trip unchanged.
    let mut agent = Agent::new(stack);
    let path = "/staff/next?to=https%3A%2F%2Fevil.example%2F&x=1";
    let answer = agent.sign_in(path, "ada");
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some(path));
}

#[test]
fn xhr_and_api_requests_get_401_not_a_redirect() {
    let Some(stack) = stack("xhr_and_api_requests_get_401_not_a_redirect") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let html = "text/html,application/xhtml+xml,*/*;q=0.8";
    type Case<'a> = (&'a str, &'a str, Vec<(&'a str, &'a str)>);
    let cases: [Case<'_>; 5] = [
        (
            "XHR",
            "GET",
            vec![("accept", html), ("x-requested-with", "XMLHttpRequest")],
        ),
        ("fetch()", "GET", vec![("accept", "*/*")]),
        ("JSON API", "GET", vec![("accept", "application/json")]),
        ("no Accept", "GET", vec![]),
        ("form POST", "POST", vec![("accept", html)]),
    ];
    for (what, method, headers) in &cases {
        let answer = agent.request(method, "/staff/api/items", headers);
        assert_eq!(answer.status, 401, "{what}: {answer:?}");
        assert!(answer.header("location").is_none(), "{what}: {answer:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"), "{what}");
        assert_not_origin(&answer, what);
    }
    // A navigation is sent to sign in.
    let answer = agent.navigate("/staff/api/items");
    assert_eq!(answer.status, 302, "{answer:?}");

    // With a session, the same XHR reaches the origin; with an expired or forged cookie, 401.
    agent.signed_in("/staff/api/items", "ada");
    let answer = agent.request("GET", "/staff/api/items", &cases[0].2);
    assert_eq!(
        echoed(&answer)["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    let forged = resign(
        &agent.cookie("CF_Authorization").unwrap(),
        &foreign_jwk(),
        "0000",
        |_| {},
    );
    agent.set_cookie("CF_Authorization", &forged);
    let answer = agent.request("GET", "/staff/api/items", &cases[0].2);
    assert_eq!(answer.status, 401, "{answer:?}");
}

#[test]
fn concurrent_first_sign_ins_all_succeed() {
    if !Stack::should_run("signin_http::concurrent_first_sign_ins_all_succeed").unwrap() {
        return;
    }
    let fixtures = entra_emulator::fixtures::Fixtures::load_default().unwrap();
    let stack = Stack::start(
        edge_access_tests::stack::StackConfig::new(signin_common::document(&fixtures))
            .named("signin_http-cold"),
    )
    .unwrap();
    let users = ["ada", "grace", "dora", "bob"];
    let mut ready = Vec::new();
    for user in users {
        let mut agent = Agent::new(&stack);
        let authorize = agent.begin_sign_in("/staff/cold");
        let callback = agent.choose_user(&authorize, user);
        ready.push((agent, callback));
    }
    let statuses: Vec<u16> = std::thread::scope(|scope| {
        let handles: Vec<_> = ready
            .iter_mut()
            .map(|(agent, callback)| scope.spawn(move || agent.navigate(callback).status))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(statuses, vec![302; users.len()], "{}", stack.worker_log());
}

#[test]
fn groups_overage_fails_closed_when_graph_fails() {
    let Some(stack) = stack("groups_overage_fails_closed_when_graph_fails") else {
        return;
    };
    // Only this test signs the overage user in here, so the fault touches no other test.
    let mut agent = Agent::new(stack);
    let authorize = agent.begin_sign_in("/eng/overage");
    let callback = agent.choose_user(&authorize, "overage");
    stack.emulator().set_graph_fault(Fault::Error500);
    let answer = agent.navigate(&callback);
    stack.emulator().set_graph_fault(Fault::None);
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_none());
    log_line(stack, "group memberships unavailable");
    // With Graph back, the same user gets in through the nested group.
    agent.signed_in("/eng/overage", "overage");
    assert_eq!(
        echoed(&agent.navigate("/eng/overage"))["headers"]["cf-access-authenticated-user-email"],
        "overage@example.com"
    );
}

#[test]
fn two_tabs_signing_in_at_once_both_succeed() {
    let Some(stack) = stack("two_tabs_signing_in_at_once_both_succeed") else {
        return;
    };
    // One browser, two tabs sent to sign in before either finishes (a restored session).
    let mut browser = Agent::new(stack);
    let first = browser.begin_sign_in("/staff/tab-1");
    let second = browser.begin_sign_in("/staff/tab-2");
    let first_callback = browser.choose_user(&first, "ada");
    let second_callback = browser.choose_user(&second, "ada");
    let answer = browser.navigate(&first_callback);
    assert_eq!(answer.status, 302, "the first tab: {answer:?}");
    let answer = browser.navigate(&second_callback);
    assert_eq!(answer.status, 302, "the second tab: {answer:?}");
}

/// One `CF_Authorization` cookie per host serves every app on the host.
#[test]
fn one_browser_keeps_sessions_for_two_apps_on_one_host() {
    let Some(stack) = stack("one_browser_keeps_sessions_for_two_apps_on_one_host") else {
        return;
    };
    // The session cookie is scoped to the host and names every app on it, so signing in once
    // serves them all; each request is still decided by its own app's policies.
    let mut browser = Agent::new(stack);
    browser.signed_in("/staff/home", "ada");
    let answer = browser.navigate("/eng/build");
    assert_eq!(
        answer.status, 200,
        "the second app, no second sign-in: {answer:?}"
    );
    let answer = browser.navigate("/staff/home");
    assert_eq!(answer.status, 200, "back on the first app: {answer:?}");
}

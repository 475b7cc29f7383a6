//! Refusals: the block pages (identity and non-identity failures are told apart, and say nothing
//! about policies), and apps that send refused users to their own deny pages instead.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

mod signin_common;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::fixtures::Fixtures;
use serde_json::json;
use signin_common::{document, query, warm_up, Agent};

const DENY_URL: &str = "https://deny.example.com/blocked";
const NON_IDENTITY_DENY_URL: &str = "https://deny.example.com/wrong-network";
/// An app's own words on the block page, with markup that must stay text.
const DENY_MESSAGE: &str = "Ask <b>IT</b> & say \"payroll\"";
const DENY_MESSAGE_HTML: &str = "Ask &lt;b&gt;IT&lt;/b&gt; &amp; say &quot;payroll&quot;";

fn stack() -> Option<Stack> {
    if !Stack::should_run("signin_deny").unwrap() {
        return None;
    }
    let fixtures = Fixtures::load_default().unwrap();
    let mut doc = document(&fixtures);
    let apps = doc["apps"].as_array_mut().unwrap();
    // Only root may use /gated; refusals go to the app's own pages.
    apps.push(json!({ "id": "gated", "name": "Gated", "domain": "${WORKER_HOST}/gated", "aud": "aud-gated",
        "custom_deny_url": DENY_URL, "custom_non_identity_deny_url": NON_IDENTITY_DENY_URL,
        "policies": [{ "name": "Root only", "decision": "allow", "include": [{ "email": { "email": "root@example.com" } }] }] }));
    // Only root may use /payroll; the block page says what the app wants said.
    apps.push(json!({ "id": "payroll", "name": "Payroll", "domain": "${WORKER_HOST}/payroll", "aud": "aud-payroll",
        "custom_deny_message": DENY_MESSAGE,
        "policies": [{ "name": "Root only", "decision": "allow", "include": [{ "email": { "email": "root@example.com" } }] }] }));
    // /office needs a network no test client is on: refused before any sign-in could help.
    apps.push(json!({ "id": "office", "name": "Office", "domain": "${WORKER_HOST}/office", "aud": "aud-office",
        "policies": [{ "name": "Office network", "decision": "allow",
                       "include": [{ "everyone": {} }], "require": [{ "ip": { "ip": "198.51.100.0/24" } }] }] }));
    apps.push(json!({ "id": "office-custom", "name": "Office (custom page)", "domain": "${WORKER_HOST}/branch",
        "aud": "aud-branch", "custom_non_identity_deny_url": NON_IDENTITY_DENY_URL,
        "policies": [{ "name": "Branch network", "decision": "allow",
                       "include": [{ "everyone": {} }], "require": [{ "ip": { "ip": "198.51.100.0/24" } }] }] }));
    let stack = Stack::start(StackConfig::new(doc).named("signin-deny")).unwrap();
    warm_up(&stack);
    Some(stack)
}

#[test]
fn refusals_show_the_right_page_or_the_apps_own() {
    let Some(stack) = stack() else { return };

    // A refused sign-in to an app with a custom deny URL goes there.
    let mut ada = Agent::new(&stack);
    let answer = ada.sign_in("/gated/reports", "ada");
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some(DENY_URL));
    assert!(
        ada.cookie("CF_Authorization").is_none(),
        "no session for a refused sign-in"
    );

    // With a session from another app, a refused request is sent there too.
    ada.signed_in("/staff/home", "ada");
    let answer = ada.navigate("/gated/reports");
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some(DENY_URL));

    // Non-identity failures are refused before sign-in, on their own page (or the app's).
    let mut anonymous = Agent::new(&stack);
    let office = anonymous.navigate("/office/desk");
    assert_eq!(office.status, 403, "{office:?}");
    assert!(
        office.body.contains("not available from here"),
        "{}",
        office.body
    );
    let branch = anonymous.navigate("/branch/desk");
    assert_eq!(branch.status, 302, "{branch:?}");
    assert_eq!(branch.header("location"), Some(NON_IDENTITY_DENY_URL));

    // An identity refusal without a custom page: the block page, which names no policy.
    let mut mallory = Agent::new(&stack);
    let answer = mallory.sign_in("/staff/home", "mallory");
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(
        answer.body.contains("do not have access"),
        "{}",
        answer.body
    );
    // It names the account that signed in (the user's own address), never why it refused.
    assert!(answer.body.contains("mallory"), "{}", answer.body);
    for secret in ["Blocked", "policy", "deny"] {
        assert!(
            !answer.body.contains(secret),
            "the block page says `{secret}`: {}",
            answer.body
        );
    }
    assert_ne!(
        answer.body, office.body,
        "identity and non-identity refusals look different"
    );

    // The refused sign-in set no session: the page offers another account, not a sign-out.
    assert!(mallory.cookie("CF_Authorization").is_none());
    assert!(!answer.body.contains("Sign out"), "{}", answer.body);
    assert!(!answer.body.contains("/logout"), "{}", answer.body);
    let another = another_account_link(&answer.body);
    assert_eq!(
        another,
        "/cdn-cgi/access/login?redirect_url=%2Fstaff%2Fhome&interactive=1"
    );
    // It asks Entra to let the user pick the account, and the other account gets in.
    let authorize = mallory.begin_login(&another);
    assert_eq!(
        query(&authorize, "prompt").as_deref(),
        Some("select_account")
    );
    let callback = mallory.choose_user(&authorize, "ada");
    assert!(stack
        .emulator()
        .authorize_prompts()
        .contains(&Some("select_account".to_owned())));
    let switched = mallory.navigate(&callback);
    assert_eq!(switched.status, 302, "{switched:?}");
    assert_eq!(switched.header("location"), Some("/staff/home"));
    assert!(mallory.cookie("CF_Authorization").is_some());
}

/// The href of a page's "Sign in with another account" link, unescaped.
fn another_account_link(body: &str) -> String {
    let (before, _) = body
        .split_once("\">Sign in with another account</a>")
        .unwrap_or_else(|| panic!("no link to another account: {body}"));
    let (_, href) = before.rsplit_once("href=\"").unwrap();
    href.replace("&amp;", "&")
}

#[test]
fn an_apps_deny_message_is_shown_as_text_on_the_block_page() {
    let Some(stack) = stack() else { return };

    // A refused sign-in, then a refused request with a session from another app.
    let mut ada = Agent::new(&stack);
    let signed_in = ada.sign_in("/payroll/slips", "ada");
    ada.signed_in("/staff/home", "ada");
    let with_session = ada.navigate("/payroll/slips");
    // A sign-out only where there is a session to end.
    assert!(!signed_in.body.contains("Sign out"), "{}", signed_in.body);
    assert!(
        with_session
            .body
            .contains("<a href=\"/cdn-cgi/access/logout\">Sign out</a>"),
        "{}",
        with_session.body
    );
    for answer in [signed_in, with_session] {
        assert_eq!(answer.status, 403, "{answer:?}");
        assert!(
            answer.body.contains("Sign in with another account"),
            "{}",
            answer.body
        );
        assert!(answer.body.contains(DENY_MESSAGE_HTML), "{}", answer.body);
        assert!(!answer.body.contains("<b>"), "{}", answer.body);
        assert!(
            !answer.body.contains("do not have access"),
            "the app's message replaces the default: {}",
            answer.body
        );
    }
}

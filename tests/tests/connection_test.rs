//! The connection test of an identity provider: an admin asks the management API for a test
//! URL, a browser signs in through it, and the page says what Entra sent (claims, groups, an
//! overflowing groups claim read through Graph, the email's claim, warnings) or, for a
//! provider Entra refuses, Entra's error code and what to fix. Nothing is stored: no session
//! cookie, and the protected app still asks to sign in.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

mod signin_common;

use std::sync::OnceLock;

use edge_access_tests::admin_api::{admin_tokens, Api, READ_TOKEN, WRITE_TOKEN};
use edge_access_tests::browser::Run;
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpResponse;
use serde_json::{json, Value};
use signin_common::{Agent, IDP};

const BROKEN: &str = "broken-secret";

/// The stack of `test`, or `None` when the end-to-end tests are skipped here.
fn stack(test: &str) -> Option<&'static Stack> {
    Stack::should_run(&format!("connection_test::{test}"))
        .unwrap()
        .then(shared)
}

/// One stack for the binary: two providers of the emulator's tenant, the first provisioned by
/// SCIM, the second with a client secret of its own that Entra refuses.
fn shared() -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        let provider = |id: &str, name: &str| {
            json!({ "id": id, "name": name, "type": "azureAD",
                "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}",
                            "support_groups": true, "pkce_enabled": true },
                "scim_config": { "enabled": id == IDP } })
        };
        let document = json!({
            "team_domain": "https://access.example.com",
            "identity_providers": [provider(IDP, "Contoso Entra ID"), provider(BROKEN, "Expired secret")],
            "apps": [{ "id": "staff", "name": "Staff", "domain": "${WORKER_HOST}/staff", "aud": "aud-staff",
                "policies": [{ "name": "Staff", "decision": "allow",
                    "include": [{ "email_domain": { "domain": "example.com" } }] }] }]
        });
        Stack::start(
            StackConfig::new(document)
                .named("connection_test")
                .with_var("ADMIN_TOKENS", &admin_tokens())
                .with_var("AZURE_CLIENT_SECRET_BROKEN_SECRET", "not-the-secret"),
        )
        .map_err(|e| e.to_string())
    });
    match stack {
        Ok(stack) => stack,
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

/// The test URL the API answers for `idp`.
fn test_url(stack: &Stack, idp: &str) -> String {
    let answer = Api::new(stack).call(
        "POST",
        &format!("/access/identity_providers/{idp}/test"),
        Some(WRITE_TOKEN),
        b"",
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let body: Value = answer.json().unwrap();
    assert_eq!(body["result"]["expires_in"], 600, "{body}");
    body["result"]["url"].as_str().unwrap().to_owned()
}

/// Through the test URL to the emulator's sign-in as `user`, then the callback's answer.
fn run_test(agent: &mut Agent<'_>, url: &str, user: &str) -> HttpResponse {
    assert!(
        url.starts_with(&format!(
            "{}/cdn-cgi/access/test-idp?ticket=",
            agent.stack.url()
        )),
        "{url}"
    );
    let start = agent.navigate(url);
    assert_eq!(start.status, 302, "{start:?}");
    let authorize = start.header("location").unwrap().to_owned();
    assert!(
        authorize.starts_with(&agent.stack.emulator().authorize_endpoint()),
        "{authorize}"
    );
    let callback = agent.choose_user(&authorize, user);
    let answer = agent.navigate(&callback);
    assert!(
        answer
            .header_all("set-cookie")
            .iter()
            .all(|c| !c.starts_with("CF_Authorization=")),
        "a test set a session cookie: {answer:?}"
    );
    assert!(agent.cookie("CF_Authorization").is_none());
    assert_eq!(
        agent.navigate("/staff/page").status,
        302,
        "a test signed in"
    );
    answer
}

#[test]
fn a_working_provider_reports_what_entra_sent_and_stores_nothing() {
    let Some(stack) = stack("a_working_provider_reports_what_entra_sent_and_stores_nothing") else {
        return;
    };
    // SCIM names one of ada's groups; the other is listed by its id.
    let fixtures = stack.emulator().fixtures();
    let backend = fixtures.group_id("Backend").unwrap();
    signin_common::scim_group(stack, "Backend <team> (SCIM)", backend);
    let mut agent = Agent::new(stack);
    let page = run_test(&mut agent, &test_url(stack, IDP), "ada");
    assert_eq!(page.status, 200, "{page:?}");
    let body = &page.body;
    assert!(
        body.contains(&format!(
            "<li>Backend &lt;team&gt; (SCIM) <code>{backend}</code></li>"
        )),
        "{body}"
    );
    assert!(body.contains("<li><code>"), "an unnamed group: {body}");
    for expected in [
        "<h1>Your connection works</h1>",
        "Contoso Entra ID",
        "<dd id=\"email\">ada@example.com</dd>",
        "<dd id=\"groups-from\">the ID token&#39;s groups claim</dd>",
        "<code>oid</code>",
        "<code>tid</code>",
        // A v2 sign-in: no `amr`.
        "no `amr` claim",
    ] {
        assert!(body.contains(expected), "no `{expected}` in {body}");
    }
    assert!(!body.to_ascii_lowercase().contains("<script"), "{body}");
    assert!(page
        .header("content-security-policy")
        .is_some_and(|csp| csp.contains("default-src 'none'")));

    // Over 200 groups: Graph, and every group listed.
    let page = run_test(&mut agent, &test_url(stack, IDP), "overage");
    assert_eq!(page.status, 200, "{page:?}");
    assert!(
        page.body.contains("groups claim overflowed"),
        "{}",
        page.body
    );
    // 212 memberships, one of them a Microsoft 365 group, which Graph's security-enabled
    // reading leaves out.
    assert!(page.body.contains("<h2>Groups (211)</h2>"), "{}", page.body);
}

#[test]
fn a_refused_secret_shows_entras_code_and_the_secret_to_set() {
    let Some(stack) = stack("a_refused_secret_shows_entras_code_and_the_secret_to_set") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let page = run_test(&mut agent, &test_url(stack, BROKEN), "ada");
    assert_eq!(page.status, 502, "{page:?}");
    for expected in [
        "<h1>Your connection failed</h1>",
        "Expired secret",
        "<code>AADSTS7000215</code>",
        "AZURE_CLIENT_SECRET_BROKEN_SECRET",
    ] {
        assert!(
            page.body.contains(expected),
            "no `{expected}` in {}",
            page.body
        );
    }
    assert!(!page.body.contains("not-the-secret"), "{}", page.body);
    let line = signin_common::log_line(stack, "\"step\":\"token\"");
    assert!(line.contains("AADSTS7000215"), "{line}");
    assert!(stack
        .worker_log_json()
        .iter()
        .all(|line| !line.to_string().contains("not-the-secret")));
}

#[test]
fn test_urls_are_the_gateways_admins_only() {
    let Some(stack) = stack("test_urls_are_the_gateways_admins_only") else {
        return;
    };
    let api = Api::new(stack);
    let path = format!("/access/identity_providers/{IDP}/test");
    assert_eq!(api.call("POST", &path, None, b"").status, 401);
    assert_eq!(api.call("POST", &path, Some(READ_TOKEN), b"").status, 403);
    let unknown = api.call(
        "POST",
        "/access/identity_providers/nobody/test",
        Some(WRITE_TOKEN),
        b"",
    );
    assert_eq!(unknown.status, 404, "{unknown:?}");

    let url = test_url(stack, IDP);
    let mut agent = Agent::new(stack);
    let (base, ticket) = url.split_once("ticket=").unwrap();
    for (what, bad) in [
        (
            "no ticket",
            format!("{}/cdn-cgi/access/test-idp", stack.url()),
        ),
        ("a changed ticket", format!("{base}ticket=x{ticket}")),
        (
            "a truncated ticket",
            format!("{base}ticket={}", &ticket[..ticket.len() - 2]),
        ),
    ] {
        let answer = agent.navigate(&bad);
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
        assert!(answer.header("location").is_none(), "{what}: {answer:?}");
    }
}

/// The same test in headless Chromium: the admin opens the URL, picks a user on Entra's page,
/// and reads the report; then the misconfigured provider's page. Screenshots of both are kept
/// (`target/test-artifacts/connection_test-*.png`).
#[test]
fn in_chromium_the_report_and_the_refusal_read_as_pages() {
    let Some(run) = Run::start(
        "connection_test",
        "in_chromium_the_report_and_the_refusal_read_as_pages",
        shared,
    ) else {
        return;
    };
    let wait = std::time::Duration::from_secs(30);
    let authorize = run.stack.emulator().authorize_endpoint();
    for (idp, title, shot) in [
        (IDP, "Your connection works", "connection_test-works"),
        (BROKEN, "Your connection failed", "connection_test-failed"),
    ] {
        run.ok(run.browser.goto(&test_url(run.stack, idp)));
        run.ok(run
            .browser
            .wait_for_url("Entra's sign-in page", wait, |url| {
                url.starts_with(&authorize)
            }));
        run.pick_user(&authorize, "ada");
        let heading = run.ok(run.browser.wait_for("main h1", wait));
        assert_eq!(run.ok(heading.text()), title);
        let scripts = run.ok(run.browser.execute("return document.scripts.length;", &[]));
        assert_eq!(scripts, json!(0));
        run.keep_screenshot(shot);
        assert!(run.ok(run.browser.cookie("CF_Authorization")).is_none());
    }
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("AADSTS7000215"), "{text}");
}

//! The browser sign-in in a real browser: headless Chromium (Debian's, driven over WebDriver)
//! against the worker under `wrangler dev` and the Entra ID emulator's sign-in page.
//!
//! A protected page sends the browser to the emulator, a click on a user brings it back to
//! the page, now served by the origin with the user's identity; a blocked user sees the block
//! page; the overage user gets in through a nested group (read from Microsoft Graph); after
//! logout the page asks for sign-in again; an XHR from the page gets 401 without a session.
//!
//! Needs `cargo xtask setup` (Chromium, chromedriver, wrangler) and `cargo xtask build-worker`
//! (`cargo xtask test` does both). Browsers run one at a time: the machine is small.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::time::{Duration, Instant};

use edge_access_tests::browser::Run;
use serde_json::{json, Value};

const BINARY: &str = "signin_browser";
const WAIT: Duration = Duration::from_secs(30);

fn start(test: &str) -> Option<Run> {
    Run::start(BINARY, test, || signin_common::stack(BINARY))
}

/// The sign-in steps these tests take.
trait SignIn {
    fn sign_in(&self, path: &str, user: &str) -> (String, Duration);
    fn echo(&self) -> Value;
    fn xhr(&self, path: &str) -> (u16, String);
}

impl SignIn for Run {
    /// Opens `path` and, on the emulator's sign-in page, picks `user`. Returns the URL the
    /// browser lands on and how long the round trip took (the click's part printed apart).
    fn sign_in(&self, path: &str, user: &str) -> (String, Duration) {
        let started = Instant::now();
        self.ok(self.browser.goto(&self.url(path)));
        let to_page = started.elapsed();
        let authorize = self.stack.emulator().authorize_endpoint();
        let at = self.ok(self.browser.current_url());
        assert!(
            at.starts_with(&authorize),
            "{path} without a session should show the sign-in page, but the browser is at {at}"
        );
        let landed = self.pick_user(&authorize, user);
        let took = started.elapsed();
        eprintln!(
            "{user} → {path}: sign-in page after {to_page:?}, back on {landed} after {took:?}"
        );
        (landed, took)
    }

    /// The origin's JSON echo shown by the page.
    fn echo(&self) -> Value {
        let text = self.ok(self.browser.body_text());
        serde_json::from_str(text.trim())
            .unwrap_or_else(|e| panic!("the page is not the origin's echo ({e}): {text}"))
    }

    /// `fetch(path)` from the page with `X-Requested-With: XMLHttpRequest`: status and body.
    fn xhr(&self, path: &str) -> (u16, String) {
        let script = "const done = arguments[arguments.length - 1];
            fetch(arguments[0], { headers: { 'X-Requested-With': 'XMLHttpRequest' }, redirect: 'manual' })
              .then(r => r.text().then(body => done({ status: r.status, body })))
              .catch(e => done({ status: -1, body: String(e) }));";
        let answer = self.ok(self.browser.execute_async(script, &[json!(path)]));
        (
            u16::try_from(answer["status"].as_i64().unwrap_or(0)).unwrap_or(0),
            answer["body"].as_str().unwrap_or_default().to_owned(),
        )
    }
}

#[test]
fn a_user_signs_in_and_lands_on_the_origin_page() {
    let Some(run) = start("signs_in") else {
        return;
    };
    let path = "/staff/dashboard?tab=1";
    let (landed, took) = run.sign_in(path, "ada");
    eprintln!("browser sign-in round trip (page → emulator → click → page): {took:?}");
    assert_eq!(landed, run.url(path));
    let echo = run.echo();
    assert_eq!(echo["path"], path);
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    assert!(
        echo["headers"]["cf-access-jwt-assertion"].is_string(),
        "{echo}"
    );

    // The session cookie: HttpOnly (scripts cannot read it), Secure, SameSite=Lax.
    let cookie = run
        .ok(run.browser.cookie("CF_Authorization"))
        .expect("no CF_Authorization cookie in the browser");
    assert!(cookie.http_only && cookie.secure, "{cookie:?}");
    assert_eq!(cookie.same_site.as_deref(), Some("Lax"), "{cookie:?}");
    assert_eq!(cookie.path, "/");
    assert_eq!(
        echo["headers"]["cf-access-jwt-assertion"].as_str(),
        Some(cookie.value.as_str())
    );
    let script_view = run.ok(run.browser.execute("return document.cookie;", &[]));
    assert!(
        !script_view
            .as_str()
            .unwrap_or_default()
            .contains("CF_Authorization"),
        "{script_view}"
    );
    let cookies = run.ok(run.browser.cookies());
    assert!(
        !cookies.iter().any(|c| c.name.starts_with("EA_Login_")),
        "the binding cookie is cleared"
    );

    // A second visit needs no sign-in.
    run.ok(run.browser.goto(&run.url("/staff/other")));
    assert_eq!(run.ok(run.browser.current_url()), run.url("/staff/other"));
    assert_eq!(
        run.echo()["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );

    // XHR from the page: the session works; without it, 401 (never a redirect to sign in).
    let (status, body) = run.xhr("/staff/api/items");
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("ada@example.com"), "{body}");
    run.ok(run.browser.delete_cookie("CF_Authorization"));
    let (status, body) = run.xhr("/staff/api/items");
    assert_eq!(status, 401, "{body}");
}

#[test]
fn a_blocked_user_sees_the_block_page() {
    let Some(run) = start("blocked") else {
        return;
    };
    let origin_requests = run.stack.origin().requests();
    let (landed, _) = run.sign_in("/staff/dashboard", "mallory");
    assert!(landed.starts_with(&run.url("/cdn-cgi/access/")), "{landed}");
    assert_eq!(run.ok(run.browser.title()), "Access denied");
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("you do not have access"), "{text}");
    assert!(run.ok(run.browser.cookie("CF_Authorization")).is_none());
    assert_eq!(run.stack.origin().requests(), origin_requests);
    let line = signin_common::log_line(run.stack, "\"outcome\":\"block\"");
    assert!(line.contains("sign_in"), "{line}");
}

#[test]
fn the_overage_user_gets_in_through_a_nested_group() {
    let Some(run) = start("overage") else {
        return;
    };
    let graph_calls = run.stack.emulator().graph_calls();
    let (landed, took) = run.sign_in("/eng/build", "overage");
    eprintln!("overage sign-in (with Microsoft Graph) round trip: {took:?}");
    assert_eq!(landed, run.url("/eng/build"));
    assert_eq!(
        run.echo()["headers"]["cf-access-authenticated-user-email"],
        "overage@example.com"
    );
    assert!(
        run.stack.emulator().graph_calls() > graph_calls,
        "the groups were not read from Microsoft Graph"
    );
    // The identity the gateway kept has the transitive groups, Engineering among them.
    run.ok(run.browser.goto(&run.url("/cdn-cgi/access/get-identity")));
    let identity: Value = serde_json::from_str(run.ok(run.browser.body_text()).trim()).unwrap();
    let engineering = run
        .stack
        .emulator()
        .fixtures()
        .group_id("Engineering")
        .unwrap();
    let groups = identity["groups"].as_array().unwrap();
    assert!(groups.len() > 200, "{} groups", groups.len());
    assert!(groups.iter().any(|g| g["id"] == engineering), "{identity}");
}

#[test]
fn after_logout_the_page_asks_for_sign_in_again() {
    let Some(run) = start("logout") else {
        return;
    };
    let (landed, _) = run.sign_in("/staff/home", "grace");
    assert_eq!(landed, run.url("/staff/home"));
    run.ok(run.browser.goto(&run.url("/cdn-cgi/access/logout")));
    assert_eq!(run.ok(run.browser.title()), "Signed out");
    assert!(run.ok(run.browser.cookie("CF_Authorization")).is_none());
    run.ok(run.browser.goto(&run.url("/staff/home")));
    let at = run.ok(run.browser.current_url());
    assert!(
        at.starts_with(&run.stack.emulator().authorize_endpoint()),
        "after logout the page should ask for sign-in, but the browser is at {at}"
    );
    run.ok(run.browser.wait_for("#user-grace", WAIT));
    // Signing in again works.
    run.ok(run.ok(run.browser.find("#user-grace")).click());
    let at = run.ok(run.browser.wait_for_url("the page", WAIT, |u| {
        !u.starts_with(&run.stack.emulator().authorize_endpoint())
    }));
    assert_eq!(at, run.url("/staff/home"));
    assert_eq!(
        run.echo()["headers"]["cf-access-authenticated-user-email"],
        "grace@example.com"
    );
}

#[test]
fn a_user_deprovisioned_through_scim_is_refused_on_the_next_page() {
    let Some(run) = start("deprovisioned") else {
        return;
    };
    use edge_access_tests::stack::{SCIM_PATH, SCIM_TOKEN};
    use entra_emulator::provisioning::{Dialect, Directory, ExternalId, ScimClient};
    let (landed, _) = run.sign_in("/staff/desk", "grace");
    assert_eq!(landed, run.url("/staff/desk"));
    assert_eq!(
        run.echo()["headers"]["cf-access-authenticated-user-email"],
        "grace@example.com"
    );

    // Entra disables grace (the default dialect's `"active": "False"`).
    let fixtures = entra_emulator::fixtures::Fixtures::load_default().unwrap();
    let directory = Directory::from_fixtures(&fixtures);
    // Its app maps `objectId` to `externalId`, as `user_deprovision` requires.
    let scim = ScimClient::new(
        &format!("{}{SCIM_PATH}", run.stack.url()),
        SCIM_TOKEN,
        Dialect::Default,
    )
    .with_external_id(ExternalId::ObjectId);
    let (id, _) = scim
        .match_or_create_user(directory.user("grace").unwrap())
        .unwrap();
    scim.disable_user(&id).unwrap();

    // The browser still holds its cookie; the next page sends it to sign in.
    assert!(run.ok(run.browser.cookie("CF_Authorization")).is_some());
    run.ok(run.browser.goto(&run.url("/staff/desk")));
    let at = run.ok(run.browser.current_url());
    assert!(
        at.starts_with(&run.stack.emulator().authorize_endpoint()),
        "a deprovisioned user's browser should be at the sign-in page, is at {at}"
    );
    // Leave grace provisioned and active for the other tests.
    scim.patch_user(&id, &Dialect::Default.set_active(true))
        .unwrap();
}

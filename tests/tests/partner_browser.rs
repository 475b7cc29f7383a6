//! Signing in through a partner's tenant in headless Chromium: the login chooser of an app that
//! allows two providers (plain HTML, no script, names escaped, reached with the keyboard), the
//! partner's sign-in page, and access only where a policy admits the partner's provider.
//!
//! Needs `cargo xtask setup` (Chromium, chromedriver, wrangler) and `cargo xtask build-worker`.
//! Browsers run one at a time: the machine is small.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure panics"
)]

mod partner_common;

use std::time::Duration;

use edge_access_tests::browser::{Element, Run};
use entra_emulator::Emulator;
use partner_common::{PARTNER, PARTNER_NAME};
use serde_json::{json, Value};

const BINARY: &str = "partner_browser";
const WAIT: Duration = Duration::from_secs(30);

fn start(test: &str) -> Option<Run> {
    Run::start(BINARY, test, || partner_common::stack(BINARY))
}

/// Signing in through the chooser.
trait ThroughChooser {
    fn sign_in_through(&self, path: &str, idp: &str, tenant: &Emulator, user: &str) -> String;
}

impl ThroughChooser for Run {
    /// Opens `path`, expects the login chooser, follows the link to `idp` by pressing Enter on
    /// it (the keyboard, no mouse), then picks `user` on `tenant`'s sign-in page. Returns the
    /// URL the browser lands on.
    fn sign_in_through(&self, path: &str, idp: &str, tenant: &Emulator, user: &str) -> String {
        self.ok(self.browser.goto(&self.url(path)));
        let at = self.ok(self.browser.current_url());
        assert!(
            at.starts_with(&self.url("/cdn-cgi/access/login?")),
            "{path} without a session should show the chooser, but the browser is at {at}"
        );
        let link = format!("a[href*=\"idp={idp}&\"]");
        self.ok(self.browser.wait_for(&link, WAIT));
        // Focus the link as Tab would and follow it with Enter.
        let focused: Value = self.ok(self.browser.execute(
            "const a = document.querySelector(arguments[0]); a.focus();
             return document.activeElement === a && a.tabIndex >= 0;",
            &[json!(link)],
        ));
        assert_eq!(
            focused,
            json!(true),
            "the link to {idp} cannot take the focus"
        );
        let element = self.ok(self.browser.find(&link));
        self.ok(element.send_keys(Element::ENTER));
        let authorize = tenant.authorize_endpoint();
        self.ok(self
            .browser
            .wait_for_url("the tenant's sign-in page", WAIT, |url| {
                url.starts_with(&authorize)
            }));
        self.pick_user(&authorize, user)
    }
}

#[test]
fn the_chooser_signs_a_partner_in_where_a_policy_admits_the_partner() {
    let Some(run) = start("the_chooser_signs_a_partner_in_where_a_policy_admits_the_partner")
    else {
        return;
    };
    let partner = run.stack.emulator().partner().unwrap();

    // The chooser, as the browser shows it.
    run.ok(run.browser.goto(&run.url("/both/page")));
    run.ok(run.browser.wait_for("main nav a", WAIT));
    assert_eq!(run.ok(run.browser.title()), "Sign in to Shared <b>wiki</b>");
    let text = run.ok(run.browser.body_text());
    assert!(
        text.contains(&format!("Sign in with {PARTNER_NAME}")),
        "{text}"
    );
    assert!(text.contains("Sign in with Contoso Entra ID"), "{text}");
    let source = run.ok(run.browser.page_source()).to_ascii_lowercase();
    assert!(!source.contains("<script"), "{source}");
    let scripts: Value = run.ok(run.browser.execute(
        "return document.scripts.length + document.querySelectorAll('b, img, iframe').length;",
        &[],
    ));
    assert_eq!(scripts, json!(0));
    run.keep_screenshot("partner_browser-chooser");

    // Through the partner's tenant to the shared app: admitted.
    let landed = run.sign_in_through("/both/page", PARTNER, partner, "pat");
    assert_eq!(landed, run.url("/both/page"));
    let echo: Value = serde_json::from_str(run.ok(run.browser.body_text()).trim()).unwrap();
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "pat@fabrikam.example"
    );

    // A fresh browser session at the staff app, which admits the organisation's provider
    // only: the partner's user is refused after signing in.
    run.ok(run.browser.delete_all_cookies());
    let landed = run.sign_in_through("/staff/page", PARTNER, partner, "pat");
    assert!(
        landed.starts_with(&run.url("/cdn-cgi/access/callback")),
        "{landed}"
    );
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("do not have access"), "{text}");
    assert!(run.ok(run.browser.cookie("CF_Authorization")).is_none());
}

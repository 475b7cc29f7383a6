//! The gateway's pages in headless Chromium, with a `LOGIN_DESIGN` and a custom page: the
//! block page names the app, the user and the request id of its log line, its links (sign in
//! with another account, sign out) are reached with the keyboard and work, a custom page
//! replaces the default one, and every page passes an accessibility check (landmarks, one
//! `h1`, `lang`, link texts, contrast computed from the page's colours, Tab order).
//! Screenshots are kept under `target/test-artifacts/`.
//!
//! Needs `cargo xtask setup` (Chromium, chromedriver, wrangler) and `cargo xtask build-worker`.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::time::Duration;

use edge_access_tests::browser::{Element, Run};
use serde_json::{json, Value};

const BINARY: &str = "pages_browser";
const WAIT: Duration = Duration::from_secs(30);

/// The design: white text on a dark blue (contrast 10.6:1).
const BACKGROUND: [u8; 3] = [0x0b, 0x3d, 0x91];

/// The custom page for every app's "not found".
const CUSTOM_NOT_FOUND: &str = "<!doctype html><html lang=\"en\"><head><title>Nothing here</title></head>\
    <body><main><h1>Nothing here ({{app_name}})</h1><p>Quote <code id=\"custom-id\">{{request_id}}</code> \
    to the service desk.</p><p><a href=\"{{sign_in_url}}\">Sign in</a></p></main></body></html>";

fn start(test: &str) -> Option<Run> {
    Run::start(BINARY, test, || {
        signin_common::stack_with(BINARY, |config| {
            config
                .with_json_var(
                    "LOGIN_DESIGN",
                    json!({ "name": "Example <Corp>", "header_text": "Staff services",
                            "background_color": "#0b3d91", "text_color": "#ffffff",
                            "footer_text": "IT service desk, ext. 4242",
                            "support_url": "https://help.example.com/access" }),
                )
                .with_d1_setup(&format!(
                    "INSERT INTO custom_pages (app_id, kind, html) VALUES ('*', 'not_found', '{}');",
                    CUSTOM_NOT_FOUND.replace('\'', "''")
                ))
        })
    })
}

/// The browser's steps on these pages.
trait Pages {
    fn sign_in_as(&self, path: &str, user: &str) -> String;
    fn request_id(&self) -> String;
    fn accessible(&self, page: &str);
    fn tab_order(&self) -> Vec<String>;
    fn follow_with_keyboard(&self, label: &str);
}

impl Pages for Run {
    /// Opens `path`, picks `user` on the emulator's sign-in page; the URL landed on.
    fn sign_in_as(&self, path: &str, user: &str) -> String {
        self.ok(self.browser.goto(&self.url(path)));
        self.pick_user(&self.stack.emulator().authorize_endpoint(), user)
    }

    /// The request id the page shows.
    fn request_id(&self) -> String {
        let id = self.ok(self.ok(self.browser.find("#request-id")).text());
        assert!(!id.trim().is_empty(), "no request id shown");
        id.trim().to_owned()
    }

    /// The automated accessibility pass: `lang`, a `main` landmark, one `h1`, every link with
    /// text, text contrast at least 4.5:1 from the computed colours, a visible focus ring, and
    /// Tab reaching every link in document order.
    fn accessible(&self, page: &str) {
        let facts = self.ok(self.browser.execute(
            "const opaque = el => { for (; el; el = el.parentElement) { \
               const c = getComputedStyle(el).backgroundColor; \
               if (c && c !== 'rgba(0, 0, 0, 0)' && c !== 'transparent') return c; } \
               return 'rgb(255, 255, 255)'; }; \
             const texts = Array.from(document.querySelectorAll('h1, p, a, code, li, footer, header')) \
               .filter(el => el.textContent.trim()) \
               .map(el => ({ tag: el.tagName, fg: getComputedStyle(el).color, bg: opaque(el) })); \
             return { lang: document.documentElement.lang, \
               main: document.querySelectorAll('main').length, \
               h1: document.querySelectorAll('h1').length, \
               links: Array.from(document.querySelectorAll('a')).map(a => ({ \
                 href: a.getAttribute('href'), text: a.textContent.trim() })), \
               scripts: document.scripts.length, texts };",
            &[],
        ));
        assert_eq!(facts["lang"], "en", "{page}: {facts}");
        assert_eq!(facts["main"], 1, "{page}: {facts}");
        assert_eq!(facts["h1"], 1, "{page}: {facts}");
        assert_eq!(facts["scripts"], 0, "{page}: {facts}");
        let links = facts["links"].as_array().unwrap();
        for link in links {
            assert!(
                !link["text"].as_str().unwrap().is_empty(),
                "{page}: a link without text: {link}"
            );
        }
        for text in facts["texts"].as_array().unwrap() {
            let (fg, bg) = (rgb(&text["fg"]), rgb(&text["bg"]));
            let ratio = contrast(fg, bg);
            assert!(
                ratio >= 4.5,
                "{page}: {} contrasts {ratio:.2}:1 ({text})",
                text["tag"]
            );
        }
        let order = self.tab_order();
        let hrefs: Vec<String> = links
            .iter()
            .map(|l| l["href"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(order, hrefs, "{page}: Tab order");
        eprintln!(
            "{page}: accessible ({} links in Tab order, {} texts ≥ 4.5:1)",
            hrefs.len(),
            facts["texts"].as_array().unwrap().len()
        );
    }

    /// The `href`s Tab reaches from the top of a freshly loaded page, in order, each with a
    /// visible focus ring (at least 2px, or the browser's own `auto` ring).
    fn tab_order(&self) -> Vec<String> {
        let mut order = Vec::new();
        for _ in 0..20 {
            self.ok(self.browser.press(Element::TAB));
            let focused = self.ok(self.browser.execute(
                "const a = document.activeElement; \
                 if (!a || a.tagName !== 'A') return null; \
                 const s = getComputedStyle(a); \
                 return { href: a.getAttribute('href'), ring: s.outlineStyle === 'auto' \
                   || (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2) };",
                &[],
            ));
            if focused.is_null() {
                break;
            }
            assert_eq!(focused["ring"], json!(true), "no visible focus: {focused}");
            let href = focused["href"].as_str().unwrap().to_owned();
            if order.contains(&href) {
                break;
            }
            order.push(href);
        }
        order
    }

    /// Tabs to the link whose text is `label` and presses Enter on it.
    fn follow_with_keyboard(&self, label: &str) {
        for _ in 0..20 {
            self.ok(self.browser.press(Element::TAB));
            let text = self.ok(self.browser.execute(
                "const a = document.activeElement; return a && a.tagName === 'A' ? a.textContent.trim() : null;",
                &[],
            ));
            if text == json!(label) {
                self.ok(self.browser.press(Element::ENTER));
                return;
            }
        }
        panic!("Tab never reached the link `{label}`");
    }
}

/// `rgb(r, g, b)` or `rgba(…)` as computed.
fn rgb(value: &Value) -> [u8; 3] {
    let text = value.as_str().unwrap();
    let inner = text
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')');
    let parts: Vec<u8> = inner
        .split(',')
        .take(3)
        .map(|p| p.trim().parse().unwrap())
        .collect();
    [parts[0], parts[1], parts[2]]
}

/// WCAG's contrast ratio.
fn contrast(a: [u8; 3], b: [u8; 3]) -> f64 {
    let luminance = |[r, g, b]: [u8; 3]| {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    };
    let (x, y) = (luminance(a), luminance(b));
    (x.max(y) + 0.05) / (x.min(y) + 0.05)
}

/// The decision line of the request `id`.
fn decision_line(run: &Run, id: &str) -> Value {
    let line = signin_common::log_line(run.stack, &format!("\"request_id\":\"{id}\""));
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"))
}

#[test]
fn the_block_page_names_the_app_the_user_and_the_request_and_its_links_work() {
    let Some(run) = start("block_page") else {
        return;
    };
    // bob (example.com, no groups) is admitted to the staff portal…
    let landed = run.sign_in_as("/staff/home", "bob");
    assert_eq!(landed, run.url("/staff/home"));
    let echo: Value = serde_json::from_str(run.ok(run.browser.body_text()).trim()).unwrap();
    let email = echo["headers"]["cf-access-authenticated-user-email"]
        .as_str()
        .unwrap()
        .to_owned();

    // …but not to the engineering tools: the block page, from the gateway's decision.
    run.ok(run.browser.goto(&run.url("/eng/build")));
    assert_eq!(run.ok(run.browser.title()), "Access denied");
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("Engineering tools"), "{text}");
    assert!(text.contains(&email), "{text}");
    assert!(text.contains("Example <Corp>"), "{text}");
    assert!(text.contains("IT service desk, ext. 4242"), "{text}");
    let id = run.request_id();
    let line = decision_line(&run, &id);
    assert_eq!(line["event"], "decision", "{line}");
    assert_eq!(line["status"], 403, "{line}");
    assert_eq!(line["app"], "eng", "{line}");
    run.keep_screenshot("pages_browser-block");

    // The design's colours, as the browser computed them.
    let background = run.ok(run.browser.execute(
        "return getComputedStyle(document.body).backgroundColor;",
        &[],
    ));
    assert_eq!(rgb(&background), BACKGROUND);
    run.accessible("block page");
    let links = run.ok(run.browser.execute(
        "return Array.from(document.querySelectorAll('a')).map(a => [a.textContent, a.getAttribute('href')]);",
        &[],
    ));
    assert_eq!(
        links,
        json!([
            [
                "Sign in with another account",
                "/cdn-cgi/access/login?redirect_url=%2Feng%2Fbuild&interactive=1"
            ],
            ["Sign out", "/cdn-cgi/access/logout"],
            ["Contact support", "https://help.example.com/access"]
        ])
    );

    // "Sign out", with the keyboard: bob's session ends.
    run.ok(run.browser.goto(&run.url("/eng/build")));
    run.follow_with_keyboard("Sign out");
    run.ok(run
        .browser
        .wait_for_url("the logout", WAIT, |url| url.ends_with("/logout")));
    assert_eq!(run.ok(run.browser.title()), "Signed out");
    assert!(run.ok(run.browser.cookie("CF_Authorization")).is_none());
    run.keep_screenshot("pages_browser-signed-out");
    run.accessible("signed-out page");

    // mallory's sign-in is refused at the callback: the block page names her and the app,
    // with the request id of the refusal's log line.
    run.sign_in_as("/staff/dashboard", "mallory");
    assert_eq!(run.ok(run.browser.title()), "Access denied");
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("Staff portal"), "{text}");
    assert!(text.contains("mallory"), "{text}");
    let id = run.request_id();
    let line = signin_common::log_line(run.stack, &format!("\"request_id\":\"{id}\""));
    assert!(line.contains("access_endpoint_error"), "{line}");
    run.keep_screenshot("pages_browser-callback-block");

    // "Sign in with another account", with the keyboard: an interactive sign-in, as ada,
    // back to the page mallory was refused.
    run.follow_with_keyboard("Sign in with another account");
    let authorize = run.stack.emulator().authorize_endpoint();
    let at = run.ok(run
        .browser
        .wait_for_url("the sign-in page", WAIT, |url| url.starts_with(&authorize)));
    assert!(!at.contains("prompt=none"), "{at}");
    let landed = run.pick_user(&authorize, "ada");
    assert_eq!(landed, run.url("/staff/dashboard"));
    let echo: Value = serde_json::from_str(run.ok(run.browser.body_text()).trim()).unwrap();
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
}

#[test]
fn a_custom_page_replaces_the_default_one() {
    let Some(run) = start("custom_page") else {
        return;
    };
    run.ok(run.browser.goto(&run.url("/nowhere/at/all")));
    assert_eq!(run.ok(run.browser.title()), "Nothing here");
    let id = run.ok(run.ok(run.browser.find("#custom-id")).text());
    let line = decision_line(&run, id.trim());
    assert_eq!(line["outcome"], "no_app", "{line}");
    assert_eq!(line["status"], 404, "{line}");
    let source = run.ok(run.browser.page_source());
    assert!(!source.contains("{{"), "{source}");
    run.keep_screenshot("pages_browser-custom-not-found");
    run.accessible("custom page");
}

//! The team domain as the sign-in hub (`TEAM_DOMAIN_SIGN_IN=true`), over HTTP: one sign-in
//! with Entra on the team domain serves two app hosts; handoff tokens are refused on another
//! host, in another browser, a second time, tampered with or expired; a team session older
//! than an app's `session_duration` gives it no session; logouts end what they say; an app
//! allowing two providers answers the login chooser on the team domain, through which a partner
//! tenant's user reaches the app host; a silent sign-in Entra cannot finish turns interactive
//! on the team domain and still hands off to the app host.
//!
//! Three loopback host names reach the one worker (`team.localhost`, `app1.localhost`,
//! `app2.localhost`, each with the worker's port): requests go to 127.0.0.1 with the host name
//! in `Host`, as a browser that resolves `*.localhost` to loopback sends them. The endpoints
//! are under `ACCESS_PATH_PREFIX=/auth/edge`: `wrangler dev` answers `/cdn-cgi/…` on host
//! names other than its own with its own 403 ("Invalid Host header").

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test code: a failure panics"
)]

use std::sync::OnceLock;
use std::thread::sleep;
use std::time::Duration;

use edge_access_tests::browser::Run;
use edge_access_tests::hosts::{Agent, Hosts, BRIEF_SECS, PARTNER_IDP, SILENT_IDP};
use edge_access_tests::stack::Stack;
use entra_emulator::client::HttpClient;
use entra_emulator::urlencoded;
use serde_json::{json, Value};

/// The stack of `test`, or `None` when the end-to-end tests are skipped here.
fn hosts(test: &str) -> Option<&'static Hosts> {
    Stack::should_run(&format!("team_domain::{test}"))
        .unwrap()
        .then(shared)
}

/// One stack for the binary.
fn shared() -> &'static Hosts {
    static HOSTS: OnceLock<Result<Hosts, String>> = OnceLock::new();
    match HOSTS.get_or_init(|| Hosts::start("team_domain", true)) {
        Ok(hosts) => hosts,
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

fn claims(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

/// A full sign-in of `user` to `path` on app host `host`; returns the browser.
fn signed_in<'h>(hosts: &'h Hosts, host: &str, path: &str, user: &str) -> Agent<'h> {
    let mut browser = Agent::new(hosts);
    let team = browser.via_team(host, path);
    let handoff = browser.sign_in_at_team(&team, user);
    browser.take_handoff(&handoff, host, path);
    browser
}

#[test]
fn one_sign_in_on_the_team_domain_serves_two_app_hosts() {
    let Some(hosts) = hosts("one_sign_in_on_the_team_domain_serves_two_app_hosts") else {
        return;
    };
    let (app1, app2, team) = (hosts.app1(), hosts.app2(), hosts.team());
    let mut browser = Agent::new(hosts);
    let team_login = browser.via_team(&app1, "/docs?page=2");
    assert_eq!(
        urlencoded::query_pairs(&team_login)
            .and_then(|p| urlencoded::value(&p, "host").map(str::to_owned))
            .as_deref(),
        Some(app1.as_str())
    );
    let handoff = browser.sign_in_at_team(&team_login, "dora");
    let one = browser.take_handoff(&handoff, &app1, "/docs?page=2");
    let echoed = browser.reached(&app1, "/docs?page=2");
    assert_eq!(echoed["path"], "/docs?page=2", "{echoed}");

    // The app token names its app (and the other app of its host), never the other host's.
    let one_claims = claims(&one);
    let audiences = one_claims["aud"].as_array().unwrap();
    assert_eq!(audiences[0], "aud-one", "{one_claims}");
    assert!(!audiences.contains(&json!("aud-two")), "{one_claims}");
    assert_eq!(one_claims["email"], "dora@example.com");
    // The team session is for the team domain only.
    let team_token = browser.cookie(&team, "CF_Authorization").unwrap();
    assert_eq!(
        claims(&team_token)["aud"],
        json!([format!("https://{team}")])
    );

    // The second host: the team domain hands off at once, without Entra.
    let team_login = browser.via_team(&app2, "/");
    let handoff = browser.redirected(&team_login);
    let two = browser.take_handoff(&handoff, &app2, "/");
    browser.reached(&app2, "/");
    assert_eq!(claims(&two)["aud"][0], "aud-two");
    assert_ne!(claims(&two)["identity_nonce"], one_claims["identity_nonce"]);
    let line = hosts
        .stack
        .wait_for_log("sign_in_reused", Duration::from_secs(10))
        .unwrap();
    assert!(line.contains(&app2), "{line}");

    // Neither the team cookie nor another host's app cookie is a session on an app host.
    let mut stranger = Agent::new(hosts);
    stranger
        .jar
        .push((app2.clone(), "CF_Authorization".into(), one.clone()));
    assert_eq!(stranger.get(&format!("http://{app2}/")).status, 302);
    stranger.jar = vec![(app1.clone(), "CF_Authorization".into(), team_token)];
    assert_eq!(stranger.get(&format!("http://{app1}/")).status, 302);
}

#[test]
fn handoff_tokens_are_refused_anywhere_but_their_host_browser_and_first_use() {
    let Some(hosts) =
        hosts("handoff_tokens_are_refused_anywhere_but_their_host_browser_and_first_use")
    else {
        return;
    };
    let (app1, app2, team) = (hosts.app1(), hosts.app2(), hosts.team());
    let mut browser = signed_in(hosts, &app2, "/", "bob");

    // A handoff for app1 (the team session is reused).
    browser.forget(&app1, "CF_Authorization");
    let team_login = browser.via_team(&app1, "/x");
    let handoff = browser.redirected(&team_login);
    assert!(handoff.starts_with(&format!("http://{app1}/auth/edge/authorized?")));
    let token_query = handoff.split_once('?').unwrap().1.to_owned();

    let refused = |browser: &mut Agent<'_>, url: &str, what: &str| {
        let answer = browser.get(url);
        assert_eq!(answer.status, 403, "{what}: {answer:?}");
        assert!(
            answer
                .header_all("set-cookie")
                .iter()
                .all(|c| !c.starts_with("CF_Authorization=")),
            "{what}: {answer:?}"
        );
        assert!(!answer.body.contains("token="), "{what}: {answer:?}");
    };
    // On another app host, with that host's cookies.
    refused(
        &mut browser,
        &format!("http://{app2}/auth/edge/authorized?{token_query}"),
        "another host",
    );
    // On the team domain.
    refused(
        &mut browser,
        &format!("http://{team}/auth/edge/authorized?{token_query}"),
        "the team domain",
    );
    // In another browser (no sign-in cookie of app1's state).
    let mut other = Agent::new(hosts);
    refused(&mut other, &handoff, "another browser");
    // Changed by one character.
    let tampered = handoff.replacen("token=", "token=x", 1);
    refused(&mut browser, &tampered, "tampered");
    refused(
        &mut browser,
        &format!("http://{app1}/auth/edge/authorized"),
        "no token",
    );
    // The right host and browser: accepted once.
    browser.take_handoff(&handoff, &app1, "/x");
    refused(&mut browser, &handoff, "replayed");
    let log = hosts.stack.worker_log();
    for why in [
        "handoff: issued for another host",
        "handoff: presented on the team domain",
        "handoff: its sign-in belongs to another browser",
        "handoff: not issued here",
        "handoff: no token",
    ] {
        assert!(log.contains(why), "no `{why}` in the log");
    }
    assert!(!log.contains(&token_query), "a handoff token in the log");

    // The team domain hands off only to app hosts, only with its own fresh states.
    let state = urlencoded::query_pairs(&team_login)
        .and_then(|p| urlencoded::value(&p, "state").map(str::to_owned))
        .unwrap();
    let team_url = |host: &str, state: &str| {
        format!(
            "http://{team}/auth/edge/login?{}",
            urlencoded::encode_pairs(&[("host", host), ("state", state), ("redirect_url", "/")])
        )
    };
    for (host, state, what) in [
        ("evil.localhost", state.as_str(), "a host no app covers"),
        (team.as_str(), state.as_str(), "the team domain itself"),
        ("app1.localhost@evil.example", state.as_str(), "userinfo"),
        ("app1.localhost/x", state.as_str(), "a path"),
        (app1.as_str(), "bm90LWEtc3RhdGU", "a state not issued here"),
    ] {
        let answer = browser.get(&team_url(host, state));
        assert_eq!(answer.status, 400, "{what}: {answer:?}");
        assert!(answer.header("location").is_none(), "{what}: {answer:?}");
    }
}

#[test]
fn an_expired_handoff_is_refused() {
    let Some(hosts) = hosts("an_expired_handoff_is_refused") else {
        return;
    };
    let app1 = hosts.app1();
    let mut browser = Agent::new(hosts);
    let team_login = browser.via_team(&app1, "/late");
    let handoff = browser.sign_in_at_team(&team_login, "dora");
    sleep(Duration::from_secs(31));
    let answer = browser.get(&handoff);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(browser.cookie(&app1, "CF_Authorization").is_none());
    hosts
        .stack
        .wait_for_log("handoff: expired", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn an_app_session_counts_from_the_sign_in_and_never_outlives_its_app() {
    let Some(hosts) = hosts("an_app_session_counts_from_the_sign_in_and_never_outlives_its_app")
    else {
        return;
    };
    let app1 = hosts.app1();
    // Signed in through app one (24 hours), whose host cookie also reaches the brief app.
    let mut browser = signed_in(hosts, &app1, "/", "dora");
    browser.reached(&app1, "/brief/a");
    sleep(Duration::from_secs(BRIEF_SECS + 1));
    // App one, on the same host and cookie, keeps its session; the brief app does not.
    browser.reached(&app1, "/");
    let team_login = browser.via_team(&app1, "/brief/a");
    // The team session is older than the brief app allows: no silent handoff, and the
    // handoff step sends the user to sign in with Entra again.
    let handoff = browser.redirected(&team_login);
    let again = browser.redirected(&handoff);
    assert!(again.contains("fresh=1"), "{again}");
    let team_login = browser.redirected(&again);
    assert!(team_login.contains("fresh=1"), "{team_login}");
    let handoff = browser.sign_in_at_team(&team_login, "dora");
    browser.take_handoff(&handoff, &app1, "/brief/a");
    browser.reached(&app1, "/brief/a");
}

#[test]
fn logout_on_an_app_host_ends_its_session_and_on_the_team_domain_every_one() {
    let Some(hosts) =
        hosts("logout_on_an_app_host_ends_its_session_and_on_the_team_domain_every_one")
    else {
        return;
    };
    let (app1, app2, team) = (hosts.app1(), hosts.app2(), hosts.team());
    let mut browser = signed_in(hosts, &app1, "/", "bob");
    let team_login = browser.via_team(&app2, "/");
    let handoff = browser.redirected(&team_login);
    browser.take_handoff(&handoff, &app2, "/");
    let one = browser.cookie(&app1, "CF_Authorization").unwrap();
    let two = browser.cookie(&app2, "CF_Authorization").unwrap();

    // App one's logout: its session ends, app two's does not.
    assert_eq!(
        browser
            .get(&format!("http://{app1}/auth/edge/logout"))
            .status,
        200
    );
    let mut replay = Agent::new(hosts);
    replay.jar = vec![(app1.clone(), "CF_Authorization".into(), one)];
    assert_eq!(replay.get(&format!("http://{app1}/")).status, 302);
    browser.reached(&app2, "/");

    // The team domain's logout: every app session it gave ends, and so does its own.
    assert_eq!(
        browser
            .get(&format!("http://{team}/auth/edge/logout"))
            .status,
        200
    );
    replay.jar = vec![(app2.clone(), "CF_Authorization".into(), two)];
    assert_eq!(replay.get(&format!("http://{app2}/")).status, 302);
    // Back to app one: the team domain has no session, so Entra again.
    let team_login = browser.via_team(&app1, "/");
    let authorize = browser.redirected(&team_login);
    assert!(
        authorize.starts_with(&hosts.stack.emulator().authorize_endpoint()),
        "{authorize}"
    );
}

/// The `href` of the link on `page` whose URL holds `needle`, unescaped.
fn link_holding(page: &str, needle: &str) -> String {
    page.split("href=\"")
        .skip(1)
        .filter_map(|rest| rest.split_once('"').map(|(href, _)| href))
        .find(|href| href.contains(needle))
        .unwrap_or_else(|| panic!("no link with `{needle}`: {page}"))
        .replace("&amp;", "&")
}

#[test]
fn the_chooser_on_the_team_domain_signs_a_partner_in_for_an_app_host() {
    let Some(hosts) = hosts("the_chooser_on_the_team_domain_signs_a_partner_in_for_an_app_host")
    else {
        return;
    };
    let (app2, team) = (hosts.app2(), hosts.team());
    let partner = hosts.stack.emulator().partner().unwrap();
    let mut browser = Agent::new(hosts);

    // An app allowing two providers: the team domain answers the chooser.
    let team_login = browser.via_team(&app2, "/both/page");
    let chooser = browser.get(&team_login);
    assert_eq!(chooser.status, 200, "{chooser:?}");
    assert!(
        chooser.body.contains("Sign in to Shared with partners"),
        "{}",
        chooser.body
    );
    assert!(chooser.body.contains("Sign in with Emulated Entra ID</a>"));
    assert!(chooser.body.contains("Sign in with Fabrikam partners</a>"));
    let link = link_holding(&chooser.body, &format!("idp={PARTNER_IDP}&"));
    assert!(link.starts_with("/auth/edge/login?"), "{link}");

    // Through the partner's tenant, then handed back to the app host.
    let handoff = browser.sign_in_at_team_with(&format!("http://{team}{link}"), partner, "pat");
    browser.take_handoff(&handoff, &app2, "/both/page");
    let echoed = browser.reached(&app2, "/both/page");
    assert_eq!(
        echoed["headers"]["cf-access-authenticated-user-email"], "pat@fabrikam.example",
        "{echoed}"
    );

    // The app session serves the host's other app, whose policy refuses the partner's user.
    let two = browser.get(&format!("http://{app2}/"));
    assert_eq!(two.status, 403, "{two:?}");
    assert!(two.body.contains("pat@fabrikam.example"), "{}", two.body);
    // The partner's team session is no sign-in for another host's app that allows the
    // organisation's provider only: the team domain sends the browser to the organisation's
    // tenant.
    let team_login = browser.via_team(&hosts.app1(), "/");
    let authorize = browser.redirected(&team_login);
    assert!(
        authorize.starts_with(&hosts.stack.emulator().authorize_endpoint()),
        "{authorize}"
    );
}

#[test]
fn a_silent_sign_in_entra_cannot_finish_turns_interactive_through_the_hub() {
    let Some(hosts) =
        hosts("a_silent_sign_in_entra_cannot_finish_turns_interactive_through_the_hub")
    else {
        return;
    };
    let (app1, team) = (hosts.app1(), hosts.team());
    let emulator = hosts.stack.emulator();
    let mut browser = Agent::new(hosts);

    // The provider signs in silently first; nobody is signed in at Entra.
    let team_login = browser.via_team(&app1, "/quiet/report?q=1");
    let authorize = browser.redirected(&team_login);
    let prompt = |url: &str| {
        urlencoded::query_pairs(url)
            .and_then(|p| urlencoded::value(&p, "prompt").map(str::to_owned))
    };
    assert_eq!(prompt(&authorize).as_deref(), Some("none"), "{authorize}");
    let silent = HttpClient::new().get(&authorize).unwrap();
    assert_eq!(silent.status, 302, "{silent:?}");
    let callback = silent.header("location").unwrap().to_owned();
    assert!(callback.starts_with(&format!("http://{team}/auth/edge/callback?")));
    assert!(callback.contains("error=login_required"), "{callback}");

    // The team domain starts again, interactive, still for the app host and its sign-in…
    let again = browser.redirected(&callback);
    assert!(
        again.starts_with(&format!("http://{team}/auth/edge/login?")),
        "{again}"
    );
    for (name, value) in [
        ("interactive", "1"),
        ("idp", SILENT_IDP),
        ("host", app1.as_str()),
    ] {
        let found = urlencoded::query_pairs(&again)
            .and_then(|p| urlencoded::value(&p, name).map(str::to_owned));
        assert_eq!(found.as_deref(), Some(value), "{name}: {again}");
    }
    // …where Entra lets the user pick the account; then the handoff to the app host.
    let handoff = browser.sign_in_at_team(&again, "ada");
    assert!(emulator
        .authorize_prompts()
        .contains(&Some("select_account".to_owned())));
    browser.take_handoff(&handoff, &app1, "/quiet/report?q=1");
    let echoed = browser.reached(&app1, "/quiet/report?q=1");
    assert_eq!(
        echoed["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    hosts
        .stack
        .wait_for_log("sign_in_interactive", Duration::from_secs(10))
        .unwrap();
}

/// In headless Chromium, which resolves `*.localhost` to loopback itself: the browser signs in
/// once (the emulator's page, on the way to app one), then reaches app two through the team
/// domain without seeing Entra again — waiting for app two's page would time out on the
/// emulator's, which needs a click.
#[test]
fn in_chromium_one_sign_in_reaches_two_hosts() {
    let Some(run) = Run::start(
        "team_domain",
        "in_chromium_one_sign_in_reaches_two_hosts",
        || &shared().stack,
    ) else {
        return;
    };
    let hosts = shared();
    let wait = Duration::from_secs(30);
    let (app1, app2) = (hosts.app1(), hosts.app2());
    let authorize = hosts.stack.emulator().authorize_endpoint();
    let one = format!("http://{app1}/hello?from=chromium");
    run.ok(run.browser.goto(&one));
    run.ok(run
        .browser
        .wait_for_url("Entra's sign-in page", wait, |url| {
            url.starts_with(&authorize)
        }));
    let landed = run.pick_user(&authorize, "dora");
    assert_eq!(landed, one);
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("dora@example.com"), "{text}");

    let two = format!("http://{app2}/there");
    run.ok(run.browser.goto(&two));
    run.ok(run
        .browser
        .wait_for_url("app two's page, with no second sign-in", wait, |url| {
            url == two
        }));
    let text = run.ok(run.browser.body_text());
    assert!(text.contains("dora@example.com"), "{text}");
    run.keep_screenshot("team_domain-app-two");
}

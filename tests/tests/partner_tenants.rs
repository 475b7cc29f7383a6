//! Several Entra providers — the organisation's tenant and a partner's (the emulator's partner
//! tenant, its own keys, users and client secret) — end to end at the HTTP level: bearer tokens
//! of each tenant against its own issuer and keys, admitted only where a policy admits their
//! provider; a token signed by one tenant's key claiming the other refused; the login chooser;
//! `idp` checked against the app's providers; a partner sign-in redeemed with the partner's
//! own secret (`AZURE_CLIENT_SECRET_<id>`) and nothing else.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it); see `harness.rs`.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

mod partner_common;
mod signin_common;

use std::time::Duration;

use edge_access_tests::stack::Stack;
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::urlencoded;
use entra_emulator::TokenRequest;
use partner_common::{HOME, PARTNER, PARTNER_NAME, PARTNER_UNSET, SHARED_APP_NAME};
use signin_common::Agent;

const BINARY: &str = "partner_tenants";

fn stack(test: &str) -> Option<&'static Stack> {
    if !Stack::should_run(&format!("{BINARY}::{test}")).unwrap() {
        return None;
    }
    Some(partner_common::stack(BINARY))
}

fn bearer(stack: &Stack, path: &str, token: &str) -> HttpResponse {
    HttpClient::with_timeout(Duration::from_secs(20))
        .get_with(
            &format!("{}{path}", stack.url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
}

/// The answers to `token` at each path, as `(path, status)`.
fn statuses(stack: &Stack, token: &str, paths: &[&str]) -> Vec<(String, u16)> {
    paths
        .iter()
        .map(|path| ((*path).to_owned(), bearer(stack, path, token).status))
        .collect()
}

/// Whether some tag of `html` (lower case) has an `on…=` attribute.
fn has_event_handler(html: &str) -> bool {
    html.split('<').skip(1).any(|tag| {
        let tag = tag.split('>').next().unwrap_or_default();
        tag.split(|c: char| c.is_ascii_whitespace())
            .skip(1)
            .any(|attribute| attribute.starts_with("on") && attribute.contains('='))
    })
}

fn query(url: &str, name: &str) -> Option<String> {
    let pairs = urlencoded::query_pairs(url).unwrap();
    urlencoded::value(&pairs, name).map(str::to_owned)
}

/// `/cdn-cgi/access/login` for `path`, with `idp` when given.
fn login_path(path: &str, idp: Option<&str>) -> String {
    let mut pairs = Vec::new();
    if let Some(idp) = idp {
        pairs.push(("idp", idp));
    }
    pairs.push(("redirect_url", path));
    format!("/cdn-cgi/access/login?{}", urlencoded::encode_pairs(&pairs))
}

const PATHS: [&str; 6] = [
    "/both/",
    "/any/",
    "/home/",
    "/staff/",
    "/partners/",
    "/scoped/",
];

#[test]
fn bearer_tokens_of_each_tenant_are_admitted_where_their_provider_is() {
    let Some(stack) = stack("bearer_tokens_of_each_tenant_are_admitted_where_their_provider_is")
    else {
        return;
    };
    let emulator = stack.emulator();
    let partner = emulator.partner().unwrap();

    let ada = emulator.mint(&TokenRequest::v2("ada")).unwrap();
    assert_eq!(
        statuses(stack, &ada, &PATHS),
        [
            ("/both/".into(), 200),
            ("/any/".into(), 200),
            ("/home/".into(), 200),
            ("/staff/".into(), 200),
            ("/partners/".into(), 403),
            ("/scoped/".into(), 403),
        ]
    );
    assert_eq!(bearer(stack, "/eng/", &ada).status, 200);

    // The partner's user: in Fabrikam contractors of the partner's provider, never of the
    // organisation's (`/scoped`), never in a group of the organisation (`/eng`).
    for request in [TokenRequest::v2("pat"), TokenRequest::v1("pat")] {
        let pat = partner.mint(&request).unwrap();
        assert_eq!(
            statuses(stack, &pat, &PATHS),
            [
                ("/both/".into(), 200),
                ("/any/".into(), 200),
                ("/home/".into(), 403),
                ("/staff/".into(), 403),
                ("/partners/".into(), 200),
                ("/scoped/".into(), 403),
            ],
            "v{}",
            request.version
        );
        assert_eq!(bearer(stack, "/eng/", &pat).status, 403);
    }
    let answer = bearer(
        stack,
        "/partners/",
        &partner.mint(&TokenRequest::v2("pat")).unwrap(),
    );
    let echoed = signin_common::echoed(&answer);
    assert_eq!(
        echoed["headers"]["cf-access-authenticated-user-email"],
        "pat@fabrikam.example"
    );
    // Quinn is in no group: only the provider admits him.
    let quinn = partner.mint(&TokenRequest::v2("quinn")).unwrap();
    assert_eq!(bearer(stack, "/partners/", &quinn).status, 200);
    assert_eq!(bearer(stack, "/home/", &quinn).status, 403);
}

/// Forged tokens are issued well before the gateway's last fetch of the keys they claim, so a
/// `kid` missing from those keys is refused outright (401) rather than fetched for (503).
const ISSUED_LONG_AGO: i64 = -20 * 60;

#[test]
fn a_token_signed_by_one_tenant_claiming_the_other_is_refused() {
    let Some(stack) = stack("a_token_signed_by_one_tenant_claiming_the_other_is_refused") else {
        return;
    };
    let emulator = stack.emulator();
    let partner = emulator.partner().unwrap();

    // The organisation's key, claiming the partner tenant (its `tid`, issuer and audience).
    let forged = emulator
        .mint(
            &TokenRequest::v2("ada")
                .with_issued_at_offset_secs(ISSUED_LONG_AGO)
                .with_audience(partner.client_id())
                .with_claim("tid", partner.tenant_id())
                .with_claim("iss", partner.v2_issuer()),
        )
        .unwrap();
    for path in ["/both/", "/any/", "/partners/"] {
        assert_eq!(bearer(stack, path, &forged).status, 401, "{path}");
    }
    // The partner's key, claiming the organisation's tenant.
    let forged = partner
        .mint(
            &TokenRequest::v2("pat")
                .with_issued_at_offset_secs(ISSUED_LONG_AGO)
                .with_audience(emulator.client_id())
                .with_claim("tid", emulator.tenant_id())
                .with_claim("iss", emulator.v2_issuer()),
        )
        .unwrap();
    for path in ["/both/", "/home/", "/staff/"] {
        assert_eq!(bearer(stack, path, &forged).status, 401, "{path}");
    }
    // A partner token with the partner's issuer but the organisation's `tid`, and the reverse:
    // each tenant's token is held to its own issuer.
    let mixed = partner
        .mint(
            &TokenRequest::v2("pat")
                .with_issued_at_offset_secs(ISSUED_LONG_AGO)
                .with_claim("tid", emulator.tenant_id()),
        )
        .unwrap();
    assert_eq!(bearer(stack, "/both/", &mixed).status, 401);
    // A partner token for the organisation's audience.
    let wrong_audience = partner
        .mint(&TokenRequest::v2("pat").with_audience(emulator.client_id()))
        .unwrap();
    assert_eq!(bearer(stack, "/both/", &wrong_audience).status, 401);
}

#[test]
fn an_app_with_several_providers_answers_the_login_chooser() {
    let Some(stack) = stack("an_app_with_several_providers_answers_the_login_chooser") else {
        return;
    };
    let mut agent = Agent::new(stack);
    let protected = agent.navigate("/both/page?x=1");
    assert_eq!(protected.status, 302, "{protected:?}");
    let login = protected.header("location").unwrap().to_owned();
    let chooser = agent.navigate(&login);
    assert_eq!(chooser.status, 200, "{chooser:?}");
    assert_eq!(
        chooser.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(chooser.header("cache-control"), Some("no-store"));
    let csp = chooser.header("content-security-policy").unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    let page = &chooser.body;
    assert!(
        agent.binding_cookie().is_none(),
        "the chooser starts no sign-in"
    );

    // No script, every configured string escaped.
    let lower = page.to_ascii_lowercase();
    assert!(
        !lower.contains("<script") && !lower.contains("javascript:"),
        "{page}"
    );
    assert!(!has_event_handler(&lower), "{page}");
    assert!(
        !page.contains(SHARED_APP_NAME) && !page.contains(PARTNER_NAME),
        "{page}"
    );
    assert!(
        page.contains("<title>Sign in to Shared &lt;b&gt;wiki&lt;/b&gt;</title>"),
        "{page}"
    );
    assert!(
        page.contains("Sign in with Fabrikam &lt;Partners&gt; &amp; &quot;Co&quot;"),
        "{page}"
    );
    assert!(
        page.contains("<main>") && page.contains("<h1 ") && page.contains("<nav "),
        "{page}"
    );

    // A link per allowed provider, in order, each starting the sign-in with it.
    let hrefs: Vec<String> = page
        .split("<a href=\"")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().replace("&amp;", "&"))
        .collect();
    assert_eq!(
        hrefs,
        [
            login_path("/both/page?x=1", Some(HOME)),
            login_path("/both/page?x=1", Some(PARTNER)),
        ]
    );
    let emulator = stack.emulator();
    let partner = emulator.partner().unwrap();
    for (href, tenant) in [(&hrefs[0], emulator), (&hrefs[1], partner)] {
        let started = agent.navigate(href);
        assert_eq!(started.status, 302, "{started:?}");
        let authorize = started.header("location").unwrap();
        assert!(
            authorize.starts_with(&tenant.authorize_endpoint()),
            "{href} → {authorize}"
        );
        assert_eq!(
            query(authorize, "client_id").as_deref(),
            Some(tenant.client_id())
        );
    }

    // Without `allowed_idps`, the document's providers (all three).
    let chooser = agent.navigate(&login_path("/any/", None));
    assert_eq!(chooser.status, 200, "{chooser:?}");
    assert_eq!(
        chooser.body.matches("<li><a href=").count(),
        3,
        "{}",
        chooser.body
    );
}

#[test]
fn one_provider_or_auto_redirect_goes_straight_to_entra() {
    let Some(stack) = stack("one_provider_or_auto_redirect_goes_straight_to_entra") else {
        return;
    };
    let emulator = stack.emulator();
    let partner = emulator.partner().unwrap();
    for (path, tenant) in [
        ("/home/x", emulator),
        ("/auto/x", emulator),
        ("/unset/x", partner),
    ] {
        let mut agent = Agent::new(stack);
        let answer = agent.navigate(&login_path(path, None));
        assert_eq!(answer.status, 302, "{path}: {answer:?}");
        let authorize = answer.header("location").unwrap();
        assert!(
            authorize.starts_with(&tenant.authorize_endpoint()),
            "{path} → {authorize}"
        );
        assert!(agent.binding_cookie().is_some(), "{path}");
    }
}

#[test]
fn an_idp_the_app_does_not_allow_is_refused() {
    let Some(stack) = stack("an_idp_the_app_does_not_allow_is_refused") else {
        return;
    };
    for (path, idp, reason) in [
        (
            "/home/x",
            PARTNER,
            format!("`{PARTNER}` refused: not one app `home` allows"),
        ),
        (
            "/both/x",
            PARTNER_UNSET,
            format!("`{PARTNER_UNSET}` refused: not one app `both` allows"),
        ),
        (
            "/both/x",
            "nobody",
            "`nobody` refused: not one app `both` allows".to_owned(),
        ),
        (
            "/nowhere",
            "nobody",
            "`nobody` refused: no identity provider of the configuration".to_owned(),
        ),
    ] {
        let mut agent = Agent::new(stack);
        let answer = agent.navigate(&login_path(path, Some(idp)));
        assert_eq!(answer.status, 400, "{path} {idp}: {answer:?}");
        assert!(answer.header("location").is_none());
        assert!(!answer.body.contains(idp), "{}", answer.body);
        assert!(agent.binding_cookie().is_none());
        stack
            .wait_for_log(&reason, Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("{reason}: {e}"));
    }
}

/// Signs in at `tenant`'s page as `user` through `login` (a path with `idp`): the callback's
/// answer.
fn sign_in_with(
    agent: &mut Agent<'_>,
    tenant: &entra_emulator::Emulator,
    login: &str,
    user: &str,
) -> HttpResponse {
    let started = agent.navigate(login);
    assert_eq!(started.status, 302, "{login}: {started:?}");
    let authorize = started.header("location").unwrap().to_owned();
    assert!(
        authorize.starts_with(&tenant.authorize_endpoint()),
        "{authorize}"
    );
    let callback = tenant.sign_in(&authorize, user).unwrap();
    agent.navigate(&callback)
}

#[test]
fn a_partner_sign_in_uses_the_partner_tenant_and_its_own_secret() {
    let Some(stack) = stack("a_partner_sign_in_uses_the_partner_tenant_and_its_own_secret") else {
        return;
    };
    let emulator = stack.emulator();
    let partner = emulator.partner().unwrap();

    // Admitted where a policy admits the partner's provider.
    for path in ["/both/x", "/partners/x", "/any/x"] {
        let mut agent = Agent::new(stack);
        let redeemed = partner.codes_redeemed();
        let answer = sign_in_with(&mut agent, partner, &login_path(path, Some(PARTNER)), "pat");
        assert_eq!(answer.status, 302, "{path}: {answer:?}");
        assert_eq!(answer.header("location"), Some(path));
        assert_eq!(partner.codes_redeemed(), redeemed + 1);
        let echoed = signin_common::echoed(&agent.navigate(path));
        assert_eq!(
            echoed["headers"]["cf-access-authenticated-user-email"],
            "pat@fabrikam.example"
        );
        let identity = agent.api("/cdn-cgi/access/get-identity");
        assert_eq!(identity.status, 200, "{identity:?}");
        assert_eq!(identity.json().unwrap()["idp"]["id"], PARTNER);
    }

    // Refused where only the organisation's provider is admitted.
    for path in ["/staff/x", "/scoped/x"] {
        let mut agent = Agent::new(stack);
        let answer = sign_in_with(&mut agent, partner, &login_path(path, Some(PARTNER)), "pat");
        assert_eq!(answer.status, 403, "{path}: {answer:?}");
        assert!(agent.cookie("CF_Authorization").is_none());
    }

    // The organisation's user through the organisation's provider, on the same app.
    let mut agent = Agent::new(stack);
    let answer = sign_in_with(
        &mut agent,
        emulator,
        &login_path("/both/x", Some(HOME)),
        "ada",
    );
    assert_eq!(answer.status, 302, "{answer:?}");

    // The provider without a secret of its own sends the organisation's: the partner tenant
    // refuses it, and nobody is signed in.
    let mut agent = Agent::new(stack);
    let answer = sign_in_with(&mut agent, partner, &login_path("/unset/x", None), "pat");
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_none());
    stack
        .wait_for_log("sign-in failed: token endpoint", Duration::from_secs(10))
        .unwrap();
}

#[test]
fn a_code_of_one_tenant_is_not_redeemed_at_the_other() {
    let Some(stack) = stack("a_code_of_one_tenant_is_not_redeemed_at_the_other") else {
        return;
    };
    let emulator = stack.emulator();
    let partner = emulator.partner().unwrap();
    // A sign-in started with the organisation's provider, finished with a code the partner
    // tenant issued for the gateway's partner registration (same redirect URI and state).
    let mut agent = Agent::new(stack);
    let started = agent.navigate(&login_path("/both/x", Some(HOME)));
    let authorize = started.header("location").unwrap().to_owned();
    let state = query(&authorize, "state").unwrap();
    let partner_authorize = partner.authorize_url(
        &format!("{}/cdn-cgi/access/callback", stack.url()),
        &state,
        &query(&authorize, "nonce").unwrap(),
        None,
    );
    let callback = partner.sign_in(&partner_authorize, "pat").unwrap();
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_none());
}

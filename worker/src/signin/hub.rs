//! The team domain as the sign-in hub (`TEAM_DOMAIN_SIGN_IN=true`), as Access signs in: one
//! redirect URI registered in Entra (`https://<team domain><prefix>/callback`) serves every
//! protected host.
//!
//! 1. An app host's `login` ([`to_team`]) keeps the sign-in it starts in the browser (the
//!    `EA_Login_…` cookie of [`crate::pending`], on the app host: the state, where to return)
//!    and sends the browser to the team domain's `login` with the app host and that state.
//! 2. The team domain ([`at_team`]) checks that it issued the state and that an app covers the
//!    host; then it reuses its own session (the `CF_Authorization` cookie on the team domain)
//!    silently, or signs the user in with Entra (its callback stores the team session).
//! 3. It hands off ([`handoff_redirect`]): a handoff token, sealed ([`crate::sealed`]) under a
//!    key derived from the signing key, naming the app host, the app host's state and the team
//!    session, valid for [`HANDOFF_TTL`], to `{app host}<prefix>/authorized`.
//! 4. The app host ([`authorized`]) accepts it only on the host it names, only in the browser
//!    that holds the state's cookie (which also says where to return: nothing in the URL does),
//!    only once (the state is spent in `login_used`), only before it expires, and only while
//!    the team session lives. It decides the app's policies for the identity, stores the app's
//!    own session (a child of the team session) and sets the host's cookie.
//!
//! Session ages count from the sign-in with Entra: an app session is as old as the team session
//! it came from, so a team session older than an app's `session_duration` never gives that app
//! a session; the user signs in with Entra again ([`FRESH`]). A logout on an app host ends that
//! app's session; on the team domain it ends the team session and every app session it gave.

use std::time::Duration;

use edge_access_token::AppClaims;
use serde::{Deserialize, Serialize};
use worker::{Env, Request, Response, Url};

use super::callback::{admit, store_session};
use super::login::{self, Choice};
use super::{local_path, signing_keys};
use crate::config::Gateway;
use crate::context::Context;
use crate::crypto::random_token;
use crate::directory;
use crate::endpoints::{authority, Hub};
use crate::error::{GatewayError, Stop};
use crate::http::{query, redirect};
use crate::pending::{self, HandoffTarget, Pending};
use crate::refusal::Refusal;
use crate::sealed::Sealer;
use crate::session::{self, Session};
use crate::session_store::{self, StoredIdentity};
use crate::time::UnixMillis;

/// How long a handoff token is accepted after the team domain issued it.
pub const HANDOFF_TTL: Duration = Duration::from_secs(30);

/// The purpose handoff tokens are sealed for ([`crate::sealed`]).
const HANDOFF: &str = "sign-in handoff";

/// The query parameter that asks for a sign-in with Entra even when the team domain has a
/// session (the team session is older than the app allows).
pub const FRESH: &str = "fresh";

/// The audience of team-domain session tokens: the team domain itself, never an app's `aud`,
/// so a team session cookie replayed on an app host is no session there.
pub fn team_audience(gateway: &Gateway) -> &str {
    gateway.engine.team_domain()
}

/// Step 1, on an app host: keep the sign-in in this browser (state, target) and send it to
/// the team domain. `idp`, when given, must be one the app allows (400 here otherwise).
pub fn to_team(
    request: &Request,
    gateway: &Gateway,
    hub: &Hub,
    url: &Url,
    redirect_path: &str,
) -> Result<Response, Stop> {
    let host = authority(url);
    let choice = Choice::of(gateway, &host, redirect_path);
    let idp = query(url, "idp")
        .map(|id| choice.allowed(&id).map(|p| p.id.to_string()))
        .transpose()?;
    let keys = pending::Keys::new(signing_keys(gateway)?)?;
    let (state, issued) = keys.issue(UnixMillis::now())?;
    let cookie = issued.seal(&Pending {
        state: state.clone(),
        idp_id: idp.clone().unwrap_or_default(),
        ..Pending::returning_to(redirect_path.to_owned(), None)
    })?;
    let mut team = Url::parse(&format!(
        "{}{}",
        hub.origin(url.scheme()),
        gateway.endpoints.path("login")
    ))
    .map_err(|e| GatewayError::Config(format!("team domain: {e}")))?;
    {
        let mut q = team.query_pairs_mut();
        q.append_pair("host", &host)
            .append_pair("state", &state)
            .append_pair("redirect_url", redirect_path);
        if let Some(idp) = &idp {
            q.append_pair("idp", idp);
        }
        for flag in ["interactive", FRESH] {
            if query(url, flag).as_deref() == Some("1") {
                q.append_pair(flag, "1");
            }
        }
    }
    let cookie_path = gateway.endpoints.cookie_path();
    let mut cookies = pending::evictions(&keys, request.headers(), &cookie_path);
    cookies.push(pending::set_cookie(&state, Some(&cookie), &cookie_path));
    Ok(redirect(team.as_str(), &cookies))
}

/// Step 2, on the team domain: `login?host=…&state=…&redirect_url=…`. The state must be one
/// this gateway issued and still fresh, and an app must cover the target on that host (never
/// the team domain); then the team session is reused when it can be, else the sign-in with
/// Entra starts with the handoff target kept in the team domain's own sign-in cookie.
pub async fn at_team(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    hub: &Hub,
    url: &Url,
    host: &str,
    request_id: &str,
) -> Result<Response, Stop> {
    let bad = |why: String| Stop::Refused(Refusal::BadRequest(why));
    let host = host.to_ascii_lowercase();
    let state = query(url, "state").ok_or_else(|| bad("team sign-in without state".into()))?;
    let now = UnixMillis::now();
    let keys = pending::Keys::new(signing_keys(gateway)?)?;
    if !keys
        .check(&state)
        .is_some_and(|issued| issued.fresh_at(now))
    {
        return Err(bad(
            "team sign-in with a state not issued here, or too old".into()
        ));
    }
    let redirect_path = pending::bounded_target(local_path(query(url, "redirect_url").as_deref()));
    if hub.is_team(&host) || !valid_authority(&host) {
        return Err(bad(format!(
            "team sign-in for host `{}` refused",
            host.chars().take(64).collect::<String>()
        )));
    }
    let choice = Choice::of(gateway, &host, &redirect_path);
    if choice.app.is_none() {
        return Err(bad(format!(
            "team sign-in for `{}` refused: no app covers it",
            host.chars().take(64).collect::<String>()
        )));
    }
    let target = HandoffTarget {
        host: host.clone(),
        state,
    };
    let requested = query(url, "idp")
        .map(|id| choice.allowed(&id).map(|p| p.id.to_string()))
        .transpose()?;
    let reuse = query(url, "interactive").as_deref() != Some("1")
        && query(url, FRESH).as_deref() != Some("1");
    if reuse {
        if let Some(team) = team_session(request, env, gateway, now).await? {
            let provider = team.identity.idp_id.clone().unwrap_or_default();
            let allowed = choice.providers.iter().any(|p| *p.id == *provider)
                && requested.as_ref().is_none_or(|id| *id == provider);
            if allowed {
                crate::log::event(
                    "sign_in_reused",
                    &[("user", &team.user), ("host", &target.host)],
                );
                return handoff_redirect(gateway, url.scheme(), &target, &team.identity_nonce);
            }
        }
    }
    login::start_or_choose(
        request,
        gateway,
        url,
        &choice,
        requested.as_deref(),
        Pending::returning_to(redirect_path, Some(target)),
        request_id,
    )
}

/// The live team session of this browser, if any (its cookie on the team domain).
async fn team_session(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    now: UnixMillis,
) -> Result<Option<Session>, GatewayError> {
    let Some(token) = session::cookie(request.headers(), session::COOKIE) else {
        return Ok(None);
    };
    session::lookup(env, gateway, &token, Some(team_audience(gateway)), now).await
}

/// A plausible `host[:port]`: letters, digits, `-`, `.`, and one `:port` of digits; no
/// userinfo, path, or anything a URL would read differently.
fn valid_authority(authority: &str) -> bool {
    let (host, port) = match authority.rsplit_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (authority, None),
    };
    !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && port
            .is_none_or(|p| !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()))
}

/// Step 3: the redirect to `{target host}<prefix>/authorized?token=…` with a handoff token
/// for the team session `team_nonce`.
pub fn handoff_redirect(
    gateway: &Gateway,
    scheme: &str,
    target: &HandoffTarget,
    team_nonce: &str,
) -> Result<Response, Stop> {
    let keys = Sealer::new(signing_keys(gateway)?, HANDOFF)?;
    let now = UnixMillis::now();
    let token = keys.seal(&Handoff {
        host: target.host.clone(),
        state: target.state.clone(),
        team_nonce: team_nonce.to_owned(),
        expires_s: now.saturating_add(HANDOFF_TTL).unix_secs(),
    })?;
    let mut to = Url::parse(&format!(
        "{scheme}://{}{}",
        target.host,
        gateway.endpoints.path("authorized")
    ))
    .map_err(|e| GatewayError::Internal(format!("handoff URL: {e}")))?;
    to.query_pairs_mut().append_pair("token", &token);
    Ok(redirect(to.as_str(), &[]))
}

/// What a handoff token says.
#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
struct Handoff {
    /// The app host it is for (`host[:port]`, lowercase).
    #[serde(rename = "h")]
    host: String,
    /// The app host's sign-in state (its `EA_Login_…` cookie binds the browser).
    #[serde(rename = "s")]
    state: String,
    /// The team session's `identity_nonce`.
    #[serde(rename = "n")]
    team_nonce: String,
    /// When it stops being accepted (Unix seconds).
    #[serde(rename = "e")]
    expires_s: u64,
}

/// Step 4, on an app host: `GET <prefix>/authorized?token=…`.
pub async fn authorized(request: &Request, env: &Env, gateway: &Gateway) -> Result<Response, Stop> {
    let refused = |why: &str| Stop::Refused(Refusal::SignInFailed(format!("handoff: {why}")));
    let url = request.url()?;
    let Some(hub) = &gateway.hub else {
        return Err(Stop::Refused(Refusal::NoApp));
    };
    let host = authority(&url);
    if hub.is_team(&host) {
        return Err(refused("presented on the team domain"));
    }
    let token = query(&url, "token").ok_or_else(|| refused("no token"))?;
    let handoff: Handoff = Sealer::new(signing_keys(gateway)?, HANDOFF)?
        .open(&token)
        .ok_or_else(|| refused("not issued here"))?;
    if handoff.host != host {
        return Err(refused("issued for another host"));
    }
    let now = UnixMillis::now();
    if now.unix_secs() > handoff.expires_s {
        return Err(refused("expired"));
    }
    let state_keys = pending::Keys::new(signing_keys(gateway)?)?;
    let issued = state_keys
        .check(&handoff.state)
        .filter(|issued| issued.fresh_at(now))
        .ok_or_else(|| refused("its sign-in is not this gateway's, or too old"))?;
    let login = session::cookie(request.headers(), &pending::cookie_name(&handoff.state))
        .and_then(|value| issued.open(&value))
        .filter(|login| login.state == handoff.state && login.handoff.is_none())
        .ok_or_else(|| refused("its sign-in belongs to another browser"))?;
    if !pending::consume(env, &handoff.state, now).await? {
        return Err(refused("already used"));
    }
    let row = session_store::live(&env.d1("DB")?, &handoff.team_nonce, now)
        .await?
        .ok_or_else(|| refused("the team session ended"))?;
    let stored: StoredIdentity = serde_json::from_str(&row.identity)
        .map_err(|e| GatewayError::Internal(format!("stored identity: {e}")))?;
    let idp_id = stored.idp_id.clone().unwrap_or_default();
    let engine = directory::engine_for(env, gateway, Some(&idp_id), now).await?;
    let context = Context::read(request);
    let admitted = admit(&engine, &host, &login, &context, stored.to_identity())?;
    let cookie_path = gateway.endpoints.cookie_path();
    let clear_binding = pending::set_cookie(&handoff.state, None, &cookie_path);
    // Ages count from the sign-in with Entra: a team session too old for this app sends the
    // user to sign in again.
    let expires = row
        .created
        .saturating_add(Duration::from_secs(admitted.duration_s));
    if expires <= now {
        crate::log::event(
            "session_refused",
            &[
                (
                    "reason",
                    "team session older than the app's session duration",
                ),
                ("app", admitted.app.id()),
            ],
        );
        let mut again = Url::parse(&format!(
            "{}{}",
            crate::http::origin_of(&url),
            gateway.endpoints.path("login")
        ))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
        again
            .query_pairs_mut()
            .append_pair("redirect_url", &login.redirect)
            .append_pair(FRESH, "1");
        return Ok(redirect(again.as_str(), &[clear_binding]));
    }
    let identity_nonce = random_token(18)?;
    let app_session = session_store::NewSession {
        identity_nonce: &identity_nonce,
        identity: &stored,
        app_id: admitted.app.id(),
        created: row.created,
        expires,
        parent: Some(&handoff.team_nonce),
        guard: None,
    };
    store_session(env, gateway, &idp_id, app_session, now).await?;
    let claims = app_claims(
        gateway,
        super::callback::host_audiences(&engine, &host, admitted.app.aud()),
        &stored,
        identity_nonce,
        context.country,
        now,
        expires,
    );
    let token = session::mint(signing_keys(gateway)?, &claims).await?;
    let max_age = expires.since(now).as_secs().max(1);
    crate::log::event(
        "sign_in_handoff",
        &[("app", admitted.app.id()), ("host", &host)],
    );
    Ok(redirect(
        &login.redirect,
        &[session::set_cookie(&token, max_age), clear_binding],
    ))
}

/// The claims of an application (or team) token for `stored`, issued `now`, expiring at
/// `expires`.
pub fn app_claims(
    gateway: &Gateway,
    aud: Vec<String>,
    stored: &StoredIdentity,
    identity_nonce: String,
    country: Option<String>,
    now: UnixMillis,
    expires: UnixMillis,
) -> AppClaims {
    let seconds = |t: UnixMillis| i64::try_from(t.unix_secs()).unwrap_or(0);
    AppClaims {
        aud,
        email: stored.email.clone(),
        sub: stored.user_id.clone().unwrap_or_default(),
        iss: gateway.engine.team_domain().to_owned(),
        token_type: "app".into(),
        identity_nonce,
        country,
        common_name: None,
        iat: seconds(now),
        nbf: seconds(now),
        exp: seconds(expires),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_authorities_are_handoff_targets() {
        for ok in ["wiki.example.com", "app1.localhost:8787", "a-b.c"] {
            assert!(valid_authority(ok), "{ok}");
        }
        for bad in [
            "",
            "evil.com/x",
            "user@evil.com",
            "evil.com:",
            "evil.com:123456",
            "evil.com:80:80",
            "evil.com\\x",
            "evil.com?x",
            "evil.com#x",
            "[::1]",
            "evil .com",
        ] {
            assert!(!valid_authority(bad), "{bad}");
        }
    }
}

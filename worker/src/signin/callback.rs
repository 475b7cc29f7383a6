//! `GET {prefix}/callback?code=…&state=…`: finishes a sign-in, step by step — the
//! state is this browser's and spent ([`spend_state`]), the code becomes tokens
//! ([`redeem_code`]), the ID token an identity ([`crate::identity`]), the policies of where the
//! user was going admit it ([`admit`]), the session is stored ([`store_session`]) and its
//! cookie set.

use std::time::Duration;

use edge_access_token::TokenVersion;
use policy_core::{
    DenyAnswer, Identity, IdentityProvider, Outcome, Request as PolicyRequest, Target,
};
use serde::Deserialize;
use worker::{Env, Request, Response, Url};

use super::{connection_test, endpoint, hub, sign_in_version, signing_keys};
use crate::config::Gateway;
use crate::context::Context;
use crate::crypto::random_token;
use crate::directory;
use crate::error::{Dependency, GatewayError, Stop};
use crate::http::{exchange, origin_of, query, redirect, Exchange};
use crate::identity::{self, Rejection, Source};
use crate::log;
use crate::pending::{self, Issued, Pending};
use crate::refusal::{Addressee, Refusal};
use crate::session;
use crate::session_store::{self, Guard, NewSession, StoredIdentity};
use crate::time::UnixMillis;

/// The `error`s Entra answers a silent sign-in (`prompt=none`) with when the user has to
/// take part: the gateway then starts an interactive sign-in instead of failing.
const INTERACTION_NEEDED: [&str; 4] = [
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
];

#[derive(Deserialize)]
pub(super) struct TokenResponse {
    pub(super) id_token: String,
    #[serde(default)]
    pub(super) access_token: Option<String>,
}

fn signin_failed(why: String) -> Stop {
    Stop::Refused(Refusal::SignInFailed(why))
}

/// `GET {prefix}/callback?code=…&state=…`: finishes the sign-in.
pub async fn callback(request: &Request, env: &Env, gateway: &Gateway) -> Result<Response, Stop> {
    let url = request.url()?;
    if connection_test::is_test(request, gateway, &url) {
        return connection_test::callback(request, env, gateway, &url).await;
    }
    if let Some(error) = query(&url, "error") {
        if INTERACTION_NEEDED.contains(&error.as_str()) {
            return interactive_again(request, env, gateway, &url, &error).await;
        }
        return Err(signin_failed(format!(
            "the identity provider said `{}`",
            error.chars().take(64).collect::<String>()
        )));
    }
    let (Some(code), Some(state)) = (query(&url, "code"), query(&url, "state")) else {
        return Err(signin_failed("callback without code and state".into()));
    };
    let (issued, login, now) = spend_state(request, env, gateway, &state).await?;
    let engine = directory::engine_for(env, gateway, Some(&login.idp_id), now).await?;
    let idp = engine
        .identity_providers()
        .iter()
        .find(|p| *p.id == *login.idp_id)
        .ok_or_else(|| GatewayError::Config("the sign-in's identity provider is gone".into()))?;
    let version = sign_in_version(gateway);
    let tokens =
        redeemed(exchange_code(gateway, idp, version, &issued, &state, &code, &url).await?)?;

    // The ID token: every check of a bearer token, plus the nonce.
    let presented = Source::SignIn {
        idp,
        version,
        nonce: issued.nonce(&state)?,
        access_token: tokens.access_token.as_deref(),
    };
    let identity = identity::from_entra_token(env, gateway, &tokens.id_token, presented, now)
        .await
        .map_err(Rejection::for_sign_in)?;

    let context = Context::read(request);
    // On the team domain, the sign-in is for the app host it hands off to.
    let host = match &login.handoff {
        Some(target) => target.host.clone(),
        None => url.host_str().unwrap_or("").to_owned(),
    };
    let admitted = admit(&engine, &host, &login, &context, identity)?;
    let identity_nonce = random_token(18)?;
    let stored = StoredIdentity::from_identity(&admitted.identity, context.country.clone());
    let (audiences, duration) = match &login.handoff {
        // The team session: for the team domain only, Access's 24 hours (each app session it
        // gives is held to the app's own duration, counted from this sign-in).
        Some(_) => (
            vec![hub::team_audience(gateway).to_owned()],
            Duration::from_secs(session::DEFAULT_SESSION_S),
        ),
        None => (
            host_audiences(&engine, &host, admitted.app.aud()),
            Duration::from_secs(admitted.duration_s),
        ),
    };
    let expires = now.saturating_add(duration);
    let new_session = NewSession {
        identity_nonce: &identity_nonce,
        identity: &stored,
        app_id: admitted.app.id(),
        created: now,
        expires,
        parent: None,
        guard: None,
    };
    store_session(env, gateway, &login.idp_id, new_session, now).await?;
    let team_nonce = identity_nonce.clone();
    let claims = hub::app_claims(
        gateway,
        audiences,
        &stored,
        identity_nonce,
        context.country,
        now,
        expires,
    );
    let token = session::mint(signing_keys(gateway)?, &claims).await?;
    let clear_binding = pending::set_cookie(&state, None, &gateway.endpoints.cookie_path());
    let cookies = [
        session::set_cookie(&token, duration.as_secs()),
        clear_binding,
    ];
    match &login.handoff {
        Some(target) => {
            let handoff = hub::handoff_redirect(gateway, url.scheme(), target, &team_nonce)?;
            let headers = handoff.headers().clone();
            for cookie in &cookies {
                let _ = headers.append("Set-Cookie", cookie);
            }
            Ok(handoff.with_headers(headers))
        }
        None => Ok(redirect(&login.redirect, &cookies)),
    }
}

/// The sign-in `state` names: issued here, not too old, spent now (single use: by its first
/// callback, whichever browser sends it), and then this browser's. Returns what was issued,
/// the sign-in in progress and the time it was spent.
pub(super) async fn spend_state(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    state: &str,
) -> Result<(Issued, Pending, UnixMillis), Stop> {
    let Some(issued) = pending::Keys::new(signing_keys(gateway)?)?.check(state) else {
        return Err(signin_failed(
            "unknown or already used state: not issued here".into(),
        ));
    };
    let now = UnixMillis::now();
    if !issued.fresh_at(now) {
        return Err(signin_failed("the sign-in took too long".into()));
    }
    if !pending::consume(env, state, now).await? {
        return Err(signin_failed(
            "unknown or already used state: already used".into(),
        ));
    }
    let login = session::cookie(request.headers(), &pending::cookie_name(state))
        .and_then(|value| issued.open(&value))
        .filter(|login| login.state == state)
        .ok_or_else(|| signin_failed("the state belongs to another browser".into()))?;
    Ok((issued, login, now))
}

/// The tokens of a code exchange ([`exchange_code`]), or why the sign-in cannot go on: Entra
/// down or overloaded is a failure (it could not be finished now), any other refusal a failed
/// sign-in.
fn redeemed(exchanged: Result<Vec<u8>, Exchange>) -> Result<TokenResponse, Stop> {
    exchanged
        .map_err(|e| match e {
            Exchange::Unreachable(_)
            | Exchange::Status {
                status: 429 | 500..,
                ..
            } => Stop::Failed(GatewayError::Unavailable {
                dependency: Dependency::IdentityProvider,
                detail: format!("token endpoint: {e}"),
            }),
            Exchange::Status { .. } => signin_failed(format!("token endpoint: {e}")),
        })
        .and_then(|body| token_response(&body))
}

/// The token endpoint's answer read.
pub(super) fn token_response(body: &[u8]) -> Result<TokenResponse, Stop> {
    serde_json::from_slice(body).map_err(|e| signin_failed(format!("token response: {e}")))
}

/// The authorization `code` exchanged at `idp`'s token endpoint of `version` (the one the
/// sign-in began with), with the PKCE verifier when `idp` uses PKCE: the endpoint's answer,
/// or why there is none to use. The outer error: the exchange could not be made (no secret,
/// no verifier).
pub(super) async fn exchange_code(
    gateway: &Gateway,
    idp: &IdentityProvider,
    version: TokenVersion,
    issued: &Issued,
    state: &str,
    code: &str,
    url: &Url,
) -> Result<Result<Vec<u8>, Exchange>, Stop> {
    let secret = gateway.client_secret(idp).map_err(GatewayError::Config)?;
    let verifier = if idp.pkce_enabled {
        Some(issued.verifier(state)?)
    } else {
        None
    };
    let redirect_uri = format!("{}{}", origin_of(url), gateway.endpoints.path("callback"));
    let mut form = worker::url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", &redirect_uri)
        .append_pair("client_id", &idp.client_id)
        .append_pair("client_secret", secret);
    if let Some(v) = &verifier {
        form.append_pair("code_verifier", v);
    }
    if version == TokenVersion::V1 {
        form.append_pair("resource", crate::config::graph_resource(idp));
    }
    let token_url = format!(
        "{}/{}/{}",
        gateway.authority(idp),
        idp.directory_id,
        endpoint(version, "token")
    );
    Ok(exchange(
        &token_url,
        "application/x-www-form-urlencoded",
        &form.finish(),
        None,
    )
    .await)
}

/// A signed-in identity the policies of its destination admit.
pub(super) struct Admitted<'e> {
    pub(super) app: &'e policy_core::App,
    pub(super) identity: Identity,
    /// The session's length: the deciding policy's, else the app's, else 24 h.
    pub(super) duration_s: u64,
}

/// Decides for where the user was going (`login.redirect` on `host`), as any later request
/// will be; a refusal is answered as the app says (its deny page, its message, the block
/// page).
pub(super) fn admit<'e>(
    engine: &'e policy_core::Engine,
    host: &str,
    login: &Pending,
    context: &Context,
    identity: Identity,
) -> Result<Admitted<'e>, Stop> {
    let target = Target::parse(&format!("{host}{}", login.redirect))
        .map_err(|e| GatewayError::Internal(format!("redirect target: {e}")))?;
    let app = engine
        .app_for(&target)
        .map_err(|e| Stop::Refused(Refusal::InvalidPath(format!("`{}`: {e}", target.path()))))?
        .ok_or(Stop::Refused(Refusal::NoApp))?;
    let mut policy_request = PolicyRequest::new(target);
    context.network_into(&mut policy_request);
    policy_request.identity = Some(identity);
    let decision = engine
        .decide(&policy_request)
        .map_err(|e| signin_failed(format!("evaluation: {e}")))?;
    let user = policy_request
        .identity
        .as_ref()
        .and_then(|i| i.user_id.as_deref())
        .unwrap_or("");
    log::event(
        "sign_in",
        &[
            ("app", app.id()),
            ("outcome", decision.outcome.as_str()),
            ("user", user),
        ],
    );
    if !matches!(
        decision.outcome,
        Outcome::Allow | Outcome::Bypass | Outcome::ServiceAuth
    ) {
        let reason = format!("sign-in refused: {}", decision.outcome);
        // Signed in by now: any other outcome (an identity that cannot sign in to this app)
        // is answered as an identity refusal too.
        let answer = app
            .deny_answer(decision.outcome, true)
            .or_else(|| app.deny_answer(Outcome::DefaultDeny, true));
        let refusal = match answer {
            Some(DenyAnswer::Redirect(url)) => Refusal::DeniedTo(url.to_owned()),
            Some(DenyAnswer::IdentityPage(Some(message))) => Refusal::ForbiddenSaying {
                reason,
                message: message.to_owned(),
            },
            _ => Refusal::Forbidden {
                reason,
                non_identity: false,
            },
        };
        // The block page names the app and the account that signed in; no session was set, so
        // it offers another account, not a sign-out.
        let to = Addressee {
            app_id: app.id().to_owned(),
            app_name: app.name().to_owned(),
            email: policy_request
                .identity
                .as_ref()
                .and_then(|i| i.email.as_ref())
                .map(|e| e.as_str().to_owned()),
            session: false,
            return_to: Some(login.redirect.clone()),
        };
        return Err(Stop::Refused(refusal.addressed(to)));
    }
    let duration_s = decision
        .session
        .map_or(session::DEFAULT_SESSION_S, |d| d.seconds())
        .max(1);
    let Some(identity) = policy_request.identity else {
        return Err(Stop::Failed(GatewayError::Internal(
            "identity vanished".into(),
        )));
    };
    Ok(Admitted {
        app,
        identity,
        duration_s,
    })
}

/// Stores `session` (`sessions`), signed in with the provider `idp_id`. With
/// `user_deprovision`, a user SCIM disabled or deleted (by object id) gets no session — checked
/// in the insert itself, so a deprovisioning that lands mid-sign-in cannot be missed.
pub(super) async fn store_session(
    env: &Env,
    gateway: &Gateway,
    idp_id: &str,
    session: NewSession<'_>,
    now: UnixMillis,
) -> Result<(), Stop> {
    let guarded = gateway
        .scim
        .as_ref()
        .is_some_and(|s| s.config.user_deprovision && *s.idp_id == *idp_id);
    let stored = session.identity;
    let email = stored.email.as_deref().map(str::to_ascii_lowercase);
    let oid;
    let mut guard = None;
    if guarded {
        // Keyed by the object id: without one, SCIM's say on the user cannot be known.
        oid = stored
            .user_id
            .as_deref()
            .and_then(edge_access_scim::object_id)
            .ok_or_else(|| {
                Stop::Refused(Refusal::Forbidden {
                    reason: "sign-in refused: user_deprovision is on and the ID token has no \
                         object id (`oid`) to find the user by"
                        .into(),
                    non_identity: false,
                })
            })?;
        guard = Some(Guard {
            oid: &oid,
            email: email.as_deref(),
            deleted_since: now.saturating_sub(crate::scim::DELETED_FOR),
            refusal: crate::scim::refusal_sql,
        });
    }
    let session = NewSession { guard, ..session };
    if !session_store::insert(&env.d1("DB")?, &session).await? {
        return Err(Stop::Refused(Refusal::Forbidden {
            reason: "sign-in refused: the user is deprovisioned (SCIM)".into(),
            non_identity: false,
        }));
    }
    Ok(())
}

/// The audiences of the session cookie: the app signed in to first, then every other app on
/// the same host (`*.` wildcard apps included). The cookie is scoped to the host, so one
/// session serves all of them; each request is still decided by its own app's policies with
/// the stored identity.
pub(super) fn host_audiences(engine: &policy_core::Engine, host: &str, first: &str) -> Vec<String> {
    let mut audiences = vec![first.to_owned()];
    for app in engine.apps_on_host(host) {
        if !audiences.iter().any(|a| a == app.aud()) {
            audiences.push(app.aud().to_owned());
        }
    }
    audiences
}

/// A silent sign-in (`prompt=none`) Entra could not finish (`error`, one of
/// [`INTERACTION_NEEDED`]): once the state checks out as this browser's and is spent, the
/// sign-in starts again with the same provider, interactive (`select_account` instead of
/// `prompt=none`, [`super::login`]), so the user signs in
/// instead of seeing a failure (or the login chooser again).
async fn interactive_again(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    url: &Url,
    error: &str,
) -> Result<Response, Stop> {
    let signin_failed = |why| Stop::Refused(Refusal::SignInFailed(why));
    let state =
        query(url, "state").ok_or_else(|| signin_failed(format!("`{error}` without state")))?;
    let issued = pending::Keys::new(signing_keys(gateway)?)?
        .check(&state)
        .ok_or_else(|| signin_failed(format!("`{error}` with a state not issued here")))?;
    let now = UnixMillis::now();
    if !issued.fresh_at(now) {
        return Err(signin_failed("the sign-in took too long".into()));
    }
    let login = session::cookie(request.headers(), &pending::cookie_name(&state))
        .and_then(|value| issued.open(&value))
        .filter(|login| login.state == state)
        .ok_or_else(|| signin_failed("the state belongs to another browser".into()))?;
    if !pending::consume(env, &state, now).await? {
        return Err(signin_failed(
            "unknown or already used state: already used".into(),
        ));
    }
    log::event(
        "sign_in_interactive",
        &[("reason", error), ("idp", &login.idp_id)],
    );
    let mut again = Url::parse(&format!(
        "{}{}",
        origin_of(url),
        gateway.endpoints.path("login")
    ))
    .map_err(|e| GatewayError::Internal(e.to_string()))?;
    {
        let mut q = again.query_pairs_mut();
        q.append_pair("redirect_url", &login.redirect)
            .append_pair("idp", &login.idp_id)
            .append_pair("interactive", "1");
        // On the team domain: still for the same app host and its sign-in.
        if let Some(target) = &login.handoff {
            q.append_pair("host", &target.host)
                .append_pair("state", &target.state);
        }
    }
    let clear_binding = pending::set_cookie(&state, None, &gateway.endpoints.cookie_path());
    Ok(redirect(again.as_str(), &[clear_binding]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn engine(apps: &str) -> policy_core::Engine {
        let document = format!(
            r#"{{"team_domain": "https://access.example.com",
                "identity_providers": [{{"id": "entra", "name": "Entra ID", "type": "azureAD",
                  "config": {{"client_id": "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
                              "directory_id": "9c4e1b7a-3d2f-4a8e-b615-0f7d2c9a4e31"}}}}],
                "apps": [{apps}]}}"#
        );
        policy_core::Engine::from_json(&document).unwrap()
    }

    fn app(id: &str, domain: &str) -> String {
        format!(
            r#"{{"id": "{id}", "name": "{id}", "domain": "{domain}", "aud": "aud-{id}",
                "policies": [{{"name": "all", "decision": "allow", "include": [{{"everyone": {{}}}}]}}]}}"#
        )
    }

    #[test]
    fn a_session_serves_every_app_on_its_host_wildcards_included() {
        let engine = engine(
            &[
                app("wiki", "wiki.example.com"),
                app("wiki-admin", "wiki.example.com/admin"),
                app("any", "*.example.com/tools"),
                app("other", "other.example.com"),
                app("deep", "*.wiki.example.com"),
            ]
            .join(","),
        );
        assert_eq!(
            host_audiences(&engine, "Wiki.Example.com", "aud-wiki-admin"),
            ["aud-wiki-admin", "aud-wiki", "aud-any"]
        );
        assert_eq!(
            host_audiences(&engine, "new.example.com", "aud-any"),
            ["aud-any"]
        );
    }
}

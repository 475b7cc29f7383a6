//! The gateway's own endpoints under `/cdn-cgi/access/`: sign-in (OIDC code flow with state,
//! nonce and PKCE; the sign-in in progress is kept by the browser, see [`crate::pending`]), the
//! callback, logout, the identity and the public keys.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{AppClaims, TokenVersion};
use policy_core::{
    ClientIp, Country, DenyAnswer, IdentityProvider, Outcome, Request as PolicyRequest, Target,
};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use wasm_bindgen::JsValue;
use worker::{Date, Env, Headers, Method, Request, Response, Url};

use crate::config::Gateway;
use crate::crypto::random_token;
use crate::directory;
use crate::error::{Dependency, GatewayError};
use crate::http::{exchange, origin_of, query, redirect, Exchange};
use crate::identity::{self, Rejection, Source};
use crate::log;
use crate::pages;
use crate::pending::{self, Pending};
use crate::refusal::Refusal;
use crate::session::{self, Revocation};
use crate::session_store::StoredIdentity;
use crate::signing::SigningKeys;

/// Routes `/cdn-cgi/access/<endpoint>`.
pub async fn handle(request: Request, env: &Env, gateway: &Gateway) -> Response {
    let path = request.path();
    let endpoint = path.trim_start_matches("/cdn-cgi/access").trim_matches('/');
    let result = match (request.method(), endpoint) {
        (Method::Get, "login") => login(&request, gateway),
        (Method::Get, "callback") => callback(&request, env, gateway).await,
        (Method::Get, "logout") => logout(&request, env, gateway, Revocation::ThisSession).await,
        (Method::Post, "logout") => logout(&request, env, gateway, Revocation::Everywhere).await,
        (Method::Get, "certs") => certs(gateway),
        (Method::Get, "get-identity") => get_identity(&request, env, gateway).await,
        _ => Err(GatewayError::Refused(Refusal::NoApp)),
    };
    result.unwrap_or_else(|error| {
        log::event(
            "access_endpoint_error",
            &[("endpoint", endpoint), ("error", &error.reason())],
        );
        error.response()
    })
}

/// A redirect target that stays on this host: a path, never `//host` or a URL.
pub fn local_path(candidate: Option<&str>) -> String {
    match candidate {
        Some(p)
            if p.starts_with('/')
                && !p.starts_with("//")
                && !p.contains('\\')
                && !p.chars().any(char::is_control) =>
        {
            p.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// The identity provider for `redirect` on this host: the app's single allowed one, else the
/// document's first.
fn provider_for<'g>(gateway: &'g Gateway, host: &str, path: &str) -> Option<&'g IdentityProvider> {
    let engine = &gateway.engine;
    let idps = engine.identity_providers();
    let app = Target::parse(&format!("{host}{path}"))
        .ok()
        .and_then(|t| engine.app_for(&t).ok().flatten());
    app.and_then(|a| a.allowed_idps().and_then(|mut ids| ids.next()))
        .and_then(|i| idps.get(i))
        .or_else(|| idps.first())
}

/// Which of Entra's endpoints sign-ins go through: v1 (`/oauth2/authorize`, a v1 ID token)
/// when a rule reads the authentication methods — Entra puts `amr` in v1 tokens only —
/// otherwise v2.
fn sign_in_version(gateway: &Gateway) -> TokenVersion {
    if gateway.engine.uses_auth_method() {
        TokenVersion::V1
    } else {
        TokenVersion::V2
    }
}

/// The path of Entra's `authorize` or `token` endpoint of `version` under the tenant.
fn endpoint(version: TokenVersion, name: &str) -> String {
    match version {
        TokenVersion::V1 => format!("oauth2/{name}"),
        TokenVersion::V2 => format!("oauth2/v2.0/{name}"),
    }
}

/// The `error`s Entra answers a silent sign-in (`prompt=none`) with when the user has to
/// take part: the gateway then starts an interactive sign-in instead of failing.
const INTERACTION_NEEDED: [&str; 4] = [
    "login_required",
    "interaction_required",
    "consent_required",
    "account_selection_required",
];

/// `GET /cdn-cgi/access/login?redirect_url=/path`: starts the OIDC code flow. Stores nothing:
/// the sign-in in progress goes to the browser in its `EA_Login_…` cookie. With
/// `interactive=1` (after a silent sign-in Entra could not finish), a provider's
/// `prompt: none` is not sent.
fn login(request: &Request, gateway: &Gateway) -> Result<Response, GatewayError> {
    let url = request.url()?;
    let interactive = query(&url, "interactive").as_deref() == Some("1");
    let redirect_path = pending::bounded_target(local_path(query(&url, "redirect_url").as_deref()));
    let host = url.host_str().unwrap_or("");
    let idp = provider_for(gateway, host, &redirect_path)
        .ok_or_else(|| GatewayError::Config("no identity provider".into()))?;
    let keys = pending::Keys::new(signing_keys(gateway)?)?;
    let (state, issued) = keys.issue(Date::now().as_millis())?;
    let nonce = issued.nonce(&state)?;
    let verifier = if idp.pkce_enabled {
        Some(issued.verifier(&state)?)
    } else {
        None
    };
    let cookie = issued.seal(&Pending {
        state: state.clone(),
        idp_id: idp.id.to_string(),
        redirect: redirect_path,
    })?;
    let version = sign_in_version(gateway);
    let mut authorize = Url::parse(&format!(
        "{}/{}/{}",
        gateway.authority(idp),
        idp.directory_id,
        endpoint(version, "authorize")
    ))
    .map_err(|e| GatewayError::Config(format!("authority: {e}")))?;
    let graph = crate::config::graph_resource(idp);
    {
        let mut q = authorize.query_pairs_mut();
        q.append_pair("client_id", &idp.client_id)
            .append_pair("response_type", "code")
            .append_pair("response_mode", "query")
            .append_pair(
                "redirect_uri",
                &format!("{}/cdn-cgi/access/callback", origin_of(&url)),
            )
            .append_pair("state", &state)
            .append_pair("nonce", &nonce);
        match version {
            // The v2 endpoint: OIDC scopes and Graph's `User.Read` (for a groups overage).
            TokenVersion::V2 => {
                q.append_pair(
                    "scope",
                    &format!("openid profile email offline_access {graph}/User.Read"),
                );
            }
            // The v1 endpoint: the access token is for one `resource`, Graph.
            TokenVersion::V1 => {
                q.append_pair("scope", "openid profile email")
                    .append_pair("resource", graph);
            }
        }
        match idp.prompt.as_deref() {
            Some("none") if interactive => {}
            Some(prompt) => {
                q.append_pair("prompt", prompt);
            }
            None => {}
        }
        if let Some(v) = &verifier {
            let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()));
            q.append_pair("code_challenge", &challenge)
                .append_pair("code_challenge_method", "S256");
        }
    }
    let mut cookies = pending::evictions(&keys, request.headers());
    cookies.push(pending::set_cookie(&state, Some(&cookie)));
    Ok(redirect(authorize.as_str(), &cookies))
}

fn signing_keys(gateway: &Gateway) -> Result<&SigningKeys, GatewayError> {
    gateway
        .signing
        .as_ref()
        .ok_or_else(|| GatewayError::Config("SESSION_SIGNING_KEY is not set".into()))
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
    #[serde(default)]
    access_token: Option<String>,
}

/// `GET /cdn-cgi/access/callback?code=…&state=…`: finishes the sign-in.
async fn callback(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
) -> Result<Response, GatewayError> {
    let url = request.url()?;
    let signin_failed = |why| GatewayError::Refused(Refusal::SignInFailed(why));
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
    let signing = signing_keys(gateway)?;
    let Some(issued) = pending::Keys::new(signing)?.check(&state) else {
        return Err(signin_failed(
            "unknown or already used state: not issued here".into(),
        ));
    };
    let now_ms = Date::now().as_millis();
    if now_ms.saturating_sub(issued.created_ms) > pending::TTL_MS || issued.created_ms > now_ms {
        return Err(signin_failed("the sign-in took too long".into()));
    }
    // Single use: the state is spent by its first callback, whichever browser sends it.
    if !pending::consume(env, &state, now_ms).await? {
        return Err(signin_failed(
            "unknown or already used state: already used".into(),
        ));
    }
    let login = session::cookie(request.headers(), &pending::cookie_name(&state))
        .and_then(|value| issued.open(&value))
        .filter(|login| login.state == state)
        .ok_or_else(|| signin_failed("the state belongs to another browser".into()))?;
    let engine = directory::engine_for(env, gateway, Some(&login.idp_id), now_ms).await?;
    let idp = engine
        .identity_providers()
        .iter()
        .find(|p| *p.id == *login.idp_id)
        .ok_or_else(|| GatewayError::Config("the sign-in's identity provider is gone".into()))?;
    let secret = gateway
        .client_secret
        .as_deref()
        .ok_or_else(|| GatewayError::Config("AZURE_CLIENT_SECRET is not set".into()))?;
    let verifier = if idp.pkce_enabled {
        Some(issued.verifier(&state)?)
    } else {
        None
    };

    // Code → tokens, at the endpoint the sign-in began with.
    let version = sign_in_version(gateway);
    let redirect_uri = format!("{}/cdn-cgi/access/callback", origin_of(&url));
    let mut form = worker::url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", &code)
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
    let tokens: TokenResponse = exchange(
        &token_url,
        "application/x-www-form-urlencoded",
        &form.finish(),
        None,
    )
    .await
    .map_err(|e| match e {
        // Entra down or overloaded: the sign-in did not fail, it could not be finished now.
        Exchange::Unreachable(_)
        | Exchange::Status {
            status: 429 | 500..,
            ..
        } => GatewayError::Unavailable {
            dependency: Dependency::IdentityProvider,
            detail: format!("token endpoint: {e}"),
        },
        Exchange::Status { .. } => signin_failed(format!("token endpoint: {e}")),
    })
    .and_then(|body| {
        serde_json::from_slice(&body).map_err(|e| signin_failed(format!("token response: {e}")))
    })?;

    // The ID token: every check of a bearer token, plus the nonce.
    let presented = Source::SignIn {
        idp,
        version,
        nonce: issued.nonce(&state)?,
        access_token: tokens.access_token.as_deref(),
    };
    let identity = identity::from_entra_token(env, gateway, &tokens.id_token, presented, now_ms)
        .await
        .map_err(Rejection::for_sign_in)?;

    // Decide for where the user was going, as any later request will be.
    let host = url.host_str().unwrap_or("").to_owned();
    let target = Target::parse(&format!("{host}{}", login.redirect))
        .map_err(|e| GatewayError::Internal(format!("redirect target: {e}")))?;
    let app = engine
        .app_for(&target)
        .map_err(|e| {
            GatewayError::Refused(Refusal::InvalidPath(format!("`{}`: {e}", target.path())))
        })?
        .ok_or(GatewayError::Refused(Refusal::NoApp))?;
    let mut policy_request = PolicyRequest::new(target);
    let headers = request.headers();
    policy_request.ip = headers
        .get("CF-Connecting-IP")
        .ok()
        .flatten()
        .and_then(|ip| ClientIp::parse(ip.trim()).ok());
    let country = request.cf().and_then(|cf| cf.country());
    policy_request.country = country.as_deref().and_then(|c| Country::parse(c).ok());
    policy_request.identity = Some(identity);
    let decision = engine
        .decide(&policy_request)
        .map_err(|e| signin_failed(format!("evaluation: {e}")))?;
    let identity = policy_request.identity.as_ref();
    log::event(
        "sign_in",
        &[
            ("app", app.id()),
            ("outcome", decision.outcome.as_str()),
            (
                "user",
                identity.and_then(|i| i.user_id.as_deref()).unwrap_or(""),
            ),
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
        return match answer {
            Some(DenyAnswer::Redirect(url)) => Ok(redirect(url, &[])),
            Some(DenyAnswer::IdentityPage(Some(message))) => {
                Err(GatewayError::Refused(Refusal::ForbiddenSaying {
                    reason,
                    message: message.to_owned(),
                }))
            }
            _ => Err(GatewayError::Refused(Refusal::Forbidden {
                reason,
                non_identity: false,
            })),
        };
    }
    let Some(identity) = identity else {
        return Err(GatewayError::Internal("identity vanished".into()));
    };
    let duration_s = decision
        .session
        .map_or(session::DEFAULT_SESSION_S, |d| d.seconds())
        .max(1);
    let identity_nonce = random_token(18)?;
    let stored = StoredIdentity::from_identity(identity, country.clone());
    let stored_json =
        serde_json::to_string(&stored).map_err(|e| GatewayError::Internal(e.to_string()))?;
    // With `user_deprovision`, a user SCIM disabled or deleted (by object id) gets no session
    // — checked in the insert itself, so a deprovisioning that lands mid-sign-in cannot be
    // missed.
    let guarded = gateway
        .scim
        .as_ref()
        .is_some_and(|s| s.config.user_deprovision && *s.idp_id == *login.idp_id);
    let mut args = vec![
        identity_nonce.as_str().into(),
        stored
            .user_id
            .as_deref()
            .map_or(JsValue::NULL, JsValue::from),
        stored.email.as_deref().map_or(JsValue::NULL, JsValue::from),
        stored_json.as_str().into(),
        app.id().into(),
        JsValue::from(now_ms as f64),
        JsValue::from((now_ms + duration_s * 1000) as f64),
    ];
    let mut condition = String::new();
    if guarded {
        // Keyed by the object id: without one, SCIM's say on the user cannot be known.
        let oid = stored
            .user_id
            .as_deref()
            .and_then(edge_access_scim::object_id)
            .ok_or_else(|| {
                GatewayError::Refused(Refusal::Forbidden {
                    reason: "sign-in refused: user_deprovision is on and the ID token has no \
                         object id (`oid`) to find the user by"
                        .into(),
                    non_identity: false,
                })
            })?;
        condition = format!("WHERE {} IS NULL", crate::scim::refusal_sql(8, 9, 10));
        args.push(JsValue::from(oid));
        args.push(
            stored
                .email
                .as_deref()
                .map_or(JsValue::NULL, |e| JsValue::from(e.to_ascii_lowercase())),
        );
        args.push(JsValue::from(
            now_ms.saturating_sub(crate::scim::DELETED_FOR_MS) as f64,
        ));
    }
    let inserted = env
        .d1("DB")?
        .prepare(format!(
            "INSERT INTO sessions (identity_nonce, user_id, email, identity, app_id, created_ms, \
             expires_ms) SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 {condition}"
        ))
        .bind(&args)?
        .run()
        .await?;
    let changes = inserted.meta().ok().flatten().and_then(|m| m.changes);
    if changes == Some(0) {
        return Err(GatewayError::Refused(Refusal::Forbidden {
            reason: "sign-in refused: the user is deprovisioned (SCIM)".into(),
            non_identity: false,
        }));
    }
    let now_s = i64::try_from(now_ms / 1000).unwrap_or(0);
    let claims = AppClaims {
        aud: host_audiences(&engine, &host, app.aud()),
        email: stored.email.clone(),
        sub: stored.user_id.clone().unwrap_or_default(),
        iss: engine.team_domain().to_owned(),
        token_type: "app".into(),
        identity_nonce,
        country,
        common_name: None,
        iat: now_s,
        nbf: now_s,
        exp: now_s + i64::try_from(duration_s).unwrap_or(86_400),
    };
    let token = session::mint(signing, &claims).await?;
    let clear_binding = pending::set_cookie(&state, None);
    Ok(redirect(
        &login.redirect,
        &[session::set_cookie(&token, duration_s), clear_binding],
    ))
}

/// The audiences of the session cookie: the app signed in to first, then every other app on
/// the same host (`*.` wildcard apps included). The cookie is scoped to the host, so one
/// session serves all of them; each request is still decided by its own app's policies with
/// the stored identity.
fn host_audiences(engine: &policy_core::Engine, host: &str, first: &str) -> Vec<String> {
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
/// sign-in starts again without `prompt=none`, so the user signs in instead of seeing a
/// failure.
async fn interactive_again(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    url: &Url,
    error: &str,
) -> Result<Response, GatewayError> {
    let signin_failed = |why| GatewayError::Refused(Refusal::SignInFailed(why));
    let state =
        query(url, "state").ok_or_else(|| signin_failed(format!("`{error}` without state")))?;
    let issued = pending::Keys::new(signing_keys(gateway)?)?
        .check(&state)
        .ok_or_else(|| signin_failed(format!("`{error}` with a state not issued here")))?;
    let now_ms = Date::now().as_millis();
    if now_ms.saturating_sub(issued.created_ms) > pending::TTL_MS || issued.created_ms > now_ms {
        return Err(signin_failed("the sign-in took too long".into()));
    }
    let login = session::cookie(request.headers(), &pending::cookie_name(&state))
        .and_then(|value| issued.open(&value))
        .filter(|login| login.state == state)
        .ok_or_else(|| signin_failed("the state belongs to another browser".into()))?;
    if !pending::consume(env, &state, now_ms).await? {
        return Err(signin_failed(
            "unknown or already used state: already used".into(),
        ));
    }
    log::event(
        "sign_in_interactive",
        &[("reason", error), ("idp", &login.idp_id)],
    );
    let mut again = Url::parse(&format!("{}/cdn-cgi/access/login", origin_of(url)))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    again
        .query_pairs_mut()
        .append_pair("redirect_url", &login.redirect)
        .append_pair("interactive", "1");
    let clear_binding = pending::set_cookie(&state, None);
    Ok(redirect(again.as_str(), &[clear_binding]))
}

/// `/cdn-cgi/access/logout`: `GET` revokes this browser's session, a same-origin `POST` every
/// session of the user; both clear the cookie. A `POST` from anywhere else (another site's
/// form) is refused and revokes nothing.
async fn logout(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    scope: Revocation,
) -> Result<Response, GatewayError> {
    let url = request.url()?;
    if scope == Revocation::Everywhere && !same_origin(request.headers(), &url) {
        log::event(
            "logout",
            &[("refused", "logout everywhere refused: not same-origin")],
        );
        return Err(GatewayError::Refused(Refusal::Forbidden {
            reason: "logout everywhere refused: not a same-origin request".into(),
            non_identity: true,
        }));
    }
    let now_ms = Date::now().as_millis();
    if let Some(token) = session::cookie(request.headers(), session::COOKIE) {
        if let Some(found) = session::lookup(env, gateway, &token, None, now_ms).await? {
            session::revoke(env, &found, scope, now_ms).await?;
            log::event(
                "logout",
                &[("user", &found.user), ("scope", scope.as_str())],
            );
        }
    }
    let response = pages::html(pages::SIGNED_OUT, 200);
    Ok(pages::with_header(
        response,
        "Set-Cookie",
        &session::clear_cookie(),
    ))
}

/// Whether the request comes from the gateway's own origin: its `Origin` is this origin, or
/// (without `Origin`) its fetch metadata says `same-origin`.
fn same_origin(headers: &Headers, url: &Url) -> bool {
    match headers.get("Origin").ok().flatten() {
        Some(origin) => origin.trim() == origin_of(url),
        None => headers
            .get("Sec-Fetch-Site")
            .ok()
            .flatten()
            .is_some_and(|site| site.trim().eq_ignore_ascii_case("same-origin")),
    }
}

fn certs(gateway: &Gateway) -> Result<Response, GatewayError> {
    let keys = gateway
        .signing
        .as_ref()
        .ok_or_else(|| GatewayError::Config("SESSION_SIGNING_KEY is not set".into()))?;
    Ok(Response::from_json(&keys.certs_document())?)
}

/// `/cdn-cgi/access/get-identity`: the signed-in user's identity, as stored.
async fn get_identity(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
) -> Result<Response, GatewayError> {
    let now_ms = Date::now().as_millis();
    let token = session::cookie(request.headers(), session::COOKIE)
        .ok_or_else(|| GatewayError::Refused(Refusal::Unauthorized("no session cookie".into())))?;
    let stored = session::lookup(env, gateway, &token, None, now_ms)
        .await?
        .ok_or_else(|| GatewayError::Refused(Refusal::Unauthorized("no valid session".into())))?
        .identity;
    let body = json!({
        "email": stored.email,
        "user_uuid": stored.user_id,
        "idp": { "id": stored.idp_id, "type": "azureAD" },
        "geo": { "country": stored.country },
        "amr": stored.amr,
        "groups": stored.groups,
        "iat": now_ms / 1000,
    });
    Ok(Response::from_json(&body)?)
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

//! The protected path: credentials → identity → policy decision → origin, with one decision
//! log line per request.

use edge_access_token::{
    identity_from_claims, identity_without_groups, Expectations, IdentityError, TokenVersion,
    UnverifiedEntraToken, DEFAULT_LEEWAY_SECS,
};
use policy_core::{ClientIp, Country, Identity, Mtls, Outcome, Request as PolicyRequest, Target};
use worker::{Date, Env, Request, Response};

use crate::config::Gateway;
use crate::directory;
use crate::distinguished_name;
use crate::error::GatewayError;
use crate::graph;
use crate::keys::{self, WebCryptoVerifier};
use crate::log::DecisionLog;
use crate::proxy;
use crate::service_token::{self, Presented};
use crate::session::{self, StoredIdentity};

/// Decides `request` and answers it: the origin's response, or a generic refusal.
pub async fn protect(request: Request, env: &Env, gateway: &Gateway) -> Response {
    let request_id = request_id(&request);
    let method = request.method().to_string();
    let target = request
        .url()
        .map(|u| format!("{}{}", u.host_str().unwrap_or(""), u.path()))
        .unwrap_or_default();
    let mut log = DecisionLog {
        request_id: &request_id,
        method: &method,
        target: &target,
        app: None,
        outcome: "error",
        policy: None,
        user: None,
        service_token: None,
        status: 500,
        reason: None,
        why: &[],
    };
    let (user, token_id, app, why);
    let result = match decide(&request, env, gateway, &target).await {
        Ok(decided) => {
            user = decided.user;
            token_id = decided.service_token;
            app = decided.app;
            why = decided.why;
            log.app = app.as_deref();
            log.why = &why;
            log.outcome = decided.outcome;
            log.policy = decided.policy;
            log.user = user.as_deref();
            log.service_token = token_id.as_deref();
            match decided.refusal {
                Some(refusal) => Err(refusal),
                None => {
                    proxy::forward(
                        request,
                        gateway,
                        decided.email.as_deref(),
                        decided.assertion.as_deref(),
                    )
                    .await
                }
            }
        }
        Err(e) => Err(e),
    };
    let response = match result {
        Ok(response) => response,
        Err(e) => {
            log.reason = Some(e.reason());
            e.response()
        }
    };
    log.status = response.status_code();
    log.emit();
    response
}

/// What the policies said, before anything is forwarded.
struct Decided {
    /// The policy outcome, or `invalid_credentials` when credentials were refused first.
    outcome: &'static str,
    app: Option<String>,
    /// For a refusal by the policies: the evaluation trace (groups named by their SCIM or
    /// directory display names next to their ids).
    why: Vec<String>,
    policy: Option<String>,
    user: Option<String>,
    email: Option<String>,
    service_token: Option<String>,
    /// The application token to forward as `Cf-Access-Jwt-Assertion` (cookie sessions).
    assertion: Option<String>,
    /// Why the request is refused, if it is.
    refusal: Option<GatewayError>,
}

async fn decide(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    target_text: &str,
) -> Result<Decided, GatewayError> {
    let now_ms = Date::now().as_millis();
    let engine = &gateway.engine;
    let target = Target::parse(target_text)
        .map_err(|e| GatewayError::Internal(format!("request target: {e}")))?;
    let Some(app) = engine.app_for(&target) else {
        let refusal = (!gateway.pass_through_unmatched).then_some(GatewayError::NoApp);
        return Ok(Decided {
            outcome: Outcome::NoApp.as_str(),
            app: None,
            why: Vec::new(),
            policy: None,
            user: None,
            email: None,
            service_token: None,
            assertion: None,
            refusal,
        });
    };
    let refused = |error: GatewayError| Decided {
        outcome: "invalid_credentials",
        app: Some(app.id().to_owned()),
        why: Vec::new(),
        policy: None,
        user: None,
        email: None,
        service_token: None,
        assertion: None,
        refusal: Some(error),
    };
    let mut policy_request = PolicyRequest::new(target);
    let headers = request.headers();
    match service_token::check(engine, headers) {
        Presented::None => {}
        Presented::Valid(token) => policy_request.service_token = Some(token),
        Presented::Invalid(why) => return Ok(refused(GatewayError::Unauthorized(why))),
    }
    let mut assertion = None;
    if let Some(bearer) = bearer(headers) {
        match bearer_identity(env, gateway, &bearer, now_ms).await {
            Ok(identity) if deprovisioned(env, gateway, &identity, now_ms).await? => {
                return Ok(refused(GatewayError::Unauthorized(
                    "the user is deprovisioned (SCIM)".into(),
                )))
            }
            Ok(identity) => policy_request.identity = Some(identity),
            Err(error @ GatewayError::Unauthorized(_)) => return Ok(refused(error)),
            Err(error) => return Err(error),
        }
    } else if let Some(token) = session::cookie(headers, session::COOKIE) {
        // A session cookie that does not verify, is revoked or expired is no session.
        if let Some(stored) =
            session_identity(env, gateway, &token, Some(app.aud()), now_ms).await?
        {
            policy_request.identity = Some(stored.to_identity());
            assertion = Some(token);
        }
    }
    policy_request.ip = headers
        .get("CF-Connecting-IP")
        .ok()
        .flatten()
        .and_then(|ip| ClientIp::parse(ip.trim()).ok());
    let cf = request.cf();
    policy_request.country = cf
        .and_then(|cf| cf.country())
        .and_then(|c| Country::parse(&c).ok());
    policy_request.mtls = cf.and_then(|cf| cf.tls_client_auth()).and_then(|tls| {
        (tls.cert_verified() == "SUCCESS").then(|| Mtls {
            common_name: distinguished_name::common_name(&tls.cert_subject_dn()).map(Into::into),
        })
    });

    // The SCIM directory (nesting, names) speaks only for its own provider's identities.
    let scoped;
    let engine = match (&gateway.scim, policy_request.identity.as_ref()) {
        (Some(scim), Some(identity)) if identity.idp_id.as_deref() == Some(&*scim.idp_id) => {
            scoped = directory::engine(env, gateway, now_ms).await?;
            &*scoped
        }
        _ => engine,
    };
    let decision = engine
        .decide(&policy_request)
        .map_err(|e| GatewayError::Forbidden {
            reason: format!("evaluation stopped: {e}"),
            non_identity: false,
        })?;
    let identity = policy_request.identity.as_ref();
    let refusal = match decision.outcome {
        Outcome::Allow | Outcome::Bypass | Outcome::ServiceAuth => None,
        Outcome::Block => Some(denied(app, "a deny policy matched", false)),
        Outcome::DefaultDeny => Some(denied(
            app,
            "no policy allows the request",
            identity.is_none(),
        )),
        Outcome::LoginRequired if is_browser(request) => {
            let url = request.url()?;
            let back = match url.query() {
                Some(q) => format!("{}?{q}", url.path()),
                None => url.path().to_owned(),
            };
            let mut login = worker::Url::parse(&format!(
                "{}://{}/cdn-cgi/access/login",
                url.scheme(),
                url.host_str().unwrap_or("")
            ))
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
            if let Some(port) = url.port() {
                let _ = login.set_port(Some(port));
            }
            login.query_pairs_mut().append_pair("redirect_url", &back);
            Some(GatewayError::SignIn(login.to_string()))
        }
        Outcome::LoginRequired => Some(GatewayError::Unauthorized("sign-in required".into())),
        Outcome::NoApp => Some(GatewayError::NoApp),
    };
    let why = match decision.outcome {
        Outcome::Block | Outcome::DefaultDeny => engine
            .evaluate(&policy_request)
            .map(|verdict| verdict.trace)
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    Ok(Decided {
        outcome: decision.outcome.as_str(),
        app: Some(app.id().to_owned()),
        why,
        policy: decision.policy.map(|p| p.id.unwrap_or(p.name).to_owned()),
        user: identity.and_then(|i| i.user_id.as_deref()).map(Into::into),
        email: identity
            .and_then(|i| i.email.as_ref())
            .map(|e| e.as_str().to_owned()),
        service_token: policy_request
            .service_token
            .as_ref()
            .map(|t| t.token_id.to_string()),
        assertion,
        refusal,
    })
}

/// With `scim_config.user_deprovision`, whether SCIM disabled or deleted this identity's user:
/// an Entra token stays valid for its lifetime, so the gateway refuses it itself.
async fn deprovisioned(
    env: &Env,
    gateway: &Gateway,
    identity: &Identity,
    now_ms: u64,
) -> Result<bool, GatewayError> {
    let Some(scim) = gateway.scim.as_ref() else {
        return Ok(false);
    };
    let ours = identity.idp_id.as_deref() == Some(scim.idp_id.as_str());
    let (true, true, Some(email)) = (scim.config.user_deprovision, ours, identity.email.as_ref())
    else {
        return Ok(false);
    };
    Ok(crate::scim::deprovisioned(&env.d1("DB")?, email.as_str(), now_ms).await?)
}

/// A refusal, sent to the app's custom deny page when it has one.
fn denied(app: &policy_core::App, reason: &str, non_identity: bool) -> GatewayError {
    let custom = if non_identity {
        app.custom_non_identity_deny_url()
    } else {
        app.custom_deny_url()
    };
    match custom {
        Some(url) => GatewayError::DeniedTo(url.to_owned()),
        None => GatewayError::Forbidden {
            reason: reason.into(),
            non_identity,
        },
    }
}

/// A person's browser navigating (not an API client, not an XHR): sent to sign in rather than
/// answered 401.
fn is_browser(request: &Request) -> bool {
    let headers = request.headers();
    let header = |name: &str| headers.get(name).ok().flatten().unwrap_or_default();
    let xhr = header("X-Requested-With").eq_ignore_ascii_case("XMLHttpRequest");
    matches!(request.method(), worker::Method::Get | worker::Method::Head)
        && !xhr
        && header("Accept").contains("text/html")
}

/// The stored identity behind a session cookie: the token must verify (this gateway's key,
/// issuer, `audience` when given, times) and its session must be neither revoked nor expired.
pub async fn session_identity(
    env: &Env,
    gateway: &Gateway,
    token: &str,
    audience: Option<&str>,
    now_ms: u64,
) -> Result<Option<StoredIdentity>, GatewayError> {
    let Some(keys) = gateway.signing.as_ref() else {
        return Ok(None);
    };
    let verified = match session::verify(
        keys,
        token,
        gateway.engine.team_domain(),
        audience,
        now_ms / 1000,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            crate::log::event("session_refused", &[("reason", &e.to_string())]);
            return Ok(None);
        }
    };
    #[derive(serde::Deserialize)]
    struct Row {
        identity: String,
    }
    let row: Option<Row> = env
        .d1("DB")?
        .prepare(
            "SELECT identity FROM sessions WHERE identity_nonce = ?1 \
             AND revoked_ms IS NULL AND expires_ms > ?2",
        )
        .bind(&[
            verified.claims().identity_nonce.as_str().into(),
            wasm_bindgen::JsValue::from(now_ms as f64),
        ])?
        .first(None)
        .await?;
    let Some(row) = row else {
        crate::log::event(
            "session_refused",
            &[("reason", "revoked or expired session")],
        );
        return Ok(None);
    };
    serde_json::from_str(&row.identity)
        .map(Some)
        .map_err(|e| GatewayError::Internal(format!("stored identity: {e}")))
}

fn bearer(headers: &worker::Headers) -> Option<String> {
    let value = headers.get("Authorization").ok().flatten()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

/// Validates an Entra access token and maps it to an identity.
async fn bearer_identity(
    env: &Env,
    gateway: &Gateway,
    token: &str,
    now_ms: u64,
) -> Result<Identity, GatewayError> {
    let unauthorized = |e: &dyn std::fmt::Display| GatewayError::Unauthorized(e.to_string());
    let parsed = UnverifiedEntraToken::parse(token).map_err(|e| unauthorized(&e))?;
    let tenant = parsed
        .tenant_hint()
        .ok_or_else(|| unauthorized(&"token has no `tid`"))?;
    let idp = gateway
        .engine
        .identity_providers()
        .iter()
        .find(|p| p.directory_id.eq_ignore_ascii_case(tenant))
        .ok_or_else(|| unauthorized(&"token from a directory that is not configured"))?;
    let (key, issuer) =
        keys::signing_key(env, &gateway.authority, &idp.directory_id, &parsed, now_ms).await?;
    let (issuer_v1, issuer_v2) = match parsed.version() {
        TokenVersion::V1 => (issuer, String::new()),
        TokenVersion::V2 => (String::new(), issuer),
    };
    let expected = Expectations {
        tenant_id: idp.directory_id.to_string(),
        audiences: vec![
            idp.client_id.to_string(),
            format!("api://{}", idp.client_id),
        ],
        issuer_v1,
        issuer_v2,
        leeway_secs: DEFAULT_LEEWAY_SECS,
        nonce: None,
    };
    let verified = parsed
        .verify(&WebCryptoVerifier, &key, &expected, now_ms / 1000)
        .await
        .map_err(|e| unauthorized(&e))?;
    match identity_from_claims(&verified, idp) {
        // Too many groups for the token: read them from Graph with the app's own credentials.
        Err(IdentityError::GroupsOverage) if idp.support_groups => {
            let mut identity =
                identity_without_groups(&verified, idp).map_err(|e| unauthorized(&e))?;
            let oid = identity
                .user_id
                .as_deref()
                .ok_or_else(|| unauthorized(&"token has no `oid`"))?
                .to_owned();
            identity.groups = graph::user_groups(gateway, idp, &oid).await?;
            Ok(identity)
        }
        Err(IdentityError::GroupsOverage) => {
            identity_without_groups(&verified, idp).map_err(|e| unauthorized(&e))
        }
        other => other.map_err(|e| unauthorized(&e)),
    }
}

fn request_id(request: &Request) -> String {
    if let Some(ray) = request.headers().get("cf-ray").ok().flatten() {
        return ray;
    }
    let global: web_sys::WorkerGlobalScope = wasm_bindgen::JsCast::unchecked_into(js_sys::global());
    global.crypto().map(|c| c.random_uuid()).unwrap_or_default()
}

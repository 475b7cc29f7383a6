//! The protected path: credentials → identity → policy decision → origin, with one decision
//! log line per request.

use policy_core::{
    ClientIp, Country, DenyAnswer, Identity, Mtls, Outcome, Request as PolicyRequest, Target,
};
use worker::{Date, Env, Request, Response};

use crate::config::Gateway;
use crate::crypto;
use crate::directory;
use crate::distinguished_name;
use crate::error::GatewayError;
use crate::identity::{self, Rejection, Source};
use crate::log::DecisionLog;
use crate::proxy;
use crate::raw_url::RawUrl;
use crate::service_token::{self, Presented};
use crate::session;

/// Decides `request` and answers it: the origin's response, or a generic refusal.
pub async fn protect(request: Request, env: &Env, gateway: &Gateway) -> Response {
    let request_id = request_id(&request);
    let method = request.method().to_string();
    let url = RawUrl::of(&request);
    let target = url.as_ref().map(RawUrl::target).unwrap_or_default();
    let not_http = || GatewayError::InvalidPath("the request URL is not an http(s) URL".into());
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
    let decided = match &url {
        Some(url) => decide(&request, env, gateway, url).await,
        None => Err(not_http()),
    };
    let result = match decided {
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
                None => match &url {
                    Some(url) => {
                        proxy::forward(
                            request,
                            gateway,
                            url,
                            decided.email.as_deref(),
                            decided.assertion.as_deref(),
                        )
                        .await
                    }
                    None => Err(not_http()),
                },
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
    /// The application token to forward as `Cf-Access-Jwt-Assertion`: the session cookie's,
    /// or one minted for a bearer or service-token request.
    assertion: Option<String>,
    /// Why the request is refused, if it is.
    refusal: Option<GatewayError>,
}

async fn decide(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    url: &RawUrl,
) -> Result<Decided, GatewayError> {
    let now_ms = Date::now().as_millis();
    let engine = &gateway.engine;
    let target = Target::parse(&url.target())
        .map_err(|e| GatewayError::InvalidPath(format!("request target: {e}")))?;
    let undecided = |outcome: Outcome, refusal: Option<GatewayError>| Decided {
        outcome: outcome.as_str(),
        app: None,
        why: Vec::new(),
        policy: None,
        user: None,
        email: None,
        service_token: None,
        assertion: None,
        refusal,
    };
    let app = match engine.app_for(&target) {
        Ok(Some(app)) => app,
        // Pass-through is for the paths no app covers on a host some app names: never for
        // a host nobody configured (a forged `Host`, the workers.dev name, an IP address).
        Ok(None) if gateway.pass_through_unmatched && engine.names_host(target.host()) => {
            return Ok(undecided(Outcome::NoApp, None))
        }
        Ok(None) => return Ok(undecided(Outcome::NoApp, Some(GatewayError::NoApp))),
        Err(refusal) => {
            let refusal = GatewayError::InvalidPath(format!("`{}`: {refusal}", target.path()));
            return Ok(undecided(Outcome::InvalidPath, Some(refusal)));
        }
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
    let (mut assertion, mut session) = (None, None);
    if let Some(bearer) = bearer(headers) {
        let identity =
            identity::from_entra_token(env, gateway, &bearer, Source::Bearer, now_ms).await;
        match identity.map_err(Rejection::for_bearer) {
            Ok(identity) => match deprovisioned(env, gateway, &identity, now_ms).await? {
                Some(why) => return Ok(refused(GatewayError::Unauthorized(why))),
                None => policy_request.identity = Some(identity),
            },
            Err(error @ GatewayError::Unauthorized(_)) => return Ok(refused(error)),
            Err(error) => return Err(error),
        }
    } else if let Some(token) = session::cookie(headers, session::COOKIE) {
        // A session cookie that does not verify, is revoked or expired is no session.
        session = session::lookup(env, gateway, &token, Some(app.aud()), now_ms).await?;
        if let Some(found) = &session {
            policy_request.identity = Some(found.identity.to_identity());
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

    let idp_id = policy_request
        .identity
        .as_ref()
        .and_then(|i| i.idp_id.as_deref());
    let engine = directory::engine_for(env, gateway, idp_id, now_ms).await?;
    let decide = |request: &PolicyRequest| {
        engine.decide(request).map_err(|e| GatewayError::Forbidden {
            reason: format!("evaluation stopped: {e}"),
            non_identity: false,
        })
    };
    let mut decision = decide(&policy_request)?;
    // A session older than this app's (or policy's) session duration is no session here.
    if session
        .as_ref()
        .is_some_and(|s| s.outlived(decision.session, now_ms))
    {
        crate::log::event(
            "session_refused",
            &[
                ("reason", "older than the session duration of the app"),
                ("app", app.id()),
            ],
        );
        (policy_request.identity, assertion) = (None, None);
        decision = decide(&policy_request)?;
    }
    let identity = policy_request.identity.as_ref();
    let refusal = match decision.outcome {
        Outcome::Allow | Outcome::Bypass | Outcome::ServiceAuth => None,
        Outcome::Block => denied(
            app,
            decision.outcome,
            identity.is_some(),
            "a deny policy matched",
        ),
        Outcome::DefaultDeny => denied(
            app,
            decision.outcome,
            identity.is_some(),
            "no policy allows the request",
        ),
        Outcome::LoginRequired if is_browser(request) => {
            let mut login = worker::Url::parse(&format!(
                "{}://{}/cdn-cgi/access/login",
                url.scheme, url.authority
            ))
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
            login
                .query_pairs_mut()
                .append_pair("redirect_url", &url.path_and_query());
            Some(GatewayError::SignIn(login.to_string()))
        }
        Outcome::LoginRequired => Some(GatewayError::Unauthorized("sign-in required".into())),
        Outcome::NoApp => Some(GatewayError::NoApp),
        Outcome::InvalidPath => Some(GatewayError::InvalidPath(format!(
            "`{}` refused by the directory-scoped engine",
            url.path
        ))),
    };
    // Requests without a session cookie get an assertion of their own.
    if refusal.is_none() && assertion.is_none() {
        assertion = crate::assertion::for_request(
            gateway,
            app,
            &policy_request,
            decision.session,
            headers,
            now_ms,
        )
        .await?;
    }
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

/// With `scim_config.user_deprovision`, why SCIM refuses this identity, if it does: its user,
/// found by object id (the token's `oid`), is disabled or deleted — an Entra token stays valid
/// for its lifetime, so the gateway refuses it itself — or the identity cannot be keyed (no
/// `oid`), or cannot be told apart from a SCIM user bound to no object id. Fails closed.
async fn deprovisioned(
    env: &Env,
    gateway: &Gateway,
    identity: &Identity,
    now_ms: u64,
) -> Result<Option<String>, GatewayError> {
    let Some(scim) = gateway.scim.as_ref() else {
        return Ok(None);
    };
    let ours = identity.idp_id.as_deref() == Some(scim.idp_id.as_str());
    if !(scim.config.user_deprovision && ours) {
        return Ok(None);
    }
    let Some(oid) = identity
        .user_id
        .as_deref()
        .and_then(edge_access_scim::object_id)
    else {
        return Ok(Some(
            "user_deprovision is on and the token has no object id (`oid`) to find the user by"
                .into(),
        ));
    };
    let email = identity.email.as_ref().map(|e| e.as_str());
    let why = crate::scim::deprovisioned(&env.d1("DB")?, &oid, email, now_ms).await?;
    Ok(why.map(|why| match why.as_str() {
        "unbound" => "a SCIM user with this address is not bound to an object id (map objectId \
                      to externalId); the user cannot be told apart from it"
            .to_owned(),
        other => format!("the user is deprovisioned (SCIM): {other}"),
    }))
}

/// A refusal with `outcome`, answered as the app says (its own deny page, its message, or the
/// block page); `None` when `outcome` is no refusal by the app's policies.
fn denied(
    app: &policy_core::App,
    outcome: Outcome,
    signed_in: bool,
    reason: &str,
) -> Option<GatewayError> {
    Some(match app.deny_answer(outcome, signed_in)? {
        DenyAnswer::Redirect(url) => GatewayError::DeniedTo(url.to_owned()),
        DenyAnswer::IdentityPage(Some(message)) => GatewayError::ForbiddenSaying {
            reason: reason.into(),
            message: message.to_owned(),
        },
        DenyAnswer::IdentityPage(None) => GatewayError::Forbidden {
            reason: reason.into(),
            non_identity: false,
        },
        // `DenyAnswer` may grow: anything else is the non-identity page.
        _ => GatewayError::Forbidden {
            reason: reason.into(),
            non_identity: true,
        },
    })
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

fn bearer(headers: &worker::Headers) -> Option<String> {
    let value = headers.get("Authorization").ok().flatten()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

fn request_id(request: &Request) -> String {
    if let Some(ray) = request.headers().get("cf-ray").ok().flatten() {
        return ray;
    }
    crypto::random_uuid().unwrap_or_default()
}

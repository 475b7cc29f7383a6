//! The protected path, one request at a time: read the request ([`Context`]) → decide
//! ([`Verdict`]) → answer (the origin's response, or the refusal's page) → one decision log
//! line.

use policy_core::{DenyAnswer, Identity, Outcome, Request as PolicyRequest, Target};
use worker::{Env, Request, Response};

use crate::config::Gateway;
use crate::context::Context;
use crate::directory;
use crate::error::{GatewayError, Stop};
use crate::identity::{self, Rejection, Source};
use crate::log::DecisionLog;
use crate::proxy;
use crate::refusal::{Addressee, Refusal};
use crate::service_token::{self, Presented};
use crate::session;
use crate::time::{self, UnixMillis};

/// Decides `request` and answers it: the origin's response, or a generic refusal.
pub async fn protect(request: Request, env: &Env, gateway: &Gateway) -> Response {
    let context = Context::read(&request);
    let decided = decide(&request, env, gateway, &context).await;
    let (facts, answered) = match decided {
        Ok(Decided { facts, verdict }) => {
            (facts, answer(request, gateway, &context, verdict).await)
        }
        Err(failure) => (Facts::new("error"), Err(Stop::Failed(failure))),
    };
    let (response, reason) = match answered {
        Ok(response) => (response, None),
        Err(stop) => (
            stop.answer_in(env, gateway, &context.id).await,
            Some(stop.reason()),
        ),
    };
    DecisionLog {
        request_id: &context.id,
        method: &context.method,
        target: &context.target,
        app: facts.app.as_deref(),
        outcome: facts.outcome,
        policy: facts.policy,
        user: facts.user.as_deref(),
        service_token: facts.service_token.as_deref(),
        status: response.status_code(),
        reason,
        why: &facts.why,
        ip: context.ip.map(|ip| ip.to_string()),
        country: context.country.as_deref(),
        latency_ms: time::millis_of(UnixMillis::now().since(context.arrived)),
        config_version: &gateway.version_label,
    }
    .emit();
    response
}

/// [`protect`] without its log line (the benchmark's phase-profile build only): what deciding
/// and forwarding cost apart from logging.
#[cfg(feature = "phase-profile")]
pub(crate) async fn protect_unlogged(request: Request, env: &Env, gateway: &Gateway) -> Response {
    let context = Context::read(&request);
    let answered = match decide(&request, env, gateway, &context).await {
        Ok(Decided { verdict, .. }) => answer(request, gateway, &context, verdict).await,
        Err(failure) => Err(Stop::Failed(failure)),
    };
    match answered {
        Ok(response) => response,
        Err(stop) => stop.answer_in(env, gateway, &context.id).await,
    }
}

/// What the policies said of a request, and what the log says of it.
pub(crate) struct Decided {
    facts: Facts,
    verdict: Verdict,
}

/// A policy outcome: forward the request, or refuse it.
enum Verdict {
    /// To the origin, with the identity's address and the application token to forward as
    /// `Cf-Access-Jwt-Assertion` (the session cookie's, or one minted for a bearer or
    /// service-token request).
    Forward {
        email: Option<String>,
        assertion: Option<String>,
    },
    Refuse(Refusal),
}

/// What the decision line says of a decided request.
struct Facts {
    /// The policy outcome; `invalid_credentials` when credentials were refused first;
    /// `error` when nothing was decided.
    outcome: &'static str,
    app: Option<String>,
    policy: Option<String>,
    user: Option<String>,
    service_token: Option<String>,
    /// For a refusal by the policies: the evaluation trace (groups named by their SCIM or
    /// directory display names next to their ids).
    why: Vec<String>,
}

impl Facts {
    fn new(outcome: &'static str) -> Facts {
        Facts {
            outcome,
            app: None,
            policy: None,
            user: None,
            service_token: None,
            why: Vec::new(),
        }
    }

    fn refuse(self, refusal: Refusal) -> Decided {
        Decided {
            facts: self,
            verdict: Verdict::Refuse(refusal),
        }
    }
}

/// The origin's answer to a decided request, or why there is none.
async fn answer(
    request: Request,
    gateway: &Gateway,
    context: &Context,
    verdict: Verdict,
) -> Result<Response, Stop> {
    let (url, email, assertion) = match (verdict, &context.url) {
        (Verdict::Refuse(refusal), _) => return Err(Stop::Refused(refusal)),
        (Verdict::Forward { email, assertion }, Some(url)) => (url, email, assertion),
        // Nothing without a URL is decided to be forwarded.
        (Verdict::Forward { .. }, None) => {
            let failure = GatewayError::Internal("forwarding a request without a URL".into());
            return Err(Stop::Failed(failure));
        }
    };
    proxy::forward(
        request,
        gateway,
        url,
        email.as_deref(),
        assertion.as_deref(),
    )
    .await
}

pub(crate) async fn decide(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    context: &Context,
) -> Result<Decided, GatewayError> {
    // Refused before anything is decided: the log says `error`.
    let undecidable = |refusal| Ok(Facts::new("error").refuse(refusal));
    let Some(url) = &context.url else {
        return undecidable(Refusal::InvalidPath(
            "the request URL is not an http(s) URL".into(),
        ));
    };
    let now = context.arrived;
    let engine = &gateway.engine;
    let target = match Target::parse(&url.target()) {
        Ok(target) => target,
        Err(e) => return undecidable(Refusal::InvalidPath(format!("request target: {e}"))),
    };
    let app = match engine.app_for(&target) {
        Ok(Some(app)) => app,
        // Pass-through is for the paths no app covers on a host some app names: never for
        // a host nobody configured (a forged `Host`, the workers.dev name, an IP address).
        Ok(None) if gateway.pass_through_unmatched && engine.names_host(target.host()) => {
            return Ok(Decided {
                facts: Facts::new(Outcome::NoApp.as_str()),
                verdict: Verdict::Forward {
                    email: None,
                    assertion: None,
                },
            })
        }
        Ok(None) => return Ok(Facts::new(Outcome::NoApp.as_str()).refuse(Refusal::NoApp)),
        Err(refusal) => {
            let refusal = Refusal::InvalidPath(format!("`{}`: {refusal}", target.path()));
            return Ok(Facts::new(Outcome::InvalidPath.as_str()).refuse(refusal));
        }
    };
    // Refusals name the app (and the user, once known) on their page.
    let addressee = |email: Option<&str>, session: bool| Addressee {
        app_id: app.id().to_owned(),
        app_name: app.name().to_owned(),
        email: email.map(Into::into),
        session,
        return_to: Some(url.path_and_query()),
    };
    let refuse_credentials = |refusal: Refusal| {
        let mut facts = Facts::new("invalid_credentials");
        facts.app = Some(app.id().to_owned());
        Ok(facts.refuse(refusal.addressed(addressee(None, false))))
    };
    let refused = |why: String| refuse_credentials(Refusal::Unauthorized(why));
    let mut policy_request = PolicyRequest::new(target);
    let headers = request.headers();
    match service_token::check(engine, headers) {
        Presented::None => {}
        Presented::Valid(token) => policy_request.service_token = Some(token),
        Presented::Invalid(why) => return refused(why),
    }
    let (mut assertion, mut session) = (None, None);
    if let Some(bearer) = bearer(headers) {
        let identity = identity::from_entra_token(env, gateway, &bearer, Source::Bearer, now).await;
        match identity.map_err(Rejection::for_bearer) {
            Ok(identity) => match deprovisioned(env, gateway, &identity, now).await? {
                Some(why) => return refused(why),
                None => policy_request.identity = Some(identity),
            },
            Err(Stop::Refused(refusal)) => return refuse_credentials(refusal),
            Err(Stop::Failed(error)) => return Err(error),
        }
    } else if let Some(token) = session::cookie(headers, session::COOKIE) {
        // A session cookie that does not verify, is revoked or expired is no session.
        session = session::lookup(env, gateway, &token, Some(app.aud()), now).await?;
        if let Some(found) = &session {
            policy_request.identity = Some(found.identity.to_identity());
            assertion = Some(token);
        }
    }
    context.network_into(&mut policy_request);
    policy_request.mtls = context.mtls.clone();

    let idp_id = policy_request
        .identity
        .as_ref()
        .and_then(|i| i.idp_id.as_deref());
    let engine = directory::engine_for(env, gateway, idp_id, now).await?;
    // Decided once, its steps recorded: they are put into words only for a refusal.
    let decide = |request: &PolicyRequest| {
        engine
            .decide_explained(request)
            .map_err(|e| Refusal::Forbidden {
                reason: format!("evaluation stopped: {e}"),
                non_identity: false,
            })
    };
    let (mut decision, mut explanation) = match decide(&policy_request) {
        Ok(decided) => decided,
        Err(refusal) => return undecidable(refusal),
    };
    // A session older than this app's (or policy's) session duration is no session here.
    if session
        .as_ref()
        .is_some_and(|s| s.outlived(decision.session, now))
    {
        crate::log::event(
            "session_refused",
            &[
                ("reason", "older than the session duration of the app"),
                ("app", app.id()),
            ],
        );
        (policy_request.identity, assertion) = (None, None);
        (decision, explanation) = match decide(&policy_request) {
            Ok(decided) => decided,
            Err(refusal) => return undecidable(refusal),
        };
    }
    let identity = policy_request.identity.as_ref();
    let signed_in = identity.is_some();
    let refusal = match decision.outcome {
        Outcome::Allow | Outcome::Bypass | Outcome::ServiceAuth => None,
        Outcome::Block => denied(app, decision.outcome, signed_in, "a deny policy matched"),
        Outcome::DefaultDeny => denied(
            app,
            decision.outcome,
            signed_in,
            "no policy allows the request",
        ),
        Outcome::LoginRequired if context.browser => {
            let mut login = worker::Url::parse(&format!(
                "{}://{}{}",
                url.scheme,
                url.authority,
                gateway.endpoints.path("login")
            ))
            .map_err(|e| GatewayError::Internal(e.to_string()))?;
            login
                .query_pairs_mut()
                .append_pair("redirect_url", &url.path_and_query());
            Some(Refusal::SignIn(login.to_string()))
        }
        Outcome::LoginRequired => Some(Refusal::Unauthorized("sign-in required".into())),
        Outcome::NoApp => Some(Refusal::NoApp),
        Outcome::InvalidPath => Some(Refusal::InvalidPath(format!(
            "`{}` refused by the directory-scoped engine",
            url.path
        ))),
    };
    let facts = Facts {
        outcome: decision.outcome.as_str(),
        app: Some(app.id().to_owned()),
        policy: decision.policy.map(|p| p.id.unwrap_or(p.name).to_owned()),
        user: identity.and_then(|i| i.user_id.as_deref()).map(Into::into),
        service_token: policy_request
            .service_token
            .as_ref()
            .map(|t| t.token_id.to_string()),
        why: Vec::new(),
    };
    if let Some(refusal) = refusal {
        let why = match decision.outcome {
            Outcome::Block | Outcome::DefaultDeny => explanation.lines(&policy_request),
            _ => Vec::new(),
        };
        let email = identity.and_then(|i| i.email.as_ref()).map(|e| e.as_str());
        // Only a session cookie's identity has a session to sign out of (the assertion is
        // still the cookie's token then).
        let refusal = refusal.addressed(addressee(email, assertion.is_some()));
        return Ok(Facts { why, ..facts }.refuse(refusal));
    }
    // Requests without a session cookie get an assertion of their own.
    if assertion.is_none() {
        assertion = crate::assertion::for_request(
            gateway,
            app,
            &policy_request,
            decision.session,
            headers,
            now,
        )
        .await?;
    }
    let email = identity
        .and_then(|i| i.email.as_ref())
        .map(|e| e.as_str().to_owned());
    Ok(Decided {
        facts,
        verdict: Verdict::Forward { email, assertion },
    })
}

/// With `scim_config.user_deprovision`, why SCIM refuses this identity, if it does: its user,
/// found by object id (the token's `oid`), is disabled or deleted — an Entra token stays valid
/// for its lifetime, so the gateway refuses it itself — or the identity cannot be keyed (no
/// `oid`), or cannot be told apart from a SCIM user bound to no object id. Fails closed.
pub(crate) async fn deprovisioned(
    env: &Env,
    gateway: &Gateway,
    identity: &Identity,
    now: UnixMillis,
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
    let why = crate::scim::deprovisioned(&env.d1("DB")?, &oid, email, now).await?;
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
) -> Option<Refusal> {
    Some(match app.deny_answer(outcome, signed_in)? {
        DenyAnswer::Redirect(url) => Refusal::DeniedTo(url.to_owned()),
        DenyAnswer::IdentityPage(Some(message)) => Refusal::ForbiddenSaying {
            reason: reason.into(),
            message: message.to_owned(),
        },
        DenyAnswer::IdentityPage(None) => Refusal::Forbidden {
            reason: reason.into(),
            non_identity: false,
        },
        // `DenyAnswer` may grow: anything else is the non-identity page.
        _ => Refusal::Forbidden {
            reason: reason.into(),
            non_identity: true,
        },
    })
}

pub(crate) fn bearer(headers: &worker::Headers) -> Option<String> {
    let value = headers.get("Authorization").ok().flatten()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

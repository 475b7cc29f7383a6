//! Which handler answers a request: the route table.

use worker::{Env, Method, Request, Response};

use crate::admin;
use crate::config::Gateway;
use crate::config_store;
use crate::context;
use crate::endpoints::Endpoints;
use crate::error::{GatewayError, Stop};
use crate::gate;
use crate::keys;
use crate::log;
use crate::pages::Frame;
use crate::refusal::Refusal;
use crate::scim;
use crate::session::Revocation;
use crate::signin::{self, callback, connection_test, hub, login, logout};

/// Routes `request`: the gateway's own endpoints under its prefix (`ACCESS_PATH_PREFIX`,
/// default `/cdn-cgi/access`), everything else through the policies. A prefix that is not
/// valid fails every request closed.
pub async fn dispatch(request: Request, env: &Env) -> Response {
    let path = request.path();
    let endpoints = match Endpoints::from_env(env) {
        Ok(endpoints) => endpoints,
        Err(why) => return config_error(&request, None, why),
    };
    if endpoints.below(&path, "api").is_some() {
        return admin::handle(request, env).await;
    }
    if endpoints.below(&path, "health") == Some("") {
        return health(env).await;
    }
    let gateway = match config_store::gateway(env).await {
        Ok(gateway) => gateway,
        Err(error) => return failed(&request, Some(&endpoints), &error),
    };
    let gateway = match gateway.as_ref() {
        Ok(gateway) => gateway,
        Err(why) => return config_error(&request, Some(&endpoints), why.clone()),
    };
    if endpoints.below(&path, "scim/v2").is_some() {
        return scim::handle(request, env, gateway).await;
    }
    if let Some(endpoint) = endpoints.below(&path, "") {
        let endpoint = endpoint.trim_matches('/').to_owned();
        return access_endpoint(request, env, gateway, &endpoint).await;
    }
    #[cfg(feature = "phase-profile")]
    match crate::profile::requested(&request) {
        Some(crate::profile::Asked::Profile(budget_ms)) => {
            return crate::profile::run(request, env, gateway, budget_ms).await;
        }
        Some(crate::profile::Asked::Forward) => {
            return crate::profile::forward(request, env, gateway, false).await;
        }
        Some(crate::profile::Asked::ForwardVerified) => {
            return crate::profile::forward(request, env, gateway, true).await;
        }
        Some(crate::profile::Asked::ForwardDecided) => {
            return gate::protect_unlogged(request, env, gateway).await;
        }
        None => {}
    }
    gate::protect(request, env, gateway).await
}

/// The answer when no configuration serves: the error page with the request id its log line
/// carries (in the default design: the configured one is part of what did not load).
fn config_error(request: &Request, endpoints: Option<&Endpoints>, why: String) -> Response {
    failed(request, endpoints, &GatewayError::Config(why))
}

fn failed(request: &Request, endpoints: Option<&Endpoints>, error: &GatewayError) -> Response {
    let request_id = context::request_id(request);
    log::event(
        "config_error",
        &[("error", &error.reason()), ("request_id", &request_id)],
    );
    error.answer(&Frame {
        endpoints,
        request_id: Some(&request_id),
        ..Frame::default()
    })
}

/// `GET {prefix}/health`, answered even when the configuration does not load: whether this
/// isolate serves a configuration and which version, and how many Entra key sets it holds —
/// never a policy, an app or why a configuration failed (the log says that). 200 when it serves
/// one, else 503.
async fn health(env: &Env) -> Response {
    let (status, body) = match config_store::gateway(env).await {
        Ok(held) => match held.as_ref() {
            Ok(gateway) => (
                200,
                serde_json::json!({
                    "status": "ok",
                    "config_version": gateway.version_label,
                    "key_sets_cached": keys::cached_sets(),
                }),
            ),
            Err(_) => (503, serde_json::json!({ "status": "config_error" })),
        },
        Err(_) => (503, serde_json::json!({ "status": "config_unavailable" })),
    };
    let headers = worker::Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    let _ = headers.set("Cache-Control", "no-store");
    Response::builder()
        .with_status(status)
        .with_headers(headers)
        .fixed(body.to_string().into_bytes())
}

/// Routes `{prefix}/<endpoint>`.
async fn access_endpoint(
    request: Request,
    env: &Env,
    gateway: &Gateway,
    endpoint: &str,
) -> Response {
    let request_id = context::request_id(&request);
    let result = match (request.method(), endpoint) {
        (Method::Get, "login") => login::login(&request, env, gateway, &request_id).await,
        (Method::Get, "authorized") => hub::authorized(&request, env, gateway).await,
        (Method::Get, "test-idp") => connection_test::start(&request, gateway),
        (Method::Get, "callback") => callback::callback(&request, env, gateway).await,
        (Method::Get, "logout") => {
            logout::logout(&request, env, gateway, Revocation::ThisSession, &request_id).await
        }
        (Method::Post, "logout") => {
            logout::logout(&request, env, gateway, Revocation::Everywhere, &request_id).await
        }
        (Method::Get, "certs") => signin::certs(gateway),
        (Method::Get, "get-identity") => signin::get_identity(&request, env, gateway).await,
        _ => Err(Stop::Refused(Refusal::NoApp)),
    };
    match result {
        Ok(response) => response,
        Err(error) => {
            log::event(
                "access_endpoint_error",
                &[
                    ("endpoint", endpoint),
                    ("error", &error.reason()),
                    ("request_id", &request_id),
                ],
            );
            error.answer_in(env, gateway, &request_id).await
        }
    }
}

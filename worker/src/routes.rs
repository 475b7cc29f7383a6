//! Which handler answers a request: the route table.

use worker::{Env, Method, Request, Response};

use crate::admin;
use crate::config::Gateway;
use crate::config_store;
use crate::error::GatewayError;
use crate::gate;
use crate::log;
use crate::refusal::Refusal;
use crate::scim;
use crate::session::Revocation;
use crate::signin::{self, callback, login, logout};

/// Routes `request`: the gateway's own endpoints under `/cdn-cgi/access/`, everything else
/// through the policies.
pub async fn dispatch(request: Request, env: &Env) -> Response {
    let path = request.path();
    if path == admin::PREFIX || path.starts_with(&format!("{}/", admin::PREFIX)) {
        return admin::handle(request, env).await;
    }
    let gateway = match config_store::gateway(env).await {
        Ok(gateway) => gateway,
        Err(error) => {
            log::event("config_error", &[("error", &error.reason())]);
            return error.response();
        }
    };
    let gateway = match gateway.as_ref() {
        Ok(gateway) => gateway,
        Err(why) => {
            let error = GatewayError::Config(why.clone());
            log::event("config_error", &[("error", &error.reason())]);
            return error.response();
        }
    };
    if path == scim::PREFIX || path.starts_with(&format!("{}/", scim::PREFIX)) {
        return scim::handle(request, env, gateway).await;
    }
    if path == "/cdn-cgi/access" || path.starts_with("/cdn-cgi/access/") {
        return access_endpoint(request, env, gateway).await;
    }
    gate::protect(request, env, gateway).await
}

/// Routes `/cdn-cgi/access/<endpoint>`.
async fn access_endpoint(request: Request, env: &Env, gateway: &Gateway) -> Response {
    let path = request.path();
    let endpoint = path.trim_start_matches("/cdn-cgi/access").trim_matches('/');
    let result = match (request.method(), endpoint) {
        (Method::Get, "login") => login::login(&request, gateway),
        (Method::Get, "callback") => callback::callback(&request, env, gateway).await,
        (Method::Get, "logout") => {
            logout::logout(&request, env, gateway, Revocation::ThisSession).await
        }
        (Method::Post, "logout") => {
            logout::logout(&request, env, gateway, Revocation::Everywhere).await
        }
        (Method::Get, "certs") => signin::certs(gateway),
        (Method::Get, "get-identity") => signin::get_identity(&request, env, gateway).await,
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

//! Which handler answers a request.

use worker::{Env, Request, Response};

use crate::admin;
use crate::config_store;
use crate::error::GatewayError;
use crate::gate;
use crate::log;
use crate::scim;
use crate::signin;

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
        return signin::handle(request, env, gateway).await;
    }
    gate::protect(request, env, gateway).await
}

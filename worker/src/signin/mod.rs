//! The gateway's own endpoints under its prefix (`/cdn-cgi/access/` by default, routed in
//! [`crate::routes`]): the sign-in — [`login`] starts the OIDC code flow with state, nonce and
//! PKCE (the sign-in in progress is kept by the browser, see [`crate::pending`]), [`callback`]
//! finishes it —, [`logout`], the identity and the public keys.

pub mod callback;
pub mod connection_test;
pub mod hub;
pub mod login;
pub mod logout;

use edge_access_token::TokenVersion;
use serde_json::json;
use worker::{Env, Request, Response};

use crate::config::Gateway;
use crate::error::{GatewayError, Stop};
use crate::refusal::Refusal;
use crate::session;
use crate::signing::SigningKeys;
use crate::time::UnixMillis;

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

/// Which of Entra's endpoints sign-ins go through: v1 (`/oauth2/authorize`, a v1 ID token)
/// when a rule reads the authentication methods — Entra puts `amr` in v1 tokens only —
/// otherwise v2.
pub(crate) fn sign_in_version(gateway: &Gateway) -> TokenVersion {
    if gateway.engine.uses_auth_method() {
        TokenVersion::V1
    } else {
        TokenVersion::V2
    }
}

/// The path of Entra's `authorize` or `token` endpoint of `version` under the tenant.
pub(crate) fn endpoint(version: TokenVersion, name: &str) -> String {
    match version {
        TokenVersion::V1 => format!("oauth2/{name}"),
        TokenVersion::V2 => format!("oauth2/v2.0/{name}"),
    }
}

/// The gateway's signing keys, which every sign-in needs.
pub(crate) fn signing_keys(gateway: &Gateway) -> Result<&SigningKeys, GatewayError> {
    gateway
        .signing
        .as_ref()
        .ok_or_else(|| GatewayError::Config("SESSION_SIGNING_KEY is not set".into()))
}

/// `{prefix}/certs`: the gateway's public keys.
pub fn certs(gateway: &Gateway) -> Result<Response, Stop> {
    let keys = gateway
        .signing
        .as_ref()
        .ok_or_else(|| GatewayError::Config("SESSION_SIGNING_KEY is not set".into()))?;
    Ok(Response::from_json(&keys.certs_document())?)
}

/// `{prefix}/get-identity`: the signed-in user's identity, as stored.
pub async fn get_identity(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
) -> Result<Response, Stop> {
    let now = UnixMillis::now();
    let token = session::cookie(request.headers(), session::COOKIE)
        .ok_or_else(|| Stop::Refused(Refusal::Unauthorized("no session cookie".into())))?;
    let stored = session::lookup(env, gateway, &token, None, now)
        .await?
        .ok_or_else(|| Stop::Refused(Refusal::Unauthorized("no valid session".into())))?
        .identity;
    let body = json!({
        "email": stored.email,
        "user_uuid": stored.user_id,
        "idp": { "id": stored.idp_id, "type": "azureAD" },
        "geo": { "country": stored.country },
        "amr": stored.amr,
        "groups": stored.groups,
        "iat": now.unix_secs(),
    });
    Ok(Response::from_json(&body)?)
}

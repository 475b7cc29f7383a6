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
use policy_core::GroupId;
use serde_json::json;
use worker::{Env, Request, Response};

use crate::config::Gateway;
use crate::context::Context;
use crate::directory;
use crate::error::{GatewayError, Stop};
use crate::refusal::Refusal;
use crate::session;
use crate::session_store::StoredIdentity;
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

/// `{prefix}/get-identity`: the signed-in user's identity in the shape Access answers it —
/// the fields its reference lists (`email`, `idp`, `geo`, `user_uuid`, `devicePosture`,
/// `account_id`, `iat`, `ip`, `auth_status`, `common_name`, `service_token_id`,
/// `service_token_status`, `is_warp`, `is_gateway`, `gateway_account_id`, `device_id`,
/// `version`, `device_sessions`) and the observed `id`, `name`, `amr`, with `groups` as
/// `{id, name}` objects named from the SCIM directory or the document's directory where one
/// names them. What the gateway has no counterpart for (Cloudflare accounts, WARP, devices) is
/// empty or `false`, never made up. Without a valid session: 401.
pub async fn get_identity(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
) -> Result<Response, Stop> {
    let now = UnixMillis::now();
    let token = session::cookie(request.headers(), session::COOKIE)
        .ok_or_else(|| Stop::Refused(Refusal::Unauthorized("no session cookie".into())))?;
    let session = session::lookup(env, gateway, &token, None, now)
        .await?
        .ok_or_else(|| Stop::Refused(Refusal::Unauthorized("no valid session".into())))?;
    let stored = &session.identity;
    let engine = directory::engine_for(env, gateway, stored.idp_id.as_deref(), now).await?;
    let context = Context::read(request);
    let body = identity_document(
        stored,
        session.signed_in,
        context.ip.map(|ip| ip.to_string()),
        |id| {
            GroupId::parse(id)
                .ok()
                .and_then(|g| engine.group_name(g))
                .map(Into::into)
        },
    );
    let response = Response::from_json(&body)?;
    let _ = response.headers().set("Cache-Control", "no-store");
    Ok(response)
}

/// The get-identity document of `stored`, signed in at `signed_in`, asked from `ip`; each
/// group named by `group_name` where it knows the name.
fn identity_document(
    stored: &StoredIdentity,
    signed_in: UnixMillis,
    ip: Option<String>,
    group_name: impl Fn(&str) -> Option<String>,
) -> serde_json::Value {
    let groups: Vec<serde_json::Value> = stored
        .groups
        .iter()
        .map(|id| match group_name(id) {
            Some(name) => json!({ "id": id, "name": name }),
            None => json!({ "id": id }),
        })
        .collect();
    let name = stored
        .claims
        .iter()
        .find(|(claim, _)| claim == "name")
        .and_then(|(_, values)| values.first());
    json!({
        "id": stored.user_id,
        "name": name,
        "email": stored.email,
        "user_uuid": stored.user_id,
        "groups": groups,
        // Every provider the gateway signs in with is Entra ID.
        "idp": { "id": stored.idp_id, "type": "azureAD" },
        "geo": { "country": stored.country },
        "amr": stored.amr,
        "iat": signed_in.unix_secs(),
        "ip": ip,
        "auth_status": "NONE",
        "common_name": "",
        "service_token_id": "",
        "service_token_status": false,
        "is_warp": false,
        "is_gateway": false,
        "account_id": "",
        "gateway_account_id": "",
        "device_id": "",
        "devicePosture": {},
        "device_sessions": {},
        "version": 1,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_identity_has_access_s_fields_and_named_groups() {
        let stored = StoredIdentity {
            email: Some("ada@example.com".into()),
            user_id: Some("oid-1".into()),
            tenant_id: Some("tid".into()),
            idp_id: Some("idp".into()),
            groups: vec!["g1".into(), "g2".into()],
            amr: vec!["pwd".into()],
            acrs: Vec::new(),
            claims: vec![("name".into(), vec!["Ada Lovelace".into()])],
            country: Some("PT".into()),
        };
        let named = |id: &str| (id == "g1").then(|| "Engineering".to_owned());
        let body = identity_document(
            &stored,
            UnixMillis::from_millis(1_700_000_000_000),
            Some("203.0.113.7".into()),
            named,
        );
        assert_eq!(
            body["groups"],
            json!([{ "id": "g1", "name": "Engineering" }, { "id": "g2" }])
        );
        assert_eq!(body["name"], "Ada Lovelace");
        assert_eq!(body["idp"], json!({ "id": "idp", "type": "azureAD" }));
        assert_eq!(body["iat"], 1_700_000_000);
        assert_eq!(body["ip"], "203.0.113.7");
        for field in [
            "id",
            "email",
            "user_uuid",
            "geo",
            "amr",
            "auth_status",
            "common_name",
            "service_token_id",
            "service_token_status",
            "is_warp",
            "is_gateway",
            "account_id",
            "gateway_account_id",
            "device_id",
            "devicePosture",
            "device_sessions",
            "version",
        ] {
            assert!(body.get(field).is_some(), "{field}");
        }
    }
}

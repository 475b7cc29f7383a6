//! `GET {prefix}/login`: the start of a sign-in.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::TokenVersion;
use policy_core::{IdentityProvider, Target};
use sha2::{Digest, Sha256};
use worker::{Request, Response, Url};

use super::{endpoint, local_path, sign_in_version, signing_keys};
use crate::config::Gateway;
use crate::error::{GatewayError, Stop};
use crate::http::{origin_of, query, redirect};
use crate::pending::{self, Pending};
use crate::time::UnixMillis;

/// `GET {prefix}/login?redirect_url=/path`: starts the OIDC code flow. Stores nothing:
/// the sign-in in progress goes to the browser in its `EA_Login_…` cookie. With
/// `interactive=1` (after a silent sign-in Entra could not finish), a provider's
/// `prompt: none` is not sent.
pub fn login(request: &Request, gateway: &Gateway) -> Result<Response, Stop> {
    let url = request.url()?;
    let interactive = query(&url, "interactive").as_deref() == Some("1");
    let redirect_path = pending::bounded_target(local_path(query(&url, "redirect_url").as_deref()));
    let host = url.host_str().unwrap_or("");
    let idp = provider_for(gateway, host, &redirect_path)
        .ok_or_else(|| GatewayError::Config("no identity provider".into()))?;
    let keys = pending::Keys::new(signing_keys(gateway)?)?;
    let (state, issued) = keys.issue(UnixMillis::now())?;
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
                &format!("{}{}", origin_of(&url), gateway.endpoints.path("callback")),
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
    let cookie_path = gateway.endpoints.cookie_path();
    let mut cookies = pending::evictions(&keys, request.headers(), &cookie_path);
    cookies.push(pending::set_cookie(&state, Some(&cookie), &cookie_path));
    Ok(redirect(authorize.as_str(), &cookies))
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

//! `GET {prefix}/login`: the start of a sign-in, with the identity provider the app allows —
//! or, when it allows several, the login chooser, whose links name one (`idp`).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::TokenVersion;
use policy_core::{App, IdentityProvider, Target};
use sha2::{Digest, Sha256};
use worker::{Env, Request, Response, Url};

use super::{endpoint, hub, local_path, sign_in_version, signing_keys};
use crate::config::Gateway;
use crate::error::{GatewayError, Stop};
use crate::http::{origin_of, query, redirect};
use crate::pages;
use crate::pending::{self, Pending};
use crate::refusal::Refusal;
use crate::time::UnixMillis;

/// `GET {prefix}/login?redirect_url=/path[&idp=id]`: starts the OIDC code flow with
/// the identity provider `idp` names, which must be one the app allows; without `idp`, with
/// the app's only provider (or the first, with `auto_redirect_to_identity`), else answers the
/// login chooser. Stores nothing: the sign-in in progress goes to the browser in its
/// `EA_Login_…` cookie, with the provider. With `interactive=1` (a page's "another account"
/// link, or after a silent sign-in Entra could not finish), Entra is asked to let the user
/// pick the account ([`prompt`]).
///
/// With the team domain as the sign-in hub ([`super::hub`]), an app host sends the browser to
/// the team domain instead, and the team domain signs in for the app host its `host` names.
pub async fn login(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    request_id: &str,
) -> Result<Response, Stop> {
    let url = request.url()?;
    let redirect_path = pending::bounded_target(local_path(query(&url, "redirect_url").as_deref()));
    if let Some(hub) = &gateway.hub {
        let here = crate::endpoints::authority(&url);
        if !hub.is_team(&here) {
            return hub::to_team(request, gateway, hub, &url, &redirect_path);
        }
        if let Some(host) = query(&url, "host") {
            return hub::at_team(request, env, gateway, hub, &url, &host, request_id).await;
        }
    }
    let host = url.host_str().unwrap_or("");
    let choice = Choice::of(gateway, host, &redirect_path);
    let requested = query(&url, "idp");
    start_or_choose(
        request,
        gateway,
        &url,
        &choice,
        requested.as_deref(),
        Pending::returning_to(redirect_path, None),
        request_id,
    )
}

/// Starts the sign-in with the provider `requested` names (one of `choice`'s, else 400), or
/// with the choice's only provider (or first, with `auto_redirect_to_identity`), else answers
/// the login chooser. `login`: the sign-in to keep (where to return, and on the team domain the
/// app host it is for), its provider and state filled in here.
pub(crate) fn start_or_choose(
    request: &Request,
    gateway: &Gateway,
    url: &Url,
    choice: &Choice<'_>,
    requested: Option<&str>,
    mut login: Pending,
    request_id: &str,
) -> Result<Response, Stop> {
    let idp = match requested {
        Some(id) => choice.allowed(id)?,
        None => match choice.providers.as_slice() {
            [] => return Err(GatewayError::Config("no identity provider".into()).into()),
            [only] => *only,
            [first, ..] if choice.app.is_some_and(App::auto_redirect_to_identity) => *first,
            several => {
                // The links keep every parameter of this login but the provider.
                let mut kept = worker::url::form_urlencoded::Serializer::new(String::new());
                for (name, value) in url.query_pairs() {
                    if name != "idp" {
                        kept.append_pair(&name, &value);
                    }
                }
                let login_path = gateway.endpoints.path("login");
                let frame = pages::Frame {
                    design: Some(&gateway.login_design),
                    endpoints: Some(&gateway.endpoints),
                    request_id: Some(request_id),
                    app: choice.app.map(App::name),
                    return_to: Some(&login.redirect),
                    ..pages::Frame::default()
                };
                return Ok(chooser(&frame, several, &login_path, &kept.finish()));
            }
        },
    };
    login.idp_id = idp.id.to_string();
    begin(request, gateway, url, idp, login)
}

/// Starts the OIDC code flow with `idp`, keeping `login` (its state filled in here) in the
/// browser's sign-in cookie: the redirect to Entra's `authorize` endpoint.
pub(crate) fn begin(
    request: &Request,
    gateway: &Gateway,
    url: &Url,
    idp: &IdentityProvider,
    mut login: Pending,
) -> Result<Response, Stop> {
    let interactive = query(url, "interactive").as_deref() == Some("1");
    let keys = pending::Keys::new(signing_keys(gateway)?)?;
    let (state, issued) = keys.issue(UnixMillis::now())?;
    let nonce = issued.nonce(&state)?;
    let verifier = if idp.pkce_enabled {
        Some(issued.verifier(&state)?)
    } else {
        None
    };
    login.state.clone_from(&state);
    let cookie = issued.seal(&login)?;
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
                &format!("{}{}", origin_of(url), gateway.endpoints.path("callback")),
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
        if let Some(prompt) = prompt(idp.prompt.as_deref(), interactive) {
            q.append_pair("prompt", prompt);
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

/// The `prompt` sent to Entra: the provider's (`configured`); for an interactive sign-in
/// (`interactive=1`), `select_account` instead of none or `none`, so the user can pick (or add)
/// another account than the one signed in at Entra — a configured `login` or `consent` asks
/// for at least as much and is kept.
fn prompt(configured: Option<&str>, interactive: bool) -> Option<&str> {
    match configured {
        None | Some("none") if interactive => Some("select_account"),
        configured => configured,
    }
}

/// The identity providers a browser may sign in with for a target: the app's `allowed_idps`
/// (in their order), else — an app without the setting, or a target no app covers — every
/// provider of the document.
pub(crate) struct Choice<'g> {
    pub(crate) app: Option<&'g App>,
    pub(crate) providers: Vec<&'g IdentityProvider>,
}

impl<'g> Choice<'g> {
    /// The choice for `path` on `host`.
    pub(crate) fn of(gateway: &'g Gateway, host: &str, path: &str) -> Choice<'g> {
        let engine = &gateway.engine;
        let idps = engine.identity_providers();
        let app = Target::parse(&format!("{host}{path}"))
            .ok()
            .and_then(|t| engine.app_for(&t).ok().flatten());
        let providers = match app.and_then(App::allowed_idps) {
            Some(allowed) => allowed.filter_map(|i| idps.get(i)).collect(),
            None => idps.iter().collect(),
        };
        Choice { app, providers }
    }

    /// The provider `id` names, if it is one of the choice; otherwise a 400 whose log line
    /// names the provider asked for and the app.
    pub(crate) fn allowed(&self, id: &str) -> Result<&'g IdentityProvider, Stop> {
        self.providers
            .iter()
            .find(|p| *p.id == *id)
            .copied()
            .ok_or_else(|| {
                Stop::Refused(Refusal::BadRequest(format!(
                    "sign-in with identity provider `{}` refused: {}",
                    id.chars().take(64).collect::<String>(),
                    match self.app {
                        Some(app) => format!("not one app `{}` allows", app.id()),
                        None => "no identity provider of the configuration".into(),
                    }
                )))
            })
    }
}

/// The login chooser: one link per provider, each starting this sign-in with it at `login`
/// (the login endpoint's path), `idp` first, then `kept` (this sign-in's other parameters).
fn chooser(
    frame: &pages::Frame,
    providers: &[&IdentityProvider],
    login: &str,
    kept: &str,
) -> Response {
    let options: Vec<(String, String)> = providers
        .iter()
        .map(|p| {
            let mut href = worker::url::form_urlencoded::Serializer::new(String::new());
            href.append_pair("idp", &p.id);
            let href = href.finish();
            let href = if kept.is_empty() {
                format!("{login}?{href}")
            } else {
                format!("{login}?{href}&{kept}")
            };
            (p.name.to_string(), href)
        })
        .collect();
    pages::chooser(&options, frame)
}

#[cfg(test)]
mod tests {
    use super::prompt;

    #[test]
    fn an_interactive_sign_in_lets_the_user_pick_the_account_unless_the_provider_asks_more() {
        assert_eq!(prompt(None, false), None);
        assert_eq!(prompt(Some("none"), false), Some("none"));
        assert_eq!(prompt(Some("login"), false), Some("login"));
        assert_eq!(prompt(None, true), Some("select_account"));
        assert_eq!(prompt(Some("none"), true), Some("select_account"));
        assert_eq!(prompt(Some("select_account"), true), Some("select_account"));
        assert_eq!(prompt(Some("login"), true), Some("login"));
        assert_eq!(prompt(Some("consent"), true), Some("consent"));
    }
}

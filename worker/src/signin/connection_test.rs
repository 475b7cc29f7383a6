//! The connection test of an identity provider, as the Access dashboard's **Test** button: an
//! admin asks the management API for a test URL (`POST …/api/access/identity_providers/{id}/test`,
//! [`ticket_url`]), opens it in a browser, signs in through that provider, and gets a page that
//! says whether the connection works and what the provider sent: the ID token's claims, the
//! groups (and whether the groups claim overflowed so that Graph was read), which claim fed the
//! email, and warnings for the common misconfigurations. Nothing is stored: no session, no
//! cookie but the sign-in's own, which the callback clears.
//!
//! A test URL carries a ticket sealed by the gateway ([`crate::sealed`]) naming the provider,
//! valid for [`TICKET_TTL`]: anyone holding it can start a test sign-in, which shows them only
//! what their own sign-in sends.

use std::fmt::Write as _;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use policy_core::{GroupId, Identity, IdentityProvider};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use worker::{Env, Request, Response, Url};

use super::callback::{exchange_code, spend_state, token_response};
use super::login::begin;
use super::{sign_in_version, signing_keys};
use crate::config::Gateway;
use crate::directory;
use crate::error::{GatewayError, Stop};
use crate::http::{origin_of, query, Exchange};
use crate::identity::{self, Source};
use crate::log;
use crate::pages;
use crate::pending::{self, Pending};
use crate::refusal::Refusal;
use crate::sealed::Sealer;
use crate::session;
use crate::time::UnixMillis;

/// How long a test URL starts a test.
pub const TICKET_TTL: Duration = Duration::from_secs(10 * 60);

/// The purpose tickets are sealed for.
const PURPOSE: &str = "connection test";

/// What a test URL's ticket says.
#[derive(Serialize, Deserialize)]
struct Ticket {
    /// The identity provider's id.
    #[serde(rename = "i")]
    idp: String,
    /// When it stops starting tests (Unix seconds).
    #[serde(rename = "e")]
    expires_s: u64,
}

/// The URL that starts a connection test of provider `idp_id` (`None`: no such provider), on
/// the team domain when it is the sign-in hub (its callback is the one registered in Entra),
/// else on the host the API was asked on.
///
/// # Errors
/// Without signing keys, or when sealing fails.
pub fn ticket_url(
    gateway: &Gateway,
    asked_at: &Url,
    idp_id: &str,
) -> Result<Option<String>, GatewayError> {
    if !gateway
        .engine
        .identity_providers()
        .iter()
        .any(|p| *p.id == *idp_id)
    {
        return Ok(None);
    }
    let sealer = Sealer::new(signing_keys(gateway)?, PURPOSE)?;
    let ticket = sealer.seal(&Ticket {
        idp: idp_id.to_owned(),
        expires_s: UnixMillis::now().saturating_add(TICKET_TTL).unix_secs(),
    })?;
    let origin = match &gateway.hub {
        Some(hub) => hub.origin(asked_at.scheme()),
        None => origin_of(asked_at),
    };
    let mut url = Url::parse(&format!("{origin}{}", gateway.endpoints.path("test-idp")))
        .map_err(|e| GatewayError::Internal(format!("test URL: {e}")))?;
    url.query_pairs_mut().append_pair("ticket", &ticket);
    Ok(Some(url.into()))
}

/// `GET {prefix}/test-idp?ticket=…`: starts the test sign-in with the ticket's provider.
pub fn start(request: &Request, gateway: &Gateway) -> Result<Response, Stop> {
    let bad = |why: &str| Stop::Refused(Refusal::BadRequest(format!("connection test: {why}")));
    let url = request.url()?;
    let text = query(&url, "ticket").ok_or_else(|| bad("no ticket"))?;
    let ticket: Ticket = Sealer::new(signing_keys(gateway)?, PURPOSE)?
        .open(&text)
        .ok_or_else(|| bad("a ticket not issued here"))?;
    if UnixMillis::now().unix_secs() > ticket.expires_s {
        return Err(bad("the ticket expired: ask the API for a new test URL"));
    }
    let idp = gateway
        .engine
        .identity_providers()
        .iter()
        .find(|p| *p.id == *ticket.idp)
        .ok_or_else(|| bad("the identity provider is no longer configured"))?;
    log::event("connection_test", &[("idp", &idp.id), ("step", "started")]);
    let login = Pending {
        idp_id: idp.id.to_string(),
        test: true,
        ..Pending::returning_to("/".into(), None)
    };
    begin(request, gateway, &url, idp, login)
}

/// Whether the callback `url` finishes a connection test: its state is this gateway's and the
/// browser's sign-in cookie for it says so.
pub fn is_test(request: &Request, gateway: &Gateway, url: &Url) -> bool {
    let Some(state) = query(url, "state") else {
        return false;
    };
    let Some(keys) = gateway
        .signing
        .as_ref()
        .and_then(|s| pending::Keys::new(s).ok())
    else {
        return false;
    };
    keys.check(&state)
        .and_then(|issued| {
            session::cookie(request.headers(), &pending::cookie_name(&state))
                .and_then(|value| issued.open(&value))
        })
        .is_some_and(|login| login.state == state && login.test)
}

/// The callback of a connection test: the report, or why the provider refused.
pub async fn callback(
    request: &Request,
    env: &Env,
    gateway: &Gateway,
    url: &Url,
) -> Result<Response, Stop> {
    let state = query(url, "state").unwrap_or_default();
    let clear = pending::set_cookie(&state, None, &gateway.endpoints.cookie_path());
    let answer = |page: Response| pages::with_header(page, "Set-Cookie", &clear);
    if let Some(error) = query(url, "error") {
        let code = query(url, "error_description")
            .as_deref()
            .and_then(crate::http::entra_error_code);
        log::event(
            "connection_test",
            &[("step", "authorize"), ("error", &error)],
        );
        return Ok(answer(failed(
            gateway,
            url,
            None,
            &format!("Entra refused the sign-in: `{error}`"),
            code.as_deref(),
        )));
    }
    let code = query(url, "code").ok_or_else(|| {
        Stop::Refused(Refusal::SignInFailed(
            "callback without code and state".into(),
        ))
    })?;
    let (issued, login, now) = spend_state(request, env, gateway, &state).await?;
    let idp = gateway
        .engine
        .identity_providers()
        .iter()
        .find(|p| *p.id == *login.idp_id)
        .ok_or_else(|| GatewayError::Config("the test's identity provider is gone".into()))?;
    let version = sign_in_version(gateway);
    let body = match exchange_code(gateway, idp, version, &issued, &state, &code, url).await? {
        Ok(body) => body,
        Err(error) => {
            log::event(
                "connection_test",
                &[
                    ("idp", &idp.id),
                    ("step", "token"),
                    ("error", &error.to_string()),
                ],
            );
            let (why, code) = match &error {
                Exchange::Unreachable(_) => ("Entra's token endpoint could not be reached", None),
                Exchange::Status { code, .. } => ("Entra refused the code exchange", code.clone()),
            };
            return Ok(answer(failed(
                gateway,
                url,
                Some(idp),
                &format!("{why}: {error}"),
                code.as_deref(),
            )));
        }
    };
    let tokens = token_response(&body)?;
    let presented = Source::SignIn {
        idp,
        version,
        nonce: issued.nonce(&state)?,
        access_token: tokens.access_token.as_deref(),
    };
    let identity =
        match identity::from_entra_token(env, gateway, &tokens.id_token, presented, now).await {
            Ok(identity) => identity,
            Err(rejection) => {
                let why = rejection.for_sign_in().reason();
                log::event(
                    "connection_test",
                    &[("idp", &idp.id), ("step", "id_token"), ("error", &why)],
                );
                return Ok(answer(failed(
                    gateway,
                    url,
                    Some(idp),
                    &format!("The ID token was not accepted: {why}"),
                    None,
                )));
            }
        };
    let claims = payload(&tokens.id_token);
    // Group names as get-identity gives them; a directory that cannot be read leaves the ids.
    let engine = directory::engine_for(env, gateway, Some(&idp.id), now)
        .await
        .ok();
    let group_name = |group: GroupId| {
        engine
            .as_ref()
            .and_then(|e| e.group_name(group))
            .map(Into::into)
    };
    log::event("connection_test", &[("idp", &idp.id), ("step", "works")]);
    Ok(answer(works(gateway, idp, &claims, &identity, group_name)))
}

/// The claims of a JWT whose signature was checked already.
fn payload(token: &str) -> Map<String, Value> {
    token
        .split('.')
        .nth(1)
        .and_then(|p| URL_SAFE_NO_PAD.decode(p).ok())
        .and_then(|json| serde_json::from_slice(&json).ok())
        .unwrap_or_default()
}

/// What the report says about a sign-in that worked.
#[derive(Debug, PartialEq, Eq)]
struct Findings {
    /// The claims named the email came from.
    email_from: Vec<String>,
    /// Where the groups came from.
    groups_from: &'static str,
    warnings: Vec<String>,
}

/// Reads `claims` (the ID token's) and `identity` (the gateway's reading of it) for `idp`.
fn findings(
    idp: &IdentityProvider,
    claims: &Map<String, Value>,
    identity: &Identity,
    reads_auth_method: bool,
) -> Findings {
    let mut warnings = Vec::new();
    let email = identity.email.as_ref().map(|e| e.as_str().to_owned());
    let email_from: Vec<String> = match &email {
        Some(email) => claims
            .iter()
            .filter(|(_, v)| v.as_str().is_some_and(|s| s.eq_ignore_ascii_case(email)))
            .map(|(name, _)| name.clone())
            .collect(),
        None => {
            warnings.push(match &idp.email_claim_name {
                Some(name) => format!(
                    "No email address: the ID token has no `{name}` claim holding one \
                     (`email_claim_name`). Email rules can never match."
                ),
                None => "No email address: the ID token has none of `upn`, \
                         `preferred_username`, `unique_name` holding one. Add the `email` or \
                         `upn` optional claim, or set `email_claim_name`. Email rules can \
                         never match."
                    .into(),
            });
            Vec::new()
        }
    };
    let overage = claims
        .get("_claim_names")
        .and_then(|n| n.get("groups"))
        .is_some()
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true);
    let groups_from = if !idp.support_groups {
        warnings.push(
            "Groups are not loaded: `support_groups` is off, so `azureAD` group rules of this \
             provider never match."
                .into(),
        );
        "not loaded (support_groups is off)"
    } else if overage {
        "Microsoft Graph: the groups claim overflowed (over 200 groups)"
    } else if claims.get("groups").is_some() {
        "the ID token's groups claim"
    } else {
        warnings.push(
            "Entra sent no groups claim: add one in the app registration (Token configuration \
             → Add groups claim → Group ID). Until then every sign-in reads the groups through \
             Microsoft Graph."
                .into(),
        );
        "Microsoft Graph: the ID token has no groups claim"
    };
    if !claims.contains_key("amr") {
        warnings.push(if reads_auth_method {
            "The ID token has no `amr` claim, though a rule reads the authentication method: \
             such rules can never match."
                .into()
        } else {
            "The ID token has no `amr` claim (Entra sends it in v1 ID tokens only; the gateway \
             signs in through v1 once a rule reads `auth_method`): `auth_method` rules would \
             never match with this token."
                .into()
        });
    }
    Findings {
        email_from,
        groups_from,
        warnings,
    }
}

/// What to fix for an Entra error code.
fn advice(code: &str, gateway: &Gateway, url: &Url, idp: Option<&IdentityProvider>) -> String {
    let secret = idp.map_or_else(
        || crate::config::SHARED_SECRET.to_owned(),
        |p| {
            format!(
                "{} (or {})",
                policy_core::client_secret_var(&p.id),
                crate::config::SHARED_SECRET
            )
        },
    );
    let callback = format!("{}{}", origin_of(url), gateway.endpoints.path("callback"));
    match code {
        "AADSTS7000215" | "AADSTS7000222" | "AADSTS7000218" => format!(
            "The client secret is wrong or expired. Create a new one under Certificates & \
             secrets in the app registration and set its value (not its ID) as the Worker \
             secret {secret}."
        ),
        "AADSTS50011" | "AADSTS500112" | "AADSTS500113" => format!(
            "The redirect URI is not registered. Add `{callback}` as a Web redirect URI of \
             the app registration (Authentication)."
        ),
        "AADSTS700016" => "The application (client) ID is not found in the directory: check \
                           `client_id` and `directory_id`, and that the app registration is \
                           in that tenant (or multitenant and consented there)."
            .into(),
        "AADSTS90002" | "AADSTS90023" => "The tenant is not found: check `directory_id`.".into(),
        "AADSTS65001" | "AADSTS65004" => "Consent is missing: grant admin consent for the \
                                          app registration's API permissions."
            .into(),
        _ => "See Microsoft's AADSTS error code reference for this code.".into(),
    }
}

/// The page of a test that failed: status 502 (the provider refused), with Entra's code and
/// what to fix.
fn failed(
    gateway: &Gateway,
    url: &Url,
    idp: Option<&IdentityProvider>,
    why: &str,
    code: Option<&str>,
) -> Response {
    let mut body = String::new();
    let _ = write!(body, "<p>{}</p>", pages::escape(why));
    if let Some(code) = code {
        let _ = write!(
            body,
            "<h2>Entra's error code</h2><p><code>{}</code></p><h2>What to fix</h2><p>{}</p>",
            pages::escape(code),
            pages::escape(&advice(code, gateway, url, idp))
        );
    }
    page(gateway, "Your connection failed", idp, &body, 502)
}

/// The groups, each with its name where `group_name` knows it (SCIM's groups table, the
/// document's directory), else by its id alone.
fn groups_list(groups: &[GroupId], group_name: impl Fn(GroupId) -> Option<String>) -> String {
    let mut list = format!("<h2>Groups ({})</h2><ul id=\"groups\">", groups.len());
    for group in groups {
        let id = pages::escape(&group.to_string());
        let _ = match group_name(*group) {
            Some(name) => write!(list, "<li>{} <code>{id}</code></li>", pages::escape(&name)),
            None => write!(list, "<li><code>{id}</code></li>"),
        };
    }
    list.push_str("</ul>");
    list
}

/// The page of a test that worked; its groups named by `group_name` where it knows them.
fn works(
    gateway: &Gateway,
    idp: &IdentityProvider,
    claims: &Map<String, Value>,
    identity: &Identity,
    group_name: impl Fn(GroupId) -> Option<String>,
) -> Response {
    let found = findings(idp, claims, identity, gateway.engine.uses_auth_method());
    let mut body = String::new();
    if !found.warnings.is_empty() {
        body.push_str(
            "<section aria-labelledby=\"warnings\"><h2 id=\"warnings\">Warnings</h2><ul>",
        );
        for warning in &found.warnings {
            let _ = write!(body, "<li>{}</li>", pages::escape(warning));
        }
        body.push_str("</ul></section>");
    }
    let email = identity.email.as_ref().map_or("none", |e| e.as_str());
    let _ = write!(
        body,
        "<h2>Identity</h2><dl><dt>Email</dt><dd id=\"email\">{}</dd><dt>Email read from</dt><dd id=\"email-from\">{}</dd>\
         <dt>User id (oid)</dt><dd>{}</dd><dt>Groups from</dt><dd id=\"groups-from\">{}</dd></dl>",
        pages::escape(email),
        pages::escape(&found.email_from.join(", ")),
        pages::escape(identity.user_id.as_deref().unwrap_or("none")),
        pages::escape(found.groups_from),
    );
    body.push_str(&groups_list(&identity.groups, group_name));
    body.push_str("<h2>Claims received</h2><table><thead><tr><th scope=\"col\">Claim</th><th scope=\"col\">Value</th></tr></thead><tbody>");
    for (name, value) in claims {
        if name == "nonce" {
            continue;
        }
        let value = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let _ = write!(
            body,
            "<tr><th scope=\"row\"><code>{}</code></th><td>{}</td></tr>",
            pages::escape(name),
            pages::escape(&value)
        );
    }
    body.push_str("</tbody></table>");
    page(gateway, "Your connection works", Some(idp), &body, 200)
}

/// A report page: plain HTML, no script, nothing loaded.
fn page(
    gateway: &Gateway,
    title: &str,
    idp: Option<&IdentityProvider>,
    body: &str,
    status: u16,
) -> Response {
    let provider = idp.map_or_else(String::new, |p| {
        format!(
            "<p>Identity provider: {} (<code>{}</code>)</p>",
            pages::escape(&p.name),
            pages::escape(&p.id)
        )
    });
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">\
         <title>{title}</title><style>body{{font-family:system-ui,sans-serif;max-width:52rem;margin:6vh auto;padding:0 1rem;color:#1a1a1a}}\
         h1{{font-size:1.5rem}}h2{{font-size:1.1rem;margin-top:1.6rem}}table{{border-collapse:collapse;width:100%}}\
         th,td{{text-align:left;border-bottom:1px solid #ccc;padding:.3rem .5rem;vertical-align:top;word-break:break-all}}\
         dt{{font-weight:600}}dd{{margin:0 0 .5rem 0}}</style></head>\
         <body><main><h1>{title}</h1>{provider}{body}</main></body></html>"
    );
    pages::with_csp(pages::respond(html, status), &gateway.login_design)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_listed_with_their_names_escaped_else_by_id() {
        let named = GroupId::parse("5f1c2b3a-0000-4000-8000-000000000001").unwrap();
        let unnamed = GroupId::parse("5f1c2b3a-0000-4000-8000-000000000002").unwrap();
        let list = groups_list(&[named, unnamed], |g| {
            (g == named).then(|| "SRE <b>on call</b>".to_owned())
        });
        assert_eq!(
            list,
            "<h2>Groups (2)</h2><ul id=\"groups\">\
             <li>SRE &lt;b&gt;on call&lt;/b&gt; <code>5f1c2b3a-0000-4000-8000-000000000001</code></li>\
             <li><code>5f1c2b3a-0000-4000-8000-000000000002</code></li></ul>"
        );
    }

    fn provider(support_groups: bool) -> IdentityProvider {
        let document = format!(
            r#"{{"team_domain": "https://access.example.com",
                "identity_providers": [{{"id": "entra", "name": "Entra ID", "type": "azureAD",
                  "config": {{"client_id": "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
                              "directory_id": "9c4e1b7a-3d2f-4a8e-b615-0f7d2c9a4e31",
                              "support_groups": {support_groups}}}}}],
                "apps": []}}"#
        );
        policy_core::Engine::from_json(&document)
            .unwrap()
            .identity_providers()
            .first()
            .unwrap()
            .clone()
    }

    fn identity(email: Option<&str>) -> Identity {
        let mut identity = Identity::default();
        identity.email = email.map(|e| policy_core::Email::parse(e).unwrap());
        identity
    }

    fn claims(json: Value) -> Map<String, Value> {
        json.as_object().unwrap().clone()
    }

    #[test]
    fn a_complete_token_gives_no_warnings_and_names_the_email_claim() {
        let found = findings(
            &provider(true),
            &claims(serde_json::json!({
                "preferred_username": "Ada@Example.com", "name": "Ada",
                "groups": ["11111111-1111-4111-8111-111111111111"], "amr": ["pwd"]
            })),
            &identity(Some("ada@example.com")),
            false,
        );
        assert_eq!(
            found,
            Findings {
                email_from: vec!["preferred_username".into()],
                groups_from: "the ID token's groups claim",
                warnings: vec![],
            }
        );
    }

    #[test]
    fn the_common_misconfigurations_are_named() {
        let found = findings(
            &provider(true),
            &claims(serde_json::json!({ "name": "Ada" })),
            &identity(None),
            true,
        );
        assert_eq!(found.warnings.len(), 3, "{found:?}");
        assert!(
            found.warnings[0].starts_with("No email address"),
            "{found:?}"
        );
        assert!(found.warnings[1].contains("no groups claim"), "{found:?}");
        assert!(found.warnings[2].contains("can never match"), "{found:?}");

        let overage = findings(
            &provider(true),
            &claims(serde_json::json!({ "hasgroups": true, "amr": ["pwd"] })),
            &identity(Some("ada@example.com")),
            false,
        );
        assert!(overage.groups_from.contains("overflowed"), "{overage:?}");
        let off = findings(
            &provider(false),
            &claims(serde_json::json!({ "amr": ["pwd"] })),
            &identity(Some("ada@example.com")),
            false,
        );
        assert!(off.warnings[0].contains("support_groups"), "{off:?}");
    }

    #[test]
    fn entra_codes_are_read_from_the_description_start_only() {
        use crate::http::entra_error_code;
        assert_eq!(
            entra_error_code("AADSTS7000215: Invalid client secret provided.").as_deref(),
            Some("AADSTS7000215")
        );
        for none in [
            "",
            "AADSTS",
            "AADSTSx",
            "Error AADSTS50011",
            "AADSTS1234567890",
        ] {
            assert_eq!(entra_error_code(none), None, "{none}");
        }
    }
}

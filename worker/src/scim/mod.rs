//! The SCIM 2.0 server Entra provisions through, at `{prefix}/scim/v2`
//! (`/cdn-cgi/access/scim/v2` by default): users, groups (which may contain groups), discovery
//! documents, in D1. Bodies, filters and PATCH requests are checked whole by `edge-access-scim`
//! before anything is written; every write is one D1 batch (a transaction), so a request
//! changes everything it asks for or nothing.
//!
//! What provisioning does to sessions (`scim_config` of the provider) happens in the same
//! batch as the write: see [`store`].

mod discovery;
mod store;

pub use store::{deprovisioned, refusal_sql, DELETED_FOR};

use edge_access_scim::ScimError;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use worker::{Env, Headers, Method, Request, Response};

use crate::config::{Gateway, ScimSettings};
use crate::endpoints::Endpoints;
use crate::log;
use crate::time::UnixMillis;

/// Where SCIM is served, below the gateway's prefix.
const ENDPOINT: &str = "scim/v2";

/// When a client told to retry (503) may: writes that conflict are short, so a second is
/// ample (RFC 9110 §10.2.3).
const RETRY_AFTER_SECONDS: &str = "1";

/// The largest body accepted (a group replaced with many thousands of members fits).
const MAX_BODY: usize = 4 << 20;

/// Why a SCIM request is not served; each answers in the SCIM error schema.
#[derive(Debug)]
pub enum Failure {
    /// 400 (or 409 for uniqueness) with a `scimType`.
    Scim(ScimError),
    /// 401: no or a wrong bearer token, or no `SCIM_TOKEN` to compare it with (the reason
    /// goes to the log only).
    Unauthorized(String),
    /// 404 with what was not found.
    NotFound(String),
    /// 405: the resource exists, the method does not apply.
    MethodNotAllowed,
    /// 413: the body is too large.
    TooLarge,
    /// 501: a SCIM feature this server does not offer (bulk, `.search`, `/Me`).
    NotImplemented(&'static str),
    /// 503 with `Retry-After`: concurrent writes to the resource kept conflicting.
    Busy,
    /// 500: storage failed; the detail goes to the log only.
    Internal(String),
}

impl From<ScimError> for Failure {
    fn from(e: ScimError) -> Failure {
        Failure::Scim(e)
    }
}

impl From<worker::Error> for Failure {
    fn from(e: worker::Error) -> Failure {
        Failure::Internal(e.to_string())
    }
}

impl Failure {
    fn status(&self) -> u16 {
        match self {
            Failure::Scim(e) => e.status(),
            Failure::Unauthorized(_) => 401,
            Failure::NotFound(_) => 404,
            Failure::MethodNotAllowed => 405,
            Failure::TooLarge => 413,
            Failure::NotImplemented(_) => 501,
            Failure::Busy => 503,
            Failure::Internal(_) => 500,
        }
    }

    fn body(&self) -> Value {
        if let Failure::Scim(e) = self {
            return e.to_json();
        }
        let detail = match self {
            Failure::Unauthorized(_) => "a valid bearer token is required".to_owned(),
            Failure::NotFound(what) => what.clone(),
            Failure::MethodNotAllowed => "the method does not apply to this resource".into(),
            Failure::TooLarge => format!("the body is larger than {MAX_BODY} bytes"),
            Failure::NotImplemented(what) => format!("{what} is not supported"),
            Failure::Busy => "the resource kept changing during the request; retry".into(),
            Failure::Internal(_) | Failure::Scim(_) => "the request could not be completed".into(),
        };
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status().to_string(),
            "detail": detail,
        })
    }
}

/// A SCIM answer: status, JSON body (none for 204) and an optional `Location`.
pub struct Answer {
    status: u16,
    body: Option<Value>,
    location: Option<String>,
}

impl Answer {
    fn ok(body: Value) -> Answer {
        Answer {
            status: 200,
            body: Some(body),
            location: None,
        }
    }

    fn created(body: Value, location: String) -> Answer {
        Answer {
            status: 201,
            body: Some(body),
            location: Some(location),
        }
    }

    fn no_content() -> Answer {
        Answer {
            status: 204,
            body: None,
            location: None,
        }
    }
}

fn respond(status: u16, body: Option<&Value>, location: Option<&str>) -> Response {
    let headers = Headers::new();
    let _ = headers.set("Cache-Control", "no-store");
    if let Some(location) = location {
        let _ = headers.set("Location", location);
    }
    let response = match body {
        Some(body) => {
            let _ = headers.set("Content-Type", "application/scim+json");
            Response::ok(body.to_string())
        }
        None => Ok(Response::empty().unwrap_or_else(|_| Response::builder().empty())),
    };
    response
        .unwrap_or_else(|_| Response::builder().empty())
        .with_status(status)
        .with_headers(headers)
}

/// Serves `request`, whose path is under the gateway's `{prefix}/scim/v2`.
pub async fn handle(mut request: Request, env: &Env, gateway: &Gateway) -> Response {
    let method = request.method();
    let path = request.path();
    let result = match gateway.scim.as_ref() {
        None => Err(Failure::NotFound(
            "SCIM provisioning is not enabled: no identity provider has scim_config.enabled".into(),
        )),
        Some(settings) => serve(&mut request, env, settings, &gateway.endpoints).await,
    };
    let resource = gateway.endpoints.below(&path, ENDPOINT).unwrap_or("");
    match result {
        Ok(answer) => {
            // Every change is logged (an audit trail of provisioning); reads are not.
            if method != Method::Get {
                log::event(
                    "scim",
                    &[
                        ("method", method.as_ref()),
                        ("resource", resource),
                        ("status", &answer.status.to_string()),
                    ],
                );
            }
            respond(
                answer.status,
                answer.body.as_ref(),
                answer.location.as_deref(),
            )
        }
        Err(failure) => {
            let reason = match &failure {
                Failure::Internal(why) | Failure::Unauthorized(why) => why.clone(),
                Failure::Scim(e) => e.to_string(),
                other => other
                    .body()
                    .get("detail")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            };
            log::event(
                "scim_refused",
                &[
                    ("method", method.as_ref()),
                    ("resource", resource),
                    ("status", &failure.status().to_string()),
                    ("reason", &reason),
                ],
            );
            let response = respond(failure.status(), Some(&failure.body()), None);
            let extra = match failure {
                Failure::Unauthorized(_) => Some(("WWW-Authenticate", "Bearer")),
                Failure::Busy => Some(("Retry-After", RETRY_AFTER_SECONDS)),
                _ => None,
            };
            match extra {
                Some((name, value)) => {
                    let headers = response.headers().clone();
                    let _ = headers.set(name, value);
                    response.with_headers(headers)
                }
                None => response,
            }
        }
    }
}

async fn serve(
    request: &mut Request,
    env: &Env,
    settings: &ScimSettings,
    endpoints: &Endpoints,
) -> Result<Answer, Failure> {
    authorize(request, settings)?;
    let url = request.url()?;
    let prefix = endpoints.path(ENDPOINT);
    let base = format!(
        "{}://{}{prefix}",
        url.scheme(),
        url.host_str().unwrap_or("")
    );
    let base = match url.port() {
        Some(port) => base.replacen(
            &format!("{}{prefix}", url.host_str().unwrap_or("")),
            &format!("{}:{port}{prefix}", url.host_str().unwrap_or("")),
            1,
        ),
        None => base,
    };
    let query: Vec<(String, String)> = url
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    let rest = endpoints.below(url.path(), ENDPOINT).unwrap_or("");
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method();
    let now = UnixMillis::now();
    let store = || -> Result<store::Store<'_>, Failure> {
        Ok(store::Store::new(env.d1("DB")?, settings, now, &base))
    };
    match (segments.as_slice(), method) {
        (["ServiceProviderConfig"], Method::Get) => Ok(Answer::ok(discovery::config(&base))),
        (["ResourceTypes"], Method::Get) => Ok(Answer::ok(discovery::resource_types(&base))),
        (["ResourceTypes", name], Method::Get) => discovery::resource_type(&base, name)
            .map(Answer::ok)
            .ok_or_else(|| Failure::NotFound(format!("no resource type `{name}`"))),
        (["Schemas"], Method::Get) => Ok(Answer::ok(discovery::schemas(&base))),
        (["Schemas", urn], Method::Get) => discovery::schema(&base, urn)
            .map(Answer::ok)
            .ok_or_else(|| Failure::NotFound(format!("no schema `{urn}`"))),
        (["Users"], Method::Get) => store()?.list_users(&query).await.map(Answer::ok),
        (["Users"], Method::Post) => {
            let body = body(request).await?;
            let (resource, location) = store()?.create_user(&body).await?;
            Ok(Answer::created(resource, location))
        }
        (["Users", id], Method::Get) => store()?.get_user(id, &query).await.map(Answer::ok),
        (["Users", id], Method::Put) => {
            let body = body(request).await?;
            store()?.replace_user(id, &body).await.map(Answer::ok)
        }
        (["Users", id], Method::Patch) => {
            let body = body(request).await?;
            store()?.patch_user(id, &body).await.map(Answer::ok)
        }
        (["Users", id], Method::Delete) => {
            store()?.delete_user(id).await?;
            Ok(Answer::no_content())
        }
        (["Groups"], Method::Get) => store()?.list_groups(&query).await.map(Answer::ok),
        (["Groups"], Method::Post) => {
            let body = body(request).await?;
            let (resource, location) = store()?.create_group(&body).await?;
            Ok(Answer::created(resource, location))
        }
        (["Groups", id], Method::Get) => store()?.get_group(id, &query).await.map(Answer::ok),
        (["Groups", id], Method::Put) => {
            let body = body(request).await?;
            store()?.replace_group(id, &body).await.map(Answer::ok)
        }
        (["Groups", id], Method::Patch) => {
            let body = body(request).await?;
            store()?.patch_group(id, &body).await?;
            Ok(Answer::no_content())
        }
        (["Groups", id], Method::Delete) => {
            store()?.delete_group(id).await?;
            Ok(Answer::no_content())
        }
        (["Bulk"], _) => Err(Failure::NotImplemented("bulk")),
        (["Me"], _) => Err(Failure::NotImplemented("/Me")),
        ([_, ".search"], _) | ([".search"], _) => Err(Failure::NotImplemented("POST .search")),
        (["ServiceProviderConfig" | "ResourceTypes" | "Schemas" | "Users" | "Groups", ..], _) => {
            Err(Failure::MethodNotAllowed)
        }
        _ => Err(Failure::NotFound(format!("no SCIM endpoint at `{rest}`"))),
    }
}

/// The bearer token must be `SCIM_TOKEN`; compared as SHA-256 digests without an early exit,
/// so timing reveals neither its length nor where a guess differs. Without a usable
/// `SCIM_TOKEN` (not set, too short) every request is a 401 too — an authentication problem,
/// which is what Entra's "Test Connection" then reports — and the log says why.
fn authorize(request: &Request, settings: &ScimSettings) -> Result<(), Failure> {
    let presented = request
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .and_then(|value| {
            let (scheme, token) = value.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim().to_owned())
        });
    let expected = settings
        .token_sha256
        .as_ref()
        .map_err(|why| Failure::Unauthorized(format!("no token is accepted: {why}")))?;
    let presented = presented.ok_or_else(|| Failure::Unauthorized("no bearer token".to_owned()))?;
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut diff = 0u8;
    for (a, b) in digest.iter().zip(expected.iter()) {
        diff |= a ^ b;
    }
    if std::hint::black_box(diff) == 0 {
        Ok(())
    } else {
        Err(Failure::Unauthorized("wrong bearer token".to_owned()))
    }
}

/// The request body as JSON: at most [`MAX_BODY`] bytes, else 413; not JSON, or an attribute
/// twice in one object (without case) → invalidSyntax.
async fn body(request: &mut Request) -> Result<Value, Failure> {
    let declared = request
        .headers()
        .get("Content-Length")
        .ok()
        .flatten()
        .and_then(|l| l.trim().parse::<usize>().ok());
    if declared.is_some_and(|l| l > MAX_BODY) {
        return Err(Failure::TooLarge);
    }
    let bytes = request.bytes().await?;
    if bytes.len() > MAX_BODY {
        return Err(Failure::TooLarge);
    }
    Ok(edge_access_scim::parse_body(&bytes)?)
}

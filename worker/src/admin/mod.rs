//! The management API under `{prefix}/api` (`/cdn-cgi/access/api` by default), in the
//! Cloudflare API's envelope (`success`, `errors`, `messages`, `result`, `result_info`), for
//! the configuration stored in the gateway ([`crate::config_store`]):
//!
//! | method and path | what |
//! |---|---|
//! | `GET /config` | the active document, its version and source |
//! | `PUT /config` | `{"document", "base_version", "comment"}`: a new version, validated, activated; 409 on a stale base |
//! | `GET /config/versions` | versions, newest first (`page`, `per_page`) |
//! | `GET /config/versions/{n}` | one version and its document |
//! | `POST /config/versions/{n}/activate` | `{"base_version"?, "comment"?}`: activate a stored version |
//! | `POST /config/rollback` | activate the version active before the current one |
//! | `GET /config/diff?from=a&to=b` | changes between two versions (`to` defaults to the active one) |
//! | `/access/{collection}[/{id}]` | the document's apps, reusable policies, Access groups, identity providers, service tokens and lists, one object at a time, in the Access API's shapes ([`access`]) |
//! | `/custom_pages[/{app_id}/{kind}]` | the pages that replace the gateway's own, per app or for every app (`*`): list, get, put, delete ([`custom_pages`]) |
//!
//! Bearer admin tokens ([`tokens`]): `read` reads, `write` also writes. Every write is logged
//! (`config_write`). Secrets never enter a document (the loader refuses `client_secret`
//! fields; service tokens hold only a hash), and the `/access/` reads never show a secret
//! field or a secret's hash.

mod access;
mod body;
mod collections;
mod custom_pages;
mod diff;
mod roles;
mod store;
mod tokens;

use serde_json::{json, Value};
use worker::{Env, Method, Request, Response};

use crate::config::{self, Source};
use crate::config_store;
use crate::error::GatewayError;
use crate::log;
use store::Written;
use tokens::{AdminToken, Scope};

/// The most versions a page lists.
const MAX_PER_PAGE: u64 = 100;

/// An answer: its status and envelope.
struct Answer {
    status: u16,
    body: Value,
    /// The configuration version the answer is about (`ETag`).
    etag: Option<u64>,
}

fn ok(result: Value) -> Answer {
    Answer {
        status: 200,
        body: json!({"success": true, "errors": [], "messages": [], "result": result}),
        etag: None,
    }
}

fn fail(status: u16, code: u32, message: &str) -> Answer {
    failures(status, vec![json!({"code": code, "message": message})])
}

fn failures(status: u16, errors: Vec<Value>) -> Answer {
    Answer {
        status,
        body: json!({"success": false, "errors": errors, "messages": [], "result": null}),
        etag: None,
    }
}

fn unavailable(error: &GatewayError) -> Answer {
    log::event("admin_error", &[("error", &error.reason())]);
    match error {
        GatewayError::Unavailable { .. } => fail(503, 10503, "storage is unavailable; retry"),
        _ => fail(500, 10500, "internal error"),
    }
}

/// Answers a management API request.
pub async fn handle(mut request: Request, env: &Env) -> Response {
    let answer = match authenticate(&request, env).await {
        Err(answer) => answer,
        Ok(token) => {
            let write = request.method() != Method::Get;
            if write && token.scope != Scope::Write {
                log::event(
                    "admin_refused",
                    &[("token", &token.name), ("reason", "read-only token wrote")],
                );
                fail(403, 10403, "this token may only read")
            } else {
                match read_body(&mut request).await {
                    Err(answer) => answer,
                    Ok(body) => route(&request, env, &token, &body).await,
                }
            }
        }
    };
    let response = Response::from_json(&answer.body).map(|r| r.with_status(answer.status));
    match response {
        Ok(response) => {
            let _ = response.headers().set("Cache-Control", "no-store");
            if let Some(version) = answer.etag {
                let _ = response.headers().set("ETag", &format!("\"{version}\""));
            }
            response
        }
        Err(e) => GatewayError::Internal(e.to_string()).response(),
    }
}

/// The admin presenting the request's bearer token: one of `ADMIN_TOKENS`, else an Entra
/// identity holding one of the app roles of `ADMIN_ROLES`.
async fn authenticate(request: &Request, env: &Env) -> Result<AdminToken, Answer> {
    let refused = |reason: &str| {
        log::event("admin_refused", &[("reason", reason)]);
        fail(401, 10001, "a valid admin API token is required")
    };
    let list = crate::signing::secret(env, "ADMIN_TOKENS");
    let roles = env
        .var("ADMIN_ROLES")
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty());
    if list.is_none() && roles.is_none() {
        return Err(refused("neither ADMIN_TOKENS nor ADMIN_ROLES is set"));
    }
    let tokens = match &list {
        Some(list) => tokens::parse(list).map_err(|why| refused(&why))?,
        None => Vec::new(),
    };
    let header = request
        .headers()
        .get("Authorization")
        .ok()
        .flatten()
        .unwrap_or_default();
    let presented = header
        .strip_prefix("Bearer ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| refused("no bearer token"))?;
    if let Some(token) = tokens::find(&tokens, presented) {
        return Ok(token.clone());
    }
    let Some(roles) = roles else {
        return Err(refused("unknown token"));
    };
    let roles = roles::parse(&roles).map_err(|why| refused(&why))?;
    roles::admin(env, &roles, presented)
        .await
        .map_err(|why| refused(&why))
}

async fn read_body(request: &mut Request) -> Result<String, Answer> {
    if request.method() == Method::Get {
        return Ok(String::new());
    }
    let bytes = request
        .bytes()
        .await
        .map_err(|_| fail(400, 10400, "the body cannot be read"))?;
    if bytes.len() > body::MAX_BODY {
        return Err(fail(413, 10413, "the body is too large"));
    }
    String::from_utf8(bytes).map_err(|_| fail(400, 10400, "the body is not UTF-8"))
}

async fn route(request: &Request, env: &Env, token: &AdminToken, body: &str) -> Answer {
    let path = request.path();
    let rest = crate::endpoints::Endpoints::from_env(env)
        .ok()
        .and_then(|e| e.below(&path, "api").map(str::to_owned))
        .unwrap_or_default();
    let segments: Vec<&str> = rest.split('/').filter(|s| !s.is_empty()).collect();
    let method = request.method();
    let result = match (method, segments.as_slice()) {
        (Method::Get, ["config"]) => get_config(env).await,
        (Method::Put, ["config"]) => put_config(env, token, body).await,
        (Method::Get, ["config", "versions"]) => list_versions(env, request).await,
        (Method::Get, ["config", "versions", n]) => match body::version(n) {
            Some(n) => get_version(env, n).await,
            None => Ok(fail(404, 10404, "no such version")),
        },
        (Method::Post, ["config", "versions", n, "activate"]) => match body::version(n) {
            Some(n) => activate(env, token, body, Some(n), "activate").await,
            None => Ok(fail(404, 10404, "no such version")),
        },
        (Method::Post, ["config", "rollback"]) => {
            activate(env, token, body, None, "rollback").await
        }
        (Method::Get, ["config", "diff"]) => diff_versions(env, request).await,
        (_, ["access", rest @ ..]) => access::route(request, env, token, body, rest).await,
        (method, ["custom_pages", rest @ ..]) => {
            custom_pages::route(&method, env, token, body, rest).await
        }
        _ => Ok(fail(404, 10404, "no such endpoint")),
    };
    result.unwrap_or_else(|e| unavailable(&e))
}

fn db(env: &Env) -> Result<worker::D1Database, GatewayError> {
    Ok(env.d1("DB")?)
}

fn document_value(source: &Source) -> Result<Value, GatewayError> {
    serde_json::from_str(&source.document)
        .map_err(|e| GatewayError::Config(format!("{}: not JSON: {e}", source.name)))
}

async fn get_config(env: &Env) -> Result<Answer, GatewayError> {
    let active = config_store::active_version(env).await?;
    let source = match config_store::source(env, active).await {
        Ok(source) => source,
        Err(GatewayError::Config(why)) => return Ok(fail(404, 10404, &why)),
        Err(e) => return Err(e),
    };
    let document = document_value(&source)?;
    Ok(ok(json!({
        "version": source.version,
        "source": source.name,
        "document": document,
    })))
}

/// Why `document` cannot serve: the loader's errors with their paths and kinds, then the
/// Worker's settings checked against it.
fn validate(env: &Env, document: &str) -> Result<(), Vec<Value>> {
    if let Err(errors) = policy_core::Engine::from_json(document) {
        return Err(errors
            .errors()
            .iter()
            .map(|e| {
                json!({"code": 10010, "message": e.to_string(), "path": e.path, "kind": e.kind()})
            })
            .collect());
    }
    let source = Source {
        document: document.to_owned(),
        version: 0,
        name: "the document".into(),
    };
    config::load(env, source)
        .map(|_| ())
        .map_err(|why| vec![json!({"code": 10011, "message": why})])
}

fn written(outcome: Written, action: &str, token: &AdminToken, base: u64, comment: &str) -> Answer {
    match outcome {
        Written::Active(version) => {
            log::event(
                "config_write",
                &[
                    ("action", action),
                    ("version", &version.to_string()),
                    ("base_version", &base.to_string()),
                    ("by", &token.name),
                    ("comment", comment),
                ],
            );
            ok(json!({"version": version, "active": true}))
        }
        Written::Conflict => {
            log::event(
                "config_conflict",
                &[
                    ("action", action),
                    ("base_version", &base.to_string()),
                    ("by", &token.name),
                ],
            );
            fail(
                409,
                10409,
                &format!("base_version {base} is not the active version: read it again"),
            )
        }
    }
}

async fn put_config(env: &Env, token: &AdminToken, body: &str) -> Result<Answer, GatewayError> {
    let put = match body::put(body) {
        Ok(put) => put,
        Err(why) => return Ok(fail(400, 10400, &why)),
    };
    if let Err(errors) = validate(env, &put.document) {
        log::event(
            "config_refused",
            &[("by", &token.name), ("errors", &errors.len().to_string())],
        );
        return Ok(failures(400, errors));
    }
    let outcome = store::put(
        &db(env)?,
        &put.document,
        put.base_version,
        &put.comment,
        &token.name,
    )
    .await?;
    Ok(written(
        outcome,
        "put",
        token,
        put.base_version,
        &put.comment,
    ))
}

async fn activate(
    env: &Env,
    token: &AdminToken,
    body: &str,
    version: Option<u64>,
    action: &str,
) -> Result<Answer, GatewayError> {
    let request = match body::activate(body) {
        Ok(request) => request,
        Err(why) => return Ok(fail(400, 10400, &why)),
    };
    let db = db(env)?;
    let active = config_store::active_version(env).await?.unwrap_or(0);
    let base = request.base_version.unwrap_or(active);
    let version = match version {
        Some(version) => version,
        None => match store::previous(&db).await? {
            0 => {
                return Ok(fail(
                    409,
                    10409,
                    "there is no earlier version to roll back to",
                ))
            }
            previous => previous,
        },
    };
    let Some(document) = config_store::stored_document(&db, version).await? else {
        return Ok(fail(404, 10404, "no such version"));
    };
    if let Err(errors) = validate(env, &document) {
        return Ok(failures(400, errors));
    }
    let outcome = store::activate(&db, version, base, action, &token.name).await?;
    Ok(written(outcome, action, token, base, &request.comment))
}

fn query(request: &Request, name: &str) -> Option<String> {
    let url = request.url().ok()?;
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The `page` (from 1) and `per_page` (1 to 100, default 50) query parameters.
fn paging(request: &Request) -> Result<(u64, u64), Answer> {
    let page = match query(request, "page") {
        None => 1,
        Some(p) => body::version(&p)
            .ok_or_else(|| fail(400, 10400, "page: expected a positive integer"))?,
    };
    let per_page = match query(request, "per_page") {
        None => 50,
        Some(p) => body::version(&p)
            .filter(|p| *p <= MAX_PER_PAGE)
            .ok_or_else(|| fail(400, 10400, "per_page: expected 1 to 100"))?,
    };
    Ok((page, per_page))
}

async fn list_versions(env: &Env, request: &Request) -> Result<Answer, GatewayError> {
    let (page, per_page) = match paging(request) {
        Ok(paging) => paging,
        Err(answer) => return Ok(answer),
    };
    let active = config_store::active_version(env).await?;
    let (versions, total) = store::list(&db(env)?, page, per_page, active).await?;
    let mut answer = ok(Value::from(versions.clone()));
    if let Some(body) = answer.body.as_object_mut() {
        body.insert(
            "result_info".into(),
            json!({"page": page, "per_page": per_page, "count": versions.len(), "total_count": total}),
        );
    }
    Ok(answer)
}

async fn get_version(env: &Env, version: u64) -> Result<Answer, GatewayError> {
    let db = db(env)?;
    let active = config_store::active_version(env).await?;
    let (Some(mut meta), Some(text)) = (
        store::describe(&db, version, active).await?,
        config_store::stored_document(&db, version).await?,
    ) else {
        return Ok(fail(404, 10404, "no such version"));
    };
    let document: Value = serde_json::from_str(&text)
        .map_err(|e| GatewayError::Internal(format!("version {version}: not JSON: {e}")))?;
    if let Some(meta) = meta.as_object_mut() {
        meta.insert("document".into(), document);
    }
    Ok(ok(meta))
}

async fn diff_versions(env: &Env, request: &Request) -> Result<Answer, GatewayError> {
    let db = db(env)?;
    let active = config_store::active_version(env).await?;
    let pick = |name: &str| -> Result<Option<u64>, Answer> {
        match query(request, name) {
            None => Ok(None),
            Some(v) => body::version(&v)
                .map(Some)
                .ok_or_else(|| fail(400, 10400, &format!("{name}: expected a version"))),
        }
    };
    let (from, to) = match (pick("from"), pick("to")) {
        (Ok(Some(from)), Ok(to)) => (from, to.or(active)),
        (Ok(None), _) => return Ok(fail(400, 10400, "from: a version is required")),
        (Err(answer), _) | (_, Err(answer)) => return Ok(answer),
    };
    let Some(to) = to else {
        return Ok(fail(404, 10404, "no version is active"));
    };
    let (Some(a), Some(b)) = (
        config_store::stored_document(&db, from).await?,
        config_store::stored_document(&db, to).await?,
    ) else {
        return Ok(fail(404, 10404, "no such version"));
    };
    let parse = |text: &str| {
        serde_json::from_str::<Value>(text)
            .map_err(|e| GatewayError::Internal(format!("stored document: not JSON: {e}")))
    };
    let changes: Vec<Value> = diff::diff(&parse(&a)?, &parse(&b)?)
        .iter()
        .map(diff::Change::to_json)
        .collect();
    Ok(ok(json!({"from": from, "to": to, "changes": changes})))
}

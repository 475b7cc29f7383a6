//! The configuration's objects in the Cloudflare Access API's shapes, under `/access/…`:
//!
//! | method and path | what |
//! |---|---|
//! | `GET /access/{collection}` | its objects (`page`, `per_page`; `result_info`) |
//! | `POST /access/{collection}` | create one (an id drawn when none is given) |
//! | `GET /access/{collection}/{id}` | one |
//! | `PUT /access/{collection}/{id}` | replace it |
//! | `DELETE /access/{collection}/{id}` | delete it |
//! | `POST /access/service_tokens/{id}/rotate` | a new client secret, returned once |
//! | `POST /access/identity_providers/{id}/test` | a URL that starts a connection test of the provider in a browser (`url`, `expires_in`) |
//! | `GET /access/lists/{id}/items` | a list's items (`page`, `per_page`) |
//! | `PATCH /access/lists/{id}` | `{"append": [{"value"}], "remove": ["value"]}` |
//! | `GET`, `POST /access/apps/{id}/policies` | an app's own policies (linked reusable ones shown resolved); add one |
//! | `GET`, `PUT`, `DELETE /access/apps/{id}/policies/{policy_id}` | one of them |
//!
//! Collections: `apps`, `policies` (reusable), `groups`, `identity_providers`,
//! `service_tokens`, `lists` ([`collections`]). Every write edits the active document and
//! stores the result as a new version, validated like `PUT /config`, and activates it: with
//! `If-Match: "<version>"` (or `?base_version=`) only if that version is still active (else
//! 409), without it on whatever version is active, tried again when another writer got there
//! first. The comment comes from the `X-Comment` header or the `comment` query parameter. The
//! version that holds the result is in the `ETag` header of every answer.

use serde_json::{json, Value};
use worker::{Env, Method, Request};

use super::collections::{self, Collection, Edit, EditError, Fresh};
use super::store::{self, Written};
use super::tokens::AdminToken;
use super::{body, db, document_value, fail, failures, ok, paging, query, validate, Answer};
use crate::config_store;
use crate::error::GatewayError;
use crate::log;

/// How many times a write without a base version is tried on a newer active version after
/// another writer activated one first. Each round one of the racing writers wins, so this many
/// concurrent writers all get through; beyond that a writer may be told to retry (409).
const ATTEMPTS: usize = 8;

/// Answers `/access/{segments…}`.
///
/// # Errors
///
/// When storage fails.
pub async fn route(
    request: &Request,
    env: &Env,
    token: &AdminToken,
    body: &str,
    segments: &[&str],
) -> Result<Answer, GatewayError> {
    match answer(request, env, token, body, segments).await {
        Err(GatewayError::Config(why)) => {
            log::event("admin_error", &[("error", &why)]);
            Ok(fail(
                404,
                10404,
                "no configuration is stored, bundled or set",
            ))
        }
        other => other,
    }
}

async fn answer(
    request: &Request,
    env: &Env,
    token: &AdminToken,
    body: &str,
    segments: &[&str],
) -> Result<Answer, GatewayError> {
    let Some((first, rest)) = segments.split_first() else {
        return Ok(no_collection(""));
    };
    let Some(collection) = Collection::parse(first) else {
        return Ok(no_collection(first));
    };
    // The id segments (`{id}`, and an app's `{policy_id}`), percent-decoded; the others are
    // literal.
    let mut decoded: Vec<String> = Vec::new();
    for raw in rest.iter().step_by(2) {
        match collections::path_id(raw) {
            Some(id) => decoded.push(id),
            None => return Ok(fail(404, 10404, "no such id")),
        }
    }
    let parts: Vec<&str> = rest
        .iter()
        .enumerate()
        .map(|(i, raw)| {
            if i % 2 == 0 {
                decoded.get(i / 2).map_or(*raw, String::as_str)
            } else {
                raw
            }
        })
        .collect();
    let rest = parts.as_slice();
    let apps = collection == Collection::Apps;
    let app_policy = |app: &str, edit: Edit| Edit::AppPolicies {
        app: app.to_owned(),
        edit: Box::new(edit),
    };
    let method = request.method();
    let edit = match (&method, rest) {
        (Method::Get, []) => return read_list(env, request, collection).await,
        (Method::Get, [id]) => return read_one(env, collection, id).await,
        (Method::Get, [id, "items"]) if collection == Collection::Lists => {
            return read_items(env, request, id).await
        }
        (Method::Post, []) => collections::object(body).map(Edit::Create),
        (Method::Put, [id]) => collections::object(body).map(|b| Edit::Update((*id).to_owned(), b)),
        (Method::Delete, [id]) => Ok(Edit::Delete((*id).to_owned())),
        (Method::Post, [id, "test"]) if collection == Collection::IdentityProviders => {
            return connection_test(request, env, id).await
        }
        (Method::Post, [id, "rotate"]) if collection == Collection::ServiceTokens => {
            Ok(Edit::Rotate((*id).to_owned()))
        }
        (Method::Patch, [id]) if collection == Collection::Lists => {
            collections::object(body).and_then(|b| collections::list_patch(id, b))
        }
        (Method::Get, [app, "policies"]) if apps => {
            return read_app_policies(env, request, app).await
        }
        (Method::Get, [app, "policies", id]) if apps => return read_app_policy(env, app, id).await,
        (Method::Post, [app, "policies"]) if apps => {
            collections::object(body).map(|b| app_policy(app, Edit::Create(b)))
        }
        (Method::Put, [app, "policies", id]) if apps => {
            collections::object(body).map(|b| app_policy(app, Edit::Update((*id).to_owned(), b)))
        }
        (Method::Delete, [app, "policies", id]) if apps => {
            Ok(app_policy(app, Edit::Delete((*id).to_owned())))
        }
        (_, [_, "policies"] | [_, "policies", _]) if apps => {
            return Ok(fail(
                405,
                10405,
                &format!(
                    "method `{}` is not allowed on `/access/apps/{{id}}/policies{}`",
                    method.as_ref(),
                    if rest.len() == 3 { "/{id}" } else { "" }
                ),
            ))
        }
        (_, [] | [_]) => {
            return Ok(fail(
                405,
                10405,
                &format!(
                    "method `{}` is not allowed on `/access/{}{}`",
                    method.as_ref(),
                    collection.key(),
                    if rest.is_empty() { "" } else { "/{id}" }
                ),
            ))
        }
        _ => return Ok(fail(404, 10404, "no such endpoint")),
    };
    match edit {
        Ok(edit) => write(env, request, token, collection, &edit).await,
        Err(e) => Ok(refused(&e)),
    }
}

fn no_collection(name: &str) -> Answer {
    let known: Vec<&str> = Collection::ALL.iter().map(|c| c.key()).collect();
    fail(
        404,
        10404,
        &format!("no such collection `{name}` ({})", known.join(", ")),
    )
}

fn refused(error: &EditError) -> Answer {
    if let EditError::Document(why) = error {
        log::event("admin_error", &[("error", why)]);
    }
    failures(error.status(), vec![error.to_json()])
}

/// The active version (0: none stored) and its document.
async fn current(env: &Env) -> Result<(u64, Value), GatewayError> {
    let active = config_store::active_version(env).await?;
    let source = config_store::source(env, active).await?;
    Ok((active.unwrap_or(0), document_value(&source)?))
}

fn with_version(mut answer: Answer, version: u64) -> Answer {
    answer.etag = Some(version);
    answer
}

async fn read_list(
    env: &Env,
    request: &Request,
    collection: Collection,
) -> Result<Answer, GatewayError> {
    let (page, per_page) = match paging(request) {
        Ok(paging) => paging,
        Err(answer) => return Ok(answer),
    };
    let (version, document) = current(env).await?;
    let all = match collections::list(&document, collection) {
        Ok(all) => all,
        Err(e) => return Ok(refused(&e)),
    };
    Ok(with_version(listed(&all, page, per_page), version))
}

fn listed(all: &[Value], page: u64, per_page: u64) -> Answer {
    let (shown, info) = collections::page(all, page, per_page);
    let mut answer = ok(Value::Array(shown));
    if let Some(body) = answer.body.as_object_mut() {
        body.insert("result_info".into(), info);
    }
    answer
}

async fn read_one(env: &Env, collection: Collection, id: &str) -> Result<Answer, GatewayError> {
    let (version, document) = current(env).await?;
    Ok(match collections::find(&document, collection, id) {
        Ok(found) => with_version(ok(found), version),
        Err(e) => refused(&e),
    })
}

async fn read_items(env: &Env, request: &Request, id: &str) -> Result<Answer, GatewayError> {
    let (page, per_page) = match paging(request) {
        Ok(paging) => paging,
        Err(answer) => return Ok(answer),
    };
    let (version, document) = current(env).await?;
    Ok(match collections::list_items(&document, id) {
        Ok(items) => with_version(listed(&items, page, per_page), version),
        Err(e) => refused(&e),
    })
}

async fn read_app_policies(
    env: &Env,
    request: &Request,
    app: &str,
) -> Result<Answer, GatewayError> {
    let (page, per_page) = match paging(request) {
        Ok(paging) => paging,
        Err(answer) => return Ok(answer),
    };
    let (version, document) = current(env).await?;
    Ok(match collections::app_policies(&document, app) {
        Ok(all) => with_version(listed(&all, page, per_page), version),
        Err(e) => refused(&e),
    })
}

async fn read_app_policy(env: &Env, app: &str, id: &str) -> Result<Answer, GatewayError> {
    let (version, document) = current(env).await?;
    Ok(match collections::app_policy(&document, app, id) {
        Ok(found) => with_version(ok(found), version),
        Err(e) => refused(&e),
    })
}

/// The base version a writer pinned: `If-Match: "7"` (or `7`; `*` pins nothing) or
/// `?base_version=7`.
fn pinned(request: &Request) -> Result<Option<u64>, Answer> {
    let parse = |text: &str| -> Option<u64> {
        let text = text.trim();
        let text = text
            .strip_prefix('"')
            .and_then(|t| t.strip_suffix('"'))
            .unwrap_or(text);
        if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    let header = request.headers().get("If-Match").ok().flatten();
    let header = match header.as_deref().map(str::trim) {
        None | Some("*") => None,
        Some(h) => Some(parse(h).ok_or_else(|| {
            fail(
                400,
                10400,
                "If-Match: expected a version number (`\"7\"`) or `*`",
            )
        })?),
    };
    let param = match query(request, "base_version") {
        None => None,
        Some(p) => Some(
            parse(&p).ok_or_else(|| fail(400, 10400, "base_version: expected a version number"))?,
        ),
    };
    match (header, param) {
        (Some(h), Some(p)) if h != p => Err(fail(
            400,
            10400,
            "If-Match and base_version name different versions",
        )),
        (h, p) => Ok(h.or(p)),
    }
}

/// The writer's comment: the `X-Comment` header, else the `comment` query parameter.
fn comment(request: &Request) -> Result<String, Answer> {
    let text = request
        .headers()
        .get("X-Comment")
        .ok()
        .flatten()
        .or_else(|| query(request, "comment"))
        .unwrap_or_default();
    body::comment(&text).map_err(|why| fail(400, 10400, &why))?;
    Ok(text)
}

fn fresh() -> Result<Fresh, GatewayError> {
    let bytes = crate::crypto::random_bytes(80)?;
    let id = crate::crypto::random_uuid()
        .map_err(|e| GatewayError::Internal(format!("random UUID: {e:?}")))?;
    let (aud, rest) = bytes.split_at(32.min(bytes.len()));
    let (client, secret) = rest.split_at(16.min(rest.len()));
    Ok(Fresh::from_random(id, aud, client, secret))
}

fn stale(base: u64) -> Answer {
    fail(
        409,
        10409,
        &format!("base version {base} is not the active version: read it again"),
    )
}

async fn write(
    env: &Env,
    request: &Request,
    token: &AdminToken,
    collection: Collection,
    edit: &Edit,
) -> Result<Answer, GatewayError> {
    let (pinned, comment) = match (pinned(request), comment(request)) {
        (Ok(pinned), Ok(comment)) => (pinned, comment),
        (Err(answer), _) | (_, Err(answer)) => return Ok(answer),
    };
    let fresh = fresh()?;
    let db = db(env)?;
    for _ in 0..ATTEMPTS {
        let (base, mut document) = current(env).await?;
        if let Some(pinned) = pinned.filter(|p| *p != base) {
            return Ok(stale(pinned));
        }
        let edited = match collections::apply(&mut document, collection, edit, &fresh) {
            Ok(edited) => edited,
            Err(e) => return Ok(refused(&e)),
        };
        let text = serde_json::to_string(&document)
            .map_err(|e| GatewayError::Internal(format!("the edited document: {e}")))?;
        if let Err(errors) = validate(env, &text) {
            log::event(
                "config_refused",
                &[
                    ("by", &token.name),
                    ("action", edit.action()),
                    ("collection", collection.key()),
                    ("id", &edited.id),
                    ("errors", &errors.len().to_string()),
                ],
            );
            return Ok(failures(400, errors));
        }
        let note = if comment.is_empty() {
            format!("{} {}/{}", edit.action(), collection.key(), edited.id)
        } else {
            comment.clone()
        };
        match store::put(&db, &text, base, &note, &token.name).await? {
            Written::Active(version) => {
                log::event(
                    "config_write",
                    &[
                        ("action", edit.action()),
                        ("collection", collection.key()),
                        ("id", &edited.id),
                        ("version", &version.to_string()),
                        ("base_version", &base.to_string()),
                        ("by", &token.name),
                        ("comment", &note),
                    ],
                );
                return Ok(with_version(ok(edited.result), version));
            }
            Written::Conflict => {
                log::event(
                    "config_conflict",
                    &[
                        ("action", edit.action()),
                        ("collection", collection.key()),
                        ("base_version", &base.to_string()),
                        ("by", &token.name),
                    ],
                );
                if pinned.is_some() {
                    return Ok(stale(base));
                }
            }
        }
    }
    Ok(fail(
        409,
        10409,
        "the configuration kept changing under this write: retry",
    ))
}

/// `POST /access/identity_providers/{id}/test`: a URL that starts a connection test of the
/// provider in a browser ([`crate::signin::connection_test`]), with the active configuration.
async fn connection_test(request: &Request, env: &Env, id: &str) -> Result<Answer, GatewayError> {
    let held = crate::config_store::gateway(env).await?;
    let gateway = match held.as_ref() {
        Ok(gateway) => gateway,
        Err(_) => {
            return Ok(fail(
                409,
                10409,
                "the active configuration does not load; fix it before testing a provider",
            ))
        }
    };
    let url = request.url()?;
    match crate::signin::connection_test::ticket_url(gateway, &url, id)? {
        Some(test_url) => Ok(ok(json!({
            "url": test_url,
            "expires_in": crate::signin::connection_test::TICKET_TTL.as_secs(),
        }))),
        None => Ok(fail(404, 10404, "no such identity provider")),
    }
}

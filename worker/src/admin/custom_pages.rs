//! Custom pages ([`crate::custom_pages`]) through the management API, so that they are not
//! written with `wrangler d1 execute`:
//!
//! | method and path | what |
//! |---|---|
//! | `GET /custom_pages` | every stored page: `app_id`, `kind`, `bytes` |
//! | `GET /custom_pages/{app_id}/{kind}` | one, with its `html` |
//! | `PUT /custom_pages/{app_id}/{kind}` | `{"html"}`: store it, replacing the one stored |
//! | `DELETE /custom_pages/{app_id}/{kind}` | delete it |
//!
//! `app_id` is an app of the active configuration or `*` (every app); `kind` one of the
//! pages' kinds. A page is checked exactly as the gateway checks the pages it reads
//! ([`crate::custom_pages::check`]: known placeholders, closed `{{`, at most 64 KiB), and the
//! table holds at most the pages the gateway reads. An error names the field at fault.

use serde_json::{json, Value};
use worker::{Env, Method};

use super::tokens::AdminToken;
use super::{body, db, fail, failures, ok, Answer};
use crate::custom_pages::{self, Refused, EVERY_APP};
use crate::d1::int;
use crate::error::GatewayError;
use crate::log;
use crate::pages::Kind;

/// Answers `/custom_pages[/{app_id}/{kind}]`.
///
/// # Errors
///
/// When storage fails.
pub async fn route(
    method: &Method,
    env: &Env,
    token: &AdminToken,
    body: &str,
    segments: &[&str],
) -> Result<Answer, GatewayError> {
    let (app_id, kind) = match segments {
        [] if *method == Method::Get => return list(env).await,
        [app_id, kind] => match addressed(env, app_id, kind).await? {
            Ok(addressed) => addressed,
            Err(answer) => return Ok(answer),
        },
        _ => return Ok(fail(404, 10404, "no such endpoint")),
    };
    let db = db(env)?;
    match method {
        Method::Get => Ok(match custom_pages::get(&db, &app_id, kind).await? {
            Some(html) => ok(json!({ "app_id": app_id, "kind": kind.key(), "html": html })),
            None => fail(404, 10404, "no such custom page"),
        }),
        Method::Put => {
            let html = match body::page(body) {
                Ok(html) => html,
                Err(why) => return Ok(fail(400, 10400, &why)),
            };
            if let Err(refused) = custom_pages::check(kind.key(), &html) {
                return Ok(refusal(&refused));
            }
            if !custom_pages::put(&db, &app_id, kind, &html).await? {
                return Ok(fail(
                    409,
                    10409,
                    &format!(
                        "{} custom pages are stored already: delete one first",
                        custom_pages::MAX_ROWS
                    ),
                ));
            }
            written(token, "put", &app_id, kind);
            Ok(ok(
                json!({ "app_id": app_id, "kind": kind.key(), "bytes": html.len() }),
            ))
        }
        Method::Delete => {
            if !custom_pages::delete(&db, &app_id, kind).await? {
                return Ok(fail(404, 10404, "no such custom page"));
            }
            written(token, "delete", &app_id, kind);
            Ok(ok(json!({ "app_id": app_id, "kind": kind.key() })))
        }
        _ => Ok(fail(405, 10405, "not a method of custom pages")),
    }
}

/// Every stored page, without its HTML.
async fn list(env: &Env) -> Result<Answer, GatewayError> {
    let pages: Vec<Value> = custom_pages::list(&db(env)?)
        .await?
        .into_iter()
        .map(|p| json!({ "app_id": p.app_id, "kind": p.kind, "bytes": int(p.bytes) }))
        .collect();
    Ok(ok(Value::from(pages)))
}

/// The page a path names: its app (`*`, or an app of the active configuration) and its kind.
async fn addressed(
    env: &Env,
    app_id: &str,
    kind: &str,
) -> Result<Result<(String, Kind), Answer>, GatewayError> {
    let Some(app_id) = super::collections::path_id(app_id) else {
        return Ok(Err(refusal(&Refused {
            field: "app_id",
            why: "not an id".into(),
        })));
    };
    let kind = match custom_pages::kind_named(kind) {
        Ok(kind) => kind,
        Err(refused) => return Ok(Err(refusal(&refused))),
    };
    if app_id != EVERY_APP {
        let held = crate::config_store::gateway(env).await?;
        let Ok(gateway) = held.as_ref() else {
            return Ok(Err(fail(
                409,
                10409,
                "app_id: the active configuration does not load, so no app can be named; \
                 fix it first, or use `*`",
            )));
        };
        if !gateway.engine.apps().iter().any(|a| a.id() == app_id) {
            return Ok(Err(refusal(&Refused {
                field: "app_id",
                why: format!(
                    "no app `{}` in the active configuration (or `*` for every app)",
                    app_id.chars().take(64).collect::<String>()
                ),
            })));
        }
    }
    Ok(Ok((app_id, kind)))
}

/// A 400 naming the field at fault.
fn refusal(refused: &Refused) -> Answer {
    failures(
        400,
        vec![json!({
            "code": 10400,
            "message": format!("{}: {}", refused.field, refused.why),
            "path": refused.field,
        })],
    )
}

fn written(token: &AdminToken, action: &str, app_id: &str, kind: Kind) {
    log::event(
        "custom_page_write",
        &[
            ("action", action),
            ("app", app_id),
            ("kind", kind.key()),
            ("by", &token.name),
        ],
    );
}

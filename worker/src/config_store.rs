//! Where the configuration document comes from, and how an isolate picks up a new one.
//!
//! Precedence: the version **stored** in D1 and activated through the management API
//! (`config_active`), else the file **bundled** at build time, else the `EDGE_ACCESS_CONFIG`
//! **var** ([`config::fallback_source`]).
//!
//! An isolate compiles a document once and serves it for `CONFIG_REFRESH_SECONDS` (default
//! 10) before it reads the active pointer again: one D1 read per interval and isolate, none
//! per request; the document itself is read only when the pointer moved. When D1 cannot be
//! read, the document in hand keeps serving (checked again after the next interval); an
//! isolate with nothing in hand fails closed (503). A stored version that does not load with
//! this Worker's settings is never swapped in: the one in hand keeps serving.

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use worker::{D1Database, Env};

use crate::config::{self, Gateway, Source};
use crate::d1::{int, Binds};
use crate::error::{Dependency, GatewayError};
use crate::time::UnixMillis;

struct Held {
    gateway: Rc<Result<Gateway, String>>,
    version: u64,
    checked: UnixMillis,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

#[derive(Deserialize)]
struct Active {
    version: f64,
}

#[derive(Deserialize)]
struct Document {
    document: String,
}

/// The version `config_active` points at; `None` when nothing is stored or the Worker has no
/// `DB` binding.
///
/// # Errors
///
/// When D1 cannot be read.
pub async fn active_version(env: &Env) -> Result<Option<u64>, worker::Error> {
    let Ok(db) = env.d1("DB") else {
        return Ok(None);
    };
    read_active(&db).await
}

async fn read_active(db: &D1Database) -> Result<Option<u64>, worker::Error> {
    let active: Option<Active> = db
        .prepare("SELECT version FROM config_active WHERE id = 1")
        .first(None)
        .await?;
    Ok(active.map(|a| int(a.version)).filter(|v| *v > 0))
}

/// The stored document of `version`, if there is one.
///
/// # Errors
///
/// When D1 cannot be read.
pub async fn stored_document(
    db: &D1Database,
    version: u64,
) -> Result<Option<String>, worker::Error> {
    let mut binds = Binds::default();
    let v = binds.number(version);
    let row: Option<Document> = binds
        .prepare(
            db,
            &format!("SELECT document FROM config_versions WHERE version = {v}"),
        )?
        .first(None)
        .await?;
    Ok(row.map(|r| r.document))
}

/// The source the gateway would serve when `active` is the active stored version.
///
/// # Errors
///
/// When storage cannot be read, or nothing is stored, bundled or set.
pub async fn source(env: &Env, active: Option<u64>) -> Result<Source, GatewayError> {
    match active {
        None => config::fallback_source(env).map_err(GatewayError::Config),
        Some(version) => {
            let db = env.d1("DB")?;
            let document = stored_document(&db, version).await?.ok_or_else(|| {
                GatewayError::Config(format!("the active version {version} is not stored"))
            })?;
            Ok(Source {
                document,
                version,
                name: format!("stored configuration version {version}"),
            })
        }
    }
}

/// The gateway for this request: the one in hand while it is fresh, else the active document
/// (compiled again only when the active version changed).
///
/// # Errors
///
/// When nothing has loaded yet and storage cannot be read, or the configuration does not
/// load (every request fails closed).
pub async fn gateway(env: &Env) -> Result<Rc<Result<Gateway, String>>, GatewayError> {
    let now = UnixMillis::now();
    let fresh = HELD.with(|h| {
        h.borrow().as_ref().and_then(|h| {
            let refresh = h
                .gateway
                .as_ref()
                .as_ref()
                .map_or(config::DEFAULT_REFRESH, |g| g.config_refresh);
            (now.since(h.checked) < refresh).then(|| h.gateway.clone())
        })
    });
    if let Some(gateway) = fresh {
        return Ok(gateway);
    }
    let held_version = HELD.with(|h| h.borrow().as_ref().map(|h| h.version));
    let touch = || {
        HELD.with(|h| {
            let mut h = h.borrow_mut();
            h.as_mut().map(|h| {
                h.checked = now;
                h.gateway.clone()
            })
        })
    };
    let active = match active_version(env).await {
        Ok(active) => active,
        Err(e) => {
            let held = touch();
            crate::log::event(
                "config_store_unavailable",
                &[
                    ("error", &GatewayError::from(e).reason()),
                    ("serving_cached", &held.is_some().to_string()),
                ],
            );
            return held.ok_or(GatewayError::Unavailable {
                dependency: Dependency::Storage,
                detail: "the configuration store cannot be read".into(),
            });
        }
    };
    crate::log::event(
        "config_check",
        &[("active", &active.unwrap_or(0).to_string())],
    );
    let wanted = active.unwrap_or(0);
    if held_version == Some(wanted) {
        if let Some(held) = touch() {
            return Ok(held);
        }
    }
    let loaded = match source(env, active).await {
        Ok(source) => config::load(env, source),
        Err(GatewayError::Config(why)) => Err(why),
        Err(e) => {
            let held = touch();
            crate::log::event(
                "config_store_unavailable",
                &[
                    ("error", &e.reason()),
                    ("serving_cached", &held.is_some().to_string()),
                ],
            );
            return held.ok_or(e);
        }
    };
    if let Err(why) = &loaded {
        crate::log::event(
            "config_error",
            &[("version", &wanted.to_string()), ("error", why)],
        );
        // The last good document keeps serving; a broken one replaces only another broken one.
        let good = HELD.with(|h| {
            h.borrow()
                .as_ref()
                .is_some_and(|h| h.gateway.as_ref().is_ok())
        });
        if good {
            if let Some(held) = touch() {
                return Ok(held);
            }
        }
    } else {
        crate::log::event("config_loaded", &[("version", &wanted.to_string())]);
    }
    let gateway = Rc::new(loaded);
    HELD.with(|h| {
        *h.borrow_mut() = Some(Held {
            gateway: gateway.clone(),
            version: wanted,
            checked: now,
        });
    });
    Ok(gateway)
}

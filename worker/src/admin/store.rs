//! The stored configuration's writes: a version written and activated together, an
//! activation of a stored version, each only when the active version is still the writer's
//! base (one D1 batch — a transaction — so concurrent writers never lose an update).

use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use worker::{D1Database, D1PreparedStatement};

use crate::crypto::random_token;
use crate::d1::{int, Binds};
use crate::error::GatewayError;
use crate::time::UnixMillis;

/// How a write ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Written {
    /// Stored (and active): the version.
    Active(u64),
    /// The base version was stale (or the version to activate is not stored).
    Conflict,
}

/// `WHERE` the active version is `{base}`.
fn base_is(base: crate::d1::Param) -> String {
    format!("COALESCE((SELECT version FROM config_active WHERE id = 1), 0) = {base}")
}

fn activate_statement(
    db: &D1Database,
    from: &str,
    write_id: &str,
    who: &str,
    now: UnixMillis,
) -> Result<D1PreparedStatement, worker::Error> {
    let mut binds = Binds::default();
    let wid = binds.text(write_id);
    let now = binds.millis(now);
    let who = binds.text(who);
    binds.prepare(
        db,
        &format!(
            "INSERT INTO config_active (id, version, activated_ms, activated_by) \
             SELECT 1, version, {now}, {who} FROM {from} WHERE write_id = {wid} \
             ON CONFLICT (id) DO UPDATE SET version = excluded.version, \
             activated_ms = excluded.activated_ms, activated_by = excluded.activated_by"
        ),
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Deserialize)]
struct Found {
    version: f64,
}

/// Stores `document` as a new version and activates it, if `base` is still active.
///
/// # Errors
///
/// When D1 fails.
pub async fn put(
    db: &D1Database,
    document: &str,
    base: u64,
    comment: &str,
    who: &str,
) -> Result<Written, GatewayError> {
    let write_id = random_token(18)?;
    let now = UnixMillis::now();
    let sha256 = hex(&Sha256::digest(document.as_bytes()));

    let mut binds = Binds::default();
    let doc = binds.text(document);
    let sha = binds.text(&sha256);
    let author = binds.text(who);
    let note = binds.text(comment);
    let at = binds.millis(now);
    let base_p = binds.number(base);
    let wid = binds.text(&write_id);
    let insert = binds.prepare(
        db,
        &format!(
            "INSERT INTO config_versions \
             (document, sha256, author, comment, created_ms, base_version, write_id) \
             SELECT {doc}, {sha}, {author}, {note}, {at}, {base_p}, {wid} WHERE {}",
            base_is(base_p)
        ),
    )?;

    let mut binds = Binds::default();
    let base_p = binds.number(base);
    let at = binds.millis(now);
    let author = binds.text(who);
    let wid = binds.text(&write_id);
    let record = binds.prepare(
        db,
        &format!(
            "INSERT INTO config_activations \
             (version, previous, action, activated_ms, activated_by, write_id) \
             SELECT version, {base_p}, 'put', {at}, {author}, {wid} FROM config_versions \
             WHERE write_id = {wid}"
        ),
    )?;
    let point = activate_statement(db, "config_versions", &write_id, who, now)?;
    db.batch(vec![insert, record, point]).await?;
    written(db, "config_versions", &write_id).await
}

/// Activates the stored `version`, if `base` is still active.
///
/// # Errors
///
/// When D1 fails.
pub async fn activate(
    db: &D1Database,
    version: u64,
    base: u64,
    action: &str,
    who: &str,
) -> Result<Written, GatewayError> {
    let write_id = random_token(18)?;
    let now = UnixMillis::now();
    let mut binds = Binds::default();
    let v = binds.number(version);
    let base_p = binds.number(base);
    let act = binds.text(action);
    let at = binds.millis(now);
    let author = binds.text(who);
    let wid = binds.text(&write_id);
    let record = binds.prepare(
        db,
        &format!(
            "INSERT INTO config_activations \
             (version, previous, action, activated_ms, activated_by, write_id) \
             SELECT {v}, {base_p}, {act}, {at}, {author}, {wid} \
             WHERE {} AND EXISTS (SELECT 1 FROM config_versions WHERE version = {v})",
            base_is(base_p)
        ),
    )?;
    let point = activate_statement(db, "config_activations", &write_id, who, now)?;
    db.batch(vec![record, point]).await?;
    match written(db, "config_activations", &write_id).await? {
        Written::Active(_) => Ok(Written::Active(version)),
        Written::Conflict => Ok(Written::Conflict),
    }
}

async fn written(db: &D1Database, table: &str, write_id: &str) -> Result<Written, GatewayError> {
    let mut binds = Binds::default();
    let wid = binds.text(write_id);
    let found: Option<Found> = binds
        .prepare(
            db,
            &format!("SELECT version FROM {table} WHERE write_id = {wid}"),
        )?
        .first(None)
        .await?;
    Ok(found.map_or(Written::Conflict, |f| Written::Active(int(f.version))))
}

#[derive(Deserialize)]
struct Previous {
    previous: f64,
}

/// The version that was active before the current one was activated (0: none).
///
/// # Errors
///
/// When D1 fails.
pub async fn previous(db: &D1Database) -> Result<u64, GatewayError> {
    let row: Option<Previous> = db
        .prepare("SELECT previous FROM config_activations ORDER BY id DESC LIMIT 1")
        .first(None)
        .await?;
    Ok(row.map_or(0, |r| int(r.previous)))
}

#[derive(Deserialize)]
struct Row {
    version: f64,
    sha256: String,
    author: String,
    comment: String,
    created_ms: f64,
    base_version: f64,
}

impl Row {
    fn to_json(&self, active: Option<u64>) -> Value {
        let version = int(self.version);
        json!({
            "version": version,
            "sha256": self.sha256,
            "author": self.author,
            "comment": self.comment,
            "created_at": iso(int(self.created_ms)),
            "base_version": int(self.base_version),
            "active": active == Some(version),
        })
    }
}

/// An instant as ISO 8601 (UTC, milliseconds).
fn iso(ms: u64) -> String {
    #[expect(
        clippy::cast_precision_loss,
        reason = "instants are far below 2^53 milliseconds"
    )]
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from(ms as f64));
    String::from(date.to_iso_string())
}

const COLUMNS: &str = "version, sha256, author, comment, created_ms, base_version";

/// A page of versions, newest first, and how many there are.
///
/// # Errors
///
/// When D1 fails.
pub async fn list(
    db: &D1Database,
    page: u64,
    per_page: u64,
    active: Option<u64>,
) -> Result<(Vec<Value>, u64), GatewayError> {
    let mut binds = Binds::default();
    let limit = binds.number(per_page);
    let offset = binds.number(page.saturating_sub(1).saturating_mul(per_page));
    let rows: Vec<Row> = binds
        .prepare(
            db,
            &format!(
                "SELECT {COLUMNS} FROM config_versions ORDER BY version DESC \
                 LIMIT {limit} OFFSET {offset}"
            ),
        )?
        .all()
        .await?
        .results()?;
    let total: Option<Found> = db
        .prepare("SELECT COUNT(*) AS version FROM config_versions")
        .first(None)
        .await?;
    Ok((
        rows.iter().map(|r| r.to_json(active)).collect(),
        total.map_or(0, |t| int(t.version)),
    ))
}

/// One version's metadata.
///
/// # Errors
///
/// When D1 fails.
pub async fn describe(
    db: &D1Database,
    version: u64,
    active: Option<u64>,
) -> Result<Option<Value>, GatewayError> {
    let mut binds = Binds::default();
    let v = binds.number(version);
    let row: Option<Row> = binds
        .prepare(
            db,
            &format!("SELECT {COLUMNS} FROM config_versions WHERE version = {v}"),
        )?
        .first(None)
        .await?;
    Ok(row.map(|r| r.to_json(active)))
}

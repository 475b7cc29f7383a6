//! Custom pages: HTML an operator stores in D1 (`custom_pages`: an app's id or `*` for every
//! app, the page's kind, the HTML) that replaces one of the gateway's pages. Placeholders —
//! `{{app_name}}`, `{{user_email}}`, `{{request_id}}`, `{{sign_in_url}}`, `{{sign_out_url}}`,
//! `{{support_url}}`, `{{title}}`, `{{message}}` — are filled HTML-escaped; any other
//! `{{…}}`, an unclosed one, or a template over 64 KiB refuses that template (the log says
//! which and why; its page is then the default one). The pages' `Content-Security-Policy`
//! still applies: a custom page runs no script.
//!
//! Read only to answer a page, at most once per isolate every `CONFIG_REFRESH_SECONDS`, so a
//! flood of refusals costs no more D1 reads than one; an allowed request never reads it.
//! Written through the management API ([`crate::admin`]), which checks a page as the reading
//! does ([`check`]) and holds the table to the rows read ([`MAX_ROWS`]).

use std::cell::RefCell;
use std::rc::Rc;

use serde::Deserialize;
use worker::{D1Database, Env};

use crate::config::Gateway;
use crate::d1::Binds;
use crate::pages::Kind;
use crate::time::UnixMillis;

/// The largest template, in bytes.
pub const MAX_BYTES: usize = 64 * 1024;

/// The most rows read, and so the most the management API stores.
pub const MAX_ROWS: usize = 256;

/// The app id of a page for every app.
pub const EVERY_APP: &str = "*";

/// A value a template may ask for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Title,
    Message,
    AppName,
    UserEmail,
    RequestId,
    SignInUrl,
    SignOutUrl,
    SupportUrl,
}

impl Slot {
    fn named(name: &str) -> Option<Slot> {
        Some(match name {
            "title" => Slot::Title,
            "message" => Slot::Message,
            "app_name" => Slot::AppName,
            "user_email" => Slot::UserEmail,
            "request_id" => Slot::RequestId,
            "sign_in_url" => Slot::SignInUrl,
            "sign_out_url" => Slot::SignOutUrl,
            "support_url" => Slot::SupportUrl,
            _ => return None,
        })
    }
}

#[derive(Debug, PartialEq)]
enum Part {
    Html(String),
    Slot(Slot),
}

/// A checked template.
#[derive(Debug, PartialEq)]
pub struct Template(Vec<Part>);

impl Template {
    /// `html` as a template.
    ///
    /// # Errors
    /// Over [`MAX_BYTES`], an unclosed `{{`, or a placeholder that is not one of the slots.
    pub fn parse(html: &str) -> Result<Template, String> {
        if html.len() > MAX_BYTES {
            return Err(format!(
                "{} bytes: a page holds at most {MAX_BYTES}",
                html.len()
            ));
        }
        let mut parts = Vec::new();
        let mut rest = html;
        while let Some(open) = rest.find("{{") {
            let (before, after) = rest.split_at(open);
            let after = after.get(2..).unwrap_or("");
            let close = after
                .find("}}")
                .ok_or_else(|| "a `{{` without its `}}`".to_owned())?;
            let name = after.get(..close).unwrap_or("").trim();
            let slot = Slot::named(name).ok_or_else(|| {
                format!(
                    "unknown placeholder `{{{{{}}}}}`",
                    name.chars().take(40).collect::<String>()
                )
            })?;
            if !before.is_empty() {
                parts.push(Part::Html(before.to_owned()));
            }
            parts.push(Part::Slot(slot));
            rest = after.get(close + 2..).unwrap_or("");
        }
        if !rest.is_empty() {
            parts.push(Part::Html(rest.to_owned()));
        }
        Ok(Template(parts))
    }

    /// The page, each slot given by `value` (which escapes it).
    pub fn fill(&self, mut value: impl FnMut(Slot) -> String) -> String {
        self.0
            .iter()
            .map(|part| match part {
                Part::Html(html) => html.clone(),
                Part::Slot(slot) => value(*slot),
            })
            .collect()
    }
}

/// Why a page cannot be stored or served: the field at fault and what is wrong with it.
#[derive(Debug, PartialEq, Eq)]
pub struct Refused {
    pub field: &'static str,
    pub why: String,
}

/// A page as stored (`kind`, `html`) checked: its kind one of [`Kind::ALL`], its HTML a
/// [`Template`]. The same check decides which stored pages serve and which pages the
/// management API stores.
///
/// # Errors
/// The field that does not check out, and why.
pub fn check(kind: &str, html: &str) -> Result<(Kind, Template), Refused> {
    let kind = kind_named(kind)?;
    let template = Template::parse(html).map_err(|why| Refused { field: "html", why })?;
    Ok((kind, template))
}

/// The page kind `key` names (its `kind` column).
///
/// # Errors
/// Not one of [`Kind::ALL`]'s keys.
pub fn kind_named(key: &str) -> Result<Kind, Refused> {
    Kind::ALL
        .into_iter()
        .find(|k| k.key() == key)
        .ok_or_else(|| Refused {
            field: "kind",
            why: format!(
                "unknown kind `{}`: one of {}",
                key.chars().take(40).collect::<String>(),
                Kind::ALL.map(Kind::key).join(", ")
            ),
        })
}

/// The stored pages an isolate holds: (app id, kind, template).
struct Held {
    read: UnixMillis,
    config_version: u64,
    pages: Rc<Vec<(String, Kind, Template)>>,
}

thread_local! {
    static HELD: RefCell<Option<Held>> = const { RefCell::new(None) };
}

#[derive(Deserialize)]
struct Row {
    app_id: String,
    kind: String,
    html: String,
}

/// A stored page found for a request.
pub struct Found {
    pages: Rc<Vec<(String, Kind, Template)>>,
    at: usize,
}

impl Found {
    pub fn template(&self) -> Option<&Template> {
        self.pages.get(self.at).map(|(_, _, template)| template)
    }
}

/// The custom page of `kind` for the app `app_id` (its own, else the one for every app), if
/// one is stored. A storage failure is logged and answers none: the default page serves.
pub async fn find(env: &Env, gateway: &Gateway, kind: Kind, app_id: Option<&str>) -> Option<Found> {
    let now = UnixMillis::now();
    let held = HELD.with(|h| {
        h.borrow().as_ref().and_then(|h| {
            (h.config_version == gateway.version && now.since(h.read) < gateway.config_refresh)
                .then(|| h.pages.clone())
        })
    });
    let pages = match held {
        Some(pages) => pages,
        None => {
            let pages = Rc::new(read(env).await);
            HELD.with(|h| {
                *h.borrow_mut() = Some(Held {
                    read: now,
                    config_version: gateway.version,
                    pages: pages.clone(),
                });
            });
            pages
        }
    };
    index(&pages, kind, app_id).map(|at| Found { pages, at })
}

/// Where in `pages` the page of `kind` for `app_id` is: the app's own, else every app's.
pub fn index(
    pages: &[(String, Kind, Template)],
    kind: Kind,
    app_id: Option<&str>,
) -> Option<usize> {
    let at = |app: &str| pages.iter().position(|(a, k, _)| a == app && *k == kind);
    app_id.and_then(at).or_else(|| at(EVERY_APP))
}

/// Every stored page that is valid; the others are logged.
async fn read(env: &Env) -> Vec<(String, Kind, Template)> {
    let rows = match env.d1("DB") {
        Ok(db) => db
            .prepare(format!(
                "SELECT app_id, kind, html FROM custom_pages ORDER BY app_id, kind LIMIT {MAX_ROWS}"
            ))
            .all()
            .await
            .and_then(|result| result.results::<Row>()),
        Err(e) => Err(e),
    };
    let rows = match rows {
        Ok(rows) => rows,
        Err(e) => {
            crate::log::event("custom_pages_unavailable", &[("error", &e.to_string())]);
            return Vec::new();
        }
    };
    rows.into_iter()
        .filter_map(|row| match check(&row.kind, &row.html) {
            Ok((kind, template)) => Some((row.app_id, kind, template)),
            Err(refused) => {
                crate::log::event(
                    "custom_page_refused",
                    &[
                        ("app", &row.app_id),
                        ("kind", &row.kind),
                        ("error", &format!("{}: {}", refused.field, refused.why)),
                    ],
                );
                None
            }
        })
        .collect()
}

/// A stored page, as the management API lists it.
#[derive(Deserialize)]
pub struct Listed {
    pub app_id: String,
    pub kind: String,
    /// The HTML's length in bytes.
    pub bytes: f64,
}

#[derive(Deserialize)]
struct Html {
    html: String,
}

/// Every stored page (at most [`MAX_ROWS`]), without its HTML.
///
/// # Errors
/// When D1 cannot be read.
pub async fn list(db: &D1Database) -> Result<Vec<Listed>, worker::Error> {
    db.prepare(format!(
        "SELECT app_id, kind, length(CAST(html AS BLOB)) AS bytes FROM custom_pages \
         ORDER BY app_id, kind LIMIT {MAX_ROWS}"
    ))
    .all()
    .await?
    .results()
}

/// The stored HTML of the page `kind` for `app_id`, if there is one.
///
/// # Errors
/// When D1 cannot be read.
pub async fn get(
    db: &D1Database,
    app_id: &str,
    kind: Kind,
) -> Result<Option<String>, worker::Error> {
    let mut binds = Binds::default();
    let (app, kind) = (binds.text(app_id), binds.text(kind.key()));
    let found: Option<Html> = binds
        .prepare(
            db,
            &format!("SELECT html FROM custom_pages WHERE app_id = {app} AND kind = {kind}"),
        )?
        .first(None)
        .await?;
    Ok(found.map(|h| h.html))
}

/// Stores `template`'s HTML (`html`, checked by [`check`]) as the page `kind` for `app_id`,
/// replacing the one stored. `false`: the table holds [`MAX_ROWS`] pages already and this is
/// not one of them (checked in the insert itself).
///
/// # Errors
/// When D1 cannot be written.
pub async fn put(
    db: &D1Database,
    app_id: &str,
    kind: Kind,
    html: &str,
) -> Result<bool, worker::Error> {
    let mut binds = Binds::default();
    let (app, key, html) = (binds.text(app_id), binds.text(kind.key()), binds.text(html));
    let most = binds.number(MAX_ROWS as u64);
    let sql = format!(
        "INSERT INTO custom_pages (app_id, kind, html) SELECT {app}, {key}, {html} \
         WHERE (SELECT COUNT(*) FROM custom_pages) < {most} \
            OR EXISTS (SELECT 1 FROM custom_pages WHERE app_id = {app} AND kind = {key}) \
         ON CONFLICT (app_id, kind) DO UPDATE SET html = excluded.html"
    );
    let written = binds.prepare(db, &sql)?.run().await?;
    forget();
    Ok(written.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}

/// Deletes the page `kind` for `app_id`: whether there was one.
///
/// # Errors
/// When D1 cannot be written.
pub async fn delete(db: &D1Database, app_id: &str, kind: Kind) -> Result<bool, worker::Error> {
    let mut binds = Binds::default();
    let (app, kind) = (binds.text(app_id), binds.text(kind.key()));
    let deleted = binds
        .prepare(
            db,
            &format!("DELETE FROM custom_pages WHERE app_id = {app} AND kind = {kind}"),
        )?
        .run()
        .await?;
    forget();
    Ok(deleted.meta()?.and_then(|m| m.changes).unwrap_or(0) > 0)
}

/// Drops this isolate's copy of the pages, so that a write is served here at once (other
/// isolates read the table again within `CONFIG_REFRESH_SECONDS`).
fn forget() {
    HELD.with(|h| *h.borrow_mut() = None);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_the_slots() {
        let template = Template::parse("a{{app_name}}b{{ request_id }}{{title}}").unwrap();
        let filled = template.fill(|slot| format!("[{slot:?}]"));
        assert_eq!(filled, "a[AppName]b[RequestId][Title]");
        assert_eq!(Template::parse("").unwrap().fill(|_| String::new()), "");
        assert_eq!(
            Template::parse("no slots } {")
                .unwrap()
                .fill(|_| String::new()),
            "no slots } {"
        );
    }

    #[test]
    fn bad_templates_are_refused() {
        for (html, needle) in [
            ("{{app_name", "without its"),
            ("{{script}}", "unknown placeholder `{{script}}`"),
            ("{{}}", "unknown placeholder"),
            ("{{ {{app_name}} }}", "unknown placeholder"),
        ] {
            let error = Template::parse(html).unwrap_err();
            assert!(error.contains(needle), "{html}: {error}");
        }
        let big = "a".repeat(MAX_BYTES + 1);
        assert!(Template::parse(&big).unwrap_err().contains("at most 65536"));
        assert!(Template::parse(&"a".repeat(MAX_BYTES)).is_ok());
    }

    #[test]
    fn a_page_is_checked_field_by_field() {
        assert!(check("identity_denied", "<p>{{user_email}}</p>").is_ok());
        let refused = check("denied<x>", "<p></p>").unwrap_err();
        assert_eq!(refused.field, "kind");
        assert!(refused
            .why
            .starts_with("unknown kind `denied<x>`: one of sign_in_required, identity_denied"));
        let refused = check("signed_out", "{{secret}}").unwrap_err();
        assert_eq!(
            refused,
            Refused {
                field: "html",
                why: "unknown placeholder `{{secret}}`".into()
            }
        );
    }

    #[test]
    fn an_app_s_own_page_comes_before_every_app_s() {
        let page = |app: &str, kind| (app.to_owned(), kind, Template::parse(app).unwrap());
        let pages = vec![
            page("*", Kind::Denied),
            page("staff", Kind::Denied),
            page("eng", Kind::NotFound),
        ];
        assert_eq!(index(&pages, Kind::Denied, Some("staff")), Some(1));
        assert_eq!(index(&pages, Kind::Denied, Some("eng")), Some(0));
        assert_eq!(index(&pages, Kind::Denied, None), Some(0));
        assert_eq!(index(&pages, Kind::NotFound, None), None);
        assert_eq!(index(&pages, Kind::Error, Some("eng")), None);
    }
}

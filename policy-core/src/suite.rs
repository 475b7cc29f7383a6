//! Policy test files: a configuration document and the cases it must decide a certain way.
//!
//! The format the project's own vectors are written in, and what `edge-access policy test` and
//! the Wasm template run for users:
//!
//! ```json
//! { "description": "optional",
//!   "config": "../access.json",            // or "document": { …inline… }
//!   "directory": "scim-groups.json",       // optional, resolved by the host (the CLI)
//!   "cases": [
//!     { "name": "ada reaches the wiki",
//!       "request": { "app": "wiki.example.com/", "identity": { "email": "ada@example.com" } },
//!       "expect": { "outcome": "allow", "policy": "allow-staff",
//!                   "session_duration": "8h", "trace_contains": ["email_domain"] } },
//!     { "name": "a bad group id is a request error",
//!       "request": { "app": "wiki.example.com/", "identity": { "groups": ["Finance"] } },
//!       "expect_request_error": { "path": "identity.groups[0]", "contains": "GUID" } } ] }
//! ```
//!
//! or, for a document that must not load, `"expect_load_errors": [{ "path", "contains" }]`
//! instead of `cases`. In `expect`, `outcome` is required; `policy` (the deciding policy's id,
//! else its name; `null` for none), `session_duration`, `trace_contains` and `deny` (how the
//! app answers the refusal, [`crate::App::deny_answer`]: `{ "redirect": url }`,
//! `{ "page": "identity", "message"? }`, `{ "page": "non_identity" }`, or `null` for no
//! refusal) are checked when present. Beside `cases`, `"hosts": [{ "host", "apps": [ids] }]`
//! checks [`Engine::apps_on_host`]. Unknown fields are errors, so a typo cannot turn a check
//! off.

use alloc::borrow::ToOwned;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::engine::Engine;
use crate::error::{LoadErrors, RequestError};
use crate::json::{Json, Obj, Path, Problems};
use crate::request::Request;
use crate::verdict::{Outcome, Verdict};

/// Where a test file's configuration document comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DocumentSource {
    /// Written in the file (`document`), as JSON text.
    Inline(String),
    /// A path the host resolves, relative to the test file (`config`).
    Path(String),
}

/// A parsed test file.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TestFile {
    /// What the file tests.
    pub description: Option<String>,
    /// The configuration document.
    pub document: DocumentSource,
    /// A SCIM groups export for the engine options (`--directory` in the CLI), if any.
    pub directory: Option<String>,
    /// What the file expects: load errors, or cases.
    pub expects: Expects,
    /// The apps each host must have (with `cases` only).
    pub hosts: Vec<ExpectedHost>,
}

/// The apps on a host, in document order ([`Engine::apps_on_host`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedHost {
    /// The host, as a request names it.
    pub host: String,
    /// The ids of the apps whose host pattern covers it.
    pub apps: Vec<String>,
}

/// How the app must answer a refusal ([`crate::DenyAnswer`]); `NoRefusal` for none.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpectedDeny {
    /// The outcome is no refusal by the app's policies.
    NoRefusal,
    /// The browser is sent to this URL.
    Redirect(String),
    /// The identity block page, with this message of the app's (or the default text).
    IdentityPage(Option<String>),
    /// The non-identity block page.
    NonIdentityPage,
}

impl ExpectedDeny {
    fn of(answer: Option<crate::DenyAnswer<'_>>) -> ExpectedDeny {
        match answer {
            None => ExpectedDeny::NoRefusal,
            Some(crate::DenyAnswer::Redirect(url)) => ExpectedDeny::Redirect(url.to_owned()),
            Some(crate::DenyAnswer::IdentityPage(message)) => {
                ExpectedDeny::IdentityPage(message.map(ToOwned::to_owned))
            }
            Some(crate::DenyAnswer::NonIdentityPage) => ExpectedDeny::NonIdentityPage,
        }
    }
}

impl core::fmt::Display for ExpectedDeny {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            ExpectedDeny::NoRefusal => f.write_str("no refusal"),
            ExpectedDeny::Redirect(url) => write!(f, "a redirect to `{url}`"),
            ExpectedDeny::IdentityPage(None) => f.write_str("the identity block page"),
            ExpectedDeny::IdentityPage(Some(m)) => {
                write!(f, "the identity block page saying `{m}`")
            }
            ExpectedDeny::NonIdentityPage => f.write_str("the non-identity block page"),
        }
    }
}

/// What a test file expects of its document.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expects {
    /// The document must not load, with at least these errors.
    LoadErrors(Vec<ExpectedError>),
    /// The document loads and decides these cases.
    Cases(Vec<Case>),
}

/// An error that must be reported: at `path`, with a message containing `contains`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedError {
    /// The JSON path of the problem.
    pub path: String,
    /// Text the message must contain.
    pub contains: String,
}

/// One case: a request and what it must come to.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Case {
    /// What the case checks.
    pub name: String,
    /// The request, as JSON text.
    pub request: String,
    /// The expected result.
    pub expect: Expect,
}

/// The expected result of a case.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Expect {
    /// A verdict.
    Verdict {
        /// The outcome.
        outcome: Outcome,
        /// The deciding policy's id (else name); `Some(None)` for none; `None`: not checked.
        policy: Option<Option<String>>,
        /// The session duration, when checked.
        session_duration: Option<String>,
        /// Text the trace must contain, each somewhere.
        trace_contains: Vec<String>,
        /// How the app answers the refusal, when checked.
        deny: Option<ExpectedDeny>,
    },
    /// The request does not load.
    RequestError(ExpectedError),
}

/// How one case went.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaseResult {
    /// The case's name.
    pub name: String,
    /// What did not match (empty: passed).
    pub failures: Vec<String>,
    /// The verdict, when there was one (its trace explains a failure).
    pub verdict: Option<Verdict>,
}

impl CaseResult {
    /// A result from its parts (for hosts that check more than a case, such as load errors).
    pub fn new(name: String, failures: Vec<String>, verdict: Option<Verdict>) -> CaseResult {
        CaseResult {
            name,
            failures,
            verdict,
        }
    }

    /// Whether the case passed.
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

impl TestFile {
    /// Parses a test file (JSON; a host may convert YAML to JSON first).
    ///
    /// # Errors
    /// [`LoadErrors`] naming the JSON path of every problem (unknown fields included).
    pub fn from_json(text: &str) -> Result<TestFile, LoadErrors> {
        let json =
            Json::parse(text).map_err(|m| LoadErrors::new(alloc::vec![(String::new(), m)]))?;
        let mut p = Problems::default();
        let file = parse_file(&json, &mut p);
        match file {
            Some(file) if p.is_empty() => Ok(file),
            _ => Err(LoadErrors::new(p.list)),
        }
    }

    /// The cases, if the file has any.
    pub fn cases(&self) -> &[Case] {
        match &self.expects {
            Expects::Cases(cases) => cases,
            Expects::LoadErrors(_) => &[],
        }
    }
}

fn parse_file(json: &Json<'_>, p: &mut Problems) -> Option<TestFile> {
    let root = Path::Root;
    let o = p.object(
        json,
        &root,
        &[
            "description",
            "config",
            "document",
            "directory",
            "cases",
            "expect_load_errors",
            "hosts",
            "$schema",
        ],
        &[],
    )?;
    let description = o
        .get("description")
        .and_then(|v| p.string(v, &root.key("description")))
        .map(ToOwned::to_owned);
    let document = match (o.get("document"), o.get("config")) {
        (Some(d), None) => match d {
            Json::Object(_) => Some(DocumentSource::Inline(to_json_text(d))),
            other => {
                p.add(
                    &root.key("document"),
                    format!("expected an object, found {}", other.kind()),
                );
                None
            }
        },
        (None, Some(c)) => p
            .nonempty(c, &root.key("config"))
            .map(|s| DocumentSource::Path(s.to_owned())),
        (Some(_), Some(_)) => {
            p.add(&root, "`document` and `config` both given: use one");
            None
        }
        (None, None) => {
            p.add(
                &root,
                "missing field `document` (inline) or `config` (a path)",
            );
            None
        }
    };
    let directory = o
        .get("directory")
        .and_then(|v| p.nonempty(v, &root.key("directory")))
        .map(ToOwned::to_owned);
    let expects = match (o.get("cases"), o.get("expect_load_errors")) {
        (Some(cases), None) => {
            let at = root.key("cases");
            let items = p.array(cases, &at)?;
            if items.is_empty() {
                p.add(&at, "no cases");
            }
            let cases: Vec<Case> = items
                .iter()
                .enumerate()
                .filter_map(|(i, c)| parse_case(c, &at.index(i), p))
                .collect();
            Some(Expects::Cases(cases))
        }
        (None, Some(errors)) => {
            let at = root.key("expect_load_errors");
            let items = p.array(errors, &at)?;
            if items.is_empty() {
                p.add(
                    &at,
                    "no errors expected: use `cases` for a document that loads",
                );
            }
            Some(Expects::LoadErrors(
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| expected_error(e, &at.index(i), p))
                    .collect(),
            ))
        }
        (Some(_), Some(_)) => {
            p.add(
                &root,
                "`cases` and `expect_load_errors` both given: use one",
            );
            None
        }
        (None, None) => {
            p.add(&root, "missing field `cases` (or `expect_load_errors`)");
            None
        }
    };
    let mut hosts = Vec::new();
    if let Some(v) = o.get("hosts") {
        let at = root.key("hosts");
        if !matches!(expects, Some(Expects::Cases(_))) {
            p.add(
                &at,
                "`hosts` needs a document that loads: use it beside `cases`",
            );
        }
        for (i, item) in p.array(v, &at).unwrap_or(&[]).iter().enumerate() {
            if let Some(host) = expected_host(item, &at.index(i), p) {
                hosts.push(host);
            }
        }
    }
    Some(TestFile {
        description,
        document: document?,
        directory,
        expects: expects?,
        hosts,
    })
}

fn expected_host(json: &Json<'_>, path: &Path<'_>, p: &mut Problems) -> Option<ExpectedHost> {
    let o = p.object(json, path, &["host", "apps"], &[])?;
    let host = o
        .required("host", path, p)
        .and_then(|v| p.nonempty(v, &path.key("host")))
        .map(ToOwned::to_owned);
    let apps = o.required("apps", path, p).and_then(|v| {
        let at = path.key("apps");
        let items = p.array(v, &at)?;
        Some(
            items
                .iter()
                .enumerate()
                .filter_map(|(i, a)| p.nonempty(a, &at.index(i)).map(ToOwned::to_owned))
                .collect(),
        )
    });
    Some(ExpectedHost {
        host: host?,
        apps: apps?,
    })
}

fn expected_deny(json: &Json<'_>, path: &Path<'_>, p: &mut Problems) -> Option<ExpectedDeny> {
    if matches!(json, Json::Null) {
        return Some(ExpectedDeny::NoRefusal);
    }
    let o = p.object(json, path, &["redirect", "page", "message"], &[])?;
    let text = |key: &str, p: &mut Problems| {
        o.get(key)
            .and_then(|v| p.nonempty(v, &path.key(key)))
            .map(ToOwned::to_owned)
    };
    let redirect = text("redirect", p);
    let page = text("page", p);
    let message = text("message", p);
    match (redirect, page.as_deref(), message) {
        (Some(url), None, None) => Some(ExpectedDeny::Redirect(url)),
        (None, Some("identity"), message) => Some(ExpectedDeny::IdentityPage(message)),
        (None, Some("non_identity"), None) => Some(ExpectedDeny::NonIdentityPage),
        _ => {
            p.add(
                path,
                "expected `{ \"redirect\": url }`, `{ \"page\": \"identity\", \"message\"? }` \
                 or `{ \"page\": \"non_identity\" }`",
            );
            None
        }
    }
}

fn expected_error(json: &Json<'_>, path: &Path<'_>, p: &mut Problems) -> Option<ExpectedError> {
    let o = p.object(json, path, &["path", "contains"], &[])?;
    let at = o.required("path", path, p);
    let at = at.and_then(|v| p.string(v, &path.key("path")));
    let contains = o
        .required("contains", path, p)
        .and_then(|v| p.nonempty(v, &path.key("contains")));
    Some(ExpectedError {
        path: at?.to_owned(),
        contains: contains?.to_owned(),
    })
}

fn parse_case(json: &Json<'_>, path: &Path<'_>, p: &mut Problems) -> Option<Case> {
    let o = p.object(
        json,
        path,
        &["name", "request", "expect", "expect_request_error"],
        &[],
    )?;
    let name = o
        .required("name", path, p)
        .and_then(|v| p.nonempty(v, &path.key("name")));
    let request = o.required("request", path, p).and_then(|v| match v {
        Json::Object(_) => Some(to_json_text(v)),
        other => {
            p.add(
                &path.key("request"),
                format!("expected an object, found {}", other.kind()),
            );
            None
        }
    });
    let expect = match (o.get("expect"), o.get("expect_request_error")) {
        (Some(e), None) => parse_expect(e, &path.key("expect"), p),
        (None, Some(e)) => {
            expected_error(e, &path.key("expect_request_error"), p).map(Expect::RequestError)
        }
        (Some(_), Some(_)) => {
            p.add(
                path,
                "`expect` and `expect_request_error` both given: use one",
            );
            None
        }
        (None, None) => {
            p.add(path, "missing field `expect` (or `expect_request_error`)");
            None
        }
    };
    Some(Case {
        name: name?.to_owned(),
        request: request?,
        expect: expect?,
    })
}

fn parse_expect(json: &Json<'_>, path: &Path<'_>, p: &mut Problems) -> Option<Expect> {
    let o: Obj<'_> = p.object(
        json,
        path,
        &[
            "outcome",
            "policy",
            "session_duration",
            "trace_contains",
            "deny",
        ],
        &[],
    )?;
    let outcome = o.required("outcome", path, p).and_then(|v| {
        let at = path.key("outcome");
        let s = p.string(v, &at)?;
        Outcome::parse(s)
            .ok_or_else(|| {
                p.add(
                    &at,
                    format!(
                        "unknown outcome `{s}` (one of {})",
                        Outcome::ALL
                            .iter()
                            .map(|o| format!("`{o}`"))
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
            })
            .ok()
    });
    // `policy: null` (expect none) differs from no `policy` (not checked).
    let policy = match o
        .entries
        .iter()
        .find(|(k, _)| k == "policy")
        .map(|(_, v)| v)
    {
        None => None,
        Some(Json::Null) => Some(None),
        Some(v) => p.string(v, &path.key("policy")).map(|s| Some(s.to_owned())),
    };
    let session_duration = o
        .get("session_duration")
        .and_then(|v| p.string(v, &path.key("session_duration")))
        .map(ToOwned::to_owned);
    let mut trace_contains = Vec::new();
    if let Some(v) = o.get("trace_contains") {
        let at = path.key("trace_contains");
        for (i, item) in p.array(v, &at).unwrap_or(&[]).iter().enumerate() {
            if let Some(s) = p.string(item, &at.index(i)) {
                trace_contains.push(s.to_owned());
            }
        }
    }
    let deny = match o.get("deny") {
        None => None,
        Some(v) => Some(expected_deny(v, &path.key("deny"), p)?),
    };
    Some(Expect::Verdict {
        outcome: outcome?,
        policy,
        session_duration,
        trace_contains,
        deny,
    })
}

/// The failures of a document that had to fail to load, against `expected`.
pub fn check_load_errors(
    result: Result<&Engine, &LoadErrors>,
    expected: &[ExpectedError],
) -> Vec<String> {
    let Err(errors) = result else {
        return alloc::vec!["the document loads, but load errors were expected".to_owned()];
    };
    expected
        .iter()
        .filter(|e| {
            !errors
                .errors()
                .iter()
                .any(|got| got.path == e.path && got.message.contains(&e.contains))
        })
        .map(|e| {
            format!(
                "expected an error at `{}` containing `{}`, got:\n{errors}",
                e.path, e.contains
            )
        })
        .collect()
}

/// The failures of [`Engine::apps_on_host`] against `expected`.
pub fn check_hosts(engine: &Engine, expected: &[ExpectedHost]) -> Vec<String> {
    expected
        .iter()
        .filter_map(|e| {
            let got: Vec<&str> = engine
                .apps_on_host(&e.host)
                .into_iter()
                .map(crate::App::id)
                .collect();
            (got != e.apps)
                .then(|| format!("host `{}`: apps {:?}, expected {:?}", e.host, got, e.apps))
        })
        .collect()
}

/// Runs one case against `engine`.
pub fn run_case(engine: &Engine, case: &Case) -> CaseResult {
    let mut failures = Vec::new();
    let mut verdict = None;
    match (&case.expect, Request::from_json(&case.request)) {
        (Expect::RequestError(expected), Ok(_)) => failures.push(format!(
            "the request loads, but an error at `{}` containing `{}` was expected",
            expected.path, expected.contains
        )),
        (Expect::RequestError(expected), Err(errors)) => {
            if !request_error_matches(&errors, expected) {
                failures.push(format!(
                    "expected a request error at `{}` containing `{}`, got: {errors}",
                    expected.path, expected.contains
                ));
            }
        }
        (Expect::Verdict { .. }, Err(errors)) => {
            failures.push(format!("the request does not load: {errors}"));
        }
        (expect @ Expect::Verdict { .. }, Ok(request)) => match engine.evaluate(&request) {
            Err(e) => failures.push(format!("evaluation stopped: {e}")),
            Ok(got) => {
                // The fast path must agree with the traced one.
                match engine.decide(&request) {
                    Ok(d) if d.outcome == got.outcome => {}
                    _ => failures.push("decide() and evaluate() disagree".to_owned()),
                }
                compare(expect, &got, &mut failures);
                if let Expect::Verdict {
                    deny: Some(expected),
                    ..
                } = expect
                {
                    let app = got
                        .app
                        .as_deref()
                        .and_then(|id| engine.apps().iter().find(|a| a.id() == id));
                    let answer =
                        ExpectedDeny::of(app.and_then(|app| {
                            app.deny_answer(got.outcome, request.identity.is_some())
                        }));
                    if answer != *expected {
                        failures.push(format!("deny answer is {answer}, expected {expected}"));
                    }
                }
                verdict = Some(got);
            }
        },
    }
    CaseResult {
        name: case.name.clone(),
        failures,
        verdict,
    }
}

fn request_error_matches(errors: &RequestError, expected: &ExpectedError) -> bool {
    errors
        .errors()
        .iter()
        .any(|e| e.path == expected.path && e.message.contains(&expected.contains))
}

fn compare(expect: &Expect, got: &Verdict, failures: &mut Vec<String>) {
    let Expect::Verdict {
        outcome,
        policy,
        session_duration,
        trace_contains,
        ..
    } = expect
    else {
        return;
    };
    if got.outcome != *outcome {
        failures.push(format!("outcome `{}`, expected `{outcome}`", got.outcome));
    }
    if let Some(policy) = policy {
        let got_policy = got
            .policy
            .as_ref()
            .map(|(id, name, _)| id.clone().unwrap_or_else(|| name.clone()));
        if got_policy != *policy {
            failures.push(format!(
                "policy {}, expected {}",
                shown(got_policy.as_deref()),
                shown(policy.as_deref())
            ));
        }
    }
    if let Some(expected) = session_duration {
        let got_session = got
            .session_duration
            .as_ref()
            .map(|d| d.as_str().to_string());
        if got_session.as_deref() != Some(expected.as_str()) {
            failures.push(format!(
                "session_duration {}, expected `{expected}`",
                shown(got_session.as_deref())
            ));
        }
    }
    for needle in trace_contains {
        if !got.trace.iter().any(|line| line.contains(needle.as_str())) {
            failures.push(format!("the trace lacks `{needle}`"));
        }
    }
}

fn shown(value: Option<&str>) -> String {
    value.map_or_else(|| "none".to_owned(), |v| format!("`{v}`"))
}

/// Compact JSON text of a value (for handing sub-documents to the loaders).
fn to_json_text(json: &Json<'_>) -> String {
    let mut out = String::new();
    write_json(json, &mut out);
    out
}

fn write_json(json: &Json<'_>, out: &mut String) {
    match json {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => write_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(item, out);
            }
            out.push(']');
        }
        Json::Object(entries) => {
            out.push('{');
            for (i, (key, value)) in entries.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_json(value, out);
            }
            out.push('}');
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_would_turn_a_check_off() {
        for (text, path, needle) in [
            (
                r#"{"document": {}, "cases": [{"name": "x", "request": {}, "expect": {"outcom": "allow"}}]}"#,
                "cases[0].expect",
                "unknown field `outcom`",
            ),
            (
                r#"{"document": {}, "cases": [{"name": "x", "request": {}, "expect": {"outcome": "alow"}}]}"#,
                "cases[0].expect.outcome",
                "unknown outcome",
            ),
            (
                r#"{"document": {}, "config": "a.json", "cases": []}"#,
                "",
                "both given",
            ),
            (r#"{"cases": []}"#, "", "missing field `document`"),
            (r#"{"document": {}, "cases": []}"#, "cases", "no cases"),
            (
                r#"{"document": {}, "cases": [], "cases": []}"#,
                "",
                "duplicate",
            ),
        ] {
            let errors = TestFile::from_json(text).unwrap_err();
            assert!(
                errors
                    .errors()
                    .iter()
                    .any(|e| e.path == path && e.message.contains(needle)),
                "{text}: {errors}"
            );
        }
    }

    #[test]
    fn keeps_null_policy_apart_from_no_policy() {
        let file = TestFile::from_json(
            r#"{"config": "a.json", "cases": [
                {"name": "a", "request": {"app": "x.example.com"}, "expect": {"outcome": "no_app", "policy": null}},
                {"name": "b", "request": {"app": "x.example.com"}, "expect": {"outcome": "no_app"}}]}"#,
        )
        .unwrap();
        let policies: Vec<_> = file
            .cases()
            .iter()
            .map(|c| match &c.expect {
                Expect::Verdict { policy, .. } => policy.clone(),
                Expect::RequestError(_) => None,
            })
            .collect();
        assert_eq!(policies, [Some(None), None]);
        assert_eq!(file.document, DocumentSource::Path("a.json".into()));
    }
}

//! Structured log lines: one JSON object per line, never a token or a secret.

use serde_json::{Map, Value};
use worker::console_log;

/// Now as ISO 8601 in UTC with milliseconds (`2026-12-02T06:01:02.345Z`): what log search
/// and every log pipeline parse.
fn now_iso() -> String {
    js_sys::Date::new_0().to_iso_string().into()
}

/// One line with `event` and string fields.
pub fn event(event: &str, fields: &[(&str, &str)]) {
    let mut line = Map::new();
    line.insert("time".into(), Value::String(now_iso()));
    line.insert("event".into(), Value::String(event.into()));
    for (k, v) in fields {
        line.insert((*k).into(), Value::String((*v).into()));
    }
    console_log!("{}", Value::Object(line));
}

/// The decision line: one per request the gateway decides.
pub struct DecisionLog<'a> {
    pub request_id: &'a str,
    pub method: &'a str,
    pub target: &'a str,
    pub app: Option<&'a str>,
    pub outcome: &'a str,
    pub policy: Option<String>,
    pub user: Option<&'a str>,
    pub service_token: Option<&'a str>,
    pub status: u16,
    pub reason: Option<String>,
    /// The policy trace of a refusal.
    pub why: &'a [String],
    /// The client's address (`CF-Connecting-IP`), as the policies saw it.
    pub ip: Option<String>,
    /// The client's country, as Cloudflare placed it.
    pub country: Option<&'a str>,
    /// Milliseconds from the request's arrival to its answer (the isolate's clock, which
    /// advances across I/O: the origin's and storage's time included).
    pub latency_ms: u64,
    /// The configuration that decided: its stored version, or the SHA-256 prefix of the
    /// bundled or var document ([`crate::config::Gateway::version_label`]).
    pub config_version: &'a str,
}

impl DecisionLog<'_> {
    pub fn emit(&self) {
        console_log!("{}", self.line());
    }

    /// The line as JSON text.
    pub fn line(&self) -> String {
        let mut line = Map::new();
        let text = |s: &str| Value::String(s.into());
        let opt = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.into()));
        line.insert("time".into(), Value::String(now_iso()));
        line.insert("event".into(), text("decision"));
        line.insert("request_id".into(), text(self.request_id));
        line.insert("method".into(), text(self.method));
        line.insert("target".into(), text(self.target));
        line.insert("app".into(), opt(self.app));
        line.insert("outcome".into(), text(self.outcome));
        line.insert("policy".into(), opt(self.policy.as_deref()));
        line.insert("user".into(), opt(self.user));
        line.insert("service_token".into(), opt(self.service_token));
        line.insert("status".into(), Value::from(self.status));
        line.insert("reason".into(), opt(self.reason.as_deref()));
        line.insert("ip".into(), opt(self.ip.as_deref()));
        line.insert("country".into(), opt(self.country));
        line.insert("latency_ms".into(), Value::from(self.latency_ms));
        line.insert("config_version".into(), text(self.config_version));
        if !self.why.is_empty() {
            line.insert("why".into(), Value::from(self.why.to_vec()));
        }
        Value::Object(line).to_string()
    }
}

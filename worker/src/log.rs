//! Structured log lines: one JSON object per line, never a token or a secret.

use serde_json::{Map, Value};
use worker::{console_log, Date};

/// One line with `event` and string fields.
pub fn event(event: &str, fields: &[(&str, &str)]) {
    let mut line = Map::new();
    line.insert("time".into(), Value::String(Date::now().to_string()));
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
}

impl DecisionLog<'_> {
    pub fn emit(&self) {
        let mut line = Map::new();
        let text = |s: &str| Value::String(s.into());
        let opt = |s: Option<&str>| s.map_or(Value::Null, |s| Value::String(s.into()));
        line.insert("time".into(), Value::String(Date::now().to_string()));
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
        if !self.why.is_empty() {
            line.insert("why".into(), Value::from(self.why.to_vec()));
        }
        console_log!("{}", Value::Object(line));
    }
}

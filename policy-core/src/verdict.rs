//! What the engine answers.

use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde_json::{Map, Value};

use crate::duration::SessionDuration;
use crate::model::{Action, App};

/// The result of a decision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// An `allow` policy matched.
    Allow,
    /// A `bypass` policy matched.
    Bypass,
    /// A `non_identity` (Service Auth) policy matched.
    ServiceAuth,
    /// A `deny` policy matched.
    Block,
    /// Nothing matched.
    DefaultDeny,
    /// No one is signed in, and signing in could change the answer.
    LoginRequired,
    /// No app covers the request.
    NoApp,
    /// The path means different things to different origins (see [`crate::PathRefusal`]):
    /// refused before any app or policy is consulted.
    InvalidPath,
}

impl Outcome {
    /// Every outcome, in the contract's order.
    pub const ALL: [Outcome; 8] = [
        Outcome::Allow,
        Outcome::Bypass,
        Outcome::ServiceAuth,
        Outcome::Block,
        Outcome::DefaultDeny,
        Outcome::LoginRequired,
        Outcome::NoApp,
        Outcome::InvalidPath,
    ];

    /// The outcome spelled `text` (the contract's spelling), if any.
    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }

    /// The contract's spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Bypass => "bypass",
            Outcome::ServiceAuth => "service_auth",
            Outcome::Block => "block",
            Outcome::DefaultDeny => "default_deny",
            Outcome::LoginRequired => "login_required",
            Outcome::NoApp => "no_app",
            Outcome::InvalidPath => "invalid_path",
        }
    }

    /// Whether the request goes through to the origin.
    pub fn is_granted(self) -> bool {
        matches!(
            self,
            Outcome::Allow | Outcome::Bypass | Outcome::ServiceAuth
        )
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The policy that decided, as attached to the app.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecidingPolicy<'e> {
    /// The policy's id (inline policies may have none).
    pub id: Option<&'e str>,
    /// The policy's name.
    pub name: &'e str,
    /// Its precedence in the app.
    pub precedence: u32,
    /// Its decision.
    pub action: Action,
}

/// A decision borrowed from the engine, without a trace.
#[derive(Clone, Copy, Debug)]
pub struct Decision<'e> {
    /// What happens to the request.
    pub outcome: Outcome,
    /// The app that covers the request.
    pub app: Option<&'e App>,
    /// The policy that decided (for `login_required`: the first policy that could match after
    /// sign-in; none for `default_deny` and `no_app`).
    pub policy: Option<DecidingPolicy<'e>>,
    /// For `allow`: the session length (policy, else app, else 24h).
    pub session: Option<&'e SessionDuration>,
}

/// An owned decision with its trace; serialises to the verdict JSON contract.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// What happens to the request.
    pub outcome: Outcome,
    /// The id of the app that covers the request.
    pub app: Option<String>,
    /// The deciding policy: id (if any), name, precedence.
    pub policy: Option<(Option<String>, String, u32)>,
    /// For `allow`: the session length.
    pub session_duration: Option<SessionDuration>,
    /// Human-readable steps.
    pub trace: Vec<String>,
}

impl Verdict {
    pub(crate) fn new(decision: &Decision<'_>, trace: Vec<String>) -> Verdict {
        Verdict {
            outcome: decision.outcome,
            app: decision.app.map(|a| a.id().to_string()),
            policy: decision
                .policy
                .map(|p| (p.id.map(str::to_string), p.name.to_string(), p.precedence)),
            session_duration: decision.session.cloned(),
            trace,
        }
    }

    /// The verdict as a JSON value.
    pub fn to_value(&self) -> Value {
        let mut map = Map::new();
        map.insert(
            "outcome".into(),
            Value::String(self.outcome.as_str().into()),
        );
        map.insert(
            "app".into(),
            self.app.clone().map_or(Value::Null, Value::String),
        );
        let policy = match &self.policy {
            Some((id, name, precedence)) => {
                let mut p = Map::new();
                p.insert("id".into(), id.clone().map_or(Value::Null, Value::String));
                p.insert("name".into(), Value::String(name.clone()));
                p.insert("precedence".into(), Value::from(*precedence));
                Value::Object(p)
            }
            None => Value::Null,
        };
        map.insert("policy".into(), policy);
        map.insert(
            "session_duration".into(),
            self.session_duration
                .as_ref()
                .map_or(Value::Null, |d| Value::String(d.as_str().into())),
        );
        map.insert(
            "trace".into(),
            Value::Array(self.trace.iter().cloned().map(Value::String).collect()),
        );
        Value::Object(map)
    }

    /// The verdict as JSON text.
    pub fn to_json(&self) -> String {
        self.to_value().to_string()
    }
}

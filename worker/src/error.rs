//! The gateway's failures and how each kind answers a client: generic bodies only; the
//! reason goes to the log. Refusals are [`Refusal`]s; an endpoint that may answer with either
//! stops with a [`Stop`].

use std::fmt;

use worker::{Env, Response};

use crate::config::Gateway;
use crate::custom_pages;
use crate::pages::{self, Frame, Kind};
use crate::refusal::Refusal;

/// How long a client is asked to wait (`Retry-After`, seconds) when a dependency is down.
const RETRY_AFTER_S: &str = "5";

/// A service the gateway cannot decide or finish a request without.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    /// D1: sessions, used sign-in states, the SCIM directory (503).
    Storage,
    /// The identity provider's token endpoint, at the sign-in's code exchange (502).
    IdentityProvider,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Dependency::Storage => "storage",
            Dependency::IdentityProvider => "identity provider",
        })
    }
}

/// Why a request was not proxied.
#[derive(Debug)]
pub enum GatewayError {
    /// The configuration does not load (every request fails closed).
    Config(String),
    /// The signing key cannot be known yet (no keys, or a key set fetch that failed or may
    /// not begin yet): 503 with `Retry-After`.
    KeysUnavailable {
        /// For the log.
        reason: String,
        /// When a retry may succeed, in seconds.
        retry_after_secs: u64,
    },
    /// The origin could not be reached: 502.
    Origin(String),
    /// A groups overage could not be resolved through Microsoft Graph: the sign-in fails
    /// closed rather than continue with a partial identity (502).
    GroupsUnavailable(String),
    /// A dependency failed or could not be reached: the request fails closed (502 for the
    /// identity provider, 503 for storage), and the client is asked to retry.
    Unavailable {
        /// Which one.
        dependency: Dependency,
        /// What failed, for the log.
        detail: String,
    },
    /// Anything else: 500.
    Internal(String),
}

impl GatewayError {
    /// The HTTP status for the client.
    pub fn status(&self) -> u16 {
        match self {
            GatewayError::Config(_) | GatewayError::Internal(_) => 500,
            GatewayError::KeysUnavailable { .. } => 503,
            GatewayError::Origin(_) | GatewayError::GroupsUnavailable(_) => 502,
            GatewayError::Unavailable { dependency, .. } => match dependency {
                Dependency::Storage => 503,
                Dependency::IdentityProvider => 502,
            },
        }
    }

    /// What the log says (never sent to the client).
    pub fn reason(&self) -> String {
        match self {
            GatewayError::Config(r) => format!("configuration: {r}"),
            GatewayError::KeysUnavailable { reason, .. } => {
                format!("signing keys unavailable: {reason}")
            }
            GatewayError::Origin(r) => format!("origin: {r}"),
            GatewayError::GroupsUnavailable(r) => format!("group memberships unavailable: {r}"),
            GatewayError::Unavailable { dependency, detail } => {
                format!("{dependency} unavailable: {detail}")
            }
            GatewayError::Internal(r) => format!("internal: {r}"),
        }
    }

    /// The page it answers with.
    pub fn page_kind(&self) -> Kind {
        match self {
            GatewayError::KeysUnavailable { .. }
            | GatewayError::Origin(_)
            | GatewayError::Unavailable { .. } => Kind::Unavailable,
            GatewayError::GroupsUnavailable(_) => Kind::GroupsUnavailable,
            GatewayError::Config(_) | GatewayError::Internal(_) => Kind::Error,
        }
    }

    /// The generic response, knowing nothing of the request.
    pub fn response(&self) -> Response {
        self.answer(&Frame::default())
    }

    /// The response, its page in `frame`.
    pub fn answer(&self, frame: &Frame) -> Response {
        let status = self.status();
        let response = pages::page(self.page_kind(), None, frame, status);
        // Signing keys say when they may be known; other outages of what the gateway depends
        // on pass too, and the client may try again.
        if let GatewayError::KeysUnavailable {
            retry_after_secs, ..
        } = self
        {
            return pages::with_header(response, "Retry-After", &retry_after_secs.to_string());
        }
        if matches!(status, 502 | 503) {
            return pages::with_header(response, "Retry-After", RETRY_AFTER_S);
        }
        response
    }
}

/// Why an endpoint answers other than it was asked: the client is refused, or the gateway
/// failed. The two stay apart: only a [`GatewayError`] is a failure.
#[derive(Debug)]
pub enum Stop {
    /// The request is refused (the client's side).
    Refused(Refusal),
    /// The gateway could not finish it (its side, or a dependency's).
    Failed(GatewayError),
}

impl Stop {
    /// What the log says (never sent to the client).
    pub fn reason(&self) -> String {
        match self {
            Stop::Refused(refusal) => refusal.reason(),
            Stop::Failed(error) => error.reason(),
        }
    }

    /// The response, its page in `frame`.
    pub fn answer(&self, frame: &Frame) -> Response {
        match self {
            Stop::Refused(refusal) => refusal.answer(frame),
            Stop::Failed(error) => error.answer(frame),
        }
    }

    /// The response to the request `request_id`, its page saying what is known of the app and
    /// the user, in the configured design, or the custom page stored for it. Only refusals and
    /// failures come here: an allowed request never reads the custom pages.
    pub async fn answer_in(&self, env: &Env, gateway: &Gateway, request_id: &str) -> Response {
        let to = match self {
            Stop::Refused(refusal) => refusal.addressee(),
            Stop::Failed(_) => None,
        };
        let kind = match self {
            Stop::Refused(refusal) => refusal.page_kind(),
            Stop::Failed(error) => Some(error.page_kind()),
        };
        let found = match kind {
            Some(kind) => {
                custom_pages::find(env, gateway, kind, to.map(|t| t.app_id.as_str())).await
            }
            None => None,
        };
        let frame = Frame {
            design: Some(&gateway.login_design),
            endpoints: Some(&gateway.endpoints),
            request_id: Some(request_id),
            app: to.map(|t| t.app_name.as_str()),
            email: to.and_then(|t| t.email.as_deref()),
            session: to.is_some_and(|t| t.session),
            return_to: to.and_then(|t| t.return_to.as_deref()),
            custom: found.as_ref().and_then(custom_pages::Found::template),
        };
        self.answer(&frame)
    }
}

impl From<Refusal> for Stop {
    fn from(refusal: Refusal) -> Stop {
        Stop::Refused(refusal)
    }
}

impl From<GatewayError> for Stop {
    fn from(error: GatewayError) -> Stop {
        Stop::Failed(error)
    }
}

impl From<worker::Error> for Stop {
    fn from(error: worker::Error) -> Stop {
        Stop::Failed(error.into())
    }
}

impl From<worker::Error> for GatewayError {
    fn from(e: worker::Error) -> GatewayError {
        match e {
            // A query D1 refused or could not run (its messages start `D1_`): an outage of
            // storage, not a fault of this request.
            // (`D1Error`'s `Display` throws when the cause is not a string; `cause` reads it.)
            worker::Error::D1(e) => GatewayError::Unavailable {
                dependency: Dependency::Storage,
                detail: format!("D1: {}", e.cause()),
            },
            e => GatewayError::Internal(e.to_string()),
        }
    }
}

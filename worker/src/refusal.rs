//! Refusals: a request the gateway answered as it should — no app, a path origins read
//! differently, credentials not accepted, the policies said no, sign in first — each with
//! its generic answer; the reason goes to the log. Failures to decide or to answer are
//! [`crate::error::GatewayError`]s.

use std::fmt;

use worker::Response;

use crate::pages::{self, Frame, Kind};

/// Why a request is refused.
#[derive(Debug)]
pub enum Refusal {
    /// No valid credentials: 401 (bearer API path).
    Unauthorized(String),
    /// Presented credentials that are not accepted, or policies refused them: 403.
    Forbidden {
        /// For the log.
        reason: String,
        /// Refused on non-identity grounds (before any sign-in could help).
        non_identity: bool,
    },
    /// Refused on identity grounds by an app with a `custom_deny_message`: 403, the block page
    /// with the app's message (as text) in place of the default one.
    ForbiddenSaying {
        /// For the log.
        reason: String,
        /// The app's message.
        message: String,
    },
    /// No app covers the request.
    NoApp,
    /// The request path means different things to different origins (encoded `/`, dot
    /// segments, …, or readings that route to different apps): 400, never forwarded.
    InvalidPath(String),
    /// A request the gateway will not act on (a sign-in with an identity provider the app
    /// does not allow): 400.
    BadRequest(String),
    /// The sign-in protocol failed (state, code, tokens, nonce, PKCE): 403 with a page that
    /// says to start again — not the "no access" page, since no policy refused anyone.
    SignInFailed(String),
    /// A browser without a session: sent to sign in (302 to this URL).
    SignIn(String),
    /// Refused, and the app sends refused users to its own page (302 to this URL).
    DeniedTo(String),
    /// A refusal whose page names the app and the user it refuses.
    Addressed(Box<Refusal>, Addressee),
}

/// Whom a refusal's page speaks to: the app and, once signed in, the user.
#[derive(Debug)]
pub struct Addressee {
    pub app_id: String,
    pub app_name: String,
    pub email: Option<String>,
    /// Whether this browser has a session the page can offer to end: not after a sign-in the
    /// policies refused (no session was set), nor for a bearer token.
    pub session: bool,
    /// The refused path, where a new sign-in goes back to.
    pub return_to: Option<String>,
}

impl Refusal {
    /// This refusal, its page naming `to`.
    pub fn addressed(self, to: Addressee) -> Refusal {
        match self {
            Refusal::Addressed(refusal, _) => Refusal::Addressed(refusal, to),
            refusal => Refusal::Addressed(Box::new(refusal), to),
        }
    }

    /// Whom the page speaks to, where known.
    pub fn addressee(&self) -> Option<&Addressee> {
        match self {
            Refusal::Addressed(_, to) => Some(to),
            _ => None,
        }
    }

    /// The page it answers with; `None` for a redirect.
    pub fn page_kind(&self) -> Option<Kind> {
        Some(match self {
            Refusal::Unauthorized(_) => Kind::SignInRequired,
            Refusal::Forbidden {
                non_identity: true, ..
            } => Kind::DeniedNonIdentity,
            Refusal::Forbidden { .. } | Refusal::ForbiddenSaying { .. } => Kind::Denied,
            Refusal::SignInFailed(_) => Kind::SignInFailed,
            Refusal::InvalidPath(_) | Refusal::BadRequest(_) => Kind::BadRequest,
            Refusal::NoApp => Kind::NotFound,
            Refusal::SignIn(_) | Refusal::DeniedTo(_) => return None,
            Refusal::Addressed(refusal, _) => return refusal.page_kind(),
        })
    }

    /// The HTTP status for the client.
    pub fn status(&self) -> u16 {
        match self {
            Refusal::Addressed(refusal, _) => refusal.status(),
            Refusal::Unauthorized(_) => 401,
            Refusal::Forbidden { .. }
            | Refusal::ForbiddenSaying { .. }
            | Refusal::SignInFailed(_) => 403,
            Refusal::NoApp => 404,
            Refusal::InvalidPath(_) | Refusal::BadRequest(_) => 400,
            Refusal::SignIn(_) | Refusal::DeniedTo(_) => 302,
        }
    }

    /// What the log says (never sent to the client).
    pub fn reason(&self) -> String {
        match self {
            Refusal::Unauthorized(r) => format!("unauthorized: {r}"),
            Refusal::Forbidden { reason, .. } | Refusal::ForbiddenSaying { reason, .. } => {
                format!("forbidden: {reason}")
            }
            Refusal::SignInFailed(r) => format!("sign-in failed: {r}"),
            Refusal::NoApp => "no app covers the request".into(),
            Refusal::InvalidPath(r) => format!("invalid path: {r}"),
            Refusal::BadRequest(r) => format!("bad request: {r}"),
            Refusal::SignIn(_) => "sign-in required: redirected to sign in".into(),
            Refusal::DeniedTo(_) => "refused: redirected to the app's deny page".into(),
            Refusal::Addressed(refusal, _) => refusal.reason(),
        }
    }

    /// The response, its page in `frame`.
    pub fn answer(&self, frame: &Frame) -> Response {
        let status = self.status();
        let message = match self {
            Refusal::SignIn(location) | Refusal::DeniedTo(location) => {
                let headers = worker::Headers::new();
                let _ = headers.set("Location", location);
                let _ = headers.set("Cache-Control", "no-store");
                return Response::builder()
                    .with_status(302)
                    .with_headers(headers)
                    .empty();
            }
            Refusal::Addressed(refusal, _) => return refusal.answer(frame),
            Refusal::ForbiddenSaying { message, .. } => Some(message.as_str()),
            _ => None,
        };
        let Some(kind) = self.page_kind() else {
            return Response::builder().with_status(status).empty();
        };
        let response = pages::page(kind, message, frame, status);
        match self {
            Refusal::Unauthorized(_) => pages::with_header(response, "WWW-Authenticate", "Bearer"),
            _ => response,
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason())
    }
}

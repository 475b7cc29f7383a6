//! How a refused request is answered, as its app configures it: the app's own deny page, or
//! the gateway's block page (with the app's message).

use crate::model::App;
use crate::verdict::Outcome;

/// How a request the app's policies refused is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenyAnswer<'a> {
    /// Send the browser to the app's own page: its `custom_deny_url` for an identity refusal,
    /// its `custom_non_identity_deny_url` for a non-identity one.
    Redirect(&'a str),
    /// The block page for an identity refusal, with the app's `custom_deny_message` in place
    /// of the default text when it has one.
    IdentityPage(Option<&'a str>),
    /// The block page for a non-identity refusal (the network, the country: refused before
    /// signing in could help).
    NonIdentityPage,
}

impl App {
    /// How a request this app decided with `outcome` is refused; `signed_in`: the request
    /// carried an identity. `None` for outcomes that are no refusal by the app's policies
    /// (`allow`, `bypass`, `service_auth`, `login_required`, `no_app`, `invalid_path`).
    ///
    /// A `deny` match is an identity refusal. Nothing matching is one when the request carried
    /// an identity; without one it is a non-identity refusal, since signing in could not have
    /// helped (else the outcome would be `login_required`).
    pub fn deny_answer(&self, outcome: Outcome, signed_in: bool) -> Option<DenyAnswer<'_>> {
        let identity = match outcome {
            Outcome::Block => true,
            Outcome::DefaultDeny => signed_in,
            Outcome::Allow
            | Outcome::Bypass
            | Outcome::ServiceAuth
            | Outcome::LoginRequired
            | Outcome::NoApp
            | Outcome::InvalidPath => return None,
        };
        Some(if identity {
            match self.custom_deny_url() {
                Some(url) => DenyAnswer::Redirect(url),
                None => DenyAnswer::IdentityPage(self.custom_deny_message()),
            }
        } else {
            match self.custom_non_identity_deny_url() {
                Some(url) => DenyAnswer::Redirect(url),
                None => DenyAnswer::NonIdentityPage,
            }
        })
    }
}

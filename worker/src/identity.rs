//! The one place an Entra token becomes an [`Identity`]: an access token presented as
//! `Authorization: Bearer` (the gate) or the ID token of a sign-in (the callback). The token is
//! parsed, its signing key found ([`crate::keys`]), verified by the `edge-access-token` rules,
//! and mapped to an identity; a groups overage (or a token without groups) is resolved through
//! Microsoft Graph ([`crate::graph`]).

use std::cell::RefCell;
use std::collections::HashMap;

use edge_access_token::{
    identity_from_claims, identity_without_groups, Expectations, IdentityError, TokenVersion,
    UnverifiedEntraToken, VerifiedEntraToken, DEFAULT_LEEWAY_SECS,
};
use policy_core::{Identity, IdentityProvider};
use worker::Env;

use crate::config::Gateway;
use crate::crypto::WebCryptoVerifier;
use crate::error::{GatewayError, Stop};
use crate::graph;
use crate::keys;
use crate::refusal::Refusal;
use crate::time::UnixMillis;

/// Which Entra token is presented, and what it is held to.
pub enum Source<'a> {
    /// An access token from `Authorization: Bearer`: of any directory the configuration names
    /// (found by its `tid`), for one of that provider's accepted audiences. Overage groups are
    /// read with the app registration's own credentials.
    Bearer,
    /// The ID token of a sign-in with `idp`, from the endpoint of `version`, carrying `nonce`.
    /// Overage groups are read with the sign-in's `access_token`.
    SignIn {
        idp: &'a IdentityProvider,
        version: TokenVersion,
        nonce: String,
        access_token: Option<&'a str>,
    },
}

/// Why a token gives no identity.
#[derive(Debug)]
pub enum Rejection {
    /// The token is not accepted: malformed, from a directory not configured, not verified
    /// (key, signature, issuer, audience, times, nonce), or its claims give no identity.
    Token(String),
    /// The token verified, but its identity cannot be read without its groups (an app-only
    /// token, a claim of the wrong shape).
    Identity(String),
    /// The token names a signing key its directory does not publish.
    UnknownKey(String),
    /// Not the token's fault: keys, Graph or the configuration failed.
    Failure(GatewayError),
}

impl From<GatewayError> for Rejection {
    fn from(error: GatewayError) -> Rejection {
        Rejection::Failure(error)
    }
}

impl Rejection {
    /// As the gate answers a bearer token: every refusal of the token is a 401; failures
    /// stay failures.
    pub fn for_bearer(self) -> Stop {
        match self {
            Rejection::Token(why) | Rejection::Identity(why) | Rejection::UnknownKey(why) => {
                Stop::Refused(Refusal::Unauthorized(why))
            }
            Rejection::Failure(error) => Stop::Failed(error),
        }
    }

    /// As the callback answers a sign-in's ID token: the sign-in failed, the identity it
    /// brought is refused, or (unknown key) it is not authorised.
    pub fn for_sign_in(self) -> Stop {
        match self {
            Rejection::Token(why) => Stop::Refused(Refusal::SignInFailed(why)),
            Rejection::Identity(why) => Stop::Refused(Refusal::Forbidden {
                reason: why,
                non_identity: false,
            }),
            Rejection::UnknownKey(why) => Stop::Refused(Refusal::Unauthorized(why)),
            Rejection::Failure(error) => Stop::Failed(error),
        }
    }
}

/// Bearer tokens this isolate verified, with the identity each gave: a client presenting the
/// same token again is not parsed and verified again while everything its verification
/// rested on still holds ([`Verified::holds`]).
const VERIFIED_CACHED: usize = 512;

struct Verified {
    identity: Identity,
    /// The configuration it was verified under ([`Gateway::version_label`]).
    config: String,
    /// The key that verified it: its source, token version, `kid` and modulus.
    source: String,
    version: TokenVersion,
    kid: String,
    modulus: String,
    /// The token's `exp` (Unix s).
    expires_s: i64,
}

impl Verified {
    /// Whether the verification still holds at `now`: the same configuration, the token not
    /// expired (with the leeway verification allows), and the key that verified it still in
    /// the isolate's fresh key set for its directory (a key Entra stopped publishing, or a set
    /// due for a refresh, sends the token through the whole check again). `nbf` and `iat`
    /// were not in the future at verification, so they are not now.
    fn holds(&self, gateway: &Gateway, now: UnixMillis) -> bool {
        let now_s = i64::try_from(now.unix_secs()).unwrap_or(i64::MAX);
        let leeway = i64::try_from(DEFAULT_LEEWAY_SECS).unwrap_or(0);
        self.config == gateway.version_label
            && now_s <= self.expires_s.saturating_add(leeway)
            && keys::held_fresh(&self.source, self.version, &self.kid, now)
                .is_some_and(|(key, _)| key.n == self.modulus)
    }
}

thread_local! {
    static VERIFIED: RefCell<HashMap<String, Verified>> = RefCell::new(HashMap::new());
}

/// The identity of a bearer `token` this isolate verified, while that verification holds.
fn verified_before(gateway: &Gateway, token: &str, now: UnixMillis) -> Option<Identity> {
    VERIFIED.with(|v| {
        let mut verified = v.borrow_mut();
        let hit = verified.get(token)?;
        if hit.holds(gateway, now) {
            return Some(hit.identity.clone());
        }
        verified.remove(token);
        None
    })
}

/// Forgets every verified token (the benchmark's phase profile: the whole check, timed).
#[cfg(feature = "phase-profile")]
pub fn forget_verified() {
    VERIFIED.with(|v| v.borrow_mut().clear());
}

fn remember(token: &str, verified: Verified, now: UnixMillis) {
    VERIFIED.with(|v| {
        let mut held = v.borrow_mut();
        if held.len() >= VERIFIED_CACHED {
            let now_s = i64::try_from(now.unix_secs()).unwrap_or(i64::MAX);
            held.retain(|_, v| now_s <= v.expires_s);
            if held.len() >= VERIFIED_CACHED {
                held.clear();
            }
        }
        held.insert(token.to_owned(), verified);
    });
}

/// The identity `token` carries, verified as `presented` says at `now`.
///
/// # Errors
/// [`Rejection::Token`] and [`Rejection::Identity`] for a token that is refused;
/// [`Rejection::UnknownKey`] for a key its directory does not publish;
/// [`Rejection::Failure`] when the keys, Graph or the configuration failed.
pub async fn from_entra_token(
    env: &Env,
    gateway: &Gateway,
    token: &str,
    presented: Source<'_>,
    now: UnixMillis,
) -> Result<Identity, Rejection> {
    // The log's words for a refusal: a sign-in names the ID token and the identity.
    let sign_in = matches!(presented, Source::SignIn { .. });
    if !sign_in {
        if let Some(identity) = verified_before(gateway, token, now) {
            return Ok(identity);
        }
    }
    let refused = |e: &dyn std::fmt::Display| {
        Rejection::Token(if sign_in {
            format!("ID token: {e}")
        } else {
            e.to_string()
        })
    };
    let parsed = UnverifiedEntraToken::parse(token).map_err(|e| refused(&e))?;
    let (idp, audiences, nonce) = match &presented {
        Source::Bearer => {
            let tenant = parsed
                .tenant_hint()
                .ok_or_else(|| refused(&"token has no `tid`"))?;
            let idp = gateway
                .engine
                .identity_providers()
                .iter()
                .find(|p| p.directory_id.eq_ignore_ascii_case(tenant))
                .ok_or_else(|| refused(&"token from a directory that is not configured"))?;
            (idp, idp.accepted_audiences(), None)
        }
        Source::SignIn {
            idp,
            version,
            nonce,
            ..
        } => {
            // The ID token's version follows the endpoint.
            if parsed.version() != *version {
                return Err(Rejection::Token(format!(
                    "ID token is not v{}",
                    version.as_str()
                )));
            }
            (*idp, vec![idp.client_id.to_string()], Some(nonce.clone()))
        }
    };
    let source = keys::key_source(idp);
    let (version, kid) = (parsed.version(), parsed.key_id().to_owned());
    let (key, issuer) = keys::signing_key(env, &gateway.authority(idp), &source, &parsed, now)
        .await?
        .map_err(|e| Rejection::UnknownKey(e.to_string()))?;
    let (issuer_v1, issuer_v2) = match parsed.version() {
        TokenVersion::V1 => (issuer, String::new()),
        TokenVersion::V2 => (String::new(), issuer),
    };
    let expected = Expectations {
        tenant_id: idp.directory_id.to_string(),
        audiences,
        issuer_v1,
        issuer_v2,
        leeway_secs: DEFAULT_LEEWAY_SECS,
        nonce,
    };
    let verified = parsed
        .verify(&WebCryptoVerifier, &key, &expected, now.unix_secs())
        .await
        .map_err(|e| refused(&e))?;
    // Whether the groups were read from Graph (an overage): then the identity is not the
    // token's alone, and is not reused.
    let mut from_graph = false;
    let mut identity = match identity_from_claims(&verified, idp) {
        Ok(identity) => identity,
        // Too many groups for the token, or none in it (unknown, never "no groups"): Graph.
        Err(IdentityError::GroupsOverage | IdentityError::GroupsNotInToken)
            if idp.support_groups =>
        {
            let mut identity = without_groups(&verified, idp, sign_in)?;
            from_graph = true;
            identity.groups = match &presented {
                // A bearer request brings no token Graph would accept for the user: the app
                // reads them with its own credentials.
                Source::Bearer => {
                    let oid = identity
                        .user_id
                        .as_deref()
                        .ok_or_else(|| refused(&"token has no `oid`"))?
                        .to_owned();
                    graph::user_groups(gateway, idp, &oid).await?
                }
                Source::SignIn { access_token, .. } => {
                    graph::signed_in_user_groups(gateway, idp, *access_token).await?
                }
            };
            identity
        }
        Err(
            IdentityError::GroupsOverage
            | IdentityError::GroupsNotInToken
            | IdentityError::BadGroup(_),
        ) if !idp.support_groups => without_groups(&verified, idp, sign_in)?,
        // Groups by name: the registration is set up wrong, the caller did nothing wrong.
        Err(error @ IdentityError::BadGroup(_)) => {
            return Err(Rejection::Failure(GatewayError::Config(format!(
                "identity provider `{}`: {error}",
                idp.id
            ))))
        }
        Err(e) if sign_in => return Err(Rejection::Token(format!("identity: {e}"))),
        Err(e) => return Err(refused(&e)),
    };
    // A provider without `support_groups` gives no groups, whichever token brings the
    // identity: a bearer token is decided as the same user's sign-in would be.
    if !idp.support_groups {
        identity.groups.clear();
    }
    // A bearer token's identity is the token's alone: it holds as long as the token does.
    if let (false, false, Some(expires_s)) = (sign_in, from_graph, verified.expires_at()) {
        let held = Verified {
            identity: identity.clone(),
            config: gateway.version_label.clone(),
            source,
            version,
            kid,
            modulus: key.n.clone(),
            expires_s,
        };
        remember(token, held, now);
    }
    Ok(identity)
}

/// The identity without reading its groups.
fn without_groups(
    verified: &VerifiedEntraToken,
    idp: &IdentityProvider,
    sign_in: bool,
) -> Result<Identity, Rejection> {
    identity_without_groups(verified, idp).map_err(|e| {
        if sign_in {
            Rejection::Identity(format!("identity: {e}"))
        } else {
            Rejection::Token(e.to_string())
        }
    })
}

//! Sessions: application tokens in the `CF_Authorization` cookie (minted and verified with
//! the keys of [`crate::signing`]), and the identities kept server-side in D1 under each
//! token's `identity_nonce` (table `sessions`, owned by [`crate::session_store`]).

use std::time::Duration;

use edge_access_token::{AppClaims, TokenError, UnverifiedAppToken, VerifiedAppToken};
use policy_core::SessionDuration;
use worker::{Env, Headers};

use crate::config::Gateway;
use crate::crypto::WebCryptoVerifier;
use crate::error::GatewayError;
use crate::session_store::{self, StoredIdentity};
use crate::signing::SigningKeys;
use crate::time::UnixMillis;

/// The cookie holding the application token.
pub const COOKIE: &str = "CF_Authorization";

/// Mints and signs an application token.
pub async fn mint(keys: &SigningKeys, claims: &AppClaims) -> Result<String, GatewayError> {
    let input = claims
        .signing_input(&keys.current.public.kid)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let signature = keys.current.sign(input.as_bytes()).await?;
    Ok(AppClaims::assemble(&input, &signature))
}

/// Verifies an application token for `audience` (`None`: any audience this gateway issues).
pub async fn verify(
    keys: &SigningKeys,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
    now_s: u64,
) -> Result<VerifiedAppToken, TokenError> {
    let parsed = UnverifiedAppToken::parse(token)?;
    let key = keys
        .key(parsed.key_id())
        .ok_or_else(|| TokenError::UnknownKey {
            kid: parsed.key_id().to_owned(),
        })?
        .public
        .clone();
    // `aud` is checked against the app; without one, against the token's own first audience
    // (the signature and issuer still decide).
    let audience = match audience {
        Some(a) => a.to_owned(),
        None => peek_audience(token).unwrap_or_default(),
    };
    parsed
        .verify(&WebCryptoVerifier, &key, issuer, &audience, now_s)
        .await
}

fn peek_audience(token: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: AppClaims = serde_json::from_slice(&payload).ok()?;
    claims.aud.into_iter().next()
}

/// A cookie's value from the `Cookie` header.
pub fn cookie(headers: &Headers, name: &str) -> Option<String> {
    let header = headers.get("Cookie").ok().flatten()?;
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.trim().to_owned())
    })
}

/// `Set-Cookie` for the application token (HttpOnly, Secure, SameSite=Lax, host-only).
pub fn set_cookie(token: &str, max_age_s: u64) -> String {
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; Secure; SameSite=Lax")
}

/// `Set-Cookie` that removes the application token.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// A live session: the application token verified, its row neither revoked nor expired.
#[derive(Debug, Clone)]
pub struct Session {
    /// The identity stored at sign-in (groups included).
    pub identity: StoredIdentity,
    /// When the user signed in: the age each app's session duration is held to.
    pub signed_in: UnixMillis,
    /// The token's `identity_nonce`: the session's key.
    pub identity_nonce: String,
    /// The token's `sub` (the user's object id; empty when the identity had none).
    pub user: String,
}

/// The session behind a `CF_Authorization` cookie: the token must verify (this gateway's key,
/// issuer, `audience` when given, times) and its session must be neither revoked nor expired.
/// `Ok(None)` is no session (logged as `session_refused`); errors are failures to look.
///
/// # Errors
/// [`GatewayError::Unavailable`] when D1 fails; [`GatewayError::Internal`] for a stored
/// identity that does not read back.
pub async fn lookup(
    env: &Env,
    gateway: &Gateway,
    token: &str,
    audience: Option<&str>,
    now: UnixMillis,
) -> Result<Option<Session>, GatewayError> {
    let Some(keys) = gateway.signing.as_ref() else {
        return Ok(None);
    };
    let verified = match verify(
        keys,
        token,
        gateway.engine.team_domain(),
        audience,
        now.unix_secs(),
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            crate::log::event("session_refused", &[("reason", &e.to_string())]);
            return Ok(None);
        }
    };
    let claims = verified.claims();
    // Assertions minted for bearer and service-token requests name no stored session.
    if claims.identity_nonce.is_empty() {
        crate::log::event("session_refused", &[("reason", "no identity_nonce")]);
        return Ok(None);
    }
    let row = session_store::live(&env.d1("DB")?, &claims.identity_nonce, now).await?;
    let Some(row) = row else {
        crate::log::event(
            "session_refused",
            &[("reason", "revoked or expired session")],
        );
        return Ok(None);
    };
    let identity = serde_json::from_str(&row.identity)
        .map_err(|e| GatewayError::Internal(format!("stored identity: {e}")))?;
    Ok(Some(Session {
        identity,
        signed_in: row.created,
        identity_nonce: claims.identity_nonce.clone(),
        user: claims.sub.clone(),
    }))
}

impl Session {
    /// Whether this session is older than `duration` (the deciding policy's, else the app's,
    /// else 24 h: what the verdict says): the app wants the user to sign in again. With one
    /// cookie for every app on a host, this is how each app keeps its own session length.
    pub fn outlived(&self, duration: Option<&SessionDuration>, now: UnixMillis) -> bool {
        let limit = duration
            .map_or(DEFAULT_SESSION_S, SessionDuration::seconds)
            .max(1);
        now.since(self.signed_in) > Duration::from_secs(limit)
    }
}

/// Access's default session duration.
pub const DEFAULT_SESSION_S: u64 = 24 * 3600;

/// What a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The session of this cookie.
    ThisSession,
    /// Every session of the cookie's user.
    Everywhere,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::ThisSession => "this_session",
            Revocation::Everywhere => "everywhere",
        }
    }
}

/// Revokes `session` (or every session of its user) from `now`.
///
/// # Errors
/// [`GatewayError::Unavailable`] when D1 fails.
pub async fn revoke(
    env: &Env,
    session: &Session,
    scope: Revocation,
    now: UnixMillis,
) -> Result<(), GatewayError> {
    let everyone = match scope {
        Revocation::Everywhere if !session.user.is_empty() => Some(session.user.as_str()),
        _ => None,
    };
    session_store::revoke(&env.d1("DB")?, &session.identity_nonce, everyone, now).await?;
    Ok(())
}

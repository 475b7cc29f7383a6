//! `Cf-Access-Jwt-Assertion` for allowed requests that carry no session cookie: an Entra
//! bearer token or a service token. The token is shaped like the one Access forwards (the
//! cookie sessions' application token): a user token (`email`, `sub`, `identity_nonce`,
//! `country`) for a bearer identity, `common_name` = the client id and an empty `sub` for a
//! service token; `aud` is the app's tag alone, `iss` the team domain, RS256 with the
//! gateway's key, so an origin verifies every request against `/cdn-cgi/access/certs` the
//! same way.
//!
//! Signing is RSA in WebCrypto, so an isolate reuses a token it minted for the same claims
//! while less than half of the token's lifetime has passed: a client calling often costs one
//! signature per few minutes, and every forwarded token still has half its life ahead.

use std::cell::RefCell;
use std::collections::HashMap;

use edge_access_token::AppClaims;
use policy_core::{App, Request as PolicyRequest, SessionDuration};
use worker::Headers;

use crate::config::Gateway;
use crate::error::GatewayError;
use crate::session::{self, DEFAULT_SESSION_S};
use crate::time::UnixMillis;

/// The longest a minted assertion lives: the verdict's session duration, at most this.
const MAX_LIFETIME_S: u64 = 600;

/// Minted assertions kept per isolate; beyond it, expired ones go, then all.
const CACHE_ENTRIES: usize = 1024;

struct Cached {
    token: String,
    /// Reused until then (Unix s): half the lifetime.
    reuse_until_s: u64,
}

thread_local! {
    static MINTED: RefCell<HashMap<String, Cached>> = RefCell::new(HashMap::new());
}

/// The assertion for an allowed request without a session cookie: `None` when the request
/// carries neither an identity nor a service token (a bypass), or the gateway has no signing
/// key (`SESSION_SIGNING_KEY` unset: nothing to sign with, and no sign-in either).
///
/// # Errors
/// [`GatewayError::Internal`] when signing fails.
pub async fn for_request(
    gateway: &Gateway,
    app: &App,
    request: &PolicyRequest,
    duration: Option<&SessionDuration>,
    headers: &Headers,
    now: UnixMillis,
) -> Result<Option<String>, GatewayError> {
    let Some(keys) = gateway.signing.as_ref() else {
        return Ok(None);
    };
    // The client id of the service token the request proved (checked before the decision).
    let common_name = request
        .service_token
        .as_ref()
        .and_then(|_| headers.get("CF-Access-Client-Id").ok().flatten())
        .map(|id| id.trim().to_owned());
    let identity = request.identity.as_ref();
    if identity.is_none() && common_name.is_none() {
        return Ok(None);
    }
    let now_s = now.unix_secs();
    let mut lifetime_s = duration
        .map_or(DEFAULT_SESSION_S, SessionDuration::seconds)
        .clamp(1, MAX_LIFETIME_S);
    // Never longer than the bearer token it stands for.
    let token_exp = identity
        .and_then(|i| i.claims.iter().find(|(name, _)| &**name == "exp"))
        .and_then(|(_, values)| values.first())
        .and_then(|exp| exp.parse::<u64>().ok());
    if let Some(exp) = token_exp {
        lifetime_s = lifetime_s.min(exp.saturating_sub(now_s)).max(1);
    }
    let email = identity
        .and_then(|i| i.email.as_ref())
        .map(|e| e.as_str().to_owned());
    let sub = identity
        .and_then(|i| i.user_id.as_deref())
        .unwrap_or("")
        .to_owned();
    let country = identity.and(request.country.as_ref().map(|c| c.as_str().to_owned()));
    let key = [
        keys.current.public.kid.as_str(),
        app.aud(),
        &sub,
        email.as_deref().unwrap_or(""),
        common_name.as_deref().unwrap_or(""),
        country.as_deref().unwrap_or(""),
    ]
    .join("\n");
    let reused = MINTED.with(|m| {
        m.borrow()
            .get(&key)
            .filter(|c| now_s < c.reuse_until_s)
            .map(|c| c.token.clone())
    });
    if let Some(token) = reused {
        return Ok(Some(token));
    }
    let now = i64::try_from(now_s).unwrap_or(i64::MAX);
    let claims = AppClaims {
        aud: vec![app.aud().to_owned()],
        email,
        sub,
        iss: gateway.engine.team_domain().to_owned(),
        token_type: "app".into(),
        // A user token names an identity, as Access's do; this one is stored nowhere, so it
        // is never a session (see `session::lookup`).
        identity_nonce: match identity {
            Some(_) => crate::crypto::random_token(18)?,
            None => String::new(),
        },
        country,
        common_name,
        iat: now,
        nbf: now,
        exp: now.saturating_add(i64::try_from(lifetime_s).unwrap_or(0)),
    };
    let token = session::mint(keys, &claims).await?;
    MINTED.with(|m| {
        let mut minted = m.borrow_mut();
        if minted.len() >= CACHE_ENTRIES {
            minted.retain(|_, c| now_s < c.reuse_until_s);
            if minted.len() >= CACHE_ENTRIES {
                minted.clear();
            }
        }
        minted.insert(
            key,
            Cached {
                token: token.clone(),
                reuse_until_s: now_s + lifetime_s / 2,
            },
        );
    });
    Ok(Some(token))
}

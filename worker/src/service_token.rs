//! Service tokens: `CF-Access-Client-Id` + `CF-Access-Client-Secret`, checked against the
//! configured SHA-256 of the secret in constant time.

use policy_core::{Engine, ServiceToken};
use sha2::{Digest, Sha256};
use worker::Headers;

/// What the service-token headers amount to.
pub enum Presented {
    /// No service-token headers.
    None,
    /// A configured token with the right secret.
    Valid(ServiceToken),
    /// Headers present but wrong (unknown id, wrong secret, one header missing).
    Invalid(String),
}

pub fn check(engine: &Engine, headers: &Headers) -> Presented {
    let id = headers.get("CF-Access-Client-Id").ok().flatten();
    let secret = headers.get("CF-Access-Client-Secret").ok().flatten();
    let (id, secret) = match (id, secret) {
        (None, None) => return Presented::None,
        (Some(id), Some(secret)) => (id, secret),
        _ => return Presented::Invalid("only one of the service-token headers".into()),
    };
    let Some(token) = engine.service_token_by_client_id(id.trim()) else {
        return Presented::Invalid("unknown service token client id".into());
    };
    let digest: [u8; 32] = Sha256::digest(secret.trim().as_bytes()).into();
    if constant_time_eq(&digest, &token.secret_sha256) {
        Presented::Valid(ServiceToken {
            token_id: token.id.clone(),
        })
    } else {
        Presented::Invalid(format!("wrong secret for service token `{}`", token.id))
    }
}

/// Compares without an early exit, so timing says nothing about where the bytes differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let mut diff = 0u8;
    for (x, y) in a.iter().zip(b) {
        diff |= x ^ y;
    }
    std::hint::black_box(diff) == 0
}

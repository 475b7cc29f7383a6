//! RS256 verification in pure Rust with the `rsa` crate (what jwt-compact's RS256 uses), for the
//! CLI and native tests. Inside the Worker, WebCrypto is 25–40× faster.

use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use sha2::Sha256;

use crate::entra::SignatureVerifier;
use crate::error::TokenError;
use crate::jwks::RsaJwk;

/// Verifies RS256 signatures with the `rsa` crate; refuses keys under 2048 bits.
#[derive(Debug, Default, Clone, Copy)]
pub struct RsaVerifier;

impl SignatureVerifier for RsaVerifier {
    async fn verify_rs256(
        &self,
        key: &RsaJwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, TokenError> {
        let n = BigUint::from_bytes_be(&key.modulus()?);
        let e = BigUint::from_bytes_be(&key.exponent()?);
        if n.bits() < 2048 {
            return Err(TokenError::BadKey(format!("{}-bit modulus", n.bits())));
        }
        let public = RsaPublicKey::new(n, e).map_err(|e| TokenError::BadKey(e.to_string()))?;
        let Ok(signature) = Signature::try_from(signature) else {
            return Ok(false);
        };
        Ok(VerifyingKey::<Sha256>::new(public)
            .verify(message, &signature)
            .is_ok())
    }
}

/// A new 2048-bit RSA signing key for the gateway, as the private JWK that
/// `SESSION_SIGNING_KEY` holds (`kid` is its RFC 7638 thumbprint).
///
/// # Errors
/// [`TokenError::BadKey`] when key generation fails.
#[cfg(feature = "keygen")]
pub fn generate_signing_jwk() -> Result<serde_json::Value, TokenError> {
    let key = rsa::RsaPrivateKey::new(&mut rand_core::OsRng, 2048)
        .map_err(|e| TokenError::BadKey(e.to_string()))?;
    private_jwk(&key)
}

/// The private JWK of `key` (n, e, d, p, q, dp, dq, qi, and the thumbprint as `kid`).
///
/// # Errors
/// [`TokenError::BadKey`] for a key that is not a two-prime RSA key.
pub fn private_jwk(key: &rsa::RsaPrivateKey) -> Result<serde_json::Value, TokenError> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use rsa::traits::{PrivateKeyParts, PublicKeyParts};
    let b64 = |n: &BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
    let mut key = key.clone();
    key.precompute()
        .map_err(|e| TokenError::BadKey(e.to_string()))?;
    let [p, q] = key.primes() else {
        return Err(TokenError::BadKey("not a two-prime key".into()));
    };
    let (Some(dp), Some(dq), Some(qi)) = (key.dp(), key.dq(), key.crt_coefficient()) else {
        return Err(TokenError::BadKey("no CRT values".into()));
    };
    let (n, e) = (b64(key.n()), b64(key.e()));
    Ok(serde_json::json!({
        "kty": "RSA", "kid": crate::app::rsa_thumbprint_hex(&n, &e), "n": n, "e": e,
        "d": b64(key.d()), "p": b64(p), "q": b64(q), "dp": b64(dp), "dq": b64(dq), "qi": b64(&qi),
    }))
}

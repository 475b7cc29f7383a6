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

//! The gateway's own application token (the `CF_Authorization` cookie and the
//! `Cf-Access-Jwt-Assertion` header), shaped like Cloudflare Access's: RS256, `aud` an array of
//! app audience tags, `iss` the team domain, `type: "app"`, `identity_nonce` naming the
//! server-side identity, `sub`, `email`, `country`, `iat`/`nbf`/`exp`; for service tokens,
//! `common_name` (the client id) and an empty `sub` instead of the user's claims.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::entra::{check_signature, SignatureVerifier};
use crate::error::{clip, TokenError};
use crate::jwks::RsaJwk;

/// The claims of an application token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AppClaims {
    /// App audience tags.
    pub aud: Vec<String>,
    /// The user's email.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The user's id (Entra `oid`).
    pub sub: String,
    /// The team domain.
    pub iss: String,
    /// `app`.
    #[serde(rename = "type")]
    pub token_type: String,
    /// Key of the identity stored server-side; empty (and left out) in tokens that stand for
    /// no stored identity: those of service tokens.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub identity_nonce: String,
    /// Country at sign-in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The service token's client id, in tokens for service-token requests (as Access).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub common_name: Option<String>,
    /// Issued at.
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expires.
    pub exp: i64,
}

impl AppClaims {
    /// `header.payload` for signing with key `kid`.
    ///
    /// # Errors
    /// Never in practice (serialising plain data).
    pub fn signing_input(&self, kid: &str) -> Result<String, TokenError> {
        let header = json!({ "alg": "RS256", "kid": kid, "typ": "JWT" });
        let payload = serde_json::to_vec(self).map_err(|e| TokenError::Malformed(e.to_string()))?;
        Ok(format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(payload)
        ))
    }

    /// The compact token: `signing_input` plus the signature.
    pub fn assemble(signing_input: &str, signature: &[u8]) -> String {
        format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature))
    }
}

/// An application token parsed but not trusted.
#[derive(Debug)]
pub struct UnverifiedAppToken<'a> {
    raw: &'a str,
    kid: String,
    signature: Vec<u8>,
    claims: AppClaims,
}

impl<'a> UnverifiedAppToken<'a> {
    /// Parses a compact JWS whose header says RS256 with a `kid` and has no `crit` (RFC 7515
    /// §4.1.11; the gateway never sets it).
    ///
    /// # Errors
    /// [`TokenError::Malformed`], [`TokenError::Algorithm`], [`TokenError::CriticalHeader`],
    /// [`TokenError::MissingKeyId`].
    pub fn parse(raw: &'a str) -> Result<UnverifiedAppToken<'a>, TokenError> {
        if raw.len() > 16 * 1024 {
            return Err(TokenError::Malformed("longer than 16 KiB".into()));
        }
        let mut parts = raw.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed("not three parts".into()));
        };
        let decode = |part: &str| {
            URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| TokenError::Malformed("not base64url".into()))
        };
        let header: serde_json::Value = serde_json::from_slice(&decode(h)?)
            .map_err(|e| TokenError::Malformed(clip(&e.to_string())))?;
        let alg = header.get("alg").and_then(|a| a.as_str()).unwrap_or("");
        if alg != "RS256" {
            return Err(TokenError::Algorithm {
                found: alg.to_owned(),
            });
        }
        if header.get("crit").is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let kid = header
            .get("kid")
            .and_then(|k| k.as_str())
            .ok_or(TokenError::MissingKeyId)?;
        let claims: AppClaims = serde_json::from_slice(&decode(p)?)
            .map_err(|e| TokenError::Malformed(clip(&e.to_string())))?;
        Ok(UnverifiedAppToken {
            raw,
            kid: kid.to_owned(),
            signature: decode(s)?,
            claims,
        })
    }

    /// The header's key id (untrusted).
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// Verifies signature, issuer, audience, type and times. The only way to a
    /// [`VerifiedAppToken`].
    ///
    /// # Errors
    /// The first check that fails.
    pub async fn verify<V: SignatureVerifier>(
        self,
        verifier: &V,
        key: &RsaJwk,
        issuer: &str,
        audience: &str,
        now: u64,
    ) -> Result<VerifiedAppToken, TokenError> {
        check_signature(verifier, key, &self.kid, self.raw, &self.signature).await?;
        let c = &self.claims;
        if c.iss != issuer {
            return Err(TokenError::Issuer);
        }
        if c.token_type != "app" {
            return Err(TokenError::Malformed("not an application token".into()));
        }
        if !c.aud.iter().any(|a| a == audience) {
            return Err(TokenError::Audience);
        }
        let now = i64::try_from(now).unwrap_or(i64::MAX);
        if now >= c.exp {
            return Err(TokenError::Expired);
        }
        if c.nbf > now.saturating_add(60) || c.iat > now.saturating_add(60) {
            return Err(TokenError::NotYetValid);
        }
        Ok(VerifiedAppToken {
            claims: self.claims,
        })
    }
}

/// An application token this gateway issued, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedAppToken {
    claims: AppClaims,
}

impl VerifiedAppToken {
    /// The claims.
    pub fn claims(&self) -> &AppClaims {
        &self.claims
    }
}

/// RFC 7638 thumbprint of an RSA public key, hex: the `kid` of the gateway's keys.
pub fn rsa_thumbprint_hex(n: &str, e: &str) -> String {
    use sha2::{Digest, Sha256};
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    Sha256::digest(canonical.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

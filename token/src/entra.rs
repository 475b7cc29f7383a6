//! Entra ID access and ID tokens: untrusted → verified, with exactly one way across.

use std::future::Future;

use jwt_compact::UntrustedToken;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use crate::error::{clip, TokenError};
use crate::jwks::RsaJwk;

/// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
pub const DEFAULT_LEEWAY_SECS: u64 = 60;

/// Checks an RS256 signature. The Worker implements it with WebCrypto; the `native-rsa`
/// feature provides a pure-Rust one.
pub trait SignatureVerifier {
    /// Whether `signature` is a valid RSASSA-PKCS1-v1_5 SHA-256 signature of `message` by `key`.
    fn verify_rs256(
        &self,
        key: &RsaJwk,
        message: &[u8],
        signature: &[u8],
    ) -> impl Future<Output = Result<bool, TokenError>>;
}

/// Token format version (`ver`), which decides the issuer and the key set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TokenVersion {
    /// `ver: "1.0"`, issued by `https://sts.windows.net/{tid}/`.
    V1,
    /// `ver: "2.0"`, issued by `https://login.microsoftonline.com/{tid}/v2.0`.
    V2,
}

impl TokenVersion {
    /// `1.0` or `2.0`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenVersion::V1 => "1.0",
            TokenVersion::V2 => "2.0",
        }
    }
}

/// What a token must satisfy, from configuration and the directory's discovery documents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expectations {
    /// The directory (tenant) id, lowercase.
    pub tenant_id: String,
    /// Accepted `aud` values.
    pub audiences: Vec<String>,
    /// The v1 issuer (from the v1 discovery document).
    pub issuer_v1: String,
    /// The v2 issuer (from the v2 discovery document).
    pub issuer_v2: String,
    /// Tolerated clock skew.
    pub leeway_secs: u64,
    /// For ID tokens: the `nonce` of the sign-in request.
    pub nonce: Option<String>,
}

/// A token parsed but not yet trusted: only its algorithm and shape are known good.
#[derive(Debug)]
pub struct UnverifiedEntraToken<'a> {
    raw: &'a str,
    signature: Vec<u8>,
    kid: String,
    version: TokenVersion,
    claims: Map<String, Value>,
}

/// A token whose signature, issuer, tenant, audience and times have been checked.
#[derive(Debug, Clone, PartialEq)]
pub struct VerifiedEntraToken {
    version: TokenVersion,
    kid: String,
    claims: Map<String, Value>,
}

impl<'a> UnverifiedEntraToken<'a> {
    /// Parses a compact JWS. The algorithm must be RS256 — the only one edge-access accepts
    /// for Entra tokens — whatever the header claims; `alg: none`, HS256 and every other value
    /// are refused here, before any key is looked at. A header with `crit` is refused too
    /// (RFC 7515 §4.1.11: it names extensions the recipient must understand, and edge-access
    /// understands none; Entra never sends it).
    ///
    /// # Errors
    /// [`TokenError::Malformed`], [`TokenError::Algorithm`], [`TokenError::CriticalHeader`],
    /// [`TokenError::MissingKeyId`], [`TokenError::Version`].
    pub fn parse(raw: &'a str) -> Result<UnverifiedEntraToken<'a>, TokenError> {
        if raw.len() > 64 * 1024 {
            return Err(TokenError::Malformed("longer than 64 KiB".into()));
        }
        let untrusted = UntrustedToken::<ExtensionHeader>::try_from(raw)
            .map_err(|e| TokenError::Malformed(clip(&e.to_string())))?;
        if untrusted.algorithm() != "RS256" {
            return Err(TokenError::Algorithm {
                found: untrusted.algorithm().to_owned(),
            });
        }
        if untrusted.header().other_fields.crit.is_some() {
            return Err(TokenError::CriticalHeader);
        }
        let kid = untrusted
            .header()
            .key_id
            .clone()
            .ok_or(TokenError::MissingKeyId)?;
        let parsed = untrusted
            .deserialize_claims_unchecked::<Map<String, Value>>()
            .map_err(|e| TokenError::Malformed(clip(&e.to_string())))?;
        let mut claims = parsed.custom;
        // jwt-compact lifts the registered time claims out of the map; put them back as numbers.
        for (name, time) in [
            ("exp", parsed.expiration),
            ("nbf", parsed.not_before),
            ("iat", parsed.issued_at),
        ] {
            if let Some(t) = time {
                claims.insert(name.to_owned(), Value::from(t.timestamp()));
            }
        }
        let version = match claims.get("ver").and_then(Value::as_str) {
            Some("1.0") => TokenVersion::V1,
            Some("2.0") => TokenVersion::V2,
            _ => return Err(TokenError::Version),
        };
        Ok(UnverifiedEntraToken {
            raw,
            signature: untrusted.signature_bytes().to_vec(),
            kid,
            version,
            claims,
        })
    }

    /// The header's key id (untrusted: only for choosing a key).
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// The `tid` claim (untrusted: only for choosing the identity provider and key set; it is
    /// checked against configuration when the token is verified).
    pub fn tenant_hint(&self) -> Option<&str> {
        self.claims.get("tid").and_then(Value::as_str)
    }

    /// The token version (untrusted until verified: only for choosing a key set).
    pub fn version(&self) -> TokenVersion {
        self.version
    }

    /// The `iat` claim, seconds since the epoch (untrusted: only for deciding whether a key
    /// set fetched since could have listed the token's key).
    pub fn issued_at_hint(&self) -> Option<i64> {
        self.claims.get("iat").and_then(Value::as_i64)
    }

    /// Verifies the signature with `key` and then the claims against `expected` at time `now`
    /// (seconds since the epoch). The only way to obtain a [`VerifiedEntraToken`].
    ///
    /// # Errors
    /// The first check that fails.
    pub async fn verify<V: SignatureVerifier>(
        self,
        verifier: &V,
        key: &RsaJwk,
        expected: &Expectations,
        now: u64,
    ) -> Result<VerifiedEntraToken, TokenError> {
        check_signature(verifier, key, &self.kid, self.raw, &self.signature).await?;
        check_claims(&self.claims, self.version, expected, now)?;
        Ok(VerifiedEntraToken {
            version: self.version,
            kid: self.kid,
            claims: self.claims,
        })
    }
}

/// The JOSE header parameters jwt-compact does not model that edge-access looks at.
#[derive(Debug, Default, Deserialize)]
struct ExtensionHeader {
    /// `crit`, whatever its value (`null` included): its presence alone refuses the token.
    #[serde(default, deserialize_with = "present")]
    crit: Option<Value>,
}

/// `Some` for a parameter that is present, even as `null`.
fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// The signature of compact JWS `raw` by `key`, which must be the key its header names.
pub(crate) async fn check_signature<V: SignatureVerifier>(
    verifier: &V,
    key: &RsaJwk,
    kid: &str,
    raw: &str,
    signature: &[u8],
) -> Result<(), TokenError> {
    if key.kid != kid {
        return Err(TokenError::UnknownKey {
            kid: kid.to_owned(),
        });
    }
    let message = raw.rsplit_once('.').map(|(m, _)| m).unwrap_or("");
    if verifier
        .verify_rs256(key, message.as_bytes(), signature)
        .await?
    {
        Ok(())
    } else {
        Err(TokenError::BadSignature)
    }
}

fn check_claims(
    claims: &Map<String, Value>,
    version: TokenVersion,
    expected: &Expectations,
    now: u64,
) -> Result<(), TokenError> {
    let issuer = match version {
        TokenVersion::V1 => &expected.issuer_v1,
        TokenVersion::V2 => &expected.issuer_v2,
    };
    if claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str()) {
        return Err(TokenError::Issuer);
    }
    let tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .ok_or(TokenError::Tenant)?;
    if !tid.eq_ignore_ascii_case(&expected.tenant_id) {
        return Err(TokenError::Tenant);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => expected.audiences.iter().any(|a| a == aud),
        Some(Value::Array(auds)) => auds
            .iter()
            .filter_map(Value::as_str)
            .any(|aud| expected.audiences.iter().any(|a| a == aud)),
        _ => false,
    };
    if !audience_ok {
        return Err(TokenError::Audience);
    }
    let now = i64::try_from(now).unwrap_or(i64::MAX);
    let leeway = i64::try_from(expected.leeway_secs).unwrap_or(0);
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    match time("exp") {
        Some(exp) if now <= exp.saturating_add(leeway) => {}
        _ => return Err(TokenError::Expired),
    }
    for name in ["nbf", "iat"] {
        if time(name).is_some_and(|t| t > now.saturating_add(leeway)) {
            return Err(TokenError::NotYetValid);
        }
    }
    if let Some(nonce) = &expected.nonce {
        if claims.get("nonce").and_then(Value::as_str) != Some(nonce.as_str()) {
            return Err(TokenError::Nonce);
        }
    }
    Ok(())
}

impl VerifiedEntraToken {
    /// The token version.
    pub fn version(&self) -> TokenVersion {
        self.version
    }

    /// The key that signed it.
    pub fn key_id(&self) -> &str {
        &self.kid
    }

    /// All claims (the registered time claims as integers).
    pub fn claims(&self) -> &Map<String, Value> {
        &self.claims
    }

    /// A string claim.
    pub fn claim_str(&self, name: &str) -> Option<&str> {
        self.claims.get(name).and_then(Value::as_str)
    }

    /// `exp`, seconds since the epoch.
    pub fn expires_at(&self) -> Option<i64> {
        self.claims.get("exp").and_then(Value::as_i64)
    }
}

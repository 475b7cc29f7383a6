//! JSON Web Key Sets as Entra publishes them.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Deserialize;

use crate::error::TokenError;

/// An RSA signing key from a JWKS.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, serde::Serialize)]
pub struct RsaJwk {
    /// Key id.
    pub kid: String,
    /// Modulus, base64url.
    pub n: String,
    /// Exponent, base64url.
    pub e: String,
}

impl RsaJwk {
    /// The modulus bytes (big-endian).
    ///
    /// # Errors
    /// [`TokenError::BadKey`] when `n` is not base64url.
    pub fn modulus(&self) -> Result<Vec<u8>, TokenError> {
        URL_SAFE_NO_PAD
            .decode(self.n.trim_end_matches('='))
            .map_err(|_| TokenError::BadKey("modulus is not base64url".into()))
    }

    /// The exponent bytes (big-endian).
    ///
    /// # Errors
    /// [`TokenError::BadKey`] when `e` is not base64url.
    pub fn exponent(&self) -> Result<Vec<u8>, TokenError> {
        URL_SAFE_NO_PAD
            .decode(self.e.trim_end_matches('='))
            .map_err(|_| TokenError::BadKey("exponent is not base64url".into()))
    }
}

/// The RSA signing keys of a JWKS document.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Jwks {
    /// Keys usable for RS256 signatures.
    pub keys: Vec<RsaJwk>,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<serde_json::Value>,
}

impl Jwks {
    /// Parses a JWKS, keeping RSA keys meant for signatures (`use` absent or `sig`) that have a
    /// `kid`; other keys are skipped.
    ///
    /// # Errors
    /// [`TokenError::Malformed`] when the document is not a JWKS.
    pub fn parse(bytes: &[u8]) -> Result<Jwks, TokenError> {
        let raw: RawJwks = serde_json::from_slice(bytes)
            .map_err(|e| TokenError::Malformed(format!("JWKS: {e}")))?;
        let keys = raw
            .keys
            .into_iter()
            .filter(|k| k.get("kty").and_then(|v| v.as_str()) == Some("RSA"))
            .filter(|k| {
                k.get("use")
                    .and_then(|v| v.as_str())
                    .is_none_or(|u| u == "sig")
            })
            .filter_map(|k| serde_json::from_value::<RsaJwk>(k).ok())
            .collect();
        Ok(Jwks { keys })
    }

    /// The key with `kid`.
    pub fn key(&self, kid: &str) -> Option<&RsaJwk> {
        self.keys.iter().find(|k| k.kid == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_rsa_signing_keys() {
        let jwks = Jwks::parse(
            br#"{"keys":[
            {"kty":"RSA","use":"sig","kid":"a","n":"AQAB","e":"AQAB","x5t":"a"},
            {"kty":"RSA","kid":"b","n":"AQAB","e":"AQAB"},
            {"kty":"RSA","use":"enc","kid":"c","n":"AQAB","e":"AQAB"},
            {"kty":"EC","use":"sig","kid":"d","crv":"P-256","x":"..","y":".."},
            {"kty":"RSA","use":"sig","n":"AQAB","e":"AQAB"}
        ]}"#,
        )
        .unwrap();
        let kids: Vec<_> = jwks.keys.iter().map(|k| k.kid.as_str()).collect();
        assert_eq!(kids, ["a", "b"]);
        assert!(jwks.key("c").is_none());
    }

    #[test]
    fn rejects_non_jwks() {
        for bad in [&b""[..], b"{}", b"[]", b"{\"keys\": 1}", b"not json"] {
            assert!(Jwks::parse(bad).is_err());
        }
    }
}

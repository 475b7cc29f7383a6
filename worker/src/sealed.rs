//! Values the gateway hands to a browser and takes back unchanged: JSON, base64url, and a MAC
//! under a key derived from the signing keys for one purpose (the current key seals; the
//! current and the previous one open, so a value sealed just before a rotation still opens).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::crypto::hmac_sha256;
use crate::error::GatewayError;
use crate::signing::SigningKeys;

/// The longest sealed value opened: anything longer is refused unread.
const MAX_SEALED: usize = 4096;

/// The keys of one purpose.
pub struct Sealer {
    keys: Vec<[u8; 32]>,
    purpose: &'static str,
}

impl Sealer {
    /// The keys `signing` derives for `purpose`.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] if a key cannot be derived.
    pub fn new(signing: &SigningKeys, purpose: &'static str) -> Result<Sealer, GatewayError> {
        let mut keys = vec![signing.current.derived_secret(purpose)?];
        if let Some(previous) = &signing.previous {
            keys.push(previous.derived_secret(purpose)?);
        }
        Ok(Sealer { keys, purpose })
    }

    /// `value`, sealed under the current key.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] when serialising or the MAC fails.
    pub fn seal<T: Serialize>(&self, value: &T) -> Result<String, GatewayError> {
        let key = self
            .keys
            .first()
            .ok_or_else(|| GatewayError::Internal("no sealing key".into()))?;
        seal_with(key, self.purpose, value)
    }

    /// The value `text` holds, if one of the keys sealed it for this purpose, unchanged.
    pub fn open<T: DeserializeOwned>(&self, text: &str) -> Option<T> {
        self.keys
            .iter()
            .find_map(|key| open_with(key, self.purpose, text))
    }
}

fn seal_with<T: Serialize>(
    key: &[u8; 32],
    purpose: &str,
    value: &T,
) -> Result<String, GatewayError> {
    let json = serde_json::to_vec(value).map_err(|e| GatewayError::Internal(e.to_string()))?;
    let payload = URL_SAFE_NO_PAD.encode(json);
    let mac = hmac_sha256(key, &[purpose.as_bytes(), b"\0", payload.as_bytes()])?;
    Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac)))
}

fn open_with<T: DeserializeOwned>(key: &[u8; 32], purpose: &str, text: &str) -> Option<T> {
    if text.len() > MAX_SEALED {
        return None;
    }
    let (payload, mac) = text.split_once('.')?;
    let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
    let expected = hmac_sha256(key, &[purpose.as_bytes(), b"\0", payload.as_bytes()]).ok()?;
    if !crate::pending::same(&expected, &mac) {
        return None;
    }
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
    struct Value {
        host: String,
        n: u64,
    }

    fn value() -> Value {
        Value {
            host: "wiki.example.com".into(),
            n: 1_800_000_000,
        }
    }

    #[test]
    fn a_value_opens_only_under_its_key_and_purpose_and_unchanged() {
        let key = [7u8; 32];
        let text = seal_with(&key, "handoff", &value()).unwrap();
        assert_eq!(open_with(&key, "handoff", &text), Some(value()));
        assert_eq!(open_with::<Value>(&[8u8; 32], "handoff", &text), None);
        assert_eq!(open_with::<Value>(&key, "connection test", &text), None);
        // Another host written into the payload: the MAC no longer matches.
        let (payload, mac) = text.split_once('.').unwrap();
        let json = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
        let forged = URL_SAFE_NO_PAD.encode(json.replace("wiki.example.com", "evil.example.com"));
        assert_eq!(
            open_with::<Value>(&key, "handoff", &format!("{forged}.{mac}")),
            None
        );
        let long = "a".repeat(MAX_SEALED + 1);
        for broken in ["", ".", "abc", "abc.", ".abc", long.as_str(), &text[1..]] {
            assert_eq!(
                open_with::<Value>(&key, "handoff", broken),
                None,
                "{broken}"
            );
        }
    }
}

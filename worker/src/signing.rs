//! The gateway's own signing keys (`SESSION_SIGNING_KEY`, during a rotation also
//! `SESSION_SIGNING_KEY_PREVIOUS`): they sign application tokens with WebCrypto, publish
//! `/cdn-cgi/access/certs`, and derive the secrets of other uses.

use std::cell::RefCell;

use edge_access_token::{rsa_thumbprint_hex, RsaJwk};
use js_sys::{Array, Object, Reflect};
use serde_json::{json, Map, Value};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::CryptoKey;
use worker::Env;

use crate::crypto::{self, hmac_sha256};
use crate::error::GatewayError;

/// One signing key: the private JWK (for WebCrypto) and its public half.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub public: RsaJwk,
    private: Map<String, Value>,
    /// DER certificates (`x5c`), when the key came with one.
    pub certificates: Vec<String>,
}

/// The current key (signs) and, during a rotation, the previous one (still verifies).
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

impl SigningKeys {
    /// Reads `SESSION_SIGNING_KEY` (and `SESSION_SIGNING_KEY_PREVIOUS`): private RSA JWKs, as
    /// `edge-access keygen` writes them.
    pub fn from_env(env: &Env) -> Result<Option<SigningKeys>, String> {
        let read = |name: &str| -> Result<Option<SigningKey>, String> {
            let Some(text) = secret(env, name) else {
                return Ok(None);
            };
            SigningKey::parse(&text)
                .map(Some)
                .map_err(|e| format!("{name}: {e}"))
        };
        match read("SESSION_SIGNING_KEY")? {
            Some(current) => Ok(Some(SigningKeys {
                current,
                previous: read("SESSION_SIGNING_KEY_PREVIOUS")?,
            })),
            None => Ok(None),
        }
    }

    /// The key with `kid`.
    pub fn key(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.public.kid == kid)
    }

    /// `/cdn-cgi/access/certs` in Access's format.
    pub fn certs_document(&self) -> Value {
        let keys: Vec<&SigningKey> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .collect();
        let jwks: Vec<Value> = keys
            .iter()
            .map(|k| {
                json!({ "kid": k.public.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                        "e": k.public.e, "n": k.public.n })
            })
            .collect();
        let certs: Vec<Value> = keys
            .iter()
            .filter_map(|k| {
                k.certificates
                    .first()
                    .map(|der| json!({ "kid": k.public.kid, "cert": pem(der) }))
            })
            .collect();
        json!({
            "keys": jwks,
            "public_cert": certs.first().cloned().unwrap_or(Value::Null),
            "public_certs": certs,
        })
    }
}

fn pem(der_base64: &str) -> String {
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    let chars: Vec<char> = der_base64.chars().collect();
    for line in chars.chunks(64) {
        out.extend(line);
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A secret (or, in local development, a plain var) by name.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.trim().is_empty())
}

impl SigningKey {
    fn parse(text: &str) -> Result<SigningKey, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut private) = value else {
            return Err("not a JWK object".into());
        };
        let field = |name: &str| private.get(name).and_then(Value::as_str).map(str::to_owned);
        if field("kty").as_deref() != Some("RSA") {
            return Err("`kty` must be `RSA`".into());
        }
        for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            if field(name).is_none() {
                return Err(format!("missing `{name}` (a private RSA JWK is needed)"));
            }
        }
        let (n, e) = (
            field("n").unwrap_or_default(),
            field("e").unwrap_or_default(),
        );
        let public = RsaJwk {
            kid: rsa_thumbprint_hex(&n, &e),
            n,
            e,
        };
        if public.modulus().map_err(|e| e.to_string())?.len() < 256 {
            return Err("the key is shorter than 2048 bits".into());
        }
        let certificates = match private.remove("x5c") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        private.remove("kid");
        Ok(SigningKey {
            public,
            private,
            certificates,
        })
    }

    /// A 256-bit secret for `purpose`, derived from this key's private exponent
    /// (HMAC-SHA-256 keyed with `d`, over a label naming the purpose): keys for other uses
    /// that rotate with the signing key and need no secret of their own.
    pub fn derived_secret(&self, purpose: &str) -> Result<[u8; 32], GatewayError> {
        let d = self.private.get("d").and_then(Value::as_str).unwrap_or("");
        hmac_sha256(
            d.as_bytes(),
            &[b"edge-access derived secret\0", purpose.as_bytes()],
        )
    }

    /// Signs `message` (RS256) with WebCrypto. The imported key is kept in the isolate.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, GatewayError> {
        let error = |e: JsValue| GatewayError::Internal(format!("signing: {e:?}"));
        let subtle = crypto::subtle().map_err(error)?;
        let key = match IMPORTED.with(|k| {
            k.borrow()
                .as_ref()
                .filter(|(kid, _)| *kid == self.public.kid)
                .map(|(_, key)| key.clone())
        }) {
            Some(key) => key,
            None => {
                let key = self.import(&subtle).await?;
                IMPORTED.with(|k| *k.borrow_mut() = Some((self.public.kid.clone(), key.clone())));
                key
            }
        };
        let promise = subtle
            .sign_with_str_and_u8_array("RSASSA-PKCS1-v1_5", &key, message)
            .map_err(error)?;
        let signature = JsFuture::from(promise).await.map_err(error)?;
        Ok(js_sys::Uint8Array::new(&signature).to_vec())
    }

    async fn import(&self, subtle: &web_sys::SubtleCrypto) -> Result<CryptoKey, GatewayError> {
        let error = |e: JsValue| GatewayError::Internal(format!("signing key import: {e:?}"));
        let jwk = Object::new();
        for (name, value) in &self.private {
            if let Some(text) = value.as_str() {
                Reflect::set(&jwk, &name.into(), &text.into()).map_err(error)?;
            }
        }
        Reflect::set(&jwk, &"alg".into(), &"RS256".into()).map_err(error)?;
        let algorithm = Object::new();
        Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).map_err(error)?;
        Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).map_err(error)?;
        let usages = Array::of1(&"sign".into());
        let promise = subtle
            .import_key_with_object("jwk", &jwk, &algorithm, false, &usages)
            .map_err(error)?;
        Ok(JsFuture::from(promise)
            .await
            .map_err(error)?
            .unchecked_into())
    }
}

thread_local! {
    /// The current signing key as WebCrypto imported it, by `kid`, so that a signature does not
    /// parse the private JWK again.
    static IMPORTED: RefCell<Option<(String, CryptoKey)>> = const { RefCell::new(None) };
}

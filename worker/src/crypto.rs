//! Cryptography from the platform: random bytes and ids from its CSPRNG, RS256 verification
//! with WebCrypto (`crypto.subtle`, the imported `CryptoKey`s cached per key in the isolate),
//! and HMAC-SHA-256.

use std::cell::RefCell;
use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{RsaJwk, SignatureVerifier, TokenError};
use hmac::{Hmac, Mac};
use js_sys::{Array, Object, Reflect};
use sha2::Sha256;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Crypto, CryptoKey, SubtleCrypto, WorkerGlobalScope};

use crate::error::GatewayError;

/// Imported keys kept per isolate; beyond it, the cache starts again (keys rotate rarely).
const KEYS_CACHED: usize = 64;

/// What each verification reuses: `crypto.subtle`, the algorithm, and the imported keys by
/// `kid` (with the modulus they were imported from, compared on every use).
struct Verifying {
    subtle: SubtleCrypto,
    algorithm: Object,
    keys: HashMap<String, (String, CryptoKey)>,
}

thread_local! {
    static VERIFYING: RefCell<Option<Verifying>> = const { RefCell::new(None) };
}

/// The platform's `crypto`.
pub fn platform() -> Result<Crypto, JsValue> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    global.crypto()
}

/// Random bytes from the platform's CSPRNG.
pub fn random_bytes(bytes: usize) -> Result<Vec<u8>, GatewayError> {
    let crypto = platform().map_err(|e| GatewayError::Internal(format!("{e:?}")))?;
    let mut buffer = vec![0u8; bytes];
    crypto
        .get_random_values_with_u8_array(&mut buffer)
        .map_err(|e| GatewayError::Internal(format!("{e:?}")))?;
    Ok(buffer)
}

/// Random bytes, base64url: identity nonces.
pub fn random_token(bytes: usize) -> Result<String, GatewayError> {
    Ok(URL_SAFE_NO_PAD.encode(random_bytes(bytes)?))
}

/// A random UUID (v4).
pub fn random_uuid() -> Result<String, JsValue> {
    platform().map(|c| c.random_uuid())
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], GatewayError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| GatewayError::Internal(format!("HMAC key: {e}")))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// RS256 with WebCrypto (`crypto.subtle`), the imported keys cached in the isolate.
#[derive(Debug, Default)]
pub struct WebCryptoVerifier;

impl SignatureVerifier for WebCryptoVerifier {
    async fn verify_rs256(
        &self,
        key: &RsaJwk,
        message: &[u8],
        signature: &[u8],
    ) -> Result<bool, TokenError> {
        let (subtle, algorithm) = verifying().map_err(js_error)?;
        let crypto_key = crypto_key(&subtle, key).await?;
        let promise = subtle
            .verify_with_object_and_u8_array_and_u8_array(
                &algorithm,
                &crypto_key,
                signature,
                message,
            )
            .map_err(js_error)?;
        let verdict = JsFuture::from(promise).await.map_err(js_error)?;
        Ok(verdict.as_bool() == Some(true))
    }
}

/// The isolate's `crypto.subtle` and verification algorithm, made on first use.
fn verifying() -> Result<(SubtleCrypto, Object), JsValue> {
    VERIFYING.with(|v| {
        let mut held = v.borrow_mut();
        let held = match held.as_mut() {
            Some(held) => held,
            None => held.insert(Verifying {
                subtle: subtle()?,
                algorithm: algorithm()?,
                keys: HashMap::new(),
            }),
        };
        Ok((held.subtle.clone(), held.algorithm.clone()))
    })
}

/// `{ name: "RSASSA-PKCS1-v1_5" }`, the verification's algorithm.
fn algorithm() -> Result<Object, JsValue> {
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into())?;
    Ok(algorithm)
}

/// The platform's `crypto.subtle`.
pub fn subtle() -> Result<SubtleCrypto, JsValue> {
    Ok(platform()?.subtle())
}

fn js_error(e: JsValue) -> TokenError {
    TokenError::Verifier(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

pub(crate) async fn crypto_key(
    subtle: &SubtleCrypto,
    key: &RsaJwk,
) -> Result<CryptoKey, TokenError> {
    let cached = VERIFYING.with(|v| {
        v.borrow().as_ref().and_then(|held| {
            held.keys
                .get(&key.kid)
                .filter(|(n, _)| *n == key.n)
                .map(|(_, k)| k.clone())
        })
    });
    if let Some(k) = cached {
        return Ok(k);
    }
    if key.modulus()?.len() < 256 {
        return Err(TokenError::BadKey("modulus shorter than 2048 bits".into()));
    }
    let jwk = Object::new();
    for (name, value) in [
        ("kty", "RSA"),
        ("n", key.n.as_str()),
        ("e", key.e.as_str()),
        ("alg", "RS256"),
    ] {
        Reflect::set(&jwk, &name.into(), &value.into()).map_err(js_error)?;
    }
    Reflect::set(&jwk, &"ext".into(), &JsValue::TRUE).map_err(js_error)?;
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).map_err(js_error)?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).map_err(js_error)?;
    let usages = Array::of1(&"verify".into());
    let promise = subtle
        .import_key_with_object("jwk", &jwk, &algorithm, false, &usages)
        .map_err(js_error)?;
    let imported: CryptoKey = JsFuture::from(promise)
        .await
        .map_err(js_error)?
        .unchecked_into();
    VERIFYING.with(|v| {
        if let Some(held) = v.borrow_mut().as_mut() {
            if held.keys.len() >= KEYS_CACHED {
                held.keys.clear();
            }
            held.keys
                .insert(key.kid.clone(), (key.n.clone(), imported.clone()));
        }
    });
    Ok(imported)
}

//! Entra signing keys: discovery + JWKS per tenant and token version, cached in the isolate
//! and in KV (24 h), refreshed on an unknown `kid` at most every 5 minutes, with the
//! last-known-good keys kept through a failing or slow fetch; and RS256 verification with
//! WebCrypto, the imported `CryptoKey`s cached per key.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use edge_access_token::{Jwks, RsaJwk, SignatureVerifier, TokenError, TokenVersion};
use futures_util::future::{select, Either};
use js_sys::{Array, Object, Reflect};
use serde::{Deserialize, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};
use worker::{AbortController, Delay, Env, Fetch, Url};

use crate::error::GatewayError;
use crate::log;

/// Keys older than this are refreshed (and kept if the refresh fails).
const TTL_MS: u64 = 24 * 3600 * 1000;
/// At most one refresh per tenant and version this often once keys are known.
const REFRESH_INTERVAL_MS: u64 = 5 * 60 * 1000;
/// With no keys at all (cold start during an outage), retry this often.
const EMPTY_RETRY_MS: u64 = 10 * 1000;
/// A discovery or JWKS fetch slower than this is abandoned.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Larger discovery or JWKS documents are refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;

/// A tenant's keys for one token version, with the issuer its discovery document names.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeySet {
    issuer: String,
    keys: Vec<RsaJwk>,
    fetched_ms: u64,
}

#[derive(Default, Clone, Copy)]
struct Attempts {
    /// A fetch is running now (requests without keys wait for it instead of failing).
    in_flight: bool,
    /// Any fetch (the first load included).
    any_ms: Option<u64>,
    /// Refreshes of a known set (unknown `kid`, or older than the TTL): at most one per
    /// [`REFRESH_INTERVAL_MS`], so a flood of made-up `kid`s cannot turn into a flood of fetches.
    refresh_ms: Option<u64>,
}

#[derive(Default)]
struct Entry {
    set: Option<KeySet>,
    attempts: Attempts,
}

thread_local! {
    static SETS: RefCell<HashMap<(String, TokenVersion), Entry>> = RefCell::new(HashMap::new());
    static CRYPTO_KEYS: RefCell<HashMap<String, CryptoKey>> = RefCell::new(HashMap::new());
}

/// The key `kid` of `tenant` for `version`, and the issuer expected of such tokens.
///
/// # Errors
/// [`GatewayError::Unauthorized`] for a `kid` the directory does not publish;
/// [`GatewayError::KeysUnavailable`] when no keys can be had at all.
pub async fn signing_key(
    env: &Env,
    authority: &str,
    tenant: &str,
    version: TokenVersion,
    kid: &str,
    now_ms: u64,
) -> Result<(RsaJwk, String), GatewayError> {
    let slot = (tenant.to_owned(), version);
    // The request path: a fresh cached key, found without copying the key set.
    let hit = SETS.with(|sets| {
        let sets = sets.borrow();
        let set = sets.get(&slot).and_then(|e| e.set.as_ref());
        set.filter(|s| now_ms.saturating_sub(s.fetched_ms) < TTL_MS)
            .and_then(|s| find(s, kid))
    });
    if let Some(found) = hit {
        return Ok(found);
    }
    let (mut cached, attempts) = SETS.with(|sets| {
        let sets = sets.borrow();
        let entry = sets.get(&slot);
        (
            entry.and_then(|e| e.set.clone()),
            entry.map(|e| e.attempts).unwrap_or_default(),
        )
    });
    if cached.is_none() {
        if let Some(set) = kv_load(env, tenant, version).await {
            store(&slot, Some(set.clone()), None);
            cached = Some(set);
        }
    }
    let fresh = cached
        .as_ref()
        .is_some_and(|s| now_ms.saturating_sub(s.fetched_ms) < TTL_MS);
    if let Some(found) = cached.as_ref().filter(|_| fresh).and_then(|s| find(s, kid)) {
        return Ok(found);
    }
    if cached.is_none() && attempts.in_flight {
        // Another request of this isolate is fetching the first keys: wait for them.
        cached = wait_for_keys(&slot).await;
        if let Some(found) = cached.as_ref().and_then(|s| find(s, kid)) {
            return Ok(found);
        }
    }
    let elapsed = |t: Option<u64>, wait: u64| t.is_none_or(|t| now_ms.saturating_sub(t) >= wait);
    let may_fetch = match cached {
        None => elapsed(attempts.any_ms, EMPTY_RETRY_MS),
        Some(_) => elapsed(attempts.refresh_ms, REFRESH_INTERVAL_MS),
    };
    if may_fetch {
        let next = Attempts {
            in_flight: true,
            any_ms: Some(now_ms),
            refresh_ms: if cached.is_some() {
                Some(now_ms)
            } else {
                attempts.refresh_ms
            },
        };
        store(&slot, None, Some(next));
        let fetched = fetch_key_set(authority, tenant, version, now_ms).await;
        store(
            &slot,
            None,
            Some(Attempts {
                in_flight: false,
                ..next
            }),
        );
        match fetched {
            Ok(set) => {
                log::event(
                    "jwks_refreshed",
                    &[
                        ("tenant", tenant),
                        ("version", version.as_str()),
                        ("keys", &set.keys.len().to_string()),
                    ],
                );
                kv_store(env, tenant, version, &set).await;
                store(&slot, Some(set.clone()), None);
                cached = Some(set);
            }
            Err(why) => log::event(
                "jwks_refresh_failed",
                &[
                    ("tenant", tenant),
                    ("version", version.as_str()),
                    ("error", &why),
                ],
            ),
        }
    }
    match cached {
        // Last-known-good keys, even when stale.
        Some(set) => find(&set, kid).ok_or_else(|| {
            GatewayError::Unauthorized(TokenError::UnknownKey { kid: kid.into() }.to_string())
        }),
        None => Err(GatewayError::KeysUnavailable(format!(
            "no signing keys for tenant {tenant} (v{})",
            version.as_str()
        ))),
    }
}

/// Polls the isolate's cache while another request fetches the first keys (at most the fetch
/// timeout).
async fn wait_for_keys(slot: &(String, TokenVersion)) -> Option<KeySet> {
    let step = Duration::from_millis(25);
    let rounds = FETCH_TIMEOUT.as_millis() / step.as_millis() + 1;
    for _ in 0..rounds {
        Delay::from(step).await;
        let (set, in_flight) = SETS.with(|sets| {
            let sets = sets.borrow();
            let entry = sets.get(slot);
            (
                entry.and_then(|e| e.set.clone()),
                entry.is_some_and(|e| e.attempts.in_flight),
            )
        });
        if set.is_some() || !in_flight {
            return set;
        }
    }
    None
}

fn find(set: &KeySet, kid: &str) -> Option<(RsaJwk, String)> {
    set.keys
        .iter()
        .find(|k| k.kid == kid)
        .map(|k| (k.clone(), set.issuer.clone()))
}

fn store(slot: &(String, TokenVersion), set: Option<KeySet>, attempts: Option<Attempts>) {
    SETS.with(|sets| {
        let mut sets = sets.borrow_mut();
        let entry = sets.entry(slot.clone()).or_default();
        if set.is_some() {
            entry.set = set;
        }
        if let Some(a) = attempts {
            entry.attempts = a;
        }
    });
}

fn kv_key(tenant: &str, version: TokenVersion) -> String {
    format!("jwks:v{}:{tenant}", version.as_str())
}

async fn kv_load(env: &Env, tenant: &str, version: TokenVersion) -> Option<KeySet> {
    let kv = env.kv("KEYS").ok()?;
    kv.get(&kv_key(tenant, version))
        .json::<KeySet>()
        .await
        .ok()
        .flatten()
}

async fn kv_store(env: &Env, tenant: &str, version: TokenVersion, set: &KeySet) {
    let Ok(kv) = env.kv("KEYS") else { return };
    let Ok(text) = serde_json::to_string(set) else {
        return;
    };
    if let Ok(put) = kv.put(&kv_key(tenant, version), text) {
        let _ = put.expiration_ttl(TTL_MS / 1000).execute().await;
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

async fn fetch_key_set(
    authority: &str,
    tenant: &str,
    version: TokenVersion,
    now_ms: u64,
) -> Result<KeySet, String> {
    let discovery_url = match version {
        TokenVersion::V1 => format!("{authority}/{tenant}/.well-known/openid-configuration"),
        TokenVersion::V2 => format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration"),
    };
    let discovery: Discovery = serde_json::from_slice(&fetch_document(&discovery_url).await?)
        .map_err(|e| format!("discovery document {discovery_url}: {e}"))?;
    let jwks = Jwks::parse(&fetch_document(&discovery.jwks_uri).await?)
        .map_err(|e| format!("{}: {e}", discovery.jwks_uri))?;
    if jwks.keys.is_empty() {
        return Err(format!("{}: no RSA signing keys", discovery.jwks_uri));
    }
    Ok(KeySet {
        issuer: discovery.issuer,
        keys: jwks.keys,
        fetched_ms: now_ms,
    })
}

async fn fetch_document(url: &str) -> Result<Vec<u8>, String> {
    let parsed = Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Url(parsed);
    let request = Box::pin(fetch.send_with_signal(&signal));
    let timeout = Box::pin(Delay::from(FETCH_TIMEOUT));
    let mut response = match select(request, timeout).await {
        Either::Left((response, _)) => response.map_err(|e| format!("{url}: {e}"))?,
        Either::Right(_) => {
            controller.abort();
            return Err(format!(
                "{url}: no answer within {} s",
                FETCH_TIMEOUT.as_secs()
            ));
        }
    };
    if response.status_code() != 200 {
        return Err(format!("{url}: HTTP {}", response.status_code()));
    }
    let bytes = response.bytes().await.map_err(|e| format!("{url}: {e}"))?;
    if bytes.len() > MAX_DOCUMENT_BYTES {
        return Err(format!("{url}: larger than {MAX_DOCUMENT_BYTES} bytes"));
    }
    Ok(bytes)
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
        let subtle = subtle().map_err(js_error)?;
        let crypto_key = crypto_key(&subtle, key).await?;
        let promise = subtle
            .verify_with_str_and_u8_array_and_u8_array(
                "RSASSA-PKCS1-v1_5",
                &crypto_key,
                signature,
                message,
            )
            .map_err(js_error)?;
        let verdict = JsFuture::from(promise).await.map_err(js_error)?;
        Ok(verdict.as_bool() == Some(true))
    }
}

fn subtle() -> Result<SubtleCrypto, JsValue> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    Ok(global.crypto()?.subtle())
}

fn js_error(e: JsValue) -> TokenError {
    TokenError::Verifier(e.as_string().unwrap_or_else(|| format!("{e:?}")))
}

async fn crypto_key(subtle: &SubtleCrypto, key: &RsaJwk) -> Result<CryptoKey, TokenError> {
    let cache_key = format!("{}:{}", key.kid, key.n);
    if let Some(k) = CRYPTO_KEYS.with(|keys| keys.borrow().get(&cache_key).cloned()) {
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
    CRYPTO_KEYS.with(|keys| keys.borrow_mut().insert(cache_key, imported.clone()));
    Ok(imported)
}

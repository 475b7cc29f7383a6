//! Entra signing keys: discovery + JWKS per tenant and token version, cached in the isolate
//! and in KV (24 h). A `kid` the cached set does not list is fetched for under the rules of
//! [`crate::key_refresh`]: refused (401) only when a key set fetched since the token could
//! have been signed lacks it, otherwise fetched again — per key set two fetches in a row, then
//! one per 10 s (and none within 5 s of a failure), so a made-up `kid` never gets a real new
//! key refused and a flood of them never becomes a flood of fetches — or answered 503 with
//! `Retry-After` until a fetch may begin. A fetch that fails outright (a dropped connection, a 5xx) is tried once more at
//! once; the last-known-good keys are kept through a failing or slow fetch. Refreshes of a
//! known set read the JWKS alone while the discovery document is younger than a day. The
//! signatures are checked by [`crate::crypto::WebCryptoVerifier`].

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use edge_access_token::{Jwks, RsaJwk, TokenError, TokenVersion, UnverifiedEntraToken};
use serde::{Deserialize, Serialize};
use worker::{Delay, Env};

use crate::error::GatewayError;
use crate::http::{self, Failure};
use crate::key_refresh::{
    retry_after_secs, Presented, Refreshes, Unknown, FAILURE_BACKOFF_MS, TTL_MS,
};
use crate::log;
use crate::time::UnixMillis;

/// A discovery or JWKS fetch slower than this is abandoned (and not tried again at once).
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Larger discovery or JWKS documents are refused.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
/// How long a request waits for another request's fetch of the same key set: the longest
/// such fetch (the discovery document and the JWKS, each timing out once) and a little more.
const WAIT_FOR_FETCH: Duration = Duration::from_millis(7_000);

/// A tenant's keys for one token version, with the issuer its discovery document names.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct KeySet {
    issuer: String,
    keys: Vec<RsaJwk>,
    /// When the fetch of these keys began.
    fetched_ms: u64,
    /// Where the discovery document said the keys are (absent from sets stored in KV by
    /// earlier versions: they are discovered again).
    #[serde(default)]
    jwks_uri: Option<String>,
    /// When the discovery document was read.
    #[serde(default)]
    discovered_ms: u64,
}

#[derive(Default)]
struct Entry {
    set: Option<KeySet>,
    refreshes: Refreshes,
    /// The last fetch failed: the next reads the discovery document again too.
    rediscover: bool,
}

type Slot = (String, TokenVersion);

thread_local! {
    static SETS: RefCell<HashMap<Slot, Entry>> = RefCell::new(HashMap::new());
}

/// How many Entra key sets this isolate holds (for the health endpoint).
pub fn cached_sets() -> usize {
    SETS.with(|sets| sets.borrow().values().filter(|e| e.set.is_some()).count())
}

/// Where `idp`'s signing keys come from: its tenant, and with `app_signing_key` its tenant
/// with `?appid={client id}` (the key set of an app registration with its own signing key,
/// which the tenant's key set does not list). What [`signing_key`] takes as `source`.
pub fn key_source(idp: &policy_core::IdentityProvider) -> String {
    if idp.app_signing_key {
        let appid: String =
            worker::url::form_urlencoded::byte_serialize(idp.client_id.as_bytes()).collect();
        format!("{}?appid={appid}", idp.directory_id)
    } else {
        idp.directory_id.to_string()
    }
}

/// The key that signed `token` (by its `kid`) for `source` (a tenant, see [`key_source`]),
/// and the issuer expected of tokens of its version; `Ok(Err(`[`TokenError::UnknownKey`]`))`
/// for a `kid` the directory does not publish (a key set fetched since the token could have
/// been signed lacks it): the token is refused.
///
/// # Errors
/// [`GatewayError::KeysUnavailable`] (503, with when to retry) when the key cannot be known
/// yet: no keys at all, or a fetch that failed or may not begin yet.
pub async fn signing_key(
    env: &Env,
    authority: &str,
    source: &str,
    token: &UnverifiedEntraToken<'_>,
    now: UnixMillis,
) -> Result<Result<(RsaJwk, String), TokenError>, GatewayError> {
    // The refresh schedule ([`Refreshes`]) counts in milliseconds.
    let now_ms = now.millis();
    let (version, kid) = (token.version(), token.key_id());
    let tenant = source;
    let slot = (source.to_owned(), version);
    if let Some(found) = held_fresh(source, version, kid, now) {
        return Ok(Ok(found));
    }
    let presented = Presented {
        issued_at_secs: token.issued_at_hint(),
        seen_ms: now_ms,
    };
    let mut set = with_entry(&slot, |e| e.set.clone());
    if set.is_none() {
        if let Some(stored) = kv_load(env, tenant, version).await {
            // Another request may have fetched while KV answered: keep the newer set.
            set = Some(with_entry(&slot, |e| {
                e.set
                    .clone()
                    .filter(|mine| mine.fetched_ms >= stored.fetched_ms)
                    .unwrap_or_else(|| {
                        e.set = Some(stored.clone());
                        stored
                    })
            }));
        }
    }
    // Each request fetches at most once and waits for another request's fetch at most once.
    let (mut fetched, mut waited) = (false, false);
    loop {
        let refreshes = with_entry(&slot, |e| e.refreshes);
        if let Some(found) = set.as_ref().and_then(|s| find(s, kid)) {
            // A set past its TTL is refreshed first when a fetch may begin, and kept (last
            // known good) when that fails.
            let stale = set
                .as_ref()
                .is_some_and(|s| refreshes.refresh_stale(s.fetched_ms, now_ms));
            if fetched || !stale {
                return Ok(Ok(found));
            }
            fetched = true;
            set = refresh(env, authority, &slot, set.as_ref(), now_ms)
                .await
                .or(set);
            continue;
        }
        match refreshes.unknown_kid(set.as_ref().map(|s| s.fetched_ms), presented, now_ms) {
            Unknown::Absent => return Ok(Err(TokenError::UnknownKey { kid: kid.into() })),
            Unknown::Fetch if !fetched => {
                fetched = true;
                set = refresh(env, authority, &slot, set.as_ref(), now_ms)
                    .await
                    .or(set);
            }
            Unknown::Wait if !waited => {
                waited = true;
                set = wait_for_fetch(&slot, now_ms).await.or(set);
            }
            Unknown::NotYet { retry_after_ms } => {
                return Err(unavailable(&slot, kid, set.is_some(), retry_after_ms))
            }
            // This request has fetched or waited already: it says when to come back.
            Unknown::Fetch | Unknown::Wait => {
                return Err(unavailable(&slot, kid, set.is_some(), FAILURE_BACKOFF_MS))
            }
        }
    }
}

/// The request path of [`signing_key`]: the key `kid` of `source`'s set for `version`, and its
/// issuer, when this isolate holds that set fresh (younger than its TTL) — found without
/// fetching, waiting or copying the set; `None` otherwise.
pub fn held_fresh(
    source: &str,
    version: TokenVersion,
    kid: &str,
    now: UnixMillis,
) -> Option<(RsaJwk, String)> {
    let now_ms = now.millis();
    SETS.with(|sets| {
        let sets = sets.borrow();
        let set = sets
            .get(&(source.to_owned(), version))
            .and_then(|e| e.set.as_ref());
        set.filter(|s| now_ms.saturating_sub(s.fetched_ms) < TTL_MS)
            .and_then(|s| find(s, kid))
    })
}

/// 503 with `Retry-After`: the key `kid` cannot be known for `retry_after_ms` yet.
fn unavailable(slot: &Slot, kid: &str, have_keys: bool, retry_after_ms: u64) -> GatewayError {
    let (tenant, version) = slot;
    let failed = with_entry(slot, |e| e.refreshes.last_failed());
    let retry_after_secs = retry_after_secs(retry_after_ms);
    let what = if have_keys {
        TokenError::UnknownKey { kid: kid.into() }.to_string()
    } else {
        "no signing keys yet".to_owned()
    };
    GatewayError::KeysUnavailable {
        reason: format!(
            "{what} for tenant {tenant} (v{}): the last key set fetch {}; the next may begin \
             in {retry_after_secs} s",
            version.as_str(),
            if failed { "failed" } else { "is recent" }
        ),
        retry_after_secs,
    }
}

/// Fetches the key set of `slot` — the JWKS alone while the discovery document of `current`
/// is younger than [`TTL_MS`] — and records the attempt; keeps a fetched set in the isolate
/// and in KV. `None` when the fetch failed (logged).
async fn refresh(
    env: &Env,
    authority: &str,
    slot: &Slot,
    current: Option<&KeySet>,
    now_ms: u64,
) -> Option<KeySet> {
    let (tenant, version) = (slot.0.as_str(), slot.1);
    let rediscover = with_entry(slot, |e| {
        e.refreshes.begin(now_ms);
        e.rediscover
    });
    let discovered = current.filter(|s| {
        !rediscover && s.jwks_uri.is_some() && now_ms.saturating_sub(s.discovered_ms) < TTL_MS
    });
    let fetched = match discovered {
        Some(known) => fetch_jwks(known.jwks_uri.as_deref().unwrap_or_default())
            .await
            .map(|keys| KeySet {
                issuer: known.issuer.clone(),
                keys,
                fetched_ms: now_ms,
                jwks_uri: known.jwks_uri.clone(),
                discovered_ms: known.discovered_ms,
            }),
        None => fetch_key_set(authority, tenant, version, now_ms).await,
    };
    with_entry(slot, |e| {
        e.refreshes.finish(now_ms, fetched.is_ok());
        e.rediscover = fetched.is_err();
        if let Ok(set) = &fetched {
            e.set = Some(set.clone());
        }
    });
    match fetched {
        Ok(set) => {
            log::event(
                "jwks_refreshed",
                &[
                    ("tenant", tenant),
                    ("version", version.as_str()),
                    ("keys", &set.keys.len().to_string()),
                    (
                        "discovery",
                        if discovered.is_some() {
                            "cached"
                        } else {
                            "fetched"
                        },
                    ),
                ],
            );
            kv_store(env, tenant, version, &set).await;
            Some(set)
        }
        Err(why) => {
            log::event(
                "jwks_refresh_failed",
                &[
                    ("tenant", tenant),
                    ("version", version.as_str()),
                    ("error", &why),
                ],
            );
            None
        }
    }
}

/// Waits (at most [`WAIT_FOR_FETCH`]) while another request of this isolate fetches the key
/// set of `slot`; then its key set, if any.
async fn wait_for_fetch(slot: &Slot, now_ms: u64) -> Option<KeySet> {
    let step = Duration::from_millis(25);
    let rounds = WAIT_FOR_FETCH.as_millis() / step.as_millis();
    for round in 1..=rounds {
        Delay::from(step).await;
        let waited_ms = u64::try_from(round * step.as_millis()).unwrap_or(u64::MAX);
        let running = with_entry(slot, |e| {
            e.refreshes.running(now_ms.saturating_add(waited_ms))
        });
        if !running {
            break;
        }
    }
    with_entry(slot, |e| e.set.clone())
}

/// Runs `f` on the isolate's entry for `slot` (made empty when missing).
fn with_entry<R>(slot: &Slot, f: impl FnOnce(&mut Entry) -> R) -> R {
    SETS.with(|sets| f(sets.borrow_mut().entry(slot.clone()).or_default()))
}

fn find(set: &KeySet, kid: &str) -> Option<(RsaJwk, String)> {
    set.keys
        .iter()
        .find(|k| k.kid == kid)
        .map(|k| (k.clone(), set.issuer.clone()))
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
        let _ = put
            .expiration_ttl(Duration::from_millis(TTL_MS).as_secs())
            .execute()
            .await;
    }
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

/// The discovery document of `source` (a tenant, with `?appid=…` for an app's own keys),
/// then the JWKS it names.
async fn fetch_key_set(
    authority: &str,
    source: &str,
    version: TokenVersion,
    now_ms: u64,
) -> Result<KeySet, String> {
    let (tenant, query) = match source.split_once('?') {
        Some((tenant, query)) => (tenant, format!("?{query}")),
        None => (source, String::new()),
    };
    let discovery_url = match version {
        TokenVersion::V1 => {
            format!("{authority}/{tenant}/.well-known/openid-configuration{query}")
        }
        TokenVersion::V2 => {
            format!("{authority}/{tenant}/v2.0/.well-known/openid-configuration{query}")
        }
    };
    let discovery: Discovery = serde_json::from_slice(&fetch_document(&discovery_url).await?)
        .map_err(|e| format!("discovery document {discovery_url}: {e}"))?;
    let keys = fetch_jwks(&discovery.jwks_uri).await?;
    Ok(KeySet {
        issuer: discovery.issuer,
        keys,
        fetched_ms: now_ms,
        jwks_uri: Some(discovery.jwks_uri),
        discovered_ms: now_ms,
    })
}

/// The RSA signing keys at `jwks_uri` (at least one).
async fn fetch_jwks(jwks_uri: &str) -> Result<Vec<RsaJwk>, String> {
    let jwks =
        Jwks::parse(&fetch_document(jwks_uri).await?).map_err(|e| format!("{jwks_uri}: {e}"))?;
    if jwks.keys.is_empty() {
        return Err(format!("{jwks_uri}: no RSA signing keys"));
    }
    Ok(jwks.keys)
}

/// `GET url` (a discovery document or a JWKS), tried once more at once when the first try
/// fails outright or with a 5xx: one dropped connection must not cost every bearer token a
/// back-off. A timeout is not tried again (it has cost [`FETCH_TIMEOUT`] already).
async fn fetch_document(url: &str) -> Result<Vec<u8>, String> {
    let fetch_once = |url| http::get(url, FETCH_TIMEOUT, MAX_DOCUMENT_BYTES);
    match fetch_once(url).await {
        Ok(bytes) => Ok(bytes),
        Err(Failure::Final(why)) => Err(why),
        Err(Failure::Transient(why)) => {
            log::event("jwks_fetch_retried", &[("url", url), ("error", &why)]);
            fetch_once(url).await.map_err(|failure| match failure {
                Failure::Transient(why) | Failure::Final(why) => format!("{why} (tried twice)"),
            })
        }
    }
}

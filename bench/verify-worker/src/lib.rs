//! Benchmark Worker: one fixed RS256 token (`BENCH_TOKEN`, signed by the key `BENCH_JWK`)
//! verified `n` times per request inside workerd, three ways:
//!
//! - `GET /webcrypto?n=N`: WebCrypto (`crypto.subtle`) called from Rust through web-sys, as
//!   the gateway's `WebCryptoVerifier` does: `importKey` once, then `n` × `verify`, each
//!   awaited.
//! - `GET /rust?n=N`: `edge-access-token`'s pure-Rust `RsaVerifier` (the `rsa` crate compiled
//!   to Wasm), `n` calls; each call decodes the JWK as the trait interface requires.
//! - `GET /rust-prepared?n=N`: the `rsa` crate directly, the public key built once, then `n`
//!   × `verify`: the pure-Rust floor.
//!
//! Every other path is passed through to `ORIGIN_URL` (same path and query, method, headers
//! and body), as `bench/js/passthrough.js` does in JS: the floor of a Rust Worker in front of
//! an origin, for the gateway's phase profile. With `X-Bench-Log: 1` it also writes one log
//! line the size of the gateway's decision line.
//!
//! `n = 0` does everything but the verifications, so a client times the verifications as the
//! difference between `n = N` and `n = 0` round trips. The answer is JSON: `n`, how many
//! verifications succeeded (`valid`, which must equal `n`), and the in-worker
//! `performance.now()` and `Date.now()` deltas around the loop in milliseconds (workerd may
//! not advance either during CPU work; the benchmark reports whether they moved).
//! `GET /ready` answers 200 for the harness.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{RsaJwk, RsaVerifier, SignatureVerifier as _};
use js_sys::{Array, Object, Reflect};
use rsa::pkcs1v15::{Signature, VerifyingKey};
use rsa::signature::Verifier as _;
use rsa::{BigUint, RsaPublicKey};
use serde_json::json;
use sha2::Sha256;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, SubtleCrypto, WorkerGlobalScope};
use worker::{event, Context, Env, Request, Response, Result};

// Verification needs no random bytes; see Cargo.toml.
#[cfg(target_arch = "wasm32")]
getrandom::register_custom_getrandom!(no_randomness);

#[cfg(target_arch = "wasm32")]
fn no_randomness(_buffer: &mut [u8]) -> std::result::Result<(), getrandom::Error> {
    Err(getrandom::Error::UNSUPPORTED)
}

/// More verifications than this in one request are refused (a request must stay well under
/// any CPU limit a local workerd might apply).
const MAX_N: u32 = 5_000;

/// The token's signing input, its signature and the key that made it.
struct Fixture {
    message: Vec<u8>,
    signature: Vec<u8>,
    jwk: RsaJwk,
}

#[event(fetch)]
async fn fetch(request: Request, env: Env, _ctx: Context) -> Result<Response> {
    let url = request.url()?;
    let variant = url.path().to_owned();
    if variant == "/ready" {
        return Response::ok("ready");
    }
    if !matches!(variant.as_str(), "/webcrypto" | "/rust" | "/rust-prepared") {
        return pass_through(request, &env).await;
    }
    let n = match url.query_pairs().find(|(name, _)| name == "n") {
        Some((_, value)) => match value.parse::<u32>() {
            Ok(n) if n <= MAX_N => n,
            _ => return Response::error(format!("n must be 0..={MAX_N}"), 400),
        },
        None => 0,
    };
    let fixture = match fixture(&env) {
        Ok(fixture) => fixture,
        Err(why) => return Response::error(why, 500),
    };
    let measured = match variant.as_str() {
        "/webcrypto" => webcrypto(&fixture, n).await,
        "/rust" => rust_verifier(&fixture, n).await,
        "/rust-prepared" => rust_prepared(&fixture, n),
        _ => return Response::error("unknown variant", 404),
    };
    match measured {
        Ok(measured) => Response::from_json(&json!({
            "variant": variant.trim_start_matches('/'),
            "n": n,
            "valid": measured.valid,
            "perf_ms": measured.perf_ms,
            "date_ms": measured.date_ms,
        })),
        Err(why) => Response::error(why, 500),
    }
}

/// `request` sent on to `ORIGIN_URL` at its path and query, the origin's answer returned.
async fn pass_through(request: Request, env: &Env) -> Result<Response> {
    let origin = env.var("ORIGIN_URL")?.to_string();
    let url = request.url()?;
    let mut target = worker::Url::parse(&origin)?;
    target.set_path(url.path());
    target.set_query(url.query());
    if request.headers().get("X-Bench-Log")?.as_deref() == Some("1") {
        worker::console_log!(
            "{}",
            json!({
                "time": "2026-12-03T00:00:00.000Z", "event": "decision",
                "request_id": "00000000-0000-4000-8000-000000000000", "method": "GET",
                "target": url.as_str(), "app": "app", "outcome": "allow",
                "policy": "Engineering at example.com",
                "user": "00000000-0000-4000-8000-000000000001", "service_token": null,
                "status": 200, "reason": null, "ip": null, "country": null, "latency_ms": 1,
                "config_version": "0123456789abcdef"
            })
        );
    }
    let outbound = Request::new_with_init(target.as_str(), &{
        let mut init = worker::RequestInit::new();
        init.with_method(request.method())
            .with_headers(request.headers().clone());
        init
    })?;
    worker::Fetch::Request(outbound).send().await
}

fn fixture(env: &Env) -> std::result::Result<Fixture, String> {
    let token = env
        .var("BENCH_TOKEN")
        .map_err(|e| format!("BENCH_TOKEN: {e}"))?
        .to_string();
    let jwk = env
        .var("BENCH_JWK")
        .map_err(|e| format!("BENCH_JWK: {e}"))?
        .to_string();
    let jwk: RsaJwk = serde_json::from_str(&jwk).map_err(|e| format!("BENCH_JWK: {e}"))?;
    let (message, signature) = token.rsplit_once('.').ok_or("BENCH_TOKEN is not a JWT")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| format!("BENCH_TOKEN signature: {e}"))?;
    Ok(Fixture {
        message: message.as_bytes().to_vec(),
        signature,
        jwk,
    })
}

/// What one loop did and how long the Worker's own clocks say it took.
struct Measured {
    valid: u32,
    perf_ms: f64,
    date_ms: f64,
}

/// `performance.now()` and `Date.now()` at the start of a loop.
struct Clocks {
    perf: Option<f64>,
    date: f64,
}

impl Clocks {
    fn start() -> Self {
        Self {
            perf: performance_now(),
            date: js_sys::Date::now(),
        }
    }

    fn finish(self, valid: u32) -> Measured {
        let perf_ms = match (self.perf, performance_now()) {
            (Some(start), Some(end)) => end - start,
            _ => f64::NAN,
        };
        Measured {
            valid,
            perf_ms,
            date_ms: js_sys::Date::now() - self.date,
        }
    }
}

fn performance_now() -> Option<f64> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    global.performance().map(|performance| performance.now())
}

async fn webcrypto(fixture: &Fixture, n: u32) -> std::result::Result<Measured, String> {
    let global: WorkerGlobalScope = js_sys::global().unchecked_into();
    let subtle: SubtleCrypto = global.crypto().map_err(js_error)?.subtle();
    let key = import_key(&subtle, &fixture.jwk).await?;
    let clocks = Clocks::start();
    let mut valid = 0;
    for _ in 0..n {
        let promise = subtle
            .verify_with_str_and_u8_array_and_u8_array(
                "RSASSA-PKCS1-v1_5",
                &key,
                &fixture.signature,
                &fixture.message,
            )
            .map_err(js_error)?;
        if JsFuture::from(promise).await.map_err(js_error)?.as_bool() == Some(true) {
            valid += 1;
        }
    }
    Ok(clocks.finish(valid))
}

/// The same import as the gateway's (`worker/src/keys.rs`): a JWK object, RS256, verify only.
async fn import_key(subtle: &SubtleCrypto, jwk: &RsaJwk) -> std::result::Result<CryptoKey, String> {
    let object = Object::new();
    for (name, value) in [
        ("kty", "RSA"),
        ("n", jwk.n.as_str()),
        ("e", jwk.e.as_str()),
        ("alg", "RS256"),
    ] {
        Reflect::set(&object, &name.into(), &value.into()).map_err(js_error)?;
    }
    Reflect::set(&object, &"ext".into(), &JsValue::TRUE).map_err(js_error)?;
    let algorithm = Object::new();
    Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).map_err(js_error)?;
    Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).map_err(js_error)?;
    let usages = Array::of1(&"verify".into());
    let promise = subtle
        .import_key_with_object("jwk", &object, &algorithm, false, &usages)
        .map_err(js_error)?;
    Ok(JsFuture::from(promise)
        .await
        .map_err(js_error)?
        .unchecked_into())
}

async fn rust_verifier(fixture: &Fixture, n: u32) -> std::result::Result<Measured, String> {
    let clocks = Clocks::start();
    let mut valid = 0;
    for _ in 0..n {
        let ok = RsaVerifier
            .verify_rs256(&fixture.jwk, &fixture.message, &fixture.signature)
            .await
            .map_err(|e| e.to_string())?;
        if ok {
            valid += 1;
        }
    }
    Ok(clocks.finish(valid))
}

fn rust_prepared(fixture: &Fixture, n: u32) -> std::result::Result<Measured, String> {
    let modulus = fixture.jwk.modulus().map_err(|e| e.to_string())?;
    let exponent = fixture.jwk.exponent().map_err(|e| e.to_string())?;
    let public = RsaPublicKey::new(
        BigUint::from_bytes_be(&modulus),
        BigUint::from_bytes_be(&exponent),
    )
    .map_err(|e| e.to_string())?;
    let key = VerifyingKey::<Sha256>::new(public);
    let signature = Signature::try_from(fixture.signature.as_slice()).map_err(|e| e.to_string())?;
    let clocks = Clocks::start();
    let mut valid = 0;
    for _ in 0..n {
        if key.verify(&fixture.message, &signature).is_ok() {
            valid += 1;
        }
    }
    Ok(clocks.finish(valid))
}

fn js_error(e: JsValue) -> String {
    e.as_string().unwrap_or_else(|| format!("{e:?}"))
}

//! Where a protected request's CPU goes, measured inside workerd: built only with the
//! `phase-profile` feature (the benchmark's build, `cargo xtask bench gateway`), never in the
//! shipped Worker.
//!
//! A request for an app path with `X-Edge-Access-Profile: MS` is not forwarded: each phase of
//! its handling runs again and again, for at least `MS` milliseconds of the isolate's clock,
//! and the answer is JSON naming every phase with its iterations and the time per iteration.
//! The isolate's clocks advance only in whole milliseconds, so a phase is timed over many
//! runs rather than once; the `clock` phase (reading the clock, nothing else) is the floor
//! every other phase includes. Repeating a phase warms what a steady stream of the same
//! client's requests warms as well: the key cache, the minted-assertion cache, V8's code.
//!
//! The phases follow [`crate::gate::protect`]: the route table's own work, the request's
//! context, routing to an app, the credential (a bearer token: its whole check and the
//! WebCrypto verification inside it; a session cookie: its verification, the D1 read, the
//! stored identity's JSON), the engine, the decision, the assertion, the origin request's
//! set-up and the log line; then the whole decision in one piece, and the origin's fetch.

use std::hint::black_box;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{SignatureVerifier as _, UnverifiedEntraToken};
use policy_core::{Request as PolicyRequest, Target};
use serde_json::{json, Value};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen_futures::JsFuture;
use worker::{Env, Fetch, Request, Response};

use crate::config::Gateway;
use crate::config_store;
use crate::context::Context;
use crate::crypto::WebCryptoVerifier;
use crate::directory;
use crate::endpoints::Endpoints;
use crate::gate;
use crate::identity::{self, Source};
use crate::keys;
use crate::log::DecisionLog;
use crate::proxy;
use crate::service_token;
use crate::session;
use crate::session_store::{self, StoredIdentity};

// The same verification as `rs256_webcrypto`, looped in JavaScript inside this Worker: raw
// WebCrypto, for the ratio of the call made from Rust to the call made from JS.
#[wasm_bindgen(inline_js = "
export async function verifyFor(subtle, key, signature, message, budgetMs) {
  const start = Date.now();
  let runs = 0;
  let valid = 0;
  do {
    if (await subtle.verify('RSASSA-PKCS1-v1_5', key, signature, message)) valid++;
    runs++;
  } while (Date.now() - start < budgetMs);
  return [runs, Date.now() - start, valid];
}
")]
extern "C" {
    #[wasm_bindgen(js_name = verifyFor)]
    fn verify_for(
        subtle: &web_sys::SubtleCrypto,
        key: &web_sys::CryptoKey,
        signature: &js_sys::Uint8Array,
        message: &js_sys::Uint8Array,
        budget_ms: f64,
    ) -> js_sys::Promise;
}

/// The request header that asks for a profile: milliseconds per phase.
pub const HEADER: &str = "X-Edge-Access-Profile";

/// The most a phase may take, and the most iterations it runs.
const MAX_MS: f64 = 5_000.0;
const MAX_ITERATIONS: u32 = 1_000_000;

/// What a request asks of the profile build.
pub enum Asked {
    /// Profile each phase for this many milliseconds.
    Profile(f64),
    /// `forward`: straight to the origin, nothing decided and nothing logged — the gateway's
    /// module as a bare pass-through, set against the whole gateway.
    Forward,
    /// `forward-verified`: the bearer token checked (as the gate does), then straight to the
    /// origin, nothing decided and nothing logged.
    ForwardVerified,
    /// `forward-decided`: decided and forwarded as the gate does, without the log line.
    ForwardDecided,
}

/// What `request` asks, if it asks anything of the profile build.
pub fn requested(request: &Request) -> Option<Asked> {
    let value = request.headers().get(HEADER).ok().flatten()?;
    match value.trim() {
        "forward" => return Some(Asked::Forward),
        "forward-verified" => return Some(Asked::ForwardVerified),
        "forward-decided" => return Some(Asked::ForwardDecided),
        _ => {}
    }
    value
        .trim()
        .parse::<f64>()
        .ok()
        .filter(|ms| ms.is_finite() && *ms >= 1.0)
        .map(|ms| Asked::Profile(ms.min(MAX_MS)))
}

/// `request` forwarded to the origin as the gateway forwards an allowed request without an
/// identity, nothing decided and nothing logged; with `verify`, after its bearer token is
/// checked as the gate checks it (401 when it is refused).
pub async fn forward(request: Request, env: &Env, gateway: &Gateway, verify: bool) -> Response {
    let Some(url) = crate::raw_url::RawUrl::of(&request) else {
        return Response::builder().with_status(400).fixed(Vec::new());
    };
    if verify {
        let now = crate::time::UnixMillis::now();
        let verified = match gate::bearer(request.headers()) {
            Some(token) => identity::from_entra_token(env, gateway, &token, Source::Bearer, now)
                .await
                .is_ok(),
            None => false,
        };
        if !verified {
            return Response::builder().with_status(401).fixed(Vec::new());
        }
    }
    match proxy::forward(request, gateway, &url, None, None).await {
        Ok(response) => response,
        Err(_) => Response::builder().with_status(502).fixed(Vec::new()),
    }
}

fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// The phases measured so far.
struct Profile {
    budget_ms: f64,
    phases: Vec<Value>,
}

impl Profile {
    fn record(&mut self, name: &str, iterations: u32, elapsed_ms: f64) {
        self.phases.push(json!({
            "phase": name,
            "iterations": iterations,
            "elapsed_ms": elapsed_ms,
            "us_per_iteration": elapsed_ms * 1000.0 / f64::from(iterations.max(1)),
        }));
    }

    fn failed(&mut self, name: &str, why: &str) {
        self.phases.push(json!({ "phase": name, "error": why }));
    }
}

/// Runs `$work` (which may `.await`) until `$profile`'s budget of the isolate's clock has
/// passed, and records the time per run as `$name`.
macro_rules! phase {
    ($profile:expr, $name:expr, $work:expr) => {{
        let start = now_ms();
        let mut iterations: u32 = 0;
        loop {
            let _ = black_box($work);
            iterations += 1;
            let elapsed = now_ms() - start;
            if elapsed >= $profile.budget_ms || iterations >= MAX_ITERATIONS {
                $profile.record($name, iterations, elapsed);
                break;
            }
        }
    }};
}

/// The profile of `request`, decided by `gateway`, as JSON.
pub async fn run(request: Request, env: &Env, gateway: &Gateway, budget_ms: f64) -> Response {
    let mut profile = Profile {
        budget_ms,
        phases: Vec::new(),
    };
    let outcome = measure(&mut profile, &request, env, gateway).await;
    let body = json!({
        "budget_ms": budget_ms,
        "credential": outcome.credential,
        "phases": profile.phases,
        "error": outcome.error,
    });
    let headers = worker::Headers::new();
    let _ = headers.set("Content-Type", "application/json");
    Response::builder()
        .with_headers(headers)
        .fixed(body.to_string().into_bytes())
}

struct Outcome {
    credential: &'static str,
    error: Option<String>,
}

async fn measure(
    profile: &mut Profile,
    request: &Request,
    env: &Env,
    gateway: &Gateway,
) -> Outcome {
    let mut outcome = Outcome {
        credential: "none",
        error: None,
    };
    phase!(profile, "clock", ());
    phase!(profile, "endpoints", Endpoints::from_env(env).is_ok());
    phase!(profile, "config", config_store::gateway(env).await.is_ok());
    phase!(profile, "context", Context::read(request));
    let context = Context::read(request);
    let Some(url) = &context.url else {
        outcome.error = Some("the request URL is not an http(s) URL".into());
        return outcome;
    };
    let engine = &gateway.engine;
    phase!(
        profile,
        "route",
        Target::parse(&url.target()).map(|t| engine.app_for(&t).map(|a| a.map(|a| a.id().len())))
    );
    let Ok(target) = Target::parse(&url.target()) else {
        outcome.error = Some("the target does not parse".into());
        return outcome;
    };
    let Ok(Some(app)) = engine.app_for(&target) else {
        outcome.error = Some("no app covers the target".into());
        return outcome;
    };
    phase!(
        profile,
        "service_token",
        matches!(
            service_token::check(engine, request.headers()),
            service_token::Presented::None
        )
    );
    let headers = request.headers();
    let now = context.arrived;
    let mut policy_request = PolicyRequest::new(target);
    let mut assertion = None;
    if let Some(bearer) = gate::bearer(headers) {
        outcome.credential = "bearer";
        phase!(profile, "bearer_token_unverified", {
            identity::forget_verified();
            identity::from_entra_token(env, gateway, &bearer, Source::Bearer, now)
                .await
                .is_ok()
        });
        phase!(
            profile,
            "bearer_token",
            identity::from_entra_token(env, gateway, &bearer, Source::Bearer, now)
                .await
                .is_ok()
        );
        rs256_alone(profile, env, gateway, &bearer, now).await;
        match identity::from_entra_token(env, gateway, &bearer, Source::Bearer, now).await {
            Ok(identity) => {
                phase!(
                    profile,
                    "deprovisioned",
                    gate::deprovisioned(env, gateway, &identity, now)
                        .await
                        .is_ok()
                );
                policy_request.identity = Some(identity);
            }
            Err(_) => {
                outcome.error = Some("the bearer token is refused".into());
                return outcome;
            }
        }
    } else if let Some(token) = session::cookie(headers, session::COOKIE) {
        outcome.credential = "cookie";
        phase!(
            profile,
            "session_cookie",
            session::lookup(env, gateway, &token, Some(app.aud()), now)
                .await
                .is_ok()
        );
        session_parts(profile, env, gateway, &token, app.aud(), now).await;
        match session::lookup(env, gateway, &token, Some(app.aud()), now).await {
            Ok(Some(found)) => {
                policy_request.identity = Some(found.identity.to_identity());
                assertion = Some(token);
            }
            _ => {
                outcome.error = Some("the session cookie is refused".into());
                return outcome;
            }
        }
    }
    context.network_into(&mut policy_request);
    let idp_id = policy_request
        .identity
        .as_ref()
        .and_then(|i| i.idp_id.as_deref());
    phase!(
        profile,
        "engine",
        directory::engine_for(env, gateway, idp_id, now)
            .await
            .is_ok()
    );
    let current = match directory::engine_for(env, gateway, idp_id, now).await {
        Ok(current) => current,
        Err(e) => {
            outcome.error = Some(format!("engine: {}", e.reason()));
            return outcome;
        }
    };
    phase!(
        profile,
        "decide",
        current.decide_explained(&policy_request).is_ok()
    );
    let Ok((decision, _)) = current.decide_explained(&policy_request) else {
        outcome.error = Some("the decision stopped".into());
        return outcome;
    };
    if assertion.is_none() {
        phase!(
            profile,
            "assertion",
            crate::assertion::for_request(
                gateway,
                app,
                &policy_request,
                decision.session,
                headers,
                now
            )
            .await
            .is_ok()
        );
        assertion = crate::assertion::for_request(
            gateway,
            app,
            &policy_request,
            decision.session,
            headers,
            now,
        )
        .await
        .ok()
        .flatten();
    }
    let email = policy_request
        .identity
        .as_ref()
        .and_then(|i| i.email.as_ref())
        .map(|e| e.as_str().to_owned());
    phase!(
        profile,
        "proxy_setup",
        proxy::outbound(
            request,
            gateway,
            url,
            email.as_deref(),
            assertion.as_deref()
        )
        .is_ok()
    );
    let why = Vec::new();
    let line = DecisionLog {
        request_id: &context.id,
        method: &context.method,
        target: &context.target,
        app: Some(app.id()),
        outcome: decision.outcome.as_str(),
        policy: decision.policy.map(|p| p.id.unwrap_or(p.name).to_owned()),
        user: policy_request
            .identity
            .as_ref()
            .and_then(|i| i.user_id.as_deref()),
        service_token: None,
        status: 200,
        reason: None,
        why: &why,
        ip: context.ip.map(|ip| ip.to_string()),
        country: context.country.as_deref(),
        latency_ms: 1,
        config_version: &gateway.version_label,
    };
    phase!(profile, "log_line", line.line());
    phase!(
        profile,
        "whole_decision",
        gate::decide(request, env, gateway, &context).await.is_ok()
    );
    phase!(profile, "origin_fetch", {
        match proxy::outbound(
            request,
            gateway,
            url,
            email.as_deref(),
            assertion.as_deref(),
        ) {
            Ok(outbound) => match Fetch::Request(outbound.request).send().await {
                Ok(mut response) => response.bytes().await.map(|b| b.len()).unwrap_or(0),
                Err(_) => 0,
            },
            Err(_) => 0,
        }
    });
    outcome
}

/// The WebCrypto verification inside a bearer token's check, alone: the token's signing
/// input and signature against its (cached) key.
async fn rs256_alone(
    profile: &mut Profile,
    env: &Env,
    gateway: &Gateway,
    token: &str,
    now: crate::time::UnixMillis,
) {
    let Ok(parsed) = UnverifiedEntraToken::parse(token) else {
        return profile.failed("rs256_webcrypto", "the token does not parse");
    };
    let idp = parsed.tenant_hint().and_then(|tenant| {
        gateway
            .engine
            .identity_providers()
            .iter()
            .find(|p| p.directory_id.eq_ignore_ascii_case(tenant))
    });
    let Some(idp) = idp else {
        return profile.failed("rs256_webcrypto", "no provider for the token");
    };
    let key = keys::signing_key(
        env,
        &gateway.authority(idp),
        &keys::key_source(idp),
        &parsed,
        now,
    )
    .await;
    let Ok(Ok((key, _))) = key else {
        return profile.failed("rs256_webcrypto", "no key for the token");
    };
    let Some((message, signature)) = token.rsplit_once('.') else {
        return profile.failed("rs256_webcrypto", "not a JWT");
    };
    let Ok(signature) = URL_SAFE_NO_PAD.decode(signature) else {
        return profile.failed("rs256_webcrypto", "the signature is not base64url");
    };
    phase!(
        profile,
        "rs256_webcrypto",
        WebCryptoVerifier
            .verify_rs256(&key, message.as_bytes(), &signature)
            .await
            .is_ok()
    );
    // The same key and token, the loop in JS.
    let Ok(subtle) = crate::crypto::subtle() else {
        return profile.failed("rs256_webcrypto_js", "no crypto.subtle");
    };
    let Ok(crypto_key) = crate::crypto::crypto_key(&subtle, &key).await else {
        return profile.failed("rs256_webcrypto_js", "the key does not import");
    };
    let promise = verify_for(
        &subtle,
        &crypto_key,
        &js_sys::Uint8Array::from(signature.as_slice()),
        &js_sys::Uint8Array::from(message.as_bytes()),
        profile.budget_ms,
    );
    let Ok(result) = JsFuture::from(promise).await else {
        return profile.failed("rs256_webcrypto_js", "the JS loop failed");
    };
    let result = js_sys::Array::from(&result);
    let number = |i: u32| result.get(i).as_f64().unwrap_or(f64::NAN);
    let (runs, elapsed, valid) = (number(0), number(1), number(2));
    let verified = valid == runs && runs >= 1.0;
    if !verified {
        return profile.failed("rs256_webcrypto_js", "the JS loop did not verify");
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "a count of runs in a few seconds"
    )]
    profile.record("rs256_webcrypto_js", runs as u32, elapsed);
}

/// A session cookie's lookup in its parts: the token's verification, the D1 read, the
/// stored identity's JSON; and a D1 read of nothing (`SELECT 1`), the binding's floor.
async fn session_parts(
    profile: &mut Profile,
    env: &Env,
    gateway: &Gateway,
    token: &str,
    audience: &str,
    now: crate::time::UnixMillis,
) {
    let Some(keys) = gateway.signing.as_ref() else {
        return profile.failed("cookie_verify", "no signing key");
    };
    let issuer = gateway.engine.team_domain();
    phase!(
        profile,
        "cookie_verify",
        session::verify(keys, token, issuer, Some(audience), now.unix_secs())
            .await
            .is_ok()
    );
    let Ok(verified) = session::verify(keys, token, issuer, Some(audience), now.unix_secs()).await
    else {
        return profile.failed("session_row", "the cookie does not verify");
    };
    let nonce = verified.claims().identity_nonce.clone();
    let Ok(db) = env.d1("DB") else {
        return profile.failed("session_row", "no D1 binding");
    };
    phase!(
        profile,
        "session_row",
        session_store::live(&db, &nonce, now).await.is_ok()
    );
    phase!(profile, "d1_select_1", {
        match db.prepare("SELECT 1 AS one").first::<Value>(None).await {
            Ok(row) => row.is_some(),
            Err(_) => false,
        }
    });
    let Ok(Some(row)) = session_store::live(&db, &nonce, now).await else {
        return profile.failed("identity_json", "no live session row");
    };
    phase!(
        profile,
        "identity_json",
        serde_json::from_str::<StoredIdentity>(&row.identity).map(|s| s.to_identity())
    );
}

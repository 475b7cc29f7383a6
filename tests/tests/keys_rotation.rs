//! Entra key rotation and key-endpoint failures, end to end (the built worker under
//! `wrangler dev`, the Entra ID emulator, the echo origin): a made-up `kid` never gets a real
//! new key refused, a flood of them never becomes a flood of JWKS fetches, a key that cannot
//! be known yet is answered 503 with `Retry-After` (never 401), and one dropped answer at a
//! cold start costs no request; a bearer token verified before is taken again only while the
//! key that verified it is still published.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it); see `harness.rs`.
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::time::{Duration, Instant};

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::{Fault, TokenRequest};
use serde_json::{json, Value};

/// The worker's refresh interval (`key_refresh`: two fetches in a row, then one per interval):
/// the longest a real new key may be answered 503.
const REFRESH_INTERVAL_SECS: u64 = 10;
/// Fetches the worker may make in a row.
const BURST: u64 = 2;
/// Its back-off after a fetch that failed.
const FAILURE_BACKOFF_SECS: u64 = 5;

fn document() -> Value {
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b", "name": "Emulated Entra ID",
            "type": "azureAD", "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}" } }],
        "apps": [{ "id": "api", "name": "API", "domain": "${WORKER_HOST}/api", "aud": "aud-api",
            "policies": [{ "name": "Staff", "decision": "allow",
                "include": [{ "email_domain": { "domain": "example.com" } }] }] }]
    })
}

struct Client<'a> {
    stack: &'a Stack,
    http: HttpClient,
}

impl<'a> Client<'a> {
    fn new(stack: &'a Stack) -> Self {
        Self {
            stack,
            http: HttpClient::with_timeout(Duration::from_secs(30)),
        }
    }

    fn bearer(&self, token: &str) -> HttpResponse {
        self.http
            .get_with(
                &format!("{}/api/orders", self.stack.url()),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .unwrap()
    }

    fn mint(&self, request: &TokenRequest) -> String {
        self.stack.emulator().mint(request).unwrap()
    }

    /// Sends `token` until the gateway answers something else than 503, waiting each time
    /// for the `Retry-After` it gave (at most `rounds` times); every 503 must carry one of at
    /// most `max_retry_after` seconds. The last response.
    fn until_known(&self, token: &str, rounds: usize, max_retry_after: u64) -> HttpResponse {
        for _ in 0..rounds {
            let response = self.bearer(token);
            if response.status != 503 {
                return response;
            }
            let wait = retry_after(&response);
            assert!(
                (1..=max_retry_after).contains(&wait),
                "Retry-After {wait} s"
            );
            std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
        }
        self.bearer(token)
    }
}

/// The `Retry-After` of a 503, in seconds.
fn retry_after(response: &HttpResponse) -> u64 {
    assert_eq!(response.status, 503, "{response:?}");
    response
        .header("retry-after")
        .unwrap_or_else(|| panic!("a 503 without Retry-After: {response:?}"))
        .parse()
        .unwrap()
}

fn assert_allowed(response: &HttpResponse, what: &str) {
    assert_eq!(response.status, 200, "{what}: {response:?}");
    let echo: Value = response.json().unwrap();
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"], "ada@example.com",
        "{what}"
    );
}

#[test]
fn made_up_kids_never_hold_back_a_real_new_key() {
    if !Stack::should_run("keys_rotation::made_up_kids_never_hold_back_a_real_new_key").unwrap() {
        return;
    }
    let stack = Stack::start(StackConfig::new(document()).named("keys-rotation")).unwrap();
    let c = Client::new(&stack);
    let emulator = stack.emulator();

    // Cold start: the first discovery answer and the first JWKS answer are lost (not HTTP,
    // as over a dropped connection). Each is tried once more at once: the first bearer
    // request succeeds.
    emulator.set_discovery_fault_times(Fault::Broken, 1);
    emulator.set_jwks_fault_times(Fault::Broken, 1);
    let first = c.mint(&TokenRequest::v2("ada"));
    assert_allowed(&c.bearer(&first), "first request after dropped answers");
    assert_eq!(emulator.discovery_fetches(), 2, "discovery tried twice");
    assert_eq!(emulator.jwks_fetches(), 2, "JWKS tried twice");

    // Someone presents a made-up kid (a token issued now) just before Entra rolls its keys.
    let invented = c.mint(&TokenRequest::v2("ada").with_kid("made-up-kid-before-the-roll"));
    let response = c.bearer(&invented);
    assert!(
        matches!(response.status, 401 | 503),
        "made-up kid: {response:?}"
    );
    if response.status == 503 {
        retry_after(&response);
    }
    emulator.rotate_keys(true).unwrap();
    // The new key's token is never refused: at worst 503 until the next refresh may begin.
    let rotated = c.mint(&TokenRequest::v2("ada"));
    let answered = c.until_known(&rotated, 3, REFRESH_INTERVAL_SECS);
    assert_allowed(&answered, "token signed with the new key");
    let after_rotation = emulator.jwks_fetches();
    assert!(
        after_rotation <= 4,
        "at most one refresh for the made-up kid and one for the new key: {after_rotation}"
    );

    // Tokens with made-up kids issued 20 minutes ago: the key set fetched since answers for
    // them — 401, and no fetch.
    for i in 0..10 {
        let old = c.mint(
            &TokenRequest::v2("ada")
                .with_kid(&format!("made-up-old-{i}"))
                .with_issued_at_offset_secs(-1200),
        );
        let response = c.bearer(&old);
        assert_eq!(response.status, 401, "old token, made-up kid: {response:?}");
        assert_eq!(response.header("www-authenticate"), Some("Bearer"));
    }
    assert_eq!(emulator.jwks_fetches(), after_rotation, "no fetch for them");

    // A flood of fresh made-up kids: never let in, never a flood of fetches (at most one
    // per refresh interval).
    let started = Instant::now();
    for i in 0..40 {
        let forged = c.mint(&TokenRequest::v2("ada").with_kid(&format!("made-up-flood-{i}")));
        let response = c.bearer(&forged);
        match response.status {
            401 => {}
            503 => assert!(retry_after(&response) <= REFRESH_INTERVAL_SECS),
            _ => panic!("made-up kid {i}: {response:?}"),
        }
    }
    let flood_fetches = emulator.jwks_fetches() - after_rotation;
    let allowed = BURST + started.elapsed().as_secs() / REFRESH_INTERVAL_SECS;
    assert!(
        flood_fetches <= allowed,
        "{flood_fetches} JWKS fetches for 40 made-up kids in {:?}",
        started.elapsed()
    );
    assert_eq!(
        emulator.discovery_fetches(),
        2,
        "refreshes read the JWKS alone"
    );

    // An outage of the JWKS while Entra rolls its keys again: cached keys keep serving; the
    // newest key cannot be known yet — 503 with Retry-After, not 401 — until the JWKS answers.
    emulator.set_jwks_fault(Fault::Error500);
    emulator.rotate_keys(true).unwrap();
    let newest = c.mint(&TokenRequest::v2("ada"));
    assert_allowed(&c.bearer(&rotated), "a cached key during the outage");
    let before_outage = emulator.jwks_fetches();
    let mut failed_fetch_seen = false;
    for _ in 0..4 {
        let response = c.bearer(&newest);
        let wait = retry_after(&response);
        assert!(wait <= REFRESH_INTERVAL_SECS, "Retry-After {wait} s");
        if emulator.jwks_fetches() > before_outage {
            failed_fetch_seen = true;
            break;
        }
        std::thread::sleep(Duration::from_secs(wait) + Duration::from_millis(200));
    }
    assert!(failed_fetch_seen, "a refresh was tried during the outage");
    assert_eq!(
        emulator.jwks_fetches() - before_outage,
        2,
        "a failed fetch is tried twice"
    );
    emulator.set_jwks_fault(Fault::None);
    let answered = c.until_known(&newest, 3, REFRESH_INTERVAL_SECS);
    assert_allowed(&answered, "the newest key once the JWKS answers");

    // The log says which dependency failed, and no token leaks into it.
    let log = stack.worker_log();
    assert!(!log.contains(&rotated) && !log.contains(&newest));
    let lines = stack.worker_log_json();
    assert!(lines.iter().any(|l| l["event"] == "jwks_fetch_retried"));
    assert!(lines.iter().any(|l| l["event"] == "jwks_refresh_failed"));
    assert!(lines.iter().any(|l| l["event"] == "decision"
        && l["status"] == 503
        && l["reason"]
            .as_str()
            .unwrap_or("")
            .starts_with("signing keys unavailable")));
}

#[test]
fn a_token_verified_before_is_refused_once_its_key_is_withdrawn() {
    if !Stack::should_run(
        "keys_rotation::a_token_verified_before_is_refused_once_its_key_is_withdrawn",
    )
    .unwrap()
    {
        return;
    }
    let stack = Stack::start(StackConfig::new(document()).named("keys-withdrawn")).unwrap();
    let c = Client::new(&stack);
    let emulator = stack.emulator();

    // The same token again and again: verified once, then taken as verified.
    let old = c.mint(&TokenRequest::v2("ada"));
    for round in 0..3 {
        assert_allowed(&c.bearer(&old), &format!("old key, request {round}"));
    }
    let fetches = emulator.jwks_fetches();

    // Entra withdraws that key; a token signed with the new one makes the gateway fetch the
    // key set again, which no longer lists the old key.
    emulator.rotate_keys(false).unwrap();
    let new = c.mint(&TokenRequest::v2("ada"));
    let answered = c.until_known(&new, 3, REFRESH_INTERVAL_SECS);
    assert_allowed(&answered, "token signed with the new key");
    assert!(
        emulator.jwks_fetches() > fetches,
        "the key set was fetched again"
    );

    // The old token is no longer let in, verified before or not: refused, or (its key set
    // may be fetched once more for it) 503 until it can be.
    let response = c.bearer(&old);
    assert!(
        matches!(response.status, 401 | 503),
        "old key withdrawn: {response:?}"
    );
    assert_allowed(&c.bearer(&new), "the new token still");
}

#[test]
fn a_cold_start_during_an_outage_answers_503_with_retry_after() {
    if !Stack::should_run(
        "keys_rotation::a_cold_start_during_an_outage_answers_503_with_retry_after",
    )
    .unwrap()
    {
        return;
    }
    let stack = Stack::start(StackConfig::new(document()).named("keys-outage")).unwrap();
    let c = Client::new(&stack);
    let emulator = stack.emulator();
    emulator.set_jwks_fault(Fault::Error500);
    let token = c.mint(&TokenRequest::v2("ada"));

    let started = Instant::now();
    let response = c.bearer(&token);
    let wait = retry_after(&response);
    assert!(
        (1..=FAILURE_BACKOFF_SECS).contains(&wait),
        "Retry-After {wait} s"
    );
    // (Up to the request id, a random one here, which may hold any digits.)
    let said = response
        .body
        .split("<code id=\"request-id\">")
        .next()
        .unwrap_or_default();
    assert!(
        !said.contains("jwks") && !said.contains("500"),
        "the page says nothing of the cause"
    );
    assert_eq!(emulator.jwks_fetches(), 2, "tried twice");
    // Within the back-off, no other fetch: 503 again, sooner.
    let again = c.bearer(&token);
    if started.elapsed() < Duration::from_secs(FAILURE_BACKOFF_SECS - 1) {
        assert!(retry_after(&again) <= wait);
        assert_eq!(emulator.jwks_fetches(), 2, "no fetch within the back-off");
    }

    emulator.set_jwks_fault(Fault::None);
    let answered = c.until_known(&token, 2, FAILURE_BACKOFF_SECS);
    assert_allowed(&answered, "once the JWKS answers");
}

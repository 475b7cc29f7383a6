//! The gateway end to end: the built worker under `wrangler dev` (workerd, local KV), the Entra
//! ID emulator standing in for Microsoft, and the demo origin echoing what it receives.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it); see `harness.rs`.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::{Fault, TokenRequest};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const CI_SECRET: &str = "ci-secret-3b9f6c1e0d2a4f58";

fn document(fixtures: &Fixtures) -> Value {
    let idp = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
    let azure = |name: &str| json!({ "azureAD": { "id": fixtures.group_id(name).unwrap(), "identity_provider_id": idp } });
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": idp, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}", "support_groups": true } }],
        "service_tokens": [{ "id": "ci", "name": "CI pipeline", "client_id": "ci.access",
            "client_secret_sha256": hex(&Sha256::digest(CI_SECRET.as_bytes())) }],
        "groups": [{ "id": "blocked", "name": "Blocked", "include": [azure("Blocked users")] }],
        "apps": [
            { "id": "api", "name": "API", "domain": "${WORKER_HOST}/api", "aud": "aud-api",
              "policies": [
                { "name": "Blocked users", "decision": "deny", "include": [{ "group": { "id": "blocked" } }] },
                { "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] } ] },
            { "id": "eng", "name": "Engineering API", "domain": "${WORKER_HOST}/eng", "aud": "aud-eng",
              "policies": [{ "name": "Engineering (nested)", "decision": "allow", "include": [azure("Engineering")] }] },
            { "id": "public", "name": "Public assets", "domain": "${WORKER_HOST}/public", "aud": "aud-public",
              "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] },
            { "id": "ci", "name": "CI hooks", "domain": "${WORKER_HOST}/ci", "aud": "aud-ci",
              "policies": [{ "name": "CI token", "decision": "non_identity", "include": [{ "service_token": { "token_id": "ci" } }] }] }
        ],
        "directory": { "group_parents": fixtures.group_parents() }
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct Client<'a> {
    stack: &'a Stack,
    http: HttpClient,
}

impl Client<'_> {
    fn get(&self, path: &str, headers: &[(&str, &str)]) -> HttpResponse {
        self.http
            .get_with(&format!("{}{path}", self.stack.url()), headers)
            .unwrap()
    }
    fn bearer(&self, path: &str, token: &str) -> HttpResponse {
        self.get(path, &[("authorization", &format!("Bearer {token}"))])
    }
    fn mint(&self, request: &TokenRequest) -> String {
        self.stack.emulator().mint(request).unwrap()
    }
}

/// The origin's echo of the request it received.
fn echoed(response: &HttpResponse) -> Value {
    assert_eq!(
        response.status, 200,
        "expected the origin's answer, got {response:?}"
    );
    response.json().unwrap()
}

fn assert_refused(response: &HttpResponse, status: u16, what: &str) {
    assert_eq!(response.status, status, "{what}: {response:?}");
    assert!(
        response.header("x-echo").is_none() && !response.body.contains("\"headers\""),
        "{what}: the origin answered"
    );
    assert!(
        !response.body.contains("token") || status == 401,
        "{what}: body says too much"
    );
    if status == 401 {
        assert_eq!(
            response.header("www-authenticate"),
            Some("Bearer"),
            "{what}"
        );
    }
}

fn tamper_payload(token: &str, claim: &str, value: Value) -> String {
    let parts: Vec<&str> = token.split('.').collect();
    let mut claims: Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).unwrap()).unwrap();
    claims[claim] = value;
    format!(
        "{}.{}.{}",
        parts[0],
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        parts[2]
    )
}

fn resign(token: &str, header: Value, key: &[u8]) -> String {
    let payload = token.split('.').nth(1).unwrap();
    let message = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(message.as_bytes());
    format!(
        "{message}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

#[test]
fn gateway_end_to_end() {
    if !Stack::should_run("gateway::gateway_end_to_end").unwrap() {
        return;
    }
    let fixtures = Fixtures::load_default().unwrap();
    let stack = Stack::start(StackConfig::new(document(&fixtures)).named("gateway")).unwrap();
    let c = Client {
        stack: &stack,
        http: HttpClient::with_timeout(Duration::from_secs(20)),
    };
    let emulator = stack.emulator();
    let client_id = emulator.client_id().to_owned();

    // Valid v1 and v2 tokens are allowed, and the origin learns who the user is.
    let v2 = c.mint(&TokenRequest::v2("ada"));
    let echo = echoed(&c.bearer("/api/orders?x=1", &v2));
    assert_eq!(echo["path"], "/api/orders?x=1");
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    let v1 = c.mint(&TokenRequest::v1("ada"));
    assert_eq!(
        echoed(&c.bearer("/api/orders", &v1))["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    let v1_uri = c.mint(&TokenRequest::v1("bob").with_audience(&format!("api://{client_id}")));
    assert_eq!(
        echoed(&c.bearer("/api", &v1_uri))["headers"]["cf-access-authenticated-user-email"],
        "bob@example.com"
    );
    let fetches_after_first_use = emulator.jwks_fetches();
    assert_eq!(
        fetches_after_first_use, 2,
        "one JWKS fetch per token version, then the cache"
    );

    // Every broken token is refused with 401, before the origin sees anything.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let jwk = emulator.public_jwk(&emulator.signing_kid()).unwrap();
    let public_key = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let origin_requests = stack.origin().requests();
    let refused: Vec<(&str, String)> = vec![
        (
            "wrong aud",
            c.mint(&TokenRequest::v2("ada").with_audience("00000003-0000-0000-c000-000000000000")),
        ),
        (
            "wrong issuer",
            c.mint(&TokenRequest::v2("ada").with_claim(
                "iss",
                format!("https://sts.windows.net/{}/", emulator.tenant_id()),
            )),
        ),
        (
            "wrong tid",
            c.mint(
                &TokenRequest::v2("ada").with_claim("tid", "9188040d-6c67-4c5b-b112-36a304b66dad"),
            ),
        ),
        (
            "expired",
            c.mint(
                &TokenRequest::v2("ada")
                    .with_issued_at_offset_secs(-7200)
                    .with_lifetime_secs(3600),
            ),
        ),
        (
            "nbf in the future",
            c.mint(&TokenRequest::v2("ada").with_claim("nbf", now + 3600)),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                URL_SAFE_NO_PAD
                    .encode(json!({"alg": "none", "kid": emulator.signing_kid()}).to_string()),
                v2.split('.').nth(1).unwrap()
            ),
        ),
        (
            "HS256 signed with the RSA public key",
            resign(
                &v2,
                json!({"alg": "HS256", "typ": "JWT", "kid": emulator.signing_kid()}),
                &public_key,
            ),
        ),
        (
            "tampered payload",
            tamper_payload(&v2, "upn", json!("root@example.com")),
        ),
        ("tampered signature", {
            let mut t = v2.clone();
            let last = t.pop().unwrap();
            t.push(if last == 'A' { 'B' } else { 'A' });
            t
        }),
        ("malformed", "not.a.jwt".into()),
        ("garbage", "%%%".into()),
        (
            "no ver",
            c.mint(&TokenRequest::v2("ada").without_claim("ver")),
        ),
    ];
    for (what, token) in &refused {
        assert_refused(&c.bearer("/api/orders", token), 401, what);
    }
    assert_eq!(
        stack.origin().requests(),
        origin_requests,
        "refused requests never reach the origin"
    );

    // No credentials on the API path: 401 with a Bearer challenge; no app: 404.
    assert_refused(&c.get("/api/orders", &[]), 401, "no token");
    assert_refused(
        &c.get("/elsewhere", &[("authorization", &format!("Bearer {v2}"))]),
        404,
        "no app",
    );

    // Nested groups: dora's token lists only her direct group (SRE); the directory nests SRE
    // under Platform under Engineering, so she is in. Mallory is not; the blocked user is blocked.
    let dora = c.mint(&TokenRequest::v2("dora"));
    assert_eq!(
        echoed(&c.bearer("/eng/deploys", &dora))["headers"]["cf-access-authenticated-user-email"],
        "dora@example.com"
    );
    let mallory = c.mint(&TokenRequest::v2("mallory"));
    assert_refused(
        &c.bearer("/eng/deploys", &mallory),
        403,
        "mallory on the engineering app",
    );
    assert_refused(
        &c.bearer("/api/orders", &mallory),
        403,
        "mallory (blocked group, not staff)",
    );
    // A user with a groups overage: the gateway reads the groups from Microsoft Graph with
    // the app's own credentials (client credentials), never treating the user as having no
    // groups. Graph failing fails the request closed; then the groups (nested Engineering)
    // let her in, and both the app token and her groups are reused for the next request.
    let emulator = stack.emulator();
    let overage = c.mint(&TokenRequest::v2("overage"));
    let (tokens, lookups) = (
        emulator.client_credentials_issued(),
        emulator.graph_member_lookups(),
    );
    emulator.set_graph_fault(Fault::Error500);
    assert_refused(
        &c.bearer("/eng/deploys", &overage),
        502,
        "overage, Graph down",
    );
    emulator.set_graph_fault(Fault::None);
    assert_eq!(
        echoed(&c.bearer("/eng/deploys", &overage))["headers"]
            ["cf-access-authenticated-user-email"],
        "overage@example.com"
    );
    echoed(&c.bearer("/eng/deploys", &overage));
    // One app token in all: Bob's tokens carry no groups claim (he is in none), so his
    // groups were read through Graph with it already.
    assert!(tokens <= 1, "{tokens} app tokens before the overage user");
    assert_eq!(
        emulator.client_credentials_issued(),
        1,
        "one app token, reused"
    );
    assert_eq!(
        emulator.graph_member_lookups() - lookups,
        2,
        "the failed lookup, then one that is reused"
    );

    // Service tokens: the right secret is let in; a wrong one is refused.
    let echo = echoed(&c.get(
        "/ci/hook",
        &[
            ("cf-access-client-id", "ci.access"),
            ("cf-access-client-secret", CI_SECRET),
        ],
    ));
    assert!(
        echo["headers"].get("cf-access-client-secret").is_none(),
        "the secret is not forwarded"
    );
    assert_refused(
        &c.get(
            "/ci/hook",
            &[
                ("cf-access-client-id", "ci.access"),
                ("cf-access-client-secret", "wrong"),
            ],
        ),
        401,
        "wrong secret",
    );
    assert_refused(
        &c.get("/ci/hook", &[("cf-access-client-id", "ci.access")]),
        401,
        "secret missing",
    );
    assert_refused(
        &c.get("/ci/hook", &[]),
        403,
        "no service token on a service-auth app",
    );

    // Bypass: no credentials needed; spoofed Cf-Access-* headers never reach the origin.
    let echo = echoed(&c.get(
        "/public/logo.svg",
        &[
            ("cf-access-authenticated-user-email", "root@example.com"),
            ("cf-access-jwt-assertion", "forged"),
        ],
    ));
    let headers = echo["headers"].as_object().unwrap();
    assert!(
        headers.keys().all(|k| !k.starts_with("cf-access-")),
        "{headers:?}"
    );
    let echo = echoed(&c.get(
        "/api/orders",
        &[
            ("authorization", &format!("Bearer {v2}")),
            ("cf-access-authenticated-user-email", "root@example.com"),
        ],
    ));
    assert_eq!(
        echo["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );

    // Key rotation: a token signed with the new key is accepted after exactly one refresh.
    let before = emulator.jwks_fetches();
    emulator.rotate_keys(true).unwrap();
    let rotated = c.mint(&TokenRequest::v2("ada"));
    assert_eq!(
        echoed(&c.bearer("/api/orders", &rotated))["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    assert_eq!(
        emulator.jwks_fetches(),
        before + 1,
        "one refresh for the new kid"
    );
    // A flood of unknown kids causes no flood of fetches: tokens issued before the last fetch
    // are refused (401) without one; fresh ones cannot be judged until the next refresh may
    // begin (503 with Retry-After), at most one per 10 seconds.
    let flood_started = std::time::Instant::now();
    for _ in 0..20 {
        let forged = c.mint(
            &TokenRequest::v2("ada")
                .signed_with_unpublished_key()
                .with_issued_at_offset_secs(-1200),
        );
        assert_refused(&c.bearer("/api/orders", &forged), 401, "unknown kid flood");
    }
    assert_eq!(
        emulator.jwks_fetches(),
        before + 1,
        "no fetch for unknown kids of tokens issued before the last fetch"
    );
    for _ in 0..20 {
        let forged = c.mint(&TokenRequest::v2("ada").signed_with_unpublished_key());
        let response = c.bearer("/api/orders", &forged);
        if response.status != 401 {
            assert_refused(&response, 503, "unknown kid flood, fresh tokens");
            assert!(response.header("retry-after").is_some(), "{response:?}");
        }
    }
    assert!(
        emulator.jwks_fetches() <= before + 2 + flood_started.elapsed().as_secs() / 10,
        "unknown kids are rate-limited to one refresh per 10 seconds"
    );

    // JWKS outage: cached keys keep serving; an unknown kid is still refused, quickly.
    emulator.set_jwks_fault(Fault::Error500);
    assert_eq!(
        echoed(&c.bearer("/api/orders", &rotated))["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    assert_eq!(
        echoed(&c.bearer("/api/orders", &v2))["headers"]["cf-access-authenticated-user-email"],
        "ada@example.com"
    );
    emulator.set_jwks_fault(Fault::Slow(Duration::from_secs(10)));
    let started = std::time::Instant::now();
    assert_eq!(c.bearer("/api/orders", &rotated).status, 200);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "cached keys do not wait for a slow JWKS"
    );
    emulator.set_jwks_fault(Fault::None);

    // One structured decision line per request; no token ever in the log.
    let log = stack.worker_log();
    for (_, token) in &refused {
        if token.len() > 20 {
            assert!(!log.contains(token.as_str()), "a token leaked into the log");
        }
    }
    assert!(!log.contains(&v2) && !log.contains(CI_SECRET));
    let decisions: Vec<Value> = stack
        .worker_log_json()
        .into_iter()
        .filter(|l| l["event"] == "decision")
        .collect();
    assert!(decisions.len() >= 40, "{} decision lines", decisions.len());
    let allowed = decisions
        .iter()
        .find(|l| l["outcome"] == "allow" && l["app"] == "api")
        .unwrap();
    for field in [
        "time",
        "request_id",
        "policy",
        "user",
        "status",
        "latency_ms",
        "config_version",
    ] {
        assert!(
            !allowed[field].is_null(),
            "decision line lacks {field}: {allowed}"
        );
    }
    // ISO 8601 in UTC, as log pipelines parse it: 2026-12-02T06:01:02.345Z.
    let time = allowed["time"].as_str().unwrap();
    let shape: String = time
        .chars()
        .map(|c| if c.is_ascii_digit() { '9' } else { c })
        .collect();
    assert_eq!(shape, "9999-99-99T99:99:99.999Z", "{time}");
    assert!(allowed["latency_ms"].is_u64(), "{allowed}");
    for field in ["ip", "country"] {
        assert!(
            allowed.get(field).is_some(),
            "decision line lacks {field}: {allowed}"
        );
    }
    // A var's document is named by its hash, the same on every line of one configuration.
    let version = allowed["config_version"].as_str().unwrap();
    assert!(
        version.starts_with("sha256:") && version.len() == "sha256:".len() + 12,
        "{version}"
    );
    assert!(decisions.iter().all(|l| l["config_version"] == version));

    // Health: the version that decides and the key sets held, nothing of the policies.
    let health = c.get("/cdn-cgi/access/health", &[]).json().unwrap();
    assert_eq!(health["status"], "ok", "{health}");
    assert_eq!(health["config_version"], version, "{health}");
    assert!(health["key_sets_cached"].as_u64().unwrap() >= 1, "{health}");
    let text = health.to_string();
    for secret_of_the_policy in ["api", "Staff", "example.com", "Engineering"] {
        assert!(!text.contains(secret_of_the_policy), "{text}");
    }
    assert!(decisions
        .iter()
        .any(|l| l["outcome"] == "service_auth" && l["service_token"] == "ci"));
    assert!(decisions
        .iter()
        .any(|l| l["status"] == 401 && l["reason"].as_str().unwrap_or("").contains("kid")));
}

#[test]
fn invalid_configuration_fails_closed() {
    if !Stack::should_run("gateway::invalid_configuration_fails_closed").unwrap() {
        return;
    }
    let fixtures = Fixtures::load_default().unwrap();
    let mut broken = document(&fixtures);
    broken["apps"][0]["policies"][1]["include"][0] = json!({ "frobnicate": {} });
    let stack = Stack::start(StackConfig::new(broken).named("gateway-invalid")).unwrap();
    let http = HttpClient::new();
    let token = stack.emulator().mint(&TokenRequest::v2("ada")).unwrap();
    for path in ["/api/orders", "/public/logo.svg", "/anything"] {
        let response = http
            .get_with(
                &format!("{}{path}", stack.url()),
                &[("authorization", &format!("Bearer {token}"))],
            )
            .unwrap();
        assert_eq!(response.status, 500, "{path}: {response:?}");
        assert!(
            !response.body.contains("frobnicate"),
            "the page names no configuration detail"
        );
    }
    assert_eq!(stack.origin().requests(), 0, "nothing reached the origin");
    let health = http
        .get_with(&format!("{}/cdn-cgi/access/health", stack.url()), &[])
        .unwrap();
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.json().unwrap()["status"], "config_error");
    assert!(!health.body.contains("frobnicate"), "{health:?}");
    stack
        .wait_for_log(
            "apps[0].policies[1].include[0]: unknown selector `frobnicate`",
            Duration::from_secs(10),
        )
        .unwrap();
}

//! What the sign-in tests share: the configuration, one stack per test binary, a browserless
//! "browser" (a cookie jar over `HttpClient`, redirects followed by hand), and application
//! tokens signed by the tests themselves.

#![allow(dead_code, reason = "each test file uses part of these helpers")]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::urlencoded;
use rsa::{BigUint, Pkcs1v15Sign, RsaPrivateKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const TEAM_DOMAIN: &str = "https://access.example.com";
pub const IDP: &str = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
/// The app's `session_duration` for the expiry scenarios.
pub const BRIEF_SESSION_SECS: u64 = 4;

/// Apps on the worker's host: `/staff` (example.com addresses, Blocked users denied),
/// `/eng` (the Engineering group, reached through nesting), `/brief` (a short session),
/// `/public` (bypass).
pub fn document(fixtures: &Fixtures) -> Value {
    let azure = |name: &str| json!({ "azureAD": { "id": fixtures.group_id(name).unwrap(), "identity_provider_id": IDP } });
    json!({
        "team_domain": TEAM_DOMAIN,
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}",
                        "support_groups": true, "pkce_enabled": true },
            "scim_config": { "enabled": true, "user_deprovision": true } }],
        "groups": [{ "id": "blocked", "name": "Blocked", "include": [azure("Blocked users")] }],
        "apps": [
            { "id": "staff", "name": "Staff portal", "domain": "${WORKER_HOST}/staff", "aud": "aud-staff",
              "policies": [
                { "name": "Blocked users", "decision": "deny", "include": [{ "group": { "id": "blocked" } }] },
                { "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] } ] },
            { "id": "eng", "name": "Engineering tools", "domain": "${WORKER_HOST}/eng", "aud": "aud-eng",
              "policies": [{ "name": "Engineering (nested)", "decision": "allow", "include": [azure("Engineering")] }] },
            { "id": "brief", "name": "Short sessions", "domain": "${WORKER_HOST}/brief", "aud": "aud-brief",
              "session_duration": format!("{BRIEF_SESSION_SECS}s"),
              "policies": [{ "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] }] },
            { "id": "public", "name": "Public", "domain": "${WORKER_HOST}/public", "aud": "aud-public",
              "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }
        ],
        "directory": { "group_parents": fixtures.group_parents() }
    })
}

/// One stack for every test of the binary (they run in parallel and never share a session).
/// It lives as long as the test process; wrangler dies with it.
pub fn stack(binary: &str) -> &'static Stack {
    stack_with(binary, |config| config)
}

/// [`stack`], its configuration changed by `configure` (vars, D1 rows). A binary uses one of
/// the two, once.
pub fn stack_with(
    binary: &str,
    configure: impl FnOnce(StackConfig) -> StackConfig,
) -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
        let config = configure(StackConfig::new(document(&fixtures)).named(binary));
        let stack = Stack::start(config).map_err(|e| e.to_string())?;
        warm_up(&stack);
        Ok(stack)
    });
    match stack {
        Ok(stack) => stack,
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

/// One sign-in before the tests run in parallel, so that they start from a warm isolate (the
/// cold case is `signin_http::concurrent_first_sign_ins_all_succeed`).
pub fn warm_up(stack: &Stack) {
    warm_up_at(stack, "/staff/warm-up");
}

/// [`warm_up`] at `path` (a page of some app that lets dora in).
pub fn warm_up_at(stack: &Stack, path: &str) {
    let mut agent = Agent::new(stack);
    agent.signed_in(path, "dora");
}

/// A cookie the jar keeps.
#[derive(Debug, Clone)]
pub struct JarCookie {
    pub name: String,
    pub value: String,
    pub path: String,
    /// The whole `Set-Cookie` line it came from.
    pub set_cookie: String,
}

/// A browser without a browser: a cookie jar for the worker's host, redirects followed by
/// hand, `Accept: text/html` on navigations.
pub struct Agent<'s> {
    pub stack: &'s Stack,
    pub http: HttpClient,
    pub jar: Vec<JarCookie>,
}

impl<'s> Agent<'s> {
    pub fn new(stack: &'s Stack) -> Self {
        Self {
            stack,
            http: HttpClient::with_timeout(Duration::from_secs(30)),
            jar: Vec::new(),
        }
    }

    /// `path` (or an absolute URL) made absolute on the worker.
    pub fn url(&self, path_or_url: &str) -> String {
        if path_or_url.starts_with("http://") || path_or_url.starts_with("https://") {
            path_or_url.to_owned()
        } else {
            format!("{}{path_or_url}", self.stack.url())
        }
    }

    /// The `Cookie` header for `url` (worker URLs only).
    pub fn cookie_header(&self, url: &str) -> Option<String> {
        let path = url.strip_prefix(self.stack.url())?;
        let path = if path.is_empty() { "/" } else { path };
        let pairs: Vec<String> = self
            .jar
            .iter()
            .filter(|c| path.starts_with(&c.path) || format!("{path}/") == c.path)
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    /// Any request to the worker with the jar's cookies; the answer's cookies go in the jar.
    pub fn request(
        &mut self,
        method: &str,
        path_or_url: &str,
        headers: &[(&str, &str)],
    ) -> HttpResponse {
        let url = self.url(path_or_url);
        let cookie = self.cookie_header(&url);
        let mut all: Vec<(&str, &str)> = headers.to_vec();
        if let Some(cookie) = cookie.as_deref() {
            all.push(("cookie", cookie));
        }
        let response = self.http.request(method, &url, &all, &[]).unwrap();
        if url.starts_with(self.stack.url()) {
            for line in response.header_all("set-cookie") {
                self.store(line);
            }
        }
        response
    }

    /// A navigation: `GET` with `Accept: text/html`, as a browser's address bar sends.
    pub fn navigate(&mut self, path_or_url: &str) -> HttpResponse {
        self.request(
            "GET",
            path_or_url,
            &[(
                "accept",
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
            )],
        )
    }

    /// An API call (no `text/html` in `Accept`).
    pub fn api(&mut self, path: &str) -> HttpResponse {
        self.request("GET", path, &[("accept", "application/json")])
    }

    fn store(&mut self, line: &str) {
        let mut parts = line.split(';').map(str::trim);
        let Some((name, value)) = parts.next().and_then(|p| p.split_once('=')) else {
            return;
        };
        let mut path = "/".to_owned();
        let mut expired = false;
        for attribute in parts {
            let (key, val) = attribute.split_once('=').unwrap_or((attribute, ""));
            if key.eq_ignore_ascii_case("path") {
                path = val.to_owned();
            }
            if key.eq_ignore_ascii_case("max-age") && val.parse::<i64>().is_ok_and(|age| age <= 0) {
                expired = true;
            }
        }
        self.jar.retain(|c| !(c.name == name && c.path == path));
        if !expired && !value.is_empty() {
            self.jar.push(JarCookie {
                name: name.to_owned(),
                value: value.to_owned(),
                path,
                set_cookie: line.to_owned(),
            });
        }
    }

    /// The sign-in binding cookie (`EA_Login_<state prefix>`), if the jar has one.
    pub fn binding_cookie(&self) -> Option<JarCookie> {
        self.jar
            .iter()
            .find(|c| c.name.starts_with("EA_Login_"))
            .cloned()
    }

    /// The value of cookie `name`, if the jar has it.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    }

    /// Puts (or replaces) cookie `name` for path `/`, as an attacker holding a cookie would.
    pub fn set_cookie(&mut self, name: &str, value: &str) {
        self.jar.retain(|c| c.name != name);
        self.jar.push(JarCookie {
            name: name.into(),
            value: value.into(),
            path: "/".into(),
            set_cookie: String::new(),
        });
    }

    /// Navigates to `path` without a session and follows the gateway to Entra: returns the
    /// authorize URL (the `EA_Login` binding cookie is now in the jar).
    pub fn begin_sign_in(&mut self, path: &str) -> String {
        let protected = self.navigate(path);
        assert_eq!(
            protected.status, 302,
            "{path} without a session: {protected:?}"
        );
        let login = protected.header("location").unwrap().to_owned();
        let expected = format!(
            "{}/cdn-cgi/access/login?redirect_url={}",
            self.stack.url(),
            urlencoded::encode(path)
        );
        assert_eq!(
            login.replace("%2F", "/"),
            expected.replace("%2F", "/"),
            "{protected:?}"
        );
        self.begin_login(&login)
    }

    /// `GET /cdn-cgi/access/login?…` (`login` absolute or a path): returns the authorize URL.
    pub fn begin_login(&mut self, login: &str) -> String {
        let answer = self.navigate(login);
        assert_eq!(answer.status, 302, "{login}: {answer:?}");
        let authorize = answer.header("location").unwrap().to_owned();
        // The v2 endpoint, or the v1 one when a rule reads `amr`.
        let emulator = self.stack.emulator();
        let v1 = format!(
            "{}/{}/oauth2/authorize",
            emulator.url(),
            emulator.tenant_id()
        );
        assert!(
            authorize.starts_with(&emulator.authorize_endpoint()) || authorize.starts_with(&v1),
            "{login} sent the browser to {authorize}"
        );
        assert!(
            self.binding_cookie().is_some(),
            "no EA_Login binding cookie: {answer:?}"
        );
        authorize
    }

    /// The emulator's sign-in page, `user`'s button: the callback URL it redirects to.
    pub fn choose_user(&self, authorize: &str, user: &str) -> String {
        let callback = self.stack.emulator().sign_in(authorize, user).unwrap();
        assert!(
            callback.starts_with(&format!("{}/cdn-cgi/access/callback?", self.stack.url())),
            "the emulator sent the browser to {callback}"
        );
        callback
    }

    /// The whole sign-in for `path` as `user`: returns the callback's answer (a 302 back to
    /// `path` with the session cookie when the sign-in succeeds).
    pub fn sign_in(&mut self, path: &str, user: &str) -> HttpResponse {
        let authorize = self.begin_sign_in(path);
        let callback = self.choose_user(&authorize, user);
        self.navigate(&callback)
    }

    /// [`Agent::sign_in`] that must succeed; returns the session cookie's value.
    pub fn signed_in(&mut self, path: &str, user: &str) -> String {
        let answer = self.sign_in(path, user);
        assert_eq!(
            answer.status, 302,
            "sign-in of {user} to {path}: {answer:?}"
        );
        assert_eq!(answer.header("location"), Some(path), "{answer:?}");
        self.cookie("CF_Authorization")
            .unwrap_or_else(|| panic!("no session cookie after signing in: {answer:?}"))
    }
}

/// A SCIM group `display_name` for the Entra group `external_id`, created through the
/// gateway's SCIM endpoint (201 asserted).
pub fn scim_group(stack: &Stack, display_name: &str, external_id: &str) {
    let created = HttpClient::new()
        .request(
            "POST",
            &format!(
                "{}{}/Groups",
                stack.url(),
                edge_access_tests::stack::SCIM_PATH
            ),
            &[
                (
                    "authorization",
                    &format!("Bearer {}", edge_access_tests::stack::SCIM_TOKEN),
                ),
                ("content-type", "application/scim+json"),
            ],
            json!({ "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "displayName": display_name, "externalId": external_id })
            .to_string()
            .as_bytes(),
        )
        .unwrap();
    assert_eq!(created.status, 201, "{created:?}");
}

/// The origin's echo of the request it received.
pub fn echoed(response: &HttpResponse) -> Value {
    assert_eq!(
        response.status, 200,
        "expected the origin's answer, got {response:?}"
    );
    response.json().unwrap()
}

/// `url` with query parameter `name` set to `value` (the others kept, in order).
pub fn with_query(url: &str, name: &str, value: &str) -> String {
    let (base, _) = url.split_once('?').unwrap_or((url, ""));
    let pairs = urlencoded::query_pairs(url).unwrap();
    let mut found = false;
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(n, v)| {
            if n == name {
                found = true;
                (n.as_str(), value)
            } else {
                (n.as_str(), v.as_str())
            }
        })
        .collect();
    assert!(found, "no `{name}` in {url}");
    format!("{base}?{}", urlencoded::encode_pairs(&pairs))
}

/// Query parameter `name` of `url`.
pub fn query(url: &str, name: &str) -> Option<String> {
    let pairs = urlencoded::query_pairs(url)?;
    urlencoded::value(&pairs, name).map(str::to_owned)
}

pub fn now_secs() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The header and claims of a compact JWT, unverified.
pub fn jwt_parts(token: &str) -> (Value, Value) {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "not a JWT: {token}");
    let decode = |part: &str| -> Value {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
    };
    (decode(parts[0]), decode(parts[1]))
}

/// An RS256 JWT with `header` and `claims`, signed with the private JWK `jwk`.
pub fn sign_rs256(jwk: &Value, header: &Value, claims: &Value) -> String {
    let number = |name: &str| {
        BigUint::from_bytes_be(&URL_SAFE_NO_PAD.decode(jwk[name].as_str().unwrap()).unwrap())
    };
    let key = RsaPrivateKey::from_components(
        number("n"),
        number("e"),
        number("d"),
        vec![number("p"), number("q")],
    )
    .unwrap();
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string())
    );
    let signature = key
        .sign(
            Pkcs1v15Sign::new::<Sha256>(),
            &Sha256::digest(input.as_bytes()),
        )
        .unwrap();
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature))
}

/// `token`'s claims changed by `edit`, signed again with `jwk` under header `kid`.
pub fn resign(token: &str, jwk: &Value, kid: &str, edit: impl FnOnce(&mut Value)) -> String {
    let (_, mut claims) = jwt_parts(token);
    edit(&mut claims);
    sign_rs256(
        jwk,
        &json!({ "alg": "RS256", "kid": kid, "typ": "JWT" }),
        &claims,
    )
}

/// A new private JWK that the gateway does not know.
pub fn foreign_jwk() -> Value {
    edge_access_token::generate_signing_jwk().unwrap()
}

/// Waits until the worker log has `needle` and returns the line.
pub fn log_line(stack: &Stack, needle: &str) -> String {
    let log = stack
        .wait_for_log(needle, Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    log.lines()
        .find(|line| line.contains(needle))
        .unwrap_or_default()
        .to_owned()
}

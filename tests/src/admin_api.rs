//! The management API (`/cdn-cgi/access/api`) as the end-to-end tests call it: two admin
//! tokens (one that writes, one that only reads), documents whose apps let anyone through at
//! a path of the worker's host, and a client that polls until a change decides requests.

#![expect(
    clippy::panic,
    reason = "a client for tests: a failed check fails the test that made it"
)]

use std::time::{Duration, Instant};

use entra_emulator::client::{HttpClient, HttpResponse};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::stack::Stack;

/// The admin token with the `write` scope (named `ops`).
pub const WRITE_TOKEN: &str = "admin-write-token-6d1f0b3a9c2e4f57";
/// The admin token with the `read` scope (named `auditor`).
pub const READ_TOKEN: &str = "admin-read-token-0a7c3e5b9d1f2468";
/// The documents' identity provider id.
pub const IDP: &str = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
/// How long a change may take to be seen: the refresh the stacks set (2 s), with room for a
/// loaded machine. Polled, never waited out.
pub const VISIBLE_WITHIN: Duration = Duration::from_secs(60);

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The `ADMIN_TOKENS` value for [`WRITE_TOKEN`] and [`READ_TOKEN`].
pub fn admin_tokens() -> String {
    format!(
        "ops:write:{} auditor:read:{}",
        hex(&Sha256::digest(WRITE_TOKEN.as_bytes())),
        hex(&Sha256::digest(READ_TOKEN.as_bytes()))
    )
}

/// A document whose apps let anyone through at `/{path}` for each of `paths`; `padding`
/// lengthens every app's name.
pub fn document(host: &str, paths: &[String], padding: usize) -> Value {
    let apps: Vec<Value> = paths
        .iter()
        .map(|path| {
            json!({ "id": path, "name": format!("App {path} {}", "x".repeat(padding)),
                "domain": format!("{host}/{path}"), "aud": format!("aud-{path}"),
                "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] })
        })
        .collect();
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": IDP, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}" } }],
        "apps": apps
    })
}

/// [`document`] for a running stack (its host and the emulator's ids filled in).
///
/// # Panics
///
/// Never for the documents [`document`] writes.
pub fn stored(stack: &Stack, paths: &[&str], padding: usize) -> Value {
    let paths: Vec<String> = paths.iter().map(|p| (*p).to_owned()).collect();
    let text = document(&stack.addr().to_string(), &paths, padding)
        .to_string()
        .replace("${TENANT_ID}", stack.emulator().tenant_id())
        .replace("${CLIENT_ID}", stack.emulator().client_id());
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A client of a stack's management API; its checks panic (it serves tests).
#[derive(Debug)]
pub struct Api<'a> {
    stack: &'a Stack,
    http: HttpClient,
}

impl Api<'_> {
    /// The stack it speaks to.
    pub fn stack(&self) -> &Stack {
        self.stack
    }

    /// A client of `stack`.
    pub fn new(stack: &Stack) -> Api<'_> {
        Api {
            stack,
            http: HttpClient::new(),
        }
    }

    /// `method path` under the API's prefix, with `token` as the bearer.
    ///
    /// # Panics
    ///
    /// When the request cannot be made.
    pub fn call(&self, method: &str, path: &str, token: Option<&str>, body: &[u8]) -> HttpResponse {
        self.call_with(method, path, token, &[], body)
    }

    /// [`Api::call`] with more request headers.
    ///
    /// # Panics
    ///
    /// When the request cannot be made.
    pub fn call_with(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        extra: &[(&str, &str)],
        body: &[u8],
    ) -> HttpResponse {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(auth) = &auth {
            headers.push(("authorization", auth.as_str()));
        }
        headers.extend_from_slice(extra);
        let answer = self.http.request(
            method,
            &format!("{}/cdn-cgi/access/api{path}", self.stack.url()),
            &headers,
            body,
        );
        match answer {
            Ok(answer) => answer,
            Err(e) => panic!("{method} {path}: {e}"),
        }
    }

    /// `GET path` with the read token: a successful envelope.
    ///
    /// # Panics
    ///
    /// When the answer is not a 200 success.
    pub fn get(&self, path: &str) -> Value {
        let answer = self.call("GET", path, Some(READ_TOKEN), &[]);
        assert_eq!(answer.status, 200, "GET {path}: {answer:?}");
        let body = answer.json().unwrap_or(Value::Null);
        assert_eq!(body.get("success"), Some(&Value::Bool(true)), "{body}");
        body
    }

    /// `PUT /config` with the write token.
    pub fn put(&self, document: &Value, base: u64) -> HttpResponse {
        let body = json!({ "document": document, "base_version": base, "comment": "test" });
        self.call(
            "PUT",
            "/config",
            Some(WRITE_TOKEN),
            body.to_string().as_bytes(),
        )
    }

    /// [`Api::put`], which must succeed: the new version.
    ///
    /// # Panics
    ///
    /// When it does not.
    pub fn put_ok(&self, document: &Value, base: u64) -> u64 {
        let answer = self.put(document, base);
        assert_eq!(answer.status, 200, "{answer:?}");
        let body = answer.json().unwrap_or(Value::Null);
        body.pointer("/result/version")
            .and_then(Value::as_u64)
            .unwrap_or_default()
    }

    /// The active version (0: none stored).
    pub fn active(&self) -> u64 {
        self.get("/config")
            .pointer("/result/version")
            .and_then(Value::as_u64)
            .unwrap_or_default()
    }

    /// The status the gateway answers `GET path` with, without credentials.
    ///
    /// # Panics
    ///
    /// When the request cannot be made.
    pub fn status(&self, path: &str) -> u16 {
        match self.http.get(&format!("{}{path}", self.stack.url())) {
            Ok(answer) => answer.status,
            Err(e) => panic!("GET {path}: {e}"),
        }
    }

    /// Polls `path` until it answers `status`; how long that took.
    ///
    /// # Panics
    ///
    /// When it does not within [`VISIBLE_WITHIN`].
    pub fn until(&self, path: &str, status: u16) -> Duration {
        let started = Instant::now();
        loop {
            if self.status(path) == status {
                return started.elapsed();
            }
            assert!(
                started.elapsed() < VISIBLE_WITHIN,
                "{path} did not answer {status} within {VISIBLE_WITHIN:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

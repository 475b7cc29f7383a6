//! The demo origin: an echo server behind the gateway. Any method on any path answers 200
//! with JSON describing the request it received, so tests can see exactly what the worker
//! forwarded (`Cf-Access-Jwt-Assertion`, stripped client headers, the body):
//!
//! ```json
//! { "method": "GET", "path": "/reports?q=1",
//!   "headers": { "host": "…", "cf-access-authenticated-user-email": "ada@example.com" },
//!   "body": "" }
//! ```
//!
//! Header names are lowercased; repeated headers are joined with `", "`. The body is read as
//! UTF-8 (invalid bytes replaced).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde_json::{json, Map, Value};

use entra_emulator::server::{read_body, respond_json, Server};

/// A running demo origin on 127.0.0.1; it stops when dropped.
#[derive(Debug)]
pub struct Origin {
    url: String,
    requests: Arc<AtomicU64>,
    server: Server,
}

impl Origin {
    /// Starts on a free port of 127.0.0.1.
    ///
    /// # Errors
    ///
    /// When no port can be bound.
    pub fn start() -> std::io::Result<Self> {
        Self::start_on(None)
    }

    /// Starts on 127.0.0.1:`port`, or a free port when `None`.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound.
    pub fn start_on(port: Option<u16>) -> std::io::Result<Self> {
        let requests = Arc::new(AtomicU64::new(0));
        let counted = Arc::clone(&requests);
        let server = Server::start(
            "demo-origin",
            port,
            Arc::new(move |request| {
                counted.fetch_add(1, Ordering::SeqCst);
                echo(request);
            }),
        )?;
        Ok(Self {
            url: server.url(),
            requests,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the origin listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr()
    }

    /// How many requests reached the origin: a denied request must leave this unchanged.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }
}

/// Answers with the description of `request`.
fn echo(mut request: tiny_http::Request) {
    let body = match read_body(&mut request) {
        Ok(Some(body)) => String::from_utf8_lossy(&body).into_owned(),
        Ok(None) => "(body over 1 MiB, not read)".to_owned(),
        Err(error) => format!("(body unreadable: {error})"),
    };
    let mut headers: Map<String, Value> = Map::new();
    for header in request.headers() {
        let name = header.field.as_str().as_str().to_ascii_lowercase();
        let value = header.value.as_str().to_owned();
        match headers.get_mut(&name) {
            Some(Value::String(existing)) => {
                existing.push_str(", ");
                existing.push_str(&value);
            }
            _ => {
                headers.insert(name, Value::String(value));
            }
        }
    }
    let description = json!({
        "method": request.method().as_str(),
        "path": request.url(),
        "headers": headers,
        "body": body,
    });
    respond_json(request, 200, &[], &description);
}

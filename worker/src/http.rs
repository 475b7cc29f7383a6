//! Outbound HTTP (a `GET` with a timeout; `POST`s of forms and JSON to Entra and Graph) and
//! the small request and response helpers the gateway's own endpoints share.

use std::time::Duration;

use futures_util::future::{select, Either};
use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{AbortController, Delay, Fetch, Headers, Method, Request, RequestInit, Response, Url};

/// Why a `GET` gave no answer to use.
pub enum Failure {
    /// Failed outright (the connection dropped, no HTTP answer) or with a 5xx: worth one
    /// more try at once.
    Transient(String),
    /// Timed out, refused (4xx), too large: not tried again at once.
    Final(String),
}

/// `GET url`, abandoned after `timeout`; the answer's bytes when it is 200 and at most
/// `max_bytes` long.
pub async fn get(url: &str, limit: Duration, max_bytes: usize) -> Result<Vec<u8>, Failure> {
    let parsed = Url::parse(url).map_err(|e| Failure::Final(format!("{url}: {e}")))?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let fetch = Fetch::Url(parsed);
    let request = Box::pin(fetch.send_with_signal(&signal));
    let timeout = Box::pin(Delay::from(limit));
    let mut response = match select(request, timeout).await {
        Either::Left((response, _)) => {
            response.map_err(|e| Failure::Transient(format!("{url}: {e}")))?
        }
        Either::Right(_) => {
            controller.abort();
            return Err(Failure::Final(format!(
                "{url}: no answer within {} s",
                limit.as_secs()
            )));
        }
    };
    let status = response.status_code();
    if status != 200 {
        let why = format!("{url}: HTTP {status}");
        return Err(if (500..600).contains(&status) {
            Failure::Transient(why)
        } else {
            Failure::Final(why)
        });
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| Failure::Transient(format!("{url}: {e}")))?;
    if bytes.len() > max_bytes {
        return Err(Failure::Final(format!(
            "{url}: larger than {max_bytes} bytes"
        )));
    }
    Ok(bytes)
}

/// Why a `POST` to Entra (token endpoint, Graph) gave no answer to use.
#[derive(Debug)]
pub enum Exchange {
    /// No answer: the connection failed or broke off.
    Unreachable(String),
    /// An answer other than 200 (`error` from its JSON body, if any, and the `AADSTS…` code
    /// its `error_description` starts with, if any).
    Status {
        status: u16,
        error: String,
        code: Option<String>,
    },
}

impl std::fmt::Display for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Exchange::Unreachable(why) => write!(f, "unreachable: {why}"),
            Exchange::Status {
                status,
                error,
                code: Some(code),
            } => write!(f, "HTTP {status} {error} ({code})"),
            Exchange::Status { status, error, .. } => write!(f, "HTTP {status} {error}"),
        }
    }
}

/// `POST url` with `body`: the answer's bytes when it is 200.
pub async fn post(
    url: &str,
    content_type: &str,
    body: &str,
    bearer: Option<&str>,
) -> Result<Vec<u8>, String> {
    exchange(url, content_type, body, bearer)
        .await
        .map_err(|e| e.to_string())
}

/// [`post`] that tells an unreachable service from an answer refusing the request.
pub async fn exchange(
    url: &str,
    content_type: &str,
    body: &str,
    bearer: Option<&str>,
) -> Result<Vec<u8>, Exchange> {
    let unreachable = |e: &dyn std::fmt::Display| Exchange::Unreachable(e.to_string());
    let headers = Headers::new();
    headers
        .set("Content-Type", content_type)
        .map_err(|e| unreachable(&e))?;
    headers
        .set("Accept", "application/json")
        .map_err(|e| unreachable(&e))?;
    if let Some(token) = bearer {
        headers
            .set("Authorization", &format!("Bearer {token}"))
            .map_err(|e| unreachable(&e))?;
    }
    let mut init = RequestInit::new();
    init.with_method(Method::Post)
        .with_headers(headers)
        .with_body(Some(JsValue::from_str(body)));
    let request = Request::new_with_init(url, &init).map_err(|e| unreachable(&e))?;
    let mut response = Fetch::Request(request)
        .send()
        .await
        .map_err(|e| Exchange::Unreachable(format!("{url}: {e}")))?;
    let status = response.status_code();
    let bytes = response.bytes().await.map_err(|e| unreachable(&e))?;
    if status != 200 {
        let detail: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let error = detail.get("error").and_then(Value::as_str).unwrap_or("");
        let code = detail
            .get("error_description")
            .and_then(Value::as_str)
            .and_then(entra_error_code);
        return Err(Exchange::Status {
            status,
            error: error.to_owned(),
            code,
        });
    }
    Ok(bytes)
}

/// The `AADSTS` code an Entra `error_description` starts with (`AADSTS7000215: Invalid
/// client secret…` → `AADSTS7000215`).
pub fn entra_error_code(description: &str) -> Option<String> {
    let digits = description.trim_start().strip_prefix("AADSTS")?;
    let end = digits
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(digits.len());
    let number = digits
        .get(..end)
        .filter(|d| !d.is_empty() && d.len() <= 9)?;
    Some(format!("AADSTS{number}"))
}

/// The value of query parameter `name` of `url`.
pub fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// `scheme://host[:port]` of `url`.
pub fn origin_of(url: &Url) -> String {
    match url.port() {
        Some(port) => format!("{}://{}:{port}", url.scheme(), url.host_str().unwrap_or("")),
        None => format!("{}://{}", url.scheme(), url.host_str().unwrap_or("")),
    }
}

/// A `302` to `location`, not cached, setting `cookies`.
pub fn redirect(location: &str, cookies: &[String]) -> Response {
    let headers = Headers::new();
    let _ = headers.set("Location", location);
    let _ = headers.set("Cache-Control", "no-store");
    for c in cookies {
        let _ = headers.append("Set-Cookie", c);
    }
    Response::builder()
        .with_status(302)
        .with_headers(headers)
        .empty()
}

//! Forwarding an allowed request to the origin, with every client-supplied `Cf-Access-*`
//! header removed and the gateway's own identity headers set.

use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response};

use crate::config::Gateway;
use crate::error::GatewayError;

/// Sends `request` to the origin and returns its response.
///
/// # Errors
/// [`GatewayError::Origin`] when the origin cannot be reached.
pub async fn forward(
    request: Request,
    gateway: &Gateway,
    email: Option<&str>,
    assertion: Option<&str>,
) -> Result<Response, GatewayError> {
    let url = request.url()?;
    let target = match &gateway.origin {
        Some(origin) => {
            let mut t = origin.clone();
            t.set_path(url.path());
            t.set_query(url.query());
            t
        }
        None => url,
    };
    let headers = Headers::new();
    for (name, value) in request.headers().entries() {
        let lower = name.to_ascii_lowercase();
        // Only the gateway speaks for Access; `host` follows the target URL.
        if lower.starts_with("cf-access-") || lower == "host" {
            continue;
        }
        headers.append(&name, &value)?;
    }
    if let Some(email) = email {
        headers.set("Cf-Access-Authenticated-User-Email", email)?;
    }
    if let Some(token) = assertion {
        headers.set("Cf-Access-Jwt-Assertion", token)?;
    }
    let method = request.method();
    let mut init = RequestInit::new();
    init.with_method(method.clone())
        .with_headers(headers)
        .with_redirect(RequestRedirect::Manual);
    if !matches!(method, Method::Get | Method::Head) {
        init.with_body(request.inner().body().map(JsValue::from));
    }
    let outbound = Request::new_with_init(target.as_str(), &init)?;
    Fetch::Request(outbound)
        .send()
        .await
        .map_err(|e| GatewayError::Origin(format!("{}: {e}", target.host_str().unwrap_or("?"))))
}

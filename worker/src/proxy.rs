//! Forwarding an allowed request to the origin: exactly the path that was decided, every
//! client-supplied `Cf-Access-*` and routing header removed, the gateway's own identity and
//! `X-Forwarded-*` headers set.

use wasm_bindgen::JsValue;
use worker::{Fetch, Headers, Method, Request, RequestInit, RequestRedirect, Response};

use crate::config::Gateway;
use crate::error::{GatewayError, Stop};
use crate::raw_url::RawUrl;
use crate::refusal::Refusal;

/// Request headers that tell an origin (or a proxy in front of it) to route, rewrite or trust
/// something other than what the gateway decided. A client never gets to set them.
const ROUTING_HEADERS: &[&str] = &[
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-host",
    "x-forwarded-proto",
    "x-forwarded-port",
    "x-forwarded-prefix",
    "x-forwarded-server",
    "x-forwarded-uri",
    "x-forwarded-path",
    "x-original-url",
    "x-original-uri",
    "x-original-host",
    "x-original-method",
    "x-rewrite-url",
    "x-host",
    "x-real-ip",
    "x-client-ip",
    "x-cluster-client-ip",
    "client-ip",
    "true-client-ip",
    "x-http-method-override",
    "x-http-method",
    "x-method-override",
    "x-envoy-original-path",
    "x-envoy-original-host",
];

/// Whether the gateway drops this request header before forwarding.
fn dropped(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    // Only the gateway speaks for Access; `host` follows the target URL.
    lower.starts_with("cf-access-") || lower == "host" || ROUTING_HEADERS.contains(&&*lower)
}

/// Sends `request` to the origin — at `url`'s path and query, as decided — and returns its
/// response.
///
/// # Errors
/// [`GatewayError::Origin`] when the origin cannot be reached; [`Refusal::InvalidPath`]
/// when the outbound URL would not carry the decided path unchanged.
pub async fn forward(
    request: Request,
    gateway: &Gateway,
    url: &RawUrl,
    email: Option<&str>,
    assertion: Option<&str>,
) -> Result<Response, Stop> {
    let Outbound { request, host } = outbound(&request, gateway, url, email, assertion)?;
    Fetch::Request(request)
        .send()
        .await
        .map_err(|e| Stop::Failed(GatewayError::Origin(format!("{host}: {e}"))))
}

/// The request to send to the origin, and the origin's host name (for errors).
pub struct Outbound {
    pub request: Request,
    pub host: String,
}

/// What [`forward`] sends for `request`: the decided path and query on the origin, the
/// headers cleaned and set, the body passed on.
///
/// # Errors
/// [`Refusal::InvalidPath`] when the outbound URL would not carry the decided path
/// unchanged; [`GatewayError`] when the runtime refuses the request.
pub fn outbound(
    request: &Request,
    gateway: &Gateway,
    url: &RawUrl,
    email: Option<&str>,
    assertion: Option<&str>,
) -> Result<Outbound, Stop> {
    let target = match &gateway.origin {
        Some(origin) => format!(
            "{}{}",
            origin.origin().ascii_serialization(),
            url.path_and_query()
        ),
        None => format!("{}://{}{}", url.scheme, url.authority, url.path_and_query()),
    };
    let inbound = request.headers();
    // Copied by the runtime, then the dropped ones removed by name: the values (a bearer
    // token, cookies) never cross into Wasm and back.
    let headers = Headers(
        web_sys::Headers::new_with_headers(&inbound.0)
            .map_err(|e| GatewayError::Internal(format!("copying the headers: {e:?}")))?,
    );
    for name in inbound.keys() {
        if dropped(&name) {
            headers.delete(&name)?;
        }
    }
    if let Some(ip) = inbound.get("CF-Connecting-IP")? {
        headers.set("X-Forwarded-For", ip.trim())?;
    }
    headers.set("X-Forwarded-Proto", &url.scheme)?;
    headers.set("X-Forwarded-Host", &url.authority)?;
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
    let outbound = Request::new_with_init(&target, &init)?;
    // The runtime parses the URL again; what it will send must still be what was decided.
    let sent = RawUrl::parse(&outbound.inner().url());
    if sent.as_ref().map(|u| u.path.as_str()) != Some(url.path.as_str()) {
        return Err(Stop::Refused(Refusal::InvalidPath(format!(
            "`{}` would reach the origin as `{}`",
            url.path,
            sent.map(|u| u.path).unwrap_or_default()
        ))));
    }
    let host = match &gateway.origin {
        Some(origin) => origin.host_str().unwrap_or("?").to_owned(),
        None => url.authority.clone(),
    };
    Ok(Outbound {
        request: outbound,
        host,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routing_headers_are_dropped() {
        for name in [
            "X-Original-URL",
            "X-Rewrite-URL",
            "X-Forwarded-Host",
            "X-Forwarded-Prefix",
            "Forwarded",
            "X-Real-IP",
            "X-HTTP-Method-Override",
            "x-forwarded-for",
            "Cf-Access-Jwt-Assertion",
            "cf-access-authenticated-user-email",
            "Host",
        ] {
            assert!(dropped(name), "{name}");
        }
        for name in [
            "Accept",
            "Content-Type",
            "Authorization",
            "Cookie",
            "X-Request-Id",
        ] {
            assert!(!dropped(name), "{name}");
        }
    }
}

//! What a request says about itself, read once: its id, method and target, the client's IP
//! address and country, a verified client certificate, and whether a person's browser sent it.

use policy_core::{ClientIp, Country, Mtls, Request as PolicyRequest};
use worker::{Method, Request};

use crate::crypto;
use crate::distinguished_name;
use crate::raw_url::RawUrl;
use crate::time::UnixMillis;

/// The request's own facts.
pub struct Context {
    /// The request's `Cf-Ray` (else a random id).
    pub id: String,
    pub method: String,
    /// The URL as received; `None` when it is not an http(s) URL.
    pub url: Option<RawUrl>,
    /// The raw target (authority and path as received, no query), for the log.
    pub target: String,
    /// `CF-Connecting-IP`.
    pub ip: Option<ClientIp>,
    /// The country Cloudflare places the client in, as it says it.
    pub country: Option<String>,
    /// A client certificate Cloudflare verified.
    pub mtls: Option<Mtls>,
    /// When the request arrived (the isolate's clock): the instant it is decided at.
    pub arrived: UnixMillis,
    /// A person's browser navigating (not an API client, not an XHR): sent to sign in rather
    /// than answered 401.
    pub browser: bool,
}

/// The id of `request` its log lines and pages carry: its `Cf-Ray`, else a random id.
pub fn request_id(request: &Request) -> String {
    request
        .headers()
        .get("cf-ray")
        .ok()
        .flatten()
        .unwrap_or_else(|| crypto::random_uuid().unwrap_or_default())
}

impl Context {
    /// Reads `request`.
    pub fn read(request: &Request) -> Context {
        let headers = request.headers();
        let header = |name: &str| headers.get(name).ok().flatten();
        let url = RawUrl::of(request);
        let target = url.as_ref().map(RawUrl::target).unwrap_or_default();
        let cf = request.cf();
        let method = request.method();
        let xhr = header("X-Requested-With")
            .unwrap_or_default()
            .eq_ignore_ascii_case("XMLHttpRequest");
        Context {
            id: request_id(request),
            method: method.to_string(),
            url,
            target,
            ip: header("CF-Connecting-IP").and_then(|ip| ClientIp::parse(ip.trim()).ok()),
            country: cf.and_then(|cf| cf.country()),
            mtls: cf.and_then(|cf| cf.tls_client_auth()).and_then(|tls| {
                (tls.cert_verified() == "SUCCESS").then(|| Mtls {
                    common_name: distinguished_name::common_name(&tls.cert_subject_dn())
                        .map(Into::into),
                })
            }),
            arrived: UnixMillis::now(),
            browser: matches!(method, Method::Get | Method::Head)
                && !xhr
                && header("Accept").unwrap_or_default().contains("text/html"),
        }
    }

    /// The country, as the policies read it.
    pub fn policy_country(&self) -> Option<Country> {
        self.country.as_deref().and_then(|c| Country::parse(c).ok())
    }

    /// What a policy may ask of the network: the IP address and country.
    pub fn network_into(&self, request: &mut PolicyRequest) {
        request.ip = self.ip;
        request.country = self.policy_country();
    }
}

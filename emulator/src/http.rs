//! The emulator's HTTP endpoints (see the module documentation for the list).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use tiny_http::Method;

use super::{graph, lock, signin, token, ArmedFault, Fault, Shared, TokenRequest};
use crate::server::{answer_broken, read_body, respond, respond_json};

/// Entra's JWKS and metadata answers are cacheable for a day.
const CACHEABLE: [(&str, &str); 2] = [
    ("Cache-Control", "max-age=86400, private"),
    ("Access-Control-Allow-Origin", "*"),
];

/// Answers one request.
pub(super) fn handle(shared: &Shared, mut request: tiny_http::Request) {
    let url = request.url().to_owned();
    let path = url.split('?').next().unwrap_or_default();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let method = request.method().clone();
    // The partner tenant answers its own paths, and Graph for its own tokens.
    let partner = match segments.as_slice() {
        ["graph", ..] => token_tenant(&request)
            .and_then(|tid| shared.partners.iter().find(|p| known_tenant(p, &tid))),
        [tenant, _, ..] => shared.partners.iter().find(|p| known_tenant(p, tenant)),
        _ => None,
    };
    if let Some(partner) = partner {
        return handle(partner, request);
    }
    match (&method, segments.as_slice()) {
        (Method::Get, [""]) => index(shared, request),
        (Method::Get, [tenant, ".well-known", "openid-configuration"]) => {
            discovery(shared, request, tenant, 1);
        }
        (Method::Get, [tenant, "v2.0", ".well-known", "openid-configuration"]) => {
            discovery(shared, request, tenant, 2);
        }
        (Method::Get, [tenant, "discovery", "keys"] | [tenant, "discovery", "v2.0", "keys"]) => {
            jwks(shared, request, tenant);
        }
        (
            Method::Get | Method::Post,
            [tenant, "oauth2", "v2.0", "authorize"] | [tenant, "oauth2", "authorize"],
        ) => signin::authorize(shared, request, tenant),
        (_, [tenant, "oauth2", "v2.0", "token"]) => signin::token(shared, request, tenant, 2),
        (_, [tenant, "oauth2", "token"]) => signin::token(shared, request, tenant, 1),
        (_, ["graph", rest @ ..]) => graph::handle(shared, request, path, rest),
        (Method::Post, ["_admin", action]) => {
            let body = match read_body(&mut request) {
                Ok(Some(body)) => body,
                Ok(None) => return admin_error(request, 413, "body too large"),
                Err(error) => return admin_error(request, 400, &error.to_string()),
            };
            let body: Value = if body.iter().all(u8::is_ascii_whitespace) {
                json!({})
            } else {
                match serde_json::from_slice(&body) {
                    Ok(body) => body,
                    Err(error) => {
                        return admin_error(request, 400, &format!("invalid JSON: {error}"))
                    }
                }
            };
            match *action {
                "token" => admin_token(shared, request, body),
                "rotate" => admin_rotate(shared, request, &body),
                "fault" => admin_fault(shared, request, &body),
                _ => not_found(request, path),
            }
        }
        (Method::Get, ["_admin", "stats"]) => {
            let stats = stats(shared);
            respond_json(request, 200, &[], &stats);
        }
        (Method::Get, ["_admin", "users"]) => {
            let users = users(shared);
            respond_json(request, 200, &[], &users);
        }
        _ => not_found(request, path),
    }
}

/// A page for people: what this is, the endpoints and the users.
fn index(shared: &Shared, request: tiny_http::Request) {
    let base = &shared.url;
    let tid = &shared.fixtures.tenant_id;
    let mut text = format!(
        "Entra ID emulator (edge-access tests)\n\n\
         tenant   {tid}\n\
         client   {client}\n\
         secret   {secret}\n\n\
         GET  {base}/{tid}/.well-known/openid-configuration\n\
         GET  {base}/{tid}/v2.0/.well-known/openid-configuration\n\
         GET  {base}/{tid}/discovery/keys\n\
         GET  {base}/{tid}/discovery/v2.0/keys\n\
         GET  {base}/{tid}/oauth2/v2.0/authorize?client_id=…&response_type=code&redirect_uri=…&scope=openid  (sign-in page)\n\
         POST {base}/{tid}/oauth2/v2.0/token   grant_type=authorization_code&code=…&redirect_uri=…&client_id=…&client_secret=…\n\
         POST {base}/graph/v1.0/me/getMemberObjects   {{\"securityEnabledOnly\": false}}\n\
         GET  {base}/graph/v1.0/me/transitiveMemberOf?$top=100\n\
         POST {base}/_admin/token   {{\"user\": \"ada\", \"version\": 2}}\n\
         POST {base}/_admin/rotate  {{\"keep_previous\": true}}\n\
         POST {base}/_admin/fault   {{\"jwks\": \"none|error500|slow|invalid_json|throttled|broken\", \"delay_ms\": 2000, \"times\": 1}}  (or \"discovery\", \"graph\": …)\n\
         GET  {base}/_admin/stats\n\
         GET  {base}/_admin/users\n\nusers\n",
        client = shared.fixtures.client_id,
        secret = shared.fixtures.client_secret,
    );
    for user in &shared.fixtures.users {
        text.push_str(&format!("  {:<10} {}\n", user.key, user.upn));
    }
    respond(
        request,
        200,
        "text/plain; charset=utf-8",
        &[],
        text.into_bytes(),
    );
}

/// OIDC discovery, v1 or v2.
fn discovery(shared: &Shared, request: tiny_http::Request, tenant: &str, version: u8) {
    if !known_tenant(shared, tenant) {
        return invalid_tenant(shared, request, tenant);
    }
    shared.discovery_fetches.fetch_add(1, Ordering::SeqCst);
    let fault = lock(&shared.discovery_fault).take();
    let Some(request) = injected(shared, request, fault) else {
        return;
    };
    let base = &shared.url;
    let tid = &shared.fixtures.tenant_id;
    let query = crate::urlencoded::query_pairs(request.url()).unwrap_or_default();
    let appid = crate::urlencoded::value(&query, "appid")
        .map(|appid| format!("?appid={}", crate::urlencoded::encode(appid)))
        .unwrap_or_default();
    let document = if version == 1 {
        json!({
            "issuer": token::v1_issuer(tid),
            "jwks_uri": format!("{base}/{tid}/discovery/keys{appid}"),
            "authorization_endpoint": format!("{base}/{tid}/oauth2/authorize"),
            "token_endpoint": format!("{base}/{tid}/oauth2/token"),
            "end_session_endpoint": format!("{base}/{tid}/oauth2/logout"),
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid", "upn",
                                 "unique_name", "name", "amr", "groups", "nonce"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        })
    } else {
        json!({
            "issuer": token::v2_issuer(base, tid),
            "jwks_uri": format!("{base}/{tid}/discovery/v2.0/keys{appid}"),
            "authorization_endpoint": format!("{base}/{tid}/oauth2/v2.0/authorize"),
            "token_endpoint": format!("{base}/{tid}/oauth2/v2.0/token"),
            "end_session_endpoint": format!("{base}/{tid}/oauth2/v2.0/logout"),
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "response_modes_supported": ["query", "fragment", "form_post"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "code_challenge_methods_supported": ["S256"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "nbf", "oid", "tid",
                                 "preferred_username", "name", "email", "groups", "nonce"],
            "request_uri_parameter_supported": false,
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
        })
    };
    respond_json(request, 200, &CACHEABLE, &document);
}

/// The published keys, or the injected fault.
fn jwks(shared: &Shared, request: tiny_http::Request, tenant: &str) {
    if !known_tenant(shared, tenant) {
        return invalid_tenant(shared, request, tenant);
    }
    shared.jwks_fetches.fetch_add(1, Ordering::SeqCst);
    let fault = lock(&shared.fault).take();
    let Some(request) = injected(shared, request, fault) else {
        return;
    };
    let query = crate::urlencoded::query_pairs(request.url()).unwrap_or_default();
    let keys = match crate::urlencoded::value(&query, "appid") {
        None => shared.jwks(),
        Some(appid) => match shared.app_jwks(appid) {
            Ok(keys) => keys,
            Err(error) => {
                let body = entra_error(shared, "server_error", 90033, &error.to_string());
                return respond_json(request, 500, &[], &body);
            }
        },
    };
    respond_json(request, 200, &CACHEABLE, &keys);
}

/// Answers `request` as `fault` says (a discovery document or JWKS request), or hands it
/// back to be answered normally (after the delay of [`Fault::Slow`]).
fn injected(
    shared: &Shared,
    request: tiny_http::Request,
    fault: Fault,
) -> Option<tiny_http::Request> {
    match fault {
        Fault::None => {}
        Fault::Slow(delay) => std::thread::sleep(delay),
        Fault::Error500 => {
            let body = entra_error(
                shared,
                "temporarily_unavailable",
                90033,
                "A transient error has occurred. Please try again.",
            );
            respond_json(request, 500, &[], &body);
            return None;
        }
        Fault::InvalidJson => {
            respond(
                request,
                200,
                "application/json; charset=utf-8",
                &CACHEABLE,
                b"{\"keys\": [".to_vec(),
            );
            return None;
        }
        Fault::Throttled => {
            let body = entra_error(
                shared,
                "temporarily_unavailable",
                90033,
                "Too many requests. Please retry after the time in Retry-After.",
            );
            respond_json(request, 429, &[("Retry-After", "1")], &body);
            return None;
        }
        Fault::Broken => {
            answer_broken(request);
            return None;
        }
    }
    Some(request)
}

fn admin_token(shared: &Shared, request: tiny_http::Request, body: Value) {
    let token_request: TokenRequest = match serde_json::from_value(body) {
        Ok(token_request) => token_request,
        Err(error) => return admin_error(request, 400, &format!("invalid token request: {error}")),
    };
    match shared.mint(&token_request) {
        Ok(token) => {
            let lifetime = token_request
                .lifetime_secs
                .unwrap_or(token::DEFAULT_LIFETIME_SECS);
            let answer = json!({
                "token_type": "Bearer",
                "expires_in": lifetime,
                "access_token": token,
            });
            respond_json(request, 200, &[], &answer);
        }
        Err(error) => admin_error(request, 400, &error.to_string()),
    }
}

fn admin_rotate(shared: &Shared, request: tiny_http::Request, body: &Value) {
    let keep_previous = match body.get("keep_previous") {
        None => true,
        Some(Value::Bool(keep)) => *keep,
        Some(_) => return admin_error(request, 400, "`keep_previous` must be a boolean"),
    };
    match shared.rotate_keys(keep_previous) {
        Ok(kid) => respond_json(request, 200, &[], &json!({ "kid": kid })),
        Err(error) => admin_error(request, 500, &error.to_string()),
    }
}

/// `{"jwks": …}`, `{"discovery": …}` and/or `{"graph": …}`, with `delay_ms` for `slow` and
/// `times` to limit a JWKS or discovery fault to that many requests.
fn admin_fault(shared: &Shared, request: tiny_http::Request, body: &Value) {
    let delay = body
        .get("delay_ms")
        .and_then(Value::as_u64)
        .map(Duration::from_millis);
    let times = match body.get("times") {
        None => None,
        Some(times) => match times.as_u64() {
            Some(times) => Some(times),
            None => return admin_error(request, 400, "`times` must be a whole number"),
        },
    };
    let parse = |target: &str| -> Result<Option<Fault>, String> {
        let Some(name) = body.get(target) else {
            return Ok(None);
        };
        match (name.as_str(), delay) {
            (Some("none"), _) => Ok(Some(Fault::None)),
            (Some("error500"), _) => Ok(Some(Fault::Error500)),
            (Some("invalid_json"), _) => Ok(Some(Fault::InvalidJson)),
            (Some("throttled"), _) => Ok(Some(Fault::Throttled)),
            (Some("broken"), _) => Ok(Some(Fault::Broken)),
            (Some("slow"), Some(delay)) => Ok(Some(Fault::Slow(delay))),
            (Some("slow"), None) => Err("`slow` needs `delay_ms` (milliseconds)".into()),
            _ => Err(format!(
                "`{target}` must be one of `none`, `error500`, `slow`, `invalid_json`, \
                 `throttled`, `broken`"
            )),
        }
    };
    let (jwks, discovery, graph) = match (parse("jwks"), parse("discovery"), parse("graph")) {
        (Ok(None), Ok(None), Ok(None)) => {
            return admin_error(
                request,
                400,
                "name a fault for `jwks`, `discovery` and/or `graph`",
            )
        }
        (Ok(jwks), Ok(discovery), Ok(graph)) => (jwks, discovery, graph),
        (Err(error), _, _) | (_, Err(error), _) | (_, _, Err(error)) => {
            return admin_error(request, 400, &error)
        }
    };
    let armed = |fault| match times {
        Some(times) => ArmedFault::times(fault, times),
        None => ArmedFault::until_changed(fault),
    };
    if let Some(fault) = jwks {
        *lock(&shared.fault) = armed(fault);
    }
    if let Some(fault) = discovery {
        *lock(&shared.discovery_fault) = armed(fault);
    }
    if let Some(fault) = graph {
        *lock(&shared.graph_fault) = fault;
    }
    let answer = json!({
        "jwks": fault_name(lock(&shared.fault).fault),
        "discovery": fault_name(lock(&shared.discovery_fault).fault),
        "graph": fault_name(*lock(&shared.graph_fault)),
    });
    respond_json(request, 200, &[], &answer);
}

fn stats(shared: &Shared) -> Value {
    let keys = lock(&shared.keys);
    let published: Vec<&str> = keys.published().map(|key| key.kid()).collect();
    json!({
        "jwks_fetches": shared.jwks_fetches.load(Ordering::SeqCst),
        "discovery_fetches": shared.discovery_fetches.load(Ordering::SeqCst),
        "signing_kid": keys.signing.kid(),
        "published_kids": published,
        "jwks_fault": fault_name(lock(&shared.fault).fault),
        "discovery_fault": fault_name(lock(&shared.discovery_fault).fault),
        "graph_calls": shared.graph_calls.load(Ordering::SeqCst),
        "graph_member_lookups": shared.graph_member_lookups.load(Ordering::SeqCst),
        "client_credentials_issued": shared.client_credentials_issued.load(Ordering::SeqCst),
        "graph_fault": fault_name(*lock(&shared.graph_fault)),
        "codes_issued": lock(&shared.codes).issued,
        "codes_redeemed": lock(&shared.codes).redeemed_ok,
    })
}

fn users(shared: &Shared) -> Value {
    let users: Vec<Value> = shared
        .fixtures
        .users
        .iter()
        .map(|user| {
            json!({
                "key": user.key,
                "oid": user.oid,
                "name": user.name,
                "upn": user.upn,
                "mail": user.mail,
                "groups": shared.fixtures.transitive_groups(user).len(),
                "description": user.description,
            })
        })
        .collect();
    json!({
        "tenant_id": shared.fixtures.tenant_id,
        "client_id": shared.fixtures.client_id,
        "client_secret": shared.fixtures.client_secret,
        "users": users,
    })
}

fn fault_name(fault: Fault) -> String {
    match fault {
        Fault::None => "none".into(),
        Fault::Error500 => "error500".into(),
        Fault::Slow(delay) => format!("slow ({} ms)", delay.as_millis()),
        Fault::InvalidJson => "invalid_json".into(),
        Fault::Throttled => "throttled".into(),
        Fault::Broken => "broken".into(),
    }
}

/// The `tid` claim of the bearer token in `request`'s `Authorization`, unverified: only which
/// tenant's Graph checks the token (with that tenant's keys and issuer) depends on it.
fn token_tenant(request: &tiny_http::Request) -> Option<String> {
    use base64::Engine as _;
    let authorization = request
        .headers()
        .iter()
        .find(|h| h.field.equiv("Authorization"))?;
    let token = authorization.value.as_str().strip_prefix("Bearer ")?;
    let claims = token.split('.').nth(1)?;
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(claims)
        .ok()?;
    let claims: Value = serde_json::from_slice(&claims).ok()?;
    claims.get("tid")?.as_str().map(str::to_owned)
}

/// The fixture tenant, by id (GUIDs compare case-insensitively).
pub(super) fn known_tenant(shared: &Shared, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(&shared.fixtures.tenant_id)
}

/// What Entra answers for a tenant it does not know.
pub(super) fn invalid_tenant(shared: &Shared, request: tiny_http::Request, tenant: &str) {
    let body = entra_error(
        shared,
        "invalid_tenant",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
             and are signing into the correct cloud."
        ),
    );
    respond_json(request, 400, &[], &body);
}

fn not_found(request: tiny_http::Request, path: &str) {
    let body =
        json!({ "error": "not_found", "error_description": format!("no endpoint `{path}`") });
    respond_json(request, 404, &[], &body);
}

fn admin_error(request: tiny_http::Request, status: u16, message: &str) {
    respond_json(request, status, &[], &json!({ "error": message }));
}

/// An Entra-style error body: `error`, `error_description` (`AADSTS…` and trace lines),
/// `error_codes`, `timestamp`, `trace_id`, `correlation_id`, `error_uri`.
pub(super) fn entra_error(shared: &Shared, error: &str, code: u32, description: &str) -> Value {
    let timestamp = utc_timestamp(super::unix_now());
    let trace_id = random_guid();
    let correlation_id = random_guid();
    json!({
        "error": error,
        "error_description": format!(
            "AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} \
             Timestamp: {timestamp}"
        ),
        "error_codes": [code],
        "timestamp": timestamp,
        "trace_id": trace_id,
        "correlation_id": correlation_id,
        "error_uri": format!("{}/error?code={code}", shared.url),
    })
}

/// A random GUID (version 4).
pub(super) fn random_guid() -> String {
    use rsa::rand_core::RngCore;
    let mut bytes = [0_u8; 16];
    rsa::rand_core::OsRng.fill_bytes(&mut bytes);
    let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default().to_owned();
    format!(
        "{}-{}-4{}-a{}-{}",
        part(0..8),
        part(8..12),
        part(13..16),
        part(17..20),
        part(20..32)
    )
}

/// `YYYY-MM-DD hh:mm:ssZ`, as in Entra's error bodies.
pub(super) fn utc_timestamp(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_calendar_dates() {
        assert_eq!(utc_timestamp(0), "1970-01-01 00:00:00Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29 00:00:00Z");
        assert_eq!(utc_timestamp(1_795_444_740), "2026-11-23 14:39:00Z");
    }

    #[test]
    fn random_guids_look_like_guids() {
        let guid = random_guid();
        assert_eq!(guid.len(), 36);
        assert_eq!(guid.matches('-').count(), 4);
    }
}

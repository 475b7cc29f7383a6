//! Microsoft Graph's membership endpoints (reference §4.4) under `/graph/v1.0`, for the
//! groups of users whose tokens carry the overage claims instead of `groups`.
//!
//! Every call needs `Authorization: Bearer <Graph access token>`: RS256 by a key the JWKS
//! publishes, `aud` the Graph of the tenant's cloud, unexpired, this tenant, and a permission
//! that reads users. A delegated token (`scp`) may read only its user (`me`, their own object
//! id or UPN); an app-only token (`roles` and no `scp`, from the client credentials grant)
//! may read any user by object id or UPN, and has no `me`. What each needs is Microsoft's
//! permissions table of `getMemberObjects`: a user's own memberships `User.Read` (or more);
//! another user's, for an application, `User.ReadBasic.All` *and* `GroupMember.Read.All`, or
//! one of `User.Read.All`, `Directory.Read.All`, `User.ReadWrite.All`,
//! `Directory.ReadWrite.All`; another user's profile `User.ReadBasic.All` or more.

use std::collections::HashSet;
use std::sync::atomic::Ordering;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde_json::{json, Map, Value};
use tiny_http::Method;

use super::http::{random_guid, utc_timestamp};
use super::{lock, token, unix_now, Fault, Shared, GRAPH_APP_ID};
use crate::fixtures::User;
use crate::server::{read_body, respond, respond_json};
use crate::urlencoded;

/// `transitiveMemberOf` page size without `$top`.
const DEFAULT_PAGE: usize = 100;

/// The largest `$top` Graph accepts.
const MAX_PAGE: usize = 999;

/// Delegated permissions any one of which lets a user read their own memberships.
const READ_SCOPES: [&str; 5] = [
    "User.Read",
    "User.ReadBasic.All",
    "User.Read.All",
    "GroupMember.Read.All",
    "Directory.Read.All",
];

/// Application permissions (app roles) any one of which lets an application read any user's
/// memberships and profile.
const READ_ALL_ROLES: [&str; 4] = [
    "User.Read.All",
    "Directory.Read.All",
    "User.ReadWrite.All",
    "Directory.ReadWrite.All",
];

/// The least privileged pair of application permissions that reads another user's
/// memberships: both are needed.
const MEMBERSHIP_ROLES: [&str; 2] = ["User.ReadBasic.All", "GroupMember.Read.All"];

/// Who a valid Graph access token speaks for.
#[derive(Debug, Clone)]
enum Caller<'a> {
    /// A delegated token: this fixture user, through an application.
    User(&'a User),
    /// An app-only token with these roles (application permissions).
    Application(Vec<String>),
}

/// What a request reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reads {
    /// A user's profile.
    Profile,
    /// A user's memberships.
    Memberships,
}

/// Whether an application with `roles` may read `what` of any user.
fn application_may(roles: &[String], what: Reads) -> bool {
    let has = |role: &str| roles.iter().any(|granted| granted == role);
    READ_ALL_ROLES.iter().any(|role| has(role))
        || match what {
            Reads::Profile => has("User.ReadBasic.All"),
            Reads::Memberships => MEMBERSHIP_ROLES.iter().all(|role| has(role)),
        }
}

fn insufficient_privileges() -> GraphError {
    graph_error(
        403,
        "Authorization_RequestDenied",
        "Insufficient privileges to complete the operation.",
    )
}

/// A Graph error answer.
#[derive(Debug)]
struct GraphError {
    status: u16,
    code: &'static str,
    message: String,
}

fn graph_error(status: u16, code: &'static str, message: impl Into<String>) -> GraphError {
    GraphError {
        status,
        code,
        message: message.into(),
    }
}

fn unauthenticated(message: impl Into<String>) -> GraphError {
    graph_error(401, "InvalidAuthenticationToken", message)
}

fn bad_request(message: impl Into<String>) -> GraphError {
    graph_error(400, "Request_BadRequest", message)
}

/// Answers a request under `/graph/`; `rest` is the path after `graph`.
pub(super) fn handle(shared: &Shared, mut request: tiny_http::Request, path: &str, rest: &[&str]) {
    shared.graph_calls.fetch_add(1, Ordering::SeqCst);
    let membership = ["getMemberObjects", "getMemberGroups", "transitiveMemberOf"];
    if rest.iter().any(|segment| membership.contains(segment)) {
        shared.graph_member_lookups.fetch_add(1, Ordering::SeqCst);
    }
    let fault = *lock(&shared.graph_fault);
    match fault {
        Fault::None => {}
        Fault::Slow(delay) => std::thread::sleep(delay),
        Fault::Error500 => {
            let error = graph_error(
                500,
                "generalException",
                "General exception while processing.",
            );
            return answer_error(shared, request, &error);
        }
        Fault::Throttled => {
            let error = graph_error(
                429,
                "TooManyRequests",
                "Too many requests: retry after the time in Retry-After.",
            );
            return answer_error(shared, request, &error);
        }
        Fault::InvalidJson => {
            return respond(
                request,
                200,
                "application/json; charset=utf-8",
                &[],
                b"{\"value\": [".to_vec(),
            );
        }
        Fault::Broken => return crate::server::answer_broken(request),
    }
    let outcome = authenticate(shared, &request)
        .and_then(|caller| route(shared, &mut request, path, rest, caller));
    match outcome {
        Ok(body) => respond_json(request, 200, &[], &body),
        Err(error) => answer_error(shared, request, &error),
    }
}

/// Whom a valid Graph access token speaks for.
fn authenticate<'a>(
    shared: &'a Shared,
    request: &tiny_http::Request,
) -> Result<Caller<'a>, GraphError> {
    let authorization = request
        .headers()
        .iter()
        .find(|header| header.field.equiv("Authorization"))
        .map(|header| header.value.as_str())
        .ok_or_else(|| unauthenticated("Access token is empty."))?;
    let token = authorization
        .split_once(' ')
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| unauthenticated("Access token is empty (the Bearer scheme is required)."))?;
    let claims = verified_claims(shared, token)?;

    let audience = claims
        .get("aud")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let graph = shared.fixtures.cloud.graph_resource();
    let trailing = format!("{graph}/");
    if ![graph, trailing.as_str(), GRAPH_APP_ID].contains(&audience) {
        return Err(unauthenticated(format!(
            "Access token validation failure. Invalid audience `{audience}`."
        )));
    }
    let now = unix_now();
    let exp = claims.get("exp").and_then(Value::as_i64);
    if exp.is_none_or(|exp| exp <= now) {
        return Err(unauthenticated(
            "Lifetime validation failed, the token is expired.",
        ));
    }
    if claims
        .get("nbf")
        .and_then(Value::as_i64)
        .is_some_and(|nbf| nbf > now)
    {
        return Err(unauthenticated(
            "Lifetime validation failed, the token is not yet valid.",
        ));
    }
    let tid = &shared.fixtures.tenant_id;
    let token_tid = claims
        .get("tid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let issuer = claims
        .get("iss")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !token_tid.eq_ignore_ascii_case(tid)
        || (issuer != token::v1_issuer(tid) && issuer != token::v2_issuer(&shared.url, tid))
    {
        return Err(unauthenticated(
            "Access token validation failure. Invalid issuer or tenant.",
        ));
    }
    // App-only: no `scp`, and `roles` or `idtyp` `app` (a token without any role granted has
    // no `roles` claim at all).
    let app_only =
        claims.get("roles").is_some() || claims.get("idtyp").and_then(Value::as_str) == Some("app");
    if claims.get("scp").is_none() && app_only {
        let roles = claims
            .get("roles")
            .and_then(Value::as_array)
            .map(|roles| {
                roles
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        return Ok(Caller::Application(roles));
    }
    let oid = claims
        .get("oid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let user = shared
        .fixtures
        .user_by_oid(oid)
        .ok_or_else(|| unauthenticated("Access token validation failure: no such user."))?;
    let scp = claims
        .get("scp")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if !scp.split(' ').any(|scope| READ_SCOPES.contains(&scope)) {
        return Err(insufficient_privileges());
    }
    Ok(Caller::User(user))
}

/// The claims of `token` once its RS256 signature checks out against a published key.
fn verified_claims(shared: &Shared, token: &str) -> Result<Map<String, Value>, GraphError> {
    let invalid = || unauthenticated("Access token validation failure. Invalid token.");
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(unauthenticated("IDX14100: JWT is not well formed."));
    };
    let decode = |part: &str| -> Option<Map<String, Value>> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
    };
    let header_fields = decode(header).ok_or_else(invalid)?;
    if header_fields.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(unauthenticated(
            "Access token validation failure. Only RS256 is accepted.",
        ));
    }
    let kid = header_fields
        .get("kid")
        .and_then(Value::as_str)
        .ok_or_else(invalid)?;
    let key = shared.published_key(kid).ok_or_else(|| {
        unauthenticated("Access token validation failure. The signing key is not published.")
    })?;
    let signature = URL_SAFE_NO_PAD.decode(signature).map_err(|_| invalid())?;
    let signing_input = format!("{header}.{claims}");
    if !key.verifies(signing_input.as_bytes(), &signature) {
        return Err(unauthenticated(
            "Access token validation failure. Invalid signature.",
        ));
    }
    decode(claims).ok_or_else(invalid)
}

/// Whom the path names, and what about them.
fn route(
    shared: &Shared,
    request: &mut tiny_http::Request,
    path: &str,
    rest: &[&str],
    caller: Caller<'_>,
) -> Result<Value, GraphError> {
    let (subject, tail) = match (rest, caller) {
        (["v1.0", "me", tail @ ..], Caller::User(user)) => (user, tail),
        (["v1.0", "me", ..], Caller::Application(roles)) => {
            if !application_may(&roles, Reads::Profile) {
                return Err(insufficient_privileges());
            }
            return Err(graph_error(
                400,
                "BadRequest",
                "/me request is only valid with delegated authentication flow.",
            ));
        }
        (["v1.0", "users", id, tail @ ..], Caller::User(user)) => {
            let own = id.eq_ignore_ascii_case(&user.oid) || id.eq_ignore_ascii_case(&user.upn);
            if !own {
                return Err(insufficient_privileges());
            }
            (user, tail)
        }
        (["v1.0", "users", id, tail @ ..], Caller::Application(roles)) => {
            let what = if tail.is_empty() {
                Reads::Profile
            } else {
                Reads::Memberships
            };
            if !application_may(&roles, what) {
                return Err(insufficient_privileges());
            }
            let user = shared
                .fixtures
                .users
                .iter()
                .find(|user| {
                    id.eq_ignore_ascii_case(&user.oid) || id.eq_ignore_ascii_case(&user.upn)
                })
                .ok_or_else(|| {
                    graph_error(
                        404,
                        "Request_ResourceNotFound",
                        format!(
                            "Resource '{id}' does not exist or one of its queried \
                             reference-property objects are not present."
                        ),
                    )
                })?;
            (user, tail)
        }
        _ => {
            return Err(bad_request(format!(
                "Resource not found for the segment in `{path}`."
            )))
        }
    };
    let method = request.method().clone();
    match (tail, &method) {
        ([], Method::Get) => Ok(profile(shared, subject)),
        (["getMemberObjects" | "getMemberGroups"], Method::Post) => {
            member_objects(shared, request, subject)
        }
        (["transitiveMemberOf"] | ["transitiveMemberOf", "microsoft.graph.group"], Method::Get) => {
            transitive_member_of(shared, request.url(), path, subject)
        }
        ([] | ["transitiveMemberOf", ..], _) | (["getMemberObjects" | "getMemberGroups"], _) => {
            Err(graph_error(
                405,
                "Request_BadRequest",
                format!("The method {method} is not allowed here."),
            ))
        }
        _ => Err(bad_request(format!(
            "Resource not found for the segment in `{path}`."
        ))),
    }
}

fn profile(shared: &Shared, user: &User) -> Value {
    json!({
        "@odata.context": format!("{}/graph/v1.0/$metadata#users/$entity", shared.url),
        "id": user.oid,
        "displayName": user.name,
        "userPrincipalName": user.upn,
        "mail": user.mail,
    })
}

/// `getMemberObjects` (and `getMemberGroups`): every group the user is in, transitively;
/// with `securityEnabledOnly`, security groups only.
fn member_objects(
    shared: &Shared,
    request: &mut tiny_http::Request,
    user: &User,
) -> Result<Value, GraphError> {
    let body = read_body(request)
        .ok()
        .flatten()
        .ok_or_else(|| bad_request("The body cannot be read."))?;
    let body: Value = serde_json::from_slice(&body)
        .map_err(|error| bad_request(format!("Invalid JSON body: {error}.")))?;
    let security_only = body
        .get("securityEnabledOnly")
        .and_then(Value::as_bool)
        .ok_or_else(|| bad_request("securityEnabledOnly is required (true or false)."))?;
    let fixtures = &shared.fixtures;
    let ids: Vec<String> = fixtures
        .transitive_groups(user)
        .into_iter()
        .filter(|id| {
            !security_only
                || fixtures
                    .group(id)
                    .is_some_and(|group| group.security_enabled)
        })
        .collect();
    Ok(json!({
        "@odata.context": format!("{}/graph/v1.0/$metadata#Collection(Edm.String)", shared.url),
        "value": ids,
    }))
}

/// `transitiveMemberOf`: the user's groups, `$top` at a time, with an `@odata.nextLink` that
/// carries a `$skiptoken` while there are more.
fn transitive_member_of(
    shared: &Shared,
    url: &str,
    path: &str,
    user: &User,
) -> Result<Value, GraphError> {
    let query =
        urlencoded::query_pairs(url).ok_or_else(|| bad_request("The query does not decode."))?;
    let mut seen = HashSet::new();
    for (name, _) in &query {
        if !seen.insert(name.as_str()) {
            return Err(bad_request(format!(
                "Query option '{name}' is given twice."
            )));
        }
        if name.starts_with('$') && !matches!(name.as_str(), "$top" | "$skiptoken" | "$select") {
            return Err(graph_error(
                400,
                "Request_UnsupportedQuery",
                format!("The emulator does not support the query option '{name}'."),
            ));
        }
    }
    let top = match urlencoded::value(&query, "$top") {
        None => DEFAULT_PAGE,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|top| (1..=MAX_PAGE).contains(top))
            .ok_or_else(|| {
                bad_request(format!(
                    "Invalid page size specified: '{text}'. Must be between 1 and {MAX_PAGE} \
                     inclusive."
                ))
            })?,
    };
    let fixtures = &shared.fixtures;
    let groups = fixtures.transitive_groups(user);
    let offset = match urlencoded::value(&query, "$skiptoken") {
        None => 0,
        Some(skiptoken) => decode_skiptoken(skiptoken, user)
            .filter(|offset| *offset > 0 && *offset < groups.len())
            .ok_or_else(|| bad_request("Invalid $skiptoken."))?,
    };
    let select: Option<Vec<&str>> = urlencoded::value(&query, "$select")
        .map(|select| select.split(',').map(str::trim).collect());
    let end = offset.saturating_add(top).min(groups.len());
    let value: Vec<Value> = groups
        .get(offset..end)
        .unwrap_or_default()
        .iter()
        .filter_map(|id| fixtures.group(id))
        .map(|group| {
            let mut object = Map::new();
            object.insert("@odata.type".into(), json!("#microsoft.graph.group"));
            object.insert("id".into(), json!(group.id));
            object.insert("displayName".into(), json!(group.display_name));
            object.insert("description".into(), json!(group.description));
            object.insert("securityEnabled".into(), json!(group.security_enabled));
            object.insert("mailEnabled".into(), json!(!group.security_enabled));
            let types: &[&str] = if group.security_enabled {
                &[]
            } else {
                &["Unified"]
            };
            object.insert("groupTypes".into(), json!(types));
            if let Some(select) = &select {
                object.retain(|name, _| name == "@odata.type" || select.contains(&name.as_str()));
            }
            Value::Object(object)
        })
        .collect();
    let mut answer = Map::new();
    answer.insert(
        "@odata.context".into(),
        json!(format!(
            "{}/graph/v1.0/$metadata#directoryObjects",
            shared.url
        )),
    );
    if end < groups.len() {
        let mut next = format!(
            "{}{path}?$top={top}&$skiptoken={}",
            shared.url,
            encode_skiptoken(end, user)
        );
        if let Some(select) = urlencoded::value(&query, "$select") {
            next.push_str(&format!("&$select={}", urlencoded::encode(select)));
        }
        answer.insert("@odata.nextLink".into(), json!(next));
    }
    answer.insert("value".into(), Value::Array(value));
    Ok(Value::Object(answer))
}

/// An opaque `$skiptoken`: where the next page starts, for whom.
fn encode_skiptoken(offset: usize, user: &User) -> String {
    URL_SAFE_NO_PAD.encode(format!("emulator-page:{}:{offset}", user.oid))
}

fn decode_skiptoken(skiptoken: &str, user: &User) -> Option<usize> {
    let text = String::from_utf8(URL_SAFE_NO_PAD.decode(skiptoken).ok()?).ok()?;
    let rest = text.strip_prefix("emulator-page:")?;
    let (oid, offset) = rest.rsplit_once(':')?;
    if !oid.eq_ignore_ascii_case(&user.oid) {
        return None;
    }
    offset.parse().ok()
}

/// A Graph error body: `{"error": {"code", "message", "innerError": {…}}}`.
fn answer_error(shared: &Shared, request: tiny_http::Request, error: &GraphError) {
    let date = utc_timestamp(unix_now())
        .replace(' ', "T")
        .trim_end_matches('Z')
        .to_owned();
    let body = json!({
        "error": {
            "code": error.code,
            "message": error.message,
            "innerError": {
                "date": date,
                "request-id": random_guid(),
                "client-request-id": random_guid(),
            },
        },
    });
    let challenge = format!(
        "Bearer realm=\"\", authorization_uri=\"{}/{}/oauth2/authorize\", client_id=\"{GRAPH_APP_ID}\"",
        shared.url, shared.fixtures.tenant_id
    );
    let mut headers = Vec::new();
    if error.status == 401 {
        headers.push(("WWW-Authenticate", challenge.as_str()));
    }
    if error.status == 429 {
        headers.push(("Retry-After", "1"));
    }
    respond_json(request, error.status, &headers, &body);
}

//! Group memberships of users whose Entra token overflowed (`_claim_names` / `hasgroups`),
//! from Microsoft Graph's `getMemberObjects`: at sign-in with the user's own access token
//! from the code exchange, for API callers with the app registration's own credentials
//! (client credentials; application permissions `User.ReadBasic.All` and
//! `GroupMember.Read.All`, or one that includes both such as `Directory.Read.All`), since a
//! bearer request brings no token Graph would accept for the user. Also for tokens that
//! carry no groups at all (no `groups` claim, no overage marker): their groups are unknown,
//! never none.
//!
//! Graph is the one of the identity provider's `azure_cloud` (`GRAPH_URL` overrides where it
//! is reached, for tests); the client credentials scope names that cloud's Graph.
//!
//! Both the app's Graph token and each user's groups are kept in the isolate — the token
//! until shortly before it expires, the groups for [`GROUPS_TTL`] — so a busy API caller
//! costs Graph one call every few minutes, not one per request. Any failure fails closed.
//!
//! Graph is asked for the kind of groups the token's `groups` claim would have listed (the
//! identity provider's `group_membership_claims`): security groups only unless configured
//! `All`, so a user with a groups overage is not in more groups — Microsoft 365 groups, which
//! users can often join by themselves — than one whose token lists them.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use policy_core::{GroupId, IdentityProvider};
use serde::Deserialize;

use crate::config::Gateway;
use crate::error::GatewayError;
use crate::http::post;
use crate::time::UnixMillis;

/// How long an isolate reuses a user's groups read from Graph (a membership change reaches
/// API calls within this time; sign-ins always read afresh).
pub const GROUPS_TTL: Duration = Duration::from_secs(5 * 60);

/// An app token is not used within this much of its expiry.
const TOKEN_MARGIN: Duration = Duration::from_secs(60);

/// At most this many users' groups are kept per isolate; when full, the cache starts over.
const MAX_CACHED_USERS: usize = 10_000;

struct AppToken {
    token: String,
    expires: UnixMillis,
}

/// (tenant, oid, security groups only) → (read at, groups).
type GroupCache = HashMap<(String, String, bool), (UnixMillis, Vec<GroupId>)>;

thread_local! {
    static APP_TOKENS: RefCell<HashMap<String, AppToken>> = RefCell::new(HashMap::new());
    static GROUPS: RefCell<GroupCache> = RefCell::new(HashMap::new());
}

fn unavailable(why: String) -> GatewayError {
    GatewayError::GroupsUnavailable(why)
}

/// The groups (transitive) of user `oid` of `idp`'s tenant, from the cache or Graph.
pub async fn user_groups(
    gateway: &Gateway,
    idp: &IdentityProvider,
    oid: &str,
) -> Result<Vec<GroupId>, GatewayError> {
    let now = UnixMillis::now();
    let (tenant, client_id) = (&*idp.directory_id, &*idp.client_id);
    let security_only = idp.group_membership_claims.security_groups_only();
    let key = (
        tenant.to_ascii_lowercase(),
        oid.to_ascii_lowercase(),
        security_only,
    );
    let cached = GROUPS.with(|g| {
        g.borrow()
            .get(&key)
            .filter(|(at, _)| now.since(*at) < GROUPS_TTL)
            .map(|(_, groups)| groups.clone())
    });
    if let Some(groups) = cached {
        return Ok(groups);
    }
    let token = app_token(gateway, idp, tenant, client_id, now).await?;
    let url = format!(
        "{}/v1.0/users/{}/getMemberObjects",
        gateway.graph(idp),
        worker::url::form_urlencoded::byte_serialize(oid.as_bytes()).collect::<String>()
    );
    let groups = member_objects(&url, &token, security_only).await?;
    GROUPS.with(|g| {
        let mut g = g.borrow_mut();
        if g.len() >= MAX_CACHED_USERS {
            g.clear();
        }
        g.insert(key, (now, groups.clone()));
    });
    Ok(groups)
}

/// The signed-in user's transitive groups (of the kind `idp` counts), with the access token
/// from the code exchange — never the URL in the token's `_claim_sources`.
pub async fn signed_in_user_groups(
    gateway: &Gateway,
    idp: &IdentityProvider,
    access_token: Option<&str>,
) -> Result<Vec<GroupId>, GatewayError> {
    let token =
        access_token.ok_or_else(|| unavailable("no access token for Microsoft Graph".into()))?;
    member_objects(
        &format!("{}/v1.0/me/getMemberObjects", gateway.graph(idp)),
        token,
        idp.group_membership_claims.security_groups_only(),
    )
    .await
}

/// `POST {url}` (a `getMemberObjects`) with `token`, for security groups only or all
/// groups: the group ids, which must be GUIDs.
async fn member_objects(
    url: &str,
    token: &str,
    security_only: bool,
) -> Result<Vec<GroupId>, GatewayError> {
    let body = post(
        url,
        "application/json",
        &member_objects_body(security_only),
        Some(token),
    )
    .await
    .map_err(|e| {
        if e.contains("HTTP 403") {
            unavailable(format!(
                "{e}: Graph refused the membership read; an app-only read needs the \
                 application permissions User.ReadBasic.All and GroupMember.Read.All (admin \
                 consent), a sign-in the delegated User.Read"
            ))
        } else {
            unavailable(e)
        }
    })?;
    #[derive(Deserialize)]
    struct MemberObjects {
        value: Vec<String>,
    }
    let objects: MemberObjects =
        serde_json::from_slice(&body).map_err(|e| unavailable(format!("Graph answer: {e}")))?;
    objects
        .value
        .iter()
        .map(|g| GroupId::parse(g).map_err(|_| unavailable("Graph returned a non-GUID id".into())))
        .collect()
}

/// The body of a `getMemberObjects` request.
fn member_objects_body(security_only: bool) -> String {
    format!(r#"{{"securityEnabledOnly":{security_only}}}"#)
}

/// The app's Graph token for `tenant` (client credentials, with `idp`'s client secret),
/// reused until a minute before it expires.
async fn app_token(
    gateway: &Gateway,
    idp: &IdentityProvider,
    tenant: &str,
    client_id: &str,
    now: UnixMillis,
) -> Result<String, GatewayError> {
    let tenant = tenant.to_ascii_lowercase();
    // Two providers may name the same tenant with different app registrations (and secrets).
    let key = format!("{tenant} {}", client_id.to_ascii_lowercase());
    let cached = APP_TOKENS.with(|t| {
        t.borrow()
            .get(&key)
            .filter(|t| t.expires > now.saturating_add(TOKEN_MARGIN))
            .map(|t| t.token.clone())
    });
    if let Some(token) = cached {
        return Ok(token);
    }
    let secret = gateway
        .client_secret(idp)
        .map_err(|why| unavailable(format!("{why}: Graph cannot be asked")))?;
    let mut form = worker::url::form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "client_credentials")
        .append_pair("client_id", client_id)
        .append_pair("client_secret", secret)
        .append_pair(
            "scope",
            &format!("{}/.default", crate::config::graph_resource(idp)),
        );
    let url = format!("{}/{tenant}/oauth2/v2.0/token", gateway.authority(idp));
    let body = post(
        &url,
        "application/x-www-form-urlencoded",
        &form.finish(),
        None,
    )
    .await
    .map_err(|e| unavailable(format!("client credentials: {e}")))?;
    #[derive(Deserialize)]
    struct Token {
        access_token: String,
        expires_in: u64,
    }
    let answer: Token = serde_json::from_slice(&body)
        .map_err(|e| unavailable(format!("client credentials answer: {e}")))?;
    let expires = now.saturating_add(Duration::from_secs(answer.expires_in));
    APP_TOKENS.with(|t| {
        t.borrow_mut().insert(
            key,
            AppToken {
                token: answer.access_token.clone(),
                expires,
            },
        );
    });
    Ok(answer.access_token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graph_is_asked_for_the_groups_the_token_would_list() {
        assert_eq!(member_objects_body(true), r#"{"securityEnabledOnly":true}"#);
        assert_eq!(
            member_objects_body(false),
            r#"{"securityEnabledOnly":false}"#
        );
        let defaults = policy_core::GroupMembershipClaims::default();
        assert!(defaults.security_groups_only());
    }
}

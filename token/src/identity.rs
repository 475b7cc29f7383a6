//! From verified Entra claims to the policy engine's identity.

use policy_core::{Email, GroupId, Identity, IdentityProvider};
use serde_json::Value;

use crate::entra::VerifiedEntraToken;
use crate::error::IdentityError;

/// The identity a verified token describes, for `idp`.
///
/// Email: the configured `email_claim_name` alone; otherwise the user principal name — `upn`,
/// else `preferred_username`, else `unique_name` (the first that is an email address). Never
/// `email` unless configured: Entra puts it in ID tokens (with the `email` scope) but not in
/// access tokens, so the same person would have one address when signing in and another
/// with a bearer token, and `email` rules would answer differently for them.
///
/// Groups: the `groups` claim, whose entries must be GUIDs ([`IdentityError::BadGroup`]); an
/// overage (`_claim_names.groups` or `hasgroups`) is [`IdentityError::GroupsOverage`], a
/// token without either [`IdentityError::GroupsNotInToken`]. An app-only token (client
/// credentials: no user) is never an identity: [`IdentityError::AppOnly`].
///
/// # Errors
/// [`IdentityError`] when the token has no user, the groups cannot be known or a claim has
/// the wrong shape.
pub fn identity_from_claims(
    token: &VerifiedEntraToken,
    idp: &IdentityProvider,
) -> Result<Identity, IdentityError> {
    map_claims(token, idp, true)
}

/// The identity without reading groups: for a groups overage or a token without groups,
/// whose groups come from Microsoft Graph instead, and for providers with `support_groups`
/// off.
///
/// # Errors
/// [`IdentityError::AppOnly`] for an app-only token; [`IdentityError::BadClaim`] when a claim
/// has the wrong shape.
pub fn identity_without_groups(
    token: &VerifiedEntraToken,
    idp: &IdentityProvider,
) -> Result<Identity, IdentityError> {
    map_claims(token, idp, false)
}

fn map_claims(
    token: &VerifiedEntraToken,
    idp: &IdentityProvider,
    with_groups: bool,
) -> Result<Identity, IdentityError> {
    let claims = token.claims();
    if is_app_only(claims) {
        return Err(IdentityError::AppOnly);
    }
    let mut identity = Identity::default();
    identity.email = email_claims(idp)
        .filter_map(|name| claims.get(name).and_then(Value::as_str))
        .find_map(|value| Email::parse(value).ok());
    identity.user_id = token.claim_str("oid").map(Into::into);
    identity.tenant_id = token.claim_str("tid").map(Into::into);
    identity.idp_id = Some(idp.id.clone());
    let overage = claims
        .get("_claim_names")
        .and_then(|names| names.get("groups"))
        .is_some()
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true);
    if overage && with_groups {
        return Err(IdentityError::GroupsOverage);
    }
    if with_groups {
        let Some(groups) = claims.get("groups") else {
            return Err(IdentityError::GroupsNotInToken);
        };
        let Value::Array(items) = groups else {
            return Err(IdentityError::BadClaim("groups"));
        };
        for item in items {
            let text = item.as_str().ok_or(IdentityError::BadClaim("groups"))?;
            let id = GroupId::parse(text).map_err(|_| IdentityError::BadGroup(text.to_owned()))?;
            identity.groups.push(id);
        }
    }
    identity.amr = string_list(claims.get("amr"), "amr")?;
    identity.acrs = string_list(claims.get("acrs"), "acrs")?;
    for (name, value) in claims {
        let values: Vec<Box<str>> = match value {
            Value::String(s) => vec![s.as_str().into()],
            Value::Bool(b) => vec![b.to_string().into()],
            Value::Number(n) => vec![n.to_string().into()],
            Value::Array(items) => items
                .iter()
                .filter_map(Value::as_str)
                .map(Into::into)
                .collect(),
            _ => continue,
        };
        if matches!(name.as_str(), "groups" | "_claim_names" | "_claim_sources") {
            continue;
        }
        identity.claims.push((name.as_str().into(), values));
    }
    Ok(identity)
}

/// The claims the identity's email is read from, in order: the configured
/// `email_claim_name` alone, or the user principal name's claims (`upn` in v1 tokens and as
/// a v2 optional claim, `preferred_username` in v2, `unique_name` in v1).
fn email_claims(idp: &IdentityProvider) -> impl Iterator<Item = &str> {
    let default: &[&str] = if idp.email_claim_name.is_some() {
        &[]
    } else {
        &["upn", "preferred_username", "unique_name"]
    };
    idp.email_claim_name
        .as_deref()
        .into_iter()
        .chain(default.iter().copied())
}

/// Whether the token was issued to an application acting as itself (client credentials),
/// with no user, as Microsoft says to tell: the optional `idtyp` claim is `app` (any value but
/// `user` is taken as not a user), or — `idtyp` being optional — `oid` equals `sub` (an
/// app-only token names the service principal in both; a user's `sub` is pairwise per
/// application and never their `oid`).
fn is_app_only(claims: &serde_json::Map<String, Value>) -> bool {
    if let Some(idtyp) = claims.get("idtyp") {
        return idtyp.as_str() != Some("user");
    }
    let text = |name: &str| claims.get(name).and_then(Value::as_str);
    matches!((text("oid"), text("sub")), (Some(oid), Some(sub)) if oid.eq_ignore_ascii_case(sub))
}

fn string_list(value: Option<&Value>, name: &'static str) -> Result<Vec<Box<str>>, IdentityError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(Into::into)
                    .ok_or(IdentityError::BadClaim(name))
            })
            .collect(),
        Some(_) => Err(IdentityError::BadClaim(name)),
    }
}

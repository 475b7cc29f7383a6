//! Admins as Entra identities: the `ADMIN_ROLES` var lists `role:scope` entries (separated by
//! whitespace or commas), each the value of an app role of the gateway's app registration and
//! `read` or `write`, optionally naming the identity provider whose tokens may carry it
//! (`<provider id>/role:scope`). App roles are defined by whoever owns an app registration: with
//! several identity providers (a partner's directory among them) an entry must name the
//! provider, or a partner could grant its own users the role. A bearer Entra access token, verified as the gateway verifies any bearer
//! token (a configured directory, one of its provider's accepted audiences, signature, times),
//! whose `roles` claim holds one of them may use the management API with that scope (`write`
//! when any of its roles gives it).
//!
//! A var, not a document setting: the API writes the document, and who may write it must not be
//! something a write can change.

use worker::Env;

use super::tokens::{AdminToken, Scope};
use crate::config_store;
use crate::identity::{self, Rejection, Source};
use crate::time::UnixMillis;

/// One `ADMIN_ROLES` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminRole {
    /// The identity provider whose tokens it is taken from; `None`: the only one.
    idp: Option<String>,
    role: String,
    scope: Scope,
}

/// The entries of `ADMIN_ROLES`.
///
/// # Errors
///
/// An entry that is not `[provider id/]role:read|write` (its position says which).
pub fn parse(text: &str) -> Result<Vec<AdminRole>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| {
            let refused = || {
                format!(
                    "ADMIN_ROLES entry {} is not `[provider id/]role:read|write` (role: an app \
                     role's value, at most 120 characters, no `:`)",
                    i + 1
                )
            };
            let (role, scope) = entry.rsplit_once(':').ok_or_else(refused)?;
            let scope = match scope {
                "read" => Scope::Read,
                "write" => Scope::Write,
                _ => return Err(refused()),
            };
            let (idp, role) = match role.split_once('/') {
                Some((idp, role)) if !idp.is_empty() => (Some(idp.to_owned()), role),
                Some(_) => return Err(refused()),
                None => (None, role),
            };
            if role.is_empty() || role.len() > 120 || role.contains(':') {
                return Err(refused());
            }
            Ok(AdminRole {
                idp,
                role: role.to_owned(),
                scope,
            })
        })
        .collect()
}

/// The widest scope `roles` give (`roles`: the `roles` claim of a token of provider `idp`), if
/// any. An entry naming no provider counts only when `providers` (how many the configuration
/// has) is 1.
pub fn scope_of<'r>(
    entries: &[AdminRole],
    idp: &str,
    providers: usize,
    roles: impl Iterator<Item = &'r str> + Clone,
) -> Option<Scope> {
    let given = |entry: &&AdminRole| {
        let from = match &entry.idp {
            Some(named) => named == idp,
            None => providers == 1,
        };
        from && roles.clone().any(|role| role == entry.role)
    };
    let mut scopes = entries.iter().filter(given).map(|e| e.scope);
    let first = scopes.next()?;
    Some(
        if first == Scope::Write || scopes.any(|s| s == Scope::Write) {
            Scope::Write
        } else {
            Scope::Read
        },
    )
}

/// The admin `token` (a bearer Entra access token) makes, by its app roles.
///
/// # Errors
///
/// Why it is not one, for the log: no configuration to verify it with, a token the gateway
/// refuses, or no role of `entries` in its `roles` claim.
pub async fn admin(env: &Env, entries: &[AdminRole], token: &str) -> Result<AdminToken, String> {
    let held = config_store::gateway(env)
        .await
        .map_err(|e| format!("no configuration to verify an Entra token: {}", e.reason()))?;
    let gateway = held
        .as_ref()
        .as_ref()
        .map_err(|_| "no configuration to verify an Entra token".to_owned())?;
    let identity =
        identity::from_entra_token(env, gateway, token, Source::Bearer, UnixMillis::now())
            .await
            .map_err(|rejection| match rejection {
                Rejection::Token(why) | Rejection::Identity(why) | Rejection::UnknownKey(why) => {
                    format!("Entra token: {why}")
                }
                Rejection::Failure(error) => {
                    format!("Entra token not verified: {}", error.reason())
                }
            })?;
    let roles = identity
        .claims
        .iter()
        .filter(|(name, _)| name.as_ref() == "roles")
        .flat_map(|(_, values)| values.iter().map(|v| &**v));
    let providers = gateway.engine.identity_providers().len();
    let idp = identity.idp_id.as_deref().unwrap_or_default();
    let scope = scope_of(entries, idp, providers, roles).ok_or_else(|| {
        if providers > 1 && entries.iter().all(|e| e.idp.is_none()) {
            "Entra token without an admin role: with several identity providers, ADMIN_ROLES \
             entries must name theirs (`<provider id>/role:scope`)"
                .to_owned()
        } else {
            "Entra token without an admin role".to_owned()
        }
    })?;
    let who = identity
        .email
        .as_ref()
        .map(ToString::to_string)
        .or_else(|| identity.user_id.as_deref().map(str::to_owned))
        .unwrap_or_default();
    Ok(AdminToken::for_identity(format!("entra:{who}"), scope))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_parse_and_bad_ones_are_named_by_position() {
        let entries = parse("EdgeAccess.Admin:write, EdgeAccess.Auditor:read").unwrap();
        assert_eq!(entries.len(), 2);
        let named = parse("entra-home/EdgeAccess.Admin:write").unwrap();
        assert_eq!(named[0].idp.as_deref(), Some("entra-home"));
        assert_eq!(named[0].role, "EdgeAccess.Admin");
        for bad in [
            "Admin",
            "Admin:admin",
            ":write",
            "a:b:write",
            "/Admin:write",
            "idp/:read",
        ] {
            let refused = parse(&format!("Ok:read {bad}"));
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|m| m.starts_with("ADMIN_ROLES entry 2 ")),
                "{bad}: {refused:?}"
            );
        }
        assert_eq!(parse("").unwrap(), vec![]);
    }

    #[test]
    fn the_widest_scope_of_the_roles_held() {
        let entries = parse("Admin:write Auditor:read").unwrap();
        let scope = |roles: &[&str]| scope_of(&entries, "home", 1, roles.iter().copied());
        assert_eq!(scope(&["Auditor"]), Some(Scope::Read));
        assert_eq!(scope(&["Auditor", "Admin"]), Some(Scope::Write));
        assert_eq!(scope(&["Admin"]), Some(Scope::Write));
        assert_eq!(
            scope(&["admin", "Other"]),
            None,
            "role values compare exactly"
        );
        assert_eq!(scope(&[]), None);
    }

    /// A partner directory defines its own app roles: with several providers, only an entry
    /// naming the provider counts, and only for that provider's tokens.
    #[test]
    fn with_several_providers_an_entry_must_name_its_provider() {
        let unnamed = parse("Admin:write").unwrap();
        assert_eq!(
            scope_of(&unnamed, "home", 1, ["Admin"].into_iter()),
            Some(Scope::Write)
        );
        assert_eq!(scope_of(&unnamed, "home", 2, ["Admin"].into_iter()), None);
        assert_eq!(
            scope_of(&unnamed, "partner", 2, ["Admin"].into_iter()),
            None
        );
        let named = parse("home/Admin:write").unwrap();
        assert_eq!(
            scope_of(&named, "home", 2, ["Admin"].into_iter()),
            Some(Scope::Write)
        );
        assert_eq!(scope_of(&named, "partner", 2, ["Admin"].into_iter()), None);
        assert_eq!(scope_of(&named, "partner", 1, ["Admin"].into_iter()), None);
    }
}

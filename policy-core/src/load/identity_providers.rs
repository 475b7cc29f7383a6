//! Identity providers (`identity_providers[]`) and their `scim_config`.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::ToString;
use alloc::vec::Vec;

use crate::ids::GroupId;
use crate::json::{boxed, Json, Path};
use crate::model::{
    GroupMembershipClaims, IdentityProvider, IdentityUpdateBehavior, ScimConfig, Warning,
};

use super::Loader;

impl<'j> Loader<'j, '_> {
    pub(super) fn identity_provider(&mut self, v: &'j Json<'j>, path: &Path<'_>) {
        let Some(o) = self.object(
            v,
            path,
            &["id", "name", "type", "config", "scim_config"],
            &[
                "uid",
                "version",
                "scim_base_url",
                "created_at",
                "updated_at",
            ],
        ) else {
            return;
        };
        let id = o
            .required("id", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        if let Some(t) = o.required("type", path, &mut self.p) {
            if let Some(t) = self.p.string(t, &path.key("type")) {
                if t != "azureAD" {
                    self.p.add(
                        &path.key("type"),
                        format!("unsupported identity provider type `{t}` (only `azureAD`)"),
                    );
                }
            }
        }
        let config_path = path.key("config");
        let config = o.required("config", path, &mut self.p).and_then(|c| {
            self.p.object(
                c,
                &config_path,
                &[
                    "client_id",
                    "client_secret",
                    "directory_id",
                    "support_groups",
                    "group_membership_claims",
                    "pkce_enabled",
                    "prompt",
                    "email_claim_name",
                    "conditional_access_enabled",
                    "azure_cloud",
                    "claims",
                    "redirect_url",
                    "audiences",
                    "app_signing_key",
                ],
                &[],
            )
        });
        let scim = self.scim_config(o.get("scim_config"), &path.key("scim_config"));
        let (Some(id), Some(name), Some(config)) = (id, name, config) else {
            return;
        };
        if config.get("client_secret").is_some() {
            self.p.add(
                &config_path.key("client_secret"),
                "secrets do not belong in the document: set the `AZURE_CLIENT_SECRET` secret instead",
            );
        }
        let at = &config_path;
        let client_id = config
            .required("client_id", at, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &at.key("client_id")));
        let directory_id = config
            .required("directory_id", at, &mut self.p)
            .and_then(|v| {
                let s = self.p.string(v, &at.key("directory_id"))?;
                match GroupId::parse(s) {
                    Ok(g) => Some(g.to_string()),
                    Err(e) => {
                        self.p.add(
                            &at.key("directory_id"),
                            format!("`{s}` is {e} (a tenant id)"),
                        );
                        None
                    }
                }
            });
        let flag = |this: &mut Self, key: &str| {
            config
                .get(key)
                .and_then(|v| this.p.boolean(v, &at.key(key)))
                .unwrap_or(false)
        };
        let support_groups = flag(self, "support_groups");
        let pkce_enabled = flag(self, "pkce_enabled");
        let conditional_access_enabled = flag(self, "conditional_access_enabled");
        let prompt = config.get("prompt").and_then(|v| {
            let s = self.p.string(v, &at.key("prompt"))?;
            if matches!(s, "login" | "select_account" | "none" | "consent") {
                Some(boxed(s))
            } else {
                self.p.add(
                    &at.key("prompt"),
                    format!("unknown prompt `{s}` (login, select_account, none, consent)"),
                );
                None
            }
        });
        let group_membership_claims = match config.get("group_membership_claims") {
            None => GroupMembershipClaims::default(),
            Some(v) => match self.p.string(v, &at.key("group_membership_claims")) {
                Some("SecurityGroup") => GroupMembershipClaims::SecurityGroup,
                Some("All") => GroupMembershipClaims::All,
                Some(s) => {
                    self.p.add(
                        &at.key("group_membership_claims"),
                        format!(
                            "unsupported group_membership_claims `{s}` (SecurityGroup or All, \
                             as the app registration's groupMembershipClaims)"
                        ),
                    );
                    GroupMembershipClaims::default()
                }
                None => GroupMembershipClaims::default(),
            },
        };
        let email_claim_name = config
            .get("email_claim_name")
            .and_then(|v| self.p.nonempty(v, &at.key("email_claim_name")).map(boxed));
        let azure_cloud = match config.get("azure_cloud") {
            Some(v) => match self.p.string(v, &at.key("azure_cloud")) {
                Some(s @ ("default" | "us" | "de" | "cn")) => boxed(s),
                Some(s) => {
                    self.p.add(
                        &at.key("azure_cloud"),
                        format!("unknown azure_cloud `{s}` (default, us, de, cn)"),
                    );
                    boxed("default")
                }
                None => boxed("default"),
            },
            None => boxed("default"),
        };
        let claims = match config.get("claims") {
            Some(v) => {
                let cp = at.key("claims");
                let items = self.p.array(v, &cp).unwrap_or(&[]);
                items
                    .iter()
                    .enumerate()
                    .filter_map(|(i, c)| self.p.nonempty(c, &cp.index(i)).map(boxed))
                    .collect()
            }
            None => Vec::new(),
        };
        let audiences = config
            .get("audiences")
            .map(|v| self.audiences(v, &at.key("audiences")))
            .unwrap_or_default();
        let app_signing_key = flag(self, "app_signing_key");
        if conditional_access_enabled {
            self.no_effect(
                &at.key("conditional_access_enabled"),
                "`auth_context` rules read the token's `acrs` claim; nothing is synced from Entra",
            );
        }
        if !claims.is_empty() {
            self.no_effect(
                &at.key("claims"),
                "every claim of the Entra token is already available to `oidc` rules",
            );
        }
        if config.get("redirect_url").is_some() {
            self.no_effect(
                &at.key("redirect_url"),
                "the gateway sets the sign-in callback: `<prefix>/callback` on each app host, or on \
                 the team domain when it is the sign-in hub",
            );
        }
        let (Some(client_id), Some(directory_id)) = (client_id, directory_id) else {
            return;
        };
        let index = u32::try_from(self.idps.len()).unwrap_or(u32::MAX);
        if self.idp_index.insert(id, index).is_some() {
            self.p.add(&path.key("id"), format!("duplicate id `{id}`"));
            return;
        }
        self.idps.push(IdentityProvider {
            id: boxed(id),
            name: boxed(name),
            client_id: boxed(client_id),
            directory_id: directory_id.into_boxed_str(),
            support_groups,
            group_membership_claims,
            pkce_enabled,
            prompt,
            email_claim_name,
            conditional_access_enabled,
            azure_cloud,
            claims,
            audiences,
            app_signing_key,
            scim: scim.unwrap_or_default(),
        });
    }

    /// `config.audiences`: the access token audiences an Entra provider accepts, each a
    /// non-empty string without spaces (an application id URI or the client id).
    fn audiences(&mut self, v: &'j Json<'j>, path: &Path<'_>) -> Vec<Box<str>> {
        let items = self.p.array(v, path).unwrap_or(&[]);
        if items.is_empty() {
            self.p.add(
                path,
                "expected at least one audience (omit `audiences` for the client id and \
                 `api://{client id}`)",
            );
        }
        let mut audiences = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = path.index(i);
            let Some(aud) = self.p.nonempty(item, &at) else {
                continue;
            };
            if aud.chars().any(char::is_whitespace) {
                self.p
                    .add(&at, format!("audience `{aud}` contains a space"));
                continue;
            }
            audiences.push(boxed(aud));
        }
        audiences
    }

    pub(super) fn scim_config(
        &mut self,
        v: Option<&'j Json<'j>>,
        path: &Path<'_>,
    ) -> Option<ScimConfig> {
        let o = self.object(
            v?,
            path,
            &[
                "enabled",
                "user_deprovision",
                "seat_deprovision",
                "group_member_deprovision",
                "identity_update_behavior",
                "secret",
            ],
            &["updated_at"],
        )?;
        if o.get("secret").is_some() {
            self.p.add(
                &path.key("secret"),
                "secrets do not belong in the document: set the `SCIM_TOKEN` secret instead",
            );
        }
        let mut flag = |key: &str| o.get(key).and_then(|v| self.p.boolean(v, &path.key(key)));
        let enabled = flag("enabled").unwrap_or(false);
        let user_deprovision = flag("user_deprovision").unwrap_or(false);
        let group_member_deprovision = flag("group_member_deprovision").unwrap_or(false);
        let seat_deprovision = flag("seat_deprovision").unwrap_or(false);
        let behavior = match o.get("identity_update_behavior") {
            Some(v) => match self.p.string(v, &path.key("identity_update_behavior")) {
                Some("automatic") => IdentityUpdateBehavior::Automatic,
                Some("reauth") => IdentityUpdateBehavior::Reauth,
                Some("no_action") => IdentityUpdateBehavior::NoAction,
                Some(other) => {
                    self.p.add(
                        &path.key("identity_update_behavior"),
                        format!("unknown identity_update_behavior `{other}` (automatic, reauth, no_action)"),
                    );
                    IdentityUpdateBehavior::NoAction
                }
                None => IdentityUpdateBehavior::NoAction,
            },
            None => IdentityUpdateBehavior::NoAction,
        };
        if seat_deprovision {
            self.no_effect(
                &path.key("seat_deprovision"),
                "the gateway counts no seats; `user_deprovision` ends a user's sessions",
            );
        }
        Some(ScimConfig {
            enabled,
            user_deprovision,
            group_member_deprovision,
            identity_update_behavior: behavior,
        })
    }

    /// A warning that the setting at `path` is accepted for API compatibility and changes
    /// nothing, and `why`.
    fn no_effect(&mut self, path: &Path<'_>, why: &str) {
        self.warnings.push(Warning {
            path: path.to_string(),
            message: format!("accepted for API compatibility, no effect: {why}"),
        });
    }
}

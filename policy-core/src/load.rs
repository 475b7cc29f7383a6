//! From a JSON document to an [`Engine`]: every field checked, every reference resolved,
//! every problem reported with its path.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::duration::SessionDuration;
use crate::engine::{Engine, Options};
use crate::error::LoadErrors;
use crate::hierarchy::GroupHierarchy;
use crate::ids::{parse_domain, Country, Email, GroupId};
use crate::ix::{GroupIx, IdpIx, ListIx, PolicyIx, RefGroupIx};
use crate::json::{boxed, Json, Obj, Path, Problems};
use crate::model::{
    AccessGroup, Action, App, GroupMembershipClaims, IdentityProvider, IdentityUpdateBehavior,
    List, ListItems, Policy, Rule, Rules, ScimConfig, ServiceTokenConfig, Slot, Warning,
};
use crate::net::IpRange;
use crate::route::{DomainPattern, Router};

/// Proof that the loader is the caller, for minting table indices ([`crate::ix`]): its field
/// is private to this module, so nothing else can make one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minted(());

const MINTED: Minted = Minted(());

/// API metadata accepted anywhere and ignored.
const METADATA: &[&str] = &[
    "created_at",
    "updated_at",
    "uid",
    "reusable",
    "app_count",
    "version",
];

/// Fields of an inline policy; a reusable policy has the same without `precedence`.
const INLINE_POLICY_FIELDS: &[&str] = &[
    "precedence",
    "id",
    "name",
    "decision",
    "include",
    "require",
    "exclude",
    "session_duration",
    "approval_required",
    "approval_groups",
    "purpose_justification_required",
    "purpose_justification_prompt",
    "isolation_required",
    "mfa_config",
];

/// Access API selectors this engine does not implement.
const UNSUPPORTED_SELECTORS: &[&str] = &[
    "device_posture",
    "external_evaluation",
    "gsuite",
    "okta",
    "saml",
    "github-organization",
    "user_risk_score",
    "linked_app_token",
    "cloudflare_account_member",
];

/// What a rule needs, for checking it against the decision of the policy using it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Needs {
    /// The first identity selector it uses (directly or through Access groups).
    identity: Option<&'static str>,
    /// The first service-token selector it uses.
    service_token: Option<&'static str>,
}

impl Needs {
    fn identity(selector: &'static str) -> Needs {
        Needs {
            identity: Some(selector),
            service_token: None,
        }
    }
    fn union(self, other: Needs) -> Needs {
        Needs {
            identity: self.identity.or(other.identity),
            service_token: self.service_token.or(other.service_token),
        }
    }
}

/// The directory's child → parent edges and group display names.
type DirectoryParts = (Vec<(GroupId, GroupId)>, HashMap<GroupId, Box<str>>);

/// A group → group reference found in an Access group, kept for the cycle check.
struct GroupEdge {
    from: u32,
    to: u32,
    path: String,
}

pub(crate) fn load(text: &str, options: &Options) -> Result<Engine, LoadErrors> {
    let json = Json::parse(text).map_err(|m| LoadErrors::new(vec![(String::new(), m)]))?;
    let mut loader = Loader::new(options);
    let engine = loader.document(&json);
    match engine {
        Some(engine) if loader.p.is_empty() => Ok(engine),
        _ => Err(LoadErrors::new(loader.p.list)),
    }
}

struct Loader<'j, 'o> {
    p: Problems,
    options: &'o Options,
    idps: Vec<IdentityProvider>,
    idp_index: HashMap<&'j str, u32>,
    lists: Vec<List>,
    list_index: HashMap<&'j str, u32>,
    group_index: HashMap<&'j str, u32>,
    policy_index: HashMap<&'j str, u32>,
    referenced: Vec<GroupId>,
    referenced_index: HashMap<GroupId, u32>,
    /// While compiling Access group `n`, its index (for recording group → group edges).
    current_group: Option<u32>,
    group_edges: Vec<GroupEdge>,
    group_needs: Vec<Needs>,
    warnings: Vec<Warning>,
    service_tokens: Vec<ServiceTokenConfig>,
    /// Whether the document lists its service tokens (then rules must name listed ones).
    service_tokens_given: bool,
}

impl<'j, 'o> Loader<'j, 'o> {
    fn new(options: &'o Options) -> Self {
        Loader {
            p: Problems::default(),
            options,
            idps: Vec::new(),
            idp_index: HashMap::new(),
            lists: Vec::new(),
            list_index: HashMap::new(),
            group_index: HashMap::new(),
            policy_index: HashMap::new(),
            referenced: Vec::new(),
            referenced_index: HashMap::new(),
            current_group: None,
            group_edges: Vec::new(),
            group_needs: Vec::new(),
            warnings: Vec::new(),
            service_tokens: Vec::new(),
            service_tokens_given: false,
        }
    }

    fn document(&mut self, json: &'j Json<'j>) -> Option<Engine> {
        let root = Path::Root;
        let doc = self.p.object(
            json,
            &root,
            &[
                "team_domain",
                "identity_providers",
                "lists",
                "groups",
                "policies",
                "apps",
                "directory",
                "service_tokens",
            ],
            &["$schema"],
        )?;
        let team_domain = doc
            .required("team_domain", &root, &mut self.p)
            .and_then(|v| {
                let at = root.key("team_domain");
                let s = self.p.string(v, &at)?;
                let trimmed = s.trim_end_matches('/');
                let host = trimmed.strip_prefix("https://");
                match host {
                    Some(h) if !h.is_empty() && !h.contains(['/', '?', '#', ' ', '@']) => {
                        Some(boxed(trimmed))
                    }
                    _ => {
                        self.p
                            .add(&at, format!("`{s}` is not an `https://host` URL"));
                        None
                    }
                }
            });

        let idps_path = root.key("identity_providers");
        for (i, v) in self
            .items(doc.get("identity_providers"), &idps_path)
            .iter()
            .enumerate()
        {
            self.identity_provider(v, &idps_path.index(i));
        }
        let lists_path = root.key("lists");
        for (i, v) in self.items(doc.get("lists"), &lists_path).iter().enumerate() {
            self.list(v, &lists_path.index(i));
        }
        let tokens_path = root.key("service_tokens");
        self.service_tokens_given = doc.get("service_tokens").is_some();
        for (i, v) in self
            .items(doc.get("service_tokens"), &tokens_path)
            .iter()
            .enumerate()
        {
            self.service_token(v, &tokens_path.index(i));
        }

        // Access groups and reusable policies may be referenced before they appear.
        let groups_path = root.key("groups");
        let groups_json = self.items(doc.get("groups"), &groups_path);
        let policies_path = root.key("policies");
        let policies_json = self.items(doc.get("policies"), &policies_path);
        self.index_ids(groups_json, &groups_path, true);
        self.index_ids(policies_json, &policies_path, false);

        let mut groups = Vec::with_capacity(groups_json.len());
        for (i, v) in groups_json.iter().enumerate() {
            self.current_group = u32::try_from(i).ok();
            groups.push(self.access_group(v, &groups_path.index(i)));
            // Keep `group_needs` aligned with `groups` even when a group failed to parse.
            self.group_needs.resize(i + 1, Needs::default());
        }
        self.current_group = None;
        self.check_group_graph(&groups);

        let mut policies: Vec<Policy> = Vec::with_capacity(policies_json.len());
        for (i, v) in policies_json.iter().enumerate() {
            let path = policies_path.index(i);
            let policy = self.policy(v, &path, false).map(|(policy, _)| policy);
            policies.push(policy.unwrap_or_else(placeholder_policy));
        }
        let reusable = policies.len();

        let apps_path = root.key("apps");
        let mut apps = Vec::new();
        let mut router = Router::default();
        let apps_json = self.items(doc.get("apps"), &apps_path);
        let mut app_ids: HashMap<&str, ()> = HashMap::new();
        for (i, v) in apps_json.iter().enumerate() {
            if let Json::Object(entries) = v {
                if let Some(Json::String(id)) = (Obj { entries }).get("id") {
                    if app_ids.insert(id, ()).is_some() {
                        self.p.add(
                            &apps_path.index(i).key("id"),
                            format!("duplicate id `{id}`"),
                        );
                    }
                }
            }
        }
        for (i, v) in apps_json.iter().enumerate() {
            let path = apps_path.index(i);
            if let Some(app) = self.app(v, &path, &mut policies, reusable) {
                let index = u32::try_from(apps.len()).unwrap_or(u32::MAX);
                if !router.insert(&app.domain, index) {
                    self.p.add(
                        &path.key("domain"),
                        format!("duplicate app domain `{}`", app.domain),
                    );
                }
                apps.push(app);
            }
        }

        let (edges, names) = self.directory(doc.get("directory"), &root.key("directory"));
        let hierarchy = match GroupHierarchy::new(&edges, &self.referenced, &self.options.limits) {
            Ok(h) => h,
            Err(e) => {
                self.p.add(&root.key("directory"), e.to_string());
                GroupHierarchy::default()
            }
        };

        Some(Engine {
            team_domain: team_domain?,
            idp_ixs: (0..self.idps.len())
                .map(|i| IdpIx::new(MINTED, u32::try_from(i).unwrap_or(u32::MAX)))
                .collect(),
            idps: core::mem::take(&mut self.idps),
            lists: core::mem::take(&mut self.lists),
            groups: groups
                .into_iter()
                .map(|g| g.unwrap_or_else(placeholder_group))
                .collect(),
            policies,
            apps,
            router,
            hierarchy,
            group_names: names,
            warnings: core::mem::take(&mut self.warnings),
            default_session: SessionDuration::default_session(),
            service_tokens: core::mem::take(&mut self.service_tokens),
        })
    }

    /// The items of an optional top-level array.
    fn items(&mut self, value: Option<&'j Json<'j>>, path: &Path<'_>) -> &'j [Json<'j>] {
        match value {
            Some(v) => self.p.array(v, path).unwrap_or(&[]),
            None => &[],
        }
    }

    fn index_ids(&mut self, items: &'j [Json<'j>], path: &Path<'_>, groups: bool) {
        for (i, v) in items.iter().enumerate() {
            let at = path.index(i);
            let Json::Object(entries) = v else { continue };
            let obj = Obj { entries };
            let Some(id) = obj.get("id") else {
                self.p.add(&at, "missing field `id`");
                continue;
            };
            let Some(id) = self.p.nonempty(id, &at.key("id")) else {
                continue;
            };
            let index = if groups {
                &mut self.group_index
            } else {
                &mut self.policy_index
            };
            let n = u32::try_from(i).unwrap_or(u32::MAX);
            if index.insert(id, n).is_some() {
                self.p.add(&at.key("id"), format!("duplicate id `{id}`"));
            }
        }
    }

    fn identity_provider(&mut self, v: &'j Json<'j>, path: &Path<'_>) {
        let Some(o) = self.p.object(
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

    fn scim_config(&mut self, v: Option<&'j Json<'j>>, path: &Path<'_>) -> Option<ScimConfig> {
        let o = self.p.object(
            v?,
            path,
            &[
                "enabled",
                "user_deprovision",
                "seat_deprovision",
                "group_member_deprovision",
                "identity_update_behavior",
            ],
            &["secret", "updated_at"],
        )?;
        let mut flag = |key: &str| o.get(key).and_then(|v| self.p.boolean(v, &path.key(key)));
        let enabled = flag("enabled").unwrap_or(false);
        let user_deprovision = flag("user_deprovision").unwrap_or(false);
        let group_member_deprovision = flag("group_member_deprovision").unwrap_or(false);
        let _seat = flag("seat_deprovision");
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
        Some(ScimConfig {
            enabled,
            user_deprovision,
            group_member_deprovision,
            identity_update_behavior: behavior,
        })
    }

    fn service_token(&mut self, v: &'j Json<'j>, path: &Path<'_>) {
        let Some(o) = self.p.object(
            v,
            path,
            &["id", "name", "client_id", "client_secret_sha256"],
            &["created_at", "updated_at", "expires_at", "duration"],
        ) else {
            return;
        };
        let text = |p: &mut Problems, key: &str| {
            o.required(key, path, p)
                .and_then(|v| p.nonempty(v, &path.key(key)))
        };
        let (id, name) = (text(&mut self.p, "id"), text(&mut self.p, "name"));
        let client_id = text(&mut self.p, "client_id");
        if o.get("client_secret").is_some() {
            self.p.add(
                &path.key("client_secret"),
                "secrets do not belong in the document: give `client_secret_sha256` (hex SHA-256 of the secret)",
            );
        }
        let hash = text(&mut self.p, "client_secret_sha256").and_then(|h| {
            let bytes = parse_sha256_hex(h);
            if bytes.is_none() {
                self.p.add(
                    &path.key("client_secret_sha256"),
                    "expected 64 hexadecimal characters (the SHA-256 of the client secret)",
                );
            }
            bytes
        });
        let (Some(id), Some(name), Some(client_id), Some(secret_sha256)) =
            (id, name, client_id, hash)
        else {
            return;
        };
        if self.service_tokens.iter().any(|t| *t.id == *id) {
            self.p.add(&path.key("id"), format!("duplicate id `{id}`"));
            return;
        }
        if self
            .service_tokens
            .iter()
            .any(|t| *t.client_id == *client_id)
        {
            self.p.add(
                &path.key("client_id"),
                format!("duplicate client_id `{client_id}`"),
            );
            return;
        }
        self.service_tokens.push(ServiceTokenConfig {
            id: boxed(id),
            name: boxed(name),
            client_id: boxed(client_id),
            secret_sha256,
        });
    }

    fn list(&mut self, v: &'j Json<'j>, path: &Path<'_>) {
        let Some(o) = self.p.object(
            v,
            path,
            &["id", "name", "type", "items", "description"],
            METADATA,
        ) else {
            return;
        };
        let id = o
            .required("id", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        let kind = o.required("type", path, &mut self.p).and_then(|v| {
            let s = self.p.string(v, &path.key("type"))?;
            match s {
                "EMAIL" | "IP" => Some(s),
                other => {
                    self.p.add(
                        &path.key("type"),
                        format!("unsupported list type `{other}` (`EMAIL` or `IP`)"),
                    );
                    None
                }
            }
        });
        let items_path = path.key("items");
        let items = o
            .required("items", path, &mut self.p)
            .and_then(|v| self.p.array(v, &items_path));
        let (Some(id), Some(name), Some(kind), Some(items)) = (id, name, kind, items) else {
            return;
        };
        let mut emails: Vec<Box<str>> = Vec::new();
        let mut ranges: Vec<IpRange> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let at = items_path.index(i);
            let Some(io) = self
                .p
                .object(item, &at, &["value", "description"], &["created_at"])
            else {
                continue;
            };
            let Some(value) = io.required("value", &at, &mut self.p) else {
                continue;
            };
            let Some(value) = self.p.string(value, &at.key("value")) else {
                continue;
            };
            if kind == "EMAIL" {
                match Email::parse(value) {
                    Ok(e) => emails.push(boxed(e.as_str())),
                    Err(e) => self.p.add(&at.key("value"), format!("{e} `{value}`")),
                }
            } else {
                match IpRange::parse(value) {
                    Ok(r) => ranges.push(r),
                    Err(m) => self.p.add(&at.key("value"), m),
                }
            }
        }
        emails.sort_unstable();
        emails.dedup();
        let index = u32::try_from(self.lists.len()).unwrap_or(u32::MAX);
        if self.list_index.insert(id, index).is_some() {
            self.p.add(&path.key("id"), format!("duplicate id `{id}`"));
            return;
        }
        let items = if kind == "EMAIL" {
            ListItems::Emails(emails)
        } else {
            ListItems::Ranges(ranges)
        };
        self.lists.push(List {
            id: boxed(id),
            name: boxed(name),
            items,
        });
    }

    fn access_group(&mut self, v: &'j Json<'j>, path: &Path<'_>) -> Option<AccessGroup> {
        let o = self.p.object(
            v,
            path,
            &["id", "name", "include", "require", "exclude", "is_default"],
            METADATA,
        )?;
        let id = o
            .get("id")
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        let (rules, needs) = self.rules(&o, path);
        self.group_needs.push(needs);
        Some(AccessGroup {
            id: boxed(id?),
            name: boxed(name?),
            rules: rules?,
        })
    }

    /// Rejects group reference cycles, bounds nesting depth, and folds what each group needs
    /// through the groups it references.
    fn check_group_graph(&mut self, groups: &[Option<AccessGroup>]) {
        let n = groups.len();
        self.group_needs.resize(n, Needs::default());
        let mut out: Vec<Vec<(u32, usize)>> = vec![Vec::new(); n];
        for (e, edge) in self.group_edges.iter().enumerate() {
            if let Some(list) = out.get_mut(edge.from as usize) {
                list.push((edge.to, e));
            }
        }
        // Iterative DFS with colours; a grey target closes a cycle.
        let mut colour = vec![0u8; n]; // 0 white, 1 grey, 2 black
        let mut cycles: Vec<Vec<(u32, usize)>> = Vec::new();
        for start in 0..n {
            if colour.get(start) != Some(&0) {
                continue;
            }
            let mut stack: Vec<(u32, usize, Option<usize>)> =
                vec![(u32::try_from(start).unwrap_or(u32::MAX), 0, None)];
            if let Some(c) = colour.get_mut(start) {
                *c = 1;
            }
            while let Some(&mut (node, ref mut next, _)) = stack.last_mut() {
                let edges = out.get(node as usize).map_or(&[][..], Vec::as_slice);
                if let Some(&(to, edge)) = edges.get(*next) {
                    *next += 1;
                    match colour.get(to as usize).copied() {
                        Some(0) => {
                            if let Some(c) = colour.get_mut(to as usize) {
                                *c = 1;
                            }
                            stack.push((to, 0, Some(edge)));
                        }
                        Some(1) => {
                            // The cycle: the stack from `to` upwards, then this edge.
                            let from = stack.iter().position(|(g, _, _)| *g == to).unwrap_or(0);
                            let mut cycle: Vec<(u32, usize)> = stack
                                .get(from + 1..)
                                .unwrap_or(&[])
                                .iter()
                                .filter_map(|(_, _, e)| e.map(|e| (0, e)))
                                .collect();
                            cycle.push((0, edge));
                            cycles.push(cycle);
                        }
                        _ => {}
                    }
                } else {
                    if let Some(c) = colour.get_mut(node as usize) {
                        *c = 2;
                    }
                    stack.pop();
                }
            }
        }
        for cycle in &cycles {
            let edges: Vec<&GroupEdge> = cycle
                .iter()
                .filter_map(|(_, e)| self.group_edges.get(*e))
                .collect();
            // Report at the reference inside the first group (document order) on the cycle.
            let Some(first) = edges.iter().min_by_key(|e| e.from) else {
                continue;
            };
            let start = edges.iter().position(|e| e.from == first.from).unwrap_or(0);
            let name = |g: u32| {
                groups
                    .get(g as usize)
                    .and_then(Option::as_ref)
                    .map_or_else(|| format!("#{g}"), |g| g.id.to_string())
            };
            let mut text = format!("`{}`", name(first.from));
            for k in 0..edges.len() {
                if let Some(e) = edges.get((start + k) % edges.len()) {
                    text.push_str(&format!(" -> `{}`", name(e.to)));
                }
            }
            let path = first.path.clone();
            self.p
                .list
                .push((path, format!("access group cycle: {text}")));
        }
        if !cycles.is_empty() {
            return;
        }
        // Acyclic: depth and needs by memoised post-order.
        let limit = self.options.limits.max_access_group_depth;
        let mut depth: Vec<Option<usize>> = vec![None; n];
        for start in 0..n {
            let mut stack: Vec<(u32, usize)> = vec![(u32::try_from(start).unwrap_or(u32::MAX), 0)];
            while let Some(&mut (node, ref mut next)) = stack.last_mut() {
                if depth.get(node as usize).copied().flatten().is_some() {
                    stack.pop();
                    continue;
                }
                let edges = out.get(node as usize).map_or(&[][..], Vec::as_slice);
                if let Some(&(to, _)) = edges.get(*next) {
                    *next += 1;
                    if depth.get(to as usize).copied().flatten().is_none() {
                        stack.push((to, 0));
                    }
                    continue;
                }
                let mut d = 1;
                let mut needs = self
                    .group_needs
                    .get(node as usize)
                    .copied()
                    .unwrap_or_default();
                for &(to, _) in edges {
                    d = d.max(1 + depth.get(to as usize).copied().flatten().unwrap_or(0));
                    needs = needs.union(
                        self.group_needs
                            .get(to as usize)
                            .copied()
                            .unwrap_or_default(),
                    );
                }
                if let Some(slot) = depth.get_mut(node as usize) {
                    *slot = Some(d);
                }
                if let Some(slot) = self.group_needs.get_mut(node as usize) {
                    *slot = needs;
                }
                stack.pop();
            }
        }
        for (g, d) in depth.iter().enumerate() {
            if d.unwrap_or(0) > limit {
                let path = format!("groups[{g}]");
                self.p.list.push((
                    path,
                    format!("access groups nest more than {limit} deep through this group"),
                ));
            }
        }
    }

    /// Parses a policy (reusable, or inline in an app when `inline`); returns it with its
    /// explicit precedence.
    fn policy(
        &mut self,
        v: &'j Json<'j>,
        path: &Path<'_>,
        inline: bool,
    ) -> Option<(Policy, Option<u32>)> {
        let known = if inline {
            INLINE_POLICY_FIELDS
        } else {
            INLINE_POLICY_FIELDS.get(1..).unwrap_or(&[])
        };
        let o = self.p.object(v, path, known, METADATA)?;
        let id = match o.get("id") {
            Some(v) => Some(self.p.nonempty(v, &path.key("id"))?),
            None if !inline => {
                self.p.add(path, "missing field `id`");
                None
            }
            None => None,
        };
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("name")));
        let action = o.required("decision", path, &mut self.p).and_then(|v| {
            let at = path.key("decision");
            match self.p.string(v, &at)? {
                "allow" => Some(Action::Allow),
                "deny" => Some(Action::Deny),
                "bypass" => Some(Action::Bypass),
                "non_identity" => Some(Action::NonIdentity),
                other => {
                    self.p.add(
                        &at,
                        format!("unknown decision `{other}` (allow, deny, bypass, non_identity)"),
                    );
                    None
                }
            }
        });
        for key in [
            "approval_required",
            "purpose_justification_required",
            "isolation_required",
        ] {
            if let Some(v) = o.get(key) {
                if self.p.boolean(v, &path.key(key)) == Some(true) {
                    self.p.add(
                        &path.key(key),
                        format!("`{key}: true` is not supported by edge-access"),
                    );
                }
            }
        }
        if let Some(v) = o.get("mfa_config") {
            let at = path.key("mfa_config");
            let disabled = match v {
                Json::Object(entries) => {
                    Obj { entries }.get("mfa_disabled") == Some(&Json::Bool(true))
                }
                _ => false,
            };
            if !disabled {
                self.p.add(
                    &at,
                    "`mfa_config` (independent MFA) is not supported by edge-access; use `mfa_disabled: true` or an `auth_method` rule",
                );
            }
        }
        let session = o
            .get("session_duration")
            .and_then(|v| self.duration(v, &path.key("session_duration")));
        let precedence = if inline {
            o.get("precedence")
                .and_then(|v| self.p.integer(v, &path.key("precedence")))
        } else {
            None
        };
        let (rules, _) = self.rules(&o, path);
        let (rules, action) = (rules?, action?);
        self.check_decision(action, &rules, &o, path);
        if action == Action::Allow && rules.require.is_empty() {
            self.warn_risky_allow(&rules, path);
        }
        Some((
            Policy {
                id: id.map(boxed),
                name: boxed(name?),
                action,
                rules,
                session,
            },
            precedence,
        ))
    }

    fn duration(&mut self, v: &Json<'_>, path: &Path<'_>) -> Option<SessionDuration> {
        let s = self.p.string(v, path)?;
        SessionDuration::parse(s)
            .map_err(|e| self.p.add(path, format!("{e}: `{s}`")))
            .ok()
    }

    fn warn_risky_allow(&mut self, rules: &Rules, path: &Path<'_>) {
        if let Some(i) = rules.include.iter().position(|r| *r == Rule::Everyone) {
            self.warnings.push(Warning {
                path: path.key("include").index(i).to_string(),
                message: "an `allow` policy that includes `everyone` lets in anyone who can sign in with any configured identity provider".into(),
            });
        } else if rules
            .include
            .iter()
            .all(|r| matches!(r, Rule::LoginMethod(_)))
        {
            self.warnings.push(Warning {
                path: path.key("include").to_string(),
                message: "an `allow` policy that includes only login methods lets in anyone who can sign in with that identity provider".into(),
            });
        }
    }

    /// Identity selectors cannot decide `bypass`/`non_identity`; service-token selectors need
    /// `non_identity` (or `bypass`).
    fn check_decision(&mut self, action: Action, _rules: &Rules, o: &Obj<'j>, path: &Path<'_>) {
        for key in ["include", "require", "exclude"] {
            let Some(Json::Array(items)) = o.get(key) else {
                continue;
            };
            let at = path.key(key);
            for (i, item) in items.iter().enumerate() {
                let needs = self.rule_needs(item);
                let rp = at.index(i);
                match (action.is_first_pass(), needs.identity, needs.service_token) {
                    (true, Some(selector), _) => self.p.add(
                        &rp,
                        format!(
                            "identity selector `{selector}` cannot be used in a `{}` policy",
                            action.as_str()
                        ),
                    ),
                    (false, _, Some(selector)) => self.p.add(
                        &rp,
                        format!(
                            "`{selector}` needs decision `non_identity` (or `bypass`), not `{}`",
                            action.as_str()
                        ),
                    ),
                    _ => {}
                }
            }
        }
    }

    /// What an already-validated rule needs (reads the selector key only).
    fn rule_needs(&self, item: &Json<'_>) -> Needs {
        let Json::Object(entries) = item else {
            return Needs::default();
        };
        let [(key, inner)] = entries.as_slice() else {
            return Needs::default();
        };
        match key.as_ref() {
            "group" => {
                let id = match inner {
                    Json::Object(e) => Obj { entries: e }.get("id"),
                    _ => None,
                };
                match id {
                    Some(Json::String(id)) => self
                        .group_index
                        .get(id.as_ref())
                        .and_then(|&g| self.group_needs.get(g as usize).copied())
                        .unwrap_or_default(),
                    _ => Needs::default(),
                }
            }
            other => selector_needs(other),
        }
    }

    /// `include` (required, non-empty), `require`, `exclude` of a policy or Access group.
    fn rules(&mut self, o: &Obj<'j>, path: &Path<'_>) -> (Option<Rules>, Needs) {
        let mut rules = Rules::default();
        let mut needs = Needs::default();
        let mut ok = true;
        for key in ["include", "require", "exclude"] {
            let at = path.key(key);
            let items = match o.get(key) {
                Some(v) => match self.p.array(v, &at) {
                    Some(items) => items,
                    None => {
                        ok = false;
                        continue;
                    }
                },
                None if key == "include" => {
                    self.p.add(path, "missing field `include`");
                    ok = false;
                    continue;
                }
                None => &[],
            };
            if key == "include" && items.is_empty() {
                self.p.add(&at, "a policy needs at least one include rule");
                ok = false;
            }
            let list = match key {
                "include" => &mut rules.include,
                "require" => &mut rules.require,
                _ => &mut rules.exclude,
            };
            for (i, item) in items.iter().enumerate() {
                match parse_rule(self, item, &at.index(i)) {
                    Some((rule, n)) => {
                        list.push(rule);
                        needs = needs.union(n);
                    }
                    None => ok = false,
                }
            }
        }
        (ok.then_some(rules), needs)
    }

    fn idp(&mut self, v: Option<&'j Json<'j>>, path: &Path<'_>, key: &str) -> Option<IdpIx> {
        let Some(v) = v else {
            self.p.add(path, format!("missing field `{key}`"));
            return None;
        };
        let at = path.key(key);
        let s = self.p.string(v, &at)?;
        let found = self.idp_index.get(s).copied();
        if found.is_none() {
            self.p.add(&at, format!("unknown identity provider `{s}`"));
        }
        found.map(|i| IdpIx::new(MINTED, i))
    }

    fn reference_group(&mut self, group: GroupId) -> RefGroupIx {
        let next = u32::try_from(self.referenced.len()).unwrap_or(u32::MAX);
        let referenced = &mut self.referenced;
        let index = *self.referenced_index.entry(group).or_insert_with(|| {
            referenced.push(group);
            next
        });
        RefGroupIx::new(MINTED, index)
    }

    fn app(
        &mut self,
        v: &'j Json<'j>,
        path: &Path<'_>,
        policies: &mut Vec<Policy>,
        reusable: usize,
    ) -> Option<App> {
        let o = self.p.object(
            v,
            path,
            &[
                "id",
                "name",
                "domain",
                "aud",
                "type",
                "session_duration",
                "policies",
                "allowed_idps",
                "custom_deny_url",
                "custom_non_identity_deny_url",
                "custom_deny_message",
                "allow_encoded_slashes",
            ],
            &[
                "created_at",
                "updated_at",
                "uid",
                "app_launcher_visible",
                "logo_url",
                "tags",
                "skip_interstitial",
                "auto_redirect_to_identity",
            ],
        )?;
        let id = o
            .required("id", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("id")));
        let name = o
            .required("name", path, &mut self.p)
            .and_then(|v| self.p.string(v, &path.key("name")));
        let domain = o.required("domain", path, &mut self.p).and_then(|v| {
            let at = path.key("domain");
            let s = self.p.string(v, &at)?;
            DomainPattern::parse(s).map_err(|m| self.p.add(&at, m)).ok()
        });
        let aud = o
            .required("aud", path, &mut self.p)
            .and_then(|v| self.p.nonempty(v, &path.key("aud")));
        if let Some(t) = o.get("type") {
            if let Some(t) = self.p.string(t, &path.key("type")) {
                if t != "self_hosted" {
                    self.p.add(
                        &path.key("type"),
                        format!("unsupported app type `{t}` (only `self_hosted`)"),
                    );
                }
            }
        }
        let session = o
            .get("session_duration")
            .and_then(|v| self.duration(v, &path.key("session_duration")));
        let allowed_idps = o.get("allowed_idps").map(|v| {
            let at = path.key("allowed_idps");
            let items = self.p.array(v, &at).unwrap_or(&[]);
            let mut out = Vec::new();
            for (i, item) in items.iter().enumerate() {
                let ip = at.index(i);
                if let Some(s) = self.p.string(item, &ip) {
                    match self.idp_index.get(s) {
                        Some(&idx) => out.push(IdpIx::new(MINTED, idx)),
                        None => self.p.add(&ip, format!("unknown identity provider `{s}`")),
                    }
                }
            }
            out
        });
        let text = |this: &mut Self, key: &str| {
            o.get(key)
                .and_then(|v| this.p.string(v, &path.key(key)))
                .map(boxed)
        };
        let custom_deny_url = text(self, "custom_deny_url");
        let custom_non_identity_deny_url = text(self, "custom_non_identity_deny_url");
        let custom_deny_message = text(self, "custom_deny_message");
        let allow_encoded_slashes = o
            .get("allow_encoded_slashes")
            .and_then(|v| self.p.boolean(v, &path.key("allow_encoded_slashes")))
            .unwrap_or(false);
        for (key, url) in [
            ("custom_deny_url", &custom_deny_url),
            (
                "custom_non_identity_deny_url",
                &custom_non_identity_deny_url,
            ),
        ] {
            if let Some(u) = url {
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    self.p.add(
                        &path.key(key),
                        format!("`{u}` is not an absolute http(s) URL"),
                    );
                }
            }
        }

        let policies_path = path.key("policies");
        let items = o
            .required("policies", path, &mut self.p)
            .and_then(|v| self.p.array(v, &policies_path))
            .unwrap_or(&[]);
        if items.is_empty() && o.get("policies").is_some() {
            self.warnings.push(Warning {
                path: policies_path.to_string(),
                message: "the app has no policies: every request to it is denied".into(),
            });
        }
        // Each slot with whether its precedence was written (and so has a path to report).
        let mut slots: Vec<(Slot, bool)> = Vec::new();
        let mut explicit = 0usize;
        let mut ok = true;
        for (i, item) in items.iter().enumerate() {
            let at = policies_path.index(i);
            let implicit = u32::try_from(i + 1).unwrap_or(u32::MAX);
            let linked = match item {
                Json::String(id) => self.link(id, &at, reusable).map(|p| (p, None)),
                Json::Object(entries)
                    if !entries
                        .iter()
                        .any(|(k, _)| k == "decision" || k == "include") =>
                {
                    let lo = self.p.object(item, &at, &["id", "precedence"], METADATA);
                    lo.and_then(|lo| {
                        let id = lo.required("id", &at, &mut self.p)?;
                        let id = self.p.string(id, &at.key("id"))?;
                        let precedence = lo
                            .get("precedence")
                            .and_then(|v| self.p.integer(v, &at.key("precedence")));
                        let index = self.link(id, &at.key("id"), reusable)?;
                        Some((index, precedence))
                    })
                }
                _ => {
                    let parsed = self.policy(item, &at, true);
                    let (policy, precedence) = match parsed {
                        Some((policy, precedence)) => (Some(policy), precedence),
                        // Keep checking precedence even when the policy body is bad.
                        None => (None, inline_precedence(item)),
                    };
                    if let Some(id) = policy.as_ref().and_then(|p| p.id.as_ref()) {
                        if self.policy_index.contains_key(id.as_ref()) {
                            self.p.add(&at.key("id"), format!("duplicate id `{id}`"));
                        }
                    }
                    match policy {
                        Some(policy) => {
                            let index = u32::try_from(policies.len()).unwrap_or(u32::MAX);
                            policies.push(policy);
                            Some((index, precedence))
                        }
                        None => {
                            ok = false;
                            Some((u32::MAX, precedence))
                        }
                    }
                }
            };
            let Some((policy, precedence)) = linked else {
                ok = false;
                continue;
            };
            if precedence.is_some() {
                explicit += 1;
            }
            let (value, written) = match precedence {
                Some(n) => (n, true),
                None => (implicit, false),
            };
            if (policy as usize) < reusable
                && slots.iter().any(|(s, _)| s.policy.get() == policy as usize)
            {
                self.p
                    .add(&at, "the same policy is attached to this app twice");
                ok = false;
            }
            slots.push((
                Slot {
                    // A failed inline policy leaves `u32::MAX` here, and the app is dropped.
                    policy: PolicyIx::new(MINTED, policy),
                    precedence: value,
                },
                written,
            ));
        }
        if explicit != 0 && explicit != slots.len() {
            if let Some(i) = slots.iter().position(|(_, written)| !written) {
                self.p.add(
                    &policies_path.index(i),
                    "precedence must be given for every policy of the app or for none",
                );
            }
            ok = false;
        } else {
            for (i, (slot, written)) in slots.iter().enumerate() {
                let earlier = slots.get(..i).unwrap_or(&[]);
                if earlier.iter().any(|(s, _)| s.precedence == slot.precedence) {
                    let item = policies_path.index(i);
                    let at = if *written {
                        item.key("precedence")
                    } else {
                        item
                    };
                    self.p
                        .add(&at, format!("duplicate precedence `{}`", slot.precedence));
                    ok = false;
                }
            }
        }
        let mut order: Vec<Slot> = slots.into_iter().map(|(s, _)| s).collect();
        let first = |s: &Slot| {
            policies
                .get(s.policy.get())
                .is_some_and(|p| p.action.is_first_pass())
        };
        order.sort_by_key(|s| (!first(s), s.precedence));
        let first_pass = order.iter().take_while(|s| first(s)).count();
        if !ok {
            return None;
        }
        Some(App {
            id: boxed(id?),
            name: boxed(name?),
            domain: domain?,
            aud: boxed(aud?),
            session,
            allowed_idps,
            custom_deny_url,
            custom_non_identity_deny_url,
            custom_deny_message,
            allow_encoded_slashes,
            order,
            first_pass,
        })
    }

    fn link(&mut self, id: &str, path: &Path<'_>, reusable: usize) -> Option<u32> {
        match self.policy_index.get(id) {
            Some(&i) if (i as usize) < reusable => Some(i),
            _ => {
                self.p.add(path, format!("unknown policy `{id}`"));
                None
            }
        }
    }

    fn directory(&mut self, v: Option<&'j Json<'j>>, path: &Path<'_>) -> DirectoryParts {
        let mut edges: Vec<(GroupId, GroupId)> = self.options.group_parents.clone();
        let mut names: HashMap<GroupId, Box<str>> =
            self.options.group_names.iter().cloned().collect();
        let Some(v) = v else { return (edges, names) };
        let Some(o) = self
            .p
            .object(v, path, &["group_parents", "group_names"], &[])
        else {
            return (edges, names);
        };
        if let Some(gp) = o.get("group_parents") {
            let at = path.key("group_parents");
            match gp {
                Json::Object(map) => {
                    for (child, parents) in map {
                        let cp = at.key(child);
                        let child_id = match GroupId::parse(child) {
                            Ok(g) => Some(g),
                            Err(e) => {
                                self.p.add(&cp, format!("`{child}` is {e}"));
                                None
                            }
                        };
                        let items = self.p.array(parents, &cp).unwrap_or(&[]);
                        for (i, parent) in items.iter().enumerate() {
                            let pp = cp.index(i);
                            let Some(s) = self.p.string(parent, &pp) else {
                                continue;
                            };
                            match (GroupId::parse(s), child_id) {
                                (Ok(p), Some(c)) => edges.push((c, p)),
                                (Ok(_), None) => {}
                                (Err(e), _) => self.p.add(&pp, format!("`{s}` is {e}")),
                            }
                        }
                    }
                }
                other => self
                    .p
                    .add(&at, format!("expected an object, found {}", other.kind())),
            }
        }
        if let Some(gn) = o.get("group_names") {
            let at = path.key("group_names");
            match gn {
                Json::Object(entries) => {
                    for (id, name) in entries {
                        let np = at.key(id);
                        let Some(name) = self.p.string(name, &np) else {
                            continue;
                        };
                        match GroupId::parse(id) {
                            Ok(g) => {
                                names.insert(g, boxed(name));
                            }
                            Err(e) => self.p.add(&np, format!("`{id}` is {e}")),
                        }
                    }
                }
                other => self
                    .p
                    .add(&at, format!("expected an object, found {}", other.kind())),
            }
        }
        (edges, names)
    }
}

/// What a selector needs, by its key alone (Access groups are resolved by the caller).
fn selector_needs(key: &str) -> Needs {
    match key {
        "email" | "email_domain" | "email_list" | "azureAD" | "login_method" | "auth_method"
        | "auth_context" | "oidc" => Needs::identity(match key {
            "email" => "email",
            "email_domain" => "email_domain",
            "email_list" => "email_list",
            "azureAD" => "azureAD",
            "login_method" => "login_method",
            "auth_method" => "auth_method",
            "auth_context" => "auth_context",
            _ => "oidc",
        }),
        "service_token" => Needs {
            identity: None,
            service_token: Some("service_token"),
        },
        "any_valid_service_token" => Needs {
            identity: None,
            service_token: Some("any_valid_service_token"),
        },
        _ => Needs::default(),
    }
}

/// One rule: an object with exactly one selector key.
fn parse_rule<'j>(
    l: &mut Loader<'j, '_>,
    v: &'j Json<'j>,
    path: &Path<'_>,
) -> Option<(Rule, Needs)> {
    let Json::Object(entries) = v else {
        l.p.add(path, format!("expected an object, found {}", v.kind()));
        return None;
    };
    let [(key, inner)] = entries.as_slice() else {
        l.p.add(
            path,
            format!(
                "a rule must have exactly one selector key, found {}",
                entries.len()
            ),
        );
        return None;
    };
    let at = path.key(key);
    let needs = selector_needs(key);
    let field = |l: &mut Loader<'j, '_>, o: &Obj<'j>, name: &str| -> Option<&'j str> {
        let v = o.required(name, &at, &mut l.p)?;
        l.p.nonempty(v, &at.key(name))
    };
    let rule = match key.as_ref() {
        "everyone" | "certificate" | "any_valid_service_token" => {
            l.p.object(inner, &at, &[], &[])?;
            match key.as_ref() {
                "everyone" => Rule::Everyone,
                "certificate" => Rule::Certificate,
                _ => Rule::AnyServiceToken,
            }
        }
        "email" => {
            let o = l.p.object(inner, &at, &["email"], &[])?;
            let s = field(l, &o, "email")?;
            let e = Email::parse(s)
                .map_err(|e| l.p.add(&at.key("email"), format!("{e} `{s}`")))
                .ok()?;
            Rule::Email(boxed(e.as_str()))
        }
        "email_domain" => {
            let o = l.p.object(inner, &at, &["domain"], &[])?;
            let s = field(l, &o, "domain")?;
            let d = parse_domain(s)
                .map_err(|m| l.p.add(&at.key("domain"), format!("`{s}` {m}")))
                .ok()?;
            Rule::EmailDomain(d)
        }
        "email_list" | "ip_list" => {
            let o = l.p.object(inner, &at, &["id"], &[])?;
            let id = field(l, &o, "id")?;
            let Some(&index) = l.list_index.get(id) else {
                l.p.add(&at.key("id"), format!("unknown list `{id}`"));
                return None;
            };
            let list = l.lists.get(index as usize)?;
            match (key.as_ref(), &list.items) {
                ("email_list", ListItems::Emails(_)) => Rule::EmailList(ListIx::new(MINTED, index)),
                ("ip_list", ListItems::Ranges(_)) => Rule::IpList(ListIx::new(MINTED, index)),
                ("email_list", _) => {
                    l.p.add(
                        &at.key("id"),
                        format!("`email_list` needs a list of type `EMAIL`; `{id}` is not"),
                    );
                    return None;
                }
                _ => {
                    l.p.add(
                        &at.key("id"),
                        format!("`ip_list` needs a list of type `IP`; `{id}` is not"),
                    );
                    return None;
                }
            }
        }
        "ip" => {
            let o = l.p.object(inner, &at, &["ip"], &[])?;
            let s = o
                .required("ip", &at, &mut l.p)
                .and_then(|v| l.p.string(v, &at.key("ip")))?;
            Rule::Ip(
                IpRange::parse(s)
                    .map_err(|m| l.p.add(&at.key("ip"), m))
                    .ok()?,
            )
        }
        "geo" => {
            let o = l.p.object(inner, &at, &["country_code"], &[])?;
            let s = field(l, &o, "country_code")?;
            let c = Country::parse(s)
                .map_err(|e| l.p.add(&at.key("country_code"), format!("{e} `{s}`")))
                .ok()?;
            Rule::Geo(c)
        }
        "azureAD" => {
            let o =
                l.p.object(inner, &at, &["id", "identity_provider_id"], &[])?;
            let s = field(l, &o, "id");
            let group = s.and_then(|s| {
                GroupId::parse(s)
                    .map_err(|e| l.p.add(&at.key("id"), format!("`{s}` is {e}")))
                    .ok()
            });
            let idp = l.idp(o.get("identity_provider_id"), &at, "identity_provider_id");
            Rule::AzureGroup {
                group: l.reference_group(group?),
                idp: idp?,
            }
        }
        "group" => {
            let o = l.p.object(inner, &at, &["id"], &[])?;
            let id = field(l, &o, "id")?;
            let Some(&g) = l.group_index.get(id) else {
                l.p.add(&at.key("id"), format!("unknown access group `{id}`"));
                return None;
            };
            if let Some(from) = l.current_group {
                l.group_edges.push(GroupEdge {
                    from,
                    to: g,
                    path: at.key("id").to_string(),
                });
            }
            Rule::AccessGroup(GroupIx::new(MINTED, g))
        }
        "login_method" => {
            let o = l.p.object(inner, &at, &["id"], &[])?;
            Rule::LoginMethod(l.idp(o.get("id"), &at, "id")?)
        }
        "auth_method" => {
            let o = l.p.object(inner, &at, &["auth_method"], &[])?;
            Rule::AuthMethod(boxed(field(l, &o, "auth_method")?))
        }
        "auth_context" => {
            let o =
                l.p.object(inner, &at, &["id", "ac_id", "identity_provider_id"], &[])?;
            let _id = field(l, &o, "id");
            let ac_id = field(l, &o, "ac_id");
            let idp = l.idp(o.get("identity_provider_id"), &at, "identity_provider_id");
            Rule::AuthContext {
                ac_id: boxed(ac_id?),
                idp: idp?,
            }
        }
        "oidc" => {
            let o = l.p.object(
                inner,
                &at,
                &["claim_name", "claim_value", "identity_provider_id"],
                &[],
            )?;
            let claim = field(l, &o, "claim_name");
            let value = o
                .required("claim_value", &at, &mut l.p)
                .and_then(|v| l.p.string(v, &at.key("claim_value")));
            let idp = l.idp(o.get("identity_provider_id"), &at, "identity_provider_id");
            Rule::Oidc {
                claim: boxed(claim?),
                value: boxed(value?),
                idp: idp?,
            }
        }
        "service_token" => {
            let o = l.p.object(inner, &at, &["token_id"], &[])?;
            let id = field(l, &o, "token_id")?;
            if l.service_tokens_given && !l.service_tokens.iter().any(|t| *t.id == *id) {
                l.p.add(&at.key("token_id"), format!("unknown service token `{id}`"));
                return None;
            }
            Rule::ServiceToken(boxed(id))
        }
        "common_name" => {
            let o = l.p.object(inner, &at, &["common_name"], &[])?;
            Rule::CommonName(boxed(field(l, &o, "common_name")?))
        }
        other if UNSUPPORTED_SELECTORS.contains(&other) => {
            l.p.add(path, format!("unsupported selector `{other}`"));
            return None;
        }
        other => {
            l.p.add(path, format!("unknown selector `{other}`"));
            return None;
        }
    };
    Some((rule, needs))
}

/// The precedence of an inline policy whose body did not load (its problems are reported).
fn inline_precedence(item: &Json<'_>) -> Option<u32> {
    let Json::Object(entries) = item else {
        return None;
    };
    let n = (Obj { entries }).get("precedence")?;
    let n = match n {
        Json::Number(n) => n.as_u64().and_then(|n| u32::try_from(n).ok())?,
        _ => return None,
    };
    Some(n)
}

/// 32 bytes from 64 hex digits.
fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    // Digits only: `u8::from_str_radix` would also take a sign (`+a`).
    if !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hex = core::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

fn placeholder_policy() -> Policy {
    Policy {
        id: None,
        name: boxed(""),
        action: Action::Deny,
        rules: Rules::default(),
        session: None,
    }
}

fn placeholder_group() -> AccessGroup {
    AccessGroup {
        id: boxed(""),
        name: boxed(""),
        rules: Rules::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EvalError, Outcome, Request, Target};

    const DOCUMENT: &str = r#"{
      "team_domain": "https://access.example.com",
      "identity_providers": [{ "id": "entra", "name": "Entra", "type": "azureAD",
        "config": { "client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47" } }],
      "lists": [{ "id": "banned", "name": "Banned", "type": "EMAIL",
                  "items": [{ "value": "eve@example.com" }] }],
      "groups": [{ "id": "banned", "name": "Banned", "include": [{ "email_list": { "id": "banned" } }] }],
      "apps": [{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
        "policies": [
          { "name": "Banned", "decision": "deny", "include": [{ "group": { "id": "banned" } }] },
          { "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] }
        ] }]
    }"#;

    fn eve() -> Request {
        let mut request = Request::new(Target::parse("wiki.example.com/").unwrap());
        request.identity = Some(crate::Identity {
            email: Some(crate::Email::parse("eve@example.com").unwrap()),
            ..crate::Identity::default()
        });
        request
    }

    #[test]
    fn secret_hashes_are_hex_digits_only() {
        let digits = "ab".repeat(32);
        assert!(parse_sha256_hex(&digits).is_some());
        let signed = format!("+a{}", "ab".repeat(31));
        assert_eq!(parse_sha256_hex(&signed), None);
        assert_eq!(parse_sha256_hex(&"ab".repeat(31)), None);
    }

    /// A missing entry behind an index is an error: skipping the deny policy, or reading its
    /// group or list as "no match", would let eve in.
    #[test]
    fn a_missing_entry_is_an_error_never_a_skipped_rule() {
        let engine = crate::Engine::from_json(DOCUMENT).unwrap();
        assert_eq!(engine.decide(&eve()).unwrap().outcome, Outcome::Block);

        let mut engine = crate::Engine::from_json(DOCUMENT).unwrap();
        engine.apps[0].order[0].policy = PolicyIx::new(MINTED, 99);
        assert_eq!(
            engine.decide(&eve()).unwrap_err(),
            EvalError::Inconsistent {
                table: "policy",
                index: 99
            }
        );

        let mut engine = crate::Engine::from_json(DOCUMENT).unwrap();
        engine.groups.clear();
        assert!(matches!(
            engine.decide(&eve()),
            Err(EvalError::Inconsistent {
                table: "access group",
                ..
            })
        ));

        let mut engine = crate::Engine::from_json(DOCUMENT).unwrap();
        engine.lists.clear();
        assert!(matches!(
            engine.evaluate(&eve()),
            Err(EvalError::Inconsistent { table: "list", .. })
        ));
    }
}

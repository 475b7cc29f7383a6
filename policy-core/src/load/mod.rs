//! From a JSON document to an [`Engine`]: every field checked, every reference resolved,
//! every problem reported with its path.

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::duration::SessionDuration;
use crate::engine::{Engine, Options};
use crate::error::LoadErrors;
use crate::hierarchy::GroupHierarchy;
use crate::ids::GroupId;
use crate::ix::IdpIx;
use crate::json::{boxed, Json, Obj, Path, Problems};
use crate::model::{IdentityProvider, List, Policy, ServiceTokenConfig, Warning};
use crate::route::Router;

mod apps;
mod directory;
mod groups;
mod identity_providers;
mod lists;
mod policies;
mod rules;
mod service_tokens;
#[cfg(test)]
mod tests;

use groups::{placeholder_group, GroupEdge};
use policies::placeholder_policy;
use rules::Needs;

/// Proof that the loader is the caller, for minting table indices ([`crate::ix`]): its field
/// is private to this module, so nothing else can make one.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Minted(());

const MINTED: Minted = Minted(());

/// Fields Cloudflare's API fills in itself on policies, Access groups and lists: accepted and
/// ignored, each with a warning ([`Loader::object`]).
const READ_ONLY: &[&str] = &[
    "created_at",
    "updated_at",
    "uid",
    "reusable",
    "app_count",
    "version",
];

/// The warning for a read-only field.
pub(crate) const READ_ONLY_FIELD: &str = "read-only field of Cloudflare's API, ignored";

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
        // `&str → u32`, the index maps' type: one copy of the hash table's code in Wasm.
        let mut app_ids: HashMap<&str, u32> = HashMap::new();
        for (i, v) in apps_json.iter().enumerate() {
            if let Json::Object(entries) = v {
                if let Some(Json::String(id)) = (Obj { entries }).get("id") {
                    let index = u32::try_from(i).unwrap_or(u32::MAX);
                    if app_ids.insert(id, index).is_some() {
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

        let (mut edges, names) = self.directory(doc.get("directory"), &root.key("directory"));
        // Edges learned from SCIM nest the groups of the provider SCIM provisions; with no
        // such provider, of everyone (said in a warning).
        let scim_idp = self.idps.iter().position(|p| p.scim.enabled);
        let learned = &self.options.group_parents;
        let mut provider_edges = None;
        if !learned.is_empty() {
            match scim_idp {
                Some(i) => {
                    let mut all = edges.clone();
                    all.extend_from_slice(learned);
                    provider_edges = Some((i, all));
                }
                None => {
                    edges.extend_from_slice(learned);
                    self.warnings.push(Warning {
                        path: root.key("identity_providers").to_string(),
                        message: "no identity provider enables `scim_config`: the SCIM \
                                  directory's nesting applies to the identities of every provider"
                            .into(),
                    });
                }
            }
        }
        let limits = self.options.limits;
        let mut hierarchy_of = |edges: &[(GroupId, GroupId)]| {
            GroupHierarchy::new(edges, &self.referenced, &limits).unwrap_or_else(|e| {
                self.p.add(&root.key("directory"), e.to_string());
                GroupHierarchy::default()
            })
        };
        let hierarchy = hierarchy_of(&edges);
        let provider_hierarchy = provider_edges.map(|(i, all)| {
            let ix = IdpIx::new(MINTED, u32::try_from(i).unwrap_or(u32::MAX));
            (ix, hierarchy_of(&all))
        });

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
            edges,
            limits,
            provider_hierarchy,
            group_names: names,
            warnings: core::mem::take(&mut self.warnings),
            default_session: SessionDuration::default_session(),
            service_tokens: core::mem::take(&mut self.service_tokens),
            stamp: crate::prepared::next_stamp(),
        })
    }

    /// `value` as an object whose keys are all in `known` or `read_only`; a problem for every
    /// other key and a warning for every read-only one (its value is not looked at).
    fn object(
        &mut self,
        value: &'j Json<'j>,
        path: &Path<'_>,
        known: &[&str],
        read_only: &[&str],
    ) -> Option<Obj<'j>> {
        let o = self.p.object(value, path, known, read_only)?;
        for (key, _) in o.entries {
            if read_only.contains(&key.as_ref()) && !known.contains(&key.as_ref()) {
                self.warnings.push(Warning {
                    path: path.key(key).to_string(),
                    message: READ_ONLY_FIELD.into(),
                });
            }
        }
        Some(o)
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
}

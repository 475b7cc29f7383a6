//! The compiled engine: load a document once, decide many requests.

use alloc::boxed::Box;
use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::HashMap;

use crate::duration::SessionDuration;
use crate::error::{EvalError, LoadErrors};
use crate::eval::{self, Explanation, NoTrace};
use crate::hierarchy::{GroupHierarchy, HierarchyError, Limits};
use crate::ids::GroupId;
use crate::ix::{GroupIx, IdpIx, ListIx, PolicyIx};
use crate::model::{AccessGroup, App, IdentityProvider, List, Policy, ServiceTokenConfig, Warning};
use crate::path::{self, PathProblem, PathRefusal};
use crate::request::Request;
use crate::route::{Router, Target};
use crate::verdict::{Decision, Verdict};

/// How a document is compiled.
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct Options {
    /// Work bounds.
    pub limits: Limits,
    /// Extra child → parent group edges learned from SCIM: they nest the groups of the
    /// identities of the provider SCIM provisions (`scim_config.enabled`), next to the
    /// document's `directory.group_parents`; with no such provider, of every identity (and the
    /// engine warns). See also [`Engine::with_directory`].
    pub group_parents: Vec<(GroupId, GroupId)>,
    /// Extra group display names (e.g. from SCIM), for traces.
    pub group_names: Vec<(GroupId, Box<str>)>,
}

impl Options {
    /// Default options with the given limits.
    pub fn with_limits(limits: Limits) -> Options {
        Options {
            limits,
            ..Options::default()
        }
    }
}

/// Groups and their nesting learned from one identity provider's directory (e.g. SCIM
/// provisioning): they speak for that provider's identities only ([`Engine::with_directory`]).
#[derive(Clone, Debug, Default)]
#[non_exhaustive]
pub struct ProviderDirectory {
    /// The identity provider's `id`.
    pub idp_id: String,
    /// Child → parent group edges.
    pub group_parents: Vec<(GroupId, GroupId)>,
    /// Group display names, for traces (the document's own names win).
    pub group_names: Vec<(GroupId, Box<str>)>,
}

impl ProviderDirectory {
    /// An empty directory of identity provider `idp_id`.
    pub fn new(idp_id: &str) -> ProviderDirectory {
        ProviderDirectory {
            idp_id: idp_id.into(),
            ..ProviderDirectory::default()
        }
    }
}

/// Why a [`ProviderDirectory`] cannot be applied.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DirectoryError {
    /// The document has no identity provider with this `id`.
    UnknownProvider(String),
    /// The nesting is over a work bound.
    Hierarchy(HierarchyError),
}

impl core::fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            DirectoryError::UnknownProvider(id) => write!(f, "unknown identity provider `{id}`"),
            DirectoryError::Hierarchy(e) => write!(f, "{e}"),
        }
    }
}

/// A compiled configuration document.
#[derive(Clone, Debug)]
pub struct Engine {
    pub(crate) team_domain: Box<str>,
    pub(crate) idps: Vec<IdentityProvider>,
    /// `idps`' indices, as the loader minted them.
    pub(crate) idp_ixs: Vec<IdpIx>,
    pub(crate) lists: Vec<List>,
    pub(crate) groups: Vec<AccessGroup>,
    pub(crate) policies: Vec<Policy>,
    pub(crate) apps: Vec<App>,
    pub(crate) router: Router,
    pub(crate) hierarchy: GroupHierarchy,
    /// The edges `hierarchy` was built from (the document's and [`Options::group_parents`]).
    pub(crate) edges: Vec<(GroupId, GroupId)>,
    pub(crate) limits: Limits,
    /// One provider's hierarchy with its directory added ([`Engine::with_directory`]).
    pub(crate) provider_hierarchy: Option<(IdpIx, GroupHierarchy)>,
    pub(crate) group_names: HashMap<GroupId, Box<str>>,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) default_session: SessionDuration,
    pub(crate) service_tokens: Vec<ServiceTokenConfig>,
    /// Distinct per engine: which engine a [`crate::PreparedIdentity`] was prepared by.
    pub(crate) stamp: u64,
}

impl Engine {
    /// Loads and compiles a configuration document.
    ///
    /// # Errors
    /// [`LoadErrors`] listing every problem with its JSON path.
    pub fn from_json(text: &str) -> Result<Engine, LoadErrors> {
        Engine::from_json_with(text, &Options::default())
    }

    /// Loads and compiles a configuration document with `options`.
    ///
    /// # Errors
    /// [`LoadErrors`] listing every problem with its JSON path.
    pub fn from_json_with(text: &str, options: &Options) -> Result<Engine, LoadErrors> {
        crate::load::load(text, options)
    }

    /// Decides `request` without building a trace (the fast path for gateways).
    ///
    /// # Errors
    /// [`EvalError`] when a work limit is hit; the request must then be refused.
    pub fn decide(&self, request: &Request) -> Result<Decision<'_>, EvalError> {
        eval::run(self, request, &mut NoTrace)
    }

    /// Decides `request` and records its steps, to be put into words only if wanted (e.g. for
    /// a refusal): one evaluation either way.
    ///
    /// # Errors
    /// [`EvalError`] when a work limit is hit; the request must then be refused.
    pub fn decide_explained(
        &self,
        request: &Request,
    ) -> Result<(Decision<'_>, Explanation<'_>), EvalError> {
        let mut explanation = Explanation::new(self);
        let decision = eval::run(self, request, &mut explanation)?;
        Ok((decision, explanation))
    }

    /// Decides `request` and explains the decision step by step.
    ///
    /// # Errors
    /// [`EvalError`] when a work limit is hit; the request must then be refused.
    pub fn evaluate(&self, request: &Request) -> Result<Verdict, EvalError> {
        let (decision, explanation) = self.decide_explained(request)?;
        Ok(Verdict::new(&decision, explanation.lines(request)))
    }

    /// The app that covers `target`, if any — once its path is known to mean the same app to
    /// every common origin reading (see [`PathRefusal`]).
    ///
    /// # Errors
    /// [`PathRefusal`] when the path has a spelling origins read differently, or when its
    /// readings route to different apps: the request must be refused (400), never forwarded.
    pub fn app_for(&self, target: &Target) -> Result<Option<&App>, PathRefusal> {
        let readings = path::read(target.path())?;
        let host = target.host();
        let folded = self.router.route(host, &readings.folded, false);
        let app = folded.and_then(|i| self.apps.get(i as usize));
        if readings.encoded_slash && !app.is_some_and(|a| a.allow_encoded_slashes) {
            return Err(PathRefusal::Spelling {
                problem: PathProblem::EncodedSlash,
                text: "%2F".into(),
            });
        }
        let id = |i: Option<u32>| {
            i.and_then(|i| self.apps.get(i as usize))
                .map(|a| String::from(&*a.id))
        };
        let sent = self.router.route(host, &readings.sent, true);
        if sent != folded {
            return Err(PathRefusal::Ambiguous {
                reading: "case-insensitively without trailing dots and spaces (as IIS routes it)",
                sent: id(sent),
                other: id(folded),
            });
        }
        if let Some(decoded) = &readings.decoded {
            let decoded = self.router.route(host, decoded, true);
            if decoded != sent {
                return Err(PathRefusal::Ambiguous {
                    reading: "percent-decoded (as nginx routes it)",
                    sent: id(sent),
                    other: id(decoded),
                });
            }
        }
        Ok(app)
    }

    /// Whether some app's domain names `host` (exactly or through a wildcard): only such hosts
    /// are served at all.
    pub fn names_host(&self, host: &str) -> bool {
        self.router.names_host(&host.to_ascii_lowercase())
    }

    /// The issuer of application tokens.
    pub fn team_domain(&self) -> &str {
        &self.team_domain
    }

    /// The configured identity providers.
    pub fn identity_providers(&self) -> &[IdentityProvider] {
        &self.idps
    }

    /// Whether any policy or Access group has an `auth_method` rule: then identities need
    /// the authentication methods (`amr`) of the sign-in, which Entra puts in v1 tokens only.
    pub fn uses_auth_method(&self) -> bool {
        let rules = self
            .policies
            .iter()
            .map(|p| &p.rules)
            .chain(self.groups.iter().map(|g| &g.rules));
        rules
            .flat_map(|r| r.include.iter().chain(&r.require).chain(&r.exclude))
            .any(|rule| matches!(rule, crate::model::Rule::AuthMethod(_)))
    }

    /// The service token with this client id.
    pub fn service_token_by_client_id(&self, client_id: &str) -> Option<&ServiceTokenConfig> {
        self.service_tokens
            .iter()
            .find(|t| *t.client_id == *client_id)
    }

    /// The configured apps.
    pub fn apps(&self) -> &[App] {
        &self.apps
    }

    /// Risky but valid parts of the document.
    pub fn warnings(&self) -> &[Warning] {
        &self.warnings
    }

    /// The compiled nested-group hierarchy.
    pub fn hierarchy(&self) -> &GroupHierarchy {
        &self.hierarchy
    }

    /// The hierarchy the groups of an identity of provider `idp` are read with: with its
    /// provider's directory when one was added, else the document's.
    pub(crate) fn hierarchy_for(&self, idp: Option<IdpIx>) -> &GroupHierarchy {
        match &self.provider_hierarchy {
            Some((ix, hierarchy)) if idp == Some(*ix) => hierarchy,
            _ => &self.hierarchy,
        }
    }

    /// This engine with `directory` added: its nesting (and names) speak for the identities
    /// of `directory.idp_id` only — another provider's identities, even with the same group
    /// ids, are read with the document's nesting alone. Replaces a directory added before.
    /// The document is not read again.
    ///
    /// # Errors
    /// [`DirectoryError`] for an unknown provider or a nesting over the work bounds.
    pub fn with_directory(&self, directory: &ProviderDirectory) -> Result<Engine, DirectoryError> {
        let idp = self
            .idp_ix(&directory.idp_id)
            .ok_or_else(|| DirectoryError::UnknownProvider(directory.idp_id.clone()))?;
        let mut edges = self.edges.clone();
        edges.extend_from_slice(&directory.group_parents);
        let hierarchy = GroupHierarchy::new(&edges, self.hierarchy.referenced(), &self.limits)
            .map_err(DirectoryError::Hierarchy)?;
        let mut engine = self.clone();
        engine.provider_hierarchy = Some((idp, hierarchy));
        for (group, name) in &directory.group_names {
            engine
                .group_names
                .entry(*group)
                .or_insert_with(|| name.clone());
        }
        engine.stamp = crate::prepared::next_stamp();
        Ok(engine)
    }

    /// A group's display name, when the directory or SCIM gave one.
    pub fn group_name(&self, group: GroupId) -> Option<&str> {
        self.group_names.get(&group).map(|n| &**n)
    }

    /// The identity provider `identity` signed in with: the named one, or the only one when
    /// it names none.
    pub(crate) fn identity_idp(&self, identity: &crate::request::Identity) -> Option<IdpIx> {
        match &identity.idp_id {
            Some(id) => self.idp_ix(id),
            None if self.idps.len() == 1 => self.idp_ixs.first().copied(),
            None => None,
        }
    }

    /// The index of identity provider `id`.
    pub(crate) fn idp_ix(&self, id: &str) -> Option<IdpIx> {
        let position = self.idps.iter().position(|p| *p.id == *id)?;
        self.idp_ixs.get(position).copied()
    }

    /// The policy at `ix`.
    pub(crate) fn policy(&self, ix: PolicyIx) -> Result<&Policy, EvalError> {
        self.policies.get(ix.get()).ok_or(EvalError::Inconsistent {
            table: "policy",
            index: ix.get(),
        })
    }

    /// The Access group at `ix`.
    pub(crate) fn group(&self, ix: GroupIx) -> Result<&AccessGroup, EvalError> {
        self.groups.get(ix.get()).ok_or(EvalError::Inconsistent {
            table: "access group",
            index: ix.get(),
        })
    }

    /// The list at `ix`.
    pub(crate) fn list(&self, ix: ListIx) -> Result<&List, EvalError> {
        self.lists.get(ix.get()).ok_or(EvalError::Inconsistent {
            table: "list",
            index: ix.get(),
        })
    }

    /// The group as shown in traces: ``` `id` (name)```.
    pub(crate) fn describe_group(&self, group: GroupId) -> String {
        match self.group_name(group) {
            Some(name) => alloc::format!("`{group}` ({name})"),
            None => alloc::format!("`{group}`"),
        }
    }
}

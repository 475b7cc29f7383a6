//! The emulated directory: one tenant (and a partner tenant), the gateway's app registration,
//! users and nested groups, loaded from one JSON file (`emulator/fixtures/entra.json`).
//!
//! Groups name their `parents`, the groups they are themselves members of, as Entra nests
//! groups. [`Fixtures::transitive_groups`] is the closure over `parents` that real Entra puts
//! in the `groups` claim; it visits every group at most once, so cycles end.

use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// The fixture file: tenant, app registration, users and groups.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    /// What the file is for (ignored).
    #[serde(default)]
    pub description: Option<String>,
    /// The directory (tenant) id, a GUID: `tid` in tokens.
    pub tenant_id: String,
    /// The gateway's app registration (client id), a GUID: the API audience.
    pub client_id: String,
    /// The app registration's client secret, which the token endpoint checks.
    pub client_secret: String,
    /// What the app registration's `groups` claim lists (its manifest's
    /// `groupMembershipClaims`). Absent or `null`: no groups claim at all, as a new
    /// registration in Entra (the portal's *Add groups claim* sets it).
    #[serde(default)]
    pub group_membership_claims: Option<GroupMembershipClaims>,
    /// The registration's `optionalClaims` (manifest spelling): which optional claims ID
    /// tokens and access tokens for the app carry, and in which form groups are emitted.
    #[serde(default, rename = "optionalClaims")]
    pub optional_claims: OptionalClaims,
    /// The registration's redirect URIs (web platform). An authorize request must name one
    /// exactly (case-sensitive); on loopback hosts (`localhost`, `127.0.0.1`) the port is
    /// ignored, as Entra does. None registered: every sign-in is refused (`AADSTS50011`).
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    /// The registration's application id URIs (manifest `identifierUris`), under which
    /// clients ask for tokens for its API: v1 access tokens carry the one asked for as
    /// `aud`, with or without a trailing slash. Empty: `api://{client_id}`.
    #[serde(default)]
    pub identifier_uris: Vec<String>,
    /// The Microsoft Graph application permissions an administrator granted the registration
    /// (app roles): the `roles` of its client credentials tokens for Graph.
    #[serde(default)]
    pub graph_application_permissions: Vec<String>,
    /// The registration has its own signing key (what a claims-mapping policy needs): tokens
    /// for it are signed by a key published only at the JWKS URI with `?appid={client_id}`.
    #[serde(default)]
    pub app_signing_key: bool,
    /// The national cloud the tenant lives in, which names Microsoft Graph's resource.
    #[serde(default)]
    pub cloud: Cloud,
    /// Users, each named by a short `key` (`ada`) in token requests.
    pub users: Vec<User>,
    /// Every group of the tenant.
    pub groups: Vec<Group>,
    /// A partner organisation's tenant, served by the same emulator beside this one: its own
    /// id, app registration (client id, secret, redirect URIs), users, groups and signing keys.
    /// It names no partner of its own.
    #[serde(default)]
    pub partner: Option<Box<Fixtures>>,
}

/// The app registration's `groupMembershipClaims`, as far as the emulator models it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
pub enum GroupMembershipClaims {
    /// Security groups only (Microsoft 365 groups are left out of the claim).
    #[default]
    SecurityGroup,
    /// Every group.
    All,
}

/// A national cloud: which Microsoft Graph the tenant's tokens are for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Cloud {
    /// The global service: `https://graph.microsoft.com`.
    #[default]
    Global,
    /// US Government (L4): `https://graph.microsoft.us`.
    UsGovernment,
    /// China, operated by 21Vianet: `https://microsoftgraph.chinacloudapi.cn`.
    China,
}

impl Cloud {
    /// Microsoft Graph's resource (and `aud` of its tokens) in this cloud.
    pub fn graph_resource(self) -> &'static str {
        match self {
            Cloud::Global => "https://graph.microsoft.com",
            Cloud::UsGovernment => "https://graph.microsoft.us",
            Cloud::China => "https://microsoftgraph.chinacloudapi.cn",
        }
    }
}

/// The manifest's `optionalClaims`, per token type.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionalClaims {
    /// `idToken`: claims added to ID tokens the app receives.
    #[serde(default, rename = "idToken")]
    pub id_token: Vec<OptionalClaim>,
    /// `accessToken`: claims added to access tokens for the app's API.
    #[serde(default, rename = "accessToken")]
    pub access_token: Vec<OptionalClaim>,
}

/// One optional claim: `{"name": "email"}`, `{"name": "groups", "additionalProperties":
/// ["sam_account_name", "emit_as_roles"]}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionalClaim {
    /// The claim (`email`, `upn`, `idtyp`, `groups`, …).
    pub name: String,
    /// `source` (unused by the emulator).
    #[serde(default)]
    pub source: Option<String>,
    /// `essential` (unused by Entra for these claims).
    #[serde(default)]
    pub essential: bool,
    /// `additionalProperties`: `include_user_token` (`idtyp`),
    /// `include_externally_authenticated_upn` (`upn`), `sam_account_name`,
    /// `dns_domain_and_sam_account_name`, `netbios_domain_and_sam_account_name`,
    /// `cloud_displayname`, `emit_as_roles` (`groups`).
    #[serde(default, rename = "additionalProperties")]
    pub additional_properties: Vec<String>,
}

/// Which token an optional claim applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// An ID token (the sign-in).
    Id,
    /// An access token for the app's API.
    Access,
}

impl OptionalClaims {
    /// The optional claim `name` for tokens of `kind`, when configured.
    pub fn get(&self, kind: TokenKind, name: &str) -> Option<&OptionalClaim> {
        let claims = match kind {
            TokenKind::Id => &self.id_token,
            TokenKind::Access => &self.access_token,
        };
        claims.iter().find(|claim| claim.name == name)
    }

    /// Whether `name` is configured for tokens of `kind` with `property` among its
    /// `additionalProperties`.
    pub fn has(&self, kind: TokenKind, name: &str, property: &str) -> bool {
        self.get(kind, name)
            .is_some_and(|claim| claim.additional_properties.iter().any(|p| p == property))
    }
}

/// A user of the emulated tenant: what tokens and Graph say of them, and what Entra's
/// provisioning service sends ([`crate::provisioning`]).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    /// The short name tests and the sign-in page use (`ada`).
    pub key: String,
    /// What the user is for (ignored).
    #[serde(default)]
    pub description: Option<String>,
    /// The immutable object id (GUID): `oid` in tokens.
    pub oid: String,
    /// Display name.
    pub name: String,
    /// User principal name: `upn` and `unique_name` (v1), `preferred_username` (v2) of
    /// members.
    pub upn: String,
    /// The `mail` attribute, which need not be the UPN, and which many users lack: `email`
    /// when a token carries one (see the reference table in `tests/README.md`).
    #[serde(default)]
    pub mail: Option<String>,
    /// `Member` (the default) or `Guest` (a B2B guest: tokens carry `email` by default, no
    /// `upn`).
    #[serde(default, rename = "userType")]
    pub user_type: UserType,
    /// Object ids of the groups the user is a direct member of.
    pub groups: Vec<String>,
    /// Authentication methods (`pwd`, `mfa`): `amr`, which only v1 tokens carry.
    pub amr: Vec<String>,
    /// Which groups the `groups` claim carries.
    #[serde(default)]
    pub groups_claim: GroupsClaim,
    /// `employeeId`, which provisioning sends as the enterprise extension's
    /// `employeeNumber`.
    #[serde(default, rename = "employeeId")]
    pub employee_id: Option<String>,
    /// The [`User::key`] of the user's manager (Entra's `manager` reference), which
    /// provisioning links once both are provisioned.
    #[serde(default)]
    pub manager: Option<String>,
    /// The values of the gateway app's roles assigned to the user (*Enterprise applications* →
    /// *Users and groups*): the `roles` claim of the user's access tokens for the app, absent
    /// when none is assigned.
    #[serde(default)]
    pub app_roles: Vec<String>,
}

/// Graph's `userType`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub enum UserType {
    /// A member of the tenant.
    #[default]
    Member,
    /// A B2B guest, homed in another directory.
    Guest,
}

impl User {
    /// Whether the user is a B2B guest.
    pub fn is_guest(&self) -> bool {
        self.user_type == UserType::Guest
    }
}

/// What goes in a user's `groups` claim.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum GroupsClaim {
    /// Direct and nested groups, as Entra emits by default.
    #[default]
    Transitive,
    /// Direct groups only: the "groups assigned to the application" option, which omits
    /// nested groups.
    Direct,
}

/// A group of the emulated tenant (also what provisioning sends of it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Group {
    /// The object id (GUID).
    pub id: String,
    /// The display name tests look groups up by.
    #[serde(rename = "displayName")]
    pub display_name: String,
    /// What the group is for (ignored).
    #[serde(default)]
    pub description: Option<String>,
    /// The groups this group is a member of.
    #[serde(default)]
    pub parents: Vec<String>,
    /// A security group (the default); `false` for a Microsoft 365 group, which Graph's
    /// `getMemberObjects` leaves out when asked for `securityEnabledOnly`.
    #[serde(rename = "securityEnabled", default = "security_enabled_default")]
    pub security_enabled: bool,
    /// For a group synchronized from Active Directory: its `sAMAccountName`, which the
    /// `groups` claim carries instead of the object id when the registration asks for it.
    /// Cloud groups have none.
    #[serde(rename = "onPremisesSamAccountName", default)]
    pub on_premises_sam_account_name: Option<String>,
    /// Its NetBIOS domain name (`CORP`), for `netbios_domain_and_sam_account_name`.
    #[serde(rename = "onPremisesNetBiosName", default)]
    pub on_premises_net_bios_name: Option<String>,
    /// Its DNS domain name (`corp.example.com`), for `dns_domain_and_sam_account_name`.
    #[serde(rename = "onPremisesDomainName", default)]
    pub on_premises_domain_name: Option<String>,
}

fn security_enabled_default() -> bool {
    true
}

impl Default for Group {
    /// A cloud security group with no id, name or parents.
    fn default() -> Self {
        Self {
            id: String::new(),
            display_name: String::new(),
            description: None,
            parents: Vec::new(),
            security_enabled: security_enabled_default(),
            on_premises_sam_account_name: None,
            on_premises_net_bios_name: None,
            on_premises_domain_name: None,
        }
    }
}

/// Why a fixture file cannot be used.
#[derive(Debug)]
#[non_exhaustive]
pub enum FixturesError {
    /// The file cannot be read.
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The file is not valid fixture JSON.
    Parse {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: serde_json::Error,
    },
    /// The content is inconsistent (a bad GUID, a duplicate, an unknown group).
    Invalid {
        /// Where in the document.
        at: String,
        /// What is wrong.
        problem: String,
    },
}

impl fmt::Display for FixturesError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Read { path, source } => {
                write!(f, "cannot read fixtures `{}`: {source}", path.display())
            }
            Self::Parse { path, source } => {
                write!(f, "invalid fixtures `{}`: {source}", path.display())
            }
            Self::Invalid { at, problem } => write!(f, "invalid fixtures at `{at}`: {problem}"),
        }
    }
}

impl std::error::Error for FixturesError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Read { source, .. } => Some(source),
            Self::Parse { source, .. } => Some(source),
            Self::Invalid { .. } => None,
        }
    }
}

impl Fixtures {
    /// `emulator/fixtures/entra.json` in the checkout found at run time (relative to the
    /// current directory without one, so that loading it fails naming the path).
    pub fn default_path() -> PathBuf {
        workspace_root::find()
            .unwrap_or_default()
            .join("emulator")
            .join("fixtures")
            .join("entra.json")
    }

    /// The fixtures at [`Fixtures::default_path`].
    ///
    /// # Errors
    ///
    /// As [`Fixtures::load`].
    pub fn load_default() -> Result<Self, FixturesError> {
        Self::load(Self::default_path())
    }

    /// Reads and checks a fixture file.
    ///
    /// # Errors
    ///
    /// When the file cannot be read, is not fixture JSON, or is inconsistent: a malformed
    /// GUID, a duplicate user key or object id, or a reference to a group that is not
    /// defined.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, FixturesError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| FixturesError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let fixtures: Self =
            serde_json::from_str(&text).map_err(|source| FixturesError::Parse {
                path: path.to_path_buf(),
                source,
            })?;
        fixtures.check()?;
        Ok(fixtures)
    }

    /// Checks the invariants [`Fixtures::load`] promises.
    ///
    /// # Errors
    ///
    /// See [`Fixtures::load`].
    pub fn check(&self) -> Result<(), FixturesError> {
        let invalid = |at: String, problem: String| FixturesError::Invalid { at, problem };
        guid(&self.tenant_id).ok_or_else(|| invalid("tenant_id".into(), "not a GUID".into()))?;
        guid(&self.client_id).ok_or_else(|| invalid("client_id".into(), "not a GUID".into()))?;
        if self.client_secret.is_empty() {
            return Err(invalid("client_secret".into(), "empty".into()));
        }

        let mut group_ids = HashSet::new();
        for (index, group) in self.groups.iter().enumerate() {
            let id = guid(&group.id)
                .ok_or_else(|| invalid(format!("groups[{index}].id"), "not a GUID".into()))?;
            if !group_ids.insert(id) {
                return Err(invalid(
                    format!("groups[{index}].id"),
                    format!("duplicate group `{}`", group.id),
                ));
            }
        }
        for (index, group) in self.groups.iter().enumerate() {
            for (parent_index, parent) in group.parents.iter().enumerate() {
                if !guid(parent).is_some_and(|parent| group_ids.contains(&parent)) {
                    return Err(invalid(
                        format!("groups[{index}].parents[{parent_index}]"),
                        format!("unknown group `{parent}`"),
                    ));
                }
            }
        }

        let mut keys = HashSet::new();
        let mut oids = HashSet::new();
        for (index, user) in self.users.iter().enumerate() {
            if !keys.insert(user.key.as_str()) {
                return Err(invalid(
                    format!("users[{index}].key"),
                    format!("duplicate user `{}`", user.key),
                ));
            }
            let oid = guid(&user.oid)
                .ok_or_else(|| invalid(format!("users[{index}].oid"), "not a GUID".into()))?;
            if !oids.insert(oid) {
                return Err(invalid(
                    format!("users[{index}].oid"),
                    format!("duplicate object id `{}`", user.oid),
                ));
            }
            for (group_index, group) in user.groups.iter().enumerate() {
                if !guid(group).is_some_and(|group| group_ids.contains(&group)) {
                    return Err(invalid(
                        format!("users[{index}].groups[{group_index}]"),
                        format!("unknown group `{group}`"),
                    ));
                }
            }
        }
        if let Some(partner) = &self.partner {
            partner.check().map_err(|error| match error {
                FixturesError::Invalid { at, problem } => invalid(format!("partner.{at}"), problem),
                other => other,
            })?;
            if partner.partner.is_some() {
                return Err(invalid(
                    "partner.partner".into(),
                    "a partner tenant names no partner of its own".into(),
                ));
            }
            if guid(&partner.tenant_id) == guid(&self.tenant_id) {
                return Err(invalid(
                    "partner.tenant_id".into(),
                    "the partner tenant is this tenant".into(),
                ));
            }
        }
        Ok(())
    }

    /// Whether `resource` names the registration's API: its client id, or one of its
    /// application id URIs (with or without a trailing slash).
    pub fn is_api_resource(&self, resource: &str) -> bool {
        if resource.eq_ignore_ascii_case(&self.client_id) {
            return true;
        }
        let default = [format!("api://{}", self.client_id)];
        let uris = if self.identifier_uris.is_empty() {
            &default[..]
        } else {
            &self.identifier_uris[..]
        };
        let bare = resource.strip_suffix('/').unwrap_or(resource);
        uris.iter()
            .any(|uri| uri.strip_suffix('/').unwrap_or(uri) == bare)
    }

    /// Whether an authorize request may redirect to `uri`: it is one of
    /// [`Fixtures::redirect_uris`] exactly (case-sensitive), except that on a loopback host
    /// (`localhost`, `127.0.0.1`) the port is ignored (RFC 8252 §7.3, §8.3), as Entra does.
    pub fn redirect_uri_registered(&self, uri: &str) -> bool {
        let loopback_without_port = |uri: &str| -> Option<String> {
            let (scheme, rest) = uri.split_once("://")?;
            let end = rest.find(['/', '?']).unwrap_or(rest.len());
            let (authority, tail) = rest.split_at(end);
            let host = authority
                .rsplit_once(':')
                .map_or(authority, |(host, port)| {
                    if port.bytes().all(|b| b.is_ascii_digit()) {
                        host
                    } else {
                        authority
                    }
                });
            matches!(host, "localhost" | "127.0.0.1").then(|| format!("{scheme}://{host}{tail}"))
        };
        self.redirect_uris.iter().any(|registered| {
            registered == uri
                || matches!(
                    (loopback_without_port(registered), loopback_without_port(uri)),
                    (Some(a), Some(b)) if a == b
                )
        })
    }

    /// The user with this `key`.
    pub fn user(&self, key: &str) -> Option<&User> {
        self.users.iter().find(|user| user.key == key)
    }

    /// The user with this object id (GUIDs compare case-insensitively).
    pub fn user_by_oid(&self, oid: &str) -> Option<&User> {
        self.users
            .iter()
            .find(|user| user.oid.eq_ignore_ascii_case(oid))
    }

    /// The group with this object id (GUIDs compare case-insensitively).
    pub fn group(&self, id: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|group| group.id.eq_ignore_ascii_case(id))
    }

    /// The group with this display name.
    pub fn group_named(&self, display_name: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|group| group.display_name == display_name)
    }

    /// The object id of the group with this display name.
    pub fn group_id(&self, display_name: &str) -> Option<&str> {
        self.group_named(display_name)
            .map(|group| group.id.as_str())
    }

    /// Every group `user` is a member of, directly or through nesting: the user's direct
    /// groups in fixture order, then their ancestors breadth-first. Each group appears once;
    /// a cycle among groups ends the walk instead of looping.
    pub fn transitive_groups(&self, user: &User) -> Vec<String> {
        let parents: HashMap<String, &[String]> = self
            .groups
            .iter()
            .map(|group| (group.id.to_ascii_lowercase(), group.parents.as_slice()))
            .collect();
        let mut seen = HashSet::new();
        let mut order = Vec::new();
        let mut queue: VecDeque<&String> = user.groups.iter().collect();
        while let Some(group) = queue.pop_front() {
            let key = group.to_ascii_lowercase();
            if !seen.insert(key.clone()) {
                continue;
            }
            order.push(group.clone());
            if let Some(group_parents) = parents.get(&key) {
                queue.extend(group_parents.iter());
            }
        }
        order
    }

    /// The groups (object ids) the `groups` claim lists for `user` (before the overage limit
    /// and the claim's format), per [`User::groups_claim`] and
    /// [`Fixtures::group_membership_claims`]: none when the registration emits no groups.
    pub fn claim_groups(&self, user: &User) -> Vec<String> {
        let Some(claims) = self.group_membership_claims else {
            return Vec::new();
        };
        let groups = match user.groups_claim {
            GroupsClaim::Transitive => self.transitive_groups(user),
            GroupsClaim::Direct => user.groups.clone(),
        };
        match claims {
            GroupMembershipClaims::All => groups,
            GroupMembershipClaims::SecurityGroup => groups
                .into_iter()
                .filter(|id| self.group(id).is_some_and(|group| group.security_enabled))
                .collect(),
        }
    }

    /// `directory.group_parents` for an edge-access configuration document: every group
    /// that has parents, mapped to them.
    pub fn group_parents(&self) -> serde_json::Value {
        let map: serde_json::Map<String, serde_json::Value> = self
            .groups
            .iter()
            .filter(|group| !group.parents.is_empty())
            .map(|group| (group.id.clone(), serde_json::json!(group.parents)))
            .collect();
        serde_json::Value::Object(map)
    }
}

/// `text` lowercased when it is a GUID (`8-4-4-4-12` hex digits).
fn guid(text: &str) -> Option<String> {
    let lengths = [8, 4, 4, 4, 12];
    let parts: Vec<&str> = text.split('-').collect();
    let well_formed = parts.len() == lengths.len()
        && parts.iter().zip(lengths).all(|(part, length)| {
            part.len() == length && part.bytes().all(|b| b.is_ascii_hexdigit())
        });
    well_formed.then(|| text.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_fixtures_load() {
        let fixtures = Fixtures::load_default().unwrap();
        for key in ["ada", "grace", "mallory", "bob", "dora", "overage"] {
            assert!(fixtures.user(key).is_some(), "{key}");
        }
    }

    #[test]
    fn grace_is_three_levels_under_all_staff() {
        let fixtures = Fixtures::load_default().unwrap();
        let grace = fixtures.user("grace").unwrap();
        let names: Vec<&str> = fixtures
            .transitive_groups(grace)
            .iter()
            .map(|id| fixtures.group(id).unwrap().display_name.as_str())
            .collect();
        assert_eq!(names, ["SRE", "Platform", "Engineering", "All staff"]);
    }

    #[test]
    fn a_cycle_ends_and_each_group_appears_once() {
        let fixtures = Fixtures::load_default().unwrap();
        let ada = fixtures.user("ada").unwrap();
        let names: Vec<&str> = fixtures
            .transitive_groups(ada)
            .iter()
            .map(|id| fixtures.group(id).unwrap().display_name.as_str())
            .collect();
        assert_eq!(
            names,
            [
                "Backend",
                "Rust guild",
                "Engineering",
                "Language guilds",
                "All staff"
            ]
        );
    }

    #[test]
    fn direct_claims_leave_out_nested_groups() {
        let fixtures = Fixtures::load_default().unwrap();
        let dora = fixtures.user("dora").unwrap();
        assert_eq!(dora.groups_claim, GroupsClaim::Direct);
        assert_eq!(
            fixtures.claim_groups(dora),
            [fixtures.group_id("On-call").unwrap()]
        );
        assert_eq!(fixtures.transitive_groups(dora).len(), 5);
    }

    #[test]
    fn overage_is_over_the_limit_only_through_nesting() {
        let fixtures = Fixtures::load_default().unwrap();
        let overage = fixtures.user("overage").unwrap();
        assert!(overage.groups.len() < 200);
        let all = fixtures.transitive_groups(overage);
        assert!(all.len() > 200, "{}", all.len());
        assert!(all
            .iter()
            .any(|id| Some(id.as_str()) == fixtures.group_id("Engineering")));
    }

    #[test]
    fn the_groups_claim_lists_security_groups_unless_all() {
        let mut fixtures = Fixtures::load_default().unwrap();
        let overage = fixtures.user("overage").unwrap().clone();
        let program_19 = fixtures.group_id("Program 19").unwrap().to_owned();
        assert_eq!(
            fixtures.group_membership_claims,
            Some(GroupMembershipClaims::SecurityGroup)
        );
        let security = fixtures.claim_groups(&overage);
        assert_eq!(security.len(), 211);
        assert!(!security.contains(&program_19));
        fixtures.group_membership_claims = Some(GroupMembershipClaims::All);
        let all = fixtures.claim_groups(&overage);
        assert_eq!(all.len(), 212);
        assert!(all.contains(&program_19));
        // A registration without group claims emits none.
        fixtures.group_membership_claims = None;
        assert!(fixtures.claim_groups(&overage).is_empty());
    }

    #[test]
    fn unknown_groups_are_rejected_with_their_path() {
        let mut fixtures = Fixtures::load_default().unwrap();
        fixtures.users[0]
            .groups
            .push("00000000-0000-0000-0000-000000000001".into());
        let error = fixtures.check().unwrap_err().to_string();
        assert!(error.contains("users[0].groups[2]"), "{error}");
    }

    #[test]
    fn guids_are_checked() {
        assert!(guid("F6FADFA7-e5c1-4b62-9362-da5cc13da58a").is_some());
        assert!(guid("f6fadfa7-e5c1-4b62-9362-da5cc13da58").is_none());
        assert!(guid("g6fadfa7-e5c1-4b62-9362-da5cc13da58a").is_none());
        assert!(guid("").is_none());
    }
}

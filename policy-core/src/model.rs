//! The compiled configuration: what the loader produces and the evaluator reads.

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::duration::SessionDuration;
use crate::ids::Country;
use crate::ix::{GroupIx, IdpIx, ListIx, PolicyIx, RefGroupIx};
use crate::net::IpRange;
use crate::route::DomainPattern;

/// What a policy does when it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// `allow`: let the signed-in user through.
    Allow,
    /// `deny` (Block): refuse the signed-in user.
    Deny,
    /// `bypass`: no Access enforcement for matching traffic.
    Bypass,
    /// `non_identity` (Service Auth): service tokens and mTLS, no sign-in.
    NonIdentity,
}

impl Action {
    /// The Access API spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Deny => "deny",
            Action::Bypass => "bypass",
            Action::NonIdentity => "non_identity",
        }
    }

    /// `bypass` and `non_identity` run before `allow` and `deny`.
    pub fn is_first_pass(self) -> bool {
        matches!(self, Action::Bypass | Action::NonIdentity)
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One compiled rule (selector). Indices point into the engine's tables.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Rule {
    Everyone,
    Email(Box<str>),
    EmailDomain(Box<str>),
    EmailList(ListIx),
    Ip(IpRange),
    IpList(ListIx),
    Geo(Country),
    /// `group` is the referenced-group index in the hierarchy.
    AzureGroup {
        group: RefGroupIx,
        idp: IdpIx,
    },
    AccessGroup(GroupIx),
    LoginMethod(IdpIx),
    AuthMethod(Box<str>),
    AuthContext {
        ac_id: Box<str>,
        idp: IdpIx,
    },
    Oidc {
        claim: Box<str>,
        value: Box<str>,
        idp: IdpIx,
    },
    ServiceToken(Box<str>),
    AnyServiceToken,
    CommonName(Box<str>),
    Certificate,
}

/// Include (any), require (all), exclude (none).
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Rules {
    pub(crate) include: Vec<Rule>,
    pub(crate) require: Vec<Rule>,
    pub(crate) exclude: Vec<Rule>,
}

#[derive(Clone, Debug)]
pub(crate) struct AccessGroup {
    pub(crate) id: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) rules: Rules,
}

#[derive(Clone, Debug)]
pub(crate) struct Policy {
    pub(crate) id: Option<Box<str>>,
    pub(crate) name: Box<str>,
    pub(crate) action: Action,
    pub(crate) rules: Rules,
    pub(crate) session: Option<SessionDuration>,
}

#[derive(Clone, Debug)]
pub(crate) enum ListItems {
    /// Lowercased, sorted, deduplicated.
    Emails(Vec<Box<str>>),
    Ranges(Vec<IpRange>),
}

#[derive(Clone, Debug)]
pub(crate) struct List {
    pub(crate) id: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) items: ListItems,
}

/// A policy attached to an app at a precedence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Slot {
    pub(crate) policy: PolicyIx,
    pub(crate) precedence: u32,
}

/// An application: a domain, its audience tag and its ordered policies.
#[derive(Clone, Debug)]
pub struct App {
    pub(crate) id: Box<str>,
    pub(crate) name: Box<str>,
    pub(crate) domain: DomainPattern,
    pub(crate) aud: Box<str>,
    pub(crate) session: Option<SessionDuration>,
    pub(crate) allowed_idps: Option<Vec<IdpIx>>,
    pub(crate) custom_deny_url: Option<Box<str>>,
    pub(crate) custom_non_identity_deny_url: Option<Box<str>>,
    pub(crate) custom_deny_message: Option<Box<str>>,
    /// Paths may hold `%2F` (an encoded `/`) for this app, as long as every origin reading
    /// still routes them here (an edge-access setting; Access has none).
    pub(crate) allow_encoded_slashes: bool,
    /// A browser signs in with the app's first identity provider at once, without the chooser.
    pub(crate) auto_redirect_to_identity: bool,
    /// Execution order: the first-pass slots (bypass, non_identity), then allow/deny, each by
    /// precedence.
    pub(crate) order: Vec<Slot>,
    /// `order[..first_pass]` are the bypass / non_identity slots.
    pub(crate) first_pass: usize,
}

impl App {
    /// The app's id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// The app's name.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The app's audience tag (the `aud` of its application tokens).
    pub fn aud(&self) -> &str {
        &self.aud
    }
    /// The domain as normalised: the host lowercase, the path as written without a trailing
    /// `/` (`*.example.com/admin`).
    pub fn domain(&self) -> alloc::string::String {
        alloc::string::ToString::to_string(&self.domain)
    }
    /// The host pattern as normalised (`*.example.com`).
    pub fn host(&self) -> alloc::string::String {
        self.domain.host()
    }
    /// Whether the app's host pattern covers `host` (lowercase, without port).
    pub fn covers_host(&self, host: &str) -> bool {
        self.domain.covers_host(host)
    }
    /// The identity providers (positions in [`crate::Engine::identity_providers`]) this app
    /// accepts, when it restricts them (`allowed_idps`).
    pub fn allowed_idps(&self) -> Option<impl Iterator<Item = usize> + '_> {
        self.allowed_idps
            .as_deref()
            .map(|ids| ids.iter().map(|i| i.get()))
    }
    /// Whether a browser signs in with the first of the app's identity providers at once
    /// (`auto_redirect_to_identity`), never shown the login chooser.
    pub fn auto_redirect_to_identity(&self) -> bool {
        self.auto_redirect_to_identity
    }
    /// Where to send users refused after sign-in, if configured.
    pub fn custom_deny_url(&self) -> Option<&str> {
        self.custom_deny_url.as_deref()
    }
    /// Where to send requests refused on non-identity grounds, if configured.
    pub fn custom_non_identity_deny_url(&self) -> Option<&str> {
        self.custom_non_identity_deny_url.as_deref()
    }
    /// The message for the block page, if configured.
    pub fn custom_deny_message(&self) -> Option<&str> {
        self.custom_deny_message.as_deref()
    }
}

/// How SCIM changes act on sessions (`scim_config.identity_update_behavior`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum IdentityUpdateBehavior {
    /// The stored identity's groups follow SCIM.
    Automatic,
    /// A group membership change revokes the user's sessions.
    Reauth,
    /// SCIM changes do not touch sessions (Cloudflare's default).
    #[default]
    NoAction,
}

/// Which groups the app registration's `groups` claim lists — its manifest's
/// `groupMembershipClaims` (`config.group_membership_claims`) — so that the groups read from
/// Microsoft Graph for a user whose token overflowed are of the same kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupMembershipClaims {
    /// `SecurityGroup` (the default): security groups only. Graph is asked with
    /// `securityEnabledOnly: true`, so Microsoft 365 groups (which users may often join by
    /// themselves) count for nobody.
    #[default]
    SecurityGroup,
    /// `All`: security groups, Microsoft 365 groups and distribution lists (Graph:
    /// `securityEnabledOnly: false`).
    All,
}

impl GroupMembershipClaims {
    /// The manifest's name for it.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupMembershipClaims::SecurityGroup => "SecurityGroup",
            GroupMembershipClaims::All => "All",
        }
    }

    /// Whether only security groups count.
    pub fn security_groups_only(self) -> bool {
        self == GroupMembershipClaims::SecurityGroup
    }
}

/// An identity provider's `scim_config`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
#[non_exhaustive]
pub struct ScimConfig {
    /// SCIM provisioning is accepted for this provider.
    pub enabled: bool,
    /// Deactivating or deleting a user revokes their sessions.
    pub user_deprovision: bool,
    /// Removing a user from a group revokes their sessions.
    pub group_member_deprovision: bool,
    /// See [`IdentityUpdateBehavior`].
    pub identity_update_behavior: IdentityUpdateBehavior,
}

/// An Entra ID (`azureAD`) identity provider.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IdentityProvider {
    /// The provider's id (what `login_method` and `identity_provider_id` name).
    pub id: Box<str>,
    /// Display name.
    pub name: Box<str>,
    /// The app registration's client id.
    pub client_id: Box<str>,
    /// The tenant (directory) id, a lowercase GUID.
    pub directory_id: Box<str>,
    /// Read group memberships (the `groups` claim, Graph on overage).
    pub support_groups: bool,
    /// Which groups count: what the registration's `groups` claim lists, and so what Graph
    /// is asked for on an overage.
    pub group_membership_claims: GroupMembershipClaims,
    /// Use PKCE (S256) in the sign-in flow.
    pub pkce_enabled: bool,
    /// The `prompt` sent to the authorize endpoint, if any.
    pub prompt: Option<Box<str>>,
    /// The claim read for the email, before `email`, `upn`, `preferred_username`.
    pub email_claim_name: Option<Box<str>>,
    /// Read authentication contexts (`acrs`).
    pub conditional_access_enabled: bool,
    /// `default`, `us`, `de` or `cn`.
    pub azure_cloud: Box<str>,
    /// Extra claims copied into the identity.
    pub claims: Vec<Box<str>>,
    /// The `aud` values accepted in access tokens (bearer requests): the API's application
    /// id URIs or its client id, compared without a trailing slash. Empty: the client id and
    /// `api://{client id}` (see [`IdentityProvider::accepts_audience`]).
    pub audiences: Vec<Box<str>>,
    /// The app registration signs its tokens with a key of its own (claims mapping): its
    /// keys are fetched with `?appid={client id}`.
    pub app_signing_key: bool,
    /// SCIM settings.
    pub scim: ScimConfig,
}

/// The Worker secret every `azureAD` identity provider without one of its own reads its app
/// registration's client secret from.
pub const SHARED_CLIENT_SECRET: &str = "AZURE_CLIENT_SECRET";

/// The Worker secret that holds the client secret of the identity provider `id`:
/// [`SHARED_CLIENT_SECRET`], `_`, and the id in upper case with every character other than an
/// ASCII letter or digit written `_` (`partner-fabrikam` →
/// `AZURE_CLIENT_SECRET_PARTNER_FABRIKAM`). The gateway reads it, the deploy checks name it.
pub fn client_secret_var(id: &str) -> alloc::string::String {
    let mut name = alloc::string::String::from(SHARED_CLIENT_SECRET);
    name.push('_');
    name.extend(id.chars().map(|c| {
        if c.is_ascii_alphanumeric() {
            c.to_ascii_uppercase()
        } else {
            '_'
        }
    }));
    name
}

impl IdentityProvider {
    /// The `aud` values accepted in access tokens: each of [`IdentityProvider::audiences`]
    /// (by default the client id and `api://{client id}`) with and without a trailing
    /// slash.
    pub fn accepted_audiences(&self) -> Vec<alloc::string::String> {
        let configured: Vec<&str> = if self.audiences.is_empty() {
            alloc::vec![&*self.client_id]
        } else {
            self.audiences.iter().map(|a| &**a).collect()
        };
        let api = alloc::format!("api://{}", self.client_id);
        let defaults = self.audiences.is_empty().then_some(api.as_str());
        configured
            .into_iter()
            .chain(defaults)
            .flat_map(|aud| {
                let bare = aud.strip_suffix('/').unwrap_or(aud);
                [alloc::string::String::from(bare), alloc::format!("{bare}/")]
            })
            .collect()
    }

    /// Whether an access token's `aud` is one of [`IdentityProvider::accepted_audiences`].
    pub fn accepts_audience(&self, aud: &str) -> bool {
        self.accepted_audiences()
            .iter()
            .any(|accepted| accepted == aud)
    }
}

/// Something in a document that loads but is probably not what was meant.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Warning {
    /// JSON path of the part warned about.
    pub path: alloc::string::String,
    /// What is risky about it.
    pub message: alloc::string::String,
}

impl Warning {
    /// 1-based line and column of [`Warning::path`] in `text` (the document), when it has it.
    pub fn position(&self, text: &str) -> Option<(usize, usize)> {
        crate::json::position(text, &self.path)
    }

    /// Whether it names a field Cloudflare's API fills in itself, which the engine ignores
    /// (so a tool may leave it out of the document).
    pub fn is_read_only_field(&self) -> bool {
        self.message == crate::load::READ_ONLY_FIELD
    }
}

impl fmt::Display for Warning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// A service token the gateway accepts (`service_tokens[]`): clients send `CF-Access-Client-Id`
/// and `CF-Access-Client-Secret`; only the secret's SHA-256 is configured.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceTokenConfig {
    /// The id `service_token` rules name.
    pub id: Box<str>,
    /// Display name.
    pub name: Box<str>,
    /// The `CF-Access-Client-Id` value.
    pub client_id: Box<str>,
    /// SHA-256 of the `CF-Access-Client-Secret` value.
    pub secret_sha256: [u8; 32],
}

impl fmt::Debug for ServiceTokenConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceTokenConfig")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_provider_id_names_its_secret_in_upper_case_with_underscores() {
        assert_eq!(
            super::client_secret_var("entra"),
            "AZURE_CLIENT_SECRET_ENTRA"
        );
        assert_eq!(
            super::client_secret_var("partner-fabrikam"),
            "AZURE_CLIENT_SECRET_PARTNER_FABRIKAM"
        );
        assert_eq!(
            super::client_secret_var("2a1b9c4e-07f3-4d1a-9b2e-5c6d7e8f9a0b"),
            "AZURE_CLIENT_SECRET_2A1B9C4E_07F3_4D1A_9B2E_5C6D7E8F9A0B"
        );
        assert_eq!(
            super::client_secret_var("Café.é"),
            "AZURE_CLIENT_SECRET_CAF___"
        );
        assert_eq!(
            super::client_secret_var("a b\nc"),
            "AZURE_CLIENT_SECRET_A_B_C"
        );
    }
}

//! What a token request asks for and the claims Entra would put in the token
//! (reference §4.2, §4.3).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::fixtures::{Fixtures, TokenKind, User};

/// Above this many groups a JWT carries the overage claims instead of `groups`.
pub const GROUPS_CLAIM_LIMIT: usize = 200;

/// How long a token lives unless the request says otherwise (Entra: 60–90 minutes).
pub const DEFAULT_LIFETIME_SECS: i64 = 3600;

/// The `scp` of every token: the one delegated scope the gateway's API exposes.
pub const SCOPE: &str = "access_as_user";

/// An access token to mint for a fixture user. Every field has a default, so JSON such as
/// `{"user": "ada"}` is a complete request (`POST /_admin/token`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TokenRequest {
    /// The fixture user's `key`.
    pub user: String,
    /// Token version: 1 (`sts.windows.net` issuer, `upn`, `amr`) or 2 (`/v2.0` issuer,
    /// `preferred_username`, `email`). Default 2.
    pub version: u8,
    /// `aud`; default the client id for v2 and `api://{client id}` for v1.
    pub audience: Option<String>,
    /// `exp` − `iat`; default [`DEFAULT_LIFETIME_SECS`]. Negative values make tokens that
    /// expire before they are issued.
    pub lifetime_secs: Option<i64>,
    /// Added to the current time for `iat` and `nbf`: negative for tokens issued in the
    /// past (already expired with a short lifetime), positive for not-yet-valid ones.
    pub issued_at_offset_secs: Option<i64>,
    /// Claims set over the generated ones; a `null` value removes the claim.
    pub claims: Map<String, Value>,
    /// Header fields set over the generated ones (`alg`, `typ`, …); `null` removes one.
    /// The signature is RS256 whatever `alg` says.
    pub header: Map<String, Value>,
    /// The header `kid` (and `x5t` for v1) to claim, whatever key signs.
    pub kid: Option<String>,
    /// Sign with a key that is never published in the JWKS.
    pub sign_with_unpublished_key: bool,
}

impl Default for TokenRequest {
    fn default() -> Self {
        Self {
            user: String::new(),
            version: 2,
            audience: None,
            lifetime_secs: None,
            issued_at_offset_secs: None,
            claims: Map::new(),
            header: Map::new(),
            kid: None,
            sign_with_unpublished_key: false,
        }
    }
}

impl TokenRequest {
    /// A v1 access token for `user`.
    pub fn v1(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            version: 1,
            ..Self::default()
        }
    }

    /// A v2 access token for `user`.
    pub fn v2(user: &str) -> Self {
        Self {
            user: user.to_owned(),
            ..Self::default()
        }
    }

    /// Sets `aud`.
    #[must_use]
    pub fn with_audience(mut self, audience: &str) -> Self {
        self.audience = Some(audience.to_owned());
        self
    }

    /// Sets the lifetime (`exp` − `iat`).
    #[must_use]
    pub fn with_lifetime_secs(mut self, secs: i64) -> Self {
        self.lifetime_secs = Some(secs);
        self
    }

    /// Moves `iat`/`nbf` (and so `exp`) by `secs` from now.
    #[must_use]
    pub fn with_issued_at_offset_secs(mut self, secs: i64) -> Self {
        self.issued_at_offset_secs = Some(secs);
        self
    }

    /// Sets (or, with `Value::Null`, removes) one claim.
    #[must_use]
    pub fn with_claim(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.claims.insert(name.to_owned(), value.into());
        self
    }

    /// Removes one claim.
    #[must_use]
    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.insert(name.to_owned(), Value::Null);
        self
    }

    /// Sets (or, with `Value::Null`, removes) one header field.
    #[must_use]
    pub fn with_header(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.header.insert(name.to_owned(), value.into());
        self
    }

    /// Claims `kid` in the header whatever key signs.
    #[must_use]
    pub fn with_kid(mut self, kid: &str) -> Self {
        self.kid = Some(kid.to_owned());
        self
    }

    /// Signs with a key the JWKS never lists.
    #[must_use]
    pub fn signed_with_unpublished_key(mut self) -> Self {
        self.sign_with_unpublished_key = true;
        self
    }
}

/// `aud` of the Microsoft Graph access tokens the token endpoint issues in the global cloud
/// (other clouds: [`crate::fixtures::Cloud::graph_resource`]).
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// Microsoft Graph's application id, which Graph also accepts as `aud`.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The delegated Graph permissions every sign-in is granted (as if an administrator had
/// consented): the start of `scp` in Graph tokens and of `scope` in token responses.
pub const GRAPH_SCOPES: &str = "User.Read GroupMember.Read.All";

/// The object id of the gateway's service principal (its enterprise application) in the
/// tenant: `oid` and `sub` of the app-only Graph tokens of the client credentials grant.
pub const SERVICE_PRINCIPAL_ID: &str = "5e7c1f0a-3b9d-4c62-8f1e-a24d6b0c9e37";

/// `expires_in` of a client credentials answer: Entra says 3599 for a one-hour token.
pub const APP_TOKEN_EXPIRES_IN: i64 = 3599;

/// Where tokens say they come from and who they are for.
#[derive(Debug)]
pub(crate) struct Issuance<'a> {
    pub fixtures: &'a Fixtures,
    /// The emulator's base URL, standing in for `https://login.microsoftonline.com`.
    pub authority: &'a str,
    /// Seconds since the Unix epoch.
    pub now: i64,
}

impl Issuance<'_> {
    /// The claims of an access token for the gateway's API (`request`, version already
    /// checked to be 1 or 2) for `user`, as Microsoft's access token claims reference says:
    /// `amr`, `appid`, `upn` and `unique_name` only in v1, `azp` and `preferred_username`
    /// only in v2; `email` only for guests or when the registration's access token optional
    /// claims ask for it (and the user has a mail); `idtyp` only as an optional claim;
    /// groups only when the registration emits them.
    pub(crate) fn claims(&self, request: &TokenRequest, user: &User) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
        let optional = &self.fixtures.optional_claims;
        let iat = self
            .now
            .saturating_add(request.issued_at_offset_secs.unwrap_or(0));
        let exp = iat.saturating_add(request.lifetime_secs.unwrap_or(DEFAULT_LIFETIME_SECS));
        let v1 = request.version == 1;
        let aud = request.audience.clone().unwrap_or_else(|| {
            if v1 {
                format!("api://{client_id}")
            } else {
                client_id.clone()
            }
        });

        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(aud));
        set("iat", json!(iat));
        set("nbf", json!(iat));
        set("exp", json!(exp));
        set("tid", json!(tid));
        set("oid", json!(user.oid));
        set("sub", json!(pairwise_subject(&user.oid, client_id)));
        set("name", json!(user.name));
        set("scp", json!(SCOPE));
        // App roles assigned to the user: `roles`, only when there is one (MS-access-tokens).
        if !user.app_roles.is_empty() {
            set("roles", json!(user.app_roles));
        }
        if v1 {
            set("iss", json!(v1_issuer(tid)));
            set("ver", json!("1.0"));
            set("unique_name", json!(unique_name(user)));
            set("amr", json!(user.amr));
            set("appid", json!(client_id));
            set("appidacr", json!("1"));
        } else {
            set("iss", json!(v2_issuer(self.authority, tid)));
            set("ver", json!("2.0"));
            set("preferred_username", json!(preferred_username(user)));
            set("azp", json!(client_id));
            set("azpacr", json!("1"));
        }
        // `upn`: always in v1 tokens (members), a v2 optional claim; guests only with
        // `include_externally_authenticated_upn`.
        if let Some(upn) = self.upn(user, TokenKind::Access, v1) {
            set("upn", json!(upn));
        }
        if let Some(email) = self.email(user, TokenKind::Access, false) {
            set("email", json!(email));
        }
        if optional.has(TokenKind::Access, "idtyp", "include_user_token") {
            set("idtyp", json!("user"));
        }

        claims.extend(self.group_claims(user, TokenKind::Access));

        for (name, value) in &request.claims {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        claims
    }

    /// `upn` in a token of `kind` (v1 or v2) for `user`: v1 tokens carry it by default, v2
    /// tokens only as an optional claim; a guest's (`…#EXT#@tenant`) only with the optional
    /// claim's `include_externally_authenticated_upn`.
    fn upn<'u>(&self, user: &'u User, kind: TokenKind, v1: bool) -> Option<&'u str> {
        let optional = &self.fixtures.optional_claims;
        if user.is_guest() {
            optional
                .has(kind, "upn", "include_externally_authenticated_upn")
                .then_some(user.upn.as_str())
        } else {
            (v1 || optional.get(kind, "upn").is_some()).then_some(user.upn.as_str())
        }
    }

    /// `email` in a token of `kind` for `user`: only a user with a mail has one; guests get
    /// it by default, members when the registration asks for the `email` optional claim for
    /// that kind of token, or (v2 ID tokens only) when the sign-in asked for the `email`
    /// scope.
    fn email<'u>(&self, user: &'u User, kind: TokenKind, email_scope: bool) -> Option<&'u str> {
        let mail = user.mail.as_deref()?;
        let asked = user.is_guest()
            || self.fixtures.optional_claims.get(kind, "email").is_some()
            || email_scope;
        asked.then_some(mail)
    }
}

/// `preferred_username` (v2): a member's UPN, a guest's sign-in address (their mail).
fn preferred_username(user: &User) -> &str {
    if user.is_guest() {
        user.mail.as_deref().unwrap_or(&user.upn)
    } else {
        &user.upn
    }
}

/// `unique_name` (v1): a member's UPN, a guest's sign-in address.
fn unique_name(user: &User) -> &str {
    preferred_username(user)
}

impl Issuance<'_> {
    /// The group claims of a token of `kind` for `user`, nothing when the registration emits
    /// no groups (`groupMembershipClaims` null) or the user is in none: `groups` (or `roles`
    /// with the optional claim's `emit_as_roles`), or the overage claims
    /// `_claim_names`/`_claim_sources` above [`GROUPS_CLAIM_LIMIT`] groups (reference §4.3).
    /// The values are object ids, unless the `groups` optional claim asks for on-premises
    /// names (`sam_account_name`, `netbios_domain_and_sam_account_name`,
    /// `dns_domain_and_sam_account_name`): then only groups synchronized from Active
    /// Directory are listed, by that name, and cloud groups are left out (by display name
    /// with `cloud_displayname`).
    fn group_claims(&self, user: &User, kind: TokenKind) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let groups = self.fixtures.claim_groups(user);
        let mut claims = Map::new();
        if groups.len() > GROUPS_CLAIM_LIMIT {
            // No `groups` at all, a pointer to the (Azure AD Graph) URL that lists them.
            claims.insert("_claim_names".into(), json!({ "groups": "src1" }));
            claims.insert(
                "_claim_sources".into(),
                json!({ "src1": { "endpoint": format!(
                    "https://graph.windows.net/{tid}/users/{}/getMemberObjects",
                    user.oid
                ) } }),
            );
            return claims;
        }
        let optional = &self.fixtures.optional_claims;
        let has = |property: &str| optional.has(kind, "groups", property);
        let values: Vec<String> = groups
            .iter()
            .filter_map(|id| self.fixtures.group(id))
            .filter_map(|group| {
                let sam = group.on_premises_sam_account_name.as_deref();
                let on_premises = if has("sam_account_name") {
                    Some(sam.map(str::to_owned))
                } else if has("netbios_domain_and_sam_account_name") {
                    Some(
                        sam.zip(group.on_premises_net_bios_name.as_deref())
                            .map(|(sam, domain)| format!("{domain}\\{sam}")),
                    )
                } else if has("dns_domain_and_sam_account_name") {
                    Some(
                        sam.zip(group.on_premises_domain_name.as_deref())
                            .map(|(sam, domain)| format!("{domain}\\{sam}")),
                    )
                } else {
                    None
                };
                match on_premises {
                    None => Some(group.id.clone()),
                    Some(Some(name)) => Some(name),
                    Some(None) if has("cloud_displayname") => Some(group.display_name.clone()),
                    Some(None) => None,
                }
            })
            .collect();
        if !values.is_empty() {
            let name = if has("emit_as_roles") {
                "roles"
            } else {
                "groups"
            };
            claims.insert(name.into(), json!(values));
        }
        claims
    }

    /// The claims of an ID token for `user` from the token endpoint of `version` (1 or 2;
    /// the ID token's version follows the endpoint, reference §4.1), for a sign-in that asked
    /// for `scope`, as Microsoft's ID token claims reference says: `aud` is the client id,
    /// `nonce` the authorize request's; v1 ID tokens carry `upn`, `unique_name` and `amr`, v2
    /// ones `preferred_username` and no `amr`; `oid`, `name` and `preferred_username` need the
    /// `profile` scope in v2; `email` as in [`Issuance::email`] (the `email` scope counts in
    /// v2 only); groups as the registration's ID token settings say.
    pub(crate) fn id_token_claims(
        &self,
        user: &User,
        version: u8,
        nonce: Option<&str>,
        scope: &str,
    ) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
        let v1 = version == 1;
        let asked = |wanted: &str| scope.split(' ').any(|scope| scope == wanted);
        let profile = v1 || asked("profile");
        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(client_id));
        set("iat", json!(self.now));
        set("nbf", json!(self.now));
        set("exp", json!(self.now.saturating_add(DEFAULT_LIFETIME_SECS)));
        set("tid", json!(tid));
        set("sub", json!(pairwise_subject(&user.oid, client_id)));
        if profile {
            set("oid", json!(user.oid));
            set("name", json!(user.name));
        }
        if v1 {
            set("iss", json!(v1_issuer(tid)));
            set("ver", json!("1.0"));
            set("unique_name", json!(unique_name(user)));
            set("amr", json!(user.amr));
        } else {
            set("iss", json!(v2_issuer(self.authority, tid)));
            set("ver", json!("2.0"));
            if profile {
                set("preferred_username", json!(preferred_username(user)));
            }
        }
        if let Some(upn) = self.upn(user, TokenKind::Id, v1) {
            set("upn", json!(upn));
        }
        if let Some(email) = self.email(user, TokenKind::Id, !v1 && asked("email")) {
            set("email", json!(email));
        }
        if let Some(nonce) = nonce {
            set("nonce", json!(nonce));
        }
        claims.extend(self.group_claims(user, TokenKind::Id));
        claims
    }

    /// The claims of a delegated Microsoft Graph access token for `user` with scopes `scp`:
    /// a v1 token, as Graph's are, for the cloud's Graph ([`crate::fixtures::Cloud::graph_resource`]).
    pub(crate) fn graph_token_claims(&self, user: &User, scp: &str) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(self.fixtures.cloud.graph_resource()));
        set("iss", json!(v1_issuer(tid)));
        set("iat", json!(self.now));
        set("nbf", json!(self.now));
        set("exp", json!(self.now.saturating_add(DEFAULT_LIFETIME_SECS)));
        set("tid", json!(tid));
        set("oid", json!(user.oid));
        set("sub", json!(pairwise_subject(&user.oid, GRAPH_APP_ID)));
        set("name", json!(user.name));
        if let Some(upn) = self.upn(user, TokenKind::Access, true) {
            set("upn", json!(upn));
        }
        set("unique_name", json!(unique_name(user)));
        set("amr", json!(user.amr));
        set("appid", json!(client_id));
        set("app_displayname", json!("edge-access (emulator)"));
        // Graph's own registration asks for `idtyp` in user tokens too.
        set("idtyp", json!("user"));
        set("scp", json!(scp));
        set("ver", json!("1.0"));
        claims
    }
}

impl Issuance<'_> {
    /// The claims of an app-only access token (client credentials grant) for `audience`: a
    /// v1 token with `roles` (left out when there are none, as Entra leaves out claims without
    /// a value), no `scp`, and the service principal ([`SERVICE_PRINCIPAL_ID`]) as `oid` and
    /// `sub`. Graph's tokens carry `idtyp` `app`; a web API's carry it only when its
    /// registration asks for that optional claim (`optionalClaims.accessToken`).
    pub(crate) fn app_token_claims(&self, audience: &str, roles: &[&str]) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(audience));
        set("iss", json!(v1_issuer(tid)));
        set("iat", json!(self.now));
        set("nbf", json!(self.now));
        set("exp", json!(self.now.saturating_add(DEFAULT_LIFETIME_SECS)));
        set("tid", json!(tid));
        set("idp", json!(v1_issuer(tid)));
        set("appid", json!(client_id));
        set("appidacr", json!("1"));
        set("oid", json!(SERVICE_PRINCIPAL_ID));
        set("sub", json!(SERVICE_PRINCIPAL_ID));
        if audience == self.fixtures.cloud.graph_resource() {
            set("app_displayname", json!("edge-access (emulator)"));
            set("idtyp", json!("app"));
        } else if self
            .fixtures
            .optional_claims
            .get(TokenKind::Access, "idtyp")
            .is_some()
        {
            // A web API gets `idtyp` in app-only tokens when it asks for the optional claim.
            set("idtyp", json!("app"));
        }
        if !roles.is_empty() {
            set("roles", json!(roles));
        }
        set("ver", json!("1.0"));
        claims
    }
}

/// The JOSE header of a token of `version` signed by the key `kid`: `typ`, `alg`, `kid`,
/// and for v1 `x5t` (v1 tokens name the key twice, reference §4.1).
pub(crate) fn plain_header(version: u8, kid: &str) -> Map<String, Value> {
    let mut header = Map::new();
    header.insert("typ".into(), json!("JWT"));
    header.insert("alg".into(), json!("RS256"));
    if version == 1 {
        header.insert("x5t".into(), json!(kid));
    }
    header.insert("kid".into(), json!(kid));
    header
}

/// The JOSE header for `request` signed by the key `kid`.
pub(crate) fn header(request: &TokenRequest, kid: &str) -> Map<String, Value> {
    let kid = request.kid.as_deref().unwrap_or(kid);
    let mut header = plain_header(request.version, kid);
    for (name, value) in &request.header {
        if value.is_null() {
            header.remove(name);
        } else {
            header.insert(name.clone(), value.clone());
        }
    }
    header
}

/// `iss` of v1 tokens: `https://sts.windows.net/{tid}/` whatever the authority.
pub(crate) fn v1_issuer(tid: &str) -> String {
    format!("https://sts.windows.net/{tid}/")
}

/// `iss` of v2 tokens: `{authority}/{tid}/v2.0`.
pub(crate) fn v2_issuer(authority: &str, tid: &str) -> String {
    format!("{authority}/{tid}/v2.0")
}

/// `sub`: stable per user and application, unlike `oid` (43 base64url characters, as in
/// Entra's tokens).
fn pairwise_subject(oid: &str, client_id: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(format!("{oid}:{client_id}").as_bytes()))
}

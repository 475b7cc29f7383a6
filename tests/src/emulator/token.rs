//! What a token request asks for and the claims Entra would put in the token
//! (reference §4.2, §4.3).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::fixtures::{Fixtures, User};

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

/// `aud` of the Microsoft Graph access tokens the token endpoint issues.
pub const GRAPH_AUDIENCE: &str = "https://graph.microsoft.com";

/// Microsoft Graph's application id, which Graph also accepts as `aud`.
pub const GRAPH_APP_ID: &str = "00000003-0000-0000-c000-000000000000";

/// The delegated Graph permissions every sign-in is granted (as if an administrator had
/// consented): the start of `scp` in Graph tokens and of `scope` in token responses.
pub const GRAPH_SCOPES: &str = "User.Read GroupMember.Read.All";

/// The object id of the gateway's service principal (its enterprise application) in the
/// tenant: `oid` and `sub` of the app-only Graph tokens of the client credentials grant.
pub const SERVICE_PRINCIPAL_ID: &str = "5e7c1f0a-3b9d-4c62-8f1e-a24d6b0c9e37";

/// The Graph application permission (app role) the gateway's registration is granted, as if
/// an administrator had consented: `roles` of the client credentials grant's tokens.
pub const GRAPH_APP_ROLE: &str = "GroupMember.Read.All";

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
    /// The claims of `request` for `user` (version already checked to be 1 or 2).
    pub(crate) fn claims(&self, request: &TokenRequest, user: &User) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
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
        if v1 {
            set("iss", json!(v1_issuer(tid)));
            set("ver", json!("1.0"));
            set("upn", json!(user.upn));
            set("unique_name", json!(user.upn));
            set("amr", json!(user.amr));
            set("appid", json!(client_id));
        } else {
            set("iss", json!(v2_issuer(self.authority, tid)));
            set("ver", json!("2.0"));
            set("preferred_username", json!(user.upn));
            set("email", json!(user.email));
            set("azp", json!(client_id));
        }

        claims.extend(self.group_claims(user));

        for (name, value) in &request.claims {
            if value.is_null() {
                claims.remove(name);
            } else {
                claims.insert(name.clone(), value.clone());
            }
        }
        claims
    }
}

impl Issuance<'_> {
    /// `groups`, or the overage claims `_claim_names`/`_claim_sources` above
    /// [`GROUPS_CLAIM_LIMIT`] groups (reference §4.3), or nothing for a user without groups.
    fn group_claims(&self, user: &User) -> Map<String, Value> {
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
        } else if !groups.is_empty() {
            claims.insert("groups".into(), json!(groups));
        }
        claims
    }

    /// The claims of an ID token for `user` from the token endpoint of `version` (1 or 2;
    /// the ID token's version follows the endpoint, reference §4.1): `aud` is the client id,
    /// `nonce` the authorize request's, groups as in access tokens. Both versions carry
    /// `amr`.
    pub(crate) fn id_token_claims(
        &self,
        user: &User,
        version: u8,
        nonce: Option<&str>,
    ) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(client_id));
        set("iat", json!(self.now));
        set("nbf", json!(self.now));
        set("exp", json!(self.now.saturating_add(DEFAULT_LIFETIME_SECS)));
        set("tid", json!(tid));
        set("oid", json!(user.oid));
        set("sub", json!(pairwise_subject(&user.oid, client_id)));
        set("name", json!(user.name));
        set("amr", json!(user.amr));
        if version == 1 {
            set("iss", json!(v1_issuer(tid)));
            set("ver", json!("1.0"));
            set("upn", json!(user.upn));
            set("unique_name", json!(user.upn));
        } else {
            set("iss", json!(v2_issuer(self.authority, tid)));
            set("ver", json!("2.0"));
            set("preferred_username", json!(user.upn));
            set("email", json!(user.email));
        }
        if let Some(nonce) = nonce {
            set("nonce", json!(nonce));
        }
        claims.extend(self.group_claims(user));
        claims
    }

    /// The claims of a delegated Microsoft Graph access token for `user` with scopes `scp`:
    /// a v1 token, as Graph's are, for [`GRAPH_AUDIENCE`].
    pub(crate) fn graph_token_claims(&self, user: &User, scp: &str) -> Map<String, Value> {
        let tid = &self.fixtures.tenant_id;
        let client_id = &self.fixtures.client_id;
        let mut claims = Map::new();
        let mut set = |name: &str, value: Value| {
            claims.insert(name.to_owned(), value);
        };
        set("aud", json!(GRAPH_AUDIENCE));
        set("iss", json!(v1_issuer(tid)));
        set("iat", json!(self.now));
        set("nbf", json!(self.now));
        set("exp", json!(self.now.saturating_add(DEFAULT_LIFETIME_SECS)));
        set("tid", json!(tid));
        set("oid", json!(user.oid));
        set("sub", json!(pairwise_subject(&user.oid, GRAPH_APP_ID)));
        set("name", json!(user.name));
        set("upn", json!(user.upn));
        set("unique_name", json!(user.upn));
        set("amr", json!(user.amr));
        set("appid", json!(client_id));
        set("app_displayname", json!("edge-access (emulator)"));
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
    /// registration asks for that optional claim, which the gateway's does not.
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
        if audience == GRAPH_AUDIENCE {
            set("app_displayname", json!("edge-access (emulator)"));
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

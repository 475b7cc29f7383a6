//! `entra-emulator`: an HTTP server that behaves like Microsoft Entra ID for edge-access: OIDC discovery (v1 and
//! v2), JWKS with key rotation and injected faults, and RS256 access tokens for the fixture
//! users, minted in process ([`Emulator::mint`]) or over HTTP (`POST /_admin/token`).
//!
//! The emulator's base URL (`http://127.0.0.1:PORT`) stands in for
//! `https://login.microsoftonline.com`:
//!
//! | path | what |
//! |---|---|
//! | `GET /{tenant}/.well-known/openid-configuration` | v1 discovery |
//! | `GET /{tenant}/v2.0/.well-known/openid-configuration` | v2 discovery |
//! | `GET /{tenant}/discovery/keys`, `GET /{tenant}/discovery/v2.0/keys` | JWKS |
//! | `POST /_admin/token` | body: a [`TokenRequest`]; answers `{"access_token": …}` |
//! | `POST /_admin/rotate` | body `{"keep_previous": bool}` (default true); answers `{"kid": …}` |
//! | `POST /_admin/fault` | body `{"jwks": "none" \| "error500" \| "slow" \| "invalid_json" \| "throttled" \| "broken", "delay_ms": N}`; also `"discovery"` and `"graph"`; `"times": N` limits a JWKS or discovery fault to the next N requests |
//! | `GET /_admin/stats` | fetch counters and key ids |
//! | `GET /_admin/users` | the fixture users |
//!
//! The browser sign-in (OIDC authorization code flow, reference §4.1) and Microsoft Graph:
//!
//! | path | what |
//! |---|---|
//! | `GET /{tenant}/oauth2/v2.0/authorize`, `GET /{tenant}/oauth2/authorize` | the sign-in page: one button per fixture user (`id="user-ada"`); a bad `client_id` or `redirect_uri` (or any other bad parameter) is a 400 HTML error page |
//! | `POST` the same paths | the page's form: issues a one-time code, `302` to `redirect_uri?code=…&state=…` (`cancel` answers `error=access_denied`) |
//! | `POST /{tenant}/oauth2/v2.0/token`, `POST /{tenant}/oauth2/token` | `grant_type=authorization_code`: a v2 (v1) ID token and a Graph access token; `grant_type=client_credentials` with `scope=https://graph.microsoft.com/.default`: an app-only Graph token (`roles`: the fixtures' `graph_application_permissions`); with `scope=api://{client id}/.default`: an app-only token for the gateway's own API (no role) |
//! | `POST /graph/v1.0/{me \| users/{id}}/getMemberObjects` | body `{"securityEnabledOnly": bool}`: the transitive group ids |
//! | `GET /graph/v1.0/{me \| users/{id}}/transitiveMemberOf` | groups, paged (`$top`, `$skiptoken`, `@odata.nextLink`) |
//! | `GET /graph/v1.0/me`, `GET /graph/v1.0/users/{id}` | the user's profile |
//!
//! `{url}/graph` stands in for `https://graph.microsoft.com`; every Graph call needs a Graph
//! access token from the token endpoint (or [`Emulator::graph_token`]) and may only read the
//! token's own user; an app-only token (client credentials, [`Emulator::graph_app_token`])
//! with an application permission that reads users may read any user, but not `/me`. `POST /_admin/fault` with `{"graph": …}` injects Graph faults.
//!
//! Unknown tenants get 400 with an Entra-style error body (`AADSTS90002`). The fixtures'
//! partner tenant is served on the same address under its own id ([`Emulator::partner`]).
//!
//! [`provisioning`] is the other direction: Entra's provisioning service as a SCIM client of
//! the gateway's SCIM endpoint, in both of its PATCH dialects.
//!
//! - [`fixtures`]: the emulated tenant (users, nested groups) from `fixtures/entra.json`.
//! - [`client`]: a plain-HTTP client that returns every status and follows no redirect.
//! - [`server`]: the small HTTP server the emulator (and the tests' demo origin) run on.
//! - [`urlencoded`]: query strings and form bodies.
//!
//! Test-only code: none of it ships in the product.

pub mod client;
pub mod fixtures;
mod graph;
mod http;
mod keys;
pub mod provisioning;
pub mod server;
mod signin;
mod signin_client;
mod token;
pub mod urlencoded;

use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use keys::KEY_BITS;
pub use signin::{pkce_challenge, SilentError, CODE_LIFETIME, SIGN_IN_SCOPE};
pub use token::{
    TokenRequest, APP_TOKEN_EXPIRES_IN, DEFAULT_LIFETIME_SECS, GRAPH_APP_ID, GRAPH_AUDIENCE,
    GRAPH_SCOPES, GROUPS_CLAIM_LIMIT, SCOPE, SERVICE_PRINCIPAL_ID,
};

use crate::client::ClientError;
use crate::fixtures::Fixtures;
use crate::server::Server;
use keys::SigningKey;
use signin::Codes;
use token::Issuance;

/// A fault injected into the JWKS endpoints, the discovery documents or Microsoft Graph.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Fault {
    /// Answer normally.
    #[default]
    None,
    /// Answer 500 with an Entra-style JSON error body.
    Error500,
    /// Wait this long, then answer normally.
    Slow(Duration),
    /// Answer 200 with a body that is not JSON.
    InvalidJson,
    /// Answer 429 with `Retry-After: 1`, as a throttled service does.
    Throttled,
    /// Answer with bytes that are not HTTP: the client's request fails without a status, as
    /// over a connection that drops before the answer.
    Broken,
}

/// A fault and how many more requests it applies to (`None`: until changed).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ArmedFault {
    fault: Fault,
    remaining: Option<u64>,
}

impl ArmedFault {
    fn until_changed(fault: Fault) -> Self {
        Self {
            fault,
            remaining: None,
        }
    }

    fn times(fault: Fault, times: u64) -> Self {
        if times == 0 {
            return Self::default();
        }
        Self {
            fault,
            remaining: Some(times),
        }
    }

    /// The fault for one request, counted.
    fn take(&mut self) -> Fault {
        let fault = self.fault;
        match self.remaining {
            Some(n) if n <= 1 => *self = Self::default(),
            Some(n) => self.remaining = Some(n - 1),
            None => {}
        }
        fault
    }
}

/// Why the emulator cannot do what was asked.
#[derive(Debug)]
#[non_exhaustive]
pub enum EmulatorError {
    /// The server cannot listen.
    Listen(std::io::Error),
    /// Generating or using an RSA key failed.
    Key(rsa::Error),
    /// No fixture user has this key.
    UnknownUser(String),
    /// The token version is neither 1 nor 2.
    UnsupportedVersion(u8),
    /// [`Emulator::sign_in`] could not talk to the sign-in page.
    Http(ClientError),
    /// [`Emulator::sign_in`] got an answer it did not expect (the text says which).
    SignIn(String),
}

impl fmt::Display for EmulatorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Listen(source) => write!(f, "the entra emulator cannot listen: {source}"),
            Self::Key(source) => write!(f, "rsa key: {source}"),
            Self::UnknownUser(user) => write!(f, "no fixture user `{user}`"),
            Self::UnsupportedVersion(version) => {
                write!(f, "unsupported token version `{version}` (1 or 2)")
            }
            Self::Http(source) => write!(f, "sign-in: {source}"),
            Self::SignIn(problem) => write!(f, "sign-in: {problem}"),
        }
    }
}

impl std::error::Error for EmulatorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Listen(source) => Some(source),
            Self::Key(source) => Some(source),
            Self::Http(source) => Some(source),
            Self::UnknownUser(_) | Self::UnsupportedVersion(_) | Self::SignIn(_) => None,
        }
    }
}

impl From<rsa::Error> for EmulatorError {
    fn from(source: rsa::Error) -> Self {
        Self::Key(source)
    }
}

/// A running emulator on 127.0.0.1; it stops when dropped.
///
/// It serves the fixture tenant and, when the fixtures name one ([`Fixtures::partner`]), a
/// partner tenant on the same address: its own id, app registration, client secret, users,
/// groups and signing keys. Every endpoint under `/{tenant}/` answers as that tenant alone,
/// and Graph reads the tenant of the token it is given: a token or code of one tenant is never
/// accepted at the other, as in Entra. [`Emulator::partner`] is the partner's view, with the
/// same methods.
#[derive(Debug)]
pub struct Emulator {
    shared: Arc<Shared>,
    partner: Option<Box<Emulator>>,
    // Declared last: dropped after nothing else needs it. `None` for the partner's view,
    // which the fixture tenant's server serves.
    _server: Option<Server>,
}

/// What the request threads and the owner share.
#[derive(Debug)]
struct Shared {
    fixtures: Fixtures,
    url: String,
    addr: SocketAddr,
    /// Whose signing keys this tenant uses.
    sequence: keys::Sequence,
    keys: Mutex<KeySet>,
    /// The fault of the JWKS endpoints.
    fault: Mutex<ArmedFault>,
    /// The fault of the discovery documents.
    discovery_fault: Mutex<ArmedFault>,
    jwks_fetches: AtomicU64,
    discovery_fetches: AtomicU64,
    /// Authorization codes issued and not yet presented, and those presented.
    codes: Mutex<Codes>,
    graph_fault: Mutex<Fault>,
    graph_calls: AtomicU64,
    /// Membership requests under `/graph/` (`getMemberObjects`/`getMemberGroups` calls and
    /// `transitiveMemberOf` pages), whatever the answer.
    graph_member_lookups: AtomicU64,
    /// Access tokens issued by the client credentials grant.
    client_credentials_issued: AtomicU64,
    /// The other tenants the same server answers for (the partner tenant); empty for them.
    partners: Vec<Arc<Shared>>,
}

#[derive(Debug)]
struct KeySet {
    /// Signs new tokens; published first.
    signing: Arc<SigningKey>,
    /// Earlier signing keys still published, newest first.
    previous: Vec<Arc<SigningKey>>,
    /// Which key of the shared sequence ([`keys::nth_key`]) `signing` is.
    position: usize,
}

impl KeySet {
    fn published(&self) -> impl Iterator<Item = &Arc<SigningKey>> {
        std::iter::once(&self.signing).chain(&self.previous)
    }
}

impl Emulator {
    /// Starts the emulator on a free port of 127.0.0.1.
    ///
    /// Signing keys come from a sequence shared by every emulator in the process (making a
    /// 2048-bit key takes a few hundred milliseconds): each emulator starts with the first
    /// and moves one key on per rotation, so two emulators publish the same keys, as all
    /// Entra tenants do. A key no emulator publishes: [`TokenRequest::sign_with_unpublished_key`].
    ///
    /// # Errors
    ///
    /// When no port can be bound or the key cannot be generated.
    pub fn start(fixtures: Fixtures) -> Result<Self, EmulatorError> {
        Self::start_on(fixtures, None)
    }

    /// Like [`Emulator::start`], on 127.0.0.1:`port` when given.
    ///
    /// # Errors
    ///
    /// When the port cannot be bound or the key cannot be generated.
    pub fn start_on(fixtures: Fixtures, port: Option<u16>) -> Result<Self, EmulatorError> {
        let listener = crate::server::bind(port).map_err(EmulatorError::Listen)?;
        let addr = listener.local_addr().map_err(EmulatorError::Listen)?;
        let partner = match fixtures.partner.clone() {
            Some(partner) => Some(Arc::new(Shared::new(
                *partner,
                addr,
                keys::Sequence::Partner,
                Vec::new(),
            )?)),
            None => None,
        };
        let shared = Arc::new(Shared::new(
            fixtures,
            addr,
            keys::Sequence::Home,
            partner.iter().cloned().collect(),
        )?);
        let serving = Arc::clone(&shared);
        let server = Server::serve(
            "entra-emulator",
            listener,
            Arc::new(move |request| http::handle(&serving, request)),
        )
        .map_err(EmulatorError::Listen)?;
        Ok(Self {
            shared,
            partner: partner.map(|shared| {
                Box::new(Self {
                    shared,
                    partner: None,
                    _server: None,
                })
            }),
            _server: Some(server),
        })
    }

    /// The partner tenant served beside the fixture tenant (the fixtures' `partner`): the
    /// same methods answer for it — its tenant id, client id and secret, its users' tokens,
    /// its keys, faults and counters. `None` when the fixtures name no partner.
    pub fn partner(&self) -> Option<&Emulator> {
        self.partner.as_deref()
    }

    /// The base URL, `http://127.0.0.1:PORT` (no trailing slash): the stand-in for
    /// `https://login.microsoftonline.com`, to configure as the worker's Entra authority.
    pub fn url(&self) -> &str {
        &self.shared.url
    }

    /// Where the emulator listens.
    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// The fixtures it serves.
    pub fn fixtures(&self) -> &Fixtures {
        &self.shared.fixtures
    }

    /// The tenant (directory) id.
    pub fn tenant_id(&self) -> &str {
        &self.shared.fixtures.tenant_id
    }

    /// The gateway's app registration: the API audience.
    pub fn client_id(&self) -> &str {
        &self.shared.fixtures.client_id
    }

    /// `iss` of v1 tokens: `https://sts.windows.net/{tid}/`.
    pub fn v1_issuer(&self) -> String {
        token::v1_issuer(self.tenant_id())
    }

    /// `iss` of v2 tokens: `{url}/{tid}/v2.0`.
    pub fn v2_issuer(&self) -> String {
        token::v2_issuer(self.url(), self.tenant_id())
    }

    /// `{url}/{tid}/discovery/keys` (v1 JWKS).
    pub fn v1_jwks_url(&self) -> String {
        format!("{}/{}/discovery/keys", self.url(), self.tenant_id())
    }

    /// `{url}/{tid}/discovery/v2.0/keys` (v2 JWKS).
    pub fn v2_jwks_url(&self) -> String {
        format!("{}/{}/discovery/v2.0/keys", self.url(), self.tenant_id())
    }

    /// An RS256 access token, as [`TokenRequest`] describes.
    ///
    /// # Errors
    ///
    /// When the user is not a fixture user, the version is not 1 or 2, or signing fails.
    pub fn mint(&self, request: &TokenRequest) -> Result<String, EmulatorError> {
        self.shared.mint(request)
    }

    /// Moves on to a new signing key and returns its `kid`. With `keep_previous`, the JWKS keeps
    /// listing the earlier keys (tokens they signed stay verifiable); without, it lists the
    /// new key alone.
    ///
    /// # Errors
    ///
    /// When the key cannot be generated.
    pub fn rotate_keys(&self, keep_previous: bool) -> Result<String, EmulatorError> {
        self.shared.rotate_keys(keep_previous)
    }

    /// Sets the fault the JWKS endpoints answer with from now on.
    pub fn set_jwks_fault(&self, fault: Fault) {
        *lock(&self.shared.fault) = ArmedFault::until_changed(fault);
    }

    /// Sets the fault the next `times` JWKS requests get; those after them are answered
    /// normally.
    pub fn set_jwks_fault_times(&self, fault: Fault, times: u64) {
        *lock(&self.shared.fault) = ArmedFault::times(fault, times);
    }

    /// The fault the JWKS endpoints answer the next request with.
    pub fn jwks_fault(&self) -> Fault {
        lock(&self.shared.fault).fault
    }

    /// Sets the fault the discovery documents (v1 and v2) answer with from now on.
    pub fn set_discovery_fault(&self, fault: Fault) {
        *lock(&self.shared.discovery_fault) = ArmedFault::until_changed(fault);
    }

    /// Sets the fault the next `times` discovery requests get.
    pub fn set_discovery_fault_times(&self, fault: Fault, times: u64) {
        *lock(&self.shared.discovery_fault) = ArmedFault::times(fault, times);
    }

    /// The fault the discovery documents answer the next request with.
    pub fn discovery_fault(&self) -> Fault {
        lock(&self.shared.discovery_fault).fault
    }

    /// JWKS requests received for this tenant, on both paths, whatever the answer (a fault
    /// counts too).
    pub fn jwks_fetches(&self) -> u64 {
        self.shared.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Discovery requests received for this tenant, v1 and v2.
    pub fn discovery_fetches(&self) -> u64 {
        self.shared.discovery_fetches.load(Ordering::SeqCst)
    }

    /// The `kid` of the key that signs new tokens.
    pub fn signing_kid(&self) -> String {
        self.shared.signing_key().kid().to_owned()
    }

    /// The `kid`s the JWKS lists, the signing key first.
    pub fn published_kids(&self) -> Vec<String> {
        lock(&self.shared.keys)
            .published()
            .map(|key| key.kid().to_owned())
            .collect()
    }

    /// The JWKS entry of a published key.
    pub fn public_jwk(&self, kid: &str) -> Option<serde_json::Value> {
        lock(&self.shared.keys)
            .published()
            .find(|key| key.kid() == kid)
            .map(|key| key.jwk())
    }

    /// The JWKS document the endpoints serve when there is no fault.
    pub fn jwks(&self) -> serde_json::Value {
        self.shared.jwks()
    }

    /// The app registration's client secret (`client_secret` in the fixtures), which the
    /// token endpoint requires.
    pub fn client_secret(&self) -> &str {
        &self.shared.fixtures.client_secret
    }

    /// `{url}/{tid}/oauth2/v2.0/authorize`.
    pub fn authorize_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/authorize", self.url(), self.tenant_id())
    }

    /// `{url}/{tid}/oauth2/v2.0/token`.
    pub fn token_endpoint(&self) -> String {
        format!("{}/{}/oauth2/v2.0/token", self.url(), self.tenant_id())
    }

    /// `{url}/graph`: the stand-in for `https://graph.microsoft.com` (requests go to
    /// `{graph_url}/v1.0/…`).
    pub fn graph_url(&self) -> String {
        format!("{}/graph", self.url())
    }

    /// A v2 authorize URL for the fixture client: `response_type=code`,
    /// `response_mode=query`, `scope` [`SIGN_IN_SCOPE`], and with a `code_challenge`
    /// (BASE64URL(SHA-256(verifier)), see [`pkce_challenge`]) `code_challenge_method=S256`.
    pub fn authorize_url(
        &self,
        redirect_uri: &str,
        state: &str,
        nonce: &str,
        code_challenge: Option<&str>,
    ) -> String {
        let mut pairs = vec![
            ("client_id", self.client_id()),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("response_mode", "query"),
            ("scope", SIGN_IN_SCOPE),
            ("state", state),
            ("nonce", nonce),
        ];
        if let Some(challenge) = code_challenge {
            pairs.push(("code_challenge", challenge));
            pairs.push(("code_challenge_method", "S256"));
        }
        format!(
            "{}?{}",
            self.authorize_endpoint(),
            crate::urlencoded::encode_pairs(&pairs)
        )
    }

    /// Signs in as a fixture user the way a browser would, without one: `GET authorize_url`
    /// (any authorize URL, such as the one the gateway redirects to), then submit the page's
    /// form with the button of `user`. Returns the `Location` the emulator redirects to:
    /// `redirect_uri?code=…&state=…`.
    ///
    /// # Errors
    ///
    /// [`EmulatorError::Http`] when an exchange fails, [`EmulatorError::SignIn`] when the page
    /// is an error page (its text is in the message) or the form is not answered with a
    /// redirect, [`EmulatorError::UnknownUser`] when the page has no button for `user`.
    pub fn sign_in(&self, authorize_url: &str, user: &str) -> Result<String, EmulatorError> {
        signin_client::sign_in(authorize_url, user)
    }

    /// [`Emulator::sign_in`], also returning the emulator's session cookie (`name=value`) set
    /// with the redirect: sent back, it lets a `prompt=none` sign-in through silently.
    ///
    /// # Errors
    ///
    /// As [`Emulator::sign_in`].
    pub fn sign_in_with_session(
        &self,
        authorize_url: &str,
        user: &str,
    ) -> Result<(String, Option<String>), EmulatorError> {
        signin_client::sign_in_with_session(authorize_url, user)
    }

    /// How long authorization codes issued from now on stay redeemable; default
    /// [`CODE_LIFETIME`] (5 minutes). `Duration::ZERO` makes every new code expired.
    pub fn set_code_lifetime(&self, lifetime: Duration) {
        lock(&self.shared.codes).lifetime = lifetime;
    }

    /// Makes every silent sign-in (`prompt=none`) from now on fail with `error` even for a
    /// browser with a session at the emulator (`None`: a session signs in silently, no
    /// session is `login_required`).
    pub fn set_silent_sign_in_error(&self, error: Option<SilentError>) {
        lock(&self.shared.codes).silent_sign_in_error = error;
    }

    /// The `prompt` of every sign-in page request (`GET` to an authorize endpoint) so far, oldest
    /// first (`None`: sent without one); the latest 256.
    pub fn authorize_prompts(&self) -> Vec<Option<String>> {
        lock(&self.shared.codes).prompts.iter().cloned().collect()
    }

    /// Authorization codes issued so far.
    pub fn codes_issued(&self) -> u64 {
        lock(&self.shared.codes).issued
    }

    /// Authorization codes redeemed for tokens so far (successful token responses).
    pub fn codes_redeemed(&self) -> u64 {
        lock(&self.shared.codes).redeemed_ok
    }

    /// A Microsoft Graph access token for a fixture user, as the token endpoint issues with
    /// its ID token (`aud` [`GRAPH_AUDIENCE`], `scp` [`GRAPH_SCOPES`]).
    ///
    /// # Errors
    ///
    /// When the user is not a fixture user or signing fails.
    pub fn graph_token(&self, user: &str) -> Result<String, EmulatorError> {
        let user = self
            .shared
            .fixtures
            .user(user)
            .ok_or_else(|| EmulatorError::UnknownUser(user.to_owned()))?;
        self.shared.sign(
            1,
            &self
                .shared
                .issuance()
                .graph_token_claims(user, GRAPH_SCOPES),
        )
    }

    /// Sets the fault the Graph endpoints answer with from now on (before checking the
    /// access token).
    pub fn set_graph_fault(&self, fault: Fault) {
        *lock(&self.shared.graph_fault) = fault;
    }

    /// The fault the Graph endpoints answer with.
    pub fn graph_fault(&self) -> Fault {
        *lock(&self.shared.graph_fault)
    }

    /// Requests received under `/graph/`, whatever the answer (a fault or a refused token
    /// counts too).
    pub fn graph_calls(&self) -> u64 {
        self.shared.graph_calls.load(Ordering::SeqCst)
    }

    /// Membership requests received under `/graph/`: `getMemberObjects`/`getMemberGroups`
    /// calls and `transitiveMemberOf` pages, with delegated or application tokens, whatever
    /// the answer (a fault or a refused token counts too, as in [`Emulator::graph_calls`]).
    /// Profile reads do not count.
    pub fn graph_member_lookups(&self) -> u64 {
        self.shared.graph_member_lookups.load(Ordering::SeqCst)
    }

    /// Access tokens the token endpoints issued by the client credentials grant.
    pub fn client_credentials_issued(&self) -> u64 {
        self.shared.client_credentials_issued.load(Ordering::SeqCst)
    }

    /// An app-only Microsoft Graph access token with `roles` (no `roles` claim when empty),
    /// as the client credentials grant issues with the granted permissions (not
    /// counted by [`Emulator::client_credentials_issued`]): for tests of tokens without the
    /// role.
    ///
    /// # Errors
    ///
    /// When signing fails.
    pub fn graph_app_token(&self, roles: &[&str]) -> Result<String, EmulatorError> {
        self.shared.sign(
            1,
            &self
                .shared
                .issuance()
                .app_token_claims(self.shared.fixtures.cloud.graph_resource(), roles),
        )
    }
}

impl Shared {
    /// A tenant of `fixtures` served at `addr`, signing with the first key of `sequence`.
    fn new(
        fixtures: Fixtures,
        addr: SocketAddr,
        sequence: keys::Sequence,
        partners: Vec<Arc<Shared>>,
    ) -> Result<Self, EmulatorError> {
        let signing = keys::nth_key(sequence, 0)?;
        Ok(Shared {
            fixtures,
            url: format!("http://{addr}"),
            addr,
            sequence,
            keys: Mutex::new(KeySet {
                signing,
                previous: Vec::new(),
                position: 0,
            }),
            fault: Mutex::new(ArmedFault::default()),
            discovery_fault: Mutex::new(ArmedFault::default()),
            jwks_fetches: AtomicU64::new(0),
            discovery_fetches: AtomicU64::new(0),
            codes: Mutex::new(Codes::default()),
            graph_fault: Mutex::new(Fault::None),
            graph_calls: AtomicU64::new(0),
            graph_member_lookups: AtomicU64::new(0),
            client_credentials_issued: AtomicU64::new(0),
            partners,
        })
    }

    fn signing_key(&self) -> Arc<SigningKey> {
        Arc::clone(&lock(&self.keys).signing)
    }

    fn rotate_keys(&self, keep_previous: bool) -> Result<String, EmulatorError> {
        let position = lock(&self.keys).position.saturating_add(1);
        // Taken without the lock: making a key takes a while.
        let key = keys::nth_key(self.sequence, position)?;
        let kid = key.kid().to_owned();
        let mut keys = lock(&self.keys);
        if keys.position >= position {
            // Another rotation got there first; this one rotates once more.
            drop(keys);
            return self.rotate_keys(keep_previous);
        }
        keys.position = position;
        let previous = std::mem::replace(&mut keys.signing, key);
        if keep_previous {
            keys.previous.insert(0, previous);
        } else {
            keys.previous.clear();
        }
        Ok(kid)
    }

    fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> =
            lock(&self.keys).published().map(|key| key.jwk()).collect();
        serde_json::json!({ "keys": keys })
    }

    fn mint(&self, request: &TokenRequest) -> Result<String, EmulatorError> {
        let user = self
            .fixtures
            .user(&request.user)
            .ok_or_else(|| EmulatorError::UnknownUser(request.user.clone()))?;
        if !matches!(request.version, 1 | 2) {
            return Err(EmulatorError::UnsupportedVersion(request.version));
        }
        let key = if request.sign_with_unpublished_key {
            keys::unpublished_key()?
        } else {
            self.app_signing_key()?
        };
        let claims = self.issuance().claims(request, user);
        let header = token::header(request, key.kid());
        Ok(key.sign_jwt(&header, &claims)?)
    }

    /// Issuing now.
    fn issuance(&self) -> Issuance<'_> {
        Issuance {
            fixtures: &self.fixtures,
            authority: &self.url,
            now: unix_now(),
        }
    }

    /// `claims` signed by the current key, with the header of a `version` token.
    fn sign(
        &self,
        version: u8,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, EmulatorError> {
        let key = self.signing_key();
        let header = token::plain_header(version, key.kid());
        Ok(key.sign_jwt(&header, claims)?)
    }

    /// The key that signs tokens for the app registration (ID tokens, access tokens for its
    /// API): its own key when [`Fixtures::app_signing_key`] says it has one, else the
    /// tenant's current key.
    fn app_signing_key(&self) -> Result<Arc<SigningKey>, EmulatorError> {
        if self.fixtures.app_signing_key {
            Ok(keys::app_key()?)
        } else {
            Ok(self.signing_key())
        }
    }

    /// `claims` signed by [`Shared::app_signing_key`], with the header of a `version` token.
    fn sign_for_app(
        &self,
        version: u8,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, EmulatorError> {
        let key = self.app_signing_key()?;
        let header = token::plain_header(version, key.kid());
        Ok(key.sign_jwt(&header, claims)?)
    }

    /// The JWKS with `?appid=`: the published keys and, when `appid` is the registration's
    /// client id and it has its own key, that key too.
    fn app_jwks(&self, appid: &str) -> Result<serde_json::Value, EmulatorError> {
        let mut keys: Vec<serde_json::Value> =
            lock(&self.keys).published().map(|key| key.jwk()).collect();
        if self.fixtures.app_signing_key && appid.eq_ignore_ascii_case(&self.fixtures.client_id) {
            keys.insert(0, keys::app_key()?.jwk());
        }
        Ok(serde_json::json!({ "keys": keys }))
    }

    /// The published key named `kid`.
    fn published_key(&self, kid: &str) -> Option<Arc<SigningKey>> {
        lock(&self.keys)
            .published()
            .find(|key| key.kid() == kid)
            .cloned()
    }
}

/// `bytes` random bytes, base64url without padding.
fn random_token(bytes: usize) -> String {
    use base64::Engine;
    use rsa::rand_core::RngCore;
    let mut buffer = vec![0_u8; bytes];
    rsa::rand_core::OsRng.fill_bytes(&mut buffer);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

/// A lock that shrugs off poisoning: the data behind it stays consistent at every step.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Seconds since the Unix epoch.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |elapsed| {
            i64::try_from(elapsed.as_secs()).unwrap_or(i64::MAX)
        })
}

//! The browser sign-in, the OIDC authorization code flow (reference §4.1): the authorize
//! endpoint (a sign-in page listing the fixture users, and the form it submits) and the
//! token endpoint (`authorization_code` with the client secret and optional PKCE S256).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::json;
use sha2::{Digest, Sha256};
use tiny_http::Method;

use super::http::{entra_error, invalid_tenant, known_tenant};
use super::{
    lock, random_token, EmulatorError, Shared, APP_TOKEN_EXPIRES_IN, GRAPH_APP_ID, GRAPH_SCOPES,
};
use crate::fixtures::User;
use crate::server::{read_body, respond, respond_json};
use crate::urlencoded;

/// How long an authorization code stays redeemable unless
/// [`super::Emulator::set_code_lifetime`] says otherwise (Entra: a few minutes).
pub const CODE_LIFETIME: Duration = Duration::from_secs(300);

/// The `scope` of [`super::Emulator::authorize_url`].
pub const SIGN_IN_SCOPE: &str = "openid profile email";

/// The authorize parameters the emulator reads, in the order the sign-in page carries them.
const AUTHORIZE_PARAMETERS: [&str; 12] = [
    "client_id",
    "response_type",
    "redirect_uri",
    "response_mode",
    "scope",
    "state",
    "nonce",
    "prompt",
    "login_hint",
    "code_challenge",
    "code_challenge_method",
    "resource",
];

/// The emulator's sign-in session cookie (Entra's is `ESTSAUTH`): a browser that signed in
/// once is signed in silently (`prompt=none`) afterwards.
const SESSION_COOKIE: &str = "EMULATOR_ESTSAUTH";

/// The `prompt` values Entra knows.
const PROMPTS: [&str; 5] = ["login", "select_account", "consent", "none", "create"];

/// No caching for anything the sign-in answers.
const NO_STORE: [(&str, &str); 2] = [("Cache-Control", "no-store"), ("Pragma", "no-cache")];

/// BASE64URL(SHA-256(`verifier`)): the S256 `code_challenge` for a PKCE `code_verifier`.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Authorization codes: issued and not yet presented, and every code presented once.
#[derive(Debug)]
pub(super) struct Codes {
    pending: HashMap<String, Grant>,
    /// Codes presented at the token endpoint, whatever came of it: a code is used up by its
    /// first presentation.
    presented: HashSet<String>,
    /// The lifetime of codes issued from now on.
    pub(super) lifetime: Duration,
    pub(super) issued: u64,
    pub(super) redeemed_ok: u64,
    /// Browser sessions at the emulator ([`SESSION_COOKIE`] value → user key).
    sessions: HashMap<String, String>,
    /// What a silent sign-in (`prompt=none`) answers even with a session: the
    /// `interaction_required` of a Conditional Access policy that wants the user.
    pub(super) silent_sign_in_error: Option<SilentError>,
    /// The `prompt` of each authorize request shown or answered (`None`: without one), the
    /// latest [`PROMPTS_KEPT`].
    pub(super) prompts: VecDeque<Option<String>>,
}

/// How many authorize requests' `prompt` the emulator keeps.
pub(super) const PROMPTS_KEPT: usize = 256;

impl Default for Codes {
    fn default() -> Self {
        Self {
            pending: HashMap::new(),
            presented: HashSet::new(),
            lifetime: CODE_LIFETIME,
            issued: 0,
            redeemed_ok: 0,
            sessions: HashMap::new(),
            silent_sign_in_error: None,
            prompts: VecDeque::new(),
        }
    }
}

/// Why Entra refuses a silent sign-in (`prompt=none`), as the error it redirects with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SilentError {
    /// `login_required` (`AADSTS50058`): no one is signed in (what the emulator answers
    /// without a session).
    LoginRequired,
    /// `interaction_required` (`AADSTS50076`): the user must do something first, such as
    /// multifactor authentication a Conditional Access policy asks for.
    InteractionRequired,
    /// `consent_required` (`AADSTS65001`): the user or an administrator has not consented.
    ConsentRequired,
}

impl SilentError {
    /// The `error` and `error_description` Entra redirects with.
    fn answer(self) -> (&'static str, &'static str) {
        match self {
            SilentError::LoginRequired => (
                "login_required",
                "AADSTS50058: A silent sign-in request was sent but no user is signed in.",
            ),
            SilentError::InteractionRequired => (
                "interaction_required",
                "AADSTS50076: Due to a configuration change made by your administrator, or \
                 because you moved to a new location, you must use multi-factor \
                 authentication to access the resource.",
            ),
            SilentError::ConsentRequired => (
                "consent_required",
                "AADSTS65001: The user or administrator has not consented to use the \
                 application.",
            ),
        }
    }
}

/// What a code was issued for.
#[derive(Debug)]
struct Grant {
    client_id: String,
    redirect_uri: String,
    nonce: Option<String>,
    code_challenge: Option<String>,
    user: String,
    scope: String,
    expires: Instant,
}

/// A validated authorize request.
#[derive(Debug)]
struct Authorize {
    /// The [`AUTHORIZE_PARAMETERS`] present, in that order, as sent.
    carried: Vec<(String, String)>,
    client_id: String,
    redirect_uri: String,
    scope: String,
    state: Option<String>,
    nonce: Option<String>,
    code_challenge: Option<String>,
    prompt: Option<String>,
}

/// Why an authorize request is refused: an `AADSTS` code and a description.
#[derive(Debug)]
struct Refusal {
    code: u32,
    description: String,
}

fn refuse(code: u32, description: impl Into<String>) -> Refusal {
    Refusal {
        code,
        description: description.into(),
    }
}

fn missing(name: &str) -> Refusal {
    refuse(
        900_144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// The authorize endpoint: `GET` shows the sign-in page, `POST` is its form.
pub(super) fn authorize(shared: &Shared, mut request: tiny_http::Request, tenant: &str) {
    if !sign_in_tenant(shared, tenant) {
        let refusal = refuse(
            90_002,
            format!(
                "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID \
                 and are signing into the correct cloud."
            ),
        );
        return error_page(request, &refusal);
    }
    let is_post = *request.method() == Method::Post;
    let pairs = if is_post {
        if !has_form_content_type(&request) {
            let refusal = refuse(
                90_023,
                "The sign-in form must be posted as application/x-www-form-urlencoded.",
            );
            return error_page(request, &refusal);
        }
        match read_body(&mut request) {
            Ok(Some(body)) => std::str::from_utf8(&body)
                .ok()
                .and_then(urlencoded::decode_pairs),
            Ok(None) | Err(_) => None,
        }
    } else {
        urlencoded::query_pairs(request.url())
    };
    let Some(pairs) = pairs else {
        let refusal = refuse(90_023, "The request parameters could not be decoded.");
        return error_page(request, &refusal);
    };
    let authorize = match parse_authorize(shared, &pairs) {
        Ok(authorize) => authorize,
        Err(refusal) => return error_page(request, &refusal),
    };
    let path = request
        .url()
        .split('?')
        .next()
        .unwrap_or_default()
        .to_owned();
    if !is_post {
        let mut codes = lock(&shared.codes);
        if codes.prompts.len() == PROMPTS_KEPT {
            codes.prompts.pop_front();
        }
        codes.prompts.push_back(authorize.prompt.clone());
    }
    if is_post {
        submit(shared, request, &authorize, &pairs);
    } else if authorize.prompt.as_deref() == Some("none") {
        silent(shared, request, &authorize);
    } else {
        sign_in_page(shared, request, &path, &authorize);
    }
}

/// A silent sign-in (`prompt=none`): a code for the user of the browser's session at the
/// emulator, or — with no session, or when a silent sign-in error is set — the error Entra
/// redirects with (`login_required`, `interaction_required`, `consent_required`); never a
/// page.
fn silent(shared: &Shared, request: tiny_http::Request, authorize: &Authorize) {
    let user = {
        let codes = lock(&shared.codes);
        let session = header(&request, "Cookie").and_then(|cookies| {
            cookies.split(';').find_map(|cookie| {
                let (name, value) = cookie.trim().split_once('=')?;
                (name == SESSION_COOKIE).then(|| value.to_owned())
            })
        });
        match codes.silent_sign_in_error {
            Some(error) => Err(error),
            None => session
                .and_then(|session| codes.sessions.get(&session).cloned())
                .ok_or(SilentError::LoginRequired),
        }
    };
    let answer = match user.map(|key| shared.fixtures.user(&key).cloned()) {
        Ok(Some(user)) => vec![("code", issue_code(shared, authorize, &user))],
        Ok(None) => {
            let (error, description) = SilentError::LoginRequired.answer();
            vec![
                ("error", error.to_owned()),
                ("error_description", description.to_owned()),
            ]
        }
        Err(error) => {
            let (error, description) = error.answer();
            vec![
                ("error", error.to_owned()),
                ("error_description", description.to_owned()),
            ]
        }
    };
    redirect_back(request, authorize, answer, None);
}

/// The fixture tenant, or one of the multi-tenant aliases Entra accepts for sign-in.
fn sign_in_tenant(shared: &Shared, tenant: &str) -> bool {
    known_tenant(shared, tenant) || matches!(tenant, "common" | "organizations")
}

fn has_form_content_type(request: &tiny_http::Request) -> bool {
    header(request, "Content-Type").is_some_and(|value| {
        value
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .eq_ignore_ascii_case("application/x-www-form-urlencoded")
    })
}

/// The first value of header `name`.
fn header<'a>(request: &'a tiny_http::Request, name: &str) -> Option<&'a str> {
    request
        .headers()
        .iter()
        .find(|header| header.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|header| header.value.as_str())
}

/// A parameter named twice, if any.
fn duplicate(pairs: &[(String, String)]) -> Option<&str> {
    let mut seen = HashSet::new();
    pairs
        .iter()
        .find(|(name, _)| !seen.insert(name.as_str()))
        .map(|(name, _)| name.as_str())
}

/// Checks an authorize request, the client and the redirect URI first (an error page,
/// never a redirect, for those).
fn parse_authorize(shared: &Shared, pairs: &[(String, String)]) -> Result<Authorize, Refusal> {
    if let Some(name) = duplicate(pairs) {
        return Err(refuse(
            90_023,
            format!("The parameter '{name}' is given more than once."),
        ));
    }
    let get = |name: &str| urlencoded::value(pairs, name);

    let client_id = get("client_id").ok_or_else(|| missing("client_id"))?;
    if !client_id.eq_ignore_ascii_case(&shared.fixtures.client_id) {
        return Err(refuse(
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'. \
                 This can happen if the application has not been installed by the administrator \
                 of the tenant or consented to by any user in the tenant.",
                shared.fixtures.tenant_id
            ),
        ));
    }
    let redirect_uri = get("redirect_uri").ok_or_else(|| missing("redirect_uri"))?;
    let registered = check_redirect_uri(redirect_uri).and_then(|()| {
        if shared.fixtures.redirect_uri_registered(redirect_uri) {
            Ok(())
        } else {
            Err("not registered for the application")
        }
    });
    if let Err(problem) = registered {
        return Err(refuse(
            50_011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the \
                 redirect URIs configured for the application '{client_id}' ({problem})."
            ),
        ));
    }

    let response_type = get("response_type").ok_or_else(|| missing("response_type"))?;
    if response_type != "code" {
        return Err(refuse(
            700_054,
            format!(
                "response_type '{response_type}' is not enabled for the application \
                 (the emulator serves the authorization code flow: response_type=code)."
            ),
        ));
    }
    if let Some(mode) = get("response_mode") {
        if mode != "query" {
            return Err(refuse(
                90_023,
                format!("response_mode '{mode}' is not supported by the emulator (use query)."),
            ));
        }
    }
    let scope = get("scope").ok_or_else(|| missing("scope"))?;
    if !scope.split(' ').any(|scope| scope == "openid") {
        return Err(refuse(
            90_023,
            format!("The scope '{scope}' does not contain 'openid', which sign-in requires."),
        ));
    }
    if let Some(prompt) = get("prompt") {
        if !PROMPTS.contains(&prompt) {
            return Err(refuse(90_023, format!("Invalid prompt value '{prompt}'.")));
        }
    }
    let code_challenge = match (get("code_challenge"), get("code_challenge_method")) {
        (None, None) => None,
        (None, Some(_)) => return Err(missing("code_challenge")),
        (Some(challenge), method) => {
            if method != Some("S256") {
                return Err(refuse(
                    90_023,
                    "code_challenge_method must be S256 (plain, or no method, is refused).",
                ));
            }
            if challenge.len() != 43 || !challenge.bytes().all(is_base64url) {
                return Err(refuse(
                    90_023,
                    "code_challenge must be BASE64URL(SHA-256(code_verifier)): 43 characters.",
                ));
            }
            Some(challenge.to_owned())
        }
    };

    let carried = AUTHORIZE_PARAMETERS
        .iter()
        .filter_map(|name| get(name).map(|value| ((*name).to_owned(), value.to_owned())))
        .collect();
    Ok(Authorize {
        carried,
        client_id: client_id.to_owned(),
        redirect_uri: redirect_uri.to_owned(),
        scope: scope.to_owned(),
        state: get("state").map(str::to_owned),
        nonce: get("nonce").map(str::to_owned),
        code_challenge,
        prompt: get("prompt").map(str::to_owned),
    })
}

fn is_base64url(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_'
}

/// A redirect URI the emulator redirects to: an absolute `http` or `https` URL with a host,
/// no user information and no fragment.
fn check_redirect_uri(uri: &str) -> Result<(), &'static str> {
    let (scheme, rest) = uri.split_once("://").ok_or("not an absolute URL")?;
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return Err("only http and https redirect URIs");
    }
    if uri
        .bytes()
        .any(|byte| byte.is_ascii_control() || byte == b' ')
    {
        return Err("control characters or spaces");
    }
    if uri.contains('#') {
        return Err("a fragment");
    }
    let authority = rest.split(['/', '?']).next().unwrap_or_default();
    if authority.is_empty() || authority.starts_with(':') {
        return Err("no host");
    }
    if authority.contains('@') {
        return Err("user information");
    }
    Ok(())
}

/// The sign-in page: the request parameters in hidden fields, one submit button per user.
fn sign_in_page(shared: &Shared, request: tiny_http::Request, path: &str, authorize: &Authorize) {
    let fixtures = &shared.fixtures;
    let hidden: String = authorize
        .carried
        .iter()
        .map(|(name, value)| {
            format!(
                "      <input type=\"hidden\" name=\"{}\" value=\"{}\">\n",
                escape(name),
                escape(value)
            )
        })
        .collect();
    let buttons: String = fixtures
        .users
        .iter()
        .map(|user| {
            format!(
                "      <li><button type=\"submit\" name=\"user\" value=\"{key}\" id=\"user-{key}\">\
                 {name} <span class=\"upn\">{upn}</span></button>\
                 <span class=\"note\">{groups} groups{description}</span></li>\n",
                key = escape(&user.key),
                name = escape(&user.name),
                upn = escape(&user.upn),
                groups = fixtures.transitive_groups(user).len(),
                description = user
                    .description
                    .as_deref()
                    .map(|text| format!(" · {}", escape(text)))
                    .unwrap_or_default(),
            )
        })
        .collect();
    let page = format!(
        "<!doctype html>
<html lang=\"en\">
<head>
  <meta charset=\"utf-8\">
  <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">
  <title>Sign in to your account</title>
  <style>
    body {{ font-family: system-ui, sans-serif; background: #f2f2f2; margin: 0; }}
    main {{ max-width: 44rem; margin: 3rem auto; background: #fff; padding: 2rem 2.5rem;
           box-shadow: 0 2px 6px rgba(0,0,0,.2); }}
    h1 {{ font-size: 1.5rem; font-weight: 600; }}
    ul {{ list-style: none; padding: 0; }}
    li {{ margin: .5rem 0; }}
    button {{ font: inherit; padding: .5rem 1rem; min-width: 16rem; text-align: left;
             cursor: pointer; }}
    li button {{ background: #0067b8; color: #fff; border: 0; }}
    .upn {{ display: block; font-size: .8rem; opacity: .85; }}
    .note {{ display: block; font-size: .8rem; color: #555; margin: .2rem 0 0 .2rem; }}
    .meta {{ color: #555; font-size: .85rem; overflow-wrap: anywhere; }}
  </style>
</head>
<body>
  <main>
    <h1>Pick an account</h1>
    <p class=\"meta\">Entra ID emulator (edge-access tests) · tenant {tenant}<br>
      for application {client_id}, returning to {redirect_uri}</p>
    <form method=\"post\" action=\"{action}\" id=\"sign-in\">
{hidden}      <ul>
{buttons}      </ul>
      <button type=\"submit\" name=\"cancel\" value=\"access_denied\" id=\"cancel\">Cancel</button>
    </form>
  </main>
</body>
</html>
",
        tenant = escape(&fixtures.tenant_id),
        client_id = escape(&authorize.client_id),
        redirect_uri = escape(&authorize.redirect_uri),
        action = escape(path),
    );
    respond(
        request,
        200,
        "text/html; charset=utf-8",
        &NO_STORE,
        page.into_bytes(),
    );
}

/// The sign-in form: a code for the chosen user, or `access_denied` for Cancel.
fn submit(
    shared: &Shared,
    request: tiny_http::Request,
    authorize: &Authorize,
    pairs: &[(String, String)],
) {
    let mut answer: Vec<(&str, String)> = Vec::new();
    if urlencoded::value(pairs, "cancel").is_some() {
        answer.push(("error", "access_denied".into()));
        answer.push((
            "error_description",
            "AADSTS65004: User declined to consent to access the app.".into(),
        ));
    } else {
        let Some(key) = urlencoded::value(pairs, "user") else {
            return error_page(request, &missing("user"));
        };
        let Some(user) = shared.fixtures.user(key) else {
            let refusal = refuse(
                50_034,
                format!("The user account {key} does not exist in the directory."),
            );
            return error_page(request, &refusal);
        };
        answer.push(("code", issue_code(shared, authorize, user)));
        let session = random_token(32);
        lock(&shared.codes)
            .sessions
            .insert(session.clone(), user.key.clone());
        let cookie = format!("{SESSION_COOKIE}={session}; Path=/; HttpOnly; SameSite=Lax");
        return redirect_back(request, authorize, answer, Some(&cookie));
    }
    redirect_back(request, authorize, answer, None);
}

/// `302` to the authorize request's redirect URI with `answer` and its `state`, setting
/// `cookie` if given.
fn redirect_back(
    request: tiny_http::Request,
    authorize: &Authorize,
    mut answer: Vec<(&str, String)>,
    cookie: Option<&str>,
) {
    if let Some(state) = &authorize.state {
        answer.push(("state", state.clone()));
    }
    let pairs: Vec<(&str, &str)> = answer
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect();
    let uri = &authorize.redirect_uri;
    let separator = if !uri.contains('?') {
        "?"
    } else if uri.ends_with('?') || uri.ends_with('&') {
        ""
    } else {
        "&"
    };
    let location = format!("{uri}{separator}{}", urlencoded::encode_pairs(&pairs));
    let mut headers = vec![NO_STORE[0], NO_STORE[1], ("Location", location.as_str())];
    if let Some(cookie) = cookie {
        headers.push(("Set-Cookie", cookie));
    }
    respond(
        request,
        302,
        "text/plain; charset=utf-8",
        &headers,
        Vec::new(),
    );
}

/// A fresh one-time code (256 random bits) bound to the request and the user.
fn issue_code(shared: &Shared, authorize: &Authorize, user: &User) -> String {
    let code = random_token(32);
    let mut codes = lock(&shared.codes);
    let now = Instant::now();
    codes.pending.retain(|_, grant| grant.expires > now);
    let expires = now.checked_add(codes.lifetime).unwrap_or(now);
    codes.pending.insert(
        code.clone(),
        Grant {
            client_id: authorize.client_id.clone(),
            redirect_uri: authorize.redirect_uri.clone(),
            nonce: authorize.nonce.clone(),
            code_challenge: authorize.code_challenge.clone(),
            user: user.key.clone(),
            scope: authorize.scope.clone(),
            expires,
        },
    );
    codes.issued = codes.issued.saturating_add(1);
    code
}

/// An Entra-style error page (400): the code and description, no redirect.
fn error_page(request: tiny_http::Request, refusal: &Refusal) {
    let page = format!(
        "<!doctype html>
<html lang=\"en\">
<head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>
<body>
  <main>
    <h1>Sorry, but we're having trouble signing you in.</h1>
    <p id=\"error\">AADSTS{code}: {description}</p>
  </main>
</body>
</html>
",
        code = refusal.code,
        description = escape(&refusal.description),
    );
    respond(
        request,
        400,
        "text/html; charset=utf-8",
        &NO_STORE,
        page.into_bytes(),
    );
}

/// Text for HTML content and double-quoted attributes.
pub(super) fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// Why a token request is refused.
#[derive(Debug)]
struct TokenError {
    status: u16,
    error: &'static str,
    code: u32,
    description: String,
}

fn token_error(error: &'static str, code: u32, description: impl Into<String>) -> TokenError {
    TokenError {
        status: if error == "invalid_client" { 401 } else { 400 },
        error,
        code,
        description: description.into(),
    }
}

fn invalid_grant(code: u32, description: impl Into<String>) -> TokenError {
    token_error("invalid_grant", code, description)
}

fn missing_parameter(name: &str) -> TokenError {
    token_error(
        "invalid_request",
        900_144,
        format!("The request body must contain the following parameter: '{name}'."),
    )
}

/// The token endpoint; `version` (1 or 2) is the version of the ID token.
pub(super) fn token(shared: &Shared, mut request: tiny_http::Request, tenant: &str, version: u8) {
    if !sign_in_tenant(shared, tenant) {
        return invalid_tenant(shared, request, tenant);
    }
    let basic = header(&request, "Authorization")
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, credentials)| credentials.trim().to_owned());
    let outcome = if *request.method() == Method::Post {
        if has_form_content_type(&request) {
            match read_body(&mut request) {
                Ok(Some(body)) => redeem(shared, &body, basic.as_deref(), version),
                Ok(None) => Err(token_error("invalid_request", 90_023, "Body too large.")),
                Err(error) => Err(token_error("invalid_request", 90_023, error.to_string())),
            }
        } else {
            Err(token_error(
                "invalid_request",
                90_023,
                "The token endpoint accepts application/x-www-form-urlencoded bodies only.",
            ))
        }
    } else {
        Err(token_error(
            "invalid_request",
            900_561,
            "The endpoint only accepts POST requests.",
        ))
    };
    match outcome {
        Ok(answer) => respond_json(request, 200, &NO_STORE, &answer),
        Err(error) => {
            let body = entra_error(shared, error.error, error.code, &error.description);
            let challenge = [("WWW-Authenticate", "Basic realm=\"entra-emulator\"")];
            let headers: Vec<(&str, &str)> = if error.status == 401 && basic.is_some() {
                NO_STORE.iter().chain(&challenge).copied().collect()
            } else {
                NO_STORE.to_vec()
            };
            respond_json(request, error.status, &headers, &body);
        }
    }
}

/// Checks a token request and redeems its code.
fn redeem(
    shared: &Shared,
    body: &[u8],
    basic: Option<&str>,
    version: u8,
) -> Result<serde_json::Value, TokenError> {
    let pairs = std::str::from_utf8(body)
        .ok()
        .and_then(urlencoded::decode_pairs)
        .ok_or_else(|| token_error("invalid_request", 90_023, "The body does not decode."))?;
    if let Some(name) = duplicate(&pairs) {
        return Err(token_error(
            "invalid_request",
            90_023,
            format!("The parameter '{name}' is given more than once."),
        ));
    }
    let get = |name: &str| urlencoded::value(&pairs, name);

    let grant_type = get("grant_type").ok_or_else(|| missing_parameter("grant_type"))?;
    match grant_type {
        "authorization_code" => {}
        "client_credentials" => return client_credentials(shared, &pairs, basic, version),
        _ => {
            return Err(token_error(
                "unsupported_grant_type",
                70_003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ))
        }
    }

    let client_id = authenticate_client(shared, basic, get("client_id"), get("client_secret"))?;

    let code = get("code").ok_or_else(|| missing_parameter("code"))?;
    let redirect_uri = get("redirect_uri").ok_or_else(|| missing_parameter("redirect_uri"))?;
    let grant = {
        let mut codes = lock(&shared.codes);
        // The first presentation uses the code up, whatever comes of it.
        let first = codes.presented.insert(code.to_owned());
        match codes.pending.remove(code) {
            Some(grant) => grant,
            None if !first => {
                return Err(invalid_grant(
                    54_005,
                    "OAuth2 Authorization code was already redeemed, please retry with a new \
                     valid code or use an existing refresh token.",
                ))
            }
            None => {
                return Err(invalid_grant(
                    70_000,
                    "The provided value for the 'code' parameter is not valid.",
                ))
            }
        }
    };
    if Instant::now() >= grant.expires {
        return Err(invalid_grant(
            70_008,
            "The provided authorization code or refresh token has expired due to inactivity. \
             Send a new interactive authorization request for this user and resource.",
        ));
    }
    if !grant.client_id.eq_ignore_ascii_case(&client_id) {
        return Err(invalid_grant(
            70_000,
            "The code was issued to another client.",
        ));
    }
    if grant.redirect_uri != redirect_uri {
        return Err(invalid_grant(
            70_000,
            format!(
                "The redirect_uri '{redirect_uri}' does not match the redirect URI '{}' of the \
                 authorization request.",
                grant.redirect_uri
            ),
        ));
    }
    check_pkce(grant.code_challenge.as_deref(), get("code_verifier"))?;

    let user = shared
        .fixtures
        .user(&grant.user)
        .ok_or_else(|| invalid_grant(70_000, "The user of the code no longer exists."))?;
    let issuance = shared.issuance();
    let signing_failed =
        |error: EmulatorError| token_error("server_error", 90_033, error.to_string());
    let id_token = shared
        .sign_for_app(
            version,
            &issuance.id_token_claims(user, version, grant.nonce.as_deref(), &grant.scope),
        )
        .map_err(signing_failed)?;
    let scope = granted_scope(&grant.scope);
    let access_token = shared
        .sign(1, &issuance.graph_token_claims(user, &scope))
        .map_err(signing_failed)?;
    {
        let mut codes = lock(&shared.codes);
        codes.redeemed_ok = codes.redeemed_ok.saturating_add(1);
    }
    Ok(json!({
        "token_type": "Bearer",
        "scope": scope,
        "expires_in": super::DEFAULT_LIFETIME_SECS,
        "ext_expires_in": super::DEFAULT_LIFETIME_SECS,
        "access_token": access_token,
        "id_token": id_token,
    }))
}

/// The client credentials grant (reference §4.4, application permissions): once the client
/// has authenticated as for a code, an app-only access token. For Microsoft Graph (`scope` its
/// `/.default`; on the v1 endpoint `resource` is Graph's URI or id instead) it carries the
/// application permissions the registration was granted
/// ([`crate::fixtures::Fixtures::graph_application_permissions`]); Graph is the one of the
/// tenant's cloud (another cloud's Graph is unknown here: `AADSTS500011`). For the gateway's
/// own web API (one of its application id URIs or its client id, with `/.default`; v1:
/// `resource`), as Entra issues to any client of the tenant that asks, it carries no role:
/// the API defines none.
fn client_credentials(
    shared: &Shared,
    pairs: &[(String, String)],
    basic: Option<&str>,
    version: u8,
) -> Result<serde_json::Value, TokenError> {
    let get = |name: &str| urlencoded::value(pairs, name);
    authenticate_client(shared, basic, get("client_id"), get("client_secret"))?;
    let fixtures = &shared.fixtures;
    // The gateway's API, by one of its application id URIs or its client id: the token's
    // `aud` (as asked).
    let is_api = |resource: &str| fixtures.is_api_resource(resource);
    let graph = fixtures.cloud.graph_resource();
    let graph_resources = [
        graph.to_owned(),
        format!("{graph}/"),
        GRAPH_APP_ID.to_owned(),
    ];
    let is_graph = |resource: &str| graph_resources.iter().any(|known| known == resource);
    let unknown_resource = |error: &'static str, resource: &str| {
        token_error(
            error,
            500_011,
            format!(
                "The resource principal named {resource} was not found in the tenant named {}. \
                 This can happen if the application has not been installed by the \
                 administrator of the tenant.",
                fixtures.tenant_id
            ),
        )
    };
    let mut audience = graph;
    match (version, get("scope"), get("resource")) {
        (1, None, Some(resource)) if is_api(resource) => audience = resource,
        (1, None, Some(resource)) if is_graph(resource) => {}
        (1, None, Some(resource)) => return Err(unknown_resource("invalid_resource", resource)),
        (2, _, Some(_)) => {
            return Err(token_error(
                "invalid_request",
                901_002,
                "The 'resource' request parameter is not supported.",
            ))
        }
        (_, None, _) => return Err(missing_parameter("scope")),
        (_, Some(scope), _) if scope.strip_suffix("/.default").is_some_and(is_graph) => {}
        (_, Some(scope), _) if scope.strip_suffix("/.default").is_some_and(is_api) => {
            audience = scope.trim_end_matches("/.default");
        }
        (_, Some(scope), _) if scope.ends_with("/.default") && !scope.contains(' ') => {
            return Err(unknown_resource(
                "invalid_scope",
                scope.trim_end_matches("/.default"),
            ))
        }
        (_, Some(scope), _) => {
            return Err(token_error(
                "invalid_scope",
                1_002_012,
                format!(
                    "The provided value for scope {scope} is not valid. Client credential flows \
                     must have a scope value with /.default suffixed to the resource \
                     identifier (application ID URI)."
                ),
            ))
        }
    }
    let granted: Vec<&str> = fixtures
        .graph_application_permissions
        .iter()
        .map(String::as_str)
        .collect();
    let roles: &[&str] = if audience == graph { &granted } else { &[] };
    let claims = shared.issuance().app_token_claims(audience, roles);
    let signed = if audience == graph {
        shared.sign(1, &claims)
    } else {
        shared.sign_for_app(1, &claims)
    };
    let access_token =
        signed.map_err(|error| token_error("server_error", 90_033, error.to_string()))?;
    shared
        .client_credentials_issued
        .fetch_add(1, Ordering::SeqCst);
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": APP_TOKEN_EXPIRES_IN,
        "ext_expires_in": APP_TOKEN_EXPIRES_IN,
        "access_token": access_token,
    }))
}

/// The client id once the client has authenticated with its secret, in the body
/// (`client_secret_post`) or in HTTP Basic (`client_secret_basic`), not both.
fn authenticate_client(
    shared: &Shared,
    basic: Option<&str>,
    body_client_id: Option<&str>,
    body_secret: Option<&str>,
) -> Result<String, TokenError> {
    let (client_id, secret) = match basic {
        Some(credentials) => {
            if body_secret.is_some() {
                return Err(token_error(
                    "invalid_request",
                    90_023,
                    "The client authenticated twice: HTTP Basic and client_secret in the body.",
                ));
            }
            let (id, secret) = decode_basic(credentials).ok_or_else(|| {
                token_error(
                    "invalid_client",
                    7_000_218,
                    "The HTTP Basic credentials do not decode.",
                )
            })?;
            if body_client_id.is_some_and(|body_id| body_id != id) {
                return Err(token_error(
                    "invalid_request",
                    90_023,
                    "client_id in the body differs from the HTTP Basic user.",
                ));
            }
            (id, Some(secret))
        }
        None => (
            body_client_id
                .ok_or_else(|| missing_parameter("client_id"))?
                .to_owned(),
            body_secret.map(str::to_owned),
        ),
    };
    if !client_id.eq_ignore_ascii_case(&shared.fixtures.client_id) {
        return Err(token_error(
            "invalid_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                shared.fixtures.tenant_id
            ),
        ));
    }
    let secret = secret.ok_or_else(|| {
        token_error(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or \
             'client_secret'.",
        )
    })?;
    if !constant_time_eq(secret.as_bytes(), shared.fixtures.client_secret.as_bytes()) {
        return Err(token_error(
            "invalid_client",
            7_000_215,
            "Invalid client secret provided. Ensure the secret being sent in the request is \
             the client secret value, not the client secret ID.",
        ));
    }
    Ok(client_id)
}

/// `client_id:client_secret` of an HTTP Basic credential, each form-urlencoded (RFC 6749
/// §2.3.1).
fn decode_basic(credentials: &str) -> Option<(String, String)> {
    let decoded = String::from_utf8(STANDARD.decode(credentials).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    Some((urlencoded::decode(id)?, urlencoded::decode(secret)?))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// PKCE (RFC 7636): a verifier exactly when the authorize request had a challenge, and
/// BASE64URL(SHA-256(verifier)) equal to it.
fn check_pkce(challenge: Option<&str>, verifier: Option<&str>) -> Result<(), TokenError> {
    match (challenge, verifier) {
        (None, None) => Ok(()),
        (None, Some(_)) => Err(invalid_grant(
            501_481,
            "A code_verifier was sent, but the authorization request had no code_challenge.",
        )),
        (Some(_), None) => Err(invalid_grant(
            501_481,
            "The code_verifier is missing: the authorization request had a code_challenge.",
        )),
        (Some(challenge), Some(verifier)) => {
            let well_formed = (43..=128).contains(&verifier.len())
                && verifier
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            if well_formed
                && constant_time_eq(pkce_challenge(verifier).as_bytes(), challenge.as_bytes())
            {
                Ok(())
            } else {
                Err(invalid_grant(
                    501_481,
                    "The Code_Verifier does not match the code_challenge supplied in the \
                     authorization request.",
                ))
            }
        }
    }
}

/// The scopes a sign-in is granted: [`GRAPH_SCOPES`], then those of `openid`, `profile` and
/// `email` that were asked for (no `offline_access`: the emulator issues no refresh tokens).
fn granted_scope(requested: &str) -> String {
    let mut scopes: Vec<&str> = GRAPH_SCOPES.split(' ').collect();
    for oidc in ["openid", "profile", "email"] {
        if requested.split(' ').any(|scope| scope == oidc) {
            scopes.push(oidc);
        }
    }
    scopes.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_must_be_absolute_http_urls() {
        for good in [
            "http://127.0.0.1:8787/cdn-cgi/access/callback",
            "https://app.example.com/cb?x=1",
            "HTTPS://app.example.com",
        ] {
            assert!(check_redirect_uri(good).is_ok(), "{good}");
        }
        for bad in [
            "/cdn-cgi/access/callback",
            "ftp://example.com/cb",
            "javascript://alert(1)",
            "http:///path",
            "http://user@example.com/cb",
            "https://example.com/cb#fragment",
            "https://example.com/c b",
            "",
        ] {
            assert!(check_redirect_uri(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn pkce_follows_rfc_7636() {
        // RFC 7636 appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert_eq!(pkce_challenge(verifier), challenge);
        assert!(check_pkce(Some(challenge), Some(verifier)).is_ok());
        assert!(check_pkce(Some(challenge), Some("x".repeat(43).as_str())).is_err());
        assert!(check_pkce(Some(challenge), None).is_err());
        assert!(check_pkce(None, Some(verifier)).is_err());
        assert!(check_pkce(None, None).is_ok());
    }

    #[test]
    fn granted_scopes_start_with_graph() {
        assert_eq!(
            granted_scope("openid offline_access email https://graph.microsoft.com/.default"),
            "User.Read GroupMember.Read.All openid email"
        );
    }
}

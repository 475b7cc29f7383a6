//! The emulator's browser sign-in and Microsoft Graph over HTTP: the authorization code flow
//! with and without PKCE, every way a sign-in or a code redemption is refused, the ID token
//! (signature, nonce, groups or overage), and Graph's membership endpoints (paging, auth,
//! faults), and the client credentials grant whose app-only token reads any user's groups.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics; it reports on stderr"
)]

use std::collections::HashSet;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::urlencoded;
use entra_emulator::{
    pkce_challenge, Emulator, EmulatorError, Fault, TokenRequest, GRAPH_AUDIENCE,
    SERVICE_PRINCIPAL_ID,
};
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

/// Where the emulator sends the browser back; nothing listens there (the tests read the
/// redirect instead of following it).
const REDIRECT_URI: &str = "http://127.0.0.1:9/cdn-cgi/access/callback";

/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// A table of refusal cases in `emulator/cases/` (each file says what its cases mean).
#[derive(Deserialize)]
struct Cases<T> {
    cases: Vec<T>,
}

fn cases<T: DeserializeOwned>(json: &str) -> Vec<T> {
    serde_json::from_str::<Cases<T>>(json).unwrap().cases
}

/// `cases/authorize_refusals.json`.
#[derive(Deserialize)]
struct AuthorizeRefusal {
    what: String,
    params: Vec<(String, Option<String>)>,
    #[serde(default)]
    append: String,
    #[serde(default)]
    tenant: Option<String>,
    code: String,
}

/// `cases/token_refusals.json`.
#[derive(Deserialize)]
struct TokenRefusal {
    what: String,
    fields: Vec<(String, String)>,
    error: String,
}

/// `cases/client_credentials_scope_refusals.json`.
#[derive(Deserialize)]
struct ScopeRefusal {
    scope: String,
    code: String,
}

fn emulator() -> Emulator {
    Emulator::start(Fixtures::load_default().unwrap()).unwrap()
}

fn http() -> HttpClient {
    HttpClient::new()
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The header and claims of `token` once its RS256 signature checks out against the key of
/// `jwks` named by the header's `kid`.
fn verify(token: &str, jwks: &Value) -> Result<(Value, Value), String> {
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3, "{token}");
    let header = decode(parts[0]);
    let kid = header["kid"].as_str().ok_or("no kid")?;
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .ok_or_else(|| format!("kid `{kid}` not in the JWKS"))?;
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let hashed = Sha256::digest(format!("{}.{}", parts[0], parts[1]).as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &signature)
        .map_err(|error| format!("bad signature: {error}"))?;
    Ok((header, decode(parts[1])))
}

fn now() -> i64 {
    i64::try_from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
    .unwrap()
}

/// The JWKS the v2 discovery document names.
fn discovered_jwks(emulator: &Emulator) -> Value {
    let discovery = http()
        .get(&format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            emulator.url(),
            emulator.tenant_id()
        ))
        .unwrap()
        .json()
        .unwrap();
    http()
        .get(discovery["jwks_uri"].as_str().unwrap())
        .unwrap()
        .json()
        .unwrap()
}

/// Signs in as `user` and returns the code, checking the redirect carries `state`.
fn sign_in_code(emulator: &Emulator, user: &str, challenge: Option<&str>) -> String {
    let url = emulator.authorize_url(REDIRECT_URI, "state-1", "nonce-1", challenge);
    let location = emulator.sign_in(&url, user).unwrap();
    let (base, _) = location.split_once('?').unwrap();
    assert_eq!(base, REDIRECT_URI);
    let query = urlencoded::query_pairs(&location).unwrap();
    assert_eq!(urlencoded::value(&query, "state"), Some("state-1"));
    urlencoded::value(&query, "code").unwrap().to_owned()
}

/// `POST` the v2 token endpoint with `fields` (and extra headers).
fn token_request(
    emulator: &Emulator,
    fields: &[(&str, &str)],
    headers: &[(&str, &str)],
) -> HttpResponse {
    http()
        .post_form(&emulator.token_endpoint(), fields, headers)
        .unwrap()
}

/// A complete code redemption with the client secret in the body.
fn redeem(emulator: &Emulator, code: &str, verifier: Option<&str>) -> HttpResponse {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", emulator.client_id()),
        ("client_secret", emulator.client_secret()),
    ];
    if let Some(verifier) = verifier {
        fields.push(("code_verifier", verifier));
    }
    token_request(emulator, &fields, &[])
}

/// Asserts an OAuth error answer and returns its description.
fn assert_oauth_error(response: &HttpResponse, status: u16, error: &str) -> String {
    assert_eq!(response.status, status, "{}", response.body);
    let body = response.json().unwrap();
    assert_eq!(body["error"], error, "{body}");
    assert_eq!(response.header("cache-control"), Some("no-store"));
    body["error_description"].as_str().unwrap().to_owned()
}

/// Signs in and redeems: the token response body.
fn tokens_for(emulator: &Emulator, user: &str) -> Value {
    let code = sign_in_code(emulator, user, None);
    let response = redeem(emulator, &code, None);
    assert_eq!(response.status, 200, "{}", response.body);
    response.json().unwrap()
}

fn graph_get(emulator: &Emulator, path: &str, token: &str) -> HttpResponse {
    let url = if path.starts_with("http") {
        path.to_owned()
    } else {
        format!("{}/v1.0{path}", emulator.graph_url())
    };
    http()
        .get_with(&url, &[("authorization", &format!("Bearer {token}"))])
        .unwrap()
}

fn graph_post(emulator: &Emulator, path: &str, token: &str, body: &Value) -> HttpResponse {
    http()
        .request(
            "POST",
            &format!("{}/v1.0{path}", emulator.graph_url()),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
            &serde_json::to_vec(body).unwrap(),
        )
        .unwrap()
}

/// Asserts a Graph error answer and returns its message.
fn assert_graph_error(response: &HttpResponse, status: u16, code: &str) -> String {
    assert_eq!(response.status, status, "{}", response.body);
    let body = response.json().unwrap();
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(body["error"]["innerError"]["request-id"].is_string());
    body["error"]["message"].as_str().unwrap().to_owned()
}

fn ids(value: &Value) -> Vec<String> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|id| id.as_str().unwrap().to_owned())
        .collect()
}

fn transitive(emulator: &Emulator, user: &str) -> Vec<String> {
    let fixtures = emulator.fixtures();
    fixtures.transitive_groups(fixtures.user(user).unwrap())
}

#[test]
fn the_code_flow_without_pkce_gives_a_verifiable_id_token_with_the_nonce() {
    let emulator = emulator();
    let code = sign_in_code(&emulator, "ada", None);
    assert!(URL_SAFE_NO_PAD.decode(&code).unwrap().len() >= 16, "{code}");
    assert_eq!(emulator.codes_issued(), 1);

    let response = redeem(&emulator, &code, None);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let body = response.json().unwrap();
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(
        body["scope"],
        "User.Read GroupMember.Read.All openid profile email"
    );
    assert_eq!(emulator.codes_redeemed(), 1);

    let jwks = discovered_jwks(&emulator);
    let (header, claims) = verify(body["id_token"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(
        header,
        json!({ "typ": "JWT", "alg": "RS256", "kid": emulator.signing_kid() })
    );
    let fixtures = emulator.fixtures();
    let ada = fixtures.user("ada").unwrap();
    assert_eq!(claims["aud"], emulator.client_id());
    assert_eq!(claims["iss"], emulator.v2_issuer());
    assert_eq!(claims["tid"], emulator.tenant_id());
    assert_eq!(claims["oid"], ada.oid);
    assert_eq!(claims["sub"].as_str().unwrap().len(), 43);
    assert_eq!(claims["name"], "Ada Lovelace");
    // The `email` scope brings the mail (not the UPN); v2 ID tokens carry no `amr`.
    assert_eq!(claims["email"], "ada.lovelace@example.net");
    assert_eq!(claims["preferred_username"], "ada@example.com");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["ver"], "2.0");
    assert!(claims.get("amr").is_none());
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() <= 5);
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"], iat + 3600);
    assert_eq!(claims["groups"], json!(transitive(&emulator, "ada")));
    assert!(claims.get("scp").is_none());

    // The access token is for Graph, signed the same way.
    let (header, access) = verify(body["access_token"].as_str().unwrap(), &jwks).unwrap();
    assert_eq!(header["kid"], emulator.signing_kid());
    assert_eq!(access["aud"], GRAPH_AUDIENCE);
    assert_eq!(access["oid"], ada.oid);
    assert_eq!(access["tid"], emulator.tenant_id());
    assert!(access["scp"]
        .as_str()
        .unwrap()
        .contains("User.Read GroupMember.Read.All"));
    assert!(access["exp"].as_i64().unwrap() > now());
}

#[test]
fn the_code_flow_with_pkce_and_http_basic_authentication() {
    let emulator = emulator();
    let challenge = pkce_challenge(VERIFIER);
    assert_eq!(challenge, "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
    let url = emulator.authorize_url(REDIRECT_URI, "s", "n", Some(&challenge));
    let query = urlencoded::query_pairs(&url).unwrap();
    assert_eq!(
        urlencoded::value(&query, "code_challenge"),
        Some(challenge.as_str())
    );
    assert_eq!(
        urlencoded::value(&query, "code_challenge_method"),
        Some("S256")
    );
    assert!(urlencoded::value(
        &urlencoded::query_pairs(&emulator.authorize_url(REDIRECT_URI, "s", "n", None)).unwrap(),
        "code_challenge_method"
    )
    .is_none());

    let code = sign_in_code(&emulator, "grace", Some(&challenge));
    // RFC 6749 §2.3.1: id and secret form-encoded, then base64.
    let basic = STANDARD.encode(format!(
        "{}:{}",
        urlencoded::encode(emulator.client_id()),
        urlencoded::encode(emulator.client_secret())
    ));
    let response = token_request(
        &emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT_URI),
            ("code_verifier", VERIFIER),
        ],
        &[("authorization", &format!("Basic {basic}"))],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json().unwrap();
    let (_, claims) = verify(body["id_token"].as_str().unwrap(), &emulator.jwks()).unwrap();
    assert_eq!(claims["preferred_username"], "grace@example.com");
    assert_eq!(claims["nonce"], "nonce-1");
    assert_eq!(claims["groups"], json!(transitive(&emulator, "grace")));
}

#[test]
fn the_sign_in_page_lists_every_user_and_carries_the_request() {
    let emulator = emulator();
    // A state with every character that needs escaping comes back verbatim.
    let state = "a&b=c \"<x>\" 'y' é/?#%+";
    let url = emulator.authorize_url(REDIRECT_URI, state, "n", None)
        + "&prompt=login&login_hint=ada%40example.com";
    let page = http().get(&url).unwrap();
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert_eq!(page.header("cache-control"), Some("no-store"));
    let action = format!("/{}/oauth2/v2.0/authorize", emulator.tenant_id());
    assert!(
        page.body.contains(&format!(
            "<form method=\"post\" action=\"{action}\" id=\"sign-in\">"
        )),
        "{}",
        page.body
    );
    for user in &emulator.fixtures().users {
        let button = format!(
            "<button type=\"submit\" name=\"user\" value=\"{0}\" id=\"user-{0}\">{1}",
            user.key, user.name
        );
        assert!(page.body.contains(&button), "{button}");
    }
    assert!(page
        .body
        .contains("<input type=\"hidden\" name=\"state\" value=\"a&amp;b=c &quot;&lt;x&gt;&quot; &#39;y&#39; é/?#%+\">"));
    assert!(page.body.contains("name=\"prompt\" value=\"login\""));
    assert!(page.body.contains("id=\"cancel\""));
    assert!(!page.body.contains(emulator.client_secret()));

    let location = emulator.sign_in(&url, "mallory").unwrap();
    let query = urlencoded::query_pairs(&location).unwrap();
    assert_eq!(urlencoded::value(&query, "state"), Some(state));

    // The v1 path and the `organizations` alias serve the same page, posting back to
    // themselves; a redirect URI with a query keeps it.
    for tenant in [emulator.tenant_id().to_owned(), "organizations".to_owned()] {
        let url = format!(
            "{}/{tenant}/oauth2/authorize?{}",
            emulator.url(),
            urlencoded::encode_pairs(&[
                ("client_id", emulator.client_id()),
                ("response_type", "code"),
                ("redirect_uri", "https://app.example.com/cb?app=1"),
                ("scope", "openid"),
            ])
        );
        let page = http().get(&url).unwrap();
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(page
            .body
            .contains(&format!("action=\"/{tenant}/oauth2/authorize\"")));
        let location = emulator.sign_in(&url, "bob").unwrap();
        assert!(
            location.starts_with("https://app.example.com/cb?app=1&code="),
            "{location}"
        );
        // No state asked, none given.
        assert!(!location.contains("state="), "{location}");
    }
}

#[test]
fn every_sign_in_page_request_s_prompt_is_recorded() {
    let emulator = emulator();
    let url = emulator.authorize_url(REDIRECT_URI, "s", "n", None);
    for prompt in ["select_account", "none", "login"] {
        let answer = http().get(&format!("{url}&prompt={prompt}")).unwrap();
        assert!(matches!(answer.status, 200 | 302), "{answer:?}");
    }
    assert_eq!(http().get(&url).unwrap().status, 200);
    // An unknown prompt is an error page, and no sign-in page was asked for.
    assert_eq!(
        http().get(&format!("{url}&prompt=bogus")).unwrap().status,
        400
    );
    assert_eq!(
        emulator.authorize_prompts(),
        [
            Some("select_account".to_owned()),
            Some("none".to_owned()),
            Some("login".to_owned()),
            None
        ]
    );
}

#[test]
fn the_v1_token_endpoint_issues_a_v1_id_token() {
    let emulator = emulator();
    let code = sign_in_code(&emulator, "grace", None);
    let response = http()
        .post_form(
            &format!("{}/{}/oauth2/token", emulator.url(), emulator.tenant_id()),
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", emulator.client_id()),
                ("client_secret", emulator.client_secret()),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let body = response.json().unwrap();
    let (header, claims) = verify(body["id_token"].as_str().unwrap(), &emulator.jwks()).unwrap();
    assert_eq!(header["x5t"], header["kid"]);
    assert_eq!(claims["iss"], emulator.v1_issuer());
    assert_eq!(claims["aud"], emulator.client_id());
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["upn"], "grace@example.com");
    assert_eq!(claims["unique_name"], "grace@example.com");
    assert_eq!(claims["nonce"], "nonce-1");
}

#[test]
fn authorize_errors_are_error_pages_that_never_redirect() {
    let emulator = emulator();
    let client_id = emulator.client_id().to_owned();
    let base = emulator.authorize_endpoint();
    let url = |pairs: &[(&str, &str)]| format!("{base}?{}", urlencoded::encode_pairs(pairs));
    let good = |params: &[(String, Option<String>)]| {
        let mut pairs: Vec<(&str, &str)> = vec![
            ("client_id", client_id.as_str()),
            ("response_type", "code"),
            ("redirect_uri", REDIRECT_URI),
            ("scope", "openid profile"),
            ("state", "s"),
        ];
        for (name, value) in params {
            pairs.retain(|(candidate, _)| *candidate != name.as_str());
            if let Some(value) = value {
                pairs.push((name, value));
            }
        }
        url(&pairs)
    };
    let cases: Vec<AuthorizeRefusal> = cases(include_str!("../cases/authorize_refusals.json"));
    assert!(!cases.is_empty());
    for case in cases {
        let mut url = good(&case.params) + &case.append;
        if let Some(tenant) = &case.tenant {
            url = url.replace(emulator.tenant_id(), tenant);
        }
        let (what, code) = (case.what.as_str(), case.code.as_str());
        let response = http().get(&url).unwrap();
        assert_eq!(response.status, 400, "{what}: {}", response.body);
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8"),
            "{what}"
        );
        assert!(response.header("location").is_none(), "{what}");
        assert!(response.body.contains(code), "{what}: {}", response.body);
        assert!(!response.body.contains("id=\"user-ada\""), "{what}");
        // The helper reports the page's text.
        match emulator.sign_in(&url, "ada") {
            Err(EmulatorError::SignIn(message)) => assert!(message.contains(code), "{message}"),
            other => panic!("{what}: {other:?}"),
        }
    }
    assert_eq!(emulator.codes_issued(), 0);
}

#[test]
fn the_form_is_checked_again_and_cancel_reports_access_denied() {
    let emulator = emulator();
    let post = |fields: &[(&str, &str)]| {
        http()
            .post_form(&emulator.authorize_endpoint(), fields, &[])
            .unwrap()
    };
    let mut fields = vec![
        ("client_id", emulator.client_id()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("scope", "openid"),
        ("state", "st"),
    ];

    // A tampered client id, an unknown user, no user: error pages.
    let mut tampered = fields.clone();
    tampered[0] = ("client_id", "11111111-2222-3333-4444-555555555555");
    tampered.push(("user", "ada"));
    let response = post(&tampered);
    assert_eq!(response.status, 400);
    assert!(response.body.contains("AADSTS700016"));
    assert!(response.header("location").is_none());

    let mut unknown = fields.clone();
    unknown.push(("user", "eve"));
    let response = post(&unknown);
    assert_eq!(response.status, 400);
    assert!(response.body.contains("AADSTS50034"), "{}", response.body);
    let response = post(&fields);
    assert_eq!(response.status, 400);
    assert!(response.body.contains("AADSTS900144"));

    // Cancel goes back to the (validated) redirect URI with access_denied and the state.
    fields.push(("cancel", "access_denied"));
    let response = post(&fields);
    assert_eq!(response.status, 302);
    let location = response.header("location").unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}?error=access_denied&")),
        "{location}"
    );
    let query = urlencoded::query_pairs(location).unwrap();
    assert_eq!(urlencoded::value(&query, "state"), Some("st"));
    assert!(urlencoded::value(&query, "code").is_none());
    assert_eq!(emulator.codes_issued(), 0);

    // The helper: no button for the user, nothing listening.
    let url = emulator.authorize_url(REDIRECT_URI, "s", "n", None);
    assert!(matches!(
        emulator.sign_in(&url, "eve"),
        Err(EmulatorError::UnknownUser(user)) if user == "eve"
    ));
    assert!(matches!(
        emulator.sign_in("http://127.0.0.1:9/authorize", "ada"),
        Err(EmulatorError::Http(_))
    ));
}

#[test]
fn codes_are_single_use() {
    let emulator = emulator();
    let code = sign_in_code(&emulator, "ada", None);
    assert_eq!(redeem(&emulator, &code, None).status, 200);
    let description = assert_oauth_error(&redeem(&emulator, &code, None), 400, "invalid_grant");
    assert!(description.starts_with("AADSTS54005"), "{description}");
    assert_eq!(emulator.codes_redeemed(), 1);

    // Two sign-ins, two different codes.
    let first = sign_in_code(&emulator, "ada", None);
    let second = sign_in_code(&emulator, "ada", None);
    assert_ne!(first, second);
    // An unknown code.
    let description = assert_oauth_error(
        &redeem(&emulator, "bm90LWEtY29kZQ", None),
        400,
        "invalid_grant",
    );
    assert!(description.starts_with("AADSTS70000"), "{description}");
}

#[test]
fn a_failed_redemption_uses_the_code_up() {
    let emulator = emulator();
    let challenge = pkce_challenge(VERIFIER);

    // A wrong verifier fails, and then the right one fails too.
    let code = sign_in_code(&emulator, "ada", Some(&challenge));
    let wrong = "x".repeat(43);
    let description = assert_oauth_error(
        &redeem(&emulator, &code, Some(&wrong)),
        400,
        "invalid_grant",
    );
    assert!(description.starts_with("AADSTS501481"), "{description}");
    let description = assert_oauth_error(
        &redeem(&emulator, &code, Some(VERIFIER)),
        400,
        "invalid_grant",
    );
    assert!(description.starts_with("AADSTS54005"), "{description}");

    // A wrong redirect URI fails, and then the right one fails too.
    let code = sign_in_code(&emulator, "ada", None);
    let response = token_request(
        &emulator,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            (
                "redirect_uri",
                "http://127.0.0.1:9/cdn-cgi/access/callback/",
            ),
            ("client_id", emulator.client_id()),
            ("client_secret", emulator.client_secret()),
        ],
        &[],
    );
    let description = assert_oauth_error(&response, 400, "invalid_grant");
    assert!(description.contains("redirect_uri"), "{description}");
    assert_oauth_error(&redeem(&emulator, &code, None), 400, "invalid_grant");
    assert_eq!(emulator.codes_redeemed(), 0);
}

#[test]
fn pkce_is_required_exactly_when_a_challenge_was_sent() {
    let emulator = emulator();
    let challenge = pkce_challenge(VERIFIER);
    let code = sign_in_code(&emulator, "ada", Some(&challenge));
    let description = assert_oauth_error(&redeem(&emulator, &code, None), 400, "invalid_grant");
    assert!(
        description.contains("code_verifier is missing"),
        "{description}"
    );

    let code = sign_in_code(&emulator, "ada", None);
    let description = assert_oauth_error(
        &redeem(&emulator, &code, Some(VERIFIER)),
        400,
        "invalid_grant",
    );
    assert!(description.contains("no code_challenge"), "{description}");

    // A verifier too short to be one.
    let code = sign_in_code(&emulator, "ada", Some(&pkce_challenge("short")));
    assert_oauth_error(
        &redeem(&emulator, &code, Some("short")),
        400,
        "invalid_grant",
    );

    let code = sign_in_code(&emulator, "ada", Some(&challenge));
    assert_eq!(redeem(&emulator, &code, Some(VERIFIER)).status, 200);
}

/// The fields of a code redemption with `client_id` and, when given, `client_secret`.
fn code_fields<'a>(
    code: &'a str,
    client_id: &'a str,
    secret: Option<&'a str>,
) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT_URI),
        ("client_id", client_id),
    ];
    if let Some(secret) = secret {
        fields.push(("client_secret", secret));
    }
    fields
}

#[test]
fn the_client_must_authenticate_with_its_secret() {
    let emulator = emulator();
    let code = sign_in_code(&emulator, "ada", None);
    let client_id = emulator.client_id();

    let response = token_request(
        &emulator,
        &code_fields(&code, client_id, Some("wrong")),
        &[],
    );
    let description = assert_oauth_error(&response, 401, "invalid_client");
    assert!(description.starts_with("AADSTS7000215"), "{description}");
    assert!(response.header("www-authenticate").is_none());

    let response = token_request(&emulator, &code_fields(&code, client_id, None), &[]);
    let description = assert_oauth_error(&response, 401, "invalid_client");
    assert!(description.starts_with("AADSTS7000218"), "{description}");

    let unknown = "11111111-2222-3333-4444-555555555555";
    let response = token_request(&emulator, &code_fields(&code, unknown, Some("wrong")), &[]);
    let description = assert_oauth_error(&response, 401, "invalid_client");
    assert!(description.starts_with("AADSTS700016"), "{description}");

    // HTTP Basic with a wrong secret is challenged.
    let basic = format!("Basic {}", STANDARD.encode(format!("{client_id}:wrong")));
    let response = token_request(
        &emulator,
        &code_fields(&code, client_id, None),
        &[("authorization", &basic)],
    );
    assert_oauth_error(&response, 401, "invalid_client");
    assert!(response
        .header("www-authenticate")
        .unwrap()
        .starts_with("Basic"));
    // Basic and a body secret at once.
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!("{client_id}:{}", emulator.client_secret()))
    );
    let response = token_request(
        &emulator,
        &code_fields(&code, client_id, Some(emulator.client_secret())),
        &[("authorization", &basic)],
    );
    assert_oauth_error(&response, 400, "invalid_request");

    // A client that failed to authenticate did not use the code up.
    assert_eq!(redeem(&emulator, &code, None).status, 200);
}

#[test]
fn malformed_token_requests_are_refused() {
    let emulator = emulator();
    let code = sign_in_code(&emulator, "ada", None);
    let secret = emulator.client_secret();
    let id = emulator.client_id();
    let placeholders = [
        ("{client_id}", id),
        ("{client_secret}", secret),
        ("{code}", code.as_str()),
        ("{redirect_uri}", REDIRECT_URI),
    ];
    let cases: Vec<TokenRefusal> = cases(include_str!("../cases/token_refusals.json"));
    assert!(!cases.is_empty());
    for case in cases {
        let fields: Vec<(&str, &str)> = case
            .fields
            .iter()
            .map(|(name, value)| {
                let value = placeholders
                    .iter()
                    .find(|(placeholder, _)| placeholder == value)
                    .map_or(value.as_str(), |(_, own)| *own);
                (name.as_str(), value)
            })
            .collect();
        let what = &case.what;
        let response = token_request(&emulator, &fields, &[]);
        assert_eq!(response.status, 400, "{what}: {}", response.body);
        assert_eq!(
            response.json().unwrap()["error"],
            case.error.as_str(),
            "{what}"
        );
    }

    // Not a form, not a POST, not a known tenant.
    let json_body = http()
        .post_json(
            &emulator.token_endpoint(),
            &json!({ "grant_type": "authorization_code" }),
        )
        .unwrap();
    assert_oauth_error(&json_body, 400, "invalid_request");
    let get = http().get(&emulator.token_endpoint()).unwrap();
    let description = assert_oauth_error(&get, 400, "invalid_request");
    assert!(description.starts_with("AADSTS900561"), "{description}");
    let foreign = http()
        .post_form(
            &emulator
                .token_endpoint()
                .replace(emulator.tenant_id(), "contoso.example"),
            &[("grant_type", "authorization_code")],
            &[],
        )
        .unwrap();
    assert_eq!(foreign.status, 400);
    assert_eq!(foreign.json().unwrap()["error"], "invalid_tenant");

    // None of that used the code up.
    assert_eq!(redeem(&emulator, &code, None).status, 200);
}

#[test]
fn expired_codes_are_refused() {
    let emulator = emulator();
    emulator.set_code_lifetime(Duration::ZERO);
    let code = sign_in_code(&emulator, "ada", None);
    let description = assert_oauth_error(&redeem(&emulator, &code, None), 400, "invalid_grant");
    assert!(description.starts_with("AADSTS70008"), "{description}");

    emulator.set_code_lifetime(Duration::from_millis(300));
    let code = sign_in_code(&emulator, "ada", None);
    std::thread::sleep(Duration::from_millis(400));
    assert_oauth_error(&redeem(&emulator, &code, None), 400, "invalid_grant");

    emulator.set_code_lifetime(entra_emulator::CODE_LIFETIME);
    let code = sign_in_code(&emulator, "ada", None);
    assert_eq!(redeem(&emulator, &code, None).status, 200);
}

#[test]
fn id_tokens_follow_key_rotation() {
    let emulator = emulator();
    let old_graph_token = tokens_for(&emulator, "ada")["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let kid = emulator.rotate_keys(true).unwrap();
    let body = tokens_for(&emulator, "ada");
    let (header, _) = verify(
        body["id_token"].as_str().unwrap(),
        &discovered_jwks(&emulator),
    )
    .unwrap();
    assert_eq!(header["kid"], kid);
    // Graph accepts tokens of every published key, and no others.
    assert_eq!(graph_get(&emulator, "/me", &old_graph_token).status, 200);
    emulator.rotate_keys(false).unwrap();
    let message = assert_graph_error(
        &graph_get(&emulator, "/me", &old_graph_token),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(message.contains("not published"), "{message}");
}

#[test]
fn the_overage_user_gets_claim_names_and_graph_lists_her_groups() {
    let emulator = emulator();
    let body = tokens_for(&emulator, "overage");
    let (_, claims) = verify(body["id_token"].as_str().unwrap(), &emulator.jwks()).unwrap();
    let overage = emulator.fixtures().user("overage").unwrap().clone();
    assert!(claims.get("groups").is_none());
    assert_eq!(claims["_claim_names"], json!({ "groups": "src1" }));
    assert_eq!(
        claims["_claim_sources"]["src1"]["endpoint"],
        format!(
            "https://graph.windows.net/{}/users/{}/getMemberObjects",
            emulator.tenant_id(),
            overage.oid
        )
    );

    let token = body["access_token"].as_str().unwrap();
    let all = transitive(&emulator, "overage");
    assert_eq!(all.len(), 212);
    let engineering = emulator
        .fixtures()
        .group_id("Engineering")
        .unwrap()
        .to_owned();
    let program_19 = emulator
        .fixtures()
        .group_id("Program 19")
        .unwrap()
        .to_owned();
    assert!(
        !overage.groups.contains(&engineering),
        "only through nesting"
    );
    for path in [
        "/me/getMemberObjects".to_owned(),
        format!("/users/{}/getMemberObjects", overage.oid),
    ] {
        let response = graph_post(
            &emulator,
            &path,
            token,
            &json!({ "securityEnabledOnly": false }),
        );
        assert_eq!(response.status, 200, "{}", response.body);
        let value = ids(&response.json().unwrap()["value"]);
        assert_eq!(value, all);
        assert!(value.contains(&engineering));
    }
    // Program 19 is a Microsoft 365 group, not a security group.
    let response = graph_post(
        &emulator,
        "/me/getMemberObjects",
        token,
        &json!({ "securityEnabledOnly": true }),
    );
    let security = ids(&response.json().unwrap()["value"]);
    assert_eq!(security.len(), 211);
    assert!(!security.contains(&program_19));
    assert!(security.contains(&engineering));
    let response = graph_post(
        &emulator,
        "/me/getMemberGroups",
        token,
        &json!({ "securityEnabledOnly": true }),
    );
    assert_eq!(ids(&response.json().unwrap()["value"]), security);
    // The parameter is required.
    let response = graph_post(&emulator, "/me/getMemberObjects", token, &json!({}));
    assert_graph_error(&response, 400, "Request_BadRequest");
}

#[test]
fn graph_paging_returns_every_group_exactly_once() {
    let emulator = emulator();
    let token = emulator.graph_token("overage").unwrap();
    let all = transitive(&emulator, "overage");
    let oid = emulator.fixtures().user("overage").unwrap().oid.clone();

    for (top, path) in [
        (50, format!("/users/{oid}/transitiveMemberOf?$top=50")),
        (100, "/me/transitiveMemberOf".to_owned()),
        (
            7,
            "/me/transitiveMemberOf/microsoft.graph.group?%24top=7".to_owned(),
        ),
    ] {
        let mut next = Some(path);
        let mut seen = Vec::new();
        let mut pages = 0;
        while let Some(path) = next.take() {
            let response = graph_get(&emulator, &path, &token);
            assert_eq!(response.status, 200, "{path}: {}", response.body);
            let page = response.json().unwrap();
            let value = page["value"].as_array().unwrap();
            assert!(value.len() <= top);
            for group in value {
                assert_eq!(group["@odata.type"], "#microsoft.graph.group");
                assert!(group["displayName"].is_string());
                seen.push(group["id"].as_str().unwrap().to_owned());
            }
            pages += 1;
            if let Some(link) = page["@odata.nextLink"].as_str() {
                assert_eq!(value.len(), top, "only the last page is short");
                assert!(
                    link.starts_with(&format!("{}/v1.0/", emulator.graph_url())),
                    "{link}"
                );
                assert!(link.contains("$skiptoken="), "{link}");
                next = Some(link.to_owned());
            }
        }
        assert_eq!(seen, all, "$top={top}");
        assert_eq!(seen.iter().collect::<HashSet<_>>().len(), all.len());
        assert_eq!(pages, all.len().div_ceil(top), "$top={top}");
    }

    // One page of up to 999, no link; $select keeps the type and the fields asked for.
    let page = graph_get(
        &emulator,
        "/me/transitiveMemberOf?$top=999&$select=id",
        &token,
    )
    .json()
    .unwrap();
    assert!(page.get("@odata.nextLink").is_none());
    assert_eq!(page["value"].as_array().unwrap().len(), 212);
    assert_eq!(
        page["value"][0],
        json!({ "@odata.type": "#microsoft.graph.group", "id": all[0] })
    );
    let program_19 = emulator.fixtures().group_id("Program 19").unwrap();
    let m365 = page["value"]
        .as_array()
        .unwrap()
        .iter()
        .position(|group| group["id"] == program_19);
    assert!(m365.is_some());
    let full = graph_get(&emulator, "/me/transitiveMemberOf?$top=999", &token)
        .json()
        .unwrap();
    let m365 = &full["value"][m365.unwrap()];
    assert_eq!(m365["securityEnabled"], false);
    assert_eq!(m365["groupTypes"], json!(["Unified"]));

    for bad in [
        "$top=0",
        "$top=1000",
        "$top=ten",
        "$skiptoken=garbage",
        "$filter=startswith(displayName,'A')",
        "$top=5&$top=6",
    ] {
        let response = graph_get(&emulator, &format!("/me/transitiveMemberOf?{bad}"), &token);
        assert_eq!(response.status, 400, "{bad}: {}", response.body);
    }
    // Another user's page token does not page this user.
    let ada = emulator.graph_token("ada").unwrap();
    let link = graph_get(&emulator, "/me/transitiveMemberOf?$top=2", &ada)
        .json()
        .unwrap()["@odata.nextLink"]
        .as_str()
        .unwrap()
        .to_owned();
    let skiptoken = urlencoded::value(&urlencoded::query_pairs(&link).unwrap(), "$skiptoken")
        .unwrap()
        .to_owned();
    let response = graph_get(
        &emulator,
        &format!("/me/transitiveMemberOf?$skiptoken={skiptoken}"),
        &token,
    );
    assert_graph_error(&response, 400, "Request_BadRequest");

    // Small users: one page.
    let page = graph_get(
        &emulator,
        "/me/transitiveMemberOf",
        &emulator.graph_token("dora").unwrap(),
    )
    .json()
    .unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 5);
    let page = graph_get(
        &emulator,
        "/me/transitiveMemberOf",
        &emulator.graph_token("bob").unwrap(),
    )
    .json()
    .unwrap();
    assert_eq!(page["value"], json!([]));
}

#[test]
fn graph_requires_a_graph_token_for_the_user_it_reads() {
    let emulator = emulator();
    let url = format!("{}/v1.0/me/transitiveMemberOf", emulator.graph_url());
    let ada = emulator.fixtures().user("ada").unwrap().clone();
    let grace = emulator.fixtures().user("grace").unwrap().clone();

    // No token, another scheme, not a JWT.
    let response = http().get(&url).unwrap();
    assert_graph_error(&response, 401, "InvalidAuthenticationToken");
    assert!(response
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    let response = http()
        .get_with(
            &url,
            &[(
                "authorization",
                &format!("Basic {}", STANDARD.encode("a:b")),
            )],
        )
        .unwrap();
    assert_graph_error(&response, 401, "InvalidAuthenticationToken");
    assert_graph_error(
        &graph_get(&emulator, "/me", "not.a.jwt"),
        401,
        "InvalidAuthenticationToken",
    );

    // Tokens that are not Graph tokens, or no longer valid.
    let body = tokens_for(&emulator, "ada");
    let id_token = body["id_token"].as_str().unwrap();
    let message = assert_graph_error(
        &graph_get(&emulator, "/me", id_token),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(message.contains("audience"), "{message}");
    let api_token = emulator.mint(&TokenRequest::v2("ada")).unwrap();
    assert_graph_error(
        &graph_get(&emulator, "/me", &api_token),
        401,
        "InvalidAuthenticationToken",
    );
    let graph_like = |request: TokenRequest| {
        emulator
            .mint(
                &request
                    .with_audience(GRAPH_AUDIENCE)
                    .with_claim("scp", "User.Read"),
            )
            .unwrap()
    };
    let expired = graph_like(TokenRequest::v1("ada").with_issued_at_offset_secs(-7200));
    let message = assert_graph_error(
        &graph_get(&emulator, "/me", &expired),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(message.contains("expired"), "{message}");
    let unpublished = graph_like(TokenRequest::v1("ada").signed_with_unpublished_key());
    assert_graph_error(
        &graph_get(&emulator, "/me", &unpublished),
        401,
        "InvalidAuthenticationToken",
    );
    let forged = graph_like(
        TokenRequest::v1("ada")
            .signed_with_unpublished_key()
            .with_kid(&emulator.signing_kid()),
    );
    let message = assert_graph_error(
        &graph_get(&emulator, "/me", &forged),
        401,
        "InvalidAuthenticationToken",
    );
    assert!(message.contains("signature"), "{message}");
    let hs256 = graph_like(TokenRequest::v1("ada").with_header("alg", "HS256"));
    assert_graph_error(
        &graph_get(&emulator, "/me", &hs256),
        401,
        "InvalidAuthenticationToken",
    );

    // A Graph token without a scope that reads users.
    let no_scope = emulator
        .mint(
            &TokenRequest::v1("ada")
                .with_audience(GRAPH_AUDIENCE)
                .with_claim("scp", "Mail.Read"),
        )
        .unwrap();
    assert_graph_error(
        &graph_get(&emulator, "/me", &no_scope),
        403,
        "Authorization_RequestDenied",
    );

    // Minted Graph-audience tokens work like the token endpoint's, v1 or v2.
    let minted = graph_like(TokenRequest::v2("ada"));
    assert_eq!(graph_get(&emulator, "/me", &minted).status, 200);

    // Only oneself: me, one's object id (any case) or UPN.
    let token = body["access_token"].as_str().unwrap();
    let me = graph_get(&emulator, "/me", token);
    assert_eq!(me.status, 200);
    assert_eq!(me.json().unwrap()["id"], ada.oid);
    for own in [ada.oid.to_uppercase(), ada.upn.clone()] {
        let response = graph_get(
            &emulator,
            &format!("/users/{own}/transitiveMemberOf"),
            token,
        );
        assert_eq!(response.status, 200, "{own}: {}", response.body);
    }
    for other in [
        grace.oid.clone(),
        "00000000-0000-0000-0000-000000000000".to_owned(),
    ] {
        let response = graph_get(
            &emulator,
            &format!("/users/{other}/transitiveMemberOf"),
            token,
        );
        assert_graph_error(&response, 403, "Authorization_RequestDenied");
        let response = graph_post(
            &emulator,
            &format!("/users/{other}/getMemberObjects"),
            token,
            &json!({ "securityEnabledOnly": false }),
        );
        assert_graph_error(&response, 403, "Authorization_RequestDenied");
    }
    // Unknown paths and methods.
    assert_graph_error(
        &graph_get(&emulator, "/groups", token),
        400,
        "Request_BadRequest",
    );
    let response = graph_get(&emulator, "/me/getMemberObjects", token);
    assert_eq!(response.status, 405);
}

#[test]
fn graph_faults_and_the_call_counter() {
    let emulator = emulator();
    let token = emulator.graph_token("ada").unwrap();
    assert_eq!(emulator.graph_calls(), 0);
    assert_eq!(
        graph_get(&emulator, "/me/transitiveMemberOf", &token).status,
        200
    );
    assert_eq!(
        http()
            .get(&format!("{}/v1.0/me", emulator.graph_url()))
            .unwrap()
            .status,
        401
    );
    assert_eq!(emulator.graph_calls(), 2);

    emulator.set_graph_fault(Fault::Error500);
    assert_eq!(emulator.graph_fault(), Fault::Error500);
    assert_graph_error(
        &graph_get(&emulator, "/me/transitiveMemberOf", &token),
        500,
        "generalException",
    );
    emulator.set_graph_fault(Fault::Throttled);
    let response = graph_get(&emulator, "/me/transitiveMemberOf", &token);
    assert_graph_error(&response, 429, "TooManyRequests");
    assert_eq!(response.header("retry-after"), Some("1"));
    emulator.set_graph_fault(Fault::InvalidJson);
    let response = graph_get(&emulator, "/me/transitiveMemberOf", &token);
    assert_eq!(response.status, 200);
    assert!(response.json().is_err());
    emulator.set_graph_fault(Fault::Slow(Duration::from_millis(300)));
    let started = Instant::now();
    assert_eq!(
        graph_get(&emulator, "/me/transitiveMemberOf", &token).status,
        200
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    // Graph faults leave the JWKS alone.
    assert_eq!(http().get(&emulator.v2_jwks_url()).unwrap().status, 200);

    // Over the admin API too; stats count the calls.
    let admin = |body: Value| {
        http()
            .post_json(&format!("{}/_admin/fault", emulator.url()), &body)
            .unwrap()
    };
    let response = admin(json!({ "graph": "none" }));
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(
        response.json().unwrap(),
        json!({ "jwks": "none", "discovery": "none", "graph": "none" })
    );
    assert_eq!(emulator.graph_fault(), Fault::None);
    assert_eq!(admin(json!({ "graph": "error500" })).status, 200);
    assert_eq!(emulator.graph_fault(), Fault::Error500);
    assert_eq!(emulator.jwks_fault(), Fault::None);
    assert_eq!(admin(json!({ "graph": "bogus" })).status, 400);
    assert_eq!(admin(json!({})).status, 400);
    emulator.set_graph_fault(Fault::None);
    let stats = http()
        .get(&format!("{}/_admin/stats", emulator.url()))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["graph_calls"], emulator.graph_calls());
    // The two above and the four faults; admin calls are not Graph calls.
    assert_eq!(emulator.graph_calls(), 6);
}

#[test]
fn direct_claims_and_users_without_groups_through_the_code_flow() {
    let emulator = emulator();
    let fixtures = emulator.fixtures().clone();
    let body = tokens_for(&emulator, "dora");
    let (_, claims) = verify(body["id_token"].as_str().unwrap(), &emulator.jwks()).unwrap();
    assert_eq!(
        claims["groups"],
        json!([fixtures.group_id("On-call").unwrap()])
    );
    // Graph knows better: her nested groups.
    let response = graph_post(
        &emulator,
        "/me/getMemberObjects",
        body["access_token"].as_str().unwrap(),
        &json!({ "securityEnabledOnly": false }),
    );
    assert_eq!(
        ids(&response.json().unwrap()["value"]),
        transitive(&emulator, "dora")
    );

    let body = tokens_for(&emulator, "bob");
    let (_, claims) = verify(body["id_token"].as_str().unwrap(), &emulator.jwks()).unwrap();
    assert!(claims.get("groups").is_none());
    assert!(claims.get("_claim_names").is_none());
    let response = graph_post(
        &emulator,
        "/me/getMemberObjects",
        body["access_token"].as_str().unwrap(),
        &json!({ "securityEnabledOnly": true }),
    );
    assert_eq!(response.json().unwrap()["value"], json!([]));
}

#[test]
fn discovery_names_the_sign_in_endpoints_and_s256() {
    let emulator = emulator();
    let discovery = http()
        .get(&format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            emulator.url(),
            emulator.tenant_id()
        ))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        discovery["authorization_endpoint"],
        emulator.authorize_endpoint()
    );
    assert_eq!(discovery["token_endpoint"], emulator.token_endpoint());
    assert_eq!(
        discovery["code_challenge_methods_supported"],
        json!(["S256"])
    );
}

/// The Graph `/.default` scope of the client credentials grant.
const GRAPH_DEFAULT: &str = "https://graph.microsoft.com/.default";

/// A client credentials request to the v2 token endpoint with the secret in the body.
fn client_credentials(emulator: &Emulator, secret: &str, scope: &str) -> HttpResponse {
    token_request(
        emulator,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", emulator.client_id()),
            ("client_secret", secret),
            ("scope", scope),
        ],
        &[],
    )
}

/// The app-only Graph token of a successful client credentials request.
fn app_token(emulator: &Emulator) -> String {
    let response = client_credentials(emulator, emulator.client_secret(), GRAPH_DEFAULT);
    assert_eq!(response.status, 200, "{}", response.body);
    response.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Every group id of `path`'s `transitiveMemberOf` pages, following `@odata.nextLink`.
fn all_pages(emulator: &Emulator, path: &str, token: &str) -> Vec<String> {
    let mut next = Some(path.to_owned());
    let mut seen = Vec::new();
    while let Some(path) = next.take() {
        let response = graph_get(emulator, &path, token);
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        let page = response.json().unwrap();
        for group in page["value"].as_array().unwrap() {
            seen.push(group["id"].as_str().unwrap().to_owned());
        }
        next = page["@odata.nextLink"].as_str().map(str::to_owned);
    }
    seen
}

#[test]
fn the_client_credentials_grant_issues_an_app_only_graph_token() {
    let emulator = emulator();
    assert_eq!(emulator.client_credentials_issued(), 0);
    let started = now();
    let response = client_credentials(&emulator, emulator.client_secret(), GRAPH_DEFAULT);
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.header("cache-control"), Some("no-store"));
    let body = response.json().unwrap();
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        ["access_token", "expires_in", "ext_expires_in", "token_type"]
    );
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["expires_in"], 3599);
    assert_eq!(body["ext_expires_in"], 3599);

    let (header, claims) = verify(
        body["access_token"].as_str().unwrap(),
        &discovered_jwks(&emulator),
    )
    .unwrap();
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["kid"], emulator.signing_kid());
    assert_eq!(claims["aud"], GRAPH_AUDIENCE);
    assert_eq!(claims["iss"], emulator.v1_issuer());
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", emulator.tenant_id())
    );
    assert_eq!(claims["tid"], emulator.tenant_id());
    assert_eq!(claims["appid"], emulator.client_id());
    assert_eq!(claims["oid"], SERVICE_PRINCIPAL_ID);
    assert_eq!(claims["sub"], SERVICE_PRINCIPAL_ID);
    assert_eq!(claims["idtyp"], "app");
    // The application permissions the fixtures' registration was granted.
    assert_eq!(
        claims["roles"],
        json!(["User.ReadBasic.All", "GroupMember.Read.All"])
    );
    assert_eq!(claims["ver"], "1.0");
    for delegated in ["scp", "upn", "name", "groups", "_claim_names", "nonce"] {
        assert!(claims.get(delegated).is_none(), "{delegated}: {claims}");
    }
    let iat = claims["iat"].as_i64().unwrap();
    assert!((started - 5..=now() + 5).contains(&iat), "{claims}");
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 3600);
    assert_eq!(emulator.client_credentials_issued(), 1);

    // Graph's application id as the resource, HTTP Basic, and the v1 endpoint (`resource`).
    let basic = format!(
        "Basic {}",
        STANDARD.encode(format!(
            "{}:{}",
            emulator.client_id(),
            emulator.client_secret()
        ))
    );
    let response = token_request(
        &emulator,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "00000003-0000-0000-c000-000000000000/.default"),
        ],
        &[("authorization", &basic)],
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let v1_endpoint = emulator.token_endpoint().replace("/v2.0/token", "/token");
    for (name, value) in [("resource", GRAPH_AUDIENCE), ("scope", GRAPH_DEFAULT)] {
        let response = http()
            .post_form(
                &v1_endpoint,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", emulator.client_id()),
                    ("client_secret", emulator.client_secret()),
                    (name, value),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(response.status, 200, "{name}: {}", response.body);
        let token = response.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (_, claims) = verify(&token, &emulator.jwks()).unwrap();
        assert_eq!(claims["idtyp"], "app");
    }
    assert_eq!(emulator.client_credentials_issued(), 4);
    // No code was involved; the stats count the grant too.
    assert_eq!(emulator.codes_issued(), 0);
    assert_eq!(emulator.codes_redeemed(), 0);
    let stats = http()
        .get(&format!("{}/_admin/stats", emulator.url()))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(stats["client_credentials_issued"], 4);

    // After a rotation, the new key signs.
    let kid = emulator.rotate_keys(true).unwrap();
    let (header, _) = verify(&app_token(&emulator), &emulator.jwks()).unwrap();
    assert_eq!(header["kid"], kid);
}

#[test]
fn the_client_credentials_grant_checks_the_client_and_the_scope() {
    let emulator = emulator();
    let secret = emulator.client_secret();

    let description = assert_oauth_error(
        &client_credentials(&emulator, "wrong", GRAPH_DEFAULT),
        401,
        "invalid_client",
    );
    assert!(description.starts_with("AADSTS7000215"), "{description}");
    let response = token_request(
        &emulator,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", emulator.client_id()),
            ("scope", GRAPH_DEFAULT),
        ],
        &[],
    );
    let description = assert_oauth_error(&response, 401, "invalid_client");
    assert!(description.starts_with("AADSTS7000218"), "{description}");
    let response = token_request(
        &emulator,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", "11111111-2222-3333-4444-555555555555"),
            ("client_secret", secret),
            ("scope", GRAPH_DEFAULT),
        ],
        &[],
    );
    let description = assert_oauth_error(&response, 401, "invalid_client");
    assert!(description.starts_with("AADSTS700016"), "{description}");

    // Only Graph's /.default: delegated scopes, other resources, several scopes.
    let cases: Vec<ScopeRefusal> = cases(include_str!(
        "../cases/client_credentials_scope_refusals.json"
    ));
    assert!(!cases.is_empty());
    for ScopeRefusal { scope, code } in cases {
        let description = assert_oauth_error(
            &client_credentials(&emulator, secret, &scope),
            400,
            "invalid_scope",
        );
        assert!(description.starts_with(&code), "{scope}: {description}");
    }
    // `resource` belongs to the v1 endpoint.
    let response = token_request(
        &emulator,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", emulator.client_id()),
            ("client_secret", secret),
            ("resource", GRAPH_AUDIENCE),
        ],
        &[],
    );
    let description = assert_oauth_error(&response, 400, "invalid_request");
    assert!(description.starts_with("AADSTS901002"), "{description}");
    // A wrong secret is refused before a wrong scope is looked at.
    assert_oauth_error(
        &client_credentials(&emulator, "wrong", "User.Read"),
        401,
        "invalid_client",
    );

    // Other grants are still refused.
    for grant in [
        "refresh_token",
        "password",
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
    ] {
        let response = token_request(
            &emulator,
            &[
                ("grant_type", grant),
                ("client_id", emulator.client_id()),
                ("client_secret", secret),
                ("scope", GRAPH_DEFAULT),
            ],
            &[],
        );
        let description = assert_oauth_error(&response, 400, "unsupported_grant_type");
        assert!(
            description.starts_with("AADSTS70003"),
            "{grant}: {description}"
        );
    }
    assert_eq!(emulator.client_credentials_issued(), 0);
}

#[test]
fn graph_with_an_app_token_reads_any_users_groups() {
    let emulator = emulator();
    let overage = emulator.fixtures().user("overage").unwrap().clone();
    let ada = emulator.fixtures().user("ada").unwrap().clone();
    let all = transitive(&emulator, "overage");
    assert_eq!(all.len(), 212);

    // What the delegated path answers for the overage user…
    let delegated = tokens_for(&emulator, "overage");
    let delegated = delegated["access_token"].as_str().unwrap();
    let answer = |path: &str, token: &str, security_only: bool| {
        let response = graph_post(
            &emulator,
            path,
            token,
            &json!({ "securityEnabledOnly": security_only }),
        );
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        ids(&response.json().unwrap()["value"])
    };
    let own = answer("/me/getMemberObjects", delegated, false);
    let own_security = answer("/me/getMemberObjects", delegated, true);
    assert_eq!(own, all);
    assert_eq!(own_security.len(), 211);
    assert_eq!(emulator.graph_member_lookups(), 2);

    // …the application reads by object id (any case) or UPN.
    let token = app_token(&emulator);
    for id in [
        overage.oid.clone(),
        overage.oid.to_uppercase(),
        overage.upn.clone(),
    ] {
        assert_eq!(
            answer(&format!("/users/{id}/getMemberObjects"), &token, false),
            own,
            "{id}"
        );
        assert_eq!(
            answer(&format!("/users/{id}/getMemberGroups"), &token, true),
            own_security,
            "{id}"
        );
    }
    assert_eq!(emulator.graph_member_lookups(), 8);
    assert_eq!(
        all_pages(
            &emulator,
            &format!("/users/{}/transitiveMemberOf?$top=100", overage.upn),
            &token
        ),
        all
    );
    // Three pages of 100, 100 and 12.
    assert_eq!(emulator.graph_member_lookups(), 11);
    let profile = graph_get(&emulator, &format!("/users/{}", overage.oid), &token);
    assert_eq!(profile.status, 200, "{}", profile.body);
    assert_eq!(profile.json().unwrap()["userPrincipalName"], overage.upn);
    // Any user, not only the overage one.
    assert_eq!(
        answer(
            &format!("/users/{}/getMemberObjects", ada.upn),
            &token,
            false
        ),
        transitive(&emulator, "ada")
    );
    assert_eq!(emulator.graph_member_lookups(), 12);

    // No /me for an application.
    for path in ["/me", "/me/transitiveMemberOf"] {
        let message = assert_graph_error(&graph_get(&emulator, path, &token), 400, "BadRequest");
        assert_eq!(
            message,
            "/me request is only valid with delegated authentication flow."
        );
    }
    let response = graph_post(
        &emulator,
        "/me/getMemberObjects",
        &token,
        &json!({ "securityEnabledOnly": false }),
    );
    assert_graph_error(&response, 400, "BadRequest");

    // Unknown users are 404.
    for unknown in ["00000000-0000-0000-0000-000000000000", "nobody@example.com"] {
        let response = graph_post(
            &emulator,
            &format!("/users/{unknown}/getMemberObjects"),
            &token,
            &json!({ "securityEnabledOnly": false }),
        );
        let message = assert_graph_error(&response, 404, "Request_ResourceNotFound");
        assert_eq!(
            message,
            format!(
                "Resource '{unknown}' does not exist or one of its queried reference-property \
                 objects are not present."
            )
        );
        assert_graph_error(
            &graph_get(
                &emulator,
                &format!("/users/{unknown}/transitiveMemberOf"),
                &token,
            ),
            404,
            "Request_ResourceNotFound",
        );
    }

    // An app token needs a role that reads users; the other two read-all roles do.
    let without = emulator.graph_app_token(&["Mail.Read"]).unwrap();
    let no_roles = emulator.graph_app_token(&[]).unwrap();
    for token in [&without, &no_roles] {
        let response = graph_post(
            &emulator,
            &format!("/users/{}/getMemberObjects", overage.oid),
            token,
            &json!({ "securityEnabledOnly": false }),
        );
        assert_graph_error(&response, 403, "Authorization_RequestDenied");
        assert_graph_error(
            &graph_get(&emulator, "/me", token),
            403,
            "Authorization_RequestDenied",
        );
    }
    // `GroupMember.Read.All` alone reads no other user's memberships (Microsoft's
    // permissions table of getMemberObjects): it needs `User.ReadBasic.All` beside it.
    for roles in [&["GroupMember.Read.All"][..], &["User.ReadBasic.All"][..]] {
        let token = emulator.graph_app_token(roles).unwrap();
        let response = graph_post(
            &emulator,
            &format!("/users/{}/getMemberObjects", overage.oid),
            &token,
            &json!({ "securityEnabledOnly": false }),
        );
        assert_graph_error(&response, 403, "Authorization_RequestDenied");
    }
    // `User.ReadBasic.All` reads another user's profile, `GroupMember.Read.All` alone not.
    let basic = emulator.graph_app_token(&["User.ReadBasic.All"]).unwrap();
    let profile = graph_get(&emulator, &format!("/users/{}", overage.oid), &basic);
    assert_eq!(profile.status, 200, "{}", profile.body);
    let members_only = emulator.graph_app_token(&["GroupMember.Read.All"]).unwrap();
    assert_graph_error(
        &graph_get(&emulator, &format!("/users/{}", overage.oid), &members_only),
        403,
        "Authorization_RequestDenied",
    );
    for roles in [
        &["Directory.Read.All"][..],
        &["User.Read.All"][..],
        &["User.ReadBasic.All", "GroupMember.Read.All"][..],
    ] {
        let token = emulator
            .graph_app_token(&[&["Mail.Read"][..], roles].concat())
            .unwrap();
        assert_eq!(
            answer(
                &format!("/users/{}/getMemberObjects", overage.oid),
                &token,
                false
            ),
            all,
            "{roles:?}"
        );
    }
    // Refused membership requests count too (two /me, four unknown, two without the role,
    // two with half of the pair, three with enough), profile reads do not; so does a faulted
    // one.
    assert_eq!(emulator.graph_member_lookups(), 25);
    emulator.set_graph_fault(Fault::Error500);
    let response = graph_post(
        &emulator,
        &format!("/users/{}/getMemberObjects", overage.oid),
        &token,
        &json!({ "securityEnabledOnly": false }),
    );
    assert_graph_error(&response, 500, "generalException");
    emulator.set_graph_fault(Fault::None);
    assert_eq!(emulator.graph_member_lookups(), 26);

    // A delegated token still reads only its own user.
    let response = graph_post(
        &emulator,
        &format!("/users/{}/getMemberObjects", ada.oid),
        delegated,
        &json!({ "securityEnabledOnly": false }),
    );
    assert_graph_error(&response, 403, "Authorization_RequestDenied");
}

#[test]
fn the_client_credentials_grant_issues_app_only_tokens_for_the_gateway_api() {
    // Entra issues an app-only token for a web API to any client of the tenant that asks,
    // whether or not the API grants it a role: here the gateway's own registration asks for
    // its own API, by application id URI or by client id.
    let emulator = emulator();
    let secret = emulator.client_secret().to_owned();
    let api_uri = format!("api://{}", emulator.client_id());
    let by_client_id = format!("{}/.default", emulator.client_id());
    for (scope, audience) in [
        (format!("{api_uri}/.default"), api_uri.clone()),
        (by_client_id, emulator.client_id().to_owned()),
    ] {
        let response = client_credentials(&emulator, &secret, &scope);
        assert_eq!(response.status, 200, "{scope}: {}", response.body);
        let token = response.json().unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned();
        let (header, claims) = verify(&token, &emulator.jwks()).unwrap();
        assert_eq!(header["kid"], emulator.signing_kid());
        assert_eq!(claims["aud"], audience.as_str());
        assert_eq!(claims["ver"], "1.0");
        assert_eq!(
            claims["iss"],
            format!("https://sts.windows.net/{}/", emulator.tenant_id())
        );
        assert_eq!(claims["appid"], emulator.client_id());
        assert_eq!(claims["oid"], SERVICE_PRINCIPAL_ID);
        assert_eq!(claims["sub"], SERVICE_PRINCIPAL_ID);
        // No role was granted, no `scp` (no user), and `idtyp` is an optional claim the
        // gateway's registration does not ask for.
        for absent in ["roles", "scp", "idtyp", "upn", "email", "name"] {
            assert!(claims.get(absent).is_none(), "{absent} in {claims}");
        }
    }
    // The v1 endpoint takes the API as `resource`.
    let response = http()
        .post_form(
            &format!("{}/{}/oauth2/token", emulator.url(), emulator.tenant_id()),
            &[
                ("grant_type", "client_credentials"),
                ("client_id", emulator.client_id()),
                ("client_secret", &secret),
                ("resource", &api_uri),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    let token = response.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, claims) = verify(&token, &emulator.jwks()).unwrap();
    assert_eq!(claims["aud"], api_uri.as_str());
    assert_eq!(emulator.client_credentials_issued(), 3);
}

//! The emulator against Microsoft's claims, protocol and Graph references, one test per row
//! of the reference table in `tests/README.md`: which claims v1 and v2, ID and access tokens
//! carry, optional claims, group claim formats, registered redirect URIs, silent sign-in
//! errors, Graph's permissions and cloud, and app-specific signing keys.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::{
    Cloud, Fixtures, GroupMembershipClaims, OptionalClaim, OptionalClaims,
};
use entra_emulator::urlencoded;
use entra_emulator::{Emulator, SilentError, TokenRequest};
use serde_json::{json, Value};

/// A registered redirect URI (loopback: any port).
const REDIRECT_URI: &str = "http://127.0.0.1:9/cdn-cgi/access/callback";

fn fixtures() -> Fixtures {
    Fixtures::load_default().unwrap()
}

fn http() -> HttpClient {
    HttpClient::new()
}

fn claims_of(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn header_of(token: &str) -> Value {
    let header = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

fn optional(name: &str, properties: &[&str]) -> OptionalClaim {
    serde_json::from_value(json!({ "name": name, "additionalProperties": properties })).unwrap()
}

/// An authorize URL of endpoint `version` (1: `/oauth2/authorize`, 2: `/oauth2/v2.0/…`).
fn authorize_url(emulator: &Emulator, version: u8, scope: &str, extra: &[(&str, &str)]) -> String {
    let path = if version == 1 {
        "oauth2"
    } else {
        "oauth2/v2.0"
    };
    let mut pairs = vec![
        ("client_id", emulator.client_id()),
        ("response_type", "code"),
        ("redirect_uri", REDIRECT_URI),
        ("response_mode", "query"),
        ("scope", scope),
        ("state", "state-1"),
        ("nonce", "nonce-1"),
    ];
    pairs.extend_from_slice(extra);
    format!(
        "{}/{}/{path}/authorize?{}",
        emulator.url(),
        emulator.tenant_id(),
        urlencoded::encode_pairs(&pairs)
    )
}

/// Signs in as `user` through endpoint `version` asking for `scope`: the token response.
fn sign_in(emulator: &Emulator, version: u8, user: &str, scope: &str) -> Value {
    let location = emulator
        .sign_in(&authorize_url(emulator, version, scope, &[]), user)
        .unwrap();
    let query = urlencoded::query_pairs(&location).unwrap();
    let code = urlencoded::value(&query, "code").unwrap();
    let path = if version == 1 {
        "oauth2"
    } else {
        "oauth2/v2.0"
    };
    let response = http()
        .post_form(
            &format!("{}/{}/{path}/token", emulator.url(), emulator.tenant_id()),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", emulator.client_id()),
                ("client_secret", emulator.client_secret()),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(response.status, 200, "{}", response.body);
    response.json().unwrap()
}

/// The ID token's claims for `user` through endpoint `version`.
fn id_token(emulator: &Emulator, version: u8, user: &str) -> Value {
    let tokens = sign_in(emulator, version, user, "openid profile email");
    claims_of(tokens["id_token"].as_str().unwrap())
}

/// An access token's claims for the gateway's API.
fn access_token(emulator: &Emulator, request: &TokenRequest) -> Value {
    claims_of(&emulator.mint(request).unwrap())
}

#[test]
fn amr_is_in_v1_tokens_only() {
    let emulator = Emulator::start(fixtures()).unwrap();
    assert_eq!(id_token(&emulator, 1, "ada")["amr"], json!(["pwd", "mfa"]));
    assert!(id_token(&emulator, 2, "ada").get("amr").is_none());
    assert_eq!(
        access_token(&emulator, &TokenRequest::v1("ada"))["amr"],
        json!(["pwd", "mfa"])
    );
    assert!(access_token(&emulator, &TokenRequest::v2("ada"))
        .get("amr")
        .is_none());
}

#[test]
fn upn_and_unique_name_are_v1_claims_and_upn_is_optional_in_v2() {
    let emulator = Emulator::start(fixtures()).unwrap();
    for claims in [
        id_token(&emulator, 1, "ada"),
        access_token(&emulator, &TokenRequest::v1("ada")),
    ] {
        assert_eq!(claims["upn"], "ada@example.com");
        assert_eq!(claims["unique_name"], "ada@example.com");
        assert!(claims.get("preferred_username").is_none());
    }
    for claims in [
        id_token(&emulator, 2, "ada"),
        access_token(&emulator, &TokenRequest::v2("ada")),
    ] {
        assert!(claims.get("upn").is_none(), "{claims}");
        assert!(claims.get("unique_name").is_none(), "{claims}");
    }
    // The `upn` optional claim puts it in v2 tokens; guests need
    // `include_externally_authenticated_upn`.
    let mut with_upn = fixtures();
    with_upn.optional_claims = OptionalClaims {
        id_token: vec![optional("upn", &[])],
        access_token: vec![optional("upn", &[])],
    };
    let emulator = Emulator::start(with_upn).unwrap();
    assert_eq!(id_token(&emulator, 2, "ada")["upn"], "ada@example.com");
    assert_eq!(
        access_token(&emulator, &TokenRequest::v2("ada"))["upn"],
        "ada@example.com"
    );
    assert!(id_token(&emulator, 2, "mallory").get("upn").is_none());
    assert!(id_token(&emulator, 1, "mallory").get("upn").is_none());
}

#[test]
fn preferred_username_is_v2_only_and_needs_the_profile_scope() {
    let emulator = Emulator::start(fixtures()).unwrap();
    assert_eq!(
        id_token(&emulator, 2, "ada")["preferred_username"],
        "ada@example.com"
    );
    assert_eq!(
        access_token(&emulator, &TokenRequest::v2("ada"))["preferred_username"],
        "ada@example.com"
    );
    assert!(id_token(&emulator, 1, "ada")
        .get("preferred_username")
        .is_none());
    // A guest's is their sign-in address, not the `#EXT#` UPN.
    assert_eq!(
        id_token(&emulator, 2, "mallory")["preferred_username"],
        "mallory@contractor.example"
    );
    // Without `profile`, a v2 ID token has no `oid`, `name` or `preferred_username`.
    let tokens = sign_in(&emulator, 2, "ada", "openid");
    let claims = claims_of(tokens["id_token"].as_str().unwrap());
    for absent in ["oid", "name", "preferred_username"] {
        assert!(claims.get(absent).is_none(), "{absent}: {claims}");
    }
}

#[test]
fn email_is_optional_for_members_default_for_guests_and_absent_without_mail() {
    let emulator = Emulator::start(fixtures()).unwrap();
    // Members: not in access tokens nor v1 ID tokens by default; v2 ID tokens with the
    // `email` scope carry the mail, which is not the UPN.
    assert!(access_token(&emulator, &TokenRequest::v1("ada"))
        .get("email")
        .is_none());
    assert!(access_token(&emulator, &TokenRequest::v2("ada"))
        .get("email")
        .is_none());
    assert!(id_token(&emulator, 1, "ada").get("email").is_none());
    assert_eq!(
        id_token(&emulator, 2, "ada")["email"],
        "ada.lovelace@example.net"
    );
    let tokens = sign_in(&emulator, 2, "ada", "openid profile");
    assert!(claims_of(tokens["id_token"].as_str().unwrap())
        .get("email")
        .is_none());
    // Guests get it by default, in every token.
    for claims in [
        id_token(&emulator, 1, "mallory"),
        access_token(&emulator, &TokenRequest::v1("mallory")),
        access_token(&emulator, &TokenRequest::v2("mallory")),
    ] {
        assert_eq!(claims["email"], "mallory@contractor.example");
    }
    // The optional claim puts it in access tokens, except for users without a mail.
    let mut with_email = fixtures();
    with_email.optional_claims.access_token = vec![optional("email", &[])];
    with_email
        .users
        .iter_mut()
        .find(|u| u.key == "bob")
        .unwrap()
        .mail = None;
    let emulator = Emulator::start(with_email).unwrap();
    assert_eq!(
        access_token(&emulator, &TokenRequest::v1("ada"))["email"],
        "ada.lovelace@example.net"
    );
    for claims in [
        access_token(&emulator, &TokenRequest::v1("bob")),
        id_token(&emulator, 2, "bob"),
    ] {
        assert!(claims.get("email").is_none(), "{claims}");
    }
}

#[test]
fn groups_are_emitted_only_when_the_registration_asks_for_them() {
    let mut none = fixtures();
    none.group_membership_claims = None;
    let emulator = Emulator::start(none).unwrap();
    for claims in [
        id_token(&emulator, 2, "ada"),
        access_token(&emulator, &TokenRequest::v1("ada")),
        // Not even the overage claims.
        access_token(&emulator, &TokenRequest::v2("overage")),
    ] {
        for absent in ["groups", "_claim_names", "_claim_sources", "hasgroups"] {
            assert!(claims.get(absent).is_none(), "{absent}: {claims}");
        }
    }
    let emulator = Emulator::start(fixtures()).unwrap();
    let fixtures = emulator.fixtures();
    let ada = fixtures.user("ada").unwrap();
    assert_eq!(
        fixtures.group_membership_claims,
        Some(GroupMembershipClaims::SecurityGroup)
    );
    assert_eq!(
        id_token(&emulator, 2, "ada")["groups"],
        json!(fixtures.transitive_groups(ada))
    );
    // Over 200 groups: the overage claims instead.
    let overage = access_token(&emulator, &TokenRequest::v2("overage"));
    assert!(overage.get("groups").is_none());
    assert_eq!(overage["_claim_names"], json!({ "groups": "src1" }));
}

#[test]
fn group_claims_can_carry_on_premises_names_or_come_as_roles() {
    let mut names = fixtures();
    names.optional_claims.access_token = vec![optional("groups", &["sam_account_name"])];
    names.optional_claims.id_token = vec![optional(
        "groups",
        &["netbios_domain_and_sam_account_name", "emit_as_roles"],
    )];
    let emulator = Emulator::start(names).unwrap();
    // Only groups synchronized from Active Directory, by their on-premises name.
    let access = access_token(&emulator, &TokenRequest::v1("ada"));
    assert_eq!(
        access["groups"],
        json!(["backend", "engineering", "all-staff"])
    );
    // `emit_as_roles`: in `roles`, and no `groups`.
    let id = id_token(&emulator, 2, "ada");
    assert!(id.get("groups").is_none(), "{id}");
    assert_eq!(
        id["roles"],
        json!(["CORP\\backend", "CORP\\engineering", "CORP\\all-staff"])
    );
}

#[test]
fn idtyp_is_only_an_optional_claim_of_the_apps_tokens() {
    let emulator = Emulator::start(fixtures()).unwrap();
    for claims in [
        access_token(&emulator, &TokenRequest::v1("ada")),
        access_token(&emulator, &TokenRequest::v2("ada")),
        id_token(&emulator, 2, "ada"),
    ] {
        assert!(claims.get("idtyp").is_none(), "{claims}");
    }
    let mut asked = fixtures();
    asked.optional_claims.access_token = vec![optional("idtyp", &["include_user_token"])];
    let emulator = Emulator::start(asked).unwrap();
    assert_eq!(
        access_token(&emulator, &TokenRequest::v2("ada"))["idtyp"],
        "user"
    );
}

#[test]
fn v1_audiences_are_the_application_id_uri_asked_for() {
    let emulator = Emulator::start(fixtures()).unwrap();
    let secret = emulator.client_secret().to_owned();
    let v1_token = format!("{}/{}/oauth2/token", emulator.url(), emulator.tenant_id());
    for resource in [
        "https://api.example.com/edge",
        "https://api.example.com/edge/",
        "api://2c63888f-28f0-4481-be6d-dce7a7ace732",
    ] {
        let response = http()
            .post_form(
                &v1_token,
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", emulator.client_id()),
                    ("client_secret", &secret),
                    ("resource", resource),
                ],
                &[],
            )
            .unwrap();
        assert_eq!(response.status, 200, "{resource}: {}", response.body);
        let claims = claims_of(response.json().unwrap()["access_token"].as_str().unwrap());
        assert_eq!(claims["aud"], resource);
    }
    let response = http()
        .post_form(
            &v1_token,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", emulator.client_id()),
                ("client_secret", &secret),
                ("resource", "https://api.example.com/other"),
            ],
            &[],
        )
        .unwrap();
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.body.contains("AADSTS500011"), "{}", response.body);
}

/// The 400 error page of a refused authorize request.
fn refused(response: &HttpResponse, code: &str) {
    assert_eq!(response.status, 400, "{}", response.body);
    assert!(response.header("location").is_none());
    assert!(response.body.contains(code), "{}", response.body);
}

#[test]
fn redirect_uris_must_be_registered() {
    let emulator = Emulator::start(fixtures()).unwrap();
    let page = |redirect_uri: &str| {
        let url = authorize_url(&emulator, 2, "openid", &[]).replace(
            &urlencoded::encode(REDIRECT_URI),
            &urlencoded::encode(redirect_uri),
        );
        http().get(&url).unwrap()
    };
    // Registered ones (a loopback one on any port).
    for registered in [
        REDIRECT_URI,
        "http://localhost:8787/cdn-cgi/access/callback",
        "https://app.example.com/cb?app=1",
    ] {
        assert_eq!(page(registered).status, 200, "{registered}");
    }
    for unregistered in [
        "https://evil.example/cdn-cgi/access/callback",
        "https://app.example.com/cb",
        "https://APP.example.com/cb?app=1",
        "https://app.example.com/cb?app=2",
        "http://127.0.0.1:9/cdn-cgi/access/callback/",
        "http://127.0.0.2/cdn-cgi/access/callback",
    ] {
        refused(&page(unregistered), "AADSTS50011");
    }
}

#[test]
fn silent_sign_in_answers_login_required_then_signs_in_with_a_session() {
    let emulator = Emulator::start(fixtures()).unwrap();
    let silent = authorize_url(&emulator, 2, "openid", &[("prompt", "none")]);
    let error_of = |response: &HttpResponse| {
        assert_eq!(response.status, 302, "{}", response.body);
        let location = response.header("location").unwrap();
        assert!(location.starts_with(REDIRECT_URI), "{location}");
        let query = urlencoded::query_pairs(location).unwrap();
        assert_eq!(urlencoded::value(&query, "state"), Some("state-1"));
        (
            urlencoded::value(&query, "error").map(str::to_owned),
            urlencoded::value(&query, "error_description").map(str::to_owned),
            urlencoded::value(&query, "code").map(str::to_owned),
        )
    };
    // Nobody signed in: never a page, a redirect with `login_required`.
    let (error, description, code) = error_of(&http().get(&silent).unwrap());
    assert_eq!(error.as_deref(), Some("login_required"));
    assert!(description.unwrap().starts_with("AADSTS50058"));
    assert!(code.is_none());
    // A browser that signed in once (its session cookie) signs in silently.
    let (_, session) = emulator
        .sign_in_with_session(&authorize_url(&emulator, 2, "openid", &[]), "ada")
        .unwrap();
    let session = session.unwrap();
    let with_session = http().get_with(&silent, &[("cookie", &session)]).unwrap();
    let (error, _, code) = error_of(&with_session);
    assert_eq!(error, None);
    assert!(code.is_some());
    // A Conditional Access policy that wants the user: `interaction_required`.
    emulator.set_silent_sign_in_error(Some(SilentError::InteractionRequired));
    let with_session = http().get_with(&silent, &[("cookie", &session)]).unwrap();
    let (error, description, code) = error_of(&with_session);
    assert_eq!(error.as_deref(), Some("interaction_required"));
    assert!(description.unwrap().starts_with("AADSTS50076"));
    assert!(code.is_none());
}

#[test]
fn graph_is_the_one_of_the_tenants_cloud() {
    let mut us = fixtures();
    us.cloud = Cloud::UsGovernment;
    let emulator = Emulator::start(us).unwrap();
    let secret = emulator.client_secret().to_owned();
    let client_credentials = |scope: &str| {
        http()
            .post_form(
                &emulator.token_endpoint(),
                &[
                    ("grant_type", "client_credentials"),
                    ("client_id", emulator.client_id()),
                    ("client_secret", &secret),
                    ("scope", scope),
                ],
                &[],
            )
            .unwrap()
    };
    let answer = client_credentials("https://graph.microsoft.us/.default");
    assert_eq!(answer.status, 200, "{}", answer.body);
    let token = answer.json().unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(claims_of(&token)["aud"], "https://graph.microsoft.us");
    let graph = http()
        .request(
            "POST",
            &format!(
                "{}/v1.0/users/{}/getMemberObjects",
                emulator.graph_url(),
                emulator.fixtures().user("ada").unwrap().oid
            ),
            &[
                ("authorization", &format!("Bearer {token}")),
                ("content-type", "application/json"),
            ],
            br#"{"securityEnabledOnly":true}"#,
        )
        .unwrap();
    assert_eq!(graph.status, 200, "{}", graph.body);
    // The global Graph is unknown in that cloud.
    let global = client_credentials("https://graph.microsoft.com/.default");
    assert_eq!(global.status, 400, "{}", global.body);
    assert!(global.body.contains("AADSTS500011"), "{}", global.body);
}

#[test]
fn an_app_with_its_own_signing_key_publishes_it_only_with_appid() {
    let mut own = fixtures();
    own.app_signing_key = true;
    let emulator = Emulator::start(own).unwrap();
    let token = emulator.mint(&TokenRequest::v2("ada")).unwrap();
    let kid = header_of(&token)["kid"].as_str().unwrap().to_owned();
    assert_ne!(kid, emulator.signing_kid());
    let kids = |url: &str| -> Vec<String> {
        http().get(url).unwrap().json().unwrap()["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|key| key["kid"].as_str().unwrap().to_owned())
            .collect()
    };
    for jwks in [emulator.v1_jwks_url(), emulator.v2_jwks_url()] {
        assert!(!kids(&jwks).contains(&kid), "{jwks}");
        let with_appid = format!("{jwks}?appid={}", emulator.client_id());
        assert!(kids(&with_appid).contains(&kid), "{with_appid}");
        let other_app = format!("{jwks}?appid=00000000-0000-0000-0000-000000000001");
        assert!(!kids(&other_app).contains(&kid), "{other_app}");
    }
    // Discovery with `?appid=` names the JWKS with it.
    let discovery: Value = http()
        .get(&format!(
            "{}/{}/v2.0/.well-known/openid-configuration?appid={}",
            emulator.url(),
            emulator.tenant_id(),
            emulator.client_id()
        ))
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(
        discovery["jwks_uri"],
        format!("{}?appid={}", emulator.v2_jwks_url(), emulator.client_id())
    );
    // ID tokens are signed by it too; Graph's tokens are not.
    let tokens = sign_in(&emulator, 2, "ada", "openid profile");
    assert_eq!(header_of(tokens["id_token"].as_str().unwrap())["kid"], kid);
    assert_eq!(
        header_of(tokens["access_token"].as_str().unwrap())["kid"],
        emulator.signing_kid()
    );
}

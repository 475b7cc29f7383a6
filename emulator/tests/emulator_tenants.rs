//! The partner tenant the emulator serves beside the fixture tenant: its own discovery,
//! signing keys, app registration, users and groups, and nothing of one tenant — a code, a
//! client secret, a token, a key — accepted at the other.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics; it reports on stderr"
)]

use std::collections::HashSet;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use entra_emulator::client::{HttpClient, HttpResponse};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::urlencoded;
use entra_emulator::{Emulator, EmulatorError, TokenRequest};
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const REDIRECT_URI: &str = "http://127.0.0.1:9/cdn-cgi/access/callback";

fn emulator() -> Emulator {
    Emulator::start(Fixtures::load_default().unwrap()).unwrap()
}

fn http() -> HttpClient {
    HttpClient::new()
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn discovery(tenant: &Emulator) -> Value {
    http()
        .get(&format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            tenant.url(),
            tenant.tenant_id()
        ))
        .unwrap()
        .json()
        .unwrap()
}

fn jwks(tenant: &Emulator) -> Value {
    http()
        .get(discovery(tenant)["jwks_uri"].as_str().unwrap())
        .unwrap()
        .json()
        .unwrap()
}

fn kids(jwks: &Value) -> HashSet<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|key| key["kid"].as_str().unwrap().to_owned())
        .collect()
}

/// Whether `token`'s RS256 signature checks out against the key of `jwks` its `kid` names.
fn verifies(token: &str, jwks: &Value) -> bool {
    let parts: Vec<&str> = token.split('.').collect();
    let kid = decode(parts[0])["kid"].as_str().unwrap().to_owned();
    let Some(jwk) = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid.as_str())
    else {
        return false;
    };
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    let e = URL_SAFE_NO_PAD.decode(jwk["e"].as_str().unwrap()).unwrap();
    let key = RsaPublicKey::new(BigUint::from_bytes_be(&n), BigUint::from_bytes_be(&e)).unwrap();
    let signature = URL_SAFE_NO_PAD.decode(parts[2]).unwrap();
    let hashed = Sha256::digest(format!("{}.{}", parts[0], parts[1]).as_bytes());
    key.verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, &signature)
        .is_ok()
}

/// Signs in at `tenant` as `user`: the code.
fn code(tenant: &Emulator, user: &str) -> String {
    let url = tenant.authorize_url(REDIRECT_URI, "state-1", "nonce-1", None);
    let location = tenant.sign_in(&url, user).unwrap();
    let query = urlencoded::query_pairs(&location).unwrap();
    urlencoded::value(&query, "code").unwrap().to_owned()
}

/// Redeems `code` at `at`'s token endpoint as `client`'s registration, with `secret`.
fn redeem(at: &Emulator, client: &Emulator, secret: &str, code: &str) -> HttpResponse {
    http()
        .post_form(
            &at.token_endpoint(),
            &[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", REDIRECT_URI),
                ("client_id", client.client_id()),
                ("client_secret", secret),
            ],
            &[],
        )
        .unwrap()
}

#[test]
fn the_partner_tenant_has_its_own_discovery_keys_and_users() {
    let emulator = emulator();
    let partner = emulator.partner().unwrap();
    assert_ne!(partner.tenant_id(), emulator.tenant_id());
    assert_ne!(partner.client_id(), emulator.client_id());
    assert_ne!(partner.client_secret(), emulator.client_secret());
    assert_eq!(partner.url(), emulator.url());
    assert!(partner.partner().is_none());

    let document = discovery(partner);
    assert_eq!(document["issuer"], partner.v2_issuer());
    assert!(document["jwks_uri"]
        .as_str()
        .unwrap()
        .contains(partner.tenant_id()));
    let (home_keys, partner_keys) = (jwks(&emulator), jwks(partner));
    assert!(kids(&home_keys).is_disjoint(&kids(&partner_keys)));

    let token = partner.mint(&TokenRequest::v2("pat")).unwrap();
    let claims = decode(token.split('.').nth(1).unwrap());
    assert_eq!(claims["tid"], partner.tenant_id());
    assert_eq!(claims["iss"], partner.v2_issuer());
    assert_eq!(claims["aud"], partner.client_id());
    assert!(verifies(&token, &partner_keys));
    assert!(!verifies(&token, &home_keys));

    // Each tenant knows its own users only.
    assert!(matches!(
        emulator.mint(&TokenRequest::v2("pat")),
        Err(EmulatorError::UnknownUser(_))
    ));
    assert!(matches!(
        partner.mint(&TokenRequest::v2("ada")),
        Err(EmulatorError::UnknownUser(_))
    ));
    let users: Value = http()
        .get(&format!("{}/_admin/users", emulator.url()))
        .unwrap()
        .json()
        .unwrap();
    assert!(!users.to_string().contains("pat@fabrikam.example"));
}

#[test]
fn the_partner_sign_in_gives_an_id_token_of_the_partner_tenant() {
    let emulator = emulator();
    let partner = emulator.partner().unwrap();
    let code = code(partner, "pat");
    let response = redeem(partner, partner, partner.client_secret(), &code);
    assert_eq!(response.status, 200, "{}", response.body);
    let id_token = response.json().unwrap()["id_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let claims = decode(id_token.split('.').nth(1).unwrap());
    assert_eq!(claims["tid"], partner.tenant_id());
    assert_eq!(claims["iss"], partner.v2_issuer());
    assert_eq!(claims["nonce"], "nonce-1");
    assert!(verifies(&id_token, &jwks(partner)));
    assert!(!verifies(&id_token, &jwks(&emulator)));
    assert_eq!(partner.codes_redeemed(), 1);
    assert_eq!(emulator.codes_redeemed(), 0);
}

#[test]
fn nothing_of_one_tenant_is_accepted_at_the_other() {
    let emulator = emulator();
    let partner = emulator.partner().unwrap();

    // The fixture tenant's registration does not exist in the partner tenant.
    let url = emulator
        .authorize_url(REDIRECT_URI, "s", "n", None)
        .replace(emulator.tenant_id(), partner.tenant_id());
    assert!(matches!(
        partner.sign_in(&url, "pat"),
        Err(EmulatorError::SignIn(_))
    ));

    // A partner code at the fixture tenant's token endpoint, with either registration.
    let partner_code = code(partner, "pat");
    for (client, secret) in [
        (partner, partner.client_secret()),
        (&emulator, emulator.client_secret()),
    ] {
        let response = redeem(&emulator, client, secret, &partner_code);
        assert!(matches!(response.status, 400 | 401), "{}", response.body);
        assert!(response.json().unwrap()["id_token"].is_null());
    }

    // The partner's code with the fixture tenant's secret.
    let partner_code = code(partner, "pat");
    let response = redeem(partner, partner, emulator.client_secret(), &partner_code);
    assert_eq!(response.status, 401, "{}", response.body);
    assert_eq!(response.json().unwrap()["error"], "invalid_client");

    // A fixture tenant's code at the partner's token endpoint.
    let home_code = code(&emulator, "ada");
    let response = redeem(partner, &emulator, emulator.client_secret(), &home_code);
    assert!(matches!(response.status, 400 | 401), "{}", response.body);
    assert_eq!(emulator.codes_redeemed() + partner.codes_redeemed(), 0);
}

#[test]
fn graph_reads_each_tenant_with_its_own_keys() {
    let emulator = emulator();
    let partner = emulator.partner().unwrap();
    let member_objects = |token: &str| {
        http()
            .request(
                "POST",
                &format!("{}/v1.0/me/getMemberObjects", emulator.graph_url()),
                &[
                    ("authorization", &format!("Bearer {token}")),
                    ("content-type", "application/json"),
                ],
                &serde_json::to_vec(&json!({"securityEnabledOnly": true})).unwrap(),
            )
            .unwrap()
    };
    let answer = member_objects(&partner.graph_token("pat").unwrap());
    assert_eq!(answer.status, 200, "{}", answer.body);
    let groups = answer.json().unwrap()["value"].clone();
    assert_eq!(groups.as_array().unwrap().len(), 2, "{groups}");
    assert!(groups
        .to_string()
        .contains(partner.fixtures().group_id("Fabrikam staff").unwrap()));
    assert_eq!(partner.graph_calls(), 1);

    // Signed by the fixture tenant's key, claiming the partner tenant.
    let forged = emulator
        .mint(
            &TokenRequest::v2("ada")
                .with_audience("https://graph.microsoft.com")
                .with_claim("tid", partner.tenant_id())
                .with_claim("iss", partner.v2_issuer())
                .with_claim("oid", partner.fixtures().user("pat").unwrap().oid.clone())
                .with_claim("scp", "User.Read"),
        )
        .unwrap();
    let answer = member_objects(&forged);
    assert_eq!(answer.status, 401, "{}", answer.body);
    assert_eq!(partner.graph_calls(), 2);
}

#[test]
fn a_partner_must_be_another_tenant() {
    let mut fixtures = Fixtures::load_default().unwrap();
    fixtures.check().unwrap();
    let home = fixtures.tenant_id.to_uppercase();
    let mut partner = fixtures.partner.clone().unwrap();
    partner.tenant_id = home;
    fixtures.partner = Some(partner.clone());
    let error = fixtures.check().unwrap_err().to_string();
    assert!(error.contains("partner.tenant_id"), "{error}");

    partner.tenant_id = "not-a-guid".into();
    fixtures.partner = Some(partner);
    let error = fixtures.check().unwrap_err().to_string();
    assert!(error.contains("partner.tenant_id"), "{error}");
}

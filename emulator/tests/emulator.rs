//! The Entra ID emulator over HTTP: discovery, JWKS that verify its tokens, the claims of
//! each token version, overage, rotation and faults.

#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics; it reports on stderr"
)]

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use entra_emulator::client::HttpClient;
use entra_emulator::fixtures::Fixtures;
use entra_emulator::{Emulator, Fault, TokenRequest};
use rsa::{BigUint, Pkcs1v15Sign, RsaPublicKey};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn emulator() -> Emulator {
    Emulator::start(Fixtures::load_default().unwrap()).unwrap()
}

fn get_json(url: &str) -> Value {
    let response = HttpClient::new().get(url).unwrap();
    assert_eq!(response.status, 200, "{url}: {}", response.body);
    response.json().unwrap()
}

fn decode(part: &str) -> Value {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

/// The header and claims of `token` once its RS256 signature checks out against the key of
/// `jwks` named by the header's `kid`; `Err` says why not.
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
    assert_eq!(jwk["kty"], "RSA");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["x5t"], jwk["kid"]);
    assert_eq!(jwk["e"], "AQAB");
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

fn group_ids(fixtures: &Fixtures, names: &[&str]) -> Vec<String> {
    names
        .iter()
        .map(|name| fixtures.group_id(name).unwrap().to_owned())
        .collect()
}

#[test]
fn discovery_documents_are_entra_like() {
    let emulator = emulator();
    let base = emulator.url();
    let tid = emulator.tenant_id();

    let v1 = get_json(&format!("{base}/{tid}/.well-known/openid-configuration"));
    assert_eq!(v1["issuer"], format!("https://sts.windows.net/{tid}/"));
    assert_eq!(v1["jwks_uri"], format!("{base}/{tid}/discovery/keys"));
    assert_eq!(
        v1["authorization_endpoint"],
        format!("{base}/{tid}/oauth2/authorize")
    );
    assert_eq!(v1["token_endpoint"], format!("{base}/{tid}/oauth2/token"));

    let v2 = get_json(&format!(
        "{base}/{tid}/v2.0/.well-known/openid-configuration"
    ));
    assert_eq!(v2["issuer"], format!("{base}/{tid}/v2.0"));
    assert_eq!(v2["jwks_uri"], format!("{base}/{tid}/discovery/v2.0/keys"));
    assert_eq!(
        v2["authorization_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/authorize")
    );
    assert_eq!(
        v2["token_endpoint"],
        format!("{base}/{tid}/oauth2/v2.0/token")
    );
    assert_eq!(
        v2["id_token_signing_alg_values_supported"],
        json!(["RS256"])
    );

    assert_eq!(emulator.discovery_fetches(), 2);
    assert_eq!(emulator.jwks_fetches(), 0);
    assert_eq!(emulator.v2_issuer(), v2["issuer"]);
    assert_eq!(emulator.v1_issuer(), v1["issuer"]);
}

#[test]
fn a_v2_token_verifies_with_the_jwks_named_by_discovery() {
    let emulator = emulator();
    let fixtures = emulator.fixtures().clone();
    let discovery = get_json(&format!(
        "{}/{}/v2.0/.well-known/openid-configuration",
        emulator.url(),
        emulator.tenant_id()
    ));
    let jwks = get_json(discovery["jwks_uri"].as_str().unwrap());
    assert_eq!(emulator.jwks_fetches(), 1);

    let token = emulator.mint(&TokenRequest::v2("ada")).unwrap();
    let (header, claims) = verify(&token, &jwks).unwrap();
    assert_eq!(
        header,
        json!({ "typ": "JWT", "alg": "RS256", "kid": emulator.signing_kid() })
    );

    let ada = fixtures.user("ada").unwrap();
    assert_eq!(claims["aud"], emulator.client_id());
    assert_eq!(claims["iss"], discovery["issuer"]);
    assert_eq!(claims["tid"], emulator.tenant_id());
    assert_eq!(claims["oid"], ada.oid);
    assert_eq!(claims["ver"], "2.0");
    assert_eq!(claims["preferred_username"], "ada@example.com");
    // `email` is an optional claim for members, which the registration does not ask for.
    assert!(claims.get("email").is_none());
    assert_eq!(claims["name"], "Ada Lovelace");
    assert_eq!(claims["azp"], emulator.client_id());
    assert_eq!(claims["scp"], "access_as_user");
    assert_eq!(claims["sub"].as_str().unwrap().len(), 43);
    assert_ne!(claims["sub"], claims["oid"]);
    for v1_only in ["upn", "unique_name", "amr", "appid"] {
        assert!(claims.get(v1_only).is_none(), "{v1_only}");
    }
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - now()).abs() <= 5);
    assert_eq!(claims["nbf"], iat);
    assert_eq!(claims["exp"], iat + 3600);
    // Nested groups are in the claim, the cycle (Rust guild <-> Language guilds) included once.
    assert_eq!(
        claims["groups"],
        json!(group_ids(
            &fixtures,
            &[
                "Backend",
                "Rust guild",
                "Engineering",
                "Language guilds",
                "All staff"
            ]
        ))
    );
}

#[test]
fn a_v1_token_names_its_key_twice_and_carries_v1_claims() {
    let emulator = emulator();
    let jwks = get_json(&emulator.v1_jwks_url());
    let token = emulator.mint(&TokenRequest::v1("grace")).unwrap();
    let (header, claims) = verify(&token, &jwks).unwrap();
    let kid = emulator.signing_kid();
    assert_eq!(
        header,
        json!({ "typ": "JWT", "alg": "RS256", "kid": kid, "x5t": kid })
    );
    assert_eq!(claims["aud"], format!("api://{}", emulator.client_id()));
    assert_eq!(
        claims["iss"],
        format!("https://sts.windows.net/{}/", emulator.tenant_id())
    );
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["upn"], "grace@example.com");
    assert_eq!(claims["unique_name"], "grace@example.com");
    assert_eq!(claims["amr"], json!(["pwd", "mfa"]));
    assert_eq!(claims["appid"], emulator.client_id());
    for v2_only in ["preferred_username", "email", "azp"] {
        assert!(claims.get(v2_only).is_none(), "{v2_only}");
    }
    let fixtures = emulator.fixtures();
    assert_eq!(
        claims["groups"],
        json!(group_ids(
            fixtures,
            &["SRE", "Platform", "Engineering", "All staff"]
        ))
    );

    // v1 tokens may also be issued for the bare client id.
    let token = emulator
        .mint(&TokenRequest::v1("grace").with_audience(emulator.client_id()))
        .unwrap();
    let (_, claims) = verify(&token, &jwks).unwrap();
    assert_eq!(claims["aud"], emulator.client_id());
    // Both JWKS paths list the same keys.
    assert_eq!(get_json(&emulator.v2_jwks_url()), jwks);
    assert_eq!(emulator.jwks_fetches(), 2);
}

#[test]
fn over_200_groups_the_token_points_to_graph_instead() {
    let emulator = emulator();
    let overage = emulator.fixtures().user("overage").unwrap().clone();
    for version in [1, 2] {
        let request = TokenRequest {
            version,
            ..TokenRequest::v2("overage")
        };
        let token = emulator.mint(&request).unwrap();
        let (_, claims) = verify(&token, &emulator.jwks()).unwrap();
        assert!(claims.get("groups").is_none());
        assert_eq!(claims["_claim_names"], json!({ "groups": "src1" }));
        assert_eq!(
            claims["_claim_sources"],
            json!({ "src1": { "endpoint": format!(
                "https://graph.windows.net/{}/users/{}/getMemberObjects",
                emulator.tenant_id(),
                overage.oid
            ) } })
        );
    }
}

#[test]
fn app_roles_assigned_to_a_user_are_in_its_access_tokens_only_when_there_are_some() {
    let mut fixtures = Fixtures::load_default().unwrap();
    let ada = fixtures.users.iter_mut().find(|u| u.key == "ada").unwrap();
    ada.app_roles = vec!["EdgeAccess.Admin".into(), "Reports.Read".into()];
    let emulator = Emulator::start(fixtures).unwrap();
    for request in [TokenRequest::v2("ada"), TokenRequest::v1("ada")] {
        let (_, ada) = verify(&emulator.mint(&request).unwrap(), &emulator.jwks()).unwrap();
        assert_eq!(
            ada["roles"],
            json!(["EdgeAccess.Admin", "Reports.Read"]),
            "{ada}"
        );
    }
    let (_, bob) = verify(
        &emulator.mint(&TokenRequest::v2("bob")).unwrap(),
        &emulator.jwks(),
    )
    .unwrap();
    assert!(bob.get("roles").is_none(), "{bob}");
}

#[test]
fn direct_claims_and_users_without_groups() {
    let emulator = emulator();
    let (_, dora) = verify(
        &emulator.mint(&TokenRequest::v2("dora")).unwrap(),
        &emulator.jwks(),
    )
    .unwrap();
    assert_eq!(
        dora["groups"],
        json!([emulator.fixtures().group_id("On-call").unwrap()])
    );
    let (_, bob) = verify(
        &emulator.mint(&TokenRequest::v2("bob")).unwrap(),
        &emulator.jwks(),
    )
    .unwrap();
    assert!(bob.get("groups").is_none());
    assert!(bob.get("_claim_names").is_none());
}

#[test]
fn requests_override_claims_times_and_the_header() {
    let emulator = emulator();
    let request = TokenRequest::v2("mallory")
        .with_audience("someone-else")
        .with_lifetime_secs(60)
        .with_issued_at_offset_secs(-600)
        .with_claim("acrs", json!(["c1"]))
        .with_claim("email", "spoofed@example.com")
        .without_claim("tid")
        .with_header("typ", "at+jwt");
    let token = emulator.mint(&request).unwrap();
    let (header, claims) = verify(&token, &emulator.jwks()).unwrap();
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(claims["aud"], "someone-else");
    assert_eq!(claims["acrs"], json!(["c1"]));
    assert_eq!(claims["email"], "spoofed@example.com");
    assert!(claims.get("tid").is_none());
    let iat = claims["iat"].as_i64().unwrap();
    assert!((iat - (now() - 600)).abs() <= 5);
    assert_eq!(claims["exp"], iat + 60);
    assert!(claims["exp"].as_i64().unwrap() < now(), "already expired");
}

#[test]
fn unpublished_keys_and_foreign_kids_do_not_verify() {
    let emulator = emulator();
    let unpublished = emulator
        .mint(&TokenRequest::v2("ada").signed_with_unpublished_key())
        .unwrap();
    let error = verify(&unpublished, &emulator.jwks()).unwrap_err();
    assert!(error.contains("not in the JWKS"), "{error}");
    // Claiming the published kid does not make its signature good.
    let lying = emulator
        .mint(
            &TokenRequest::v2("ada")
                .signed_with_unpublished_key()
                .with_kid(&emulator.signing_kid()),
        )
        .unwrap();
    let error = verify(&lying, &emulator.jwks()).unwrap_err();
    assert!(error.contains("bad signature"), "{error}");

    let unknown = emulator
        .mint(&TokenRequest::v1("ada").with_kid("not-a-kid"))
        .unwrap();
    let header = decode(unknown.split('.').next().unwrap());
    assert_eq!(header["kid"], "not-a-kid");
    assert_eq!(header["x5t"], "not-a-kid");
}

#[test]
fn rotation_keeps_or_drops_the_previous_keys() {
    let emulator = emulator();
    let first_kid = emulator.signing_kid();
    let old_token = emulator.mint(&TokenRequest::v2("ada")).unwrap();

    let second_kid = emulator.rotate_keys(true).unwrap();
    assert_ne!(first_kid, second_kid);
    assert_eq!(emulator.signing_kid(), second_kid);
    assert_eq!(
        emulator.published_kids(),
        [second_kid.clone(), first_kid.clone()]
    );
    let jwks = get_json(&emulator.v2_jwks_url());
    verify(&old_token, &jwks).unwrap();
    let (header, _) = verify(&emulator.mint(&TokenRequest::v2("ada")).unwrap(), &jwks).unwrap();
    assert_eq!(header["kid"], second_kid);
    assert!(emulator.public_jwk(&first_kid).is_some());

    let third_kid = emulator.rotate_keys(false).unwrap();
    assert_eq!(emulator.published_kids(), [third_kid]);
    assert!(emulator.public_jwk(&first_kid).is_none());
    let error = verify(&old_token, &get_json(&emulator.v1_jwks_url())).unwrap_err();
    assert!(error.contains("not in the JWKS"), "{error}");
}

#[test]
fn jwks_faults_and_the_fetch_counter() {
    let emulator = emulator();
    let client = HttpClient::new();
    let url = emulator.v2_jwks_url();

    emulator.set_jwks_fault(Fault::Error500);
    let response = client.get(&url).unwrap();
    assert_eq!(response.status, 500);
    let body = response.json().unwrap();
    assert_eq!(body["error"], "temporarily_unavailable");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS"));

    emulator.set_jwks_fault(Fault::InvalidJson);
    let response = client.get(&emulator.v1_jwks_url()).unwrap();
    assert_eq!(response.status, 200);
    assert!(response.json().is_err());

    // A slow JWKS holds up nothing else: discovery answers meanwhile.
    emulator.set_jwks_fault(Fault::Slow(Duration::from_millis(800)));
    let slow = {
        let client = client.clone();
        let url = url.clone();
        std::thread::spawn(move || {
            let started = Instant::now();
            let response = client.get(&url).unwrap();
            (response.status, started.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let started = Instant::now();
    let discovery = client
        .get(&format!(
            "{}/{}/v2.0/.well-known/openid-configuration",
            emulator.url(),
            emulator.tenant_id()
        ))
        .unwrap();
    assert_eq!(discovery.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "{:?}",
        started.elapsed()
    );
    let (status, took) = slow.join().unwrap();
    assert_eq!(status, 200);
    assert!(took >= Duration::from_millis(800), "{took:?}");

    emulator.set_jwks_fault(Fault::None);
    assert_eq!(get_json(&url), emulator.jwks());
    assert_eq!(emulator.jwks_fetches(), 4);
}

#[test]
fn unknown_tenants_get_an_entra_error() {
    let emulator = emulator();
    let client = HttpClient::new();
    for path in [
        "/contoso.example/discovery/v2.0/keys",
        "/00000000-0000-0000-0000-000000000000/discovery/keys",
        "/common2/v2.0/.well-known/openid-configuration",
    ] {
        let response = client.get(&format!("{}{path}", emulator.url())).unwrap();
        assert_eq!(response.status, 400, "{path}");
        let body = response.json().unwrap();
        assert_eq!(body["error"], "invalid_tenant");
        assert_eq!(body["error_codes"], json!([90002]));
        assert!(body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002: "));
    }
    assert_eq!(emulator.jwks_fetches(), 0);
    assert_eq!(emulator.discovery_fetches(), 0);
    // Tenant ids are GUIDs: any case.
    let upper = emulator.tenant_id().to_ascii_uppercase();
    get_json(&format!("{}/{upper}/discovery/keys", emulator.url()));
}

#[test]
fn the_admin_api_mints_rotates_and_injects_faults() {
    let emulator = emulator();
    let client = HttpClient::new();
    let admin = |path: &str, body: Value| {
        let response = client
            .post_json(&format!("{}/_admin/{path}", emulator.url()), &body)
            .unwrap();
        (response.status, response.json().unwrap())
    };

    let (status, answer) = admin("token", json!({ "user": "ada", "version": 1 }));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["token_type"], "Bearer");
    let (_, claims) = verify(answer["access_token"].as_str().unwrap(), &emulator.jwks()).unwrap();
    assert_eq!(claims["ver"], "1.0");
    assert_eq!(claims["upn"], "ada@example.com");

    let (status, answer) = admin("token", json!({ "user": "nobody" }));
    assert_eq!(status, 400);
    assert!(
        answer["error"].as_str().unwrap().contains("`nobody`"),
        "{answer}"
    );
    let (status, _) = admin("token", json!({ "user": "ada", "version": 3 }));
    assert_eq!(status, 400);
    let (status, _) = admin("token", json!({ "user": "ada", "frobnicate": true }));
    assert_eq!(status, 400);

    let (status, answer) = admin("rotate", json!({ "keep_previous": false }));
    assert_eq!(status, 200);
    assert_eq!(answer["kid"], emulator.signing_kid());

    let (status, _) = admin("fault", json!({ "jwks": "slow" }));
    assert_eq!(status, 400);
    let (status, _) = admin("fault", json!({ "jwks": "slow", "delay_ms": 1500 }));
    assert_eq!(status, 200);
    assert_eq!(
        emulator.jwks_fault(),
        Fault::Slow(Duration::from_millis(1500))
    );
    let (status, _) = admin("fault", json!({ "jwks": "error500" }));
    assert_eq!(status, 200);
    assert_eq!(client.get(&emulator.v2_jwks_url()).unwrap().status, 500);

    let stats = get_json(&format!("{}/_admin/stats", emulator.url()));
    assert_eq!(stats["jwks_fetches"], 1);
    assert_eq!(stats["discovery_fetches"], 0);
    assert_eq!(stats["signing_kid"], emulator.signing_kid());
    assert_eq!(stats["published_kids"], json!([emulator.signing_kid()]));
    assert_eq!(stats["jwks_fault"], "error500");

    let users = get_json(&format!("{}/_admin/users", emulator.url()));
    assert_eq!(users["users"][0]["key"], "ada");
}

#[test]
fn in_process_minting_rejects_unknown_users_and_versions() {
    let emulator = emulator();
    let error = emulator.mint(&TokenRequest::v2("nobody")).unwrap_err();
    assert_eq!(error.to_string(), "no fixture user `nobody`");
    let request = TokenRequest {
        version: 3,
        ..TokenRequest::v2("ada")
    };
    assert!(emulator.mint(&request).is_err());
}

#[test]
fn the_emulator_stops_when_dropped() {
    let emulator = emulator();
    let addr = emulator.addr();
    drop(emulator);
    assert!(std::net::TcpStream::connect(addr).is_err());
}

//! Every way an Entra token must be refused, and the identity an accepted one yields.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{
    identity_from_claims, Expectations, IdentityError, RsaJwk, RsaVerifier, TokenError,
    UnverifiedEntraToken, VerifiedEntraToken,
};
use policy_core::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::Sha256;
use std::sync::OnceLock;

const TID: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT: &str = "0c4b8a2e-5d6f-4a1b-9c3d-2e7f8a9b0c1d";
const NOW: u64 = 1_800_000_000;

fn key() -> &'static (RsaPrivateKey, RsaJwk) {
    static KEY: OnceLock<(RsaPrivateKey, RsaJwk)> = OnceLock::new();
    KEY.get_or_init(|| {
        let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
        let jwk = RsaJwk {
            kid: "key-1".into(),
            n: URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
            e: URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
        };
        (private, jwk)
    })
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(v.to_string())
}

fn sign(header: &Value, claims: &Value) -> String {
    let message = format!("{}.{}", b64(header), b64(claims));
    let signature = SigningKey::<Sha256>::new(key().0.clone()).sign(message.as_bytes());
    format!("{message}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn expectations() -> Expectations {
    Expectations {
        tenant_id: TID.into(),
        audiences: vec![CLIENT.into(), format!("api://{CLIENT}")],
        issuer_v1: format!("https://sts.windows.net/{TID}/"),
        issuer_v2: format!("https://login.microsoftonline.com/{TID}/v2.0"),
        leeway_secs: 60,
        nonce: None,
    }
}

fn claims(version: &str) -> Value {
    let iss = if version == "1.0" {
        format!("https://sts.windows.net/{TID}/")
    } else {
        format!("https://login.microsoftonline.com/{TID}/v2.0")
    };
    json!({ "aud": CLIENT, "iss": iss, "tid": TID, "ver": version, "iat": NOW - 10, "nbf": NOW - 10,
            "exp": NOW + 3600, "oid": "e2a1c3b4-5d6f-4789-8a9b-0c1d2e3f4a5b", "upn": "ada@example.com",
            "preferred_username": "ada@example.com", "amr": ["pwd", "mfa"],
            "groups": ["5B3E8C1A-0D6F-4A39-9C55-2F7B1E0A9D41"] })
}

fn header() -> Value {
    json!({ "typ": "JWT", "alg": "RS256", "kid": "key-1" })
}

fn verify(token: &str) -> Result<VerifiedEntraToken, TokenError> {
    verify_with(token, &expectations())
}

fn verify_with(token: &str, expected: &Expectations) -> Result<VerifiedEntraToken, TokenError> {
    let parsed = UnverifiedEntraToken::parse(token)?;
    pollster::block_on(parsed.verify(&RsaVerifier, &key().1, expected, NOW))
}

fn with(mut claims: Value, name: &str, value: Value) -> Value {
    if value.is_null() {
        claims.as_object_mut().unwrap().remove(name);
    } else {
        claims[name] = value;
    }
    claims
}

#[test]
fn valid_v1_and_v2_tokens_verify() {
    for version in ["1.0", "2.0"] {
        let token = verify(&sign(&header(), &claims(version))).unwrap();
        assert_eq!(token.version().as_str(), version);
        assert_eq!(token.claim_str("upn"), Some("ada@example.com"));
    }
    let v1_uri_audience = with(claims("1.0"), "aud", json!(format!("api://{CLIENT}")));
    assert!(verify(&sign(&header(), &v1_uri_audience)).is_ok());
    let array_audience = with(claims("2.0"), "aud", json!(["other", CLIENT]));
    assert!(verify(&sign(&header(), &array_audience)).is_ok());
}

#[test]
fn claims_are_checked() {
    let cases: Vec<(Value, TokenError)> = vec![
        (
            with(
                claims("2.0"),
                "aud",
                json!("00000003-0000-0000-c000-000000000000"),
            ),
            TokenError::Audience,
        ),
        (
            with(claims("2.0"), "aud", Value::Null),
            TokenError::Audience,
        ),
        (with(claims("2.0"), "aud", json!([])), TokenError::Audience),
        (
            with(
                claims("2.0"),
                "iss",
                json!(format!("https://sts.windows.net/{TID}/")),
            ),
            TokenError::Issuer,
        ),
        (
            with(
                claims("1.0"),
                "iss",
                json!(format!("https://login.microsoftonline.com/{TID}/v2.0")),
            ),
            TokenError::Issuer,
        ),
        (
            with(claims("2.0"), "iss", json!("https://evil.example.com/v2.0")),
            TokenError::Issuer,
        ),
        (
            with(
                claims("2.0"),
                "tid",
                json!("9188040d-6c67-4c5b-b112-36a304b66dad"),
            ),
            TokenError::Tenant,
        ),
        (with(claims("2.0"), "tid", Value::Null), TokenError::Tenant),
        (
            with(claims("2.0"), "exp", json!(NOW - 61)),
            TokenError::Expired,
        ),
        (with(claims("2.0"), "exp", Value::Null), TokenError::Expired),
        (
            with(claims("2.0"), "nbf", json!(NOW + 61)),
            TokenError::NotYetValid,
        ),
        (
            with(claims("2.0"), "iat", json!(NOW + 3600)),
            TokenError::NotYetValid,
        ),
    ];
    for (claims, expected) in cases {
        assert_eq!(
            verify(&sign(&header(), &claims)).unwrap_err(),
            expected,
            "{claims}"
        );
    }
    // Within the leeway.
    assert!(verify(&sign(
        &header(),
        &with(claims("2.0"), "exp", json!(NOW - 59))
    ))
    .is_ok());
    assert!(verify(&sign(
        &header(),
        &with(claims("2.0"), "nbf", json!(NOW + 59))
    ))
    .is_ok());
}

#[test]
fn version_must_be_known() {
    for ver in [Value::Null, json!("3.0"), json!(2)] {
        let token = sign(&header(), &with(claims("2.0"), "ver", ver));
        assert_eq!(
            UnverifiedEntraToken::parse(&token).unwrap_err(),
            TokenError::Version
        );
    }
}

#[test]
fn algorithm_comes_from_configuration_never_the_header() {
    let claims = claims("2.0");
    // alg: none with an empty signature.
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "key-1"})),
        b64(&claims)
    );
    assert!(matches!(
        UnverifiedEntraToken::parse(&none),
        Err(TokenError::Algorithm { .. })
    ));
    // HS256 "signed" with the RSA public key as the HMAC secret: refused by algorithm.
    let hs = format!(
        "{}.{}.c2lnbmF0dXJl",
        b64(&json!({"alg": "HS256", "kid": "key-1"})),
        b64(&claims)
    );
    assert!(matches!(
        UnverifiedEntraToken::parse(&hs),
        Err(TokenError::Algorithm { .. })
    ));
    for alg in ["rs256", "RS384", "PS256", "ES256", ""] {
        let t = format!(
            "{}.{}.c2ln",
            b64(&json!({"alg": alg, "kid": "key-1"})),
            b64(&claims)
        );
        assert!(
            matches!(
                UnverifiedEntraToken::parse(&t),
                Err(TokenError::Algorithm { .. })
            ),
            "{alg}"
        );
    }
}

#[test]
fn a_critical_header_is_refused() {
    // Correctly signed, but the header names extensions the recipient must understand
    // (RFC 7515 §4.1.11). Entra never sets `crit`; edge-access understands no extension, so
    // any `crit` — even empty or null — refuses the token before a key is looked at.
    assert!(verify(&sign(&header(), &claims("2.0"))).is_ok());
    for crit in [
        json!(["exp"]),
        json!(["b64"]),
        json!(["http://example.com/unknown"]),
        json!([]),
        json!(null),
        json!("exp"),
        json!({}),
    ] {
        let mut h = header();
        h["crit"] = crit.clone();
        for version in ["1.0", "2.0"] {
            let token = sign(&h, &claims(version));
            assert_eq!(
                UnverifiedEntraToken::parse(&token).unwrap_err(),
                TokenError::CriticalHeader,
                "crit {crit}"
            );
        }
    }
    // The algorithm is still checked first.
    let token = sign(
        &json!({ "alg": "HS256", "kid": "key-1", "crit": ["exp"] }),
        &claims("2.0"),
    );
    assert!(matches!(
        UnverifiedEntraToken::parse(&token),
        Err(TokenError::Algorithm { .. })
    ));
}

#[test]
fn tampering_breaks_the_signature() {
    let token = sign(&header(), &claims("2.0"));
    let (message, signature) = token.rsplit_once('.').unwrap();
    let (head, _) = message.split_once('.').unwrap();
    let forged = with(claims("2.0"), "upn", json!("root@example.com"));
    let tampered_payload = format!("{head}.{}.{signature}", b64(&forged));
    assert_eq!(
        verify(&tampered_payload).unwrap_err(),
        TokenError::BadSignature
    );
    let mut sig = URL_SAFE_NO_PAD.decode(signature).unwrap();
    sig[10] ^= 1;
    let tampered_signature = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&sig));
    assert_eq!(
        verify(&tampered_signature).unwrap_err(),
        TokenError::BadSignature
    );
    let truncated = format!("{message}.{}", URL_SAFE_NO_PAD.encode(&sig[..100]));
    assert_eq!(verify(&truncated).unwrap_err(), TokenError::BadSignature);
}

#[test]
fn the_key_must_be_the_one_named() {
    let token = sign(&json!({"alg": "RS256", "kid": "other-key"}), &claims("2.0"));
    assert!(matches!(verify(&token), Err(TokenError::UnknownKey { .. })));
    let token = sign(&json!({"alg": "RS256"}), &claims("2.0"));
    assert_eq!(
        UnverifiedEntraToken::parse(&token).unwrap_err(),
        TokenError::MissingKeyId
    );
}

#[test]
fn short_keys_are_refused() {
    let small = RsaPrivateKey::new(&mut rand::thread_rng(), 1024).unwrap();
    let jwk = RsaJwk {
        kid: "key-1".into(),
        n: URL_SAFE_NO_PAD.encode(small.n().to_bytes_be()),
        e: URL_SAFE_NO_PAD.encode(small.e().to_bytes_be()),
    };
    let token = sign(&header(), &claims("2.0"));
    let parsed = UnverifiedEntraToken::parse(&token).unwrap();
    let result = pollster::block_on(parsed.verify(&RsaVerifier, &jwk, &expectations(), NOW));
    assert!(matches!(result, Err(TokenError::BadKey(_))));
}

#[test]
fn malformed_tokens_are_refused() {
    for bad in [
        "",
        ".",
        "..",
        "a.b",
        "a.b.c.d",
        "eyJhbGciOiJSUzI1NiJ9.%%%.sig",
        "not a token",
        "eyJhbGciOiJSUzI1NiJ9.eyJ2ZXIiOiIyLjAiLCJleHAiOiJ0b21vcnJvdyJ9.c2ln",
        "e30.e30.c2ln",
        "W10.W10.c2ln",
    ] {
        assert!(UnverifiedEntraToken::parse(bad).is_err(), "{bad}");
    }
    let huge = "a".repeat(70_000);
    assert!(UnverifiedEntraToken::parse(&huge).is_err());
}

#[test]
fn nonce_is_checked_for_id_tokens() {
    let expected = Expectations {
        nonce: Some("n-123".into()),
        ..expectations()
    };
    let token = sign(&header(), &with(claims("2.0"), "nonce", json!("n-999")));
    assert_eq!(
        verify_with(&token, &expected).unwrap_err(),
        TokenError::Nonce
    );
    let token = sign(&header(), &with(claims("2.0"), "nonce", json!("n-123")));
    assert!(verify_with(&token, &expected).is_ok());
    let token = sign(&header(), &claims("2.0"));
    assert_eq!(
        verify_with(&token, &expected).unwrap_err(),
        TokenError::Nonce
    );
}

fn idp() -> policy_core::IdentityProvider {
    idp_with(json!({ "client_id": CLIENT, "directory_id": TID }))
}

fn idp_with(config: Value) -> policy_core::IdentityProvider {
    let doc = json!({ "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": "entra", "name": "Entra", "type": "azureAD",
            "config": config }],
        "apps": [] });
    Engine::from_json(&doc.to_string())
        .unwrap()
        .identity_providers()[0]
        .clone()
}

#[test]
fn identity_from_verified_claims() {
    let token = verify(&sign(&header(), &claims("2.0"))).unwrap();
    let identity = identity_from_claims(&token, &idp()).unwrap();
    assert_eq!(identity.email.unwrap().as_str(), "ada@example.com");
    assert_eq!(
        identity.groups[0].to_string(),
        "5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41"
    );
    assert_eq!(identity.amr.len(), 2);
    assert_eq!(identity.idp_id.as_deref(), Some("entra"));
    // The configured claim wins over `email` and `upn`.
    let mail =
        idp_with(json!({ "client_id": CLIENT, "directory_id": TID, "email_claim_name": "mail" }));
    let c = with(claims("2.0"), "mail", json!("Ada.Lovelace@Example.com"));
    let identity = identity_from_claims(&verify(&sign(&header(), &c)).unwrap(), &mail).unwrap();
    assert_eq!(identity.email.unwrap().as_str(), "ada.lovelace@example.com");
}

#[test]
fn the_email_comes_from_one_claim_whatever_the_token() {
    // Not configured: the user principal name, never `email`, which Entra puts in ID tokens
    // (the `email` scope) but not in access tokens: the same person has the same address
    // signing in (v2 ID token) and with a bearer token (v1 or v2 access token).
    let id_token = with(
        with(claims("2.0"), "upn", Value::Null),
        "email",
        json!("ada.lovelace@example.net"),
    );
    let v1_access = with(
        with(claims("1.0"), "preferred_username", Value::Null),
        "unique_name",
        json!("ada@example.com"),
    );
    let v2_access = with(claims("2.0"), "upn", Value::Null);
    let email = |c: &Value, idp: &policy_core::IdentityProvider| {
        identity_from_claims(&verify(&sign(&header(), c)).unwrap(), idp)
            .unwrap()
            .email
            .map(|e| e.as_str().to_owned())
    };
    for c in [&id_token, &v1_access, &v2_access] {
        assert_eq!(email(c, &idp()).as_deref(), Some("ada@example.com"), "{c}");
    }
    // `email` alone: no address unless the claim is there (no fallback to the UPN, which
    // would give the same person another address where the claim is missing).
    let by_email =
        idp_with(json!({ "client_id": CLIENT, "directory_id": TID, "email_claim_name": "email" }));
    assert_eq!(
        email(&id_token, &by_email).as_deref(),
        Some("ada.lovelace@example.net")
    );
    assert_eq!(email(&v1_access, &by_email), None);
    assert_eq!(email(&v2_access, &by_email), None);
}

#[test]
fn a_token_without_groups_is_not_a_user_without_groups() {
    // No `groups` and no overage marker: the registration emits none (or as `roles`), or
    // the user is in none — unknown, never "no groups".
    for c in [
        with(claims("2.0"), "groups", Value::Null),
        with(
            with(claims("2.0"), "groups", Value::Null),
            "roles",
            json!(["5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41"]),
        ),
    ] {
        let token = verify(&sign(&header(), &c)).unwrap();
        assert_eq!(
            identity_from_claims(&token, &idp()).unwrap_err(),
            IdentityError::GroupsNotInToken
        );
        // Without groups (`support_groups` off, or to read them from Graph) it is a user.
        let identity = edge_access_token::identity_without_groups(&token, &idp()).unwrap();
        assert!(identity.groups.is_empty());
    }
    // Groups by name are a configuration problem, and the message says what to change.
    for name in ["Domain Users", "CORP\\backend", "backend"] {
        let c = with(claims("2.0"), "groups", json!([name]));
        let token = verify(&sign(&header(), &c)).unwrap();
        let error = identity_from_claims(&token, &idp()).unwrap_err();
        assert!(matches!(error, IdentityError::BadGroup(_)), "{name}");
        assert!(error.to_string().contains("Group IDs"), "{error}");
    }
}

#[test]
fn groups_overage_is_never_no_groups() {
    let c = with(
        with(claims("2.0"), "groups", Value::Null),
        "_claim_names",
        json!({"groups": "src1"}),
    );
    let token = verify(&sign(&header(), &c)).unwrap();
    assert_eq!(
        identity_from_claims(&token, &idp()).unwrap_err(),
        IdentityError::GroupsOverage
    );
    let c = with(claims("2.0"), "hasgroups", json!(true));
    let token = verify(&sign(&header(), &c)).unwrap();
    assert_eq!(
        identity_from_claims(&token, &idp()).unwrap_err(),
        IdentityError::GroupsOverage
    );
    let c = with(claims("2.0"), "groups", json!(["Domain Users"]));
    let token = verify(&sign(&header(), &c)).unwrap();
    assert!(matches!(
        identity_from_claims(&token, &idp()),
        Err(IdentityError::BadGroup(_))
    ));
}

/// The claims of an app-only access token from the client credentials grant, as Entra issues
/// them for a web API (v1; the service principal in `oid` and `sub`, `roles` when app roles
/// are assigned, never `scp`).
fn app_only_claims() -> Value {
    let sp = "5e7c1f0a-3b9d-4c62-8f1e-a24d6b0c9e37";
    json!({ "aud": format!("api://{CLIENT}"), "iss": format!("https://sts.windows.net/{TID}/"),
            "tid": TID, "ver": "1.0", "iat": NOW - 10, "nbf": NOW - 10, "exp": NOW + 3600,
            "idp": format!("https://sts.windows.net/{TID}/"), "appid": CLIENT, "appidacr": "1",
            "oid": sp, "sub": sp, "roles": ["Reports.Read.All"] })
}

#[test]
fn app_only_tokens_are_not_users() {
    let refused = [
        // As issued, without the optional `idtyp` claim: `oid` equals `sub`.
        app_only_claims(),
        // With no app role assigned (no `roles` either).
        with(app_only_claims(), "roles", Value::Null),
        // With the optional `idtyp` claim, whatever `sub` says.
        with(
            with(app_only_claims(), "idtyp", json!("app")),
            "sub",
            json!("pairwise-looking-subject"),
        ),
        // A user-shaped token that says it is an app's.
        with(claims("2.0"), "idtyp", json!("app")),
        with(claims("2.0"), "idtyp", json!("device")),
        with(claims("2.0"), "idtyp", json!(true)),
        // `oid` = `sub` in any case.
        with(
            with(
                claims("2.0"),
                "sub",
                json!("E2A1C3B4-5D6F-4789-8A9B-0C1D2E3F4A5B"),
            ),
            "upn",
            json!("ada@example.com"),
        ),
    ];
    for claims in refused {
        let token = verify(&sign(&header(), &claims)).unwrap();
        assert_eq!(
            identity_from_claims(&token, &idp()).unwrap_err(),
            IdentityError::AppOnly,
            "{claims}"
        );
        assert_eq!(
            edge_access_token::identity_without_groups(&token, &idp()).unwrap_err(),
            IdentityError::AppOnly,
            "{claims}"
        );
    }
    // Before the groups: an app-only token with an overage marker is still app-only.
    let overage = with(app_only_claims(), "hasgroups", json!(true));
    let token = verify(&sign(&header(), &overage)).unwrap();
    assert_eq!(
        identity_from_claims(&token, &idp()).unwrap_err(),
        IdentityError::AppOnly
    );
}

#[test]
fn user_tokens_are_users() {
    // A delegated access token: pairwise `sub`, `scp`, `idtyp` `user` when configured.
    let user = with(
        with(
            claims("2.0"),
            "sub",
            json!("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"),
        ),
        "scp",
        json!("access_as_user"),
    );
    let with_idtyp = with(user.clone(), "idtyp", json!("user"));
    // An ID token: no `scp`, app roles of the user in `roles`.
    let id_token = with(
        with(
            claims("2.0"),
            "sub",
            json!("AAAAAAAAAAAAAAAAAAAAAIkzqFVrSaSaFHy782bbtaQ"),
        ),
        "roles",
        json!(["Admin"]),
    );
    // No `oid` at all (no `profile` scope): nothing says it is an app's.
    let no_oid = with(claims("2.0"), "oid", Value::Null);
    for claims in [user, with_idtyp, id_token, no_oid] {
        let token = verify(&sign(&header(), &claims)).unwrap();
        assert!(identity_from_claims(&token, &idp()).is_ok(), "{claims}");
    }
}

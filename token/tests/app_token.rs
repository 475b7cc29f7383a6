//! The gateway's application token: what it issues verifies; nothing else does.
#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{
    rsa_thumbprint_hex, AppClaims, RsaJwk, RsaVerifier, TokenError, UnverifiedAppToken,
};
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use sha2::Sha256;

const NOW: u64 = 1_800_000_000;
const ISS: &str = "https://access.example.com";

fn key() -> (RsaPrivateKey, RsaJwk) {
    let private = RsaPrivateKey::new(&mut rand::thread_rng(), 2048).unwrap();
    let (n, e) = (
        URL_SAFE_NO_PAD.encode(private.n().to_bytes_be()),
        URL_SAFE_NO_PAD.encode(private.e().to_bytes_be()),
    );
    let kid = rsa_thumbprint_hex(&n, &e);
    (private, RsaJwk { kid, n, e })
}

fn claims() -> AppClaims {
    AppClaims {
        aud: vec!["aud-app".into()],
        email: Some("ada@example.com".into()),
        sub: "d46b42fb-47df-439b-8a37-e6c49553de12".into(),
        iss: ISS.into(),
        token_type: "app".into(),
        identity_nonce: "n0nce".into(),
        country: Some("PT".into()),
        common_name: None,
        iat: NOW as i64 - 10,
        nbf: NOW as i64 - 10,
        exp: NOW as i64 + 3600,
    }
}

fn mint(private: &RsaPrivateKey, kid: &str, claims: &AppClaims) -> String {
    let input = claims.signing_input(kid).unwrap();
    let signature = SigningKey::<Sha256>::new(private.clone()).sign(input.as_bytes());
    AppClaims::assemble(&input, &signature.to_bytes())
}

fn verify(token: &str, jwk: &RsaJwk, audience: &str) -> Result<AppClaims, TokenError> {
    let parsed = UnverifiedAppToken::parse(token)?;
    pollster::block_on(parsed.verify(&RsaVerifier, jwk, ISS, audience, NOW))
        .map(|t| t.claims().clone())
}

#[test]
fn thumbprint_matches_rfc_7638() {
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    assert_eq!(
        rsa_thumbprint_hex(n, "AQAB"),
        "3736cbb1787cb8309c77ee8c3705c5e16ffb9e859715901f1e4c59b11182f57b"
    );
}

#[test]
fn issued_tokens_verify_and_nothing_else_does() {
    let (private, jwk) = key();
    let token = mint(&private, &jwk.kid, &claims());
    assert_eq!(verify(&token, &jwk, "aud-app").unwrap(), claims());
    assert_eq!(
        verify(&token, &jwk, "aud-other").unwrap_err(),
        TokenError::Audience
    );

    let mut c = claims();
    c.iss = "https://evil.example.com".into();
    assert_eq!(
        verify(&mint(&private, &jwk.kid, &c), &jwk, "aud-app").unwrap_err(),
        TokenError::Issuer
    );
    let mut c = claims();
    c.exp = NOW as i64;
    assert_eq!(
        verify(&mint(&private, &jwk.kid, &c), &jwk, "aud-app").unwrap_err(),
        TokenError::Expired
    );
    let mut c = claims();
    c.token_type = "org".into();
    assert!(verify(&mint(&private, &jwk.kid, &c), &jwk, "aud-app").is_err());

    // Another key (a cookie signed by someone else) fails.
    let (other, other_jwk) = key();
    let forged = mint(&other, &jwk.kid, &claims());
    assert_eq!(
        verify(&forged, &jwk, "aud-app").unwrap_err(),
        TokenError::BadSignature
    );
    assert!(matches!(
        verify(&mint(&other, &other_jwk.kid, &claims()), &jwk, "aud-app"),
        Err(TokenError::UnknownKey { .. })
    ));

    // Tampered payload.
    let parts: Vec<&str> = token.split('.').collect();
    let mut c = claims();
    c.email = Some("root@example.com".into());
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&c).unwrap());
    let tampered = format!("{}.{payload}.{}", parts[0], parts[2]);
    assert_eq!(
        verify(&tampered, &jwk, "aud-app").unwrap_err(),
        TokenError::BadSignature
    );

    // alg none and garbage.
    let none = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(r#"{"alg":"none","kid":"x"}"#),
        parts[1]
    );
    assert!(matches!(
        UnverifiedAppToken::parse(&none),
        Err(TokenError::Algorithm { .. })
    ));
    for bad in ["", "a.b", "a.b.c.d", "%%.%%.%%", "e30.e30.e30"] {
        assert!(UnverifiedAppToken::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_critical_header_is_refused() {
    // Validly signed by the gateway's own key, but the header asks for extensions the
    // verifier must understand (RFC 7515 §4.1.11): whatever `crit` says, refused.
    let (private, jwk) = key();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims()).unwrap());
    let signed = |header: serde_json::Value| {
        let input = format!("{}.{payload}", URL_SAFE_NO_PAD.encode(header.to_string()));
        let signature = SigningKey::<Sha256>::new(private.clone()).sign(input.as_bytes());
        AppClaims::assemble(&input, &signature.to_bytes())
    };
    let plain = serde_json::json!({ "alg": "RS256", "kid": jwk.kid, "typ": "JWT" });
    assert_eq!(
        verify(&signed(plain.clone()), &jwk, "aud-app").unwrap(),
        claims()
    );
    for crit in [
        serde_json::json!(["exp"]),
        serde_json::json!(["b64"]),
        serde_json::json!(["unknown-extension"]),
        serde_json::json!([]),
        serde_json::json!(null),
        serde_json::json!("b64"),
    ] {
        let mut header = plain.clone();
        header["crit"] = crit.clone();
        let token = signed(header);
        assert_eq!(
            UnverifiedAppToken::parse(&token).unwrap_err(),
            TokenError::CriticalHeader,
            "crit {crit}"
        );
    }
}

//! The token crate: Entra access and ID tokens, the gateway's application tokens, JWKS.
//!
//! Signatures are checked by a stand-in verifier that answers yes (or no) at once, so the
//! fuzzer reaches the claim checks; what these targets verify is that the rules around the
//! signature hold whatever the bytes: the algorithm is pinned, the claims trusted are the ones
//! in the signed bytes, a failed signature always refuses.

use std::cell::RefCell;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use edge_access_token::{
    identity_from_claims, identity_without_groups, AppClaims, Expectations, Jwks, RsaJwk,
    SignatureVerifier, TokenError, TokenVersion, UnverifiedAppToken, UnverifiedEntraToken,
};
use policy_core::{Request, Target};
use serde_json::{json, Map, Value};

use crate::policy::{decisions_agree, example_engine};
use crate::ready;

/// The example configuration's directory and app registration (`examples/config.json`).
pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
/// The client id tokens are for.
pub const CLIENT: &str = "0c4b8a2e-5d6f-4a1b-9c3d-2e7f8a9b0c1d";
/// "Now" for every check: 2027-01-15.
pub const NOW: u64 = 1_800_000_000;
/// The sign-in request's nonce, for ID tokens.
pub const NONCE: &str = "n-0S6_WzA2Mj";

/// The v1 issuer of [`TENANT`].
pub fn issuer_v1() -> String {
    format!("https://sts.windows.net/{TENANT}/")
}

/// The v2 issuer of [`TENANT`].
pub fn issuer_v2() -> String {
    format!("https://login.microsoftonline.com/{TENANT}/v2.0")
}

fn expectations(nonce: Option<&str>) -> Expectations {
    Expectations {
        tenant_id: TENANT.into(),
        audiences: vec![CLIENT.into(), format!("api://{CLIENT}")],
        issuer_v1: issuer_v1(),
        issuer_v2: issuer_v2(),
        leeway_secs: 60,
        nonce: nonce.map(str::to_owned),
    }
}

/// Answers every signature check with `verdict`, remembering what it was asked to check.
#[derive(Debug)]
struct StandIn {
    verdict: bool,
    asked: RefCell<Option<(Vec<u8>, Vec<u8>)>>,
}

impl StandIn {
    fn answering(verdict: bool) -> Self {
        Self {
            verdict,
            asked: RefCell::new(None),
        }
    }
}

impl SignatureVerifier for StandIn {
    fn verify_rs256(
        &self,
        _key: &RsaJwk,
        message: &[u8],
        signature: &[u8],
    ) -> impl std::future::Future<Output = Result<bool, TokenError>> {
        *self.asked.borrow_mut() = Some((message.to_vec(), signature.to_vec()));
        std::future::ready(Ok(self.verdict))
    }
}

fn key(kid: &str) -> RsaJwk {
    RsaJwk {
        kid: kid.to_owned(),
        n: "AQAB".into(),
        e: "AQAB".into(),
    }
}

/// The JSON object a base64url segment holds, when it holds one.
fn segment_object(segment: &str) -> Option<Map<String, Value>> {
    let bytes = URL_SAFE_NO_PAD.decode(segment).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// An Entra token: parsed, verified against the example configuration's tenant and client id at
/// [`NOW`] with a signature check that says yes, then mapped to an identity and decided.
///
/// Oracles: what parses says `alg: RS256`; the bytes handed to the signature check are exactly
/// `header.payload` and the signature exactly the third part; the claims a verified token
/// carries are the ones in that payload; a verified token meets every rule when re-checked by
/// the naive model below; a signature that does not verify, or another key id, always refuses;
/// the nonce is checked when one is expected.
pub fn entra_token(data: &[u8]) {
    let Some(raw) = crate::text(data) else {
        return;
    };
    let Ok(token) = UnverifiedEntraToken::parse(raw) else {
        return;
    };
    let parts: Vec<&str> = raw.split('.').collect();
    assert_eq!(parts.len(), 3, "a token of {} parts parsed", parts.len());
    if let Some(header) = segment_object(parts[0]) {
        assert_eq!(
            header.get("alg").and_then(Value::as_str),
            Some("RS256"),
            "a header without `alg: RS256` parsed"
        );
    }
    let kid = token.key_id().to_owned();
    let version = token.version();
    let tenant_hint = token.tenant_hint().map(str::to_owned);

    let refuse = StandIn::answering(false);
    let refused = ready(reparse(raw).verify(&refuse, &key(&kid), &expectations(None), NOW));
    assert_eq!(
        refused.err(),
        Some(TokenError::BadSignature),
        "a bad signature did not refuse"
    );
    let other_key = format!("{kid}.other");
    let unknown = ready(reparse(raw).verify(
        &StandIn::answering(true),
        &key(&other_key),
        &expectations(None),
        NOW,
    ));
    assert!(
        matches!(unknown, Err(TokenError::UnknownKey { .. })),
        "another key's id was accepted"
    );

    let accept = StandIn::answering(true);
    let verified = ready(token.verify(&accept, &key(&kid), &expectations(None), NOW));
    let Ok(verified) = verified else {
        return;
    };
    let (message, signature) = accept
        .asked
        .borrow_mut()
        .take()
        .unwrap_or_else(|| panic!("verified without a signature check"));
    assert_eq!(
        message,
        format!("{}.{}", parts[0], parts[1]).into_bytes(),
        "the signed bytes are not `header.payload`"
    );
    if let Ok(third) = URL_SAFE_NO_PAD.decode(parts[2]) {
        assert_eq!(
            signature, third,
            "the signature checked is not the third part"
        );
    }
    let claims = verified.claims();
    if let Some(payload) = segment_object(parts[1]) {
        for (name, value) in &payload {
            if matches!(name.as_str(), "exp" | "nbf" | "iat") {
                continue;
            }
            assert_eq!(
                claims.get(name),
                Some(value),
                "claim `{name}` differs from the signed payload"
            );
        }
        for name in claims.keys() {
            assert!(
                payload.contains_key(name),
                "claim `{name}` is not in the signed payload"
            );
        }
    }

    // The naive model of what may be accepted.
    let claim = |name: &str| claims.get(name).and_then(Value::as_str);
    assert_eq!(verified.version(), version);
    assert_eq!(verified.key_id(), kid);
    let issuer = match version {
        TokenVersion::V1 => issuer_v1(),
        TokenVersion::V2 => issuer_v2(),
    };
    assert_eq!(claim("iss"), Some(issuer.as_str()), "issuer");
    assert_eq!(
        claim("ver"),
        Some(version.as_str()),
        "version and `ver` differ"
    );
    assert!(
        claim("tid").is_some_and(|t| t.eq_ignore_ascii_case(TENANT)),
        "tenant"
    );
    assert_eq!(claim("tid"), tenant_hint.as_deref());
    let audiences = [CLIENT.to_owned(), format!("api://{CLIENT}")];
    let audience_ok = match claims.get("aud") {
        Some(Value::String(aud)) => audiences.contains(aud),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .any(|a| audiences.iter().any(|b| a == b)),
        _ => false,
    };
    assert!(audience_ok, "audience");
    let now = i64::try_from(NOW).unwrap_or(i64::MAX);
    let exp = claims.get("exp").and_then(Value::as_i64);
    assert!(exp.is_some_and(|exp| now <= exp.saturating_add(60)), "exp");
    assert_eq!(verified.expires_at(), exp);
    for name in ["nbf", "iat"] {
        if let Some(value) = claims.get(name) {
            let time = value.as_i64();
            assert!(
                time.is_some_and(|t| t <= now + 60),
                "`{name}` {value} accepted"
            );
        }
    }
    let with_nonce = ready(reparse(raw).verify(
        &StandIn::answering(true),
        &key(&kid),
        &expectations(Some(NONCE)),
        NOW,
    ));
    assert_eq!(
        with_nonce.is_ok(),
        claim("nonce") == Some(NONCE),
        "nonce check"
    );

    // The identity it maps to is decided the same way by both paths.
    let Some(idp) = example_engine().identity_providers().first() else {
        return;
    };
    let grouped = identity_from_claims(&verified, idp);
    let overage = claims
        .get("_claim_names")
        .and_then(|names| names.get("groups"))
        .is_some()
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true);
    if overage {
        assert!(grouped.is_err(), "a groups overage mapped to an identity");
    }
    for identity in [grouped, identity_without_groups(&verified, idp)]
        .into_iter()
        .flatten()
    {
        assert_eq!(identity.tenant_id.as_deref(), claim("tid"));
        assert_eq!(identity.user_id.as_deref(), claim("oid"));
        for app in example_engine().apps() {
            if let Ok(target) = Target::parse(&app.domain()) {
                let mut request = Request::new(target);
                request.identity = Some(identity.clone());
                decisions_agree(example_engine(), &request);
            }
        }
    }
}

fn reparse(raw: &str) -> UnverifiedEntraToken<'_> {
    UnverifiedEntraToken::parse(raw).unwrap_or_else(|e| panic!("parsed once, then not: {e}"))
}

/// An application token (the `CF_Authorization` cookie, `Cf-Access-Jwt-Assertion`).
///
/// Oracles: what parses has three parts, `alg: RS256` and claims that read as [`AppClaims`];
/// verification (signature check saying yes) accepts exactly what the naive model accepts and
/// returns those claims; the claims signed again with the same key id and signature parse and
/// verify to the same claims; a bad signature always refuses.
pub fn app_token(data: &[u8]) {
    let Some(raw) = crate::text(data) else {
        return;
    };
    let Ok(token) = UnverifiedAppToken::parse(raw) else {
        return;
    };
    let parts: Vec<&str> = raw.split('.').collect();
    assert_eq!(parts.len(), 3, "a token of {} parts parsed", parts.len());
    let header = segment_object(parts[0]).unwrap_or_else(|| panic!("header is not an object"));
    assert_eq!(header.get("alg").and_then(Value::as_str), Some("RS256"));
    assert_eq!(
        header.get("kid").and_then(Value::as_str),
        Some(token.key_id())
    );
    let claims: AppClaims = URL_SAFE_NO_PAD
        .decode(parts[1])
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| panic!("claims parsed that do not read as AppClaims"));
    let signature = URL_SAFE_NO_PAD
        .decode(parts[2])
        .unwrap_or_else(|e| panic!("signature parsed that is not base64url: {e}"));
    let kid = token.key_id().to_owned();
    let audience = claims.aud.first().cloned().unwrap_or_default();
    // A moment inside the token's life when there is one.
    let now = u64::try_from(claims.nbf.max(claims.iat).max(0)).unwrap_or(0);
    let now_i64 = i64::try_from(now).unwrap_or(i64::MAX);
    let accepted = claims.token_type == "app"
        && !claims.aud.is_empty()
        && now_i64 < claims.exp
        && claims.nbf <= now_i64.saturating_add(60)
        && claims.iat <= now_i64.saturating_add(60);

    let refused = UnverifiedAppToken::parse(raw).map(|t| {
        ready(t.verify(
            &StandIn::answering(false),
            &key(&kid),
            &claims.iss,
            &audience,
            now,
        ))
    });
    assert!(
        matches!(refused, Ok(Err(TokenError::BadSignature))),
        "a bad signature did not refuse"
    );
    let verified = ready(token.verify(
        &StandIn::answering(true),
        &key(&kid),
        &claims.iss,
        &audience,
        now,
    ));
    assert_eq!(
        verified.is_ok(),
        accepted,
        "verification and the naive model differ on {claims:?} at {now}: {verified:?}"
    );
    if let Ok(verified) = &verified {
        assert_eq!(verified.claims(), &claims);
    }

    let input = claims
        .signing_input(&kid)
        .unwrap_or_else(|e| panic!("cannot sign {claims:?} again: {e}"));
    let resigned = AppClaims::assemble(&input, &signature);
    let again = UnverifiedAppToken::parse(&resigned)
        .unwrap_or_else(|e| panic!("signed again as `{resigned}`, refused: {e}"));
    assert_eq!(again.key_id(), kid);
    let verified_again = ready(again.verify(
        &StandIn::answering(true),
        &key(&kid),
        &claims.iss,
        &audience,
        now,
    ));
    assert_eq!(
        verified_again.map(|v| v.claims().clone()).ok(),
        verified.ok().map(|v| v.claims().clone()),
        "signed again, the token verifies differently"
    );
}

/// A JWKS document: every key kept has a key id it is found by, and the keys written back
/// as a JWKS parse to the same keys.
pub fn jwks(data: &[u8]) {
    let Ok(jwks) = Jwks::parse(data) else {
        return;
    };
    for key in &jwks.keys {
        let _ = key.modulus();
        let _ = key.exponent();
        assert!(jwks.key(&key.kid).is_some());
    }
    let written = json!({
        "keys": jwks.keys.iter().map(|k| json!({
            "kty": "RSA", "use": "sig", "kid": k.kid, "n": k.n, "e": k.e
        })).collect::<Vec<_>>()
    });
    let again = Jwks::parse(written.to_string().as_bytes())
        .unwrap_or_else(|e| panic!("written back as {written}, refused: {e}"));
    assert_eq!(again, jwks);
}

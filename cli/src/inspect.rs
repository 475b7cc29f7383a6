//! `edge-access token inspect`: what a token says, for people debugging a sign-in or an API
//! call. It decodes; it does not verify (the gateway does that with the directory's keys), and
//! it says so in its output.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

/// The decoded header and claims, the kind of token, and its validity window against `now`.
///
/// # Errors
/// A message naming the part that does not decode.
pub fn inspect(token: &str, now: i64) -> Result<Value, String> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts.as_slice() else {
        return Err(format!("not a JWT: {} parts, expected 3", parts.len()));
    };
    let decode = |name: &str, part: &str| -> Result<Value, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(part.trim_end_matches('='))
            .map_err(|_| format!("the {name} is not base64url"))?;
        serde_json::from_slice(&bytes).map_err(|e| format!("the {name} is not JSON: {e}"))
    };
    let header = decode("header", header)?;
    let claims = decode("payload", payload)?;
    let kind = match (
        claims.get("ver").and_then(Value::as_str),
        claims.get("type").and_then(Value::as_str),
    ) {
        (Some("1.0"), _) => "Entra ID v1.0 token",
        (Some("2.0"), _) if claims.get("nonce").is_some() => "Entra ID v2.0 ID token",
        (Some("2.0"), _) => "Entra ID v2.0 access token",
        (_, Some("app")) => "edge-access application token",
        _ => "unknown issuer",
    };
    let time = |name: &str| claims.get(name).and_then(Value::as_i64);
    let status = match (time("exp"), time("nbf")) {
        (Some(exp), _) if now >= exp => format!("expired {} s ago", now - exp),
        (_, Some(nbf)) if now < nbf => format!("not valid for another {} s", nbf - now),
        (Some(exp), _) => format!("valid for another {} s", exp - now),
        (None, _) => "no expiry (`exp` missing): the gateway refuses it".into(),
    };
    let overage = claims
        .get("_claim_names")
        .and_then(|c| c.get("groups"))
        .is_some()
        || claims.get("hasgroups").and_then(Value::as_bool) == Some(true);
    Ok(json!({
        "kind": kind,
        "signature": format!("{} bytes, not verified here", URL_SAFE_NO_PAD.decode(signature).map_or(0, |s| s.len())),
        "time": status,
        "groups_overage": overage,
        "header": header,
        "claims": claims,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(header: &Value, claims: &Value) -> String {
        let b64 = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
        format!("{}.{}.c2ln", b64(header), b64(claims))
    }

    #[test]
    fn says_what_a_token_is() {
        let t = token(
            &json!({"alg": "RS256", "kid": "k"}),
            &json!({"ver": "2.0", "exp": 200, "_claim_names": {"groups": "src1"}}),
        );
        let report = inspect(&t, 100).unwrap();
        assert_eq!(report["kind"], "Entra ID v2.0 access token");
        assert_eq!(report["time"], "valid for another 100 s");
        assert_eq!(report["groups_overage"], true);
        let t = token(&json!({"alg": "RS256"}), &json!({"type": "app", "exp": 50}));
        let report = inspect(&t, 100).unwrap();
        assert_eq!(report["kind"], "edge-access application token");
        assert_eq!(report["time"], "expired 50 s ago");
    }

    #[test]
    fn refuses_what_is_not_a_token() {
        for bad in [
            "",
            "a.b",
            "a.b.c.d",
            "%%.e30.x",
            "e30.%%.x",
            "bm90anNvbg.e30.x",
        ] {
            assert!(inspect(bad, 0).is_err(), "{bad}");
        }
    }
}

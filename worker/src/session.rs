//! Sessions: the gateway's signing keys, application tokens in the `CF_Authorization` cookie,
//! and the identities kept server-side in D1 under each token's `identity_nonce` (table
//! `sessions`, whose statements are in [`crate::session_store`]).

use std::cell::RefCell;

use edge_access_token::{
    rsa_thumbprint_hex, AppClaims, RsaJwk, TokenError, UnverifiedAppToken, VerifiedAppToken,
};
use hmac::{Hmac, Mac};
use js_sys::{Array, Object, Reflect};
use policy_core::{Email, GroupId, Identity, SessionDuration};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{CryptoKey, WorkerGlobalScope};
use worker::{Env, Headers};

use crate::config::Gateway;
use crate::error::GatewayError;
use crate::keys::WebCryptoVerifier;
use crate::time::UnixMillis;

/// The cookie holding the application token.
pub const COOKIE: &str = "CF_Authorization";

/// One signing key: the private JWK (for WebCrypto) and its public half.
#[derive(Debug, Clone)]
pub struct SigningKey {
    pub public: RsaJwk,
    private: Map<String, Value>,
    /// DER certificates (`x5c`), when the key came with one.
    pub certificates: Vec<String>,
}

/// The current key (signs) and, during a rotation, the previous one (still verifies).
#[derive(Debug, Clone)]
pub struct SigningKeys {
    pub current: SigningKey,
    pub previous: Option<SigningKey>,
}

impl SigningKeys {
    /// Reads `SESSION_SIGNING_KEY` (and `SESSION_SIGNING_KEY_PREVIOUS`): private RSA JWKs, as
    /// `edge-access keygen` writes them.
    pub fn from_env(env: &Env) -> Result<Option<SigningKeys>, String> {
        let read = |name: &str| -> Result<Option<SigningKey>, String> {
            let Some(text) = secret(env, name) else {
                return Ok(None);
            };
            SigningKey::parse(&text)
                .map(Some)
                .map_err(|e| format!("{name}: {e}"))
        };
        match read("SESSION_SIGNING_KEY")? {
            Some(current) => Ok(Some(SigningKeys {
                current,
                previous: read("SESSION_SIGNING_KEY_PREVIOUS")?,
            })),
            None => Ok(None),
        }
    }

    /// The key with `kid`.
    pub fn key(&self, kid: &str) -> Option<&SigningKey> {
        std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .find(|k| k.public.kid == kid)
    }

    /// `/cdn-cgi/access/certs` in Access's format.
    pub fn certs_document(&self) -> Value {
        let keys: Vec<&SigningKey> = std::iter::once(&self.current)
            .chain(self.previous.as_ref())
            .collect();
        let jwks: Vec<Value> = keys
            .iter()
            .map(|k| {
                json!({ "kid": k.public.kid, "kty": "RSA", "alg": "RS256", "use": "sig",
                        "e": k.public.e, "n": k.public.n })
            })
            .collect();
        let certs: Vec<Value> = keys
            .iter()
            .filter_map(|k| {
                k.certificates
                    .first()
                    .map(|der| json!({ "kid": k.public.kid, "cert": pem(der) }))
            })
            .collect();
        json!({
            "keys": jwks,
            "public_cert": certs.first().cloned().unwrap_or(Value::Null),
            "public_certs": certs,
        })
    }
}

fn pem(der_base64: &str) -> String {
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    let chars: Vec<char> = der_base64.chars().collect();
    for line in chars.chunks(64) {
        out.extend(line);
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

/// A secret (or, in local development, a plain var) by name.
pub fn secret(env: &Env, name: &str) -> Option<String> {
    env.secret(name)
        .map(|s| s.to_string())
        .or_else(|_| env.var(name).map(|v| v.to_string()))
        .ok()
        .filter(|s| !s.trim().is_empty())
}

impl SigningKey {
    fn parse(text: &str) -> Result<SigningKey, String> {
        let value: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let Value::Object(mut private) = value else {
            return Err("not a JWK object".into());
        };
        let field = |name: &str| private.get(name).and_then(Value::as_str).map(str::to_owned);
        if field("kty").as_deref() != Some("RSA") {
            return Err("`kty` must be `RSA`".into());
        }
        for name in ["n", "e", "d", "p", "q", "dp", "dq", "qi"] {
            if field(name).is_none() {
                return Err(format!("missing `{name}` (a private RSA JWK is needed)"));
            }
        }
        let (n, e) = (
            field("n").unwrap_or_default(),
            field("e").unwrap_or_default(),
        );
        let public = RsaJwk {
            kid: rsa_thumbprint_hex(&n, &e),
            n,
            e,
        };
        if public.modulus().map_err(|e| e.to_string())?.len() < 256 {
            return Err("the key is shorter than 2048 bits".into());
        }
        let certificates = match private.remove("x5c") {
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect(),
            _ => Vec::new(),
        };
        private.remove("kid");
        Ok(SigningKey {
            public,
            private,
            certificates,
        })
    }

    /// A 256-bit secret for `purpose`, derived from this key's private exponent
    /// (HMAC-SHA-256 keyed with `d`, over a label naming the purpose): keys for other uses
    /// that rotate with the signing key and need no secret of their own.
    pub fn derived_secret(&self, purpose: &str) -> Result<[u8; 32], GatewayError> {
        let d = self.private.get("d").and_then(Value::as_str).unwrap_or("");
        hmac_sha256(
            d.as_bytes(),
            &[b"edge-access derived secret\0", purpose.as_bytes()],
        )
    }

    /// Signs `message` (RS256) with WebCrypto. The imported key is kept in the isolate.
    pub async fn sign(&self, message: &[u8]) -> Result<Vec<u8>, GatewayError> {
        let error = |e: JsValue| GatewayError::Internal(format!("signing: {e:?}"));
        let global: WorkerGlobalScope = js_sys::global().unchecked_into();
        let subtle = global.crypto().map_err(error)?.subtle();
        let key = match IMPORTED.with(|k| {
            k.borrow()
                .as_ref()
                .filter(|(kid, _)| *kid == self.public.kid)
                .map(|(_, key)| key.clone())
        }) {
            Some(key) => key,
            None => {
                let key = self.import(&subtle).await?;
                IMPORTED.with(|k| *k.borrow_mut() = Some((self.public.kid.clone(), key.clone())));
                key
            }
        };
        let promise = subtle
            .sign_with_str_and_u8_array("RSASSA-PKCS1-v1_5", &key, message)
            .map_err(error)?;
        let signature = JsFuture::from(promise).await.map_err(error)?;
        Ok(js_sys::Uint8Array::new(&signature).to_vec())
    }

    async fn import(&self, subtle: &web_sys::SubtleCrypto) -> Result<CryptoKey, GatewayError> {
        let error = |e: JsValue| GatewayError::Internal(format!("signing key import: {e:?}"));
        let jwk = Object::new();
        for (name, value) in &self.private {
            if let Some(text) = value.as_str() {
                Reflect::set(&jwk, &name.into(), &text.into()).map_err(error)?;
            }
        }
        Reflect::set(&jwk, &"alg".into(), &"RS256".into()).map_err(error)?;
        let algorithm = Object::new();
        Reflect::set(&algorithm, &"name".into(), &"RSASSA-PKCS1-v1_5".into()).map_err(error)?;
        Reflect::set(&algorithm, &"hash".into(), &"SHA-256".into()).map_err(error)?;
        let usages = Array::of1(&"sign".into());
        let promise = subtle
            .import_key_with_object("jwk", &jwk, &algorithm, false, &usages)
            .map_err(error)?;
        Ok(JsFuture::from(promise)
            .await
            .map_err(error)?
            .unchecked_into())
    }
}

thread_local! {
    /// The current signing key as WebCrypto imported it, by `kid`, so that a signature does not
    /// parse the private JWK again.
    static IMPORTED: RefCell<Option<(String, CryptoKey)>> = const { RefCell::new(None) };
}

/// HMAC-SHA-256 of the concatenated `parts` under `key`.
pub fn hmac_sha256(key: &[u8], parts: &[&[u8]]) -> Result<[u8; 32], GatewayError> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key)
        .map_err(|e| GatewayError::Internal(format!("HMAC key: {e}")))?;
    for part in parts {
        mac.update(part);
    }
    Ok(mac.finalize().into_bytes().into())
}

/// Mints and signs an application token.
pub async fn mint(keys: &SigningKeys, claims: &AppClaims) -> Result<String, GatewayError> {
    let input = claims
        .signing_input(&keys.current.public.kid)
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    let signature = keys.current.sign(input.as_bytes()).await?;
    Ok(AppClaims::assemble(&input, &signature))
}

/// Verifies an application token for `audience` (`None`: any audience this gateway issues).
pub async fn verify(
    keys: &SigningKeys,
    token: &str,
    issuer: &str,
    audience: Option<&str>,
    now_s: u64,
) -> Result<VerifiedAppToken, TokenError> {
    let parsed = UnverifiedAppToken::parse(token)?;
    let key = keys
        .key(parsed.key_id())
        .ok_or_else(|| TokenError::UnknownKey {
            kid: parsed.key_id().to_owned(),
        })?
        .public
        .clone();
    // `aud` is checked against the app; without one, against the token's own first audience
    // (the signature and issuer still decide).
    let audience = match audience {
        Some(a) => a.to_owned(),
        None => peek_audience(token).unwrap_or_default(),
    };
    parsed
        .verify(&WebCryptoVerifier, &key, issuer, &audience, now_s)
        .await
}

fn peek_audience(token: &str) -> Option<String> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let payload = URL_SAFE_NO_PAD.decode(token.split('.').nth(1)?).ok()?;
    let claims: AppClaims = serde_json::from_slice(&payload).ok()?;
    claims.aud.into_iter().next()
}

/// A cookie's value from the `Cookie` header.
pub fn cookie(headers: &Headers, name: &str) -> Option<String> {
    let header = headers.get("Cookie").ok().flatten()?;
    header.split(';').find_map(|pair| {
        let (k, v) = pair.trim().split_once('=')?;
        (k == name).then(|| v.trim().to_owned())
    })
}

/// `Set-Cookie` for the application token (HttpOnly, Secure, SameSite=Lax, host-only).
pub fn set_cookie(token: &str, max_age_s: u64) -> String {
    format!("{COOKIE}={token}; Path=/; Max-Age={max_age_s}; HttpOnly; Secure; SameSite=Lax")
}

/// `Set-Cookie` that removes the application token.
pub fn clear_cookie() -> String {
    format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// A live session: the application token verified, its row neither revoked nor expired.
#[derive(Debug, Clone)]
pub struct Session {
    /// The identity stored at sign-in (groups included).
    pub identity: StoredIdentity,
    /// When the user signed in (Unix ms): the age each app's session duration is held to.
    pub signed_in_ms: u64,
    /// The token's `identity_nonce`: the session's key.
    pub identity_nonce: String,
    /// The token's `sub` (the user's object id; empty when the identity had none).
    pub user: String,
}

/// The session behind a `CF_Authorization` cookie: the token must verify (this gateway's key,
/// issuer, `audience` when given, times) and its session must be neither revoked nor expired.
/// `Ok(None)` is no session (logged as `session_refused`); errors are failures to look.
///
/// # Errors
/// [`GatewayError::Unavailable`] when D1 fails; [`GatewayError::Internal`] for a stored
/// identity that does not read back.
pub async fn lookup(
    env: &Env,
    gateway: &Gateway,
    token: &str,
    audience: Option<&str>,
    now_ms: u64,
) -> Result<Option<Session>, GatewayError> {
    let Some(keys) = gateway.signing.as_ref() else {
        return Ok(None);
    };
    let verified = match verify(
        keys,
        token,
        gateway.engine.team_domain(),
        audience,
        now_ms / 1000,
    )
    .await
    {
        Ok(v) => v,
        Err(e) => {
            crate::log::event("session_refused", &[("reason", &e.to_string())]);
            return Ok(None);
        }
    };
    let claims = verified.claims();
    // Assertions minted for bearer and service-token requests name no stored session.
    if claims.identity_nonce.is_empty() {
        crate::log::event("session_refused", &[("reason", "no identity_nonce")]);
        return Ok(None);
    }
    let row = crate::session_store::live(
        &env.d1("DB")?,
        &claims.identity_nonce,
        UnixMillis::from_millis(now_ms),
    )
    .await?;
    let Some(row) = row else {
        crate::log::event(
            "session_refused",
            &[("reason", "revoked or expired session")],
        );
        return Ok(None);
    };
    let identity = serde_json::from_str(&row.identity)
        .map_err(|e| GatewayError::Internal(format!("stored identity: {e}")))?;
    Ok(Some(Session {
        identity,
        signed_in_ms: row.created.millis(),
        identity_nonce: claims.identity_nonce.clone(),
        user: claims.sub.clone(),
    }))
}

impl Session {
    /// Whether this session is older than `duration` (the deciding policy's, else the app's,
    /// else 24 h: what the verdict says): the app wants the user to sign in again. With one
    /// cookie for every app on a host, this is how each app keeps its own session length.
    pub fn outlived(&self, duration: Option<&SessionDuration>, now_ms: u64) -> bool {
        let limit_ms = duration
            .map_or(DEFAULT_SESSION_S, SessionDuration::seconds)
            .max(1)
            .saturating_mul(1000);
        now_ms.saturating_sub(self.signed_in_ms) > limit_ms
    }
}

/// Access's default session duration.
pub const DEFAULT_SESSION_S: u64 = 24 * 3600;

/// What a logout ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// The session of this cookie.
    ThisSession,
    /// Every session of the cookie's user.
    Everywhere,
}

impl Revocation {
    pub fn as_str(self) -> &'static str {
        match self {
            Revocation::ThisSession => "this_session",
            Revocation::Everywhere => "everywhere",
        }
    }
}

/// Revokes `session` (or every session of its user) from `now_ms`.
///
/// # Errors
/// [`GatewayError::Unavailable`] when D1 fails.
pub async fn revoke(
    env: &Env,
    session: &Session,
    scope: Revocation,
    now_ms: u64,
) -> Result<(), GatewayError> {
    let everyone = match scope {
        Revocation::Everywhere if !session.user.is_empty() => Some(session.user.as_str()),
        _ => None,
    };
    crate::session_store::revoke(
        &env.d1("DB")?,
        &session.identity_nonce,
        everyone,
        UnixMillis::from_millis(now_ms),
    )
    .await?;
    Ok(())
}

/// The identity as stored server-side (groups included), keyed by `identity_nonce`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredIdentity {
    pub email: Option<String>,
    pub user_id: Option<String>,
    pub tenant_id: Option<String>,
    pub idp_id: Option<String>,
    pub groups: Vec<String>,
    pub amr: Vec<String>,
    pub acrs: Vec<String>,
    pub claims: Vec<(String, Vec<String>)>,
    pub country: Option<String>,
}

impl StoredIdentity {
    pub fn from_identity(identity: &Identity, country: Option<String>) -> StoredIdentity {
        let strings = |v: &[Box<str>]| v.iter().map(|s| s.to_string()).collect();
        StoredIdentity {
            email: identity.email.as_ref().map(|e| e.as_str().to_owned()),
            user_id: identity.user_id.as_deref().map(Into::into),
            tenant_id: identity.tenant_id.as_deref().map(Into::into),
            idp_id: identity.idp_id.as_deref().map(Into::into),
            groups: identity.groups.iter().map(ToString::to_string).collect(),
            amr: strings(&identity.amr),
            acrs: strings(&identity.acrs),
            claims: identity
                .claims
                .iter()
                .filter(|(name, _)| !is_bulky_claim(name))
                .map(|(name, values)| (name.to_string(), strings(values)))
                .collect(),
            country,
        }
    }

    pub fn to_identity(&self) -> Identity {
        let boxed = |v: &[String]| v.iter().map(|s| s.as_str().into()).collect();
        let mut identity = Identity::default();
        identity.email = self.email.as_deref().and_then(|e| Email::parse(e).ok());
        identity.user_id = self.user_id.as_deref().map(Into::into);
        identity.tenant_id = self.tenant_id.as_deref().map(Into::into);
        identity.idp_id = self.idp_id.as_deref().map(Into::into);
        identity.groups = self
            .groups
            .iter()
            .filter_map(|g| GroupId::parse(g).ok())
            .collect();
        identity.amr = boxed(&self.amr);
        identity.acrs = boxed(&self.acrs);
        identity.claims = self
            .claims
            .iter()
            .map(|(n, v)| (n.as_str().into(), boxed(v)))
            .collect();
        identity
    }
}

/// Claims not worth keeping per session (token bookkeeping, or the groups kept separately).
fn is_bulky_claim(name: &str) -> bool {
    matches!(
        name,
        "groups"
            | "_claim_names"
            | "_claim_sources"
            | "aio"
            | "uti"
            | "rh"
            | "nonce"
            | "iat"
            | "nbf"
            | "exp"
            | "sid"
    )
}

//! Sign-ins in progress. Nothing is stored when a sign-in starts: the browser that starts it
//! keeps it in the `EA_Login_<state prefix>` cookie, and the gateway recognises its own states
//! and cookies by their MACs.
//!
//! - The **state** is 16 random bytes, the time it was issued (ms) and a MAC over both under
//!   the sign-in key: the callback knows a state it issued, and its age, without storage.
//! - The **nonce** and the **PKCE verifier** are MACs of the state under the same key: never
//!   stored, never sent anywhere but where OIDC sends them (the verifier only to the token
//!   endpoint), and unknowable without the key.
//! - The **cookie** holds the state, the identity provider and the target to return to, with a
//!   MAC under the key: the callback finishes only in the browser that holds it (the binding),
//!   and nothing in it can be changed.
//! - **Single use**: the callback records each state it accepts in D1 (`login_used`) before the
//!   code is redeemed, and refuses a state already there; rows older than the 10 minutes a
//!   state is accepted are deleted by the same write. A state's second callback is refused by
//!   the gateway, whatever code comes with it; Entra refuses a code's second redemption too.
//!
//! The sign-in key is derived from `SESSION_SIGNING_KEY` (see
//! [`crate::signing::SigningKey::derived_secret`]); a sign-in started under the previous key is
//! still finished during a rotation.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use wasm_bindgen::JsValue;
use worker::{Env, Headers};

use crate::crypto::{self, hmac_sha256};
use crate::error::GatewayError;
use crate::signing::SigningKeys;
use crate::time::UnixMillis;

/// The cookie name's prefix; the name ends with the state's first characters.
pub const COOKIE_PREFIX: &str = "EA_Login_";

/// How long a sign-in may take.
pub const TTL: Duration = Duration::from_secs(10 * 60);

/// The longest target a sign-in returns to whole. A longer one loses its query; a path still
/// longer becomes `/`. (It travels in the cookie, which browsers keep up to 4 KiB.)
pub const MAX_TARGET_BYTES: usize = 2048;

/// Sign-ins in progress one browser keeps (the newest); older cookies are expired, so a page
/// that starts many sign-ins cannot grow the browser's `Cookie` header without bound.
pub const MAX_PENDING: usize = 4;

const RANDOM_BYTES: usize = 16;
const TIME_BYTES: usize = 8;
const MAC_BYTES: usize = 16;
const STATE_BYTES: usize = RANDOM_BYTES + TIME_BYTES + MAC_BYTES;

/// The sign-in keys: the current one issues, every one (current, previous) is accepted.
pub struct Keys(Vec<[u8; 32]>);

/// A state this gateway issued (its MAC checked), with the key that issued it.
pub struct Issued {
    pub created: UnixMillis,
    key: [u8; 32],
}

impl Issued {
    /// Whether a sign-in with this state may still finish at `now`: issued at most [`TTL`]
    /// ago, and not in the future.
    pub fn fresh_at(&self, now: UnixMillis) -> bool {
        self.created <= now && now.since(self.created) <= TTL
    }
}

/// What the cookie holds.
#[derive(Debug, Serialize, Deserialize)]
pub struct Pending {
    /// The state the identity provider echoes.
    #[serde(rename = "s")]
    pub state: String,
    /// The identity provider's id in the configuration.
    #[serde(rename = "i")]
    pub idp_id: String,
    /// Where to return (a path on this host).
    #[serde(rename = "r")]
    pub redirect: String,
    /// On the team domain: the app host this sign-in is for ([`crate::signin::hub`]).
    #[serde(rename = "h", default, skip_serializing_if = "Option::is_none")]
    pub handoff: Option<HandoffTarget>,
    /// A connection test ([`crate::signin::connection_test`]): the callback reports what the
    /// identity provider sent and stores nothing.
    #[serde(rename = "t", default, skip_serializing_if = "std::ops::Not::not")]
    pub test: bool,
}

impl Pending {
    /// A sign-in to begin that returns to `redirect` (on the team domain: for the app host of
    /// `handoff`); its state and provider are filled in when it begins.
    pub fn returning_to(redirect: String, handoff: Option<HandoffTarget>) -> Pending {
        Pending {
            state: String::new(),
            idp_id: String::new(),
            redirect,
            handoff,
            test: false,
        }
    }
}

/// The app host a team-domain sign-in hands off to, and that host's own sign-in state (whose
/// cookie binds the handoff to the browser that started it there).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct HandoffTarget {
    /// `host[:port]`, lowercase.
    #[serde(rename = "h")]
    pub host: String,
    /// The app host's state.
    #[serde(rename = "s")]
    pub state: String,
}

impl Keys {
    /// The sign-in keys of `signing`.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] if a key cannot be derived.
    pub fn new(signing: &SigningKeys) -> Result<Keys, GatewayError> {
        let mut keys = vec![signing.current.derived_secret("sign-in state")?];
        if let Some(previous) = &signing.previous {
            keys.push(previous.derived_secret("sign-in state")?);
        }
        Ok(Keys(keys))
    }

    /// A new state, issued at `now` under the current key.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] when randomness or the MAC fails.
    pub fn issue(&self, now: UnixMillis) -> Result<(String, Issued), GatewayError> {
        let key = *self
            .0
            .first()
            .ok_or_else(|| GatewayError::Internal("no sign-in key".into()))?;
        let mut bytes = crypto::random_bytes(RANDOM_BYTES)?;
        bytes.extend_from_slice(&now.millis().to_be_bytes());
        let mac = hmac_sha256(&key, &[b"state\0", &bytes])?;
        bytes.extend_from_slice(mac.get(..MAC_BYTES).unwrap_or_default());
        let issued = Issued { created: now, key };
        Ok((URL_SAFE_NO_PAD.encode(bytes), issued))
    }

    /// The state `text` if this gateway issued it (under any of its keys).
    pub fn check(&self, text: &str) -> Option<Issued> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        if bytes.len() != STATE_BYTES {
            return None;
        }
        let (body, mac) = bytes.split_at(RANDOM_BYTES + TIME_BYTES);
        let key = self.0.iter().find(|key| {
            hmac_sha256(*key, &[b"state\0", body])
                .is_ok_and(|expected| same(expected.get(..MAC_BYTES).unwrap_or_default(), mac))
        })?;
        let time: [u8; TIME_BYTES] = body.get(RANDOM_BYTES..)?.try_into().ok()?;
        Some(Issued {
            created: UnixMillis::from_millis(u64::from_be_bytes(time)),
            key: *key,
        })
    }
}

impl Issued {
    /// The OIDC nonce of this sign-in.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] when the MAC fails.
    pub fn nonce(&self, state: &str) -> Result<String, GatewayError> {
        self.derive("nonce", state)
    }

    /// The PKCE code verifier of this sign-in (43 characters of base64url).
    ///
    /// # Errors
    /// [`GatewayError::Internal`] when the MAC fails.
    pub fn verifier(&self, state: &str) -> Result<String, GatewayError> {
        self.derive("pkce", state)
    }

    fn derive(&self, what: &str, state: &str) -> Result<String, GatewayError> {
        let mac = hmac_sha256(&self.key, &[what.as_bytes(), b"\0", state.as_bytes()])?;
        Ok(URL_SAFE_NO_PAD.encode(mac))
    }

    /// The cookie value holding `pending`.
    ///
    /// # Errors
    /// [`GatewayError::Internal`] when serialising or the MAC fails.
    pub fn seal(&self, pending: &Pending) -> Result<String, GatewayError> {
        let json =
            serde_json::to_vec(pending).map_err(|e| GatewayError::Internal(e.to_string()))?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = hmac_sha256(&self.key, &[b"pending\0", payload.as_bytes()])?;
        Ok(format!("{payload}.{}", URL_SAFE_NO_PAD.encode(mac)))
    }

    /// The sign-in in cookie value `value`, if this gateway sealed it under this state's key.
    pub fn open(&self, value: &str) -> Option<Pending> {
        let (payload, mac) = value.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        let expected = hmac_sha256(&self.key, &[b"pending\0", payload.as_bytes()]).ok()?;
        if !same(&expected, &mac) {
            return None;
        }
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()
    }
}

/// The cookie of the sign-in with `state`.
pub fn cookie_name(state: &str) -> String {
    format!("{COOKIE_PREFIX}{}", state.get(..12).unwrap_or(state))
}

/// `Set-Cookie` for a sign-in in progress (`value`), or its removal (`None`), sent back only
/// to the gateway's endpoints (`path`: [`crate::endpoints::Endpoints::cookie_path`]).
pub fn set_cookie(state: &str, value: Option<&str>, path: &str) -> String {
    let (value, age) = match value {
        Some(v) => (v, TTL.as_secs()),
        None => ("", 0),
    };
    format!(
        "{}={value}; Path={path}; Max-Age={age}; HttpOnly; Secure; SameSite=Lax",
        cookie_name(state)
    )
}

/// `Set-Cookie` lines expiring the browser's oldest sign-ins in progress, so that with the one
/// being started it keeps at most [`MAX_PENDING`]. Unreadable cookies go first.
pub fn evictions(keys: &Keys, headers: &Headers, path: &str) -> Vec<String> {
    let Some(header) = headers.get("Cookie").ok().flatten() else {
        return Vec::new();
    };
    let mut pending: Vec<(UnixMillis, String)> = header
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            let prefix = name.strip_prefix(COOKIE_PREFIX)?;
            let created = value
                .split_once('.')
                .and_then(|(payload, _)| URL_SAFE_NO_PAD.decode(payload).ok())
                .and_then(|json| serde_json::from_slice::<Pending>(&json).ok())
                .and_then(|p| keys.check(&p.state))
                .map_or(UnixMillis::from_millis(0), |issued| issued.created);
            Some((created, prefix.to_owned()))
        })
        .collect();
    pending.sort_by_key(|(created, _)| std::cmp::Reverse(*created));
    pending
        .iter()
        .skip(MAX_PENDING.saturating_sub(1))
        .map(|(_, prefix)| {
            format!(
                "{COOKIE_PREFIX}{prefix}=; Path={path}; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
            )
        })
        .collect()
}

/// `target` (a local path) within [`MAX_TARGET_BYTES`]: whole, else without its query, else
/// `/`.
pub fn bounded_target(target: String) -> String {
    if target.len() <= MAX_TARGET_BYTES {
        return target;
    }
    match target.split_once('?') {
        Some((path, _)) if path.len() <= MAX_TARGET_BYTES => path.to_owned(),
        _ => "/".to_owned(),
    }
}

/// Records `state` as used at `now` (and forgets states too old to be accepted anyway):
/// `true` the first time, `false` when it was used before.
///
/// # Errors
/// [`GatewayError::Unavailable`] when D1 fails.
pub async fn consume(env: &Env, state: &str, now: UnixMillis) -> Result<bool, GatewayError> {
    let db = env.d1("DB")?;
    let results = db
        .batch(vec![
            db.prepare("DELETE FROM login_used WHERE used_ms < ?1")
                .bind(&[JsValue::from(now.saturating_sub(TTL).millis() as f64)])?,
            db.prepare(
                "INSERT INTO login_used (state, used_ms) VALUES (?1, ?2) \
                 ON CONFLICT (state) DO NOTHING",
            )
            .bind(&[state.into(), JsValue::from(now.millis() as f64)])?,
        ])
        .await?;
    let changes = results
        .get(1)
        .and_then(|r| r.meta().ok().flatten())
        .and_then(|m| m.changes);
    Ok(changes == Some(1))
}

/// Compares without an early exit.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

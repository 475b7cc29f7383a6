//! RS256 signing keys, published as JWKs the way Entra publishes them.

use std::sync::{Arc, Mutex, PoisonError};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey, RsaPublicKey};
use sha2::{Digest, Sha256};

/// The modulus size of every key (Entra's keys are 2048-bit).
pub const KEY_BITS: usize = 2048;

/// Whose keys: every tenant of Entra's global service signs with the same keys, but the
/// emulator's partner tenant has keys of its own, so a test can tell a token signed for one
/// tenant from one signed for the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Sequence {
    /// The fixture tenant's keys (and those of every other emulator's fixture tenant).
    Home,
    /// The partner tenant's keys.
    Partner,
}

/// Every key made so far in this process, per [`Sequence`], in order; see [`nth_key`].
static SEQUENCES: Mutex<[Vec<Arc<SigningKey>>; 2]> = Mutex::new([Vec::new(), Vec::new()]);

/// The `n`th key of a sequence shared by every emulator in the process: each emulator signs
/// with key 0 first and takes key `n` at its `n`th rotation. A 2048-bit key takes a few
/// hundred milliseconds even optimized, and a test run starts many emulators; sharing keys
/// across emulators is also what Entra does (its signing keys are common to all tenants).
pub(crate) fn nth_key(sequence: Sequence, n: usize) -> Result<Arc<SigningKey>, rsa::Error> {
    let mut sequences = SEQUENCES.lock().unwrap_or_else(PoisonError::into_inner);
    let index = match sequence {
        Sequence::Home => 0,
        Sequence::Partner => 1,
    };
    let keys = sequences.get_mut(index).ok_or(rsa::Error::Internal)?;
    // Generated under the lock: a test waiting here would otherwise make the same key.
    while keys.len() <= n {
        keys.push(Arc::new(SigningKey::generate()?));
    }
    match keys.get(n) {
        Some(key) => Ok(Arc::clone(key)),
        None => Err(rsa::Error::Internal),
    }
}

/// The key behind [`unpublished_key`].
static UNPUBLISHED: Mutex<Option<Arc<SigningKey>>> = Mutex::new(None);

/// A key that is not in the shared sequence, so no emulator ever publishes it.
pub(crate) fn unpublished_key() -> Result<Arc<SigningKey>, rsa::Error> {
    let mut key = UNPUBLISHED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = key.as_ref() {
        return Ok(Arc::clone(key));
    }
    let made = Arc::new(SigningKey::generate()?);
    *key = Some(Arc::clone(&made));
    Ok(made)
}

/// The key behind [`app_key`].
static APP_KEY: Mutex<Option<Arc<SigningKey>>> = Mutex::new(None);

/// The signing key of an app registration with its own key (what a claims-mapping policy
/// needs): not in the shared sequence, published only at the JWKS URI with `?appid=`.
pub(crate) fn app_key() -> Result<Arc<SigningKey>, rsa::Error> {
    let mut key = APP_KEY.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(key) = key.as_ref() {
        return Ok(Arc::clone(key));
    }
    let made = Arc::new(SigningKey::generate()?);
    *key = Some(Arc::clone(&made));
    Ok(made)
}

/// A private key with its key id and public parts, base64url-encoded.
pub(crate) struct SigningKey {
    kid: String,
    private: RsaPrivateKey,
    public: RsaPublicKey,
    n: String,
    e: String,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SigningKey")
            .field("kid", &self.kid)
            .finish()
    }
}

impl SigningKey {
    /// A fresh 2048-bit key. Its `kid` looks like Entra's (27 base64url characters, which
    /// there is the certificate's SHA-1 thumbprint): here the first 20 bytes of the SHA-256
    /// of the modulus.
    pub(crate) fn generate() -> Result<Self, rsa::Error> {
        let private = RsaPrivateKey::new(&mut rsa::rand_core::OsRng, KEY_BITS)?;
        let modulus = private.n().to_bytes_be();
        let digest = Sha256::digest(&modulus);
        let kid = URL_SAFE_NO_PAD.encode(digest.get(..20).unwrap_or_default());
        let e = URL_SAFE_NO_PAD.encode(private.e().to_bytes_be());
        Ok(Self {
            kid,
            n: URL_SAFE_NO_PAD.encode(modulus),
            e,
            public: private.to_public_key(),
            private,
        })
    }

    pub(crate) fn kid(&self) -> &str {
        &self.kid
    }

    /// The public key as a JWKS entry: `kty`, `use`, `kid`, `x5t` (= `kid`), `n`, `e`.
    pub(crate) fn jwk(&self) -> serde_json::Value {
        serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": self.n,
            "e": self.e,
        })
    }

    /// Whether `signature` is this key's RS256 signature of `signing_input`.
    pub(crate) fn verifies(&self, signing_input: &[u8], signature: &[u8]) -> bool {
        let hashed = Sha256::digest(signing_input);
        self.public
            .verify(Pkcs1v15Sign::new::<Sha256>(), &hashed, signature)
            .is_ok()
    }

    /// A compact JWS: `header` and `claims` as base64url JSON, signed with RSASSA-PKCS1-v1_5
    /// over SHA-256 whatever `header` says.
    pub(crate) fn sign_jwt(
        &self,
        header: &serde_json::Map<String, serde_json::Value>,
        claims: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<String, rsa::Error> {
        let header = URL_SAFE_NO_PAD.encode(serde_json::to_vec(header).unwrap_or_default());
        let claims = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
        let signing_input = format!("{header}.{claims}");
        let hashed = Sha256::digest(signing_input.as_bytes());
        let signature = self.private.sign(Pkcs1v15Sign::new::<Sha256>(), &hashed)?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }
}

#[cfg(test)]
mod tests {
    #![expect(
        clippy::print_stderr,
        reason = "test code: a failure panics; it reports on stderr"
    )]

    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn key_generation_is_fast_in_debug_builds() {
        // Prime search time varies a lot from key to key: average a few.
        const KEYS: u32 = 4;
        let started = Instant::now();
        for _ in 0..KEYS {
            SigningKey::generate().unwrap();
        }
        let per_key = started.elapsed() / KEYS;
        eprintln!("one {KEY_BITS}-bit key: {per_key:?} on average");
        // About 0.3 s with the root Cargo.toml's opt-level for num-bigint-dig, several
        // seconds without; the bound leaves room for a loaded machine.
        assert!(per_key < Duration::from_secs(2), "{per_key:?}");
    }

    #[test]
    fn kids_look_like_entra_kids() {
        let key = nth_key(Sequence::Home, 0).unwrap();
        assert_eq!(key.kid().len(), 27);
        assert!(key
            .kid()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_eq!(nth_key(Sequence::Home, 0).unwrap().kid(), key.kid());
        assert_ne!(nth_key(Sequence::Home, 1).unwrap().kid(), key.kid());
    }

    #[test]
    fn the_partner_tenant_signs_with_keys_of_its_own() {
        let home = nth_key(Sequence::Home, 0).unwrap();
        let partner = nth_key(Sequence::Partner, 0).unwrap();
        assert_ne!(home.kid(), partner.kid());
        assert_eq!(nth_key(Sequence::Partner, 0).unwrap().kid(), partner.kid());
    }
}

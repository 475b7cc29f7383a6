//! `edge-access keygen`: the gateway's signing key, as the private JWK `SESSION_SIGNING_KEY`
//! holds, with a self-signed certificate (`x5c`) for `/cdn-cgi/access/certs` when `openssl`
//! is on the PATH.

use std::io::Write as _;
use std::process::{Command, Stdio};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use rsa::pkcs8::{EncodePrivateKey, LineEnding};
use rsa::RsaPrivateKey;
use serde_json::Value;

/// A new 2048-bit key as a private JWK (with `x5c` when `with_cert` and openssl is present).
///
/// # Errors
/// A message when the key cannot be made.
pub fn signing_key(with_cert: bool) -> Result<Value, String> {
    let key = RsaPrivateKey::new(&mut rand_core::OsRng, 2048).map_err(|e| e.to_string())?;
    let mut jwk = edge_access_token::private_jwk(&key).map_err(|e| e.to_string())?;
    if with_cert {
        match certificate(&key) {
            Ok(der) => {
                if let Value::Object(map) = &mut jwk {
                    map.insert("x5c".into(), Value::from(vec![STANDARD.encode(der)]));
                }
            }
            Err(why) => {
                let mut stderr = std::io::stderr().lock();
                let _ = writeln!(stderr, "keygen: no certificate ({why}); /cdn-cgi/access/certs will publish the key only");
            }
        }
    }
    Ok(jwk)
}

/// A self-signed certificate for `key` (CN=edge-access, ten years), DER, made by `openssl`.
fn certificate(key: &RsaPrivateKey) -> Result<Vec<u8>, String> {
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| e.to_string())?;
    let dir = std::env::temp_dir().join(format!("edge-access-keygen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).map_err(|e| e.to_string())?;
    let key_file = dir.join("key.pem");
    std::fs::write(&key_file, pem.as_bytes()).map_err(|e| e.to_string())?;
    let output = Command::new("openssl")
        .args([
            "req",
            "-new",
            "-x509",
            "-sha256",
            "-days",
            "3650",
            "-subj",
            "/CN=edge-access",
            "-outform",
            "DER",
            "-key",
        ])
        .arg(&key_file)
        .stdin(Stdio::null())
        .output();
    let _ = std::fs::remove_dir_all(&dir);
    let output = output.map_err(|e| format!("openssl: {e}"))?;
    if !output.status.success() || output.stdout.is_empty() {
        return Err(format!(
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    Ok(output.stdout)
}

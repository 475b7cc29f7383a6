//! Service tokens (`service_tokens[]`): ids and secret hashes.

use alloc::format;

use crate::json::{boxed, Json, Path, Problems};
use crate::model::ServiceTokenConfig;

use super::Loader;

impl<'j> Loader<'j, '_> {
    pub(super) fn service_token(&mut self, v: &'j Json<'j>, path: &Path<'_>) {
        let Some(o) = self.object(
            v,
            path,
            &[
                "id",
                "name",
                "client_id",
                "client_secret_sha256",
                "duration",
            ],
            &["created_at", "updated_at", "last_seen_at", "expires_at"],
        ) else {
            return;
        };
        let text = |p: &mut Problems, key: &str| {
            o.required(key, path, p)
                .and_then(|v| p.nonempty(v, &path.key(key)))
        };
        let (id, name) = (text(&mut self.p, "id"), text(&mut self.p, "name"));
        let client_id = text(&mut self.p, "client_id");
        if o.get("client_secret").is_some() {
            self.p.add(
                &path.key("client_secret"),
                "secrets do not belong in the document: give `client_secret_sha256` (hex SHA-256 of the secret)",
            );
        }
        let hash = text(&mut self.p, "client_secret_sha256").and_then(|h| {
            let bytes = parse_sha256_hex(h);
            if bytes.is_none() {
                self.p.add(
                    &path.key("client_secret_sha256"),
                    "expected 64 hexadecimal characters (the SHA-256 of the client secret)",
                );
            }
            bytes
        });
        let (Some(id), Some(name), Some(client_id), Some(secret_sha256)) =
            (id, name, client_id, hash)
        else {
            return;
        };
        if self.service_tokens.iter().any(|t| *t.id == *id) {
            self.p.add(&path.key("id"), format!("duplicate id `{id}`"));
            return;
        }
        if self
            .service_tokens
            .iter()
            .any(|t| *t.client_id == *client_id)
        {
            self.p.add(
                &path.key("client_id"),
                format!("duplicate client_id `{client_id}`"),
            );
            return;
        }
        self.service_tokens.push(ServiceTokenConfig {
            id: boxed(id),
            name: boxed(name),
            client_id: boxed(client_id),
            secret_sha256,
        });
    }
}

/// 32 bytes from 64 hex digits.
pub(super) fn parse_sha256_hex(text: &str) -> Option<[u8; 32]> {
    let bytes = text.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    // Digits only: `u8::from_str_radix` would also take a sign (`+a`).
    if !bytes.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks(2).enumerate() {
        let hex = core::str::from_utf8(pair).ok()?;
        *out.get_mut(i)? = u8::from_str_radix(hex, 16).ok()?;
    }
    Some(out)
}

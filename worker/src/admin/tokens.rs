//! Admin API tokens: the `ADMIN_TOKENS` secret lists `name:scope:sha256` entries (separated
//! by whitespace or commas), scope `read` or `write` (which includes read), the hex SHA-256 of
//! the token. The tokens themselves are never stored; a presented token is hashed and compared
//! in constant time with every entry.

use sha2::{Digest, Sha256};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Read the configuration and its versions.
    Read,
    /// Read, and write versions and activate them.
    Write,
}

/// One admin token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AdminToken {
    /// Who writes with it (recorded as the author of the versions it writes).
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    sha256: [u8; 32],
}

impl AdminToken {
    /// An admin known by an Entra identity ([`super::roles`]), not by a token: it is never in
    /// the list [`find`] compares presented tokens with.
    pub fn for_identity(name: String, scope: Scope) -> AdminToken {
        AdminToken {
            name,
            scope,
            sha256: [0; 32],
        }
    }
}

/// The entries of `ADMIN_TOKENS`.
///
/// # Errors
///
/// An entry that is not `name:scope:sha256` (its position says which; never its text).
pub fn parse(text: &str) -> Result<Vec<AdminToken>, String> {
    text.split(|c: char| c.is_whitespace() || c == ',')
        .filter(|entry| !entry.is_empty())
        .enumerate()
        .map(|(i, entry)| {
            parse_entry(entry).ok_or_else(|| {
                format!(
                    "ADMIN_TOKENS entry {} is not `name:read|write:sha256-hex` \
                     (name: letters, digits, `.`, `_`, `-`, at most 64)",
                    i + 1
                )
            })
        })
        .collect()
}

fn parse_entry(entry: &str) -> Option<AdminToken> {
    let mut parts = entry.split(':');
    let (name, scope, hash) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || name.is_empty()
        || name.len() > 64
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return None;
    }
    let scope = match scope {
        "read" => Scope::Read,
        "write" => Scope::Write,
        _ => return None,
    };
    if hash.len() != 64 || !hash.chars().all(|c| c.is_ascii_hexdigit()) {
        return None;
    }
    let mut sha256 = [0u8; 32];
    for (byte, pair) in sha256.iter_mut().zip(hash.as_bytes().chunks(2)) {
        let pair = std::str::from_utf8(pair).ok()?;
        *byte = u8::from_str_radix(pair, 16).ok()?;
    }
    Some(AdminToken {
        name: name.to_owned(),
        scope,
        sha256,
    })
}

/// The entry `presented` is the token of: every entry is compared, each in constant time.
pub fn find<'t>(tokens: &'t [AdminToken], presented: &str) -> Option<&'t AdminToken> {
    let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let mut found = None;
    for token in tokens {
        let difference = token
            .sha256
            .iter()
            .zip(digest.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if difference == 0 && found.is_none() {
            found = Some(token);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(token: &str) -> String {
        Sha256::digest(token.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    #[test]
    fn a_listed_token_is_found_with_its_scope() {
        let text = format!(
            "ci:write:{} ,\n reader:read:{}",
            hex("write-token"),
            hex("read-token")
        );
        let tokens = parse(&text).unwrap();
        assert_eq!(tokens.len(), 2);
        let ci = find(&tokens, "write-token").unwrap();
        assert_eq!((ci.name.as_str(), ci.scope), ("ci", Scope::Write));
        let reader = find(&tokens, "read-token").unwrap();
        assert_eq!(
            (reader.name.as_str(), reader.scope),
            ("reader", Scope::Read)
        );
        assert!(find(&tokens, "other").is_none());
        assert!(find(&tokens, "").is_none());
        assert!(
            find(&tokens, &hex("write-token")).is_none(),
            "the hash is not the token"
        );
    }

    #[test]
    fn malformed_entries_are_refused_without_echoing_them() {
        let good = hex("t");
        for bad in [
            "ci:write".to_owned(),
            format!("ci:admin:{good}"),
            format!(":write:{good}"),
            format!("c i:write:{good}"),
            format!("ci:write:{good}:extra"),
            format!("ci:write:{}", &good[..62]),
            format!("ci:write:{}zz", &good[..62]),
            format!("{}:write:{good}", "n".repeat(65)),
            format!("ci:write:{}é", &good[..63]),
        ] {
            let error = parse(&bad).unwrap_err();
            assert!(error.contains("entry 1"), "{bad}: {error}");
            assert!(!error.contains(&good), "{bad}: {error}");
        }
        assert_eq!(parse("  ,\n").unwrap(), []);
    }
}

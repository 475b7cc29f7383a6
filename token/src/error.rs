//! Why a token or identity was refused. Messages are for logs, never for clients.

use std::fmt;

/// A token that must be refused.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum TokenError {
    /// Not a compact JWS, or undecodable parts.
    Malformed(String),
    /// The header names another algorithm than the configured one.
    Algorithm {
        /// What the header said (untrusted).
        found: String,
    },
    /// The header has `crit` (RFC 7515 §4.1.11): it asks for extensions edge-access does not
    /// understand, so the token must be refused.
    CriticalHeader,
    /// No `kid` in the header.
    MissingKeyId,
    /// No published key has this `kid`.
    UnknownKey {
        /// The header's `kid` (untrusted).
        kid: String,
    },
    /// The signature does not verify.
    BadSignature,
    /// The key could not be used (bad modulus, too short).
    BadKey(String),
    /// `ver` is missing or not `1.0` / `2.0`.
    Version,
    /// `iss` is not the issuer for the token's version.
    Issuer,
    /// `tid` is missing or not the configured directory.
    Tenant,
    /// `aud` is not one of the accepted audiences.
    Audience,
    /// `exp` is missing or in the past (beyond the leeway).
    Expired,
    /// `nbf` (or `iat`) is in the future (beyond the leeway).
    NotYetValid,
    /// `nonce` does not match the sign-in request.
    Nonce,
    /// The verifier itself failed (e.g. WebCrypto threw).
    Verifier(String),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::Malformed(why) => write!(f, "malformed token: {why}"),
            TokenError::Algorithm { found } => {
                write!(
                    f,
                    "token algorithm `{}` is not the configured RS256",
                    clip(found)
                )
            }
            TokenError::CriticalHeader => {
                f.write_str("token header has `crit`: extensions that are not understood")
            }
            TokenError::MissingKeyId => f.write_str("token header has no `kid`"),
            TokenError::UnknownKey { kid } => write!(f, "no signing key with kid `{}`", clip(kid)),
            TokenError::BadSignature => f.write_str("token signature does not verify"),
            TokenError::BadKey(why) => write!(f, "unusable signing key: {why}"),
            TokenError::Version => f.write_str("token `ver` is not 1.0 or 2.0"),
            TokenError::Issuer => f.write_str("token issuer is not the directory's"),
            TokenError::Tenant => f.write_str("token `tid` is not the configured directory"),
            TokenError::Audience => f.write_str("token audience is not accepted"),
            TokenError::Expired => f.write_str("token has expired"),
            TokenError::NotYetValid => f.write_str("token is not valid yet"),
            TokenError::Nonce => f.write_str("token nonce does not match the sign-in"),
            TokenError::Verifier(why) => write!(f, "signature verifier failed: {why}"),
        }
    }
}

impl std::error::Error for TokenError {}

/// A verified token that does not yield a usable identity.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IdentityError {
    /// An app-only token (client credentials: `idtyp` `app`, or `oid` equal to `sub`): an
    /// application acting as itself, not a user, so no user identity.
    AppOnly,
    /// The token says the user has too many groups to list (`_claim_names` / `hasgroups`);
    /// they must be read from Microsoft Graph. Never treated as "no groups".
    GroupsOverage,
    /// The token carries neither `groups` nor an overage marker: the registration emits no
    /// group claims, emits them as `roles`, or the user is in no group — which the token
    /// cannot tell apart. The groups must be read from Microsoft Graph; never treated as "no
    /// groups".
    GroupsNotInToken,
    /// A `groups` entry is not a GUID: the registration emits groups by name
    /// (`sAMAccountName`, `NetBIOS\name`, display names), which `azureAD` rules cannot
    /// match. A configuration problem of the registration, not of the user.
    BadGroup(String),
    /// A claim has an unexpected type.
    BadClaim(&'static str),
}

impl fmt::Display for IdentityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IdentityError::AppOnly => {
                f.write_str("app-only token (an application without a user): not a user")
            }
            IdentityError::GroupsOverage => {
                f.write_str("groups overage: the token does not list the user's groups")
            }
            IdentityError::GroupsNotInToken => {
                f.write_str("the token has no groups claim: the groups are not in the token")
            }
            IdentityError::BadGroup(g) => write!(
                f,
                "group `{}` is not a GUID: set the app registration's group claims to emit \
                 Group IDs",
                clip(g)
            ),
            IdentityError::BadClaim(name) => write!(f, "claim `{name}` has an unexpected type"),
        }
    }
}

impl std::error::Error for IdentityError {}

/// Untrusted text in a log line: bounded and printable.
pub(crate) fn clip(text: &str) -> String {
    text.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

#![doc = include_str!("../README.md")]
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod app;
mod entra;
mod error;
mod identity;
mod jwks;
#[cfg(feature = "native-rsa")]
mod native;

pub use app::{rsa_thumbprint_hex, AppClaims, UnverifiedAppToken, VerifiedAppToken};
pub use entra::{
    Expectations, SignatureVerifier, TokenVersion, UnverifiedEntraToken, VerifiedEntraToken,
    DEFAULT_LEEWAY_SECS,
};
pub use error::{IdentityError, TokenError};
pub use identity::{identity_from_claims, identity_without_groups};
pub use jwks::{Jwks, RsaJwk};
#[cfg(feature = "keygen")]
pub use native::generate_signing_jwk;
#[cfg(feature = "native-rsa")]
pub use native::{private_jwk, RsaVerifier};

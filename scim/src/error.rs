//! SCIM errors: the HTTP status and `scimType` a server answers with (RFC 7644 §3.12).

use std::fmt;

/// The `scimType` of a 400 error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScimType {
    /// The filter syntax is invalid or uses something unsupported.
    InvalidFilter,
    /// The request body is not a valid SCIM message.
    InvalidSyntax,
    /// A path does not name an attribute that can be operated on.
    InvalidPath,
    /// A value does not fit its attribute.
    InvalidValue,
    /// The path has no target (e.g. remove without a path).
    NoTarget,
    /// A value that must be unique is already taken (status 409).
    Uniqueness,
    /// An attribute the client may not change (`id`, `meta`).
    Mutability,
    /// More results than the server returns at once.
    TooMany,
}

impl ScimType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            ScimType::InvalidFilter => "invalidFilter",
            ScimType::InvalidSyntax => "invalidSyntax",
            ScimType::InvalidPath => "invalidPath",
            ScimType::InvalidValue => "invalidValue",
            ScimType::NoTarget => "noTarget",
            ScimType::Uniqueness => "uniqueness",
            ScimType::Mutability => "mutability",
            ScimType::TooMany => "tooMany",
        }
    }
}

/// A request that must be answered with a SCIM error (400, or 409 for `uniqueness`) and left
/// without effect.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScimError {
    /// The `scimType`.
    pub scim_type: ScimType,
    /// The `detail`, naming the offending input.
    pub detail: String,
}

impl ScimError {
    /// An error of `scim_type` whose detail names the offending input.
    pub fn new(scim_type: ScimType, detail: impl Into<String>) -> ScimError {
        ScimError {
            scim_type,
            detail: detail.into(),
        }
    }

    /// The HTTP status: 409 for `uniqueness`, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self.scim_type {
            ScimType::Uniqueness => 409,
            _ => 400,
        }
    }

    /// The error body (`application/scim+json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
            "status": self.status().to_string(),
            "scimType": self.scim_type.as_str(),
            "detail": self.detail,
        })
    }
}

impl fmt::Display for ScimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.scim_type.as_str(), self.detail)
    }
}

impl std::error::Error for ScimError {}

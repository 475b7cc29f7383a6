//! SCIM 2.0 as Entra ID provisioning speaks it, parsed into types before anything touches
//! storage: filters (`eq`, `and`, value paths such as `emails[type eq "work"].value`) and PATCH
//! requests in both of Entra's dialects — the default one (`Replace`, `"active": "False"`) and
//! `aadOptscim062020` (lowercase ops, booleans, path-less replace with dotted and URN-prefixed
//! keys, `members[value eq "…"]` removes). Bodies are parsed by [`parse_body`], which refuses
//! an attribute sent twice in one object (without case, as SCIM names attributes). Every error
//! carries the SCIM `scimType` to answer with. What a GET returns follows [`Projection`]
//! (`attributes`, `excludedAttributes`).
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod apply;
mod body;
mod error;
mod filter;
mod manager;
mod members;
mod patch;
mod path;
mod projection;
mod resource;

pub use apply::{apply, Changes};
pub use body::parse_body;
pub use error::{ScimError, ScimType};
pub use filter::{Comparison, Filter};
pub use members::{member_ids, split_members, MemberChange};
pub use patch::{Operation, OperationKind, PatchRequest};
pub use path::{AttrPath, ValueFilter};
pub use projection::{Projection, MAX_ATTRIBUTES};
pub use resource::{
    active_value, attribute, conditions, fold, object_id, Condition, GroupRecord, Page,
    ResourceKind, UserRecord,
};

/// The PatchOp message schema.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The enterprise User extension.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

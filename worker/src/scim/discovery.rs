//! The discovery documents (RFC 7643 §5–7): what this server supports, truthfully — PATCH,
//! filters (`eq`, `and`, at most 1,000 results a page), no bulk, sort, ETags or password
//! changes; and the attributes it looks at.

use edge_access_scim::{ENTERPRISE_USER, GROUP_SCHEMA, USER_SCHEMA};
use serde_json::{json, Value};

/// The most resources one list page returns.
pub const MAX_RESULTS: u64 = 1000;

const LIST: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";

fn list(resources: Vec<Value>) -> Value {
    json!({
        "schemas": [LIST],
        "totalResults": resources.len(),
        "startIndex": 1,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    })
}

pub fn config(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"],
        "documentationUri": "https://github.com/edge-access/edge-access#scim",
        "patch": { "supported": true },
        "bulk": { "supported": false, "maxOperations": 0, "maxPayloadSize": 0 },
        "filter": { "supported": true, "maxResults": MAX_RESULTS },
        "changePassword": { "supported": false },
        "sort": { "supported": false },
        "etag": { "supported": false },
        "authenticationSchemes": [{
            "type": "oauthbearertoken",
            "name": "Bearer token",
            "description": "The SCIM_TOKEN secret, sent as `Authorization: Bearer <token>`",
            "primary": true,
        }],
        "meta": { "resourceType": "ServiceProviderConfig",
                  "location": format!("{base}/ServiceProviderConfig") },
    })
}

fn user_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User", "name": "User", "endpoint": "/Users",
        "description": "People who sign in through the identity provider",
        "schema": USER_SCHEMA,
        "schemaExtensions": [{ "schema": ENTERPRISE_USER, "required": false }],
        "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/User") },
    })
}

fn group_type(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "Group", "name": "Group", "endpoint": "/Groups",
        "description": "Groups of users and of groups; policies name them by externalId (Entra's object id)",
        "schema": GROUP_SCHEMA,
        "meta": { "resourceType": "ResourceType", "location": format!("{base}/ResourceTypes/Group") },
    })
}

pub fn resource_types(base: &str) -> Value {
    list(vec![user_type(base), group_type(base)])
}

pub fn resource_type(base: &str, name: &str) -> Option<Value> {
    match name {
        "User" => Some(user_type(base)),
        "Group" => Some(group_type(base)),
        _ => None,
    }
}

fn attribute(name: &str, kind: &str, case_exact: bool, uniqueness: &str, required: bool) -> Value {
    json!({
        "name": name, "type": kind, "multiValued": false, "required": required,
        "caseExact": case_exact, "mutability": "readWrite", "returned": "default",
        "uniqueness": uniqueness,
    })
}

fn user_schema(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": USER_SCHEMA, "name": "User", "description": "User account",
        "attributes": [
            attribute("userName", "string", false, "server", true),
            attribute("externalId", "string", true, "none", false),
            attribute("displayName", "string", false, "none", false),
            // Required here: a user is always enabled or disabled, so removing `active` is
            // refused (`mutability`) rather than guessed at.
            attribute("active", "boolean", false, "none", true),
            {
                "name": "name", "type": "complex", "multiValued": false, "required": false,
                "mutability": "readWrite", "returned": "default",
                "subAttributes": [
                    attribute("formatted", "string", false, "none", false),
                    attribute("familyName", "string", false, "none", false),
                    attribute("givenName", "string", false, "none", false),
                ],
            },
            {
                "name": "emails", "type": "complex", "multiValued": true, "required": false,
                "mutability": "readWrite", "returned": "default",
                "subAttributes": [
                    attribute("value", "string", false, "none", false),
                    attribute("type", "string", false, "none", false),
                    attribute("primary", "boolean", false, "none", false),
                ],
            },
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{USER_SCHEMA}") },
    })
}

fn group_schema(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": GROUP_SCHEMA, "name": "Group", "description": "Group",
        "attributes": [
            attribute("displayName", "string", false, "server", true),
            attribute("externalId", "string", true, "none", false),
            {
                "name": "members", "type": "complex", "multiValued": true, "required": false,
                "mutability": "readWrite", "returned": "default",
                "subAttributes": [
                    { "name": "value", "type": "string", "multiValued": false, "required": false,
                      "caseExact": false, "mutability": "immutable", "returned": "default",
                      "uniqueness": "none" },
                    { "name": "type", "type": "string", "multiValued": false, "required": false,
                      "caseExact": false, "mutability": "immutable", "returned": "default",
                      "uniqueness": "none", "canonicalValues": ["User", "Group"] },
                ],
            },
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{GROUP_SCHEMA}") },
    })
}

fn enterprise_schema(base: &str) -> Value {
    json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Schema"],
        "id": ENTERPRISE_USER, "name": "EnterpriseUser", "description": "Enterprise user (stored as sent)",
        "attributes": [
            attribute("employeeNumber", "string", false, "none", false),
            attribute("department", "string", false, "none", false),
            // RFC 7643 §4.3: complex, whatever shape it is sent in (Entra sends the bare id and
            // reads `{"value": id}` back).
            {
                "name": "manager", "type": "complex", "multiValued": false, "required": false,
                "mutability": "readWrite", "returned": "default",
                "subAttributes": [
                    attribute("value", "string", false, "none", false),
                ],
            },
        ],
        "meta": { "resourceType": "Schema", "location": format!("{base}/Schemas/{ENTERPRISE_USER}") },
    })
}

pub fn schemas(base: &str) -> Value {
    list(vec![
        user_schema(base),
        group_schema(base),
        enterprise_schema(base),
    ])
}

pub fn schema(base: &str, urn: &str) -> Option<Value> {
    [
        user_schema(base),
        group_schema(base),
        enterprise_schema(base),
    ]
    .into_iter()
    .find(|s| {
        s.get("id")
            .and_then(Value::as_str)
            .is_some_and(|id| id.eq_ignore_ascii_case(urn))
    })
}

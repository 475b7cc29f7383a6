//! Users and groups as a server keeps them: a body checked and normalised into the columns
//! filters and uniqueness need plus the resource to store, and filters turned into conditions
//! on those columns.
//!
//! Attributes are kept as sent — unknown ones and unknown schema URNs included — except that
//! `id` and `meta` belong to the server, explicit `null`s mean "no value" and are dropped,
//! `active` is a boolean whichever dialect sent it, a user's `manager` is the enterprise
//! extension's `{"value": id}` however it was sent ([`crate::manager`]), and `schemas` lists
//! the core schema and every extension the resource holds an object of.

use serde_json::{Map, Value};

use crate::error::{ScimError, ScimType};
use crate::filter::Filter;
use crate::{GROUP_SCHEMA, USER_SCHEMA};

/// What a stored user is looked up by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// `userName` as sent.
    pub user_name: String,
    /// `userName` folded for uniqueness and filters ([`fold`]).
    pub user_name_key: String,
    /// `externalId`, case-exact.
    pub external_id: Option<String>,
    /// `externalId` when it is a GUID, lowercase: the Entra object id the user is bound to
    /// (the `oid` of their tokens), when the provisioning app maps `objectId` to `externalId`.
    pub object_id: Option<String>,
    /// `emails[type eq "work"].value`, folded.
    pub work_email_key: Option<String>,
    /// `displayName`, folded.
    pub display_name_key: Option<String>,
    /// `active` (true when absent).
    pub active: bool,
    /// The resource to store: the body without `id`, `meta` and `null`s.
    pub resource: Map<String, Value>,
}

/// What a stored group is looked up by; members are kept apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRecord {
    /// `displayName` as sent.
    pub display_name: String,
    /// `displayName` folded for uniqueness and filters.
    pub display_name_key: String,
    /// `externalId`, case-exact (Entra sends the group's object id).
    pub external_id: Option<String>,
    /// The member ids, in order, without duplicates.
    pub members: Vec<String>,
    /// The resource to store: the body without `id`, `meta`, `members` and `null`s.
    pub resource: Map<String, Value>,
}

/// The folding used for case-insensitive attributes: ASCII lowercase, as SQLite's `lower()`
/// and `NOCASE` fold, so the server and its database agree.
pub fn fold(text: &str) -> String {
    text.to_ascii_lowercase()
}

fn invalid(detail: String) -> ScimError {
    ScimError::new(ScimType::InvalidValue, detail)
}

/// Checks the body's `schemas` names `core` and returns the body as an object.
fn object_with_schema<'a>(
    body: &'a Value,
    core: &str,
) -> Result<&'a Map<String, Value>, ScimError> {
    let Value::Object(object) = body else {
        return Err(ScimError::new(
            ScimType::InvalidSyntax,
            "the body must be a JSON object",
        ));
    };
    let schemas = attribute(object, "schemas").and_then(Value::as_array);
    if !schemas.is_some_and(|s| {
        s.iter()
            .any(|u| u.as_str().is_some_and(|u| u.eq_ignore_ascii_case(core)))
    }) {
        return Err(ScimError::new(
            ScimType::InvalidSyntax,
            format!("`schemas` must contain `{core}`"),
        ));
    }
    Ok(object)
}

/// The body without server-owned attributes and explicit nulls (nested ones included).
fn stored(object: &Map<String, Value>, also_drop: &[&str]) -> Map<String, Value> {
    fn clean(value: &Value) -> Option<Value> {
        match value {
            Value::Null => None,
            Value::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| clean(v).map(|v| (k.clone(), v)))
                    .collect(),
            )),
            Value::Array(items) => Some(Value::Array(items.iter().filter_map(clean).collect())),
            other => Some(other.clone()),
        }
    }
    object
        .iter()
        .filter(|(k, _)| {
            !k.eq_ignore_ascii_case("id")
                && !k.eq_ignore_ascii_case("meta")
                && !also_drop.iter().any(|d| k.eq_ignore_ascii_case(d))
        })
        .filter_map(|(k, v)| clean(v).map(|v| (k.clone(), v)))
        .collect()
}

/// Makes `schemas` list `core` (first, when it was missing) and the URN of every extension
/// object the resource holds: the server keeps it, a PATCH cannot change it, and a resource
/// stored with a broken one is repaired instead of refused (which would stop its updates).
fn list_schemas(resource: &mut Map<String, Value>, core: &str) {
    let key = resource
        .keys()
        .find(|k| k.eq_ignore_ascii_case("schemas"))
        .cloned()
        .unwrap_or_else(|| "schemas".into());
    let mut schemas: Vec<Value> = match resource.get(&key) {
        Some(Value::Array(items)) => items.iter().filter(|s| s.is_string()).cloned().collect(),
        _ => Vec::new(),
    };
    let listed = |schemas: &[Value], urn: &str| {
        schemas
            .iter()
            .any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(urn)))
    };
    if !listed(&schemas, core) {
        schemas.insert(0, Value::String(core.to_owned()));
    }
    for (name, value) in resource.iter() {
        if value.is_object() && crate::apply::is_extension_urn(name) && !listed(&schemas, name) {
            schemas.push(Value::String(name.clone()));
        }
    }
    resource.insert(key, Value::Array(schemas));
}

/// The value of attribute `name` (any case).
pub fn attribute<'a>(object: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    object
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
        .filter(|v| !v.is_null())
}

fn optional_string(object: &Map<String, Value>, name: &str) -> Result<Option<String>, ScimError> {
    match attribute(object, name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("`{name}` must be a string"))),
    }
}

fn required_string(object: &Map<String, Value>, name: &str) -> Result<String, ScimError> {
    match optional_string(object, name)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(invalid(format!(
            "`{name}` is required and must not be empty"
        ))),
    }
}

/// `active` as Entra's dialects send it: a boolean, or `"True"`/`"False"`.
pub fn active_value(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

impl UserRecord {
    /// Checks a User body (create or replace).
    ///
    /// # Errors
    /// `invalidSyntax` for a body that is not a User, `invalidValue` naming the attribute
    /// that does not fit.
    pub fn from_body(body: &Value) -> Result<UserRecord, ScimError> {
        let object = object_with_schema(body, USER_SCHEMA)?;
        UserRecord::from_resource(stored(object, &[]))
    }

    /// Checks a stored-shape resource (after a PATCH): the same rules as [`from_body`].
    ///
    /// [`from_body`]: UserRecord::from_body
    ///
    /// # Errors
    /// As [`UserRecord::from_body`].
    pub fn from_resource(mut resource: Map<String, Value>) -> Result<UserRecord, ScimError> {
        resource = stored(&resource, &[]);
        crate::manager::normalise(&mut resource)?;
        list_schemas(&mut resource, USER_SCHEMA);
        let user_name = required_string(&resource, "userName")?;
        let external_id = optional_string(&resource, "externalId")?;
        let display_name = optional_string(&resource, "displayName")?;
        let active = match attribute(&resource, "active") {
            None => true,
            Some(v) => active_value(v).ok_or_else(|| {
                invalid("`active` must be a boolean (or \"True\"/\"False\")".into())
            })?,
        };
        let key = resource
            .keys()
            .find(|k| k.eq_ignore_ascii_case("active"))
            .cloned()
            .unwrap_or_else(|| "active".into());
        resource.insert(key, Value::Bool(active));
        let work_email_key = work_email(&resource)?.map(|e| fold(&e));
        Ok(UserRecord {
            user_name_key: fold(&user_name),
            user_name,
            object_id: external_id.as_deref().and_then(object_id),
            external_id,
            work_email_key,
            display_name_key: display_name.map(|d| fold(&d)),
            active,
            resource,
        })
    }
}

impl UserRecord {
    /// A stored user as it is served and patched: the resource [`UserRecord::from_resource`]
    /// makes of it (`manager` complex, `schemas` complete), so a user stored before those rules
    /// reads back as Entra expects — or the resource unchanged when it does not pass those
    /// checks (served as stored rather than not at all).
    pub fn normalised(resource: Map<String, Value>) -> Map<String, Value> {
        match UserRecord::from_resource(resource.clone()) {
            Ok(record) => record.resource,
            Err(_) => resource,
        }
    }

    /// Checks a User body that replaces `stored` (PUT). A body without `active` keeps the
    /// stored user's (RFC 7644 §3.5.1 lets a server keep what a replacement does not assert):
    /// leaving `active` out never re-enables a disabled user.
    ///
    /// # Errors
    /// As [`UserRecord::from_body`].
    pub fn replacing(body: &Value, stored: &Map<String, Value>) -> Result<UserRecord, ScimError> {
        let mut record = UserRecord::from_body(body)?;
        let asserted = body
            .as_object()
            .and_then(|b| attribute(b, "active"))
            .is_some();
        if !asserted {
            record.active = attribute(stored, "active")
                .and_then(active_value)
                .unwrap_or(true);
            let key = record
                .resource
                .keys()
                .find(|k| k.eq_ignore_ascii_case("active"))
                .cloned()
                .unwrap_or_else(|| "active".into());
            record.resource.insert(key, Value::Bool(record.active));
        }
        Ok(record)
    }

    /// Checks that an active user is bound to an Entra object id: `externalId` is the user's
    /// `objectId`, so the people who sign in (keyed by their tokens' `oid`) are found. A server
    /// that revokes sessions on deprovisioning needs it — a user it cannot bind would be one it
    /// cannot deprovision. An inactive user passes: refusing to store a disable would keep the
    /// user active.
    ///
    /// # Errors
    /// `invalidValue` naming `externalId` and the mapping that sets it.
    pub fn check_bound(&self) -> Result<(), ScimError> {
        if self.object_id.is_some() || !self.active {
            return Ok(());
        }
        let found = match &self.external_id {
            Some(id) => format!("`{id}`, not a GUID"),
            None => "none".to_owned(),
        };
        Err(invalid(format!(
            "`externalId` must be the user's Entra object id (a GUID) for deprovisioning to \
             find them: map `objectId` to `externalId` in the provisioning app; found {found}"
        )))
    }
}

/// `text` as an Entra object id: a GUID (`8-4-4-4-12` hex digits), lowercase.
pub fn object_id(text: &str) -> Option<String> {
    let groups: Vec<&str> = text.split('-').collect();
    let shaped = groups.len() == 5
        && groups.iter().zip([8, 4, 4, 4, 12]).all(|(group, length)| {
            group.len() == length && group.bytes().all(|b| b.is_ascii_hexdigit())
        });
    shaped.then(|| text.to_ascii_lowercase())
}

/// Checks `emails` (objects with a string `value`, no two of the same `type`) and returns the
/// work address.
fn work_email(resource: &Map<String, Value>) -> Result<Option<String>, ScimError> {
    let Some(emails) = attribute(resource, "emails") else {
        return Ok(None);
    };
    let Value::Array(emails) = emails else {
        return Err(invalid("`emails` must be an array".into()));
    };
    let mut types: Vec<String> = Vec::new();
    let mut work = None;
    for (i, email) in emails.iter().enumerate() {
        let Value::Object(email) = email else {
            return Err(invalid(format!("`emails[{i}]` must be an object")));
        };
        let value = match attribute(email, "value") {
            Some(Value::String(v)) => v,
            _ => return Err(invalid(format!("`emails[{i}].value` must be a string"))),
        };
        match attribute(email, "type") {
            None => {}
            Some(Value::String(t)) => {
                let t = fold(t);
                if types.contains(&t) {
                    return Err(invalid(format!("`emails` has two entries of type `{t}`")));
                }
                if t == "work" {
                    work = Some(value.clone());
                }
                types.push(t);
            }
            Some(_) => return Err(invalid(format!("`emails[{i}].type` must be a string"))),
        }
    }
    Ok(work)
}

impl GroupRecord {
    /// Checks a Group body (create or replace).
    ///
    /// # Errors
    /// `invalidSyntax` for a body that is not a Group, `invalidValue` naming the attribute.
    pub fn from_body(body: &Value) -> Result<GroupRecord, ScimError> {
        let object = object_with_schema(body, GROUP_SCHEMA)?;
        GroupRecord::from_resource(stored(object, &[]))
    }

    /// Checks a stored-shape resource with its `members` (after a PATCH).
    ///
    /// # Errors
    /// As [`GroupRecord::from_body`].
    pub fn from_resource(mut resource: Map<String, Value>) -> Result<GroupRecord, ScimError> {
        list_schemas(&mut resource, GROUP_SCHEMA);
        let display_name = required_string(&resource, "displayName")?;
        let external_id = optional_string(&resource, "externalId")?;
        let members = match attribute(&resource, "members") {
            None => Vec::new(),
            Some(Value::Array(items)) => {
                let mut ids: Vec<String> = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    match item.as_object().and_then(|m| attribute(m, "value")) {
                        Some(Value::String(id)) if !id.is_empty() => {
                            if !ids.contains(id) {
                                ids.push(id.clone());
                            }
                        }
                        _ => {
                            return Err(invalid(format!(
                                "`members[{i}].value` must be a member id"
                            )))
                        }
                    }
                }
                ids
            }
            Some(_) => return Err(invalid("`members` must be an array".into())),
        };
        Ok(GroupRecord {
            display_name_key: fold(&display_name),
            display_name,
            external_id,
            members,
            resource: stored(&resource, &["members"]),
        })
    }
}

/// A column a filter can compare, with the value to compare it to (already folded where the
/// attribute is case-insensitive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// `id eq` (server ids are lowercase GUIDs; compared folded).
    Id(String),
    /// `userName eq`, folded.
    UserName(String),
    /// `externalId eq`, case-exact.
    ExternalId(String),
    /// `emails[type eq "work"].value eq`, folded.
    WorkEmail(String),
    /// `displayName eq`, folded.
    DisplayName(String),
    /// `active eq`.
    Active(bool),
    /// `members[value eq "…"]` (also `members.value eq` and `members eq`): the group has
    /// this direct member (ids folded).
    Member(String),
}

/// Which resource a filter is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    /// `/Users`.
    User,
    /// `/Groups`.
    Group,
}

impl ResourceKind {
    /// The core schema URN.
    pub fn schema(self) -> &'static str {
        match self {
            ResourceKind::User => USER_SCHEMA,
            ResourceKind::Group => GROUP_SCHEMA,
        }
    }

    /// `User` or `Group`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::User => "User",
            ResourceKind::Group => "Group",
        }
    }
}

/// The most comparisons one filter may join.
pub const MAX_CONDITIONS: usize = 10;

/// Turns a filter into conditions on stored columns.
///
/// # Errors
/// `invalidFilter` for an attribute that cannot be filtered on (naming it) or a value of the
/// wrong type.
pub fn conditions(filter: &Filter, kind: ResourceKind) -> Result<Vec<Condition>, ScimError> {
    let bad = |why: String| ScimError::new(ScimType::InvalidFilter, why);
    if filter.all.len() > MAX_CONDITIONS {
        return Err(bad(format!(
            "more than {MAX_CONDITIONS} comparisons joined with `and`"
        )));
    }
    filter
        .all
        .iter()
        .map(|c| {
            let path = &c.path;
            if let Some(urn) = &path.urn {
                if !urn.eq_ignore_ascii_case(kind.schema()) {
                    return Err(bad(format!(
                        "filtering on `{urn}` attributes is not supported"
                    )));
                }
            }
            let string = || match &c.value {
                Value::String(s) => Ok(s.clone()),
                other => Err(bad(format!(
                    "`{}` must be compared with a string, not `{other}`",
                    path.attr
                ))),
            };
            let name = path.attr.to_ascii_lowercase();
            // `members eq` compares the members' `value` (RFC 7643 §2.4: the sub-attribute a
            // multi-valued attribute's primary value is kept in).
            let member_value = path.filter.is_none()
                && path
                    .sub_attr
                    .as_deref()
                    .is_none_or(|s| s.eq_ignore_ascii_case("value"));
            let work_email = path.filter.as_ref().is_some_and(|f| {
                f.attr.eq_ignore_ascii_case("type") && f.value.eq_ignore_ascii_case("work")
            }) && path
                .sub_attr
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case("value"));
            match (
                kind,
                name.as_str(),
                path.filter.is_some() || path.sub_attr.is_some(),
            ) {
                (_, "id", false) => Ok(Condition::Id(fold(&string()?))),
                (_, "externalid", false) => Ok(Condition::ExternalId(string()?)),
                (_, "displayname", false) => Ok(Condition::DisplayName(fold(&string()?))),
                (ResourceKind::User, "username", false) => {
                    Ok(Condition::UserName(fold(&string()?)))
                }
                (ResourceKind::User, "emails", true) if work_email => {
                    Ok(Condition::WorkEmail(fold(&string()?)))
                }
                (ResourceKind::Group, "members", _) if member_value => {
                    Ok(Condition::Member(fold(&string()?)))
                }
                (ResourceKind::User, "active", false) => match active_value(&c.value) {
                    Some(b) => Ok(Condition::Active(b)),
                    None => Err(bad("`active` must be compared with true or false".into())),
                },
                _ => Err(bad(format!(
                    "filtering {}s on `{}` is not supported (userName, externalId, id, \
                     emails[type eq \"work\"].value, displayName, active for users; \
                     displayName, externalId, id, members[value eq \"…\"] for groups)",
                    kind.as_str(),
                    filter_text(path)
                ))),
            }
        })
        .collect()
}

fn filter_text(path: &crate::AttrPath) -> String {
    let mut text = path.attr.clone();
    if let Some(f) = &path.filter {
        text.push_str(&format!("[{} eq \"{}\"]", f.attr, f.value));
    }
    if let Some(s) = &path.sub_attr {
        text.push('.');
        text.push_str(s);
    }
    text
}

/// `startIndex` and `count` of a list request (RFC 7644 §3.4.2.4).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// 1-based; values below 1 count as 1.
    pub start_index: u64,
    /// At most this many resources; negative counts as 0; capped at the server's maximum.
    pub count: u64,
}

impl Page {
    /// Reads `startIndex` and `count` from their query values.
    ///
    /// # Errors
    /// `invalidValue` for a value that is not an integer.
    pub fn parse(
        start_index: Option<&str>,
        count: Option<&str>,
        default_count: u64,
        max_count: u64,
    ) -> Result<Page, ScimError> {
        let number = |name: &str, text: &str| {
            text.trim()
                .parse::<i64>()
                .map_err(|_| invalid(format!("`{name}` must be an integer, not `{text}`")))
        };
        let start_index = match start_index {
            None => 1,
            // Past any real directory; keeps OFFSET a safe integer.
            Some(text) => u64::try_from(number("startIndex", text)?.clamp(1, 1 << 50)).unwrap_or(1),
        };
        let count = match count {
            None => default_count,
            Some(text) => u64::try_from(number("count", text)?.max(0)).unwrap_or(0),
        }
        .min(max_count);
        Ok(Page { start_index, count })
    }
}

//! Entra ID's provisioning client: the SCIM 2.0 requests Microsoft Entra's provisioning
//! service sends to an application's SCIM endpoint (reference §5), in either of its two PATCH
//! dialects, and its whole provisioning cycle over a directory.
//!
//! # Dialects
//!
//! [`Dialect::Default`] is what a non-gallery app gets unless its Tenant URL carries a flag:
//! capitalised `Add` / `Replace` / `Remove`, `"active": "False"` as a string, one operation per
//! attribute, member adds as `{"$ref": null, "value": id}` (the tutorial's shape) and member
//! removal as `{"op": "Remove", "path": "members", "value": [{"value": id}]}`.
//! [`Dialect::AadOptscim062020`] is the compliant behaviour behind the `aadOptscim062020` flag:
//! lowercase ops, booleans, one path-less `replace` whose value holds dotted
//! (`name.givenName`) and URN-prefixed keys, and member removal as
//! `{"op": "remove", "path": "members[value eq \"…\"]"}`. Payloads that are the same in both
//! (create user, create group, the filters) follow §5.3.
//!
//! # The cycle ([`ScimClient::run_cycle`])
//!
//! What Entra does on a first cycle followed by an incremental one, over a [`Directory`]:
//!
//! 1. **Test Connection**: `GET /Users?filter=userName eq "<random GUID>"`, which must answer
//!    200 with an empty `ListResponse`, and the same for a group
//!    (`GET /Groups?excludedAttributes=members&filter=displayName eq "<random GUID>"`).
//! 2. **Users**, in directory order: `GET /Users?filter=userName eq "<upn>"`; create the user
//!    when there is none (`userName` ← UPN, `externalId` ← mailNickname, the UPN's local part,
//!    or ← objectId when the app's mappings say so ([`ExternalId`]),
//!    `emails[type eq "work"].value` ← mail, `name` from the display name), otherwise send the
//!    attributes that differ (and `active` back to true) as an update.
//! 3. **Groups**, in directory order: `GET /Groups?excludedAttributes=members&filter=displayName
//!    eq "<name>"`; create the group (`externalId` ← object id, no members) when there is none.
//! 4. **Memberships**: for each group, its direct user members in `Add` PATCHes of at most
//!    [`CycleOptions::members_per_request`] members. Entra sends only users' direct
//!    memberships; [`CycleOptions::nest_groups`] also adds each group's child groups (from the
//!    directory's `parents`), which Entra itself never provisions.
//! 5. **Incremental changes** ([`Changes`]): update one user's attributes, remove one member
//!    from a group, disable one user (`"False"` or `false`, per dialect), hard-delete one user.
//!
//! Between 2 and 3, users with a [`User::manager`] get it linked: `manager` is a
//! reference attribute, which Entra resolves to the manager's SCIM id once both exist and
//! sends in a PATCH of its own — the bare id, as `{"op": "Add", "path":
//! "urn:…:enterprise:2.0:User:manager", "value": "<id>"}` by default and as the URN-qualified
//! key of the path-less `replace` with the flag — when the user read back does not already
//! have it.
//!
//! # Reading users back
//!
//! Entra deserialises every user the endpoint answers with (matches, creates, updates) into
//! its own types, and a user it cannot read is an error (`SystemForCrossDomainIdentityManagement
//! ServiceIncompatible`): that user is no longer updated, deprovisioning included. The client
//! reads users as strictly ([`entra_reads_user`]): the enterprise `manager` must be the complex
//! attribute of RFC 7643 §4.3, `{"value": "<id>"}`, even though Entra itself sends only the
//! id.
//!
//! Every request goes through [`ScimClient::send`], which records an [`Exchange`] (method,
//! path, status, content type, time) that tests can assert on.
//!
//! [`ScimClient::has_member`] is the membership check of Microsoft's reference SCIM code
//! (`GET /Groups?attributes=id&filter=id eq "…" and members[value eq "…"]`).
//!
//! Test-only: this is the client side of the protocol, for tests, the `entra-emulator
//! --provision` command and the provisioning benchmark.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::client::{ClientError, HttpClient, HttpResponse};
use crate::fixtures::{Fixtures, Group, User};
use crate::urlencoded;

/// The core User schema.
pub const USER_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:User";
/// The enterprise User extension.
pub const ENTERPRISE_USER: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
/// The core Group schema.
pub const GROUP_SCHEMA: &str = "urn:ietf:params:scim:schemas:core:2.0:Group";
/// The Microsoft group schema Entra lists next to the core one when it creates a group.
pub const MICROSOFT_GROUP_SCHEMA: &str =
    "http://schemas.microsoft.com/2006/11/ResourceManagement/ADSCIM/2.0/Group";
/// The PatchOp message schema.
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// The ListResponse message schema.
pub const LIST_RESPONSE: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// The Error message schema.
pub const ERROR_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:Error";
/// The media type of SCIM messages, both ways.
pub const SCIM_MEDIA_TYPE: &str = "application/scim+json";

/// The PATCH behaviour of Entra's provisioning service.
///
/// Exhaustive on purpose: Entra has these two; its rollback flag (`AzureAdScimPatch2017`)
/// selects [`Dialect::Default`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Dialect {
    /// Without a flag in the Tenant URL: `Replace`, `"False"`, one op per attribute.
    #[default]
    Default,
    /// With `?aadOptscim062020`: `replace`, `false`, path-less replace with dotted keys.
    AadOptscim062020,
}

/// The kind of a PATCH operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum OpKind {
    Add,
    Replace,
    Remove,
}

impl Dialect {
    /// Both dialects, the default first.
    pub const ALL: [Dialect; 2] = [Dialect::Default, Dialect::AadOptscim062020];

    /// `default` or `aadOptscim062020` (the flag's spelling).
    pub fn name(self) -> &'static str {
        match self {
            Dialect::Default => "default",
            Dialect::AadOptscim062020 => "aadOptscim062020",
        }
    }

    fn op(self, kind: OpKind) -> &'static str {
        match (self, kind) {
            (Dialect::Default, OpKind::Add) => "Add",
            (Dialect::Default, OpKind::Replace) => "Replace",
            (Dialect::Default, OpKind::Remove) => "Remove",
            (Dialect::AadOptscim062020, OpKind::Add) => "add",
            (Dialect::AadOptscim062020, OpKind::Replace) => "replace",
            (Dialect::AadOptscim062020, OpKind::Remove) => "remove",
        }
    }

    /// A boolean attribute's value: `"True"` / `"False"` by default, a JSON boolean with the
    /// flag.
    pub fn boolean(self, value: bool) -> Value {
        match (self, value) {
            (Dialect::Default, true) => json!("True"),
            (Dialect::Default, false) => json!("False"),
            (Dialect::AadOptscim062020, value) => json!(value),
        }
    }

    /// The PATCH that adds `member_ids` to a group: one `Add` on `members`, each member
    /// `{"$ref": null, "value": id}` by default (the tutorial's shape), `{"value": id}` with
    /// the flag.
    pub fn add_members(self, member_ids: &[&str]) -> Value {
        let members: Vec<Value> = member_ids
            .iter()
            .map(|id| match self {
                Dialect::Default => json!({ "$ref": null, "value": id }),
                Dialect::AadOptscim062020 => json!({ "value": id }),
            })
            .collect();
        patch_op(vec![
            json!({ "op": self.op(OpKind::Add), "path": "members", "value": members }),
        ])
    }

    /// The PATCH that removes one member: `Remove` on `members` with the member in `value`
    /// by default, `remove` on `members[value eq "…"]` with the flag.
    pub fn remove_member(self, member_id: &str) -> Value {
        let op = match self {
            Dialect::Default => json!({
                "op": self.op(OpKind::Remove), "path": "members", "value": [{ "value": member_id }]
            }),
            Dialect::AadOptscim062020 => json!({
                "op": self.op(OpKind::Remove),
                "path": format!("members[value eq {}]", quoted(member_id)),
            }),
        };
        patch_op(vec![op])
    }

    /// The PATCH that sets `active`: `{"op": "Replace", "path": "active", "value": "False"}`
    /// by default, `{"op": "replace", "path": "active", "value": false}` with the flag.
    pub fn set_active(self, active: bool) -> Value {
        patch_op(vec![json!({
            "op": self.op(OpKind::Replace), "path": "active", "value": self.boolean(active)
        })])
    }

    /// The PATCH that sends `update`'s attributes. By default one `Replace` per attribute
    /// with its path, and the manager as an `Add` of the bare id on its URN-qualified path;
    /// with the flag, the work email as its own `replace` (it has a value filter), the other
    /// attributes — the manager's bare id among them — as one path-less `replace` with dotted
    /// and URN-prefixed keys. `active`, when set, is its own operation in both.
    pub fn update_user(self, update: &UserUpdate) -> Value {
        let replace = self.op(OpKind::Replace);
        let mut operations = Vec::new();
        let attributes = update.attributes();
        match self {
            Dialect::Default => {
                for (path, value) in attributes {
                    operations.push(json!({ "op": replace, "path": path, "value": value }));
                }
                if let Some(manager) = &update.manager {
                    operations.push(json!({
                        "op": self.op(OpKind::Add), "path": MANAGER_PATH, "value": manager
                    }));
                }
            }
            Dialect::AadOptscim062020 => {
                let mut pathless = Map::new();
                for (path, value) in attributes {
                    if path == WORK_EMAIL_PATH {
                        operations.push(json!({ "op": replace, "path": path, "value": value }));
                    } else {
                        pathless.insert(path.to_owned(), value);
                    }
                }
                if let Some(manager) = &update.manager {
                    pathless.insert(MANAGER_PATH.to_owned(), json!(manager));
                }
                if !pathless.is_empty() {
                    operations.push(json!({ "op": replace, "value": pathless }));
                }
            }
        }
        if let Some(active) = update.active {
            operations.push(json!({
                "op": replace, "path": "active", "value": self.boolean(active)
            }));
        }
        patch_op(operations)
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Dialect {
    type Err = ProvisioningError;

    /// `default` or `aadOptscim062020`, any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Dialect::ALL
            .into_iter()
            .find(|dialect| dialect.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| ProvisioningError::UnknownDialect(text.to_owned()))
    }
}

/// Where a user's `externalId` comes from: one of the provisioning app's attribute mappings.
///
/// Entra maps `mailNickname` by default; an administrator can map `objectId` instead (Entra
/// admin center → the app → Provisioning → Mappings → the user mapping → `externalId`), which
/// is what edge-access needs to find a provisioned user among the people who sign in: the
/// object id is the `oid` of their tokens, immutable, where mail and UPN can change.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum ExternalId {
    /// Entra's default mapping: `mailNickname` (here the UPN's local part).
    #[default]
    MailNickname,
    /// `objectId` → `externalId`: the user's object id.
    ObjectId,
}

impl ExternalId {
    /// Both mappings, Entra's default first.
    pub const ALL: [ExternalId; 2] = [ExternalId::MailNickname, ExternalId::ObjectId];

    /// The source attribute's name in Entra: `mailNickname` or `objectId`.
    pub fn name(self) -> &'static str {
        match self {
            ExternalId::MailNickname => "mailNickname",
            ExternalId::ObjectId => "objectId",
        }
    }
}

impl fmt::Display for ExternalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ExternalId {
    type Err = ProvisioningError;

    /// `mailNickname` or `objectId`, any case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        ExternalId::ALL
            .into_iter()
            .find(|source| source.name().eq_ignore_ascii_case(text))
            .ok_or_else(|| ProvisioningError::UnknownExternalId(text.to_owned()))
    }
}

/// The path of a user's work email, as Entra writes it.
pub const WORK_EMAIL_PATH: &str = "emails[type eq \"work\"].value";

/// The path of a user's manager, as Entra writes it.
pub const MANAGER_PATH: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager";

/// `{"schemas": [PatchOp], "Operations": operations}`.
pub fn patch_op(operations: Vec<Value>) -> Value {
    json!({ "schemas": [PATCH_OP], "Operations": operations })
}

/// `text` as a SCIM filter string literal (JSON quoting).
fn quoted(text: &str) -> String {
    Value::String(text.to_owned()).to_string()
}

/// Attributes of a user to change; `None` leaves one alone.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserUpdate {
    /// `displayName`.
    pub display_name: Option<String>,
    /// `emails[type eq "work"].value`.
    pub work_email: Option<String>,
    /// `name.givenName`.
    pub given_name: Option<String>,
    /// `name.familyName`.
    pub family_name: Option<String>,
    /// `externalId`.
    pub external_id: Option<String>,
    /// The enterprise extension's `employeeNumber`.
    pub employee_number: Option<String>,
    /// The enterprise extension's `manager`: the manager's SCIM id.
    pub manager: Option<String>,
    /// `active`.
    pub active: Option<bool>,
}

impl UserUpdate {
    /// Whether nothing would change.
    pub fn is_empty(&self) -> bool {
        *self == UserUpdate::default()
    }

    /// `(path, value)` for each attribute but `active` and `manager`, in the order of
    /// Entra's sample (reference §5.2).
    fn attributes(&self) -> Vec<(&'static str, Value)> {
        let employee_number: &'static str =
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber";
        [
            ("displayName", &self.display_name),
            (WORK_EMAIL_PATH, &self.work_email),
            ("name.givenName", &self.given_name),
            ("name.familyName", &self.family_name),
            ("externalId", &self.external_id),
            (employee_number, &self.employee_number),
        ]
        .into_iter()
        .filter_map(|(path, value)| value.as_ref().map(|value| (path, json!(value))))
        .collect()
    }
}

/// A directory to provision: the tenant's users and groups (the one model of
/// [`crate::fixtures`]) in scope, as the provisioning service reads them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Directory {
    /// Users in scope, in the order they are provisioned.
    pub users: Vec<User>,
    /// Groups in scope, in the order they are provisioned.
    pub groups: Vec<Group>,
}

/// What Entra's provisioning service reads of a user.
impl User {
    /// The work email provisioning sends: `mail`, or the UPN for users without one, as the
    /// mapping `Coalesce([mail], [userPrincipalName])` does.
    pub fn provisioned_mail(&self) -> &str {
        self.mail.as_deref().unwrap_or(&self.upn)
    }

    /// `mailNickname`, Entra's default `externalId`: the UPN's local part.
    pub fn mail_nickname(&self) -> &str {
        self.upn
            .rsplit_once('@')
            .map_or(self.upn.as_str(), |(local, _)| local)
    }

    /// `givenName`: the display name's first word.
    pub fn given_name(&self) -> &str {
        self.name
            .split_once(' ')
            .map_or(self.name.as_str(), |(given, _)| given)
    }

    /// `surname`: the display name after its first word, if any.
    pub fn family_name(&self) -> Option<&str> {
        self.name
            .split_once(' ')
            .map(|(_, family)| family.trim())
            .filter(|family| !family.is_empty())
    }

    /// The `externalId` Entra sends for this user under `mapping`.
    pub fn external_id(&self, mapping: ExternalId) -> &str {
        match mapping {
            ExternalId::MailNickname => self.mail_nickname(),
            ExternalId::ObjectId => &self.oid,
        }
    }

    /// Entra's create payload for this user with its default mappings (reference §5.3,
    /// Create User, with the enterprise extension).
    pub fn create_payload(&self) -> Value {
        self.create_payload_with(ExternalId::default())
    }

    /// Entra's create payload for this user, `externalId` from `mapping`.
    pub fn create_payload_with(&self, mapping: ExternalId) -> Value {
        let mut name = Map::new();
        name.insert("formatted".into(), json!(self.name));
        if let Some(family) = self.family_name() {
            name.insert("familyName".into(), json!(family));
        }
        name.insert("givenName".into(), json!(self.given_name()));
        let mut payload = json!({
            "schemas": [USER_SCHEMA, ENTERPRISE_USER],
            "externalId": self.external_id(mapping),
            "userName": self.upn,
            "active": true,
            "displayName": self.name,
            "emails": [{ "primary": true, "type": "work", "value": self.provisioned_mail() }],
            "meta": { "resourceType": "User" },
            "name": name,
            "roles": [],
        });
        if let (Some(number), Some(object)) = (&self.employee_id, payload.as_object_mut()) {
            object.insert(ENTERPRISE_USER.into(), json!({ "employeeNumber": number }));
        }
        payload
    }

    /// What differs between this user and `resource` (a SCIM user the endpoint holds), as an
    /// update, with Entra's default mappings; `active` is set back to true when the resource
    /// is inactive. The manager is not compared here (it names another user's SCIM id, which
    /// [`ScimClient::run_cycle`] links once both exist).
    pub fn differences(&self, resource: &Value) -> UserUpdate {
        self.differences_with(resource, ExternalId::default())
    }

    /// [`User::differences`] with `externalId` from `mapping`.
    pub fn differences_with(&self, resource: &Value, mapping: ExternalId) -> UserUpdate {
        let text = |value: Option<&Value>| value.and_then(Value::as_str).map(str::to_owned);
        let differs = |current: Option<String>, wanted: Option<&str>| match wanted {
            Some(wanted) if current.as_deref() != Some(wanted) => Some(wanted.to_owned()),
            _ => None,
        };
        let work_email = resource
            .get("emails")
            .and_then(Value::as_array)
            .and_then(|emails| {
                emails
                    .iter()
                    .find(|email| email.get("type").and_then(Value::as_str) == Some("work"))
            })
            .and_then(|email| text(email.get("value")));
        let name = resource.get("name");
        let active = match resource.get("active") {
            Some(Value::Bool(active)) => *active,
            Some(Value::String(active)) => active.eq_ignore_ascii_case("true"),
            _ => true,
        };
        UserUpdate {
            display_name: differs(text(resource.get("displayName")), Some(&self.name)),
            work_email: differs(work_email, Some(self.provisioned_mail())),
            given_name: differs(
                text(name.and_then(|name| name.get("givenName"))),
                Some(self.given_name()),
            ),
            family_name: differs(
                text(name.and_then(|name| name.get("familyName"))),
                self.family_name(),
            ),
            external_id: differs(
                text(resource.get("externalId")),
                Some(self.external_id(mapping)),
            ),
            employee_number: differs(
                text(
                    resource
                        .get(ENTERPRISE_USER)
                        .and_then(|extension| extension.get("employeeNumber")),
                ),
                self.employee_id.as_deref(),
            ),
            // A reference to another user's SCIM id: linked by the cycle once both exist.
            manager: None,
            active: (!active).then_some(true),
        }
    }
}

/// What Entra's provisioning service reads of a group.
impl Group {
    /// Entra's create payload for this group (reference §5.3, Create Group): no members.
    pub fn create_payload(&self) -> Value {
        json!({
            "schemas": [GROUP_SCHEMA, MICROSOFT_GROUP_SCHEMA],
            "externalId": self.id,
            "displayName": self.display_name,
            "meta": { "resourceType": "Group" },
        })
    }
}

impl Directory {
    /// The fixture tenant's users and groups.
    pub fn from_fixtures(fixtures: &Fixtures) -> Self {
        Directory {
            users: fixtures.users.clone(),
            groups: fixtures.groups.clone(),
        }
    }

    /// `users` users and `groups` groups, user `i` a direct member of group
    /// `i / members_per_group` (when there is one): a directory of any size for benchmarks.
    /// Users carry an employee number, so their creates include the enterprise extension.
    pub fn generated(users: usize, groups: usize, members_per_group: usize) -> Self {
        let group_id = |index: usize| format!("6e0a{index:04x}-0000-4000-8000-{index:012x}");
        Directory {
            users: (0..users)
                .map(|index| User {
                    key: format!("u{index:05}"),
                    oid: format!("5c0d{index:04x}-0000-4000-8000-{index:012x}"),
                    upn: format!("user{index:05}@bench.example"),
                    mail: Some(format!("user{index:05}@bench.example")),
                    name: format!("User {index:05}"),
                    groups: index
                        .checked_div(members_per_group)
                        .filter(|group| *group < groups)
                        .map(group_id)
                        .into_iter()
                        .collect(),
                    employee_id: Some(format!("{}", 100_000 + index)),
                    ..User::default()
                })
                .collect(),
            groups: (0..groups)
                .map(|index| Group {
                    id: group_id(index),
                    display_name: format!("Group {index:03}"),
                    ..Group::default()
                })
                .collect(),
        }
    }

    /// The same directory under `tag`, so that several cycles can share one endpoint: UPNs
    /// and mail become `{tag}.{local part}@{domain}`, group display names `{tag} {name}`, and
    /// every object id another GUID derived from the tag and the id (the same one wherever the
    /// id appears). User keys stay.
    #[must_use]
    pub fn tagged(&self, tag: &str) -> Self {
        let address = |address: &str| match address.rsplit_once('@') {
            Some((local, domain)) => format!("{tag}.{local}@{domain}"),
            None => format!("{tag}.{address}"),
        };
        let id = |id: &String| tagged_guid(tag, id);
        Directory {
            users: self
                .users
                .iter()
                .map(|user| User {
                    oid: id(&user.oid),
                    upn: address(&user.upn),
                    mail: user.mail.as_deref().map(address),
                    groups: user.groups.iter().map(id).collect(),
                    ..user.clone()
                })
                .collect(),
            groups: self
                .groups
                .iter()
                .map(|group| Group {
                    id: id(&group.id),
                    display_name: format!("{tag} {}", group.display_name),
                    parents: group.parents.iter().map(id).collect(),
                    ..group.clone()
                })
                .collect(),
        }
    }

    /// The user with this key.
    pub fn user(&self, key: &str) -> Option<&User> {
        self.users.iter().find(|user| user.key == key)
    }

    /// The group with this object id (any case).
    pub fn group(&self, object_id: &str) -> Option<&Group> {
        self.groups
            .iter()
            .find(|group| group.id.eq_ignore_ascii_case(object_id))
    }

    /// The direct user members of `group` (keys, in directory order).
    pub fn user_members(&self, group: &Group) -> Vec<&User> {
        self.users
            .iter()
            .filter(|user| {
                user.groups
                    .iter()
                    .any(|id| id.eq_ignore_ascii_case(&group.id))
            })
            .collect()
    }

    /// The groups directly inside `group` (in directory order).
    pub fn group_members(&self, group: &Group) -> Vec<&Group> {
        self.groups
            .iter()
            .filter(|child| {
                child
                    .parents
                    .iter()
                    .any(|id| id.eq_ignore_ascii_case(&group.id))
            })
            .collect()
    }
}

/// The incremental changes of a cycle, after everything is provisioned. Users are named by
/// [`User::key`], groups by object id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    /// A user and the attributes Entra sends as changed.
    pub update: Option<(String, UserUpdate)>,
    /// A user removed from one of their groups.
    pub remove_member: Option<(String, String)>,
    /// A user disabled (soft-deleted in Entra, or out of scope).
    pub disable: Option<String>,
    /// A user hard-deleted.
    pub delete: Option<String>,
}

impl Changes {
    /// The directory's first four users, one change each: the first gets
    /// [`Changes::renamed`], the second leaves their first group, the third is disabled, the
    /// fourth deleted. For the fixtures: Ada renamed, Grace out of SRE, Mallory disabled, Bob
    /// deleted. Changes a smaller directory has no users for are left out.
    pub fn first_users(directory: &Directory) -> Self {
        let mut users = directory.users.iter();
        let update = users
            .next()
            .map(|user| (user.key.clone(), Changes::renamed(user)));
        let remove_member = users.next().and_then(|user| {
            user.groups
                .first()
                .map(|group| (user.key.clone(), group.clone()))
        });
        Changes {
            update,
            remove_member,
            disable: users.next().map(|user| user.key.clone()),
            delete: users.next().map(|user| user.key.clone()),
        }
    }

    /// A change of surname, display name, work email and employee number, like Entra's
    /// multi-attribute update sample: `Ada Lovelace` becomes `Ada Lovelace-King`, mail
    /// `updated.{local}@{domain}`, employee number `E-{mailNickname}`.
    pub fn renamed(user: &User) -> UserUpdate {
        let family = format!("{}-King", user.family_name().unwrap_or("Nobody"));
        let mail = match user.provisioned_mail().rsplit_once('@') {
            Some((local, domain)) => format!("updated.{local}@{domain}"),
            None => format!("updated.{}", user.provisioned_mail()),
        };
        UserUpdate {
            display_name: Some(format!("{} {family}", user.given_name())),
            work_email: Some(mail),
            given_name: None,
            family_name: Some(family),
            external_id: None,
            employee_number: Some(format!("E-{}", user.mail_nickname())),
            manager: None,
            active: None,
        }
    }
}

/// How to run a cycle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleOptions {
    /// Also provision group-in-group memberships from the directory's `parents` (Entra
    /// does not; off by default).
    pub nest_groups: bool,
    /// Members per `Add` PATCH (at least 1). Our choice, not a documented Entra number.
    pub members_per_request: usize,
    /// The incremental changes.
    pub changes: Changes,
}

/// Members per add-members PATCH unless [`CycleOptions::members_per_request`] says otherwise.
pub const DEFAULT_MEMBERS_PER_REQUEST: usize = 10;

impl CycleOptions {
    /// Entra's behaviour on `directory`: no nested groups,
    /// [`DEFAULT_MEMBERS_PER_REQUEST`], [`Changes::first_users`].
    pub fn for_directory(directory: &Directory) -> Self {
        CycleOptions {
            nest_groups: false,
            members_per_request: DEFAULT_MEMBERS_PER_REQUEST,
            changes: Changes::first_users(directory),
        }
    }
}

/// What a cycle did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CycleReport {
    /// The dialect it spoke.
    pub dialect: Dialect,
    /// SCIM id of every user (by key), as created or matched.
    pub users: BTreeMap<String, String>,
    /// SCIM id of every group (by object id, lowercase), as created or matched.
    pub groups: BTreeMap<String, String>,
    /// Users created.
    pub users_created: usize,
    /// Users found by `userName`.
    pub users_matched: usize,
    /// Matched users that got an update.
    pub users_updated: usize,
    /// Users whose manager was linked (a PATCH each).
    pub managers_linked: usize,
    /// Groups created.
    pub groups_created: usize,
    /// Groups found by `displayName`.
    pub groups_matched: usize,
    /// User members sent in add-members PATCHes.
    pub user_memberships: usize,
    /// Group members sent in add-members PATCHes (with [`CycleOptions::nest_groups`]).
    pub group_memberships: usize,
    /// Add-members PATCHes.
    pub membership_requests: usize,
    /// The incremental changes made.
    pub changes: Changes,
    /// Requests sent, Test Connection included.
    pub requests: usize,
    /// How long the cycle took.
    pub elapsed: Duration,
}

impl CycleReport {
    /// The SCIM id of the user with this key.
    pub fn user_id(&self, key: &str) -> Option<&str> {
        self.users.get(key).map(String::as_str)
    }

    /// The SCIM id of the group with this object id.
    pub fn group_id(&self, object_id: &str) -> Option<&str> {
        self.groups
            .get(&object_id.to_ascii_lowercase())
            .map(String::as_str)
    }
}

impl fmt::Display for CycleReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "provisioning cycle ({} dialect)", self.dialect)?;
        writeln!(
            f,
            "  test connection  ok (user and group queries for a random GUID: empty lists)"
        )?;
        writeln!(
            f,
            "  users            {} created, {} matched by userName ({} updated)",
            self.users_created, self.users_matched, self.users_updated
        )?;
        if self.managers_linked > 0 {
            writeln!(f, "  managers         {} linked", self.managers_linked)?;
        }
        writeln!(
            f,
            "  groups           {} created, {} matched by displayName",
            self.groups_created, self.groups_matched
        )?;
        writeln!(
            f,
            "  memberships      {} users and {} groups added in {} PATCHes",
            self.user_memberships, self.group_memberships, self.membership_requests
        )?;
        let changes = &self.changes;
        if let Some((user, _)) = &changes.update {
            writeln!(f, "  updated          {user}")?;
        }
        if let Some((user, group)) = &changes.remove_member {
            writeln!(f, "  removed          {user} from group {group}")?;
        }
        if let Some(user) = &changes.disable {
            writeln!(f, "  disabled         {user}")?;
        }
        if let Some(user) = &changes.delete {
            writeln!(f, "  deleted          {user}")?;
        }
        write!(
            f,
            "  {} requests in {:.2} s",
            self.requests,
            self.elapsed.as_secs_f64()
        )
    }
}

/// One request and its answer, as [`ScimClient`] logs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    /// `GET`, `POST`, …
    pub method: String,
    /// Below the base URL, with the query decoded for reading:
    /// `/Users?filter=userName eq "ada@example.com"`.
    pub path: String,
    /// The answer's status; `None` when there was no answer.
    pub status: Option<u16>,
    /// The answer's `Content-Type`.
    pub content_type: Option<String>,
    /// From sending the request to reading the whole answer.
    pub elapsed: Duration,
}

/// A SCIM `ListResponse`.
#[derive(Debug, Clone, PartialEq)]
pub struct ListResponse {
    /// `totalResults`.
    pub total_results: u64,
    /// `startIndex`, when present.
    pub start_index: Option<u64>,
    /// `itemsPerPage`, when present.
    pub items_per_page: Option<u64>,
    /// `Resources` (empty when absent).
    pub resources: Vec<Value>,
}

impl ListResponse {
    /// Reads a `ListResponse` message.
    ///
    /// # Errors
    ///
    /// A text saying what is missing: the ListResponse schema, `totalResults`, or a
    /// `Resources` array when there are results.
    pub fn parse(message: &Value) -> Result<Self, String> {
        let has_schema = message
            .get("schemas")
            .and_then(Value::as_array)
            .is_some_and(|schemas| schemas.iter().any(|s| s.as_str() == Some(LIST_RESPONSE)));
        if !has_schema {
            return Err(format!("`schemas` does not list `{LIST_RESPONSE}`"));
        }
        let total_results = message
            .get("totalResults")
            .and_then(Value::as_u64)
            .ok_or("no integer `totalResults`")?;
        let resources = match message.get("Resources") {
            Some(Value::Array(resources)) => resources.clone(),
            None if total_results == 0 => Vec::new(),
            _ => return Err("no `Resources` array".into()),
        };
        Ok(ListResponse {
            total_results,
            start_index: message.get("startIndex").and_then(Value::as_u64),
            items_per_page: message.get("itemsPerPage").and_then(Value::as_u64),
            resources,
        })
    }

    /// The only resource: `None` for none, an error for more than one (Entra expects a
    /// matching attribute to be unique).
    ///
    /// # Errors
    ///
    /// When the list holds more than one resource.
    pub fn single(&self) -> Result<Option<&Value>, String> {
        match self.resources.as_slice() {
            [] => Ok(None),
            [only] => Ok(Some(only)),
            more => Err(format!("{} resources match", more.len())),
        }
    }
}

/// Why a SCIM request did not give what Entra expects.
#[derive(Debug)]
#[non_exhaustive]
pub enum ProvisioningError {
    /// No answer: nothing listening, a timeout, not HTTP.
    Transport {
        /// The request's method.
        method: String,
        /// The request's path (see [`Exchange::path`]).
        path: String,
        /// The cause.
        source: ClientError,
    },
    /// An answer with another status than the one Entra expects.
    Status {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The status expected.
        expected: u16,
        /// The status received.
        status: u16,
        /// The answer's body.
        body: String,
    },
    /// An answer with the expected status whose body is not what Entra expects.
    Answer {
        /// The request's method.
        method: String,
        /// The request's path.
        path: String,
        /// The status received.
        status: u16,
        /// The answer's body.
        body: String,
        /// What is wrong with it.
        problem: String,
    },
    /// The directory or the cycle's options are inconsistent (the text says how).
    Directory(String),
    /// A dialect name that is neither `default` nor `aadOptscim062020`.
    UnknownDialect(String),
    /// An `externalId` source that is neither `mailNickname` nor `objectId`.
    UnknownExternalId(String),
}

impl fmt::Display for ProvisioningError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Transport {
                method,
                path,
                source,
            } => write!(f, "`{method} {path}`: no answer: {source}"),
            Self::Status {
                method,
                path,
                expected,
                status,
                body,
            } => write!(
                f,
                "`{method} {path}`: status {status} instead of {expected}: `{body}`"
            ),
            Self::Answer {
                method,
                path,
                status,
                body,
                problem,
            } => write!(f, "`{method} {path}` ({status}): {problem}: `{body}`"),
            Self::Directory(problem) => write!(f, "directory: {problem}"),
            Self::UnknownDialect(name) => {
                write!(f, "unknown dialect `{name}` (default or aadOptscim062020)")
            }
            Self::UnknownExternalId(name) => {
                write!(
                    f,
                    "unknown externalId source `{name}` (mailNickname or objectId)"
                )
            }
        }
    }
}

impl std::error::Error for ProvisioningError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Transport { source, .. } => Some(source),
            Self::Status { .. }
            | Self::Answer { .. }
            | Self::Directory(_)
            | Self::UnknownDialect(_)
            | Self::UnknownExternalId(_) => None,
        }
    }
}

/// Entra's provisioning client for one SCIM endpoint.
#[derive(Debug)]
pub struct ScimClient {
    base_url: String,
    token: String,
    dialect: Dialect,
    external_id: ExternalId,
    http: HttpClient,
    exchanges: Mutex<Vec<Exchange>>,
}

impl ScimClient {
    /// A client for the SCIM endpoint at `base_url` (the Tenant URL, such as
    /// `http://127.0.0.1:8787/cdn-cgi/access/scim/v2`) with bearer `token`.
    pub fn new(base_url: &str, token: &str, dialect: Dialect) -> Self {
        ScimClient {
            base_url: base_url.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            dialect,
            external_id: ExternalId::default(),
            http: HttpClient::new(),
            exchanges: Mutex::new(Vec::new()),
        }
    }

    /// The same client over `http` (its own timeout and connection pool).
    #[must_use]
    pub fn with_http(mut self, http: HttpClient) -> Self {
        self.http = http;
        self
    }

    /// The same client with users' `externalId` from `mapping` (Entra's default is
    /// [`ExternalId::MailNickname`]).
    #[must_use]
    pub fn with_external_id(mut self, mapping: ExternalId) -> Self {
        self.external_id = mapping;
        self
    }

    /// Where users' `externalId` comes from.
    pub fn external_id(&self) -> ExternalId {
        self.external_id
    }

    /// The Tenant URL.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The dialect of its PATCHes.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Every exchange so far, oldest first.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.log().clone()
    }

    /// How many exchanges there were so far.
    pub fn exchange_count(&self) -> usize {
        self.log().len()
    }

    /// Forgets the exchanges so far.
    pub fn clear_exchanges(&self) {
        self.log().clear();
    }

    fn log(&self) -> std::sync::MutexGuard<'_, Vec<Exchange>> {
        // The log is only ever pushed to: a panic elsewhere leaves it consistent.
        self.exchanges
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Sends one request with Entra's headers (`Authorization: Bearer`, `Accept` and, with
    /// a body, `Content-Type: application/scim+json`) to `base_url` + `path`, the `query`
    /// pairs percent-encoded, and logs it. Any status is an answer.
    ///
    /// # Errors
    ///
    /// [`ProvisioningError::Transport`] when there is no answer.
    pub fn send(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Result<HttpResponse, ProvisioningError> {
        let readable_query: Vec<String> = query
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let readable = if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{}", readable_query.join("&"))
        };
        let url = if query.is_empty() {
            format!("{}{path}", self.base_url)
        } else {
            format!(
                "{}{path}?{}",
                self.base_url,
                urlencoded::encode_pairs(query)
            )
        };
        let authorization = format!("Bearer {}", self.token);
        let mut headers = vec![
            ("authorization", authorization.as_str()),
            ("accept", SCIM_MEDIA_TYPE),
        ];
        if body.is_some() {
            headers.push(("content-type", SCIM_MEDIA_TYPE));
        }
        let started = Instant::now();
        let result = self
            .http
            .request(method, &url, &headers, body.unwrap_or_default());
        let elapsed = started.elapsed();
        self.log().push(Exchange {
            method: method.to_owned(),
            path: readable.clone(),
            status: result.as_ref().ok().map(|response| response.status),
            content_type: result
                .as_ref()
                .ok()
                .and_then(|response| response.header("content-type"))
                .map(str::to_owned),
            elapsed,
        });
        result.map_err(|source| ProvisioningError::Transport {
            method: method.to_owned(),
            path: readable,
            source,
        })
    }

    /// [`ScimClient::send`] with a JSON body.
    ///
    /// # Errors
    ///
    /// As [`ScimClient::send`].
    pub fn send_json(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<HttpResponse, ProvisioningError> {
        self.send(method, path, query, Some(body.to_string().as_bytes()))
    }

    /// Sends and insists on `expected`; returns the answer.
    fn expect(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        expected: u16,
    ) -> Result<HttpResponse, ProvisioningError> {
        let response = match body {
            Some(body) => self.send_json(method, path, query, body)?,
            None => self.send(method, path, query, None)?,
        };
        if response.status == expected {
            Ok(response)
        } else {
            Err(ProvisioningError::Status {
                method: method.to_owned(),
                path: readable_path(path, query),
                expected,
                status: response.status,
                body: response.body,
            })
        }
    }

    /// Sends, insists on `expected`, and parses the body as a JSON object.
    fn expect_json(
        &self,
        method: &str,
        path: &str,
        query: &[(&str, &str)],
        body: Option<&Value>,
        expected: u16,
    ) -> Result<Value, ProvisioningError> {
        let response = self.expect(method, path, query, body, expected)?;
        let answer = |problem: String, response: &HttpResponse| ProvisioningError::Answer {
            method: method.to_owned(),
            path: readable_path(path, query),
            status: response.status,
            body: response.body.clone(),
            problem,
        };
        match response.json() {
            Ok(value) if value.is_object() => Ok(value),
            Ok(_) => Err(answer("not a JSON object".into(), &response)),
            Err(error) => Err(answer(format!("not JSON: {error}"), &response)),
        }
    }

    /// A list request, parsed as a `ListResponse` (200).
    fn list(&self, path: &str, query: &[(&str, &str)]) -> Result<ListResponse, ProvisioningError> {
        let message = self.expect_json("GET", path, query, None, 200)?;
        ListResponse::parse(&message).map_err(|problem| ProvisioningError::Answer {
            method: "GET".into(),
            path: readable_path(path, query),
            status: 200,
            body: message.to_string(),
            problem,
        })
    }

    /// A resource's `id`.
    fn id_of(resource: &Value, method: &str, path: &str) -> Result<String, ProvisioningError> {
        resource
            .get("id")
            .and_then(Value::as_str)
            .filter(|id| !id.is_empty())
            .map(str::to_owned)
            .ok_or_else(|| ProvisioningError::Answer {
                method: method.to_owned(),
                path: path.to_owned(),
                status: 0,
                body: resource.to_string(),
                problem: "the resource has no `id`".into(),
            })
    }

    /// Test Connection: a user query and a group query for a random GUID, each of which
    /// must answer 200 with an empty `ListResponse`.
    ///
    /// # Errors
    ///
    /// The first answer that is not an empty list (or no answer).
    pub fn test_connection(&self) -> Result<(), ProvisioningError> {
        let guid = super::http::random_guid();
        let users = self.users_by_user_name(&guid)?;
        let groups = self.groups_by_display_name(&guid)?;
        for (list, path, attribute) in [
            (users, "/Users", "userName"),
            (groups, "/Groups", "displayName"),
        ] {
            if list.total_results != 0 || !list.resources.is_empty() {
                return Err(ProvisioningError::Answer {
                    method: "GET".into(),
                    path: format!("{path}?filter={attribute} eq {}", quoted(&guid)),
                    status: 200,
                    body: format!("{list:?}"),
                    problem: "a random GUID matched: the list must be empty".into(),
                });
            }
        }
        Ok(())
    }

    /// `GET /Users?filter=userName eq "…"`.
    ///
    /// # Errors
    ///
    /// Anything but 200 with a `ListResponse`.
    pub fn users_by_user_name(&self, user_name: &str) -> Result<ListResponse, ProvisioningError> {
        let filter = format!("userName eq {}", quoted(user_name));
        self.list("/Users", &[("filter", &filter)])
    }

    /// `GET /Users?filter=externalId eq "…"`.
    ///
    /// # Errors
    ///
    /// Anything but 200 with a `ListResponse`.
    pub fn users_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<ListResponse, ProvisioningError> {
        let filter = format!("externalId eq {}", quoted(external_id));
        self.list("/Users", &[("filter", &filter)])
    }

    /// `GET /Groups?excludedAttributes=members&filter=displayName eq "…"`.
    ///
    /// # Errors
    ///
    /// Anything but 200 with a `ListResponse`.
    pub fn groups_by_display_name(
        &self,
        display_name: &str,
    ) -> Result<ListResponse, ProvisioningError> {
        let filter = format!("displayName eq {}", quoted(display_name));
        self.list(
            "/Groups",
            &[("excludedAttributes", "members"), ("filter", &filter)],
        )
    }

    /// Whether the group with SCIM id `group_id` has the direct member `member_id`: the
    /// membership check of Microsoft's reference SCIM code,
    /// `GET /Groups?attributes=id&filter=id eq "…" and members[value eq "…"]`, which must
    /// answer the group alone (with its `id`) or nothing.
    ///
    /// # Errors
    ///
    /// Anything but 200 with a `ListResponse` of at most that group.
    pub fn has_member(&self, group_id: &str, member_id: &str) -> Result<bool, ProvisioningError> {
        let filter = format!(
            "id eq {} and members[value eq {}]",
            quoted(group_id),
            quoted(member_id)
        );
        let query = [("attributes", "id"), ("filter", filter.as_str())];
        let list = self.list("/Groups", &query)?;
        let problem = |problem: String| ProvisioningError::Answer {
            method: "GET".into(),
            path: readable_path("/Groups", &query),
            status: 200,
            body: format!("{list:?}"),
            problem,
        };
        match list.single().map_err(problem)? {
            None => Ok(false),
            Some(group) if group.get("id").and_then(Value::as_str) == Some(group_id) => Ok(true),
            Some(other) => Err(problem(format!("another resource matched: {other}"))),
        }
    }

    /// `GET /{resource_type}` with these query pairs (`filter`, `startIndex`, `count`, …).
    ///
    /// # Errors
    ///
    /// Anything but 200 with a `ListResponse`.
    pub fn list_resources(
        &self,
        resource_type: &str,
        query: &[(&str, &str)],
    ) -> Result<ListResponse, ProvisioningError> {
        self.list(&format!("/{resource_type}"), query)
    }

    /// `GET /Users/{id}`: `None` on 404.
    ///
    /// # Errors
    ///
    /// Any other status than 200 or 404, or a body that is not a JSON object.
    pub fn user(&self, id: &str) -> Result<Option<Value>, ProvisioningError> {
        self.resource(&format!("/Users/{id}"), &[])
    }

    /// `GET /Groups/{id}`, with `excludedAttributes=members` when `without_members`: `None`
    /// on 404.
    ///
    /// # Errors
    ///
    /// Any other status than 200 or 404, or a body that is not a JSON object.
    pub fn group(
        &self,
        id: &str,
        without_members: bool,
    ) -> Result<Option<Value>, ProvisioningError> {
        let query: &[(&str, &str)] = if without_members {
            &[("excludedAttributes", "members")]
        } else {
            &[]
        };
        self.resource(&format!("/Groups/{id}"), query)
    }

    fn resource(
        &self,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<Option<Value>, ProvisioningError> {
        match self.expect_json("GET", path, query, None, 200) {
            Ok(resource) => Ok(Some(resource)),
            Err(ProvisioningError::Status { status: 404, .. }) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// `POST /Users` with Entra's create payload ([`User::create_payload_with`] the
    /// client's [`ExternalId`] mapping); answers the created user (201).
    ///
    /// # Errors
    ///
    /// Anything but 201 with a JSON object that has an `id`.
    pub fn create_user(&self, user: &User) -> Result<Value, ProvisioningError> {
        let created = self.create("/Users", &user.create_payload_with(self.external_id))?;
        read_user(&created, "POST", "/Users", 201)?;
        Ok(created)
    }

    /// `POST /Groups` with Entra's create payload ([`Group::create_payload`]);
    /// answers the created group (201).
    ///
    /// # Errors
    ///
    /// Anything but 201 with a JSON object that has an `id`.
    pub fn create_group(&self, group: &Group) -> Result<Value, ProvisioningError> {
        self.create("/Groups", &group.create_payload())
    }

    fn create(&self, path: &str, payload: &Value) -> Result<Value, ProvisioningError> {
        let created = self.expect_json("POST", path, &[], Some(payload), 201)?;
        Self::id_of(&created, "POST", path)?;
        Ok(created)
    }

    /// `PATCH /Users/{id}` with any PatchOp message; answers the user (200).
    ///
    /// # Errors
    ///
    /// Anything but 200 with a JSON object.
    pub fn patch_user(&self, id: &str, message: &Value) -> Result<Value, ProvisioningError> {
        let path = format!("/Users/{id}");
        let user = self.expect_json("PATCH", &path, &[], Some(message), 200)?;
        read_user(&user, "PATCH", &path, 200)?;
        Ok(user)
    }

    /// `PATCH /Groups/{id}` with any PatchOp message (204).
    ///
    /// # Errors
    ///
    /// Anything but 204.
    pub fn patch_group(&self, id: &str, message: &Value) -> Result<(), ProvisioningError> {
        self.expect("PATCH", &format!("/Groups/{id}"), &[], Some(message), 204)
            .map(drop)
    }

    /// Adds members to a group in one PATCH ([`Dialect::add_members`]).
    ///
    /// # Errors
    ///
    /// Anything but 204.
    pub fn add_members(
        &self,
        group_id: &str,
        member_ids: &[&str],
    ) -> Result<(), ProvisioningError> {
        self.patch_group(group_id, &self.dialect.add_members(member_ids))
    }

    /// Removes one member from a group ([`Dialect::remove_member`]).
    ///
    /// # Errors
    ///
    /// Anything but 204.
    pub fn remove_member(&self, group_id: &str, member_id: &str) -> Result<(), ProvisioningError> {
        self.patch_group(group_id, &self.dialect.remove_member(member_id))
    }

    /// Sends changed attributes ([`Dialect::update_user`]); answers the user.
    ///
    /// # Errors
    ///
    /// Anything but 200 with a JSON object.
    pub fn update_user(&self, id: &str, update: &UserUpdate) -> Result<Value, ProvisioningError> {
        self.patch_user(id, &self.dialect.update_user(update))
    }

    /// Disables a user (`active` ← `"False"` or `false`); answers the user.
    ///
    /// # Errors
    ///
    /// Anything but 200 with a JSON object.
    pub fn disable_user(&self, id: &str) -> Result<Value, ProvisioningError> {
        self.patch_user(id, &self.dialect.set_active(false))
    }

    /// `DELETE /Users/{id}` (204).
    ///
    /// # Errors
    ///
    /// Anything but 204.
    pub fn delete_user(&self, id: &str) -> Result<(), ProvisioningError> {
        self.expect("DELETE", &format!("/Users/{id}"), &[], None, 204)
            .map(drop)
    }

    /// `DELETE /Groups/{id}` (204).
    ///
    /// # Errors
    ///
    /// Anything but 204.
    pub fn delete_group(&self, id: &str) -> Result<(), ProvisioningError> {
        self.expect("DELETE", &format!("/Groups/{id}"), &[], None, 204)
            .map(drop)
    }

    /// Finds a user by `userName` and creates them when absent; a matched user whose
    /// attributes differ gets an update. Answers the SCIM id and what happened.
    ///
    /// # Errors
    ///
    /// A failed request, or more than one user with this `userName`.
    pub fn match_or_create_user(
        &self,
        user: &User,
    ) -> Result<(String, Provisioned), ProvisioningError> {
        self.provision_user(user)
            .map(|(id, provisioned, _)| (id, provisioned))
    }

    /// [`ScimClient::match_or_create_user`], also answering the user as last read.
    fn provision_user(
        &self,
        user: &User,
    ) -> Result<(String, Provisioned, Value), ProvisioningError> {
        let list = self.users_by_user_name(&user.upn)?;
        let found = list.single().map_err(|problem| ProvisioningError::Answer {
            method: "GET".into(),
            path: format!("/Users?filter=userName eq {}", quoted(&user.upn)),
            status: 200,
            body: format!("{list:?}"),
            problem,
        })?;
        match found {
            Some(existing) => {
                let id = Self::id_of(existing, "GET", "/Users")?;
                let filter = format!("userName eq {}", quoted(&user.upn));
                let path = readable_path("/Users", &[("filter", &filter)]);
                read_user(existing, "GET", &path, 200)?;
                let update = user.differences_with(existing, self.external_id);
                if update.is_empty() {
                    Ok((id, Provisioned::Matched, existing.clone()))
                } else {
                    let updated = self.update_user(&id, &update)?;
                    Ok((id, Provisioned::Updated, updated))
                }
            }
            None => {
                let created = self.create_user(user)?;
                Ok((
                    Self::id_of(&created, "POST", "/Users")?,
                    Provisioned::Created,
                    created,
                ))
            }
        }
    }

    /// Finds a group by `displayName` and creates it when absent. Answers the SCIM id and
    /// what happened.
    ///
    /// # Errors
    ///
    /// A failed request, or more than one group with this `displayName`.
    pub fn match_or_create_group(
        &self,
        group: &Group,
    ) -> Result<(String, Provisioned), ProvisioningError> {
        let list = self.groups_by_display_name(&group.display_name)?;
        let found = list.single().map_err(|problem| ProvisioningError::Answer {
            method: "GET".into(),
            path: format!(
                "/Groups?filter=displayName eq {}",
                quoted(&group.display_name)
            ),
            status: 200,
            body: format!("{list:?}"),
            problem,
        })?;
        match found {
            Some(existing) => Ok((
                Self::id_of(existing, "GET", "/Groups")?,
                Provisioned::Matched,
            )),
            None => {
                let created = self.create_group(group)?;
                Ok((
                    Self::id_of(&created, "POST", "/Groups")?,
                    Provisioned::Created,
                ))
            }
        }
    }

    /// Entra's whole cycle over `directory` (see the module documentation).
    ///
    /// # Errors
    ///
    /// The first request that fails, or [`ProvisioningError::Directory`] when a change
    /// names a user or group the directory does not have (checked before any request).
    pub fn run_cycle(
        &self,
        directory: &Directory,
        options: &CycleOptions,
    ) -> Result<CycleReport, ProvisioningError> {
        check_changes(directory, &options.changes)?;
        let started = Instant::now();
        let first_exchange = self.exchange_count();
        let mut report = CycleReport {
            dialect: self.dialect,
            users: BTreeMap::new(),
            groups: BTreeMap::new(),
            users_created: 0,
            users_matched: 0,
            users_updated: 0,
            managers_linked: 0,
            groups_created: 0,
            groups_matched: 0,
            user_memberships: 0,
            group_memberships: 0,
            membership_requests: 0,
            changes: options.changes.clone(),
            requests: 0,
            elapsed: Duration::ZERO,
        };

        self.test_connection()?;

        let mut managers: Vec<(String, Option<String>)> = Vec::new();
        for user in &directory.users {
            let (id, provisioned, resource) = self.provision_user(user)?;
            if user.manager.is_some() {
                managers.push((user.key.clone(), manager_id(&resource)));
            }
            match provisioned {
                Provisioned::Created => report.users_created += 1,
                Provisioned::Matched => report.users_matched += 1,
                Provisioned::Updated => {
                    report.users_matched += 1;
                    report.users_updated += 1;
                }
            }
            report.users.insert(user.key.clone(), id);
        }
        for (key, linked) in managers {
            let manager = directory
                .user(&key)
                .and_then(|user| user.manager.as_deref())
                .unwrap_or_default();
            let manager_id = known(report.user_id(manager), manager)?;
            if linked.as_deref() != Some(manager_id) {
                let update = UserUpdate {
                    manager: Some(manager_id.to_owned()),
                    ..UserUpdate::default()
                };
                self.update_user(known(report.user_id(&key), &key)?, &update)?;
                report.managers_linked += 1;
            }
        }
        for group in &directory.groups {
            let (id, provisioned) = self.match_or_create_group(group)?;
            match provisioned {
                Provisioned::Created => report.groups_created += 1,
                Provisioned::Matched | Provisioned::Updated => report.groups_matched += 1,
            }
            report.groups.insert(group.id.to_ascii_lowercase(), id);
        }

        let per_request = options.members_per_request.max(1);
        for group in &directory.groups {
            let group_id = known(report.group_id(&group.id), &group.id)?;
            let mut members: Vec<&str> = Vec::new();
            for user in directory.user_members(group) {
                members.push(known(report.user_id(&user.key), &user.key)?);
            }
            let users = members.len();
            if options.nest_groups {
                for child in directory.group_members(group) {
                    members.push(known(report.group_id(&child.id), &child.id)?);
                }
            }
            let mut requests = 0;
            for chunk in members.chunks(per_request) {
                self.add_members(group_id, chunk)?;
                requests += 1;
            }
            let groups = members.len() - users;
            report.user_memberships += users;
            report.group_memberships += groups;
            report.membership_requests += requests;
        }

        let changes = &options.changes;
        if let Some((key, update)) = &changes.update {
            self.update_user(known(report.user_id(key), key)?, update)?;
        }
        if let Some((key, group)) = &changes.remove_member {
            self.remove_member(
                known(report.group_id(group), group)?,
                known(report.user_id(key), key)?,
            )?;
        }
        if let Some(key) = &changes.disable {
            self.disable_user(known(report.user_id(key), key)?)?;
        }
        if let Some(key) = &changes.delete {
            self.delete_user(known(report.user_id(key), key)?)?;
        }

        report.requests = self.exchange_count().saturating_sub(first_exchange);
        report.elapsed = started.elapsed();
        Ok(report)
    }
}

/// What [`ScimClient::match_or_create_user`] and [`ScimClient::match_or_create_group`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provisioned {
    /// Not found: created.
    Created,
    /// Found, nothing to change.
    Matched,
    /// Found, and its differences sent.
    Updated,
}

/// Why Entra could not read `user` (a User the endpoint answered with), or `None`: its
/// enterprise `manager`, when there is one, must be `{"value": "<id>"}` (RFC 7643 §4.3) —
/// Entra's deserialiser fails on the bare id it sends itself.
pub fn entra_reads_user(user: &Value) -> Option<String> {
    let manager = user.get(ENTERPRISE_USER)?.get("manager")?;
    match manager {
        Value::Null => None,
        Value::Object(fields) if fields.get("value").is_some_and(Value::is_string) => None,
        other => Some(format!(
            "SystemForCrossDomainIdentityManagementServiceIncompatible: the enterprise \
             `manager` must be an object with a string `value` (RFC 7643 §4.3), not `{other}`"
        )),
    }
}

/// [`entra_reads_user`] as the error of the exchange that answered `user`.
fn read_user(user: &Value, method: &str, path: &str, status: u16) -> Result<(), ProvisioningError> {
    match entra_reads_user(user) {
        None => Ok(()),
        Some(problem) => Err(ProvisioningError::Answer {
            method: method.to_owned(),
            path: path.to_owned(),
            status,
            body: user.to_string(),
            problem,
        }),
    }
}

/// The manager id of a user Entra read back (see [`entra_reads_user`]).
fn manager_id(user: &Value) -> Option<String> {
    user.get(ENTERPRISE_USER)?
        .get("manager")?
        .get("value")?
        .as_str()
        .map(str::to_owned)
}

/// `path?name=value&…`, unencoded, as [`Exchange::path`] shows it.
fn readable_path(path: &str, query: &[(&str, &str)]) -> String {
    if query.is_empty() {
        return path.to_owned();
    }
    let pairs: Vec<String> = query
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!("{path}?{}", pairs.join("&"))
}

/// A GUID made from `tag` and `id` (SHA-256, shaped as a version-4 GUID): the same for the
/// same inputs, different for different tags.
fn tagged_guid(tag: &str, id: &str) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(format!("{tag}\n{}", id.to_ascii_lowercase()));
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default();
    format!(
        "{}-{}-4{}-8{}-{}",
        part(0..8),
        part(8..12),
        part(13..16),
        part(17..20),
        part(20..32)
    )
}

/// An id the cycle recorded, or why there is none.
fn known<'a>(id: Option<&'a str>, name: &str) -> Result<&'a str, ProvisioningError> {
    id.ok_or_else(|| ProvisioningError::Directory(format!("`{name}` was not provisioned")))
}

fn check_changes(directory: &Directory, changes: &Changes) -> Result<(), ProvisioningError> {
    let user = |key: &str| {
        directory
            .user(key)
            .ok_or_else(|| ProvisioningError::Directory(format!("no user `{key}`")))
    };
    if let Some((key, _)) = &changes.update {
        user(key)?;
    }
    if let Some((key, group)) = &changes.remove_member {
        let member = user(key)?;
        if directory.group(group).is_none()
            || !member
                .groups
                .iter()
                .any(|id| id.eq_ignore_ascii_case(group))
        {
            return Err(ProvisioningError::Directory(format!(
                "`{key}` is not a direct member of group `{group}`"
            )));
        }
    }
    for key in changes.disable.iter().chain(&changes.delete) {
        user(key)?;
    }
    for person in &directory.users {
        if let Some(manager) = &person.manager {
            user(manager)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ada() -> User {
        Directory::from_fixtures(&Fixtures::load_default().unwrap())
            .user("ada")
            .unwrap()
            .clone()
    }

    #[test]
    fn disabling_in_each_dialect_matches_the_reference() {
        assert_eq!(
            Dialect::Default.set_active(false),
            json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [ { "op": "Replace", "path": "active", "value": "False" } ] })
        );
        assert_eq!(
            Dialect::AadOptscim062020.set_active(false),
            json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [ { "op": "replace", "path": "active", "value": false } ] })
        );
    }

    #[test]
    fn member_changes_in_each_dialect_match_the_reference() {
        assert_eq!(
            Dialect::Default.remove_member("u1091")["Operations"],
            json!([{ "op": "Remove", "path": "members", "value": [{ "value": "u1091" }] }])
        );
        assert_eq!(
            Dialect::AadOptscim062020.remove_member("7f4bc1a3-285e-48ae-8202-5accb43efb0e"),
            json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [ { "op": "remove",
                        "path": "members[value eq \"7f4bc1a3-285e-48ae-8202-5accb43efb0e\"]" } ] })
        );
        assert_eq!(
            Dialect::Default.add_members(&["f648f8d5ea4e4cd38e9c"]),
            json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{ "op": "Add", "path": "members",
                        "value": [{ "$ref": null, "value": "f648f8d5ea4e4cd38e9c" }] }] })
        );
        assert_eq!(
            Dialect::AadOptscim062020.add_members(&["a", "b"])["Operations"],
            json!([{ "op": "add", "path": "members", "value": [{ "value": "a" }, { "value": "b" }] }])
        );
    }

    #[test]
    fn updates_in_each_dialect_match_the_reference() {
        let update = UserUpdate {
            display_name: Some("Pvlo".into()),
            work_email: Some("TestBcwqnm@test.microsoft.com".into()),
            given_name: Some("Gtfd".into()),
            family_name: Some("Pkqf".into()),
            external_id: Some("Eqpj".into()),
            employee_number: Some("Eqpj".into()),
            manager: None,
            active: None,
        };
        assert_eq!(
            Dialect::Default.update_user(&update),
            json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [
                { "op": "Replace", "path": "displayName", "value": "Pvlo" },
                { "op": "Replace", "path": "emails[type eq \"work\"].value", "value": "TestBcwqnm@test.microsoft.com" },
                { "op": "Replace", "path": "name.givenName", "value": "Gtfd" },
                { "op": "Replace", "path": "name.familyName", "value": "Pkqf" },
                { "op": "Replace", "path": "externalId", "value": "Eqpj" },
                { "op": "Replace", "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber", "value": "Eqpj" } ] })
        );
        let update = UserUpdate {
            display_name: Some("Bjfe".into()),
            work_email: Some("TestMhvaes@test.microsoft.com".into()),
            given_name: Some("Kkom".into()),
            family_name: Some("Unua".into()),
            external_id: None,
            employee_number: Some("Aklq".into()),
            manager: None,
            active: None,
        };
        assert_eq!(
            Dialect::AadOptscim062020.update_user(&update),
            json!({ "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
              "Operations": [
                { "op": "replace", "path": "emails[type eq \"work\"].value", "value": "TestMhvaes@test.microsoft.com" },
                { "op": "replace", "value": { "displayName": "Bjfe", "name.givenName": "Kkom", "name.familyName": "Unua",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber": "Aklq" } } ] })
        );
        let reactivate = UserUpdate {
            active: Some(true),
            ..UserUpdate::default()
        };
        assert_eq!(
            Dialect::Default.update_user(&reactivate)["Operations"],
            json!([{ "op": "Replace", "path": "active", "value": "True" }])
        );
    }

    #[test]
    fn managers_are_sent_as_the_bare_id_and_read_back_complex() {
        let manager = UserUpdate {
            manager: Some("45619541-95de-4d5e-9872-571b5d2c5577".into()),
            ..UserUpdate::default()
        };
        // As captured from Entra's default dialect: `Add`, the URN-qualified path, the id.
        assert_eq!(
            Dialect::Default.update_user(&manager)["Operations"],
            json!([{ "op": "Add",
                "path": "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
                "value": "45619541-95de-4d5e-9872-571b5d2c5577" }])
        );
        assert_eq!(
            Dialect::AadOptscim062020.update_user(&manager)["Operations"],
            json!([{ "op": "replace", "value": {
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager":
                    "45619541-95de-4d5e-9872-571b5d2c5577" } }])
        );
        // Entra reads it back only as a complex attribute.
        let user = |manager: Value| json!({ "id": "u1", ENTERPRISE_USER: { "manager": manager } });
        assert_eq!(entra_reads_user(&user(json!({ "value": "m1" }))), None);
        assert_eq!(entra_reads_user(&user(Value::Null)), None);
        assert_eq!(entra_reads_user(&json!({ "id": "u1" })), None);
        for unreadable in [
            json!("m1"),
            json!([{ "value": "m1" }]),
            json!({ "value": 1 }),
            json!({}),
        ] {
            assert!(
                entra_reads_user(&user(unreadable.clone())).is_some(),
                "{unreadable}"
            );
        }
        assert_eq!(
            manager_id(&user(json!({ "value": "m1" }))).as_deref(),
            Some("m1")
        );
    }

    #[test]
    fn the_create_payload_maps_entra_attributes() {
        assert_eq!(
            ada().create_payload(),
            json!({
                "schemas": [USER_SCHEMA, ENTERPRISE_USER],
                "externalId": "ada",
                "userName": "ada@example.com",
                "active": true,
                "displayName": "Ada Lovelace",
                "emails": [{ "primary": true, "type": "work", "value": "ada.lovelace@example.net" }],
                "meta": { "resourceType": "User" },
                "name": { "formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada" },
                "roles": []
            })
        );
        let generated = Directory::generated(3, 1, 2);
        let payload = generated.users[0].create_payload();
        assert_eq!(payload[ENTERPRISE_USER]["employeeNumber"], "100000");
        assert_eq!(generated.users[1].groups, [generated.groups[0].id.clone()]);
        assert!(generated.users[2].groups.is_empty());
    }

    #[test]
    fn the_object_id_mapping_sends_the_object_id_as_external_id() {
        let user = ada();
        let payload = user.create_payload_with(ExternalId::ObjectId);
        assert_eq!(payload["externalId"], json!(user.oid));
        assert_eq!(
            payload["externalId"],
            "d46b42fb-47df-439b-8a37-e6c49553de12"
        );
        let mut expected = user.create_payload();
        expected["externalId"] = json!(user.oid);
        assert_eq!(payload, expected, "only externalId differs");
        // Matching: a user stored under the default mapping gets its externalId replaced.
        let stored = user.create_payload();
        assert!(user.differences(&stored).is_empty());
        assert_eq!(
            user.differences_with(&stored, ExternalId::ObjectId),
            UserUpdate {
                external_id: Some(user.oid.clone()),
                ..UserUpdate::default()
            }
        );
        assert!(user
            .differences_with(&payload, ExternalId::ObjectId)
            .is_empty());
        assert_eq!(
            "OBJECTID".parse::<ExternalId>().unwrap(),
            ExternalId::ObjectId
        );
        assert_eq!(
            "mailNickname".parse::<ExternalId>().unwrap(),
            ExternalId::MailNickname
        );
        assert!("upn".parse::<ExternalId>().is_err());
    }

    #[test]
    fn a_matched_user_gets_only_what_differs() {
        let user = ada();
        let mut resource = user.create_payload();
        assert!(user.differences(&resource).is_empty());
        resource["active"] = json!("False");
        resource["name"]["familyName"] = json!("King");
        let update = user.differences(&resource);
        assert_eq!(
            update,
            UserUpdate {
                family_name: Some("Lovelace".into()),
                active: Some(true),
                ..UserUpdate::default()
            }
        );
    }

    #[test]
    fn tagging_keeps_names_unique_per_tag() {
        let directory = Directory::from_fixtures(&Fixtures::load_default().unwrap());
        let tagged = directory.tagged("t1");
        let mallory = tagged.user("mallory").unwrap();
        assert_eq!(
            mallory.upn,
            "t1.mallory_contractor.example#EXT#@examplecorp.onmicrosoft.com"
        );
        assert_eq!(
            mallory.mail_nickname(),
            "t1.mallory_contractor.example#EXT#"
        );
        assert_eq!(tagged.groups[0].display_name, "t1 All staff");
        assert_ne!(tagged.groups[0].id, directory.groups[0].id);
        assert_eq!(tagged.groups[0].id.len(), 36);
        // Memberships and nesting follow the new ids.
        let sre = tagged
            .groups
            .iter()
            .find(|g| g.display_name == "t1 SRE")
            .unwrap();
        let grace = tagged.user("grace").unwrap();
        assert_eq!(grace.groups, std::slice::from_ref(&sre.id));
        assert_eq!(tagged.user_members(sre), [grace]);
        let platform = tagged.group(&sre.parents[0]).unwrap();
        assert_eq!(platform.display_name, "t1 Platform");
        assert_ne!(directory.tagged("t2").groups[0].id, tagged.groups[0].id);
    }

    #[test]
    fn the_default_changes_touch_four_fixture_users() {
        let directory = Directory::from_fixtures(&Fixtures::load_default().unwrap());
        let changes = Changes::first_users(&directory);
        let (updated, update) = changes.update.clone().unwrap();
        assert_eq!(updated, "ada");
        assert_eq!(update.display_name.as_deref(), Some("Ada Lovelace-King"));
        assert_eq!(
            update.work_email.as_deref(),
            Some("updated.ada.lovelace@example.net")
        );
        let (removed, group) = changes.remove_member.clone().unwrap();
        assert_eq!(removed, "grace");
        assert_eq!(directory.group(&group).unwrap().display_name, "SRE");
        assert_eq!(changes.disable.as_deref(), Some("mallory"));
        assert_eq!(changes.delete.as_deref(), Some("bob"));
        check_changes(&directory, &changes).unwrap();
        let wrong = Changes {
            disable: Some("nobody".into()),
            ..Changes::default()
        };
        assert!(check_changes(&directory, &wrong).is_err());
    }

    #[test]
    fn dialects_parse_by_name() {
        assert_eq!(
            "aadoptscim062020".parse::<Dialect>().unwrap(),
            Dialect::AadOptscim062020
        );
        assert_eq!("default".parse::<Dialect>().unwrap(), Dialect::Default);
        assert!("2017".parse::<Dialect>().is_err());
    }

    #[test]
    fn list_responses_parse() {
        let list = ListResponse::parse(&json!({
            "schemas": [LIST_RESPONSE], "totalResults": 0, "Resources": [], "startIndex": 1, "itemsPerPage": 20
        }))
        .unwrap();
        assert_eq!(list.total_results, 0);
        assert_eq!(list.single().unwrap(), None);
        assert!(ListResponse::parse(&json!({ "totalResults": 0 })).is_err());
        assert!(
            ListResponse::parse(&json!({ "schemas": [LIST_RESPONSE], "totalResults": 2 })).is_err()
        );
    }
}

//! The configuration document seen as the Cloudflare Access API's collections (`apps`,
//! `policies`, `groups`, `identity_providers`, `service_tokens`, `lists`): reading, creating,
//! replacing and deleting one object of the document, as pure functions over its JSON.
//!
//! Everything random (ids, audience tags, service-token credentials) is drawn by the caller
//! and passed in ([`Fresh`]), so an edit is deterministic. Whether the edited document loads is
//! the loader's call, made after the edit; what is checked here is only what the loader cannot
//! say in the API's terms: a missing or duplicate id, an id that differs from the path, and
//! secrets, which are write-only:
//!
//! - a service token's `client_secret` is generated here on create (and on rotation), returned
//!   once, and only its SHA-256 (`client_secret_sha256`) is stored; a `client_secret` in a body
//!   is refused;
//! - an identity provider's `config.client_secret` (the Worker's `AZURE_CLIENT_SECRET` secret)
//!   and `scim_config.secret` (its `SCIM_TOKEN` secret) are refused;
//! - reads never show any of them, nor the stored hash.

use serde::de::{DeserializeSeed, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

/// The longest id accepted in a body or a path (characters).
const MAX_ID: usize = 200;

/// A collection of the document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Collection {
    Apps,
    Policies,
    Groups,
    IdentityProviders,
    ServiceTokens,
    Lists,
}

impl Collection {
    /// Every collection, in the order the API lists them.
    pub const ALL: [Collection; 6] = [
        Collection::Apps,
        Collection::Policies,
        Collection::Groups,
        Collection::IdentityProviders,
        Collection::ServiceTokens,
        Collection::Lists,
    ];

    /// The collection a path segment names (`/access/{segment}`).
    pub fn parse(segment: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.key() == segment)
    }

    /// Its name in paths and its key in the document.
    pub fn key(self) -> &'static str {
        match self {
            Collection::Apps => "apps",
            Collection::Policies => "policies",
            Collection::Groups => "groups",
            Collection::IdentityProviders => "identity_providers",
            Collection::ServiceTokens => "service_tokens",
            Collection::Lists => "lists",
        }
    }

    /// One of its objects, in messages.
    fn noun(self) -> &'static str {
        match self {
            Collection::Apps => "app",
            Collection::Policies => "policy",
            Collection::Groups => "group",
            Collection::IdentityProviders => "identity provider",
            Collection::ServiceTokens => "service token",
            Collection::Lists => "list",
        }
    }
}

/// Why an edit cannot be made (before the loader is asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EditError {
    /// The body is not one JSON object; the message says why.
    Body(String),
    /// A field of the body is refused: its name (dotted) and why.
    Field { field: String, message: String },
    /// No object of the collection has this id.
    NotFound { collection: Collection, id: String },
    /// An object of the collection already has this id.
    Duplicate { collection: Collection, id: String },
    /// The stored document's collection is not an array (it would not have loaded).
    Document(String),
}

impl EditError {
    /// The HTTP status it answers with.
    pub fn status(&self) -> u16 {
        match self {
            EditError::Body(_) | EditError::Field { .. } => 400,
            EditError::NotFound { .. } => 404,
            EditError::Duplicate { .. } => 409,
            EditError::Document(_) => 500,
        }
    }

    /// The envelope's error object.
    pub fn to_json(&self) -> Value {
        match self {
            EditError::Body(message) => json!({"code": 10400, "message": message}),
            EditError::Field { field, message } => json!({
                "code": 10400,
                "message": format!("{field}: {message}"),
                "path": field,
            }),
            EditError::NotFound { collection, id } => json!({
                "code": 10404,
                "message": format!("no {} with id `{id}`", collection.noun()),
            }),
            EditError::Duplicate { collection, id } => json!({
                "code": 10409,
                "message": format!("a {} with id `{id}` already exists", collection.noun()),
                "path": "id",
            }),
            EditError::Document(message) => json!({"code": 10500, "message": message}),
        }
    }
}

fn field(field: &str, message: &str) -> EditError {
    EditError::Field {
        field: field.to_owned(),
        message: message.to_owned(),
    }
}

/// Values drawn from the platform's CSPRNG for an edit that may need them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fresh {
    /// An object's id (a UUID).
    pub id: String,
    /// An app's audience tag (64 hex digits).
    pub aud: String,
    /// A service token's client id (`<32 hex>.access`).
    pub client_id: String,
    /// A service token's client secret (64 hex digits).
    pub client_secret: String,
}

impl Fresh {
    /// Fresh values from random bytes (32 for `aud`, 16 for `client`, 32 for `secret`) and a
    /// random UUID.
    pub fn from_random(id: String, aud: &[u8], client: &[u8], secret: &[u8]) -> Self {
        Fresh {
            id,
            aud: hex(aud),
            client_id: format!("{}.access", hex(client)),
            client_secret: hex(secret),
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A change to one collection.
#[derive(Clone, Debug, PartialEq)]
pub enum Edit {
    /// Add the object (its id drawn when it has none).
    Create(Map<String, Value>),
    /// Replace the object with this id.
    Update(String, Map<String, Value>),
    /// Remove the object with this id.
    Delete(String),
    /// Give the service token with this id a new client secret.
    Rotate(String),
    /// Add items to and remove values from the list with this id.
    PatchList {
        id: String,
        append: Vec<Value>,
        remove: Vec<String>,
    },
    /// Create, replace or delete (`edit`) one of the policies of the app with id `app`
    /// (`/access/apps/{app}/policies`).
    AppPolicies { app: String, edit: Box<Edit> },
}

impl Edit {
    /// What it does, in the write log and a version's default comment.
    pub fn action(&self) -> &'static str {
        match self {
            Edit::Create(_) => "create",
            Edit::Update(..) => "update",
            Edit::Delete(_) => "delete",
            Edit::Rotate(_) => "rotate",
            Edit::PatchList { .. } => "patch",
            Edit::AppPolicies { edit, .. } => edit.action(),
        }
    }
}

/// An edit made: the id of the object it touched and the API's `result`.
#[derive(Clone, Debug, PartialEq)]
pub struct Edited {
    pub id: String,
    pub result: Value,
}

/// Parses a request body as one JSON object, refusing duplicate keys at any depth (the last
/// one would silently win, and the loader would never see the first).
///
/// # Errors
///
/// Not JSON, not an object, a duplicate key.
pub fn object(body: &str) -> Result<Map<String, Value>, EditError> {
    let mut de = serde_json::Deserializer::from_str(body);
    let value = Strict
        .deserialize(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| EditError::Body(format!("invalid body: {e}")))?;
    match value {
        Value::Object(map) => Ok(map),
        _ => Err(EditError::Body(
            "invalid body: expected a JSON object".into(),
        )),
    }
}

/// A [`Value`] that refuses duplicate object keys.
struct Strict;

impl<'de> DeserializeSeed<'de> for Strict {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(Strict)? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(A::Error::custom(format!("duplicate key `{key}`")));
            }
            let value = map.next_value_seed(Strict)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// The collection's objects as the API shows them (secrets and their hashes left out).
///
/// # Errors
///
/// When the document's collection is not an array.
pub fn list(document: &Value, collection: Collection) -> Result<Vec<Value>, EditError> {
    Ok(items(document, collection)?
        .iter()
        .map(|item| shown(collection, item))
        .collect())
}

/// The object with `id`, as the API shows it.
///
/// # Errors
///
/// [`EditError::NotFound`], or the document's collection is not an array.
pub fn find(document: &Value, collection: Collection, id: &str) -> Result<Value, EditError> {
    items(document, collection)?
        .iter()
        .find(|item| id_of(item) == Some(id))
        .map(|item| shown(collection, item))
        .ok_or_else(|| not_found(collection, id))
}

/// The items of the list with `id`.
///
/// # Errors
///
/// [`EditError::NotFound`], or the document's lists are not an array.
pub fn list_items(document: &Value, id: &str) -> Result<Vec<Value>, EditError> {
    let list = find(document, Collection::Lists, id)?;
    Ok(list
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default())
}

/// One page of `items` (pages count from 1) and the envelope's `result_info`.
pub fn page(items: &[Value], page: u64, per_page: u64) -> (Vec<Value>, Value) {
    let skip =
        usize::try_from(page.saturating_sub(1).saturating_mul(per_page)).unwrap_or(usize::MAX);
    let take = usize::try_from(per_page).unwrap_or(usize::MAX);
    let shown: Vec<Value> = items.iter().skip(skip).take(take).cloned().collect();
    let info = json!({
        "page": page,
        "per_page": per_page,
        "count": shown.len(),
        "total_count": items.len(),
    });
    (shown, info)
}

/// Applies `edit` to `document`'s `collection`.
///
/// # Errors
///
/// The edit's own refusals ([`EditError`]); whether the result loads is checked after.
pub fn apply(
    document: &mut Value,
    collection: Collection,
    edit: &Edit,
    fresh: &Fresh,
) -> Result<Edited, EditError> {
    let Some(root) = document.as_object_mut() else {
        return Err(EditError::Document("the document is not an object".into()));
    };
    let items = match root
        .entry(collection.key())
        .or_insert_with(|| Value::Array(Vec::new()))
    {
        Value::Array(items) => items,
        _ => {
            return Err(EditError::Document(format!(
                "`{}` is not an array",
                collection.key()
            )))
        }
    };
    match edit {
        Edit::Create(body) => create(items, collection, body.clone(), fresh),
        Edit::Update(id, body) => update(items, collection, id, body.clone()),
        Edit::Delete(id) => {
            let at = position(items, collection, id)?;
            items.remove(at);
            Ok(Edited {
                id: id.clone(),
                result: json!({ "id": id }),
            })
        }
        Edit::Rotate(id) => rotate(items, collection, id, fresh),
        Edit::PatchList { id, append, remove } => patch_list(items, collection, id, append, remove),
        Edit::AppPolicies { app, edit } if collection == Collection::Apps => {
            app_policies_edit(items, app, edit, fresh)
        }
        Edit::AppPolicies { .. } => Err(EditError::Body(format!(
            "only apps have policies of their own, not {}",
            collection.key()
        ))),
    }
}

/// The id of an entry of an app's `policies`: a link (`"id"`, `{"id", "precedence"}`) or an
/// inline policy's `id`.
fn entry_id(entry: &Value) -> Option<&str> {
    match entry {
        Value::String(id) => Some(id),
        _ => id_of(entry),
    }
}

/// Whether an entry of an app's `policies` links a reusable policy (as the loader tells them
/// apart: an object without `decision` and `include` is a link).
fn is_link(entry: &Value) -> bool {
    match entry {
        Value::String(_) => true,
        Value::Object(o) => !o.contains_key("decision") && !o.contains_key("include"),
        _ => false,
    }
}

/// The policies of the app with id `app`, as the API shows them: inline policies as stored,
/// linked reusable policies as the reusable policy with `reusable: true` and the link's
/// `precedence` (its position from 1 when the link has none).
///
/// # Errors
///
/// [`EditError::NotFound`] for the app, or the document's collections are not arrays.
pub fn app_policies(document: &Value, app: &str) -> Result<Vec<Value>, EditError> {
    let found = items(document, Collection::Apps)?
        .iter()
        .find(|a| id_of(a) == Some(app))
        .ok_or_else(|| not_found(Collection::Apps, app))?;
    let entries = found
        .get("policies")
        .and_then(Value::as_array)
        .map_or(&[][..], Vec::as_slice);
    let reusable = items(document, Collection::Policies)?;
    Ok(entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            let Some(id) = entry_id(entry).filter(|_| is_link(entry)) else {
                return entry.clone();
            };
            let mut policy = reusable
                .iter()
                .find(|p| id_of(p) == Some(id))
                .cloned()
                .unwrap_or_else(|| json!({ "id": id }));
            if let Some(o) = policy.as_object_mut() {
                o.insert("reusable".into(), Value::Bool(true));
                let precedence = entry
                    .get("precedence")
                    .cloned()
                    .unwrap_or_else(|| Value::from(i.saturating_add(1)));
                o.insert("precedence".into(), precedence);
            }
            policy
        })
        .collect())
}

/// The policy with id `id` of the app with id `app`.
///
/// # Errors
///
/// [`EditError::NotFound`] for the app or the policy.
pub fn app_policy(document: &Value, app: &str, id: &str) -> Result<Value, EditError> {
    app_policies(document, app)?
        .into_iter()
        .find(|p| id_of(p) == Some(id))
        .ok_or_else(|| not_found(Collection::Policies, id))
}

fn app_policies_edit(
    apps: &mut [Value],
    app: &str,
    edit: &Edit,
    fresh: &Fresh,
) -> Result<Edited, EditError> {
    let at = position(apps, Collection::Apps, app)?;
    let Some(Value::Object(found)) = apps.get_mut(at) else {
        return Err(EditError::Document(format!("app `{app}` is not an object")));
    };
    let Value::Array(entries) = found
        .entry("policies")
        .or_insert_with(|| Value::Array(Vec::new()))
    else {
        return Err(EditError::Document(format!(
            "app `{app}`: `policies` is not an array"
        )));
    };
    let position = |entries: &[Value], id: &str| {
        entries
            .iter()
            .position(|e| entry_id(e) == Some(id))
            .ok_or_else(|| not_found(Collection::Policies, id))
    };
    let (id, result) = match edit {
        Edit::Create(body) => {
            let mut body = body.clone();
            let id = given_id(&body)?.unwrap_or_else(|| fresh.id.clone());
            if entries.iter().any(|e| entry_id(e) == Some(id.as_str())) {
                return Err(EditError::Duplicate {
                    collection: Collection::Policies,
                    id,
                });
            }
            body.insert("id".into(), Value::String(id.clone()));
            let item = Value::Object(body);
            entries.push(item.clone());
            (id, item)
        }
        Edit::Update(id, body) => {
            if let Some(given) = given_id(body)?.filter(|g| g != id) {
                return Err(field(
                    "id",
                    &format!("`{given}` differs from the id in the path `{id}`"),
                ));
            }
            let at = position(entries, id)?;
            let Some(entry) = entries.get_mut(at) else {
                return Err(not_found(Collection::Policies, id));
            };
            if is_link(entry) {
                return Err(field(
                    "id",
                    &format!(
                        "`{id}` is a reusable policy linked to this app: change it through \
                         `/access/policies/{id}`"
                    ),
                ));
            }
            let mut body = body.clone();
            body.insert("id".into(), Value::String(id.clone()));
            *entry = Value::Object(body);
            (id.clone(), entry.clone())
        }
        Edit::Delete(id) => {
            let at = position(entries, id)?;
            entries.remove(at);
            (id.clone(), json!({ "id": id }))
        }
        _ => {
            return Err(EditError::Body(
                "an app's policies are created, replaced or deleted".into(),
            ))
        }
    };
    Ok(Edited {
        id: format!("{app}/policies/{id}"),
        result,
    })
}

fn items(document: &Value, collection: Collection) -> Result<&[Value], EditError> {
    match document.get(collection.key()) {
        None => Ok(&[]),
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(EditError::Document(format!(
            "`{}` is not an array",
            collection.key()
        ))),
    }
}

fn id_of(item: &Value) -> Option<&str> {
    item.get("id").and_then(Value::as_str)
}

fn not_found(collection: Collection, id: &str) -> EditError {
    EditError::NotFound {
        collection,
        id: id.to_owned(),
    }
}

fn position(items: &[Value], collection: Collection, id: &str) -> Result<usize, EditError> {
    items
        .iter()
        .position(|item| id_of(item) == Some(id))
        .ok_or_else(|| not_found(collection, id))
}

/// An id given in a body: non-empty, bounded, no control characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty() && id.chars().count() <= MAX_ID && !id.chars().any(char::is_control)
}

/// The id a path segment names: percent-decoded (`%20`), UTF-8, and a [`valid_id`].
pub fn path_id(segment: &str) -> Option<String> {
    let bytes = segment.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let digits = bytes.get(i + 1..i + 3)?;
            let digits = std::str::from_utf8(digits).ok()?;
            if !digits.bytes().all(|d| d.is_ascii_hexdigit()) {
                return None;
            }
            out.push(u8::from_str_radix(digits, 16).ok()?);
            i += 3;
        } else {
            out.push(b);
            i += 1;
        }
    }
    String::from_utf8(out).ok().filter(|id| valid_id(id))
}

/// `item` as reads show it: write-only secrets and the stored hash left out.
fn shown(collection: Collection, item: &Value) -> Value {
    let mut item = item.clone();
    match collection {
        Collection::ServiceTokens => {
            if let Some(o) = item.as_object_mut() {
                o.remove("client_secret");
                o.remove("client_secret_sha256");
            }
        }
        Collection::IdentityProviders => {
            for (outer, secret) in [("config", "client_secret"), ("scim_config", "secret")] {
                if let Some(o) = item.get_mut(outer).and_then(Value::as_object_mut) {
                    o.remove(secret);
                }
            }
        }
        _ => {}
    }
    item
}

/// Refuses the write-only secrets a body may carry.
fn refuse_secrets(collection: Collection, body: &Map<String, Value>) -> Result<(), EditError> {
    match collection {
        Collection::ServiceTokens if body.contains_key("client_secret") => Err(field(
            "client_secret",
            "write-only and generated by the gateway: leave it out (create and rotate return \
             one, once), or give `client_secret_sha256`, the hex SHA-256 of an existing secret",
        )),
        Collection::IdentityProviders => {
            let has = |outer: &str, key: &str| {
                body.get(outer)
                    .and_then(Value::as_object)
                    .is_some_and(|o| o.contains_key(key))
            };
            if has("config", "client_secret") {
                Err(field(
                    "config.client_secret",
                    "write-only and never stored in the configuration: set the Worker's \
                     `AZURE_CLIENT_SECRET` secret instead",
                ))
            } else if has("scim_config", "secret") {
                Err(field(
                    "scim_config.secret",
                    "write-only and never stored in the configuration: set the Worker's \
                     `SCIM_TOKEN` secret instead",
                ))
            } else {
                Ok(())
            }
        }
        _ => Ok(()),
    }
}

/// The body's `id`, if it gives one.
fn given_id(body: &Map<String, Value>) -> Result<Option<String>, EditError> {
    match body.get("id") {
        None => Ok(None),
        Some(Value::String(id)) if valid_id(id) => Ok(Some(id.clone())),
        Some(_) => Err(field(
            "id",
            &format!("expected a non-empty string of at most {MAX_ID} characters"),
        )),
    }
}

fn create(
    items: &mut Vec<Value>,
    collection: Collection,
    mut body: Map<String, Value>,
    fresh: &Fresh,
) -> Result<Edited, EditError> {
    refuse_secrets(collection, &body)?;
    let id = match given_id(&body)? {
        Some(id) => id,
        None => fresh.id.clone(),
    };
    if items.iter().any(|item| id_of(item) == Some(id.as_str())) {
        return Err(EditError::Duplicate { collection, id });
    }
    body.insert("id".into(), Value::String(id.clone()));
    let mut secret = None;
    match collection {
        Collection::Apps => {
            body.entry("aud")
                .or_insert_with(|| Value::String(fresh.aud.clone()));
        }
        Collection::ServiceTokens => {
            body.entry("client_id")
                .or_insert_with(|| Value::String(fresh.client_id.clone()));
            if !body.contains_key("client_secret_sha256") {
                body.insert(
                    "client_secret_sha256".into(),
                    Value::String(sha256_hex(&fresh.client_secret)),
                );
                secret = Some(fresh.client_secret.clone());
            }
        }
        _ => {}
    }
    let item = Value::Object(body);
    let mut result = shown(collection, &item);
    if let (Some(secret), Some(o)) = (secret, result.as_object_mut()) {
        o.insert("client_secret".into(), Value::String(secret));
    }
    items.push(item);
    Ok(Edited { id, result })
}

fn update(
    items: &mut [Value],
    collection: Collection,
    id: &str,
    mut body: Map<String, Value>,
) -> Result<Edited, EditError> {
    refuse_secrets(collection, &body)?;
    if let Some(given) = given_id(&body)? {
        if given != id {
            return Err(field(
                "id",
                &format!("`{given}` differs from the id in the path `{id}`"),
            ));
        }
    }
    let at = position(items, collection, id)?;
    let Some(old) = items.get_mut(at) else {
        return Err(not_found(collection, id));
    };
    body.insert("id".into(), Value::String(id.to_owned()));
    // What the API assigns and never changes on an update: an app's audience tag (its
    // tokens name it), a service token's credentials.
    let kept: &[&str] = match collection {
        Collection::Apps => &["aud"],
        Collection::ServiceTokens => &["client_id", "client_secret_sha256"],
        _ => &[],
    };
    for key in kept {
        if !body.contains_key(*key) {
            if let Some(value) = old.get(*key) {
                body.insert((*key).to_owned(), value.clone());
            }
        }
    }
    *old = Value::Object(body);
    Ok(Edited {
        id: id.to_owned(),
        result: shown(collection, old),
    })
}

fn rotate(
    items: &mut [Value],
    collection: Collection,
    id: &str,
    fresh: &Fresh,
) -> Result<Edited, EditError> {
    if collection != Collection::ServiceTokens {
        return Err(EditError::Body(format!(
            "only service tokens rotate, not {}",
            collection.key()
        )));
    }
    let at = position(items, collection, id)?;
    let Some(Value::Object(token)) = items.get_mut(at) else {
        return Err(EditError::Document(format!(
            "service token `{id}` is not an object"
        )));
    };
    token.insert(
        "client_secret_sha256".into(),
        Value::String(sha256_hex(&fresh.client_secret)),
    );
    let mut result = shown(collection, &Value::Object(token.clone()));
    if let Some(o) = result.as_object_mut() {
        o.insert(
            "client_secret".into(),
            Value::String(fresh.client_secret.clone()),
        );
    }
    Ok(Edited {
        id: id.to_owned(),
        result,
    })
}

/// Parses a list `PATCH` body: `{"append": [{"value", "description"?}], "remove": ["value"]}`.
///
/// # Errors
///
/// Unknown fields, `append` not an array of objects, `remove` not an array of strings.
pub fn list_patch(id: &str, mut body: Map<String, Value>) -> Result<Edit, EditError> {
    if let Some(key) = body
        .keys()
        .find(|k| !matches!(k.as_str(), "append" | "remove"))
    {
        return Err(field(key, "unknown field (`append`, `remove`)"));
    }
    let append = match body.remove("append") {
        None => Vec::new(),
        Some(Value::Array(items)) if items.iter().all(Value::is_object) => items,
        Some(_) => {
            return Err(field(
                "append",
                "expected an array of items (`{\"value\": …}`)",
            ))
        }
    };
    let remove = match body.remove("remove") {
        None => Vec::new(),
        Some(Value::Array(values)) => values
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(field("remove", "expected an array of values (strings)")),
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(field("remove", "expected an array of values (strings)")),
    };
    Ok(Edit::PatchList {
        id: id.to_owned(),
        append,
        remove,
    })
}

fn patch_list(
    items: &mut [Value],
    collection: Collection,
    id: &str,
    append: &[Value],
    remove: &[String],
) -> Result<Edited, EditError> {
    if collection != Collection::Lists {
        return Err(EditError::Body(format!(
            "only lists are patched, not {}",
            collection.key()
        )));
    }
    let at = position(items, collection, id)?;
    let Some(Value::Object(list)) = items.get_mut(at) else {
        return Err(EditError::Document(format!("list `{id}` is not an object")));
    };
    let entries = list
        .entry("items")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(entries) = entries else {
        return Err(EditError::Document(format!(
            "list `{id}`: `items` is not an array"
        )));
    };
    entries.retain(|item| {
        !item
            .get("value")
            .and_then(Value::as_str)
            .is_some_and(|v| remove.iter().any(|r| r == v))
    });
    entries.extend(append.iter().cloned());
    let result = shown(collection, &Value::Object(list.clone()));
    Ok(Edited {
        id: id.to_owned(),
        result,
    })
}

fn sha256_hex(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Fresh {
        Fresh::from_random("new-id".into(), &[0xaa; 32], &[0xbb; 16], &[0xcc; 32])
    }

    fn body(value: Value) -> Map<String, Value> {
        let Value::Object(map) = value else {
            panic!("a test body is an object: {value}")
        };
        map
    }

    fn doc() -> Value {
        json!({
            "team_domain": "https://access.example.com",
            "identity_providers": [{ "id": "entra", "name": "Entra", "type": "azureAD",
                "config": { "client_id": "c", "directory_id": "d" } }],
            "apps": [{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com",
                "aud": "wiki-aud", "policies": [] }],
            "service_tokens": [{ "id": "ci", "name": "CI", "client_id": "ci.access",
                "client_secret_sha256": "ab".repeat(32) }],
            "lists": [{ "id": "staff", "name": "Staff", "type": "EMAIL",
                "items": [{ "value": "a@example.com" }, { "value": "b@example.com" }] }]
        })
    }

    #[test]
    fn collections_are_named_as_in_the_access_api() {
        for c in Collection::ALL {
            assert_eq!(Collection::parse(c.key()), Some(c));
        }
        for bad in ["", "app", "Apps", "access", "apps/"] {
            assert_eq!(Collection::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn create_get_list_update_delete() {
        let mut d = doc();
        let created = apply(
            &mut d,
            Collection::Policies,
            &Edit::Create(body(json!({"name": "Staff", "decision": "allow",
                "include": [{"everyone": {}}]}))),
            &fresh(),
        )
        .unwrap();
        assert_eq!(created.id, "new-id", "an id is drawn when none is given");
        assert_eq!(created.result["name"], "Staff");
        assert_eq!(
            find(&d, Collection::Policies, "new-id").unwrap(),
            created.result
        );
        assert_eq!(list(&d, Collection::Policies).unwrap().len(), 1);

        let updated = apply(
            &mut d,
            Collection::Policies,
            &Edit::Update(
                "new-id".into(),
                body(json!({"name": "Renamed", "decision": "deny", "include": []})),
            ),
            &fresh(),
        )
        .unwrap();
        assert_eq!(
            updated.result,
            json!({"id": "new-id", "name": "Renamed", "decision": "deny", "include": []}),
            "an update replaces the object"
        );

        let deleted = apply(
            &mut d,
            Collection::Policies,
            &Edit::Delete("new-id".into()),
            &fresh(),
        )
        .unwrap();
        assert_eq!(deleted.result, json!({"id": "new-id"}));
        assert_eq!(list(&d, Collection::Policies).unwrap(), Vec::<Value>::new());
        assert_eq!(
            find(&d, Collection::Policies, "new-id")
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn a_given_id_is_kept_and_a_duplicate_refused() {
        let mut d = doc();
        let app = json!({"id": "blog", "name": "Blog", "domain": "blog.example.com",
            "policies": []});
        let created = apply(
            &mut d,
            Collection::Apps,
            &Edit::Create(body(app.clone())),
            &fresh(),
        )
        .unwrap();
        assert_eq!(created.id, "blog");
        assert_eq!(
            created.result["aud"],
            "aa".repeat(32),
            "an audience tag is drawn"
        );
        let again = apply(&mut d, Collection::Apps, &Edit::Create(body(app)), &fresh());
        assert_eq!(
            again.unwrap_err(),
            EditError::Duplicate {
                collection: Collection::Apps,
                id: "blog".into()
            }
        );
        assert_eq!(list(&d, Collection::Apps).unwrap().len(), 2);
        for bad in [json!(""), json!(7), json!(null), json!("a\u{0}b")] {
            let mut b = body(json!({"name": "x"}));
            b.insert("id".into(), bad.clone());
            let refused = apply(&mut d, Collection::Groups, &Edit::Create(b), &fresh());
            assert!(
                matches!(refused, Err(EditError::Field { ref field, .. }) if field == "id"),
                "{bad}: {refused:?}"
            );
        }
    }

    #[test]
    fn updates_keep_what_the_api_assigns_and_refuse_another_id() {
        let mut d = doc();
        let updated = apply(
            &mut d,
            Collection::Apps,
            &Edit::Update(
                "wiki".into(),
                body(json!({"name": "Wiki 2", "domain": "wiki.example.com", "policies": []})),
            ),
            &fresh(),
        )
        .unwrap();
        assert_eq!(updated.result["aud"], "wiki-aud");
        let moved = apply(
            &mut d,
            Collection::Apps,
            &Edit::Update("wiki".into(), body(json!({"id": "other", "name": "x"}))),
            &fresh(),
        );
        assert!(matches!(moved, Err(EditError::Field { ref field, .. }) if field == "id"));
        let missing = apply(
            &mut d,
            Collection::Apps,
            &Edit::Update("nope".into(), body(json!({"name": "x"}))),
            &fresh(),
        );
        assert_eq!(missing.unwrap_err().status(), 404);
        assert_eq!(
            apply(
                &mut d,
                Collection::Lists,
                &Edit::Delete("nope".into()),
                &fresh()
            )
            .unwrap_err()
            .status(),
            404
        );

        let token = apply(
            &mut d,
            Collection::ServiceTokens,
            &Edit::Update("ci".into(), body(json!({"name": "CI renamed"}))),
            &fresh(),
        )
        .unwrap();
        assert_eq!(token.result["client_id"], "ci.access");
        assert_eq!(
            d["service_tokens"][0]["client_secret_sha256"],
            "ab".repeat(32),
            "the stored hash is kept"
        );
    }

    #[test]
    fn service_token_secrets_are_returned_once_and_stored_hashed() {
        let mut d = doc();
        let f = fresh();
        let created = apply(
            &mut d,
            Collection::ServiceTokens,
            &Edit::Create(body(json!({"name": "Deploy"}))),
            &f,
        )
        .unwrap();
        assert_eq!(created.result["client_secret"], f.client_secret);
        assert_eq!(
            created.result["client_id"],
            format!("{}.access", "bb".repeat(16))
        );
        assert!(created.result.get("client_secret_sha256").is_none());
        let stored = &d["service_tokens"][1];
        assert_eq!(stored["client_secret_sha256"], sha256_hex(&f.client_secret));
        assert!(stored.get("client_secret").is_none());
        assert!(!d.to_string().contains(&f.client_secret));
        for read in list(&d, Collection::ServiceTokens)
            .unwrap()
            .into_iter()
            .chain([find(&d, Collection::ServiceTokens, &created.id).unwrap()])
        {
            assert!(read.get("client_secret").is_none(), "{read}");
            assert!(read.get("client_secret_sha256").is_none(), "{read}");
        }

        // An existing secret's hash is imported as is, and nothing is returned.
        let imported = apply(
            &mut d,
            Collection::ServiceTokens,
            &Edit::Create(body(json!({"name": "Old", "client_id": "old.access",
                "client_secret_sha256": "cd".repeat(32)}))),
            &Fresh {
                id: "old".into(),
                ..fresh()
            },
        )
        .unwrap();
        assert!(imported.result.get("client_secret").is_none());

        let given = apply(
            &mut d,
            Collection::ServiceTokens,
            &Edit::Create(body(json!({"name": "x", "client_secret": "hunter2"}))),
            &fresh(),
        );
        assert!(
            matches!(given, Err(EditError::Field { ref field, ref message })
                if field == "client_secret" && !message.contains("hunter2")),
            "{given:?}"
        );

        let rotated = Fresh {
            client_secret: "ee".repeat(32),
            ..fresh()
        };
        let answer = apply(
            &mut d,
            Collection::ServiceTokens,
            &Edit::Rotate("ci".into()),
            &rotated,
        )
        .unwrap();
        assert_eq!(answer.result["client_secret"], "ee".repeat(32));
        assert_eq!(
            d["service_tokens"][0]["client_secret_sha256"],
            sha256_hex(&"ee".repeat(32))
        );
        assert!(apply(
            &mut d,
            Collection::Apps,
            &Edit::Rotate("wiki".into()),
            &fresh()
        )
        .is_err());
    }

    #[test]
    fn identity_provider_secrets_are_refused_and_never_shown() {
        let mut d = doc();
        for (bad, name) in [
            (
                json!({"name": "E", "type": "azureAD", "config": {"client_secret": "s3"}}),
                "config.client_secret",
            ),
            (
                json!({"name": "E", "type": "azureAD", "config": {},
                    "scim_config": {"secret": "s3"}}),
                "scim_config.secret",
            ),
        ] {
            for edit in [
                Edit::Create(body(bad.clone())),
                Edit::Update("entra".into(), body(bad)),
            ] {
                let refused = apply(&mut d, Collection::IdentityProviders, &edit, &fresh());
                assert!(
                    matches!(refused, Err(EditError::Field { ref field, .. }) if field == name),
                    "{refused:?}"
                );
            }
        }
        assert_eq!(d, doc(), "nothing refused was applied");
        // A stored document holding them (written whole) still never shows them here.
        d["identity_providers"][0]["config"]["client_secret"] = json!("s3");
        d["identity_providers"][0]["scim_config"] = json!({"secret": "s4", "enabled": true});
        let shown = find(&d, Collection::IdentityProviders, "entra").unwrap();
        assert!(!shown.to_string().contains("s3") && !shown.to_string().contains("s4"));
        assert_eq!(shown["scim_config"]["enabled"], true);
    }

    #[test]
    fn list_items_are_read_and_patched() {
        let mut d = doc();
        assert_eq!(list_items(&d, "staff").unwrap().len(), 2);
        assert_eq!(list_items(&d, "nope").unwrap_err().status(), 404);
        let patch = list_patch(
            "staff",
            body(json!({"append": [{"value": "c@example.com"}], "remove": ["a@example.com"]})),
        )
        .unwrap();
        apply(&mut d, Collection::Lists, &patch, &fresh()).unwrap();
        let values: Vec<Value> = list_items(&d, "staff")
            .unwrap()
            .iter()
            .map(|i| i["value"].clone())
            .collect();
        assert_eq!(values, [json!("b@example.com"), json!("c@example.com")]);
        for bad in [
            json!({"append": "x"}),
            json!({"append": ["x"]}),
            json!({"remove": [1]}),
            json!({"remove": "a"}),
            json!({"add": []}),
        ] {
            assert!(list_patch("staff", body(bad.clone())).is_err(), "{bad}");
        }
    }

    #[test]
    fn bodies_are_one_json_object_without_duplicate_keys() {
        assert_eq!(
            object(r#"{"a": {"b": [1, {"c": null}]}}"#).unwrap(),
            body(json!({"a": {"b": [1, {"c": null}]}}))
        );
        for bad in [
            "",
            "null",
            "[]",
            "\"x\"",
            "{",
            "{} {}",
            r#"{"a": 1, "a": 2}"#,
            r#"{"a": {"b": 1, "b": 1}}"#,
            r#"{"a": [{"b": 1, "b": 1}]}"#,
        ] {
            assert!(
                matches!(object(bad), Err(EditError::Body(_))),
                "{bad}: {:?}",
                object(bad)
            );
        }
        assert!(object(r#"{"a": 1, "a": 2}"#)
            .unwrap_err()
            .to_json()
            .to_string()
            .contains("duplicate key `a`"));
    }

    #[test]
    fn an_apps_own_policies_are_edited_and_its_links_shown_resolved() {
        let mut d = doc();
        d["policies"] = json!([{"id": "anyone", "name": "Anyone", "decision": "bypass",
            "include": [{"everyone": {}}]}]);
        d["apps"][0]["policies"] = json!(["anyone"]);
        let app = |edit: Edit| Edit::AppPolicies {
            app: "wiki".into(),
            edit: Box::new(edit),
        };
        let created = apply(
            &mut d,
            Collection::Apps,
            &app(Edit::Create(body(
                json!({"name": "Staff", "decision": "allow",
                "include": [{"everyone": {}}]}),
            ))),
            &fresh(),
        )
        .unwrap();
        assert_eq!(created.id, "wiki/policies/new-id");
        assert_eq!(created.result["id"], "new-id");
        let listed = app_policies(&d, "wiki").unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!(listed[0]["name"], "Anyone");
        assert_eq!(listed[0]["reusable"], true);
        assert_eq!(listed[0]["precedence"], 1);
        assert_eq!(listed[1], created.result);
        assert_eq!(app_policy(&d, "wiki", "new-id").unwrap(), created.result);

        let updated = apply(
            &mut d,
            Collection::Apps,
            &app(Edit::Update(
                "new-id".into(),
                body(json!({"name": "Staff 2", "decision": "deny", "include": []})),
            )),
            &fresh(),
        )
        .unwrap();
        assert_eq!(d["apps"][0]["policies"][1], updated.result);
        assert_eq!(updated.result["name"], "Staff 2");

        let link = apply(
            &mut d,
            Collection::Apps,
            &app(Edit::Update("anyone".into(), body(json!({"name": "x"})))),
            &fresh(),
        );
        assert!(
            matches!(link, Err(EditError::Field { ref field, .. }) if field == "id"),
            "{link:?}"
        );
        let again = apply(
            &mut d,
            Collection::Apps,
            &app(Edit::Create(body(json!({"id": "new-id", "name": "x"})))),
            &fresh(),
        );
        assert_eq!(again.unwrap_err().status(), 409);
        apply(
            &mut d,
            Collection::Apps,
            &app(Edit::Delete("anyone".into())),
            &fresh(),
        )
        .unwrap();
        assert_eq!(d["apps"][0]["policies"], json!([updated.result]));
        assert_eq!(
            d["policies"][0]["id"], "anyone",
            "the reusable policy itself stays"
        );
        for missing in [
            app_policies(&d, "nope").unwrap_err(),
            app_policy(&d, "wiki", "nope").unwrap_err(),
            apply(
                &mut d,
                Collection::Apps,
                &app(Edit::Delete("nope".into())),
                &fresh(),
            )
            .unwrap_err(),
        ] {
            assert_eq!(missing.status(), 404);
        }
    }

    #[test]
    fn path_ids_are_percent_decoded_strictly() {
        assert_eq!(path_id("wiki").as_deref(), Some("wiki"));
        assert_eq!(path_id("staff%20list").as_deref(), Some("staff list"));
        assert_eq!(path_id("a%2Fb").as_deref(), Some("a/b"));
        assert_eq!(path_id("%C3%A9").as_deref(), Some("é"));
        for bad in ["", "%", "%2", "%zz", "%+1", "%FF", "a%00b", "%0A"] {
            assert_eq!(path_id(bad), None, "{bad}");
        }
        assert_eq!(
            path_id(&"a".repeat(MAX_ID)).map(|id| id.len()),
            Some(MAX_ID)
        );
        assert_eq!(path_id(&"a".repeat(MAX_ID + 1)), None);
    }

    #[test]
    fn pages_count_from_one() {
        let items: Vec<Value> = (0..5).map(Value::from).collect();
        let (shown, info) = page(&items, 2, 2);
        assert_eq!(shown, [json!(2), json!(3)]);
        assert_eq!(
            info,
            json!({"page": 2, "per_page": 2, "count": 2, "total_count": 5})
        );
        let (shown, info) = page(&items, 9, 2);
        assert!(shown.is_empty());
        assert_eq!(info["count"], 0);
        let (shown, _) = page(&items, u64::MAX, u64::MAX);
        assert!(shown.is_empty());
    }
}

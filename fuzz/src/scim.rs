//! The SCIM crate: filters, attribute paths, PATCH bodies and User/Group bodies, as Entra's
//! provisioning client (or anyone holding the SCIM token) sends them.

use edge_access_scim::{
    apply, conditions, fold, split_members, AttrPath, Filter, GroupRecord, MemberChange,
    PatchRequest, ResourceKind, UserRecord,
};
use serde_json::{json, Map, Value};

/// The longest filter `Filter::parse` reads.
const MAX_FILTER_LEN: usize = 2048;
/// The longest path `AttrPath::parse` reads.
const MAX_PATH_LEN: usize = 512;

/// `Filter::parse` and `conditions`: a filter written back as text parses to the same filter.
pub fn scim_filter(data: &[u8]) {
    let Some(text) = crate::text(data) else {
        return;
    };
    let Ok(filter) = Filter::parse(text) else {
        return;
    };
    assert!(!filter.all.is_empty(), "a filter without comparisons");
    let written = filter_text(&filter);
    // Quoting can make a value longer than the limit (bare words may hold control characters,
    // which a quoted string must escape).
    if written.len() > MAX_FILTER_LEN
        || filter
            .all
            .iter()
            .any(|c| path_text(&c.path).len() > MAX_PATH_LEN)
    {
        return;
    }
    match Filter::parse(&written) {
        Ok(again) => assert_eq!(
            again, filter,
            "`{text}` written back as `{written}` differs"
        ),
        Err(e) => panic!("`{text}` written back as `{written}` is refused: {e}"),
    }
    for kind in [ResourceKind::User, ResourceKind::Group] {
        if let Ok(conditions) = conditions(&filter, kind) {
            assert_eq!(conditions.len(), filter.all.len());
        }
    }
}

/// `AttrPath::parse`: a path written back as text parses to the same path.
pub fn scim_path(data: &[u8]) {
    let Some(text) = crate::text(data) else {
        return;
    };
    let Ok(path) = AttrPath::parse(text) else {
        return;
    };
    let written = path_text(&path);
    if written.len() > MAX_PATH_LEN {
        return;
    }
    match AttrPath::parse(&written) {
        Ok(again) => assert_eq!(again, path, "`{text}` written back as `{written}` differs"),
        Err(e) => panic!("`{text}` written back as `{written}` is refused: {e}"),
    }
}

/// A PATCH body, applied as the server applies it: to a user whole, to a group as its member
/// changes plus the rest.
///
/// Oracles: a failed apply leaves the resource unchanged; a resource that checks after the
/// PATCH checks again to the same record; member changes carry folded, unique, non-empty ids.
pub fn scim_patch(data: &[u8]) {
    let Ok(body) = edge_access_scim::parse_body(data) else {
        return;
    };
    let Ok(patch) = PatchRequest::parse(&body) else {
        return;
    };
    assert!(!patch.operations.is_empty());

    let mut user = stored_user();
    let before = user.clone();
    match apply(&mut user, &patch) {
        Ok(changes) => {
            if let Ok(record) = UserRecord::from_resource(user) {
                user_checks_again(&record);
                // The stored user is active: a PATCH that deactivates it says so.
                if !record.active {
                    assert_eq!(
                        changes.active,
                        Some(false),
                        "a PATCH deactivated the user without reporting it"
                    );
                }
            }
        }
        Err(_) => assert_eq!(user, before, "a failed PATCH changed the user"),
    }

    let Ok((rest, changes)) = split_members(&patch) else {
        return;
    };
    for change in &changes {
        let ids: &[String] = match change {
            MemberChange::Add(ids) | MemberChange::Remove(ids) | MemberChange::Replace(ids) => ids,
            MemberChange::RemoveAll => &[],
        };
        for (i, id) in ids.iter().enumerate() {
            assert!(!id.is_empty(), "an empty member id");
            assert_eq!(*id, fold(id), "member id `{id}` is not folded");
            assert!(
                !ids[..i].contains(id),
                "member id `{id}` twice in one change"
            );
        }
    }
    for op in &rest.operations {
        if let Some(path) = &op.path {
            assert!(
                !(path.attr.eq_ignore_ascii_case("members")
                    && path.urn.as_deref().is_none_or(|urn| {
                        urn.eq_ignore_ascii_case(edge_access_scim::GROUP_SCHEMA)
                    })),
                "a member operation was left in the rest: {op:?}"
            );
        }
    }
    let mut group = stored_group();
    let before = group.clone();
    match apply(&mut group, &rest) {
        Ok(_changes) => {
            if let Ok(record) = GroupRecord::from_resource(group) {
                group_checks_again(&record);
            }
        }
        Err(_) => assert_eq!(group, before, "a failed PATCH changed the group"),
    }
}

/// A User and a Group body: what is stored checks again to the same record, without `id`,
/// `meta` or nulls; group members are unique.
pub fn scim_resource(data: &[u8]) {
    let Ok(body) = edge_access_scim::parse_body(data) else {
        return;
    };
    if let Ok(record) = UserRecord::from_body(&body) {
        assert_eq!(record.user_name_key, fold(&record.user_name));
        assert!(!record.user_name.trim().is_empty());
        for server_owned in ["id", "meta"] {
            assert!(
                !record
                    .resource
                    .keys()
                    .any(|k| k.eq_ignore_ascii_case(server_owned)),
                "`{server_owned}` was stored"
            );
        }
        assert!(
            !has_null(&Value::Object(record.resource.clone())),
            "a null was stored"
        );
        user_checks_again(&record);
    }
    if let Ok(record) = GroupRecord::from_body(&body) {
        assert_eq!(record.display_name_key, fold(&record.display_name));
        for (i, id) in record.members.iter().enumerate() {
            assert!(!id.is_empty());
            assert!(
                !record.members[..i].contains(id),
                "member `{id}` kept twice"
            );
        }
        assert!(
            !record
                .resource
                .keys()
                .any(|k| k.eq_ignore_ascii_case("members")),
            "members were stored in the resource"
        );
        assert!(!has_null(&Value::Object(record.resource.clone())));
        group_checks_again(&record);
        // With its members put back, the stored group checks to the same record.
        let mut with_members = record.resource.clone();
        with_members.insert(
            "members".into(),
            Value::Array(
                record
                    .members
                    .iter()
                    .map(|id| json!({ "value": id }))
                    .collect(),
            ),
        );
        let again = GroupRecord::from_resource(with_members)
            .unwrap_or_else(|e| panic!("the stored group with its members is refused: {e}"));
        assert_eq!(again, record);
    }
}

fn user_checks_again(record: &UserRecord) {
    match UserRecord::from_resource(record.resource.clone()) {
        Ok(again) => assert_eq!(&again, record, "the stored user checks to another record"),
        Err(e) => panic!("the stored user is refused: {e}"),
    }
}

fn group_checks_again(record: &GroupRecord) {
    match GroupRecord::from_resource(record.resource.clone()) {
        Ok(again) => {
            let mut without_members = record.clone();
            without_members.members.clear();
            assert_eq!(
                again, without_members,
                "the stored group checks differently"
            );
        }
        Err(e) => panic!("the stored group is refused: {e}"),
    }
}

fn has_null(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Array(items) => items.iter().any(has_null),
        Value::Object(map) => map.values().any(has_null),
        _ => false,
    }
}

/// A user as stored after Entra's create (reference §5.3), with the enterprise extension.
fn stored_user() -> Map<String, Value> {
    let user = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
        "externalId": "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef",
        "userName": "Test_User_00aa00aa-bb11-cc22-dd33-44ee44ee44ee",
        "active": true,
        "displayName": "Ada",
        "emails": [{ "primary": true, "type": "work", "value": "ada@example.com" }],
        "name": { "formatted": "Ada Lovelace", "familyName": "Lovelace", "givenName": "Ada" },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": { "department": "Engineering" },
        "roles": []
    });
    match user {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A group as stored: no members in the resource (they are rows of their own).
fn stored_group() -> Map<String, Value> {
    let group = json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "externalId": "8aa1a5a9-e3c4-4e2f-9d3b-0e6c7b1f2a3d",
        "displayName": "Engineering"
    });
    match group {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// A filter as text: comparisons joined with `and`, values as JSON literals.
pub fn filter_text(filter: &Filter) -> String {
    filter
        .all
        .iter()
        .map(|c| format!("{} eq {}", path_text(&c.path), c.value))
        .collect::<Vec<_>>()
        .join(" and ")
}

/// A path as text: `urn:…:attr[sub eq "value"].sub`.
pub fn path_text(path: &AttrPath) -> String {
    let mut text = String::new();
    if let Some(urn) = &path.urn {
        text.push_str(urn);
        text.push(':');
    }
    text.push_str(&path.attr);
    if let Some(filter) = &path.filter {
        // As written: a boolean or null bare, a string quoted.
        text.push_str(&format!("[{} eq {}]", filter.attr, filter.literal));
    }
    if let Some(sub) = &path.sub_attr {
        text.push('.');
        text.push_str(sub);
    }
    text
}

//! Objects as Cloudflare's API returns them load: the fields the API fills in itself are
//! ignored, each with a warning naming it; any other unknown field is still refused.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use policy_core::Engine;
use serde_json::{json, Value};

const IDP: &str = "3f2a9c1e-7b4d-4e8a-9f61-0c5d2b8e7a13";
const POLICY: &str = "f1d2c3b4-a5e6-4789-8abc-def012345678";
const GROUP: &str = "aa0a4aab-672b-4bdb-bc33-a59f1130a11f";
const READ_ONLY: &str = "read-only field of Cloudflare's API, ignored";

/// A document made of objects shaped like the API's answers (fake ids).
fn exported() -> Value {
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{
            "id": IDP, "uid": IDP, "name": "Entra ID", "type": "azureAD", "version": "3a1f",
            "config": { "client_id": "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
                "directory_id": "9c4e1b7a-3d2f-4a8e-b615-0f7d2c9a4e31", "support_groups": true },
            "scim_config": { "enabled": true, "user_deprovision": true,
                "identity_update_behavior": "automatic", "updated_at": "2026-01-05T08:00:00Z" },
            "scim_base_url": "https://access.example.com/populations/x/scim/v2",
            "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z"
        }],
        "lists": [{
            "id": "0b7e4c1a-5d3f-4e2b-9a8c-6f1d2e3b4a5c", "name": "Contractors", "type": "EMAIL",
            "count": 1, "description": "",
            "items": [{ "value": "li@fabrikam.com", "created_at": "2025-03-02T10:11:12Z" }],
            "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z"
        }],
        "service_tokens": [{
            "id": "e9808c3a-705c-4afc-a507-6e4b083ff399", "name": "CI",
            "client_id": "e367826f93b8d71185e03fe518aff3b4.access",
            "client_secret_sha256": "ab".repeat(32), "duration": "8760h",
            "expires_at": "2027-03-02T10:11:12Z", "last_seen_at": "2026-01-05T08:00:00Z",
            "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z"
        }],
        "groups": [{
            "id": GROUP, "name": "Finance", "is_default": false,
            "include": [{ "azureAD": { "id": "a7d2f4c9-3e81-4b6a-8c07-5f9e2d1b4a63",
                "identity_provider_id": IDP } }],
            "require": [], "exclude": [],
            "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z"
        }],
        "policies": [{
            "id": POLICY, "name": "Staff", "decision": "allow",
            "include": [{ "email_domain": { "domain": "example.com" } }],
            "require": [], "exclude": [], "session_duration": "8h",
            "approval_required": false, "purpose_justification_required": false,
            "isolation_required": false, "reusable": true, "app_count": 1,
            "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z"
        }],
        "apps": [{
            "id": "7c0e9b1a-2f4d-4c6e-8a1b-3d5f7e9a0c2b", "uid": "7c0e9b1a-2f4d-4c6e-8a1b-3d5f7e9a0c2b",
            "type": "self_hosted", "name": "Ledger", "domain": "ledger.example.com",
            "aud": "fa4ee2724daf4c608011207c9878af252c6f76f24b94da72ff3cd2c2f43d94a9",
            "allowed_idps": [IDP], "session_duration": "24h", "app_launcher_visible": true,
            "auto_redirect_to_identity": false, "skip_interstitial": false, "tags": [],
            "logo_url": "",
            "policies": [
                { "id": POLICY, "precedence": 2 },
                { "id": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9", "name": "Finance",
                  "decision": "allow", "precedence": 1,
                  "include": [{ "group": { "id": GROUP } }], "require": [], "exclude": [],
                  "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z",
                  "uid": "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9" }
            ],
            "created_at": "2025-03-02T10:11:12Z", "updated_at": "2026-01-05T08:00:00Z"
        }]
    })
}

fn warnings(doc: &Value) -> Vec<(String, String)> {
    Engine::from_json(&doc.to_string())
        .unwrap_or_else(|e| panic!("does not load: {e}"))
        .warnings()
        .iter()
        .map(|w| (w.path.clone(), w.message.clone()))
        .collect()
}

fn errors(doc: &Value) -> Vec<(String, String)> {
    let Err(errors) = Engine::from_json(&doc.to_string()) else {
        panic!("loads");
    };
    errors
        .errors()
        .iter()
        .map(|e| (e.path.clone(), e.message.clone()))
        .collect()
}

#[test]
fn an_exported_document_loads_and_names_every_read_only_field() {
    let got = warnings(&exported());
    let mut read_only: Vec<&str> = got
        .iter()
        .filter(|(_, m)| m == READ_ONLY)
        .map(|(p, _)| p.as_str())
        .collect();
    read_only.sort_unstable();
    let mut want = vec![
        "identity_providers[0].uid",
        "identity_providers[0].version",
        "identity_providers[0].scim_config.updated_at",
        "identity_providers[0].scim_base_url",
        "identity_providers[0].created_at",
        "identity_providers[0].updated_at",
        "lists[0].count",
        "lists[0].items[0].created_at",
        "lists[0].created_at",
        "lists[0].updated_at",
        "service_tokens[0].expires_at",
        "service_tokens[0].last_seen_at",
        "service_tokens[0].created_at",
        "service_tokens[0].updated_at",
        "groups[0].created_at",
        "groups[0].updated_at",
        "policies[0].reusable",
        "policies[0].app_count",
        "policies[0].created_at",
        "policies[0].updated_at",
        "apps[0].uid",
        "apps[0].policies[1].created_at",
        "apps[0].policies[1].updated_at",
        "apps[0].policies[1].uid",
        "apps[0].created_at",
        "apps[0].updated_at",
    ];
    want.sort_unstable();
    assert_eq!(read_only, want);
}

#[test]
fn read_only_fields_change_no_decision() {
    let mut doc = exported();
    // The request names no identity provider.
    doc["apps"][0]
        .as_object_mut()
        .unwrap()
        .remove("allowed_idps");
    let engine = Engine::from_json(&doc.to_string()).unwrap();
    let request = policy_core::Request::from_json(
        &json!({ "app": "ledger.example.com/", "identity": { "email": "ada@example.com" } })
            .to_string(),
    )
    .unwrap();
    let verdict = engine.decide(&request).unwrap();
    assert_eq!(verdict.outcome, policy_core::Outcome::Allow);
}

#[test]
fn a_mistyped_field_is_still_refused() {
    for (at, key) in [
        ("apps", "created"),
        ("policies", "updated"),
        ("groups", "uuid"),
        ("lists", "counts"),
        ("service_tokens", "last_seen"),
        ("identity_providers", "scim_url"),
    ] {
        let mut doc = exported();
        doc[at][0][key] = json!("2025-03-02T10:11:12Z");
        assert_eq!(
            errors(&doc),
            [(format!("{at}[0]"), format!("unknown field `{key}`"))],
            "{at}.{key}"
        );
    }
}

#[test]
fn settings_not_implemented_are_still_refused() {
    for key in [
        "enable_binding_cookie",
        "cors_headers",
        "custom_pages",
        "destinations",
        "self_hosted_domains",
    ] {
        let mut doc = exported();
        doc["apps"][0][key] = json!(true);
        assert_eq!(
            errors(&doc),
            [("apps[0]".into(), format!("unknown field `{key}`"))],
            "{key}"
        );
    }
}

/// A SCIM bearer secret is no read-only field to ignore: stored in the document it would be
/// served by every read of it. It is refused, naming the secret it belongs in.
#[test]
fn a_scim_secret_is_refused() {
    let mut doc = exported();
    doc["identity_providers"][0]["scim_config"]["secret"] = json!("s3cr3t");
    let got = errors(&doc);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "identity_providers[0].scim_config.secret");
    assert!(got[0].1.contains("SCIM_TOKEN"), "{got:?}");
}

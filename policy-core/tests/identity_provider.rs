//! What the loader makes of an identity provider's `config`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use policy_core::{Engine, GroupMembershipClaims};
use serde_json::{json, Value};

fn document(config_extra: Value) -> String {
    let mut config = json!({
        "client_id": "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
        "directory_id": "9c4e1b7a-3d2f-4a8e-b615-0f7d2c9a4e31",
        "support_groups": true
    });
    for (k, v) in config_extra.as_object().unwrap() {
        config[k] = v.clone();
    }
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": "entra", "name": "Entra ID", "type": "azureAD", "config": config }],
        "apps": []
    })
    .to_string()
}

fn claims_of(config_extra: Value) -> GroupMembershipClaims {
    Engine::from_json(&document(config_extra))
        .unwrap()
        .identity_providers()[0]
        .group_membership_claims
}

#[test]
fn group_membership_claims_default_to_security_groups() {
    let claims = claims_of(json!({}));
    assert_eq!(claims, GroupMembershipClaims::SecurityGroup);
    assert!(claims.security_groups_only());
    assert_eq!(
        claims_of(json!({ "group_membership_claims": "SecurityGroup" })),
        GroupMembershipClaims::SecurityGroup
    );
    // `null` is "not set", as everywhere in the document (Cloudflare's API answers it).
    assert_eq!(
        claims_of(json!({ "group_membership_claims": null })),
        GroupMembershipClaims::SecurityGroup
    );
}

#[test]
fn group_membership_claims_all_counts_every_group() {
    let claims = claims_of(json!({ "group_membership_claims": "All" }));
    assert_eq!(claims, GroupMembershipClaims::All);
    assert!(!claims.security_groups_only());
    assert_eq!(claims.as_str(), "All");
}

#[test]
fn other_group_membership_claims_do_not_load() {
    for bad in [
        json!("ApplicationGroup"),
        json!("DirectoryRole"),
        json!("None"),
        json!("securitygroup"),
        json!(""),
        json!(["All"]),
    ] {
        let errors = Engine::from_json(&document(json!({ "group_membership_claims": bad })))
            .err()
            .unwrap_or_else(|| panic!("{bad} loaded"));
        assert!(
            errors
                .errors()
                .iter()
                .any(|e| e.path == "identity_providers[0].config.group_membership_claims"),
            "{bad}: {errors}"
        );
    }
}

fn provider(config_extra: Value) -> policy_core::IdentityProvider {
    Engine::from_json(&document(config_extra))
        .unwrap()
        .identity_providers()[0]
        .clone()
}

#[test]
fn audiences_default_to_the_client_id_and_its_api_uri() {
    let idp = provider(json!({}));
    assert!(idp.audiences.is_empty());
    for accepted in [
        "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
        "api://6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
        "api://6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64/",
    ] {
        assert!(idp.accepts_audience(accepted), "{accepted}");
    }
    for refused in [
        "https://api.example.com/edge",
        "api://other",
        "00000003-0000-0000-c000-000000000000",
        "",
    ] {
        assert!(!idp.accepts_audience(refused), "{refused}");
    }
}

#[test]
fn configured_audiences_replace_the_default_trailing_slash_aside() {
    let idp = provider(json!({ "audiences": ["https://api.example.com/edge/", "api://edge"] }));
    for accepted in [
        "https://api.example.com/edge",
        "https://api.example.com/edge/",
        "api://edge",
        "api://edge/",
    ] {
        assert!(idp.accepts_audience(accepted), "{accepted}");
    }
    for refused in [
        "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
        "api://6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
        "https://api.example.com/edge//",
        "https://API.example.com/edge",
        "https://api.example.com",
    ] {
        assert!(!idp.accepts_audience(refused), "{refused}");
    }
    for bad in [
        json!([]),
        json!([""]),
        json!(["api://a b"]),
        json!("api://edge"),
    ] {
        let errors = Engine::from_json(&document(json!({ "audiences": bad })))
            .err()
            .unwrap_or_else(|| panic!("{bad} loaded"));
        assert!(
            errors
                .errors()
                .iter()
                .any(|e| e.path.starts_with("identity_providers[0].config.audiences")),
            "{bad}: {errors}"
        );
    }
}

#[test]
fn app_signing_key_is_off_unless_set() {
    assert!(!provider(json!({})).app_signing_key);
    assert!(provider(json!({ "app_signing_key": true })).app_signing_key);
}

#[test]
fn the_engine_says_whether_a_rule_reads_the_authentication_methods() {
    let with = |policy: Value| {
        let mut doc: Value = serde_json::from_str(&document(json!({}))).unwrap();
        doc["apps"] = json!([{ "id": "a", "name": "A", "domain": "app.example.com", "aud": "aud",
            "policies": [policy] }]);
        Engine::from_json(&doc.to_string()).unwrap()
    };
    let everyone = json!({ "name": "p", "decision": "allow", "include": [{ "everyone": {} }] });
    assert!(!with(everyone).uses_auth_method());
    let mfa = json!({ "name": "p", "decision": "allow", "include": [{ "everyone": {} }],
        "require": [{ "auth_method": { "auth_method": "mfa" } }] });
    assert!(with(mfa).uses_auth_method());
}

/// The warnings of a document whose provider's `config` has `config_extra` and whose
/// `scim_config` is `scim`.
fn warnings_of(config_extra: Value, scim: Option<Value>) -> Vec<(String, String)> {
    let mut doc: Value = serde_json::from_str(&document(config_extra)).unwrap();
    if let Some(scim) = scim {
        doc["identity_providers"][0]["scim_config"] = scim;
    }
    Engine::from_json(&doc.to_string())
        .unwrap()
        .warnings()
        .iter()
        .map(|w| (w.path.clone(), w.message.clone()))
        .collect()
}

#[test]
fn settings_without_effect_are_warned_about_when_turned_on() {
    let at = "identity_providers[0]";
    for (extra, scim, path) in [
        (
            json!({ "conditional_access_enabled": true }),
            None,
            format!("{at}.config.conditional_access_enabled"),
        ),
        (
            json!({ "claims": ["oid", "preferred_username"] }),
            None,
            format!("{at}.config.claims"),
        ),
        (
            json!({ "redirect_url": "https://team.cloudflareaccess.com/cdn-cgi/access/callback" }),
            None,
            format!("{at}.config.redirect_url"),
        ),
        (
            json!({}),
            Some(json!({ "enabled": true, "user_deprovision": true, "seat_deprovision": true })),
            format!("{at}.scim_config.seat_deprovision"),
        ),
    ] {
        let warnings = warnings_of(extra.clone(), scim);
        assert_eq!(warnings.len(), 1, "{extra}: {warnings:?}");
        assert_eq!(warnings[0].0, path);
        assert!(warnings[0].1.contains("no effect"), "{warnings:?}");
    }
}

#[test]
fn settings_without_effect_left_off_are_not_warned_about() {
    let warnings = warnings_of(
        json!({ "conditional_access_enabled": false, "claims": [] }),
        Some(json!({ "enabled": true, "seat_deprovision": false })),
    );
    assert!(warnings.is_empty(), "{warnings:?}");
}

//! What the loader makes of an identity provider's `config`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
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

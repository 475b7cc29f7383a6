//! The loader's own tests (documents and their problems are mostly vector files).

use super::service_tokens::parse_sha256_hex;
use super::*;
use crate::ix::PolicyIx;
use crate::{EvalError, Outcome, Request, Target};

const DOCUMENT: &str = r#"{
  "team_domain": "https://access.example.com",
  "identity_providers": [{ "id": "entra", "name": "Entra", "type": "azureAD",
    "config": { "client_id": "c", "directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47" } }],
  "lists": [{ "id": "banned", "name": "Banned", "type": "EMAIL",
              "items": [{ "value": "eve@example.com" }] }],
  "groups": [{ "id": "banned", "name": "Banned", "include": [{ "email_list": { "id": "banned" } }] }],
  "apps": [{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
    "policies": [
      { "name": "Banned", "decision": "deny", "include": [{ "group": { "id": "banned" } }] },
      { "name": "Staff", "decision": "allow", "include": [{ "email_domain": { "domain": "example.com" } }] }
    ] }]
}"#;

fn eve() -> Request {
    let mut request = Request::new(Target::parse("wiki.example.com/").unwrap());
    request.identity = Some(crate::Identity {
        email: Some(crate::Email::parse("eve@example.com").unwrap()),
        ..crate::Identity::default()
    });
    request
}

#[test]
fn secret_hashes_are_hex_digits_only() {
    let digits = "ab".repeat(32);
    assert!(parse_sha256_hex(&digits).is_some());
    let signed = format!("+a{}", "ab".repeat(31));
    assert_eq!(parse_sha256_hex(&signed), None);
    assert_eq!(parse_sha256_hex(&"ab".repeat(31)), None);
}

/// A missing entry behind an index is an error: skipping the deny policy, or reading its
/// group or list as "no match", would let eve in.
#[test]
fn a_missing_entry_is_an_error_never_a_skipped_rule() {
    let engine = crate::Engine::from_json(DOCUMENT).unwrap();
    assert_eq!(engine.decide(&eve()).unwrap().outcome, Outcome::Block);

    let mut engine = crate::Engine::from_json(DOCUMENT).unwrap();
    engine.apps[0].order[0].policy = PolicyIx::new(MINTED, 99);
    assert_eq!(
        engine.decide(&eve()).unwrap_err(),
        EvalError::Inconsistent {
            table: "policy",
            index: 99
        }
    );

    let mut engine = crate::Engine::from_json(DOCUMENT).unwrap();
    engine.groups.clear();
    assert!(matches!(
        engine.decide(&eve()),
        Err(EvalError::Inconsistent {
            table: "access group",
            ..
        })
    ));

    let mut engine = crate::Engine::from_json(DOCUMENT).unwrap();
    engine.lists.clear();
    assert!(matches!(
        engine.evaluate(&eve()),
        Err(EvalError::Inconsistent { table: "list", .. })
    ));
}

/// A group rule of a provider that reads no groups can never match, which silently empties an
/// `exclude`: the loader says so, at the rule, naming the provider.
#[test]
fn a_group_rule_of_a_provider_without_groups_is_warned_about() {
    let rule = r#"{ "azureAD": { "id": "3e6e1b7a-2f4c-4d5e-8a9b-0c1d2e3f4a5b",
                                  "identity_provider_id": "entra" } }"#;
    let document = |support_groups: bool| {
        DOCUMENT
            .replace(
                r#""directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47" }"#,
                &format!(
                    r#""directory_id": "72f988bf-86f1-41af-91ab-2d7cd011db47", "support_groups": {support_groups} }}"#
                ),
            )
            .replace(
                r#"{ "name": "Banned", "decision": "deny", "include": [{ "group": { "id": "banned" } }] }"#,
                &format!(
                    r#"{{ "name": "Banned", "decision": "deny", "include": [{{ "group": {{ "id": "banned" }} }}], "exclude": [{rule}] }}"#
                ),
            )
    };
    let off = crate::Engine::from_json(&document(false)).unwrap();
    let warned: alloc::vec::Vec<_> = off
        .warnings()
        .iter()
        .filter(|w| w.message.contains("support_groups"))
        .collect();
    assert_eq!(warned.len(), 1, "{:?}", off.warnings());
    assert_eq!(warned[0].path, "apps[0].policies[0].exclude[0].azureAD");
    assert!(warned[0].message.contains("`entra`"));
    let on = crate::Engine::from_json(&document(true)).unwrap();
    assert!(
        !on.warnings()
            .iter()
            .any(|w| w.message.contains("support_groups")),
        "{:?}",
        on.warnings()
    );
}

/// `auto_redirect_to_identity` is a setting of its own (no longer accepted without effect): a
/// boolean, default `false`, and no warning.
#[test]
fn auto_redirect_to_identity_is_read() {
    let with = |value: &str| {
        DOCUMENT.replace(
            r#""aud": "a","#,
            &format!(r#""aud": "a", "auto_redirect_to_identity": {value},"#),
        )
    };
    let engine = crate::Engine::from_json(DOCUMENT).unwrap();
    assert!(!engine.apps()[0].auto_redirect_to_identity());
    let engine = crate::Engine::from_json(&with("true")).unwrap();
    assert!(engine.apps()[0].auto_redirect_to_identity());
    assert!(engine
        .warnings()
        .iter()
        .all(|w| !w.path.contains("auto_redirect_to_identity")));
    assert!(
        !crate::Engine::from_json(&with("false")).unwrap().apps()[0].auto_redirect_to_identity()
    );
    let errors = crate::Engine::from_json(&with(r#""yes""#)).unwrap_err();
    assert!(
        errors.to_string().contains("auto_redirect_to_identity"),
        "{errors}"
    );
}

//! A directory learned from one identity provider (SCIM) nests groups for that provider's
//! identities only: another provider's identity carrying the same group id is read with the
//! document's nesting alone, by `decide`, `evaluate` and prepared identities alike.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use policy_core::{
    DirectoryError, Engine, GroupId, Identity, Outcome, ProviderDirectory, Request, Target,
};

const CHILD: &str = "11111111-1111-4111-8111-111111111111";
const PARENT: &str = "22222222-2222-4222-8222-222222222222";

fn document() -> String {
    let provider = |id: &str, tenant: &str| {
        format!(
            r#"{{ "id": "{id}", "name": "{id}", "type": "azureAD",
                 "config": {{ "client_id": "c-{id}", "directory_id": "{tenant}", "support_groups": true }} }}"#
        )
    };
    let rule = |idp: &str| {
        format!(r#"{{ "azureAD": {{ "id": "{PARENT}", "identity_provider_id": "{idp}" }} }}"#)
    };
    format!(
        r#"{{ "team_domain": "https://access.example.com",
             "identity_providers": [{}, {}],
             "apps": [{{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
               "policies": [{{ "name": "Parent", "decision": "allow",
                              "include": [{}, {}] }}] }}] }}"#,
        provider("ours", "72f988bf-86f1-41af-91ab-2d7cd011db47"),
        provider("partner", "8d3b4c5e-6f70-4b8c-9dae-1f2a3b4c5d6e"),
        rule("ours"),
        rule("partner"),
    )
}

fn request(idp: &str) -> Request {
    let mut request = Request::new(Target::parse("wiki.example.com/").unwrap());
    let mut identity = Identity::default();
    identity.idp_id = Some(idp.into());
    identity.groups = vec![GroupId::parse(CHILD).unwrap()];
    request.identity = Some(identity);
    request
}

fn outcomes(engine: &Engine, idp: &str) -> [Outcome; 3] {
    let request = request(idp);
    let prepared = engine.prepare_identity(request.identity.clone().unwrap());
    [
        engine.decide(&request).unwrap().outcome,
        engine.evaluate(&request).unwrap().outcome,
        engine.decide_as(&request, &prepared).unwrap().outcome,
    ]
}

#[test]
fn a_directory_nests_groups_for_its_own_provider_only() {
    let base = Engine::from_json(&document()).unwrap();
    let mut directory = ProviderDirectory::new("ours");
    directory.group_parents = vec![(
        GroupId::parse(CHILD).unwrap(),
        GroupId::parse(PARENT).unwrap(),
    )];
    directory.group_names = vec![(GroupId::parse(PARENT).unwrap(), "Parent".into())];
    let scoped = base.with_directory(&directory).unwrap();

    // Without the directory, nobody in Child is in Parent.
    assert_eq!(outcomes(&base, "ours"), [Outcome::DefaultDeny; 3]);
    assert_eq!(outcomes(&base, "partner"), [Outcome::DefaultDeny; 3]);
    // With it: the provider's own identities are; the partner's, with the same id, are not.
    assert_eq!(outcomes(&scoped, "ours"), [Outcome::Allow; 3]);
    assert_eq!(outcomes(&scoped, "partner"), [Outcome::DefaultDeny; 3]);
    // The directory's names explain the decision.
    let trace = scoped.evaluate(&request("ours")).unwrap().trace.join("\n");
    assert!(trace.contains("(Parent)"), "{trace}");

    // An identity prepared by the base engine is decided with the directory all the same.
    let stale = base.prepare_identity(request("ours").identity.unwrap());
    assert!(!stale.is_for(&scoped));
    assert_eq!(
        scoped.decide_as(&request("ours"), &stale).unwrap().outcome,
        Outcome::Allow
    );
    // Adding a directory again replaces it rather than adding to it.
    let emptied = scoped
        .with_directory(&ProviderDirectory::new("ours"))
        .unwrap();
    assert_eq!(outcomes(&emptied, "ours"), [Outcome::DefaultDeny; 3]);
}

#[test]
fn a_directory_of_an_unknown_provider_is_refused() {
    let base = Engine::from_json(&document()).unwrap();
    assert_eq!(
        base.with_directory(&ProviderDirectory::new("nobody"))
            .unwrap_err(),
        DirectoryError::UnknownProvider("nobody".into())
    );
}

/// `Options::group_parents` (a SCIM export, as `policy --directory` reads it) nests the groups
/// of the provider SCIM provisions, as the gateway does; with no such provider, everyone's —
/// and the engine says so.
#[test]
fn learned_edges_in_options_follow_the_scim_provider() {
    let mut options = policy_core::Options::default();
    options.group_parents = vec![(
        GroupId::parse(CHILD).unwrap(),
        GroupId::parse(PARENT).unwrap(),
    )];
    let scim = document().replacen(
        r#""support_groups": true } }"#,
        r#""support_groups": true }, "scim_config": { "enabled": true } }"#,
        1,
    );
    let scoped = Engine::from_json_with(&scim, &options).unwrap();
    assert_eq!(outcomes(&scoped, "ours"), [Outcome::Allow; 3]);
    assert_eq!(outcomes(&scoped, "partner"), [Outcome::DefaultDeny; 3]);
    assert!(scoped.warnings().is_empty(), "{:?}", scoped.warnings());

    let everyone = Engine::from_json_with(&document(), &options).unwrap();
    assert_eq!(outcomes(&everyone, "ours"), [Outcome::Allow; 3]);
    assert_eq!(outcomes(&everyone, "partner"), [Outcome::Allow; 3]);
    assert!(
        everyone
            .warnings()
            .iter()
            .any(|w| w.message.contains("scim_config")),
        "{:?}",
        everyone.warnings()
    );
}

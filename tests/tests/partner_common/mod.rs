//! What the partner-tenant tests share: a document with the organisation's provider and a
//! partner tenant's (the emulator's partner), apps that admit one, the other or both, and one
//! stack per test binary.

#![allow(dead_code, reason = "each test file uses part of these helpers")]

use std::sync::OnceLock;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::fixtures::Fixtures;
use serde_json::{json, Value};

/// The organisation's own tenant.
pub const HOME: &str = "entra";
/// The partner tenant, with its own client secret (`AZURE_CLIENT_SECRET_PARTNER_FABRIKAM`).
pub const PARTNER: &str = "partner-fabrikam";
/// The partner tenant again, under an id whose secret is not set: it falls back to
/// `AZURE_CLIENT_SECRET`, the organisation's, which the partner tenant refuses.
pub const PARTNER_UNSET: &str = "partner-no-secret";
/// The partner provider's name, with characters HTML must escape.
pub const PARTNER_NAME: &str = "Fabrikam <Partners> & \"Co\"";
/// The shared app's name, with markup that must show as text.
pub const SHARED_APP_NAME: &str = "Shared <b>wiki</b>";

/// Apps on the worker's host:
/// - `/both`: either provider (`allowed_idps` both), anyone signed in;
/// - `/any`: no `allowed_idps` (every provider of the document), anyone signed in;
/// - `/home`: `allowed_idps` the organisation's only;
/// - `/staff`: every provider, a policy admitting the organisation's (`login_method`);
/// - `/partners`: every provider, a policy admitting the partner's (`login_method`) or its
///   Fabrikam contractors group;
/// - `/scoped`: the partner's group Fabrikam contractors, but as a group of the organisation's
///   provider (which has no such group): nobody;
/// - `/eng`: Engineering of the organisation's provider (nested);
/// - `/auto`: every provider, `auto_redirect_to_identity`;
/// - `/unset`: the partner under the provider whose secret is not set.
pub fn document(fixtures: &Fixtures) -> Value {
    let partner = fixtures.partner.as_deref().unwrap();
    let contractors = partner.group_id("Fabrikam contractors").unwrap();
    let everyone = json!([{ "name": "Anyone signed in", "decision": "allow", "include": [{ "everyone": {} }] }]);
    let app = |id: &str, name: &str, extra: Value, policies: Value| {
        let mut app = json!({ "id": id, "name": name, "domain": format!("${{WORKER_HOST}}/{id}"),
                              "aud": format!("aud-{id}"), "policies": policies });
        if let (Some(app), Some(extra)) = (app.as_object_mut(), extra.as_object()) {
            app.extend(extra.clone());
        }
        app
    };
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [
            { "id": HOME, "name": "Contoso Entra ID", "type": "azureAD",
              "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}", "support_groups": true } },
            { "id": PARTNER, "name": PARTNER_NAME, "type": "azureAD",
              "config": { "client_id": "${PARTNER_CLIENT_ID}", "directory_id": "${PARTNER_TENANT_ID}", "support_groups": true } },
            { "id": PARTNER_UNSET, "name": "Fabrikam (no secret)", "type": "azureAD",
              "config": { "client_id": "${PARTNER_CLIENT_ID}", "directory_id": "${PARTNER_TENANT_ID}" } }
        ],
        "apps": [
            app("both", SHARED_APP_NAME, json!({ "allowed_idps": [HOME, PARTNER] }), everyone.clone()),
            app("any", "Anyone", json!({}), everyone.clone()),
            app("home", "Home only", json!({ "allowed_idps": [HOME] }), everyone.clone()),
            app("staff", "Staff", json!({}), json!([{ "name": "The organisation", "decision": "allow",
                "include": [{ "login_method": { "id": HOME } }] }])),
            app("partners", "Partner portal", json!({}), json!([{ "name": "Fabrikam", "decision": "allow",
                "include": [{ "login_method": { "id": PARTNER } },
                            { "azureAD": { "id": contractors, "identity_provider_id": PARTNER } }] }])),
            app("scoped", "Scoped", json!({}), json!([{ "name": "Contractors of the organisation", "decision": "allow",
                "include": [{ "azureAD": { "id": contractors, "identity_provider_id": HOME } }] }])),
            app("eng", "Engineering", json!({}), json!([{ "name": "Engineering", "decision": "allow",
                "include": [{ "azureAD": { "id": fixtures.group_id("Engineering").unwrap(), "identity_provider_id": HOME } }] }])),
            app("auto", "Auto", json!({ "auto_redirect_to_identity": true }), everyone.clone()),
            app("unset", "Unset", json!({ "allowed_idps": [PARTNER_UNSET] }), everyone)
        ]
    })
}

/// One stack for every test of the binary.
pub fn stack(binary: &str) -> &'static Stack {
    static STACK: OnceLock<Result<Stack, String>> = OnceLock::new();
    let stack = STACK.get_or_init(|| {
        let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
        Stack::start(
            StackConfig::new(document(&fixtures))
                .named(binary)
                .with_var(
                    "AZURE_CLIENT_SECRET_PARTNER_FABRIKAM",
                    "${PARTNER_CLIENT_SECRET}",
                ),
        )
        .map_err(|e| e.to_string())
    });
    match stack {
        Ok(stack) => stack,
        Err(error) => panic!("the stack did not start: {error}"),
    }
}

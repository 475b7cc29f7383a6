//! `edge-access config import` on saved answers of Cloudflare's Access API (fake ids).
#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

use std::process::{Command, Output};

use serde_json::{json, Value};

fn fixture(name: &str) -> String {
    format!(
        "{}/tests/fixtures/import/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

fn import(files: &[&str], extra: &[&str]) -> Output {
    let paths: Vec<String> = files.iter().map(|f| fixture(f)).collect();
    Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args([
            "config",
            "import",
            "--team-domain",
            "https://access.example.com",
        ])
        .args(extra)
        .args(&paths)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const EXPORT: [&str; 5] = [
    "apps.json",
    "policies.json",
    "groups.json",
    "identity_provider.json",
    "lists.json",
];

#[test]
fn an_export_becomes_one_document_that_loads() {
    let out = import(&EXPORT, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let document: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(document["team_domain"], "https://access.example.com");
    assert_eq!(document["identity_providers"][0]["name"], "Entra ID");
    assert_eq!(document["lists"][0]["items"].as_array().unwrap().len(), 2);
    assert_eq!(document["groups"][0]["name"], "Contractors");
    assert_eq!(document["policies"][0]["name"], "Staff");
    // The warp app is left out; the app's copy of the reusable policy is a link to it.
    let apps = document["apps"].as_array().unwrap();
    assert_eq!(apps.len(), 1, "{document}");
    assert_eq!(
        apps[0]["policies"][0],
        json!({ "id": "f1d2c3b4-a5e6-4789-8abc-def012345678", "precedence": 2 })
    );
    assert_eq!(apps[0]["policies"][1]["name"], "Contractors");
    assert!(
        stderr.contains("app `Warp Login App` of type `warp` left out"),
        "{stderr}"
    );
    for ignored in [
        "apps[0].created_at",
        "apps[0].uid",
        "apps[0].policies[1].updated_at",
        "policies[0].app_count",
        "policies[0].reusable",
        "groups[0].created_at",
        "identity_providers[0].version",
        "identity_providers[0].scim_base_url",
        "lists[0].count",
        "lists[0].items[1].created_at",
    ] {
        assert!(
            stderr.contains(&format!(
                "left out {ignored}: read-only field of Cloudflare's API\n"
            )),
            "{ignored}: {stderr}"
        );
    }
    // Left out of the document, so loading it warns about none of them again.
    assert!(
        !stderr.contains("read-only field of Cloudflare's API, ignored"),
        "{stderr}"
    );
    assert!(
        stderr.contains("left out 20 read-only fields of Cloudflare's API"),
        "{stderr}"
    );
    assert_eq!(document["apps"][0].get("created_at"), None, "{document}");
    assert_eq!(document["apps"][0].get("uid"), None, "{document}");
    assert_eq!(document["policies"][0].get("reusable"), None, "{document}");
    assert_eq!(document["lists"][0].get("count"), None, "{document}");
    assert_eq!(
        document["lists"][0]["items"][0],
        json!({ "value": "li@fabrikam.com" })
    );
    // What the engine uses stays: the app's audience and the lists' items.
    assert!(document["apps"][0]["aud"].is_string(), "{document}");
    for key in ["self_hosted_domains", "destinations"] {
        assert!(
            stderr.contains(&format!(
                "warning: app `Ledger`: `{key}` same as `domain`, ignored"
            )),
            "{stderr}"
        );
    }
    assert!(!text(&out.stdout).contains("destinations"));

    // The document stands on its own: `policy check` loads it.
    let file = std::env::temp_dir().join(format!("edge-access-import-{}.json", std::process::id()));
    let written = Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args([
            "config",
            "import",
            "--team-domain",
            "https://access.example.com",
            "--out",
        ])
        .arg(&file)
        .args(EXPORT.iter().map(|f| fixture(f)))
        .output()
        .unwrap();
    assert_eq!(written.status.code(), Some(0), "{}", text(&written.stderr));
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read(&file).unwrap(), out.stdout);
    let check = Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args(["policy", "check", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(check.status.code(), Some(0), "{}", text(&check.stderr));
    assert!(
        !text(&check.stdout).contains("read-only field")
            && !text(&check.stderr).contains("read-only field"),
        "{}{}",
        text(&check.stdout),
        text(&check.stderr)
    );
}

#[test]
fn a_failed_answer_is_refused_naming_the_file() {
    let out = import(&["policies.json", "failed.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("failed.json`: the API answered with an error, nothing to import"),
        "{stderr}"
    );
    assert!(stderr.contains("10000 Authentication error"), "{stderr}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_mistyped_field_still_refuses_the_import() {
    let dir = std::env::temp_dir().join(format!("edge-access-import-typo-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut policies: Value =
        serde_json::from_str(&std::fs::read_to_string(fixture("policies.json")).unwrap()).unwrap();
    policies["result"][0]["updated"] = json!("2026-01-05T08:00:00Z");
    let file = dir.join("policies.json");
    std::fs::write(&file, policies.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args([
            "config",
            "import",
            "--team-domain",
            "https://access.example.com",
        ])
        .arg(&file)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("policies[0]: unknown field `updated`"),
        "{}",
        text(&out.stderr)
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn service_tokens_need_their_secret_hash() {
    let out = import(&["service_tokens.json"], &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("service_tokens[0]: missing field `client_secret_sha256`"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_partial_page_is_warned_about_and_kind_can_be_named() {
    let out = import(&["partial.json"], &["--kind", "groups"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("holds 1 of 3 objects"), "{stderr}");
    let document: Value = serde_json::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(document["groups"][0]["name"], "Contractors");
}

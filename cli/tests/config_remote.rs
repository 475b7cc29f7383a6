//! `edge-access config …` against the built gateway under `wrangler dev`: push → pull → diff
//! is empty, a document that does not load is never sent, a stale base is refused.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use std::process::{Command, Output};

use edge_access_tests::stack::{Stack, StackConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

const TOKEN: &str = "cli-admin-token-5e2b8d0f1a3c4e69";

fn cli(stack: &Stack, args: &[&str]) -> Output {
    let mut all = vec![args[0], args[1], "--url", stack.url()];
    all.extend_from_slice(&args[2..]);
    Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args(&all)
        .env("EDGE_ACCESS_ADMIN_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn document(stack: &Stack, path: &str) -> Value {
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b",
            "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": stack.emulator().client_id(),
                        "directory_id": stack.emulator().tenant_id() } }],
        "apps": [{ "id": path, "name": path, "domain": format!("{}/{path}", stack.addr()), "aud": format!("aud-{path}"),
            "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }]
    })
}

#[test]
fn push_pull_diff_round_trip() {
    if !Stack::should_run("config_remote::round_trip").unwrap() {
        return;
    }
    let hash: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stack = Stack::start(
        StackConfig::new(Value::Null)
            .named("cli_config")
            .with_var("ADMIN_TOKENS", &format!("cli:write:{hash}")),
    )
    .unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    let dir = std::env::temp_dir().join(format!("edge-access-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.json");
    let file = file.to_str().unwrap();
    std::fs::write(file, document(&stack, "pushed").to_string()).unwrap();

    let push = cli(&stack, &["config", "push", file, "--comment", "first"]);
    assert_eq!(push.status.code(), Some(0), "{}", text(&push.stderr));
    assert!(
        text(&push.stdout).contains("active: version 1"),
        "{}",
        text(&push.stdout)
    );

    let pull = cli(&stack, &["config", "pull"]);
    assert_eq!(pull.status.code(), Some(0), "{}", text(&pull.stderr));
    let pulled: Value = serde_json::from_slice(&pull.stdout).unwrap();
    assert_eq!(pulled, document(&stack, "pushed"));

    let diff = cli(&stack, &["config", "diff", file]);
    assert_eq!(diff.status.code(), Some(0), "{}", text(&diff.stdout));
    assert_eq!(text(&diff.stdout), "");

    // A changed file differs, exit 1.
    std::fs::write(file, document(&stack, "changed").to_string()).unwrap();
    let diff = cli(&stack, &["config", "diff", file]);
    assert_eq!(diff.status.code(), Some(1), "{}", text(&diff.stdout));
    assert!(!text(&diff.stdout).is_empty());

    // A stale base is refused; a broken document is never sent.
    let stale = cli(&stack, &["config", "push", file, "--base", "0"]);
    assert_eq!(stale.status.code(), Some(2), "{}", text(&stale.stderr));
    assert!(
        text(&stale.stderr).contains("409"),
        "{}",
        text(&stale.stderr)
    );
    std::fs::write(file, r#"{"apps": [{"bogus": 1}]}"#).unwrap();
    let broken = cli(&stack, &["config", "push", file]);
    assert_eq!(broken.status.code(), Some(2));
    assert!(
        text(&broken.stderr).contains("apps[0]"),
        "{}",
        text(&broken.stderr)
    );

    let versions = cli(&stack, &["config", "versions"]);
    assert_eq!(
        versions.status.code(),
        Some(0),
        "{}",
        text(&versions.stderr)
    );
    assert!(text(&versions.stdout).contains("first"));
    let rollback = cli(&stack, &["config", "rollback"]);
    assert_eq!(rollback.status.code(), Some(2), "nothing to roll back to");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_gateway_prefix_is_named_with_prefix() {
    if !Stack::should_run("config_remote::prefix").unwrap() {
        return;
    }
    let hash: String = Sha256::digest(TOKEN.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let stack = Stack::start(
        StackConfig::new(Value::Null)
            .named("cli_config_prefix")
            .with_var("ACCESS_PATH_PREFIX", "/auth/edge")
            .with_var("ADMIN_TOKENS", &format!("cli:write:{hash}")),
    )
    .unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    let dir = std::env::temp_dir().join(format!("edge-access-cli-prefix-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.json");
    let file = file.to_str().unwrap();
    std::fs::write(file, document(&stack, "prefixed").to_string()).unwrap();

    // The default prefix is not the API on this gateway: nothing is written.
    let lost = cli(&stack, &["config", "push", file]);
    assert_ne!(lost.status.code(), Some(0), "{}", text(&lost.stdout));

    let push = cli(&stack, &["config", "push", file, "--prefix", "/auth/edge"]);
    assert_eq!(push.status.code(), Some(0), "{}", text(&push.stderr));
    assert!(
        text(&push.stdout).contains("active: version 1"),
        "{}",
        text(&push.stdout)
    );
    let pull = cli(&stack, &["config", "pull", "--prefix", "/auth/edge"]);
    assert_eq!(pull.status.code(), Some(0), "{}", text(&pull.stderr));
    let pulled: Value = serde_json::from_slice(&pull.stdout).unwrap();
    assert_eq!(pulled, document(&stack, "prefixed"));

    let bad = cli(&stack, &["config", "pull", "--prefix", "/auth/edge/"]);
    assert_eq!(bad.status.code(), Some(64), "{}", text(&bad.stderr));
    assert!(text(&bad.stderr).contains("--prefix `/auth/edge/`"));
    std::fs::remove_dir_all(&dir).unwrap();
}

//! Runs the built `edge-access` binary against files, as a CI pipeline would.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::Write;
use std::process::{Command, Output, Stdio};

fn root(path: &str) -> String {
    format!("{}/../{path}", env!("CARGO_MANIFEST_DIR"))
}

fn fixture(name: &str) -> String {
    format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[test]
fn check_accepts_the_example() {
    let out = run(&["policy", "check", "--config", &root("examples/config.json")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("loads: 2 apps, 1 identity providers"));
    assert!(!text(&out.stdout).contains("warning"));
}

#[test]
fn check_lists_every_problem_with_its_path() {
    let out = run(&["policy", "check", "--config", &fixture("bad-config.json")]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    for expected in [
        "apps[0].policies[0]: unknown field `exlude`",
        "apps[0].policies[0].include[0]: unknown selector `frobnicate`",
        "apps[0].policies[1].include[0]: identity selector `email` cannot be used in a `bypass` policy",
        "apps[0].policies[1].precedence: duplicate precedence `1`",
    ] {
        assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
    }
}

#[test]
fn check_json_report() {
    let out = run(&[
        "policy",
        "check",
        "--json",
        "--config",
        &fixture("bad-config.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["ok"], false);
    assert_eq!(report["errors"].as_array().unwrap().len(), 4);
    assert_eq!(report["errors"][0]["path"], "apps[0].policies[0]");
}

#[test]
fn check_warns_on_risky_allow_policies() {
    let out = run(&["policy", "check", "--config", &fixture("risky-config.json")]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(
            "warning: apps[0].policies[0].include[0]: an `allow` policy that includes `everyone`"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("warning: apps[0].policies[1].include: an `allow` policy that includes only login methods"), "{stdout}");
}

#[test]
fn eval_prints_the_verdict_json() {
    let out = run(&[
        "policy",
        "eval",
        "--config",
        &root("examples/config.json"),
        "--request",
        &root("examples/request.json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["outcome"], "allow");
    assert_eq!(verdict["app"], "admin");
    assert_eq!(verdict["policy"]["id"], "engineers");
    assert_eq!(verdict["policy"]["precedence"], 2);
    assert_eq!(verdict["session_duration"], "8h");
    assert!(verdict["trace"].as_array().unwrap().len() >= 3);
}

#[test]
fn eval_reads_the_request_from_stdin() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args([
            "policy",
            "eval",
            "--config",
            &root("examples/config.json"),
            "--request",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(br#"{"app": "app.example.com/", "ip": "203.0.113.9"}"#)
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["outcome"], "bypass");
    assert_eq!(verdict["policy"]["name"], "Health checks");
}

#[test]
fn explain_names_groups_and_policies() {
    let out = run(&[
        "policy",
        "explain",
        "--config",
        &root("examples/config.json"),
        "--request",
        &root("examples/request.json"),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("outcome: allow\n"), "{stdout}");
    assert!(
        stdout.contains("policy:  Engineers with MFA (id engineers, precedence 2)"),
        "{stdout}"
    );
    assert!(stdout.contains("session: 8h"), "{stdout}");
    assert!(stdout.contains("access group `Engineering`"), "{stdout}");
}

#[test]
fn eval_refuses_a_bad_request_with_paths() {
    let out = run(&[
        "policy",
        "eval",
        "--config",
        &root("examples/config.json"),
        "--request",
        &fixture("bad-request.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("identity.groups[0]: `not-a-guid` is not a GUID"),
        "{err}"
    );
    assert!(err.contains("ip: invalid IP address `999.1.1.1`"), "{err}");
    assert!(out.stdout.is_empty());
}

#[test]
fn eval_refuses_a_bad_document() {
    let out = run(&[
        "policy",
        "eval",
        "--config",
        &fixture("bad-config.json"),
        "--request",
        &root("examples/request.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
}

#[test]
fn usage_errors_exit_1() {
    let out = run(&["policy", "eval", "--config", &root("examples/config.json")]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("`--request FILE` is required"));
    let out = run(&["policy", "check", "--config", "/nonexistent.json"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read `/nonexistent.json`"));
}

#[test]
fn keygen_writes_a_private_jwk() {
    let out = run(&["keygen", "--no-cert"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let jwk: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for field in ["kty", "kid", "n", "e", "d", "p", "q", "dp", "dq", "qi"] {
        assert!(jwk[field].is_string(), "missing {field}");
    }
    assert_eq!(
        jwk["kid"].as_str().unwrap().len(),
        64,
        "an RFC 7638 thumbprint in hex"
    );
    assert!(jwk.get("x5c").is_none());
    assert_eq!(run(&["keygen", "--frob"]).status.code(), Some(1));
}

#[test]
fn token_inspect_decodes_without_verifying() {
    use base64::Engine as _;
    let b64 = |v: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let token = format!(
        "{}.{}.c2ln",
        b64(r#"{"alg":"RS256","kid":"k1"}"#),
        b64(r#"{"ver":"1.0","upn":"ada@example.com","exp":1}"#)
    );
    let out = run(&["token", "inspect", &token]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["kind"], "Entra ID v1.0 token");
    assert_eq!(report["claims"]["upn"], "ada@example.com");
    assert!(report["time"].as_str().unwrap().starts_with("expired"));
    assert!(report["signature"]
        .as_str()
        .unwrap()
        .contains("not verified"));
    let out = run(&["token", "inspect", "not-a-token"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a JWT"));
}

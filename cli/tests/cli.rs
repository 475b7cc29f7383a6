//! Runs the built `edge-access` binary against files, as a CI pipeline would.
#![expect(clippy::unwrap_used, reason = "test code: a failure panics")]

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
fn check_warns_when_a_document_would_not_fit_a_worker_var() {
    let apps: Vec<serde_json::Value> = (0..60)
        .map(|i| {
            serde_json::json!({ "id": format!("app-{i}"), "name": format!("App {i}"),
                "domain": format!("app{i}.example.com"), "aud": format!("aud-{i}"),
                "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] })
        })
        .collect();
    let big = serde_json::json!({ "team_domain": "https://access.example.com", "apps": apps });
    let file = std::env::temp_dir().join(format!("edge-access-big-{}.json", std::process::id()));
    std::fs::write(&file, big.to_string()).unwrap();
    let file = file.to_str().unwrap().to_owned();
    let out = run(&["policy", "check", "--config", &file]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("over the 5120 a Worker var holds"),
        "{stdout}"
    );
    let out = run(&["policy", "check", "--json", "--config", &file]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["fits_worker_var"], false, "{report}");
    assert!(report["bytes"].as_u64().unwrap() > 5120);
    std::fs::remove_file(&file).ok();
    let out = run(&[
        "policy",
        "check",
        "--json",
        "--config",
        &root("examples/config.json"),
    ]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["fits_worker_var"], true, "{report}");
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
fn usage_errors_exit_64_with_suggestions() {
    let out = run(&["policy", "eval", "--config", &root("examples/config.json")]);
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("--request <FILE>"),
        "{}",
        text(&out.stderr)
    );
    let out = run(&["policy", "chek"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("a similar subcommand exists: 'check'"));
    let out = run(&["policy", "check", "--confg", "x.json"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("a similar argument exists: '--config'"));
    assert!(out.stdout.is_empty());
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
    assert_eq!(run(&["keygen", "--frob"]).status.code(), Some(64));
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

fn run_with_stdin(args: &[&str], input: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// `policy eval|explain` of the SCIM fixtures: the rule names the parent group, the identity
/// carries only the child group.
fn run_scim(command: &str, directory: Option<&str>) -> Output {
    let (config, request) = (fixture("scim-config.json"), fixture("scim-request.json"));
    let mut args = vec![
        "policy",
        command,
        "--config",
        &config,
        "--request",
        &request,
    ];
    if let Some(directory) = directory {
        args.extend(["--directory", directory]);
    }
    run(&args)
}

#[test]
fn directory_nests_scim_groups_under_their_parents() {
    let out = run_scim("eval", None);
    assert_eq!(
        out.status.code(),
        Some(1),
        "eval fails on a refusal: {}",
        text(&out.stderr)
    );
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_ne!(verdict["outcome"], "allow", "{verdict}");

    let out = run_scim("eval", Some(&fixture("scim-groups.json")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["outcome"], "allow", "{verdict}");
    assert_eq!(verdict["policy"]["id"], "engineering");
    // A group with no GUID in `externalId` or `id` is skipped, and said so.
    let err = text(&out.stderr);
    assert!(
        err.contains("Resources[2] (`Contractors`, id `legacy-contractors`): neither `externalId` nor `id` is a GUID; skipped"),
        "{err}"
    );
}

#[test]
fn explain_names_scim_groups_next_to_their_ids() {
    let out = run_scim("explain", None);
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("outcome: default_deny\n"), "{stdout}");
    assert!(!stdout.contains("All Engineering"), "{stdout}");
    let out = run_scim("explain", Some(&fixture("scim-groups.json")));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.starts_with("outcome: allow\n"), "{stdout}");
    assert!(
        stdout.contains("azureAD `5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41` (All Engineering) of"),
        "{stdout}"
    );
}

#[test]
fn check_reads_the_directory() {
    let out = run(&[
        "policy",
        "check",
        "--config",
        &fixture("scim-config.json"),
        "--directory",
        &fixture("scim-groups.json"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("scim-groups.json`: 2 named groups, 1 nesting edges"),
        "{stdout}"
    );
}

#[test]
fn directory_may_be_a_plain_array_of_groups_from_stdin() {
    // No `externalId`: the SCIM `id` is the policy id. Member `type` does not matter.
    let groups = r#"[
      { "id": "5b3e8c1a-0d6f-4a39-9c55-2f7b1e0a9d41", "displayName": "All Engineering",
        "members": [ { "value": "0D9E8F7A-6B5C-4D3E-2F1A-0B9C8D7E6F5A", "type": "User" } ] },
      { "id": "0D9E8F7A-6B5C-4D3E-2F1A-0B9C8D7E6F5A", "displayName": "Platform" }
    ]"#;
    let out = run_with_stdin(
        &[
            "policy",
            "eval",
            "--config",
            &fixture("scim-config.json"),
            "--request",
            &fixture("scim-request.json"),
            "--directory",
            "-",
        ],
        groups,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let verdict: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(verdict["outcome"], "allow", "{verdict}");
}

#[test]
fn malformed_directories_do_not_load() {
    let group = r#"{ "id": "g1", "displayName": "G" }"#;
    for (directory, expected) in [
        ("{", "not JSON"),
        (r#""groups""#, "expected a SCIM ListResponse (an object with `Resources`) or an array of Group resources, found a string"),
        (r#"{"totalResults": 1}"#, "Resources: missing"),
        (r#"{"Resources": {}}"#, "Resources: must be an array, found an object"),
        (r#"{"totalResults": -1, "Resources": []}"#, "totalResults: must be a non-negative integer"),
        (&format!(r#"{{"Resources": [{group}, 7]}}"#), "Resources[1]: must be an object, found a number"),
        (r#"{"Resources": [{"id": "g1", "displayName": 3}]}"#, "Resources[0].displayName: must be a string, found a number"),
        (r#"[{"id": "g1"}]"#, "[0].displayName: missing"),
        (r#"[{"displayName": "G"}]"#, "[0].id: missing"),
        (r#"[{"id": "g1", "displayName": "G", "externalId": 5}]"#, "[0].externalId: must be a string"),
        (r#"[{"id": "g1", "displayName": "G", "members": {}}]"#, "[0].members: must be an array"),
        (r#"[{"id": "g1", "displayName": "G", "members": ["g2"]}]"#, "[0].members[0]: must be an object, found a string"),
        (r#"[{"id": "g1", "displayName": "G", "members": [{"type": "Group"}]}]"#, "[0].members[0].value: missing"),
        (&format!("[{group}, {group}]"), "[1].id: duplicate id `g1` (also [0])"),
        (
            r#"[{"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "id": "u1", "displayName": "Ada"}]"#,
            "[0].schemas: does not name `urn:ietf:params:scim:schemas:core:2.0:Group`: not a Group resource",
        ),
    ] {
        for command in ["eval", "check"] {
            let config = fixture("scim-config.json");
            let request = fixture("scim-request.json");
            let mut args = vec!["policy", command, "--config", &config, "--directory", "-"];
            if command == "eval" {
                args.extend(["--request", &request]);
            }
            let out = run_with_stdin(&args, directory);
            assert_eq!(out.status.code(), Some(2), "{directory}");
            let err = text(&out.stderr);
            assert!(err.contains("`-` does not load"), "{directory}: {err}");
            assert!(err.contains(expected), "missing `{expected}` in:\n{err}");
            assert!(out.stdout.is_empty(), "{directory}");
        }
    }
}

#[test]
fn directory_file_errors() {
    let out = run_scim("eval", Some("/nonexistent/groups.json"));
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("cannot read `/nonexistent/groups.json`"));
    let out = run(&[
        "policy",
        "eval",
        "--config",
        &fixture("scim-config.json"),
        "--request",
        "-",
        "--directory",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("only one of the files can be standard input"));
}

#[test]
fn help_and_version_go_to_stdout_with_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["policy", "--help"],
        &["policy", "test", "-h"],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(text(&out.stdout).contains("Usage: edge-access"), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
    }
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        format!("edge-access {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn flags_take_values_with_equals_and_completions_print() {
    let config = format!("--config={}", root("examples/config.json"));
    let out = run(&["policy", "check", &config]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for shell in ["bash", "zsh", "fish"] {
        let out = run(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(text(&out.stdout).contains("edge-access"), "{shell}");
    }
}

#[test]
fn eval_fails_on_deny_unless_told_otherwise() {
    let (config, request) = (fixture("scim-config.json"), fixture("scim-request.json"));
    let eval = |extra: &[&str]| {
        let mut args = vec!["policy", "eval", "--config", &config, "--request", &request];
        args.extend_from_slice(extra);
        run(&args)
    };
    // Without the directory the request is refused (default_deny).
    assert_eq!(eval(&[]).status.code(), Some(1));
    assert_eq!(eval(&["--fail-on", "deny"]).status.code(), Some(1));
    assert_eq!(eval(&["--fail-on", "login"]).status.code(), Some(1));
    assert_eq!(eval(&["--fail-on=never"]).status.code(), Some(0));
    let out = eval(&["--fail-on", "sometimes"]);
    assert_eq!(out.status.code(), Some(64));
    assert!(text(&out.stderr).contains("possible values: deny, login, never"));
    // Explain reads; it fails only when asked.
    let explain = run(&[
        "policy",
        "explain",
        "--config",
        &config,
        "--request",
        &request,
    ]);
    assert_eq!(explain.status.code(), Some(0));
}

#[test]
fn check_json_gives_kinds_and_positions_and_warnings_can_fail() {
    let out = run(&[
        "policy",
        "check",
        "--json",
        "--config",
        &fixture("bad-config.json"),
    ]);
    assert_eq!(out.status.code(), Some(2));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let kinds: Vec<&str> = report["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "unknown_field",
            "unknown_selector",
            "invalid_value",
            "duplicate"
        ]
    );
    for e in report["errors"].as_array().unwrap() {
        assert!(
            e["line"].as_u64().unwrap() > 1 && e["column"].as_u64().unwrap() > 1,
            "{e}"
        );
    }
    let err = run(&["policy", "check", "--config", &fixture("bad-config.json")]);
    assert!(
        text(&err.stderr)
            .lines()
            .any(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit())
                && l.contains(": apps[0].policies[0]: unknown field `exlude`")),
        "line:column before the path:\n{}",
        text(&err.stderr)
    );
    let risky = fixture("risky-config.json");
    assert_eq!(
        run(&["policy", "check", "--config", &risky]).status.code(),
        Some(0)
    );
    let out = run(&["policy", "check", "--deny-warnings", "--config", &risky]);
    assert_eq!(out.status.code(), Some(1));
    let out = run(&[
        "policy",
        "check",
        "--json",
        "--deny-warnings",
        "--config",
        &risky,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["warnings"][0]["kind"], "warning");
}

fn policy_test(args: &[&str]) -> Output {
    let mut all = vec!["policy", "test"];
    all.extend_from_slice(args);
    Command::new(env!("CARGO_BIN_EXE_edge-access"))
        .args(all)
        .env("NO_COLOR", "1")
        .current_dir(fixture("policy-tests"))
        .output()
        .unwrap()
}

#[test]
fn policy_test_runs_the_projects_vectors() {
    let out = run(&["policy", "test", &root("policy-core/tests/vectors")]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    let summary = stdout.lines().last().unwrap();
    assert!(summary.starts_with("test result: ok. "), "{summary}");
    let passed: usize = summary["test result: ok. ".len()..]
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(passed >= 400, "{summary}");
}

#[test]
fn policy_test_reports_like_cargo_test() {
    // The directory holds passing and failing files (JSON and YAML), the document they name,
    // and a file that is no test: it is skipped.
    let out = policy_test(&["passing"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("test passing/wiki.test.yaml / ada reads the wiki ... ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test passing/wiki.test.json / mallory is refused ... ok"),
        "{stdout}"
    );
    assert!(
        stdout.contains("test result: ok. 4 passed, 0 failed"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("access.json"),
        "the document is not a test file"
    );

    let out = policy_test(&["."]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("test ./failing/wiki.test.json / grace is an admin ... FAILED"),
        "{stdout}"
    );
    assert!(
        stdout.contains("outcome `default_deny`, expected `allow`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("trace:\n    1. app `Wiki admin`"),
        "the full trace: {stdout}"
    );
    assert!(
        stdout.contains("test result: FAILED. 4 passed, 1 failed"),
        "{stdout}"
    );

    let out = policy_test(&["--filter", "mallory", "."]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("1 passed, 0 failed"));

    let out = policy_test(&["./**/*.test.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stdout));
    assert!(
        text(&out.stdout).contains("2 passed, 0 failed"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn policy_test_formats_for_ci() {
    let out = policy_test(&["--format", "json", "."]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (report["passed"].as_u64(), report["failed"].as_u64()),
        (Some(4), Some(1))
    );
    let out = policy_test(&["--format=junit", "."]);
    assert_eq!(out.status.code(), Some(1));
    let xml = text(&out.stdout);
    assert!(xml.starts_with("<?xml"), "{xml}");
    assert!(
        xml.contains("<testsuites name=\"edge-access policy test\" tests=\"5\" failures=\"1\""),
        "{xml}"
    );
    assert!(
        xml.contains("<failure message=\"outcome `default_deny`, expected `allow`\">"),
        "{xml}"
    );
}

#[test]
fn policy_test_refuses_files_that_do_not_load() {
    let out = policy_test(&["../policy-tests-broken/typo.test.json"]);
    assert_eq!(out.status.code(), Some(2));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("cases[0].expect: unknown field `outcom`"),
        "{stdout}"
    );
    assert!(
        stdout.contains("4:15: cases[0].expect"),
        "with line:column: {stdout}"
    );
    let out = policy_test(&["nowhere"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("`nowhere`: no such file or directory"));
}

fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("edge-access-cli-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn fmt_rewrites_to_the_canonical_layout_and_checks() {
    let dir = scratch("fmt");
    let example = std::fs::read_to_string(root("examples/config.json")).unwrap();
    let value: serde_json::Value = serde_json::from_str(&example).unwrap();
    let file = dir.join("config.json");
    // Minified: same document, another layout.
    std::fs::write(&file, value.to_string()).unwrap();
    let path = file.to_str().unwrap();
    let out = run(&["policy", "fmt", "--check", path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(path), "{}", text(&out.stderr));
    let out = run(&["policy", "fmt", path]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("formatted"));
    let formatted = std::fs::read_to_string(&file).unwrap();
    let again: serde_json::Value = serde_json::from_str(&formatted).unwrap();
    assert_eq!(again, value, "nothing lost or changed");
    assert!(formatted.starts_with("{\n  \"team_domain\""), "{formatted}");
    assert_eq!(
        run(&["policy", "fmt", "--check", path]).status.code(),
        Some(0)
    );
    // Standard input to standard output.
    let out = run_with_stdin(&["policy", "fmt", "-"], &value.to_string());
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(text(&out.stdout), formatted);
    // Two readings are refused, not resolved.
    let out = run_with_stdin(
        &["policy", "fmt", "-"],
        r#"{"team_domain": "a", "team_domain": "b"}"#,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("duplicate key `team_domain`"));
}

#[test]
fn diff_lists_changes_and_requests_decided_differently() {
    let dir = scratch("diff");
    let old = root("examples/config.json");
    let mut value: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&old).unwrap()).unwrap();
    // Engineers lose access; a new app appears.
    for policy in value["policies"].as_array_mut().unwrap() {
        if policy["id"] == "engineers" {
            policy["decision"] = "deny".into();
        }
    }
    let mut extra = value["apps"][0].clone();
    extra["id"] = "reports".into();
    extra["domain"] = "reports.example.com".into();
    value["apps"].as_array_mut().unwrap().push(extra);
    let new = dir.join("new.json");
    std::fs::write(&new, serde_json::to_string_pretty(&value).unwrap()).unwrap();
    let requests = dir.join("requests.json");
    let request: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root("examples/request.json")).unwrap())
            .unwrap();
    std::fs::write(&requests, serde_json::json!([request]).to_string()).unwrap();

    let out = run(&[
        "policy",
        "diff",
        &old,
        new.to_str().unwrap(),
        "--requests",
        requests.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("+ app `reports` added"), "{stdout}");
    assert!(
        stdout.contains("~ policy `engineers` changed: decision"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 requests decided differently"),
        "{stdout}"
    );
    assert!(
        stdout.contains("allow by `engineers` → block by `engineers`"),
        "{stdout}"
    );
    let out = run(&[
        "policy",
        "diff",
        &old,
        new.to_str().unwrap(),
        "--json",
        "--exit-code",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["changes"].as_array().unwrap().len(), 2);
    let out = run(&["policy", "diff", &old, &old, "--exit-code"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("no changes"));
}

#[test]
fn the_examples_are_formatted() {
    for file in [
        "examples/config.json",
        "examples/dev-config.json",
        "examples/request.json",
    ] {
        let out = run(&["policy", "fmt", "--check", &root(file)]);
        assert_eq!(out.status.code(), Some(0), "{file}: {}", text(&out.stderr));
    }
}

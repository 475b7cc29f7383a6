//! The configuration stored in the gateway, end to end under `wrangler dev`: documents written
//! through the management API (`/cdn-cgi/access/api`), validated before they are stored,
//! picked up by the serving isolate within `CONFIG_REFRESH_SECONDS`, rolled back, compared;
//! stale writers refused with 409, read-only tokens refused on writes; the last good version
//! serving through a storage outage (tables made unreadable under the running worker); and
//! the `EDGE_ACCESS_CONFIG` var as a JSON object.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr, with what it measured"
)]

use std::time::{Duration, Instant};

use edge_access_tests::admin_api::{
    admin_tokens, document, stored, Api, READ_TOKEN, VISIBLE_WITHIN, WRITE_TOKEN,
};
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpClient;
use entra_emulator::fixtures::Fixtures;
use entra_emulator::TokenRequest;
use serde_json::{json, Value};

fn start(name: &str) -> Option<Stack> {
    start_with(name, |config| config)
}

/// [`start`], its configuration changed by `configure` (vars).
fn start_with(name: &str, configure: impl FnOnce(StackConfig) -> StackConfig) -> Option<Stack> {
    if !Stack::should_run(&format!("config_store::{name}")).unwrap() {
        return None;
    }
    let host = "${WORKER_HOST}";
    let stack = Stack::start(configure(
        StackConfig::new(document(host, &["from-var".to_owned()], 0))
            .named(name)
            .with_var("ADMIN_TOKENS", &admin_tokens())
            .with_var("CONFIG_REFRESH_SECONDS", "2"),
    ))
    .unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    Some(stack)
}

#[test]
fn a_stored_configuration_over_100_kb_serves_changes_and_rolls_back() {
    let Some(stack) = start("stored_configuration") else {
        return;
    };
    let api = Api::new(&stack);

    // Nothing stored: the var serves.
    let config = api.get("/config");
    assert_eq!(config["result"]["version"], 0, "{config}");
    assert_eq!(config["result"]["source"], "EDGE_ACCESS_CONFIG", "{config}");
    assert_eq!(api.status("/from-var/x"), 200);

    // A document far over a Worker var's 5 KB (and over 100 KB) goes to storage.
    let paths: Vec<String> = (0..300).map(|i| format!("big-{i}")).collect();
    let paths: Vec<&str> = paths.iter().map(String::as_str).collect();
    let big = stored(&stack, &paths, 300);
    assert!(
        big.to_string().len() > 100 * 1024,
        "{}",
        big.to_string().len()
    );
    let v1 = api.put_ok(&big, 0);
    let seen = api.until("/big-299/x", 200);
    eprintln!("version {v1} decided requests {seen:?} after its write");
    assert_eq!(api.status("/from-var/x"), 404, "the var no longer serves");
    assert_eq!(api.active(), v1);

    // A second version replaces it; the first is kept.
    let small = stored(&stack, &["second"], 0);
    let v2 = api.put_ok(&small, v1);
    assert!(v2 > v1);
    api.until("/second/x", 200);
    assert_eq!(api.status("/big-0/x"), 404);

    let versions = api.get("/config/versions");
    let listed: Vec<u64> = versions["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_u64().unwrap())
        .collect();
    assert_eq!(listed, [v2, v1], "{versions}");
    assert_eq!(versions["result"][0]["active"], true);
    assert_eq!(versions["result"][0]["author"], "ops");
    assert_eq!(versions["result"][0]["base_version"], v1);
    assert_eq!(versions["result_info"]["total_count"], 2);
    let one = api.get(&format!("/config/versions/{v1}"));
    assert_eq!(one["result"]["document"], big);

    let diff = api.get(&format!("/config/diff?from={v1}&to={v2}"));
    let changes = diff["result"]["changes"].as_array().unwrap();
    assert!(
        changes
            .iter()
            .any(|c| c["path"] == "apps[0].id" && c["from"] == "big-0" && c["to"] == "second"),
        "{diff}"
    );
    assert!(changes
        .iter()
        .any(|c| c["path"] == "apps[299]" && c["op"] == "remove"));

    // Rollback: the version active before comes back.
    let rolled = api.call("POST", "/config/rollback", Some(WRITE_TOKEN), b"");
    assert_eq!(rolled.status, 200, "{rolled:?}");
    assert_eq!(rolled.json().unwrap()["result"]["version"], v1);
    api.until("/big-299/x", 200);
    assert_eq!(api.status("/second/x"), 404);
    assert_eq!(api.active(), v1);

    // Activating a stored version by number.
    let activated = api.call(
        "POST",
        &format!("/config/versions/{v2}/activate"),
        Some(WRITE_TOKEN),
        json!({ "base_version": v1 }).to_string().as_bytes(),
    );
    assert_eq!(activated.status, 200, "{activated:?}");
    api.until("/second/x", 200);

    // The health endpoint and the decision lines name the version that decides.
    let health = HttpClient::new()
        .get(&format!("{}/cdn-cgi/access/health", stack.url()))
        .unwrap();
    assert_eq!(health.status, 200, "{health:?}");
    assert_eq!(
        health.json().unwrap()["config_version"],
        v2.to_string(),
        "{health:?}"
    );
    let label = v2.to_string();
    assert!(stack
        .worker_log_json()
        .iter()
        .any(|l| l["event"] == "decision" && l["config_version"] == label.as_str()));

    // Every write is logged, without the token.
    let log = stack.worker_log();
    assert!(log.contains("\"config_write\""), "no config_write event");
    assert!(!log.contains(WRITE_TOKEN) && !log.contains(READ_TOKEN));
}

#[test]
fn the_active_version_is_read_once_per_interval_not_per_request() {
    let Some(stack) = start("check_per_interval") else {
        return;
    };
    let api = Api::new(&stack);
    let v1 = api.put_ok(&stored(&stack, &["counted"], 0), 0);
    api.until("/counted/x", 200);
    let checks = |log: &str| log.matches("\"config_check\"").count();
    let before = checks(&stack.worker_log());
    let started = Instant::now();
    let requests = 100;
    for _ in 0..requests {
        assert_eq!(api.status("/counted/x"), 200);
    }
    let elapsed = started.elapsed();
    // Log lines may trail the answers a little.
    std::thread::sleep(Duration::from_millis(500));
    let during = checks(&stack.worker_log()) - before;
    eprintln!("{requests} requests in {elapsed:?}: {during} reads of the active version (v{v1})");
    // One read per 2 s interval at most, plus the one at each end.
    let bound = usize::try_from(elapsed.as_secs() / 2).unwrap() + 2;
    assert!(
        during <= bound,
        "{during} reads for {requests} requests in {elapsed:?}"
    );
    assert!(during < requests);
}

/// The `config_store_unavailable` lines logged so far: (`error`, `serving_cached`).
fn outages(stack: &Stack) -> Vec<(String, String)> {
    stack
        .worker_log_json()
        .iter()
        .filter(|l| l["event"] == "config_store_unavailable")
        .map(|l| {
            (
                l["error"].as_str().unwrap_or("").to_owned(),
                l["serving_cached"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect()
}

/// Requests `path` (which must keep answering `status`) until the isolate has logged a new
/// `config_store_unavailable` line naming `table`; that line.
fn serve_through_outage(api: &Api<'_>, path: &str, status: u16, table: &str) -> (String, String) {
    let before = outages(api.stack()).len();
    let started = Instant::now();
    loop {
        assert_eq!(api.status(path), status, "{path} during the outage");
        if let Some(line) = outages(api.stack())
            .into_iter()
            .skip(before)
            .find(|(error, _)| error.contains(table))
        {
            return line;
        }
        assert!(
            started.elapsed() < VISIBLE_WITHIN,
            "no config_store_unavailable naming `{table}` within {VISIBLE_WITHIN:?}:\n{}",
            api.stack().worker_log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn a_storage_outage_keeps_the_last_good_version_serving() {
    let Some(stack) = start("storage_outage") else {
        return;
    };
    let api = Api::new(&stack);
    // v2 is stored, v1 active and serving.
    let v1 = api.put_ok(&stored(&stack, &["first"], 0), 0);
    let v2 = api.put_ok(&stored(&stack, &["second"], 0), v1);
    api.until("/second/x", 200);
    let rolled = api.call("POST", "/config/rollback", Some(WRITE_TOKEN), b"");
    assert_eq!(rolled.status, 200, "{rolled:?}");
    api.until("/first/x", 200);
    assert_eq!(api.status("/second/x"), 404);

    // The stored documents become unreadable while the active pointer moves to v2: the
    // isolate sees the new version but cannot read it, and keeps deciding with v1.
    stack
        .execute_d1(&format!(
            "ALTER TABLE config_versions RENAME TO config_versions_offline; \
             UPDATE config_active SET version = {v2} WHERE id = 1"
        ))
        .unwrap();
    let (error, cached) = serve_through_outage(&api, "/first/x", 200, "config_versions");
    assert_eq!(cached, "true", "{error}");
    assert!(error.starts_with("storage unavailable: D1: "), "{error}");
    assert_eq!(
        api.status("/second/x"),
        404,
        "the unreadable version decides nothing"
    );

    // The active pointer itself unreadable: the same.
    stack
        .execute_d1("ALTER TABLE config_active RENAME TO config_active_offline")
        .unwrap();
    let (error, cached) = serve_through_outage(&api, "/first/x", 200, "config_active");
    assert_eq!(cached, "true", "{error}");
    assert_eq!(api.status("/second/x"), 404);
    let label = v1.to_string();
    assert!(
        stack
            .worker_log_json()
            .iter()
            .rev()
            .find(|l| l["event"] == "decision")
            .is_some_and(|l| l["config_version"] == label.as_str()),
        "the last decision was not made with v{v1}"
    );

    // Storage back: the active version (v2) is picked up, and so are new writes.
    stack
        .execute_d1(
            "ALTER TABLE config_active_offline RENAME TO config_active; \
             ALTER TABLE config_versions_offline RENAME TO config_versions",
        )
        .unwrap();
    api.until("/second/x", 200);
    assert_eq!(api.status("/first/x"), 404);
    let v3 = api.put_ok(&stored(&stack, &["third"], 0), v2);
    api.until("/third/x", 200);
    assert_eq!(api.active(), v3);
}

#[test]
fn entra_identities_holding_an_admin_role_use_the_api() {
    if !Stack::should_run("config_store::entra_admins").unwrap() {
        return;
    }
    let mut fixtures = Fixtures::load_default().unwrap();
    for user in &mut fixtures.users {
        user.app_roles = match user.key.as_str() {
            "ada" => vec!["Reports.Read".into(), "EdgeAccess.Admin".into()],
            "dora" => vec!["EdgeAccess.Auditor".into()],
            "bob" => vec!["Reports.Read".into()],
            _ => vec![],
        };
    }
    let mut config = StackConfig::new(document("${WORKER_HOST}", &["from-var".to_owned()], 0))
        .named("entra_admins")
        .with_var("ADMIN_TOKENS", &admin_tokens())
        .with_var(
            "ADMIN_ROLES",
            "EdgeAccess.Admin:write,EdgeAccess.Auditor:read",
        )
        .with_var("CONFIG_REFRESH_SECONDS", "2");
    config.fixtures = Some(fixtures);
    let stack = Stack::start(config).unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    let api = Api::new(&stack);
    let token = |request: TokenRequest| stack.emulator().mint(&request).unwrap();
    let (ada, dora, bob) = (
        token(TokenRequest::v2("ada")),
        token(TokenRequest::v1("dora")),
        token(TokenRequest::v2("bob")),
    );

    // The write role writes; the version names the identity as its author.
    let body = |base: u64, path: &str| {
        json!({ "document": stored(&stack, &[path], 0), "base_version": base, "comment": "entra" })
            .to_string()
    };
    let written = api.call(
        "PUT",
        "/config",
        Some(ada.as_str()),
        body(0, "by-role").as_bytes(),
    );
    assert_eq!(written.status, 200, "{written:?}");
    let v1 = written.json().unwrap()["result"]["version"]
        .as_u64()
        .unwrap();
    api.until("/by-role/x", 200);
    let versions = api.call("GET", "/config/versions", Some(dora.as_str()), &[]);
    assert_eq!(versions.status, 200, "{versions:?}");
    let author = versions.json().unwrap()["result"][0]["author"].clone();
    assert!(
        author.as_str().is_some_and(|a| a.starts_with("entra:")),
        "{author}"
    );

    // The read role reads only; no admin role, or a token for another audience: refused.
    let refused = api.call(
        "PUT",
        "/config",
        Some(dora.as_str()),
        body(v1, "by-auditor").as_bytes(),
    );
    assert_eq!(refused.status, 403, "{refused:?}");
    assert_eq!(
        api.call("GET", "/config", Some(bob.as_str()), &[]).status,
        401
    );
    let elsewhere = token(TokenRequest::v2("ada").with_audience("api://another-app"));
    assert_eq!(
        api.call("GET", "/config", Some(elsewhere.as_str()), &[])
            .status,
        401
    );
    let expired = token(TokenRequest::v2("ada").with_issued_at_offset_secs(-7200));
    assert_eq!(
        api.call("GET", "/config", Some(expired.as_str()), &[])
            .status,
        401
    );
    stack
        .wait_for_log("Entra token without an admin role", Duration::from_secs(10))
        .unwrap();

    // The admin tokens still work beside them.
    assert_eq!(api.active(), v1);
    api.put_ok(&stored(&stack, &["by-token"], 0), v1);
    api.until("/by-token/x", 200);
    assert!(!stack.worker_log().contains(&ada), "a token was logged");
}

#[test]
fn bad_writes_are_refused_and_never_activated() {
    let Some(stack) = start("bad_writes") else {
        return;
    };
    let api = Api::new(&stack);
    let good = stored(&stack, &["good"], 0);
    let v1 = api.put_ok(&good, 0);

    // A document that does not load: every error with its JSON path and kind.
    let mut bad = good.clone();
    bad["apps"][0]["bogus"] = json!(true);
    bad["apps"][0]["policies"][0]["decision"] = json!("maybe");
    let answer = api.put(&bad, v1);
    assert_eq!(answer.status, 400, "{answer:?}");
    let body = answer.json().unwrap();
    assert_eq!(body["success"], false);
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors.iter().any(|e| e["path"] == "apps[0]"
            && e["kind"] == "unknown_field"
            && e["message"].as_str().unwrap().contains("bogus")),
        "{body}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["path"] == "apps[0].policies[0].decision"),
        "{body}"
    );
    // A secret in the document is refused, so none is ever stored or read back.
    let mut secret = good.clone();
    secret["identity_providers"][0]["config"]["client_secret"] = json!("s3cr3t-value");
    let answer = api.put(&secret, v1);
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer
        .body
        .contains("identity_providers[0].config.client_secret"));
    // A document the Worker's settings refuse (no identity provider).
    let mut no_idp = good.clone();
    no_idp["identity_providers"] = json!([]);
    no_idp["apps"] = json!([]);
    assert_eq!(api.put(&no_idp, v1).status, 400);
    assert_eq!(api.active(), v1, "nothing refused was activated");
    assert_eq!(api.get("/config/versions")["result_info"]["total_count"], 1);

    // A stale base version: 409, nothing stored.
    let v2 = api.put_ok(&stored(&stack, &["newer"], 0), v1);
    let stale = api.put(&stored(&stack, &["lost"], 0), v1);
    assert_eq!(stale.status, 409, "{stale:?}");
    assert_eq!(stale.json().unwrap()["success"], false);
    let stale_activate = api.call(
        "POST",
        &format!("/config/versions/{v1}/activate"),
        Some(WRITE_TOKEN),
        json!({ "base_version": v1 }).to_string().as_bytes(),
    );
    assert_eq!(stale_activate.status, 409, "{stale_activate:?}");
    assert_eq!(api.active(), v2);

    // Tokens: none, unknown, read-only on a write.
    let doc = stored(&stack, &["x"], 0);
    let body = json!({ "document": doc, "base_version": v2 }).to_string();
    for (token, status) in [
        (None, 401),
        (Some("not-a-token"), 401),
        (Some(READ_TOKEN), 403),
    ] {
        let answer = api.call("PUT", "/config", token, body.as_bytes());
        assert_eq!(answer.status, status, "{token:?}: {answer:?}");
        assert_eq!(answer.json().unwrap()["success"], false);
    }
    for (token, path) in [
        (READ_TOKEN, "/config/rollback".to_owned()),
        (READ_TOKEN, format!("/config/versions/{v1}/activate")),
    ] {
        assert_eq!(api.call("POST", &path, Some(token), b"").status, 403);
    }
    assert_eq!(api.call("GET", "/config", None, &[]).status, 401);
    assert_eq!(api.active(), v2);

    // Malformed bodies and paths.
    for bad in [
        &b"not json"[..],
        b"[]",
        b"{\"document\": {}, \"base_version\": 2, \"document\": {}}",
        b"{\"document\": \"{}\", \"base_version\": 2}",
        b"{\"document\": {}, \"base_version\": -2}",
        b"{\"document\": {}, \"base_version\": 2, \"extra\": 1}",
        b"\xff\xfe",
    ] {
        let answer = api.call("PUT", "/config", Some(WRITE_TOKEN), bad);
        assert_eq!(
            answer.status,
            400,
            "{}: {answer:?}",
            String::from_utf8_lossy(bad)
        );
    }
    let duplicate = format!(
        "{{\"document\": {{\"team_domain\": \"a\", \"team_domain\": \"b\"}}, \"base_version\": {v2}}}"
    );
    let answer = api.call("PUT", "/config", Some(WRITE_TOKEN), duplicate.as_bytes());
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("duplicate_key"), "{answer:?}");
    for path in [
        "/config/versions/0",
        "/config/versions/abc",
        "/config/versions/999",
        "/nothing",
        "/config/diff?from=x",
    ] {
        let status = api.call("GET", path, Some(READ_TOKEN), &[]).status;
        assert!(matches!(status, 400 | 404), "{path}: {status}");
    }
    assert_eq!(api.active(), v2);
    api.until("/newer/x", 200);
}

#[test]
fn the_var_may_be_a_json_object() {
    if !Stack::should_run("config_store::json_object_var").unwrap() {
        return;
    }
    let stack = Stack::start(
        StackConfig::new(Value::Null)
            .named("json_object_var")
            .with_json_var(
                "EDGE_ACCESS_CONFIG",
                document("${WORKER_HOST}", &["object".to_owned()], 0),
            ),
    )
    .unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    let http = HttpClient::new();
    let answer = http.get(&format!("{}/object/x", stack.url())).unwrap();
    assert_eq!(answer.status, 200, "{answer:?}\n{}", stack.worker_log());
}

#[test]
fn a_bad_login_design_refuses_the_configuration_naming_the_field() {
    // Dark grey on black: a design whose text cannot be read.
    let design = r##"{"name": "Example", "background_color": "#000000", "text_color": "#333333"}"##;
    let Some(stack) = start_with("bad_login_design", |config| {
        config.with_var("LOGIN_DESIGN", design)
    }) else {
        return;
    };
    let http = HttpClient::new();
    // Fail closed: nothing is served, not even what a bypass policy lets anyone reach, and no
    // page says why.
    for path in [
        "/from-var/page",
        "/nowhere",
        "/cdn-cgi/access/login?redirect_url=%2Ffrom-var%2F",
    ] {
        let answer = http
            .get_with(
                &format!("{}{path}", stack.url()),
                &[("accept", "text/html")],
            )
            .unwrap();
        assert_eq!(answer.status, 500, "{path}: {answer:?}");
        assert!(!answer.body.contains("text_color"), "{path}: {answer:?}");
    }
    assert_eq!(stack.origin().requests(), 0, "nothing reached the origin");
    let health = http
        .get(&format!("{}/cdn-cgi/access/health", stack.url()))
        .unwrap();
    assert_eq!(health.status, 503, "{health:?}");
    assert_eq!(health.json().unwrap()["status"], "config_error");
    assert!(!health.body.contains("LOGIN_DESIGN"), "{health:?}");
    // The log names the field, and so does the management API asked to store a document
    // under this design.
    let line = stack
        .wait_for_log("LOGIN_DESIGN.text_color: ", Duration::from_secs(10))
        .unwrap();
    assert!(line.contains("\"config_error\""), "{line}");
    assert!(line.contains("below the 4.5:1"), "{line}");
    let answer = Api::new(&stack).put(&stored(&stack, &["from-var"], 0), 0);
    assert_eq!(answer.status, 400, "{answer:?}");
    let body = answer.json().unwrap();
    let message = body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.starts_with("LOGIN_DESIGN.text_color: "), "{body}");
}

/// A bearer token this isolate verified is taken again only under the configuration it was
/// verified under: once a new version stops accepting its audience, it is refused.
#[test]
fn a_token_verified_before_is_checked_again_under_a_new_configuration() {
    let Some(stack) = start("bearer_reuse_new_configuration") else {
        return;
    };
    let api = Api::new(&stack);
    let http = HttpClient::new();
    let token = stack.emulator().mint(&TokenRequest::v2("ada")).unwrap();
    let bearer = |path: &str| {
        http.get_with(
            &format!("{}{path}", stack.url()),
            &[("authorization", &format!("Bearer {token}"))],
        )
        .unwrap()
        .status
    };
    for round in 0..3 {
        assert_eq!(bearer("/from-var/x"), 200, "request {round}");
    }

    // The same directory, another app registration: the token's audience is not accepted.
    let mut other = stored(&stack, &["second"], 0);
    other["identity_providers"][0]["config"]["client_id"] =
        json!("00000000-0000-4000-8000-00000000c0de");
    api.put_ok(&other, 0);
    api.until("/second/x", 200);
    assert_eq!(
        bearer("/second/x"),
        401,
        "the audience is no longer accepted"
    );
}

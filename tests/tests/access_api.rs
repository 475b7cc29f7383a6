//! The configuration's objects through the management API in the Cloudflare Access API's
//! shapes (`/cdn-cgi/access/api/access/{apps,policies,groups,identity_providers,
//! service_tokens,lists}`), end to end under `wrangler dev`: each collection created, read,
//! listed, replaced and deleted, every write a new validated version that decides the next
//! requests; writes that do not load refused with their paths and never activated; stale
//! writers refused with 409; read-only tokens refused; secrets never read back.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr what it measured"
)]

use std::time::Instant;

use edge_access_tests::admin_api::{
    admin_tokens, document, hex, Api, IDP, READ_TOKEN, VISIBLE_WITHIN, WRITE_TOKEN,
};
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{HttpClient, HttpResponse};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn start(name: &str) -> Option<Stack> {
    if !Stack::should_run(&format!("access_api::{name}")).unwrap() {
        return None;
    }
    let stack = Stack::start(
        StackConfig::new(document("${WORKER_HOST}", &["from-var".to_owned()], 0))
            .named(name)
            .with_var("ADMIN_TOKENS", &admin_tokens())
            .with_var("CONFIG_REFRESH_SECONDS", "2"),
    )
    .unwrap_or_else(|e| panic!("the stack did not start: {e}"));
    Some(stack)
}

/// A call with the write token; `extra` headers.
fn write(
    api: &Api,
    method: &str,
    path: &str,
    extra: &[(&str, &str)],
    body: &Value,
) -> HttpResponse {
    let text = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    api.call_with(method, path, Some(WRITE_TOKEN), extra, text.as_bytes())
}

/// A successful write: its `result` and the version that holds it (`ETag`).
fn written(answer: &HttpResponse) -> (Value, u64) {
    assert_eq!(answer.status, 200, "{answer:?}");
    let body = answer.json().unwrap();
    assert_eq!(body["success"], true, "{body}");
    assert_eq!(body["errors"], json!([]), "{body}");
    (body["result"].clone(), etag(answer))
}

fn etag(answer: &HttpResponse) -> u64 {
    answer
        .header("etag")
        .and_then(|e| e.trim_matches('"').parse().ok())
        .unwrap_or_else(|| panic!("no version in ETag: {answer:?}"))
}

/// The status of `GET path` on the gateway with `headers`.
fn status_with(stack: &Stack, path: &str, headers: &[(&str, &str)]) -> u16 {
    HttpClient::new()
        .request("GET", &format!("{}{path}", stack.url()), headers, &[])
        .unwrap()
        .status
}

/// Polls until `path` answers anything but `status`; what it answered.
fn until_not(api: &Api, path: &str, status: u16) -> u16 {
    let started = Instant::now();
    loop {
        let now = api.status(path);
        if now != status {
            return now;
        }
        assert!(
            started.elapsed() < VISIBLE_WITHIN,
            "{path} still answers {status}"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Create → get → list → update → delete of one object of `collection`, after the refusals
/// every collection shares: a body that does not load (the loader's path, nothing activated),
/// a read-only token, an unknown id. The version after.
fn lifecycle(api: &Api, collection: &str, create: &Value, update: &Value, check: &str) -> u64 {
    let path = format!("/access/{collection}");
    let before = api.active();
    let index = api.get(&path)["result_info"]["total_count"]
        .as_u64()
        .unwrap();
    let mut bogus = create.clone();
    bogus["bogus"] = json!(true);
    let answer = write(api, "POST", &path, &[], &bogus);
    assert_eq!(answer.status, 400, "{collection}: {answer:?}");
    let body = answer.json().unwrap();
    assert_eq!(body["success"], false);
    let at = format!("{collection}[{index}]");
    assert!(
        body["errors"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["path"] == at.as_str() && e["kind"] == "unknown_field"),
        "{collection}: {body}"
    );
    assert_eq!(
        api.active(),
        before,
        "{collection}: a refused write was activated"
    );
    let read_only = api.call(
        "POST",
        &path,
        Some(READ_TOKEN),
        create.to_string().as_bytes(),
    );
    assert_eq!(read_only.status, 403, "{collection}: {read_only:?}");
    assert_eq!(api.active(), before);
    let unknown = api.call("GET", &format!("{path}/unknown-id"), Some(READ_TOKEN), &[]);
    assert_eq!(unknown.status, 404, "{collection}: {unknown:?}");

    let (created, v1) = written(&write(api, "POST", &path, &[], create));
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty(), "{collection}: {created}");
    let one = format!("{path}/{id}");
    let got = api.get(&one);
    // A service token's secret is returned by its creation only.
    let mut expected = created.clone();
    if collection == "service_tokens" {
        assert!(expected["client_secret"].is_string(), "{created}");
        expected.as_object_mut().unwrap().remove("client_secret");
    }
    assert_eq!(got["result"], expected, "{collection}");
    for read in [&got, &api.get(&path)] {
        let text = read.to_string();
        assert!(
            !text.contains("secret"),
            "{collection}: a read shows a secret: {text}"
        );
    }
    let listed = api.get(&path);
    assert!(
        listed["result"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == id.as_str()),
        "{collection}: {listed}"
    );
    let info = &listed["result_info"];
    assert_eq!(info["page"], 1, "{listed}");
    assert_eq!(info["count"], info["total_count"], "{listed}");
    assert_eq!(api.active(), v1);

    let (updated, v2) = written(&write(api, "PUT", &one, &[], update));
    assert!(v2 > v1, "{collection}: {v2} after {v1}");
    assert_eq!(updated["id"], id.as_str());
    assert_eq!(updated[check], update[check], "{collection}: {updated}");
    assert_eq!(
        api.get(&one)["result"][check],
        update[check],
        "{collection}"
    );

    let (deleted, v3) = written(&write(api, "DELETE", &one, &[], &Value::Null));
    assert_eq!(deleted, json!({ "id": id }));
    assert!(v3 > v2);
    let gone = api.call("GET", &one, Some(READ_TOKEN), &[]);
    assert_eq!(gone.status, 404, "{collection}: {gone:?}");
    assert_eq!(gone.json().unwrap()["success"], false);
    v3
}

#[test]
fn every_collection_is_created_read_listed_updated_and_deleted() {
    let Some(stack) = start("lifecycle") else {
        return;
    };
    let api = Api::new(&stack);
    let host = stack.addr().to_string();
    assert_eq!(api.active(), 0, "nothing stored: edits start from the var");

    lifecycle(
        &api,
        "policies",
        &json!({ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }),
        &json!({ "name": "Nobody", "decision": "deny", "include": [{ "everyone": {} }] }),
        "name",
    );
    lifecycle(
        &api,
        "groups",
        &json!({ "name": "Staff", "include": [{ "email": { "email": "a@example.com" } }] }),
        &json!({ "name": "Staff 2", "include": [{ "email_domain": { "domain": "example.com" } }] }),
        "include",
    );
    lifecycle(
        &api,
        "identity_providers",
        &json!({ "id": "second-idp", "name": "Second", "type": "azureAD",
            "config": { "client_id": "another-client", "directory_id": stack.emulator().tenant_id() } }),
        &json!({ "name": "Second renamed", "type": "azureAD",
            "config": { "client_id": "another-client", "directory_id": stack.emulator().tenant_id() } }),
        "name",
    );
    lifecycle(
        &api,
        "lists",
        &json!({ "name": "Staff", "type": "EMAIL", "items": [{ "value": "a@example.com" }] }),
        &json!({ "name": "Staff", "type": "EMAIL",
            "items": [{ "value": "b@example.com" }, { "value": "c@example.com" }] }),
        "items",
    );
    lifecycle(
        &api,
        "service_tokens",
        &json!({ "name": "CI" }),
        &json!({ "name": "CI renamed" }),
        "name",
    );
    let domain = format!("{host}/crud-app");
    lifecycle(
        &api,
        "apps",
        &json!({ "name": "Crud", "domain": domain,
            "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }),
        &json!({ "name": "Crud 2", "domain": domain,
            "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }),
        "name",
    );

    // Every write was a version with its author and a comment saying what it did.
    let versions = api.get("/config/versions?per_page=100");
    assert_eq!(versions["result_info"]["total_count"], 18, "{versions}");
    let newest = &versions["result"][0];
    assert_eq!(newest["author"], "ops");
    assert!(
        newest["comment"]
            .as_str()
            .unwrap()
            .starts_with("delete apps/"),
        "{newest}"
    );
    let log = stack.worker_log_json();
    assert!(
        log.iter().any(|l| l["event"] == "config_write"
            && l["collection"] == "apps"
            && l["action"] == "delete"
            && l["by"] == "ops"),
        "no config_write line for the app's deletion"
    );

    // Lists: items paged, patched; an id with a space is addressed percent-encoded.
    let (list, _) = written(&write(
        &api,
        "POST",
        "/access/lists",
        &[],
        &json!({ "id": "staff list", "name": "Staff", "type": "EMAIL",
            "items": [{ "value": "a@example.com" }, { "value": "b@example.com" }] }),
    ));
    assert_eq!(list["id"], "staff list");
    let items = api.get("/access/lists/staff%20list/items?per_page=1&page=2");
    assert_eq!(
        items["result"],
        json!([{ "value": "b@example.com" }]),
        "{items}"
    );
    assert_eq!(items["result_info"]["total_count"], 2);
    written(&write(
        &api,
        "PATCH",
        "/access/lists/staff%20list",
        &[],
        &json!({ "append": [{ "value": "c@example.com" }], "remove": ["a@example.com"] }),
    ));
    assert_eq!(
        api.get("/access/lists/staff%20list/items")["result"],
        json!([{ "value": "b@example.com" }, { "value": "c@example.com" }])
    );
}

#[test]
fn a_policy_changed_through_apps_decides_the_next_requests() {
    let Some(stack) = start("decides") else {
        return;
    };
    let api = Api::new(&stack);
    let host = stack.addr().to_string();

    // A service token: its secret comes back once, and only then.
    let (token, _) = written(&write(
        &api,
        "POST",
        "/access/service_tokens",
        &[("X-Comment", "the deploy job's token")],
        &json!({ "name": "Deploy" }),
    ));
    let token_id = token["id"].as_str().unwrap().to_owned();
    let client_id = token["client_id"].as_str().unwrap().to_owned();
    let secret = token["client_secret"].as_str().unwrap().to_owned();
    assert!(client_id.ends_with(".access"), "{token}");
    assert_eq!(secret.len(), 64, "{token}");
    assert!(token.get("client_secret_sha256").is_none(), "{token}");
    assert_eq!(
        api.get("/config/versions")["result"][0]["comment"],
        "the deploy job's token"
    );
    let stored = api.get("/config")["result"]["document"].to_string();
    assert!(
        !stored.contains(&secret),
        "only the secret's hash is stored"
    );
    assert!(stored.contains(&hex(&Sha256::digest(secret.as_bytes()))));

    // An app anyone may pass.
    let domain = format!("{host}/decided");
    let (app, _) = written(&write(
        &api,
        "POST",
        "/access/apps",
        &[],
        &json!({ "id": "decided", "name": "Decided", "domain": domain,
            "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }),
    ));
    assert_eq!(
        app["aud"].as_str().unwrap().len(),
        64,
        "an audience tag is drawn: {app}"
    );
    api.until("/decided/x", 200);

    // Its policy changed to the service token only: the gateway decides with it.
    let (updated, _) = written(&write(
        &api,
        "PUT",
        "/access/apps/decided",
        &[],
        &json!({ "name": "Decided", "domain": domain,
            "policies": [{ "name": "Deploy only", "decision": "non_identity",
                "include": [{ "service_token": { "token_id": token_id } }] }] }),
    ));
    assert_eq!(updated["aud"], app["aud"], "the audience tag is kept");
    let anonymous = until_not(&api, "/decided/x", 200);
    assert!(matches!(anonymous, 401 | 403), "{anonymous}");
    let with = |secret: &str| {
        status_with(
            &stack,
            "/decided/x",
            &[
                ("CF-Access-Client-Id", client_id.as_str()),
                ("CF-Access-Client-Secret", secret),
            ],
        )
    };
    assert_eq!(with(&secret), 200);
    assert_ne!(with(&"0".repeat(64)), 200);

    // The app's own policies: one added lets anyone through again, deleted it no longer does.
    let own = api.get("/access/apps/decided/policies");
    assert_eq!(own["result_info"]["total_count"], 1, "{own}");
    assert_eq!(own["result"][0]["name"], "Deploy only");
    let (added, _) = written(&write(
        &api,
        "POST",
        "/access/apps/decided/policies",
        &[],
        &json!({ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }),
    ));
    let policy = format!(
        "/access/apps/decided/policies/{}",
        added["id"].as_str().unwrap()
    );
    api.until("/decided/x", 200);
    assert_eq!(api.get(&policy)["result"], added);
    written(&write(&api, "DELETE", &policy, &[], &Value::Null));
    until_not(&api, "/decided/x", 200);
    let gone = api.call("GET", &policy, Some(READ_TOKEN), &[]);
    assert_eq!(gone.status, 404, "{gone:?}");
    assert_eq!(with(&secret), 200);

    // Rotation: a new secret, once; the old one stops working.
    let path = format!("/access/service_tokens/{token_id}/rotate");
    let (rotated, _) = written(&write(&api, "POST", &path, &[], &Value::Null));
    let new_secret = rotated["client_secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let started = Instant::now();
    while with(&new_secret) != 200 {
        assert!(
            started.elapsed() < VISIBLE_WITHIN,
            "the new secret never worked"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_ne!(with(&secret), 200, "the old secret no longer works");

    // No read shows a secret or its hash.
    for read in [
        api.get("/access/service_tokens"),
        api.get(&format!("/access/service_tokens/{token_id}")),
    ] {
        let text = read.to_string();
        assert!(!text.contains("client_secret"), "{text}");
        assert!(!text.contains(&new_secret) && !text.contains(&secret));
    }
    let log = stack.worker_log();
    assert!(
        !log.contains(&secret) && !log.contains(&new_secret),
        "a secret was logged"
    );
}

#[test]
fn bad_writes_are_refused_with_paths_and_never_activated() {
    let Some(stack) = start("refusals") else {
        return;
    };
    let api = Api::new(&stack);
    let host = stack.addr().to_string();

    // A reusable policy an app links to.
    let (policy, v1) = written(&write(
        &api,
        "POST",
        "/access/policies",
        &[],
        &json!({ "id": "anyone", "name": "Anyone", "decision": "bypass",
            "include": [{ "everyone": {} }] }),
    ));
    assert_eq!(policy["id"], "anyone");
    let (_, v2) = written(&write(
        &api,
        "POST",
        "/access/apps",
        &[],
        &json!({ "id": "linked", "name": "Linked", "domain": format!("{host}/linked"),
            "policies": ["anyone"] }),
    ));
    assert!(v2 > v1);
    api.until("/linked/x", 200);

    let refused = |answer: &HttpResponse, status: u16| -> Value {
        assert_eq!(answer.status, status, "{answer:?}");
        let body = answer.json().unwrap();
        assert_eq!(body["success"], false, "{body}");
        assert!(!body["errors"].as_array().unwrap().is_empty(), "{body}");
        body
    };

    // The loader's refusals, with the document's paths.
    let body = refused(
        &write(&api, "DELETE", "/access/policies/anyone", &[], &Value::Null),
        400,
    );
    assert!(body.to_string().contains("apps[1].policies[0]"), "{body}");
    let body = refused(
        &write(
            &api,
            "PUT",
            "/access/apps/linked",
            &[],
            &json!({ "name": "Linked", "domain": format!("{host}/linked"), "bogus": 1,
                "policies": [{ "name": "x", "decision": "maybe", "include": [] }] }),
        ),
        400,
    );
    let errors = body["errors"].as_array().unwrap();
    assert!(
        errors
            .iter()
            .any(|e| e["path"] == "apps[1]" && e["kind"] == "unknown_field"),
        "{body}"
    );
    assert!(
        errors
            .iter()
            .any(|e| e["path"] == "apps[1].policies[0].decision"),
        "{body}"
    );
    // The Worker's own check: the last identity provider cannot go.
    refused(
        &write(
            &api,
            "DELETE",
            &format!("/access/identity_providers/{IDP}"),
            &[],
            &Value::Null,
        ),
        400,
    );
    assert_eq!(api.active(), v2, "nothing refused was activated");
    assert_eq!(api.get("/config/versions")["result_info"]["total_count"], 2);

    // Duplicate ids, unknown ids.
    let body = refused(
        &write(
            &api,
            "POST",
            "/access/policies",
            &[],
            &json!({ "id": "anyone", "name": "Again", "decision": "bypass",
                "include": [{ "everyone": {} }] }),
        ),
        409,
    );
    assert!(body.to_string().contains("already exists"), "{body}");
    for (method, path) in [
        ("GET", "/access/apps/nope"),
        ("PUT", "/access/groups/nope"),
        ("DELETE", "/access/lists/nope"),
        ("POST", "/access/service_tokens/nope/rotate"),
    ] {
        let answer = api.call_with(method, path, Some(WRITE_TOKEN), &[], b"{\"name\": \"x\"}");
        refused(&answer, 404);
    }

    // Secrets are write-only: refused, named, never echoed.
    for (path, body, field) in [
        (
            "/access/service_tokens",
            json!({ "name": "x", "client_secret": "hunter2-secret" }),
            "client_secret",
        ),
        (
            "/access/identity_providers",
            json!({ "name": "x", "type": "azureAD",
                "config": { "client_id": "c", "directory_id": IDP, "client_secret": "hunter2-secret" } }),
            "config.client_secret",
        ),
    ] {
        let answer = write(&api, "POST", path, &[], &body);
        let refusal = refused(&answer, 400);
        assert_eq!(refusal["errors"][0]["path"], field, "{refusal}");
        assert!(!answer.body.contains("hunter2"), "{answer:?}");
    }
    assert!(!stack.worker_log().contains("hunter2"));

    // Stale writers: a pinned base version that is no longer active.
    let stale = write(
        &api,
        "PUT",
        "/access/policies/anyone",
        &[("If-Match", &format!("\"{v1}\""))],
        &json!({ "name": "Stale", "decision": "bypass", "include": [{ "everyone": {} }] }),
    );
    refused(&stale, 409);
    let stale = write(
        &api,
        "DELETE",
        &format!("/access/apps/linked?base_version={v1}"),
        &[],
        &Value::Null,
    );
    refused(&stale, 409);
    let current = write(
        &api,
        "PUT",
        "/access/policies/anyone",
        &[("If-Match", &format!("\"{v2}\""))],
        &json!({ "name": "Current", "decision": "bypass", "include": [{ "everyone": {} }] }),
    );
    let (_, v3) = written(&current);
    assert!(v3 > v2);

    // Read-only and missing tokens.
    let create = json!({ "name": "x", "include": [{ "everyone": {} }] }).to_string();
    for (method, path) in [
        ("POST", "/access/groups"),
        ("PUT", "/access/policies/anyone"),
        ("DELETE", "/access/apps/linked"),
    ] {
        let answer = api.call(method, path, Some(READ_TOKEN), create.as_bytes());
        refused(&answer, 403);
        let answer = api.call(method, path, None, create.as_bytes());
        refused(&answer, 401);
    }
    assert_eq!(api.call("GET", "/access/apps", None, &[]).status, 401);

    // Malformed requests, each named.
    for (method, path, body, status, says) in [
        (
            "GET",
            "/access/nothing",
            "",
            404,
            "no such collection `nothing`",
        ),
        ("POST", "/access/apps", "not json", 400, "invalid body"),
        ("POST", "/access/apps", "[]", 400, "expected a JSON object"),
        (
            "POST",
            "/access/groups",
            "{\"name\": \"a\", \"name\": \"b\"}",
            400,
            "duplicate key `name`",
        ),
        ("PATCH", "/access/apps/linked", "{}", 405, "method `PATCH`"),
        ("POST", "/access/apps/linked", "{}", 405, "method `POST`"),
        ("PUT", "/access/apps", "{}", 405, "method `PUT`"),
        ("GET", "/access/apps?per_page=1000", "", 400, "per_page"),
        ("PATCH", "/access/lists/x", "{\"add\": []}", 400, "add"),
    ] {
        let answer = api.call(method, path, Some(WRITE_TOKEN), body.as_bytes());
        let refusal = refused(&answer, status);
        assert!(
            refusal.to_string().contains(says),
            "{method} {path}: {refusal}"
        );
    }
    let bad_pin = write(
        &api,
        "DELETE",
        "/access/apps/linked",
        &[("If-Match", "yesterday")],
        &Value::Null,
    );
    assert!(refused(&bad_pin, 400).to_string().contains("If-Match"));
    assert_eq!(api.active(), v3);
    assert_eq!(api.status("/linked/x"), 200);
}

#[test]
fn concurrent_writers_without_a_base_version_lose_no_update() {
    let Some(stack) = start("concurrent") else {
        return;
    };
    let writers = 6;
    let answers: Vec<HttpResponse> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..writers)
            .map(|i| {
                let stack = &stack;
                scope.spawn(move || {
                    let api = Api::new(stack);
                    write(
                        &api,
                        "POST",
                        "/access/groups",
                        &[],
                        &json!({ "id": format!("group-{i}"), "name": format!("Group {i}"),
                            "include": [{ "everyone": {} }] }),
                    )
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut versions: Vec<u64> = answers.iter().map(|a| written(a).1).collect();
    versions.sort_unstable();
    versions.dedup();
    assert_eq!(versions.len(), writers, "each write is its own version");
    let api = Api::new(&stack);
    let groups = api.get("/access/groups");
    assert_eq!(groups["result_info"]["total_count"], writers, "{groups}");
    assert_eq!(api.active(), *versions.last().unwrap());
    let conflicts = stack.worker_log().matches("\"config_conflict\"").count();
    eprintln!("{writers} concurrent writers: {conflicts} writes applied again on a newer version");
}

/// The first error of a refused call: (status, its `path`, its message).
fn refused(answer: &HttpResponse) -> (u16, String, String) {
    let body = answer.json().unwrap_or(Value::Null);
    assert_eq!(body["success"], false, "{answer:?}");
    let error = &body["errors"][0];
    (
        answer.status,
        error["path"].as_str().unwrap_or("").to_owned(),
        error["message"].as_str().unwrap_or("").to_owned(),
    )
}

/// Waits until `GET path` (a page) answers `status` with a body holding `needle` (or, with
/// `present` false, without it).
fn page_until(stack: &Stack, path: &str, status: u16, needle: &str, present: bool) {
    let started = Instant::now();
    loop {
        let answer = HttpClient::new()
            .request(
                "GET",
                &format!("{}{path}", stack.url()),
                &[("accept", "text/html")],
                &[],
            )
            .unwrap();
        if answer.status == status && answer.body.contains(needle) == present {
            return;
        }
        assert!(
            started.elapsed() < VISIBLE_WITHIN,
            "{path}: `{needle}` present={present} not seen: {answer:?}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn custom_pages_are_written_checked_as_the_gateway_reads_them_and_served() {
    let Some(stack) = start("custom_pages") else {
        return;
    };
    let api = Api::new(&stack);
    let page = |html: &str| json!({ "html": html });
    assert_eq!(api.get("/custom_pages")["result"], json!([]));

    // The page for every app that no app covers: stored, read back, served.
    let lost = "<main><h1>{{ title }}</h1><p id=\"lost\">Lost? Quote {{request_id}}.</p></main>";
    let answer = write(&api, "PUT", "/custom_pages/*/not_found", &[], &page(lost));
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        answer.json().unwrap()["result"],
        json!({ "app_id": "*", "kind": "not_found", "bytes": lost.len() })
    );
    let one = api.get("/custom_pages/*/not_found");
    assert_eq!(one["result"]["html"], lost, "{one}");
    page_until(&stack, "/nowhere", 404, "<p id=\"lost\">Lost? Quote ", true);

    // An app's own page (its id percent-encoded in the path is the same id).
    let denied = "<main><h1>{{title}}</h1><p>{{app_name}}: {{message}}</p></main>";
    let answer = write(
        &api,
        "PUT",
        "/custom_pages/from%2Dvar/identity_denied",
        &[],
        &page(denied),
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(
        api.get("/custom_pages")["result"],
        json!([
            { "app_id": "*", "kind": "not_found", "bytes": lost.len() },
            { "app_id": "from-var", "kind": "identity_denied", "bytes": denied.len() }
        ])
    );

    // Refused, each naming its field, and nothing stored.
    let oversized = format!("<p>{}</p>", "a".repeat(64 * 1024));
    for (path, body, field, says) in [
        (
            "/custom_pages/*/not_found",
            page("<p>{{secret}}</p>"),
            "html",
            "unknown placeholder `{{secret}}`",
        ),
        (
            "/custom_pages/*/not_found",
            page("<p>{{app_name</p>"),
            "html",
            "without its `}}`",
        ),
        (
            "/custom_pages/*/not_found",
            page(&oversized),
            "html",
            "a page holds at most 65536",
        ),
        (
            "/custom_pages/nobody/not_found",
            page("<p>x</p>"),
            "app_id",
            "no app `nobody`",
        ),
        (
            "/custom_pages/%00x/not_found",
            page("<p>x</p>"),
            "app_id",
            "not an id",
        ),
        (
            "/custom_pages/*/denied",
            page("<p>x</p>"),
            "kind",
            "unknown kind `denied`: one of",
        ),
    ] {
        let answer = write(&api, "PUT", path, &[], &body);
        let (status, path_of, message) = refused(&answer);
        assert_eq!(
            (status, path_of.as_str()),
            (400, field),
            "{path}: {answer:?}"
        );
        assert!(message.starts_with(&format!("{field}: ")), "{message}");
        assert!(message.contains(says), "{path}: {message}");
    }
    for body in [
        json!({ "html": "<p>x</p>", "more": 1 }),
        json!({}),
        json!(["<p>x</p>"]),
    ] {
        let answer = write(&api, "PUT", "/custom_pages/*/not_found", &[], &body);
        assert_eq!(answer.status, 400, "{body}: {answer:?}");
    }
    // A read token reads but never writes; no token does neither.
    let body = page("<p>mine</p>").to_string();
    for method in ["PUT", "DELETE"] {
        let answer = api.call(
            method,
            "/custom_pages/*/not_found",
            Some(READ_TOKEN),
            body.as_bytes(),
        );
        assert_eq!(answer.status, 403, "{method}: {answer:?}");
    }
    let answer = api.call("GET", "/custom_pages", None, &[]);
    assert_eq!(answer.status, 401, "{answer:?}");
    assert_eq!(api.get("/custom_pages/*/not_found")["result"]["html"], lost);

    // Deleted: the default page serves again.
    let answer = write(
        &api,
        "DELETE",
        "/custom_pages/*/not_found",
        &[],
        &Value::Null,
    );
    assert_eq!(answer.status, 200, "{answer:?}");
    let gone = api.call("GET", "/custom_pages/*/not_found", Some(READ_TOKEN), &[]);
    assert_eq!(gone.status, 404, "{gone:?}");
    let again = write(
        &api,
        "DELETE",
        "/custom_pages/*/not_found",
        &[],
        &Value::Null,
    );
    assert_eq!(again.status, 404, "{again:?}");
    page_until(&stack, "/nowhere", 404, "id=\"lost\"", false);
}

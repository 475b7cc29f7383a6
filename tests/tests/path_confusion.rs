//! The path the gateway decides is the path the origin routes — tested against the origin's
//! reading: requests are sent as raw bytes (no client-side URL normalisation), and whatever the
//! origin receives is routed the way raw-prefix origins (Flask `@app.route("/admin/<path:rest>")`,
//! Express, Envoy) and decoding origins (nginx) route it. Every forwarded request must land
//! under an app whose policies allowed the requester; every other one is refused before the
//! origin sees it. Also: hosts no app names never pass through, and routing headers a client
//! sends never reach the origin.
//!
//! Needs `cargo xtask build-worker` first (`cargo xtask test` does it); see `harness.rs`.
#![expect(
    clippy::unwrap_used,
    clippy::indexing_slicing,
    reason = "test code: a failure panics"
)]

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::{raw_get, HttpResponse};
use entra_emulator::TokenRequest;
use serde_json::{json, Value};

/// The review's setup: a host-wide staff app, an admins-only `/admin` app, a bypass `/public`
/// app, and an `/api` app that accepts encoded slashes.
fn document() -> Value {
    let idp = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
    let app = |id: &str, path: &str, decision: &str, include: Value| {
        json!({ "id": id, "name": id, "domain": format!("${{WORKER_HOST}}{path}"), "aud": format!("aud-{id}"),
                "policies": [{ "name": id, "decision": decision, "include": [include] }] })
    };
    let mut api = app(
        "api",
        "/api",
        "allow",
        json!({ "email_domain": { "domain": "example.com" } }),
    );
    api["allow_encoded_slashes"] = json!(true);
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": idp, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}" } }],
        "apps": [
            app("site", "", "allow", json!({ "email_domain": { "domain": "example.com" } })),
            app("admin", "/admin", "allow", json!({ "email": { "email": "grace@example.com" } })),
            app("public", "/public", "bypass", json!({ "everyone": {} })),
            api,
        ]
    })
}

/// Which of the document's apps a router reading `path` picks (longest prefix by segments).
fn routed(path: &str, case_insensitive: bool) -> &'static str {
    let path = if case_insensitive {
        path.to_ascii_lowercase()
    } else {
        path.to_owned()
    };
    ["/admin", "/public", "/api"]
        .into_iter()
        .find(|prefix| {
            path.strip_prefix(prefix)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
        })
        .map_or("site", |p| &p[1..])
}

/// nginx's reading: percent-decoded, `//` merged, dot segments resolved.
fn nginx(path: &str) -> String {
    let path = path.split('?').next().unwrap_or("");
    let mut bytes = Vec::new();
    let raw = path.as_bytes();
    let mut i = 0;
    while i < raw.len() {
        let hex = raw
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (raw[i], hex) {
            (b'%', Some(v)) => {
                bytes.push(v);
                i += 3;
            }
            (b, _) => {
                bytes.push(b);
                i += 1;
            }
        }
    }
    let decoded = String::from_utf8_lossy(&bytes).replace('\\', "/");
    let mut kept: Vec<&str> = Vec::new();
    for s in decoded.split('/') {
        match s.split(';').next().unwrap_or("") {
            "" | "." => {}
            ".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    kept.iter().map(|s| format!("/{s}")).collect()
}

/// Who may use which app.
fn allowed(app: &str, user: Option<&str>) -> bool {
    match (app, user) {
        ("public", _) => true,
        ("admin", Some(u)) => u == "grace",
        ("site" | "api", Some(_)) => true,
        _ => false,
    }
}

/// The review's spellings and their mirrors: each must be refused, or reach the origin as a
/// path every reading of which is an app the user may use.
const SPELLINGS: &[&str] = &[
    "/admin/..%2Fusers",
    "/admin/..;/users",
    "/admin/%2e%2e%2fusers",
    "/admin/..%5Cusers",
    "/admin/..%2Fpublic/x",
    "/admin/..%2fpublic/x",
    "/public/..%2Fadmin/x",
    "/public/%2e%2e/admin/x",
    "/public/..;/admin/x",
    "/public/../admin/x",
    "/public/./../admin/x",
    "/public\\..\\admin\\x",
    "//admin/x",
    "/ADMIN/x",
    "/Admin/x",
    "/%61dmin/x",
    "/%2561dmin/x",
    "/admin./x",
    "/admin%20/x",
    "/public%2F..%2Fadmin/x",
    "/api/..%2Fadmin/x",
    "/api/%2e%2e/admin/x",
    "/api/..%2F..%2Fadmin",
];

fn check_spelling(stack: &Stack, path: &str, user: Option<&str>, token: Option<&str>) {
    let before = stack.origin().requests();
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Accept", "application/json")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    let response: HttpResponse = raw_get(stack.addr(), path, &headers).unwrap();
    let who = user.unwrap_or("nobody");
    if response.status != 200 {
        assert_eq!(
            stack.origin().requests(),
            before,
            "{who} {path}: refused with {} but the origin was called",
            response.status
        );
        return;
    }
    let echo: Value = response.json().unwrap();
    let received = echo["path"].as_str().unwrap();
    for (reading, app) in [
        ("raw prefix", routed(received, false)),
        ("raw prefix, case-insensitive", routed(received, true)),
        ("decoded (nginx)", routed(&nginx(received), false)),
    ] {
        assert!(
            allowed(app, user),
            "{who} {path}: the origin received `{received}`, which a {reading} router runs as app \
             `{app}`, where {who} has no access"
        );
    }
}

#[test]
fn every_forwarded_path_lands_under_an_app_that_allowed_it() {
    if !Stack::should_run("path_confusion::every_forwarded_path_lands_under_an_app_that_allowed_it")
        .unwrap()
    {
        return;
    }
    let stack = Stack::start(StackConfig::new(document()).named("path-confusion")).unwrap();
    let ada = stack.emulator().mint(&TokenRequest::v2("ada")).unwrap();
    let grace = stack.emulator().mint(&TokenRequest::v2("grace")).unwrap();

    // The exploits of the review: refused with 400 before the origin, for a staff token and
    // for nobody.
    for path in [
        "/admin/..%2Fusers",
        "/admin/..;/users",
        "/admin/%2e%2e%2fusers",
        "/admin/..%5Cusers",
    ] {
        let before = stack.origin().requests();
        let r = raw_get(
            stack.addr(),
            path,
            &[("Authorization", &format!("Bearer {ada}"))],
        )
        .unwrap();
        assert_eq!(r.status, 400, "ada {path}: {r:?}");
        assert_eq!(
            stack.origin().requests(),
            before,
            "ada {path}: origin called"
        );
    }
    let before = stack.origin().requests();
    let r = raw_get(stack.addr(), "/admin/..%2Fpublic/x", &[]).unwrap();
    assert_eq!(r.status, 400, "no credentials /admin/..%2Fpublic/x: {r:?}");
    assert_eq!(stack.origin().requests(), before);

    // Every spelling, for every kind of requester: refused, or routed by every origin reading
    // to an app that allowed the requester.
    for path in SPELLINGS {
        check_spelling(&stack, path, None, None);
        check_spelling(&stack, path, Some("ada"), Some(&ada));
        check_spelling(&stack, path, Some("grace"), Some(&grace));
    }

    // What is allowed reaches the origin byte for byte.
    for (path, token) in [
        ("/admin/users?tab=1", &grace),
        ("/docs/caf%C3%A9", &ada),
        ("/api/projects/group%2Fproject", &ada),
        ("/Docs/Intro", &ada),
    ] {
        let r = raw_get(
            stack.addr(),
            path,
            &[("Authorization", &format!("Bearer {token}"))],
        )
        .unwrap();
        assert_eq!(r.status, 200, "{path}: {r:?}");
        assert_eq!(r.json().unwrap()["path"], *path);
    }
    let r = raw_get(
        stack.addr(),
        "/admin/users",
        &[("Authorization", &format!("Bearer {ada}"))],
    )
    .unwrap();
    assert_eq!(r.status, 403, "ada is no admin: {r:?}");

    // The decision log names the refusal.
    let log = stack
        .wait_for_log("encoded `/`", std::time::Duration::from_secs(10))
        .unwrap();
    assert!(
        log.contains("invalid_path"),
        "the log says why paths were refused:\n{log}"
    );
}

#[test]
fn pass_through_only_on_hosts_an_app_names_and_no_client_routing_headers() {
    if !Stack::should_run(
        "path_confusion::pass_through_only_on_hosts_an_app_names_and_no_client_routing_headers",
    )
    .unwrap()
    {
        return;
    }
    let idp = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
    let document = json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": idp, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}" } }],
        "apps": [{ "id": "admin", "name": "Admin", "domain": "${WORKER_HOST}/admin", "aud": "aud-admin",
                   "policies": [{ "name": "Grace", "decision": "allow",
                                  "include": [{ "email": { "email": "grace@example.com" } }] }] }]
    });
    let stack = Stack::start(
        StackConfig::new(document)
            .named("pass-through")
            .with_var("UNMATCHED", "pass"),
    )
    .unwrap();

    // A path no app covers, on the host the app names: passes.
    let r = raw_get(stack.addr(), "/welcome", &[]).unwrap();
    assert_eq!(r.status, 200, "{r:?}");

    // Any other host: refused, whatever the path.
    for host in [
        "evil.test",
        "localhost",
        "[::1]",
        "edge-access.example.workers.dev",
    ] {
        for path in ["/admin/secret", "/welcome"] {
            let before = stack.origin().requests();
            let r = raw_get(stack.addr(), path, &[("Host", host)]).unwrap();
            assert_eq!(r.status, 404, "Host: {host} {path}: {r:?}");
            assert_eq!(stack.origin().requests(), before, "Host: {host} {path}");
        }
    }

    // Routing headers from the client never reach the origin; X-Forwarded-* are the gateway's.
    let r = raw_get(
        stack.addr(),
        "/welcome",
        &[
            ("X-Original-URL", "/admin/secret"),
            ("X-Rewrite-URL", "/admin/secret"),
            ("X-Forwarded-Host", "admin.internal"),
            ("X-Forwarded-Prefix", "/admin"),
            ("X-Forwarded-For", "10.6.6.6"),
            ("X-Forwarded-Proto", "https"),
            ("Forwarded", "for=10.6.6.6;host=admin.internal"),
            ("X-Real-IP", "10.6.6.6"),
            ("X-HTTP-Method-Override", "DELETE"),
        ],
    )
    .unwrap();
    assert_eq!(r.status, 200, "{r:?}");
    let headers = &r.json().unwrap()["headers"];
    for name in [
        "x-original-url",
        "x-rewrite-url",
        "x-forwarded-prefix",
        "forwarded",
        "x-real-ip",
        "x-http-method-override",
    ] {
        assert!(
            headers.get(name).is_none(),
            "{name} reached the origin: {headers}"
        );
    }
    assert_eq!(headers["x-forwarded-host"], stack.addr().to_string());
    assert_eq!(headers["x-forwarded-proto"], "http");
    assert!(
        !headers["x-forwarded-for"]
            .as_str()
            .unwrap_or("")
            .contains("10.6.6.6"),
        "the client's X-Forwarded-For reached the origin: {headers}"
    );

    drop(stack);

    // With one ORIGIN_URL behind apps on several hosts, pass-through is refused at load.
    let two_hosts = json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": idp, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}" } }],
        "apps": [
            { "id": "admin", "name": "Admin", "domain": "${WORKER_HOST}/admin", "aud": "aud-admin",
              "policies": [{ "name": "Everyone", "decision": "allow", "include": [{ "everyone": {} }] }] },
            { "id": "other", "name": "Other", "domain": "other.example.com/reports", "aud": "aud-other",
              "policies": [{ "name": "Everyone", "decision": "allow", "include": [{ "everyone": {} }] }] }
        ]
    });
    let stack = Stack::start(
        StackConfig::new(two_hosts)
            .named("pass-through-two-hosts")
            .with_var("UNMATCHED", "pass"),
    )
    .unwrap();
    let r = raw_get(stack.addr(), "/welcome", &[]).unwrap();
    assert_eq!(r.status, 500, "{r:?}");
    assert_eq!(stack.origin().requests(), 0);
    // The log line is written by wrangler after the answer: wait for it.
    stack
        .wait_for_log(
            "UNMATCHED=pass with ORIGIN_URL needs every app on one host",
            std::time::Duration::from_secs(10),
        )
        .unwrap();
}

//! Sign-ins in progress under `wrangler dev`: anonymous `GET /cdn-cgi/access/login` requests
//! store nothing server-side, the target a sign-in returns to is bounded, a browser keeps a
//! bounded number of sign-ins in progress, and a callback is used once.
//!
//! One test on a stack of its own, so that nothing else writes to its storage while the test
//! measures it. Needs `cargo xtask build-worker` first (`cargo xtask test` does it).

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    clippy::indexing_slicing,
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr"
)]

mod signin_common;

use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpClient;
use entra_emulator::fixtures::Fixtures;
use entra_emulator::urlencoded;
use signin_common::{echoed, jwt_parts, log_line, query, Agent};

/// Anonymous sign-ins started by the test.
const ANONYMOUS_LOGINS: usize = 300;

/// What those may add to the worker's D1 storage at most (its files grow by pages).
const STORAGE_SLACK_BYTES: u64 = 16 * 1024;

/// The longest sign-in target kept whole (README: "Sign-in").
const MAX_TARGET_BYTES: usize = 2048;

fn login_path(target: &str) -> String {
    format!(
        "/cdn-cgi/access/login?redirect_url={}",
        urlencoded::encode(target)
    )
}

#[test]
fn pending_sign_ins_are_bounded_and_single_use() {
    if !Stack::should_run("pending_signins::pending_sign_ins_are_bounded_and_single_use").unwrap() {
        return;
    }
    let fixtures = Fixtures::load_default().unwrap();
    let stack =
        Stack::start(StackConfig::new(signin_common::document(&fixtures)).named("pending_signins"))
            .unwrap();
    signin_common::warm_up(&stack);

    // Anonymous sign-ins with long (but whole) targets store nothing.
    let http = HttpClient::with_timeout(Duration::from_secs(30));
    let before = stack.d1_storage_bytes();
    let padding = "x".repeat(MAX_TARGET_BYTES - 64);
    for n in 0..ANONYMOUS_LOGINS {
        let url = format!(
            "{}{}",
            stack.url(),
            login_path(&format!("/staff/{n}?q={padding}"))
        );
        let answer = http.get_with(&url, &[("accept", "text/html")]).unwrap();
        assert_eq!(answer.status, 302, "login {n}: {answer:?}");
        assert!(answer
            .header("location")
            .unwrap()
            .starts_with(&stack.emulator().authorize_endpoint()));
    }
    let after = stack.d1_storage_bytes();
    eprintln!("{ANONYMOUS_LOGINS} anonymous sign-ins: D1 storage {before} -> {after} bytes");
    assert!(
        after.saturating_sub(before) <= STORAGE_SLACK_BYTES,
        "{ANONYMOUS_LOGINS} anonymous sign-ins grew D1 from {before} to {after} bytes"
    );

    // A target within the limit comes back whole.
    let mut agent = Agent::new(&stack);
    let whole = format!("/staff/whole?q={padding}");
    let authorize = agent.begin_login(&login_path(&whole));
    let binding = agent.binding_cookie().unwrap();
    assert!(
        binding.name.len() + binding.value.len() < 4096,
        "the binding cookie exceeds what browsers keep: {} bytes",
        binding.value.len()
    );
    let answer = agent.navigate(&agent.choose_user(&authorize, "ada"));
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some(whole.as_str()));

    // An over-long target: its query is dropped; a path still over the limit becomes `/`.
    let mut agent = Agent::new(&stack);
    let long_query = format!("/staff/long?q={}", "y".repeat(3 * MAX_TARGET_BYTES));
    let authorize = agent.begin_login(&login_path(&long_query));
    let binding = agent.binding_cookie().unwrap();
    assert!(binding.name.len() + binding.value.len() < 4096);
    let answer = agent.navigate(&agent.choose_user(&authorize, "ada"));
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some("/staff/long"));
    let mut agent = Agent::new(&stack);
    let long_path = format!("/staff/{}", "p".repeat(3 * MAX_TARGET_BYTES));
    let authorize = agent.begin_login(&login_path(&long_path));
    let answer = agent.navigate(&agent.choose_user(&authorize, "ada"));
    assert!(
        answer.status == 404 || answer.header("location") == Some("/"),
        "{answer:?}"
    );

    // A finished sign-in cannot be finished again: not with the same callback, and not with a
    // new code the identity provider issues for the same authorize request, even with the
    // binding cookie put back.
    let mut agent = Agent::new(&stack);
    let authorize = agent.begin_sign_in("/staff/replay");
    let binding = agent.binding_cookie().unwrap();
    let callback = agent.choose_user(&authorize, "ada");
    let first = agent.navigate(&callback);
    assert_eq!(first.status, 302, "{first:?}");
    let fresh_code = agent.choose_user(&authorize, "ada");
    assert_eq!(query(&fresh_code, "state"), query(&callback, "state"));
    assert_ne!(query(&fresh_code, "code"), query(&callback, "code"));
    for (what, replayed) in [("the callback", &callback), ("a new code", &fresh_code)] {
        let mut replay = Agent::new(&stack);
        replay.jar.push(binding.clone());
        let answer = replay.navigate(replayed);
        assert_eq!(answer.status, 403, "replayed {what}: {answer:?}");
        assert!(replay.cookie("CF_Authorization").is_none(), "{what}");
    }
    log_line(&stack, "already used");

    // A binding cookie edited to send the browser elsewhere is refused.
    let mut agent = Agent::new(&stack);
    let authorize = agent.begin_sign_in("/staff/edited");
    let mut binding = agent.binding_cookie().unwrap();
    let callback = agent.choose_user(&authorize, "ada");
    binding.value = edit_cookie_target(&binding.value, "/eng/elsewhere");
    agent.jar.retain(|c| !c.name.starts_with("EA_Login_"));
    agent.jar.push(binding);
    let answer = agent.navigate(&callback);
    assert_eq!(answer.status, 403, "{answer:?}");
    assert!(agent.cookie("CF_Authorization").is_none());

    // One browser starting many sign-ins keeps only the latest few in progress, and the
    // latest still finishes.
    let mut agent = Agent::new(&stack);
    let mut last = String::new();
    for n in 0..10 {
        last = agent.begin_login(&login_path(&format!("/staff/tab-{n}")));
    }
    let pending = agent
        .jar
        .iter()
        .filter(|c| c.name.starts_with("EA_Login_"))
        .count();
    assert!(pending <= 4, "{pending} sign-ins in progress kept");
    let answer = agent.navigate(&agent.choose_user(&last, "ada"));
    assert_eq!(answer.status, 302, "{answer:?}");
    assert_eq!(answer.header("location"), Some("/staff/tab-9"));
    let cookie = agent.cookie("CF_Authorization").unwrap();
    assert_eq!(jwt_parts(&cookie).1["email"], "ada@example.com");
    echoed(&agent.navigate("/staff/tab-9"));
}

/// The binding cookie's value with its target replaced, when the value is readable (a
/// base64url JSON payload and a MAC); otherwise the value with one character changed.
fn edit_cookie_target(value: &str, target: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let edited = value.split_once('.').and_then(|(payload, mac)| {
        let mut claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        claims["r"] = serde_json::json!(target);
        Some(format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(claims.to_string())
        ))
    });
    edited.unwrap_or_else(|| {
        let mut bytes = value.as_bytes().to_vec();
        bytes[0] = if bytes[0] == b'A' { b'B' } else { b'A' };
        String::from_utf8(bytes).unwrap()
    })
}

//! The process harness: the built worker under `wrangler dev` answers, and nothing is left
//! running afterwards.
//!
//! Needs `cargo xtask setup` (wrangler) and `cargo xtask build-worker` (the worker's release
//! build). Without them the test says so on stderr and returns; with
//! `EDGE_ACCESS_REQUIRE_E2E=1` it fails instead.

#![expect(
    clippy::print_stderr,
    reason = "test code: a failure panics; it reports on stderr"
)]

use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpClient;

#[test]
fn the_worker_answers_under_wrangler_dev() {
    if !Stack::should_run("harness::the_worker_answers_under_wrangler_dev").unwrap() {
        return;
    }
    let mut stack = Stack::start(StackConfig::default().named("harness-smoke")).unwrap();
    eprintln!(
        "stack up in {:?} at {} (log {})",
        stack.startup_time(),
        stack.url(),
        stack.worker_log_path().display()
    );
    let response = HttpClient::new()
        .get(&format!("{}/some/path", stack.url()))
        .unwrap();
    // Any HTTP answer proves the harness; the stub worker answers 503 "not configured".
    assert!((200..600).contains(&response.status), "{response:?}");
    assert!(stack.is_running());
    stack
        .wait_for_log("/some/path", Duration::from_secs(10))
        .unwrap();

    let pid_file = stack.worker_log_path().to_owned();
    let addr = stack.addr();
    drop(stack);
    // Wrangler and workerd are gone: nothing answers on the worker's port any more.
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        std::net::TcpStream::connect(addr).is_err(),
        "something still listens on {addr}; see {}",
        pid_file.display()
    );
}

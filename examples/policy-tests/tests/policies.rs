//! Your policy tests: every test file under `policies/`, embedded at build time.
//!
//! - natively: `cargo test`
//! - in Node: `cargo test --target wasm32-unknown-unknown`
//! - in headless Chromium: `WASM_BINDGEN_USE_BROWSER=1 CHROMEDRIVER=/usr/bin/chromedriver
//!   cargo test --target wasm32-unknown-unknown`
//!
//! `unsupported = test` makes the same function a plain `#[test]` off wasm32, so `cargo test`
//! on the host runs these cases too (without it, `#[wasm_bindgen_test]` functions are silently
//! skipped there).

use include_dir::{include_dir, Dir};
use wasm_bindgen_test::wasm_bindgen_test;

static POLICIES: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/policies");

#[wasm_bindgen_test(unsupported = test)]
fn policies() {
    let report = edge_access_policy_tests::run(&POLICIES);
    for line in &report.lines {
        show(line);
    }
    show(&report.summary());
    report.assert_passed();
}

/// A line on the test's output: the console under wasm-bindgen-test (shown with
/// `--nocapture` or on failure), stdout natively.
fn show(line: &str) {
    #[cfg(target_arch = "wasm32")]
    wasm_bindgen_test::console_log!("{line}");
    #[cfg(not(target_arch = "wasm32"))]
    println!("{line}");
}

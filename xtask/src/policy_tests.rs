//! The policy-test template, `examples/policy-tests/`: a user's policy test files under
//! `wasm-bindgen-test`, run here as its README tells users to — from the template's folder, so
//! its `.cargo/config.toml` (the runner) and `webdriver.json` (Chromium's flags) are the ones
//! used — in Node, then in headless Chromium.

use std::path::PathBuf;

use crate::cargo_lock::locked_version;
use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::steps::Outcome;

/// The template's package.
const PACKAGE: &str = "edge-access-policy-tests";

/// Debian's ChromeDriver (`cargo xtask setup` installs it): wasm-bindgen-test-runner finds the
/// driver through this variable before it searches `PATH`.
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

fn template_dir(layout: &Layout) -> PathBuf {
    layout.root.join("examples").join("policy-tests")
}

/// `cargo test --target wasm32-unknown-unknown` in the template's folder: wasm-bindgen's runner
/// runs it in Node.
///
/// # Errors
///
/// When the template does not pin the locked wasm-bindgen, or a test fails.
pub fn node(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let version = check_pins(layout)?;
    let mut command = wasm_test(env, layout);
    process::run(&mut command)?;
    Ok(format!("wasm-bindgen {version}, Node"))
}

/// The same in headless Chromium: `WASM_BINDGEN_USE_BROWSER=1` and `CHROMEDRIVER`.
///
/// # Errors
///
/// When a test fails or the browser cannot be driven.
pub fn chromium(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let mut command = wasm_test(env, layout);
    command
        .env("WASM_BINDGEN_USE_BROWSER", "1")
        .env("CHROMEDRIVER", CHROMEDRIVER);
    process::run(&mut command)?;
    Ok("headless Chromium".into())
}

fn wasm_test(env: &Env, layout: &Layout) -> std::process::Command {
    let mut command = env.cargo();
    command
        .args(["test", "-p", PACKAGE, "--target", "wasm32-unknown-unknown"])
        .current_dir(template_dir(layout));
    command
}

/// The template must pin `wasm-bindgen` to exactly the version the runner is installed at
/// (the locked one): the README tells users to do the same.
fn check_pins(layout: &Layout) -> Result<String, XtaskError> {
    let version = locked_version(&layout.root.join("Cargo.lock"), "wasm-bindgen")?;
    let manifest = template_dir(layout).join("Cargo.toml");
    let text = std::fs::read_to_string(&manifest)
        .map_err(|source| XtaskError::io("read", &manifest, source))?;
    let pin = format!("wasm-bindgen = \"={version}\"");
    if text.lines().any(|line| line.trim() == pin) {
        Ok(version)
    } else {
        Err(XtaskError::Tool {
            tool: manifest.display().to_string(),
            problem: format!(
                "must pin `{pin}`, the version of wasm-bindgen-test-runner (Cargo.lock)"
            ),
        })
    }
}

//! `cargo xtask test`: every test and check, in the order that fails fastest, stopping at
//! the first failure. CI runs exactly this (`.ci/run`).

use crate::abi;
use crate::fuzz;
use crate::layout::Layout;
use crate::policy_js;
use crate::policy_tests;
use crate::process;
use crate::setup::setup;
use crate::size;
use crate::steps::{StepFailure, Steps};
use crate::worker::{self, Rebuild};

/// The worker crate: the only crate that knows workers-rs.
const WORKER_CRATE: &str = "edge-access-worker";

/// Set to `1`, the end-to-end tests fail instead of skipping when they cannot run
/// (`edge_access_tests::stack::REQUIRE_E2E_VAR`).
const REQUIRE_E2E_VAR: &str = "EDGE_ACCESS_REQUIRE_E2E";

/// Runs every check: set-up, fmt, clippy, the worker build (the end-to-end tests need it),
/// the native tests, policy-core in Wasm under Node, its JS package and tests, the ABI hosts,
/// the `no_std` build, `cargo publish --dry-run` of the publishable crates, and the fuzz targets: their regression inputs replayed, then each fuzzed for a few
/// seconds.
///
/// # Errors
///
/// The first step that failed.
pub fn test(layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let env = setup(layout, steps)?;

    steps.run("fmt", || {
        process::run(env.cargo().args(["fmt", "--all", "--", "--check"]))?;
        Ok(String::new())
    })?;

    // The worker compiles natively too (workers-rs stubs its imports), so it is linted with
    // the rest; and once more for wasm32, the target it ships on, where cfg(wasm32) code
    // lives.
    steps.run("clippy", || {
        process::run(env.cargo().args([
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ]))?;
        Ok(String::new())
    })?;
    steps.run("clippy (worker, wasm32)", || {
        process::run(env.cargo().args([
            "clippy",
            "-p",
            WORKER_CRATE,
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]))?;
        Ok(String::new())
    })?;

    // Before the native tests, not last: the end-to-end tests in `tests/` run this build
    // under `wrangler dev`.
    steps.run("worker release build", || {
        worker::build(&env, layout, Rebuild::Always)
    })?;

    // The wasmtime host in `cargo test` decides every vector with the ABI module and the
    // component.
    steps.run("policy-core ABI module (policy_core.wasm)", || {
        abi::build_module(&env, layout)
    })?;
    steps.run("policy-core component (policy_core.component.wasm)", || {
        abi::build_component(&env, layout)
    })?;
    steps.run("policy-core ABI header (cbindgen)", || {
        abi::check_header(&env, layout)
    })?;

    // The end-to-end tests skip (with a note) when wrangler or the worker build is missing;
    // here both are present, so a skip would hide a problem.
    steps.run("cargo test (native)", || {
        let mut command = env.cargo();
        command
            .args(["test", "--workspace"])
            .env(REQUIRE_E2E_VAR, "1")
            .env(abi::WASM_ENV, abi::module_path(layout))
            .env(abi::COMPONENT_ENV, abi::component_path(layout));
        process::run(&mut command)?;
        Ok(String::new())
    })?;

    steps.run("policy-core tests in Wasm (Node)", || {
        let mut command = env.cargo();
        command
            .args(["test", "-p", "policy-core"])
            .args(["--target", "wasm32-unknown-unknown", "--features", "wasm"])
            .env(
                "CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER",
                layout.cargo_installed("wasm-bindgen-test-runner"),
            );
        process::run(&mut command)?;
        Ok(String::new())
    })?;

    steps.run("policy-core JS package", || {
        policy_js::build_package(&env, layout)
    })?;
    steps.run("policy-core JS Wasm within 100 KB gzip", || {
        size::check_policy_core_budget(
            &env,
            &layout
                .policy_core_package_dir()
                .join("wasm")
                .join("policy_core_bg.wasm"),
        )
    })?;
    steps.run("policy-core npm pack", || policy_js::pack(&env, layout))?;
    steps.run("policy-core JS tests", || policy_js::test(&env, layout))?;
    steps.run("policy tests template in Wasm (Node)", || {
        policy_tests::node(&env, layout)
    })?;
    steps.run("policy tests template in Wasm (Chromium)", || {
        policy_tests::chromium(&env, layout)
    })?;

    steps.run("policy-core ABI from C", || abi::test_c(&env, layout))?;
    steps.run("policy-core ABI from Python", || {
        abi::test_python(&env, layout)
    })?;

    steps.run("policy-core no_std (wasm32v1-none)", || {
        process::run(env.cargo().args([
            "build",
            "-p",
            "policy-core",
            "--no-default-features",
            "--target",
            "wasm32v1-none",
        ]))?;
        Ok(String::new())
    })?;

    // What crates.io would receive: every crate not marked `publish = false` (policy-core,
    // edge-access-token, edge-access-scim and the CLI) packaged, then each package built from
    // its own tarball, the later ones against the earlier ones through cargo's local overlay
    // registry, as a publish in that order would. `--allow-dirty`: a tree with uncommitted
    // changes is checked as it is (CI's clone is clean).
    steps.run("cargo publish --dry-run (publishable crates)", || {
        process::run(
            env.cargo()
                .args(["publish", "--workspace", "--dry-run", "--allow-dirty"]),
        )?;
        Ok("packaged and verified".into())
    })?;

    // The deployment as an admin would run it, short of the upload: the checkout's
    // wrangler.toml with the example configuration, checked, built by its [build] command and
    // bundled by `wrangler deploy --dry-run`, the bundle within the free plan's limit.
    crate::deploy::deploy(
        layout,
        steps,
        &crate::deploy::Options {
            dry_run: true,
            document: Some(layout.root.join("examples").join("config.json")),
            ..crate::deploy::Options::default()
        },
    )?;
    steps.run(
        "deploy --dry-run as an unprivileged user, no browser",
        || {
            crate::unprivileged::deploy_dry_run(
                &env,
                layout,
                &std::path::Path::new("examples").join("config.json"),
            )
        },
    )?;

    fuzz::test(&env, layout, steps)
}

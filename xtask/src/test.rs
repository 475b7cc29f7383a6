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
            // The benchmark's phase profile too (the shipped code is the same without it).
            "--features",
            "phase-profile",
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
        forget_packaged_copies(&env, layout)?;
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

/// The publishable crates, as `cargo publish --workspace` packages them.
const PUBLISHED: [&str; 4] = [
    "policy-core",
    "edge-access-token",
    "edge-access-scim",
    "edge-access",
];

/// Removes cargo's extracted copies of the workspace's own packages from earlier dry runs.
/// The publish check serves the freshly packaged crates through a local registry, which cargo
/// extracts under `~/.cargo/registry/src/-<hash of the registry's path>/`; an extraction left
/// from an earlier run of the same version is reused as it is, so the CLI would be verified
/// against yesterday's policy-core. Only those directories go: crates.io's are untouched.
fn forget_packaged_copies(
    env: &process::Env,
    layout: &Layout,
) -> Result<String, crate::error::XtaskError> {
    let version =
        crate::cargo_lock::locked_version(&layout.root.join("Cargo.lock"), "policy-core")?;
    let home = env
        .var("CARGO_HOME")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            env.var("HOME")
                .map(|home| std::path::PathBuf::from(home).join(".cargo"))
        });
    let Some(src) = home.map(|home| home.join("registry").join("src")) else {
        return Ok(String::new());
    };
    let Ok(registries) = std::fs::read_dir(&src) else {
        return Ok(String::new());
    };
    let mut removed = 0;
    for registry in registries.filter_map(Result::ok) {
        if !registry.file_name().to_string_lossy().starts_with('-') {
            continue;
        }
        for name in PUBLISHED {
            let copy = registry.path().join(format!("{name}-{version}"));
            if copy.is_dir() {
                std::fs::remove_dir_all(&copy)
                    .map_err(|source| crate::error::XtaskError::io("remove", &copy, source))?;
                removed += 1;
            }
        }
    }
    Ok(format!("{removed} stale extracted copies removed"))
}

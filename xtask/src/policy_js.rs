//! policy-core as a Node package: the Wasm build, its JS API tests and its JS benchmark.

use std::path::PathBuf;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::size;
use crate::steps::Outcome;

/// Tells the JS tests and benchmark where the package is (`…/policy_core.js`), so they do
/// not depend on the target directory's location.
pub const PACKAGE_ENV: &str = "POLICY_CORE_JS";

/// Builds `target/policy-core-js/` (wasm-bindgen `--target nodejs`) from a cdylib of
/// policy-core with the `wasm` feature (profile `wasm-js`: release, optimised for size, then
/// `wasm-opt -O3`), and reports the size of its `.wasm`.
///
/// # Errors
///
/// When cargo or wasm-bindgen fail.
pub fn build_package(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    process::run(env.cargo().args([
        "rustc",
        "-p",
        "policy-core",
        "--lib",
        "--profile",
        "wasm-js",
        "--target",
        "wasm32-unknown-unknown",
        "--features",
        "wasm",
        "--crate-type",
        "cdylib",
    ]))?;
    let wasm = layout
        .target_dir
        .join("wasm32-unknown-unknown")
        .join("wasm-js")
        .join("policy_core.wasm");
    let out_dir = layout.policy_core_package_dir();
    process::run(
        env.command(layout.cargo_installed("wasm-bindgen"))
            .args(["--target", "nodejs", "--out-dir"])
            .arg(&out_dir)
            .arg(&wasm),
    )?;
    // wasm-opt -O3 after opt-level "s": smaller than either alone, and faster than -Os.
    let module = out_dir.join("policy_core_bg.wasm");
    if let Some(wasm_opt) = env.var("WASM_OPT_BIN") {
        process::run(
            env.command(wasm_opt)
                .arg("-O3")
                .arg(&module)
                .arg("-o")
                .arg(&module),
        )?;
    }
    size::describe(env, &module)
}

/// The environment for the JS files: [`PACKAGE_ENV`] set to the built package.
pub fn package_env(env: &Env, layout: &Layout) -> Env {
    let mut env = env.clone();
    env.set(
        PACKAGE_ENV,
        layout.policy_core_package_dir().join("policy_core.js"),
    );
    env
}

/// `node --test` over `policy-core/js/*.test.mjs` (explicit files: what a directory argument
/// means changed between Node 20 and 22).
///
/// # Errors
///
/// When a test fails or the folder cannot be read.
pub fn test(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let tests = test_files(layout)?;
    if tests.is_empty() {
        let note = format!(
            "no JS tests yet (no *.test.mjs in {})",
            layout.policy_core_js_dir().display()
        );
        println!("    {note}");
        return Ok(note);
    }
    process::run(
        package_env(env, layout)
            .command("node")
            .arg("--test")
            .args(&tests),
    )?;
    Ok(match tests.len() {
        1 => "1 test file".to_owned(),
        count => format!("{count} test files"),
    })
}

/// The JS benchmark, `policy-core/js/bench.mjs`, when there is one.
pub fn bench_file(layout: &Layout) -> Option<PathBuf> {
    Some(layout.policy_core_js_dir().join("bench.mjs")).filter(|file| file.is_file())
}

/// The workloads `bench.mjs` reads, as `examples/workload.rs` prints them:
/// `target/bench-workload-{realistic,large}.json`.
///
/// # Errors
///
/// When the example fails or a file cannot be written.
pub fn write_workloads(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let mut written = Vec::new();
    for workload in ["realistic", "large"] {
        let mut command = env.cargo();
        command
            .args([
                "run",
                "--quiet",
                "-p",
                "policy-core",
                "--example",
                "workload",
            ])
            .args(["--", workload]);
        println!("    $ {}", process::describe(&command));
        let json = process::output(&mut command)?;
        let file = layout
            .target_dir
            .join(format!("bench-workload-{workload}.json"));
        std::fs::write(&file, json).map_err(|source| XtaskError::io("write", &file, source))?;
        written.push(file.display().to_string());
    }
    Ok(written.join(", "))
}

fn test_files(layout: &Layout) -> Result<Vec<PathBuf>, XtaskError> {
    let dir = layout.policy_core_js_dir();
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(XtaskError::io("list", &dir, source)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let path = entry
            .map_err(|source| XtaskError::io("list", &dir, source))?
            .path();
        let is_test = path
            .file_name()
            .and_then(|name| name.to_str())
            .is_some_and(|name| name.ends_with(".test.mjs"));
        if is_test && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}

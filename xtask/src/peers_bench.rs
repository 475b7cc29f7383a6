//! `cargo xtask bench peers` (and a step of `cargo xtask bench`): policy-core, Cedar and
//! regorus on the same decisions, natively and in Wasm under Node (`bench/peers`, its own
//! workspace so that `cargo xtask test` never builds the peers); writes the "Peers" section of
//! BENCHMARKS.md.

use std::path::PathBuf;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::steps::{Outcome, StepFailure, Steps};

/// The three Wasm modules, one engine each (the crate's features).
const ENGINES: [&str; 3] = ["core", "cedar", "regorus"];

/// Builds the three Wasm modules (wasm-bindgen `--target nodejs`), then runs the benchmark.
///
/// # Errors
///
/// The step that failed (an engine deciding a request differently fails the benchmark).
pub fn bench(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let out = layout.target_dir.join("peers");
    for engine in ENGINES {
        steps.run(&format!("peers benchmark: {engine} in Wasm"), || {
            build_wasm(env, layout, engine, &out)
        })?;
    }
    steps.run(
        "peers benchmark (natively, then in Wasm under Node)",
        || {
            let report = layout.root.join("BENCHMARKS.md");
            process::run(
                env.cargo()
                    .args(["run", "--release", "--manifest-path"])
                    .arg(manifest(layout))
                    .arg("--target-dir")
                    .arg(&layout.target_dir)
                    .args(["--", "--wasm"])
                    .arg(&out)
                    .arg("--out")
                    .arg(&out)
                    .arg("--write")
                    .arg(&report),
            )?;
            Ok(format!("results in {}", report.display()))
        },
    )
}

fn manifest(layout: &Layout) -> PathBuf {
    layout.root.join("bench").join("peers").join("Cargo.toml")
}

fn build_wasm(
    env: &Env,
    layout: &Layout,
    engine: &str,
    out: &std::path::Path,
) -> Result<Outcome, XtaskError> {
    let mut command = env.cargo();
    command
        .args([
            "build",
            "--release",
            "--lib",
            "--target",
            "wasm32-unknown-unknown",
        ])
        .args(["--no-default-features", "--features", engine])
        .arg("--manifest-path")
        .arg(manifest(layout))
        .arg("--target-dir")
        .arg(&layout.target_dir);
    process::run(&mut command)?;
    let wasm = layout
        .target_dir
        .join("wasm32-unknown-unknown")
        .join("release")
        .join("edge_access_peers_bench.wasm");
    let dir = out.join(engine);
    process::run(
        env.command(layout.cargo_installed("wasm-bindgen"))
            .args(["--target", "nodejs", "--out-dir"])
            .arg(&dir)
            .arg(&wasm),
    )?;
    let module = dir.join("edge_access_peers_bench_bg.wasm");
    if let Some(wasm_opt) = env.var("WASM_OPT_BIN") {
        process::run(
            env.command(wasm_opt)
                .arg("-O3")
                .arg(&module)
                .arg("-o")
                .arg(&module),
        )?;
    }
    crate::size::describe(env, &module)
}

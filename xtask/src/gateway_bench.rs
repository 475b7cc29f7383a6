//! `cargo xtask bench`, after the policy-core benchmarks: the gateway under workerd
//! (`bench/gateway`), which writes the "Gateway under workerd", "Cold start under workerd"
//! and "Where an allowed request's CPU goes inside workerd" sections of BENCHMARKS.md (the
//! last with the gateway's phase-profile build).
//!
//! It needs the gateway's release build (`worker/build`) and the RS256 bench Worker
//! (`bench/verify-worker`, built here with worker-build exactly like the gateway, with the
//! same `WASM_BINDGEN_BIN` / `ESBUILD_BIN` / `WASM_OPT_BIN` from set-up), then runs the
//! benchmark binary in release mode; it starts every `wrangler dev` it needs on 127.0.0.1
//! and stops them when done (a few minutes on two cores).

use std::path::PathBuf;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::size;
use crate::steps::{Outcome, StepFailure, Steps};
use crate::worker::{self, Rebuild};

/// The benchmark's package (a workspace member outside `default-members`).
const PACKAGE: &str = "edge-access-gateway-bench";

/// Builds what the gateway benchmark runs, then runs it.
///
/// # Errors
///
/// The step that failed.
pub fn bench(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    steps.run("gateway benchmark: worker release build", || {
        worker::build(env, layout, Rebuild::WhenChanged)
    })?;
    steps.run(
        "gateway benchmark: verify bench Worker (worker-build)",
        || build_verify_worker(env, layout),
    )?;
    let run = |args: &[&str], command: &str| -> Result<Outcome, XtaskError> {
        let report = layout.root.join("BENCHMARKS.md");
        process::run(
            env.cargo()
                .args(["run", "--release", "-p", PACKAGE, "--"])
                .args(args)
                .arg("--write")
                .arg(&report)
                .args(["--command", command]),
        )?;
        Ok(format!("results in {}", report.display()))
    };
    steps.run("gateway benchmark under wrangler dev", || {
        run(&[], "cargo xtask bench")
    })?;
    steps.run("gateway cold start under wrangler dev", || {
        run(&["--cold", "5"], "cargo xtask bench gateway")
    })?;
    steps.run(
        "gateway benchmark: phase-profile build (worker-build)",
        || worker::build_phase_profile(env, layout),
    )?;
    steps.run("gateway phase profile under wrangler dev", || {
        let entry = worker::phase_profile_dir(layout).join("index.js");
        let entry = entry.to_string_lossy();
        run(
            &["--phases", "5", "--entry", &entry],
            "cargo xtask bench gateway",
        )
    })
}

fn verify_worker_dir(layout: &Layout) -> PathBuf {
    layout.root.join("bench").join("verify-worker")
}

/// `worker-build --release` in `bench/verify-worker` (into its `build/`), as the gateway's
/// build runs it in `worker/`.
fn build_verify_worker(env: &Env, layout: &Layout) -> Result<Outcome, XtaskError> {
    let dir = verify_worker_dir(layout);
    let mut command = env.command(layout.cargo_installed("worker-build"));
    command.arg("--release").current_dir(&dir);
    process::run(&mut command)?;
    let out = dir.join("build");
    let wasm = out.join("index_bg.wasm");
    for output in [out.join("index.js"), wasm.clone()] {
        if !output.is_file() {
            return Err(XtaskError::Tool {
                tool: "worker-build".into(),
                problem: format!("did not write `{}`", output.display()),
            });
        }
    }
    size::describe(env, &wasm)
}

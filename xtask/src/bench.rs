//! `cargo xtask bench`: policy-core's Rust benchmarks, then its JS benchmark in Node, then
//! the same workload in every host of the ABI (`hosts_bench`), then the gateway under workerd (`gateway_bench`), then SCIM provisioning under workerd
//! (`scim-provision-bench`, `bench/scim`).

use crate::gateway_bench;
use crate::hosts_bench;
use crate::layout::Layout;
use crate::policy_js;
use crate::process::{self, Env};
use crate::setup::setup;
use crate::steps::{StepFailure, Steps};

/// Runs `cargo bench -p policy-core` and, when `policy-core/js/bench.mjs` exists, the
/// Node benchmark against a fresh release build of the Wasm package, on the same workload
/// (`policy-core/examples/workload.rs`, written to the target directory).
///
/// # Errors
///
/// The step that failed.
pub fn bench(layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let env = setup(layout, steps)?;
    policy_core(env.clone(), layout, steps)?;
    hosts_bench::bench(&env, layout, steps)?;
    gateway_bench::bench(&env, layout, steps)?;
    scim_provisioning(&env, layout, steps)
}

/// Entra-style provisioning through the worker's SCIM endpoint (the worker's release build is
/// already there: the gateway benchmark's first step makes it); writes the "SCIM
/// provisioning under workerd" section of BENCHMARKS.md.
fn scim_provisioning(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    steps.run("SCIM provisioning benchmark under wrangler dev", || {
        let report = layout.root.join("BENCHMARKS.md");
        process::run(
            env.cargo()
                .args([
                    "run",
                    "--release",
                    "-p",
                    "edge-access-scim-bench",
                    "--bin",
                    "scim-provision-bench",
                    "--",
                    "--write",
                ])
                .arg(&report)
                .args(["--command", "cargo xtask bench"]),
        )?;
        Ok(format!("results in {}", report.display()))
    })
}

/// `cargo xtask bench hosts`: only the policy-core workload in every host (`hosts_bench`), after
/// building the JS package it also measures.
///
/// # Errors
///
/// The step that failed.
pub fn hosts(layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let env = setup(layout, steps)?;
    steps.run("policy-core JS package", || {
        policy_js::build_package(&env, layout)
    })?;
    hosts_bench::bench(&env, layout, steps)
}

/// policy-core's benchmarks: `cargo bench`, then the JS benchmark when there is one.
fn policy_core(env: Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    steps.run("cargo bench -p policy-core", || {
        process::run(env.cargo().args(["bench", "-p", "policy-core"]))?;
        Ok(String::new())
    })?;
    let Some(bench) = policy_js::bench_file(layout) else {
        println!("    no JS benchmark yet (policy-core/js/bench.mjs)");
        return Ok(());
    };
    steps.run("benchmark workload files", || {
        policy_js::write_workloads(&env, layout)
    })?;
    steps.run("policy-core JS package", || {
        policy_js::build_package(&env, layout)
    })?;
    steps.run("policy-core JS benchmark", || {
        process::run(
            policy_js::package_env(&env, layout)
                .command("node")
                .arg(&bench),
        )?;
        Ok(String::new())
    })
}

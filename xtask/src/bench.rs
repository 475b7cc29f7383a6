//! `cargo xtask bench [STEP]`: policy-core's Rust benchmarks, then its JS benchmark in Node,
//! then the same workload in every host of the ABI (`hosts_bench`), then policy-core beside
//! Cedar and regorus (`peers_bench`), then the gateway under workerd (`gateway_bench`), then
//! SCIM provisioning under workerd (`scim-provision-bench`, `bench/scim`), then configuration
//! changes through the management API under workerd (`config-change-bench`, `bench/config`),
//! then sign-in through the team domain under workerd (`signin-hop-bench`, `bench/signin`);
//! with a STEP, that one alone.

use crate::error::XtaskError;
use crate::gateway_bench;
use crate::hosts_bench;
use crate::layout::Layout;
use crate::peers_bench;
use crate::policy_js;
use crate::process::{self, Env};
use crate::setup::setup;
use crate::steps::{StepFailure, Steps};
use crate::wasm_budget;
use crate::worker::{self, Rebuild};

/// Runs `cargo bench -p policy-core` and, when `policy-core/js/bench.mjs` exists, the
/// Node benchmark against a fresh release build of the Wasm package, on the same workload
/// (`policy-core/examples/workload.rs`, written to the target directory).
///
/// # Errors
///
/// The step that failed.
pub fn bench(layout: &Layout, steps: &mut Steps, only: Option<Step>) -> Result<(), StepFailure> {
    let env = setup(layout, steps)?;
    let runs = |step: Step| only.is_none_or(|only| only == step);
    if runs(Step::PolicyCore) {
        policy_core(env.clone(), layout, steps)?;
    }
    if runs(Step::Hosts) {
        if only.is_some() {
            steps.run("policy-core JS package", || {
                policy_js::build_package(&env, layout)
            })?;
        }
        hosts_bench::bench(&env, layout, steps)?;
    }
    if runs(Step::Peers) {
        peers_bench::bench(&env, layout, steps)?;
    }
    if runs(Step::Size) {
        worker_size(&env, layout, steps)?;
    }
    if runs(Step::Gateway) {
        gateway_bench::bench(&env, layout, steps)?;
    }
    if runs(Step::Scim) {
        scim_provisioning(&env, layout, steps)?;
    }
    if runs(Step::Config) {
        config_changes(&env, layout, steps)?;
    }
    if runs(Step::Signin) {
        signin_hop(&env, layout, steps)?;
    }
    Ok(())
}

/// One step of `cargo xtask bench`, to run alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// `cargo bench -p policy-core` and the JS benchmark.
    PolicyCore,
    /// The policy-core workload in every ABI host (`hosts_bench`).
    Hosts,
    /// policy-core, Cedar and regorus (`bench/peers`).
    Peers,
    /// The worker's Wasm by crate (`wasm_budget`).
    Size,
    /// The gateway under workerd (`bench/gateway`).
    Gateway,
    /// SCIM provisioning under workerd.
    Scim,
    /// Configuration changes through the management API under workerd (`bench/config`).
    Config,
    /// Sign-in through the team domain against each host by itself (`bench/signin`).
    Signin,
}

impl Step {
    /// The names `cargo xtask bench STEP` takes.
    pub const NAMES: &'static str =
        "policy-core, hosts, peers, size, gateway, scim, config, signin";

    /// Parses a step's name.
    ///
    /// # Errors
    ///
    /// A usage error naming the steps.
    pub fn parse(name: &str) -> Result<Step, XtaskError> {
        match name {
            "policy-core" => Ok(Step::PolicyCore),
            "hosts" => Ok(Step::Hosts),
            "peers" => Ok(Step::Peers),
            "size" => Ok(Step::Size),
            "gateway" => Ok(Step::Gateway),
            "scim" => Ok(Step::Scim),
            "config" => Ok(Step::Config),
            "signin" => Ok(Step::Signin),
            other => Err(XtaskError::Usage(format!(
                "unknown benchmark `{other}` (one of {})",
                Step::NAMES
            ))),
        }
    }
}

/// Entra-style provisioning through the worker's SCIM endpoint (the worker's release build is
/// already there: the gateway benchmark's first step makes it); writes the "SCIM
/// provisioning under workerd" section of BENCHMARKS.md.
fn scim_provisioning(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    section_runner(
        env,
        layout,
        steps,
        "SCIM provisioning benchmark under wrangler dev",
        ("edge-access-scim-bench", "scim-provision-bench"),
        ("cargo xtask bench", None),
    )
}

/// How soon a version written through the management API decides requests, and what checking
/// for one costs a request (`bench/config`); writes the "Configuration changes under workerd"
/// section of BENCHMARKS.md.
fn config_changes(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    section_runner(
        env,
        layout,
        steps,
        "configuration change benchmark under wrangler dev",
        ("edge-access-config-bench", "config-change-bench"),
        ("cargo xtask bench config", Some(Rebuild::WhenChanged)),
    )
}

/// What signing in through the team domain adds to a sign-in (`bench/signin`); writes the
/// "Sign-in through the team domain under workerd" section of BENCHMARKS.md.
fn signin_hop(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    section_runner(
        env,
        layout,
        steps,
        "team-domain sign-in benchmark under wrangler dev",
        ("edge-access-signin-bench", "signin-hop-bench"),
        ("cargo xtask bench signin", Some(Rebuild::WhenChanged)),
    )
}

/// Runs the release binary `bin` of `package`, a runner that writes its own section of
/// BENCHMARKS.md, naming `command` as the command that reproduces it; first the worker's
/// release build when `build` says how (`None`: another step made it).
fn section_runner(
    env: &Env,
    layout: &Layout,
    steps: &mut Steps,
    title: &str,
    (package, bin): (&str, &str),
    (command, build): (&str, Option<Rebuild>),
) -> Result<(), StepFailure> {
    if let Some(build) = build {
        steps.run("worker release build", || worker::build(env, layout, build))?;
    }
    steps.run(title, || {
        let report = layout.root.join("BENCHMARKS.md");
        process::run(
            env.cargo()
                .args([
                    "run",
                    "--release",
                    "-p",
                    package,
                    "--bin",
                    bin,
                    "--",
                    "--write",
                ])
                .arg(&report)
                .args(["--command", command]),
        )?;
        Ok(format!("results in {}", report.display()))
    })
}

/// The heading of the section `worker_size` writes.
const SIZE_SECTION: &str = "## Worker Wasm by crate";

/// The worker's release build, then its Wasm by crate into BENCHMARKS.md.
fn worker_size(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    steps.run("worker release build", || {
        worker::build(env, layout, Rebuild::WhenChanged)
    })?;
    steps.run("worker Wasm by crate", || {
        let wasm = layout.worker_build_dir().join("index_bg.wasm");
        let total = crate::size::describe(env, &wasm)?;
        let list = wasm_budget::by_crate(&wasm)?;
        let bytes: u64 = list.iter().map(|(_, n)| n).sum();
        let mut table = String::from("| crate | bytes | share |\n|---|---:|---:|\n");
        for (name, n) in &list {
            #[expect(
                clippy::cast_precision_loss,
                reason = "sizes far below 2^52 bytes, printed to one decimal"
            )]
            let share = *n as f64 * 100.0 / bytes.max(1) as f64;
            table.push_str(&format!("| {name} | {n} | {share:.1} % |\n"));
        }
        let body = format!(
            "{SIZE_SECTION}\n\nCommand: `cargo xtask bench size` (`xtask/src/wasm_budget.rs`): the \
shipped `worker/build/index_bg.wasm` ({total}), the code of each function (named by the module's \
name section, which worker-build keeps) summed by the crate its name starts with; generic code \
counts for the crate that defines it (`core::ptr::drop_in_place<…>` is `core`'s), as twiggy \
counts it. Raw bytes, before gzip.\n\n{table}"
        );
        println!("{body}");
        let report = layout.root.join("BENCHMARKS.md");
        write_section(&report, SIZE_SECTION, &body)?;
        Ok(total)
    })
}

/// Replaces the section `heading` of `file` (to the next `## `) with `body`, or appends it.
fn write_section(file: &std::path::Path, heading: &str, body: &str) -> Result<(), XtaskError> {
    let text =
        std::fs::read_to_string(file).map_err(|source| XtaskError::io("read", file, source))?;
    let new = match text.find(heading) {
        Some(start) => {
            let after = start + heading.len();
            let end = text
                .get(after..)
                .and_then(|rest| rest.find("\n## "))
                .map_or(text.len(), |e| after + e + 1);
            format!(
                "{}{body}\n{}",
                text.get(..start).unwrap_or(""),
                text.get(end..).unwrap_or("")
            )
        }
        None => format!("{}\n\n{body}", text.trim_end()),
    };
    std::fs::write(file, new).map_err(|source| XtaskError::io("write", file, source))
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

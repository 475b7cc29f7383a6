//! `cargo xtask`: set-up and orchestration for edge-access.
//!
//! ```text
//! cargo xtask setup                  install the tools (idempotent; run by every command)
//! cargo xtask test                   every test and check, as CI runs them
//! cargo xtask dev [--port N]         the local stack under wrangler dev
//! cargo xtask build-worker [--force] the worker's release build (wrangler's [build] command)
//! cargo xtask bench [STEP]           policy-core benchmarks, Rust then JS; the same workload in
//!                                    every ABI host; policy-core beside Cedar and regorus; the
//!                                    gateway, SCIM and configuration changes under workerd
//! cargo xtask deploy [--dry-run] [--config FILE] [--env NAME] [--plan free|paid]
//!                    [--document FILE] [--stored-config]
//!                                    the deploy checks, then wrangler deploy (--dry-run: bundle only)
//! cargo xtask fuzz [TARGET] [--seconds N] [--write]
//!                                    the fuzz targets, each for N seconds (default 60)
//! ```
//!
//! Design choices: only the standard library (plus signal plumbing for `dev`), because xtask
//! is the first thing compiled on a fresh clone; every step prints `==> name (N.Ns)`; child
//! processes inherit the terminal so their output streams as they run.

mod abi;
mod bench;
mod cargo_lock;
mod deploy;
mod dev;
mod error;
mod fuzz;
mod gateway_bench;
mod hosts_bench;
mod layout;
mod peers_bench;
mod policy_js;
mod policy_tests;
mod process;
mod setup;
mod size;
mod stack;
mod steps;
mod test;
mod unprivileged;
mod wasm_budget;
mod worker;

use std::process::ExitCode;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::steps::{seconds, StepFailure, Steps};
use crate::worker::Rebuild;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  setup                  install what the builds need (rust targets, wasm-bindgen-cli,
                         worker-build, npm tools); skips what is installed
  test                   every test and check, in CI's order, stopping at the first failure
  dev [--port N]         build the worker and run it under `wrangler dev` on 127.0.0.1:8787
  build-worker [--force] the worker's release build into worker/build (skipped when nothing
                         changed, unless --force)
  bench [STEP]           policy-core benchmarks (cargo bench, then policy-core/js/bench.mjs),
                         the same workload in every ABI host (Rust, wasmtime, component, C,
                         Python), policy-core beside Cedar and regorus (bench/peers), then the
                         gateway, SCIM provisioning and configuration changes under wrangler dev
                         (bench/gateway, bench/scim, bench/config); results in BENCHMARKS.md.
                         STEP (policy-core, hosts, peers, size, gateway, scim, config) runs one
                         (size: the worker's Wasm by crate)
  deploy [--dry-run] [--config FILE] [--env NAME] [--plan free|paid] [--document FILE]
         [--stored-config]
                         check the deployment (vars within 5 KB, a configuration that loads,
                         the secrets it needs declared in [secrets] required, the D1 and KV
                         bindings), bundle it with `wrangler deploy --dry-run` and check the
                         bundle against the plan's upload limit, then (without --dry-run)
                         `wrangler deploy`. --document deploys FILE as EDGE_ACCESS_CONFIG;
                         --stored-config deploys without one (managed through the API)
  fuzz [TARGET] [--seconds N] [--write]
                         replay the fuzz regression inputs, then fuzz every target (or one)
                         for N seconds each (default 60) with cargo-fuzz; --write puts runs
                         and execs/s into BENCHMARKS.md
  abi-header             regenerate abi/include/policy_core.h with cbindgen (policy-core/ABI.md)";

/// A parsed command line.
#[derive(Debug, PartialEq, Eq)]
enum Task {
    Setup,
    Test,
    Dev { port: u16 },
    BuildWorker { rebuild: Rebuild },
    Bench { only: Option<bench::Step> },
    Deploy(deploy::Options),
    Fuzz(fuzz::Options),
    AbiHeader,
    Help,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let task = match parse(&args) {
        Ok(task) => task,
        Err(error) => {
            report(&format!("{error}\n\n{USAGE}"));
            return ExitCode::from(2);
        }
    };
    if task == Task::Help {
        println!("{USAGE}");
        return ExitCode::SUCCESS;
    }
    let layout = match Layout::discover() {
        Ok(layout) => layout,
        Err(error) => {
            report(&format!("error: {error}"));
            return ExitCode::FAILURE;
        }
    };

    let mut steps = Steps::new();
    let (name, result) = match task {
        Task::Setup => ("setup", run_setup(&layout, &mut steps)),
        Task::Test => ("test", test::test(&layout, &mut steps)),
        Task::Dev { port } => ("dev", dev::dev(&layout, &mut steps, port)),
        Task::BuildWorker { rebuild } => {
            ("build-worker", build_worker(&layout, &mut steps, rebuild))
        }
        Task::Bench { only } => ("bench", bench::bench(&layout, &mut steps, only)),
        Task::Deploy(options) => ("deploy", deploy::deploy(&layout, &mut steps, &options)),
        Task::Fuzz(options) => ("fuzz", fuzz::fuzz(&layout, &mut steps, &options)),
        Task::AbiHeader => ("abi-header", abi_header(&layout, &mut steps)),
        Task::Help => ("help", Ok(())),
    };

    match result {
        Ok(()) => {
            println!(
                "==> cargo xtask {name}: all {} steps passed in {}",
                steps.finished().len(),
                seconds(steps.elapsed())
            );
            ExitCode::SUCCESS
        }
        Err(StepFailure { step, error }) => {
            println!(
                "==> cargo xtask {name}: FAILED at step `{step}` after {} ({} steps passed)",
                seconds(steps.elapsed()),
                steps.finished().len()
            );
            report(&format!("error: {step}: {error}"));
            if matches!(error, XtaskError::Interrupted) {
                ExitCode::from(130)
            } else {
                ExitCode::FAILURE
            }
        }
    }
}

fn parse(args: &[String]) -> Result<Task, XtaskError> {
    let mut args = args.iter().map(String::as_str);
    let task = match args.next() {
        None | Some("help" | "-h" | "--help") => Task::Help,
        Some("setup") => Task::Setup,
        Some("test") => Task::Test,
        Some("bench") => Task::Bench {
            only: args.next().map(bench::Step::parse).transpose()?,
        },
        Some("fuzz") => return parse_fuzz(args),
        Some("deploy") => return parse_deploy(args),
        Some("abi-header") => Task::AbiHeader,
        Some("build-worker") => match args.next() {
            Some("--force") => Task::BuildWorker {
                rebuild: Rebuild::Always,
            },
            Some(other) => return Err(unexpected(other)),
            None => Task::BuildWorker {
                rebuild: Rebuild::WhenChanged,
            },
        },
        Some("dev") => match args.next() {
            Some("--port") => {
                let port = args.next().unwrap_or_default();
                let port = port.parse().map_err(|_| {
                    XtaskError::Usage(format!("--port needs a port number, not `{port}`"))
                })?;
                Task::Dev { port }
            }
            Some(other) => return Err(unexpected(other)),
            None => Task::Dev {
                port: dev::DEFAULT_PORT,
            },
        },
        Some(other) => {
            return Err(XtaskError::Usage(format!("unknown command `{other}`")));
        }
    };
    match args.next() {
        Some(extra) => Err(unexpected(extra)),
        None => Ok(task),
    }
}

/// `fuzz [TARGET] [--seconds N] [--write]`, in any order.
fn parse_fuzz<'a>(mut args: impl Iterator<Item = &'a str>) -> Result<Task, XtaskError> {
    let mut options = fuzz::Options {
        target: None,
        seconds: fuzz::DEFAULT_SECONDS,
        write: false,
    };
    while let Some(arg) = args.next() {
        match arg {
            "--seconds" => {
                let value = args.next().unwrap_or_default();
                options.seconds = value
                    .parse()
                    .ok()
                    .filter(|seconds| *seconds > 0)
                    .ok_or_else(|| {
                        XtaskError::Usage(format!(
                            "--seconds needs a number of seconds, not `{value}`"
                        ))
                    })?;
            }
            "--write" => options.write = true,
            target if !target.starts_with('-') && options.target.is_none() => {
                options.target = Some(target.to_owned());
            }
            other => return Err(unexpected(other)),
        }
    }
    Ok(Task::Fuzz(options))
}

/// `deploy [--dry-run] [--config FILE] [--env NAME] [--plan free|paid] [--document FILE]
/// [--stored-config]`, in any order.
fn parse_deploy<'a>(mut args: impl Iterator<Item = &'a str>) -> Result<Task, XtaskError> {
    let mut options = deploy::Options::default();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| {
            args.next()
                .filter(|value| !value.starts_with("--"))
                .ok_or_else(|| XtaskError::Usage(format!("{flag} needs a value")))
        };
        match arg {
            "--dry-run" => options.dry_run = true,
            "--stored-config" => options.stored_config = true,
            "--config" => options.config = Some(value(arg)?.into()),
            "--env" => options.env = Some(value(arg)?.to_owned()),
            "--document" => options.document = Some(value(arg)?.into()),
            "--plan" => {
                options.plan = match value(arg)? {
                    "free" => deploy::Plan::Free,
                    "paid" => deploy::Plan::Paid,
                    other => {
                        return Err(XtaskError::Usage(format!(
                            "--plan is `free` or `paid`, not `{other}`"
                        )))
                    }
                }
            }
            other => return Err(unexpected(other)),
        }
    }
    Ok(Task::Deploy(options))
}

fn unexpected(arg: &str) -> XtaskError {
    XtaskError::Usage(format!("unexpected argument `{arg}`"))
}

/// `cargo xtask setup` on its own also prints the environment, for using the tools by hand.
fn run_setup(layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let env = setup::setup(layout, steps)?;
    println!("    environment for the tools (xtask sets it for every command it runs):");
    for (key, value) in env.vars() {
        println!(
            "    export {}='{}'",
            key.to_string_lossy(),
            value.to_string_lossy()
        );
    }
    Ok(())
}

/// The `[build]` command of wrangler.toml: only what building needs (no browser, no root).
fn build_worker(layout: &Layout, steps: &mut Steps, rebuild: Rebuild) -> Result<(), StepFailure> {
    let env = setup::setup_build(layout, steps)?;
    steps.run("worker release build", || {
        worker::build(&env, layout, rebuild)
    })
}

fn abi_header(layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let env = setup::setup(layout, steps)?;
    steps.run("abi header", || abi::write_header(&env, layout))
}

#[expect(
    clippy::print_stderr,
    reason = "xtask is a command-line tool: its errors belong on stderr"
)]
fn report(message: &str) {
    eprintln!("{message}");
}

#[cfg(test)]
mod tests {
    use super::{parse, Task};
    use crate::fuzz;
    use crate::worker::Rebuild;

    fn args(line: &str) -> Vec<String> {
        line.split_whitespace().map(str::to_owned).collect()
    }

    #[test]
    fn parses_every_command() {
        assert_eq!(parse(&args("test")).ok(), Some(Task::Test));
        assert_eq!(parse(&args("")).ok(), Some(Task::Help));
        assert_eq!(parse(&args("bench")).ok(), Some(Task::Bench { only: None }));
        assert_eq!(
            parse(&args("bench hosts")).ok(),
            Some(Task::Bench {
                only: Some(crate::bench::Step::Hosts)
            })
        );
        assert_eq!(
            parse(&args("bench peers")).ok(),
            Some(Task::Bench {
                only: Some(crate::bench::Step::Peers)
            })
        );
        assert!(parse(&args("bench all")).is_err());
        assert_eq!(
            parse(&args("deploy --dry-run --plan paid --document d.json")).ok(),
            Some(Task::Deploy(crate::deploy::Options {
                dry_run: true,
                plan: crate::deploy::Plan::Paid,
                document: Some("d.json".into()),
                ..crate::deploy::Options::default()
            }))
        );
        assert!(parse(&args("deploy --plan enterprise")).is_err());
        assert!(parse(&args("deploy --config")).is_err());
        assert_eq!(
            parse(&args("dev --port 9000")).ok(),
            Some(Task::Dev { port: 9000 })
        );
        assert_eq!(
            parse(&args("build-worker --force")).ok(),
            Some(Task::BuildWorker {
                rebuild: Rebuild::Always
            })
        );
    }

    #[test]
    fn parses_a_benchmark_step() {
        use crate::bench::Step;
        assert_eq!(parse(&args("bench")).ok(), Some(Task::Bench { only: None }));
        assert_eq!(
            parse(&args("bench peers")).ok(),
            Some(Task::Bench {
                only: Some(Step::Peers)
            })
        );
        assert_eq!(
            parse(&args("bench size")).ok(),
            Some(Task::Bench {
                only: Some(Step::Size)
            })
        );
        assert_eq!(
            parse(&args("bench config")).ok(),
            Some(Task::Bench {
                only: Some(Step::Config)
            })
        );
        assert!(parse(&args("bench nothing")).is_err());
        assert!(parse(&args("bench peers size")).is_err());
    }

    #[test]
    fn parses_fuzz_options() {
        let options = |target: Option<&str>, seconds, write| {
            Some(Task::Fuzz(fuzz::Options {
                target: target.map(str::to_owned),
                seconds,
                write,
            }))
        };
        assert_eq!(
            parse(&args("fuzz")).ok(),
            options(None, fuzz::DEFAULT_SECONDS, false)
        );
        assert_eq!(
            parse(&args("fuzz scim_patch --seconds 300")).ok(),
            options(Some("scim_patch"), 300, false)
        );
        assert_eq!(
            parse(&args("fuzz --write --seconds 5")).ok(),
            options(None, 5, true)
        );
        assert!(parse(&args("fuzz --seconds")).is_err());
        assert!(parse(&args("fuzz --seconds 0")).is_err());
        assert!(parse(&args("fuzz a b")).is_err());
        assert!(parse(&args("fuzz --fast")).is_err());
    }

    #[test]
    fn rejects_what_it_does_not_know() {
        assert!(parse(&args("release")).is_err());
        assert!(parse(&args("test --fast")).is_err());
        assert!(parse(&args("dev --port eighty")).is_err());
    }
}

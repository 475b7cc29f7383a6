//! `cargo xtask dev`: the local stack a person runs and opens in a browser.
//!
//! The Entra ID emulator (`emulator/`), the demo origin and the worker under `wrangler dev`
//! (workerd, local storage, no Cloudflare account), run by `edge-access-dev-stack` from the
//! `tests` crate with the demo configuration `examples/dev-config.json`. It prints the URL, the
//! fixture users and a copy-paste command that mints a token and calls the gateway.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::time::Duration;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::Env;
use crate::setup::setup;
use crate::stack::Stack;
use crate::steps::{StepFailure, Steps};
use crate::worker::{self, Rebuild};

/// Where the worker listens unless `--port` says otherwise (wrangler's own default).
pub const DEFAULT_PORT: u16 = 8787;

/// How long wrangler may take to answer; it runs the `[build]` command first, which is
/// quick after our own build but a full build if a file changed in between.
const WORKER_START: Duration = Duration::from_secs(600);

/// Sets up, builds the worker, starts the stack and runs until Ctrl-C.
///
/// # Errors
///
/// The step that failed: set-up, build, or a service that did not start or stopped.
pub fn dev(layout: &Layout, steps: &mut Steps, port: u16) -> Result<(), StepFailure> {
    let env = setup(layout, steps)?;
    steps.run("build worker", || {
        worker::build(&env, layout, Rebuild::WhenChanged)
    })?;

    steps.run("build the dev stack", || {
        crate::process::run(env.cargo().args([
            "build",
            "--quiet",
            "-p",
            "edge-access-tests",
            "--bin",
            "edge-access-dev-stack",
        ]))?;
        Ok(String::new())
    })?;

    let worker_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stack = None;
    steps.run("start emulator, origin and worker", || {
        let mut started = Stack::new()?;
        start_stack(&mut started, &env, layout, worker_addr)?;
        stack = Some(started);
        Ok(format!("listening on http://{worker_addr}"))
    })?;
    match stack {
        Some(stack) => stack.run_until_stopped().map_err(|error| StepFailure {
            step: "dev stack".into(),
            error,
        }),
        None => Ok(()),
    }
}

/// `edge-access-dev-stack` (emulator + origin + `wrangler dev`) with the worker on `addr`,
/// waited for until it answers HTTP.
fn start_stack(
    stack: &mut Stack,
    env: &Env,
    layout: &Layout,
    addr: SocketAddr,
) -> Result<(), XtaskError> {
    ensure_free(addr)?;
    let binary = layout
        .target_dir
        .join("debug")
        .join("edge-access-dev-stack");
    let mut command = env.command(binary);
    command
        .arg("--port")
        .arg(addr.port().to_string())
        .arg("--config")
        .arg(layout.root.join("examples").join("dev-config.json"));
    stack.spawn("edge-access-dev-stack", command)?;
    stack.wait_for_http("edge-access-dev-stack", addr, WORKER_START)?;
    Ok(())
}

/// A clear error when something already listens on `addr` (wrangler would pick another
/// port on its own and the printed URL would be wrong).
fn ensure_free(addr: SocketAddr) -> Result<(), XtaskError> {
    TcpListener::bind(addr)
        .map(drop)
        .map_err(|source| XtaskError::Stack {
            service: "wrangler dev".into(),
            problem: format!("cannot use {addr}: {source} (another `cargo xtask dev`? try --port)"),
        })
}

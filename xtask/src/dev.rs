//! `cargo xtask dev`: the local stack a person runs and opens in a browser.
//!
//! Today that is the worker under `wrangler dev` (workerd, local storage, no Cloudflare
//! account). The gateway work adds the Entra ID emulator and the demo origin as services
//! started before the worker, passing their URLs to it with `wrangler dev --var`.

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

    let worker_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut stack = None;
    steps.run("start worker (wrangler dev)", || {
        let mut started = Stack::new()?;
        start_worker(&mut started, &env, worker_addr)?;
        stack = Some(started);
        Ok(format!("listening on http://{worker_addr}"))
    })?;

    println!();
    println!("    edge-access is running at http://{worker_addr}/");
    println!("    (configured by EDGE_ACCESS_CONFIG in wrangler.toml)");
    println!("    Ctrl-C stops it.");
    println!();
    match stack {
        Some(stack) => stack.run_until_stopped().map_err(|error| StepFailure {
            step: "dev stack".into(),
            error,
        }),
        None => Ok(()),
    }
}

/// `wrangler dev` in local mode on `addr`, waited for until it answers HTTP.
fn start_worker(stack: &mut Stack, env: &Env, addr: SocketAddr) -> Result<(), XtaskError> {
    ensure_free(addr)?;
    let mut command = env.command("wrangler");
    command
        .args(["dev", "--local", "--show-interactive-dev-session=false"])
        .args([
            "--ip",
            &addr.ip().to_string(),
            "--port",
            &addr.port().to_string(),
        ]);
    stack.spawn("wrangler dev", command)?;
    stack.wait_for_http("wrangler dev", addr, WORKER_START)?;
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

//! Cold start (`gateway-bench --cold ROUNDS`): what a new isolate costs before it answers as
//! fast as a warm one.
//!
//! - **Compiling the module**: V8 (Node, the engine workerd embeds) compiling the shipped
//!   `index_bg.wasm` with `new WebAssembly.Module`, median of a few compiles in one Node
//!   (Node 20's V8 needs `--experimental-wasm-gc` for the reference types the module uses;
//!   workerd's newer V8 has them on).
//!   The platform counts this in a Worker's startup, against its 1 s limit.
//! - **Under workerd**, per round a new gateway (a new workerd, so a new isolate) and a new
//!   pass-through JS Worker in front of the same origin: the workerd CPU each took to start
//!   (the gateway's minus the pass-through's is the gateway's own start), then its first
//!   allowed bearer request (the configuration compiled, Entra's keys fetched from the
//!   emulator and imported, the token checked, decided, proxied) and its second, each timed
//!   from the client with the workerd CPU it took. Starting includes compiling the module,
//!   which the platform counts against a Worker's 1 s startup limit. (Node 20's V8 cannot
//!   compile the module by itself to time that alone: it uses Wasm exception handling.)
//!
//! Inspector proxy off, as in the main tables ([`crate::Mode::InspectorOff`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bench_report::{ms, quantile};
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::TokenRequest;

use crate::client::{Connection, Prepared};
use crate::cpu::Group;
use crate::origin::EchoOrigin;
use crate::workers::{Paths, Worker};

/// The section of BENCHMARKS.md this writes.
pub const HEADING: &str = "## Cold start under workerd";

/// The pause before the third request.
const SETTLE: Duration = Duration::from_secs(3);

/// One new gateway and one new pass-through.
struct Round {
    gateway_start_cpu: f64,
    passthrough_start_cpu: f64,
    first: Request,
    second: Request,
    settled: Request,
    passthrough_first: Request,
}

/// One request's client-side time and workerd CPU, in milliseconds.
#[derive(Clone, Copy)]
struct Request {
    latency: f64,
    cpu: f64,
}

/// Measures `rounds` cold starts and answers the section's markdown.
///
/// # Errors
///
/// A Worker that does not start or a request that is not answered 200.
pub fn run(command: &str, rounds: usize) -> Result<String, String> {
    crate::Mode::InspectorOff.apply();
    let paths = Paths::discover()?;
    Stack::check_prerequisites().map_err(|e| e.to_string())?;
    let wasm = paths.root.join("worker/build/index_bg.wasm");
    let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
    let origin = EchoOrigin::start()?;
    let mut measured = Vec::new();
    for round in 1..=rounds {
        println!("==> cold start: round {round} of {rounds}");
        measured.push(one_round(&paths, &fixtures, &origin)?);
    }
    Ok(markdown(command, &wasm, &measured))
}

fn one_round(paths: &Paths, fixtures: &Fixtures, origin: &EchoOrigin) -> Result<Round, String> {
    let origin_url = origin.url();
    let config = StackConfig {
        startup_timeout: crate::STARTUP,
        ..StackConfig::new(crate::document(fixtures)?)
            .named("gateway-bench-cold")
            .with_var("ORIGIN_URL", &origin_url)
    };
    let stack = Stack::start(config).map_err(|e| format!("gateway stack: {e}"))?;
    let gateway = Group::of_wrangler_on(stack.addr().port())
        .ok_or("the gateway's workerd processes were not found")?;
    let gateway_start_cpu = cpu_ms(gateway)?;
    let mut passthrough = Worker::spawn(
        paths,
        "passthrough-cold",
        &paths.root.join("bench/js/passthrough.js"),
        &[("ORIGIN_URL", origin_url.as_str())],
    )?;
    passthrough.wait_ready(crate::STARTUP)?;
    let pass_group = passthrough
        .group()
        .ok_or("the pass-through's workerd processes were not found")?;
    // Its readiness probe already reached it: its start is measured up to here, and its
    // "first" request is its first to the origin.
    let passthrough_start_cpu = cpu_ms(pass_group)?;

    let token = stack
        .emulator()
        .mint(&TokenRequest::v2(crate::USER))
        .map_err(|e| e.to_string())?;
    let authorization = format!("Bearer {token}");
    let headers = [("Authorization", authorization.as_str()), ("Accept", "*/*")];
    let first = timed(stack.addr(), &headers, gateway)?;
    let second = timed(stack.addr(), &headers, gateway)?;
    // V8 compiles the hot functions again, optimized, in the background after their first
    // runs: a request after a pause shows the isolate once that is done.
    std::thread::sleep(SETTLE);
    let settled = timed(stack.addr(), &headers, gateway)?;
    let passthrough_first = timed(passthrough.addr, &headers, pass_group)?;
    Ok(Round {
        gateway_start_cpu,
        passthrough_start_cpu,
        first,
        second,
        settled,
        passthrough_first,
    })
}

/// One request on a new connection, which must be answered 200.
fn timed(addr: SocketAddr, headers: &[(&str, &str)], group: Group) -> Result<Request, String> {
    let request = Prepared::get(addr, crate::APP_PATH, headers);
    let before = cpu_ms(group)?;
    let started = Instant::now();
    let answer = Connection::new(addr).send(&request)?;
    let latency = ms(started.elapsed());
    if answer.status != 200 {
        return Err(format!("{addr} answered {} instead of 200", answer.status));
    }
    // The log line and the proxy's bookkeeping may finish after the answer.
    std::thread::sleep(Duration::from_millis(200));
    let cpu = cpu_ms(group)? - before;
    Ok(Request { latency, cpu })
}

fn cpu_ms(group: Group) -> Result<f64, String> {
    let nanos = group
        .workerd_cpu_ns()
        .ok_or("workerd CPU time cannot be read here (Linux /proc)")?;
    #[expect(
        clippy::cast_precision_loss,
        reason = "CPU nanoseconds of one run stay far below 2^52"
    )]
    Ok(nanos as f64 / 1e6)
}

fn markdown(command: &str, wasm: &std::path::Path, rounds: &[Round]) -> String {
    let column = |pick: &dyn Fn(&Round) -> f64| {
        let mut values: Vec<f64> = rounds.iter().map(pick).collect();
        values.sort_by(f64::total_cmp);
        (
            quantile(&values, 0.5),
            values.last().copied().unwrap_or(f64::NAN),
        )
    };
    let row = |label: &str, pick: &dyn Fn(&Round) -> f64| {
        let (median, max) = column(pick);
        format!("| {label} | {median:.1} ms | {max:.1} ms |\n")
    };
    let size = std::fs::metadata(wasm).map_or(0, |meta| meta.len());
    #[expect(
        clippy::cast_precision_loss,
        reason = "a module's size stays far below 2^52"
    )]
    let kib = size as f64 / 1024.0;
    let mut out = format!(
        "{HEADING}\n\nCommand: `{command}` (`bench/gateway/src/cold.rs`). Run on {}, {} rounds; each \
         round starts a new gateway and a new pass-through JS Worker under `wrangler dev` \
         (inspector proxy off), each in a new workerd, in front of the benchmark's echo \
         origin. Times are from the client on a new connection; CPU is the Worker's workerd \
         processes' (wrangler's proxy Worker included, wrangler's Node not) from just before \
         the request to 200 ms after its answer, so it includes what workerd does in the \
         background meanwhile. Median and worst round. The gateway's module: `worker/build/index_bg.wasm`, {kib:.1} KiB; \
         starting a Worker compiles it, within the platform's 1 s startup limit.\n\n\
         | cold start | median | worst |\n|---|---:|---:|\n",
        bench_report::utc_now(),
        rounds.len(),
    );
    out.push_str(&row(
        "workerd CPU to start the gateway (until it answers)",
        &|r| r.gateway_start_cpu,
    ));
    out.push_str(&row("workerd CPU to start the pass-through", &|r| {
        r.passthrough_start_cpu
    }));
    out.push_str(&row("gateway's first request: latency", &|r| {
        r.first.latency
    }));
    out.push_str(&row("gateway's first request: workerd CPU", &|r| {
        r.first.cpu
    }));
    out.push_str(&row("gateway's second request: latency", &|r| {
        r.second.latency
    }));
    out.push_str(&row("gateway's second request: workerd CPU", &|r| {
        r.second.cpu
    }));
    out.push_str(&row("gateway's request after a 3 s pause: latency", &|r| {
        r.settled.latency
    }));
    out.push_str(&row(
        "gateway's request after a 3 s pause: workerd CPU",
        &|r| r.settled.cpu,
    ));
    out.push_str(&row("pass-through's first request: latency", &|r| {
        r.passthrough_first.latency
    }));
    out.push_str(&row("pass-through's first request: workerd CPU", &|r| {
        r.passthrough_first.cpu
    }));
    let (first_cpu, _) = column(&|r| r.first.cpu - r.settled.cpu);
    let (start_cpu, _) = column(&|r| r.gateway_start_cpu - r.passthrough_start_cpu);
    out.push_str(&format!(
        "\nMedians over {} rounds: starting the gateway takes {start_cpu:.1} ms more workerd \
         CPU than starting the pass-through (compiling and instantiating the module), and \
         its first request {first_cpu:.1} ms more than a settled one (compiling the \
         configuration, fetching Entra's keys from the emulator and importing them, each \
         code path's first run, and V8 compiling the hot functions again in the \
         background, which is not the request's own CPU time but shows in this count). \
         The free plan allows 10 ms CPU per request.\n",
        rounds.len()
    ));
    out
}

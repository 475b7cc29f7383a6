//! `gateway-bench`: the gateway measured under workerd, side by side in one run, on 127.0.0.1.
//!
//! 1. RS256 verification inside workerd: WebCrypto from Rust (the gateway's way), pure-Rust
//!    RSA compiled to Wasm (`edge-access-token`'s `RsaVerifier`, and the `rsa` crate with
//!    the key prepared once), and raw WebCrypto from a plain JS Worker, each verifying one
//!    fixed token N times per request, timed from the client as (n = N) − (n = 0), with the
//!    workerd CPU time of the same difference and the Worker's own clocks.
//! 2. An allowed bearer request through the gateway against a pass-through JS Worker in
//!    front of the same origin (and the origin alone): sequential latency and
//!    fixed-concurrency throughput, with the CPU time of each Worker's workerd processes;
//!    twice, with wrangler's DevTools inspector proxy off and with wrangler's defaults
//!    ([`Mode`]).
//!    The same request with a browser session instead (the `CF_Authorization` cookie from one
//!    sign-in over HTTP, [`session`]) goes to a second gateway stack of its own, so its
//!    workerd CPU is counted apart from the bearer requests', interleaved with the others;
//!    and the sign-in round trip (login → authorize page → form post → callback → first
//!    page) is timed a few times.
//! 3. The gzip size of the gateway's Wasm and of the bench Worker's.
//!
//! Prints the results and, with `--write FILE`, puts them in FILE's "## Gateway under
//! workerd" section. Needs `cargo xtask build-worker`, the bench Worker built with
//! worker-build (`cargo xtask bench` does both) and wrangler (`cargo xtask setup`). Takes
//! about two and a half minutes on two cores (`--quick`: about one).
//!
//! ```text
//! gateway-bench [--write FILE] [--command TEXT] [--quick]
//! gateway-bench --cold ROUNDS [--write FILE] [--command TEXT]
//! gateway-bench --phases ROUNDS [--entry FILE] [--write FILE] [--command TEXT]
//! ```
//!
//! `--cold ROUNDS` measures only cold starts ([`cold`]) and writes their own section.
//! `--phases ROUNDS` profiles a request's phases inside workerd ([`phases`]) with the
//! gateway's phase-profile build (`--entry`, default `target/phase-profile/build/index.js`).

mod client;
mod cold;
mod cpu;
mod measure;
mod origin;
mod phases;
mod report;
mod session;
mod workers;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::TokenRequest;
use serde_json::{json, Value};

use crate::client::{Connection, Prepared};
use crate::cpu::Group;
use crate::measure::{Target, Variant};
use crate::origin::EchoOrigin;
use crate::report::{Phase, Report, SignInResult, Size};
use crate::workers::{Paths, Worker};
use bench_report::{write_section, Environment};

/// How long a wrangler may take to answer (several start at once on two shared cores).
const STARTUP: Duration = Duration::from_secs(180);

/// The fixture user whose token every request carries: a direct member of Backend and Rust
/// guild, so the token lists five groups (Backend → Engineering → All staff, Rust guild ↔
/// Language guilds → All staff).
const USER: &str = "ada";

/// The path every gateway and pass-through request asks for.
const APP_PATH: &str = "/app/data?report=weekly";

/// How much to measure.
#[derive(Debug, Clone, Copy)]
struct Plan {
    verify_n: u32,
    verify_rounds: usize,
    verify_warmup: usize,
    sequential_warmup: usize,
    /// Sequential requests per target: with the inspector off, with wrangler's defaults.
    sequential: [usize; 2],
    concurrency: usize,
    load_per_round: usize,
    /// Throughput rounds per target: with the inspector off, with wrangler's defaults.
    load_rounds: [usize; 2],
    /// Timed sign-ins per phase (after one untimed warm-up sign-in).
    signin_rounds: usize,
}

const FULL: Plan = Plan {
    verify_n: 200,
    verify_rounds: 15,
    verify_warmup: 3,
    sequential_warmup: 200,
    sequential: [2000, 1000],
    concurrency: 8,
    load_per_round: 2000,
    load_rounds: [2, 1],
    signin_rounds: 7,
};

const QUICK: Plan = Plan {
    verify_n: 50,
    verify_rounds: 5,
    verify_warmup: 2,
    sequential_warmup: 50,
    sequential: [200, 100],
    concurrency: 8,
    load_per_round: 300,
    load_rounds: [1, 1],
    signin_rounds: 3,
};

struct Options {
    write: Option<PathBuf>,
    command: String,
    plan: Plan,
    /// `--cold ROUNDS`: cold starts only.
    cold: Option<usize>,
    /// `--phases ROUNDS`: the phase profile only.
    phases: Option<usize>,
    /// `--entry FILE`: the phase-profile build's `index.js`.
    entry: Option<PathBuf>,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let mut options = Options {
        write: None,
        command: "cargo xtask bench".into(),
        plan: FULL,
        cold: None,
        phases: None,
        entry: None,
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write" => {
                let file = args.next().ok_or("--write needs a file")?;
                options.write = Some(PathBuf::from(file));
            }
            "--command" => {
                options.command = args.next().ok_or("--command needs a text")?.clone();
            }
            "--quick" => options.plan = QUICK,
            "--cold" => {
                let rounds = args.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0);
                options.cold = Some(rounds.ok_or("--cold needs a number of rounds above 0")?);
            }
            "--phases" => {
                let rounds = args.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0);
                options.phases = Some(rounds.ok_or("--phases needs a number of rounds above 0")?);
            }
            "--entry" => {
                let file = args.next().ok_or("--entry needs a file")?;
                options.entry = Some(PathBuf::from(file));
            }
            other => {
                return Err(format!(
                    "unexpected argument `{other}`\n\
                     usage: gateway-bench [--write FILE] [--command TEXT] \
                     [--quick | --cold ROUNDS | --phases ROUNDS [--entry FILE]]"
                ))
            }
        }
    }
    Ok(options)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = parse(&args).and_then(|options| {
        if let Some(rounds) = options.phases {
            let entry = match &options.entry {
                Some(entry) => entry.clone(),
                None => Paths::discover()?
                    .target
                    .join("phase-profile/build/index.js"),
            };
            let markdown = phases::run(&options.command, rounds, &entry)?;
            println!("{markdown}");
            if let Some(file) = &options.write {
                write_section(file, phases::HEADING, &markdown)?;
                println!(
                    "wrote the \"{}\" section of {}",
                    phases::HEADING,
                    file.display()
                );
            }
            return Ok(());
        }
        if let Some(rounds) = options.cold {
            let markdown = cold::run(&options.command, rounds)?;
            println!("{markdown}");
            if let Some(file) = &options.write {
                write_section(file, cold::HEADING, &markdown)?;
                println!(
                    "wrote the \"{}\" section of {}",
                    cold::HEADING,
                    file.display()
                );
            }
            return Ok(());
        }
        let report = run(&options)?;
        println!("{}", report.markdown());
        if let Some(file) = &options.write {
            write_section(file, report::HEADING, &report.markdown())?;
            println!(
                "wrote the \"{}\" section of {}",
                report::HEADING,
                file.display()
            );
        }
        Ok(())
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            println!("gateway-bench: error: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The gateway's configuration: one app, one allow policy that includes a nested Entra
/// group (Engineering, which Ada reaches through Backend) and requires an email domain.
fn document(fixtures: &Fixtures) -> Result<Value, String> {
    let idp = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
    let engineering = fixtures
        .group_id("Engineering")
        .ok_or("the fixtures have no Engineering group")?;
    Ok(json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": idp, "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}",
                        "support_groups": true, "pkce_enabled": true } }],
        "apps": [{ "id": "app", "name": "Benchmarked app", "domain": "${WORKER_HOST}/app",
            "aud": "aud-app",
            "policies": [{ "name": "Engineering at example.com", "decision": "allow",
                "include": [{ "azureAD": { "id": engineering, "identity_provider_id": idp } }],
                "require": [{ "email_domain": { "domain": "example.com" } }] }] }],
        "directory": { "group_parents": fixtures.group_parents() }
    }))
}

/// How wrangler dev runs the Workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// wrangler's DevTools inspector proxy off and its request log quiet: what remains is
    /// workerd running the Workers, the closest to production `wrangler dev` gets.
    InspectorOff,
    /// `wrangler dev` as `cargo xtask dev` runs it: the inspector proxy relays every outbound
    /// `fetch` (with its response body) and every `console.log` to wrangler, and wrangler
    /// logs every request.
    Defaults,
}

impl Mode {
    /// Sets the environment every wrangler started from now on inherits (the gateway's is
    /// started by the tests' harness, which passes this process's environment on).
    ///
    /// wrangler 4.86 has no flag to turn its inspector proxy off; it skips the proxy when
    /// `VSCODE_INSPECTOR_OPTIONS` is set (it then assumes VS Code's JS debugger owns the
    /// inspector: `ProxyController.inspectorEnabled`). `WRANGLER_LOG=warn` stops the
    /// per-request log line that wrangler's proxy Worker posts to Node.
    fn apply(self) {
        // Only this thread touches the environment; the servers' threads never read it.
        match self {
            Mode::InspectorOff => {
                std::env::set_var("VSCODE_INSPECTOR_OPTIONS", "{}");
                std::env::set_var("WRANGLER_LOG", "warn");
            }
            Mode::Defaults => {
                std::env::remove_var("VSCODE_INSPECTOR_OPTIONS");
                std::env::remove_var("WRANGLER_LOG");
            }
        }
    }
}

fn run(options: &Options) -> Result<Report, String> {
    let plan = options.plan;
    let paths = Paths::discover()?;
    Stack::check_prerequisites().map_err(|e| e.to_string())?;
    let gateway_wasm = paths.root.join("worker/build/index_bg.wasm");
    let bench_wasm = paths.root.join("bench/verify-worker/build/index_bg.wasm");
    let mut environment =
        Environment::observe(&paths.root, &options.command, report::revision(&paths.root));
    let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
    let origin = EchoOrigin::start()?;

    let mut phases = Vec::new();
    let mut verification = Vec::new();
    let mut demo_origin_p50 = f64::NAN;
    for (index, mode) in [Mode::InspectorOff, Mode::Defaults].into_iter().enumerate() {
        mode.apply();
        let measured = phase(&paths, &fixtures, &origin, plan, mode, index)?;
        phases.push(measured.phase);
        if let Some(results) = measured.verification {
            verification = results;
        }
        if let Some(p50) = measured.demo_origin_p50 {
            demo_origin_p50 = p50;
        }
    }
    Mode::Defaults.apply();

    environment.finish();
    Ok(Report {
        environment,
        verify_n: plan.verify_n,
        verify_rounds: plan.verify_rounds,
        verification,
        demo_origin_p50,
        concurrency: plan.concurrency,
        load_per_round: plan.load_per_round,
        phases,
        sizes: vec![
            Size::of("gateway Worker", &gateway_wasm, &paths.root)?,
            Size::of("verify bench Worker", &bench_wasm, &paths.root)?,
        ],
    })
}

/// What one configuration of wrangler measured.
struct Measured {
    phase: Phase,
    verification: Option<Vec<measure::VerifyResult>>,
    demo_origin_p50: Option<f64>,
}

/// Starts the gateway stack and the pass-through (and, in the first phase, the verify
/// Workers) under `mode`, measures, and stops them all.
fn phase(
    paths: &Paths,
    fixtures: &Fixtures,
    origin: &EchoOrigin,
    plan: Plan,
    mode: Mode,
    index: usize,
) -> Result<Measured, String> {
    let first = index == 0;
    let sequential_count = plan.sequential.get(index).copied().unwrap_or(0);
    let load_rounds = plan.load_rounds.get(index).copied().unwrap_or(0);
    println!("==> {mode:?}: starting the gateway (with the Entra ID emulator)");
    let origin_url = origin.url();
    let config = |name: &str| -> Result<StackConfig, String> {
        Ok(StackConfig {
            startup_timeout: STARTUP,
            ..StackConfig::new(document(fixtures)?)
                .named(name)
                .with_var("ORIGIN_URL", &origin_url)
        })
    };
    // Two gateways: the bearer requests' and the cookie requests', so that each one's workerd
    // CPU is counted apart while the requests are interleaved.
    let [stack, cookie_stack] =
        start_stacks([config("gateway-bench")?, config("gateway-bench-cookie")?])?;
    let emulator = stack.emulator();
    let token = emulator
        .mint(&TokenRequest::v2(USER))
        .map_err(|e| e.to_string())?;
    let jwk = emulator
        .public_jwk(&emulator.signing_kid())
        .ok_or("the emulator publishes no signing key")?
        .to_string();

    println!("==> {mode:?}: starting the bench Workers");
    let bench_vars = [("BENCH_TOKEN", token.as_str()), ("BENCH_JWK", jwk.as_str())];
    let js = paths.root.join("bench/js");
    let mut passthrough = Worker::spawn(
        paths,
        "passthrough",
        &js.join("passthrough.js"),
        &[("ORIGIN_URL", origin_url.as_str())],
    )?;
    let mut verifiers = Vec::new();
    if first {
        verifiers.push(Worker::spawn(
            paths,
            "webcrypto-js",
            &js.join("webcrypto.js"),
            &bench_vars,
        )?);
        verifiers.push(Worker::spawn(
            paths,
            "verify-worker",
            &paths.root.join("bench/verify-worker/build/index.js"),
            &bench_vars,
        )?);
    }
    passthrough.wait_ready(STARTUP)?;
    for worker in &mut verifiers {
        worker.wait_ready(STARTUP)?;
    }

    let authorization = format!("Bearer {token}");
    let headers = [("Authorization", authorization.as_str()), ("Accept", "*/*")];
    println!(
        "==> {mode:?}: signing {USER} in to the cookie gateway, 1 + {} times",
        plan.signin_rounds
    );
    let cold = session::sign_in(&cookie_stack, APP_PATH, USER)?;
    let mut signin_rounds = Vec::new();
    let mut cookie = cold.cookie.clone();
    for _ in 0..plan.signin_rounds {
        let signed = session::sign_in(&cookie_stack, APP_PATH, USER)?;
        signin_rounds.push(signed.timing);
        cookie = signed.cookie;
    }
    let cookie_header = format!("{}={cookie}", session::COOKIE);
    let cookie_headers = [("Cookie", cookie_header.as_str()), ("Accept", "*/*")];
    let cookie_target = Target {
        label: "gateway, session cookie",
        request: Prepared::get(cookie_stack.addr(), APP_PATH, &cookie_headers),
        group: Group::of_wrangler_on(cookie_stack.addr().port()),
    };
    check_cookie(&cookie_target)?;

    let gateway = Target {
        label: "gateway, bearer token",
        request: Prepared::get(stack.addr(), APP_PATH, &headers),
        group: Group::of_wrangler_on(stack.addr().port()),
    };
    let pass = Target {
        label: "pass-through JS Worker",
        request: Prepared::get(passthrough.addr, APP_PATH, &headers),
        group: passthrough.group(),
    };
    let direct = Target {
        label: "origin alone, no Worker",
        request: Prepared::get(origin.addr(), APP_PATH, &headers),
        group: None,
    };
    check_gateway(&gateway, &pass, stack.addr())?;

    let demo_origin_p50 = if first {
        let demo = Target {
            label: "tests' demo origin",
            request: Prepared::get(stack.origin().addr(), APP_PATH, &headers),
            group: None,
        };
        // Informative only: a failure here does not stop the benchmark.
        match measure::sequential(&[demo], 3, 10) {
            Ok(results) => results.first().map(|result| result.latency.p50),
            Err(error) => {
                println!("    the tests' demo origin was not measured: {error}");
                None
            }
        }
    } else {
        None
    };

    let verification = match verifiers.as_slice() {
        [raw, verify] => {
            println!(
                "==> {mode:?}: RS256 verification, n = {} per request, {} rounds",
                plan.verify_n, plan.verify_rounds
            );
            let variant = |label, worker: &Worker, path| Variant {
                label,
                addr: worker.addr,
                path,
                group: worker.group(),
            };
            let variants = [
                variant("raw WebCrypto, plain JS Worker", raw, "/webcrypto"),
                variant(
                    "WebCrypto from Rust/Wasm (the gateway's way)",
                    verify,
                    "/webcrypto",
                ),
                variant("pure-Rust RsaVerifier (rsa crate) in Wasm", verify, "/rust"),
                variant(
                    "rsa crate in Wasm, key prepared once",
                    verify,
                    "/rust-prepared",
                ),
            ];
            Some(measure::verification(
                &variants,
                plan.verify_n,
                plan.verify_rounds,
                plan.verify_warmup,
            )?)
        }
        _ => None,
    };
    // The verify Workers are idle from here on; stop them so they take no CPU.
    drop(verifiers);

    println!("==> {mode:?}: sequential latency, {sequential_count} requests per target");
    let targets = [direct, pass, gateway, cookie_target];
    let sequential = measure::sequential(&targets, plan.sequential_warmup, sequential_count)?;
    println!(
        "==> {mode:?}: throughput, {} connections, {load_rounds} round(s) of {} requests per target",
        plan.concurrency, plan.load_per_round
    );
    let load = measure::load(&targets, plan.concurrency, plan.load_per_round, load_rounds)?;
    Ok(Measured {
        phase: Phase {
            mode,
            sequential,
            load,
            sign_in: SignInResult {
                first: cold.timing,
                rounds: signin_rounds,
            },
        },
        verification,
        demo_origin_p50,
    })
}

/// Starts a stack per configuration, side by side (each in its own workerd, so that each one's
/// CPU is counted apart).
///
/// # Errors
///
/// The first stack that does not start.
pub fn start_stacks<const N: usize>(configs: [StackConfig; N]) -> Result<[Stack; N], String> {
    let started: Vec<Result<Stack, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = configs
            .into_iter()
            .map(|config| {
                let name = config.name.clone();
                scope.spawn(move || {
                    Stack::start(config).map_err(|e| format!("gateway stack {name}: {e}"))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a gateway stack's start panicked".to_owned()))
            })
            .collect()
    });
    let stacks = started
        .into_iter()
        .collect::<Result<Vec<Stack>, String>>()?;
    stacks
        .try_into()
        .map_err(|_| "not every gateway stack started".to_owned())
}

/// The cookie gateway allows the request with the session cookie and forwards its
/// application token.
fn check_cookie(target: &Target) -> Result<(), String> {
    let answer = Connection::new(target.request.addr)
        .send(&target.request)
        .map_err(|e| format!("{}: {e}", target.label))?;
    let echo: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let headers = echo.get("headers");
    let email = headers
        .and_then(|headers| headers.get("cf-access-authenticated-user-email"))
        .and_then(Value::as_str);
    let assertion = headers.and_then(|headers| headers.get("cf-access-jwt-assertion"));
    if answer.status != 200 || email != Some("ada@example.com") || assertion.is_none() {
        return Err(format!(
            "the gateway did not allow the session-cookie request: HTTP {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    Ok(())
}

/// The gateway allows the request (and tells the origin who asked), refuses it without a
/// token, and the pass-through reaches the same origin.
fn check_gateway(
    gateway: &Target,
    pass: &Target,
    addr: std::net::SocketAddr,
) -> Result<(), String> {
    let mut connection = Connection::new(gateway.request.addr);
    let answer = connection
        .send(&gateway.request)
        .map_err(|e| format!("{}: {e}", gateway.label))?;
    let echo: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    let email = echo
        .get("headers")
        .and_then(|headers| headers.get("cf-access-authenticated-user-email"))
        .and_then(Value::as_str);
    if answer.status != 200 || email != Some("ada@example.com") {
        return Err(format!(
            "the gateway did not allow the benchmark request: HTTP {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    let anonymous = connection
        .send(&Prepared::get(addr, APP_PATH, &[]))
        .map_err(|e| format!("{}: {e}", gateway.label))?;
    if anonymous.status != 401 {
        return Err(format!(
            "the gateway answered HTTP {} to a request without a token",
            anonymous.status
        ));
    }
    let answer = Connection::new(pass.request.addr)
        .send(&pass.request)
        .map_err(|e| format!("{}: {e}", pass.label))?;
    let echo: Value = serde_json::from_slice(&answer.body).unwrap_or(Value::Null);
    if answer.status != 200 || echo.get("path").and_then(Value::as_str) != Some(APP_PATH) {
        return Err(format!(
            "the pass-through Worker did not reach the origin: HTTP {} {}",
            answer.status,
            String::from_utf8_lossy(&answer.body)
        ));
    }
    Ok(())
}

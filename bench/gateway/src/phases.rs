//! Where an allowed request's CPU goes inside workerd (`gateway-bench --phases ROUNDS`).
//!
//! The gateway's phase-profile build (`worker` with the `phase-profile` feature, which
//! `cargo xtask bench gateway` builds into `target/phase-profile/build`) answers a request
//! carrying `X-Edge-Access-Profile: MS` with each phase of its handling run again and again
//! for `MS` milliseconds of the isolate's clock (`worker/src/profile.rs`). The benchmark asks
//! that of the bearer request and of the session-cookie request of the gateway benchmark,
//! `ROUNDS` times each, and takes the median per phase; then, in the same run, it times the
//! same two requests without the header against the pass-through JS Worker (workerd CPU per
//! request, inspector proxy off), so that the phases can be set against what a whole request
//! costs more than the pass-through.

use std::path::{Path, PathBuf};

use bench_report::quantile;
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::TokenRequest;
use serde_json::Value;

use crate::client::{Connection, Prepared};
use crate::cpu::Group;
use crate::measure::{self, RunResult, Target};
use crate::origin::EchoOrigin;
use crate::session;
use crate::workers::{Paths, Worker};

/// The section of BENCHMARKS.md this writes.
pub const HEADING: &str = "## Where an allowed request's CPU goes inside workerd";

/// The header that asks the profile build for a profile.
const HEADER: &str = "X-Edge-Access-Profile";

/// Milliseconds of the isolate's clock per phase and round.
const BUDGET_MS: u32 = 300;

/// Requests per target for the whole-request comparison.
const SEQUENTIAL: usize = 1000;

/// The phases, in the order a request meets them, and what each one is. `part` phases are
/// inside an earlier one and not added to the sum; `whole` ones are not phases of their own.
const PHASES: &[(&str, &str, Kind)] = &[
    ("clock", "reading the isolate's clock (in every phase below; subtracted)", Kind::Floor),
    ("endpoints", "the route table reads `ACCESS_PATH_PREFIX`", Kind::Step),
    ("config", "the configuration held by the isolate (a clock comparison)", Kind::Step),
    ("context", "request → context: URL, IP, country, mTLS, request id", Kind::Step),
    ("route", "the target parsed and routed to its app", Kind::Step),
    ("service_token", "service-token headers looked for", Kind::Step),
    ("bearer_token", "credential: the Entra token, verified before by this isolate (the same token again: its verification still holds)", Kind::Step),
    ("bearer_token_unverified", "(the same token seen for the first time: parsed, its key found, verified (RS256), mapped to an identity)", Kind::Part),
    ("rs256_webcrypto", "… of which the WebCrypto verification from Rust", Kind::Part),
    ("rs256_webcrypto_js", "(the same verification looped in JS in this Worker: raw WebCrypto)", Kind::Part),
    ("deprovisioned", "SCIM deprovisioning check (off in this configuration)", Kind::Step),
    ("session_cookie", "credential: the session cookie verified (RS256), its session read from D1, its identity parsed", Kind::Step),
    ("cookie_verify", "… of which the cookie's verification (WebCrypto)", Kind::Part),
    ("session_row", "… of which the D1 read (revocation, session and identity in one query)", Kind::Part),
    ("d1_select_1", "(a D1 read of `SELECT 1`: the binding's floor)", Kind::Part),
    ("identity_json", "… of which the stored identity's JSON", Kind::Part),
    ("engine", "the engine for the identity (no SCIM here: the configuration's)", Kind::Step),
    ("decide", "decision, with its steps recorded", Kind::Step),
    ("assertion", "`Cf-Access-Jwt-Assertion` for a bearer request (reused from the isolate's cache)", Kind::Step),
    ("proxy_setup", "the origin request built: headers cleaned and set, URL checked", Kind::Step),
    ("log_line", "the decision log line's JSON (not its `console.log`)", Kind::Step),
    ("whole_decision", "everything before the fetch, in one piece (`gate::decide`)", Kind::Whole),
    ("origin_fetch", "the origin request built, sent and its body read (wall clock: the origin's time included)", Kind::Whole),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Floor,
    Step,
    Part,
    Whole,
}

/// One credential's profile: median µs per phase (clock floor subtracted), by name.
struct Profile {
    phases: Vec<(String, f64, u64)>,
}

impl Profile {
    fn get(&self, name: &str) -> Option<(f64, u64)> {
        self.phases
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, us, iterations)| (*us, *iterations))
    }
}

/// Measures and answers the section's markdown.
///
/// # Errors
///
/// A Worker that does not start, a profile that does not come back, a request not answered 200.
pub fn run(command: &str, rounds: usize, entry: &Path) -> Result<String, String> {
    crate::Mode::InspectorOff.apply();
    let paths = Paths::discover()?;
    Stack::check_prerequisites().map_err(|e| e.to_string())?;
    if !entry.is_file() {
        return Err(format!(
            "{} is missing: build the phase-profile worker first (cargo xtask bench gateway)",
            entry.display()
        ));
    }
    let fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
    let origin = EchoOrigin::start()?;
    let origin_url = origin.url();
    let config = |name: &str| -> Result<StackConfig, String> {
        Ok(StackConfig {
            startup_timeout: crate::STARTUP,
            worker_entry: Some(entry.to_path_buf()),
            ..StackConfig::new(crate::document(&fixtures)?)
                .named(name)
                .with_var("ORIGIN_URL", &origin_url)
        })
    };
    println!("==> phases: starting two profile gateways and the pass-through");
    let [stack, cookie_stack, forward_stack, verified_stack, decided_stack] =
        crate::start_stacks([
            config("gateway-phases")?,
            config("gateway-phases-cookie")?,
            config("gateway-phases-forward")?,
            config("gateway-phases-verified")?,
            config("gateway-phases-decided")?,
        ])?;
    let mut passthrough = Worker::spawn(
        &paths,
        "passthrough-phases",
        &paths.root.join("bench/js/passthrough.js"),
        &[("ORIGIN_URL", origin_url.as_str())],
    )?;
    // The same pass-through as a Rust Worker (`bench/verify-worker`), twice: plain, and
    // writing one log line the size of the gateway's decision line — each in its own
    // workerd, so that their CPU is counted apart.
    let rust_entry = paths.root.join("bench/verify-worker/build/index.js");
    let origin_var = [("ORIGIN_URL", origin_url.as_str())];
    let mut rust = Worker::spawn(&paths, "passthrough-rust", &rust_entry, &origin_var)?;
    let mut rust_log = Worker::spawn(&paths, "passthrough-rust-log", &rust_entry, &origin_var)?;
    passthrough.wait_ready(crate::STARTUP)?;
    rust.wait_ready(crate::STARTUP)?;
    rust_log.wait_ready(crate::STARTUP)?;

    let token = stack
        .emulator()
        .mint(&TokenRequest::v2(crate::USER))
        .map_err(|e| e.to_string())?;
    let authorization = format!("Bearer {token}");
    let bearer_headers = [("Authorization", authorization.as_str()), ("Accept", "*/*")];
    let signed = session::sign_in(&cookie_stack, crate::APP_PATH, crate::USER)?;
    let cookie_header = format!("{}={}", session::COOKIE, signed.cookie);
    let cookie_headers = [("Cookie", cookie_header.as_str()), ("Accept", "*/*")];
    let mut log_headers = bearer_headers.to_vec();
    log_headers.push(("X-Bench-Log", "1"));
    // Each stack has an emulator of its own, whose tokens only that stack accepts.
    let bearer_of = |stack: &Stack| -> Result<String, String> {
        let token = stack
            .emulator()
            .mint(&TokenRequest::v2(crate::USER))
            .map_err(|e| e.to_string())?;
        Ok(format!("Bearer {token}"))
    };
    let (verified_bearer, decided_bearer) =
        (bearer_of(&verified_stack)?, bearer_of(&decided_stack)?);
    fn with<'a>(authorization: &'a str, value: &'a str) -> Vec<(&'a str, &'a str)> {
        vec![
            ("Authorization", authorization),
            ("Accept", "*/*"),
            (HEADER, value),
        ]
    }
    let forward_headers = with(&authorization, "forward");
    let verified_headers = with(&verified_bearer, "forward-verified");
    let decided_headers = with(&decided_bearer, "forward-decided");

    let targets = [
        Target {
            label: "pass-through JS Worker",
            request: Prepared::get(passthrough.addr, crate::APP_PATH, &bearer_headers),
            group: passthrough.group(),
        },
        Target {
            label: "pass-through Rust Worker",
            request: Prepared::get(rust.addr, crate::APP_PATH, &bearer_headers),
            group: rust.group(),
        },
        Target {
            label: "pass-through Rust Worker, one log line",
            request: Prepared::get(rust_log.addr, crate::APP_PATH, &log_headers),
            group: rust_log.group(),
        },
        Target {
            label: "gateway module, forwarding without a decision",
            request: Prepared::get(forward_stack.addr(), crate::APP_PATH, &forward_headers),
            group: Group::of_wrangler_on(forward_stack.addr().port()),
        },
        Target {
            label: "gateway module, bearer token checked, forwarding",
            request: Prepared::get(verified_stack.addr(), crate::APP_PATH, &verified_headers),
            group: Group::of_wrangler_on(verified_stack.addr().port()),
        },
        Target {
            label: "gateway, bearer token, no log line",
            request: Prepared::get(decided_stack.addr(), crate::APP_PATH, &decided_headers),
            group: Group::of_wrangler_on(decided_stack.addr().port()),
        },
        Target {
            label: "gateway, bearer token",
            request: Prepared::get(stack.addr(), crate::APP_PATH, &bearer_headers),
            group: Group::of_wrangler_on(stack.addr().port()),
        },
        Target {
            label: "gateway, session cookie",
            request: Prepared::get(cookie_stack.addr(), crate::APP_PATH, &cookie_headers),
            group: Group::of_wrangler_on(cookie_stack.addr().port()),
        },
    ];
    println!("==> phases: {SEQUENTIAL} sequential requests per target");
    let whole = measure::sequential(&targets, 100, SEQUENTIAL)?;

    let budget = BUDGET_MS.to_string();
    let mut bearer = Vec::new();
    let mut cookie = Vec::new();
    for round in 1..=rounds {
        println!("==> phases: round {round} of {rounds}");
        let mut with_header = bearer_headers.to_vec();
        with_header.push((HEADER, budget.as_str()));
        bearer.push(profile(stack.addr(), &with_header, "bearer")?);
        let mut with_header = cookie_headers.to_vec();
        with_header.push((HEADER, budget.as_str()));
        cookie.push(profile(cookie_stack.addr(), &with_header, "cookie")?);
    }
    Ok(markdown(
        command,
        rounds,
        &median(&bearer),
        &median(&cookie),
        &whole,
        entry,
    ))
}

/// One profile: µs per iteration by phase, and iterations.
fn profile(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
    credential: &str,
) -> Result<Vec<(String, f64, u64)>, String> {
    let answer = Connection::new(addr).send(&Prepared::get(addr, crate::APP_PATH, headers))?;
    let body: Value = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("the profile is not JSON ({e}): HTTP {}", answer.status))?;
    if answer.status != 200 {
        return Err(format!(
            "the profile answered HTTP {}: {body}",
            answer.status
        ));
    }
    if let Some(error) = body.get("error").and_then(Value::as_str) {
        return Err(format!("the {credential} profile stopped: {error}"));
    }
    if body.get("credential").and_then(Value::as_str) != Some(credential) {
        return Err(format!(
            "the profile did not see a {credential} credential: {body}"
        ));
    }
    let phases = body
        .get("phases")
        .and_then(Value::as_array)
        .ok_or("the profile has no phases")?;
    let mut out = Vec::new();
    for phase in phases {
        let name = phase.get("phase").and_then(Value::as_str).unwrap_or("?");
        if let Some(error) = phase.get("error").and_then(Value::as_str) {
            return Err(format!("phase {name}: {error}"));
        }
        let us = phase
            .get("us_per_iteration")
            .and_then(Value::as_f64)
            .ok_or_else(|| format!("phase {name} has no time"))?;
        let iterations = phase.get("iterations").and_then(Value::as_u64).unwrap_or(0);
        out.push((name.to_owned(), us, iterations));
    }
    Ok(out)
}

/// The median per phase over rounds, the clock floor subtracted from every other phase.
fn median(rounds: &[Vec<(String, f64, u64)>]) -> Profile {
    let mut phases = Vec::new();
    let Some(first) = rounds.first() else {
        return Profile { phases };
    };
    let pick = |name: &str| -> (f64, u64) {
        let mut values: Vec<f64> = rounds
            .iter()
            .filter_map(|round| round.iter().find(|(n, _, _)| n == name))
            .map(|(_, us, _)| *us)
            .collect();
        values.sort_by(f64::total_cmp);
        let iterations = rounds
            .iter()
            .filter_map(|round| round.iter().find(|(n, _, _)| n == name))
            .map(|(_, _, i)| *i)
            .min()
            .unwrap_or(0);
        (quantile(&values, 0.5), iterations)
    };
    let (floor, _) = pick("clock");
    for (name, _, _) in first {
        let (us, iterations) = pick(name);
        let net = if name == "clock" {
            us
        } else {
            (us - floor).max(0.0)
        };
        phases.push((name.clone(), net, iterations));
    }
    Profile { phases }
}

fn markdown(
    command: &str,
    rounds: usize,
    bearer: &Profile,
    cookie: &Profile,
    whole: &[RunResult],
    entry: &Path,
) -> String {
    let cell = |profile: &Profile, name: &str| match profile.get(name) {
        Some((us, _)) if us >= 100.0 => format!("{us:.0} µs"),
        Some((us, _)) => format!("{us:.2} µs"),
        None => "—".to_owned(),
    };
    let mut out = format!(
        "{HEADING}\n\nCommand: `{command}` (`bench/gateway/src/phases.rs`, the gateway built \
         with the `phase-profile` feature into `{}`; `worker/src/profile.rs`). Run on {}: \
         the gateway benchmark's configuration and requests, inspector proxy off. Each phase \
         of the request runs again and again inside the Worker for {BUDGET_MS} ms of the \
         isolate's clock (which advances in whole milliseconds locally), median of {rounds} \
         rounds; the clock's own cost is subtracted. Repeating a phase warms what a steady \
         stream of one client's requests warms too (the key cache, the minted-assertion \
         cache, V8's code), so these are the settled costs. The D1 phases include SQLite's \
         own work: locally D1 runs inside the same workerd, on the platform it is a remote \
         call whose waiting is not the Worker's CPU.\n\n\
         | phase | bearer request | cookie request | what it is |\n|---|---:|---:|---|\n",
        display(entry),
        bench_report::utc_now(),
    );
    let mut sums = (0.0, 0.0);
    for (name, what, kind) in PHASES {
        let (b, c) = (bearer.get(name), cookie.get(name));
        if b.is_none() && c.is_none() {
            continue;
        }
        if *kind == Kind::Step {
            sums.0 += b.map_or(0.0, |(us, _)| us);
            sums.1 += c.map_or(0.0, |(us, _)| us);
        }
        let label = match kind {
            Kind::Part | Kind::Floor => format!("`{name}`"),
            Kind::Step => format!("**`{name}`**"),
            Kind::Whole => format!("*`{name}`*"),
        };
        out.push_str(&format!(
            "| {label} | {} | {} | {what} |\n",
            cell(bearer, name),
            cell(cookie, name)
        ));
    }
    out.push_str(&format!(
        "| sum of the bold phases | {:.0} µs | {:.0} µs | |\n",
        sums.0, sums.1
    ));
    if let (Some((rust, _)), Some((js, _))) = (
        bearer.get("rs256_webcrypto"),
        bearer.get("rs256_webcrypto_js"),
    ) {
        out.push_str(&format!(
            "\nRS256 in the same Worker, same key and token: {rust:.1} µs per verification \
             through the gateway's verifier (Rust → WebCrypto, awaited as a `JsFuture`) \
             against {js:.1} µs looped in JS: **{:.2}×** raw WebCrypto.\n",
            rust / js
        ));
    }
    out.push_str(&format!(
        "\nThe same requests whole, in the same run ({SEQUENTIAL} each, sequential, one \
         keep-alive connection per target, interleaved, without the header), beside a \
         pass-through Worker in JS (`bench/js/passthrough.js`) and the same pass-through in \
         Rust (`bench/verify-worker`: workers-rs, wasm-bindgen, one `Fetch`), plain and \
         with one `console.log` of a decision-sized line; workerd CPU of each Worker's own \
         workerd processes:\n\n\
         | Worker | p50 | p99 | workerd CPU per request | above the JS pass-through |\n\
         |---|---:|---:|---:|---:|\n"
    ));
    let cpu = |label: &str| {
        whole
            .iter()
            .find(|r| r.label == label)
            .and_then(|r| r.cpu_per_request_us)
    };
    let js = cpu("pass-through JS Worker");
    for result in whole {
        let above = match (result.cpu_per_request_us, js) {
            (Some(cpu), Some(js)) if result.label != "pass-through JS Worker" => {
                format!("{:.0} µs", cpu - js)
            }
            _ => "—".to_owned(),
        };
        out.push_str(&format!(
            "| {} | {:.3} ms | {:.3} ms | {} | {above} |\n",
            result.label,
            result.latency.p50,
            result.latency.p99,
            result
                .cpu_per_request_us
                .map_or_else(|| "—".to_owned(), |cpu| format!("{cpu:.0} µs")),
        ));
    }
    let step = |from: &str, to: &str| match (cpu(from), cpu(to)) {
        (Some(from), Some(to)) => format!("{:.0} µs", to - from),
        _ => "—".to_owned(),
    };
    out.push_str(&format!(
        "\nReading it, step by step (workerd CPU per request, each step against the one \
         before): being a Rust Worker at all (the Rust pass-through against the JS one: the \
         module's entry and exit, the request and response crossing wasm-bindgen, the \
         handler's future) {}; one `console.log` of a decision-sized line {}; the \
         gateway's own module forwarding without deciding or logging \
         (`X-Edge-Access-Profile: forward`: its route table, configuration and origin \
         request) {} against the Rust pass-through; checking the bearer token before \
         forwarding (`forward-verified`) {} more; deciding as the gate does, without the \
         log line (`forward-decided`) {} more; the log line {} more. The cookie request \
         costs {} more than the bearer request; its D1 read alone is {} in the profile, \
         nearly all of it the binding's floor (`SELECT 1`: {}). In the profile the bold \
         phases add up to {:.0} µs (bearer): what a phase costs once per request, among \
         everything else the request does, is several times what it costs repeated in a \
         loop.\n",
        step("pass-through JS Worker", "pass-through Rust Worker"),
        step(
            "pass-through Rust Worker",
            "pass-through Rust Worker, one log line"
        ),
        step(
            "pass-through Rust Worker",
            "gateway module, forwarding without a decision"
        ),
        step(
            "gateway module, forwarding without a decision",
            "gateway module, bearer token checked, forwarding"
        ),
        step(
            "gateway module, bearer token checked, forwarding",
            "gateway, bearer token, no log line"
        ),
        step(
            "gateway, bearer token, no log line",
            "gateway, bearer token"
        ),
        step("gateway, bearer token", "gateway, session cookie"),
        cell(cookie, "session_row"),
        cell(cookie, "d1_select_1"),
        sums.0,
    ));
    out
}

fn display(path: &Path) -> String {
    let root: PathBuf = bench_report::repository_root().unwrap_or_default();
    path.strip_prefix(&root)
        .unwrap_or(path)
        .display()
        .to_string()
}

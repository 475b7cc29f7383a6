//! `config-change-bench`: how soon a configuration written through the gateway's management
//! API decides requests, and what checking for a new version costs each request, under
//! workerd (`wrangler dev --local`, D1 in workerd's local SQLite) on 127.0.0.1.
//!
//! Two stacks, each on a fresh D1: the default `CONFIG_REFRESH_SECONDS` (10), and `0` (the
//! active version read on every request, what the design avoids). On each:
//!
//! 1. **steady**: `--requests` sequential requests to an app that lets anyone through, on one
//!    keep-alive connection; their latency, and the reads of the active version
//!    (`config_check` log lines, one per D1 read of `config_active`) during them;
//! 2. **change**: `--writes` times, a new version naming a new app path is written (`PUT
//!    /cdn-cgi/access/api/config`) and that path polled every 10 ms until it answers 200: the
//!    time from sending the write to the first request decided by the new version (no earlier
//!    version has that app).
//!
//! ```text
//! config-change-bench [--requests N] [--writes N] [--write FILE] [--command TEXT] [--quick]
//! ```
//!
//! `--write FILE` puts the results in FILE's "## Configuration changes under workerd"
//! section. Needs wrangler (`cargo xtask setup`) and the worker's release build (`cargo
//! xtask build-worker`).

#![expect(
    clippy::print_stderr,
    reason = "a command-line tool reports progress and errors on stderr"
)]

use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bench_report::{
    commit_and_changes, count_f64, parse_args, positive, quantile, repository_root, section_main,
    sorted_ms, utc, Common, Environment,
};
use edge_access_tests::stack::{Stack, StackConfig};
use entra_emulator::client::HttpClient;
use serde_json::{json, Value};

/// The section this benchmark owns in BENCHMARKS.md.
const HEADING: &str = "## Configuration changes under workerd";

const USAGE: &str = "usage: config-change-bench [--requests N] [--writes N] [--write FILE] \
                     [--command TEXT] [--quick]";

/// How long a wrangler may take to answer.
const STARTUP: Duration = Duration::from_secs(180);

/// The admin token the stacks accept for writes (its SHA-256 is in [`ADMIN_TOKENS`]).
const WRITE_TOKEN: &str = "config-bench-write-token-5c2e8a1f7d3b9064";
const ADMIN_TOKENS: &str =
    "bench:write:24ef4109a97af43214711b30e11f7c1d640bfe80eeddfe4b1e67431d6b21e1ae";

/// How often a new version's path is polled.
const POLL: Duration = Duration::from_millis(10);

/// How long a write may take to be seen before the run fails.
const VISIBLE_WITHIN: Duration = Duration::from_secs(120);

#[derive(Debug, Clone)]
struct Options {
    requests: usize,
    writes: usize,
    common: Common,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (mut requests, mut writes) = (2_000, 8);
    let common = parse_args(
        args,
        USAGE,
        "cargo run --release -p edge-access-config-bench -- --write BENCHMARKS.md",
        |arg, rest| {
            match arg {
                "--requests" => requests = positive(rest.next(), arg, USAGE)?,
                "--writes" => writes = positive(rest.next(), arg, USAGE)?,
                "--quick" => (requests, writes) = (200, 3),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(Options {
        requests,
        writes,
        common,
    })
}

fn main() -> ExitCode {
    section_main("config-change-bench", HEADING, |args| {
        let options = parse(args)?;
        let report = run(&options)?;
        Ok((report.markdown(), options.common.write.clone()))
    })
}

/// A document with one app per path of `paths`, each letting anyone through.
fn document(host: &str, tenant: &str, client: &str, paths: &[&str]) -> Value {
    let apps: Vec<Value> = paths
        .iter()
        .map(|path| {
            json!({ "id": path, "name": format!("App {path}"), "domain": format!("{host}/{path}"),
                "aud": format!("aud-{path}"),
                "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] })
        })
        .collect();
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b",
            "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": client, "directory_id": tenant } }],
        "apps": apps
    })
}

/// What one stack measured.
#[derive(Debug)]
struct Run {
    /// `CONFIG_REFRESH_SECONDS`, `None`: unset (the default).
    refresh: Option<u64>,
    /// Latency of each steady request.
    steady: Vec<Duration>,
    steady_elapsed: Duration,
    /// Reads of the active version during the steady requests.
    steady_reads: usize,
    /// Per write: how long the `PUT` took, and how long until the first request it decided.
    changes: Vec<(Duration, Duration)>,
}

#[derive(Debug)]
struct Report {
    options: Options,
    environment: Environment,
    runs: Vec<Run>,
}

fn run(options: &Options) -> Result<Report, String> {
    Stack::check_prerequisites().map_err(|e| e.to_string())?;
    let root = repository_root().map_err(|e| e.to_string())?;
    let mut environment = Environment::observe(&root, &options.common.command, revision(&root));
    let mut runs = Vec::new();
    for refresh in [None, Some(0)] {
        eprintln!(
            "CONFIG_REFRESH_SECONDS={}: starting a stack",
            refresh.map_or("(default)".into(), |r: u64| r.to_string())
        );
        runs.push(measure(options, refresh)?);
    }
    environment.finish();
    Ok(Report {
        options: options.clone(),
        environment,
        runs,
    })
}

/// The `config_check` lines (one per read of the active version) logged so far.
fn checks(stack: &Stack) -> usize {
    stack.worker_log().matches("\"config_check\"").count()
}

fn measure(options: &Options, refresh: Option<u64>) -> Result<Run, String> {
    let name = format!(
        "config-bench-{}",
        refresh.map_or("default".into(), |r| r.to_string())
    );
    let mut config = StackConfig::new(json!(null))
        .named(&name)
        .with_var("ADMIN_TOKENS", ADMIN_TOKENS);
    if let Some(refresh) = refresh {
        config = config.with_var("CONFIG_REFRESH_SECONDS", &refresh.to_string());
    }
    config.startup_timeout = STARTUP;
    let stack = Stack::start(config).map_err(|e| e.to_string())?;
    let http = HttpClient::with_timeout(Duration::from_secs(60));
    let host = stack.addr().to_string();
    let (tenant, client) = (stack.emulator().tenant_id(), stack.emulator().client_id());
    let api = format!("{}/cdn-cgi/access/api/config", stack.url());
    let auth = format!("Bearer {WRITE_TOKEN}");
    let put = |paths: &[&str], base: u64| -> Result<u64, String> {
        let body = json!({ "document": document(&host, tenant, client, paths),
            "base_version": base, "comment": "benchmark" });
        let answer = http
            .request(
                "PUT",
                &api,
                &[
                    ("authorization", auth.as_str()),
                    ("content-type", "application/json"),
                ],
                body.to_string().as_bytes(),
            )
            .map_err(|e| e.to_string())?;
        if answer.status != 200 {
            return Err(format!("the write was refused: {answer:?}"));
        }
        answer
            .json()
            .ok()
            .and_then(|b| b.get("result")?.get("version")?.as_u64())
            .ok_or_else(|| format!("no version in {answer:?}"))
    };
    let status = |path: &str| -> Result<u16, String> {
        http.get(&format!("{}{path}", stack.url()))
            .map(|a| a.status)
            .map_err(|e| e.to_string())
    };
    let until_allowed = |path: &str, since: Instant| -> Result<Duration, String> {
        loop {
            if status(path)? == 200 {
                return Ok(since.elapsed());
            }
            if since.elapsed() > VISIBLE_WITHIN {
                return Err(format!("{path} not served within {VISIBLE_WITHIN:?}"));
            }
            std::thread::sleep(POLL);
        }
    };

    // Untimed: the first version, served.
    let mut version = put(&["steady"], 0)?;
    until_allowed("/steady/x", Instant::now())?;

    eprintln!("  {} steady requests", options.requests);
    let before = checks(&stack);
    let started = Instant::now();
    let mut steady = Vec::with_capacity(options.requests);
    for _ in 0..options.requests {
        let sent = Instant::now();
        let answer = status("/steady/x")?;
        steady.push(sent.elapsed());
        if answer != 200 {
            return Err(format!("a steady request answered {answer}"));
        }
    }
    let steady_elapsed = started.elapsed();
    // Log lines may trail the answers a little.
    std::thread::sleep(Duration::from_millis(500));
    let steady_reads = checks(&stack).saturating_sub(before);

    // A version is seen at the isolate's check, which starts a new interval: the i-th write
    // waits i/N of an interval after the one before it was seen, so the writes fall evenly
    // across the interval instead of all just after a check (the worst case).
    let interval = Duration::from_secs(refresh.unwrap_or(10));
    let mut changes = Vec::with_capacity(options.writes);
    for i in 0..options.writes {
        let path = format!("change-{i}");
        std::thread::sleep(interval.mul_f64(count_f64(i) / count_f64(options.writes)));
        let sent = Instant::now();
        version = put(&["steady", &path], version)?;
        let written = sent.elapsed();
        let seen = until_allowed(&format!("/{path}/x"), sent)?;
        eprintln!(
            "  write {}: version {version} written in {written:?}, deciding after {seen:?}",
            i + 1
        );
        changes.push((written, seen));
    }
    Ok(Run {
        refresh,
        steady,
        steady_elapsed,
        steady_reads,
        changes,
    })
}

impl Run {
    fn label(&self) -> String {
        self.refresh
            .map_or("10 (default)".into(), |r| format!("{r} (every request)"))
    }
}

impl Report {
    fn markdown(&self) -> String {
        let env = &self.environment;
        let mut out = String::new();
        let _ = writeln!(out, "{HEADING}\n");
        let _ = writeln!(
            out,
            "Command: `{}` (`bench/config/src/main.rs`). Run on {}: {}, {} cores shared with \
             other developers' builds (load average {} at the start, {} at the end), wrangler {} \
             with workerd {} (`wrangler dev --local`), D1 local in workerd, every process on \
             127.0.0.1; the worker: {}. One stack per `CONFIG_REFRESH_SECONDS`, each on a fresh \
             D1; requests are sequential on one keep-alive connection, to an app that lets \
             anyone through (a bypass policy: no sign-in; the demo origin on loopback \
             answers).\n",
            env.command,
            env.date,
            env.cpu,
            env.cores,
            env.load_start,
            env.load_end,
            env.wrangler,
            env.workerd,
            env.revision
        );
        let _ = writeln!(
            out,
            "**Write to decision**: {} times, a new version naming a new app path is written \
             through `PUT /cdn-cgi/access/api/config` and that path polled every {} ms; the time \
             is from sending the write to the first request the new version decided (200). An \
             isolate reads the active version at most once per interval, so the wait depends on \
             where in the interval the write falls: the i-th of N writes is sent i/N of an \
             interval after the previous version was first seen (the moment of a check), so the \
             writes spread over the interval (the first one follows the steady requests, at no \
             particular point of it).\n",
            self.options.writes,
            POLL.as_millis()
        );
        let _ = writeln!(
            out,
            "| `CONFIG_REFRESH_SECONDS` | writes | write (`PUT`) p50 | to first decision: min | p50 | max |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|");
        for run in &self.runs {
            let written = sorted_ms(run.changes.iter().map(|(w, _)| *w));
            let seen = sorted_ms(run.changes.iter().map(|(_, s)| *s));
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} ms | {:.0} ms | {:.0} ms | {:.0} ms |",
                run.label(),
                run.changes.len(),
                quantile(&written, 0.5),
                quantile(&seen, 0.0),
                quantile(&seen, 0.5),
                quantile(&seen, 1.0)
            );
        }
        let _ = writeln!(
            out,
            "\n**Checking for a new version**: {} steady requests; *reads* counts the reads of \
             the active version from D1 during them (the worker's `config_check` log lines). \
             With the default, a request reads nothing from storage: the check is a clock \
             comparison in the isolate, and one read per 10 s interval is shared by every \
             request of the isolate. `0` reads on every request, for comparison: the difference \
             in latency is what a storage read per request would cost.\n",
            self.options.requests
        );
        let _ = writeln!(
            out,
            "| `CONFIG_REFRESH_SECONDS` | requests | reads | reads per request | requests/s | p50 | p95 | p99 |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|");
        for run in &self.runs {
            let latency = sorted_ms(run.steady.iter().copied());
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.4} | {:.0} | {:.2} ms | {:.2} ms | {:.2} ms |",
                run.label(),
                run.steady.len(),
                run.steady_reads,
                count_f64(run.steady_reads) / count_f64(run.steady.len().max(1)),
                count_f64(run.steady.len()) / run.steady_elapsed.as_secs_f64().max(f64::EPSILON),
                quantile(&latency, 0.50),
                quantile(&latency, 0.95),
                quantile(&latency, 0.99)
            );
        }
        out
    }
}

/// When the worker's build was made, and the tree's commit and uncommitted source files
/// then: the numbers belong to the build.
fn revision(root: &Path) -> String {
    let built = std::fs::metadata(root.join("worker/build/index_bg.wasm"))
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| "at an unknown time".into(), |d| utc(d.as_secs()));
    match commit_and_changes(root, &["worker", "policy-core", "token"]) {
        None => format!("`worker/build` of {built}, an unknown revision"),
        Some((commit, files)) if files.is_empty() => {
            format!("`worker/build` of {built}; the tree at commit {commit}")
        }
        Some((commit, files)) => format!(
            "`worker/build` of {built}; the tree at commit {commit} with uncommitted changes to {}",
            files.join(", ")
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments_parse() {
        let options = parse(&["--quick".into(), "--writes".into(), "5".into()]).unwrap();
        assert_eq!((options.requests, options.writes), (200, 5));
        assert!(parse(&["--requests".into(), "0".into()]).is_err());
        assert!(parse(&["--bogus".into()]).is_err());
    }
}

//! `scim-provision-bench`: how fast Entra-style provisioning fills the gateway's SCIM
//! endpoint under workerd (`wrangler dev --local`, D1 in workerd's local SQLite), on 127.0.0.1.
//!
//! For each connection count (1, then 4), a fresh stack (an empty D1) and a generated
//! directory — 5,000 users and 500 groups of 10 users each by default — provisioned the way
//! Entra's provisioning service does it ([`entra_emulator::provisioning`],
//! default dialect), in three timed phases:
//!
//! 1. **users**: per user, `GET /Users?filter=userName eq "…"`, then `POST /Users` with
//!    Entra's create payload (enterprise extension included);
//! 2. **groups**: per group, `GET /Groups?excludedAttributes=members&filter=displayName eq
//!    "…"`, then `POST /Groups`;
//! 3. **memberships**: per group, one `PATCH /Groups/{id}` adding its 10 members
//!    (`{"op": "Add", "path": "members", "value": [{"$ref": null, "value": …}, …]}`).
//!
//! With N connections, N threads each own one keep-alive connection and take every N-th
//! user or group; a phase starts when the previous one has finished on every connection.
//! A 503 or 429 is retried after a short pause, as Entra retries, and counted. Afterwards the
//! stored directory is checked (user and group totals, a group's members).
//!
//! wrangler runs with its DevTools inspector proxy off and its request log quiet
//! (`VSCODE_INSPECTOR_OPTIONS={}`, `WRANGLER_LOG=warn`, as the gateway benchmark's first
//! phase): what remains is workerd running the worker.
//!
//! ```text
//! scim-provision-bench [--users N] [--groups N] [--members N] [--connections N,N…]
//!                      [--write FILE] [--command TEXT] [--quick]
//! ```
//!
//! `--write FILE` puts the results in FILE's "## SCIM provisioning under workerd" section.
//! Needs wrangler (`cargo xtask setup`) and the worker's release build (`cargo xtask
//! build-worker`); `cargo xtask bench` runs it last.

#![expect(
    clippy::print_stderr,
    reason = "a command-line tool reports progress and errors on stderr"
)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant, UNIX_EPOCH};

use bench_report::{
    commit_and_changes, parse_args, positive, repository_root, section_main, utc, Common,
    Environment,
};

use edge_access_tests::stack::{Stack, StackConfig, SCIM_PATH, SCIM_TOKEN};
use entra_emulator::client::HttpClient;
use entra_emulator::provisioning::{
    Dialect, Directory, Exchange, ExternalId, ProvisioningError, ScimClient,
};
use serde_json::{json, Value};

/// The section this benchmark owns in BENCHMARKS.md.
const HEADING: &str = "## SCIM provisioning under workerd";

const USAGE: &str = "usage: scim-provision-bench [--users N] [--groups N] [--members N] \
                     [--connections N,N…] [--write FILE] [--command TEXT] [--quick]";

/// How long a wrangler may take to answer.
const STARTUP: Duration = Duration::from_secs(180);

/// How often one request is retried after a 503 or 429.
const RETRIES: usize = 20;

#[derive(Debug, Clone)]
struct Options {
    users: usize,
    groups: usize,
    members: usize,
    connections: Vec<usize>,
    common: Common,
}

fn parse(args: &[String]) -> Result<Options, String> {
    let (mut users, mut groups, mut members) = (5_000, 500, 10);
    let mut connections = vec![1, 4];
    let common = parse_args(
        args,
        USAGE,
        "cargo run --release -p edge-access-scim-bench -- --write BENCHMARKS.md",
        |arg, rest| {
            match arg {
                "--users" => users = positive(rest.next(), arg, USAGE)?,
                "--groups" => groups = positive(rest.next(), arg, USAGE)?,
                "--members" => members = positive(rest.next(), arg, USAGE)?,
                "--connections" => {
                    let list = rest.next().ok_or(USAGE)?;
                    connections = list
                        .split(',')
                        .map(|n| positive(Some(&n.to_owned()), arg, USAGE))
                        .collect::<Result<_, _>>()?;
                }
                "--quick" => (users, groups) = (500, 50),
                _ => return Ok(false),
            }
            Ok(true)
        },
    )?;
    Ok(Options {
        users,
        groups,
        members,
        connections,
        common,
    })
}

fn main() -> ExitCode {
    section_main("scim-provision-bench", HEADING, |args| {
        let options = parse(args)?;
        let report = run(&options)?;
        Ok((report.markdown(), options.common.write.clone()))
    })
}

/// SCIM on, one app so the gateway is configured as in production.
fn document() -> Value {
    json!({
        "team_domain": "https://access.example.com",
        "identity_providers": [{ "id": "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b",
            "name": "Emulated Entra ID", "type": "azureAD",
            "config": { "client_id": "${CLIENT_ID}", "directory_id": "${TENANT_ID}", "support_groups": true },
            "scim_config": { "enabled": true, "user_deprovision": true, "identity_update_behavior": "no_action" } }],
        "apps": [{ "id": "public", "name": "Public", "domain": "${WORKER_HOST}/public", "aud": "aud-public",
            "policies": [{ "name": "Anyone", "decision": "bypass", "include": [{ "everyone": {} }] }] }]
    })
}

/// One timed phase on one connection count.
#[derive(Debug)]
struct PhaseResult {
    name: &'static str,
    elapsed: Duration,
    exchanges: Vec<Exchange>,
    retries: usize,
}

impl PhaseResult {
    fn requests(&self) -> usize {
        self.exchanges.len()
    }

    fn per_second(&self) -> f64 {
        count_f64(self.requests()) / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }

    /// The `q` quantile of request latency, in ms.
    fn latency_ms(&self, q: f64) -> f64 {
        let mut ms: Vec<f64> = self
            .exchanges
            .iter()
            .map(|e| e.elapsed.as_secs_f64() * 1000.0)
            .collect();
        ms.sort_by(f64::total_cmp);
        quantile(&ms, q)
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "request counts are far below 2^52"
)]
fn count_f64(n: usize) -> f64 {
    n as f64
}

#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "an index into a sorted list of latencies, rounded"
)]
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    let index = (count_f64(last) * q).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or(f64::NAN)
}

/// Everything measured at one connection count.
#[derive(Debug)]
struct Run {
    connections: usize,
    startup: Duration,
    phases: Vec<PhaseResult>,
    verified: String,
}

#[derive(Debug)]
struct Report {
    options: Options,
    environment: Environment,
    runs: Vec<Run>,
}

fn run(options: &Options) -> Result<Report, String> {
    Stack::check_prerequisites().map_err(|e| e.to_string())?;
    // Before any thread starts: every wrangler started from now on inherits it.
    std::env::set_var("VSCODE_INSPECTOR_OPTIONS", "{}");
    std::env::set_var("WRANGLER_LOG", "warn");
    let root = repository_root().map_err(|e| e.to_string())?;
    let mut environment = Environment::observe(&root, &options.common.command, revision(&root));
    let directory = Directory::generated(options.users, options.groups, options.members);
    let mut runs = Vec::new();
    for &connections in &options.connections {
        eprintln!("{connections} connection(s): starting a stack");
        runs.push(measure(&directory, connections)?);
    }
    environment.finish();
    Ok(Report {
        options: options.clone(),
        environment,
        runs,
    })
}

/// The phase that measures a storage-free request.
const FLOOR: &str = "floor: GET /ServiceProviderConfig (no D1)";
const FLOOR_REQUESTS: usize = 2000;

fn measure(directory: &Directory, connections: usize) -> Result<Run, String> {
    let mut config = StackConfig::new(document()).named(&format!("scim-bench-{connections}"));
    config.startup_timeout = STARTUP;
    let stack = Stack::start(config).map_err(|e| e.to_string())?;
    let base = format!("{}{SCIM_PATH}", stack.url());
    let clients: Vec<ScimClient> = (0..connections)
        .map(|_| {
            // `user_deprovision` needs users bound to their object ids.
            ScimClient::new(&base, SCIM_TOKEN, Dialect::Default)
                .with_external_id(ExternalId::ObjectId)
                .with_http(HttpClient::with_timeout(Duration::from_secs(60)))
        })
        .collect();
    // Untimed: warms the isolate and opens every connection.
    for client in &clients {
        client.test_connection().map_err(|e| e.to_string())?;
        client.clear_exchanges();
    }

    // The floor: a SCIM request that reads no storage (bearer check, routing, JSON), to tell
    // the endpoint's own cost from D1's. Not part of the provisioning totals.
    let probes: Vec<usize> = (0..FLOOR_REQUESTS).collect();
    let (_, floor_phase) = phase(FLOOR, &clients, &probes, |client, _| {
        client
            .send("GET", "/ServiceProviderConfig", &[], None)
            .map(|_| (String::new(), String::new()))
    })?;

    let users: Vec<_> = directory.users.iter().collect();
    let (user_ids, users_phase) = phase("users", &clients, &users, |client, user| {
        client
            .match_or_create_user(user)
            .map(|(id, _)| (user.key.clone(), id))
    })?;
    let groups: Vec<_> = directory.groups.iter().collect();
    let (group_ids, groups_phase) = phase("groups", &clients, &groups, |client, group| {
        client
            .match_or_create_group(group)
            .map(|(id, _)| (group.id.clone(), id))
    })?;
    let user_ids: BTreeMap<String, String> = user_ids.into_iter().collect();
    let group_ids: BTreeMap<String, String> = group_ids.into_iter().collect();
    let (_, memberships_phase) = phase("memberships", &clients, &groups, |client, group| {
        let members: Vec<&str> = directory
            .user_members(group)
            .iter()
            .filter_map(|user| user_ids.get(&user.key).map(String::as_str))
            .collect();
        let id = group_ids
            .get(&group.id)
            .ok_or_else(|| ProvisioningError::Directory(format!("no id for {}", group.id)))?;
        client
            .add_members(id, &members)
            .map(|()| (String::new(), String::new()))
    })?;

    let verified = verify(&clients, directory, &group_ids)?;
    eprintln!("{connections} connection(s): {verified}");
    Ok(Run {
        connections,
        startup: stack.startup_time(),
        phases: vec![floor_phase, users_phase, groups_phase, memberships_phase],
        verified,
    })
}

/// What one connection did in a phase: `(key, id)` pairs, and how many retries it needed.
type ConnectionResult = (Vec<(String, String)>, usize);

/// Runs `work` on every item, item `i` on connection `i % connections`, and times the whole.
fn phase<T: Sync>(
    name: &'static str,
    clients: &[ScimClient],
    items: &[T],
    work: impl Fn(&ScimClient, &T) -> Result<(String, String), ProvisioningError> + Sync,
) -> Result<(Vec<(String, String)>, PhaseResult), String> {
    let started = Instant::now();
    let results: Vec<Result<ConnectionResult, String>> = std::thread::scope(|scope| {
        let handles: Vec<_> = clients
            .iter()
            .enumerate()
            .map(|(index, client)| {
                let work = &work;
                scope.spawn(move || {
                    let mut done = Vec::new();
                    let mut retries = 0;
                    for item in items.iter().skip(index).step_by(clients.len()) {
                        let mut attempt = 0;
                        loop {
                            match work(client, item) {
                                Ok(pair) => {
                                    done.push(pair);
                                    break;
                                }
                                Err(ProvisioningError::Status {
                                    status: 503 | 429, ..
                                }) if attempt < RETRIES => {
                                    attempt += 1;
                                    retries += 1;
                                    std::thread::sleep(Duration::from_millis(20));
                                }
                                Err(error) => return Err(error.to_string()),
                            }
                        }
                    }
                    Ok((done, retries))
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| {
                handle
                    .join()
                    .unwrap_or_else(|_| Err("a connection's thread panicked".into()))
            })
            .collect()
    });
    let elapsed = started.elapsed();
    let mut pairs = Vec::new();
    let mut retries = 0;
    for result in results {
        let (done, retried) = result?;
        pairs.extend(done);
        retries += retried;
    }
    let mut exchanges = Vec::new();
    for client in clients {
        exchanges.extend(client.exchanges());
        client.clear_exchanges();
    }
    eprintln!(
        "  {name}: {} requests in {:.1} s",
        exchanges.len(),
        elapsed.as_secs_f64()
    );
    Ok((
        pairs,
        PhaseResult {
            name,
            elapsed,
            exchanges,
            retries,
        },
    ))
}

/// The stored directory has every user and group, and groups their members.
fn verify(
    clients: &[ScimClient],
    directory: &Directory,
    group_ids: &BTreeMap<String, String>,
) -> Result<String, String> {
    let client = clients.first().ok_or("no connection")?;
    let total = |resource: &str| {
        client
            .list_resources(resource, &[("count", "0")])
            .map(|list| list.total_results)
            .map_err(|e| e.to_string())
    };
    let (users, groups) = (total("Users")?, total("Groups")?);
    if users != count_u64(directory.users.len()) || groups != count_u64(directory.groups.len()) {
        return Err(format!(
            "the endpoint holds {users} users and {groups} groups instead of {} and {}",
            directory.users.len(),
            directory.groups.len()
        ));
    }
    let mut checked = Vec::new();
    for group in [directory.groups.first(), directory.groups.last()]
        .into_iter()
        .flatten()
    {
        let id = group_ids.get(&group.id).ok_or("a group has no id")?;
        let stored = client
            .group(id, false)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("group `{id}` is missing"))?;
        let members = stored
            .get("members")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        let expected = directory.user_members(group).len();
        if members != expected {
            return Err(format!(
                "{} has {members} members instead of {expected}",
                group.display_name
            ));
        }
        checked.push(format!("{} has its {members}", group.display_name));
    }
    Ok(format!(
        "stored {} users and {} groups; {}",
        thousands(directory.users.len()),
        thousands(directory.groups.len()),
        checked.join(", ")
    ))
}

fn count_u64(n: usize) -> u64 {
    u64::try_from(n).unwrap_or(u64::MAX)
}

impl Report {
    fn markdown(&self) -> String {
        let env = &self.environment;
        let options = &self.options;
        let mut out = String::new();
        let _ = writeln!(out, "{HEADING}\n");
        let _ = writeln!(
            out,
            "Command: `{}` (`bench/scim/src/main.rs`). Run on {}: {}, {} cores \
             shared with another developer's builds (load average {} at the start, {} at the \
             end), wrangler {} with workerd {} (`wrangler dev --local`, inspector proxy off), \
             the worker's D1 local in workerd (SQLite under `target/e2e/`), every process on \
             127.0.0.1; the worker: {}. One run per connection count, each on a \
             fresh stack with an empty D1.\n",
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
            "Entra's provisioning client (`entra_emulator::provisioning`, default \
             dialect) provisions {} users and {} groups of {} users each: **users** = per user \
             `GET /Users?filter=userName eq \"…\"` then `POST /Users` (Entra's create payload \
             with the enterprise extension); **groups** = per group `GET \
             /Groups?excludedAttributes=members&filter=displayName eq \"…\"` then `POST \
             /Groups`; **memberships** = per group one `PATCH` adding its {} members. With N \
             connections, N threads each keep one connection and take every N-th user or \
             group; each phase starts when the previous one is done. Latency is per request, \
             seen from the client. The **floor** phase ({} requests that read no storage) \
             comes first and is not in the totals: the difference to it is D1's round trips \
             (1 per lookup, 1 per write batch).\n",
            thousands(options.users),
            thousands(options.groups),
            options.members,
            options.members,
            thousands(FLOOR_REQUESTS)
        );
        let _ = writeln!(
            out,
            "| connections | phase | requests | time | requests/s | p50 | p95 | p99 | retried (503/429) |"
        );
        let _ = writeln!(out, "|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        for run in &self.runs {
            let mut total_requests = 0;
            let mut total_time = Duration::ZERO;
            for phase in &run.phases {
                if phase.name != FLOOR {
                    total_requests += phase.requests();
                    total_time += phase.elapsed;
                }
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {:.1} s | {:.0} | {:.1} ms | {:.1} ms | {:.1} ms | {} |",
                    run.connections,
                    phase.name,
                    thousands(phase.requests()),
                    phase.elapsed.as_secs_f64(),
                    phase.per_second(),
                    phase.latency_ms(0.50),
                    phase.latency_ms(0.95),
                    phase.latency_ms(0.99),
                    phase.retries
                );
            }
            let _ = writeln!(
                out,
                "| {} | **all** | {} | {:.1} s | {:.0} | | | | |",
                run.connections,
                thousands(total_requests),
                total_time.as_secs_f64(),
                count_f64(total_requests) / total_time.as_secs_f64().max(f64::EPSILON)
            );
        }
        let _ = writeln!(out);
        for run in &self.runs {
            let _ = writeln!(
                out,
                "- {} connection(s): stack up in {:.1} s; afterwards {}.",
                run.connections,
                run.startup.as_secs_f64(),
                run.verified
            );
        }
        let _ = writeln!(out, "\n{ROUND_TRIPS}");
        if let Some(line) = self.target() {
            let _ = writeln!(out, "\n{line}");
        }
        out
    }

    /// Whether the run with the most connections reached [`TARGET`] requests/s over all
    /// phases, with its floor beside it.
    fn target(&self) -> Option<String> {
        let run = self.runs.iter().max_by_key(|run| run.connections)?;
        let timed = run.phases.iter().filter(|phase| phase.name != FLOOR);
        let (requests, time) = timed.fold((0, Duration::ZERO), |(n, t), phase| {
            (n + phase.requests(), t + phase.elapsed)
        });
        let rate = count_f64(requests) / time.as_secs_f64().max(f64::EPSILON);
        let floor = run
            .phases
            .iter()
            .find(|phase| phase.name == FLOOR)
            .map_or(f64::NAN, PhaseResult::per_second);
        let met = if rate >= TARGET { "met" } else { "not met" };
        Some(format!(
            "Target >= {TARGET:.0} req/s: {met} ({rate:.0} req/s over all phases with {} \
             connections, against a storage-free floor of {floor:.0} req/s; `{}`).",
            run.connections, self.environment.command
        ))
    }
}

/// Requests per second over all phases that provisioning should reach with the most
/// connections.
const TARGET: f64 = 500.0;

/// The D1 round trips each request of the run makes, as `worker/src/scim/store` has them
/// (a round trip is one query or one write batch).
const ROUND_TRIPS: &str = "D1 round trips per request (one query or one write batch each): \
    `GET /Users?filter=userName eq` 1 (the page and its total in one query); `POST /Users` 1 \
    (the insert, its uniqueness checked by the UNIQUE indexes inside the batch); `GET \
    /Groups?filter=displayName eq` 1; `POST /Groups` 1, with or without members (the batch \
    checks the members and answers their kinds); `PATCH /Groups/{id}` adding members 1 (no \
    read of the group first). A request that fails a guard inside its batch reads afterwards \
    to say precisely why, having written nothing.";

/// `11,500`.
fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// When the worker's build was made, and the tree's commit and uncommitted source files
/// then: the numbers belong to the build.
fn revision(root: &Path) -> String {
    let built = std::fs::metadata(root.join("worker/build/index_bg.wasm"))
        .and_then(|metadata| metadata.modified())
        .ok()
        .and_then(|time| time.duration_since(UNIX_EPOCH).ok())
        .map_or_else(|| "at an unknown time".into(), |d| utc(d.as_secs()));
    match commit_and_changes(root, &["worker", "scim", "policy-core", "token"]) {
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
    fn numbers_read_well() {
        assert_eq!(thousands(11_500), "11,500");
        assert_eq!(thousands(500), "500");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert!((quantile(&[1.0, 2.0, 3.0], 0.5) - 2.0).abs() < f64::EPSILON);
        assert!(quantile(&[], 0.5).is_nan());
    }

    #[test]
    fn arguments_parse() {
        let options = parse(&["--quick".into(), "--connections".into(), "2,8".into()]).unwrap();
        assert_eq!(
            (options.users, options.groups, options.members),
            (500, 50, 10)
        );
        assert_eq!(options.connections, [2, 8]);
        assert!(parse(&["--users".into(), "0".into()]).is_err());
    }
}

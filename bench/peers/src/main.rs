//! `edge-access-peers-bench`: policy-core, Cedar and regorus on the same decisions, natively
//! and (with `--wasm DIR`, the three Wasm modules built by `cargo xtask bench`) in Wasm under
//! Node; fails when two engines disagree on a request; prints the table and, with
//! `--write FILE`, writes it into FILE's "Peers" section.
#![allow(
    clippy::print_stdout,
    clippy::print_stderr,
    reason = "a benchmark runner reports on the terminal"
)]

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::{Command, ExitCode};
use std::time::Instant;

use edge_access_peers_bench::engines::{Cedar, Core, CoreIdentity, Peer, Regorus};
use edge_access_peers_bench::translate;
use serde_json::{json, Value};

#[path = "../../../policy-core/examples/workload.rs"]
#[allow(
    dead_code,
    clippy::all,
    reason = "shared with the policy-core examples; this binary uses part of it"
)]
mod workload;

const SECTION: &str = "## Peers: Cedar and regorus on the same decisions";
const REQUESTS: usize = 300;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peers: {e}");
            ExitCode::FAILURE
        }
    }
}

struct Args {
    wasm: Option<PathBuf>,
    write: Option<PathBuf>,
    out: PathBuf,
    quick: bool,
}

fn args() -> Result<Args, String> {
    let mut args = Args {
        wasm: None,
        write: None,
        out: PathBuf::from("target/peers"),
        quick: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--wasm" => args.wasm = it.next().map(PathBuf::from),
            "--write" => args.write = it.next().map(PathBuf::from),
            "--out" => args.out = it.next().map(PathBuf::from).ok_or("--out DIR")?,
            "--quick" => args.quick = true,
            other => return Err(format!("unknown argument `{other}`")),
        }
    }
    Ok(args)
}

/// The three engines' texts of one document.
struct Texts {
    core: String,
    cedar: String,
    rego: String,
}

fn texts(document: &Value) -> Result<Texts, String> {
    let t = translate::document(document)?;
    Ok(Texts {
        core: document.to_string(),
        cedar: t.cedar.to_string(),
        rego: t.rego.to_string(),
    })
}

/// A request in both forms.
struct Case {
    core: String,
    peer: String,
}

fn run() -> Result<(), String> {
    let args = args()?;
    let realistic = workload::realistic();
    let document = &realistic["document"];
    let small = texts(document)?;
    let large = texts(&workload::large())?;
    let cases = requests(&realistic)?;

    // Natively: every engine decides every request as policy-core does.
    let mut core = Core::compile(&small.core)?;
    let mut core_identity = CoreIdentity::compile(&small.core)?;
    let mut cedar = Cedar::compile(&small.cedar)?;
    let mut rego = Regorus::compile(&small.rego)?;
    let mut expected = Vec::new();
    let mut tally: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, case) in cases.iter().enumerate() {
        let want = core.decide_json(&case.core)?;
        let prepared = core_identity.decide_json(&case.core)?;
        if prepared != want {
            return Err(format!(
                "request {i}: policy-core {want}, for a prepared identity {prepared}"
            ));
        }
        let c = cedar.decide_json(&case.peer)?;
        let r = rego.decide_json(&case.peer)?;
        if c != want || r != want {
            return Err(format!(
                "request {i} decided differently: policy-core {want}, Cedar {c}, regorus {r}\n{}",
                case.core
            ));
        }
        *tally.entry(want).or_default() += 1;
        expected.push(want);
    }
    let spread: Vec<String> = tally.iter().map(|(k, n)| format!("{n} {k}")).collect();
    println!(
        "{} requests, the three engines agree natively ({})",
        cases.len(),
        spread.join(", ")
    );

    let n = if args.quick { 1 } else { 3 };
    let mut native = BTreeMap::new();
    native.insert(
        "policy-core",
        measure_native::<Core>(&small, &large, &cases, n, |t| &t.core, |c| &c.core)?,
    );
    native.insert(
        "policy-core, prepared identity",
        measure_native::<CoreIdentity>(&small, &large, &cases, n, |t| &t.core, |c| &c.core)?,
    );
    native.insert(
        "Cedar",
        measure_native::<Cedar>(&small, &large, &cases, n, |t| &t.cedar, |c| &c.peer)?,
    );
    native.insert(
        "regorus",
        measure_native::<Regorus>(&small, &large, &cases, n, |t| &t.rego, |c| &c.peer)?,
    );

    std::fs::create_dir_all(&args.out).map_err(|e| e.to_string())?;
    let case_file = args.out.join("case.json");
    let case = json!({
        "realistic": { "core": small.core, "cedar": small.cedar, "rego": small.rego },
        "large": { "core": large.core, "cedar": large.cedar, "rego": large.rego },
        "requests": cases.iter().zip(&expected).map(|(c, e)| json!({ "core": c.core, "peer": c.peer, "expected": e })).collect::<Vec<_>>(),
        "quick": args.quick,
    });
    std::fs::write(&case_file, case.to_string()).map_err(|e| e.to_string())?;

    let wasm = match &args.wasm {
        Some(dir) => Some(run_node(dir, &case_file)?),
        None => None,
    };
    let mut table = table(&native, wasm.as_ref(), cases.len(), &spread);
    if !Regorus::compile(&large.rego)?.on_vm() {
        table.push_str(
            "\nregorus does not fit the 1,000-app document into one RVM program (at most 65,535 \
instructions), so its \"compile 1,000 apps\" is parsing and compiling the Rego (its interpreter's \
form), without the RVM code generation that the realistic document gets.\n",
        );
    }
    println!("{table}");
    if let Some(file) = &args.write {
        write_section(file, &table)?;
        println!("wrote {}", file.display());
    }
    Ok(())
}

/// Times in nanoseconds: compile realistic, compile large, decide, JSON + decide.
#[derive(Debug)]
struct Times {
    compile: f64,
    compile_large: f64,
    decide: f64,
    json_decide: f64,
}

fn measure_native<P: Peer>(
    small: &Texts,
    large: &Texts,
    cases: &[Case],
    rounds: usize,
    text: fn(&Texts) -> &String,
    request: fn(&Case) -> &String,
) -> Result<Times, String> {
    let compile = median(rounds.max(3), 1, || {
        P::compile(black_box(text(small))).map(drop)
    })?;
    let compile_large = median(rounds.max(3), 1, || {
        P::compile(black_box(text(large))).map(drop)
    })?;
    let mut engine = P::compile(text(small))?;
    let workload = request(cases.first().ok_or("no requests")?);
    let prepared = engine.prepare(workload)?;
    let decide = median(7, 2000, || engine.decide(black_box(&prepared)).map(drop))?;
    let json_decide = median(7, 500, || engine.decide_json(black_box(workload)).map(drop))?;
    Ok(Times {
        compile,
        compile_large,
        decide,
        json_decide,
    })
}

/// The median over `rounds` of the time per call of `iterations` calls, in nanoseconds.
fn median(
    rounds: usize,
    iterations: usize,
    mut f: impl FnMut() -> Result<(), String>,
) -> Result<f64, String> {
    for _ in 0..iterations.min(100) {
        f()?;
    }
    let mut samples = Vec::new();
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..iterations {
            f()?;
        }
        samples.push(start.elapsed().as_nanos() as f64 / iterations as f64);
    }
    samples.sort_by(f64::total_cmp);
    Ok(samples[samples.len() / 2])
}

/// The workload's own request first (Ada, allowed by the 21st policy), then variations of who,
/// from where, with which groups, for which app.
fn requests(realistic: &Value) -> Result<Vec<Case>, String> {
    let parents = translate::parents(&realistic["document"]);
    let base = realistic["request"].clone();
    let mut all_groups: Vec<String> = parents.keys().cloned().collect();
    all_groups.sort();
    let mut rng = workload::Lcg::new(2026);
    let pick = |items: &[&str], rng: &mut workload::Lcg| items[rng.below(items.len())].to_owned();
    let mut out = Vec::new();
    for i in 0..REQUESTS {
        let mut r = base.clone();
        if i > 0 {
            let id = &mut r["identity"];
            id["email"] = json!(pick(
                &[
                    "ada@example.com",
                    "root@example.com",
                    "leaver7@example.com",
                    "bob@partner.example.net",
                    "eve@contractors.example.com",
                    "sam@example.org"
                ],
                &mut rng
            ));
            id["amr"] = if rng.below(2) == 0 {
                json!(["pwd", "mfa"])
            } else {
                json!(["pwd"])
            };
            if rng.below(2) == 0 {
                let n = 1 + rng.below(40);
                let groups: Vec<&String> = (0..n)
                    .map(|_| &all_groups[rng.below(all_groups.len())])
                    .collect();
                id["groups"] = json!(groups);
            }
            if rng.below(6) == 0 {
                id["claims"] = json!({ "roles": ["Auditor"] });
            }
            r["ip"] = json!(pick(
                &[
                    "198.51.100.7",
                    "10.10.3.4",
                    "203.0.113.9",
                    "2001:db8:100::5"
                ],
                &mut rng
            ));
            r["country"] = json!(pick(&["PT", "US", "KP", "DE", "FR"], &mut rng));
            if rng.below(8) == 0 {
                r["service_token"] = json!({ "token_id": "ci-token" });
            }
            if rng.below(6) == 0 {
                r["app"] = json!(pick(
                    &[
                        "app7.example.com/x/y",
                        "app7.example.com/other",
                        "nobody.example.com/",
                        "app12.example.com/x"
                    ],
                    &mut rng
                ));
            }
        }
        let peer = translate::request(&r, &parents)?;
        out.push(Case {
            core: r.to_string(),
            peer: peer.to_string(),
        });
    }
    Ok(out)
}

/// Runs `run.mjs` on the Wasm modules in `dir`; returns its JSON report.
fn run_node(dir: &std::path::Path, case: &std::path::Path) -> Result<Value, String> {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("run.mjs");
    let absolute = |p: &std::path::Path| p.canonicalize().map_err(|e| format!("{}: {e}", p.display()));
    let (dir, case) = (absolute(dir)?, absolute(case)?);
    let output = Command::new("node")
        .arg(&script)
        .arg(dir)
        .arg(case)
        .stderr(std::process::Stdio::inherit())
        .output()
        .map_err(|e| format!("node: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "node {} failed ({})",
            script.display(),
            output.status
        ));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| format!("node's report: {e}"))
}

fn show(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.1} ms", ns / 1e6)
    } else {
        format!("{:.2} µs", ns / 1e3)
    }
}

fn table(
    native: &BTreeMap<&str, Times>,
    wasm: Option<&Value>,
    requests: usize,
    spread: &[String],
) -> String {
    let mut t = String::new();
    t.push_str("| engine | decide | JSON + decide | compile realistic | compile 1,000 apps | Wasm module (gzip) |\n");
    t.push_str("|---|---:|---:|---:|---:|---:|\n");
    for name in [
        "policy-core",
        "policy-core, prepared identity",
        "Cedar",
        "regorus",
    ] {
        let Some(n) = native.get(name) else { continue };
        let w = wasm.and_then(|w| w.get(name));
        let both = |native: f64, key: &str| match w.and_then(|w| w.get(key)).and_then(Value::as_f64)
        {
            Some(wasm) => format!("{} / {}", show(native), show(wasm)),
            None => show(native),
        };
        let size = w
            .and_then(|w| Some((w.get("raw")?.as_f64()?, w.get("gzip")?.as_f64()?)))
            .map_or("—".to_owned(), |(raw, gz)| {
                format!("{:.0} KiB ({:.0} KiB)", raw / 1024.0, gz / 1024.0)
            });
        t.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {size} |\n",
            both(n.decide, "decide"),
            both(n.json_decide, "json_decide"),
            both(n.compile, "compile"),
            both(n.compile_large, "compile_large"),
        ));
    }
    t.push_str(&format!(
        "\nEach cell: native / Wasm in Node{}. Agreement: {requests} requests ({}), every engine decided every one as policy-core did, natively{}.\n",
        if wasm.is_some() { "" } else { " (not run: no `--wasm`)" },
        spread.join(", "),
        if wasm.is_some() { " and in Wasm" } else { "" },
    ));
    t
}

/// Replaces (or appends) the section from its heading to the next `## ` heading.
fn write_section(file: &std::path::Path, table: &str) -> Result<(), String> {
    let text = std::fs::read_to_string(file).map_err(|e| e.to_string())?;
    let body = format!("{SECTION}\n\n{}\n{table}\n", intro());
    let new = match text.find(SECTION) {
        Some(start) => {
            let rest = &text[start + SECTION.len()..];
            let end = rest
                .find("\n## ")
                .map_or(text.len(), |e| start + SECTION.len() + e + 1);
            format!("{}{}{}", &text[..start], body, &text[end..])
        }
        None => format!("{}\n{body}", text.trim_end_matches('\n').to_owned() + "\n"),
    };
    std::fs::write(file, new).map_err(|e| e.to_string())
}

fn intro() -> String {
    let now = Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    format!(
        "Command: `cargo xtask bench peers` (`bench/peers`, its own workspace: `cargo run --release \
--manifest-path bench/peers/Cargo.toml -- --wasm target/peers --write BENCHMARKS.md` after the three \
Wasm modules are built; bench/peers/README.md). Run on {now}, Node {node}, on the project's 2-core \
machine shared with other builds (±30 % between runs).\n\n\
The realistic workload of the policy-core section (the same document and request), translated \
by `bench/peers/src/translate.rs`: Cedar {} with one policy set per app (each edge-access policy \
one `permit`, the host taking the first matched in edge-access's order), the user's transitive \
groups as the principal's parents and the lists as entities (built when the request is prepared); \
regorus {} with the document as one Rego module compiled to its VM (RVM), the user's transitive \
groups as an object in `input`. The peers get the group closure precomputed by the host; \
policy-core gets the user's direct groups and walks its compiled directory itself, so its \
\"compile realistic\" includes the 10,000-group directory and the peers' does not. \"decide\" is a \
prepared request; \"JSON + decide\" parses the request's JSON first (each engine its own form). \
\"policy-core, prepared identity\" decides for an identity prepared once with \
`Engine::prepare_identity` (its group closure computed then, as a host caching it per session \
does; the same fair footing as the peers' precomputed closure); its JSON + decide prepares the \
identity too. \
Median of 7 rounds; compile times median of 3.\n",
        env!("CEDAR_VERSION"),
        env!("REGORUS_VERSION"),
    )
}

//! `cargo xtask fuzz [TARGET] [--seconds N] [--write]`: coverage-guided fuzzing of every parser
//! of untrusted input (`fuzz/`, its own workspace) with cargo-fuzz and libFuzzer.
//!
//! On stable Rust, cargo-fuzz works with the sanitizer turned off (`-s none`; AddressSanitizer
//! needs nightly). Safe Rust needs no sanitizer to find what matters here: panics (including
//! overflow and out-of-bounds, debug assertions are on) and the targets' own oracles.
//!
//! Steps: replay the regression inputs and seeds natively (`cargo test` in `fuzz/`); write the
//! seeds into `fuzz/corpus/<target>/` (kept between runs, not versioned); build every target;
//! run each for the time asked, printing its runs and execs/s. An input that fails is copied to
//! `fuzz/regressions/<target>/`, for version control, where `cargo test` replays it from then on.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Instant;

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::setup::setup;
use crate::steps::{Outcome, StepFailure, Steps};

/// Seconds per target for `cargo xtask fuzz`.
pub const DEFAULT_SECONDS: u64 = 60;

/// Seconds per target in `cargo xtask test`: enough to replay the corpus and explore a little,
/// short enough for CI (10 targets).
pub const TEST_SECONDS: u64 = 5;

/// The heading of the section `--write` puts into BENCHMARKS.md.
const HEADING: &str = "## Fuzzing";

/// A run of `cargo xtask fuzz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// One target, or all of them.
    pub target: Option<String>,
    /// Seconds per target.
    pub seconds: u64,
    /// Write the results into BENCHMARKS.md.
    pub write: bool,
}

/// How much of libFuzzer's output is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Output {
    /// Everything, as it comes (`cargo xtask fuzz`).
    Stream,
    /// Only on failure (`cargo xtask test`).
    OnFailure,
}

/// What one target's run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Run {
    target: String,
    seconds: u64,
    runs: u64,
    execs_per_second: u64,
    coverage: u64,
    corpus: u64,
    new_inputs: u64,
    /// The failing input, kept under `fuzz/regressions/`.
    failure: Option<String>,
}

/// `cargo xtask fuzz`.
///
/// # Errors
///
/// The step that failed: a target that found a failing input fails its step after copying
/// the input to `fuzz/regressions/<target>/`; the other targets still run, and `--write` still
/// records them.
pub fn fuzz(layout: &Layout, steps: &mut Steps, options: &Options) -> Result<(), StepFailure> {
    let env = setup(layout, steps)?;
    let started = Instant::now();
    let (runs, failed) = run_all(
        &env,
        layout,
        steps,
        options.target.as_deref(),
        options.seconds,
        Output::Stream,
    )?;
    println!("{}", table(&runs));
    if options.write {
        let command = match &options.target {
            Some(target) => format!(
                "cargo xtask fuzz {target} --seconds {} --write",
                options.seconds
            ),
            None => format!("cargo xtask fuzz --seconds {} --write", options.seconds),
        };
        steps.run("BENCHMARKS.md: fuzzing", || {
            let report = layout.root.join("BENCHMARKS.md");
            let section = section(&env, &command, &runs, started.elapsed().as_secs());
            write_section(&report, &section)?;
            Ok(format!("written to {}", report.display()))
        })?;
    }
    failed.map_or(Ok(()), Err)
}

/// The fuzzing steps of `cargo xtask test`: the native replay, then every target for
/// [`TEST_SECONDS`].
///
/// # Errors
///
/// The first step that failed (every target runs).
pub fn test(env: &Env, layout: &Layout, steps: &mut Steps) -> Result<(), StepFailure> {
    let (_, failed) = run_all(env, layout, steps, None, TEST_SECONDS, Output::OnFailure)?;
    failed.map_or(Ok(()), Err)
}

/// Replays, seeds, builds, then runs every target (or `only`): the runs, and the first target
/// that failed.
fn run_all(
    env: &Env,
    layout: &Layout,
    steps: &mut Steps,
    only: Option<&str>,
    seconds_each: u64,
    output: Output,
) -> Result<(Vec<Run>, Option<StepFailure>), StepFailure> {
    let fuzz_dir = fuzz_dir(layout);
    let manifest = fuzz_dir.join("Cargo.toml");
    let targets = match targets(&fuzz_dir) {
        Ok(targets) => targets,
        Err(error) => {
            return Err(StepFailure {
                step: "fuzz".into(),
                error,
            })
        }
    };
    if let Some(only) = only {
        if !targets.iter().any(|t| t == only) {
            return Err(StepFailure {
                step: "fuzz".into(),
                error: XtaskError::Usage(format!(
                    "no fuzz target `{only}` (there are {})",
                    targets.join(", ")
                )),
            });
        }
    }
    let targets: Vec<String> = targets
        .into_iter()
        .filter(|t| only.is_none_or(|only| t == only))
        .collect();

    // A regression input that fails again is reported at the end: the targets still run.
    let mut first_failure = steps
        .run("fuzz: regression inputs and seeds, natively", || {
            process::run(
                env.cargo()
                    .arg("test")
                    .arg("--manifest-path")
                    .arg(&manifest),
            )?;
            Ok(String::new())
        })
        .err();
    if let Some(failure) = &first_failure {
        report_now(failure);
    }
    steps.run("fuzz: seed corpora", || {
        process::run(
            env.cargo()
                .args(["run", "--quiet", "--manifest-path"])
                .arg(&manifest)
                .args(["--example", "seeds", "--"])
                .arg(fuzz_dir.join("corpus")),
        )?;
        Ok(String::new())
    })?;
    steps.run("fuzz: build (cargo fuzz build -s none)", || {
        let mut command = env.cargo();
        command.args(["fuzz", "build", "-s", "none"]);
        if let Some(only) = only {
            command.arg(only);
        }
        process::run(&mut command)?;
        Ok(format!("{} targets", targets.len()))
    })?;

    let mut runs = Vec::new();
    for target in &targets {
        let mut run = None;
        let result = steps.run(&format!("fuzz: {target}"), || {
            let (done, failure) = run_target(env, &fuzz_dir, target, seconds_each, output)?;
            let outcome = format!(
                "{} runs, {} exec/s, {} edges, corpus {}",
                thousands(done.runs),
                thousands(done.execs_per_second),
                thousands(done.coverage),
                thousands(done.corpus)
            );
            run = Some(done);
            failure.map_or(Ok(outcome), Err)
        });
        runs.extend(run);
        if let Err(failure) = result {
            report_now(&failure);
            first_failure = first_failure.or(Some(failure));
        }
    }
    Ok((runs, first_failure))
}

/// A target's failure, shown at once (the summary names only the first).
#[expect(
    clippy::print_stderr,
    reason = "xtask is a command-line tool: its errors belong on stderr"
)]
fn report_now(failure: &StepFailure) {
    eprintln!("error: {}: {}", failure.step, failure.error);
}

fn fuzz_dir(layout: &Layout) -> PathBuf {
    layout.root.join("fuzz")
}

/// The targets: the files in `fuzz/fuzz_targets/`, sorted.
fn targets(fuzz_dir: &Path) -> Result<Vec<String>, XtaskError> {
    let dir = fuzz_dir.join("fuzz_targets");
    let entries = std::fs::read_dir(&dir).map_err(|source| XtaskError::io("read", &dir, source))?;
    let mut targets: Vec<String> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "rs"))
        .filter_map(|path| path.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    targets.sort();
    Ok(targets)
}

/// `cargo fuzz run -s none TARGET fuzz/corpus/TARGET -- -max_total_time=N`, with libFuzzer's
/// final statistics read from its output, and the failure when it found a failing input.
fn run_target(
    env: &Env,
    fuzz_dir: &Path,
    target: &str,
    seconds_each: u64,
    output: Output,
) -> Result<(Run, Option<XtaskError>), XtaskError> {
    let corpus = fuzz_dir.join("corpus").join(target);
    let mut command = env.cargo();
    command
        // cargo-fuzz's own backtrace says nothing about the input; the target's panic does.
        .env("RUST_LIB_BACKTRACE", "0")
        .args(["fuzz", "run", "-s", "none", target])
        .arg(&corpus)
        .arg("--")
        .arg(format!("-max_total_time={seconds_each}"))
        // A single input taking this long is a failure too (a hang).
        .arg("-timeout=10")
        .arg("-print_final_stats=1");
    let dictionary = fuzz_dir.join("dictionaries").join(format!("{target}.dict"));
    if dictionary.is_file() {
        command.arg(format!("-dict={}", dictionary.display()));
    }
    let line = process::describe(&command);
    println!("    $ {line}");
    let (status, log) = run_logged(&mut command, output)?;
    let mut run = parse_stats(&log);
    run.target = target.to_owned();
    run.seconds = seconds_each;
    if status.success() {
        return Ok((run, None));
    }
    if output == Output::OnFailure {
        let tail: Vec<&str> = log.lines().rev().take(60).collect();
        for line in tail.iter().rev() {
            println!("    | {line}");
        }
    }
    let (error, kept) = failure(fuzz_dir, target, &log, line, status);
    run.failure = Some(kept.map_or_else(
        || "failed".to_owned(),
        |path| {
            let shown = path.strip_prefix(fuzz_dir.parent().unwrap_or(fuzz_dir));
            format!("failed: `{}`", shown.unwrap_or(&path).display())
        },
    ));
    Ok((run, Some(error)))
}

/// Runs `command`, its stderr (where libFuzzer reports) kept and, when streaming, shown.
fn run_logged(
    command: &mut std::process::Command,
    output: Output,
) -> Result<(std::process::ExitStatus, String), XtaskError> {
    if output == Output::OnFailure {
        command.stdout(Stdio::null());
    }
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| process::spawn_error(command, source))?;
    let mut kept = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        let mut buffer = [0_u8; 8192];
        let mut terminal = std::io::stderr();
        loop {
            match stderr.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let chunk = buffer.get(..read).unwrap_or_default();
                    if output == Output::Stream {
                        // Output for a person: losing it must not fail the run.
                        let _shown = terminal.write_all(chunk);
                    }
                    kept.extend_from_slice(chunk);
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|source| process::spawn_error(command, source))?;
    Ok((status, String::from_utf8_lossy(&kept).into_owned()))
}

/// The failure of a target, and its failing input copied to `fuzz/regressions/<target>/`.
fn failure(
    fuzz_dir: &Path,
    target: &str,
    log: &str,
    command: String,
    status: std::process::ExitStatus,
) -> (XtaskError, Option<PathBuf>) {
    let panic = log
        .lines()
        .skip_while(|line| !line.contains("panicked at"))
        .take(2)
        .collect::<Vec<_>>()
        .join(" ");
    let written = log
        .lines()
        .find_map(|line| {
            line.split_once("Test unit written to ")
                .map(|(_, p)| p.trim())
        })
        .map(PathBuf::from);
    let Some(input) = written else {
        return (XtaskError::Failed { command, status }, None);
    };
    let regressions = fuzz_dir.join("regressions").join(target);
    let kept = input
        .file_name()
        .map(|name| regressions.join(name))
        .filter(|copy| {
            std::fs::create_dir_all(&regressions).is_ok() && std::fs::copy(&input, copy).is_ok()
        });
    let error = XtaskError::Tool {
        tool: format!("fuzz target {target}"),
        problem: match &kept {
            Some(copy) => format!(
                "found a failing input: {panic}\n  kept as {} (commit it: `cargo test` in fuzz/ \
                 replays it); minimise it with `cargo fuzz tmin -s none {target} {}`",
                copy.display(),
                input.display()
            ),
            None => format!(
                "found a failing input: {panic}\n  written to {} (copy it to {})",
                input.display(),
                regressions.display()
            ),
        },
    };
    (error, kept)
}

/// libFuzzer's `-print_final_stats` lines and its last status line (`#N DONE cov: C ft: F
/// corp: K/…`).
fn parse_stats(log: &str) -> Run {
    let stat = |name: &str| {
        log.lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|rest| rest.trim_start_matches(':').trim().parse().ok())
            .unwrap_or(0)
    };
    let last_status = log
        .lines()
        .rev()
        .find(|line| line.starts_with('#') && line.contains(" cov: "))
        .unwrap_or("");
    let field = |name: &str| {
        last_status
            .split_whitespace()
            .skip_while(|word| *word != name)
            .nth(1)
            .and_then(|value| value.split('/').next())
            .and_then(|value| value.parse().ok())
            .unwrap_or(0)
    };
    Run {
        runs: stat("stat::number_of_executed_units"),
        execs_per_second: stat("stat::average_exec_per_sec"),
        new_inputs: stat("stat::new_units_added"),
        coverage: field("cov:"),
        corpus: field("corp:"),
        ..Run::default()
    }
}

/// `1234567` → `1,234,567`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table(runs: &[Run]) -> String {
    let mut text = String::from(
        "| target | seconds | runs | exec/s | coverage (edges) | corpus | new inputs | result |\n\
         |---|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for run in runs {
        text.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} | {} | {} |\n",
            run.target,
            run.seconds,
            thousands(run.runs),
            thousands(run.execs_per_second),
            thousands(run.coverage),
            thousands(run.corpus),
            thousands(run.new_inputs),
            run.failure.as_deref().unwrap_or("no failure")
        ));
    }
    text
}

/// The BENCHMARKS.md section for `runs`.
fn section(env: &Env, command: &str, runs: &[Run], took: u64) -> String {
    let first_line = |mut command: std::process::Command| {
        process::probe(&mut command)
            .and_then(|text| text.lines().next().map(str::to_owned))
            .unwrap_or_else(|| "?".into())
    };
    let mut rustc = env.command("rustc");
    rustc.arg("--version");
    let mut cargo_fuzz = env.cargo();
    cargo_fuzz.args(["fuzz", "--version"]);
    let mut git = env.command("git");
    git.args(["rev-parse", "--short", "HEAD"]);
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split_once(':'))
                .map(|(_, model)| model.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into());
    format!(
        "{HEADING}\n\n\
         Command: `{command}` (`xtask/src/fuzz.rs`: `cargo fuzz run -s none TARGET fuzz/corpus/TARGET \
         -- -max_total_time=N` per target, after `cargo fuzz build -s none`). Run on {date}: {cpu}, \
         {cores} cores (load average {load} at the end), {rustc}, {cargo_fuzz}, the tree at \
         commit {commit}; {took} s in all. Each target starts from its corpus in `fuzz/corpus/` \
         (the seeds, plus what earlier runs on this machine kept). `cargo xtask test` runs every \
         target for {TEST_SECONDS} s.\n\n\
         Runs and execs/s count every input tried, the oracles included (`fuzz/src/lib.rs`: \
         most targets parse, check and decide several times per input); coverage is the \
         edges libFuzzer saw, corpus the inputs it keeps.\n\n{}",
        table(runs),
        date = utc(std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())),
        rustc = first_line(rustc),
        cargo_fuzz = first_line(cargo_fuzz),
        commit = first_line(git),
    )
}

/// `2026-11-23 15:08 UTC` for seconds since the Unix epoch (Howard Hinnant's civil_from_days).
pub(crate) fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rest / 3600,
        rest % 3600 / 60
    )
}

/// Replaces the section of `file` that `section`'s first line heads (`## Fuzzing`, up to the
/// next `## `), or appends it.
pub(crate) fn write_section(file: &Path, section: &str) -> Result<Outcome, XtaskError> {
    let existing =
        std::fs::read_to_string(file).map_err(|source| XtaskError::io("read", file, source))?;
    let text = replace_section(&existing, section.trim_end());
    std::fs::write(file, text).map_err(|source| XtaskError::io("write", file, source))?;
    Ok(String::new())
}

fn replace_section(existing: &str, section: &str) -> String {
    let heading = section.lines().next().unwrap_or(HEADING).trim_end();
    let lines: Vec<&str> = existing.lines().collect();
    let Some(start) = lines.iter().position(|line| line.trim_end() == heading) else {
        return format!("{}\n\n{section}\n", existing.trim_end());
    };
    let end = lines
        .iter()
        .enumerate()
        .skip(start + 1)
        .find(|(_, line)| line.starts_with("## "))
        .map_or(lines.len(), |(index, _)| index);
    let mut text = lines.get(..start).unwrap_or_default().join("\n");
    if !text.is_empty() {
        text.push('\n');
    }
    text.push_str(section);
    text.push('\n');
    let rest = lines.get(end..).unwrap_or_default();
    if !rest.is_empty() {
        text.push('\n');
        text.push_str(&rest.join("\n"));
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::{parse_stats, replace_section, thousands, utc};

    #[test]
    fn reads_libfuzzers_final_statistics() {
        let log = "INFO: seed corpus: files: 12\n\
                   #4096\tpulse  cov: 900 ft: 1500 corp: 40/2Kb exec/s: 2048 rss: 40Mb\n\
                   #123456\tDONE   cov: 1234 ft: 2345 corp: 321/45Kb lim: 4096 exec/s: 20576 rss: 60Mb\n\
                   Done 123456 runs in 6 second(s)\n\
                   stat::number_of_executed_units: 123456\n\
                   stat::average_exec_per_sec:     20576\n\
                   stat::new_units_added:          17\n";
        let run = parse_stats(log);
        assert_eq!(run.runs, 123_456);
        assert_eq!(run.execs_per_second, 20_576);
        assert_eq!(run.new_inputs, 17);
        assert_eq!(run.coverage, 1234);
        assert_eq!(run.corpus, 321);
    }

    #[test]
    fn formats_numbers_and_dates() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_800_000_000), "2027-01-15 08:00 UTC");
    }

    #[test]
    fn the_section_is_replaced_in_place_or_appended() {
        let existing = "# B\n\n## A\n\nx\n\n## Fuzzing\n\nold\n\n## Later\n\ny\n";
        assert_eq!(
            replace_section(existing, "## Fuzzing\n\nnew"),
            "# B\n\n## A\n\nx\n\n## Fuzzing\n\nnew\n\n## Later\n\ny\n"
        );
        assert_eq!(
            replace_section("# B\n\nintro\n", "## Fuzzing\n\nnew"),
            "# B\n\nintro\n\n## Fuzzing\n\nnew\n"
        );
    }
}

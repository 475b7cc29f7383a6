//! What the benchmark runners (`edge-access-gateway-bench`, `scim-provision-bench`) share
//! when they write their sections of BENCHMARKS.md: where and when a run happened, the tree
//! it measured, and replacing one `## ` section of the file.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where and when a run happened.
#[derive(Debug)]
pub struct Environment {
    /// The command that reproduces the run.
    pub command: String,
    /// When it started ([`utc`]).
    pub date: String,
    /// The CPU model.
    pub cpu: String,
    /// Cores available to the run.
    pub cores: usize,
    /// The 1-minute load average at the start.
    pub load_start: String,
    /// The same at the end ([`Environment::finish`]).
    pub load_end: String,
    /// The npm `wrangler` version.
    pub wrangler: String,
    /// The npm `workerd` version.
    pub workerd: String,
    /// What was measured, in the runner's words (e.g. the commit).
    pub revision: String,
}

impl Environment {
    /// Observes the machine and the npm tools under `root` now.
    pub fn observe(root: &Path, command: &str, revision: String) -> Self {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|text| {
                text.lines()
                    .find(|line| line.starts_with("model name"))
                    .and_then(|line| line.split_once(':'))
                    .map(|(_, model)| model.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let version = |package: &str| {
            let file = root.join("node_modules").join(package).join("package.json");
            std::fs::read(&file)
                .ok()
                .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
                .and_then(|json| json.get("version")?.as_str().map(str::to_owned))
                .unwrap_or_else(|| "?".into())
        };
        Self {
            command: command.to_owned(),
            date: utc_now(),
            cpu,
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            load_start: load_average(),
            load_end: String::new(),
            wrangler: version("wrangler"),
            workerd: version("workerd"),
            revision,
        }
    }

    /// Records the load average at the end.
    pub fn finish(&mut self) {
        self.load_end = load_average();
    }
}

/// The checkout the benchmark runs in, found at run time.
///
/// # Errors
///
/// When there is none ([`workspace_root::find`]).
pub fn repository_root() -> Result<PathBuf, workspace_root::RootError> {
    workspace_root::find()
}

/// `git` in `root`, its standard output when it succeeds.
pub fn git(root: &Path, args: &[&str]) -> Option<String> {
    std::process::Command::new("git")
        .current_dir(root)
        .args(args)
        .output()
        .ok()
        .filter(|output| output.status.success())
        .map(|output| String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The short commit of `HEAD`, and the files under `paths` that differ from it (uncommitted).
pub fn commit_and_changes(root: &Path, paths: &[&str]) -> Option<(String, Vec<String>)> {
    let commit = git(root, &["rev-parse", "--short", "HEAD"])?;
    let mut args = vec!["status", "--porcelain", "--untracked-files=no", "--"];
    args.extend_from_slice(paths);
    let changed = git(root, &args).unwrap_or_default();
    // Porcelain lines are `XY path`: the status columns may start with a space.
    let files = changed
        .lines()
        .filter_map(|line| line.get(3..))
        .map(str::to_owned)
        .collect();
    Some((commit.trim().to_owned(), files))
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next().map(str::to_owned))
        .unwrap_or_else(|| "?".into())
}

/// Now, as [`utc`] writes it.
pub fn utc_now() -> String {
    utc(SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()))
}

/// `2026-11-23 15:08 UTC` for seconds since the Unix epoch.
pub fn utc(secs: u64) -> String {
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rest = secs % 86_400;
    // Howard Hinnant's civil_from_days.
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

/// Puts `section` (which starts with `heading`) into `file`: replaces the existing section up
/// to the next `## ` heading, appends it when absent, or creates the file with a one-line
/// introduction.
///
/// # Errors
///
/// When the file cannot be read or written.
pub fn write_section(file: &Path, heading: &str, section: &str) -> Result<(), String> {
    let section = section.trim_end();
    let text = match std::fs::read_to_string(file) {
        Ok(existing) => replace_section(&existing, heading, section),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => format!(
            "# Benchmarks\n\nMeasured numbers for edge-access, each section with the command \
             that reproduces it.\n\n{section}\n"
        ),
        Err(error) => return Err(format!("cannot read {}: {error}", file.display())),
    };
    std::fs::write(file, text).map_err(|e| format!("cannot write {}: {e}", file.display()))
}

fn replace_section(existing: &str, heading: &str, section: &str) -> String {
    let lines: Vec<&str> = existing.lines().collect();
    let Some(start) = lines.iter().position(|line| line.trim_end() == heading) else {
        let mut text = existing.trim_end().to_owned();
        text.push_str("\n\n");
        text.push_str(section);
        text.push('\n');
        return text;
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
    use super::*;

    #[test]
    fn sections_are_replaced_in_place_or_appended() {
        let heading = "## SCIM provisioning under workerd";
        let existing = "# B\n\nintro\n\n## Gateway under workerd\n\nx\n\n## SCIM provisioning under workerd\n\nold\n\n## Later\n\ny\n";
        assert_eq!(
            replace_section(existing, heading, "## SCIM provisioning under workerd\n\nnew"),
            "# B\n\nintro\n\n## Gateway under workerd\n\nx\n\n## SCIM provisioning under workerd\n\nnew\n\n## Later\n\ny\n"
        );
        assert_eq!(
            replace_section(
                "# B\n\nintro\n",
                heading,
                "## SCIM provisioning under workerd\n\nnew"
            ),
            "# B\n\nintro\n\n## SCIM provisioning under workerd\n\nnew\n"
        );
    }

    #[test]
    fn dates_are_utc() {
        assert_eq!(utc(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc(1_795_446_480), "2026-11-23 15:08 UTC");
    }
}

/// The arguments every runner takes: where to write its section, and the command that
/// reproduces the run.
#[derive(Debug, Clone)]
pub struct Common {
    /// `--write FILE`: the file whose section the run replaces.
    pub write: Option<PathBuf>,
    /// `--command TEXT`: the command the section names.
    pub command: String,
}

/// `value` as a positive number for argument `name`.
///
/// # Errors
/// A missing or non-positive value, naming the argument (with `usage` when missing).
pub fn positive(value: Option<&String>, name: &str, usage: &str) -> Result<usize, String> {
    let value = value.ok_or_else(|| format!("{name} needs a number\n{usage}"))?;
    value
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("{name}: `{value}` is not a positive number"))
}

/// Reads `args`: `--write FILE`, `--command TEXT` and `-h` here, every other argument by
/// `own(argument, the rest)`, which answers whether it took it.
///
/// # Errors
/// An argument nobody takes, a missing value, `-h` (the usage), or `own`'s error.
pub fn parse_args(
    args: &[String],
    usage: &str,
    default_command: &str,
    mut own: impl FnMut(&str, &mut std::slice::Iter<'_, String>) -> Result<bool, String>,
) -> Result<Common, String> {
    let mut common = Common {
        write: None,
        command: default_command.to_owned(),
    };
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write" => common.write = Some(PathBuf::from(args.next().ok_or(usage)?)),
            "--command" => common.command = args.next().ok_or(usage)?.clone(),
            "-h" | "--help" => return Err(usage.into()),
            other => {
                if !own(other, &mut args)? {
                    return Err(format!("unknown argument `{other}`\n{usage}"));
                }
            }
        }
    }
    Ok(common)
}

/// The `main` of a runner that owns the `heading` section of BENCHMARKS.md: `run` reads the
/// arguments and measures, answering the section's markdown and where to write it; the
/// section is printed and written, an error reported as `{name}: {error}`.
pub fn section_main(
    name: &str,
    heading: &str,
    run: impl FnOnce(&[String]) -> Result<(String, Option<PathBuf>), String>,
) -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = run(&args).and_then(|(markdown, write)| {
        println!("{markdown}");
        if let Some(file) = &write {
            write_section(file, heading, &markdown)?;
            println!("wrote the \"{heading}\" section of {}", file.display());
        }
        Ok(())
    });
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            #[expect(clippy::print_stderr, reason = "a runner reports its error on stderr")]
            {
                eprintln!("{name}: {error}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// `d` in milliseconds.
pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// `n` as a float (counts far below 2^52).
#[expect(
    clippy::cast_precision_loss,
    reason = "request counts are far below 2^52"
)]
pub fn count_f64(n: usize) -> f64 {
    n as f64
}

/// The `q` quantile (0 to 1) of an ascending list, the nearest rank; NaN for an empty list.
#[expect(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    reason = "an index into a sorted list, rounded"
)]
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let last = sorted.len().saturating_sub(1);
    let index = (count_f64(last) * q).round() as usize;
    sorted.get(index.min(last)).copied().unwrap_or(f64::NAN)
}

/// `durations` in milliseconds, ascending.
pub fn sorted_ms(durations: impl Iterator<Item = Duration>) -> Vec<f64> {
    let mut list: Vec<f64> = durations.map(ms).collect();
    list.sort_by(f64::total_cmp);
    list
}

#[cfg(test)]
mod quantile_tests {
    use super::quantile;

    #[test]
    fn quantiles_of_sorted_lists() {
        assert!((quantile(&[1.0, 2.0, 3.0], 0.5) - 2.0).abs() < f64::EPSILON);
        assert!((quantile(&[1.0, 2.0, 3.0], 1.0) - 3.0).abs() < f64::EPSILON);
        assert!(quantile(&[], 0.5).is_nan());
    }
}

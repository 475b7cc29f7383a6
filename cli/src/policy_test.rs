//! `edge-access policy test`: finds policy test files, runs their cases against their documents
//! and reports like `cargo test`, or as JSON or JUnit XML for CI.
//!
//! A path is a test file, a directory (searched recursively, `target`, `node_modules` and hidden
//! directories skipped) or a glob (`policies/**/*.test.yaml`). In a directory, the `.json`,
//! `.yaml` and `.yml` files that have `cases` or `expect_load_errors` at the top are test files;
//! the others (the configuration documents themselves) are skipped. A file named on the command
//! line must be a test file. `config` and `directory` paths in a test file are relative to it.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use policy_core::suite::{self, CaseResult, DocumentSource, Expects, TestFile};
use policy_core::{Engine, Options};
use serde_json::{json, Value};

use crate::{load_directory, load_errors, write_out, CliError};

#[derive(Debug, clap::Args)]
pub(crate) struct TestArgs {
    /// Test files, directories or globs (default: the current directory).
    #[arg(value_name = "PATH")]
    paths: Vec<String>,
    /// How to report.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    format: Format,
    /// Run only the cases whose `file / name` contains this text.
    #[arg(long, value_name = "TEXT")]
    filter: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Format {
    Human,
    Json,
    Junit,
}

/// A test file that does not load, or whose document does not.
struct FileError {
    file: String,
    message: String,
}

/// One file's results.
struct FileReport {
    file: String,
    description: Option<String>,
    cases: Vec<CaseResult>,
}

pub(crate) fn run(args: &TestArgs, color: bool, out: &mut impl Write) -> Result<(), CliError> {
    let started = Instant::now();
    let roots = if args.paths.is_empty() {
        vec![".".to_owned()]
    } else {
        args.paths.clone()
    };
    let files = discover(&roots)?;
    if files.is_empty() {
        return Err(CliError::Load(format!(
            "no policy test files in {}",
            roots.join(", ")
        )));
    }
    let mut reports = Vec::new();
    let mut errors = Vec::new();
    // One compiled engine per document and directory, shared by the files that name them.
    let mut engines: HashMap<(PathBuf, Option<PathBuf>), Result<Engine, String>> = HashMap::new();
    for file in &files {
        match run_file(file, args.filter.as_deref(), &mut engines) {
            Ok(report) => reports.push(report),
            Err(message) => errors.push(FileError {
                file: file.display().to_string(),
                message,
            }),
        }
    }
    let passed = reports
        .iter()
        .flat_map(|r| &r.cases)
        .filter(|c| c.passed())
        .count();
    let failed = reports
        .iter()
        .flat_map(|r| &r.cases)
        .filter(|c| !c.passed())
        .count();
    let seconds = started.elapsed().as_secs_f64();
    let text = match args.format {
        Format::Human => human(&reports, &errors, passed, failed, seconds, color),
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&json_report(
                &reports, &errors, passed, failed, seconds,
            ))
            .unwrap_or_default();
            text.push('\n');
            text
        }
        Format::Junit => junit(&reports, &errors, seconds),
    };
    write_out(out, &text)?;
    if !errors.is_empty() {
        return Err(CliError::Load(format!(
            "test files that do not load: {}",
            errors.len()
        )));
    }
    if failed > 0 {
        return Err(CliError::No(None));
    }
    Ok(())
}

/// The test files under `roots`, in a stable order.
fn discover(roots: &[String]) -> Result<Vec<PathBuf>, CliError> {
    let mut files = Vec::new();
    for root in roots {
        if root.contains(['*', '?', '[']) {
            let (base, pattern) = glob_base(root);
            let mut found = Vec::new();
            walk(Path::new(&base), &mut found);
            files.extend(found.into_iter().filter(|f| {
                glob_matches(&pattern, &f.to_string_lossy().replace('\\', "/")) && is_test_file(f)
            }));
            continue;
        }
        let path = Path::new(root);
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found);
            files.extend(found.into_iter().filter(|f| is_test_file(f)));
        } else if path.is_file() {
            files.push(path.to_path_buf());
        } else {
            return Err(CliError::Load(format!(
                "`{root}`: no such file or directory"
            )));
        }
    }
    files.sort();
    files.dedup();
    Ok(files)
}

/// The directory to walk for a glob (its part before the first wildcard), and the pattern.
fn glob_base(glob: &str) -> (String, String) {
    let glob = glob.replace('\\', "/");
    let wild = glob.find(['*', '?', '[']).unwrap_or(glob.len());
    let base = match glob.get(..wild).and_then(|b| b.rfind('/')) {
        Some(slash) => glob.get(..slash).unwrap_or(".").to_owned(),
        None => ".".to_owned(),
    };
    let pattern = if base == "." && !glob.starts_with("./") {
        format!("./{glob}")
    } else {
        glob
    };
    (if base.is_empty() { "/".into() } else { base }, pattern)
}

/// `*` matches within a path segment, `**` across segments, `?` one character.
fn glob_matches(pattern: &str, path: &str) -> bool {
    fn go(p: &[u8], s: &[u8]) -> bool {
        let rest_of = |i: usize| s.get(i..).unwrap_or_default();
        match p {
            [] => s.is_empty(),
            [b'*', b'*', b'/', rest @ ..] => {
                go(rest, s)
                    || s.iter()
                        .enumerate()
                        .any(|(i, &c)| c == b'/' && go(rest, rest_of(i + 1)))
            }
            [b'*', b'*', rest @ ..] => (0..=s.len()).any(|i| go(rest, rest_of(i))),
            [b'*', rest @ ..] => {
                let segment = s.iter().position(|&c| c == b'/').unwrap_or(s.len());
                (0..=segment).any(|i| go(rest, rest_of(i)))
            }
            [b'?', rest @ ..] => matches!(s, [c, tail @ ..] if *c != b'/' && go(rest, tail)),
            [c, rest @ ..] => matches!(s, [d, tail @ ..] if d == c && go(rest, tail)),
        }
    }
    go(pattern.as_bytes(), path.as_bytes())
}

fn walk(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                walk(&path, found);
            }
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("json" | "yaml" | "yml")
        ) {
            found.push(path);
        }
    }
}

/// Whether a found file is a test file: a JSON or YAML object with `cases` or
/// `expect_load_errors`.
fn is_test_file(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    to_json(path, &text).is_ok_and(|json| {
        serde_json::from_str::<Value>(&json)
            .ok()
            .and_then(|v| v.as_object().cloned())
            .is_some_and(|o| o.contains_key("cases") || o.contains_key("expect_load_errors"))
    })
}

/// The file's text as JSON (YAML is converted; JSON is kept as written, so the engine's strict
/// parser still sees duplicate keys).
fn to_json(path: &Path, text: &str) -> Result<String, String> {
    match path.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => {
            let value: Value =
                serde_yaml::from_str(text).map_err(|e| format!("invalid YAML: {e}"))?;
            serde_json::to_string(&value).map_err(|e| e.to_string())
        }
        _ => Ok(text.to_owned()),
    }
}

fn run_file(
    path: &Path,
    filter: Option<&str>,
    engines: &mut HashMap<(PathBuf, Option<PathBuf>), Result<Engine, String>>,
) -> Result<FileReport, String> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let json = to_json(path, &text)?;
    let file = TestFile::from_json(&json).map_err(|e| {
        // Positions are meaningful in the text the user wrote only for JSON files.
        let original = if json == text { text.as_str() } else { "" };
        load_errors(&shown, original, &e)
    })?;
    let dir = path.parent().unwrap_or(Path::new("."));
    let directory = file.directory.as_ref().map(|d| dir.join(d));
    let options = match &directory {
        Some(d) => load_directory(Some(&d.to_string_lossy())).map_err(|e| match e {
            CliError::Load(m) | CliError::No(Some(m)) | CliError::Usage(m) => m,
            CliError::No(None) => "directory does not load".into(),
        })?,
        None => Options::default(),
    };
    let loaded_here;
    let engine: Result<&Engine, String> = match &file.document {
        DocumentSource::Inline(document) => {
            loaded_here = Engine::from_json_with(document, &options)
                .map_err(|e| load_errors(&format!("{shown} (document)"), document, &e));
            loaded_here.as_ref().map_err(Clone::clone)
        }
        DocumentSource::Path(config) => {
            let config = dir.join(config);
            let key = (config.clone(), directory.clone());
            engines
                .entry(key)
                .or_insert_with(|| {
                    let shown = config.display().to_string();
                    let text = std::fs::read_to_string(&config)
                        .map_err(|e| format!("cannot read `{shown}`: {e}"))?;
                    Engine::from_json_with(&text, &options)
                        .map_err(|e| load_errors(&shown, &text, &e))
                })
                .as_ref()
                .map_err(Clone::clone)
        }
        _ => Err("unknown document source".into()),
    };
    let mut cases = Vec::new();
    match &file.expects {
        Expects::LoadErrors(expected) => {
            let name = "the document does not load".to_owned();
            let failures = match &engine {
                Ok(engine) => suite::check_load_errors(Ok(*engine), expected),
                Err(_) => {
                    // Recompile to get the typed errors back.
                    let errors = match &file.document {
                        DocumentSource::Inline(d) => Engine::from_json_with(d, &options).err(),
                        DocumentSource::Path(c) => std::fs::read_to_string(dir.join(c))
                            .ok()
                            .and_then(|t| Engine::from_json_with(&t, &options).err()),
                        _ => None,
                    };
                    match errors {
                        Some(errors) => suite::check_load_errors(Err(&errors), expected),
                        None => vec!["the document cannot be read".into()],
                    }
                }
            };
            cases.push(case_result(name, failures));
        }
        Expects::Cases(list) => {
            let engine = engine?;
            for case in list {
                let full = format!("{shown} / {}", case.name);
                if filter.is_some_and(|f| !full.contains(f)) {
                    continue;
                }
                cases.push(suite::run_case(engine, case));
            }
            if !file.hosts.is_empty() && filter.is_none() {
                let failures = suite::check_hosts(engine, &file.hosts);
                cases.push(case_result("the apps on each host".to_owned(), failures));
            }
        }
        _ => return Err("unknown expectations".into()),
    }
    Ok(FileReport {
        file: shown,
        description: file.description.clone(),
        cases,
    })
}

fn case_result(name: String, failures: Vec<String>) -> CaseResult {
    CaseResult::new(name, failures, None)
}

fn human(
    reports: &[FileReport],
    errors: &[FileError],
    passed: usize,
    failed: usize,
    seconds: f64,
    color: bool,
) -> String {
    let paint = |text: &str, code: &str| {
        if color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    };
    let mut text = String::new();
    let total: usize = reports.iter().map(|r| r.cases.len()).sum();
    let _ = writeln!(
        text,
        "running {total} cases from {} files\n",
        reports.len() + errors.len()
    );
    for report in reports {
        for case in &report.cases {
            let status = if case.passed() {
                paint("ok", "32")
            } else {
                paint("FAILED", "31")
            };
            let _ = writeln!(text, "test {} / {} ... {status}", report.file, case.name);
        }
    }
    let failing: Vec<(&FileReport, &CaseResult)> = reports
        .iter()
        .flat_map(|r| r.cases.iter().map(move |c| (r, c)))
        .filter(|(_, c)| !c.passed())
        .collect();
    if !failing.is_empty() || !errors.is_empty() {
        let _ = writeln!(text, "\nfailures:");
    }
    for (report, case) in &failing {
        let _ = writeln!(text, "\n---- {} / {} ----", report.file, case.name);
        for failure in &case.failures {
            let _ = writeln!(text, "  {failure}");
        }
        if let Some(verdict) = &case.verdict {
            let _ = writeln!(text, "  trace:");
            for (i, line) in verdict.trace.iter().enumerate() {
                let _ = writeln!(text, "    {}. {line}", i + 1);
            }
        }
    }
    for error in errors {
        let _ = writeln!(
            text,
            "\n---- {} does not load ----\n  {}",
            error.file, error.message
        );
    }
    let result = if failed == 0 && errors.is_empty() {
        paint("ok", "32")
    } else {
        paint("FAILED", "31")
    };
    let _ = writeln!(
        text,
        "\ntest result: {result}. {passed} passed, {failed} failed, {} files not loaded; finished in {seconds:.2}s",
        errors.len()
    );
    text
}

fn json_report(
    reports: &[FileReport],
    errors: &[FileError],
    passed: usize,
    failed: usize,
    seconds: f64,
) -> Value {
    json!({
        "passed": passed,
        "failed": failed,
        "seconds": seconds,
        "files": reports.iter().map(|r| json!({
            "file": r.file,
            "description": r.description,
            "cases": r.cases.iter().map(|c| json!({
                "name": c.name,
                "passed": c.passed(),
                "failures": c.failures,
                "verdict": c.verdict.as_ref().map(policy_core::Verdict::to_value),
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "errors": errors.iter().map(|e| json!({ "file": e.file, "message": e.message }))
            .collect::<Vec<_>>(),
    })
}

fn junit(reports: &[FileReport], errors: &[FileError], seconds: f64) -> String {
    let mut text = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let tests: usize = reports.iter().map(|r| r.cases.len()).sum::<usize>() + errors.len();
    let failures: usize = reports
        .iter()
        .flat_map(|r| &r.cases)
        .filter(|c| !c.passed())
        .count();
    let _ = writeln!(
        text,
        "<testsuites name=\"edge-access policy test\" tests=\"{tests}\" failures=\"{failures}\" errors=\"{}\" time=\"{seconds:.3}\">",
        errors.len()
    );
    for report in reports {
        let failed = report.cases.iter().filter(|c| !c.passed()).count();
        let _ = writeln!(
            text,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{failed}\">",
            xml(&report.file),
            report.cases.len()
        );
        for case in &report.cases {
            let _ = write!(
                text,
                "    <testcase classname=\"{}\" name=\"{}\"",
                xml(&report.file),
                xml(&case.name)
            );
            if case.passed() {
                let _ = writeln!(text, "/>");
                continue;
            }
            let mut body = case.failures.join("\n");
            if let Some(verdict) = &case.verdict {
                body.push_str("\ntrace:\n");
                body.push_str(&verdict.trace.join("\n"));
            }
            let _ = writeln!(
                text,
                ">\n      <failure message=\"{}\">{}</failure>\n    </testcase>",
                xml(case.failures.first().map_or("", String::as_str)),
                xml(&body)
            );
        }
        let _ = writeln!(text, "  </testsuite>");
    }
    for error in errors {
        let _ = writeln!(
            text,
            "  <testsuite name=\"{0}\" tests=\"1\" errors=\"1\">\n    <testcase classname=\"{0}\" name=\"loads\">\n      <error message=\"does not load\">{1}</error>\n    </testcase>\n  </testsuite>",
            xml(&error.file),
            xml(&error.message)
        );
    }
    text.push_str("</testsuites>\n");
    text
}

fn xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if c.is_control() && c != '\n' && c != '\t' => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_matches(
            "./policies/**/*.test.yaml",
            "./policies/a/b/x.test.yaml"
        ));
        assert!(glob_matches(
            "./policies/**/*.test.yaml",
            "./policies/x.test.yaml"
        ));
        assert!(!glob_matches(
            "./policies/*.test.yaml",
            "./policies/a/x.test.yaml"
        ));
        assert!(glob_matches("tests/v?.json", "tests/v1.json"));
        assert!(!glob_matches("tests/v?.json", "tests/v12.json"));
        assert_eq!(
            glob_base("policies/**/*.json"),
            ("policies".into(), "policies/**/*.json".into())
        );
        assert_eq!(glob_base("*.json"), (".".into(), "./*.json".into()));
    }

    #[test]
    fn xml_escapes() {
        assert_eq!(xml("a<b & \"c\"\u{1}"), "a&lt;b &amp; &quot;c&quot;");
    }
}

//! Runs policy test files — the format of `edge-access policy test` — that were embedded at
//! build time with `include_dir!`, so the same tests run natively, in Node and in a browser:
//! nothing reads a file system.
//!
//! A test file is a `.json` file with `cases` (or `expect_load_errors`) at the top; its
//! `config` is a path relative to it inside the embedded folder, or it carries its `document`
//! inline. Cases are checked by `policy_core::suite`, the checker the CLI uses.

use std::path::{Component, Path, PathBuf};

use include_dir::{Dir, File};
use policy_core::suite::{self, DocumentSource, Expects, TestFile};
use policy_core::Engine;

/// How the test files in a folder went.
#[derive(Debug, Default)]
pub struct Report {
    /// Test files found.
    pub files: usize,
    /// Cases (and expected-load-error files) that passed.
    pub passed: usize,
    /// What failed, each with the file, the case, what differed and the verdict's trace.
    pub failures: Vec<String>,
    /// One line per case, like `cargo test`: `test wiki.test.json / staff … ok`.
    pub lines: Vec<String>,
}

impl Report {
    /// The summary line: `N passed, M failed; F files`.
    pub fn summary(&self) -> String {
        format!(
            "{} passed, {} failed; {} files",
            self.passed,
            self.failures.len(),
            self.files
        )
    }

    /// Panics with every failure unless all passed and there was something to run.
    ///
    /// # Panics
    ///
    /// When a case failed, a file did not load, or no test file was found.
    pub fn assert_passed(&self) {
        assert!(self.files > 0, "no policy test files found");
        assert!(
            self.failures.is_empty(),
            "{}\n\n{}",
            self.summary(),
            self.failures.join("\n\n")
        );
    }
}

/// Runs every test file under `dir` (recursively, in path order).
pub fn run(dir: &Dir<'_>) -> Report {
    let mut files = Vec::new();
    collect(dir, &mut files);
    files.sort_by_key(|file| file.path());
    let mut report = Report::default();
    for file in files {
        if is_test_file(file) {
            report.files += 1;
            run_file(dir, file, &mut report);
        }
    }
    report
}

fn collect<'a>(dir: &Dir<'a>, out: &mut Vec<&'a File<'a>>) {
    out.extend(dir.files());
    for sub in dir.dirs() {
        collect(sub, out);
    }
}

/// A `.json` object with `cases` or `expect_load_errors`, as the CLI finds test files.
fn is_test_file(file: &File<'_>) -> bool {
    if file.path().extension().is_none_or(|e| e != "json") {
        return false;
    }
    let value: Option<serde_json::Value> = file
        .contents_utf8()
        .and_then(|text| serde_json::from_str(text).ok());
    value
        .as_ref()
        .and_then(serde_json::Value::as_object)
        .is_some_and(|o| o.contains_key("cases") || o.contains_key("expect_load_errors"))
}

fn run_file(root: &Dir<'_>, file: &File<'_>, report: &mut Report) {
    let name = file.path().display().to_string();
    let fail = |report: &mut Report, what: String| {
        report.lines.push(format!("test {name} ... FAILED"));
        report.failures.push(format!("{name}: {what}"));
    };
    let Some(text) = file.contents_utf8() else {
        return fail(report, "not UTF-8".into());
    };
    let test_file = match TestFile::from_json(text) {
        Ok(test_file) => test_file,
        Err(errors) => return fail(report, format!("not a policy test file:\n  {errors}")),
    };
    if test_file.directory.is_some() {
        return fail(
            report,
            "`directory` (a SCIM export) is read by `edge-access policy test` only; \
             put the groups in the document's `directory` instead"
                .into(),
        );
    }
    let document = match &test_file.document {
        DocumentSource::Inline(document) => document.clone(),
        DocumentSource::Path(path) => match document_at(root, file.path(), path) {
            Ok(document) => document,
            Err(problem) => return fail(report, problem),
        },
        _ => return fail(report, "unknown document source".into()),
    };
    let loaded = Engine::from_json(&document);
    let cases = match &test_file.expects {
        Expects::LoadErrors(expected) => {
            let failures = suite::check_load_errors(loaded.as_ref(), expected);
            if failures.is_empty() {
                report.passed += 1;
                report
                    .lines
                    .push(format!("test {name} (load errors) ... ok"));
            } else {
                fail(report, failures.join("\n"));
            }
            return;
        }
        Expects::Cases(cases) => cases,
        _ => return fail(report, "unknown expectations".into()),
    };
    let engine = match loaded {
        Ok(engine) => engine,
        Err(errors) => return fail(report, format!("the document does not load:\n  {errors}")),
    };
    for case in cases {
        let result = suite::run_case(&engine, case);
        if result.passed() {
            report.passed += 1;
            report
                .lines
                .push(format!("test {name} / {} ... ok", case.name));
            continue;
        }
        let trace = result
            .verdict
            .as_ref()
            .map(|v| v.trace.join("\n    "))
            .unwrap_or_default();
        report
            .lines
            .push(format!("test {name} / {} ... FAILED", case.name));
        report.failures.push(format!(
            "{name} / {}: {}\n  trace:\n    {trace}",
            case.name,
            result.failures.join("; ")
        ));
    }
}

/// The text of `path`, relative to the test file at `from`, inside the embedded folder.
fn document_at(root: &Dir<'_>, from: &Path, path: &str) -> Result<String, String> {
    let mut resolved = PathBuf::new();
    let base = from.parent().unwrap_or(Path::new(""));
    for component in base.join(path).components() {
        match component {
            Component::Normal(part) => resolved.push(part),
            Component::CurDir => {}
            Component::ParentDir if resolved.pop() => {}
            _ => return Err(format!("config `{path}` is outside the embedded folder")),
        }
    }
    let file = root
        .get_file(&resolved)
        .ok_or_else(|| format!("config `{path}` is not in the embedded folder"))?;
    file.contents_utf8()
        .map(str::to_owned)
        .ok_or_else(|| format!("config `{path}` is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use include_dir::{Dir, DirEntry, File};
    use wasm_bindgen_test::wasm_bindgen_test;

    const ACCESS: &str = r#"{ "team_domain": "https://access.example.com",
      "apps": [{ "id": "wiki", "name": "Wiki", "domain": "wiki.example.com", "aud": "a",
        "policies": [{ "id": "staff", "name": "Staff", "decision": "allow",
                       "include": [{ "email_domain": { "domain": "example.com" } }] }] }] }"#;
    const WRONG: &str = r#"{ "config": "../access.json", "cases": [
      { "name": "ada is allowed", "request": { "app": "wiki.example.com/", "identity": { "email": "ada@example.com" } },
        "expect": { "outcome": "allow", "policy": "staff" } },
      { "name": "eve is allowed too", "request": { "app": "wiki.example.com/", "identity": { "email": "eve@evil.example" } },
        "expect": { "outcome": "allow" } } ] }"#;
    const OUTSIDE: &str = r#"{ "config": "../../access.json", "cases": [
      { "name": "x", "request": { "app": "wiki.example.com/" }, "expect": { "outcome": "allow" } } ] }"#;
    const SUB: &[DirEntry<'static>] = &[
        DirEntry::File(File::new("sub/wrong.test.json", WRONG.as_bytes())),
        DirEntry::File(File::new("sub/outside.test.json", OUTSIDE.as_bytes())),
    ];
    const ENTRIES: &[DirEntry<'static>] = &[
        DirEntry::File(File::new("access.json", ACCESS.as_bytes())),
        DirEntry::Dir(Dir::new("sub", SUB)),
    ];
    static FOLDER: Dir<'static> = Dir::new("", ENTRIES);

    /// The runner must fail a case that fails, with the trace, and keep going.
    #[wasm_bindgen_test(unsupported = test)]
    fn reports_a_failing_case_with_its_trace() {
        let report = super::run(&FOLDER);
        assert_eq!(report.files, 2, "{report:?}");
        assert_eq!(report.passed, 1, "{report:?}");
        assert_eq!(report.failures.len(), 2, "{report:?}");
        let failed = &report.failures[1];
        assert!(failed.starts_with("sub/wrong.test.json / eve is allowed too: outcome `default_deny`, expected `allow`"), "{failed}");
        assert!(failed.contains("trace:"), "{failed}");
        assert!(
            report.failures[0].contains("outside the embedded folder"),
            "{}",
            report.failures[0]
        );
    }
}

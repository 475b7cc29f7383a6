//! Fuzz targets for every parser of untrusted input in edge-access, each with an oracle beyond
//! "does not panic" where one exists:
//!
//! | target | parser | oracle |
//! |---|---|---|
//! | `policy_document` | `Engine::from_json` (+ a request after a NUL byte) | `decide()` and `evaluate()` agree, for the request and for requests to every app |
//! | `request` | `Request::from_json` | written back as JSON it parses to the same request; `decide()` = `evaluate()` |
//! | `target` | `Target::parse`, routing | its display parses to the same target; `decide()` = `evaluate()` = `app_for` |
//! | `entra_token` | `UnverifiedEntraToken::parse`, `verify`, identity mapping | a verified token meets every rule when re-checked naively; a bad signature never verifies |
//! | `app_token` | `UnverifiedAppToken::parse`, `verify` | its claims, signed again, parse and verify to the same claims |
//! | `jwks` | `Jwks::parse` | the keys kept, written back, parse to the same keys |
//! | `scim_filter` | `Filter::parse`, `conditions` | written back, the filter parses to the same filter |
//! | `scim_path` | `AttrPath::parse` | written back, the path parses to the same path |
//! | `scim_patch` | `PatchRequest::parse`, `split_members`, `apply` | all or nothing; an accepted result checks again to the same record; member ids folded and unique |
//! | `scim_resource` | `UserRecord` / `GroupRecord::from_body` | what is stored checks again to the same record |
//!
//! Each target is a function of the input bytes that panics when an oracle fails. Under
//! `cargo fuzz` (`--cfg fuzzing`) [`fuzz_target!`] makes it a libFuzzer target; natively it is a
//! program that replays the files it is given, and `cargo test` replays every regression input
//! (`regressions/<target>/`) and seed (`seeds/<target>/`, [`seeds`]) through it.
//!
//! Design choice: panicking is how a fuzz target reports, so this crate asserts freely; it is
//! its own workspace and never part of the product.

pub mod policy;
pub mod scim;
pub mod seeds;
pub mod token;

use std::path::{Path, PathBuf};

/// A fuzz target: a function of the input that panics when an oracle fails.
pub type Target = fn(&[u8]);

/// Every target: its name (the `[[bin]]` and the folders under `regressions/`, `seeds/` and
/// `corpus/`) and its function.
pub const TARGETS: &[(&str, Target)] = &[
    ("policy_document", policy::policy_document),
    ("request", policy::request),
    ("target", policy::target),
    ("entra_token", token::entra_token),
    ("app_token", token::app_token),
    ("jwks", token::jwks),
    ("scim_filter", scim::scim_filter),
    ("scim_path", scim::scim_path),
    ("scim_patch", scim::scim_patch),
    ("scim_resource", scim::scim_resource),
];

/// The body of a file in `fuzz_targets/`: a libFuzzer target under `cargo fuzz`, a program
/// that replays its arguments (files or folders of inputs) natively.
#[macro_export]
macro_rules! fuzz_target {
    ($run:path) => {
        #[cfg(fuzzing)]
        libfuzzer_sys::fuzz_target!(|data: &[u8]| $run(data));

        #[cfg(not(fuzzing))]
        fn main() -> std::process::ExitCode {
            $crate::replay_main($run)
        }
    };
}

/// The fuzz crate's folder (`fuzz/`).
pub fn fuzz_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The repository root.
pub fn repository_root() -> PathBuf {
    fuzz_dir().join("..")
}

/// An input that made a target panic.
#[derive(Debug)]
pub struct Failure {
    /// Where the input came from.
    pub input: String,
    /// The panic message.
    pub message: String,
}

/// Runs `target` on `data`, catching a panic.
///
/// # Errors
/// The panic's message.
pub fn run_caught(target: Target, data: &[u8]) -> Result<(), String> {
    std::panic::catch_unwind(|| target(data)).map_err(|payload| {
        payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
            .unwrap_or_else(|| "panic without a message".into())
    })
}

/// The files directly in `dir`, sorted (none when it does not exist).
pub fn files_in(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.is_file())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    files
}

/// Runs `target` on every file in `paths` (a folder stands for the files in it).
///
/// # Errors
/// Every input that made it panic, or could not be read.
pub fn replay(target: Target, paths: &[PathBuf]) -> Result<usize, Vec<Failure>> {
    let mut failures = Vec::new();
    let mut count = 0;
    for path in paths {
        let files = if path.is_dir() {
            files_in(path)
        } else {
            vec![path.clone()]
        };
        for file in files {
            count += 1;
            let outcome = std::fs::read(&file)
                .map_err(|e| format!("cannot read: {e}"))
                .and_then(|data| run_caught(target, &data));
            if let Err(message) = outcome {
                failures.push(Failure {
                    input: file.display().to_string(),
                    message,
                });
            }
        }
    }
    if failures.is_empty() {
        Ok(count)
    } else {
        Err(failures)
    }
}

/// `main` of a target built natively: replays the files and folders named on the command line.
pub fn replay_main(target: Target) -> std::process::ExitCode {
    let paths: Vec<PathBuf> = std::env::args_os().skip(1).map(PathBuf::from).collect();
    if paths.is_empty() {
        println!("usage: TARGET FILE|FOLDER… (replays inputs; `cargo fuzz run` fuzzes)");
        return std::process::ExitCode::from(2);
    }
    match replay(target, &paths) {
        Ok(count) => {
            println!("{count} inputs replayed, none failed");
            std::process::ExitCode::SUCCESS
        }
        Err(failures) => {
            for failure in &failures {
                println!("FAILED {}: {}", failure.input, failure.message);
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Polls a future that never waits (the signature checks here answer at once) to its end.
///
/// # Panics
/// When the future is still pending after one poll.
pub fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => panic!("a signature check that answers at once is pending"),
    }
}

/// `data` as text, when it is UTF-8 (the parsers here take `&str`; the gateway hands them text).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

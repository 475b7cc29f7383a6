//! `edge-access`: the offline policy tester, for people and for CI pipelines that keep Access
//! policies as code, and token tools.
//!
//! Exit codes (stable, for scripts):
//! - 0: done, and the answer is yes (the document loads, the tests pass, the request is let
//!   through);
//! - 1: done, and the answer is no: a test failed, `eval --fail-on` matched the outcome,
//!   `check --deny-warnings` found warnings, `fmt --check` found a file to format;
//! - 2: something does not load: a document, request, directory or test file (every problem is
//!   printed with its JSON path and line:column), or evaluation stopped at a work limit;
//! - 64: the command line is wrong (with a suggestion when a flag or command is mistyped).

use std::fmt::Write as _;
use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use policy_core::{Engine, LoadErrors, Options, Outcome, Request, Verdict};
use serde_json::json;

mod diff;
mod directory;
mod fmt;
mod import;
mod inspect;
mod keygen;
mod policy_test;
mod remote;

/// Exit code: the command line is wrong (sysexits' `EX_USAGE`).
const EXIT_USAGE: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "edge-access",
    version,
    about = "Test Cloudflare Access policies for Entra ID offline, and inspect tokens",
    after_help = "Exit codes: 0 yes; 1 no (a test failed, --fail-on matched, warnings denied, \
                  files to format); 2 something does not load; 64 usage error.\n\
                  FILE may be `-` for standard input (at most one per command).",
    propagate_version = true
)]
struct Cli {
    /// When to colour output (`NO_COLOR` set means never, unless `always`).
    #[arg(long, value_enum, default_value_t = Color::Auto, global = true)]
    color: Color,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Color {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check, evaluate, explain and test policy documents.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Print a new signing key for SESSION_SIGNING_KEY (a private JWK on stdout).
    Keygen {
        /// Without a self-signed certificate (`x5c`).
        #[arg(long)]
        no_cert: bool,
    },
    /// Token tools.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The configuration stored in a gateway: push, pull, diff, versions, activate, rollback.
    #[command(subcommand)]
    Config(remote::ConfigCommand),
    /// Print a shell completion script.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Decode an Entra or gateway token without checking its signature: header, claims, kind,
    /// and whether it is expired.
    Inspect {
        /// The token, or `-` to read it from standard input.
        token: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Load a configuration document and report every problem with its JSON path.
    Check(CheckArgs),
    /// Decide a request: the verdict as JSON.
    Eval(EvalArgs),
    /// Decide a request and explain the decision step by step.
    Explain(EvalArgs),
    /// Run policy test files: each names a document and the cases it must decide.
    Test(policy_test::TestArgs),
    /// Rewrite documents and test files in the canonical layout (key order, indentation).
    Fmt(FmtArgs),
    /// What a change does: apps, policies, groups… added, removed and changed, and with
    /// `--requests` the requests decided differently.
    Diff(DiffArgs),
}

#[derive(Debug, clap::Args)]
struct FmtArgs {
    /// Documents or test files (JSON); `-` formats standard input to standard output.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<String>,
    /// Change nothing; exit 1 and list the files that are not formatted.
    #[arg(long)]
    check: bool,
}

#[derive(Debug, clap::Args)]
struct DiffArgs {
    /// The document before the change.
    #[arg(value_name = "OLD")]
    old: String,
    /// The document after the change.
    #[arg(value_name = "NEW")]
    new: String,
    /// Requests to decide with both: a JSON array of requests, or a policy test file.
    #[arg(long, value_name = "FILE")]
    requests: Option<String>,
    /// The same report as JSON.
    #[arg(long)]
    json: bool,
    /// Exit 1 when anything differs (as `git diff --exit-code`).
    #[arg(long)]
    exit_code: bool,
}

#[derive(Debug, clap::Args)]
struct DocumentArgs {
    /// The configuration document (JSON).
    #[arg(short, long, value_name = "FILE")]
    config: String,
    /// The gateway's SCIM groups (the body of GET /cdn-cgi/access/scim/v2/Groups, or an array
    /// of Group resources): nested groups and group names for the policies.
    #[arg(short, long, value_name = "FILE")]
    directory: Option<String>,
}

#[derive(Debug, clap::Args)]
struct CheckArgs {
    #[command(flatten)]
    document: DocumentArgs,
    /// A machine-readable report: `ok`, `errors` and `warnings`, each with `path`, `line`,
    /// `column`, a stable `kind` and `message`.
    #[arg(long)]
    json: bool,
    /// Warnings (risky but valid configuration) make the exit code 1.
    #[arg(long)]
    deny_warnings: bool,
}

#[derive(Debug, clap::Args)]
struct EvalArgs {
    #[command(flatten)]
    document: DocumentArgs,
    /// The request (JSON).
    #[arg(short, long, value_name = "FILE")]
    request: String,
    /// Which outcomes make the exit code 1: `deny` (anything not let through except
    /// `login_required`), `login` (anything not let through), `never`. Default: `deny` for
    /// `eval`, `never` for `explain`.
    #[arg(long, value_enum)]
    fail_on: Option<FailOn>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum FailOn {
    Deny,
    Login,
    Never,
}

impl FailOn {
    fn fails(self, outcome: Outcome) -> bool {
        match self {
            FailOn::Never => false,
            FailOn::Login => !outcome.is_granted(),
            FailOn::Deny => !outcome.is_granted() && outcome != Outcome::LoginRequired,
        }
    }
}

/// How a command ended, when not with a plain success.
#[derive(Debug)]
enum CliError {
    /// The answer is no (exit 1); the message, if any, goes to stderr.
    No(Option<String>),
    /// Something does not load (exit 2).
    Load(String),
    /// The command line asks for something impossible (exit 64).
    Usage(String),
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            // Help and version go to stdout with 0; mistakes to stderr with 64.
            let _ = error.print();
            return match error.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(EXIT_USAGE),
            };
        }
    };
    let color = match cli.color {
        Color::Always => true,
        Color::Never => false,
        Color::Auto => std::env::var_os("NO_COLOR").is_none() && std::io::stdout().is_terminal(),
    };
    let mut stdout = std::io::stdout().lock();
    match run(cli.command, color, &mut stdout) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::No(message)) => {
            if let Some(message) = message {
                report(&message);
            }
            ExitCode::from(1)
        }
        Err(CliError::Load(message)) => {
            report(&message);
            ExitCode::from(2)
        }
        Err(CliError::Usage(message)) => {
            report(&format!("error: {message}"));
            ExitCode::from(EXIT_USAGE)
        }
    }
}

fn report(message: &str) {
    let mut stderr = std::io::stderr().lock();
    // Nothing sensible remains to be done if stderr itself is closed.
    let _ = writeln!(stderr, "{message}");
}

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

fn write_out(out: &mut impl Write, text: &str) -> Result<(), CliError> {
    out.write_all(text.as_bytes())
        .map_err(|e| CliError::Load(format!("cannot write output: {e}")))
}

fn run(command: Command, color: bool, out: &mut impl Write) -> Result<(), CliError> {
    match command {
        Command::Policy(PolicyCommand::Check(args)) => check(&args, out),
        Command::Policy(PolicyCommand::Eval(args)) => {
            let (engine, verdict) = decide(&args)?;
            let mut text = serde_json::to_string_pretty(&verdict.to_value())
                .map_err(|e| CliError::Load(e.to_string()))?;
            text.push('\n');
            write_out(out, &text)?;
            fail_on(args.fail_on.unwrap_or(FailOn::Deny), &verdict, &engine)
        }
        Command::Policy(PolicyCommand::Explain(args)) => {
            let (engine, verdict) = decide(&args)?;
            write_out(out, &explain(&engine, &verdict))?;
            fail_on(args.fail_on.unwrap_or(FailOn::Never), &verdict, &engine)
        }
        Command::Policy(PolicyCommand::Test(args)) => policy_test::run(&args, color, out),
        Command::Policy(PolicyCommand::Fmt(args)) => format_files(&args, out),
        Command::Policy(PolicyCommand::Diff(args)) => diff_documents(&args, out),
        Command::Keygen { no_cert } => {
            let jwk = keygen::signing_key(!no_cert).map_err(CliError::Load)?;
            write_out(out, &format!("{jwk}\n"))
        }
        Command::Token(TokenCommand::Inspect { token }) => {
            let raw = if token == "-" { read("-")? } else { token };
            let report = inspect::inspect(raw.trim(), now_seconds()).map_err(CliError::Load)?;
            let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
            text.push('\n');
            write_out(out, &text)
        }
        Command::Config(command) => remote::run(&command, out),
        Command::Completions { shell } => {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut Cli::command(), "edge-access", &mut script);
            out.write_all(&script)
                .map_err(|e| CliError::Load(format!("cannot write output: {e}")))
        }
    }
}

fn format_files(args: &FmtArgs, out: &mut impl Write) -> Result<(), CliError> {
    stdin_at_most_once(&args.files.iter().map(String::as_str).collect::<Vec<_>>())?;
    let mut unformatted = Vec::new();
    for file in &args.files {
        let text = read(file)?;
        let node = fmt::Node::parse(&text).map_err(|e| CliError::Load(format!("`{file}`: {e}")))?;
        let formatted = fmt::format(&node);
        if file == "-" {
            if args.check {
                if formatted != text {
                    unformatted.push(file.clone());
                }
            } else {
                write_out(out, &formatted)?;
            }
        } else if formatted != text {
            if args.check {
                unformatted.push(file.clone());
            } else {
                std::fs::write(file, &formatted)
                    .map_err(|e| CliError::Load(format!("cannot write `{file}`: {e}")))?;
                write_out(out, &format!("formatted `{file}`\n"))?;
            }
        }
    }
    if unformatted.is_empty() {
        return Ok(());
    }
    let mut text = String::from("not formatted (run `edge-access policy fmt` on them):");
    for file in &unformatted {
        let _ = write!(text, "\n  {file}");
    }
    Err(CliError::No(Some(text)))
}

fn diff_documents(args: &DiffArgs, out: &mut impl Write) -> Result<(), CliError> {
    stdin_at_most_once(&[&args.old, &args.new, args.requests.as_deref().unwrap_or("")])?;
    let load = |path: &str| -> Result<(Engine, serde_json::Value), CliError> {
        let text = read(path)?;
        let engine =
            Engine::from_json(&text).map_err(|e| CliError::Load(load_errors(path, &text, &e)))?;
        let value = serde_json::from_str(&text).map_err(|e| CliError::Load(e.to_string()))?;
        Ok((engine, value))
    };
    let (old_engine, old) = load(&args.old)?;
    let (new_engine, new) = load(&args.new)?;
    let changes = diff::changes(&old, &new);
    let decided = match &args.requests {
        Some(path) => {
            let requests = diff::requests(&read(path)?)
                .map_err(|e| CliError::Load(format!("`{path}` does not load: {e}")))?;
            Some(
                diff::decisions(&old_engine, &new_engine, &requests)
                    .map_err(|e| CliError::Load(format!("evaluation stopped: {e}")))?,
            )
        }
        None => None,
    };
    let text = if args.json {
        let mut text =
            serde_json::to_string_pretty(&diff::json_report(&changes, decided.as_deref()))
                .unwrap_or_default();
        text.push('\n');
        text
    } else {
        diff::human(&changes, decided.as_deref())
    };
    write_out(out, &text)?;
    let differs = !changes.is_empty() || decided.as_ref().is_some_and(|d| !d.is_empty());
    if args.exit_code && differs {
        return Err(CliError::No(None));
    }
    Ok(())
}

fn fail_on(fail_on: FailOn, verdict: &Verdict, _engine: &Engine) -> Result<(), CliError> {
    if fail_on.fails(verdict.outcome) {
        return Err(CliError::No(Some(format!(
            "outcome `{}` (exit 1 with --fail-on {})",
            verdict.outcome,
            match fail_on {
                FailOn::Deny => "deny",
                FailOn::Login => "login",
                FailOn::Never => "never",
            }
        ))));
    }
    Ok(())
}

fn decide(args: &EvalArgs) -> Result<(Engine, Verdict), CliError> {
    stdin_at_most_once(&[
        &args.document.config,
        &args.request,
        args.document.directory.as_deref().unwrap_or(""),
    ])?;
    let options = load_directory(args.document.directory.as_deref())?;
    let engine = load_engine(&args.document.config, &options)?;
    let request = load_request(&args.request)?;
    let verdict = engine
        .evaluate(&request)
        .map_err(|e| CliError::Load(format!("evaluation stopped: {e}")))?;
    Ok((engine, verdict))
}

fn stdin_at_most_once(files: &[&str]) -> Result<(), CliError> {
    if files.iter().filter(|f| **f == "-").count() > 1 {
        return Err(CliError::Usage(
            "only one of the files can be standard input".into(),
        ));
    }
    Ok(())
}

pub(crate) fn read(path: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Load(format!("cannot read standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| CliError::Load(format!("cannot read `{path}`: {e}")))
}

/// Every problem of `file` on its own line: `file:line:column: path: message`.
pub(crate) fn load_errors(file: &str, text: &str, errors: &LoadErrors) -> String {
    let mut out = format!(
        "`{file}` does not load ({} problems):",
        errors.errors().len()
    );
    for e in errors.errors() {
        let at = e
            .position(text)
            .map_or_else(String::new, |(line, column)| format!("{line}:{column}: "));
        let _ = write!(out, "\n  {at}{e}");
    }
    out
}

fn load_engine(path: &str, options: &Options) -> Result<Engine, CliError> {
    let text = read(path)?;
    Engine::from_json_with(&text, options).map_err(|e| CliError::Load(load_errors(path, &text, &e)))
}

/// Engine options from a SCIM group export (`--directory`), or the defaults without one.
/// Skipped groups and other warnings go to stderr.
pub(crate) fn load_directory(path: Option<&str>) -> Result<Options, CliError> {
    let Some(path) = path else {
        return Ok(Options::default());
    };
    let text = read(path)?;
    let directory = directory::parse(&text).map_err(|errors| {
        let mut message = format!("`{path}` does not load ({} problems):", errors.len());
        for e in &errors {
            let _ = write!(message, "\n  {e}");
        }
        CliError::Load(message)
    })?;
    for w in &directory.warnings {
        report(&format!("warning: `{path}`: {w}"));
    }
    // `Options` is `#[non_exhaustive]`: start from the defaults and fill in the directory.
    let mut options = Options::default();
    options.group_parents = directory.group_parents;
    options.group_names = directory.group_names;
    Ok(options)
}

fn load_request(path: &str) -> Result<Request, CliError> {
    let text = read(path)?;
    Request::from_json(&text).map_err(|e| CliError::Load(load_errors(path, &text, &e)))
}

fn check(args: &CheckArgs, out: &mut impl Write) -> Result<(), CliError> {
    let document = &args.document;
    stdin_at_most_once(&[
        &document.config,
        document.directory.as_deref().unwrap_or(""),
    ])?;
    let options = load_directory(document.directory.as_deref())?;
    let path = document.config.as_str();
    let text = read(path)?;
    let result = Engine::from_json_with(&text, &options);
    let bytes = minified_len(&text);
    if args.json {
        let position = |p: Option<(usize, usize)>| match p {
            Some((line, column)) => (json!(line), json!(column)),
            None => (json!(null), json!(null)),
        };
        let report = match &result {
            Ok(engine) => json!({
                "ok": true,
                "bytes": bytes,
                "fits_worker_var": bytes.is_some_and(|b| b <= WORKER_VAR_BYTES),
                "errors": [],
                "warnings": engine.warnings().iter().map(|w| {
                    let (line, column) = position(w.position(&text));
                    json!({ "path": w.path, "line": line, "column": column,
                            "kind": "warning", "message": w.message })
                }).collect::<Vec<_>>(),
            }),
            Err(errors) => json!({
                "ok": false,
                "bytes": bytes,
                "fits_worker_var": bytes.is_some_and(|b| b <= WORKER_VAR_BYTES),
                "errors": errors.errors().iter().map(|e| {
                    let (line, column) = position(e.position(&text));
                    json!({ "path": e.path, "line": line, "column": column,
                            "kind": e.kind(), "message": e.message })
                }).collect::<Vec<_>>(),
                "warnings": [],
            }),
        };
        let mut report_text = serde_json::to_string_pretty(&report).unwrap_or_default();
        report_text.push('\n');
        write_out(out, &report_text)?;
        return match result {
            Err(_) => Err(CliError::Load(format!("`{path}` does not load"))),
            Ok(engine) if args.deny_warnings && !engine.warnings().is_empty() => Err(CliError::No(
                Some(format!("`{path}` has warnings (--deny-warnings)")),
            )),
            Ok(_) => Ok(()),
        };
    }
    let engine = result.map_err(|e| CliError::Load(load_errors(path, &text, &e)))?;
    let mut summary = format!(
        "ok: `{path}` loads: {} apps, {} identity providers",
        engine.apps().len(),
        engine.identity_providers().len()
    );
    if let Some(directory) = &document.directory {
        let _ = write!(
            summary,
            "; `{directory}`: {} named groups, {} nesting edges",
            options.group_names.len(),
            options.group_parents.len()
        );
    }
    summary.push('\n');
    if let Some(bytes) = bytes.filter(|b| *b > WORKER_VAR_BYTES) {
        let _ = writeln!(
            summary,
            "warning: {bytes} bytes minified: over the {WORKER_VAR_BYTES} a Worker var holds; \
             store it in the gateway (`edge-access config push`) or bundle it (edge-access.json)"
        );
    }
    for w in engine.warnings() {
        let _ = writeln!(summary, "warning: {w}");
    }
    write_out(out, &summary)?;
    if args.deny_warnings && !engine.warnings().is_empty() {
        return Err(CliError::No(Some(format!(
            "`{path}` has {} warnings (--deny-warnings)",
            engine.warnings().len()
        ))));
    }
    Ok(())
}

/// The most a Cloudflare Worker var holds (bytes).
const WORKER_VAR_BYTES: usize = 5 * 1024;

/// The size of `text` minified, as a var would hold it (`None` when it is not JSON).
fn minified_len(text: &str) -> Option<usize> {
    serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .map(|v| v.to_string().len())
}

pub(crate) fn explain(engine: &Engine, verdict: &Verdict) -> String {
    let mut text = String::new();
    let _ = writeln!(text, "outcome: {}", verdict.outcome);
    match verdict
        .app
        .as_deref()
        .and_then(|id| engine.apps().iter().find(|a| a.id() == id))
    {
        Some(app) => {
            let _ = writeln!(
                text,
                "app:     {} ({}) at {}",
                app.name(),
                app.id(),
                app.domain()
            );
        }
        None => {
            let _ = writeln!(text, "app:     none");
        }
    }
    if let Some((id, name, precedence)) = &verdict.policy {
        let id = id
            .as_deref()
            .map_or_else(String::new, |id| format!("id {id}, "));
        let _ = writeln!(text, "policy:  {name} ({id}precedence {precedence})");
    }
    if let Some(session) = &verdict.session_duration {
        let _ = writeln!(text, "session: {session}");
    }
    let _ = writeln!(text, "why:");
    for (i, line) in verdict.trace.iter().enumerate() {
        let _ = writeln!(text, "  {}. {line}", i + 1);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn fail_on() {
        for (mode, outcome, fails) in [
            (FailOn::Deny, Outcome::Allow, false),
            (FailOn::Deny, Outcome::Bypass, false),
            (FailOn::Deny, Outcome::Block, true),
            (FailOn::Deny, Outcome::DefaultDeny, true),
            (FailOn::Deny, Outcome::NoApp, true),
            (FailOn::Deny, Outcome::InvalidPath, true),
            (FailOn::Deny, Outcome::LoginRequired, false),
            (FailOn::Login, Outcome::LoginRequired, true),
            (FailOn::Login, Outcome::ServiceAuth, false),
            (FailOn::Never, Outcome::Block, false),
        ] {
            assert_eq!(mode.fails(outcome), fails, "{mode:?} {outcome}");
        }
    }
}

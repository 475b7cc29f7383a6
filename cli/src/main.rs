//! `edge-access`: the offline policy tester (and, later, token tools).
//!
//! ```text
//! edge-access policy check   --config FILE [--directory FILE] [--json]
//! edge-access policy eval    --config FILE --request FILE [--directory FILE]
//! edge-access policy explain --config FILE --request FILE [--directory FILE]
//! edge-access keygen [--no-cert]
//! edge-access token inspect TOKEN|-
//! ```
//! Exit codes: 0 success, 1 usage error, 2 the document, request or directory does not load (or
//! a work limit stopped the evaluation).

use std::fmt::Write as _;
use std::io::{Read, Write};
use std::process::ExitCode;

use policy_core::{Engine, LoadErrors, Options, Request, Verdict};

mod directory;
mod inspect;
mod keygen;

fn now_seconds() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}
use serde_json::json;

const USAGE: &str = "\
usage:
  edge-access policy check   --config FILE [--directory FILE] [--json]
  edge-access policy eval    --config FILE --request FILE [--directory FILE]
  edge-access policy explain --config FILE --request FILE [--directory FILE]
  --directory FILE  the gateway's SCIM groups (the body of GET /cdn-cgi/access/scim/v2/Groups, or
                    an array of Group resources): nested groups and group names for the policy
  edge-access keygen [--no-cert]   a signing key for SESSION_SIGNING_KEY (private JWK on stdout)
  edge-access token inspect TOKEN  decode an Entra or gateway token (no signature check): header,
                                   claims, kind, and whether it is expired; `-` reads stdin

FILE may be `-` for standard input (at most one of them).
exit codes: 0 ok, 1 usage error, 2 the document, request or directory does not load";

/// What went wrong, and the exit code that says so.
#[derive(Debug)]
enum CliError {
    /// Bad arguments: exit 1 with the usage.
    Usage(String),
    /// A file, document or request that does not load: exit 2.
    Load(String),
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args, &mut std::io::stdout().lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError::Usage(message)) => {
            report(&format!("error: {message}\n\n{USAGE}"));
            ExitCode::from(1)
        }
        Err(CliError::Load(message)) => {
            report(&message);
            ExitCode::from(2)
        }
    }
}

fn report(message: &str) {
    let mut stderr = std::io::stderr().lock();
    // Nothing sensible remains to be done if stderr itself is closed.
    let _ = writeln!(stderr, "{message}");
}

/// Parsed command line of a `policy` command.
#[derive(Debug, Default)]
struct Args {
    config: Option<String>,
    request: Option<String>,
    directory: Option<String>,
    json: bool,
}

fn parse_args(args: &[String], allow_request: bool, allow_json: bool) -> Result<Args, CliError> {
    let mut out = Args::default();
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .cloned()
                .ok_or_else(|| CliError::Usage(format!("`{name}` needs a value")))
        };
        match arg.as_str() {
            "--config" | "-c" => out.config = Some(value("--config")?),
            "--request" | "-r" if allow_request => out.request = Some(value("--request")?),
            "--directory" | "-d" => out.directory = Some(value("--directory")?),
            "--json" if allow_json => out.json = true,
            "-h" | "--help" => return Err(CliError::Usage("help requested".into())),
            other => return Err(CliError::Usage(format!("unexpected argument `{other}`"))),
        }
    }
    if out.config.is_none() {
        return Err(CliError::Usage("`--config FILE` is required".into()));
    }
    if allow_request && out.request.is_none() {
        return Err(CliError::Usage("`--request FILE` is required".into()));
    }
    let from_stdin = [&out.config, &out.request, &out.directory]
        .into_iter()
        .filter(|f| f.as_deref() == Some("-"))
        .count();
    if from_stdin > 1 {
        return Err(CliError::Usage(
            "only one of the files can be standard input".into(),
        ));
    }
    Ok(out)
}

fn run(args: &[String], out: &mut impl Write) -> Result<(), CliError> {
    let (command, rest) = match args {
        [group, command, rest @ ..] if group == "policy" => (command.as_str(), rest),
        [help] if help == "-h" || help == "--help" => {
            return Err(CliError::Usage("help requested".into()))
        }
        [token, inspect, rest @ ..] if token == "token" && inspect == "inspect" => {
            let raw = match rest {
                [one] if one == "-" => read("-")?,
                [one] => one.clone(),
                _ => {
                    return Err(CliError::Usage(
                        "`token inspect` takes one token (or `-`)".into(),
                    ))
                }
            };
            let report = inspect::inspect(raw.trim(), now_seconds()).map_err(CliError::Load)?;
            let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
            text.push('\n');
            return out
                .write_all(text.as_bytes())
                .map_err(|e| CliError::Load(format!("cannot write output: {e}")));
        }
        [keygen, rest @ ..] if keygen == "keygen" => {
            let with_cert = match rest {
                [] => true,
                [flag] if flag == "--no-cert" => false,
                _ => return Err(CliError::Usage("keygen takes only `--no-cert`".into())),
            };
            let jwk = keygen::signing_key(with_cert).map_err(CliError::Load)?;
            return out
                .write_all(format!("{jwk}\n").as_bytes())
                .map_err(|e| CliError::Load(format!("cannot write output: {e}")));
        }
        _ => return Err(CliError::Usage("expected a command".into())),
    };
    let written = match command {
        "check" => {
            let args = parse_args(rest, false, true)?;
            check(&args, out)?
        }
        "eval" | "explain" => {
            let args = parse_args(rest, true, false)?;
            let options = load_directory(args.directory.as_deref())?;
            let engine = load_engine(args.config.as_deref().unwrap_or("-"), &options)?;
            let request = load_request(args.request.as_deref().unwrap_or("-"))?;
            let verdict = engine
                .evaluate(&request)
                .map_err(|e| CliError::Load(format!("evaluation stopped: {e}")))?;
            if command == "eval" {
                let mut text = serde_json::to_string_pretty(&verdict.to_value())
                    .map_err(|e| CliError::Load(e.to_string()))?;
                text.push('\n');
                text
            } else {
                explain(&engine, &verdict)
            }
        }
        other => return Err(CliError::Usage(format!("unknown command `policy {other}`"))),
    };
    out.write_all(written.as_bytes())
        .map_err(|e| CliError::Load(format!("cannot write output: {e}")))
}

fn read(path: &str) -> Result<String, CliError> {
    if path == "-" {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| CliError::Load(format!("cannot read standard input: {e}")))?;
        return Ok(text);
    }
    std::fs::read_to_string(path).map_err(|e| CliError::Load(format!("cannot read `{path}`: {e}")))
}

fn load_errors(file: &str, errors: &LoadErrors) -> String {
    let mut text = format!(
        "`{file}` does not load ({} problems):",
        errors.errors().len()
    );
    for e in errors.errors() {
        let _ = write!(text, "\n  {e}");
    }
    text
}

fn load_engine(path: &str, options: &Options) -> Result<Engine, CliError> {
    let text = read(path)?;
    Engine::from_json_with(&text, options).map_err(|e| CliError::Load(load_errors(path, &e)))
}

/// Engine options from a SCIM group export (`--directory`), or the defaults without one.
/// Skipped groups and other warnings go to stderr.
fn load_directory(path: Option<&str>) -> Result<Options, CliError> {
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
    Request::from_json(&text).map_err(|e| CliError::Load(load_errors(path, &e)))
}

fn check(args: &Args, out: &mut impl Write) -> Result<String, CliError> {
    let options = load_directory(args.directory.as_deref())?;
    let path = args.config.as_deref().unwrap_or("-");
    let text = read(path)?;
    let result = Engine::from_json_with(&text, &options);
    if args.json {
        let report = match &result {
            Ok(engine) => json!({
                "ok": true,
                "errors": [],
                "warnings": engine.warnings().iter()
                    .map(|w| json!({ "path": w.path, "message": w.message })).collect::<Vec<_>>(),
            }),
            Err(errors) => json!({
                "ok": false,
                "errors": errors.errors().iter()
                    .map(|e| json!({ "path": e.path, "message": e.message })).collect::<Vec<_>>(),
                "warnings": [],
            }),
        };
        let mut text = serde_json::to_string_pretty(&report).unwrap_or_default();
        text.push('\n');
        return match result {
            Ok(_) => Ok(text),
            Err(_) => {
                let _ = out.write_all(text.as_bytes());
                Err(CliError::Load(format!("`{path}` does not load")))
            }
        };
    }
    let engine = result.map_err(|e| CliError::Load(load_errors(path, &e)))?;
    let mut text = format!(
        "ok: `{path}` loads: {} apps, {} identity providers",
        engine.apps().len(),
        engine.identity_providers().len()
    );
    if let Some(directory) = &args.directory {
        let _ = write!(
            text,
            "; `{directory}`: {} named groups, {} nesting edges",
            options.group_names.len(),
            options.group_parents.len()
        );
    }
    text.push('\n');
    for w in engine.warnings() {
        let _ = writeln!(text, "warning: {w}");
    }
    Ok(text)
}

fn explain(engine: &Engine, verdict: &Verdict) -> String {
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
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn usage_errors() {
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        let mut out = Vec::new();
        assert!(matches!(run(&s(&[]), &mut out), Err(CliError::Usage(_))));
        assert!(matches!(
            run(&s(&["policy", "frob"]), &mut out),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            run(&s(&["policy", "check"]), &mut out),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            run(&s(&["policy", "eval", "--config", "x"]), &mut out),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            run(
                &s(&["policy", "eval", "--config", "-", "--request", "-"]),
                &mut out
            ),
            Err(CliError::Usage(_))
        ));
        assert!(matches!(
            run(
                &s(&["policy", "check", "--config", "/nonexistent/x.json"]),
                &mut out
            ),
            Err(CliError::Load(_))
        ));
    }
}

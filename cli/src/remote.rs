//! `edge-access config …`: the configuration stored in a gateway, through its management API
//! (`/cdn-cgi/access/api`, or `<prefix>/api` with `--prefix`). The admin token comes from an environment variable
//! (`EDGE_ACCESS_ADMIN_TOKEN` unless `--token-env` names another), never from the command
//! line. A document is checked with the same engine before it is sent.

use std::io::Write;
use std::time::Duration;

use policy_core::Engine;
use serde_json::{json, Value};

use crate::{load_errors, read, write_out, CliError};

/// `value.key`, or null.
fn at<'v>(value: &'v Value, key: &str) -> &'v Value {
    value.get(key).unwrap_or(&Value::Null)
}

/// Where and as whom.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// The gateway's URL (`https://access.example.com`).
    #[arg(long, value_name = "URL")]
    pub url: String,
    /// The environment variable holding the admin API token.
    #[arg(long, value_name = "NAME", default_value = "EDGE_ACCESS_ADMIN_TOKEN")]
    pub token_env: String,
    /// The gateway's endpoint prefix (its `ACCESS_PATH_PREFIX`).
    #[arg(long, value_name = "PATH", default_value = "/cdn-cgi/access")]
    pub prefix: String,
}

/// The subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check a document locally, then store it in the gateway as a new active version.
    Push {
        #[command(flatten)]
        target: Target,
        /// The document (JSON).
        #[arg(value_name = "FILE")]
        file: String,
        /// Why (kept with the version).
        #[arg(long, default_value = "")]
        comment: String,
        /// The version the change was made against (409 if another is active by now);
        /// default: the active one.
        #[arg(long)]
        base: Option<u64>,
    },
    /// Print the active document (or the stored version NUMBER).
    Pull {
        #[command(flatten)]
        target: Target,
        #[arg(value_name = "NUMBER")]
        number: Option<u64>,
    },
    /// What differs between a local document and the active one (nothing printed: equal).
    Diff {
        #[command(flatten)]
        target: Target,
        #[arg(value_name = "FILE")]
        file: String,
    },
    /// List the stored versions, newest first.
    Versions {
        #[command(flatten)]
        target: Target,
    },
    /// Activate a stored version.
    Activate {
        #[command(flatten)]
        target: Target,
        #[arg(value_name = "NUMBER")]
        number: u64,
    },
    /// Activate the version that was active before the current one.
    Rollback {
        #[command(flatten)]
        target: Target,
    },
    /// One document from saved answers of Cloudflare's Access API (apps, policies, Access
    /// groups, identity providers, service tokens, lists); the fields it ignores on stderr.
    Import(crate::import::ImportArgs),
}

struct Client {
    agent: ureq::Agent,
    base: String,
    auth: String,
}

/// `prefix` when it is a path the gateway accepts as `ACCESS_PATH_PREFIX`: `/` and segments
/// of letters, digits, `-`, `.`, `_`, `~`; no trailing `/`, `..`, empty or `.` segment.
fn endpoint_prefix(prefix: &str) -> Result<&str, CliError> {
    let segments_ok = prefix.split('/').skip(1).all(|segment| {
        !segment.is_empty()
            && segment != "."
            && segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
    });
    if prefix.starts_with('/') && !prefix.contains("..") && segments_ok {
        Ok(prefix)
    } else {
        Err(CliError::Usage(format!(
            "--prefix `{prefix}` must be a path like `/cdn-cgi/access`: `/` and letters, \
             digits, `-`, `.`, `_`, `~`, no trailing `/`, no `..`"
        )))
    }
}

/// `url` as the base of the gateway's API: `https`, or `http` to a loopback address only (a
/// gateway under `wrangler dev`) — the admin token never crosses a network in the clear.
fn gateway_base(url: &str) -> Result<String, CliError> {
    let url = url.trim().trim_end_matches('/');
    let (scheme, rest) = url.split_once("://").ok_or_else(|| {
        CliError::Usage(format!(
            "--url `{url}` is not a URL (https://access.example.com)"
        ))
    })?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    let host = match authority.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => authority,
    };
    if host.is_empty() || authority.contains('@') {
        return Err(CliError::Usage(format!(
            "--url `{url}` needs a host and no user information"
        )));
    }
    let loopback = matches!(host, "127.0.0.1" | "localhost" | "[::1]");
    match scheme.to_ascii_lowercase().as_str() {
        "https" => Ok(url.to_owned()),
        "http" if loopback => Ok(url.to_owned()),
        "http" => Err(CliError::Usage(format!(
            "--url `{url}`: the admin token is sent over https only (http only to 127.0.0.1, \
             localhost or [::1])"
        ))),
        other => Err(CliError::Usage(format!(
            "--url `{url}`: `{other}` is not http or https"
        ))),
    }
}

impl Client {
    fn new(target: &Target) -> Result<Client, CliError> {
        let base = gateway_base(&target.url)?;
        let prefix = endpoint_prefix(&target.prefix)?;
        let token = std::env::var(&target.token_env)
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                CliError::Usage(format!(
                    "set the admin API token in the environment variable {}",
                    target.token_env
                ))
            })?;
        let agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        Ok(Client {
            agent,
            base: format!("{base}{prefix}/api"),
            auth: format!("Bearer {}", token.trim()),
        })
    }

    /// The `result` of a successful answer; the envelope's errors otherwise.
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> Result<Value, CliError> {
        let builder = ureq::http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", &self.auth)
            .header("content-type", "application/json");
        let invalid = |e: ureq::http::Error| CliError::Usage(format!("invalid request: {e}"));
        let sent = match body {
            None => self.agent.run(builder.body(()).map_err(invalid)?),
            Some(body) => self.agent.run(
                builder
                    .body(body.to_string().into_bytes())
                    .map_err(invalid)?,
            ),
        };
        let mut answer =
            sent.map_err(|e| CliError::Load(format!("{method} {}{path}: {e}", self.base)))?;
        let status = answer.status().as_u16();
        let text = answer
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_string()
            .map_err(|e| CliError::Load(format!("{method} {path}: {e}")))?;
        let envelope: Value = serde_json::from_str(&text).map_err(|_| {
            CliError::Load(format!("{method} {path}: {status}, not the management API"))
        })?;
        if at(&envelope, "success") == true {
            return Ok(at(&envelope, "result").clone());
        }
        let mut message = format!("{method} {path}: {status}");
        for error in at(&envelope, "errors").as_array().into_iter().flatten() {
            let place = at(error, "path")
                .as_str()
                .map(|p| format!("{p}: "))
                .unwrap_or_default();
            let what = at(error, "message").as_str().unwrap_or_default();
            message.push_str(&format!("\n  {place}{what}"));
        }
        Err(CliError::Load(message))
    }

    fn active(&self) -> Result<Value, CliError> {
        self.call("GET", "/config", None)
    }
}

fn pretty(value: &Value) -> String {
    let mut text = serde_json::to_string_pretty(value).unwrap_or_default();
    text.push('\n');
    text
}

/// A local document, checked with the engine: its JSON.
fn checked(file: &str) -> Result<Value, CliError> {
    let text = read(file)?;
    Engine::from_json(&text).map_err(|e| CliError::Load(load_errors(file, &text, &e)))?;
    serde_json::from_str(&text).map_err(|e| CliError::Load(format!("`{file}`: {e}")))
}

/// Runs a `config` subcommand.
pub fn run(command: &ConfigCommand, out: &mut impl Write) -> Result<(), CliError> {
    match command {
        ConfigCommand::Import(args) => crate::import::run(args, out),
        ConfigCommand::Push {
            target,
            file,
            comment,
            base,
        } => {
            let document = checked(file)?;
            let client = Client::new(target)?;
            let base = match base {
                Some(base) => *base,
                None => client
                    .call("GET", "/config/versions?per_page=100", None)?
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|v| at(v, "active") == true)
                    .and_then(|v| at(v, "version").as_u64())
                    .unwrap_or(0),
            };
            let body = json!({"document": document, "base_version": base, "comment": comment});
            let result = client.call("PUT", "/config", Some(&body))?;
            write_out(
                out,
                &format!("active: version {}\n", at(&result, "version")),
            )
        }
        ConfigCommand::Pull { target, number } => {
            let client = Client::new(target)?;
            let result = match number {
                Some(v) => client.call("GET", &format!("/config/versions/{v}"), None)?,
                None => client.active()?,
            };
            write_out(out, &pretty(at(&result, "document")))
        }
        ConfigCommand::Diff { target, file } => {
            let local = checked(file)?;
            let client = Client::new(target)?;
            let remote = client.active()?;
            let changes = crate::diff::changes(at(&remote, "document"), &local);
            if changes.is_empty() && *at(&remote, "document") == local {
                return Ok(());
            }
            write_out(out, &crate::diff::human(&changes, None))?;
            Err(CliError::No(None))
        }
        ConfigCommand::Versions { target } => {
            let result = Client::new(target)?.call("GET", "/config/versions", None)?;
            let mut text = String::new();
            for v in result.as_array().into_iter().flatten() {
                text.push_str(&format!(
                    "{}{:>5}  {}  {}  {}\n",
                    if at(v, "active") == true { "*" } else { " " },
                    at(v, "version"),
                    at(v, "created_at").as_str().unwrap_or_default(),
                    at(v, "author").as_str().unwrap_or_default(),
                    at(v, "comment").as_str().unwrap_or_default(),
                ));
            }
            write_out(out, &text)
        }
        ConfigCommand::Activate { target, number } => {
            let client = Client::new(target)?;
            let result = client.call(
                "POST",
                &format!("/config/versions/{number}/activate"),
                Some(&json!({})),
            )?;
            write_out(
                out,
                &format!("active: version {}\n", at(&result, "version")),
            )
        }
        ConfigCommand::Rollback { target } => {
            let result = Client::new(target)?.call("POST", "/config/rollback", Some(&json!({})))?;
            write_out(
                out,
                &format!("active: version {}\n", at(&result, "version")),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{endpoint_prefix, gateway_base};

    #[test]
    fn prefixes_are_the_ones_the_gateway_accepts() {
        for ok in ["/cdn-cgi/access", "/auth/edge", "/.edge-access"] {
            assert_eq!(endpoint_prefix(ok).ok(), Some(ok));
        }
        for refused in [
            "", "/", "auth", "/auth/", "/a//b", "/a/../b", "/a/./b", "/a%2Fb", "/a?b", "/a#b",
        ] {
            assert!(endpoint_prefix(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_token_goes_over_https_or_to_loopback_only() {
        for ok in [
            "https://access.example.com",
            "https://access.example.com:8443/",
            "HTTPS://Access.Example.com",
            "http://127.0.0.1:8787",
            "http://localhost:8787/",
            "http://[::1]:8787",
        ] {
            assert!(gateway_base(ok).is_ok(), "{ok}");
        }
        for refused in [
            "http://access.example.com",
            "http://127.0.0.1.example.com",
            "http://localhost.example.com:80",
            "http://user@127.0.0.1:8787",
            "ftp://access.example.com",
            "access.example.com",
            "https://",
            "https://:443",
        ] {
            assert!(gateway_base(refused).is_err(), "{refused}");
        }
    }
}

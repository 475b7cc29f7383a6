//! The whole local stack for end-to-end tests and `cargo xtask dev`: the Entra ID emulator,
//! the demo origin, and the built worker under `wrangler dev` (workerd) on 127.0.0.1.
//!
//! # No rebuild
//!
//! The root `wrangler.toml` has a `[build]` section (`cargo xtask build-worker`) that
//! `wrangler dev` runs before serving. A stack must not rebuild: `cargo xtask build-worker`
//! makes the release build once, before the tests. So the stack writes its own wrangler
//! configuration (`wrangler.json`, in a directory of its own under `target/e2e/`): the root
//! configuration without `[build]`, with `main` and every other path made absolute (the
//! already-built `worker/build/index.js`, which imports `index_bg.wasm`), and with its own
//! `[vars]`. Wrangler then only bundles that entry with its embedded esbuild, as it does after
//! the `[build]` command.
//!
//! # Vars
//!
//! `EDGE_ACCESS_CONFIG` (the configuration document as a JSON string; empty when the
//! document is `null`), `ENTRA_AUTHORITY` (the emulator's URL), `ORIGIN_URL` (the origin's
//! URL), what the browser sign-in needs — `GRAPH_URL` (the emulator's Microsoft Graph,
//! `{emulator}/graph`), `AZURE_CLIENT_SECRET` (the fixtures' client secret) and
//! `SESSION_SIGNING_KEY` (a private RSA JWK made once per test process,
//! [`Stack::session_signing_jwk`]) —, `SCIM_TOKEN` ([`SCIM_TOKEN`]) and `DIRECTORY_REFRESH_SECONDS`
//! (`0`: every request sees the directory SCIM left) — then [`StackConfig::vars`], which win
//! over the others.
//! In the document and in var values, these placeholders are replaced first: `${WORKER_URL}`
//! (`http://127.0.0.1:PORT`), `${WORKER_HOST}` (`127.0.0.1:PORT`), `${EMULATOR_URL}`,
//! `${ORIGIN_URL}`, `${TENANT_ID}`, `${CLIENT_ID}`, and the emulator's partner tenant's
//! `${PARTNER_TENANT_ID}`, `${PARTNER_CLIENT_ID}` and `${PARTNER_CLIENT_SECRET}`.
//!
//! # Processes
//!
//! Wrangler runs in its own process group with its output in
//! `target/e2e-logs/{name}-{pid}-{n}.log` ([`Stack::worker_log`]). Dropping the stack kills
//! the whole group (wrangler and its workerd), also while a failing test unwinds; if the test
//! process dies without unwinding, the kernel sends wrangler SIGTERM (Linux).
//!
//! # D1
//!
//! Each stack has its own local D1 state (`target/e2e/{name}-{pid}-{n}/state`), started from
//! a copy of the migrated state the first stack of the checkout made with
//! `wrangler d1 migrations apply` (`target/e2e-d1/`, one per set of migrations and wrangler
//! version), then [`StackConfig::d1_setup`] run on it.

mod d1_template;
pub(crate) mod process;
mod wrangler_config;

use std::fmt;
use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::origin::Origin;
use entra_emulator::client::HttpClient;
use entra_emulator::fixtures::{Fixtures, FixturesError};
use entra_emulator::{Emulator, EmulatorError};

/// How long `wrangler dev` may take to answer HTTP unless the config says otherwise.
pub const DEFAULT_STARTUP_TIMEOUT: Duration = Duration::from_secs(90);

/// What [`Stack::start`] requests until the worker answers (any status will do): a path under
/// the gateway's own prefix, so the probe is easy to tell apart in the worker log and no app
/// policy decides it.
pub const READINESS_PATH: &str = "/cdn-cgi/access/harness-ready";

/// The SCIM bearer token every stack's worker gets (`SCIM_TOKEN`), unless its vars say
/// otherwise.
pub const SCIM_TOKEN: &str = "scim-test-token-3f1c9a7e5b2d4c6e8a0b";

/// Where the worker serves SCIM, below its URL.
pub const SCIM_PATH: &str = "/cdn-cgi/access/scim/v2";

/// Set to `1` to make a missing prerequisite (wrangler, the worker build) fail the
/// end-to-end tests instead of skipping them.
pub const REQUIRE_E2E_VAR: &str = "EDGE_ACCESS_REQUIRE_E2E";

/// How many times [`Stack::start`] starts again when wrangler lost a port it was given.
const PORT_RACE_ATTEMPTS: u32 = 3;

/// What to start.
#[derive(Debug, Clone)]
pub struct StackConfig {
    /// The edge-access configuration document (`EDGE_ACCESS_CONFIG`); `Value::Null` leaves
    /// the worker unconfigured.
    pub config_document: Value,
    /// Extra worker vars; they win over the stack's own.
    pub vars: Vec<(String, String)>,
    /// The worker's port; a free one when `None`.
    pub port: Option<u16>,
    /// The emulator's fixtures; [`Fixtures::load_default`] when `None`.
    pub fixtures: Option<Fixtures>,
    /// The emulator's port; a free one when `None`.
    pub emulator_port: Option<u16>,
    /// The demo origin's port; a free one when `None`.
    pub origin_port: Option<u16>,
    /// Names the log file (a test's name, say).
    pub name: String,
    /// How long wrangler may take to answer.
    pub startup_timeout: Duration,
    /// SQL run against every D1 database after its migrations, before the worker starts
    /// (storage broken on purpose, say: `DROP TABLE sessions`).
    pub d1_setup: Vec<String>,
    /// Worker vars whose values are JSON (an object var, as `wrangler.jsonc` writes one); they
    /// win over every string var of the same name.
    pub json_vars: Vec<(String, Value)>,
    /// The worker's built entry (`index.js`, beside its `index_bg.wasm`): another build of
    /// the worker (the benchmark's phase-profile build, say); `worker/build/index.js` when
    /// `None`.
    pub worker_entry: Option<PathBuf>,
}

impl Default for StackConfig {
    fn default() -> Self {
        Self {
            config_document: Value::Null,
            vars: Vec::new(),
            port: None,
            fixtures: None,
            emulator_port: None,
            origin_port: None,
            name: "stack".into(),
            startup_timeout: DEFAULT_STARTUP_TIMEOUT,
            d1_setup: Vec::new(),
            json_vars: Vec::new(),
            worker_entry: None,
        }
    }
}

impl StackConfig {
    /// A stack serving `config_document`, everything else by default.
    pub fn new(config_document: Value) -> Self {
        Self {
            config_document,
            ..Self::default()
        }
    }

    /// Names the log file.
    #[must_use]
    pub fn named(mut self, name: &str) -> Self {
        self.name = name.to_owned();
        self
    }

    /// Adds a worker var.
    #[must_use]
    pub fn with_var(mut self, name: &str, value: &str) -> Self {
        self.vars.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds a worker var with a JSON value (see [`StackConfig::json_vars`]).
    #[must_use]
    pub fn with_json_var(mut self, name: &str, value: Value) -> Self {
        self.json_vars.push((name.to_owned(), value));
        self
    }

    /// Adds SQL to run against every D1 database after its migrations (see
    /// [`StackConfig::d1_setup`]).
    #[must_use]
    pub fn with_d1_setup(mut self, sql: &str) -> Self {
        self.d1_setup.push(sql.to_owned());
        self
    }
}

/// Why the stack did not start, or a wait on it failed.
#[derive(Debug)]
#[non_exhaustive]
pub enum StackError {
    /// No checkout to run in.
    Workspace(workspace_root::RootError),
    /// `node_modules/.bin/wrangler` is missing.
    WranglerMissing {
        /// Where it should be.
        path: PathBuf,
    },
    /// The worker's release build is missing.
    WorkerNotBuilt {
        /// The file that should be there.
        path: PathBuf,
    },
    /// The fixtures do not load.
    Fixtures(FixturesError),
    /// The emulator does not start.
    Emulator(EmulatorError),
    /// The demo origin does not start.
    Origin(std::io::Error),
    /// The root wrangler configuration cannot be used.
    WranglerConfig {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        problem: String,
    },
    /// A file or directory operation failed.
    Io {
        /// What was being done.
        action: &'static str,
        /// On what.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A program did not start.
    Spawn {
        /// The program.
        program: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `wrangler d1 migrations apply` failed.
    Migrations {
        /// Its exit status.
        status: ExitStatus,
        /// Its output.
        output: String,
    },
    /// `wrangler d1 execute` of [`StackConfig::d1_setup`] or [`Stack::execute_d1`] failed.
    D1Setup {
        /// Its exit status.
        status: ExitStatus,
        /// Its output.
        output: String,
    },
    /// Wrangler exited before answering.
    Exited {
        /// Its exit status.
        status: ExitStatus,
        /// The end of its log.
        log: String,
    },
    /// Wrangler did not answer in time.
    NotReady {
        /// How long the stack waited.
        waited: Duration,
        /// The end of its log.
        log: String,
    },
    /// The gateway's signing key could not be made.
    SigningKey(String),
    /// [`Stack::wait_for_log`] did not see its text in time.
    LogTimeout {
        /// The text waited for.
        needle: String,
        /// How long.
        waited: Duration,
        /// The end of the log.
        log: String,
    },
}

impl fmt::Display for StackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Workspace(source) => write!(f, "{source}"),
            Self::WranglerMissing { path } => write!(
                f,
                "wrangler is not installed (`{}` is missing): run `cargo xtask setup`",
                path.display()
            ),
            Self::WorkerNotBuilt { path } => write!(
                f,
                "the worker is not built (`{}` is missing): run `cargo xtask build-worker`",
                path.display()
            ),
            Self::Fixtures(source) => write!(f, "{source}"),
            Self::Emulator(source) => write!(f, "{source}"),
            Self::Origin(source) => write!(f, "the demo origin cannot listen: {source}"),
            Self::SigningKey(problem) => write!(f, "the session signing key: {problem}"),
            Self::WranglerConfig { path, problem } => {
                write!(f, "cannot use `{}`: {problem}", path.display())
            }
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
            Self::Spawn { program, source } => write!(f, "cannot start `{program}`: {source}"),
            Self::Migrations { status, output } => {
                write!(
                    f,
                    "`wrangler d1 migrations apply` failed ({status}):\n{output}"
                )
            }
            Self::D1Setup { status, output } => {
                write!(f, "`wrangler d1 execute` failed ({status}):\n{output}")
            }
            Self::Exited { status, log } => {
                write!(
                    f,
                    "`wrangler dev` exited before answering ({status}); its log ends:\n{log}"
                )
            }
            Self::NotReady { waited, log } => write!(
                f,
                "`wrangler dev` did not answer HTTP within {} s; its log ends:\n{log}",
                waited.as_secs()
            ),
            Self::LogTimeout {
                needle,
                waited,
                log,
            } => write!(
                f,
                "the worker log did not show `{needle}` within {} ms; it ends:\n{log}",
                waited.as_millis()
            ),
        }
    }
}

impl std::error::Error for StackError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Workspace(source) => Some(source),
            Self::Fixtures(source) => Some(source),
            Self::Emulator(source) => Some(source),
            Self::Origin(source) | Self::Io { source, .. } | Self::Spawn { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

impl StackError {
    /// Whether the error is a missing prerequisite ([`StackError::WranglerMissing`],
    /// [`StackError::WorkerNotBuilt`]) rather than a failure.
    pub fn is_missing_prerequisite(&self) -> bool {
        matches!(
            self,
            Self::WranglerMissing { .. } | Self::WorkerNotBuilt { .. }
        )
    }
}

/// A running stack; dropping it stops everything.
#[derive(Debug)]
pub struct Stack {
    wrangler: Option<Child>,
    addr: SocketAddr,
    url: String,
    log_path: PathBuf,
    run_dir: PathBuf,
    /// The worker's D1 databases (their bindings' names), in migration order.
    databases: Vec<String>,
    startup: Duration,
    /// `SESSION_SIGNING_KEY` as the worker got it (a private JWK), when it is JSON.
    session_signing_jwk: Option<Value>,
    origin: Origin,
    emulator: Emulator,
}

/// Numbers the stacks of this process, for unique directories and log names.
static STACKS: AtomicU64 = AtomicU64::new(0);

impl Stack {
    /// Starts the emulator, the origin and `wrangler dev`, and waits until the worker answers
    /// HTTP at [`READINESS_PATH`].
    ///
    /// # Errors
    ///
    /// A missing prerequisite (see [`Stack::check_prerequisites`]), a service that does not
    /// start, or wrangler exiting or not answering within [`StackConfig::startup_timeout`]
    /// (the error holds the end of its log).
    pub fn start(config: StackConfig) -> Result<Self, StackError> {
        // A port found free is free only until something else binds it (another test's
        // stack, wrangler's own helpers): when wrangler lost one of its ports that way, the
        // stack starts again on fresh ones.
        let mut attempt = 1;
        loop {
            match Self::start_once(config.clone()) {
                Err(StackError::Exited { ref log, .. })
                    if attempt < PORT_RACE_ATTEMPTS && log.contains("Address already in use") =>
                {
                    attempt += 1;
                }
                started => return started,
            }
        }
    }

    fn start_once(config: StackConfig) -> Result<Self, StackError> {
        let started = Instant::now();
        let mut paths = Paths::discover()?;
        if let Some(entry) = &config.worker_entry {
            paths.entry.clone_from(entry);
        }
        paths.check()?;

        let fixtures = match config.fixtures {
            Some(fixtures) => fixtures,
            None => Fixtures::load_default().map_err(StackError::Fixtures)?,
        };
        let emulator =
            Emulator::start_on(fixtures, config.emulator_port).map_err(StackError::Emulator)?;
        let origin = Origin::start_on(config.origin_port).map_err(StackError::Origin)?;
        let port = match config.port {
            Some(port) => port,
            None => free_port()?,
        };
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let url = format!("http://{addr}");

        let partner = emulator.partner();
        let placeholders = [
            ("${WORKER_URL}", url.clone()),
            ("${WORKER_HOST}", addr.to_string()),
            ("${EMULATOR_URL}", emulator.url().to_owned()),
            ("${ORIGIN_URL}", origin.url().to_owned()),
            ("${TENANT_ID}", emulator.tenant_id().to_owned()),
            ("${CLIENT_ID}", emulator.client_id().to_owned()),
            (
                "${PARTNER_TENANT_ID}",
                partner
                    .map(|p| p.tenant_id().to_owned())
                    .unwrap_or_default(),
            ),
            (
                "${PARTNER_CLIENT_ID}",
                partner
                    .map(|p| p.client_id().to_owned())
                    .unwrap_or_default(),
            ),
            (
                "${PARTNER_CLIENT_SECRET}",
                partner
                    .map(|p| p.client_secret().to_owned())
                    .unwrap_or_default(),
            ),
        ];
        let document = substitute(config.config_document, &placeholders);
        let document = match document {
            Value::Null => String::new(),
            document => document.to_string(),
        };
        let mut vars = vec![
            ("EDGE_ACCESS_CONFIG".to_owned(), document),
            ("ENTRA_AUTHORITY".to_owned(), emulator.url().to_owned()),
            ("ORIGIN_URL".to_owned(), origin.url().to_owned()),
            ("GRAPH_URL".to_owned(), emulator.graph_url()),
            (
                "AZURE_CLIENT_SECRET".to_owned(),
                emulator.client_secret().to_owned(),
            ),
            (
                "SESSION_SIGNING_KEY".to_owned(),
                default_signing_jwk()?.to_string(),
            ),
            ("SCIM_TOKEN".to_owned(), SCIM_TOKEN.to_owned()),
            ("DIRECTORY_REFRESH_SECONDS".to_owned(), "0".to_owned()),
        ];
        for (name, value) in config.vars {
            vars.push((name, replace_all(&value, &placeholders)));
        }
        let session_signing_jwk = vars
            .iter()
            .rev()
            .find(|(name, _)| name == "SESSION_SIGNING_KEY")
            .and_then(|(_, value)| serde_json::from_str::<Value>(value).ok())
            .filter(Value::is_object);

        let id = format!(
            "{}-{}-{}",
            sanitize(&config.name),
            std::process::id(),
            STACKS.fetch_add(1, Ordering::SeqCst)
        );
        let runs_dir = paths.target.join("e2e");
        remove_stale_runs(&runs_dir);
        let run_dir = runs_dir.join(&id);
        let logs_dir = paths.target.join("e2e-logs");
        for dir in [&run_dir, &logs_dir] {
            std::fs::create_dir_all(dir).map_err(|source| StackError::Io {
                action: "create",
                path: dir.clone(),
                source,
            })?;
        }
        let log_path = logs_dir.join(format!("{id}.log"));
        let config_path = run_dir.join("wrangler.json");
        let state_dir = run_dir.join("state");
        let json_vars: Vec<(String, Value)> = config
            .json_vars
            .into_iter()
            .map(|(name, value)| (name, substitute(value, &placeholders)))
            .collect();
        let migrations =
            wrangler_config::write(&paths.root, &paths.entry, &vars, &json_vars, &config_path)?;

        let mut stack = Self {
            wrangler: None,
            addr,
            url,
            log_path,
            run_dir,
            databases: migrations.clone(),
            startup: Duration::ZERO,
            session_signing_jwk,
            origin,
            emulator,
        };
        if !migrations.is_empty() {
            d1_template::copy_migrated(
                &paths.target,
                &paths.root,
                &config_path,
                &state_dir,
                |scratch| {
                    for database in &migrations {
                        stack.apply_migrations(&paths, &config_path, scratch, database)?;
                    }
                    Ok(())
                },
            )?;
        }
        for database in &migrations {
            for sql in &config.d1_setup {
                stack.execute_d1_on(&paths, &config_path, &state_dir, database, sql)?;
            }
        }
        stack.spawn_wrangler(&paths, &config_path, &state_dir)?;
        stack.wait_until_ready(config.startup_timeout)?;
        stack.startup = started.elapsed();
        Ok(stack)
    }

    /// Whether a stack can start here: wrangler installed and the worker built.
    ///
    /// # Errors
    ///
    /// [`StackError::WranglerMissing`] or [`StackError::WorkerNotBuilt`], each saying
    /// which command fixes it.
    pub fn check_prerequisites() -> Result<(), StackError> {
        Paths::discover()?.check()
    }

    /// For an end-to-end test's first line: `Ok(true)` when a stack can start here;
    /// `Ok(false)` after telling the terminal that `test` is skipped and which command
    /// fixes that (the message bypasses the test harness's output capture, so it shows in
    /// a plain `cargo test`); an error instead of a skip when [`REQUIRE_E2E_VAR`] is set.
    ///
    /// # Errors
    ///
    /// The missing prerequisite, when [`Stack::prerequisites_required`].
    pub fn should_run(test: &str) -> Result<bool, StackError> {
        match Self::check_prerequisites() {
            Ok(()) => Ok(true),
            Err(error) if Self::prerequisites_required() => Err(error),
            Err(error) => {
                use std::io::Write;
                let mut stderr = std::io::stderr().lock();
                // A note for a person; losing it must not fail the test.
                let _shown = writeln!(
                    stderr,
                    "SKIPPED {test}: {error} (set {REQUIRE_E2E_VAR}=1 to fail instead)"
                );
                Ok(false)
            }
        }
    }

    /// Whether [`REQUIRE_E2E_VAR`] asks missing prerequisites to fail tests.
    pub fn prerequisites_required() -> bool {
        std::env::var(REQUIRE_E2E_VAR).is_ok_and(|value| value == "1" || value == "true")
    }

    /// The worker: `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Where the worker listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The Entra ID emulator the worker trusts.
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// The demo origin behind the worker.
    pub fn origin(&self) -> &Origin {
        &self.origin
    }

    /// The private JWK the worker signs application tokens with (`SESSION_SIGNING_KEY`):
    /// the stack's default, made once per test process, unless [`StackConfig::vars`] set
    /// another (`None` when that one is not a JSON object).
    pub fn session_signing_jwk(&self) -> Option<&Value> {
        self.session_signing_jwk.as_ref()
    }

    /// How long [`Stack::start`] took.
    pub fn startup_time(&self) -> Duration {
        self.startup
    }

    /// Wrangler's log file (stdout and stderr, the worker's `console` output included).
    pub fn worker_log_path(&self) -> &Path {
        &self.log_path
    }

    /// Everything wrangler has logged so far (empty when the file cannot be read).
    pub fn worker_log(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// The log lines that are JSON objects: the worker's structured log lines.
    pub fn worker_log_json(&self) -> Vec<Value> {
        self.worker_log()
            .lines()
            .filter_map(|line| {
                let line = line.trim();
                line.starts_with('{')
                    .then(|| serde_json::from_str::<Value>(line).ok())
                    .flatten()
                    .filter(Value::is_object)
            })
            .collect()
    }

    /// Waits until the log contains `needle` (log lines arrive after the responses they
    /// describe) and returns the whole log.
    ///
    /// # Errors
    ///
    /// [`StackError::LogTimeout`] after `timeout`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> Result<String, StackError> {
        let started = Instant::now();
        loop {
            let log = self.worker_log();
            if log.contains(needle) {
                return Ok(log);
            }
            if started.elapsed() >= timeout {
                return Err(StackError::LogTimeout {
                    needle: needle.to_owned(),
                    waited: started.elapsed(),
                    log: tail(&log),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The bytes the worker's local D1 storage takes on disk (every file of wrangler's D1
    /// state, write-ahead logs included): what the worker has stored so far.
    pub fn d1_storage_bytes(&self) -> u64 {
        fn walk(dir: &Path) -> u64 {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return 0;
            };
            entries
                .filter_map(Result::ok)
                .map(|entry| match entry.file_type() {
                    Ok(kind) if kind.is_dir() => walk(&entry.path()),
                    Ok(_) => entry.metadata().map_or(0, |m| m.len()),
                    Err(_) => 0,
                })
                .sum()
        }
        walk(&self.run_dir.join("state").join("v3").join("d1"))
    }

    /// Runs `sql` with `wrangler d1 execute --local` against the worker's D1 databases while
    /// it runs: the same local SQLite state `wrangler dev` serves, changed underneath it (to
    /// make a table unreadable, say, and to put it back).
    ///
    /// # Errors
    ///
    /// [`StackError::D1Setup`] when wrangler refuses the SQL or fails.
    pub fn execute_d1(&self, sql: &str) -> Result<(), StackError> {
        let paths = Paths::discover()?;
        let config_path = self.run_dir.join("wrangler.json");
        let state_dir = self.run_dir.join("state");
        for database in &self.databases {
            self.execute_d1_on(&paths, &config_path, &state_dir, database, sql)?;
        }
        Ok(())
    }

    /// Whether wrangler is still running.
    pub fn is_running(&mut self) -> bool {
        self.wrangler
            .as_mut()
            .is_some_and(|child| matches!(child.try_wait(), Ok(None)))
    }

    fn apply_migrations(
        &self,
        paths: &Paths,
        config_path: &Path,
        state_dir: &Path,
        database: &str,
    ) -> Result<(), StackError> {
        let mut command = paths.wrangler_command(&self.run_dir);
        command
            .args(["d1", "migrations", "apply", database, "--local"])
            .arg("--persist-to")
            .arg(state_dir)
            .arg("--config")
            .arg(config_path)
            .stdin(Stdio::null());
        let output = command.output().map_err(|source| StackError::Spawn {
            program: "wrangler d1 migrations apply".into(),
            source,
        })?;
        if output.status.success() {
            Ok(())
        } else {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Err(StackError::Migrations {
                status: output.status,
                output: tail(&text),
            })
        }
    }

    fn execute_d1_on(
        &self,
        paths: &Paths,
        config_path: &Path,
        state_dir: &Path,
        database: &str,
        sql: &str,
    ) -> Result<(), StackError> {
        let mut command = paths.wrangler_command(&self.run_dir);
        command
            .args(["d1", "execute", database, "--local"])
            .arg("--persist-to")
            .arg(state_dir)
            .arg("--config")
            .arg(config_path)
            .args(["--command", sql])
            .stdin(Stdio::null());
        let output = command.output().map_err(|source| StackError::Spawn {
            program: "wrangler d1 execute".into(),
            source,
        })?;
        if output.status.success() {
            Ok(())
        } else {
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            Err(StackError::D1Setup {
                status: output.status,
                output: tail(&text),
            })
        }
    }

    fn spawn_wrangler(
        &mut self,
        paths: &Paths,
        config_path: &Path,
        state_dir: &Path,
    ) -> Result<(), StackError> {
        let log = File::create(&self.log_path).map_err(|source| StackError::Io {
            action: "create",
            path: self.log_path.clone(),
            source,
        })?;
        let log_err = log.try_clone().map_err(|source| StackError::Io {
            action: "open",
            path: self.log_path.clone(),
            source,
        })?;
        let inspector_port = free_port()?;
        let mut command = paths.wrangler_command(&self.run_dir);
        command
            .args(["dev", "--local", "--show-interactive-dev-session=false"])
            .arg("--config")
            .arg(config_path)
            .arg("--persist-to")
            .arg(state_dir)
            .args(["--ip", "127.0.0.1", "--port", &self.addr.port().to_string()])
            .args(["--inspector-port", &inspector_port.to_string()])
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        let child = process::spawn_in_own_group(command).map_err(|source| StackError::Spawn {
            program: paths.wrangler.display().to_string(),
            source,
        })?;
        self.wrangler = Some(child);
        Ok(())
    }

    fn wait_until_ready(&mut self, timeout: Duration) -> Result<(), StackError> {
        let started = Instant::now();
        let client = HttpClient::with_timeout(Duration::from_secs(5));
        loop {
            if let Some(child) = self.wrangler.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.stop();
                    return Err(StackError::Exited {
                        status,
                        log: tail(&self.worker_log()),
                    });
                }
            }
            if client.get(&format!("{}{READINESS_PATH}", self.url)).is_ok() {
                return Ok(());
            }
            if started.elapsed() >= timeout {
                self.stop();
                return Err(StackError::NotReady {
                    waited: started.elapsed(),
                    log: tail(&self.worker_log()),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Kills wrangler's process group (wrangler and workerd) and reaps wrangler.
    fn stop(&mut self) {
        if let Some(child) = self.wrangler.take() {
            process::kill_group(child);
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        self.stop();
        // The configuration and the local storage; the log stays.
        let _removed = std::fs::remove_dir_all(&self.run_dir);
    }
}

/// Where the pieces are.
#[derive(Debug)]
struct Paths {
    root: PathBuf,
    target: PathBuf,
    wrangler: PathBuf,
    entry: PathBuf,
}

impl Paths {
    /// The pieces of the checkout the tests run in, found at run time.
    fn discover() -> Result<Self, StackError> {
        let root = workspace_root::find().map_err(StackError::Workspace)?;
        Ok(Self {
            wrangler: root.join("node_modules").join(".bin").join("wrangler"),
            entry: root.join("worker").join("build").join("index.js"),
            target: workspace_root::target_dir(&root),
            root,
        })
    }

    fn check(&self) -> Result<(), StackError> {
        if !self.wrangler.is_file() {
            return Err(StackError::WranglerMissing {
                path: self.wrangler.clone(),
            });
        }
        for file in [
            self.entry.clone(),
            self.entry.with_file_name("index_bg.wasm"),
        ] {
            if !file.is_file() {
                return Err(StackError::WorkerNotBuilt { path: file });
            }
        }
        Ok(())
    }

    /// Wrangler, offline and quiet: no metrics, no update check (it comes with the banner),
    /// no `Request.cf` download, a dev registry and debug logs of its own in `run_dir`.
    fn wrangler_command(&self, run_dir: &Path) -> Command {
        let mut command = Command::new(&self.wrangler);
        command
            .current_dir(&self.root)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_REGISTRY_PATH", run_dir.join("registry"))
            .env("WRANGLER_LOG_PATH", run_dir.join("wrangler-logs"))
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0");
        command
    }
}

/// The default `SESSION_SIGNING_KEY`: one 2048-bit key per test process (making one takes a
/// moment), shared by every stack.
fn default_signing_jwk() -> Result<&'static Value, StackError> {
    static KEY: OnceLock<Result<Value, String>> = OnceLock::new();
    KEY.get_or_init(|| edge_access_token::generate_signing_jwk().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|problem| StackError::SigningKey(problem.clone()))
}

/// Removes the run directories (`{name}-{pid}-{n}`) of processes that are gone: a harness
/// killed without unwinding leaves its own behind.
fn remove_stale_runs(runs_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(runs_dir) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|name| name.rsplit('-').nth(1))
            .and_then(|pid| pid.parse::<u32>().ok());
        if let Some(pid) = pid {
            if pid != std::process::id() && !process::is_alive(pid) {
                let _removed = std::fs::remove_dir_all(entry.path());
            }
        }
    }
}

/// A port that was free a moment ago on 127.0.0.1.
fn free_port() -> Result<u16, StackError> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|source| StackError::Io {
            action: "bind a free port on",
            path: PathBuf::from("127.0.0.1"),
            source,
        })
}

/// `value` with the placeholders replaced in every string.
fn substitute(value: Value, placeholders: &[(&str, String)]) -> Value {
    match value {
        Value::String(text) => Value::String(replace_all(&text, placeholders)),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| substitute(item, placeholders))
                .collect(),
        ),
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(key, item)| (key, substitute(item, placeholders)))
                .collect(),
        ),
        other => other,
    }
}

fn replace_all(text: &str, placeholders: &[(&str, String)]) -> String {
    placeholders
        .iter()
        .fold(text.to_owned(), |text, (name, value)| {
            text.replace(name, value)
        })
}

/// A file-name-safe version of `name`.
fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The last lines of a log, for error messages.
fn tail(log: &str) -> String {
    const LINES: usize = 60;
    let lines: Vec<&str> = log.lines().collect();
    let skip = lines.len().saturating_sub(LINES);
    lines
        .iter()
        .skip(skip)
        .copied()
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_replaced_everywhere() {
        let placeholders = [("${WORKER_HOST}", "127.0.0.1:9".to_owned())];
        let document = serde_json::json!({
            "apps": [{ "domain": "${WORKER_HOST}/admin", "precedence": 1 }],
        });
        let replaced = substitute(document, &placeholders);
        assert_eq!(replaced["apps"][0]["domain"], "127.0.0.1:9/admin");
        assert_eq!(replaced["apps"][0]["precedence"], 1);
    }

    #[test]
    fn names_become_file_names() {
        assert_eq!(sanitize("harness::smoke test"), "harness__smoke_test");
    }

    #[test]
    fn tails_keep_the_last_lines() {
        let log: String = (0..100).map(|n| format!("{n}\n")).collect();
        let tail = tail(&log);
        assert!(tail.starts_with("40\n"));
        assert!(tail.ends_with("99"));
    }
}

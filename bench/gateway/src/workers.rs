//! The benchmark's own Workers under `wrangler dev` (the gateway itself runs in the tests'
//! harness, `edge_access_tests::stack::Stack`): the pass-through and raw-WebCrypto JS
//! Workers and the Rust verify Worker, each with a wrangler configuration of its own (no
//! `[build]`: everything is built before), local mode, loopback only, each wrangler in its
//! own process group, killed as a group when dropped.

use std::fs::File;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Map, Value};

use crate::client::{Connection, Prepared};
use crate::cpu::Group;

/// Where the repository's pieces are.
#[derive(Debug, Clone)]
pub struct Paths {
    pub root: PathBuf,
    pub target: PathBuf,
    pub wrangler: PathBuf,
}

impl Paths {
    /// The pieces of the checkout the benchmark runs in, found at run time.
    ///
    /// # Errors
    ///
    /// When there is none ([`workspace_root::find`]).
    pub fn discover() -> Result<Self, String> {
        let root = workspace_root::find().map_err(|e| e.to_string())?;
        Ok(Self {
            wrangler: root.join("node_modules").join(".bin").join("wrangler"),
            target: workspace_root::target_dir(&root),
            root,
        })
    }

    /// The gateway's compatibility date (root `wrangler.toml`), so every Worker here runs
    /// with the same workerd behaviour as the gateway.
    pub fn compatibility_date(&self) -> Result<String, String> {
        let path = self.root.join("wrangler.toml");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        text.lines()
            .filter_map(|line| line.trim().strip_prefix("compatibility_date"))
            .filter_map(|rest| rest.trim().strip_prefix('='))
            .map(|value| value.trim().trim_matches('"').to_owned())
            .next()
            .ok_or_else(|| format!("{} has no compatibility_date", path.display()))
    }
}

/// A Worker under `wrangler dev`.
#[derive(Debug)]
pub struct Worker {
    pub name: String,
    pub addr: SocketAddr,
    child: Option<Child>,
    log: PathBuf,
    run_dir: PathBuf,
}

impl Worker {
    /// Starts `wrangler dev` for the module `main` with `vars`. Call from the main thread:
    /// on Linux the child is sent SIGTERM when the thread that forked it exits.
    pub fn spawn(
        paths: &Paths,
        name: &str,
        main: &Path,
        vars: &[(&str, &str)],
    ) -> Result<Self, String> {
        if !main.is_file() {
            return Err(format!("{} is missing: build it first", main.display()));
        }
        let bench_dir = paths.target.join("gateway-bench");
        let run_dir = bench_dir.join(format!("{name}-{}", std::process::id()));
        let logs = bench_dir.join("logs");
        for dir in [&run_dir, &logs] {
            std::fs::create_dir_all(dir)
                .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        }
        let vars: Map<String, Value> = vars
            .iter()
            .map(|(key, value)| ((*key).to_owned(), Value::String((*value).to_owned())))
            .collect();
        let config = json!({
            "name": format!("edge-access-bench-{name}"),
            "main": main.to_string_lossy(),
            "compatibility_date": paths.compatibility_date()?,
            "vars": vars,
        });
        let config_path = run_dir.join("wrangler.json");
        std::fs::write(&config_path, config.to_string())
            .map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;

        let port = free_port()?;
        let inspector_port = free_port()?;
        let log = logs.join(format!("{name}.log"));
        let out =
            File::create(&log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
        let err = out
            .try_clone()
            .map_err(|e| format!("cannot open {}: {e}", log.display()))?;
        let mut command = Command::new(&paths.wrangler);
        command
            .current_dir(&paths.root)
            .env("WRANGLER_SEND_METRICS", "false")
            .env("WRANGLER_SEND_ERROR_REPORTS", "false")
            .env("WRANGLER_HIDE_BANNER", "true")
            .env("CLOUDFLARE_CF_FETCH_ENABLED", "false")
            .env("WRANGLER_REGISTRY_PATH", run_dir.join("registry"))
            .env("WRANGLER_LOG_PATH", run_dir.join("wrangler-logs"))
            .env("NO_COLOR", "1")
            .env("FORCE_COLOR", "0")
            .args(["dev", "--local", "--show-interactive-dev-session=false"])
            .arg("--config")
            .arg(&config_path)
            .arg("--persist-to")
            .arg(run_dir.join("state"))
            .args(["--ip", "127.0.0.1", "--port", &port.to_string()])
            .args(["--inspector-port", &inspector_port.to_string()])
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err);
        process_group::lead_new_group(&mut command);
        let child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", paths.wrangler.display()))?;
        Ok(Self {
            name: name.to_owned(),
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, port)),
            child: Some(child),
            log,
            run_dir,
        })
    }

    /// Waits until `GET /ready` answers (any status).
    pub fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        let ready = Prepared::get(self.addr, "/ready", &[]);
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    return Err(format!(
                        "wrangler dev for {} exited ({status}); see {}",
                        self.name,
                        self.log.display()
                    ));
                }
            }
            if Connection::new(self.addr).send(&ready).is_ok() {
                return Ok(());
            }
            if started.elapsed() > timeout {
                return Err(format!(
                    "wrangler dev for {} did not answer within {} s; see {}",
                    self.name,
                    timeout.as_secs(),
                    self.log.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The process group of its wrangler (and workerd).
    pub fn group(&self) -> Option<Group> {
        self.child
            .as_ref()
            .and_then(|child| i32::try_from(child.id()).ok())
            .map(Group)
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            process_group::kill_group(&mut child);
        }
        let _removed = std::fs::remove_dir_all(&self.run_dir);
    }
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .map_err(|e| format!("no free port on 127.0.0.1: {e}"))
}

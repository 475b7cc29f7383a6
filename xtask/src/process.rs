//! Running programs: one environment for every child, echoed command lines, checked exits.

use std::ffi::{OsStr, OsString};
use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::XtaskError;

/// The environment every child process gets: the repository root as working directory and
/// the variables set up by `cargo xtask setup` on top of xtask's own environment.
#[derive(Debug, Clone)]
pub struct Env {
    root: PathBuf,
    vars: Vec<(OsString, OsString)>,
}

impl Env {
    /// Children run in `root` with xtask's own environment.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            vars: Vec::new(),
        }
    }

    /// Sets `key` for every child started from now on.
    pub fn set(&mut self, key: impl Into<OsString>, value: impl Into<OsString>) {
        let key = key.into();
        let value = value.into();
        match self.vars.iter_mut().find(|(existing, _)| *existing == key) {
            Some(entry) => entry.1 = value,
            None => self.vars.push((key, value)),
        }
    }

    /// The value a child sees for `key`.
    pub fn var(&self, key: &str) -> Option<OsString> {
        self.vars
            .iter()
            .rev()
            .find(|(existing, _)| existing == key)
            .map(|(_, value)| value.clone())
            .or_else(|| std::env::var_os(key))
    }

    /// Puts `dirs` in front of the children's `PATH`.
    pub fn prepend_path(&mut self, dirs: &[PathBuf]) -> Result<(), XtaskError> {
        let current = self.var("PATH").unwrap_or_default();
        let mut paths: Vec<PathBuf> = dirs.to_vec();
        paths.extend(std::env::split_paths(&current).filter(|path| !dirs.contains(path)));
        let joined = std::env::join_paths(paths).map_err(|error| XtaskError::Tool {
            tool: "PATH".into(),
            problem: error.to_string(),
        })?;
        self.set("PATH", joined);
        Ok(())
    }

    /// The variables set on top of xtask's environment, for printing.
    pub fn vars(&self) -> impl Iterator<Item = (&OsStr, &OsStr)> {
        self.vars
            .iter()
            .map(|(key, value)| (key.as_os_str(), value.as_os_str()))
    }

    /// A command for `program` in the repository root with this environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command.current_dir(&self.root);
        command.envs(self.vars.iter().map(|(key, value)| (key, value)));
        command
    }

    /// `cargo`, the same one that runs xtask when there is one.
    pub fn cargo(&self) -> Command {
        self.command(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
    }
}

/// Runs `command` with inherited stdin/stdout/stderr after echoing it; fails unless it exits 0.
pub fn run(command: &mut Command) -> Result<(), XtaskError> {
    let line = describe(command);
    println!("    $ {line}");
    let status = command
        .status()
        .map_err(|source| spawn_error(command, source))?;
    if status.success() {
        Ok(())
    } else {
        Err(XtaskError::Failed {
            command: line,
            status,
        })
    }
}

/// Like [`run`], but also returns what the command wrote to stderr (still shown as it comes)
/// when it fails, so a caller can tell one failure from another.
pub fn run_keeping_stderr(command: &mut Command) -> Result<(), (XtaskError, String)> {
    let line = describe(command);
    println!("    $ {line}");
    let mut child = command
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| (spawn_error(command, source), String::new()))?;
    let mut kept = Vec::new();
    if let Some(mut stderr) = child.stderr.take() {
        let mut buffer = [0_u8; 4096];
        let mut terminal = std::io::stderr();
        loop {
            match stderr.read(&mut buffer) {
                Ok(0) | Err(_) => break,
                Ok(read) => {
                    let chunk = buffer.get(..read).unwrap_or_default();
                    // Output for a person: losing it must not fail the build.
                    let _shown = terminal.write_all(chunk);
                    kept.extend_from_slice(chunk);
                }
            }
        }
    }
    let status = child
        .wait()
        .map_err(|source| (spawn_error(command, source), String::new()))?;
    if status.success() {
        Ok(())
    } else {
        let error = XtaskError::Failed {
            command: line,
            status,
        };
        Err((error, String::from_utf8_lossy(&kept).into_owned()))
    }
}

/// Runs `command` quietly and returns its stdout; fails unless it exits 0.
pub fn output(command: &mut Command) -> Result<String, XtaskError> {
    let result = command
        .stdin(Stdio::null())
        .stderr(Stdio::inherit())
        .output()
        .map_err(|source| spawn_error(command, source))?;
    if result.status.success() {
        Ok(String::from_utf8_lossy(&result.stdout).into_owned())
    } else {
        Err(XtaskError::Failed {
            command: describe(command),
            status: result.status,
        })
    }
}

/// The stdout of `command` when it starts and exits 0, `None` otherwise: for asking an
/// installed tool its version, where "not there" and "broken" both mean "install it".
pub fn probe(command: &mut Command) -> Option<String> {
    let result = command
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    result
        .status
        .success()
        .then(|| String::from_utf8_lossy(&result.stdout).trim().to_owned())
}

/// The command line of `command`, as a person would type it.
pub fn describe(command: &Command) -> String {
    let program = command.get_program().to_string_lossy();
    let program = program.rsplit('/').next().unwrap_or(&program).to_owned();
    command
        .get_args()
        .map(|arg| arg.to_string_lossy())
        .fold(program, |mut line, arg| {
            line.push(' ');
            line.push_str(&arg);
            line
        })
}

/// An [`XtaskError::Spawn`] for `command`.
pub fn spawn_error(command: &Command, source: std::io::Error) -> XtaskError {
    XtaskError::Spawn {
        program: command.get_program().to_string_lossy().into_owned(),
        source,
    }
}

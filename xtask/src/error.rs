//! The one error type of xtask: every failure names what was attempted and on what.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::process::ExitStatus;

/// Why an xtask command stopped.
#[derive(Debug)]
pub enum XtaskError {
    /// The command line was not understood.
    Usage(String),
    /// A file-system operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    /// A program could not be started at all (usually: it is not installed).
    Spawn { program: String, source: io::Error },
    /// A program ran and reported failure.
    Failed { command: String, status: ExitStatus },
    /// `Cargo.lock` does not say which version of a package to match.
    Lockfile {
        package: &'static str,
        problem: String,
    },
    /// A tool is present but not usable as installed.
    Tool { tool: String, problem: String },
    /// A service of the dev stack did not start or stopped on its own.
    Stack { service: String, problem: String },
    /// No checkout to act on.
    Workspace(workspace_root::RootError),
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

impl XtaskError {
    /// An [`XtaskError::Io`] for `action` on `path`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

impl fmt::Display for XtaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Usage(message) => write!(f, "{message}"),
            Self::Io {
                action,
                path,
                source,
            } => write!(f, "cannot {action} `{}`: {source}", path.display()),
            Self::Spawn { program, source } => {
                write!(f, "cannot start `{program}`: {source}")?;
                if source.kind() == io::ErrorKind::NotFound {
                    write!(f, " (is it installed and on PATH?)")?;
                }
                Ok(())
            }
            Self::Failed { command, status } => write!(f, "`{command}` failed ({status})"),
            Self::Lockfile { package, problem } => {
                write!(f, "Cargo.lock: package `{package}`: {problem}")
            }
            Self::Tool { tool, problem } => write!(f, "`{tool}`: {problem}"),
            Self::Stack { service, problem } => write!(f, "dev stack: `{service}` {problem}"),
            Self::Workspace(error) => write!(f, "{error}"),
            Self::Interrupted => write!(f, "interrupted"),
        }
    }
}

impl std::error::Error for XtaskError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { source, .. } | Self::Spawn { source, .. } => Some(source),
            Self::Workspace(error) => Some(error),
            _ => None,
        }
    }
}

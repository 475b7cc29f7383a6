//! Where things are: the repository, the shared target directory, installed tools.

use std::path::{Path, PathBuf};

use crate::error::XtaskError;

/// Paths xtask reads and writes, resolved once.
#[derive(Debug, Clone)]
pub struct Layout {
    /// The workspace root (the directory holding `Cargo.lock`).
    pub root: PathBuf,
    /// Cargo's target directory, shared by every build of the workspace.
    pub target_dir: PathBuf,
    /// Where `cargo install` puts binaries (`~/.cargo/bin`): the cache CI keeps.
    pub cargo_bin: PathBuf,
}

impl Layout {
    /// The layout of the checkout xtask runs in, found at run time
    /// ([`workspace_root::find`]): a moved clone acts on itself, never on the directory
    /// xtask was compiled in.
    ///
    /// # Errors
    ///
    /// When no checkout is found, or neither `CARGO_HOME` nor `HOME` says where cargo
    /// installs binaries.
    pub fn discover() -> Result<Self, XtaskError> {
        Self::at(workspace_root::find().map_err(XtaskError::Workspace)?)
    }

    /// The layout of the checkout at `root`.
    ///
    /// # Errors
    ///
    /// When neither `CARGO_HOME` nor `HOME` says where cargo installs binaries.
    pub fn at(root: PathBuf) -> Result<Self, XtaskError> {
        let target_dir = workspace_root::target_dir(&root);
        let install_root = std::env::var_os("CARGO_INSTALL_ROOT")
            .or_else(|| std::env::var_os("CARGO_HOME"))
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".cargo")))
            .ok_or_else(|| XtaskError::Tool {
                tool: "cargo".into(),
                problem: "cannot tell where `cargo install` puts binaries: \
                          set CARGO_HOME or HOME"
                    .into(),
            })?;
        Ok(Self {
            root,
            target_dir,
            cargo_bin: install_root.join("bin"),
        })
    }

    /// A binary installed by `cargo install`.
    pub fn cargo_installed(&self, name: &str) -> PathBuf {
        self.cargo_bin
            .join(format!("{name}{}", std::env::consts::EXE_SUFFIX))
    }

    /// The npm tools' folder.
    pub fn node_modules(&self) -> PathBuf {
        self.root.join("node_modules")
    }

    /// The worker crate.
    pub fn worker_dir(&self) -> PathBuf {
        self.root.join("worker")
    }

    /// What worker-build writes: `index.js` (the entry wrangler runs) and `index_bg.wasm`.
    pub fn worker_build_dir(&self) -> PathBuf {
        self.worker_dir().join("build")
    }

    /// policy-core's JavaScript tests and benchmarks.
    pub fn policy_core_js_dir(&self) -> PathBuf {
        self.root.join("policy-core").join("js")
    }

    /// The Node package of policy-core built by wasm-bindgen.
    pub fn policy_core_package_dir(&self) -> PathBuf {
        self.target_dir.join("policy-core-js")
    }

    /// Files xtask keeps for itself (stamps).
    pub fn xtask_dir(&self) -> PathBuf {
        self.target_dir.join("xtask")
    }
}

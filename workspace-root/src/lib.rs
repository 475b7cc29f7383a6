#![doc = include_str!("../README.md")]

use std::ffi::OsStr;
use std::fmt;
use std::path::{Path, PathBuf};

/// The variable that names the checkout explicitly.
pub const ROOT_VAR: &str = "EDGE_ACCESS_ROOT";

/// Why no checkout was found.
#[derive(Debug)]
#[non_exhaustive]
pub enum RootError {
    /// [`ROOT_VAR`] names a directory without a workspace `Cargo.toml`.
    NotAWorkspace {
        /// The directory named.
        path: PathBuf,
    },
    /// No directory at or above these holds a workspace `Cargo.toml`.
    NotFound {
        /// Where the walks started.
        starts: Vec<PathBuf>,
    },
}

impl fmt::Display for RootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootError::NotAWorkspace { path } => write!(
                f,
                "{ROOT_VAR} names `{}`, which has no Cargo.toml with a [workspace]",
                path.display()
            ),
            RootError::NotFound { starts } => {
                write!(
                    f,
                    "no edge-access checkout (a Cargo.toml with a [workspace]) at or above"
                )?;
                for (i, start) in starts.iter().enumerate() {
                    let sep = if i == 0 { " " } else { " or " };
                    write!(f, "{sep}`{}`", start.display())?;
                }
                write!(f, "; run from inside the checkout or set {ROOT_VAR}")
            }
        }
    }
}

impl std::error::Error for RootError {}

/// The checkout this process acts on (see the crate documentation for the order).
///
/// # Errors
///
/// [`RootError::NotAWorkspace`] for a wrong [`ROOT_VAR`]; [`RootError::NotFound`] when no
/// walk finds a workspace.
pub fn find() -> Result<PathBuf, RootError> {
    let var = std::env::var_os(ROOT_VAR);
    let current = std::env::current_dir().ok();
    let exe = std::env::current_exe().ok();
    find_from(
        var.as_deref().filter(|v| !v.is_empty()),
        current.as_deref(),
        exe.as_deref(),
    )
}

/// [`find`] with its inputs given: the override, the current directory, the executable.
///
/// # Errors
///
/// As [`find`].
pub fn find_from(
    var: Option<&OsStr>,
    current: Option<&Path>,
    exe: Option<&Path>,
) -> Result<PathBuf, RootError> {
    if let Some(var) = var {
        let path = PathBuf::from(var);
        return if is_workspace_root(&path) {
            Ok(path)
        } else {
            Err(RootError::NotAWorkspace { path })
        };
    }
    let starts: Vec<&Path> = current.into_iter().chain(exe).collect();
    starts
        .iter()
        .find_map(|start| start.ancestors().find(|dir| is_workspace_root(dir)))
        .map(Path::to_path_buf)
        .ok_or_else(|| RootError::NotFound {
            starts: starts.iter().map(|s| s.to_path_buf()).collect(),
        })
}

/// Cargo's target directory for the checkout at `root`: `CARGO_TARGET_DIR` (relative to
/// `root` when relative), else `root/target`.
pub fn target_dir(root: &Path) -> PathBuf {
    target_dir_from(root, std::env::var_os("CARGO_TARGET_DIR").as_deref())
}

/// [`target_dir`] with `CARGO_TARGET_DIR` given.
pub fn target_dir_from(root: &Path, var: Option<&OsStr>) -> PathBuf {
    match var.filter(|v| !v.is_empty()) {
        Some(dir) => root.join(dir),
        None => root.join("target"),
    }
}

/// Whether `dir/Cargo.toml` declares a workspace (a line that is `[workspace]`).
fn is_workspace_root(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("Cargo.toml"))
        .is_ok_and(|text| text.lines().any(|line| line.trim() == "[workspace]"))
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    /// A fresh directory under the system's temporary directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static N: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "edge-access-workspace-root-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        /// A checkout at `name` with a member crate `tests/` and `target/debug/`.
        fn checkout(&self, name: &str) -> PathBuf {
            let root = self.0.join(name);
            std::fs::create_dir_all(root.join("tests/src")).unwrap();
            std::fs::create_dir_all(root.join("target/debug/deps")).unwrap();
            std::fs::write(
                root.join("Cargo.toml"),
                "[workspace]\nmembers = [\"tests\"]\n",
            )
            .unwrap();
            std::fs::write(root.join("tests/Cargo.toml"), "[package]\nname = \"t\"\n").unwrap();
            root
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _removed = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn a_member_crate_finds_its_workspace() {
        let scratch = Scratch::new();
        let root = scratch.checkout("repo");
        let found = find_from(None, Some(&root.join("tests/src")), None).unwrap();
        assert_eq!(found, root);
    }

    #[test]
    fn a_moved_checkout_acts_on_itself() {
        let scratch = Scratch::new();
        let old = scratch.checkout("old");
        std::fs::rename(&old, scratch.0.join("new")).unwrap();
        let new = scratch.0.join("new");
        // Run from the new place, by a binary that was built in the old one and moved along.
        let exe = new.join("target/debug/deps/xtask");
        let found = find_from(None, Some(&new.join("tests")), Some(&exe)).unwrap();
        assert_eq!(found, new);
        let found = find_from(None, Some(&scratch.0), Some(&exe)).unwrap();
        assert_eq!(found, new, "from outside, the executable's checkout");
    }

    #[test]
    fn the_current_directory_wins_over_the_executable() {
        let scratch = Scratch::new();
        let here = scratch.checkout("here");
        let built = scratch.checkout("built");
        let exe = built.join("target/debug/xtask");
        let found = find_from(None, Some(&here), Some(&exe)).unwrap();
        assert_eq!(found, here);
    }

    #[test]
    fn the_variable_wins_and_must_name_a_workspace() {
        let scratch = Scratch::new();
        let named = scratch.checkout("named");
        let here = scratch.checkout("here");
        let found = find_from(Some(named.as_os_str()), Some(&here), None).unwrap();
        assert_eq!(found, named);
        let member = named.join("tests");
        let error = find_from(Some(member.as_os_str()), Some(&here), None).unwrap_err();
        assert!(matches!(error, RootError::NotAWorkspace { path } if path == member));
    }

    #[test]
    fn nothing_found_names_where_it_looked() {
        let scratch = Scratch::new();
        let error = find_from(None, Some(&scratch.0), Some(&scratch.0.join("bin"))).unwrap_err();
        assert!(matches!(&error, RootError::NotFound { starts } if starts.len() == 2));
        assert!(error.to_string().contains(ROOT_VAR));
    }

    #[test]
    fn a_package_manifest_is_not_a_workspace() {
        let scratch = Scratch::new();
        let root = scratch.checkout("repo");
        assert!(is_workspace_root(&root));
        assert!(!is_workspace_root(&root.join("tests")));
        std::fs::write(
            root.join("Cargo.toml"),
            "[workspace.package]\nversion = \"1\"\n",
        )
        .unwrap();
        assert!(!is_workspace_root(&root));
    }

    #[test]
    fn the_target_directory_follows_cargo() {
        let root = Path::new("/checkout");
        assert_eq!(target_dir_from(root, None), root.join("target"));
        assert_eq!(
            target_dir_from(root, Some(OsStr::new("out"))),
            root.join("out")
        );
        assert_eq!(
            target_dir_from(root, Some(OsStr::new("/elsewhere/target"))),
            PathBuf::from("/elsewhere/target")
        );
    }

    /// This crate's own checkout, found at run time from where `cargo test` runs it.
    #[test]
    fn this_checkout_is_found() {
        let here = std::env::current_dir().unwrap();
        let found = find_from(None, Some(&here), None).unwrap();
        assert!(found.join("workspace-root").join("Cargo.toml").is_file());
    }
}

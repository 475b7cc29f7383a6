//! The stacks' D1 state with every migration applied, made once per checkout and copied into
//! each stack.
//!
//! `wrangler d1 migrations apply --local` starts Node and a workerd of its own: seconds of CPU
//! for each stack, the largest part of a stack's start. Its result depends only on the
//! migrations, the root wrangler configuration (the database ids name the SQLite files) and
//! wrangler's version, so the first stack applies them into a template under
//! `target/e2e-d1/<hash of those>/`, and every stack starts from a copy of it: the same files
//! wrangler wrote, never SQL of ours.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde_json::Value;
use sha2::{Digest, Sha256};

use super::StackError;

/// One stack of this process makes the template at a time; another process making the same
/// template at the same time is harmless (the first rename wins).
static MAKING: Mutex<()> = Mutex::new(());

/// Fills `state_dir` with a copy of the migrated template for the configuration at
/// `config_path`, making the template first with `apply` (which migrates the state
/// directory it is given) when there is none yet.
///
/// # Errors
///
/// What `apply` failed with, or an I/O error naming the path.
pub(super) fn copy_migrated(
    target: &Path,
    root: &Path,
    config_path: &Path,
    state_dir: &Path,
    apply: impl FnOnce(&Path) -> Result<(), StackError>,
) -> Result<(), StackError> {
    let key = key(root, config_path)?;
    let templates = target.join("e2e-d1");
    let template = templates.join(&key);
    if !template.is_dir() {
        // A poisoned lock only means another stack's set-up panicked: making the template
        // again is still right.
        let _making = MAKING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !template.is_dir() {
            let scratch = templates.join(format!("{key}.{}.partial", std::process::id()));
            let _stale = std::fs::remove_dir_all(&scratch);
            create_dir(&scratch)?;
            if let Err(error) = apply(&scratch) {
                let _left = std::fs::remove_dir_all(&scratch);
                return Err(error);
            }
            if std::fs::rename(&scratch, &template).is_err() {
                // Another process finished first: its template is as good as ours.
                let _left = std::fs::remove_dir_all(&scratch);
            }
        }
    }
    copy_dir(&template, state_dir)
}

/// The hash of everything the migrated state depends on.
fn key(root: &Path, config_path: &Path) -> Result<String, StackError> {
    let mut hash = Sha256::new();
    for file in [
        root.join("wrangler.toml"),
        root.join("node_modules")
            .join("wrangler")
            .join("package.json"),
    ] {
        hash.update(read(&file)?);
    }
    let config: Value = serde_json::from_slice(&read(config_path)?).map_err(|error| {
        StackError::WranglerConfig {
            path: config_path.to_path_buf(),
            problem: error.to_string(),
        }
    })?;
    let databases = config.get("d1_databases").and_then(Value::as_array);
    for database in databases.into_iter().flatten() {
        hash.update(database.to_string().as_bytes());
        let Some(dir) = database.get("migrations_dir").and_then(Value::as_str) else {
            continue;
        };
        let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
            .map_err(|source| io("list", Path::new(dir), source))?
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|path| path.is_file())
            .collect();
        files.sort();
        for file in files {
            hash.update(file.to_string_lossy().as_bytes());
            hash.update(read(&file)?);
        }
    }
    Ok(hash
        .finalize()
        .iter()
        .take(12)
        .map(|byte| format!("{byte:02x}"))
        .collect())
}

/// Copies the files under `from` into `to`, directories included.
fn copy_dir(from: &Path, to: &Path) -> Result<(), StackError> {
    create_dir(to)?;
    for entry in std::fs::read_dir(from).map_err(|source| io("list", from, source))? {
        let entry = entry.map_err(|source| io("list", from, source))?;
        let path = entry.path();
        let dest = to.join(entry.file_name());
        if path.is_dir() {
            copy_dir(&path, &dest)?;
        } else {
            std::fs::copy(&path, &dest).map_err(|source| io("copy", &path, source))?;
        }
    }
    Ok(())
}

fn create_dir(dir: &Path) -> Result<(), StackError> {
    std::fs::create_dir_all(dir).map_err(|source| io("create", dir, source))
}

fn read(path: &Path) -> Result<Vec<u8>, StackError> {
    std::fs::read(path).map_err(|source| io("read", path, source))
}

fn io(action: &'static str, path: &Path, source: std::io::Error) -> StackError {
    StackError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A checkout with a root wrangler configuration, wrangler's package file and one
    /// migration, and the stack configuration naming it.
    fn checkout(dir: &Path) -> PathBuf {
        let migrations = dir.join("migrations");
        std::fs::create_dir_all(&migrations).unwrap();
        std::fs::create_dir_all(dir.join("node_modules/wrangler")).unwrap();
        std::fs::write(dir.join("wrangler.toml"), "name = \"x\"\n").unwrap();
        std::fs::write(dir.join("node_modules/wrangler/package.json"), "{}").unwrap();
        std::fs::write(migrations.join("0001.sql"), "CREATE TABLE t (a);").unwrap();
        let config = dir.join("wrangler.json");
        let databases = serde_json::json!({
            "d1_databases": [{"binding": "DB", "migrations_dir": migrations}]
        });
        std::fs::write(&config, databases.to_string()).unwrap();
        config
    }

    #[test]
    fn migrations_are_applied_once_and_copied_until_one_changes() {
        let dir =
            std::env::temp_dir().join(format!("edge-access-d1-template-{}", std::process::id()));
        let _fresh = std::fs::remove_dir_all(&dir);
        let config = checkout(&dir);
        let target = dir.join("target");
        let applied = std::cell::Cell::new(0);
        let apply = |state: &Path| {
            applied.set(applied.get() + 1);
            std::fs::create_dir_all(state.join("v3/d1")).unwrap();
            std::fs::write(
                state.join("v3/d1/db.sqlite"),
                format!("run {}", applied.get()),
            )
            .unwrap();
            Ok(())
        };

        for stack in ["a", "b"] {
            let state = dir.join(stack);
            copy_migrated(&target, &dir, &config, &state, apply).unwrap();
            assert_eq!(
                std::fs::read_to_string(state.join("v3/d1/db.sqlite")).unwrap(),
                "run 1"
            );
        }
        assert_eq!(applied.get(), 1);

        std::fs::write(dir.join("migrations/0002.sql"), "CREATE TABLE u (b);").unwrap();
        let state = dir.join("c");
        copy_migrated(&target, &dir, &config, &state, apply).unwrap();
        assert_eq!(
            std::fs::read_to_string(state.join("v3/d1/db.sqlite")).unwrap(),
            "run 2"
        );

        let failing = |_: &Path| {
            Err(StackError::Io {
                action: "apply",
                path: PathBuf::new(),
                source: std::io::Error::other("refused"),
            })
        };
        std::fs::write(dir.join("migrations/0003.sql"), "CREATE TABLE v (c);").unwrap();
        assert!(copy_migrated(&target, &dir, &config, &dir.join("d"), failing).is_err());
        let templates = std::fs::read_dir(target.join("e2e-d1")).unwrap().count();
        assert_eq!(templates, 2, "a failed migration leaves nothing behind");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

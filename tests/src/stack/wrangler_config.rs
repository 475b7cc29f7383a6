//! The stack's own wrangler configuration, derived from the root `wrangler.toml`.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::StackError;

/// Keys of the configuration (and of its tables) that hold paths relative to the
/// configuration file.
const TOP_LEVEL_PATHS: [&str; 3] = ["main", "base_dir", "tsconfig"];

/// Writes `out` (JSON, which wrangler reads like TOML): the root configuration without
/// `[build]`, with `main` = `entry`, every relative path made absolute against `root`, and
/// `[vars]` = the root's vars overridden by `vars` in order, then by `json_vars`. Returns the D1 databases that
/// have SQL migrations to apply.
pub(super) fn write(
    root: &Path,
    entry: &Path,
    vars: &[(String, String)],
    json_vars: &[(String, Value)],
    out: &Path,
) -> Result<Vec<String>, StackError> {
    let source = root.join("wrangler.toml");
    let invalid = |problem: String| StackError::WranglerConfig {
        path: source.clone(),
        problem,
    };
    let text = std::fs::read_to_string(&source).map_err(|error| invalid(error.to_string()))?;
    let value: Value = toml::from_str(&text).map_err(|error| invalid(error.to_string()))?;
    let Value::Object(mut config) = value else {
        return Err(invalid("not a table".into()));
    };

    // No build step: the worker is built already (see the module docs of `stack`).
    config.remove("build");
    // The stack passes its secrets as vars; wrangler would only warn that the declared ones
    // are missing from a .dev.vars it never reads.
    config.remove("secrets");
    config.insert("main".into(), Value::String(path_string(entry)));
    for key in TOP_LEVEL_PATHS {
        absolutize(&mut config, key, root);
    }
    if let Some(Value::Object(assets)) = config.get_mut("assets") {
        absolutize(assets, "directory", root);
    }
    if let Some(Value::Object(site)) = config.get_mut("site") {
        absolutize(site, "bucket", root);
    }

    let mut migrations = Vec::new();
    if let Some(Value::Array(databases)) = config.get_mut("d1_databases") {
        for database in databases.iter_mut().filter_map(Value::as_object_mut) {
            // Wrangler's default, relative to the configuration file.
            if !database.contains_key("migrations_dir") {
                database.insert("migrations_dir".into(), Value::String("migrations".into()));
            }
            absolutize(database, "migrations_dir", root);
            let dir = database
                .get("migrations_dir")
                .and_then(Value::as_str)
                .map(PathBuf::from);
            let name = database
                .get("database_name")
                .or_else(|| database.get("binding"))
                .and_then(Value::as_str);
            if let (Some(dir), Some(name)) = (dir, name) {
                if has_sql(&dir) {
                    migrations.push(name.to_owned());
                }
            }
        }
    }

    let mut merged = match config.remove("vars") {
        Some(Value::Object(root_vars)) => root_vars,
        _ => Map::new(),
    };
    for (name, value) in vars {
        merged.insert(name.clone(), Value::String(value.clone()));
    }
    for (name, value) in json_vars {
        merged.insert(name.clone(), value.clone());
    }
    config.insert("vars".into(), Value::Object(merged));

    let json = serde_json::to_vec_pretty(&Value::Object(config))
        .map_err(|error| invalid(error.to_string()))?;
    std::fs::write(out, json).map_err(|source| StackError::Io {
        action: "write",
        path: out.to_path_buf(),
        source,
    })?;
    Ok(migrations)
}

/// Makes `table[key]`, when it is a relative path, absolute against `root`.
fn absolutize(table: &mut Map<String, Value>, key: &str, root: &Path) {
    if let Some(Value::String(path)) = table.get_mut(key) {
        if Path::new(path.as_str()).is_relative() {
            *path = path_string(&root.join(path.as_str()));
        }
    }
}

fn path_string(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

/// Whether `dir` holds at least one `.sql` file.
fn has_sql(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| entry.path().extension().is_some_and(|ext| ext == "sql"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_configuration_loses_its_build_step_and_gains_vars() {
        let root = &workspace_root::find().unwrap();
        let out = std::env::temp_dir().join(format!(
            "edge-access-wrangler-config-test-{}.json",
            std::process::id()
        ));
        let entry = root.join("worker/build/index.js");
        let vars = [("ORIGIN_URL".to_owned(), "http://127.0.0.1:9".to_owned())];
        write(root, &entry, &vars, &[], &out).unwrap();
        let written: Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
        std::fs::remove_file(&out).unwrap();

        assert!(written.get("build").is_none());
        assert_eq!(written["main"], path_string(&entry));
        assert_eq!(written["vars"]["ORIGIN_URL"], "http://127.0.0.1:9");
        assert_eq!(written["vars"]["EDGE_ACCESS_CONFIG"], "");
        let migrations = written["d1_databases"][0]["migrations_dir"]
            .as_str()
            .unwrap();
        assert!(Path::new(migrations).is_absolute(), "{migrations}");
    }
}

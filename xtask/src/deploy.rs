//! `cargo xtask deploy [--dry-run] …`: the checks a deployment must pass before anything is
//! uploaded, then `wrangler deploy`.
//!
//! `wrangler deploy --dry-run` alone happily bundles a gateway with an empty configuration, a
//! configuration over the 5 KB a Worker var holds, or a signing key pasted into `[vars]`; the
//! real platform then refuses the upload or, worse, serves a gateway that denies everything.
//! Every problem is named, all at once, before the build: a var over 5 KB, no configuration or
//! one that does not load, a secret the configuration needs that the deployment does not
//! declare (or declares as a plain var), a missing D1 or KV binding; after the build, a bundle
//! over the plan's size limit. Only then, without `--dry-run`, does `wrangler deploy` run.

use std::path::{Path, PathBuf};

use policy_core::{client_secret_var, SHARED_CLIENT_SECRET};
use serde_json::{Map, Value};

use crate::error::XtaskError;
use crate::layout::Layout;
use crate::process::{self, Env};
use crate::setup::setup_build;
use crate::size::{self, kib};
use crate::steps::{StepFailure, Steps};

/// A Worker var holds at most 5 KB (Workers platform limits, every plan).
pub const VAR_LIMIT: usize = 5 * 1024;

/// The var that carries the configuration document (`worker/src/config.rs`).
const CONFIG_VAR: &str = "EDGE_ACCESS_CONFIG";

/// The bindings the worker reads (`wrangler.toml`): the directory, sessions and sign-ins in
/// D1; the Entra signing keys in KV.
const D1_BINDING: &str = "DB";
const KV_BINDING: &str = "KEYS";

/// Where `wrangler deploy --dry-run` writes the bundle it would upload.
const BUNDLE_DIR: &str = "deploy-bundle";

/// The Workers plan whose upload limit applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// 3 MB compressed.
    Free,
    /// 10 MB compressed.
    Paid,
}

impl Plan {
    /// The largest compressed upload the plan accepts, in bytes.
    pub const fn upload_limit(self) -> u64 {
        match self {
            Plan::Free => 3 * 1024 * 1024,
            Plan::Paid => 10 * 1024 * 1024,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Paid => "paid",
        }
    }
}

/// What `cargo xtask deploy` was asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Check and bundle, upload nothing.
    pub dry_run: bool,
    /// The wrangler configuration (default: the checkout's `wrangler.toml`).
    pub config: Option<PathBuf>,
    /// A wrangler environment (`[env.NAME]`).
    pub env: Option<String>,
    /// The plan whose upload limit applies.
    pub plan: Plan,
    /// A configuration document to deploy as the `EDGE_ACCESS_CONFIG` var (wrangler's
    /// `--var`), instead of the one in the wrangler configuration.
    pub document: Option<PathBuf>,
    /// The configuration is managed through the gateway's API: deploying without one is
    /// intended.
    pub stored_config: bool,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dry_run: false,
            config: None,
            env: None,
            plan: Plan::Free,
            document: None,
            stored_config: false,
        }
    }
}

/// The checks, the dry-run bundle and its size, then (without `--dry-run`) the deploy.
///
/// # Errors
///
/// The first step that failed; a failed check names every problem found.
pub fn deploy(layout: &Layout, steps: &mut Steps, options: &Options) -> Result<(), StepFailure> {
    let env = setup_build(layout, steps)?;
    let config_path = options
        .config
        .clone()
        .unwrap_or_else(|| layout.root.join("wrangler.toml"));
    let mut document_var = None;
    steps.run("deploy: checks", || {
        let deployment = Deployment::read(&config_path, options.env.as_deref())?;
        let mut problems = Vec::new();
        // The worker's own order: a stored version, else the bundled file, else the var.
        let bundled = crate::worker::bundled_config_file(&env, &layout.root)
            .map(|file| layout.root.join(file));
        let document = match (&bundled, &options.document) {
            (Some(file), Some(_)) => {
                problems.push(format!(
                    "--document would be ignored: the bundled file `{}` takes precedence over \
                     `{CONFIG_VAR}`",
                    file.display()
                ));
                Some(read_document(file)?)
            }
            (Some(file), None) => Some(read_document(file)?),
            (None, Some(path)) => Some(read_document(path)?),
            (None, None) => deployment.document()?,
        };
        problems.extend(deployment.problems());
        if let (Some(_), Some(text)) = (&options.document, &document) {
            if text.len() > VAR_LIMIT {
                problems.push(var_too_large(CONFIG_VAR, text.len()));
            }
        }
        match &document {
            Some(text) => {
                problems.extend(check_document(&env, layout, text)?);
                let needed =
                    deployment.with_provider_secrets(needed_secrets(text), &azure_providers(text));
                let needed: Vec<&str> = needed.iter().map(String::as_str).collect();
                problems.extend(deployment.secret_problems(&needed));
            }
            None if options.stored_config => {}
            None => problems.push(format!(
                "no configuration: `{CONFIG_VAR}` is empty in `{}` and no file is bundled \
                 (`edge-access.json`, `EDGE_ACCESS_CONFIG_FILE`), so the gateway would refuse \
                 every request; set one, deploy one with `--document FILE`, or pass \
                 `--stored-config` when the configuration is managed through the gateway's API",
                config_path.display()
            )),
        }
        if !options.dry_run {
            problems.extend(deployment.placeholder_problems());
        }
        if !problems.is_empty() {
            return Err(XtaskError::Tool {
                tool: "deploy".into(),
                problem: format!(
                    "{} problem(s) in `{}`:\n  - {}",
                    problems.len(),
                    config_path.display(),
                    problems.join("\n  - ")
                ),
            });
        }
        if options.document.is_some() {
            document_var = document;
        }
        Ok(format!(
            "`{}` passes (vars ≤ {VAR_LIMIT} bytes, configuration, secrets, bindings)",
            config_path.display()
        ))
    })?;

    let bundle = layout.xtask_dir().join(BUNDLE_DIR);
    steps.run("deploy: wrangler deploy --dry-run", || {
        if bundle.exists() {
            std::fs::remove_dir_all(&bundle)
                .map_err(|source| XtaskError::io("remove", &bundle, source))?;
        }
        let mut command = wrangler_deploy(&env, &config_path, options, document_var.as_deref());
        command
            .arg("--dry-run")
            .arg("--outdir")
            .arg(&bundle)
            .current_dir(&layout.root);
        process::run(&mut command)?;
        Ok(String::new())
    })?;
    steps.run("deploy: bundle size", || {
        let gzip = bundle_gzip_bytes(&env, &bundle)?;
        let limit = options.plan.upload_limit();
        match bundle_problem(gzip, options.plan) {
            Some(problem) => Err(XtaskError::Tool {
                tool: "deploy".into(),
                problem,
            }),
            None => Ok(format!(
                "{} gzip, within the {} plan's {}",
                kib(gzip),
                options.plan.name(),
                kib(limit)
            )),
        }
    })?;
    if options.dry_run {
        return Ok(());
    }
    steps.run("deploy: wrangler deploy", || {
        let mut command = wrangler_deploy(&env, &config_path, options, document_var.as_deref());
        command.current_dir(&layout.root);
        process::run(&mut command)?;
        Ok(String::new())
    })
}

fn wrangler_deploy(
    env: &Env,
    config: &Path,
    options: &Options,
    document: Option<&str>,
) -> std::process::Command {
    let mut command = env.command("wrangler");
    command.arg("deploy").arg("--config").arg(config);
    if let Some(name) = &options.env {
        command.arg("--env").arg(name);
    }
    if let Some(text) = document {
        command.arg("--var").arg(format!("{CONFIG_VAR}:{text}"));
    }
    command
}

/// The deployment as the wrangler configuration describes it, for one environment.
#[derive(Debug, Default)]
pub struct Deployment {
    vars: Map<String, Value>,
    required_secrets: Vec<String>,
    d1: Vec<Map<String, Value>>,
    kv: Vec<Map<String, Value>>,
}

impl Deployment {
    /// Reads `path` (TOML, or JSON/JSONC without comments) for `env` (`[env.NAME]`, whose
    /// vars, secrets and bindings replace the top level's: wrangler does not inherit them).
    ///
    /// # Errors
    ///
    /// When the file cannot be read or parsed, or names no such environment.
    pub fn read(path: &Path, env: Option<&str>) -> Result<Self, XtaskError> {
        let text =
            std::fs::read_to_string(path).map_err(|source| XtaskError::io("read", path, source))?;
        let is_toml = path.extension().is_some_and(|ext| ext == "toml");
        let parsed: Result<Value, String> = if is_toml {
            toml::from_str(&text).map_err(|e| e.to_string())
        } else {
            serde_json::from_str(&text).map_err(|e| e.to_string())
        };
        let invalid = |problem: String| XtaskError::Tool {
            tool: "deploy".into(),
            problem: format!("`{}`: {problem}", path.display()),
        };
        let root = parsed.map_err(&invalid)?;
        let table = match env {
            None => &root,
            Some(name) => root
                .get("env")
                .and_then(|envs| envs.get(name))
                .ok_or_else(|| invalid(format!("no environment `[env.{name}]`")))?,
        };
        Self::from_value(table).map_err(invalid)
    }

    /// The deployment a parsed wrangler configuration (one environment's table) describes.
    ///
    /// # Errors
    ///
    /// When a section has the wrong shape.
    pub fn from_value(table: &Value) -> Result<Self, String> {
        let vars = match table.get("vars") {
            None => Map::new(),
            Some(Value::Object(vars)) => vars.clone(),
            Some(_) => return Err("`vars` must be a table".into()),
        };
        let required_secrets = match table.get("secrets").map(|s| s.get("required")) {
            None | Some(None) => Vec::new(),
            Some(Some(Value::Array(names))) => names
                .iter()
                .map(|name| {
                    name.as_str()
                        .map(str::to_owned)
                        .ok_or_else(|| "`secrets.required` must list names".to_owned())
                })
                .collect::<Result<_, _>>()?,
            Some(Some(_)) => return Err("`secrets.required` must be an array".into()),
        };
        let tables = |key: &str| -> Result<Vec<Map<String, Value>>, String> {
            match table.get(key) {
                None => Ok(Vec::new()),
                Some(Value::Array(items)) => items
                    .iter()
                    .map(|item| {
                        item.as_object()
                            .cloned()
                            .ok_or_else(|| format!("`{key}` must list tables"))
                    })
                    .collect(),
                Some(_) => Err(format!("`{key}` must be an array of tables")),
            }
        };
        Ok(Self {
            vars,
            required_secrets,
            d1: tables("d1_databases")?,
            kv: tables("kv_namespaces")?,
        })
    }

    /// The configuration document the vars carry: `None` when `EDGE_ACCESS_CONFIG` is unset
    /// or blank; a JSON object var as its JSON text.
    ///
    /// # Errors
    ///
    /// When the var is neither a string nor an object.
    pub fn document(&self) -> Result<Option<String>, XtaskError> {
        match self.vars.get(CONFIG_VAR) {
            None => Ok(None),
            Some(Value::String(text)) if text.trim().is_empty() => Ok(None),
            Some(Value::String(text)) => Ok(Some(text.clone())),
            Some(object @ Value::Object(_)) => Ok(Some(object.to_string())),
            Some(_) => Err(XtaskError::Tool {
                tool: "deploy".into(),
                problem: format!("`{CONFIG_VAR}` must be a JSON string or a JSON object"),
            }),
        }
    }

    /// Problems the configuration shows by itself: vars over [`VAR_LIMIT`], missing bindings.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for (name, value) in &self.vars {
            let size = match value {
                Value::String(text) => text.len(),
                other => other.to_string().len(),
            };
            if size > VAR_LIMIT {
                problems.push(var_too_large(name, size));
            }
        }
        if !self.d1.iter().any(|db| binding_is(db, D1_BINDING)) {
            problems.push(format!(
                "no D1 database bound as `{D1_BINDING}` (`[[d1_databases]]`): the directory, \
                 sessions and sign-ins live there"
            ));
        }
        if !self.kv.iter().any(|kv| binding_is(kv, KV_BINDING)) {
            problems.push(format!(
                "no KV namespace bound as `{KV_BINDING}` (`[[kv_namespaces]]`): Entra's \
                 signing keys are cached there"
            ));
        }
        problems
    }

    /// For each secret in `needed`: refused when it is a plain var (readable by anyone who
    /// reads the configuration or the dashboard), or not declared in `[secrets] required` (then
    /// nothing stops a deployment without it; declared, `wrangler deploy` refuses until
    /// `wrangler secret put` has set it).
    pub fn secret_problems(&self, needed: &[&str]) -> Vec<String> {
        let mut problems = Vec::new();
        for name in needed {
            if self.vars.contains_key(*name) {
                problems.push(format!(
                    "`{name}` is a plain var in `[vars]`: remove it and set it with \
                     `wrangler secret put {name}`"
                ));
            } else if !self
                .required_secrets
                .iter()
                .any(|declared| declared == name)
            {
                problems.push(format!(
                    "secret `{name}` is needed by the configuration but not declared: add it \
                     to `[secrets] required` (wrangler deploy then refuses until \
                     `wrangler secret put {name}` has set it)"
                ));
            }
        }
        problems
    }

    /// `needed` with the client secrets this deployment gives the identity providers `ids`:
    /// a provider's own secret (`AZURE_CLIENT_SECRET_<id>`, see [`client_secret_var`]) wherever
    /// it is declared or set as a var (so a plain var is refused), and `AZURE_CLIENT_SECRET`
    /// only while some provider has no secret of its own.
    pub fn with_provider_secrets(&self, needed: Vec<&str>, ids: &[String]) -> Vec<String> {
        let own: Vec<String> = ids
            .iter()
            .map(|id| client_secret_var(id))
            .filter(|name| {
                self.vars.contains_key(name) || self.required_secrets.iter().any(|d| d == name)
            })
            .collect();
        let all_own = !ids.is_empty() && own.len() == ids.len();
        let mut out: Vec<String> = needed
            .into_iter()
            .filter(|name| !(all_own && *name == SHARED_CLIENT_SECRET))
            .map(str::to_owned)
            .collect();
        for name in own {
            if !out.contains(&name) {
                out.push(name);
            }
        }
        out
    }

    /// Resource ids still the placeholders of the checkout's `wrangler.toml`: a real deploy
    /// needs the ids of the D1 database and the KV namespace created for it.
    pub fn placeholder_problems(&self) -> Vec<String> {
        let placeholder = |table: &Map<String, Value>, key: &str| {
            table
                .get(key)
                .and_then(Value::as_str)
                .is_none_or(|id| id.chars().all(|c| c == '0' || c == '-'))
        };
        let mut problems = Vec::new();
        for db in self.d1.iter().filter(|db| placeholder(db, "database_id")) {
            problems.push(format!(
                "D1 `{}` has no real `database_id`: create it with `wrangler d1 create` and put \
                 its id here",
                name_of(db)
            ));
        }
        for kv in self.kv.iter().filter(|kv| placeholder(kv, "id")) {
            problems.push(format!(
                "KV `{}` has no real `id`: create it with `wrangler kv namespace create` and \
                 put its id here",
                name_of(kv)
            ));
        }
        problems
    }
}

fn binding_is(table: &Map<String, Value>, name: &str) -> bool {
    table.get("binding").and_then(Value::as_str) == Some(name)
}

fn name_of(table: &Map<String, Value>) -> &str {
    table
        .get("binding")
        .and_then(Value::as_str)
        .unwrap_or("(no binding)")
}

fn var_too_large(name: &str, size: usize) -> String {
    format!(
        "var `{name}` is {size} bytes; a Worker var holds at most {VAR_LIMIT}: keep the \
         configuration in a bundled file or store it through the gateway's API"
    )
}

/// The ids of `document`'s identity providers, as the engine loads them (none when it does not
/// load: the document check says why).
pub fn azure_providers(document: &str) -> Vec<String> {
    policy_core::Engine::from_json(document)
        .map(|engine| {
            engine
                .identity_providers()
                .iter()
                .map(|p| p.id.to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// The secrets the gateway needs for `document`: the session signing key and the client
/// secret for browser sign-in with an Entra provider, `SCIM_TOKEN` when a provider enables
/// SCIM. A document that is not JSON needs nothing here (the document check names it).
pub fn needed_secrets(document: &str) -> Vec<&'static str> {
    let Ok(value) = serde_json::from_str::<Value>(document) else {
        return Vec::new();
    };
    let providers = value
        .get("identity_providers")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut needed = Vec::new();
    if providers
        .iter()
        .any(|p| p.get("type").and_then(Value::as_str) == Some("azureAD"))
    {
        needed.extend(["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY"]);
    }
    if providers.iter().any(|p| {
        p.get("scim_config")
            .and_then(|scim| scim.get("enabled"))
            .and_then(Value::as_bool)
            == Some(true)
    }) {
        needed.push("SCIM_TOKEN");
    }
    needed
}

/// Loads `document` with the same engine the gateway runs (`edge-access policy check`), and
/// requires an identity provider (the gateway refuses to start without one).
fn check_document(env: &Env, layout: &Layout, document: &str) -> Result<Vec<String>, XtaskError> {
    let dir = layout.xtask_dir();
    std::fs::create_dir_all(&dir).map_err(|source| XtaskError::io("create", &dir, source))?;
    let file = dir.join("deploy-document.json");
    std::fs::write(&file, document).map_err(|source| XtaskError::io("write", &file, source))?;
    let mut command = env.cargo();
    command
        .args(["run", "--quiet", "-p", "edge-access", "--"])
        .args(["policy", "check", "--config"])
        .arg(&file);
    let output = command
        .output()
        .map_err(|source| process::spawn_error(&command, source))?;
    let mut problems = Vec::new();
    let said = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    // The CLI's exit codes: 2 is "does not load"; anything else but 0 is the tool failing.
    if output.status.code() != Some(0) && output.status.code() != Some(2) {
        return Err(XtaskError::Tool {
            tool: "edge-access policy check".into(),
            problem: format!("{}: {}", output.status, said.trim()),
        });
    }
    if !output.status.success() {
        problems.push(format!(
            "the configuration does not load:\n      {}",
            said.trim().replace('\n', "\n      ")
        ));
        return Ok(problems);
    }
    let providers = serde_json::from_str::<Value>(document)
        .ok()
        .and_then(|v| {
            v.get("identity_providers")
                .and_then(Value::as_array)
                .map(Vec::len)
        })
        .unwrap_or(0);
    if providers == 0 {
        problems.push(
            "the configuration has no identity_providers: the gateway needs at least one".into(),
        );
    }
    Ok(problems)
}

fn read_document(path: &Path) -> Result<String, XtaskError> {
    let text =
        std::fs::read_to_string(path).map_err(|source| XtaskError::io("read", path, source))?;
    // Minified, as the var would hold it: the size that counts is the one uploaded.
    match serde_json::from_str::<Value>(&text) {
        Ok(value) => Ok(value.to_string()),
        Err(_) => Ok(text),
    }
}

/// The bundle's size as the upload limit counts it: every module, gzip-compressed (source
/// maps and wrangler's README are not uploaded).
fn bundle_gzip_bytes(env: &Env, dir: &Path) -> Result<u64, XtaskError> {
    let entries = std::fs::read_dir(dir).map_err(|source| XtaskError::io("list", dir, source))?;
    let mut total = 0;
    for entry in entries {
        let path = entry
            .map_err(|source| XtaskError::io("list", dir, source))?
            .path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        if name.ends_with(".map") || name == "README.md" || !path.is_file() {
            continue;
        }
        total += size::gzip_bytes(env, &path)?;
    }
    Ok(total)
}

/// Why a bundle of `gzip` bytes cannot be uploaded on `plan`, if it cannot.
pub fn bundle_problem(gzip: u64, plan: Plan) -> Option<String> {
    let limit = plan.upload_limit();
    (gzip > limit).then(|| {
        format!(
            "the bundle is {} gzip, over the {} plan's upload limit of {}",
            kib(gzip),
            plan.name(),
            kib(limit)
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deployment(toml_text: &str) -> Deployment {
        let value: Value = toml::from_str(toml_text).expect("test TOML parses");
        Deployment::from_value(&value).expect("test deployment reads")
    }

    const BINDINGS: &str = r#"
        [[d1_databases]]
        binding = "DB"
        database_id = "0b7c"
        [[kv_namespaces]]
        binding = "KEYS"
        id = "9f2a"
    "#;

    #[test]
    fn a_var_over_five_kilobytes_is_named() {
        let big = "x".repeat(VAR_LIMIT + 1);
        let d = deployment(&format!(
            "[vars]\nSMALL = \"ok\"\nBIG = \"{big}\"\n{BINDINGS}"
        ));
        let problems = d.problems();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`BIG`") && problems[0].contains("5121 bytes"));
    }

    #[test]
    fn a_json_object_var_counts_as_its_json() {
        let d = deployment(&format!(
            "[vars.EDGE_ACCESS_CONFIG]\nteam_domain = \"{}\"\n{BINDINGS}",
            "a".repeat(VAR_LIMIT)
        ));
        assert!(d.problems()[0].contains("`EDGE_ACCESS_CONFIG`"));
        let doc = d.document().expect("an object var is a document");
        assert!(doc.is_some_and(|text| text.starts_with("{\"team_domain\"")));
    }

    #[test]
    fn a_blank_config_var_is_no_configuration() {
        let d = deployment(&format!("[vars]\nEDGE_ACCESS_CONFIG = \"  \"\n{BINDINGS}"));
        assert_eq!(d.document().ok(), Some(None));
        let d = deployment(&format!("[vars]\nEDGE_ACCESS_CONFIG = 3\n{BINDINGS}"));
        assert!(d.document().is_err());
    }

    #[test]
    fn missing_bindings_are_named() {
        let problems = deployment("").problems();
        assert_eq!(problems.len(), 2);
        assert!(problems[0].contains("`DB`") && problems[1].contains("`KEYS`"));
    }

    #[test]
    fn needed_secrets_follow_the_document() {
        assert_eq!(
            needed_secrets(r#"{"identity_providers":[{"type":"azureAD"}]}"#),
            ["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY"]
        );
        assert_eq!(
            needed_secrets(
                r#"{"identity_providers":[{"type":"azureAD","scim_config":{"enabled":true}}]}"#
            ),
            ["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY", "SCIM_TOKEN"]
        );
        assert!(needed_secrets(r#"{"identity_providers":[]}"#).is_empty());
        assert!(needed_secrets("not json").is_empty());
    }

    #[test]
    fn an_undeclared_secret_and_a_secret_in_vars_are_refused() {
        let d = deployment(&format!(
            "[vars]\nSESSION_SIGNING_KEY = \"{{}}\"\n[secrets]\nrequired = [\"SCIM_TOKEN\"]\n{BINDINGS}"
        ));
        let problems =
            d.secret_problems(&["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY", "SCIM_TOKEN"]);
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("secret `AZURE_CLIENT_SECRET`"));
        assert!(problems[1].contains("`SESSION_SIGNING_KEY` is a plain var"));
    }

    #[test]
    fn providers_with_their_own_secrets_need_no_shared_one() {
        let ids = ["entra".to_owned(), "partner-fabrikam".to_owned()];
        let needed = || vec!["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY"];
        let provider = |id: &str| {
            format!(
                r#"{{"id": "{id}", "name": "{id}", "type": "azureAD", "config": {{
                    "client_id": "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
                    "directory_id": "9c4e1b7a-3d2f-4a8e-b615-0f7d2c9a4e31"}}}}"#
            )
        };
        let document = format!(
            r#"{{"team_domain": "https://access.example.com", "apps": [],
                "identity_providers": [{}, {}]}}"#,
            provider("entra"),
            provider("partner-fabrikam")
        );
        assert_eq!(azure_providers(&document), ids);
        assert!(azure_providers(r#"{"identity_providers": [{"id": "x"}]}"#).is_empty());

        // Neither has its own: the shared secret, as before.
        let d = deployment(&format!(
            "[secrets]\nrequired = [\"SESSION_SIGNING_KEY\"]\n{BINDINGS}"
        ));
        assert_eq!(
            d.with_provider_secrets(needed(), &ids),
            ["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY"]
        );
        // One has its own: both secrets are needed.
        let d = deployment(&format!(
            "[secrets]\nrequired = [\"AZURE_CLIENT_SECRET_PARTNER_FABRIKAM\", \"SESSION_SIGNING_KEY\"]\n{BINDINGS}"
        ));
        let with = d.with_provider_secrets(needed(), &ids);
        assert_eq!(
            with,
            [
                "AZURE_CLIENT_SECRET",
                "SESSION_SIGNING_KEY",
                "AZURE_CLIENT_SECRET_PARTNER_FABRIKAM"
            ]
        );
        let with: Vec<&str> = with.iter().map(String::as_str).collect();
        let problems = d.secret_problems(&with);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("secret `AZURE_CLIENT_SECRET`"));
        // Each has its own: the shared one is not needed.
        let d = deployment(&format!(
            "[secrets]\nrequired = [\"AZURE_CLIENT_SECRET_ENTRA\", \"AZURE_CLIENT_SECRET_PARTNER_FABRIKAM\", \"SESSION_SIGNING_KEY\"]\n{BINDINGS}"
        ));
        let with = d.with_provider_secrets(needed(), &ids);
        let with: Vec<&str> = with.iter().map(String::as_str).collect();
        assert!(d.secret_problems(&with).is_empty(), "{with:?}");
        // A provider's secret as a plain var is refused.
        let d = deployment(&format!(
            "[vars]\nAZURE_CLIENT_SECRET_ENTRA = \"s\"\n[secrets]\nrequired = [\"AZURE_CLIENT_SECRET\", \"SESSION_SIGNING_KEY\"]\n{BINDINGS}"
        ));
        let with = d.with_provider_secrets(needed(), &ids);
        let with: Vec<&str> = with.iter().map(String::as_str).collect();
        let problems = d.secret_problems(&with);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("`AZURE_CLIENT_SECRET_ENTRA` is a plain var"));
    }

    #[test]
    fn placeholder_ids_are_refused_for_a_real_deploy() {
        let d = deployment(
            "[[d1_databases]]\nbinding = \"DB\"\ndatabase_id = \"00000000-0000-0000-0000-000000000000\"\n\
             [[kv_namespaces]]\nbinding = \"KEYS\"\nid = \"00000000000000000000000000000000\"\n",
        );
        assert_eq!(d.placeholder_problems().len(), 2);
        assert!(deployment(BINDINGS).placeholder_problems().is_empty());
    }

    #[test]
    fn the_bundle_limit_is_the_plans() {
        assert!(bundle_problem(3 * 1024 * 1024, Plan::Free).is_none());
        let over = bundle_problem(3 * 1024 * 1024 + 1, Plan::Free).expect("over the limit");
        assert!(over.contains("free plan"));
        assert!(bundle_problem(3 * 1024 * 1024 + 1, Plan::Paid).is_none());
    }

    #[test]
    fn the_checkouts_wrangler_toml_declares_what_the_gateway_needs() {
        let root = workspace_root::find().expect("the checkout");
        let d = Deployment::read(&root.join("wrangler.toml"), None).expect("wrangler.toml reads");
        assert!(d.problems().is_empty(), "{:?}", d.problems());
        assert!(d
            .secret_problems(&["AZURE_CLIENT_SECRET", "SESSION_SIGNING_KEY", "SCIM_TOKEN"])
            .is_empty());
    }
}

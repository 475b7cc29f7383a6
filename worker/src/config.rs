//! The gateway's configuration: the policy document (from storage, the bundled file or the
//! `EDGE_ACCESS_CONFIG` var: see [`crate::config_store`]) and settings from the Worker's vars,
//! parsed, validated and compiled once per document and isolate — never per request.

use std::time::Duration;

use policy_core::{client_secret_var, Engine, IdentityProvider, ScimConfig};
use sha2::{Digest, Sha256};
use worker::{Env, Url};

use crate::endpoints::{Endpoints, Hub};
use crate::login_design::LoginDesign;
use crate::signing::{self, SigningKeys};

/// The Entra authority and Microsoft Graph of an identity provider's `azure_cloud`
/// (Microsoft's national cloud deployments): `default` is the global service.
pub fn cloud_endpoints(azure_cloud: &str) -> (&'static str, &'static str) {
    match azure_cloud {
        "us" => (
            "https://login.microsoftonline.us",
            "https://graph.microsoft.us",
        ),
        "de" => (
            "https://login.microsoftonline.de",
            "https://graph.microsoft.de",
        ),
        "cn" => (
            "https://login.chinacloudapi.cn",
            "https://microsoftgraph.chinacloudapi.cn",
        ),
        _ => (
            "https://login.microsoftonline.com",
            "https://graph.microsoft.com",
        ),
    }
}

/// Everything a request needs that does not change while the isolate lives.
#[derive(Debug)]
pub struct Gateway {
    /// The compiled policy document.
    pub engine: Engine,
    /// `ENTRA_AUTHORITY`: the Entra authority for every identity provider (the emulator in
    /// tests), without a trailing slash; unset, each provider's `azure_cloud` says
    /// ([`Gateway::authority`]).
    pub authority_override: Option<String>,
    /// Where allowed requests go; `None` means the request's own URL (production, where the
    /// Worker runs on a route in front of the origin).
    pub origin: Option<Url>,
    /// Requests no app covers go to the origin instead of a 404.
    pub pass_through_unmatched: bool,
    /// `GRAPH_URL`: where Microsoft Graph is reached for every identity provider (the
    /// emulator in tests); unset, each provider's `azure_cloud` says ([`Gateway::graph`]).
    pub graph_override: Option<String>,
    /// The app registrations' client secrets, for the code exchange and Graph
    /// ([`Gateway::client_secret`]).
    pub client_secrets: ClientSecrets,
    /// The keys that sign application tokens (`SESSION_SIGNING_KEY`).
    pub signing: Option<SigningKeys>,
    /// SCIM provisioning, when an identity provider enables it.
    pub scim: Option<ScimSettings>,
    /// How long a gateway isolate trusts its copy of the SCIM directory before checking
    /// D1 again (`DIRECTORY_REFRESH_SECONDS`, default 10).
    pub directory_refresh: Duration,
    /// The stored configuration version the document is (0: the bundled file or the var).
    pub version: u64,
    /// The version as the decision log and the health endpoint name it: the stored version's
    /// number, else `sha256:` and the first 12 hex digits of the document's hash (the bundled
    /// file or the var), so two isolates serving different documents are told apart.
    pub version_label: String,
    /// How long a gateway isolate serves its document before checking storage for a newly
    /// activated version (`CONFIG_REFRESH_SECONDS`, default 10).
    pub config_refresh: Duration,
    /// Where the gateway's own endpoints are (`ACCESS_PATH_PREFIX`).
    pub endpoints: Endpoints,
    /// The team domain as the sign-in hub (`TEAM_DOMAIN_SIGN_IN=true`), else each host signs
    /// in for itself.
    pub hub: Option<Hub>,
    /// The look of the gateway's pages (`LOGIN_DESIGN`).
    pub login_design: LoginDesign,
}

impl Gateway {
    /// The Entra authority of `idp`: `ENTRA_AUTHORITY`, else its cloud's.
    pub fn authority(&self, idp: &IdentityProvider) -> String {
        self.authority_override
            .clone()
            .unwrap_or_else(|| cloud_endpoints(&idp.azure_cloud).0.to_owned())
    }

    /// The client secret of `idp`'s app registration: `AZURE_CLIENT_SECRET_<id>` (see
    /// [`client_secret_var`]), else `AZURE_CLIENT_SECRET`.
    ///
    /// # Errors
    /// When neither is set: the message names both.
    pub fn client_secret(&self, idp: &IdentityProvider) -> Result<&str, String> {
        self.client_secrets
            .by_provider
            .iter()
            .find(|(id, _)| *id == *idp.id)
            .map(|(_, secret)| secret.as_str())
            .or(self.client_secrets.shared.as_deref())
            .ok_or_else(|| {
                format!(
                    "no client secret for identity provider `{}`: set {} or {SHARED_SECRET}",
                    idp.id,
                    client_secret_var(&idp.id)
                )
            })
    }

    /// Where Microsoft Graph is reached for `idp`: `GRAPH_URL`, else its cloud's Graph.
    pub fn graph(&self, idp: &IdentityProvider) -> String {
        self.graph_override
            .clone()
            .unwrap_or_else(|| cloud_endpoints(&idp.azure_cloud).1.to_owned())
    }
}

/// Microsoft Graph's resource (the `aud` of its tokens, and what the scopes asked for it
/// name) in `idp`'s cloud, wherever [`Gateway::graph`] reaches it.
pub fn graph_resource(idp: &IdentityProvider) -> &'static str {
    cloud_endpoints(&idp.azure_cloud).1
}

/// The client secret every identity provider without one of its own uses.
pub const SHARED_SECRET: &str = policy_core::SHARED_CLIENT_SECRET;

/// The app registrations' client secrets, read once per document.
#[derive(Debug, Default)]
pub struct ClientSecrets {
    /// `AZURE_CLIENT_SECRET`.
    pub shared: Option<String>,
    /// (provider id, secret) for each provider whose [`client_secret_var`] is set.
    pub by_provider: Vec<(String, String)>,
}

/// Two identity providers whose ids name the same [`client_secret_var`] (`partner-a`, `Partner_A`)
/// would share a client secret nobody chose to share: refused, naming both and the secret.
fn distinct_secret_vars<'i>(ids: impl IntoIterator<Item = &'i str>) -> Result<(), String> {
    let mut seen: Vec<(String, &str)> = Vec::new();
    for id in ids {
        let var = client_secret_var(id);
        if let Some((_, other)) = seen.iter().find(|(v, _)| *v == var) {
            return Err(format!(
                "identity_providers: `{other}` and `{id}` both read their client secret from \
                 {var} (an id names its secret in upper case, every character other than a \
                 letter or digit as `_`): give one of them another id"
            ));
        }
        seen.push((var, id));
    }
    Ok(())
}

/// The client secrets of `engine`'s identity providers in `env`.
fn client_secrets(env: &Env, engine: &Engine) -> Result<ClientSecrets, String> {
    let providers = engine.identity_providers();
    distinct_secret_vars(providers.iter().map(|p| &*p.id))?;
    Ok(ClientSecrets {
        shared: signing::secret(env, SHARED_SECRET),
        by_provider: providers
            .iter()
            .filter_map(|p| {
                signing::secret(env, &client_secret_var(&p.id))
                    .map(|secret| (p.id.to_string(), secret))
            })
            .collect(),
    })
}

/// The shortest `SCIM_TOKEN` accepted: a bearer token that never expires must not be guessable.
const MIN_SCIM_TOKEN: usize = 24;

/// The provider SCIM provisions, its `scim_config`, and the bearer token's SHA-256.
#[derive(Debug)]
pub struct ScimSettings {
    /// The identity provider's id.
    pub idp_id: String,
    /// Its `scim_config`.
    pub config: ScimConfig,
    /// SHA-256 of `SCIM_TOKEN`, or why there is none (not set, too short): then every SCIM
    /// request is refused and the log says why.
    pub token_sha256: Result<[u8; 32], String>,
}

/// A configuration document and where it came from.
#[derive(Debug, Clone)]
pub struct Source {
    /// The document's JSON text.
    pub document: String,
    /// Its stored version; 0 for the bundled file and the var.
    pub version: u64,
    /// Where it came from, for errors and the log (`EDGE_ACCESS_CONFIG`, `stored version 4`).
    pub name: String,
}

/// The document bundled at build time: `edge-access.json` at the workspace root, or the file
/// `EDGE_ACCESS_CONFIG_FILE` named when the worker was built (empty when there is none).
const BUNDLED: &str = include_str!(concat!(env!("OUT_DIR"), "/bundled-config.json"));

/// The document when storage holds none: the bundled file, else the `EDGE_ACCESS_CONFIG` var
/// (a string, or a JSON object as `wrangler.jsonc` writes it).
///
/// # Errors
///
/// When neither is set.
pub fn fallback_source(env: &Env) -> Result<Source, String> {
    if !BUNDLED.trim().is_empty() {
        return Ok(Source {
            document: BUNDLED.to_owned(),
            version: 0,
            name: "the bundled configuration file".into(),
        });
    }
    let document = var(env, "EDGE_ACCESS_CONFIG")
        .or_else(|| {
            env.object_var::<serde_json::Value>("EDGE_ACCESS_CONFIG")
                .ok()
                .filter(serde_json::Value::is_object)
                .map(|v| v.to_string())
        })
        .ok_or(
            "EDGE_ACCESS_CONFIG is not set and no configuration is stored or bundled: \
             the gateway has no configuration document",
        )?;
    Ok(Source {
        document,
        version: 0,
        name: "EDGE_ACCESS_CONFIG".into(),
    })
}

fn var(env: &Env, name: &str) -> Option<String> {
    env.var(name)
        .ok()
        .map(|v| v.to_string())
        .filter(|v| !v.trim().is_empty())
}

/// A base URL the gateway trusts for identity (the Entra authority, Microsoft Graph): `https`,
/// or `http` on loopback only (the emulator); without a trailing slash. `None` when unset.
fn identity_endpoint(env: &Env, name: &str) -> Result<Option<String>, String> {
    let Some(value) = var(env, name) else {
        return Ok(None);
    };
    let url = Url::parse(&value).map_err(|e| format!("{name} `{value}` is not a URL: {e}"))?;
    let loopback = matches!(url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"));
    if url.scheme() != "https" && !(url.scheme() == "http" && loopback) {
        return Err(format!(
            "{name} `{value}` must be https (http only on loopback)"
        ));
    }
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

/// The gateway for `source` with the Worker's settings.
///
/// # Errors
///
/// When the document does not load or a setting is invalid: the message says which.
pub fn load(env: &Env, source: Source) -> Result<Gateway, String> {
    let Source {
        document,
        version,
        name,
    } = source;
    let engine = Engine::from_json(&document).map_err(|errors| {
        format!(
            "{name} does not load: {}",
            errors.to_string().replace('\n', "; ")
        )
    })?;
    if engine.identity_providers().is_empty() {
        return Err(format!(
            "{name}: identity_providers: at least one is needed"
        ));
    }
    // Risky settings, and settings accepted for API compatibility that change nothing.
    for warning in engine.warnings() {
        crate::log::event(
            "config_warning",
            &[("path", &warning.path), ("message", &warning.message)],
        );
    }
    let authority_override = identity_endpoint(env, "ENTRA_AUTHORITY")?;
    let origin = match var(env, "ORIGIN_URL") {
        Some(o) => Some(Url::parse(&o).map_err(|e| format!("ORIGIN_URL `{o}` is not a URL: {e}"))?),
        None => None,
    };
    let pass_through_unmatched = match var(env, "UNMATCHED").as_deref() {
        None | Some("deny") => false,
        Some("pass") => true,
        Some(other) => return Err(format!("UNMATCHED `{other}` must be `deny` or `pass`")),
    };
    if pass_through_unmatched {
        pass_through_is_safe(&engine, origin.is_some())?;
    }
    let graph_override = identity_endpoint(env, "GRAPH_URL")?;
    let client_secrets = client_secrets(env, &engine)?;
    let signing = SigningKeys::from_env(env)?;
    let scim = scim_settings(env, &engine)?;
    let directory_refresh = refresh(env, "DIRECTORY_REFRESH_SECONDS")?;
    let config_refresh = refresh(env, "CONFIG_REFRESH_SECONDS")?;
    let endpoints = Endpoints::from_env(env)?;
    let hub = Hub::from_setting(
        var(env, "TEAM_DOMAIN_SIGN_IN").as_deref(),
        engine.team_domain(),
    )?;
    let login_design = LoginDesign::from_env(env)?;
    Ok(Gateway {
        engine,
        authority_override,
        origin,
        pass_through_unmatched,
        graph_override,
        client_secrets,
        signing,
        scim,
        version_label: version_label(version, &document),
        directory_refresh,
        version,
        config_refresh,
        endpoints,
        hub,
        login_design,
    })
}

/// [`Gateway::version_label`].
fn version_label(version: u64, document: &str) -> String {
    if version > 0 {
        return version.to_string();
    }
    let hash = Sha256::digest(document.as_bytes());
    let hex: String = hash
        .iter()
        .take(6)
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("sha256:{hex}")
}

/// The refresh interval when its var is not set.
pub const DEFAULT_REFRESH: Duration = Duration::from_secs(10);

/// A refresh interval var in whole seconds from 0 to 3600 (default 10).
fn refresh(env: &Env, name: &str) -> Result<Duration, String> {
    match var(env, name) {
        None => Ok(DEFAULT_REFRESH),
        Some(text) => text
            .trim()
            .parse::<u64>()
            .ok()
            .filter(|s| *s <= 3600)
            .map(Duration::from_secs)
            .ok_or_else(|| format!("{name} `{text}` must be whole seconds from 0 to 3600")),
    }
}

/// `UNMATCHED=pass` forwards, unchecked, the paths no app covers on the hosts the apps name
/// (never any other host). Refused where that would open what an app protects: with no app at
/// all, or with one `ORIGIN_URL` behind apps on several hosts (the origin serves every host the
/// same, so a path an app protects on one host would pass unchecked on another).
fn pass_through_is_safe(engine: &Engine, single_origin: bool) -> Result<(), String> {
    let mut hosts: Vec<String> = engine.apps().iter().map(policy_core::App::host).collect();
    hosts.sort();
    hosts.dedup();
    match hosts.as_slice() {
        [] => Err("UNMATCHED=pass with no apps would forward every request unchecked".into()),
        [_, _, ..] if single_origin => Err(format!(
            "UNMATCHED=pass with ORIGIN_URL needs every app on one host (the apps name {}): \
             one origin serves every host alike, so a path an app protects on one host would \
             pass unchecked on another",
            hosts.join(", ")
        )),
        _ => Ok(()),
    }
}

/// The one identity provider with `scim_config.enabled`, if any: `/cdn-cgi/access/scim/v2`
/// serves a single directory.
fn scim_settings(env: &Env, engine: &Engine) -> Result<Option<ScimSettings>, String> {
    let enabled: Vec<_> = engine
        .identity_providers()
        .iter()
        .filter(|p| p.scim.enabled)
        .collect();
    let provider = match enabled.as_slice() {
        [] => return Ok(None),
        [provider] => provider,
        [first, second, ..] => {
            return Err(format!(
                "identity_providers: `{}` and `{}` both enable scim_config; \
                 the SCIM endpoint serves one directory",
                first.id, second.id
            ))
        }
    };
    let token_sha256 = match signing::secret(env, "SCIM_TOKEN") {
        None => Err("SCIM is enabled but the SCIM_TOKEN secret is not set".to_owned()),
        Some(token) if token.trim().chars().count() < MIN_SCIM_TOKEN => Err(format!(
            "SCIM_TOKEN is shorter than {MIN_SCIM_TOKEN} characters: use a long random string"
        )),
        Some(token) => Ok(Sha256::digest(token.trim().as_bytes()).into()),
    };
    Ok(Some(ScimSettings {
        idp_id: provider.id.to_string(),
        config: provider.scim.clone(),
        token_sha256,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_that_name_the_same_secret_are_refused() {
        assert!(distinct_secret_vars(["entra", "partner", "partner-2"]).is_ok());
        let error = distinct_secret_vars(["entra", "partner-a", "Partner_A"]).unwrap_err();
        assert!(error.contains("`partner-a` and `Partner_A`"), "{error}");
        assert!(error.contains("AZURE_CLIENT_SECRET_PARTNER_A"), "{error}");
        assert!(distinct_secret_vars(["é", "è"]).is_err());
        assert!(distinct_secret_vars(["a.b", "a-b"]).is_err());
    }

    fn provider(id: &str) -> IdentityProvider {
        let document = format!(
            r#"{{"team_domain": "https://access.example.com",
                "identity_providers": [{{"id": "{id}", "name": "Entra ID", "type": "azureAD",
                  "config": {{"client_id": "6b0f2c9e-1d4a-4f7b-8e35-a29c7d1b0e64",
                              "directory_id": "9c4e1b7a-3d2f-4a8e-b615-0f7d2c9a4e31"}}}}],
                "apps": []}}"#
        );
        let engine = Engine::from_json(&document).unwrap();
        engine.identity_providers().first().unwrap().clone()
    }

    fn gateway(secrets: ClientSecrets) -> Gateway {
        let document = r#"{"team_domain": "https://access.example.com",
            "identity_providers": [], "apps": []}"#;
        Gateway {
            engine: Engine::from_json(document).unwrap(),
            authority_override: None,
            origin: None,
            pass_through_unmatched: false,
            graph_override: None,
            client_secrets: secrets,
            signing: None,
            scim: None,
            directory_refresh: DEFAULT_REFRESH,
            version: 0,
            version_label: String::new(),
            config_refresh: DEFAULT_REFRESH,
            endpoints: crate::endpoints::Endpoints::parse(crate::endpoints::DEFAULT_PREFIX)
                .unwrap(),
            hub: None,
            login_design: LoginDesign::default(),
        }
    }

    #[test]
    fn a_provider_s_own_secret_comes_before_the_shared_one() {
        let both = gateway(ClientSecrets {
            shared: Some("shared".into()),
            by_provider: vec![("partner".into(), "own".into())],
        });
        assert_eq!(both.client_secret(&provider("partner")), Ok("own"));
        assert_eq!(both.client_secret(&provider("entra")), Ok("shared"));

        let own_only = gateway(ClientSecrets {
            shared: None,
            by_provider: vec![("partner".into(), "own".into())],
        });
        assert_eq!(own_only.client_secret(&provider("partner")), Ok("own"));
        let error = own_only.client_secret(&provider("entra")).unwrap_err();
        assert!(
            error.contains("AZURE_CLIENT_SECRET_ENTRA or AZURE_CLIENT_SECRET"),
            "{error}"
        );
    }
}

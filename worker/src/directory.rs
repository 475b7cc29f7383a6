//! The policy engine with the SCIM directory compiled in: group names (for traces) and
//! group-in-group memberships (for nested `azureAD` rules), next to the configuration's own
//! `directory`. An isolate keeps one compiled copy and checks the directory's generation in
//! D1 at most every `DIRECTORY_REFRESH_SECONDS`; it recompiles only when SCIM changed
//! something the engine uses.

use std::cell::RefCell;
use std::ops::Deref;
use std::rc::Rc;
use std::time::Duration;

use policy_core::{Engine, GroupId, ProviderDirectory};
use serde::Deserialize;
use worker::Env;

use crate::config::Gateway;
use crate::d1::int;
use crate::error::GatewayError;
use crate::time::UnixMillis;

/// The engine a request is decided with.
pub enum Current<'g> {
    /// The configuration alone (SCIM is not enabled).
    Base(&'g Engine),
    /// The configuration with the SCIM directory.
    Scim(Rc<Engine>),
}

impl Deref for Current<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        match self {
            Current::Base(engine) => engine,
            Current::Scim(engine) => engine,
        }
    }
}

/// How long past its refresh a compiled directory keeps serving while D1 cannot be read.
const GRACE: Duration = Duration::from_secs(5 * 60);

struct Compiled {
    /// The stored configuration version compiled (0: the bundled file or the var).
    config_version: u64,
    generation: u64,
    checked: UnixMillis,
    engine: Rc<Engine>,
}

thread_local! {
    static COMPILED: RefCell<Option<Compiled>> = const { RefCell::new(None) };
}

#[derive(Deserialize)]
struct Generation {
    value: f64,
}

#[derive(Deserialize)]
struct Edge {
    child: String,
    parent: String,
}

#[derive(Deserialize)]
struct Name {
    policy_id: String,
    name: String,
}

/// The engine that decides for an identity of provider `idp_id` (`None`: no identity) at
/// `now`. The engine scopes the SCIM directory to its own provider's identities
/// ([`Engine::with_directory`]), so everyone else gets the same decision from the
/// configuration alone — and is decided without reading D1.
pub async fn engine_for<'g>(
    env: &Env,
    gateway: &'g Gateway,
    idp_id: Option<&str>,
    now: UnixMillis,
) -> Result<Current<'g>, GatewayError> {
    match &gateway.scim {
        Some(scim) if idp_id == Some(&*scim.idp_id) => engine(env, gateway, now).await,
        _ => Ok(Current::Base(&gateway.engine)),
    }
}

/// The engine for a request at `now`. Fails closed: when the directory cannot be read or
/// does not compile, the request is not decided.
pub async fn engine<'g>(
    env: &Env,
    gateway: &'g Gateway,
    now: UnixMillis,
) -> Result<Current<'g>, GatewayError> {
    if gateway.scim.is_none() {
        return Ok(Current::Base(&gateway.engine));
    }
    let fresh = COMPILED.with(|c| {
        c.borrow().as_ref().and_then(|c| {
            (c.config_version == gateway.version
                && now.since(c.checked) < gateway.directory_refresh)
                .then(|| c.engine.clone())
        })
    });
    if let Some(engine) = fresh {
        return Ok(Current::Scim(engine));
    }
    let db = env.d1("DB")?;
    let generation: Option<Generation> = match db
        .prepare("SELECT value FROM scim_state WHERE name = 'directory'")
        .first(None)
        .await
    {
        Ok(generation) => generation,
        Err(e) => {
            // D1 hiccups: the copy in hand serves a while longer, then requests fail closed.
            let stale = COMPILED.with(|c| {
                c.borrow().as_ref().and_then(|c| {
                    (c.config_version == gateway.version
                        && now.since(c.checked) < gateway.directory_refresh + GRACE)
                        .then(|| c.engine.clone())
                })
            });
            crate::log::event(
                "directory_unavailable",
                &[
                    ("error", &e.to_string()),
                    ("serving_cached", &stale.is_some().to_string()),
                ],
            );
            return stale
                .map(Current::Scim)
                .ok_or_else(|| GatewayError::Internal(format!("SCIM directory: {e}")));
        }
    };
    let generation = generation.map_or(0, |g| int(g.value));
    let unchanged = COMPILED.with(|c| {
        let mut c = c.borrow_mut();
        let c = c
            .as_mut()
            .filter(|c| c.generation == generation && c.config_version == gateway.version)?;
        c.checked = now;
        Some(c.engine.clone())
    });
    if let Some(engine) = unchanged {
        return Ok(Current::Scim(engine));
    }
    let edges: Vec<Edge> = db
        .prepare(
            "SELECT c.policy_id AS child, p.policy_id AS parent FROM scim_members m \
             JOIN scim_groups c ON c.id = m.member_id JOIN scim_groups p ON p.id = m.group_id \
             WHERE m.member_kind = 'Group'",
        )
        .all()
        .await?
        .results()?;
    let names: Vec<Name> = db
        .prepare(
            "SELECT policy_id, json_extract(resource, '$.displayName') AS name FROM scim_groups \
             WHERE json_type(resource, '$.displayName') = 'text'",
        )
        .all()
        .await?
        .results()?;
    let Some(scim) = gateway.scim.as_ref() else {
        return Ok(Current::Base(&gateway.engine));
    };
    let mut directory = ProviderDirectory::new(&scim.idp_id);
    directory.group_parents = edges
        .iter()
        .filter_map(|e| {
            Some((
                GroupId::parse(&e.child).ok()?,
                GroupId::parse(&e.parent).ok()?,
            ))
        })
        .collect();
    directory.group_names = names
        .into_iter()
        .filter_map(|n| Some((GroupId::parse(&n.policy_id).ok()?, n.name.into_boxed_str())))
        .collect();
    let engine = gateway
        .engine
        .with_directory(&directory)
        .map_err(|e| GatewayError::Internal(format!("the SCIM directory does not apply: {e}")))?;
    let engine = Rc::new(engine);
    crate::log::event(
        "directory_compiled",
        &[
            ("generation", &generation.to_string()),
            ("nesting_edges", &directory.group_parents.len().to_string()),
            ("group_names", &directory.group_names.len().to_string()),
        ],
    );
    COMPILED.with(|c| {
        *c.borrow_mut() = Some(Compiled {
            config_version: gateway.version,
            generation,
            checked: now,
            engine: engine.clone(),
        });
    });
    Ok(Current::Scim(engine))
}

//! The three engines behind one interface: compile a document from its text, prepare a request
//! from its JSON, decide a prepared request. Each decides with its own request form (see
//! `translate::request`).

#[cfg(any(feature = "cedar", feature = "regorus"))]
use std::collections::HashMap;
#[cfg(feature = "cedar")]
use std::collections::HashSet;
#[cfg(feature = "cedar")]
use std::str::FromStr;

#[cfg(any(feature = "cedar", feature = "regorus"))]
use serde_json::Value;

#[cfg(any(feature = "cedar", feature = "regorus"))]
use crate::translate::{self, Route};

/// One engine, as a host would drive it.
pub trait Peer: Sized {
    /// A request parsed into the engine's own input.
    type Prepared;
    /// Compiles the engine's case text (edge-access's document, or a peer's translation).
    ///
    /// # Errors
    /// The engine's message.
    fn compile(text: &str) -> Result<Self, String>;
    /// Parses a request's JSON into the engine's input.
    ///
    /// # Errors
    /// The engine's message.
    fn prepare(&self, request: &str) -> Result<Self::Prepared, String>;
    /// Decides a prepared request: `allow`, `block`, `bypass`, `service_auth`, `default_deny`,
    /// `no_app`.
    ///
    /// # Errors
    /// The engine's message.
    fn decide(&mut self, request: &Self::Prepared) -> Result<&'static str, String>;
    /// Parses and decides.
    ///
    /// # Errors
    /// The engine's message.
    fn decide_json(&mut self, request: &str) -> Result<&'static str, String> {
        let prepared = self.prepare(request)?;
        self.decide(&prepared)
    }
}

/// policy-core itself.
#[cfg(feature = "core")]
#[derive(Debug)]
pub struct Core(policy_core::Engine);

#[cfg(feature = "core")]
impl Peer for Core {
    type Prepared = policy_core::Request;

    fn compile(text: &str) -> Result<Core, String> {
        policy_core::Engine::from_json(text)
            .map(Core)
            .map_err(|e| e.to_string())
    }

    fn prepare(&self, request: &str) -> Result<policy_core::Request, String> {
        policy_core::Request::from_json(request).map_err(|e| e.to_string())
    }

    fn decide(&mut self, request: &policy_core::Request) -> Result<&'static str, String> {
        self.0
            .decide(request)
            .map(|d| d.outcome.as_str())
            .map_err(|e| e.to_string())
    }
}

/// policy-core deciding for a prepared identity (`Engine::prepare_identity`, once per user),
/// as a host that caches it per session does: the group closure is computed when the request
/// is prepared, as the peers get theirs from the host.
#[cfg(feature = "core")]
#[derive(Debug)]
pub struct CoreIdentity(policy_core::Engine);

#[cfg(feature = "core")]
impl Peer for CoreIdentity {
    type Prepared = (policy_core::Request, policy_core::PreparedIdentity);

    fn compile(text: &str) -> Result<CoreIdentity, String> {
        Core::compile(text).map(|c| CoreIdentity(c.0))
    }

    fn prepare(&self, request: &str) -> Result<Self::Prepared, String> {
        let mut request = policy_core::Request::from_json(request).map_err(|e| e.to_string())?;
        let identity = request
            .identity
            .take()
            .ok_or("requests carry an identity")?;
        Ok((request, self.0.prepare_identity(identity)))
    }

    fn decide(&mut self, (request, identity): &Self::Prepared) -> Result<&'static str, String> {
        self.0
            .decide_as(request, identity)
            .map(|d| d.outcome.as_str())
            .map_err(|e| e.to_string())
    }
}

/// Routes shared by both peers: the host finds the app, the engine decides its policies.
#[cfg(any(feature = "cedar", feature = "regorus"))]
#[derive(Debug)]
struct Routes {
    routes: Vec<Route>,
    hosts: HashMap<String, Vec<usize>>,
}

#[cfg(any(feature = "cedar", feature = "regorus"))]
impl Routes {
    fn new(case: &Value) -> Result<Routes, String> {
        let routes = translate::routes(case.get("apps").unwrap_or(&Value::Null))?;
        let hosts = translate::hosts(&routes);
        Ok(Routes { routes, hosts })
    }

    fn index(&self, target: &str) -> Option<usize> {
        let route = translate::route(&self.routes, &self.hosts, target)?;
        self.routes.iter().position(|r| std::ptr::eq(r, route))
    }
}

/// Cedar: one policy set per app, the user's transitive groups as the principal's parents, the
/// lists as entities.
#[cfg(feature = "cedar")]
#[derive(Debug)]
pub struct Cedar {
    routes: Routes,
    /// Per route: its policy set and each policy's position.
    sets: Vec<(
        cedar_policy::PolicySet,
        HashMap<cedar_policy::PolicyId, usize>,
    )>,
    lists: Vec<cedar_policy::Entity>,
    authorizer: cedar_policy::Authorizer,
    action: cedar_policy::EntityUid,
    user: cedar_policy::EntityUid,
}

/// A request for Cedar: the route, the request and its entities.
#[cfg(feature = "cedar")]
#[derive(Debug)]
pub struct CedarRequest {
    route: Option<usize>,
    request: Option<cedar_policy::Request>,
    entities: cedar_policy::Entities,
}

#[cfg(feature = "cedar")]
impl Peer for Cedar {
    type Prepared = CedarRequest;

    fn compile(text: &str) -> Result<Cedar, String> {
        use cedar_policy::{Authorizer, Entities, EntityUid, PolicySet};
        let case: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let routes = Routes::new(&case)?;
        let mut sets = Vec::new();
        for route in &routes.routes {
            let source = case
                .pointer(&format!("/policies/{}", route.id))
                .and_then(Value::as_str)
                .ok_or("missing policies")?;
            let set = PolicySet::from_str(source).map_err(|e| format!("{e:?}"))?;
            let mut positions = HashMap::new();
            for policy in set.policies() {
                let k = policy
                    .annotation("index")
                    .and_then(|k| k.parse().ok())
                    .ok_or("a policy without @index")?;
                positions.insert(policy.id().clone(), k);
            }
            sets.push((set, positions));
        }
        let entities = Entities::from_json_value(
            case.get("entities")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
            None,
        )
        .map_err(|e| e.to_string())?;
        Ok(Cedar {
            routes,
            sets,
            lists: entities.iter().cloned().collect(),
            authorizer: Authorizer::new(),
            action: EntityUid::from_str(r#"Action::"access""#).map_err(|e| e.to_string())?,
            user: EntityUid::from_str(r#"User::"user""#).map_err(|e| e.to_string())?,
        })
    }

    fn prepare(&self, request: &str) -> Result<CedarRequest, String> {
        use cedar_policy::{Context, Entities, Entity, EntityUid};
        let mut json: Value = serde_json::from_str(request).map_err(|e| e.to_string())?;
        let route = json
            .get("app")
            .and_then(Value::as_str)
            .and_then(|t| self.routes.index(t));
        let groups = match json.as_object_mut().and_then(|o| o.remove("groups")) {
            Some(Value::Object(groups)) => groups,
            _ => return Err("groups must be an object".into()),
        };
        let mut parents = HashSet::with_capacity(groups.len());
        for (id, _) in groups {
            let uid = EntityUid::from_type_name_and_id(
                cedar_policy::EntityTypeName::from_str("Group").map_err(|e| e.to_string())?,
                cedar_policy::EntityId::new(id),
            );
            parents.insert(uid);
        }
        let ip = json.get("ip").cloned().unwrap_or(Value::Null);
        if let Some(o) = json.as_object_mut() {
            o.remove("app");
            o.insert(
                "ip".into(),
                serde_json::json!({ "__extn": { "fn": "ip", "arg": ip } }),
            );
        }
        let context = Context::from_json_value(json, None).map_err(|e| e.to_string())?;
        let resource = EntityUid::from_str(&format!(
            "App::{}",
            Value::String(route.map_or(String::new(), |r| r.to_string()))
        ))
        .map_err(|e| e.to_string())?;
        let user = Entity::new_no_attrs(self.user.clone(), parents);
        let entities = Entities::from_entities(self.lists.iter().cloned().chain([user]), None)
            .map_err(|e| e.to_string())?;
        let request = match route {
            Some(_) => Some(
                cedar_policy::Request::new(
                    self.user.clone(),
                    self.action.clone(),
                    resource,
                    context,
                    None,
                )
                .map_err(|e| e.to_string())?,
            ),
            None => None,
        };
        Ok(CedarRequest {
            route,
            request,
            entities,
        })
    }

    fn decide(&mut self, request: &CedarRequest) -> Result<&'static str, String> {
        let (Some(route), Some(cedar)) = (request.route, &request.request) else {
            return Ok("no_app");
        };
        let (set, positions) = self.sets.get(route).ok_or("no such route")?;
        let response = self.authorizer.is_authorized(cedar, set, &request.entities);
        if let Some(error) = response.diagnostics().errors().next() {
            return Err(error.to_string());
        }
        let first = response
            .diagnostics()
            .reason()
            .filter_map(|id| positions.get(id).copied())
            .min();
        outcome(&self.routes, route, first)
    }
}

/// regorus: one Rego module compiled to its VM (RVM); the user's transitive groups as an
/// object in the input, the lists in `data`.
#[cfg(feature = "regorus")]
#[derive(Debug)]
pub struct Regorus {
    routes: Routes,
    /// The VM, when the document fits in one RVM program (at most 65,535 instructions: the
    /// 1,000-app document does not); else regorus's interpreter on the compiled policy.
    vm: Option<regorus::rvm::RegoVM>,
    compiled: regorus::CompiledPolicy,
}

/// A request for regorus: the route and the input.
#[cfg(feature = "regorus")]
#[derive(Debug)]
pub struct RegorusRequest {
    route: Option<usize>,
    input: regorus::Value,
}

#[cfg(feature = "regorus")]
impl Regorus {
    /// Whether decisions run on the RVM (else on the interpreter).
    pub fn on_vm(&self) -> bool {
        self.vm.is_some()
    }
}

#[cfg(feature = "regorus")]
const ENTRY: &str = "data.access.matched";

#[cfg(feature = "regorus")]
impl Peer for Regorus {
    type Prepared = RegorusRequest;

    fn compile(text: &str) -> Result<Regorus, String> {
        let case: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let routes = Routes::new(&case)?;
        let modules = case
            .get("modules")
            .and_then(Value::as_array)
            .ok_or("missing modules")?;
        let data = regorus::Value::from_json_str(
            &case.get("data").cloned().unwrap_or(Value::Null).to_string(),
        )
        .map_err(|e| e.to_string())?;
        let mut engine = regorus::Engine::new();
        for (i, module) in modules.iter().enumerate() {
            let module = module.as_str().ok_or("modules are text")?;
            engine
                .add_policy(format!("access{i}.rego"), module.into())
                .map_err(|e| e.to_string())?;
        }
        engine.add_data(data.clone()).map_err(|e| e.to_string())?;
        let compiled = engine
            .compile_with_entrypoint(&ENTRY.into())
            .map_err(|e| e.to_string())?;
        let vm = match regorus::languages::rego::compiler::Compiler::compile_from_policy(
            &compiled,
            &[ENTRY],
        ) {
            Ok(program) => {
                let mut vm = regorus::rvm::RegoVM::new_with_policy(compiled.clone());
                vm.load_program(program);
                vm.set_data(data).map_err(|e| e.to_string())?;
                Some(vm)
            }
            Err(e) if e.to_string().contains("exceeds max instructions") => None,
            Err(e) => return Err(e.to_string()),
        };
        Ok(Regorus {
            routes,
            vm,
            compiled,
        })
    }

    fn prepare(&self, request: &str) -> Result<RegorusRequest, String> {
        let mut input = regorus::Value::from_json_str(request).map_err(|e| e.to_string())?;
        let route = input["app"]
            .as_string()
            .ok()
            .and_then(|t| self.routes.index(t));
        if let Some(r) = route.and_then(|r| self.routes.routes.get(r)) {
            let id = regorus::Value::from(r.id.as_str());
            input
                .as_object_mut()
                .map_err(|e| e.to_string())?
                .insert(regorus::Value::from("app_id"), id);
        }
        Ok(RegorusRequest { route, input })
    }

    fn decide(&mut self, request: &RegorusRequest) -> Result<&'static str, String> {
        let Some(route) = request.route else {
            return Ok("no_app");
        };
        let matched = match &mut self.vm {
            Some(vm) => {
                vm.set_input(request.input.clone());
                vm.execute_entry_point_by_name(ENTRY)
                    .map_err(|e| e.to_string())?
            }
            None => self
                .compiled
                .eval_with_input(request.input.clone())
                .map_err(|e| e.to_string())?,
        };
        let first_of_app = self.routes.routes.get(route).map_or(0, |r| r.first);
        let first = match &matched {
            regorus::Value::Undefined => None,
            value => value
                .as_set()
                .map_err(|e| e.to_string())?
                .iter()
                .filter_map(|v| v.as_u64().ok())
                .min()
                .map(|k| k as usize - first_of_app),
        };
        outcome(&self.routes, route, first)
    }
}

/// The outcome of the first matched policy of `route`, or `default_deny`.
#[cfg(any(feature = "cedar", feature = "regorus"))]
fn outcome(routes: &Routes, route: usize, first: Option<usize>) -> Result<&'static str, String> {
    match first {
        None => Ok("default_deny"),
        Some(k) => routes
            .routes
            .get(route)
            .and_then(|r| r.outcomes.get(k))
            .copied()
            .ok_or_else(|| format!("no policy {k}")),
    }
}

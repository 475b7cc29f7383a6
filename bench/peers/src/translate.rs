//! An edge-access configuration document written as Cedar policies and as a Rego module, and
//! edge-access requests written as the peers' inputs.
//!
//! Only what the benchmark workloads use is translated (selectors `everyone`, `email`,
//! `email_domain`, `email_list`, `ip`, `geo`, `service_token`, `any_valid_service_token`,
//! `auth_method`, `oidc`, `azureAD`, `group`; inline and reusable policies); anything else is an
//! error, never a silent approximation. Requests always carry a signed-in identity, so the
//! engines' two-valued logic is enough (edge-access's `login_required` needs three).
//!
//! First match by precedence, as edge-access decides: bypass and service-auth policies first,
//! then deny and allow, each in precedence order. Neither peer has ordered policies, so each
//! policy of an app becomes one Cedar `permit` (a per-app policy set) or one element of the Rego
//! set `matched`; the host takes the matched policy that comes first and reads its outcome.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt::Write as _;

use serde_json::{json, Map, Value};

/// An app as the peers' host routes to it.
#[derive(Debug, Clone)]
pub struct Route {
    pub id: String,
    pub host: String,
    /// `""` or `/x`: the app covers that path and what is below it.
    pub path: String,
    /// The outcome of each of the app's policies, in evaluation order.
    pub outcomes: Vec<&'static str>,
    /// The Rego index of the app's first policy (indices are global in the module).
    pub first: usize,
}

/// The document in both peers' languages.
#[derive(Debug)]
pub struct Translated {
    /// `{ "apps": [...], "policies": { app id: Cedar text }, "entities": [...] }`.
    pub cedar: Value,
    /// `{ "apps": [...], "modules": [Rego text, ...], "data": {...} }`.
    pub rego: Value,
}

/// Translates `document` (the edge-access configuration JSON).
///
/// # Errors
/// A selector or a shape the translation does not cover.
pub fn document(document: &Value) -> Result<Translated, String> {
    let cx = Cx::new(document)?;
    let mut routes = Vec::new();
    let mut cedar_policies = Map::new();
    // Several files of one package: regorus bounds a policy file (1 MiB, 20,000 lines).
    const HEADER: &str = "package access\n\nimport rego.v1\n\n";
    let mut modules = Vec::new();
    let mut rego = String::from(HEADER);
    let mut next = 0usize;
    for (a, app) in array(document, "apps")?.iter().enumerate() {
        if a > 0 && a % 100 == 0 {
            modules.push(std::mem::replace(&mut rego, String::from(HEADER)));
        }
        let id = text(app, "id")?;
        let domain = text(app, "domain")?;
        let (host, path) = match domain.find('/') {
            Some(at) => (&domain[..at], &domain[at..]),
            None => (domain, ""),
        };
        let mut slots = Vec::new();
        for (position, entry) in array(app, "policies")?.iter().enumerate() {
            let policy = cx.policy(entry)?;
            let precedence = entry
                .get("precedence")
                .and_then(Value::as_u64)
                .unwrap_or(position as u64 + 1);
            let decision = text(policy, "decision")?;
            let first_pass = matches!(decision, "bypass" | "non_identity");
            slots.push((!first_pass, precedence, policy, decision));
        }
        slots.sort_by_key(|s| (s.0, s.1));
        let mut cedar = String::new();
        let mut outcomes = Vec::new();
        for (k, (_, _, policy, decision)) in slots.iter().enumerate() {
            outcomes.push(match *decision {
                "bypass" => "bypass",
                "non_identity" => "service_auth",
                "deny" => "block",
                "allow" => "allow",
                other => return Err(format!("unknown decision `{other}`")),
            });
            let _ = writeln!(
                cedar,
                "@index(\"{k}\")\npermit(principal, action, resource) when {{ {} }};",
                cx.cedar_rules(policy)?
            );
            let name = format!("p{}", next + k);
            cx.rego_rules(policy, &name, &mut rego)?;
            let _ = writeln!(
                rego,
                "matched contains {} if {{ input.app_id == {}; {name} }}\n",
                next + k,
                quote(id)
            );
        }
        cedar_policies.insert(id.to_owned(), Value::String(cedar));
        routes.push(Route {
            id: id.to_owned(),
            host: host.to_ascii_lowercase(),
            path: path.to_owned(),
            outcomes,
            first: next,
        });
        next += slots.len();
    }
    for (gid, group) in &cx.groups {
        cx.rego_rules(group, &format!("g_{}", ident(gid)), &mut rego)?;
    }
    modules.push(rego);
    let apps: Vec<Value> = routes.iter().map(route_json).collect();
    let mut list_entities = Vec::new();
    let mut list_data = Map::new();
    for (id, emails) in &cx.lists {
        list_entities.push(json!({
            "uid": { "type": "List", "id": id },
            "attrs": { "emails": emails },
            "parents": [],
        }));
        let set: Map<String, Value> = emails
            .iter()
            .map(|e| (e.clone(), Value::Bool(true)))
            .collect();
        list_data.insert(id.clone(), Value::Object(set));
    }
    Ok(Translated {
        cedar: json!({ "apps": apps, "policies": cedar_policies, "entities": list_entities }),
        rego: json!({ "apps": apps, "modules": modules, "data": { "lists": list_data } }),
    })
}

fn route_json(route: &Route) -> Value {
    json!({ "id": route.id, "host": route.host, "path": route.path,
            "outcomes": route.outcomes, "first": route.first })
}

/// Reads the `apps` of a peer's case back.
///
/// # Errors
/// A malformed entry.
pub fn routes(apps: &Value) -> Result<Vec<Route>, String> {
    let Some(apps) = apps.as_array() else {
        return Err("`apps` must be an array".into());
    };
    apps.iter()
        .map(|app| {
            let outcomes = array(app, "outcomes")?
                .iter()
                .map(|o| match o.as_str() {
                    Some("bypass") => Ok("bypass"),
                    Some("service_auth") => Ok("service_auth"),
                    Some("block") => Ok("block"),
                    Some("allow") => Ok("allow"),
                    _ => Err(format!("unknown outcome {o}")),
                })
                .collect::<Result<_, _>>()?;
            Ok(Route {
                id: text(app, "id")?.to_owned(),
                host: text(app, "host")?.to_owned(),
                path: text(app, "path")?.to_owned(),
                outcomes,
                first: app
                    .get("first")
                    .and_then(Value::as_u64)
                    .ok_or("missing `first`")? as usize,
            })
        })
        .collect()
}

/// The app covering `target` (`host/path`): exact host, path at or below the app's path.
pub fn route<'r>(
    routes: &'r [Route],
    by_host: &HashMap<String, Vec<usize>>,
    target: &str,
) -> Option<&'r Route> {
    let (host, path) = match target.find('/') {
        Some(at) => (&target[..at], &target[at..]),
        None => (target, "/"),
    };
    let candidates = by_host.get(host)?;
    candidates
        .iter()
        .filter_map(|&i| routes.get(i))
        .filter(|r| {
            r.path.is_empty()
                || path == r.path
                || (path.starts_with(&r.path) && path.as_bytes().get(r.path.len()) == Some(&b'/'))
        })
        .max_by_key(|r| r.path.len())
}

/// Host → indices of the routes on it.
pub fn hosts(routes: &[Route]) -> HashMap<String, Vec<usize>> {
    let mut map: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, r) in routes.iter().enumerate() {
        map.entry(r.host.clone()).or_default().push(i);
    }
    map
}

/// A request in the peers' form: the edge-access request's fields, the user's groups replaced
/// by their transitive closure over the directory (as Entra's `transitiveMemberOf` answers).
///
/// # Errors
/// A request without an identity, or a field the translation does not cover.
pub fn request(request: &Value, parents: &HashMap<String, Vec<String>>) -> Result<Value, String> {
    let identity = request
        .get("identity")
        .ok_or("requests carry an identity")?;
    let mut closure: HashSet<String> = HashSet::new();
    let mut stack: Vec<String> = Vec::new();
    for g in identity
        .get("groups")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        stack.push(
            g.as_str()
                .ok_or("group ids are strings")?
                .to_ascii_lowercase(),
        );
    }
    while let Some(g) = stack.pop() {
        if closure.insert(g.clone()) {
            stack.extend(parents.get(&g).into_iter().flatten().cloned());
        }
    }
    let mut groups: Vec<String> = closure.into_iter().collect();
    groups.sort();
    let groups: Map<String, Value> = groups.into_iter().map(|g| (g, Value::Bool(true))).collect();
    let mut claims = Vec::new();
    if let Some(Value::Object(map)) = identity.get("claims") {
        for (name, values) in map {
            match values {
                Value::Array(items) => {
                    for v in items {
                        claims.push(format!(
                            "{name}={}",
                            v.as_str().ok_or("claim values are strings")?
                        ));
                    }
                }
                Value::String(v) => claims.push(format!("{name}={v}")),
                _ => return Err("claims are strings or arrays of strings".into()),
            }
        }
    }
    let field = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
    Ok(json!({
        "app": field(request.get("app")).to_ascii_lowercase(),
        "email": field(identity.get("email")).to_ascii_lowercase(),
        "idp": field(identity.get("idp_id")),
        "groups": groups,
        "amr": identity.get("amr").cloned().unwrap_or(json!([])),
        "claims": claims,
        "ip": request.get("ip").and_then(Value::as_str).ok_or("requests carry an ip")?,
        "country": request.get("country").and_then(Value::as_str).ok_or("requests carry a country")?,
        "service_token": request.pointer("/service_token/token_id").and_then(Value::as_str).unwrap_or(""),
    }))
}

/// The directory's child → parents map, lowercased.
pub fn parents(document: &Value) -> HashMap<String, Vec<String>> {
    let mut map = HashMap::new();
    if let Some(Value::Object(entries)) = document.pointer("/directory/group_parents") {
        for (child, ps) in entries {
            let ps = ps
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(str::to_ascii_lowercase)
                .collect();
            map.insert(child.to_ascii_lowercase(), ps);
        }
    }
    map
}

struct Cx<'d> {
    policies: HashMap<&'d str, &'d Value>,
    groups: BTreeMap<String, &'d Value>,
    lists: BTreeMap<String, Vec<String>>,
}

impl<'d> Cx<'d> {
    fn new(document: &'d Value) -> Result<Cx<'d>, String> {
        let mut policies = HashMap::new();
        for p in document
            .get("policies")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            policies.insert(text(p, "id")?, p);
        }
        let mut groups = BTreeMap::new();
        for g in document
            .get("groups")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            groups.insert(text(g, "id")?.to_owned(), g);
        }
        let mut lists = BTreeMap::new();
        for l in document
            .get("lists")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            if text(l, "type")? != "EMAIL" {
                return Err("only EMAIL lists are translated".into());
            }
            let mut items: Vec<String> = array(l, "items")?
                .iter()
                .map(|i| text(i, "value").map(str::to_ascii_lowercase))
                .collect::<Result<_, _>>()?;
            items.sort();
            lists.insert(text(l, "id")?.to_owned(), items);
        }
        Ok(Cx {
            policies,
            groups,
            lists,
        })
    }

    /// An app's policy entry: inline, or a reference to a reusable policy.
    fn policy(&self, entry: &'d Value) -> Result<&'d Value, String> {
        if entry.get("decision").is_some() {
            return Ok(entry);
        }
        let id = text(entry, "id")?;
        self.policies
            .get(id)
            .copied()
            .ok_or_else(|| format!("unknown policy `{id}`"))
    }

    /// `(any include) && (all require) && !(any exclude)` as a Cedar condition.
    fn cedar_rules(&self, rules: &Value) -> Result<String, String> {
        let list = |key: &str| -> Result<Vec<String>, String> {
            rules
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| self.cedar_rule(r))
                .collect()
        };
        let include = list("include")?;
        let mut parts = vec![if include.is_empty() {
            "false".to_owned()
        } else {
            format!("({})", include.join(" || "))
        }];
        parts.extend(list("require")?);
        let exclude = list("exclude")?;
        if !exclude.is_empty() {
            parts.push(format!("!({})", exclude.join(" || ")));
        }
        Ok(format!("({})", parts.join(" && ")))
    }

    fn cedar_rule(&self, rule: &Value) -> Result<String, String> {
        let (key, inner) = selector(rule)?;
        Ok(match key {
            "everyone" => "true".into(),
            "email" => format!(
                "context.email == {}",
                quote(&text(inner, "email")?.to_ascii_lowercase())
            ),
            "email_domain" => format!(
                "context.email like {}",
                quote(&format!(
                    "*@{}",
                    text(inner, "domain")?.to_ascii_lowercase()
                ))
            ),
            "email_list" => format!(
                "List::{}.emails.contains(context.email)",
                quote(text(inner, "id")?)
            ),
            "ip" => format!("context.ip.isInRange(ip({}))", quote(text(inner, "ip")?)),
            "geo" => format!("context.country == {}", quote(text(inner, "country_code")?)),
            "service_token" => format!(
                "context.service_token == {}",
                quote(text(inner, "token_id")?)
            ),
            "any_valid_service_token" => "context.service_token != \"\"".into(),
            "auth_method" => format!(
                "context.amr.contains({})",
                quote(text(inner, "auth_method")?)
            ),
            "oidc" => format!(
                "(context.idp == {} && context.claims.contains({}))",
                quote(text(inner, "identity_provider_id")?),
                quote(&format!(
                    "{}={}",
                    text(inner, "claim_name")?,
                    text(inner, "claim_value")?
                ))
            ),
            "azureAD" => format!(
                "(context.idp == {} && principal in Group::{})",
                quote(text(inner, "identity_provider_id")?),
                quote(&text(inner, "id")?.to_ascii_lowercase())
            ),
            "group" => {
                let id = text(inner, "id")?;
                let group = self
                    .groups
                    .get(id)
                    .ok_or_else(|| format!("unknown group `{id}`"))?;
                self.cedar_rules(group)?
            }
            other => return Err(format!("selector `{other}` is not translated")),
        })
    }

    /// Rules named `name` (with `name_inc` / `name_exc` for the alternatives) in Rego.
    fn rego_rules(&self, rules: &Value, name: &str, out: &mut String) -> Result<(), String> {
        let list = |key: &str| -> Result<Vec<String>, String> {
            rules
                .get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| self.rego_rule(r))
                .collect()
        };
        for body in list("include")? {
            let _ = writeln!(out, "{name}_inc if {{ {body} }}");
        }
        let exclude = list("exclude")?;
        for body in &exclude {
            let _ = writeln!(out, "{name}_exc if {{ {body} }}");
        }
        let mut body = vec![format!("{name}_inc")];
        body.extend(list("require")?);
        if !exclude.is_empty() {
            body.push(format!("not {name}_exc"));
        }
        let _ = writeln!(out, "{name} if {{ {} }}", body.join("; "));
        Ok(())
    }

    fn rego_rule(&self, rule: &Value) -> Result<String, String> {
        let (key, inner) = selector(rule)?;
        Ok(match key {
            "everyone" => "true".into(),
            "email" => format!(
                "input.email == {}",
                quote(&text(inner, "email")?.to_ascii_lowercase())
            ),
            "email_domain" => format!(
                "endswith(input.email, {})",
                quote(&format!("@{}", text(inner, "domain")?.to_ascii_lowercase()))
            ),
            "email_list" => format!("data.lists[{}][input.email]", quote(text(inner, "id")?)),
            "ip" => format!("net.cidr_contains({}, input.ip)", quote(text(inner, "ip")?)),
            "geo" => format!("input.country == {}", quote(text(inner, "country_code")?)),
            "service_token" => {
                format!("input.service_token == {}", quote(text(inner, "token_id")?))
            }
            "any_valid_service_token" => "input.service_token != \"\"".into(),
            "auth_method" => format!("input.amr[_] == {}", quote(text(inner, "auth_method")?)),
            "oidc" => format!(
                "input.idp == {}; input.claims[_] == {}",
                quote(text(inner, "identity_provider_id")?),
                quote(&format!(
                    "{}={}",
                    text(inner, "claim_name")?,
                    text(inner, "claim_value")?
                ))
            ),
            "azureAD" => format!(
                "input.idp == {}; input.groups[{}]",
                quote(text(inner, "identity_provider_id")?),
                quote(&text(inner, "id")?.to_ascii_lowercase())
            ),
            "group" => {
                let id = text(inner, "id")?;
                if !self.groups.contains_key(id) {
                    return Err(format!("unknown group `{id}`"));
                }
                format!("g_{}", ident(id))
            }
            other => return Err(format!("selector `{other}` is not translated")),
        })
    }
}

fn selector(rule: &Value) -> Result<(&str, &Value), String> {
    match rule.as_object() {
        Some(map) if map.len() == 1 => map
            .iter()
            .next()
            .map(|(k, v)| (k.as_str(), v))
            .ok_or_else(|| "an empty rule".into()),
        _ => Err(format!("a rule must have one selector: {rule}")),
    }
}

fn text<'v>(value: &'v Value, key: &str) -> Result<&'v str, String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("missing string `{key}`"))
}

fn array<'v>(value: &'v Value, key: &str) -> Result<&'v Vec<Value>, String> {
    value
        .get(key)
        .and_then(Value::as_array)
        .ok_or_else(|| format!("missing array `{key}`"))
}

/// A string literal in both languages (JSON escaping is valid Cedar and Rego).
fn quote(s: &str) -> String {
    Value::String(s.to_owned()).to_string()
}

/// An Access group id as a Rego identifier.
fn ident(id: &str) -> String {
    id.chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect()
}

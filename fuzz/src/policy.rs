//! policy-core: the configuration document loader, the request parser, and request targets
//! (host and path normalisation, then which app covers them).

use std::fmt::Write as _;
use std::sync::OnceLock;

use policy_core::{
    App, ClientIp, Country, Email, Engine, GroupId, Identity, Mtls, Outcome, Request, ServiceToken,
    Target,
};
use serde_json::Value;

/// Requests decided per document: enough to reach every app of a small document, few enough
/// to keep the target fast on large ones.
const MAX_APPS_PER_DOCUMENT: usize = 8;

/// The example configuration (`examples/config.json`): the engine that parsed requests,
/// targets and token identities are decided against.
pub fn example_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::from_json(include_str!("../../examples/config.json"))
            .unwrap_or_else(|e| panic!("examples/config.json does not load: {e}"))
    })
}

/// A document with exact, path, wildcard and bypass apps on overlapping hosts
/// (`src/routing.json`), for routing targets.
pub fn routing_engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        Engine::from_json(include_str!("routing.json"))
            .unwrap_or_else(|e| panic!("fuzz/src/routing.json does not load: {e}"))
    })
}

/// `Engine::from_json` on the text up to the first NUL byte; the rest, when there is a NUL, is
/// a request to decide with it. A loaded document decides that request and requests to each
/// of its apps (anonymous, signed in, with a service token) the same way through `decide()`
/// and `evaluate()`.
pub fn policy_document(data: &[u8]) {
    let (document, request) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], Some(&data[nul + 1..])),
        None => (data, None),
    };
    let Some(document) = crate::text(document) else {
        return;
    };
    let engine = match Engine::from_json(document) {
        Ok(engine) => engine,
        Err(errors) => {
            assert!(
                !errors.errors().is_empty(),
                "a refused document names no problem"
            );
            let _shown = errors.to_string();
            return;
        }
    };
    for warning in engine.warnings() {
        let _shown = warning.to_string();
    }
    if let Some(request) = request.and_then(crate::text) {
        if let Ok(request) = Request::from_json(request) {
            decisions_agree(&engine, &request);
        }
    }
    let strings = strings_in(document);
    let identity = identity_from(&engine, &strings);
    for app in engine.apps().iter().take(MAX_APPS_PER_DOCUMENT) {
        let domain = app.domain();
        // An app's own domain, with any wildcard filled in, is a request it could cover.
        let Ok(target) = Target::parse(&domain.replace('*', "x")) else {
            continue;
        };
        if !domain.contains('*') {
            assert!(
                matches!(engine.app_for(&target), Ok(Some(_))),
                "no app covers `{target}`, the domain of app `{}`",
                app.id()
            );
        }
        let mut request = Request::new(target);
        request.ip = ClientIp::parse("203.0.113.7").ok();
        request.country = Country::parse("PT").ok();
        decisions_agree(&engine, &request);
        request.identity = Some(identity.clone());
        request.mtls = Some(Mtls {
            common_name: Some("client.example.com".into()),
        });
        decisions_agree(&engine, &request);
        request.identity = None;
        request.service_token = Some(ServiceToken {
            token_id: strings
                .iter()
                .find(|s| !s.is_empty())
                .map_or("token", String::as_str)
                .into(),
        });
        decisions_agree(&engine, &request);
    }
}

/// `Request::from_json`: an accepted request, written back as JSON, parses to the same
/// request, and the example configuration decides it the same way through `decide()` and
/// `evaluate()`.
pub fn request(data: &[u8]) {
    let Some(text) = crate::text(data) else {
        return;
    };
    match Request::from_json(text) {
        Ok(request) => {
            let written = request_json(&request);
            match Request::from_json(&written) {
                Ok(again) => assert_eq!(again, request, "`{written}` parses to another request"),
                Err(e) => panic!("the request written back as `{written}` is refused: {e}"),
            }
            decisions_agree(example_engine(), &request);
            decisions_agree(routing_engine(), &request);
        }
        Err(errors) => {
            assert!(
                !errors.errors().is_empty(),
                "a refused request names no problem"
            );
            let _shown = errors.to_string();
        }
    }
}

/// `Target::parse`: what a target displays parses to the same target (normalisation is
/// idempotent), and routing it through `app_for`, `decide()` and `evaluate()` agrees, anonymous
/// and signed in, on the example and the routing configurations.
pub fn target(data: &[u8]) {
    let Some(text) = crate::text(data) else {
        return;
    };
    let Ok(target) = Target::parse(text) else {
        return;
    };
    assert!(
        target.path().is_empty() || target.path().starts_with('/'),
        "the path of `{target}` neither is the root nor starts with `/`"
    );
    let shown = target.to_string();
    match Target::parse(&shown) {
        Ok(again) => assert_eq!(
            again, target,
            "`{text}` displays as `{shown}`, another target"
        ),
        Err(e) => panic!("`{text}` displays as `{shown}`, which is refused: {e}"),
    }
    for engine in [example_engine(), routing_engine()] {
        let mut request = Request::new(target.clone());
        decisions_agree(engine, &request);
        request.identity = Some(staff_identity());
        decisions_agree(engine, &request);
    }
}

/// The fast path and the traced path decide `request` the same way, naming the app `app_for`
/// routes it to; a granted request names its app and policy; an allow names its session.
pub fn decisions_agree(engine: &Engine, request: &Request) {
    let fast = engine.decide(request);
    let traced = engine.evaluate(request);
    let (decision, verdict) = match (fast, traced) {
        (Ok(decision), Ok(verdict)) => (decision, verdict),
        (Err(a), Err(b)) => {
            assert_eq!(a, b, "decide() and evaluate() fail differently");
            return;
        }
        (fast, traced) => panic!(
            "decide() and evaluate() disagree on {request:?}: {:?} against {:?}",
            fast.map(|d| d.outcome),
            traced.map(|v| v.outcome)
        ),
    };
    assert_eq!(
        decision.outcome, verdict.outcome,
        "decide() and evaluate() disagree on {request:?}"
    );
    let app = decision.app.map(App::id);
    assert_eq!(
        app,
        verdict.app.as_deref(),
        "the apps differ for {request:?}"
    );
    match engine.app_for(&request.target) {
        Ok(routed) => assert_eq!(
            app,
            routed.map(App::id),
            "decide() names another app than app_for() for {request:?}"
        ),
        Err(refusal) => assert_eq!(
            decision.outcome,
            Outcome::InvalidPath,
            "app_for() refuses the path ({refusal}) but decide() says otherwise: {request:?}"
        ),
    }
    assert_eq!(
        matches!(decision.outcome, Outcome::NoApp | Outcome::InvalidPath),
        decision.app.is_none(),
        "`no_app`/`invalid_path` and a missing app must go together: {request:?}"
    );
    let policy = decision.policy.map(|p| (p.id, p.name, p.precedence));
    let traced_policy = verdict
        .policy
        .as_ref()
        .map(|(id, name, precedence)| (id.as_deref(), name.as_str(), *precedence));
    assert_eq!(policy, traced_policy, "the deciding policies differ");
    assert_eq!(decision.session, verdict.session_duration.as_ref());
    if decision.outcome.is_granted() {
        assert!(
            decision.policy.is_some(),
            "granted without a policy: {request:?}"
        );
    }
    if decision.outcome == Outcome::Allow {
        assert!(decision.session.is_some(), "an allow without a session");
    }
    let json = verdict.to_json();
    let parsed: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("`{json}`: {e}"));
    assert_eq!(
        parsed,
        verdict.to_value(),
        "the verdict JSON does not read back"
    );
}

/// The request JSON contract (policy-core README) for `request`.
pub fn request_json(request: &Request) -> String {
    let mut out = String::from("{");
    let field = |out: &mut String, name: &str, value: String| {
        if out.len() > 1 {
            out.push(',');
        }
        let _ = write!(out, "{}:{value}", quote(name));
    };
    field(&mut out, "app", quote(&request.target.to_string()));
    if let Some(identity) = &request.identity {
        field(&mut out, "identity", identity_json(identity));
    }
    if let Some(token) = &request.service_token {
        field(
            &mut out,
            "service_token",
            format!("{{\"token_id\":{}}}", quote(&token.token_id)),
        );
    }
    if let Some(ip) = &request.ip {
        field(&mut out, "ip", quote(&ip.to_string()));
    }
    if let Some(country) = &request.country {
        field(&mut out, "country", quote(country.as_str()));
    }
    if let Some(mtls) = &request.mtls {
        let inner = match &mtls.common_name {
            Some(cn) => format!("{{\"common_name\":{}}}", quote(cn)),
            None => "{}".into(),
        };
        field(&mut out, "mtls", inner);
    }
    out.push('}');
    out
}

fn identity_json(identity: &Identity) -> String {
    let mut fields: Vec<String> = Vec::new();
    if let Some(email) = &identity.email {
        fields.push(format!("\"email\":{}", quote(email.as_str())));
    }
    for (name, value) in [
        ("user_id", &identity.user_id),
        ("tenant_id", &identity.tenant_id),
        ("idp_id", &identity.idp_id),
    ] {
        if let Some(value) = value {
            fields.push(format!("{}:{}", quote(name), quote(value)));
        }
    }
    let groups: Vec<String> = identity.groups.iter().map(|g| g.to_string()).collect();
    fields.push(format!("\"groups\":{}", list(&groups)));
    fields.push(format!("\"amr\":{}", list(&identity.amr)));
    fields.push(format!("\"acrs\":{}", list(&identity.acrs)));
    let claims: Vec<String> = identity
        .claims
        .iter()
        .map(|(name, values)| format!("{}:{}", quote(name), list(values)))
        .collect();
    fields.push(format!("\"claims\":{{{}}}", claims.join(",")));
    format!("{{{}}}", fields.join(","))
}

fn list<S: AsRef<str>>(items: &[S]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quote(s.as_ref())).collect();
    format!("[{}]", quoted.join(","))
}

fn quote(text: &str) -> String {
    Value::from(text).to_string()
}

/// Up to 64 strings of a JSON document (values and keys), in document order.
fn strings_in(document: &str) -> Vec<String> {
    fn walk(value: &Value, out: &mut Vec<String>) {
        if out.len() >= 64 {
            return;
        }
        match value {
            Value::String(s) => out.push(s.clone()),
            Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            Value::Object(map) => map.iter().for_each(|(k, v)| {
                out.push(k.clone());
                walk(v, out);
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(value) = serde_json::from_str::<Value>(document) {
        walk(&value, &mut out);
    }
    out
}

/// A signed-in user the document's own rules could match: its first email address, up to 8 of
/// its GUIDs as groups, its first identity provider and tenant, MFA.
fn identity_from(engine: &Engine, strings: &[String]) -> Identity {
    let mut identity = Identity::default();
    identity.email = strings
        .iter()
        .find_map(|s| Email::parse(s).ok())
        .or_else(|| Email::parse("ada@example.com").ok());
    identity.groups = strings
        .iter()
        .filter_map(|s| GroupId::parse(s).ok())
        .take(8)
        .collect();
    if let Some(idp) = engine.identity_providers().first() {
        identity.idp_id = Some(idp.id.clone());
        identity.tenant_id = Some(idp.directory_id.clone());
    }
    identity.user_id = Some("e2a1c3b4-5d6f-4789-8a9b-0c1d2e3f4a5b".into());
    identity.amr = vec!["pwd".into(), "mfa".into()];
    identity
}

/// A member of the example configuration's Engineering group (through nesting), with MFA.
pub fn staff_identity() -> Identity {
    let mut identity = Identity::default();
    identity.email = Email::parse("ada@example.com").ok();
    identity.groups = GroupId::parse("1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d")
        .into_iter()
        .collect();
    identity.idp_id = Some("7f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f".into());
    identity.tenant_id = Some("72f988bf-86f1-41af-91ab-2d7cd011db47".into());
    identity.amr = vec!["pwd".into(), "mfa".into()];
    identity
}

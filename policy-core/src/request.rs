//! The request: who is asking (if anyone is signed in), from where, for what.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use crate::error::RequestError;
use crate::ids::{Country, Email, GroupId};
use crate::json::{boxed, Json, Path, Problems};
use crate::net::ClientIp;
use crate::route::Target;

/// A request to decide.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Request {
    /// The host and path asked for.
    pub target: Target,
    /// The signed-in user, if any.
    pub identity: Option<Identity>,
    /// The verified service token the request carries, if any.
    pub service_token: Option<ServiceToken>,
    /// The client address.
    pub ip: Option<ClientIp>,
    /// The client's country.
    pub country: Option<Country>,
    /// The verified mTLS client certificate, if one was presented.
    pub mtls: Option<Mtls>,
}

/// A signed-in user as the identity provider described them.
#[derive(Clone, Debug, PartialEq, Default)]
#[non_exhaustive]
pub struct Identity {
    /// The email used by `email`, `email_domain`, `email_list`.
    pub email: Option<Email>,
    /// Entra object id (`oid`).
    pub user_id: Option<Box<str>>,
    /// Entra tenant id (`tid`).
    pub tenant_id: Option<Box<str>>,
    /// The identity provider the user signed in with.
    pub idp_id: Option<Box<str>>,
    /// Group object ids (direct, or already transitive from the token or Graph).
    pub groups: Vec<GroupId>,
    /// Authentication methods (`amr`).
    pub amr: Vec<Box<str>>,
    /// Authentication contexts (`acrs`).
    pub acrs: Vec<Box<str>>,
    /// Other claims, for `oidc` rules: name → values (a scalar claim has one value).
    pub claims: Vec<(Box<str>, Vec<Box<str>>)>,
}

/// A service token that has already been verified by the host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServiceToken {
    /// The token's id, as named by `service_token` rules.
    pub token_id: Box<str>,
}

/// A verified mTLS client certificate.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Mtls {
    /// The certificate's subject common name.
    pub common_name: Option<Box<str>>,
}

impl Request {
    /// A request for `target` with nothing else known.
    pub fn new(target: Target) -> Request {
        Request {
            target,
            identity: None,
            service_token: None,
            ip: None,
            country: None,
            mtls: None,
        }
    }

    /// Parses the JSON form (see the crate docs).
    ///
    /// # Errors
    /// [`RequestError`] naming the path of every problem.
    pub fn from_json(text: &str) -> Result<Request, RequestError> {
        if let Some(request) = crate::request_direct::read(text) {
            return Ok(request);
        }
        Request::from_json_tree(text)
    }

    /// [`Request::from_json`] through the JSON tree alone: the reader that names every
    /// problem, and the model the direct reader is tested against.
    #[doc(hidden)]
    pub fn from_json_tree(text: &str) -> Result<Request, RequestError> {
        let json =
            Json::parse(text).map_err(|m| RequestError::new(alloc::vec![(String::new(), m)]))?;
        let mut problems = Problems::default();
        let request = parse_request(&json, &mut problems);
        match request {
            Some(r) if problems.is_empty() => Ok(r),
            _ => Err(RequestError::new(problems.list)),
        }
    }
}

fn parse_request(json: &Json<'_>, p: &mut Problems) -> Option<Request> {
    let root = Path::Root;
    let obj = p.object(
        json,
        &root,
        &["app", "identity", "service_token", "ip", "country", "mtls"],
        &[],
    )?;
    let target = obj.required("app", &root, p).and_then(|v| {
        let path = root.key("app");
        let s = p.string(v, &path)?;
        Target::parse(s).map_err(|m| p.add(&path, m)).ok()
    });
    let identity = obj
        .get("identity")
        .and_then(|v| parse_identity(v, &root.key("identity"), p));
    let service_token = obj.get("service_token").and_then(|v| {
        let path = root.key("service_token");
        let o = p.object(v, &path, &["token_id"], &[])?;
        let id = o.required("token_id", &path, p)?;
        let id = p.nonempty(id, &path.key("token_id"))?;
        Some(ServiceToken {
            token_id: boxed(id),
        })
    });
    let ip = obj.get("ip").and_then(|v| {
        let path = root.key("ip");
        let s = p.string(v, &path)?;
        ClientIp::parse(s)
            .map_err(|e| p.add(&path, format!("{e} `{s}`")))
            .ok()
    });
    let country = obj.get("country").and_then(|v| {
        let path = root.key("country");
        let s = p.string(v, &path)?;
        Country::parse(s)
            .map_err(|e| p.add(&path, format!("{e} `{s}`")))
            .ok()
    });
    let mtls = obj.get("mtls").and_then(|v| {
        let path = root.key("mtls");
        let o = p.object(v, &path, &["common_name"], &[])?;
        let common_name = match o.get("common_name") {
            Some(cn) => Some(boxed(p.string(cn, &path.key("common_name"))?)),
            None => None,
        };
        Some(Mtls { common_name })
    });
    Some(Request {
        target: target?,
        identity,
        service_token,
        ip,
        country,
        mtls,
    })
}

fn parse_identity(json: &Json<'_>, path: &Path<'_>, p: &mut Problems) -> Option<Identity> {
    let o = p.object(
        json,
        path,
        &[
            "email",
            "user_id",
            "tenant_id",
            "idp_id",
            "groups",
            "amr",
            "acrs",
            "claims",
        ],
        &[],
    )?;
    let mut identity = Identity::default();
    if let Some(v) = o.get("email") {
        let at = path.key("email");
        if let Some(s) = p.string(v, &at) {
            identity.email = Email::parse(s)
                .map_err(|e| p.add(&at, format!("{e} `{s}`")))
                .ok();
        }
    }
    for (key, slot) in [
        ("user_id", &mut identity.user_id),
        ("tenant_id", &mut identity.tenant_id),
        ("idp_id", &mut identity.idp_id),
    ] {
        if let Some(v) = o.get(key) {
            *slot = p.nonempty(v, &path.key(key)).map(boxed);
        }
    }
    if let Some(v) = o.get("groups") {
        let at = path.key("groups");
        for (i, g) in p.array(v, &at).unwrap_or(&[]).iter().enumerate() {
            let gp = at.index(i);
            if let Some(s) = p.string(g, &gp) {
                match GroupId::parse(s) {
                    Ok(id) => identity.groups.push(id),
                    Err(e) => p.add(&gp, format!("`{s}` is {e}")),
                }
            }
        }
    }
    identity.amr = string_list(o.get("amr"), &path.key("amr"), p);
    identity.acrs = string_list(o.get("acrs"), &path.key("acrs"), p);
    if let Some(v) = o.get("claims") {
        let at = path.key("claims");
        match v {
            Json::Object(entries) => {
                for (name, value) in entries {
                    let values: Vec<Box<str>> = match value {
                        Json::Array(items) => items.iter().map(|i| boxed(&i.to_text())).collect(),
                        Json::Object(_) => {
                            p.add(&at.key(name), "expected a string, number, boolean or array");
                            continue;
                        }
                        other => alloc::vec![boxed(&other.to_text())],
                    };
                    identity.claims.push((boxed(name), values));
                }
            }
            other => p.add(&at, format!("expected an object, found {}", other.kind())),
        }
    }
    Some(identity)
}

fn string_list(value: Option<&Json<'_>>, path: &Path<'_>, p: &mut Problems) -> Vec<Box<str>> {
    let Some(v) = value else { return Vec::new() };
    p.array(v, path)
        .unwrap_or(&[])
        .iter()
        .enumerate()
        .filter_map(|(i, item)| p.string(item, &path.index(i)).map(boxed))
        .collect()
}

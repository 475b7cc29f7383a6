//! Several host names on one stack, as a browser that resolves `*.localhost` to loopback
//! reaches them: the team domain as the sign-in hub (`TEAM_DOMAIN_SIGN_IN=true`) on
//! `team.localhost`, apps on `app1.localhost` and `app2.localhost`, each with the worker's port.
//! Requests go to 127.0.0.1 with the host name in `Host`. The endpoints are under
//! `ACCESS_PATH_PREFIX=/auth/edge`: `wrangler dev` answers `/cdn-cgi/…` on host names other
//! than its own with its own 403 ("Invalid Host header").

#![expect(
    clippy::unwrap_used,
    reason = "a client for tests and benchmarks: a failed step fails the run that made it"
)]

use std::net::{Ipv4Addr, TcpListener};

use entra_emulator::client::{raw_get, HttpResponse};
use entra_emulator::fixtures::Fixtures;
use entra_emulator::Emulator;
use serde_json::{json, Value};

use crate::stack::{Stack, StackConfig};

/// The endpoint prefix of [`Hosts`] stacks.
pub const PREFIX: &str = "/auth/edge";

/// The identity provider's id.
pub const IDP: &str = "0f0e7a4c-1b2d-4e3f-8a9b-0c1d2e3f4a5b";
/// The partner tenant's provider (the emulator's partner), with its own client secret.
pub const PARTNER_IDP: &str = "partner-fabrikam";
/// The organisation's tenant again, signing in silently first (`prompt: none`).
pub const SILENT_IDP: &str = "silent";
/// The `session_duration` of the `brief` app (`app1.localhost/brief`).
pub const BRIEF_SECS: u64 = 4;

/// A stack serving the team domain and two app hosts.
#[derive(Debug)]
pub struct Hosts {
    pub stack: Stack,
    pub port: u16,
}

impl Hosts {
    /// `team.localhost:PORT`.
    pub fn team(&self) -> String {
        format!("team.localhost:{}", self.port)
    }
    /// `app1.localhost:PORT`.
    pub fn app1(&self) -> String {
        format!("app1.localhost:{}", self.port)
    }
    /// `app2.localhost:PORT`.
    pub fn app2(&self) -> String {
        format!("app2.localhost:{}", self.port)
    }
}

/// Apps `one` (`app1.localhost`), `brief` (`app1.localhost/brief`, [`BRIEF_SECS`]) and `two`
/// (`app2.localhost`), each admitting example.com addresses signed in with [`IDP`]; `both`
/// (`app2.localhost/both`), anyone signed in with [`IDP`] or [`PARTNER_IDP`] (the login
/// chooser); `quiet` (`app1.localhost/quiet`), example.com addresses signed in with
/// [`SILENT_IDP`]. The team domain is `https://team.localhost:PORT`.
pub fn document() -> Value {
    let allow_staff = json!([{ "name": "Staff", "decision": "allow",
        "include": [{ "email_domain": { "domain": "example.com" } }] }]);
    let provider = |id: &str, name: &str, tenant: &str, extra: Value| {
        let mut config = json!({ "client_id": format!("${{{tenant}CLIENT_ID}}"),
            "directory_id": format!("${{{tenant}TENANT_ID}}"), "support_groups": true });
        if let (Some(config), Some(extra)) = (config.as_object_mut(), extra.as_object()) {
            config.extend(extra.clone());
        }
        json!({ "id": id, "name": name, "type": "azureAD", "config": config })
    };
    json!({
        "team_domain": "https://team.localhost:${WORKER_PORT}",
        "identity_providers": [
            provider(IDP, "Emulated Entra ID", "", json!({ "pkce_enabled": true })),
            provider(PARTNER_IDP, "Fabrikam partners", "PARTNER_", json!({})),
            provider(SILENT_IDP, "Emulated Entra ID (silent)", "", json!({ "prompt": "none" }))
        ],
        "apps": [
            { "id": "brief", "name": "Short sessions", "domain": "app1.localhost/brief",
              "aud": "aud-brief", "session_duration": format!("{BRIEF_SECS}s"),
              "allowed_idps": [IDP], "policies": allow_staff },
            { "id": "quiet", "name": "Quiet", "domain": "app1.localhost/quiet", "aud": "aud-quiet",
              "allowed_idps": [SILENT_IDP], "policies": allow_staff },
            { "id": "one", "name": "App one", "domain": "app1.localhost", "aud": "aud-one",
              "allowed_idps": [IDP], "policies": allow_staff },
            { "id": "both", "name": "Shared with partners", "domain": "app2.localhost/both",
              "aud": "aud-both", "allowed_idps": [IDP, PARTNER_IDP],
              "policies": [{ "name": "Anyone signed in", "decision": "allow", "include": [{ "everyone": {} }] }] },
            { "id": "two", "name": "App two", "domain": "app2.localhost", "aud": "aud-two",
              "allowed_idps": [IDP], "policies": allow_staff }
        ]
    })
}

impl Hosts {
    /// Starts a stack named `name` on a port chosen first, so that the team domain and the
    /// redirect URI registered with the emulator can name it; `team_domain_sign_in`: the hub
    /// on, else each host signs in for itself (with its own registered callback).
    ///
    /// # Errors
    /// When the stack does not start (the message says why).
    pub fn start(name: &str, team_domain_sign_in: bool) -> Result<Hosts, String> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let mut fixtures = Fixtures::load_default().map_err(|e| e.to_string())?;
        for host in ["team", "app1", "app2"] {
            let callback = format!("http://{host}.localhost:{port}{PREFIX}/callback");
            if let Some(partner) = fixtures.partner.as_mut() {
                partner.redirect_uris.push(callback.clone());
            }
            fixtures.redirect_uris.push(callback);
        }
        let document: Value = serde_json::from_str(
            &document()
                .to_string()
                .replace("${WORKER_PORT}", &port.to_string()),
        )
        .map_err(|e| e.to_string())?;
        let mut config = StackConfig::new(document)
            .named(name)
            .with_var("TEAM_DOMAIN_SIGN_IN", &team_domain_sign_in.to_string())
            .with_var("ACCESS_PATH_PREFIX", PREFIX)
            .with_var(
                "AZURE_CLIENT_SECRET_PARTNER_FABRIKAM",
                "${PARTNER_CLIENT_SECRET}",
            );
        config.port = Some(port);
        config.fixtures = Some(fixtures);
        let stack = Stack::start(config).map_err(|e| e.to_string())?;
        Ok(Hosts { stack, port })
    }
}

/// A browser over several host names: a cookie jar per host (cookies are host-only), paths
/// ignored (every cookie the gateway sets here is for `/` or its prefix).
#[derive(Debug)]
pub struct Agent<'h> {
    pub hosts: &'h Hosts,
    /// (host, name, value).
    pub jar: Vec<(String, String, String)>,
}

impl<'h> Agent<'h> {
    pub fn new(hosts: &'h Hosts) -> Self {
        Self {
            hosts,
            jar: Vec::new(),
        }
    }

    /// `GET url` (`http://host:port/path`), on the worker, with this host's cookies.
    pub fn get(&mut self, url: &str) -> HttpResponse {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let path = if path.is_empty() { "/" } else { path };
        let cookies: Vec<String> = self
            .jar
            .iter()
            .filter(|(h, _, _)| h == host)
            .map(|(_, n, v)| format!("{n}={v}"))
            .collect();
        let cookie = cookies.join("; ");
        let mut headers = vec![
            ("Host", host),
            ("Accept", "text/html,application/xhtml+xml"),
        ];
        if !cookie.is_empty() {
            headers.push(("Cookie", &cookie));
        }
        let answer = raw_get(self.hosts.stack.addr(), path, &headers).unwrap();
        for line in answer.header_all("set-cookie") {
            let (pair, attributes) = line.split_once(';').unwrap_or((line, ""));
            let (name, value) = pair.split_once('=').unwrap();
            let expired = attributes.to_ascii_lowercase().contains("max-age=0");
            self.jar.retain(|(h, n, _)| !(h == host && n == name));
            if !expired && !value.is_empty() {
                self.jar
                    .push((host.to_owned(), name.to_owned(), value.to_owned()));
            }
        }
        answer
    }

    pub fn cookie(&self, host: &str, name: &str) -> Option<String> {
        self.jar
            .iter()
            .find(|(h, n, _)| h == host && n == name)
            .map(|(_, _, v)| v.clone())
    }

    pub fn forget(&mut self, host: &str, name_prefix: &str) {
        self.jar
            .retain(|(h, n, _)| !(h == host && n.starts_with(name_prefix)));
    }

    /// `GET url`, expecting a redirect: where it goes.
    pub fn redirected(&mut self, url: &str) -> String {
        let answer = self.get(url);
        assert_eq!(answer.status, 302, "{url}: {answer:?}");
        let location = answer.header("location").unwrap();
        if location.starts_with('/') {
            let origin = url.split('/').take(3).collect::<Vec<_>>().join("/");
            format!("{origin}{location}")
        } else {
            location.to_owned()
        }
    }

    /// From a protected page of `host` without a session to the team domain's answer: the
    /// app host's login, then the team domain's login URL.
    pub fn via_team(&mut self, host: &str, path: &str) -> String {
        let login = self.redirected(&format!("http://{host}{path}"));
        assert!(
            login.starts_with(&format!("http://{host}{PREFIX}/login?")),
            "{login}"
        );
        let team = self.redirected(&login);
        assert!(
            team.starts_with(&format!("http://{}{PREFIX}/login?", self.hosts.team())),
            "{team}"
        );
        team
    }

    /// Signs in with Entra from the team domain's login URL as `user`: the handoff URL.
    pub fn sign_in_at_team(&mut self, team_login: &str, user: &str) -> String {
        self.sign_in_at_team_with(team_login, self.hosts.stack.emulator(), user)
    }

    /// [`Agent::sign_in_at_team`] through the tenant `emulator` (the partner's, say).
    pub fn sign_in_at_team_with(
        &mut self,
        team_login: &str,
        emulator: &Emulator,
        user: &str,
    ) -> String {
        let authorize = self.redirected(team_login);
        assert!(
            authorize.starts_with(&emulator.authorize_endpoint()),
            "{authorize}"
        );
        let callback = emulator.sign_in(&authorize, user).unwrap();
        assert!(
            callback.starts_with(&format!("http://{}{PREFIX}/callback?", self.hosts.team())),
            "{callback}"
        );
        let handoff = self.redirected(&callback);
        assert!(
            self.cookie(&self.hosts.team(), "CF_Authorization")
                .is_some(),
            "no team session cookie"
        );
        handoff
    }

    /// Follows a handoff URL to the page it returns to, expecting the app's cookie.
    pub fn take_handoff(&mut self, handoff: &str, host: &str, path: &str) -> String {
        assert!(
            handoff.starts_with(&format!("http://{host}{PREFIX}/authorized?token=")),
            "{handoff}"
        );
        let back = self.redirected(handoff);
        assert_eq!(back, format!("http://{host}{path}"));
        self.cookie(host, "CF_Authorization").unwrap()
    }

    /// The origin's answer for `path` on `host`, which must be let through.
    pub fn reached(&mut self, host: &str, path: &str) -> Value {
        let answer = self.get(&format!("http://{host}{path}"));
        assert_eq!(answer.status, 200, "{host}{path}: {answer:?}");
        answer.json().unwrap()
    }
}

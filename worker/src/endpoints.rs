//! Where the gateway's own endpoints live: under one path prefix on every protected host,
//! `ACCESS_PATH_PREFIX`, by default `/cdn-cgi/access` as with Cloudflare Access (so
//! applications and scripts written for Access keep working). Cloudflare reserves parts of
//! `/cdn-cgi/` on proxied zones for its own features, so a zone may need another prefix.
//!
//! Below the prefix: `login`, `callback`, `authorized`, `logout`, `certs`, `get-identity`, `health`,
//! `api/…` (the management API) and `scim/v2/…`. Everything else, the default prefix included
//! when another one is set, is an ordinary path decided by the policies.
//!
//! A Worker variable rather than a document setting: the prefix routes the management API and
//! the health endpoint, which must answer before (and whether or not) a document loads, and it
//! is part of the deployment (the redirect URI registered in Entra, the Worker's routes), not of
//! the policies an API write may change.

use worker::Env;

/// The prefix when `ACCESS_PATH_PREFIX` is not set.
pub const DEFAULT_PREFIX: &str = "/cdn-cgi/access";

/// The variable that sets the prefix.
const VAR: &str = "ACCESS_PATH_PREFIX";

/// The gateway's endpoint prefix, validated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoints {
    prefix: String,
}

impl Endpoints {
    /// The prefix `ACCESS_PATH_PREFIX` sets, else [`DEFAULT_PREFIX`].
    ///
    /// # Errors
    ///
    /// When the variable is set to a prefix [`Endpoints::parse`] refuses: the message names it.
    pub fn from_env(env: &Env) -> Result<Endpoints, String> {
        match env.var(VAR).ok().map(|v| v.to_string()) {
            Some(value) if !value.is_empty() => Endpoints::parse(&value),
            _ => Endpoints::parse(DEFAULT_PREFIX),
        }
    }

    /// `value` as a prefix: an absolute path of one or more segments of letters, digits, `-`,
    /// `.`, `_` and `~`, without a trailing `/`. What a request's path is compared with must
    /// mean the same to every reader of the URL, hence no `%`, no dot segments, no empty
    /// segments.
    ///
    /// # Errors
    ///
    /// The first rule `value` breaks, naming the variable.
    pub fn parse(value: &str) -> Result<Endpoints, String> {
        let refuse = |why: &str| Err(format!("{VAR} `{value}` {why}"));
        if !value.starts_with('/') {
            return refuse("must start with `/`");
        }
        if value.ends_with('/') {
            return refuse("must not end with `/` (and cannot be `/` alone)");
        }
        if value.contains('%') {
            return refuse("must not contain `%`");
        }
        if value.contains("..") {
            return refuse("must not contain `..`");
        }
        let segments = value.split('/').skip(1);
        for segment in segments {
            if segment.is_empty() {
                return refuse("must not contain an empty segment (`//`)");
            }
            if segment == "." {
                return refuse("must not contain a `.` segment");
            }
            if !segment
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
            {
                return refuse(
                    "must hold only letters, digits, `-`, `.`, `_`, `~` and `/` between segments",
                );
            }
        }
        Ok(Endpoints {
            prefix: value.to_owned(),
        })
    }

    /// The path of the endpoint `name` (`login` → `/cdn-cgi/access/login`).
    pub fn path(&self, name: &str) -> String {
        format!("{}/{name}", self.prefix)
    }

    /// What follows the endpoint `name` (`""`: the prefix itself) in `path`: `Some("")` when
    /// `path` is that endpoint, `Some("/rest")` below it, `None` elsewhere (`/cdn-cgi/accessx`
    /// is not below `/cdn-cgi/access`).
    pub fn below<'p>(&self, path: &'p str, name: &str) -> Option<&'p str> {
        let rest = path.strip_prefix(self.prefix.as_str())?;
        let rest = if name.is_empty() {
            rest
        } else {
            rest.strip_prefix('/')?.strip_prefix(name)?
        };
        (rest.is_empty() || rest.starts_with('/')).then_some(rest)
    }

    /// The `Path` attribute of cookies only the gateway's endpoints read (`/cdn-cgi/access/`).
    pub fn cookie_path(&self) -> String {
        format!("{}/", self.prefix)
    }
}

/// The team domain as the sign-in hub.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hub {
    /// The team domain's `host[:port]`, lowercase.
    authority: String,
}

impl Hub {
    /// The hub of `team_domain` (`https://host[:port]`, as the loader checked it) when
    /// `setting` (`TEAM_DOMAIN_SIGN_IN`) is `true`; `None` when it is unset or `false`.
    ///
    /// # Errors
    /// Any other value, naming the variable.
    pub fn from_setting(setting: Option<&str>, team_domain: &str) -> Result<Option<Hub>, String> {
        match setting {
            None | Some("false") => Ok(None),
            Some("true") => {
                let authority = team_domain
                    .strip_prefix("https://")
                    .unwrap_or(team_domain)
                    .trim_end_matches('/')
                    .to_ascii_lowercase();
                Ok(Some(Hub { authority }))
            }
            Some(other) => Err(format!(
                "TEAM_DOMAIN_SIGN_IN `{other}` must be `true` or `false`"
            )),
        }
    }

    /// Whether `authority` (a request's `host[:port]`) is the team domain.
    pub fn is_team(&self, authority: &str) -> bool {
        self.authority.eq_ignore_ascii_case(authority)
    }

    /// The team domain's origin, on `scheme` (the request's: `https` on the platform).
    pub fn origin(&self, scheme: &str) -> String {
        format!("{scheme}://{}", self.authority)
    }
}

/// A request URL's `host[:port]`, lowercase (the default port left out, as browsers send it).
pub fn authority(url: &worker::Url) -> String {
    let host = url.host_str().unwrap_or("").to_ascii_lowercase();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_that_mean_one_thing_are_accepted() {
        for good in [
            DEFAULT_PREFIX,
            "/auth",
            "/.well-known/edge-access",
            "/a_b~c-1.2",
        ] {
            assert_eq!(
                Endpoints::parse(good).map(|e| e.prefix),
                Ok(good.to_owned())
            );
        }
    }

    #[test]
    fn other_prefixes_are_refused_naming_the_variable() {
        for (bad, why) in [
            ("", "must start with `/`"),
            ("auth", "must start with `/`"),
            ("/", "must not end with `/`"),
            ("/auth/", "must not end with `/`"),
            ("/a%2Fb", "must not contain `%`"),
            ("/a/../b", "must not contain `..`"),
            ("/a..b", "must not contain `..`"),
            ("/a//b", "empty segment"),
            ("/a/./b", "`.` segment"),
            ("/a b", "only letters"),
            ("/a?b", "only letters"),
            ("/a\\b", "only letters"),
            ("/é", "only letters"),
        ] {
            let refused = Endpoints::parse(bad);
            assert!(
                refused
                    .as_ref()
                    .is_err_and(|m| m.starts_with(&format!("ACCESS_PATH_PREFIX `{bad}` "))
                        && m.contains(why)),
                "{bad:?}: {refused:?}"
            );
        }
    }

    #[test]
    fn paths_below_an_endpoint() {
        let Ok(e) = Endpoints::parse("/auth/edge") else {
            panic!("valid");
        };
        assert_eq!(e.path("login"), "/auth/edge/login");
        assert_eq!(e.cookie_path(), "/auth/edge/");
        assert_eq!(e.below("/auth/edge", ""), Some(""));
        assert_eq!(e.below("/auth/edge/login", ""), Some("/login"));
        assert_eq!(e.below("/auth/edgex", ""), None);
        assert_eq!(e.below("/auth/edge/api", "api"), Some(""));
        assert_eq!(e.below("/auth/edge/api/config", "api"), Some("/config"));
        assert_eq!(e.below("/auth/edge/apix", "api"), None);
        assert_eq!(
            e.below("/auth/edge/scim/v2/Users", "scim/v2"),
            Some("/Users")
        );
        assert_eq!(e.below("/cdn-cgi/access/login", ""), None);
        assert_eq!(e.below("/auth", ""), None);
    }

    #[test]
    fn the_hub_is_opt_in_and_names_its_variable() {
        assert_eq!(Hub::from_setting(None, "https://t.example.com"), Ok(None));
        assert_eq!(
            Hub::from_setting(Some("false"), "https://t.example.com"),
            Ok(None)
        );
        let hub = Hub::from_setting(Some("true"), "https://Team.Example.com:8443")
            .unwrap()
            .unwrap();
        assert!(hub.is_team("team.example.com:8443"));
        assert!(!hub.is_team("team.example.com"));
        assert_eq!(hub.origin("https"), "https://team.example.com:8443");
        let error = Hub::from_setting(Some("yes"), "https://t.example.com").unwrap_err();
        assert!(error.contains("TEAM_DOMAIN_SIGN_IN"), "{error}");
    }
}

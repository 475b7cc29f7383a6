//! The request's URL as the runtime hands it over, split without re-encoding or normalising:
//! the path the engine decides is, byte for byte, the path the origin receives.

use worker::Request;

/// `scheme://authority/path?query`, each part as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawUrl {
    /// `http` or `https`, lowercase.
    pub scheme: String,
    /// `host[:port]`, as sent.
    pub authority: String,
    /// The path, as sent (`/` at least).
    pub path: String,
    /// The query without `?`, if any.
    pub query: Option<String>,
}

impl RawUrl {
    /// The URL of `request`, or `None` when the runtime's URL is not an absolute http(s) URL.
    pub fn of(request: &Request) -> Option<RawUrl> {
        RawUrl::parse(&request.inner().url())
    }

    /// Splits an absolute `http(s)` URL; the fragment is dropped.
    pub fn parse(url: &str) -> Option<RawUrl> {
        let (scheme, rest) = url.split_once("://")?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return None;
        }
        let rest = rest.split('#').next().unwrap_or("");
        let end = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, rest) = rest.split_at(end);
        if authority.is_empty() || authority.contains('@') {
            return None;
        }
        let (path, query) = match rest.split_once('?') {
            Some((p, q)) => (p, Some(q.to_owned())),
            None => (rest, None),
        };
        Some(RawUrl {
            scheme,
            authority: authority.to_owned(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
            query,
        })
    }

    /// `host[:port]/path`: what the engine decides.
    pub fn target(&self) -> String {
        format!("{}{}", self.authority, self.path)
    }

    /// `/path?query`: what the origin receives.
    pub fn path_and_query(&self) -> String {
        match &self.query {
            Some(q) => format!("{}?{q}", self.path),
            None => self.path.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_every_byte_of_the_path() {
        let u = RawUrl::parse("https://App.example.com:8443/admin/..%2Fusers?x=/a#frag").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.authority, "App.example.com:8443");
        assert_eq!(u.path, "/admin/..%2Fusers");
        assert_eq!(u.query.as_deref(), Some("x=/a"));
        assert_eq!(u.target(), "App.example.com:8443/admin/..%2Fusers");
        assert_eq!(u.path_and_query(), "/admin/..%2Fusers?x=/a");
        let u = RawUrl::parse("http://h/a/../b;c//d").unwrap();
        assert_eq!(u.path, "/a/../b;c//d");
        let u = RawUrl::parse("http://h?q").unwrap();
        assert_eq!((u.path.as_str(), u.query.as_deref()), ("/", Some("q")));
    }

    #[test]
    fn refuses_what_is_not_an_http_url() {
        for bad in [
            "",
            "/path",
            "ftp://h/x",
            "http://",
            "http:///x",
            "https://user@h/x",
        ] {
            assert_eq!(RawUrl::parse(bad), None, "{bad}");
        }
    }
}

//! Which app covers a request: host + path normalisation and longest-match lookup.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use hashbrown::HashMap;

/// A request target: lowercase host without port, normalised lowercase path.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Target {
    host: Box<str>,
    path: Box<str>,
}

impl Target {
    /// Parses `host[:port][/path][?query][#fragment]`, optionally with an `http(s)://` scheme.
    ///
    /// # Errors
    /// A message when the host is empty or not a host name.
    pub fn parse(text: &str) -> Result<Target, String> {
        let rest = strip_scheme(text);
        let (authority, path) = match rest.find(['/', '?', '#']) {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let host = normalise_host(authority).ok_or_else(|| format!("invalid host in `{text}`"))?;
        if host.starts_with('*') {
            return Err(format!("invalid host in `{text}`"));
        }
        Ok(Target {
            host: host.into_boxed_str(),
            path: normalise_path(path).into_boxed_str(),
        })
    }

    /// The host, lowercase, without port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The normalised path (`""` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}{}",
            self.host,
            if self.path.is_empty() {
                "/"
            } else {
                &self.path
            }
        )
    }
}

/// An app's `domain`: an exact or `*.` wildcard host and an optional path.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct DomainPattern {
    /// For a wildcard, the suffix after `*.`; else the host.
    pub(crate) host: Box<str>,
    pub(crate) wildcard: bool,
    pub(crate) path: Box<str>,
}

impl DomainPattern {
    pub(crate) fn parse(text: &str) -> Result<DomainPattern, String> {
        let rest = strip_scheme(text);
        if rest.contains(['?', '#']) {
            return Err(format!(
                "invalid app domain `{text}`: no query or fragment allowed"
            ));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let host = normalise_host(authority)
            .ok_or_else(|| format!("invalid app domain `{text}`: bad host"))?;
        let (host, wildcard) = match host.strip_prefix("*.") {
            Some(suffix) if !suffix.is_empty() && !suffix.contains('*') => {
                (suffix.to_string(), true)
            }
            _ if host.contains('*') => {
                return Err(format!(
                    "invalid app domain `{text}`: a wildcard must be a leading `*.` label"
                ))
            }
            _ => (host, false),
        };
        if path.contains('*') {
            return Err(format!(
                "invalid app domain `{text}`: path wildcards are not supported"
            ));
        }
        Ok(DomainPattern {
            host: host.into_boxed_str(),
            wildcard,
            path: normalise_path(path).into_boxed_str(),
        })
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.wildcard {
            f.write_str("*.")?;
        }
        write!(f, "{}{}", self.host, self.path)
    }
}

fn strip_scheme(text: &str) -> &str {
    let lower_starts = |p: &str| {
        text.get(..p.len())
            .is_some_and(|h| h.eq_ignore_ascii_case(p))
    };
    if lower_starts("https://") {
        text.get(8..).unwrap_or("")
    } else if lower_starts("http://") {
        text.get(7..).unwrap_or("")
    } else {
        text
    }
}

/// Lowercase host without port or trailing dot; `None` when it is not a plausible host.
fn normalise_host(authority: &str) -> Option<String> {
    let host = if let Some(v6) = authority.strip_prefix('[') {
        let end = v6.find(']')?;
        let after = v6.get(end + 1..)?;
        if !(after.is_empty() || after.starts_with(':')) {
            return None;
        }
        return Some(format!("[{}]", v6.get(..end)?.to_ascii_lowercase()));
    } else {
        match authority.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            Some(_) => return None,
            None => authority,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*'));
    ok.then(|| host.to_ascii_lowercase())
}

/// Normalises a path for matching: decodes escaped unreserved characters, treats `\\`, `%2F`
/// and `%5C` as separators, drops `;parameters` from segments, collapses `//`, resolves
/// `.`/`..`, drops query and fragment, lowercases; `""` is the root, otherwise `/seg/seg`.
///
/// Design choice: every spelling an origin might read as a path under `/admin` (an origin that
/// decodes `%2F`, strips `;jsessionid=…` or takes `\\` for `/`) must match the `/admin` app, so
/// the normalisation is deliberately generous; it is used for matching only, never forwarded.
fn normalise_path(path: &str) -> String {
    let path = path.split(['?', '#']).next().unwrap_or("");
    let decoded = decode_unreserved(path);
    let mut segments: Vec<&str> = Vec::new();
    for segment in decoded.split('/') {
        let segment = segment.split(';').next().unwrap_or("");
        match segment {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in segments {
        out.push('/');
        out.push_str(s);
    }
    out.make_ascii_lowercase();
    out
}

fn decode_unreserved(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = String::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hex = bytes.get(i + 1).zip(bytes.get(i + 2));
            if let Some((&h, &l)) = hex {
                if let (Some(h), Some(l)) = (hex_value(h), hex_value(l)) {
                    let c = (h << 4) | l;
                    if c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~') {
                        out.push(char::from(c));
                    } else if matches!(c, b'/' | b'\\') {
                        out.push('/');
                    } else {
                        out.push('%');
                        out.push(hex_digit(h));
                        out.push(hex_digit(l));
                    }
                    i += 3;
                    continue;
                }
            }
        }
        if b == b'\\' {
            out.push('/');
            i += 1;
            continue;
        }
        // Push the whole UTF-8 character starting here.
        let ch_len = path
            .get(i..)
            .and_then(|s| s.chars().next())
            .map_or(1, char::len_utf8);
        if let Some(s) = path.get(i..i + ch_len) {
            out.push_str(s);
        }
        i += ch_len;
    }
    out
}

fn hex_digit(v: u8) -> char {
    char::from_digit(u32::from(v), 16).map_or('0', |c| c.to_ascii_uppercase())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// App lookup by host, then longest path.
#[derive(Debug, Default)]
pub(crate) struct Router {
    exact: HashMap<Box<str>, Vec<(Box<str>, u32)>>,
    wildcard: HashMap<Box<str>, Vec<(Box<str>, u32)>>,
}

impl Router {
    /// Adds `app`; returns `false` when the same domain is already routed.
    pub(crate) fn insert(&mut self, pattern: &DomainPattern, app: u32) -> bool {
        let map = if pattern.wildcard {
            &mut self.wildcard
        } else {
            &mut self.exact
        };
        let routes = map.entry(pattern.host.clone()).or_default();
        if routes.iter().any(|(p, _)| *p == pattern.path) {
            return false;
        }
        routes.push((pattern.path.clone(), app));
        // Longest path first, so the first covering route is the most specific.
        routes.sort_by_key(|r| core::cmp::Reverse(r.0.len()));
        true
    }

    /// The app covering `target`: an exact host beats a wildcard, a longer wildcard suffix beats
    /// a shorter one, then the longest path.
    pub(crate) fn route(&self, target: &Target) -> Option<u32> {
        if let Some(app) = self
            .exact
            .get(target.host())
            .and_then(|r| covering(r, target.path()))
        {
            return Some(app);
        }
        let host = target.host();
        let mut from = 0;
        while let Some(dot) = host.get(from..).and_then(|h| h.find('.')) {
            let suffix = host.get(from + dot + 1..).unwrap_or("");
            if let Some(app) = self
                .wildcard
                .get(suffix)
                .and_then(|r| covering(r, target.path()))
            {
                return Some(app);
            }
            from += dot + 1;
        }
        None
    }
}

fn covering(routes: &[(Box<str>, u32)], path: &str) -> Option<u32> {
    routes
        .iter()
        .find(|(prefix, _)| path_covers(prefix, path))
        .map(|(_, app)| *app)
}

/// Whether app path `prefix` covers request path `path` by whole segments.
fn path_covers(prefix: &str, path: &str) -> bool {
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    #[test]
    fn normalises_paths() {
        assert_eq!(
            t("App.Example.com:8443/Admin//x/./y/../z?q=1#f").path(),
            "/admin/x/z"
        );
        assert_eq!(t("a.example.com/%61dmin").path(), "/admin");
        assert_eq!(t("a.example.com/a%2fb").path(), "/a/b");
        assert_eq!(t("a.example.com/a%5Cb").path(), "/a/b");
        assert_eq!(t("a.example.com/a%3bb").path(), "/a%3bb");
        assert_eq!(t("a.example.com/\\admin\\x").path(), "/admin/x");
        assert_eq!(t("a.example.com/admin;jsessionid=1/x").path(), "/admin/x");
        assert_eq!(t("a.example.com/x/%2e%2e/admin").path(), "/admin");
        assert_eq!(t("a.example.com/x/..%2fadmin").path(), "/admin");
        assert_eq!(t("a.example.com/../../etc").path(), "/etc");
        assert_eq!(t("a.example.com").path(), "");
        assert_eq!(t("https://A.example.com./x").host(), "a.example.com");
        assert_eq!(t("[::1]:8787/x").host(), "[::1]");
        assert!(Target::parse("").is_err());
        assert!(Target::parse("/path").is_err());
        assert!(Target::parse("a b/x").is_err());
        assert!(Target::parse("host:port/x").is_err());
        assert!(Target::parse("*.example.com/x").is_err());
    }

    #[test]
    fn routes_longest_match() {
        let mut r = Router::default();
        for (i, d) in [
            "app.example.com",
            "app.example.com/admin",
            "*.example.com",
            "*.b.example.com",
        ]
        .iter()
        .enumerate()
        {
            assert!(r.insert(&DomainPattern::parse(d).unwrap(), u32::try_from(i).unwrap()));
        }
        assert!(!r.insert(&DomainPattern::parse("APP.example.com/admin/").unwrap(), 9));
        assert_eq!(r.route(&t("app.example.com/admin/x")), Some(1));
        assert_eq!(r.route(&t("app.example.com/administrator")), Some(0));
        assert_eq!(r.route(&t("app.example.com/ADMIN")), Some(1));
        assert_eq!(r.route(&t("other.example.com/")), Some(2));
        assert_eq!(r.route(&t("x.b.example.com/")), Some(3));
        assert_eq!(r.route(&t("example.com/")), None);
        assert_eq!(r.route(&t("evil-example.com/")), None);
    }

    #[test]
    fn domain_patterns() {
        assert!(DomainPattern::parse("a.*.example.com").is_err());
        assert!(DomainPattern::parse("*.").is_err());
        assert!(DomainPattern::parse("a.example.com/x*").is_err());
        assert!(DomainPattern::parse("a.example.com/x?y").is_err());
        let p = DomainPattern::parse("*.Example.com/Admin/").unwrap();
        assert!(p.wildcard);
        assert_eq!(p.to_string(), "*.example.com/admin");
    }
}

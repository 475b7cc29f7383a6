//! Which app covers a request: request targets, app domains with Access's wildcards, and the
//! most specific match.
//!
//! App domains follow Cloudflare Access's application paths:
//! - a host label may hold one `*`, matching any run of characters *within that label*:
//!   `*.example.com` covers `alpha.example.com`, not `example.com` nor `foo.bar.example.com`;
//!   `*test.example.com` covers `test.example.com` and `alphatest.example.com`;
//! - a path segment may hold one `*`, matching any run of characters, `/` included:
//!   `/alpha/*` covers `/alpha/one` and `/alpha/one/two` but not `/alpha`; `/foo*/bar` covers
//!   `/foo/bar`, `/food/bar` and `/food/stuff/bar`; a lone `/*` is the whole host;
//! - a path covers itself and everything below it by whole segments: `/admin` covers `/admin`
//!   and `/admin/x`, not `/administrator`.
//!
//! When several apps cover a request the most specific wins: an exact host before any wildcard
//! host, then more literal characters in the host, then more literal characters in the path,
//! then a path without a wildcard, then the app listed first.

use alloc::boxed::Box;
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::cmp::Reverse;
use core::fmt;

use hashbrown::HashMap;

/// A request target: the host (lowercase, without port) and the path exactly as sent.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Target {
    host: Box<str>,
    path: Box<str>,
}

impl Target {
    /// Parses `host[:port][/path][?query][#fragment]`, optionally with an `http(s)://` scheme.
    /// The path is kept as sent (query and fragment dropped, `""` becomes `/`): it is checked
    /// when the engine routes it, so that a refused path is a verdict with its reason.
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
        if host.contains('*') {
            return Err(format!("invalid host in `{text}`"));
        }
        let path = path.split(['?', '#']).next().unwrap_or("");
        Ok(Target {
            host: host.into_boxed_str(),
            path: if path.is_empty() {
                "/".into()
            } else {
                path.into()
            },
        })
    }

    /// The host, lowercase, without port.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The path as sent, without query or fragment (`/` for the root).
    pub fn path(&self) -> &str {
        &self.path
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.host, self.path)
    }
}

/// One host label of an app domain: literal, or `prefix*suffix`.
#[derive(Clone, PartialEq, Eq, Debug)]
enum Label {
    Literal(Box<str>),
    Wild { prefix: Box<str>, suffix: Box<str> },
}

impl Label {
    fn matches(&self, label: &str) -> bool {
        match self {
            Label::Literal(l) => **l == *label,
            Label::Wild { prefix, suffix } => {
                label.len() >= prefix.len() + suffix.len()
                    && label.starts_with(&**prefix)
                    && label.ends_with(&**suffix)
            }
        }
    }

    fn literal_len(&self) -> usize {
        match self {
            Label::Literal(l) => l.len(),
            Label::Wild { prefix, suffix } => prefix.len() + suffix.len(),
        }
    }
}

impl fmt::Display for Label {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Label::Literal(l) => f.write_str(l),
            Label::Wild { prefix, suffix } => write!(f, "{prefix}*{suffix}"),
        }
    }
}

/// An app's `domain`: a host pattern and a path pattern.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) struct DomainPattern {
    /// Host labels, left to right.
    labels: Box<[Label]>,
    /// The path as written, without a trailing `/` (`""`: the whole host; `/*` is folded to it).
    path: Box<str>,
    /// `path`, ASCII-lowercased, for case-insensitive readings.
    path_lower: Box<str>,
    path_wild: bool,
}

/// The characters an app path may hold besides letters and digits (RFC 3986 `pchar` without
/// `%` escapes and `;`, plus `/` and the `*` wildcard).
const PATH_PUNCTUATION: &[u8] = b"-._~!$&'()+,=:@/*";

impl DomainPattern {
    pub(crate) fn parse(text: &str) -> Result<DomainPattern, String> {
        let bad = |why: &str| format!("invalid app domain `{text}`: {why}");
        let rest = strip_scheme(text);
        if rest.contains(['?', '#']) {
            return Err(bad("no query or fragment allowed"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        let host = normalise_host(authority).ok_or_else(|| bad("bad host"))?;
        let labels = host_labels(&host).map_err(|why| bad(&why))?;
        let path = parse_app_path(path).map_err(|why| bad(&why))?;
        let path_wild = path.contains('*');
        Ok(DomainPattern {
            labels,
            path_lower: path.to_ascii_lowercase().into_boxed_str(),
            path: path.into_boxed_str(),
            path_wild,
        })
    }

    fn host_is_exact(&self) -> bool {
        self.labels.iter().all(|l| matches!(l, Label::Literal(_)))
    }

    /// The host as written (lowercase).
    pub(crate) fn host(&self) -> String {
        let mut out = String::new();
        for (i, label) in self.labels.iter().enumerate() {
            if i > 0 {
                out.push('.');
            }
            out.push_str(&label.to_string());
        }
        out
    }

    /// Whether the host pattern covers `host` (lowercase, no port).
    pub(crate) fn covers_host(&self, host: &str) -> bool {
        let mut labels = host.split('.');
        self.labels
            .iter()
            .all(|pattern| labels.next().is_some_and(|l| pattern.matches(l)))
            && labels.next().is_none()
    }

    /// Whether the path pattern covers a path reading (no trailing `/`; `""` is the root).
    fn covers_path(&self, path: &[u8], case_sensitive: bool) -> bool {
        let pattern = if case_sensitive {
            self.path.as_bytes()
        } else {
            self.path_lower.as_bytes()
        };
        if !self.path_wild {
            return match path.strip_prefix(pattern) {
                Some(rest) => rest.is_empty() || rest.first() == Some(&b'/'),
                None => false,
            };
        }
        // The pattern covers the whole path, or the path up to one of its `/`.
        glob(pattern, b"", path) || glob(pattern, b"/*", path)
    }

    fn literal_len(&self) -> (usize, usize) {
        let host = self.labels.iter().map(Label::literal_len).sum();
        let path = self.path.bytes().filter(|&b| b != b'*').count();
        (host, path)
    }
}

impl fmt::Display for DomainPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.host(), self.path)
    }
}

/// Host labels with at most one `*` each; the last label literal.
fn host_labels(host: &str) -> Result<Box<[Label]>, String> {
    if host.starts_with('[') {
        return Ok(Box::new([Label::Literal(host.into())]));
    }
    let mut labels = Vec::new();
    for label in host.split('.') {
        if label.is_empty() {
            return Err("empty host label".into());
        }
        labels.push(match label.split_once('*') {
            None => Label::Literal(label.into()),
            Some((_, suffix)) if suffix.contains('*') => {
                return Err(format!("at most one `*` in a host label (`{label}`)"));
            }
            Some((prefix, suffix)) => Label::Wild {
                prefix: prefix.into(),
                suffix: suffix.into(),
            },
        });
    }
    if matches!(labels.last(), Some(Label::Wild { .. })) {
        return Err("a wildcard cannot be in the last host label".into());
    }
    Ok(labels.into_boxed_slice())
}

/// An app path: `""` or `/seg/seg`, segments of letters, digits and [`PATH_PUNCTUATION`], at
/// most one `*` each; no `.`/`..`/empty segments; a trailing `/` and a lone `/*` dropped.
fn parse_app_path(path: &str) -> Result<String, String> {
    let path = path.strip_suffix('/').unwrap_or(path);
    if path == "/*" {
        return Ok(String::new());
    }
    if let Some(b) = path
        .bytes()
        .find(|b| !(b.is_ascii_alphanumeric() || PATH_PUNCTUATION.contains(b)))
    {
        let shown = match b {
            b'%' => "`%` (write the path unencoded)".to_string(),
            b';' => "`;`".to_string(),
            b'\\' => "`\\`".to_string(),
            b if b.is_ascii_graphic() => format!("`{}`", char::from(b)),
            _ => "a space, control or non-ASCII character".to_string(),
        };
        return Err(format!("the path may not contain {shown}"));
    }
    for segment in path.split('/').skip(1) {
        match segment {
            "" => return Err("empty path segment (`//`)".into()),
            "." | ".." => return Err(format!("dot segment `{segment}` in the path")),
            s if s.ends_with('.') => {
                return Err(format!(
                    "a path segment may not end with `.` (`{s}`): origins that drop it \
                     (IIS) would route requests for it elsewhere"
                ))
            }
            s if s.matches('*').count() > 1 => {
                return Err(format!("at most one `*` in a path segment (`{s}`)"))
            }
            _ => {}
        }
    }
    Ok(path.into())
}

/// Whether `pattern` followed by `tail` matches all of `text`; `*` matches any run of bytes.
/// Greedy with one backtrack point: O(pattern × text) at worst.
fn glob(pattern: &[u8], tail: &[u8], text: &[u8]) -> bool {
    let at = |i: usize| -> Option<u8> {
        match pattern.get(i) {
            Some(&b) => Some(b),
            None => tail.get(i - pattern.len()).copied(),
        }
    };
    let len = pattern.len() + tail.len();
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match at(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(c) if Some(&c) == text.get(t) => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    while at(p) == Some(b'*') {
        p += 1;
    }
    p == len
}

/// What ranks a route among those that cover a request (larger wins).
type Rank = (usize, usize, bool, Reverse<u32>);

#[derive(Clone, Debug)]
struct Route {
    pattern: DomainPattern,
    app: u32,
    rank: Rank,
}

/// App lookup: exact hosts by name, wildcard hosts by label count and literal tail.
#[derive(Clone, Debug, Default)]
pub(crate) struct Router {
    routes: Vec<Route>,
    /// Exact host → routes, most specific first.
    exact: HashMap<Box<str>, Vec<u32>>,
    /// The literal labels after the last wildcard label (never empty: the last label is
    /// literal) → routes, most specific first.
    wildcard: HashMap<Box<str>, Vec<u32>>,
    /// Every routed domain (host, lowercase path), to refuse duplicates. Keyed as
    /// `<host length>:<host><path>` (one key per pair) in the same map type as the buckets,
    /// which keeps one copy of the hash table's code in the Wasm module instead of two.
    seen: HashMap<Box<str>, Vec<u32>>,
}

impl Router {
    /// Adds `app`; returns `false` when the same domain is already routed.
    pub(crate) fn insert(&mut self, pattern: &DomainPattern, app: u32) -> bool {
        let host = pattern.host();
        let key = format!("{}:{host}{}", host.len(), pattern.path_lower);
        if self.seen.insert(key.into_boxed_str(), Vec::new()).is_some() {
            return false;
        }
        let (host_literal, path_literal) = pattern.literal_len();
        let rank = (host_literal, path_literal, !pattern.path_wild, Reverse(app));
        let index = u32::try_from(self.routes.len()).unwrap_or(u32::MAX);
        self.routes.push(Route {
            pattern: pattern.clone(),
            app,
            rank,
        });
        let bucket = if pattern.host_is_exact() {
            self.exact
                .entry(pattern.host().into_boxed_str())
                .or_default()
        } else {
            let tail_from = pattern
                .labels
                .iter()
                .rposition(|l| matches!(l, Label::Wild { .. }))
                .map_or(0, |i| i + 1);
            let tail: Vec<String> = pattern
                .labels
                .get(tail_from..)
                .unwrap_or(&[])
                .iter()
                .map(ToString::to_string)
                .collect();
            self.wildcard
                .entry(tail.join(".").into_boxed_str())
                .or_default()
        };
        let routes = &self.routes;
        let position =
            bucket.partition_point(|&i| routes.get(i as usize).is_some_and(|r| r.rank > rank));
        bucket.insert(position, index);
        true
    }

    /// The app covering `host` with the path reading `path`, compared case-sensitively or not.
    pub(crate) fn route(&self, host: &str, path: &[u8], case_sensitive: bool) -> Option<u32> {
        let first_in = |bucket: &[u32]| {
            bucket
                .iter()
                .filter_map(|&i| self.routes.get(i as usize))
                .find(|r| {
                    r.pattern.covers_host(host) && r.pattern.covers_path(path, case_sensitive)
                })
        };
        if let Some(route) = self.exact.get(host).and_then(|b| first_in(b)) {
            return Some(route.app);
        }
        if self.wildcard.is_empty() {
            return None;
        }
        let mut best: Option<&Route> = None;
        // Every literal tail the host has: "example.com", "com" for `a.example.com`.
        let tails = host
            .match_indices('.')
            .map(|(i, _)| host.get(i + 1..).unwrap_or(""));
        for tail in tails {
            let Some(bucket) = self.wildcard.get(tail) else {
                continue;
            };
            if let Some(route) = first_in(bucket) {
                if best.is_none_or(|b| route.rank > b.rank) {
                    best = Some(route);
                }
            }
        }
        best.map(|r| r.app)
    }

    /// Whether some app's host pattern covers `host`.
    pub(crate) fn names_host(&self, host: &str) -> bool {
        self.exact.contains_key(host) || self.routes.iter().any(|r| r.pattern.covers_host(host))
    }
}

impl crate::Engine {
    /// The apps whose host pattern covers `host` (`*.` wildcard apps included), in document
    /// order, whatever their paths: the apps one host-scoped session cookie serves. `host` is
    /// read as a request names it (any case, with or without a port or a trailing dot); a host
    /// that is no host covers no app.
    pub fn apps_on_host(&self, host: &str) -> Vec<&crate::App> {
        let Some(host) = normalise_host(host) else {
            return Vec::new();
        };
        self.apps()
            .iter()
            .filter(|app| app.covers_host(&host))
            .collect()
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
    // One trailing dot (a fully qualified name) is the same host; an empty label is no host.
    let host = host.strip_suffix('.').unwrap_or(host);
    let ok = !host.is_empty()
        && host.split('.').all(|label| !label.is_empty())
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'*'));
    ok.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Target {
        Target::parse(s).unwrap()
    }

    fn router(domains: &[&str]) -> Router {
        let mut r = Router::default();
        for (i, d) in domains.iter().enumerate() {
            assert!(r.insert(&DomainPattern::parse(d).unwrap(), u32::try_from(i).unwrap()));
        }
        r
    }

    fn route(r: &Router, target: &str) -> Option<u32> {
        let target = t(target);
        let path = target.path().trim_end_matches('/').to_ascii_lowercase();
        r.route(target.host(), path.as_bytes(), false)
    }

    #[test]
    fn targets_keep_the_path_as_sent() {
        assert_eq!(
            t("App.Example.com:8443/Admin//x/../y?q=1#f").path(),
            "/Admin//x/../y"
        );
        assert_eq!(t("a.example.com").path(), "/");
        assert_eq!(t("a.example.com?x").path(), "/");
        assert_eq!(t("https://A.example.com./x").host(), "a.example.com");
        assert_eq!(t("[::1]:8787/x").host(), "[::1]");
        assert_eq!(
            t("a.example.com/%2e%2e").to_string(),
            "a.example.com/%2e%2e"
        );
        assert!(Target::parse("").is_err());
        assert!(Target::parse("/path").is_err());
        assert!(Target::parse("a b/x").is_err());
        assert!(Target::parse("host:port/x").is_err());
        assert!(Target::parse("*.example.com/x").is_err());
        for empty_label in [
            "a..",
            "app.example.com..",
            ".example.com",
            "a..b/x",
            "../a",
            ".",
        ] {
            assert!(Target::parse(empty_label).is_err(), "{empty_label}");
        }
        assert_eq!(t("app.example.com./x").host(), "app.example.com");
    }

    #[test]
    fn routes_longest_match() {
        let mut r = router(&[
            "app.example.com",
            "app.example.com/admin",
            "*.example.com",
            "*.b.example.com",
        ]);
        assert!(!r.insert(&DomainPattern::parse("APP.example.com/admin/").unwrap(), 9));
        assert_eq!(route(&r, "app.example.com/admin/x"), Some(1));
        assert_eq!(route(&r, "app.example.com/administrator"), Some(0));
        assert_eq!(route(&r, "app.example.com/ADMIN"), Some(1));
        assert_eq!(route(&r, "other.example.com/"), Some(2));
        assert_eq!(route(&r, "x.b.example.com/"), Some(3));
        assert_eq!(route(&r, "example.com/"), None);
        assert_eq!(route(&r, "evil-example.com/"), None);
    }

    /// The tables of Cloudflare's "Application paths" page.
    #[test]
    fn wildcards_as_access_documents_them() {
        let covers = |domain: &str, target: &str| route(&router(&[domain]), target) == Some(0);
        for (domain, yes, no) in [
            (
                "*.example.com",
                &["alpha.example.com", "beta.example.com"][..],
                &["example.com", "foo.bar.example.com"][..],
            ),
            (
                "example.com",
                &["example.com", "example.com/alpha", "example.com/beta"],
                &["alpha.example.com"],
            ),
            (
                "example.com/*",
                &["example.com", "example.com/alpha", "example.com/beta"],
                &["alpha.example.com"],
            ),
            (
                "*.test.example.com",
                &["alpha.test.example.com", "beta.test.example.com"],
                &["test.example.com", "example.com"],
            ),
            (
                "*test.example.com",
                &["test.example.com", "alphatest.example.com"],
                &["beta.test.example.com"],
            ),
            (
                "example.com/alpha/*",
                &[
                    "example.com/alpha/one",
                    "example.com/alpha/two",
                    "example.com/alpha/one/x",
                ],
                &[
                    "example.com/alpha",
                    "example.com",
                    "example.com/alpha/",
                    "example.com/beta",
                ],
            ),
            (
                "example.com/foo*/bar",
                &[
                    "example.com/foo/bar",
                    "example.com/food/bar",
                    "example.com/food/stuff/bar",
                ],
                &[
                    "example.com/foo",
                    "example.com/fo/bar",
                    "example.com/food/barn",
                ],
            ),
            (
                "example.com/*/settings",
                &[
                    "example.com/a/settings",
                    "example.com/a/settings/x",
                    "example.com/a/b/settings",
                ],
                &["example.com/settings", "example.com/a/settingsx"],
            ),
            (
                "*.*.example.com",
                &["a.b.example.com"],
                &["a.example.com", "a.b.c.example.com"],
            ),
        ] {
            for target in yes {
                assert!(covers(domain, target), "{domain} must cover {target}");
            }
            for target in no {
                assert!(!covers(domain, target), "{domain} must not cover {target}");
            }
        }
    }

    #[test]
    fn most_specific_wildcard_wins() {
        let r = router(&["*.example.com", "*.test.example.com", "*test.example.com"]);
        assert_eq!(route(&r, "x.alpha.test.example.com"), None);
        assert_eq!(route(&r, "alpha.test.example.com"), Some(1));
        assert_eq!(route(&r, "alphatest.example.com"), Some(2));
        assert_eq!(route(&r, "beta.example.com"), Some(0));
        let r = router(&["example.com/alpha", "example.com/*/settings", "example.com"]);
        assert_eq!(route(&r, "example.com/alpha/settings"), Some(1));
        assert_eq!(route(&r, "example.com/alpha/x"), Some(0));
        assert_eq!(route(&r, "example.com/x"), Some(2));
    }

    #[test]
    fn domain_patterns() {
        for bad in [
            "a.example.*",
            "*.",
            "*",
            "foo*bar*baz.example.com",
            "a.example.com/x*y*z",
            "a.example.com/x?y",
            "a.example.com/a%2Fb",
            "a.example.com/a;b",
            "a.example.com/a\\b",
            "a.example.com/a/../b",
            "a.example.com/a//b",
            "a.example.com/caf\u{e9}",
            "a.example.com/a b",
            "a.example.com/admin./x",
            "a..example.com",
        ] {
            assert!(DomainPattern::parse(bad).is_err(), "{bad}");
        }
        let p = DomainPattern::parse("*.Example.com/Admin/").unwrap();
        assert_eq!(p.to_string(), "*.example.com/Admin");
        assert_eq!(
            DomainPattern::parse("a.example.com/*").unwrap().to_string(),
            "a.example.com"
        );
    }

    #[test]
    fn glob_is_bounded_and_right() {
        assert!(glob(b"/a*b*c", b"", b"/aXXbYYc"));
        assert!(!glob(b"/a*b*c", b"", b"/aXXbYY"));
        let long = [b'a'; 4096];
        assert!(!glob(b"*a*a*a*b", b"", &long));
    }
}

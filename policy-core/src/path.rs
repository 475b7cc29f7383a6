//! Request paths as origins read them.
//!
//! The gateway decides a path and forwards exactly that path; the origin then routes it its own
//! way. Origins disagree about what a path means: Flask, Express and Envoy route the raw prefix
//! (case-sensitive, `%XX` left alone); nginx decodes `%XX`, merges `//` and resolves `.`/`..`;
//! Tomcat drops `;parameters`; IIS takes `\` for `/`, compares case-insensitively and ignores
//! trailing dots and spaces in a segment (Windows file names). A path must mean the same app to
//! all of them, or some origin runs a handler whose app's policies never saw the request.
//!
//! So a path is checked in two steps:
//! 1. [`read`] refuses the spellings that have no use but to be read differently ([`PathProblem`]):
//!    encoded `/` (unless the app allows it), `\`, `.`, `;`, unreserved characters, double
//!    encoding, dot segments, empty segments, control characters, raw non-ASCII, and encoded
//!    fullwidth forms of ASCII. What is left has three [`Readings`].
//! 2. The router routes each reading; they must name the same app (the engine's job, in
//!    [`crate::Engine::app_for`]).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

/// A spelling in a request path that origins read differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum PathProblem {
    /// `%` not followed by two hex digits.
    BadEscape,
    /// A control character, raw or encoded (`%00`–`%1F`, `%7F`).
    ControlCharacter,
    /// A raw byte outside ASCII (clients percent-encode them).
    NonAscii,
    /// `\` or `%5C`: IIS and some frameworks take it for `/`.
    Backslash,
    /// `%2F`: an encoded `/` that decoding origins split on.
    EncodedSlash,
    /// `%2E`: an encoded `.`, which decoding origins resolve as a dot segment.
    EncodedDot,
    /// An unreserved character (`A–Z a–z 0–9 - _ ~`) percent-encoded: raw-prefix origins and
    /// decoding origins see different names.
    EncodedUnreserved,
    /// `%25` followed by two hex digits: a second decoding makes it another escape.
    DoubleEncoding,
    /// `;` or `%3B`: Tomcat and Spring drop `;parameters` from a segment.
    Semicolon,
    /// A `.` or `..` segment: resolved by some origins, routed raw by others.
    DotSegment,
    /// An empty segment (`//`): merged by some origins, kept by others.
    EmptySegment,
    /// An encoded fullwidth form of an ASCII character (U+FF01–U+FF5E), which Windows
    /// "best fit" and Unicode compatibility normalisation turn into ASCII.
    FullwidthForm,
}

impl PathProblem {
    /// A stable name for logs and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            PathProblem::BadEscape => "bad_escape",
            PathProblem::ControlCharacter => "control_character",
            PathProblem::NonAscii => "non_ascii",
            PathProblem::Backslash => "backslash",
            PathProblem::EncodedSlash => "encoded_slash",
            PathProblem::EncodedDot => "encoded_dot",
            PathProblem::EncodedUnreserved => "encoded_unreserved",
            PathProblem::DoubleEncoding => "double_encoding",
            PathProblem::Semicolon => "semicolon",
            PathProblem::DotSegment => "dot_segment",
            PathProblem::EmptySegment => "empty_segment",
            PathProblem::FullwidthForm => "fullwidth_form",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            PathProblem::BadEscape => "a `%` that is not followed by two hex digits",
            PathProblem::ControlCharacter => "a control character",
            PathProblem::NonAscii => "a raw non-ASCII byte",
            PathProblem::Backslash => "a backslash, which some origins take for `/`",
            PathProblem::EncodedSlash => "an encoded `/`, which decoding origins split on",
            PathProblem::EncodedDot => "an encoded `.`, which decoding origins resolve",
            PathProblem::EncodedUnreserved => {
                "an encoded unreserved character, which only decoding origins read as such"
            }
            PathProblem::DoubleEncoding => "a double-encoded escape",
            PathProblem::Semicolon => "a `;`, whose parameters some origins drop",
            PathProblem::DotSegment => "a dot segment, which some origins resolve",
            PathProblem::EmptySegment => "an empty segment, which some origins merge",
            PathProblem::FullwidthForm => {
                "an encoded fullwidth character, which some origins read as ASCII"
            }
        }
    }
}

impl fmt::Display for PathProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// Why the engine refuses a request path: the outcome `invalid_path`, answered 400.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PathRefusal {
    /// A spelling origins read differently.
    Spelling {
        /// What kind.
        problem: PathProblem,
        /// The offending text (`%2F`, `..`, `//`, …).
        text: String,
    },
    /// Origins would route the path to different apps (or some to none).
    Ambiguous {
        /// How the disagreeing origins read the path.
        reading: &'static str,
        /// The app (id) of the path as sent, if any.
        sent: Option<String>,
        /// The app (id) under `reading`, if any.
        other: Option<String>,
    },
}

impl PathRefusal {
    /// A stable name for logs and JSON: the problem's, or `ambiguous`.
    pub fn kind(&self) -> &'static str {
        match self {
            PathRefusal::Spelling { problem, .. } => problem.as_str(),
            PathRefusal::Ambiguous { .. } => "ambiguous",
        }
    }
}

impl fmt::Display for PathRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let app = |a: &Option<String>| match a {
            Some(id) => alloc::format!("app `{id}`"),
            None => "no app".into(),
        };
        match self {
            PathRefusal::Spelling { problem, text } => write!(f, "`{text}` is {problem}"),
            PathRefusal::Ambiguous {
                reading,
                sent,
                other,
            } => write!(
                f,
                "origins disagree on the app: {} as sent (as Flask, Express and Envoy route it), \
                 {} {reading}",
                app(sent),
                app(other)
            ),
        }
    }
}

impl From<Spelling> for PathRefusal {
    fn from(s: Spelling) -> PathRefusal {
        PathRefusal::Spelling {
            problem: s.problem,
            text: s.text,
        }
    }
}

/// A refused spelling and where it is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spelling {
    pub(crate) problem: PathProblem,
    /// The offending text (e.g. `%2F`, `..`, `//`).
    pub(crate) text: String,
}

/// The readings of a path that passed [`read`], each without a trailing `/` (`""` is the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Readings {
    /// As sent: what raw-prefix routers compare (case-sensitive).
    pub(crate) sent: Vec<u8>,
    /// Percent-decoded, then `//` merged and dot segments resolved (nginx); `None` when the path
    /// has no escapes (then it equals `sent`).
    pub(crate) decoded: Option<Vec<u8>>,
    /// Decoded, ASCII-lowercased, trailing dots and spaces of each segment dropped (IIS).
    pub(crate) folded: Vec<u8>,
    /// The path has `%2F`: allowed only where the app says so.
    pub(crate) encoded_slash: bool,
}

/// Checks a request path (as sent, without query or fragment; `""` is the root) and returns its
/// readings.
///
/// # Errors
/// The first spelling origins read differently.
pub(crate) fn read(path: &str) -> Result<Readings, Spelling> {
    let bytes = path.as_bytes();
    let refuse = |problem: PathProblem, from: usize, len: usize| Spelling {
        problem,
        text: String::from_utf8_lossy(
            bytes
                .get(from..(from + len).min(bytes.len()))
                .unwrap_or(&[]),
        )
        .into_owned(),
    };
    let mut encoded_slash = false;
    let mut escapes = false;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let value = bytes
                    .get(i + 1)
                    .zip(bytes.get(i + 2))
                    .and_then(|(&h, &l)| Some((hex(h)? << 4) | hex(l)?))
                    .ok_or_else(|| refuse(PathProblem::BadEscape, i, 3))?;
                let problem = match value {
                    0x00..=0x1F | 0x7F => Some(PathProblem::ControlCharacter),
                    b'\\' => Some(PathProblem::Backslash),
                    b'.' => Some(PathProblem::EncodedDot),
                    b';' => Some(PathProblem::Semicolon),
                    b'%' if bytes.get(i + 3).and_then(|&h| hex(h)).is_some()
                        && bytes.get(i + 4).and_then(|&l| hex(l)).is_some() =>
                    {
                        Some(PathProblem::DoubleEncoding)
                    }
                    v if v.is_ascii_alphanumeric() || v == b'-' || v == b'_' || v == b'~' => {
                        Some(PathProblem::EncodedUnreserved)
                    }
                    b'/' => {
                        encoded_slash = true;
                        None
                    }
                    _ => None,
                };
                if let Some(problem) = problem {
                    return Err(refuse(problem, i, 3));
                }
                escapes = true;
                i += 3;
                continue;
            }
            b'\\' => return Err(refuse(PathProblem::Backslash, i, 1)),
            b';' => return Err(refuse(PathProblem::Semicolon, i, 1)),
            0x00..=0x1F | 0x7F => return Err(refuse(PathProblem::ControlCharacter, i, 1)),
            0x80..=0xFF => return Err(refuse(PathProblem::NonAscii, i, 1)),
            _ => {}
        }
        i += 1;
    }
    // Segments, as sent: no `.`/`..`, no empty one but a single trailing `/`.
    let body = path.strip_prefix('/').unwrap_or(path);
    let segments: Vec<&str> = body.split('/').collect();
    let last = segments.len().saturating_sub(1);
    for (n, segment) in segments.iter().enumerate() {
        match *segment {
            "." | ".." => {
                return Err(Spelling {
                    problem: PathProblem::DotSegment,
                    text: (*segment).into(),
                })
            }
            "" if n != last => {
                return Err(Spelling {
                    problem: PathProblem::EmptySegment,
                    text: "//".into(),
                })
            }
            _ => {}
        }
    }
    let sent = trim_trailing_slash(bytes).to_vec();
    let decoded = if escapes {
        let raw = percent_decode(bytes);
        if let Some(at) = fullwidth_form(&raw) {
            return Err(Spelling {
                problem: PathProblem::FullwidthForm,
                text: String::from_utf8_lossy(raw.get(at..at + 3).unwrap_or(&[])).into_owned(),
            });
        }
        Some(resolve(&raw))
    } else {
        None
    };
    let folded = fold(decoded.as_deref().unwrap_or(&sent));
    Ok(Readings {
        sent,
        decoded,
        folded,
        encoded_slash,
    })
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn trim_trailing_slash(path: &[u8]) -> &[u8] {
    path.strip_suffix(b"/").unwrap_or(path)
}

/// Every `%XX` decoded (the caller has checked they are well-formed).
fn percent_decode(path: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(path.len());
    let mut i = 0;
    while let Some(&b) = path.get(i) {
        let value = (b == b'%')
            .then(|| {
                let h = hex(*path.get(i + 1)?)?;
                let l = hex(*path.get(i + 2)?)?;
                Some((h << 4) | l)
            })
            .flatten();
        match value {
            Some(v) => {
                out.push(v);
                i += 3;
            }
            None => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

/// Where the UTF-8 of a fullwidth ASCII form (U+FF01–U+FF5E: `EF BC 81`–`EF BD 9E`) starts.
fn fullwidth_form(bytes: &[u8]) -> Option<usize> {
    bytes
        .windows(3)
        .position(|w| matches!(w, [0xEF, 0xBC, 0x81..=0xBF] | [0xEF, 0xBD, 0x80..=0x9E]))
}

/// `//` merged and `.`/`..` resolved (never above the root), without a trailing `/`.
fn resolve(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    for segment in path.split(|&b| b == b'/') {
        match segment {
            b"" | b"." => {}
            b".." => {
                kept.pop();
            }
            s => kept.push(s),
        }
    }
    join(&kept)
}

/// ASCII-lowercased, trailing dots and spaces of each segment dropped, empty segments merged.
fn fold(path: &[u8]) -> Vec<u8> {
    let mut kept: Vec<&[u8]> = Vec::new();
    for segment in path.split(|&b| b == b'/') {
        let mut end = segment.len();
        while end > 0 && matches!(segment.get(end - 1), Some(b'.' | b' ')) {
            end -= 1;
        }
        match segment.get(..end) {
            Some(s) if !s.is_empty() => kept.push(s),
            _ => {}
        }
    }
    let mut out = join(&kept);
    out.make_ascii_lowercase();
    out
}

fn join(segments: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(segments.iter().map(|s| s.len() + 1).sum());
    for s in segments {
        out.push(b'/');
        out.extend_from_slice(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problem(path: &str) -> Option<PathProblem> {
        read(path).err().map(|s| s.problem)
    }

    #[test]
    fn refuses_spellings_origins_read_differently() {
        use PathProblem::*;
        for (path, expected) in [
            ("/admin/..;/users", Semicolon),
            ("/admin/%2e%2e%2fusers", EncodedDot),
            ("/admin/..%5Cusers", Backslash),
            ("/admin/..%5cusers", Backslash),
            ("/admin\\users", Backslash),
            ("/public/../admin/x", DotSegment),
            ("/public/./x", DotSegment),
            ("/admin/..", DotSegment),
            ("//admin/x", EmptySegment),
            ("/admin//x", EmptySegment),
            ("/%61dmin/x", EncodedUnreserved),
            ("/admin%7E", EncodedUnreserved),
            ("/a%252e%252e/x", DoubleEncoding),
            ("/a%3bjsessionid=1", Semicolon),
            ("/a;jsessionid=1/x", Semicolon),
            ("/a%00b", ControlCharacter),
            ("/a\tb", ControlCharacter),
            ("/a%zz", BadEscape),
            ("/a%4", BadEscape),
            ("/a%", BadEscape),
            ("/caf\u{e9}", NonAscii),
            ("/%EF%BD%81dmin", FullwidthForm),
            ("/%ef%bc%8fadmin", FullwidthForm),
        ] {
            assert_eq!(problem(path), Some(expected), "{path}");
        }
    }

    #[test]
    fn encoded_slash_is_reported_not_refused() {
        let r = read("/api/projects/group%2Fproject").unwrap();
        assert!(r.encoded_slash);
        assert_eq!(r.sent, b"/api/projects/group%2Fproject");
        assert_eq!(
            r.decoded.as_deref(),
            Some(&b"/api/projects/group/project"[..])
        );
        let r = read("/api/..%2F..%2Fadmin").unwrap();
        assert_eq!(r.decoded.as_deref(), Some(&b"/admin"[..]));
    }

    #[test]
    fn readings() {
        let r = read("/Admin%20/x/").unwrap();
        assert_eq!(r.sent, b"/Admin%20/x");
        assert_eq!(r.decoded.as_deref(), Some(&b"/Admin /x"[..]));
        assert_eq!(r.folded, b"/admin/x");
        let r = read("/admin./x").unwrap();
        assert_eq!(r.sent, b"/admin./x");
        assert_eq!(r.decoded, None);
        assert_eq!(r.folded, b"/admin/x");
        let r = read("/caf%C3%A9/menu").unwrap();
        assert_eq!(r.decoded.as_deref(), Some("/caf\u{e9}/menu".as_bytes()));
        for root in ["", "/"] {
            let r = read(root).unwrap();
            assert_eq!(
                (r.sent.as_slice(), r.folded.as_slice()),
                (&b""[..], &b""[..])
            );
        }
        assert!(read("/a/b/").is_ok());
        assert!(read("/a%20b/%C3%A9/%3F%23%25").is_ok());
    }
}

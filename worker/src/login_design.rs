//! The look of the gateway's pages: Access's `login_design` (organisation name, header text,
//! logo, background and text colours, footer text) and where users get help, from the
//! `LOGIN_DESIGN` var (a JSON object), parsed and checked once per configuration load.
//!
//! Every value goes into a page: colours into CSS (so only `#rgb` / `#rrggbb`), the logo into
//! an `img` (`https` only: the page's `Content-Security-Policy` allows that one origin), the
//! support link into an `a` (`https` or `mailto:`). The text and background colours must
//! contrast at least 4.5:1 (WCAG AA for text). A design that breaks a rule refuses the
//! configuration with a message that names the field: no silent fallback to defaults.

use serde::Deserialize;
use worker::{Env, Url};

/// The var that holds the design.
pub const VAR: &str = "LOGIN_DESIGN";

/// What the platform allows a Worker var to hold (5 KB each; `workers-platform.md`).
pub const MAX_BYTES: usize = 5 * 1024;

/// The longest text field, in characters.
const MAX_TEXT: usize = 200;

/// The longest URL, in bytes.
const MAX_URL: usize = 2048;

/// WCAG AA's contrast for normal text.
pub const MIN_CONTRAST: f64 = 4.5;

/// A colour as CSS will read it: `#rrggbb`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour([u8; 3]);

impl Colour {
    /// `#rgb` or `#rrggbb` (hex digits in either case).
    ///
    /// # Errors
    /// Anything else, with the value in backticks.
    pub fn parse(value: &str) -> Result<Colour, String> {
        let bad = || format!("`{}` is not a colour (`#rgb` or `#rrggbb`)", clip(value));
        let hex = value.strip_prefix('#').ok_or_else(bad)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let digit = |i: usize| {
            hex.get(i..=i)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .unwrap_or(0)
        };
        match hex.len() {
            3 => Ok(Colour([digit(0) * 17, digit(1) * 17, digit(2) * 17])),
            6 => Ok(Colour([
                digit(0) * 16 + digit(1),
                digit(2) * 16 + digit(3),
                digit(4) * 16 + digit(5),
            ])),
            _ => Err(bad()),
        }
    }

    /// WCAG's relative luminance.
    fn luminance(self) -> f64 {
        let channel = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        let [r, g, b] = self.0;
        0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)
    }

    /// WCAG's contrast ratio of two colours (1 to 21).
    pub fn contrast(self, other: Colour) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (light, dark) = if a > b { (a, b) } else { (b, a) };
        (light + 0.05) / (dark + 0.05)
    }

    /// As CSS: `#rrggbb`.
    pub fn css(self) -> String {
        let [r, g, b] = self.0;
        format!("#{r:02x}{g:02x}{b:02x}")
    }
}

/// The pages' design. The default is dark text on white, nothing named.
#[derive(Clone, Debug, PartialEq)]
pub struct LoginDesign {
    /// The organisation's name, at the top of every page.
    pub name: Option<String>,
    /// A line under the name.
    pub header_text: Option<String>,
    /// An `https` image shown beside the name (decorative: the name is the text).
    pub logo: Option<Url>,
    pub background: Colour,
    pub text: Colour,
    /// A line at the bottom of every page.
    pub footer_text: Option<String>,
    /// Where users get help (`https` or `mailto:`), linked from every page.
    pub support: Option<Url>,
}

impl Default for LoginDesign {
    fn default() -> LoginDesign {
        LoginDesign {
            name: None,
            header_text: None,
            logo: None,
            background: Colour([0xff, 0xff, 0xff]),
            text: Colour([0x1f, 0x1f, 0x1f]),
            footer_text: None,
            support: None,
        }
    }
}

/// The var as written (Access's field names; `support_url` is the gateway's own).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Written {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    header_text: Option<String>,
    #[serde(default)]
    logo_path: Option<String>,
    #[serde(default)]
    background_color: Option<String>,
    #[serde(default)]
    text_color: Option<String>,
    #[serde(default)]
    footer_text: Option<String>,
    #[serde(default)]
    support_url: Option<String>,
}

impl LoginDesign {
    /// The design `LOGIN_DESIGN` sets, else the default.
    ///
    /// # Errors
    /// When the var is set and [`LoginDesign::parse`] refuses it.
    pub fn from_env(env: &Env) -> Result<LoginDesign, String> {
        let text = env.var(VAR).ok().map(|v| v.to_string()).or_else(|| {
            env.object_var::<serde_json::Value>(VAR)
                .ok()
                .filter(serde_json::Value::is_object)
                .map(|v| v.to_string())
        });
        match text {
            Some(text) if !text.trim().is_empty() => LoginDesign::parse(&text),
            _ => Ok(LoginDesign::default()),
        }
    }

    /// `text` (a JSON object) as a design.
    ///
    /// # Errors
    /// The first field that breaks a rule, named (`LOGIN_DESIGN.text_color: …`).
    pub fn parse(text: &str) -> Result<LoginDesign, String> {
        if text.len() > MAX_BYTES {
            return Err(format!(
                "{VAR} is {} bytes: a Worker var holds at most {MAX_BYTES}",
                text.len()
            ));
        }
        let not_a_design = |e: serde_json::Error| format!("{VAR} is not a design: {e}");
        let value: serde_json::Value = serde_json::from_str(text).map_err(not_a_design)?;
        if !value.is_object() {
            return Err(format!("{VAR} is not a design: a JSON object is needed"));
        }
        let written: Written = serde_json::from_value(value).map_err(not_a_design)?;
        let defaults = LoginDesign::default();
        let field = |name: &str, why: String| format!("{VAR}.{name}: {why}");
        let colour = |name: &str, value: Option<String>, default: Colour| match value {
            Some(v) => Colour::parse(&v).map_err(|e| field(name, e)),
            None => Ok(default),
        };
        let design = LoginDesign {
            name: text_field("name", written.name)?,
            header_text: text_field("header_text", written.header_text)?,
            logo: url_field("logo_path", written.logo_path, &["https"])?,
            background: colour(
                "background_color",
                written.background_color,
                defaults.background,
            )?,
            text: colour("text_color", written.text_color, defaults.text)?,
            footer_text: text_field("footer_text", written.footer_text)?,
            support: url_field("support_url", written.support_url, &["https", "mailto"])?,
        };
        let contrast = design.text.contrast(design.background);
        if contrast < MIN_CONTRAST {
            return Err(field(
                "text_color",
                format!(
                    "`{}` on `{}` contrasts {contrast:.2}:1, below the {MIN_CONTRAST}:1 text needs",
                    design.text.css(),
                    design.background.css()
                ),
            ));
        }
        Ok(design)
    }
}

/// A text field: at most [`MAX_TEXT`] characters, no control characters; empty is unset.
fn text_field(name: &str, value: Option<String>) -> Result<Option<String>, String> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if value.chars().count() > MAX_TEXT {
        return Err(format!("{VAR}.{name}: longer than {MAX_TEXT} characters"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{VAR}.{name}: holds a control character"));
    }
    Ok(Some(value))
}

/// A URL field with one of `schemes`, without credentials; empty is unset.
fn url_field(name: &str, value: Option<String>, schemes: &[&str]) -> Result<Option<Url>, String> {
    let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let refuse = |why: &str| Err(format!("{VAR}.{name}: `{}` {why}", clip(&value)));
    if value.len() > MAX_URL {
        return refuse(&format!("is longer than {MAX_URL} bytes"));
    }
    let Ok(url) = Url::parse(&value) else {
        return refuse("is not a URL");
    };
    if !schemes.contains(&url.scheme()) {
        return refuse(&format!("must be {}", schemes.join(" or ")));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return refuse("must not hold credentials");
    }
    if url.scheme() == "https" && url.host_str().is_none() {
        return refuse("has no host");
    }
    Ok(Some(url))
}

/// `value`, cut for a message.
fn clip(value: &str) -> String {
    value.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_are_hex_and_nothing_else() {
        assert_eq!(Colour::parse("#fff").unwrap().css(), "#ffffff");
        assert_eq!(Colour::parse("#0B3d91").unwrap().css(), "#0b3d91");
        for bad in [
            "fff",
            "#ffff",
            "#gggggg",
            "red",
            "#fff;background:url(x)",
            "#12345",
            "#1234567",
            "",
            "#",
            "#fff}body{display:none",
            "＃fff",
        ] {
            assert!(Colour::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        let white = Colour::parse("#fff").unwrap();
        let black = Colour::parse("#000").unwrap();
        assert!((white.contrast(black) - 21.0).abs() < 1e-9);
        let grey = Colour::parse("#777777").unwrap();
        assert!(grey.contrast(white) < 4.5 && grey.contrast(white) > 4.4);
    }

    #[test]
    fn a_design_reads_access_s_fields() {
        let design = LoginDesign::parse(
            r##"{"name": "Example Corp", "header_text": "Staff only", "logo_path":
            "https://cdn.example.com/logo.png", "background_color": "#0b3d91",
            "text_color": "#ffffff", "footer_text": "IT service desk",
            "support_url": "mailto:help@example.com"}"##,
        )
        .unwrap();
        assert_eq!(design.name.as_deref(), Some("Example Corp"));
        assert_eq!(design.background.css(), "#0b3d91");
        assert_eq!(
            design.logo.unwrap().as_str(),
            "https://cdn.example.com/logo.png"
        );
        assert_eq!(design.support.unwrap().as_str(), "mailto:help@example.com");
        assert_eq!(LoginDesign::parse("{}").unwrap(), LoginDesign::default());
    }

    #[test]
    fn a_bad_design_is_refused_naming_the_field() {
        let refused = |text: &str, needle: &str| {
            let error = LoginDesign::parse(text).unwrap_err();
            assert!(error.contains(needle), "{text}: {error}");
        };
        refused(
            r##"{"background_color": "red"}"##,
            "LOGIN_DESIGN.background_color",
        );
        refused(
            r##"{"text_color": "#fff;}body{x"}"##,
            "LOGIN_DESIGN.text_color",
        );
        refused(
            r#"{"logo_path": "javascript:alert(1)"}"#,
            "LOGIN_DESIGN.logo_path",
        );
        refused(
            r#"{"logo_path": "http://cdn.example.com/l.png"}"#,
            "must be https",
        );
        refused(
            r#"{"logo_path": "data:image/png;base64,AAAA"}"#,
            "LOGIN_DESIGN.logo_path",
        );
        refused(
            r#"{"logo_path": "https://user:pw@cdn.example.com/l.png"}"#,
            "credentials",
        );
        refused(
            r#"{"support_url": "javascript:alert(1)"}"#,
            "LOGIN_DESIGN.support_url",
        );
        refused(
            r#"{"support_url": "JaVaScRiPt:alert(1)"}"#,
            "LOGIN_DESIGN.support_url",
        );
        refused(r#"{"footer": "x"}"#, "unknown field `footer`");
        refused(r#"{"name": 3}"#, "LOGIN_DESIGN is not a design");
        refused("[]", "LOGIN_DESIGN is not a design");
        refused(
            r##"{"text_color": "#777", "background_color": "#fff"}"##,
            "below the 4.5:1",
        );
        refused(
            &format!(r#"{{"name": "{}"}}"#, "a".repeat(201)),
            "LOGIN_DESIGN.name",
        );
        refused(r#"{"name": "a\u0000b"}"#, "control character");
        refused(
            &format!(r#"{{"footer_text": "{}"}}"#, "a".repeat(6000)),
            "at most 5120",
        );
        refused(
            &format!(
                r#"{{"support_url": "https://x.example/{}"}}"#,
                "a".repeat(2100)
            ),
            "longer than 2048",
        );
    }
}

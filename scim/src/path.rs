//! Attribute paths: `userName`, `name.familyName`, `emails[type eq "work"].value`,
//! `members[value eq "…"]`, and URN-prefixed ones such as
//! `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber`.

use crate::error::{ScimError, ScimType};

/// A `[attr eq "value"]` selection inside a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValueFilter {
    /// The sub-attribute compared (`type`, `value`).
    pub attr: String,
    /// The value it must equal, as text (`true` for a boolean).
    pub value: String,
    /// The value as written: a string, boolean or null (unquoted words are strings).
    pub literal: serde_json::Value,
}

/// A parsed attribute path. Attribute names compare case-insensitively (RFC 7643 §2.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN, when the path was prefixed with one.
    pub urn: Option<String>,
    /// The attribute.
    pub attr: String,
    /// A selection of multi-valued entries.
    pub filter: Option<ValueFilter>,
    /// The sub-attribute.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// Parses a path.
    ///
    /// # Errors
    /// [`ScimType::InvalidPath`] naming the path.
    pub fn parse(text: &str) -> Result<AttrPath, ScimError> {
        let bad =
            |why: &str| ScimError::new(ScimType::InvalidPath, format!("path `{text}`: {why}"));
        let text_trimmed = text.trim();
        if text_trimmed.is_empty() || text_trimmed.len() > 512 {
            return Err(bad("empty or too long"));
        }
        // A URN prefix ends at the last `:` before the attribute (outside any brackets).
        let bracket = text_trimmed.find('[').unwrap_or(text_trimmed.len());
        let (urn, rest) = match text_trimmed.get(..bracket).and_then(|head| head.rfind(':')) {
            Some(colon) if text_trimmed.starts_with("urn:") || text_trimmed.starts_with("URN:") => {
                (
                    Some(text_trimmed.get(..colon).unwrap_or("").to_owned()),
                    text_trimmed.get(colon + 1..).unwrap_or(""),
                )
            }
            Some(_) => return Err(bad("`:` outside a schema URN")),
            None => (None, text_trimmed),
        };
        let (attr, filter, after) = match rest.find('[') {
            Some(open) => {
                let close = rest.rfind(']').ok_or_else(|| bad("`[` without `]`"))?;
                if close < open {
                    return Err(bad("`]` before `[`"));
                }
                let inner = rest.get(open + 1..close).unwrap_or("");
                let filter = parse_value_filter(inner)
                    .ok_or_else(|| bad("only `[attr eq \"value\"]` selections are supported"))?;
                (
                    rest.get(..open).unwrap_or(""),
                    Some(filter),
                    rest.get(close + 1..).unwrap_or(""),
                )
            }
            None => match rest.find('.') {
                Some(dot) => (
                    rest.get(..dot).unwrap_or(""),
                    None,
                    rest.get(dot..).unwrap_or(""),
                ),
                None => (rest, None, ""),
            },
        };
        let sub_attr = match after {
            "" => None,
            s => match s.strip_prefix('.') {
                Some(sub) if is_name(sub) => Some(sub.to_owned()),
                _ => return Err(bad("a sub-attribute must follow `.`")),
            },
        };
        if !is_name(attr) {
            return Err(bad("not an attribute name"));
        }
        Ok(AttrPath {
            urn,
            attr: attr.to_owned(),
            filter,
            sub_attr,
        })
    }

    /// Whether the attribute (ignoring case) is `name`, with no selection or sub-attribute.
    pub fn is(&self, name: &str) -> bool {
        self.attr.eq_ignore_ascii_case(name) && self.filter.is_none() && self.sub_attr.is_none()
    }
}

fn is_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '$')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '$')
}

/// `type eq "work"` (the only selection Entra sends).
fn parse_value_filter(inner: &str) -> Option<ValueFilter> {
    let inner = inner.trim();
    let (attr, rest) = inner.split_once(char::is_whitespace)?;
    let rest = rest.trim_start();
    let (op, value) = rest.split_once(char::is_whitespace)?;
    if !op.eq_ignore_ascii_case("eq") || !is_name(attr) {
        return None;
    }
    let literal = crate::filter::parse_literal(value.trim())?;
    Some(ValueFilter {
        attr: attr.to_owned(),
        value: literal
            .as_str()
            .map_or_else(|| literal.to_string(), str::to_owned),
        literal,
    })
}

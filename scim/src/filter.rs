//! Filters as Entra sends them: `attrPath eq value` and value paths alone
//! (`members[value eq "…"]`, the group membership check), joined with `and` (RFC 7644
//! §3.4.2.2, the subset Entra uses). Anything else is an `invalidFilter` error, never a
//! silent match.

use serde_json::Value;

use crate::error::{ScimError, ScimType};
use crate::path::AttrPath;

/// One `attrPath eq value` comparison.
#[derive(Debug, Clone, PartialEq)]
pub struct Comparison {
    /// What is compared.
    pub path: AttrPath,
    /// The value it must equal (a string, boolean, number or null).
    pub value: Value,
}

/// Comparisons that must all hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    /// The comparisons, joined by `and`.
    pub all: Vec<Comparison>,
}

impl Filter {
    /// Parses a filter.
    ///
    /// # Errors
    /// [`ScimType::InvalidFilter`] naming what is wrong.
    pub fn parse(text: &str) -> Result<Filter, ScimError> {
        let bad = |why: String| ScimError::new(ScimType::InvalidFilter, why);
        if text.len() > 2048 {
            return Err(bad("the filter is longer than 2048 characters".into()));
        }
        let tokens = tokenize(text).map_err(|why| bad(format!("filter `{text}`: {why}")))?;
        let mut all = Vec::new();
        let mut rest = tokens.as_slice();
        loop {
            let tail = match rest {
                // A value path alone (`members[value eq "…"]`) holds when an entry's
                // sub-attribute equals the value: the comparison `members.value eq "…"`.
                [path, tail @ ..] if path.ends_with(']') => {
                    let path = AttrPath::parse(path).map_err(|e| bad(e.detail))?;
                    let (Some(selection), None) = (path.filter, &path.sub_attr) else {
                        return Err(bad(format!(
                            "filter `{text}`: a value path must end with its selection"
                        )));
                    };
                    all.push(Comparison {
                        path: AttrPath {
                            urn: path.urn,
                            attr: path.attr,
                            filter: None,
                            sub_attr: Some(selection.attr),
                        },
                        value: selection.literal,
                    });
                    tail
                }
                [path, op, value, tail @ ..] => {
                    if !op.eq_ignore_ascii_case("eq") {
                        return Err(bad(format!(
                            "operator `{op}` is not supported (only `eq` and `and`)"
                        )));
                    }
                    let path = AttrPath::parse(path).map_err(|e| bad(e.detail))?;
                    let value =
                        parse_literal(value).ok_or_else(|| bad(format!("bad value `{value}`")))?;
                    all.push(Comparison { path, value });
                    tail
                }
                _ => {
                    return Err(bad(format!(
                        "filter `{text}`: expected `attribute eq value`"
                    )))
                }
            };
            match tail {
                [] => break,
                [and, more @ ..] if and.eq_ignore_ascii_case("and") => rest = more,
                [other, ..] => {
                    return Err(bad(format!(
                        "`{other}` is not supported (only `eq` and `and`)"
                    )))
                }
            }
        }
        Ok(Filter { all })
    }
}

/// A filter literal: a JSON string (with escapes), `true`, `false`, `null` — or, as Entra's
/// own samples write it, a bare word or number (`externalId eq jyoung`), taken as a string.
pub(crate) fn parse_literal(text: &str) -> Option<Value> {
    if text.starts_with('"') {
        return serde_json::from_str::<String>(text).ok().map(Value::String);
    }
    match text {
        "true" => Some(Value::Bool(true)),
        "false" => Some(Value::Bool(false)),
        "null" => Some(Value::Null),
        // Numbers stay text: every attribute filtered on is a string (`externalId eq 12345`
        // as Entra's samples write it), and `007` keeps its zeros.
        _ if !text.is_empty() && !text.contains(['(', ')', '[', ']']) => {
            Some(Value::String(text.to_owned()))
        }
        _ => None,
    }
}

/// Splits on whitespace, keeping quoted strings (with `\"` escapes) and `[...]` selections
/// (which contain spaces) whole.
fn tokenize(text: &str) -> Result<Vec<String>, String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut chars = text.chars().peekable();
    let mut depth = 0u32;
    let mut quoted = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            '\\' if quoted => {
                current.push(c);
                if let Some(next) = chars.next() {
                    current.push(next);
                }
            }
            '[' if !quoted => {
                depth += 1;
                current.push(c);
            }
            ']' if !quoted => {
                depth = depth.checked_sub(1).ok_or("`]` without `[`")?;
                current.push(c);
            }
            '(' | ')' if !quoted && depth == 0 => {
                return Err("grouping with parentheses is not supported".into())
            }
            c if c.is_whitespace() && !quoted && depth == 0 => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if quoted {
        return Err("unterminated string".into());
    }
    if depth != 0 {
        return Err("`[` without `]`".into());
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    Ok(tokens)
}

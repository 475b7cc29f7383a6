//! Errors of loading a document or request, and of evaluating one.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use crate::hierarchy::ClosureError;

/// One problem in a document or request, at a JSON path (`apps[2].policies[0].include[1]`;
/// empty for the root).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadError {
    /// Where the problem is.
    pub path: String,
    /// What is wrong, lowercase, offending input in backticks.
    pub message: String,
}

impl LoadError {
    /// Every name [`LoadError::kind`] answers. Tools script against them (`edge-access
    /// policy check --json`): a name is never renamed or removed, only added.
    pub const KINDS: [&'static str; 12] = [
        "syntax",
        "duplicate_key",
        "unknown_field",
        "missing_field",
        "wrong_type",
        "unknown_selector",
        "unsupported",
        "unknown_reference",
        "duplicate",
        "cycle",
        "limit",
        "invalid_value",
    ];

    /// A stable name for the kind of problem, for tools: one of [`LoadError::KINDS`].
    pub fn kind(&self) -> &'static str {
        let m = self.message.as_str();
        if m.starts_with("invalid JSON") {
            if m.contains("duplicate key") {
                "duplicate_key"
            } else {
                "syntax"
            }
        } else if m.starts_with("unknown field") {
            "unknown_field"
        } else if m.starts_with("missing field") {
            "missing_field"
        } else if m.starts_with("expected ") {
            "wrong_type"
        } else if m.starts_with("unknown selector") {
            "unknown_selector"
        } else if m.starts_with("unsupported") || m.contains("cannot enforce") {
            "unsupported"
        } else if m.starts_with("unknown ") {
            "unknown_reference"
        } else if m.starts_with("duplicate") || m.contains("attached to this app twice") {
            "duplicate"
        } else if m.contains("cycle") {
            "cycle"
        } else if m.contains(" more than ") || m.contains("limit") {
            "limit"
        } else {
            "invalid_value"
        }
    }

    /// Where the problem is in `text` (the document it was found in): 1-based line and column
    /// of the value at [`LoadError::path`], when the text has it.
    pub fn position(&self, text: &str) -> Option<(usize, usize)> {
        crate::json::position(text, &self.path)
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem that kept a document from loading (never empty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoadErrors {
    errors: Vec<LoadError>,
}

impl LoadErrors {
    pub(crate) fn new(list: Vec<(String, String)>) -> LoadErrors {
        LoadErrors {
            errors: list
                .into_iter()
                .map(|(path, message)| LoadError { path, message })
                .collect(),
        }
    }

    /// The problems, in document order of discovery.
    pub fn errors(&self) -> &[LoadError] {
        &self.errors
    }
}

impl fmt::Display for LoadErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.errors.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            e.fmt(f)?;
        }
        Ok(())
    }
}

/// A request that does not load: the first problem found.
pub type RequestError = LoadErrors;

/// Evaluation stopped; the request must be refused.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EvalError {
    /// The nested-group closure exceeded a limit.
    Closure(ClosureError),
    /// The compiled engine lacks an entry one of its own indices names (a bug, never an
    /// answer: the request is refused rather than decided without the entry).
    Inconsistent {
        /// Which table.
        table: &'static str,
        /// The missing position.
        index: usize,
    },
}

impl fmt::Display for EvalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EvalError::Closure(e) => e.fmt(f),
            EvalError::Inconsistent { table, index } => {
                write!(f, "the compiled engine has no {table} at index {index}")
            }
        }
    }
}

impl From<ClosureError> for EvalError {
    fn from(e: ClosureError) -> EvalError {
        EvalError::Closure(e)
    }
}

#[cfg(test)]
mod tests {
    use alloc::vec::Vec;

    use super::*;

    fn kind(message: &str) -> &'static str {
        LoadError {
            path: String::new(),
            message: message.into(),
        }
        .kind()
    }

    /// One message of each kind, as the loader words them.
    const SAMPLES: [(&str, &str); 12] = [
        ("invalid JSON at line 1: expected `}`", "syntax"),
        ("invalid JSON: duplicate key `id`", "duplicate_key"),
        ("unknown field `polices`", "unknown_field"),
        ("missing field `id`", "missing_field"),
        ("expected a string, found a number", "wrong_type"),
        ("unknown selector `okta_group`", "unknown_selector"),
        ("unsupported selector `gsuite`", "unsupported"),
        ("unknown list `banned`", "unknown_reference"),
        ("duplicate id `wiki`", "duplicate"),
        ("groups form a cycle: `a` → `b` → `a`", "cycle"),
        ("a list of more than 1000 items", "limit"),
        ("`x` is not a GUID", "invalid_value"),
    ];

    #[test]
    fn the_kinds_are_pinned() {
        let answered: Vec<&str> = SAMPLES.iter().map(|(m, _)| kind(m)).collect();
        let expected: Vec<&str> = SAMPLES.iter().map(|(_, k)| *k).collect();
        assert_eq!(answered, expected);
        assert_eq!(expected, LoadError::KINDS);
    }
}

#[cfg(feature = "std")]
mod std_impls {
    extern crate std;
    impl std::error::Error for super::LoadError {}
    impl std::error::Error for super::LoadErrors {}
    impl std::error::Error for super::EvalError {}
    impl std::error::Error for crate::hierarchy::ClosureError {}
    impl std::error::Error for crate::hierarchy::HierarchyError {}
}

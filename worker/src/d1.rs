//! D1 plumbing shared by the modules that own tables: statements whose bind positions are
//! named by Rust values instead of counted by hand, and D1's numbers (JavaScript doubles)
//! read back as integers and instants.
//!
//! D1 binds by position only (`?1`, `?2`…). A [`Binds`] hands out the placeholder for each
//! value it is given, which the SQL then names:
//!
//! ```ignore
//! let mut binds = Binds::default();
//! let id = binds.text(&row.id);
//! let now = binds.millis(now);
//! let sql = format!("UPDATE t SET modified_ms = {now} WHERE id = {id}");
//! let statement = binds.prepare(&db, &sql)?;
//! ```

use std::fmt;

use serde_json::Value;
use wasm_bindgen::JsValue;
use worker::{D1Database, D1PreparedStatement};

use crate::time::UnixMillis;

/// A value bound to a statement.
#[derive(Clone, Debug, PartialEq)]
pub enum Arg {
    Null,
    Text(String),
    Number(f64),
}

impl Arg {
    fn to_js(&self) -> JsValue {
        match self {
            Arg::Null => JsValue::NULL,
            Arg::Text(text) => JsValue::from(text.as_str()),
            Arg::Number(n) => JsValue::from(*n),
        }
    }
}

/// The placeholder of one bound value (`?n`), written into the SQL where the value goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Param(usize);

impl Param {
    /// The placeholder at 1-based position `n`, for SQL written for callers that bind
    /// their own values.
    pub const fn at(n: usize) -> Param {
        Param(n)
    }

    /// Its 1-based position, for SQL written with [`Param::at`].
    pub const fn position(self) -> usize {
        self.0
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "?{}", self.0)
    }
}

/// The values of one statement, in the order of their placeholders.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Binds(Vec<Arg>);

impl Binds {
    fn push(&mut self, arg: Arg) -> Param {
        self.0.push(arg);
        Param(self.0.len())
    }

    pub fn text(&mut self, text: &str) -> Param {
        self.push(Arg::Text(text.to_owned()))
    }

    /// Text, or NULL.
    pub fn opt(&mut self, text: Option<&str>) -> Param {
        self.push(text.map_or(Arg::Null, |t| Arg::Text(t.to_owned())))
    }

    /// An integer (D1 numbers are doubles: exact up to 2^53, far above any count or instant
    /// stored).
    pub fn number(&mut self, n: u64) -> Param {
        self.push(Arg::Number(n as f64))
    }

    /// `1` or `0`.
    pub fn flag(&mut self, b: bool) -> Param {
        self.number(u64::from(b))
    }

    /// An instant as the `…_ms` columns hold it.
    pub fn millis(&mut self, at: UnixMillis) -> Param {
        self.number(at.millis())
    }

    /// A JSON array of strings, for `json_each(…)`.
    pub fn json_list(&mut self, items: &[String]) -> Param {
        self.push(Arg::Text(Value::from(items.to_vec()).to_string()))
    }

    /// The values, in order.
    #[cfg(test)]
    pub fn args(&self) -> &[Arg] {
        &self.0
    }

    /// `sql` prepared on `db` with these values.
    ///
    /// # Errors
    ///
    /// When D1 refuses the values.
    pub fn prepare(
        &self,
        db: &D1Database,
        sql: &str,
    ) -> Result<D1PreparedStatement, worker::Error> {
        let values: Vec<JsValue> = self.0.iter().map(Arg::to_js).collect();
        db.prepare(sql).bind(&values)
    }
}

/// An integral D1 number back as an integer: 0 for anything not positive and finite.
pub fn int(n: f64) -> u64 {
    if n.is_finite() && n > 0.0 {
        #[expect(
            clippy::cast_possible_truncation,
            reason = "D1 integers are doubles holding whole numbers below 2^53"
        )]
        let n = n as u64;
        n
    } else {
        0
    }
}

/// A `…_ms` column back as an instant.
pub fn millis(n: f64) -> UnixMillis {
    UnixMillis::from_millis(int(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_value_gets_the_next_placeholder() {
        let mut binds = Binds::default();
        let id = binds.text("u1");
        let email = binds.opt(None);
        let active = binds.flag(true);
        let at = binds.millis(UnixMillis::from_millis(1_700_000_000_000));
        let list = binds.json_list(&["a".into(), "b\"".into()]);
        assert_eq!(
            format!("{id} {email} {active} {at} {list}"),
            "?1 ?2 ?3 ?4 ?5"
        );
        assert_eq!(
            binds.args(),
            [
                Arg::Text("u1".into()),
                Arg::Null,
                Arg::Number(1.0),
                Arg::Number(1_700_000_000_000.0),
                Arg::Text(r#"["a","b\""]"#.into()),
            ]
        );
        assert_eq!(Param::at(8).to_string(), "?8");
    }

    #[test]
    fn d1_numbers_read_back_as_integers() {
        assert_eq!(int(42.0), 42);
        assert_eq!(int(1_700_000_000_123.0), 1_700_000_000_123);
        for odd in [0.0, -1.0, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(int(odd), 0, "{odd}");
        }
        assert_eq!(millis(5.0), UnixMillis::from_millis(5));
    }
}

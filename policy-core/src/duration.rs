//! Session durations in Go's `time.ParseDuration` syntax (`300ms`, `2h45m`, `1.5h`).

use alloc::boxed::Box;
use core::fmt;

/// The longest session a policy or app may ask for: 31 days.
pub const MAX_SESSION_SECONDS: u64 = 744 * 3600;

/// A session duration as written, with its length.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionDuration {
    text: Box<str>,
    nanos: u64,
}

impl SessionDuration {
    /// The default session: 24 hours.
    pub fn default_session() -> SessionDuration {
        SessionDuration {
            text: Box::from("24h"),
            nanos: 24 * 3600 * NANOS_PER_SECOND,
        }
    }

    /// Parses a Go duration from `0` to 744h.
    ///
    /// # Errors
    /// [`InvalidDuration`] for bad syntax, a negative value or one above 744h.
    pub fn parse(text: &str) -> Result<SessionDuration, InvalidDuration> {
        let nanos = parse_go_duration(text).ok_or(InvalidDuration)?;
        if nanos > u128::from(MAX_SESSION_SECONDS) * u128::from(NANOS_PER_SECOND) {
            return Err(InvalidDuration);
        }
        let nanos = u64::try_from(nanos).map_err(|_| InvalidDuration)?;
        Ok(SessionDuration {
            text: Box::from(text),
            nanos,
        })
    }

    /// The duration as written in the document.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The length in whole seconds (rounded down).
    pub fn seconds(&self) -> u64 {
        self.nanos / NANOS_PER_SECOND
    }

    /// The length in nanoseconds.
    pub fn nanos(&self) -> u64 {
        self.nanos
    }
}

impl fmt::Display for SessionDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// The text is not a Go duration between 0 and 744h.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvalidDuration;

impl fmt::Display for InvalidDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("invalid duration (Go syntax such as `8h` or `2h45m`, from 0 to 744h)")
    }
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Nanoseconds of a non-negative Go duration; `None` for bad syntax or a negative sign.
fn parse_go_duration(text: &str) -> Option<u128> {
    let s = text.strip_prefix('+').unwrap_or(text);
    if s == "0" {
        return Some(0);
    }
    if s.is_empty() {
        return None;
    }
    let mut rest = s;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let int_len = rest.bytes().take_while(u8::is_ascii_digit).count();
        let (int_part, after) = rest.split_at(int_len);
        let (frac_part, after) = match after.strip_prefix('.') {
            Some(f) => {
                let n = f.bytes().take_while(u8::is_ascii_digit).count();
                f.split_at(n)
            }
            None => ("", after),
        };
        if int_part.is_empty() && frac_part.is_empty() {
            return None;
        }
        let unit_len = after
            .char_indices()
            .find(|(_, c)| c.is_ascii_digit() || *c == '.')
            .map_or(after.len(), |(i, _)| i);
        let (unit, next) = after.split_at(unit_len);
        let scale: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => 1_000_000_000,
            "m" => 60_000_000_000,
            "h" => 3_600_000_000_000,
            _ => return None,
        };
        let whole: u128 = if int_part.is_empty() {
            0
        } else {
            int_part.parse().ok()?
        };
        let mut value = whole.checked_mul(scale)?;
        let mut frac_scale = scale;
        for d in frac_part.bytes().take(30) {
            frac_scale /= 10;
            value = value.checked_add(u128::from(d - b'0') * frac_scale)?;
        }
        total = total.checked_add(value)?;
        rest = next;
    }
    Some(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: &str) -> u64 {
        SessionDuration::parse(s).unwrap().seconds()
    }

    #[test]
    fn go_syntax() {
        assert_eq!(secs("24h"), 86_400);
        assert_eq!(secs("2h45m"), 9_900);
        assert_eq!(secs("90m"), 5_400);
        assert_eq!(secs("1.5h"), 5_400);
        assert_eq!(secs("0"), 0);
        assert_eq!(secs("0s"), 0);
        assert_eq!(
            SessionDuration::parse("300ms").unwrap().nanos(),
            300_000_000
        );
        assert_eq!(SessionDuration::parse("1µs").unwrap().nanos(), 1_000);
        assert_eq!(secs("744h"), 744 * 3600);
        assert_eq!(secs("+1h"), 3600);
    }

    #[test]
    fn refused() {
        for bad in [
            "",
            "h",
            "8",
            "8 h",
            "-1h",
            "1d",
            "745h",
            "1h-5m",
            ".h",
            "1.h2",
            "1hh",
            "99999999999999999999999h",
        ] {
            assert!(SessionDuration::parse(bad).is_err(), "{bad}");
        }
    }
}

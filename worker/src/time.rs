//! Instants as a type. D1 columns named `…_ms` hold Unix milliseconds, tokens and cookies
//! speak Unix seconds, and a span is a [`Duration`]: conversions happen here, not by dividing
//! bare integers where they are used.

use std::time::Duration;

/// An instant, in milliseconds since the Unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UnixMillis(u64);

impl UnixMillis {
    /// The instant `ms` milliseconds after the epoch.
    pub const fn from_millis(ms: u64) -> UnixMillis {
        UnixMillis(ms)
    }

    /// Now, by the Workers clock.
    pub fn now() -> UnixMillis {
        UnixMillis(worker::Date::now().as_millis())
    }

    /// Milliseconds since the epoch.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// `span` earlier, or the epoch.
    pub fn saturating_sub(self, span: Duration) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(millis_of(span)))
    }
}

/// A span in whole milliseconds (saturating: no span used here comes near).
fn millis_of(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_are_taken_in_milliseconds() {
        let now = UnixMillis::from_millis(1_700_000_000_123);
        assert_eq!(
            now.saturating_sub(Duration::from_secs(7 * 24 * 3600)),
            UnixMillis::from_millis(1_700_000_000_123 - 604_800_000)
        );
        assert_eq!(
            now.saturating_sub(Duration::from_millis(123)).millis(),
            1_700_000_000_000
        );
        assert_eq!(
            UnixMillis::from_millis(5).saturating_sub(Duration::from_secs(1)),
            UnixMillis::from_millis(0)
        );
        assert_eq!(
            now.saturating_sub(Duration::MAX),
            UnixMillis::from_millis(0)
        );
    }
}

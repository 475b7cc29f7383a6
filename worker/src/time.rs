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

    /// Whole seconds since the epoch, as tokens and cookies speak them (`iat`, `exp`).
    pub const fn unix_secs(self) -> u64 {
        self.0 / 1000
    }

    /// `span` earlier, or the epoch.
    pub fn saturating_sub(self, span: Duration) -> UnixMillis {
        UnixMillis(self.0.saturating_sub(millis_of(span)))
    }

    /// `span` later (saturating).
    pub fn saturating_add(self, span: Duration) -> UnixMillis {
        UnixMillis(self.0.saturating_add(millis_of(span)))
    }

    /// The span since `earlier`; zero when `earlier` is not earlier (a clock step back).
    pub fn since(self, earlier: UnixMillis) -> Duration {
        Duration::from_millis(self.0.saturating_sub(earlier.0))
    }
}

/// A span in whole milliseconds (saturating: no span used here comes near).
pub fn millis_of(span: Duration) -> u64 {
    u64::try_from(span.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_spans_between_instants() {
        let t = UnixMillis::from_millis(1_700_000_000_999);
        assert_eq!(t.unix_secs(), 1_700_000_000);
        assert_eq!(
            t.saturating_add(Duration::from_secs(60)),
            UnixMillis::from_millis(1_700_000_060_999)
        );
        assert_eq!(
            UnixMillis::from_millis(u64::MAX).saturating_add(Duration::from_secs(1)),
            UnixMillis::from_millis(u64::MAX)
        );
        let later = t.saturating_add(Duration::from_millis(1_500));
        assert_eq!(later.since(t), Duration::from_millis(1_500));
        assert_eq!(t.since(later), Duration::ZERO);
    }

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

//! When the gateway fetches a tenant's signing keys again, and what a `kid` missing from the
//! cached key set means until it has: pure rules over one isolate's record of fetches, with
//! the time passed in (so they are tested natively).
//!
//! # What an unknown `kid` means
//!
//! A key set fetched at `F` (when the fetch began) answers for a token only if the token's key
//! would already have been published at `F`. Entra publishes a key before it signs with it, so
//! that holds when the token was presented to the gateway before `F` — the fetch began during
//! or after the request that brought the token — or when the token was issued well before
//! `F`: `iat` + [`ISSUED_AT_MARGIN_MS`] ≤ `F` (Entra back-dates `iat` by about five minutes;
//! the margin covers that and clock skew). Only then is a missing `kid` refused (401): the
//! directory does not publish it. A token issued after the last fetch with an unknown `kid` —
//! a real new key or an invented one, the gateway cannot tell — needs another fetch; while
//! none may run (see below) it is answered 503 with `Retry-After`, never 401. A made-up `kid`
//! therefore never makes a real new key refused: at worst it delays it by one refresh
//! interval.
//!
//! # Bounded work
//!
//! Per isolate and per tenant and token version: at most one fetch at a time (other requests
//! wait for it), and fetches are rate-limited by a bucket of [`BURST`] that refills one per
//! [`REFRESH_INTERVAL_MS`] — in any `t` seconds at most `2 + t / 10` fetches — and after a
//! fetch that failed the next begins no sooner than [`FAILURE_BACKOFF_MS`] later. A flood of
//! invented `kid`s thus costs at most one refresh (one JWKS request, two when the first
//! attempt fails at once) every 10 seconds after the first two, and tokens with invented
//! `kid`s issued before the last fetch cost none. The burst lets a real new key right after a
//! cold start be fetched at once. A known key set older than [`TTL_MS`] is refreshed under
//! the same limits and kept (last known good) when that fails.

/// Keys older than this are refreshed (and kept if the refresh fails); the discovery
/// document too.
pub const TTL_MS: u64 = 24 * 3600 * 1000;

/// Fetches of one key set may begin at most once per this interval on average...
pub const REFRESH_INTERVAL_MS: u64 = 10 * 1000;

/// ...and at most this many in a row.
pub const BURST: u64 = 2;

/// After a fetch that failed, the next fetch begins no sooner.
pub const FAILURE_BACKOFF_MS: u64 = 5 * 1000;

/// A fetch that has run this long is taken as abandoned (the request that ran it went away):
/// others may fetch again. Longer than the longest fetch (two documents, each tried twice).
pub const RUNNING_LIMIT_MS: u64 = 15 * 1000;

/// A key set fetched this long after a token's `iat` would have listed its key: Entra
/// back-dates `iat` (and `nbf`) by about five minutes, plus as much again for clock skew and
/// publication delays.
pub const ISSUED_AT_MARGIN_MS: u64 = 10 * 60 * 1000;

/// What the gateway knows of a token whose `kid` it looks up (all of it untrusted, only
/// used to decide whether to fetch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Presented {
    /// The token's `iat`, seconds since the epoch.
    pub issued_at_secs: Option<i64>,
    /// When the request that brought it arrived.
    pub seen_ms: u64,
}

impl Presented {
    /// Whether a key set fetched (the fetch beginning) at `fetched_ms` lists every key that
    /// could have signed this token.
    pub fn answered_by(&self, fetched_ms: u64) -> bool {
        let issued_bound = self.issued_at_secs.map_or(u64::MAX, |iat| {
            u64::try_from(iat)
                .unwrap_or(0)
                .saturating_mul(1000)
                .saturating_add(ISSUED_AT_MARGIN_MS)
        });
        fetched_ms >= self.seen_ms.min(issued_bound)
    }
}

/// What to do about a `kid` the cached key set does not list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unknown {
    /// The cached set answers for the token and lacks its key: refuse it (401).
    Absent,
    /// Fetch the key set now (and record it with [`Refreshes::begin`]/[`Refreshes::finish`]).
    Fetch,
    /// Another request of this isolate is fetching: wait for it, then decide again.
    Wait,
    /// The key cannot be known yet: no fetch may begin for this long (503, `Retry-After`).
    NotYet {
        /// Until the next fetch may begin.
        retry_after_ms: u64,
    },
}

/// One isolate's record of fetches of one key set (a tenant and token version).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Refreshes {
    /// The rate limit as a generic cell rate algorithm: the time the bucket would be full
    /// again (each fetch adds [`REFRESH_INTERVAL_MS`]; a fetch may begin while it is less
    /// than `(BURST - 1) * REFRESH_INTERVAL_MS` ahead).
    full_again_ms: u64,
    /// When the last fetch that ended began, if it failed.
    failed_began_ms: Option<u64>,
    /// A fetch running now, since when.
    running_since_ms: Option<u64>,
}

impl Refreshes {
    /// The decision for a token whose `kid` is not in the cached key set, fetched (the fetch
    /// beginning) at `fetched_ms` (`None`: no key set at all).
    pub fn unknown_kid(&self, fetched_ms: Option<u64>, token: Presented, now_ms: u64) -> Unknown {
        if fetched_ms.is_some_and(|fetched| token.answered_by(fetched)) {
            return Unknown::Absent;
        }
        if self.running(now_ms) {
            return Unknown::Wait;
        }
        match self.next_fetch_ms().checked_sub(now_ms) {
            None | Some(0) => Unknown::Fetch,
            Some(retry_after_ms) => Unknown::NotYet { retry_after_ms },
        }
    }

    /// Whether a key set fetched at `fetched_ms` is old enough to refresh and a fetch may
    /// begin now.
    pub fn refresh_stale(&self, fetched_ms: u64, now_ms: u64) -> bool {
        now_ms.saturating_sub(fetched_ms) >= TTL_MS
            && !self.running(now_ms)
            && now_ms >= self.next_fetch_ms()
    }

    /// A fetch is running (begun less than [`RUNNING_LIMIT_MS`] ago).
    pub fn running(&self, now_ms: u64) -> bool {
        self.running_since_ms
            .is_some_and(|since| now_ms.saturating_sub(since) < RUNNING_LIMIT_MS)
    }

    /// Records that a fetch begins.
    pub fn begin(&mut self, now_ms: u64) {
        self.running_since_ms = Some(now_ms);
    }

    /// Records that the fetch begun at `began_ms` ended.
    pub fn finish(&mut self, began_ms: u64, succeeded: bool) {
        self.running_since_ms = None;
        self.full_again_ms = self
            .full_again_ms
            .max(began_ms)
            .saturating_add(REFRESH_INTERVAL_MS);
        self.failed_began_ms = (!succeeded).then_some(began_ms);
    }

    /// Whether the last fetch that ended failed.
    pub fn last_failed(&self) -> bool {
        self.failed_began_ms.is_some()
    }

    /// When the next fetch may begin.
    fn next_fetch_ms(&self) -> u64 {
        let bucket = self
            .full_again_ms
            .saturating_sub((BURST - 1) * REFRESH_INTERVAL_MS);
        let back_off = self
            .failed_began_ms
            .map_or(0, |began| began.saturating_add(FAILURE_BACKOFF_MS));
        bucket.max(back_off)
    }
}

/// Whole seconds for `Retry-After`: `ms` rounded up, at least 1.
pub fn retry_after_secs(ms: u64) -> u64 {
    ms.div_ceil(1000).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_800_000_000_000;

    fn token(issued_at_ms: u64, seen_ms: u64) -> Presented {
        Presented {
            issued_at_secs: Some(i64::try_from(issued_at_ms / 1000).unwrap()),
            seen_ms,
        }
    }

    fn fetched_at(began_ms: u64) -> Refreshes {
        let mut r = Refreshes::default();
        r.begin(began_ms);
        r.finish(began_ms, true);
        r
    }

    /// Two fetches in a row, the second at `began_ms`: the bucket is empty.
    fn drained_at(began_ms: u64) -> Refreshes {
        let mut r = fetched_at(began_ms - 1);
        r.begin(began_ms);
        r.finish(began_ms, true);
        r
    }

    #[test]
    fn a_cold_isolate_fetches_at_once() {
        let r = Refreshes::default();
        assert_eq!(r.unknown_kid(None, token(T0, T0), T0), Unknown::Fetch);
    }

    #[test]
    fn the_fetch_made_for_a_request_answers_for_it() {
        // The request arrived at T0 and its own fetch began at T0: a missing kid is absent.
        let r = fetched_at(T0);
        assert_eq!(r.unknown_kid(Some(T0), token(T0, T0), T0), Unknown::Absent);
    }

    #[test]
    fn tokens_issued_well_before_the_fetch_are_answered_without_fetching() {
        let r = drained_at(T0);
        let old = token(T0 - ISSUED_AT_MARGIN_MS, T0 + 1_000);
        assert_eq!(r.unknown_kid(Some(T0), old, T0 + 1_000), Unknown::Absent);
        // Issued within the margin (Entra back-dates iat by about 5 minutes): not answered.
        let recent = token(T0 - ISSUED_AT_MARGIN_MS + 1_000, T0 + 1_000);
        assert!(matches!(
            r.unknown_kid(Some(T0), recent, T0 + 1_000),
            Unknown::NotYet { .. }
        ));
    }

    #[test]
    fn an_invented_kid_never_makes_a_real_new_key_refused() {
        // The key set was loaded at T0 - 5 s. An invented kid at T0 makes the isolate fetch
        // (the bucket allows two in a row); Entra then rolls its keys at T0 + 1 s and a real
        // token signed with the new key arrives at T0 + 2 s, its `iat` back-dated 5 minutes.
        let mut r = fetched_at(T0 - 5_000);
        let invented = token(T0, T0);
        assert_eq!(
            r.unknown_kid(Some(T0 - 5_000), invented, T0),
            Unknown::Fetch
        );
        r.begin(T0);
        r.finish(T0, true);
        assert_eq!(r.unknown_kid(Some(T0), invented, T0), Unknown::Absent);
        let real = token(T0 + 1_000 - 300_000, T0 + 2_000);
        // Not 401: 503 until the next fetch may begin, then a fetch.
        assert_eq!(
            r.unknown_kid(Some(T0), real, T0 + 2_000),
            Unknown::NotYet {
                retry_after_ms: REFRESH_INTERVAL_MS - 7_000
            }
        );
        assert_eq!(r.unknown_kid(Some(T0), real, T0 + 5_000), Unknown::Fetch);
    }

    #[test]
    fn a_new_key_right_after_a_cold_start_is_fetched_at_once() {
        let r = fetched_at(T0);
        let real = token(T0 + 100, T0 + 100);
        assert_eq!(r.unknown_kid(Some(T0), real, T0 + 100), Unknown::Fetch);
    }

    #[test]
    fn a_flood_of_invented_kids_costs_one_fetch_per_interval() {
        let mut r = fetched_at(T0);
        let mut fetched = T0;
        let mut fetches = 0;
        // One invented kid every 10 ms for a minute, each token issued "now".
        for step in 0..=6_000_u64 {
            let now = T0 + 1 + step * 10;
            match r.unknown_kid(Some(fetched), token(now, now), now) {
                Unknown::Fetch => {
                    fetches += 1;
                    r.begin(now);
                    r.finish(now, true);
                    fetched = now;
                }
                Unknown::NotYet { retry_after_ms } => {
                    assert!(retry_after_ms <= REFRESH_INTERVAL_MS);
                }
                Unknown::Absent | Unknown::Wait => panic!("step {step}"),
            }
        }
        // With the load at T0: at most BURST + 60 s / 10 s fetches in the minute.
        assert_eq!(fetches + 1, BURST + 60_000 / REFRESH_INTERVAL_MS);
    }

    #[test]
    fn failures_back_off_briefly() {
        let mut r = Refreshes::default();
        r.begin(T0);
        r.finish(T0, false);
        // The back-off holds even with room in the bucket.
        assert!(r.last_failed());
        assert_eq!(
            r.unknown_kid(None, token(T0, T0 + 1_000), T0 + 1_000),
            Unknown::NotYet {
                retry_after_ms: FAILURE_BACKOFF_MS - 1_000
            }
        );
        assert_eq!(
            r.unknown_kid(None, token(T0, T0 + 1_000), T0 + FAILURE_BACKOFF_MS),
            Unknown::Fetch
        );
    }

    #[test]
    fn a_running_fetch_is_waited_for_unless_abandoned() {
        let mut r = fetched_at(T0 - 60_000);
        r.begin(T0);
        assert_eq!(
            r.unknown_kid(Some(T0 - 60_000), token(T0, T0 + 100), T0 + 100),
            Unknown::Wait
        );
        assert!(!r.refresh_stale(T0 - TTL_MS, T0 + 100));
        let later = T0 + RUNNING_LIMIT_MS;
        assert_eq!(
            r.unknown_kid(Some(T0 - 60_000), token(later, later), later),
            Unknown::Fetch
        );
    }

    #[test]
    fn a_request_that_waited_for_an_earlier_fetch_is_not_answered_by_it() {
        // Two fetches in a row, the second at T0 for another request; this one arrived at
        // T0 + 100 ms with a token issued then: the set cannot answer for it, and no fetch
        // may begin yet.
        let r = drained_at(T0);
        assert!(matches!(
            r.unknown_kid(Some(T0), token(T0 + 100, T0 + 100), T0 + 200),
            Unknown::NotYet { .. }
        ));
    }

    #[test]
    fn stale_sets_are_refreshed_within_the_same_limits() {
        let r = fetched_at(T0);
        assert!(!r.refresh_stale(T0, T0 + TTL_MS - 1));
        assert!(r.refresh_stale(T0, T0 + TTL_MS));
        let mut failed = fetched_at(T0);
        failed.begin(T0 + TTL_MS);
        failed.finish(T0 + TTL_MS, false);
        assert!(!failed.refresh_stale(T0, T0 + TTL_MS + 1));
        assert!(failed.refresh_stale(T0, T0 + TTL_MS + FAILURE_BACKOFF_MS));
    }

    #[test]
    fn tokens_without_or_with_odd_iat_are_judged_by_arrival() {
        let r = drained_at(T0);
        let no_iat = Presented {
            issued_at_secs: None,
            seen_ms: T0 + 1,
        };
        assert!(matches!(
            r.unknown_kid(Some(T0), no_iat, T0 + 1),
            Unknown::NotYet { .. }
        ));
        let negative = Presented {
            issued_at_secs: Some(-5),
            seen_ms: T0 + 1,
        };
        assert_eq!(r.unknown_kid(Some(T0), negative, T0 + 1), Unknown::Absent);
        let huge = Presented {
            issued_at_secs: Some(i64::MAX),
            seen_ms: T0 + 1,
        };
        assert!(matches!(
            r.unknown_kid(Some(T0), huge, T0 + 1),
            Unknown::NotYet { .. }
        ));
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        assert_eq!(retry_after_secs(0), 1);
        assert_eq!(retry_after_secs(1), 1);
        assert_eq!(retry_after_secs(1_000), 1);
        assert_eq!(retry_after_secs(1_001), 2);
        assert_eq!(retry_after_secs(9_999), 10);
    }
}

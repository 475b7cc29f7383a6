//! What a failed write batch means, and the retry of writes that conflicted.
//!
//! D1 reports a failed statement by message only. The messages that matter are SQLite's own:
//! a guard table's `NOT NULL constraint failed: scim_write_guard.must_not_be_null` (what the
//! write was computed from changed: retry), the same for `scim_member_guard` (an added member
//! is neither a user nor a group), and `UNIQUE constraint failed: <table>.<column>` (a name
//! or id taken: 409). [`read_failure`] reads them, natively tested.

use std::future::Future;

use super::{uniqueness, Failure};

/// Attempts at a write whose resource keeps changing underneath.
pub const ATTEMPTS: usize = 4;

/// What the message of a failed batch says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Read {
    /// A write guard saw the resource move: retry from the read.
    Conflict,
    /// An added member is neither a user nor a group (or no longer is).
    MissingMember,
    /// A unique name or id is taken: the detail to answer 409 with.
    Taken(&'static str),
    /// Anything else: storage failed.
    Other,
}

/// Reads the message of a failed batch.
pub fn read_failure(message: &str) -> Read {
    const TAKEN: [(&str, &str); 4] = [
        (
            "UNIQUE constraint failed: scim_users.user_name_key",
            "userName is already taken",
        ),
        (
            "UNIQUE constraint failed: scim_users.oid",
            "externalId is already the object id of another user",
        ),
        (
            "UNIQUE constraint failed: scim_groups.display_name_key",
            "displayName is already taken",
        ),
        (
            "UNIQUE constraint failed: scim_groups.policy_id",
            "externalId is already the id of another group",
        ),
    ];
    if message.contains("scim_write_guard") {
        Read::Conflict
    } else if message.contains("scim_member_guard") {
        Read::MissingMember
    } else if let Some((_, detail)) = TAKEN.iter().find(|(m, _)| message.contains(m)) {
        Read::Taken(detail)
    } else {
        Read::Other
    }
}

/// A failed batch: a guard saw the resource move (retry), an added member is neither a user
/// nor a group, or a failure to answer with.
pub enum BatchError {
    Conflict,
    MissingMember,
    Failed(Failure),
}

pub fn classify(e: worker::Error) -> BatchError {
    match read_failure(&e.to_string()) {
        Read::Conflict => BatchError::Conflict,
        Read::MissingMember => BatchError::MissingMember,
        Read::Taken(detail) => BatchError::Failed(uniqueness(detail.into())),
        Read::Other => BatchError::Failed(e.into()),
    }
}

/// A failed batch that is not retried (a create has nothing to retry against).
impl From<BatchError> for Failure {
    fn from(e: BatchError) -> Failure {
        match e {
            BatchError::Conflict | BatchError::MissingMember => Failure::Busy,
            BatchError::Failed(failure) => failure,
        }
    }
}

/// What one attempt at a guarded write came to.
pub enum Attempt<T> {
    Done(T),
    /// What the write was computed from changed: read again and retry.
    Again,
}

impl Attempt<()> {
    /// A submitted batch's result as an attempt: a conflict (or a member that vanished) is
    /// tried again, other failures end the write.
    pub fn of<T>(result: Result<T, worker::Error>) -> Result<Attempt<()>, Failure> {
        match result.map_err(classify) {
            Ok(_) => Ok(Attempt::Done(())),
            Err(BatchError::Conflict | BatchError::MissingMember) => Ok(Attempt::Again),
            Err(BatchError::Failed(failure)) => Err(failure),
        }
    }
}

/// Runs `attempt` until it is done, at most [`ATTEMPTS`] times, with a random pause before
/// each retry so that writes that collided do not collide again in step; [`Failure::Busy`]
/// when every attempt conflicted.
pub async fn retry<T>(
    attempt: impl AsyncFnMut() -> Result<Attempt<T>, Failure>,
) -> Result<T, Failure> {
    retry_with(back_off, attempt).await
}

/// [`retry`] with its pause given: `pause(n)` runs before attempt `n` (from 1).
async fn retry_with<T, P: Future<Output = ()>>(
    pause: impl Fn(usize) -> P,
    mut attempt: impl AsyncFnMut() -> Result<Attempt<T>, Failure>,
) -> Result<T, Failure> {
    for n in 0..ATTEMPTS {
        if n > 0 {
            pause(n).await;
        }
        if let Attempt::Done(value) = attempt().await? {
            return Ok(value);
        }
    }
    Err(Failure::Busy)
}

/// Waits a random 5–25 ms times `attempt`.
async fn back_off(attempt: usize) {
    #[expect(
        clippy::cast_possible_truncation,
        reason = "a few dozen milliseconds, positive"
    )]
    let ms = ((5.0 + js_sys::Math::random() * 20.0) * attempt as f64) as u64;
    worker::Delay::from(std::time::Duration::from_millis(ms)).await;
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::pin::pin;
    use std::task::{Context, Poll, Waker};

    use edge_access_scim::ScimType;

    use super::*;

    /// Polls a future that never waits on anything outside it.
    fn block_on<T>(future: impl Future<Output = T>) -> T {
        let mut future = pin!(future);
        let mut context = Context::from_waker(Waker::noop());
        loop {
            if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
                return value;
            }
        }
    }

    #[test]
    fn d1_messages_are_read_whatever_wraps_them() {
        let cases = [
            (
                "D1_ERROR: NOT NULL constraint failed: scim_write_guard.must_not_be_null: \
                 SQLITE_CONSTRAINT",
                Read::Conflict,
            ),
            (
                "Error: D1_ERROR: NOT NULL constraint failed: scim_member_guard.must_not_be_null",
                Read::MissingMember,
            ),
            (
                "D1_ERROR: UNIQUE constraint failed: scim_users.user_name_key: SQLITE_CONSTRAINT",
                Read::Taken("userName is already taken"),
            ),
            (
                "UNIQUE constraint failed: scim_users.oid",
                Read::Taken("externalId is already the object id of another user"),
            ),
            (
                "D1_ERROR: UNIQUE constraint failed: scim_groups.display_name_key",
                Read::Taken("displayName is already taken"),
            ),
            (
                "D1_ERROR: UNIQUE constraint failed: scim_groups.policy_id",
                Read::Taken("externalId is already the id of another group"),
            ),
            (
                "D1_ERROR: UNIQUE constraint failed: scim_members.group_id, scim_members.member_id",
                Read::Other,
            ),
            ("D1_ERROR: no such table: scim_users", Read::Other),
            ("Network connection lost.", Read::Other),
            ("", Read::Other),
        ];
        for (message, read) in cases {
            assert_eq!(read_failure(message), read, "{message}");
        }
    }

    #[test]
    fn a_taken_name_is_a_409_and_anything_unknown_a_500() {
        let taken = classify(worker::Error::RustError(
            "D1_ERROR: UNIQUE constraint failed: scim_groups.display_name_key".into(),
        ));
        match Failure::from(taken) {
            Failure::Scim(e) => assert_eq!(e.scim_type, ScimType::Uniqueness),
            _ => panic!("not a SCIM error"),
        }
        let other = classify(worker::Error::RustError("disk I/O error".into()));
        assert!(matches!(Failure::from(other), Failure::Internal(_)));
        let conflict = classify(worker::Error::RustError("scim_write_guard".into()));
        assert!(matches!(Failure::from(conflict), Failure::Busy));
    }

    /// Runs `retry_with` over scripted attempts; returns the result, the attempts made and
    /// the pauses taken.
    fn run(
        script: Vec<Result<Attempt<u32>, Failure>>,
    ) -> (Result<u32, Failure>, usize, Vec<usize>) {
        let pauses = RefCell::new(Vec::new());
        let mut script = script.into_iter();
        let mut made = 0;
        let result = block_on(retry_with(
            |n| {
                pauses.borrow_mut().push(n);
                std::future::ready(())
            },
            async || {
                made += 1;
                script.next().unwrap_or(Ok(Attempt::Again))
            },
        ));
        (result, made, pauses.into_inner())
    }

    #[test]
    fn a_write_that_conflicts_is_retried_after_a_pause() {
        let (result, made, pauses) = run(vec![Ok(Attempt::Again), Ok(Attempt::Done(7))]);
        assert_eq!(result.ok(), Some(7));
        assert_eq!((made, pauses), (2, vec![1]));
    }

    #[test]
    fn a_write_that_keeps_conflicting_is_busy() {
        let (result, made, pauses) = run(vec![]);
        assert!(matches!(result, Err(Failure::Busy)));
        assert_eq!(made, ATTEMPTS);
        assert_eq!(pauses, (1..ATTEMPTS).collect::<Vec<_>>());
    }

    #[test]
    fn a_failure_ends_the_write_at_once() {
        let (result, made, pauses) = run(vec![
            Ok(Attempt::Again),
            Err(Failure::NotFound("gone".into())),
            Ok(Attempt::Done(1)),
        ]);
        assert!(matches!(result, Err(Failure::NotFound(_))));
        assert_eq!((made, pauses), (2, vec![1]));
    }

    #[test]
    fn a_first_success_neither_pauses_nor_retries() {
        let (result, made, pauses) = run(vec![Ok(Attempt::Done(3))]);
        assert_eq!(result.ok(), Some(3));
        assert_eq!((made, pauses), (1, vec![]));
    }
}

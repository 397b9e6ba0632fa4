//! Retry policy shared by workers: transient failures (the database or broker briefly away) are retried
//! without limit, with capped exponential backoff, until shutdown; others count toward `max_attempts`.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

pub fn backoff(attempt: u32) -> Duration {
    FIRST_BACKOFF.saturating_mul(2u32.saturating_pow(attempt.min(16))).min(MAX_BACKOFF)
}

/// Waits out the backoff of `attempt`; false if shutdown came first.
pub async fn pause(attempt: u32, shutdown: &CancellationToken) -> bool {
    tokio::select! {
        _ = shutdown.cancelled() => false,
        _ = tokio::time::sleep(backoff(attempt)) => true,
    }
}

/// How a retried database step ended.
#[derive(Debug)]
pub enum Retried<T> {
    Done(T),
    /// Failed `max_failures` times with errors that are not transient.
    Failed(sqlx::Error),
    /// Shutdown came while waiting to try again.
    Interrupted,
}

/// Runs `step` until it succeeds: transient errors are retried until shutdown, other errors until the
/// `max_failures`-th, with the backoff between any two tries.
pub async fn until_done<T, F, Fut>(max_failures: u32, shutdown: &CancellationToken, mut step: F) -> Retried<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = sqlx::Result<T>>,
{
    let (mut failures, mut attempt) = (0, 0);
    loop {
        match step().await {
            Ok(done) => return Retried::Done(done),
            Err(error) if is_transient(&error) => {
                tracing::warn!(%error, attempt, "transient database error; trying again");
            }
            Err(error) => {
                failures += 1;
                if failures >= max_failures {
                    return Retried::Failed(error);
                }
                tracing::warn!(%error, failures, "database step failed; trying again");
            }
        }
        if !pause(attempt, shutdown).await {
            return Retried::Interrupted;
        }
        attempt += 1;
    }
}

/// Connection-level or contention errors that succeed when simply tried again later.
pub fn is_transient(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            // 08 connection, 40 serialization/deadlock, 53 resources, 57 operator intervention (restarts).
            db.code().is_some_and(|code| ["08", "40", "53", "57"].iter().any(|class| code.starts_with(class)))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff(0), Duration::from_millis(100));
        assert_eq!(backoff(1), Duration::from_millis(200));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }

    #[tokio::test]
    async fn transient_errors_are_retried_and_others_only_up_to_the_limit() {
        let never = CancellationToken::new();
        let mut calls = 0;
        let outcome = until_done(5, &never, || {
            calls += 1;
            let result = if calls < 3 { Err(sqlx::Error::PoolTimedOut) } else { Ok(calls) };
            std::future::ready(result)
        })
        .await;
        assert!(matches!(outcome, Retried::Done(3)), "{outcome:?}");

        let mut calls = 0;
        let outcome = until_done(2, &never, || {
            calls += 1;
            std::future::ready(Err::<(), _>(sqlx::Error::RowNotFound))
        })
        .await;
        assert!(
            matches!(outcome, Retried::Failed(sqlx::Error::RowNotFound)) && calls == 2,
            "{outcome:?} after {calls}"
        );
    }

    #[tokio::test]
    async fn shutdown_interrupts_the_wait_between_tries() {
        let stopped = CancellationToken::new();
        stopped.cancel();
        let outcome = until_done(5, &stopped, || std::future::ready(Err::<(), _>(sqlx::Error::PoolTimedOut))).await;
        assert!(matches!(outcome, Retried::Interrupted), "{outcome:?}");
    }

    #[test]
    fn pool_timeouts_are_transient_and_decode_errors_are_not() {
        assert!(is_transient(&sqlx::Error::PoolTimedOut));
        assert!(!is_transient(&sqlx::Error::RowNotFound));
    }
}

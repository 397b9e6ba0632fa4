//! Asking a run to stop. SIGTERM or SIGINT to the process (what the scheduler's timeout and an operator's
//! Ctrl-C send), or `settle-batch stop ID` from anywhere (it marks the execution in the repository, which
//! the run polls), all flip one signal that jobs check between chunks: a run ends within one chunk,
//! as STOPPED, with every finished chunk committed and the partition it was in left to a restart.

use sqlx::PgPool;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a run looks for a stop asked through the repository.
const POLL: Duration = Duration::from_millis(500);

#[derive(Clone)]
pub struct StopSignal {
    token: CancellationToken,
    _watchers: std::sync::Arc<tokio_util::sync::DropGuard>,
}

impl StopSignal {
    /// Watches for a stop of `execution` until the signal is dropped.
    pub fn watch(pool: &PgPool, execution: i64) -> Self {
        let token = CancellationToken::new();
        let done = CancellationToken::new();
        let (stop, end) = (token.clone(), done.clone());
        tokio::spawn(async move {
            let (Ok(mut term), Ok(mut int)) = (
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()),
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()),
            ) else {
                tracing::warn!("cannot listen for SIGTERM: only `settle-batch stop` stops this run cleanly");
                return;
            };
            tokio::select! {
                _ = end.cancelled() => {}
                _ = term.recv() => { tracing::warn!("SIGTERM: stopping after the current chunk"); stop.cancel() }
                _ = int.recv() => { tracing::warn!("SIGINT: stopping after the current chunk"); stop.cancel() }
            }
        });
        let (stop, end, pool) = (token.clone(), done.clone(), pool.clone());
        tokio::spawn(async move {
            let mut ticks = tokio::time::interval(POLL);
            loop {
                tokio::select! {
                    _ = end.cancelled() => return,
                    _ = ticks.tick() => {}
                }
                match crate::job::repository::stop_requested(&pool, execution).await {
                    Ok(true) => {
                        tracing::warn!(execution, "stop requested: stopping after the current chunk");
                        stop.cancel();
                        return;
                    }
                    Ok(false) => {}
                    Err(error) => tracing::warn!(%error, "could not look for a stop request"),
                }
            }
        });
        Self { token, _watchers: std::sync::Arc::new(done.drop_guard()) }
    }

    pub fn requested(&self) -> bool {
        self.token.is_cancelled()
    }
}

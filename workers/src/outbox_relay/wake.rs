//! When an idle relay looks again: on a NOTIFY from the outbox trigger, or after the poll interval, which
//! covers notifications lost while the listening connection was down.

use sqlx::{postgres::PgListener, PgPool};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The channel the `outbox_events_notify` trigger notifies on every insert.
const CHANNEL: &str = "outbox_events";

pub struct Wakeup {
    listener: Option<PgListener>,
    poll: Duration,
}

impl Wakeup {
    /// Listens if it can; without a listener the relay still works, only by polling.
    pub async fn listen(pool: &PgPool, poll: Duration) -> Self {
        let listener = match PgListener::connect_with(pool).await {
            Ok(mut listener) => match listener.listen(CHANNEL).await {
                Ok(()) => Some(listener),
                Err(error) => {
                    tracing::warn!(%error, "LISTEN failed; the relay polls only");
                    None
                }
            },
            Err(error) => {
                tracing::warn!(%error, "connecting the outbox listener failed; the relay polls only");
                None
            }
        };
        Self { listener, poll }
    }

    /// Returns once there may be new work: at once if notifications arrived meanwhile. False on shutdown.
    pub async fn wait(&mut self, shutdown: &CancellationToken) -> bool {
        if self.drain_buffered() {
            return true;
        }
        let poll = self.poll;
        let notified = async {
            match self.listener.as_mut() {
                Some(listener) => {
                    if let Err(error) = listener.recv().await {
                        // recv reconnects on its next call; until then only the poll interval wakes us.
                        tracing::warn!(%error, "outbox listener lost its connection");
                        tokio::time::sleep(poll).await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = notified => true,
            _ = tokio::time::sleep(poll) => true,
        }
    }

    /// One wake-up stands for any number of inserts: drop the notifications already queued.
    fn drain_buffered(&mut self) -> bool {
        let Some(listener) = self.listener.as_mut() else { return false };
        let mut any = false;
        while listener.next_buffered().is_some() {
            any = true;
        }
        any
    }
}

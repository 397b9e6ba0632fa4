//! The provider's webhooks: when a buyer pays into a virtual account it POSTs a DEPOSIT_CALLBACK to the
//! URL the merchant registered, and sends it again until the merchant answers 2xx, at most seven times,
//! each wait four times the last (the provider waits 1, 4, 16 … minutes; `retry_base` scales that, so
//! tests wait milliseconds). What is owed is kept in the journal, so a restart still delivers it.

use crate::Sandbox;
use std::time::{Duration, Instant};

/// How many times the provider sends one callback.
const SENDS: u32 = 7;
/// How long one send may take before it counts as failed.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// The wait before the next send of a callback sent `sends` times and not delivered; `None` after the
/// last.
pub fn retry_after(retry_base: Duration, sends: u32) -> Option<Duration> {
    (sends < SENDS).then(|| retry_base * 4u32.pow(sends - 1))
}

/// Delivers the sandbox's callbacks until the process ends: each due one is sent (no lock held while
/// it is), then the loop sleeps until the next is due or a deposit wakes it.
pub async fn deliver(sandbox: Sandbox, retry_base: Duration) {
    let http = reqwest::Client::builder().timeout(SEND_TIMEOUT).build().expect("an HTTP client");
    loop {
        let (due, next) = sandbox.store().due_callbacks(Instant::now());
        for (id, url, body) in due {
            let delivered = match http.post(&url).json(&body).send().await {
                Ok(answer) if answer.status().is_success() => true,
                Ok(answer) => {
                    tracing::warn!(%url, order = %body.order_id, status = %answer.status(), "a deposit callback was refused");
                    false
                }
                Err(error) => {
                    tracing::warn!(%url, order = %body.order_id, %error, "a deposit callback was not delivered");
                    false
                }
            };
            if let Err(error) = sandbox.store().callback_sent(id, delivered, |sends| retry_after(retry_base, sends)) {
                tracing::error!(%error, "the journal refused a callback's outcome");
            }
        }
        let wait = next.map_or(Duration::from_secs(60), |at| at.saturating_duration_since(Instant::now()));
        tokio::select! {
            _ = sandbox.callbacks_owed.notified() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_is_sent_seven_times_each_wait_four_times_the_last() {
        let base = Duration::from_secs(60);
        let waits: Vec<_> = (1..=SENDS).map(|sends| retry_after(base, sends)).collect();
        let minutes = [1, 4, 16, 64, 256, 1024].map(|m| Some(Duration::from_secs(60 * m)));
        assert_eq!(waits[..6], minutes);
        assert_eq!(waits[6], None, "the seventh send is the last");
    }
}

//! Handing a V3 request to the broker, and sending again one whose outcome is unknown.
//!
//! A produce that timed out may have been stored without its acknowledgement reaching us. Such a request
//! keeps its place in flight and reads PENDING; a task sends the same record again (same request id)
//! until the broker acknowledges a copy. The worker skips request ids it has seen, so whichever copies
//! arrive, the request is decided once and its verdict settles the place like any other's. A process
//! that stops first leaves the place in flight, where the drift guard stops counting it after its horizon.

use crate::AppState;
use domain::coupon::IssueRequested;
use infra::kafka::{with_trace_id, Topic};
use rdkafka::{error::KafkaError, message::OwnedHeaders, producer::FutureRecord};
use std::time::{Duration, Instant};

/// Longest a V3 request waits for the broker's acknowledgement before it is refused with 503.
const PRODUCE_TIMEOUT: Duration = Duration::from_secs(5);
/// The first wait before sending a request of unknown outcome again; it doubles up to the longest.
const FIRST_RESEND_WAIT: Duration = Duration::from_millis(500);
const LONGEST_RESEND_WAIT: Duration = Duration::from_secs(10);

/// Produces the request keyed by user and resolves only once the broker has it: a 202 is never lost.
pub(super) async fn enqueue(
    state: &AppState,
    event: &IssueRequested,
    payload: &[u8],
    trace_id: &str,
) -> Result<(), KafkaError> {
    let (topic, key) = (state.kafka.topic_name(Topic::CouponIssueRequested), event.user_id.to_string());
    let record =
        FutureRecord::to(&topic).key(&key).payload(payload).headers(with_trace_id(OwnedHeaders::new(), trace_id));
    state.producer.get().send(record, PRODUCE_TIMEOUT).await.map(|_| ()).map_err(|(error, _)| error)
}

/// Sends `event` again, behind the broker's circuit breaker, until a copy is acknowledged or `give_up_after`.
pub(super) fn resend_until_acknowledged(
    state: AppState,
    event: IssueRequested,
    payload: Vec<u8>,
    trace_id: String,
    give_up_after: Duration,
) {
    tokio::spawn(async move {
        let (deadline, mut wait) = (Instant::now() + give_up_after, FIRST_RESEND_WAIT);
        let request_id = event.request_id;
        while Instant::now() < deadline {
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(LONGEST_RESEND_WAIT);
            let Ok(produce) = state.broker.admit() else { continue };
            match enqueue(&state, &event, &payload, &trace_id).await {
                Ok(()) => {
                    produce.succeeded();
                    tracing::info!(%trace_id, %request_id, "an issue request of unknown outcome is queued now");
                    metrics::counter!("coupon_issue_resent_total").increment(1);
                    return;
                }
                Err(error) => {
                    failed(&state, produce);
                    tracing::warn!(%error, %request_id, "sending an issue request of unknown outcome again failed");
                }
            }
        }
        tracing::error!(%request_id, "gave up sending an issue request of unknown outcome; its place stays in flight");
    });
}

/// A produce that failed: counted against the broker's breaker; once it is open, the producer is made
/// anew, so that the next try does not wait on a connection the dead path left stuck.
pub(super) fn failed(state: &AppState, produce: infra::breaker::Ticket<'_>) {
    produce.failed();
    if state.broker.state() == "open" {
        state.producer.renew();
    }
}

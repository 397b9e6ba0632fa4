//! The transactional outbox's write side: an event row written in the same transaction as the change it
//! announces, so the event exists exactly when the change does. The relay (settle-workers) publishes it.

mod envelope;
pub mod parked;

pub use envelope::{Envelope, EVENT_ID_HEADER, EVENT_TYPE_HEADER};

use sqlx::PgExecutor;
use uuid::Uuid;

pub struct NewEvent<'a> {
    pub aggregate_type: &'a str,
    pub aggregate_id: String,
    pub event_type: &'a str,
    pub payload: serde_json::Value,
    pub trace_id: Option<&'a str>,
}

/// Appends `event` and returns its event id (what consumers deduplicate on).
///
/// Per-aggregate order relies on the caller holding the aggregate's row lock (balance, coupon) before it
/// appends: a later change of the same aggregate then gets a higher id *and* commits later.
pub async fn append<'e>(executor: impl PgExecutor<'e>, event: NewEvent<'_>) -> sqlx::Result<Uuid> {
    let event_id = Uuid::new_v4();
    sqlx::query(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(event_id)
    .bind(event.aggregate_type)
    .bind(&event.aggregate_id)
    .bind(event.event_type)
    .bind(&event.payload)
    .bind(event.trace_id)
    .execute(executor)
    .await?;
    Ok(event_id)
}

//! The transactional outbox's write side: an event row written in the same transaction as the change it
//! announces, so the event exists exactly when the change does. The relay (settle-workers) publishes it.

mod envelope;
pub mod parked;

pub use envelope::{Envelope, EVENT_ID_HEADER, EVENT_TYPE_HEADER};

use sqlx::PgExecutor;
use uuid::Uuid;

/// The aggregates whose events leave through the outbox; each has its topic (`Topic::for_aggregate`).
/// Stored as text so that a row of a type this build does not know is parked by the relay, not a
/// claim that fails to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aggregate {
    Points,
    Coupon,
    Order,
}

impl Aggregate {
    pub const ALL: [Aggregate; 3] = [Aggregate::Points, Aggregate::Coupon, Aggregate::Order];

    pub fn as_str(self) -> &'static str {
        match self {
            Aggregate::Points => "points",
            Aggregate::Coupon => "coupon",
            Aggregate::Order => "order",
        }
    }

    /// The aggregate a stored `aggregate_type` names, if this build knows it.
    pub fn parse(stored: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|aggregate| aggregate.as_str() == stored)
    }
}

pub struct NewEvent<'a> {
    pub aggregate: Aggregate,
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
    sqlx::query!(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
         VALUES ($1, $2, $3, $4, $5, $6)",
        event_id,
        event.aggregate.as_str(),
        event.aggregate_id,
        event.event_type,
        event.payload,
        event.trace_id
    )
    .execute(executor)
    .await?;
    Ok(event_id)
}

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

/// Appends `events` in one statement, in the order given (a bulk job's events: one round trip, one
/// wake-up of the relays). The caller holds each aggregate's row lock, as for [`append`].
pub async fn append_all<'e>(executor: impl PgExecutor<'e>, events: &[NewEvent<'_>]) -> sqlx::Result<u64> {
    let count = events.len();
    let (mut ids, mut types, mut aggregates, mut kinds, mut payloads, mut traces) = (
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
        Vec::with_capacity(count),
    );
    for event in events {
        ids.push(Uuid::new_v4());
        types.push(event.aggregate.as_str());
        aggregates.push(event.aggregate_id.as_str());
        kinds.push(event.event_type);
        payloads.push(&event.payload);
        traces.push(event.trace_id);
    }
    let inserted = sqlx::query!(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
         SELECT event_id, aggregate_type, aggregate_id, event_type, payload, trace_id
         FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::jsonb[], $6::text[]) WITH ORDINALITY
           AS e(event_id, aggregate_type, aggregate_id, event_type, payload, trace_id, n) ORDER BY n",
        &ids,
        &types as &[&str],
        &aggregates as &[&str],
        &kinds as &[&str],
        &payloads as &[&serde_json::Value],
        &traces as &[Option<&str>],
    )
    .execute(executor)
    .await?;
    Ok(inserted.rows_affected())
}

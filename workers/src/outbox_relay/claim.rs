//! The relay's side of the outbox table: claim a batch, then record what the broker confirmed.
//!
//! Per-aggregate order with several relays: every aggregate hashes to one of [`LANES`] lanes, and a claim
//! first takes transaction-scoped advisory locks on lanes that have work. Only the holder of a lane
//! publishes its rows, oldest first, and it releases the lane only by committing, after every delivery
//! report of its batch is in. Relays holding different lanes work in parallel; rows are then claimed
//! `FOR UPDATE SKIP LOCKED`, so nothing else (cleanup, an operator's script) can take them meanwhile.
//!
//! Which lanes: those whose oldest unsent row is oldest come first (no lane starves behind busier ones),
//! and a claim takes only as many as it needs to fill its batch. With a backlog that is one or two lanes,
//! leaving the rest to other relays; when the relay keeps up it is every lane with work, so one round
//! trip publishes everything pending.

use chrono::{DateTime, Utc};
use sqlx::{PgConnection, Postgres, Transaction};
use uuid::Uuid;

/// How many lanes the aggregates are spread over (a power of two: the lane is a hash masked by LANES-1).
pub const LANES: i32 = 16;
/// First key of the two-key advisory locks; the second is the lane.
const LANE_LOCK_SPACE: i32 = 0x5e77_00b0;
/// How many of the oldest unsent rows are looked at to find lanes with work, per row of the batch.
const LANE_SCAN_PER_ROW: i64 = 2;

// Both statements below spell out the lane expression `(hashtext(aggregate_id) & 15)` (not a
// parameter) so the planner matches the lane index of migration 6; `LANES - 1` must equal its mask (a
// test checks the migration). Rows a relay may publish: unsent, and not of an aggregate with a parked row
// (a parked row is itself unsent; later rows of its aggregate wait behind it so the aggregate's order
// holds). Parked rows are few, so the NOT IN is one hashed scan of their partial index per statement.

#[derive(Debug)]
pub struct Claimed {
    pub id: i64,
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub payload: serde_json::Value,
    pub trace_id: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Up to `limit` unsent rows of lanes this transaction now owns, oldest first; empty when there is no work
/// or other relays hold every lane that has some.
pub async fn claim(tx: &mut Transaction<'_, Postgres>, limit: i64) -> sqlx::Result<Vec<Claimed>> {
    let connection: &mut PgConnection = tx;
    // Walks the lanes that have work in order of their oldest row, trying each lane's lock, until the
    // lanes it got cover the batch. A recursive walk because what a relay still needs depends on which
    // locks it got: lanes another relay holds must not count towards this one's batch (or a second relay
    // would find "enough" work ahead of it and claim nothing). Each locked lane comes with how many rows
    // to take: its rows among the oldest, up to what the batch still needs, so a claim never locks more
    // than it returns. The lock call sits in a LATERAL subquery, which PostgreSQL never inlines because it
    // is volatile: one attempt per lane visited.
    let lanes = sqlx::query!(
        r#"WITH RECURSIVE oldest AS (
               SELECT id, (hashtext(aggregate_id) & 15) AS lane FROM outbox_events
               WHERE sent_at IS NULL AND (aggregate_type, aggregate_id) NOT IN
                     (SELECT aggregate_type, aggregate_id FROM outbox_events WHERE parked_at IS NOT NULL)
               ORDER BY id LIMIT $3
           ), pending AS (
               SELECT lane, count(*) AS pending, row_number() OVER (ORDER BY min(id)) AS rn FROM oldest GROUP BY lane
           ), walk (rn, lane, take, taken) AS (
               SELECT 0::bigint, NULL::int, 0::bigint, 0::bigint
               UNION ALL
               SELECT p.rn, p.lane, t.take, w.taken + t.take
               FROM walk w JOIN pending p ON p.rn = w.rn + 1
               CROSS JOIN LATERAL (
                   SELECT CASE WHEN pg_try_advisory_xact_lock($1, p.lane) THEN LEAST(p.pending, $2 - w.taken)
                               ELSE 0::bigint END AS take
               ) t
               WHERE w.taken < $2
           )
           SELECT lane AS "lane!", take AS "take!" FROM walk WHERE take > 0"#,
        LANE_LOCK_SPACE,
        limit,
        limit.saturating_mul(LANE_SCAN_PER_ROW),
    )
    .fetch_all(&mut *connection)
    .await?;
    if lanes.is_empty() {
        return Ok(Vec::new());
    }
    let (lanes, takes): (Vec<i32>, Vec<i64>) = lanes.into_iter().map(|lane| (lane.lane, lane.take)).unzip();
    // One ordered range of the lane index per lane, so the claim reads only the rows it returns.
    sqlx::query_as!(
        Claimed,
        r#"SELECT c.id AS "id!", c.event_id AS "event_id!", c.aggregate_type AS "aggregate_type!",
                  c.aggregate_id AS "aggregate_id!", c.event_type AS "event_type!", c.payload AS "payload!",
                  c.trace_id, c.created_at AS "created_at!"
           FROM unnest($1::int[], $2::bigint[]) AS lanes(lane, take) CROSS JOIN LATERAL (
               SELECT id, event_id, aggregate_type, aggregate_id, event_type, payload, trace_id, created_at
               FROM outbox_events
               WHERE sent_at IS NULL AND (aggregate_type, aggregate_id) NOT IN
                     (SELECT aggregate_type, aggregate_id FROM outbox_events WHERE parked_at IS NOT NULL)
                 AND (hashtext(aggregate_id) & 15) = lanes.lane
               ORDER BY id LIMIT lanes.take
               FOR UPDATE SKIP LOCKED
           ) c ORDER BY c.id"#,
        &lanes,
        &takes,
    )
    .fetch_all(connection)
    .await
}

/// Marks rows whose delivery the broker confirmed; `sent_at` is the confirmation time, not the claim's.
pub async fn mark_sent(tx: &mut Transaction<'_, Postgres>, ids: &[i64]) -> sqlx::Result<()> {
    if ids.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "UPDATE outbox_events SET sent_at = clock_timestamp(), attempts = attempts + 1, last_error = NULL
         WHERE id = ANY($1)",
        ids
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// A row parked by [`record_failures`]: what an operator needs to find it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parked {
    pub id: i64,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub attempts: i32,
    pub last_error: Option<String>,
}

/// Counts a failed attempt on each row and keeps the broker's reason for operators; a row reaching
/// `max_attempts` is parked, and the parked rows are returned.
pub async fn record_failures(
    tx: &mut Transaction<'_, Postgres>,
    failures: &[(i64, String)],
    max_attempts: i32,
) -> sqlx::Result<Vec<Parked>> {
    if failures.is_empty() {
        return Ok(Vec::new());
    }
    let (ids, errors): (Vec<i64>, Vec<&str>) = failures.iter().map(|(id, error)| (*id, error.as_str())).unzip();
    let updated = sqlx::query!(
        r#"UPDATE outbox_events o SET attempts = o.attempts + 1, last_error = f.error,
              parked_at = CASE WHEN o.attempts + 1 >= $3 THEN clock_timestamp() END
           FROM unnest($1::bigint[], $2::text[]) AS f(id, error) WHERE o.id = f.id
           RETURNING o.id, o.aggregate_type, o.aggregate_id, o.attempts, o.last_error,
                     o.parked_at IS NOT NULL AS "parked!""#,
        &ids,
        &errors as &[&str],
        max_attempts,
    )
    .fetch_all(&mut **tx)
    .await?;
    Ok(updated
        .into_iter()
        .filter(|row| row.parked)
        .map(|row| Parked {
            id: row.id,
            aggregate_type: row.aggregate_type,
            aggregate_id: row.aggregate_id,
            attempts: row.attempts,
            last_error: row.last_error,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_lane_index_and_the_claim_mask_with_lanes_minus_one() {
        let mask = format!("(hashtext(aggregate_id) & {})", super::LANES - 1);
        let migration = include_str!("../../../migrations/20261126000006_outbox_lane_index.sql");
        let claim = include_str!("claim.rs");
        assert!(migration.contains(&mask), "the lane index is not on {mask}");
        assert_eq!(claim.matches(&mask).count(), 3, "the note above and both statements spell out {mask}");
    }
}

//! Advance notices of expiring points: 60, 30 and 3 days before a date on which some of a user's points
//! expire (the schedule Korean shops agreed with the fair-trade regulator), one `PointsExpiringSoon`
//! event per user, date and step however often the job runs.

use crate::outbox::{self, Aggregate, NewEvent};
use chrono::{DateTime, NaiveDate, Utc};
use serde_json::json;
use sqlx::{Postgres, Transaction};

/// How far ahead the first notice goes out.
pub const FIRST_NOTICE_DAYS: u32 = 60;

/// One notice sent.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct Notice {
    pub user_id: i64,
    pub expires_on: NaiveDate,
    pub days_before: i16,
    pub amount: i64,
}

/// The dates the notices of a run on `today` cover: expiries from the start of tomorrow to the start of
/// the day [`FIRST_NOTICE_DAYS`] after it, in the business time zone (as instants, for the lots' index).
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub today: NaiveDate,
    pub from: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

/// Sends, to the users of hash partition `partition`, the notices due `window.today`: for each date in
/// the window on which some of their points expire, the most urgent step that date has reached (45 days
/// away: the 60-day notice; 20 days away: the 30-day one; 3 or fewer: the 3-day one), unless it went out
/// before. Notices are not balance changes: they take no balance lock, so their events may interleave
/// with the user's ledger events in any order.
pub async fn send_due(
    tx: &mut Transaction<'_, Postgres>,
    partition: i32,
    window: Window,
    timezone: &str,
    trace_id: Option<&str>,
) -> sqlx::Result<Vec<Notice>> {
    // Not a macro: the partition is part of the table name (its own expiry index, not all sixteen).
    let sent: Vec<Notice> = sqlx::query_as(&format!(
        "WITH expiring AS (
           SELECT user_id, (expires_at AT TIME ZONE $1)::date AS expires_on, sum(remaining)::bigint AS amount
           FROM point_lots_p{partition}
           WHERE remaining > 0 AND expires_at >= $2 AND expires_at < $3
           GROUP BY 1, 2)
         INSERT INTO point_expiry_notices (user_id, expires_on, days_before, amount)
         SELECT user_id, expires_on,
                CASE WHEN expires_on - $4 <= 3 THEN 3 WHEN expires_on - $4 <= 30 THEN 30 ELSE 60 END, amount
         FROM expiring
         ON CONFLICT DO NOTHING
         RETURNING user_id, expires_on, days_before, amount"
    ))
    .bind(timezone)
    .bind(window.from)
    .bind(window.until)
    .bind(window.today)
    .fetch_all(&mut **tx)
    .await?;
    let events: Vec<NewEvent> = sent
        .iter()
        .map(|notice| NewEvent {
            aggregate: Aggregate::Points,
            aggregate_id: notice.user_id.to_string(),
            event_type: "PointsExpiringSoon",
            payload: json!({
                "userId": notice.user_id,
                "amount": notice.amount,
                "expiresOn": notice.expires_on,
                "daysBefore": notice.days_before,
            }),
            trace_id,
        })
        .collect();
    outbox::append_all(&mut **tx, &events).await?;
    Ok(sent)
}

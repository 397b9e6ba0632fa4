//! Settled days as operators read them: the console's Settlement page and a day's lines as CSV. The
//! settle-sales and reconcile-payments jobs write these tables; nothing here changes them.

use chrono::{DateTime, NaiveDate, Utc};
use domain::settlement::LineAmounts;
use futures::StreamExt;
use sqlx::PgPool;

/// A business day a settle-sales run reached, with its totals (signed: reversals count negative).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Day {
    pub business_date: NaiveDate,
    pub status: String,
    pub sales: i64,
    pub reversals: i64,
    pub amounts: LineAmounts,
    pub closed_at: Option<DateTime<Utc>>,
    /// Payments the provider's records and ours disagree on, at the day's latest reconciliation.
    pub mismatches: i64,
}

/// The latest `limit` days, newest first.
pub async fn days(pool: &PgPool, limit: i64) -> sqlx::Result<Vec<Day>> {
    days_matching(pool, None, limit).await
}

/// One day, if a run reached it.
pub async fn day(pool: &PgPool, date: NaiveDate) -> sqlx::Result<Option<Day>> {
    Ok(days_matching(pool, Some(date), 1).await?.into_iter().next())
}

async fn days_matching(pool: &PgPool, only: Option<NaiveDate>, limit: i64) -> sqlx::Result<Vec<Day>> {
    let rows = sqlx::query!(
        r#"SELECT d.business_date, d.status, d.sales, d.reversals, d.gross, d.coupon_discount, d.points, d.paid,
                  d.fee, d.net, d.closed_at,
                  (SELECT count(*) FROM payment_reconciliation_mismatches m
                   WHERE m.business_date = d.business_date
                     AND m.execution_id = (SELECT max(execution_id) FROM payment_reconciliation_mismatches l
                                           WHERE l.business_date = d.business_date)) AS "mismatches!"
           FROM settlement_days d WHERE ($1::date IS NULL OR d.business_date = $1)
           ORDER BY d.business_date DESC LIMIT $2"#,
        only,
        limit
    )
    .fetch_all(pool)
    .await?;
    let days = rows.into_iter().map(|row| Day {
        amounts: amounts((row.gross, row.coupon_discount, row.points, row.paid, row.fee, row.net)),
        business_date: row.business_date,
        status: row.status,
        sales: row.sales,
        reversals: row.reversals,
        closed_at: row.closed_at,
        mismatches: row.mismatches,
    });
    Ok(days.collect())
}

/// A day's totals for one payment method, or one product option (`key` names which).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub key: String,
    /// Lines for a method, units for an option.
    pub count: i64,
    pub amounts: LineAmounts,
}

/// The rows of a summary query (a key, a count and the six amount columns) as totals.
macro_rules! totals {
    ($rows:expr) => {
        $rows
            .into_iter()
            .map(|row| Totals {
                amounts: amounts((row.gross, row.coupon_discount, row.points, row.paid, row.fee, row.net)),
                key: row.key,
                count: row.count,
            })
            .collect()
    };
}

/// gross, coupon_discount, points, paid, fee, net: the amount columns every settlement table carries.
type AmountColumns = (i64, i64, i64, i64, i64, i64);

/// The six amount columns every settlement table carries, in their order.
fn amounts((gross, coupon_discount, points, paid, fee, net): AmountColumns) -> LineAmounts {
    LineAmounts { gross, coupon_discount, points, paid, fee, net }
}

pub async fn by_method(pool: &PgPool, date: NaiveDate) -> sqlx::Result<Vec<Totals>> {
    let rows = sqlx::query!(
        r#"SELECT payment_method AS key, lines AS count, gross, coupon_discount, points, paid, fee, net
           FROM settlement_summary_by_method WHERE business_date = $1 ORDER BY paid DESC, payment_method"#,
        date
    )
    .fetch_all(pool)
    .await?;
    Ok(totals!(rows))
}

/// The day's `limit` options with the most paid, named by product and option.
pub async fn by_option(pool: &PgPool, date: NaiveDate, limit: i64) -> sqlx::Result<Vec<Totals>> {
    let rows = sqlx::query!(
        r#"SELECT coalesce(p.name || ' · ' || o.name, 'option ' || s.option_id) AS "key!", s.quantity AS count,
                  s.gross, s.coupon_discount, s.points, s.paid, s.fee, s.net
           FROM settlement_summary_by_option s
             LEFT JOIN product_options o ON o.id = s.option_id LEFT JOIN products p ON p.id = s.product_id
           WHERE s.business_date = $1 ORDER BY s.paid DESC, s.option_id LIMIT $2"#,
        date,
        limit
    )
    .fetch_all(pool)
    .await?;
    Ok(totals!(rows))
}

/// One gate as the day's latest check found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gate {
    pub gate: String,
    pub passed: bool,
    pub expected: i64,
    pub actual: i64,
    pub detail: Option<String>,
    pub checked_at: DateTime<Utc>,
}

pub async fn gates(pool: &PgPool, date: NaiveDate) -> sqlx::Result<Vec<Gate>> {
    sqlx::query_as!(
        Gate,
        r#"SELECT gate, passed, expected, actual, detail, checked_at FROM settlement_gate_results
           WHERE business_date = $1
             AND execution_id = (SELECT max(execution_id) FROM settlement_gate_results WHERE business_date = $1)
           ORDER BY id"#,
        date
    )
    .fetch_all(pool)
    .await
}

/// A payment the provider's records and ours disagree on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    pub kind: String,
    pub payment_key: String,
    pub event: String,
    pub order_id: Option<i64>,
    pub our_amount: Option<i64>,
    pub their_amount: Option<i64>,
    pub expected_fee: Option<i64>,
    pub their_fee: Option<i64>,
}

/// The mismatches of the day's latest payment reconciliation.
pub async fn mismatches(pool: &PgPool, date: NaiveDate, limit: i64) -> sqlx::Result<Vec<Mismatch>> {
    sqlx::query_as!(
        Mismatch,
        r#"SELECT kind, payment_key, event, order_id, our_amount, their_amount, expected_fee, their_fee
           FROM payment_reconciliation_mismatches
           WHERE business_date = $1
             AND execution_id = (SELECT max(execution_id) FROM payment_reconciliation_mismatches
                                 WHERE business_date = $1)
           ORDER BY id LIMIT $2"#,
        date,
        limit
    )
    .fetch_all(pool)
    .await
}

/// The day's lines as CSV with a header row, streamed by PostgreSQL's COPY: a day of millions of lines is
/// never held in memory. The chunks arrive on the returned channel; an error ends it early.
pub fn lines_csv(pool: PgPool, date: NaiveDate) -> tokio::sync::mpsc::Receiver<Result<bytes::Bytes, sqlx::Error>> {
    let (sender, receiver) = tokio::sync::mpsc::channel(8);
    tokio::spawn(async move {
        // The date is a NaiveDate, printed by chrono: nothing of the caller's reaches the statement's text.
        let statement = format!(
            "COPY (SELECT business_date, event, order_id, option_id, product_id, quantity, unit_price, gross,
                          coupon_discount, points, paid, payment_method, payment_key, fee_rate_bps, fee, net,
                          execution_id
                   FROM settlement_lines WHERE business_date = DATE '{date}' ORDER BY order_id, option_id, event)
             TO STDOUT WITH (FORMAT csv, HEADER true)"
        );
        let mut connection = match pool.acquire().await {
            Ok(connection) => connection,
            Err(error) => return drop(sender.send(Err(error)).await),
        };
        let mut chunks = match connection.copy_out_raw(&statement).await {
            Ok(chunks) => chunks,
            Err(error) => return drop(sender.send(Err(error)).await),
        };
        while let Some(chunk) = chunks.next().await {
            let failed = chunk.is_err();
            // The client went away: stop reading.
            if sender.send(chunk).await.is_err() || failed {
                return;
            }
        }
    });
    receiver
}

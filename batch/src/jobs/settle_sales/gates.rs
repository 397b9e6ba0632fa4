//! The day's status and the gates that must hold before it closes. Each gate compares the day's lines
//! with a source the lines were not computed from (the orders' amounts, the coupons' policies, the point
//! ledger, the status history), so a line lost, doubled, planted or split wrongly shows.

use super::summary::LineTotals;
use crate::jobs::terms::Day;
use chrono::NaiveDate;
use sqlx::PgPool;

/// One gate's verdict: held when what was found is what was expected (and, for "settled once", the
/// fingerprints agree too).
#[derive(Debug)]
pub struct GateResult {
    pub name: &'static str,
    pub expected: i64,
    pub actual: i64,
    pub held: bool,
    pub detail: String,
}

impl GateResult {
    fn comparing(name: &'static str, expected: i64, actual: i64, detail: String) -> Self {
        GateResult { name, expected, actual, held: expected == actual, detail }
    }
}

pub async fn day_is_closed(pool: &PgPool, date: NaiveDate) -> sqlx::Result<bool> {
    let status = sqlx::query_scalar!("SELECT status FROM settlement_days WHERE business_date = $1", date)
        .fetch_optional(pool)
        .await?;
    Ok(status.as_deref() == Some("CLOSED"))
}

/// Marks the day OPEN for this execution (a FAILED day is opened again; a CLOSED one never).
pub async fn open_day(pool: &PgPool, day: &Day, timezone: &str, execution: i64) -> sqlx::Result<()> {
    sqlx::query!(
        "INSERT INTO settlement_days (business_date, status, timezone, execution_id) VALUES ($1, 'OPEN', $2, $3)
         ON CONFLICT (business_date) DO UPDATE SET status = 'OPEN', execution_id = excluded.execution_id,
             updated_at = now()
         WHERE settlement_days.status <> 'CLOSED'",
        day.date,
        timezone,
        execution
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// Checks every gate of the day (`sources` against the sums of its `lines`) and records each result.
pub async fn check(
    pool: &PgPool,
    day: &Day,
    execution: i64,
    sources: Sources,
    lines: LineTotals,
) -> anyhow::Result<Vec<GateResult>> {
    let results = evaluate(pool, day, sources, lines).await?;
    record(pool, day.date, execution, &results).await?;
    Ok(results)
}

/// Every gate's verdict on `lines`, recording nothing.
pub async fn evaluate(
    pool: &PgPool,
    day: &Day,
    sources: Sources,
    lines: LineTotals,
) -> anyhow::Result<Vec<GateResult>> {
    let once = match &lines.fingerprint {
        Some(fingerprint) if sources.items == lines.lines && *fingerprint == sources.fingerprint => {
            GateResult::comparing(
                "orders_settled_once",
                sources.items,
                lines.lines,
                format!("the day's {} lines are its recognised items (count and fingerprint agree)", lines.lines),
            )
        }
        Some(_) => settled_once_in_detail(pool, day).await?,
        None => GateResult::comparing(
            "orders_settled_once",
            sources.items,
            lines.lines,
            "as many lines as recognised items (counts only: some lines were computed, not written)".into(),
        ),
    };
    let results = vec![
        GateResult::comparing(
            "lines_match_orders",
            sources.orders_paid,
            lines.paid,
            "Σ paid of the day's lines = Σ amount paid of orders confirmed − orders reversed".into(),
        ),
        GateResult::comparing(
            "coupon_lines_match_coupons",
            sources.orders_coupons,
            lines.coupon_discount,
            "Σ coupon discount of the lines = Σ discount their coupons' policies give".into(),
        ),
        GateResult::comparing(
            "point_lines_match_ledger",
            sources.ledger_points,
            lines.points,
            "Σ points of the lines = Σ of the ledger USE entries the orders link".into(),
        ),
        once,
    ];
    Ok(results)
}

/// What the gates compare the lines with, from one read of the day's recognised orders: their amounts,
/// their coupons' discounts, their ledger entries, and the count and fingerprint of their items. Read
/// while the lines are summed (they read other tables: on two cores the conclusion takes the longer of
/// the two, not their sum).
pub struct Sources {
    orders_paid: i64,
    orders_coupons: i64,
    ledger_points: i64,
    items: i64,
    fingerprint: String,
}

pub async fn read_sources(pool: &PgPool, day: &Day) -> sqlx::Result<Sources> {
    let row = sqlx::query!(
        r#"WITH recognised AS MATERIALIZED (
               SELECT h.order_id, CASE WHEN h.to_status = 'CONFIRMED' THEN 1 ELSE -1 END AS sign
               FROM order_status_history h
               WHERE h.changed_at >= $1 AND h.changed_at < $2
                 AND (h.to_status = 'CONFIRMED' OR (h.from_status = 'CONFIRMED' AND h.to_status = 'REFUNDED'))),
           orders_side AS (
               SELECT coalesce(sum(r.sign * o.amount_to_pay), 0)::bigint AS paid,
                      -- As domain::shop::pricing gives it: the policy's discount, capped, at most the subtotal
                      -- (LEAST skips NULLs, so an order without a coupon is 0 explicitly).
                      coalesce(sum(r.sign * CASE WHEN p.id IS NULL THEN 0 ELSE least(
                          CASE p.discount_type WHEN 'FIXED_AMOUNT' THEN p.discount_value
                                               ELSE o.subtotal * p.discount_value / 100 END,
                          coalesce(p.maximum_discount_amount, o.subtotal), o.subtotal) END), 0)::bigint AS coupons,
                      coalesce(sum(r.sign * coalesce(-pt.amount, 0)), 0)::bigint AS points
               FROM recognised r
               JOIN orders o ON o.id = r.order_id
               LEFT JOIN coupons c ON c.id = o.coupon_id
               LEFT JOIN coupon_policies p ON p.id = c.policy_id
               LEFT JOIN points pt ON pt.user_id = o.user_id AND pt.id = o.point_use_id AND pt.kind = 'USE'),
           items_side AS (
               SELECT count(*) AS items,
                      coalesce(sum(settlement_item_fingerprint(i.order_id, i.option_id,
                          CASE r.sign WHEN 1 THEN 'SALE' ELSE 'REVERSAL' END)), 0)::text AS fingerprint
               FROM recognised r JOIN order_items i ON i.order_id = r.order_id)
           SELECT paid AS "orders_paid!", coupons AS "orders_coupons!", points AS "ledger_points!",
                  items AS "items!", fingerprint AS "fingerprint!"
           FROM orders_side, items_side"#,
        day.start,
        day.end
    )
    .fetch_one(pool)
    .await?;
    Ok(Sources {
        orders_paid: row.orders_paid,
        orders_coupons: row.orders_coupons,
        ledger_points: row.ledger_points,
        items: row.items,
        fingerprint: row.fingerprint,
    })
}

/// The "settled once" gate when count or fingerprint differ: the day's recognised items joined with its
/// lines, to count the ones matched and the stray (the missing are the rest).
async fn settled_once_in_detail(pool: &PgPool, day: &Day) -> sqlx::Result<GateResult> {
    let once = sqlx::query!(
        r#"WITH recognised AS (
               SELECT i.order_id, i.option_id, CASE WHEN h.to_status = 'CONFIRMED' THEN 'SALE' ELSE 'REVERSAL' END AS event
               FROM order_status_history h JOIN order_items i ON i.order_id = h.order_id
               WHERE h.changed_at >= $2 AND h.changed_at < $3
                 AND (h.to_status = 'CONFIRMED' OR (h.from_status = 'CONFIRMED' AND h.to_status = 'REFUNDED'))),
           lines AS (SELECT order_id, option_id, event FROM settlement_lines WHERE business_date = $1)
           SELECT count(r.order_id) AS "expected!",
                  count(*) FILTER (WHERE r.order_id IS NOT NULL AND l.order_id IS NOT NULL) AS "matched!",
                  count(*) FILTER (WHERE r.order_id IS NULL) AS "stray!"
           FROM recognised r
           FULL JOIN lines l ON l.order_id = r.order_id AND l.option_id = r.option_id AND l.event = r.event"#,
        day.date,
        day.start,
        day.end
    )
    .fetch_one(pool)
    .await?;
    // Reached only when count or fingerprint differ, so it never holds; a stray line (no recognised item
    // of the day) counts against the day like a missing one.
    Ok(GateResult {
        name: "orders_settled_once",
        expected: once.expected,
        actual: once.matched - once.stray,
        held: false,
        detail: format!(
            "every item of the day's recognised orders has its line on this day, once ({} items, {} lines \
             match, {} lines stray; count or fingerprint differ)",
            once.expected, once.matched, once.stray
        ),
    })
}

async fn record(pool: &PgPool, date: NaiveDate, execution: i64, results: &[GateResult]) -> sqlx::Result<()> {
    let names: Vec<String> = results.iter().map(|r| r.name.to_owned()).collect();
    let passed: Vec<bool> = results.iter().map(|r| r.held).collect();
    let expected: Vec<i64> = results.iter().map(|r| r.expected).collect();
    let actual: Vec<i64> = results.iter().map(|r| r.actual).collect();
    let detail: Vec<String> = results.iter().map(|r| r.detail.clone()).collect();
    sqlx::query!(
        "INSERT INTO settlement_gate_results (business_date, execution_id, gate, passed, expected, actual, detail)
         SELECT $1, $2, * FROM unnest($3::text[], $4::bool[], $5::bigint[], $6::bigint[], $7::text[])",
        date,
        execution,
        &names,
        &passed,
        &expected,
        &actual,
        &detail
    )
    .execute(pool)
    .await?;
    Ok(())
}

/// CLOSED when every gate held (final), else FAILED (its totals were written with its summaries).
pub async fn close_or_fail(pool: &PgPool, date: NaiveDate, execution: i64, passed: bool) -> sqlx::Result<()> {
    sqlx::query!(
        "UPDATE settlement_days SET status = CASE WHEN $3 THEN 'CLOSED' ELSE 'FAILED' END,
                closed_at = CASE WHEN $3 THEN now() END, execution_id = $2, updated_at = now()
         WHERE business_date = $1 AND status <> 'CLOSED'",
        date,
        execution,
        passed
    )
    .execute(pool)
    .await?;
    Ok(())
}

pub fn print(results: &[GateResult]) {
    for gate in results {
        let verdict = if gate.held { "held" } else { "FAILED" };
        println!("  gate {:<27} {verdict:>6}: expected {}, found {}", gate.name, gate.expected, gate.actual);
        if !gate.held {
            println!("       {}", gate.detail);
        }
    }
}

//! The day's status and the gates that must hold before it closes. Each gate compares the day's lines
//! with a source the lines were not computed from (the orders' amounts, the coupons' policies, the point
//! ledger, the status history), so a line lost, doubled, planted or split wrongly shows.

use super::summary::LineTotals;
use crate::jobs::terms::Day;
use chrono::NaiveDate;
use sqlx::PgPool;

/// One gate's verdict.
#[derive(Debug)]
pub struct GateResult {
    pub name: &'static str,
    pub expected: i64,
    pub actual: i64,
    pub detail: String,
}

impl GateResult {
    pub fn passed(&self) -> bool {
        self.expected == self.actual
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

/// Checks every gate of the day against the sums of its lines and records each result.
pub async fn check(pool: &PgPool, day: &Day, execution: i64, lines: LineTotals) -> anyhow::Result<Vec<GateResult>> {
    let amounts = sqlx::query!(
        r#"WITH recognised AS (
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
               LEFT JOIN points pt ON pt.user_id = o.user_id AND pt.id = o.point_use_id AND pt.kind = 'USE')
           SELECT paid AS "orders_paid!", coupons AS "orders_coupons!", points AS "ledger_points!" FROM orders_side"#,
        day.start,
        day.end
    )
    .fetch_one(pool)
    .await?;
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
    let results = vec![
        GateResult {
            name: "lines_match_orders",
            expected: amounts.orders_paid,
            actual: lines.paid,
            detail: "Σ paid of the day's lines = Σ amount paid of orders confirmed − orders reversed".into(),
        },
        GateResult {
            name: "coupon_lines_match_coupons",
            expected: amounts.orders_coupons,
            actual: lines.coupon_discount,
            detail: "Σ coupon discount of the lines = Σ discount their coupons' policies give".into(),
        },
        GateResult {
            name: "point_lines_match_ledger",
            expected: amounts.ledger_points,
            actual: lines.points,
            detail: "Σ points of the lines = Σ of the ledger USE entries the orders link".into(),
        },
        GateResult {
            name: "orders_settled_once",
            expected: once.expected,
            // A stray line (no recognised item of the day) counts against the day like a missing one.
            actual: once.matched - once.stray,
            detail: format!(
                "every item of the day's recognised orders has its line on this day ({} items, {} lines \
                 match, {} lines stray)",
                once.expected, once.matched, once.stray
            ),
        },
    ];
    record(pool, day.date, execution, &results).await?;
    Ok(results)
}

async fn record(pool: &PgPool, date: NaiveDate, execution: i64, results: &[GateResult]) -> sqlx::Result<()> {
    let names: Vec<String> = results.iter().map(|r| r.name.to_owned()).collect();
    let passed: Vec<bool> = results.iter().map(GateResult::passed).collect();
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
        let verdict = if gate.passed() { "held" } else { "FAILED" };
        println!("  gate {:<27} {verdict:>6}: expected {}, found {}", gate.name, gate.expected, gate.actual);
        if !gate.passed() {
            println!("       {}", gate.detail);
        }
    }
}

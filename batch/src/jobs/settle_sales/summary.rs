//! The day's summaries, rebuilt from its lines until the day closes: per product option, per payment
//! method (reversals count against the day they are recognised on) and the day's totals, all from one
//! scan of the lines (`GROUPING SETS`), whose grand total the gates then compare with their sources.

use super::lines::LineSums;
use chrono::NaiveDate;
use sqlx::PgPool;

/// The sums of all the day's lines, and their count and fingerprint (the exact sum of
/// `settlement_item_fingerprint` over them, as text; none for lines a dry run only computed) for the
/// "settled once" gate.
#[derive(Debug, Clone)]
pub struct LineTotals {
    pub paid: i64,
    pub coupon_discount: i64,
    pub points: i64,
    pub lines: i64,
    pub fingerprint: Option<String>,
}

impl LineTotals {
    /// These lines and `more` (computed by a dry run, never written), without a fingerprint: the
    /// settled-once gate then compares counts only.
    pub fn with_unwritten(&self, more: LineSums) -> LineTotals {
        LineTotals {
            paid: self.paid + more.total.paid,
            coupon_discount: self.coupon_discount + more.total.coupon_discount,
            points: self.points + more.total.points,
            lines: self.lines + more.lines,
            fingerprint: None,
        }
    }
}

/// Sums the day's lines once; with `rewrite` (never for a closed day, which is final), rewrites its
/// summaries and totals from that scan in the same transaction.
pub async fn rebuild(pool: &PgPool, date: NaiveDate, rewrite: bool) -> sqlx::Result<LineTotals> {
    let mut tx = pool.begin().await?;
    if rewrite {
        sqlx::query!("DELETE FROM settlement_summary_by_option WHERE business_date = $1", date)
            .execute(&mut *tx)
            .await?;
        sqlx::query!("DELETE FROM settlement_summary_by_method WHERE business_date = $1", date)
            .execute(&mut *tx)
            .await?;
    }
    // GROUPING(option_id, payment_method) tells the sets apart: 1 per option, 2 per method, 3 the day.
    let totals = sqlx::query!(
        r#"WITH sums AS (
               SELECT GROUPING(option_id, payment_method) AS level, option_id, payment_method,
                      min(product_id) AS product_id,
                      coalesce(sum(CASE event WHEN 'SALE' THEN quantity ELSE -quantity END), 0)::bigint AS quantity,
                      count(*) AS lines, count(*) FILTER (WHERE event = 'SALE') AS sales,
                      count(*) FILTER (WHERE event = 'REVERSAL') AS reversals,
                      coalesce(sum(gross), 0)::bigint AS gross, coalesce(sum(coupon_discount), 0)::bigint AS coupon_discount,
                      coalesce(sum(points), 0)::bigint AS points, coalesce(sum(paid), 0)::bigint AS paid,
                      coalesce(sum(fee), 0)::bigint AS fee, coalesce(sum(net), 0)::bigint AS net,
                      coalesce(sum(settlement_item_fingerprint(order_id, option_id, event)), 0)::text AS fingerprint
               FROM settlement_lines WHERE business_date = $1
               GROUP BY GROUPING SETS ((option_id), (payment_method), ())),
           by_option AS (
               INSERT INTO settlement_summary_by_option
                   (business_date, option_id, product_id, quantity, gross, coupon_discount, points, paid, fee, net)
               SELECT $1, option_id, product_id, quantity, gross, coupon_discount, points, paid, fee, net
               FROM sums WHERE level = 1 AND $2),
           by_method AS (
               INSERT INTO settlement_summary_by_method
                   (business_date, payment_method, lines, gross, coupon_discount, points, paid, fee, net)
               SELECT $1, payment_method, lines, gross, coupon_discount, points, paid, fee, net
               FROM sums WHERE level = 2 AND $2),
           day AS (
               UPDATE settlement_days d SET sales = s.sales, reversals = s.reversals, gross = s.gross,
                      coupon_discount = s.coupon_discount, points = s.points, paid = s.paid, fee = s.fee,
                      net = s.net, updated_at = now()
               FROM sums s WHERE s.level = 3 AND $2 AND d.business_date = $1 AND d.status <> 'CLOSED')
           SELECT paid AS "paid!", coupon_discount AS "coupon_discount!", points AS "points!", lines AS "lines!",
                  fingerprint AS "fingerprint!"
           FROM sums WHERE level = 3"#,
        date,
        rewrite
    )
    .fetch_one(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(LineTotals {
        paid: totals.paid,
        coupon_discount: totals.coupon_discount,
        points: totals.points,
        lines: totals.lines,
        fingerprint: Some(totals.fingerprint),
    })
}

//! The day's summaries, rebuilt from its lines until the day closes: per product option and per payment
//! method (reversals count against the day they are recognised on).

use chrono::NaiveDate;
use sqlx::PgPool;

pub async fn rebuild(pool: &PgPool, date: NaiveDate) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    sqlx::query!("DELETE FROM settlement_summary_by_option WHERE business_date = $1", date).execute(&mut *tx).await?;
    sqlx::query!("DELETE FROM settlement_summary_by_method WHERE business_date = $1", date).execute(&mut *tx).await?;
    sqlx::query!(
        "INSERT INTO settlement_summary_by_option
             (business_date, option_id, product_id, quantity, gross, coupon_discount, points, paid, fee, net)
         SELECT $1, option_id, min(product_id),
                sum(CASE event WHEN 'SALE' THEN quantity ELSE -quantity END), sum(gross), sum(coupon_discount),
                sum(points), sum(paid), sum(fee), sum(net)
         FROM settlement_lines WHERE business_date = $1 GROUP BY option_id",
        date
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "INSERT INTO settlement_summary_by_method
             (business_date, payment_method, lines, gross, coupon_discount, points, paid, fee, net)
         SELECT $1, payment_method, count(*), sum(gross), sum(coupon_discount), sum(points), sum(paid), sum(fee), sum(net)
         FROM settlement_lines WHERE business_date = $1 GROUP BY payment_method",
        date
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

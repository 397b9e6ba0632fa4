//! Orders written straight into a test's database, for the jobs that work on many of them (the API
//! makes orders one by one; a job's test needs them in a given state at a given time).

use sqlx::PgPool;

/// A buyer (a users row) of its own; returns the id.
pub async fn buyer(pool: &PgPool) -> i64 {
    let email = format!("buyer-{}@settle.test", crate::unique_suffix());
    sqlx::query_scalar(
        "INSERT INTO users (email, password_hash, name, role) VALUES ($1, 'x', 'Buyer', 'USER') RETURNING id",
    )
    .bind(email)
    .fetch_one(pool)
    .await
    .expect("inserting a buyer")
}

/// `count` orders of `buyer` paying `amount` each, DELIVERED `days_ago` days before now (shipped and
/// paid the day before); returns their ids in order. They hold no items, coupon nor points: the moves a
/// job makes on delivered orders give nothing back.
pub async fn delivered(pool: &PgPool, buyer: i64, count: i64, amount: i64, days_ago: i64) -> Vec<i64> {
    sqlx::query_scalar(
        "INSERT INTO orders (user_id, status, subtotal, coupon_discount, points_used, amount_to_pay, receiver_name,
                             phone, address, payment_method, payment_due_at, paid_at, carrier, tracking_number,
                             delivered_at, created_at)
         SELECT $1, 'DELIVERED', $3, 0, 0, $3, 'Buyer', '010-0000-0000', '1 Test-ro', 'CARD',
                now() - make_interval(days => $4 + 2), now() - make_interval(days => $4 + 2), 'CJ Logistics', 'T' || n,
                now() - make_interval(days => $4), now() - make_interval(days => $4 + 2)
         FROM generate_series(1, $2) AS n ORDER BY n RETURNING id",
    )
    .bind(buyer)
    .bind(count)
    .bind(amount)
    .bind(days_ago as i32)
    .fetch_all(pool)
    .await
    .expect("inserting delivered orders")
}

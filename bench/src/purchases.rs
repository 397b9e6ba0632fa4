//! The clock-driven order jobs' loads: `seed-purchases` writes orders straight into the database in the
//! state a job works on (DELIVERED a week ago, or PENDING_PAYMENT past its window with one item and no
//! payment attempt), and `expire` runs the expiry's bulk step until nothing is due, as the
//! payment-resolution worker would, timing it. What `scripts/bench-orders` drives.

use futures::future::try_join_all;
use infra::{
    config::PostgresArgs,
    shop::orders::{expire_unattempted, BulkActor, OrderActor},
};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct SeedPurchasesArgs {
    /// DELIVERED orders, delivered 8 days ago (due for auto-confirmation).
    #[arg(long, default_value_t = 0)]
    delivered: i64,
    /// PENDING_PAYMENT orders past their window, one unit of an option each (due for expiry).
    #[arg(long, default_value_t = 0)]
    unpaid: i64,
    /// The unpaid orders' options: order n takes one unit of `first_option + n mod (last - first + 1)`.
    #[arg(long, default_value_t = 0)]
    first_option: i64,
    #[arg(long, default_value_t = 0)]
    last_option: i64,
    /// Buyers the orders are spread over.
    #[arg(long, default_value_t = 1_000)]
    buyers: i64,
}

pub async fn seed(postgres: &PostgresArgs, args: SeedPurchasesArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let tag = uuid::Uuid::new_v4().simple().to_string();
    let first_buyer: i64 = sqlx::query_scalar(
        "WITH made AS (INSERT INTO users (email, password_hash, name, role)
                       SELECT 'purchases-' || $1 || '-' || n || '@bench.test', 'x', 'Buyer', 'USER'
                       FROM generate_series(1, $2) AS n RETURNING id)
         SELECT min(id) FROM made",
    )
    .bind(&tag)
    .bind(args.buyers)
    .fetch_one(&pool)
    .await?;
    sqlx::query(
        "INSERT INTO orders (user_id, status, subtotal, coupon_discount, points_used, amount_to_pay, receiver_name,
                             phone, address, payment_method, payment_due_at, paid_at, carrier, tracking_number,
                             delivered_at, created_at)
         SELECT $1 + n % $3, 'DELIVERED', 10000 + n % 50000, 0, 0, 10000 + n % 50000, 'Buyer', '010-0000-0000',
                '1 Bench-ro', 'CARD', now() - interval '10 days', now() - interval '10 days', 'CJ Logistics', 'B' || n,
                now() - interval '8 days', now() - interval '10 days'
         FROM generate_series(1, $2) AS n",
    )
    .bind(first_buyer)
    .bind(args.delivered)
    .bind(args.buyers)
    .execute(&pool)
    .await?;
    if args.unpaid > 0 {
        seed_unpaid(&pool, &args, first_buyer).await?;
    }
    sqlx::query("ANALYZE orders").execute(&pool).await?;
    sqlx::query("ANALYZE order_items").execute(&pool).await?;
    println!("seeded {} delivered and {} unpaid orders over {} buyers", args.delivered, args.unpaid, args.buyers);
    Ok(())
}

async fn seed_unpaid(pool: &sqlx::PgPool, args: &SeedPurchasesArgs, first_buyer: i64) -> anyhow::Result<()> {
    anyhow::ensure!(args.first_option > 0 && args.last_option >= args.first_option, "name the unpaid orders' options");
    sqlx::query(
        "WITH made AS (
           INSERT INTO orders (user_id, status, subtotal, coupon_discount, points_used, amount_to_pay, receiver_name,
                               phone, address, payment_method, payment_due_at, created_at)
           SELECT $1 + n % $3, 'PENDING_PAYMENT', 0, 0, 0, 0, 'Buyer', '010-0000-0000', '1 Bench-ro', 'CARD',
                  now() - interval '1 minute', now() - interval '20 minutes'
           FROM generate_series(1, $2) AS n RETURNING id)
         INSERT INTO order_items (order_id, option_id, product_id, product_name, option_name, quantity, unit_price, line_total)
         SELECT m.id, o.id, o.product_id, 'Bench product', o.name, 1, 0, 0
         FROM made m JOIN product_options o ON o.id = $4 + m.id % ($5 - $4 + 1)",
    )
    .bind(first_buyer)
    .bind(args.unpaid)
    .bind(args.buyers)
    .bind(args.first_option)
    .bind(args.last_option)
    .execute(pool)
    .await?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ExpireArgs {
    /// Orders per transaction.
    #[arg(long, default_value_t = 500)]
    chunk: i64,
    /// Chunks in flight at once.
    #[arg(long, default_value_t = 2)]
    workers: usize,
}

/// Expires everything due, `workers` chunks at a time; prints `RESULT expired=N seconds=S rows_per_s=R`.
pub async fn expire(postgres: &PostgresArgs, args: ExpireArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let by = BulkActor { actor: OrderActor::System("bench"), reason: "bench", trace_id: None };
    let regrant = infra::config::OrderArgs::default().points_validity();
    let started = Instant::now();
    let worker = || async {
        let mut expired = 0;
        loop {
            let mut tx = pool.begin().await?;
            let (count, _) = expire_unattempted(&mut tx, chrono::Utc::now(), args.chunk, &by, regrant).await?;
            tx.commit().await?;
            if count == 0 {
                return anyhow::Ok(expired);
            }
            expired += count;
        }
    };
    let expired: usize = try_join_all((0..args.workers).map(|_| worker())).await?.into_iter().sum();
    let seconds = started.elapsed().as_secs_f64();
    println!("RESULT expired={expired} seconds={seconds:.2} rows_per_s={:.0}", expired as f64 / seconds.max(1e-6));
    Ok(())
}

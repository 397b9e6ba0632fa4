//! `settle-batch seed-sales --date D --orders N`: N purchases CONFIRMED during business day D, for tests,
//! the demo and benchmarks, set-based in one transaction. Order n has 1 + n % 4 items (prices from a small
//! catalogue), a 10 % coupon (at most 5,000 won) when n is even, points when n is a multiple of 3, the
//! rest paid by card, transfer, virtual account or mobile in turn with an approved payment, and its
//! confirmation spread evenly over the day. Every row is as the order path writes it (a coupon USED by its
//! order, a ledger USE entry linked, the EARN it spent with its lot and balance, an APPROVED payment
//! attempt, the status history).
//!
//! The statements use temporary tables of this transaction, which compile-time checked queries cannot
//! see: they are plain strings with every value bound.

use chrono::NaiveDate;
use infra::config::BusinessTimeArgs;
use sqlx::{PgPool, Postgres, Transaction};

#[derive(clap::Args, Debug, Clone)]
pub struct SeedSalesArgs {
    /// The business date the purchases are confirmed on, YYYY-MM-DD.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    /// How many orders.
    #[arg(long, value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
    pub orders: i64,
}

const STEPS: [&str; 12] = [
    // A small catalogue: 10 products of 3 options each.
    "CREATE TEMP TABLE seed_options ON COMMIT DROP AS
     WITH p AS (INSERT INTO products (name, price) SELECT 'Settled product ' || g, 1000 * g FROM generate_series(1, 10) g
                RETURNING id, price),
          o AS (INSERT INTO product_options (product_id, name, extra_price) SELECT p.id, 'Option ' || m, 500 * m
                FROM p, generate_series(0, 2) m RETURNING id, product_id, extra_price)
     SELECT row_number() OVER (ORDER BY o.id) - 1 AS k, o.id, o.product_id, p.price + o.extra_price AS price
     FROM o JOIN p ON p.id = o.product_id",
    // Ids reserved in blocks, so every table's row of order n is known without reading anything back.
    "CREATE TEMP TABLE seed_ids ON COMMIT DROP AS
     SELECT (SELECT nextval(pg_get_serial_sequence('users', 'id'))) AS users,
            (SELECT nextval(pg_get_serial_sequence('orders', 'id'))) AS orders,
            (SELECT nextval(pg_get_serial_sequence('coupons', 'id'))) AS coupons,
            (SELECT nextval('points_id_seq')) AS points",
    "SELECT setval(pg_get_serial_sequence('users', 'id'), users + $1 / 2 + 1),
            setval(pg_get_serial_sequence('orders', 'id'), orders + $1 + 1),
            setval(pg_get_serial_sequence('coupons', 'id'), coupons + $1 / 2 + 1),
            setval('points_id_seq', points + $1 / 3 + 1)
     FROM seed_ids",
    "INSERT INTO users (id, email, password_hash, name)
     SELECT users + u, 'seed-sales-' || (users + u) || '@settle.test', 'x', 'Seed buyer'
     FROM seed_ids, generate_series(0, $1 / 2) u",
    "CREATE TEMP TABLE seed_items ON COMMIT DROP AS
     SELECT n, o.id AS option_id, o.product_id, (1 + (n + j) % 3)::int AS quantity, o.price AS unit_price
     FROM generate_series(1, $1) n, generate_series(0, n % 4) j, seed_options o
     WHERE o.k = (n * 7 + j) % 30",
    "CREATE TEMP TABLE seed_orders ON COMMIT DROP AS
     WITH totals AS (SELECT n, sum(unit_price * quantity)::bigint AS subtotal FROM seed_items GROUP BY n),
          priced AS (SELECT n, subtotal, CASE WHEN n % 2 = 0 THEN least(subtotal / 10, 5000) ELSE 0 END AS coupon
                     FROM totals)
     SELECT n, ids.orders + n AS id, ids.users + (n / 2) AS user_id, subtotal, coupon,
            CASE WHEN n % 2 = 0 THEN ids.coupons + n / 2 END AS coupon_id,
            CASE WHEN n % 3 = 0 THEN least(1000 + n % 1000, subtotal - coupon) ELSE 0 END AS points,
            CASE WHEN n % 3 = 0 AND least(1000 + n % 1000, subtotal - coupon) > 0 THEN ids.points + n / 3 END AS point_use_id,
            (ARRAY['CARD', 'BANK_TRANSFER', 'VIRTUAL_ACCOUNT', 'MOBILE'])[1 + n % 4] AS method,
            $2::timestamptz + ($3::timestamptz - $2::timestamptz) * (n - 1) / $1 AS confirmed_at
     FROM priced, seed_ids ids",
    "INSERT INTO coupon_policies (id, name, discount_type, discount_value, maximum_discount_amount, total_quantity,
                                  issue_starts_at, issue_ends_at, coupon_valid_days)
     SELECT nextval(pg_get_serial_sequence('coupon_policies', 'id')), 'Seeded 10 %', 'PERCENTAGE', 10, 5000,
            greatest($1 / 2, 1), $2::timestamptz - interval '30 days', $3::timestamptz, 365",
    "INSERT INTO coupons (id, policy_id, user_id, status, order_id, issued_at, valid_until, used_at)
     OVERRIDING SYSTEM VALUE
     SELECT coupon_id, currval(pg_get_serial_sequence('coupon_policies', 'id')), user_id, 'USED', id,
            confirmed_at - interval '20 days', confirmed_at + interval '300 days', confirmed_at - interval '10 days'
     FROM seed_orders WHERE coupon_id IS NOT NULL",
    "INSERT INTO orders (id, user_id, status, subtotal, coupon_id, coupon_discount, points_used, point_use_id, amount_to_pay,
                         receiver_name, phone, address, payment_method, payment_due_at, paid_at, carrier, tracking_number,
                         delivered_at, created_at, status_changed_at)
     OVERRIDING SYSTEM VALUE
     SELECT id, user_id, 'CONFIRMED', subtotal, coupon_id, coupon, points, point_use_id, subtotal - coupon - points,
            'Buyer', '010-0000-0000', '1 Test-ro', method, confirmed_at - interval '10 days',
            confirmed_at - interval '10 days', 'CJ Logistics', 'T' || n, confirmed_at - interval '8 days',
            confirmed_at - interval '10 days', confirmed_at
     FROM seed_orders",
    "INSERT INTO order_items (order_id, option_id, product_id, product_name, option_name, quantity, unit_price, line_total)
     SELECT o.id, i.option_id, i.product_id, 'Settled product', 'Option', i.quantity, i.unit_price, i.unit_price * i.quantity
     FROM seed_items i JOIN seed_orders o USING (n)",
    "WITH uses AS (
         INSERT INTO points (id, user_id, kind, amount, reason, order_id, created_at)
         SELECT point_use_id, user_id, 'USE', -points, 'order', id, confirmed_at - interval '10 days'
         FROM seed_orders WHERE point_use_id IS NOT NULL RETURNING id),
     payments AS (
         INSERT INTO payment_attempts (order_id, payment_key, amount, status, idempotency_key, method, approved_at)
         SELECT id, 'seed-' || id, subtotal - coupon - points, 'APPROVED', gen_random_uuid(), method,
                confirmed_at - interval '10 days'
         FROM seed_orders WHERE subtotal - coupon - points > 0 RETURNING id)
     INSERT INTO order_status_history (order_id, from_status, to_status, actor, reason, changed_at)
     SELECT id, 'DELIVERED', 'CONFIRMED', 'system:seed-sales', 'seeded purchase', confirmed_at FROM seed_orders",
    // What each use spent was earned first: an EARN entry, its lot (used up) and the buyer's balance row,
    // so the seeded ledger, lots and balances agree (balance = ledger = Σ lots remaining = 0).
    "WITH earns AS (
         INSERT INTO points (user_id, kind, amount, reason, created_at)
         SELECT user_id, 'EARN', points, 'seeded earn', confirmed_at - interval '20 days'
         FROM seed_orders WHERE point_use_id IS NOT NULL RETURNING id, user_id, amount, created_at),
     lots AS (
         INSERT INTO point_lots (user_id, source, amount, remaining, expires_at, point_id, created_at)
         SELECT user_id, 'PURCHASE', amount, 0, created_at + interval '1 year', id, created_at FROM earns)
     INSERT INTO point_balances (user_id, balance)
     SELECT DISTINCT user_id, 0 FROM seed_orders WHERE point_use_id IS NOT NULL
     ON CONFLICT (user_id) DO NOTHING",
];

pub async fn run(pool: &PgPool, args: SeedSalesArgs) -> anyhow::Result<()> {
    let next = args.date.succ_opt().ok_or_else(|| anyhow::anyhow!("{} has no next day", args.date))?;
    let (start, end) = (args.business.start_of(args.date), args.business.start_of(next));
    let mut tx: Transaction<'_, Postgres> = pool.begin().await?;
    for step in STEPS {
        // Each statement is bound the parameters it names: $1 orders, then $2 the day's start and $3 its end.
        let query = sqlx::query(step);
        let query = if step.contains("$1") { query.bind(args.orders) } else { query };
        let query = if step.contains("$2") { query.bind(start).bind(end) } else { query };
        query.execute(&mut *tx).await?;
    }
    let (first, last, items): (i64, i64, i64) =
        sqlx::query_as("SELECT min(id), max(id), (SELECT count(*) FROM seed_items) FROM seed_orders")
            .fetch_one(&mut *tx)
            .await?;
    tx.commit().await?;
    let made = serde_json::json!({ "orders": args.orders, "items": items, "firstOrder": first, "lastOrder": last });
    println!("{made}");
    Ok(())
}

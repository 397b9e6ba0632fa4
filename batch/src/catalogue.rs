//! `settle-batch seed-catalogue`: products with options and stock for demos and benchmarks, in one
//! set-based statement. Prints what it made as one JSON line so scripts can pick the ids up.

use sqlx::PgPool;

#[derive(clap::Args, Debug, Clone)]
pub struct SeedCatalogueArgs {
    /// Products to create (each ACTIVE, priced 1,000 to 100,000 won).
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=1_000_000))]
    pub products: i32,
    /// Options per product (option m costs 500 * (m - 1) won more).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(i32).range(1..=100))]
    pub options: i32,
    /// Units in stock per option.
    #[arg(long, value_parser = clap::value_parser!(i32).range(0..=100_000_000))]
    pub stock: i32,
}

pub async fn run(pool: &PgPool, args: SeedCatalogueArgs) -> anyhow::Result<()> {
    let made = sqlx::query!(
        r#"WITH p AS (
               INSERT INTO products (name, price)
               SELECT 'Product ' || g, 1000 * (1 + g % 100) FROM generate_series(1, $1::int) g
               RETURNING id),
           o AS (
               INSERT INTO product_options (product_id, name, extra_price, stock)
               SELECT p.id, 'Option ' || m, 500 * (m - 1), $3::int FROM p, generate_series(1, $2::int) m ORDER BY p.id, m
               RETURNING id, product_id)
           SELECT min(product_id) AS "first_product!", max(product_id) AS "last_product!",
                  min(id) AS "first_option!", max(id) AS "last_option!", count(*) AS "options!"
           FROM o"#,
        args.products,
        args.options,
        args.stock
    )
    .fetch_one(pool)
    .await?;
    let summary = serde_json::json!({
        "products": args.products,
        "options": made.options,
        "stockPerOption": args.stock,
        "firstProductId": made.first_product,
        "lastProductId": made.last_product,
        "firstOptionId": made.first_option,
        "lastOptionId": made.last_option,
    });
    println!("{summary}");
    Ok(())
}

//! Products and their options. Prices are whole won; an option's stock is the one counter orders take
//! from (its CHECK keeps it from going below zero whatever writes it).

use crate::db::violated_constraint;
use chrono::{DateTime, Utc};
use domain::{
    shop::{ProductStatus, MAX_STOCK},
    OptionId, ProductId,
};
use sqlx::{PgConnection, PgExecutor, PgPool};

#[derive(Debug, Clone)]
pub struct ProductRow {
    pub id: i64,
    pub name: String,
    pub price: i64,
    pub status: ProductStatus,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone)]
pub struct OptionRow {
    pub id: i64,
    pub product_id: i64,
    pub name: String,
    pub extra_price: i64,
    pub stock: i32,
}

pub struct NewOption<'a> {
    pub name: &'a str,
    pub extra_price: i64,
    pub stock: i32,
}

/// Changes to a product; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct ProductChange {
    pub name: Option<String>,
    pub price: Option<i64>,
    pub status: Option<ProductStatus>,
}

/// An option's name is taken within its product.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DuplicateOption;

const OPTION_NAME_KEY: &str = "product_options_product_name_key";

pub async fn create_product<'e>(
    executor: impl PgExecutor<'e>,
    name: &str,
    price: i64,
    status: ProductStatus,
) -> sqlx::Result<ProductRow> {
    sqlx::query_as!(
        ProductRow,
        r#"INSERT INTO products (name, price, status) VALUES ($1, $2, $3)
           RETURNING id, name, price, status AS "status: ProductStatus", created_at, updated_at"#,
        name,
        price,
        status as ProductStatus
    )
    .fetch_one(executor)
    .await
}

pub async fn update_product(
    pool: &PgPool,
    product: ProductId,
    change: &ProductChange,
) -> sqlx::Result<Option<ProductRow>> {
    sqlx::query_as!(
        ProductRow,
        r#"UPDATE products SET name = COALESCE($2, name), price = COALESCE($3, price),
             status = COALESCE($4, status), updated_at = now()
           WHERE id = $1
           RETURNING id, name, price, status AS "status: ProductStatus", created_at, updated_at"#,
        product.get(),
        change.name,
        change.price,
        change.status as Option<ProductStatus>
    )
    .fetch_optional(pool)
    .await
}

pub async fn product(pool: &PgPool, product: ProductId) -> sqlx::Result<Option<ProductRow>> {
    sqlx::query_as!(
        ProductRow,
        r#"SELECT id, name, price, status AS "status: ProductStatus", created_at, updated_at
           FROM products WHERE id = $1"#,
        product.get()
    )
    .fetch_optional(pool)
    .await
}

/// Products after id `after`, in id order; stopped ones only when `with_stopped`.
pub async fn products(pool: &PgPool, after: i64, limit: i64, with_stopped: bool) -> sqlx::Result<Vec<ProductRow>> {
    sqlx::query_as!(
        ProductRow,
        r#"SELECT id, name, price, status AS "status: ProductStatus", created_at, updated_at
           FROM products WHERE id > $1 AND ($3 OR status = 'ACTIVE') ORDER BY id LIMIT $2"#,
        after,
        limit,
        with_stopped
    )
    .fetch_all(pool)
    .await
}

pub async fn options_of(pool: &PgPool, product: ProductId) -> sqlx::Result<Vec<OptionRow>> {
    sqlx::query_as!(
        OptionRow,
        "SELECT id, product_id, name, extra_price, stock FROM product_options WHERE product_id = $1 ORDER BY id",
        product.get()
    )
    .fetch_all(pool)
    .await
}

pub async fn add_option(
    connection: &mut PgConnection,
    product: ProductId,
    option: &NewOption<'_>,
) -> sqlx::Result<Result<OptionRow, DuplicateOption>> {
    let inserted = sqlx::query_as!(
        OptionRow,
        "INSERT INTO product_options (product_id, name, extra_price, stock) VALUES ($1, $2, $3, $4)
         RETURNING id, product_id, name, extra_price, stock",
        product.get(),
        option.name,
        option.extra_price,
        option.stock
    )
    .fetch_one(connection)
    .await;
    match inserted {
        Ok(row) => Ok(Ok(row)),
        Err(error) if violated_constraint(&error) == Some(OPTION_NAME_KEY) => Ok(Err(DuplicateOption)),
        Err(error) => Err(error),
    }
}

/// Renames or reprices an option of `product` (stock has its own, guarded, changes).
pub async fn update_option(
    pool: &PgPool,
    product: ProductId,
    option: OptionId,
    name: Option<&str>,
    extra_price: Option<i64>,
) -> sqlx::Result<Option<Result<OptionRow, DuplicateOption>>> {
    let updated = sqlx::query_as!(
        OptionRow,
        "UPDATE product_options SET name = COALESCE($3, name), extra_price = COALESCE($4, extra_price)
         WHERE id = $2 AND product_id = $1
         RETURNING id, product_id, name, extra_price, stock",
        product.get(),
        option.get(),
        name,
        extra_price
    )
    .fetch_optional(pool)
    .await;
    match updated {
        Ok(row) => Ok(row.map(Ok)),
        Err(error) if violated_constraint(&error) == Some(OPTION_NAME_KEY) => Ok(Some(Err(DuplicateOption))),
        Err(error) => Err(error),
    }
}

/// How an admin changes stock: replace the count (a stock take) or add a delivery.
#[derive(Debug, Clone, Copy)]
pub enum StockChange {
    Set(i32),
    Add(i32),
}

/// The change would take the option's stock above `MAX_STOCK`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StockAboveLimit;

/// Applies `change` under the option's row lock (waiting for orders holding it) and returns the option,
/// `Ok(None)` if `product` has no such option.
pub async fn change_stock(
    pool: &PgPool,
    product: ProductId,
    option: OptionId,
    change: StockChange,
) -> sqlx::Result<Result<Option<OptionRow>, StockAboveLimit>> {
    let (set, add) = match change {
        StockChange::Set(stock) => (Some(stock), 0),
        StockChange::Add(units) => (None, units),
    };
    let changed = sqlx::query_as!(
        OptionRow,
        "UPDATE product_options SET stock = COALESCE($3::int, stock) + $4::int
         WHERE id = $2 AND product_id = $1 AND COALESCE($3::int, stock)::bigint + $4::int <= $5
         RETURNING id, product_id, name, extra_price, stock",
        product.get(),
        option.get(),
        set,
        add,
        i64::from(MAX_STOCK)
    )
    .fetch_optional(pool)
    .await?;
    if changed.is_some() {
        return Ok(Ok(changed));
    }
    let exists = sqlx::query_scalar!(
        r#"SELECT EXISTS (SELECT 1 FROM product_options WHERE id = $2 AND product_id = $1) AS "exists!""#,
        product.get(),
        option.get()
    )
    .fetch_one(pool)
    .await?;
    Ok(if exists { Err(StockAboveLimit) } else { Ok(None) })
}

/// An option's stock as the executor sees it (committed, or this transaction's), None for no such option.
pub async fn stock_of<'e>(executor: impl PgExecutor<'e>, option: i64) -> sqlx::Result<Option<i32>> {
    sqlx::query_scalar!("SELECT stock FROM product_options WHERE id = $1", option).fetch_optional(executor).await
}

//! Carts: one line per option per user, priced from the catalogue when read. A user's cart changes are
//! serialized on their user row (`FOR NO KEY UPDATE`, which foreign-key checks do not wait for), so the
//! line limit holds under concurrent adds.

use domain::{
    shop::{ProductStatus, MAX_LINES, MAX_LINE_QUANTITY},
    OptionId, ProductId, UserId,
};
use sqlx::{PgPool, Postgres, Transaction};

/// A cart line with the catalogue's current price and stock.
#[derive(Debug, Clone)]
pub struct CartLine {
    pub product_id: i64,
    pub option_id: i64,
    pub product_name: String,
    pub option_name: String,
    pub product_status: ProductStatus,
    pub quantity: i32,
    pub unit_price: i64,
    pub stock: i32,
}

impl CartLine {
    pub fn line_total(&self) -> i64 {
        self.unit_price * i64::from(self.quantity)
    }

    /// Orderable now: the product is on sale and the stock covers the line (checked again at order time).
    pub fn available(&self) -> bool {
        self.product_status == ProductStatus::Active && self.stock >= self.quantity
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CartRefusal {
    /// An admin named a user who does not exist.
    UnknownUser,
    UnknownProduct,
    /// The option does not exist or belongs to another product.
    UnknownOption,
    ProductStopped,
    LineNotFound,
    /// The line would hold more than `MAX_LINE_QUANTITY` units.
    QuantityAboveLimit,
    /// The cart has `MAX_LINES` lines already.
    Full,
}

pub async fn lines_of(pool: &PgPool, user: UserId) -> sqlx::Result<Vec<CartLine>> {
    sqlx::query_as!(
        CartLine,
        r#"SELECT c.product_id, c.option_id, p.name AS product_name, o.name AS option_name,
             p.status AS "product_status: ProductStatus", c.quantity,
             p.price + o.extra_price AS "unit_price!", o.stock
           FROM cart_items c JOIN products p ON p.id = c.product_id JOIN product_options o ON o.id = c.option_id
           WHERE c.user_id = $1 ORDER BY c.id"#,
        user.get()
    )
    .fetch_all(pool)
    .await
}

/// A line to put in a cart: `quantity` units of `option` of `product`.
#[derive(Debug, Clone, Copy)]
pub struct Line {
    pub product: ProductId,
    pub option: OptionId,
    pub quantity: i32,
}

/// Adds the line's units to the option's line, or makes it.
pub async fn add(pool: &PgPool, user: UserId, line: Line) -> sqlx::Result<Result<(), CartRefusal>> {
    in_cart(pool, user, None, line).await
}

/// Moves the line of `original` (an option of `line.product`) to `line`, merging into that option's
/// line when the cart has one.
pub async fn change(
    pool: &PgPool,
    user: UserId,
    original: OptionId,
    line: Line,
) -> sqlx::Result<Result<(), CartRefusal>> {
    in_cart(pool, user, Some(original), line).await
}

/// One cart change in one transaction under the cart's lock: take the `original` line out (when moving
/// one), then put `line` in. A refusal rolls the whole change back.
async fn in_cart(
    pool: &PgPool,
    user: UserId,
    original: Option<OptionId>,
    line: Line,
) -> sqlx::Result<Result<(), CartRefusal>> {
    let mut tx = pool.begin().await?;
    if !lock_cart(&mut tx, user).await? {
        return Ok(Err(CartRefusal::UnknownUser));
    }
    if let Some(original) = original {
        let removed = sqlx::query!(
            "DELETE FROM cart_items WHERE user_id = $1 AND product_id = $2 AND option_id = $3",
            user.get(),
            line.product.get(),
            original.get()
        )
        .execute(&mut *tx)
        .await?;
        if removed.rows_affected() == 0 {
            return Ok(Err(CartRefusal::LineNotFound));
        }
    }
    if let Err(refusal) = check_orderable(&mut tx, line.product, line.option).await? {
        return Ok(Err(refusal));
    }
    let outcome = merge_into(&mut tx, user, line).await?;
    if outcome.is_ok() {
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Removes the named lines; lines the cart does not have are ignored. Returns how many were removed.
pub async fn remove(pool: &PgPool, user: UserId, lines: &[(ProductId, OptionId)]) -> sqlx::Result<u64> {
    let products: Vec<i64> = lines.iter().map(|(product, _)| product.get()).collect();
    let options: Vec<i64> = lines.iter().map(|(_, option)| option.get()).collect();
    let mut tx = pool.begin().await?;
    lock_cart(&mut tx, user).await?;
    let removed = sqlx::query!(
        "DELETE FROM cart_items c USING unnest($2::bigint[], $3::bigint[]) AS l(product_id, option_id)
         WHERE c.user_id = $1 AND c.product_id = l.product_id AND c.option_id = l.option_id",
        user.get(),
        &products,
        &options
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(removed.rows_affected())
}

pub async fn clear(pool: &PgPool, user: UserId) -> sqlx::Result<u64> {
    let mut tx = pool.begin().await?;
    lock_cart(&mut tx, user).await?;
    let removed = sqlx::query!("DELETE FROM cart_items WHERE user_id = $1", user.get()).execute(&mut *tx).await?;
    tx.commit().await?;
    Ok(removed.rows_affected())
}

/// Serializes the user's cart changes and cart orders: every writer of a user's cart lines takes this lock
/// first, so two of them never hold some lines each and wait for the other's; false if there is no such user.
pub(crate) async fn lock_cart(tx: &mut Transaction<'_, Postgres>, user: UserId) -> sqlx::Result<bool> {
    let found = sqlx::query_scalar!("SELECT id FROM users WHERE id = $1 FOR NO KEY UPDATE", user.get())
        .fetch_optional(&mut **tx)
        .await?;
    Ok(found.is_some())
}

async fn check_orderable(
    tx: &mut Transaction<'_, Postgres>,
    product: ProductId,
    option: OptionId,
) -> sqlx::Result<Result<(), CartRefusal>> {
    let found = sqlx::query!(
        r#"SELECT p.status AS "status: ProductStatus", o.product_id AS "option_product?"
           FROM products p LEFT JOIN product_options o ON o.id = $2 AND o.product_id = p.id
           WHERE p.id = $1"#,
        product.get(),
        option.get()
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(match found {
        None => Err(CartRefusal::UnknownProduct),
        Some(row) if row.option_product.is_none() => Err(CartRefusal::UnknownOption),
        Some(row) if row.status == ProductStatus::Stopped => Err(CartRefusal::ProductStopped),
        Some(_) => Ok(()),
    })
}

async fn merge_into(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    line: Line,
) -> sqlx::Result<Result<(), CartRefusal>> {
    let Line { product, option, quantity } = line;
    let existing = sqlx::query_scalar!(
        "SELECT quantity FROM cart_items WHERE user_id = $1 AND option_id = $2",
        user.get(),
        option.get()
    )
    .fetch_optional(&mut **tx)
    .await?;
    match existing {
        Some(held) if held + quantity > MAX_LINE_QUANTITY => return Ok(Err(CartRefusal::QuantityAboveLimit)),
        Some(_) => {
            sqlx::query!(
                "UPDATE cart_items SET quantity = quantity + $3, updated_at = now() WHERE user_id = $1 AND option_id = $2",
                user.get(),
                option.get(),
                quantity
            )
            .execute(&mut **tx)
            .await?;
        }
        None => {
            let lines =
                sqlx::query_scalar!(r#"SELECT count(*) AS "n!" FROM cart_items WHERE user_id = $1"#, user.get())
                    .fetch_one(&mut **tx)
                    .await?;
            if lines >= MAX_LINES as i64 {
                return Ok(Err(CartRefusal::Full));
            }
            sqlx::query!(
                "INSERT INTO cart_items (user_id, product_id, option_id, quantity) VALUES ($1, $2, $3, $4)",
                user.get(),
                product.get(),
                option.get(),
                quantity
            )
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(Ok(()))
}

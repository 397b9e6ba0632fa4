use chrono::{DateTime, Utc};
use domain::{
    shop::{OrderStatus, PaymentMethod},
    OrderId, UserId,
};
use sqlx::{PgExecutor, PgPool};

#[derive(Debug, Clone)]
pub struct OrderRow {
    pub id: i64,
    pub user_id: i64,
    pub status: OrderStatus,
    pub subtotal: i64,
    pub coupon_id: Option<i64>,
    pub coupon_discount: i64,
    pub points_used: i64,
    pub point_use_id: Option<i64>,
    pub amount_to_pay: i64,
    pub receiver_name: String,
    pub phone: String,
    pub address: String,
    pub payment_method: PaymentMethod,
    pub created_at: DateTime<Utc>,
    pub cancelled_at: Option<DateTime<Utc>>,
    pub payment_due_at: DateTime<Utc>,
    pub paid_at: Option<DateTime<Utc>>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub status_changed_at: DateTime<Utc>,
    /// Which of its payment rounds the order is in (see `payment_order_id`).
    pub payment_round: i32,
}

impl OrderRow {
    /// The order id the provider knows the order's next payment by.
    pub fn payment_order_id(&self) -> String {
        super::payment_order_id(self.id, self.payment_round)
    }
}

#[derive(Debug, Clone)]
pub struct OrderItemRow {
    pub option_id: i64,
    pub product_id: i64,
    pub product_name: String,
    pub option_name: String,
    pub quantity: i32,
    pub unit_price: i64,
    pub line_total: i64,
}

/// An order with its items, as stored.
#[derive(Debug, Clone)]
pub struct PlacedOrder {
    pub order: OrderRow,
    pub items: Vec<OrderItemRow>,
}

pub async fn order(pool: &PgPool, id: OrderId) -> sqlx::Result<Option<PlacedOrder>> {
    let Some(order) = order_row(pool, id.get()).await? else { return Ok(None) };
    let items = items_of(pool, order.id).await?;
    Ok(Some(PlacedOrder { order, items }))
}

/// The user's orders before id `before` (newest first), optionally of one status, without items.
pub async fn orders_of(
    pool: &PgPool,
    user: UserId,
    before: i64,
    limit: i64,
    status: Option<OrderStatus>,
) -> sqlx::Result<Vec<OrderRow>> {
    sqlx::query_as!(
        OrderRow,
        r#"SELECT id, user_id, status AS "status: OrderStatus", subtotal, coupon_id, coupon_discount, points_used,
             point_use_id, amount_to_pay, receiver_name, phone, address,
             payment_method AS "payment_method: PaymentMethod", created_at, cancelled_at, payment_due_at, paid_at,
             carrier, tracking_number, delivered_at, status_changed_at, payment_round
           FROM orders WHERE user_id = $1 AND id < $2 AND ($4::text IS NULL OR status = $4)
           ORDER BY id DESC LIMIT $3"#,
        user.get(),
        before,
        limit,
        status as Option<OrderStatus>
    )
    .fetch_all(pool)
    .await
}

pub(super) async fn order_row<'e>(executor: impl PgExecutor<'e>, id: i64) -> sqlx::Result<Option<OrderRow>> {
    sqlx::query_as!(
        OrderRow,
        r#"SELECT id, user_id, status AS "status: OrderStatus", subtotal, coupon_id, coupon_discount, points_used,
             point_use_id, amount_to_pay, receiver_name, phone, address,
             payment_method AS "payment_method: PaymentMethod", created_at, cancelled_at, payment_due_at, paid_at,
             carrier, tracking_number, delivered_at, status_changed_at, payment_round
           FROM orders WHERE id = $1"#,
        id
    )
    .fetch_optional(executor)
    .await
}

pub(super) async fn items_of<'e>(executor: impl PgExecutor<'e>, order: i64) -> sqlx::Result<Vec<OrderItemRow>> {
    sqlx::query_as!(
        OrderItemRow,
        "SELECT option_id, product_id, product_name, option_name, quantity, unit_price, line_total
         FROM order_items WHERE order_id = $1 ORDER BY option_id",
        order
    )
    .fetch_all(executor)
    .await
}

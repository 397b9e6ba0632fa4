//! What the shop's routes answer with.

use chrono::{DateTime, Utc};
use domain::shop::{OrderStatus, PaymentAttemptStatus, PaymentMethod, ProductStatus};
use infra::shop::{
    carts::CartLine,
    catalogue::{OptionRow, ProductRow},
    orders::{Attempt, HistoryRow, OrderItemRow, OrderRow, PlacedOrder},
};
use serde::Serialize;

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ProductView {
    id: i64,
    name: String,
    price: i64,
    status: ProductStatus,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<Vec<OptionView>>,
}

impl ProductView {
    pub fn new(row: ProductRow, options: Option<Vec<OptionRow>>) -> Self {
        let price = row.price;
        Self {
            id: row.id,
            name: row.name,
            price,
            status: row.status,
            created_at: row.created_at,
            updated_at: row.updated_at,
            options: options.map(|options| options.into_iter().map(|o| OptionView::priced(o, price)).collect()),
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OptionView {
    id: i64,
    product_id: i64,
    name: String,
    extra_price: i64,
    /// The product's price plus the option's extra price, when the product is known.
    #[serde(skip_serializing_if = "Option::is_none")]
    unit_price: Option<i64>,
    stock: i32,
}

impl OptionView {
    fn priced(row: OptionRow, product_price: i64) -> Self {
        Self { unit_price: Some(product_price + row.extra_price), ..Self::from(row) }
    }
}

impl From<OptionRow> for OptionView {
    fn from(row: OptionRow) -> Self {
        Self {
            id: row.id,
            product_id: row.product_id,
            name: row.name,
            extra_price: row.extra_price,
            unit_price: None,
            stock: row.stock,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct CartView {
    user_id: i64,
    lines: Vec<CartLineView>,
    /// Every line at today's prices.
    total: i64,
    /// The lines that could be ordered now.
    available_total: i64,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct CartLineView {
    product_id: i64,
    option_id: i64,
    product_name: String,
    option_name: String,
    quantity: i32,
    unit_price: i64,
    line_total: i64,
    available: bool,
    stock_left: i32,
}

impl CartView {
    pub fn new(user_id: i64, lines: Vec<CartLine>) -> Self {
        let total = lines.iter().map(CartLine::line_total).sum();
        let available_total = lines.iter().filter(|line| line.available()).map(CartLine::line_total).sum();
        let lines = lines
            .into_iter()
            .map(|line| CartLineView {
                line_total: line.line_total(),
                available: line.available(),
                product_id: line.product_id,
                option_id: line.option_id,
                product_name: line.product_name,
                option_name: line.option_name,
                quantity: line.quantity,
                unit_price: line.unit_price,
                stock_left: line.stock,
            })
            .collect();
        Self { user_id, lines, total, available_total }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderView {
    id: i64,
    user_id: i64,
    status: OrderStatus,
    subtotal: i64,
    coupon_id: Option<i64>,
    coupon_discount: i64,
    points_used: i64,
    amount_to_pay: i64,
    payment_method: PaymentMethod,
    shipping: ShippingView,
    created_at: DateTime<Utc>,
    cancelled_at: Option<DateTime<Utc>>,
    /// Unpaid past this instant, the order expires and everything it took comes back.
    payment_due_at: DateTime<Utc>,
    paid_at: Option<DateTime<Utc>>,
    /// Set when the order ships.
    shipment: Option<ShipmentView>,
    delivered_at: Option<DateTime<Utc>>,
    status_changed_at: DateTime<Utc>,
    /// The order id the provider knows the order's next payment by: the buyer's payment window is opened
    /// with it. It changes only after the provider took a payment that did not pay the order (given back,
    /// or a virtual account closed unpaid), as the provider takes one payment per order id.
    payment_order_id: String,
    /// The payment (the approved one, else the latest attempt); absent in lists and before any attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<PaymentView>,
    /// Absent in lists (read the order for its items).
    #[serde(skip_serializing_if = "Option::is_none")]
    items: Option<Vec<OrderItemView>>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct PaymentView {
    status: PaymentAttemptStatus,
    amount: i64,
    /// As the provider reported it (CARD, TRANSFER, VIRTUAL_ACCOUNT, MOBILE_PHONE), once approved.
    method: Option<String>,
    approved_at: Option<DateTime<Utc>>,
    /// The provider's payment key, masked: its first 4 and last 4 characters.
    payment_key: String,
    /// The provider's code when it declined or refused the payment.
    failure_code: Option<String>,
}

/// `abcd…wxyz`: enough to match a support case, not enough to act on the payment.
fn mask(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() <= 8 {
        return "…".to_owned();
    }
    let (head, tail): (String, String) = (chars[..4].iter().collect(), chars[chars.len() - 4..].iter().collect());
    format!("{head}…{tail}")
}

impl From<Attempt> for PaymentView {
    fn from(attempt: Attempt) -> Self {
        Self {
            status: attempt.status,
            amount: attempt.amount,
            method: attempt.method,
            approved_at: attempt.approved_at,
            payment_key: mask(&attempt.payment_key),
            failure_code: attempt.failure_code,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShipmentView {
    carrier: String,
    tracking_number: String,
}

/// One move of an order, as its history records it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct OrderMoveView {
    /// Absent for the placement.
    from: Option<OrderStatus>,
    to: OrderStatus,
    /// `user:<id>`, `admin:<id>` or `system:<what>`.
    actor: String,
    reason: Option<String>,
    trace_id: Option<String>,
    at: DateTime<Utc>,
}

impl From<HistoryRow> for OrderMoveView {
    fn from(row: HistoryRow) -> Self {
        Self {
            from: row.from_status,
            to: row.to_status,
            actor: row.actor,
            reason: row.reason,
            trace_id: row.trace_id,
            at: row.changed_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ShippingView {
    receiver_name: String,
    phone: String,
    address: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrderItemView {
    product_id: i64,
    option_id: i64,
    product_name: String,
    option_name: String,
    quantity: i32,
    unit_price: i64,
    line_total: i64,
}

impl OrderView {
    pub fn summary(row: OrderRow) -> Self {
        let payment_order_id = row.payment_order_id();
        Self {
            id: row.id,
            user_id: row.user_id,
            status: row.status,
            subtotal: row.subtotal,
            coupon_id: row.coupon_id,
            coupon_discount: row.coupon_discount,
            points_used: row.points_used,
            amount_to_pay: row.amount_to_pay,
            payment_method: row.payment_method,
            shipping: ShippingView { receiver_name: row.receiver_name, phone: row.phone, address: row.address },
            created_at: row.created_at,
            cancelled_at: row.cancelled_at,
            payment_due_at: row.payment_due_at,
            paid_at: row.paid_at,
            shipment: row
                .carrier
                .zip(row.tracking_number)
                .map(|(carrier, tracking_number)| ShipmentView { carrier, tracking_number }),
            delivered_at: row.delivered_at,
            status_changed_at: row.status_changed_at,
            payment_order_id,
            payment: None,
            items: None,
        }
    }
}

impl OrderView {
    /// The view with the order's payment.
    pub fn with_payment(self, attempt: Option<Attempt>) -> Self {
        Self { payment: attempt.map(PaymentView::from), ..self }
    }
}

impl From<PlacedOrder> for OrderView {
    fn from(placed: PlacedOrder) -> Self {
        let items = placed.items.into_iter().map(OrderItemView::from).collect();
        Self { items: Some(items), ..Self::summary(placed.order) }
    }
}

impl From<OrderItemRow> for OrderItemView {
    fn from(item: OrderItemRow) -> Self {
        Self {
            product_id: item.product_id,
            option_id: item.option_id,
            product_name: item.product_name,
            option_name: item.option_name,
            quantity: item.quantity,
            unit_price: item.unit_price,
            line_total: item.line_total,
        }
    }
}

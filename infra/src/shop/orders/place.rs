//! Placing an order: every refusal is decided before the stock rows are touched, and the caller rolls
//! the transaction back on any refusal, so a refused order writes nothing.

use super::{
    lifecycle::{event_type, record, OrderActor},
    read::{OrderItemRow, OrderRow, PlacedOrder},
    Effects, StockLeft,
};
use crate::{
    coupons::usage,
    outbox::{self, NewEvent},
    points::ledger::{self, Refusal},
};
use chrono::{DateTime, Utc};
use domain::{
    coupon::DiscountType,
    points::PointAmount,
    shop::{
        price_order, CouponTerms, NotApplicable, OrderStatus, PaymentMethod, PointsAboveRemainder, PriceBreakdown,
        ProductStatus, MAX_LINES, MAX_LINE_QUANTITY,
    },
    CouponId, OptionId, ProductId, UserId,
};
use serde_json::json;
use sqlx::{Postgres, Transaction};
use std::collections::BTreeMap;

pub struct Shipping {
    pub receiver_name: String,
    pub phone: String,
    pub address: String,
}

pub enum LineSource {
    /// Lines named by the request, merged per option.
    Given(OrderLines),
    /// The caller's cart: every line, or only the named ones; they leave the cart with the order.
    Cart(Option<Vec<(ProductId, OptionId)>>),
}

pub struct OrderRequest {
    pub user: UserId,
    pub lines: LineSource,
    pub coupon: Option<CouponId>,
    pub points: Option<PointAmount>,
    pub shipping: Shipping,
    pub payment_method: PaymentMethod,
    /// How long the order waits for its payment before it expires.
    pub payment_window: chrono::Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrderRefusal {
    UnknownProduct(i64),
    /// The option does not exist or is not an option of the product named with it.
    UnknownOption(i64),
    ProductStopped(i64),
    OutOfStock {
        option: i64,
        requested: i32,
        left: i32,
    },
    CartEmpty,
    /// A line named for a cart order is not in the cart.
    NotInCart {
        option: i64,
    },
    TooManyLines,
    QuantityAboveLimit {
        option: i64,
    },
    /// No such coupon, or not the caller's.
    UnknownCoupon,
    CouponNotApplicable(NotApplicable),
    PointsAboveAmount(PointsAboveRemainder),
    InsufficientBalance {
        balance: i64,
    },
}

/// An order line with the catalogue's price, merged per option.
struct PricedLine {
    option_id: i64,
    product_id: i64,
    product_name: String,
    option_name: String,
    quantity: i32,
    unit_price: i64,
}

impl PricedLine {
    fn line_total(&self) -> i64 {
        self.unit_price * i64::from(self.quantity)
    }
}

type Decided<T> = anyhow::Result<Result<T, OrderRefusal>>;

/// Places `request` in `tx`. On `Ok(Err(_))` the caller must roll back (cart lines may have been taken).
pub async fn place(
    tx: &mut Transaction<'_, Postgres>,
    request: OrderRequest,
    trace_id: Option<&str>,
) -> Decided<(PlacedOrder, Effects)> {
    let user = request.user;
    let lines = match request.lines {
        LineSource::Given(lines) => lines,
        LineSource::Cart(named) => match take_cart(tx, user, named.as_deref()).await? {
            Ok(taken) => match OrderLines::merge(&taken) {
                Ok(lines) => lines,
                Err(refusal) => return Ok(Err(refusal)),
            },
            Err(refusal) => return Ok(Err(refusal)),
        },
    };
    let lines = match price_lines(tx, &lines).await? {
        Ok(priced) => priced,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let subtotal = lines.iter().map(PricedLine::line_total).sum();
    let terms = match request.coupon {
        None => None,
        Some(coupon) => match lock_coupon(tx, coupon, user).await? {
            Some(terms) => Some(terms),
            None => return Ok(Err(OrderRefusal::UnknownCoupon)),
        },
    };
    let points = request.points.map_or(0, PointAmount::get);
    let breakdown = match price_order(subtotal, terms.as_ref(), points, Utc::now()) {
        Err(rule) => return Ok(Err(OrderRefusal::CouponNotApplicable(rule))),
        Ok(Err(above)) => return Ok(Err(OrderRefusal::PointsAboveAmount(above))),
        Ok(Ok(breakdown)) => breakdown,
    };
    let order_id = sqlx::query_scalar!(r#"SELECT nextval(pg_get_serial_sequence('orders', 'id')) AS "id!""#)
        .fetch_one(&mut **tx)
        .await?;
    let point_use = match request.points {
        None => None,
        Some(amount) => match ledger::spend(tx, user, amount, Some(order_id), trace_id).await? {
            Ok(entry) => Some(entry),
            Err(Refusal::InsufficientBalance { balance }) => {
                return Ok(Err(OrderRefusal::InsufficientBalance { balance }))
            }
            Err(other) => anyhow::bail!("spending points for an order was refused unexpectedly: {other:?}"),
        },
    };
    if let Some(coupon) = request.coupon {
        usage::mark_used(tx, coupon.get(), order_id, trace_id).await?;
    }
    let point_use_id = point_use.as_ref().map(|entry| entry.point_id);
    let payment_due_at = Utc::now() + request.payment_window;
    let written = Written { order_id, user, breakdown, coupon: request.coupon, point_use_id, payment_due_at };
    let order = insert_order(tx, &written, &request.shipping, request.payment_method, trace_id).await?;
    let items = insert_items(tx, order_id, &lines).await?;
    record_placement(tx, &order, &items, trace_id).await?;
    let stock_left = match take_stock(tx, &lines).await? {
        Ok(left) => left,
        Err(refusal) => return Ok(Err(refusal)),
    };
    let balance = point_use.as_ref().and_then(ledger::Entry::balance_change);
    Ok(Ok((PlacedOrder { order, items }, Effects { stock_left, balance })))
}

/// Takes the cart's lines (all, or the named ones) out of the cart, under the cart's lock like every cart
/// change (a change holding one line while this held another would deadlock); a concurrent cart order of
/// the same user waits, then finds them gone.
async fn take_cart(
    tx: &mut Transaction<'_, Postgres>,
    user: UserId,
    named: Option<&[(ProductId, OptionId)]>,
) -> Decided<Vec<(ProductId, OptionId, i32)>> {
    if !crate::shop::carts::lock_cart(tx, user).await? {
        return Ok(Err(OrderRefusal::CartEmpty));
    }
    let options: Option<Vec<i64>> = named.map(|named| named.iter().map(|(_, option)| option.get()).collect());
    let taken = sqlx::query!(
        "DELETE FROM cart_items WHERE user_id = $1 AND ($2::bigint[] IS NULL OR option_id = ANY($2))
         RETURNING product_id, option_id, quantity",
        user.get(),
        options.as_deref()
    )
    .fetch_all(&mut **tx)
    .await?;
    if let Some(named) = named {
        let missing = named.iter().find(|(product, option)| {
            !taken.iter().any(|line| line.product_id == product.get() && line.option_id == option.get())
        });
        if let Some((_, option)) = missing {
            return Ok(Err(OrderRefusal::NotInCart { option: option.get() }));
        }
    }
    if taken.is_empty() {
        return Ok(Err(OrderRefusal::CartEmpty));
    }
    taken
        .into_iter()
        .map(|line| Ok((ProductId::parse(line.product_id)?, OptionId::parse(line.option_id)?, line.quantity)))
        .collect::<anyhow::Result<_>>()
        .map(Ok)
}

/// An order's lines, one per option, in option id order (the order stock rows are locked in):
/// option id -> (product id, units).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OrderLines(BTreeMap<i64, (i64, i32)>);

impl OrderLines {
    /// Merges lines naming the same option; refuses an option named with two products, a line above
    /// `MAX_LINE_QUANTITY` and more than `MAX_LINES` options.
    pub fn merge(lines: &[(ProductId, OptionId, i32)]) -> Result<Self, OrderRefusal> {
        merge(lines).map(Self)
    }

    /// (option id, units) per line: what the stock gate takes.
    pub fn units(&self) -> Vec<(i64, i32)> {
        self.0.iter().map(|(&option, &(_, units))| (option, units)).collect()
    }
}

fn merge(lines: &[(ProductId, OptionId, i32)]) -> Result<BTreeMap<i64, (i64, i32)>, OrderRefusal> {
    let mut merged: BTreeMap<i64, (i64, i32)> = BTreeMap::new();
    for &(product, option, quantity) in lines {
        let line = merged.entry(option.get()).or_insert((product.get(), 0));
        if line.0 != product.get() {
            return Err(OrderRefusal::UnknownOption(option.get()));
        }
        line.1 += quantity;
        if line.1 > MAX_LINE_QUANTITY {
            return Err(OrderRefusal::QuantityAboveLimit { option: option.get() });
        }
    }
    if merged.len() > MAX_LINES {
        return Err(OrderRefusal::TooManyLines);
    }
    Ok(merged)
}

/// Prices every line from the catalogue, refusing unknown, stopped and (as last committed) short options
/// without taking a lock.
async fn price_lines(tx: &mut Transaction<'_, Postgres>, OrderLines(lines): &OrderLines) -> Decided<Vec<PricedLine>> {
    let ids: Vec<i64> = lines.keys().copied().collect();
    let found = sqlx::query!(
        r#"SELECT o.id, o.product_id, p.name AS product_name, o.name AS option_name,
             p.status AS "status: ProductStatus", p.price + o.extra_price AS "unit_price!", o.stock
           FROM product_options o JOIN products p ON p.id = o.product_id WHERE o.id = ANY($1)"#,
        &ids
    )
    .fetch_all(&mut **tx)
    .await?;
    let mut priced = Vec::with_capacity(lines.len());
    for (&option_id, &(product_id, quantity)) in lines {
        let Some(row) = found.iter().find(|row| row.id == option_id && row.product_id == product_id) else {
            return Ok(Err(unknown_line(tx, product_id, option_id).await?));
        };
        if row.status == ProductStatus::Stopped {
            return Ok(Err(OrderRefusal::ProductStopped(product_id)));
        }
        if row.stock < quantity {
            return Ok(Err(OrderRefusal::OutOfStock { option: option_id, requested: quantity, left: row.stock }));
        }
        priced.push(PricedLine {
            option_id,
            product_id,
            product_name: row.product_name.clone(),
            option_name: row.option_name.clone(),
            quantity,
            unit_price: row.unit_price,
        });
    }
    Ok(Ok(priced))
}

async fn unknown_line(tx: &mut Transaction<'_, Postgres>, product: i64, option: i64) -> sqlx::Result<OrderRefusal> {
    let product_exists =
        sqlx::query_scalar!(r#"SELECT EXISTS (SELECT 1 FROM products WHERE id = $1) AS "e!""#, product)
            .fetch_one(&mut **tx)
            .await?;
    Ok(if product_exists { OrderRefusal::UnknownOption(option) } else { OrderRefusal::UnknownProduct(product) })
}

/// The caller's coupon with its policy's terms, row-locked; None if it is not theirs or does not exist.
async fn lock_coupon(
    tx: &mut Transaction<'_, Postgres>,
    coupon: CouponId,
    user: UserId,
) -> sqlx::Result<Option<CouponTerms>> {
    let row = sqlx::query!(
        r#"SELECT c.user_id, c.order_id, c.valid_until, p.discount_type AS "discount_type: DiscountType",
             p.discount_value, p.minimum_order_amount, p.maximum_discount_amount
           FROM coupons c JOIN coupon_policies p ON p.id = c.policy_id WHERE c.id = $1 FOR UPDATE OF c"#,
        coupon.get()
    )
    .fetch_optional(&mut **tx)
    .await?;
    Ok(row.filter(|row| row.user_id == user.get()).map(|row| CouponTerms {
        discount_type: row.discount_type,
        discount_value: row.discount_value,
        minimum_order_amount: row.minimum_order_amount,
        maximum_discount_amount: row.maximum_discount_amount,
        valid_until: row.valid_until,
        used_by: row.order_id,
    }))
}

struct Written {
    order_id: i64,
    user: UserId,
    breakdown: PriceBreakdown,
    coupon: Option<CouponId>,
    point_use_id: Option<i64>,
    payment_due_at: DateTime<Utc>,
}

/// The placement's history and events: PENDING_PAYMENT, then PAID at once when the coupon and the points
/// left nothing to pay (no provider is involved in such an order).
async fn record_placement(
    tx: &mut Transaction<'_, Postgres>,
    order: &OrderRow,
    items: &[OrderItemRow],
    trace_id: Option<&str>,
) -> sqlx::Result<()> {
    let buyer = OrderActor::Buyer(UserId::parse(order.user_id).map_err(|e| sqlx::Error::Decode(e.into()))?);
    record(&mut **tx, order.id, None, OrderStatus::PendingPayment, buyer, None, trace_id).await?;
    outbox::append(&mut **tx, placed_event(order, items, trace_id)).await?;
    if order.status == OrderStatus::Paid {
        let nothing = Some("nothing to pay after the coupon and the points");
        record(&mut **tx, order.id, Some(OrderStatus::PendingPayment), OrderStatus::Paid, buyer, nothing, trace_id)
            .await?;
        outbox::append(&mut **tx, paid_without_provider_event(order, trace_id)).await?;
    }
    Ok(())
}

async fn insert_order(
    tx: &mut Transaction<'_, Postgres>,
    written: &Written,
    shipping: &Shipping,
    payment_method: PaymentMethod,
    trace_id: Option<&str>,
) -> sqlx::Result<OrderRow> {
    let b = written.breakdown;
    sqlx::query_as!(
        OrderRow,
        r#"INSERT INTO orders (id, user_id, status, subtotal, coupon_id, coupon_discount, points_used, point_use_id,
             amount_to_pay, receiver_name, phone, address, payment_method, trace_id, payment_due_at, paid_at)
           OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15,
             CASE WHEN $3 = 'PAID' THEN now() END)
           RETURNING id, user_id, status AS "status: OrderStatus", subtotal, coupon_id, coupon_discount, points_used,
             point_use_id, amount_to_pay, receiver_name, phone, address,
             payment_method AS "payment_method: PaymentMethod", created_at, cancelled_at, payment_due_at, paid_at,
             carrier, tracking_number, delivered_at, status_changed_at, payment_round"#,
        written.order_id,
        written.user.get(),
        if b.amount_to_pay == 0 { OrderStatus::Paid } else { OrderStatus::PendingPayment } as OrderStatus,
        b.subtotal,
        written.coupon.map(CouponId::get),
        b.coupon_discount,
        b.points_used,
        written.point_use_id,
        b.amount_to_pay,
        shipping.receiver_name,
        shipping.phone,
        shipping.address,
        payment_method as PaymentMethod,
        trace_id,
        written.payment_due_at
    )
    .fetch_one(&mut **tx)
    .await
}

async fn insert_items(
    tx: &mut Transaction<'_, Postgres>,
    order: i64,
    lines: &[PricedLine],
) -> sqlx::Result<Vec<OrderItemRow>> {
    let column = |f: fn(&PricedLine) -> i64| lines.iter().map(f).collect::<Vec<_>>();
    let names = |f: fn(&PricedLine) -> &str| lines.iter().map(|l| f(l).to_owned()).collect::<Vec<_>>();
    let quantities: Vec<i32> = lines.iter().map(|line| line.quantity).collect();
    sqlx::query_as!(
        OrderItemRow,
        "INSERT INTO order_items (order_id, option_id, product_id, product_name, option_name, quantity, unit_price, line_total)
         SELECT $1, l.option_id, l.product_id, l.product_name, l.option_name, l.quantity, l.unit_price,
                l.unit_price * l.quantity
         FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::int[], $7::bigint[])
              AS l(option_id, product_id, product_name, option_name, quantity, unit_price)
         RETURNING option_id, product_id, product_name, option_name, quantity, unit_price, line_total",
        order,
        &column(|l| l.option_id),
        &column(|l| l.product_id),
        &names(|l| &l.product_name),
        &names(|l| &l.option_name),
        &quantities,
        &column(|l| l.unit_price),
    )
    .fetch_all(&mut **tx)
    .await
}

/// The guarded decrements, in option id order, last in the transaction: the hot row of a flash sale is
/// locked from here to the commit only.
async fn take_stock(tx: &mut Transaction<'_, Postgres>, lines: &[PricedLine]) -> Decided<StockLeft> {
    let mut stock_left = Vec::with_capacity(lines.len());
    for line in lines {
        let left = sqlx::query_scalar!(
            "UPDATE product_options SET stock = stock - $2 WHERE id = $1 AND stock >= $2 RETURNING stock",
            line.option_id,
            line.quantity
        )
        .fetch_optional(&mut **tx)
        .await?;
        if let Some(left) = left {
            stock_left.push((line.option_id, left));
        } else {
            let left = crate::shop::catalogue::stock_of(&mut **tx, line.option_id).await?.unwrap_or(0);
            return Ok(Err(OrderRefusal::OutOfStock { option: line.option_id, requested: line.quantity, left }));
        }
    }
    Ok(Ok(StockLeft(stock_left)))
}

fn placed_event<'a>(order: &OrderRow, items: &[OrderItemRow], trace_id: Option<&'a str>) -> NewEvent<'a> {
    let items: Vec<_> = items
        .iter()
        .map(|item| json!({ "optionId": item.option_id, "quantity": item.quantity, "unitPrice": item.unit_price }))
        .collect();
    NewEvent {
        aggregate: outbox::Aggregate::Order,
        aggregate_id: order.id.to_string(),
        event_type: "OrderPlaced",
        payload: json!({
            "orderId": order.id,
            "userId": order.user_id,
            "subtotal": order.subtotal,
            "couponId": order.coupon_id,
            "couponDiscount": order.coupon_discount,
            "pointsUsed": order.points_used,
            "amountToPay": order.amount_to_pay,
            "items": items,
            "placedAt": order.created_at,
            "paymentDueAt": order.payment_due_at,
        }),
        trace_id,
    }
}

fn paid_without_provider_event<'a>(order: &OrderRow, trace_id: Option<&'a str>) -> NewEvent<'a> {
    NewEvent {
        aggregate: outbox::Aggregate::Order,
        aggregate_id: order.id.to_string(),
        event_type: event_type(OrderStatus::Paid),
        payload: json!({
            "orderId": order.id,
            "userId": order.user_id,
            "from": OrderStatus::PendingPayment,
            "status": OrderStatus::Paid,
            "amountToPay": 0,
            "at": order.paid_at,
        }),
        trace_id,
    }
}

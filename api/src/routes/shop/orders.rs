//! Orders: place (from named lines or the cart), cancel, and read. Every write is one transaction; a
//! refusal rolls it back, so it writes nothing (not even the idempotency key: a retry is decided anew).

use super::{
    carts::owner,
    placing,
    views::{OrderMoveView, OrderView},
};
use crate::http::idempotent::IdempotencyKeyHeader;
use crate::openapi::Problems;
use crate::{
    auth::{AdminUser, AuthUser},
    http::{
        idempotent::idempotency_key, middleware::TraceId, to_completion, ApiError, ApiJson, ApiPath, ApiQuery,
        ApiResult, ErrorCode,
    },
    AppState,
};
use axum::{extract::State, http::HeaderMap, response::Response, Extension, Json};
use domain::whole_number;
use domain::{
    points::PointAmount,
    shop::{check_quantity, OrderAction, OrderStatus, PaymentMethod, ShippingInput, MAX_LINES},
    CouponId, FieldErrors, OptionId, OrderId, ProductId, UserId,
};
use infra::shop::orders::{self, LineSource, MoveRequest, OrderActor, OrderLines, OrderRequest, Shipment, Shipping};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(place, list))
        .routes(routes!(place_cart))
        .routes(routes!(cancel))
        .routes(routes!(read))
        .routes(routes!(history))
        .routes(routes!(ship))
        .routes(routes!(deliver))
        .routes(routes!(confirm))
        .routes(routes!(refund))
        .routes(routes!(after_sales_refund))
        .routes(routes!(super::payment::pay))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LineBody {
    #[schema(value_type = i64, minimum = 1)]
    product_id: ProductId,
    #[schema(value_type = i64, minimum = 1)]
    option_id: OptionId,
    #[schema(minimum = 1, maximum = 999)]
    quantity: i32,
}

/// Both order routes' body: `items` for an order of named lines, `lines` (optional: the whole cart when
/// absent) for a cart order; each route refuses the other's field by name.
#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct OrderBody {
    items: Option<Vec<LineBody>>,
    lines: Option<Vec<CartLineRef>>,
    coupon_id: Option<CouponId>,
    points: Option<PointAmount>,
    shipping: ShippingInput,
    payment_method: PaymentMethod,
}

/// The document's schema of each order route's body: `OrderBody` with only that route's line field.
macro_rules! order_schema {
    ($(#[$doc:meta])* $name:ident { $($lines:tt)* }) => {
        #[derive(Deserialize, utoipa::ToSchema)]
        $(#[$doc])*
        #[serde(rename_all = "camelCase", deny_unknown_fields)]
        #[allow(dead_code)]
        struct $name {
            $($lines)*
            #[schema(value_type = Option<i64>, minimum = 1)]
            coupon_id: Option<CouponId>,
            /// Points to spend on what is left to pay after the coupon.
            #[schema(value_type = Option<i64>, minimum = 1, maximum = 10_000_000)]
            points: Option<PointAmount>,
            shipping: ShippingInput,
            payment_method: PaymentMethod,
        }
    };
}

order_schema! {
    /// An order of the lines it names.
    #[schema(example = json!({ "items": [{ "productId": 3, "optionId": 11, "quantity": 2 }], "couponId": 501, "points": 1500,
        "shipping": { "receiverName": "Ana Kim", "phone": "010-1234-5678", "address": "1 Teheran-ro, Gangnam-gu, Seoul" },
        "paymentMethod": "CARD" }))]
    PlaceOrderBody {
        #[schema(min_items = 1, max_items = 50)]
        items: Vec<LineBody>,
    }
}

order_schema! {
    /// An order of cart lines: those named, or the whole cart when `lines` is absent. The lines ordered
    /// leave the cart.
    #[schema(example = json!({ "shipping": { "receiverName": "Ana Kim", "phone": "010-1234-5678", "address": "1 Teheran-ro, Gangnam-gu, Seoul" },
        "paymentMethod": "BANK_TRANSFER" }))]
    CartOrderBody {
        #[schema(min_items = 1, max_items = 50)]
        lines: Option<Vec<CartLineRef>>,
    }
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CartLineRef {
    #[schema(value_type = i64, minimum = 1)]
    product_id: ProductId,
    #[schema(value_type = i64, minimum = 1)]
    option_id: OptionId,
}

/// Places an order of the lines named: stock, the coupon and the points are taken in one transaction.
#[utoipa::path(post, path = "/api/v3/orders", tag = "shop", request_body = PlaceOrderBody, params(IdempotencyKeyHeader), security(("bearer" = [])),
    responses((status = 201, body = OrderView, description = "placed: stock, coupon and points taken in one transaction", links(("read" = (operation_id = "read_order", parameters(("order_id" = "$response.body#/id")))))), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
async fn place(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OrderBody>,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    let items = body.items.as_deref().unwrap_or_default();
    if items.is_empty() || items.len() > MAX_LINES {
        errors.add("items", format!("must hold 1 to {MAX_LINES} lines"));
    }
    if body.lines.is_some() {
        errors.add("lines", "names cart lines: send it to /api/v3/orders/cart");
    }
    for line in items {
        check_quantity(&mut errors, "items.quantity", line.quantity);
    }
    let named: Vec<_> = items.iter().map(|line| (line.product_id, line.option_id, line.quantity)).collect();
    // Merged once, here: the stock gate and the transaction use the same lines. With invalid fields the
    // request is refused below, naming every one, before the lines are used.
    let lines = if errors.is_empty() {
        OrderLines::merge(&named).map_err(placing::order_refusal)?
    } else {
        OrderLines::default()
    };
    let request = order_request(&state, caller.user_id, LineSource::Given(lines), &body, errors)?;
    let key = idempotency_key(&headers, caller, "orders", &body)?;
    to_completion(async move { placing::place(&state, key, request, &trace_id).await }).await
}

/// Places an order of cart lines (those named, or the whole cart); the lines ordered leave the cart.
#[utoipa::path(post, path = "/api/v3/orders/cart", tag = "shop", request_body = CartOrderBody, params(IdempotencyKeyHeader), security(("bearer" = [])),
    responses((status = 201, body = OrderView, description = "placed: stock, coupon and points taken in one transaction", links(("read" = (operation_id = "read_order", parameters(("order_id" = "$response.body#/id")))))), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id))]
async fn place_cart(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<OrderBody>,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    if body.items.is_some() {
        errors.add("items", "a cart order takes its lines from the cart: name them in `lines`");
    }
    if body.lines.as_ref().is_some_and(|lines| lines.is_empty() || lines.len() > MAX_LINES) {
        errors.add("lines", format!("must name 1 to {MAX_LINES} lines, or be left out for the whole cart"));
    }
    let named = body.lines.as_ref().map(|lines| lines.iter().map(|l| (l.product_id, l.option_id)).collect());
    let request = order_request(&state, caller.user_id, LineSource::Cart(named), &body, errors)?;
    let key = idempotency_key(&headers, caller, "orders/cart", &body)?;
    to_completion(async move { placing::place(&state, key, request, &trace_id).await }).await
}

fn order_request(
    state: &AppState,
    user: UserId,
    lines: LineSource,
    checkout: &OrderBody,
    mut errors: FieldErrors,
) -> ApiResult<OrderRequest> {
    let shipping = checkout.shipping.validate(&mut errors);
    errors.into_result(|| ()).map_err(ApiError::Invalid)?;
    let (receiver_name, phone, address) = shipping.ok_or_else(|| anyhow::anyhow!("valid shipping without values"))?;
    Ok(OrderRequest {
        user,
        lines,
        coupon: checkout.coupon_id,
        points: checkout.points,
        shipping: Shipping { receiver_name, phone, address },
        payment_method: checkout.payment_method,
        payment_window: state.orders.payment_window(),
    })
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CancelBody {
    #[schema(value_type = i64, minimum = 1)]
    order_id: OrderId,
}

/// Cancels an order that has not shipped: stock, the coupon and the points come back exactly once, and a
/// payment taken goes back at the provider; a virtual account still waiting for its deposit is closed there
/// first (503 while the provider cannot be reached).
#[utoipa::path(post, path = "/api/v3/orders/cancel", operation_id = "cancel_order", tag = "shop", request_body = CancelBody, security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
#[tracing::instrument(skip_all, fields(caller = %caller.user_id, order = %body.order_id))]
async fn cancel(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiJson(body): ApiJson<CancelBody>,
) -> ApiResult<Response> {
    let request = caller_move(caller, body.order_id, OrderAction::Cancel, &trace_id);
    to_completion(async move { placing::move_order(&state, request).await }).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "carrier": "CJ Logistics", "trackingNumber": "6789-1234-5678" }))]
struct ShipBody {
    #[schema(schema_with = domain::text_schema::<50>)]
    carrier: String,
    #[schema(schema_with = domain::text_schema::<100>)]
    tracking_number: String,
}

/// Ships a paid order (admin), with its carrier and tracking number.
#[utoipa::path(post, path = "/api/v3/orders/{order_id}/ship", operation_id = "ship_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), request_body = ShipBody, security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
#[tracing::instrument(skip_all, fields(admin = %admin.user_id, order = %order))]
async fn ship(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(order): ApiPath<OrderId>,
    ApiJson(body): ApiJson<ShipBody>,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    let carrier = errors.text("carrier", Some(&body.carrier), 50);
    let tracking_number = errors.text("trackingNumber", Some(&body.tracking_number), 100);
    let shipment = errors
        .into_result(|| carrier.zip(tracking_number))
        .map_err(ApiError::Invalid)?
        .map(|(carrier, tracking_number)| Shipment { carrier, tracking_number })
        .ok_or_else(|| anyhow::anyhow!("valid shipment fields without values"))?;
    let mut request = caller_move(admin, order, OrderAction::Ship, &trace_id);
    request.shipment = Some(shipment);
    to_completion(async move { placing::move_order(&state, request).await }).await
}

/// Records a shipped order as delivered (admin); the return window opens.
#[utoipa::path(post, path = "/api/v3/orders/{order_id}/deliver", operation_id = "deliver_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
#[tracing::instrument(skip_all, fields(admin = %admin.user_id, order = %order))]
async fn deliver(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(order): ApiPath<OrderId>,
) -> ApiResult<Response> {
    let request = caller_move(admin, order, OrderAction::Deliver, &trace_id);
    to_completion(async move { placing::move_order(&state, request).await }).await
}

/// Purchase confirmation (구매확정) by the buyer: the delivered order is accepted and closes.
#[utoipa::path(post, path = "/api/v3/orders/{order_id}/confirm", operation_id = "confirm_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
#[tracing::instrument(skip_all, fields(caller = %caller.user_id, order = %order))]
async fn confirm(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(order): ApiPath<OrderId>,
) -> ApiResult<Response> {
    // The buyer's act alone: an admin confirms no one's purchase (the auto-confirmation job does, later).
    let mut request = caller_move(caller, order, OrderAction::Confirm, &trace_id);
    request.actor = OrderActor::Buyer(caller.user_id);
    to_completion(async move { placing::move_order(&state, request).await }).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "reason": "the size does not fit" }))]
struct RefundBody {
    /// Why the buyer sends it back: kept in the order's history and sent to the provider.
    #[schema(schema_with = domain::text_schema::<200>)]
    reason: String,
}

/// Refunds a delivered order within the return window (the buyer): the provider gives the payment back
/// first, then stock, the coupon and the points come back exactly once.
#[utoipa::path(post, path = "/api/v3/orders/{order_id}/refund", operation_id = "refund_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), request_body = RefundBody, security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
#[tracing::instrument(skip_all, fields(caller = %caller.user_id, order = %order))]
async fn refund(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(order): ApiPath<OrderId>,
    ApiJson(body): ApiJson<RefundBody>,
) -> ApiResult<Response> {
    let reason = refund_reason(&body)?;
    // The buyer's act alone, like the confirmation: a refund answers the buyer's return.
    let mut request = caller_move(caller, order, OrderAction::Refund, &trace_id);
    request.actor = OrderActor::Buyer(caller.user_id);
    request.reason = Some(reason);
    to_completion(async move { placing::move_order(&state, request).await }).await
}

/// Gives a confirmed purchase's money back (admin): a return accepted after the buyer's confirmation, or
/// a chargeback. The provider refunds first, then stock, the coupon and the points come back exactly once;
/// the day's settlement books it as a reversal of the sale.
#[utoipa::path(post, path = "/api/v3/orders/{order_id}/after-sales-refund", operation_id = "after_sales_refund_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), request_body = RefundBody, security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
#[tracing::instrument(skip_all, fields(admin = %admin.user_id, order = %order))]
async fn after_sales_refund(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(order): ApiPath<OrderId>,
    ApiJson(body): ApiJson<RefundBody>,
) -> ApiResult<Response> {
    let mut request = caller_move(admin, order, OrderAction::AfterSalesRefund, &trace_id);
    request.reason = Some(refund_reason(&body)?);
    to_completion(async move { placing::move_order(&state, request).await }).await
}

/// The stated reason of a refund, checked like every text field.
fn refund_reason(body: &RefundBody) -> ApiResult<String> {
    let mut errors = FieldErrors::default();
    let reason = errors.text("reason", Some(&body.reason), 200);
    Ok(errors
        .into_result(|| reason)
        .map_err(ApiError::Invalid)?
        .ok_or_else(|| anyhow::anyhow!("a valid reason without a value"))?)
}

/// A move asked by `caller`: a buyer moves their own orders, an admin anyone's.
fn caller_move(caller: AuthUser, order: OrderId, action: OrderAction, trace_id: &str) -> MoveRequest {
    let actor = if caller.is_admin() { OrderActor::Admin(caller.user_id) } else { OrderActor::Buyer(caller.user_id) };
    MoveRequest {
        order,
        action,
        actor,
        reason: None,
        shipment: None,
        payment_returned: false,
        asked_at: None,
        trace_id: Some(trace_id.to_owned()),
    }
}

/// One order with its lines and breakdown (the owner, or an admin).
#[utoipa::path(get, path = "/api/v3/orders/{order_id}", operation_id = "read_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = OrderView), Problems))]
async fn read(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath(order): ApiPath<OrderId>,
) -> ApiResult<Json<OrderView>> {
    let placed = orders::order(&state.pool, order).await?.ok_or_else(|| unknown_order(order))?;
    let owner = UserId::parse(placed.order.user_id).map_err(anyhow::Error::from)?;
    caller.ensure_owner(owner, || unknown_order(order))?;
    let payment = orders::latest_attempt(&state.pool, order.get()).await?;
    Ok(Json(OrderView::from(placed).with_payment(payment)))
}

/// The order's history: every move with who made it, why, and its trace id, oldest first.
#[utoipa::path(get, path = "/api/v3/orders/{order_id}/history", operation_id = "order_history", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), security(("bearer" = [])),
    responses((status = 200, body = [OrderMoveView]), Problems))]
async fn history(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath(order): ApiPath<OrderId>,
) -> ApiResult<Json<Vec<OrderMoveView>>> {
    let placed = orders::order(&state.pool, order).await?.ok_or_else(|| unknown_order(order))?;
    let owner = UserId::parse(placed.order.user_id).map_err(anyhow::Error::from)?;
    caller.ensure_owner(owner, || unknown_order(order))?;
    let moves = orders::history_of(&state.pool, order.get()).await?;
    Ok(Json(moves.into_iter().map(OrderMoveView::from).collect()))
}

/// `?before=<id>&limit=<1..=100>&status=<OrderStatus>&userId=<admin only>`: newest first.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// The `nextBefore` of the previous page.
    #[serde(default, deserialize_with = "whole_number::optional_int")]
    #[param(minimum = 1)]
    before: Option<i64>,
    #[serde(default = "default_limit", deserialize_with = "whole_number::int")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: i64,
    status: Option<OrderStatus>,
    #[param(value_type = Option<i64>, minimum = 1)]
    user_id: Option<UserId>,
}

fn default_limit() -> i64 {
    20
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct OrderPage {
    items: Vec<OrderView>,
    /// Pass as `before` for the next (older) page; absent on the last page.
    next_before: Option<i64>,
}

/// The caller's orders (or `userId`'s for an admin), newest first, in keyset pages.
#[utoipa::path(get, path = "/api/v3/orders", operation_id = "list_orders", tag = "shop", params(ListQuery), security(("bearer" = [])),
    responses((status = 200, body = OrderPage), Problems))]
async fn list(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> ApiResult<Json<OrderPage>> {
    if !(1..=100).contains(&query.limit) || query.before.is_some_and(|before| before <= 0) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 100 and before positive"));
    }
    let user = owner(caller, query.user_id)?;
    let rows =
        orders::orders_of(&state.pool, user, query.before.unwrap_or(i64::MAX), query.limit, query.status).await?;
    let next_before = if rows.len() as i64 == query.limit { rows.last().map(|row| row.id) } else { None };
    Ok(Json(OrderPage { items: rows.into_iter().map(OrderView::summary).collect(), next_before }))
}

pub(super) fn unknown_order(order: OrderId) -> ApiError {
    ApiError::new(ErrorCode::OrderNotFound, format!("no order {order}"))
}

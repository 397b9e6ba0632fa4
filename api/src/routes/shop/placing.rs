//! The write paths of orders: the stock gate in front, one transaction behind, the gate told afterwards
//! what the database committed. Refusals map to the catalogue's codes here.

use super::{orders::unknown_order, views::OrderView};
use crate::{
    http::{idempotent, json_response, ApiError, ApiResult, ErrorCode},
    AppState,
};
use axum::{
    http::StatusCode,
    response::{IntoResponse, Response},
    Json,
};
use domain::{
    shop::{MoveRefusal, NotApplicable, OrderAction, OrderStatus},
    OrderId,
};
use infra::{
    idempotency::{self, IdempotencyKey},
    payments::{GatewayError, PaymentGateway},
    shop::{
        orders::{
            self, AccountClosed, Effects, LineSource, MoveFailure, MoveRequest, OrderRefusal, OrderRequest,
            PlacedOrder, Refund, RefundOutcome,
        },
        Admission, Ticket,
    },
};
use serde_json::json;

/// Places `request` (behind `key` if the client sent one) and answers 201 with the breakdown.
pub async fn place(
    state: &AppState,
    key: Option<IdempotencyKey>,
    request: OrderRequest,
    trace_id: &str,
) -> ApiResult<Response> {
    let ticket = match admit(state, &request).await {
        Ok(ticket) => ticket,
        Err(refused) => return answer_refused_or_replay(state, key.as_ref(), refused).await,
    };
    let outcome = place_in_transaction(state, key.as_ref(), request, trace_id).await;
    match (outcome, ticket) {
        (Ok(Placed::Committed { response, stock_left }), ticket) => {
            // Gate-admitted orders took their units from the gate already; others tell it what is left.
            if ticket.is_none() {
                state.stock_gate.sync(&stock_left).await;
            }
            Ok(response)
        }
        (Ok(Placed::Replayed(response)), ticket) => {
            give_back(state, ticket).await;
            Ok(response)
        }
        (Err(error), ticket) => {
            give_back(state, ticket).await;
            if let Some((option, left)) = error.short_option() {
                state.stock_gate.sync(&[(option, left)]).await;
            }
            Err(error.into())
        }
    }
}

enum Placed {
    Committed { response: Response, stock_left: Vec<(i64, i32)> },
    Replayed(Response),
}

/// A failed placement: a refusal, or an error.
enum Failed {
    Refused(OrderRefusal),
    Error(ApiError),
}

impl Failed {
    fn short_option(&self) -> Option<(i64, i32)> {
        match self {
            Failed::Refused(OrderRefusal::OutOfStock { option, left, .. }) => Some((*option, *left)),
            _ => None,
        }
    }
}

impl From<Failed> for ApiError {
    fn from(failed: Failed) -> Self {
        match failed {
            Failed::Refused(refusal) => order_refusal(refusal),
            Failed::Error(error) => error,
        }
    }
}

macro_rules! failed_from {
    ($($error:ty),*) => {$(
        impl From<$error> for Failed {
            fn from(error: $error) -> Self {
                Failed::Error(error.into())
            }
        }
    )*};
}

failed_from!(ApiError, sqlx::Error, anyhow::Error);

async fn place_in_transaction(
    state: &AppState,
    key: Option<&IdempotencyKey>,
    request: OrderRequest,
    trace_id: &str,
) -> Result<Placed, Failed> {
    let mut tx = state.pool.begin().await?;
    if let Some(key) = key {
        if let Some(first_answer) = idempotent::claim(&mut tx, key).await? {
            return Ok(Placed::Replayed(first_answer));
        }
    }
    let (placed, effects) = orders::place(&mut tx, request, Some(trace_id)).await?.map_err(Failed::Refused)?;
    let body = serde_json::to_value(OrderView::from(placed)).map_err(anyhow::Error::from)?;
    if let Some(key) = key {
        idempotency::complete(&mut tx, key, StatusCode::CREATED.as_u16(), &body).await?;
    }
    state.balances.commit(tx, effects.balance).await?;
    Ok(Placed::Committed { response: json_response(StatusCode::CREATED, &body), stock_left: effects.stock_left.0 })
}

/// Takes a named-lines order's units from the gate. Cart orders skip it: their lines are only known
/// inside the transaction (and a cart is not how a flash sale is bought).
async fn admit(state: &AppState, request: &OrderRequest) -> Result<Option<Ticket>, OrderRefusal> {
    let LineSource::Given(lines) = &request.lines else { return Ok(None) };
    match state.stock_gate.admit(&lines.units()).await {
        Admission::Admitted(ticket) => Ok(Some(ticket)),
        Admission::Bypassed => Ok(None),
        Admission::SoldOut { option, requested, left } => Err(OrderRefusal::OutOfStock { option, requested, left }),
    }
}

/// A gate refusal, unless the request is a retry of an order placed with its key. The key's first request
/// may still be inside its transaction (the units the gate is out of may be its own): claiming the key
/// waits for it to commit, then answers its order, or to roll back, then refuses.
async fn answer_refused_or_replay(
    state: &AppState,
    key: Option<&IdempotencyKey>,
    refused: OrderRefusal,
) -> ApiResult<Response> {
    if let Some(key) = key {
        let mut tx = state.pool.begin().await?;
        if let Some(first_answer) = idempotent::claim(&mut tx, key).await? {
            return Ok(first_answer);
        }
        // The key was free: the refusal is this request's own answer, and the key stays unused.
        tx.rollback().await?;
    }
    Err(order_refusal(refused))
}

async fn give_back(state: &AppState, ticket: Option<Ticket>) {
    if let Some(ticket) = ticket {
        state.stock_gate.give_back(ticket).await;
    }
}

/// Makes one move of an order's lifecycle, in one transaction; the caches learn what a releasing move
/// gave back once it committed. A move that gives the payment back first asks the provider for the refund.
pub async fn move_order(state: &AppState, request: MoveRequest) -> ApiResult<Response> {
    let (order, action) = (request.order, request.action);
    // Each turn finds the order in another status than the last one did (statuses only move forward),
    // so this ends.
    loop {
        let mut tx = state.pool.begin().await?;
        let moved = match orders::move_order(&mut tx, request.clone(), state.orders.lifecycle()).await? {
            Err(MoveFailure::PaymentNotReturned) => {
                tx.rollback().await?;
                match refund_then_move(state, request.clone()).await? {
                    Some(response) => return Ok(response),
                    None => continue,
                }
            }
            Err(MoveFailure::PaymentInProgress) if action == OrderAction::Cancel => {
                tx.rollback().await?;
                close_account_then_move(state, &request).await?;
                continue;
            }
            moved => moved,
        };
        let (moved, effects) = moved.map_err(|failure| move_failure(order, action, failure))?;
        state.balances.commit(tx, effects.balance).await?;
        return moved_view(state, moved, effects).await;
    }
}

async fn moved_view(state: &AppState, moved: PlacedOrder, effects: Effects) -> ApiResult<Response> {
    if !effects.stock_left.0.is_empty() {
        state.stock_gate.sync(&effects.stock_left.0).await;
    }
    let payment = orders::latest_attempt(&state.pool, moved.order.id).await?;
    Ok(Json(OrderView::from(moved).with_payment(payment)).into_response())
}

/// A cancel that finds the order's payment in progress: a virtual account waiting for the deposit is
/// closed at the provider first (or found paid), so the next turn cancels the order unpaid or gives the
/// deposit back; anything else in progress, or a provider that does not answer, keeps the refusal.
async fn close_account_then_move(state: &AppState, request: &MoveRequest) -> ApiResult<()> {
    let closed = orders::close_waiting_account(
        &state.pool,
        &state.payments,
        request.order,
        state.orders.lifecycle(),
        request.trace_id.as_deref(),
    )
    .await?;
    match closed {
        AccountClosed::Settled(effects) => {
            if let Some(effects) = effects {
                effects.announce(&state.balances, &state.stock_gate).await;
            }
            Ok(())
        }
        AccountClosed::NoneWaiting => Err(move_failure(request.order, request.action, MoveFailure::PaymentInProgress)),
        AccountClosed::Unanswered => Err(ApiError::retry_after(
            ErrorCode::PaymentProviderUnavailable,
            format!("the provider did not close the virtual account of order {}: try again", request.order),
            1,
        )),
    }
}

/// The refund at the provider, recorded before and committed after the call, then the move with it;
/// `None` when, by the time the refund is recorded, the order's move no longer gives a payment back.
async fn refund_then_move(state: &AppState, request: MoveRequest) -> ApiResult<Option<Response>> {
    let (order, action) = (request.order, request.action);
    let reason = request.stated_reason();
    let refund = match orders::begin_refund(&state.pool, &request, state.orders.lifecycle()).await? {
        Ok(Some(refund)) => refund,
        Ok(None) => return Ok(None),
        Err(failure) => return Err(move_failure(order, action, failure)),
    };
    let key = refund.idempotency_key.to_string();
    let outcome = match state.payments.cancel(&refund.attempt.payment_key, &reason, &key).await {
        Ok(payment) if payment.balance_amount == 0 => RefundOutcome::Returned,
        Ok(_) => RefundOutcome::Unknown,
        Err(GatewayError::AlreadyProcessed { .. }) => refunded_already(state, &refund).await,
        Err(GatewayError::Unknown(_)) => RefundOutcome::Unknown,
        Err(_) => RefundOutcome::NotReturned,
    };
    let asked = MoveRequest { asked_at: Some(chrono::Utc::now()), ..request };
    let mut tx = state.pool.begin().await?;
    let settled = orders::settle_refund(&mut tx, &refund, outcome.clone(), asked, state.orders.lifecycle()).await?;
    let balance = settled.as_ref().and_then(|moved| moved.as_ref().ok()).and_then(|(_, effects)| effects.balance);
    state.balances.commit(tx, balance).await?;
    match (outcome, settled) {
        (RefundOutcome::Returned, Some(Ok((moved, effects)))) => moved_view(state, moved, effects).await.map(Some),
        (RefundOutcome::Returned, Some(Err(failure))) => Err(move_failure(order, action, failure)),
        (RefundOutcome::Unknown, _) => Err(ApiError::new(
            ErrorCode::PaymentInProgress,
            format!("the provider did not confirm the refund of order {order}; it is settled by asking it again"),
        )),
        _ => Err(ApiError::retry_after(
            ErrorCode::PaymentProviderUnavailable,
            format!("the provider did not give order {order}'s payment back; nothing changed: retry shortly"),
            1,
        )),
    }
}

/// The provider says the payment was cancelled before (an earlier try whose answer was lost): its
/// look-up tells whether the money is back.
async fn refunded_already(state: &AppState, refund: &Refund) -> RefundOutcome {
    let order_ref = refund.attempt.order_ref();
    match state.payments.payment_of_order(&order_ref).await {
        Ok(Some(payment)) if payment.balance_amount == 0 => RefundOutcome::Returned,
        Ok(_) => RefundOutcome::NotReturned,
        Err(_) => RefundOutcome::Unknown,
    }
}

fn move_failure(order: OrderId, action: OrderAction, failure: MoveFailure) -> ApiError {
    match failure {
        MoveFailure::UnknownOrder => unknown_order(order),
        // A move told the payment came back when the order holds one it did not give back: a bug.
        MoveFailure::PaymentNotReturned => {
            anyhow::anyhow!("order {order} would release money the provider still holds").into()
        }
        MoveFailure::PaymentInProgress => {
            ApiError::new(ErrorCode::PaymentInProgress, format!("a payment of order {order} waits for its outcome"))
        }
        MoveFailure::Refused(refusal) => refused_move(order, action, refusal),
    }
}

/// The table's refusal of `action` on `order`, as its error code.
pub(super) fn refused_move(order: OrderId, action: OrderAction, refusal: MoveRefusal) -> ApiError {
    let (code, detail) = match refusal {
        MoveRefusal::Closed(OrderStatus::Cancelled) if action == OrderAction::Cancel => {
            (ErrorCode::AlreadyCancelled, format!("order {order} was cancelled before"))
        }
        MoveRefusal::Closed(status) => (ErrorCode::OrderClosed, format!("order {order} is {}", status_name(status))),
        MoveRefusal::NotPayable(status) => {
            (ErrorCode::OrderNotPayable, format!("order {order} is {}", status_name(status)))
        }
        MoveRefusal::PaymentWindowClosed => {
            (ErrorCode::PaymentWindowClosed, format!("order {order} was not paid in time"))
        }
        MoveRefusal::RefundInstead => {
            (ErrorCode::CancelAfterShipping, format!("order {order} has shipped: ask for a refund once delivered"))
        }
        MoveRefusal::ReturnWindowClosed => {
            (ErrorCode::ReturnWindowClosed, format!("order {order} was delivered too long ago to be refunded"))
        }
        MoveRefusal::OutOfOrder(status) => {
            let detail = format!("order {order} is {}: {action:?} does not follow", status_name(status));
            return ApiError::with_fields(ErrorCode::OrderStatusConflict, detail, json!({ "orderStatus": status }));
        }
        MoveRefusal::NotDue => {
            let detail = format!("order {order} is still within its payment window");
            let status = OrderStatus::PendingPayment;
            return ApiError::with_fields(ErrorCode::OrderStatusConflict, detail, json!({ "orderStatus": status }));
        }
    };
    ApiError::new(code, detail)
}

fn status_name(status: OrderStatus) -> String {
    serde_json::to_value(status).ok().and_then(|value| value.as_str().map(str::to_owned)).unwrap_or_default()
}

pub(super) fn order_refusal(refusal: OrderRefusal) -> ApiError {
    match refusal {
        OrderRefusal::UnknownProduct(product) => ApiError::with_fields(
            ErrorCode::ProductNotFound,
            format!("no product {product}"),
            json!({ "productId": product }),
        ),
        OrderRefusal::UnknownOption(option) => ApiError::with_fields(
            ErrorCode::OptionNotFound,
            format!("no option {option} of the product named with it"),
            json!({ "optionId": option }),
        ),
        OrderRefusal::ProductStopped(product) => ApiError::with_fields(
            ErrorCode::ProductNotAvailable,
            format!("product {product} is stopped"),
            json!({ "productId": product }),
        ),
        OrderRefusal::OutOfStock { option, requested, left } => ApiError::with_fields(
            ErrorCode::OutOfStock,
            format!("option {option} has {left} units left; {requested} ordered"),
            json!({ "optionId": option, "requested": requested, "left": left }),
        ),
        OrderRefusal::CartEmpty => ApiError::new(ErrorCode::CartEmpty, "the cart has no lines to order"),
        OrderRefusal::NotInCart { option } => ApiError::with_fields(
            ErrorCode::CartLineNotFound,
            format!("the cart has no line for option {option}"),
            json!({ "optionId": option }),
        ),
        OrderRefusal::TooManyLines => {
            ApiError::new(ErrorCode::InvalidBody, format!("an order holds at most {} lines", domain::shop::MAX_LINES))
        }
        OrderRefusal::QuantityAboveLimit { option } => ApiError::with_fields(
            ErrorCode::QuantityAboveLimit,
            format!("option {option} is ordered more than {} times", domain::shop::MAX_LINE_QUANTITY),
            json!({ "optionId": option }),
        ),
        OrderRefusal::UnknownCoupon => ApiError::new(ErrorCode::CouponNotFound, "no such coupon"),
        OrderRefusal::CouponNotApplicable(rule) => coupon_not_applicable(rule),
        OrderRefusal::PointsAboveAmount(above) => ApiError::with_fields(
            ErrorCode::PointsExceedAmount,
            above.to_string(),
            json!({ "points": above.asked, "payable": above.payable }),
        ),
        OrderRefusal::InsufficientBalance { balance } => ApiError::with_fields(
            ErrorCode::InsufficientBalance,
            format!("the balance is {balance} points"),
            json!({ "balance": balance }),
        ),
    }
}

fn coupon_not_applicable(rule: NotApplicable) -> ApiError {
    ApiError::with_fields(ErrorCode::CouponNotApplicable, rule.to_string(), json!({ "reason": rule.reason() }))
}

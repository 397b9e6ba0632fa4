//! Paying an order through the provider: the attempt is recorded and committed, the provider is asked
//! with no transaction open, the outcome is committed. A retry with the same payment key answers the
//! recorded outcome; an outcome nobody knows answers 202 and is settled later by the provider's look-up.

use super::{orders::unknown_order, placing::refused_move, views::OrderView};
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{middleware::TraceId, to_completion, ApiError, ApiJson, ApiPath, ApiResult, ErrorCode},
    AppState,
};
use axum::{
    extract::State,
    http::StatusCode,
    response::{IntoResponse, Response},
    Extension, Json,
};
use domain::{shop::PaymentAttemptStatus, FieldErrors, OrderId};
use infra::{
    payments::{GatewayError, PaymentGateway},
    shop::orders::{self, Attempt, Began, Outcome, PayRefusal},
};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "paymentKey": "5zJ4xY7m0kODnyRpQWGrN2xqGlNvLrKwv1M9ENjbeoPaZdL6", "amount": 28500 }))]
pub(super) struct PayBody {
    /// The key the provider's payment window handed the buyer.
    #[schema(min_length = 1, max_length = 200, pattern = "^[A-Za-z0-9_-]+$")]
    payment_key: String,
    /// Must equal the order's `amountToPay`.
    #[schema(minimum = 1)]
    amount: i64,
}

/// A payment whose outcome is not known yet: the provider's answer did not come (IN_FLIGHT, UNKNOWN), or
/// a virtual account waits for the buyer's deposit (WAITING_FOR_DEPOSIT, with the account).
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct PaymentPending {
    order_id: i64,
    status: PaymentAttemptStatus,
    /// Read the order (`GET /api/v3/orders/{orderId}`) for the outcome once the provider has been asked again.
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    virtual_account: Option<VirtualAccountView>,
}

/// The account a virtual-account payment is paid into, by its due time.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub(super) struct VirtualAccountView {
    account_number: String,
    /// The bank's code, as the provider gives it.
    bank: String,
    /// Unpaid by then, the account closes and the order expires.
    due_date: chrono::DateTime<chrono::Utc>,
}

/// Pays a PENDING_PAYMENT order with the buyer's payment (the owner): 200 with the PAID order; 202 when
/// the provider's answer did not come (the payment is settled later by asking it again).
#[utoipa::path(post, path = "/api/v3/orders/{order_id}/payment", operation_id = "pay_order", tag = "shop", params(("order_id" = i64, Path, minimum = 1)), request_body = PayBody, security(("bearer" = [])),
    responses((status = 200, body = OrderView, description = "paid"), (status = 202, body = PaymentPending, description = "the outcome is not known yet"), Problems))]
#[tracing::instrument(skip_all, fields(caller = %caller.user_id, order = %order))]
pub(super) async fn pay(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(order): ApiPath<OrderId>,
    ApiJson(body): ApiJson<PayBody>,
) -> ApiResult<Response> {
    let mut errors = FieldErrors::default();
    let key = body.payment_key.as_str();
    let plain = key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if key.is_empty() || key.len() > 200 || !plain {
        errors.add("paymentKey", "must be 1 to 200 letters, digits, '_' or '-' (as the provider's keys are)");
    }
    if body.amount <= 0 {
        errors.add("amount", "must be a positive whole number of won");
    }
    errors.into_result(|| ()).map_err(ApiError::Invalid)?;
    let key = key.to_owned();
    to_completion(async move {
        let began =
            orders::begin_payment(&state.pool, order, caller.user_id, &key, body.amount, Some(&trace_id)).await?;
        let attempt = match began.map_err(|refusal| pay_refusal(order, refusal))? {
            Began::Recorded(attempt) => return answer(&state, attempt).await,
            Began::Fresh(attempt) => attempt,
        };
        let outcome = ask_provider(&state, &attempt).await;
        let rules = state.orders.lifecycle();
        match orders::settle_payment(&state.pool, &attempt, outcome, rules, Some(&trace_id)).await? {
            // The order as the payment's transaction left it: no second read.
            (settled, Some((paid, _))) => Ok(Json(OrderView::from(paid).with_payment(Some(settled))).into_response()),
            (settled, None) => answer(&state, settled).await,
        }
    })
    .await
}

/// The provider's answer to the attempt's confirm, as an outcome to commit.
async fn ask_provider(state: &AppState, attempt: &Attempt) -> Outcome {
    let order_ref = attempt.order_ref();
    let key = attempt.idempotency_key.to_string();
    match state.payments.confirm(&attempt.payment_key, &order_ref, attempt.amount, &key).await {
        Ok(payment) => Outcome::approval_of(attempt, &payment).unwrap_or_else(|| Outcome::Unknown {
            reason: format!("the provider answered {:?} for {} won", payment.status, payment.total_amount),
        }),
        Err(GatewayError::Declined { code, message }) => Outcome::Declined { code, message },
        Err(GatewayError::Refused { code, message }) => Outcome::Failed { code, message },
        Err(GatewayError::NotFound { code }) => {
            Outcome::Failed { code, message: "the provider knows no such payment".to_owned() }
        }
        Err(GatewayError::Unavailable(reason)) => {
            Outcome::Failed { code: "PROVIDER_UNAVAILABLE".to_owned(), message: reason }
        }
        // Processed before under another attempt, or no answer at all: only the look-up can tell.
        Err(error @ (GatewayError::AlreadyProcessed { .. } | GatewayError::Unknown(_))) => {
            Outcome::Unknown { reason: error.to_string() }
        }
    }
}

/// The answer for an attempt's recorded outcome.
async fn answer(state: &AppState, attempt: Attempt) -> ApiResult<Response> {
    let order = OrderId::parse(attempt.order_id).map_err(anyhow::Error::from)?;
    let failure = || json!({ "providerCode": attempt.failure_code, "orderId": attempt.order_id });
    let message = attempt.failure_message.clone().unwrap_or_default();
    match attempt.status {
        PaymentAttemptStatus::Approved => {
            let placed = orders::order(&state.pool, order).await?.ok_or_else(|| unknown_order(order))?;
            let view = OrderView::from(placed).with_payment(Some(attempt));
            Ok(Json(view).into_response())
        }
        PaymentAttemptStatus::Declined => {
            Err(ApiError::with_fields(ErrorCode::PaymentDeclined, format!("declined: {message}"), failure()))
        }
        PaymentAttemptStatus::Failed if attempt.failure_code.as_deref() == Some("PROVIDER_UNAVAILABLE") => {
            Err(ApiError::retry_after(
                ErrorCode::PaymentProviderUnavailable,
                "the payment provider could not be reached",
                1,
            ))
        }
        PaymentAttemptStatus::Failed => {
            Err(ApiError::with_fields(ErrorCode::PaymentRefused, format!("refused: {message}"), failure()))
        }
        PaymentAttemptStatus::InFlight | PaymentAttemptStatus::Unknown => {
            let pending = PaymentPending {
                order_id: attempt.order_id,
                status: attempt.status,
                detail: "the provider's answer has not come; the payment is settled by asking it again".to_owned(),
                virtual_account: None,
            };
            Ok((StatusCode::ACCEPTED, Json(pending)).into_response())
        }
        PaymentAttemptStatus::WaitingForDeposit => {
            let account = orders::account_of(&state.pool, attempt.id).await?.map(|account| VirtualAccountView {
                account_number: account.account_number,
                bank: account.bank,
                due_date: account.due_at,
            });
            let pending = PaymentPending {
                order_id: attempt.order_id,
                status: attempt.status,
                detail: "pay into the virtual account by its due date; the order is PAID when the deposit arrives"
                    .to_owned(),
                virtual_account: account,
            };
            Ok((StatusCode::ACCEPTED, Json(pending)).into_response())
        }
    }
}

fn pay_refusal(order: OrderId, refusal: PayRefusal) -> ApiError {
    match refusal {
        PayRefusal::UnknownOrder => unknown_order(order),
        PayRefusal::Refused(refusal) => refused_move(order, domain::shop::OrderAction::Pay, refusal),
        PayRefusal::AmountMismatch { to_pay } => ApiError::with_fields(
            ErrorCode::PaymentAmountMismatch,
            format!("order {order} has {to_pay} won to pay"),
            json!({ "amountToPay": to_pay }),
        ),
        PayRefusal::InProgress => {
            ApiError::new(ErrorCode::PaymentInProgress, format!("a payment of order {order} waits for its outcome"))
        }
        PayRefusal::KeyOfAnotherOrder => {
            ApiError::new(ErrorCode::PaymentKeyUsed, "the payment key belongs to another order")
        }
    }
}

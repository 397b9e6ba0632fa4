//! A local stand-in for the payment provider, for development and tests only: it speaks the provider's
//! public HTTP protocol (Toss Payments API v1) on a real port, so settle's payment client is the same code
//! that would talk to the provider. Besides the provider's routes it has a few of its own under
//! `/sandbox/`: the buyer's checkout (which the provider's payment window does), a deposit into a virtual
//! account, the merchant's webhook URL (its deposit callbacks are POSTed there, [`webhooks`]), the
//! faults to play, and how often each route was called.

pub mod webhooks;
pub mod wire;

mod store;

pub use store::{Fault, SettledPayment, SettlementFault, Store};

use axum::{
    extract::{
        rejection::{JsonRejection, QueryRejection},
        Path, Query, State,
    },
    http::{header, HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::{get, post},
    Json, Router,
};
use base64::Engine;
use serde::Deserialize;
use serde_json::json;
use std::{
    sync::{Arc, Mutex},
    time::Duration,
};
use store::{Answer, Confirmed};
use tokio::sync::Notify;
use wire::{CancelRequest, ConfirmRequest, ErrorBody, Method};

#[derive(Clone)]
pub struct Sandbox {
    store: Arc<Mutex<Store>>,
    /// `Basic base64("<secret key>:")`, as the provider expects it.
    authorization: String,
    /// How long a hanging or dropped answer keeps the client waiting.
    hang: Duration,
    /// Wakes the webhook delivery when a deposit owes a callback.
    callbacks_owed: Arc<Notify>,
}

impl Sandbox {
    pub fn new(store: Store, secret_key: &str, hang: Duration) -> Self {
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{secret_key}:"));
        Self {
            store: Arc::new(Mutex::new(store)),
            authorization: format!("Basic {encoded}"),
            hang,
            callbacks_owed: Arc::new(Notify::new()),
        }
    }

    fn store(&self) -> std::sync::MutexGuard<'_, Store> {
        self.store.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn authorized(&self, headers: &HeaderMap) -> bool {
        headers.get(header::AUTHORIZATION).and_then(|value| value.to_str().ok()) == Some(self.authorization.as_str())
    }
}

pub fn router(sandbox: Sandbox) -> Router {
    Router::new()
        .route("/v1/payments/confirm", post(confirm))
        .route("/v1/payments/orders/{order_id}", get(by_order))
        .route("/v1/payments/{payment_key}", get(by_key))
        .route("/v1/payments/{payment_key}/cancel", post(cancel))
        .route("/v1/settlements", get(settlements))
        .route("/sandbox/checkout", post(checkout))
        .route("/sandbox/deposits/{order_id}", post(deposit))
        .route("/sandbox/webhooks", axum::routing::put(set_webhook))
        .route("/sandbox/faults", post(set_fault))
        .route("/sandbox/settled-payments", post(backfill))
        .route("/sandbox/settlement-faults", post(set_settlement_fault))
        .route("/sandbox/calls", get(calls))
        .route("/health", get(|| async { "ok" }))
        .with_state(sandbox)
}

fn refusal(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(ErrorBody { code: code.to_owned(), message: message.to_owned() })).into_response()
}

fn unauthorized() -> Response {
    refusal(StatusCode::UNAUTHORIZED, "UNAUTHORIZED_KEY", "인증되지 않은 시크릿 키 혹은 클라이언트 키 입니다.")
}

fn answer(status: u16, body: serde_json::Value) -> Response {
    (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response()
}

fn internal(error: anyhow::Error) -> Response {
    tracing::error!(%error, "the sandbox failed");
    refusal(
        StatusCode::INTERNAL_SERVER_ERROR,
        "FAILED_INTERNAL_SYSTEM_PROCESSING",
        "내부 시스템 처리 작업이 실패했습니다.",
    )
}

fn idempotency_key(headers: &HeaderMap, route: &str) -> Option<String> {
    let key = headers.get("idempotency-key")?.to_str().ok()?;
    Some(format!("{route} {key}"))
}

async fn confirm(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    body: Result<Json<ConfirmRequest>, JsonRejection>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return unauthorized();
    }
    let Ok(Json(request)) = body else {
        return refusal(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "잘못된 요청입니다.");
    };
    let key = idempotency_key(&headers, "confirm");
    let decided = {
        let mut store = sandbox.store();
        store.count("confirm");
        if let Some(previous) = key.as_deref().and_then(|key| store.answer_of(key)) {
            return answer(previous.status, previous.body);
        }
        match store.confirm(&request) {
            Ok(Confirmed::Answer(status, body)) => {
                let recorded = match &key {
                    Some(key) => store.record_answer(key.clone(), Answer { status, body: body.clone() }),
                    None => Ok(()),
                };
                recorded.map(|()| Confirmed::Answer(status, body))
            }
            other => other,
        }
    };
    match decided {
        Ok(Confirmed::Answer(status, body)) => answer(status, body),
        Ok(Confirmed::Fault(Fault::ServerError)) => refusal(
            StatusCode::INTERNAL_SERVER_ERROR,
            "FAILED_INTERNAL_SYSTEM_PROCESSING",
            "내부 시스템 처리 작업이 실패했습니다.",
        ),
        // Hang: nothing was approved. Drop: approved and journaled, but the answer never comes in time.
        Ok(Confirmed::Fault(_)) => {
            tokio::time::sleep(sandbox.hang).await;
            refusal(
                StatusCode::GATEWAY_TIMEOUT,
                "PROVIDER_ERROR",
                "일시적인 오류가 발생했습니다. 잠시 후 다시 시도해주세요.",
            )
        }
        Err(error) => internal(error),
    }
}

async fn by_order(State(sandbox): State<Sandbox>, headers: HeaderMap, Path(order_id): Path<String>) -> Response {
    if !sandbox.authorized(&headers) {
        return unauthorized();
    }
    let mut store = sandbox.store();
    store.count("lookup");
    match store.by_order(&order_id) {
        Some(payment) => Json(payment.clone()).into_response(),
        None => refusal(StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."),
    }
}

async fn by_key(State(sandbox): State<Sandbox>, headers: HeaderMap, Path(payment_key): Path<String>) -> Response {
    if !sandbox.authorized(&headers) {
        return unauthorized();
    }
    let mut store = sandbox.store();
    store.count("lookup");
    match store.by_key(&payment_key) {
        Some(payment) => Json(payment.clone()).into_response(),
        None => refusal(StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT", "존재하지 않는 결제 정보 입니다."),
    }
}

async fn cancel(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    Path(payment_key): Path<String>,
    body: Result<Json<CancelRequest>, JsonRejection>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return unauthorized();
    }
    let Some(Json(request)) = body.ok().filter(|Json(body)| !body.cancel_reason.trim().is_empty()) else {
        return refusal(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "취소 사유(cancelReason)가 필요합니다.");
    };
    let key = idempotency_key(&headers, &format!("cancel {payment_key}"));
    let mut store = sandbox.store();
    store.count("cancel");
    if let Some(previous) = key.as_deref().and_then(|key| store.answer_of(key)) {
        return answer(previous.status, previous.body);
    }
    let cancelled = store.cancel(&payment_key, &request.cancel_reason).and_then(|(status, body)| {
        if let Some(key) = key {
            store.record_answer(key, Answer { status, body: body.clone() })?;
        }
        Ok((status, body))
    });
    match cancelled {
        Ok((status, body)) => answer(status, body),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettlementQuery {
    start_date: chrono::NaiveDate,
    end_date: chrono::NaiveDate,
    page: Option<usize>,
    size: Option<usize>,
}

async fn settlements(
    State(sandbox): State<Sandbox>,
    headers: HeaderMap,
    query: Result<Query<SettlementQuery>, QueryRejection>,
) -> Response {
    if !sandbox.authorized(&headers) {
        return unauthorized();
    }
    let Some(Query(query)) = query.ok().filter(|Query(q)| q.start_date <= q.end_date) else {
        return refusal(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "startDate와 endDate(yyyy-MM-dd)가 필요합니다.");
    };
    let (page, size) = (query.page.unwrap_or(1).max(1), query.size.unwrap_or(100).clamp(1, 10_000));
    let mut store = sandbox.store();
    store.count("settlements");
    Json(store.settlement_page(query.start_date, query.end_date, page, size)).into_response()
}

/// Payments the provider approved in the past (`[{orderId, amount, method, approvedAt, canceledAt?}]`):
/// their keys, in order.
async fn backfill(State(sandbox): State<Sandbox>, body: Result<Json<Vec<SettledPayment>>, JsonRejection>) -> Response {
    let Ok(Json(payments)) = body else {
        return refusal(StatusCode::BAD_REQUEST, "INVALID_REQUEST", "[{orderId, amount, method, approvedAt}]");
    };
    match sandbox.store().backfill(&payments) {
        Ok(saved) => Json(saved.into_iter().map(|p| p.payment_key).collect::<Vec<_>>()).into_response(),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct SettlementFaultBody {
    payment_key: String,
    fault: Option<SettlementFault>,
}

/// Distorts (or, with `fault: null`, restores) a payment's settlement lines.
async fn set_settlement_fault(
    State(sandbox): State<Sandbox>,
    body: Result<Json<SettlementFaultBody>, JsonRejection>,
) -> Response {
    let Ok(Json(body)) = body else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "{paymentKey, fault: OMIT|AMOUNT|FEE|PAYOUT_DATE|null}",
        );
    };
    sandbox.store().set_settlement_fault(body.payment_key, body.fault);
    StatusCode::NO_CONTENT.into_response()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CheckoutBody {
    order_id: String,
    order_name: Option<String>,
    amount: i64,
    method: String,
}

/// The buyer pays in the provider's window: the merchant's success page then gets this payment key.
async fn checkout(State(sandbox): State<Sandbox>, Json(body): Json<CheckoutBody>) -> Response {
    let Some(method) = Method::from_code(&body.method) else {
        return refusal(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "method: CARD, TRANSFER, VIRTUAL_ACCOUNT or MOBILE_PHONE",
        );
    };
    if body.amount <= 0 || body.order_id.is_empty() || body.order_id.len() > 64 {
        return refusal(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST",
            "a positive amount and an orderId of 1 to 64 characters",
        );
    }
    let order_name = body.order_name.unwrap_or_else(|| format!("order {}", body.order_id));
    match sandbox.store().checkout(&body.order_id, &order_name, body.amount, method) {
        Ok(Err(refused)) => (StatusCode::BAD_REQUEST, Json(refused)).into_response(),
        Ok(Ok(payment)) => (
            StatusCode::CREATED,
            Json(json!({
                "paymentKey": payment.payment_key, "orderId": payment.order_id, "amount": payment.total_amount,
            })),
        )
            .into_response(),
        Err(error) => internal(error),
    }
}

async fn deposit(State(sandbox): State<Sandbox>, Path(order_id): Path<String>) -> Response {
    let deposited = sandbox.store().deposit(&order_id);
    match deposited {
        Ok(Some(payment)) => {
            sandbox.callbacks_owed.notify_one();
            Json(payment).into_response()
        }
        Ok(None) => refusal(StatusCode::NOT_FOUND, "NOT_FOUND_PAYMENT", "no virtual account waiting for a deposit"),
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct WebhookBody {
    /// Where deposit callbacks are POSTed; null: nowhere.
    deposit_callback_url: Option<String>,
}

async fn set_webhook(State(sandbox): State<Sandbox>, Json(body): Json<WebhookBody>) -> Response {
    let set = sandbox.store().set_deposit_callback_url(body.deposit_callback_url);
    match set {
        Ok(()) => {
            sandbox.callbacks_owed.notify_one();
            StatusCode::NO_CONTENT.into_response()
        }
        Err(error) => internal(error),
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FaultBody {
    /// The payment key the fault is for; absent: every confirm.
    payment_key: Option<String>,
    /// Absent or null: stop playing the fault.
    fault: Option<Fault>,
    /// How many confirms play it; absent: until told otherwise.
    times: Option<u32>,
}

async fn set_fault(State(sandbox): State<Sandbox>, Json(body): Json<FaultBody>) -> StatusCode {
    sandbox.store().set_fault(body.payment_key, body.fault, body.times);
    StatusCode::NO_CONTENT
}

async fn calls(State(sandbox): State<Sandbox>) -> Response {
    Json(sandbox.store().calls.clone()).into_response()
}

//! The provider's deposit callback for virtual accounts (its DEPOSIT_CALLBACK webhook). It carries no
//! token: it is verified the way the provider documents, by the payment's `secret` that came with the
//! account, and it is idempotent (the provider repeats a callback until it is answered 200).

use crate::openapi::Problems;
use crate::{
    http::{to_completion, ApiError, ApiJson, ApiResult, ErrorCode},
    AppState,
};
use axum::{extract::State, response::IntoResponse, response::Response, Json};
use chrono::{DateTime, NaiveDateTime, Utc};
use infra::shop::orders::{self, DepositCallback, Deposited};
use serde::{Deserialize, Serialize};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(deposit_callback))
}

/// The callback's body as the provider sends it (fields it adds later are ignored).
#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({ "createdAt": "2026-12-06T21:30:00.000000", "secret": "ps_a1b2c3", "status": "DONE",
    "transactionKey": "9FF15E1A29D0E77C218F57262BFA4986", "orderId": "settle-order-42" }))]
struct DepositBody {
    /// When the provider recorded the deposit (Korean time when it has no offset).
    #[schema(max_length = 40)]
    created_at: String,
    #[schema(min_length = 1, max_length = 200)]
    secret: String,
    /// `DONE` when the money arrived; `WAITING_FOR_DEPOSIT` or `CANCELED` when a deposit was taken back.
    #[schema(max_length = 40)]
    status: String,
    #[schema(max_length = 200)]
    transaction_key: Option<String>,
    #[schema(min_length = 1, max_length = 200)]
    order_id: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct DepositAnswer {
    /// `PAID` (now, or before: a repeated callback) or `NOT_DEPOSITED` (nothing changed).
    result: String,
}

/// The provider's deposit callback for a virtual account (verified by the payment's secret; no token):
/// a deposit makes the order PAID, once.
#[utoipa::path(post, path = "/api/v3/payments/callbacks/deposit", operation_id = "deposit_callback", tag = "shop", request_body = DepositBody, security(()),
    responses((status = 200, body = DepositAnswer), Problems))]
#[tracing::instrument(skip_all, fields(order = %body.order_id, status = %body.status))]
async fn deposit_callback(State(state): State<AppState>, ApiJson(body): ApiJson<DepositBody>) -> ApiResult<Response> {
    let callback = DepositCallback {
        created_at: provider_time(&body.created_at),
        order_ref: body.order_id,
        secret: body.secret,
        status: body.status,
    };
    to_completion(async move {
        let (deposited, effects) = orders::on_deposit(&state.pool, &callback, state.orders.lifecycle()).await?;
        if let Some(effects) = effects {
            effects.announce(&state.balances, &state.stock_gate).await;
        }
        let result = match deposited {
            Deposited::Paid | Deposited::AlreadyPaid => "PAID",
            Deposited::NotDeposited => "NOT_DEPOSITED",
            Deposited::UnknownOrder => {
                let detail = format!("no virtual account was handed out for {}", callback.order_ref);
                return Err(ApiError::new(ErrorCode::OrderNotFound, detail));
            }
            Deposited::NotVerified => {
                tracing::warn!(order = %callback.order_ref, "a deposit callback with a secret that is not the account's");
                return Err(ApiError::new(ErrorCode::DepositNotVerified, "the secret is not the account's"));
            }
        };
        Ok(Json(DepositAnswer { result: result.to_owned() }).into_response())
    })
    .await
}

/// The provider's timestamp: RFC 3339, or a local Korean time without an offset (as its callbacks
/// send it); the time of arrival when neither.
fn provider_time(raw: &str) -> DateTime<Utc> {
    if let Ok(at) = DateTime::parse_from_rfc3339(raw) {
        return at.with_timezone(&Utc);
    }
    let seoul = chrono::FixedOffset::east_opt(9 * 3_600).expect("a valid offset");
    NaiveDateTime::parse_from_str(raw, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .and_then(|local| local.and_local_timezone(seoul).single())
        .map_or_else(Utc::now, |at| at.with_timezone(&Utc))
}

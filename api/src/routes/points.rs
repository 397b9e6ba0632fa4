//! Points: operators (admin) grant, users spend their own, and balances are read by their owner.
//! Idempotency keys, cancel, history and the cached balance read build on this write path.

use crate::{
    auth::{AdminUser, AuthUser},
    http::{middleware::TraceId, to_completion, ApiError, ApiJson, ApiPath, ApiResult},
};
use axum::{
    extract::State,
    routing::{get, post},
    Extension, Json, Router,
};
use chrono::{DateTime, Utc};
use domain::{points::PointAmount, UserId};
use infra::points::ledger::{self, Entry, Refusal};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

pub fn router() -> Router<crate::AppState> {
    Router::new()
        .route("/api/v2/points/earn", post(earn))
        .route("/api/v2/points/use", post(spend))
        .route("/api/v2/points/users/{user_id}/balance", get(balance))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct EarnBody {
    user_id: UserId,
    amount: PointAmount,
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UseBody {
    amount: PointAmount,
    order_id: Option<i64>,
    /// Only an admin may name another user; everyone else spends their own points.
    user_id: Option<UserId>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    point_id: i64,
    user_id: i64,
    kind: &'static str,
    amount: i64,
    balance: i64,
    created_at: DateTime<Utc>,
}

impl From<Entry> for EntryView {
    fn from(entry: Entry) -> Self {
        Self {
            point_id: entry.point_id,
            user_id: entry.user_id,
            kind: entry.kind,
            amount: entry.amount,
            balance: entry.balance,
            created_at: entry.created_at,
        }
    }
}

#[tracing::instrument(skip_all, fields(admin = %admin.user_id, user = %body.user_id, amount = %body.amount))]
async fn earn(
    AdminUser(admin): AdminUser,
    State(pool): State<PgPool>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiJson(body): ApiJson<EarnBody>,
) -> ApiResult<Json<EntryView>> {
    let reason = body.reason.filter(|r| !r.trim().is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(ApiError::unprocessable("INVALID_BODY", "reason must be at most 200 characters"));
    }
    to_completion(async move {
        let earned = ledger::earn(&pool, body.user_id, body.amount, reason.as_deref(), Some(&trace_id)).await?;
        Ok(Json(earned.map_err(refusal)?.into()))
    })
    .await
}

#[tracing::instrument(skip_all, fields(caller = %caller.user_id, amount = %body.amount))]
async fn spend(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiJson(body): ApiJson<UseBody>,
) -> ApiResult<Json<EntryView>> {
    let user = body.user_id.unwrap_or(caller.user_id);
    caller.ensure_can_access(user)?;
    if body.order_id.is_some_and(|order| order <= 0) {
        return Err(ApiError::unprocessable("INVALID_BODY", "orderId must be a positive integer"));
    }
    to_completion(async move {
        let spent = ledger::spend(&pool, user, body.amount, body.order_id, Some(&trace_id)).await?;
        Ok(Json(spent.map_err(refusal)?.into()))
    })
    .await
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct BalanceView {
    user_id: i64,
    balance: i64,
    version: i64,
}

async fn balance(
    caller: AuthUser,
    State(pool): State<PgPool>,
    ApiPath(user_id): ApiPath<i64>,
) -> ApiResult<Json<BalanceView>> {
    let user = UserId::parse(user_id).map_err(|e| ApiError::bad_request("INVALID_PATH", e.to_string()))?;
    caller.ensure_can_access(user)?;
    let (balance, version) = ledger::balance(&pool, user).await?.unwrap_or((0, 0));
    Ok(Json(BalanceView { user_id, balance, version }))
}

fn refusal(refusal: Refusal) -> ApiError {
    match refusal {
        Refusal::UnknownUser => ApiError::not_found("USER_NOT_FOUND", "no such user"),
        Refusal::InsufficientBalance { balance } => {
            ApiError::conflict("INSUFFICIENT_BALANCE", format!("the balance is {balance} points"))
        }
    }
}

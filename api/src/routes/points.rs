//! Points: operators (admin) grant, users spend their own, and balances are read by their owner.
//! Earn, use and cancel honour an Idempotency-Key; balances are read through a versioned Redis cache.

use crate::http::idempotent::IdempotencyKeyHeader;
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::{AdminUser, AuthUser},
    http::{
        idempotent::{self, idempotency_key},
        json_response,
        middleware::TraceId,
        to_completion, ApiError, ApiJson, ApiPath, ApiResult,
    },
    AppState,
};
use axum::{
    extract::State,
    http::{header::CACHE_CONTROL, HeaderMap, StatusCode},
    response::Response,
    Extension, Json,
};
use chrono::{DateTime, Utc};
use domain::{
    points::{LotSource, PointAmount, PointKind, Validity},
    PointId, UserId,
};
use futures::future::BoxFuture;
use infra::idempotency::{self, IdempotencyKey};
use infra::points::{
    cache::{Cached, ExpiringSoon},
    ledger::{self, Actor, Entry, Refusal},
    lots::{self, LotTerms},
};
use serde::{Deserialize, Serialize};
use sqlx::{Postgres, Transaction};
use utoipa_axum::{router::OpenApiRouter, routes};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(earn))
        .routes(routes!(spend))
        .routes(routes!(cancel))
        .routes(routes!(balance))
        .routes(routes!(super::points_history::history))
        .routes(routes!(super::points_expiring::expiring))
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "userId": 42, "amount": 5000, "reason": "Black Friday welcome", "validDays": 90 }))]
struct EarnBody {
    #[schema(value_type = i64, minimum = 1)]
    user_id: UserId,
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000)]
    amount: PointAmount,
    /// Blank is the same as absent.
    #[schema(max_length = 200)]
    reason: Option<String>,
    /// How many days the points stay spendable (default `POINTS_VALID_DAYS`, 365).
    #[schema(value_type = Option<i64>, minimum = 1, maximum = 1826)]
    valid_days: Option<Validity>,
}

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(as = PointUseBody)]
#[schema(example = json!({ "amount": 1200 }))]
struct UseBody {
    #[schema(value_type = i64, minimum = 1, maximum = 10_000_000)]
    amount: PointAmount,
    #[schema(minimum = 1)]
    order_id: Option<i64>,
    /// Only an admin may name another user; everyone else spends their own points.
    #[schema(value_type = Option<i64>, minimum = 1)]
    user_id: Option<UserId>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct EntryView {
    point_id: i64,
    user_id: i64,
    kind: PointKind,
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

/// Grants points to a user (admin).
#[utoipa::path(post, path = "/api/v2/points/earn", tag = "points", request_body = EarnBody,
    params(IdempotencyKeyHeader), security(("bearer" = ["ADMIN"])),
    responses((status = 200, body = EntryView, description = "the ledger entry and the balance after it", links(("cancel" = (operation_id = "cancel_entry", parameters(("point_id" = "$response.body#/pointId")))), ("balance" = (operation_id = "balance", parameters(("user_id" = "$response.body#/userId")))), ("history" = (operation_id = "history", parameters(("user_id" = "$response.body#/userId")))))), Problems))]
#[tracing::instrument(skip_all, fields(admin = %admin.user_id, user = %body.user_id, amount = %body.amount))]
async fn earn(
    AdminUser(admin): AdminUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<EarnBody>,
) -> ApiResult<Response> {
    let reason = body.reason.clone().filter(|r| !r.trim().is_empty());
    if reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(ApiError::new(ErrorCode::InvalidBody, "reason must be at most 200 characters"));
    }
    let key = idempotency_key(&headers, admin, "earn", &body)?;
    let (user, amount) = (body.user_id, body.amount);
    let terms =
        LotTerms { source: LotSource::Admin, validity: body.valid_days.unwrap_or(state.orders.points_validity()) };
    to_completion(ledger_change(state, key, move |tx| {
        Box::pin(async move { ledger::earn(tx, user, amount, terms, reason.as_deref(), Some(&trace_id)).await })
    }))
    .await
}

/// Spends the caller's points (an admin may name `userId`); never below zero.
#[utoipa::path(post, path = "/api/v2/points/use", tag = "points", request_body = UseBody,
    params(IdempotencyKeyHeader), security(("bearer" = [])),
    responses((status = 200, body = EntryView, description = "the ledger entry and the balance after it", links(("cancel" = (operation_id = "cancel_entry", parameters(("point_id" = "$response.body#/pointId")))), ("balance" = (operation_id = "balance", parameters(("user_id" = "$response.body#/userId")))), ("history" = (operation_id = "history", parameters(("user_id" = "$response.body#/userId")))))), Problems))]
#[tracing::instrument(skip_all, fields(caller = %caller.user_id, amount = %body.amount))]
async fn spend(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<UseBody>,
) -> ApiResult<Response> {
    let user = body.user_id.unwrap_or(caller.user_id);
    caller.ensure_owner(user, unknown_user)?;
    if body.order_id.is_some_and(|order| order <= 0) {
        return Err(ApiError::new(ErrorCode::InvalidBody, "orderId must be a positive integer"));
    }
    let key = idempotency_key(&headers, caller, "use", &body)?;
    let (amount, order_id) = (body.amount, body.order_id);
    to_completion(ledger_change(state, key, move |tx| {
        Box::pin(async move { ledger::spend(tx, user, amount, order_id, Some(&trace_id)).await })
    }))
    .await
}

/// Cancels one ledger entry once: a user their own uses, an admin any earn or use.
#[utoipa::path(post, path = "/api/v2/points/{point_id}/cancel", operation_id = "cancel_entry", tag = "points",
    params(("point_id" = i64, Path, minimum = 1), IdempotencyKeyHeader),
    security(("bearer" = [])), responses((status = 200, body = EntryView, description = "the ledger entry and the balance after it", links(("cancel" = (operation_id = "cancel_entry", parameters(("point_id" = "$response.body#/pointId")))), ("balance" = (operation_id = "balance", parameters(("user_id" = "$response.body#/userId")))), ("history" = (operation_id = "history", parameters(("user_id" = "$response.body#/userId")))))), Problems))]
#[tracing::instrument(skip_all, fields(caller = %caller.user_id, point_id = %point_id))]
async fn cancel(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    headers: HeaderMap,
    ApiPath(point_id): ApiPath<PointId>,
) -> ApiResult<Response> {
    let key = idempotency_key(&headers, caller, "cancel", &point_id)?;
    let actor = Actor { user: caller.user_id, is_admin: caller.is_admin() };
    let regrant = state.orders.points_validity();
    to_completion(ledger_change(state, key, move |tx| {
        Box::pin(async move { ledger::cancel(tx, point_id.get(), actor, regrant, Some(&trace_id)).await })
    }))
    .await
}

type LedgerFuture<'t> = BoxFuture<'t, anyhow::Result<Result<Entry, Refusal>>>;

/// One ledger change in one transaction, behind the caller's Idempotency-Key when one was sent: the
/// key, the change and the answer (a refusal included) commit together, and a retry gets that answer.
async fn ledger_change<F>(state: AppState, key: Option<IdempotencyKey>, change: F) -> ApiResult<Response>
where
    F: for<'t> FnOnce(&'t mut Transaction<'static, Postgres>) -> LedgerFuture<'t> + Send + 'static,
{
    let mut tx = state.pool.begin().await?;
    if let Some(key) = &key {
        if let Some(first_answer) = idempotent::claim(&mut tx, key).await? {
            return Ok(first_answer);
        }
    }
    let outcome = change(&mut tx).await?;
    let changed = outcome.as_ref().ok().and_then(Entry::balance_change);
    let (status, body) = match outcome {
        Ok(entry) => (StatusCode::OK, serde_json::to_value(EntryView::from(entry)).map_err(anyhow::Error::from)?),
        Err(refused) => {
            let error = ApiError::from(refused);
            (error.status(), serde_json::to_value(error.problem()).map_err(anyhow::Error::from)?)
        }
    };
    if let Some(key) = &key {
        idempotency::complete(&mut tx, key, status.as_u16(), &body).await?;
    }
    state.balances.commit(tx, changed).await?;
    Ok(json_response(status, &body))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct BalanceView {
    user_id: i64,
    balance: i64,
    version: i64,
    /// The part of the balance in lots that stop being spendable within the next 30 days.
    expiring_within_30_days: i64,
}

/// The window of `expiringWithin30Days`.
const EXPIRING_SOON_DAYS: i32 = 30;

/// Cache-aside: Redis first; on a miss (or Redis trouble) PostgreSQL, then offer the value to the cache.
/// `Cache-Control: no-cache` skips Redis and reads the ledger's balance row (support tools, audits).
#[utoipa::path(get, path = "/api/v2/points/users/{user_id}/balance", tag = "points",
    params(("user_id" = i64, Path, minimum = 1), ("Cache-Control" = Option<String>, Header, description = "no-cache: read PostgreSQL")),
    security(("bearer" = [])), responses((status = 200, body = BalanceView), Problems))]
async fn balance(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath(user): ApiPath<UserId>,
    headers: HeaderMap,
) -> ApiResult<Json<BalanceView>> {
    let user_id = user.get();
    caller.ensure_owner(user, unknown_user)?;
    if !wants_fresh(&headers) {
        if let Some(Cached { version, balance, expiring: Some(expiring) }) =
            state.balances.get_with_expiring(user).await
        {
            return Ok(Json(BalanceView { user_id, balance, version, expiring_within_30_days: expiring }));
        }
    }
    // A miss of either part reads both from one snapshot: never a balance with another version's part.
    let nothing = ExpiringSoon { version: 0, amount: 0, until: None };
    let (balance, soon) =
        lots::balance_with_expiring(&state.pool, user, EXPIRING_SOON_DAYS).await?.unwrap_or((0, nothing));
    state.balances.offer(user, soon.version, balance).await;
    state.balances.offer_expiring(user, soon, Utc::now()).await;
    Ok(Json(BalanceView { user_id, balance, version: soon.version, expiring_within_30_days: soon.amount }))
}

fn wants_fresh(headers: &HeaderMap) -> bool {
    headers
        .get_all(CACHE_CONTROL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .any(|value| value.split(',').any(|directive| directive.trim().eq_ignore_ascii_case("no-cache")))
}

pub(crate) fn unknown_user() -> ApiError {
    Refusal::UnknownUser.into()
}

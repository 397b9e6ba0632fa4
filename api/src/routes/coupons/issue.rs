//! The three issuing stages, kept side by side so they can be measured against each other:
//! V1 locks the policy row, V2 reserves in Redis then inserts, V3 reserves in Redis then hands the
//! insert to the issuance worker through Kafka.

use super::enqueue::{enqueue, failed, resend_until_acknowledged};
use super::views::CouponView;
use crate::http::idempotent::IdempotencyKeyHeader;
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{
        idempotent::{self, idempotency_key, KEY_REUSED},
        json_response,
        middleware::TraceId,
        to_completion, ApiError, ApiJson, ApiResult,
    },
    AppState,
};
use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::Response,
    Extension, Json,
};
use chrono::Utc;
use domain::{
    coupon::{IssueRejection, IssueRequested, RequestStatus},
    PolicyId,
};
use infra::idempotency::{self, Claim, IdempotencyKey};
use infra::{
    coupons::{repo, Reservation, Settlement},
    kafka::never_stored,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

/// How long a V3 request reads as PENDING from Redis before the worker's verdict must be in the database.
const PENDING_MARKER_TTL: Duration = Duration::from_secs(24 * 3600);

#[derive(Debug, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[schema(example = json!({ "couponPolicyId": 7 }))]
pub struct IssueBody {
    #[schema(value_type = i64, minimum = 1)]
    coupon_policy_id: PolicyId,
}

/// V1, the origin's baseline: the policy row locked, coupons counted, the coupon inserted.
#[utoipa::path(post, path = "/api/v1/coupons", tag = "coupons", request_body = IssueBody, security(("bearer" = [])),
    responses((status = 201, body = CouponView, description = "issued", links(("use" = (operation_id = "use_for_order", parameters(("id" = "$response.body#/id")))), ("cancelUse" = (operation_id = "cancel_use", parameters(("id" = "$response.body#/id")))))), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, policy = %body.coupon_policy_id))]
pub async fn v1_row_lock(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiJson(body): ApiJson<IssueBody>,
) -> ApiResult<(StatusCode, Json<CouponView>)> {
    state.protection.admit_issue(caller.user_id)?;
    to_completion(async move {
        let coupon = repo::issue_with_row_lock(&state.pool, body.coupon_policy_id, caller.user_id).await??;
        Ok((StatusCode::CREATED, Json(coupon.into())))
    })
    .await
}

/// V2: a Redis reservation, then a synchronous insert. With an `Idempotency-Key`, a retry gets the first
/// request's answer (the coupon), also when the first was told 503 because the database was lost while it
/// committed.
#[utoipa::path(post, path = "/api/v2/coupons", tag = "coupons", request_body = IssueBody, security(("bearer" = [])),
    params(IdempotencyKeyHeader),
    responses((status = 201, body = CouponView, description = "issued", links(("use" = (operation_id = "use_for_order", parameters(("id" = "$response.body#/id")))), ("cancelUse" = (operation_id = "cancel_use", parameters(("id" = "$response.body#/id")))))), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, policy = %body.coupon_policy_id))]
pub async fn v2_redis_then_insert(
    caller: AuthUser,
    State(state): State<AppState>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<IssueBody>,
) -> ApiResult<Response> {
    state.protection.admit_issue(caller.user_id)?;
    let key = idempotency_key(&headers, caller, "POST /api/v2/coupons", &body)?;
    to_completion(async move {
        if let Some(key) = &key {
            if let Some((status, answer)) = idempotency::stored_answer(&state.pool, key).await? {
                return idempotent::replay(status, &answer);
            }
        }
        let (policy, user) = (body.coupon_policy_id, caller.user_id);
        match state.coupons.reserve(&state.pool, policy, user, None).await? {
            Reservation::Reserved { .. } => {}
            // An earlier request's place, not settled: decided meanwhile, or its commit outcome unknown.
            // If it left no coupon, this request finishes it.
            Reservation::InFlight => {
                if repo::holds_coupon(&state.pool, policy, user).await? {
                    return Err(IssueRejection::AlreadyIssued.into());
                }
            }
            Reservation::Rejected(rejection) => return Err(rejection.into()),
        }
        let inserted = insert_answering(&state, key.as_ref(), policy, user).await;
        match &inserted {
            // Committed or not, nobody knows: the place stays in flight for the retry to settle.
            Err(error) if error.code() == ErrorCode::DependencyUnavailable => {}
            // The user keeps the reservation only if they now hold the coupon (or already did).
            Ok(Ok(_)) | Ok(Err(IssueRejection::AlreadyIssued)) => {
                settle_quietly(&state, Settlement { policy, user, request: None, keep: true }).await
            }
            _ => settle_quietly(&state, Settlement { policy, user, request: None, keep: false }).await,
        }
        Ok(json_response(StatusCode::CREATED, &inserted??))
    })
    .await
}

/// The insert and, with a key, the answer stored with it, in one transaction.
async fn insert_answering(
    state: &AppState,
    key: Option<&IdempotencyKey>,
    policy: PolicyId,
    user: domain::UserId,
) -> ApiResult<Result<serde_json::Value, IssueRejection>> {
    let mut tx = state.pool.begin().await?;
    if let Some(key) = key {
        match idempotency::claim(&mut tx, key).await? {
            Claim::Fresh => {}
            // Only coupons are stored under a V2 key: a concurrent twin committed first.
            Claim::Replay { body, .. } => return Ok(Ok(body)),
            Claim::KeyReused => return Err(ApiError::new(ErrorCode::IdempotencyKeyReused, KEY_REUSED)),
        }
    }
    let coupon = match repo::insert_coupon(&mut *tx, policy, user).await? {
        Ok(coupon) => coupon,
        Err(rejection) => return Ok(Err(rejection)),
    };
    let answer = serde_json::to_value(CouponView::from(coupon)).map_err(anyhow::Error::from)?;
    if let Some(key) = key {
        idempotency::complete(&mut tx, key, StatusCode::CREATED.as_u16(), &answer).await?;
    }
    tx.commit().await?;
    Ok(Ok(answer))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Accepted {
    request_id: Uuid,
    status: RequestStatus,
}

/// V3: the same reservation, then a Kafka record; 202 once the broker has it (the worker decides later:
/// `GET /api/v3/coupons/requests/{id}`).
#[utoipa::path(post, path = "/api/v3/coupons", tag = "coupons", request_body = IssueBody, security(("bearer" = [])),
    responses((status = 202, body = Accepted, description = "queued: the worker issues it or says why not", links(("status" = (operation_id = "request_status", parameters(("id" = "$response.body#/requestId")))))), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, policy = %body.coupon_policy_id))]
pub async fn v3_redis_then_kafka(
    caller: AuthUser,
    State(state): State<AppState>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiJson(body): ApiJson<IssueBody>,
) -> ApiResult<(StatusCode, Json<Accepted>)> {
    state.protection.admit_issue(caller.user_id)?;
    to_completion(async move {
        let request_id = Uuid::new_v4();
        let policy = body.coupon_policy_id;
        // Asked before reserving: while the broker is known to be down nothing is reserved at all.
        let produce = state.broker.admit().map_err(|open| dependency_unavailable(open, &state.broker))?;
        reserve(&state, policy, caller, Some(request_id)).await?;
        let event = IssueRequested { request_id, policy_id: policy, user_id: caller.user_id, requested_at: Utc::now() };
        let payload = serde_json::to_vec(&event).map_err(anyhow::Error::from)?;
        let Err(error) = enqueue(&state, &event, &payload, &trace_id).await else {
            produce.succeeded();
            return Ok((StatusCode::ACCEPTED, Json(Accepted { request_id, status: RequestStatus::Pending })));
        };
        failed(&state, produce);
        if !never_stored(&error) {
            tracing::warn!(%error, %request_id, "the broker did not acknowledge the issue request; keeping its place and sending it again");
            resend_until_acknowledged(state.clone(), event, payload, trace_id, PENDING_MARKER_TTL);
            return Err(ApiError::with_fields(
                ErrorCode::IssueOutcomeUnknown,
                "the broker did not confirm the request in time; it may be queued and is being sent again: \
                 its status tells the outcome",
                json!({ "requestId": request_id }),
            ));
        }
        tracing::warn!(%error, %request_id, "the broker did not take the issue request; releasing the reservation");
        let settlement = Settlement { policy, user: caller.user_id, request: Some(request_id), keep: false };
        settle_quietly(&state, settlement).await;
        Err(ApiError::retry_after(ErrorCode::BrokerUnavailable, "the request could not be queued; try again", 1))
    })
    .await
}

fn dependency_unavailable(open: infra::breaker::Open, breaker: &infra::breaker::Breaker) -> ApiError {
    let wait = breaker.retry_after().as_secs().max(1);
    ApiError::retry_after(
        ErrorCode::DependencyUnavailable,
        format!("{open}: nothing was reserved; retry shortly"),
        wait,
    )
}

async fn reserve(state: &AppState, policy: PolicyId, caller: AuthUser, request: Option<Uuid>) -> ApiResult<()> {
    let pending = request.map(|request| (request, PENDING_MARKER_TTL));
    match state.coupons.reserve(&state.pool, policy, caller.user_id, pending).await? {
        Reservation::Reserved { .. } => Ok(()),
        // The user's earlier request is queued: it decides, this one is a duplicate.
        Reservation::InFlight => Err(IssueRejection::AlreadyIssued.into()),
        Reservation::Rejected(rejection) => Err(rejection.into()),
    }
}

/// A failed settlement leaves the reservation in flight: a returned place stays taken until the drift
/// guard repairs it. Worth a warning, not worth failing the response over.
async fn settle_quietly(state: &AppState, settlement: Settlement) {
    if let Err(error) = state.coupons.settle(&[settlement]).await {
        tracing::warn!(error = ?error, "settling a coupon reservation failed");
    }
}

//! Using a coupon for an order, and cancelling that use. Owner only; retries answer as the first time.

use super::views::CouponView;
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{middleware::TraceId, to_completion, ApiError, ApiJson, ApiPath, ApiResult},
};
use axum::{extract::State, Extension, Json};
use domain::CouponId;
use infra::coupons::usage;
use serde::Deserialize;
use sqlx::PgPool;

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UseBody {
    #[schema(minimum = 1)]
    order_id: i64,
}

/// Uses the caller's coupon for one of their orders; a retry answers as the first time.
#[utoipa::path(post, path = "/api/v3/coupons/{id}/use", tag = "coupons", params(("id" = i64, Path, minimum = 1)),
    request_body = UseBody, security(("bearer" = [])),
    responses((status = 200, body = CouponView), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, coupon = %coupon))]
pub async fn use_for_order(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(coupon): ApiPath<CouponId>,
    ApiJson(body): ApiJson<UseBody>,
) -> ApiResult<Json<CouponView>> {
    if body.order_id <= 0 {
        return Err(ApiError::new(ErrorCode::InvalidBody, "orderId must be a positive integer"));
    }
    to_completion(async move {
        let used = usage::use_coupon(&pool, coupon.get(), caller.user_id, body.order_id, Some(&trace_id)).await?;
        Ok(Json(used.map_err(ApiError::from)?.into()))
    })
    .await
}

/// Undoes a direct use of the caller's coupon (a use an order made is undone by cancelling the order).
#[utoipa::path(post, path = "/api/v3/coupons/{id}/cancel", tag = "coupons", params(("id" = i64, Path, minimum = 1)),
    security(("bearer" = [])),
    responses((status = 200, body = CouponView), Problems))]
#[tracing::instrument(skip_all, fields(user = %caller.user_id, coupon = %coupon))]
pub async fn cancel_use(
    caller: AuthUser,
    State(pool): State<PgPool>,
    Extension(TraceId(trace_id)): Extension<TraceId>,
    ApiPath(coupon): ApiPath<CouponId>,
) -> ApiResult<Json<CouponView>> {
    to_completion(async move {
        let available = usage::cancel_use(&pool, coupon.get(), caller.user_id, Some(&trace_id)).await?;
        Ok(Json(available.map_err(ApiError::from)?.into()))
    })
    .await
}

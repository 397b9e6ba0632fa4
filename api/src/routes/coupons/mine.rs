use super::views::{CouponView, Page, PageQuery};
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiPath, ApiQuery, ApiResult},
    AppState,
};
use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use domain::{coupon::RequestStatus, UserId};
use infra::coupons::repo;
use serde::Serialize;
use uuid::Uuid;

/// The caller's coupons, newest first.
#[utoipa::path(get, path = "/api/v3/coupons", operation_id = "list_coupons", tag = "coupons", params(PageQuery), security(("bearer" = [])),
    responses((status = 200, body = Page<CouponView>), Problems))]
pub async fn list(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<CouponView>>> {
    let limit = page.checked_limit()?;
    let rows = repo::coupons_of(&state.pool, caller.user_id, page.after, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |row| row.id, CouponView::from)))
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RequestView {
    request_id: Uuid,
    status: RequestStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    coupon_id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_at: Option<DateTime<Utc>>,
}

/// The worker's verdict from the database, or PENDING while only Redis knows the request.
/// A V3 request: PENDING until the worker decides it, then ISSUED or REJECTED with its reason. Another
/// user's request is 404.
#[utoipa::path(get, path = "/api/v3/coupons/requests/{id}", tag = "coupons", params(("id" = Uuid, Path)),
    security(("bearer" = [])),
    responses((status = 200, body = RequestView), Problems))]
pub async fn request_status(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiPath(request_id): ApiPath<Uuid>,
) -> ApiResult<Json<RequestView>> {
    if let Some(row) = repo::find_request(&state.pool, request_id).await? {
        caller
            .ensure_owner(UserId::parse(row.user_id).map_err(anyhow::Error::from)?, || unknown_request(request_id))?;
        return Ok(Json(RequestView {
            request_id,
            status: row.status,
            policy_id: Some(row.policy_id),
            reason: row.reason,
            coupon_id: row.coupon_id,
            resolved_at: row.resolved_at,
        }));
    }
    match state.coupons.pending_owner(request_id).await? {
        Some(owner) => {
            caller.ensure_owner(owner, || unknown_request(request_id))?;
            let status = RequestStatus::Pending;
            Ok(Json(RequestView {
                request_id,
                status,
                policy_id: None,
                reason: None,
                coupon_id: None,
                resolved_at: None,
            }))
        }
        None => Err(unknown_request(request_id)),
    }
}

fn unknown_request(request_id: Uuid) -> ApiError {
    ApiError::new(ErrorCode::RequestNotFound, format!("no issue request {request_id}"))
}

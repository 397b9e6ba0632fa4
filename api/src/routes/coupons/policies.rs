use super::views::{Page, PageQuery, PolicyView};
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::AdminUser,
    http::{to_completion, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult},
};
use axum::{extract::State, http::StatusCode, Json};
use domain::{coupon::PolicyInput, PolicyId};
use infra::coupons::repo;
use sqlx::PgPool;

/// Creates a policy (admin). Every invalid field is named in the 422.
#[utoipa::path(post, path = "/api/v3/coupon-policies", operation_id = "create_policy", tag = "coupons", request_body = PolicyInput,
    security(("bearer" = ["ADMIN"])),
    responses((status = 201, body = PolicyView, description = "created", links(("read" = (operation_id = "show", parameters(("id" = "$response.body#/id")))))), Problems))]
#[tracing::instrument(skip_all, fields(admin = %admin.user_id))]
pub async fn create(
    AdminUser(admin): AdminUser,
    State(pool): State<PgPool>,
    ApiJson(input): ApiJson<PolicyInput>,
) -> ApiResult<(StatusCode, Json<PolicyView>)> {
    let policy = input.validate().map_err(ApiError::Invalid)?;
    to_completion(async move {
        let row = repo::insert_policy(&pool, &policy).await?;
        tracing::info!(policy = row.id, quantity = row.total_quantity, "coupon policy created");
        Ok((StatusCode::CREATED, Json(row.into())))
    })
    .await
}

/// One policy with its issued and remaining quantity (admin).
#[utoipa::path(get, path = "/api/v3/coupon-policies/{id}", tag = "coupons", params(("id" = i64, Path, minimum = 1)),
    security(("bearer" = ["ADMIN"])),
    responses((status = 200, body = PolicyView), Problems))]
pub async fn show(
    _: AdminUser,
    State(pool): State<PgPool>,
    ApiPath(id): ApiPath<PolicyId>,
) -> ApiResult<Json<PolicyView>> {
    repo::find_policy(&pool, id)
        .await?
        .map(|row| Json(row.into()))
        .ok_or_else(|| ApiError::new(ErrorCode::PolicyNotFound, format!("no coupon policy {id}")))
}

/// Policies by id, in keyset pages (admin).
#[utoipa::path(get, path = "/api/v3/coupon-policies", operation_id = "list_policies", tag = "coupons", params(PageQuery),
    security(("bearer" = ["ADMIN"])),
    responses((status = 200, body = Page<PolicyView>), Problems))]
pub async fn list(
    _: AdminUser,
    State(pool): State<PgPool>,
    ApiQuery(page): ApiQuery<PageQuery>,
) -> ApiResult<Json<Page<PolicyView>>> {
    let limit = page.checked_limit()?;
    let rows = repo::list_policies(&pool, page.after, limit).await?;
    Ok(Json(Page::from_rows(rows, limit, |row| row.id, PolicyView::from)))
}

//! `GET /api/v2/points/users/{userId}/expiring?withinDays=`: the points that stop being spendable within
//! the next `withinDays` days (30 by default), lot by lot, soonest first, with their total.

use super::points::unknown_user;
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiPath, ApiQuery, ApiResult},
};
use axum::{extract::State, Json};
use chrono::{DateTime, Duration, Utc};
use domain::{
    points::{LotSource, MAX_VALID_DAYS},
    whole_number, UserId,
};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ExpiringQuery {
    #[serde(default = "default_days", deserialize_with = "whole_number::int")]
    #[param(minimum = 1, maximum = 1826, default = 30)]
    within_days: i64,
}

fn default_days() -> i64 {
    30
}

/// What is left of one lot, and when it stops being spendable.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct ExpiringLot {
    expires_at: DateTime<Utc>,
    remaining: i64,
    source: LotSource,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExpiringPoints {
    user_id: i64,
    within_days: i64,
    /// The points of `lots` together.
    total: i64,
    lots: Vec<ExpiringLot>,
}

/// The user's points that expire within `withinDays` days, soonest first (the owner, or an admin).
#[utoipa::path(get, path = "/api/v2/points/users/{user_id}/expiring", tag = "points",
    params(("user_id" = i64, Path, minimum = 1), ExpiringQuery), security(("bearer" = [])),
    responses((status = 200, body = ExpiringPoints), Problems))]
pub async fn expiring(
    caller: AuthUser,
    State(pool): State<PgPool>,
    ApiPath(user): ApiPath<UserId>,
    ApiQuery(query): ApiQuery<ExpiringQuery>,
) -> ApiResult<Json<ExpiringPoints>> {
    caller.ensure_owner(user, unknown_user)?;
    if !(1..=i64::from(MAX_VALID_DAYS)).contains(&query.within_days) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, format!("withinDays must be 1 to {MAX_VALID_DAYS}")));
    }
    let until = Utc::now() + Duration::days(query.within_days);
    let lots: Vec<ExpiringLot> = infra::points::lots::expiring(&pool, user, until)
        .await?
        .into_iter()
        .map(|lot| ExpiringLot { expires_at: lot.expires_at, remaining: lot.remaining, source: lot.source })
        .collect();
    let total = lots.iter().map(|lot| lot.remaining).sum();
    Ok(Json(ExpiringPoints { user_id: user.get(), within_days: query.within_days, total, lots }))
}

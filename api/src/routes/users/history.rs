//! The caller's login history: every attempt on the account, newest first, in keyset pages.

use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiQuery, ApiResult, ErrorCode},
    AppState,
};
use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use domain::whole_number;
use infra::accounts::history::{self, Attempt, Outcome};
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The `nextCursor` of the previous page.
    #[serde(default, deserialize_with = "whole_number::optional_int")]
    #[param(minimum = 1)]
    cursor: Option<i64>,
    #[serde(default = "default_limit", deserialize_with = "whole_number::int")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: i64,
}

fn default_limit() -> i64 {
    20
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    id: i64,
    succeeded: bool,
    /// OK, WRONG_PASSWORD or THROTTLED.
    #[schema(value_type = String, example = "WRONG_PASSWORD")]
    reason: Outcome,
    ip_address: Option<String>,
    user_agent: Option<String>,
    at: DateTime<Utc>,
}

impl From<Attempt> for AttemptView {
    fn from(attempt: Attempt) -> Self {
        Self {
            id: attempt.id,
            succeeded: attempt.succeeded,
            reason: attempt.reason,
            ip_address: attempt.ip_address,
            user_agent: attempt.user_agent,
            at: attempt.logged_in_at,
        }
    }
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(as = LoginHistoryPage)]
pub struct HistoryPage {
    items: Vec<AttemptView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<i64>,
}

/// The caller's sign-ins and failed attempts, newest first.
#[utoipa::path(get, path = "/api/v1/users/me/login-history", tag = "accounts", params(HistoryQuery),
    security(("bearer" = [])), responses((status = 200, body = HistoryPage), Problems))]
pub async fn page(
    caller: AuthUser,
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    if !(1..=100).contains(&query.limit) || query.cursor.is_some_and(|cursor| cursor <= 0) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 100 and cursor positive"));
    }
    let attempts = history::page(&state.pool, caller.user_id, query.cursor, query.limit).await?;
    let next_cursor = if attempts.len() as i64 == query.limit { attempts.last().map(|a| a.id) } else { None };
    Ok(Json(HistoryPage { items: attempts.into_iter().map(AttemptView::from).collect(), next_cursor }))
}

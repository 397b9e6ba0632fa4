//! `GET /api/v2/points/users/{userId}/history`: newest first, keyset pages with an opaque cursor,
//! filtered by entry type and a `[from, to)` time range.

use super::points::unknown_user;
use crate::http::ErrorCode;
use crate::openapi::Problems;
use crate::{
    auth::AuthUser,
    http::{ApiError, ApiPath, ApiQuery, ApiResult},
};
use axum::{extract::State, Json};
use chrono::{DateTime, Utc};
use domain::whole_number;
use domain::{
    points::{LotSource, PointKind},
    UserId,
};
use infra::points::history::{self, Cursor, Filter, HistoryRow};
use serde::{Deserialize, Serialize};
use sqlx::PgPool;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// `nextCursor` of the previous page.
    cursor: Option<String>,
    #[serde(default = "default_limit", deserialize_with = "whole_number::int")]
    #[param(minimum = 1, maximum = 100, default = 20)]
    limit: i64,
    #[serde(rename = "type")]
    kind: Option<PointKind>,
    /// Entries at or after this time.
    from: Option<DateTime<Utc>>,
    /// Entries before this time.
    to: Option<DateTime<Utc>>,
}

fn default_limit() -> i64 {
    20
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct HistoryItem {
    point_id: i64,
    kind: PointKind,
    amount: i64,
    reason: Option<String>,
    order_id: Option<i64>,
    cancels_point_id: Option<i64>,
    created_at: DateTime<Utc>,
    /// The lot this entry made: an EARN's, or a CANCEL's (source REGRANT) that gave back, valid anew, the
    /// part of a use whose lots had expired meanwhile. Absent for uses, expiries and other cancels.
    granted_lot: Option<GrantedLot>,
}

/// Points an entry made spendable: how many, where they came from, and until when.
#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
struct GrantedLot {
    source: LotSource,
    amount: i64,
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HistoryPage {
    items: Vec<HistoryItem>,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// A user's ledger entries, newest first (the owner, or an admin).
#[utoipa::path(get, path = "/api/v2/points/users/{user_id}/history", tag = "points",
    params(("user_id" = i64, Path, minimum = 1), HistoryQuery), security(("bearer" = [])),
    responses((status = 200, body = HistoryPage), Problems))]
pub async fn history(
    caller: AuthUser,
    State(pool): State<PgPool>,
    ApiPath(user): ApiPath<UserId>,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> ApiResult<Json<HistoryPage>> {
    caller.ensure_owner(user, unknown_user)?;
    if !(1..=100).contains(&query.limit) {
        return Err(ApiError::new(ErrorCode::InvalidQuery, "limit must be 1 to 100"));
    }
    if let (Some(from), Some(to)) = (query.from, query.to) {
        if from >= to {
            return Err(ApiError::new(ErrorCode::InvalidRange, "from must be before to"));
        }
    }
    let after = match query.cursor.as_deref() {
        Some(raw) => {
            Some(Cursor::decode(raw).ok_or_else(|| ApiError::new(ErrorCode::InvalidCursor, "unknown cursor"))?)
        }
        None => None,
    };
    let filter = Filter { kind: query.kind, from: query.from, until: query.to };
    let rows = history::page(&pool, user, &filter, after, query.limit).await?;
    let next_cursor =
        (rows.len() as i64 == query.limit).then(|| rows.last().map(|row| Cursor::after(row).encode())).flatten();
    Ok(Json(HistoryPage { items: rows.into_iter().map(item).collect(), next_cursor }))
}

fn item(row: HistoryRow) -> HistoryItem {
    HistoryItem {
        point_id: row.id,
        kind: row.kind,
        amount: row.amount,
        reason: row.reason,
        order_id: row.order_id,
        cancels_point_id: row.cancels_point_id,
        created_at: row.created_at,
        granted_lot: match (row.lot_source, row.lot_amount, row.lot_expires_at) {
            (Some(source), Some(amount), Some(expires_at)) => Some(GrantedLot { source, amount, expires_at }),
            _ => None,
        },
    }
}

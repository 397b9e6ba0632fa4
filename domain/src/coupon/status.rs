//! The states a coupon and an issue request are stored in (the CHECK constraints list the same values).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum CouponStatus {
    Available,
    Used,
}

/// A V3 issue request: PENDING until the worker decides it, then ISSUED or REJECTED with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum RequestStatus {
    Pending,
    Issued,
    Rejected,
}

use serde::{Deserialize, Serialize};

/// What a ledger entry is: an earn (positive), a use (negative) or the cancel of one entry (its opposite).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PointKind {
    Earn,
    Use,
    Cancel,
}

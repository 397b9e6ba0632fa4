use serde::{Deserialize, Serialize};

/// What a ledger entry is: an earn (positive), a use (negative), the cancel of one entry (its opposite),
/// or what the expiry job took from lots whose validity ended (negative; never cancelled).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "sqlx", derive(sqlx::Type), sqlx(type_name = "text", rename_all = "SCREAMING_SNAKE_CASE"))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PointKind {
    Earn,
    Use,
    Cancel,
    Expire,
}

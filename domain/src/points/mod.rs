//! Points: amounts that are always positive integers within a limit, and the ledger's signed entries.

mod amount;
mod kind;

pub use amount::{PointAmount, PointAmountError, MAX_POINTS_PER_ENTRY};
pub use kind::PointKind;

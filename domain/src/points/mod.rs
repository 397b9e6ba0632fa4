//! Points: amounts that are always positive integers within a limit, the ledger's signed entries, and
//! the lots every earn makes, spent in a stated order until they expire.

mod amount;
mod kind;
mod lot;

pub use amount::{PointAmount, PointAmountError, MAX_POINTS_PER_ENTRY};
pub use kind::PointKind;
pub use lot::{LotSource, Validity, ValidityError, MAX_VALID_DAYS};

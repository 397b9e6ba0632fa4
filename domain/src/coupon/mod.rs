//! Coupon rules: what a valid policy is, and whether a user may be issued one.

mod event;
mod issue;
mod policy;
mod status;
mod usage;

pub use event::IssueRequested;
pub use issue::{decide_in_arrival_order, decide_issue, IssueContext, IssueDeadLetter, IssueRejection, PolicyStock};
pub use policy::{DiscountType, NewPolicy, PolicyInput};
pub use status::{CouponStatus, RequestStatus};
pub use usage::{decide_cancel, decide_use, Change, CouponState, UsageError};

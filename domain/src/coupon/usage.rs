use chrono::{DateTime, Utc};

/// A coupon as the use/cancel rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CouponState {
    pub used_for: Option<i64>,
    pub cancelled_for: Option<i64>,
    pub valid_until: DateTime<Utc>,
}

/// What to do with a use or cancel request: change the coupon, or answer as before (a retry).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Apply,
    AlreadyDone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UsageError {
    #[error("the coupon was used for another order")]
    UsedElsewhere,
    #[error("the coupon has expired")]
    Expired,
    #[error("the coupon is not in use")]
    NotUsed,
}

impl UsageError {
    pub fn code(self) -> &'static str {
        match self {
            UsageError::UsedElsewhere => "COUPON_ALREADY_USED",
            UsageError::Expired => "COUPON_EXPIRED",
            UsageError::NotUsed => "COUPON_NOT_USED",
        }
    }
}

/// Using for `order`: once per coupon, while valid; using again for the same order is a harmless retry.
pub fn decide_use(coupon: &CouponState, order: i64, now: DateTime<Utc>) -> Result<Change, UsageError> {
    match coupon.used_for {
        Some(used) if used == order => Ok(Change::AlreadyDone),
        Some(_) => Err(UsageError::UsedElsewhere),
        None if now >= coupon.valid_until => Err(UsageError::Expired),
        None => Ok(Change::Apply),
    }
}

/// Cancelling a use makes the coupon available again; cancelling twice is a harmless retry.
pub fn decide_cancel(coupon: &CouponState) -> Result<Change, UsageError> {
    match (coupon.used_for, coupon.cancelled_for) {
        (Some(_), _) => Ok(Change::Apply),
        (None, Some(_)) => Ok(Change::AlreadyDone),
        (None, None) => Err(UsageError::NotUsed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn coupon(used_for: Option<i64>, cancelled_for: Option<i64>) -> CouponState {
        CouponState { used_for, cancelled_for, valid_until: Utc::now() + Duration::days(1) }
    }

    #[test]
    fn a_coupon_is_used_once_and_a_retry_for_the_same_order_changes_nothing() {
        assert_eq!(decide_use(&coupon(None, None), 7, Utc::now()), Ok(Change::Apply));
        assert_eq!(decide_use(&coupon(Some(7), None), 7, Utc::now()), Ok(Change::AlreadyDone));
        assert_eq!(decide_use(&coupon(Some(7), None), 8, Utc::now()), Err(UsageError::UsedElsewhere));
    }

    #[test]
    fn an_expired_coupon_cannot_be_used() {
        let expired = CouponState { valid_until: Utc::now() - Duration::seconds(1), ..coupon(None, None) };
        assert_eq!(decide_use(&expired, 1, Utc::now()), Err(UsageError::Expired));
    }

    #[test]
    fn cancel_undoes_a_use_once_and_refuses_a_never_used_coupon() {
        assert_eq!(decide_cancel(&coupon(Some(7), None)), Ok(Change::Apply));
        assert_eq!(decide_cancel(&coupon(None, Some(7))), Ok(Change::AlreadyDone));
        assert_eq!(decide_cancel(&coupon(None, None)), Err(UsageError::NotUsed));
    }
}

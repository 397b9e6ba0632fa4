use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why a user was not issued a coupon. The strings are the API's stable codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum IssueRejection {
    UnknownPolicy,
    OutsideIssueWindow,
    AlreadyIssued,
    SoldOut,
}

impl IssueRejection {
    pub fn code(self) -> &'static str {
        match self {
            IssueRejection::UnknownPolicy => "UNKNOWN_POLICY",
            IssueRejection::OutsideIssueWindow => "OUTSIDE_ISSUE_WINDOW",
            IssueRejection::AlreadyIssued => "ALREADY_ISSUED",
            IssueRejection::SoldOut => "SOLD_OUT",
        }
    }

    pub fn from_code(code: &str) -> Option<Self> {
        [Self::UnknownPolicy, Self::OutsideIssueWindow, Self::AlreadyIssued, Self::SoldOut]
            .into_iter()
            .find(|rejection| rejection.code() == code)
    }
}

/// What the issuer knows about a policy at the moment it decides.
#[derive(Debug, Clone, Copy)]
pub struct IssueContext {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub total_quantity: i64,
    pub issued: i64,
    pub already_issued_to_user: bool,
}

/// The one rule every issuing path applies, in this order: the window, then one per user, then stock.
/// A user who already holds the coupon hears so even when stock has run out.
pub fn decide_issue(context: &IssueContext, now: DateTime<Utc>) -> Result<(), IssueRejection> {
    if now < context.starts_at || now >= context.ends_at {
        return Err(IssueRejection::OutsideIssueWindow);
    }
    if context.already_issued_to_user {
        return Err(IssueRejection::AlreadyIssued);
    }
    if context.issued >= context.total_quantity {
        return Err(IssueRejection::SoldOut);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    fn context(issued: i64, already: bool) -> IssueContext {
        let now = Utc::now();
        IssueContext {
            starts_at: now - Duration::minutes(1),
            ends_at: now + Duration::minutes(1),
            total_quantity: 3,
            issued,
            already_issued_to_user: already,
        }
    }

    #[test]
    fn issues_while_stock_lasts_inside_the_window() {
        assert_eq!(decide_issue(&context(2, false), Utc::now()), Ok(()));
        assert_eq!(decide_issue(&context(3, false), Utc::now()), Err(IssueRejection::SoldOut));
    }

    #[test]
    fn a_second_request_by_the_same_user_is_already_issued_even_when_sold_out() {
        assert_eq!(decide_issue(&context(3, true), Utc::now()), Err(IssueRejection::AlreadyIssued));
    }

    #[test]
    fn the_window_is_start_inclusive_and_end_exclusive() {
        let c = context(0, false);
        assert_eq!(decide_issue(&c, c.starts_at), Ok(()));
        assert_eq!(decide_issue(&c, c.ends_at), Err(IssueRejection::OutsideIssueWindow));
        assert_eq!(decide_issue(&c, c.starts_at - Duration::seconds(1)), Err(IssueRejection::OutsideIssueWindow));
    }

    #[test]
    fn rejection_codes_round_trip() {
        for rejection in [IssueRejection::SoldOut, IssueRejection::AlreadyIssued, IssueRejection::OutsideIssueWindow] {
            assert_eq!(IssueRejection::from_code(rejection.code()), Some(rejection));
        }
    }
}

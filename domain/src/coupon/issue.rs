use super::IssueRequested;
use crate::UserId;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

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
            IssueRejection::UnknownPolicy => "POLICY_NOT_FOUND",
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

/// Why a V3 request went to the dead-letter topic instead of getting a verdict: it can never be decided.
/// Its reservation is returned and its status reads REJECTED with this code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IssueDeadLetter {
    UnknownUser,
    UnknownPolicy,
    /// Persisting it failed on every attempt while the rest of its batch succeeded.
    Unprocessable,
}

impl IssueDeadLetter {
    pub fn code(self) -> &'static str {
        match self {
            IssueDeadLetter::UnknownUser => "USER_NOT_FOUND",
            IssueDeadLetter::UnknownPolicy => "POLICY_NOT_FOUND",
            IssueDeadLetter::Unprocessable => "UNPROCESSABLE",
        }
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

/// A policy's stock as read before deciding a batch of its requests.
#[derive(Debug, Clone, Copy)]
pub struct PolicyStock {
    pub starts_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
    pub total_quantity: i64,
    pub issued: i64,
}

/// [`decide_issue`] for a batch, first come first served in arrival order: each request is decided at its
/// own request time, seeing the coupons issued to the requests before it. `holders` already hold one.
pub fn decide_in_arrival_order(
    stock: PolicyStock,
    holders: &HashSet<UserId>,
    requests: &[&IssueRequested],
) -> Vec<Result<(), IssueRejection>> {
    let mut issued_to: HashSet<UserId> = HashSet::new();
    requests
        .iter()
        .map(|request| {
            let context = IssueContext {
                starts_at: stock.starts_at,
                ends_at: stock.ends_at,
                total_quantity: stock.total_quantity,
                issued: stock.issued + issued_to.len() as i64,
                already_issued_to_user: holders.contains(&request.user_id) || issued_to.contains(&request.user_id),
            };
            let outcome = decide_issue(&context, request.requested_at);
            if outcome.is_ok() {
                issued_to.insert(request.user_id);
            }
            outcome
        })
        .collect()
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

    fn request(user: i64, minutes_from_now: i64) -> IssueRequested {
        IssueRequested {
            request_id: uuid::Uuid::new_v4(),
            policy_id: crate::PolicyId::parse(1).expect("id"),
            user_id: UserId::parse(user).expect("id"),
            requested_at: Utc::now() + Duration::minutes(minutes_from_now),
        }
    }

    #[test]
    fn a_batch_gives_the_remaining_coupons_to_the_first_requests_in_the_window_once_per_user() {
        let now = Utc::now();
        let stock = PolicyStock {
            starts_at: now - Duration::hours(1),
            ends_at: now + Duration::hours(1),
            total_quantity: 10,
            issued: 8,
        };
        let holder = 7;
        let requests = [
            request(1, 0),      // issued (1 of 2 left)
            request(1, 0),      // the same user again
            request(holder, 0), // already held a coupon before this batch
            request(2, 120),    // after the window closed
            request(3, 0),      // issued (the last one)
            request(4, 0),      // none left
        ];
        let refs: Vec<&IssueRequested> = requests.iter().collect();
        let holders = HashSet::from([UserId::parse(holder).expect("id")]);
        assert_eq!(
            decide_in_arrival_order(stock, &holders, &refs),
            [
                Ok(()),
                Err(IssueRejection::AlreadyIssued),
                Err(IssueRejection::AlreadyIssued),
                Err(IssueRejection::OutsideIssueWindow),
                Ok(()),
                Err(IssueRejection::SoldOut),
            ]
        );
    }

    #[test]
    fn rejection_codes_round_trip() {
        for rejection in [IssueRejection::SoldOut, IssueRejection::AlreadyIssued, IssueRejection::OutsideIssueWindow] {
            assert_eq!(IssueRejection::from_code(rejection.code()), Some(rejection));
        }
    }
}

use crate::outbox::Aggregate;

/// Every topic the platform uses. Names are fixed here; environments differ only by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// V3 coupon issue requests, keyed by user.
    CouponIssueRequested,
    /// Issue requests that failed processing too often to retry.
    CouponIssueDeadLetter,
    /// Outbox events of the points aggregate.
    PointsEvents,
    /// Point events the point-activity consumer could not read.
    PointsEventsDeadLetter,
    /// Outbox events of the orders aggregate.
    OrdersEvents,
    /// Order events the purchase-points consumer could not read.
    OrdersEventsDeadLetter,
    /// Outbox events of the coupons aggregate (use, cancel).
    CouponsEvents,
}

impl Topic {
    pub const ALL: [Topic; 7] = [
        Topic::CouponIssueRequested,
        Topic::CouponIssueDeadLetter,
        Topic::PointsEvents,
        Topic::PointsEventsDeadLetter,
        Topic::OrdersEvents,
        Topic::OrdersEventsDeadLetter,
        Topic::CouponsEvents,
    ];

    /// The topic that carries outbox events of `aggregate`.
    pub fn for_aggregate(aggregate: Aggregate) -> Topic {
        match aggregate {
            Aggregate::Points => Topic::PointsEvents,
            Aggregate::Coupon => Topic::CouponsEvents,
            Aggregate::Order => Topic::OrdersEvents,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Topic::CouponIssueRequested => "coupon.issue.requested",
            Topic::CouponIssueDeadLetter => "coupon.issue.dlq",
            Topic::PointsEvents => "points.events",
            Topic::PointsEventsDeadLetter => "points.events.dlq",
            Topic::OrdersEvents => "orders.events",
            Topic::OrdersEventsDeadLetter => "orders.events.dlq",
            Topic::CouponsEvents => "coupons.events",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{Aggregate, Topic};

    #[test]
    fn every_aggregate_of_the_shop_has_an_event_topic_and_unknown_types_have_none() {
        let routed: Vec<_> = Aggregate::ALL.iter().map(|a| Topic::for_aggregate(*a)).collect();
        assert_eq!(routed, [Topic::PointsEvents, Topic::CouponsEvents, Topic::OrdersEvents]);
        assert_eq!(Aggregate::ALL.map(|a| Aggregate::parse(a.as_str())), Aggregate::ALL.map(Some));
        assert_eq!(Aggregate::parse("bogus"), None);
    }
}

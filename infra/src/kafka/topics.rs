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
    /// Outbox events of the coupons aggregate (use, cancel).
    CouponsEvents,
}

impl Topic {
    pub const ALL: [Topic; 6] = [
        Topic::CouponIssueRequested,
        Topic::CouponIssueDeadLetter,
        Topic::PointsEvents,
        Topic::PointsEventsDeadLetter,
        Topic::OrdersEvents,
        Topic::CouponsEvents,
    ];

    /// The topic that carries outbox events of `aggregate_type`; None for a type nobody routes yet.
    pub fn for_aggregate(aggregate_type: &str) -> Option<Topic> {
        match aggregate_type {
            "points" => Some(Topic::PointsEvents),
            "coupon" => Some(Topic::CouponsEvents),
            "order" => Some(Topic::OrdersEvents),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Topic::CouponIssueRequested => "coupon.issue.requested",
            Topic::CouponIssueDeadLetter => "coupon.issue.dlq",
            Topic::PointsEvents => "points.events",
            Topic::PointsEventsDeadLetter => "points.events.dlq",
            Topic::OrdersEvents => "orders.events",
            Topic::CouponsEvents => "coupons.events",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Topic;

    #[test]
    fn every_aggregate_of_the_shop_has_an_event_topic() {
        assert_eq!(Topic::for_aggregate("points"), Some(Topic::PointsEvents));
        assert_eq!(Topic::for_aggregate("coupon"), Some(Topic::CouponsEvents));
        assert_eq!(Topic::for_aggregate("order"), Some(Topic::OrdersEvents));
        assert_eq!(Topic::for_aggregate("unknown"), None);
    }
}

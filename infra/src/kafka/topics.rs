/// Every topic the platform uses. Names are fixed here; environments differ only by prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    /// V3 coupon issue requests, keyed by user.
    CouponIssueRequested,
    /// Issue requests that failed processing too often to retry.
    CouponIssueDeadLetter,
    /// Outbox events of the points aggregate.
    PointsEvents,
    /// Outbox events of the orders aggregate.
    OrdersEvents,
    /// Outbox events of the coupons aggregate (use, cancel).
    CouponsEvents,
}

impl Topic {
    pub const ALL: [Topic; 5] = [
        Topic::CouponIssueRequested,
        Topic::CouponIssueDeadLetter,
        Topic::PointsEvents,
        Topic::OrdersEvents,
        Topic::CouponsEvents,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Topic::CouponIssueRequested => "coupon.issue.requested",
            Topic::CouponIssueDeadLetter => "coupon.issue.dlq",
            Topic::PointsEvents => "points.events",
            Topic::OrdersEvents => "orders.events",
            Topic::CouponsEvents => "coupons.events",
        }
    }
}

//! Every worker this binary can run, in one place, and the choice of which run in this process.

use crate::Worker;
use anyhow::bail;

/// Every worker this binary can run, in one place.
pub fn registry() -> Vec<Box<dyn Worker>> {
    vec![
        Box::new(crate::coupon_issuance::CouponIssuance),
        Box::new(crate::outbox_relay::OutboxRelay),
        Box::new(crate::point_activity::PointActivity),
        Box::new(crate::payment_resolution::PaymentResolution),
        Box::new(crate::purchase_points::PurchasePoints),
    ]
}

/// The workers named by `--only`, or all of them; an unknown name is an error, not a silent no-op.
pub fn select(only: &[String]) -> anyhow::Result<Vec<Box<dyn Worker>>> {
    let all = registry();
    if only.is_empty() {
        return Ok(all);
    }
    let known: Vec<_> = all.iter().map(|worker| worker.name()).collect();
    if let Some(unknown) = only.iter().find(|name| !known.contains(&name.as_str())) {
        bail!("unknown worker {unknown:?}; known workers: {known:?}");
    }
    Ok(all.into_iter().filter(|worker| only.iter().any(|name| name == worker.name())).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_worker_name_is_rejected() {
        let error = select(&["no-such-worker".to_owned()]).err().expect("unknown name must fail");
        assert!(error.to_string().contains("no-such-worker"));
    }
}

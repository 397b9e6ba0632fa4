//! The coupon issuance worker: consumes V3 issue requests in batches and persists each batch with one
//! transaction per policy (see `infra::coupons::issuance`). Offsets are stored only after those commits,
//! so a crash redelivers (and the request id makes redelivery a no-op) but never loses an accepted request.

mod batch;
mod consume;

use crate::{Worker, WorkerContext, WorkerFuture};
use tokio_util::sync::CancellationToken;

pub struct CouponIssuance;

impl Worker for CouponIssuance {
    fn name(&self) -> &'static str {
        "coupon-issuance"
    }

    /// One group member per `--concurrency`: Kafka spreads the partitions over all members of all processes.
    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move { crate::worker::run_members(&context, &shutdown, consume::run_member).await })
    }
}

//! The payment-resolution worker: every few seconds one pass of `infra::shop::orders::resolve` (payments
//! and refunds whose answer never came are settled by the provider's look-up; unpaid orders past their
//! window expire once the provider holds nothing for them). Replicas share the work through leases.

use crate::{Worker, WorkerContext, WorkerFuture};
use infra::{
    breaker::Breaker,
    payments::TossPayments,
    points::cache::BalanceCache,
    shop::{orders, StockGate},
};
use tokio_util::sync::CancellationToken;

pub struct PaymentResolution;

/// Items of each kind one pass takes on.
const PER_PASS: i64 = 500;

impl Worker for PaymentResolution {
    fn name(&self) -> &'static str {
        "payment-resolution"
    }

    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move {
            let settings = context.settings.payments.clone();
            let gateway = TossPayments::new(&settings.provider, Breaker::new("payments", &settings.breakers))?;
            let balances = BalanceCache::new(context.redis.clone());
            let stock_gate = StockGate::new(context.redis.clone(), context.pool.clone());
            // An attempt counts as unanswered once it has been in flight longer than a call can take.
            let stale_after = settings.every.max(settings.provider.timeout() * 2);
            let rules = settings.orders.lifecycle();
            loop {
                let mut more = false;
                match orders::resolve(&context.pool, &gateway, rules, stale_after, PER_PASS).await {
                    Ok((resolved, effects)) => {
                        // A full pass of expiries (a promotion's abandoned checkouts): the next one at once.
                        more = resolved.expired as i64 >= PER_PASS;
                        if resolved != orders::Resolved::default() {
                            tracing::info!(?resolved, "payment resolution pass");
                        }
                        for effect in effects {
                            effect.announce(&balances, &stock_gate).await;
                        }
                    }
                    Err(error) => tracing::warn!(error = ?error, "a payment resolution pass failed; trying again"),
                }
                let pause = if more { std::time::Duration::ZERO } else { settings.every };
                tokio::select! {
                    () = shutdown.cancelled() => return Ok(()),
                    () = tokio::time::sleep(pause) => {}
                }
            }
        })
    }
}

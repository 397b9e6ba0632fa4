//! The bare-fetching ceiling of payment reconciliation: every page of the provider's settlement lines of
//! a day through the same client, nothing else.

use infra::{
    breaker::{Breaker, BreakerArgs},
    config::PaymentArgs,
    payments::{PaymentGateway, TossPayments},
};
use std::time::Instant;

#[derive(clap::Args, Debug)]
pub struct FetchSettlementsArgs {
    /// The day, YYYY-MM-DD.
    #[arg(long)]
    pub date: chrono::NaiveDate,
    /// Lines per page (as reconcile-payments asks).
    #[arg(long, default_value_t = 1_000)]
    pub page_size: u32,
    #[command(flatten)]
    pub payments: PaymentArgs,
}

pub async fn fetch(args: FetchSettlementsArgs) -> anyhow::Result<()> {
    let gateway = TossPayments::new(&args.payments, Breaker::new("payments", &BreakerArgs::default()).disabled())?;
    let started = Instant::now();
    let (mut lines, mut pages) = (0usize, 0u32);
    loop {
        let page = gateway.settlements(args.date, args.date, pages + 1, args.page_size).await?;
        pages += 1;
        lines += page.len();
        if page.len() < args.page_size as usize {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "lines={lines} pages={pages} seconds={seconds:.3} lines_per_second={:.0}",
        lines as f64 / seconds.max(1e-9)
    );
    Ok(())
}

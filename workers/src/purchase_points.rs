//! The purchase-points consumer: on `OrderConfirmed` (from `orders.events`) the buyer earns
//! `PURCHASE_POINTS_RATE_BPS` of what the order paid, once per order (`infra::shop::purchase_points`
//! keys on the order id, so redelivery and a restart mid-batch earn nothing twice). Other order events
//! are acknowledged and left alone; a record that is not an event goes to `orders.events.dlq`.

use crate::{
    dead_letter::DeadLetters,
    receive,
    retry::{self, Retried},
    Worker, WorkerContext, WorkerFuture,
};
use anyhow::Context;
use infra::{
    kafka::{trace_id_from, ConsumerGroup, Topic},
    outbox::Envelope,
    points::cache::BalanceCache,
    shop::purchase_points::{self, Awarded},
};
use rdkafka::message::{Message, OwnedMessage};
use tokio_util::sync::CancellationToken;

pub const GROUP: &str = ConsumerGroup::PurchasePoints.name();
const CONFIRMED: &str = "OrderConfirmed";

pub struct PurchasePoints;

impl Worker for PurchasePoints {
    fn name(&self) -> &'static str {
        "purchase-points"
    }

    fn run(&self, context: WorkerContext, shutdown: CancellationToken) -> WorkerFuture {
        Box::pin(async move { crate::worker::run_members(&context, &shutdown, run_member).await })
    }
}

async fn run_member(context: WorkerContext, member: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
    let dead_letters =
        DeadLetters::new(context.kafka.producer()?, context.kafka.topic_name(Topic::OrdersEventsDeadLetter));
    let balances = BalanceCache::new(context.redis.clone());
    receive::consume(&context, ConsumerGroup::PurchasePoints, member, &shutdown, |records| async {
        let done = award_batch(&context, &balances, &dead_letters, &records, &shutdown).await?;
        Ok((done, records))
    })
    .await
}

/// The confirmed orders of a batch earn their points; false if shutdown interrupted the retries (nothing
/// of the batch is acknowledged then).
async fn award_batch(
    context: &WorkerContext,
    balances: &BalanceCache,
    dead_letters: &DeadLetters,
    records: &[OwnedMessage],
    shutdown: &CancellationToken,
) -> anyhow::Result<bool> {
    let mut confirmed = Vec::new();
    for record in records {
        match confirmed_order(record) {
            Ok(Some(order)) => confirmed.push(order),
            Ok(None) => {}
            Err(reason) => dead_letters.send(record, &reason).await?,
        }
    }
    if confirmed.is_empty() {
        return Ok(true);
    }
    let trace_id = records.iter().find_map(|record| trace_id_from(record.headers()));
    let rate = context.settings.purchase_points_rate_bps;
    let validity = context.settings.payments.orders.points_validity();
    // Transient errors are retried until shutdown; anything else stops the worker: skipping a confirmed
    // order would leave its buyer without the points for good.
    let award = || async {
        purchase_points::award(&context.pool, balances, &confirmed, rate, validity, trace_id.as_deref())
            .await
            .map_err(as_database_error)
    };
    match retry::until_done(1, shutdown, award).await {
        Retried::Done(awarded) => {
            log_awarded(&awarded);
            Ok(true)
        }
        Retried::Interrupted => Ok(false),
        Retried::Failed(error) => Err(error).context("earning purchase points"),
    }
}

/// The order a record confirms; None for the other order events.
fn confirmed_order(record: &OwnedMessage) -> Result<Option<i64>, String> {
    let bytes = record.payload().ok_or_else(|| "empty payload".to_owned())?;
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|error| format!("malformed envelope: {error}"))?;
    if envelope.event_type != CONFIRMED {
        return Ok(None);
    }
    envelope.payload["orderId"]
        .as_i64()
        .map(Some)
        .ok_or_else(|| format!("{CONFIRMED} {} names no orderId", envelope.event_id))
}

/// The retry policy speaks database errors; what is not one counts as a failure that is not transient.
fn as_database_error(error: anyhow::Error) -> sqlx::Error {
    error.downcast::<sqlx::Error>().unwrap_or_else(|other| sqlx::Error::Protocol(format!("{other:#}")))
}

fn log_awarded(awarded: &Awarded) {
    for &(order, points) in &awarded.earned {
        tracing::info!(order, points, "purchase points earned");
    }
    metrics::counter!("purchase_points_orders_total").increment(awarded.earned.len() as u64);
    metrics::counter!("purchase_points_duplicates_total").increment(awarded.skipped as u64);
}

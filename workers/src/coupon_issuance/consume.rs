use super::{batch, GROUP};
use crate::{dead_letter::DeadLetters, receive, WorkerContext};
use anyhow::Context;
use infra::{
    coupons::CouponStock,
    kafka::{SettleConsumer, Topic},
};
use rdkafka::consumer::Consumer;
use tokio_util::sync::CancellationToken;

/// One consumer-group member: batch, persist, then store the batch's offsets; commit on the way out.
pub async fn run_member(context: WorkerContext, member: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
    let consumer: SettleConsumer = context.kafka.consumer(GROUP)?;
    let topic = context.kafka.topic_name(Topic::CouponIssueRequested);
    consumer.subscribe(&[&topic]).with_context(|| format!("subscribing to {topic}"))?;
    let handler = batch::BatchHandler {
        pool: context.pool.clone(),
        stock: CouponStock::new(context.redis.clone()),
        dead_letters: DeadLetters::new(
            context.kafka.producer()?,
            context.kafka.topic_name(Topic::CouponIssueDeadLetter),
        ),
        max_attempts: context.settings.max_attempts,
    };
    tracing::info!(member, %topic, group = GROUP, "coupon issuance consumer started");

    while let Some(records) = receive::next_batch(&consumer, &context.settings, &shutdown).await {
        if !handler.handle(&records, &shutdown).await? {
            break; // shutdown while retrying: the batch's offsets stay unstored and it is redelivered
        }
        receive::store_offsets(&consumer, &records)?;
    }
    receive::commit_on_exit(&consumer);
    tracing::info!(member, "coupon issuance consumer stopped");
    Ok(())
}

use super::batch;
use crate::{dead_letter::DeadLetters, receive, WorkerContext};
use infra::{
    coupons::CouponStock,
    kafka::{ConsumerGroup, Topic},
};
use tokio_util::sync::CancellationToken;

/// One consumer-group member: batch, persist, then store the batch's offsets; commit on the way out.
pub async fn run_member(context: WorkerContext, member: u16, shutdown: CancellationToken) -> anyhow::Result<()> {
    let handler = batch::BatchHandler {
        pool: context.pool.clone(),
        stock: CouponStock::new(context.redis.clone()),
        dead_letters: DeadLetters::new(
            context.kafka.producer()?,
            context.kafka.topic_name(Topic::CouponIssueDeadLetter),
        ),
        max_attempts: context.settings.max_attempts,
    };
    receive::consume(&context, ConsumerGroup::CouponIssuance, member, &shutdown, |records| async {
        let done = handler.handle(&records, &shutdown).await?;
        Ok((done, records))
    })
    .await
}

use chrono::Utc;
use domain::{coupon::IssueRequested, PolicyId, UserId};
use futures::{stream, StreamExt};
use infra::{
    config::KafkaArgs,
    kafka::{with_trace_id, Kafka},
    telemetry::new_trace_id,
};
use rdkafka::{message::OwnedHeaders, producer::FutureRecord};
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ProduceArgs {
    /// Records to send.
    #[arg(long, default_value_t = 100_000)]
    count: u32,
    /// Topic to send to (created if missing): keep it apart from the one the workers consume.
    #[arg(long, default_value = "bench.ceiling")]
    topic: String,
    /// Sends in flight at once (librdkafka batches them, as it does for the API's concurrent requests).
    #[arg(long, default_value_t = 4_096)]
    in_flight: usize,
}

/// The same record shape, key, trace-id header and producer settings as settle-api's V3 path, with nothing
/// else around it.
pub async fn run(kafka: &KafkaArgs, args: ProduceArgs) -> anyhow::Result<()> {
    let kafka = Kafka::new(kafka.clone());
    kafka.ensure_topic_names(std::slice::from_ref(&args.topic)).await?;
    let producer = kafka.producer()?;
    let policy = PolicyId::parse(1)?;
    let started = Instant::now();
    let failures = stream::iter(1..=i64::from(args.count))
        .map(|user| {
            let producer = producer.clone();
            let topic = args.topic.clone();
            async move {
                let request = IssueRequested {
                    request_id: uuid::Uuid::new_v4(),
                    policy_id: policy,
                    user_id: UserId::parse(user).expect("positive"),
                    requested_at: Utc::now(),
                };
                let payload = serde_json::to_vec(&request).expect("serializable");
                let key = user.to_string();
                let headers = with_trace_id(OwnedHeaders::new(), &new_trace_id());
                producer
                    .send(FutureRecord::to(&topic).key(&key).payload(&payload).headers(headers), Duration::from_secs(5))
                    .await
                    .is_err()
            }
        })
        .buffer_unordered(args.in_flight)
        .filter(|failed| std::future::ready(*failed))
        .count()
        .await;
    let elapsed = started.elapsed().as_secs_f64();
    println!(
        "produced {} records in {elapsed:.2} s: {:.0} acked/s, {failures} failed",
        args.count,
        f64::from(args.count) / elapsed
    );
    anyhow::ensure!(failures == 0, "{failures} sends failed");
    Ok(())
}

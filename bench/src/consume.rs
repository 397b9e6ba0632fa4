//! The consuming side's ceiling: read records with the workers' consumer settings and do nothing else,
//! so the issuance worker's rate can be told apart from what the broker delivers.

use infra::{config::KafkaArgs, kafka::Kafka};
use rdkafka::consumer::Consumer;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct ConsumeArgs {
    /// Topic to read from the beginning (e.g. the one `produce` filled).
    #[arg(long)]
    topic: String,
    /// Records to read before stopping.
    #[arg(long, default_value_t = 100_000)]
    count: u64,
}

pub async fn run(kafka: &KafkaArgs, args: ConsumeArgs) -> anyhow::Result<()> {
    let kafka = Kafka::new(kafka.clone());
    let consumer = kafka.consumer(&format!("bench-consume-{}", uuid::Uuid::new_v4().simple()))?;
    consumer.subscribe(&[args.topic.as_str()])?;
    let mut started = None;
    let mut received = 0;
    while received < args.count {
        let message = tokio::time::timeout(Duration::from_secs(30), consumer.recv()).await;
        anyhow::ensure!(message.is_ok(), "no record for 30 s after {received}: is the topic that full?");
        message??;
        // Timed from the first record, as the workers' rate is (first to last verdict): no group join.
        started.get_or_insert_with(Instant::now);
        received += 1;
    }
    let elapsed = started.map_or(0.0, |at| at.elapsed().as_secs_f64());
    println!("consumed {received} records in {elapsed:.2} s: {:.0} records/s", received as f64 / elapsed);
    Ok(())
}

use infra::kafka::{store_handled, trace_id_from, with_trace_id, Kafka, SettleConsumer};
use rdkafka::{
    consumer::{CommitMode, Consumer},
    message::{Message, OwnedHeaders},
    producer::{FutureProducer, FutureRecord},
};
use std::{collections::BTreeSet, time::Duration};
use testkit::{broker::OwnBroker, TestEnv};

const WAIT: Duration = Duration::from_secs(30);

async fn produce(producer: &FutureProducer, topic: &str, payloads: &[String]) {
    for payload in payloads {
        let headers = with_trace_id(OwnedHeaders::new(), &format!("trace-{payload}"));
        producer
            .send(FutureRecord::to(topic).key("k").payload(payload).headers(headers), Duration::from_secs(10))
            .await
            .map_err(|(error, _)| error)
            .expect("the broker acknowledges the record");
    }
}

async fn next_payload(consumer: &SettleConsumer) -> (String, rdkafka::message::OwnedMessage) {
    let message = tokio::time::timeout(WAIT, consumer.recv())
        .await
        .expect("a record arrives within 30 s")
        .expect("consuming")
        .detach();
    let payload = String::from_utf8(message.payload().expect("payload").to_vec()).expect("utf-8");
    (payload, message)
}

fn single_partition(env: &TestEnv, brokers: Option<String>) -> Kafka {
    let mut args = env.kafka.clone();
    args.partitions = 1;
    if let Some(brokers) = brokers {
        args.brokers = brokers;
    }
    Kafka::new(args)
}

#[tokio::test]
async fn a_consumer_group_resumes_after_its_committed_offset() {
    let env = TestEnv::new().await;
    let kafka = single_partition(&env, None);
    let topic = format!("{}roundtrip", env.kafka.topic_prefix);
    kafka.ensure_topic_names(std::slice::from_ref(&topic)).await.expect("creating the topic");
    kafka.ensure_topic_names(std::slice::from_ref(&topic)).await.expect("creating it again is a no-op");

    let sent: Vec<String> = (0..6).map(|i| format!("record-{i}")).collect();
    produce(&kafka.producer().expect("producer"), &topic, &sent).await;

    let first = kafka.consumer("roundtrip").expect("consumer");
    first.subscribe(&[&topic]).expect("subscribe");
    for expected in &sent[..3] {
        let (payload, message) = next_payload(&first).await;
        assert_eq!(&payload, expected);
        assert_eq!(trace_id_from(message.headers()).as_deref(), Some(format!("trace-{payload}").as_str()));
        first.store_offset(message.topic(), message.partition(), message.offset()).expect("storing the offset");
    }
    first.commit_consumer_state(CommitMode::Sync).expect("committing");
    drop(first);

    let second = kafka.consumer("roundtrip").expect("consumer");
    second.subscribe(&[&topic]).expect("subscribe");
    let mut rest = Vec::new();
    for _ in 3..6 {
        rest.push(next_payload(&second).await.0);
    }
    assert_eq!(rest, sent[3..].to_vec(), "the group resumes right after the committed offset");
}

/// A rebalance can take a partition away while its batch is being handled (a second worker process
/// joining): storing that batch's offsets must not stop the worker, and the record goes to the next owner.
#[tokio::test]
async fn a_record_whose_partition_was_revoked_mid_batch_is_left_to_the_next_owner() {
    let env = TestEnv::new().await;
    let kafka = single_partition(&env, None);
    let topic = format!("{}revoked", env.kafka.topic_prefix);
    kafka.ensure_topic_names(std::slice::from_ref(&topic)).await.expect("creating the topic");
    produce(&kafka.producer().expect("producer"), &topic, &["handled-late".to_owned()]).await;

    let first = kafka.consumer("revoked").expect("consumer");
    first.subscribe(&[&topic]).expect("subscribe");
    let (payload, message) = next_payload(&first).await;
    first.unsubscribe(); // the partition is taken away while its record is being handled
    let revoked = tokio::time::timeout(WAIT, async {
        while first.assignment().expect("assignment").count() > 0 {
            let _ = tokio::time::timeout(Duration::from_millis(100), first.recv()).await;
            // serves the rebalance
        }
    });
    revoked.await.expect("the partition is revoked");
    store_handled(&first, &[message]).expect("a revoked partition's record is skipped, not an error");
    drop(first);

    let second = kafka.consumer("revoked").expect("consumer");
    second.subscribe(&[&topic]).expect("subscribe");
    assert_eq!(next_payload(&second).await.0, payload, "the next owner receives the record again");
}

#[tokio::test]
async fn a_broker_restart_loses_no_acknowledged_record() {
    let env = TestEnv::new().await;
    let mut broker = OwnBroker::start().await.expect("starting a private broker");
    let kafka = single_partition(&env, Some(broker.brokers()));
    let topic = format!("{}durable", env.kafka.topic_prefix);
    kafka.ensure_topic_names(std::slice::from_ref(&topic)).await.expect("creating the topic");
    let sent: BTreeSet<String> = (0..20).map(|i| format!("durable-{i}")).collect();
    produce(&kafka.producer().expect("producer"), &topic, &sent.iter().cloned().collect::<Vec<_>>()).await;

    broker.stop();
    broker.restart().await.expect("restarting the broker on the same storage");

    let consumer = kafka.consumer("durable").expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut received = BTreeSet::new();
    while received.len() < sent.len() {
        received.insert(next_payload(&consumer).await.0);
    }
    assert_eq!(received, sent);
}

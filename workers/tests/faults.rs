//! The workers binary through faults injected into the real services: PostgreSQL restarted with
//! `pg_ctl restart -m immediate` under a relay backlog, and the broker's port blackholed with nftables
//! (packets dropped, not refused: what a dead network path looks like). The process is never restarted:
//! its pools and producer recover by themselves, and every committed event is delivered.

use infra::{
    kafka::{Kafka, Topic},
    outbox::Envelope,
};
use rdkafka::message::Message;
use sqlx::PgPool;
use std::{
    collections::HashSet,
    time::{Duration, Instant},
};
use testkit::{broker::OwnBroker, firewall::Blackhole, postgres::PrivatePostgres, process, TestEnv};
use uuid::Uuid;

const WORKERS: &str = env!("CARGO_BIN_EXE_settle-workers");

async fn write_events(pool: &PgPool, from: i64, to: i64) {
    sqlx::query(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id) \
         SELECT gen_random_uuid(), 'points', (g % 100)::text, 'PointsEarned', \
                jsonb_build_object('userId', g % 100, 'amount', 1, 'seq', g), 'trace-' || g \
         FROM generate_series($1::bigint, $2::bigint) g ORDER BY g",
    )
    .bind(from)
    .bind(to)
    .execute(pool)
    .await
    .expect("writing outbox events");
}

/// Unsent rows; None while the database does not answer.
async fn unsent(pool: &PgPool) -> Option<i64> {
    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL").fetch_one(pool).await.ok()
}

/// Every event id of `points.events`, read from the start until `expected` distinct ones were seen.
async fn delivered(kafka: &Kafka, expected: usize, within: Duration) -> HashSet<Uuid> {
    let reader = testkit::reader_from_start(kafka, &kafka.topic_name(Topic::PointsEvents)).expect("reader");
    let (mut seen, deadline) = (HashSet::new(), Instant::now() + within);
    while seen.len() < expected && Instant::now() < deadline {
        let Some(message) = reader.next().await else { continue };
        let envelope: Envelope = serde_json::from_slice(message.payload().expect("payload")).expect("envelope");
        seen.insert(envelope.event_id);
    }
    seen
}

async fn committed_ids(pool: &PgPool) -> HashSet<Uuid> {
    let ids: Vec<Uuid> = sqlx::query_scalar("SELECT event_id FROM outbox_events").fetch_all(pool).await.expect("ids");
    ids.into_iter().collect()
}

fn relay(env: &TestEnv) -> (process::Running, u16) {
    let port = testkit::broker::free_port();
    let mut command = process::command_for(WORKERS.as_ref(), env);
    command
        .args(["--only", "outbox-relay", "--batch-size", "200"])
        .env("WORKERS_OPS_ADDR", format!("127.0.0.1:{port}"))
        .stdout(std::process::Stdio::null());
    (process::Running::spawn(&mut command).expect("the relay"), port)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_relay_backlog_loses_nothing_and_the_relay_recovers_by_itself() {
    const EVENTS: i64 = 30_000;
    let server = PrivatePostgres::start().expect("a private PostgreSQL");
    let env = TestEnv::on_postgres(server.admin_url()).await;
    Kafka::new(env.kafka.clone()).ensure_topics(&Topic::ALL).await.expect("topics");
    write_events(&env.pool, 1, EVENTS).await;
    let (mut relay, port) = relay(&env);
    let started = process::eventually(Duration::from_secs(60), || async {
        unsent(&env.pool).await.is_some_and(|left| left < EVENTS - 2_000)
    });
    assert!(started.await, "the relay made progress");

    server.restart_immediately().expect("pg_ctl restart -m immediate");
    let restarted = Instant::now();
    assert!(unsent(&env.pool).await.is_none_or(|left| left > 0), "the restart came before the backlog was done");
    write_events(&env.pool, EVENTS + 1, EVENTS + 1_000).await;
    let drained = process::eventually(Duration::from_secs(120), || async { unsent(&env.pool).await == Some(0) });
    assert!(drained.await, "the relay drained the backlog after the restart");
    eprintln!("relay after a PostgreSQL restart: backlog drained {:?} after it", restarted.elapsed());
    assert!(matches!(relay.0.try_wait(), Ok(None)), "the relay process survived the restart");
    assert_eq!(process::http_status(port, "/health/ready"), Some(200), "and reports ready again");

    let committed = committed_ids(&env.pool).await;
    let seen = delivered(&Kafka::new(env.kafka.clone()), committed.len(), Duration::from_secs(90)).await;
    assert_eq!(committed.len(), (EVENTS + 1_000) as usize);
    assert!(committed.is_subset(&seen), "{} committed events never delivered", committed.difference(&seen).count());
    relay.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_brokers_port_blackholed_for_10_s_delays_the_relay_and_loses_nothing() {
    if !Blackhole::possible() {
        eprintln!(
            "SKIPPED: nftables is not usable here (needs root and the nft command); the blackhole test did not run"
        );
        return;
    }
    let broker = OwnBroker::start().await.expect("a private broker");
    let mut env = TestEnv::new().await;
    env.kafka.brokers = broker.brokers();
    Kafka::new(env.kafka.clone()).ensure_topics(&Topic::ALL).await.expect("topics");
    let (mut relay, _) = relay(&env);
    write_events(&env.pool, 1, 1_000).await;
    assert!(process::eventually(Duration::from_secs(60), || async { unsent(&env.pool).await == Some(0) }).await);

    let port: u16 = broker.brokers().rsplit(':').next().and_then(|p| p.parse().ok()).expect("broker port");
    let blackhole = Blackhole::drop_port(port).expect("the blackhole");
    let cut = Instant::now();
    // The blackhole lasts 10 s whatever happens: that is the fault, not a synchronisation.
    for chunk in 0..5 {
        write_events(&env.pool, 1_001 + chunk * 1_000, 2_000 + chunk * 1_000).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    assert!(unsent(&env.pool).await.is_some_and(|left| left > 0), "nothing gets through the blackhole");
    drop(blackhole);
    let opened = Instant::now();
    let drained = process::eventually(Duration::from_secs(120), || async { unsent(&env.pool).await == Some(0) });
    assert!(drained.await, "the relay resumed after the blackhole");
    eprintln!(
        "broker blackholed for {:?}: the relay drained the backlog {:?} after the path opened",
        opened - cut,
        opened.elapsed()
    );
    assert!(matches!(relay.0.try_wait(), Ok(None)), "the relay process survived");
    let committed = committed_ids(&env.pool).await;
    let seen = delivered(&Kafka::new(env.kafka.clone()), committed.len(), Duration::from_secs(90)).await;
    assert!(committed.is_subset(&seen), "{} committed events never delivered", committed.difference(&seen).count());
    relay.kill();
}

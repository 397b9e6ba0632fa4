//! The outbox relay measured against its ceiling: a bare producer sending the very records the relay
//! would send (same keys, values, headers, producer settings, broker), from memory; then the real relay
//! draining the same rows from PostgreSQL; then commit-to-publish latency under a steady write rate.

use anyhow::{ensure, Context};
use infra::{
    config::BusinessTimeArgs,
    config::{KafkaArgs, PostgresArgs, RedisArgs},
    kafka::{Kafka, Topic},
    redis_client::Redis,
};
use rdkafka::producer::FutureRecord;
use settle_workers::{
    outbox_relay::{cleanup::Retention, encode, OutboxRelay},
    Worker, WorkerContext, WorkerSettings,
};
use sqlx::PgPool;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

#[derive(clap::Args, Debug)]
pub struct RelayArgs {
    /// Events in the backlog the relay drains (and the bare producer sends).
    #[arg(long, default_value_t = 50_000)]
    events: i64,
    /// Relay members to try, one drain each (comma-separated).
    #[arg(long, value_delimiter = ',', default_value = "1,2,4")]
    relays: Vec<u16>,
    /// Rows per relay batch.
    #[arg(long, default_value_t = 1_000)]
    batch_size: usize,
    /// Steady write rate for the latency run, events per second (one transaction each).
    #[arg(long, default_value_t = 1_000)]
    rate: u32,
    /// Length of the latency run, in seconds.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    #[command(flatten)]
    redis: RedisArgs,
}

pub async fn run(postgres: &PostgresArgs, kafka: &KafkaArgs, args: RelayArgs) -> anyhow::Result<()> {
    let pool = infra::db::connect(postgres).await?;
    let kafka = Kafka::new(kafka.clone());
    kafka.ensure_topics(&Topic::ALL).await?;
    let context = WorkerContext {
        pool: pool.clone(),
        redis: Redis::connect(&args.redis).await?,
        kafka: kafka.clone(),
        concurrency: 1,
        settings: WorkerSettings {
            batch_size: args.batch_size,
            batch_wait: Duration::from_millis(20),
            max_attempts: 5,
            outbox_poll: Duration::from_millis(1_000),
            retention: Retention {
                outbox: Duration::from_secs(7 * 24 * 3_600),
                idempotency_keys: Duration::from_secs(24 * 3_600),
                login_history: Duration::from_secs(365 * 24 * 3_600),
            },
            outbox_max_attempts: 10,
            business_time: BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul },
            payments: Default::default(),
            purchase_points_rate_bps: 100,
        },
    };
    ensure!(unsent(&pool).await? == 0, "the outbox of this database has unsent rows; use a fresh database");

    let first = write_backlog(&pool, args.events).await?;
    let bare = bare_producer(&pool, &kafka, first).await?;
    println!("| bare producer, same records, keys, headers and settings | {bare:.0} events/s | |");
    let mut best: f64 = 0.0;
    for relays in &args.relays {
        sqlx::query!("UPDATE outbox_events SET sent_at = NULL WHERE id >= $1", first).execute(&pool).await?;
        sqlx::query!("VACUUM ANALYZE outbox_events").execute(&pool).await?;
        let rate = drain(&context, *relays, args.events).await?;
        best = best.max(rate);
        println!(
            "| relay, {relays} member(s), batches of {} | {rate:.0} events/s | {:.0}% |",
            args.batch_size,
            100.0 * rate / bare
        );
    }
    println!("RESULT bare={bare:.0} best_relay={best:.0}");

    let (sent, p50_us, p99_us) = latency(&context, args.rate, Duration::from_secs(args.seconds)).await?;
    println!("RESULT latency_events={sent} p50_us={p50_us} p99_us={p99_us} rate={}", args.rate);
    Ok(())
}

async fn unsent(pool: &PgPool) -> sqlx::Result<i64> {
    sqlx::query_scalar!(r#"SELECT count(*) AS "unsent!" FROM outbox_events WHERE sent_at IS NULL"#)
        .fetch_one(pool)
        .await
}

/// Point events for 5,000 users, as the ledger writes them; returns the first id.
async fn write_backlog(pool: &PgPool, events: i64) -> anyhow::Result<i64> {
    let first: i64 = sqlx::query_scalar!(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id)
         SELECT gen_random_uuid(), 'points', (g % 5000 + 1)::text, 'PointsEarned',
                jsonb_build_object('pointId', g, 'userId', g % 5000 + 1, 'amount', 100, 'balance', 100 * g, 'version', g),
                md5(g::text)
         FROM generate_series(1, $1::bigint) g ORDER BY g RETURNING id",
        events
    )
    .fetch_all(pool)
    .await?
    .into_iter()
    .min()
    .context("no rows written")?;
    Ok(first)
}

/// Sends the backlog's records from memory and waits for every acknowledgement; events per second.
async fn bare_producer(pool: &PgPool, kafka: &Kafka, first: i64) -> anyhow::Result<f64> {
    let rows = sqlx::query_as!(
        settle_workers::outbox_relay::claim::Claimed,
        "SELECT id, event_id, aggregate_type, aggregate_id, event_type, payload, trace_id, created_at
         FROM outbox_events WHERE id >= $1 ORDER BY id",
        first
    )
    .fetch_all(pool)
    .await?;
    let records = rows
        .iter()
        .map(|row| encode(row).map(|(value, headers)| (row.aggregate_id.clone(), value, headers)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let topic = format!("{}.relay-ceiling", kafka.topic_name(Topic::PointsEvents));
    kafka.ensure_topic_names(std::slice::from_ref(&topic)).await?;
    let producer = kafka.ordered_producer()?;
    let started = Instant::now();
    let mut pending = Vec::with_capacity(records.len());
    for (key, value, headers) in &records {
        let record = FutureRecord::to(&topic).key(key).payload(value).headers(headers.clone());
        pending.push(producer.send_result(record).map_err(|(error, _)| error)?);
    }
    for delivery in pending {
        delivery.await.context("producer dropped")?.map_err(|(error, _)| error)?;
    }
    Ok(records.len() as f64 / started.elapsed().as_secs_f64())
}

/// Runs the real relay worker with `relays` members until the backlog is sent; events per second.
async fn drain(context: &WorkerContext, relays: u16, events: i64) -> anyhow::Result<f64> {
    let shutdown = CancellationToken::new();
    let context = WorkerContext { concurrency: relays, ..context.clone() };
    let started = Instant::now();
    let worker = tokio::spawn(OutboxRelay.run(context.clone(), shutdown.clone()));
    while unsent(&context.pool).await? > 0 {
        ensure!(!worker.is_finished(), "the relay stopped early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    shutdown.cancel();
    worker.await??;
    Ok(events as f64 / elapsed)
}

/// Writes `rate` single-event transactions per second for `length` with one relay running, then reads
/// each event's commit-to-publish time from the table: (events, p50 µs, p99 µs).
async fn latency(context: &WorkerContext, rate: u32, length: Duration) -> anyhow::Result<(i64, i64, i64)> {
    let shutdown = CancellationToken::new();
    let worker = tokio::spawn(OutboxRelay.run(context.clone(), shutdown.clone()));
    let start: i64 = sqlx::query_scalar!(r#"SELECT coalesce(max(id), 0) AS "last!" FROM outbox_events"#)
        .fetch_one(&context.pool)
        .await?;
    const WRITERS: u32 = 4;
    let writers: Vec<_> = (0..WRITERS)
        .map(|writer| tokio::spawn(write_steadily(context.pool.clone(), writer, rate / WRITERS, length)))
        .collect();
    for writer in writers {
        writer.await??;
    }
    while unsent(&context.pool).await? > 0 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    worker.await??;
    let row = sqlx::query!(
        r#"SELECT count(*) AS "events!",
                (EXTRACT(EPOCH FROM percentile_disc(0.5) WITHIN GROUP (ORDER BY sent_at - created_at)) * 1000000)::bigint AS p50,
                (EXTRACT(EPOCH FROM percentile_disc(0.99) WITHIN GROUP (ORDER BY sent_at - created_at)) * 1000000)::bigint AS p99
           FROM outbox_events WHERE id > $1"#,
        start
    )
    .fetch_one(&context.pool)
    .await?;
    Ok((row.events, row.p50.unwrap_or_default(), row.p99.unwrap_or_default()))
}

async fn write_steadily(pool: PgPool, writer: u32, per_second: u32, length: Duration) -> anyhow::Result<()> {
    let mut ticks = tokio::time::interval(Duration::from_secs(1) / per_second.max(1));
    let deadline = Instant::now() + length;
    let mut n: i64 = 0;
    while Instant::now() < deadline {
        ticks.tick().await;
        n += 1;
        let user = (n * 7 + i64::from(writer)) % 1_000 + 1;
        sqlx::query!(
            "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload)
             VALUES (gen_random_uuid(), 'points', $1::bigint::text, 'PointsEarned',
                     jsonb_build_object('userId', $1::bigint, 'amount', 1))",
            user
        )
        .execute(&pool)
        .await?;
    }
    Ok(())
}

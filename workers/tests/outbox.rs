//! The outbox relay and the point-activity consumer against real PostgreSQL and Kafka: delivery through
//! a broker outage, order per aggregate with several relays, exactly-once effects after a crash.

use infra::{
    kafka::{Kafka, Topic},
    outbox::{Envelope, EVENT_ID_HEADER},
};
use rdkafka::message::{Headers, Message};
use settle_workers::outbox_relay::{
    self,
    cleanup::{Deleted, Retention},
    Publisher, RelayLimits,
};
use sqlx::PgPool;
use std::{
    collections::{HashMap, HashSet},
    io::{BufRead, BufReader},
    process::Stdio,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};
use testkit::{broker::OwnBroker, process, TestEnv};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

const WORKERS: &str = env!("CARGO_BIN_EXE_settle-workers");
const LIMITS: RelayLimits = RelayLimits { batch_size: 300, max_attempts: 10 };

/// Appends events `from..=to` in one statement. Event g belongs to aggregate g % aggregates and carries
/// `seq` = g, so within an aggregate a later event has a larger seq (and a larger outbox id).
async fn write_events(pool: &PgPool, aggregates: i64, from: i64, to: i64) {
    sqlx::query(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, trace_id) \
         SELECT gen_random_uuid(), 'points', (g % $1)::text, 'PointsEarned', \
                jsonb_build_object('userId', g % $1, 'amount', 1 + g % 7, 'seq', g), 'trace-' || g \
         FROM generate_series($2::bigint, $3::bigint) g ORDER BY g",
    )
    .bind(aggregates)
    .bind(from)
    .bind(to)
    .execute(pool)
    .await
    .expect("writing outbox events");
}

async fn unsent(pool: &PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM outbox_events WHERE sent_at IS NULL").fetch_one(pool).await.expect("count")
}

async fn all_sent(pool: &PgPool, within: Duration) -> bool {
    testkit::process::eventually(within, || async { unsent(pool).await == 0 }).await
}

/// Reads every partition of `points.events` from the start until every event id in `expected` was seen;
/// returns the envelopes in the order received per partition (an aggregate lives in one partition).
async fn read_all(kafka: &Kafka, expected: usize, within: Duration) -> Vec<Envelope> {
    let reader = testkit::reader_from_start(kafka, &kafka.topic_name(Topic::PointsEvents)).expect("reader");
    let (mut seen, mut envelopes) = (HashSet::new(), Vec::new());
    let deadline = Instant::now() + within;
    while seen.len() < expected && Instant::now() < deadline {
        let Some(message) = reader.next().await else { continue };
        let envelope: Envelope = serde_json::from_slice(message.payload().expect("payload")).expect("envelope");
        assert_eq!(message.key(), Some(envelope.aggregate_id.as_bytes()), "records are keyed by aggregate id");
        let header = message.headers().and_then(|h| h.iter().find(|h| h.key == EVENT_ID_HEADER)).and_then(|h| h.value);
        assert_eq!(header, Some(envelope.event_id.to_string().as_bytes()), "event id header");
        seen.insert(envelope.event_id);
        envelopes.push(envelope);
    }
    assert!(
        seen.len() >= expected,
        "read {} of {expected}; log end per partition: {:?}",
        seen.len(),
        reader.log_ends()
    );
    envelopes
}

/// Per aggregate, the first delivery of each event must come in seq order (duplicates may follow).
fn assert_order_per_aggregate(envelopes: &[Envelope]) {
    let mut last: HashMap<&str, i64> = HashMap::new();
    let mut first_seen = HashSet::new();
    for envelope in envelopes.iter().filter(|e| first_seen.insert(e.event_id)) {
        let seq = envelope.payload["seq"].as_i64().expect("seq");
        let previous = last.insert(envelope.aggregate_id.as_str(), seq);
        assert!(
            previous.is_none_or(|p| p < seq),
            "aggregate {} got seq {seq} after {previous:?}",
            envelope.aggregate_id
        );
    }
}

#[tokio::test]
async fn several_relays_at_once_deliver_every_event_once_in_order_per_aggregate() {
    let env = TestEnv::new().await;
    let kafka = Kafka::new(env.kafka.clone());
    kafka.ensure_topics(&Topic::ALL).await.expect("topics");
    write_events(&env.pool, 40, 1, 6_000).await;

    let relays: Vec<_> = (0..4)
        .map(|_| {
            let (pool, publisher) = (env.pool.clone(), Publisher::new(&kafka).expect("publisher"));
            tokio::spawn(async move {
                let mut sent = 0;
                while unsent(&pool).await > 0 {
                    let never = CancellationToken::new();
                    sent += outbox_relay::relay_batch(&pool, &publisher, LIMITS, &never).await.expect("relay").sent;
                }
                sent
            })
        })
        .collect();
    let mut per_relay = Vec::new();
    for relay in relays {
        per_relay.push(relay.await.expect("relay task"));
    }
    assert_eq!(per_relay.iter().sum::<usize>(), 6_000, "each row is marked sent exactly once");
    assert!(per_relay.iter().filter(|&&sent| sent > 0).count() >= 2, "the relays shared the work: {per_relay:?}");

    let envelopes = read_all(&kafka, 6_000, Duration::from_secs(60)).await;
    let distinct: HashSet<_> = envelopes.iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len(), 6_000);
    assert_eq!(envelopes.len(), 6_000, "no failures, so no event may be published twice");
    assert_order_per_aggregate(&envelopes);
}

#[tokio::test]
async fn events_written_while_the_broker_is_down_for_30_s_are_all_delivered_in_order() {
    let mut broker = OwnBroker::start().await.expect("private broker");
    let mut env = TestEnv::new().await;
    env.kafka.brokers = broker.brokers();
    let (_relay, _port) = process::start_ready(WORKERS, &env, "WORKERS_OPS_ADDR").await.expect("relay ready");

    broker.stop();
    let outage = Instant::now();
    // The outage is the scenario, not a synchronisation: writes keep arriving for its whole 30 s.
    for chunk in 0..10 {
        write_events(&env.pool, 50, chunk * 1_000 + 1, (chunk + 1) * 1_000).await;
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert!(unsent(&env.pool).await > 0, "nothing can be delivered while the broker is down");
    assert!(outage.elapsed() >= Duration::from_secs(30));
    broker.restart().await.expect("broker back");

    assert!(all_sent(&env.pool, Duration::from_secs(120)).await, "every event is marked sent after the outage");
    let kafka = Kafka::new(env.kafka.clone());
    let envelopes = read_all(&kafka, 10_000, Duration::from_secs(60)).await;
    let distinct: HashSet<_> = envelopes.iter().map(|e| e.event_id).collect();
    assert_eq!(distinct.len(), 10_000, "no event lost");
    assert_order_per_aggregate(&envelopes);
}

/// Lines a child writes to stdout, collected by a thread.
fn capture_stdout(child: &mut std::process::Child) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let stdout = child.stdout.take().expect("piped stdout");
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            sink.lock().expect("lines").push(line);
        }
    });
    lines
}

fn tail(lines: &Mutex<Vec<String>>, count: usize) -> String {
    let lines = lines.lock().expect("lines");
    lines[lines.len().saturating_sub(count)..].join("\n")
}

#[tokio::test]
async fn a_relay_and_a_consumer_killed_mid_batch_apply_every_event_exactly_once() {
    let env = TestEnv::new().await;
    const EVENTS: i64 = 20_000;
    write_events(&env.pool, 200, 1, EVENTS).await;
    // Only the consumer's lines are read; the relay's would fill an unread pipe and stall it.
    let worker = |name: &str| {
        let mut command = process::command_for(WORKERS.as_ref(), &env);
        command
            .args(["--only", name, "--batch-size", "250"])
            .env("WORKERS_OPS_ADDR", format!("127.0.0.1:{}", testkit::broker::free_port()))
            .stdout(if name == "point-activity" { Stdio::piped() } else { Stdio::null() });
        command
    };
    let processed = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM processed_events WHERE consumer = 'point-activity'")
            .fetch_one(&env.pool)
            .await
            .expect("processed")
    };

    // The consumer first, so it is a settled group member when the events arrive.
    let mut consumer = process::Running::spawn(&mut worker("point-activity")).expect("consumer");
    let consumer_logs = capture_stdout(&mut consumer.0);
    let assigned = process::wait_until(Duration::from_secs(60), || {
        consumer_logs.lock().expect("lines").iter().any(|l| l.contains("partitions assigned") && !l.contains("=0"))
    })
    .await;
    assert!(assigned, "the consumer joined its group:\n{}", tail(&consumer_logs, 20));

    let mut relay = process::Running::spawn(&mut worker("outbox-relay")).expect("relay");
    let relayed_some =
        testkit::process::eventually(Duration::from_secs(60), || async { unsent(&env.pool).await <= EVENTS - 3_000 })
            .await;
    assert!(relayed_some, "the relay made progress");
    relay.kill();
    assert!(unsent(&env.pool).await > 0, "the relay was killed before the backlog was done");
    assert!(testkit::process::eventually(Duration::from_secs(60), || async { processed().await >= 1_000 }).await);
    consumer.kill();
    assert!(processed().await < EVENTS, "the consumer was killed before it was done");

    // Not a synchronisation: the restart comes after the dead members' sessions expired, as a supervisor's
    // restart delay would. tansu 0.6.0 can wedge a group whose new member joins while a killed member's
    // session is still live (the newcomer gets no partitions and no later rebalance); Kafka does not.
    tokio::time::sleep(infra::kafka::CONSUMER_SESSION_TIMEOUT + Duration::from_secs(1)).await;
    let _relay = process::Running::spawn(&mut worker("outbox-relay")).expect("relay again");
    let mut consumer = process::Running::spawn(&mut worker("point-activity")).expect("consumer again");
    let logs = capture_stdout(&mut consumer.0);
    assert!(all_sent(&env.pool, Duration::from_secs(120)).await);
    let applied =
        testkit::process::eventually(Duration::from_secs(120), || async { processed().await >= EVENTS }).await;
    assert!(applied, "the projection caught up; last log lines:\n{}", tail(&logs, 40));

    // Exactly once: per user, the projection equals the events' own totals, and each id is recorded once.
    let mismatches: i64 = sqlx::query_scalar(
        "WITH truth AS (SELECT (payload->>'userId')::bigint AS user_id, sum((payload->>'amount')::bigint) AS net, \
                               count(*) AS events FROM outbox_events GROUP BY 1), \
              projected AS (SELECT user_id, sum(net_change) AS net, sum(events) AS events \
                            FROM point_activity_daily GROUP BY 1) \
         SELECT count(*) FROM truth FULL JOIN projected USING (user_id) \
         WHERE truth.net IS DISTINCT FROM projected.net OR truth.events IS DISTINCT FROM projected.events",
    )
    .fetch_one(&env.pool)
    .await
    .expect("comparison");
    assert_eq!(mismatches, 0, "users whose projection differs from their events");
    assert_eq!(processed().await, EVENTS);

    // The consumer logs the trace id that travelled in the Kafka headers.
    let (event_id, trace_id): (Uuid, String) =
        sqlx::query_as("SELECT event_id, trace_id FROM outbox_events ORDER BY id DESC LIMIT 1")
            .fetch_one(&env.pool)
            .await
            .expect("last event");
    let logged = process::wait_until(Duration::from_secs(30), || {
        let lines = logs.lock().expect("lines");
        lines.iter().any(|line| line.contains(&event_id.to_string()) && line.contains(&trace_id))
    })
    .await;
    assert!(logged, "no log line names event {event_id} with trace id {trace_id}");
}

#[tokio::test]
async fn cleanup_deletes_only_rows_past_their_retention_and_never_unsent_outbox_rows_or_live_tokens() {
    let env = TestEnv::new().await;
    write_events(&env.pool, 3, 1, 30).await;
    sqlx::query("UPDATE outbox_events SET sent_at = now() - interval '2 hours' WHERE id % 3 = 0")
        .execute(&env.pool)
        .await
        .expect("old sent rows");
    sqlx::query("UPDATE outbox_events SET sent_at = now() WHERE id % 3 = 1").execute(&env.pool).await.expect("recent");
    sqlx::query("UPDATE outbox_events SET created_at = now() - interval '30 days' WHERE id % 3 = 2")
        .execute(&env.pool)
        .await
        .expect("old unsent rows");
    sqlx::query(
        "INSERT INTO processed_events (consumer, event_id, processed_at) \
         VALUES ('c', gen_random_uuid(), now() - interval '2 hours'), ('c', gen_random_uuid(), now())",
    )
    .execute(&env.pool)
    .await
    .expect("dedupe rows");
    sqlx::query(
        "INSERT INTO idempotency_keys (user_id, idempotency_key, request_hash, response_status, created_at) \
         VALUES (1, 'day-old', 'h', 201, now() - interval '25 hours'), (1, 'fresh', 'h', 201, now() - interval '23 hours')",
    )
    .execute(&env.pool)
    .await
    .expect("idempotency keys");

    let user: i64 =
        sqlx::query_scalar("INSERT INTO users (email, password_hash, name) VALUES ('r@x.io', 'x', 'R') RETURNING id")
            .fetch_one(&env.pool)
            .await
            .expect("a user");
    sqlx::query(
        "WITH f AS (INSERT INTO refresh_token_families (id, user_id, created_at) \
                    VALUES (gen_random_uuid(), $1, now() - interval '30 days') RETURNING id) \
         INSERT INTO refresh_tokens (token_hash, family_id, expires_at) \
         SELECT 'expired', id, now() - interval '1 day' FROM f UNION ALL SELECT 'live', id, now() + interval '1 day' FROM f",
    )
    .bind(user)
    .execute(&env.pool)
    .await
    .expect("refresh tokens");
    sqlx::query(
        "INSERT INTO login_history (user_id, succeeded, reason, logged_in_at) \
         VALUES ($1, true, 'OK', now() - interval '2 days'), ($1, true, 'OK', now())",
    )
    .bind(user)
    .execute(&env.pool)
    .await
    .expect("login history");

    let retention = Retention {
        outbox: Duration::from_secs(3_600),
        idempotency_keys: Duration::from_secs(24 * 3_600),
        login_history: Duration::from_secs(24 * 3_600),
    };
    let deleted = outbox_relay::cleanup::delete_expired(&env.pool, retention).await.expect("cleanup");
    assert_eq!(deleted, Deleted { outbox: 10, processed: 1, idempotency_keys: 1, refresh_tokens: 1, login_history: 1 });
    let tokens: Vec<String> =
        sqlx::query_scalar("SELECT token_hash FROM refresh_tokens").fetch_all(&env.pool).await.expect("tokens");
    assert_eq!(tokens, ["live"], "only the expired refresh token goes (its family stays with the live one)");
    let keys: Vec<String> =
        sqlx::query_scalar("SELECT idempotency_key FROM idempotency_keys").fetch_all(&env.pool).await.expect("keys");
    assert_eq!(keys, ["fresh"], "only the key past its retention goes");
    let left: Vec<(Option<bool>,)> =
        sqlx::query_as("SELECT bool_and(sent_at IS NULL OR sent_at > now() - interval '1 hour') FROM outbox_events")
            .fetch_all(&env.pool)
            .await
            .expect("left");
    assert_eq!(left, vec![(Some(true),)]);
    assert_eq!(unsent(&env.pool).await, 10, "unsent rows are never deleted, however old");
}

#[tokio::test]
async fn a_row_that_keeps_failing_is_parked_holding_back_only_its_own_aggregate_until_re_driven() {
    let env = TestEnv::new().await;
    let kafka = Kafka::new(env.kafka.clone());
    kafka.ensure_topics(&Topic::ALL).await.expect("topics");
    // Larger than the producer's message.max.bytes: refused on every attempt, as a poison event would be.
    let poison: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload) \
         VALUES (gen_random_uuid(), 'points', 'stuck', 'PointsEarned', jsonb_build_object('blob', repeat('x', 2000000))) \
         RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .expect("poison row");
    let behind: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload) \
         VALUES (gen_random_uuid(), 'points', 'stuck', 'PointsEarned', '{\"userId\": 1, \"amount\": 1}') RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .expect("a later row of the same aggregate");
    write_events(&env.pool, 5, 1, 50).await;

    let publisher = Publisher::new(&kafka).expect("publisher");
    let never = CancellationToken::new();
    let limits = RelayLimits { batch_size: 100, max_attempts: 3 };
    let mut parked = 0;
    for _ in 0..limits.max_attempts {
        parked += outbox_relay::relay_batch(&env.pool, &publisher, limits, &never).await.expect("relay").parked;
    }
    assert_eq!(parked, 1, "the poison row is parked at its last attempt");
    let state = |id: i64| {
        let pool = env.pool.clone();
        async move {
            sqlx::query_as::<_, (bool, bool, i32)>(
                "SELECT sent_at IS NOT NULL, parked_at IS NOT NULL, attempts FROM outbox_events WHERE id = $1",
            )
            .bind(id)
            .fetch_one(&pool)
            .await
            .expect("row")
        }
    };
    assert_eq!(state(poison).await, (false, true, 3));
    assert_eq!(state(behind).await, (false, false, 0), "the later row of its aggregate waits, untried");
    assert_eq!(unsent(&env.pool).await, 2, "every other aggregate's rows went out");
    let idle = outbox_relay::relay_batch(&env.pool, &publisher, limits, &never).await.expect("relay");
    assert_eq!(idle.claimed, 0, "parked rows and the rows behind them are not claimed again");

    let listed = infra::outbox::parked::list(&env.pool, 10).await.expect("list");
    assert_eq!(listed.iter().map(|row| (row.id, row.waiting)).collect::<Vec<_>>(), [(poison, 1)]);
    assert!(listed[0].last_error.as_deref().is_some_and(|error| !error.is_empty()), "{listed:?}");

    // The operator fixes the cause and re-drives the row: it goes out, then the one behind it.
    sqlx::query("UPDATE outbox_events SET payload = '{\"userId\": 1, \"amount\": 2}' WHERE id = $1")
        .bind(poison)
        .execute(&env.pool)
        .await
        .expect("fixing the payload");
    assert!(infra::outbox::parked::retry(&env.pool, poison).await.expect("retry"));
    assert!(!infra::outbox::parked::retry(&env.pool, poison).await.expect("retry"), "only a parked row is re-driven");
    let report = outbox_relay::relay_batch(&env.pool, &publisher, limits, &never).await.expect("relay");
    assert_eq!((report.sent, unsent(&env.pool).await), (2, 0));
    let stuck: Vec<Uuid> =
        sqlx::query_scalar("SELECT event_id FROM outbox_events WHERE aggregate_id = 'stuck' ORDER BY id")
            .fetch_all(&env.pool)
            .await
            .expect("event ids");
    let delivered: Vec<Uuid> = read_all(&kafka, 52, Duration::from_secs(60))
        .await
        .into_iter()
        .filter(|envelope| envelope.aggregate_id == "stuck")
        .map(|envelope| envelope.event_id)
        .collect();
    assert_eq!(delivered, stuck, "the re-driven row went out first, then the one that waited behind it");
}

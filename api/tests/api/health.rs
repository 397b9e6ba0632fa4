use crate::helpers::{spawn_app, spawn_app_with};
use settle_api::config::HttpLimits;
use std::time::{Duration, Instant};
use testkit::broker::OwnBroker;

#[tokio::test]
async fn liveness_answers_without_touching_dependencies() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health/live")).send().await.expect("request");
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readiness_lists_postgres_redis_and_kafka_as_up() {
    let app = spawn_app().await;
    let response = app.client.get(app.url("/health/ready")).send().await.expect("request");
    assert_eq!(response.status(), 200);
    let body: serde_json::Value = response.json().await.expect("json");
    for dependency in ["postgres", "redis", "kafka"] {
        assert_eq!(body["checks"][dependency]["status"], "up", "{dependency} in {body}");
    }
    assert_eq!(body["failed"], serde_json::json!([]));
}

#[tokio::test]
async fn readiness_names_kafka_within_five_seconds_when_the_broker_stops_and_recovers_when_it_returns() {
    let mut broker = OwnBroker::start().await.expect("starting a private broker");
    let brokers = broker.brokers();
    let app = spawn_app_with(HttpLimits::default(), |config| config.kafka.brokers = brokers).await;
    let ready = |app: &crate::helpers::TestApp| app.client.get(app.url("/health/ready")).send();

    assert_eq!(ready(&app).await.expect("request").status(), 200, "ready while the broker runs");

    broker.stop();
    let asked = Instant::now();
    let response = ready(&app).await.expect("request");
    assert!(asked.elapsed() < Duration::from_secs(5), "answered in {:?}", asked.elapsed());
    assert_eq!(response.status(), 503);
    let body: serde_json::Value = response.json().await.expect("json");
    assert_eq!(body["failed"], serde_json::json!(["kafka"]), "{body}");
    assert_eq!(body["checks"]["postgres"]["status"], "up");

    broker.restart().await.expect("restarting the broker");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if ready(&app).await.expect("request").status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "readiness did not recover within 30 s of the broker's return");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn metrics_expose_the_request_latency_histogram() {
    let app = spawn_app().await;
    app.client.get(app.url("/health/live")).send().await.expect("request");
    let text = app.client.get(app.url("/metrics")).send().await.expect("request").text().await.expect("text");
    assert!(text.contains("http_server_request_duration_seconds_bucket"), "{text}");
    assert!(text.contains("route=\"/health/live\""), "{text}");
}

#[tokio::test]
async fn an_incoming_trace_id_is_echoed_and_a_missing_one_is_minted() {
    let app = spawn_app().await;
    let echoed = app.client.get(app.url("/health/live")).header("x-trace-id", "abc-123").send().await.expect("request");
    assert_eq!(echoed.headers()["x-trace-id"], "abc-123");
    let minted = app.client.get(app.url("/health/live")).send().await.expect("request");
    assert_eq!(minted.headers()["x-trace-id"].len(), 32);
}

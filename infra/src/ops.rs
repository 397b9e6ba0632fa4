//! Liveness, readiness and metrics endpoints shared by every binary. Readiness asks each dependency for
//! a real round trip under a deadline and names the ones that failed.

use crate::{kafka::KafkaProbe, redis_client::Redis};
use axum::{extract::State, http::StatusCode, response::IntoResponse, routing::get, Json, Router};
use futures::future::BoxFuture;
use metrics_exporter_prometheus::PrometheusHandle;
use serde::Serialize;
use sqlx::PgPool;
use std::{collections::BTreeMap, net::SocketAddr, sync::Arc, time::Duration};
use tokio_util::sync::CancellationToken;

/// Longest a single dependency check may take; the whole report is bounded by it since checks run at once.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(2);

/// A check of a process's own state: an error makes it not ready, a detail is reported while it stays up
/// (something for an operator that does not stop the process from working).
pub type DetailCheck = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<Option<String>>> + Send + Sync>;

#[derive(Clone)]
enum Dependency {
    Postgres(PgPool),
    Redis(Redis),
    Kafka(KafkaProbe),
    Detail(DetailCheck),
}

/// The dependencies a process needs before it can do useful work.
#[derive(Clone, Default)]
pub struct Readiness {
    dependencies: Vec<(&'static str, Dependency)>,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub status: &'static str,
    pub latency_ms: u128,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct ReadinessReport {
    pub status: &'static str,
    pub checks: BTreeMap<&'static str, CheckReport>,
    pub failed: Vec<&'static str>,
}

impl Readiness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_postgres(mut self, pool: PgPool) -> Self {
        self.dependencies.push(("postgres", Dependency::Postgres(pool)));
        self
    }

    pub fn with_redis(mut self, redis: Redis) -> Self {
        self.dependencies.push(("redis", Dependency::Redis(redis)));
        self
    }

    pub fn with_kafka(mut self, probe: KafkaProbe) -> Self {
        self.dependencies.push(("kafka", Dependency::Kafka(probe)));
        self
    }

    pub fn with_detail(mut self, name: &'static str, check: DetailCheck) -> Self {
        self.dependencies.push((name, Dependency::Detail(check)));
        self
    }

    /// Reports each breaker's state ("redis=closed kafka=open"); an open breaker does not make the process
    /// unready (it answers fast instead), the dependency's own check says whether that one is down.
    pub fn with_breakers(self, breakers: Vec<crate::breaker::Breaker>) -> Self {
        let check: DetailCheck = Arc::new(move || {
            let states: Vec<String> = breakers.iter().map(|b| format!("{}={}", b.name(), b.state())).collect();
            Box::pin(async move { Ok(Some(states.join(" "))) })
        });
        self.with_detail("circuit_breakers", check)
    }

    pub async fn report(&self) -> ReadinessReport {
        let checks = self.dependencies.iter().map(|(name, dependency)| async move { (*name, check(dependency).await) });
        let checks: BTreeMap<_, _> = futures::future::join_all(checks).await.into_iter().collect();
        let failed: Vec<_> = checks.iter().filter(|(_, c)| c.error.is_some()).map(|(name, _)| *name).collect();
        ReadinessReport { status: if failed.is_empty() { "up" } else { "down" }, checks, failed }
    }
}

async fn check(dependency: &Dependency) -> CheckReport {
    let started = std::time::Instant::now();
    let outcome = tokio::time::timeout(CHECK_TIMEOUT, round_trip(dependency)).await;
    let (error, detail) = match outcome {
        Ok(Ok(detail)) => (None, detail),
        Ok(Err(error)) => (Some(format!("{error:#}")), None),
        Err(_) => (Some(format!("no answer within {} ms", CHECK_TIMEOUT.as_millis())), None),
    };
    let latency_ms = started.elapsed().as_millis();
    CheckReport { status: if error.is_none() { "up" } else { "down" }, latency_ms, error, detail }
}

async fn round_trip(dependency: &Dependency) -> anyhow::Result<Option<String>> {
    match dependency {
        Dependency::Postgres(pool) => {
            sqlx::query!("SELECT 1 AS one").fetch_one(pool).await.map(|_| None).map_err(Into::into)
        }
        Dependency::Redis(redis) => redis.ping().await.map(|()| None),
        // Leave the probe a little less than the overall deadline so its own error wins the race.
        Dependency::Kafka(probe) => probe.check(CHECK_TIMEOUT - Duration::from_millis(300)).await.map(|()| None),
        Dependency::Detail(check) => check().await,
    }
}

#[derive(Clone)]
struct OpsState {
    readiness: Arc<Readiness>,
    metrics: PrometheusHandle,
}

/// `/health/live`, `/health/ready` and `/metrics`, ready to merge into a binary's router.
pub fn ops_router(readiness: Readiness, metrics: PrometheusHandle) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .route("/metrics", get(render_metrics))
        .with_state(OpsState { readiness: Arc::new(readiness), metrics })
}

async fn live() -> impl IntoResponse {
    Json(serde_json::json!({ "status": "up" }))
}

async fn ready(State(state): State<OpsState>) -> impl IntoResponse {
    let report = state.readiness.report().await;
    if !report.failed.is_empty() {
        tracing::warn!(failed = ?report.failed, "not ready");
    }
    let status = if report.failed.is_empty() { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(report))
}

async fn render_metrics(State(state): State<OpsState>) -> impl IntoResponse {
    ([("content-type", "text/plain; version=0.0.4")], state.metrics.render())
}

/// Binds the ops port (workers, scheduler), so a taken port stops start-up before any work begins.
pub async fn bind_ops(addr: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr).await.map_err(|e| anyhow::anyhow!("binding ops port {addr}: {e}"))
}

/// Serves the ops router on `listener` until `shutdown` is cancelled.
pub async fn serve_ops(
    listener: tokio::net::TcpListener,
    router: Router,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(%addr, "ops endpoints listening (/health/live, /health/ready, /metrics)");
    axum::serve(listener, router).with_graceful_shutdown(shutdown.cancelled_owned()).await?;
    Ok(())
}

//! Middleware every request passes: a trace id (incoming `x-trace-id` or a new one) in the span of every
//! log line and in the response, a latency histogram per route, and a deadline.

use super::ApiError;
use crate::http::ErrorCode;
use axum::{
    extract::{MatchedPath, Request, State},
    http::HeaderValue,
    middleware::Next,
    response::{IntoResponse, Response},
};
use infra::telemetry::{new_trace_id, sanitize_trace_id};
use std::time::{Duration, Instant};
use tracing::Instrument;

pub const TRACE_ID_HEADER: &str = "x-trace-id";

/// The request's trace id, for handlers that pass it on (Kafka headers, outbox rows).
#[derive(Debug, Clone)]
pub struct TraceId(pub String);

pub async fn trace_requests(mut request: Request, next: Next) -> Response {
    let trace_id = request
        .headers()
        .get(TRACE_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .and_then(sanitize_trace_id)
        .unwrap_or_else(new_trace_id);
    request.extensions_mut().insert(TraceId(trace_id.clone()));
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", MatchedPath::as_str).to_owned();
    let method = request.method().to_string();
    let span = tracing::info_span!("request", trace_id = %trace_id, http.request.method = %method, http.route = %route);

    let started = Instant::now();
    let mut response = next.run(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();

    let status = response.status().as_u16();
    let probe = route.starts_with("/health/") || route == "/metrics";
    metrics::histogram!("http_server_request_duration_seconds",
        "method" => method, "route" => route, "status" => status.to_string())
    .record(elapsed.as_secs_f64());
    // The access log: one line per request, named as ECS names them (duration in nanoseconds). Probes and
    // scrapes come every few seconds and say nothing about clients: debug only.
    span.in_scope(|| {
        let duration = elapsed.as_nanos() as u64;
        if probe {
            tracing::debug!(http.response.status_code = status, event.duration = duration, "request finished")
        } else {
            tracing::info!(http.response.status_code = status, event.duration = duration, "request finished")
        }
    });
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_ID_HEADER, value);
    }
    response
}

/// Answers 503 `TIMEOUT` when a handler runs past the deadline; the handler's future is dropped.
pub async fn enforce_deadline(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            ApiError::new(ErrorCode::Timeout, format!("the request took longer than {} ms", deadline.as_millis()))
                .into_response()
        }
    }
}

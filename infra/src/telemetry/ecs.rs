//! JSON log lines in the shape of the Elastic Common Schema, so Filebeat or Logstash ship them to
//! Elasticsearch unchanged: `@timestamp`, `log.level`, `message`, `service.name`, `trace.id`, plus the
//! fields of the event and of the spans it happened in (innermost wins).
//!
//! A few field names of ours collide with ECS objects (`error`, `user`): Elasticsearch would refuse a
//! string where its template maps an object, so they are renamed to their ECS leaf (`error.message`,
//! `user.id`).

use serde_json::{Map, Value};
use std::fmt;
use tracing::{field::Field, Event, Subscriber};
use tracing_subscriber::{
    fmt::{format::Writer, FmtContext, FormatEvent, FormatFields, FormattedFields},
    registry::LookupSpan,
};

const ECS_VERSION: &str = "8.11";

/// Our field names that ECS spells otherwise.
const RENAMED: [(&str, &str); 3] = [("trace_id", "trace.id"), ("error", "error.message"), ("user", "user.id")];

pub struct EcsFormat {
    pub service: &'static str,
}

impl<S, N> FormatEvent<S, N> for EcsFormat
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let mut line = Map::new();
        line.insert("@timestamp".into(), now().into());
        line.insert("log.level".into(), event.metadata().level().as_str().to_ascii_lowercase().into());
        line.insert("log.logger".into(), event.metadata().target().into());
        line.insert("service.name".into(), self.service.into());
        line.insert("ecs.version".into(), ECS_VERSION.into());
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<N>>() else { continue };
                if let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(fields) {
                    line.extend(fields);
                }
            }
        }
        event.record(&mut Fields(&mut line));
        for (ours, ecs) in RENAMED {
            if let Some(value) = line.remove(ours) {
                line.insert(ecs.into(), value);
            }
        }
        // A line outside any traced span (a task spawned without one) belongs to the process's run.
        let traced = line.get("trace.id").and_then(Value::as_str).is_some_and(|id| !id.is_empty());
        if !traced {
            line.insert("trace.id".into(), super::run_trace_id().into());
        }
        writeln!(writer, "{}", Value::Object(line))
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true)
}

/// An event's fields as JSON values: numbers and booleans as such, everything else as its text.
struct Fields<'a>(&'a mut Map<String, Value>);

impl tracing::field::Visit for Fields<'_> {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.insert(field.name().into(), format!("{value:?}").into());
    }
}

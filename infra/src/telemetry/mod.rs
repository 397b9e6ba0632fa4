//! Logging: human-readable text by default, JSON lines in the Elastic Common Schema's shape behind one
//! switch. Trace ids travel as span fields, so every line logged inside a request, record or job carries
//! the id of what caused it (and a process's own lines the id of its run).

mod ecs;

use crate::config::TelemetryArgs;
use anyhow::Context;
use tracing_subscriber::{fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter};

/// Installs the process's log subscriber; `service` is the binary's name (`service.name` in JSON lines).
pub fn init(service: &'static str, args: &TelemetryArgs) -> anyhow::Result<()> {
    let filter = EnvFilter::try_new(&args.filter).with_context(|| format!("parsing log filter {:?}", args.filter))?;
    let registry = tracing_subscriber::registry().with(filter);
    let result = if args.json {
        let ecs = fmt::layer().fmt_fields(fmt::format::JsonFields::new()).event_format(ecs::EcsFormat { service });
        registry.with(ecs).try_init()
    } else {
        // Colours only for a terminal: a log file (scripts/apps writes them) gets plain text.
        let colours = std::io::IsTerminal::is_terminal(&std::io::stdout());
        registry.with(fmt::layer().with_target(false).with_ansi(colours)).try_init()
    };
    result.context("installing the log subscriber")
}

/// The variable through which a parent process (the scheduler) hands its trace id to a run it starts.
pub const TRACE_ID_VAR: &str = "SETTLE_TRACE_ID";

static RUN_TRACE_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// The trace id of this process's run: the one its parent handed down in [`TRACE_ID_VAR`], else fresh.
pub fn run_trace_id() -> &'static str {
    RUN_TRACE_ID.get_or_init(|| {
        std::env::var(TRACE_ID_VAR).ok().and_then(|raw| sanitize_trace_id(&raw)).unwrap_or_else(new_trace_id)
    })
}

/// A fresh trace id: 32 lowercase hex digits, the same shape as a W3C trace-context trace id.
pub fn new_trace_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Accepts an incoming trace id only if it is short and plain, so a header cannot inject into logs.
pub fn sanitize_trace_id(raw: &str) -> Option<String> {
    let plain = !raw.is_empty() && raw.len() <= 64 && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    plain.then(|| raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trace_ids_are_fresh_hex() {
        let (a, b) = (new_trace_id(), new_trace_id());
        assert_ne!(a, b);
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
    }

    #[test]
    fn only_plain_incoming_trace_ids_are_kept() {
        assert_eq!(sanitize_trace_id("abc-123").as_deref(), Some("abc-123"));
        assert_eq!(sanitize_trace_id("evil\nline"), None);
        assert_eq!(sanitize_trace_id(""), None);
        assert_eq!(sanitize_trace_id(&"a".repeat(65)), None);
    }
}

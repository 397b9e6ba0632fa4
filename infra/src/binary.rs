//! The life of every settle binary's `main`: logging first, a root span whose trace id marks every line
//! of the run, the real work, and one place that turns an error into a logged cause and an exit code.

use crate::config::TelemetryArgs;
use std::{
    future::Future,
    process::{ExitCode, Termination},
};
use tracing::Instrument;

pub async fn run<F, T>(name: &'static str, telemetry: &TelemetryArgs, work: F) -> ExitCode
where
    F: Future<Output = anyhow::Result<T>>,
    T: Termination,
{
    if let Err(error) = crate::telemetry::init(telemetry) {
        eprintln!("{name}: {error:#}");
        return ExitCode::FAILURE;
    }
    let root = tracing::info_span!("run", binary = name, trace_id = %crate::telemetry::run_trace_id());
    match work.instrument(root).await {
        Ok(status) => status.report(),
        Err(error) => {
            tracing::error!(error = ?error, "{name} stopped with an error");
            eprintln!("{name}: {error:#}");
            ExitCode::FAILURE
        }
    }
}

use clap::Parser;
use settle_batch::{BatchCli, ExitStatus};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = BatchCli::parse();
    if let Err(error) = infra::telemetry::init(&cli.telemetry) {
        eprintln!("settle-batch: {error:#}");
        return ExitStatus::Failure.into();
    }
    let root = tracing::info_span!("settle-batch", trace_id = %infra::telemetry::new_trace_id());
    match tracing::Instrument::instrument(settle_batch::run(cli), root).await {
        Ok(status) => status.into(),
        Err(error) => {
            tracing::error!(error = ?error, "settle-batch failed");
            eprintln!("settle-batch: {error:#}");
            ExitStatus::Failure.into()
        }
    }
}

use clap::Parser;
use settle_workers::WorkersConfig;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = WorkersConfig::parse();
    if let Err(error) = infra::telemetry::init(&config.telemetry) {
        eprintln!("settle-workers: {error:#}");
        return ExitCode::FAILURE;
    }
    let root = tracing::info_span!("settle-workers", trace_id = %infra::telemetry::new_trace_id());
    let shutdown = infra::shutdown::on_signal();
    match tracing::Instrument::instrument(settle_workers::run(config, shutdown), root).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = ?error, "settle-workers stopped with an error");
            eprintln!("settle-workers: {error:#}");
            ExitCode::FAILURE
        }
    }
}

use clap::Parser;
use settle_scheduler::SchedulerConfig;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = SchedulerConfig::parse();
    if let Err(error) = infra::telemetry::init(&config.telemetry) {
        eprintln!("settle-scheduler: {error:#}");
        return ExitCode::FAILURE;
    }
    let root = tracing::info_span!("settle-scheduler", trace_id = %infra::telemetry::new_trace_id());
    let shutdown = infra::shutdown::on_signal();
    match tracing::Instrument::instrument(settle_scheduler::run(config, shutdown), root).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!(error = ?error, "settle-scheduler stopped with an error");
            eprintln!("settle-scheduler: {error:#}");
            ExitCode::FAILURE
        }
    }
}

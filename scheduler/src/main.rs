use clap::Parser;
use settle_scheduler::SchedulerConfig;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = SchedulerConfig::parse();
    let telemetry = config.telemetry.clone();
    infra::binary::run("settle-scheduler", &telemetry, async {
        settle_scheduler::run(config, infra::shutdown::on_signal()).await
    })
    .await
}

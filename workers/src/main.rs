use clap::Parser;
use settle_workers::WorkersConfig;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let config = WorkersConfig::parse();
    let telemetry = config.telemetry.clone();
    infra::binary::run("settle-workers", &telemetry, async {
        settle_workers::run(config, infra::shutdown::on_signal()).await
    })
    .await
}

use clap::Parser;
use settle_scheduler::SchedulerCli;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = SchedulerCli::parse();
    let telemetry = cli.telemetry.clone();
    infra::binary::run("settle-scheduler", &telemetry, async {
        settle_scheduler::run(cli, infra::shutdown::on_signal()).await
    })
    .await
}

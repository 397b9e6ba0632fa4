use clap::Parser;
use settle_batch::BatchCli;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = BatchCli::parse();
    let telemetry = cli.telemetry.clone();
    infra::binary::run("settle-batch", &telemetry, settle_batch::run(cli)).await
}

use anyhow::Context;
use clap::Parser;
use settle_api::config::ApiConfig;
use std::process::ExitCode;

/// See the workspace manifest: the allocator is most of the difference a V3 rush measures.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let config = ApiConfig::parse();
    let telemetry = config.telemetry.clone();
    infra::binary::run("settle-api", &telemetry, run(config)).await
}

async fn run(config: ApiConfig) -> anyhow::Result<()> {
    let shutdown = infra::shutdown::on_signal();
    let state = settle_api::build_state(&config).await?;
    let router = settle_api::router(state, config.http_limits())?;
    let listener = tokio::net::TcpListener::bind(config.listen_addr)
        .await
        .with_context(|| format!("binding {}", config.listen_addr))?;
    tracing::info!(addr = %config.listen_addr, "settle-api ready");
    settle_api::serve(listener, router, shutdown).await?;
    tracing::info!("settle-api stopped");
    Ok(())
}

//! settle-sandbox: the payment provider's protocol on a local port, for development and tests only.

use clap::Parser;
use std::{net::SocketAddr, path::PathBuf, time::Duration};

#[derive(Parser, Debug)]
#[command(name = "settle-sandbox", version)]
struct Config {
    /// Address the sandbox listens on.
    #[arg(long, env = "SANDBOX_LISTEN_ADDR", default_value = "127.0.0.1:18400")]
    listen_addr: SocketAddr,
    /// The secret key clients must present (HTTP Basic, `<key>:`), as with the provider.
    #[arg(long, env = "PAYMENT_SECRET_KEY", default_value = "test_sk_settle_sandbox", hide_env_values = true)]
    secret_key: String,
    /// The journal the sandbox keeps its payments in (replayed on start).
    #[arg(long, env = "SANDBOX_JOURNAL", default_value = ".stack/sandbox/payments.jsonl")]
    journal: PathBuf,
    /// The merchant id the answers carry.
    #[arg(long, env = "SANDBOX_MERCHANT_ID", default_value = "settle")]
    merchant_id: String,
    /// How long a hanging or dropped answer keeps a client waiting, in milliseconds.
    #[arg(long, env = "SANDBOX_HANG_MS", default_value_t = 60_000)]
    hang_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let config = Config::parse();
    let store = settle_sandbox::Store::open(&config.journal, &config.merchant_id)?;
    let sandbox = settle_sandbox::Sandbox::new(store, &config.secret_key, Duration::from_millis(config.hang_ms));
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, journal = %config.journal.display(), "payment sandbox listening");
    axum::serve(listener, settle_sandbox::router(sandbox))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

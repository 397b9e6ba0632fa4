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
    /// The merchant's deposit callback URL, as registered in the provider's developer centre (also
    /// `PUT /sandbox/webhooks`); kept in the journal.
    #[arg(long, env = "SANDBOX_DEPOSIT_CALLBACK_URL")]
    deposit_callback_url: Option<String>,
    /// The wait before a callback's second send, in milliseconds; each later one waits four times longer
    /// (the provider's: one minute).
    #[arg(long, env = "SANDBOX_WEBHOOK_RETRY_MS", default_value_t = 60_000)]
    webhook_retry_ms: u64,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::from_default_env()).init();
    let config = Config::parse();
    let mut store = settle_sandbox::Store::open(&config.journal, &config.merchant_id)?;
    if config.deposit_callback_url.is_some() {
        store.set_deposit_callback_url(config.deposit_callback_url.clone())?;
    }
    let sandbox = settle_sandbox::Sandbox::new(store, &config.secret_key, Duration::from_millis(config.hang_ms));
    let retry_base = Duration::from_millis(config.webhook_retry_ms.max(1));
    tokio::spawn(settle_sandbox::webhooks::deliver(sandbox.clone(), retry_base));
    let listener = tokio::net::TcpListener::bind(config.listen_addr).await?;
    tracing::info!(addr = %listener.local_addr()?, journal = %config.journal.display(), "payment sandbox listening");
    axum::serve(listener, settle_sandbox::router(sandbox))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}

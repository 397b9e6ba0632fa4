//! A payment sandbox process of the test's own (port, journal and secret key), and its control routes:
//! the buyer's checkout, faults to play, call counts. Killed and its journal removed on drop.

use anyhow::{bail, Context};
use serde_json::{json, Value};
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    time::Duration,
};

/// The sandbox binary the workspace built (`scripts/run-tests` builds it first): `SETTLE_SANDBOX_BIN`, else
/// `settle-sandbox` beside the test binary's `deps/` folder.
pub fn binary() -> PathBuf {
    if let Ok(path) = std::env::var("SETTLE_SANDBOX_BIN") {
        return PathBuf::from(path);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).map(PathBuf::from).unwrap_or_default();
    profile_dir.join("settle-sandbox")
}

pub struct OwnSandbox {
    pub port: u16,
    pub secret_key: String,
    binary: PathBuf,
    dir: PathBuf,
    hang: Duration,
    child: Option<Child>,
    http: reqwest::Client,
}

impl OwnSandbox {
    /// Starts `binary` (the test's `CARGO_BIN_EXE_settle-sandbox`); a hanging or dropped answer keeps a
    /// client waiting `hang`.
    pub async fn start(binary: impl Into<PathBuf>, hang: Duration) -> anyhow::Result<Self> {
        let suffix = crate::unique_suffix();
        let dir = std::env::temp_dir().join(format!("settle-sandbox-{suffix}"));
        std::fs::create_dir_all(&dir)?;
        let binary = binary.into();
        if !binary.exists() {
            bail!("no sandbox at {} (cargo build --bin settle-sandbox)", binary.display());
        }
        let mut sandbox = Self {
            port: crate::broker::free_port(),
            secret_key: format!("test_sk_{suffix}"),
            binary,
            dir,
            hang,
            child: None,
            http: reqwest::Client::new(),
        };
        sandbox.restart().await?;
        Ok(sandbox)
    }

    /// Payment settings that point a client at this sandbox.
    pub fn payment_args(&self, timeout_ms: u64) -> infra::config::PaymentArgs {
        infra::config::PaymentArgs { gateway_url: self.url(), secret_key: self.secret_key.clone(), timeout_ms }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills the process at once, as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts (again) on the same port and journal and waits until it answers.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.kill();
        let child = Command::new(&self.binary)
            .env("SANDBOX_LISTEN_ADDR", format!("127.0.0.1:{}", self.port))
            .env("PAYMENT_SECRET_KEY", &self.secret_key)
            .env("SANDBOX_JOURNAL", self.dir.join("payments.jsonl"))
            .env("SANDBOX_HANG_MS", self.hang.as_millis().to_string())
            // A webhook not answered is sent again after 50 ms, then 200 ms, ... (the provider: minutes).
            .env("SANDBOX_WEBHOOK_RETRY_MS", "50")
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting {}", self.binary.display()))?;
        self.child = Some(child);
        let health = format!("{}/health", self.url());
        let http = self.http.clone();
        let up = crate::process::eventually(Duration::from_secs(20), || {
            let (http, health) = (http.clone(), health.clone());
            async move { http.get(&health).send().await.is_ok_and(|r| r.status().is_success()) }
        })
        .await;
        if !up {
            bail!("the sandbox did not answer on port {} within 20 s", self.port);
        }
        Ok(())
    }

    /// The buyer pays in the provider's window: the payment key the merchant then confirms.
    pub async fn checkout(&self, order_id: &str, amount: i64, method: &str) -> anyhow::Result<String> {
        let body = json!({ "orderId": order_id, "amount": amount, "method": method });
        let answer: Value =
            self.http.post(format!("{}/sandbox/checkout", self.url())).json(&body).send().await?.json().await?;
        answer["paymentKey"].as_str().map(str::to_owned).with_context(|| format!("no payment key in {answer}"))
    }

    /// Registers where the provider POSTs its deposit callbacks (`None`: nowhere), as a merchant does in
    /// the provider's developer centre.
    pub async fn register_deposit_callback(&self, url: Option<&str>) -> anyhow::Result<()> {
        let body = json!({ "depositCallbackUrl": url });
        let status = self.http.put(format!("{}/sandbox/webhooks", self.url())).json(&body).send().await?.status();
        anyhow::ensure!(status.is_success(), "the sandbox refused the webhook URL: {status}");
        Ok(())
    }

    /// The buyer pays into the virtual account of `order_id`: the provider's answer (the payment).
    pub async fn deposit(&self, order_id: &str) -> anyhow::Result<reqwest::Response> {
        Ok(self.http.post(format!("{}/sandbox/deposits/{order_id}", self.url())).send().await?)
    }

    /// Plays `fault` (`DECLINE`, `SERVER_ERROR`, `HANG`, `DROP_ANSWER`; `None` stops) on the confirms of
    /// `payment_key` (or all), `times` times (or until told otherwise).
    pub async fn fault(
        &self,
        payment_key: Option<&str>,
        fault: Option<&str>,
        times: Option<u32>,
    ) -> anyhow::Result<()> {
        let body = json!({ "paymentKey": payment_key, "fault": fault, "times": times });
        let status = self.http.post(format!("{}/sandbox/faults", self.url())).json(&body).send().await?.status();
        anyhow::ensure!(status.is_success(), "the sandbox refused the fault: {status}");
        Ok(())
    }

    /// The provider's look-up of `order_id` (its payment, as the merchant API shows it); None when it
    /// has none. Counted as a look-up call.
    pub async fn payment_of_order(&self, order_id: &str) -> anyhow::Result<Option<Value>> {
        let answer = self
            .http
            .get(format!("{}/v1/payments/orders/{order_id}", self.url()))
            .basic_auth(&self.secret_key, Some(""))
            .send()
            .await?;
        if answer.status() == reqwest::StatusCode::NOT_FOUND {
            return Ok(None);
        }
        Ok(Some(answer.error_for_status()?.json().await?))
    }

    /// Payments the provider approved in the past, each `{orderId, amount, method, approvedAt, canceledAt?}`
    /// (`method` as the provider names it, e.g. "카드"): their payment keys, in order.
    pub async fn backfill(&self, payments: &Value) -> anyhow::Result<Vec<String>> {
        let answer = self.http.post(format!("{}/sandbox/settled-payments", self.url())).json(payments).send().await?;
        Ok(answer.error_for_status()?.json().await?)
    }

    /// Distorts the settlement lines of `payment_key`: `OMIT`, `AMOUNT`, `FEE` or `PAYOUT_DATE`.
    pub async fn settlement_fault(&self, payment_key: &str, fault: &str) -> anyhow::Result<()> {
        let body = json!({ "paymentKey": payment_key, "fault": fault });
        let url = format!("{}/sandbox/settlement-faults", self.url());
        let status = self.http.post(url).json(&body).send().await?.status();
        anyhow::ensure!(status.is_success(), "the sandbox refused the settlement fault: {status}");
        Ok(())
    }

    /// How often each provider route was called: `{"confirm": n, "cancel": n, "lookup": n, ...}`.
    pub async fn calls(&self) -> anyhow::Result<Value> {
        Ok(self.http.get(format!("{}/sandbox/calls", self.url())).send().await?.json().await?)
    }

    /// The calls of one route (0 when never called).
    pub async fn calls_of(&self, route: &str) -> anyhow::Result<u64> {
        Ok(self.calls().await?[route].as_u64().unwrap_or(0))
    }
}

impl Drop for OwnSandbox {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

use crate::{
    dead_letter::DeadLetters,
    retry::{self, Retried},
};
use domain::coupon::{IssueDeadLetter, IssueRequested};
use infra::{
    coupons::{
        issuance::{self, BatchOutcome},
        CouponStock, Settlement,
    },
    kafka::trace_id_from,
};
use rdkafka::message::{Message, OwnedMessage};
use sqlx::PgPool;
use std::collections::HashMap;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub struct BatchHandler {
    pub pool: PgPool,
    pub stock: CouponStock,
    pub dead_letters: DeadLetters,
    pub max_attempts: u32,
}

impl BatchHandler {
    /// Persists every record or sends it to the dead-letter topic. False if shutdown interrupted retries,
    /// in which case nothing of this batch may be acknowledged.
    pub async fn handle(&self, records: &[OwnedMessage], shutdown: &CancellationToken) -> anyhow::Result<bool> {
        let mut parsed = Vec::with_capacity(records.len());
        for record in records {
            match parse(record) {
                Ok(request) => parsed.push((request, record)),
                // A payload that does not parse now never will: no point retrying it.
                Err(reason) => self.dead_letters.send(record, &reason).await?,
            }
        }
        if parsed.is_empty() {
            return Ok(true);
        }
        let requests: Vec<IssueRequested> = parsed.iter().map(|(request, _)| request.clone()).collect();
        match self.persist(&requests, shutdown).await {
            Retried::Done(outcome) => self.after_commit(outcome, &parsed).await.map(|()| true),
            Retried::Interrupted => Ok(false),
            Retried::Failed(error) => self.isolate(parsed, error, shutdown).await,
        }
    }

    /// A batch failed for good: try each record on its own so one poison record cannot block the rest.
    async fn isolate(
        &self,
        parsed: Vec<(IssueRequested, &OwnedMessage)>,
        batch_error: sqlx::Error,
        shutdown: &CancellationToken,
    ) -> anyhow::Result<bool> {
        tracing::warn!(error = %batch_error, records = parsed.len(), "batch failed; retrying record by record");
        for (request, record) in parsed {
            match self.persist(std::slice::from_ref(&request), shutdown).await {
                Retried::Done(outcome) => self.after_commit(outcome, &[(request, record)]).await?,
                Retried::Interrupted => return Ok(false),
                Retried::Failed(error) => {
                    let reason = format!("persisting failed: {error}");
                    self.dead_letter(&[(&request, IssueDeadLetter::Unprocessable, record)], &reason).await?;
                    // Keep the place unless the database says there is no coupon behind it (or cannot say).
                    let keep = issuance::holds_coupon(&self.pool, &request).await.unwrap_or(true);
                    self.settle_redis(&[Settlement::of_request(&request, keep)]).await;
                }
            }
        }
        Ok(true)
    }

    async fn persist(&self, requests: &[IssueRequested], shutdown: &CancellationToken) -> Retried<BatchOutcome> {
        retry::until_done(self.max_attempts, shutdown, || async {
            let started = std::time::Instant::now();
            let outcome = issuance::persist_batch(&self.pool, requests).await?;
            metrics::histogram!("coupon_issue_batch_duration_seconds").record(started.elapsed().as_secs_f64());
            Ok(outcome)
        })
        .await
    }

    async fn after_commit(
        &self,
        outcome: BatchOutcome,
        parsed: &[(IssueRequested, &OwnedMessage)],
    ) -> anyhow::Result<()> {
        let records: HashMap<Uuid, &OwnedMessage> = parsed.iter().map(|(r, m)| (r.request_id, *m)).collect();
        let unknown: Vec<_> = outcome
            .unknown
            .iter()
            .filter_map(|(request, reason)| records.get(&request.request_id).map(|record| (request, *reason, *record)))
            .collect();
        self.dead_letter(&unknown, "unknown user or coupon policy").await?;
        for verdict in &outcome.verdicts {
            let trace_id = records.get(&verdict.request.request_id).and_then(|r| trace_id_from(r.headers()));
            let result = verdict.outcome.map_or_else(|rejection| rejection.code(), |()| "ISSUED");
            tracing::info!(
                trace_id = trace_id.as_deref().unwrap_or(""),
                request_id = %verdict.request.request_id,
                user = %verdict.request.user_id,
                policy = %verdict.request.policy_id,
                result,
                "coupon issue request persisted"
            );
            metrics::counter!("coupon_issue_requests_total", "result" => result).increment(1);
        }
        self.settle_redis(&outcome.settlements()).await;
        Ok(())
    }

    /// Requests that can never be decided: recorded (so their status reads REJECTED with the reason), then
    /// sent to the dead-letter topic. Their reservations are settled by the caller.
    async fn dead_letter(
        &self,
        dead: &[(&IssueRequested, IssueDeadLetter, &OwnedMessage)],
        detail: &str,
    ) -> anyhow::Result<()> {
        let reasons: Vec<_> = dead.iter().map(|(request, reason, _)| (*request, *reason)).collect();
        issuance::record_dead_letters(&self.pool, &reasons).await?;
        for (_, reason, record) in dead {
            self.dead_letters.send(record, &format!("{}: {detail}", reason.code())).await?;
            metrics::counter!("coupon_issue_requests_total", "result" => reason.code()).increment(1);
        }
        Ok(())
    }

    /// Redis is derived state: every request with a final outcome leaves the in-flight set and its pending
    /// marker goes; its place is returned unless its user holds a coupon. A failure here only delays (the
    /// API's drift guard repairs what a lost settlement leaves behind), so it is logged, not retried.
    async fn settle_redis(&self, settlements: &[Settlement]) {
        if let Err(error) = self.stock.settle(settlements).await {
            tracing::warn!(error = ?error, requests = settlements.len(), "settling coupon reservations failed");
        }
    }
}

fn parse(record: &OwnedMessage) -> Result<IssueRequested, String> {
    let payload = record.payload().ok_or_else(|| "empty payload".to_owned())?;
    serde_json::from_slice(payload).map_err(|error| format!("malformed issue request: {error}"))
}

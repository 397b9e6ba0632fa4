use crate::{dead_letter::DeadLetters, retry};
use domain::coupon::{IssueRejection, IssueRequested};
use infra::{
    coupons::{
        issuance::{self, BatchOutcome},
        CouponStock,
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

enum Persisted {
    Done(BatchOutcome),
    Interrupted,
    Failed(sqlx::Error),
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
            Persisted::Done(outcome) => self.after_commit(outcome, &parsed).await.map(|()| true),
            Persisted::Interrupted => Ok(false),
            Persisted::Failed(error) => self.isolate(parsed, error, shutdown).await,
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
                Persisted::Done(outcome) => self.after_commit(outcome, &[(request, record)]).await?,
                Persisted::Interrupted => return Ok(false),
                Persisted::Failed(error) => {
                    self.dead_letters.send(record, &format!("persisting failed: {error}")).await?
                }
            }
        }
        Ok(true)
    }

    async fn persist(&self, requests: &[IssueRequested], shutdown: &CancellationToken) -> Persisted {
        let mut failures = 0;
        let mut attempt = 0;
        loop {
            let started = std::time::Instant::now();
            match issuance::persist_batch(&self.pool, requests).await {
                Ok(outcome) => {
                    metrics::histogram!("coupon_issue_batch_duration_seconds").record(started.elapsed().as_secs_f64());
                    return Persisted::Done(outcome);
                }
                Err(error) if retry::is_transient(&error) => {
                    tracing::warn!(%error, attempt, "transient database error; retrying the batch");
                }
                Err(error) => {
                    failures += 1;
                    if failures >= self.max_attempts {
                        return Persisted::Failed(error);
                    }
                    tracing::warn!(%error, failures, "persisting the batch failed; retrying");
                }
            }
            if !retry::pause(attempt, shutdown).await {
                return Persisted::Interrupted;
            }
            attempt += 1;
        }
    }

    async fn after_commit(
        &self,
        outcome: BatchOutcome,
        parsed: &[(IssueRequested, &OwnedMessage)],
    ) -> anyhow::Result<()> {
        let records: HashMap<Uuid, &OwnedMessage> = parsed.iter().map(|(r, m)| (r.request_id, *m)).collect();
        for request in &outcome.unknown {
            if let Some(record) = records.get(&request.request_id) {
                self.dead_letters.send(record, "unknown user or coupon policy").await?;
            }
        }
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
        self.tidy_redis(&outcome).await;
        Ok(())
    }

    /// Redis is derived state: pending markers of decided requests go, and reservations that did not
    /// become coupons are returned. A failure here only delays, so it is logged, not retried.
    async fn tidy_redis(&self, outcome: &BatchOutcome) {
        let decided: Vec<Uuid> =
            outcome.verdicts.iter().map(|v| v.request.request_id).chain(outcome.duplicates.iter().copied()).collect();
        if let Err(error) = self.stock.forget_pending(&decided).await {
            tracing::warn!(error = ?error, "clearing pending markers failed");
        }
        for verdict in &outcome.verdicts {
            if matches!(verdict.outcome, Err(IssueRejection::SoldOut | IssueRejection::OutsideIssueWindow)) {
                let request = &verdict.request;
                if let Err(error) = self.stock.release(request.policy_id, request.user_id, None).await {
                    tracing::warn!(error = ?error, "returning a reservation failed");
                }
            }
        }
    }
}

fn parse(record: &OwnedMessage) -> Result<IssueRequested, String> {
    let payload = record.payload().ok_or_else(|| "empty payload".to_owned())?;
    serde_json::from_slice(payload).map_err(|error| format!("malformed issue request: {error}"))
}

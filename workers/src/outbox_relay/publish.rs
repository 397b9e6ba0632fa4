//! Sends claimed rows to their topics and collects the broker's delivery report for each.

use super::claim::Claimed;
use anyhow::Context;
use infra::{
    kafka::{with_trace_id, Kafka, Topic},
    outbox::{Aggregate, Envelope, EVENT_ID_HEADER, EVENT_TYPE_HEADER},
};
use rdkafka::{
    message::{Header, OwnedHeaders},
    producer::{DeliveryFuture, FutureProducer, FutureRecord},
};
use std::collections::HashSet;

pub struct Publisher {
    producer: FutureProducer,
    kafka: Kafka,
}

/// What the relay may record for a batch.
#[derive(Debug, Default, PartialEq)]
pub struct Settled {
    pub sent: Vec<i64>,
    pub failed: Vec<(i64, String)>,
}

impl Publisher {
    pub fn new(kafka: &Kafka) -> anyhow::Result<Self> {
        Ok(Self { producer: kafka.ordered_producer()?, kafka: kafka.clone() })
    }

    /// Hands every row to the producer in claim order (the idempotent producer keeps that order within
    /// a partition), then waits for all delivery reports. A row the producer refuses at once (too large,
    /// no topic) is not followed by the later rows of its aggregate in this batch: they are held back,
    /// neither sent nor counted as failed, so no event of an aggregate is ever published before one that
    /// precedes it.
    pub async fn publish(&self, rows: &[Claimed]) -> Vec<Delivery> {
        let mut refused: HashSet<(&str, &str)> = HashSet::new();
        let pending: Vec<_> = rows
            .iter()
            .map(|row| {
                let aggregate = (row.aggregate_type.as_str(), row.aggregate_id.as_str());
                if refused.contains(&aggregate) {
                    return None;
                }
                let sent = self.send(row);
                if sent.is_err() {
                    refused.insert(aggregate);
                }
                Some(sent)
            })
            .collect();
        let mut outcomes = Vec::with_capacity(rows.len());
        for (row, sent) in rows.iter().zip(pending) {
            let outcome = match sent {
                None => Delivery::HeldBack,
                Some(Ok(delivery)) => delivered(delivery).await,
                Some(Err(error)) => Delivery::Failed(error),
            };
            if outcome == Delivery::Sent {
                let age = (chrono::Utc::now() - row.created_at).num_microseconds().unwrap_or(i64::MAX);
                metrics::histogram!("outbox_commit_to_publish_seconds").record(age as f64 / 1e6);
                // The trace id of the request that wrote the row, so its story continues in this log.
                tracing::info!(
                    trace_id = row.trace_id.as_deref().unwrap_or(""),
                    event_id = %row.event_id,
                    event_type = %row.event_type,
                    aggregate_id = %row.aggregate_id,
                    "outbox event published"
                );
            }
            outcomes.push(outcome);
        }
        outcomes
    }

    fn send(&self, row: &Claimed) -> Result<DeliveryFuture, String> {
        let aggregate = Aggregate::parse(&row.aggregate_type)
            .ok_or_else(|| format!("no topic for aggregate type {:?}", row.aggregate_type))?;
        let topic = self.kafka.topic_name(Topic::for_aggregate(aggregate));
        let (value, headers) = encode(row).map_err(|error| format!("{error:#}"))?;
        let record = FutureRecord::to(&topic).key(&row.aggregate_id).payload(&value).headers(headers);
        self.producer.send_result(record).map_err(|(error, _)| error.to_string())
    }
}

/// What became of one claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    Sent,
    Failed(String),
    /// Not handed to the producer: an earlier row of its aggregate was refused in this batch.
    HeldBack,
}

async fn delivered(delivery: DeliveryFuture) -> Delivery {
    match delivery.await {
        Ok(Ok(_)) => Delivery::Sent,
        Ok(Err((error, _))) => Delivery::Failed(error.to_string()),
        Err(_) => Delivery::Failed("the producer was dropped before reporting".to_owned()),
    }
}

/// The record value (the JSON envelope) and headers of a row: what the relay sends, and what the
/// benchmark's bare producer sends for comparison.
pub fn encode(row: &Claimed) -> anyhow::Result<(Vec<u8>, OwnedHeaders)> {
    let envelope = Envelope {
        event_id: row.event_id,
        aggregate_type: row.aggregate_type.clone(),
        aggregate_id: row.aggregate_id.clone(),
        event_type: row.event_type.clone(),
        occurred_at: row.created_at,
        payload: row.payload.clone(),
    };
    let value = serde_json::to_vec(&envelope).context("serialising the event envelope")?;
    let event_id = row.event_id.to_string();
    let mut headers = OwnedHeaders::new()
        .insert(Header { key: EVENT_ID_HEADER, value: Some(&event_id) })
        .insert(Header { key: EVENT_TYPE_HEADER, value: Some(&row.event_type) });
    if let Some(trace_id) = &row.trace_id {
        headers = with_trace_id(headers, trace_id);
    }
    Ok((value, headers))
}

/// A delivered row counts as sent unless an earlier row of the same aggregate in this batch failed: that
/// one will be published again, and marking its successor sent would reorder the aggregate's events
/// (publishing the successor again instead only duplicates it, which consumers absorb).
pub fn settle(rows: &[Claimed], outcomes: Vec<Delivery>) -> Settled {
    let mut blocked: HashSet<(&str, &str)> = HashSet::new();
    let mut settled = Settled::default();
    for (row, outcome) in rows.iter().zip(outcomes) {
        let aggregate = (row.aggregate_type.as_str(), row.aggregate_id.as_str());
        match outcome {
            Delivery::Sent if !blocked.contains(&aggregate) => settled.sent.push(row.id),
            Delivery::Sent | Delivery::HeldBack => {}
            Delivery::Failed(error) => {
                blocked.insert(aggregate);
                settled.failed.push((row.id, error));
            }
        }
    }
    settled
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn row(id: i64, aggregate: &str) -> Claimed {
        Claimed {
            id,
            event_id: Uuid::new_v4(),
            aggregate_type: "points".into(),
            aggregate_id: aggregate.into(),
            event_type: "PointsEarned".into(),
            payload: serde_json::json!({}),
            trace_id: None,
            created_at: chrono::Utc::now(),
        }
    }

    #[test]
    fn a_failure_holds_back_the_later_events_of_its_aggregate_only() {
        let rows = [row(1, "a"), row(2, "b"), row(3, "a"), row(4, "b")];
        let outcomes = vec![Delivery::Failed("timed out".to_owned()), Delivery::Sent, Delivery::Sent, Delivery::Sent];
        let settled = settle(&rows, outcomes);
        assert_eq!(settled.sent, vec![2, 4]);
        assert_eq!(settled.failed, vec![(1, "timed out".to_owned())]);
    }

    #[test]
    fn rows_held_back_behind_a_refused_row_are_neither_sent_nor_failed() {
        let rows = [row(1, "a"), row(2, "a"), row(3, "b")];
        let outcomes = vec![Delivery::Failed("too large".to_owned()), Delivery::HeldBack, Delivery::Sent];
        let settled = settle(&rows, outcomes);
        assert_eq!(settled.sent, vec![3]);
        assert_eq!(settled.failed, vec![(1, "too large".to_owned())], "the held-back row keeps its attempts");
    }

    #[test]
    fn earlier_deliveries_of_an_aggregate_stay_sent_when_a_later_one_fails() {
        let rows = [row(1, "a"), row(2, "a")];
        let settled = settle(&rows, vec![Delivery::Sent, Delivery::Failed("queue full".to_owned())]);
        assert_eq!(settled.sent, vec![1]);
        assert_eq!(settled.failed.len(), 1);
    }
}

//! What the relay publishes for an outbox row, and what consumers read back: the row's identity next to
//! its payload, so a record is self-describing without a schema registry.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The header that carries the event id, so a consumer can deduplicate without parsing the value.
pub const EVENT_ID_HEADER: &str = "event_id";
/// The header that carries the event type, for routing and inspection with generic tools.
pub const EVENT_TYPE_HEADER: &str = "event_type";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope {
    pub event_id: Uuid,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub event_type: String,
    pub occurred_at: DateTime<Utc>,
    pub payload: serde_json::Value,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_envelope_round_trips_through_json_with_camel_case_fields() {
        let envelope = Envelope {
            event_id: Uuid::new_v4(),
            aggregate_type: "points".into(),
            aggregate_id: "7".into(),
            event_type: "PointsEarned".into(),
            occurred_at: Utc::now(),
            payload: serde_json::json!({"amount": 10}),
        };
        let text = serde_json::to_string(&envelope).expect("serialises");
        assert!(text.contains("\"eventId\"") && text.contains("\"occurredAt\""), "{text}");
        assert_eq!(serde_json::from_str::<Envelope>(&text).expect("parses"), envelope);
    }
}

use crate::{PolicyId, UserId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A V3 issue request as it travels through Kafka (keyed by user): accepted by the API after a Redis
/// reservation, persisted (or rejected) by the issuance worker. `request_id` makes redelivery harmless.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IssueRequested {
    pub request_id: Uuid,
    pub policy_id: PolicyId,
    pub user_id: UserId,
    pub requested_at: DateTime<Utc>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_through_json_and_refuses_bad_ids() {
        let request = IssueRequested {
            request_id: Uuid::new_v4(),
            policy_id: PolicyId::parse(3).expect("id"),
            user_id: UserId::parse(4).expect("id"),
            requested_at: Utc::now(),
        };
        let json = serde_json::to_vec(&request).expect("serialize");
        assert_eq!(serde_json::from_slice::<IssueRequested>(&json).expect("parse"), request);
        let zero_user = String::from_utf8(json).expect("utf-8").replace(r#""userId":4"#, r#""userId":0"#);
        assert!(serde_json::from_str::<IssueRequested>(&zero_user).is_err());
    }
}

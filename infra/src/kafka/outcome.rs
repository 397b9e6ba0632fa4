//! What a failed produce says about the record: whether it is certainly not in the topic.

use rdkafka::{error::KafkaError, types::RDKafkaErrorCode};

/// Whether a failed produce certainly left nothing in the topic: refused before it was sent (the local
/// queue full, no such topic or partition) or refused by the broker as unwritable. Anything else, a
/// delivery timeout above all, may have been stored without its acknowledgement reaching us: its outcome
/// is unknown and must be settled, not guessed.
pub fn never_stored(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            QueueFull
                | UnknownPartition
                | UnknownTopic
                | UnknownTopicOrPartition
                | InvalidMessageSize
                | MessageSizeTooLarge
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_queue_is_certain_and_a_timeout_is_not() {
        let produced = |code| KafkaError::MessageProduction(code);
        assert!(never_stored(&produced(RDKafkaErrorCode::QueueFull)));
        assert!(!never_stored(&produced(RDKafkaErrorCode::MessageTimedOut)), "sent, maybe stored, unacknowledged");
        assert!(!never_stored(&produced(RDKafkaErrorCode::RequestTimedOut)));
        assert!(!never_stored(&KafkaError::Canceled), "the producer went away with the record in flight");
    }
}

use infra::{config::BusinessTimeArgs, outbox::Envelope};
use rdkafka::message::{Message, OwnedMessage};
use serde::Deserialize;
use sqlx::PgPool;
use std::collections::{BTreeMap, HashSet};
use uuid::Uuid;

/// The part of a point event the projection needs.
#[derive(Debug, Clone)]
pub struct PointEvent {
    pub event_id: Uuid,
    pub event_type: String,
    pub user_id: i64,
    /// Signed: earns are positive, uses negative, a cancel is the opposite of what it cancels.
    pub amount: i64,
    pub day: chrono::NaiveDate,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PointPayload {
    user_id: i64,
    amount: i64,
}

/// The event of `record`, dated on the business day (`business_time`) it occurred.
pub fn parse(record: &OwnedMessage, business_time: &BusinessTimeArgs) -> Result<PointEvent, String> {
    let bytes = record.payload().ok_or_else(|| "empty payload".to_owned())?;
    let envelope: Envelope = serde_json::from_slice(bytes).map_err(|error| format!("malformed envelope: {error}"))?;
    let payload: PointPayload = serde_json::from_value(envelope.payload)
        .map_err(|error| format!("malformed {} payload: {error}", envelope.event_type))?;
    Ok(PointEvent {
        event_id: envelope.event_id,
        event_type: envelope.event_type,
        user_id: payload.user_id,
        amount: payload.amount,
        day: business_time.day_of(envelope.occurred_at),
    })
}

#[derive(Debug, Default)]
pub struct Applied {
    /// The events of the batch that had not been processed before (the rest were duplicates).
    pub new_events: HashSet<Uuid>,
}

/// Per (day, user): earned, spent, net change, events. A BTreeMap so rows are upserted in key order and
/// two members briefly sharing users after a rebalance cannot deadlock.
type Totals = BTreeMap<(chrono::NaiveDate, i64), (i64, i64, i64, i32)>;

/// Records the batch's event ids for `consumer` and adds only the new ones to the projection, in one
/// transaction: either both happen or neither.
pub async fn apply(pool: &PgPool, consumer: &str, events: &[PointEvent]) -> sqlx::Result<Applied> {
    if events.is_empty() {
        return Ok(Applied::default());
    }
    let ids: Vec<Uuid> = events.iter().map(|event| event.event_id).collect();
    let mut tx = pool.begin().await?;
    let new_events: HashSet<Uuid> = sqlx::query_scalar!(
        "INSERT INTO processed_events (consumer, event_id) SELECT $1, unnest($2::uuid[])
         ON CONFLICT DO NOTHING RETURNING event_id",
        consumer,
        &ids
    )
    .fetch_all(&mut *tx)
    .await?
    .into_iter()
    .collect();
    let totals = totals(events.iter().filter(|event| new_events.contains(&event.event_id)));
    upsert(&mut tx, &totals).await?;
    tx.commit().await?;
    Ok(Applied { new_events })
}

/// A batch may carry the same event twice (redelivery within one fetch): each id counts once.
fn totals<'a>(events: impl Iterator<Item = &'a PointEvent>) -> Totals {
    let mut seen = HashSet::new();
    let mut totals = Totals::new();
    for event in events.filter(|event| seen.insert(event.event_id)) {
        let entry = totals.entry((event.day, event.user_id)).or_default();
        entry.0 += event.amount.max(0);
        entry.1 += (-event.amount).max(0);
        entry.2 += event.amount;
        entry.3 += 1;
    }
    totals
}

async fn upsert(tx: &mut sqlx::Transaction<'_, sqlx::Postgres>, totals: &Totals) -> sqlx::Result<()> {
    if totals.is_empty() {
        return Ok(());
    }
    let (mut days, mut users, mut earned, mut spent, mut net, mut counts) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for ((day, user), (e, s, n, c)) in totals {
        days.push(*day);
        users.push(*user);
        earned.push(*e);
        spent.push(*s);
        net.push(*n);
        counts.push(*c);
    }
    sqlx::query!(
        "INSERT INTO point_activity_daily AS a (business_date, user_id, earned, spent, net_change, events)
         SELECT * FROM unnest($1::date[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::int[])
         ON CONFLICT (business_date, user_id) DO UPDATE SET
           earned = a.earned + excluded.earned, spent = a.spent + excluded.spent,
           net_change = a.net_change + excluded.net_change, events = a.events + excluded.events,
           updated_at = now()",
        &days,
        &users,
        &earned,
        &spent,
        &net,
        &counts,
    )
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user_id: i64, amount: i64) -> PointEvent {
        PointEvent {
            event_id: Uuid::new_v4(),
            event_type: "PointsEarned".into(),
            user_id,
            amount,
            day: chrono::NaiveDate::from_ymd_opt(2026, 11, 25).expect("date"),
        }
    }

    #[test]
    fn an_event_is_dated_on_the_business_day_it_happened_not_the_utc_one() {
        let envelope = serde_json::json!({
            "eventId": Uuid::new_v4(),
            "aggregateType": "points",
            "aggregateId": "7",
            "eventType": "PointsEarned",
            "occurredAt": "2026-11-30T16:30:00Z",
            "payload": { "userId": 7, "amount": 100 },
        });
        let record = OwnedMessage::new(
            Some(serde_json::to_vec(&envelope).expect("json")),
            None,
            "points.events".to_owned(),
            rdkafka::Timestamp::NotAvailable,
            0,
            0,
            None,
        );
        let seoul = BusinessTimeArgs { timezone: chrono_tz::Asia::Seoul };
        let event = parse(&record, &seoul).expect("a point event");
        assert_eq!(event.day.to_string(), "2026-12-01", "01:30 in Seoul: the next business day, not 30 November");
    }

    #[test]
    fn totals_split_earned_and_spent_and_count_a_repeated_event_once() {
        let earn = event(1, 100);
        let events = [earn.clone(), event(1, -30), earn, event(2, 5)];
        let totals = totals(events.iter());
        let day = events[0].day;
        assert_eq!(totals[&(day, 1)], (100, 30, 70, 2));
        assert_eq!(totals[&(day, 2)], (5, 0, 5, 1));
    }
}

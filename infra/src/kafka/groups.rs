//! The workers' consumer groups, each with the one topic it reads, and how far behind each partition of
//! it is: what an operator watches when a consumer falls behind (the console's Workers page).

use super::{Kafka, Topic};
use anyhow::Context;
use rdkafka::{
    consumer::{BaseConsumer, Consumer},
    Offset, TopicPartitionList,
};
use std::time::Duration;

/// Every consumer group the workers run, named here so the workers and the lag reading agree.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroup {
    /// Persists V3 issue requests.
    CouponIssuance,
    /// Keeps users' point activity from the points events.
    PointActivity,
    /// Earns points for confirmed purchases from the orders events.
    PurchasePoints,
}

impl ConsumerGroup {
    pub const ALL: [ConsumerGroup; 3] =
        [ConsumerGroup::CouponIssuance, ConsumerGroup::PointActivity, ConsumerGroup::PurchasePoints];

    /// The group's name without the environment's prefix.
    pub const fn name(self) -> &'static str {
        match self {
            ConsumerGroup::CouponIssuance => "coupon-issuance",
            ConsumerGroup::PointActivity => "point-activity",
            ConsumerGroup::PurchasePoints => "purchase-points",
        }
    }

    /// The topic the group reads.
    pub const fn topic(self) -> Topic {
        match self {
            ConsumerGroup::CouponIssuance => Topic::CouponIssueRequested,
            ConsumerGroup::PointActivity => Topic::PointsEvents,
            ConsumerGroup::PurchasePoints => Topic::OrdersEvents,
        }
    }
}

/// One partition of a group's topic: the group's committed position against the partition's end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionLag {
    pub group: ConsumerGroup,
    pub partition: i32,
    /// The next offset the group will read; None when it has committed nothing on this partition yet.
    pub committed: Option<i64>,
    /// The offset the next record written to the partition gets.
    pub end: i64,
    /// Records written and not yet committed by the group: from its position, or from the partition's
    /// start when it has none (where `auto.offset.reset = earliest` starts it).
    pub lag: i64,
}

/// How long one broker question of a lag reading may take: a page waits for it.
const ASK_TIMEOUT: Duration = Duration::from_secs(2);

/// Reads the consumer groups' positions without joining them: one client per group (the committed offsets
/// are asked of the group's coordinator as that group), made once and kept.
pub struct LagReader {
    clients: Vec<(ConsumerGroup, String, BaseConsumer)>,
}

impl Kafka {
    /// A reader of every group's lag; it connects on its first reading.
    pub fn lag_reader(&self) -> anyhow::Result<LagReader> {
        let clients = ConsumerGroup::ALL
            .into_iter()
            .map(|group| {
                let client: BaseConsumer = self
                    .base_config()
                    .set("group.id", self.group_name(group.name()))
                    .set("enable.auto.commit", "false")
                    .create()
                    .context("creating a lag-reading client")?;
                Ok((group, self.topic_name(group.topic()), client))
            })
            .collect::<anyhow::Result<_>>()?;
        Ok(LagReader { clients })
    }
}

impl LagReader {
    /// Every partition of every group, in group then partition order. Blocking: it asks the broker, so
    /// call it off the async threads (`spawn_blocking`). A topic not created yet has no partitions.
    pub fn read(&self) -> anyhow::Result<Vec<PartitionLag>> {
        let mut lags = Vec::new();
        for (group, topic, client) in &self.clients {
            let metadata = client.fetch_metadata(Some(topic), ASK_TIMEOUT).context("reading the topic's partitions")?;
            let partitions: Vec<i32> = metadata
                .topics()
                .iter()
                .filter(|t| t.error().is_none())
                .flat_map(|t| t.partitions().iter().map(|p| p.id()))
                .collect();
            if partitions.is_empty() {
                continue;
            }
            let mut asked = TopicPartitionList::new();
            for partition in &partitions {
                asked.add_partition(topic, *partition);
            }
            let committed = client.committed_offsets(asked, ASK_TIMEOUT).context("reading the group's offsets")?;
            for partition in partitions {
                let (start, end) =
                    client.fetch_watermarks(topic, partition, ASK_TIMEOUT).context("reading the partition's end")?;
                let committed = match committed.find_partition(topic, partition).map(|p| p.offset()) {
                    Some(Offset::Offset(offset)) => Some(offset),
                    _ => None,
                };
                let lag = (end - committed.unwrap_or(start)).max(0);
                lags.push(PartitionLag { group: *group, partition, committed, end, lag });
            }
        }
        Ok(lags)
    }
}

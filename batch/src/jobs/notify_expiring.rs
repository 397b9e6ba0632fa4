//! `settle-batch notify-expiring-points --date D`: the advance notices due on business date D, 60, 30
//! and 3 days before the dates on which users' points expire (`PointsExpiringSoon` events, which the
//! messaging side turns into mails and pushes). Per hash partition, sent and checkpointed in one
//! transaction; a notice goes out once per user, date and step (its key), so a rerun or a catch-up
//! repeats nothing.

use super::terms::dated_command;
use crate::{
    job::{self, Context, Counts, Job, PartitionEnd, RunArgs},
    jobs::reconcile::LEDGER_PARTITIONS,
    Exit,
};
use chrono::{DateTime, Days, NaiveDate, Utc};
use infra::{
    config::BusinessTimeArgs,
    points::notices::{self, Window, FIRST_NOTICE_DAYS},
};
use sqlx::PgPool;
use std::sync::atomic::{AtomicI64, Ordering};

#[derive(clap::Args, Debug, Clone)]
pub struct NotifyExpiringArgs {
    /// The business date the notices are sent on, YYYY-MM-DD (the schedule passes today); the run's key.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// One run: the window of expiry dates whose notices are due, and what was sent.
struct NotifyExpiring {
    args: NotifyExpiringArgs,
    window: Window,
    sent: AtomicI64,
    points: AtomicI64,
}

pub async fn run(pool: &PgPool, args: NotifyExpiringArgs) -> anyhow::Result<Exit> {
    let day = |days: u64| args.date.checked_add_days(Days::new(days)).map(|date| args.business.start_of(date));
    let (Some(from), Some(until)) = (day(1), day(u64::from(FIRST_NOTICE_DAYS) + 1)) else {
        eprintln!("settle-batch: {} is too late a date", args.date);
        return Ok(Exit::BadArguments);
    };
    let window = Window { today: args.date, from, until };
    job::run(pool, &NotifyExpiring { args, window, sent: AtomicI64::new(0), points: AtomicI64::new(0) }).await
}

impl Job for NotifyExpiring {
    const NAME: &'static str = "notify-expiring-points";

    fn key(&self) -> String {
        self.args.date.to_string()
    }

    fn parameters(&self) -> serde_json::Value {
        let Window { from, until, .. } = self.window;
        serde_json::json!({ "timezone": self.args.business.timezone.name(), "from": from, "until": until })
    }

    fn command_line(&self) -> Vec<String> {
        let mut line = dated_command(Self::NAME, self.args.date, &self.args.business);
        line.extend(self.args.run.command_line());
        line
    }

    fn run_args(&self) -> &RunArgs {
        &self.args.run
    }

    fn partitions(&self) -> i32 {
        LEDGER_PARTITIONS
    }

    /// One hash partition's due notices, sent and checkpointed in one transaction.
    async fn partition(&self, ctx: &Context<'_>, partition: i32) -> anyhow::Result<PartitionEnd> {
        let trace_id = infra::telemetry::run_trace_id();
        let timezone = self.args.business.timezone.name();
        let mut tx = ctx.pool.begin().await?;
        let notices = notices::send_due(&mut tx, partition, self.window, timezone, Some(trace_id)).await?;
        let sent = notices.len() as i64;
        ctx.checkpoint_in(&mut tx, partition, Counts { rows_read: sent, rows_written: sent, discrepancies: 0 }).await?;
        tx.commit().await?;
        self.sent.fetch_add(sent, Ordering::Relaxed);
        self.points.fetch_add(notices.iter().map(|n| n.amount).sum(), Ordering::Relaxed);
        Ok(PartitionEnd::Committed(Counts { rows_read: sent, rows_written: sent, discrepancies: 0 }))
    }

    fn summary(&self, _totals: Counts, _elapsed: std::time::Duration) -> Vec<(String, String)> {
        let at = |instant: DateTime<Utc>| instant.format("%Y-%m-%d %H:%M:%S UTC").to_string();
        vec![
            ("expiring from".into(), at(self.window.from)),
            ("expiring before".into(), at(self.window.until)),
            ("notices sent".into(), self.sent.load(Ordering::Relaxed).to_string()),
            ("points they announce".into(), self.points.load(Ordering::Relaxed).to_string()),
        ]
    }
}

//! `settle-batch notify-expiring-points --date D`: the advance notices due on business date D, 60, 30
//! and 3 days before the dates on which users' points expire (`PointsExpiringSoon` events, which the
//! messaging side turns into mails and pushes). Per hash partition, each in one transaction, then
//! checkpointed; a notice goes out once per user, date and step (its key), so a partition redone after
//! a crash between the two, a rerun or a catch-up repeats nothing.

use crate::{
    jobs::{self, Counts, Start},
    partitions,
    progress::Progress,
    stop::StopSignal,
    Exit,
};
use chrono::{Days, NaiveDate};
use infra::{
    config::BusinessTimeArgs,
    points::notices::{self, Window, FIRST_NOTICE_DAYS},
};
use sqlx::PgPool;
use std::sync::atomic::{AtomicI64, Ordering};

const JOB: &str = "notify-expiring-points";

#[derive(clap::Args, Debug, Clone)]
pub struct NotifyExpiringArgs {
    /// The business date the notices are sent on, YYYY-MM-DD (the schedule passes today); the run's key.
    #[arg(long)]
    pub date: NaiveDate,
    #[command(flatten)]
    pub business: BusinessTimeArgs,
    /// Partitions in flight at once.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=16))]
    pub workers: u16,
    /// Run again although this date has completed (sends only notices not sent before).
    #[arg(long)]
    pub force: bool,
}

impl NotifyExpiringArgs {
    /// The options `restart` runs this job with again.
    fn command_line(&self) -> Vec<String> {
        let mut line = vec![JOB.to_owned(), "--date".into(), self.date.to_string()];
        line.extend(["--timezone".into(), self.business.timezone.name().to_owned()]);
        line.extend(["--workers".into(), self.workers.to_string()]);
        line
    }
}

pub async fn run(pool: &PgPool, args: NotifyExpiringArgs) -> anyhow::Result<Exit> {
    let day = |days: u64| args.date.checked_add_days(Days::new(days)).map(|date| args.business.start_of(date));
    let (Some(from), Some(until)) = (day(1), day(u64::from(FIRST_NOTICE_DAYS) + 1)) else {
        eprintln!("settle-batch: {} is too late a date", args.date);
        return Ok(Exit::BadArguments);
    };
    let window = Window { today: args.date, from, until };
    let key = args.date.to_string();
    let parameters = serde_json::json!({ "timezone": args.business.timezone.name(), "from": from, "until": until });
    let execution = match jobs::start(pool, JOB, &key, parameters, &args.command_line(), args.force).await? {
        Start::AlreadyCompleted { id } => {
            println!("{JOB} for {key} already completed (execution {id}); use --force to run it again");
            return Ok(Exit::AlreadyCompleted);
        }
        Start::Run(execution) => execution,
    };
    let progress = Progress::start(JOB, partitions::pending(&execution).len() as u64);
    let stop = StopSignal::watch(pool, execution.id);
    let (sent, points) = (AtomicI64::new(0), AtomicI64::new(0));
    let trace_id = infra::telemetry::run_trace_id();
    let timezone = args.business.timezone.name();
    let outcome = partitions::each_pending(pool, &execution, args.workers, &progress, &stop, |partition| {
        let (sent, points, trace_id) = (&sent, &points, &trace_id);
        async move {
            let mut tx = pool.begin().await?;
            let notices = notices::send_due(&mut tx, partition, window, timezone, Some(trace_id)).await?;
            tx.commit().await?;
            sent.fetch_add(notices.len() as i64, Ordering::Relaxed);
            points.fetch_add(notices.iter().map(|n| n.amount).sum(), Ordering::Relaxed);
            let sent = notices.len() as i64;
            Ok(Some(Counts { rows_read: sent, rows_written: sent, discrepancies: 0 }))
        }
    })
    .await;
    let elapsed = progress.elapsed();
    drop(progress);
    let ended = jobs::Outcome::of(&outcome, stop.requested());
    jobs::finish(pool, execution.id, ended.clone()).await?;
    outcome?;
    if ended != jobs::Outcome::Completed {
        return Ok(jobs::exit_for(&ended, execution.id));
    }
    println!("{JOB} {key}: COMPLETED");
    println!("  {:<28} {:>24}", "expiring from", from.format("%Y-%m-%d %H:%M:%S UTC"));
    println!("  {:<28} {:>24}", "expiring before", until.format("%Y-%m-%d %H:%M:%S UTC"));
    println!("  {:<28} {:>24}", "notices sent", sent.load(Ordering::Relaxed));
    println!("  {:<28} {:>24}", "points they announce", points.load(Ordering::Relaxed));
    println!("  {:<28} {:>24}", "this run took", format!("{:.2} s", elapsed.as_secs_f64()));
    Ok(Exit::Success)
}

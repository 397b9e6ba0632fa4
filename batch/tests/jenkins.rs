//! The Jenkins pipeline's reconcile stage (`jenkins/reconcile.sh`) against a real database, so the
//! pipeline cannot drift from the CLI it drives.

use std::{path::PathBuf, process::Output};
use testkit::{process, TestEnv};

fn reconcile_sh(env: &TestEnv, reports: &std::path::Path, args: &[&str], force: bool) -> Output {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jenkins/reconcile.sh");
    let mut command = process::command_for(&script, env);
    command
        .args(args)
        .env("SETTLE_BATCH", env!("CARGO_BIN_EXE_settle-batch"))
        .env("REPORTS_DIR", reports)
        .env("FORCE", force.to_string());
    command.output().expect("running jenkins/reconcile.sh")
}

#[tokio::test]
async fn the_pipelines_reconcile_stage_closes_the_date_archives_a_summary_and_exits_with_the_batch_status() {
    let env = TestEnv::new().await;
    let reports = std::env::temp_dir().join(format!("settle-jenkins-{}", testkit::unique_suffix()));

    let first = reconcile_sh(&env, &reports, &["2026-11-24"], false);
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    let summary = std::fs::read_to_string(reports.join("reconcile-2026-11-24.txt")).expect("the summary");
    assert!(summary.contains("(exit 0)") && summary.contains("COMPLETED"), "{summary}");
    assert!(!summary.lines().any(|line| line.starts_with('{')), "log lines leaked into the summary");
    let log = std::fs::read_to_string(reports.join("reconcile-2026-11-24.log")).expect("the log");
    assert!(log.lines().any(|line| line.starts_with("{\"")), "the log has no JSON lines: {log}");
    let completed: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM batch_job_executions WHERE job_key = '2026-11-24' AND status = 'COMPLETED'",
    )
    .fetch_one(&env.pool)
    .await
    .expect("executions");
    assert_eq!(completed, 1);

    // The nightly build of an already closed date fails (exit 3) unless FORCE is set.
    assert_eq!(reconcile_sh(&env, &reports, &["2026-11-24"], false).status.code(), Some(3));
    assert!(reconcile_sh(&env, &reports, &["2026-11-24"], true).status.success());
    let bad = reconcile_sh(&env, &reports, &["24/11/2026"], false);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
    let _ = std::fs::remove_dir_all(&reports);
}

#[tokio::test]
async fn the_pipelines_auto_confirm_stage_confirms_what_is_due_and_refuses_a_malformed_instant() {
    let env = TestEnv::new().await;
    let reports = std::env::temp_dir().join(format!("settle-jenkins-{}", testkit::unique_suffix()));
    let buyer = testkit::orders::buyer(&env.pool).await;
    let due = testkit::orders::delivered(&env.pool, buyer, 3, 1_000, 9).await;
    let stage = |args: &[&str]| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jenkins/auto-confirm.sh");
        let mut command = process::command_for(&script, &env);
        command.args(args).env("SETTLE_BATCH", env!("CARGO_BIN_EXE_settle-batch")).env("REPORTS_DIR", &reports);
        command.output().expect("running jenkins/auto-confirm.sh")
    };

    let ran = stage(&["2099-01-01T00:00:00Z"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let summary = std::fs::read_to_string(reports.join("auto-confirm-2099-01-01T000000Z.txt")).expect("the summary");
    assert!(summary.contains("(exit 0)") && summary.contains("orders confirmed"), "{summary}");
    let confirmed: i64 = sqlx::query_scalar("SELECT count(*) FROM orders WHERE id = ANY($1) AND status = 'CONFIRMED'")
        .bind(&due)
        .fetch_one(&env.pool)
        .await
        .expect("statuses");
    assert_eq!(confirmed, 3);
    assert_eq!(stage(&["2099-01-01T00:00:00Z"]).status.code(), Some(3), "this instant is done");
    let bad = stage(&["tomorrow"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
    let _ = std::fs::remove_dir_all(&reports);
}

#[tokio::test]
async fn the_pipelines_expire_points_stage_expires_what_is_due_and_refuses_a_malformed_date() {
    let env = TestEnv::new().await;
    let reports = std::env::temp_dir().join(format!("settle-jenkins-{}", testkit::unique_suffix()));
    let jenkinsfile = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jenkins/Jenkinsfile"))
        .expect("the Jenkinsfile");
    assert!(jenkinsfile.contains("jenkins/expire-points.sh \"$BUSINESS_DATE\""), "the pipeline runs the stage");
    let seeded = process::command_for(env!("CARGO_BIN_EXE_settle-batch").as_ref(), &env)
        .args(["seed-points", "--users", "20", "--transactions", "60"])
        .output()
        .expect("seed");
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let due: i64 = sqlx::query_scalar(
        "WITH due AS (UPDATE point_lots SET expires_at = '2026-12-01T00:00:00Z' WHERE remaining > 0 RETURNING remaining)
         SELECT sum(remaining)::bigint FROM due",
    )
    .fetch_one(&env.pool)
    .await
    .expect("due lots");
    let stage = |args: &[&str]| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jenkins/expire-points.sh");
        let mut command = process::command_for(&script, &env);
        command.args(args).env("SETTLE_BATCH", env!("CARGO_BIN_EXE_settle-batch")).env("REPORTS_DIR", &reports);
        command.output().expect("running jenkins/expire-points.sh")
    };

    let ran = stage(&["2026-12-01"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let summary = std::fs::read_to_string(reports.join("expire-points-2026-12-01.txt")).expect("the summary");
    assert!(summary.contains("(exit 0)") && summary.contains(&format!(" {due}\n")), "{due}: {summary}");
    let left: i64 = sqlx::query_scalar("SELECT coalesce(sum(balance), 0)::bigint FROM point_balances")
        .fetch_one(&env.pool)
        .await
        .expect("balances");
    assert_eq!(left, 0, "every lot was due");
    assert_eq!(stage(&["2026-12-01"]).status.code(), Some(3), "this date is done");
    let bad = stage(&["1.12.2026"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
    let _ = std::fs::remove_dir_all(&reports);
}

#[tokio::test]
async fn the_pipelines_settle_sales_stage_closes_a_day_after_the_auto_confirmation() {
    let env = TestEnv::new().await;
    let reports = std::env::temp_dir().join(format!("settle-jenkins-{}", testkit::unique_suffix()));
    let jenkinsfile = std::fs::read_to_string(PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jenkins/Jenkinsfile"))
        .expect("the Jenkinsfile");
    let stage_at = |name: &str| jenkinsfile.find(&format!("stage('{name}')")).unwrap_or(usize::MAX);
    let order = [stage_at("Auto-confirm"), stage_at("Settle sales"), stage_at("Reconcile payments")];
    assert!(order.is_sorted() && order[2] < usize::MAX, "confirmations, settlement, then payments: {order:?}");
    let seeded = process::command_for(env!("CARGO_BIN_EXE_settle-batch").as_ref(), &env)
        .args(["seed-sales", "--date", "2026-12-01", "--orders", "15"])
        .output()
        .expect("seed");
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));
    let stage = |args: &[&str]| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../jenkins/settle-sales.sh");
        let mut command = process::command_for(&script, &env);
        command.args(args).env("SETTLE_BATCH", env!("CARGO_BIN_EXE_settle-batch")).env("REPORTS_DIR", &reports);
        command.output().expect("running jenkins/settle-sales.sh")
    };

    let ran = stage(&["2026-12-01"]);
    assert!(ran.status.success(), "{}", String::from_utf8_lossy(&ran.stderr));
    let summary = std::fs::read_to_string(reports.join("settle-sales-2026-12-01.txt")).expect("the summary");
    assert!(summary.contains("(exit 0)") && summary.contains("COMPLETED"), "{summary}");
    let status: String = sqlx::query_scalar("SELECT status FROM settlement_days WHERE business_date = '2026-12-01'")
        .fetch_one(&env.pool)
        .await
        .expect("the day");
    assert_eq!(status, "CLOSED");
    assert_eq!(stage(&["2026-12-01"]).status.code(), Some(3), "this date is done");
    let bad = stage(&["01/12/2026"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("YYYY-MM-DD"));
    let _ = std::fs::remove_dir_all(&reports);
}

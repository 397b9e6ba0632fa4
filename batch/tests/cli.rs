use std::process::Command;
use testkit::{process, TestEnv};

fn batch() -> &'static str {
    env!("CARGO_BIN_EXE_settle-batch")
}

#[tokio::test]
async fn migrate_brings_an_empty_database_up_to_date_and_is_idempotent() {
    let env = TestEnv::new().await;
    sqlx::query("DROP SCHEMA public CASCADE").execute(&env.pool).await.expect("emptying the test database");
    sqlx::query("CREATE SCHEMA public").execute(&env.pool).await.expect("recreating public");
    for _ in 0..2 {
        let output = process::command_for(batch().as_ref(), &env).arg("migrate").output().expect("running migrate");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let tables: i64 =
        sqlx::query_scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'coupon_policies'")
            .fetch_one(&env.pool)
            .await
            .expect("catalog");
    assert_eq!(tables, 1);
}

#[test]
fn an_unknown_subcommand_or_option_exits_2_with_a_message() {
    for args in [vec!["reconcile-everything"], vec!["migrate", "--no-such-flag"]] {
        let output = Command::new(batch()).args(&args).output().expect("running settle-batch");
        assert_eq!(output.status.code(), Some(2), "{args:?}");
        assert!(!output.stderr.is_empty(), "{args:?} printed no message");
    }
}

#[test]
fn issue_token_signs_a_token_the_api_accepts_and_refuses_a_bad_user_id() {
    let secret = "batch-test-secret-of-at-least-32-bytes";
    let output = Command::new(batch())
        .args(["issue-token", "--user", "12", "--role", "admin"])
        .env("JWT_SECRET", secret)
        .output()
        .expect("running settle-batch");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let token = String::from_utf8(output.stdout).expect("utf-8");
    let keys = infra::jwt::JwtKeys::from_secret(secret).expect("secret");
    let (user, claims) = keys.verify(token.trim()).expect("a valid token");
    assert_eq!((user.get(), claims.role), (12, domain::Role::Admin));

    let refused =
        Command::new(batch()).args(["issue-token", "--user", "0"]).env("JWT_SECRET", secret).output().expect("running");
    assert_eq!(refused.status.code(), Some(2));
}

#[tokio::test]
async fn outbox_parked_lists_parked_rows_and_retry_re_drives_one_or_exits_2() {
    let env = TestEnv::new().await;
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO outbox_events (event_id, aggregate_type, aggregate_id, event_type, payload, attempts, \
         last_error, parked_at) VALUES (gen_random_uuid(), 'points', '7', 'PointsEarned', '{}', 10, \
         'Message size too large', now()) RETURNING id",
    )
    .fetch_one(&env.pool)
    .await
    .expect("a parked row");
    let run = |args: &[&str]| process::command_for(batch().as_ref(), &env).args(args).output().expect("running");

    let listed = run(&["outbox", "parked"]);
    assert!(listed.status.success(), "{}", String::from_utf8_lossy(&listed.stderr));
    let listing = String::from_utf8_lossy(&listed.stdout);
    assert!(listing.contains(&format!("id={id} ")) && listing.contains("Message size too large"), "{listing}");

    let retried = run(&["outbox", "retry", &id.to_string()]);
    assert!(retried.status.success(), "{}", String::from_utf8_lossy(&retried.stderr));
    let (parked, attempts): (bool, i32) =
        sqlx::query_as("SELECT parked_at IS NOT NULL, attempts FROM outbox_events WHERE id = $1")
            .bind(id)
            .fetch_one(&env.pool)
            .await
            .expect("row");
    assert_eq!((parked, attempts), (false, 0), "queued again with fresh attempts");

    let again = run(&["outbox", "retry", &id.to_string()]);
    assert_eq!(again.status.code(), Some(2), "a row that is not parked cannot be re-driven");
    assert!(String::from_utf8_lossy(&again.stderr).contains("no parked outbox row"));
}

#[tokio::test]
async fn create_user_reads_the_password_from_stdin_and_refuses_weak_ones_or_taken_addresses() {
    use std::io::Write;
    let env = TestEnv::new().await;
    let create = |password: &str| {
        let mut child = process::command_for(batch().as_ref(), &env)
            .args(["create-user", "--email", "Root@Shop.test", "--name", "Root Admin", "--role", "ADMIN"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("running create-user");
        writeln!(child.stdin.take().expect("stdin"), "{password}").expect("writing the password");
        child.wait_with_output().expect("create-user output")
    };
    let weak = create("password1");
    assert_eq!(weak.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&weak.stderr).contains("PASSWORD_TOO_WEAK"),
        "{}",
        String::from_utf8_lossy(&weak.stderr)
    );
    let created = create("plum orbit canyon ledger");
    assert!(created.status.success(), "{}", String::from_utf8_lossy(&created.stderr));
    let (role, hash): (String, String) =
        sqlx::query_as("SELECT role, password_hash FROM users WHERE email = 'root@shop.test'")
            .fetch_one(&env.pool)
            .await
            .expect("the account");
    assert_eq!(role, "ADMIN");
    assert!(hash.starts_with("$argon2id$"), "the password is stored hashed: {hash}");
    let again = create("plum orbit canyon ledger");
    assert_eq!(again.status.code(), Some(2), "the address is taken");
}

#[tokio::test]
async fn seed_catalogue_makes_products_with_their_options_and_stock_and_refuses_bad_counts() {
    let env = TestEnv::new().await;
    let output = process::command_for(batch().as_ref(), &env)
        .args(["seed-catalogue", "--products", "30", "--options", "3", "--stock", "7"])
        .output()
        .expect("running seed-catalogue");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: serde_json::Value = serde_json::from_slice(&output.stdout).expect("a JSON summary");
    assert_eq!(summary["options"], 90);
    let (products, options, stock): (i64, i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM products WHERE status = 'ACTIVE'), count(*), sum(stock) FROM product_options",
    )
    .fetch_one(&env.pool)
    .await
    .expect("the catalogue");
    assert_eq!((products, options, stock), (30, 90, 630));
    let first = summary["firstOptionId"].as_i64().expect("first option");
    let last = summary["lastOptionId"].as_i64().expect("last option");
    assert_eq!(last - first + 1, 90, "the options' ids are one range the benchmark can draw from");
    for bad in [["--products", "0", "--stock", "1"], ["--products", "1", "--stock", "-1"]] {
        let output = process::command_for(batch().as_ref(), &env)
            .arg("seed-catalogue")
            .args(bad)
            .output()
            .expect("running seed-catalogue");
        assert_eq!(output.status.code(), Some(2), "{bad:?}");
    }
}

/// The value of a `key = value` line of a TOML file, if the line sets `key`.
fn value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    line.strip_prefix(key).map(|rest| rest.trim_start_matches([' ', '=']).trim())
}

/// Every settle-batch entry of the shipped schedule names a subcommand that accepts its arguments (the
/// slot placeholders filled in as the scheduler would), so a renamed job or flag fails here, not at night.
#[test]
fn the_shipped_schedule_runs_only_commands_and_arguments_settle_batch_accepts() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scheduler/schedule.toml");
    let schedule = std::fs::read_to_string(&path).expect("the shipped schedule");
    let mut checked = Vec::new();
    let mut lines = schedule.lines().peekable();
    while let Some(line) = lines.next() {
        let Some(command) = value(line, "command") else { continue };
        let command: String = serde_json::from_str(command).expect("a quoted command");
        let args: Vec<String> = lines
            .peek()
            .and_then(|next| value(next, "args"))
            .map(|args| serde_json::from_str(args).expect("a list of quoted arguments"))
            .unwrap_or_default();
        let filled = args.iter().map(|arg| {
            arg.replace("{yesterday}", "2026-12-06")
                .replace("{date}", "2026-12-07")
                .replace("{slot}", "2026-12-07T01:10:00Z")
        });
        let argv = ["settle-batch".to_owned(), command.clone()].into_iter().chain(filled);
        let parsed = <settle_batch::BatchCli as clap::Parser>::try_parse_from(argv);
        assert!(parsed.is_ok(), "{command} {args:?}: {}", parsed.err().map(|e| e.to_string()).unwrap_or_default());
        checked.push(command);
    }
    for job in settle_batch::jobs::NAMES {
        assert!(checked.iter().any(|command| command == job), "{job} is not scheduled: {checked:?}");
    }
}

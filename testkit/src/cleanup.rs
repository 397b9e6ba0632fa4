//! Removal of a test's database and Redis keys. Runs from `Drop`, which cannot await and may run inside
//! a runtime, so it uses its own thread and runtime and waits for them to finish.
//!
//! Kafka topics are NOT deleted: in tansu 0.6.0 a DeleteTopics request removes every topic of the
//! cluster (its `topic_delete_by.sql` filters on the cluster id only), which would wreck every test
//! running in parallel. Test topics carry a unique prefix instead; `scripts/stack reset-broker` clears them.

use sqlx::{Connection, PgConnection};

pub(crate) struct Leftovers {
    pub database: String,
    pub admin_url: String,
    pub redis_url: String,
    pub redis_prefix: String,
}

pub(crate) fn remove(leftovers: Leftovers) {
    let worker = std::thread::spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(runtime) => runtime,
            Err(error) => return eprintln!("test cleanup: no runtime: {error}"),
        };
        runtime.block_on(async {
            if let Err(error) = drop_database(&leftovers.admin_url, &leftovers.database).await {
                eprintln!("test cleanup: database {}: {error:#}", leftovers.database);
            }
            if let Err(error) = delete_keys(&leftovers.redis_url, &leftovers.redis_prefix).await {
                eprintln!("test cleanup: Redis prefix {}: {error:#}", leftovers.redis_prefix);
            }
        });
    });
    let _ = worker.join();
}

async fn drop_database(admin_url: &str, database: &str) -> anyhow::Result<()> {
    let mut admin = PgConnection::connect(admin_url).await?;
    // FORCE ends the test's own pooled connections, which may still be open while Drop runs.
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{database}\" WITH (FORCE)")).execute(&mut admin).await?;
    admin.close().await?;
    Ok(())
}

async fn delete_keys(url: &str, prefix: &str) -> anyhow::Result<()> {
    let redis =
        infra::redis_client::Redis::connect(&infra::config::RedisArgs::server(url.into(), prefix.into(), 2_000))
            .await?;
    redis.delete_matching("*").await
}

//! Every integration test builds a [`TestEnv`]: its own PostgreSQL database (migrated), its own Redis
//! key prefix and its own Kafka topic/group prefix, all against the real services of `scripts/stack`.
//! Dropping the env removes the database and the keys even when the test panicked, so parallel tests
//! never collide. Topics stay (see `cleanup` for why) under a prefix no other test uses.

pub mod broker;
mod cleanup;
pub mod firewall;
pub mod locks;
mod names;
pub mod orders;
pub mod postgres;
pub mod process;
pub mod sandbox;
pub mod sentinel;
mod topics;

pub use names::unique_suffix;
pub use topics::{reader_from_start, topics_with_prefix, FullReader};

use anyhow::Context;
use infra::config::{KafkaArgs, PostgresArgs, RedisArgs};
use sqlx::{Connection, PgConnection, PgPool};

/// Connection settings the stack script exports; the defaults match `scripts/stack`.
fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

pub fn admin_database_url() -> String {
    env_or("DATABASE_URL", "postgres://settle:settle@127.0.0.1:5432/settle")
}

pub fn redis_url() -> String {
    env_or("REDIS_URL", "redis://127.0.0.1:6379")
}

pub fn kafka_brokers() -> String {
    env_or("KAFKA_BROKERS", "127.0.0.1:9092")
}

/// One test's private slice of the real services.
pub struct TestEnv {
    pub pool: PgPool,
    pub postgres: PostgresArgs,
    pub redis: RedisArgs,
    pub kafka: KafkaArgs,
    database: String,
    admin_url: String,
}

impl TestEnv {
    /// A migrated database, a Redis prefix and a Kafka prefix that no other test uses.
    pub async fn new() -> Self {
        Self::try_new().await.expect("setting up the test environment (is `scripts/stack up` running?)")
    }

    /// Like [`TestEnv::new`], with the database on the server `admin_url` connects to (e.g. a
    /// [`postgres::PrivatePostgres`] that the test restarts).
    pub async fn on_postgres(admin_url: String) -> Self {
        Self::try_new_on(admin_url).await.expect("setting up the test environment")
    }

    async fn try_new() -> anyhow::Result<Self> {
        Self::try_new_on(admin_database_url()).await
    }

    async fn try_new_on(admin_url: String) -> anyhow::Result<Self> {
        let suffix = unique_suffix();
        let database = format!("settle_test_{suffix}");
        let mut admin = PgConnection::connect(&admin_url).await.context("connecting as the test admin")?;
        sqlx::query(&format!("CREATE DATABASE \"{database}\"")).execute(&mut admin).await?;
        admin.close().await?;

        let postgres = PostgresArgs {
            url: names::with_database(&admin_url, &database),
            max_connections: 10,
            acquire_timeout_ms: 10_000,
        };
        let pool = infra::db::connect(&postgres).await?;
        infra::db::migrate(&pool).await?;
        let redis = RedisArgs::server(redis_url(), format!("test:{suffix}:"), 2_000);
        let kafka = KafkaArgs {
            brokers: kafka_brokers(),
            topic_prefix: format!("test-{suffix}."),
            partitions: 4,
            message_timeout_ms: 10_000,
            linger_ms: 5,
        };
        Ok(Self { pool, postgres, redis, kafka, database, admin_url })
    }

    pub fn database_name(&self) -> &str {
        &self.database
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        cleanup::remove(cleanup::Leftovers {
            database: self.database.clone(),
            admin_url: self.admin_url.clone(),
            redis_url: self.redis.url.clone(),
            redis_prefix: self.redis.key_prefix.clone(),
        });
    }
}

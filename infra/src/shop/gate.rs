//! The stock gate: per option, a Redis count of the units that orders may still try for, derived from
//! the database. An order takes its units here first, so once an option sells out the rest are refused
//! in one Redis round trip instead of queueing for the stock row's lock.
//!
//! The database's guarded decrement stays the only thing that makes stock correct; the gate may only be
//! wrong for a while, in either direction:
//! - too high (a unit given back twice, a cart order or cancel synced while orders were in flight): a few
//!   more orders reach the database, whose guard refuses them, and the refusal resets the gate;
//! - too low (a process died between taking and giving back): the first sold-out answer per option per
//!   second compares with the database and raises the gate to the committed stock.
//!
//! Every Redis failure bypasses the gate: orders go to the database path, never fail because of Redis.
//!
//! Each process also remembers a sold-out answer for `SOLD_OUT_MEMO` (100 ms), so that the thousands of
//! refusals per second after a sale ends cost no Redis round trip at all (Redis was a sixth of the
//! machine's CPU in the flash-sale benchmark). Units given back or synced in this process clear the memo;
//! another process's restock or cancel is seen here at most 100 ms late (a refusal, never an oversell).

use super::catalogue;
use crate::redis_client::Behind;
use crate::redis_client::Redis;
use redis::Script;
use sqlx::PgPool;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// How often (at most) a sold-out answer checks the gate against the database, per option.
const CHECK_EVERY_MS: u64 = 1_000;
/// How long this process answers a sold-out option without asking Redis again.
const SOLD_OUT_MEMO: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct StockGate {
    redis: Redis,
    pool: PgPool,
    take: Arc<Script>,
    give_back: Arc<Script>,
    /// option -> (units the gate had left, until when that answer is reused).
    sold_out: Arc<Mutex<HashMap<i64, (i32, Instant)>>>,
}

/// Units taken from the gate by one order; give them back unless the order committed.
#[derive(Debug)]
pub struct Ticket(Vec<(i64, i32)>);

#[derive(Debug)]
pub enum Admission {
    /// The gate had every unit; the database decides.
    Admitted(Ticket),
    /// The gate has fewer than `requested` units of `option` left.
    SoldOut { option: i64, requested: i32, left: i32 },
    /// The gate could not decide (Redis unavailable): the database decides alone.
    Bypassed,
}

enum Taken {
    All,
    NotLoaded,
    Short { index: usize, left: i32, check: bool },
}

impl StockGate {
    pub fn new(redis: Redis, pool: PgPool) -> Self {
        Self {
            redis,
            pool,
            take: Arc::new(Script::new(include_str!("take.lua"))),
            give_back: Arc::new(Script::new(include_str!("give_back.lua"))),
            sold_out: Arc::default(),
        }
    }

    fn key(&self, option: i64) -> String {
        self.redis.key(&format!("shop:stock:{option}"))
    }

    /// Takes `lines` (option, units) from the gate, loading gates that are missing from the database.
    pub async fn admit(&self, lines: &[(i64, i32)]) -> Admission {
        if let Some(refusal) = self.remembered_sold_out(lines) {
            return refusal;
        }
        match self.try_admit(lines).await {
            Ok(Admission::SoldOut { option, requested, left }) => {
                self.remember_sold_out(option, left);
                Admission::SoldOut { option, requested, left }
            }
            Ok(admission) => admission,
            Err(error) => {
                tracing::warn!(%error, "stock gate unavailable; the order goes to the database directly");
                Admission::Bypassed
            }
        }
    }

    fn remembered_sold_out(&self, lines: &[(i64, i32)]) -> Option<Admission> {
        let mut memo = self.sold_out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        memo.retain(|_, (_, until)| *until > now);
        lines.iter().find_map(|&(option, requested)| {
            let &(left, _) = memo.get(&option)?;
            (left < requested).then_some(Admission::SoldOut { option, requested, left })
        })
    }

    fn remember_sold_out(&self, option: i64, left: i32) {
        let mut memo = self.sold_out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        memo.insert(option, (left, Instant::now() + SOLD_OUT_MEMO));
    }

    fn forget_sold_out(&self, options: impl Iterator<Item = i64>) {
        let mut memo = self.sold_out.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        for option in options {
            memo.remove(&option);
        }
    }

    async fn try_admit(&self, lines: &[(i64, i32)]) -> anyhow::Result<Admission> {
        let mut loaded = false;
        let mut checked = false;
        loop {
            match self.take(lines).await? {
                Taken::All => return Ok(Admission::Admitted(Ticket(lines.to_vec()))),
                Taken::NotLoaded if !loaded => {
                    self.load(lines).await?;
                    loaded = true;
                }
                Taken::NotLoaded => return Ok(Admission::Bypassed),
                Taken::Short { index, left, check } => {
                    let (option, requested) = lines[index];
                    if check && !checked && self.raise_to_database(option, left).await? >= requested {
                        checked = true;
                        continue;
                    }
                    return Ok(Admission::SoldOut { option, requested, left });
                }
            }
        }
    }

    async fn take(&self, lines: &[(i64, i32)]) -> anyhow::Result<Taken> {
        let mut invocation = self.take.prepare_invoke();
        invocation.arg(CHECK_EVERY_MS);
        for &(option, units) in lines {
            invocation.key(self.key(option)).arg(units);
        }
        let answer: Vec<i64> = invocation.invoke_async(&mut self.redis.connection()).behind(&self.redis).await?;
        Ok(match answer.as_slice() {
            [0] => Taken::All,
            [1, _] => Taken::NotLoaded,
            [2, index, left, check] => {
                Taken::Short { index: usize::try_from(*index - 1)?, left: i32::try_from(*left)?, check: *check == 1 }
            }
            other => anyhow::bail!("the stock gate answered {other:?}"),
        })
    }

    /// Loads missing gates from the committed stock (an existing gate is left as it is).
    async fn load(&self, lines: &[(i64, i32)]) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        for &(option, _) in lines {
            if let Some(stock) = catalogue::stock_of(&self.pool, option).await? {
                pipe.cmd("SET").arg(self.key(option)).arg(stock).arg("NX").ignore();
            }
        }
        pipe.query_async::<()>(&mut self.redis.connection()).behind(&self.redis).await?;
        Ok(())
    }

    /// A sold-out gate at `left` that the database says is higher (a leaked unit) is raised to it.
    async fn raise_to_database(&self, option: i64, left: i32) -> anyhow::Result<i32> {
        let stock = catalogue::stock_of(&self.pool, option).await?.unwrap_or(0);
        if stock > left {
            tracing::info!(option, gate = left, stock, "stock gate was below the database; raised");
            self.set(&[(option, stock)]).await?;
        }
        Ok(stock)
    }

    /// Gives back the units of an order that did not commit.
    pub async fn give_back(&self, ticket: Ticket) {
        self.forget_sold_out(ticket.0.iter().map(|(option, _)| *option));
        let mut invocation = self.give_back.prepare_invoke();
        for (option, units) in &ticket.0 {
            invocation.key(self.key(*option)).arg(*units);
        }
        if let Err(error) = invocation.invoke_async::<i64>(&mut self.redis.connection()).behind(&self.redis).await {
            tracing::warn!(%error, ?ticket, "could not give units back to the stock gate; the next check repairs it");
        }
    }

    /// Sets loaded gates to stock the database just committed (a cancel, a cart order, an admin's change,
    /// a refusal by the database's guard). A gate that is not loaded stays so (it loads on next use).
    pub async fn sync(&self, stock_left: &[(i64, i32)]) {
        self.forget_sold_out(stock_left.iter().map(|(option, _)| *option));
        if let Err(error) = self.set(stock_left).await {
            tracing::warn!(%error, "could not sync the stock gate; the next check repairs it");
        }
    }

    async fn set(&self, stock: &[(i64, i32)]) -> redis::RedisResult<()> {
        let mut pipe = redis::pipe();
        for &(option, left) in stock {
            pipe.cmd("SET").arg(self.key(option)).arg(left).arg("XX").ignore();
        }
        pipe.query_async(&mut self.redis.connection()).behind(&self.redis).await
    }
}

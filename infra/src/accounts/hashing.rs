//! Password hashing on a bounded pool: argon2id at OWASP's parameters costs tens of milliseconds of CPU
//! per call, so hashing runs off the async runtime, at most `concurrency` at once, with at most `queue`
//! callers waiting. Beyond that a caller is refused at once ([`Busy`]): a login storm gets quick 503s
//! instead of starving coupon issuance and balance reads of the runtime (a bulkhead).

use crate::bulkhead::{Bulkhead, Place};
use argon2::{
    password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString},
    Algorithm, Argon2, Params, Version,
};
use rand::RngCore;
use std::sync::Arc;

/// OWASP's argon2id parameters: 19 MiB of memory, 2 passes, 1 lane.
const MEMORY_KIB: u32 = 19_456;
const PASSES: u32 = 2;
const LANES: u32 = 1;

/// The pool is full and so is its queue: try again shortly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the password hashing pool is busy")]
pub struct Busy;

#[derive(Clone)]
pub struct Hasher {
    pool: Bulkhead,
    /// A hash of a random password, verified against when the e-mail is unknown, so that an unknown
    /// address and a wrong password take the same time.
    dummy: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, PASSES, LANES, None).expect("OWASP's parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_now(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("encoding a salt: {error}"))?;
    let hash =
        argon2().hash_password(password.as_bytes(), &salt).map_err(|error| anyhow::anyhow!("hashing: {error}"))?;
    Ok(hash.to_string())
}

fn verify_now(password: &str, phc: &str) -> bool {
    PasswordHash::new(phc).is_ok_and(|hash| argon2().verify_password(password.as_bytes(), &hash).is_ok())
}

impl Hasher {
    pub fn new(concurrency: usize, queue: usize) -> anyhow::Result<Self> {
        let mut random = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut random);
        let dummy = hash_now(&format!("{random:?}"))?;
        Ok(Self { pool: Bulkhead::new("password_hashing", concurrency, queue), dummy: dummy.into() })
    }

    /// A place in the pool, taken before any other work of the request (its database reads included),
    /// so that a refusal costs nothing but the answer; [`Busy`] when the pool and its queue are full.
    pub fn admit(&self) -> Result<Admission, Busy> {
        let place = self.pool.admit().map_err(|_| {
            metrics::counter!("password_hashing_refused_total").increment(1);
            Busy
        })?;
        Ok(Admission { place, dummy: self.dummy.clone() })
    }

    /// Admits and hashes: a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`) of `password`.
    pub async fn hash(&self, password: String) -> Result<anyhow::Result<String>, Busy> {
        self.admit()?.hash(password).await
    }

    /// Admits and verifies (see [`Admission::verify`]).
    pub async fn verify(&self, password: String, phc: Option<String>) -> Result<bool, Busy> {
        self.admit()?.verify(password, phc).await
    }
}

/// A caller's place in the hashing pool; it leaves the pool when dropped (done, refused or abandoned).
pub struct Admission {
    place: Place,
    dummy: Arc<str>,
}

impl Admission {
    /// A PHC string of `password` with a fresh salt.
    pub async fn hash(self, password: String) -> Result<anyhow::Result<String>, Busy> {
        self.run(move || hash_now(&password)).await
    }

    /// Whether `password` matches `phc`; with no stored hash (unknown account) it checks against the
    /// dummy hash and answers false, taking as long as a real check.
    pub async fn verify(self, password: String, phc: Option<String>) -> Result<bool, Busy> {
        let known = phc.is_some();
        let phc = phc.unwrap_or_else(|| self.dummy.to_string());
        let matched = self.run(move || verify_now(&password, &phc)).await?;
        Ok(known && matched)
    }

    async fn run<T: Send + 'static>(self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, Busy> {
        let _turn = self.place.turn().await.map_err(|_| Busy)?;
        let span = tracing::Span::current();
        tokio::task::spawn_blocking(move || span.in_scope(work)).await.map_err(|_| Busy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_hash_is_an_owasp_argon2id_phc_string_that_verifies_only_its_password() {
        let hasher = Hasher::new(1, 4).expect("hasher");
        let phc = hasher.hash("plum orbit canyon".into()).await.expect("not busy").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert!(hasher.verify("plum orbit canyon".into(), Some(phc.clone())).await.expect("not busy"));
        assert!(!hasher.verify("plum orbit canyoN".into(), Some(phc)).await.expect("not busy"));
        assert!(!hasher.verify("anything".into(), None).await.expect("not busy"), "no account never matches");
    }

    #[tokio::test]
    async fn callers_beyond_the_pool_and_its_queue_are_refused_at_once() {
        let hasher = Hasher::new(1, 2).expect("hasher");
        let calls: Vec<_> = (0..12)
            .map(|n| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(format!("pw {n}")).await })
            })
            .collect();
        let mut busy = 0;
        for call in calls {
            if call.await.expect("task").is_err() {
                busy += 1;
            }
        }
        assert_eq!(busy, 12 - 3, "12 callers at once on a pool of 1 with a queue of 2: 3 are served");
    }
}

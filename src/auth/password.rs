//! Password hashing with argon2id (the crate's defaults follow the current OWASP advice).

use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use std::time::Duration;

/// The shortest password accepted: long enough to resist guessing behind the rate limits,
/// short enough for a parent typing on a phone.
pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 256;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PasswordError {
    #[error("the password must be at least {MIN_LENGTH} characters")]
    TooShort,
    #[error("the password must be at most {MAX_LENGTH} characters")]
    TooLong,
}

/// Checks the policy and returns the PHC-format hash to store.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    check_policy(password)?;
    let salt = SaltString::generate(&mut OsRng);
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 with default parameters cannot fail")
        .to_string())
}

fn check_policy(password: &str) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordError::TooShort);
    }
    if length > MAX_LENGTH {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

pub fn verify(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Runs argon2 off the async workers, at most one hash per core at a time.
///
/// Each hash or verification holds about 19 MiB for a noticeable time; without a bound, a
/// burst of sign-ins (even with unknown logins, which verify against a dummy hash) would run
/// hundreds at once, exhaust memory and starve every other request. Callers wait for a permit
/// without holding a database connection; one that waits longer than `max_wait` is told the
/// server is busy instead.
pub struct Hasher {
    permits: tokio::sync::Semaphore,
    max_wait: Duration,
}

/// No permit came free in time: too many hashes are queued.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("too many sign-ins at once; try again in a moment")]
pub struct Busy;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HashError {
    #[error(transparent)]
    Policy(#[from] PasswordError),
    #[error(transparent)]
    Busy(#[from] Busy),
}

/// Makes glibc return every large block (argon2's 19 MiB) to the system when it is freed.
/// By default glibc raises its mmap threshold after the first such free and then keeps freed
/// blocks in per-thread arenas, so hashes run on many blocking threads leave hundreds of MB
/// resident even when only a few ran at once.
fn release_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    static ONCE: std::sync::Once = std::sync::Once::new();
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    ONCE.call_once(|| {
        // SAFETY: mallopt only changes allocator tuning; called once, before hashing.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 1024 * 1024);
        }
    });
}

impl Default for Hasher {
    /// One permit per available core, and five seconds of waiting at most.
    fn default() -> Self {
        release_large_blocks();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Hasher::new(cores, Duration::from_secs(5))
    }
}

impl Hasher {
    pub fn new(permits: usize, max_wait: Duration) -> Hasher {
        Hasher {
            permits: tokio::sync::Semaphore::new(permits.max(1)),
            max_wait,
        }
    }

    /// Checks the policy (before waiting) and returns the hash to store.
    pub async fn hash(&self, password: String) -> Result<String, HashError> {
        check_policy(&password)?;
        let _permit = self.permit().await?;
        Ok(tokio::task::spawn_blocking(move || hash(&password))
            .await
            .expect("hash task panicked")?)
    }

    pub async fn verify(&self, password: String, stored: String) -> Result<bool, Busy> {
        let _permit = self.permit().await?;
        Ok(
            tokio::task::spawn_blocking(move || verify(&password, &stored))
                .await
                .unwrap_or(false),
        )
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, Busy> {
        match tokio::time::timeout(self.max_wait, self.permits.acquire()).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(Busy),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_policy() {
        let stored = hash("correct horse").unwrap();
        assert!(stored.starts_with("$argon2id$"));
        assert!(verify("correct horse", &stored));
        assert!(!verify("wrong horse!", &stored));
        assert_eq!(hash("short"), Err(PasswordError::TooShort));
        assert!(!verify("anything", "not a hash"));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn hashing_is_bounded_and_waiting_ends_busy() {
        let hasher = std::sync::Arc::new(Hasher::new(1, Duration::from_millis(1)));
        let held = hasher.permits.acquire().await.unwrap();
        assert_eq!(
            hasher.verify("x".into(), "not a hash".into()).await,
            Err(Busy)
        );
        assert_eq!(
            hasher.hash("short".into()).await,
            Err(HashError::Policy(PasswordError::TooShort)),
            "the policy is checked before waiting"
        );
        drop(held);
        let stored = hasher.hash("correct horse".into()).await.unwrap();
        assert_eq!(
            hasher.verify("correct horse".into(), stored).await,
            Ok(true)
        );
    }
}

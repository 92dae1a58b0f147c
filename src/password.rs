//! Password hashing with argon2id, on a bounded pool.
//!
//! A hash costs ~19 MiB and tens of milliseconds by design. Hashes run on the
//! blocking pool, but at most one per core at a time: a flood of bind or login
//! requests queues here instead of exhausting memory or starving other work.

use std::sync::Arc;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing was cancelled")]
    Cancelled,
}

/// Hashes and verifies passwords, at most `permits` at a time.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Verified against when no account matches, so that an unknown user name
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
}

fn argon2() -> Argon2<'static> {
    // OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane.
    let params = Params::new(19 * 1024, 2, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

impl Hasher {
    pub fn new(permits: usize) -> Result<Self, HashError> {
        let salt = SaltString::generate(&mut OsRng);
        let dummy_hash = argon2()
            .hash_password(b"qqlogin dummy password", &salt)
            .map_err(|e| HashError::Argon2(e.to_string()))?
            .to_string();
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password into a PHC string (algorithm, parameters and salt included).
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        self.on_pool(move || {
            let salt = SaltString::generate(&mut OsRng);
            argon2()
                .hash_password(password.expose().as_bytes(), &salt)
                .map(|h| h.to_string())
                .map_err(|e| HashError::Argon2(e.to_string()))
        })
        .await
    }

    /// Whether `candidate` matches `stored`; with `None` (no such account) it
    /// verifies against a dummy hash and answers `false`, in the same time.
    pub async fn verify(
        &self,
        candidate: Password,
        stored: Option<String>,
    ) -> Result<bool, HashError> {
        let (stored, real) = match stored {
            Some(hash) => (hash, true),
            None => (self.dummy_hash.to_string(), false),
        };
        self.on_pool(move || {
            let parsed =
                PasswordHash::new(&stored).map_err(|e| HashError::Argon2(e.to_string()))?;
            Ok(argon2()
                .verify_password(candidate.expose().as_bytes(), &parsed)
                .is_ok()
                && real)
        })
        .await
    }

    async fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Cancelled)?;
        actix_web::rt::task::spawn_blocking(work)
            .await
            .map_err(|_| HashError::Cancelled)?
    }
}

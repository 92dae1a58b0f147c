//! Password hashing with argon2id, on a bounded pool with bounded memory.
//!
//! A hash needs 19 MiB of working memory and tens of milliseconds by design.
//! At most one hash per core runs at a time (a flood of bind or login requests
//! queues here, asynchronously), and each running hash borrows one of a set
//! of reused workspaces. Left to itself, argon2 allocates its 19 MiB afresh
//! each time, and the allocator keeps a copy in the arena of every thread that
//! ever hashed: hundreds of MiB after a burst. With the workspaces, memory for
//! hashing is at most `cores × 19 MiB`, however many threads ran, and none
//! until the first password is hashed or checked.
//!
//! Hashes in Django's formats (accounts brought over from the Django site)
//! are checked too ([`django`]). The service makes argon2id, or, sharing the
//! Django site's user table, Django's own `pbkdf2_sha256` so that the site's
//! login keeps working ([`Scheme`]).

mod django;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{
    Output, ParamsString, PasswordHash, PasswordVerifier as _, SaltString,
};
use argon2::{ARGON2ID_IDENT, Algorithm, Argon2, Block, Params, Version};
use tokio::sync::Semaphore;

use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Argon2(String),
    #[error("password hashing was cancelled")]
    Cancelled,
    /// Too many hashes are waiting already: come back in a moment.
    #[error("too many passwords waiting to be hashed")]
    Busy,
}

fn argon2_error(e: impl std::fmt::Display) -> HashError {
    HashError::Argon2(e.to_string())
}

/// OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane, 32-byte output.
fn params() -> Params {
    Params::new(19 * 1024, 2, 1, Some(32)).unwrap_or_default()
}

/// How new passwords are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    /// The service's own: argon2id, OWASP's baseline.
    Argon2id,
    /// Django's `pbkdf2_sha256$<iterations>$…`, for a user table the Django
    /// site reads too.
    DjangoPbkdf2 { iterations: u32 },
}

/// Hashes and verifies passwords, at most `permits` at a time, with at most
/// `queue` more waiting: beyond that a request is turned away at once rather
/// than queued without limit behind a flood.
#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    /// Hashes running or waiting now, and how many may.
    in_line: Arc<AtomicUsize>,
    max_in_line: usize,
    /// Idle workspaces: never more than one per permit.
    workspaces: Arc<Mutex<Vec<Vec<Block>>>>,
    /// Verified against when no account matches, so that an unknown user name
    /// costs the same time as a wrong password.
    dummy_hash: Arc<str>,
    scheme: Scheme,
}

impl Hasher {
    pub fn new(permits: usize, queue: usize, scheme: Scheme) -> Result<Self, HashError> {
        let permits = permits.max(1);
        // This workspace goes back to the system: a service that only sees
        // returning QQ logins never holds memory for hashing.
        let dummy_hash = make(scheme, &mut workspace(), b"qqlogin dummy password")?.into();
        // Workspaces are made the first time that many hashes run at once.
        Ok(Self {
            permits: Arc::new(Semaphore::new(permits)),
            in_line: Arc::new(AtomicUsize::new(0)),
            max_in_line: permits.saturating_add(queue),
            workspaces: Arc::new(Mutex::new(Vec::with_capacity(permits))),
            dummy_hash,
            scheme,
        })
    }

    /// Hashes running or waiting now.
    pub fn in_line(&self) -> usize {
        self.in_line.load(Ordering::Relaxed)
    }

    /// Hashes a new password into a string that names its algorithm,
    /// parameters and salt.
    pub async fn hash(&self, password: Password) -> Result<String, HashError> {
        let scheme = self.scheme;
        self.on_pool(move |memory| make(scheme, memory, password.expose().as_bytes()))
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
        self.on_pool(move |memory| {
            let password = candidate.expose().as_bytes();
            let right = if django::is_django(&stored) {
                django::verify(password, &stored)
            } else {
                verify_with(memory, password, &stored)?
            };
            Ok(right && real)
        })
        .await
    }

    /// Whether `stored` is not what [`Hasher::hash`] makes now (another
    /// algorithm, or fewer rounds): a right password found under it is to be
    /// stored again.
    pub fn is_outdated(&self, stored: &str) -> bool {
        match self.scheme {
            Scheme::Argon2id => django::is_django(stored),
            Scheme::DjangoPbkdf2 { iterations } => {
                django::pbkdf2_sha256_iterations(stored).is_none_or(|made| made < iterations)
            }
        }
    }

    async fn on_pool<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut [Block]) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _in_line = InLine::join(&self.in_line, self.max_in_line)?;
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Cancelled)?;
        let workspaces = self.workspaces.clone();
        actix_web::rt::task::spawn_blocking(move || {
            let taken = workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let mut memory = taken.unwrap_or_else(workspace);
            let result = work(&mut memory);
            workspaces
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(memory);
            result
        })
        .await
        .map_err(|_| HashError::Cancelled)?
    }
}

/// A place in the hasher's line, given up when dropped (also by a request
/// that goes away while it waits).
struct InLine(Arc<AtomicUsize>);

impl InLine {
    fn join(line: &Arc<AtomicUsize>, max: usize) -> Result<Self, HashError> {
        line.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < max).then_some(n + 1)
        })
        .map_err(|_| HashError::Busy)?;
        Ok(Self(Arc::clone(line)))
    }
}

impl Drop for InLine {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A new hash of `password` in `scheme`, with a new salt.
fn make(scheme: Scheme, memory: &mut [Block], password: &[u8]) -> Result<String, HashError> {
    match scheme {
        Scheme::Argon2id => hash_with(memory, password, &SaltString::generate(&mut OsRng)),
        Scheme::DjangoPbkdf2 { iterations } => Ok(django::make_pbkdf2_sha256(password, iterations)),
    }
}

fn workspace() -> Vec<Block> {
    vec![Block::default(); params().block_count()]
}

fn hash_with(
    memory: &mut [Block],
    password: &[u8],
    salt: &SaltString,
) -> Result<String, HashError> {
    let params = params();
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt
        .as_salt()
        .decode_b64(&mut salt_buf)
        .map_err(argon2_error)?;
    let output = Output::init_with(32, |out| {
        argon2
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(argon2_error)?;
    let phc = PasswordHash {
        algorithm: ARGON2ID_IDENT,
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(argon2_error)?,
        salt: Some(salt.as_salt()),
        hash: Some(output),
    };
    Ok(phc.to_string())
}

fn verify_with(memory: &mut [Block], password: &[u8], stored: &str) -> Result<bool, HashError> {
    let parsed = PasswordHash::new(stored).map_err(argon2_error)?;
    let params = Params::try_from(&parsed).map_err(argon2_error)?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return Ok(false);
    };
    if params.block_count() > memory.len() {
        // A hash made with costlier settings than ours: let argon2 allocate for it.
        let argon2 = Argon2::default();
        return Ok(argon2.verify_password(password, &parsed).is_ok());
    }
    let algorithm = Algorithm::try_from(parsed.algorithm).map_err(argon2_error)?;
    let version = parsed
        .version
        .map(Version::try_from)
        .transpose()
        .map_err(argon2_error)?
        .unwrap_or_default();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut salt_buf = [0u8; 64];
    let salt_bytes = salt.decode_b64(&mut salt_buf).map_err(argon2_error)?;
    let computed = Output::init_with(expected.len(), |out| {
        argon2
            .hash_password_into_with_memory(password, salt_bytes, out, &mut *memory)
            .map_err(|_| argon2::password_hash::Error::Crypto)
    })
    .map_err(argon2_error)?;
    // `Output`'s equality is constant-time.
    Ok(computed == expected)
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordHasher as _;
    use secrecy::SecretString;

    fn password(s: &str) -> Password {
        Password::parse(SecretString::from(s.to_owned())).unwrap()
    }

    #[actix_web::test]
    async fn a_hash_verifies_its_password_and_nothing_else() {
        let hasher = Hasher::new(2, 8, Scheme::Argon2id).unwrap();
        let hash = hasher.hash(password("correct horse")).await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(
            hasher
                .verify(password("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("correct horsf"), Some(hash))
                .await
                .unwrap()
        );
        assert!(
            !hasher
                .verify(password("correct horse"), None)
                .await
                .unwrap()
        );
    }

    #[actix_web::test]
    async fn in_djangos_scheme_hashes_are_djangos_and_only_fewer_rounds_are_outdated() {
        let hasher = Hasher::new(1, 8, Scheme::DjangoPbkdf2 { iterations: 36_000 }).unwrap();
        let hash = hasher.hash(password("correct horse")).await.unwrap();
        assert!(hash.starts_with("pbkdf2_sha256$36000$"), "{hash}");
        assert!(
            hasher
                .verify(password("correct horse"), Some(hash.clone()))
                .await
                .unwrap()
        );
        assert!(!hasher.is_outdated(&hash));
        let stronger = Hasher::new(
            1,
            8,
            Scheme::DjangoPbkdf2 {
                iterations: 600_000,
            },
        )
        .unwrap();
        assert!(
            stronger.is_outdated(&hash),
            "fewer rounds than the site's now"
        );
        let argon2id = Hasher::new(1, 8, Scheme::Argon2id).unwrap();
        let ours = argon2id.hash(password("correct horse")).await.unwrap();
        assert!(hasher.is_outdated(&ours), "Django cannot read ours");
        assert!(hasher.is_outdated("pbkdf2_sha1$36000$salt$AAAA"));
        assert!(argon2id.is_outdated(&hash) && !argon2id.is_outdated(&ours));
    }

    #[actix_web::test]
    async fn hashes_agree_with_the_argon2_crate_both_ways() {
        let hasher = Hasher::new(1, 8, Scheme::Argon2id).unwrap();
        let ours = hasher.hash(password("interoperable")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(
            Argon2::default()
                .verify_password(b"interoperable", &parsed)
                .is_ok()
        );

        let salt = SaltString::generate(&mut OsRng);
        let theirs = Argon2::default()
            .hash_password(b"interoperable", &salt)
            .unwrap()
            .to_string();
        assert!(
            hasher
                .verify(password("interoperable"), Some(theirs))
                .await
                .unwrap()
        );
        // Costlier than our workspace: still verified, by letting argon2 allocate.
        let costly = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(32 * 1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"interoperable", &salt)
        .unwrap()
        .to_string();
        assert!(
            hasher
                .verify(password("interoperable"), Some(costly))
                .await
                .unwrap()
        );
    }

    #[actix_web::test]
    async fn beyond_the_line_a_hash_is_turned_away_at_once() {
        let hasher = Hasher::new(1, 1, Scheme::Argon2id).unwrap();
        let (first, second, third) = tokio::join!(
            hasher.hash(password("password-1")),
            hasher.hash(password("password-2")),
            hasher.hash(password("password-3")),
        );
        assert!(first.is_ok() && second.is_ok());
        assert!(matches!(third, Err(HashError::Busy)), "{third:?}");
        // The line empties as hashes finish.
        assert!(hasher.hash(password("password-4")).await.is_ok());
    }

    #[actix_web::test]
    async fn a_garbage_stored_hash_is_an_error_not_a_panic() {
        let hasher = Hasher::new(1, 8, Scheme::Argon2id).unwrap();
        assert!(
            hasher
                .verify(password("whatever1"), Some("not a hash".into()))
                .await
                .is_err()
        );
    }
}

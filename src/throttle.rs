//! Credential stuffing and brute force: tries at a password are counted per
//! account name and per client address (and, at the bind form, per bind
//! token), in the database (every instance sees them). A try is counted
//! *before* the password is hashed and given back when it was right, so that
//! tries sent at once cannot all slip past the count ([`Throttle::reserve`]).
//! After the free tries, each further failure locks that subject for twice as
//! long as the last.
//!
//! The account subject is the name as typed, not a user id: an unknown name is
//! throttled exactly like a real one, so a lock reveals nothing.

use std::net::IpAddr;

pub use crate::config::FreeTries;
use crate::db::login_failure::{Reserved, Subject};
use crate::db::{self, Db, DbError};

/// Tries allowed per bind token: one person's typing mistakes, not a search.
pub const FREE_TRIES_PER_BIND_TOKEN: i32 = 5;
/// The first lock; each further failure doubles it.
const FIRST_LOCK_SECS: i64 = 15;
const MAX_LOCK_SECS: i64 = 3600;
/// Failures this old are forgotten.
pub const MEMORY_SECS: i64 = 3600;

/// Who is trying: the account name as typed, the client's address, and at
/// the bind form the bind token.
pub struct Attempt {
    account: Subject,
    others: Vec<Subject>,
}

impl Attempt {
    /// A password login (or bind) for `account` from `address`.
    pub fn new(account: &str, address: Option<IpAddr>, free: FreeTries) -> Self {
        // Control characters never reach the database (PostgreSQL refuses NUL in text).
        let account: String = account
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .flat_map(char::to_lowercase)
            .collect();
        Self {
            account: Subject {
                key: format!("account:{account}"),
                free_tries: free.account,
            },
            others: address
                .map(|a| Subject {
                    key: format!("address:{a}"),
                    free_tries: free.address,
                })
                .into_iter()
                .collect(),
        }
    }

    /// Also counted against the bind token `token_id`.
    pub fn with_bind_token(mut self, token_id: &str) -> Self {
        self.others.push(Subject {
            key: format!("bind:{}", crate::secret::db_key(token_id)),
            free_tries: FREE_TRIES_PER_BIND_TOKEN,
        });
        self
    }

    fn subjects(&self) -> impl Iterator<Item = &Subject> {
        std::iter::once(&self.account).chain(&self.others)
    }
}

#[derive(Clone)]
pub struct Throttle {
    db: Db,
    free: FreeTries,
}

/// How long until another try is allowed, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl Throttle {
    pub fn new(db: Db, free: FreeTries) -> Self {
        Self { db, free }
    }

    /// A try at `account`'s password from `address`.
    pub fn attempt(&self, account: &str, address: Option<IpAddr>) -> Attempt {
        Attempt::new(account, address, self.free)
    }

    /// Counts a try against every subject before the password is checked;
    /// `Err` (and nothing counted) while one of them is locked. A try that
    /// fails stays counted; one that succeeds is given back ([`Self::succeeded`]).
    pub async fn reserve(&self, attempt: &Attempt) -> Result<Result<(), RetryAfter>, DbError> {
        let subjects: Vec<Subject> = attempt.subjects().cloned().collect();
        let now = db::now();
        let reserved = self
            .db
            .transaction(move |conn| {
                let forget_before = now - time::Duration::seconds(MEMORY_SECS);
                db::login_failure::reserve(conn, &subjects, now, forget_before, lock_for)
            })
            .await?;
        Ok(match reserved {
            Reserved::Go => Ok(()),
            Reserved::LockedUntil(until) => Err(RetryAfter(
                u64::try_from((until - now).whole_seconds())
                    .unwrap_or(0)
                    .max(1),
            )),
        })
    }

    /// The password was right: the account name's tries are forgotten, and
    /// the try reserved against the others is given back.
    pub async fn succeeded(&self, attempt: &Attempt) -> Result<(), DbError> {
        let account = attempt.account.key.clone();
        let others = attempt.others.clone();
        self.db
            .transaction(move |conn| {
                db::login_failure::forget(conn, &account)?;
                let now = db::now();
                for subject in &others {
                    db::login_failure::give_back(conn, subject, now)?;
                }
                Ok(())
            })
            .await
    }
}

/// The lock after the `failures`-th failure: none within the free tries, then
/// 15 s, 30 s, 60 s, … up to an hour.
fn lock_for(failures: i32, free: i32) -> Option<time::Duration> {
    let beyond = failures - free;
    (beyond >= 0).then(|| {
        let secs = FIRST_LOCK_SECS.saturating_mul(
            1_i64
                .checked_shl(beyond.unsigned_abs().min(20))
                .unwrap_or(i64::MAX),
        );
        time::Duration::seconds(secs.min(MAX_LOCK_SECS))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn free_tries_then_doubling_locks_up_to_an_hour() {
        let secs = |n| lock_for(n, 5).map(|d| d.whole_seconds());
        assert_eq!((secs(1), secs(4)), (None, None));
        assert_eq!((secs(5), secs(6), secs(7)), (Some(15), Some(30), Some(60)));
        assert_eq!(secs(1000), Some(3600));
    }

    const FREE: FreeTries = FreeTries {
        account: 5,
        address: 20,
    };

    #[test]
    fn account_names_are_compared_as_people_type_them() {
        assert_eq!(
            Attempt::new(" Alice ", None, FREE).account.key,
            Attempt::new("alice", None, FREE).account.key
        );
        assert_eq!(
            Attempt::new(&"x".repeat(10_000), None, FREE)
                .account
                .key
                .len(),
            "account:".len() + 64
        );
    }
}

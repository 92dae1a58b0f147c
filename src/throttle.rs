//! Credential stuffing and brute force: failed password attempts are counted
//! per account name and per client address, in the database (every instance
//! sees them). After the free tries, each further failure locks that subject
//! for twice as long as the last.
//!
//! The account subject is the name as typed, not a user id: an unknown name is
//! throttled exactly like a real one, so a lock reveals nothing.

use std::net::IpAddr;

use crate::db::{self, Db, DbError};

/// Failures allowed per account name before back-off starts.
pub const FREE_TRIES_PER_ACCOUNT: i32 = 5;
/// Failures allowed per client address (many people may share one address).
pub const FREE_TRIES_PER_ADDRESS: i32 = 20;
/// The first lock; each further failure doubles it.
const FIRST_LOCK_SECS: i64 = 15;
const MAX_LOCK_SECS: i64 = 3600;
/// Failures this old are forgotten.
const MEMORY_SECS: i64 = 3600;

/// Who is trying: the account name as typed and the client's address.
pub struct Attempt {
    account: String,
    address: Option<String>,
}

impl Attempt {
    pub fn new(account: &str, address: Option<IpAddr>) -> Self {
        // Control characters never reach the database (PostgreSQL refuses NUL in text).
        let account: String = account
            .trim()
            .chars()
            .filter(|c| !c.is_control())
            .take(64)
            .flat_map(char::to_lowercase)
            .collect();
        Self {
            account: format!("account:{account}"),
            address: address.map(|a| format!("address:{a}")),
        }
    }

    fn subjects(&self) -> Vec<String> {
        std::iter::once(self.account.clone())
            .chain(self.address.clone())
            .collect()
    }
}

#[derive(Clone)]
pub struct Throttle {
    db: Db,
}

/// How long until another try is allowed, in whole seconds (at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryAfter(pub u64);

impl Throttle {
    pub fn new(db: Db) -> Self {
        Self { db }
    }

    /// `Err` while the account name or the address is locked.
    pub async fn check(&self, attempt: &Attempt) -> Result<Result<(), RetryAfter>, DbError> {
        let subjects = attempt.subjects();
        let now = db::now();
        let until = self
            .db
            .run(move |conn| db::login_failure::locked_until(conn, &subjects, now))
            .await?;
        Ok(match until {
            Some(until) => Err(RetryAfter(
                u64::try_from((until - now).whole_seconds())
                    .unwrap_or(0)
                    .max(1),
            )),
            None => Ok(()),
        })
    }

    /// Counts a failed attempt against both subjects, locking those past their free tries.
    pub async fn failed(&self, attempt: &Attempt) -> Result<(), DbError> {
        let subjects = [(attempt.account.clone(), FREE_TRIES_PER_ACCOUNT)]
            .into_iter()
            .chain(attempt.address.clone().map(|a| (a, FREE_TRIES_PER_ADDRESS)));
        for (subject, free) in subjects {
            self.db
                .write(move |conn| {
                    let now = db::now();
                    let forget_before = now - time::Duration::seconds(MEMORY_SECS);
                    let failures =
                        db::login_failure::count_failure(conn, &subject, now, forget_before)?;
                    if let Some(lock) = lock_for(failures, free) {
                        db::login_failure::lock(conn, &subject, now + lock)?;
                    }
                    Ok(())
                })
                .await?;
        }
        Ok(())
    }

    /// A success clears the account name's count (not the address's).
    pub async fn succeeded(&self, attempt: &Attempt) -> Result<(), DbError> {
        let subject = attempt.account.clone();
        self.db
            .write(move |conn| db::login_failure::forget(conn, &subject))
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

    #[test]
    fn account_names_are_compared_as_people_type_them() {
        assert_eq!(
            Attempt::new(" Alice ", None).account,
            Attempt::new("alice", None).account
        );
        assert_eq!(
            Attempt::new(&"x".repeat(10_000), None).account.len(),
            "account:".len() + 64
        );
    }
}

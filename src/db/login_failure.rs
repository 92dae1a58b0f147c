//! Queries on `login_failures`: tries at a password per subject (an account
//! name, a client address, a bind token), counted *before* the password is
//! checked, so that tries sent at once are counted at once.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::login_failures as lf;
use super::{DbConn, DbError};

/// A subject and how many tries it has before it is locked.
#[derive(Debug, Clone)]
pub struct Subject {
    pub key: String,
    pub free_tries: i32,
}

/// What [`reserve`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserved {
    /// One try counted against every subject: go ahead and check the password.
    Go,
    /// A subject is locked until then: nothing was counted.
    LockedUntil(PrimitiveDateTime),
}

/// Counts one try against every subject, atomically (call it inside a
/// transaction: [`super::Db::write`]), unless one of them is
/// locked. The try that reaches a subject's free tries locks it at once (for
/// `lock_for(tries beyond the free ones)`), before anyone knows whether it
/// failed: a burst of tries sent together gets no more than the free ones to
/// the password check. Tries older than `forget_before` are forgotten.
pub fn reserve(
    conn: &mut DbConn,
    subjects: &[Subject],
    now: PrimitiveDateTime,
    forget_before: PrimitiveDateTime,
    lock_for: impl Fn(i32, i32) -> Option<time::Duration>,
) -> Result<Reserved, DbError> {
    let mut keys: Vec<&str> = subjects.iter().map(|s| s.key.as_str()).collect();
    // One order for every caller: two reservations never wait for each other's rows.
    keys.sort_unstable();
    for key in &keys {
        // One statement, whoever else inserts the same subject at the same
        // moment. The upsert's SQL is the backend's own, so it runs on the
        // backend's connection.
        let row = (
            lf::subject.eq(key),
            lf::failures.eq(0),
            lf::last_failure.eq(now),
            lf::locked_until.eq(unlocked()),
        );
        let insert = diesel::insert_into(lf::table).values(row);
        match &mut *conn {
            DbConn::Sqlite(c) => insert.on_conflict_do_nothing().execute(c)?,
            DbConn::Postgres(c) => insert.on_conflict_do_nothing().execute(c)?,
        };
    }
    let rows: Vec<(String, i32, PrimitiveDateTime, PrimitiveDateTime)> = {
        let query = lf::table.filter(lf::subject.eq_any(&keys)).select((
            lf::subject,
            lf::failures,
            lf::last_failure,
            lf::locked_until,
        ));
        match &mut *conn {
            // SQLite has one writer at a time: the transaction alone serialises.
            DbConn::Sqlite(c) => query.load(c)?,
            DbConn::Postgres(c) => query.for_update().load(c)?,
        }
    };
    if let Some(until) = rows
        .iter()
        .map(|(_, _, _, locked_until)| *locked_until)
        .filter(|until| *until > now)
        .max()
    {
        return Ok(Reserved::LockedUntil(until));
    }
    for (key, failures, last_failure, locked_until) in rows {
        let free = subjects
            .iter()
            .find(|s| s.key == key)
            .map_or(i32::MAX, |s| s.free_tries);
        let tries = if last_failure < forget_before {
            1
        } else {
            failures.saturating_add(1)
        };
        let locked_until = lock_for(tries, free).map_or(locked_until, |lock| now + lock);
        diesel::update(lf::table.find(&key))
            .set((
                lf::failures.eq(tries),
                lf::last_failure.eq(now),
                lf::locked_until.eq(locked_until),
            ))
            .execute(conn)?;
    }
    Ok(Reserved::Go)
}

/// Takes back one reserved try from `subject`, whose password was right;
/// below its free tries it is unlocked again.
pub fn give_back(
    conn: &mut DbConn,
    subject: &Subject,
    now: PrimitiveDateTime,
) -> Result<(), DbError> {
    let (key, free) = (subject.key.as_str(), subject.free_tries);
    {
        diesel::update(lf::table.find(key))
            .filter(lf::failures.gt(0))
            .set(lf::failures.eq(lf::failures - 1))
            .execute(conn)?;
        diesel::update(lf::table.find(key))
            .filter(lf::failures.lt(free))
            .filter(lf::locked_until.gt(now))
            .set(lf::locked_until.eq(unlocked()))
            .execute(conn)?;
        Ok(())
    }
}

/// Forgets subjects whose last try is older than `forget_before` and that
/// are not locked; returns how many.
pub fn purge_expired(
    conn: &mut DbConn,
    now: PrimitiveDateTime,
    forget_before: PrimitiveDateTime,
) -> Result<usize, DbError> {
    Ok(diesel::delete(
        lf::table
            .filter(lf::last_failure.lt(forget_before))
            .filter(lf::locked_until.le(now)),
    )
    .execute(conn)?)
}

/// `locked_until` of a subject that is not locked: long past. Never "now":
/// a reservation stamped a moment earlier, running just after, would take
/// that for a lock.
fn unlocked() -> PrimitiveDateTime {
    let epoch = time::OffsetDateTime::UNIX_EPOCH;
    PrimitiveDateTime::new(epoch.date(), epoch.time())
}

/// Forgets every try against `subject` (an account whose password was right).
pub fn forget(conn: &mut DbConn, subject: &str) -> Result<(), DbError> {
    diesel::delete(lf::table.find(subject)).execute(conn)?;
    Ok(())
}

//! Queries on `login_failures`: counts of failed password attempts.

use diesel::dsl::max;
use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::login_failures as lf;
use super::{DbConn, DbError};

/// The latest time until which any of `subjects` is locked, if one is locked now.
pub fn locked_until(
    conn: &mut DbConn,
    subjects: &[String],
    now: PrimitiveDateTime,
) -> Result<Option<PrimitiveDateTime>, DbError> {
    on_backend!(conn, |conn| {
        Ok(lf::table
            .filter(lf::subject.eq_any(subjects))
            .filter(lf::locked_until.gt(now))
            .select(max(lf::locked_until))
            .get_result(conn)?)
    })
}

/// Counts one more failure for `subject` and returns the new count. Failures
/// older than `forget_before` are forgotten first.
pub fn count_failure(
    conn: &mut DbConn,
    subject: &str,
    now: PrimitiveDateTime,
    forget_before: PrimitiveDateTime,
) -> Result<i32, DbError> {
    on_backend!(conn, |conn| {
        conn.transaction(|conn| {
            diesel::delete(lf::table.find(subject))
                .filter(lf::last_failure.lt(forget_before))
                .filter(lf::locked_until.le(now))
                .execute(conn)?;
            // An atomic increment: concurrent failures are all counted.
            let updated = diesel::update(lf::table.find(subject))
                .set((lf::failures.eq(lf::failures + 1), lf::last_failure.eq(now)))
                .execute(conn)?;
            if updated == 0 {
                diesel::insert_into(lf::table)
                    .values((
                        lf::subject.eq(subject),
                        lf::failures.eq(1),
                        lf::last_failure.eq(now),
                        lf::locked_until.eq(now),
                    ))
                    .execute(conn)?;
            }
            Ok(lf::table
                .find(subject)
                .select(lf::failures)
                .get_result(conn)?)
        })
    })
}

pub fn lock(conn: &mut DbConn, subject: &str, until: PrimitiveDateTime) -> Result<(), DbError> {
    on_backend!(conn, |conn| {
        diesel::update(lf::table.find(subject))
            .set(lf::locked_until.eq(until))
            .execute(conn)?;
        Ok(())
    })
}

pub fn forget(conn: &mut DbConn, subject: &str) -> Result<(), DbError> {
    on_backend!(conn, |conn| {
        diesel::delete(lf::table.find(subject)).execute(conn)?;
        Ok(())
    })
}

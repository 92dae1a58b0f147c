//! Queries on `sessions`, the server-side session state.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::sessions;
use super::{DbConn, DbError};

/// The state stored under `id`, unless it has expired.
pub fn load(
    conn: &mut DbConn,
    id: &str,
    now: PrimitiveDateTime,
) -> Result<Option<String>, DbError> {
    Ok(sessions::table
        .find(id)
        .filter(sessions::expires_at.gt(now))
        .select(sessions::state)
        .get_result(conn)
        .optional()?)
}

pub fn insert(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    expires_at: PrimitiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::state.eq(state),
            sessions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Replaces the state of a live session; `false` when there is none to replace
/// (it expired or was logged out meanwhile).
pub fn update(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    expires_at: PrimitiveDateTime,
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let changed = diesel::update(
        sessions::table
            .find(id)
            .filter(sessions::expires_at.gt(now)),
    )
    .set((
        sessions::state.eq(state),
        sessions::expires_at.eq(expires_at),
    ))
    .execute(conn)?;
    Ok(changed == 1)
}

pub fn touch(conn: &mut DbConn, id: &str, expires_at: PrimitiveDateTime) -> Result<(), DbError> {
    diesel::update(sessions::table.find(id))
        .set(sessions::expires_at.eq(expires_at))
        .execute(conn)?;
    Ok(())
}

pub fn delete(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
    diesel::delete(sessions::table.find(id)).execute(conn)?;
    Ok(())
}

/// Removes expired sessions; returns how many.
pub fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(sessions::table.filter(sessions::expires_at.le(now))).execute(conn)?)
}

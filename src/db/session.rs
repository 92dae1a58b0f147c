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

/// Whose session a row is, and its handle in the account centre: copied
/// from the state, so that a user's sessions can be listed and ended.
#[derive(Debug, Clone, Copy, Default)]
pub struct Owner<'a> {
    pub user_id: Option<i64>,
    pub handle: Option<&'a str>,
}

/// A live session of a user, as the account centre lists it.
#[derive(Debug, Clone, Queryable)]
pub struct UserSessionRow {
    pub handle: Option<String>,
    pub state: String,
    pub expires_at: PrimitiveDateTime,
}

pub fn insert(
    conn: &mut DbConn,
    id: &str,
    state: &str,
    owner: Owner<'_>,
    expires_at: PrimitiveDateTime,
) -> Result<(), DbError> {
    diesel::insert_into(sessions::table)
        .values((
            sessions::id.eq(id),
            sessions::state.eq(state),
            sessions::expires_at.eq(expires_at),
            sessions::user_id.eq(owner.user_id),
            sessions::handle.eq(owner.handle),
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
    owner: Owner<'_>,
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
        sessions::user_id.eq(owner.user_id),
        sessions::handle.eq(owner.handle),
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

/// The live sessions of `user_id`, the longest-lived first.
pub fn of_user(
    conn: &mut DbConn,
    user_id: i64,
    now: PrimitiveDateTime,
) -> Result<Vec<UserSessionRow>, DbError> {
    Ok(sessions::table
        .filter(sessions::user_id.eq(user_id))
        .filter(sessions::expires_at.gt(now))
        .order(sessions::expires_at.desc())
        .select((sessions::handle, sessions::state, sessions::expires_at))
        .load(conn)?)
}

/// Ends the session `handle` of `user_id`; returns whether there was one.
pub fn end_one(conn: &mut DbConn, user_id: i64, handle: &str) -> Result<bool, DbError> {
    Ok(diesel::delete(
        sessions::table
            .filter(sessions::user_id.eq(user_id))
            .filter(sessions::handle.eq(handle)),
    )
    .execute(conn)?
        > 0)
}

/// Ends every session of `user_id` but the one with handle `keep` (all of
/// them without one); returns how many.
pub fn end_all(conn: &mut DbConn, user_id: i64, keep: Option<&str>) -> Result<usize, DbError> {
    let of_user = sessions::table.filter(sessions::user_id.eq(user_id));
    Ok(match keep {
        Some(keep) => {
            diesel::delete(of_user.filter(sessions::handle.ne(keep).or(sessions::handle.is_null())))
                .execute(conn)?
        }
        None => diesel::delete(of_user).execute(conn)?,
    })
}

/// How many sessions are live now.
pub fn count_live(conn: &mut DbConn, now: PrimitiveDateTime) -> Result<i64, DbError> {
    Ok(sessions::table
        .filter(sessions::expires_at.gt(now))
        .count()
        .get_result(conn)?)
}

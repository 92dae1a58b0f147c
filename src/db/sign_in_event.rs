//! Queries on `sign_in_events`: logins, binds and account changes.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::sign_in_events as ev;
use super::{DbConn, DbError};

/// A row to write.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ev)]
pub struct NewEvent {
    pub user_id: Option<i64>,
    pub at: PrimitiveDateTime,
    pub kind: &'static str,
    pub method: Option<&'static str>,
    pub outcome: &'static str,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// A row as read back.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ev)]
pub struct StoredEvent {
    pub user_id: Option<i64>,
    pub at: PrimitiveDateTime,
    pub kind: String,
    pub method: Option<String>,
    pub outcome: String,
    pub address: Option<String>,
    pub user_agent: Option<String>,
}

/// Writes `events`; call it in a transaction, so that a batch is one commit.
/// One statement a row: a multi-row insert did not pay for its match on the
/// backend (BENCHMARKS.md, "Tried and not kept").
pub fn insert_all(conn: &mut DbConn, events: &[NewEvent]) -> Result<(), DbError> {
    for event in events {
        diesel::insert_into(ev::table).values(event).execute(conn)?;
    }
    Ok(())
}

/// The newest `limit` events of `user_id` of the `kinds`, newest first.
pub fn recent(
    conn: &mut DbConn,
    user_id: i64,
    kinds: &[&str],
    limit: i64,
) -> Result<Vec<StoredEvent>, DbError> {
    Ok(ev::table
        .filter(ev::user_id.eq(user_id))
        .filter(ev::kind.eq_any(kinds))
        .order((ev::at.desc(), ev::id.desc()))
        .limit(limit)
        .select(StoredEvent::as_select())
        .load(conn)?)
}

/// Every event of `user_id`, newest first (the operators' and the tests' view).
pub fn of_user(conn: &mut DbConn, user_id: i64) -> Result<Vec<StoredEvent>, DbError> {
    Ok(ev::table
        .filter(ev::user_id.eq(user_id))
        .order((ev::at.desc(), ev::id.desc()))
        .select(StoredEvent::as_select())
        .load(conn)?)
}

/// The newest `limit` events, of `user_id` and since `since` when given.
pub fn list(
    conn: &mut DbConn,
    user_id: Option<i64>,
    since: Option<PrimitiveDateTime>,
    limit: i64,
) -> Result<Vec<StoredEvent>, DbError> {
    let mut query = ev::table
        .order((ev::at.desc(), ev::id.desc()))
        .limit(limit)
        .select(StoredEvent::as_select())
        .into_boxed();
    if let Some(user_id) = user_id {
        query = query.filter(ev::user_id.eq(user_id));
    }
    if let Some(since) = since {
        query = query.filter(ev::at.ge(since));
    }
    Ok(query.load(conn)?)
}

/// Strips a deleted account's events of everything personal: they stay as
/// counts of what happened, tied to nobody.
pub fn forget_user(conn: &mut DbConn, user_id: i64) -> Result<usize, DbError> {
    Ok(diesel::update(ev::table.filter(ev::user_id.eq(user_id)))
        .set((
            ev::user_id.eq(None::<i64>),
            ev::address.eq(None::<String>),
            ev::user_agent.eq(None::<String>),
        ))
        .execute(conn)?)
}

/// Removes events older than `before`; returns how many.
pub fn purge_before(conn: &mut DbConn, before: PrimitiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(ev::table.filter(ev::at.lt(before))).execute(conn)?)
}

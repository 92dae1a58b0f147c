//! Queries on `used_oauth_states`: the server's memory of which QQ login
//! `state`s have come back, so that each is good for one callback, and of
//! which bind tokens a bind has used up.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::used_oauth_states;
use super::{DbConn, DbError};

/// Marks the state keyed `state_hash` ([`crate::secret::db_key`]: its time
/// and SHA-256) used, remembered until `expires_at`; `false` when it
/// already was (the unique key decides, so two callbacks at once cannot both win).
pub fn use_once(
    conn: &mut DbConn,
    state_hash: &str,
    expires_at: PrimitiveDateTime,
) -> Result<bool, DbError> {
    // DO NOTHING rather than catching the violation: inside a transaction
    // (a bind's) PostgreSQL would abort the whole transaction on it. The
    // upsert's SQL is the backend's own, so it runs on the backend's connection.
    let insert = diesel::insert_into(used_oauth_states::table).values((
        used_oauth_states::state_hash.eq(state_hash),
        used_oauth_states::expires_at.eq(expires_at),
    ));
    let inserted = match conn {
        DbConn::Sqlite(c) => insert.on_conflict_do_nothing().execute(c)?,
        DbConn::Postgres(c) => insert.on_conflict_do_nothing().execute(c)?,
    };
    Ok(inserted == 1)
}

/// Whether the state or bind token keyed `key` has been used.
pub fn is_used(conn: &mut DbConn, key: &str) -> Result<bool, DbError> {
    Ok(diesel::select(diesel::dsl::exists(
        used_oauth_states::table.filter(used_oauth_states::state_hash.eq(key)),
    ))
    .get_result(conn)?)
}

/// Forgets states (and bind tokens) past their expiry, those of `lifetime`
/// (their logins could not finish anyway); returns how many.
///
/// A state's key begins with the time its login began, and a state is
/// remembered for at most two lifetimes after that (used within one, kept
/// for one more), so the expired rows are among the keys before
/// [`begun_before`]: a range of the primary key, which every login appends
/// to anyway, instead of an index on `expires_at` that every login would
/// also have to update. The expiry is still what decides. States keyed by
/// their plain hash (made before the time prefix) are found through a
/// partial index of their own.
pub fn purge_expired(
    conn: &mut DbConn,
    now: PrimitiveDateTime,
    lifetime: time::Duration,
) -> Result<usize, DbError> {
    let before = begun_before(now, lifetime);
    {
        let old = diesel::delete(
            used_oauth_states::table
                .filter(used_oauth_states::state_hash.lt(&before))
                .filter(used_oauth_states::expires_at.le(now)),
        )
        .execute(conn)?;
        let unprefixed = diesel::delete(
            used_oauth_states::table
                // Word for word the partial index's condition, so that the
                // planners see it applies (a bound pattern would not match).
                .filter(diesel::dsl::sql::<diesel::sql_types::Bool>(
                    "state_hash NOT LIKE '____________.%'",
                ))
                .filter(used_oauth_states::expires_at.le(now)),
        )
        .execute(conn)?;
        Ok(old + unprefixed)
    }
}

/// The key below which every state's login began more than two lifetimes
/// before `now` ([`crate::secret::db_key`]'s time prefix).
fn begun_before(now: PrimitiveDateTime, lifetime: time::Duration) -> String {
    let lifetimes = lifetime * 2;
    let millis = now
        .assume_utc()
        .saturating_sub(lifetimes)
        .unix_timestamp_nanos()
        / 1_000_000;
    format!("{:012x}", millis.max(0))
}

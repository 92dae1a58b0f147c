//! Queries on `used_oauth_states`: the server's memory of which QQ login
//! `state`s have come back, so that each is good for one callback.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::used_oauth_states;
use super::{DbConn, DbError};

/// Marks the state keyed `state_hash` ([`crate::session::db_key`]: its time
/// and SHA-256) used, remembered until `expires_at`; `false` when it
/// already was (the unique key decides, so two callbacks at once cannot both win).
pub fn use_once(
    conn: &mut DbConn,
    state_hash: &str,
    expires_at: PrimitiveDateTime,
) -> Result<bool, DbError> {
    on_backend!(conn, |conn| {
        let inserted = diesel::insert_into(used_oauth_states::table)
            .values((
                used_oauth_states::state_hash.eq(state_hash),
                used_oauth_states::expires_at.eq(expires_at),
            ))
            .execute(conn)
            .map_err(DbError::from);
        match inserted {
            Ok(_) => Ok(true),
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    })
}

/// Forgets states past their expiry (their logins could not finish anyway); returns how many.
pub fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> Result<usize, DbError> {
    on_backend!(conn, |conn| {
        Ok(
            diesel::delete(used_oauth_states::table.filter(used_oauth_states::expires_at.le(now)))
                .execute(conn)?,
        )
    })
}

//! Queries on `qq_links`, the table that ties a QQ openid to a user.

use diesel::prelude::*;

use super::schema::qq_links;
use super::{DbConn, DbError, now};

/// Links `openid` to `user_id`. Fails with a unique violation when either side
/// is already linked (see the constraints in the migration).
pub fn insert(conn: &mut DbConn, app_id: &str, openid: &str, user_id: i64) -> Result<(), DbError> {
    let at = now();
    diesel::insert_into(qq_links::table)
        .values((
            qq_links::app_id.eq(app_id),
            qq_links::openid.eq(openid),
            qq_links::user_id.eq(user_id),
            qq_links::created_at.eq(at),
            qq_links::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

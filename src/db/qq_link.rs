//! Queries on `qq_links`, the table that ties a QQ openid to a user.

use diesel::prelude::*;

use super::schema::qq_links;
use super::{DbConn, DbError, now};

/// Links `openid` (and its unionid, when known) to `user_id`. Fails with a
/// unique violation when either side is already linked (see the constraints
/// in the migration).
pub fn insert(
    conn: &mut DbConn,
    app_id: &str,
    openid: &str,
    unionid: Option<&str>,
    user_id: i64,
) -> Result<(), DbError> {
    let at = now();
    diesel::insert_into(qq_links::table)
        .values((
            qq_links::app_id.eq(app_id),
            qq_links::openid.eq(openid),
            qq_links::unionid.eq(unionid),
            qq_links::user_id.eq(user_id),
            qq_links::created_at.eq(at),
            qq_links::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// Gives a link made by openid alone its unionid (once: a link that has one keeps it).
pub fn add_unionid(
    conn: &mut DbConn,
    app_id: &str,
    openid: &str,
    unionid: &str,
) -> Result<(), DbError> {
    diesel::update(
        qq_links::table
            .filter(qq_links::app_id.eq(app_id))
            .filter(qq_links::openid.eq(openid))
            .filter(qq_links::unionid.is_null()),
    )
    .set((
        qq_links::unionid.eq(unionid),
        qq_links::updated_at.eq(now()),
    ))
    .execute(conn)?;
    Ok(())
}

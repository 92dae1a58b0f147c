//! Queries on `qq_links`, the table that ties a QQ openid to a user.

use diesel::prelude::*;

use time::PrimitiveDateTime;

use super::schema::qq_links;
use super::{DbConn, DbError, now};

/// A QQ account to link: who, and its face as QQ showed it.
#[derive(Debug, Clone, Copy)]
pub struct NewLink<'a> {
    pub app_id: &'a str,
    pub openid: &'a str,
    pub unionid: Option<&'a str>,
    pub nickname: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
}

/// A user's QQ link, as the account centre shows it.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = qq_links)]
pub struct Link {
    pub openid: String,
    pub nickname: Option<String>,
    pub avatar_url: Option<String>,
    pub created_at: PrimitiveDateTime,
}

/// Links `link` to `user_id`. Fails with a unique violation when either side
/// is already linked (see the constraints in the migration).
pub fn insert(conn: &mut DbConn, link: NewLink<'_>, user_id: i64) -> Result<(), DbError> {
    let at = now();
    diesel::insert_into(qq_links::table)
        .values((
            qq_links::app_id.eq(link.app_id),
            qq_links::openid.eq(link.openid),
            qq_links::unionid.eq(link.unionid),
            qq_links::user_id.eq(user_id),
            qq_links::nickname.eq(link.nickname),
            qq_links::avatar_url.eq(link.avatar_url),
            qq_links::profile_at.eq(Some(at)),
            qq_links::created_at.eq(at),
            qq_links::updated_at.eq(at),
        ))
        .execute(conn)?;
    Ok(())
}

/// The QQ link of `user_id` for `app_id`, if any.
pub fn of_user(conn: &mut DbConn, app_id: &str, user_id: i64) -> Result<Option<Link>, DbError> {
    Ok(qq_links::table
        .filter(qq_links::app_id.eq(app_id))
        .filter(qq_links::user_id.eq(user_id))
        .select(Link::as_select())
        .get_result(conn)
        .optional()?)
}

/// Removes the QQ link of `user_id` for `app_id`; returns whether there was one.
pub fn delete_of_user(conn: &mut DbConn, app_id: &str, user_id: i64) -> Result<bool, DbError> {
    Ok(diesel::delete(
        qq_links::table
            .filter(qq_links::app_id.eq(app_id))
            .filter(qq_links::user_id.eq(user_id)),
    )
    .execute(conn)?
        > 0)
}

/// Stores the QQ account's nickname and avatar as QQ shows them now.
pub fn set_profile(
    conn: &mut DbConn,
    app_id: &str,
    openid: &str,
    nickname: Option<&str>,
    avatar_url: Option<&str>,
) -> Result<(), DbError> {
    let at = now();
    diesel::update(
        qq_links::table
            .filter(qq_links::app_id.eq(app_id))
            .filter(qq_links::openid.eq(openid)),
    )
    .set((
        qq_links::nickname.eq(nickname),
        qq_links::avatar_url.eq(avatar_url),
        qq_links::profile_at.eq(Some(at)),
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

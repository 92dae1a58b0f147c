//! Queries on the links that tie a QQ openid to a user: the service's own
//! `qq_links`, or the Django site's `tb_oauth_qq` when it shares its tables
//! ([`shared`]; that table knows one QQ app, so `app_id` is not asked there).

use diesel::prelude::*;

use time::PrimitiveDateTime;

use super::schema::qq_links;
use super::{Conn, DbConn, DbError, now, shared_tables as shared};
use crate::config::UserTables;

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

/// Links `link` to `user_id`, in the caller's transaction. Fails with a
/// unique violation when either side is already linked (see the constraints
/// in the migration).
pub fn insert(conn: &mut Conn<'_>, link: NewLink<'_>, user_id: i64) -> Result<(), DbError> {
    if conn.tables() == UserTables::Django {
        return shared::insert_link(conn, link, user_id);
    }
    let conn: &mut DbConn = conn;
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
pub fn of_user(conn: &mut Conn<'_>, app_id: &str, user_id: i64) -> Result<Option<Link>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::link_of_user(conn, user_id);
    }
    let conn: &mut DbConn = conn;
    Ok(qq_links::table
        .filter(qq_links::app_id.eq(app_id))
        .filter(qq_links::user_id.eq(user_id))
        .select(Link::as_select())
        .get_result(conn)
        .optional()?)
}

/// Removes the QQ link of `user_id` for `app_id`; returns whether there was one.
pub fn delete_of_user(conn: &mut Conn<'_>, app_id: &str, user_id: i64) -> Result<bool, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::delete_links_of_user(conn, user_id);
    }
    let conn: &mut DbConn = conn;
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
    conn: &mut Conn<'_>,
    app_id: &str,
    openid: &str,
    nickname: Option<&str>,
    avatar_url: Option<&str>,
) -> Result<(), DbError> {
    if conn.tables() == UserTables::Django {
        return shared::set_face(conn, openid, nickname, avatar_url);
    }
    let conn: &mut DbConn = conn;
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
    conn: &mut Conn<'_>,
    app_id: &str,
    openid: &str,
    unionid: &str,
) -> Result<(), DbError> {
    if conn.tables() == UserTables::Django {
        return shared::add_unionid(conn, openid, unionid);
    }
    let conn: &mut DbConn = conn;
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

//! Queries on `users`.

use diesel::prelude::*;

use super::schema::{qq_links, users};
use super::{DbConn, DbError, now};

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub mobile: String,
    pub password_hash: String,
}

/// A user found by mobile, with the openid its account is linked to for an app (if any).
pub type UserWithLink = (User, Option<String>);

pub fn find_by_id(conn: &mut DbConn, id: i64) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// The user that the QQ account `openid` of `app_id` is linked to: one round trip.
pub fn find_by_openid(
    conn: &mut DbConn,
    app_id: &str,
    openid: &str,
) -> Result<Option<User>, DbError> {
    Ok(qq_links::table
        .inner_join(users::table)
        .filter(qq_links::app_id.eq(app_id))
        .filter(qq_links::openid.eq(openid))
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// The user a link with this unionid belongs to, made by any of the
/// developer's QQ apps.
pub fn find_by_unionid(conn: &mut DbConn, unionid: &str) -> Result<Option<User>, DbError> {
    Ok(qq_links::table
        .inner_join(users::table)
        .filter(qq_links::unionid.eq(unionid))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The user with this mobile, with its QQ link for `app_id`.
pub fn find_by_mobile_with_link(
    conn: &mut DbConn,
    app_id: &str,
    mobile: &str,
) -> Result<Option<UserWithLink>, DbError> {
    Ok(users::table
        .left_join(
            qq_links::table.on(qq_links::user_id
                .eq(users::id)
                .and(qq_links::app_id.eq(app_id))),
        )
        .filter(users::mobile.eq(mobile))
        .select((User::as_select(), qq_links::openid.nullable()))
        .get_result(conn)
        .optional()?)
}

/// The user whose user name or mobile is `login` (the password form accepts either).
pub fn find_by_login(conn: &mut DbConn, login: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::username.eq(login).or(users::mobile.eq(login)))
        .order(users::id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Inserts a user whose user name is its mobile. Call it inside a transaction:
/// the new row is read back by its unique mobile (diesel offers RETURNING on
/// SQLite only behind a feature for SQLite ≥ 3.35, not enabled here).
pub fn insert(conn: &mut DbConn, mobile: &str, password_hash: &str) -> Result<User, DbError> {
    let at = now();
    diesel::insert_into(users::table)
        .values((
            users::username.eq(mobile),
            users::mobile.eq(mobile),
            users::password_hash.eq(password_hash),
            users::created_at.eq(at),
            users::updated_at.eq(at),
            // Accounts are made only by the bind form, which says what is
            // stored and links the privacy notice: submitting it is consent.
            users::consented_at.eq(Some(at)),
        ))
        .execute(conn)?;
    Ok(users::table
        .filter(users::mobile.eq(mobile))
        .select(User::as_select())
        .get_result(conn)?)
}

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
    on_backend!(conn, |conn| {
        Ok(users::table
            .find(id)
            .select(User::as_select())
            .get_result(conn)
            .optional()?)
    })
}

/// The user that the QQ account `openid` of `app_id` is linked to: one round trip.
pub fn find_by_openid(
    conn: &mut DbConn,
    app_id: &str,
    openid: &str,
) -> Result<Option<User>, DbError> {
    on_backend!(conn, |conn| {
        Ok(qq_links::table
            .inner_join(users::table)
            .filter(qq_links::app_id.eq(app_id))
            .filter(qq_links::openid.eq(openid))
            .select(User::as_select())
            .get_result(conn)
            .optional()?)
    })
}

/// The users that the QQ accounts `openids` of `app_id` are linked to, with
/// their openids: one query for any number on PostgreSQL (`= ANY`), one per
/// [`LOOKUP_ARITY`] openids on SQLite (those not linked are absent).
pub fn find_by_openids(
    conn: &mut DbConn,
    app_id: &str,
    openids: &[String],
) -> Result<Vec<(String, User)>, DbError> {
    // One openid (an idle service) takes the statement SQLite keeps prepared.
    if let [openid] = openids {
        let found = find_by_openid(conn, app_id, openid)?;
        return Ok(found
            .map(|user| (openid.clone(), user))
            .into_iter()
            .collect());
    }
    match conn {
        DbConn::Postgres(conn) => Ok(qq_links::table
            .inner_join(users::table)
            .filter(qq_links::app_id.eq(app_id))
            .filter(qq_links::openid.eq_any(openids))
            .select((qq_links::openid, User::as_select()))
            .load(conn)?),
        DbConn::Sqlite(conn) => {
            let mut found = Vec::with_capacity(openids.len());
            for chunk in openids.chunks(LOOKUP_ARITY) {
                found.extend(find_up_to_eight(conn, app_id, chunk)?);
            }
            Ok(found)
        }
    }
}

/// How many openids one SQLite look-up asks for.
///
/// SQLite prepares an `IN (…)` of bound values afresh on every execution
/// (diesel cannot cache a statement whose number of binds varies), and the
/// preparation costs more than the look-up. A fixed `openid = ? OR …` of
/// eight is one statement, prepared once and kept; SQLite runs it as an `IN`
/// over the unique index. Shorter lists repeat their last openid.
pub const LOOKUP_ARITY: usize = 8;
const _: () = assert!(LOOKUP_ARITY == 8, "find_up_to_eight's OR has eight terms");

fn find_up_to_eight(
    conn: &mut diesel::SqliteConnection,
    app_id: &str,
    openids: &[String],
) -> Result<Vec<(String, User)>, DbError> {
    let Some(last) = openids.last() else {
        return Ok(Vec::new());
    };
    let key = |i: usize| qq_links::openid.eq(openids.get(i).unwrap_or(last));
    let any_of_eight = key(0)
        .or(key(1))
        .or(key(2))
        .or(key(3))
        .or(key(4))
        .or(key(5))
        .or(key(6))
        .or(key(7));
    Ok(qq_links::table
        .inner_join(users::table)
        .filter(qq_links::app_id.eq(app_id))
        .filter(any_of_eight)
        .select((qq_links::openid, User::as_select()))
        .load(conn)?)
}

/// The user with this mobile, with its QQ link for `app_id`.
pub fn find_by_mobile_with_link(
    conn: &mut DbConn,
    app_id: &str,
    mobile: &str,
) -> Result<Option<UserWithLink>, DbError> {
    on_backend!(conn, |conn| {
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
    })
}

/// The user whose user name or mobile is `login` (the password form accepts either).
pub fn find_by_login(conn: &mut DbConn, login: &str) -> Result<Option<User>, DbError> {
    on_backend!(conn, |conn| {
        Ok(users::table
            .filter(users::username.eq(login).or(users::mobile.eq(login)))
            .order(users::id)
            .select(User::as_select())
            .first(conn)
            .optional()?)
    })
}

/// Inserts a user whose user name is its mobile. Call it inside a transaction:
/// the new row is read back by its unique mobile (diesel offers RETURNING on
/// SQLite only behind a feature for SQLite ≥ 3.35, not enabled here).
pub fn insert(conn: &mut DbConn, mobile: &str, password_hash: &str) -> Result<User, DbError> {
    on_backend!(conn, |conn| {
        let at = now();
        diesel::insert_into(users::table)
            .values((
                users::username.eq(mobile),
                users::mobile.eq(mobile),
                users::password_hash.eq(password_hash),
                users::created_at.eq(at),
                users::updated_at.eq(at),
            ))
            .execute(conn)?;
        Ok(users::table
            .filter(users::mobile.eq(mobile))
            .select(User::as_select())
            .get_result(conn)?)
    })
}

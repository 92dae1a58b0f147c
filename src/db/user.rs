//! Queries on the users: the service's own `users`, or the Django site's
//! `tb_users` when it shares them ([`shared`]).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{qq_links, users};
use super::{Conn, DbConn, DbError, now, shared_tables as shared};
use crate::config::UserTables;

/// A row of `users`.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: i64,
    pub username: String,
    pub mobile: String,
    pub password_hash: String,
    /// `false`: the account may not log in (Django's `is_active`).
    pub is_active: bool,
}

impl User {
    /// Whether the account can be entered with a password at all: accounts
    /// brought over without one carry an unusable hash (Django marks those
    /// with a leading `!`).
    pub fn has_usable_password(&self) -> bool {
        !self.password_hash.is_empty() && !self.password_hash.starts_with('!')
    }

    /// The hash to check a typed password against: none for an account
    /// without a usable password, which no password opens (the hasher then
    /// checks against its dummy hash, in the same time, and says no; an
    /// unusable hash given to it is an error, not a wrong password).
    pub fn usable_password_hash(&self) -> Option<String> {
        self.has_usable_password()
            .then(|| self.password_hash.clone())
    }
}

/// A user found by mobile, with the openid its account is linked to for an app (if any).
pub type UserWithLink = (User, Option<String>);

/// A user found by a QQ link, with when the link's QQ profile was last stored.
pub type LinkedUser = (User, Option<PrimitiveDateTime>);

pub fn find_by_id(conn: &mut Conn<'_>, id: i64) -> Result<Option<User>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::find_by_id(conn, id);
    }
    let conn: &mut DbConn = conn;
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// The user that the QQ account `openid` of `app_id` is linked to: one round trip.
pub fn find_by_openid(
    conn: &mut Conn<'_>,
    app_id: &str,
    openid: &str,
) -> Result<Option<LinkedUser>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::find_by_openid(conn, openid);
    }
    let conn: &mut DbConn = conn;
    Ok(qq_links::table
        .inner_join(users::table)
        .filter(qq_links::app_id.eq(app_id))
        .filter(qq_links::openid.eq(openid))
        .select((User::as_select(), qq_links::profile_at))
        .get_result(conn)
        .optional()?)
}

/// The user a link with this unionid belongs to, made by any of the
/// developer's QQ apps.
pub fn find_by_unionid(conn: &mut Conn<'_>, unionid: &str) -> Result<Option<LinkedUser>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::find_by_unionid(conn, unionid);
    }
    let conn: &mut DbConn = conn;
    Ok(qq_links::table
        .inner_join(users::table)
        .filter(qq_links::unionid.eq(unionid))
        .select((User::as_select(), qq_links::profile_at))
        .first(conn)
        .optional()?)
}

/// The user with this mobile, with its QQ link for `app_id`.
pub fn find_by_mobile_with_link(
    conn: &mut Conn<'_>,
    app_id: &str,
    mobile: &str,
) -> Result<Option<UserWithLink>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::find_by_mobile_with_link(conn, mobile);
    }
    let conn: &mut DbConn = conn;
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

pub fn find_by_mobile(conn: &mut Conn<'_>, mobile: &str) -> Result<Option<User>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::find_by_mobile(conn, mobile);
    }
    let conn: &mut DbConn = conn;
    Ok(users::table
        .filter(users::mobile.eq(mobile))
        .select(User::as_select())
        .get_result(conn)
        .optional()?)
}

/// The user whose user name or mobile is `login` (the password form accepts either).
pub fn find_by_login(conn: &mut Conn<'_>, login: &str) -> Result<Option<User>, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::find_by_login(conn, login);
    }
    let conn: &mut DbConn = conn;
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
pub fn insert(conn: &mut Conn<'_>, mobile: &str, password_hash: &str) -> Result<User, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::insert(conn, mobile, password_hash);
    }
    let conn: &mut DbConn = conn;
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

/// Sets a new password hash.
pub fn set_password_hash(conn: &mut Conn<'_>, user_id: i64, hash: &str) -> Result<(), DbError> {
    if conn.tables() == UserTables::Django {
        return shared::set_password_hash(conn, user_id, hash);
    }
    let conn: &mut DbConn = conn;
    diesel::update(users::table.find(user_id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(())
}

/// Moves the account to a new mobile; a user name that was the old mobile
/// follows it, so that the old number can make an account of its own. Fails
/// with a unique violation when the new mobile is taken.
pub fn set_mobile(conn: &mut Conn<'_>, user: &User, mobile: &str) -> Result<(), DbError> {
    let username = if user.username == user.mobile {
        mobile
    } else {
        user.username.as_str()
    };
    if conn.tables() == UserTables::Django {
        return shared::set_mobile(conn, user.id, mobile, username);
    }
    diesel::update(users::table.find(user.id))
        .set((
            users::mobile.eq(mobile),
            users::username.eq(username),
            users::updated_at.eq(now()),
        ))
        .execute(&mut **conn)?;
    Ok(())
}

/// Deletes the user; its QQ links go with it (`ON DELETE CASCADE`).
pub fn delete(conn: &mut Conn<'_>, user_id: i64) -> Result<bool, DbError> {
    if conn.tables() == UserTables::Django {
        return shared::delete(conn, user_id);
    }
    let conn: &mut DbConn = conn;
    Ok(diesel::delete(users::table.find(user_id)).execute(conn)? > 0)
}

/// Users by id, those whose user name or mobile contains `search` when given.
pub fn list(conn: &mut Conn<'_>, search: Option<&str>, limit: i64) -> Result<Vec<User>, DbError> {
    // LIKE's own wildcards in the search are meant literally.
    let pattern = search.map(|search| {
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        format!("%{escaped}%")
    });
    if conn.tables() == UserTables::Django {
        return shared::list(conn, pattern.as_deref(), limit);
    }
    let mut query = users::table
        .order(users::id)
        .limit(limit)
        .select(User::as_select())
        .into_boxed();
    if let Some(pattern) = pattern {
        query = query.filter(
            users::username
                .like(pattern.clone())
                .escape('\\')
                .or(users::mobile.like(pattern).escape('\\')),
        );
    }
    Ok(query.load(&mut **conn)?)
}

/// The user an operator names: by id, else by user name or mobile.
pub fn find_by_reference(conn: &mut Conn<'_>, reference: &str) -> Result<Option<User>, DbError> {
    if let Ok(id) = reference.parse::<i64>()
        && let Some(user) = find_by_id(conn, id)?
    {
        return Ok(Some(user));
    }
    find_by_login(conn, reference)
}

/// Lets the user log in (`true`) or not.
pub fn set_active(conn: &mut Conn<'_>, user_id: i64, active: bool) -> Result<(), DbError> {
    if conn.tables() == UserTables::Django {
        return shared::set_active(conn, user_id, active);
    }
    let conn: &mut DbConn = conn;
    diesel::update(users::table.find(user_id))
        .set((users::is_active.eq(active), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(())
}

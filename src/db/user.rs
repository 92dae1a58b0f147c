//! Queries on `users`.

use diesel::prelude::*;
use time::PrimitiveDateTime;

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
) -> Result<Option<LinkedUser>, DbError> {
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
pub fn find_by_unionid(conn: &mut DbConn, unionid: &str) -> Result<Option<LinkedUser>, DbError> {
    Ok(qq_links::table
        .inner_join(users::table)
        .filter(qq_links::unionid.eq(unionid))
        .select((User::as_select(), qq_links::profile_at))
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

pub fn find_by_mobile(conn: &mut DbConn, mobile: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .filter(users::mobile.eq(mobile))
        .select(User::as_select())
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

/// Sets a new password hash.
pub fn set_password_hash(conn: &mut DbConn, user_id: i64, hash: &str) -> Result<(), DbError> {
    diesel::update(users::table.find(user_id))
        .set((users::password_hash.eq(hash), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(())
}

/// Moves the account to a new mobile; a user name that was the old mobile
/// follows it, so that the old number can make an account of its own. Fails
/// with a unique violation when the new mobile is taken.
pub fn set_mobile(conn: &mut DbConn, user: &User, mobile: &str) -> Result<(), DbError> {
    let username = if user.username == user.mobile {
        mobile
    } else {
        user.username.as_str()
    };
    diesel::update(users::table.find(user.id))
        .set((
            users::mobile.eq(mobile),
            users::username.eq(username),
            users::updated_at.eq(now()),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes the user; its QQ links go with it (`ON DELETE CASCADE`).
pub fn delete(conn: &mut DbConn, user_id: i64) -> Result<bool, DbError> {
    Ok(diesel::delete(users::table.find(user_id)).execute(conn)? > 0)
}

/// Users by id, those whose user name or mobile contains `search` when given.
pub fn list(conn: &mut DbConn, search: Option<&str>, limit: i64) -> Result<Vec<User>, DbError> {
    let mut query = users::table
        .order(users::id)
        .limit(limit)
        .select(User::as_select())
        .into_boxed();
    if let Some(search) = search {
        // LIKE's own wildcards in the search are meant literally.
        let escaped = search
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        let pattern = format!("%{escaped}%");
        query = query.filter(
            users::username
                .like(pattern.clone())
                .escape('\\')
                .or(users::mobile.like(pattern).escape('\\')),
        );
    }
    Ok(query.load(conn)?)
}

/// The user an operator names: by id, else by user name or mobile.
pub fn find_by_reference(conn: &mut DbConn, reference: &str) -> Result<Option<User>, DbError> {
    if let Ok(id) = reference.parse::<i64>()
        && let Some(user) = find_by_id(conn, id)?
    {
        return Ok(Some(user));
    }
    find_by_login(conn, reference)
}

/// Lets the user log in (`true`) or not.
pub fn set_active(conn: &mut DbConn, user_id: i64, active: bool) -> Result<(), DbError> {
    diesel::update(users::table.find(user_id))
        .set((users::is_active.eq(active), users::updated_at.eq(now())))
        .execute(conn)?;
    Ok(())
}

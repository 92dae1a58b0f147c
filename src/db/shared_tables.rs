//! The Django site's own `tb_users` and `tb_oauth_qq`, shared with the site
//! (`QQLOGIN_USER_TABLES=django`; their layout: ../shared/django_site.md).
//! [`super::user`] and [`super::qq_link`] come here in that mode, so that the
//! rest of the service sees the same [`User`] and [`Link`] either way.
//!
//! The service never alters these tables' definitions, and writes rows as
//! Django's ORM would: every column Django declares NOT NULL gets Django's
//! default. What Django's tables cannot hold (a link's unionid and QQ face)
//! is kept beside them by openid, in the service's own `qq_profiles`.

use diesel::prelude::*;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use time::PrimitiveDateTime;

use super::qq_link::{Link, NewLink};
use super::schema::qq_profiles;
use super::user::{LinkedUser, User, UserWithLink};
use super::{DbConn, DbError, now};

diesel::table! {
    /// `users.User(AbstractUser)`: Django 1.11's AutoField ids are 32-bit.
    tb_users (id) {
        id -> Integer,
        password -> Text,
        last_login -> Nullable<Timestamp>,
        is_superuser -> Bool,
        username -> Text,
        first_name -> Text,
        last_name -> Text,
        email -> Text,
        is_staff -> Bool,
        is_active -> Bool,
        date_joined -> Timestamp,
        mobile -> Text,
        email_active -> Bool,
    }
}

diesel::table! {
    /// `oauth.OAuthQQUser`: its `openid` is indexed but not unique.
    tb_oauth_qq (id) {
        id -> Integer,
        create_time -> Timestamp,
        update_time -> Timestamp,
        user_id -> Integer,
        openid -> Text,
    }
}

diesel::joinable!(tb_oauth_qq -> tb_users (user_id));
diesel::allow_tables_to_appear_in_same_query!(tb_users, tb_oauth_qq, qq_profiles);

/// A row of `tb_users`, as far as the service reads it.
#[derive(Queryable, Selectable)]
#[diesel(table_name = tb_users)]
struct Row {
    id: i32,
    username: String,
    mobile: String,
    password: String,
    is_active: bool,
}

impl From<Row> for User {
    fn from(row: Row) -> Self {
        Self {
            id: i64::from(row.id),
            username: row.username,
            mobile: row.mobile,
            password_hash: row.password,
            is_active: row.is_active,
        }
    }
}

/// A user id as Django's column holds it; an id beyond it names nobody.
fn django_id(id: i64) -> Option<i32> {
    i32::try_from(id).ok()
}

/// Fails with a clear error when the database has no Django tables to share.
pub fn check_present(conn: &mut DbConn) -> Result<(), DbError> {
    for (table, probe) in [
        (
            "tb_users",
            tb_users::table
                .select(tb_users::id)
                .limit(0)
                .load::<i32>(conn),
        ),
        (
            "tb_oauth_qq",
            tb_oauth_qq::table
                .select(tb_oauth_qq::id)
                .limit(0)
                .load::<i32>(conn),
        ),
    ] {
        probe.map_err(|e| {
            DbError::Migration(format!(
                "QQLOGIN_USER_TABLES=django, but the Django site's {table} cannot be read: {e}"
            ))
        })?;
    }
    Ok(())
}

pub fn find_by_id(conn: &mut DbConn, id: i64) -> Result<Option<User>, DbError> {
    let Some(id) = django_id(id) else {
        return Ok(None);
    };
    Ok(tb_users::table
        .find(id)
        .select(Row::as_select())
        .get_result(conn)
        .optional()?
        .map(User::from))
}

/// The user a QQ account is linked to. The site may have linked one openid
/// to several users: then no one is chosen ([`DbError::LinkedTwice`]).
pub fn find_by_openid(conn: &mut DbConn, openid: &str) -> Result<Option<LinkedUser>, DbError> {
    let found: Vec<(Row, Option<PrimitiveDateTime>)> = tb_oauth_qq::table
        .inner_join(tb_users::table)
        .left_join(qq_profiles::table.on(qq_profiles::openid.eq(tb_oauth_qq::openid)))
        .filter(tb_oauth_qq::openid.eq(openid))
        .order(tb_oauth_qq::id)
        .select((Row::as_select(), qq_profiles::profile_at.nullable()))
        .load(conn)?;
    let mut found = found.into_iter();
    let Some((first, profile_at)) = found.next() else {
        return Ok(None);
    };
    if found.any(|(other, _)| other.id != first.id) {
        return Err(DbError::LinkedTwice);
    }
    Ok(Some((first.into(), profile_at)))
}

pub fn find_by_unionid(conn: &mut DbConn, unionid: &str) -> Result<Option<LinkedUser>, DbError> {
    let found: Option<(Row, Option<PrimitiveDateTime>)> = qq_profiles::table
        .inner_join(tb_oauth_qq::table.on(tb_oauth_qq::openid.eq(qq_profiles::openid)))
        .inner_join(tb_users::table.on(tb_users::id.eq(tb_oauth_qq::user_id)))
        .filter(qq_profiles::unionid.eq(unionid))
        .order(tb_oauth_qq::id)
        .select((Row::as_select(), qq_profiles::profile_at))
        .first(conn)
        .optional()?;
    Ok(found.map(|(row, at)| (row.into(), at)))
}

pub fn find_by_mobile_with_link(
    conn: &mut DbConn,
    mobile: &str,
) -> Result<Option<UserWithLink>, DbError> {
    let found: Option<(Row, Option<String>)> = tb_users::table
        .left_join(tb_oauth_qq::table)
        .filter(tb_users::mobile.eq(mobile))
        .order(tb_oauth_qq::id)
        .select((Row::as_select(), tb_oauth_qq::openid.nullable()))
        .first(conn)
        .optional()?;
    Ok(found.map(|(row, openid)| (row.into(), openid)))
}

pub fn find_by_mobile(conn: &mut DbConn, mobile: &str) -> Result<Option<User>, DbError> {
    Ok(tb_users::table
        .filter(tb_users::mobile.eq(mobile))
        .select(Row::as_select())
        .get_result(conn)
        .optional()?
        .map(User::from))
}

pub fn find_by_login(conn: &mut DbConn, login: &str) -> Result<Option<User>, DbError> {
    Ok(tb_users::table
        .filter(tb_users::username.eq(login).or(tb_users::mobile.eq(login)))
        .order(tb_users::id)
        .select(Row::as_select())
        .first(conn)
        .optional()?
        .map(User::from))
}

/// Inserts a user as Django's `User.objects.create_user` would: not staff,
/// no names, no e-mail, joined now.
pub fn insert(conn: &mut DbConn, mobile: &str, password_hash: &str) -> Result<User, DbError> {
    diesel::insert_into(tb_users::table)
        .values((
            tb_users::password.eq(password_hash),
            tb_users::is_superuser.eq(false),
            tb_users::username.eq(mobile),
            tb_users::first_name.eq(""),
            tb_users::last_name.eq(""),
            tb_users::email.eq(""),
            tb_users::is_staff.eq(false),
            tb_users::is_active.eq(true),
            tb_users::date_joined.eq(now()),
            tb_users::mobile.eq(mobile),
            tb_users::email_active.eq(false),
        ))
        .execute(conn)?;
    find_by_mobile(conn, mobile)?.ok_or(DbError::Query(DieselError::NotFound))
}

pub fn set_password_hash(conn: &mut DbConn, user_id: i64, hash: &str) -> Result<(), DbError> {
    if let Some(id) = django_id(user_id) {
        diesel::update(tb_users::table.find(id))
            .set(tb_users::password.eq(hash))
            .execute(conn)?;
    }
    Ok(())
}

pub fn set_mobile(
    conn: &mut DbConn,
    user_id: i64,
    mobile: &str,
    username: &str,
) -> Result<(), DbError> {
    if let Some(id) = django_id(user_id) {
        diesel::update(tb_users::table.find(id))
            .set((tb_users::mobile.eq(mobile), tb_users::username.eq(username)))
            .execute(conn)?;
    }
    Ok(())
}

pub fn set_active(conn: &mut DbConn, user_id: i64, active: bool) -> Result<(), DbError> {
    if let Some(id) = django_id(user_id) {
        diesel::update(tb_users::table.find(id))
            .set(tb_users::is_active.eq(active))
            .execute(conn)?;
    }
    Ok(())
}

/// Deletes the user and its QQ links. Django's foreign keys do not cascade in
/// the database (its ORM does it), so the links go first; a row of the site's
/// other tables that still names the user (an order, an address) makes the
/// database refuse, and nothing is deleted.
pub fn delete(conn: &mut DbConn, user_id: i64) -> Result<bool, DbError> {
    let Some(id) = django_id(user_id) else {
        return Ok(false);
    };
    delete_links(conn, id)?;
    Ok(diesel::delete(tb_users::table.find(id)).execute(conn)? > 0)
}

pub fn list(conn: &mut DbConn, pattern: Option<&str>, limit: i64) -> Result<Vec<User>, DbError> {
    let mut query = tb_users::table
        .order(tb_users::id)
        .limit(limit)
        .select(Row::as_select())
        .into_boxed();
    if let Some(pattern) = pattern {
        query = query.filter(
            tb_users::username
                .like(pattern.to_owned())
                .escape('\\')
                .or(tb_users::mobile.like(pattern.to_owned()).escape('\\')),
        );
    }
    Ok(query.load(conn)?.into_iter().map(User::from).collect())
}

/// Links `link` to `user_id`, one QQ account per user and one user per QQ
/// account, which Django's table does not enforce. In the caller's
/// transaction the link is written first, then counted with any other of
/// its openid or user: more than itself fails as a unique violation would in
/// the service's own table, and the caller's rollback takes it back. The
/// count sees every link but those of transactions still open: on
/// PostgreSQL a lock makes those wait; on SQLite the insert's write lock
/// already does (and an insert first, not a read, waits for it rather than
/// failing on a stale snapshot).
pub fn insert_link(conn: &mut DbConn, link: NewLink<'_>, user_id: i64) -> Result<(), DbError> {
    let id = django_id(user_id).ok_or(DbError::Query(DieselError::NotFound))?;
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query("SELECT pg_advisory_xact_lock(7150922)").execute(c)?;
    }
    let at = now();
    diesel::insert_into(tb_oauth_qq::table)
        .values((
            tb_oauth_qq::create_time.eq(at),
            tb_oauth_qq::update_time.eq(at),
            tb_oauth_qq::user_id.eq(id),
            tb_oauth_qq::openid.eq(link.openid),
        ))
        .execute(conn)?;
    let links: i64 = tb_oauth_qq::table
        .filter(
            tb_oauth_qq::openid
                .eq(link.openid)
                .or(tb_oauth_qq::user_id.eq(id)),
        )
        .count()
        .get_result(conn)?;
    if links > 1 {
        return Err(DbError::Query(DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new("tb_oauth_qq: the QQ account or the user is linked already".to_owned()),
        )));
    }
    diesel::delete(qq_profiles::table.find(link.openid)).execute(conn)?;
    diesel::insert_into(qq_profiles::table)
        .values((
            qq_profiles::openid.eq(link.openid),
            qq_profiles::unionid.eq(link.unionid),
            qq_profiles::nickname.eq(link.nickname),
            qq_profiles::avatar_url.eq(link.avatar_url),
            qq_profiles::profile_at.eq(Some(at)),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn link_of_user(conn: &mut DbConn, user_id: i64) -> Result<Option<Link>, DbError> {
    let Some(id) = django_id(user_id) else {
        return Ok(None);
    };
    let found: Option<(String, Option<String>, Option<String>, PrimitiveDateTime)> =
        tb_oauth_qq::table
            .left_join(qq_profiles::table.on(qq_profiles::openid.eq(tb_oauth_qq::openid)))
            .filter(tb_oauth_qq::user_id.eq(id))
            .order(tb_oauth_qq::id)
            .select((
                tb_oauth_qq::openid,
                qq_profiles::nickname.nullable(),
                qq_profiles::avatar_url.nullable(),
                tb_oauth_qq::create_time,
            ))
            .first(conn)
            .optional()?;
    Ok(
        found.map(|(openid, nickname, avatar_url, created_at)| Link {
            openid,
            nickname,
            avatar_url,
            created_at,
        }),
    )
}

/// Removes every QQ link of `user_id`; returns whether there was one.
pub fn delete_links_of_user(conn: &mut DbConn, user_id: i64) -> Result<bool, DbError> {
    match django_id(user_id) {
        Some(id) => delete_links(conn, id),
        None => Ok(false),
    }
}

fn delete_links(conn: &mut DbConn, id: i32) -> Result<bool, DbError> {
    let openids: Vec<String> = tb_oauth_qq::table
        .filter(tb_oauth_qq::user_id.eq(id))
        .select(tb_oauth_qq::openid)
        .load(conn)?;
    diesel::delete(qq_profiles::table.filter(qq_profiles::openid.eq_any(&openids)))
        .execute(conn)?;
    Ok(diesel::delete(tb_oauth_qq::table.filter(tb_oauth_qq::user_id.eq(id))).execute(conn)? > 0)
}

/// Stores a linked QQ account's nickname and avatar as QQ shows them now.
pub fn set_face(
    conn: &mut DbConn,
    openid: &str,
    nickname: Option<&str>,
    avatar_url: Option<&str>,
) -> Result<(), DbError> {
    let at = Some(now());
    let insert = diesel::insert_into(qq_profiles::table).values((
        qq_profiles::openid.eq(openid),
        qq_profiles::nickname.eq(nickname),
        qq_profiles::avatar_url.eq(avatar_url),
        qq_profiles::profile_at.eq(at),
    ));
    let replace = (
        qq_profiles::nickname.eq(nickname),
        qq_profiles::avatar_url.eq(avatar_url),
        qq_profiles::profile_at.eq(at),
    );
    // The upsert's SQL is the backend's own, so it runs on the backend's connection.
    match conn {
        DbConn::Sqlite(c) => insert
            .on_conflict(qq_profiles::openid)
            .do_update()
            .set(replace)
            .execute(c)?,
        DbConn::Postgres(c) => insert
            .on_conflict(qq_profiles::openid)
            .do_update()
            .set(replace)
            .execute(c)?,
    };
    Ok(())
}

/// Gives a QQ account linked by openid alone its unionid (once: one that has
/// one keeps it).
pub fn add_unionid(conn: &mut DbConn, openid: &str, unionid: &str) -> Result<(), DbError> {
    let insert = diesel::insert_into(qq_profiles::table).values((
        qq_profiles::openid.eq(openid),
        qq_profiles::unionid.eq(unionid),
    ));
    match &mut *conn {
        DbConn::Sqlite(c) => insert.on_conflict_do_nothing().execute(c)?,
        DbConn::Postgres(c) => insert.on_conflict_do_nothing().execute(c)?,
    };
    diesel::update(
        qq_profiles::table
            .filter(qq_profiles::openid.eq(openid))
            .filter(qq_profiles::unionid.is_null()),
    )
    .set(qq_profiles::unionid.eq(unionid))
    .execute(conn)?;
    Ok(())
}

/// What Django's table allows and the service does not choose between: the
/// openids linked to more than one user, and the users linked to more than
/// one QQ account (at most `limit` of each).
pub fn links_twice(conn: &mut DbConn, limit: i64) -> Result<(Vec<String>, Vec<i64>), DbError> {
    use diesel::dsl::count;
    let openids = tb_oauth_qq::table
        .group_by(tb_oauth_qq::openid)
        .having(count(tb_oauth_qq::user_id).aggregate_distinct().gt(1))
        .select(tb_oauth_qq::openid)
        .order(tb_oauth_qq::openid)
        .limit(limit)
        .load(conn)?;
    let users: Vec<i32> = tb_oauth_qq::table
        .group_by(tb_oauth_qq::user_id)
        .having(count(tb_oauth_qq::openid).aggregate_distinct().gt(1))
        .select(tb_oauth_qq::user_id)
        .order(tb_oauth_qq::user_id)
        .limit(limit)
        .load(conn)?;
    Ok((openids, users.into_iter().map(i64::from).collect()))
}

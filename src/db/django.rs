//! The Django site's own tables, read for the import: `tb_users` and
//! `tb_oauth_qq` as the "meiduo" site made them (../shared/django_site.md).
//! Plain SQL with casts, so that the column types either backend gave them
//! (integer or bigint, datetime text or timestamptz) read alike.

use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};

use super::schema::users;
use super::{DbConn, DbError};

/// A row of `tb_users`, as far as this service keeps it.
#[derive(Debug, Clone, QueryableByName)]
pub struct DjangoUser {
    #[diesel(sql_type = BigInt)]
    pub id: i64,
    #[diesel(sql_type = Text)]
    pub username: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub mobile: Option<String>,
    /// Django's hash string (`pbkdf2_sha256$…`, `!…` for none).
    #[diesel(sql_type = Text)]
    pub password: String,
    #[diesel(sql_type = Bool)]
    pub is_active: bool,
    /// As the database writes it (text), read to the second.
    #[diesel(sql_type = Nullable<Text>)]
    pub date_joined: Option<String>,
}

/// A row of `tb_oauth_qq`.
#[derive(Debug, Clone, QueryableByName)]
pub struct DjangoLink {
    #[diesel(sql_type = BigInt)]
    pub user_id: i64,
    #[diesel(sql_type = Text)]
    pub openid: String,
}

pub fn users(conn: &mut DbConn) -> Result<Vec<DjangoUser>, DbError> {
    Ok(diesel::sql_query(
        "SELECT CAST(id AS BIGINT) AS id, username, mobile, password, is_active, \
         CAST(date_joined AS TEXT) AS date_joined FROM tb_users ORDER BY id",
    )
    .load(conn)?)
}

pub fn links(conn: &mut DbConn) -> Result<Vec<DjangoLink>, DbError> {
    Ok(diesel::sql_query(
        "SELECT CAST(user_id AS BIGINT) AS user_id, openid FROM tb_oauth_qq ORDER BY id",
    )
    .load(conn)?)
}

/// A user to insert under the id it had at the Django site.
pub struct ImportedUser<'a> {
    pub id: i64,
    pub username: &'a str,
    pub mobile: &'a str,
    pub password_hash: &'a str,
    pub is_active: bool,
    pub joined: time::PrimitiveDateTime,
}

/// Inserts `user` with its own id. PostgreSQL's identity column takes an id
/// only when told to (`OVERRIDING SYSTEM VALUE`), which diesel cannot say,
/// and its sequence is moved past the id afterwards ([`move_id_sequence`]).
pub fn insert_with_id(conn: &mut DbConn, user: &ImportedUser<'_>) -> Result<(), DbError> {
    match conn {
        DbConn::Sqlite(_) => {
            diesel::insert_into(users::table)
                .values((users::id.eq(user.id), columns(user)))
                .execute(conn)?;
        }
        DbConn::Postgres(c) => {
            diesel::sql_query(
                "INSERT INTO users (id, username, mobile, password_hash, is_active, created_at, updated_at) \
                 OVERRIDING SYSTEM VALUE VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .bind::<BigInt, _>(user.id)
            .bind::<Text, _>(user.username)
            .bind::<Text, _>(user.mobile)
            .bind::<Text, _>(user.password_hash)
            .bind::<Bool, _>(user.is_active)
            .bind::<diesel::sql_types::Timestamp, _>(user.joined)
            .execute(c)?;
        }
    }
    Ok(())
}

/// Inserts `user` under a new id (its Django id is taken here); returns it.
pub fn insert_with_new_id(conn: &mut DbConn, user: &ImportedUser<'_>) -> Result<i64, DbError> {
    diesel::insert_into(users::table)
        .values(columns(user))
        .execute(conn)?;
    Ok(users::table
        .filter(users::mobile.eq(user.mobile))
        .select(users::id)
        .get_result(conn)?)
}

/// The columns of an imported user but its id, as an insert's values.
type Columns<'a> = (
    diesel::dsl::Eq<users::username, &'a str>,
    diesel::dsl::Eq<users::mobile, &'a str>,
    diesel::dsl::Eq<users::password_hash, &'a str>,
    diesel::dsl::Eq<users::is_active, bool>,
    diesel::dsl::Eq<users::created_at, time::PrimitiveDateTime>,
    diesel::dsl::Eq<users::updated_at, time::PrimitiveDateTime>,
);

/// Every column of an imported user but its id.
fn columns<'a>(user: &ImportedUser<'a>) -> Columns<'a> {
    (
        users::username.eq(user.username),
        users::mobile.eq(user.mobile),
        users::password_hash.eq(user.password_hash),
        users::is_active.eq(user.is_active),
        users::created_at.eq(user.joined),
        users::updated_at.eq(user.joined),
    )
}

/// After ids were inserted by hand: PostgreSQL's identity sequence must
/// continue past the largest (SQLite's AUTOINCREMENT follows by itself).
pub fn move_id_sequence(conn: &mut DbConn) -> Result<(), DbError> {
    if let DbConn::Postgres(c) = conn {
        diesel::sql_query(
            "SELECT setval(pg_get_serial_sequence('users', 'id'), \
             (SELECT COALESCE(MAX(id), 0) + 1 FROM users), false)",
        )
        .execute(c)?;
    }
    Ok(())
}

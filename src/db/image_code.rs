//! Queries on `image_codes`: the answer of each image code a front end was
//! shown, until it is checked once or expires.

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::image_codes;
use super::{DbConn, DbError};

/// Remembers `answer` for `id` until `expires_at`, replacing any answer the
/// id had: a new image for an id makes the old one worthless.
pub fn put(
    conn: &mut DbConn,
    id: &str,
    answer: &str,
    expires_at: PrimitiveDateTime,
) -> Result<(), DbError> {
    let insert = diesel::insert_into(image_codes::table).values((
        image_codes::id.eq(id),
        image_codes::answer.eq(answer),
        image_codes::expires_at.eq(expires_at),
    ));
    let replace = (
        image_codes::answer.eq(answer),
        image_codes::expires_at.eq(expires_at),
    );
    // The upsert's SQL is the backend's own, so it runs on the backend's connection.
    match conn {
        DbConn::Sqlite(c) => insert
            .on_conflict(image_codes::id)
            .do_update()
            .set(replace)
            .execute(c)?,
        DbConn::Postgres(c) => insert
            .on_conflict(image_codes::id)
            .do_update()
            .set(replace)
            .execute(c)?,
    };
    Ok(())
}

/// Uses up the code `id`: `true` when `answer` was its answer and it had not
/// expired by `now`. It is gone afterwards either way, so that each image
/// allows one guess.
///
/// The first delete decides: of two checks at once, only the one whose
/// delete finds the row can succeed.
pub fn take(
    conn: &mut DbConn,
    id: &str,
    answer: &str,
    now: PrimitiveDateTime,
) -> Result<bool, DbError> {
    let matched = diesel::delete(
        image_codes::table
            .filter(image_codes::id.eq(id))
            .filter(image_codes::answer.eq(answer))
            .filter(image_codes::expires_at.gt(now)),
    )
    .execute(conn)?;
    if matched == 1 {
        return Ok(true);
    }
    diesel::delete(image_codes::table.filter(image_codes::id.eq(id))).execute(conn)?;
    Ok(false)
}

/// Forgets the codes expired by `now`; returns how many.
pub fn purge_expired(conn: &mut DbConn, now: PrimitiveDateTime) -> Result<usize, DbError> {
    Ok(diesel::delete(image_codes::table.filter(image_codes::expires_at.le(now))).execute(conn)?)
}

/// The answer stored for `id`, expired or not (tests only: see
/// [`crate::image_code::ImageCodes::answer_for_tests`]).
#[cfg(debug_assertions)]
pub fn answer(conn: &mut DbConn, id: &str) -> Result<Option<String>, DbError> {
    Ok(image_codes::table
        .find(id)
        .select(image_codes::answer)
        .first(conn)
        .optional()?)
}

//! Queries on `sms_codes` (the live code of each mobile, as an HMAC) and
//! `sms_sends` (codes sent per subject and day, for the daily caps).

use diesel::prelude::*;
use time::PrimitiveDateTime;

use super::schema::{sms_codes, sms_sends};
use super::{DbConn, DbError};

/// A daily cap: a subject (`m:<mobile>:<day>`, `a:<address>:<day>`,
/// `q:<openid>:<day>`) and the sends it may have that day.
#[derive(Debug, Clone)]
pub struct Cap {
    pub subject: String,
    pub max: i32,
}

/// What [`reserve_send`] decided.
#[derive(Debug, PartialEq, Eq)]
pub enum Reserved {
    /// The code is stored and every cap counted one more send: send it now.
    Go,
    /// This mobile had a code sent since then: the next may go at that time.
    TooSoonUntil(PrimitiveDateTime),
    /// A daily cap is reached: nothing was counted or stored.
    CapReached,
}

/// A code about to be sent.
#[derive(Debug, Clone)]
pub struct NewCode<'a> {
    pub mobile: &'a str,
    pub code_hash: &'a str,
    pub now: PrimitiveDateTime,
    pub ttl: time::Duration,
    /// The least time between two codes to one mobile.
    pub cooldown: time::Duration,
    /// When today's counts are forgotten.
    pub day_ends: PrimitiveDateTime,
}

/// Stores the code as its mobile's live code (replacing an older one) and
/// counts a send against every cap, unless the mobile's last code went out
/// less than `cooldown` ago or a cap is full. Call it inside a transaction
/// ([`super::Db::transaction`]): the check and the count are one step, so
/// requests sent at once cannot all slip under a cap.
pub fn reserve_send(
    conn: &mut DbConn,
    code: &NewCode<'_>,
    caps: &[Cap],
) -> Result<Reserved, DbError> {
    let NewCode {
        mobile,
        code_hash,
        now,
        ttl,
        cooldown,
        day_ends,
    } = *code;
    // Sends are rare and rate-limited: a scan of the expired rows here keeps
    // both tables small without a purge job.
    diesel::delete(sms_codes::table.filter(sms_codes::expires_at.le(now))).execute(conn)?;
    diesel::delete(sms_sends::table.filter(sms_sends::expires_at.le(now))).execute(conn)?;

    let last_sent: Option<PrimitiveDateTime> = {
        let query = sms_codes::table.find(mobile).select(sms_codes::sent_at);
        match &mut *conn {
            // SQLite has one writer at a time: the transaction alone serialises.
            DbConn::Sqlite(c) => query.first(c).optional()?,
            DbConn::Postgres(c) => query.for_update().first(c).optional()?,
        }
    };
    if let Some(sent) = last_sent
        && sent + cooldown > now
    {
        return Ok(Reserved::TooSoonUntil(sent + cooldown));
    }

    let mut subjects: Vec<&str> = caps.iter().map(|c| c.subject.as_str()).collect();
    // One order for every caller: two reservations never wait for each other's rows.
    subjects.sort_unstable();
    for subject in &subjects {
        let insert = diesel::insert_into(sms_sends::table).values((
            sms_sends::subject.eq(subject),
            sms_sends::sends.eq(0),
            sms_sends::expires_at.eq(day_ends),
        ));
        match &mut *conn {
            DbConn::Sqlite(c) => insert.on_conflict_do_nothing().execute(c)?,
            DbConn::Postgres(c) => insert.on_conflict_do_nothing().execute(c)?,
        };
    }
    let counted: Vec<(String, i32)> = {
        let query = sms_sends::table
            .filter(sms_sends::subject.eq_any(&subjects))
            .select((sms_sends::subject, sms_sends::sends));
        match &mut *conn {
            DbConn::Sqlite(c) => query.load(c)?,
            DbConn::Postgres(c) => query.for_update().load(c)?,
        }
    };
    let full = counted.iter().any(|(subject, sends)| {
        caps.iter()
            .any(|cap| &cap.subject == subject && *sends >= cap.max)
    });
    if full {
        return Ok(Reserved::CapReached);
    }
    diesel::update(sms_sends::table.filter(sms_sends::subject.eq_any(&subjects)))
        .set(sms_sends::sends.eq(sms_sends::sends + 1))
        .execute(conn)?;

    let row = (
        sms_codes::mobile.eq(mobile),
        sms_codes::code_hash.eq(code_hash),
        sms_codes::sent_at.eq(now),
        sms_codes::expires_at.eq(now + ttl),
        sms_codes::wrong_tries.eq(0),
    );
    let upsert = diesel::insert_into(sms_codes::table).values(row);
    let replace = (
        sms_codes::code_hash.eq(code_hash),
        sms_codes::sent_at.eq(now),
        sms_codes::expires_at.eq(now + ttl),
        sms_codes::wrong_tries.eq(0),
    );
    match &mut *conn {
        DbConn::Sqlite(c) => upsert
            .on_conflict(sms_codes::mobile)
            .do_update()
            .set(replace)
            .execute(c)?,
        DbConn::Postgres(c) => upsert
            .on_conflict(sms_codes::mobile)
            .do_update()
            .set(replace)
            .execute(c)?,
    };
    Ok(Reserved::Go)
}

/// Undoes a [`reserve_send`] whose message could not be sent: the code is
/// forgotten (if it is still this one) and the sends are given back, so a
/// sender's failure costs the person nothing.
pub fn give_back(
    conn: &mut DbConn,
    mobile: &str,
    code_hash: &str,
    caps: &[Cap],
) -> Result<(), DbError> {
    diesel::delete(
        sms_codes::table
            .filter(sms_codes::mobile.eq(mobile))
            .filter(sms_codes::code_hash.eq(code_hash)),
    )
    .execute(conn)?;
    let subjects: Vec<&str> = caps.iter().map(|c| c.subject.as_str()).collect();
    diesel::update(
        sms_sends::table
            .filter(sms_sends::subject.eq_any(&subjects))
            .filter(sms_sends::sends.gt(0)),
    )
    .set(sms_sends::sends.eq(sms_sends::sends - 1))
    .execute(conn)?;
    Ok(())
}

/// A mobile's live code, as the check needs it.
#[derive(Debug, Clone, Queryable)]
pub struct LiveCode {
    pub code_hash: String,
    pub expires_at: PrimitiveDateTime,
    pub wrong_tries: i32,
}

/// The mobile's code, locked for the rest of the transaction on PostgreSQL.
pub fn find_for_check(conn: &mut DbConn, mobile: &str) -> Result<Option<LiveCode>, DbError> {
    let query = sms_codes::table.find(mobile).select((
        sms_codes::code_hash,
        sms_codes::expires_at,
        sms_codes::wrong_tries,
    ));
    Ok(match conn {
        DbConn::Sqlite(c) => query.first(c).optional()?,
        DbConn::Postgres(c) => query.for_update().first(c).optional()?,
    })
}

/// Counts a wrong try at the mobile's code; the last allowed try deletes it.
pub fn count_wrong_try(conn: &mut DbConn, mobile: &str, max_tries: i32) -> Result<(), DbError> {
    diesel::update(sms_codes::table.find(mobile))
        .set(sms_codes::wrong_tries.eq(sms_codes::wrong_tries + 1))
        .execute(conn)?;
    diesel::delete(
        sms_codes::table
            .find(mobile)
            .filter(sms_codes::wrong_tries.ge(max_tries)),
    )
    .execute(conn)?;
    Ok(())
}

/// Uses up the mobile's code if it is still `code_hash`; `false` when a
/// concurrent bind used it first (or a newer code replaced it).
pub fn use_up(conn: &mut DbConn, mobile: &str, code_hash: &str) -> Result<bool, DbError> {
    let deleted = diesel::delete(
        sms_codes::table
            .filter(sms_codes::mobile.eq(mobile))
            .filter(sms_codes::code_hash.eq(code_hash)),
    )
    .execute(conn)?;
    Ok(deleted == 1)
}

/// Forgets the live code of `mobile` (a deleted account's).
pub fn forget(conn: &mut DbConn, mobile: &str) -> Result<(), DbError> {
    diesel::delete(sms_codes::table.filter(sms_codes::mobile.eq(mobile))).execute(conn)?;
    Ok(())
}

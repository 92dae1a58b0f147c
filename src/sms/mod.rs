//! SMS codes: the proof that a person holds a mobile, asked for before an
//! account is created for it (the "pre-hijacked account" defence).
//!
//! A code is six digits, lives five minutes, survives five wrong tries, and
//! is used up by the bind it proves. It is stored as an HMAC under a key
//! derived from `SECRET_KEY`, in the database, so every instance can check it
//! and nobody can read it back. Sends are limited per mobile (one a minute,
//! a daily cap), per client address and per QQ account (daily caps); the
//! limits are counted before the message goes out and given back if the
//! sender fails.

mod django_redis;
pub mod sender;

use std::net::IpAddr;
use std::time::Duration;

use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use crate::config::SmsConfig;
use crate::db::sms_code::{self as queries, Cap, NewCode, Reserved};
use crate::db::{self, Db, DbConn, DbError};
use crate::domain::{Mobile, OpenId, SmsCode};
use crate::throttle::RetryAfter;
use crate::token::SmsCodeKey;

pub use django_redis::DjangoCodes;
pub use sender::{SendError, Sender};

/// How long a code is good for.
pub const CODE_TTL: Duration = Duration::from_secs(5 * 60);
/// The least time between two codes sent to one mobile.
pub const RESEND_AFTER: Duration = Duration::from_secs(60);
/// Wrong tries a code survives; the fifth wrong one ends it.
pub const MAX_WRONG_TRIES: i32 = 5;
/// Codes one QQ account may have sent per day, across mobiles.
const DAILY_PER_QQ_ACCOUNT: i32 = 10;

/// Why no code was sent.
#[derive(Debug, thiserror::Error)]
pub enum SendRefused {
    /// This mobile was sent a code less than a minute ago.
    #[error("a code was sent to this mobile less than a minute ago")]
    TooSoon(RetryAfter),
    /// A daily cap (mobile, address or QQ account) is reached.
    #[error("the daily cap of SMS codes is reached")]
    DailyCap(RetryAfter),
    /// The sender failed; nothing was counted against the person.
    #[error("the SMS could not be sent: {0}")]
    Sender(#[from] SendError),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Why a typed code does not prove the mobile.
#[derive(Debug, thiserror::Error)]
pub enum CodeError {
    /// Wrong, expired, used or never sent: one answer for all.
    #[error("the SMS code is wrong, expired or used")]
    Invalid,
    #[error(transparent)]
    Db(#[from] DbError),
}

/// Who asks for a code, for the caps beyond the mobile's own.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    pub address: Option<IpAddr>,
    /// The QQ account of the bind in progress, when the request carries one.
    pub openid: Option<OpenId>,
}

/// A code that checked out for a mobile, to be used up in the bind's own
/// transaction ([`Proof::use_up`]).
#[derive(Debug, Clone)]
pub struct Proof {
    mobile: String,
    code_hash: String,
}

impl Proof {
    /// Uses the code up; `false` when a concurrent bind used it first.
    pub fn use_up(&self, conn: &mut DbConn) -> Result<bool, DbError> {
        queries::use_up(conn, &self.mobile, &self.code_hash)
    }
}

/// Sends and checks codes.
#[derive(Clone)]
pub struct SmsCodes {
    db: Db,
    key: SmsCodeKey,
    sender: Sender,
    /// Each code sent is copied for the Django site too, when set.
    django: Option<DjangoCodes>,
    daily_per_mobile: i32,
    daily_per_address: i32,
}

impl SmsCodes {
    pub fn new(
        db: Db,
        key: SmsCodeKey,
        sender: Sender,
        django: Option<DjangoCodes>,
        config: &SmsConfig,
    ) -> Self {
        let cap = |n: u32| i32::try_from(n).unwrap_or(i32::MAX);
        Self {
            db,
            key,
            sender,
            django,
            daily_per_mobile: cap(config.daily_per_mobile),
            daily_per_address: cap(config.daily_per_address),
        }
    }

    /// Whether sent codes are shown on the page (the development log sender).
    pub fn shows_code(&self) -> bool {
        self.sender.shows_code()
    }

    /// Sends a fresh code to `mobile`, within the limits. Returns the code
    /// (for the development sender's notice; everyone else drops it).
    pub async fn send(&self, mobile: &Mobile, who: &Requester) -> Result<SmsCode, SendRefused> {
        let sent = self.send_within_limits(mobile, who).await;
        let outcome = match &sent {
            Ok(_) => "sent",
            Err(SendRefused::TooSoon(_)) => "too_soon",
            Err(SendRefused::DailyCap(_)) => "daily_cap",
            Err(SendRefused::Sender(_)) => "sender_failed",
            Err(SendRefused::Db(_)) => "database",
        };
        crate::metrics::sms_send(self.sender.name(), outcome);
        sent
    }

    async fn send_within_limits(
        &self,
        mobile: &Mobile,
        who: &Requester,
    ) -> Result<SmsCode, SendRefused> {
        let code = SmsCode::generate();
        let code_hash = self.key.hash(mobile, &code);
        let now = OffsetDateTime::now_utc();
        let (today, day_ends) = china_day(now);
        let caps = self.caps(mobile, who, &today);
        let reserved = {
            let (mobile, code_hash, caps) =
                (mobile.as_str().to_owned(), code_hash.clone(), caps.clone());
            let now = plain(now);
            let day_ends = plain(day_ends);
            self.db
                .transaction(move |conn| {
                    queries::reserve_send(
                        conn,
                        &NewCode {
                            mobile: &mobile,
                            code_hash: &code_hash,
                            now,
                            ttl: time_span(CODE_TTL),
                            cooldown: time_span(RESEND_AFTER),
                            day_ends,
                        },
                        &caps,
                    )
                })
                .await?
        };
        match reserved {
            Reserved::Go => {}
            Reserved::TooSoonUntil(at) => {
                return Err(SendRefused::TooSoon(seconds_until(now, at)));
            }
            Reserved::CapReached => {
                return Err(SendRefused::DailyCap(seconds_until(now, plain(day_ends))));
            }
        }
        if let Err(e) = self.sender.send(mobile, &code, CODE_TTL).await {
            let m = mobile.as_str().to_owned();
            let given_back = self
                .db
                .transaction(move |conn| queries::give_back(conn, &m, &code_hash, &caps))
                .await;
            if let Err(db) = given_back {
                log::warn!("an SMS that failed could not be given back to the limits: {db}");
            }
            return Err(e.into());
        }
        if let Some(django) = &self.django {
            django.store(mobile, &code, CODE_TTL).await;
        }
        Ok(code)
    }

    /// Checks `code` against the mobile's live one. A wrong code counts a
    /// try (and the fifth ends the code); a right one is left for the bind
    /// to use up ([`Proof::use_up`]).
    pub async fn check(&self, mobile: &Mobile, code: &SmsCode) -> Result<Proof, CodeError> {
        let code_hash = self.key.hash(mobile, code);
        let (m, typed) = (mobile.as_str().to_owned(), code_hash.clone());
        let now = db::now();
        let matched = self
            .db
            .transaction(move |conn| -> Result<bool, DbError> {
                let Some(live) = queries::find_for_check(conn, &m)? else {
                    return Ok(false);
                };
                if live.expires_at <= now {
                    return Ok(false);
                }
                let same: bool =
                    subtle::ConstantTimeEq::ct_eq(live.code_hash.as_bytes(), typed.as_bytes())
                        .into();
                if !same {
                    queries::count_wrong_try(conn, &m, MAX_WRONG_TRIES)?;
                }
                Ok(same)
            })
            .await?;
        if !matched {
            return Err(CodeError::Invalid);
        }
        Ok(Proof {
            mobile: mobile.as_str().to_owned(),
            code_hash,
        })
    }

    fn caps(&self, mobile: &Mobile, who: &Requester, today: &str) -> Vec<Cap> {
        let mut caps = vec![Cap {
            subject: format!("m:{}:{today}", mobile.as_str()),
            max: self.daily_per_mobile,
        }];
        if let Some(address) = who.address {
            caps.push(Cap {
                subject: format!("a:{address}:{today}"),
                max: self.daily_per_address,
            });
        }
        if let Some(openid) = &who.openid {
            caps.push(Cap {
                subject: format!("q:{}:{today}", openid.as_str()),
                max: DAILY_PER_QQ_ACCOUNT,
            });
        }
        caps
    }
}

/// Today in China (UTC+8, where the people and the SMS providers' own daily
/// limits are), and when it ends.
fn china_day(now: OffsetDateTime) -> (String, OffsetDateTime) {
    let china = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    let local = now.to_offset(china);
    let ends = local
        .date()
        .next_day()
        .map(|d| d.midnight().assume_offset(china))
        .unwrap_or(local);
    (local.date().to_string(), ends.to_offset(UtcOffset::UTC))
}

fn plain(t: OffsetDateTime) -> PrimitiveDateTime {
    let t = t.to_offset(UtcOffset::UTC);
    PrimitiveDateTime::new(t.date(), t.time())
}

fn time_span(d: Duration) -> time::Duration {
    time::Duration::try_from(d).unwrap_or(time::Duration::MAX)
}

fn seconds_until(now: OffsetDateTime, at: PrimitiveDateTime) -> RetryAfter {
    let left = (at.assume_utc() - now).whole_seconds();
    RetryAfter(u64::try_from(left).unwrap_or(0).max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_day_is_china_s() {
        let at = |day: u8, hour: u8, minute: u8| {
            let date = time::Date::from_calendar_date(2026, time::Month::December, day).unwrap();
            date.with_hms(hour, minute, 0).unwrap().assume_utc()
        };
        assert_eq!(
            china_day(at(7, 17, 30)),
            ("2026-12-08".to_owned(), at(8, 16, 0))
        );
        assert_eq!(
            china_day(at(7, 15, 59)),
            ("2026-12-07".to_owned(), at(7, 16, 0))
        );
    }
}

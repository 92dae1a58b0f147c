//! The session, typed: named keys and the operations the flows need, instead
//! of string keys scattered through handlers. The state itself lives in the
//! database ([`store::DbSessionStore`]); the cookie carries only a random key.
//! A QQ login in progress has a cookie of its own ([`attempt`]).

pub mod attempt;
pub mod rotation;
pub mod store;

pub use attempt::{OAuthAttempt, StateError};

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::time::Duration;
use time::OffsetDateTime;

use crate::state::AppState;

/// Used only where no application state is configured.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
use serde::Serialize;
use subtle::ConstantTimeEq;

const USER_ID: &str = "uid";
const LOGGED_IN_AT: &str = "auth_at";
const BIND: &str = "bind";
const CSRF: &str = "csrf";

/// The session could not be written (its state is not serialisable).
#[derive(Debug, thiserror::Error)]
#[error("session state could not be written: {0}")]
pub struct SessionError(String);

/// The current browser's session.
pub struct UserSession {
    session: Session,
    /// A login ends this long after it began.
    max_age: Duration,
}

impl UserSession {
    /// Logs `user_id` in, under a fresh session id (no fixation), dropping any
    /// half-finished bind.
    pub fn log_in(&self, user_id: i64) -> Result<(), SessionError> {
        self.session.renew();
        self.session.remove(BIND);
        self.insert(LOGGED_IN_AT, OffsetDateTime::now_utc().unix_timestamp())?;
        self.insert(USER_ID, user_id)
    }

    /// The logged-in user, unless the login is older than the absolute limit
    /// (then the session is ended).
    pub fn user_id(&self) -> Option<i64> {
        let user_id: i64 = self.session.get(USER_ID).ok().flatten()?;
        let since: i64 = self.session.get(LOGGED_IN_AT).ok().flatten()?;
        let age = OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_sub(since);
        if u64::try_from(age).map_or(true, |age| age > self.max_age.as_secs()) {
            self.session.purge();
            return None;
        }
        Some(user_id)
    }

    /// Ends the session: the server forgets it, so the old cookie is worthless.
    pub fn log_out(&self) {
        self.session.purge();
    }

    /// Remembers which pending bind this browser may finish.
    pub fn set_bind_nonce(&self, nonce: &str) -> Result<(), SessionError> {
        self.insert(BIND, nonce)
    }

    pub fn bind_nonce(&self) -> Option<String> {
        self.session.get(BIND).ok().flatten()
    }

    /// This session's CSRF token for forms, created on first use.
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        if let Some(token) = self.session.get::<String>(CSRF).ok().flatten() {
            return Ok(token);
        }
        let token = crate::flow::random_token();
        self.insert(CSRF, &token)?;
        Ok(token)
    }

    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        let expected: Option<String> = self.session.get(CSRF).ok().flatten();
        expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(given.as_bytes())))
    }

    fn insert(&self, key: &str, value: impl Serialize) -> Result<(), SessionError> {
        self.session
            .insert(key, value)
            .map_err(|e| SessionError(e.to_string()))
    }
}

/// The SHA-256 of `value`, in hex: how the database keys what a cookie
/// carries, so that a copy of a table gives no usable cookie.
pub(crate) fn sha256_hex(value: &str) -> String {
    use sha2::{Digest, Sha256};
    base16ct::lower::encode_string(&Sha256::digest(value.as_bytes()))
}

impl FromRequest for UserSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let max_age = req
            .app_data::<web::Data<AppState>>()
            .map_or(DEFAULT_MAX_AGE, |s| s.session_max);
        ready(Ok(Self {
            session: req.get_session(),
            max_age,
        }))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn sha256_hex_is_the_lowercase_hex_digest() {
        assert_eq!(
            super::sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}

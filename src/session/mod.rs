//! The session, typed: named keys and the operations the flows need, instead
//! of string keys scattered through handlers. The state itself lives in the
//! database ([`store::DbSessionStore`]); the cookie carries only a random key.
//! A QQ login in progress has a cookie of its own ([`attempt`]), and so do
//! the forms' CSRF tokens ([`csrf`]).

pub mod attempt;
pub mod csrf;
pub mod rotation;
pub mod store;

pub use attempt::{OAuthAttempt, StateError};
pub use csrf::CsrfToken;

use std::future::{Ready, ready};
use std::time::Duration;

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use time::OffsetDateTime;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "qqlogin_session";

const USER_ID: &str = "uid";
const LOGGED_IN_AT: &str = "auth_at";
const BIND: &str = "bind";

/// The session could not be written (its state is not serialisable).
#[derive(Debug, thiserror::Error)]
#[error("session state could not be written: {0}")]
pub struct SessionError(String);

/// How long a login lasts however busy it is (`QQLOGIN_SESSION_MAX_SECS`;
/// the idle limit is the store's). Registered as app data.
#[derive(Debug, Clone, Copy)]
pub struct SessionLimits {
    pub max: Duration,
}

/// The current browser's session.
pub struct UserSession {
    session: Session,
    max: Duration,
}

impl UserSession {
    /// Logs `user_id` in, under a fresh session id (no fixation), dropping any
    /// half-finished bind.
    pub fn log_in(&self, user_id: i64) -> Result<(), SessionError> {
        self.session.renew();
        self.session.remove(BIND);
        self.set(LOGGED_IN_AT, OffsetDateTime::now_utc().unix_timestamp())?;
        self.set(USER_ID, user_id)
    }

    /// The logged-in user, unless the login is older than the absolute limit
    /// (then the session is ended).
    pub fn user_id(&self) -> Option<i64> {
        let user_id: i64 = self.session.get(USER_ID).ok().flatten()?;
        let since: i64 = self.session.get(LOGGED_IN_AT).ok().flatten()?;
        let age = OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_sub(since);
        if u64::try_from(age).map_or(true, |age| age > self.max.as_secs()) {
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
        self.set(BIND, nonce)
    }

    pub fn bind_nonce(&self) -> Option<String> {
        self.session.get(BIND).ok().flatten()
    }

    fn set(&self, key: &str, value: impl serde::Serialize) -> Result<(), SessionError> {
        self.session
            .insert(key, value)
            .map_err(|e| SessionError(e.to_string()))
    }
}

impl FromRequest for UserSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<SessionLimits>>()
                .map(|limits| Self {
                    session: req.get_session(),
                    max: limits.max,
                })
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no session limits")),
        )
    }
}

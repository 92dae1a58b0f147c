//! The session, typed: named keys and the operations the flows need, instead
//! of string keys scattered through handlers. The state itself lives in the
//! database ([`store::DbSessionStore`]); the cookie carries only a random key.

pub mod rotation;
pub mod store;

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use std::time::Duration;
use time::OffsetDateTime;

use crate::state::AppState;

/// Used only where no application state is configured.
const DEFAULT_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// How long a QQ login may take between leaving for QQ and coming back.
pub const OAUTH_STATE_TTL_SECS: i64 = 10 * 60;

const USER_ID: &str = "uid";
const LOGGED_IN_AT: &str = "auth_at";
const OAUTH: &str = "oauth";
const BIND: &str = "bind";
const CSRF: &str = "csrf";

/// A login at QQ that this browser started: the `state` sent to QQ and where to go after.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthAttempt {
    pub state: String,
    pub next: String,
    pub started_at: i64,
}

impl OAuthAttempt {
    /// Whether `state` (from the callback) is this attempt's, in time.
    pub fn check(&self, state: Option<&str>, now: i64) -> Result<(), StateError> {
        let given = state.unwrap_or_default().as_bytes();
        // Constant-time: the comparison must not tell an attacker how much of a guess was right.
        if !bool::from(given.ct_eq(self.state.as_bytes())) {
            return Err(StateError::Mismatch);
        }
        if now.saturating_sub(self.started_at) > OAUTH_STATE_TTL_SECS {
            return Err(StateError::Expired);
        }
        Ok(())
    }
}

/// Why the `state` QQ sent back was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StateError {
    #[error("no QQ login was started in this browser (or it was already used)")]
    Missing,
    #[error("state does not match the one this browser was given")]
    Mismatch,
    #[error("the QQ login was started too long ago")]
    Expired,
}

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
    /// half-finished QQ login.
    pub fn log_in(&self, user_id: i64) -> Result<(), SessionError> {
        self.session.renew();
        self.session.remove(OAUTH);
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

    pub fn begin_oauth(&self, attempt: &OAuthAttempt) -> Result<(), SessionError> {
        self.insert(OAUTH, attempt)
    }

    /// Removes the pending QQ login and checks `state` against it: a state is
    /// good for one callback only, in the browser that started it.
    pub fn take_oauth(&self, state: Option<&str>, now: i64) -> Result<OAuthAttempt, StateError> {
        let attempt: OAuthAttempt = self
            .session
            .remove_as(OAUTH)
            .and_then(Result::ok)
            .ok_or(StateError::Missing)?;
        let given = state.unwrap_or_default().as_bytes();
        // Constant-time: the comparison must not tell an attacker how much of a guess was right.
        if !bool::from(given.ct_eq(attempt.state.as_bytes())) {
            return Err(StateError::Mismatch);
        }
        if now - attempt.started_at > OAUTH_STATE_TTL_SECS {
            return Err(StateError::Expired);
        }
        Ok(attempt)
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
    use super::*;

    fn attempt() -> OAuthAttempt {
        OAuthAttempt {
            state: "s3cret-state".into(),
            next: "/".into(),
            started_at: 1_000,
        }
    }

    #[test]
    fn a_state_is_good_for_ten_minutes() {
        assert_eq!(
            attempt().check(Some("s3cret-state"), 1_000 + OAUTH_STATE_TTL_SECS),
            Ok(())
        );
        assert_eq!(
            attempt().check(Some("s3cret-state"), 1_001 + OAUTH_STATE_TTL_SECS),
            Err(StateError::Expired)
        );
    }

    #[test]
    fn any_other_state_is_a_mismatch() {
        for given in [
            None,
            Some(""),
            Some("s3cret-stat"),
            Some("s3cret-state "),
            Some("S3CRET-STATE"),
        ] {
            assert_eq!(
                attempt().check(given, 1_000),
                Err(StateError::Mismatch),
                "{given:?}"
            );
        }
    }
}

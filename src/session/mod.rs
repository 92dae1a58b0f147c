//! The session, typed: named keys and the operations the flows need, instead
//! of string keys scattered through handlers. The state itself lives in the
//! database ([`store::DbSessionStore`]); the cookie carries only a random key.

pub mod store;

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

/// How long a QQ login may take between leaving for QQ and coming back.
pub const OAUTH_STATE_TTL_SECS: i64 = 10 * 60;

const USER_ID: &str = "uid";
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
pub struct UserSession(Session);

impl UserSession {
    /// Logs `user_id` in, under a fresh session id (no fixation), dropping any
    /// half-finished QQ login.
    pub fn log_in(&self, user_id: i64) -> Result<(), SessionError> {
        self.0.renew();
        self.0.remove(OAUTH);
        self.0.remove(BIND);
        self.insert(USER_ID, user_id)
    }

    pub fn user_id(&self) -> Option<i64> {
        self.0.get(USER_ID).ok().flatten()
    }

    /// Ends the session: the server forgets it, so the old cookie is worthless.
    pub fn log_out(&self) {
        self.0.purge();
    }

    pub fn begin_oauth(&self, attempt: &OAuthAttempt) -> Result<(), SessionError> {
        self.insert(OAUTH, attempt)
    }

    /// Removes the pending QQ login and checks `state` against it: a state is
    /// good for one callback only, in the browser that started it.
    pub fn take_oauth(&self, state: Option<&str>, now: i64) -> Result<OAuthAttempt, StateError> {
        let attempt: OAuthAttempt = self
            .0
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
        self.0.get(BIND).ok().flatten()
    }

    /// This session's CSRF token for forms, created on first use.
    pub fn csrf_token(&self) -> Result<String, SessionError> {
        if let Some(token) = self.0.get::<String>(CSRF).ok().flatten() {
            return Ok(token);
        }
        let token = crate::flow::random_token();
        self.insert(CSRF, &token)?;
        Ok(token)
    }

    /// Whether `given` is this session's CSRF token (compared in constant time).
    pub fn csrf_matches(&self, given: &str) -> bool {
        let expected: Option<String> = self.0.get(CSRF).ok().flatten();
        expected.is_some_and(|e| bool::from(e.as_bytes().ct_eq(given.as_bytes())))
    }

    fn insert(&self, key: &str, value: impl Serialize) -> Result<(), SessionError> {
        self.0
            .insert(key, value)
            .map_err(|e| SessionError(e.to_string()))
    }
}

impl FromRequest for UserSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(Ok(Self(req.get_session())))
    }
}

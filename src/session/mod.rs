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

use crate::events::{Client, short_agent};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "qqlogin_session";

/// The logged-in user (read by the store too: [`store`]).
const USER_ID: &str = "uid";
/// The session's handle in the account centre (read by the store too).
const HANDLE: &str = "sid";
const LOGGED_IN_AT: &str = "auth_at";
/// When the person last proved who they are: at login, or asked again.
const VERIFIED_AT: &str = "verified_at";
const ADDRESS: &str = "ip";
const USER_AGENT: &str = "ua";
const BIND: &str = "bind";

/// How long a proof of who one is lasts for the account centre's actions.
pub const REAUTH_AFTER: Duration = Duration::from_secs(10 * 60);

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
    /// Logs `user_id` in from `client`, under a fresh session id (no
    /// fixation) and a fresh handle, dropping any half-finished bind.
    pub fn log_in(&self, user_id: i64, client: &Client) -> Result<(), SessionError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        self.session.renew();
        self.session.remove(BIND);
        self.set(LOGGED_IN_AT, now)?;
        self.set(VERIFIED_AT, now)?;
        self.set(HANDLE, crate::secret::short_token())?;
        if let Some(address) = client.address {
            self.set(ADDRESS, address.to_string())?;
        }
        // The few words the account centre shows: the state is written often.
        self.set(USER_AGENT, short_agent(client.user_agent.as_deref()))?;
        self.set(USER_ID, user_id)
    }

    /// This session's handle in the account centre's list.
    pub fn handle(&self) -> Option<String> {
        self.session.get(HANDLE).ok().flatten()
    }

    /// Whether the person proved who they are within [`REAUTH_AFTER`] of `now`.
    pub fn recently_verified(&self, now: OffsetDateTime) -> bool {
        let at: Option<i64> = self.session.get(VERIFIED_AT).ok().flatten();
        at.is_some_and(|at| verified_within(at, now))
    }

    /// The person just proved who they are again.
    pub fn mark_verified(&self, now: OffsetDateTime) -> Result<(), SessionError> {
        self.set(VERIFIED_AT, now.unix_timestamp())
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

/// Whether a proof given at `at` (Unix seconds) still holds at `now`.
pub fn verified_within(at: i64, now: OffsetDateTime) -> bool {
    let age = now.unix_timestamp().saturating_sub(at);
    (0..=REAUTH_AFTER.as_secs().cast_signed()).contains(&age)
}

/// A live session of a user, as the account centre shows it.
#[derive(Debug, Clone)]
pub struct ActiveSession {
    pub handle: String,
    pub logged_in_at: Option<OffsetDateTime>,
    pub address: Option<String>,
    /// In a few words ([`short_agent`]).
    pub user_agent: Option<String>,
    pub current: bool,
}

impl ActiveSession {
    /// Reads a stored session's state; `current` is this browser's handle.
    pub fn from_row(row: &crate::db::session::UserSessionRow, current: Option<&str>) -> Self {
        let state: std::collections::HashMap<String, String> =
            serde_json::from_str(&row.state).unwrap_or_default();
        let text = |key: &str| {
            state
                .get(key)
                .and_then(|v| serde_json::from_str::<String>(v).ok())
        };
        let handle = row.handle.clone().unwrap_or_default();
        Self {
            current: current.is_some_and(|c| c == handle),
            logged_in_at: state
                .get(LOGGED_IN_AT)
                .and_then(|v| v.parse().ok())
                .and_then(|at| OffsetDateTime::from_unix_timestamp(at).ok()),
            address: text(ADDRESS),
            user_agent: text(USER_AGENT),
            handle,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_of_who_one_is_lasts_ten_minutes() {
        let at = 1_800_000_000;
        let now = |secs: i64| OffsetDateTime::from_unix_timestamp(at + secs).unwrap();
        assert!(verified_within(at, now(0)));
        assert!(verified_within(at, now(600)));
        assert!(!verified_within(at, now(601)));
        // A proof from the future (a clock moved back) proves nothing.
        assert!(!verified_within(at, now(-1)));
    }
}

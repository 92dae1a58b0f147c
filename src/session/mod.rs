//! The session, typed: named keys and the operations the flows need, instead
//! of string keys scattered through handlers. The state itself lives in the
//! database ([`store::DbSessionStore`]); the cookie carries only a random key.
//! A QQ login in progress has a cookie of its own ([`attempt`]).

pub mod attempt;
pub mod csrf;
pub mod rotation;
pub mod store;

pub use attempt::{OAuthAttempt, StateError};
pub use csrf::CsrfToken;

use std::future::{Ready, ready};

use actix_session::{Session, SessionExt};
use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest, web};
use serde::Serialize;
use time::OffsetDateTime;

use crate::db::user::User;
use crate::domain::OpenId;
use crate::error::AppError;
use crate::state::AppState;
use store::State;

const USER_ID: &str = "uid";
const LOGGED_IN_AT: &str = "auth_at";
const BIND: &str = "bind";
/// Not state: the key under which the session is stored already
/// ([`UserSession::log_in_linked`]), for the store's `save` to take out.
const PRESAVED: &str = "presaved";

/// The session could not be written (its state is not serialisable).
#[derive(Debug, thiserror::Error)]
#[error("session state could not be written: {0}")]
pub struct SessionError(String);

/// The current browser's session.
pub struct UserSession {
    session: Session,
    app: web::Data<AppState>,
}

impl UserSession {
    /// Logs `user_id` in, under a fresh session id (no fixation), dropping any
    /// half-finished bind.
    pub fn log_in(&self, user_id: i64) -> Result<(), SessionError> {
        log_in_at(
            &self.session,
            user_id,
            OffsetDateTime::now_utc().unix_timestamp(),
        )
    }

    /// Logs in the user that the QQ account `openid` is linked to, if there
    /// is one, as [`Self::log_in`] does; `None` (and no change) if there is none.
    ///
    /// The look-up and the new session's row are one database write: a QQ
    /// login in the browser would otherwise hand work to the database three
    /// times (the state used up, the look-up, then actix-session's save), and
    /// at moderate concurrency each hand-off is a wait for a thread to get a
    /// CPU (BENCHMARKS.md). The session's key goes along in the state under
    /// [`PRESAVED`], so that the store's `save` only hands it to actix-session
    /// for the cookie; any later change to the session drops it ([`set`]),
    /// and `save` then stores the session as usual.
    pub async fn log_in_linked(&self, openid: &OpenId) -> Result<Option<User>, AppError> {
        let at = OffsetDateTime::now_utc().unix_timestamp();
        let before = self.session.entries().clone();
        let (key, store) = (store::new_key(), self.app.sessions.clone());
        let stored_key = key.as_ref().to_owned();
        let found = self
            .app
            .accounts
            .find_by_openid_then(openid, move |conn, user| {
                store.insert_on(conn, &stored_key, &logged_in(&before, user.id, at))
            })
            .await?;
        let Some(user) = found else {
            return Ok(None);
        };
        log_in_at(&self.session, user.id, at)?;
        self.session
            .insert(PRESAVED, key.as_ref())
            .map_err(|e| SessionError(e.to_string()))?;
        Ok(Some(user))
    }

    /// The logged-in user, unless the login is older than the absolute limit
    /// (then the session is ended).
    pub fn user_id(&self) -> Option<i64> {
        let user_id: i64 = self.session.get(USER_ID).ok().flatten()?;
        let since: i64 = self.session.get(LOGGED_IN_AT).ok().flatten()?;
        let age = OffsetDateTime::now_utc()
            .unix_timestamp()
            .saturating_sub(since);
        if u64::try_from(age).map_or(true, |age| age > self.app.session_max.as_secs()) {
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
        set(&self.session, BIND, nonce)
    }

    pub fn bind_nonce(&self) -> Option<String> {
        self.session.get(BIND).ok().flatten()
    }
}

/// [`UserSession::log_in`] at `at`; [`logged_in`] is the same change to a copy.
fn log_in_at(session: &Session, user_id: i64, at: i64) -> Result<(), SessionError> {
    session.renew();
    unset(session, BIND);
    set(session, LOGGED_IN_AT, at)?;
    set(session, USER_ID, user_id)
}

/// Every change to the state goes through here or [`unset`]: a session
/// stored ahead ([`UserSession::log_in_linked`]) is stored again by `save`
/// once changed.
fn set(session: &Session, key: &str, value: impl Serialize) -> Result<(), SessionError> {
    session.remove(PRESAVED);
    session
        .insert(key, value)
        .map_err(|e| SessionError(e.to_string()))
}

fn unset(session: &Session, key: &str) {
    session.remove(PRESAVED);
    session.remove(key);
}

/// What [`log_in_at`] makes of a session's `state`, as actix-session
/// stores it (each value as JSON).
fn logged_in(state: &State, user_id: i64, at: i64) -> State {
    let mut state = state.clone();
    state.remove(BIND);
    state.insert(LOGGED_IN_AT.to_owned(), at.to_string());
    state.insert(USER_ID.to_owned(), user_id.to_string());
    state
}

/// A secret that sorts by when it was made: the time in milliseconds as 12
/// hex digits, a dot, then 256 random bits ([`crate::flow::random_token`]).
///
/// Session keys and login states are such secrets so that their rows sort by
/// age too ([`db_key`]): a random key puts every new row on a random page of
/// its table's b-tree, so a burst of logins wrote (and checkpointed) a page
/// per login, more as the table grew; in time order a batch of new rows
/// shares the pages at the b-tree's right edge.
pub fn time_ordered_token() -> String {
    let millis = time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000;
    format!("{millis:012x}.{}", crate::flow::random_token())
}

/// The database key of a secret that a cookie carries: its SHA-256 (a copy of
/// the table gives no usable cookie), behind the secret's time prefix when it
/// has one ([`time_ordered_token`]). Secrets made before there was a prefix
/// (a dot never occurs in them) keep their plain hash.
pub(crate) fn db_key(secret: &str) -> String {
    match secret.split_once('.') {
        Some((prefix, _))
            if prefix.len() == 12 && prefix.bytes().all(|b| b.is_ascii_hexdigit()) =>
        {
            format!("{prefix}.{}", sha256_hex(secret))
        }
        _ => sha256_hex(secret),
    }
}

fn sha256_hex(value: &str) -> String {
    use sha2::{Digest, Sha256};
    base16ct::lower::encode_string(&Sha256::digest(value.as_bytes()))
}

impl FromRequest for UserSession {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.app_data::<web::Data<AppState>>()
                .cloned()
                .map(|app| Self {
                    session: req.get_session(),
                    app,
                })
                .ok_or_else(|| actix_web::error::ErrorInternalServerError("no application state")),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bare_session() -> Session {
        actix_web::test::TestRequest::default()
            .to_http_request()
            .get_session()
    }

    #[test]
    fn the_state_stored_ahead_is_the_one_a_login_leaves() {
        let session = bare_session();
        set(&session, "other", "kept").unwrap();
        set(&session, BIND, "nonce").unwrap();
        let before = session.entries().clone();

        log_in_at(&session, 42, 1_700_000_000).unwrap();
        assert_eq!(*session.entries(), logged_in(&before, 42, 1_700_000_000));
        assert_eq!(session.get::<i64>(USER_ID).unwrap(), Some(42));
        assert_eq!(session.get::<String>(BIND).unwrap(), None);
        assert_eq!(
            session.get::<String>("other").unwrap().as_deref(),
            Some("kept")
        );
    }

    #[test]
    fn any_change_after_the_session_was_stored_ahead_makes_save_store_it_again() {
        for change in [
            |s: &Session| set(s, BIND, "new").unwrap(),
            |s: &Session| unset(s, BIND),
        ] {
            let session = bare_session();
            set(&session, BIND, "token").unwrap();
            session.insert(PRESAVED, "key").unwrap();
            change(&session);
            assert!(!session.entries().contains_key(PRESAVED));
        }
    }

    #[test]
    fn sha256_hex_is_the_lowercase_hex_digest() {
        assert_eq!(
            sha256_hex("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn a_time_ordered_secret_is_keyed_by_its_time_and_its_hash_only() {
        let secret = time_ordered_token();
        let (prefix, random) = secret.split_once('.').unwrap();
        assert_eq!(prefix.len(), 12);
        assert_eq!(random.len(), 43, "256 random bits");
        let key = db_key(&secret);
        assert_eq!(key, format!("{prefix}.{}", sha256_hex(&secret)));
        assert!(!key.contains(random));
    }

    #[test]
    fn later_secrets_get_later_keys() {
        let first = db_key(&time_ordered_token());
        let prefix = |key: &str| key[..12].to_owned();
        // Until the clock has moved on by a millisecond (well within a second).
        let until = std::time::Instant::now() + std::time::Duration::from_secs(1);
        let second = loop {
            let key = db_key(&time_ordered_token());
            if prefix(&key) != prefix(&first) || std::time::Instant::now() > until {
                break key;
            }
        };
        assert!(first < second, "{first} then {second}");
    }

    #[test]
    fn secrets_without_a_time_prefix_keep_their_plain_hash() {
        // actix-session's own keys (64 alphanumerics), and states made before the prefix.
        for old in [
            "0123456789abcdefABCDEF0123456789abcdefABCDEF0123456789abcdefABCD",
            "Zm9vYmFyYmF6cXV4LXF1dXhfY29yZ2VncmF1bHRnYXJwbHk",
            "0123456789a.x",
            "0123456789ag.x",
        ] {
            assert_eq!(db_key(old).len(), 64, "{old}");
        }
        assert_eq!(db_key("0123456789ab.x").len(), 12 + 1 + 64);
    }
}

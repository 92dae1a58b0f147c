//! A QQ login in progress: the `state` sent to QQ, where to go after, and
//! when it began.
//!
//! It travels in a cookie of its own, encrypted and authenticated with the
//! cookie key, so leaving for QQ writes nothing on the server and any
//! instance can check the way back. The cookie is what ties the state to this
//! browser; the server's part is to remember each state that came back
//! (`used_oauth_states`), so that a state works for one callback only, even
//! if someone replays the cookie.

use actix_web::HttpRequest;
use actix_web::cookie::{Cookie, CookieJar, Key, SameSite};
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

use crate::db::{self, Db, DbError};
use crate::token::Keys;

/// How long a QQ login may take between leaving for QQ and coming back.
pub const OAUTH_STATE_TTL_SECS: i64 = 10 * 60;

/// The cookie that carries the login in progress.
pub const OAUTH_COOKIE: &str = "qqlogin_oauth";

/// A login at QQ that this browser started.
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

/// Why the way back from QQ was refused, or could not be checked.
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Db(#[from] DbError),
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

    /// The cookie that carries this attempt to the callback.
    pub fn to_cookie(&self, key: &Key, secure: bool) -> Cookie<'static> {
        let value = serde_json::to_string(self).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(key).add(
            Cookie::build(OAUTH_COOKIE, value)
                .path("/")
                .http_only(true)
                .secure(secure)
                // Lax: the cookie must come back with QQ's top-level redirect.
                .same_site(SameSite::Lax)
                .max_age(actix_web::cookie::time::Duration::seconds(
                    OAUTH_STATE_TTL_SECS,
                ))
                .finish(),
        );
        jar.get(OAUTH_COOKIE)
            .cloned()
            .unwrap_or_else(|| Cookie::new(OAUTH_COOKIE, ""))
    }

    /// The attempt this browser's cookie carries, if it is one of ours
    /// (under the current key, or the previous one during a key change).
    pub fn from_request(req: &HttpRequest, keys: &Keys) -> Option<Self> {
        let cookie = req.cookie(OAUTH_COOKIE)?;
        std::iter::once(&keys.cookie)
            .chain(&keys.cookie_previous)
            .find_map(|key| CookieJar::new().private(key).decrypt(cookie.clone()))
            .and_then(|plain| serde_json::from_str(plain.value()).ok())
    }

    /// Checks `state` (from the callback) against the attempt and marks it
    /// used: it must be this attempt's, in time, and never seen before.
    pub async fn use_once(
        self,
        state: Option<&str>,
        now: i64,
        db: &Db,
    ) -> Result<Self, AttemptError> {
        self.check(state, now)?;
        let key = super::db_key(&self.state);
        let forget_at = db::now().saturating_add(time::Duration::seconds(OAUTH_STATE_TTL_SECS));
        let first_use = db
            .write(move |conn| db::oauth_state::use_once(conn, &key, forget_at))
            .await?;
        if !first_use {
            return Err(StateError::Missing.into());
        }
        Ok(self)
    }
}

/// The cookie that makes the browser forget the attempt.
pub fn removal_cookie() -> Cookie<'static> {
    let mut cookie = Cookie::build(OAUTH_COOKIE, "").path("/").finish();
    cookie.make_removal();
    cookie
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

    #[test]
    fn during_a_key_change_an_attempt_made_under_the_previous_key_still_counts() {
        use secrecy::SecretString;
        let secret = |c: char| SecretString::from(c.to_string().repeat(64));
        let before = Keys::with_previous(&secret('a'), None);
        let after = Keys::with_previous(&secret('b'), Some(&secret('a')));
        let stranger = Keys::with_previous(&secret('c'), None);
        let req = actix_web::test::TestRequest::default()
            .cookie(attempt().to_cookie(&before.cookie, false))
            .to_http_request();
        let read = |keys: &Keys| OAuthAttempt::from_request(&req, keys).map(|a| a.state);
        assert_eq!(read(&after).as_deref(), Some("s3cret-state"));
        assert_eq!(read(&stranger), None);
    }

    #[test]
    fn the_cookie_can_be_read_back_only_with_our_key() {
        let key = Key::generate();
        let cookie = attempt().to_cookie(&key, true);
        assert!(cookie.http_only().unwrap_or(false));
        assert!(cookie.secure().unwrap_or(false));
        assert!(!cookie.value().contains("s3cret"), "the state is readable");

        let read = |key: &Key| {
            CookieJar::new()
                .private(key)
                .decrypt(cookie.clone())
                .map(|c| c.value().to_owned())
        };
        let plain = read(&key).unwrap();
        let back: OAuthAttempt = serde_json::from_str(&plain).unwrap();
        assert_eq!(back.state, "s3cret-state");
        assert_eq!(read(&Key::generate()), None);
    }
}

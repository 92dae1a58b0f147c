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
/// [`OAUTH_STATE_TTL_SECS`] as a duration.
pub const OAUTH_STATE_TTL: time::Duration = time::Duration::seconds(OAUTH_STATE_TTL_SECS);

/// The cookie that carries the login in progress.
pub const OAUTH_COOKIE: &str = "qqlogin_oauth";
/// The cookie that carries a JSON API front end's login in progress.
pub const API_OAUTH_COOKIE: &str = "qqlogin_api_oauth";

/// Which face of the service a QQ login began on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    /// The pages: `state` is the attempt's own secret, compared at the callback.
    Pages,
    /// The JSON API: QQ's `state` is `next`, as the original front ends read
    /// it back; the cookie alone ties the code's exchange to this browser.
    Api,
}

impl Flow {
    pub fn cookie_name(self) -> &'static str {
        match self {
            Self::Pages => OAUTH_COOKIE,
            Self::Api => API_OAUTH_COOKIE,
        }
    }
}

/// A login at QQ that this browser started.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OAuthAttempt {
    /// An unguessable secret of this attempt's, used up when it comes back
    /// (for the pages also the `state` sent to QQ).
    pub state: String,
    pub next: String,
    pub started_at: i64,
    /// Set when a logged-in person links QQ from the account centre: their
    /// user id, which must still be logged in when QQ sends them back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_for: Option<i64>,
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
    /// A new attempt, begun now, to come back to `next`.
    pub fn begin(next: &crate::domain::LocalPath, now: i64) -> Self {
        Self {
            state: crate::secret::time_ordered_token(),
            next: next.as_str().to_owned(),
            started_at: now,
            link_for: None,
        }
    }

    /// The same attempt, to link the QQ account to `user_id` instead of logging in.
    pub fn linking_for(self, user_id: i64) -> Self {
        Self {
            link_for: Some(user_id),
            ..self
        }
    }

    /// Whether `state` (from the callback) is this attempt's, in time.
    pub fn check(&self, state: Option<&str>, now: i64) -> Result<(), StateError> {
        let given = state.unwrap_or_default().as_bytes();
        // Constant-time: the comparison must not tell an attacker how much of a guess was right.
        if !bool::from(given.ct_eq(self.state.as_bytes())) {
            return Err(StateError::Mismatch);
        }
        self.check_age(now)
    }

    fn check_age(&self, now: i64) -> Result<(), StateError> {
        if now.saturating_sub(self.started_at) > OAUTH_STATE_TTL_SECS {
            return Err(StateError::Expired);
        }
        Ok(())
    }

    /// The cookie that carries this attempt to the callback.
    pub fn to_cookie(&self, flow: Flow, key: &Key, secure: bool) -> Cookie<'static> {
        let value = serde_json::to_string(self).unwrap_or_default();
        let mut jar = CookieJar::new();
        jar.private_mut(key).add(
            Cookie::build(flow.cookie_name(), value)
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
        jar.get(flow.cookie_name())
            .cloned()
            .unwrap_or_else(|| Cookie::new(flow.cookie_name(), ""))
    }

    /// The attempt this browser's cookie carries, if it is one of ours
    /// (under the current key, or the previous one during a key change).
    pub fn from_request(req: &HttpRequest, flow: Flow, keys: &Keys) -> Option<Self> {
        let cookie = req.cookie(flow.cookie_name())?;
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
        self.mark_used(db).await
    }

    /// For the JSON API, whose front ends send back only the code: checks
    /// that the attempt is in time and marks it used, so that this browser's
    /// cookie lets one code through, once.
    pub async fn use_once_for_api(self, now: i64, db: &Db) -> Result<Self, AttemptError> {
        self.check_age(now)?;
        self.mark_used(db).await
    }

    async fn mark_used(self, db: &Db) -> Result<Self, AttemptError> {
        let key = crate::secret::db_key(&self.state);
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
pub fn removal_cookie(flow: Flow) -> Cookie<'static> {
    let mut cookie = Cookie::build(flow.cookie_name(), "").path("/").finish();
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
            link_for: None,
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
            .cookie(attempt().to_cookie(Flow::Pages, &before.cookie, false))
            .to_http_request();
        let read =
            |keys: &Keys| OAuthAttempt::from_request(&req, Flow::Pages, keys).map(|a| a.state);
        assert_eq!(read(&after).as_deref(), Some("s3cret-state"));
        assert_eq!(read(&stranger), None);
    }

    #[test]
    fn the_cookie_can_be_read_back_only_with_our_key() {
        let key = Key::generate();
        let cookie = attempt().to_cookie(Flow::Pages, &key, true);
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

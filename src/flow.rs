//! The QQ login itself, shared by the pages and the JSON API: a code from
//! QQ becomes either a known user or a QQ account waiting to be linked.

use std::time::Instant;

use crate::db::user::User;
use crate::domain::OpenId;
use crate::error::AppError;
use crate::state::AppState;

/// The longest QQ nickname kept; QQ's own are far shorter, a hostile QQ's need not be.
pub const MAX_NICKNAME_CHARS: usize = 64;

/// Where a person stands after QQ vouched for them.
pub enum Arrival {
    /// The QQ account is linked: log this user in.
    Known(User),
    /// Not linked yet: the person must bind it to an account.
    Unknown {
        openid: OpenId,
        nickname: Option<String>,
    },
}

/// Exchanges `code` for the person's openid and looks it up: two calls to
/// QQ (under one deadline) and one query. The database is not touched while
/// QQ is being waited on.
pub async fn arrive(state: &AppState, code: &str) -> Result<Arrival, AppError> {
    arrive_as(state, code, async |openid| {
        Ok(state.accounts.find_by_openid(openid).await?)
    })
    .await
}

/// [`arrive`], with the linked user found by `find` (the pages log them in
/// as they find them: [`crate::session::UserSession::log_in_linked`]).
pub async fn arrive_as(
    state: &AppState,
    code: &str,
    find: impl AsyncFnOnce(&OpenId) -> Result<Option<User>, AppError>,
) -> Result<Arrival, AppError> {
    // One budget for every call to QQ in this login, the nickname's included.
    let deadline = Instant::now() + state.qq.timeout();
    let identity = state.qq.identify(code).await?;
    if let Some(user) = find(&identity.openid).await? {
        return Ok(Arrival::Known(user));
    }
    // Only newcomers need a nickname, and only to be shown it: if QQ will not
    // say, the bind page does without.
    let user_info = state
        .qq
        .fetch_user_info(&identity.access_token, &identity.openid);
    let nickname = match tokio::time::timeout_at(deadline.into(), user_info).await {
        // Cut to a sane length: it travels in the bind token, which must fit a form field.
        Ok(Ok(info)) => Some(
            info.nickname
                .trim()
                .chars()
                .take(MAX_NICKNAME_CHARS)
                .collect(),
        )
        .filter(|n: &String| !n.is_empty()),
        Ok(Err(e)) => {
            log::warn!("QQ get_user_info failed, binding without a nickname: {e}");
            None
        }
        Err(_) => {
            log::warn!("QQ get_user_info out of time, binding without a nickname");
            None
        }
    };
    Ok(Arrival::Unknown {
        openid: identity.openid,
        nickname,
    })
}

/// An unguessable token (256 bits, URL-safe) for `state`, nonces and CSRF.
pub fn random_token() -> String {
    use base64::Engine;
    let bytes: [u8; 32] = rand::random();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

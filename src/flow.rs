//! The QQ login itself, shared by the pages and the JSON API: a code from
//! QQ becomes either a known user or a QQ account waiting to be linked.

use std::time::Instant;

use crate::account::{AccountError, Accounts};
use crate::db::user::User;
use crate::domain::OpenId;
use crate::qq::{QqClient, QqError};

/// The longest QQ nickname kept; QQ's own are far shorter, a hostile QQ's need not be.
pub const MAX_NICKNAME_CHARS: usize = 64;

/// Where a person stands after QQ vouched for them.
pub enum Arrival {
    /// The QQ account is linked: log this user in.
    Known(User),
    /// Not linked yet: the person must bind it to an account.
    Unknown {
        openid: OpenId,
        /// Under `QQ_USE_UNIONID`, when QQ gave one.
        unionid: Option<String>,
        nickname: Option<String>,
    },
}

/// Why QQ's code led nowhere.
#[derive(Debug, thiserror::Error)]
pub enum ArrivalError {
    #[error(transparent)]
    Qq(#[from] QqError),
    #[error(transparent)]
    Account(#[from] AccountError),
}

/// Exchanges `code` for the person's openid and looks it up: two calls to
/// QQ (under one deadline) and one query; a newcomer's nickname is asked of
/// QQ too, within the same deadline. The database is not touched while QQ is
/// being waited on.
pub async fn arrive(
    qq: &QqClient,
    accounts: &Accounts,
    code: &str,
) -> Result<Arrival, ArrivalError> {
    let deadline = Instant::now() + qq.timeout();
    let identity = qq.identify(code).await?;
    if let Some(user) = accounts
        .find_linked(&identity.openid, identity.unionid.as_deref())
        .await?
    {
        return Ok(Arrival::Known(user));
    }
    // Only newcomers need a nickname, and only to be shown it: if QQ will not
    // say, the bind page does without.
    let user_info = qq.fetch_user_info(&identity.access_token, &identity.openid);
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
        unionid: identity.unionid,
        nickname,
    })
}

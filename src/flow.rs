//! The QQ login itself, shared by the pages and the JSON API: a code from
//! QQ becomes either a known user or a QQ account waiting to be linked.

use std::time::Instant;

use crate::account::{AccountError, Accounts};
use crate::db::user::User;
use crate::domain::{AvatarUrl, LocalPath, OpenId};
use crate::events::{Event, Kind, Method};
use crate::qq::{AccessToken, QqClient, QqError, UserInfo};
use crate::token::PendingBind;

/// The longest QQ nickname kept; QQ's own are far shorter, a hostile QQ's need not be.
pub const MAX_NICKNAME_CHARS: usize = 64;

/// Where a person stands after QQ vouched for them.
pub enum Arrival {
    /// The QQ account is linked: log this user in.
    Known(User),
    /// Not linked yet: the person must bind it to an account.
    Unknown(Newcomer),
}

/// A QQ account seen for the first time, as QQ showed it.
pub struct Newcomer {
    pub openid: OpenId,
    /// Under `QQ_USE_UNIONID`, when QQ gave one.
    pub unionid: Option<String>,
    pub nickname: Option<String>,
    pub avatar: Option<AvatarUrl>,
}

impl Newcomer {
    /// The bind this newcomer is offered, to come back to `next`; `browser`
    /// is the page flow's session nonce.
    pub fn pending_bind(self, next: LocalPath, browser: Option<String>) -> PendingBind {
        PendingBind::new(self.openid, self.nickname, next, browser)
            .with_unionid(self.unionid)
            .with_avatar(self.avatar)
    }
}

/// Why QQ's code led nowhere.
#[derive(Debug, thiserror::Error)]
pub enum ArrivalError {
    #[error(transparent)]
    Qq(#[from] QqError),
    #[error(transparent)]
    Account(#[from] AccountError),
}

impl ArrivalError {
    /// The failure, as a sign-in event records it.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Qq(e) if e.is_rejected_code() => "qq_code_rejected",
            Self::Qq(QqError::Timeout) => "qq_timeout",
            Self::Qq(_) => "qq_failed",
            Self::Account(e) => e.reason(),
        }
    }
}

/// The sign-in event of a QQ login by `method` that ended in `arrived`: none
/// for a newcomer, whose bind will be the event.
pub fn login_event(arrived: &Result<Arrival, ArrivalError>, method: Method) -> Option<Event> {
    match arrived {
        Ok(Arrival::Known(user)) => Some(Event::ok(Kind::Login, Some(method), user.id)),
        Ok(Arrival::Unknown(_)) => None,
        Err(e) => Some(Event::failed(Kind::Login, Some(method), None, e.reason())),
    }
}

/// Exchanges `code` for the person's openid and looks it up: two calls to
/// QQ (under one deadline) and one query; a newcomer's nickname and avatar
/// are asked of QQ too, within the same deadline. The database is not
/// touched while QQ is being waited on. A known person's stored QQ profile,
/// when a day old, is refreshed after the answer, off the login's path.
pub async fn arrive(
    qq: &QqClient,
    accounts: &Accounts,
    code: &str,
) -> Result<Arrival, ArrivalError> {
    let deadline = Instant::now() + qq.timeout();
    let identity = qq.identify(code).await?;
    if let Some(linked) = accounts
        .find_linked(&identity.openid, identity.unionid.as_deref())
        .await?
    {
        if !linked.user.is_active {
            return Err(AccountError::Disabled.into());
        }
        if linked.profile_stale {
            refresh_profile_later(qq, accounts, identity.access_token, identity.openid);
        }
        return Ok(Arrival::Known(linked.user));
    }
    // Only newcomers need a nickname, and only to be shown it: if QQ will not
    // say, the bind page does without.
    let user_info = qq.fetch_user_info(&identity.access_token, &identity.openid);
    let info = match tokio::time::timeout_at(deadline.into(), user_info).await {
        Ok(Ok(info)) => Some(info),
        Ok(Err(e)) => {
            log::warn!("QQ get_user_info failed, binding without a nickname: {e}");
            None
        }
        Err(_) => {
            log::warn!("QQ get_user_info out of time, binding without a nickname");
            None
        }
    };
    let (nickname, avatar) = info.map(profile).unwrap_or_default();
    Ok(Arrival::Unknown(Newcomer {
        openid: identity.openid,
        unionid: identity.unionid,
        nickname,
        avatar,
    }))
}

/// The nickname, cut to a sane length (it travels in the bind token, which
/// must fit a form field), and the avatar.
fn profile(info: UserInfo) -> (Option<String>, Option<AvatarUrl>) {
    let nickname: String = info
        .nickname
        .trim()
        .chars()
        .take(MAX_NICKNAME_CHARS)
        .collect();
    ((!nickname.is_empty()).then_some(nickname), info.avatar)
}

/// Asks QQ for the person's nickname and avatar and stores them, in the
/// background: the login has answered by then.
fn refresh_profile_later(qq: &QqClient, accounts: &Accounts, token: AccessToken, openid: OpenId) {
    let (qq, accounts) = (qq.clone(), accounts.clone());
    actix_web::rt::spawn(async move {
        let refreshed = match qq.fetch_user_info(&token, &openid).await {
            Ok(info) => {
                let (nickname, avatar) = profile(info);
                accounts
                    .refresh_profile(&openid, nickname, avatar)
                    .await
                    .map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        if let Err(e) = refreshed {
            log::warn!("the QQ profile of a linked account could not be refreshed: {e}");
        }
    });
}

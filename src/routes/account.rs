//! The account centre (`/account`): what the logged-in person sees of their
//! account, and the actions on it. Every action needs a recent proof of who
//! the person is (`REAUTH_AFTER`); without one, it is refused with a page
//! that leads to `/account/verify`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use time::{OffsetDateTime, PrimitiveDateTime, UtcOffset};

use super::oauth::{display_for, leave_for_qq};
use super::{check_csrf, client, form_page, see_other, send_sms, typed_sms_code};
use crate::account::{AccountError, Credential};
use crate::db::qq_link::Link;
use crate::db::user::User;
use crate::domain::{LocalPath, Mobile, Password};
use crate::error::{Action, AppError, InputError, Malformed};
use crate::events::short_agent;
use crate::i18n::Lang;
use crate::session::attempt::Flow;
use crate::session::{ActiveSession, CsrfToken, OAuthAttempt, UserSession};
use crate::sms::RESEND_AFTER;
use crate::state::AppState;
use crate::templates::{AccountPage, DeletePage, QqView, SessionView, SignInView, VerifyPage};

/// What the account centre says after an action went well (`?done=`).
fn notice_for(done: &str) -> Option<&'static str> {
    let t = &crate::i18n::texts().account;
    Some(match done {
        "verified" => t.done_verified,
        "linked" => t.done_linked,
        "unlinked" => t.done_unlinked,
        "password" => t.done_password,
        "mobile" => t.done_mobile,
        "session" => t.done_session,
        "session_gone" => t.done_session_gone,
        "sessions" => t.done_sessions,
        _ => return None,
    })
}

#[derive(Deserialize)]
pub struct ShowQuery {
    done: Option<String>,
}

/// The account centre; visitors are sent to log in first, and come back.
pub async fn show(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    query: web::Query<ShowQuery>,
) -> Result<HttpResponse, AppError> {
    let Some(user_id) = session.user_id() else {
        return Ok(see_other("/login?next=/account"));
    };
    let notice = query.done.as_deref().and_then(notice_for);
    let shown = Shown {
        status: StatusCode::OK,
        error: None,
        notice,
        new_mobile: "",
        resend_in: 0,
    };
    account_page(&req, &state, &session, user_id, shown).await
}

/// How the account page is shown this time.
struct Shown<'a> {
    status: StatusCode,
    error: Option<&'a str>,
    notice: Option<&'a str>,
    new_mobile: &'a str,
    resend_in: u64,
}

async fn account_page(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    user_id: i64,
    shown: Shown<'_>,
) -> Result<HttpResponse, AppError> {
    let overview = state
        .accounts
        .overview(user_id)
        .await?
        .ok_or(AppError::Account(AccountError::Gone))?;
    let current = session.handle();
    let csrf = CsrfToken::of(req, &state.keys);
    let mobile = masked(&overview.user.mobile);
    let user = &overview.user;
    let page = AccountPage {
        username: &masked_name(user),
        mobile: &mobile,
        has_password: overview.user.has_usable_password(),
        qq: overview.link.as_ref().map(qq_view),
        sessions: overview
            .sessions
            .iter()
            .map(|row| session_view(&ActiveSession::from_row(row, current.as_deref())))
            .collect(),
        sign_ins: overview
            .sign_ins
            .iter()
            .map(|e| SignInView {
                at: china_time(e.at),
                method: method_label(&e.kind, e.method.as_deref()),
                address: e.address.clone().unwrap_or_else(unknown_address),
                agent: short_agent(e.user_agent.as_deref()),
                ok: e.outcome == crate::events::Event::OK,
            })
            .collect(),
        error: shown.error,
        notice: shown.notice,
        new_mobile: shown.new_mobile,
        resend_in: shown.resend_in,
        csrf_token: csrf.as_str(),
    };
    form_page(state, shown.status, &page, &csrf)
}

/// The logged-in user for an action: it must come from this site's own
/// form, and the person must have proved who they are lately.
async fn for_action(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    csrf_token: Option<&str>,
) -> Result<User, AppError> {
    check_csrf(req, state, csrf_token)?;
    let user_id = session.user_id().ok_or(AppError::Unauthenticated)?;
    if !session.recently_verified(OffsetDateTime::now_utc()) {
        return Err(AppError::ReauthRequired);
    }
    state
        .accounts
        .find_by_id(user_id)
        .await?
        .ok_or(AppError::Account(AccountError::Gone))
}

/// An action's answer: back to the account centre with `done`'s notice, or
/// the account page again with the reason next to the form.
async fn answer(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    done: Result<&'static str, AppError>,
) -> Result<HttpResponse, AppError> {
    match done {
        Ok(done) => Ok(see_other(&format!("/account?done={done}"))),
        Err(e) if e.belongs_on_the_form() => refused(req, state, session, &e, "").await,
        Err(e) => Err(e),
    }
}

/// The account page again, with the reason `e` next to the forms.
async fn refused(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    e: &AppError,
    new_mobile: &str,
) -> Result<HttpResponse, AppError> {
    let user_id = session.user_id().ok_or(AppError::Unauthenticated)?;
    let told = e.explain();
    let shown = Shown {
        status: told.status,
        error: Some(told.detail),
        notice: None,
        new_mobile,
        resend_in: e.resend_in(),
    };
    let mut page = account_page(req, state, session, user_id, shown).await?;
    e.add_retry_after(&mut page);
    Ok(page)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    csrf_token: Option<String>,
}

/// The page that asks who the person is again.
pub async fn verify_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, AppError> {
    let user_id = session.user_id().ok_or(AppError::Unauthenticated)?;
    verify_page(&req, &state, user_id, StatusCode::OK, None, None, 0).await
}

async fn verify_page(
    req: &HttpRequest,
    state: &AppState,
    user_id: i64,
    status: StatusCode,
    error: Option<&str>,
    notice: Option<&str>,
    resend_in: u64,
) -> Result<HttpResponse, AppError> {
    let user = state
        .accounts
        .find_by_id(user_id)
        .await?
        .ok_or(AppError::Account(AccountError::Gone))?;
    let csrf = CsrfToken::of(req, &state.keys);
    let mobile = masked(&user.mobile);
    let page = VerifyPage {
        has_password: user.has_usable_password(),
        mobile: &mobile,
        error,
        notice,
        resend_in,
        csrf_token: csrf.as_str(),
    };
    form_page(state, status, &page, &csrf)
}

#[derive(Deserialize)]
pub struct VerifyForm {
    password: Option<SecretString>,
    sms_code: Option<String>,
    csrf_token: Option<String>,
}

/// Checks the password (or, for an account without one, the SMS code) again.
pub async fn verify(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<VerifyForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let user_id = session.user_id().ok_or(AppError::Unauthenticated)?;
    let form = form.into_inner();
    let verified = async {
        let credential = match (form.password, typed_sms_code(form.sms_code.as_deref())?) {
            (_, Some(code)) => Credential::SmsCode(code),
            (Some(password), None) => Credential::Password(
                Password::parse(password).map_err(|_| AccountError::ReauthFailed)?,
            ),
            (None, None) => return Err(InputError::Missing.into()),
        };
        state
            .accounts
            .verify_again(user_id, credential, &client(&req))
            .await?;
        Ok::<_, AppError>(())
    };
    match verified.await {
        Ok(()) => {
            session.mark_verified(OffsetDateTime::now_utc())?;
            Ok(see_other("/account?done=verified"))
        }
        Err(e) if e.belongs_on_the_form() => verify_refused(&req, &state, user_id, &e).await,
        Err(e) => Err(e),
    }
}

/// The verify page again, with the reason `e` next to its form.
async fn verify_refused(
    req: &HttpRequest,
    state: &AppState,
    user_id: i64,
    e: &AppError,
) -> Result<HttpResponse, AppError> {
    let told = e.explain();
    let (status, detail) = (told.status, Some(told.detail));
    let mut page = verify_page(req, state, user_id, status, detail, None, e.resend_in()).await?;
    e.add_retry_after(&mut page);
    Ok(page)
}

/// Sends a code to the account's own mobile, for an account without a password.
pub async fn send_verify_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let user_id = session.user_id().ok_or(AppError::Unauthenticated)?;
    let sent = async {
        let user = state
            .accounts
            .find_by_id(user_id)
            .await?
            .ok_or(AppError::Account(AccountError::Gone))?;
        if user.has_usable_password() {
            return Err(AppError::BadRequest(Malformed::HasPassword));
        }
        let mobile = Mobile::parse(&user.mobile).map_err(|_| InputError::Mobile)?;
        send_sms(&req, &state, &mobile, None).await
    };
    match sent.await {
        Ok(notice) => {
            let wait = RESEND_AFTER.as_secs();
            verify_page(
                &req,
                &state,
                user_id,
                StatusCode::OK,
                None,
                Some(&notice),
                wait,
            )
            .await
        }
        Err(e) if e.belongs_on_the_form() => verify_refused(&req, &state, user_id, &e).await,
        Err(e) => Err(e),
    }
}

pub async fn unlink_qq(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    let done = async {
        let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
        state.accounts.unlink_qq(&user, &client(&req)).await?;
        Ok("unlinked")
    };
    answer(&req, &state, &session, done.await).await
}

/// Off to QQ to link a QQ account to this one; QQ's callback finishes it.
pub async fn link_qq(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<CsrfOnly>,
) -> Result<HttpResponse, AppError> {
    let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
    let now = OffsetDateTime::now_utc().unix_timestamp();
    let attempt =
        OAuthAttempt::begin(&LocalPath::sanitize(Some("/account")), now).linking_for(user.id);
    let url = state.qq.authorize_url(&attempt.state, display_for(&req));
    Ok(leave_for_qq(&url, &attempt, Flow::Pages, &state))
}

#[derive(Deserialize)]
pub struct PasswordForm {
    password: SecretString,
    password2: SecretString,
    csrf_token: Option<String>,
}

pub async fn change_password(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<PasswordForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let done = async {
        let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
        let password = new_password(form.password, &form.password2)?;
        state
            .accounts
            .change_password(user.id, password, session.handle(), &client(&req))
            .await?;
        Ok("password")
    };
    answer(&req, &state, &session, done.await).await
}

/// A new password, typed twice alike and of a possible length.
pub(super) fn new_password(
    password: SecretString,
    again: &SecretString,
) -> Result<Password, InputError> {
    use secrecy::ExposeSecret;
    if password.expose_secret() != again.expose_secret() {
        return Err(InputError::PasswordsDiffer);
    }
    Password::parse(password).map_err(|_| InputError::Password)
}

#[derive(Deserialize)]
pub struct MobileForm {
    mobile: String,
    sms_code: Option<String>,
    csrf_token: Option<String>,
}

/// The account centre's "获取验证码": a code to the new mobile.
pub async fn send_mobile_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<MobileForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let sent = async {
        let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
        let mobile = Mobile::parse(&form.mobile).map_err(|_| InputError::Mobile)?;
        Ok::<_, AppError>((user, send_sms(&req, &state, &mobile, None).await?))
    };
    let typed: String = form.mobile.chars().take(20).collect();
    match sent.await {
        Ok((user, notice)) => {
            let shown = Shown {
                status: StatusCode::OK,
                error: None,
                notice: Some(&notice),
                new_mobile: &typed,
                resend_in: RESEND_AFTER.as_secs(),
            };
            account_page(&req, &state, &session, user.id, shown).await
        }
        Err(e) if e.belongs_on_the_form() => refused(&req, &state, &session, &e, &typed).await,
        Err(e) => Err(e),
    }
}

pub async fn change_mobile(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<MobileForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let done = async {
        let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
        let mobile = Mobile::parse(&form.mobile).map_err(|_| InputError::Mobile)?;
        let code = typed_sms_code(form.sms_code.as_deref())?
            .ok_or(AppError::Account(AccountError::SmsCodeRequired))?;
        state
            .accounts
            .change_mobile(&user, &mobile, &code, &client(&req))
            .await?;
        Ok("mobile")
    };
    answer(&req, &state, &session, done.await).await
}

#[derive(Deserialize)]
pub struct EndSessionsForm {
    handle: Option<String>,
    all_others: Option<String>,
    csrf_token: Option<String>,
}

/// Ends one session of the account (`handle`), or all but this one.
pub async fn end_sessions(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<EndSessionsForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let done = async {
        let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
        let client = client(&req);
        match (form.handle, form.all_others.is_some()) {
            (_, true) => {
                state
                    .accounts
                    .end_other_sessions(user.id, session.handle(), &client)
                    .await?;
                Ok("sessions")
            }
            // This browser's own session ends by logging out, not from here.
            (Some(handle), false) if Some(&handle) != session.handle().as_ref() => {
                let ended = state.accounts.end_session(user.id, handle, &client).await?;
                Ok(if ended { "session" } else { "session_gone" })
            }
            _ => Err(InputError::Missing.into()),
        }
    };
    answer(&req, &state, &session, done.await).await
}

/// The confirmation page of 注销.
pub async fn delete_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, AppError> {
    let Some(user_id) = session.user_id() else {
        return Ok(see_other("/login?next=/account/delete"));
    };
    delete_page(&req, &state, user_id, StatusCode::OK, None).await
}

async fn delete_page(
    req: &HttpRequest,
    state: &AppState,
    user_id: i64,
    status: StatusCode,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let user = state
        .accounts
        .find_by_id(user_id)
        .await?
        .ok_or(AppError::Account(AccountError::Gone))?;
    let csrf = CsrfToken::of(req, &state.keys);
    let page = DeletePage {
        username: &masked_name(&user),
        error,
        csrf_token: csrf.as_str(),
    };
    form_page(state, status, &page, &csrf)
}

#[derive(Deserialize)]
pub struct DeleteForm {
    confirm: Option<String>,
    csrf_token: Option<String>,
}

/// 注销: the account is deleted and this browser logged out.
pub async fn delete(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<DeleteForm>,
) -> Result<HttpResponse, AppError> {
    let user = for_action(&req, &state, &session, form.csrf_token.as_deref()).await?;
    if !form.confirm.as_deref().is_some_and(confirms_deletion) {
        let e = AppError::Input(InputError::NotConfirmed);
        let told = e.explain();
        return delete_page(&req, &state, user.id, told.status, Some(told.detail)).await;
    }
    state.accounts.delete(&user).await?;
    session.log_out();
    let deleted = crate::i18n::texts().account.deleted;
    Ok(crate::templates::render(
        StatusCode::OK,
        &crate::templates::ErrorPage {
            title: deleted.title,
            detail: deleted.detail,
            action_href: Action::Home.href(),
            action_label: Action::Home.label(),
            request_id: None,
        },
    )?)
}

/// The word typed to confirm a deletion: the page's, in either language,
/// since the person may have switched between reading and typing.
fn confirms_deletion(typed: &str) -> bool {
    let typed = typed.trim();
    Lang::ALL
        .iter()
        .any(|lang| typed.eq_ignore_ascii_case(lang.texts().delete.confirm_word))
}

/// The linked QQ account, for a page.
pub(super) fn qq_view(link: &Link) -> QqView {
    QqView {
        nickname: link
            .nickname
            .clone()
            .unwrap_or_else(|| crate::i18n::texts().common.no_nickname.to_owned()),
        avatar: link.avatar_url.clone(),
        linked_at: china_time(link.created_at),
    }
}

fn session_view(s: &ActiveSession) -> SessionView {
    SessionView {
        handle: s.handle.clone(),
        since: s.logged_in_at.map_or_else(
            || crate::i18n::texts().common.unknown_time.to_owned(),
            |at| china_time(PrimitiveDateTime::new(at.date(), at.time())),
        ),
        address: s.address.clone().unwrap_or_else(unknown_address),
        agent: s.user_agent.clone().unwrap_or_else(|| short_agent(None)),
        current: s.current,
    }
}

/// The user name as pages show it: one that is the mobile is masked as the
/// mobile is.
fn masked_name(user: &User) -> String {
    if user.username == user.mobile {
        masked(&user.mobile)
    } else {
        user.username.clone()
    }
}

/// A mobile with its middle hidden, as pages show it.
fn masked(mobile: &str) -> String {
    Mobile::parse(mobile).map_or_else(|_| mobile.to_owned(), |m| m.masked())
}

/// A time stored in UTC, as people in China read it.
fn china_time(at: PrimitiveDateTime) -> String {
    let china = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    let local = at.assume_utc().to_offset(china);
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        local.year(),
        u8::from(local.month()),
        local.day(),
        local.hour(),
        local.minute()
    )
}

fn unknown_address() -> String {
    crate::i18n::texts().common.unknown_address.to_owned()
}

fn method_label(kind: &str, method: Option<&str>) -> &'static str {
    let t = &crate::i18n::texts().account;
    match (kind, method) {
        ("bind", _) => t.method_bind,
        (_, Some("qq")) => t.method_qq,
        (_, Some("qq_api")) => t.method_qq_api,
        (_, Some("password")) => t.method_password,
        (_, Some("sms_code")) => t.method_sms_code,
        _ => t.method_other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_shown_in_china() {
        let at = PrimitiveDateTime::new(
            time::Date::from_calendar_date(2026, time::Month::December, 7).unwrap(),
            time::Time::from_hms(18, 5, 0).unwrap(),
        );
        assert_eq!(china_time(at), "2026-12-08 02:05");
    }
}

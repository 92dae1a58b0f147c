//! The QQ login for browsers: off to QQ, back through the callback, and the
//! bind form for a QQ account seen for the first time.

use actix_web::http::StatusCode;
use actix_web::http::header::{LOCATION, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;
use time::OffsetDateTime;

use super::{check_csrf, client, form_page, logged_in_to, see_other, send_sms, typed_sms_code};
use crate::account::{AccountError, BindRequest};
use crate::config::BindRequireSms;
use crate::domain::{LocalPath, Mobile, Password};
use crate::error::{AppError, InputError};
use crate::events::{Event, Kind, Method};
use crate::flow::{Arrival, arrive, login_event};
use crate::qq::Display;
use crate::secret::random_token;
use crate::session::attempt::{Flow, removal_cookie};
use crate::session::{CsrfToken, OAuthAttempt, StateError, UserSession};
use crate::sms::RESEND_AFTER;
use crate::state::AppState;
use crate::templates::{BindPage, Field, WayView};
use crate::token::{PendingBind, TokenError};

#[derive(Deserialize)]
pub struct StartQuery {
    next: Option<String>,
}

/// Sends the browser to QQ with a fresh `state`, tied to this browser by the
/// attempt's cookie. Nothing is written on the server.
pub async fn start(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<StartQuery>,
) -> Result<HttpResponse, AppError> {
    let next = LocalPath::sanitize(query.next.as_deref());
    let attempt = OAuthAttempt::begin(&next, OffsetDateTime::now_utc().unix_timestamp());
    let url = state.qq.authorize_url(&attempt.state, display_for(&req));
    Ok(leave_for_qq(&url, &attempt, Flow::Pages, &state))
}

/// The redirect to QQ, with the attempt's cookie.
pub(super) fn leave_for_qq(
    url: &url::Url,
    attempt: &OAuthAttempt,
    flow: Flow,
    state: &AppState,
) -> HttpResponse {
    HttpResponse::Found()
        .insert_header((LOCATION, url.as_str()))
        .cookie(attempt.to_cookie(flow, &state.keys.cookie, state.secure_cookies))
        .finish()
}

/// Phones get QQ's phone-sized authorisation page.
pub(super) fn display_for(req: &HttpRequest) -> Display {
    let ua = req
        .headers()
        .get(USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ["Mobile", "Android", "iPhone"]
        .iter()
        .any(|m| ua.contains(m))
    {
        Display::Mobile
    } else {
        Display::Pc
    }
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
}

/// QQ sends the person back here. The state is checked, and used up, before
/// QQ is called.
pub async fn callback(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    query: web::Query<CallbackQuery>,
) -> Result<HttpResponse, AppError> {
    let now = OffsetDateTime::now_utc();
    let attempt = OAuthAttempt::from_request(&req, Flow::Pages, &state.keys)
        .ok_or(StateError::Missing)?
        .use_once(
            query.state.as_deref(),
            now.unix_timestamp(),
            state.accounts.db(),
        )
        .await?;
    let mut page = arrive_in_browser(&req, &state, &session, &query, &attempt, now).await?;
    // The state is used up: the browser may forget it (should this fail, the
    // cookie only expires later, useless).
    let _ = page.add_cookie(&removal_cookie(Flow::Pages));
    Ok(page)
}

async fn arrive_in_browser(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    query: &CallbackQuery,
    attempt: &OAuthAttempt,
    now: OffsetDateTime,
) -> Result<HttpResponse, AppError> {
    let code = query
        .code
        .as_deref()
        .filter(|c| !c.is_empty())
        .ok_or(AppError::NoCode)?;
    let next = LocalPath::sanitize(Some(&attempt.next));
    if let Some(user_id) = attempt.link_for {
        return link_from_account_centre(req, state, session, code, user_id).await;
    }
    let client = client(req);
    let arrived = arrive(&state.qq, &state.accounts, code).await;
    if let Some(event) = login_event(&arrived, Method::Qq) {
        state.accounts.events().record(event, &client);
    }
    match arrived? {
        Arrival::Known(user) => {
            session.log_in(user.id, &client)?;
            Ok(logged_in_to(next.as_str(), state))
        }
        Arrival::Unknown(newcomer) => {
            // The bind token is only good in this browser: its nonce must match the session's.
            let nonce = random_token();
            session.set_bind_nonce(&nonce)?;
            let pending = newcomer.pending_bind(next, Some(nonce));
            let token = state.keys.issue_bind_token(&pending, now)?;
            let form = Form {
                access_token: &token,
                face: &QqFace::of(&pending),
                mobile: "",
            };
            bind_page(req, state, StatusCode::OK, &form, Outcome::Fresh)
        }
    }
}

/// Back from QQ with a QQ account to link to the logged-in `user_id` (the
/// account centre's "绑定QQ"): linked, or refused when that QQ account
/// belongs to another account.
async fn link_from_account_centre(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    code: &str,
    user_id: i64,
) -> Result<HttpResponse, AppError> {
    if session.user_id() != Some(user_id) {
        return Err(AppError::Unauthenticated);
    }
    match arrive(&state.qq, &state.accounts, code).await? {
        Arrival::Known(user) if user.id == user_id => Ok(see_other("/account?done=linked")),
        Arrival::Known(_) => {
            let refused = AccountError::QqLinkedElsewhere;
            let event = Event::failed(
                Kind::Link,
                Some(Method::Qq),
                Some(user_id),
                refused.reason(),
            );
            state.accounts.events().record(event, &client(req));
            Err(refused.into())
        }
        Arrival::Unknown(newcomer) => {
            let pending = newcomer.pending_bind(LocalPath::home(), None);
            state
                .accounts
                .link_qq(user_id, &pending, &client(req))
                .await?;
            Ok(see_other("/account?done=linked"))
        }
    }
}

#[derive(Deserialize)]
pub struct BindForm {
    access_token: String,
    mobile: String,
    password: SecretString,
    sms_code: Option<String>,
    csrf_token: Option<String>,
    /// Which of the page's two ways was used: only where the answer shows.
    way: Option<String>,
}

/// The bind page's two ways. Both post the same fields to the same route,
/// and the server decides between linking and creating as it always has; the
/// way only says where on the page the answer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Way {
    /// "I already have an account".
    Existing,
    /// "I am new here".
    New,
}

impl Way {
    /// The form's `way`; none from a form of another making (a front end, a script).
    fn parse(raw: Option<&str>) -> Option<Self> {
        match raw {
            Some("existing") => Some(Self::Existing),
            Some("new") => Some(Self::New),
            _ => None,
        }
    }

    /// The way a bind came from (its `way` and `sms_code`). One without
    /// `way` that carries a code is most likely creating an account.
    fn of_bind(way: Option<&str>, sms_code: Option<&str>) -> Self {
        let with_code = sms_code.is_some_and(|c| !c.trim().is_empty());
        Self::parse(way).unwrap_or(if with_code { Self::New } else { Self::Existing })
    }
}

/// Links the pending QQ account to the mobile's account (created if new), then logs in.
pub async fn bind(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<BindForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let form = form.into_inner();
    let pending = state
        .keys
        .verify_bind_token(&form.access_token, OffsetDateTime::now_utc())
        .inspect_err(|e| log::info!("bind refused: {e}"));
    let face = pending.as_ref().map(QqFace::of).unwrap_or_default();
    let client = client(&req);
    let bound = async {
        let pending = this_browsers(pending, &session)?;
        let mobile = Mobile::parse(&form.mobile).map_err(|_| InputError::Mobile)?;
        let password = Password::parse(form.password).map_err(|_| InputError::Password)?;
        let sms_code = typed_sms_code(form.sms_code.as_deref())?;
        let user = state
            .accounts
            .bind(BindRequest {
                pending: &pending,
                mobile: &mobile,
                password,
                sms_code,
                client: &client,
                method: Method::Qq,
            })
            .await?;
        Ok::<_, AppError>((user, pending.next))
    };
    match bound.await {
        Ok((user, next)) => {
            session.log_in(user.id, &client)?;
            Ok(logged_in_to(next.as_str(), &state))
        }
        Err(e) => {
            let typed = Form {
                access_token: &form.access_token,
                face: &face,
                mobile: &form.mobile,
            };
            let way = Way::of_bind(form.way.as_deref(), form.sms_code.as_deref());
            refused_on_the_form(&req, &state, &typed, way, e)
        }
    }
}

#[derive(Deserialize)]
pub struct SmsForm {
    access_token: String,
    mobile: String,
    csrf_token: Option<String>,
    way: Option<String>,
}

/// The bind page's "获取验证码": sends a code to the mobile typed, for the
/// bind in progress in this browser, and shows the page again with a notice.
pub async fn send_sms_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<SmsForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let form = form.into_inner();
    let pending = state
        .keys
        .verify_bind_token(&form.access_token, OffsetDateTime::now_utc());
    let face = pending.as_ref().map(QqFace::of).unwrap_or_default();
    let sent = async {
        let pending = this_browsers(pending, &session)?;
        let mobile = Mobile::parse(&form.mobile).map_err(|_| InputError::Mobile)?;
        let notice = send_sms(&req, &state, &mobile, Some(pending.openid)).await?;
        Ok::<_, AppError>((mobile, notice))
    };
    // The new way's send button, unless existing accounts need a code too.
    let way = Way::parse(form.way.as_deref()).unwrap_or(Way::New);
    match sent.await {
        Ok((mobile, notice)) => {
            let typed = Form {
                access_token: &form.access_token,
                face: &face,
                mobile: mobile.as_str(),
            };
            bind_page(
                &req,
                &state,
                StatusCode::OK,
                &typed,
                Outcome::Sent {
                    way,
                    notice: &notice,
                },
            )
        }
        Err(e) => {
            let typed = Form {
                access_token: &form.access_token,
                face: &face,
                mobile: &form.mobile,
            };
            refused_on_the_form(&req, &state, &typed, way, e)
        }
    }
}

#[derive(Default)]
struct QqFace {
    nickname: Option<String>,
    avatar: Option<String>,
}

impl QqFace {
    fn of(pending: &PendingBind) -> Self {
        Self {
            nickname: pending.nickname.clone(),
            avatar: pending.avatar.as_ref().map(|a| a.as_str().to_owned()),
        }
    }
}

/// The bind page afresh for `token` (the language switcher's), if it is
/// still this browser's bind.
pub(super) fn bind_page_again(
    req: &HttpRequest,
    state: &AppState,
    session: &UserSession,
    token: &str,
) -> Result<HttpResponse, AppError> {
    let verified = state
        .keys
        .verify_bind_token(token, OffsetDateTime::now_utc());
    let pending = this_browsers(verified, session)?;
    let form = Form {
        access_token: token,
        face: &QqFace::of(&pending),
        mobile: "",
    };
    bind_page(req, state, StatusCode::OK, &form, Outcome::Fresh)
}

/// The bind the page's token carries, if it is valid and was begun in this
/// browser: a page-flow token is good only with the session it was issued to.
fn this_browsers(
    pending: Result<PendingBind, TokenError>,
    session: &UserSession,
) -> Result<PendingBind, InputError> {
    let pending = pending.map_err(|_| InputError::Token)?;
    if pending.browser.is_none() || pending.browser != session.bind_nonce() {
        return Err(InputError::OtherBrowser);
    }
    Ok(pending)
}

/// The bind form again, with the reason next to it, for a failure that
/// belongs there; any other failure is its own error page.
/// The bind form as the person sent it, to be shown again.
struct Form<'a> {
    access_token: &'a str,
    face: &'a QqFace,
    mobile: &'a str,
}

fn refused_on_the_form(
    req: &HttpRequest,
    state: &AppState,
    typed: &Form<'_>,
    way: Way,
    e: AppError,
) -> Result<HttpResponse, AppError> {
    if !e.belongs_on_the_form() {
        return Err(e);
    }
    log::info!("bind refused: {e}");
    let mobile: String = typed.mobile.chars().take(20).collect();
    let explained = e.explain();
    let refusal = Refusal {
        message: explained.detail,
        field: e.field(),
        restart: e.restarts_the_bind(),
        resend_in: e.resend_in(),
    };
    let mut page = bind_page(
        req,
        state,
        explained.status,
        &Form {
            mobile: &mobile,
            ..*typed
        },
        Outcome::Refused { way, refusal },
    )?;
    e.add_retry_after(&mut page);
    Ok(page)
}

struct Refusal<'a> {
    message: &'a str,
    field: Option<Field>,
    restart: bool,
    resend_in: u64,
}

/// What the bind page shows of the person's last request on it.
enum Outcome<'a> {
    /// None: just back from QQ.
    Fresh,
    /// A code was sent.
    Sent {
        way: Way,
        notice: &'a str,
    },
    Refused {
        way: Way,
        refusal: Refusal<'a>,
    },
}

fn bind_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    typed: &Form<'_>,
    outcome: Outcome<'_>,
) -> Result<HttpResponse, AppError> {
    let existing_needs_code = state.bind_require_sms == BindRequireSms::Always;
    let (mut error, mut restart) = (None, false);
    let shown = match outcome {
        Outcome::Fresh => None,
        Outcome::Sent { way, notice } => Some((
            way,
            WayView {
                notice: Some(notice),
                resend_in: RESEND_AFTER.as_secs(),
                ..WayView::default()
            },
        )),
        // The QQ login itself is spent: neither way can go on.
        Outcome::Refused { refusal, .. } if refusal.restart => {
            (error, restart) = (Some(refusal.message), true);
            None
        }
        Outcome::Refused { way, refusal } => {
            let has_sms_code = way == Way::New || existing_needs_code;
            let view = WayView::refused(refusal.message, refusal.field, has_sms_code);
            Some((
                way,
                WayView {
                    resend_in: refusal.resend_in,
                    ..view
                },
            ))
        }
    };
    let (mut existing, mut new) = (WayView::default(), WayView::default());
    match shown {
        Some((Way::Existing, view)) => existing = view,
        Some((Way::New, view)) => new = view,
        None => {}
    }
    let csrf = CsrfToken::of(req, &state.keys);
    let page = BindPage {
        access_token: typed.access_token,
        nickname: typed.face.nickname.as_deref(),
        avatar: typed.face.avatar.as_deref(),
        mobile: typed.mobile,
        error,
        existing,
        new,
        existing_needs_code,
        restart,
        csrf_token: csrf.as_str(),
        privacy_url: state.privacy_url.as_ref().map(url::Url::as_str),
    };
    form_page(state, status, &page, &csrf)
}

//! The forgotten password (`/password/reset`): the mobile and an image code
//! send an SMS code; the code sets a new password, ends every session and
//! logs the person in; the last page shows the QQ account linked to the
//! account and offers to unlink it, in case it was not theirs.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::account::{new_password, qq_view};
use super::{check_csrf, client, form_page, logged_in_to, see_other, send_sms, typed_sms_code};
use crate::account::AccountError;
use crate::domain::{ImageCodeId, Mobile};
use crate::error::{AppError, InputError};
use crate::session::{CsrfToken, UserSession};
use crate::sms::RESEND_AFTER;
use crate::state::AppState;
use crate::templates::{ResetDonePage, ResetPage};

pub async fn form(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, AppError> {
    reset_page(&req, &state, StatusCode::OK, "", None, None, 0)
}

fn reset_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    mobile: &str,
    error: Option<&str>,
    notice: Option<&str>,
    resend_in: u64,
) -> Result<HttpResponse, AppError> {
    let csrf = CsrfToken::of(req, &state.keys);
    // Each showing gets a new picture: an image code is good for one check.
    let image_code_id = ImageCodeId::random();
    let page = ResetPage {
        mobile,
        image_code_id: image_code_id.as_str(),
        error,
        notice,
        resend_in,
        csrf_token: csrf.as_str(),
    };
    form_page(state, status, &page, &csrf)
}

/// The reset page again, with the reason next to the form.
fn refused(
    req: &HttpRequest,
    state: &AppState,
    e: &AppError,
    mobile_typed: &str,
) -> Result<HttpResponse, AppError> {
    let told = e.explain();
    let typed: String = mobile_typed.chars().take(20).collect();
    let mut page = reset_page(
        req,
        state,
        told.status,
        &typed,
        Some(told.detail),
        None,
        e.resend_in(),
    )?;
    e.add_retry_after(&mut page);
    Ok(page)
}

#[derive(Deserialize)]
pub struct CodeForm {
    mobile: String,
    image_code_id: Option<String>,
    image_code: Option<String>,
    csrf_token: Option<String>,
}

/// "获取验证码": a right image code sends a code to the mobile typed.
pub async fn send_code_for_reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<CodeForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let sent = async {
        let mobile = Mobile::parse(&form.mobile).map_err(|_| InputError::Mobile)?;
        state
            .image_codes
            .check(
                form.image_code_id.as_deref().unwrap_or_default(),
                form.image_code.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok::<_, AppError>((send_sms(&req, &state, &mobile, None).await?, mobile))
    };
    match sent.await {
        Ok((notice, mobile)) => reset_page(
            &req,
            &state,
            StatusCode::OK,
            mobile.as_str(),
            None,
            Some(&notice),
            RESEND_AFTER.as_secs(),
        ),
        Err(e) if e.belongs_on_the_form() => refused(&req, &state, &e, &form.mobile),
        Err(e) => Err(e),
    }
}

#[derive(Deserialize)]
pub struct ResetForm {
    mobile: String,
    sms_code: Option<String>,
    password: SecretString,
    password2: SecretString,
    csrf_token: Option<String>,
}

/// Sets the new password, ends every session, and logs this browser in.
pub async fn reset(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<ResetForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let form = form.into_inner();
    let client = client(&req);
    let done = async {
        let mobile = Mobile::parse(&form.mobile).map_err(|_| InputError::Mobile)?;
        let code = typed_sms_code(form.sms_code.as_deref())?
            .ok_or(AppError::Account(AccountError::SmsCodeRequired))?;
        let password = new_password(form.password, &form.password2)?;
        Ok::<_, AppError>(
            state
                .accounts
                .reset_password(&mobile, &code, password, &client)
                .await?,
        )
    };
    match done.await {
        Ok(user) => {
            session.log_in(user.id, &client)?;
            Ok(logged_in_to("/password/reset/done", &state))
        }
        Err(e) if e.belongs_on_the_form() => refused(&req, &state, &e, &form.mobile),
        Err(e) => Err(e),
    }
}

/// After a reset: the QQ account linked to the account, and a way to unlink it.
pub async fn done(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, AppError> {
    let Some(user_id) = session.user_id() else {
        return Ok(see_other("/login"));
    };
    let link = state.accounts.link_of(user_id).await?;
    let csrf = CsrfToken::of(&req, &state.keys);
    let page = ResetDonePage {
        qq: link.as_ref().map(qq_view),
        error: None,
        csrf_token: csrf.as_str(),
    };
    form_page(&state, StatusCode::OK, &page, &csrf)
}

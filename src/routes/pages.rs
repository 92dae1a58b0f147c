//! The home page, the password login and logout.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::Deserialize;

use super::{check_csrf, client, form_page, logged_in_to, see_other};
use crate::account::AccountError;
use crate::domain::LocalPath;
use crate::error::AppError;
use crate::events::{Event, Kind};
use crate::session::{CsrfToken, UserSession};
use crate::state::AppState;
use crate::templates::{HomePage, LoginPage};

pub async fn home(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, AppError> {
    let user = match session.user_id() {
        Some(id) => state.accounts.find_by_id(id).await?,
        None => None,
    };
    let csrf = CsrfToken::of(&req, &state.keys);
    let page = HomePage {
        username: user.as_ref().map(|u| u.username.as_str()),
        csrf_token: csrf.as_str(),
    };
    form_page(&state, StatusCode::OK, &page, &csrf)
}

#[derive(Deserialize)]
pub struct NextQuery {
    next: Option<String>,
}

/// Shown to visitors without a session: it writes nothing on the server.
pub async fn login_form(
    req: HttpRequest,
    state: web::Data<AppState>,
    query: web::Query<NextQuery>,
) -> Result<HttpResponse, AppError> {
    let next = LocalPath::sanitize(query.next.as_deref());
    login_page(&req, &state, StatusCode::OK, &next, "", None)
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: SecretString,
    next: Option<String>,
    csrf_token: Option<String>,
}

pub async fn log_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    form: web::Form<LoginForm>,
) -> Result<HttpResponse, AppError> {
    check_csrf(&req, &state, form.csrf_token.as_deref())?;
    let form = form.into_inner();
    let next = LocalPath::sanitize(form.next.as_deref());
    let typed: String = form.username.chars().take(64).collect();
    let client = client(&req);
    match state
        .accounts
        .log_in(&form.username, form.password, &client)
        .await
    {
        Ok(user) => {
            session.log_in(user.id, &client)?;
            Ok(logged_in_to(next.as_str(), &state))
        }
        // Shown with the form again, in the words the error page would use.
        Err(
            e @ (AccountError::WrongCredentials
            | AccountError::Throttled(_)
            | AccountError::Disabled),
        ) => {
            let e = AppError::from(e);
            let told = e.explain();
            let mut page = login_page(&req, &state, told.status, &next, &typed, Some(told.detail))?;
            e.add_retry_after(&mut page);
            Ok(page)
        }
        Err(e) => Err(e.into()),
    }
}

fn login_page(
    req: &HttpRequest,
    state: &AppState,
    status: StatusCode,
    next: &LocalPath,
    username: &str,
    error: Option<&str>,
) -> Result<HttpResponse, AppError> {
    let csrf = CsrfToken::of(req, &state.keys);
    let page = LoginPage {
        next: next.as_str(),
        username,
        error,
        csrf_token: csrf.as_str(),
    };
    form_page(state, status, &page, &csrf)
}

#[derive(Deserialize)]
pub struct LogoutForm {
    csrf_token: Option<String>,
}

/// Ends the session on the server: the cookie the browser still holds is worthless.
pub async fn log_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    // No body at all is a logout without a token: the CSRF rule decides.
    form: Option<web::Form<LogoutForm>>,
) -> Result<HttpResponse, AppError> {
    let token = form.as_ref().and_then(|f| f.csrf_token.as_deref());
    check_csrf(&req, &state, token)?;
    if let Some(user_id) = session.user_id() {
        let event = Event::ok(Kind::SessionEnd, None, user_id);
        state.accounts.events().record(event, &client(&req));
    }
    session.log_out();
    Ok(see_other("/login"))
}

//! Every route, mounted in one place.

mod api;
mod assets;
mod health;
mod oauth;
mod pages;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::LOCATION;
use actix_web::middleware::Next;
use actix_web::{HttpRequest, HttpResponse, web};

use std::sync::atomic::Ordering;

use crate::config::Origins;
use crate::error::{ApiError, AppError};
use crate::state::AppState;

pub(crate) use crate::proxy::client_ip;
use crate::session::CsrfToken;

/// Routes that need no session: health checks and static files.
pub fn configure_stateless(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(health::healthz))
        .route("/readyz", web::get().to(health::readyz))
        .route("/static/{file}", web::get().to(assets::serve));
}

/// Routes that use the session; `callback_path` is the path of `QQ_REDIRECT_URI`;
/// the JSON API answers CORS for `origins`.
pub fn configure(cfg: &mut web::ServiceConfig, callback_path: &str, origins: &Origins) {
    cfg.route("/", web::get().to(pages::home))
        .route("/login", web::get().to(pages::login_form))
        .route("/login", web::post().to(pages::log_in))
        .route("/logout", web::post().to(pages::log_out))
        .route("/oauth/qq/login", web::get().to(oauth::start))
        .route(callback_path, web::get().to(oauth::callback))
        .route("/oauth/qq/bind", web::post().to(oauth::bind))
        .configure(|cfg| api::configure(cfg, origins));
}

/// Form bodies are a few fields; a larger one is refused with a page, not a bare status.
pub fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(crate::limits::MAX_BODY_BYTES)
        .error_handler(|err, _| {
            match err {
                actix_web::error::UrlencodedError::Overflow { .. } => AppError::TooLarge,
                _ => AppError::BadRequest("form body could not be read"),
            }
            .into()
        })
}

/// A query string that does not fit the route's fields gets a page too.
pub fn query_config() -> web::QueryConfig {
    web::QueryConfig::default()
        .error_handler(|_, _| AppError::BadRequest("query string could not be read").into())
}

/// "Service unavailable" — as a page or as API JSON — whenever the database
/// is not there: before the migrations have run (the service starts without
/// its database), and when the session layer fails. That layer fails only when
/// its store, the database, does (its state is a plain map that always
/// serialises), and handlers' own errors are already responses by the time
/// they pass it; so any error coming out of it means the database, and gets
/// this answer instead of actix-session's bare 500.
pub async fn unavailable_until_database_is(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let is_api = is_api_path(req.path());
    let unavailable = move || -> actix_web::Error {
        if is_api {
            ApiError(AppError::Unavailable).into()
        } else {
            AppError::Unavailable.into()
        }
    };
    let migrated = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.migrated.load(Ordering::Acquire));
    if !migrated {
        return Err(unavailable());
    }
    next.call(req).await.map_err(|e| {
        log::error!("session store failed: {e}");
        unavailable()
    })
}

/// Whether errors on `path` are the JSON API's (`{"message"}`) rather than pages.
pub fn is_api_path(path: &str) -> bool {
    api::PATHS.contains(&path) || path.starts_with("/api/")
}

/// Any path no route serves: the not-found page, or JSON under `/api/`.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, actix_web::Error> {
    if is_api_path(req.path()) {
        return Err(ApiError(AppError::NotFound).into());
    }
    Err(AppError::NotFound.into())
}

/// 303 See Other: after a form, the browser GETs `location`.
fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, location))
        .finish()
}

/// A 303 to `location` after a login: the browser also gets a new CSRF
/// token, so that none seen before the login works after it.
fn logged_in_to(location: &str, state: &AppState) -> HttpResponse {
    let mut response = see_other(location);
    CsrfToken::renewed().attach(&mut response, &state.keys, state.secure_cookies);
    response
}

/// Renders `page`, a page with a form carrying `csrf` (this browser's
/// token: [`CsrfToken::of`]); the browser gets its cookie when it had none.
fn form_page(
    state: &AppState,
    status: actix_web::http::StatusCode,
    page: &impl askama::Template,
    csrf: &CsrfToken,
) -> Result<HttpResponse, AppError> {
    let mut response = crate::templates::render(status, page)?;
    csrf.attach(&mut response, &state.keys, state.secure_cookies);
    Ok(response)
}

/// Refuses a form POST that may have been forged by another site.
///
/// The form's token must match this browser's CSRF cookie. A request without a token is
/// let through only when nothing marks it as coming from a browser (`Origin`,
/// `Sec-Fetch-Site`): browsers send those on every form POST and no page can
/// suppress them, so a forged cross-site POST always carries them.
fn check_csrf(req: &HttpRequest, state: &AppState, given: Option<&str>) -> Result<(), AppError> {
    match given {
        Some(token) if CsrfToken::matches(req, &state.keys, token) => Ok(()),
        Some(_) => Err(AppError::Csrf),
        None if sent_by_browser(req) => Err(AppError::Csrf),
        None => Ok(()),
    }
}

fn sent_by_browser(req: &HttpRequest) -> bool {
    let headers = req.headers();
    headers.contains_key("origin") || headers.contains_key("sec-fetch-site")
}

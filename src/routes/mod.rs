//! Every route, mounted in one place.

mod account;
mod api;
mod assets;
mod forwarded;
mod health;
mod lang;
mod metrics;
mod oauth;
mod pages;
mod reset;

use actix_session::SessionMiddleware;
use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::LOCATION;
use actix_web::middleware::{Compress, Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};

use std::sync::atomic::Ordering;

use crate::config::Origins;
use crate::domain::{Mobile, OpenId, SmsCode};
use crate::error::{AppError, InputError, Malformed};
use crate::session::rotation::accept_previous_key;
use crate::session::store::DbSessionStore;
use crate::sms::{CODE_TTL, Requester};
use crate::state::AppState;

use crate::session::CsrfToken;
pub use forwarded::{client, client_ip, secure_cookie_behind_tls};

/// The session middleware, as startup builds it.
pub type Sessions = SessionMiddleware<DbSessionStore>;

/// Every route, each with the middleware of its face: the pages answer
/// errors as pages, the JSON API ([`api::configure`]) as `{"message"}`.
/// `callback_path` is the path of `QQ_REDIRECT_URI`; the API answers CORS for
/// `origins`.
pub fn configure(
    cfg: &mut web::ServiceConfig,
    callback_path: &str,
    origins: &Origins,
    sessions: &Sessions,
) {
    // Health checks and static files need no session, and answer while the
    // database is away.
    for (path, route) in [
        ("/healthz", web::get().to(health::healthz)),
        ("/readyz", web::get().to(health::readyz)),
        ("/metrics", web::get().to(metrics::metrics)),
    ] {
        cfg.service(
            web::resource(path)
                .wrap(from_fn(crate::limits::for_pages))
                .route(route),
        );
    }
    // Only the static files are compressed: a compressed page that carries a
    // secret (its CSRF token) beside text the visitor chose leaks it (BREACH).
    cfg.service(
        web::resource("/static/{file}")
            .wrap(Compress::default())
            .wrap(from_fn(crate::limits::for_pages))
            .route(web::get().to(assets::serve)),
    );
    cfg.configure(|cfg| api::configure(cfg, origins, sessions))
        .service(
            web::scope("")
                .app_data(form_config())
                .app_data(query_config())
                .wrap(sessions.clone())
                .wrap(from_fn(secure_cookie_behind_tls))
                .wrap(from_fn(pages_unavailable_until_database_is))
                .wrap(from_fn(accept_previous_key))
                .wrap(from_fn(crate::limits::for_pages))
                .route("/", web::get().to(pages::home))
                .route("/login", web::get().to(pages::login_form))
                .route("/login", web::post().to(pages::log_in))
                .route("/logout", web::post().to(pages::log_out))
                .route("/lang", web::post().to(lang::switch))
                .route("/oauth/qq/login", web::get().to(oauth::start))
                .route(api::HOP_PATH, web::get().to(api::start))
                .route(callback_path, web::get().to(oauth::callback))
                .route("/oauth/qq/bind", web::post().to(oauth::bind))
                .route("/oauth/qq/sms", web::post().to(oauth::send_sms_code))
                .route("/account", web::get().to(account::show))
                .route("/account/verify", web::get().to(account::verify_form))
                .route("/account/verify", web::post().to(account::verify))
                .route(
                    "/account/verify/code",
                    web::post().to(account::send_verify_code),
                )
                .route("/account/qq/unlink", web::post().to(account::unlink_qq))
                .route("/account/qq/link", web::post().to(account::link_qq))
                .route(
                    "/account/password",
                    web::post().to(account::change_password),
                )
                .route(
                    "/account/mobile/code",
                    web::post().to(account::send_mobile_code),
                )
                .route("/account/mobile", web::post().to(account::change_mobile))
                .route(
                    "/account/sessions/end",
                    web::post().to(account::end_sessions),
                )
                .route("/account/delete", web::get().to(account::delete_form))
                .route("/account/delete", web::post().to(account::delete))
                .route("/password/reset", web::get().to(reset::form))
                .route("/password/reset", web::post().to(reset::reset))
                .route(
                    "/password/reset/code",
                    web::post().to(reset::send_code_for_reset),
                )
                .route("/password/reset/done", web::get().to(reset::done))
                .default_service(web::to(not_found)),
        );
}

/// Form bodies are a few fields; a larger one is refused with a page, not a bare status.
fn form_config() -> web::FormConfig {
    web::FormConfig::default()
        .limit(crate::limits::MAX_BODY_BYTES)
        .error_handler(|err, _| {
            match err {
                actix_web::error::UrlencodedError::Overflow { .. } => AppError::TooLarge,
                _ => AppError::BadRequest(Malformed::Form),
            }
            .into()
        })
}

/// A query string that does not fit the route's fields gets a page too.
fn query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|_, _| AppError::BadRequest(Malformed::Query).into())
}

/// "Service unavailable" whenever the database is not there: before the
/// migrations have run (the service starts without its database), and when
/// the session layer fails. That layer fails only when its store, the
/// database, does (its state is a plain map that always serialises), and
/// handlers' own errors are already responses by the time they pass it; so
/// any error coming out of it means the database, and gets this answer
/// instead of actix-session's bare 500. `face` renders it.
async fn unavailable_until_database_is<B: MessageBody>(
    req: ServiceRequest,
    next: Next<B>,
    face: fn(AppError) -> actix_web::Error,
) -> Result<ServiceResponse<EitherBody<B>>, actix_web::Error> {
    let migrated = req
        .app_data::<web::Data<AppState>>()
        .is_some_and(|s| s.migrated.load(Ordering::Acquire));
    if !migrated {
        // A response, not an error: the middleware outside (the security
        // headers) treat it as every other.
        return Ok(req
            .error_response(face(AppError::Unavailable))
            .map_into_right_body());
    }
    next.call(req)
        .await
        .map(ServiceResponse::map_into_left_body)
        .map_err(|e| {
            log::error!("session store failed: {e}");
            face(AppError::Unavailable)
        })
}

/// [`unavailable_until_database_is`], as a page.
async fn pages_unavailable_until_database_is(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    unavailable_until_database_is(req, next, actix_web::Error::from).await
}

/// The not-found page.
pub async fn not_found() -> Result<HttpResponse, AppError> {
    Err(AppError::NotFound)
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

/// The SMS code a bind form carries: none when the field is absent or
/// blank (an existing account may bind with its password alone).
fn typed_sms_code(raw: Option<&str>) -> Result<Option<SmsCode>, InputError> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(code) => SmsCode::parse(code)
            .map(Some)
            .map_err(|_| InputError::SmsCode),
    }
}

/// Sends an SMS code to `mobile` for the person at this request (`openid`:
/// the QQ account of their bind in progress, for its daily cap); returns the
/// notice that says so, with the code itself under the development sender.
async fn send_sms(
    req: &HttpRequest,
    state: &AppState,
    mobile: &Mobile,
    openid: Option<OpenId>,
) -> Result<String, AppError> {
    let who = Requester {
        address: client_ip(req),
        openid,
    };
    let code = state.accounts.sms().send(mobile, &who).await?;
    let t = &crate::i18n::texts().sms;
    let mut notice = (t.sent)(&mobile.masked(), CODE_TTL.as_secs() / 60);
    if state.accounts.sms().shows_code() {
        notice.push_str(&(t.dev_code)(code.expose()));
    }
    Ok(notice)
}

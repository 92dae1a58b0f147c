//! The JSON API of the original Django design ("meiduo"), for single-page
//! front ends: the same flow, tokens and accounts as the pages, another face.

use actix_cors::Cors;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HOST};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Condition, Next, from_fn};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use url::Url;

use crate::account::BindRequest;
use crate::config::Origins;
use crate::db::user::User;
use crate::domain::{ImageCodeId, LocalPath, Mobile, Password};
use crate::error::{ApiError, AppError, InputError, Malformed};
use crate::events::Method as SignInMethod;
use crate::flow::{Arrival, arrive, login_event};
use crate::image_code::ImageCodeError;
use crate::qq::Display;
use crate::session::attempt::{Flow, removal_cookie};
use crate::session::rotation::accept_previous_key;
use crate::session::{OAuthAttempt, StateError, UserSession};
use crate::sms::Requester;
use crate::state::AppState;

use super::oauth::{display_for, leave_for_qq};

/// Answers that carry a token or a person's details must never be cached
/// (RFC 6749 §5.1 asks the same of token answers).
const NO_STORE: (actix_web::http::header::HeaderName, &str) = (CACHE_CONTROL, "no-store");

/// Where the front end sends the whole page first: the service's own hop to
/// QQ, which ties the login to the browser ([`start`]). A page, not JSON: a
/// person's browser navigates there.
pub const HOP_PATH: &str = "/oauth/qq/api/login";

/// The middleware every JSON route has, on a resource or a scope: its errors
/// (extractors', the database's absence, the request limits') answer
/// `{"message"}`; it answers CORS for the front end's origins (the pages
/// never do); it sees the session cookie (`/api/me` accepts it).
macro_rules! json_face {
    ($service:expr, $origins:expr, $sessions:expr) => {
        $service
            .app_data(json_query_config())
            .wrap(Condition::new(!$origins.0.is_empty(), cors($origins)))
            .wrap($sessions.clone())
            .wrap(from_fn(super::secure_cookie_behind_tls))
            .wrap(from_fn(unavailable_until_database_is))
            .wrap(from_fn(accept_previous_key))
            .wrap(from_fn(crate::limits::for_api))
    };
}

/// The API's routes, each with its own JSON face ([`json_face`]); the
/// `/api/` scope answers JSON for paths it does not know either.
pub fn configure(cfg: &mut web::ServiceConfig, origins: &Origins, sessions: &super::Sessions) {
    cfg.service(json_face!(
        web::resource(["/oauth/qq/statues/", "/oauth/qq/authorization/"])
            .route(web::get().to(login_url))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
        origins,
        sessions
    ))
    .service(json_face!(
        web::resource(["/oauth/qq/users/", "/oauth/qq/user/"])
            .route(web::get().to(exchange_code))
            .route(web::post().to(bind))
            .default_service(web::to(|| async { method_not_allowed("GET, POST") })),
        origins,
        sessions
    ))
    .service(json_face!(
        web::resource("/sms_codes/{mobile}/")
            .route(web::get().to(send_sms_code))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
        origins,
        sessions
    ))
    .service(json_face!(
        web::resource("/image_codes/{id}/")
            .route(web::get().to(image_code))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
        origins,
        sessions
    ))
    .service(json_face!(
        web::scope("/api")
            .service(
                web::resource("/me")
                    .route(web::get().to(me))
                    .default_service(web::to(|| async { method_not_allowed("GET") })),
            )
            .default_service(web::to(not_found)),
        origins,
        sessions
    ));
}

/// A query string that does not fit a route's fields, in JSON.
fn json_query_config() -> web::QueryConfig {
    web::QueryConfig::default().error_handler(|_, _| ApiError::invalid(Malformed::Query).into())
}

/// [`super::unavailable_until_database_is`], as JSON.
async fn unavailable_until_database_is(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    super::unavailable_until_database_is(req, next, |e| ApiError(e).into()).await
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError(AppError::NotFound))
}

/// A known route asked with a method it does not serve: 405, in the API's JSON.
fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((ALLOW, allow))
        .json(serde_json::json!({ "message": crate::i18n::texts().api.method_not_allowed }))
}

/// CORS for the configured front-end origins, with credentials; none configured, none allowed.
fn cors(origins: &Origins) -> Cors {
    origins
        .0
        .iter()
        .fold(Cors::default(), |cors, origin| cors.allowed_origin(origin))
        .allowed_methods([Method::GET, Method::POST])
        .allowed_headers([AUTHORIZATION, CONTENT_TYPE])
        .supports_credentials()
        .max_age(3600)
}

/// The first value of query parameter `name`. Read by hand rather than with
/// `web::Query`, whose errors (a repeated parameter, say) would answer with
/// the pages' HTML instead of the API's JSON.
fn query_param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The URL the front end sends the whole page to. As the original front ends
/// expect, QQ's `state` carries `next` (made safe), which they read back from
/// the callback's query. It leads through [`start`] on this service, on the
/// host the front end calls the API at, so that the attempt's cookie comes
/// back with the code's exchange; under `QQLOGIN_API_UNBOUND_LOGIN` straight
/// to QQ.
async fn login_url(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let next = LocalPath::sanitize(query_param(&req, "next").as_deref());
    let url = if state.api_unbound_login {
        state.qq_api.authorize_url(next.as_str(), Display::Pc)
    } else {
        let mut hop = own_url(&req, &state, HOP_PATH);
        hop.query_pairs_mut().append_pair("next", next.as_str());
        hop
    };
    HttpResponse::Ok()
        .insert_header(NO_STORE)
        .json(serde_json::json!({ "login_url": url.as_str() }))
}

/// `path` on this service, as the client reached it: the `Host` it asked for
/// (when it is a plain host name), https when the site is or the trusted
/// proxy says so. Anything odd falls back to the host of `QQ_REDIRECT_URI`.
fn own_url(req: &HttpRequest, state: &AppState, path: &str) -> Url {
    let https = state.secure_cookies
        || state
            .trusted_proxies
            .forwarded_https(req.peer_addr().map(|a| a.ip()), req.headers());
    let scheme = if https { "https" } else { "http" };
    req.headers()
        .get(HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
        })
        .and_then(|host| Url::parse(&format!("{scheme}://{host}{path}")).ok())
        .unwrap_or_else(|| {
            let mut url = state.public_base.clone();
            url.set_path(path);
            url
        })
}

/// The hop: a top-level navigation on this service that gives the browser a
/// short-lived, single-use attempt cookie, then sends it on to QQ.
pub(super) async fn start(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let next = LocalPath::sanitize(query_param(&req, "next").as_deref());
    let attempt = OAuthAttempt::begin(&next, OffsetDateTime::now_utc().unix_timestamp());
    let url = state.qq_api.authorize_url(next.as_str(), display_for(&req));
    leave_for_qq(&url, &attempt, Flow::Api, &state)
}

/// A signed-in answer, as the original API gives it. A bind's also carries
/// `id` (the same as `user_id`: half the original front ends read one, half
/// the other) and the mobile.
#[derive(Serialize)]
struct LoggedIn<'a> {
    token: String,
    username: &'a str,
    user_id: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mobile: Option<&'a str>,
}

/// Which signed-in answer: a returning login's (200), or a bind's (201,
/// with `id` and the mobile).
#[derive(Clone, Copy, PartialEq, Eq)]
enum SignedIn {
    Returning,
    Bound,
}

fn logged_in(state: &AppState, user: &User, kind: SignedIn) -> Result<HttpResponse, ApiError> {
    let (status, bound) = match kind {
        SignedIn::Returning => (StatusCode::OK, false),
        SignedIn::Bound => (StatusCode::CREATED, true),
    };
    let token = state
        .keys
        .issue_login_token(
            user.id,
            &user.username,
            state.jwt_ttl,
            OffsetDateTime::now_utc(),
        )
        .map_err(AppError::from)?;
    Ok(HttpResponse::build(status)
        .insert_header(NO_STORE)
        .json(LoggedIn {
            token,
            username: &user.username,
            user_id: user.id,
            id: bound.then_some(user.id),
            mobile: bound.then_some(user.mobile.as_str()),
        }))
}

/// Trades QQ's code, once this browser's attempt cookie is checked and used
/// up: a code from a login this browser did not begin is refused before QQ
/// is asked.
async fn exchange_code(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let code = query_param(&req, "code")
        .filter(|c| !c.is_empty())
        .ok_or(ApiError::invalid(Malformed::MissingCode))?;
    let now = OffsetDateTime::now_utc();
    if !state.api_unbound_login {
        OAuthAttempt::from_request(&req, Flow::Api, &state.keys)
            .ok_or(AppError::State(StateError::Missing))?
            .use_once_for_api(now.unix_timestamp(), state.accounts.db())
            .await
            .map_err(AppError::from)?;
    }
    let arrived = arrive(&state.qq_api, &state.accounts, &code).await;
    if let Some(event) = login_event(&arrived, SignInMethod::QqApi) {
        state.accounts.events().record(event, &super::client(&req));
    }
    let mut answer = match arrived.map_err(AppError::from)? {
        Arrival::Known(user) => logged_in(&state, &user, SignedIn::Returning)?,
        Arrival::Unknown(newcomer) => {
            let pending = newcomer.pending_bind(LocalPath::home(), None);
            let token = state
                .keys
                .issue_bind_token(&pending, now)
                .map_err(AppError::from)?;
            HttpResponse::Ok()
                .insert_header(NO_STORE)
                .json(serde_json::json!({ "access_token": token }))
        }
    };
    if !state.api_unbound_login {
        // Used up: the browser may forget it.
        let _ = answer.add_cookie(&removal_cookie(Flow::Api));
    }
    Ok(answer)
}

#[derive(Deserialize)]
pub struct BindBody {
    mobile: Option<String>,
    password: Option<SecretString>,
    sms_code: Option<String>,
    access_token: Option<String>,
}

async fn bind(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = match payload
        .to_bytes_limited(crate::limits::MAX_BODY_BYTES)
        .await
    {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(ApiError::invalid(Malformed::Body)),
        Err(_) => return Err(ApiError(AppError::TooLarge)),
    };
    let body = parse_body(&req, &bytes)?;
    let (Some(token), Some(mobile), Some(password)) =
        (body.access_token, body.mobile, body.password)
    else {
        return Err(AppError::from(InputError::Missing).into());
    };
    let pending = state
        .keys
        .verify_bind_token(&token, OffsetDateTime::now_utc())
        .ok()
        // Tokens of the page flow belong to a browser session, never to an API client.
        .filter(|p| p.browser.is_none())
        .ok_or(AppError::from(InputError::Token))?;
    let mobile = Mobile::parse(&mobile).map_err(|_| AppError::from(InputError::Mobile))?;
    let password = Password::parse(password).map_err(|_| AppError::from(InputError::Password))?;
    let sms_code = super::typed_sms_code(body.sms_code.as_deref()).map_err(AppError::from)?;
    let user = state
        .accounts
        .bind(BindRequest {
            pending: &pending,
            mobile: &mobile,
            password,
            sms_code,
            client: &super::client(&req),
            method: SignInMethod::QqApi,
        })
        .await
        .map_err(AppError::from)?;
    logged_in(&state, &user, SignedIn::Bound)
}

#[derive(Deserialize)]
pub struct SmsQuery {
    image_code_id: Option<String>,
    text: Option<String>,
    access_token: Option<String>,
}

/// Sends an SMS code to the mobile in the path, for someone plausibly in the
/// middle of a bind: a right image code, a live bind token, this browser's
/// own bind in progress, or anyone under `QQLOGIN_SMS_UNGATED`.
async fn send_sms_code(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
    mobile: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mobile = Mobile::parse(&mobile).map_err(|_| AppError::from(InputError::Mobile))?;
    let query: SmsQuery = serde_urlencoded::from_str(req.query_string())
        .map_err(|_| ApiError::invalid(Malformed::Query))?;
    let mut who = Requester {
        address: super::client_ip(&req),
        openid: None,
    };
    let now = OffsetDateTime::now_utc();
    let pending = query
        .access_token
        .as_deref()
        .and_then(|t| state.keys.verify_bind_token(t, now).ok());
    match (&query.image_code_id, &query.text, pending) {
        (_, _, Some(pending)) => who.openid = Some(pending.openid),
        (Some(id), Some(text), None) => state
            .image_codes
            .check(id, text)
            .await
            .map_err(AppError::from)?,
        (None, None, None) if state.sms_ungated || session.bind_nonce().is_some() => {}
        (Some(_), None, None) | (None, Some(_), None) => {
            return Err(AppError::from(ImageCodeError::Wrong).into());
        }
        (None, None, None) => return Err(AppError::SmsNotAllowed.into()),
    }
    state
        .accounts
        .sms()
        .send(&mobile, &who)
        .await
        .map_err(AppError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header(NO_STORE)
        .json(serde_json::json!({ "message": "OK" })))
}

/// JSON, or form-encoded for old clients; anything else is 415.
fn parse_body(req: &HttpRequest, body: &[u8]) -> Result<BindBody, ApiError> {
    let content_type = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match mime.as_str() {
        "application/json" => {
            serde_json::from_slice(body).map_err(|_| ApiError::invalid(Malformed::Json))
        }
        "application/x-www-form-urlencoded" => {
            serde_urlencoded::from_bytes(body).map_err(|_| ApiError::invalid(Malformed::Form))
        }
        _ => Err(ApiError(AppError::UnsupportedMediaType)),
    }
}

/// The current user, by session cookie or by `Authorization: JWT|Bearer <token>`.
async fn me(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: UserSession,
) -> Result<HttpResponse, ApiError> {
    let user_id = match bearer_token(&req) {
        Some(token) => state
            .keys
            .verify_login_token(token, OffsetDateTime::now_utc())
            .ok(),
        None => session.user_id(),
    };
    let user_id = user_id.ok_or(AppError::Unauthenticated)?;
    let user = state
        .accounts
        .find_by_id(user_id)
        .await
        .map_err(AppError::from)?
        .filter(|user| user.is_active)
        .ok_or(AppError::Unauthenticated)?;
    Ok(HttpResponse::Ok()
        .insert_header(NO_STORE)
        .json(serde_json::json!({
            "user_id": user.id, "username": user.username, "mobile": user.mobile,
        })))
}

fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("JWT") || scheme.eq_ignore_ascii_case("Bearer"))
        .then(|| token.trim())
}

/// A new image code for the front end's own UUID: a picture whose answer
/// replaces any the UUID had. Never cached: each load is a new answer.
async fn image_code(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let id = ImageCodeId::parse(req.match_info().query("id"))
        .map_err(|_| ApiError::invalid(Malformed::ImageCodeId))?;
    let image = state.image_codes.issue(&id).await.map_err(AppError::from)?;
    Ok(HttpResponse::Ok()
        .insert_header(NO_STORE)
        .content_type(crate::image_code::CONTENT_TYPE)
        .body(image))
}

//! The JSON API of the original Django design ("meiduo"), for single-page
//! front ends: the same flow, tokens and accounts as the pages, another face.

use actix_cors::Cors;
use actix_web::http::header::{ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::account::AccountError;
use crate::config::Origins;
use crate::db::user::User;
use crate::domain::{LocalPath, Mobile, Password};
use crate::error::{ApiError, AppError};
use crate::flow::{Arrival, arrive};
use crate::qq::Display;
use crate::session::UserSession;
use crate::state::AppState;
use crate::token::PendingBind;

/// Request bodies of the API are small; anything larger is refused with 413.
pub const MAX_BODY_BYTES: usize = 16 * 1024;

/// Answers that carry a token or a person's details must never be cached
/// (RFC 6749 §5.1 asks the same of token answers).
const NO_STORE: (actix_web::http::header::HeaderName, &str) = (CACHE_CONTROL, "no-store");

/// Every path the JSON API serves: their errors are JSON, never a page.
pub const PATHS: [&str; 4] = [
    "/oauth/qq/statues/",
    "/oauth/qq/authorization/",
    "/oauth/qq/users/",
    "/api/me",
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource([PATHS[0], PATHS[1]])
            .route(web::get().to(login_url))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    )
    .service(
        web::resource(PATHS[2])
            .route(web::get().to(exchange_code))
            .route(web::post().to(bind))
            .default_service(web::to(|| async { method_not_allowed("GET, POST") })),
    )
    .service(
        web::resource(PATHS[3])
            .route(web::get().to(me))
            .default_service(web::to(|| async { method_not_allowed("GET") })),
    );
}

/// A known route asked with a method it does not serve: 405, in the API's JSON.
fn method_not_allowed(allow: &'static str) -> HttpResponse {
    HttpResponse::MethodNotAllowed()
        .insert_header((ALLOW, allow))
        .json(serde_json::json!({ "message": "不支持该请求方法" }))
}

/// CORS for the configured front-end origins, with credentials; none configured, none allowed.
pub fn cors(origins: &Origins) -> Cors {
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

/// The authorize URL; as the original front ends expect, `state` carries `next`
/// (made safe), and they read it back from the callback's query.
async fn login_url(req: HttpRequest, state: web::Data<AppState>) -> HttpResponse {
    let next = LocalPath::sanitize(query_param(&req, "next").as_deref());
    let url = state.qq.authorize_url(next.as_str(), Display::Pc);
    HttpResponse::Ok().json(serde_json::json!({ "login_url": url.as_str() }))
}

/// A signed-in answer, as the original API gives it.
#[derive(Serialize)]
struct LoggedIn<'a> {
    token: String,
    username: &'a str,
    user_id: i64,
}

fn logged_in(state: &AppState, user: &User, status: StatusCode) -> Result<HttpResponse, ApiError> {
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
        }))
}

async fn exchange_code(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let code = query_param(&req, "code")
        .filter(|c| !c.is_empty())
        .ok_or(ApiError::invalid("缺少code参数"))?;
    match arrive(&state, &code).await? {
        Arrival::Known(user) => logged_in(&state, &user, StatusCode::OK),
        Arrival::Unknown { openid, nickname } => {
            let pending = PendingBind {
                openid,
                nickname,
                next: LocalPath::home(),
                browser: None,
            };
            let token = state
                .keys
                .issue_bind_token(&pending, OffsetDateTime::now_utc())
                .map_err(AppError::from)?;
            Ok(HttpResponse::Ok()
                .insert_header(NO_STORE)
                .json(serde_json::json!({ "access_token": token })))
        }
    }
}

#[derive(Deserialize)]
pub struct BindBody {
    mobile: Option<String>,
    password: Option<SecretString>,
    access_token: Option<String>,
}

async fn bind(
    req: HttpRequest,
    state: web::Data<AppState>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let bytes = match payload.to_bytes_limited(MAX_BODY_BYTES).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(_)) => return Err(ApiError::invalid("请求体读取失败")),
        Err(_) => return Err(ApiError(AppError::TooLarge)),
    };
    let body = parse_body(&req, &bytes)?;
    let token = body
        .access_token
        .ok_or(ApiError::invalid("access_token: 缺少参数"))?;
    let mobile = body.mobile.ok_or(ApiError::invalid("mobile: 缺少参数"))?;
    let password = body
        .password
        .ok_or(ApiError::invalid("password: 缺少参数"))?;
    let pending = state
        .keys
        .verify_bind_token(&token, OffsetDateTime::now_utc())
        .ok()
        // Tokens of the page flow belong to a browser session, never to an API client.
        .filter(|p| p.browser.is_none())
        .ok_or(ApiError::invalid(
            "access_token: 无效或已过期，请重新QQ登录",
        ))?;
    let mobile =
        Mobile::parse(&mobile).map_err(|_| ApiError::invalid("mobile: 手机号格式不正确"))?;
    let password = Password::parse(password)
        .map_err(|_| ApiError::invalid("password: 密码长度应为8到128个字符"))?;
    match state
        .accounts
        .bind(&pending.openid, &mobile, password, super::client_ip(&req))
        .await
    {
        Ok(user) => logged_in(&state, &user, StatusCode::CREATED),
        Err(AccountError::WrongPassword) => Err(ApiError::invalid("password: 密码错误")),
        Err(AccountError::OpenIdTaken) => {
            Err(ApiError::invalid("access_token: 该QQ账号已绑定其他账号"))
        }
        Err(AccountError::UserHasOtherQq) => {
            Err(ApiError::invalid("mobile: 该手机号已绑定其他QQ账号"))
        }
        Err(e) => Err(AppError::from(e).into()),
    }
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
            serde_json::from_slice(body).map_err(|_| ApiError::invalid("请求体不是有效的JSON"))
        }
        "application/x-www-form-urlencoded" => {
            serde_urlencoded::from_bytes(body).map_err(|_| ApiError::invalid("请求体格式不正确"))
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

//! Development mode's stand-in for QQ, mounted at `/dev/qq/` only while no
//! `QQ_APP_ID` is configured. It speaks QQ's real formats (url-encoded token
//! answers, JSONP `/me`, `ret`/`msg` user info, JSONP errors), so the real
//! client and flow are exercised end to end on a laptop.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::http::header::LOCATION;
use actix_web::{HttpResponse, web};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use url::Url;

use crate::secret::random_token;
use crate::templates::{DevQqAuthorizePage, render};

/// The app id development mode uses with its stand-in.
pub const DEV_APP_ID: &str = "100000000";
/// QQ's codes live ten minutes.
const CODE_TTL: Duration = Duration::from_secs(600);
/// The stand-in keeps at most this many grants, so a busy laptop stays small.
const MAX_GRANTS: usize = 10_000;

/// The stand-in's memory of codes and tokens it handed out.
pub struct DevQq {
    app_key: SecretString,
    redirect_uri: String,
    grants: Mutex<Grants>,
}

#[derive(Default)]
struct Grants {
    codes: HashMap<String, (Identity, Instant)>,
    tokens: HashMap<String, Identity>,
}

#[derive(Clone)]
struct Identity {
    openid: String,
    nickname: String,
}

impl DevQq {
    pub fn new(app_key: SecretString, redirect_uri: &Url) -> Self {
        Self {
            app_key,
            redirect_uri: redirect_uri.as_str().to_owned(),
            grants: Mutex::default(),
        }
    }

    fn with_grants<T>(&self, f: impl FnOnce(&mut Grants) -> T) -> T {
        // A poisoned lock only means another request panicked mid-way; the maps are still usable.
        let mut grants = self.grants.lock().unwrap_or_else(|p| p.into_inner());
        f(&mut grants)
    }
}

/// Mounts the stand-in's endpoints under `/dev/qq`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/dev/qq")
            .route("/oauth2.0/authorize", web::get().to(authorize_page))
            .route("/oauth2.0/authorize", web::post().to(authorize))
            .route("/oauth2.0/token", web::get().to(token))
            .route("/oauth2.0/me", web::get().to(me))
            .route("/user/get_user_info", web::get().to(user_info)),
    );
}

/// The same nickname always maps to the same openid (32 upper-case hex, like QQ's).
fn openid_for(nickname: &str) -> String {
    Sha256::digest(nickname.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02X}"))
        .collect()
}

fn jsonp(body: serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html")
        .body(format!("callback( {body} );\n"))
}

/// QQ's error answer: JSONP by default, JSON with `fmt=json`.
fn qq_error(code: i64, description: &str, json: bool) -> HttpResponse {
    let body = serde_json::json!({ "error": code, "error_description": description });
    if json {
        HttpResponse::Ok().json(body)
    } else {
        jsonp(body)
    }
}

#[derive(Deserialize)]
pub struct AuthorizeQuery {
    client_id: Option<String>,
    redirect_uri: Option<String>,
    state: Option<String>,
}

async fn authorize_page(dev: web::Data<DevQq>, q: web::Query<AuthorizeQuery>) -> HttpResponse {
    if q.client_id.as_deref() != Some(DEV_APP_ID) {
        return qq_error(100001, "client_id is illegal", false);
    }
    if q.redirect_uri.as_deref() != Some(dev.redirect_uri.as_str()) {
        return qq_error(100010, "redirect uri is illegal", false);
    }
    let page = DevQqAuthorizePage {
        client_id: DEV_APP_ID,
        redirect_uri: &dev.redirect_uri,
        state: q.state.as_deref().unwrap_or_default(),
    };
    render(StatusCode::OK, &page).unwrap_or_else(|_| HttpResponse::InternalServerError().finish())
}

#[derive(Deserialize)]
pub struct AuthorizeForm {
    redirect_uri: String,
    state: String,
    nickname: String,
}

async fn authorize(dev: web::Data<DevQq>, form: web::Form<AuthorizeForm>) -> HttpResponse {
    let nickname: String = form.nickname.trim().chars().take(32).collect();
    if nickname.is_empty() || form.redirect_uri != dev.redirect_uri {
        return qq_error(100010, "redirect uri is illegal", false);
    }
    let code = random_token();
    let identity = Identity {
        openid: openid_for(&nickname),
        nickname,
    };
    dev.with_grants(|g| {
        let now = Instant::now();
        g.codes
            .retain(|_, (_, issued)| now.duration_since(*issued) < CODE_TTL);
        if g.codes.len() < MAX_GRANTS {
            g.codes.insert(code.clone(), (identity, now));
        }
    });
    let mut back = match Url::parse(&dev.redirect_uri) {
        Ok(url) => url,
        Err(_) => return HttpResponse::InternalServerError().finish(),
    };
    back.query_pairs_mut()
        .append_pair("code", &code)
        .append_pair("state", &form.state);
    HttpResponse::Found()
        .insert_header((LOCATION, back.as_str()))
        .finish()
}

#[derive(Deserialize)]
pub struct TokenQuery {
    client_id: Option<String>,
    client_secret: Option<String>,
    code: Option<String>,
    redirect_uri: Option<String>,
    fmt: Option<String>,
}

async fn token(dev: web::Data<DevQq>, q: web::Query<TokenQuery>) -> HttpResponse {
    let json = q.fmt.as_deref() == Some("json");
    let secret_ok = q
        .client_secret
        .as_deref()
        .is_some_and(|s| bool::from(s.as_bytes().ct_eq(dev.app_key.expose_secret().as_bytes())));
    if q.client_id.as_deref() != Some(DEV_APP_ID) || !secret_ok {
        return qq_error(100013, "access token is illegal", json);
    }
    if q.redirect_uri.as_deref() != Some(dev.redirect_uri.as_str()) {
        return qq_error(100010, "redirect uri is illegal", json);
    }
    let code = q.code.as_deref().unwrap_or_default();
    let Some((identity, issued)) = dev.with_grants(|g| g.codes.remove(code)) else {
        // QQ says 100020 for a code used twice; a code never issued gets 100019.
        return qq_error(100020, "code is reused error", json);
    };
    if issued.elapsed() >= CODE_TTL {
        return qq_error(100019, "code to access token error", json);
    }
    let access_token = random_token();
    dev.with_grants(|g| {
        if g.tokens.len() >= MAX_GRANTS {
            g.tokens.clear();
        }
        g.tokens.insert(access_token.clone(), identity);
    });
    if json {
        HttpResponse::Ok().json(serde_json::json!({
            "access_token": access_token, "expires_in": "7776000", "refresh_token": random_token(),
        }))
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", &access_token)
            .append_pair("expires_in", "7776000")
            .append_pair("refresh_token", &random_token())
            .finish();
        HttpResponse::Ok().content_type("text/plain").body(body)
    }
}

#[derive(Deserialize)]
pub struct TokenOnlyQuery {
    access_token: Option<String>,
    fmt: Option<String>,
}

fn identity_for(dev: &DevQq, token: Option<&str>) -> Option<Identity> {
    dev.with_grants(|g| g.tokens.get(token.unwrap_or_default()).cloned())
}

async fn me(dev: web::Data<DevQq>, q: web::Query<TokenOnlyQuery>) -> HttpResponse {
    let json = q.fmt.as_deref() == Some("json");
    match identity_for(&dev, q.access_token.as_deref()) {
        None => qq_error(100016, "access token check failed", json),
        Some(id) => {
            let body = serde_json::json!({ "client_id": DEV_APP_ID, "openid": id.openid });
            if json {
                HttpResponse::Ok().json(body)
            } else {
                jsonp(body)
            }
        }
    }
}

async fn user_info(dev: web::Data<DevQq>, q: web::Query<TokenOnlyQuery>) -> HttpResponse {
    // get_user_info reports its errors in `ret`/`msg`, always with HTTP 200.
    let body = match identity_for(&dev, q.access_token.as_deref()) {
        None => serde_json::json!({ "ret": 1002, "msg": "请先登录" }),
        Some(id) => serde_json::json!({
            "ret": 0, "msg": "", "nickname": id.nickname, "gender": "男",
            "figureurl_qq_1": "", "figureurl_qq_2": "",
        }),
    };
    HttpResponse::Ok().json(body)
}

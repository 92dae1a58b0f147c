//! What the stand-in answers at each endpoint, in QQ's formats, and what it
//! answers instead when told to misbehave.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_web::body::{BodySize, MessageBody};
use actix_web::http::header::LOCATION;
use actix_web::http::{Method, StatusCode};
use actix_web::web::{self, Bytes};
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use serde_json::json;
use sha2::{Digest, Sha256};
use url::Url;

use super::{
    Call, Consent, DEFAULT_NICKNAME, DEFAULT_OPENID, EXPIRES_IN, Endpoint, Fault, HUGE_BYTES,
    Inner, OTHER_CLIENT_ID,
};
use crate::templates::render;

/// A request to one of QQ's endpoints: its query, whether it asked for
/// JSON, and the fault to apply.
struct Incoming {
    call: Call,
    json: bool,
    fault: Fault,
}

impl Incoming {
    fn param(&self, name: &str) -> Option<&str> {
        self.call.param(name)
    }
}

/// Every endpoint comes through here: the call is recorded (by the tests'
/// stand-in), its fault looked up and applied, then QQ's answer given.
pub(super) async fn dispatch(req: HttpRequest, body: Bytes, qq: web::Data<Inner>) -> HttpResponse {
    let endpoint = Endpoint::of_path(req.path());
    let call = Call {
        path: req.path().to_owned(),
        query: parse_pairs(req.query_string().as_bytes()),
    };
    // A block rather than drop(): the guard must visibly end before the
    // Delay fault's await.
    let (ignore_fmt, fault) = {
        let mut state = qq.lock();
        if qq.record_calls {
            state.calls.push(call.clone());
        }
        let fault = endpoint.map(|e| state.faults.get(&e).unwrap_or(&state.fault).clone());
        (state.ignore_fmt, fault)
    };
    let (Some(endpoint), Some(fault)) = (endpoint, fault) else {
        return HttpResponse::NotFound().body("not found");
    };
    let json = call.param("fmt") == Some("json") && !ignore_fmt;
    let incoming = Incoming { call, json, fault };

    if let Some(answer) = misbehave(endpoint, &incoming).await {
        return answer;
    }
    match endpoint {
        Endpoint::Authorize if req.method() == Method::POST => consent(&qq, &parse_pairs(&body)),
        Endpoint::Authorize => authorize(&qq, &incoming),
        Endpoint::Token => token(&qq, &incoming),
        Endpoint::Me => me(&qq, &incoming),
        Endpoint::UserInfo => user_info(&qq, &incoming),
    }
}

fn parse_pairs(bytes: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(bytes)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The answer of a fault that replaces the endpoint's, after a delay if asked.
async fn misbehave(endpoint: Endpoint, req: &Incoming) -> Option<HttpResponse> {
    Some(match &req.fault {
        Fault::None
        | Fault::MeWrongClientId
        | Fault::UserInfoError
        | Fault::NoUnionidPermission => return None,
        Fault::Delay(d) => {
            actix_web::rt::time::sleep(*d).await;
            return None;
        }
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            HttpResponse::build(status).body("upstream error")
        }
        Fault::Garbage => HttpResponse::Ok().body(Bytes::from_static(
            b"\xff\xfe\x00callback( {\x80\x81 garbage",
        )),
        Fault::Html => HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .body("<!DOCTYPE html><html><head><title>QQ</title></head><body><p>系统繁忙</p></body></html>"),
        Fault::Empty => HttpResponse::Ok().finish(),
        Fault::Huge => HttpResponse::Ok().body(Endless {
            left: HUGE_BYTES,
            first: true,
        }),
        Fault::HugeSized => {
            let mut body = b"{\"access_token\":\"".to_vec();
            body.resize(HUGE_BYTES, b'A');
            HttpResponse::Ok().body(body)
        }
        Fault::ApiError { code, description } => match endpoint {
            Endpoint::UserInfo => user_info_error(*code, description),
            Endpoint::Authorize => html_error(*code, description),
            Endpoint::Token | Endpoint::Me => oauth_error(req.json, *code, description),
        },
    })
}

#[derive(Template)]
#[template(path = "dev_qq/authorize.html")]
struct AuthorizePage<'a> {
    client_id: &'a str,
    redirect_uri: &'a str,
    state: &'a str,
}

/// QQ's authorize page: development mode's asks for a nickname, the tests'
/// agrees at once and sends the person back with a code.
fn authorize(qq: &Inner, req: &Incoming) -> HttpResponse {
    if req.param("response_type") != Some("code") {
        return html_error(100_000, "response_type is wrong or lost");
    }
    if req.param("client_id") != Some(qq.app_id.as_str()) {
        return html_error(100_008, "client id is illegal");
    }
    let Some(back) = qq.accepted_redirect(req.param("redirect_uri")) else {
        return html_error(100_010, "redirect uri is illegal");
    };
    let state = req.param("state");
    match &qq.consent {
        Consent::Page { .. } => {
            let page = AuthorizePage {
                client_id: &qq.app_id,
                redirect_uri: req.param("redirect_uri").unwrap_or_default(),
                state: state.unwrap_or_default(),
            };
            render(StatusCode::OK, &page)
                .unwrap_or_else(|_| HttpResponse::InternalServerError().finish())
        }
        Consent::Automatic => {
            let code = qq.grant(DEFAULT_OPENID, DEFAULT_NICKNAME);
            send_back(back, &code, state)
        }
    }
}

/// The person's answer on development mode's page: a nickname, which is
/// always the same QQ account.
fn consent(qq: &Inner, form: &[(String, String)]) -> HttpResponse {
    let field = |name: &str| {
        form.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    if field("client_id") != Some(qq.app_id.as_str()) {
        return html_error(100_008, "client id is illegal");
    }
    let Some(back) = qq.accepted_redirect(field("redirect_uri")) else {
        return html_error(100_010, "redirect uri is illegal");
    };
    let nickname: String = field("nickname")
        .unwrap_or_default()
        .trim()
        .chars()
        .take(32)
        .collect();
    if nickname.is_empty() {
        return html_error(100_000, "nickname is empty");
    }
    let code = qq.grant(&openid_for(&nickname), &nickname);
    send_back(back, &code, field("state"))
}

/// QQ's 302 back to the app's callback with the code and the app's state.
fn send_back(mut back: Url, code: &str, state: Option<&str>) -> HttpResponse {
    {
        let mut query = back.query_pairs_mut();
        query.append_pair("code", code);
        if let Some(state) = state {
            query.append_pair("state", state);
        }
    }
    HttpResponse::Found()
        .insert_header((LOCATION, back.as_str()))
        .finish()
}

fn token(qq: &Inner, req: &Incoming) -> HttpResponse {
    if req.param("grant_type") != Some("authorization_code") {
        return oauth_error(req.json, 100_004, "param grant_type is wrong or lost ");
    }
    if req.param("client_id") != Some(qq.app_id.as_str()) {
        return oauth_error(req.json, 100_008, "client id is illegal");
    }
    if !qq.secret_ok(req.param("client_secret")) {
        return oauth_error(req.json, 100_009, "client secret is illegal");
    }
    if qq.accepted_redirect(req.param("redirect_uri")).is_none() {
        return oauth_error(req.json, 100_010, "redirect uri is illegal");
    }
    let Some(code) = req.param("code").filter(|c| !c.is_empty()) else {
        return oauth_error(req.json, 100_005, "param code is wrong or lost ");
    };
    let (access_token, refresh_token) = match qq.redeem(code) {
        Ok(identity) => qq.issue_token(identity),
        Err((code, description)) => return oauth_error(req.json, code, description),
    };
    if req.json {
        json_response(&json!({
            "access_token": access_token,
            "expires_in": EXPIRES_IN,
            "refresh_token": refresh_token,
        }))
    } else {
        let body = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("access_token", &access_token)
            .append_pair("expires_in", EXPIRES_IN)
            .append_pair("refresh_token", &refresh_token)
            .finish();
        HttpResponse::Ok().content_type("text/html").body(body)
    }
}

fn me(qq: &Inner, req: &Incoming) -> HttpResponse {
    let Some(holder) = qq.holder(req.param("access_token")) else {
        return oauth_error(req.json, 100_016, "access token check failed");
    };
    let client_id = if req.fault == Fault::MeWrongClientId {
        OTHER_CLIENT_ID
    } else {
        qq.app_id.as_str()
    };
    let mut body = json!({ "client_id": client_id, "openid": holder.openid });
    if req.param("unionid") == Some("1") {
        if req.fault == Fault::NoUnionidPermission {
            return oauth_error(req.json, 100_048, "no unionid permission");
        }
        body["unionid"] = json!(holder.unionid);
    }
    if req.json {
        json_response(&body)
    } else {
        jsonp_response(&body)
    }
}

fn user_info(qq: &Inner, req: &Incoming) -> HttpResponse {
    if req.fault == Fault::UserInfoError {
        return user_info_error(
            -1,
            "client request's parameters are invalid, invalid openid",
        );
    }
    let Some(holder) = qq.holder(req.param("access_token")) else {
        return user_info_error(1002, "请先登录");
    };
    if req.param("oauth_consumer_key") != Some(qq.app_id.as_str()) {
        return user_info_error(
            -1,
            "client request's parameters are invalid, invalid oauth_consumer_key",
        );
    }
    if req.param("openid") != Some(holder.openid.as_str()) {
        return user_info_error(
            -1,
            "client request's parameters are invalid, invalid openid",
        );
    }
    json_response(&json!({
        "ret": 0,
        "msg": "",
        "is_lost": 0,
        "nickname": holder.nickname,
        "gender": "男",
        "gender_type": 1,
        "province": "",
        "city": "",
        "year": "1990",
        "figureurl": "http://qzapp.qlogo.cn/qzapp/101234567/0123/30",
        "figureurl_qq_1": "http://thirdqq.qlogo.cn/g?b=oidb&k=0123&s=40",
        "figureurl_qq_2": format!("http://thirdqq.qlogo.cn/g?b=oidb&k={}&s=100", holder.openid),
        "is_yellow_vip": "0",
    }))
}

/// QQ's OAuth error: JSONP by default, plain JSON with `fmt=json`; HTTP 200.
fn oauth_error(json: bool, code: i64, description: &str) -> HttpResponse {
    let body = json!({ "error": code, "error_description": description });
    if json {
        json_response(&body)
    } else {
        jsonp_response(&body)
    }
}

/// The OpenAPI error shape: `ret` and `msg`, HTTP 200.
fn user_info_error(ret: i64, msg: &str) -> HttpResponse {
    json_response(&json!({ "ret": ret, "msg": msg }))
}

/// The authorize page's errors are pages for the person, not API answers.
fn html_error(code: i64, description: &str) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<html><body><p>{code}: {description}</p></body></html>"
        ))
}

fn json_response(body: &serde_json::Value) -> HttpResponse {
    // QQ labels its JSON text/html; the client must not depend on the type.
    HttpResponse::Ok()
        .content_type("text/html")
        .body(body.to_string())
}

fn jsonp_response(body: &serde_json::Value) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html")
        .body(format!("callback( {body} );\n"))
}

/// A body streamed in 64 KiB chunks with no declared size.
struct Endless {
    left: usize,
    first: bool,
}

impl MessageBody for Endless {
    type Error = std::convert::Infallible;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        if self.left == 0 {
            return Poll::Ready(None);
        }
        let n = self.left.min(64 * 1024);
        self.left -= n;
        // Starts like a real token answer, so only the size cap can stop it.
        let mut chunk = if std::mem::take(&mut self.first) {
            b"{\"access_token\":\"".to_vec()
        } else {
            Vec::new()
        };
        chunk.resize(n, b'A');
        Poll::Ready(Some(Ok(Bytes::from(chunk))))
    }
}

/// The same nickname always maps to the same openid (32 upper-case hex, like QQ's).
fn openid_for(nickname: &str) -> String {
    Sha256::digest(nickname.as_bytes())
        .iter()
        .take(16)
        .map(|b| format!("{b:02X}"))
        .collect()
}

//! A stand-in for QQ Connect, served over real HTTP on 127.0.0.1, that
//! speaks QQ's actual answer formats (url-encoded, JSONP, JSON with string
//! numbers, errors with HTTP 200), can be told to misbehave, and records
//! every call.
//!
//! # Runtime
//!
//! The server runs on its own OS thread inside its own `actix_web::rt::System`.
//! actix-web's `HttpServer` must be driven from an actix System / tokio
//! `LocalSet`, which `#[tokio::test]` does not provide (and where
//! `actix_web::rt::spawn` would panic); a private thread makes
//! [`FakeQq::start`] work the same from `#[tokio::test]` (current-thread or
//! multi-thread) and `#[actix_web::test]`, and keeps a deliberately slow
//! handler from stalling the test's own runtime. Dropping the `FakeQq` stops
//! the server.
//!
//! Routes are matched on the path's end, so the fake answers under any
//! prefix: `{base_url}/oauth2.0/token` and `{base_url}/dev/qq/oauth2.0/token`
//! both work, which lets tests exercise a `graph_url` with a path prefix.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, MessageBody};
use actix_web::dev::ServerHandle;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, http::StatusCode};
use serde_json::json;

/// How long a granted code stays valid, as on the real QQ.
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);

/// The size of the [`Fault::Huge`] body.
pub const HUGE_BYTES: usize = 10 * 1024 * 1024;

/// The user [`FakeQq`]'s `/oauth2.0/authorize` logs in.
pub const DEFAULT_OPENID: &str = "0123456789ABCDEF0123456789ABCDEF";
/// The nickname of [`DEFAULT_OPENID`].
pub const DEFAULT_NICKNAME: &str = "测试用户";

/// The client id `/oauth2.0/me` reports under [`Fault::MeWrongClientId`].
pub const OTHER_CLIENT_ID: &str = "100000001";

/// One request the fake received.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    /// The request path, e.g. `/oauth2.0/token`.
    pub path: String,
    /// The decoded query, in order.
    pub query: Vec<(String, String)>,
}

impl Call {
    /// The first value of query parameter `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The fake's endpoints, for aiming a [`Fault`] at one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `/oauth2.0/authorize`
    Authorize,
    /// `/oauth2.0/token`
    Token,
    /// `/oauth2.0/me`
    Me,
    /// `/user/get_user_info`
    UserInfo,
}

/// A way for the fake to misbehave. Faults that name an endpoint
/// (`MeWrongClientId`, `UserInfoError`) are ignored by the others, so they
/// can be set for all endpoints at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    None,
    /// Wait this long, then behave.
    Delay(Duration),
    /// Answer with this HTTP status and a short text body.
    Status(u16),
    /// Answer 200 with bytes that are neither UTF-8 nor any QQ format.
    Garbage,
    /// Answer 200 with an HTML page, like a captive portal or a proxy error.
    Html,
    /// Answer 200 with an empty body.
    Empty,
    /// Answer 200 with a [`HUGE_BYTES`] body streamed in chunks, without a
    /// Content-Length, so the client must count as it reads.
    Huge,
    /// Like `Huge`, but with a Content-Length the client can refuse up front.
    HugeSized,
    /// Answer with this QQ error in the endpoint's own error format
    /// (JSONP/JSON `error`+`error_description`, or `ret`+`msg` for
    /// get_user_info), with HTTP 200.
    ApiError { code: i64, description: String },
    /// `/oauth2.0/me` reports the token as issued to [`OTHER_CLIENT_ID`].
    MeWrongClientId,
    /// `/user/get_user_info` answers QQ's
    /// `{"ret":-1,"msg":"client request's parameters are invalid, invalid openid"}`.
    UserInfoError,
}

struct Grant {
    openid: String,
    nickname: String,
    issued: Instant,
    used: bool,
}

struct Holder {
    openid: String,
    nickname: String,
}

struct State {
    calls: Vec<Call>,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, Holder>,
    fault: Fault,
    faults: HashMap<Endpoint, Fault>,
    ignore_fmt: bool,
    counter: u64,
}

struct Shared {
    app_id: String,
    app_key: String,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not turn every later request into a
        // second, confusing panic.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    /// 32 upper-case hex digits, QQ's shape for codes and tokens. Unique per
    /// fake (counter) and unpredictable enough for tests (random keys).
    fn fresh_secret(&mut self) -> String {
        self.counter += 1;
        let random = std::hash::RandomState::new();
        let mut a = random.build_hasher();
        a.write_u64(self.counter);
        let mut b = random.build_hasher();
        b.write_u64(!self.counter);
        format!("{:016X}{:016X}", a.finish(), b.finish())
    }

    fn fault_for(&self, endpoint: Endpoint) -> Fault {
        self.faults
            .get(&endpoint)
            .cloned()
            .unwrap_or_else(|| self.fault.clone())
    }
}

/// The running stand-in QQ. See the module docs.
pub struct FakeQq {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    shared: Arc<Shared>,
    handle: ServerHandle,
}

impl Drop for FakeQq {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits
        // for completion, which a destructor cannot do and need not.
        drop(self.handle.stop(false));
    }
}

impl FakeQq {
    /// Starts a fake QQ that knows one app, `app_id` / `app_key`.
    pub async fn start(app_id: &str, app_key: &str) -> FakeQq {
        let shared = Arc::new(Shared {
            app_id: app_id.to_owned(),
            app_key: app_key.to_owned(),
            state: Mutex::new(State {
                calls: Vec::new(),
                grants: HashMap::new(),
                tokens: HashMap::new(),
                fault: Fault::None,
                faults: HashMap::new(),
                ignore_fmt: false,
                counter: 0,
            }),
        });
        let (ready_tx, ready_rx) =
            tokio::sync::oneshot::channel::<std::io::Result<(SocketAddr, ServerHandle)>>();
        let data = web::Data::from(Arc::clone(&shared));
        std::thread::Builder::new()
            .name("fake-qq".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let bound = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .default_service(web::to(dispatch))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .bind(("127.0.0.1", 0));
                    let server = match bound {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                    let addr = server.addrs()[0];
                    let server = server.run();
                    let _ = ready_tx.send(Ok((addr, server.handle())));
                    let _ = server.await;
                });
            })
            .expect("spawn fake QQ thread");
        let (addr, handle) = ready_rx
            .await
            .expect("fake QQ thread died before listening")
            .expect("fake QQ could not bind 127.0.0.1:0");
        FakeQq {
            base_url: format!("http://{addr}"),
            shared,
            handle,
        }
    }

    /// Registers a fresh one-time code, valid for [`CODE_LIFETIME`], that
    /// logs in `openid` with `nickname`; returns the code.
    pub fn grant(&self, openid: &str, nickname: &str) -> String {
        grant(&mut self.shared.lock(), openid, nickname)
    }

    /// Makes every code granted so far older than its lifetime, so the next
    /// exchange of any of them fails with 100019 as on QQ.
    pub fn expire_codes(&self) {
        let old = Instant::now()
            .checked_sub(CODE_LIFETIME + Duration::from_secs(1))
            .expect("clock too close to its origin");
        for grant in self.shared.lock().grants.values_mut() {
            grant.issued = old;
        }
    }

    /// Sets the fault for every endpoint that has no fault of its own (see
    /// [`FakeQq::set_fault_on`]; those still win).
    pub fn set_fault(&self, fault: Fault) {
        self.shared.lock().fault = fault;
    }

    /// Removes every fault, global and per endpoint.
    pub fn clear_faults(&self) {
        let mut state = self.shared.lock();
        state.fault = Fault::None;
        state.faults.clear();
    }

    /// Sets the fault for one endpoint, overriding [`FakeQq::set_fault`].
    /// `Fault::None` here makes that endpoint behave whatever the global
    /// fault is.
    pub fn set_fault_on(&self, endpoint: Endpoint, fault: Fault) {
        self.shared.lock().faults.insert(endpoint, fault);
    }

    /// When on, the fake ignores `fmt=json` and answers in QQ's older
    /// formats: url-encoded tokens, JSONP for `/me` and for errors.
    pub fn set_ignore_fmt(&self, on: bool) {
        self.shared.lock().ignore_fmt = on;
    }

    /// Every call received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// How many calls had a path ending in `path_suffix`.
    pub fn calls_to(&self, path_suffix: &str) -> usize {
        self.shared
            .lock()
            .calls
            .iter()
            .filter(|c| c.path.ends_with(path_suffix))
            .count()
    }

    /// Every access token issued so far (for checking they never leak).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().tokens.keys().cloned().collect()
    }
}

fn grant(state: &mut State, openid: &str, nickname: &str) -> String {
    let code = state.fresh_secret();
    state.grants.insert(
        code.clone(),
        Grant {
            openid: openid.to_owned(),
            nickname: nickname.to_owned(),
            issued: Instant::now(),
            used: false,
        },
    );
    code
}

/// The request's query, what it asked for, and the fault to apply.
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

async fn dispatch(req: HttpRequest, shared: web::Data<Shared>) -> HttpResponse {
    let path = req.path().to_owned();
    let endpoint = if path.ends_with("/oauth2.0/authorize") {
        Some(Endpoint::Authorize)
    } else if path.ends_with("/oauth2.0/token") {
        Some(Endpoint::Token)
    } else if path.ends_with("/oauth2.0/me") {
        Some(Endpoint::Me)
    } else if path.ends_with("/user/get_user_info") {
        Some(Endpoint::UserInfo)
    } else {
        None
    };
    let call = Call {
        path,
        query: url::form_urlencoded::parse(req.query_string().as_bytes())
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    };
    // A block rather than drop(): the guard must visibly end before the
    // Delay fault's await.
    let (ignore_fmt, fault) = {
        let mut state = shared.lock();
        state.calls.push(call.clone());
        (state.ignore_fmt, endpoint.map(|e| state.fault_for(e)))
    };
    let (Some(endpoint), Some(fault)) = (endpoint, fault) else {
        return HttpResponse::NotFound().body("not found");
    };
    let json = call.param("fmt") == Some("json") && !ignore_fmt;
    let incoming = Incoming { call, json, fault };

    // Faults that replace the answer whatever the endpoint.
    match &incoming.fault {
        Fault::Delay(d) => actix_web::rt::time::sleep(*d).await,
        Fault::Status(code) => {
            let status = StatusCode::from_u16(*code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return HttpResponse::build(status).body("upstream error");
        }
        Fault::Garbage => {
            return HttpResponse::Ok().body(Bytes::from_static(
                b"\xff\xfe\x00callback( {\x80\x81 garbage",
            ));
        }
        Fault::Html => {
            return HttpResponse::Ok()
                .content_type("text/html; charset=utf-8")
                .body("<!DOCTYPE html><html><head><title>QQ</title></head><body><p>系统繁忙</p></body></html>");
        }
        Fault::Empty => return HttpResponse::Ok().finish(),
        Fault::Huge => {
            return HttpResponse::Ok().body(Endless {
                left: HUGE_BYTES,
                first: true,
            });
        }
        Fault::HugeSized => {
            let mut body = b"{\"access_token\":\"".to_vec();
            body.resize(HUGE_BYTES, b'A');
            return HttpResponse::Ok().body(body);
        }
        Fault::ApiError { code, description } => {
            return match endpoint {
                Endpoint::UserInfo => user_info_error(*code, description),
                Endpoint::Authorize => HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(format!("<html><body>error {code}</body></html>")),
                Endpoint::Token | Endpoint::Me => oauth_error(incoming.json, *code, description),
            };
        }
        Fault::None | Fault::MeWrongClientId | Fault::UserInfoError => {}
    }

    match endpoint {
        Endpoint::Authorize => authorize(&shared, &incoming),
        Endpoint::Token => token(&shared, &incoming),
        Endpoint::Me => me(&shared, &incoming),
        Endpoint::UserInfo => user_info(&shared, &incoming),
    }
}

/// QQ's authorize page, reduced to "the person agreed": a 302 back to the
/// app with a fresh code for [`DEFAULT_OPENID`].
fn authorize(shared: &Shared, req: &Incoming) -> HttpResponse {
    if req.param("response_type") != Some("code") {
        return html_error(100_000, "response_type is wrong or lost");
    }
    if req.param("client_id") != Some(shared.app_id.as_str()) {
        return html_error(100_008, "client id is illegal");
    }
    let Some(Ok(mut back)) = req.param("redirect_uri").map(url::Url::parse) else {
        return html_error(100_010, "redirect uri is illegal");
    };
    let code = grant(&mut shared.lock(), DEFAULT_OPENID, DEFAULT_NICKNAME);
    {
        let mut query = back.query_pairs_mut();
        query.append_pair("code", &code);
        if let Some(state) = req.param("state") {
            query.append_pair("state", state);
        }
    }
    HttpResponse::Found()
        .insert_header(("Location", back.as_str()))
        .finish()
}

fn token(shared: &Shared, req: &Incoming) -> HttpResponse {
    if req.param("grant_type") != Some("authorization_code") {
        return oauth_error(req.json, 100_004, "param grant_type is wrong or lost ");
    }
    if req.param("client_id") != Some(shared.app_id.as_str()) {
        return oauth_error(req.json, 100_008, "client id is illegal");
    }
    if req.param("client_secret") != Some(shared.app_key.as_str()) {
        return oauth_error(req.json, 100_009, "client secret is illegal");
    }
    if req.param("redirect_uri").is_none_or(str::is_empty) {
        return oauth_error(req.json, 100_010, "redirect uri is illegal");
    }
    let Some(code) = req.param("code").filter(|c| !c.is_empty()) else {
        return oauth_error(req.json, 100_005, "param code is wrong or lost ");
    };
    let mut state = shared.lock();
    let (openid, nickname) = match state.grants.get_mut(code) {
        None => return oauth_error(req.json, 100_019, "code to access token error"),
        Some(g) if g.issued.elapsed() > CODE_LIFETIME => {
            return oauth_error(req.json, 100_019, "code to access token error");
        }
        Some(g) if g.used => return oauth_error(req.json, 100_020, "code is reused error"),
        Some(g) => {
            g.used = true;
            (g.openid.clone(), g.nickname.clone())
        }
    };
    let access_token = state.fresh_secret();
    let refresh_token = state.fresh_secret();
    state
        .tokens
        .insert(access_token.clone(), Holder { openid, nickname });
    drop(state);
    if req.json {
        // QQ really does send expires_in as a string here.
        json_response(&json!({
            "access_token": access_token,
            "expires_in": "7776000",
            "refresh_token": refresh_token,
        }))
    } else {
        HttpResponse::Ok().content_type("text/html").body(format!(
            "access_token={access_token}&expires_in=7776000&refresh_token={refresh_token}"
        ))
    }
}

fn me(shared: &Shared, req: &Incoming) -> HttpResponse {
    let state = shared.lock();
    let Some(holder) = req.param("access_token").and_then(|t| state.tokens.get(t)) else {
        return oauth_error(req.json, 100_016, "access token check failed");
    };
    let client_id = if req.fault == Fault::MeWrongClientId {
        OTHER_CLIENT_ID
    } else {
        shared.app_id.as_str()
    };
    let body = json!({ "client_id": client_id, "openid": holder.openid });
    if req.json {
        json_response(&body)
    } else {
        jsonp_response(&body)
    }
}

fn user_info(shared: &Shared, req: &Incoming) -> HttpResponse {
    if req.fault == Fault::UserInfoError {
        return user_info_error(
            -1,
            "client request's parameters are invalid, invalid openid",
        );
    }
    let state = shared.lock();
    let Some(holder) = req.param("access_token").and_then(|t| state.tokens.get(t)) else {
        return user_info_error(1002, "请先登录");
    };
    if req.param("oauth_consumer_key") != Some(shared.app_id.as_str()) {
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

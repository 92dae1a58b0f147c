//! A stand-in for QQ Connect that speaks QQ's own formats: url-encoded token
//! answers (JSON with `fmt=json`, `expires_in` a string), JSONP `/me` and
//! JSONP errors, `get_user_info` errors as `ret`/`msg` with HTTP 200, codes
//! that live ten minutes and work once. The real client and flow run against
//! it unchanged.
//!
//! One behaviour, three uses:
//!
//! * development mode mounts it at `/dev/qq/` ([`StandIn::development`],
//!   [`StandIn::configure`]): its authorize page lets a person type any
//!   nickname, and the same nickname is always the same openid;
//! * the tests start it on a port of their own ([`StandIn::new`],
//!   [`StandIn::start`]): consent is given at once as [`DEFAULT_OPENID`],
//!   every call is recorded, and it can be told to misbehave ([`Fault`]);
//! * the benchmark serves it as a process of its own (`examples/bench_qq.rs`:
//!   [`StandIn::benchmark`], [`StandIn::serve`]): it accepts the codes the
//!   load generator makes up and keeps nothing per login.
//!
//! Faults and the record of calls are reached only through this Rust API,
//! never over HTTP. On a port of its own the endpoints are matched on the
//! path's end, so `{base_url}/dev/qq/oauth2.0/token` answers like
//! `{base_url}/oauth2.0/token` (a `QQ_GRAPH_URL` with a path prefix).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Deref;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use actix_web::dev::{Server, ServerHandle};
use actix_web::{App, HttpServer, web};
use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use url::Url;

mod answer;

use answer::dispatch;

/// The app id development mode uses with its stand-in.
pub const DEV_APP_ID: &str = "100000000";
/// How long a granted code stays valid, as on the real QQ.
pub const CODE_LIFETIME: Duration = Duration::from_secs(600);
/// The size of the [`Fault::Huge`] body.
pub const HUGE_BYTES: usize = 10 * 1024 * 1024;
/// The QQ account the tests' stand-in ([`StandIn::new`]) logs in at `/oauth2.0/authorize`.
pub const DEFAULT_OPENID: &str = "0123456789ABCDEF0123456789ABCDEF";
/// The nickname of [`DEFAULT_OPENID`].
pub const DEFAULT_NICKNAME: &str = "测试用户";
/// The client id `/oauth2.0/me` reports under [`Fault::MeWrongClientId`].
pub const OTHER_CLIENT_ID: &str = "100000001";
/// The nickname of every account of the benchmark's stand-in.
const BENCH_NICKNAME: &str = "bench";
/// Codes and tokens kept at most, so that development mode on a busy
/// machine stays small; far above what a test or a laptop hands out.
const MAX_KEPT: usize = 100_000;
/// QQ's access tokens live 90 days, and QQ says so as a string.
const EXPIRES_IN: &str = "7776000";

/// One request the stand-in received (only [`StandIn::new`]'s records them).
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

/// QQ's endpoints, for aiming a [`Fault`] at one of them.
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

impl Endpoint {
    fn of_path(path: &str) -> Option<Self> {
        [
            ("/oauth2.0/authorize", Self::Authorize),
            ("/oauth2.0/token", Self::Token),
            ("/oauth2.0/me", Self::Me),
            ("/user/get_user_info", Self::UserInfo),
        ]
        .into_iter()
        .find_map(|(suffix, endpoint)| path.ends_with(suffix).then_some(endpoint))
    }
}

/// A way for the stand-in to misbehave. Faults that name an endpoint
/// (`MeWrongClientId`, `UserInfoError`) are ignored by the others, so they
/// can be set for all endpoints at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Behave.
    None,
    /// Wait this long, then behave (the benchmark's slow QQ, too).
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
    /// `/oauth2.0/me` asked for the unionid answers QQ's 100048: the app has
    /// no unionid permission (asked without, it answers as usual).
    NoUnionidPermission,
}

/// How `/oauth2.0/authorize` gets the person's consent.
enum Consent {
    /// A page where a person types any nickname; only these redirect URIs
    /// are registered, as at QQ.
    Page { redirect_uris: Vec<String> },
    /// At once, as [`DEFAULT_OPENID`], for any redirect URI.
    Automatic,
}

/// Where codes and tokens come from.
enum Codes {
    /// Codes granted one by one (by a person's consent or [`StandIn::grant`]),
    /// each good once; tokens remembered.
    Granted,
    /// Any code `c-<openid>-<n>` is good, any number of times, and gives the
    /// token `t-<openid>`: the benchmark's load generator makes its own codes.
    Minted,
}

#[derive(Clone)]
struct Identity {
    openid: String,
    nickname: String,
    /// The person across the developer's apps: `UID_<openid>` unless a
    /// test grants another ([`StandIn::grant_with_unionid`]).
    unionid: String,
}

struct Grant {
    identity: Identity,
    expires: Instant,
    used: bool,
}

struct State {
    calls: Vec<Call>,
    grants: HashMap<String, Grant>,
    tokens: HashMap<String, Identity>,
    fault: Fault,
    faults: HashMap<Endpoint, Fault>,
    ignore_fmt: bool,
}

struct Inner {
    app_id: String,
    app_key: SecretString,
    consent: Consent,
    codes: Codes,
    record_calls: bool,
    state: Mutex<State>,
}

/// The stand-in QQ: its app, its codes and tokens, its faults. Cheap to
/// clone; every clone is the same stand-in.
#[derive(Clone)]
pub struct StandIn(Arc<Inner>);

impl StandIn {
    /// The tests' QQ for one app: consent at once as [`DEFAULT_OPENID`],
    /// codes from [`StandIn::grant`] too, every call recorded.
    pub fn new(app_id: &str, app_key: &str) -> Self {
        Self::build(
            app_id,
            SecretString::from(app_key),
            Consent::Automatic,
            Codes::Granted,
            true,
        )
    }

    /// Development mode's QQ: [`DEV_APP_ID`] with `app_key`, a page where a
    /// person picks a nickname, and only `redirect_uris` registered (the
    /// pages' callback and the JSON API's).
    pub fn development(app_key: SecretString, redirect_uris: &[&Url]) -> Self {
        let consent = Consent::Page {
            redirect_uris: redirect_uris
                .iter()
                .map(|u| u.as_str().to_owned())
                .collect(),
        };
        Self::build(DEV_APP_ID, app_key, consent, Codes::Granted, false)
    }

    /// The benchmark's QQ: any code `c-<openid>-<n>` logs in `<openid>`,
    /// nothing is remembered or recorded.
    pub fn benchmark(app_id: &str, app_key: &str) -> Self {
        let key = SecretString::from(app_key);
        Self::build(app_id, key, Consent::Automatic, Codes::Minted, false)
    }

    fn build(
        app_id: &str,
        app_key: SecretString,
        consent: Consent,
        codes: Codes,
        record_calls: bool,
    ) -> Self {
        Self(Arc::new(Inner {
            app_id: app_id.to_owned(),
            app_key,
            consent,
            codes,
            record_calls,
            state: Mutex::new(State {
                calls: Vec::new(),
                grants: HashMap::new(),
                tokens: HashMap::new(),
                fault: Fault::None,
                faults: HashMap::new(),
                ignore_fmt: false,
            }),
        }))
    }

    /// Mounts the endpoints under `prefix` (development mode: `/dev/qq`).
    pub fn configure(&self, cfg: &mut web::ServiceConfig, prefix: &str) {
        cfg.service(
            web::scope(prefix)
                .app_data(web::Data::from(Arc::clone(&self.0)))
                .route("/oauth2.0/authorize", web::get().to(dispatch))
                .route("/oauth2.0/authorize", web::post().to(dispatch))
                .route("/oauth2.0/token", web::get().to(dispatch))
                .route("/oauth2.0/me", web::get().to(dispatch))
                .route("/user/get_user_info", web::get().to(dispatch)),
        );
    }

    /// Serves the stand-in on `addr` (port 0: any free one) with `workers`
    /// threads, plus `GET /healthz`; returns the server to await and the
    /// address it listens on. Must run inside an actix system.
    pub fn serve(&self, addr: SocketAddr, workers: usize) -> std::io::Result<(Server, SocketAddr)> {
        let data = web::Data::from(Arc::clone(&self.0));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/healthz", web::get().to(|| async { "ok" }))
                .default_service(web::to(dispatch))
        })
        .workers(workers.max(1))
        .backlog(4096)
        .disable_signals()
        .shutdown_timeout(0)
        .bind(addr)?;
        let bound = server.addrs().first().copied().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::AddrNotAvailable, "no address bound")
        })?;
        Ok((server.run(), bound))
    }

    /// Serves the stand-in on 127.0.0.1 on a free port, on a thread and an
    /// actix system of its own: that works the same from `#[tokio::test]` and
    /// `#[actix_web::test]` (which cannot drive an actix server themselves),
    /// and keeps a deliberately slow answer from stalling the caller's
    /// runtime. Dropping the [`Running`] stops the server.
    pub async fn start(self) -> std::io::Result<Running> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let stand_in = self.clone();
        std::thread::Builder::new()
            .name("stand-in-qq".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    match stand_in.serve(SocketAddr::from(([127, 0, 0, 1], 0)), 1) {
                        Ok((server, addr)) => {
                            let _ = ready_tx.send(Ok((addr, server.handle())));
                            let _ = server.await;
                        }
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                        }
                    }
                });
            })?;
        let (addr, handle) = ready_rx.await.map_err(|_| {
            std::io::Error::other("the stand-in QQ's thread ended before it listened")
        })??;
        Ok(Running {
            base_url: format!("http://{addr}"),
            stand_in: self,
            handle,
        })
    }

    /// Registers a fresh one-time code, valid for [`CODE_LIFETIME`], that
    /// logs in `openid` with `nickname`; returns the code.
    pub fn grant(&self, openid: &str, nickname: &str) -> String {
        self.0.grant(openid, nickname)
    }

    /// [`StandIn::grant`] for a person whose unionid is `unionid`: the same
    /// person as another app of the developer knows under another openid.
    pub fn grant_with_unionid(&self, openid: &str, nickname: &str, unionid: &str) -> String {
        self.0.grant_as(Identity {
            openid: openid.to_owned(),
            nickname: nickname.to_owned(),
            unionid: unionid.to_owned(),
        })
    }

    /// Makes every code granted so far older than its lifetime, so the next
    /// exchange of any of them fails with 100019 as on QQ.
    pub fn expire_codes(&self) {
        let now = Instant::now();
        for grant in self.0.lock().grants.values_mut() {
            grant.expires = now;
        }
    }

    /// Sets the fault for every endpoint that has no fault of its own (see
    /// [`StandIn::set_fault_on`]; those still win).
    pub fn set_fault(&self, fault: Fault) {
        self.0.lock().fault = fault;
    }

    /// Removes every fault, global and per endpoint.
    pub fn clear_faults(&self) {
        let mut state = self.0.lock();
        state.fault = Fault::None;
        state.faults.clear();
    }

    /// Sets the fault for one endpoint, overriding [`StandIn::set_fault`].
    /// `Fault::None` here makes that endpoint behave whatever the global
    /// fault is.
    pub fn set_fault_on(&self, endpoint: Endpoint, fault: Fault) {
        self.0.lock().faults.insert(endpoint, fault);
    }

    /// When on, the stand-in ignores `fmt=json` and answers in QQ's older
    /// formats: url-encoded tokens, JSONP for `/me` and for errors.
    pub fn set_ignore_fmt(&self, on: bool) {
        self.0.lock().ignore_fmt = on;
    }

    /// Every call received so far, oldest first.
    pub fn calls(&self) -> Vec<Call> {
        self.0.lock().calls.clone()
    }

    /// How many calls had a path ending in `path_suffix`.
    pub fn calls_to(&self, path_suffix: &str) -> usize {
        let state = self.0.lock();
        state
            .calls
            .iter()
            .filter(|c| c.path.ends_with(path_suffix))
            .count()
    }

    /// Every access token issued so far (for checking they never leak).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.0.lock().tokens.keys().cloned().collect()
    }
}

/// A stand-in serving on a port of its own ([`StandIn::start`]); derefs to
/// the [`StandIn`] for its faults and records. Dropping it stops the server.
pub struct Running {
    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub base_url: String,
    stand_in: StandIn,
    handle: ServerHandle,
}

impl Deref for Running {
    type Target = StandIn;

    fn deref(&self) -> &StandIn {
        &self.stand_in
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // `stop` sends its command at once; the returned future only waits
        // for completion, which a destructor cannot do and need not.
        drop(self.handle.stop(false));
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A poisoned lock only means a panic elsewhere mid-way; the maps are
        // still usable, and a panicking test must not cause a second panic here.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn grant(&self, openid: &str, nickname: &str) -> String {
        self.grant_as(Identity {
            openid: openid.to_owned(),
            nickname: nickname.to_owned(),
            unionid: format!("UID_{openid}"),
        })
    }

    fn grant_as(&self, identity: Identity) -> String {
        let code = fresh_secret();
        let now = Instant::now();
        let mut state = self.lock();
        if state.grants.len() >= MAX_KEPT {
            state.grants.retain(|_, g| g.expires > now);
        }
        // Still full: the code is handed out but unknown, like a code lost at QQ.
        if state.grants.len() < MAX_KEPT {
            let grant = Grant {
                identity,
                expires: now + CODE_LIFETIME,
                used: false,
            };
            state.grants.insert(code.clone(), grant);
        }
        code
    }

    fn secret_ok(&self, secret: Option<&str>) -> bool {
        secret.is_some_and(|s| {
            bool::from(s.as_bytes().ct_eq(self.app_key.expose_secret().as_bytes()))
        })
    }

    /// The redirect URI QQ would send the person back to, if it accepts it.
    fn accepted_redirect(&self, uri: Option<&str>) -> Option<Url> {
        let uri = uri.filter(|u| !u.is_empty())?;
        match &self.consent {
            Consent::Page { redirect_uris } if !redirect_uris.iter().any(|r| r == uri) => None,
            _ => Url::parse(uri).ok(),
        }
    }

    /// Uses up `code`, or says QQ's error.
    fn redeem(&self, code: &str) -> Result<Identity, (i64, &'static str)> {
        const UNKNOWN: (i64, &str) = (100_019, "code to access token error");
        if let Codes::Minted = self.codes {
            let (openid, n) = code
                .strip_prefix("c-")
                .and_then(|c| c.rsplit_once('-'))
                .ok_or(UNKNOWN)?;
            if openid.is_empty() || n.is_empty() {
                return Err(UNKNOWN);
            }
            return Ok(bench_identity(openid));
        }
        let mut state = self.lock();
        match state.grants.get_mut(code) {
            None => Err(UNKNOWN),
            Some(g) if Instant::now() >= g.expires => Err(UNKNOWN),
            Some(g) if g.used => Err((100_020, "code is reused error")),
            Some(g) => {
                g.used = true;
                Ok(g.identity.clone())
            }
        }
    }

    /// An access token and a refresh token for `identity`.
    fn issue_token(&self, identity: Identity) -> (String, String) {
        if let Codes::Minted = self.codes {
            return (
                format!("t-{}", identity.openid),
                format!("r-{}", identity.openid),
            );
        }
        let (access, refresh) = (fresh_secret(), fresh_secret());
        let mut state = self.lock();
        if state.tokens.len() >= MAX_KEPT {
            state.tokens.clear();
        }
        state.tokens.insert(access.clone(), identity);
        (access, refresh)
    }

    fn holder(&self, token: Option<&str>) -> Option<Identity> {
        let token = token?;
        match self.codes {
            Codes::Minted => token
                .strip_prefix("t-")
                .filter(|o| !o.is_empty())
                .map(bench_identity),
            Codes::Granted => self.lock().tokens.get(token).cloned(),
        }
    }
}

fn bench_identity(openid: &str) -> Identity {
    Identity {
        openid: openid.to_owned(),
        nickname: BENCH_NICKNAME.to_owned(),
        unionid: format!("UID_{openid}"),
    }
}

/// 32 upper-case hex digits, QQ's shape for codes and tokens.
fn fresh_secret() -> String {
    format!("{:032X}", rand::random::<u128>())
}

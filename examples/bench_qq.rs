//! A fast, stateless stand-in for QQ Connect's server-side endpoints, for the
//! login benchmark (`cargo bench --bench login`, see BENCHMARKS.md).
//!
//! Unlike the test suite's fake (tests/api/fake_qq.rs) it keeps no state and
//! records nothing, so it costs a few microseconds per call:
//!
//! * `GET /oauth2.0/token?...&code=c-<openid>-<n>` → `{"access_token":"t-<openid>",...}`
//!   (any code of that shape is good, any number of times);
//! * `GET /oauth2.0/me?access_token=t-<openid>` → `{"client_id":"<app id>","openid":"<openid>"}`;
//! * `GET /user/get_user_info?...` → `{"ret":0,"nickname":"bench"}`;
//! * `GET /healthz` → `ok`.
//!
//! Each QQ endpoint answers after `--delay-ms` (default 0), slept
//! asynchronously: a slow QQ, not a busy one.
//!
//! ```sh
//! cargo run --release --example bench_qq -- --listen 127.0.0.1:9001 --app-id 101000001 --delay-ms 20
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};

struct StandIn {
    app_id: String,
    delay: Duration,
}

/// The first value of query parameter `name`.
fn param(req: &HttpRequest, name: &str) -> Option<String> {
    url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn json(body: String) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// QQ reports OAuth errors with HTTP 200 and an `error` member.
fn oauth_error(code: u32, description: &str) -> HttpResponse {
    json(format!(
        r#"{{"error":{code},"error_description":"{description}"}}"#
    ))
}

async fn pause(state: &StandIn) {
    if !state.delay.is_zero() {
        actix_web::rt::time::sleep(state.delay).await;
    }
}

/// `c-<openid>-<n>` → `<openid>`.
fn openid_of_code(code: &str) -> Option<&str> {
    let (openid, n) = code.strip_prefix("c-")?.rsplit_once('-')?;
    (!openid.is_empty() && !n.is_empty()).then_some(openid)
}

async fn token(req: HttpRequest, state: web::Data<StandIn>) -> HttpResponse {
    pause(&state).await;
    let code = param(&req, "code").unwrap_or_default();
    match openid_of_code(&code) {
        Some(openid) => json(format!(
            r#"{{"access_token":"t-{openid}","expires_in":"7776000","refresh_token":"r-{openid}"}}"#
        )),
        None => oauth_error(100_019, "code to access token error"),
    }
}

async fn me(req: HttpRequest, state: web::Data<StandIn>) -> HttpResponse {
    pause(&state).await;
    let token = param(&req, "access_token").unwrap_or_default();
    match token.strip_prefix("t-").filter(|o| !o.is_empty()) {
        Some(openid) => json(format!(
            r#"{{"client_id":"{}","openid":"{openid}"}}"#,
            state.app_id
        )),
        None => oauth_error(100_016, "access token check failed"),
    }
}

async fn user_info(state: web::Data<StandIn>) -> HttpResponse {
    pause(&state).await;
    json(r#"{"ret":0,"msg":"","nickname":"bench","gender":"男"}"#.to_owned())
}

struct Args {
    listen: SocketAddr,
    app_id: String,
    delay_ms: u64,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
        app_id: "101000001".to_owned(),
        delay_ms: 0,
        workers: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|e| bad(&e))?,
            "--app-id" => args.app_id = value,
            "--delay-ms" => args.delay_ms = value.parse().map_err(|e| bad(&e))?,
            "--workers" => args.workers = value.parse().map_err(|e| bad(&e))?,
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !args.listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".to_owned());
    }
    Ok(args)
}

#[actix_web::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(e) => {
            eprintln!("bench_qq: {e}");
            eprintln!(
                "usage: bench_qq [--listen 127.0.0.1:PORT] [--app-id ID] [--delay-ms N] [--workers N]"
            );
            return ExitCode::from(2);
        }
    };
    let state = web::Data::new(StandIn {
        app_id: args.app_id,
        delay: Duration::from_millis(args.delay_ms),
    });
    let server = HttpServer::new(move || {
        App::new()
            .app_data(state.clone())
            .route("/oauth2.0/token", web::get().to(token))
            .route("/oauth2.0/me", web::get().to(me))
            .route("/user/get_user_info", web::get().to(user_info))
            .route("/healthz", web::get().to(|| async { "ok" }))
    })
    .workers(args.workers.max(1))
    .backlog(4096)
    .disable_signals();
    let server = match server.bind(args.listen) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("bench_qq: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_qq: {e}");
            ExitCode::FAILURE
        }
    }
}

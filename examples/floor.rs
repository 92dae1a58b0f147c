//! The floor of the login benchmark (`cargo bench --bench login`, see
//! BENCHMARKS.md): the least work any QQ callback must do, so that the
//! service's numbers can be read as a fraction of what this machine allows.
//!
//! `GET /oauth/qq/users/?code=...` (the JSON API callback's path) does only:
//! the token call and the `/me` call to QQ (one pooled keep-alive client, the
//! same query parameters the service sends), parsing both JSON answers,
//! checking `/me`'s client id, an in-memory look-up of the openid, and a small
//! JSON answer. No database, no session, no signing, no logging.
//!
//! The bound openids are the benchmark's: `B` and 31 hex digits of `0..--bound`.
//!
//! It runs on the service's allocator (jemalloc) and is built with the
//! service's profile, so that the ratio measures the service's work and not
//! a difference in how the two programs are built.
//!
//! ```sh
//! cargo run --release --example floor -- --listen 127.0.0.1:9100 --graph http://127.0.0.1:9001 --app-id 101000001
//! ```

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde::{Deserialize, Serialize};
use url::Url;

/// The allocator `src/main.rs` gives the service: the floor must not pay the
/// C library's allocator where the service does not.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

struct Floor {
    http: reqwest::Client,
    token_url: Url,
    me_url: Url,
    app_id: String,
    app_key: String,
    redirect_uri: String,
    users: HashMap<String, (i64, String)>,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
}

#[derive(Deserialize)]
struct MeAnswer {
    client_id: String,
    openid: String,
}

#[derive(Serialize)]
struct Bound<'a> {
    token: &'a str,
    username: &'a str,
    user_id: i64,
}

fn unavailable(why: &str) -> HttpResponse {
    HttpResponse::ServiceUnavailable().json(serde_json::json!({ "message": why }))
}

async fn get(http: &reqwest::Client, url: Url) -> Result<web::Bytes, reqwest::Error> {
    http.get(url)
        .send()
        .await?
        .error_for_status()?
        .bytes()
        .await
}

async fn callback(req: HttpRequest, floor: web::Data<Floor>) -> HttpResponse {
    let Some(code) = url::form_urlencoded::parse(req.query_string().as_bytes())
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v)
    else {
        return HttpResponse::BadRequest().json(serde_json::json!({ "message": "no code" }));
    };

    let mut url = floor.token_url.clone();
    url.query_pairs_mut()
        .append_pair("grant_type", "authorization_code")
        .append_pair("client_id", &floor.app_id)
        .append_pair("client_secret", &floor.app_key)
        .append_pair("code", &code)
        .append_pair("redirect_uri", &floor.redirect_uri)
        .append_pair("fmt", "json");
    let token: TokenAnswer = match get(&floor.http, url)
        .await
        .map(|b| serde_json::from_slice(&b))
    {
        Ok(Ok(token)) => token,
        _ => return unavailable("token"),
    };

    let mut url = floor.me_url.clone();
    url.query_pairs_mut()
        .append_pair("access_token", &token.access_token)
        .append_pair("fmt", "json");
    let me: MeAnswer = match get(&floor.http, url)
        .await
        .map(|b| serde_json::from_slice::<MeAnswer>(&b))
    {
        Ok(Ok(me)) if me.client_id == floor.app_id => me,
        _ => return unavailable("me"),
    };

    match floor.users.get(&me.openid) {
        Some((user_id, username)) => HttpResponse::Ok().json(Bound {
            token: "floor",
            username,
            user_id: *user_id,
        }),
        None => HttpResponse::Ok().json(serde_json::json!({ "access_token": "floor" })),
    }
}

struct Args {
    listen: SocketAddr,
    graph: Url,
    app_id: String,
    bound: u32,
    workers: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9100)),
        graph: Url::parse("http://127.0.0.1:9001").map_err(|e| e.to_string())?,
        app_id: "101000001".to_owned(),
        bound: 256,
        workers: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or(format!("{flag} needs a value"))?;
        let bad = |e: &dyn std::fmt::Display| format!("{flag} {value}: {e}");
        match flag.as_str() {
            "--listen" => args.listen = value.parse().map_err(|e| bad(&e))?,
            "--graph" => args.graph = Url::parse(&value).map_err(|e| bad(&e))?,
            "--app-id" => args.app_id = value,
            "--bound" => args.bound = value.parse().map_err(|e| bad(&e))?,
            "--workers" => args.workers = Some(value.parse().map_err(|e| bad(&e))?),
            _ => return Err(format!("unknown flag {flag}")),
        }
    }
    if !args.listen.ip().is_loopback() {
        return Err("--listen must be a loopback address".to_owned());
    }
    Ok(args)
}

fn endpoint(base: &Url, path: &str) -> Result<Url, String> {
    base.join(path).map_err(|e| format!("--graph: {e}"))
}

#[actix_web::main]
async fn main() -> ExitCode {
    let built = parse_args().and_then(|args| {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        let users = (0..args.bound)
            .map(|i| {
                (
                    format!("B{i:031X}"),
                    (i64::from(i) + 1, format!("130{i:08}")),
                )
            })
            .collect();
        let redirect_uri = format!("http://{}/oauth/qq/callback", args.listen);
        let floor = Floor {
            http,
            token_url: endpoint(&args.graph, "/oauth2.0/token")?,
            me_url: endpoint(&args.graph, "/oauth2.0/me")?,
            app_id: args.app_id.clone(),
            app_key: "bench-app-key".to_owned(),
            redirect_uri,
            users,
        };
        Ok((args, floor))
    });
    let (args, floor) = match built {
        Ok(built) => built,
        Err(e) => {
            eprintln!("floor: {e}");
            eprintln!(
                "usage: floor [--listen 127.0.0.1:PORT] [--graph URL] [--app-id ID] [--bound N] [--workers N]"
            );
            return ExitCode::from(2);
        }
    };
    let floor = web::Data::new(floor);
    let mut server = HttpServer::new(move || {
        App::new()
            .app_data(floor.clone())
            .route("/oauth/qq/users/", web::get().to(callback))
            .route("/healthz", web::get().to(|| async { "ok" }))
    })
    .disable_signals();
    if let Some(workers) = args.workers {
        server = server.workers(workers.max(1));
    }
    let server = match server.bind(args.listen) {
        Ok(server) => server,
        Err(e) => {
            eprintln!("floor: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    match server.run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("floor: {e}");
            ExitCode::FAILURE
        }
    }
}

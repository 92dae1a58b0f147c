//! The login benchmark's stand-in QQ (`cargo bench --bench login`, see
//! BENCHMARKS.md): the library's ([`qqlogin::qq::stand_in`]) in its
//! benchmark form, as a process of its own so that its CPU is measured apart.
//!
//! Any code `c-<openid>-<n>` is good, any number of times, for the token
//! `t-<openid>`; nothing is kept per login. Each QQ endpoint answers after
//! `--delay-ms` (default 0), slept asynchronously: a slow QQ, not a busy one.
//! `GET /healthz` answers `ok`.
//!
//! ```sh
//! cargo run --release --example bench_qq -- --listen 127.0.0.1:9001 --app-id 101000001 --delay-ms 20
//! ```

use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use qqlogin::qq::stand_in::{Fault, StandIn};

struct Args {
    listen: SocketAddr,
    app_id: String,
    app_key: String,
    delay_ms: u64,
    workers: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        listen: SocketAddr::from(([127, 0, 0, 1], 9001)),
        app_id: "101000001".to_owned(),
        app_key: "bench-app-key".to_owned(),
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
            "--app-key" => args.app_key = value,
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
                "usage: bench_qq [--listen 127.0.0.1:PORT] [--app-id ID] [--app-key KEY] [--delay-ms N] [--workers N]"
            );
            return ExitCode::from(2);
        }
    };
    let qq = StandIn::benchmark(&args.app_id, &args.app_key);
    if args.delay_ms > 0 {
        qq.set_fault(Fault::Delay(Duration::from_millis(args.delay_ms)));
    }
    let server = match qq.serve(args.listen, args.workers) {
        Ok((server, _)) => server,
        Err(e) => {
            eprintln!("bench_qq: cannot listen on {}: {e}", args.listen);
            return ExitCode::FAILURE;
        }
    };
    match server.await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_qq: {e}");
            ExitCode::FAILURE
        }
    }
}

//! The login-burst benchmark (issue 6): `cargo bench --bench login`.
//!
//! On this machine, all on 127.0.0.1, it starts
//!
//! * two fast stand-ins for QQ (`examples/bench_qq.rs`): one answering at
//!   once, one after `BENCH_QQ_DELAY_MS` (20 ms) per call;
//! * the service (`target/release/qqlogin`, built by `cargo bench`) in real-QQ
//!   mode against a stand-in, on SQLite and on PostgreSQL, `RUST_LOG=warn`,
//!   with each scenario's own environment ([`SCENARIOS`]);
//! * the floor (`examples/floor.rs`): the least work a callback must do, on
//!   the service's allocator and built with the same profile;
//!
//! each as its own process, so that its CPU time (`/proc/PID/stat`) and peak
//! RSS (`VmHWM`, reset before each run) are its own. A Rust load generator
//! (hyper, one keep-alive connection per simulated client) drives each
//! scenario; every scenario at one concurrency and QQ speed is compared with
//! one floor run measured among them, whose place moves round by round, and
//! the table quotes medians over the rounds.
//!
//! Knobs (environment): see [`Knobs::from_env`] and BENCHMARKS.md.
//! Run under `cargo test --all-targets` (no `--bench` argument) it does nothing.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow, bail};
use bytes::Bytes;
use diesel::Connection as _;
use diesel::connection::SimpleConnection as _;
use http_body_util::{BodyExt as _, Full};
use hyper::header::{CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;

#[path = "../tests/support/sms_webhook.rs"]
mod sms_webhook;

/// Where the service's SMS codes arrive: its `webhook` sender's receiver,
/// in this process, started once.
static SMS: OnceLock<sms_webhook::SmsWebhook> = OnceLock::new();
const SMS_WEBHOOK_SECRET: &str = "bench-sms-webhook-secret";

const APP_ID: &str = "101000001";
const APP_KEY: &str = "bench-app-key";
const SECRET_KEY: &str =
    "bench-secret-key-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const PASSWORD: &str = "bench-password-1";
const NEXT: &str = "/bench";
const PG_DB: &str = "qqlogin_bench";
/// The machine's own PostgreSQL, connected to as README's operations section
/// advises for a server on the same machine: without TLS, which on loopback
/// protects nothing and costs both sides CPU (libpq's default `prefer`
/// encrypts whenever the server offers it, as Debian's does). The service
/// gets the same query string, so its `DATABASE_URL` says `sslmode=disable`
/// too; `BENCH_PG_ADMIN_URL` without it measures libpq's default.
const PG_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable";
/// No single request of the benchmark should take this long; one that does is an error.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------- knobs --

struct Knobs {
    rounds: usize,
    warmup: Duration,
    measure: Duration,
    only: Option<Vec<String>>,
    pg_admin_url: Option<String>,
    pg_url: String,
    db_pool: u32,
    bound: u64,
    /// Other QQ-linked users in the database (`BENCH_USERS`), inserted directly.
    users: u64,
    delay_ms: u64,
    client_threads: usize,
    strict: bool,
    build: bool,
    /// The service binaries measured, by name: the one `cargo bench` built, or `BENCH_SERVICE_BIN`.
    services: Vec<(String, PathBuf)>,
    service_env: Vec<(String, String)>,
    workers: Option<String>,
    /// Which sides run (floor, service): `BENCH_SIDES=service` (or `floor`) for profiling one of them.
    sides: (bool, bool),
    out: Option<PathBuf>,
}

fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

fn env_parse<T: std::str::FromStr>(name: &str, default: T) -> anyhow::Result<T>
where
    T::Err: std::fmt::Display,
{
    match env_var(name) {
        None => Ok(default),
        Some(v) => v.trim().parse().map_err(|e| anyhow!("{name}={v}: {e}")),
    }
}

fn env_flag(name: &str) -> bool {
    env_var(name).is_some_and(|v| !matches!(v.trim(), "0" | "false" | "no" | "off"))
}

impl Knobs {
    /// * `BENCH_QUICK=1`: one round, 1 s warm-up, 2 s measured (about a minute, for CI).
    /// * `BENCH_ROUNDS` (3), `BENCH_WARMUP_SECS` (2), `BENCH_SECS` (5): per run.
    /// * `BENCH_SCENARIOS=bound-c32,page-c256`: only these (and the floor runs they compare with).
    /// * `BENCH_PG=0`: skip PostgreSQL; `BENCH_PG_ADMIN_URL`
    ///   ([`PG_ADMIN_URL`]) creates and drops `qqlogin_bench`; the service
    ///   connects with the same query (its `sslmode`).
    /// * `BENCH_DB_POOL` (10): the service's `QQLOGIN_DB_POOL_SIZE`.
    /// * `BENCH_WORKERS`: the service's and the floor's worker threads (default: cores).
    /// * `BENCH_BOUND` (256): openids bound before measuring.
    /// * `BENCH_USERS` (100 000): other QQ-linked users in each database, so
    ///   that look-ups walk the indexes of an established site.
    /// * `BENCH_QQ_DELAY_MS` (20): the slow stand-in's delay per QQ call.
    /// * `BENCH_CLIENT_THREADS` (cores): the load generator's threads.
    /// * `BENCH_SIDES=service` (or `floor`): run only that side (for profiling).
    /// * `BENCH_SERVICE_BIN=path` or `name=path,name=path`: other qqlogin binaries (e.g.
    ///   prototypes) to measure instead, each in turn against the same floor
    ///   runs; the first named is the baseline the others are compared with.
    /// * `BENCH_SERVICE_ENV="K=V K2=V2"`: extra environment for the service,
    ///   after each scenario's own.
    /// * `BENCH_NO_BUILD=1`: the examples are built already.
    /// * `BENCH_STRICT=1`: exit non-zero when a target is missed (errors always do).
    /// * `BENCH_OUT=path`: also write the report (markdown) there.
    fn from_env() -> anyhow::Result<Self> {
        let quick = env_flag("BENCH_QUICK");
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        let secs = |name, quick_default: f64, default: f64| -> anyhow::Result<Duration> {
            let v: f64 = env_parse(name, if quick { quick_default } else { default })?;
            if !(0.0..=600.0).contains(&v) {
                bail!("{name} must be between 0 and 600 seconds");
            }
            Ok(Duration::from_secs_f64(v))
        };
        let service_env = env_var("BENCH_SERVICE_ENV")
            .unwrap_or_default()
            .split_whitespace()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.to_owned(), v.to_owned()))
                    .ok_or_else(|| anyhow!("BENCH_SERVICE_ENV: {kv:?} is not K=V"))
            })
            .collect::<anyhow::Result<_>>()?;
        let knobs = Self {
            rounds: env_parse("BENCH_ROUNDS", if quick { 1 } else { 3 })?,
            // Two seconds: 256 clients connecting at once overflow the
            // listen queue, and a refused SYN is retried after a second.
            warmup: secs("BENCH_WARMUP_SECS", 1.0, 2.0)?,
            measure: secs("BENCH_SECS", 2.0, 5.0)?,
            only: env_var("BENCH_SCENARIOS")
                .map(|s| s.split(',').map(|x| x.trim().to_owned()).collect()),
            pg_admin_url: env_var("BENCH_PG")
                .is_none_or(|v| v.trim() != "0")
                .then(|| env_var("BENCH_PG_ADMIN_URL").unwrap_or_else(|| PG_ADMIN_URL.to_owned())),
            pg_url: String::new(),
            db_pool: env_parse("BENCH_DB_POOL", 10)?,
            bound: env_parse("BENCH_BOUND", 256)?,
            users: env_parse("BENCH_USERS", 100_000)?,
            delay_ms: env_parse("BENCH_QQ_DELAY_MS", 20)?,
            client_threads: env_parse("BENCH_CLIENT_THREADS", cores)?,
            strict: env_flag("BENCH_STRICT"),
            build: !env_flag("BENCH_NO_BUILD"),
            services: match env_var("BENCH_SERVICE_BIN") {
                None => vec![(
                    "service".to_owned(),
                    PathBuf::from(env!("CARGO_BIN_EXE_qqlogin")),
                )],
                Some(list) => list
                    .split(',')
                    .map(|item| match item.trim().split_once('=') {
                        Some((name, path)) => (name.to_owned(), PathBuf::from(path)),
                        None => ("service".to_owned(), PathBuf::from(item.trim())),
                    })
                    .collect(),
            },
            service_env,
            workers: env_var("BENCH_WORKERS"),
            sides: match env_var("BENCH_SIDES").as_deref().map(str::trim) {
                None | Some("both") => (true, true),
                Some("service") => (false, true),
                Some("floor") => (true, false),
                Some(other) => bail!("BENCH_SIDES={other}: floor, service or both"),
            },
            out: env_var("BENCH_OUT").map(PathBuf::from),
        };
        let mut names: Vec<&str> = knobs.services.iter().map(|(n, _)| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        if names.len() != knobs.services.len() || names.contains(&"floor") {
            bail!(
                "BENCH_SERVICE_BIN: give each binary its own name (name=path,name=path), not \"floor\""
            );
        }
        if knobs.rounds == 0 || knobs.bound == 0 || knobs.client_threads == 0 {
            bail!("BENCH_ROUNDS, BENCH_BOUND and BENCH_CLIENT_THREADS must be at least 1");
        }
        if knobs.measure.is_zero() {
            bail!("BENCH_SECS must be more than 0");
        }
        Ok(knobs)
    }
}

// ------------------------------------------------------------ scenarios --

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Flow {
    /// `GET /oauth/qq/users/?code=` for an openid bound at set-up: the code's exchange alone.
    Bound,
    /// A front end's API login: the hop `GET /oauth/qq/api/login?next=/` (302 to
    /// QQ with the attempt cookie), then the exchange with that cookie.
    Api,
    /// `GET /oauth/qq/login` (cookie, 302 to QQ with `state`), then the callback with the cookie (303).
    Page,
    /// `POST /oauth/qq/users/` with a fresh bind token (fetched first, not timed) and a new mobile.
    Bind,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Store {
    Sqlite,
    Postgres,
    /// The floor's `HashMap`: no database.
    Memory,
}

/// What a run measures: the floor, or the service binary of that index in `Knobs::services`.
#[derive(Clone, Copy, PartialEq, Eq, Debug, PartialOrd, Ord)]
enum Side {
    Floor,
    Service(usize),
}

impl Side {
    fn name(self, knobs: &Knobs) -> &str {
        match self {
            Side::Floor => "floor",
            Side::Service(i) => knobs.services.get(i).map_or("service", |(n, _)| n.as_str()),
        }
    }
}

/// A service environment, beside the settings every run gets ([`Bench::spawn_service`]).
type Env = &'static [(&'static str, &'static str)];

/// The documented legacy setting: the JSON API trades a code without the
/// hop's cookie, so that a run measures the code's exchange alone.
const LEGACY_API: Env = &[("QQLOGIN_API_UNBOUND_LOGIN", "1")];
/// The service as it ships: the JSON API's login tied to the browser.
const AS_SHIPPED: Env = &[];
/// Binds: the exchange alone to fetch each bind token, and a line for
/// password hashes long enough for every client, so that all 256 binds are
/// admitted and the memory of a full line is what is measured (as shipped,
/// the binds beyond the line are refused with a 503).
const BINDS: Env = &[
    ("QQLOGIN_API_UNBOUND_LOGIN", "1"),
    ("QQLOGIN_HASH_QUEUE", "256"),
];

#[derive(Clone, Copy)]
enum On {
    /// The floor's callback (always a bound openid).
    Floor,
    /// The service with `env`, compared with the floor run named `floor`.
    Service {
        env: Env,
        floor: Option<&'static str>,
    },
}

#[derive(Clone, Copy)]
struct Scenario {
    name: &'static str,
    what: &'static str,
    on: On,
    flow: Flow,
    store: Store,
    concurrency: usize,
    slow_qq: bool,
}

impl Scenario {
    fn floor(&self) -> Option<&'static str> {
        match self.on {
            On::Floor => None,
            On::Service { floor, .. } => floor,
        }
    }

    fn env(&self) -> Env {
        match self.on {
            On::Floor => &[],
            On::Service { env, .. } => env,
        }
    }

    fn is_floor(&self) -> bool {
        matches!(self.on, On::Floor)
    }
}

const fn floor_run(
    name: &'static str,
    what: &'static str,
    concurrency: usize,
    slow_qq: bool,
) -> Scenario {
    Scenario {
        name,
        what,
        on: On::Floor,
        flow: Flow::Bound,
        store: Store::Memory,
        concurrency,
        slow_qq,
    }
}

const fn service_run(
    name: &'static str,
    what: &'static str,
    (flow, store, env): (Flow, Store, Env),
    concurrency: usize,
    floor: Option<&'static str>,
) -> Scenario {
    Scenario {
        name,
        what,
        on: On::Service { env, floor },
        flow,
        store,
        concurrency,
        slow_qq: false,
    }
}

const EXCHANGE_SQLITE: (Flow, Store, Env) = (Flow::Bound, Store::Sqlite, LEGACY_API);
const EXCHANGE_PG: (Flow, Store, Env) = (Flow::Bound, Store::Postgres, LEGACY_API);
const API_SQLITE: (Flow, Store, Env) = (Flow::Api, Store::Sqlite, AS_SHIPPED);
const PAGE_SQLITE: (Flow, Store, Env) = (Flow::Page, Store::Sqlite, AS_SHIPPED);
const PAGE_PG: (Flow, Store, Env) = (Flow::Page, Store::Postgres, AS_SHIPPED);

/// Every scenario, in the order a round runs them; each service scenario is
/// compared with the floor run it names, and a floor run moves among the
/// scenarios that follow and name it, round by round ([`round_order`]).
///
/// Each PostgreSQL exchange follows its SQLite counterpart, so that the two
/// runs its target compares are seconds apart, not minutes: this VM's speed
/// drifts. The page flow on PostgreSQL leaves the server vacuuming and
/// checkpointing its writes for a while, which slows the PostgreSQL runs
/// after it, so it ends the round and the next round begins with SQLite.
const SCENARIOS: [Scenario; 15] = [
    service_run(
        "bind-c256",
        "JSON bind (argon2), SQLite",
        (Flow::Bind, Store::Sqlite, BINDS),
        256,
        None,
    ),
    floor_run("floor-qq20-c256", "floor callback, QQ +delay", 256, true),
    Scenario {
        slow_qq: true,
        ..service_run(
            "qq20-c256",
            "JSON exchange alone, bound, SQLite, QQ +delay",
            EXCHANGE_SQLITE,
            256,
            Some("floor-qq20-c256"),
        )
    },
    floor_run("floor-c32", "floor callback", 32, false),
    service_run(
        "bound-c32",
        "JSON exchange alone, bound, SQLite",
        EXCHANGE_SQLITE,
        32,
        Some("floor-c32"),
    ),
    service_run(
        "pg-bound-c32",
        "JSON exchange alone, bound, PostgreSQL",
        EXCHANGE_PG,
        32,
        Some("floor-c32"),
    ),
    service_run(
        "api-c32",
        "API login hop+exchange, SQLite",
        API_SQLITE,
        32,
        Some("floor-c32"),
    ),
    service_run(
        "page-c32",
        "page flow login+callback, SQLite",
        PAGE_SQLITE,
        32,
        Some("floor-c32"),
    ),
    floor_run("floor-c256", "floor callback", 256, false),
    service_run(
        "bound-c256",
        "JSON exchange alone, bound, SQLite",
        EXCHANGE_SQLITE,
        256,
        Some("floor-c256"),
    ),
    service_run(
        "pg-bound-c256",
        "JSON exchange alone, bound, PostgreSQL",
        EXCHANGE_PG,
        256,
        Some("floor-c256"),
    ),
    service_run(
        "api-c256",
        "API login hop+exchange, SQLite",
        API_SQLITE,
        256,
        Some("floor-c256"),
    ),
    service_run(
        "page-c256",
        "page flow login+callback, SQLite",
        PAGE_SQLITE,
        256,
        Some("floor-c256"),
    ),
    service_run(
        "pg-page-c32",
        "page flow login+callback, PostgreSQL",
        PAGE_PG,
        32,
        Some("floor-c32"),
    ),
    service_run(
        "pg-page-c256",
        "page flow login+callback, PostgreSQL",
        PAGE_PG,
        256,
        Some("floor-c256"),
    ),
];

/// That every service scenario names a floor run of its own concurrency and
/// QQ speed, listed before it: an edit to [`SCENARIOS`] that breaks this
/// would compare unlike with unlike.
fn check_scenarios() -> anyhow::Result<()> {
    for (i, sc) in SCENARIOS.iter().enumerate() {
        let Some(name) = sc.floor() else { continue };
        let fair = scenario_index(name).is_some_and(|f| {
            let floor = &SCENARIOS[f];
            f < i
                && floor.is_floor()
                && floor.concurrency == sc.concurrency
                && floor.slow_qq == sc.slow_qq
        });
        if !fair {
            bail!(
                "scenario {} names no earlier floor run {name} of its concurrency and QQ speed",
                sc.name
            );
        }
    }
    Ok(())
}

fn scenario_index(name: &str) -> Option<usize> {
    SCENARIOS.iter().position(|s| s.name == name)
}

/// The runs of round `round` (from 1): `selected` in their order, except
/// that each floor run moves within the block of scenarios right after it
/// that compare with it: before them, after them, then between them, so
/// that drift within a round favours neither side.
fn round_order(selected: &[usize], round: usize) -> Vec<usize> {
    let mut order = Vec::with_capacity(selected.len());
    let mut rest = selected;
    while let Some((&first, tail)) = rest.split_first() {
        let sc = &SCENARIOS[first];
        if !sc.is_floor() {
            order.push(first);
            rest = tail;
            continue;
        }
        let block = tail
            .iter()
            .take_while(|&&i| SCENARIOS[i].floor() == Some(sc.name))
            .count();
        let at = match (round - 1) % 3 {
            0 => 0,
            1 => block,
            _ => block / 2,
        };
        order.extend_from_slice(&tail[..at]);
        order.push(first);
        order.extend_from_slice(&tail[at..block]);
        rest = &tail[block..];
    }
    order
}

// ------------------------------------------------------------ processes --

/// A child process, killed (and reaped) when dropped.
struct Proc {
    name: String,
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Proc {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Lines the process wrote to stderr (the service logs at `warn`).
    fn log_lines(&self) -> usize {
        fs::read_to_string(&self.log).map_or(0, |t| t.lines().count())
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Keeps a log that holds warnings as `target/bench-logs/{label}-{port}.log`:
/// the temp dir with the others goes at exit.
fn keep_log(proc: &Proc, label: &str) {
    let kept = std::env::current_exe().ok().and_then(|exe| {
        // target/release/deps/login-HASH → target/bench-logs
        let dir = exe.parent()?.parent()?.parent()?.join("bench-logs");
        fs::create_dir_all(&dir).ok()?;
        let name = format!("{label}-{}.log", proc.addr.port());
        fs::copy(&proc.log, dir.join(name)).ok()
    });
    if kept.is_none() {
        println!("note: could not keep {}", proc.log.display());
    }
}

fn free_addr() -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind("127.0.0.1:0").context("no free port on 127.0.0.1")?;
    Ok(listener.local_addr()?)
}

fn spawn(name: &str, mut cmd: Command, addr: SocketAddr, dir: &Path) -> anyhow::Result<Proc> {
    let log = dir.join(format!("{name}-{}.log", addr.port()));
    let file = fs::File::create(&log)?;
    let child = cmd
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()
        .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
    Ok(Proc {
        name: name.to_owned(),
        child,
        addr,
        log,
    })
}

struct Bins {
    floor: PathBuf,
    stand_in: PathBuf,
}

/// Builds the floor and the stand-in QQ with the profile `cargo bench` built
/// the service with (the bench profile, which is the release profile), so
/// that the floor is optimised as the service is.
fn build_examples(knobs: &Knobs) -> anyhow::Result<Bins> {
    let exe = std::env::current_exe()?;
    // target/release/deps/login-HASH → target/release
    let release = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("cannot locate the target directory from {}", exe.display()))?;
    if knobs.build {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        println!(
            "building the floor and the stand-in QQ: cargo build --profile bench --example floor --example bench_qq"
        );
        let status = Command::new(cargo)
            .args([
                "build",
                "--profile",
                "bench",
                "--example",
                "floor",
                "--example",
                "bench_qq",
            ])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .context("cannot run cargo")?;
        if !status.success() {
            bail!("building the examples failed ({status})");
        }
    }
    let bins = Bins {
        floor: release.join("examples").join("floor"),
        stand_in: release.join("examples").join("bench_qq"),
    };
    let services = knobs.services.iter().map(|(_, path)| path);
    for bin in [&bins.floor, &bins.stand_in].into_iter().chain(services) {
        if !bin.is_file() {
            bail!("{} is missing", bin.display());
        }
    }
    Ok(bins)
}

// ------------------------------------------------------------ /proc ------

#[derive(Default, Clone, Copy)]
struct ProcStatus {
    rss_kb: u64,
    hwm_kb: u64,
    threads: u64,
}

fn proc_status(pid: u32) -> ProcStatus {
    let text = fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let mut status = ProcStatus::default();
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let value: u64 = value.parse().unwrap_or(0);
        match key {
            "VmRSS:" => status.rss_kb = value,
            "VmHWM:" => status.hwm_kb = value,
            "Threads:" => status.threads = value,
            _ => {}
        }
    }
    status
}

/// User + system CPU time of the process (all its threads, living and dead), in seconds.
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux architecture the kernel exports to /proc.
    Some((utime + stime) as f64 / 100.0)
}

/// The PostgreSQL backends serving the bench database, by their process
/// title (`postgres: … postgres qqlogin_bench 127.0.0.1(…) idle`), so that the
/// server's CPU can be counted beside the service's: both share the cores.
/// An autovacuum worker names the database too, but works for the set-up's
/// inserts, not for the requests measured.
fn pg_backends() -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let ours = format!(" {PG_DB} ");
    dir.filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter(|pid| {
            fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|title| {
                let title = String::from_utf8_lossy(&title);
                title.starts_with("postgres: ")
                    && title.contains(&ours)
                    && !title.contains("autovacuum")
            })
        })
        .collect()
}

/// CPU seconds of each process in `pids` that is still there.
fn cpu_of(pids: &[u32]) -> BTreeMap<u32, f64> {
    pids.iter()
        .filter_map(|&pid| Some((pid, cpu_seconds(pid)?)))
        .collect()
}

/// The CPU the PostgreSQL backends spent between two readings: a backend
/// that started in between counts whole; one that exited in between is lost
/// (the service's pool keeps its connections through a run).
fn pg_cpu_between(from: &BTreeMap<u32, f64>, to: &BTreeMap<u32, f64>) -> f64 {
    to.iter()
        .map(|(pid, cpu)| cpu - from.get(pid).copied().unwrap_or(0.0))
        .sum()
}

/// Resets VmHWM to the current RSS (Linux ≥ 4.0).
fn reset_peak_rss(pid: u32) -> bool {
    fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Samples RSS and thread count every 50 ms on its own thread.
struct Monitor {
    stop: Arc<AtomicBool>,
    handle: std::thread::JoinHandle<ProcStatus>,
}

impl Monitor {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut peak = ProcStatus::default();
            while !flag.load(Ordering::Relaxed) {
                let now = proc_status(pid);
                peak.rss_kb = peak.rss_kb.max(now.rss_kb);
                peak.hwm_kb = peak.hwm_kb.max(now.hwm_kb);
                peak.threads = peak.threads.max(now.threads);
                std::thread::sleep(Duration::from_millis(50));
            }
            peak
        });
        Self { stop, handle }
    }

    fn finish(self) -> ProcStatus {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().unwrap_or_default()
    }
}

// ------------------------------------------------------- HTTP client -----

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;

struct Reply {
    status: StatusCode,
    headers: hyper::HeaderMap,
    body: Bytes,
}

/// One simulated client: one keep-alive connection, reopened after an error.
struct Client {
    addr: SocketAddr,
    host: String,
    /// This client's own address, as the proxy the service trusts reports it.
    forwarded_for: String,
    conn: Option<Sender>,
}

/// Numbers the clients: each is a person of their own, from an address of
/// their own behind nginx, as the service's throttle sees people.
static NEXT_CLIENT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(1);

impl Client {
    fn new(addr: SocketAddr) -> Self {
        let n = NEXT_CLIENT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self {
            addr,
            host: addr.to_string(),
            forwarded_for: format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255),
            conn: None,
        }
    }

    async fn connect(&mut self) -> anyhow::Result<&mut Sender> {
        if self.conn.as_ref().is_none_or(Sender::is_closed) {
            let stream = tokio::net::TcpStream::connect(self.addr)
                .await
                .with_context(|| format!("connect {}", self.addr))?;
            stream.set_nodelay(true)?;
            let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .context("handshake")?;
            tokio::spawn(async move {
                let _ = conn.await;
            });
            self.conn = Some(sender);
        }
        self.conn.as_mut().ok_or_else(|| anyhow!("no connection"))
    }

    async fn send(
        &mut self,
        method: Method,
        path: &str,
        headers: &[(hyper::header::HeaderName, &str)],
        body: Bytes,
    ) -> anyhow::Result<Reply> {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(HOST, self.host.as_str())
            .header("x-forwarded-for", self.forwarded_for.as_str());
        for (name, value) in headers {
            req = req.header(name, *value);
        }
        let req = req.body(Full::new(body))?;
        let result = async {
            let sender = self.connect().await?;
            sender.ready().await.context("connection not ready")?;
            let res = sender.send_request(req).await.context("request")?;
            let (parts, body) = res.into_parts();
            let body = body.collect().await.context("body")?.to_bytes();
            Ok::<_, anyhow::Error>(Reply {
                status: parts.status,
                headers: parts.headers,
                body,
            })
        }
        .await;
        if result.is_err() {
            self.conn = None;
        }
        result
    }

    async fn get(&mut self, path: &str) -> anyhow::Result<Reply> {
        self.send(Method::GET, path, &[], Bytes::new()).await
    }
}

fn header(reply: &Reply, name: hyper::header::HeaderName) -> Option<&str> {
    reply.headers.get(name).and_then(|v| v.to_str().ok())
}

fn expect(reply: &Reply, status: StatusCode, body_prefix: &str, what: &str) -> anyhow::Result<()> {
    if reply.status != status || !reply.body.starts_with(body_prefix.as_bytes()) {
        let body = String::from_utf8_lossy(&reply.body[..reply.body.len().min(200)]).into_owned();
        bail!("{what}: {} {body}", reply.status);
    }
    Ok(())
}

/// Every cookie `reply` set, as a browser sends them back.
fn cookies_set(reply: &Reply) -> String {
    reply
        .headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn bound_openid(i: u64) -> String {
    format!("B{i:031X}")
}

fn code_for(openid: &str, n: u64) -> String {
    format!("c-{openid}-{n}")
}

fn json_string(body: &[u8], key: &str) -> anyhow::Result<String> {
    let value: serde_json::Value = serde_json::from_slice(body)?;
    value
        .get(key)
        .and_then(serde_json::Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| anyhow!("answer has no {key}"))
}

/// A bind token for a new openid, then the bind itself; returns when the timed part started.
async fn bind(client: &mut Client, openid: &str, n: u64, mobile: &str) -> anyhow::Result<Instant> {
    let reply = client
        .get(&format!("/oauth/qq/users/?code={}", code_for(openid, n)))
        .await?;
    expect(
        &reply,
        StatusCode::OK,
        "{\"access_token\"",
        "unbound callback",
    )?;
    let token = json_string(&reply.body, "access_token")?;
    let reply = client
        .get(&format!("/sms_codes/{mobile}/?access_token={token}"))
        .await?;
    expect(&reply, StatusCode::OK, "{\"message\"", "SMS code")?;
    let code = match SMS.get() {
        Some(inbox) => inbox.code_for(mobile).await,
        None => None,
    }
    .ok_or_else(|| anyhow!("no SMS code arrived for {mobile}"))?;
    let body = serde_json::json!({
        "mobile": mobile, "password": PASSWORD, "sms_code": code, "access_token": token,
    });
    let started = Instant::now();
    let reply = client
        .send(
            Method::POST,
            "/oauth/qq/users/",
            &[(CONTENT_TYPE, "application/json")],
            Bytes::from(body.to_string()),
        )
        .await?;
    expect(&reply, StatusCode::CREATED, "{\"token\"", "bind")?;
    Ok(started)
}

/// One iteration of `flow`; returns when its timed part started.
async fn iteration(client: &mut Client, flow: Flow, n: u64, bound: u64) -> anyhow::Result<Instant> {
    let started = Instant::now();
    match flow {
        Flow::Bound => {
            let code = code_for(&bound_openid(n % bound), n);
            let reply = client.get(&format!("/oauth/qq/users/?code={code}")).await?;
            expect(&reply, StatusCode::OK, "{\"token\"", "bound callback")?;
        }
        Flow::Api => {
            let reply = client.get("/oauth/qq/api/login?next=%2F").await?;
            expect(&reply, StatusCode::FOUND, "", "hop")?;
            if header(&reply, LOCATION).is_none() {
                bail!("hop: no Location");
            }
            let cookie = cookies_set(&reply);
            if cookie.is_empty() {
                bail!("hop: no cookie");
            }
            let code = code_for(&bound_openid(n % bound), n);
            let reply = client
                .send(
                    Method::GET,
                    &format!("/oauth/qq/users/?code={code}"),
                    &[(COOKIE, cookie.as_str())],
                    Bytes::new(),
                )
                .await?;
            expect(&reply, StatusCode::OK, "{\"token\"", "exchange")?;
        }
        Flow::Page => {
            let reply = client.get("/oauth/qq/login?next=%2Fbench").await?;
            expect(&reply, StatusCode::FOUND, "", "login")?;
            let location = header(&reply, LOCATION).ok_or_else(|| anyhow!("login: no Location"))?;
            let state = url::Url::parse(location)?
                .query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .ok_or_else(|| anyhow!("login: no state"))?;
            let cookie = cookies_set(&reply);
            if cookie.is_empty() {
                bail!("login: no cookie");
            }
            let code = code_for(&bound_openid(n % bound), n);
            let path = format!(
                "/oauth/qq/callback?code={code}&state={}",
                url::form_urlencoded::byte_serialize(state.as_bytes()).collect::<String>()
            );
            let reply = client
                .send(
                    Method::GET,
                    &path,
                    &[(COOKIE, cookie.as_str())],
                    Bytes::new(),
                )
                .await?;
            expect(&reply, StatusCode::SEE_OTHER, "", "callback")?;
            if header(&reply, LOCATION) != Some(NEXT) {
                bail!(
                    "callback: sent to {:?}, not {NEXT}",
                    header(&reply, LOCATION)
                );
            }
        }
        Flow::Bind => {
            let mobile = format!("15{:09}", n % 1_000_000_000);
            return bind(client, &format!("N{n:031X}"), n, &mobile).await;
        }
    }
    Ok(started)
}

#[derive(Default)]
struct TaskResult {
    latencies_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

/// Every run's requests are numbered from one counter: codes, openids and mobiles never repeat.
static COUNTER: AtomicU64 = AtomicU64::new(1);

async fn client_task(
    addr: SocketAddr,
    flow: Flow,
    bound: u64,
    measure_from: Instant,
    deadline: Instant,
) -> TaskResult {
    let mut client = Client::new(addr);
    let mut out = TaskResult::default();
    let until = tokio::time::Instant::from_std(deadline);
    while Instant::now() < deadline {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let result = tokio::select! {
            r = tokio::time::timeout(REQUEST_TIMEOUT, iteration(&mut client, flow, n, bound)) => r,
            () = tokio::time::sleep_until(until) => break,
        };
        let done = Instant::now();
        match result {
            Ok(Ok(started)) => {
                if done >= measure_from && done <= deadline {
                    let us = done.duration_since(started).as_micros();
                    out.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                }
            }
            Ok(Err(e)) => {
                out.errors += 1;
                out.first_error.get_or_insert_with(|| format!("{e:#}"));
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(_) => {
                out.errors += 1;
                client.conn = None;
                out.first_error
                    .get_or_insert_with(|| format!("no answer within {REQUEST_TIMEOUT:?}"));
            }
        }
    }
    out
}

// ------------------------------------------------------------- results --

#[derive(Clone, Default)]
struct Run {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
    first_error: Option<String>,
    cpu_us_per_req: f64,
    /// The PostgreSQL backends' CPU per request (NaN on SQLite).
    pg_cpu_us_per_req: f64,
    /// The load generator's and the stand-in QQ's CPU per request.
    lg_cpu_us_per_req: f64,
    qq_cpu_us_per_req: f64,
    cores: f64,
    peak_rss_mib: f64,
    threads: u64,
    log_lines: usize,
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = ((p * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

/// Drives `flow` at `concurrency` against `target` for warm-up + measure; the measured
/// window alone counts for throughput, latency and CPU; errors count from the start.
/// The CPU is the target's, and with `pg` the PostgreSQL backends' beside it;
/// the load generator's (this process) and `qq`'s are counted too, since
/// every request costs them CPU on the same cores.
async fn drive(
    target: &Proc,
    qq: &Proc,
    flow: Flow,
    concurrency: usize,
    knobs: &Knobs,
    pg: bool,
) -> anyhow::Result<Driven> {
    let pid = target.pid();
    let start = Instant::now();
    let measure_from = start + knobs.warmup;
    let deadline = measure_from + knobs.measure;
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            tokio::spawn(client_task(
                target.addr,
                flow,
                knobs.bound,
                measure_from,
                deadline,
            ))
        })
        .collect();
    tokio::time::sleep_until(tokio::time::Instant::from_std(measure_from)).await;
    let cpu_from = cpu_seconds(pid).ok_or_else(|| anyhow!("{} exited", target.name))?;
    let (lg_from, qq_from) = (cpu_seconds(std::process::id()), cpu_seconds(qq.pid()));
    let pg_from = if pg {
        cpu_of(&pg_backends())
    } else {
        BTreeMap::new()
    };
    tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)).await;
    let cpu_to = cpu_seconds(pid).ok_or_else(|| anyhow!("{} exited", target.name))?;
    let (lg_to, qq_to) = (cpu_seconds(std::process::id()), cpu_seconds(qq.pid()));
    let between =
        |from: Option<f64>, to: Option<f64>| to.zip(from).map_or(f64::NAN, |(t, f)| t - f);
    let pg_cpu = pg.then(|| pg_cpu_between(&pg_from, &cpu_of(&pg_backends())));
    let mut latencies = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for task in tasks {
        let result = task.await?;
        latencies.extend(result.latencies_us);
        errors += result.errors;
        if first_error.is_none() {
            first_error = result.first_error;
        }
    }
    Ok(Driven {
        latencies,
        errors,
        first_error,
        cpu: cpu_to - cpu_from,
        pg_cpu,
        lg_cpu: between(lg_from, lg_to),
        qq_cpu: between(qq_from, qq_to),
    })
}

/// What [`drive`] saw: latencies (µs) of the measured window, errors from the
/// start, CPU seconds in the window.
struct Driven {
    latencies: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
    cpu: f64,
    pg_cpu: Option<f64>,
    /// The load generator's (this process's) and the stand-in QQ's CPU seconds
    /// in the window (NaN if unreadable).
    lg_cpu: f64,
    qq_cpu: f64,
}

fn wait_ready(rt: &tokio::runtime::Runtime, proc: &mut Proc) -> anyhow::Result<()> {
    let give_up = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(status) = proc.child.try_wait()? {
            bail!("{} exited ({status}):\n{}", proc.name, proc.log_tail());
        }
        let addr = proc.addr;
        let up = rt.block_on(async move {
            let mut client = Client::new(addr);
            matches!(client.get("/healthz").await, Ok(r) if r.status == StatusCode::OK)
        });
        if up {
            return Ok(());
        }
        if Instant::now() > give_up {
            bail!(
                "{} did not answer within 60 s:\n{}",
                proc.name,
                proc.log_tail()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ------------------------------------------------------------ the bench --

struct Bench {
    knobs: Knobs,
    bins: Bins,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
    qq_fast: Proc,
    qq_slow: Proc,
    sqlite_url: String,
    pg_url: Option<String>,
}

impl Bench {
    fn spawn_stand_in(bins: &Bins, dir: &Path, delay_ms: u64) -> anyhow::Result<Proc> {
        let addr = free_addr()?;
        let mut cmd = Command::new(&bins.stand_in);
        cmd.args(["--listen", &addr.to_string(), "--app-id", APP_ID])
            .args(["--app-key", APP_KEY])
            .args(["--delay-ms", &delay_ms.to_string()]);
        spawn(&format!("qq{delay_ms}ms"), cmd, addr, dir)
    }

    fn spawn_floor(&self, qq: &Proc) -> anyhow::Result<Proc> {
        let addr = free_addr()?;
        let mut cmd = Command::new(&self.bins.floor);
        cmd.args(["--listen", &addr.to_string(), "--app-id", APP_ID])
            .args(["--graph", &format!("http://{}", qq.addr)])
            .args(["--bound", &self.knobs.bound.to_string()]);
        if let Some(workers) = &self.knobs.workers {
            cmd.args(["--workers", workers]);
        }
        spawn("floor", cmd, addr, self.dir.path())
    }

    /// The service binary `which` on `store`, with the settings every run
    /// gets and then `env`, the scenario's own.
    fn spawn_service(
        &self,
        which: usize,
        store: Store,
        qq: &Proc,
        env: Env,
    ) -> anyhow::Result<Proc> {
        let addr = free_addr()?;
        let database = match store {
            Store::Sqlite => self.sqlite_url.clone(),
            Store::Postgres => self
                .pg_url
                .clone()
                .ok_or_else(|| anyhow!("PostgreSQL is not available"))?,
            Store::Memory => bail!("the service needs a database"),
        };
        let (_, bin) = self
            .knobs
            .services
            .get(which)
            .ok_or_else(|| anyhow!("no service binary {which}"))?;
        let mut cmd = Command::new(bin);
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("QQLOGIN_LISTEN", addr.to_string())
            .env("DATABASE_URL", database)
            .env("QQ_APP_ID", APP_ID)
            .env("QQ_APP_KEY", APP_KEY)
            .env("SECRET_KEY", SECRET_KEY)
            .env("QQ_GRAPH_URL", format!("http://{}", qq.addr))
            .env(
                "QQ_REDIRECT_URI",
                format!("http://{addr}/oauth/qq/callback"),
            )
            .env("QQLOGIN_DB_POOL_SIZE", self.knobs.db_pool.to_string())
            .env("QQLOGIN_SMS_SENDER", "webhook")
            .env(
                "QQLOGIN_SMS_WEBHOOK_URL",
                SMS.get().map(|s| s.url()).unwrap_or_default(),
            )
            .env("QQLOGIN_SMS_WEBHOOK_SECRET", SMS_WEBHOOK_SECRET)
            // The load generator's clients stand behind the trusted proxy (`Client`).
            .env("QQLOGIN_TRUSTED_PROXIES", "127.0.0.1")
            .env("RUST_LOG", "warn");
        if let Some(workers) = &self.knobs.workers {
            cmd.env("QQLOGIN_WORKERS", workers);
        }
        cmd.envs(env.iter().copied());
        for (k, v) in &self.knobs.service_env {
            cmd.env(k, v);
        }
        spawn("service", cmd, addr, self.dir.path())
    }

    /// Binds `BENCH_BOUND` openids through the API, 16 at a time, each with
    /// the exchange alone (the legacy setting) and a bind.
    fn bind_bound_openids(&self, store: Store) -> anyhow::Result<()> {
        let mut service = self.spawn_service(0, store, &self.qq_fast, LEGACY_API)?;
        wait_ready(&self.rt, &mut service)?;
        let started = Instant::now();
        let next = Arc::new(AtomicU64::new(0));
        let (addr, bound) = (service.addr, self.knobs.bound);
        let results: Vec<anyhow::Result<()>> = self.rt.block_on(async move {
            let tasks: Vec<_> = (0..16)
                .map(|_| {
                    let next = next.clone();
                    tokio::spawn(async move {
                        let mut client = Client::new(addr);
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            if i >= bound {
                                return Ok(());
                            }
                            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
                            bind(&mut client, &bound_openid(i), n, &format!("130{i:08}"))
                                .await
                                .with_context(|| format!("binding {}", bound_openid(i)))?;
                        }
                    })
                })
                .collect();
            let mut results = Vec::new();
            for task in tasks {
                results.push(task.await.map_err(anyhow::Error::from).and_then(|r| r));
            }
            results
        });
        for result in results {
            result.with_context(|| format!("set-up on {store:?}"))?;
        }
        println!(
            "set-up: {} openids bound on {store:?} in {:.1} s",
            self.knobs.bound,
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    /// Inserts `BENCH_USERS` other QQ-linked users straight into the database
    /// (no service running), as an established site has them: PostgreSQL's
    /// planner scans a table of a few hundred rows whole and compares every
    /// openid in it with every one asked for, which no real site's look-up
    /// does. Their mobiles (`170…`) and openids (`F…`) meet none of the
    /// bench's own; their password hash is not one, as they never log in.
    fn add_other_users(&self, store: Store) -> anyhow::Result<()> {
        let n = self.knobs.users;
        if n == 0 {
            return Ok(());
        }
        let started = Instant::now();
        match store {
            Store::Sqlite => {
                let path = self.dir.path().join("bench.db");
                let mut conn = diesel::SqliteConnection::establish(&path.to_string_lossy())?;
                conn.batch_execute(&format!(
                    "BEGIN;
                     WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {n})
                     INSERT INTO users (username, mobile, password_hash, created_at, updated_at)
                     SELECT printf('170%08d', i), printf('170%08d', i), 'filler',
                            strftime('%Y-%m-%d %H:%M:%f', 'now'), strftime('%Y-%m-%d %H:%M:%f', 'now')
                     FROM n;
                     INSERT INTO qq_links (app_id, openid, user_id, created_at, updated_at)
                     SELECT '{APP_ID}', printf('F%031X', id), id, created_at, created_at
                     FROM users WHERE mobile LIKE '170%';
                     COMMIT;"
                ))?;
            }
            Store::Memory => {}
            Store::Postgres => {
                let url = self
                    .pg_url
                    .as_deref()
                    .ok_or_else(|| anyhow!("PostgreSQL is not available"))?;
                let mut conn = diesel::PgConnection::establish(url)?;
                // ANALYZE: an established site's statistics are up to date.
                conn.batch_execute(&format!(
                    "BEGIN;
                     INSERT INTO users (username, mobile, password_hash, created_at, updated_at)
                     SELECT '170' || lpad(i::text, 8, '0'), '170' || lpad(i::text, 8, '0'), 'filler',
                            now(), now()
                     FROM generate_series(1, {n}) AS i;
                     INSERT INTO qq_links (app_id, openid, user_id, created_at, updated_at)
                     SELECT '{APP_ID}', 'F' || lpad(upper(to_hex(id)), 31, '0'), id, created_at, created_at
                     FROM users WHERE mobile LIKE '170%';
                     COMMIT;
                     ANALYZE users;
                     ANALYZE qq_links;"
                ))?;
            }
        }
        println!(
            "set-up: {n} other linked users added on {store:?} in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Ok(())
    }

    fn run_one(&self, sc: &Scenario, side: Side) -> anyhow::Result<Run> {
        let qq = if sc.slow_qq {
            &self.qq_slow
        } else {
            &self.qq_fast
        };
        let mut proc = match side {
            Side::Floor => self.spawn_floor(qq)?,
            Side::Service(which) => self.spawn_service(which, sc.store, qq, sc.env())?,
        };
        wait_ready(&self.rt, &mut proc)?;
        let pid = proc.pid();
        let reset = reset_peak_rss(pid);
        let monitor = Monitor::start(pid);
        let driven = self.rt.block_on(drive(
            &proc,
            qq,
            sc.flow,
            sc.concurrency,
            &self.knobs,
            sc.store == Store::Postgres,
        ));
        let sampled = monitor.finish();
        let end = proc_status(pid);
        let Driven {
            mut latencies,
            errors,
            first_error,
            cpu,
            pg_cpu,
            lg_cpu,
            qq_cpu,
        } = driven?;
        let log_lines = proc.log_lines();
        if log_lines > 0 && side != Side::Floor {
            keep_log(&proc, &format!("{}-{}", sc.name, side.name(&self.knobs)));
        }
        drop(proc);
        latencies.sort_unstable();
        let count = latencies.len() as f64;
        let secs = self.knobs.measure.as_secs_f64();
        // Without clear_refs, VmHWM includes start-up; the samples are the fallback.
        let peak_kb = if reset {
            end.hwm_kb.max(sampled.rss_kb)
        } else {
            sampled.rss_kb.max(end.rss_kb)
        };
        let per_req = |cpu: f64| {
            if count > 0.0 {
                cpu * 1e6 / count
            } else {
                f64::NAN
            }
        };
        Ok(Run {
            rps: count / secs,
            p50_ms: percentile(&latencies, 0.50),
            p99_ms: percentile(&latencies, 0.99),
            errors,
            first_error,
            cpu_us_per_req: per_req(cpu),
            // Only the service talks to PostgreSQL; the floor's runs have no server.
            pg_cpu_us_per_req: match (side, pg_cpu) {
                (Side::Service(_), Some(pg_cpu)) => per_req(pg_cpu),
                _ => f64::NAN,
            },
            lg_cpu_us_per_req: per_req(lg_cpu),
            qq_cpu_us_per_req: per_req(qq_cpu),
            cores: cpu / secs,
            peak_rss_mib: peak_kb as f64 / 1024.0,
            threads: sampled.threads.max(end.threads),
            log_lines,
        })
    }
}

/// Whether `sc` is asked for: named in `BENCH_SCENARIOS`, or that is unset.
fn selected(knobs: &Knobs, sc: &Scenario) -> bool {
    knobs
        .only
        .as_ref()
        .is_none_or(|names| names.iter().any(|n| n == sc.name))
}

/// Whether `sc` runs: a service scenario when selected (and its database is
/// there), a floor run when selected or when a service scenario that runs,
/// or would but for `BENCH_SIDES=floor`, compares with it.
fn wanted(knobs: &Knobs, sc: &Scenario, pg: bool) -> bool {
    let (with_floor, with_service) = knobs.sides;
    let possible = |s: &Scenario| selected(knobs, s) && (s.store != Store::Postgres || pg);
    if sc.is_floor() {
        with_floor
            && (selected(knobs, sc)
                || SCENARIOS
                    .iter()
                    .any(|s| s.floor() == Some(sc.name) && possible(s)))
    } else {
        with_service && possible(sc)
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| v.is_finite());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
}

/// Medians over the rounds (peak RSS and threads: the worst round; errors: all rounds).
fn summarise(runs: &[Run]) -> Run {
    let med = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
    Run {
        rps: med(|r| r.rps),
        p50_ms: med(|r| r.p50_ms),
        p99_ms: med(|r| r.p99_ms),
        errors: runs.iter().map(|r| r.errors).sum(),
        first_error: runs.iter().find_map(|r| r.first_error.clone()),
        cpu_us_per_req: med(|r| r.cpu_us_per_req),
        pg_cpu_us_per_req: med(|r| r.pg_cpu_us_per_req),
        lg_cpu_us_per_req: med(|r| r.lg_cpu_us_per_req),
        qq_cpu_us_per_req: med(|r| r.qq_cpu_us_per_req),
        cores: med(|r| r.cores),
        peak_rss_mib: runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max),
        threads: runs.iter().map(|r| r.threads).max().unwrap_or(0),
        log_lines: runs.iter().map(|r| r.log_lines).sum(),
    }
}

fn machine() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map_or("unknown CPU", str::trim)
        .to_owned();
    let mem_kb: u64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let load = fs::read_to_string("/proc/loadavg").unwrap_or_default();
    format!(
        "{cores} cores ({model}), {:.1} GiB RAM, Linux {}, load average at start {}",
        mem_kb as f64 / 1024.0 / 1024.0,
        kernel.trim(),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}

fn create_pg_database(admin_url: &str) -> anyhow::Result<String> {
    let mut admin = diesel::PgConnection::establish(admin_url)
        .with_context(|| "cannot connect to BENCH_PG_ADMIN_URL".to_owned())?;
    // Two statements, two calls: PostgreSQL runs a multi-statement string in one
    // transaction, where neither may run.
    admin.batch_execute(&format!("DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"))?;
    admin.batch_execute(&format!("CREATE DATABASE {PG_DB}"))?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&format!("/{PG_DB}"));
    Ok(url.to_string())
}

fn drop_pg_database(admin_url: &str) {
    if let Ok(mut admin) = diesel::PgConnection::establish(admin_url) {
        let _ = admin.batch_execute(&format!("DROP DATABASE IF EXISTS {PG_DB} WITH (FORCE)"));
    }
}

fn fmt_num(v: f64, decimals: usize) -> String {
    if v.is_finite() {
        format!("{v:.decimals$}")
    } else {
        "–".to_owned()
    }
}

struct Check {
    name: String,
    want: String,
    got: String,
    ok: bool,
}

/// The run of scenario `name` on `side`, if it ran.
fn result<'a>(
    results: &'a BTreeMap<(usize, Side), Run>,
    name: &str,
    side: Side,
) -> Option<&'a Run> {
    scenario_index(name).and_then(|i| results.get(&(i, side)))
}

/// The floor run that `sc` is compared with, if it ran.
fn floor_result<'a>(results: &'a BTreeMap<(usize, Side), Run>, sc: &Scenario) -> Option<&'a Run> {
    sc.floor()
        .and_then(|name| result(results, name, Side::Floor))
}

fn checks(results: &BTreeMap<(usize, Side), Run>, knobs: &Knobs) -> Vec<Check> {
    let mut out = Vec::new();
    for which in 0..knobs.services.len() {
        let label = if knobs.services.len() > 1 {
            format!("[{}] ", Side::Service(which).name(knobs))
        } else {
            String::new()
        };
        out.extend(
            checks_of(results, knobs, Side::Service(which))
                .into_iter()
                .map(|c| Check {
                    name: format!("{label}{}", c.name),
                    ..c
                }),
        );
    }
    out.extend(side_by_side(results, knobs));
    let errors: u64 = results.values().map(|r| r.errors).sum();
    out.push(Check {
        name: "errors, all runs".to_owned(),
        want: "0".to_owned(),
        got: errors.to_string(),
        ok: errors == 0,
    });
    out
}

/// Issue 21's targets for one service binary.
fn checks_of(results: &BTreeMap<(usize, Side), Run>, knobs: &Knobs, service: Side) -> Vec<Check> {
    let mut out = Vec::new();
    let mut ratio_check = |name: &str, min: f64, what: &str| {
        let Some(sc) = scenario_index(name).map(|i| &SCENARIOS[i]) else {
            return;
        };
        if let (Some(s), Some(f)) = (result(results, name, service), floor_result(results, sc)) {
            let r = s.rps / f.rps;
            out.push(Check {
                name: format!("{name}: {what} vs floor"),
                want: format!("≥ {min:.2}"),
                got: format!("{r:.2}"),
                ok: r >= min,
            });
        }
    };
    ratio_check("bound-c32", 0.5, "JSON exchange alone (legacy setting)");
    ratio_check("bound-c256", 0.5, "JSON exchange alone (legacy setting)");
    ratio_check("api-c32", 0.4, "API login, hop + exchange");
    ratio_check("api-c256", 0.4, "API login, hop + exchange");
    ratio_check("page-c32", 0.4, "page flow, SQLite");
    ratio_check("page-c256", 0.4, "page flow, SQLite");
    ratio_check("pg-page-c32", 0.3, "page flow, PostgreSQL");
    ratio_check("pg-page-c256", 0.3, "page flow, PostgreSQL");
    ratio_check(
        "qq20-c256",
        0.9,
        &format!("QQ answering after {} ms", knobs.delay_ms),
    );
    for (pg, sqlite) in [
        ("pg-bound-c32", "bound-c32"),
        ("pg-bound-c256", "bound-c256"),
    ] {
        if let (Some(p), Some(s)) = (
            result(results, pg, service),
            result(results, sqlite, service),
        ) {
            let r = p.rps / s.rps;
            // The server's processes share the cores: the whole CPU per exchange.
            out.push(Check {
                name: format!("{pg}: PostgreSQL vs SQLite, bound exchange"),
                want: "≥ 0.80".to_owned(),
                got: format!(
                    "{r:.2}; CPU µs/req {} + {} PostgreSQL vs {}",
                    fmt_num(p.cpu_us_per_req, 0),
                    fmt_num(p.pg_cpu_us_per_req, 0),
                    fmt_num(s.cpu_us_per_req, 0)
                ),
                ok: r >= 0.8,
            });
        }
    }
    let logins_256: Vec<(&str, f64)> = SCENARIOS
        .iter()
        .enumerate()
        .filter(|(_, s)| s.concurrency == 256 && s.flow != Flow::Bind && !s.is_floor())
        .filter_map(|(i, s)| results.get(&(i, service)).map(|r| (s.name, r.peak_rss_mib)))
        .collect();
    if let Some((name, worst)) = logins_256
        .iter()
        .copied()
        .max_by(|a, b| a.1.total_cmp(&b.1))
    {
        out.push(Check {
            name: "peak RSS, 256 concurrent logins (worst scenario; binds apart)".to_owned(),
            want: "≤ 64 MiB".to_owned(),
            got: format!("{worst:.1} MiB ({name})"),
            ok: worst <= 64.0,
        });
    }
    out
}

/// With several service binaries: each after the first against the first
/// (the binary from before a change), scenario by scenario.
fn side_by_side(results: &BTreeMap<(usize, Side), Run>, knobs: &Knobs) -> Vec<Check> {
    let base = Side::Service(0);
    (1..knobs.services.len())
        .filter_map(|which| {
            let side = Side::Service(which);
            let (name, worst) = SCENARIOS
                .iter()
                .enumerate()
                .filter_map(|(i, sc)| {
                    let (s, b) = (results.get(&(i, side))?, results.get(&(i, base))?);
                    Some((sc.name, s.rps / b.rps))
                })
                .min_by(|a, b| a.1.total_cmp(&b.1))?;
            Some(Check {
                name: format!(
                    "[{}] vs [{}]: req/s in its slowest scenario",
                    side.name(knobs),
                    base.name(knobs)
                ),
                want: "≥ 0.85".to_owned(),
                got: format!("{worst:.2} ({name})"),
                ok: worst >= 0.85,
            })
        })
        .collect()
}

fn report(
    results: &BTreeMap<(usize, Side), Run>,
    knobs: &Knobs,
    header: &str,
) -> (String, Vec<Check>) {
    let mut md = String::new();
    let _ = writeln!(md, "{header}\n");
    let _ = writeln!(
        md,
        "| scenario | what | side | conc | req/s | p50 ms | p99 ms | errors | CPU µs/req | PG CPU µs/req | LG + QQ CPU µs/req | CPU cores | peak RSS MiB | threads | svc/floor req/s | svc/floor p99 |"
    );
    let _ = writeln!(
        md,
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for ((i, side), run) in results {
        let sc = &SCENARIOS[*i];
        let (ratio, p99_ratio) = match (side, floor_result(results, sc)) {
            (Side::Service(_), Some(floor)) => (
                fmt_num(run.rps / floor.rps, 2),
                fmt_num(run.p99_ms / floor.p99_ms, 2),
            ),
            _ => (String::new(), String::new()),
        };
        let what = if sc.slow_qq {
            sc.what
                .replace("delay", &format!("{} ms/call", knobs.delay_ms))
        } else {
            sc.what.to_owned()
        };
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} + {} | {} | {} | {} | {} | {} |",
            sc.name,
            what,
            side.name(knobs),
            sc.concurrency,
            fmt_num(run.rps, 0),
            fmt_num(run.p50_ms, 2),
            fmt_num(run.p99_ms, 2),
            run.errors,
            fmt_num(run.cpu_us_per_req, 0),
            fmt_num(run.pg_cpu_us_per_req, 0),
            fmt_num(run.lg_cpu_us_per_req, 0),
            fmt_num(run.qq_cpu_us_per_req, 0),
            fmt_num(run.cores, 2),
            fmt_num(run.peak_rss_mib, 1),
            run.threads,
            ratio,
            p99_ratio,
        );
    }
    let checks = checks(results, knobs);
    let _ = writeln!(md, "\n| target | wanted | measured | |\n|---|---|---|---|");
    for c in &checks {
        let _ = writeln!(
            md,
            "| {} | {} | {} | {} |",
            c.name,
            c.want,
            c.got,
            if c.ok { "PASS" } else { "**MISSED**" }
        );
    }
    (md, checks)
}

/// Which scenarios ran with which environment of their own, e.g.
/// "`QQLOGIN_API_UNBOUND_LOGIN=1`: bound-c32, …; as shipped: page-c32, …".
fn environments(results: &BTreeMap<(usize, Side), Run>) -> String {
    let mut by_env: BTreeMap<String, Vec<&str>> = BTreeMap::new();
    for (i, side) in results.keys() {
        let sc = &SCENARIOS[*i];
        if *side == Side::Floor {
            continue;
        }
        let env = sc
            .env()
            .iter()
            .map(|(k, v)| format!("`{k}={v}`"))
            .collect::<Vec<_>>()
            .join(" ");
        let names = by_env.entry(env).or_default();
        if !names.contains(&sc.name) {
            names.push(sc.name);
        }
    }
    by_env
        .iter()
        .map(|(env, names)| {
            let env = if env.is_empty() { "as shipped" } else { env };
            format!("{env}: {}", names.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The commit the bench was built from, `-dirty` when the work tree differs.
fn commit() -> String {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(hash) => match git(&["status", "--porcelain", "--untracked-files=no"]) {
            Some(changes) if changes.is_empty() => format!("`{hash}`"),
            _ => format!("`{hash}`-dirty"),
        },
        None => "unknown (not a git checkout)".to_owned(),
    }
}

/// The `BENCH_*` settings of this run, as they would be typed before the command.
fn bench_env() -> String {
    let mut vars: Vec<(String, String)> = std::env::vars()
        .filter(|(k, v)| k.starts_with("BENCH_") && !v.trim().is_empty())
        .collect();
    vars.sort();
    vars.iter()
        .map(|(k, v)| {
            if v.contains(char::is_whitespace) {
                format!("{k}=\"{v}\" ")
            } else {
                format!("{k}={v} ")
            }
        })
        .collect()
}

fn run() -> anyhow::Result<ExitCode> {
    check_scenarios()?;
    let mut knobs = Knobs::from_env()?;
    let machine = machine();
    println!("qqlogin login benchmark on {machine}");
    let bins = build_examples(&knobs)?;
    let dir = tempfile::Builder::new()
        .prefix("qqlogin-bench-")
        .tempdir()?;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(knobs.client_threads)
        .enable_all()
        .build()?;

    let needs_pg = SCENARIOS
        .iter()
        .any(|sc| sc.store == Store::Postgres && wanted(&knobs, sc, true));
    let pg_url = match &knobs.pg_admin_url {
        Some(admin) if needs_pg => match create_pg_database(admin) {
            Ok(url) => Some(url),
            Err(e) => {
                println!("PostgreSQL unavailable ({e:#}): its scenarios are skipped");
                None
            }
        },
        _ => None,
    };
    knobs.pg_url = pg_url.clone().unwrap_or_default();
    let sqlite_url = format!("sqlite://{}", dir.path().join("bench.db").display());

    let inbox = rt.block_on(sms_webhook::SmsWebhook::start(SMS_WEBHOOK_SECRET));
    SMS.set(inbox)
        .map_err(|_| anyhow!("the SMS receiver was started twice"))?;
    let qq_fast = Bench::spawn_stand_in(&bins, dir.path(), 0)?;
    let qq_slow = Bench::spawn_stand_in(&bins, dir.path(), knobs.delay_ms)?;
    let mut bench = Bench {
        knobs,
        bins,
        dir,
        rt,
        qq_fast,
        qq_slow,
        sqlite_url,
        pg_url,
    };
    let result = run_rounds(&mut bench, &machine);
    if let (Some(admin), Some(_)) = (&bench.knobs.pg_admin_url, &bench.pg_url) {
        drop_pg_database(admin);
    }
    result
}

fn run_rounds(bench: &mut Bench, machine: &str) -> anyhow::Result<ExitCode> {
    wait_ready(&bench.rt, &mut bench.qq_fast)?;
    wait_ready(&bench.rt, &mut bench.qq_slow)?;

    let knobs = &bench.knobs;
    if knobs.services.len() > 1 {
        let list: Vec<String> = knobs
            .services
            .iter()
            .map(|(name, path)| format!("{name} = {}", path.display()))
            .collect();
        println!("service binaries: {}", list.join(", "));
    }
    let scenarios: Vec<usize> = (0..SCENARIOS.len())
        .filter(|&i| wanted(&bench.knobs, &SCENARIOS[i], bench.pg_url.is_some()))
        .collect();
    if scenarios.is_empty() {
        bail!(
            "no scenario selected (BENCH_SCENARIOS names: {})",
            SCENARIOS.map(|s| s.name).join(",")
        );
    }
    let per_run = knobs.warmup + knobs.measure;
    let (with_floor, with_service) = knobs.sides;
    let services = if with_service {
        knobs.services.len()
    } else {
        0
    };
    let runs_per_round: usize = scenarios
        .iter()
        .map(|&i| {
            if SCENARIOS[i].is_floor() {
                usize::from(with_floor)
            } else {
                services
            }
        })
        .sum();
    println!(
        "{} scenarios (floor runs included), {} rounds of {} runs, {:.0} s warm-up + {:.0} s measured each: about {:.0} s",
        scenarios.len(),
        knobs.rounds,
        runs_per_round,
        knobs.warmup.as_secs_f64(),
        knobs.measure.as_secs_f64(),
        (knobs.rounds * runs_per_round) as f64 * (per_run.as_secs_f64() + 0.7)
    );

    bench.bind_bound_openids(Store::Sqlite)?;
    bench.add_other_users(Store::Sqlite)?;
    if bench.pg_url.is_some() {
        bench.bind_bound_openids(Store::Postgres)?;
        bench.add_other_users(Store::Postgres)?;
    }

    let mut all: BTreeMap<(usize, Side), Vec<Run>> = BTreeMap::new();
    let rounds = bench.knobs.rounds;
    for round in 1..=rounds {
        for i in round_order(&scenarios, round) {
            let sc = &SCENARIOS[i];
            let mut sides: Vec<Side> = if sc.is_floor() {
                vec![Side::Floor]
            } else {
                (0..services).map(Side::Service).collect()
            };
            // Rotate which binary goes first, round by round, so that slow
            // drift in the machine favours none.
            if !sides.is_empty() {
                let shift = (round - 1) % sides.len();
                sides.rotate_left(shift);
            }
            for side in sides {
                let run = bench.run_one(sc, side)?;
                println!(
                    "[round {round}/{rounds}] {:<15} {:<8} {:>7} req/s  p50 {:>7} ms  p99 {:>8} ms  errors {}  CPU {:>5} µs/req{}  LG + QQ {:>3} + {:>3}  RSS {:>6} MiB  threads {}{}",
                    sc.name,
                    side.name(&bench.knobs),
                    fmt_num(run.rps, 0),
                    fmt_num(run.p50_ms, 2),
                    fmt_num(run.p99_ms, 2),
                    run.errors,
                    fmt_num(run.cpu_us_per_req, 0),
                    if run.pg_cpu_us_per_req.is_finite() {
                        format!(" + PostgreSQL {:.0}", run.pg_cpu_us_per_req)
                    } else {
                        String::new()
                    },
                    fmt_num(run.lg_cpu_us_per_req, 0),
                    fmt_num(run.qq_cpu_us_per_req, 0),
                    fmt_num(run.peak_rss_mib, 1),
                    run.threads,
                    run.first_error
                        .as_deref()
                        .map(|e| format!("  first error: {e}"))
                        .unwrap_or_default(),
                );
                let _ = std::io::stdout().flush();
                all.entry((i, side)).or_default().push(run);
            }
        }
    }

    let summary: BTreeMap<(usize, Side), Run> =
        all.iter().map(|(k, runs)| (*k, summarise(runs))).collect();
    let k = &bench.knobs;
    let header = format!(
        "Machine: {machine}.\n\nCommit: {}.\n\nCommand: `{}cargo bench --bench login`; {} round(s), {:.0} s warm-up + {:.0} s measured per run; \
         medians over rounds (peak RSS and threads: worst round; errors: sum). Service: `RUST_LOG=warn` (access log off), \
         `QQLOGIN_DB_POOL_SIZE={}`, workers {}; QQ stand-in delay for qq20: {} ms per call. \
         Each scenario's own service environment: {}.",
        commit(),
        bench_env(),
        k.rounds,
        k.warmup.as_secs_f64(),
        k.measure.as_secs_f64(),
        k.db_pool,
        k.workers.as_deref().unwrap_or("= cores"),
        k.delay_ms,
        environments(&summary),
    );
    let (md, checks) = report(&summary, k, &header);
    println!("\n{md}");
    let log_lines: usize = summary
        .iter()
        .filter(|((_, side), _)| *side != Side::Floor)
        .map(|(_, r)| r.log_lines)
        .sum();
    if log_lines > 0 {
        println!(
            "note: the service wrote {log_lines} warning/error lines in all (each run's log kept in target/bench-logs/)."
        );
    }
    if let Some(out) = &k.out {
        fs::write(out, &md).with_context(|| format!("cannot write {}", out.display()))?;
        println!("report written to {}", out.display());
    }
    let errors = checks.iter().any(|c| c.name.starts_with("errors") && !c.ok);
    let missed = checks.iter().any(|c| !c.ok);
    Ok(if errors || (k.strict && missed) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn main() -> ExitCode {
    // `cargo test --all-targets` runs bench targets without `--bench`: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("login benchmark: skipped (run it with `cargo bench --bench login`)");
        return ExitCode::SUCCESS;
    }
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("login benchmark failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

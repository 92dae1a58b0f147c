//! A bounded load test of the real binary: 200 browsers logging in with QQ for
//! 20 seconds against the stand-in QQ — first-time binds racing each other and
//! returning logins mixed — then: no 5xx, no lost or duplicated links, and
//! memory flat after a second round. Its own test binary, so it never shares
//! the machine with the other tests.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code)]

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use qqlogin::config::DatabaseUrl;
use qqlogin::db::Db;
use qqlogin::db::schema::{qq_links, users};
use qqlogin::qq::stand_in::{Running, StandIn};

#[path = "support/sms_webhook.rs"]
mod sms_webhook;
use sms_webhook::SmsWebhook;

const APP_ID: &str = "101474184";
const APP_KEY: &str = "load-test-app-key";
const BROWSERS: usize = 200;
/// Distinct QQ accounts: fewer than browsers, so binds of one openid race.
const OPENIDS: usize = 150;
const SMS_WEBHOOK_SECRET: &str = "load-test-sms-webhook-secret";

struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn start_server(db_path: &str, graph_url: &str, sms_webhook_url: &str) -> Server {
    let bin =
        std::env::var("QQLOGIN_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_qqlogin").to_owned());
    let mut child = Command::new(bin)
        .env_clear()
        .env("QQLOGIN_LISTEN", "127.0.0.1:0")
        .env("DATABASE_URL", format!("sqlite://{db_path}"))
        .env("QQ_APP_ID", APP_ID)
        .env("QQ_APP_KEY", APP_KEY)
        .env("QQ_GRAPH_URL", graph_url)
        .env("QQLOGIN_SMS_SENDER", "webhook")
        .env("QQLOGIN_SMS_WEBHOOK_URL", sms_webhook_url)
        .env("QQLOGIN_SMS_WEBHOOK_SECRET", SMS_WEBHOOK_SECRET)
        .env("SECRET_KEY", "load-test-secret-".repeat(5))
        .env("QQLOGIN_DB_POOL_SIZE", "8")
        // Each browser comes from an address of its own, as behind nginx:
        // the throttle counts binds per client address.
        .env("QQLOGIN_TRUSTED_PROXIES", "127.0.0.1")
        // Room in the hashing line for every browser binding at once: this test
        // is about races and integrity; turning a flood away has its own
        // (hardening::a_full_hashing_line_answers_503_with_retry_after).
        .env("QQLOGIN_HASH_QUEUE", BROWSERS.to_string())
        .env("RUST_LOG", "warn,qqlogin=info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port = loop {
        let line = lines.next().expect("server logs its port").unwrap();
        if let Some(rest) = line.split("(port ").nth(1) {
            break rest.trim_end_matches(')').parse().unwrap();
        }
    };
    // Keep draining the log so the server never blocks on a full pipe; keep errors visible.
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            if line.contains("ERROR") {
                eprintln!("server: {line}");
            }
        }
    });
    Server { child, port }
}

/// A number from `/proc/PID/status` (`VmRSS`, `VmHWM` in KiB; `Threads`).
fn proc_status(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

fn rss_kib(pid: u32) -> u64 {
    proc_status(pid, "VmRSS:")
}

/// One browser's QQ login (and bind, the first time). Returns the final status
/// or `0` for a transport error.
async fn log_in(base: &str, qq: &Running, sms: &SmsWebhook, openid: &str, browser: usize) -> u16 {
    let mut headers = reqwest::header::HeaderMap::new();
    let address = format!("10.0.{}.{}", browser / 256, browser % 256);
    headers.insert("x-forwarded-for", address.parse().unwrap());
    let client = reqwest::Client::builder()
        .default_headers(headers)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let Ok(to_qq) = client.get(format!("{base}/oauth/qq/login")).send().await else {
        return 0;
    };
    // Anything but the redirect to QQ is counted as what it was, not a panic.
    let Some(location) = to_qq
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
    else {
        return to_qq.status().as_u16();
    };
    let state = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = qq.grant(openid, "压测");
    let Ok(back) = client
        .get(format!(
            "{base}/oauth/qq/callback?code={code}&state={state}"
        ))
        .send()
        .await
    else {
        return 0;
    };
    let status = back.status().as_u16();
    if status != 200 {
        return status;
    }
    let page = back.text().await.unwrap_or_default();
    let field = |name: &str| {
        let at = page.find(&format!("name=\"{name}\""))?;
        Some(
            page[at..]
                .split("value=\"")
                .nth(1)?
                .split('"')
                .next()?
                .to_owned(),
        )
    };
    let (Some(token), Some(csrf)) = (field("access_token"), field("csrf_token")) else {
        return 599;
    };
    let mobile = format!("139{:08}", openid_number(openid));
    // The bind page's button; a browser racing another for the same person
    // may be told "too soon" (429), and then uses the code the first one got.
    let ask = [
        ("access_token", token.clone()),
        ("csrf_token", csrf.clone()),
        ("mobile", mobile.clone()),
    ];
    match client
        .post(format!("{base}/oauth/qq/sms"))
        .form(&ask)
        .send()
        .await
    {
        Ok(sent) if matches!(sent.status().as_u16(), 200 | 429) => {}
        Ok(sent) => return sent.status().as_u16(),
        Err(_) => return 0,
    }
    let Some(code) = sms.code_for(&mobile).await else {
        return 598;
    };
    let form = [
        ("access_token", token),
        ("csrf_token", csrf),
        ("mobile", mobile),
        ("sms_code", code),
        ("password", "load-test-pass".into()),
    ];
    match client
        .post(format!("{base}/oauth/qq/bind"))
        .form(&form)
        .send()
        .await
    {
        Ok(done) => done.status().as_u16(),
        Err(_) => 0,
    }
}

fn openid_number(openid: &str) -> u64 {
    openid[24..].parse().unwrap()
}

/// `BROWSERS` browsers logging in back to back for `duration`.
async fn round(
    base: &str,
    qq: &Arc<Running>,
    sms: &Arc<SmsWebhook>,
    duration: Duration,
) -> BTreeMap<u16, usize> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for browser in 0..BROWSERS {
        let (base, qq, sms, stop) = (base.to_owned(), qq.clone(), sms.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen = BTreeMap::new();
            let mut i = browser;
            while !stop.load(Ordering::Relaxed) {
                let openid = format!("{:024X}{:08}", 0xA11CE, i % OPENIDS);
                *seen
                    .entry(log_in(&base, &qq, &sms, &openid, browser).await)
                    .or_insert(0) += 1;
                i += 7;
            }
            seen
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut all = BTreeMap::new();
    for task in tasks {
        for (status, n) in task.await.unwrap() {
            *all.entry(status).or_insert(0) += n;
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_browsers_for_twenty_seconds_lose_nothing() {
    let qq = Arc::new(StandIn::new(APP_ID, APP_KEY).start().await.unwrap());
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("load.db").to_string_lossy().into_owned();
    let sms = Arc::new(SmsWebhook::start(SMS_WEBHOOK_SECRET).await);
    let server = start_server(&db_path, &qq.base_url, &sms.url());
    let base = format!("http://127.0.0.1:{}", server.port);

    eprintln!("load: idle RSS {} KiB", rss_kib(server.child.id()));
    let started = Instant::now();
    let first = round(&base, &qq, &sms, Duration::from_secs(20)).await;
    let rss_after_first = rss_kib(server.child.id());
    let second = round(&base, &qq, &sms, Duration::from_secs(10)).await;
    let rss_after_second = rss_kib(server.child.id());
    let pid = server.child.id();
    eprintln!(
        "load: round 1 {first:?}, round 2 {second:?}, RSS {rss_after_first} KiB then {rss_after_second} KiB, \
         peak {} KiB, {} threads, {:?}",
        proc_status(pid, "VmHWM:"),
        proc_status(pid, "Threads:"),
        started.elapsed()
    );

    for (label, counts) in [("first", &first), ("second", &second)] {
        let total: usize = counts.values().sum();
        assert!(total > BROWSERS, "{label} round did real work: {counts:?}");
        for status in counts.keys() {
            // 303: logged in. 409: lost a race to bind the same QQ account (then
            // logs straight in). 429: one of six or more browsers binding the
            // same mobile at once, past its free tries (the throttle counts
            // tries in flight). 400: lost the race for the SMS code to a bind
            // of the same person, which used it up.
            assert!(
                matches!(status, 303 | 400 | 409 | 429),
                "{label} round: unexpected {status} in {counts:?}"
            );
        }
    }
    assert_eq!(
        (second.get(&400), second.get(&409), second.get(&429)),
        (None, None, None),
        "every QQ account was bound in the first round"
    );

    let db = Db::new(
        DatabaseUrl::Sqlite { path: db_path },
        Default::default(),
        1,
        Duration::from_secs(5),
    );
    let (links, user_count, linked_users) = db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            let links: i64 = qq_links::table.count().get_result(conn)?;
            let user_count: i64 = users::table.count().get_result(conn)?;
            let linked: i64 = qq_links::table
                .select(qq_links::user_id)
                .distinct()
                .count()
                .get_result(conn)?;
            Ok((links, user_count, linked))
        })
        .await
        .unwrap();
    assert_eq!(
        links, OPENIDS as i64,
        "one link per QQ account: none lost, none doubled"
    );
    assert_eq!(
        (user_count, linked_users),
        (OPENIDS as i64, OPENIDS as i64),
        "no half-made accounts"
    );
    assert!(
        rss_after_second <= rss_after_first + rss_after_first / 5,
        "memory grew after the load: {rss_after_first} KiB then {rss_after_second} KiB"
    );
}

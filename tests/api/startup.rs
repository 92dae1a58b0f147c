//! The program as an operator meets it: settings, development mode, signals,
//! migrations.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use qqlogin::db::Db;

use crate::backend_tests;
use crate::helpers::{Backend, Browser, Options, Page, TestDb, spawn_app_with};

const BIN: &str = env!("CARGO_BIN_EXE_qqlogin");

/// The binary with a clean environment, in a fresh directory.
fn qqlogin(dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .current_dir(dir);
    cmd
}

#[test]
fn help_lists_every_setting() {
    let dir = tempfile::tempdir().unwrap();
    let out = qqlogin(dir.path()).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for setting in [
        "QQLOGIN_LISTEN",
        "DATABASE_URL",
        "QQ_APP_ID",
        "QQ_APP_KEY",
        "QQ_REDIRECT_URI",
        "QQ_GRAPH_URL",
        "SECRET_KEY",
        "QQLOGIN_JWT_TTL",
        "QQLOGIN_CORS_ORIGINS",
        "QQ_TIMEOUT_MS",
        "QQLOGIN_DB_POOL_SIZE",
        "QQ_API_REDIRECT_URI",
        "QQLOGIN_SMS_SENDER",
        "QQLOGIN_SMS_WEBHOOK_URL",
        "QQLOGIN_TENCENTCLOUD_SMS_TEMPLATE_ID",
        "QQLOGIN_SMS_DAILY_PER_MOBILE",
        "QQLOGIN_SMS_UNGATED",
        "QQLOGIN_BIND_REQUIRE_SMS",
        "QQLOGIN_SITE_NAME",
        "QQLOGIN_SITE_LOGO",
        "QQLOGIN_ACCENT_COLOR",
    ] {
        assert!(
            help.contains(setting),
            "{setting} missing from --help:\n{help}"
        );
    }
}

#[test]
fn a_bad_setting_exits_2_with_one_line_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = "k".repeat(64);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("QQLOGIN_LISTEN", "not-an-address")], "QQLOGIN_LISTEN"),
        (
            &[("DATABASE_URL", "mysql://root:hunter2@db/x")],
            "DATABASE_URL",
        ),
        (
            &[("QQ_APP_ID", "101474184"), ("QQ_APP_KEY", "appkey")],
            "SECRET_KEY",
        ),
        (
            &[
                ("QQ_APP_ID", "101474184"),
                ("QQ_APP_KEY", "appkey"),
                ("SECRET_KEY", "short"),
            ],
            "SECRET_KEY",
        ),
        (
            &[("QQ_APP_ID", "101474184"), ("SECRET_KEY", &key)],
            "QQ_APP_KEY",
        ),
        (
            &[
                ("QQ_APP_ID", "101474184"),
                ("QQ_APP_KEY", "appkey"),
                ("SECRET_KEY", &key),
            ],
            "QQLOGIN_SMS_SENDER",
        ),
        (
            &[
                ("QQ_APP_ID", "101474184"),
                ("QQ_APP_KEY", "appkey"),
                ("SECRET_KEY", &key),
                ("QQLOGIN_SMS_SENDER", "log"),
            ],
            "QQLOGIN_SMS_SENDER",
        ),
        (&[("QQ_REDIRECT_URI", "ftp://x/cb")], "QQ_REDIRECT_URI"),
        (&[("QQ_TIMEOUT_MS", "60000")], "QQ_TIMEOUT_MS"),
        // It goes into the stylesheet: nothing but #rrggbb.
        (
            &[("QQLOGIN_ACCENT_COLOR", "#e4393c;}body{display:none")],
            "QQLOGIN_ACCENT_COLOR",
        ),
        (&[("QQLOGIN_ACCENT_COLOR", "red")], "QQLOGIN_ACCENT_COLOR"),
        (
            &[("QQLOGIN_SITE_LOGO", "/nonexistent/logo.png")],
            "QQLOGIN_SITE_LOGO",
        ),
        (&[("QQLOGIN_SITE_NAME", "  ")], "QQLOGIN_SITE_NAME"),
    ];
    for (env, setting) in cases {
        refused(dir.path(), env, setting, &["hunter2", "appkey"]);
    }
}

/// Runs the binary with `env` and checks that it stops at once with exit
/// code 2 and one line naming `setting`, echoing none of `secrets`; returns the line.
fn refused(dir: &std::path::Path, env: &[(&str, &str)], setting: &str, secrets: &[&str]) -> String {
    let out = qqlogin(dir).envs(env.iter().copied()).output().unwrap();
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{env:?}: {stderr}");
    assert!(stderr.contains(setting), "{env:?}: {stderr}");
    for secret in secrets {
        assert!(!stderr.contains(secret), "a secret was echoed: {stderr}");
    }
    stderr
}

#[test]
fn a_dotenv_file_is_read_and_real_environment_variables_win() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".env"), "QQLOGIN_LISTEN=from-dotenv\n").unwrap();
    let out = qqlogin(dir.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "the .env value was used");
    let out = qqlogin(dir.path())
        .env("QQLOGIN_LISTEN", "still-bad-but-mine")
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
}

/// A started server: the process, its port (read from its log) and its first log lines.
struct Running {
    child: std::process::Child,
    port: u16,
    log: String,
}

impl Running {
    fn start(mut cmd: Command) -> Self {
        let mut child = cmd
            .env("RUST_LOG", "info")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut log = String::new();
        let port = loop {
            let line = lines
                .next()
                .unwrap_or_else(|| panic!("the server logs its port:\n{log}"))
                .unwrap();
            log.push_str(&line);
            log.push('\n');
            if let Some(rest) = line.split("(port ").nth(1) {
                break rest.trim_end_matches(')').parse::<u16>().unwrap();
            }
        };
        // The rest of the log is drained, so that the server never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, port, log }
    }

    fn get(&self, path: &str) -> u16 {
        reqwest::blocking_get(&format!("http://127.0.0.1:{}{path}", self.port))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn with_no_settings_it_runs_in_development_mode_and_stops_cleanly_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = qqlogin(dir.path());
    cmd.env("QQLOGIN_LISTEN", "127.0.0.1:0");
    let mut server = Running::start(cmd);
    let log = &server.log;
    assert!(
        log.contains("DEVELOPMENT MODE") && log.contains("STAND-IN QQ"),
        "{log}"
    );
    assert!(
        log.contains("QQ_APP_ID, QQ_APP_KEY and SECRET_KEY are unset") && log.contains("loopback"),
        "the log says why: {log}"
    );
    assert!(
        dir.path().join("qqlogin.db").exists(),
        "SQLite file in the working directory"
    );
    assert_eq!(server.get("/healthz"), 200);
    assert_eq!(server.get("/readyz"), 200);

    Command::new("kill")
        .args(["-TERM", &server.child.id().to_string()])
        .status()
        .unwrap();
    let status = wait_with_deadline(&mut server.child, Duration::from_secs(20));
    assert_eq!(status.and_then(|s| s.code()), Some(0));
}

/// A forgotten `QQ_APP_ID` must never turn a production instance into one
/// where anyone names any QQ account: every sign of production without it
/// stops the start.
#[test]
fn a_forgotten_app_id_stops_a_production_instance_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let key = "k".repeat(64);
    let https = "https://www.example.com/oauth/qq/callback";
    let cases: &[&[(&str, &str)]] = &[
        &[("QQ_APP_KEY", "appkey")],
        &[("SECRET_KEY", &key)],
        &[("QQ_REDIRECT_URI", https)],
        &[
            ("QQ_APP_KEY", "appkey"),
            ("SECRET_KEY", &key),
            ("QQ_REDIRECT_URI", https),
        ],
        &[("QQ_APP_KEY", "appkey"), ("QQLOGIN_DEV", "1")],
        // Nothing set, but reachable from outside: development mode must be asked for.
        &[("QQLOGIN_LISTEN", "0.0.0.0:0")],
    ];
    for env in cases {
        refused(dir.path(), env, "QQ_APP_ID", &["appkey", &key]);
    }
    let line = refused(
        dir.path(),
        &[("QQLOGIN_LISTEN", "0.0.0.0:0")],
        "QQ_APP_ID",
        &[],
    );
    assert!(line.contains("QQLOGIN_DEV=1"), "{line}");
}

#[test]
fn the_stand_in_qq_is_404_whenever_an_app_id_is_set() {
    let dir = tempfile::tempdir().unwrap();
    // QQLOGIN_DEV=1 beside an app id changes nothing: the app id wins.
    for dev in ["0", "1"] {
        let mut cmd = qqlogin(dir.path());
        cmd.envs([
            ("QQLOGIN_LISTEN", "127.0.0.1:0"),
            ("QQ_APP_ID", "101474184"),
            ("QQ_APP_KEY", "appkey"),
            ("SECRET_KEY", &"k".repeat(64)),
            ("QQ_GRAPH_URL", "http://127.0.0.1:9"),
            ("QQLOGIN_SMS_SENDER", "webhook"),
            ("QQLOGIN_SMS_WEBHOOK_URL", "http://127.0.0.1:9/sms"),
            ("QQLOGIN_SMS_WEBHOOK_SECRET", "webhook-secret"),
            ("QQLOGIN_DEV", dev),
        ]);
        let server = Running::start(cmd);
        assert!(!server.log.contains("DEVELOPMENT MODE"), "{}", server.log);
        assert_eq!(server.get("/healthz"), 200);
        for path in ["/dev/qq/", "/dev/qq/oauth2.0/authorize?state=x"] {
            assert_eq!(server.get(path), 404, "QQLOGIN_DEV={dev} {path}");
        }
    }
}

#[test]
fn qqlogin_dev_gives_development_mode_on_any_address_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = qqlogin(dir.path());
    cmd.envs([("QQLOGIN_LISTEN", "0.0.0.0:0"), ("QQLOGIN_DEV", "1")]);
    let server = Running::start(cmd);
    assert!(
        server
            .log
            .contains("DEVELOPMENT MODE (QQLOGIN_DEV=1 is set)"),
        "{}",
        server.log
    );
    assert_ne!(server.get("/dev/qq/oauth2.0/authorize"), 404);
}

fn wait_with_deadline(
    child: &mut std::process::Child,
    deadline: Duration,
) -> Option<std::process::ExitStatus> {
    let until = std::time::Instant::now() + deadline;
    while std::time::Instant::now() < until {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    None
}

/// A tiny blocking GET, so these process tests need no runtime.
mod reqwest {
    use std::io::{Read, Write};
    pub fn blocking_get(url: &str) -> u16 {
        let rest = url.strip_prefix("http://").unwrap();
        let (host, path) = rest.split_once('/').unwrap();
        let mut stream = std::net::TcpStream::connect(host).unwrap();
        write!(
            stream,
            "GET /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        answer.split(' ').nth(1).unwrap().parse().unwrap()
    }
}

async fn migrations_run_up_down_and_up_again(backend: Backend) {
    let fresh_db = TestDb::new(&backend);
    let fresh = Db::new(
        fresh_db.url.clone(),
        Default::default(),
        1,
        Duration::from_secs(5),
    );
    fresh.migrate().await.unwrap();

    let test_db = TestDb::new(&backend);
    let db = Db::new(
        test_db.url.clone(),
        Default::default(),
        1,
        Duration::from_secs(5),
    );
    db.migrate().await.unwrap();
    db.revert_all_migrations().await.unwrap();
    assert_eq!(
        schema(&db).await,
        Vec::<String>::new(),
        "every down.sql undoes its up.sql"
    );
    db.migrate().await.unwrap();
    db.migrate().await.unwrap();
    assert_eq!(
        schema(&db).await,
        schema(&fresh).await,
        "down then up again gives the schema a fresh database gets"
    );
}

/// Every table, column, index and constraint, as text (diesel's own
/// bookkeeping table left out), sorted.
async fn schema(db: &Db) -> Vec<String> {
    use diesel::RunQueryDsl;
    db.run(|conn| {
        let rows: Vec<Pragma> = match &mut **conn {
            qqlogin::db::DbConn::Sqlite(c) => diesel::sql_query(
                "SELECT coalesce(sql, name) AS value FROM sqlite_master \
                 WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '__diesel%' ORDER BY 1",
            )
            .load(c)?,
            qqlogin::db::DbConn::Postgres(c) => diesel::sql_query(
                "SELECT table_name || '.' || column_name || ' ' || data_type || ' ' || is_nullable \
                        || ' ' || coalesce(column_default, '') || ' ' || is_identity AS value \
                   FROM information_schema.columns \
                  WHERE table_schema = current_schema() AND table_name NOT LIKE '__diesel%' \
                 UNION ALL \
                 SELECT replace(indexdef, current_schema() || '.', '') FROM pg_indexes \
                  WHERE schemaname = current_schema() AND tablename NOT LIKE '__diesel%' \
                 UNION ALL \
                 SELECT conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid) \
                   FROM pg_constraint WHERE connamespace = current_schema()::regnamespace \
                    AND conrelid::regclass::text NOT LIKE '__diesel%' \
                 ORDER BY 1",
            )
            .load(c)?,
        };
        Ok(rows.into_iter().map(|r| r.value).collect())
    })
    .await
    .unwrap()
}

async fn the_development_stand_in_takes_a_person_through_the_whole_flow(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            dev_mode: true,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let to_qq = app.get(&browser, "/oauth/qq/login?next=/orders").await;
    let authorize_url = to_qq.location.unwrap();
    assert!(
        authorize_url.starts_with(&app.url("/dev/qq/oauth2.0/authorize?")),
        "{authorize_url}"
    );

    let qq_page = Page::from(browser.client.get(&authorize_url).send().await.unwrap()).await;
    assert_eq!(qq_page.status, 200);
    assert!(qq_page.body.contains("模拟QQ"), "{}", qq_page.body);
    let form = [
        ("client_id", qq_page.field("client_id").unwrap()),
        ("redirect_uri", qq_page.field("redirect_uri").unwrap()),
        ("state", qq_page.field("state").unwrap()),
        ("nickname", "开发者".to_owned()),
    ];
    let back = Page::from(
        browser
            .client
            .post(app.url("/dev/qq/oauth2.0/authorize"))
            .form(&form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(back.status, 302);
    let callback = back.location.unwrap();
    assert!(
        callback.starts_with(&app.url("/oauth/qq/callback?code=")),
        "{callback}"
    );

    let bind_page = Page::from(browser.client.get(&callback).send().await.unwrap()).await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    assert!(bind_page.body.contains("开发者"));
    let done = app
        .bind(
            &browser,
            &bind_page,
            "13800138000",
            crate::helpers::PASSWORD,
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/orders"));
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );
}

backend_tests!(
    migrations_run_up_down_and_up_again,
    the_development_stand_in_takes_a_person_through_the_whole_flow
);

#[derive(diesel::QueryableByName)]
struct Pragma {
    #[diesel(sql_type = diesel::sql_types::Text)]
    value: String,
}

/// Every pooled SQLite connection enforces foreign keys, waits for locks and uses WAL.
#[actix_web::test]
async fn sqlite_connections_enforce_foreign_keys_wait_for_locks_and_use_wal() {
    use diesel::RunQueryDsl;
    let test_db = TestDb::new(&Backend::Sqlite);
    let db = Db::new(
        test_db.url.clone(),
        Default::default(),
        2,
        Duration::from_secs(5),
    );
    db.migrate().await.unwrap();
    let pragmas = db
        .run(|conn| {
            let qqlogin::db::DbConn::Sqlite(c) = &mut **conn else {
                unreachable!()
            };
            let read = |c: &mut diesel::SqliteConnection, pragma: &str, column: &str| {
                diesel::sql_query(format!(
                    "SELECT CAST({column} AS TEXT) AS value FROM pragma_{pragma}"
                ))
                .get_result::<Pragma>(c)
                .map(|p| p.value)
            };
            Ok((
                read(c, "foreign_keys", "foreign_keys")?,
                read(c, "busy_timeout", "timeout")?,
                read(c, "journal_mode", "journal_mode")?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(pragmas, ("1".into(), "5000".into(), "wal".into()));

    let orphan = db
        .run(|conn| {
            let link = qqlogin::db::qq_link::NewLink {
                app_id: "app",
                openid: "OPENID",
                unionid: None,
                nickname: None,
                avatar_url: None,
            };
            qqlogin::db::qq_link::insert(conn, link, 12345)
        })
        .await;
    assert!(orphan.is_err(), "a link to no user was accepted");
}

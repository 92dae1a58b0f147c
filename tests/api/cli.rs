//! The operators' command line (`qqlogin users …`, `sessions end`, `events`,
//! `migrate`), through the real binary, against the database of a service
//! that is running, on SQLite and PostgreSQL.

use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::backend_tests;
use crate::helpers::{
    APP_ID, APP_KEY, Backend, Browser, PASSWORD, SECRET_KEY, TestApp, eventually, new_openid,
    spawn_app, url_of,
};

const MOBILE: &str = "13800138000";

/// What a command printed, and how it ended.
struct Ran {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Ran {
    fn json(&self) -> Value {
        assert_eq!(self.code, 0, "{}", self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("{e}: {}", self.stdout))
    }
}

/// `qqlogin ARGS` with the settings of `app` (production mode, its app id).
fn qqlogin(app: &TestApp, args: &[&str]) -> Ran {
    qqlogin_with_qq_at(app, &app.qq.base_url, args)
}

/// [`qqlogin`], with QQ's endpoints at `graph_url`.
fn qqlogin_with_qq_at(app: &TestApp, graph_url: &str, args: &[&str]) -> Ran {
    let out = Command::new(env!("CARGO_BIN_EXE_qqlogin"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", url_of(&app.config.database))
        .env("QQ_APP_ID", APP_ID)
        .env("QQ_APP_KEY", APP_KEY)
        .env("SECRET_KEY", SECRET_KEY)
        .env("QQ_GRAPH_URL", graph_url)
        .env("QQLOGIN_SMS_SENDER", "webhook")
        .env("QQLOGIN_SMS_WEBHOOK_URL", app.sms.url())
        .env("QQLOGIN_SMS_WEBHOOK_SECRET", "unused")
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap();
    Ran {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8(out.stdout).unwrap(),
        stderr: String::from_utf8(out.stderr).unwrap(),
    }
}

fn kinds(events: &Value) -> Vec<&str> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect()
}

async fn operators_look_at_disable_enable_and_unlink_an_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, openid) = (Browser::new(), new_openid());
    app.sign_up_with_qq(&browser, &openid, MOBILE).await;
    let user_id = app.user_id(MOBILE).await;

    let listed = qqlogin(&app, &["users", "list", "--json"]).json();
    assert_eq!(listed[0]["mobile"], MOBILE, "{listed:#}");
    assert_eq!(listed[0]["active"], true);
    assert!(listed[0].get("password_hash").is_none(), "never the hash");
    assert_eq!(
        qqlogin(&app, &["users", "list", "--search", "8001", "--json"]).json()[0]["id"],
        user_id
    );
    assert_eq!(
        qqlogin(&app, &["users", "list", "--search", "%", "--json"]).json(),
        Value::Array(vec![])
    );
    let table = qqlogin(&app, &["users", "list"]);
    assert!(table.stdout.starts_with("ID"), "{}", table.stdout);
    assert!(table.stdout.contains(MOBILE), "{}", table.stdout);

    // The bind's event is written in the background: look until it is there.
    let shown_bind = eventually(Duration::from_secs(5), async || {
        let shown = qqlogin(&app, &["users", "show", MOBILE, "--json"]).json();
        kinds(&shown["events"]).contains(&"bind")
    })
    .await;
    assert!(shown_bind, "users show lists the bind");
    let shown = qqlogin(&app, &["users", "show", &user_id.to_string(), "--json"]).json();
    assert_eq!(shown["qq_openid"], openid.as_str());
    assert_eq!(shown["sessions"], 1);

    let disabled = qqlogin(&app, &["users", "disable", MOBILE, "--json"]).json();
    assert_eq!(disabled["sessions_ended"], 1, "{disabled:#}");
    assert_eq!(
        app.logged_in_as(&browser).await,
        None,
        "its session ended at once"
    );
    let refused = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(refused.status, 403, "{}", refused.body);

    qqlogin(&app, &["users", "enable", MOBILE, "--json"]).json();
    let back = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(back.status, 303, "enabled: QQ logs in again");

    let unlinked = qqlogin(&app, &["users", "unlink", MOBILE, "--json"]).json();
    assert_eq!(unlinked["done"], "unlinked from QQ");
    let bind_page = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(bind_page.status, 200, "unlinked: the bind page again");
    assert!(bind_page.body.contains("绑定账号"));

    let events = qqlogin(&app, &["events", "--user", MOBILE, "--json"]).json();
    let kinds = kinds(&events);
    for kind in ["unlink", "enable", "disable", "bind"] {
        assert!(kinds.contains(&kind), "{kind} in {kinds:?}");
    }
    let since = qqlogin(&app, &["events", "--since", "2999-01-01", "--json"]).json();
    assert_eq!(since, Value::Array(vec![]));
}

async fn sessions_end_logs_a_user_out_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let (first, second) = (Browser::new(), Browser::new());
    app.sign_up_with_qq(&first, &new_openid(), MOBILE).await;
    assert_eq!(
        app.password_login(&second, MOBILE, PASSWORD).await.status,
        303
    );
    let ended = qqlogin(&app, &["sessions", "end", MOBILE, "--json"]).json();
    assert_eq!(ended["sessions_ended"], 2, "{ended:#}");
    assert_eq!(app.logged_in_as(&first).await, None);
    assert_eq!(app.logged_in_as(&second).await, None);
}

async fn unknown_users_and_bad_arguments_exit_non_zero(backend: Backend) {
    let app = spawn_app(backend).await;
    let missing = qqlogin(&app, &["users", "show", "nobody"]);
    assert_eq!(missing.code, 3, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("no user nobody"),
        "{}",
        missing.stderr
    );
    let bad = qqlogin(&app, &["events", "--since", "last week"]);
    assert_eq!(bad.code, 1, "{}", bad.stderr);
    assert!(bad.stderr.contains("--since"), "{}", bad.stderr);
    let unknown = qqlogin(&app, &["users", "frobnicate"]);
    assert_eq!(unknown.code, 2, "{}", unknown.stderr);
    let migrated = qqlogin(&app, &["migrate"]);
    assert_eq!(migrated.code, 0, "{}", migrated.stderr);
    assert!(migrated.stdout.contains("migrations applied"));
}

/// `check` looks at the database, QQ and the SMS sender; one away is exit 1.
async fn check_says_what_answers_and_fails_on_what_does_not(backend: Backend) {
    let app = spawn_app(backend).await;
    let Value::Object(report) = qqlogin(&app, &["check", "--json"]).json() else {
        panic!("an object");
    };
    assert_eq!(report["ok"], true, "{report:?}");
    let whats: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["what"].as_str().unwrap())
        .collect();
    assert_eq!(whats, ["settings", "database", "QQ", "SMS sender"]);

    // QQ's endpoints on a port nobody listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://127.0.0.1:{}/", closed.local_addr().unwrap().port());
    drop(closed);
    let out = qqlogin_with_qq_at(&app, &dead, &["check"]);
    assert_eq!(out.code, 1, "{}", out.stderr);
    let text = out.stdout;
    assert!(
        text.lines()
            .any(|l| l.starts_with("QQ") && l.contains("PROBLEM")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("database") && l.contains(" ok ")),
        "{text}"
    );
}

backend_tests!(
    operators_look_at_disable_enable_and_unlink_an_account,
    sessions_end_logs_a_user_out_everywhere,
    unknown_users_and_bad_arguments_exit_non_zero,
    check_says_what_answers_and_fails_on_what_does_not,
);

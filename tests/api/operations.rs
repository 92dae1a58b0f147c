//! What operators rely on: start-up without the database, the trusted proxy's
//! headers (and only its), a graceful stop with requests in flight.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::backend_tests;
use crate::helpers::{
    APP_ID, APP_KEY, Backend, Browser, DbProxy, Options, Page, TestDb, eventually, new_openid,
    spawn_app_with,
};
use qqlogin::qq::stand_in::{Endpoint, Fault, StandIn};

/// The CSRF cookie the login page sets for a new visitor, asked as if through
/// a proxy with `X-Forwarded-For` and `X-Forwarded-Proto: https`.
async fn cookie_via(app: &crate::helpers::TestApp, client: &str) -> String {
    let response = Browser::new()
        .client
        .get(app.url("/login"))
        .header("x-forwarded-for", client)
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A wrong password sent as if through a proxy, with `X-Forwarded-For`/`-Proto`.
async fn wrong_password_via(app: &crate::helpers::TestApp, login: &str, client: &str) -> Page {
    let browser = Browser::new();
    let csrf = app.login_page_csrf(&browser).await;
    let form = [
        ("username", login),
        ("password", "wrong password"),
        ("csrf_token", csrf.as_str()),
    ];
    let response = browser
        .client
        .post(app.url("/login"))
        .header("x-forwarded-for", client)
        .header("x-forwarded-proto", "https")
        .form(&form)
        .send()
        .await
        .unwrap();
    Page::from(response).await
}

async fn a_trusted_proxy_names_the_client_for_throttling_and_secure_cookies(backend: Backend) {
    let options = Options {
        tweak: Box::new(|c| c.trusted_proxies = "127.0.0.1".parse().unwrap()),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    for i in 0..20 {
        let page = wrong_password_via(&app, &format!("1300000{i:04}"), "198.51.100.1").await;
        assert_eq!(page.status, 401, "attempt {i}");
    }
    assert_eq!(
        wrong_password_via(&app, "13099999999", "198.51.100.1")
            .await
            .status,
        429
    );
    // Another client behind the same proxy is not punished for the first one.
    assert_eq!(
        wrong_password_via(&app, "13099999998", "198.51.100.2")
            .await
            .status,
        401
    );

    let cookie = cookie_via(&app, "198.51.100.3").await;
    assert!(cookie.contains("; Secure"), "https at the proxy: {cookie}");

    let to_qq = Browser::new()
        .client
        .get(app.url("/oauth/qq/login"))
        .header("x-forwarded-for", "198.51.100.4")
        .header("x-forwarded-proto", "https")
        .send()
        .await
        .unwrap();
    let cookie = to_qq.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("qqlogin_oauth=") && cookie.contains("; Secure"),
        "the QQ login's cookie behind https: {cookie}"
    );
}

async fn forwarding_headers_from_an_untrusted_peer_are_ignored(backend: Backend) {
    let app = spawn_app_with(backend, Options::default()).await;
    // Each attempt claims another address; all are really 127.0.0.1.
    for i in 0..20 {
        let page =
            wrong_password_via(&app, &format!("1300000{i:04}"), &format!("198.51.100.{i}")).await;
        assert_eq!(page.status, 401, "attempt {i}");
        let cookie = cookie_via(&app, &format!("198.51.100.{i}")).await;
        assert!(!cookie.contains("Secure"), "a forged https: {cookie}");
    }
    assert_eq!(
        wrong_password_via(&app, "13099999999", "198.51.100.99")
            .await
            .status,
        429
    );
}

backend_tests!(
    a_trusted_proxy_names_the_client_for_throttling_and_secure_cookies,
    forwarding_headers_from_an_untrusted_peer_are_ignored,
);

/// PostgreSQL absent when the service starts: it starts anyway, answers 503,
/// and recovers by itself once the database is there.
#[actix_web::test]
async fn the_service_starts_without_its_database_and_recovers_by_itself() {
    let Some(backend @ Backend::Postgres(_)) = Backend::postgres() else {
        return;
    };
    let test_db = TestDb::new(&backend);
    let proxy = DbProxy::start("127.0.0.1:5432".parse().unwrap()).await;
    let direct = match &test_db.url {
        qqlogin::config::DatabaseUrl::Postgres { url } => {
            secrecy::ExposeSecret::expose_secret(url).to_owned()
        }
        _ => unreachable!(),
    };
    let proxied = direct.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
    proxy.cut();

    let options = Options {
        database: Some(qqlogin::config::DatabaseUrl::parse(&proxied).unwrap()),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );
    assert_eq!(
        reqwest::get(app.url("/readyz")).await.unwrap().status(),
        503
    );
    let page = app.get(&Browser::new(), "/login").await;
    assert_eq!(page.status, 503);
    assert!(page.body.contains("服务暂时不可用"), "{}", page.body);
    let api = reqwest::get(app.url("/api/me")).await.unwrap();
    assert_eq!(api.status(), 503);
    assert!(
        api.text().await.unwrap().contains("\"message\""),
        "the API answers JSON"
    );

    proxy.restore();
    let ready = eventually(Duration::from_secs(20), async || {
        reqwest::get(app.url("/readyz")).await.unwrap().status() == 200
    })
    .await;
    assert!(ready, "recovered without a restart");
    let browser = Browser::new();
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );
}

/// SIGTERM while a login waits on QQ: the login still completes, then the process exits 0.
#[actix_web::test]
async fn sigterm_lets_requests_in_flight_finish_then_exits_0() {
    let qq = StandIn::new(APP_ID, APP_KEY).start().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_qqlogin"))
        .env_clear()
        .current_dir(dir.path())
        .env("QQLOGIN_LISTEN", "127.0.0.1:0")
        .env("QQ_APP_ID", APP_ID)
        .env("QQ_APP_KEY", APP_KEY)
        .env("QQ_GRAPH_URL", &qq.base_url)
        .env("SECRET_KEY", crate::helpers::SECRET_KEY)
        .env("QQLOGIN_SMS_SENDER", "webhook")
        .env("QQLOGIN_SMS_WEBHOOK_URL", "http://127.0.0.1:9/sms")
        .env("QQLOGIN_SMS_WEBHOOK_SECRET", "webhook-secret")
        .env("QQLOGIN_SHUTDOWN_GRACE_SECS", "20")
        .env("RUST_LOG", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let port: u16 = loop {
        let line = lines.next().expect("the server logs its port").unwrap();
        if let Some(rest) = line.split("(port ").nth(1) {
            break rest.trim_end_matches(')').parse().unwrap();
        }
    };
    let log = std::thread::spawn(move || lines.map_while(Result::ok).collect::<Vec<_>>());
    let base = format!("http://127.0.0.1:{port}");

    let browser = Browser::new();
    let to_qq = Page::from(
        browser
            .client
            .get(format!("{base}/oauth/qq/login"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    let state = url::Url::parse(to_qq.location.as_deref().unwrap())
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = qq.grant(&new_openid(), "慢");
    qq.set_fault_on(Endpoint::Token, Fault::Delay(Duration::from_millis(1500)));
    let callback = browser
        .client
        .get(format!(
            "{base}/oauth/qq/callback?code={code}&state={state}"
        ))
        .send();
    let in_flight = tokio::spawn(callback);
    assert!(
        eventually(Duration::from_secs(10), async || qq
            .calls_to("/oauth2.0/token")
            == 1)
        .await
    );

    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let response = in_flight
        .await
        .unwrap()
        .expect("the request in flight was answered");
    assert_eq!(
        response.status(),
        200,
        "the login finished during the grace period"
    );
    assert!(response.text().await.unwrap().contains("绑定账号"));

    let exited = eventually(Duration::from_secs(25), async || {
        child.try_wait().unwrap().is_some()
    })
    .await;
    assert!(exited, "the process stopped");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    let log = log.join().unwrap();
    assert!(
        log.iter().all(|line| !line.contains(&code)),
        "a code reached the log"
    );
    assert!(
        log.iter()
            .any(|l| l.contains("\"GET /oauth/qq/callback\" 200")),
        "access log: {log:?}"
    );
}

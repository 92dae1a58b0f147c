//! `/metrics`: Prometheus's text, counters that move with what happens, and
//! an answer only for the peers in `QQLOGIN_METRICS_ALLOW`.

use crate::backend_tests;
use crate::helpers::{Backend, Browser, Options, TestApp, new_openid, spawn_app, spawn_app_with};

const MOBILE: &str = "13800138000";

async fn scrape(app: &TestApp) -> String {
    let response = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    response.text().await.unwrap()
}

/// The value of the sample `series` (name and labels, as written), 0 when absent.
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map_or(0.0, |value| value.trim().parse().unwrap())
}

async fn logins_qq_calls_and_failures_move_the_counters(backend: Backend) {
    let app = spawn_app(backend).await;
    let login = r#"qqlogin_sign_in_events_total{kind="login",method="qq",outcome="ok"}"#;
    let bind = r#"qqlogin_sign_in_events_total{kind="bind",method="qq",outcome="ok"}"#;
    let token_calls = r#"qqlogin_qq_call_seconds_count{call="token"}"#;
    let expired = r#"qqlogin_qq_errors_total{call="token",code="100019"}"#;
    let before = scrape(&app).await;

    let (browser, openid) = (Browser::new(), new_openid());
    app.sign_up_with_qq(&browser, &openid, MOBILE).await;
    let again = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(again.status, 303);
    let failing = Browser::new();
    let state = app.start_qq_login(&failing, "/").await;
    let code = app.qq.grant(&new_openid(), "小红");
    app.qq.expire_codes();
    assert_eq!(app.callback(&failing, &code, &state).await.status, 400);

    let after = scrape(&app).await;
    // Other tests in this process count too: at least ours.
    assert!(
        sample(&after, login) >= sample(&before, login) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, bind) >= sample(&before, bind) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, token_calls) >= sample(&before, token_calls) + 3.0,
        "{after}"
    );
    assert!(
        sample(&after, expired) >= sample(&before, expired) + 1.0,
        "{after}"
    );
    assert!(
        sample(&after, r#"qqlogin_in_use{of="sessions"}"#) >= 2.0,
        "{after}"
    );
    assert!(after.contains("qqlogin_db_wait_seconds_bucket"), "{after}");
    assert!(after.contains(r#"qqlogin_sms_sends_total{outcome="sent",sender="webhook"}"#));
    assert!(after.contains(r#"qqlogin_in_use{of="password_hashes_in_line"} 0"#));
}

async fn metrics_answer_only_the_listed_peers(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            tweak: Box::new(|c| c.metrics_allow = "10.0.0.0/8".parse().unwrap()),
            ..Options::default()
        },
    )
    .await;
    let refused = reqwest::Client::new()
        .get(app.url("/metrics"))
        // A forwarded address proves nothing: the peer is what counts.
        .header("x-forwarded-for", "10.1.2.3")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    assert!(!refused.text().await.unwrap().contains("qqlogin_"));
}

backend_tests!(
    logins_qq_calls_and_failures_move_the_counters,
    metrics_answer_only_the_listed_peers,
);

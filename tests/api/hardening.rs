//! The holes an attack from outside found (issue 20), each kept closed: a
//! burst of passwords past the throttle, hashing for free, anonymous writes,
//! a session coming back after logout, slow and oversized requests, CORS on
//! pages, a hostile nickname. Each test fails on the old behaviour.

use std::time::Duration;

use futures_util::future::join_all;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, Options, PASSWORD, Page, TestApp, eventually, new_openid, spawn_app,
    spawn_app_with,
};
use crate::login_flow::create_plain_user;
use qqlogin::qq::stand_in::{Endpoint, Fault};

const MOBILE: &str = "13912345678";

/// Statuses of `answers`, counted: (2xx/3xx, 400/401, 429, 5xx, anything else).
fn tally(statuses: &[u16]) -> (usize, usize, usize, usize) {
    let count = |f: fn(u16) -> bool| statuses.iter().filter(|s| f(**s)).count();
    let tally = (
        count(|s| s == 400 || s == 401),
        count(|s| s == 429),
        count(|s| s >= 500),
        count(|s| !matches!(s, 400 | 401 | 429) && s < 500),
    );
    assert_eq!(tally.3, 0, "unexpected statuses: {statuses:?}");
    (tally.0, tally.1, tally.2, tally.3)
}

async fn a_burst_of_wrong_passwords_gets_no_more_than_the_free_tries_to_the_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, MOBILE, PASSWORD).await;
    let browser = Browser::new();
    let csrf = app.login_page_csrf(&browser).await;

    let tries = (0..20).map(|_| post_login(&app, &browser, &csrf, MOBILE, "127.0.0.1"));
    let statuses: Vec<u16> = join_all(tries)
        .await
        .into_iter()
        .map(|r| r.unwrap().status().as_u16())
        .collect();

    let (wrong, throttled, failed, _) = tally(&statuses);
    assert_eq!(failed, 0, "no try may fail the server: {statuses:?}");
    assert!(
        wrong <= 5,
        "{wrong} tries reached the password check: {statuses:?}"
    );
    assert_eq!(wrong + throttled, 20);
    let right = app
        .post_form(
            &browser,
            "/login",
            &[
                ("username", MOBILE),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(right.status, 429, "the account is locked after the burst");
}

/// A wrong password for `username` at the login form, as if through the
/// proxy from `address` (believed only where the test trusts 127.0.0.1).
async fn post_login(
    app: &TestApp,
    browser: &Browser,
    csrf: &str,
    username: &str,
    address: &str,
) -> reqwest::Result<reqwest::Response> {
    browser
        .client
        .post(app.url("/login"))
        .header("x-forwarded-for", address)
        .form(&[
            ("username", username),
            ("password", "wrong password"),
            ("csrf_token", csrf),
        ])
        .send()
        .await
}

/// The JSON API's bind, with a JSON body.
/// `POST /oauth/qq/users/`, with an SMS code asked for first when the mobile is new.
async fn api_bind(app: &TestApp, mobile: &str, password: &str, access_token: &str) -> (u16, Value) {
    let mut body = json!({ "mobile": mobile, "password": password, "access_token": access_token });
    if !app.has_account(mobile).await
        && let Some(code) = app.try_api_sms_code(access_token, mobile).await
    {
        body["sms_code"] = Value::from(code);
    }
    let response = reqwest::Client::new()
        .post(app.url("/oauth/qq/users/"))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn a_burst_of_binds_with_one_token_gets_no_more_than_its_free_tries(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, MOBILE, PASSWORD).await;
    let token = app.api_access_token(&new_openid()).await;

    let binds = (0..20).map(|_| api_bind(&app, MOBILE, "wrong password", &token));
    let statuses: Vec<u16> = join_all(binds).await.into_iter().map(|(s, _)| s).collect();

    let (wrong, throttled, failed, _) = tally(&statuses);
    assert_eq!(failed, 0, "{statuses:?}");
    assert!(wrong <= 5, "{wrong} binds reached the hash: {statuses:?}");
    assert_eq!(wrong + throttled, 20);
    assert_eq!(app.link_count().await, 0);
}

async fn binds_that_cannot_succeed_are_refused_before_the_throttle_and_the_hash(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, MOBILE, PASSWORD).await;
    let openid = new_openid();
    // Two bind tokens for one QQ account: the first links it.
    let (first, second) = (
        app.api_access_token(&openid).await,
        app.api_access_token(&openid).await,
    );
    let (status, _) = api_bind(&app, "13800138000", PASSWORD, &first).await;
    assert_eq!(status, 201);

    // The QQ account is linked now: whatever the password, the answer says
    // so, and nothing is counted against the mobile.
    for _ in 0..8 {
        let (status, body) = api_bind(&app, MOBILE, "wrong password", &second).await;
        assert_eq!(status, 400, "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("已经绑定"),
            "{body}"
        );
    }
    // A used token is refused as used, before any password is looked at.
    let (status, body) = api_bind(&app, "13800138000", "wrong password", &first).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("用过"), "{body}");
    // The mobile's account still has all its free tries.
    let browser = Browser::new();
    for attempt in 1..=5 {
        let page = app
            .post_with_csrf(
                &browser,
                "/login",
                &[("username", MOBILE), ("password", "wrong password")],
            )
            .await;
        assert_eq!(page.status, 401, "attempt {attempt}");
    }
}

async fn tries_are_counted_per_bind_token_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let mobiles: Vec<String> = (0..6).map(|i| format!("1391234560{i}")).collect();
    for mobile in &mobiles {
        create_plain_user(&app, mobile, PASSWORD).await;
    }
    let token = app.api_access_token(&new_openid()).await;
    for mobile in &mobiles[..5] {
        let (status, body) = api_bind(&app, mobile, "wrong password", &token).await;
        assert_eq!(status, 400, "{body}");
    }
    // A sixth account, a sixth guess with the same token: locked.
    let (status, body) = api_bind(&app, &mobiles[5], PASSWORD, &token).await;
    assert_eq!(status, 429, "{body}");
}

async fn a_full_hashing_line_answers_503_with_retry_after(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            tweak: Box::new(|config| {
                config.hash_queue = 0;
                config.trusted_proxies = "127.0.0.1".parse().unwrap();
            }),
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let csrf = app.login_page_csrf(&browser).await;
    // Many people at once, each from an address of their own.
    let tries = (0..30).map(|i| {
        let (name, address) = (format!("1300000{i:04}"), format!("198.51.100.{i}"));
        let (app, browser, csrf) = (&app, &browser, &csrf);
        async move { post_login(app, browser, csrf, &name, &address).await }
    });
    let answers: Vec<reqwest::Response> = join_all(tries)
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();
    let busy: Vec<&reqwest::Response> = answers.iter().filter(|r| r.status() == 503).collect();
    let statuses: Vec<u16> = answers.iter().map(|r| r.status().as_u16()).collect();
    assert!(
        !busy.is_empty(),
        "30 hashes at once on a line of two: {statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 401 | 503)),
        "{statuses:?}"
    );
    for response in busy {
        assert_eq!(response.headers()["retry-after"], "2");
    }
}

backend_tests!(
    a_burst_of_wrong_passwords_gets_no_more_than_the_free_tries_to_the_hash,
    a_burst_of_binds_with_one_token_gets_no_more_than_its_free_tries,
    binds_that_cannot_succeed_are_refused_before_the_throttle_and_the_hash,
    tries_are_counted_per_bind_token_too,
    a_full_hashing_line_answers_503_with_retry_after,
);

// ---------------------------------------------------------------------------
// Sessions: no writes for visitors, none that come back

async fn pages_for_visitors_without_a_session_write_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    for _ in 0..5 {
        let visitor = Browser::new();
        assert_eq!(app.get(&visitor, "/login").await.status, 200);
        assert_eq!(app.get(&visitor, "/").await.status, 200);
        assert_eq!(app.get(&visitor, "/login?next=/orders").await.status, 200);
        let wrong = app
            .post_with_csrf(
                &visitor,
                "/login",
                &[("username", "13000000000"), ("password", "wrong password")],
            )
            .await;
        assert_eq!(wrong.status, 401);
    }
    assert_eq!(app.session_count().await, 0, "no session row for visitors");

    // A session row comes with a login.
    app.sign_up_with_qq(&Browser::new(), &new_openid(), "13800138000")
        .await;
    assert_eq!(app.session_count().await, 1);
}

async fn the_csrf_token_is_renewed_at_login(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, MOBILE, PASSWORD).await;
    let browser = Browser::new();
    let before = app.login_page_csrf(&browser).await;

    let login = app
        .post_form(
            &browser,
            "/login",
            &[
                ("username", MOBILE),
                ("password", PASSWORD),
                ("csrf_token", &before),
            ],
        )
        .await;
    assert_eq!(login.status, 303, "{}", login.body);
    assert!(
        login
            .headers
            .get_all("set-cookie")
            .iter()
            .any(|c| c.to_str().unwrap().starts_with("qqlogin_csrf=")),
        "a new CSRF cookie comes with the login"
    );

    let stale = app
        .post_form(&browser, "/logout", &[("csrf_token", &before)])
        .await;
    assert_eq!(stale.status, 403, "the token from before the login is dead");
    let home = app.get(&browser, "/").await;
    let after = home.field("csrf_token").unwrap();
    assert_ne!(after, before);
    let logout = app
        .post_form(&browser, "/logout", &[("csrf_token", &after)])
        .await;
    assert_eq!(logout.status, 303);
    assert_eq!(app.logged_in_as(&browser).await, None);
}

async fn a_session_ended_meanwhile_is_never_saved_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );

    // A second QQ login in this browser, whose callback will remember a bind
    // in progress in the session. While it waits for QQ, the session ends on
    // the server (a logout in another tab, "end other sessions", an expiry).
    app.qq
        .set_fault_on(Endpoint::UserInfo, Fault::Delay(Duration::from_millis(800)));
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), "小明");
    let asked_before = app.qq.calls_to("/user/get_user_info");
    let end_session = async {
        let asked = eventually(Duration::from_secs(5), async || {
            app.qq.calls_to("/user/get_user_info") > asked_before
        })
        .await;
        assert!(asked, "the callback reached QQ");
        app.db
            .run(|conn| {
                let conn: &mut qqlogin::db::DbConn = conn;
                use diesel::prelude::*;
                Ok(diesel::delete(qqlogin::db::schema::sessions::table).execute(conn)?)
            })
            .await
            .unwrap()
    };
    let (page, ended) = tokio::join!(app.callback(&browser, &code, &state), end_session);
    assert_eq!(ended, 1);
    assert_eq!(page.status, 200, "{}", page.body);

    assert_eq!(
        app.logged_in_as(&browser).await,
        None,
        "a vanished session is a logged-out one"
    );
    let rows: Vec<(String, String)> = app
        .db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            use diesel::prelude::*;
            use qqlogin::db::schema::sessions;
            Ok(sessions::table
                .select((sessions::id, sessions::state))
                .load(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(rows, vec![], "nothing of it was stored again");
}

backend_tests!(
    pages_for_visitors_without_a_session_write_nothing,
    the_csrf_token_is_renewed_at_login,
    a_session_ended_meanwhile_is_never_saved_again,
);

// ---------------------------------------------------------------------------
// Slow and oversized requests

/// Sends `head` (and `body`) on a raw connection, then waits at most
/// `deadline` for the answer's status line.
async fn raw_request(app: &TestApp, head: &str, body: &[u8], deadline: Duration) -> String {
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(deadline, async {
        while !answer.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
        }
    })
    .await;
    assert!(read.is_ok(), "no answer within {deadline:?}");
    String::from_utf8_lossy(&answer).into_owned()
}

#[actix_web::test]
async fn a_body_that_does_not_arrive_in_time_is_408() {
    let app = spawn_app_with(
        Backend::Sqlite,
        Options {
            tweak: Box::new(|config| config.body_timeout = Duration::from_millis(300)),
            ..Options::default()
        },
    )
    .await;
    // One byte of the hundred promised, then nothing (the connection stays open).
    for (path, content_type) in [
        ("/login", "application/x-www-form-urlencoded"),
        ("/oauth/qq/users/", "application/json"),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {content_type}\r\nContent-Length: 100\r\n\r\n"
        );
        let answer = raw_request(&app, &head, b"u", Duration::from_secs(5)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
    }
}

#[actix_web::test]
async fn oversized_headers_are_431() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    let with_cookie = |size: usize| {
        client
            .get(app.url("/login"))
            .header("cookie", format!("junk={}", "x".repeat(size)))
            .send()
    };
    assert_eq!(with_cookie(8 * 1024).await.unwrap().status(), 200);
    let big = with_cookie(64 * 1024).await.unwrap();
    assert_eq!(big.status(), 431);
    for header in [
        "content-security-policy",
        "x-content-type-options",
        "x-frame-options",
    ] {
        assert!(
            big.headers().contains_key(header),
            "a refusal by middleware is a page like every other: {header}"
        );
    }
    assert!(big.text().await.unwrap().contains("请求头过大"));
    let api = client
        .get(app.url("/api/me"))
        .header("x-junk", "x".repeat(20 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), 431);
    let body: Value = api.json().await.unwrap();
    assert!(body["message"].is_string(), "JSON on the API: {body}");
}

// ---------------------------------------------------------------------------
// Smaller ones

async fn cors_answers_only_on_the_json_api(backend: Backend) {
    const FRONT_END: &str = "http://www.meiduo.site:8080";
    let app = spawn_app_with(
        backend,
        Options {
            cors_origins: vec![FRONT_END.to_owned()],
            ..Options::default()
        },
    )
    .await;
    let client = reqwest::Client::new();
    let allowed = |response: &reqwest::Response| {
        response
            .headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap().to_owned())
    };
    let from_front_end = |path: &str| client.get(app.url(path)).header("origin", FRONT_END).send();
    for page in ["/login", "/", "/oauth/qq/login"] {
        let got = from_front_end(page).await.unwrap();
        assert_eq!(allowed(&got), None, "{page} answered CORS");
        let preflight = client
            .request(reqwest::Method::OPTIONS, app.url(page))
            .header("origin", FRONT_END)
            .header("access-control-request-method", "POST")
            .send()
            .await
            .unwrap();
        assert_eq!(allowed(&preflight), None, "{page} answered a preflight");
    }
    for api in ["/oauth/qq/authorization/", "/oauth/qq/users/", "/api/me"] {
        let got = from_front_end(api).await.unwrap();
        assert_eq!(allowed(&got).as_deref(), Some(FRONT_END), "{api}");
    }
}

async fn a_huge_nickname_from_qq_is_cut_and_the_bind_still_works(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), &"长".repeat(20_000));
    let page: Page = app.callback(&browser, &code, &state).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&"长".repeat(64)));
    assert!(
        !page.body.contains(&"长".repeat(65)),
        "cut to 64 characters"
    );

    let done = app.bind(&browser, &page, "13800138000", PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(app.link_count().await, 1);
}

async fn the_development_stand_in_is_not_there_outside_development_mode(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/dev/qq/",
        "/dev/qq/oauth2.0/authorize",
        "/dev/qq/oauth2.0/token",
    ] {
        let page = app.get(&Browser::new(), path).await;
        assert_eq!(page.status, 404, "{path}");
    }
}

backend_tests!(
    cors_answers_only_on_the_json_api,
    a_huge_nickname_from_qq_is_cut_and_the_bind_still_works,
    the_development_stand_in_is_not_there_outside_development_mode,
);

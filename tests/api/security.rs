//! Defences against the attacks of RFC 9700 and OWASP ASVS (authentication,
//! sessions): each test here fails if its defence is taken away.

use std::time::Duration;

use qqlogin::db::DbConn;
use secrecy::SecretString;

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, DbProxy, Options, PASSWORD, Page, TestApp, eventually, new_openid, spawn_app,
    spawn_app_with,
};
use crate::login_flow::create_plain_user;

async fn try_password(app: &TestApp, browser: &Browser, login: &str, password: &str) -> Page {
    app.post_with_csrf(
        browser,
        "/login",
        &[("username", login), ("password", password)],
    )
    .await
}

async fn forms_posted_from_another_site_are_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, "13912345678", PASSWORD).await;
    let browser = Browser::new();
    app.get(&browser, "/login").await;

    // A page on another site auto-submits the login form (login CSRF).
    let forged = browser
        .client
        .post(app.url("/login"))
        .header("origin", "https://evil.example")
        .header("sec-fetch-site", "cross-site")
        .form(&[("username", "13912345678"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("页面已过期"));
    assert_eq!(app.logged_in_as(&browser).await, None);

    let wrong = [
        ("username", "13912345678"),
        ("password", PASSWORD),
        ("csrf_token", "guess"),
    ];
    assert_eq!(app.post_form(&browser, "/login", &wrong).await.status, 403);

    // Logging someone out from another site fails too.
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    let forged = browser
        .client
        .post(app.url("/logout"))
        .header("origin", "https://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );
}

async fn five_wrong_passwords_then_429_alike_for_real_and_unknown_accounts(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, "13912345678", PASSWORD).await;
    let mut answers = Vec::new();
    for login in ["13912345678", "13000000000"] {
        let browser = Browser::new();
        for attempt in 1..=5 {
            let page = try_password(&app, &browser, login, "wrong password").await;
            assert_eq!(page.status, 401, "{login} attempt {attempt}");
        }
        let locked = try_password(&app, &browser, login, "wrong password").await;
        assert_eq!(locked.status, 429, "{login}");
        let retry_after: u64 = locked.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        assert!((1..=15).contains(&retry_after), "{retry_after}");
        // Even the right password waits: the lock is on the name, not the guess.
        let right = try_password(&app, &browser, login, PASSWORD).await;
        assert_eq!(right.status, 429);
        answers.push((
            locked.body.contains("密码错误次数过多"),
            right.body.contains("密码错误次数过多"),
        ));
    }
    assert_eq!(
        answers[0], answers[1],
        "a lock reveals nothing about the account's existence"
    );
}

async fn one_address_trying_many_accounts_is_slowed_down(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    for i in 0..20 {
        let page = try_password(&app, &browser, &format!("1300000{i:04}"), "wrong password").await;
        assert_eq!(page.status, 401, "attempt {i}");
    }
    let page = try_password(&app, &browser, "13099999999", "wrong password").await;
    assert_eq!(page.status, 429, "credential stuffing from one address");
}

async fn wrong_passwords_at_the_bind_form_are_throttled_too(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, "13912345678", PASSWORD).await;
    let browser = Browser::new();
    let mut page = app.qq_login(&browser, &new_openid(), "/").await;
    for _ in 0..5 {
        page = app
            .bind(&browser, &page, "13912345678", "wrong password")
            .await;
        assert_eq!(page.status, 400, "{}", page.body);
    }
    let locked = app.bind(&browser, &page, "13912345678", PASSWORD).await;
    assert_eq!(locked.status, 429);
    assert!(locked.headers.contains_key("retry-after"));
    assert_eq!(app.link_count().await, 0);
}

async fn pages_send_the_security_headers(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    for page in [
        app.get(&browser, "/login").await,
        bind_page,
        app.get(&browser, "/").await,
    ] {
        let csp = page.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("frame-ancestors 'none'") && csp.contains("script-src 'self'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        assert_eq!(page.headers["x-content-type-options"], "nosniff");
        assert_eq!(page.headers["referrer-policy"], "no-referrer");
        assert_eq!(page.headers["cache-control"], "no-store");
        assert!(
            page.body
                .match_indices("<script")
                .all(|(at, _)| page.body[at..].starts_with("<script src=\"/static/")),
            "no inline script"
        );
    }
}

async fn a_login_ends_after_the_absolute_limit_however_busy(backend: Backend) {
    let options = Options {
        tweak: Box::new(|c| c.session_max = Duration::from_secs(2)),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let browser = Browser::new();
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    assert!(app.logged_in_as(&browser).await.is_some());
    // Busy all along (each request resets the idle timer), yet it ends.
    let ended = eventually(Duration::from_secs(10), async || {
        app.logged_in_as(&browser).await.is_none()
    })
    .await;
    assert!(ended, "the session outlived its absolute limit");
}

async fn an_idle_session_expires_on_the_server(backend: Backend) {
    let options = Options {
        tweak: Box::new(|c| c.session_idle = Duration::from_secs(1)),
        ..Options::default()
    };
    let app = spawn_app_with(backend, options).await;
    let browser = Browser::new();
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    let expiry = latest_session_expiry(&app).await;
    let idle = expiry - qqlogin::db::now();
    assert!(
        idle <= time::Duration::seconds(1),
        "the store's expiry is the idle limit: {idle}"
    );
    // Wait, without touching the session, until its expiry has passed.
    assert!(eventually(Duration::from_secs(5), async || qqlogin::db::now() > expiry).await);
    assert_eq!(app.logged_in_as(&browser).await, None);
}

async fn latest_session_expiry(app: &TestApp) -> time::PrimitiveDateTime {
    use diesel::prelude::*;
    use qqlogin::db::schema::sessions;
    app.db
        .run(|conn| {
            let conn: &mut DbConn = conn;
            Ok(sessions::table
                .select(sessions::expires_at)
                .order(sessions::expires_at.desc())
                .first(conn)?)
        })
        .await
        .unwrap()
}

async fn sessions_survive_a_secret_key_rotation(backend: Backend) {
    let first = spawn_app(backend.clone()).await;
    let browser = Browser::new();
    first
        .sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    let cookie = browser.cookie_header(&first.url("/"));

    // The same database, now with a new SECRET_KEY and the old one as previous.
    let options = Options {
        database: Some(first.config.database.clone()),
        tweak: Box::new(|c| {
            c.secret_key_previous = Some(c.secret_key.clone());
            c.secret_key = SecretString::from("rotated-secret-".repeat(6));
        }),
        ..Options::default()
    };
    let rotated = spawn_app_with(backend, options).await;
    let me = reqwest::Client::new()
        .get(rotated.url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        me.status(),
        200,
        "the old cookie still works during the change"
    );

    // Without the previous key, the old cookie is worthless.
    let options = Options {
        database: Some(first.config.database.clone()),
        tweak: Box::new(|c| c.secret_key = SecretString::from("rotated-secret-".repeat(6))),
        ..Options::default()
    };
    let unrotated = spawn_app_with(Backend::Sqlite, options).await;
    let me = reqwest::Client::new()
        .get(unrotated.url("/api/me"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
}

async fn a_bind_that_loses_the_race_after_creating_its_user_leaves_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let openid = new_openid();
    let bind_page = app.qq_login(&browser, &openid, "/").await;
    // Between this person's callback and their bind, another bind links the openid.
    create_plain_user(&app, "13700000000", PASSWORD).await;
    let link_openid = openid.clone();
    app.db
        .run(move |conn| {
            let user = qqlogin::db::user::find_by_login(conn, "13700000000")?.unwrap();
            let link = qqlogin::db::qq_link::NewLink {
                app_id: crate::helpers::APP_ID,
                openid: &link_openid,
                unionid: None,
                nickname: None,
                avatar_url: None,
            };
            qqlogin::db::qq_link::insert(conn, link, user.id)
        })
        .await
        .unwrap();

    let page = app
        .bind(&browser, &bind_page, "13800138000", PASSWORD)
        .await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert_eq!(
        app.user_count().await,
        1,
        "the new user was rolled back with its link"
    );
    assert_eq!(app.link_count().await, 1);
}

async fn hostile_input_gets_a_4xx_never_a_5xx(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    let token = bind_page.field("access_token").unwrap();
    let csrf = bind_page.field("csrf_token").unwrap();
    let nasty = [
        "' OR 1=1 --",
        "<script>alert(1)</script>",
        "\u{0}\u{1}\u{7f}\r\n",
        "😀𝕏\u{202e}",
        &"9".repeat(5000),
        "%FF%FE",
    ];
    for value in nasty {
        let form = [
            ("access_token", token.as_str()),
            ("csrf_token", &csrf),
            ("mobile", value),
            ("password", value),
        ];
        let page = app.post_form(&browser, "/oauth/qq/bind", &form).await;
        assert!(
            (400..500).contains(&page.status),
            "bind {value:?}: {}",
            page.status
        );
        assert!(!page.body.contains("<script>alert"), "escaped");
        let form = [
            ("username", value),
            ("password", value),
            ("csrf_token", &csrf),
            ("next", value),
        ];
        let page = app.post_form(&browser, "/login", &form).await;
        assert!(
            (400..500).contains(&page.status),
            "login {value:?}: {}",
            page.status
        );
    }
    let raw_paths = [
        "/login?next=%FF%FE%00".to_owned(),
        "/oauth/qq/callback?code=%FF&state=%00".to_owned(),
        format!("/login?next={}", "a".repeat(60_000)),
        "/oauth/qq/users/?code=%FF%FE".to_owned(),
    ];
    for path in raw_paths {
        let status = browser
            .client
            .get(app.url(&path))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(400);
        assert!(status < 500, "{}: {status}", &path[..path.len().min(40)]);
    }
    let big_header = browser
        .client
        .get(app.url("/"))
        .header("x-junk", "j".repeat(100_000))
        .send()
        .await;
    assert!(
        big_header
            .map(|r| r.status().as_u16() < 500)
            .unwrap_or(true)
    );
    let non_utf8 = browser
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![0xff, 0xfe, b'=', 0x80])
        .send()
        .await
        .unwrap();
    assert!((400..500).contains(&non_utf8.status().as_u16()));
    assert_eq!(app.user_count().await, 0);
}

backend_tests!(
    forms_posted_from_another_site_are_forbidden,
    five_wrong_passwords_then_429_alike_for_real_and_unknown_accounts,
    one_address_trying_many_accounts_is_slowed_down,
    wrong_passwords_at_the_bind_form_are_throttled_too,
    pages_send_the_security_headers,
    a_login_ends_after_the_absolute_limit_however_busy,
    an_idle_session_expires_on_the_server,
    sessions_survive_a_secret_key_rotation,
    a_bind_that_loses_the_race_after_creating_its_user_leaves_nothing,
    hostile_input_gets_a_4xx_never_a_5xx,
);

/// PostgreSQL going away mid-run and coming back: 503s meanwhile, no restart needed.
#[actix_web::test]
async fn the_database_going_away_gives_503s_and_recovery_without_restart() {
    let Some((proxy, proxied)) = DbProxy::in_front_of_postgres().await else {
        return;
    };
    let app = spawn_app(Backend::Postgres(proxied)).await;
    let browser = Browser::new();
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;

    proxy.cut();
    let down = eventually(Duration::from_secs(10), async || {
        reqwest::get(app.url("/readyz")).await.unwrap().status() == 503
    })
    .await;
    assert!(down, "/readyz noticed");
    let page = app.get(&browser, "/").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("服务暂时不可用"), "{}", page.body);
    assert_eq!(
        reqwest::get(app.url("/healthz")).await.unwrap().status(),
        200
    );

    proxy.restore();
    let up = eventually(Duration::from_secs(10), async || {
        reqwest::get(app.url("/readyz")).await.unwrap().status() == 200
    })
    .await;
    assert!(up, "recovered without a restart");
    let again = Browser::new();
    app.sign_up_with_qq(&again, &new_openid(), "13900000000")
        .await;
    assert_eq!(
        app.logged_in_as(&again).await.as_deref(),
        Some("13900000000")
    );
}

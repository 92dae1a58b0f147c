//! The QQ login through the pages: first time (bind), every time after, and
//! the password login beside it.

use qqlogin::domain::Password;
use qqlogin::password::Hasher;
use secrecy::SecretString;

use crate::backend_tests;
use crate::helpers::{Backend, Browser, PASSWORD, TestApp, new_openid, spawn_app};

/// An account that exists without any QQ link (as one made before QQ login existed).
pub async fn create_plain_user(app: &TestApp, mobile: &str, password: &str) {
    let hash = Hasher::new(1, 8, qqlogin::password::Scheme::Argon2id)
        .unwrap()
        .hash(Password::parse(SecretString::from(password.to_owned())).unwrap())
        .await
        .unwrap();
    let mobile = mobile.to_owned();
    app.db
        .run(move |c| qqlogin::db::user::insert(c, &mobile, &hash))
        .await
        .unwrap();
}

async fn first_qq_login_binds_a_new_account_and_returns_to_next(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let openid = new_openid();

    let bind_page = app.qq_login(&browser, &openid, "/orders?id=7").await;
    assert_eq!(bind_page.status, 200);
    assert!(bind_page.body.contains("绑定账号"), "{}", bind_page.body);
    assert!(
        bind_page.body.contains(&format!("昵称{}", &openid[..4])),
        "the page names the QQ account"
    );
    // And shows its avatar, as https from QQ's host, never the http QQ gave.
    let avatar = bind_page
        .body
        .split("class=\"avatar\" src=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no avatar: {}", bind_page.body));
    assert!(avatar.starts_with("https:"), "{avatar}");
    assert!(avatar.contains("thirdqq.qlogo.cn"), "{avatar}");
    assert_eq!(bind_page.headers["cache-control"], "no-store");

    let done = app
        .bind(&browser, &bind_page, "13800138000", PASSWORD)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/orders?id=7"));
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn a_bound_qq_account_logs_straight_in_next_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    app.sign_up_with_qq(&Browser::new(), &openid, "13800138000")
        .await;
    let user_info_calls = app.qq.calls_to("/user/get_user_info");

    let browser = Browser::new();
    let page = app.qq_login(&browser, &openid, "/cart").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/cart"));
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );
    assert_eq!(
        app.qq.calls_to("/user/get_user_info"),
        user_info_calls,
        "a returning user needs no nickname"
    );
    assert_eq!(app.user_count().await, 1);
}

/// A returning QQ login stores its session in the same write as the
/// look-up: exactly one row, the one the browser's cookie names, which the
/// pages after it read and update in place.
async fn a_returning_qq_login_stores_the_one_session_its_cookie_names(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    app.sign_up_with_qq(&Browser::new(), &openid, "13800138000")
        .await;
    let rows = app.session_count().await;

    let browser = Browser::new();
    let page = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.session_count().await, rows + 1, "one row for the login");
    // The home page adds a CSRF token to the session: an update of that row.
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13800138000")
    );
    assert_eq!(app.session_count().await, rows + 1);
    let csrf = app.get(&browser, "/").await.field("csrf_token").unwrap();
    let out = app
        .post_form(&browser, "/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(app.session_count().await, rows, "logging out removes it");
}

/// A browser that has a session already (a bind it did not finish) gets a
/// new key at login; the old row goes.
async fn a_returning_qq_login_in_a_browser_with_a_session_renews_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    app.sign_up_with_qq(&Browser::new(), &openid, "13800138000")
        .await;
    let browser = Browser::new();
    let unfinished = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(unfinished.status, 200, "the bind page: {}", unfinished.body);
    let (before, rows) = (session_cookie(&app, &browser), app.session_count().await);

    let page = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_ne!(
        session_cookie(&app, &browser),
        before,
        "no session fixation"
    );
    assert_eq!(app.session_count().await, rows, "the old row gave way");
    let home = app.get(&browser, "/").await;
    assert!(home.body.contains("你好，13800138000"), "{}", home.body);
    let bind = app
        .bind(&browser, &unfinished, "13900139000", PASSWORD)
        .await;
    assert_eq!(
        bind.status, 403,
        "the unfinished bind went with the old session"
    );
}

async fn binding_an_existing_mobile_links_that_account(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, "13912345678", PASSWORD).await;
    let browser = Browser::new();
    let openid = new_openid();

    let bind_page = app.qq_login(&browser, &openid, "/").await;
    let done = app
        .bind(&browser, &bind_page, "13912345678", PASSWORD)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));

    let again = Browser::new();
    assert_eq!(app.qq_login(&again, &openid, "/").await.status, 303);
    assert_eq!(
        app.logged_in_as(&again).await.as_deref(),
        Some("13912345678")
    );
}

async fn a_wrong_password_for_an_existing_mobile_shows_the_form_again(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, "13912345678", PASSWORD).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;

    let refused = app
        .bind(&browser, &bind_page, "13912345678", "not the password")
        .await;
    // Without an SMS code the answer does not say the number is registered.
    assert_eq!(refused.status, 400);
    assert!(
        refused
            .body
            .contains("如果这个手机号已经注册，也可以输入它的正确密码"),
        "{}",
        refused.body
    );
    assert_eq!(
        refused.field("mobile").as_deref(),
        Some("13912345678"),
        "what was typed stays"
    );
    assert_eq!(app.link_count().await, 0);
    assert_eq!(app.logged_in_as(&browser).await, None);

    // The form it shows again still works.
    let done = app.bind(&browser, &refused, "13912345678", PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
}

async fn a_badly_filled_bind_form_says_what_is_wrong_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;

    for (mobile, password, reason) in [
        ("12345", PASSWORD, "请输入正确的手机号"),
        ("13800138000' OR '1'='1", PASSWORD, "请输入正确的手机号"),
        ("13800138000", "short", "密码长度应为8到128个字符"),
        (
            "13800138000",
            &"x".repeat(10_000),
            "密码长度应为8到128个字符",
        ),
    ] {
        let refused = app.bind(&browser, &bind_page, mobile, password).await;
        assert_eq!(refused.status, 400, "{mobile}");
        assert!(refused.body.contains(reason), "{mobile}: {}", refused.body);
    }
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn a_mobile_whose_account_has_another_qq_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up_with_qq(&Browser::new(), &new_openid(), "13800138000")
        .await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;

    let refused = app
        .bind(&browser, &bind_page, "13800138000", PASSWORD)
        .await;
    assert_eq!(refused.status, 409);
    assert!(
        refused.body.contains("已经绑定了另一个QQ账号"),
        "{}",
        refused.body
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn the_password_form_logs_in_by_mobile_and_refuses_a_wrong_password(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, "13912345678", PASSWORD).await;

    for (login, password) in [
        ("13912345678", "wrong password"),
        ("13000000000", PASSWORD),
        ("13912345678", "x"),
    ] {
        let browser = Browser::new();
        let form = app.get(&browser, "/login").await;
        let csrf = form.field("csrf_token").unwrap();
        let page = app
            .post_form(
                &browser,
                "/login",
                &[
                    ("username", login),
                    ("password", password),
                    ("csrf_token", &csrf),
                ],
            )
            .await;
        assert_eq!(page.status, 401, "{login}");
        assert!(
            page.body.contains("用户名或密码错误"),
            "one answer for unknown and wrong: {}",
            page.body
        );
    }

    let browser = Browser::new();
    let form = app.get(&browser, "/login?next=/me").await;
    assert!(
        form.body.contains("QQ登录") && form.body.contains("/oauth/qq/login?next=/me"),
        "{}",
        form.body
    );
    let csrf = form.field("csrf_token").unwrap();
    let page = app
        .post_form(
            &browser,
            "/login",
            &[
                ("username", " 13912345678 "),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("next", "/me"),
            ],
        )
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/me"));
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some("13912345678")
    );
}

async fn logging_out_ends_the_session_on_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    let cookie = session_cookie(&app, &browser);

    let home = app.get(&browser, "/").await;
    let csrf = home.field("csrf_token").unwrap();
    let out = app
        .post_form(&browser, "/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303);
    assert_eq!(out.location.as_deref(), Some("/login"));
    assert_eq!(app.logged_in_as(&browser).await, None);

    // The cookie from before logout, replayed from elsewhere, is worthless.
    let replay = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);
}

async fn the_session_id_changes_at_login(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    let before = session_cookie(&app, &browser);
    app.bind(&browser, &bind_page, "13800138000", PASSWORD)
        .await;
    let after = session_cookie(&app, &browser);
    assert_ne!(before, after, "no session fixation");
    let stale = reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("cookie", before)
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 401);
}

async fn next_never_leads_off_the_site(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    app.sign_up_with_qq(&Browser::new(), &openid, "13800138000")
        .await;
    for next in [
        "//evil.example/x",
        "https://evil.example",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
    ] {
        let browser = Browser::new();
        let page = app.qq_login(&browser, &openid, next).await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location.as_deref(), Some("/"), "{next:?}");
    }
}

/// Every cookie of ours: the login form's CSRF token, the QQ login's (pages
/// and API), and the session a login makes.
async fn session_cookies_are_http_only_and_same_site(backend: Backend) {
    let app = spawn_app(backend).await;
    let check = |what: &str, cookie: &str, name: &str| {
        assert!(cookie.starts_with(name), "{what}: {cookie}");
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
            "{what}: {cookie}"
        );
        assert!(!cookie.contains("Secure"), "plain http in tests: {cookie}");
    };
    for (path, name) in [
        ("/login", "qqlogin_csrf="),
        ("/oauth/qq/login", "qqlogin_oauth="),
        ("/oauth/qq/api/login?next=/", "qqlogin_api_oauth="),
    ] {
        let page = app.get(&Browser::new(), path).await;
        let cookie = page.headers["set-cookie"].to_str().unwrap().to_owned();
        check(path, &cookie, name);
    }
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), "小明");
    let bind_page = app.callback(&browser, &code, &state).await;
    let session = bind_page
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .find(|c| c.starts_with("qqlogin_session="))
        .expect("a bind in progress has a session");
    check("the session", &session, "qqlogin_session=");
}

fn session_cookie(app: &TestApp, browser: &Browser) -> String {
    browser.cookie_header(&app.url("/"))
}

async fn a_mistyped_address_gets_a_not_found_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app.get(&Browser::new(), "/no/such/page").await;
    assert_eq!(page.status, 404);
    assert!(
        page.body.contains("页面不存在") && page.body.contains("href=\"/\""),
        "{}",
        page.body
    );
    let api = reqwest::get(app.url("/api/nothing")).await.unwrap();
    assert_eq!(api.status(), 404);
    assert!(
        api.text().await.unwrap().contains("\"message\""),
        "JSON under /api/"
    );
}

/// The page that creates accounts says what is stored and links the
/// operator's privacy notice; the account records when that was agreed to.
async fn the_bind_page_asks_consent_and_the_account_records_it(backend: Backend) {
    let app = crate::helpers::spawn_app_with(
        backend,
        crate::helpers::Options {
            tweak: Box::new(|c| {
                c.privacy_url = Some(url::Url::parse("https://www.example.com/privacy").unwrap());
            }),
            ..crate::helpers::Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    assert!(
        bind_page.body.contains("我们保存你的手机号、密码的哈希值"),
        "{}",
        bind_page.body
    );
    assert!(
        bind_page
            .body
            .contains(r#"<a href="https://www.example.com/privacy" target="_blank" rel="noopener">隐私政策</a>"#),
        "{}",
        bind_page.body
    );

    let done = app
        .bind(&browser, &bind_page, "13800138000", PASSWORD)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let consented: Option<time::PrimitiveDateTime> = app
        .db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            use diesel::prelude::*;
            use qqlogin::db::schema::users;
            Ok(users::table.select(users::consented_at).first(conn)?)
        })
        .await
        .unwrap();
    assert!(consented.is_some(), "the account records its consent");
}

backend_tests!(
    the_bind_page_asks_consent_and_the_account_records_it,
    a_mistyped_address_gets_a_not_found_page,
    first_qq_login_binds_a_new_account_and_returns_to_next,
    a_bound_qq_account_logs_straight_in_next_time,
    a_returning_qq_login_stores_the_one_session_its_cookie_names,
    a_returning_qq_login_in_a_browser_with_a_session_renews_it,
    binding_an_existing_mobile_links_that_account,
    a_wrong_password_for_an_existing_mobile_shows_the_form_again,
    a_badly_filled_bind_form_says_what_is_wrong_and_writes_nothing,
    a_mobile_whose_account_has_another_qq_is_refused,
    the_password_form_logs_in_by_mobile_and_refuses_a_wrong_password,
    logging_out_ends_the_session_on_the_server,
    the_session_id_changes_at_login,
    next_never_leads_off_the_site,
    session_cookies_are_http_only_and_same_site,
);

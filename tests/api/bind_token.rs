//! The bind token: signed, expiring, good only in the browser that finished
//! the callback, and useless once the bind succeeded.

use qqlogin::domain::{LocalPath, OpenId};
use qqlogin::token::{Keys, PendingBind};
use secrecy::SecretString;
use time::OffsetDateTime;

use crate::backend_tests;
use crate::helpers::{Backend, Browser, PASSWORD, SECRET_KEY, new_openid, spawn_app};

async fn submit(
    app: &crate::helpers::TestApp,
    browser: &Browser,
    token: &str,
) -> crate::helpers::Page {
    let form = [
        ("access_token", token),
        ("mobile", "13800138000"),
        ("password", PASSWORD),
    ];
    app.post_with_csrf(browser, "/oauth/qq/bind", &form).await
}

async fn a_tampered_token_is_refused_with_a_way_to_start_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    let token = bind_page.field("access_token").unwrap();
    let mut tampered = token.clone().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    for bad in [tampered.as_str(), "", "not.a.token", &"x".repeat(5_000)] {
        let page = submit(&app, &browser, bad).await;
        assert_eq!(page.status, 400, "{}", &bad[..bad.len().min(20)]);
        assert!(page.body.contains("绑定页面已过期或无效"), "{}", page.body);
        assert!(page.body.contains("重新QQ登录"));
    }
    let huge = submit(&app, &browser, &"x".repeat(50_000)).await;
    assert_eq!(huge.status, 413);
    assert!(
        huge.body.contains("请求过大"),
        "a page, not a bare status: {}",
        huge.body
    );
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn an_expired_token_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    // A real pending bind in this browser, then a token for it signed eleven minutes ago.
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(bind_page.status, 200);
    let keys = Keys::derive(&SecretString::from(SECRET_KEY.to_owned()));
    let pending = PendingBind {
        id: qqlogin::secret::time_ordered_token(),
        openid: OpenId::parse(&new_openid()).unwrap(),
        nickname: None,
        next: LocalPath::home(),
        browser: Some("whatever".into()),
        unionid: None,
        avatar: None,
    };
    let old = keys
        .issue_bind_token(
            &pending,
            OffsetDateTime::now_utc() - time::Duration::minutes(11),
        )
        .unwrap();
    let page = submit(&app, &browser, &old).await;
    assert_eq!(page.status, 400);
    assert_eq!(app.link_count().await, 0);
}

async fn a_token_carried_to_another_browser_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let bind_page = app.qq_login(&Browser::new(), &new_openid(), "/").await;
    let token = bind_page.field("access_token").unwrap();

    let other = Browser::new();
    let page = submit(&app, &other, &token).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("不是在当前浏览器打开的"),
        "{}",
        page.body
    );
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn a_token_that_bound_once_is_useless_afterwards(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(
        app.bind(&browser, &bind_page, "13800138000", PASSWORD)
            .await
            .status,
        303
    );
    let token = bind_page.field("access_token").unwrap();
    let again = submit(&app, &browser, &token).await;
    assert_eq!(again.status, 403);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn a_bind_without_the_form_csrf_token_from_a_browser_is_forbidden(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    let token = bind_page.field("access_token").unwrap();
    let form = [
        ("access_token", token.as_str()),
        ("mobile", "13800138000"),
        ("password", PASSWORD),
    ];
    let forged = browser
        .client
        .post(app.url("/oauth/qq/bind"))
        .header("origin", "https://evil.example")
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    let wrong = [
        ("access_token", token.as_str()),
        ("csrf_token", "guess"),
        ("mobile", "13800138000"),
        ("password", PASSWORD),
    ];
    assert_eq!(
        app.post_form(&browser, "/oauth/qq/bind", &wrong)
            .await
            .status,
        403
    );
    assert_eq!(app.link_count().await, 0);
}

backend_tests!(
    a_tampered_token_is_refused_with_a_way_to_start_again,
    an_expired_token_is_refused,
    a_token_carried_to_another_browser_is_refused,
    a_token_that_bound_once_is_useless_afterwards,
    a_bind_without_the_form_csrf_token_from_a_browser_is_forbidden,
);

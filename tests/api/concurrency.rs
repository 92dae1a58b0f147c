//! Races: many binds of one QQ account at once leave exactly one link and no
//! half-made accounts.

use futures_util::future::join_all;

use crate::backend_tests;
use crate::helpers::{Backend, Browser, PASSWORD, TestApp, new_openid, spawn_app};

/// `binds` browsers at the bind page of one new QQ account, each binding a
/// mobile of its own, all at once: exactly one bind succeeds, the others are
/// told the QQ account is bound.
pub async fn bind_one_qq_account_at_once(app: &TestApp, binds: usize) {
    let openid = new_openid();
    let mut pending = Vec::new();
    for _ in 0..binds {
        let browser = Browser::new();
        let page = app.qq_login(&browser, &openid, "/").await;
        assert_eq!(page.status, 200, "{}", page.body);
        pending.push((browser, page));
    }
    let binds = pending.iter().enumerate().map(|(i, (browser, page))| {
        let mobile = format!("1380013{i:04}");
        async move { app.bind(browser, page, &mobile, PASSWORD).await.status }
    });
    let statuses: Vec<u16> = join_all(binds).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    assert!(
        statuses.iter().all(|s| matches!(s, 303 | 409)),
        "{statuses:?}"
    );
}

async fn concurrent_binds_of_one_openid_make_exactly_one_link(backend: Backend) {
    let app = spawn_app(backend).await;
    bind_one_qq_account_at_once(&app, 8).await;
    assert_eq!(app.link_count().await, 1);
    assert_eq!(
        app.user_count().await,
        1,
        "losers' accounts were rolled back"
    );
}

async fn concurrent_binds_of_one_new_mobile_make_one_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut pending = Vec::new();
    for _ in 0..6 {
        let browser = Browser::new();
        let page = app.qq_login(&browser, &new_openid(), "/").await;
        pending.push((browser, page));
    }
    let binds = pending.iter().map(|(browser, page)| {
        let app = &app;
        async move {
            app.bind(browser, page, "13900000000", PASSWORD)
                .await
                .status
        }
    });
    let statuses: Vec<u16> = join_all(binds).await;
    assert_eq!(
        statuses.iter().filter(|s| **s == 303).count(),
        1,
        "{statuses:?}"
    );
    // Six tries at one mobile at once, with its one SMS code: past its five
    // free tries the throttle answers, and a bind that finds the code used
    // up by the winner is told so (400).
    assert!(
        statuses.iter().all(|s| matches!(s, 303 | 400 | 409 | 429)),
        "{statuses:?}"
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

backend_tests!(
    concurrent_binds_of_one_openid_make_exactly_one_link,
    concurrent_binds_of_one_new_mobile_make_one_account
);

//! `QQ_USE_UNIONID`: links found by QQ's unionid first, so that one person's
//! openids in the developer's several QQ apps share one account.

use diesel::prelude::*;
use qqlogin::db::schema::qq_links;
use qqlogin::qq::stand_in::{Endpoint, Fault};

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, Options, PASSWORD, Page, TestApp, new_openid, spawn_app, spawn_app_with,
};

const MOBILE: &str = "13800138000";

fn with_unionid() -> Options {
    Options {
        tweak: Box::new(|c| c.use_unionid = true),
        ..Options::default()
    }
}

/// A QQ login in a new browser of `openid`, whom QQ knows by `unionid`.
async fn log_in_as(app: &TestApp, openid: &str, unionid: &str) -> (Browser, Page) {
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant_with_unionid(openid, "小明", unionid);
    let page = app.callback(&browser, &code, &state).await;
    (browser, page)
}

/// The unionid stored with the link of `openid`.
async fn stored_unionid(app: &TestApp, openid: &str) -> Option<String> {
    let openid = openid.to_owned();
    app.db
        .run(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(qq_links::table
                .filter(qq_links::openid.eq(openid))
                .select(qq_links::unionid)
                .first::<Option<String>>(conn)?)
        })
        .await
        .unwrap()
}

/// The `unionid` parameters `/oauth2.0/me` was called with, in order.
fn me_asked_for_unionid(app: &TestApp) -> Vec<bool> {
    app.qq
        .calls()
        .iter()
        .filter(|c| c.path.ends_with("/oauth2.0/me"))
        .map(|c| c.param("unionid") == Some("1"))
        .collect()
}

async fn another_openid_of_the_same_person_logs_into_the_same_account(backend: Backend) {
    let app = spawn_app_with(backend, with_unionid()).await;
    let (first_openid, second_openid) = (new_openid(), new_openid());
    let (browser, bind_page) = log_in_as(&app, &first_openid, "UNION_ONE").await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    let done = app.bind(&browser, &bind_page, MOBILE, PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        stored_unionid(&app, &first_openid).await.as_deref(),
        Some("UNION_ONE")
    );

    // The company's other app: another openid, the same unionid.
    let (other, page) = log_in_as(&app, &second_openid, "UNION_ONE").await;

    assert_eq!(page.status, 303, "straight in, no bind page: {}", page.body);
    assert_eq!(app.logged_in_as(&other).await.as_deref(), Some(MOBILE));
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
    assert!(me_asked_for_unionid(&app).iter().all(|asked| *asked));
}

async fn a_link_made_by_openid_gains_its_unionid_at_the_next_login(backend: Backend) {
    let before = spawn_app(backend.clone()).await;
    let openid = new_openid();
    before
        .sign_up_with_qq(&Browser::new(), &openid, MOBILE)
        .await;
    assert_eq!(stored_unionid(&before, &openid).await, None);
    assert!(!me_asked_for_unionid(&before).iter().any(|asked| *asked));

    // The operator switches QQ_USE_UNIONID on: the same database, no re-keying.
    let after = spawn_app_with(
        backend,
        Options {
            database: Some(before.config.database.clone()),
            ..with_unionid()
        },
    )
    .await;
    let (browser, page) = log_in_as(&after, &openid, "UNION_TWO").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(after.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    assert_eq!(
        stored_unionid(&after, &openid).await.as_deref(),
        Some("UNION_TWO")
    );

    let (other, page) = log_in_as(&after, &new_openid(), "UNION_TWO").await;
    assert_eq!(page.status, 303, "found by its new unionid: {}", page.body);
    assert_eq!(after.logged_in_as(&other).await.as_deref(), Some(MOBILE));
}

async fn without_the_unionid_permission_logins_go_on_by_openid(backend: Backend) {
    let app = spawn_app_with(backend, with_unionid()).await;
    app.qq
        .set_fault_on(Endpoint::Me, Fault::NoUnionidPermission);
    let openid = new_openid();

    let (browser, bind_page) = log_in_as(&app, &openid, "UNION_THREE").await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    assert_eq!(
        me_asked_for_unionid(&app),
        [true, false],
        "asked, refused, by openid"
    );
    let done = app.bind(&browser, &bind_page, MOBILE, PASSWORD).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(stored_unionid(&app, &openid).await, None);

    // QQ said no once: later logins do not ask again.
    let (_, page) = log_in_as(&app, &openid, "UNION_THREE").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(me_asked_for_unionid(&app), [true, false, false]);
}

backend_tests!(
    another_openid_of_the_same_person_logs_into_the_same_account,
    a_link_made_by_openid_gains_its_unionid_at_the_next_login,
    without_the_unionid_permission_logins_go_on_by_openid,
);

//! The callback's `state`: single use, tied to the browser that started the
//! login, and checked before anything is asked of QQ.

use crate::backend_tests;
use crate::helpers::{Backend, Browser, Page, new_openid, spawn_app};

async fn a_callback_without_a_started_login_is_refused_before_calling_qq(backend: Backend) {
    let app = spawn_app(backend).await;
    let code = app.qq.grant(&new_openid(), "小明");
    let page = app.callback(&Browser::new(), &code, "made-up-state").await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("登录请求已失效"), "{}", page.body);
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 0);
}

async fn a_wrong_or_missing_state_is_refused_before_calling_qq(backend: Backend) {
    let app = spawn_app(backend).await;
    for bad_state in ["wrong", ""] {
        let browser = Browser::new();
        app.start_qq_login(&browser, "/").await;
        let code = app.qq.grant(&new_openid(), "小明");
        let page = app.callback(&browser, &code, bad_state).await;
        assert_eq!(page.status, 400, "{bad_state:?}");
        assert!(page.body.contains("无法确认登录请求"), "{}", page.body);
    }
    let browser = Browser::new();
    app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), "小明");
    let page = app
        .get(&browser, &format!("/oauth/qq/callback?code={code}"))
        .await;
    assert_eq!(page.status, 400);
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 0);
}

/// A state works for one callback: the second is refused by the server's
/// record of used states, even from a browser that sends its cookie again.
async fn a_state_works_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let kept = browser.cookie_header(&app.url("/oauth/qq/callback"));
    let first = app
        .callback(&browser, &app.qq.grant(&new_openid(), "a"), &state)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(app.used_state_count().await, 1, "the server remembers it");

    let code = app.qq.grant(&new_openid(), "b");
    let again = Page::from(
        browser
            .client
            .get(app.url(&format!(
                "/oauth/qq/callback?code={code}&state={}",
                crate::helpers::urlencode(&state)
            )))
            .header("Cookie", &kept)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(again.status, 400);
    assert!(again.body.contains("登录请求已失效"), "{}", again.body);
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 1);
}

/// Someone who kept a copy of the login cookie (a shared computer, a proxy
/// log) cannot use its state a second time: the server remembers it.
async fn a_replayed_login_cookie_cannot_use_its_state_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let kept_cookies = browser.cookie_header(&app.url("/oauth/qq/callback"));
    assert!(kept_cookies.contains("qqlogin_oauth="), "{kept_cookies}");
    let first = app
        .callback(&browser, &app.qq.grant(&new_openid(), "a"), &state)
        .await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert_eq!(app.used_state_count().await, 1);

    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let code = app.qq.grant(&new_openid(), "b");
    let again = replay
        .get(app.url(&format!(
            "/oauth/qq/callback?code={code}&state={}",
            crate::helpers::urlencode(&state)
        )))
        .header("Cookie", &kept_cookies)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("登录请求已失效"));
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 1, "QQ was asked again");
}

/// Leaving for QQ costs the server nothing: the attempt rides in its own
/// encrypted cookie, which the way back clears.
async fn leaving_for_qq_writes_nothing_on_the_server(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    for _ in 0..3 {
        app.start_qq_login(&browser, "/").await;
    }
    assert_eq!(app.session_count().await, 0);
    assert_eq!(app.used_state_count().await, 0);

    let openid = new_openid();
    app.sign_up_with_qq(&browser, &openid, "13800138000").await;
    let page = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert!(
        !browser
            .cookie_header(&app.url("/"))
            .contains("qqlogin_oauth="),
        "the used attempt's cookie was not cleared"
    );
}

async fn a_state_from_another_browser_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let attacker = Browser::new();
    let state = app.start_qq_login(&attacker, "/").await;
    let code = app.qq.grant(&new_openid(), "attacker");

    // The victim's browser is made to open the attacker's callback URL.
    let victim = Browser::new();
    app.start_qq_login(&victim, "/").await;
    let page = app.callback(&victim, &code, &state).await;
    assert_eq!(page.status, 400);
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 0);
    assert_eq!(app.logged_in_as(&victim).await, None);
}

async fn qq_sending_the_person_back_without_a_code_says_so(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let page = app
        .get(&browser, &format!("/oauth/qq/callback?state={state}"))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("QQ没有完成授权"), "{}", page.body);
}

async fn the_authorize_redirect_carries_what_qq_needs(backend: Backend) {
    let app = spawn_app(backend).await;
    let page = app.get(&Browser::new(), "/oauth/qq/login?next=/x").await;
    let location = url::Url::parse(page.location.as_deref().unwrap()).unwrap();
    assert!(
        location
            .as_str()
            .starts_with(&format!("{}/oauth2.0/authorize?", app.qq.base_url)),
        "{location}"
    );
    let q: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(q["response_type"], "code");
    assert_eq!(q["client_id"], crate::helpers::APP_ID);
    assert_eq!(q["redirect_uri"], app.config.redirect_uri.as_str());
    assert_eq!(q["scope"], "get_user_info");
    assert!(q["state"].len() >= 43, "256 bits of state");
    assert!(!q.contains_key("display"));

    let phone = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .user_agent("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Mobile/15E148")
        .build()
        .unwrap();
    let response = phone.get(app.url("/oauth/qq/login")).send().await.unwrap();
    let location = response.headers()["location"].to_str().unwrap();
    assert!(location.contains("display=mobile"), "{location}");
}

/// Each login's rows (its used state, its session) sort after the previous
/// login's, so that a burst of logins appends to the tables' b-trees instead
/// of writing a random page each; the keys still hold no usable secret.
async fn the_rows_of_later_logins_sort_after_earlier_ones(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut states = Vec::new();
    for _ in 0..3 {
        let browser = Browser::new();
        let state = app.start_qq_login(&browser, "/").await;
        let code = app.qq.grant(&new_openid(), "小明");
        assert_eq!(app.callback(&browser, &code, &state).await.status, 200);
        states.push(state);
    }
    for table in ["used_oauth_states", "sessions"] {
        let keys = app.keys_by_age(table).await;
        assert_eq!(keys.len(), 3, "{table}");
        // Two logins in one millisecond share a prefix: their order is free.
        let times: Vec<&str> = keys
            .iter()
            .map(|k| k.split_once('.').map_or("", |(time, _)| time))
            .collect();
        assert!(times.iter().all(|t| t.len() == 12), "{table}: {keys:?}");
        assert!(
            times.is_sorted(),
            "{table}: keys not in the order of the logins: {keys:?}"
        );
    }
    for (state, key) in states
        .iter()
        .zip(app.keys_by_age("used_oauth_states").await)
    {
        assert!(
            !key.contains(state.split('.').nth(1).unwrap_or(state)),
            "{key}"
        );
    }
}

backend_tests!(
    the_rows_of_later_logins_sort_after_earlier_ones,
    a_callback_without_a_started_login_is_refused_before_calling_qq,
    a_wrong_or_missing_state_is_refused_before_calling_qq,
    a_state_works_once,
    a_replayed_login_cookie_cannot_use_its_state_again,
    leaving_for_qq_writes_nothing_on_the_server,
    a_state_from_another_browser_is_refused,
    qq_sending_the_person_back_without_a_code_says_so,
    the_authorize_redirect_carries_what_qq_needs,
);

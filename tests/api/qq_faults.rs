//! QQ refusing, failing, slow or answering garbage: a clear page within the
//! time-out, nothing written, and the service answering meanwhile.

use std::time::{Duration, Instant};

use crate::backend_tests;
use crate::helpers::{Backend, Browser, Options, new_openid, spawn_app, spawn_app_with};
use qqlogin::qq::stand_in::{Endpoint, Fault};

async fn a_reused_code_asks_the_person_to_start_again(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), "小明");
    assert_eq!(app.callback(&browser, &code, &state).await.status, 200);

    // The same code again, through a fresh state (a refreshed page).
    let state = app.start_qq_login(&browser, "/").await;
    let page = app.callback(&browser, &code, &state).await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("QQ授权已失效"), "{}", page.body);
    assert!(page.body.contains("重新点击“QQ登录”"), "{}", page.body);
}

async fn every_kind_of_qq_failure_is_a_clear_page_and_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    // What the person is told for each: QQ refusing the code asks them to start
    // again (400); QQ failing says QQ is unavailable for now (503).
    const REFUSED: (u16, &str) = (400, "QQ授权已失效");
    const DOWN: (u16, &str) = (503, "QQ登录暂时不可用");
    let faults = [
        (Endpoint::Token, Fault::Status(500), DOWN),
        (Endpoint::Token, Fault::Garbage, DOWN),
        (Endpoint::Token, Fault::Html, DOWN),
        (Endpoint::Token, Fault::Empty, DOWN),
        (Endpoint::Token, Fault::Huge, DOWN),
        (
            Endpoint::Token,
            Fault::ApiError {
                code: 100013,
                description: "access token is illegal".into(),
            },
            REFUSED,
        ),
        (
            Endpoint::Me,
            Fault::ApiError {
                code: 100016,
                description: "access token check failed".into(),
            },
            REFUSED,
        ),
        (Endpoint::Me, Fault::MeWrongClientId, DOWN),
        (Endpoint::Me, Fault::Status(502), DOWN),
        (Endpoint::Me, Fault::Garbage, DOWN),
    ];
    for (endpoint, fault, (status, title)) in faults {
        let label = format!("{endpoint:?} {fault:?}");
        app.qq.clear_faults();
        app.qq.set_fault_on(endpoint, fault);
        let browser = Browser::new();
        let page = app.qq_login(&browser, &new_openid(), "/").await;
        assert_eq!(page.status, status, "{label}: {}", page.body);
        assert!(
            page.body.contains(&format!("<h1>{title}</h1>")),
            "{label}: the person is told {title}: {}",
            page.body
        );
        assert!(
            !page.body.contains("panicked") && !page.body.contains("Error"),
            "{label}: {}",
            page.body
        );
        assert!(
            page.body.contains("href=\"/login\""),
            "{label}: a way forward"
        );
        assert_eq!(app.logged_in_as(&browser).await, None, "{label}");
    }
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn user_info_failing_still_lets_the_person_bind(backend: Backend) {
    let app = spawn_app(backend).await;
    app.qq
        .set_fault_on(Endpoint::UserInfo, Fault::UserInfoError);
    let browser = Browser::new();
    let page = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("绑定账号"));
}

async fn a_slow_qq_gets_an_answer_within_the_time_out_while_health_checks_answer(backend: Backend) {
    let timeout = Duration::from_millis(500);
    let app = spawn_app_with(
        backend,
        Options {
            qq_timeout: timeout,
            ..Options::default()
        },
    )
    .await;
    app.qq
        .set_fault_on(Endpoint::Token, Fault::Delay(Duration::from_secs(30)));
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), "慢");

    let started = Instant::now();
    let slow = app.callback(&browser, &code, &state);
    let health = async {
        // While the callback waits on QQ, the service still answers.
        let response = reqwest::get(app.url("/healthz")).await.unwrap();
        (response.status().as_u16(), started.elapsed())
    };
    let (page, (health_status, health_after)) = tokio::join!(slow, health);
    let took = started.elapsed();

    assert_eq!(health_status, 200);
    assert!(
        health_after < timeout,
        "healthz waited on QQ: {health_after:?}"
    );
    assert_eq!(page.status, 503);
    assert!(page.body.contains("QQ暂时没有响应"), "{}", page.body);
    assert!(
        took >= timeout && took < timeout * 6,
        "answered after {took:?}"
    );
}

async fn a_qq_that_resets_the_connection_gets_a_clear_page(backend: Backend) {
    // A "QQ" that accepts and hangs up at once, before answering anything.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let graph_url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let tweak = Box::new(move |c: &mut qqlogin::config::Config| {
        if let qqlogin::config::QqMode::Real { graph_url: url, .. } = &mut c.qq {
            *url = url::Url::parse(&graph_url).unwrap();
        }
    });
    let app = spawn_app_with(
        backend,
        Options {
            tweak,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let page = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(page.body.contains("QQ登录暂时不可用"), "{}", page.body);
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn a_stalled_user_info_stays_within_the_one_budget_for_qq(backend: Backend) {
    let timeout = Duration::from_millis(1500);
    let app = spawn_app_with(
        backend,
        Options {
            qq_timeout: timeout,
            ..Options::default()
        },
    )
    .await;
    // The token costs two thirds of the budget; the nickname then gets only what is left.
    app.qq
        .set_fault_on(Endpoint::Token, Fault::Delay(Duration::from_millis(1000)));
    app.qq
        .set_fault_on(Endpoint::UserInfo, Fault::Delay(Duration::from_secs(30)));
    let browser = Browser::new();
    let state = app.start_qq_login(&browser, "/").await;
    let code = app.qq.grant(&new_openid(), "慢");
    let started = Instant::now();
    let page = app.callback(&browser, &code, &state).await;
    let took = started.elapsed();
    assert_eq!(
        page.status, 200,
        "binding goes on without a nickname: {}",
        page.body
    );
    assert!(
        page.body.contains("绑定账号") && !page.body.contains("你正在用QQ账号"),
        "{}",
        page.body
    );
    // A fresh time-out for the nickname would make it 2.5 s.
    assert!(
        took < Duration::from_millis(2100),
        "the login took {took:?}"
    );
}

backend_tests!(
    a_stalled_user_info_stays_within_the_one_budget_for_qq,
    a_qq_that_resets_the_connection_gets_a_clear_page,
    a_reused_code_asks_the_person_to_start_again,
    every_kind_of_qq_failure_is_a_clear_page_and_writes_nothing,
    user_info_failing_still_lets_the_person_bind,
    a_slow_qq_gets_an_answer_within_the_time_out_while_health_checks_answer,
);

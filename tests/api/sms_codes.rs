//! SMS codes: a new account's mobile is proven before the account exists
//! (issue 22). Codes come from the service's `webhook` sender, received by
//! the test's own signed-webhook inbox.

use std::time::Duration;

use diesel::prelude::*;
use qqlogin::config::BindRequireSms;
use qqlogin::db::schema::sms_codes;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, Options, PASSWORD, Page, TestApp, new_openid, spawn_app, spawn_app_with,
};

const MOBILE: &str = "13800138000";
const NOT_PROVEN: &str = "请获取并填写短信验证码；如果这个手机号已经注册，也可以输入它的正确密码。";
const CODE_INVALID: &str = "短信验证码错误、已过期或已经用过，请重新获取。";

/// A browser on the bind page of a new QQ account.
async fn on_the_bind_page(app: &TestApp) -> (Browser, Page) {
    let browser = Browser::new();
    let page = app.qq_login(&browser, &new_openid(), "/orders").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("name=\"sms_code\""), "{}", page.body);
    (browser, page)
}

/// An API bind token for a new QQ account (under the legacy exchange, which
/// needs no browser: the bind is what is tested here).
async fn api_token(app: &TestApp) -> String {
    let code = app.qq.grant(&new_openid(), "小明");
    let answer: Value = reqwest::get(app.url(&format!("/oauth/qq/users/?code={code}")))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["access_token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_owned()
}

fn legacy() -> Options {
    Options {
        tweak: Box::new(|c| c.api_unbound_login = true),
        ..Options::default()
    }
}

async fn api_bind(app: &TestApp, body: Value) -> (u16, Value) {
    let response = reqwest::Client::new()
        .post(app.url("/oauth/qq/users/"))
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

async fn create_account(app: &TestApp, mobile: &'static str) {
    let hasher = qqlogin::password::Hasher::new(1, 8, qqlogin::password::Scheme::Argon2id).unwrap();
    let password = qqlogin::domain::Password::parse(secrecy::SecretString::from(PASSWORD)).unwrap();
    let hash = hasher.hash(password).await.unwrap();
    app.db
        .run(move |conn| qqlogin::db::user::insert(conn, mobile, &hash))
        .await
        .unwrap();
}

/// Moves the mobile's code's clock: its send and expiry `by` earlier.
async fn age_code(app: &TestApp, mobile: &'static str, by: Duration) {
    let by = time::Duration::try_from(by).unwrap();
    app.db
        .run(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            let row = sms_codes::table.find(mobile);
            let (sent, expires): (time::PrimitiveDateTime, time::PrimitiveDateTime) = row
                .select((sms_codes::sent_at, sms_codes::expires_at))
                .first(conn)?;
            diesel::update(row)
                .set((
                    sms_codes::sent_at.eq(sent - by),
                    sms_codes::expires_at.eq(expires - by),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

// ---------------------------------------------------------------------------
// The page

async fn a_new_mobile_binds_with_the_code_sent_to_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, page) = on_the_bind_page(&app).await;

    let sent = app.press_send_sms(&browser, &page, MOBILE).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.body.contains("验证码已发送到 138****8000"),
        "{}",
        sent.body
    );
    assert_eq!(
        sent.field("mobile").as_deref(),
        Some(MOBILE),
        "the mobile is kept"
    );
    assert!(
        sent.body.contains("data-wait=\"60\""),
        "the button counts down"
    );
    let code = app.sms.code_for(MOBILE).await.expect("the code was sent");
    assert!(
        !sent.body.contains(&code),
        "only the development sender shows it"
    );

    let done = app
        .bind_with_code(&browser, &sent, MOBILE, PASSWORD, Some(&code))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/orders"));
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
    assert_eq!(code_rows(&app).await, 0, "the bind used the code up");
}

async fn without_a_code_a_new_mobile_and_a_wrong_password_look_the_same(backend: Backend) {
    let app = spawn_app(backend).await;
    create_account(&app, "13900139000").await;
    let (browser, page) = on_the_bind_page(&app).await;

    let unregistered = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, None)
        .await;
    let wrong_password = app
        .bind_with_code(&browser, &page, "13900139000", "not the password", None)
        .await;

    assert_eq!(unregistered.status, 400, "{}", unregistered.body);
    assert_eq!(wrong_password.status, unregistered.status);
    assert!(
        unregistered.body.contains(NOT_PROVEN),
        "{}",
        unregistered.body
    );
    assert!(
        wrong_password.body.contains(NOT_PROVEN),
        "{}",
        wrong_password.body
    );
    assert!(!wrong_password.body.contains("已经注册，但密码不正确"));
    assert_eq!((app.user_count().await, app.link_count().await), (1, 0));

    // The registered number's owner still binds with the password alone.
    let done = app
        .bind_with_code(&browser, &page, "13900139000", PASSWORD, None)
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn wrong_expired_and_used_codes_create_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, page) = on_the_bind_page(&app).await;
    let code = app.page_sms_code(&browser, &page, MOBILE).await;
    let wrong = if code == "000000" { "000001" } else { "000000" };

    let refused = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, Some(wrong))
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains(CODE_INVALID), "{}", refused.body);
    assert_eq!(refused.field("mobile").as_deref(), Some(MOBILE));

    age_code(&app, MOBILE, Duration::from_secs(5 * 60)).await;
    let expired = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, Some(&code))
        .await;
    assert_eq!(expired.status, 400, "{}", expired.body);
    assert!(expired.body.contains(CODE_INVALID), "{}", expired.body);
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));

    // A fresh code works once; a second QQ account cannot reuse it.
    let code = app.page_sms_code(&browser, &page, MOBILE).await;
    let done = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, Some(&code))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let (other, other_page) = on_the_bind_page(&app).await;
    let reused = app
        .bind_with_code(&other, &other_page, "13700137000", PASSWORD, Some(&code))
        .await;
    assert_eq!(reused.status, 400, "{}", reused.body);
    assert!(reused.body.contains(CODE_INVALID), "{}", reused.body);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn five_wrong_tries_end_a_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, page) = on_the_bind_page(&app).await;
    let code = app.page_sms_code(&browser, &page, MOBILE).await;
    let wrong: Vec<String> = (0..10)
        .map(|n| format!("{n:06}"))
        .filter(|c| *c != code)
        .take(5)
        .collect();

    for guess in &wrong {
        let refused = app
            .bind_with_code(&browser, &page, MOBILE, PASSWORD, Some(guess))
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
    let too_late = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, Some(&code))
        .await;

    assert_eq!(too_late.status, 400, "{}", too_late.body);
    assert!(too_late.body.contains(CODE_INVALID), "{}", too_late.body);
    assert_eq!(app.user_count().await, 0);
}

async fn codes_are_stored_as_keyed_hashes(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, page) = on_the_bind_page(&app).await;
    let code = app.page_sms_code(&browser, &page, MOBILE).await;

    let stored: String = app
        .db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(sms_codes::table
                .find(MOBILE)
                .select(sms_codes::code_hash)
                .first(conn)?)
        })
        .await
        .unwrap();
    assert!(!stored.contains(&code), "{stored}");
    assert_eq!(stored.len(), 64, "hex HMAC-SHA256: {stored}");
}

async fn always_asks_a_code_of_existing_accounts_too(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            tweak: Box::new(|c| c.sms.bind_require = BindRequireSms::Always),
            ..Options::default()
        },
    )
    .await;
    create_account(&app, MOBILE).await;
    let (browser, page) = on_the_bind_page(&app).await;

    let refused = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, None)
        .await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("请点击“获取验证码”"),
        "{}",
        refused.body
    );
    assert_eq!(app.link_count().await, 0);

    let code = app.page_sms_code(&browser, &page, MOBILE).await;
    let done = app
        .bind_with_code(&browser, &page, MOBILE, PASSWORD, Some(&code))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

// ---------------------------------------------------------------------------
// Limits and senders

async fn one_code_a_minute_per_mobile(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, page) = on_the_bind_page(&app).await;
    app.page_sms_code(&browser, &page, MOBILE).await;

    let again = app.press_send_sms(&browser, &page, MOBILE).await;
    assert_eq!(again.status, 429, "{}", again.body);
    let retry: u64 = again.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(again.body.contains("一分钟后"), "{}", again.body);
    assert!(again.body.contains(&format!("data-wait=\"{retry}\"")));

    let token = app.api_access_token(&new_openid()).await;
    let api = app.ask_sms_code(MOBILE, &[("access_token", &token)]).await;
    assert_eq!(api.status(), 429);
    assert!(api.headers().contains_key("retry-after"));
    assert_eq!(app.sms.calls(), 1, "one message went out");

    age_code(&app, MOBILE, Duration::from_secs(60)).await;
    assert_eq!(
        app.press_send_sms(&browser, &page, MOBILE).await.status,
        200
    );
    assert_eq!(app.sms.calls(), 2);
}

async fn daily_caps_per_mobile_address_and_qq_account(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            tweak: Box::new(|c| {
                c.sms.daily_per_mobile = 2;
                c.sms.daily_per_address = 4;
            }),
            ..Options::default()
        },
    )
    .await;
    let token = app.api_access_token(&new_openid()).await;
    let ask = |mobile: &'static str| {
        let (app, token) = (&app, token.clone());
        async move {
            app.ask_sms_code(mobile, &[("access_token", &token)])
                .await
                .status()
                .as_u16()
        }
    };

    assert_eq!(ask(MOBILE).await, 200);
    age_code(&app, MOBILE, Duration::from_secs(60)).await;
    assert_eq!(ask(MOBILE).await, 200);
    age_code(&app, MOBILE, Duration::from_secs(60)).await;
    let capped = app.ask_sms_code(MOBILE, &[("access_token", &token)]).await;
    assert_eq!(capped.status(), 429, "the mobile's cap");
    let retry: u64 = capped.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry > 0 && retry <= 24 * 3600, "{retry}");
    let message: Value = capped.json().await.unwrap();
    assert!(
        message["message"].as_str().unwrap().contains("明天"),
        "{message}"
    );

    assert_eq!(ask("13900139000").await, 200);
    assert_eq!(ask("13700137000").await, 200);
    assert_eq!(ask("13600136000").await, 429, "the address's cap (4 a day)");
    assert_eq!(app.sms.calls(), 4);
}

async fn a_qq_account_has_a_daily_cap_across_mobiles(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = app.api_access_token(&new_openid()).await;
    let mut statuses = Vec::new();
    for n in 0..11 {
        let mobile = format!("1390000{n:04}");
        let response = app.ask_sms_code(&mobile, &[("access_token", &token)]).await;
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[..10], [200; 10]);
    assert_eq!(statuses[10], 429, "{statuses:?}");
}

async fn a_sender_down_is_a_clear_503_that_costs_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, page) = on_the_bind_page(&app).await;
    app.sms.set_down(true);

    let failed = app.press_send_sms(&browser, &page, MOBILE).await;
    assert_eq!(failed.status, 503, "{}", failed.body);
    assert!(failed.body.contains("稍后"), "{}", failed.body);
    assert_eq!(failed.field("mobile").as_deref(), Some(MOBILE));
    assert_eq!(code_rows(&app).await, 0, "no code is left behind");

    // Nothing was counted: the next press, at once, sends.
    app.sms.set_down(false);
    let sent = app.press_send_sms(&browser, &page, MOBILE).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(app.sms.code_for(MOBILE).await.is_some());
}

// ---------------------------------------------------------------------------
// The JSON API

async fn the_api_binds_a_new_mobile_with_its_code(backend: Backend) {
    let app = spawn_app_with(backend, legacy()).await;
    let token = api_token(&app).await;

    let (status, answer) = api_bind(
        &app,
        json!({ "mobile": MOBILE, "password": PASSWORD, "access_token": token }),
    )
    .await;
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["message"], NOT_PROVEN);
    assert_eq!(app.user_count().await, 0);

    let code = app.api_sms_code(&token, MOBILE).await;
    let (status, answer) = api_bind(
        &app,
        json!({ "mobile": MOBILE, "password": PASSWORD, "sms_code": code, "access_token": token }),
    )
    .await;
    assert_eq!(status, 201, "{answer}");
    assert_eq!(answer["id"], answer["user_id"]);
    assert_eq!(answer["mobile"], MOBILE);
    assert_eq!(answer["username"], MOBILE);
    assert!(answer["token"].as_str().is_some());
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn the_api_says_which_code_is_wrong(backend: Backend) {
    let app = spawn_app_with(backend, legacy()).await;
    let token = api_token(&app).await;
    let code = app.api_sms_code(&token, MOBILE).await;
    let wrong = if code == "999999" { "999998" } else { "999999" };

    for (sms_code, message) in [
        (wrong, CODE_INVALID),
        ("12345", "短信验证码是6位数字，请检查后重新输入。"),
    ] {
        let (status, answer) = api_bind(
            &app,
            json!({ "mobile": MOBILE, "password": PASSWORD, "sms_code": sms_code, "access_token": token }),
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["message"], message);
    }
    assert_eq!(app.user_count().await, 0);
}

async fn codes_are_sent_only_to_someone_in_a_bind(backend: Backend) {
    let app = spawn_app(backend).await;

    let nobody = app.ask_sms_code(MOBILE, &[]).await;
    assert_eq!(nobody.status(), 400);
    let forged = app
        .ask_sms_code(MOBILE, &[("access_token", "not.a.token")])
        .await;
    assert_eq!(forged.status(), 400);
    let wrong_image = app
        .ask_sms_code(
            MOBILE,
            &[
                ("image_code_id", "3f1c2a9e-8b7d-4c6e-9a5f-1e2d3c4b5a69"),
                ("text", "ABCD"),
            ],
        )
        .await;
    assert_eq!(wrong_image.status(), 400);
    let bad_mobile = app.ask_sms_code("12345", &[]).await;
    assert_eq!(bad_mobile.status(), 400);
    assert_eq!(app.sms.calls(), 0);

    // A right image code, as the original front end sends it: once.
    let id = "9b2f7c1e-4d3a-4e5f-8a6b-0c1d2e3f4a5b";
    let image = reqwest::get(app.url(&format!("/image_codes/{id}/")))
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    let answer = qqlogin::image_code::ImageCodes::new(app.db.clone())
        .answer_for_tests(&qqlogin::domain::ImageCodeId::parse(id).unwrap())
        .await
        .expect("the image's answer");
    let query = [("image_code_id", id), ("text", answer.as_str())];
    assert_eq!(app.ask_sms_code(MOBILE, &query).await.status(), 200);
    assert!(app.sms.code_for(MOBILE).await.is_some());
    let again = app.ask_sms_code("13900139000", &query).await;
    assert_eq!(again.status(), 400, "an image code is good once");

    let ungated = spawn_app_with(
        Backend::Sqlite,
        Options {
            tweak: Box::new(|c| c.sms.ungated = true),
            ..Options::default()
        },
    )
    .await;
    let anyone = ungated.ask_sms_code(MOBILE, &[]).await;
    assert_eq!(anyone.status(), 200);
    assert!(ungated.sms.code_for(MOBILE).await.is_some());
}

async fn a_code_sent_by_one_instance_is_checked_by_another(backend: Backend) {
    let first = spawn_app_with(backend.clone(), legacy()).await;
    let second = spawn_app_with(
        backend,
        Options {
            database: Some(first.config.database.clone()),
            tweak: Box::new(|c| c.api_unbound_login = true),
            ..Options::default()
        },
    )
    .await;
    let token = api_token(&first).await;
    let code = first.api_sms_code(&token, MOBILE).await;

    let (status, answer) = api_bind(
        &second,
        json!({ "mobile": MOBILE, "password": PASSWORD, "sms_code": code, "access_token": token }),
    )
    .await;

    assert_eq!(status, 201, "{answer}");
    assert_eq!(first.user_count().await, 1);
}

async fn development_mode_shows_the_code_on_the_page(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            dev_mode: true,
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let open = async |url: &str| Page::from(browser.client.get(url).send().await.unwrap()).await;
    let to_qq = app.get(&browser, "/oauth/qq/login").await;
    let qq_page = open(to_qq.location.as_deref().unwrap()).await;
    let form = [
        ("client_id", qq_page.field("client_id").unwrap()),
        ("redirect_uri", qq_page.field("redirect_uri").unwrap()),
        ("state", qq_page.field("state").unwrap()),
        ("nickname", "开发者".to_owned()),
    ];
    let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let back = app
        .post_form(&browser, "/dev/qq/oauth2.0/authorize", &form)
        .await;
    let page = open(back.location.as_deref().unwrap()).await;
    assert_eq!(page.status, 200, "{}", page.body);

    let sent = app.press_send_sms(&browser, &page, MOBILE).await;

    assert_eq!(sent.status, 200, "{}", sent.body);
    let start = sent.body.find("验证码是 ").expect("the code is shown") + "验证码是 ".len();
    let code: String = sent.body[start..].chars().take(6).collect();
    let done = app
        .bind_with_code(&browser, &sent, MOBILE, PASSWORD, Some(&code))
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

async fn code_rows(app: &TestApp) -> i64 {
    app.db
        .run(|conn| Ok(sms_codes::table.count().get_result(&mut **conn)?))
        .await
        .unwrap()
}

backend_tests!(
    a_new_mobile_binds_with_the_code_sent_to_it,
    without_a_code_a_new_mobile_and_a_wrong_password_look_the_same,
    wrong_expired_and_used_codes_create_nothing,
    five_wrong_tries_end_a_code,
    codes_are_stored_as_keyed_hashes,
    always_asks_a_code_of_existing_accounts_too,
    one_code_a_minute_per_mobile,
    daily_caps_per_mobile_address_and_qq_account,
    a_qq_account_has_a_daily_cap_across_mobiles,
    a_sender_down_is_a_clear_503_that_costs_nothing,
    the_api_binds_a_new_mobile_with_its_code,
    the_api_says_which_code_is_wrong,
    codes_are_sent_only_to_someone_in_a_bind,
    a_code_sent_by_one_instance_is_checked_by_another,
    development_mode_shows_the_code_on_the_page,
);

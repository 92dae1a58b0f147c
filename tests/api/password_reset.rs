//! The forgotten password (`/password/reset`): an image code sends an SMS
//! code, the SMS code sets a new password, ends every session of the
//! account and logs the browser in; the last page shows the QQ account
//! linked to the account and unlinks it on request.

use qqlogin::domain::ImageCodeId;
use qqlogin::image_code::ImageCodes;

use crate::backend_tests;
use crate::helpers::{Backend, Browser, PASSWORD, Page, TestApp, new_openid, spawn_app};

const MOBILE: &str = "13800138000";
const UNREGISTERED: &str = "13700137000";
const NEW_PASSWORD: &str = "a brand new password";
const IMAGE_CODE_WRONG: &str = "图片验证码有误";
const SMS_CODE_WRONG: &str = "短信验证码错误";

/// The reset form, freshly shown to `browser`.
async fn reset_form(app: &TestApp, browser: &Browser) -> Page {
    let form = app.get(browser, "/password/reset").await;
    assert_eq!(form.status, 200, "{}", form.body);
    form
}

/// The answer to the image code `form` shows, as the picture drew it.
async fn image_answer(app: &TestApp, form: &Page) -> String {
    let id = form
        .field("image_code_id")
        .expect("the form names its image");
    assert!(
        form.body.contains(&format!("src=\"/image_codes/{id}/\"")),
        "{}",
        form.body
    );
    let image = reqwest::get(app.url(&format!("/image_codes/{id}/")))
        .await
        .unwrap();
    assert_eq!(image.status(), 200);
    ImageCodes::new(app.db.clone())
        .answer_for_tests(&ImageCodeId::parse(&id).unwrap())
        .await
        .expect("the picture's answer is stored")
}

/// "获取验证码" on `form` for `mobile`, with `image_code` typed.
async fn ask_code(
    app: &TestApp,
    browser: &Browser,
    form: &Page,
    mobile: &str,
    image_code: &str,
) -> Page {
    let id = form.field("image_code_id").unwrap();
    let csrf = form.field("csrf_token").unwrap();
    app.post_form(
        browser,
        "/password/reset/code",
        &[
            ("mobile", mobile),
            ("image_code_id", &id),
            ("image_code", image_code),
            ("csrf_token", &csrf),
        ],
    )
    .await
}

/// An SMS code for `mobile`, asked for on the reset page as a person would.
/// Returns the page that says it was sent, and the code.
async fn sms_code_by_reset(app: &TestApp, browser: &Browser, mobile: &str) -> (Page, String) {
    let form = reset_form(app, browser).await;
    let answer = image_answer(app, &form).await;
    let before = app.sms.codes(mobile).len();
    let sent = ask_code(app, browser, &form, mobile, &answer).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let code = app.next_sms_code(mobile, before).await;
    (sent, code)
}

/// The reset form of `page` submitted.
async fn reset(
    app: &TestApp,
    browser: &Browser,
    page: &Page,
    mobile: &str,
    sms_code: &str,
    passwords: (&str, &str),
) -> Page {
    let csrf = page.field("csrf_token").unwrap();
    app.post_form(
        browser,
        "/password/reset",
        &[
            ("mobile", mobile),
            ("sms_code", sms_code),
            ("password", passwords.0),
            ("password2", passwords.1),
            ("csrf_token", &csrf),
        ],
    )
    .await
}

fn other_than(code: &str) -> &'static str {
    if code == "000000" { "000001" } else { "000000" }
}

async fn password_hash(app: &TestApp, mobile: &str) -> String {
    let user_id = app.user_id(mobile).await;
    app.user(user_id).await.unwrap().password_hash
}

async fn a_forgotten_password_is_reset_by_sms_and_every_session_ends(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let signed_up = Browser::new();
    app.sign_up_with_qq(&signed_up, &openid, MOBILE).await;
    let user_id = app.user_id(MOBILE).await;
    let by_password = Browser::new();
    assert_eq!(
        app.password_login(&by_password, MOBILE, PASSWORD)
            .await
            .status,
        303
    );
    let browser = Browser::new();

    let form = reset_form(&app, &browser).await;
    for field in ["mobile", "image_code", "sms_code", "password", "password2"] {
        assert!(
            form.body.contains(&format!("name=\"{field}\"")),
            "{field}: {}",
            form.body
        );
    }
    let answer = image_answer(&app, &form).await;
    let before = app.sms.codes(MOBILE).len();
    let sent = ask_code(&app, &browser, &form, MOBILE, &answer).await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.body.contains("验证码已发送到 138****8000"),
        "{}",
        sent.body
    );
    assert_eq!(sent.field("mobile").as_deref(), Some(MOBILE), "kept");
    assert!(sent.body.contains("data-wait=\"60\""), "{}", sent.body);
    assert_ne!(sent.field("image_code_id"), form.field("image_code_id"));
    let code = app.next_sms_code(MOBILE, before).await;

    let done = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        &code,
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;

    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/password/reset/done"));
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    assert_eq!(app.logged_in_as(&signed_up).await, None);
    assert_eq!(app.logged_in_as(&by_password).await, None);
    assert_eq!(app.session_handles(user_id).await.len(), 1);
    let event = app.event_of(user_id, "password_reset", "ok").await;
    assert_eq!(event.method.as_deref(), Some("sms_code"));
    assert_eq!(event.address.as_deref(), Some("127.0.0.1"));

    // The last page shows the QQ account linked to the account.
    let last = app.get(&browser, "/password/reset/done").await;
    assert_eq!(last.status, 200, "{}", last.body);
    assert!(
        last.body.contains(&format!("昵称{}", &openid[..4])),
        "{}",
        last.body
    );
    assert!(
        last.body.contains("这不是我的QQ，解除绑定")
            && last.body.contains("action=\"/account/qq/unlink\""),
        "{}",
        last.body
    );
    assert!(
        last.body.contains("https://thirdqq.qlogo.cn/"),
        "{}",
        last.body
    );

    // "Not my QQ": unlinked at once, without proving anything again.
    let csrf = last.field("csrf_token").unwrap();
    let unlinked = app
        .post_form(&browser, "/account/qq/unlink", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(unlinked.status, 303, "{}", unlinked.body);
    assert_eq!(unlinked.location.as_deref(), Some("/account?done=unlinked"));
    assert_eq!(app.link_count().await, 0);
    let again = app.get(&browser, "/password/reset/done").await;
    assert!(!again.body.contains("解除绑定"), "{}", again.body);
    let bind_page = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(bind_page.status, 200, "that QQ account gets in no more");

    // The code is used up.
    let with_token = app.get(&browser, "/account").await;
    let replay = reset(
        &app,
        &browser,
        &with_token,
        MOBILE,
        &code,
        ("yet another one", "yet another one"),
    )
    .await;
    assert_eq!(replay.status, 400, "{}", replay.body);
}

async fn the_old_password_stops_working_and_the_new_one_works(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up_with_qq(&Browser::new(), &new_openid(), MOBILE)
        .await;
    let browser = Browser::new();
    let (sent, code) = sms_code_by_reset(&app, &browser, MOBILE).await;
    let done = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        &code,
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);

    let old = app.password_login(&Browser::new(), MOBILE, PASSWORD).await;
    assert_eq!(old.status, 401, "{}", old.body);
    assert!(old.body.contains("用户名或密码错误"), "{}", old.body);
    let new = Browser::new();
    let page = app.password_login(&new, MOBILE, NEW_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.logged_in_as(&new).await.as_deref(), Some(MOBILE));
}

async fn an_account_without_a_password_gets_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up_with_qq(&Browser::new(), &new_openid(), MOBILE)
        .await;
    let user_id = app.user_id(MOBILE).await;
    app.db
        .write(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            use diesel::prelude::*;
            use qqlogin::db::schema::users;
            diesel::update(users::table.find(user_id))
                .set(users::password_hash.eq("!no-password"))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let browser = Browser::new();
    let (sent, code) = sms_code_by_reset(&app, &browser, MOBILE).await;

    let done = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        &code,
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;

    assert_eq!(done.status, 303, "{}", done.body);
    assert!(!password_hash(&app, MOBILE).await.starts_with('!'));
    let page = app.get(&browser, "/account").await;
    assert!(page.body.contains("已设置"), "{}", page.body);
    assert_eq!(
        app.password_login(&Browser::new(), MOBILE, NEW_PASSWORD)
            .await
            .status,
        303
    );
}

async fn a_wrong_image_code_sends_no_sms(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up_with_qq(&Browser::new(), &new_openid(), MOBILE)
        .await;
    let browser = Browser::new();
    let form = reset_form(&app, &browser).await;
    let answer = image_answer(&app, &form).await;
    let wrong: String = answer
        .chars()
        .map(|c| if c == 'X' { 'Y' } else { 'X' })
        .collect();
    let before = app.sms.codes(MOBILE).len();

    let refused = ask_code(&app, &browser, &form, MOBILE, &wrong).await;

    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains(IMAGE_CODE_WRONG), "{}", refused.body);
    assert_eq!(refused.field("mobile").as_deref(), Some(MOBILE));
    assert_ne!(
        refused.field("image_code_id"),
        form.field("image_code_id"),
        "a new picture"
    );
    // No image code at all is as wrong.
    let csrf = form.field("csrf_token").unwrap();
    let without = app
        .post_form(
            &browser,
            "/password/reset/code",
            &[("mobile", MOBILE), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(without.status, 400, "{}", without.body);
    assert!(without.body.contains(IMAGE_CODE_WRONG), "{}", without.body);
    // The picture is good for one try: its right answer is now wrong too.
    let late = ask_code(&app, &browser, &form, MOBILE, &answer).await;
    assert_eq!(late.status, 400, "{}", late.body);
    assert_eq!(app.sms.codes(MOBILE).len(), before, "no SMS was sent");
}

async fn a_wrong_sms_code_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let signed_up = Browser::new();
    app.sign_up_with_qq(&signed_up, &new_openid(), MOBILE).await;
    let hash = password_hash(&app, MOBILE).await;
    let browser = Browser::new();
    let (sent, code) = sms_code_by_reset(&app, &browser, MOBILE).await;

    let refused = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        other_than(&code),
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;

    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains(SMS_CODE_WRONG), "{}", refused.body);
    assert_eq!(refused.field("mobile").as_deref(), Some(MOBILE));
    assert_eq!(password_hash(&app, MOBILE).await, hash);
    assert_eq!(app.logged_in_as(&browser).await, None);
    assert_eq!(app.logged_in_as(&signed_up).await.as_deref(), Some(MOBILE));
    // A code for another mobile does not prove this one either.
    let (_, other_code) = sms_code_by_reset(&app, &Browser::new(), UNREGISTERED).await;
    if other_code != code {
        let refused = reset(
            &app,
            &browser,
            &sent,
            MOBILE,
            &other_code,
            (NEW_PASSWORD, NEW_PASSWORD),
        )
        .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
    }
    assert_eq!(password_hash(&app, MOBILE).await, hash);
    // The right code still works afterwards.
    let done = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        &code,
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
}

async fn an_unregistered_mobile_is_told_only_after_its_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();

    // Sending a code says nothing of whether the number has an account.
    let (sent, code) = sms_code_by_reset(&app, &browser, UNREGISTERED).await;
    assert!(
        sent.body.contains("验证码已发送到 137****7000"),
        "{}",
        sent.body
    );
    let refused = reset(
        &app,
        &browser,
        &sent,
        UNREGISTERED,
        &code,
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;

    assert_eq!(refused.status, 404, "{}", refused.body);
    assert!(
        refused.body.contains("这个手机号没有注册账号"),
        "{}",
        refused.body
    );
    assert_eq!(app.user_count().await, 0);
    assert_eq!(app.logged_in_as(&browser).await, None);
}

async fn differing_passwords_are_refused_and_the_code_still_works(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_up_with_qq(&Browser::new(), &new_openid(), MOBILE)
        .await;
    let hash = password_hash(&app, MOBILE).await;
    let browser = Browser::new();
    let (sent, code) = sms_code_by_reset(&app, &browser, MOBILE).await;

    let refused = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        &code,
        (NEW_PASSWORD, "a different new password"),
    )
    .await;

    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(
        refused.body.contains("两次输入的新密码不一样"),
        "{}",
        refused.body
    );
    assert_eq!(password_hash(&app, MOBILE).await, hash);
    assert_eq!(app.logged_in_as(&browser).await, None);
    let short = reset(&app, &browser, &sent, MOBILE, &code, ("short", "short")).await;
    assert_eq!(short.status, 400, "{}", short.body);
    assert!(
        short.body.contains("密码长度应为8到128个字符"),
        "{}",
        short.body
    );
    assert_eq!(password_hash(&app, MOBILE).await, hash);

    let done = reset(
        &app,
        &browser,
        &sent,
        MOBILE,
        &code,
        (NEW_PASSWORD, NEW_PASSWORD),
    )
    .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_ne!(password_hash(&app, MOBILE).await, hash);
}

backend_tests!(
    a_forgotten_password_is_reset_by_sms_and_every_session_ends,
    the_old_password_stops_working_and_the_new_one_works,
    an_account_without_a_password_gets_one,
    a_wrong_image_code_sends_no_sms,
    a_wrong_sms_code_changes_nothing,
    an_unregistered_mobile_is_told_only_after_its_code,
    differing_passwords_are_refused_and_the_code_still_works,
);

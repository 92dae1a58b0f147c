//! Chinese by default, English when asked: the `lang` cookie the switcher
//! sets wins, then `Accept-Language`, then Chinese (contract). Pages, error
//! pages, the JSON API's messages and the SMS notices all follow.

use std::sync::Arc;

use reqwest::header::{ACCEPT_LANGUAGE, CONTENT_LANGUAGE, HeaderMap, HeaderValue, SET_COOKIE};

use crate::helpers::{Backend, Browser, Page, new_openid, spawn_app};

/// A browser that asks for `accept_language`, as a person's does.
fn browser_asking_for(accept_language: &str) -> Browser {
    let mut headers = HeaderMap::new();
    headers.insert(
        ACCEPT_LANGUAGE,
        HeaderValue::from_str(accept_language).unwrap(),
    );
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .default_headers(headers)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    Browser { client, jar }
}

fn assert_language(page: &Page, tag: &str, texts: &[&str]) {
    assert!(
        page.body.contains(&format!("<html lang=\"{tag}\">")),
        "<html lang=\"{tag}\">: {}",
        page.body
    );
    assert_eq!(
        page.headers
            .get(CONTENT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
        Some(tag)
    );
    for text in texts {
        assert!(page.body.contains(text), "{text:?} in {}", page.body);
    }
}

#[actix_web::test]
async fn pages_are_chinese_unless_the_browser_prefers_english() {
    let app = spawn_app(Backend::Sqlite).await;
    for (accept, tag, texts) in [
        (
            None,
            "zh-CN",
            &[
                "<title>登录 - 统一登录</title>",
                "<span>QQ登录</span>",
                ">English</button>",
            ][..],
        ),
        (
            Some("fr-FR,fr;q=0.9"),
            "zh-CN",
            &["<title>登录 - 统一登录</title>"][..],
        ),
        (
            Some("zh-TW,zh;q=0.9,en;q=0.8"),
            "zh-CN",
            &["<span>QQ登录</span>"][..],
        ),
        (
            Some("en-GB,en;q=0.9,zh-CN;q=0.5"),
            "en",
            &[
                "<title>Log in - Unified Login</title>",
                "<span>Log in with QQ</span>",
                "Forgot your password?",
                ">中文</button>",
            ][..],
        ),
    ] {
        let browser = accept.map_or_else(Browser::new, browser_asking_for);
        let page = app.get(&browser, "/login").await;
        assert_eq!(page.status, 200);
        assert_language(&page, tag, texts);
        let vary = page
            .headers
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect::<Vec<_>>()
            .join(", ");
        assert!(
            vary.contains("Accept-Language") && vary.contains("Cookie"),
            "Vary: {vary}"
        );
        if tag == "en" {
            assert!(
                !page
                    .body
                    .chars()
                    .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c) && !"中文".contains(c)),
                "nothing left in Chinese: {}",
                page.body
            );
        }
    }
}

#[actix_web::test]
async fn the_switcher_sets_the_cookie_which_wins_over_the_browser() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = browser_asking_for("en-US,en;q=0.9");
    let english = app.get(&browser, "/login?next=/account").await;
    assert_language(&english, "en", &["<h1>Log in</h1>"]);
    assert_eq!(english.field("lang").as_deref(), Some("zh-CN"));
    let back = english.field("back").unwrap();
    assert!(
        back.starts_with("/login?next=") && back.ends_with("account"),
        "the switcher comes back here: {back}"
    );

    let switched = app
        .post_form(&browser, "/lang", &[("lang", "zh-CN"), ("back", &back)])
        .await;
    assert_eq!(switched.status, 303);
    assert_eq!(switched.location.as_deref(), Some(back.as_str()));
    let cookie = switched.headers.get(SET_COOKIE).unwrap().to_str().unwrap();
    for part in [
        "lang=zh-CN",
        "Path=/",
        "Max-Age=31536000",
        "SameSite=Lax",
        "HttpOnly",
    ] {
        assert!(cookie.contains(part), "{part} in {cookie}");
    }
    let chinese = app.get(&browser, &back).await;
    assert_language(&chinese, "zh-CN", &["<h1>登录</h1>", ">English</button>"]);

    let again = app
        .post_form(&browser, "/lang", &[("lang", "en"), ("back", "/")])
        .await;
    assert_eq!(again.location.as_deref(), Some("/"));
    assert_language(&app.get(&browser, "/").await, "en", &["<h1>Welcome</h1>"]);

    // Only ever back to this site; a language we do not speak is refused.
    let away = app
        .post_form(
            &browser,
            "/lang",
            &[("lang", "en"), ("back", "https://evil.example/")],
        )
        .await;
    assert_eq!(away.location.as_deref(), Some("/"));
    let unknown = app
        .post_form(&browser, "/lang", &[("lang", "fr"), ("back", "/")])
        .await;
    assert_eq!(unknown.status, 400);
    assert!(unknown.headers.get(SET_COOKIE).is_none());
}

#[actix_web::test]
async fn error_pages_and_json_messages_speak_the_language_asked_for() {
    let app = spawn_app(Backend::Sqlite).await;
    let english = browser_asking_for("en");
    let missing = app.get(&english, "/no/such/page").await;
    assert_eq!(missing.status, 404);
    assert_language(
        &missing,
        "en",
        &["<h1>Page not found</h1>", "Back to the home page"],
    );

    for (browser, message) in [
        (Browser::new(), "缺少code参数"),
        (browser_asking_for("en-US"), "The code parameter is missing"),
    ] {
        let answer = browser
            .client
            .get(app.url("/oauth/qq/users/"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400);
        let body: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(body["message"], message);
    }

    // A login state this browser never began: the page says so in English.
    let stale = app
        .get(&english, "/oauth/qq/callback?code=abc&state=def")
        .await;
    assert_eq!(stale.status, 400);
    assert_language(
        &stale,
        "en",
        &["<h1>This login request has expired</h1>", "Log in again"],
    );
    assert_eq!(
        stale.field("back").as_deref(),
        Some("/"),
        "a spent code is never fetched again"
    );
}

#[actix_web::test]
async fn the_bind_page_switches_language_and_the_bind_goes_on() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = Browser::new();
    let openid = new_openid();
    let bind = app.qq_login(&browser, &openid, "/").await;
    assert_language(&bind, "zh-CN", &["<h1>绑定账号</h1>"]);
    let token = bind.field("access_token").unwrap();

    let english = app
        .post_form(
            &browser,
            "/lang",
            &[("lang", "en"), ("back", "/"), ("access_token", &token)],
        )
        .await;
    assert_eq!(english.status, 200, "{}", english.body);
    assert_language(
        &english,
        "en",
        &[
            "<h1>Link your account</h1>",
            "I am new here",
            "I already have an account",
            "Send code",
        ],
    );
    assert_eq!(
        english.field("access_token").as_deref(),
        Some(token.as_str())
    );

    let sent = app.press_send_sms(&browser, &english, "13800138123").await;
    assert_language(
        &sent,
        "en",
        &["A code was sent to 138****8123; it is good for 5 minutes."],
    );
    let code = app.sms.code_for("13800138123").await.unwrap();
    let done = app
        .bind_with_code(
            &browser,
            &english,
            "13800138123",
            crate::helpers::PASSWORD,
            Some(&code),
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(app.link_count().await, 1);

    // A token that is not this browser's bind: refused, in the language chosen.
    let other = Browser::new();
    let refused = app
        .post_form(
            &other,
            "/lang",
            &[("lang", "en"), ("back", "/"), ("access_token", &token)],
        )
        .await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert_language(&refused, "en", &["Please log in again in this browser"]);
}

/// The account centre in English: deleting takes the English word, and the
/// account-centre texts and refusals are English.
#[actix_web::test]
async fn an_account_is_deleted_in_english_by_typing_delete() {
    let app = spawn_app(Backend::Sqlite).await;
    let browser = browser_asking_for("en");
    app.sign_up_with_qq(&browser, &new_openid(), "13800138000")
        .await;
    let user_id = app.user_id("13800138000").await;

    let account = app.get(&browser, "/account").await;
    assert_language(
        &account,
        "en",
        &["<h1>Your account</h1>", "Signed-in devices", "This device"],
    );
    let form = app.get(&browser, "/account/delete").await;
    assert_language(&form, "en", &["To confirm, type “delete”"]);
    let csrf = form.field("csrf_token").unwrap();

    let refused = app
        .post_form(
            &browser,
            "/account/delete",
            &[("confirm", "remove"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(refused.status, 400);
    assert_language(
        &refused,
        "en",
        &["type the word “delete” in the confirmation box"],
    );
    assert!(app.user(user_id).await.is_some());

    let done = app
        .post_form(
            &browser,
            "/account/delete",
            &[("confirm", " Delete "), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(done.status, 200, "{}", done.body);
    assert_language(&done, "en", &["<h1>Account deleted</h1>"]);
    assert!(app.user(user_id).await.is_none());
}

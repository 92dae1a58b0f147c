//! The account centre (`/account`): what a logged-in person sees of their
//! account, the actions on it, the proof of identity they need (10 minutes
//! since the login or `/account/verify`), and the sign-in events they leave.

use std::time::Duration;

use diesel::prelude::*;
use qqlogin::db::schema::{qq_links, sessions, sign_in_events, users};
use qqlogin::db::sign_in_event::NewEvent;
use url::Url;

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, PASSWORD, Page, TestApp, eventually, new_openid, spawn_app,
};
use crate::login_flow::create_plain_user;

const MOBILE: &str = "13800138000";
const MASKED: &str = "138****8000";
const NEW_MOBILE: &str = "13900139000";
const OTHER_MOBILE: &str = "13700137000";
const NEW_PASSWORD: &str = "a brand new password";
const IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1";
const WINDOWS: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36";
const REAUTH_REQUIRED: &str = "请先验证身份";

/// A browser that names itself `agent`.
fn browser_with_agent(agent: &str) -> Browser {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let client = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(agent)
        .build()
        .unwrap();
    Browser { client, jar }
}

/// A page's text with HTML's escapes undone, for comparing URLs.
fn unescaped(body: &str) -> String {
    [
        ("&#38;", "&"),
        ("&#x26;", "&"),
        ("&#34;", "\""),
        ("&quot;", "\""),
        ("&#39;", "'"),
        ("&#x27;", "'"),
        ("&#x2f;", "/"),
        ("&#47;", "/"),
        ("&amp;", "&"),
    ]
    .iter()
    .fold(body.to_owned(), |text, (escaped, plain)| {
        text.replace(escaped, plain)
    })
}

/// The part of the account page under the heading with id `heading`.
fn section<'a>(body: &'a str, heading: &str) -> &'a str {
    let start = body
        .find(&format!("id=\"{heading}\""))
        .unwrap_or_else(|| panic!("no section {heading}: {body}"));
    let rest = &body[start..];
    &rest[..rest.find("</section>").unwrap_or(rest.len())]
}

/// A new account for [`MOBILE`] made by a first QQ login of `openid` in `browser`.
async fn sign_up(app: &TestApp, browser: &Browser, openid: &str) -> i64 {
    app.sign_up_with_qq(browser, openid, MOBILE).await;
    app.user_id(MOBILE).await
}

/// Another browser, logged in to the account of `openid` by QQ.
async fn another_qq_login(app: &TestApp, openid: &str, agent: &str) -> Browser {
    let browser = browser_with_agent(agent);
    let page = app.qq_login(&browser, openid, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    browser
}

/// Another browser, logged in by the password form.
async fn another_password_login(app: &TestApp, login: &str, password: &str) -> Browser {
    let browser = Browser::new();
    let page = app.password_login(&browser, login, password).await;
    assert_eq!(page.status, 303, "{}", page.body);
    browser
}

fn assert_reauth_required(what: &str, page: &Page) {
    assert_eq!(page.status, 401, "{what}: {}", page.body);
    assert!(
        page.body.contains(REAUTH_REQUIRED) && page.body.contains("href=\"/account/verify\""),
        "{what}: {}",
        page.body
    );
}

fn sets_cookie(page: &Page, name: &str) -> bool {
    page.headers
        .get_all("set-cookie")
        .iter()
        .any(|c| c.to_str().unwrap().starts_with(&format!("{name}=")))
}

async fn password_hash(app: &TestApp, user_id: i64) -> String {
    app.user(user_id).await.expect("the account").password_hash
}

async fn set_password_hash(app: &TestApp, user_id: i64, hash: &'static str) {
    app.db
        .write(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            diesel::update(users::table.find(user_id))
                .set(users::password_hash.eq(hash))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
}

/// The QQ link of `openid`: its user, nickname, avatar and when its profile was stored.
type StoredLink = (
    i64,
    Option<String>,
    Option<String>,
    Option<time::PrimitiveDateTime>,
);

async fn link_of_openid(app: &TestApp, openid: &str) -> Option<StoredLink> {
    let openid = openid.to_owned();
    app.db
        .run(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(qq_links::table
                .filter(qq_links::openid.eq(openid))
                .select((
                    qq_links::user_id,
                    qq_links::nickname,
                    qq_links::avatar_url,
                    qq_links::profile_at,
                ))
                .first(conn)
                .optional()?)
        })
        .await
        .unwrap()
}

/// The avatar the stand-in QQ gives `openid`, as the service stores and shows it.
fn avatar_of(openid: &str) -> String {
    format!("https://thirdqq.qlogo.cn/g?b=oidb&k={openid}&s=100")
}

/// "绑定QQ账号": off to QQ from the account centre, QQ vouches for
/// `openid`, back through the callback. Returns the callback's answer.
async fn link_from_account_centre(
    app: &TestApp,
    browser: &Browser,
    openid: &str,
    nickname: &str,
) -> Page {
    let leave = app.account_post(browser, "/account/qq/link", &[]).await;
    assert_eq!(leave.status, 302, "{}", leave.body);
    assert!(sets_cookie(&leave, "qqlogin_oauth"), "the attempt's cookie");
    let to_qq = Url::parse(leave.location.as_deref().unwrap()).unwrap();
    assert!(to_qq.path().ends_with("/oauth2.0/authorize"), "{to_qq}");
    let state = to_qq
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let code = app.qq.grant(openid, nickname);
    app.callback(browser, &code, &state).await
}

/// The rows of `sign_in_events`, all users': user, kind, outcome, address, agent.
type EventRow = (Option<i64>, String, String, Option<String>, Option<String>);

async fn every_event(app: &TestApp) -> Vec<EventRow> {
    app.db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(sign_in_events::table
                .order(sign_in_events::id)
                .select((
                    sign_in_events::user_id,
                    sign_in_events::kind,
                    sign_in_events::outcome,
                    sign_in_events::address,
                    sign_in_events::user_agent,
                ))
                .load(conn)?)
        })
        .await
        .unwrap()
}

async fn sessions_of(app: &TestApp, user_id: i64) -> i64 {
    app.db
        .run(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(sessions::table
                .filter(sessions::user_id.eq(user_id))
                .count()
                .get_result(conn)?)
        })
        .await
        .unwrap()
}

// ---------------------------------------------------------------------------
// The page

async fn a_visitor_is_sent_to_log_in_first(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();

    let page = app.get(&browser, "/account").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(page.location.as_deref(), Some("/login?next=/account"));
    let delete = app.get(&browser, "/account/delete").await;
    assert_eq!(delete.status, 303, "{}", delete.body);
    assert_eq!(
        delete.location.as_deref(),
        Some("/login?next=/account/delete")
    );

    // An action without a login is refused, with this browser's own CSRF token.
    let refused = app
        .post_with_csrf(
            &browser,
            "/account/password",
            &[("password", NEW_PASSWORD), ("password2", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    assert!(refused.body.contains("请先登录"), "{}", refused.body);

    // And the login form brings the person back.
    create_plain_user(&app, MOBILE, PASSWORD).await;
    let form = app.get(&browser, "/login?next=/account").await;
    let csrf = form.field("csrf_token").unwrap();
    let done = app
        .post_form(
            &browser,
            "/login",
            &[
                ("username", MOBILE),
                ("password", PASSWORD),
                ("next", "/account"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(done.location.as_deref(), Some("/account"), "{}", done.body);
    assert_eq!(app.get(&browser, "/account").await.status, 200);
}

async fn the_page_shows_the_account_its_qq_its_devices_and_its_sign_ins(backend: Backend) {
    // Not the mobile the page's placeholder shows: this one must appear nowhere.
    const MOBILE: &str = "13812345678";
    const MASKED: &str = "138****5678";
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let phone = browser_with_agent(IPHONE);
    app.sign_up_with_qq(&phone, &openid, MOBILE).await;
    let user_id = app.user_id(MOBILE).await;
    let mine = app.session_handles(user_id).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    let desktop = another_qq_login(&app, &openid, WINDOWS).await;
    let desktops: Vec<String> = app
        .session_handles(user_id)
        .await
        .into_iter()
        .filter(|h| !mine.contains(h))
        .collect();
    assert_eq!(desktops.len(), 1, "{desktops:?}");
    let refused = app
        .password_login(&Browser::new(), MOBILE, "not the password")
        .await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    app.event_of(user_id, "login", "wrong_password").await;
    app.event_of(user_id, "login", "ok").await;
    app.event_of(user_id, "bind", "ok").await;

    let page = app.get(&phone, "/account").await;

    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.headers["cache-control"], "no-store");
    let body = unescaped(&page.body);
    // The account: its user name (the mobile it was made with) and the
    // mobile, both masked: the whole number appears nowhere.
    assert_eq!(
        body.matches(&format!("<dd>{MASKED}</dd>")).count(),
        2,
        "{body}"
    );
    assert!(!body.contains(MOBILE), "{body}");
    assert!(body.contains("已设置"), "it has a password: {body}");
    // Its QQ account, as QQ showed it at the bind: nickname, https avatar, when.
    let qq = section(&body, "qq");
    assert!(qq.contains(&format!("昵称{}", &openid[..4])), "{qq}");
    assert!(
        qq.contains(&format!("src=\"{}\"", avatar_of(&openid))),
        "{qq}"
    );
    assert!(
        !body.contains("http://thirdqq"),
        "never a plain-http avatar"
    );
    assert!(qq.contains("绑定于 20"), "{qq}");
    assert!(qq.contains("action=\"/account/qq/unlink\""), "{qq}");
    // Its devices: this one tagged, the other with a button that ends it.
    let devices = section(&body, "sessions-heading");
    assert_eq!(devices.matches("当前设备").count(), 1, "{devices}");
    assert!(devices.contains("Safari · iPhone"), "{devices}");
    assert!(devices.contains("Chrome · Windows"), "{devices}");
    assert!(devices.contains("127.0.0.1 · 登录于 20"), "{devices}");
    assert_eq!(devices.matches("name=\"handle\"").count(), 1, "{devices}");
    assert!(
        devices.contains(&format!("name=\"handle\" value=\"{}\"", desktops[0])),
        "{devices}"
    );
    assert!(!devices.contains(&mine[0]), "this device has no end button");
    assert!(devices.contains("退出其他所有设备"), "{devices}");
    // Its sign-ins: the first QQ login (the bind), the QQ login, the wrong password.
    let sign_ins = section(&body, "sign-ins-heading");
    assert_eq!(sign_ins.matches("<li>").count(), 3, "{sign_ins}");
    assert!(sign_ins.contains("QQ登录（首次绑定）"), "{sign_ins}");
    assert!(
        sign_ins.contains("QQ登录") && sign_ins.contains("成功"),
        "{sign_ins}"
    );
    assert!(
        sign_ins.contains("密码登录") && sign_ins.contains("失败"),
        "{sign_ins}"
    );
    assert!(
        sign_ins.contains("127.0.0.1 · Chrome · Windows"),
        "{sign_ins}"
    );
    assert!(page.field("csrf_token").is_some());

    // The other device sees the same account, with itself as the current one.
    let theirs = unescaped(&app.get(&desktop, "/account").await.body);
    let devices = section(&theirs, "sessions-heading");
    assert!(
        devices.contains(&format!("name=\"handle\" value=\"{}\"", mine[0])),
        "{devices}"
    );

    // `done` shows its notice; anything else shows none.
    let done = app.get(&phone, "/account?done=password").await;
    assert!(done.body.contains("新密码已保存"), "{}", done.body);
    let other = app.get(&phone, "/account?done=%3Cscript%3E").await;
    assert_eq!(other.status, 200);
    assert!(!other.body.contains("class=\"notice\""), "{}", other.body);
    assert!(!other.body.contains("<script>"), "{}", other.body);
}

async fn the_sign_ins_list_shows_the_latest_twenty_logins_of_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &new_openid()).await;
    app.event_of(user_id, "bind", "ok").await;
    let now = qqlogin::db::now();
    let event = |user_id: i64, minutes_ago: i64, kind: &'static str, agent: String| NewEvent {
        user_id: Some(user_id),
        at: now - time::Duration::minutes(minutes_ago),
        kind,
        method: Some("password"),
        outcome: "ok",
        address: Some("192.0.2.7".to_owned()),
        user_agent: Some(agent),
    };
    let mut rows: Vec<NewEvent> = (0..25)
        .map(|n| event(user_id, n, "login", format!("agent-{n:02}")))
        .collect();
    rows.push(event(user_id, 0, "unlink", "not-a-login".to_owned()));
    rows.push(event(user_id + 1, 0, "login", "someone-else".to_owned()));
    app.db
        .write(move |conn| qqlogin::db::sign_in_event::insert_all(conn, &rows))
        .await
        .unwrap();

    let page = app.get(&browser, "/account").await;

    // The newest twenty: agent-00 (just now), the bind, agent-01 to agent-18.
    let sign_ins = section(&page.body, "sign-ins-heading");
    assert_eq!(sign_ins.matches("<li>").count(), 20, "{sign_ins}");
    assert_eq!(
        sign_ins.matches("QQ登录（首次绑定）").count(),
        1,
        "{sign_ins}"
    );
    for n in 0..25 {
        let shown = sign_ins.contains(&format!("agent-{n:02}</span>"));
        assert_eq!(shown, n < 19, "agent-{n:02}: {sign_ins}");
    }
    let newest = sign_ins.find("agent-00").unwrap();
    assert!(newest < sign_ins.find("agent-18").unwrap(), "newest first");
    assert!(!sign_ins.contains("not-a-login") && !sign_ins.contains("someone-else"));
    assert!(sign_ins.contains("192.0.2.7"), "{sign_ins}");
}

// ---------------------------------------------------------------------------
// Proving who one is again

async fn actions_need_a_proof_of_identity_from_the_last_ten_minutes(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &openid).await;
    let other = another_qq_login(&app, &openid, WINDOWS).await;
    let hash = password_hash(&app, user_id).await;
    assert_eq!(app.age_verification(user_id, 11 * 60).await, 2);
    let sessions = app.session_count().await;

    for (path, form) in [
        ("/account/qq/unlink", vec![]),
        ("/account/qq/link", vec![]),
        (
            "/account/password",
            vec![("password", NEW_PASSWORD), ("password2", NEW_PASSWORD)],
        ),
        ("/account/mobile/code", vec![("mobile", NEW_MOBILE)]),
        (
            "/account/mobile",
            vec![("mobile", NEW_MOBILE), ("sms_code", "123456")],
        ),
        ("/account/sessions/end", vec![("all_others", "1")]),
        ("/account/delete", vec![("confirm", "注销")]),
    ] {
        let refused = app.account_post(&browser, path, &form).await;
        assert_reauth_required(path, &refused);
        assert!(!sets_cookie(&refused, "qqlogin_oauth"), "{path}");
    }

    // Nothing happened.
    let user = app.user(user_id).await.expect("not deleted");
    assert_eq!((user.mobile.as_str(), user.password_hash), (MOBILE, hash));
    assert_eq!(app.link_count().await, 1);
    assert!(app.sms.codes(NEW_MOBILE).is_empty(), "no code was sent");
    assert_eq!(app.session_count().await, sessions);
    assert_eq!(app.logged_in_as(&other).await.as_deref(), Some(MOBILE));
    // Looking needs no proof.
    assert_eq!(app.get(&browser, "/account").await.status, 200);

    // A wrong password proves nothing.
    let form = app.get(&browser, "/account/verify").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("name=\"password\""), "{}", form.body);
    let csrf = form.field("csrf_token").unwrap();
    let wrong = app
        .post_form(
            &browser,
            "/account/verify",
            &[("password", "not the password"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("密码或验证码不正确"), "{}", wrong.body);
    let still = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_reauth_required("after a wrong password", &still);

    // The right one does, for this browser.
    let verified = app
        .post_form(
            &browser,
            "/account/verify",
            &[("password", PASSWORD), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    assert_eq!(verified.location.as_deref(), Some("/account?done=verified"));
    let notice = app.get(&browser, "/account?done=verified").await;
    assert!(notice.body.contains("身份已验证"), "{}", notice.body);
    let elsewhere = app.account_post(&other, "/account/qq/unlink", &[]).await;
    assert_reauth_required("the other browser proved nothing", &elsewhere);

    // Nine minutes later the proof still holds.
    app.age_verification(user_id, 9 * 60).await;
    let done = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=unlinked"));
    assert_eq!(app.link_count().await, 0);
}

async fn an_account_without_a_password_proves_itself_by_sms_and_keeps_its_only_way_in(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &openid).await;
    set_password_hash(&app, user_id, "!unusable-password-from-django").await;

    let page = app.get(&browser, "/account").await;
    assert!(
        page.body.contains("未设置（只能用QQ登录）"),
        "{}",
        page.body
    );
    let refused = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("QQ是唯一的登录方式"),
        "{}",
        refused.body
    );
    assert_eq!(app.link_count().await, 1);
    app.event_of(user_id, "unlink", "only_way_in").await;

    // Time passes: an SMS code to the account's own mobile proves who this is.
    app.age_verification(user_id, 11 * 60).await;
    let form = app.get(&browser, "/account/verify").await;
    assert!(
        form.body.contains("name=\"sms_code\"") && !form.body.contains("name=\"password\""),
        "{}",
        form.body
    );
    assert!(form.body.contains(MASKED), "{}", form.body);
    let csrf = form.field("csrf_token").unwrap();
    let before = app.sms.codes(MOBILE).len();
    let sent = app
        .post_form(&browser, "/account/verify/code", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.body.contains(&format!("验证码已发送到 {MASKED}")),
        "{}",
        sent.body
    );
    let code = app.next_sms_code(MOBILE, before).await;
    // No password is right for it, here or at the login form.
    let guessed = app
        .post_form(
            &browser,
            "/account/verify",
            &[("password", PASSWORD), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(guessed.status, 401, "{}", guessed.body);
    assert!(
        guessed.body.contains("密码或验证码不正确"),
        "{}",
        guessed.body
    );
    let login = app.password_login(&Browser::new(), MOBILE, PASSWORD).await;
    assert_eq!(login.status, 401, "{}", login.body);
    assert!(login.body.contains("用户名或密码错误"), "{}", login.body);
    app.event_of(user_id, "login", "wrong_password").await;
    let wrong_code = if code == "000000" { "000001" } else { "000000" };
    let wrong = app
        .post_form(
            &browser,
            "/account/verify",
            &[("sms_code", wrong_code), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert!(wrong.body.contains("密码或验证码不正确"), "{}", wrong.body);
    let verified = app
        .post_form(
            &browser,
            "/account/verify",
            &[("sms_code", &code), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(verified.status, 303, "{}", verified.body);
    assert_eq!(verified.location.as_deref(), Some("/account?done=verified"));

    // With a password set, QQ is no longer the only way in.
    let set = app
        .account_post(
            &browser,
            "/account/password",
            &[("password", NEW_PASSWORD), ("password2", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(set.status, 303, "{}", set.body);
    assert!(app.get(&browser, "/account").await.body.contains("已设置"));
    let unlinked = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_eq!(unlinked.status, 303, "{}", unlinked.body);
    assert_eq!(app.link_count().await, 0);
}

/// An account brought over without a password (its hash starts with `!`)
/// is opened by no password: the login form and the bind form say "wrong",
/// as for any wrong password, and link nothing.
async fn no_password_opens_an_account_without_a_usable_one(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, OTHER_MOBILE, PASSWORD).await;
    let user_id = app.user_id(OTHER_MOBILE).await;
    set_password_hash(&app, user_id, "!unusable-password-from-django").await;

    let login = app
        .password_login(&Browser::new(), OTHER_MOBILE, PASSWORD)
        .await;
    assert_eq!(login.status, 401, "{}", login.body);
    assert!(login.body.contains("用户名或密码错误"), "{}", login.body);

    let browser = Browser::new();
    let bind_page = app.qq_login(&browser, &new_openid(), "/").await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    let without_code = app
        .bind_with_code(&browser, &bind_page, OTHER_MOBILE, PASSWORD, None)
        .await;
    assert_eq!(without_code.status, 400, "{}", without_code.body);
    assert!(
        without_code.body.contains("请获取并填写短信验证码"),
        "{}",
        without_code.body
    );
    let code = app.page_sms_code(&browser, &bind_page, OTHER_MOBILE).await;
    let with_code = app
        .bind_with_code(&browser, &bind_page, OTHER_MOBILE, PASSWORD, Some(&code))
        .await;
    assert_eq!(with_code.status, 401, "{}", with_code.body);
    assert!(
        with_code.body.contains("这个手机号已经注册，但密码不正确"),
        "{}",
        with_code.body
    );
    assert_eq!(app.link_count().await, 0);
    app.event_of(user_id, "login", "wrong_password").await;
}

// ---------------------------------------------------------------------------
// QQ

async fn unlinking_qq_removes_the_link_and_a_second_unlink_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &openid).await;

    let done = app.account_post(&browser, "/account/qq/unlink", &[]).await;

    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=unlinked"));
    assert_eq!(app.link_count().await, 0);
    let page = app.get(&browser, "/account?done=unlinked").await;
    assert!(page.body.contains("QQ账号已解除绑定"), "{}", page.body);
    assert!(page.body.contains("还没有绑定QQ账号"), "{}", page.body);
    assert!(page.body.contains("action=\"/account/qq/link\""));
    app.event_of(user_id, "unlink", "ok").await;

    let again = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_eq!(again.status, 409, "{}", again.body);
    assert!(
        again.body.contains("你的账号现在没有绑定QQ账号"),
        "{}",
        again.body
    );
    app.event_of(user_id, "unlink", "not_linked").await;

    // That QQ account logs in to nothing now: it is offered the bind page.
    let bind_page = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    assert!(
        bind_page.field("access_token").is_some(),
        "{}",
        bind_page.body
    );
    assert_eq!(app.user_count().await, 1);
}

async fn a_qq_account_is_linked_from_the_account_centre(backend: Backend) {
    let app = spawn_app(backend).await;
    create_plain_user(&app, MOBILE, PASSWORD).await;
    let user_id = app.user_id(MOBILE).await;
    let browser = another_password_login(&app, MOBILE, PASSWORD).await;
    let page = app.get(&browser, "/account").await;
    assert!(page.body.contains("还没有绑定QQ账号"), "{}", page.body);
    let openid = new_openid();

    let back = link_from_account_centre(&app, &browser, &openid, "小红").await;

    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/account?done=linked"));
    let (linked_to, nickname, avatar, profile_at) =
        link_of_openid(&app, &openid).await.expect("a link");
    assert_eq!(linked_to, user_id);
    assert_eq!(nickname.as_deref(), Some("小红"));
    assert_eq!(avatar.as_deref(), Some(avatar_of(&openid).as_str()));
    assert!(profile_at.is_some());
    let page = app.get(&browser, "/account?done=linked").await;
    assert!(page.body.contains("QQ账号已绑定"), "{}", page.body);
    assert!(section(&page.body, "qq").contains("小红"), "{}", page.body);
    let event = app.event_of(user_id, "link", "ok").await;
    assert_eq!(event.method.as_deref(), Some("qq"));

    // From now on that QQ account logs in to this account.
    let other = Browser::new();
    assert_eq!(app.qq_login(&other, &openid, "/").await.status, 303);
    assert_eq!(app.logged_in_as(&other).await.as_deref(), Some(MOBILE));
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn linking_a_qq_account_of_another_account_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let theirs = new_openid();
    let owner = Browser::new();
    let owner_id = sign_up(&app, &owner, &theirs).await;
    create_plain_user(&app, OTHER_MOBILE, PASSWORD).await;
    let user_id = app.user_id(OTHER_MOBILE).await;
    let browser = another_password_login(&app, OTHER_MOBILE, PASSWORD).await;

    let refused = link_from_account_centre(&app, &browser, &theirs, "别人").await;

    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("这个QQ账号已绑定"),
        "{}",
        refused.body
    );
    assert_eq!(link_of_openid(&app, &theirs).await.unwrap().0, owner_id);
    assert_eq!(app.link_count().await, 1);
    assert_eq!(
        app.logged_in_as(&browser).await.as_deref(),
        Some(OTHER_MOBILE),
        "still logged in as itself"
    );
    let page = app.get(&browser, "/account").await;
    assert!(page.body.contains("还没有绑定QQ账号"), "{}", page.body);
    assert!(
        !app.events_of(user_id)
            .await
            .iter()
            .any(|e| e.kind == "link" && e.outcome == "ok"),
        "no link recorded"
    );

    // And an account with a QQ account of its own cannot take a second one.
    let second = new_openid();
    let refused = link_from_account_centre(&app, &owner, &second, "第二个").await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("已经绑定了另一个QQ账号"),
        "{}",
        refused.body
    );
    assert!(link_of_openid(&app, &second).await.is_none());
    app.event_of(owner_id, "link", "user_has_other_qq").await;
}

// ---------------------------------------------------------------------------
// Password and mobile

async fn a_new_password_ends_every_other_session(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &openid).await;
    let by_password = another_password_login(&app, MOBILE, PASSWORD).await;
    let by_qq = another_qq_login(&app, &openid, WINDOWS).await;
    let hash = password_hash(&app, user_id).await;

    for (password, again, reason) in [
        (
            NEW_PASSWORD,
            "another new password",
            "两次输入的新密码不一样",
        ),
        ("short", "short", "密码长度应为8到128个字符"),
    ] {
        let refused = app
            .account_post(
                &browser,
                "/account/password",
                &[("password", password), ("password2", again)],
            )
            .await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(refused.body.contains(reason), "{}", refused.body);
    }
    assert_eq!(password_hash(&app, user_id).await, hash);
    assert_eq!(
        app.logged_in_as(&by_password).await.as_deref(),
        Some(MOBILE)
    );

    let done = app
        .account_post(
            &browser,
            "/account/password",
            &[("password", NEW_PASSWORD), ("password2", NEW_PASSWORD)],
        )
        .await;

    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=password"));
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    assert_eq!(app.logged_in_as(&by_password).await, None);
    assert_eq!(app.logged_in_as(&by_qq).await, None);
    assert_eq!(sessions_of(&app, user_id).await, 1);
    let old = app.password_login(&Browser::new(), MOBILE, PASSWORD).await;
    assert_eq!(old.status, 401, "{}", old.body);
    let new = app
        .password_login(&Browser::new(), MOBILE, NEW_PASSWORD)
        .await;
    assert_eq!(new.status, 303, "{}", new.body);
    app.event_of(user_id, "password_change", "ok").await;
}

async fn a_new_mobile_proven_by_its_code_moves_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &new_openid()).await;

    let sent = app
        .account_post(&browser, "/account/mobile/code", &[("mobile", NEW_MOBILE)])
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert!(
        sent.body.contains("验证码已发送到 139****9000"),
        "{}",
        sent.body
    );
    assert_eq!(sent.field("mobile").as_deref(), Some(NEW_MOBILE));
    let code = app.next_sms_code(NEW_MOBILE, 0).await;
    let wrong_code = if code == "000000" { "000001" } else { "000000" };

    let wrong = app
        .account_post(
            &browser,
            "/account/mobile",
            &[("mobile", NEW_MOBILE), ("sms_code", wrong_code)],
        )
        .await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("短信验证码错误"), "{}", wrong.body);
    assert_eq!(app.user(user_id).await.unwrap().mobile, MOBILE);
    app.event_of(user_id, "mobile_change", "sms_code_invalid")
        .await;

    let done = app
        .account_post(
            &browser,
            "/account/mobile",
            &[("mobile", NEW_MOBILE), ("sms_code", &code)],
        )
        .await;

    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(done.location.as_deref(), Some("/account?done=mobile"));
    let user = app.user(user_id).await.unwrap();
    assert_eq!(
        (user.mobile.as_str(), user.username.as_str()),
        (NEW_MOBILE, NEW_MOBILE),
        "the user name was the old mobile, so it follows"
    );
    let page = app.get(&browser, "/account?done=mobile").await;
    assert!(page.body.contains("手机号已更换"), "{}", page.body);
    assert!(page.body.contains("<dd>139****9000</dd>"), "{}", page.body);
    let event = app.event_of(user_id, "mobile_change", "ok").await;
    assert_eq!(event.method.as_deref(), Some("sms_code"));
    assert_eq!(
        app.password_login(&Browser::new(), MOBILE, PASSWORD)
            .await
            .status,
        401
    );
    let by_new = another_password_login(&app, NEW_MOBILE, PASSWORD).await;
    assert_eq!(app.logged_in_as(&by_new).await.as_deref(), Some(NEW_MOBILE));

    // The old number is free for an account of its own.
    app.sign_up_with_qq(&Browser::new(), &new_openid(), MOBILE)
        .await;
    assert_eq!(app.user_count().await, 2);
}

async fn a_mobile_of_another_account_is_refused_and_a_chosen_user_name_stays(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &new_openid()).await;
    create_plain_user(&app, OTHER_MOBILE, PASSWORD).await;

    let sent = app
        .account_post(
            &browser,
            "/account/mobile/code",
            &[("mobile", OTHER_MOBILE)],
        )
        .await;
    assert_eq!(
        sent.status, 200,
        "no hint that the number is taken: {}",
        sent.body
    );
    let code = app.next_sms_code(OTHER_MOBILE, 0).await;
    let refused = app
        .account_post(
            &browser,
            "/account/mobile",
            &[("mobile", OTHER_MOBILE), ("sms_code", &code)],
        )
        .await;

    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("已经注册了另一个账号"),
        "{}",
        refused.body
    );
    assert_eq!(app.user(user_id).await.unwrap().mobile, MOBILE);
    assert_ne!(app.user_id(OTHER_MOBILE).await, user_id);
    app.event_of(user_id, "mobile_change", "mobile_taken").await;

    // A user name that is not the mobile stays what it was.
    app.db
        .write(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            diesel::update(users::table.find(user_id))
                .set(users::username.eq("xiaoming"))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    app.account_post(&browser, "/account/mobile/code", &[("mobile", NEW_MOBILE)])
        .await;
    let code = app.next_sms_code(NEW_MOBILE, 0).await;
    let done = app
        .account_post(
            &browser,
            "/account/mobile",
            &[("mobile", NEW_MOBILE), ("sms_code", &code)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    let user = app.user(user_id).await.unwrap();
    assert_eq!(
        (user.mobile.as_str(), user.username.as_str()),
        (NEW_MOBILE, "xiaoming")
    );
}

// ---------------------------------------------------------------------------
// Sessions

async fn one_session_or_all_the_others_can_be_ended(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = Browser::new();
    let user_id = sign_up(&app, &browser, &openid).await;
    let mine = app.session_handles(user_id).await;
    let second = another_qq_login(&app, &openid, WINDOWS).await;
    let with_second = app.session_handles(user_id).await;
    let third = another_qq_login(&app, &openid, IPHONE).await;
    let second_handle = with_second.iter().find(|h| !mine.contains(h)).unwrap();
    let third_handle = app
        .session_handles(user_id)
        .await
        .into_iter()
        .find(|h| !with_second.contains(h))
        .unwrap();

    // Someone else's account cannot end this account's sessions.
    create_plain_user(&app, OTHER_MOBILE, PASSWORD).await;
    let stranger = another_password_login(&app, OTHER_MOBILE, PASSWORD).await;
    app.account_post(
        &stranger,
        "/account/sessions/end",
        &[("handle", &third_handle)],
    )
    .await;
    assert_eq!(app.logged_in_as(&third).await.as_deref(), Some(MOBILE));

    // Nor is this browser's own session ended from here (that is logging out).
    let own = app
        .account_post(&browser, "/account/sessions/end", &[("handle", &mine[0])])
        .await;
    assert_eq!(own.status, 400, "{}", own.body);
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));

    let one = app
        .account_post(
            &browser,
            "/account/sessions/end",
            &[("handle", second_handle)],
        )
        .await;

    assert_eq!(one.status, 303, "{}", one.body);
    assert_eq!(one.location.as_deref(), Some("/account?done=session"));
    assert_eq!(app.logged_in_as(&second).await, None);
    assert_eq!(app.logged_in_as(&third).await.as_deref(), Some(MOBILE));
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    let page = app.get(&browser, "/account?done=session").await;
    assert!(page.body.contains("那台设备已退出登录"), "{}", page.body);
    assert!(!page.body.contains(second_handle.as_str()), "{}", page.body);
    app.event_of(user_id, "session_end", "ok").await;

    let all = app
        .account_post(&browser, "/account/sessions/end", &[("all_others", "1")])
        .await;

    assert_eq!(all.status, 303, "{}", all.body);
    assert_eq!(all.location.as_deref(), Some("/account?done=sessions"));
    assert_eq!(app.logged_in_as(&third).await, None);
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    assert_eq!(
        app.logged_in_as(&stranger).await.as_deref(),
        Some(OTHER_MOBILE)
    );
    assert_eq!(sessions_of(&app, user_id).await, 1);
    let page = app.get(&browser, "/account").await;
    let devices = section(&page.body, "sessions-heading");
    assert_eq!(devices.matches("<li>").count(), 1, "{devices}");
    assert!(!devices.contains("退出其他所有设备"), "{devices}");
    let ended = eventually(Duration::from_secs(10), async || {
        app.events_of(user_id)
            .await
            .iter()
            .filter(|e| e.kind == "session_end")
            .count()
            == 2
    })
    .await;
    assert!(ended, "{:?}", app.events_of(user_id).await);
}

// ---------------------------------------------------------------------------
// Deletion

async fn deleting_the_account_removes_it_and_anonymises_its_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = browser_with_agent(IPHONE);
    let user_id = sign_up(&app, &browser, &openid).await;
    let other = another_password_login(&app, MOBILE, PASSWORD).await;
    app.event_of(user_id, "bind", "ok").await;
    let login = app.event_of(user_id, "login", "ok").await;
    assert_eq!(login.address.as_deref(), Some("127.0.0.1"));
    let bind = app.event_of(user_id, "bind", "ok").await;
    assert_eq!(bind.user_agent.as_deref(), Some(IPHONE));

    let form = app.get(&browser, "/account/delete").await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert!(form.body.contains("name=\"confirm\""), "{}", form.body);
    let csrf = form.field("csrf_token").unwrap();
    for confirm in [vec![("confirm", "删除")], vec![]] {
        let mut fields = confirm.clone();
        fields.push(("csrf_token", &csrf));
        let refused = app.post_form(&browser, "/account/delete", &fields).await;
        assert_eq!(refused.status, 400, "{}", refused.body);
        assert!(
            refused.body.contains("请在确认框中输入“注销”"),
            "{}",
            refused.body
        );
        assert!(app.user(user_id).await.is_some());
    }

    let done = app
        .post_form(
            &browser,
            "/account/delete",
            &[("confirm", "注销"), ("csrf_token", &csrf)],
        )
        .await;

    assert_eq!(done.status, 200, "{}", done.body);
    assert!(done.body.contains("账号已注销"), "{}", done.body);
    assert!(app.user(user_id).await.is_none());
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
    assert_eq!(sessions_of(&app, user_id).await, 0);
    assert_eq!(app.logged_in_as(&browser).await, None);
    assert_eq!(app.logged_in_as(&other).await, None);
    assert_eq!(
        app.get(&browser, "/account").await.location.as_deref(),
        Some("/login?next=/account")
    );
    // Its events stay, naming nobody; the deletion is one more.
    let deleted = eventually(Duration::from_secs(10), async || {
        every_event(&app).await.iter().any(|e| e.1 == "delete")
    })
    .await;
    assert!(deleted, "{:?}", every_event(&app).await);
    let events = every_event(&app).await;
    assert!(events.len() >= 3, "bind, login, delete: {events:?}");
    for (user, kind, _, address, agent) in &events {
        assert_eq!(
            (user, address, agent),
            (&None, &None, &None),
            "{kind}: {events:?}"
        );
    }
    assert!(events.iter().any(|e| e.1 == "bind") && events.iter().any(|e| e.1 == "login"));
    let delete = events.iter().find(|e| e.1 == "delete").unwrap();
    assert_eq!(delete.2, "ok");

    // The QQ account and the mobile are free again.
    let bind_page = app.qq_login(&Browser::new(), &openid, "/").await;
    assert_eq!(bind_page.status, 200, "a bind page: {}", bind_page.body);
    assert_eq!(
        app.password_login(&Browser::new(), MOBILE, PASSWORD)
            .await
            .status,
        401
    );
}

// ---------------------------------------------------------------------------
// Sign-in events and the QQ profile

async fn logins_and_changes_leave_sign_in_events(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = browser_with_agent(IPHONE);
    let user_id = sign_up(&app, &browser, &openid).await;

    // A QQ login, a password login, a wrong password, an unknown account.
    let by_qq = another_qq_login(&app, &openid, IPHONE).await;
    let by_password = browser_with_agent(IPHONE);
    assert_eq!(
        app.password_login(&by_password, MOBILE, PASSWORD)
            .await
            .status,
        303
    );
    assert_eq!(
        app.password_login(&by_password, MOBILE, "not the password")
            .await
            .status,
        401
    );
    assert_eq!(
        app.password_login(&Browser::new(), "13000000000", PASSWORD)
            .await
            .status,
        401
    );
    // A QQ code used twice.
    let twice = Browser::new();
    let state = app.start_qq_login(&twice, "/").await;
    let code = app.qq.grant(&openid, "小明");
    assert_eq!(app.callback(&twice, &code, &state).await.status, 303);
    let state = app.start_qq_login(&twice, "/").await;
    let replayed = app.callback(&twice, &code, &state).await;
    assert_eq!(replayed.status, 400, "{}", replayed.body);
    // Account changes, then a logout.
    let unlinked = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_eq!(unlinked.status, 303, "{}", unlinked.body);
    let linked = link_from_account_centre(&app, &browser, &openid, "小明").await;
    assert_eq!(linked.status, 303, "{}", linked.body);
    let changed = app
        .account_post(
            &browser,
            "/account/password",
            &[("password", NEW_PASSWORD), ("password2", NEW_PASSWORD)],
        )
        .await;
    assert_eq!(changed.status, 303, "{}", changed.body);
    assert_eq!(app.logged_in_as(&by_qq).await, None);
    let csrf = app.get(&browser, "/").await.field("csrf_token").unwrap();
    let out = app
        .post_form(&browser, "/logout", &[("csrf_token", &csrf)])
        .await;
    assert_eq!(out.status, 303);

    let expected = [
        ("bind", Some("qq"), "ok"),
        ("login", Some("qq"), "ok"),
        ("login", Some("password"), "ok"),
        ("login", Some("password"), "wrong_password"),
        ("login", Some("qq"), "ok"),
        ("unlink", None, "ok"),
        ("link", Some("qq"), "ok"),
        ("password_change", None, "ok"),
        ("session_end", None, "ok"),
    ];
    let all_written = eventually(Duration::from_secs(10), async || {
        app.events_of(user_id).await.len() >= expected.len()
    })
    .await;
    let events = app.events_of(user_id).await;
    assert!(all_written, "{events:?}");
    let mut seen: Vec<(&str, Option<&str>, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.method.as_deref(), e.outcome.as_str()))
        .collect();
    seen.reverse();
    assert_eq!(seen, expected, "oldest first");
    for event in &events {
        assert_eq!(event.address.as_deref(), Some("127.0.0.1"), "{event:?}");
    }
    let from_phone = events
        .iter()
        .filter(|e| e.user_agent.as_deref() == Some(IPHONE))
        .count();
    assert_eq!(
        from_phone, 8,
        "all but the login of the browser without a name: {events:?}"
    );
    // Failures that name no account are kept, tied to nobody.
    let anonymous = eventually(Duration::from_secs(10), async || {
        let outcomes: Vec<String> = every_event(&app)
            .await
            .into_iter()
            .filter(|e| e.0.is_none())
            .map(|e| e.2)
            .collect();
        outcomes.contains(&"unknown_account".to_owned())
            && outcomes.contains(&"qq_code_rejected".to_owned())
    })
    .await;
    assert!(anonymous, "{:?}", every_event(&app).await);
}

async fn the_qq_profile_is_refreshed_after_a_login_at_most_once_a_day(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let browser = Browser::new();
    sign_up(&app, &browser, &openid).await;
    let asked = app.qq.calls_to("/user/get_user_info");
    assert_eq!(asked, 1, "the bind page asked for the nickname");

    // A profile stored today is not asked for again.
    another_qq_login(&app, &openid, WINDOWS).await;
    assert_eq!(app.qq.calls_to("/user/get_user_info"), asked);

    // Two days later, the next login asks, after answering.
    let o = openid.clone();
    app.db
        .write(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            diesel::update(qq_links::table.filter(qq_links::openid.eq(o)))
                .set((
                    qq_links::profile_at.eq(Some(qqlogin::db::now() - time::Duration::days(2))),
                    qq_links::nickname.eq("旧昵称"),
                    qq_links::avatar_url.eq(None::<String>),
                ))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let later = Browser::new();
    let state = app.start_qq_login(&later, "/").await;
    let code = app.qq.grant(&openid, "新昵称");
    let page = app.callback(&later, &code, &state).await;
    assert_eq!(page.status, 303, "{}", page.body);

    let refreshed = eventually(Duration::from_secs(10), async || {
        let (_, nickname, _, _) = link_of_openid(&app, &openid).await.unwrap();
        nickname.as_deref() == Some("新昵称")
    })
    .await;
    assert!(refreshed, "{:?}", link_of_openid(&app, &openid).await);
    assert_eq!(
        app.qq.calls_to("/user/get_user_info"),
        asked + 1,
        "one call: the stale login's, none for the fresh one"
    );
    let (_, _, avatar, profile_at) = link_of_openid(&app, &openid).await.unwrap();
    assert_eq!(avatar.as_deref(), Some(avatar_of(&openid).as_str()));
    let age = qqlogin::db::now() - profile_at.unwrap();
    assert!(age < time::Duration::minutes(1), "stored just now: {age}");
    let page = app.get(&later, "/account").await;
    assert!(
        section(&page.body, "qq").contains("新昵称"),
        "{}",
        page.body
    );
}

backend_tests!(
    a_visitor_is_sent_to_log_in_first,
    the_page_shows_the_account_its_qq_its_devices_and_its_sign_ins,
    the_sign_ins_list_shows_the_latest_twenty_logins_of_the_account,
    actions_need_a_proof_of_identity_from_the_last_ten_minutes,
    an_account_without_a_password_proves_itself_by_sms_and_keeps_its_only_way_in,
    no_password_opens_an_account_without_a_usable_one,
    unlinking_qq_removes_the_link_and_a_second_unlink_is_refused,
    a_qq_account_is_linked_from_the_account_centre,
    linking_a_qq_account_of_another_account_is_refused,
    a_new_password_ends_every_other_session,
    a_new_mobile_proven_by_its_code_moves_the_account,
    a_mobile_of_another_account_is_refused_and_a_chosen_user_name_stays,
    one_session_or_all_the_others_can_be_ended,
    deleting_the_account_removes_it_and_anonymises_its_events,
    logins_and_changes_leave_sign_in_events,
    the_qq_profile_is_refreshed_after_a_login_at_most_once_a_day,
);

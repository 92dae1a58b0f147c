//! The pages in a real browser: headless Chromium driven through chromedriver
//! (WebDriver), on a phone-sized screen (and a laptop's), against the
//! application in development mode with its built-in stand-in QQ at `/dev/qq/`.
//!
//! Each test starts its own chromedriver on a free port and stops it at the
//! end. Without chromedriver the tests print a note and pass, so `cargo test`
//! still runs everywhere; in CI (`CI` set) a missing chromedriver fails them.
//! Screenshots go to `target/screenshots/`.
//!
//! Every page is checked with axe-core (`Phone::assert_accessible`), read
//! from `tests/axe/node_modules` (`npm ci --prefix tests/axe`) and injected
//! into the page: no network. Without it the check is skipped with a loud
//! note, or fails in CI.

use std::future::Future;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use tokio::sync::Semaphore;

use crate::backend_tests;

#[path = "tour.rs"]
mod tour;
use crate::helpers::{Backend, Options, PASSWORD, spawn_app_with};

/// The phone: an iPhone 12–15 sized viewport, in CSS pixels.
const PHONE_WIDTH: u32 = 390;
const PHONE_HEIGHT: u32 = 844;
/// The laptop: a common 1280×800 window.
const DESKTOP_WIDTH: u32 = 1280;
const DESKTOP_HEIGHT: u32 = 800;
/// The most the login page may cost to load, everything included: pages
/// must be quick on a poor mobile connection.
const LOGIN_PAGE_BUDGET_BYTES: u64 = 50_000;
/// How long a page may take to arrive. Generous: only a failing test waits this long.
pub(crate) const WAIT: Duration = Duration::from_secs(30);
/// How often to look again while waiting.
pub(crate) const POLL: Duration = Duration::from_millis(50);
/// Browsers at once: every test in the binary runs in parallel on two cores.
pub(crate) static BROWSERS: Semaphore = Semaphore::const_new(2);

const MOBILE: &str = "13800138000";

/// axe-core as `npm ci --prefix tests/axe` installs it, at the version its lock file pins.
const AXE_SCRIPT: &str = "tests/axe/node_modules/axe-core/axe.min.js";
/// What axe checks: WCAG 2.0 and 2.1, levels A and AA, and its best practices.
const AXE_TAGS: [&str; 5] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"];
/// Impacts that fail a test; minor and moderate ones are only reported.
const AXE_FAILING_IMPACTS: [&str; 2] = ["serious", "critical"];
/// The most Tab presses one page may take to go round its controls.
const MAX_TAB_STOPS: usize = 80;

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// The whole first login as a person does it on a phone, then logout, then
/// the QQ login of someone already bound: straight home, no bind page.
async fn first_qq_login_on_a_phone_then_logout_then_straight_back_in(backend: Backend) {
    in_browser(backend, "first_login", |phone| async move {
        phone.goto("/login").await;
        phone.assert_page("登录", "/login").await;
        assert_eq!(
            phone.inner_width().await,
            i64::from(PHONE_WIDTH),
            "a phone-sized viewport"
        );
        phone.assert_accessible("login").await;

        phone.sign_up_with_qq("小明", MOBILE, PASSWORD).await;
        assert_eq!(phone.h1().await, format!("你好，{MOBILE}"));
        phone.assert_accessible("home, logged in").await;

        phone
            .click(Locator::XPath("//button[normalize-space()='退出登录']"))
            .await;
        phone.assert_page("登录", "/login").await;
        phone.goto("/").await;
        assert_eq!(
            phone.h1().await,
            "欢迎",
            "logged out: the home page no longer knows me"
        );
        phone.assert_accessible("home, logged out").await;

        phone.goto("/login").await;
        phone.qq_authorize("小明").await;
        phone.assert_page("首页", "/").await;
        assert_eq!(
            phone.h1().await,
            format!("你好，{MOBILE}"),
            "bound: no bind page this time"
        );
    })
    .await;
}

/// A wrong password for an existing account, on the password login form and
/// on the bind page: the form again, the reason in Chinese, and the page
/// still works (the next, right attempt succeeds).
async fn wrong_password_shows_the_form_again_with_the_reason(backend: Backend) {
    in_browser(backend, "wrong_password", |phone| async move {
        phone.goto("/login").await;
        phone.sign_up_with_qq("小红", MOBILE, PASSWORD).await;
        phone
            .click(Locator::XPath("//button[normalize-space()='退出登录']"))
            .await;
        phone.assert_page("登录", "/login").await;

        // The password form on /login.
        phone.fill("#username", MOBILE).await;
        phone.fill("#password", "not the password").await;
        phone
            .click(Locator::XPath(
                "//form[@action='/login']//button[@type='submit']",
            ))
            .await;
        phone.assert_page("登录", "/login").await;
        assert_eq!(phone.error_text().await, "用户名或密码错误，请重试。");
        assert_eq!(
            phone.value("#username").await,
            MOBILE,
            "what was typed is kept"
        );
        assert_eq!(
            phone.value("#password").await,
            "",
            "the password is never sent back"
        );
        phone.screenshot("login-error").await;
        phone.assert_accessible("login with an error").await;

        phone.fill("#password", PASSWORD).await;
        phone
            .click(Locator::XPath(
                "//form[@action='/login']//button[@type='submit']",
            ))
            .await;
        phone.assert_page("首页", "/").await;
        assert_eq!(phone.h1().await, format!("你好，{MOBILE}"));
        phone
            .click(Locator::XPath("//button[normalize-space()='退出登录']"))
            .await;
        phone.assert_page("登录", "/login").await;

        // The bind page: another QQ account tries the existing mobile with a wrong password.
        phone.qq_authorize("小刚").await;
        phone.assert_page("绑定账号", "/oauth/qq/callback").await;
        phone
            .bind_existing_account(MOBILE, "not the password")
            .await;
        phone.assert_page("绑定账号", "/oauth/qq/bind").await;
        // Without an SMS code, whether the number is registered stays private.
        assert_eq!(
            phone.error_text().await,
            "请获取并填写短信验证码；如果这个手机号已经注册，也可以输入它的正确密码。"
        );
        assert!(
            phone.body_text().await.contains("「小刚」"),
            "still names the QQ account"
        );
        assert_eq!(
            phone.value("#existing-mobile").await,
            MOBILE,
            "what was typed is kept"
        );
        assert_eq!(phone.value("#existing-password").await, "");
        phone.screenshot("bind-error").await;
        phone.assert_accessible("bind with an error").await;

        // The same page, corrected: a new mobile creates the account and logs in.
        phone.bind_new_mobile("13900139000", PASSWORD).await;
        phone.assert_page("首页", "/").await;
        assert_eq!(phone.h1().await, "你好，13900139000");
    })
    .await;
}

/// Screenshots of each page of the first login on the phone, for people to
/// look at; and no page may be wider than the phone.
async fn screenshots_of_the_pages_on_a_phone(backend: Backend) {
    in_browser(backend, "screenshots", |phone| async move {
        phone.goto("/login").await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("login").await;

        phone.click(Locator::LinkText("QQ登录")).await;
        phone
            .assert_page("QQ登录（开发用模拟）", "/dev/qq/oauth2.0/authorize")
            .await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("dev-qq-authorize").await;
        phone.assert_accessible("dev QQ authorize").await;

        phone.fill("#nickname", "小明").await;
        phone
            .click(Locator::XPath("//button[normalize-space()='授权并登录']"))
            .await;
        phone.assert_page("绑定账号", "/oauth/qq/callback").await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("bind").await;
        phone.assert_accessible("bind").await;

        let code = phone.ask_for_a_code(MOBILE).await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("bind-code-sent").await;
        phone.assert_accessible("bind, a code sent").await;
        let spoken = phone
            .live_text_once_filled(&format!("{NEW_WAY_SEND_BUTTON} + [aria-live=polite]"))
            .await;
        assert!(
            spoken.ends_with("秒后可以重新获取验证码"),
            "screen readers hear the countdown: {spoken}"
        );
        phone.register(&code, PASSWORD).await;
        phone.assert_page("首页", "/").await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("home").await;
    })
    .await;
}

/// After day one, on the phone: the account centre, unlinking QQ and
/// linking it again, then a forgotten password reset by SMS, whose last page
/// offers to unlink the QQ account. Screenshots of each page.
async fn the_account_centre_on_a_phone_unlink_link_again_and_reset(backend: Backend) {
    in_browser(backend, "account_centre", |phone| async move {
        phone.goto("/login").await;
        phone.sign_up_with_qq("小明", MOBILE, PASSWORD).await;
        phone.click(Locator::LinkText("账号中心")).await;
        phone.assert_page("账号中心", "/account").await;
        let page = phone.body_text().await;
        for shown in ["小明", "138****8000", "当前设备", "注销账号"] {
            assert!(
                page.contains(shown),
                "the account centre shows {shown}: {page}"
            );
        }
        assert!(
            !page.contains(MOBILE),
            "the mobile is masked, also as the user name: {page}"
        );
        // The bind that logged me in is the first sign-in listed (written in
        // the background: look again until it is there).
        phone.reload_until_it_shows("QQ登录（首次绑定）").await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("account").await;
        phone.scroll_to("#sessions-heading").await;
        phone.screenshot("account-sessions").await;
        phone.assert_accessible("account centre").await;

        phone
            .click(Locator::XPath("//button[normalize-space()='解除QQ绑定']"))
            .await;
        phone.assert_page("账号中心", "/account").await;
        assert_eq!(phone.text_of("[role=status]").await, "QQ账号已解除绑定。");
        assert!(phone.body_text().await.contains("还没有绑定QQ账号"));
        phone.screenshot("account-unlinked").await;
        phone
            .assert_accessible("account centre with a notice")
            .await;
        phone.assert_other_pages_accessible().await;
        phone.goto("/account").await;

        phone
            .click(Locator::XPath("//button[normalize-space()='绑定QQ账号']"))
            .await;
        phone
            .assert_page("QQ登录（开发用模拟）", "/dev/qq/oauth2.0/authorize")
            .await;
        phone.fill("#nickname", "小明").await;
        phone
            .click(Locator::XPath("//button[normalize-space()='授权并登录']"))
            .await;
        phone.assert_page("账号中心", "/account").await;
        assert_eq!(
            phone.text_of("[role=status]").await,
            "QQ账号已绑定，以后可以用QQ直接登录。"
        );
        assert!(phone.body_text().await.contains("小明"));

        phone
            .click(Locator::XPath("//button[normalize-space()='退出登录']"))
            .await;
        phone.assert_page("登录", "/login").await;
        phone.click(Locator::LinkText("忘记密码？")).await;
        phone.assert_page("找回密码", "/password/reset").await;
        phone.fill("#mobile", MOBILE).await;
        let answer = phone.image_code_answer().await;
        phone.fill("#image_code", &answer).await;
        phone.assert_fits_the_screen().await;
        phone.screenshot("password-reset").await;
        phone.assert_accessible("password reset").await;
        phone
            .click(Locator::XPath("//button[normalize-space()='获取验证码']"))
            .await;
        phone.assert_page("找回密码", "/password/reset/code").await;
        phone.assert_accessible("password reset, a code sent").await;
        let code = phone.code_in_notice().await;
        phone.fill("#sms_code", &code).await;
        let new_password = "a new password 2026";
        phone.fill("#password", new_password).await;
        phone.fill("#password2", new_password).await;
        phone
            .click(Locator::XPath(
                "//button[normalize-space()='设置新密码并登录']",
            ))
            .await;
        phone
            .assert_page("密码已重设", "/password/reset/done")
            .await;
        assert!(
            phone.body_text().await.contains("小明"),
            "the linked QQ is named"
        );
        phone.assert_fits_the_screen().await;
        phone.screenshot("password-reset-done").await;
        phone.assert_accessible("password reset done").await;

        phone
            .click(Locator::XPath(
                "//button[normalize-space()='这不是我的QQ，解除绑定']",
            ))
            .await;
        phone.assert_page("账号中心", "/account").await;
        assert_eq!(phone.text_of("[role=status]").await, "QQ账号已解除绑定。");
    })
    .await;
}

/// The bind page's two ways, each to its end: "我是新用户" creates the
/// account (after a wrong code, shown beside its field); "我已有账号" links
/// another QQ login to it by its mobile and password.
async fn both_ways_of_the_bind_page(backend: Backend) {
    in_browser(backend, "both_ways", |phone| async move {
        phone.goto("/login").await;
        phone.qq_authorize("小明").await;
        phone.assert_page("绑定账号", "/oauth/qq/callback").await;
        for (field, autocomplete) in [
            ("#existing-mobile", "tel"),
            ("#existing-password", "current-password"),
            ("#mobile", "tel"),
            ("#sms_code", "one-time-code"),
            ("#password", "new-password"),
        ] {
            let input = phone.find(Locator::Css(field)).await;
            let attribute = input.attr("autocomplete").await.unwrap();
            assert_eq!(attribute.as_deref(), Some(autocomplete), "{field}");
        }

        // New here: a wrong code is said beside the code's field.
        let code = phone.ask_for_a_code(MOBILE).await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        phone.register(wrong, PASSWORD).await;
        phone.assert_page("绑定账号", "/oauth/qq/bind").await;
        assert!(
            !phone.text_of("#sms_code-error").await.is_empty(),
            "the reason is beside the code"
        );
        let code_field = phone.find(Locator::Css("#sms_code")).await;
        assert_eq!(
            code_field.attr("aria-invalid").await.unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(phone.value("#mobile").await, MOBILE, "the mobile is kept");
        phone.assert_fits_the_screen().await;
        phone.screenshot("bind-code-wrong").await;
        phone.assert_accessible("bind with a field error").await;
        phone.register(&code, PASSWORD).await;
        phone.assert_page("首页", "/").await;
        assert_eq!(phone.h1().await, format!("你好，{MOBILE}"));

        // The account gives up its QQ; the next QQ login finds it by "我已有账号".
        phone.click(Locator::LinkText("账号中心")).await;
        phone
            .click(Locator::XPath("//button[normalize-space()='解除QQ绑定']"))
            .await;
        phone
            .click(Locator::XPath("//button[normalize-space()='退出登录']"))
            .await;
        phone.qq_authorize("小明").await;
        phone.assert_page("绑定账号", "/oauth/qq/callback").await;
        phone.bind_existing_account(MOBILE, PASSWORD).await;
        phone.assert_page("首页", "/").await;
        assert_eq!(phone.h1().await, format!("你好，{MOBILE}"));
    })
    .await;
}

/// On a laptop the site's panel stands beside the card, nothing scrolls
/// sideways, and the login page, everything included, stays under its
/// budget (reported, for the record); every page passes the accessibility
/// check at this size.
async fn on_a_laptop_the_site_stands_beside_the_card_and_the_login_page_is_light(backend: Backend) {
    in_browser_on(backend, "desktop", Screen::Desktop, |laptop| async move {
        laptop.goto("/login").await;
        laptop.assert_page("登录", "/login").await;
        assert!(laptop.inner_width().await > 1000, "a laptop-sized viewport");
        laptop.assert_fits_the_screen().await;
        let panel_right = laptop
            .number("return document.querySelector('.site-panel').getBoundingClientRect().right;")
            .await;
        let card_left = laptop
            .number("return document.querySelector('.card').getBoundingClientRect().left;")
            .await;
        assert!(
            0.0 < panel_right && panel_right <= card_left,
            "the panel ({panel_right}) is left of the card ({card_left})"
        );
        laptop.screenshot("login-desktop").await;

        // Every byte the login page cost: the page, its stylesheet and scripts.
        let bytes = laptop
            .number(
                "return performance.getEntriesByType('navigation')
                   .concat(performance.getEntriesByType('resource'))
                   .reduce((sum, e) => sum + e.transferSize, 0);",
            )
            .await;
        println!("the login page transferred {bytes} bytes");
        assert!(
            0.0 < bytes && bytes < LOGIN_PAGE_BUDGET_BYTES as f64,
            "the login page cost {bytes} bytes (budget {LOGIN_PAGE_BUDGET_BYTES})"
        );

        laptop.qq_authorize("小明").await;
        laptop.assert_page("绑定账号", "/oauth/qq/callback").await;
        laptop.assert_fits_the_screen().await;
        laptop.screenshot("bind-desktop").await;

        laptop.goto("/login").await;
        laptop.assert_every_page_accessible().await;
    })
    .await;
}

/// A phone set to dark mode gets the dark pages, and every page passes the
/// accessibility check in them (their own contrast).
async fn dark_mode_follows_the_system(backend: Backend) {
    in_browser_on(backend, "dark", Screen::DarkPhone, |phone| async move {
        phone.goto("/login").await;
        phone.assert_page("登录", "/login").await;
        let background = phone
            .client
            .execute(
                "return getComputedStyle(document.body).backgroundColor;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(background, json!("rgb(13, 17, 23)"), "the dark page");
        phone.assert_fits_the_screen().await;
        phone.screenshot("login-dark").await;

        phone.assert_every_page_accessible().await;
    })
    .await;
}

/// The accessibility check itself: on a page spoilt on purpose it finds
/// each fault, so that a page it passes has truly been looked at.
#[actix_web::test]
async fn the_accessibility_check_finds_faults_put_there_on_purpose() {
    in_browser(Backend::Sqlite, "axe_self_test", |phone| async move {
        phone.goto("/login").await;
        phone.assert_page("登录", "/login").await;
        phone
            .client
            .execute(
                // Styles through the CSSOM: the pages' CSP refuses style attributes.
                "const main = document.querySelector('main');
                 main.insertAdjacentHTML('beforeend',
                   '<img src=\"/no-such-image.png\"><p id=\"faint\">faint</p><input name=\"unlabelled\">');
                 document.querySelector('#faint').style.color = '#ccc';
                 document.querySelector('#username').style.outline = 'none';",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("spoil the page: {e}"));
        let unseen = phone.focused_without_outline("login, spoilt").await;
        assert_eq!(unseen.len(), 1, "{unseen:?}");
        assert!(unseen[0].starts_with("input#username"), "{unseen:?}");
        let Some(violations) = phone.axe_violations("login, spoilt").await else {
            return;
        };
        let found: Vec<(&str, &str)> = violations
            .iter()
            .filter_map(|v| Some((v["id"].as_str()?, v["impact"].as_str()?)))
            .collect();
        for expected in [
            ("image-alt", "critical"),
            ("color-contrast", "serious"),
            ("label", "critical"),
        ] {
            assert!(found.contains(&expected), "{expected:?} in {found:?}");
        }
    })
    .await;
}

backend_tests!(
    first_qq_login_on_a_phone_then_logout_then_straight_back_in,
    dark_mode_follows_the_system,
    both_ways_of_the_bind_page,
    on_a_laptop_the_site_stands_beside_the_card_and_the_login_page_is_light,
    wrong_password_shows_the_form_again_with_the_reason,
    screenshots_of_the_pages_on_a_phone,
    the_account_centre_on_a_phone_unlink_link_again_and_reset,
);

// ---------------------------------------------------------------------------
// The phone: a browser session on the application
// ---------------------------------------------------------------------------

/// One browser session, on one running application.
#[derive(Clone)]
struct Phone {
    client: Client,
    base: String,
    /// The backend, for screenshot names.
    label: String,
    /// The application's database: the image codes' answers are read there.
    db: qqlogin::db::Db,
}

impl Phone {
    async fn goto(&self, path: &str) {
        self.client
            .goto(&format!("{}{path}", self.base))
            .await
            .unwrap_or_else(|e| panic!("open {path}: {e}"));
    }

    /// The first element matching `locator`, waiting for it to appear.
    async fn find(&self, locator: Locator<'_>) -> fantoccini::elements::Element {
        let found = self
            .client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(locator)
            .await;
        match found {
            Ok(element) => element,
            Err(e) => panic!("{locator:?} not found ({e}) on {}", self.where_am_i().await),
        }
    }

    /// Clicks what `locator` finds and waits until the next page has loaded
    /// (a new document, fully loaded): never a fixed sleep.
    async fn click(&self, locator: Locator<'_>) {
        let element = self.find(locator).await;
        self.client
            .execute("window.__qqloginPageBefore = true;", vec![])
            .await
            .unwrap_or_else(|e| panic!("mark the page: {e}"));
        element
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {locator:?}: {e}"));
        let until = Instant::now() + WAIT;
        loop {
            // While the browser navigates a script may fail; that only means "not yet".
            let loaded = self
                .client
                .execute(
                    "return document.readyState === 'complete' && !window.__qqloginPageBefore;",
                    vec![],
                )
                .await;
            if let Ok(Value::Bool(true)) = loaded {
                return;
            }
            assert!(
                Instant::now() < until,
                "clicked {locator:?}, but no new page loaded within {WAIT:?} (last: {loaded:?}) on {}",
                self.where_am_i().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Types `text` into the input `css`, replacing what it held.
    async fn fill(&self, css: &str, text: &str) {
        let input = self.find(Locator::Css(css)).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
        assert_eq!(self.value(css).await, text, "{css} holds what was typed");
    }

    async fn value(&self, css: &str) -> String {
        let input = self.find(Locator::Css(css)).await;
        input
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("value of {css}: {e}"))
            .unwrap_or_default()
    }

    async fn text_of(&self, css: &str) -> String {
        let element = self.find(Locator::Css(css)).await;
        element
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
            .trim()
            .to_owned()
    }

    async fn h1(&self) -> String {
        self.text_of("h1").await
    }

    async fn body_text(&self) -> String {
        self.text_of("body").await
    }

    /// The error box's message (the page must show one).
    async fn error_text(&self) -> String {
        self.text_of("[role=alert]").await
    }

    async fn title(&self) -> String {
        self.client
            .title()
            .await
            .unwrap_or_else(|e| panic!("title: {e}"))
    }

    async fn path(&self) -> String {
        let url = self
            .client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("current url: {e}"));
        url.path().to_owned()
    }

    /// For failure messages: the page's title, address and text.
    async fn where_am_i(&self) -> String {
        let url = match self.client.current_url().await {
            Ok(url) => url.to_string(),
            Err(e) => format!("(no url: {e})"),
        };
        let title = self.client.title().await.unwrap_or_default();
        let text = match self.client.find(Locator::Css("body")).await {
            Ok(body) => body.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        format!("page 「{title}」 at {url}:\n{text}")
    }

    /// The page now shown is the one titled `title` (and the site's
    /// default name, in either language), at `path`.
    async fn assert_page(&self, title: &str, path: &str) {
        let (actual_title, actual_path) = (self.title().await, self.path().await);
        let titled = ["统一登录", "Unified Login"]
            .iter()
            .any(|site| actual_title == format!("{title} - {site}"));
        assert!(
            titled && actual_path == path,
            "expected the page 「{title}」 at {path}, got {}",
            self.where_am_i().await
        );
    }

    async fn inner_width(&self) -> i64 {
        let width = self
            .client
            .execute("return window.innerWidth;", vec![])
            .await;
        width
            .ok()
            .and_then(|w| w.as_i64())
            .unwrap_or_else(|| panic!("window.innerWidth"))
    }

    /// Nothing sticks out sideways: no horizontal scrolling on the phone.
    async fn assert_fits_the_screen(&self) {
        let widths = self
            .client
            .execute(
                "return [document.documentElement.scrollWidth, window.innerWidth];",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("page widths: {e}"));
        let (content, screen) = (widths[0].as_i64(), widths[1].as_i64());
        assert!(
            content.is_some() && content <= screen,
            "{} is wider ({content:?}) than the screen ({screen:?})",
            self.where_am_i().await
        );
    }

    /// Saves what the screen shows as `target/screenshots/{name}-{label}.png`.
    async fn screenshot(&self, name: &str) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        assert!(png.starts_with(b"\x89PNG"), "a screenshot is a PNG");
        let path = screenshot_dir().join(format!("{name}-{}.png", self.label));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
    }

    /// Scrolls the element `css` to the top of the screen.
    async fn scroll_to(&self, css: &str) {
        let element = self.find(Locator::Css(css)).await;
        let element = serde_json::to_value(element).expect("an element is JSON");
        self.client
            .execute("arguments[0].scrollIntoView();", vec![element])
            .await
            .unwrap_or_else(|e| panic!("scroll to {css}: {e}"));
    }

    /// Loads the page again until its text holds `text` (something written
    /// in the background), within [`WAIT`].
    async fn reload_until_it_shows(&self, text: &str) {
        let until = Instant::now() + WAIT;
        while !self.body_text().await.contains(text) {
            assert!(
                Instant::now() < until,
                "{text} never showed on {}",
                self.where_am_i().await
            );
            self.client
                .refresh()
                .await
                .unwrap_or_else(|e| panic!("reload: {e}"));
        }
    }

    /// The answer of the image code this page shows (read from the database:
    /// the picture is for people), once the browser has loaded the image.
    async fn image_code_answer(&self) -> String {
        let id = self.value("input[name=image_code_id]").await;
        let id = qqlogin::domain::ImageCodeId::parse(&id).expect("the page's image code id");
        let codes = qqlogin::image_code::ImageCodes::new(self.db.clone());
        let until = Instant::now() + WAIT;
        loop {
            if let Some(answer) = codes.answer_for_tests(&id).await {
                return answer;
            }
            assert!(Instant::now() < until, "the image code was never drawn");
            tokio::time::sleep(POLL).await;
        }
    }

    /// The SMS code the development sender shows in the page's notice.
    async fn code_in_notice(&self) -> String {
        let notice = self.text_of("[role=status]").await;
        notice
            .split("验证码是 ")
            .nth(1)
            .unwrap_or_else(|| panic!("the notice shows the code: {notice}"))
            .chars()
            .take(6)
            .collect()
    }

    /// From the login page: "QQ登录", then at the stand-in QQ type
    /// `nickname` and press 授权并登录. Leaves the browser where QQ's answer
    /// led (the bind page, or `next` when already bound).
    async fn qq_authorize(&self, nickname: &str) {
        self.assert_page("登录", "/login").await;
        self.click(Locator::LinkText("QQ登录")).await;
        self.assert_page("QQ登录（开发用模拟）", "/dev/qq/oauth2.0/authorize")
            .await;
        self.fill("#nickname", nickname).await;
        self.click(Locator::XPath("//button[normalize-space()='授权并登录']"))
            .await;
    }

    /// From the login page: the first QQ login of `nickname`, bound to a new
    /// account for `mobile`; ends on the home page, logged in.
    async fn sign_up_with_qq(&self, nickname: &str, mobile: &str, password: &str) {
        self.qq_authorize(nickname).await;
        self.assert_page("绑定账号", "/oauth/qq/callback").await;
        assert!(
            self.body_text()
                .await
                .contains(&format!("你正在用QQ账号「{nickname}」登录")),
            "the bind page names the QQ account: {}",
            self.where_am_i().await
        );
        self.bind_new_mobile(mobile, password).await;
        self.assert_page("首页", "/").await;
    }

    /// On the bind page, the way "我是新用户": a new mobile, its SMS code
    /// (the development sender shows it on the page), a password, and 绑定并登录.
    async fn bind_new_mobile(&self, mobile: &str, password: &str) {
        let code = self.ask_for_a_code(mobile).await;
        self.register(&code, password).await;
    }

    /// On the bind page, the way "我是新用户", a code asked for: the code, a
    /// password, and 绑定并登录.
    async fn register(&self, code: &str, password: &str) {
        self.fill("#sms_code", code).await;
        self.fill("#password", password).await;
        self.click(Locator::XPath("//button[normalize-space()='绑定并登录']"))
            .await;
    }

    /// On the bind page, the way "我是新用户": `mobile` and 获取验证码; the
    /// code sent, once the page has come back with it and kept the mobile.
    async fn ask_for_a_code(&self, mobile: &str) -> String {
        self.fill("#mobile", mobile).await;
        self.click(Locator::Css(NEW_WAY_SEND_BUTTON)).await;
        self.assert_page("绑定账号", "/oauth/qq/sms").await;
        let code = self.code_in_notice().await;
        assert_eq!(self.value("#mobile").await, mobile, "the mobile is kept");
        let button = self.find(Locator::Css(NEW_WAY_SEND_BUTTON)).await;
        let label = button.text().await.unwrap_or_default();
        assert!(
            label.ends_with("秒后重新获取"),
            "the button counts down: {label}"
        );
        assert!(
            !button.is_enabled().await.unwrap_or(true),
            "and cannot be pressed meanwhile"
        );
        code
    }

    /// On the bind page, the way "我已有账号": the account's mobile and
    /// password, and 绑定已有账号.
    async fn bind_existing_account(&self, mobile: &str, password: &str) {
        self.fill("#existing-mobile", mobile).await;
        self.fill("#existing-password", password).await;
        self.click(Locator::XPath("//button[normalize-space()='绑定已有账号']"))
            .await;
    }

    /// From the login page, logged out: every page a person meets passes
    /// [`Self::assert_accessible`], each state of it (errors, notices, a code
    /// sent) too. Ends logged in, on the page that says the password was reset.
    async fn assert_every_page_accessible(&self) {
        self.assert_page("登录", "/login").await;
        self.assert_accessible("login").await;
        self.fill("#username", MOBILE).await;
        self.fill("#password", "not the password").await;
        self.click(Locator::XPath(
            "//form[@action='/login']//button[@type='submit']",
        ))
        .await;
        self.assert_page("登录", "/login").await;
        self.assert_accessible("login with an error").await;

        self.click(Locator::LinkText("QQ登录")).await;
        self.assert_page("QQ登录（开发用模拟）", "/dev/qq/oauth2.0/authorize")
            .await;
        self.assert_accessible("dev QQ authorize").await;
        self.fill("#nickname", "小白").await;
        self.click(Locator::XPath("//button[normalize-space()='授权并登录']"))
            .await;
        self.assert_page("绑定账号", "/oauth/qq/callback").await;
        self.assert_accessible("bind").await;
        self.bind_existing_account(MOBILE, "not the password").await;
        self.assert_page("绑定账号", "/oauth/qq/bind").await;
        self.assert_accessible("bind with an error").await;
        let code = self.ask_for_a_code(MOBILE).await;
        self.assert_accessible("bind, a code sent").await;
        let wrong = if code == "000000" { "111111" } else { "000000" };
        self.register(wrong, PASSWORD).await;
        self.assert_page("绑定账号", "/oauth/qq/bind").await;
        assert!(!self.text_of("#sms_code-error").await.is_empty());
        self.assert_accessible("bind with a field error").await;
        self.register(&code, PASSWORD).await;
        self.assert_page("首页", "/").await;
        self.assert_accessible("home, logged in").await;

        self.click(Locator::LinkText("账号中心")).await;
        self.assert_page("账号中心", "/account").await;
        self.assert_accessible("account centre").await;
        self.click(Locator::XPath("//button[normalize-space()='解除QQ绑定']"))
            .await;
        self.assert_page("账号中心", "/account").await;
        self.assert_accessible("account centre with a notice").await;
        self.assert_other_pages_accessible().await;

        // Linked again, so that the reset's last page names the QQ account.
        self.goto("/account").await;
        self.click(Locator::XPath("//button[normalize-space()='绑定QQ账号']"))
            .await;
        self.fill("#nickname", "小白").await;
        self.click(Locator::XPath("//button[normalize-space()='授权并登录']"))
            .await;
        self.assert_page("账号中心", "/account").await;
        self.click(Locator::XPath("//button[normalize-space()='退出登录']"))
            .await;
        self.assert_page("登录", "/login").await;
        self.goto("/").await;
        self.assert_page("首页", "/").await;
        self.assert_accessible("home, logged out").await;

        self.goto("/password/reset").await;
        self.assert_page("找回密码", "/password/reset").await;
        self.assert_accessible("password reset").await;
        self.fill("#mobile", MOBILE).await;
        let answer = self.image_code_answer().await;
        self.fill("#image_code", &answer).await;
        self.click(Locator::XPath("//button[normalize-space()='获取验证码']"))
            .await;
        self.assert_page("找回密码", "/password/reset/code").await;
        self.assert_accessible("password reset, a code sent").await;
        let code = self.code_in_notice().await;
        self.fill("#sms_code", &code).await;
        self.fill("#password", "a new password 2026").await;
        self.fill("#password2", "a new password 2026").await;
        self.click(Locator::XPath(
            "//button[normalize-space()='设置新密码并登录']",
        ))
        .await;
        self.assert_page("密码已重设", "/password/reset/done").await;
        self.assert_accessible("password reset done").await;
    }

    /// Logged in: the pages no button of the account centre's tests leads
    /// to (verify, delete) and two error pages pass [`Self::assert_accessible`].
    async fn assert_other_pages_accessible(&self) {
        self.goto("/account/verify").await;
        self.assert_page("验证身份", "/account/verify").await;
        self.assert_accessible("verify").await;
        self.goto("/account/delete").await;
        self.assert_page("注销账号", "/account/delete").await;
        self.assert_accessible("delete").await;
        self.goto("/no-such-page").await;
        self.assert_page("页面不存在", "/no-such-page").await;
        self.assert_accessible("error: not found").await;
        // A callback whose state this browser never began.
        self.goto("/oauth/qq/callback?code=stale&state=stale").await;
        assert_eq!(self.path().await, "/oauth/qq/callback");
        self.assert_accessible("error: stale callback").await;
    }

    /// The page now shown passes axe-core (no serious or critical violation
    /// of [`AXE_TAGS`]), and Tab shows where the focus is on each control it
    /// reaches. `page_name` names the page in failure messages.
    async fn assert_accessible(&self, page_name: &str) {
        let page = format!("{page_name} ({}, {})", self.label, self.path().await);
        let unseen = self.focused_without_outline(&page).await;
        assert!(
            unseen.is_empty(),
            "on {page}, Tab focuses these without a visible outline: {unseen:?}"
        );
        let Some(violations) = self.axe_violations(&page).await else {
            return;
        };
        let mut failing = Vec::new();
        for violation in &violations {
            let impact = violation["impact"].as_str().unwrap_or("unknown");
            let line = format!(
                "{} ({impact}): {}; at {}",
                violation["id"].as_str().unwrap_or("?"),
                violation["help"].as_str().unwrap_or("?"),
                violation["targets"]
            );
            if AXE_FAILING_IMPACTS.contains(&impact) {
                failing.push(line);
            } else {
                println!("axe on {page}, not failing: {line}");
            }
        }
        assert!(
            failing.is_empty(),
            "axe-core finds {} serious or critical violation(s) on {page}:\n  {}",
            failing.len(),
            failing.join("\n  ")
        );
    }

    /// What axe-core finds wrong on the page now shown, by [`AXE_TAGS`]: one
    /// `{id, impact, help, targets}` a rule broken. `None` when axe-core is
    /// not installed (see [`axe_script`]).
    async fn axe_violations(&self, page: &str) -> Option<Vec<Value>> {
        let axe = axe_script()?;
        // A new page each time: inject axe-core again only when it is not there.
        let present = self
            .client
            .execute("return typeof window.axe === 'object';", vec![])
            .await
            .unwrap_or_else(|e| panic!("look for axe on {page}: {e}"));
        if present != Value::Bool(true) {
            self.client
                .execute(axe, vec![])
                .await
                .unwrap_or_else(|e| panic!("inject axe-core into {page}: {e}"));
        }
        let answer = self
            .client
            .execute_async(
                "const [tags, done] = arguments;
                 axe.run(document, { runOnly: { type: 'tag', values: tags } })
                   .then(
                     (results) => done(results.violations.map((v) => ({
                       id: v.id,
                       impact: v.impact,
                       help: v.help,
                       targets: v.nodes.map((node) => node.target.join(' ')),
                     }))),
                     (error) => done('axe.run failed: ' + error),
                   );",
                vec![json!(AXE_TAGS)],
            )
            .await
            .unwrap_or_else(|e| panic!("run axe on {page}: {e}"));
        match answer {
            Value::Array(violations) => Some(violations),
            other => panic!("axe on {page}: {other}"),
        }
    }

    /// From the top of the page, Tab goes round every control: those that,
    /// focused so, show no outline at least 2px wide. Leaves the page
    /// scrolled as it was, nothing focused.
    async fn focused_without_outline(&self, page: &str) -> Vec<String> {
        // Focus the body for a moment: Tab then starts from the page's beginning.
        self.client
            .execute(
                "window.__qqloginScroll = [window.scrollX, window.scrollY];
                 window.__qqloginTabRound = (window.__qqloginTabRound || 0) + 1;
                 document.body.tabIndex = -1;
                 document.body.focus();
                 document.body.removeAttribute('tabindex');",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("focus the body of {page}: {e}"));
        let tab = KeyActions::new("keyboard".to_owned())
            .then(KeyAction::Down {
                value: char::from(Key::Tab),
            })
            .then(KeyAction::Up {
                value: char::from(Key::Tab),
            });
        let mut unseen = Vec::new();
        let mut stops = 0;
        loop {
            self.client
                .perform_actions(tab.clone())
                .await
                .unwrap_or_else(|e| panic!("press Tab on {page}: {e}"));
            let focused = self
                .client
                .execute(
                    "const e = document.activeElement;
                     if (!e || e === document.body || e === document.documentElement) return null;
                     if (e.__qqloginTabRound === window.__qqloginTabRound) return null;
                     e.__qqloginTabRound = window.__qqloginTabRound;
                     const style = getComputedStyle(e);
                     const label = (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().slice(0, 24);
                     return {
                       what: e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + ' 「' + label + '」',
                       shown: style.outlineStyle !== 'none' && parseFloat(style.outlineWidth) >= 2
                         && style.outlineColor !== 'rgba(0, 0, 0, 0)',
                     };",
                    vec![],
                )
                .await
                .unwrap_or_else(|e| panic!("what has the focus on {page}: {e}"));
            if focused.is_null() {
                break;
            }
            stops += 1;
            if focused["shown"] != Value::Bool(true) {
                unseen.push(focused["what"].as_str().unwrap_or("?").to_owned());
            }
            assert!(
                stops <= MAX_TAB_STOPS,
                "Tab never went round {page}'s controls"
            );
        }
        self.client
            .release_actions()
            .await
            .unwrap_or_else(|e| panic!("release the keyboard on {page}: {e}"));
        self.client
            .execute(
                "if (document.activeElement) document.activeElement.blur();
                 window.scrollTo(...window.__qqloginScroll);",
                vec![],
            )
            .await
            .unwrap_or_else(|e| panic!("unfocus {page}: {e}"));
        assert!(stops > 0, "Tab reached no control on {page}");
        unseen
    }

    /// The text of the live region `css` (out of sight, so its
    /// `textContent`), once a script has put some in, within [`WAIT`].
    async fn live_text_once_filled(&self, css: &str) -> String {
        let until = Instant::now() + WAIT;
        loop {
            let text = self
                .client
                .execute(
                    "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                    vec![json!(css)],
                )
                .await
                .unwrap_or_else(|e| panic!("text of {css}: {e}"));
            match text.as_str() {
                Some(text) if !text.is_empty() => return text.to_owned(),
                _ => assert!(
                    Instant::now() < until,
                    "{css} was never filled ({text}) on {}",
                    self.where_am_i().await
                ),
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// A number evaluated by `script` in the page.
    async fn number(&self, script: &str) -> f64 {
        let value = self
            .client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("{script}: {e}"));
        value
            .as_f64()
            .unwrap_or_else(|| panic!("{script} gave {value}"))
    }
}

/// axe-core's script, read once; `None`, after a loud note, when it is not
/// installed (and then, under CI, the test fails instead).
fn axe_script() -> Option<&'static str> {
    static SCRIPT: OnceLock<Option<String>> = OnceLock::new();
    SCRIPT
        .get_or_init(|| {
            let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(AXE_SCRIPT);
            match std::fs::read_to_string(&path) {
                Ok(script) => Some(script),
                Err(e) => {
                    crate::skip::skip(
                        &format!(
                            "axe-core is not installed ({}: {e}), so the pages' accessibility was not checked",
                            path.display()
                        ),
                        "run `npm ci --prefix tests/axe` (.ci/run does)",
                    );
                    None
                }
            }
        })
        .as_deref()
}

/// The send button of the bind page's way "我是新用户".
const NEW_WAY_SEND_BUTTON: &str = "#send-sms";

pub(crate) fn screenshot_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("screenshots");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    dir
}

// ---------------------------------------------------------------------------
// The harness: chromedriver, Chromium, the application
// ---------------------------------------------------------------------------

/// Runs `body` in a fresh headless Chromium on a phone-sized screen, against
/// the application in development mode on `backend`. The browser and its
/// driver are stopped whatever happens; a failing test leaves a screenshot
/// `target/screenshots/failed-{name}-{backend}.png` and chromedriver's log.
async fn in_browser<F, Fut>(backend: Backend, name: &str, body: F)
where
    F: FnOnce(Phone) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    in_browser_on(backend, name, Screen::Phone, body).await;
}

/// The screen a browser test runs on.
#[derive(Clone, Copy)]
enum Screen {
    Phone,
    /// A phone whose system is set to dark mode.
    DarkPhone,
    Desktop,
}

impl Screen {
    /// As screenshots are named.
    fn name(self) -> &'static str {
        match self {
            Screen::Phone => "phone",
            Screen::DarkPhone => "phone-dark",
            Screen::Desktop => "desktop",
        }
    }
}

/// [`in_browser`] on `screen`.
async fn in_browser_on<F, Fut>(backend: Backend, name: &str, screen: Screen, body: F)
where
    F: FnOnce(Phone) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let Some(chromedriver) = find_chromedriver() else {
        crate::skip::skip(
            &format!(
                "chromedriver was not found ($CHROMEDRIVER, the PATH, /usr/bin), so browser test {name} did not run"
            ),
            "install Debian's chromium and chromium-driver (.ci/run does), or set CHROMEDRIVER to its path",
        );
        return;
    };
    let label = match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres(_) => "postgres",
    };
    let _permit = BROWSERS
        .acquire()
        .await
        .expect("the semaphore is never closed");
    let app = spawn_app_with(
        backend,
        Options {
            dev_mode: true,
            ..Options::default()
        },
    )
    .await;
    let driver = Driver::start(&chromedriver);
    let client = driver.new_session(screen).await;

    let phone = Phone {
        client: client.clone(),
        base: app.address.clone(),
        label: label.to_owned(),
        db: app.db.clone(),
    };
    run_and_close(
        driver,
        client,
        &format!("{name} ({label})"),
        &format!("{name}-{label}"),
        body(phone),
    )
    .await;
}

/// Runs `test` on a task of its own, so that a failing assertion still lets
/// us close the browser; when it fails, leaves the screenshot
/// `target/screenshots/failed-{shot}.png` and chromedriver's log. Then closes
/// the browser and stops the driver, and fails as the test did.
pub(crate) async fn run_and_close<Fut>(
    driver: Driver,
    client: Client,
    name: &str,
    shot: &str,
    test: Fut,
) where
    Fut: Future<Output = ()> + 'static,
{
    let outcome = actix_web::rt::spawn(test).await;
    if outcome.is_err() {
        // An open alert would stop the screenshot.
        let _ = client.dismiss_alert().await;
        let shot = match client.screenshot().await {
            Ok(png) => {
                let path = screenshot_dir().join(format!("failed-{shot}.png"));
                std::fs::write(&path, png)
                    .map(|()| path.display().to_string())
                    .unwrap_or_default()
            }
            Err(e) => format!("(none: {e})"),
        };
        eprintln!(
            "browser test {name} failed; screenshot {shot}; chromedriver's log ends:\n{}",
            driver.log_tail()
        );
    }
    let closed = client.close().await;
    drop(driver);
    match outcome {
        Ok(()) => {}
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("browser test {name}: {e}"),
    }
    if let Err(e) = closed {
        panic!("closing the browser: {e}");
    }
}

/// `CHROMEDRIVER` if set, else `chromedriver` on the `PATH` or in `/usr/bin`;
/// `None` when that is not a file.
pub(crate) fn find_chromedriver() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("CHROMEDRIVER") {
        return Some(PathBuf::from(path)).filter(|path| path.is_file());
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("chromedriver"))
        .find(|candidate| candidate.is_file())
}

/// A chromedriver process of our own, on a free port; killed on drop.
pub(crate) struct Driver {
    child: Child,
    port: u16,
    /// Chromium's profile and chromedriver's log.
    dir: tempfile::TempDir,
}

impl Driver {
    pub(crate) fn start(chromedriver: &Path) -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .arg(format!(
                "--log-path={}",
                dir.path().join("chromedriver.log").display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", chromedriver.display()));
        let mut driver = Self { child, port, dir };
        driver.wait_until_listening();
        driver
    }

    /// Polls the port until chromedriver answers, failing fast if it died.
    fn wait_until_listening(&mut self) {
        let until = Instant::now() + WAIT;
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "chromedriver exited ({status}) before listening; its log:\n{}",
                    self.log_tail()
                );
            }
            assert!(
                Instant::now() < until,
                "chromedriver not listening on port {} after {WAIT:?}",
                self.port
            );
            std::thread::sleep(POLL);
        }
    }

    /// A new headless Chromium on `screen`.
    async fn new_session(&self, screen: Screen) -> Client {
        self.connect(self.options_for(screen)).await
    }

    /// The `goog:chromeOptions` of a phone's [`Self::new_session`].
    pub(crate) fn chrome_options(&self) -> Value {
        self.options_for(Screen::Phone)
    }

    /// Headless Chromium's `goog:chromeOptions` on `screen`: a phone is emulated.
    fn options_for(&self, screen: Screen) -> Value {
        let (width, height) = match screen {
            Screen::Phone | Screen::DarkPhone => (PHONE_WIDTH, PHONE_HEIGHT),
            Screen::Desktop => (DESKTOP_WIDTH, DESKTOP_HEIGHT),
        };
        let profile = self.dir.path().join("profile");
        let mut args = vec![
            "--headless".to_owned(),
            "--no-sandbox".to_owned(),
            "--disable-gpu".to_owned(),
            "--disable-quic".to_owned(),
            "--no-first-run".to_owned(),
            "--disable-background-networking".to_owned(),
            "--disable-component-update".to_owned(),
            "--disable-sync".to_owned(),
            "--disable-dev-shm-usage".to_owned(),
            "--lang=zh-CN".to_owned(),
            format!("--user-data-dir={}", profile.display()),
            format!("--window-size={width},{height}"),
        ];
        if let Screen::DarkPhone = screen {
            args.push("--force-dark-mode".to_owned());
        }
        // What a Chinese visitor's browser asks for; tests of English switch.
        let mut options = json!({
            "args": args,
            "prefs": { "intl.accept_languages": "zh-CN,zh" },
        });
        if let Screen::Phone | Screen::DarkPhone = screen {
            options["mobileEmulation"] = json!({
                "deviceMetrics": { "width": width, "height": height, "pixelRatio": 2.0, "mobile": true, "touch": true },
            });
        }
        let binary = std::env::var("CHROME").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        if Path::new(&binary).is_file() {
            options["binary"] = json!(binary);
        }
        options
    }

    /// A new Chromium with these `goog:chromeOptions`.
    pub(crate) async fn connect(&self, options: Value) -> Client {
        let mut capabilities = serde_json::Map::new();
        capabilities.insert("browserName".to_owned(), json!("chrome"));
        capabilities.insert("goog:chromeOptions".to_owned(), options);
        ClientBuilder::native()
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "start Chromium through chromedriver: {e}; its log:\n{}",
                    self.log_tail()
                )
            })
    }

    /// The last lines of chromedriver's log, for failure messages.
    pub(crate) fn log_tail(&self) -> String {
        let log =
            std::fs::read_to_string(self.dir.path().join("chromedriver.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

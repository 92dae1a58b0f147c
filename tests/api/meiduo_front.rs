//! The original front end, unchanged, against qqlogin in a real browser: the
//! "meiduo mall" tutorial's own `login.html`, `oauth_callback.html` and
//! `js/oauth_callback.js` (Vue 2 + axios), served from
//! `../shared/meiduo_front/` on an origin of their own, as a site that
//! replaces its Django back end with qqlogin keeps running them.
//!
//! The pages are at `http://www.meiduo.site:<www port>/` and call the API at
//! `http://api.meiduo.site:<app port>` (their `js/host.js`, rewritten as it
//! is served): two origins of one site, as deployed. Chromium resolves both
//! names to 127.0.0.1 (`--host-resolver-rules`). The application runs with
//! the tests' stand-in QQ, which agrees at once as its default QQ account,
//! and sends its SMS codes to the test's webhook inbox.
//!
//! Both common variants of the bind form: with an image code (the folder
//! itself), and without one (`variants/v2019_no_image_code_fixed__*`,
//! its two files laid over the folder; it needs `QQLOGIN_SMS_UNGATED`).
//! Screenshots go to `target/screenshots/meiduo-*.png`.

use std::future::Future;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use fantoccini::{Client, Locator};
use qqlogin::domain::ImageCodeId;
use qqlogin::image_code::ImageCodes;
use qqlogin::qq::stand_in::DEFAULT_OPENID;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::browser::{
    BROWSERS, Driver, POLL, WAIT, find_chromedriver, run_and_close, screenshot_dir,
};
use crate::helpers::{Backend, Options, TestApp, spawn_app_with};

const MOBILE: &str = "13800138000";
/// Within the front end's own rule (8 to 20 characters).
const PASSWORD: &str = "meiduo-2018-pw";
/// A desktop window: `front_end_pc` is the tutorial's PC site.
const WINDOW: (u32, u32) = (1280, 900);
/// The title of the test's stand-in for the site's home page (`/`), which
/// the folder does not have.
const HOME_TITLE: &str = "美多商城-首页";

/// A script's start that sets `shown` to the text of the first error
/// message the form shows, if any.
const VISIBLE_ERROR: &str = "var shown = Array.from(document.querySelectorAll('.error_tip')) \
     .filter(function (e) { return e.offsetParent !== null; }) \
     .map(function (e) { return e.innerText.trim() || '(an empty error message)'; })[0];";

/// Which bind form the front end has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    /// The folder as it is: an image code before the SMS code.
    ImageCode,
    /// `variants/v2019_no_image_code_fixed__*`: the SMS code asked for with
    /// nothing but the mobile.
    NoImageCode,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Self::ImageCode => "image-code",
            Self::NoImageCode => "no-image-code",
        }
    }
}

// ---------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------

/// The image-code variant: the first QQ login binds a new account with an
/// image code and an SMS code; the next one goes straight through.
async fn image_code_front_end_first_login_then_returning_login(backend: Backend) {
    first_login_then_returning_login(backend, Variant::ImageCode).await;
}

/// The variant without an image code, on a service with `QQLOGIN_SMS_UNGATED=1`.
async fn no_image_code_front_end_first_login_then_returning_login(backend: Backend) {
    first_login_then_returning_login(backend, Variant::NoImageCode).await;
}

backend_tests!(
    image_code_front_end_first_login_then_returning_login,
    no_image_code_front_end_first_login_then_returning_login,
);

async fn first_login_then_returning_login(backend: Backend, variant: Variant) {
    in_meiduo_browser(backend, variant, |site| async move {
        // The first QQ login: the bind form, an SMS code, a new account.
        site.open_login_page().await;
        site.screenshot("login").await;
        site.press_qq_login().await;
        site.wait_for_bind_form().await;
        site.screenshot("bind").await;

        site.fill("#phone", MOBILE).await;
        site.fill("#pwd", PASSWORD).await;
        if variant == Variant::ImageCode {
            let answer = site.image_code_answer().await;
            site.fill("#pic_code", &answer).await;
        }
        site.press_send_sms_code().await;
        let code = site
            .app
            .sms
            .code_for(MOBILE)
            .await
            .expect("the SMS code reaches the webhook inbox");
        site.fill("#msg_code", &code).await;
        site.assert_no_error_shown().await;
        site.screenshot("bind-filled").await;
        site.submit_bind_form().await;

        site.wait_for_home("the bind").await;
        site.screenshot("home").await;
        let user_id = site.assert_logged_in_as(MOBILE).await;
        assert_eq!(site.app.user_count().await, 1, "one account");
        assert_eq!(site.app.link_count().await, 1, "one QQ link");
        assert_eq!(
            site.linked_user_id(DEFAULT_OPENID).await,
            Some(user_id),
            "the QQ account is linked to the account the page was told of"
        );

        // The same QQ account again: straight through, no bind form.
        site.forget_login().await;
        site.open_login_page().await;
        site.press_qq_login().await;
        site.wait_for_home("the returning login").await;
        site.screenshot("home-returning").await;
        assert_eq!(site.assert_logged_in_as(MOBILE).await, user_id);
        assert_eq!(site.app.user_count().await, 1, "no new account");
        assert_eq!(site.app.link_count().await, 1, "no new link");
        let pages: Vec<String> = site
            .served_since_login_page()
            .into_iter()
            .map(|(path, _)| path)
            .collect();
        assert_eq!(
            pages,
            ["/oauth_callback.html", "/"],
            "from QQ straight back home, with no page in between"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// The front end's site: a static server for the folder
// ---------------------------------------------------------------------------

/// The folder of the original front end: `MEIDUO_FRONT`, or
/// `../shared/meiduo_front` beside the repository.
fn front_end_folder() -> PathBuf {
    std::env::var_os("MEIDUO_FRONT").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/meiduo_front"),
        PathBuf::from,
    )
}

/// The variant's folder under `variants/`, laid over the main one.
fn overlay_folder(front: &Path, variant: Variant) -> Option<PathBuf> {
    match variant {
        Variant::ImageCode => None,
        Variant::NoImageCode => {
            let variants = front.join("variants");
            let found = std::fs::read_dir(&variants)
                .unwrap_or_else(|e| panic!("read {}: {e}", variants.display()))
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .find(|path| {
                    path.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with("v2019_no_image_code_fixed__"))
                });
            Some(found.unwrap_or_else(|| {
                panic!(
                    "no variants/v2019_no_image_code_fixed__* in {}",
                    front.display()
                )
            }))
        }
    }
}

/// What the static server serves, and the pages it has served.
struct Www {
    front: PathBuf,
    overlay: Option<PathBuf>,
    /// `js/host.js` as served: the API's address.
    host_js: String,
    /// The HTML pages asked for, in order: path (as read) and query.
    pages: Mutex<Vec<(String, String)>>,
}

/// Starts the static server on `listener`: the folder's files with their
/// content types, the overlay's first; `js/host.js` rewritten; `/` a stand-in
/// for the site's home page.
fn serve_front_end(listener: TcpListener, www: Arc<Www>) {
    let data = web::Data::from(www);
    let server = HttpServer::new(move || {
        App::new()
            .app_data(data.clone())
            .default_service(web::to(serve_file))
    })
    .workers(1)
    .disable_signals()
    .listen(listener)
    .expect("the front end's server listens")
    .run();
    actix_web::rt::spawn(server);
}

async fn serve_file(req: HttpRequest, www: web::Data<Www>) -> HttpResponse {
    // Percent-decoded, repeated slashes merged, as nginx (and the static
    // servers the tutorial used) read a path. It matters: the front end goes
    // to `state` as `decodeURI` leaves it, so `?state=%2F` leads it to `/%2F`,
    // which such servers take for `/`.
    let decoded = percent_decode(req.path());
    let segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    let path = format!("/{}", segments.join("/"));
    let is_page = path == "/" || path.ends_with(".html");
    if is_page {
        www.pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push((path.clone(), req.query_string().to_owned()));
    }
    let no_store = ("Cache-Control", "no-store");
    if path == "/" {
        return HttpResponse::Ok()
            .content_type("text/html; charset=utf-8")
            .insert_header(no_store)
            .body(format!(
                "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{HOME_TITLE}</title></head>\
                 <body><h1>{HOME_TITLE}</h1></body></html>"
            ));
    }
    if path == "/js/host.js" {
        return HttpResponse::Ok()
            .content_type("text/javascript; charset=utf-8")
            .insert_header(no_store)
            .body(www.host_js.clone());
    }
    let safe = segments.iter().all(|s| {
        !s.is_empty()
            && !s.starts_with('.')
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    });
    let file = safe
        .then(|| {
            let relative: PathBuf = segments.iter().collect();
            www.overlay
                .iter()
                .map(|overlay| overlay.join(&relative))
                .chain([www.front.join(&relative)])
                .find(|candidate| candidate.is_file())
        })
        .flatten();
    let Some(file) = file else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("404 Not Found");
    };
    match std::fs::read(&file) {
        Ok(bytes) => HttpResponse::Ok()
            .content_type(content_type(&file))
            .insert_header(no_store)
            .body(bytes),
        Err(e) => HttpResponse::InternalServerError().body(format!("read {}: {e}", file.display())),
    }
}

/// `%XX` escapes decoded (bytes that do not make UTF-8 are replaced).
fn percent_decode(path: &str) -> String {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn content_type(file: &Path) -> &'static str {
    match file
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        _ => "application/octet-stream",
    }
}

// ---------------------------------------------------------------------------
// The browser on the front end's site
// ---------------------------------------------------------------------------

/// A browser on the front end's site, and the application behind it.
#[derive(Clone)]
struct Site {
    client: Client,
    /// `http://www.meiduo.site:<port>`
    www: String,
    /// `http://api.meiduo.site:<port>`
    api: String,
    app: Arc<TestApp>,
    served: Arc<Www>,
    /// Pages served before the last visit to the login page.
    pages_before: Arc<Mutex<usize>>,
    /// For screenshot names: the variant and the backend.
    label: String,
}

impl Site {
    /// Opens `login.html` and waits for its QQ button.
    async fn open_login_page(&self) {
        *self
            .pages_before
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = self.pages_served().len();
        let url = format!("{}/login.html", self.www);
        self.client
            .goto(&url)
            .await
            .unwrap_or_else(|e| panic!("open {url}: {e}"));
        self.wait_until(
            "the login page with its QQ button",
            "return document.readyState === 'complete' && !!document.querySelector('a.qq_login');",
        )
        .await;
        assert_eq!(self.title().await, "美多商城-登录");
    }

    /// Presses the QQ button: the page asks the API for `login_url` and
    /// goes there; the service's hop and QQ send the browser on to
    /// `oauth_callback.html` with a code and the state.
    async fn press_qq_login(&self) {
        self.click("a.qq_login").await;
        // Watched at the site, not in the browser: a bound account passes
        // through the page faster than a poll might see it.
        let until = Instant::now() + WAIT;
        let query = loop {
            let callback = self
                .served_since_login_page()
                .into_iter()
                .find(|(path, _)| path == "/oauth_callback.html");
            if let Some((_, query)) = callback {
                break query;
            }
            self.assert_no_alert().await;
            assert!(
                Instant::now() < until,
                "QQ did not send the browser back to oauth_callback.html within {WAIT:?}: {}",
                self.where_am_i().await
            );
            tokio::time::sleep(POLL).await;
        };
        let keys: Vec<String> = url::form_urlencoded::parse(query.as_bytes())
            .map(|(k, _)| k.into_owned())
            .collect();
        assert!(
            keys.contains(&"code".to_owned()) && keys.contains(&"state".to_owned()),
            "QQ came back with a code and the state: ?{query}"
        );
    }

    /// The bind form, after the page traded the code for a bind token.
    async fn wait_for_bind_form(&self) {
        self.wait_until(
            "the bind form",
            "var phone = document.querySelector('#phone'); \
             return !!phone && phone.offsetParent !== null && document.body.innerText.indexOf('请稍后') < 0;",
        )
        .await;
        assert_eq!(self.title().await, "美多商城-绑定用户");
        self.assert_no_error_shown().await;
        self.record_console().await;
    }

    /// What the image code shows, read through the test hook: the image
    /// named by the `<img>`'s uuid, once the browser has loaded it.
    async fn image_code_answer(&self) -> String {
        self.wait_until(
            "the image code's picture",
            "var img = document.querySelector('img.pic_code'); \
             return !!img && img.complete && img.naturalWidth > 0;",
        )
        .await;
        let src = self
            .execute("return document.querySelector('img.pic_code').src;")
            .await;
        let src = src.as_str().unwrap_or_default().to_owned();
        let prefix = format!("{}/image_codes/", self.api);
        let uuid = src
            .strip_prefix(&prefix)
            .and_then(|rest| rest.strip_suffix('/'))
            .unwrap_or_else(|| panic!("the image comes from {prefix}<uuid>/: {src}"));
        let id = ImageCodeId::parse(uuid).unwrap_or_else(|e| panic!("{uuid}: {e}"));
        let codes = ImageCodes::new(self.app.db.clone());
        let until = Instant::now() + WAIT;
        loop {
            if let Some(answer) = codes.answer_for_tests(&id).await {
                return answer;
            }
            assert!(
                Instant::now() < until,
                "no answer stored for image code {uuid}"
            );
            tokio::time::sleep(POLL).await;
        }
    }

    /// Presses 获取短信验证码 and waits for the countdown, which the page
    /// starts only on a 2xx answer.
    async fn press_send_sms_code(&self) {
        let tip = self.text("a.get_msg_code").await;
        assert_eq!(tip, "获取短信验证码");
        self.click("a.get_msg_code").await;
        self.wait_until(
            "the SMS button's countdown (the code was sent)",
            &format!(
                "{VISIBLE_ERROR} return shown || \
                 /^\\d+秒$/.test(document.querySelector('a.get_msg_code').innerText.trim());"
            ),
        )
        .await;
        self.assert_no_error_shown().await;
    }

    /// Presses 保 存, and waits for the page to leave (or show why not).
    async fn submit_bind_form(&self) {
        self.execute("window.__meiduoBindPage = true; return null;")
            .await;
        self.click("#reg_form input[type=submit]").await;
        self.wait_until(
            "the bind to be accepted",
            &format!(
                "if (!window.__meiduoBindPage) {{ return true; }} {VISIBLE_ERROR} return shown;"
            ),
        )
        .await;
    }

    /// Keeps what the page writes to its console (the front end logs the
    /// API's answer there on errors other than 400), for failure messages.
    async fn record_console(&self) {
        self.execute(
            "window.__meiduoConsole = []; var log = console.log; \
             console.log = function () { \
                 window.__meiduoConsole.push(JSON.stringify(Array.from(arguments))); \
                 return log.apply(console, arguments); }; return null;",
        )
        .await;
    }

    /// The front end's stand-in home page, where `state` leads: `/`, or
    /// `/%2F` (the page does `location.href = decodeURI(state)`, which
    /// leaves QQ's `%2F` as it is), which the site serves as `/`.
    async fn wait_for_home(&self, after: &str) {
        self.wait_until(
            &format!("the home page after {after}"),
            "return decodeURIComponent(location.pathname).replace(/\\/+/g, '/') === '/' \
                 && document.readyState === 'complete';",
        )
        .await;
        assert_eq!(self.title().await, HOME_TITLE);
        let url = self.url().await;
        assert_eq!(
            url.origin().ascii_serialization(),
            self.www,
            "home on the front end's own site"
        );
    }

    /// What the page stored (`token`, `username`, `user_id`) names the
    /// account of `mobile`, and the token works at the API; returns the user id.
    async fn assert_logged_in_as(&self, mobile: &str) -> i64 {
        let stored = self
            .execute("return [localStorage.token, localStorage.username, localStorage.user_id];")
            .await;
        let field = |i: usize| stored[i].as_str().map(str::to_owned);
        let (Some(token), Some(username), Some(user_id)) = (field(0), field(1), field(2)) else {
            panic!("localStorage holds token, username and user_id: {stored}");
        };
        assert_eq!(username, mobile, "the user name is the mobile");
        let user_id: i64 = user_id
            .parse()
            .unwrap_or_else(|_| panic!("localStorage.user_id is a number: {user_id:?}"));
        let me: Value = reqwest::Client::new()
            .get(self.app.url("/api/me"))
            .header("Authorization", format!("JWT {token}"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            me,
            json!({ "user_id": user_id, "username": mobile, "mobile": mobile }),
            "the stored token is the account's"
        );
        user_id
    }

    /// Logs the front end out, as its own logout does: localStorage cleared.
    async fn forget_login(&self) {
        self.execute("localStorage.clear(); sessionStorage.clear(); return null;")
            .await;
    }

    /// The user the QQ account `openid` is linked to.
    async fn linked_user_id(&self, openid: &str) -> Option<i64> {
        use diesel::prelude::*;
        use qqlogin::db::schema::qq_links;
        let openid = openid.to_owned();
        self.app
            .db
            .run(move |conn| {
                let conn: &mut qqlogin::db::DbConn = conn;
                Ok(qq_links::table
                    .filter(qq_links::openid.eq(openid))
                    .select(qq_links::user_id)
                    .first::<i64>(conn)
                    .optional()?)
            })
            .await
            .unwrap()
    }

    fn pages_served(&self) -> Vec<(String, String)> {
        self.served
            .pages
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The pages (path and query) the site served after the last `login.html`.
    fn served_since_login_page(&self) -> Vec<(String, String)> {
        let before = *self
            .pages_before
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let pages = self.pages_served();
        assert_eq!(
            pages.get(before).map(|(path, _)| path.as_str()),
            Some("/login.html")
        );
        pages[before + 1..].to_vec()
    }

    /// None of the form's error messages is visible, and no alert is open.
    async fn assert_no_error_shown(&self) {
        self.assert_no_alert().await;
        let shown = self
            .execute(
                "return Array.from(document.querySelectorAll('.error_tip'))\
                 .filter(function (e) { return e.offsetParent !== null; })\
                 .map(function (e) { return e.innerText; });",
            )
            .await;
        assert_eq!(
            shown,
            json!([]),
            "no error shown on {}",
            self.where_am_i().await
        );
    }

    async fn assert_no_alert(&self) {
        if let Ok(text) = self.client.get_alert_text().await {
            panic!("the page shows alert('{text}')");
        }
    }

    /// Polls `script` until it returns `true`; fails at once when it
    /// returns a string (what went wrong, as the page shows it) or the page
    /// shows an alert (the front end's `alert('服务器异常')`).
    async fn wait_until(&self, what: &str, script: &str) {
        let until = Instant::now() + WAIT;
        loop {
            if let Ok(text) = self.client.get_alert_text().await {
                panic!("waiting for {what}, the page showed alert('{text}')");
            }
            // While the browser navigates a script may fail; that only means "not yet".
            let done = self.client.execute(script, vec![]).await;
            match done {
                Ok(Value::Bool(true)) => return,
                Ok(Value::String(shown)) => panic!(
                    "waiting for {what}, the page showed 「{shown}」 on {}",
                    self.where_am_i().await
                ),
                _ => {}
            }
            assert!(
                Instant::now() < until,
                "no {what} within {WAIT:?} (last: {done:?}) on {}",
                self.where_am_i().await
            );
            tokio::time::sleep(POLL).await;
        }
    }

    async fn execute(&self, script: &str) -> Value {
        self.client
            .execute(script, vec![])
            .await
            .unwrap_or_else(|e| panic!("run {script}: {e}"))
    }

    async fn find(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(WAIT)
            .every(POLL)
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css} not found ({e})"))
    }

    async fn click(&self, css: &str) {
        self.find(css)
            .await
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Types `text` into the input `css`, replacing what it held.
    async fn fill(&self, css: &str, text: &str) {
        let input = self.find(css).await;
        input
            .clear()
            .await
            .unwrap_or_else(|e| panic!("clear {css}: {e}"));
        input
            .send_keys(text)
            .await
            .unwrap_or_else(|e| panic!("type into {css}: {e}"));
        let value = input
            .prop("value")
            .await
            .unwrap_or_else(|e| panic!("value of {css}: {e}"));
        assert_eq!(value.as_deref(), Some(text), "{css} holds what was typed");
    }

    async fn text(&self, css: &str) -> String {
        self.find(css)
            .await
            .text()
            .await
            .unwrap_or_else(|e| panic!("text of {css}: {e}"))
            .trim()
            .to_owned()
    }

    async fn title(&self) -> String {
        self.client
            .title()
            .await
            .unwrap_or_else(|e| panic!("title: {e}"))
    }

    async fn url(&self) -> url::Url {
        self.client
            .current_url()
            .await
            .unwrap_or_else(|e| panic!("current url: {e}"))
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
        let console = self
            .client
            .execute("return window.__meiduoConsole || [];", vec![])
            .await
            .unwrap_or_default();
        format!("page 「{title}」 at {url}:\n{text}\nconsole: {console}")
    }

    /// Saves what the window shows as `target/screenshots/meiduo-{label}-{name}.png`.
    async fn screenshot(&self, name: &str) {
        let png = self
            .client
            .screenshot()
            .await
            .unwrap_or_else(|e| panic!("screenshot {name}: {e}"));
        let path = screenshot_dir().join(format!("meiduo-{}-{name}.png", self.label));
        std::fs::write(&path, png).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
    }
}

// ---------------------------------------------------------------------------
// The harness: the front end's site, the application, Chromium
// ---------------------------------------------------------------------------

/// Runs `body` in a fresh headless Chromium on the front end's site (the
/// folder, with `variant`'s files), against the application on `backend`
/// set up as a site replacing its Django back end would set it up. The
/// browser and its driver are stopped whatever happens; a failing test
/// leaves `target/screenshots/failed-meiduo-{label}.png` and chromedriver's log.
async fn in_meiduo_browser<F, Fut>(backend: Backend, variant: Variant, body: F)
where
    F: FnOnce(Site) -> Fut,
    Fut: Future<Output = ()> + 'static,
{
    let name = format!("meiduo front end ({})", variant.name());
    let Some(chromedriver) = find_chromedriver() else {
        crate::skip::skip(
            &format!(
                "chromedriver was not found ($CHROMEDRIVER, the PATH, /usr/bin), so browser test {name} did not run"
            ),
            "install Debian's chromium and chromium-driver (.ci/run does), or set CHROMEDRIVER to its path",
        );
        return;
    };
    let front = front_end_folder();
    if !front.join("js/oauth_callback.js").is_file() {
        crate::skip::skip(
            &format!(
                "the original front end is not at {}, so browser test {name} did not run",
                front.display()
            ),
            "lay shared/meiduo_front beside the repository, or set MEIDUO_FRONT to its folder",
        );
        return;
    }
    let overlay = overlay_folder(&front, variant);
    let label = format!(
        "{}-{}",
        variant.name(),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres(_) => "postgres",
        }
    );
    let _permit = BROWSERS
        .acquire()
        .await
        .expect("the semaphore is never closed");

    let www_listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    let www_port = www_listener.local_addr().expect("its address").port();
    let www = format!("http://www.meiduo.site:{www_port}");
    let callback = url::Url::parse(&format!("{www}/oauth_callback.html")).expect("a URL");
    let ungated = variant == Variant::NoImageCode;
    let app = spawn_app_with(
        backend,
        Options {
            cors_origins: vec![www.clone()],
            tweak: Box::new(move |config| {
                config.api_redirect_uri = callback;
                config.sms.ungated = ungated;
            }),
            ..Options::default()
        },
    )
    .await;
    let api = format!("http://api.meiduo.site:{}", app.port);
    let served = Arc::new(Www {
        front,
        overlay,
        host_js: format!("var host = '{api}';\n"),
        pages: Mutex::new(Vec::new()),
    });
    serve_front_end(www_listener, served.clone());

    let driver = Driver::start(&chromedriver);
    let mut options = driver.chrome_options();
    if let Some(options) = options.as_object_mut() {
        options.remove("mobileEmulation");
    }
    let args = options["args"]
        .as_array_mut()
        .expect("chromeOptions has args");
    args.retain(|arg| {
        !arg.as_str()
            .is_some_and(|a| a.starts_with("--window-size="))
    });
    args.push(json!(format!("--window-size={},{}", WINDOW.0, WINDOW.1)));
    args.push(json!(
        "--host-resolver-rules=MAP www.meiduo.site 127.0.0.1,MAP api.meiduo.site 127.0.0.1"
    ));
    let client = driver.connect(options).await;

    let site = Site {
        client: client.clone(),
        www,
        api,
        app: Arc::new(app),
        served,
        pages_before: Arc::new(Mutex::new(0)),
        label: label.clone(),
    };
    run_and_close(
        driver,
        client,
        &format!("{name} ({label})"),
        &format!("meiduo-{label}"),
        body(site),
    )
    .await;
}

//! `spawn_app`: the real application on a random port, with its own database
//! (a temporary SQLite file, or a fresh schema on the PostgreSQL server named
//! by `TEST_DATABASE_URL`) and its own stand-in QQ; and a test app with one
//! helper per endpoint.

use std::net::TcpListener;
use std::time::{Duration, Instant};

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use qqlogin::config::{Config, DatabaseUrl, QqMode, SenderConfig};
use qqlogin::db::{Db, DbConn};
use qqlogin::startup::Application;
use reqwest::header::LOCATION;
use secrecy::SecretString;
use url::Url;

use qqlogin::qq::stand_in::{self, StandIn};

pub use crate::sms_webhook::SmsWebhook;

pub const APP_ID: &str = "101474184";
pub const APP_KEY: &str = "c9b9d2c3b5a1e5f0c1e8b7f3a2d1c4e5";
pub const SECRET_KEY: &str = "test-secret-key-test-secret-key-test-secret-key-test-secret-key-0123";
pub const PASSWORD: &str = "correct horse battery";
/// The secret the service signs its SMS webhook calls with.
pub const SMS_WEBHOOK_SECRET: &str = "test-sms-webhook-secret";

/// Which database a test runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    Sqlite,
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `TEST_DATABASE_URL` is set. In CI it must be: a
    /// PostgreSQL test that silently did not run would hide a broken backend.
    pub fn postgres() -> Option<Self> {
        match std::env::var("TEST_DATABASE_URL") {
            Ok(url) if !url.is_empty() => Some(Self::Postgres(url)),
            _ => {
                crate::skip::skip(
                    "TEST_DATABASE_URL is unset, so a PostgreSQL test did not run",
                    "set it, e.g. to postgres://postgres@127.0.0.1:5432/test (.ci/run does)",
                );
                None
            }
        }
    }
}

/// Generates, for each named `async fn(Backend)`, a module with a `sqlite`
/// and a `postgres` test.
#[macro_export]
macro_rules! backend_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[actix_web::test]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[actix_web::test]
            async fn postgres() {
                if let Some(backend) = $crate::helpers::Backend::postgres() {
                    super::$name(backend).await
                }
            }
        }
    )*};
}

/// A database of its own for one test, removed when the test ends.
pub struct TestDb {
    pub url: DatabaseUrl,
    _dir: Option<tempfile::TempDir>,
    pg_cleanup: Option<(String, Cleanup)>,
}

impl TestDb {
    pub fn new(backend: &Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("qqlogin.db");
                Self {
                    url: DatabaseUrl::Sqlite {
                        path: path.to_string_lossy().into_owned(),
                    },
                    _dir: Some(dir),
                    pg_cleanup: None,
                }
            }
            Backend::Postgres(base) => {
                let schema = format!("t_{}", Self::unique());
                let schema = &schema[..30];
                let mut conn =
                    PgConnection::establish(base).expect("TEST_DATABASE_URL must be reachable");
                conn.batch_execute(&format!("CREATE SCHEMA {schema}"))
                    .unwrap();
                let separator = if base.contains('?') { '&' } else { '?' };
                let url = format!("{base}{separator}options=-csearch_path%3D{schema}");
                Self {
                    url: DatabaseUrl::parse(&url).unwrap(),
                    _dir: None,
                    pg_cleanup: Some((base.clone(), Cleanup::Schema(schema.to_owned()))),
                }
            }
        }
    }
}

impl TestDb {
    /// A whole database of its own on PostgreSQL (a file on SQLite), for a
    /// test of what the service does with its schemas.
    pub fn own_database(backend: &Backend) -> Self {
        let Backend::Postgres(base) = backend else {
            return Self::new(backend);
        };
        let name = format!("t_{}", &Self::unique()[..28]);
        let mut conn = PgConnection::establish(base).expect("TEST_DATABASE_URL must be reachable");
        conn.batch_execute(&format!("CREATE DATABASE {name}"))
            .unwrap();
        let mut url = url::Url::parse(base).unwrap();
        url.set_path(&name);
        Self {
            url: DatabaseUrl::parse(url.as_str()).unwrap(),
            _dir: None,
            pg_cleanup: Some((base.clone(), Cleanup::Database(name))),
        }
    }

    fn unique() -> String {
        qqlogin::secret::random_token()
            .to_lowercase()
            .replace('-', "_")
    }
}

/// What a PostgreSQL test database leaves to remove.
enum Cleanup {
    Schema(String),
    Database(String),
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((base, cleanup)) = &self.pg_cleanup
            && let Ok(mut conn) = PgConnection::establish(base)
        {
            let _ = conn.batch_execute(&match cleanup {
                Cleanup::Schema(schema) => format!("DROP SCHEMA {schema} CASCADE"),
                Cleanup::Database(name) => format!("DROP DATABASE {name} WITH (FORCE)"),
            });
        }
    }
}

/// A running application and what a test needs around it.
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub qq: stand_in::Running,
    /// Where the service's SMS codes arrive (its `webhook` sender's receiver).
    pub sms: SmsWebhook,
    /// The same database the application uses, for asserting on rows.
    pub db: Db,
    pub config: Config,
    _test_db: Option<TestDb>,
}

/// Options for `spawn_app_with`.
pub struct Options {
    pub qq_timeout: Duration,
    pub dev_mode: bool,
    pub cors_origins: Vec<String>,
    /// Run on this database instead of a fresh one (a second instance of a deployment).
    pub database: Option<DatabaseUrl>,
    /// Any other change to the configuration.
    pub tweak: Box<dyn FnOnce(&mut Config)>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            qq_timeout: Duration::from_secs(2),
            dev_mode: false,
            cors_origins: Vec::new(),
            database: None,
            tweak: Box::new(|_| {}),
        }
    }
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, Options::default()).await
}

pub async fn spawn_app_with(backend: Backend, options: Options) -> TestApp {
    let _ = env_logger::builder().is_test(true).try_init();
    let qq = StandIn::new(APP_ID, APP_KEY).start().await.unwrap();
    let sms = SmsWebhook::start(SMS_WEBHOOK_SECRET).await;
    let test_db = options.database.is_none().then(|| TestDb::new(&backend));
    let database = options
        .database
        .clone()
        .unwrap_or_else(|| test_db.as_ref().unwrap().url.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let address = format!("http://127.0.0.1:{port}");

    let mut config = Config::defaults().unwrap();
    config.listen = listener.local_addr().unwrap();
    config.database = database.clone();
    config.redirect_uri = Url::parse(&format!("{address}/oauth/qq/callback")).unwrap();
    config.api_redirect_uri = config.redirect_uri.clone();
    config.secret_key = SecretString::from(SECRET_KEY.to_owned());
    config.secret_is_ephemeral = false;
    config.qq_timeout = options.qq_timeout;
    config.db_timeout = Duration::from_secs(2);
    config.workers = Some(2);
    config.cors_origins = qqlogin::config::Origins(options.cors_origins);
    config.sms.sender = SenderConfig::Webhook {
        url: Url::parse(&sms.url()).unwrap(),
        secret: SecretString::from(SMS_WEBHOOK_SECRET.to_owned()),
    };
    config.qq = if options.dev_mode {
        config.sms.sender = SenderConfig::Log;
        QqMode::DevStandIn
    } else {
        QqMode::Real {
            app_id: APP_ID.to_owned(),
            app_key: SecretString::from(APP_KEY.to_owned()),
            graph_url: Url::parse(&qq.base_url).unwrap(),
        }
    };
    (options.tweak)(&mut config);

    let app = Application::build_with_listener(config.clone(), listener)
        .await
        .expect("application builds");
    actix_web::rt::spawn(app.run_until_stopped());
    let db = Db::new(database, config.user_tables, 2, Duration::from_secs(5));
    TestApp {
        address,
        port,
        qq,
        sms,
        db,
        config,
        _test_db: test_db,
    }
}

/// A browser: its own cookie jar, redirects not followed (tests look at each hop).
pub struct Browser {
    pub client: reqwest::Client,
    pub jar: std::sync::Arc<reqwest::cookie::Jar>,
}

impl Browser {
    pub fn new() -> Self {
        let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
        let client = reqwest::Client::builder()
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap();
        Self { client, jar }
    }

    /// The cookies this browser would send to `url`, as one `Cookie` header value.
    pub fn cookie_header(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default()
    }
}

/// A page, read: status, location and body.
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
    pub headers: reqwest::header::HeaderMap,
}

impl Page {
    pub async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let location = headers
            .get(LOCATION)
            .map(|v| v.to_str().unwrap().to_owned());
        let body = response.text().await.unwrap();
        Self {
            status,
            location,
            body,
            headers,
        }
    }

    /// The value of the form field `name` (hidden or pre-filled).
    pub fn field(&self, name: &str) -> Option<String> {
        let marker = format!("name=\"{name}\"");
        let at = self.body.find(&marker)?;
        let tag_end = at + self.body[at..].find('>')?;
        let tag = &self.body[at..tag_end];
        let value = tag.split("value=\"").nth(1)?.split('"').next()?;
        Some(
            value
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
                .replace("&quot;", "\""),
        )
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn get(&self, browser: &Browser, path: &str) -> Page {
        Page::from(browser.client.get(self.url(path)).send().await.unwrap()).await
    }

    pub async fn post_form(&self, browser: &Browser, path: &str, form: &[(&str, &str)]) -> Page {
        Page::from(
            browser
                .client
                .post(self.url(path))
                .form(form)
                .send()
                .await
                .unwrap(),
        )
        .await
    }

    /// This browser's CSRF token, as the login page shows it (a session
    /// gets one there if it had none).
    pub async fn login_page_csrf(&self, browser: &Browser) -> String {
        self.get(browser, "/login")
            .await
            .field("csrf_token")
            .expect("the login page has a CSRF token")
    }

    /// Posts `form` with this browser's CSRF token (read from the login page).
    pub async fn post_with_csrf(
        &self,
        browser: &Browser,
        path: &str,
        form: &[(&str, &str)],
    ) -> Page {
        let csrf = self.login_page_csrf(browser).await;
        let mut form = form.to_vec();
        form.push(("csrf_token", &csrf));
        self.post_form(browser, path, &form).await
    }

    /// `GET /oauth/qq/login`; returns the `state` the browser was sent to QQ with.
    pub async fn start_qq_login(&self, browser: &Browser, next: &str) -> String {
        let page = self
            .get(
                browser,
                &format!("/oauth/qq/login?next={}", urlencode(next)),
            )
            .await;
        assert_eq!(page.status, 302, "{}", page.body);
        let location = Url::parse(page.location.as_deref().unwrap()).unwrap();
        location
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned()
    }

    /// A browser running a JSON API front end: it asks for `login_url`, is
    /// sent through the service's hop (which gives it the attempt's cookie)
    /// towards QQ; returns the browser and the URL QQ would have shown it.
    pub async fn begin_api_login(&self, next: &str) -> (Browser, Url) {
        let browser = Browser::new();
        let path = format!("/oauth/qq/authorization/?next={}", urlencode(next));
        let answer: serde_json::Value = browser
            .client
            .get(self.url(&path))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let login_url = answer["login_url"].as_str().expect("a login_url");
        let hop = browser.client.get(login_url).send().await.unwrap();
        assert_eq!(hop.status(), 302, "the hop sends the browser on to QQ");
        let qq = Url::parse(hop.headers()["location"].to_str().unwrap()).unwrap();
        (browser, qq)
    }

    /// The callback, as QQ's redirect would reach it.
    pub async fn callback(&self, browser: &Browser, code: &str, state: &str) -> Page {
        let path = format!(
            "/oauth/qq/callback?code={}&state={}",
            urlencode(code),
            urlencode(state)
        );
        self.get(browser, &path).await
    }

    /// A whole round trip to QQ for `openid`: start, QQ grants, callback.
    pub async fn qq_login(&self, browser: &Browser, openid: &str, next: &str) -> Page {
        let state = self.start_qq_login(browser, next).await;
        let code = self.qq.grant(openid, &format!("昵称{}", &openid[..4]));
        self.callback(browser, &code, &state).await
    }

    /// Submits the bind form of `page` with a mobile and password, as a
    /// person would: for a mobile without an account, with an SMS code asked
    /// for through the page's button first.
    pub async fn bind(&self, browser: &Browser, page: &Page, mobile: &str, password: &str) -> Page {
        let new_mobile =
            qqlogin::domain::Mobile::parse(mobile).is_ok() && !self.has_account(mobile).await;
        let code = if new_mobile {
            self.try_page_sms_code(browser, page, mobile).await
        } else {
            None
        };
        self.bind_with_code(browser, page, mobile, password, code.as_deref())
            .await
    }

    /// The code a person pressing "获取验证码" ends up with: the one sent now,
    /// or, told "too soon", the one sent a moment ago (by another browser of
    /// theirs); none when the page refuses to send.
    pub async fn try_page_sms_code(
        &self,
        browser: &Browser,
        page: &Page,
        mobile: &str,
    ) -> Option<String> {
        let sent = self.press_send_sms(browser, page, mobile).await;
        match sent.status {
            200 if sent.body.contains("验证码是 ") => {
                let at = sent.body.find("验证码是 ")? + "验证码是 ".len();
                Some(sent.body[at..].chars().take(6).collect())
            }
            200 | 429 => self.sms.code_for(mobile).await,
            _ => None,
        }
    }

    /// Submits the bind form of `page` as typed: `sms_code` as given.
    pub async fn bind_with_code(
        &self,
        browser: &Browser,
        page: &Page,
        mobile: &str,
        password: &str,
        sms_code: Option<&str>,
    ) -> Page {
        let token = page
            .field("access_token")
            .expect("bind page has access_token");
        let csrf = page.field("csrf_token").expect("bind page has csrf_token");
        let mut form = vec![
            ("access_token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("mobile", mobile),
            ("password", password),
        ];
        if let Some(code) = sms_code {
            form.push(("sms_code", code));
        }
        self.post_form(browser, "/oauth/qq/bind", &form).await
    }

    /// Presses the bind page's "获取验证码" for `mobile`; the page that answers.
    pub async fn press_send_sms(&self, browser: &Browser, page: &Page, mobile: &str) -> Page {
        let token = page
            .field("access_token")
            .expect("bind page has access_token");
        let csrf = page.field("csrf_token").expect("bind page has csrf_token");
        let form = [
            ("access_token", token.as_str()),
            ("csrf_token", csrf.as_str()),
            ("mobile", mobile),
        ];
        self.post_form(browser, "/oauth/qq/sms", &form).await
    }

    /// An SMS code for `mobile`, asked for on the bind page and taken from
    /// the inbox (or, in development mode, from the page's notice).
    pub async fn page_sms_code(&self, browser: &Browser, page: &Page, mobile: &str) -> String {
        let sent = self.press_send_sms(browser, page, mobile).await;
        assert_eq!(sent.status, 200, "{}", sent.body);
        if let Some(at) = sent.body.find("验证码是 ") {
            return sent.body[at + "验证码是 ".len()..]
                .chars()
                .take(6)
                .collect();
        }
        self.sms
            .code_for(mobile)
            .await
            .expect("the SMS code reaches the webhook")
    }

    /// The JSON API's answer to a QQ login of `openid`, as a front end gets
    /// it: the hop, QQ, then the exchange from the same browser.
    pub async fn api_login(&self, openid: &str) -> serde_json::Value {
        let (browser, _) = self.begin_api_login("/").await;
        let code = self.qq.grant(openid, "小明");
        browser
            .client
            .get(self.url(&format!("/oauth/qq/users/?code={code}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// A bind token for `openid` from the JSON API (see [`Self::api_login`]).
    pub async fn api_access_token(&self, openid: &str) -> String {
        let answer = self.api_login(openid).await;
        answer["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no access_token: {answer}"))
            .to_owned()
    }

    /// An SMS code for `mobile`, asked for with an API bind token and taken from the inbox.
    pub async fn api_sms_code(&self, access_token: &str, mobile: &str) -> String {
        let response = self
            .ask_sms_code(mobile, &[("access_token", access_token)])
            .await;
        let status = response.status();
        assert_eq!(status, 200, "{}", response.text().await.unwrap());
        self.sms
            .code_for(mobile)
            .await
            .expect("the SMS code reaches the webhook")
    }

    /// [`Self::api_sms_code`], or nothing when the service sends none.
    pub async fn try_api_sms_code(&self, access_token: &str, mobile: &str) -> Option<String> {
        let response = self
            .ask_sms_code(mobile, &[("access_token", access_token)])
            .await;
        // Told "too soon": the code sent a moment ago is still the one.
        match response.status().as_u16() {
            200 | 429 => self.sms.code_for(mobile).await,
            _ => None,
        }
    }

    /// `GET /sms_codes/<mobile>/` with this query, from a program without cookies.
    pub async fn ask_sms_code(&self, mobile: &str, query: &[(&str, &str)]) -> reqwest::Response {
        reqwest::Client::new()
            .get(self.url(&format!("/sms_codes/{mobile}/")))
            .query(query)
            .send()
            .await
            .unwrap()
    }

    /// Whether an account with this mobile exists.
    pub async fn has_account(&self, mobile: &str) -> bool {
        let count = async || {
            let mobile = mobile.to_owned();
            self.db
                .run(move |conn| {
                    let conn: &mut qqlogin::db::DbConn = conn;
                    use diesel::prelude::*;
                    use qqlogin::db::schema::users;
                    Ok(users::table
                        .filter(users::mobile.eq(mobile))
                        .count()
                        .get_result::<i64>(conn)?)
                })
                .await
        };
        // Once more if the database dropped our pooled connection meanwhile
        // (a test that takes it away and back): the pool replaces it.
        let count = match count().await {
            Ok(n) => n,
            Err(_) => count().await.unwrap(),
        };
        count > 0
    }

    /// First QQ login of `openid`, bound to a new account for `mobile`.
    pub async fn sign_up_with_qq(&self, browser: &Browser, openid: &str, mobile: &str) -> Page {
        let bind_page = self.qq_login(browser, openid, "/").await;
        assert_eq!(bind_page.status, 200, "{}", bind_page.body);
        let done = self.bind(browser, &bind_page, mobile, PASSWORD).await;
        assert_eq!(done.status, 303, "{}", done.body);
        done
    }

    /// The home page's greeting, if someone is logged in.
    pub async fn logged_in_as(&self, browser: &Browser) -> Option<String> {
        let page = self.get(browser, "/").await;
        assert_eq!(page.status, 200);
        let start = page.body.find("你好，")? + "你好，".len();
        Some(page.body[start..].split('<').next()?.to_owned())
    }

    pub async fn user_count(&self) -> i64 {
        self.count("users").await
    }

    pub async fn link_count(&self) -> i64 {
        self.count("qq_links").await
    }

    /// Rows in `sessions`: what the server holds for browsers.
    pub async fn session_count(&self) -> i64 {
        self.count("sessions").await
    }

    /// Rows in `used_oauth_states`: the states that have come back from QQ.
    pub async fn used_state_count(&self) -> i64 {
        self.count("used_oauth_states").await
    }

    /// The keys of `sessions` or `used_oauth_states`, oldest row first.
    pub async fn keys_by_age(&self, table: &'static str) -> Vec<String> {
        use diesel::prelude::*;
        use qqlogin::db::schema::{sessions, used_oauth_states};
        self.db
            .run(move |conn| {
                let conn: &mut DbConn = conn;
                Ok(match table {
                    "sessions" => sessions::table
                        .order(sessions::expires_at)
                        .select(sessions::id)
                        .load(conn)?,
                    _ => used_oauth_states::table
                        .order(used_oauth_states::expires_at)
                        .select(used_oauth_states::state_hash)
                        .load(conn)?,
                })
            })
            .await
            .unwrap()
    }

    async fn count(&self, table: &'static str) -> i64 {
        use diesel::prelude::*;
        use qqlogin::db::schema::{qq_links, sessions, used_oauth_states, users};
        self.db
            .run(move |conn| {
                let conn: &mut DbConn = conn;
                Ok(match table {
                    "users" => users::table.count().get_result(conn)?,
                    "sessions" => sessions::table.count().get_result(conn)?,
                    "used_oauth_states" => used_oauth_states::table.count().get_result(conn)?,
                    _ => qq_links::table.count().get_result(conn)?,
                })
            })
            .await
            .unwrap()
    }

    /// Posts `form` to an account centre action, with the CSRF token the
    /// account page carries.
    pub async fn account_post(&self, browser: &Browser, path: &str, form: &[(&str, &str)]) -> Page {
        let page = self.get(browser, "/account").await;
        assert_eq!(page.status, 200, "{}", page.body);
        let csrf = page
            .field("csrf_token")
            .expect("the account page has a CSRF token");
        let mut form = form.to_vec();
        form.push(("csrf_token", &csrf));
        self.post_form(browser, path, &form).await
    }

    /// The login form, submitted with a user name (or mobile) and password.
    pub async fn password_login(&self, browser: &Browser, login: &str, password: &str) -> Page {
        self.post_with_csrf(
            browser,
            "/login",
            &[("username", login), ("password", password)],
        )
        .await
    }

    /// The id of the account with this mobile.
    pub async fn user_id(&self, mobile: &str) -> i64 {
        let mobile = mobile.to_owned();
        self.db
            .run(move |conn| qqlogin::db::user::find_by_mobile(conn, &mobile))
            .await
            .unwrap()
            .expect("an account with this mobile")
            .id
    }

    /// The account with this id, if it exists.
    pub async fn user(&self, user_id: i64) -> Option<qqlogin::db::user::User> {
        self.db
            .run(move |conn| qqlogin::db::user::find_by_id(conn, user_id))
            .await
            .unwrap()
    }

    /// Every sign-in event of `user_id` written so far, newest first.
    pub async fn events_of(&self, user_id: i64) -> Vec<qqlogin::db::sign_in_event::StoredEvent> {
        self.db
            .run(move |conn| qqlogin::db::sign_in_event::of_user(conn, user_id))
            .await
            .unwrap()
    }

    /// Waits for the events' writer to store an event of `user_id` of `kind`
    /// with `outcome`; returns the newest such event.
    pub async fn event_of(
        &self,
        user_id: i64,
        kind: &str,
        outcome: &str,
    ) -> qqlogin::db::sign_in_event::StoredEvent {
        let find = |events: Vec<qqlogin::db::sign_in_event::StoredEvent>| {
            events
                .into_iter()
                .find(|e| e.kind == kind && e.outcome == outcome)
        };
        let written = eventually(Duration::from_secs(10), async || {
            find(self.events_of(user_id).await).is_some()
        })
        .await;
        assert!(
            written,
            "no {kind}/{outcome} event of user {user_id}: {:?}",
            self.events_of(user_id).await
        );
        find(self.events_of(user_id).await).unwrap()
    }

    /// Time passes for the account centre: every session of `user_id` last
    /// proved who its person is `secs_ago` seconds ago (the `verified_at` of
    /// its state, whose values are JSON-encoded). Returns how many sessions.
    pub async fn age_verification(&self, user_id: i64, secs_ago: i64) -> usize {
        use diesel::prelude::*;
        use qqlogin::db::schema::sessions;
        let at = time::OffsetDateTime::now_utc().unix_timestamp() - secs_ago;
        let aged = self
            .db
            .write(move |conn| {
                let conn: &mut qqlogin::db::DbConn = conn;
                let rows: Vec<(String, String)> = sessions::table
                    .filter(sessions::user_id.eq(user_id))
                    .select((sessions::id, sessions::state))
                    .load(conn)?;
                for (id, state) in &rows {
                    let mut state: std::collections::HashMap<String, String> =
                        serde_json::from_str(state).unwrap();
                    assert!(state.contains_key("verified_at"), "{state:?}");
                    state.insert("verified_at".to_owned(), at.to_string());
                    diesel::update(sessions::table.find(id))
                        .set(sessions::state.eq(serde_json::to_string(&state).unwrap()))
                        .execute(conn)?;
                }
                Ok(rows.len())
            })
            .await
            .unwrap();
        assert!(aged > 0, "user {user_id} has no session to age");
        aged
    }

    /// The handles of the live sessions of `user_id`.
    pub async fn session_handles(&self, user_id: i64) -> Vec<String> {
        use diesel::prelude::*;
        use qqlogin::db::schema::sessions;
        self.db
            .run(move |conn| {
                let conn: &mut qqlogin::db::DbConn = conn;
                Ok(sessions::table
                    .filter(sessions::user_id.eq(user_id))
                    .select(sessions::handle)
                    .load::<Option<String>>(conn)?)
            })
            .await
            .unwrap()
            .into_iter()
            .flatten()
            .collect()
    }

    /// The SMS code sent to `mobile` after the `before` codes it had received.
    pub async fn next_sms_code(&self, mobile: &str, before: usize) -> String {
        let arrived = eventually(Duration::from_secs(10), async || {
            self.sms.codes(mobile).len() > before
        })
        .await;
        assert!(arrived, "no new SMS code reached {mobile}");
        self.sms.codes(mobile).last().unwrap().clone()
    }
}

pub fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Polls `check` until it holds or `deadline` passes: never a fixed sleep.
pub async fn eventually(deadline: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let until = Instant::now() + deadline;
    while Instant::now() < until {
        if check().await {
            return true;
        }
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    check().await
}

/// A fresh 32-hex openid, as QQ's look.
pub fn new_openid() -> String {
    let token = qqlogin::secret::random_token();
    token
        .bytes()
        .take(32)
        .map(|b| format!("{:X}", b % 16))
        .collect()
}

/// A TCP forwarder to PostgreSQL that a test can cut and restore: the
/// database "going away" mid-run, for real, as the application sees it.
pub struct DbProxy {
    pub port: u16,
    open: tokio::sync::watch::Sender<bool>,
    accepted: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    active: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl DbProxy {
    /// A proxy in front of the test PostgreSQL server and the URL that goes
    /// through it; `None` when PostgreSQL tests are not run.
    pub async fn in_front_of_postgres() -> Option<(Self, String)> {
        let Some(Backend::Postgres(direct)) = Backend::postgres() else {
            return None;
        };
        let proxy = Self::start("127.0.0.1:5432".parse().unwrap()).await;
        let proxied = direct.replacen("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port), 1);
        assert_ne!(
            proxied, direct,
            "TEST_DATABASE_URL must point at 127.0.0.1:5432"
        );
        Some((proxy, proxied))
    }

    /// Runs on a thread of its own: the test's runtime may block on a
    /// connection through it (schema set-up uses a blocking client).
    pub async fn start(target: std::net::SocketAddr) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (open, watch) = tokio::sync::watch::channel(true);
        let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = accepted.clone();
        let active = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let open_now = active.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                loop {
                    let Ok((mut inbound, _)) = listener.accept().await else {
                        return;
                    };
                    let mut watch = watch.clone();
                    if !*watch.borrow() {
                        continue; // dropped: the connection is refused at once
                    }
                    counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let open_now = open_now.clone();
                    open_now.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    tokio::spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                            tokio::select! {
                                _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                                _ = watch.wait_for(|open| !open) => {}
                            }
                        }
                        open_now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
                    });
                }
            });
        });
        Self {
            port,
            open,
            accepted,
            active,
        }
    }

    /// How many connections through it are open now.
    pub fn open_connections(&self) -> usize {
        self.active.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many connections it has let through so far.
    pub fn connections(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Drops every connection and refuses new ones.
    pub fn cut(&self) {
        self.open.send_replace(false);
    }

    pub fn restore(&self) {
        self.open.send_replace(true);
    }
}

/// `db` as `DATABASE_URL` says it.
pub fn url_of(db: &DatabaseUrl) -> String {
    use secrecy::ExposeSecret;
    match db {
        DatabaseUrl::Sqlite { path } => format!("sqlite://{path}"),
        DatabaseUrl::Postgres { url } => url.expose_secret().to_owned(),
    }
}

//! Settings: read once from the environment (and `.env`), validated into a
//! typed [`Config`] that is passed by value to [`crate::startup::Application`].

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use secrecy::{ExposeSecret, SecretString};
use url::Url;

use crate::domain::AccentColor;
use crate::logging::LogFormat;
use crate::proxy::{Addresses, TrustedProxies};
use crate::site::{Logo, SiteConfig};

/// Shortest `SECRET_KEY` accepted: every signing key is derived from it, so it
/// must carry at least 256 bits even when typed as hex.
pub const MIN_SECRET_KEY_LEN: usize = 64;

/// The longest QQ time-out the contract allows for one login's calls.
const MAX_QQ_TIMEOUT_MS: u64 = 10_000;

/// Every setting, as `qqlogin --help` lists it. Each is read from the
/// environment variable of the same name; a command-line flag wins.
#[derive(Parser, Debug)]
#[command(
    name = "qqlogin",
    version,
    about = "QQ登录 (QQ Connect) for your website."
)]
pub struct Settings {
    /// An operator's command, run instead of the server.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address and port to listen on.
    #[arg(
        long,
        env = "QQLOGIN_LISTEN",
        value_name = "QQLOGIN_LISTEN",
        default_value = "127.0.0.1:8000"
    )]
    pub listen: SocketAddr,

    /// `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    #[arg(
        long,
        env = "DATABASE_URL",
        value_name = "DATABASE_URL",
        default_value = "sqlite://qqlogin.db",
        value_parser = DatabaseUrl::parse,
        hide_env_values = true
    )]
    pub database_url: DatabaseUrl,

    /// Whose tables hold the users and their QQ links: `qqlogin` (its own), or
    /// `django`: the Django site's `tb_users` and `tb_oauth_qq`, in the database
    /// of DATABASE_URL, shared with the site.
    #[arg(
        long,
        env = "QQLOGIN_USER_TABLES",
        value_name = "QQLOGIN_USER_TABLES",
        value_enum,
        default_value = "qqlogin"
    )]
    pub user_tables: UserTables,

    /// PBKDF2 rounds of the passwords set with QQLOGIN_USER_TABLES=django, in
    /// Django's `pbkdf2_sha256` format (Django 1.11 used 36000; later versions more).
    #[arg(long, env = "QQLOGIN_DJANGO_PBKDF2_ITERATIONS", value_name = "QQLOGIN_DJANGO_PBKDF2_ITERATIONS",
          default_value_t = 36_000, value_parser = clap::value_parser!(u32).range(10_000..=10_000_000))]
    pub django_pbkdf2_iterations: u32,

    /// Connections kept in the database pool.
    #[arg(long, env = "QQLOGIN_DB_POOL_SIZE", value_name = "QQLOGIN_DB_POOL_SIZE", default_value_t = 10,
          value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub db_pool_size: u32,

    /// How long a request waits for a free database connection, in milliseconds.
    #[arg(long, env = "QQLOGIN_DB_TIMEOUT_MS", value_name = "QQLOGIN_DB_TIMEOUT_MS", default_value_t = 5000,
          value_parser = clap::value_parser!(u64).range(100..=60_000))]
    pub db_timeout_ms: u64,

    /// The app id from QQ Connect (QQ互联). Unset: development mode with the built-in stand-in QQ.
    #[arg(long, env = "QQ_APP_ID", value_name = "QQ_APP_ID")]
    pub qq_app_id: Option<String>,

    /// The app key (client secret) from QQ Connect. Never logged.
    #[arg(
        long,
        env = "QQ_APP_KEY",
        value_name = "QQ_APP_KEY",
        hide_env_values = true
    )]
    pub qq_app_key: Option<SecretString>,

    /// Exactly the callback URL registered at QQ; its path is where the callback is served.
    #[arg(
        long,
        env = "QQ_REDIRECT_URI",
        value_name = "QQ_REDIRECT_URI",
        default_value = "http://127.0.0.1:8000/oauth/qq/callback",
        value_parser = parse_http_url
    )]
    pub qq_redirect_uri: Url,

    /// Base URL of QQ's endpoints (a stand-in for tests and staging).
    #[arg(long, env = "QQ_GRAPH_URL", value_name = "QQ_GRAPH_URL", default_value = "https://graph.qq.com",
          value_parser = parse_http_url)]
    pub qq_graph_url: Url,

    /// Total time allowed for QQ's answers during one login, in milliseconds (at most 10000).
    #[arg(long, env = "QQ_TIMEOUT_MS", value_name = "QQ_TIMEOUT_MS", default_value_t = MAX_QQ_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(100..=MAX_QQ_TIMEOUT_MS))]
    pub qq_timeout_ms: u64,

    /// At least 64 characters; signs cookies and tokens. Required when QQ_APP_ID is set.
    #[arg(
        long,
        env = "SECRET_KEY",
        value_name = "SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<SecretString>,

    /// The previous SECRET_KEY during a key change: still verifies sessions and tokens, never signs.
    #[arg(
        long,
        env = "SECRET_KEY_PREVIOUS",
        value_name = "SECRET_KEY_PREVIOUS",
        hide_env_values = true
    )]
    pub secret_key_previous: Option<SecretString>,

    /// The Django site's SECRET_KEY: login JWTs are then made as
    /// djangorestframework-jwt makes them, so that the site accepts them.
    #[arg(
        long,
        env = "QQLOGIN_DJANGO_SECRET_KEY",
        value_name = "QQLOGIN_DJANGO_SECRET_KEY",
        hide_env_values = true
    )]
    pub django_secret_key: Option<SecretString>,

    /// A session unused this long ends, in seconds.
    #[arg(long, env = "QQLOGIN_SESSION_IDLE_SECS", value_name = "QQLOGIN_SESSION_IDLE_SECS", default_value_t = 1800,
          value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub session_idle_secs: u64,

    /// A login ends this long after it began, however busy, in seconds.
    #[arg(long, env = "QQLOGIN_SESSION_MAX_SECS", value_name = "QQLOGIN_SESSION_MAX_SECS", default_value_t = 604_800,
          value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub session_max_secs: u64,

    /// Lifetime of the login JWTs the JSON API hands out, in seconds.
    #[arg(long, env = "QQLOGIN_JWT_TTL", value_name = "QQLOGIN_JWT_TTL", default_value_t = 86_400,
          value_parser = clap::value_parser!(u64).range(60..=31_536_000))]
    pub jwt_ttl: u64,

    /// Origins allowed to call the JSON API from a browser, comma-separated (none by default).
    #[arg(long, env = "QQLOGIN_CORS_ORIGINS", value_name = "QQLOGIN_CORS_ORIGINS", default_value = "",
          value_parser = parse_origins)]
    pub cors_origins: Origins,

    /// Reverse proxies whose X-Forwarded-For/-Proto are believed: IPs or CIDRs, comma-separated.
    #[arg(
        long,
        env = "QQLOGIN_TRUSTED_PROXIES",
        value_name = "QQLOGIN_TRUSTED_PROXIES",
        default_value = ""
    )]
    pub trusted_proxies: TrustedProxies,

    /// Peers (IPs/CIDRs, comma-separated) that `/metrics` answers; forwarded headers do not count.
    #[arg(
        long,
        env = "QQLOGIN_METRICS_ALLOW",
        value_name = "QQLOGIN_METRICS_ALLOW",
        default_value = "127.0.0.0/8, ::1"
    )]
    pub metrics_allow: Addresses,

    /// `text`, or `json`: one JSON object per log line.
    #[arg(
        long,
        env = "QQLOGIN_LOG_FORMAT",
        value_name = "QQLOGIN_LOG_FORMAT",
        value_enum,
        default_value = "text"
    )]
    pub log_format: LogFormat,

    /// On SIGTERM, how long requests in flight may take to finish, in seconds.
    #[arg(long, env = "QQLOGIN_SHUTDOWN_GRACE_SECS", value_name = "QQLOGIN_SHUTDOWN_GRACE_SECS", default_value_t = 30,
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_grace_secs: u64,

    /// HTTP worker threads (default: one per CPU core).
    #[arg(long, env = "QQLOGIN_WORKERS", value_name = "QQLOGIN_WORKERS",
          value_parser = clap::value_parser!(u16).range(1..=512))]
    pub workers: Option<u16>,

    /// `1`: development mode (the stand-in QQ) even on a non-loopback address or with SECRET_KEY set.
    #[arg(long, env = "QQLOGIN_DEV", value_name = "QQLOGIN_DEV", default_value = "0",
          value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub dev: bool,

    /// `1`: the JSON API's QQ login is not tied to the browser that began it, for
    /// front ends that send no cookies (login CSRF becomes possible; SECURITY.md).
    #[arg(long, env = "QQLOGIN_API_UNBOUND_LOGIN", value_name = "QQLOGIN_API_UNBOUND_LOGIN",
          default_value = "0", value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub api_unbound_login: bool,

    /// How long a client may take to send a request body, in milliseconds (408 after).
    #[arg(long, env = "QQLOGIN_BODY_TIMEOUT_MS", value_name = "QQLOGIN_BODY_TIMEOUT_MS", default_value_t = 10_000,
          value_parser = clap::value_parser!(u64).range(100..=120_000))]
    pub body_timeout_ms: u64,

    /// Wrong passwords per account name before it is locked (15 s, doubling up to an hour).
    #[arg(long, env = "QQLOGIN_FREE_TRIES_PER_ACCOUNT", value_name = "QQLOGIN_FREE_TRIES_PER_ACCOUNT",
          default_value_t = 5, value_parser = clap::value_parser!(i32).range(1..=1000))]
    pub free_tries_per_account: i32,

    /// Wrong passwords per client address before it is locked (15 s, doubling up to an hour).
    #[arg(long, env = "QQLOGIN_FREE_TRIES_PER_ADDRESS", value_name = "QQLOGIN_FREE_TRIES_PER_ADDRESS",
          default_value_t = 20, value_parser = clap::value_parser!(i32).range(1..=100_000))]
    pub free_tries_per_address: i32,

    /// Password hashes allowed to wait for a core at once; beyond, 503 with Retry-After.
    #[arg(long, env = "QQLOGIN_HASH_QUEUE", value_name = "QQLOGIN_HASH_QUEUE", default_value_t = 64,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub hash_queue: u32,

    /// The callback registered at QQ for the JSON API's flow (a front end's
    /// `oauth_callback.html`); default QQ_REDIRECT_URI.
    #[arg(long, env = "QQ_API_REDIRECT_URI", value_name = "QQ_API_REDIRECT_URI",
          value_parser = parse_http_url)]
    pub qq_api_redirect_uri: Option<Url>,

    /// How SMS codes are sent: `log` (development mode only, its default), `webhook` or `tencentcloud`.
    #[arg(long, env = "QQLOGIN_SMS_SENDER", value_name = "QQLOGIN_SMS_SENDER")]
    pub sms_sender: Option<SenderKind>,

    /// `webhook`: the URL each code is POSTed to as signed JSON.
    #[arg(long, env = "QQLOGIN_SMS_WEBHOOK_URL", value_name = "QQLOGIN_SMS_WEBHOOK_URL",
          value_parser = parse_http_url)]
    pub sms_webhook_url: Option<Url>,

    /// `webhook`: the secret of the HMAC-SHA256 signature over each POST. Never logged.
    #[arg(
        long,
        env = "QQLOGIN_SMS_WEBHOOK_SECRET",
        value_name = "QQLOGIN_SMS_WEBHOOK_SECRET",
        hide_env_values = true
    )]
    pub sms_webhook_secret: Option<SecretString>,

    /// `tencentcloud`: the API key's SecretId.
    #[arg(
        long,
        env = "QQLOGIN_TENCENTCLOUD_SECRET_ID",
        value_name = "QQLOGIN_TENCENTCLOUD_SECRET_ID"
    )]
    pub tencentcloud_secret_id: Option<String>,

    /// `tencentcloud`: the API key's SecretKey. Never logged.
    #[arg(
        long,
        env = "QQLOGIN_TENCENTCLOUD_SECRET_KEY",
        value_name = "QQLOGIN_TENCENTCLOUD_SECRET_KEY",
        hide_env_values = true
    )]
    pub tencentcloud_secret_key: Option<SecretString>,

    /// `tencentcloud`: the SMS application's SdkAppId.
    #[arg(
        long,
        env = "QQLOGIN_TENCENTCLOUD_SMS_SDK_APP_ID",
        value_name = "QQLOGIN_TENCENTCLOUD_SMS_SDK_APP_ID"
    )]
    pub tencentcloud_sms_sdk_app_id: Option<String>,

    /// `tencentcloud`: the approved signature (签名) shown before each message.
    #[arg(
        long,
        env = "QQLOGIN_TENCENTCLOUD_SMS_SIGN_NAME",
        value_name = "QQLOGIN_TENCENTCLOUD_SMS_SIGN_NAME"
    )]
    pub tencentcloud_sms_sign_name: Option<String>,

    /// `tencentcloud`: the approved template's id; its two placeholders are the code and its validity in minutes.
    #[arg(
        long,
        env = "QQLOGIN_TENCENTCLOUD_SMS_TEMPLATE_ID",
        value_name = "QQLOGIN_TENCENTCLOUD_SMS_TEMPLATE_ID"
    )]
    pub tencentcloud_sms_template_id: Option<String>,

    /// `tencentcloud`: the region of the SMS service.
    #[arg(
        long,
        env = "QQLOGIN_TENCENTCLOUD_REGION",
        value_name = "QQLOGIN_TENCENTCLOUD_REGION",
        default_value = "ap-guangzhou"
    )]
    pub tencentcloud_region: String,

    /// `tencentcloud`: the API endpoint (a stand-in for tests).
    #[arg(long, env = "QQLOGIN_TENCENTCLOUD_SMS_ENDPOINT", value_name = "QQLOGIN_TENCENTCLOUD_SMS_ENDPOINT",
          default_value = "https://sms.tencentcloudapi.com", value_parser = parse_http_url)]
    pub tencentcloud_sms_endpoint: Url,

    /// SMS codes sent to one mobile per day at most (429 beyond).
    #[arg(long, env = "QQLOGIN_SMS_DAILY_PER_MOBILE", value_name = "QQLOGIN_SMS_DAILY_PER_MOBILE",
          default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub sms_daily_per_mobile: u32,

    /// SMS codes asked for from one client address per day at most (429 beyond).
    #[arg(long, env = "QQLOGIN_SMS_DAILY_PER_ADDRESS", value_name = "QQLOGIN_SMS_DAILY_PER_ADDRESS",
          default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub sms_daily_per_address: u32,

    /// `1`: send SMS codes without an image code or a bind token (limits still apply).
    #[arg(long, env = "QQLOGIN_SMS_UNGATED", value_name = "QQLOGIN_SMS_UNGATED",
          default_value = "0", value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub sms_ungated: bool,

    /// The Django site's `verify_codes` Redis (`redis://host:port/db`): each SMS
    /// code sent is also set there as `sms_<mobile>`, as the site's own SMS
    /// view sets it, so that its registration page accepts the code.
    #[arg(
        long,
        env = "QQLOGIN_DJANGO_SMS_REDIS_URL",
        value_name = "QQLOGIN_DJANGO_SMS_REDIS_URL",
        value_parser = RedisUrl::parse,
        hide_env_values = true
    )]
    pub django_sms_redis_url: Option<RedisUrl>,

    /// The operator's privacy notice, linked from the bind page where accounts are created.
    #[arg(long, env = "QQLOGIN_PRIVACY_URL", value_name = "QQLOGIN_PRIVACY_URL",
          value_parser = parse_http_url)]
    pub privacy_url: Option<Url>,

    /// Days sign-in events are kept (the account centre's list, the operators' record).
    #[arg(long, env = "QQLOGIN_EVENTS_KEEP_DAYS", value_name = "QQLOGIN_EVENTS_KEEP_DAYS",
          default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub events_keep_days: u32,

    /// `1`: QQ logins are found by unionid first, so the company's several QQ apps share accounts.
    #[arg(long, env = "QQ_USE_UNIONID", value_name = "QQ_USE_UNIONID", default_value = "0",
          value_parser = parse_switch, action = clap::ArgAction::Set)]
    pub use_unionid: bool,

    /// `new`: an SMS code is needed to create an account at bind; `always`: also to link an existing one.
    #[arg(
        long,
        env = "QQLOGIN_BIND_REQUIRE_SMS",
        value_name = "QQLOGIN_BIND_REQUIRE_SMS",
        default_value = "new"
    )]
    pub bind_require_sms: BindRequireSms,

    /// The site's name, on every page and in every title [default: 统一登录, in English "Unified Login"].
    #[arg(long, env = "QQLOGIN_SITE_NAME", value_name = "QQLOGIN_SITE_NAME",
          value_parser = parse_site_name)]
    pub site_name: Option<String>,

    /// The site's logo beside its name: a .png, .jpg, .webp, .gif or .svg file, served by the service.
    #[arg(long, env = "QQLOGIN_SITE_LOGO", value_name = "QQLOGIN_SITE_LOGO",
          value_parser = |raw: &str| Logo::read(std::path::Path::new(raw)))]
    pub site_logo: Option<Logo>,

    /// The site's accent colour, `#rrggbb`: its buttons and links.
    #[arg(long, env = "QQLOGIN_ACCENT_COLOR", value_name = "QQLOGIN_ACCENT_COLOR",
          value_parser = |raw: &str| AccentColor::parse(raw).map_err(|e| e.to_string()))]
    pub accent_color: Option<AccentColor>,
}

/// A site name fit for a title: one line, not blank, not a paragraph.
fn parse_site_name(raw: &str) -> Result<String, String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 40 || name.chars().any(char::is_control) {
        return Err("must be 1 to 40 characters on one line".into());
    }
    Ok(name.to_owned())
}

/// `1`/`true`/`yes`/`on` or `0`/`false`/`no`/`off` (any case).
fn parse_switch(raw: &str) -> Result<bool, String> {
    match raw.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err("must be 1 or 0".into()),
    }
}

/// A validated setting error, printed as one line before exiting with code 2.
#[derive(Debug, thiserror::Error)]
#[error("{setting}: {reason}")]
pub struct SettingError {
    pub setting: &'static str,
    pub reason: String,
}

fn setting_error(setting: &'static str, reason: impl Into<String>) -> SettingError {
    SettingError {
        setting,
        reason: reason.into(),
    }
}

/// Where the database lives; the scheme picks the backend.
#[derive(Clone)]
pub enum DatabaseUrl {
    Sqlite { path: String },
    Postgres { url: SecretString },
}

impl DatabaseUrl {
    /// Accepts `sqlite://PATH` (also `sqlite:PATH`) and `postgres://` / `postgresql://` URLs.
    pub fn parse(raw: &str) -> Result<Self, String> {
        if let Some(path) = raw
            .strip_prefix("sqlite://")
            .or_else(|| raw.strip_prefix("sqlite:"))
        {
            if path.is_empty() {
                return Err("sqlite:// needs a file path, e.g. sqlite://qqlogin.db".into());
            }
            return Ok(Self::Sqlite {
                path: path.to_owned(),
            });
        }
        if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            return Ok(Self::Postgres {
                url: SecretString::from(raw.to_owned()),
            });
        }
        Err("must start with sqlite://, postgres:// or postgresql://".into())
    }

    /// A description safe to log: never the PostgreSQL URL, which may carry a password.
    pub fn describe(&self) -> String {
        match self {
            Self::Sqlite { path } => format!("SQLite file {path}"),
            Self::Postgres { .. } => "PostgreSQL".to_owned(),
        }
    }
}

impl std::fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Origins allowed by CORS, each exactly `scheme://host[:port]`.
#[derive(Clone, Debug, Default)]
pub struct Origins(pub Vec<String>);

fn parse_origins(raw: &str) -> Result<Origins, String> {
    let mut origins = Vec::new();
    for item in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let url = Url::parse(item).map_err(|e| format!("{item:?} is not an origin: {e}"))?;
        let origin = url.origin();
        if !origin.is_tuple() || !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{item:?} is not an http(s) origin"));
        }
        origins.push(origin.ascii_serialization());
    }
    Ok(Origins(origins))
}

fn parse_http_url(raw: &str) -> Result<Url, String> {
    let url = Url::parse(raw).map_err(|e| e.to_string())?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err("must be an http:// or https:// URL".into());
    }
    Ok(url)
}

/// Free tries at a password before back-off starts (`QQLOGIN_FREE_TRIES_PER_ACCOUNT`,
/// `QQLOGIN_FREE_TRIES_PER_ADDRESS`).
#[derive(Debug, Clone, Copy)]
pub struct FreeTries {
    /// Per account name.
    pub account: i32,
    /// Per client address (many people may share one address).
    pub address: i32,
}

/// Whose tables hold the users and their QQ links (`QQLOGIN_USER_TABLES`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum UserTables {
    /// The service's own `users` and `qq_links`.
    #[default]
    Qqlogin,
    /// The Django site's `tb_users` and `tb_oauth_qq`, shared with it; the
    /// service's other tables live beside them (PostgreSQL: in schema `qqlogin`).
    Django,
}

/// Which SMS sender `QQLOGIN_SMS_SENDER` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SenderKind {
    Log,
    Webhook,
    Tencentcloud,
}

/// When a bind needs an SMS code (`QQLOGIN_BIND_REQUIRE_SMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BindRequireSms {
    /// Only to create an account: its mobile must be proven.
    New,
    /// Also to link an existing account.
    Always,
}

/// How SMS codes leave the service, validated.
#[derive(Debug, Clone)]
pub enum SenderConfig {
    /// Into the log (development mode only).
    Log,
    /// A signed JSON POST to the operator's URL.
    Webhook { url: Url, secret: SecretString },
    /// Tencent Cloud SMS `SendSms` (API 3.0).
    TencentCloud(TencentCloudConfig),
}

/// The settings of Tencent Cloud SMS.
#[derive(Debug, Clone)]
pub struct TencentCloudConfig {
    pub secret_id: String,
    pub secret_key: SecretString,
    pub sdk_app_id: String,
    pub sign_name: String,
    pub template_id: String,
    pub region: String,
    pub endpoint: Url,
}

/// The SMS codes' settings.
#[derive(Debug, Clone)]
pub struct SmsConfig {
    pub sender: SenderConfig,
    pub daily_per_mobile: u32,
    pub daily_per_address: u32,
    /// Codes are sent without an image code or bind token (`QQLOGIN_SMS_UNGATED`).
    pub ungated: bool,
    pub bind_require: BindRequireSms,
    /// Where each sent code is copied for the Django site (`QQLOGIN_DJANGO_SMS_REDIS_URL`).
    pub django_redis: Option<RedisUrl>,
}

/// A Redis address, checked at start; its text may hold a password, so it
/// is never printed.
#[derive(Clone)]
pub struct RedisUrl(pub redis::ConnectionInfo);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisUrl(…)")
    }
}

impl RedisUrl {
    pub fn parse(text: &str) -> Result<Self, String> {
        use redis::IntoConnectionInfo as _;
        text.into_connection_info()
            .map(Self)
            .map_err(|_| "must be a Redis URL such as redis://127.0.0.1:6379/2".to_owned())
    }
}

/// How the service reaches QQ.
#[derive(Debug, Clone)]
pub enum QqMode {
    /// The real QQ Connect (or a stand-in at `graph_url`, for staging and tests).
    Real {
        app_id: String,
        app_key: SecretString,
        graph_url: Url,
    },
    /// Development mode: the built-in stand-in provider mounted at `/dev/qq/`.
    DevStandIn,
}

/// Why the service runs in development mode, for its first log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DevReason {
    /// The operator said `QQLOGIN_DEV=1`.
    Requested,
    /// Nothing of production is configured and the listen address is loopback.
    NothingConfigured,
}

impl std::fmt::Display for DevReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Requested => "QQLOGIN_DEV=1 is set",
            Self::NothingConfigured => {
                "QQ_APP_ID, QQ_APP_KEY and SECRET_KEY are unset, QQ_REDIRECT_URI is not https \
                 and QQLOGIN_LISTEN is a loopback address"
            }
        })
    }
}

/// The validated configuration the application is built from.
#[derive(Debug, Clone)]
pub struct Config {
    /// An operator's command to run instead of the server.
    pub command: Option<Command>,
    pub listen: SocketAddr,
    pub database: DatabaseUrl,
    pub user_tables: UserTables,
    /// PBKDF2 rounds of passwords set in Django's format (`QQLOGIN_DJANGO_PBKDF2_ITERATIONS`).
    pub django_pbkdf2_iterations: u32,
    pub db_pool_size: u32,
    pub db_timeout: Duration,
    pub qq: QqMode,
    pub redirect_uri: Url,
    pub qq_timeout: Duration,
    pub secret_key: SecretString,
    pub secret_key_previous: Option<SecretString>,
    /// Login JWTs in djangorestframework-jwt's format, with this secret
    /// (`QQLOGIN_DJANGO_SECRET_KEY`).
    pub django_secret_key: Option<SecretString>,
    pub session_idle: Duration,
    pub session_max: Duration,
    /// True when the secret was generated for this process (development mode only).
    pub secret_is_ephemeral: bool,
    pub jwt_ttl: Duration,
    pub cors_origins: Origins,
    pub trusted_proxies: TrustedProxies,
    /// Who may read `/metrics` (`QQLOGIN_METRICS_ALLOW`).
    pub metrics_allow: Addresses,
    /// How log lines are written (`QQLOGIN_LOG_FORMAT`).
    pub log_format: LogFormat,
    pub shutdown_grace: Duration,
    pub workers: Option<usize>,
    /// Set in development mode: why it was chosen.
    pub dev_reason: Option<DevReason>,
    /// The JSON API's login is not tied to the browser (`QQLOGIN_API_UNBOUND_LOGIN`).
    pub api_unbound_login: bool,
    pub body_timeout: Duration,
    pub hash_queue: usize,
    pub free_tries: FreeTries,
    /// Where QQ sends the JSON API's logins back to (`QQ_API_REDIRECT_URI`).
    pub api_redirect_uri: Url,
    pub sms: SmsConfig,
    /// Links are found by unionid first (`QQ_USE_UNIONID`).
    pub use_unionid: bool,
    /// The privacy notice the bind page links to (`QQLOGIN_PRIVACY_URL`).
    pub privacy_url: Option<Url>,
    /// How long sign-in events are kept (`QQLOGIN_EVENTS_KEEP_DAYS`).
    pub events_kept: Duration,
    /// The site's name, logo and accent colour.
    pub site: SiteConfig,
}

impl Config {
    /// Reads `.env` (real environment variables win) and the process's settings.
    /// `Err` carries clap's own error for `--help`/`--version` and syntax errors.
    pub fn from_env() -> Result<Self, ConfigError> {
        // A missing .env is the normal case; a malformed one is a bad setting.
        if let Err(e) = dotenvy::dotenv()
            && !e.not_found()
        {
            return Err(ConfigError::Invalid(setting_error(".env", e.to_string())));
        }
        let settings = Settings::try_parse().map_err(ConfigError::Clap)?;
        settings.validate().map_err(ConfigError::Invalid)
    }
}

/// An operator's command (`qqlogin <command>`), run instead of the server
/// with the same settings.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum Command {
    /// Copies the Django site's users and QQ links (`tb_users`, `tb_oauth_qq`)
    /// into this service's database; run it again and it changes nothing.
    ImportDjango {
        /// The Django site's database: `sqlite://PATH` or `postgres://…`.
        #[arg(long, value_name = "URL", value_parser = DatabaseUrl::parse)]
        from: DatabaseUrl,
        /// Print the summary as JSON, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Looks at user accounts, disables and enables them, unlinks their QQ.
    Users {
        #[command(subcommand)]
        action: UsersCommand,
    },
    /// Ends sessions.
    Sessions {
        #[command(subcommand)]
        action: SessionsCommand,
    },
    /// Sign-in events, newest first.
    Events {
        /// Only this user's (an id, a user name or a mobile).
        #[arg(long)]
        user: Option<String>,
        /// Only events since this day or moment (UTC): `2026-12-01` or `2026-12-01 08:00:00`.
        #[arg(long)]
        since: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: i64,
        #[command(flatten)]
        output: Output,
    },
    /// Applies pending database migrations, then exits.
    Migrate,
    /// Checks the settings, the database, QQ's endpoints and the SMS sender;
    /// exits 1 when something is wrong.
    Check {
        #[command(flatten)]
        output: Output,
    },
}

/// `users …`: USER is an id, a user name or a mobile.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum UsersCommand {
    /// Accounts, by id; `--search` keeps those whose user name or mobile contains it.
    List {
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        output: Output,
    },
    /// One account: its QQ link, its sessions and its latest events.
    Show {
        user: String,
        #[command(flatten)]
        output: Output,
    },
    /// The account may no longer log in, by any way; its sessions end now.
    Disable {
        user: String,
        #[command(flatten)]
        output: Output,
    },
    /// The account may log in again.
    Enable {
        user: String,
        #[command(flatten)]
        output: Output,
    },
    /// Removes the account's QQ link.
    Unlink {
        user: String,
        #[command(flatten)]
        output: Output,
    },
}

/// `sessions …`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum SessionsCommand {
    /// Ends every session of USER (an id, a user name or a mobile).
    End {
        user: String,
        #[command(flatten)]
        output: Output,
    },
}

/// How a command prints: a table for people, or JSON for scripts.
#[derive(clap::Args, Debug, Clone, Copy)]
pub struct Output {
    /// Print JSON, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// Why the configuration could not be read.
#[derive(Debug)]
pub enum ConfigError {
    Clap(clap::Error),
    Invalid(SettingError),
}

impl ConfigError {
    /// Prints the error and exits: 0 for `--help`/`--version`, 2 for a bad setting
    /// (one line that names the setting, never its value: it may be a secret).
    pub fn exit(self) -> ! {
        match self {
            Self::Clap(e) if !e.use_stderr() => e.exit(),
            Self::Clap(e) => {
                eprintln!("qqlogin: {}", one_line_clap_error(&e));
                std::process::exit(2)
            }
            Self::Invalid(e) => {
                eprintln!("qqlogin: {e}");
                std::process::exit(2)
            }
        }
    }
}

fn one_line_clap_error(e: &clap::Error) -> String {
    use clap::error::ContextKind;
    let setting = e
        .get(ContextKind::InvalidArg)
        .map(|arg| arg.to_string())
        .and_then(|arg| {
            arg.split('<')
                .nth(1)
                .map(|s| s.trim_end_matches('>').to_owned())
        })
        .unwrap_or_else(|| "settings".to_owned());
    let reason = std::error::Error::source(e)
        .map(|s| s.to_string())
        .unwrap_or_else(|| e.kind().to_string());
    format!("{setting}: {reason}")
}

impl Settings {
    /// Cross-setting checks clap cannot express.
    pub fn validate(self) -> Result<Config, SettingError> {
        // Checked now, before the fields move; reported after the QQ settings' errors.
        let sms = self.sms_config(self.qq_app_id.is_none());
        if let Some(key) = &self.secret_key
            && key.expose_secret().chars().count() < MIN_SECRET_KEY_LEN
        {
            return Err(setting_error(
                "SECRET_KEY",
                format!("must be at least {MIN_SECRET_KEY_LEN} characters"),
            ));
        }
        if let Some(key) = &self.secret_key_previous
            && key.expose_secret().chars().count() < MIN_SECRET_KEY_LEN
        {
            return Err(setting_error(
                "SECRET_KEY_PREVIOUS",
                format!("must be at least {MIN_SECRET_KEY_LEN} characters"),
            ));
        }
        if self
            .django_secret_key
            .as_ref()
            .is_some_and(|key| key.expose_secret().trim().is_empty())
        {
            return Err(setting_error(
                "QQLOGIN_DJANGO_SECRET_KEY",
                "must not be empty (unset it to sign login JWTs with SECRET_KEY)".to_owned(),
            ));
        }
        if self.session_max_secs < self.session_idle_secs {
            return Err(setting_error(
                "QQLOGIN_SESSION_MAX_SECS",
                "must not be shorter than QQLOGIN_SESSION_IDLE_SECS",
            ));
        }
        let (qq, dev_reason) = match (self.qq_app_id, self.qq_app_key) {
            (None, app_key) => (
                QqMode::DevStandIn,
                Some(dev_reason(
                    self.dev,
                    app_key.is_some(),
                    self.secret_key.is_some(),
                    &self.qq_redirect_uri,
                    self.listen,
                )?),
            ),
            (Some(id), _)
                if id.trim().is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric()) =>
            {
                return Err(setting_error(
                    "QQ_APP_ID",
                    "must be the numeric app id from QQ Connect",
                ));
            }
            (Some(_), None) => {
                return Err(setting_error(
                    "QQ_APP_KEY",
                    "is required when QQ_APP_ID is set",
                ));
            }
            (Some(app_id), Some(app_key)) => (
                QqMode::Real {
                    app_id,
                    app_key,
                    graph_url: self.qq_graph_url,
                },
                None,
            ),
        };
        let (secret_key, secret_is_ephemeral) = match (self.secret_key, &qq) {
            (Some(key), _) => (key, false),
            (None, QqMode::DevStandIn) => (random_secret(), true),
            (None, QqMode::Real { .. }) => {
                return Err(setting_error(
                    "SECRET_KEY",
                    format!(
                        "is required (at least {MIN_SECRET_KEY_LEN} characters) when QQ_APP_ID is set"
                    ),
                ));
            }
        };
        if self.qq_redirect_uri.query().is_some() || self.qq_redirect_uri.fragment().is_some() {
            return Err(setting_error(
                "QQ_REDIRECT_URI",
                "must not carry a query or fragment",
            ));
        }
        let sms = sms?;
        let api_redirect_uri = self
            .qq_api_redirect_uri
            .clone()
            .unwrap_or_else(|| self.qq_redirect_uri.clone());
        Ok(Config {
            command: self.command,
            listen: self.listen,
            database: self.database_url,
            user_tables: self.user_tables,
            django_pbkdf2_iterations: self.django_pbkdf2_iterations,
            db_pool_size: self.db_pool_size,
            db_timeout: Duration::from_millis(self.db_timeout_ms),
            qq,
            redirect_uri: self.qq_redirect_uri,
            qq_timeout: Duration::from_millis(self.qq_timeout_ms),
            secret_key,
            secret_key_previous: self.secret_key_previous,
            django_secret_key: self.django_secret_key.clone(),
            session_idle: Duration::from_secs(self.session_idle_secs),
            session_max: Duration::from_secs(self.session_max_secs),
            secret_is_ephemeral,
            jwt_ttl: Duration::from_secs(self.jwt_ttl),
            cors_origins: self.cors_origins,
            trusted_proxies: self.trusted_proxies,
            metrics_allow: self.metrics_allow,
            log_format: self.log_format,
            shutdown_grace: Duration::from_secs(self.shutdown_grace_secs),
            workers: self.workers.map(usize::from),
            dev_reason,
            api_unbound_login: self.api_unbound_login,
            body_timeout: Duration::from_millis(self.body_timeout_ms),
            hash_queue: usize::try_from(self.hash_queue).unwrap_or(usize::MAX),
            free_tries: FreeTries {
                account: self.free_tries_per_account,
                address: self.free_tries_per_address,
            },
            api_redirect_uri,
            sms,
            use_unionid: self.use_unionid,
            privacy_url: self.privacy_url.clone(),
            events_kept: Duration::from_secs(u64::from(self.events_keep_days) * 86_400),
            site: SiteConfig {
                name: self.site_name,
                logo: self.site_logo,
                accent: self.accent_color,
            },
        })
    }

    /// The SMS sender and limits. Production must send real messages, so
    /// `log` (or nothing) there stops the start.
    fn sms_config(&self, dev_mode: bool) -> Result<SmsConfig, SettingError> {
        let kind = match (self.sms_sender, dev_mode) {
            (Some(kind), _) => kind,
            (None, true) => SenderKind::Log,
            (None, false) => {
                return Err(setting_error(
                    "QQLOGIN_SMS_SENDER",
                    "is required when QQ_APP_ID is set: webhook or tencentcloud",
                ));
            }
        };
        let required = |value: Option<&str>, setting: &'static str| {
            value
                .filter(|v| !v.trim().is_empty())
                .map(str::to_owned)
                .ok_or_else(|| setting_error(setting, "is required by QQLOGIN_SMS_SENDER"))
        };
        let sender = match kind {
            SenderKind::Log if !dev_mode => {
                return Err(setting_error(
                    "QQLOGIN_SMS_SENDER",
                    "log is for development mode only: use webhook or tencentcloud",
                ));
            }
            SenderKind::Log => SenderConfig::Log,
            SenderKind::Webhook => SenderConfig::Webhook {
                url: self.sms_webhook_url.clone().ok_or_else(|| {
                    setting_error(
                        "QQLOGIN_SMS_WEBHOOK_URL",
                        "is required by QQLOGIN_SMS_SENDER=webhook",
                    )
                })?,
                secret: SecretString::from(required(
                    self.sms_webhook_secret
                        .as_ref()
                        .map(ExposeSecret::expose_secret),
                    "QQLOGIN_SMS_WEBHOOK_SECRET",
                )?),
            },
            SenderKind::Tencentcloud => SenderConfig::TencentCloud(TencentCloudConfig {
                secret_id: required(
                    self.tencentcloud_secret_id.as_deref(),
                    "QQLOGIN_TENCENTCLOUD_SECRET_ID",
                )?,
                secret_key: SecretString::from(required(
                    self.tencentcloud_secret_key
                        .as_ref()
                        .map(ExposeSecret::expose_secret),
                    "QQLOGIN_TENCENTCLOUD_SECRET_KEY",
                )?),
                sdk_app_id: required(
                    self.tencentcloud_sms_sdk_app_id.as_deref(),
                    "QQLOGIN_TENCENTCLOUD_SMS_SDK_APP_ID",
                )?,
                sign_name: required(
                    self.tencentcloud_sms_sign_name.as_deref(),
                    "QQLOGIN_TENCENTCLOUD_SMS_SIGN_NAME",
                )?,
                template_id: required(
                    self.tencentcloud_sms_template_id.as_deref(),
                    "QQLOGIN_TENCENTCLOUD_SMS_TEMPLATE_ID",
                )?,
                region: self.tencentcloud_region.clone(),
                endpoint: self.tencentcloud_sms_endpoint.clone(),
            }),
        };
        Ok(SmsConfig {
            sender,
            daily_per_mobile: self.sms_daily_per_mobile,
            daily_per_address: self.sms_daily_per_address,
            ungated: self.sms_ungated,
            bind_require: self.bind_require_sms,
            django_redis: self.django_sms_redis_url.clone(),
        })
    }
}

/// Development mode without `QQ_APP_ID`, and why; or the error that stops a
/// production instance that forgot it. A forgotten app id must never turn a
/// production instance into one where anyone types a nickname and is that QQ
/// account, so any sign of production without it refuses to start.
fn dev_reason(
    requested: bool,
    app_key: bool,
    secret_key: bool,
    redirect_uri: &Url,
    listen: SocketAddr,
) -> Result<DevReason, SettingError> {
    if app_key {
        return Err(setting_error(
            "QQ_APP_ID",
            "is not set, but QQ_APP_KEY is: set the app id from QQ Connect",
        ));
    }
    if requested {
        return Ok(DevReason::Requested);
    }
    let production: Vec<&str> = [
        secret_key.then_some("SECRET_KEY"),
        (redirect_uri.scheme() == "https").then_some("an https QQ_REDIRECT_URI"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if !production.is_empty() {
        return Err(setting_error(
            "QQ_APP_ID",
            format!(
                "is not set, but {} {}: set the app id from QQ Connect (or QQLOGIN_DEV=1 for development mode)",
                production.join(" and "),
                if production.len() == 1 { "is" } else { "are" }
            ),
        ));
    }
    if !listen.ip().is_loopback() {
        return Err(setting_error(
            "QQ_APP_ID",
            format!(
                "is not set and QQLOGIN_LISTEN ({listen}) is not a loopback address: \
                 set QQ_APP_ID, QQ_APP_KEY and SECRET_KEY for production, or QQLOGIN_DEV=1 for development mode"
            ),
        ));
    }
    Ok(DevReason::NothingConfigured)
}

fn random_secret() -> SecretString {
    use rand::distr::{Alphanumeric, SampleString};
    SecretString::from(Alphanumeric.sample_string(&mut rand::rng(), 96))
}

impl Config {
    /// A configuration for tests and embedding: every default, development mode.
    pub fn defaults() -> Result<Self, SettingError> {
        Settings::try_parse_from(["qqlogin"])
            .map_err(|e| setting_error("settings", e.kind().to_string()))?
            .validate()
    }

    /// Whether cookies must carry `Secure`: the site is served over https.
    pub fn is_https(&self) -> bool {
        self.redirect_uri.scheme() == "https"
    }

    pub fn is_dev_mode(&self) -> bool {
        matches!(self.qq, QqMode::DevStandIn)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config, String> {
        let mut argv = vec!["qqlogin"];
        argv.extend_from_slice(args);
        Settings::try_parse_from(argv)
            .map_err(|e| e.to_string())?
            .validate()
            .map_err(|e| e.to_string())
    }

    const KEY: &str = "0123456789012345678901234567890123456789012345678901234567890123";

    #[test]
    fn no_settings_means_development_mode_with_an_ephemeral_secret() {
        let config = parse(&[]).unwrap();
        assert!(config.is_dev_mode());
        assert!(config.secret_is_ephemeral);
        assert!(config.secret_key.expose_secret().len() >= MIN_SECRET_KEY_LEN);
        assert!(
            matches!(config.database, DatabaseUrl::Sqlite { ref path } if path == "qqlogin.db")
        );
    }

    #[test]
    fn production_settings_without_an_app_id_are_refused_naming_it() {
        for args in [
            &["--qq-app-key", "k"][..],
            &["--secret-key", KEY],
            &[
                "--qq-redirect-uri",
                "https://www.example.com/oauth/qq/callback",
            ],
            &["--qq-app-key", "k", "--dev", "1"],
            &["--listen", "0.0.0.0:8000"],
            &["--listen", "[::]:8000"],
        ] {
            let err = parse(args).unwrap_err();
            assert!(err.starts_with("QQ_APP_ID:"), "{args:?}: {err}");
        }
    }

    #[test]
    fn development_mode_says_why() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.dev_reason, Some(DevReason::NothingConfigured));
        for args in [
            &["--dev", "1", "--listen", "0.0.0.0:8000"][..],
            &["--dev", "true", "--secret-key", KEY],
        ] {
            let config = parse(args).unwrap();
            assert!(config.is_dev_mode(), "{args:?}");
            assert_eq!(config.dev_reason, Some(DevReason::Requested));
        }
        assert!(parse(&["--dev", "maybe"]).is_err());
    }

    #[test]
    fn an_app_id_without_a_secret_key_is_refused() {
        let err = parse(&["--qq-app-id", "101", "--qq-app-key", "k"]).unwrap_err();
        assert!(err.starts_with("SECRET_KEY:"), "{err}");
    }

    #[test]
    fn a_short_secret_key_is_refused_even_in_development_mode() {
        let err = parse(&["--secret-key", "short"]).unwrap_err();
        assert!(err.starts_with("SECRET_KEY:"), "{err}");
    }

    #[test]
    fn an_app_id_needs_its_key() {
        let err = parse(&["--qq-app-id", "101", "--secret-key", KEY]).unwrap_err();
        assert!(err.starts_with("QQ_APP_KEY:"), "{err}");
    }

    #[test]
    fn real_mode_with_all_settings() {
        let config = parse(&[
            "--qq-app-id",
            "101",
            "--qq-app-key",
            "k",
            "--secret-key",
            KEY,
            "--sms-sender",
            "webhook",
            "--sms-webhook-url",
            "https://hooks.example/sms",
            "--sms-webhook-secret",
            "s",
        ])
        .unwrap();
        assert!(!config.is_dev_mode());
        assert!(!config.secret_is_ephemeral);
        assert_eq!(config.dev_reason, None);
        assert!(matches!(config.sms.sender, SenderConfig::Webhook { .. }));
        assert_eq!(config.api_redirect_uri, config.redirect_uri);
    }

    const REAL: [&str; 6] = [
        "--qq-app-id",
        "101",
        "--qq-app-key",
        "k",
        "--secret-key",
        KEY,
    ];

    #[test]
    fn production_needs_a_real_sms_sender_naming_the_setting() {
        for extra in [&[][..], &["--sms-sender", "log"]] {
            let args: Vec<&str> = REAL.iter().chain(extra).copied().collect();
            let err = parse(&args).unwrap_err();
            assert!(err.starts_with("QQLOGIN_SMS_SENDER:"), "{extra:?}: {err}");
        }
        let args: Vec<&str> = REAL
            .iter()
            .chain(&["--sms-sender", "webhook"])
            .copied()
            .collect();
        assert!(
            parse(&args)
                .unwrap_err()
                .starts_with("QQLOGIN_SMS_WEBHOOK_URL:")
        );
        let args: Vec<&str> = REAL
            .iter()
            .chain(&[
                "--sms-sender",
                "tencentcloud",
                "--tencentcloud-secret-id",
                "id",
            ])
            .copied()
            .collect();
        assert!(
            parse(&args)
                .unwrap_err()
                .starts_with("QQLOGIN_TENCENTCLOUD_SECRET_KEY:")
        );
    }

    #[test]
    fn development_mode_sends_codes_to_the_log_by_default() {
        let config = parse(&[]).unwrap();
        assert!(matches!(config.sms.sender, SenderConfig::Log));
        assert_eq!(config.sms.bind_require, BindRequireSms::New);
        assert!(!config.sms.ungated);
        let config = parse(&["--bind-require-sms", "always", "--sms-ungated", "1"]).unwrap();
        assert_eq!(config.sms.bind_require, BindRequireSms::Always);
        assert!(config.sms.ungated);
    }

    #[test]
    fn the_api_callback_may_differ_from_the_pages() {
        let config = parse(&[
            "--qq-api-redirect-uri",
            "http://www.meiduo.site:8080/oauth_callback.html",
        ])
        .unwrap();
        assert_eq!(
            config.api_redirect_uri.as_str(),
            "http://www.meiduo.site:8080/oauth_callback.html"
        );
    }

    #[test]
    fn database_urls_choose_the_backend() {
        assert!(
            matches!(DatabaseUrl::parse("sqlite:///tmp/x.db"), Ok(DatabaseUrl::Sqlite { path }) if path == "/tmp/x.db")
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@h/db"),
            Ok(DatabaseUrl::Postgres { .. })
        ));
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("sqlite://").is_err());
    }

    #[test]
    fn cors_origins_are_normalised() {
        let config = parse(&[
            "--cors-origins",
            "http://www.meiduo.site:8080/, https://a.example",
        ])
        .unwrap();
        assert_eq!(
            config.cors_origins.0,
            vec!["http://www.meiduo.site:8080", "https://a.example"]
        );
        assert!(parse(&["--cors-origins", "ftp://x"]).is_err());
    }
}

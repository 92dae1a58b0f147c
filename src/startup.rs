//! The one place that wires the process: pool, QQ client, keys, middleware, routes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use actix_session::SessionMiddleware;
use actix_session::config::{PersistentSession, TtlExtensionPolicy};
use actix_web::cookie::SameSite;
use actix_web::dev::Server;
use actix_web::middleware::{Condition, DefaultHeaders, Logger, from_fn};
use actix_web::{App, HttpServer, web};
use secrecy::SecretString;
use url::Url;

use crate::account::{Accounts, AccountsConfig};
use crate::config::{Config, QqMode, UserTables};
use crate::db::{self, Db, DbError};
use crate::events::Events;
use crate::image_code::ImageCodes;
use crate::logging::{self, LogFormat};
use crate::password::{HashError, Hasher, Scheme};
use crate::qq::stand_in::{DEV_APP_ID, StandIn};
use crate::qq::{QqClient, QqConfig, QqError};
use crate::routes;
use crate::secret::random_token;
use crate::session::attempt::OAUTH_STATE_TTL;
use crate::session::store::DbSessionStore;
use crate::session::{SESSION_COOKIE, SessionLimits};
use crate::site::Site;
use crate::sms::{DjangoCodes, Sender, SmsCodes};
use crate::state::AppState;
use crate::token::Keys;

/// Where actix-web's `Logger` writes the text access log.
const ACCESS_LOG_TARGET: &str = "actix_web::middleware::logger";
/// How long a client may take to send a request's line and headers.
const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection stays open (nginx's side closes
/// its idle upstream connections after 4 s: deploy/nginx/qqlogin.conf).
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// How often expired sessions are purged.
const PURGE_EVERY: Duration = Duration::from_secs(600);

/// No page needs inline script or style, and none may be framed.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: https://*.qlogo.cn https://*.qpic.cn; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot listen: {0}")]
    Listen(#[from] std::io::Error),
    #[error("database: {0}")]
    Db(#[from] DbError),
    #[error("QQ client: {0}")]
    Qq(#[from] QqError),
    #[error("password hasher: {0}")]
    Hasher(#[from] HashError),
    #[error("SMS sender: {0}")]
    Sms(#[from] crate::sms::SendError),
    #[error("QQLOGIN_DJANGO_SMS_REDIS_URL: {0}")]
    DjangoRedis(#[from] redis::RedisError),
}

/// A built, listening application.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Binds `config.listen` and builds the application.
    pub async fn build(config: Config) -> Result<Self, StartupError> {
        let listener = TcpListener::bind(config.listen)?;
        Self::build_with_listener(config, listener).await
    }

    /// Builds the application on a listener the caller bound (tests bind port 0).
    pub async fn build_with_listener(
        config: Config,
        listener: TcpListener,
    ) -> Result<Self, StartupError> {
        let local = listener.local_addr()?;
        let db = Db::new(
            config.database.clone(),
            config.user_tables,
            config.db_pool_size,
            config.db_timeout,
        );
        let (qq_config, dev_qq) = qq_setup(&config, local);
        let app_id = qq_config.app_id.clone();
        let idle = actix_web::cookie::time::Duration::seconds(
            i64::try_from(config.session_idle.as_secs()).unwrap_or(i64::MAX),
        );
        let qq = QqClient::new(qq_config)?;
        crate::metrics::init();
        let keys = Keys::with_previous(&config.secret_key, config.secret_key_previous.as_ref())
            .with_django_secret(config.django_secret_key.as_ref());
        let sms = SmsCodes::new(
            db.clone(),
            keys.sms_code.clone(),
            Sender::new(&config.sms.sender)?,
            config
                .sms
                .django_redis
                .as_ref()
                .map(DjangoCodes::new)
                .transpose()?,
            &config.sms,
        );
        let state = web::Data::new(AppState {
            image_codes: ImageCodes::new(db.clone()),
            accounts: Accounts::new(
                db.clone(),
                Hasher::new(cores(), config.hash_queue, password_scheme(&config))?,
                sms,
                Events::start(db.clone()),
                AccountsConfig {
                    app_id,
                    free_tries: config.free_tries,
                    bind_require: config.sms.bind_require,
                },
            ),
            qq_api: qq.with_redirect_uri(config.api_redirect_uri.clone()),
            qq,
            keys,
            sms_ungated: config.sms.ungated,
            jwt_ttl: config.jwt_ttl,
            trusted_proxies: config.trusted_proxies.clone(),
            metrics_allow: config.metrics_allow.clone(),
            secure_cookies: config.is_https(),
            api_unbound_login: config.api_unbound_login,
            body_timeout: config.body_timeout,
            privacy_url: config.privacy_url.clone(),
            bind_require_sms: config.sms.bind_require,
            public_base: public_base(&config.redirect_uri),
            migrated: AtomicBool::new(false),
        });
        migrate_or_keep_trying(db.clone(), state.clone(), config.database.describe()).await;
        spawn_purge(db.clone(), config.events_kept);

        let callback_path = config.redirect_uri.path().to_owned();
        let cookie_key = state.keys.cookie.clone();
        let sessions = DbSessionStore::new(db.clone());
        let session_limits = web::Data::new(SessionLimits {
            max: config.session_max,
        });
        let (https, origins) = (config.is_https(), config.cors_origins.clone());
        if config.api_unbound_login {
            log::warn!(
                "QQLOGIN_API_UNBOUND_LOGIN=1: the JSON API trades any QQ code without checking that this browser \
                 began the login, so an attacker's code fed to a victim's front end logs the victim into the \
                 attacker's QQ account (login CSRF). Use it only for a front end that cannot send cookies."
            );
        }
        // Even with its lines filtered out, the access log formats every
        // request; an operator at `RUST_LOG=warn` should not pay for that.
        let log_requests = config.log_format == LogFormat::Text
            && log::log_enabled!(target: ACCESS_LOG_TARGET, log::Level::Info);
        let log_format = web::Data::new(config.log_format);
        let site = web::Data::new(Site::new(&config.site));
        let mut server = HttpServer::new(move || {
            let session = SessionMiddleware::builder(sessions.clone(), cookie_key.clone())
                .cookie_name(SESSION_COOKIE.to_owned())
                .cookie_secure(https)
                .cookie_http_only(true)
                .cookie_same_site(SameSite::Lax)
                // The idle limit: every request pushes the expiry on; the
                // absolute limit is checked by `UserSession`.
                .session_lifecycle(
                    PersistentSession::default()
                        .session_ttl(idle)
                        .session_ttl_extension_policy(TtlExtensionPolicy::OnEveryRequest),
                )
                .build();
            let dev_qq = dev_qq.clone();
            App::new()
                // Innermost of the application's own: every handler and
                // middleware below runs with the site in scope.
                .wrap(from_fn(crate::site::in_scope))
                .wrap(from_fn(crate::i18n::in_scope))
                .wrap(security_headers())
                .wrap(from_fn(logging::request_id))
                .wrap(Condition::new(log_requests, access_log()))
                .app_data(log_format.clone())
                .app_data(state.clone())
                .app_data(site.clone())
                .app_data(session_limits.clone())
                .configure(|cfg| {
                    if let Some(dev_qq) = dev_qq {
                        dev_qq.configure(cfg, "/dev/qq");
                    }
                })
                .configure(|cfg| routes::configure(cfg, &callback_path, &origins, &session))
                .default_service(web::to(routes::not_found))
        })
        .shutdown_timeout(config.shutdown_grace.as_secs())
        // A request's head must arrive within this (then 408), an idle
        // keep-alive connection is closed after this; bodies have their own
        // deadline (`limits`).
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .keep_alive(KEEP_ALIVE)
        .client_disconnect_timeout(Duration::from_secs(1))
        // Work waiting for a database connection waits in the blocking pool's
        // queue, not on a thread of its own: a burst does not start hundreds
        // of threads that each hold a stack and the allocator's caches.
        .worker_max_blocking_threads(usize::try_from(config.db_pool_size).unwrap_or(64) + cores());
        if let Some(workers) = config.workers {
            server = server.workers(workers);
        }
        let server = server.listen(listener)?.run();
        Ok(Self {
            port: local.port(),
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGTERM/SIGINT, then finishes requests in flight and returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// Applies the migrations before serving. If the database cannot be reached
/// yet, the service starts anyway — `/readyz` and every page answer 503 — and
/// keeps trying in the background, so a briefly absent database needs no restart.
async fn migrate_or_keep_trying(db: Db, state: web::Data<AppState>, database: String) {
    let Err(first) = db.migrate().await else {
        state.migrated.store(true, Ordering::Release);
        log::info!("database ready: {database}");
        return;
    };
    log::error!("database not ready ({first}); answering 503 and retrying in the background");
    actix_web::rt::spawn(async move {
        let mut wait = Duration::from_secs(1);
        loop {
            actix_web::rt::time::sleep(wait).await;
            match db.migrate().await {
                Ok(()) => {
                    state.migrated.store(true, Ordering::Release);
                    log::info!("database ready: {database}");
                    return;
                }
                Err(e) => log::warn!("database still not ready: {e}"),
            }
            wait = (wait * 2).min(Duration::from_secs(30));
        }
    });
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, usize::from)
}

/// The QQ client's configuration, and in development mode the stand-in it talks to.
fn qq_setup(config: &Config, local: SocketAddr) -> (QqConfig, Option<StandIn>) {
    match &config.qq {
        QqMode::Real {
            app_id,
            app_key,
            graph_url,
        } => (
            QqConfig {
                app_id: app_id.clone(),
                app_key: app_key.clone(),
                redirect_uri: config.redirect_uri.clone(),
                graph_url: graph_url.clone(),
                authorize_base: graph_url.clone(),
                timeout: config.qq_timeout,
                use_unionid: config.use_unionid,
            },
            None,
        ),
        QqMode::DevStandIn => {
            let app_key = SecretString::from(random_token());
            // The browser reaches the stand-in where it reaches the callback;
            // the server reaches it on its own listener.
            let browser_base = dev_base(&config.redirect_uri);
            let server_base = Url::parse(&format!("http://{}/dev/qq/", loopback(local)))
                .unwrap_or(browser_base.clone());
            let why = config
                .dev_reason
                .map_or_else(|| "QQ_APP_ID is not set".to_owned(), |r| r.to_string());
            log::warn!(
                "DEVELOPMENT MODE ({why}): logins go to the built-in STAND-IN QQ at {browser_base}, \
                 where anyone is any QQ account they name. Set QQ_APP_ID, QQ_APP_KEY and SECRET_KEY for production."
            );
            if config.secret_is_ephemeral {
                log::warn!(
                    "SECRET_KEY is not set: a random one is used, so sessions end when the process stops."
                );
            }
            let dev = StandIn::development(
                app_key.clone(),
                &[&config.redirect_uri, &config.api_redirect_uri],
            );
            let qq = QqConfig {
                app_id: DEV_APP_ID.to_owned(),
                app_key,
                redirect_uri: config.redirect_uri.clone(),
                graph_url: server_base,
                authorize_base: browser_base,
                timeout: config.qq_timeout,
                use_unionid: config.use_unionid,
            };
            (qq, Some(dev))
        }
    }
}

/// The service's own origin, as QQ sends people back to it.
fn public_base(redirect_uri: &Url) -> Url {
    let mut base = redirect_uri.clone();
    base.set_path("/");
    base
}

fn dev_base(redirect_uri: &Url) -> Url {
    let mut base = redirect_uri.clone();
    base.set_path("/dev/qq/");
    base
}

/// The address this process can reach its own listener at.
fn loopback(local: SocketAddr) -> SocketAddr {
    match local.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), local.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), local.port())
        }
        _ => local,
    }
}

fn security_headers() -> DefaultHeaders {
    DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"))
        // The callback's URL carries QQ's code: never let it leave in a Referer.
        .add(("Referrer-Policy", "no-referrer"))
}

/// One line per request: client, method, path (never the query: it carries
/// codes and tokens), status, duration.
fn access_log() -> Logger {
    Logger::new(r#"%{client}xi "%{method}xi %U" %s %Dms"#)
        .custom_request_replace("client", |req| {
            routes::client_ip(req.request()).map_or_else(|| "-".to_owned(), |ip| ip.to_string())
        })
        .custom_request_replace("method", |req| req.method().to_string())
        .exclude("/healthz")
}

/// Expired sessions, used login states, old password tries and sign-in
/// events past their keeping are deleted in the background; no operator cron
/// needed.
fn spawn_purge(db: Db, events_kept: Duration) {
    let events_kept = time::Duration::try_from(events_kept).unwrap_or(time::Duration::MAX);
    actix_web::rt::spawn(async move {
        let mut every = actix_web::rt::time::interval(PURGE_EVERY);
        loop {
            every.tick().await;
            let purged = db
                .transaction(move |conn| -> Result<usize, DbError> {
                    let now = db::now();
                    let sessions = db::session::purge_expired(conn, now)?;
                    let forget_before = now - time::Duration::seconds(crate::throttle::MEMORY_SECS);
                    Ok(sessions
                        + db::oauth_state::purge_expired(conn, now, OAUTH_STATE_TTL)?
                        + db::login_failure::purge_expired(conn, now, forget_before)?
                        + db::sign_in_event::purge_before(conn, now.saturating_sub(events_kept))?)
                })
                .await;
            match purged {
                Ok(0) => {}
                Ok(n) => log::info!(
                    "purged {n} expired sessions, login states, password tries and sign-in events"
                ),
                Err(e) => log::warn!("session purge failed: {e}"),
            }
        }
    });
}

/// Django's format for a user table the Django site reads too; else argon2id.
fn password_scheme(config: &Config) -> Scheme {
    match config.user_tables {
        UserTables::Qqlogin => Scheme::Argon2id,
        UserTables::Django => Scheme::DjangoPbkdf2 {
            iterations: config.django_pbkdf2_iterations,
        },
    }
}

//! What every handler may reach, built once in [`crate::startup`].

use std::time::Duration;

use std::sync::atomic::AtomicBool;

use crate::account::Accounts;
use crate::image_code::ImageCodes;
use crate::proxy::{Addresses, TrustedProxies};
use crate::qq::QqClient;
use crate::token::Keys;

pub struct AppState {
    pub accounts: Accounts,
    /// The front ends' image codes (`/image_codes/<uuid>/`), checked by `/sms_codes/`.
    pub image_codes: ImageCodes,
    /// QQ for the pages: QQ sends people back to `QQ_REDIRECT_URI`.
    pub qq: QqClient,
    /// QQ for the JSON API: back to `QQ_API_REDIRECT_URI` (a front end's page).
    pub qq_api: QqClient,
    pub keys: Keys,
    /// Lifetime of the JSON API's login JWTs.
    pub jwt_ttl: Duration,
    /// Peers whose `X-Forwarded-*` headers are believed.
    pub trusted_proxies: TrustedProxies,
    /// Peers `/metrics` answers.
    pub metrics_allow: Addresses,
    /// Whether cookies are marked `Secure` (`QQ_REDIRECT_URI` is https).
    pub secure_cookies: bool,
    /// SMS codes are sent without an image code or bind token (`QQLOGIN_SMS_UNGATED`).
    pub sms_ungated: bool,
    /// The JSON API's login is not tied to the browser (`QQLOGIN_API_UNBOUND_LOGIN`).
    pub api_unbound_login: bool,
    /// The service's own origin (of `QQ_REDIRECT_URI`), when a request's `Host` will not do.
    pub public_base: url::Url,
    /// Whether linking an existing account at bind takes an SMS code (`QQLOGIN_BIND_REQUIRE_SMS`).
    pub bind_require_sms: crate::config::BindRequireSms,
    /// The operator's privacy notice, linked from the bind page.
    pub privacy_url: Option<url::Url>,
    /// How long a client may take to send a request body.
    pub body_timeout: Duration,
    /// Set once the migrations have run: until then the service answers 503.
    pub migrated: AtomicBool,
}

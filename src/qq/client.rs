//! The HTTP client for QQ Connect's server-side endpoints.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use url::Url;

use super::answer::{self, AccessToken, MeAnswer, UserInfo};
use super::error::QqError;
use crate::domain::OpenId;

/// The most of an answer the client will read. QQ's answers are a few
/// hundred bytes; the cap keeps a broken or hostile upstream from making us
/// buffer megabytes per login.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// The longest login budget accepted; a person is waiting on the callback
/// page for the whole of it.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(10);

/// Connecting should take a round trip or two; waiting longer than this for
/// a TCP/TLS handshake only eats the budget left for the answer.
const MAX_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long an idle connection to QQ is kept for reuse.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(4);

/// The longest authorization code sent to QQ. QQ's are 32 hex digits; the
/// bound keeps whatever a browser sends us from turning into a huge request.
const MAX_CODE_LEN: usize = 512;

/// QQ's authorize page with what every login sends alike, encoded once;
/// [`QqClient::authorize_url`] appends the rest.
fn authorize_query(page: &Url, app_id: &str, redirect_uri: &Url) -> Url {
    let mut url = page.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", app_id)
        .append_pair("redirect_uri", redirect_uri.as_str());
    url
}

/// QQ's answer to `unionid=1` from an app without that permission.
const NO_UNIONID_PERMISSION: i64 = 100_048;

/// The only permission requested: nickname (and avatar) for the account.
const SCOPE: &str = "get_user_info";

/// How to reach QQ Connect and who we are to it.
#[derive(Clone)]
pub struct QqConfig {
    /// The app id ("APP ID") QQ assigned.
    pub app_id: String,
    /// The app key ("APP Key"), QQ's client secret.
    pub app_key: SecretString,
    /// The callback registered with QQ. Sent byte-identically to the
    /// authorize page and to the token endpoint, as QQ requires.
    pub redirect_uri: Url,
    /// Base for the server-side calls, e.g. `https://graph.qq.com`, or a
    /// stand-in such as `http://127.0.0.1:PORT/dev/qq`. A path prefix is kept.
    pub graph_url: Url,
    /// Base of the browser-facing authorize page; usually equal to
    /// `graph_url`, different when the stand-in is reached by the browser
    /// under another host name.
    pub authorize_base: Url,
    /// The whole budget for one login's calls (token, then openid), and the
    /// limit for any single call. At most [`MAX_TIMEOUT`].
    pub timeout: Duration,
    /// Ask `/oauth2.0/me` for the unionid too (`QQ_USE_UNIONID`).
    pub use_unionid: bool,
}

impl std::fmt::Debug for QqConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QqConfig")
            .field("app_id", &self.app_id)
            .field("app_key", &"[REDACTED]")
            .field("redirect_uri", &self.redirect_uri.as_str())
            .field("graph_url", &self.graph_url.as_str())
            .field("authorize_base", &self.authorize_base.as_str())
            .field("timeout", &self.timeout)
            .field("use_unionid", &self.use_unionid)
            .finish()
    }
}

/// Which authorize page QQ shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Display {
    /// The desktop page.
    #[default]
    Pc,
    /// The page for phones (`display=mobile`).
    Mobile,
}

/// Who logged in: the result of a completed code exchange.
#[derive(Debug, Clone)]
pub struct QqIdentity {
    /// The person's OpenID for this app.
    pub openid: OpenId,
    /// The person across the developer's QQ apps, under `QQ_USE_UNIONID`.
    pub unionid: Option<String>,
    /// The token the exchange gave, for follow-up calls such as
    /// [`QqClient::fetch_user_info`].
    pub access_token: AccessToken,
}

/// A client for QQ Connect. Cheap to clone: clones share one connection pool.
#[derive(Clone)]
pub struct QqClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    app_id: String,
    app_key: SecretString,
    redirect_uri: Url,
    /// QQ's authorize page.
    authorize_page: Url,
    /// That page with the query every login shares.
    authorize_url: Url,
    token_url: Url,
    me_url: Url,
    user_info_url: Url,
    timeout: Duration,
    /// Ask `/me` for the unionid; cleared for good when QQ says the app
    /// has no permission for it (100048), so later logins skip the refusal.
    unionid: AtomicBool,
}

impl std::fmt::Debug for QqClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QqClient")
            .field("app_id", &self.inner.app_id)
            .field("token_url", &self.inner.token_url.as_str())
            .finish_non_exhaustive()
    }
}

impl QqClient {
    /// Checks the configuration and builds the one HTTP client all calls
    /// share.
    pub fn new(config: QqConfig) -> Result<Self, QqError> {
        let build_err = |reason| QqError::Build {
            reason,
            source: None,
        };
        if config.app_id.is_empty() || !config.app_id.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(build_err("app id is empty or contains spaces"));
        }
        if config.app_key.expose_secret().is_empty() {
            return Err(build_err("app key is empty"));
        }
        if config.timeout.is_zero() || config.timeout > MAX_TIMEOUT {
            return Err(build_err("timeout must be more than 0 and at most 10 s"));
        }
        if !is_http(&config.redirect_uri) {
            return Err(build_err("redirect URI must be http or https"));
        }
        let authorize_page = endpoint(&config.authorize_base, &["oauth2.0", "authorize"])
            .ok_or(build_err("authorize base must be an http or https URL"))?;
        let authorize_url = authorize_query(&authorize_page, &config.app_id, &config.redirect_uri);
        let graph = |path: &[&str]| {
            endpoint(&config.graph_url, path)
                .ok_or(build_err("graph URL must be an http or https URL"))
        };
        let token_url = graph(&["oauth2.0", "token"])?;
        let me_url = graph(&["oauth2.0", "me"])?;
        let user_info_url = graph(&["user", "get_user_info"])?;

        let http = reqwest::Client::builder()
            .connect_timeout(config.timeout.min(MAX_CONNECT_TIMEOUT))
            .timeout(config.timeout)
            // QQ answers directly; following a redirect would resend the code
            // and secret to wherever it points.
            .redirect(reqwest::redirect::Policy::none())
            // Below the keep-alive time-outs servers commonly use (5 s and
            // up): reusing an idle connection just as the server closes it
            // fails the request ("connection closed before message
            // completed"), and for the token call that is a failed login.
            .pool_idle_timeout(POOL_IDLE_TIMEOUT)
            // Every login in flight holds a connection to QQ; with fewer idle
            // ones kept, a burst keeps opening and dropping TCP connections.
            .pool_max_idle_per_host(1024)
            .tcp_keepalive(Duration::from_secs(30))
            .user_agent(concat!("qqlogin/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| QqError::Build {
                reason: "the HTTP client could not be built",
                source: Some(e.without_url()),
            })?;

        Ok(QqClient {
            inner: Arc::new(Inner {
                http,
                app_id: config.app_id,
                app_key: config.app_key,
                redirect_uri: config.redirect_uri,
                authorize_page,
                authorize_url,
                token_url,
                me_url,
                user_info_url,
                timeout: config.timeout,
                unionid: AtomicBool::new(config.use_unionid),
            }),
        })
    }

    /// The same client (and connection pool) for logins that QQ sends back
    /// to another registered callback: the JSON API's front-end page.
    pub fn with_redirect_uri(&self, redirect_uri: Url) -> Self {
        let inner = &self.inner;
        QqClient {
            inner: Arc::new(Inner {
                http: inner.http.clone(),
                app_id: inner.app_id.clone(),
                app_key: inner.app_key.clone(),
                authorize_page: inner.authorize_page.clone(),
                authorize_url: authorize_query(&inner.authorize_page, &inner.app_id, &redirect_uri),
                redirect_uri,
                token_url: inner.token_url.clone(),
                me_url: inner.me_url.clone(),
                user_info_url: inner.user_info_url.clone(),
                timeout: inner.timeout,
                unionid: AtomicBool::new(inner.unionid.load(Ordering::Relaxed)),
            }),
        }
    }

    /// The whole budget for one login's calls to QQ.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Our app id, as given in the configuration.
    pub fn app_id(&self) -> &str {
        &self.inner.app_id
    }

    /// The QQ page to send the browser to. `state` is the caller's CSRF
    /// value; it comes back unchanged on the callback.
    pub fn authorize_url(&self, state: &str, display: Display) -> Url {
        let mut url = self.inner.authorize_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("state", state)
                .append_pair("scope", SCOPE);
            if display == Display::Mobile {
                query.append_pair("display", "mobile");
            }
        }
        url
    }

    /// Trades the authorization code from the callback for an access token.
    pub async fn exchange_code(&self, code: &str) -> Result<AccessToken, QqError> {
        let started = Instant::now();
        let answered = self.trade_code(code).await;
        crate::metrics::qq_call("token", started, &answered);
        answered
    }

    async fn trade_code(&self, code: &str) -> Result<AccessToken, QqError> {
        if code.is_empty()
            || code.len() > MAX_CODE_LEN
            || !code.bytes().all(|b| b.is_ascii_graphic())
        {
            return Err(QqError::InvalidCode);
        }
        let inner = &self.inner;
        let app_key = inner.app_key.expose_secret();
        let mut url = inner.token_url.clone();
        url.query_pairs_mut()
            .append_pair("grant_type", "authorization_code")
            .append_pair("client_id", &inner.app_id)
            .append_pair("client_secret", app_key)
            .append_pair("code", code)
            // Serialized exactly as in `authorize_url`, so QQ sees the same
            // bytes in both requests.
            .append_pair("redirect_uri", inner.redirect_uri.as_str())
            .append_pair("fmt", "json");
        let body = self.get(url).await?;
        answer::parse_token(&body).map_err(|e| e.redact(&[code, app_key]))
    }

    /// Asks QQ whose token this is. Fails with [`QqError::WrongClient`] if
    /// the token was issued to another app: such a token could have been
    /// planted by that app's owner and must not log anyone in here.
    pub async fn fetch_openid(&self, token: &AccessToken) -> Result<OpenId, QqError> {
        Ok(self.fetch_me(token).await?.openid)
    }

    /// Asks QQ whose token this is, and under `QQ_USE_UNIONID` the unionid
    /// too. An app without the unionid permission (QQ's 100048) logs in by
    /// openid alone: the operator is told once what to ask QQ for.
    pub async fn fetch_me(&self, token: &AccessToken) -> Result<MeAnswer, QqError> {
        let started = Instant::now();
        let answered = self.who_is(token).await;
        crate::metrics::qq_call("me", started, &answered);
        answered
    }

    async fn who_is(&self, token: &AccessToken) -> Result<MeAnswer, QqError> {
        let with_unionid = self.inner.unionid.load(Ordering::Relaxed);
        match self.ask_me(token, with_unionid).await {
            Err(QqError::Api {
                code: NO_UNIONID_PERMISSION,
                ..
            }) if with_unionid => {
                if self.inner.unionid.swap(false, Ordering::Relaxed) {
                    log::error!(
                        "QQ_USE_UNIONID is set, but QQ answers 100048: this app has no unionid \
                         permission. Apply for it at QQ互联 (connect.qq.com, 申请UnionID); until \
                         then logins go on by openid alone"
                    );
                }
                self.ask_me(token, false).await
            }
            answered => answered,
        }
    }

    async fn ask_me(&self, token: &AccessToken, with_unionid: bool) -> Result<MeAnswer, QqError> {
        let secret = token.expose_secret();
        let mut url = self.inner.me_url.clone();
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("access_token", secret);
            if with_unionid {
                query.append_pair("unionid", "1");
            }
            query.append_pair("fmt", "json");
        }
        let body = self.get_again_if_lost(url).await?;
        let me = answer::parse_me(&body).map_err(|e| e.redact(&[secret]))?;
        if me.client_id != self.inner.app_id {
            log::warn!("QQ /me answered for another app's client id; refusing the token");
            return Err(QqError::WrongClient);
        }
        Ok(me)
    }

    /// Fetches the person's nickname. QQ reports errors here as `ret != 0`
    /// with HTTP 200; they come back as [`QqError::Api`].
    pub async fn fetch_user_info(
        &self,
        token: &AccessToken,
        openid: &OpenId,
    ) -> Result<UserInfo, QqError> {
        let secret = token.expose_secret();
        let mut url = self.inner.user_info_url.clone();
        url.query_pairs_mut()
            .append_pair("access_token", secret)
            .append_pair("oauth_consumer_key", &self.inner.app_id)
            .append_pair("openid", openid.as_str());
        let started = Instant::now();
        let answered = match self.get_again_if_lost(url).await {
            Ok(body) => answer::parse_user_info(&body).map_err(|e| e.redact(&[secret])),
            Err(e) => Err(e),
        };
        crate::metrics::qq_call("user_info", started, &answered);
        answered
    }

    /// The whole server side of a login: code → token → OpenID, within one
    /// overall budget (`config.timeout`), so a slow QQ cannot hold the
    /// callback page for twice the limit.
    pub async fn identify(&self, code: &str) -> Result<QqIdentity, QqError> {
        let steps = async {
            let access_token = self.exchange_code(code).await?;
            let me = self.fetch_me(&access_token).await?;
            Ok(QqIdentity {
                openid: me.openid,
                unionid: me.unionid,
                access_token,
            })
        };
        tokio::time::timeout(self.inner.timeout, steps)
            .await
            .map_err(|_| QqError::Timeout)?
    }

    /// A GET that changes nothing at QQ, sent once more if no answer came
    /// because the connection failed: typically a pooled connection that
    /// QQ's side closed just as the request went out ("connection closed
    /// before message completed"). Never for the token exchange, which QQ
    /// may have carried out (a code is good once). Time-outs are not retried:
    /// the login's deadline is spent.
    async fn get_again_if_lost(&self, url: Url) -> Result<String, QqError> {
        match self.get(url.clone()).await {
            Err(QqError::Unreachable { source }) => {
                log::info!("QQ connection failed before an answer ({source}); asking once more");
                self.get(url).await
            }
            answered => answered,
        }
    }

    /// One GET, with the status checked and the body read under the size cap.
    async fn get(&self, url: Url) -> Result<String, QqError> {
        let response = self
            .inner
            .http
            .get(url)
            .send()
            .await
            .map_err(QqError::from_transport)?;
        let status = response.status();
        if !status.is_success() {
            // The body of an error page is of no use and might be large;
            // dropping the response closes the connection instead.
            return Err(QqError::Status(status.as_u16()));
        }
        read_capped(response, MAX_BODY_BYTES).await
    }
}

/// Reads the body chunk by chunk, giving up as soon as it passes `cap`.
async fn read_capped(mut response: reqwest::Response, cap: usize) -> Result<String, QqError> {
    if response
        .content_length()
        .is_some_and(|len| len > cap as u64)
    {
        return Err(QqError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(QqError::from_transport)? {
        if body.len() + chunk.len() > cap {
            return Err(QqError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    String::from_utf8(body).map_err(|_| QqError::Malformed("answer is not UTF-8"))
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.has_host()
}

/// `base` with `segments` appended to its path, query and fragment dropped:
/// `http://h/dev/qq` + `oauth2.0/authorize` → `http://h/dev/qq/oauth2.0/authorize`.
/// (`Url::join` would instead replace the last segment of a base without a
/// trailing slash.)
fn endpoint(base: &Url, segments: &[&str]) -> Option<Url> {
    if !is_http(base) {
        return None;
    }
    let mut url = base.clone();
    url.set_query(None);
    url.set_fragment(None);
    url.path_segments_mut()
        .ok()?
        .pop_if_empty()
        .extend(segments);
    Some(url)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(graph: &str, authorize: &str) -> QqConfig {
        QqConfig {
            app_id: "101234567".to_owned(),
            app_key: SecretString::from("appkey-secret"),
            redirect_uri: Url::parse("https://example.com/auth/qq/callback?next=/a b").unwrap(),
            graph_url: Url::parse(graph).unwrap(),
            authorize_base: Url::parse(authorize).unwrap(),
            timeout: Duration::from_secs(5),
            use_unionid: false,
        }
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect()
    }

    #[test]
    fn endpoint_joins_paths() {
        let cases = [
            (
                "https://graph.qq.com",
                "https://graph.qq.com/oauth2.0/token",
            ),
            (
                "https://graph.qq.com/",
                "https://graph.qq.com/oauth2.0/token",
            ),
            (
                "http://h:8080/dev/qq",
                "http://h:8080/dev/qq/oauth2.0/token",
            ),
            ("http://h/dev/qq/", "http://h/dev/qq/oauth2.0/token"),
            ("http://h/dev/qq?x=1#f", "http://h/dev/qq/oauth2.0/token"),
        ];
        for (base, want) in cases {
            let got = endpoint(&Url::parse(base).unwrap(), &["oauth2.0", "token"]).unwrap();
            assert_eq!(got.as_str(), want, "{base}");
        }
        assert!(endpoint(&Url::parse("ftp://h/").unwrap(), &["x"]).is_none());
        assert!(endpoint(&Url::parse("mailto:a@b").unwrap(), &["x"]).is_none());
    }

    #[test]
    fn authorize_url_pc() {
        let client = QqClient::new(config("https://graph.qq.com", "https://graph.qq.com")).unwrap();
        let url = client.authorize_url("st&ate=1", Display::Pc);
        assert_eq!(url.path(), "/oauth2.0/authorize");
        assert_eq!(
            query(&url),
            vec![
                ("response_type".into(), "code".into()),
                ("client_id".into(), "101234567".into()),
                (
                    "redirect_uri".into(),
                    "https://example.com/auth/qq/callback?next=/a%20b".into()
                ),
                ("state".into(), "st&ate=1".into()),
                ("scope".into(), "get_user_info".into()),
            ]
        );
    }

    #[test]
    fn authorize_url_mobile_with_prefix() {
        let client = QqClient::new(config(
            "http://127.0.0.1:9/dev/qq",
            "http://localhost:8080/dev/qq/",
        ))
        .unwrap();
        let url = client.authorize_url("s", Display::Mobile);
        assert!(
            url.as_str()
                .starts_with("http://localhost:8080/dev/qq/oauth2.0/authorize?response_type=code&"),
            "{url}"
        );
        assert_eq!(
            query(&url).last().unwrap(),
            &("display".to_owned(), "mobile".to_owned())
        );
    }

    #[test]
    fn new_rejects_bad_config() {
        let good = config("https://graph.qq.com", "https://graph.qq.com");
        let mut c = good.clone();
        c.app_id = String::new();
        assert!(matches!(QqClient::new(c), Err(QqError::Build { .. })));
        let mut c = good.clone();
        c.app_key = SecretString::from("");
        assert!(matches!(QqClient::new(c), Err(QqError::Build { .. })));
        let mut c = good.clone();
        c.timeout = Duration::from_secs(11);
        assert!(matches!(QqClient::new(c), Err(QqError::Build { .. })));
        let mut c = good.clone();
        c.timeout = Duration::ZERO;
        assert!(matches!(QqClient::new(c), Err(QqError::Build { .. })));
        let mut c = good.clone();
        c.graph_url = Url::parse("file:///etc").unwrap();
        assert!(matches!(QqClient::new(c), Err(QqError::Build { .. })));
        let mut c = good;
        c.redirect_uri = Url::parse("javascript:alert(1)").unwrap();
        assert!(matches!(QqClient::new(c), Err(QqError::Build { .. })));
    }

    #[test]
    fn debug_hides_app_key() {
        let c = config("https://graph.qq.com", "https://graph.qq.com");
        assert!(!format!("{c:?}").contains("appkey-secret"));
        let client = QqClient::new(c).unwrap();
        assert!(!format!("{client:?}").contains("appkey-secret"));
    }

    #[tokio::test]
    async fn invalid_codes_are_not_sent() {
        // Port 9 (discard) on loopback: if a request were made it would fail
        // as Unreachable, not InvalidCode.
        let client = QqClient::new(config("http://127.0.0.1:9", "http://127.0.0.1:9")).unwrap();
        for code in ["", "a b", "x\n", &"A".repeat(MAX_CODE_LEN + 1)] {
            assert!(
                matches!(client.exchange_code(code).await, Err(QqError::InvalidCode)),
                "{code:?}"
            );
        }
    }
}

//! The deployment, for real: Debian's nginx running `deploy/nginx/qqlogin.conf`
//! (only its ports and paths changed) in front of two instances of the real
//! binary on one PostgreSQL schema, with a stand-in QQ.
//!
//! Through nginx over https, a first QQ login and bind whose steps land on
//! different instances (each instance's access log says which answered what);
//! the session cookie `Secure`; the client's address believed from nginx and
//! only from nginx; the fingerprinted static files kept a year; a logout through one
//! instance holding on the other; one instance killed in the middle of a login
//! and the logins that follow still succeeding through the other. And two
//! instances started at the same moment on a fresh database both coming up.
//!
//! Needs `nginx`, `openssl` and `TEST_DATABASE_URL`: without them the tests
//! say so and pass, unless `CI` is set (`.ci/run` installs nginx), where their
//! absence fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "support/skip.rs"]
mod skip;
#[path = "support/sms_webhook.rs"]
mod sms_webhook;

use std::io::{BufRead, BufReader};
use std::net::{IpAddr, Ipv4Addr, TcpListener};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use url::Url;

use qqlogin::qq::stand_in::{Running, StandIn};

const APP_ID: &str = "101474184";
const APP_KEY: &str = "nginx-test-app-key";
const PASSWORD: &str = "correct horse battery";
const SMS_WEBHOOK_SECRET: &str = "nginx-test-sms-webhook-secret";
const SESSION_COOKIE: &str = "qqlogin_session";
/// The browser's own address: not 127.0.0.1, so that the address an instance
/// logs tells the browser (127.0.0.2) from nginx (127.0.0.1, the trusted proxy).
const BROWSER_IP: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));
/// What the browser forges in its own `X-Forwarded-For`; never believed.
const FORGED_IP: &str = "198.51.100.9";

fn secret_key() -> String {
    "nginx-test-secret-".repeat(5)
}

// ---------------------------------------------------------------------------
// What the tests need from the machine.

/// In CI a missing prerequisite fails the test; elsewhere it is skipped, loudly.
fn missing(what: &str) {
    skip::skip(
        what,
        ".ci/run installs nginx and openssl with apt-get, starts PostgreSQL and sets TEST_DATABASE_URL",
    );
}

/// An executable from `PATH` or the usual sbin directories.
fn find_tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/local/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(name))
        .find(|candidate| candidate.is_file())
}

fn database_url() -> Option<String> {
    match std::env::var("TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            missing("TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// A port free at the moment (nginx binds it a moment later).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn has_ipv6_loopback() -> bool {
    TcpListener::bind("[::1]:0").is_ok()
}

/// Polls `check` every 20 ms until it gives a value or `limit` passes.
async fn eventually<T>(limit: Duration, mut check: impl AsyncFnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// ---------------------------------------------------------------------------
// The database: one fresh PostgreSQL schema, shared by the instances.

struct Schema {
    base: String,
    name: String,
    url: String,
}

impl Schema {
    fn new(base: &str) -> Self {
        let token = qqlogin::secret::random_token()
            .to_lowercase()
            .replace('-', "_");
        let name = format!("nginx_{}", &token[..20]);
        let mut conn = PgConnection::establish(base).expect("TEST_DATABASE_URL must be reachable");
        conn.batch_execute(&format!("CREATE SCHEMA {name}"))
            .unwrap();
        let separator = if base.contains('?') { '&' } else { '?' };
        let url = format!("{base}{separator}options=-csearch_path%3D{name}");
        Self {
            base: base.to_owned(),
            name,
            url,
        }
    }

    /// Rows in diesel's record of applied migrations.
    fn applied_migrations(&self) -> i64 {
        #[derive(QueryableByName)]
        struct Count {
            #[diesel(sql_type = BigInt)]
            n: i64,
        }
        let mut conn = PgConnection::establish(&self.url).unwrap();
        diesel::sql_query("SELECT count(*) AS n FROM __diesel_schema_migrations")
            .get_result::<Count>(&mut conn)
            .unwrap()
            .n
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut conn) = PgConnection::establish(&self.base) {
            let _ = conn.batch_execute(&format!("DROP SCHEMA {} CASCADE", self.name));
        }
    }
}

fn migrations_in_repository() -> i64 {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/postgresql");
    let count = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().join("up.sql").is_file())
        .count();
    i64::try_from(count).unwrap()
}

// ---------------------------------------------------------------------------
// An instance: the real binary as a child process, its log kept line by line.

/// One line of an instance's access log.
#[derive(Debug, Clone)]
struct Access {
    client: String,
    method: String,
    path: String,
    status: u16,
}

impl Access {
    /// `[… INFO  actix_web::middleware::logger] 127.0.0.2 "GET /path" 200 1.2ms`
    fn parse(line: &str) -> Option<Self> {
        let message = line.split_once("] ")?.1;
        let (client, rest) = message.split_once(" \"")?;
        client.trim().parse::<IpAddr>().ok()?;
        let (request, rest) = rest.split_once("\" ")?;
        let (method, path) = request.split_once(' ')?;
        Some(Self {
            client: client.trim().to_owned(),
            method: method.to_owned(),
            path: path.to_owned(),
            status: rest.split_whitespace().next()?.parse().ok()?,
        })
    }
}

struct Instance {
    name: &'static str,
    child: Child,
    log: Arc<Mutex<Vec<String>>>,
    port: u16,
    killed: bool,
}

impl Instance {
    /// Starts the binary with exactly `env` (nothing inherited) in `dir`.
    fn spawn(name: &'static str, dir: &Path, env: &[(&str, String)]) -> Self {
        let mut command = Command::new(env!("CARGO_BIN_EXE_qqlogin"));
        command
            .env_clear()
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self {
            name,
            child,
            log,
            port: 0,
            killed: false,
        }
    }

    fn lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    fn accesses(&self) -> Vec<Access> {
        self.lines()
            .iter()
            .filter_map(|l| Access::parse(l))
            .collect()
    }

    /// Waits for the "(port N)" line, or the process's end.
    async fn wait_for_port(&mut self) -> u16 {
        let port = eventually(Duration::from_secs(30), async || {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!(
                    "instance {} exited with {status} before listening:\n{}",
                    self.name,
                    self.lines().join("\n")
                );
            }
            self.lines().iter().find_map(|line| {
                let rest = line.split("(port ").nth(1)?;
                rest.split(')').next()?.parse::<u16>().ok()
            })
        })
        .await;
        self.port = port.unwrap_or_else(|| {
            panic!(
                "instance {} never logged its port:\n{}",
                self.name,
                self.lines().join("\n")
            )
        });
        self.port
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// SIGKILL: no chance to finish anything.
    fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
        self.killed = true;
    }

    /// SIGTERM, as systemd and Docker stop a service; then its exit status.
    async fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success(), "kill -TERM {}", self.child.id());
        let status = eventually(Duration::from_secs(15), async || {
            self.child.try_wait().unwrap()
        })
        .await;
        self.killed = true;
        status.unwrap_or_else(|| panic!("instance {} still runs 15 s after SIGTERM", self.name))
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if !self.killed {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if std::thread::panicking() {
            let lines = self.lines();
            let tail = &lines[lines.len().saturating_sub(80)..];
            eprintln!(
                "---- instance {} (port {}), last lines of its log ----\n{}",
                self.name,
                self.port,
                tail.join("\n")
            );
        }
    }
}

/// An instance's settings, as an operator's environment file would have them.
fn instance_env(
    database_url: &str,
    qq: Option<&Running>,
    https_port: u16,
    sms_webhook_url: &str,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("QQLOGIN_SMS_SENDER", "webhook".to_owned()),
        ("QQLOGIN_SMS_WEBHOOK_URL", sms_webhook_url.to_owned()),
        ("QQLOGIN_SMS_WEBHOOK_SECRET", SMS_WEBHOOK_SECRET.to_owned()),
        ("QQLOGIN_LISTEN", "127.0.0.1:0".to_owned()),
        ("DATABASE_URL", database_url.to_owned()),
        (
            "QQ_REDIRECT_URI",
            format!("https://127.0.0.1:{https_port}/oauth/qq/callback"),
        ),
        ("SECRET_KEY", secret_key()),
        ("QQLOGIN_TRUSTED_PROXIES", "127.0.0.1".to_owned()),
        ("QQLOGIN_WORKERS", "2".to_owned()),
        ("QQLOGIN_DB_POOL_SIZE", "4".to_owned()),
        ("QQ_TIMEOUT_MS", "5000".to_owned()),
        ("RUST_LOG", "info".to_owned()),
    ];
    // Without a stand-in QQ (a test that never logs in), QQ's address leads
    // nowhere: an instance with these settings is a production one, so it
    // must have an app id or it refuses to start.
    env.push(("QQ_APP_ID", APP_ID.to_owned()));
    env.push(("QQ_APP_KEY", APP_KEY.to_owned()));
    env.push((
        "QQ_GRAPH_URL",
        qq.map_or_else(|| "http://127.0.0.1:9".to_owned(), |qq| qq.base_url.clone()),
    ));
    env
}

/// Polls `/readyz` until it answers 200, and until the instance has logged
/// every poll (so no late access line is taken for a later request's).
async fn wait_until_ready(instance: &Instance) {
    let client = reqwest::Client::new();
    let mut polls = 0;
    let ready = eventually(Duration::from_secs(30), async || {
        let response = client.get(instance.url("/readyz")).send().await.ok()?;
        polls += 1;
        (response.status() == 200).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "instance {} never became ready (/readyz 200)",
        instance.name
    );
    let logged = eventually(Duration::from_secs(10), async || {
        let lines = instance.accesses();
        let seen = lines.iter().filter(|a| a.path == "/readyz").count();
        (seen >= polls).then_some(())
    })
    .await;
    assert!(
        logged.is_some(),
        "instance {} answered /readyz but never logged it",
        instance.name
    );
}

// ---------------------------------------------------------------------------
// nginx, with the deployment's own site configuration.

struct Nginx {
    child: Child,
    dir: PathBuf,
}

impl Nginx {
    fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/error.log")).unwrap_or_default()
            + &std::fs::read_to_string(self.dir.join("logs/qqlogin.error.log")).unwrap_or_default()
    }

    fn access_log(&self) -> String {
        std::fs::read_to_string(self.dir.join("logs/qqlogin.access.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its workers, then exits. (SIGKILL would
        // leave the workers running, holding the ports.)
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("---- nginx error log ----\n{}", self.error_log());
            eprintln!("---- nginx access log ----\n{}", self.access_log());
        }
    }
}

struct Ports {
    http: u16,
    https: u16,
    upstreams: [u16; 2],
}

/// `deploy/nginx/qqlogin.conf` with its ports and paths pointed into `dir`;
/// nothing else changes. Each rewritten line must be there, so this test
/// notices when the deployment's file drifts from what it exercises.
fn site_config(ports: &Ports, dir: &Path) -> String {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut conf = std::fs::read_to_string(manifest.join("deploy/nginx/qqlogin.conf")).unwrap();
    let (http, https) = (ports.http, ports.https);
    let [a, b] = ports.upstreams;
    let v6 = has_ipv6_loopback();
    let v6_listen = |line: String| {
        if v6 {
            line
        } else {
            "# no IPv6 here".to_owned()
        }
    };
    let path = |p: &str| dir.join(p).to_string_lossy().into_owned();
    let substitutions = [
        ("listen 80;", format!("listen 127.0.0.1:{http};")),
        (
            "listen [::]:80;",
            v6_listen(format!("listen [::1]:{http};")),
        ),
        (
            "listen 443 ssl http2;",
            format!("listen 127.0.0.1:{https} ssl http2;"),
        ),
        (
            "listen [::]:443 ssl http2;",
            v6_listen(format!("listen [::1]:{https} ssl http2;")),
        ),
        ("server 127.0.0.1:8001 ", format!("server 127.0.0.1:{a} ")),
        ("server 127.0.0.1:8002 ", format!("server 127.0.0.1:{b} ")),
        ("/etc/ssl/certs/qqlogin.pem", path("cert.pem")),
        ("/etc/ssl/private/qqlogin.key", path("key.pem")),
        ("/var/log/nginx/", format!("{}/", path("logs"))),
    ];
    for (from, to) in substitutions {
        assert!(
            conf.contains(from),
            "deploy/nginx/qqlogin.conf no longer contains {from:?}; update tests/nginx.rs"
        );
        conf = conf.replace(from, &to);
    }
    for line in conf.lines() {
        let directive = line.split('#').next().unwrap_or_default();
        for outside in ["/etc/", "/srv/", "/var/", ":8001", ":8002", " 443", " 80;"] {
            assert!(
                !directive.contains(outside),
                "not adapted for the test: {line:?} (extend the substitutions in tests/nginx.rs)"
            );
        }
    }
    conf
}

/// The main configuration an operator's `/etc/nginx/nginx.conf` provides,
/// here with every file in `dir`, around the deployment's site file.
fn main_config(dir: &Path) -> String {
    let d = dir.display();
    // As root, nginx's workers would run as `nobody`, who cannot enter the
    // private temporary directory.
    let user = if std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0) {
        "user root root;"
    } else {
        ""
    };
    let mime = if Path::new("/etc/nginx/mime.types").is_file() {
        "include /etc/nginx/mime.types;"
    } else {
        "types { text/css css; text/html html; }"
    };
    format!(
        "daemon off;
master_process on;
worker_processes 1;
{user}
pid {d}/nginx.pid;
error_log {d}/logs/error.log notice;
events {{ worker_connections 256; }}
http {{
    {mime}
    default_type application/octet-stream;
    sendfile on;
    client_body_temp_path {d}/tmp/client_body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    access_log {d}/logs/access.log;
    include {d}/qqlogin.conf;
}}
"
    )
}

/// A self-signed certificate for 127.0.0.1, made with the openssl CLI.
fn make_certificate(openssl: &Path, dir: &Path) {
    let output = Command::new(openssl)
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
        ])
        .arg(dir.join("key.pem"))
        .arg("-out")
        .arg(dir.join("cert.pem"))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl req failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Checks the configuration (`nginx -t`), then runs nginx in the foreground.
fn start_nginx(nginx: &Path, dir: &Path, ports: &Ports) -> Nginx {
    for sub in ["logs", "tmp"] {
        std::fs::create_dir_all(dir.join(sub)).unwrap();
    }
    std::fs::write(dir.join("qqlogin.conf"), site_config(ports, dir)).unwrap();
    std::fs::write(dir.join("nginx.conf"), main_config(dir)).unwrap();
    let args = |test: bool| {
        let mut args = vec![
            "-p".into(),
            format!("{}/", dir.display()),
            "-c".into(),
            dir.join("nginx.conf").to_string_lossy().into_owned(),
            "-e".into(),
            dir.join("logs/error.log").to_string_lossy().into_owned(),
        ];
        if test {
            args.push("-t".into());
        }
        args
    };
    let check = Command::new(nginx)
        .args(args(true))
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t refused the configuration:\n{}\n{}",
        String::from_utf8_lossy(&check.stderr),
        std::fs::read_to_string(dir.join("logs/error.log")).unwrap_or_default()
    );
    let child = Command::new(nginx)
        .args(args(false))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    Nginx {
        child,
        dir: dir.to_owned(),
    }
}

// ---------------------------------------------------------------------------
// The deployment under test, and a browser going through it.

/// A response, read.
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.unwrap();
        Self {
            status,
            headers,
            body,
        }
    }

    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .map_or("", |v| v.to_str().unwrap())
    }

    fn session_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .filter(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
            .collect()
    }

    /// The value of the form field `name` (hidden or pre-filled).
    fn field(&self, name: &str) -> Option<String> {
        let at = self.body.find(&format!("name=\"{name}\""))?;
        let tag_end = at + self.body[at..].find('>')?;
        let value = self.body[at..tag_end]
            .split("value=\"")
            .nth(1)?
            .split('"')
            .next()?;
        Some(
            value
                .replace("&amp;", "&")
                .replace("&#x2f;", "/")
                .replace("&quot;", "\""),
        )
    }

    /// The name the home page greets, if someone is logged in.
    fn greeting(&self) -> Option<&str> {
        let start = self.body.find("你好，")? + "你好，".len();
        self.body[start..].split('<').next()
    }
}

/// A browser: its own cookie jar, redirects not followed, connecting from
/// [`BROWSER_IP`] and forging an `X-Forwarded-For` on every request.
struct Browser {
    client: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
}

impl Browser {
    fn new() -> Self {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        Self {
            client: client_builder()
                .cookie_provider(Arc::clone(&jar))
                .build()
                .unwrap(),
            jar,
        }
    }

    /// The session cookie this browser holds for `url`, as `name=value`.
    fn session_cookie(&self, url: &str) -> String {
        use reqwest::cookie::CookieStore;
        let header = self
            .jar
            .cookies(&url.parse().unwrap())
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        header
            .split("; ")
            .find(|c| c.starts_with(&format!("{SESSION_COOKIE}=")))
            .unwrap_or_else(|| panic!("no session cookie for {url} in {header:?}"))
            .to_owned()
    }
}

fn client_builder() -> reqwest::ClientBuilder {
    let mut forged = HeaderMap::new();
    forged.insert("x-forwarded-for", FORGED_IP.parse().unwrap());
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .danger_accept_invalid_certs(true)
        .local_address(BROWSER_IP)
        .default_headers(forged)
        .timeout(Duration::from_secs(30))
}

struct Deployment {
    instances: [Instance; 2],
    nginx: Nginx,
    https: u16,
    http: u16,
    qq: Running,
    /// Where the instances' SMS codes arrive.
    sms: sms_webhook::SmsWebhook,
    /// Every code QQ granted and every SMS code sent, to check that none reaches a log.
    codes: Vec<String>,
    _dir: tempfile::TempDir,
    _schema: Schema,
}

impl Deployment {
    fn https_url(&self, path: &str) -> String {
        format!("https://127.0.0.1:{}{path}", self.https)
    }

    /// Sends `request` and tells which instance answered it: the one whose
    /// access log gained exactly this request's line. Requests are sent one
    /// at a time and nothing else reaches the instances, so this is exact.
    async fn traced(&self, request: reqwest::RequestBuilder) -> (Page, usize) {
        // The browser's own client sends it, so its cookie jar sees the answer.
        let (client, request) = request.build_split();
        let request = request.unwrap();
        let (method, path) = (
            request.method().to_string(),
            request.url().path().to_owned(),
        );
        let before = self.instances.each_ref().map(|i| i.accesses().len());
        let page = Page::read(client.execute(request).await.unwrap()).await;
        let found = eventually(Duration::from_secs(10), async || {
            let now = self.instances.each_ref().map(Instance::accesses);
            let new: Vec<(usize, Access)> = now
                .iter()
                .enumerate()
                .flat_map(|(i, lines)| lines[before[i]..].iter().map(move |a| (i, a.clone())))
                .collect();
            (!new.is_empty()).then_some(new)
        })
        .await
        .unwrap_or_else(|| panic!("no instance logged {method} {path} ({})", page.status));
        assert_eq!(
            found.len(),
            1,
            "one request, one access line: {method} {path} gave {found:?}"
        );
        let (index, access) = found.into_iter().next().unwrap();
        assert_eq!(
            (access.method.as_str(), access.path.as_str(), access.status),
            (method.as_str(), path.as_str(), page.status),
            "instance {}'s access line does not match the request",
            self.instances[index].name
        );
        assert_eq!(
            access.client,
            BROWSER_IP.to_string(),
            "instance {} logged {access:?}: the client is the browser at {BROWSER_IP}, not \
             nginx (127.0.0.1, the trusted proxy) and not the browser's forged \
             X-Forwarded-For {FORGED_IP}",
            self.instances[index].name
        );
        (page, index)
    }

    /// `GET /oauth/qq/login` through nginx: off to QQ; returns the `state`.
    async fn start_qq_login(&self, browser: &Browser) -> (String, usize) {
        let (page, at) = self
            .traced(
                browser
                    .client
                    .get(self.https_url("/oauth/qq/login?next=%2F")),
            )
            .await;
        assert_eq!(page.status, 302, "{}", page.body);
        let to_qq = Url::parse(page.location()).unwrap();
        assert!(
            to_qq
                .as_str()
                .starts_with(&format!("{}/oauth2.0/authorize", self.qq.base_url)),
            "{to_qq}"
        );
        let redirect_uri = to_qq
            .query_pairs()
            .find(|(k, _)| k == "redirect_uri")
            .unwrap()
            .1;
        assert_eq!(redirect_uri, self.https_url("/oauth/qq/callback"));
        let state = to_qq
            .query_pairs()
            .find(|(k, _)| k == "state")
            .unwrap()
            .1
            .into_owned();
        (state, at)
    }

    /// What QQ does: the person approves, QQ sends the browser back with a code.
    async fn come_back_from_qq(
        &mut self,
        browser: &Browser,
        openid: &str,
        state: &str,
    ) -> (Page, usize) {
        let code = self.qq.grant(openid, "小明");
        self.codes.push(code.clone());
        let url = Url::parse_with_params(
            &self.https_url("/oauth/qq/callback"),
            [("code", code.as_str()), ("state", state)],
        )
        .unwrap();
        self.traced(browser.client.get(url)).await
    }

    /// Submits the bind page: a new account for `mobile`, with the SMS code
    /// asked for through the page's button first. Returns the bind's page,
    /// the instance that sent the code and the one that bound.
    async fn bind(
        &mut self,
        browser: &Browser,
        bind_page: &Page,
        mobile: &str,
    ) -> (Page, usize, usize) {
        let field = |name: &str| {
            bind_page
                .field(name)
                .unwrap_or_else(|| panic!("bind page's {name}"))
        };
        let (access_token, csrf_token) = (field("access_token"), field("csrf_token"));
        let ask = [
            ("access_token", access_token.clone()),
            ("csrf_token", csrf_token.clone()),
            ("mobile", mobile.to_owned()),
        ];
        let (sent, sent_on) = self
            .traced(
                browser
                    .client
                    .post(self.https_url("/oauth/qq/sms"))
                    .form(&ask),
            )
            .await;
        assert_eq!(sent.status, 200, "the SMS code was sent: {}", sent.body);
        let code = self
            .sms
            .code_for(mobile)
            .await
            .expect("the SMS code arrives");
        self.codes.push(code.clone());
        let form = [
            ("access_token", access_token),
            ("csrf_token", csrf_token),
            ("mobile", mobile.to_owned()),
            ("sms_code", code),
            ("password", PASSWORD.to_owned()),
        ];
        let (done, bound_on) = self
            .traced(
                browser
                    .client
                    .post(self.https_url("/oauth/qq/bind"))
                    .form(&form),
            )
            .await;
        (done, sent_on, bound_on)
    }

    /// The home page through nginx: who is logged in.
    async fn home(&self, browser: &Browser) -> (Page, usize) {
        let (page, at) = self.traced(browser.client.get(self.https_url("/"))).await;
        assert_eq!(page.status, 200, "{}", page.body);
        (page, at)
    }

    /// A first QQ login, start to finish: QQ, the bind page, a new account.
    /// Returns the instance each step landed on.
    async fn sign_up(&mut self, browser: &Browser, openid: &str, mobile: &str) -> Vec<usize> {
        let (state, start) = self.start_qq_login(browser).await;
        let (bind_page, callback) = self.come_back_from_qq(browser, openid, &state).await;
        assert_eq!(bind_page.status, 200, "the bind page: {}", bind_page.body);
        let (done, _, bind) = self.bind(browser, &bind_page, mobile).await;
        assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
        let (home, landed) = self.home(browser).await;
        assert_eq!(
            home.greeting(),
            Some(mobile),
            "logged in as the new account"
        );
        vec![start, callback, bind, landed]
    }

    /// `GET /api/me` straight to one instance with `cookie`, past nginx.
    async fn me_directly(&self, instance: usize, cookie: &str) -> u16 {
        let request = client_builder()
            .build()
            .unwrap()
            .get(self.instances[instance].url("/api/me"))
            .header(COOKIE, cookie);
        self.traced_on(instance, request).await.status
    }

    /// Like `traced`, for a request sent past nginx to a known instance.
    async fn traced_on(&self, instance: usize, request: reqwest::RequestBuilder) -> Page {
        let (page, at) = self.traced(request).await;
        assert_eq!(at, instance);
        page
    }
}

fn new_openid() -> String {
    qqlogin::secret::random_token()
        .bytes()
        .take(32)
        .map(|b| format!("{:X}", b % 16))
        .collect()
}

fn new_mobile() -> String {
    let digits: String = qqlogin::secret::random_token()
        .bytes()
        .take(8)
        .map(|b| char::from(b'0' + b % 10))
        .collect();
    format!("139{digits}")
}

fn name(instance: usize) -> &'static str {
    ["A", "B"][instance]
}

/// Starts the whole deployment, or `None` when the machine lacks a part of it.
async fn deploy() -> Option<Deployment> {
    let nginx = find_tool("nginx");
    if nginx.is_none() {
        missing("nginx is not installed (Debian's package `nginx`)");
    }
    let openssl = find_tool("openssl");
    if openssl.is_none() {
        missing("the openssl command is not installed (Debian's package `openssl`)");
    }
    let base = database_url();
    let (Some(nginx), Some(openssl), Some(base)) = (nginx, openssl, base) else {
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let schema = Schema::new(&base);
    let qq = StandIn::new(APP_ID, APP_KEY).start().await.unwrap();
    let sms = sms_webhook::SmsWebhook::start(SMS_WEBHOOK_SECRET).await;
    let (http, https) = (free_port(), free_port());

    let env = instance_env(&schema.url, Some(&qq), https, &sms.url());
    let mut instances = [
        Instance::spawn("A", dir.path(), &env),
        Instance::spawn("B", dir.path(), &env),
    ];
    for instance in &mut instances {
        instance.wait_for_port().await;
        wait_until_ready(instance).await;
    }

    make_certificate(&openssl, dir.path());
    let ports = Ports {
        http,
        https,
        upstreams: instances.each_ref().map(|i| i.port),
    };
    let mut nginx = start_nginx(&nginx, dir.path(), &ports);
    // Listening: then a first request, traced like every other.
    let up = eventually(Duration::from_secs(15), async || {
        if let Some(status) = nginx.child.try_wait().unwrap() {
            panic!("nginx exited with {status}:\n{}", nginx.error_log());
        }
        std::net::TcpStream::connect(("127.0.0.1", https)).ok()
    })
    .await;
    assert!(up.is_some(), "nginx never listened on port {https}");

    let deployment = Deployment {
        instances,
        nginx,
        https,
        http,
        qq,
        sms,
        codes: Vec::new(),
        _dir: dir,
        _schema: schema,
    };
    let probe = client_builder().build().unwrap();
    let (ready, _) = deployment
        .traced(probe.get(deployment.https_url("/readyz")))
        .await;
    assert_eq!(ready.status, 200, "/readyz through nginx");
    // nginx answers it itself: no instance sees the request.
    let metrics = probe
        .get(deployment.https_url("/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        metrics.status(),
        404,
        "/metrics is not served through nginx"
    );
    Some(deployment)
}

// ---------------------------------------------------------------------------
// The tests.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_behind_nginx_share_logins_and_survive_losing_one() {
    let Some(mut deployment) = deploy().await else {
        return;
    };
    let d = &mut deployment;

    // Plain http is only a redirect to https (nginx answers it alone).
    let plain = client_builder().build().unwrap();
    let redirect = Page::read(
        plain
            .get(format!("http://127.0.0.1:{}/login?next=%2F", d.http))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.location(), "https://127.0.0.1/login?next=%2F");

    // The stylesheet, under its fingerprinted name, comes through nginx
    // marked for a year's keeping.
    let login = Page::read(plain.get(d.https_url("/login")).send().await.unwrap()).await;
    let href = login
        .body
        .split("<link rel=\"stylesheet\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no stylesheet: {}", login.body))
        .to_owned();
    assert!(
        href.starts_with("/static/app.") && href.ends_with(".css"),
        "{href}"
    );
    let css = Page::read(plain.get(d.https_url(&href)).send().await.unwrap()).await;
    assert_eq!(css.status, 200);
    assert_eq!(
        css.headers[CACHE_CONTROL],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(css.headers[CONTENT_TYPE], "text/css; charset=utf-8");

    // A first QQ login and bind, its steps spread over both instances: the
    // login state written by one is read by the other, and the bind token
    // issued by one is accepted by the other.
    let first = Browser::new();
    let (openid, mobile) = (new_openid(), new_mobile());
    let (state, start) = d.start_qq_login(&first).await;
    let (bind_page, callback) = d.come_back_from_qq(&first, &openid, &state).await;
    assert_eq!(bind_page.status, 200, "the bind page: {}", bind_page.body);
    let (done, sent, bind) = d.bind(&first, &bind_page, &mobile).await;
    assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
    eprintln!(
        "first login: /oauth/qq/login on {}, callback on {}, SMS code on {}, bind on {}",
        name(start),
        name(callback),
        name(sent),
        name(bind)
    );
    assert_ne!(
        start, callback,
        "the login began and came back from QQ on different instances"
    );
    assert_ne!(
        callback, sent,
        "the bind page came from one instance, its token was accepted by the other"
    );
    assert_ne!(
        sent, bind,
        "the SMS code was sent by one instance, checked by the other"
    );

    // The session cookie: Secure (nginx says the browser spoke https), HttpOnly.
    let cookies = done.session_cookies();
    assert!(!cookies.is_empty(), "the login sets a new session cookie");
    for cookie in &cookies {
        assert!(
            cookie.contains("; Secure"),
            "session cookie without Secure: {cookie}"
        );
        assert!(
            cookie.contains("; HttpOnly"),
            "session cookie without HttpOnly: {cookie}"
        );
    }

    // Logged in, on whichever instance answers; and the same cookie, sent
    // straight to each instance, is the same session on both.
    let (home, _) = d.home(&first).await;
    assert_eq!(home.greeting(), Some(mobile.as_str()));
    let cookie = first.session_cookie(&d.https_url("/"));
    for instance in 0..2 {
        assert_eq!(
            d.me_directly(instance, &cookie).await,
            200,
            "on {}",
            name(instance)
        );
    }

    // Logout through one instance holds on the other.
    let (home, _) = d.home(&first).await;
    let csrf = home
        .field("csrf_token")
        .expect("the home page's logout form");
    let (out, logout_at) = d
        .traced(
            first
                .client
                .post(d.https_url("/logout"))
                .form(&[("csrf_token", csrf)]),
        )
        .await;
    assert_eq!(
        (out.status, out.location()),
        (303, "/login"),
        "{}",
        out.body
    );
    let other = 1 - logout_at;
    assert_eq!(
        d.me_directly(other, &cookie).await,
        401,
        "logged out on {}, the old cookie still works on {}",
        name(logout_at),
        name(other)
    );
    assert_eq!(d.me_directly(logout_at, &cookie).await, 401);
    let (me, _) = d.traced(first.client.get(d.https_url("/api/me"))).await;
    assert_eq!(me.status, 401);

    // An instance dies in the middle of a login: the login goes on, and the
    // logins after it succeed, through the survivor.
    let second = Browser::new();
    let (second_openid, second_mobile) = (new_openid(), new_mobile());
    let (state, began_on) = d.start_qq_login(&second).await;
    d.instances[began_on].kill();
    let survivor = 1 - began_on;
    eprintln!("killed {} after it began a login", name(began_on));
    let (bind_page, at) = d.come_back_from_qq(&second, &second_openid, &state).await;
    assert_eq!(bind_page.status, 200, "the bind page: {}", bind_page.body);
    assert_eq!(at, survivor);
    let (done, _, at) = d.bind(&second, &bind_page, &second_mobile).await;
    assert_eq!((done.status, done.location()), (303, "/"), "{}", done.body);
    assert_eq!(at, survivor);
    let (home, _) = d.home(&second).await;
    assert_eq!(home.greeting(), Some(second_mobile.as_str()));

    // The first person comes back: QQ login goes straight in.
    let again = Browser::new();
    let (state, _) = d.start_qq_login(&again).await;
    let (back, _) = d.come_back_from_qq(&again, &openid, &state).await;
    assert_eq!((back.status, back.location()), (303, "/"), "{}", back.body);
    let (home, _) = d.home(&again).await;
    assert_eq!(home.greeting(), Some(mobile.as_str()));

    // More first logins, each taking nginx past the dead instance.
    for _ in 0..3 {
        let steps = d
            .sign_up(&Browser::new(), &new_openid(), &new_mobile())
            .await;
        assert!(steps.iter().all(|&i| i == survivor), "{steps:?}");
    }
    let (ready, _) = d.traced(plain.get(d.https_url("/readyz"))).await;
    assert_eq!(ready.status, 200);

    // nginx did try the dead instance, and went on to the other one.
    let errors = d.nginx.error_log();
    assert!(
        errors.contains("Connection refused"),
        "nginx never met the dead instance:\n{errors}"
    );

    // The logs: nginx's has the requests without their query strings, and
    // neither it nor any instance's holds a code QQ granted.
    let access = d.nginx.access_log();
    assert!(
        access.contains("\"GET /oauth/qq/callback HTTP/1.1\" "),
        "{access}"
    );
    assert!(
        !access.contains("code="),
        "a query string in nginx's access log:\n{access}"
    );
    let all_logs = [
        access,
        d.instances[0].lines().join("\n"),
        d.instances[1].lines().join("\n"),
    ];
    for code in &d.codes {
        for log in &all_logs {
            assert!(!log.contains(code.as_str()), "QQ's code {code} is in a log");
        }
    }

    // systemd (KillSignal=SIGTERM) and Docker stop the survivor: it exits 0,
    // which Restart=on-failure leaves alone.
    let status = d.instances[survivor].terminate().await;
    assert!(status.success(), "SIGTERM: exit {status}, not 0");
}

/// Migrations are safe when two instances start at once: on a fresh schema,
/// both come up, the migrations are applied once, and neither reports an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_starting_at_once_on_a_fresh_database_both_come_up() {
    let Some(base) = database_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    for round in 0..3 {
        let schema = Schema::new(&base);
        let env = instance_env(&schema.url, None, 443, "http://127.0.0.1:9/sms");
        let mut both = [
            Instance::spawn("A", dir.path(), &env),
            Instance::spawn("B", dir.path(), &env),
        ];
        for instance in &mut both {
            instance.wait_for_port().await;
        }
        for instance in &both {
            wait_until_ready(instance).await;
            let login = reqwest::get(instance.url("/login")).await.unwrap();
            assert_eq!(
                login.status(),
                200,
                "round {round}: {}'s login page",
                instance.name
            );
        }
        assert_eq!(
            schema.applied_migrations(),
            migrations_in_repository(),
            "round {round}: every migration applied exactly once"
        );
        for instance in &both {
            let errors: Vec<String> = instance
                .lines()
                .into_iter()
                .filter(|l| l.contains(" ERROR "))
                .collect();
            assert!(
                errors.is_empty(),
                "round {round}: instance {} reported errors while starting beside another:\n{}",
                instance.name,
                errors.join("\n")
            );
        }
    }
}

//! The deployment, for real: Debian's nginx running `deploy/nginx/qqlogin.conf`
//! (only its ports and paths changed) in front of two instances of the real
//! binary on one PostgreSQL schema, with a stand-in QQ.
//!
//! Through nginx over https, a first QQ login and bind whose steps land on
//! different instances (each instance's access log says which answered what);
//! the session cookie `Secure`; the client's address believed from nginx and
//! only from nginx; static files served by nginx itself; a logout through one
//! instance holding on the other; one instance killed in the middle of a login
//! and the logins that follow still succeeding through the other. And two
//! instances started at the same moment on a fresh database both coming up.
//!
//! Needs `nginx`, `openssl` and `TEST_DATABASE_URL`: without them the tests
//! say so and pass, unless `CI` is set (`.ci/run` installs nginx), where their
//! absence fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
#[path = "api/fake_qq.rs"]
mod fake_qq;

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

use fake_qq::FakeQq;

const APP_ID: &str = "101474184";
const APP_KEY: &str = "nginx-test-app-key";
const PASSWORD: &str = "correct horse battery";
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
    if std::env::var_os("CI").is_some() {
        panic!("CI is set but {what} (.ci/run installs nginx and openssl with apt-get)");
    }
    eprintln!("SKIPPED: {what}; set it up to run this test (CI fails instead of skipping)");
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
        let token = qqlogin::flow::random_token()
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
        let message = line.split_once("middleware::logger] ")?.1;
        let (client, rest) = message.split_once(" \"")?;
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
    qq: Option<&FakeQq>,
    https_port: u16,
) -> Vec<(&'static str, String)> {
    let mut env = vec![
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
    if let Some(qq) = qq {
        env.push(("QQ_APP_ID", APP_ID.to_owned()));
        env.push(("QQ_APP_KEY", APP_KEY.to_owned()));
        env.push(("QQ_GRAPH_URL", qq.base_url.clone()));
    }
    env
}

/// Polls `/readyz` until it answers 200.
async fn wait_until_ready(instance: &Instance) {
    let client = reqwest::Client::new();
    let ready = eventually(Duration::from_secs(30), async || {
        let response = client.get(instance.url("/readyz")).send().await.ok()?;
        (response.status() == 200).then_some(())
    })
    .await;
    assert!(
        ready.is_some(),
        "instance {} never became ready (/readyz 200)",
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
        (
            "/srv/qqlogin/static/",
            format!("{}/", manifest.join("static").display()),
        ),
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
    qq: FakeQq,
    /// Every code QQ granted, to check that none reaches a log.
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
        let request = request.build().unwrap();
        let (method, path) = (
            request.method().to_string(),
            request.url().path().to_owned(),
        );
        let before = self.instances.each_ref().map(|i| i.accesses().len());
        let client = client_builder().build().unwrap();
        let _ = client; // (the request carries its own client below)
        let page = Page::read(self.send(request).await).await;
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
            "instance {} logged {access:?}: the client is the browser at {BROWSER_IP} — \
             not nginx (127.0.0.1, whose X-Forwarded-For is believed), and not the browser's \
             forged X-Forwarded-For {FORGED_IP}",
            self.instances[index].name
        );
        (page, index)
    }

    async fn send(&self, request: reqwest::Request) -> reqwest::Response {
        // The request was built by a browser's client; send it with that
        // client so its cookie jar sees the answer.
        let _ = self;
        REQUEST_CLIENT
            .with(|c| c.borrow().clone())
            .unwrap()
            .execute(request)
            .await
            .unwrap()
    }
}

thread_local! {
    static REQUEST_CLIENT: std::cell::RefCell<Option<reqwest::Client>> = const { std::cell::RefCell::new(None) };
}

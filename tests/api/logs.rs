//! `QQLOGIN_LOG_FORMAT=json`: the real binary writes one JSON object per
//! line; every request has an id, echoed in `X-Request-Id`, written in its
//! access line and shown on its error page.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary in development mode on a free port, its stderr collected line by line.
struct Server {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_qqlogin"))
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("QQLOGIN_LISTEN", "127.0.0.1:0")
            .env("QQLOGIN_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .current_dir(dir.path())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                collected.lock().unwrap().push(line);
            }
        });
        Self {
            child,
            lines,
            _dir: dir,
        }
    }

    /// The first log line (parsed) that `find` accepts, waiting up to 20 s.
    fn line(&self, what: &str, find: impl Fn(&Value) -> bool) -> Value {
        let until = Instant::now() + Duration::from_secs(20);
        loop {
            let lines = self.lines.lock().unwrap().clone();
            let parsed: Vec<Value> = lines
                .iter()
                .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
                .collect();
            if let Some(found) = parsed.into_iter().find(|v| find(v)) {
                return found;
            }
            assert!(
                Instant::now() < until,
                "no log line {what} in:\n{}",
                lines.join("\n")
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn port(&self) -> u16 {
        let line = self.line("naming the port", |v| {
            v["message"].as_str().is_some_and(|m| m.contains("(port "))
        });
        let message = line["message"].as_str().unwrap();
        message
            .split("(port ")
            .nth(1)
            .unwrap()
            .trim_end_matches(')')
            .parse()
            .unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn json_logs_name_each_request_by_the_id_it_answers_with() {
    let server = Server::start();
    let base = format!("http://127.0.0.1:{}", server.port());
    let startup = server.line("at start", |v| v["level"] == "INFO");
    for field in ["time", "level", "target", "message"] {
        assert!(startup.get(field).is_some(), "{field} in {startup}");
    }

    let client = reqwest::Client::new();
    let missing = client
        .get(format!("{base}/nope?code=SECRET-CODE"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    let id = missing.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(!id.is_empty());
    let page = missing.text().await.unwrap();
    assert!(
        page.contains(&format!("请求编号 {id}")),
        "the error page quotes the id: {page}"
    );

    let access = server.line("for /nope", |v| v["path"] == "/nope");
    assert_eq!(access["request_id"], id.as_str(), "{access}");
    assert_eq!(access["method"], "GET");
    assert_eq!(access["status"], 404);
    assert_eq!(access["client"], "127.0.0.1");
    assert!(access["duration_ms"].as_f64().is_some(), "{access}");
    assert_eq!(access["target"], "qqlogin::access");
    let everything = server.lines.lock().unwrap().join("\n");
    assert!(!everything.contains("SECRET-CODE"), "never the query");

    // A proxy's id goes through; a malformed one is replaced.
    let given = client
        .get(format!("{base}/login"))
        .header("x-request-id", "nginx-0a1b2c")
        .send()
        .await
        .unwrap();
    assert_eq!(given.headers()["x-request-id"], "nginx-0a1b2c");
    let odd = client
        .get(format!("{base}/login"))
        .header("x-request-id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(odd.headers()["x-request-id"], "a b\"c");
    server.line("for the proxy's id", |v| v["request_id"] == "nginx-0a1b2c");
}

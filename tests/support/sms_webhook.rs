//! A receiver for the `webhook` SMS sender, for the tests and the bench.
//!
//! It does what an operator's receiver must: it checks each POST's
//! `X-Qqlogin-Signature` (HMAC-SHA256 of the secret over timestamp + "." +
//! body, computed here independently of the service's code) and timestamp,
//! and answers 401 when either is wrong; it keeps the codes per mobile; and
//! it can play a receiver that is down (500 to everything).
//!
//! Included with `#[path]` by tests/api and benches/login.rs, so it uses
//! only what both have: actix-web, tokio, hmac, sha2, serde_json.
#![allow(
    dead_code,
    reason = "shared by several test crates, each of which uses a part"
)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// How long [`SmsWebhook::code_for`] waits for a code to arrive.
const CODE_WAIT: Duration = Duration::from_secs(10);
/// How often it looks.
const POLL: Duration = Duration::from_millis(10);
/// How far a request's timestamp may be from this machine's clock.
const MAX_SKEW_SECS: u64 = 300;

/// A running receiver on 127.0.0.1; dropping it stops the server.
pub struct SmsWebhook {
    state: Arc<State>,
    addr: SocketAddr,
    handle: ServerHandle,
}

struct State {
    secret: Vec<u8>,
    /// The codes received per mobile, oldest first.
    codes: Mutex<HashMap<String, Vec<String>>>,
    /// Every POST received, accepted or not.
    calls: AtomicUsize,
    /// POSTs refused with 401 (bad or missing signature or timestamp).
    rejected: AtomicUsize,
    /// While set, every POST is answered 500.
    failing: AtomicBool,
}

impl State {
    fn codes(&self) -> MutexGuard<'_, HashMap<String, Vec<String>>> {
        // A poisoned lock only means a panic elsewhere; the map is still whole.
        self.codes.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl SmsWebhook {
    /// Starts a receiver checking signatures with `secret`, on a free port,
    /// on a thread and an actix system of its own (so it works the same
    /// under `#[actix_web::test]`, `#[tokio::test]` and the bench's runtime).
    pub async fn start(secret: &str) -> Self {
        let state = Arc::new(State {
            secret: secret.as_bytes().to_vec(),
            codes: Mutex::new(HashMap::new()),
            calls: AtomicUsize::new(0),
            rejected: AtomicUsize::new(0),
            failing: AtomicBool::new(false),
        });
        let data = web::Data::from(Arc::clone(&state));
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let spawned = std::thread::Builder::new()
            .name("sms-webhook".to_owned())
            .spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .route("/sms", web::post().to(receive))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .bind(("127.0.0.1", 0));
                    let server = match server {
                        Ok(server) => server,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e.to_string()));
                            return;
                        }
                    };
                    let Some(addr) = server.addrs().first().copied() else {
                        let _ = ready_tx.send(Err("no address bound".to_owned()));
                        return;
                    };
                    let server = server.run();
                    let _ = ready_tx.send(Ok((addr, server.handle())));
                    let _ = server.await;
                });
            });
        if let Err(e) = spawned {
            panic!("the SMS webhook receiver's thread did not start: {e}");
        }
        match ready_rx.await {
            Ok(Ok((addr, handle))) => Self {
                state,
                addr,
                handle,
            },
            Ok(Err(e)) => panic!("the SMS webhook receiver could not listen: {e}"),
            Err(_) => panic!("the SMS webhook receiver's thread ended before it listened"),
        }
    }

    /// The URL to give `QQLOGIN_SMS_WEBHOOK_URL`.
    pub fn url(&self) -> String {
        format!("http://{}/sms", self.addr)
    }

    /// The latest code received for `mobile`, waiting up to ten seconds for
    /// one to arrive; `None` if none did.
    pub async fn code_for(&self, mobile: &str) -> Option<String> {
        let deadline = Instant::now() + CODE_WAIT;
        loop {
            if let Some(code) = self.latest_code(mobile) {
                return Some(code);
            }
            if Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The latest code received for `mobile` so far, without waiting.
    pub fn latest_code(&self, mobile: &str) -> Option<String> {
        self.state
            .codes()
            .get(mobile)
            .and_then(|codes| codes.last().cloned())
    }

    /// Every code received for `mobile` so far, oldest first.
    pub fn codes(&self, mobile: &str) -> Vec<String> {
        self.state.codes().get(mobile).cloned().unwrap_or_default()
    }

    /// Every POST received so far, accepted, refused or failed.
    pub fn calls(&self) -> usize {
        self.state.calls.load(Ordering::SeqCst)
    }

    /// POSTs refused with 401 so far.
    pub fn rejected(&self) -> usize {
        self.state.rejected.load(Ordering::SeqCst)
    }

    /// While `down`, every POST is answered 500 (and its code not kept).
    pub fn set_down(&self, down: bool) {
        self.state.failing.store(down, Ordering::SeqCst);
    }
}

impl Drop for SmsWebhook {
    fn drop(&mut self) {
        // `stop` sends its command at once; the future only waits for it.
        drop(self.handle.stop(false));
    }
}

async fn receive(request: HttpRequest, body: web::Bytes, state: web::Data<State>) -> HttpResponse {
    state.calls.fetch_add(1, Ordering::SeqCst);
    if state.failing.load(Ordering::SeqCst) {
        return HttpResponse::InternalServerError().body("receiver down (test switch)");
    }
    if let Err(why) = check_signature(&request, &body, &state.secret) {
        state.rejected.fetch_add(1, Ordering::SeqCst);
        return HttpResponse::Unauthorized().body(why);
    }
    let Some((mobile, code)) = parse_body(&body) else {
        return HttpResponse::BadRequest()
            .body("expected exactly {\"mobile\": string, \"code\": string, \"ttl_secs\": number}");
    };
    state.codes().entry(mobile).or_default().push(code);
    HttpResponse::Ok().finish()
}

fn check_signature(request: &HttpRequest, body: &[u8], secret: &[u8]) -> Result<(), &'static str> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let timestamp = header("X-Qqlogin-Timestamp").ok_or("no X-Qqlogin-Timestamp")?;
    let signature = header("X-Qqlogin-Signature").ok_or("no X-Qqlogin-Signature")?;
    let seconds: u64 = timestamp
        .parse()
        .map_err(|_| "X-Qqlogin-Timestamp is not Unix seconds")?;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    if now.abs_diff(seconds) > MAX_SKEW_SECS {
        return Err("X-Qqlogin-Timestamp is too far from now");
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| "unusable secret")?;
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if signature == format!("sha256={hex}") {
        Ok(())
    } else {
        Err("bad X-Qqlogin-Signature")
    }
}

/// The contract's body, and nothing else: `mobile`, a six-digit `code` and
/// a positive `ttl_secs`.
fn parse_body(body: &[u8]) -> Option<(String, String)> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let object = value.as_object()?;
    let mobile = object.get("mobile")?.as_str()?;
    let code = object.get("code")?.as_str()?;
    let ttl_secs = object.get("ttl_secs")?.as_u64()?;
    let six_digits = code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit());
    (object.len() == 3 && six_digits && ttl_secs > 0).then(|| (mobile.to_owned(), code.to_owned()))
}

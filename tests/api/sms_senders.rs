//! The SMS senders through real HTTP: the `webhook` sender against the
//! receiver in tests/support (which checks its signature), and the
//! `tencentcloud` sender against a Tencent Cloud stand-in that checks the
//! TC3-HMAC-SHA256 signature and headers independently and answers Tencent
//! Cloud's real success and error shapes.

use std::net::TcpListener;
use std::time::Duration;

use qqlogin::config::{SenderConfig, TencentCloudConfig};
use qqlogin::domain::{Mobile, SmsCode};
use qqlogin::sms::sender::{SendError, Sender};
use url::Url;

use crate::sms_webhook::SmsWebhook;
use tencent_cloud::{Answer, TencentCloudStandIn};

const MOBILE: &str = "13800138000";
const TTL: Duration = Duration::from_secs(300);
const WEBHOOK_SECRET: &str = "webhook-secret-for-tests";
const TRY_LATER: &str = "短信发送失败，请稍后再试";

fn mobile() -> Mobile {
    Mobile::parse(MOBILE).unwrap()
}

fn webhook_sender(url: &str, secret: &str) -> Sender {
    Sender::new(&SenderConfig::Webhook {
        url: Url::parse(url).unwrap(),
        secret: secret.into(),
    })
    .unwrap()
}

fn tencent_sender(endpoint: &str, secret_key: &str) -> Sender {
    Sender::new(&SenderConfig::TencentCloud(TencentCloudConfig {
        secret_id: tencent_cloud::SECRET_ID.to_owned(),
        secret_key: secret_key.into(),
        sdk_app_id: tencent_cloud::SDK_APP_ID.to_owned(),
        sign_name: "腾讯云".to_owned(),
        template_id: tencent_cloud::TEMPLATE_ID.to_owned(),
        region: tencent_cloud::REGION.to_owned(),
        endpoint: Url::parse(endpoint).unwrap(),
    }))
    .unwrap()
}

/// A URL on which nothing listens: a port just bound and released.
fn closed_port_url() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{addr}/")
}

// ---- webhook ----

#[actix_web::test]
async fn webhook_delivers_the_code_signed_as_the_contract_says() {
    let receiver = SmsWebhook::start(WEBHOOK_SECRET).await;
    let sender = webhook_sender(&receiver.url(), WEBHOOK_SECRET);
    let code = SmsCode::generate();

    sender.send(&mobile(), &code, TTL).await.unwrap();

    assert_eq!(
        receiver.code_for(MOBILE).await.as_deref(),
        Some(code.expose())
    );
    assert_eq!((receiver.calls(), receiver.rejected()), (1, 0));
    assert!(!sender.shows_code());
}

#[actix_web::test]
async fn webhook_receiver_keeps_the_latest_code_per_mobile() {
    let receiver = SmsWebhook::start(WEBHOOK_SECRET).await;
    let sender = webhook_sender(&receiver.url(), WEBHOOK_SECRET);
    let (first, second) = (
        SmsCode::parse("111111").unwrap(),
        SmsCode::parse("222222").unwrap(),
    );
    let other = Mobile::parse("13900139000").unwrap();

    sender.send(&mobile(), &first, TTL).await.unwrap();
    sender.send(&mobile(), &second, TTL).await.unwrap();
    sender.send(&other, &first, TTL).await.unwrap();

    assert_eq!(receiver.code_for(MOBILE).await.as_deref(), Some("222222"));
    assert_eq!(receiver.codes(MOBILE), ["111111", "222222"]);
    assert_eq!(
        receiver.latest_code("13900139000").as_deref(),
        Some("111111")
    );
    assert_eq!(receiver.latest_code("13700137000"), None);
}

#[actix_web::test]
async fn webhook_signed_with_another_secret_is_refused_and_not_retried() {
    let receiver = SmsWebhook::start(WEBHOOK_SECRET).await;
    let sender = webhook_sender(&receiver.url(), "not-the-receivers-secret");

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Status(401)), "{err:?}");
    assert_eq!(err.message(), TRY_LATER);
    assert_eq!((receiver.calls(), receiver.rejected()), (1, 1));
    assert_eq!(receiver.latest_code(MOBILE), None);
}

#[actix_web::test]
async fn webhook_receiver_refuses_an_unsigned_or_stale_post() {
    let receiver = SmsWebhook::start(WEBHOOK_SECRET).await;
    let http = reqwest::Client::new();
    let body = r#"{"mobile":"13800138000","code":"123456","ttl_secs":300}"#;

    let unsigned = http.post(receiver.url()).body(body).send().await.unwrap();
    // Correctly signed, but an hour old: a replay.
    let stale_ts = "1700000000";
    let stale = http
        .post(receiver.url())
        .header("X-Qqlogin-Timestamp", stale_ts)
        .header(
            "X-Qqlogin-Signature",
            qqlogin::sms::sender::webhook_signature(
                WEBHOOK_SECRET.as_bytes(),
                stale_ts.parse().unwrap(),
                body.as_bytes(),
            ),
        )
        .body(body)
        .send()
        .await
        .unwrap();

    assert_eq!(unsigned.status(), 401);
    assert_eq!(stale.status(), 401);
    assert_eq!(receiver.latest_code(MOBILE), None);
}

#[actix_web::test]
async fn webhook_down_is_tried_twice_then_reported() {
    let receiver = SmsWebhook::start(WEBHOOK_SECRET).await;
    receiver.set_down(true);
    let sender = webhook_sender(&receiver.url(), WEBHOOK_SECRET);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Status(500)), "{err:?}");
    assert_eq!(err.message(), TRY_LATER);
    assert_eq!(receiver.calls(), 2, "one try and one retry, no more");

    receiver.set_down(false);
    let code = SmsCode::generate();
    sender.send(&mobile(), &code, TTL).await.unwrap();
    assert_eq!(
        receiver.code_for(MOBILE).await.as_deref(),
        Some(code.expose())
    );
}

#[actix_web::test]
async fn webhook_unreachable_is_a_clear_failure() {
    let sender = webhook_sender(&closed_port_url(), WEBHOOK_SECRET);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.message(), TRY_LATER);
}

// ---- log ----

#[actix_web::test]
async fn log_sender_sends_nowhere_and_shows_the_code() {
    let sender = Sender::new(&SenderConfig::Log).unwrap();
    assert!(sender.shows_code());
    sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap();
}

// ---- Tencent Cloud ----

#[actix_web::test]
async fn tencent_cloud_sends_a_correctly_signed_send_sms() {
    let tc = TencentCloudStandIn::start(Answer::Ok).await;
    let sender = tencent_sender(&tc.url(), tencent_cloud::SECRET_KEY);
    let code = SmsCode::generate();

    sender.send(&mobile(), &code, TTL).await.unwrap();

    assert_eq!(tc.violations(), Vec::<String>::new());
    let requests = tc.accepted();
    assert_eq!(requests.len(), 1);
    assert_eq!(
        requests[0],
        serde_json::json!({
            "PhoneNumberSet": ["+8613800138000"],
            "SmsSdkAppId": tencent_cloud::SDK_APP_ID,
            "SignName": "腾讯云",
            "TemplateId": tencent_cloud::TEMPLATE_ID,
            "TemplateParamSet": [code.expose(), "5"],
        })
    );
}

#[actix_web::test]
async fn tencent_cloud_daily_limit_tells_the_person_to_come_back_tomorrow() {
    let tc = TencentCloudStandIn::start(Answer::NotSent(
        "LimitExceeded.PhoneNumberDailyLimit",
        "the number of sms messages sent from a single mobile number every day exceeds the upper limit",
    ))
    .await;
    let sender = tencent_sender(&tc.url(), tencent_cloud::SECRET_KEY);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, SendError::NotSent { code, .. } if code == "LimitExceeded.PhoneNumberDailyLimit"),
        "{err:?}"
    );
    assert_eq!(
        err.message(),
        "这个手机号今天接收的短信已达上限，请明天再试"
    );
    assert!(!err.is_operator_problem());
    assert_eq!(tc.violations(), Vec::<String>::new());
}

#[actix_web::test]
async fn tencent_cloud_thirty_second_limit_says_too_often() {
    let tc = TencentCloudStandIn::start(Answer::NotSent(
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "the number of sms messages sent from a single mobile number within 30 seconds exceeds the upper limit",
    ))
    .await;
    let sender = tencent_sender(&tc.url(), tencent_cloud::SECRET_KEY);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert_eq!(
        err.provider_code(),
        Some("LimitExceeded.PhoneNumberThirtySecondLimit")
    );
    assert_eq!(err.message(), "短信发送太频繁，请稍后再试");
}

#[actix_web::test]
async fn tencent_cloud_incorrect_number_asks_to_check_it() {
    let tc = TencentCloudStandIn::start(Answer::NotSent(
        "InvalidParameterValue.IncorrectPhoneNumber",
        "incorrect phone number",
    ))
    .await;
    let sender = tencent_sender(&tc.url(), tencent_cloud::SECRET_KEY);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert_eq!(err.message(), "手机号码有误，请检查后再试");
}

#[actix_web::test]
async fn tencent_cloud_signature_failure_is_the_operators_problem() {
    let tc = TencentCloudStandIn::start(Answer::Ok).await;
    let sender = tencent_sender(&tc.url(), "the-wrong-secret-key");

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(
        matches!(&err, SendError::Refused { code, .. } if code == "AuthFailure.SignatureFailure"),
        "{err:?}"
    );
    assert_eq!(err.message(), TRY_LATER);
    assert!(err.is_operator_problem());
    // The operator's line names the cause and never the key.
    let line = err.to_string();
    assert!(line.contains("AuthFailure.SignatureFailure"), "{line}");
    assert!(!line.contains("the-wrong-secret-key"), "{line}");
    assert!(tc.accepted().is_empty());
}

#[actix_web::test]
async fn tencent_cloud_garbage_answer_is_a_clear_failure() {
    let tc = TencentCloudStandIn::start(Answer::Garbage).await;
    let sender = tencent_sender(&tc.url(), tencent_cloud::SECRET_KEY);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Malformed(_)), "{err:?}");
    assert_eq!(err.message(), TRY_LATER);
}

#[actix_web::test]
async fn tencent_cloud_5xx_is_a_clear_failure_and_not_retried() {
    let tc = TencentCloudStandIn::start(Answer::Status(502)).await;
    let sender = tencent_sender(&tc.url(), tencent_cloud::SECRET_KEY);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Status(502)), "{err:?}");
    assert_eq!(err.message(), TRY_LATER);
    assert_eq!(tc.calls(), 1, "SendSms may have been sent: never twice");
}

#[actix_web::test]
async fn tencent_cloud_unreachable_is_a_clear_failure() {
    let sender = tencent_sender(&closed_port_url(), tencent_cloud::SECRET_KEY);

    let err = sender
        .send(&mobile(), &SmsCode::generate(), TTL)
        .await
        .unwrap_err();

    assert!(matches!(err, SendError::Unreachable { .. }), "{err:?}");
    assert_eq!(err.message(), TRY_LATER);
}

/// A Tencent Cloud SMS endpoint that checks requests as the real one does,
/// with its own implementation of TC3-HMAC-SHA256 (not the service's), and
/// answers in Tencent Cloud's shapes.
mod tencent_cloud {
    use std::net::SocketAddr;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    use std::time::{SystemTime, UNIX_EPOCH};

    use actix_web::dev::ServerHandle;
    use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
    use hmac::{Hmac, Mac};
    use serde_json::{Value, json};
    use sha2::{Digest, Sha256};

    pub const SECRET_ID: &str = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE";
    pub const SECRET_KEY: &str = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE";
    pub const SDK_APP_ID: &str = "1400006666";
    pub const TEMPLATE_ID: &str = "1110";
    pub const REGION: &str = "ap-guangzhou";
    const REQUEST_ID: &str = "a0aabda6-cf91-4f3e-a81f-9198114a2279";

    /// What the stand-in answers to a request that passes its checks.
    #[derive(Clone, Copy, Debug)]
    pub enum Answer {
        /// `SendStatusSet[0].Code == "Ok"`.
        Ok,
        /// This number was not sent to: Tencent's code and message.
        NotSent(&'static str, &'static str),
        /// HTTP 200 with a body that is not Tencent's JSON (a captive proxy).
        Garbage,
        /// This HTTP status with an HTML body (a failing gateway).
        Status(u16),
    }

    struct State {
        answer: Answer,
        port: u16,
        calls: AtomicUsize,
        accepted: Mutex<Vec<Value>>,
        violations: Mutex<Vec<String>>,
    }

    pub struct TencentCloudStandIn {
        state: Arc<State>,
        addr: SocketAddr,
        handle: ServerHandle,
    }

    impl TencentCloudStandIn {
        pub async fn start(answer: Answer) -> Self {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let state = Arc::new(State {
                answer,
                port: addr.port(),
                calls: AtomicUsize::new(0),
                accepted: Mutex::new(Vec::new()),
                violations: Mutex::new(Vec::new()),
            });
            let data = web::Data::from(Arc::clone(&state));
            let (tx, rx) = tokio::sync::oneshot::channel();
            std::thread::spawn(move || {
                actix_web::rt::System::new().block_on(async move {
                    let server = HttpServer::new(move || {
                        App::new()
                            .app_data(data.clone())
                            .default_service(web::to(send_sms))
                    })
                    .workers(1)
                    .disable_signals()
                    .shutdown_timeout(0)
                    .listen(listener)
                    .unwrap()
                    .run();
                    tx.send(server.handle()).unwrap();
                    let _ = server.await;
                });
            });
            let handle = rx.await.unwrap();
            Self {
                state,
                addr,
                handle,
            }
        }

        pub fn url(&self) -> String {
            format!("http://{}/", self.addr)
        }

        /// Every request received.
        pub fn calls(&self) -> usize {
            self.state.calls.load(Ordering::SeqCst)
        }

        /// The bodies of the requests that passed every check.
        pub fn accepted(&self) -> Vec<Value> {
            self.state.accepted.lock().unwrap().clone()
        }

        /// What was wrong with the requests that failed a check.
        pub fn violations(&self) -> Vec<String> {
            self.state.violations.lock().unwrap().clone()
        }
    }

    impl Drop for TencentCloudStandIn {
        fn drop(&mut self) {
            drop(self.handle.stop(false));
        }
    }

    async fn send_sms(
        request: HttpRequest,
        body: web::Bytes,
        state: web::Data<State>,
    ) -> HttpResponse {
        state.calls.fetch_add(1, Ordering::SeqCst);
        match state.answer {
            Answer::Status(status) => {
                return HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                    .content_type("text/html")
                    .body("<html><body>502 Bad Gateway</body></html>");
            }
            Answer::Garbage => {
                return HttpResponse::Ok()
                    .content_type("text/html")
                    .body("<html>portal login</html>");
            }
            Answer::Ok | Answer::NotSent(..) => {}
        }
        if let Err((code, message, violation)) = check(&request, &body, state.port) {
            state.violations.lock().unwrap().push(violation);
            return tencent_json(json!({
                "Error": {"Code": code, "Message": message},
                "RequestId": REQUEST_ID,
            }));
        }
        let Ok(sent): Result<Value, _> = serde_json::from_slice(&body) else {
            state
                .violations
                .lock()
                .unwrap()
                .push("body is not JSON".into());
            return tencent_json(json!({
                "Error": {"Code": "FailedOperation.FailResolvePacket", "Message": "parse error"},
                "RequestId": REQUEST_ID,
            }));
        };
        let phone = sent["PhoneNumberSet"][0].clone();
        state.accepted.lock().unwrap().push(sent);
        let status = match state.answer {
            Answer::NotSent(code, message) => json!({
                "SerialNo": "", "PhoneNumber": phone, "Fee": 0, "SessionContext": "",
                "Code": code, "Message": message, "IsoCode": "CN",
            }),
            _ => json!({
                "SerialNo": "5000:1045710669157053657849499619", "PhoneNumber": phone, "Fee": 1,
                "SessionContext": "", "Code": "Ok", "Message": "send success", "IsoCode": "CN",
            }),
        };
        tencent_json(json!({"SendStatusSet": [status], "RequestId": REQUEST_ID}))
    }

    /// Tencent Cloud answers HTTP 200 whatever the outcome.
    fn tencent_json(response: Value) -> HttpResponse {
        HttpResponse::Ok().json(json!({ "Response": response }))
    }

    type Refusal = (&'static str, &'static str, String);

    /// The checks Tencent Cloud makes, each failing as Tencent Cloud does.
    fn check(request: &HttpRequest, body: &[u8], port: u16) -> Result<(), Refusal> {
        let header = |name: &str| -> Result<&str, Refusal> {
            request
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .ok_or((
                    "MissingParameter",
                    "missing header",
                    format!("no {name} header"),
                ))
        };
        let expect = |name: &str, want: &str| -> Result<(), Refusal> {
            let got = header(name)?;
            if got == want {
                Ok(())
            } else {
                Err((
                    "InvalidParameter",
                    "bad header",
                    format!("{name}: {got:?}, want {want:?}"),
                ))
            }
        };
        if request.method() != actix_web::http::Method::POST || request.path() != "/" {
            return Err((
                "InvalidAction",
                "bad request",
                format!("{} {}", request.method(), request.path()),
            ));
        }
        expect("content-type", "application/json; charset=utf-8")?;
        expect("host", &format!("127.0.0.1:{port}"))?;
        expect("x-tc-action", "SendSms")?;
        expect("x-tc-version", "2021-01-11")?;
        expect("x-tc-region", REGION)?;
        let timestamp: i64 = header("x-tc-timestamp")?.parse().map_err(|_| {
            (
                "InvalidParameter",
                "bad timestamp",
                "X-TC-Timestamp is not a number".to_owned(),
            )
        })?;
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        if (now - timestamp).abs() > 300 {
            return Err((
                "AuthFailure.SignatureExpire",
                "signature expired",
                format!("timestamp {timestamp}"),
            ));
        }

        let authorization = header("authorization")?;
        let bad = |what: &str| {
            (
                "AuthFailure.InvalidAuthorization",
                "bad Authorization",
                format!("{what}: {authorization}"),
            )
        };
        let rest = authorization
            .strip_prefix("TC3-HMAC-SHA256 Credential=")
            .ok_or_else(|| bad("not TC3-HMAC-SHA256"))?;
        let (credential, rest) = rest
            .split_once(", SignedHeaders=")
            .ok_or_else(|| bad("no SignedHeaders"))?;
        let (signed_headers, signature) = rest
            .split_once(", Signature=")
            .ok_or_else(|| bad("no Signature"))?;
        let mut parts = credential.split('/');
        let (Some(secret_id), Some(date), Some(service), Some("tc3_request"), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(bad("credential is not id/date/service/tc3_request"));
        };
        if secret_id != SECRET_ID {
            return Err((
                "AuthFailure.SecretIdNotFound",
                "secret id not found",
                secret_id.to_owned(),
            ));
        }
        let utc = time::OffsetDateTime::from_unix_timestamp(timestamp)
            .unwrap()
            .date();
        let want_date = format!(
            "{:04}-{:02}-{:02}",
            utc.year(),
            u8::from(utc.month()),
            utc.day()
        );
        if date != want_date || service != "sms" {
            return Err(bad("scope is not today's (UTC) sms"));
        }
        let names: Vec<&str> = signed_headers.split(';').collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        if sorted != names
            || !["content-type", "host", "x-tc-action"]
                .iter()
                .all(|h| names.contains(h))
        {
            return Err(bad(
                "SignedHeaders must be sorted and cover content-type, host and x-tc-action",
            ));
        }

        // Signature v3, step by step, from the documentation.
        let mut canonical_headers = String::new();
        for name in &names {
            let value = header(name)?.trim().to_ascii_lowercase();
            canonical_headers.push_str(&format!("{name}:{value}\n"));
        }
        let canonical_request = format!(
            "POST\n/\n\n{canonical_headers}\n{signed_headers}\n{}",
            hex(&Sha256::digest(body))
        );
        let string_to_sign = format!(
            "TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{}",
            hex(&Sha256::digest(canonical_request.as_bytes()))
        );
        let secret_date = hmac(format!("TC3{SECRET_KEY}").as_bytes(), date.as_bytes());
        let secret_service = hmac(&secret_date, b"sms");
        let secret_signing = hmac(&secret_service, b"tc3_request");
        let expected = hex(&hmac(&secret_signing, string_to_sign.as_bytes()));
        if signature != expected {
            return Err((
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
                "signature does not match".to_owned(),
            ));
        }
        Ok(())
    }

    fn hmac(key: &[u8], message: &[u8]) -> Vec<u8> {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(message);
        mac.finalize().into_bytes().to_vec()
    }

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }
}

//! QqClient against a stand-in QQ over real HTTP.

use std::error::Error as _;
use std::time::{Duration, Instant};

use qqlogin::domain::OpenId;
use qqlogin::qq::stand_in::{
    DEFAULT_NICKNAME, DEFAULT_OPENID, DEV_APP_ID, Endpoint, Fault, Running, StandIn,
};
use qqlogin::qq::{AccessToken, Display, QqClient, QqConfig, QqError};
use secrecy::{ExposeSecret, SecretString};
use url::Url;

const APP_ID: &str = "101234567";
const APP_KEY: &str = "fakeAppKey0123456789abcdefSECRET";
const REDIRECT_URI: &str = "https://site.example/auth/qq/callback?from=%2Fhome";
const OPENID: &str = "ABCDEF0123456789ABCDEF0123456789";

/// Upper bound for "returned promptly" checks: far above any real latency
/// here, far below the 5 s the fake is told to stall.
const PROMPT: Duration = Duration::from_secs(3);

fn config(graph: &str, timeout: Duration) -> QqConfig {
    QqConfig {
        app_id: APP_ID.to_owned(),
        app_key: SecretString::from(APP_KEY),
        redirect_uri: Url::parse(REDIRECT_URI).unwrap(),
        graph_url: Url::parse(graph).unwrap(),
        authorize_base: Url::parse(graph).unwrap(),
        timeout,
        use_unionid: false,
    }
}

fn client(fake: &Running) -> QqClient {
    client_with_timeout(fake, Duration::from_secs(5))
}

fn client_with_timeout(fake: &Running, timeout: Duration) -> QqClient {
    QqClient::new(config(&fake.base_url, timeout)).unwrap()
}

async fn start() -> Running {
    StandIn::new(APP_ID, APP_KEY).start().await.unwrap()
}

fn api_code(result: Result<impl std::fmt::Debug, QqError>) -> i64 {
    match result {
        Err(QqError::Api { code, .. }) => code,
        other => panic!("expected QqError::Api, got {other:?}"),
    }
}

#[tokio::test]
async fn happy_path_json_formats() {
    let fake = start().await;
    let qq = client(&fake);
    let code = fake.grant(OPENID, "Peter");

    let identity = qq.identify(&code).await.unwrap();
    assert_eq!(identity.openid.as_str(), OPENID);
    let info = qq
        .fetch_user_info(&identity.access_token, &identity.openid)
        .await
        .unwrap();
    assert_eq!(info.nickname, "Peter");

    let calls = fake.calls();
    assert_eq!(calls.len(), 3, "{calls:?}");
    let token = &calls[0];
    assert_eq!(token.path, "/oauth2.0/token");
    assert_eq!(token.param("grant_type"), Some("authorization_code"));
    assert_eq!(token.param("client_id"), Some(APP_ID));
    assert_eq!(token.param("client_secret"), Some(APP_KEY));
    assert_eq!(token.param("code"), Some(code.as_str()));
    assert_eq!(token.param("redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(token.param("fmt"), Some("json"));
    let me = &calls[1];
    assert_eq!(me.path, "/oauth2.0/me");
    assert_eq!(me.param("fmt"), Some("json"));
    assert_eq!(
        me.param("access_token"),
        Some(identity.access_token.expose_secret())
    );
    let info = &calls[2];
    assert_eq!(info.path, "/user/get_user_info");
    assert_eq!(info.param("oauth_consumer_key"), Some(APP_ID));
    assert_eq!(info.param("openid"), Some(OPENID));
}

#[tokio::test]
async fn happy_path_legacy_formats() {
    // QQ has answered url-encoded tokens and JSONP /me even when asked for
    // JSON; the client must cope end to end.
    let fake = start().await;
    fake.set_ignore_fmt(true);
    let qq = client(&fake);
    let code = fake.grant(OPENID, "小明");
    let identity = qq.identify(&code).await.unwrap();
    assert_eq!(identity.openid.as_str(), OPENID);
    let info = qq
        .fetch_user_info(&identity.access_token, &identity.openid)
        .await
        .unwrap();
    assert_eq!(info.nickname, "小明");
}

#[tokio::test]
async fn legacy_format_errors_are_parsed() {
    let fake = start().await;
    fake.set_ignore_fmt(true);
    let qq = client(&fake);
    let code = fake.grant(OPENID, "P");
    qq.identify(&code).await.unwrap();
    // JSONP error from the token endpoint.
    assert_eq!(api_code(qq.identify(&code).await), 100_020);
    // JSONP error from /me.
    let bogus = AccessToken::new(SecretString::from("0000"));
    assert_eq!(api_code(qq.fetch_openid(&bogus).await), 100_016);
}

#[tokio::test]
async fn graph_url_with_path_prefix() {
    let fake = start().await;
    let qq = QqClient::new(config(
        &format!("{}/dev/qq", fake.base_url),
        Duration::from_secs(5),
    ))
    .unwrap();
    let code = fake.grant(OPENID, "P");
    qq.identify(&code).await.unwrap();
    assert_eq!(fake.calls()[0].path, "/dev/qq/oauth2.0/token");
    assert_eq!(fake.calls_to("/dev/qq/oauth2.0/me"), 1);
}

#[tokio::test]
async fn authorize_round_trip() {
    let fake = start().await;
    let qq = client(&fake);
    let authorize = qq.authorize_url("state-123", Display::Mobile);

    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = browser.get(authorize).send().await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    let back = Url::parse(location).unwrap();
    assert!(location.starts_with("https://site.example/auth/qq/callback?from=%2Fhome&"));
    let param = |name: &str| {
        back.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(param("state"), "state-123");

    let identity = qq.identify(&param("code")).await.unwrap();
    assert_eq!(identity.openid.as_str(), DEFAULT_OPENID);
    let info = qq
        .fetch_user_info(&identity.access_token, &identity.openid)
        .await
        .unwrap();
    assert_eq!(info.nickname, DEFAULT_NICKNAME);

    let calls = fake.calls();
    assert_eq!(calls[0].param("display"), Some("mobile"));
    assert_eq!(calls[0].param("scope"), Some("get_user_info"));
    // QQ requires the very same redirect_uri in both requests.
    assert_eq!(
        calls[0].param("redirect_uri"),
        calls[1].param("redirect_uri")
    );
}

#[tokio::test]
async fn the_development_page_sends_back_only_to_the_registered_redirect_uri() {
    let fake = StandIn::development(
        SecretString::from(APP_KEY),
        &[&Url::parse(REDIRECT_URI).unwrap()],
    )
    .start()
    .await
    .unwrap();
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let consent = |redirect_uri: &'static str, nickname: &'static str| {
        browser
            .post(format!("{}/oauth2.0/authorize", fake.base_url))
            .form(&[
                ("client_id", DEV_APP_ID),
                ("redirect_uri", redirect_uri),
                ("state", "s"),
                ("nickname", nickname),
            ])
            .send()
    };

    let elsewhere = consent("https://evil.example/callback", "小明")
        .await
        .unwrap();
    assert!(elsewhere.headers().get("location").is_none());
    assert!(elsewhere.text().await.unwrap().contains("100010"));
    let nameless = consent(REDIRECT_URI, "  ").await.unwrap();
    assert!(nameless.headers().get("location").is_none());

    let back = consent(REDIRECT_URI, " 小明 ").await.unwrap();
    assert_eq!(back.status(), 302);
    let location = back.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with(&format!("{REDIRECT_URI}&code=")),
        "{location}"
    );
    assert!(location.ends_with("&state=s"), "{location}");
}

#[tokio::test]
async fn the_benchmark_stand_in_takes_any_made_up_code_again_and_again() {
    let fake = StandIn::benchmark(APP_ID, APP_KEY).start().await.unwrap();
    let qq = client(&fake);
    let code = format!("c-{OPENID}-7");
    for _ in 0..2 {
        let identity = qq.identify(&code).await.unwrap();
        assert_eq!(identity.openid.as_str(), OPENID);
        let info = qq
            .fetch_user_info(&identity.access_token, &identity.openid)
            .await
            .unwrap();
        assert_eq!(info.nickname, "bench");
    }
    assert_eq!(api_code(qq.identify("made-up").await), 100_019);
    assert!(fake.calls().is_empty(), "the benchmark's keeps no record");
}

#[tokio::test]
async fn me_adds_the_unionid_when_asked() {
    let fake = start().await;
    let qq = client(&fake);
    qq.identify(&fake.grant(OPENID, "P")).await.unwrap();
    let token = fake.issued_tokens().remove(0);
    let me = |unionid: &'static str| {
        reqwest::Client::new()
            .get(format!("{}/oauth2.0/me", fake.base_url))
            .query(&[("access_token", token.as_str()), ("unionid", unionid)])
            .send()
    };
    let with = me("1").await.unwrap().text().await.unwrap();
    assert_eq!(
        with,
        format!(
            "callback( {{\"client_id\":\"{APP_ID}\",\"openid\":\"{OPENID}\",\"unionid\":\"UID_{OPENID}\"}} );\n"
        )
    );
    let without = me("0").await.unwrap().text().await.unwrap();
    assert!(!without.contains("unionid"), "{without}");
}

#[tokio::test]
async fn reused_code_is_rejected() {
    let fake = start().await;
    let qq = client(&fake);
    let code = fake.grant(OPENID, "P");
    qq.identify(&code).await.unwrap();
    let err = qq.identify(&code).await.unwrap_err();
    assert_eq!(err.qq_code(), Some(100_020));
    assert!(err.is_rejected_code());
    assert_eq!(
        err.to_string(),
        "QQ refused the request with code 100020: code is reused error"
    );
}

#[tokio::test]
async fn unknown_and_expired_codes_are_rejected() {
    let fake = start().await;
    let qq = client(&fake);
    let err = qq.exchange_code("0123456789ABCDEF").await.unwrap_err();
    assert_eq!(err.qq_code(), Some(100_019));
    assert!(err.is_rejected_code());

    let code = fake.grant(OPENID, "P");
    fake.expire_codes();
    assert_eq!(api_code(qq.exchange_code(&code).await), 100_019);
}

#[tokio::test]
async fn wrong_app_key_is_not_a_restart() {
    let fake = start().await;
    let mut cfg = config(&fake.base_url, Duration::from_secs(5));
    cfg.app_key = SecretString::from("not-the-key");
    let qq = QqClient::new(cfg).unwrap();
    let err = qq.identify(&fake.grant(OPENID, "P")).await.unwrap_err();
    assert_eq!(err.qq_code(), Some(100_009));
    assert!(!err.is_rejected_code());
}

#[tokio::test]
async fn each_fault_maps_to_its_variant() {
    let fake = start().await;
    let qq = client(&fake);
    type Check = fn(&QqError) -> bool;
    let cases: Vec<(Fault, Check)> = vec![
        (Fault::Status(500), |e| matches!(e, QqError::Status(500))),
        (Fault::Status(503), |e| matches!(e, QqError::Status(503))),
        (Fault::Status(404), |e| matches!(e, QqError::Status(404))),
        // A redirect is not followed; it is just an unexpected status.
        (Fault::Status(302), |e| matches!(e, QqError::Status(302))),
        (Fault::Garbage, |e| matches!(e, QqError::Malformed(_))),
        (Fault::Html, |e| matches!(e, QqError::Malformed(_))),
        (Fault::Empty, |e| matches!(e, QqError::Malformed(_))),
        (Fault::Huge, |e| matches!(e, QqError::TooLarge)),
        (Fault::HugeSized, |e| matches!(e, QqError::TooLarge)),
        (
            Fault::ApiError {
                code: 100_010,
                description: "redirect uri is illegal".to_owned(),
            },
            |e| matches!(e, QqError::Api { code: 100_010, .. }) && !e.is_rejected_code(),
        ),
        (Fault::MeWrongClientId, |e| {
            matches!(e, QqError::WrongClient)
        }),
    ];
    for (fault, check) in cases {
        fake.set_fault(fault.clone());
        let started = Instant::now();
        let result = qq.identify(&fake.grant(OPENID, "P")).await;
        assert!(started.elapsed() < PROMPT, "{fault:?} took too long");
        match result {
            Err(e) => assert!(check(&e), "{fault:?} gave {e:?}"),
            Ok(id) => panic!("{fault:?} gave success {id:?}"),
        }
    }
}

#[tokio::test]
async fn fault_on_me_only() {
    let fake = start().await;
    fake.set_fault_on(Endpoint::Me, Fault::Status(502));
    let qq = client(&fake);
    let err = qq.identify(&fake.grant(OPENID, "P")).await.unwrap_err();
    assert!(matches!(err, QqError::Status(502)), "{err:?}");
    assert_eq!(fake.calls_to("/oauth2.0/token"), 1);
    assert_eq!(fake.calls_to("/oauth2.0/me"), 1);
}

#[tokio::test]
async fn user_info_errors_come_with_http_200() {
    let fake = start().await;
    let qq = client(&fake);
    let identity = qq.identify(&fake.grant(OPENID, "P")).await.unwrap();

    fake.set_fault_on(Endpoint::UserInfo, Fault::UserInfoError);
    let err = qq
        .fetch_user_info(&identity.access_token, &identity.openid)
        .await
        .unwrap_err();
    assert_eq!(err.qq_code(), Some(-1));
    assert!(!err.is_rejected_code());

    fake.set_fault_on(Endpoint::UserInfo, Fault::None);
    let bogus = AccessToken::new(SecretString::from("0000"));
    let err = qq
        .fetch_user_info(&bogus, &identity.openid)
        .await
        .unwrap_err();
    assert_eq!(err.qq_code(), Some(1002));
    assert!(err.is_rejected_code());

    let someone_else = OpenId::parse("FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF").unwrap();
    let err = qq
        .fetch_user_info(&identity.access_token, &someone_else)
        .await
        .unwrap_err();
    assert_eq!(err.qq_code(), Some(-1));
}

#[tokio::test]
async fn stalled_token_endpoint_times_out() {
    let fake = start().await;
    fake.set_fault_on(Endpoint::Token, Fault::Delay(Duration::from_secs(5)));
    let qq = client_with_timeout(&fake, Duration::from_millis(300));
    let started = Instant::now();
    let err = qq.identify(&fake.grant(OPENID, "P")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, QqError::Timeout), "{err:?}");
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < PROMPT, "{took:?}");
}

#[tokio::test]
async fn login_budget_is_shared_by_both_calls() {
    // Each call alone fits in the 400 ms timeout; together they do not, and
    // identify must give up at the budget rather than allow 400 ms per call.
    let fake = start().await;
    fake.set_fault(Fault::Delay(Duration::from_millis(250)));
    let qq = client_with_timeout(&fake, Duration::from_millis(400));
    let started = Instant::now();
    let err = qq.identify(&fake.grant(OPENID, "P")).await.unwrap_err();
    let took = started.elapsed();
    assert!(matches!(err, QqError::Timeout), "{err:?}");
    assert!(took < PROMPT, "{took:?}");
    assert_eq!(fake.calls_to("/oauth2.0/me"), 1);
}

#[tokio::test]
async fn stalled_user_info_times_out_per_request() {
    let fake = start().await;
    let qq = client_with_timeout(&fake, Duration::from_millis(300));
    let identity = qq.identify(&fake.grant(OPENID, "P")).await.unwrap();
    fake.set_fault_on(Endpoint::UserInfo, Fault::Delay(Duration::from_secs(5)));
    let started = Instant::now();
    let err = qq
        .fetch_user_info(&identity.access_token, &identity.openid)
        .await
        .unwrap_err();
    assert!(matches!(err, QqError::Timeout), "{err:?}");
    assert!(started.elapsed() < PROMPT);
}

#[tokio::test]
async fn closed_port_is_unreachable() {
    // Bind then drop a listener, so the port is (almost certainly) closed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let qq = QqClient::new(config(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
    ))
    .unwrap();
    let err = qq.identify("CODE0123456789").await.unwrap_err();
    assert!(matches!(err, QqError::Unreachable { .. }), "{err:?}");
}

/// Everything an error could say about itself when logged.
fn everything_shown(err: &QqError) -> String {
    let mut shown = format!("{err}\n{err:?}\n");
    let mut source = err.source();
    while let Some(s) = source {
        shown.push_str(&format!("{s}\n{s:?}\n"));
        source = s.source();
    }
    shown
}

#[tokio::test]
async fn errors_never_show_code_token_or_key() {
    let fake = start().await;
    let qq = client_with_timeout(&fake, Duration::from_millis(300));
    let mut errors: Vec<(QqError, Vec<String>)> = Vec::new();

    // A description that echoes the secrets back must be scrubbed.
    let code = fake.grant(OPENID, "P");
    fake.set_fault_on(
        Endpoint::Token,
        Fault::ApiError {
            code: 100_019,
            description: format!("code {code} bad for key {APP_KEY}"),
        },
    );
    errors.push((qq.identify(&code).await.unwrap_err(), vec![code]));
    fake.set_fault_on(Endpoint::Token, Fault::None);

    let identity = qq.identify(&fake.grant(OPENID, "P")).await.unwrap();
    let token = identity.access_token.expose_secret().to_owned();
    fake.set_fault_on(
        Endpoint::UserInfo,
        Fault::ApiError {
            code: 1002,
            description: format!("token {token} expired"),
        },
    );
    errors.push((
        qq.fetch_user_info(&identity.access_token, &identity.openid)
            .await
            .unwrap_err(),
        vec![token.clone()],
    ));
    fake.set_fault_on(
        Endpoint::Me,
        Fault::ApiError {
            code: 100_016,
            description: format!("access token {token} check failed"),
        },
    );
    errors.push((
        qq.fetch_openid(&identity.access_token).await.unwrap_err(),
        vec![token.clone()],
    ));

    fake.clear_faults();
    for fault in [
        Fault::Status(500),
        Fault::Garbage,
        Fault::Html,
        Fault::Huge,
        Fault::MeWrongClientId,
        Fault::Delay(Duration::from_secs(5)),
    ] {
        fake.set_fault(fault);
        let code = fake.grant(OPENID, "P");
        errors.push((qq.identify(&code).await.unwrap_err(), vec![code]));
    }
    // A reqwest timeout (not the identify budget) on a URL holding a token.
    fake.set_fault(Fault::Delay(Duration::from_secs(5)));
    errors.push((
        qq.fetch_openid(&identity.access_token).await.unwrap_err(),
        vec![token.clone()],
    ));

    // A transport error, whose reqwest error once held the URL.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dead = QqClient::new(config(
        &format!("http://127.0.0.1:{port}"),
        Duration::from_secs(2),
    ))
    .unwrap();
    errors.push((
        dead.exchange_code("DEADC0DE0123456789").await.unwrap_err(),
        vec!["DEADC0DE0123456789".to_owned()],
    ));
    errors.push((
        dead.fetch_openid(&identity.access_token).await.unwrap_err(),
        vec![token.clone()],
    ));

    assert!(
        errors
            .iter()
            .any(|(e, _)| matches!(e, QqError::Unreachable { .. }))
    );
    assert!(errors.iter().any(|(e, _)| matches!(e, QqError::Timeout)));
    for (err, secrets) in &errors {
        let shown = everything_shown(err);
        for secret in secrets.iter().map(String::as_str).chain([APP_KEY]) {
            assert!(!shown.contains(secret), "{secret} leaked in {shown}");
        }
        // The socket address may appear (hyper's connect error names it);
        // the request URL, which carries the query, must not.
        for part in [
            "oauth2.0",
            "get_user_info",
            "client_secret",
            "access_token=",
        ] {
            assert!(!shown.contains(part), "URL leaked in {shown}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_share_one_client() {
    let fake = start().await;
    let qq = client(&fake);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let qq = qq.clone();
        let openid = format!("{i:032X}");
        let code = fake.grant(&openid, "P");
        tasks.push(tokio::spawn(async move {
            (qq.identify(&code).await.unwrap().openid, openid)
        }));
    }
    for task in tasks {
        let (got, want) = task.await.unwrap();
        assert_eq!(got.as_str(), want);
    }
}

#[actix_web::test]
async fn works_under_the_actix_runtime() {
    let fake = start().await;
    let qq = client(&fake);
    let identity = qq.identify(&fake.grant(OPENID, "P")).await.unwrap();
    assert_eq!(identity.openid.as_str(), OPENID);
}

/// A stand-in that reads each request and, the first `hang_ups` times,
/// closes the connection without a word (as a server closing an idle
/// keep-alive connection just as the request arrives); after that it
/// answers `answer` (QQ's JSONP or JSON body) to every request. Returns its
/// base URL and the request lines it read.
async fn hanging_up_stand_in(
    hang_ups: usize,
    answer: &'static str,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    let mut chunk = [0u8; 4096];
                    match conn.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                    // GET requests end with their head.
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
                        buf.drain(..end + 4);
                        let hang_up = {
                            let mut seen = log.lock().unwrap();
                            seen.push(head.lines().next().unwrap_or_default().to_owned());
                            seen.len() <= hang_ups
                        };
                        if hang_up {
                            return;
                        }
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\n\r\n{answer}",
                            answer.len()
                        );
                        if conn.write_all(reply.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (base, seen)
}

/// Asking QQ whose token this is changes nothing at QQ: when the connection
/// drops before the answer, the client asks once more and the login goes on.
#[tokio::test]
async fn me_is_asked_again_when_the_connection_drops_before_the_answer() {
    let me = "callback( {\"client_id\":\"101234567\",\"openid\":\"ABCDEF0123456789ABCDEF0123456789\"} );\n";
    let (base, seen) = hanging_up_stand_in(1, me).await;
    let qq = QqClient::new(config(&base, Duration::from_secs(5))).unwrap();
    let token = AccessToken::new(SecretString::from("SOMETOKEN"));

    let openid = qq.fetch_openid(&token).await.unwrap();
    assert_eq!(openid.as_str(), OPENID);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert!(
        seen.iter().all(|line| line.contains("/oauth2.0/me?")),
        "{seen:?}"
    );

    // Once only: a QQ that keeps hanging up is reported unreachable.
    let (base, seen) = hanging_up_stand_in(usize::MAX, me).await;
    let qq = QqClient::new(config(&base, Duration::from_secs(5))).unwrap();
    let err = qq.fetch_openid(&token).await.unwrap_err();
    assert!(matches!(err, QqError::Unreachable { .. }), "{err:?}");
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// The token exchange is never sent twice: QQ may have spent the code before
/// the connection dropped, and a second try could only fail or, worse, be
/// the second use of a code.
#[tokio::test]
async fn the_code_is_not_sent_again_when_the_connection_drops() {
    let token = "access_token=FE04************************CCE2&expires_in=7776000&refresh_token=88E4************************BE14";
    let (base, seen) = hanging_up_stand_in(1, token).await;
    let qq = QqClient::new(config(&base, Duration::from_secs(5))).unwrap();

    let err = qq.identify("THECODE").await.unwrap_err();
    assert!(matches!(err, QqError::Unreachable { .. }), "{err:?}");
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("/oauth2.0/token?"), "{seen:?}");
}

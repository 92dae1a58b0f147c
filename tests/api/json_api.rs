//! The JSON API (issue 3): the same QQ login as the pages, for single-page
//! front ends — the authorize URL, code exchange, binding, the login JWT,
//! CORS, and the accounts it shares with the pages.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use qqlogin::domain::{LocalPath, OpenId, Password};
use qqlogin::token::{Keys, PendingBind};
use reqwest::Method;
use reqwest::header::HeaderMap;
use secrecy::SecretString;
use serde_json::{Value, json};
use time::OffsetDateTime;
use url::Url;

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, Options, PASSWORD, SECRET_KEY, TestApp, new_openid, spawn_app,
    spawn_app_with, urlencode,
};
use qqlogin::qq::stand_in::{Endpoint, Fault};

const MOBILE: &str = "13800138000";
const OTHER_MOBILE: &str = "13900139000";
const FRONT_END: &str = "http://www.meiduo.site:8080";

/// An API answer: status, headers and the body parsed as JSON.
struct Answer {
    status: u16,
    headers: HeaderMap,
    body: Value,
}

impl Answer {
    async fn from(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("not JSON ({e}), status {status}: {text:?}"));
        Self {
            status,
            headers,
            body,
        }
    }

    /// The `message` of an error answer, which must be the body's only field.
    fn message(&self) -> &str {
        let object = self.body.as_object().expect("error body is an object");
        assert_eq!(object.len(), 1, "only a message: {}", self.body);
        object["message"].as_str().expect("message is a string")
    }

    fn str(&self, field: &str) -> &str {
        self.body[field]
            .as_str()
            .unwrap_or_else(|| panic!("{field} is not a string in {}", self.body))
    }

    /// The fields of the body, sorted.
    fn fields(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .body
            .as_object()
            .expect("body is an object")
            .keys()
            .map(String::as_str)
            .collect();
        keys.sort_unstable();
        keys
    }
}

/// A program calling the API: no cookies, no redirects followed.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn get(app: &TestApp, path: &str) -> Answer {
    Answer::from(client().get(app.url(path)).send().await.unwrap()).await
}

/// `GET /oauth/qq/users/?code=…` from a browser that began the login.
async fn exchange(app: &TestApp, code: &str) -> Answer {
    let (browser, _) = app.begin_api_login("/").await;
    exchange_in(app, &browser, code).await
}

/// `GET /oauth/qq/users/?code=…` from `browser`, with its cookies.
async fn exchange_in(app: &TestApp, browser: &Browser, code: &str) -> Answer {
    let path = format!("/oauth/qq/users/?code={}", urlencode(code));
    Answer::from(browser.client.get(app.url(&path)).send().await.unwrap()).await
}

/// `POST /oauth/qq/users/` with a JSON body, as a person would send it: for
/// a well-formed mobile without an account, with an SMS code asked for first.
async fn post_bind(app: &TestApp, body: &Value) -> Answer {
    let mut body = body.clone();
    if let (Some(mobile), Some(token)) = (body["mobile"].as_str(), body["access_token"].as_str())
        && body.get("sms_code").is_none()
        && let Ok(mobile) = qqlogin::domain::Mobile::parse(mobile)
        && !app.has_account(mobile.as_str()).await
        && let Some(code) = app.try_api_sms_code(token, mobile.as_str()).await
    {
        body["sms_code"] = Value::from(code);
    }
    post_bind_as_typed(app, &body).await
}

/// `POST /oauth/qq/users/` with exactly this JSON body.
async fn post_bind_as_typed(app: &TestApp, body: &Value) -> Answer {
    let response = client()
        .post(app.url("/oauth/qq/users/"))
        .json(body)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

/// `POST /oauth/qq/users/` with a raw body and content type.
async fn post_raw(app: &TestApp, content_type: &str, body: Vec<u8>) -> Answer {
    let response = client()
        .post(app.url("/oauth/qq/users/"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    Answer::from(response).await
}

fn bind_body(mobile: &str, password: &str, access_token: &str) -> Value {
    json!({ "mobile": mobile, "password": password, "access_token": access_token })
}

/// `GET /api/me` with this `Authorization` header, or none.
async fn me(app: &TestApp, authorization: Option<&str>) -> Answer {
    let mut request = client().get(app.url("/api/me"));
    if let Some(value) = authorization {
        request = request.header("authorization", value);
    }
    Answer::from(request.send().await.unwrap()).await
}

/// QQ vouches for `openid`; the API hands out a bind token for it.
async fn access_token_for(app: &TestApp, openid: &str) -> String {
    let code = app.qq.grant(openid, &format!("昵称{}", &openid[..4]));
    let answer = exchange(app, &code).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.fields(), ["access_token"], "{}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    answer.str("access_token").to_owned()
}

/// First QQ login of `openid` through the API, bound to a new account for `mobile`.
async fn api_sign_up(app: &TestApp, openid: &str, mobile: &str) -> Answer {
    let access_token = access_token_for(app, openid).await;
    let answer = post_bind(app, &bind_body(mobile, PASSWORD, &access_token)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
    answer
}

fn keys() -> Keys {
    Keys::derive(&SecretString::from(SECRET_KEY.to_owned()))
}

fn pending(openid: &str, browser: Option<&str>) -> PendingBind {
    PendingBind {
        id: qqlogin::secret::time_ordered_token(),
        openid: OpenId::parse(openid).unwrap(),
        nickname: None,
        next: LocalPath::home(),
        browser: browser.map(str::to_owned),
        unionid: None,
        avatar: None,
    }
}

/// A plain account (no QQ link), as the password login knows them.
async fn create_user(app: &TestApp, mobile: &'static str, password: &str) -> i64 {
    let hasher = qqlogin::password::Hasher::new(1, 8, qqlogin::password::Scheme::Argon2id).unwrap();
    let password = Password::parse(SecretString::from(password.to_owned())).unwrap();
    let hash = hasher.hash(password).await.unwrap();
    let user = app
        .db
        .run(move |conn| qqlogin::db::user::insert(conn, mobile, &hash))
        .await
        .unwrap();
    user.id
}

fn query_of(url: &Url) -> Vec<(String, String)> {
    url.query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

// ---------------------------------------------------------------------------
// The authorize URL

async fn login_url_leads_through_the_service_to_qq_with_next_as_state(backend: Backend) {
    let app = spawn_app(backend).await;

    let answer = get(&app, "/oauth/qq/statues/?next=%2Forders%3Fid%3D7").await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.fields(), ["login_url"]);
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(
        answer.str("login_url"),
        format!("{}/oauth/qq/api/login?next=%2Forders%3Fid%3D7", app.address),
        "the first hop is the service's own, on the host the API was asked at"
    );

    let (browser, url) = app.begin_api_login("/orders?id=7").await;
    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{}/oauth2.0/authorize", app.qq.base_url).as_str())
    );
    let mut query = query_of(&url);
    query.sort();
    let mut expected = vec![
        ("client_id".to_owned(), crate::helpers::APP_ID.to_owned()),
        (
            "redirect_uri".to_owned(),
            app.config.redirect_uri.as_str().to_owned(),
        ),
        ("response_type".to_owned(), "code".to_owned()),
        ("scope".to_owned(), "get_user_info".to_owned()),
        ("state".to_owned(), "/orders?id=7".to_owned()),
    ];
    expected.sort();
    assert_eq!(query, expected);
    assert!(
        browser
            .cookie_header(&app.address)
            .contains("qqlogin_api_oauth="),
        "the hop leaves the attempt's cookie"
    );
    assert!(app.qq.calls().is_empty(), "building a URL calls no one");
}

async fn login_url_alias_and_unsafe_next(backend: Backend) {
    let app = spawn_app(backend).await;
    let state_of = |url: &Url| {
        query_of(url)
            .into_iter()
            .find(|(k, _)| k == "state")
            .map(|(_, v)| v)
    };

    let alias = get(&app, "/oauth/qq/authorization/?next=%2Fcart").await;
    assert_eq!(alias.status, 200, "{}", alias.body);
    let (_, url) = app.begin_api_login("/cart").await;
    assert_eq!(state_of(&url).as_deref(), Some("/cart"));

    for unsafe_next in [
        "//evil.com",
        "https://evil.com/",
        "/\\evil.com",
        "/\t/evil.com",
        "evil",
    ] {
        for route in ["/oauth/qq/statues/", "/oauth/qq/authorization/"] {
            let answer = get(&app, &format!("{route}?next={}", urlencode(unsafe_next))).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            assert!(
                answer.str("login_url").ends_with("?next=%2F"),
                "{route} {unsafe_next}: {}",
                answer.body
            );
        }
        let (_, url) = app.begin_api_login(unsafe_next).await;
        assert_eq!(state_of(&url).as_deref(), Some("/"), "{unsafe_next}");
    }
    let no_next = get(&app, "/oauth/qq/statues/").await;
    assert!(no_next.str("login_url").ends_with("?next=%2F"));
}

backend_tests!(
    login_url_leads_through_the_service_to_qq_with_next_as_state,
    login_url_alias_and_unsafe_next
);

// ---------------------------------------------------------------------------
// Exchanging the code

async fn no_code_is_400_and_calls_no_one(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/oauth/qq/users/",
        "/oauth/qq/users/?code=",
        "/oauth/qq/users/?state=x",
    ] {
        let answer = get(&app, path).await;
        assert_eq!(answer.status, 400, "{path}: {}", answer.body);
        assert!(answer.message().contains("code"), "{}", answer.message());
    }
    assert!(app.qq.calls().is_empty());
}

async fn odd_queries_still_answer_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let code = app.qq.grant(&openid, "小明");

    // A repeated parameter: the first one counts, and the answer is still JSON.
    let (browser, _) = app.begin_api_login("/").await;
    let path = format!("/oauth/qq/users/?code={code}&code=other");
    let twice = Answer::from(browser.client.get(app.url(&path)).send().await.unwrap()).await;
    assert_eq!(twice.status, 200, "{}", twice.body);
    let pending = keys()
        .verify_bind_token(twice.str("access_token"), OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(pending.openid.as_str(), openid);

    let next_twice = get(&app, "/oauth/qq/statues/?next=%2Fa&next=%2F%2Fevil.com").await;
    assert_eq!(next_twice.status, 200, "{}", next_twice.body);
    assert!(
        next_twice.str("login_url").ends_with("?next=%2Fa"),
        "{}",
        next_twice.body
    );

    // A code no QQ code looks like is refused without bothering QQ.
    let calls = app.qq.calls().len();
    for bad in ["a b", "x\n", &"A".repeat(600)] {
        let (browser, _) = app.begin_api_login("/").await;
        let answer = exchange_in(&app, &browser, bad).await;
        assert_eq!(
            answer.status, 400,
            "the client's mistake: {bad}: {}",
            answer.body
        );
        assert!(!answer.message().is_empty());
    }
    assert_eq!(app.qq.calls().len(), calls);
}

async fn unbound_openid_gets_a_bind_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();

    let token = access_token_for(&app, &openid).await;

    let pending = keys()
        .verify_bind_token(&token, OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(pending.openid.as_str(), openid);
    assert_eq!(pending.browser, None, "an API token belongs to no browser");
    assert_eq!(
        pending.nickname.as_deref(),
        Some(&*format!("昵称{}", &openid[..4]))
    );
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 1);
    assert_eq!(app.qq.calls_to("/oauth2.0/me"), 1);
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn bound_openid_gets_a_login_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let signed_up = api_sign_up(&app, &openid, MOBILE).await;
    let user_id = signed_up.body["user_id"].as_i64().unwrap();
    let info_calls = app.qq.calls_to("/user/get_user_info");

    let code = app.qq.grant(&openid, "whoever");
    let answer = exchange(&app, &code).await;

    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.fields(), ["token", "user_id", "username"]);
    assert_eq!(answer.str("username"), MOBILE);
    assert_eq!(answer.body["user_id"].as_i64(), Some(user_id));
    assert_eq!(answer.headers["cache-control"], "no-store");
    let token = answer.str("token");
    assert_eq!(
        keys().verify_login_token(token, OffsetDateTime::now_utc()),
        Ok(user_id)
    );
    assert_eq!(
        app.qq.calls_to("/user/get_user_info"),
        info_calls,
        "a returning user needs no nickname"
    );
    let who = me(&app, Some(&format!("JWT {token}"))).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.body["user_id"].as_i64(), Some(user_id));
}

async fn a_reused_code_is_503_without_qq_error_code(backend: Backend) {
    let app = spawn_app(backend).await;
    let code = app.qq.grant(&new_openid(), "小明");
    assert_eq!(exchange(&app, &code).await.status, 200);

    let again = exchange(&app, &code).await;

    assert_eq!(again.status, 503, "{}", again.body);
    let message = again.message();
    assert!(!message.is_empty());
    assert!(!message.contains("100020"), "{message}");
    assert!(
        !message.contains("reused"),
        "QQ's own text stays in the log: {message}"
    );
    assert_eq!(app.qq.calls_to("/oauth2.0/token"), 2);
    assert_eq!(
        app.qq.calls_to("/oauth2.0/me"),
        1,
        "no openid without a token"
    );
}

async fn an_expired_or_refused_code_is_503(backend: Backend) {
    let app = spawn_app(backend).await;

    let code = app.qq.grant(&new_openid(), "小明");
    app.qq.expire_codes();
    let expired = exchange(&app, &code).await;
    assert_eq!(expired.status, 503, "{}", expired.body);
    assert!(
        !expired.message().contains("100019"),
        "{}",
        expired.message()
    );

    app.qq.set_fault_on(
        Endpoint::Me,
        Fault::ApiError {
            code: 100_016,
            description: "access token check failed".into(),
        },
    );
    let refused = exchange(&app, &app.qq.grant(&new_openid(), "小明")).await;
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert!(
        !refused.message().contains("100016"),
        "{}",
        refused.message()
    );
    assert!(!refused.message().contains("check failed"));
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn qq_failures_are_503(backend: Backend) {
    let app = spawn_app(backend).await;
    let faults = [
        (None, Fault::Status(500)),
        (None, Fault::Garbage),
        (None, Fault::Html),
        (Some(Endpoint::Me), Fault::Status(502)),
        (Some(Endpoint::Me), Fault::Garbage),
        (Some(Endpoint::Token), Fault::Empty),
    ];
    for (endpoint, fault) in faults {
        app.qq.clear_faults();
        match endpoint {
            Some(endpoint) => app.qq.set_fault_on(endpoint, fault.clone()),
            None => app.qq.set_fault(fault.clone()),
        }
        let answer = exchange(&app, &app.qq.grant(&new_openid(), "小明")).await;
        assert_eq!(
            answer.status, 503,
            "{endpoint:?} {fault:?}: {}",
            answer.body
        );
        assert!(!answer.message().is_empty());
        assert!(!answer.message().contains("500") && !answer.message().contains("502"));
    }
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn a_slow_qq_is_503_within_the_timeout(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            qq_timeout: Duration::from_millis(300),
            ..Default::default()
        },
    )
    .await;
    for endpoint in [Endpoint::Token, Endpoint::Me] {
        app.qq.clear_faults();
        app.qq
            .set_fault_on(endpoint, Fault::Delay(Duration::from_secs(5)));
        let started = Instant::now();
        let answer = exchange(&app, &app.qq.grant(&new_openid(), "小明")).await;
        let took = started.elapsed();
        assert_eq!(answer.status, 503, "{endpoint:?}: {}", answer.body);
        assert!(!answer.message().is_empty());
        assert!(took < Duration::from_secs(3), "{endpoint:?} took {took:?}");
    }
}

async fn a_failing_user_info_still_hands_out_a_bind_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.qq.set_fault_on(Endpoint::UserInfo, Fault::Status(500));
    let openid = new_openid();

    let token = access_token_for(&app, &openid).await;

    let pending = keys()
        .verify_bind_token(&token, OffsetDateTime::now_utc())
        .unwrap();
    assert_eq!(pending.openid.as_str(), openid);
    assert_eq!(pending.nickname, None);
}

backend_tests!(
    no_code_is_400_and_calls_no_one,
    odd_queries_still_answer_json,
    unbound_openid_gets_a_bind_token,
    bound_openid_gets_a_login_token,
    a_reused_code_is_503_without_qq_error_code,
    an_expired_or_refused_code_is_503,
    qq_failures_are_503,
    a_slow_qq_is_503_within_the_timeout,
    a_failing_user_info_still_hands_out_a_bind_token
);

// ---------------------------------------------------------------------------
// Binding

async fn binding_a_new_mobile_creates_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let access_token = access_token_for(&app, &openid).await;

    let answer = post_bind(&app, &bind_body(MOBILE, PASSWORD, &access_token)).await;

    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(
        answer.fields(),
        ["id", "mobile", "token", "user_id", "username"]
    );
    assert_eq!(answer.body["id"], answer.body["user_id"]);
    assert_eq!(answer.str("username"), MOBILE);
    assert_eq!(answer.str("mobile"), MOBILE);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let user_id = answer.body["user_id"].as_i64().unwrap();
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
    let stored = app
        .db
        .run(|conn| {
            qqlogin::db::user::find_by_mobile_with_link(conn, crate::helpers::APP_ID, MOBILE)
        })
        .await
        .unwrap()
        .expect("the account exists");
    assert_eq!(stored.0.id, user_id);
    assert_eq!(stored.0.username, MOBILE);
    assert_eq!(stored.1.as_deref(), Some(openid.as_str()));
    assert!(!stored.0.password_hash.contains(PASSWORD), "stored hashed");

    let who = me(&app, Some(&format!("JWT {}", answer.str("token")))).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(
        who.body,
        json!({ "user_id": user_id, "username": MOBILE, "mobile": MOBILE })
    );
}

async fn binding_accepts_a_form_encoded_body(backend: Backend) {
    let app = spawn_app(backend).await;
    let access_token = access_token_for(&app, &new_openid()).await;
    let code = app.api_sms_code(&access_token, MOBILE).await;

    let response = client()
        .post(app.url("/oauth/qq/users/"))
        .form(&[
            ("mobile", "+86 13800138000"),
            ("password", PASSWORD),
            ("sms_code", code.as_str()),
            ("access_token", access_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    let answer = Answer::from(response).await;

    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.str("username"), MOBILE, "the mobile is normalised");
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn binding_an_existing_mobile_with_its_password_links_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let user_id = create_user(&app, MOBILE, PASSWORD).await;
    let openid = new_openid();
    let access_token = access_token_for(&app, &openid).await;

    let answer = post_bind(&app, &bind_body(MOBILE, PASSWORD, &access_token)).await;

    assert_eq!(answer.status, 201, "{}", answer.body);
    assert_eq!(answer.body["user_id"].as_i64(), Some(user_id));
    assert_eq!(answer.str("username"), MOBILE);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
    // From now on QQ alone logs this account in.
    let again = exchange(&app, &app.qq.grant(&openid, "小明")).await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_eq!(again.body["user_id"].as_i64(), Some(user_id));
}

async fn a_wrong_password_writes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(&app, MOBILE, PASSWORD).await;
    let access_token = access_token_for(&app, &new_openid()).await;

    let answer = post_bind(&app, &bind_body(MOBILE, "not the password", &access_token)).await;

    assert_eq!(answer.status, 400, "{}", answer.body);
    // Without an SMS code the answer does not say the number is registered.
    assert!(
        answer
            .message()
            .contains("如果这个手机号已经注册，也可以输入它的正确密码"),
        "{}",
        answer.message()
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 0));
    // The token is still good: the person may simply type the right password.
    let retry = post_bind(&app, &bind_body(MOBILE, PASSWORD, &access_token)).await;
    assert_eq!(retry.status, 201, "{}", retry.body);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn bad_input_names_the_field(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = access_token_for(&app, &new_openid()).await;
    let long = "x".repeat(129);
    let cases: Vec<(Value, &str)> = vec![
        (bind_body("1380013800", PASSWORD, &token), "mobile"),
        (bind_body("12800138000", PASSWORD, &token), "mobile"),
        (bind_body("13800138000a", PASSWORD, &token), "mobile"),
        (bind_body("", PASSWORD, &token), "mobile"),
        (bind_body(MOBILE, "1234567", &token), "password"),
        (bind_body(MOBILE, "", &token), "password"),
        (bind_body(MOBILE, &long, &token), "password"),
        (
            json!({ "password": PASSWORD, "access_token": token }),
            "mobile",
        ),
        (
            json!({ "mobile": MOBILE, "access_token": token }),
            "password",
        ),
        (
            json!({ "mobile": MOBILE, "password": PASSWORD }),
            "access_token",
        ),
        (json!({}), "access_token"),
    ];
    for (body, field) in cases {
        let answer = post_bind(&app, &body).await;
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        // The bind form's own words for what is wrong.
        let named = match field {
            "mobile" => "手机号",
            "password" => "密码",
            _ => "请填写",
        };
        assert!(
            answer.message().contains(named),
            "{body}: {}",
            answer.message()
        );
    }
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn bad_tokens_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let good = access_token_for(&app, &openid).await;
    let now = OffsetDateTime::now_utc();

    // The same token carrying someone else's openid, signature kept.
    let mut parts = good.split('.');
    let (header, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let claims = String::from_utf8(URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    let other = new_openid();
    assert!(claims.contains(&openid));
    let tampered_payload = URL_SAFE_NO_PAD.encode(claims.replace(&openid, &other));
    let tampered = format!("{header}.{tampered_payload}.{signature}");

    let expired = keys()
        .issue_bind_token(&pending(&other, None), now - time::Duration::minutes(11))
        .unwrap();
    let foreign_key = Keys::derive(&SecretString::from("another-secret-".repeat(8)))
        .issue_bind_token(&pending(&other, None), now)
        .unwrap();
    let login_jwt = keys()
        .issue_login_token(1, MOBILE, Duration::from_secs(3600), now)
        .unwrap();
    let page_flow = keys()
        .issue_bind_token(&pending(&other, Some("browser-nonce")), now)
        .unwrap();
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{payload}.");

    for (what, token) in [
        ("garbage", "not-a-token".to_owned()),
        ("empty", String::new()),
        ("tampered", tampered),
        ("expired", expired),
        ("signed with another key", foreign_key),
        ("a login JWT", login_jwt),
        ("a page-flow token", page_flow),
        ("alg none", alg_none),
        ("huge", "a".repeat(8000)),
    ] {
        let answer = post_bind(&app, &bind_body(MOBILE, PASSWORD, &token)).await;
        assert_eq!(answer.status, 400, "{what}: {}", answer.body);
        assert!(
            answer.message().contains("绑定页面已过期"),
            "{what}: {}",
            answer.message()
        );
    }
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));

    // And the genuine one still works.
    let answer = post_bind(&app, &bind_body(MOBILE, PASSWORD, &good)).await;
    assert_eq!(answer.status, 201, "{}", answer.body);
}

async fn an_openid_links_to_one_account_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let access_token = access_token_for(&app, &openid).await;
    let first = post_bind(&app, &bind_body(MOBILE, PASSWORD, &access_token)).await;
    assert_eq!(first.status, 201, "{}", first.body);

    // The same submission again (a double click): the token is used up.
    let again = post_bind(&app, &bind_body(MOBILE, PASSWORD, &access_token)).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.message().contains("用过"), "{}", again.message());

    // The same QQ account for a new mobile: refused, no stray user left behind.
    let other = post_bind(&app, &bind_body(OTHER_MOBILE, PASSWORD, &access_token)).await;
    assert_eq!(other.status, 400, "{}", other.body);
    assert!(other.message().contains("用过"), "{}", other.message());
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));

    // The same QQ account for another existing, unlinked account.
    create_user(&app, OTHER_MOBILE, PASSWORD).await;
    let existing = post_bind(&app, &bind_body(OTHER_MOBILE, PASSWORD, &access_token)).await;
    assert_eq!(existing.status, 400, "{}", existing.body);
    assert!(
        existing.message().contains("用过"),
        "{}",
        existing.message()
    );
    assert_eq!((app.user_count().await, app.link_count().await), (2, 1));

    // Another QQ account for the mobile that already has one.
    let second_qq = access_token_for(&app, &new_openid()).await;
    let taken = post_bind(&app, &bind_body(MOBILE, PASSWORD, &second_qq)).await;
    assert_eq!(taken.status, 400, "{}", taken.body);
    assert!(taken.message().contains("另一个QQ"), "{}", taken.message());
    assert_eq!((app.user_count().await, app.link_count().await), (2, 1));
}

backend_tests!(
    binding_a_new_mobile_creates_the_account,
    binding_accepts_a_form_encoded_body,
    binding_an_existing_mobile_with_its_password_links_it,
    a_wrong_password_writes_nothing,
    bad_input_names_the_field,
    bad_tokens_are_refused,
    an_openid_links_to_one_account_only
);

// ---------------------------------------------------------------------------
// Request bodies

async fn malformed_bodies_are_refused_with_json(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = access_token_for(&app, &new_openid()).await;

    let bad_json = post_raw(&app, "application/json", b"{\"mobile\": ".to_vec()).await;
    assert_eq!(bad_json.status, 400, "{}", bad_json.body);
    assert!(!bad_json.message().is_empty());

    let wrong_types = post_raw(
        &app,
        "application/json",
        json!({ "mobile": 13_800_138_000_i64, "password": PASSWORD, "access_token": token })
            .to_string()
            .into_bytes(),
    )
    .await;
    assert_eq!(wrong_types.status, 400, "{}", wrong_types.body);

    let mut body = bind_body(MOBILE, PASSWORD, &token);
    body["sms_code"] = Value::from(app.api_sms_code(&token, MOBILE).await);
    let body = body.to_string().into_bytes();
    let text = post_raw(&app, "text/plain", body.clone()).await;
    assert_eq!(text.status, 415, "{}", text.body);
    assert!(!text.message().is_empty());

    let response = client()
        .post(app.url("/oauth/qq/users/"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    let untyped = Answer::from(response).await;
    assert_eq!(untyped.status, 415, "{}", untyped.body);

    let charset = post_raw(&app, "Application/JSON; charset=utf-8", body).await;
    assert_eq!(
        charset.status, 201,
        "parameters and case are fine: {}",
        charset.body
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn a_body_over_16_kib_is_413(backend: Backend) {
    let app = spawn_app(backend).await;
    let token = access_token_for(&app, &new_openid()).await;
    let padding = "x".repeat(16 * 1024);
    let body =
        json!({ "mobile": MOBILE, "password": PASSWORD, "access_token": token, "pad": padding });

    let answer = post_raw(&app, "application/json", body.to_string().into_bytes()).await;

    assert_eq!(answer.status, 413, "{}", answer.body);
    assert!(!answer.message().is_empty());
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));

    // Sent chunked, without a Content-Length, the limit holds just the same.
    let status = post_chunked(&app, body.to_string().as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

/// POSTs `body` to `/oauth/qq/users/` in 1 KiB chunks over a raw connection;
/// returns the status.
async fn post_chunked(app: &TestApp, body: &[u8]) -> u16 {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.port))
        .await
        .unwrap();
    let mut request = format!(
        "POST /oauth/qq/users/ HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
         Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\
         Connection: close\r\n\r\n",
        app.port
    )
    .into_bytes();
    for chunk in body.chunks(1024) {
        request.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        request.extend_from_slice(chunk);
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"0\r\n\r\n");
    // The server may answer and close before reading everything; that is fine.
    let _ = stream.write_all(&request).await;
    let mut head = [0u8; 12];
    stream.read_exact(&mut head).await.unwrap();
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 "), "{head}");
    head[9..12].parse().unwrap()
}

backend_tests!(
    malformed_bodies_are_refused_with_json,
    a_body_over_16_kib_is_413
);

// ---------------------------------------------------------------------------
// The login JWT

async fn api_me_accepts_jwt_and_bearer(backend: Backend) {
    let app = spawn_app(backend).await;
    let signed_up = api_sign_up(&app, &new_openid(), MOBILE).await;
    let token = signed_up.str("token");
    let user_id = signed_up.body["user_id"].as_i64().unwrap();
    let expected = json!({ "user_id": user_id, "username": MOBILE, "mobile": MOBILE });

    for scheme in ["JWT", "Bearer", "jwt", "bearer"] {
        let who = me(&app, Some(&format!("{scheme} {token}"))).await;
        assert_eq!(who.status, 200, "{scheme}: {}", who.body);
        assert_eq!(who.body, expected, "{scheme}");
        assert_eq!(who.headers["cache-control"], "no-store");
    }
}

async fn api_me_refuses_missing_and_bad_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    let signed_up = api_sign_up(&app, &openid, MOBILE).await;
    let user_id = signed_up.body["user_id"].as_i64().unwrap();
    let good = signed_up.str("token").to_owned();
    let now = OffsetDateTime::now_utc();

    let expired = keys()
        .issue_login_token(
            user_id,
            MOBILE,
            Duration::from_secs(60),
            now - time::Duration::hours(1),
        )
        .unwrap();
    let forged = Keys::derive(&SecretString::from("another-secret-".repeat(8)))
        .issue_login_token(user_id, MOBILE, Duration::from_secs(3600), now)
        .unwrap();
    let mut parts = good.split('.');
    let (_, payload, signature) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap(),
    );
    let none_header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let alg_none = format!("{none_header}.{payload}.");
    let alg_none_signed = format!("{none_header}.{payload}.{signature}");
    let no_such_user = keys()
        .issue_login_token(user_id + 1000, "ghost", Duration::from_secs(3600), now)
        .unwrap();
    // A bind token, handed out by the API itself, in the login token's place.
    let bind_token = keys()
        .issue_bind_token(&pending(&openid, None), now)
        .unwrap();

    let missing = me(&app, None).await;
    assert_eq!(missing.status, 401, "{}", missing.body);
    assert!(!missing.message().is_empty());

    for (what, header) in [
        ("expired", format!("JWT {expired}")),
        ("forged", format!("JWT {forged}")),
        ("alg none", format!("JWT {alg_none}")),
        (
            "alg none, old signature",
            format!("Bearer {alg_none_signed}"),
        ),
        ("unknown user", format!("JWT {no_such_user}")),
        ("bind token", format!("JWT {bind_token}")),
        ("garbage", "JWT garbage".to_owned()),
        ("no token", "JWT ".to_owned()),
        ("other scheme", format!("Basic {good}")),
        ("no scheme", good.clone()),
    ] {
        let answer = me(&app, Some(&header)).await;
        assert_eq!(answer.status, 401, "{what}: {}", answer.body);
        assert!(!answer.message().is_empty(), "{what}");
    }
}

async fn a_login_jwt_is_no_bind_token(backend: Backend) {
    let app = spawn_app(backend).await;
    let signed_up = api_sign_up(&app, &new_openid(), MOBILE).await;

    let answer = post_bind(
        &app,
        &bind_body(OTHER_MOBILE, PASSWORD, signed_up.str("token")),
    )
    .await;

    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.message().contains("绑定页面已过期"),
        "{}",
        answer.message()
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn a_page_flow_bind_token_is_refused_by_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let openid = new_openid();
    let bind_page = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    let page_token = bind_page.field("access_token").unwrap();
    assert!(
        keys()
            .verify_bind_token(&page_token, OffsetDateTime::now_utc())
            .unwrap()
            .browser
            .is_some(),
        "the page's token is tied to its browser"
    );

    let answer = post_bind(&app, &bind_body(MOBILE, PASSWORD, &page_token)).await;

    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(
        answer.message().contains("绑定页面已过期"),
        "{}",
        answer.message()
    );
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

backend_tests!(
    api_me_accepts_jwt_and_bearer,
    api_me_refuses_missing_and_bad_tokens,
    a_login_jwt_is_no_bind_token,
    a_page_flow_bind_token_is_refused_by_the_api
);

// ---------------------------------------------------------------------------
// CORS

async fn preflight(app: &TestApp, origin: &str) -> reqwest::Response {
    client()
        .request(Method::OPTIONS, app.url("/oauth/qq/users/"))
        .header("origin", origin)
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap()
}

async fn cors_allows_the_configured_front_end(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            cors_origins: vec![FRONT_END.into()],
            ..Default::default()
        },
    )
    .await;

    let allowed = preflight(&app, FRONT_END).await;
    assert!(allowed.status().is_success(), "{}", allowed.status());
    let headers = allowed.headers();
    assert_eq!(headers["access-control-allow-origin"], FRONT_END);
    assert_eq!(headers["access-control-allow-credentials"], "true");
    let methods = headers["access-control-allow-methods"].to_str().unwrap();
    assert!(methods.contains("POST"), "{methods}");
    let allowed_headers = headers["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        allowed_headers.contains("content-type"),
        "{allowed_headers}"
    );

    let refused = preflight(&app, "http://evil.example").await;
    assert!(
        !refused
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        refused.headers()
    );

    // The actual request carries the headers too.
    let response = client()
        .get(app.url("/oauth/qq/statues/?next=%2F"))
        .header("origin", FRONT_END)
        .send()
        .await
        .unwrap();
    let answer = Answer::from(response).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["access-control-allow-origin"], FRONT_END);
    assert_eq!(answer.headers["access-control-allow-credentials"], "true");
}

async fn no_origins_configured_means_no_cors(backend: Backend) {
    let app = spawn_app(backend).await;

    let response = preflight(&app, FRONT_END).await;
    assert!(
        !response
            .headers()
            .contains_key("access-control-allow-origin"),
        "{:?}",
        response.headers()
    );

    let response = client()
        .get(app.url("/oauth/qq/statues/"))
        .header("origin", FRONT_END)
        .send()
        .await
        .unwrap();
    let answer = Answer::from(response).await;
    assert_eq!(answer.status, 200);
    assert!(!answer.headers.contains_key("access-control-allow-origin"));
    assert!(
        !answer
            .headers
            .contains_key("access-control-allow-credentials")
    );
}

backend_tests!(
    cors_allows_the_configured_front_end,
    no_origins_configured_means_no_cors
);

// ---------------------------------------------------------------------------
// One set of accounts behind both faces

async fn an_api_account_logs_in_through_the_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let openid = new_openid();
    api_sign_up(&app, &openid, MOBILE).await;

    let browser = Browser::new();
    let back = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(back.status, 303, "{}", back.body);
    assert_eq!(back.location.as_deref(), Some("/"));
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));

    // The password chosen through the API works on the login form too.
    let by_password = Browser::new();
    let done = app
        .post_form(
            &by_password,
            "/login",
            &[("username", MOBILE), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(
        app.logged_in_as(&by_password).await.as_deref(),
        Some(MOBILE)
    );
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

async fn a_page_account_logs_in_through_the_api(backend: Backend) {
    let app = spawn_app(backend).await;
    let browser = Browser::new();
    let openid = new_openid();
    app.sign_up_with_qq(&browser, &openid, MOBILE).await;

    let answer = exchange(&app, &app.qq.grant(&openid, "小明")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.fields(), ["token", "user_id", "username"]);
    assert_eq!(answer.str("username"), MOBILE);

    let who = me(&app, Some(&format!("JWT {}", answer.str("token")))).await;
    assert_eq!(who.status, 200, "{}", who.body);
    assert_eq!(who.body["user_id"], answer.body["user_id"]);
    assert_eq!(who.body["mobile"], MOBILE);

    // The browser's session cookie answers /api/me as well.
    let response = browser.client.get(app.url("/api/me")).send().await.unwrap();
    let by_cookie = Answer::from(response).await;
    assert_eq!(by_cookie.status, 200, "{}", by_cookie.body);
    assert_eq!(by_cookie.body, who.body);
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

backend_tests!(
    an_api_account_logs_in_through_the_pages,
    a_page_account_logs_in_through_the_api
);

// ---------------------------------------------------------------------------
// Methods

async fn a_wrong_method_is_405_with_json(backend: Backend) {
    let app = spawn_app(backend).await;
    for (method, path, allow) in [
        (Method::DELETE, "/oauth/qq/users/", "GET, POST"),
        (Method::PUT, "/oauth/qq/users/", "GET, POST"),
        (Method::POST, "/api/me", "GET"),
        (Method::POST, "/oauth/qq/statues/", "GET"),
        (Method::DELETE, "/oauth/qq/authorization/", "GET"),
    ] {
        let response = client()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let answer = Answer::from(response).await;
        assert_eq!(answer.status, 405, "{method} {path}: {}", answer.body);
        assert_eq!(answer.headers["allow"], allow, "{method} {path}");
        assert!(!answer.message().is_empty());
    }
    assert!(app.qq.calls().is_empty());
}

backend_tests!(a_wrong_method_is_405_with_json);

// ---------------------------------------------------------------------------
// Tied to the browser that began it (login CSRF, RFC 9700 §4.5)

async fn a_code_this_browser_did_not_begin_is_refused_before_qq_is_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    // The attacker's own code, fed to a victim's front end, whose browser began nothing.
    let code = app.qq.grant(&new_openid(), "attacker");
    let victim = Browser::new();
    let answer = exchange_in(&app, &victim, &code).await;
    assert_eq!(answer.status, 400, "{}", answer.body);
    assert!(answer.message().contains("QQ登录"), "{}", answer.message());

    // A cookie that is not one of ours is no attempt either.
    let path = format!("/oauth/qq/users/?code={}", urlencode(&code));
    let forged = client()
        .get(app.url(&path))
        .header("cookie", "qqlogin_api_oauth=forged")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    assert!(app.qq.calls().is_empty(), "QQ was never asked");
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
}

async fn an_attempt_lets_one_code_through_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let (browser, _) = app.begin_api_login("/").await;
    let kept = browser.cookie_header(&app.address);
    assert!(kept.contains("qqlogin_api_oauth="), "{kept}");

    let first = exchange_in(&app, &browser, &app.qq.grant(&new_openid(), "小明")).await;
    assert_eq!(first.status, 200, "{}", first.body);
    assert!(
        !browser
            .cookie_header(&app.address)
            .contains("qqlogin_api_oauth="),
        "the answer told the browser to forget the attempt"
    );

    // The cookie, kept by hand and sent again with another code: the server's
    // record refuses it, before QQ is asked.
    let calls = app.qq.calls().len();
    let code = app.qq.grant(&new_openid(), "小红");
    let replay = client()
        .get(app.url(&format!("/oauth/qq/users/?code={}", urlencode(&code))))
        .header("cookie", kept)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 400);
    assert_eq!(app.qq.calls().len(), calls, "QQ was not asked again");
}

async fn under_the_legacy_setting_any_code_is_traded(backend: Backend) {
    let app = spawn_app_with(
        backend,
        Options {
            tweak: Box::new(|config| config.api_unbound_login = true),
            ..Options::default()
        },
    )
    .await;
    let answer = get(&app, "/oauth/qq/statues/?next=%2Forders").await;
    let url = Url::parse(answer.str("login_url")).unwrap();
    assert_eq!(
        url.as_str().split('?').next(),
        Some(format!("{}/oauth2.0/authorize", app.qq.base_url).as_str()),
        "straight to QQ"
    );
    assert!(query_of(&url).contains(&("state".to_owned(), "/orders".to_owned())));

    // A program without cookies trades a code, as the original API let it.
    let code = app.qq.grant(&new_openid(), "小明");
    let path = format!("/oauth/qq/users/?code={}", urlencode(&code));
    let traded = get(&app, &path).await;
    assert_eq!(traded.status, 200, "{}", traded.body);
    assert_eq!(traded.fields(), ["access_token"]);
}

async fn a_refused_bind_may_retry_and_a_successful_one_uses_the_token_up(backend: Backend) {
    let app = spawn_app(backend).await;
    create_user(&app, MOBILE, PASSWORD).await;
    let token = access_token_for(&app, &new_openid()).await;

    let wrong = post_bind(&app, &bind_body(MOBILE, "wrong password", &token)).await;
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    let right = post_bind(&app, &bind_body(MOBILE, PASSWORD, &token)).await;
    assert_eq!(right.status, 201, "the same token, retried: {}", right.body);

    let again = post_bind(&app, &bind_body(OTHER_MOBILE, PASSWORD, &token)).await;
    assert_eq!(again.status, 400, "{}", again.body);
    assert!(again.message().contains("用过"), "{}", again.message());
    assert_eq!((app.user_count().await, app.link_count().await), (1, 1));
}

backend_tests!(
    a_code_this_browser_did_not_begin_is_refused_before_qq_is_asked,
    an_attempt_lets_one_code_through_once,
    under_the_legacy_setting_any_code_is_traded,
    a_refused_bind_may_retry_and_a_successful_one_uses_the_token_up,
);

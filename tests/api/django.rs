//! Living beside the Django site: login JWTs it accepts
//! (`QQLOGIN_DJANGO_SECRET_KEY`), checked by the real PyJWT (Debian's
//! python3-jwt, which `.ci/run` installs) exactly as djangorestframework-jwt
//! 1.11's `jwt_decode_handler` calls it, and tokens PyJWT makes as that
//! library's `jwt_encode_handler` does, accepted at `/api/me`; and Django's
//! password hashes, made by Python's hashlib as Django makes them.

use std::process::Command;

use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{Backend, Options, PASSWORD, TestApp, new_openid, spawn_app_with};

/// A secret of the kind Django's `startproject` writes: any length Django
/// accepts, far from `SECRET_KEY`'s 64 characters.
const DJANGO_SECRET: &str = "django-insecure-0k$8w@x^v2#meiduo";
const MOBILE: &str = "13800138000";
/// Debian's interpreter, which has python3-jwt (another `python3` on the PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// djangorestframework-jwt 1.11's decode, on PyJWT: signature, `exp` with no
/// leeway, no audience or issuer expected, HS256 only.
const DECODE: &str = r#"
import json, sys, jwt
token, secret = sys.argv[1], sys.argv[2]
try:
    payload = jwt.decode(token, secret, algorithms=["HS256"], options={"verify_exp": True},
                         leeway=0, audience=None, issuer=None)
except jwt.InvalidTokenError as e:
    print(json.dumps({"refused": type(e).__name__}))
else:
    print(json.dumps({"payload": payload}))
"#;

/// djangorestframework-jwt 1.11's payload and encode, on PyJWT.
const ENCODE: &str = r#"
import sys, time, jwt
user_id, username, secret = int(sys.argv[1]), sys.argv[2], sys.argv[3]
payload = {"user_id": user_id, "username": username, "exp": int(time.time()) + 300, "email": ""}
print(jwt.encode(payload, secret, algorithm="HS256"))
"#;

/// Django's `PBKDF2PasswordHasher.encode`, on hashlib.
const MAKE_PASSWORD: &str = r#"
import base64, hashlib, secrets, sys
password, iterations = sys.argv[1], int(sys.argv[2])
salt = secrets.token_hex(6)
digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
print("pbkdf2_sha256$%d$%s$%s" % (iterations, salt, base64.b64encode(digest).decode()))
"#;

/// Runs `script` with `args` on Debian's Python; `None` (after saying so) when
/// PyJWT is not there.
fn python(script: &str, args: &[&str]) -> Option<String> {
    let have_pyjwt = Command::new(PYTHON)
        .args(["-c", "import jwt"])
        .status()
        .is_ok_and(|s| s.success());
    if !have_pyjwt {
        crate::skip::skip(
            "PyJWT is missing (/usr/bin/python3 -c 'import jwt' failed), so a Django token test did not run",
            "install Debian's python3-jwt (.ci/run does)",
        );
        return None;
    }
    let out = Command::new(PYTHON)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(String::from_utf8(out.stdout).unwrap().trim().to_owned())
}

fn with_django_secret() -> Options {
    Options {
        tweak: Box::new(|c| {
            c.django_secret_key = Some(secrecy::SecretString::from(DJANGO_SECRET.to_owned()));
        }),
        ..Options::default()
    }
}

/// A new account through the JSON API's bind; its answer.
async fn api_sign_up(app: &TestApp) -> Value {
    let access_token = app.api_access_token(&new_openid()).await;
    let code = app.api_sms_code(&access_token, MOBILE).await;
    let response = reqwest::Client::new()
        .post(app.url("/oauth/qq/users/"))
        .json(&json!({
            "mobile": MOBILE, "password": PASSWORD, "sms_code": code, "access_token": access_token,
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    response.json().await.unwrap()
}

async fn me(app: &TestApp, token: &str) -> reqwest::Response {
    reqwest::Client::new()
        .get(app.url("/api/me"))
        .header("authorization", format!("JWT {token}"))
        .send()
        .await
        .unwrap()
}

async fn the_login_token_is_one_the_django_site_accepts(backend: Backend) {
    let app = spawn_app_with(backend, with_django_secret()).await;
    let answer = api_sign_up(&app).await;
    let token = answer["token"].as_str().unwrap();
    let Some(decoded) = python(DECODE, &[token, DJANGO_SECRET]) else {
        return;
    };
    let decoded: Value = serde_json::from_str(&decoded).unwrap();
    let payload = &decoded["payload"];
    assert_eq!(payload["user_id"], answer["user_id"], "{decoded}");
    assert_eq!(payload["username"], MOBILE);
    assert_eq!(payload["email"], "");
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let ttl = i64::try_from(app.config.jwt_ttl.as_secs()).unwrap();
    let exp = payload["exp"].as_i64().unwrap();
    assert!(
        (now + ttl - 60..=now + ttl + 60).contains(&exp),
        "exp {exp}"
    );
    let fields: Vec<&String> = payload.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        ["email", "exp", "user_id", "username"],
        "nothing PyJWT would refuse"
    );

    let other = python(DECODE, &[token, "another site's secret"]).unwrap();
    assert_eq!(other, r#"{"refused": "InvalidSignatureError"}"#);
    assert_eq!(
        me(&app, token).await.status(),
        200,
        "and the service takes it back"
    );
}

async fn a_token_the_django_site_made_is_accepted_at_api_me(backend: Backend) {
    let app = spawn_app_with(backend, with_django_secret()).await;
    let answer = api_sign_up(&app).await;
    let user_id = answer["user_id"].to_string();
    let Some(token) = python(ENCODE, &[&user_id, MOBILE, DJANGO_SECRET]) else {
        return;
    };
    let response = me(&app, &token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_id"], answer["user_id"]);
    assert_eq!(body["mobile"], MOBILE);

    let forged = python(ENCODE, &[&user_id, MOBILE, "another site's secret"]).unwrap();
    assert_eq!(me(&app, &forged).await.status(), 401);
}

/// A Django account logs in with its password, whose hash is then this
/// service's argon2id; the password goes on working, a wrong one does not.
async fn a_django_password_hash_logs_in_and_is_stored_again_as_argon2id(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    // Django 1.11's 36 000 rounds; later versions' more are read from the hash the same way.
    let Some(django_hash) = python(MAKE_PASSWORD, &[PASSWORD, "36000"]) else {
        return;
    };
    let (mobile, hash) = (MOBILE.to_owned(), django_hash.clone());
    app.db
        .run(move |c| qqlogin::db::user::insert(c, &mobile, &hash))
        .await
        .unwrap();
    let user_id = app.user_id(MOBILE).await;

    let wrong = app
        .password_login(&crate::helpers::Browser::new(), MOBILE, "not the password")
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(app.user(user_id).await.unwrap().password_hash, django_hash);

    let browser = crate::helpers::Browser::new();
    let page = app.password_login(&browser, MOBILE, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    let stored = app.user(user_id).await.unwrap().password_hash;
    assert!(
        stored.starts_with("$argon2id$"),
        "stored again as argon2id: {stored}"
    );

    let again = app
        .password_login(&crate::helpers::Browser::new(), MOBILE, PASSWORD)
        .await;
    assert_eq!(again.status, 303, "the same password, under the new hash");
}

backend_tests!(
    the_login_token_is_one_the_django_site_accepts,
    a_token_the_django_site_made_is_accepted_at_api_me,
    a_django_password_hash_logs_in_and_is_stored_again_as_argon2id,
);

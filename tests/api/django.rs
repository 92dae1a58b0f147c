//! Living beside the Django site: login JWTs it accepts
//! (`QQLOGIN_DJANGO_SECRET_KEY`), checked by the real PyJWT (Debian's
//! python3-jwt, which `.ci/run` installs) exactly as djangorestframework-jwt
//! 1.11's `jwt_decode_handler` calls it, and tokens PyJWT makes as that
//! library's `jwt_encode_handler` does, accepted at `/api/me`; and Django's
//! password hashes, made by Python's hashlib as Django makes them.

use std::process::Command;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use serde_json::{Value, json};

use crate::backend_tests;
use crate::helpers::{
    Backend, Browser, Options, PASSWORD, TestApp, TestDb, new_openid, spawn_app_with,
};

/// A secret of the kind Django's `startproject` writes: any length Django
/// accepts, far from `SECRET_KEY`'s 64 characters.
pub const DJANGO_SECRET: &str = "django-insecure-0k$8w@x^v2#meiduo";
const MOBILE: &str = "13800138000";
/// Debian's interpreter, which has python3-jwt (another `python3` on the PATH may not).
const PYTHON: &str = "/usr/bin/python3";

/// djangorestframework-jwt 1.11's decode, on PyJWT: signature, `exp` with no
/// leeway, no audience or issuer expected, HS256 only.
pub const DECODE: &str = r#"
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
pub const ENCODE: &str = r#"
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
pub fn python(script: &str, args: &[&str]) -> Option<String> {
    python_with(("jwt", "python3-jwt"), script, args)
}

/// Runs `script` with `args` on Debian's Python, which needs the module of
/// one of Debian's packages (`module`, `package`); `None`, after saying so,
/// when it is not there.
pub fn python_with((module, package): (&str, &str), script: &str, args: &[&str]) -> Option<String> {
    let have_module = Command::new(PYTHON)
        .args(["-c", &format!("import {module}")])
        .status()
        .is_ok_and(|s| s.success());
    if !have_module {
        crate::skip::skip(
            &format!(
                "{PYTHON} cannot import {module}, so a test of the Django site's side did not run"
            ),
            &format!("install Debian's {package} (.ci/run does)"),
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

pub async fn me(app: &TestApp, token: &str) -> reqwest::Response {
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
        .password_login(&Browser::new(), MOBILE, "not the password")
        .await;
    assert_eq!(wrong.status, 401, "{}", wrong.body);
    assert_eq!(app.user(user_id).await.unwrap().password_hash, django_hash);

    let browser = Browser::new();
    let page = app.password_login(&browser, MOBILE, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some(MOBILE));
    let stored = app.user(user_id).await.unwrap().password_hash;
    assert!(
        stored.starts_with("$argon2id$"),
        "stored again as argon2id: {stored}"
    );

    let again = app.password_login(&Browser::new(), MOBILE, PASSWORD).await;
    assert_eq!(again.status, 303, "the same password, under the new hash");
}

// ---------------------------------------------------------------------------
// `qqlogin import-django`
// ---------------------------------------------------------------------------

/// The password of the hash below: Python's hashlib made it as Django 1.11
/// does (`pbkdf2_sha256`, 36 000 rounds).
pub const DJANGO_PASSWORD: &str = "lètmein-2019";
pub const DJANGO_HASH: &str =
    "pbkdf2_sha256$36000$seasalt3$TOP/ZB3H5r7y8DZ1JK5wyH+bd1H5XQd7nP8KjF7bmmo=";

/// The two tables as Django's migrations make them on each backend
/// (`../shared/django_site.md`): `tb_oauth_qq.openid` indexed, not unique;
/// foreign keys that do not cascade (Django's ORM does that, not the database).
pub fn django_tables(backend: &Backend) -> &'static str {
    match backend {
        Backend::Sqlite => {
            "CREATE TABLE tb_users (id integer PRIMARY KEY AUTOINCREMENT NOT NULL, \
             password varchar(128) NOT NULL, last_login datetime NULL, is_superuser bool NOT NULL, \
             username varchar(150) NOT NULL UNIQUE, first_name varchar(30) NOT NULL, \
             last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff bool NOT NULL, \
             is_active bool NOT NULL, date_joined datetime NOT NULL, mobile varchar(11) NOT NULL UNIQUE, \
             email_active bool NOT NULL, default_address_id integer NULL); \
             CREATE TABLE tb_oauth_qq (id integer PRIMARY KEY AUTOINCREMENT NOT NULL, \
             create_time datetime NOT NULL, update_time datetime NOT NULL, openid varchar(64) NOT NULL, \
             user_id integer NOT NULL REFERENCES tb_users (id)); \
             CREATE INDEX tb_oauth_qq_openid ON tb_oauth_qq (openid);"
        }
        Backend::Postgres(_) => {
            "CREATE TABLE tb_users (id serial PRIMARY KEY, password varchar(128) NOT NULL, \
             last_login timestamptz NULL, is_superuser boolean NOT NULL, \
             username varchar(150) NOT NULL UNIQUE, first_name varchar(30) NOT NULL, \
             last_name varchar(150) NOT NULL, email varchar(254) NOT NULL, is_staff boolean NOT NULL, \
             is_active boolean NOT NULL, date_joined timestamptz NOT NULL, mobile varchar(11) NOT NULL UNIQUE, \
             email_active boolean NOT NULL, default_address_id integer NULL); \
             CREATE TABLE tb_oauth_qq (id serial PRIMARY KEY, create_time timestamptz NOT NULL, \
             update_time timestamptz NOT NULL, openid varchar(64) NOT NULL, \
             user_id integer NOT NULL REFERENCES tb_users (id) DEFERRABLE INITIALLY DEFERRED); \
             CREATE INDEX tb_oauth_qq_openid ON tb_oauth_qq (openid);"
        }
    }
}

/// `qqlogin import-django --from <source> --json` into `target`, in
/// development mode (so the links are for the stand-in's app id).
fn run_import(source: &TestDb, target: &TestDb) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_qqlogin"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", crate::helpers::url_of(&target.url))
        .env("RUST_LOG", "warn")
        .args([
            "import-django",
            "--from",
            &crate::helpers::url_of(&source.url),
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "import failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// A Django site's accounts, with each kind of row the import must copy or
/// refuse: copied once, ids kept where free, the second run a no-op; then the
/// service logs them in with their Django passwords, and not the disabled one.
async fn the_import_copies_accounts_once_and_says_what_it_skipped(backend: Backend) {
    let (source, target) = (TestDb::new(&backend), TestDb::new(&backend));
    let (a, g, c, x, f1, f2) = (
        new_openid(),
        new_openid(),
        new_openid(),
        new_openid(),
        new_openid(),
        new_openid(),
    );
    let person = |id: u8, name: &str, mobile: &str, active: bool| {
        format!(
            "INSERT INTO tb_users (id, password, is_superuser, username, first_name, last_name, email, \
             is_staff, is_active, date_joined, mobile, email_active) VALUES ({id}, '{DJANGO_HASH}', \
             FALSE, '{name}', '', '', '', FALSE, {active}, '2019-03-01 10:20:30', '{mobile}', FALSE);"
        )
    };
    let link = |user: u8, openid: &str| {
        format!(
            "INSERT INTO tb_oauth_qq (create_time, update_time, openid, user_id) \
             VALUES ('2019-03-02 08:00:00', '2019-03-02 08:00:00', '{openid}', {user});"
        )
    };
    let rows = [
        person(1, "alice", "13800000001", true),
        person(2, "bob", "13800000002", false),
        person(3, "carol", "1234", true),
        person(4, "dave", "13800000004", true),
        person(5, "erin", "13800000005", true),
        person(6, "frank", "13800000006", true),
        person(7, "grace", "13800000007", true),
        link(1, &a),
        link(3, &c),
        link(4, &x),
        link(5, &x),
        link(6, &f1),
        link(6, &f2),
        link(7, &g),
        link(7, &g),
    ]
    .concat();
    let sql = format!("{}{rows}", django_tables(&backend));
    let django = qqlogin::db::Db::new(
        source.url.clone(),
        Default::default(),
        1,
        Duration::from_secs(5),
    );
    django
        .run(move |conn| Ok(conn.batch_execute(&sql)?))
        .await
        .unwrap();
    // The service has an account already, under id 1: alice cannot keep hers.
    let here = qqlogin::db::Db::new(
        target.url.clone(),
        Default::default(),
        1,
        Duration::from_secs(5),
    );
    here.migrate().await.unwrap();
    here.run(|conn| qqlogin::db::user::insert(conn, "13900000000", "x"))
        .await
        .unwrap();

    let first = run_import(&source, &target);
    assert_eq!(first["users_copied"], 6, "{first:#}");
    assert_eq!(first["links_copied"], 2, "{first:#}");
    let skipped: Vec<(String, String)> = first["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["row"].as_str().unwrap().to_owned(),
                s["why"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let expected = [
        ("user 3".to_owned(), "no well-formed mobile"),
        (format!("openid {c}"), "its user was not copied"),
        (
            format!("openid {x}"),
            "the openid is linked to several users",
        ),
        (
            format!("openid {x}"),
            "the openid is linked to several users",
        ),
        (format!("openid {f1}"), "its user holds several QQ accounts"),
        (format!("openid {f2}"), "its user holds several QQ accounts"),
    ];
    let expected: Vec<(String, String)> = expected
        .into_iter()
        .map(|(row, why)| (row, why.to_owned()))
        .collect();
    assert_eq!(skipped, expected);

    let user = |mobile: &'static str| {
        let db = here.clone();
        async move {
            db.run(move |conn| qqlogin::db::user::find_by_mobile(conn, mobile))
                .await
                .unwrap()
        }
    };
    let alice = user("13800000001").await.expect("alice copied");
    assert_ne!(alice.id, 1, "id 1 was taken here: a new one");
    assert_eq!(
        (alice.username.as_str(), alice.password_hash.as_str()),
        ("alice", DJANGO_HASH)
    );
    assert_eq!(
        user("13800000007").await.unwrap().id,
        7,
        "a free id is kept"
    );
    assert!(
        !user("13800000002").await.unwrap().is_active,
        "bob stays disabled"
    );
    let dev_app = qqlogin::qq::stand_in::DEV_APP_ID;
    let (a2, g2) = (a.clone(), g.clone());
    let linked = here
        .run(move |conn| {
            Ok((
                qqlogin::db::user::find_by_openid(conn, dev_app, &a2)?.map(|(u, _)| u.id),
                qqlogin::db::user::find_by_openid(conn, dev_app, &g2)?.map(|(u, _)| u.id),
            ))
        })
        .await
        .unwrap();
    assert_eq!(linked, (Some(alice.id), Some(7)));

    let second = run_import(&source, &target);
    assert_eq!(second["users_copied"], 0, "{second:#}");
    assert_eq!(second["users_already_here"], 6);
    assert_eq!(second["links_copied"], 0);
    assert_eq!(second["links_already_here"], 2);
    assert_eq!(second["skipped"], first["skipped"]);

    // The service on the imported database: Django passwords log in.
    let app = spawn_app_with(
        backend,
        Options {
            dev_mode: true,
            database: Some(target.url.clone()),
            ..Options::default()
        },
    )
    .await;
    let browser = Browser::new();
    let page = app.password_login(&browser, "alice", DJANGO_PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);
    let page = app
        .password_login(&Browser::new(), "bob", DJANGO_PASSWORD)
        .await;
    assert_eq!(page.status, 403, "a disabled account: {}", page.body);
    assert!(page.body.contains("这个账号已被停用"), "{}", page.body);
}

/// A disabled account (Django's `is_active = false`) gets in neither by QQ
/// nor by the JSON API, and says so.
async fn a_disabled_account_gets_in_by_no_door(backend: Backend) {
    let app = crate::helpers::spawn_app(backend).await;
    let openid = new_openid();
    app.sign_up_with_qq(&Browser::new(), &openid, MOBILE).await;
    let user_id = app.user_id(MOBILE).await;
    app.db
        .write(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            use diesel::prelude::*;
            use qqlogin::db::schema::users;
            diesel::update(users::table.find(user_id))
                .set(users::is_active.eq(false))
                .execute(conn)?;
            Ok(())
        })
        .await
        .unwrap();
    let browser = Browser::new();
    let page = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("账号已停用"), "{}", page.body);
    assert_eq!(app.logged_in_as(&browser).await, None);
    let page = app.password_login(&Browser::new(), MOBILE, PASSWORD).await;
    assert_eq!(page.status, 403, "{}", page.body);

    // A new QQ account cannot be bound to it either.
    let newcomer = Browser::new();
    let bind_page = app.qq_login(&newcomer, &new_openid(), "/").await;
    let bound = app.bind(&newcomer, &bind_page, MOBILE, PASSWORD).await;
    assert_eq!(bound.status, 403, "{}", bound.body);
    assert!(bound.body.contains("停用"), "{}", bound.body);

    // The JSON API: its QQ login says so in {"message"}; a JWT issued
    // before no longer answers at /api/me.
    let (api_browser, _) = app.begin_api_login("/").await;
    let code = app.qq.grant(&openid, "小明");
    let answer = api_browser
        .client
        .get(app.url(&format!("/oauth/qq/users/?code={code}")))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 403);
    let body: Value = answer.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("停用"), "{body}");
    let keys = qqlogin::token::Keys::derive(&secrecy::SecretString::from(
        crate::helpers::SECRET_KEY.to_owned(),
    ));
    let earlier = keys
        .issue_login_token(
            user_id,
            MOBILE,
            Duration::from_secs(3600),
            time::OffsetDateTime::now_utc(),
        )
        .unwrap();
    assert_eq!(me(&app, &earlier).await.status(), 401);
}

backend_tests!(
    a_disabled_account_gets_in_by_no_door,
    the_login_token_is_one_the_django_site_accepts,
    a_token_the_django_site_made_is_accepted_at_api_me,
    a_django_password_hash_logs_in_and_is_stored_again_as_argon2id,
    the_import_copies_accounts_once_and_says_what_it_skipped,
);

//! Sharing the Django site's own tables (`QQLOGIN_USER_TABLES=django`): a
//! database laid out as the site's migrations lay it out, the service on it,
//! and what each side then sees of the other's users, passwords and links.
//! Django's password check is Python's hashlib, as Django does it.

use std::process::Command;
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use qqlogin::config::{Config, RedisUrl, UserTables};
use qqlogin::db::Db;
use qqlogin::db::shared_tables::{tb_oauth_qq, tb_users};
use serde_json::Value;

use crate::backend_tests;
use crate::django::{
    DECODE, DJANGO_HASH, DJANGO_PASSWORD, DJANGO_SECRET, ENCODE, django_tables, me, python,
    python_with,
};
use crate::helpers::{
    Backend, Browser, Options, PASSWORD, TestApp, TestDb, new_openid, spawn_app_with, url_of,
};

const MOBILE: &str = "13800138000";

/// Django's `PBKDF2PasswordHasher.verify`, on hashlib: "ok" or "wrong".
const DJANGO_CHECK_PASSWORD: &str = r#"
import base64, hashlib, hmac, sys
password, encoded = sys.argv[1], sys.argv[2]
algorithm, iterations, salt, expected = encoded.split("$", 3)
assert algorithm == "pbkdf2_sha256", algorithm
digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), int(iterations))
print("ok" if hmac.compare_digest(base64.b64encode(digest).decode(), expected) else "wrong")
"#;

/// Whether the Django site's own check accepts `password` for `encoded`.
fn django_accepts(password: &str, encoded: &str) -> bool {
    python_with(
        ("hashlib", "python3"),
        DJANGO_CHECK_PASSWORD,
        &[password, encoded],
    )
    .expect("Debian's python3 has hashlib")
        == "ok"
}

/// A Django user row, `rows` of SQL after the tables.
fn django_user(id: u8, name: &str, mobile: &str, hash: &str, active: bool) -> String {
    format!(
        "INSERT INTO tb_users (id, password, is_superuser, username, first_name, last_name, email, \
         is_staff, is_active, date_joined, mobile, email_active) VALUES ({id}, '{hash}', \
         FALSE, '{name}', '', '', '', FALSE, {active}, '2019-03-01 10:20:30', '{mobile}', FALSE);"
    )
}

fn django_link(user: u8, openid: &str) -> String {
    format!(
        "INSERT INTO tb_oauth_qq (create_time, update_time, openid, user_id) \
         VALUES ('2019-03-02 08:00:00', '2019-03-02 08:00:00', '{openid}', {user});"
    )
}

/// The Django site's database with `rows`, and the service sharing its tables.
async fn beside_django(backend: Backend, rows: &str) -> (TestApp, TestDb) {
    beside_django_with(backend, rows, |_| {}).await
}

/// [`beside_django`], with more of the configuration changed by `tweak`.
async fn beside_django_with(
    backend: Backend,
    rows: &str,
    tweak: impl FnOnce(&mut Config) + 'static,
) -> (TestApp, TestDb) {
    let site = TestDb::own_database(&backend);
    let sql = format!("{}{rows}", django_tables(&backend));
    Db::new(
        site.url.clone(),
        UserTables::Qqlogin,
        1,
        Duration::from_secs(5),
    )
    .run(move |conn| Ok(conn.batch_execute(&sql)?))
    .await
    .unwrap();
    let app = spawn_app_with(
        backend,
        Options {
            database: Some(site.url.clone()),
            tweak: Box::new(|c| {
                c.user_tables = UserTables::Django;
                c.django_secret_key = Some(DJANGO_SECRET.to_owned().into());
                tweak(c);
            }),
            ..Options::default()
        },
    )
    .await;
    (app, site)
}

/// `tb_users`' row for `login` (user name or mobile): id, user name, hash, active.
async fn site_user(app: &TestApp, login: &str) -> Option<(i32, String, String, bool)> {
    let login = login.to_owned();
    app.db
        .run(move |conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(tb_users::table
                .filter(
                    tb_users::username
                        .eq(&login)
                        .or(tb_users::mobile.eq(&login)),
                )
                .select((
                    tb_users::id,
                    tb_users::username,
                    tb_users::password,
                    tb_users::is_active,
                ))
                .first(conn)
                .optional()?)
        })
        .await
        .unwrap()
}

/// `tb_oauth_qq`'s rows: user id and openid, oldest first.
async fn site_links(app: &TestApp) -> Vec<(i32, String)> {
    app.db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(tb_oauth_qq::table
                .order(tb_oauth_qq::id)
                .select((tb_oauth_qq::user_id, tb_oauth_qq::openid))
                .load(conn)?)
        })
        .await
        .unwrap()
}

/// `qqlogin ARGS` on `database`, sharing Django's tables, in development mode.
fn qqlogin_on(database: &TestDb, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qqlogin"))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DATABASE_URL", url_of(&database.url))
        .env("QQLOGIN_USER_TABLES", "django")
        .env("RUST_LOG", "warn")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

/// A person new to the site signs up through QQ: the account is a row of
/// `tb_users` with a password Django's own check accepts, the link a row of
/// `tb_oauth_qq`; the service's own user tables stay empty. The next QQ
/// login goes straight in; unlinking and deleting reach Django's rows.
async fn an_account_made_through_qqlogin_is_the_django_sites_own(backend: Backend) {
    let (app, _site) = beside_django(backend.clone(), "").await;
    let (browser, openid) = (Browser::new(), new_openid());
    app.sign_up_with_qq(&browser, &openid, MOBILE).await;

    let (id, username, hash, active) = site_user(&app, MOBILE).await.expect("a tb_users row");
    assert_eq!((username.as_str(), active), (MOBILE, true));
    assert!(hash.starts_with("pbkdf2_sha256$36000$"), "{hash}");
    assert!(
        django_accepts(PASSWORD, &hash),
        "Django accepts the password"
    );
    assert!(!django_accepts("not the password", &hash));
    assert_eq!(site_links(&app).await, vec![(id, openid.clone())]);
    assert_eq!((app.user_count().await, app.link_count().await), (0, 0));
    if let Backend::Postgres(_) = backend {
        let placed = app
            .db
            .run(|conn| {
                Ok((
                    conn.batch_execute("SELECT 1 FROM qqlogin.sessions LIMIT 0")
                        .is_ok(),
                    conn.batch_execute("SELECT 1 FROM public.sessions LIMIT 0")
                        .is_ok(),
                ))
            })
            .await
            .unwrap();
        assert_eq!(
            placed,
            (true, false),
            "the service's tables are in its schema"
        );
    }

    let again = Browser::new();
    let page = app.qq_login(&again, &openid, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.logged_in_as(&again).await.as_deref(), Some(MOBILE));
    let page = app.password_login(&Browser::new(), MOBILE, PASSWORD).await;
    assert_eq!(page.status, 303, "{}", page.body);

    let unlinked = app.account_post(&browser, "/account/qq/unlink", &[]).await;
    assert_eq!(unlinked.status, 303, "{}", unlinked.body);
    assert_eq!(site_links(&app).await, vec![]);
    let deleted = app
        .account_post(&browser, "/account/delete", &[("confirm", "注销")])
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert!(deleted.body.contains("账号已注销"), "{}", deleted.body);
    assert_eq!(site_user(&app, MOBILE).await, None);
}

/// The site's people, with the passwords and links Django gave them: a
/// password logs in and stays in a form Django reads (an old form is made
/// again as Django's `pbkdf2_sha256`), a link Django made logs in by QQ, a
/// disabled account gets in nowhere, and a bind links an existing account,
/// one QQ account per user.
async fn the_django_sites_people_log_in_and_link_qq(backend: Backend) {
    // Made by Python's hashlib as Django's PBKDF2SHA1PasswordHasher makes them.
    const SHA1_PASSWORD: &str = DJANGO_PASSWORD;
    const SHA1_HASH: &str = "pbkdf2_sha1$36000$seasalt4$HVGHcKBaJo6Vj6c7mNpgHM19Zgk=";
    let linked_by_django = new_openid();
    // Another table of the site's that names its users, as Django makes
    // foreign keys: checked at the commit on PostgreSQL.
    let orders = match backend {
        Backend::Sqlite => {
            "CREATE TABLE tb_orders (id integer PRIMARY KEY, \
                            user_id integer NOT NULL REFERENCES tb_users (id));"
        }
        Backend::Postgres(_) => {
            "CREATE TABLE tb_orders (id serial PRIMARY KEY, user_id integer \
                                 NOT NULL REFERENCES tb_users (id) DEFERRABLE INITIALLY DEFERRED);"
        }
    };
    let rows = [
        django_user(1, "alice", "13800000001", DJANGO_HASH, true),
        django_user(2, "bob", "13800000002", SHA1_HASH, true),
        django_user(3, "carol", "13800000003", DJANGO_HASH, false),
        django_user(4, "dave", "13800000004", DJANGO_HASH, true),
        django_link(4, &linked_by_django),
        orders.to_owned(),
        "INSERT INTO tb_orders (user_id) VALUES (4);".to_owned(),
    ]
    .concat();
    let (app, _site) = beside_django(backend, &rows).await;

    let page = app
        .password_login(&Browser::new(), "alice", DJANGO_PASSWORD)
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(
        site_user(&app, "alice").await.unwrap().2,
        DJANGO_HASH,
        "Django's own current form is kept as it is"
    );
    let page = app
        .password_login(&Browser::new(), "bob", SHA1_PASSWORD)
        .await;
    assert_eq!(page.status, 303, "{}", page.body);
    let bobs = site_user(&app, "bob").await.unwrap().2;
    assert!(bobs.starts_with("pbkdf2_sha256$36000$"), "{bobs}");
    assert!(django_accepts(SHA1_PASSWORD, &bobs));
    let page = app
        .password_login(&Browser::new(), "carol", DJANGO_PASSWORD)
        .await;
    assert_eq!(page.status, 403, "{}", page.body);

    let browser = Browser::new();
    let page = app.qq_login(&browser, &linked_by_django, "/").await;
    assert_eq!(page.status, 303, "{}", page.body);
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some("dave"));
    let refused = app
        .account_post(&browser, "/account/delete", &[("confirm", "注销")])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(refused.body.contains("暂时无法注销"), "{}", refused.body);
    assert!(site_user(&app, "dave").await.is_some());
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some("dave"));

    // The JSON API: dave's login JWT is one the site accepts for its user 4,
    // and a token the site made for alice is accepted here.
    let answer = app.api_login(&linked_by_django).await;
    assert_eq!(
        (answer["user_id"].as_i64(), answer["username"].as_str()),
        (Some(4), Some("dave"))
    );
    if let Some(decoded) = python(DECODE, &[answer["token"].as_str().unwrap(), DJANGO_SECRET]) {
        let decoded: Value = serde_json::from_str(&decoded).unwrap();
        assert_eq!(decoded["payload"]["user_id"], 4, "{decoded}");
        let alices = python(ENCODE, &["1", "alice", DJANGO_SECRET]).unwrap();
        let mine: Value = me(&app, &alices).await.json().await.unwrap();
        assert_eq!(mine["mobile"], "13800000001", "{mine}");
    }

    let (browser, openid) = (Browser::new(), new_openid());
    let bind_page = app.qq_login(&browser, &openid, "/").await;
    assert_eq!(bind_page.status, 200, "{}", bind_page.body);
    let bound = app
        .bind(&browser, &bind_page, "13800000001", DJANGO_PASSWORD)
        .await;
    assert_eq!(bound.status, 303, "{}", bound.body);
    assert_eq!(app.logged_in_as(&browser).await.as_deref(), Some("alice"));

    let other = Browser::new();
    let bind_page = app.qq_login(&other, &new_openid(), "/").await;
    let refused = app
        .bind(&other, &bind_page, "13800000001", DJANGO_PASSWORD)
        .await;
    assert_eq!(refused.status, 409, "{}", refused.body);
    assert!(
        refused.body.contains("已经绑定了另一个QQ账号"),
        "{}",
        refused.body
    );
    assert_eq!(
        site_links(&app).await,
        vec![(4, linked_by_django), (1, openid)],
        "dave's link survived the refused deletion"
    );
}

/// An openid the site linked to two users logs in neither, and says why;
/// `qqlogin check` names it. The import has nothing to do in this mode, and
/// a database without the site's tables is refused at once.
async fn an_openid_linked_twice_by_the_site_logs_in_no_one(backend: Backend) {
    let twice = new_openid();
    let rows = [
        django_user(1, "alice", "13800000001", DJANGO_HASH, true),
        django_user(2, "bob", "13800000002", DJANGO_HASH, true),
        django_link(1, &twice),
        django_link(2, &twice),
    ]
    .concat();
    let (app, site) = beside_django(backend.clone(), &rows).await;
    let browser = Browser::new();
    let page = app.qq_login(&browser, &twice, "/").await;
    assert_eq!(page.status, 409, "{}", page.body);
    assert!(page.body.contains("绑定了多个账号"), "{}", page.body);
    assert_eq!(app.logged_in_as(&browser).await, None);

    let (code, stdout, stderr) = qqlogin_on(&site, &["check", "--json"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let checks: Value = serde_json::from_str(&stdout).unwrap();
    let links = checks["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["what"] == "QQ links")
        .unwrap_or_else(|| panic!("{checks:#}"));
    assert_eq!(links["ok"], false);
    let detail = links["detail"].as_str().unwrap();
    assert!(detail.contains(&twice) && detail.contains("[]"), "{detail}");

    let (code, stdout, stderr) = qqlogin_on(&site, &["users", "list", "--json"]);
    assert_eq!(code, 0, "{stderr}");
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    let names: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["alice", "bob"],
        "the site's users, as operators see them"
    );

    let (code, _, stderr) = qqlogin_on(&site, &["import-django", "--from", &url_of(&site.url)]);
    assert_eq!(code, 1);
    assert!(stderr.contains("nothing to import"), "{stderr}");

    let empty = TestDb::own_database(&backend);
    let (code, _, stderr) = qqlogin_on(&empty, &["migrate"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("tb_users"), "{stderr}");
}

/// Many binds of one QQ account at once, to new mobiles: one link, one new
/// user, although Django's `openid` column is not unique.
async fn concurrent_binds_of_one_openid_make_one_django_link(backend: Backend) {
    let (app, _site) = beside_django(backend, "").await;
    crate::concurrency::bind_one_qq_account_at_once(&app, 6).await;
    let links = site_links(&app).await;
    assert_eq!(links.len(), 1, "{links:?}");
    let users: i64 = app
        .db
        .run(|conn| {
            let conn: &mut qqlogin::db::DbConn = conn;
            Ok(tb_users::table.count().get_result(conn)?)
        })
        .await
        .unwrap();
    assert_eq!(users, 1, "the losers' accounts were rolled back");
}

/// Django's `RegisterSerializer` looking the code up, on redis-py: the code
/// (or "none") and the seconds it has left.
const DJANGO_SMS_LOOKUP: &str = r#"
import sys, redis
conn = redis.Redis.from_url(sys.argv[1])
real = conn.get("sms_%s" % sys.argv[2])
print(real.decode() if real is not None else "none", conn.ttl("sms_%s" % sys.argv[2]))
"#;

/// A code the bind page's button sends is in the Django site's Redis too,
/// where its registration page's `POST /users/` looks for it.
async fn the_sites_registration_finds_the_sms_codes_sent_here(backend: Backend) {
    let Some(redis_url) = std::env::var("TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.is_empty())
    else {
        crate::skip::skip(
            "TEST_REDIS_URL is unset, so the Django site's Redis was not tested",
            "set it, e.g. to redis://127.0.0.1:6379/2 (.ci/run does)",
        );
        return;
    };
    let url = redis_url.clone();
    let (app, _site) = beside_django_with(backend, "", move |c| {
        c.sms.django_redis = Some(RedisUrl::parse(&url).unwrap());
    })
    .await;
    // A mobile of this test's own: the Redis is shared by every test.
    let mobile = format!(
        "139{:08}",
        u32::from_str_radix(&new_openid()[..7], 16).unwrap() % 100_000_000
    );
    let browser = Browser::new();
    let page = app.qq_login(&browser, &new_openid(), "/").await;
    let code = app.page_sms_code(&browser, &page, &mobile).await;

    let Some(found) = python_with(
        ("redis", "python3-redis"),
        DJANGO_SMS_LOOKUP,
        &[&redis_url, &mobile],
    ) else {
        return;
    };
    let (real, ttl) = found.split_once(' ').unwrap();
    assert_eq!(real, code, "the site finds the code that was sent");
    let ttl: i64 = ttl.parse().unwrap();
    assert!((1..=300).contains(&ttl), "as long as the code lives: {ttl}");
}

/// Two links of one QQ account to two users, the second begun while the
/// first's transaction is still open: the second waits for the first, sees
/// its link and fails as a unique violation would; one row is left. (The
/// second cannot see an uncommitted row, so without the lock both would land.)
async fn a_link_waits_for_one_in_flight_and_is_refused(backend: Backend) {
    let rows = [
        django_user(1, "alice", "13800000001", DJANGO_HASH, true),
        django_user(2, "bob", "13800000002", DJANGO_HASH, true),
    ]
    .concat();
    let (app, site) = beside_django(backend.clone(), &rows).await;
    let db = Db::new(
        site.url.clone(),
        UserTables::Django,
        4,
        Duration::from_secs(5),
    );
    let openid = new_openid();
    let link = move |openid: String, user_id: i64| {
        move |conn: &mut qqlogin::db::Conn<'_>| {
            let new = qqlogin::db::qq_link::NewLink {
                app_id: crate::helpers::APP_ID,
                openid: &openid,
                unionid: None,
                nickname: None,
                avatar_url: None,
            };
            qqlogin::db::qq_link::insert(conn, new, user_id)
        }
    };

    let (release, released) = std::sync::mpsc::channel::<()>();
    let (linked, first_linked) = tokio::sync::oneshot::channel();
    let first = {
        let (db, link) = (db.clone(), link(openid.clone(), 1));
        actix_web::rt::spawn(async move {
            db.transaction(move |conn| {
                link(conn)?;
                let _ = linked.send(());
                let _ = released.recv();
                Ok::<_, qqlogin::db::DbError>(())
            })
            .await
        })
    };
    if first_linked.await.is_err() {
        panic!("the first link failed: {:?}", first.await);
    }
    let second = {
        let (db, link) = (db.clone(), link(openid.clone(), 2));
        actix_web::rt::spawn(async move { db.transaction(link).await })
    };
    if let Backend::Postgres(_) = backend {
        // Let the first commit only once the second waits on the lock.
        let waiting = crate::helpers::eventually(Duration::from_secs(5), async || {
            db.run(|conn| {
                let conn: &mut qqlogin::db::DbConn = conn;
                Ok(diesel::sql_query(
                    "SELECT 1 AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted",
                )
                .load::<Waiting>(conn)?
                .len())
            })
            .await
            .unwrap()
                > 0
        })
        .await;
        assert!(waiting, "the second link did not wait for the first");
    }
    release.send(()).unwrap();
    first.await.unwrap().unwrap();
    let refused = second
        .await
        .unwrap()
        .expect_err("a second link of one openid");
    assert!(refused.is_unique_violation(), "{refused}");
    assert_eq!(site_links(&app).await, vec![(1, openid)]);
}

#[derive(QueryableByName)]
struct Waiting {
    #[diesel(sql_type = diesel::sql_types::Integer)]
    #[allow(dead_code)]
    n: i32,
}

backend_tests!(
    the_sites_registration_finds_the_sms_codes_sent_here,
    a_link_waits_for_one_in_flight_and_is_refused,
    an_account_made_through_qqlogin_is_the_django_sites_own,
    the_django_sites_people_log_in_and_link_qq,
    an_openid_linked_twice_by_the_site_logs_in_no_one,
    concurrent_binds_of_one_openid_make_one_django_link,
);

//! The storage layer's promises, on both databases: a write is one
//! transaction that lands whole or not at all, writes at once all land, a
//! write that cannot get a connection in time is told so, and a pool that
//! lost its connections recovers by itself.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::join_all;
use qqlogin::db::schema::sessions;
use qqlogin::db::{self, Db, DbConn, DbError};

use crate::backend_tests;
use crate::helpers::{Backend, DbProxy, TestDb, eventually};

async fn migrated(backend: &Backend, wait: Duration) -> (TestDb, Db) {
    let test_db = TestDb::new(backend);
    let db = Db::new(test_db.url.clone(), Default::default(), 2, wait);
    db.migrate().await.unwrap();
    (test_db, db)
}

fn insert_session(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
    let expires = db::now() + time::Duration::hours(1);
    db::session::insert(conn, id, "{}", db::session::Owner::default(), expires)
}

async fn session_ids(db: &Db) -> Vec<String> {
    db.run(|conn| {
        let conn: &mut qqlogin::db::DbConn = conn;
        Ok(sessions::table
            .select(sessions::id)
            .order(sessions::id)
            .load::<String>(conn)?)
    })
    .await
    .unwrap()
}

/// Work that holds its connection until the test lets it go.
type Held = (mpsc::Sender<()>, actix_web::rt::task::JoinHandle<()>);

/// Occupies `db`'s writes until the returned sender sends (or is dropped);
/// returns once the blocking write is running.
async fn hold_writes(db: &Db) -> Held {
    hold(db, true).await
}

async fn hold(db: &Db, write: bool) -> Held {
    let (release, released) = mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let mut started = Some(started);
    let work = move |_: &mut qqlogin::db::Conn<'_>| -> Result<(), DbError> {
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        let _ = released.recv();
        Ok(())
    };
    let db = db.clone();
    let held = actix_web::rt::spawn(async move {
        let done = if write {
            db.transaction(work).await
        } else {
            db.run(work).await
        };
        done.unwrap();
    });
    running.await.unwrap();
    (release, held)
}

/// Writes sent at once all land, and each failing one is rolled back whole:
/// a write is one transaction, on both backends alike.
async fn writes_at_once_all_land_and_a_failing_one_leaves_nothing(backend: Backend) {
    let (_test_db, db) = migrated(&backend, Duration::from_secs(10)).await;
    db.transaction(|conn| insert_session(conn, "taken"))
        .await
        .unwrap();

    let good = (0..40).map(|i| {
        let db = db.clone();
        async move {
            db.transaction(move |conn| insert_session(conn, &format!("good-{i:02}")))
                .await
        }
    });
    let bad = (0..5).map(|i| {
        let db = db.clone();
        async move {
            db.transaction(move |conn| {
                insert_session(conn, &format!("half-{i}"))?;
                insert_session(conn, "taken")
            })
            .await
        }
    });
    let (good, bad) = tokio::join!(join_all(good), join_all(bad));

    for (i, result) in good.into_iter().enumerate() {
        assert!(result.is_ok(), "good write {i}: {result:?}");
    }
    for (i, result) in bad.into_iter().enumerate() {
        let error: DbError = result.expect_err("a duplicate key was accepted");
        assert!(error.is_unique_violation(), "bad write {i}: {error}");
    }
    let ids = session_ids(&db).await;
    let mut expected: Vec<String> = (0..40).map(|i| format!("good-{i:02}")).collect();
    expected.push("taken".to_owned());
    assert_eq!(ids, expected, "exactly the good writes landed, none half");
}

/// A write that cannot get its connection within the wait is answered
/// "unavailable" (a 503 for the person), in about that time, instead of
/// hanging; the writes after it land.
async fn a_write_that_waits_too_long_is_answered_unavailable(backend: Backend) {
    let wait = Duration::from_millis(300);
    let test_db = TestDb::new(&backend);
    // One connection in all, so that holding the writer holds every connection.
    let db = Db::new(test_db.url.clone(), Default::default(), 1, wait);
    db.migrate().await.unwrap();
    let (release, held) = hold_writes(&db).await;

    let asked = Instant::now();
    let result = db.transaction(|conn| insert_session(conn, "late")).await;
    let waited = asked.elapsed();
    let error: DbError = result.expect_err("the write should have timed out");
    assert!(error.is_unavailable(), "{error}");
    assert!(
        waited >= wait && waited < wait * 5,
        "answered after {waited:?}"
    );

    release.send(()).unwrap();
    held.await.unwrap();
    db.transaction(|conn| insert_session(conn, "next"))
        .await
        .unwrap();
    assert_eq!(session_ids(&db).await, vec!["next".to_owned()]);
}

/// Once the server drops the pool's connections (a restart, a network
/// blip), a query that meets a dead one fails with "unavailable" (a 503) and
/// the pool drops that connection: after at most one such failure per pooled
/// connection, queries get new connections and work, with no restart.
#[actix_web::test]
async fn after_the_server_dropped_its_connections_the_pool_recovers() {
    let Some((proxy, proxied)) = DbProxy::in_front_of_postgres().await else {
        return;
    };
    let db = Db::new(
        qqlogin::config::DatabaseUrl::parse(&proxied).unwrap(),
        Default::default(),
        2,
        Duration::from_secs(5),
    );
    let slow = || db.run(|conn| Ok(conn.batch_execute("SELECT pg_sleep(0.02)")?));
    for result in join_all((0..12).map(|_| slow())).await {
        result.unwrap();
    }
    assert_eq!(
        proxy.connections(),
        2,
        "the pool should hold two connections"
    );

    proxy.cut();
    let cut = eventually(Duration::from_secs(5), async || {
        proxy.open_connections() == 0
    })
    .await;
    assert!(cut, "the proxy did not drop the connections");
    proxy.restore();
    let mut failed = 0;
    for i in 0..6 {
        match db.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await {
            Ok(()) => {}
            Err(e) => {
                assert!(e.is_unavailable(), "a lost connection is a 503: {e}");
                assert!(i < 2, "query {i} met a dead connection the pool kept");
                failed += 1;
            }
        }
    }
    assert!(failed <= 2, "{failed} queries met a dead connection");
    assert_eq!(
        proxy.connections(),
        3,
        "the dead pair replaced by one new connection"
    );
}

/// The purge forgets exactly the used states past their expiry: those keyed
/// by their login's time through a range of the key, those keyed by their
/// plain hash (from before the time prefix) through their own index.
async fn the_purge_forgets_exactly_the_used_states_past_their_expiry(backend: Backend) {
    use qqlogin::db::schema::used_oauth_states;
    let (_test_db, db) = migrated(&backend, Duration::from_secs(5)).await;
    let now = db::now();
    let (minute, hour) = (time::Duration::minutes(1), time::Duration::hours(1));
    let begun = |at: time::PrimitiveDateTime, rest: char| {
        let millis = at.assume_utc().unix_timestamp_nanos() / 1_000_000;
        format!("{millis:012x}.{}", rest.to_string().repeat(64))
    };
    let rows = [
        (
            "begun long ago, expired",
            begun(now - 2 * hour, 'a'),
            now - hour,
            false,
        ),
        ("begun now, live", begun(now, 'b'), now + 10 * minute, true),
        // Another instance's clock ahead: the expiry decides, not the key.
        (
            "begun long ago, live",
            begun(now - 2 * hour, 'c'),
            now + minute,
            true,
        ),
        (
            "plain hash sorting last, expired",
            "f".repeat(64),
            now - hour,
            false,
        ),
        (
            "plain hash sorting first, expired",
            "0".repeat(64),
            now - hour,
            false,
        ),
        (
            "plain hash sorting first, live",
            "0".repeat(63) + "1",
            now + minute,
            true,
        ),
    ];
    for (_, key, expires_at, _) in &rows {
        let (key, expires_at) = (key.clone(), *expires_at);
        let first_use: bool = db
            .write(move |c| db::oauth_state::use_once(c, &key, expires_at))
            .await
            .unwrap();
        assert!(first_use);
    }

    let purged: usize = db
        .write(move |c| db::oauth_state::purge_expired(c, now, time::Duration::minutes(10)))
        .await
        .unwrap();
    let left: Vec<String> = db
        .run(|c| {
            let c: &mut DbConn = c;
            Ok(used_oauth_states::table
                .select(used_oauth_states::state_hash)
                .load(c)?)
        })
        .await
        .unwrap();
    for (what, key, _, kept) in &rows {
        assert_eq!(left.contains(key), *kept, "{what}");
    }
    assert_eq!(purged, 3, "{left:?}");
}

/// docs/operating.md's "Commits on PostgreSQL": a setting added to
/// `DATABASE_URL` as `options=` reaches every pooled connection, writes too.
#[actix_web::test]
async fn a_setting_in_the_database_url_reaches_every_connection() {
    let Some(Backend::Postgres(base)) = Backend::postgres() else {
        return;
    };
    let separator = if base.contains('?') { '&' } else { '?' };
    let url = format!("{base}{separator}options=-c%20synchronous_commit%3Doff");
    let db = Db::new(
        qqlogin::config::DatabaseUrl::parse(&url).unwrap(),
        Default::default(),
        2,
        Duration::from_secs(5),
    );
    let setting = || {
        |conn: &mut qqlogin::db::Conn<'_>| -> Result<String, DbError> {
            let conn: &mut DbConn = conn;
            Ok(diesel::select(diesel::dsl::sql::<diesel::sql_types::Text>(
                "current_setting('synchronous_commit')",
            ))
            .get_result(conn)?)
        }
    };
    assert_eq!(db.run(setting()).await.unwrap(), "off");
    assert_eq!(db.write(setting()).await.unwrap(), "off");
    let plain = Db::new(
        qqlogin::config::DatabaseUrl::parse(&base).unwrap(),
        Default::default(),
        1,
        Duration::from_secs(5),
    );
    assert_eq!(plain.run(setting()).await.unwrap(), "on");
}

backend_tests!(
    the_purge_forgets_exactly_the_used_states_past_their_expiry,
    writes_at_once_all_land_and_a_failing_one_leaves_nothing,
    a_write_that_waits_too_long_is_answered_unavailable,
);

//! The storage lanes: work queued while the database is busy is run in
//! batches, a write that fails takes nothing else with it, and work whose
//! caller gave up is not run.

use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use futures_util::future::join_all;
use qqlogin::db::batch::Batched;
use qqlogin::db::schema::sessions;
use qqlogin::db::user::User;
use qqlogin::db::{self, Db, DbConn, DbError};

use crate::backend_tests;
use crate::helpers::{Backend, DbProxy, TestDb, eventually};

async fn migrated(backend: &Backend, wait: Duration) -> (TestDb, Db) {
    let test_db = TestDb::new(backend);
    let db = Db::new(test_db.url.clone(), 2, wait);
    db.migrate().await.unwrap();
    (test_db, db)
}

fn insert_session(conn: &mut DbConn, id: &str) -> Result<(), DbError> {
    let expires = db::now() + time::Duration::hours(1);
    db::session::insert(conn, id, "{}", expires)
}

async fn session_ids(db: &Db) -> Vec<String> {
    db.run(|conn| {
        Ok(sessions::table
            .select(sessions::id)
            .order(sessions::id)
            .load::<String>(conn)?)
    })
    .await
    .unwrap()
}

/// Work that blocks its drainer until the test lets it go.
type Held = (mpsc::Sender<()>, actix_web::rt::task::JoinHandle<()>);

/// Occupies `db`'s lane for reads (with a pool of one, all of it) until the
/// returned sender sends; returns once the blocking work is running.
async fn hold_reads(db: &Db) -> Held {
    hold(db, false).await
}

/// Occupies `db`'s writes until the returned sender sends (or is dropped);
/// returns once the blocking write is running.
async fn hold_writes(db: &Db) -> Held {
    hold(db, true).await
}

async fn hold(db: &Db, write: bool) -> Held {
    let (release, released) = mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let mut started = Some(started);
    let work = move |_: &mut DbConn| {
        if let Some(started) = started.take() {
            let _ = started.send(());
        }
        let _ = released.recv();
        Ok(())
    };
    let db = db.clone();
    let held = actix_web::rt::spawn(async move {
        let done = if write {
            db.write(work).await
        } else {
            db.run(work).await
        };
        done.unwrap();
    });
    running.await.unwrap();
    (release, held)
}

/// Many writes queued behind a busy writer all land, and each failing one
/// is refused alone: on SQLite they share one transaction (group commit);
/// once one fails the batch runs again, each write in its own savepoint, so
/// the failed one leaves none of its rows and the others land once.
async fn queued_writes_all_land_and_a_failing_one_is_rolled_back_alone(backend: Backend) {
    let (_test_db, db) = migrated(&backend, Duration::from_secs(10)).await;
    db.write(|conn| insert_session(conn, "taken"))
        .await
        .unwrap();
    let (release, held) = hold_writes(&db).await;

    let good = (0..40).map(|i| {
        let db = db.clone();
        async move {
            db.write(move |conn| insert_session(conn, &format!("good-{i:02}")))
                .await
        }
    });
    let bad = (0..5).map(|i| {
        let db = db.clone();
        async move {
            db.write(move |conn| {
                use diesel::Connection;
                // Atomic on PostgreSQL only inside a transaction of its own
                // (`Db::write`'s contract); on SQLite the write lane makes it so.
                conn.transaction(|conn| {
                    insert_session(conn, &format!("half-{i}"))?;
                    insert_session(conn, "taken")
                })
            })
            .await
        }
    });
    let mut good = Box::pin(join_all(good));
    let mut bad = Box::pin(join_all(bad));
    // One poll queues every write behind the held one.
    assert!(futures_util::poll!(&mut good).is_pending());
    assert!(futures_util::poll!(&mut bad).is_pending());
    release.send(()).unwrap();
    held.await.unwrap();

    for (i, result) in good.await.into_iter().enumerate() {
        assert!(result.is_ok(), "good write {i}: {result:?}");
    }
    for (i, result) in bad.await.into_iter().enumerate() {
        let error = result.expect_err("a duplicate key was accepted");
        assert!(error.is_unique_violation(), "bad write {i}: {error}");
    }
    let ids = session_ids(&db).await;
    let mut expected: Vec<String> = (0..40).map(|i| format!("good-{i:02}")).collect();
    expected.push("taken".to_owned());
    assert_eq!(ids, expected, "exactly the good writes landed");
}

/// A write still queued when its caller stops waiting (a closed connection,
/// a time-out) is not run at all.
async fn work_whose_caller_gave_up_is_not_run(backend: Backend) {
    let (_test_db, db) = migrated(&backend, Duration::from_secs(10)).await;
    let (release, held) = hold_writes(&db).await;

    let mut abandoned = Box::pin(db.write(|conn| insert_session(conn, "abandoned")));
    assert!(futures_util::poll!(&mut abandoned).is_pending());
    drop(abandoned);
    let mut kept = Box::pin(db.write(|conn| insert_session(conn, "kept")));
    assert!(futures_util::poll!(&mut kept).is_pending());
    release.send(()).unwrap();
    held.await.unwrap();
    kept.await.unwrap();

    assert_eq!(session_ids(&db).await, vec!["kept".to_owned()]);
}

/// Work that cannot get its turn within the wait is answered "busy" (a 503
/// for the person), in about that time, instead of hanging.
async fn work_that_waits_too_long_is_answered_busy(backend: Backend) {
    let wait = Duration::from_millis(300);
    let (_test_db, db) = migrated(&backend, wait).await;
    let (release, held) = hold_writes(&db).await;

    let asked = Instant::now();
    let result = db.write(|conn| insert_session(conn, "late")).await;
    let waited = asked.elapsed();
    assert!(matches!(result, Err(DbError::Saturated)), "{result:?}");
    assert!(
        waited >= wait && waited < wait * 5,
        "answered after {waited:?}"
    );

    release.send(()).unwrap();
    held.await.unwrap();
    // The lane recovers: the next write lands (the timed-out one never does).
    db.write(|conn| insert_session(conn, "next")).await.unwrap();
    assert_eq!(session_ids(&db).await, vec!["next".to_owned()]);
}

/// A user per mobile, each linked to the openid `OPENID-<mobile>` of `app`.
async fn linked_users(db: &Db, app: &'static str, mobiles: &[&str]) {
    for mobile in mobiles {
        let mobile = mobile.to_string();
        db.write(move |conn| {
            let user = db::user::insert(conn, &mobile, "not-a-hash")?;
            db::qq_link::insert(conn, app, &format!("OPENID-{mobile}"), user.id)
        })
        .await
        .unwrap();
    }
}

type Queried = Arc<Mutex<Vec<Vec<String>>>>;

/// Batched look-ups by openid that record every query's keys.
fn recorded_lookups(db: &Db, app: &'static str) -> (Batched<String, User>, Queried) {
    let queried = Queried::default();
    let log = Arc::clone(&queried);
    let lookups = Batched::new(db.clone(), move |conn, openids: &[String]| {
        log.lock().unwrap().push(openids.to_vec());
        db::user::find_by_openids(conn, app, openids)
    });
    (lookups, queried)
}

/// Look-ups that queue while the database is busy are answered together by
/// one query — the right user to each, nobody to the unlinked — and an idle
/// look-up is answered by itself.
async fn lookups_queued_together_are_answered_by_one_query(backend: Backend) {
    let test_db = TestDb::new(&backend);
    let db = Db::new(test_db.url.clone(), 1, Duration::from_secs(10));
    db.migrate().await.unwrap();
    linked_users(&db, "app", &["13800000001", "13800000002", "13800000003"]).await;
    // Another app's link to the same openid must not answer for ours.
    linked_users(&db, "other-app", &["13900000009"]).await;
    let (lookups, queried) = recorded_lookups(&db, "app");

    let (release, held) = hold_reads(&db).await;
    let asked: Vec<String> = (0..60)
        .map(|i| match i % 5 {
            0 => "OPENID-13800000001".to_owned(),
            1 => "OPENID-13800000002".to_owned(),
            2 => "OPENID-13800000003".to_owned(),
            3 => "OPENID-13900000009".to_owned(),
            _ => format!("UNLINKED-{i}"),
        })
        .collect();
    let mut answers = Box::pin(join_all(asked.iter().map(|k| lookups.get(k.clone()))));
    assert!(futures_util::poll!(&mut answers).is_pending());
    release.send(()).unwrap();
    held.await.unwrap();

    for (openid, answer) in asked.iter().zip(answers.await) {
        let user = answer.unwrap();
        match openid.strip_prefix("OPENID-138") {
            Some(_) => assert_eq!(
                user.map(|u| format!("OPENID-{}", u.mobile)).as_deref(),
                Some(openid.as_str())
            ),
            None => assert!(user.is_none(), "{openid} found {user:?}"),
        }
    }
    let queries = queried.lock().unwrap().clone();
    assert_eq!(queries.len(), 1, "{queries:?}");
    assert_eq!(queries[0].len(), 4 + 12, "each openid asked once");

    let alone = lookups.get("OPENID-13800000002".to_owned()).await.unwrap();
    assert_eq!(alone.unwrap().mobile, "13800000002");
    assert_eq!(queried.lock().unwrap().len(), 2);
}

/// A look-up of many openids finds exactly the linked ones, whatever the
/// length of the list: on SQLite it is asked eight at a time
/// ([`db::user::LOOKUP_ARITY`]), a short last part padded.
async fn a_lookup_of_any_length_finds_exactly_the_linked_openids(backend: Backend) {
    let (_test_db, db) = migrated(&backend, Duration::from_secs(10)).await;
    let mobiles: Vec<String> = (0..20).map(|i| format!("138000000{i:02}")).collect();
    let linked: Vec<&str> = mobiles.iter().map(String::as_str).collect();
    linked_users(&db, "app", &linked).await;
    linked_users(&db, "other-app", &["13900000009"]).await;

    for n in [2, 3, 7, 8, 9, 16, 17, 41] {
        // Every third one is not linked, one is linked for another app only,
        // and past twenty the linked ones come again.
        let asked: Vec<String> = (0..n)
            .map(|i| match i {
                _ if i % 3 == 1 => format!("UNLINKED-{i}"),
                5 => "OPENID-13900000009".to_owned(),
                _ => format!("OPENID-{}", mobiles[i % mobiles.len()]),
            })
            .collect();
        let query = asked.clone();
        let found = db
            .run(move |conn| db::user::find_by_openids(conn, "app", &query))
            .await
            .unwrap();
        let mut found: Vec<(String, String)> = found
            .into_iter()
            .map(|(openid, user)| (openid, format!("OPENID-{}", user.mobile)))
            .collect();
        found.sort();
        found.dedup();
        let mut expected: Vec<(String, String)> = asked
            .iter()
            .filter(|o| o.starts_with("OPENID-138"))
            .map(|o| (o.clone(), o.clone()))
            .collect();
        expected.sort();
        expected.dedup();
        assert_eq!(found, expected, "asked {n}: {asked:?}");
    }
}

/// When the database cannot take the query in time, every look-up waiting
/// for it hears "busy" (a 503), and the next look-up works again.
async fn lookups_that_cannot_get_their_turn_all_hear_busy(backend: Backend) {
    let test_db = TestDb::new(&backend);
    let db = Db::new(test_db.url.clone(), 1, Duration::from_millis(300));
    db.migrate().await.unwrap();
    linked_users(&db, "app", &["13800000001"]).await;
    let (lookups, _) = recorded_lookups(&db, "app");

    let (release, held) = hold_reads(&db).await;
    let answers = join_all((0..10).map(|_| lookups.get("OPENID-13800000001".to_owned()))).await;
    for answer in answers {
        let error = answer.expect_err("answered while the database was held");
        assert!(error.is_unavailable(), "{error}");
    }
    release.send(()).unwrap();
    held.await.unwrap();
    let user = lookups.get("OPENID-13800000001".to_owned()).await.unwrap();
    assert_eq!(user.unwrap().mobile, "13800000001");
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Plans {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    generic_plans: i64,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    custom_plans: i64,
}

/// On PostgreSQL the batched look-up is planned once per connection. Left
/// to choose, the server plans `openid = ANY($2)` for each of a
/// connection's first five batches and, on an established site's tables,
/// if those were short, for every batch shorter than about ten openids
/// from then on: 0.1 ms each (BENCHMARKS.md).
#[actix_web::test]
async fn on_postgresql_batched_lookups_are_not_planned_again_and_again() {
    let Some(backend) = Backend::postgres() else {
        return;
    };
    let test_db = TestDb::new(&backend);
    // One connection: every look-up and the count below share it.
    let db = Db::new(test_db.url.clone(), 1, Duration::from_secs(10));
    db.migrate().await.unwrap();
    let mobiles: Vec<String> = (0..13).map(|i| format!("138000000{i:02}")).collect();
    linked_users(
        &db,
        "app",
        &mobiles.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;

    let openids: Vec<String> = mobiles.iter().map(|m| format!("OPENID-{m}")).collect();
    let (found, plans) = db
        .run(move |conn| {
            // Batches of every length from two to thirteen, twice.
            let mut found = Vec::new();
            for n in (2..=openids.len()).chain(2..=openids.len()) {
                found.push(db::user::find_by_openids(conn, "app", &openids[..n])?.len());
            }
            let DbConn::Postgres(pg) = conn else {
                unreachable!("a PostgreSQL URL gives a PostgreSQL connection")
            };
            let plans = diesel::sql_query(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
                 WHERE statement LIKE '%= ANY%'",
            )
            .load::<Plans>(pg)?;
            Ok((found, plans))
        })
        .await
        .unwrap();

    let lengths: Vec<usize> = (2..=13).chain(2..=13).collect();
    assert_eq!(found, lengths, "each batch finds all its linked openids");
    assert_eq!(
        plans,
        [Plans {
            generic_plans: 24,
            custom_plans: 0
        }]
    );
}

/// A connection that answered a moment ago leaves the pool unchecked (no
/// round trip), but once one is found dead — the server went away — every
/// other is checked again before use: after a blip only the request that met
/// the dead connection fails, with a 503, and the next ones work.
#[actix_web::test]
async fn after_a_lost_connection_the_other_pooled_ones_are_checked_before_use() {
    let Some((proxy, proxied)) = DbProxy::in_front_of_postgres().await else {
        return;
    };
    let db = Db::new(
        qqlogin::config::DatabaseUrl::parse(&proxied).unwrap(),
        2,
        Duration::from_secs(5),
    );
    let slow = || db.run(|conn| Ok(conn.batch_execute("SELECT pg_sleep(0.02)")?));
    // Enough at once that both connections open (a second drainer starts).
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
    let mut failures = 0;
    for i in 0..6 {
        match db.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await {
            Ok(()) => {}
            Err(e) => {
                assert!(e.is_unavailable(), "a lost connection is a 503: {e}");
                assert_eq!(i, 0, "only the first query may meet a dead connection");
                failures += 1;
            }
        }
    }
    assert!(failures <= 1);
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
        let first_use = db
            .write(move |c| db::oauth_state::use_once(c, &key, expires_at))
            .await
            .unwrap();
        assert!(first_use);
    }

    let purged = db
        .write(move |c| db::oauth_state::purge_expired(c, now))
        .await
        .unwrap();
    let left: Vec<String> = db
        .run(|c| {
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

backend_tests!(
    the_purge_forgets_exactly_the_used_states_past_their_expiry,
    queued_writes_all_land_and_a_failing_one_is_rolled_back_alone,
    work_whose_caller_gave_up_is_not_run,
    work_that_waits_too_long_is_answered_busy,
    lookups_queued_together_are_answered_by_one_query,
    a_lookup_of_any_length_finds_exactly_the_linked_openids,
    lookups_that_cannot_get_their_turn_all_hear_busy
);

/// On SQLite every write is atomic by itself, with no transaction of its
/// own: when one in a batch fails, the write lane rolls the batch back and
/// runs it again with a savepoint per write; the others land once.
#[actix_web::test]
async fn on_sqlite_a_write_that_fails_halfway_leaves_nothing_and_spoils_no_neighbour() {
    let (_test_db, db) = migrated(&Backend::Sqlite, Duration::from_secs(10)).await;
    db.write(|conn| insert_session(conn, "taken"))
        .await
        .unwrap();
    let (release, held) = hold_writes(&db).await;

    let mut before = Box::pin(db.write(|conn| insert_session(conn, "before")));
    let mut halfway = Box::pin(db.write(|conn| {
        insert_session(conn, "half")?;
        insert_session(conn, "taken")
    }));
    let mut after = Box::pin(db.write(|conn| insert_session(conn, "after")));
    assert!(futures_util::poll!(&mut before).is_pending());
    assert!(futures_util::poll!(&mut halfway).is_pending());
    assert!(futures_util::poll!(&mut after).is_pending());
    release.send(()).unwrap();
    held.await.unwrap();

    before.await.unwrap();
    assert!(halfway.await.unwrap_err().is_unique_violation());
    after.await.unwrap();
    assert_eq!(session_ids(&db).await, ["after", "before", "taken"]);
}

/// A write alone in its batch runs without a savepoint of its own; failing
/// half-way, it still leaves nothing behind.
#[actix_web::test]
async fn on_sqlite_a_lone_write_that_fails_halfway_leaves_nothing() {
    let (_test_db, db) = migrated(&Backend::Sqlite, Duration::from_secs(10)).await;
    db.write(|conn| insert_session(conn, "taken"))
        .await
        .unwrap();

    let halfway = db
        .write(|conn| {
            insert_session(conn, "half")?;
            insert_session(conn, "taken")
        })
        .await;

    assert!(halfway.unwrap_err().is_unique_violation());
    assert_eq!(session_ids(&db).await, ["taken"]);
    db.write(|conn| insert_session(conn, "after"))
        .await
        .unwrap();
    assert_eq!(session_ids(&db).await, ["after", "taken"]);
}

/// On SQLite the writes reach the database file itself soon after they
/// commit: a thread beside the writer copies the WAL back (the writer's own
/// automatic checkpoint only starts at 20 000 pages, 80 MB of WAL).
#[actix_web::test]
async fn on_sqlite_committed_writes_are_checkpointed_into_the_database_file() {
    let (test_db, db) = migrated(&Backend::Sqlite, Duration::from_secs(10)).await;
    let qqlogin::config::DatabaseUrl::Sqlite { path } = &test_db.url else {
        unreachable!("a SQLite test database");
    };
    let file_size = || std::fs::metadata(path).map_or(0, |m| m.len());
    let before = file_size();

    // 200 sessions of 1 KiB each: at least fifty 4 KiB pages.
    let state = format!("{{\"pad\":\"{}\"}}", "x".repeat(1024));
    let writes = (0..200).map(|i| {
        let (db, state) = (db.clone(), state.clone());
        async move {
            db.write(move |conn| {
                let expires = db::now() + time::Duration::hours(1);
                db::session::insert(conn, &format!("s{i:03}"), &state, expires)
            })
            .await
        }
    });
    for written in join_all(writes).await {
        written.unwrap();
    }

    let grown = eventually(Duration::from_secs(10), async || {
        file_size() >= before + 50 * 4096
    })
    .await;
    assert!(
        grown,
        "the database file stayed at {} bytes (from {before}): the writes are still only in the WAL",
        file_size()
    );
    assert_eq!(session_ids(&db).await.len(), 200);
}

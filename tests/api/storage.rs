//! The storage lanes: work queued while the database is busy is run in
//! batches, a write that fails takes nothing else with it, and work whose
//! caller gave up is not run.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use diesel::prelude::*;
use futures_util::future::join_all;
use qqlogin::db::schema::sessions;
use qqlogin::db::{self, Db, DbConn, DbError};

use crate::backend_tests;
use crate::helpers::{Backend, TestDb};

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

/// Occupies `db`'s writes until the returned sender sends (or is dropped);
/// returns once the blocking write is running.
async fn hold_writes(db: &Db) -> (mpsc::Sender<()>, actix_web::rt::task::JoinHandle<()>) {
    let (release, released) = mpsc::channel::<()>();
    let (started, running) = tokio::sync::oneshot::channel();
    let db = db.clone();
    let held = actix_web::rt::spawn(async move {
        db.write(move |_conn| {
            let _ = started.send(());
            let _ = released.recv();
            Ok(())
        })
        .await
        .unwrap();
    });
    running.await.unwrap();
    (release, held)
}

/// Many writes queued behind a busy writer all land, and each failing one
/// is refused alone: on SQLite they share one transaction (group commit),
/// each in its own savepoint, so the failed one leaves none of its rows.
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
                // (`Db::write`'s contract); on SQLite the savepoint is the write lane's.
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

backend_tests!(
    queued_writes_all_land_and_a_failing_one_is_rolled_back_alone,
    work_whose_caller_gave_up_is_not_run,
    work_that_waits_too_long_is_answered_busy
);

/// On SQLite every write is atomic by itself, with no transaction of its
/// own: the write lane gives each one a savepoint in the batch's transaction.
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

//! The connection pool's manager: opening connections, and knowing when a
//! pooled one can be handed out without asking the database first.
//!
//! r2d2 checks a connection each time it leaves the pool. On PostgreSQL that
//! check is a round trip, and under load it doubled the round trips (and the
//! server's work) of every batch. As HikariCP does, a connection that answered
//! a moment ago ([`ALIVE_BYPASS`]) is handed out unchecked, unless the pool
//! has lost a connection since: then every connection is suspect and checked
//! again, so that after an outage no request meets a dead one.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::r2d2::R2D2Connection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use secrecy::ExposeSecret;

use super::checkpoint::BACKSTOP_PAGES;
use super::{DbConn, DbError};
use crate::config::DatabaseUrl;

/// How recently a connection must have answered to skip the check (HikariCP's default).
pub(super) const ALIVE_BYPASS: Duration = Duration::from_millis(500);

/// Counts connections lost to a dead server; a connection that last answered
/// under an older count is checked before use.
#[derive(Debug, Default)]
pub(super) struct Health {
    losses: AtomicU64,
}

impl Health {
    fn losses(&self) -> u64 {
        self.losses.load(Ordering::Acquire)
    }

    fn lost_one(&self) {
        self.losses.fetch_add(1, Ordering::AcqRel);
    }
}

/// A pooled connection, with what the pool knows of its health.
pub(super) struct Pooled {
    conn: DbConn,
    /// When a query last succeeded on it, and the pool's loss count then.
    answered: Option<(Instant, u64)>,
    lost: bool,
}

impl Pooled {
    pub(super) fn conn(&mut self) -> &mut DbConn {
        &mut self.conn
    }

    /// Records how a piece of work on this connection ended. Returns `false`
    /// when the connection was lost (the server went away): it is then
    /// dropped by the pool, and every other connection is checked before use.
    pub(super) fn record(&mut self, health: &Health, outcome: Result<(), &DbError>) -> bool {
        match outcome {
            Ok(()) => {
                self.answered = Some((Instant::now(), health.losses()));
                true
            }
            Err(e) if e.is_connection_lost() => {
                self.lost = true;
                health.lost_one();
                false
            }
            Err(_) => true,
        }
    }
}

/// Opens connections for the pool, choosing the backend by the URL's scheme.
#[derive(Debug)]
pub(super) struct Manager {
    pub(super) target: DatabaseUrl,
    pub(super) health: Arc<Health>,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Pooled, ConnectionError> {
        let conn = match &self.target {
            DatabaseUrl::Sqlite { path } => {
                let mut conn = SqliteConnection::establish(path)?;
                // foreign_keys: SQLite ignores REFERENCES unless asked, per connection.
                // busy_timeout: writers queue for the lock instead of failing at once.
                // WAL: readers never block the writer; NORMAL sync is safe under WAL.
                // wal_autocheckpoint: checkpoints run beside the writer (`checkpoint`).
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                     PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES};"
                ))
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                DbConn::Sqlite(conn)
            }
            DatabaseUrl::Postgres { url } => {
                let mut conn = PgConnection::establish(url.expose_secret())?;
                // Every statement we prepare finds rows by key or walks an
                // index over a range, where the generic plan is the plan. Left
                // to choose (`auto`), the server plans the batched look-up's
                // `openid = ANY($2)` afresh for every batch shorter than its
                // guess for an array (ten), and a connection's first five
                // batches decide whether it ever stops: 0.1 ms of planning per
                // statement, 2.5× the server's CPU per callback (BENCHMARKS.md).
                conn.batch_execute("SET plan_cache_mode = force_generic_plan")
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                DbConn::Postgres(conn)
            }
        };
        Ok(Pooled {
            conn,
            answered: Some((Instant::now(), self.health.losses())),
            lost: false,
        })
    }

    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), ConnectionError> {
        if let Some((at, losses)) = pooled.answered
            && losses == self.health.losses()
            && at.elapsed() < ALIVE_BYPASS
        {
            return Ok(());
        }
        pooled
            .conn
            .ping()
            .map_err(ConnectionError::CouldntSetupConfiguration)?;
        pooled.answered = Some((Instant::now(), self.health.losses()));
        Ok(())
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        pooled.lost || pooled.conn.is_broken()
    }
}

impl DbError {
    /// Whether the connection itself failed (the server went away), rather
    /// than the statement.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                _,
            )) => true,
            Self::Shared(e) => e.is_connection_lost(),
            _ => false,
        }
    }
}

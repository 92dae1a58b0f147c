//! Storage: one connection type for SQLite and PostgreSQL, an r2d2 pool, and
//! the two doors ([`Db::run`], [`Db::write`]) through which async code reaches them.
//!
//! Queries are plain synchronous functions in the submodules; they take a
//! `&mut DbConn`, run their statements on the backend's own connection
//! (`on_backend!`) and know nothing of actix. Both doors queue the work in a
//! [`lane`] that blocking threads drain. Look-ups by a unique key use
//! `get_result`, not `first`: `first` binds its `LIMIT` as a parameter, and
//! SQLite re-prepares a statement whose bound `LIMIT` changes, on every call
//! (measured: 13.3 µs → 3.7 µs per look-up; BENCHMARKS.md).

/// Runs `$body` with `$c` bound to the backend's own connection inside a
/// [`DbConn`].
///
/// Through diesel's `MultiConnection` every execution renders the statement
/// as SQL text again and collects its binds twice, even when the backend has
/// it prepared already; on the backend's own connection a cached statement is
/// only bound and stepped (BENCHMARKS.md: about 4 % of a page login's
/// instructions). The body is compiled once per backend, so each query is
/// still written once. Transactions stay `DbConn`'s: it hands them to the
/// same backend connection, whose transaction state the body then shares.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConn::Sqlite($c) => $body,
            $crate::db::DbConn::Postgres($c) => $body,
        }
    };
}

pub mod batch;
mod checkpoint;
mod lane;
pub mod login_failure;
pub mod oauth_state;
mod pool;
pub mod qq_link;
pub mod schema;
pub mod session;
pub mod user;

use std::sync::Arc;
use std::time::Duration;

use diesel::Connection;
use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::sqlite::SqliteConnection;
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

use crate::config::DatabaseUrl;
use checkpoint::Checkpointer;
use lane::Lane;
use pool::{Health, Manager};

/// A connection to either backend; diesel dispatches every query on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgresql");

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Arc<r2d2::Error>),
    #[error("database query failed: {0}")]
    Query(#[from] diesel::result::Error),
    /// The write ran, but the commit that carried it (with others) failed.
    #[error("database commit failed: {0}")]
    Commit(#[source] Arc<diesel::result::Error>),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// Every connection stayed busy for the whole wait: the database is saturated.
    #[error("database busy: no connection freed up in time")]
    Saturated,
    /// The blocking task was cancelled (the runtime is shutting down).
    #[error("database task was cancelled")]
    Cancelled,
    /// One failure that several callers share (a batched look-up's query).
    #[error(transparent)]
    Shared(Arc<DbError>),
}

impl DbError {
    /// Whether the error is a unique-constraint violation (a lost race, a duplicate).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Query(diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::UniqueViolation,
                _,
            )) => true,
            Self::Shared(e) => e.is_unique_violation(),
            _ => false,
        }
    }

    /// Whether the database is down or too busy (a 503, not a bug).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Self::Unavailable(_) | Self::Saturated => true,
            Self::Shared(e) => e.is_unavailable(),
            _ => self.is_connection_lost(),
        }
    }
}

/// The pooled database, cheap to clone; every request reaches storage through it.
#[derive(Clone)]
pub struct Db {
    lane: Arc<Lane>,
    /// SQLite's one writer, with group commit; on PostgreSQL writes share `lane`.
    writes: Option<Arc<Lane>>,
}

impl Db {
    /// Builds the pool without connecting: the service starts even while the
    /// database is briefly down, and connects on first use. Work waits at
    /// most `connection_timeout` for its turn.
    pub fn new(target: DatabaseUrl, max_size: u32, connection_timeout: Duration) -> Self {
        let sqlite = matches!(target, DatabaseUrl::Sqlite { .. });
        let checkpointer = match &target {
            DatabaseUrl::Sqlite { path } => Checkpointer::start(path.clone())
                .inspect_err(|e| {
                    log::error!(
                        "no background WAL checkpoints ({e}): SQLite's own start at {} pages",
                        checkpoint::BACKSTOP_PAGES
                    );
                })
                .ok(),
            DatabaseUrl::Postgres { .. } => None,
        };
        let health = Arc::new(Health::default());
        let pool = r2d2::Pool::builder()
            // On SQLite the writer has a connection of its own, beside the others.
            .max_size(max_size + u32::from(sqlite))
            .min_idle(Some(0))
            .connection_timeout(connection_timeout)
            // r2d2 logs every failed connection attempt on its own; ours go
            // through the request's error, once.
            .error_handler(Box::new(r2d2::NopErrorHandler))
            .build_unchecked(Manager {
                target,
                health: Arc::clone(&health),
            });
        let drainers = usize::try_from(max_size).unwrap_or(usize::MAX);
        let lane = |mode, checkpointer| {
            Lane::new(
                pool.clone(),
                Arc::clone(&health),
                mode,
                connection_timeout,
                checkpointer,
            )
        };
        Self {
            writes: sqlite.then(|| lane(lane::Mode::GroupCommit, checkpointer)),
            lane: lane(lane::Mode::Each { drainers }, None),
        }
    }

    /// Runs `f` with a pooled connection on a blocking thread, so that neither
    /// waiting for a connection nor the query itself stalls an async worker.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnMut(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.lane.run(f).await
    }

    /// Runs the write `f`. On SQLite it goes through the one writer, in a
    /// transaction shared with the writes queued beside it, and is answered
    /// once that commits; on PostgreSQL it runs as [`Db::run`] does. So `f`
    /// is atomic on SQLite; on PostgreSQL a write of several statements that
    /// must be atomic opens its own transaction. On SQLite `f` runs a second
    /// time when a neighbour in its batch failed (the batch is then rolled back
    /// and run again, each write in a savepoint): it must do nothing outside
    /// the database that cannot be done twice.
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnMut(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.writes.as_ref().unwrap_or(&self.lane).run(f).await
    }

    /// Applies pending migrations for the connected backend.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.run(|conn| {
            let result = match conn {
                DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
                DbConn::Postgres(c) => {
                    // Two instances starting at once: the advisory lock makes
                    // the second wait, then find nothing left to apply.
                    c.batch_execute("SELECT pg_advisory_lock(7150921)")?;
                    let applied = c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ());
                    c.batch_execute("SELECT pg_advisory_unlock(7150921)")?;
                    applied
                }
            };
            result.map_err(|e| DbError::Migration(e.to_string()))
        })
        .await
    }

    /// Reverts every migration (tests prove each `down.sql` works).
    pub async fn revert_all_migrations(&self) -> Result<(), DbError> {
        self.run(|conn| {
            let result = match conn {
                DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
                DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
            };
            result.map_err(|e| DbError::Migration(e.to_string()))
        })
        .await
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
}

/// The current time as the database stores it (UTC, no offset).
pub fn now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::PrimitiveDateTime::new(now.date(), now.time())
}

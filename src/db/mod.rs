//! Storage: one connection type for SQLite and PostgreSQL, r2d2 pools, and
//! the doors through which async code reaches them.
//!
//! Queries are plain synchronous functions in the submodules, one module per
//! table; they take a `&mut DbConn` and know nothing of actix. Async code
//! reaches them through [`Db::run`] (a read), [`Db::write`] (one statement
//! that writes) and [`Db::transaction`] (several, atomically), which take a
//! pooled connection and run the work on a blocking thread, so that neither
//! waiting for a connection nor the query stalls an async worker; on SQLite,
//! which lets one connection write at a time, the writes run in turn on one
//! thread of their own ([`writer`]). The work
//! gets a [`Conn`], which is a `DbConn` to every query but those of [`user`]
//! and [`qq_link`]: they also ask it whose tables hold the users, the
//! service's or the Django site's ([`shared_tables`]).
//!
//! Adding a table: a migration in `migrations/sqlite/` and one of the same
//! name in `migrations/postgresql/`, its `table!` in [`schema`], a module of
//! query functions here, a test in `tests/api/storage.rs` (which runs on both
//! databases).

pub mod django;
pub mod image_code;
pub mod login_failure;
pub mod oauth_state;
pub mod qq_link;
pub mod schema;
pub mod session;
pub mod shared_tables;
pub mod sign_in_event;
pub mod sms_code;
pub mod user;
mod writer;

use std::sync::Arc;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::pg::PgConnection;
use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};
use secrecy::ExposeSecret;

use crate::config::{DatabaseUrl, UserTables};
use writer::Writer;

/// A connection to either backend; diesel dispatches every query on the variant.
#[derive(diesel::MultiConnection)]
pub enum DbConn {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

/// A connection lent to one piece of work, with where it finds users and
/// their QQ links ([`user`] and [`qq_link`] ask [`Conn::tables`]; every
/// other query takes the [`DbConn`] it dereferences to).
pub struct Conn<'a> {
    db: &'a mut DbConn,
    tables: UserTables,
}

impl Conn<'_> {
    pub fn tables(&self) -> UserTables {
        self.tables
    }
}

impl std::ops::Deref for Conn<'_> {
    type Target = DbConn;

    fn deref(&self) -> &DbConn {
        self.db
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut DbConn {
        self.db
    }
}

/// Where the service's own tables live beside the Django site's on
/// PostgreSQL (`QQLOGIN_USER_TABLES=django`): a schema of its own, put first
/// on the search path the connection has, so that Django's tables are still
/// found where the site keeps them (`public`, usually).
const OWN_SCHEMA: &str = "qqlogin";

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgresql");

/// A failure of the storage layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// No connection could be had in time: the database is down or saturated.
    #[error("database unavailable: {0}")]
    Unavailable(#[from] r2d2::Error),
    #[error("database query failed: {0}")]
    Query(#[from] DieselError),
    #[error("database migration failed: {0}")]
    Migration(String),
    /// The Django site's `tb_oauth_qq` links one QQ account to several users:
    /// the service does not choose one (`qqlogin check` lists them).
    #[error("the QQ account is linked to several users in tb_oauth_qq")]
    LinkedTwice,
    /// A write waited its whole time-out in line for SQLite's writer (behind
    /// a slow one) and was not run.
    #[error("database unavailable: no turn to write within the time-out")]
    NoTurn,
    /// The blocking task was cancelled (the runtime is shutting down).
    #[error("database task was cancelled")]
    Cancelled,
}

impl DbError {
    /// Whether the error is a unique-constraint violation (a lost race, a duplicate).
    pub fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }

    /// Whether a row elsewhere still refers to the one being deleted.
    pub fn is_foreign_key_violation(&self) -> bool {
        matches!(
            self,
            Self::Query(DieselError::DatabaseError(
                DatabaseErrorKind::ForeignKeyViolation,
                _
            ))
        )
    }

    /// Whether the database is down or too busy (a 503, not a bug).
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            Self::Unavailable(_)
                | Self::NoTurn
                | Self::Query(DieselError::DatabaseError(
                    DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                    _,
                ))
        )
    }
}

type Pool = r2d2::Pool<Manager>;

/// The pooled database, cheap to clone; every request reaches storage through it.
#[derive(Clone)]
pub struct Db {
    reads: Pool,
    /// SQLite lets one connection write at a time, and the others wait in
    /// its busy handler, which sleeps between tries: so on SQLite the writes
    /// have a pool of one connection of their own, used by `writer`.
    /// On PostgreSQL this is the same pool as `reads`.
    writes: Pool,
    /// Whether `writes` is a pool of its own (SQLite).
    writes_apart: bool,
    /// SQLite's writer thread; PostgreSQL's writes run like reads.
    writer: Option<Arc<Writer>>,
    tables: UserTables,
}

impl Db {
    /// Builds the pools without connecting: the service starts even while
    /// the database is briefly down, and connects on first use. A request
    /// waits at most `connection_timeout` for a connection.
    pub fn new(
        target: DatabaseUrl,
        tables: UserTables,
        max_size: u32,
        connection_timeout: Duration,
    ) -> Self {
        let pool = |size| {
            r2d2::Pool::builder()
                .max_size(size)
                .min_idle(Some(0))
                .connection_timeout(connection_timeout)
                .test_on_check_out(false)
                // r2d2 logs every failed connection attempt on its own; ours
                // go through the request's error, once.
                .error_handler(Box::new(r2d2::NopErrorHandler))
                .build_unchecked(Manager {
                    target: target.clone(),
                    tables,
                })
        };
        let reads = pool(max_size);
        let (writes, writes_apart) = match target {
            DatabaseUrl::Sqlite { .. } => (pool(1), true),
            DatabaseUrl::Postgres { .. } => (reads.clone(), false),
        };
        let writer = if writes_apart {
            Writer::start().map(Arc::new)
        } else {
            None
        };
        Self {
            reads,
            writes,
            writes_apart,
            writer,
            tables,
        }
    }

    pub fn tables(&self) -> UserTables {
        self.tables
    }

    /// Runs `f` with a pooled connection on a blocking thread: a read.
    pub async fn run<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let job = pooled(self.reads.clone(), self.tables, f);
        actix_web::web::block(move || job(Duration::ZERO))
            .await
            .unwrap_or(Err(DbError::Cancelled))
    }

    /// Runs `f`, one statement that writes, on the writers' connection.
    /// A single statement is a transaction by itself on both backends, so no
    /// `BEGIN`/`COMMIT` is sent around it; several statements that must land
    /// together go through [`Db::transaction`].
    pub async fn write<T, F>(&self, f: F) -> Result<T, DbError>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        self.on_writer(pooled(self.writes.clone(), self.tables, f))
            .await
            .and_then(|done| done)
    }

    /// Runs `f` in one transaction on the writers' connection: it commits
    /// when `f` returns `Ok` and rolls back when it returns `Err`, on both
    /// backends alike. `E` lets a caller roll back for reasons of its own.
    pub async fn transaction<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut Conn<'_>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<DbError> + From<DieselError> + Send + 'static,
    {
        let (pool, tables) = (self.writes.clone(), self.tables);
        self.on_writer(move |waited| {
            let mut pooled = take(&pool, waited)?;
            // A connection lost mid-transaction leaves diesel's transaction
            // manager broken, which `has_broken` sees.
            pooled.conn.transaction(|db| f(&mut Conn { db, tables }))
        })
        .await
        .unwrap_or_else(|e| Err(E::from(e)))
    }

    /// Runs a write's `job` on SQLite's writer thread, or on a blocking
    /// thread on PostgreSQL.
    async fn on_writer<R: Send + 'static>(
        &self,
        job: impl FnOnce(Duration) -> R + Send + 'static,
    ) -> Result<R, DbError> {
        match &self.writer {
            Some(writer) => {
                let within = self.writes.connection_timeout();
                writer.run(within, job).await
            }
            None => actix_web::web::block(move || job(Duration::ZERO))
                .await
                .map_err(|_| DbError::Cancelled),
        }
    }

    /// Applies pending migrations for the connected backend. Sharing the
    /// Django site's tables, it first makes sure they are there.
    pub async fn migrate(&self) -> Result<(), DbError> {
        self.run(|conn| {
            let shared = conn.tables() == UserTables::Django;
            if shared {
                shared_tables::check_present(conn)?;
            }
            let result = match &mut **conn {
                DbConn::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
                DbConn::Postgres(c) => {
                    // Two instances starting at once: the advisory lock makes
                    // the second wait, then find nothing left to apply.
                    c.batch_execute("SELECT pg_advisory_lock(7150921)")?;
                    if shared {
                        c.batch_execute(&format!("CREATE SCHEMA IF NOT EXISTS {OWN_SCHEMA}"))?;
                    }
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
            let result = match &mut **conn {
                DbConn::Sqlite(c) => c.revert_all_migrations(SQLITE_MIGRATIONS).map(|_| ()),
                DbConn::Postgres(c) => c.revert_all_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
            };
            result.map_err(|e| DbError::Migration(e.to_string()))
        })
        .await
    }

    /// Connections open now and, of those, idle (both pools on SQLite).
    pub fn connections(&self) -> (u32, u32) {
        let reads = self.reads.state();
        let mut open = (reads.connections, reads.idle_connections);
        if self.writes_apart {
            let writes = self.writes.state();
            open.0 += writes.connections;
            open.1 += writes.idle_connections;
        }
        open
    }

    /// Whether the database answers a trivial query now.
    pub async fn ping(&self) -> Result<(), DbError> {
        self.run(|conn| Ok(conn.batch_execute("SELECT 1")?)).await
    }
}

/// `f` as a job for a blocking thread or the writer, which takes a
/// connection from `pool` when it runs. A connection that `f` found dead is dropped by the pool.
fn pooled<T, F>(
    pool: Pool,
    tables: UserTables,
    f: F,
) -> impl FnOnce(Duration) -> Result<T, DbError> + Send + 'static
where
    F: FnOnce(&mut Conn<'_>) -> Result<T, DbError> + Send + 'static,
    T: Send + 'static,
{
    move |waited| {
        let mut pooled = take(&pool, waited)?;
        let result = f(&mut Conn {
            db: &mut pooled.conn,
            tables,
        });
        if let Err(e) = &result {
            pooled.lost = e.is_unavailable();
        }
        result
    }
}

/// A connection from `pool` for work that has already `waited` in line for
/// the writer thread: the pool's time-out counts from when the work was asked
/// for, so that a queue behind a database gone away fails in time, not one
/// time-out after another.
fn take(pool: &Pool, waited: Duration) -> Result<r2d2::PooledConnection<Manager>, DbError> {
    let asked = Instant::now();
    let conn = pool.get_timeout(pool.connection_timeout().saturating_sub(waited))?;
    crate::metrics::db_wait((waited + asked.elapsed()).as_secs_f64());
    Ok(conn)
}

/// A pooled connection, and whether a query found it dead.
struct Pooled {
    conn: DbConn,
    lost: bool,
}

/// Opens connections for the pools, choosing the backend by the URL's scheme.
#[derive(Debug)]
struct Manager {
    target: DatabaseUrl,
    tables: UserTables,
}

impl r2d2::ManageConnection for Manager {
    type Connection = Pooled;
    type Error = ConnectionError;

    fn connect(&self) -> Result<Pooled, ConnectionError> {
        let conn = match &self.target {
            DatabaseUrl::Sqlite { path } => {
                let mut conn = SqliteConnection::establish(path)?;
                // foreign_keys: SQLite ignores REFERENCES unless asked, per connection.
                // busy_timeout: a writer from outside (a test, an operator) is waited for.
                // WAL: readers never block the writer; NORMAL sync is safe under WAL.
                conn.batch_execute(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000; \
                     PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                )
                .map_err(ConnectionError::CouldntSetupConfiguration)?;
                DbConn::Sqlite(conn)
            }
            DatabaseUrl::Postgres { url } => {
                let mut conn = PgConnection::establish(url.expose_secret())?;
                if self.tables == UserTables::Django {
                    // Django writes its datetimes in UTC whichever column type
                    // it chose (with or without time zone): so do we.
                    conn.batch_execute(&format!(
                        "SELECT set_config('search_path', \
                         '{OWN_SCHEMA}, ' || current_setting('search_path'), false); \
                         SET TIME ZONE 'UTC'"
                    ))
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
                }
                DbConn::Postgres(conn)
            }
        };
        Ok(Pooled { conn, lost: false })
    }

    /// Not asked as a connection leaves the pool (`test_on_check_out` is
    /// off: that would be a round trip before every query); a dead one is
    /// found by the query that meets it, and dropped ([`Self::has_broken`]).
    fn is_valid(&self, pooled: &mut Pooled) -> Result<(), ConnectionError> {
        pooled
            .conn
            .batch_execute("SELECT 1")
            .map_err(ConnectionError::CouldntSetupConfiguration)
    }

    fn has_broken(&self, pooled: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        pooled.lost || pooled.conn.is_broken()
    }
}

/// The current time as the database stores it (UTC, no offset).
pub fn now() -> time::PrimitiveDateTime {
    let now = time::OffsetDateTime::now_utc();
    time::PrimitiveDateTime::new(now.date(), now.time())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(dir: &tempfile::TempDir, timeout: Duration) -> Db {
        let path = dir.path().join("t.db").to_string_lossy().into_owned();
        Db::new(
            DatabaseUrl::Sqlite { path },
            UserTables::Qqlogin,
            2,
            timeout,
        )
    }

    #[actix_web::test]
    async fn sqlite_writes_run_in_turn_on_the_writer_thread() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir, Duration::from_secs(5));
        let on = |name: &'static str| {
            move |_: &mut Conn<'_>| Ok(std::thread::current().name() == Some(name))
        };
        assert!(db.write(on("sqlite-writer")).await.unwrap());
        assert!(
            db.transaction::<_, DbError, _>(on("sqlite-writer"))
                .await
                .unwrap()
        );
        assert!(!db.run(on("sqlite-writer")).await.unwrap());
    }

    #[actix_web::test]
    async fn a_write_that_panics_leaves_the_writer_writing() {
        let dir = tempfile::tempdir().unwrap();
        let db = sqlite(&dir, Duration::from_secs(5));
        let panicked = db
            .write(|_: &mut Conn<'_>| -> Result<(), DbError> { panic!("on purpose") })
            .await;
        assert!(matches!(panicked, Err(DbError::Cancelled)), "{panicked:?}");
        db.write(|conn| Ok(conn.batch_execute("CREATE TABLE t (x INTEGER)")?))
            .await
            .unwrap();
    }

    /// Work that spent the connection time-out in line fails at once instead
    /// of waiting a time-out of its own (the writes queued behind a database
    /// gone away would otherwise fail one time-out after another).
    #[test]
    fn the_time_waited_in_line_counts_against_the_connection_time_out() {
        let dir = tempfile::tempdir().unwrap();
        let timeout = Duration::from_millis(800);
        let db = sqlite(&dir, timeout);
        let _held = db.writes.get().unwrap();
        let asked = Instant::now();
        assert!(matches!(
            take(&db.writes, timeout),
            Err(DbError::Unavailable(_))
        ));
        assert!(asked.elapsed() < timeout / 2, "{:?}", asked.elapsed());
        let asked = Instant::now();
        assert!(take(&db.writes, Duration::ZERO).is_err());
        assert!(asked.elapsed() >= timeout, "{:?}", asked.elapsed());
    }
}

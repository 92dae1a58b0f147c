//! SQLite's WAL checkpoints, run beside the writer instead of inside its commits.
//!
//! In WAL mode a commit appends pages to the `-wal` file; a checkpoint copies
//! them back into the database file and `fsync`s both. By default SQLite runs
//! one inside whichever commit takes the WAL past 1 000 pages, so during a
//! login burst the one writer regularly stopped for the copy and two
//! `fsync`s (milliseconds on a VM disk) while every login waiting on a write
//! waited with it: measured, a fifth of the machine sat idle in the page flow.
//! Here a thread of its own, on its own connection, runs a passive checkpoint
//! soon after commits — passive checkpoints never block the writer or the
//! readers — and the connections' own automatic checkpoint is only a backstop
//! (at [`BACKSTOP_PAGES`]) should this thread fall behind or fail.

use std::sync::mpsc::{self, Receiver, SyncSender};
use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::sqlite::SqliteConnection;
use diesel::{Connection, ConnectionError};

/// The WAL size (in pages) at which a committing connection checkpoints by
/// itself: far above what the background thread lets accumulate.
pub(super) const BACKSTOP_PAGES: u32 = 20_000;

/// The shortest time between two background checkpoints: commits in between
/// are copied by the next one, so a burst costs a few `fsync`s a second, not
/// one per thousand pages.
const EVERY: Duration = Duration::from_millis(100);

/// Asks the background checkpointer to run; cheap enough to call after every commit.
#[derive(Debug)]
pub(super) struct Checkpointer {
    nudge: SyncSender<()>,
}

impl Checkpointer {
    /// Starts the thread for the database at `path`; it ends once the
    /// returned handle is dropped.
    pub(super) fn start(path: String) -> std::io::Result<Self> {
        let (nudge, nudged) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("sqlite-checkpoint".into())
            .spawn(move || run(&path, &nudged))?;
        Ok(Self { nudge })
    }

    /// Tells the thread there are new pages in the WAL.
    pub(super) fn nudge(&self) {
        // Full: a nudge is already waiting, and it covers this commit too.
        let _ = self.nudge.try_send(());
    }
}

fn run(path: &str, nudged: &Receiver<()>) {
    let mut conn: Option<SqliteConnection> = None;
    let mut failing = false;
    while nudged.recv().is_ok() {
        match checkpoint(path, &mut conn) {
            // Said once per outage, not ten times a second.
            Err(e) if !failing => {
                log::warn!("WAL checkpoint failed ({e}); retrying after the next commits");
                failing = true;
            }
            Err(_) => {}
            Ok(()) if failing => {
                log::info!("WAL checkpoints work again");
                failing = false;
            }
            Ok(()) => {}
        }
        std::thread::sleep(EVERY);
    }
}

/// One passive checkpoint, on `conn` (opened if need be; dropped after a
/// failure, to be opened again next time). The connections' backstop keeps
/// the WAL bounded meanwhile.
fn checkpoint(path: &str, conn: &mut Option<SqliteConnection>) -> Result<(), String> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(open(path).map_err(|e| e.to_string())?),
    };
    c.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")
        .map_err(|e| {
            *conn = None;
            e.to_string()
        })
}

fn open(path: &str) -> Result<SqliteConnection, ConnectionError> {
    let mut conn = SqliteConnection::establish(path)?;
    conn.batch_execute("PRAGMA busy_timeout = 5000;")
        .map_err(ConnectionError::CouldntSetupConfiguration)?;
    Ok(conn)
}

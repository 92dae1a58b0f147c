//! SQLite's writes, run in turn on one thread that holds the writing
//! connection. Through a pool of one, each write would take a blocking
//! thread and wait there for the connection: more threads woken and put to
//! sleep per write, and blocking threads held from the reads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::DbError;

type Job = Box<dyn FnOnce() + Send>;

/// Where a job stands: it is begun or given up exactly once, so that a write
/// answered "no turn" never lands later.
const WAITING: u8 = 0;
const BEGUN: u8 = 1;
const GIVEN_UP: u8 = 2;

pub struct Writer {
    jobs: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the thread; it ends when the last `Writer` is dropped.
    /// `None` if the system would not start it.
    pub fn start() -> Option<Self> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let started = std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                for job in queue {
                    // A job that panics loses its answer (its caller sees it
                    // cancelled), not the writer.
                    let _ = catch_unwind(AssertUnwindSafe(job));
                }
            });
        match started {
            Ok(_) => Some(Self { jobs }),
            Err(e) => {
                log::error!("no SQLite writer thread ({e}): writes take blocking threads");
                None
            }
        }
    }

    /// Runs `job` on the writer thread, telling it how long it waited in
    /// line. A job still in line after `within` (behind a slow one) never
    /// runs, and its caller gets [`DbError::NoTurn`].
    pub async fn run<R: Send + 'static>(
        &self,
        within: Duration,
        job: impl FnOnce(Duration) -> R + Send + 'static,
    ) -> Result<R, DbError> {
        let (answer, mut answered) = tokio::sync::oneshot::channel();
        let turn = Arc::new(AtomicU8::new(WAITING));
        let queued = Instant::now();
        let its_turn = Arc::clone(&turn);
        self.jobs
            .send(Box::new(move || {
                if take_turn(&its_turn, BEGUN) {
                    let _ = answer.send(job(queued.elapsed()));
                }
            }))
            .map_err(|_| DbError::Cancelled)?;
        match tokio::time::timeout(within, &mut answered).await {
            Ok(done) => done.map_err(|_| DbError::Cancelled),
            Err(_) if take_turn(&turn, GIVEN_UP) => Err(DbError::NoTurn),
            // It began just now: its answer is the one to give.
            Err(_) => answered.await.map_err(|_| DbError::Cancelled),
        }
    }
}

fn take_turn(turn: &AtomicU8, to: u8) -> bool {
    turn.compare_exchange(WAITING, to, Ordering::AcqRel, Ordering::Acquire)
        .is_ok()
}

//! Lanes: how async code hands database work to blocking threads.
//!
//! Handing each query to a thread of its own costs two thread wake-ups (there
//! and back), which on two cores under a login burst took more time than the
//! queries. A lane is a queue instead: work waits in it asynchronously,
//! holding no thread and no connection, and a *drainer* — a blocking thread
//! holding one pooled connection — takes the next piece, runs it, answers its
//! caller and takes the next, until the queue is empty. When work comes
//! faster than one drainer clears it, more start, up to the lane's limit.
//!
//! SQLite's writes go through a lane of their own with one drainer and group
//! commit. SQLite lets one connection write at a time; the others wait in its
//! busy handler, which *sleeps* (1, 2, 5, 10 … ms) before trying again, so
//! concurrent writers spend a burst asleep, and every commit appends to the
//! WAL on its own. The write lane's one drainer takes everything queued and
//! runs it as a batch in one transaction and commits once for all (should a
//! write fail, the batch runs again with each write in its own savepoint, so
//! that the failing one is rolled back alone); nobody learns that a write
//! succeeded before that commit has. While writes come several at a time, it
//! waits a moment ([`GATHER`]) for more before a small batch.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use diesel::Connection;
use diesel::connection::TransactionManager;
use tokio::sync::oneshot;

use super::checkpoint::Checkpointer;
use super::pool::{Health, Manager, Pooled};
use super::{DbConn, DbError};

/// The most work one batch takes, so that its latency stays bounded.
const MAX_BATCH: usize = 64;
/// Another drainer starts when more than this much work waits per running drainer.
const QUEUED_PER_DRAINER: usize = 2;
/// How long SQLite's writer waits at most for more writes to join a small
/// batch (PostgreSQL's `commit_delay`): a commit costs about as much as the
/// writes in it, so at moderate concurrency a few hundred microseconds buy
/// batches twice as big. Measured at 32 concurrent page logins: CPU per login
/// −10 %, logins/s +10–13 %, p99 lower; 100 µs did too little, 600–1 000 µs
/// no better (BENCHMARKS.md).
const GATHER: Duration = Duration::from_micros(300);
/// The writer stops waiting once a batch this big is queued (or as big as
/// the last one, if that was smaller).
const GATHER_UP_TO: usize = 8;

/// How a lane runs its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Each piece of work on its own, up to `drainers` batches at once.
    Each { drainers: usize },
    /// One batch at a time, in one transaction (SQLite's writes).
    GroupCommit,
}

/// A queue of database work and the drainers that run it.
pub(super) struct Lane {
    pool: r2d2::Pool<Manager>,
    health: Arc<Health>,
    mode: Mode,
    wait: Duration,
    queue: Mutex<Queue>,
    /// Wakes a writer waiting for its batch to fill ([`Queue::gathering`]).
    filled: Condvar,
    /// Told of every commit (SQLite's writes), so that it copies the WAL back soon.
    checkpointer: Option<Checkpointer>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Box<dyn Job>>,
    drainers: usize,
    /// The batch size the writer is waiting for ([`GATHER`]); 0 when it is not.
    gathering: usize,
}

impl Lane {
    /// A lane over `pool`; callers give up after `wait` in the queue.
    pub(super) fn new(
        pool: r2d2::Pool<Manager>,
        health: Arc<Health>,
        mode: Mode,
        wait: Duration,
        checkpointer: Option<Checkpointer>,
    ) -> Arc<Self> {
        Arc::new(Self {
            pool,
            health,
            mode,
            wait,
            queue: Mutex::default(),
            filled: Condvar::new(),
            checkpointer,
        })
    }

    /// Queues `f` and waits for its result (in group-commit mode, for the
    /// commit that carries it). Work that has not started within the lane's
    /// wait is answered [`DbError::Saturated`] and never runs; nor does work
    /// whose caller went away (a dropped request). Work that has started is
    /// waited for.
    pub(super) async fn run<T, F>(self: &Arc<Self>, f: F) -> Result<T, DbError>
    where
        F: FnMut(&mut DbConn) -> Result<T, DbError> + Send + 'static,
        T: Send + 'static,
    {
        let (reply, mut answer) = oneshot::channel();
        let turn = Arc::new(Turn::default());
        let (start_drainer, filled) = {
            let mut queue = self.lock();
            queue.jobs.push_back(Box::new(Work {
                f,
                reply,
                turn: Arc::clone(&turn),
                result: None,
            }));
            let wanted = queue.drainers == 0
                || (queue.drainers < self.max_drainers()
                    && queue.jobs.len() > queue.drainers * QUEUED_PER_DRAINER);
            queue.drainers += usize::from(wanted);
            let filled = queue.gathering != 0 && queue.jobs.len() >= queue.gathering;
            (wanted, filled)
        };
        if filled {
            self.filled.notify_one();
        }
        if start_drainer {
            let lane = Arc::clone(self);
            // Not awaited: the drainer outlives the work that started it.
            drop(actix_web::rt::task::spawn_blocking(move || lane.drain()));
        }
        let answered = match tokio::time::timeout(self.wait, &mut answer).await {
            Ok(answered) => answered,
            Err(_) if turn.abandon() => return Err(DbError::Saturated),
            // It started just in time: its result is on the way.
            Err(_) => answer.await,
        };
        answered.unwrap_or(Err(DbError::Cancelled))
    }

    /// The queue, once the writer's next batch is worth taking: when the last
    /// batch showed writers at work at once (two or more) and fewer than that
    /// wait now, it waits up to [`GATHER`] for as many (at most
    /// [`GATHER_UP_TO`]). An idle service never waits.
    fn gathered(&self, last: usize) -> MutexGuard<'_, Queue> {
        let mut queue = self.lock();
        let wanted = last.min(GATHER_UP_TO);
        if self.mode != Mode::GroupCommit || last < 2 || queue.jobs.len() >= wanted {
            return queue;
        }
        queue.gathering = wanted;
        let (mut queue, _) = self
            .filled
            .wait_timeout_while(queue, GATHER, |queue| queue.jobs.len() < wanted)
            .unwrap_or_else(PoisonError::into_inner);
        queue.gathering = 0;
        queue
    }

    fn max_drainers(&self) -> usize {
        match self.mode {
            Mode::Each { drainers } => drainers.max(1),
            Mode::GroupCommit => 1,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The queue is consistent whenever its lock is free: a panic elsewhere cannot break it.
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs batches until the queue is empty, on one pooled connection while
    /// it works. In [`Mode::Each`] a batch is one piece of work, so that the
    /// lane's drainers share a queue instead of one taking all of it.
    fn drain(self: Arc<Self>) {
        let batch_size = match self.mode {
            Mode::Each { .. } => 1,
            Mode::GroupCommit => MAX_BATCH,
        };
        let mut held: Option<r2d2::PooledConnection<Manager>> = None;
        // How much work the last batch took.
        let mut last = 0;
        loop {
            let batch: Vec<Box<dyn Job>> = {
                let mut queue = self.gathered(last);
                if queue.jobs.is_empty() {
                    queue.drainers -= 1;
                    return;
                }
                let n = queue.jobs.len().min(batch_size);
                last = n;
                queue.jobs.drain(..n).collect()
            };
            let pooled = match held.take().map_or_else(|| self.pool.get(), Ok) {
                Ok(pooled) => held.insert(pooled),
                Err(e) => {
                    let e = Arc::new(e);
                    for job in batch {
                        job.fail(DbError::Unavailable(Arc::clone(&e)));
                    }
                    continue;
                }
            };
            // Work that panics must not leave the lane without its drainer.
            match catch_unwind(AssertUnwindSafe(|| self.run_batch(pooled, batch))) {
                Ok(true) => {}
                // Lost, or in an unknown state: back to the pool, which drops it if broken.
                Ok(false) => held = None,
                Err(_) => {
                    log::error!("database work panicked; its batch was abandoned");
                    held = None;
                }
            }
        }
    }

    /// Runs `batch` on `pooled`; `false` when the connection was lost.
    fn run_batch(&self, pooled: &mut Pooled, batch: Vec<Box<dyn Job>>) -> bool {
        match self.mode {
            Mode::Each { .. } => {
                let mut jobs = batch.into_iter();
                while let Some(mut job) = jobs.next() {
                    if !job.run(pooled.conn(), false) {
                        continue;
                    }
                    let alive = pooled.record(&self.health, job.outcome());
                    job.deliver(None);
                    if !alive {
                        // The rest wait for a connection that works.
                        self.requeue(jobs);
                        return false;
                    }
                }
                true
            }
            Mode::GroupCommit => {
                let committed = commit_together(pooled.conn(), batch);
                if let (Ok(()), Some(checkpointer)) = (&committed, &self.checkpointer) {
                    checkpointer.nudge();
                }
                pooled.record(
                    &self.health,
                    committed.as_ref().map(|_| ()).map_err(|e| &**e),
                )
            }
        }
    }

    /// Puts `jobs` back at the head of the queue, in order.
    fn requeue(&self, jobs: impl DoubleEndedIterator<Item = Box<dyn Job>>) {
        let mut queue = self.lock();
        for job in jobs.rev() {
            queue.jobs.push_front(job);
        }
    }
}

type Tm = <DbConn as Connection>::TransactionManager;

/// Runs `batch` in one transaction and tells each job how it ended; returns
/// how the transaction ended.
///
/// The writes run one after another straight in the transaction. A
/// savepoint around each (two more statements for SQLite to parse and run,
/// per write) is only needed once one fails, since a write that fails may
/// have done part of its work: then the transaction is rolled back and the
/// batch runs again, each write in a savepoint of its own, so that only the
/// failing ones are undone. A write may thus run twice; only what it does in
/// the database counts.
fn commit_together(conn: &mut DbConn, mut batch: Vec<Box<dyn Job>>) -> Result<(), Arc<DbError>> {
    let mut savepoints = false;
    loop {
        if let Err(e) = Tm::begin_transaction(conn) {
            let e = Arc::new(e);
            for job in batch {
                job.fail(DbError::Commit(Arc::clone(&e)));
            }
            return Err(Arc::new(DbError::Commit(e)));
        }
        for job in &mut batch {
            job.run(conn, savepoints);
        }
        if !savepoints && batch.iter().any(|job| job.outcome().is_err()) {
            let rolled_back = Tm::rollback_transaction(conn).map_err(Arc::new);
            // A write alone holds nothing else: its failure is the batch's.
            if batch.len() > 1 && rolled_back.is_ok() {
                savepoints = true;
                continue;
            }
            for job in batch {
                job.deliver(rolled_back.as_ref().err());
            }
            return rolled_back.map_err(|e| Arc::new(DbError::Commit(e)));
        }
        let committed = Tm::commit_transaction(conn).map_err(Arc::new);
        if committed.is_err() {
            // Leaves the connection clean for the pool; if even this fails, the
            // pool finds the connection broken and drops it.
            let _ = Tm::rollback_transaction(conn);
        }
        for job in batch {
            job.deliver(committed.as_ref().err());
        }
        return committed.map_err(|e| Arc::new(DbError::Commit(e)));
    }
}

/// Queued work, whatever it returns.
trait Job: Send {
    /// Runs the work (in its own savepoint if `savepoint`) and keeps its
    /// result; `false` when nobody waits for it any more, and then it did not
    /// run (and forgets any earlier run's result).
    fn run(&mut self, conn: &mut DbConn, savepoint: bool) -> bool;
    /// How the last run ended (`Ok` if it did not run).
    fn outcome(&self) -> Result<(), &DbError>;
    /// Tells the caller the last run's result, or `commit_error` instead of a
    /// success if the transaction carrying it did not commit.
    fn deliver(self: Box<Self>, commit_error: Option<&Arc<diesel::result::Error>>);
    /// Tells the caller the work could not be run.
    fn fail(self: Box<Self>, error: DbError);
}

/// Whether queued work has started, or its caller gave up waiting first:
/// whichever happens first wins, so timed-out work never runs.
#[derive(Default)]
struct Turn(AtomicU8);

impl Turn {
    const QUEUED: u8 = 0;
    const STARTED: u8 = 1;
    const ABANDONED: u8 = 2;

    fn start(&self) -> bool {
        self.swap_from_queued(Self::STARTED)
    }

    fn abandon(&self) -> bool {
        self.swap_from_queued(Self::ABANDONED)
    }

    fn swap_from_queued(&self, to: u8) -> bool {
        self.0
            .compare_exchange(Self::QUEUED, to, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

struct Work<T, F> {
    f: F,
    reply: oneshot::Sender<Result<T, DbError>>,
    turn: Arc<Turn>,
    result: Option<Result<T, DbError>>,
}

impl<T, F> Job for Work<T, F>
where
    F: FnMut(&mut DbConn) -> Result<T, DbError> + Send,
    T: Send + 'static,
{
    fn run(&mut self, conn: &mut DbConn, savepoint: bool) -> bool {
        // A second run (see `commit_together`) needs no new turn.
        let first = self.result.is_none();
        if self.reply.is_closed() || (first && !self.turn.start()) {
            self.result = None;
            return false;
        }
        // Inside the batch's transaction, `transaction` opens a savepoint.
        self.result = Some(if savepoint {
            conn.transaction(&mut self.f)
        } else {
            (self.f)(conn)
        });
        true
    }

    fn outcome(&self) -> Result<(), &DbError> {
        match &self.result {
            Some(Err(e)) => Err(e),
            _ => Ok(()),
        }
    }

    fn deliver(self: Box<Self>, commit_error: Option<&Arc<diesel::result::Error>>) {
        let result = match (self.result, commit_error) {
            // It did not run: nobody waits for it.
            (None, _) => return,
            (Some(Ok(_)), Some(e)) => Err(DbError::Commit(Arc::clone(e))),
            (Some(result), _) => result,
        };
        // The caller may have stopped waiting; then there is no one to tell.
        let _ = self.reply.send(result);
    }

    fn fail(self: Box<Self>, error: DbError) {
        let _ = self.reply.send(Err(error));
    }
}

//! SQLite's writes, run in turn on one thread that holds the writing
//! connection. Through a pool of one, each write would take a blocking
//! thread and wait there for the connection: more threads woken and put to
//! sleep per write, and blocking threads held from the reads.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::mpsc;
use std::time::{Duration, Instant};

type Job = Box<dyn FnOnce() + Send>;

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
    /// line; `None` if it never answered.
    pub async fn run<R: Send + 'static>(
        &self,
        job: impl FnOnce(Duration) -> R + Send + 'static,
    ) -> Option<R> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        let queued = Instant::now();
        self.jobs
            .send(Box::new(move || {
                let _ = answer.send(job(queued.elapsed()));
            }))
            .ok()?;
        answered.await.ok()
    }
}

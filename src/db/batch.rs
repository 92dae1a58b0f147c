//! Look-ups of one kind that arrive together, answered by one query.
//!
//! In a login burst hundreds of callbacks each ask for one openid's user.
//! Asked one by one, every look-up is a hand-off to a blocking thread and,
//! on PostgreSQL, a round trip and a statement for the server, which shares
//! the machine with us. Here a look-up joins a list; the first one in the
//! list queues a *flush* in the [`Db`] lane, and whatever has joined by the
//! time the flush runs is fetched with one query (`… WHERE key IN (…)`).
//! An idle service still answers each look-up at once, by itself; the list
//! only grows while the database is busy, which is when one query for many
//! pays off.

use std::collections::HashMap;
use std::hash::Hash;
use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;

use super::{Db, DbConn, DbError};

/// The most keys one query asks for.
const MAX_KEYS: usize = 128;

/// The query behind a [`Batched`]: the found values by key, for any number of keys.
pub type Fetch<K, V> = dyn Fn(&mut DbConn, &[K]) -> Result<Vec<(K, V)>, DbError> + Send + Sync;

type Reply<V> = oneshot::Sender<Result<Option<V>, DbError>>;

/// Batched look-ups by `K`, cheap to clone.
pub struct Batched<K, V> {
    inner: Arc<Inner<K, V>>,
}

impl<K, V> Clone for Batched<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: Arc::clone(&self.inner),
        }
    }
}

struct Inner<K, V> {
    db: Db,
    fetch: Box<Fetch<K, V>>,
    pending: Mutex<Pending<K, V>>,
}

struct Pending<K, V> {
    waiting: Vec<(K, Reply<V>)>,
    /// A flush is queued in the lane and has not yet taken the list.
    flush_queued: bool,
}

impl<K, V> Batched<K, V>
where
    K: Eq + Hash + Clone + Send + 'static,
    V: Clone + Send + 'static,
{
    pub fn new(
        db: Db,
        fetch: impl Fn(&mut DbConn, &[K]) -> Result<Vec<(K, V)>, DbError> + Send + Sync + 'static,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                db,
                fetch: Box::new(fetch),
                pending: Mutex::new(Pending {
                    waiting: Vec::new(),
                    flush_queued: false,
                }),
            }),
        }
    }

    /// The value for `key`, if there is one.
    pub async fn get(&self, key: K) -> Result<Option<V>, DbError> {
        let (reply, answer) = oneshot::channel();
        let queue_flush = {
            let mut pending = self.inner.lock();
            pending.waiting.push((key, reply));
            !mem::replace(&mut pending.flush_queued, true)
        };
        if queue_flush {
            // Its own task: the flush answers every look-up in the list, so it
            // must not depend on the first one's request staying alive.
            let inner = Arc::clone(&self.inner);
            tokio::spawn(async move {
                let flushing = Arc::clone(&inner);
                let result = inner
                    .db
                    .run(move |conn| {
                        flushing.flush(conn);
                        Ok(())
                    })
                    .await;
                if let Err(e) = result {
                    inner.fail_waiting(e);
                }
            });
        }
        answer.await.unwrap_or(Err(DbError::Cancelled))
    }
}

impl<K, V> Inner<K, V>
where
    K: Eq + Hash + Clone,
    V: Clone,
{
    fn lock(&self) -> MutexGuard<'_, Pending<K, V>> {
        // The list is consistent whenever its lock is free.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes the list (up to [`MAX_KEYS`] at a time) and answers it, one query per batch.
    fn flush(&self, conn: &mut DbConn) {
        loop {
            let (batch, more) = {
                let mut pending = self.lock();
                let n = pending.waiting.len().min(MAX_KEYS);
                let batch: Vec<_> = pending.waiting.drain(..n).collect();
                let more = !pending.waiting.is_empty();
                // Look-ups from now on queue a flush of their own.
                pending.flush_queued = more;
                (batch, more)
            };
            // Callers that went away need no answer, and their keys no query.
            let (keys, replies): (Vec<K>, Vec<Reply<V>>) =
                batch.into_iter().filter(|(_, r)| !r.is_closed()).unzip();
            if !keys.is_empty() {
                answer(replies, &keys, (self.fetch)(conn, &unique(&keys)));
            }
            if !more {
                return;
            }
        }
    }

    /// The flush never ran (the database was busy or gone): everyone waiting hears why.
    fn fail_waiting(&self, error: DbError) {
        let waiting = {
            let mut pending = self.lock();
            pending.flush_queued = false;
            mem::take(&mut pending.waiting)
        };
        let error = Arc::new(error);
        for (_, reply) in waiting {
            let _ = reply.send(Err(DbError::Shared(Arc::clone(&error))));
        }
    }
}

fn unique<K: Eq + Hash + Clone>(keys: &[K]) -> Vec<K> {
    let mut seen = std::collections::HashSet::with_capacity(keys.len());
    keys.iter().filter(|k| seen.insert(*k)).cloned().collect()
}

fn answer<K: Eq + Hash, V: Clone>(
    replies: Vec<Reply<V>>,
    keys: &[K],
    found: Result<Vec<(K, V)>, DbError>,
) {
    match found {
        Ok(found) => {
            let found: HashMap<K, V> = found.into_iter().collect();
            for (reply, key) in replies.into_iter().zip(keys) {
                let _ = reply.send(Ok(found.get(key).cloned()));
            }
        }
        Err(e) => {
            let e = Arc::new(e);
            for reply in replies {
                let _ = reply.send(Err(DbError::Shared(Arc::clone(&e))));
            }
        }
    }
}

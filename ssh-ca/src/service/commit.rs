//! Group commit, the in-memory nonce set and the read connections.
//!
//! **Group commit.** A durable SQLite commit costs one `fsync` of the WAL (`synchronous=FULL`),
//! and with one commit per certificate the disk's sync latency bounded issuance whatever the
//! number of clients. Writers on the hot paths (new requests with their certificate, audit
//! records of refusals) therefore queue their change as an owned job and then take the store
//! lock. Whoever gets it first runs *every* queued job in one transaction, each inside its own
//! savepoint (a job that fails is rolled back alone and answers its own error), commits once,
//! and only then are the jobs' answers released: nothing is answered before its commit is on
//! disk, and the audit chain stays strictly ordered because the jobs run one after another on
//! the one connection. A caller whose job was committed by another thread finds its answer
//! when it gets the lock. If the commit fails, every job of the batch answers the error.
//!
//! **Nonces.** Each signed API call carries a nonce that must never be accepted twice. The set
//! of nonces seen within the replay window lives in memory (checked and inserted atomically)
//! and is loaded from SQLite at startup. Accepted nonces are written to SQLite in the next
//! write transaction, which for a mutating call is the transaction of its own change: a
//! change and the nonce that carried it are durable together. A read-only call's nonce is
//! written by the next batch or by the one-second flush at the latest; if the machine loses
//! power inside that second, that read could be replayed once within the 120 s timestamp
//! window (returning the caller's own data to whoever replays it), which is the documented
//! price of not paying an `fsync` per read.
//!
//! **Readers.** Reads (key lookups, certificates, listings, the grant snapshot) use a few
//! separate connections, so they neither wait for a batch's `fsync` nor hold the writer. WAL
//! mode gives each read a consistent snapshot of the last commit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use rusqlite::Connection;

use super::{ApiResult, lock};
use crate::error::{ApiError, CaError, Result};
use crate::store::{self, Store};

/// A queued change: runs inside the batch's transaction and keeps its own answer.
trait Entry: Send {
    /// Runs the job; false when it failed (its savepoint is then rolled back).
    fn run(&mut self, c: &Connection) -> bool;
    /// The batch did not commit: the job answers this error instead.
    fn fail(&mut self, e: &CaError);
}

type Slot<R> = Arc<Mutex<Option<ApiResult<R>>>>;

struct Job<R, F> {
    f: Option<F>,
    slot: Slot<R>,
}

impl<R, F> Entry for Job<R, F>
where
    R: Send,
    F: FnOnce(&Connection) -> ApiResult<R> + Send,
{
    fn run(&mut self, c: &Connection) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        let r = f(c);
        let ok = r.is_ok();
        *lock(&self.slot) = Some(r);
        ok
    }

    fn fail(&mut self, e: &CaError) {
        *lock(&self.slot) = Some(Err(answer(e)));
    }
}

/// The answer to a caller whose change was in a batch that could not commit.
fn answer(e: &CaError) -> ApiError {
    match e {
        CaError::Busy(_) => ApiError::new(
            crate::wire::ErrorCode::Unavailable,
            "the CA's database is busy; retry in a moment",
        ),
        other => ApiError::internal(other),
    }
}

/// The queue of changes waiting for a batch.
#[derive(Default)]
pub(super) struct Writer {
    queue: Mutex<Vec<Box<dyn Entry>>>,
    /// Batches committed and jobs in them (for the metrics and the tests).
    batches: std::sync::atomic::AtomicU64,
    jobs: std::sync::atomic::AtomicU64,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("queued", &lock(&self.queue).len())
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Runs `job` durably, batched with whatever else is waiting, and returns its answer
    /// once the batch's commit is on disk.
    pub(super) fn write<R, F>(&self, store: &Mutex<Store>, nonces: &Nonces, job: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> ApiResult<R> + Send + 'static,
    {
        let slot: Slot<R> = Arc::new(Mutex::new(None));
        lock(&self.queue).push(Box::new(Job {
            f: Some(job),
            slot: slot.clone(),
        }));
        let mut st = lock(store);
        if let Some(r) = lock(&slot).take() {
            return r;
        }
        let jobs = std::mem::take(&mut *lock(&self.queue));
        self.run_batch(&mut st, nonces, jobs);
        drop(st);
        lock(&slot).take().unwrap_or_else(|| {
            Err(ApiError::internal(
                "a queued change was not run by its batch",
            ))
        })
    }

    fn run_batch(&self, st: &mut Store, nonces: &Nonces, mut jobs: Vec<Box<dyn Entry>>) {
        let result = (|| -> Result<()> {
            let tx = st.tx()?;
            let flushed = nonces.flush_into(&tx)?;
            for j in &mut jobs {
                tx.execute_batch("SAVEPOINT job")?;
                if j.run(&tx) {
                    tx.execute_batch("RELEASE job")?;
                } else {
                    tx.execute_batch("ROLLBACK TO job; RELEASE job")?;
                }
            }
            tx.commit()?;
            flushed.done();
            Ok(())
        })();
        match result {
            Ok(()) => {
                self.batches.fetch_add(1, Ordering::Relaxed);
                self.jobs.fetch_add(jobs.len() as u64, Ordering::Relaxed);
            }
            Err(e) => {
                for j in &mut jobs {
                    j.fail(&e);
                }
            }
        }
    }

    /// (batches committed, jobs committed).
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.batches.load(Ordering::Relaxed),
            self.jobs.load(Ordering::Relaxed),
        )
    }
}

/// Nonces seen within the replay window.
#[derive(Debug, Default)]
pub(super) struct Nonces {
    inner: Mutex<NonceState>,
}

#[derive(Debug, Default)]
struct NonceState {
    /// Nonce (128 bits) -> the server time it was first seen.
    seen: HashMap<u128, u64>,
    /// Accepted but not yet written to SQLite.
    pending: Vec<(u128, u64)>,
}

fn parse_nonce(hex_nonce: &str) -> Option<u128> {
    u128::from_str_radix(hex_nonce, 16).ok()
}

fn nonce_text(n: u128) -> String {
    format!("{n:032x}")
}

impl Nonces {
    /// Loads the nonces SQLite remembers (seen at or after `since`).
    pub(super) fn load(c: &Connection, since: u64) -> Result<Self> {
        let mut seen = HashMap::new();
        for (n, at) in store::recent_nonces(c, since)? {
            if let Some(v) = parse_nonce(&n) {
                seen.insert(v, at);
            }
        }
        Ok(Self {
            inner: Mutex::new(NonceState {
                seen,
                ..NonceState::default()
            }),
        })
    }

    /// Records a nonce (32 lowercase hex characters, checked by the caller); false if it was
    /// seen before.
    pub(super) fn use_nonce(&self, hex_nonce: &str, now: u64) -> bool {
        let Some(n) = parse_nonce(hex_nonce) else {
            return false;
        };
        let mut s = lock(&self.inner);
        if s.seen.contains_key(&n) {
            return false;
        }
        s.seen.insert(n, now);
        s.pending.push((n, now));
        true
    }

    /// Writes the pending nonces inside `tx`. Call [`Flushed::done`] once `tx` committed;
    /// if it is dropped before that, the nonces go back to the pending list.
    pub(super) fn flush_into(&self, tx: &Connection) -> Result<Flushed<'_>> {
        let taken = std::mem::take(&mut lock(&self.inner).pending);
        let flushed = Flushed {
            nonces: self,
            taken,
        };
        for (n, at) in &flushed.taken {
            store::use_nonce(tx, &nonce_text(*n), *at)?;
        }
        Ok(flushed)
    }

    /// Whether some accepted nonce is not yet in SQLite.
    pub(super) fn has_pending(&self) -> bool {
        !lock(&self.inner).pending.is_empty()
    }

    /// Forgets nonces seen before `cutoff` (they would fail the timestamp check anyway).
    pub(super) fn expire(&self, cutoff: u64) {
        lock(&self.inner).seen.retain(|_, at| *at >= cutoff);
    }

    /// How many are remembered.
    pub(super) fn len(&self) -> usize {
        lock(&self.inner).seen.len()
    }
}

/// Nonces written into a transaction that has not committed yet.
#[derive(Debug)]
#[must_use = "call done() after the commit, or the nonces are written again"]
pub(super) struct Flushed<'a> {
    nonces: &'a Nonces,
    taken: Vec<(u128, u64)>,
}

impl Flushed<'_> {
    /// The transaction committed.
    pub(super) fn done(mut self) {
        self.taken.clear();
    }
}

impl Drop for Flushed<'_> {
    fn drop(&mut self) {
        if !self.taken.is_empty() {
            let taken = std::mem::take(&mut self.taken);
            lock(&self.nonces.inner).pending.extend(taken);
        }
    }
}

/// A few read connections to the database file (none for an in-memory store: reads then go
/// through the writer's connection).
#[derive(Debug, Default)]
pub(super) struct Readers {
    conns: Vec<Mutex<Connection>>,
    next: AtomicUsize,
}

impl Readers {
    pub(super) fn open(path: Option<&Path>, n: usize) -> Result<Self> {
        let mut conns = Vec::new();
        if let Some(p) = path {
            for _ in 0..n {
                conns.push(Mutex::new(store::open_reader(p)?));
            }
        }
        Ok(Self {
            conns,
            next: AtomicUsize::new(0),
        })
    }

    /// Runs `f` on a free read connection, or on the writer's when there are none.
    pub(super) fn with<R>(&self, store: &Mutex<Store>, f: impl FnOnce(&Connection) -> R) -> R {
        if self.conns.is_empty() {
            return f(lock(store).conn());
        }
        for c in &self.conns {
            if let Ok(g) = c.try_lock() {
                return f(&g);
            }
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.conns.len();
        f(&lock(&self.conns[i]))
    }
}

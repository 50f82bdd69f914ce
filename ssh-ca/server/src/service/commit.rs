//! Group commit, the in-memory nonce set and the read connections.
//!
//! **Group commit.** A durable SQLite commit costs one `fsync` of the WAL (`synchronous=FULL`),
//! and with one commit per certificate the disk's sync latency bounded issuance whatever the
//! number of clients. Writers on the hot paths (new requests with their certificate, audit
//! records of refusals) therefore send their change as an owned job to one writer thread and
//! wait. The thread takes every job waiting (up to `MAX_BATCH`), runs them in one
//! transaction, each inside its own savepoint (a job that fails is rolled back alone and
//! answers its own error), commits once, and only then releases the answers: nothing is
//! answered before its commit is on disk, and the audit chain stays strictly ordered because
//! the jobs run one after another on the one connection. While a batch commits, the next one
//! gathers. If the commit fails, every job of the batch answers the error. The rare paths
//! (approvals, revocations, the sweeper) still open their own transaction on the same
//! connection, under the same lock.
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

use std::collections::{HashSet, VecDeque};
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, mpsc};

use rusqlite::Connection;

use super::{ApiResult, lock};
use crate::error::{ApiError, CaError, Result};
use crate::store::{self, Store, StoreOps};

/// A queued change: runs inside the batch's transaction; answers once the batch is over.
pub(crate) trait Entry: Send {
    /// Runs the job; false when it failed (its savepoint is then rolled back).
    fn run(&mut self, c: &dyn StoreOps) -> bool;
    /// The batch is over: hand the answer to the caller (`Some(e)`: it did not commit).
    fn finish(self: Box<Self>, commit_error: Option<&CaError>);
}

/// Where a caller waits for its answer.
type Slot<R> = Arc<(Mutex<Option<ApiResult<R>>>, Condvar)>;

struct Job<R, F> {
    f: Option<F>,
    result: Option<ApiResult<R>>,
    slot: Slot<R>,
}

impl<R, F> Entry for Job<R, F>
where
    R: Send,
    F: FnOnce(&dyn StoreOps) -> ApiResult<R> + Send,
{
    fn run(&mut self, c: &dyn StoreOps) -> bool {
        let Some(f) = self.f.take() else {
            return false;
        };
        // A panic in a job must not take the writer thread (and every later write) with it.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(c)))
            .unwrap_or_else(|_| Err(ApiError::internal("a database change panicked")));
        let ok = r.is_ok();
        self.result = Some(r);
        ok
    }

    fn finish(mut self: Box<Self>, commit_error: Option<&CaError>) {
        let answer = match (commit_error, self.result.take()) {
            (Some(e), _) => Err(answer(e)),
            (None, Some(r)) => r,
            (None, None) => Err(ApiError::internal("a queued change was not run")),
        };
        let (m, cv) = &*self.slot;
        *lock(m) = Some(answer);
        cv.notify_one();
    }
}

/// The answer to a caller whose change was in a batch that could not commit.
fn answer(e: &CaError) -> ApiError {
    match e {
        CaError::Busy(_) => ApiError::new(
            jit_api::wire::ErrorCode::Unavailable,
            "the CA's database is busy; retry in a moment",
        ),
        CaError::Unavailable(detail) => ApiError::unavailable(detail),
        CaError::CommitUnknown(detail) => ApiError::commit_unknown(detail),
        other => ApiError::internal(other),
    }
}

/// Runs one batch of the group commit: every job in ONE transaction, each inside `SAVEPOINT
/// job` (`ROLLBACK TO job` when it failed, then `RELEASE job`), one commit. `Err`: nothing
/// of the batch was committed (every job answers that error).
pub(crate) trait BatchRunner: Send {
    /// Runs `jobs` in one transaction.
    fn run(&mut self, jobs: &mut [Box<dyn Entry>]) -> Result<()>;
}

/// SQLite's batch: the writer's connection, and the accepted nonces written into each
/// batch's transaction.
pub(super) struct SqliteRunner {
    pub(super) store: Arc<Mutex<Store>>,
    pub(super) nonces: Arc<Nonces>,
}

impl BatchRunner for SqliteRunner {
    fn run(&mut self, jobs: &mut [Box<dyn Entry>]) -> Result<()> {
        run_batch(&mut lock(&self.store), &self.nonces, jobs)
    }
}

/// Most changes in one transaction (bounds the time the store is held).
const MAX_BATCH: usize = 512;

#[derive(Debug, Default)]
struct Counts {
    batches: AtomicU64,
    jobs: AtomicU64,
}

/// The writer thread's queue.
pub(super) struct Writer {
    queue: mpsc::Sender<Box<dyn Entry>>,
    counts: Arc<Counts>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the writer thread. It ends when the `Writer` is dropped (the queue closes).
    pub(crate) fn start(mut runner: Box<dyn BatchRunner>) -> Result<Self> {
        let (tx, rx) = mpsc::channel::<Box<dyn Entry>>();
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        std::thread::Builder::new()
            .name("jit-ca-writer".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut jobs = vec![first];
                    while jobs.len() < MAX_BATCH {
                        match rx.try_recv() {
                            Ok(j) => jobs.push(j),
                            Err(_) => break,
                        }
                    }
                    let n = jobs.len() as u64;
                    let result = runner.run(&mut jobs);
                    if result.is_ok() {
                        c.batches.fetch_add(1, Ordering::Relaxed);
                        c.jobs.fetch_add(n, Ordering::Relaxed);
                    }
                    for j in jobs {
                        j.finish(result.as_ref().err());
                    }
                }
            })
            .map_err(|source| CaError::Thread {
                name: "writer",
                source,
            })?;
        Ok(Self { queue: tx, counts })
    }

    /// Runs `job` durably, batched with whatever else is waiting, and returns its answer
    /// once the batch's commit is on disk.
    pub(super) fn write<R, F>(&self, job: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StoreOps) -> ApiResult<R> + Send + 'static,
    {
        let slot: Slot<R> = Arc::new((Mutex::new(None), Condvar::new()));
        let sent = self.queue.send(Box::new(Job {
            f: Some(job),
            result: None,
            slot: slot.clone(),
        }));
        if sent.is_err() {
            return Err(ApiError::internal("the writer thread has stopped"));
        }
        let (m, cv) = &*slot;
        let mut g = lock(m);
        loop {
            if let Some(r) = g.take() {
                return r;
            }
            g = cv
                .wait(g)
                .unwrap_or_else(std::sync::PoisonError::into_inner);
        }
    }

    /// (batches committed, jobs committed).
    pub(super) fn counts(&self) -> (u64, u64) {
        (
            self.counts.batches.load(Ordering::Relaxed),
            self.counts.jobs.load(Ordering::Relaxed),
        )
    }
}

/// One transaction for every job of the batch, each in its own savepoint.
fn run_batch(st: &mut Store, nonces: &Nonces, jobs: &mut [Box<dyn Entry>]) -> Result<()> {
    let tx = st.tx()?;
    let flushed = nonces.flush_into(&*tx)?;
    for j in jobs.iter_mut() {
        tx.prepare_cached("SAVEPOINT job")?.execute([])?;
        if !j.run(&*tx) {
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        tx.prepare_cached("RELEASE job")?.execute([])?;
    }
    tx.commit()?;
    flushed.done();
    Ok(())
}

/// Nonces seen within the replay window.
///
/// Held in buckets of [`NONCE_BUCKET_SECS`] by the time each was first seen, and forgotten
/// a whole bucket at a time: a bucket's set is freed at once when its last second falls
/// before the cutoff (a nonce is remembered for the window and at most one bucket longer),
/// so the memory follows the recent call rate instead of keeping the largest map ever
/// grown, and no per-nonce time is stored. Bound: calls per second x (window + one bucket)
/// x about 20 bytes (16 for the nonce, the set's control byte and load factor).
#[derive(Debug, Default)]
pub(super) struct Nonces {
    inner: Mutex<NonceState>,
}

/// Width of a nonce bucket in seconds.
pub(super) const NONCE_BUCKET_SECS: u64 = 15;

#[derive(Debug, Default)]
struct NonceState {
    /// (bucket number = first seen / NONCE_BUCKET_SECS, its nonces), ascending by number.
    buckets: VecDeque<(u64, HashSet<u128>)>,
    /// Accepted but not yet written to SQLite.
    pending: Vec<(u128, u64)>,
}

impl NonceState {
    fn contains(&self, n: u128) -> bool {
        // Newest first: a replay is most likely of a recent call.
        self.buckets.iter().rev().any(|(_, set)| set.contains(&n))
    }

    /// Inserts `n` seen at `at` (callers checked [`NonceState::contains`]).
    fn insert(&mut self, n: u128, at: u64) {
        let b = at / NONCE_BUCKET_SECS;
        match self.buckets.back_mut() {
            Some((last, set)) if *last == b => {
                set.insert(n);
            }
            Some((last, _)) if *last > b => {
                // Older than the newest bucket (loading, or a clock step back).
                let i = self.buckets.partition_point(|(k, _)| *k < b);
                match self.buckets.get_mut(i) {
                    Some((k, set)) if *k == b => {
                        set.insert(n);
                    }
                    _ => self.buckets.insert(i, (b, HashSet::from([n]))),
                }
            }
            _ => self.buckets.push_back((b, HashSet::from([n]))),
        }
    }
}

fn parse_nonce(hex_nonce: &str) -> Option<u128> {
    u128::from_str_radix(hex_nonce, 16).ok()
}

fn nonce_text(n: u128) -> String {
    format!("{n:032x}")
}

impl Nonces {
    /// Loads the nonces SQLite remembers (seen at or after `since`).
    pub(super) fn load(c: &dyn StoreOps, since: u64) -> Result<Self> {
        let mut state = NonceState::default();
        for (n, at) in c.recent_nonces(since)? {
            if let Some(v) = parse_nonce(&n)
                && !state.contains(v)
            {
                state.insert(v, at);
            }
        }
        Ok(Self {
            inner: Mutex::new(state),
        })
    }

    /// Records a nonce (32 lowercase hex characters, checked by the caller); false if it was
    /// seen before.
    pub(super) fn use_nonce(&self, hex_nonce: &str, now: u64) -> bool {
        let Some(n) = parse_nonce(hex_nonce) else {
            return false;
        };
        let mut s = lock(&self.inner);
        if s.contains(n) {
            return false;
        }
        s.insert(n, now);
        s.pending.push((n, now));
        true
    }

    /// Records a nonce in the set only, never to be written by a batch (PostgreSQL, where
    /// each nonce is claimed durably by its own statement); false if it was seen before.
    pub(super) fn remember(&self, hex_nonce: &str, now: u64) -> bool {
        let Some(n) = parse_nonce(hex_nonce) else {
            return false;
        };
        let mut s = lock(&self.inner);
        if s.contains(n) {
            return false;
        }
        s.insert(n, now);
        true
    }

    /// Writes the pending nonces inside `tx`. Call [`Flushed::done`] once `tx` committed;
    /// if it is dropped before that, the nonces go back to the pending list.
    pub(super) fn flush_into(&self, tx: &dyn StoreOps) -> Result<Flushed<'_>> {
        let taken = std::mem::take(&mut lock(&self.inner).pending);
        let flushed = Flushed {
            nonces: self,
            taken,
        };
        for (n, at) in &flushed.taken {
            tx.log_nonce(&nonce_text(*n), *at)?;
        }
        Ok(flushed)
    }

    /// Whether some accepted nonce is not yet in SQLite.
    pub(super) fn has_pending(&self) -> bool {
        !lock(&self.inner).pending.is_empty()
    }

    /// Forgets the buckets whose every second is before `cutoff` (their nonces would fail
    /// the timestamp check anyway), freeing each set whole. Nonces of the bucket that holds
    /// `cutoff` stay until the next call after its end.
    pub(super) fn expire(&self, cutoff: u64) {
        let dropped: Vec<_> = {
            let mut s = lock(&self.inner);
            let keep_from = s
                .buckets
                .partition_point(|(b, _)| (b + 1).saturating_mul(NONCE_BUCKET_SECS) <= cutoff);
            s.buckets.drain(..keep_from).collect()
        };
        // Freed outside the lock.
        drop(dropped);
    }

    /// How many are remembered.
    pub(super) fn len(&self) -> usize {
        lock(&self.inner)
            .buckets
            .iter()
            .map(|(_, set)| set.len())
            .sum()
    }

    /// How many buckets are held (tests: the bound).
    #[cfg(test)]
    fn buckets(&self) -> usize {
        lock(&self.inner).buckets.len()
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

/// Copies the WAL back into the database file from its own thread and connection, so the
/// writer thread never stops for a checkpoint (SQLite's automatic one runs inside the commit
/// that crosses 1,000 pages: a copy and an `fsync` of the database file, several
/// milliseconds added to every change of that batch). Ends when dropped.
#[derive(Debug)]
pub(super) struct Checkpointer {
    _stop: mpsc::Sender<()>,
}

/// WAL size from which the checkpointer makes the WAL start over (and the size the writer
/// truncates it back to).
pub(super) const WAL_RESTART_BYTES: u64 = 32 * 1024 * 1024;

/// How often the checkpointer runs while the WAL grows. Small, frequent checkpoints keep
/// each `fsync` of the database file short; measured at 500 certificates/s, a 500 ms period
/// put the p99 of issuance at 7.7 ms, 50 ms at 3.3-3.7 ms (no checkpoint at all: 4.5 ms).
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// How often it looks when nothing was written since its last round.
const CHECKPOINT_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

impl Checkpointer {
    /// Starts checkpointing `path` (the writer's own automatic checkpoints must be off).
    pub(super) fn start(path: &Path) -> Result<Self> {
        let conn = store::open_checkpointer(path)?;
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal = std::path::PathBuf::from(wal);
        let (stop, stopped) = mpsc::channel::<()>();
        std::thread::Builder::new()
            .name("jit-ca-checkpoint".into())
            .spawn(move || {
                let mut last = (-1i64, -1i64);
                let mut every = CHECKPOINT_IDLE;
                while let Err(mpsc::RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    // PASSIVE copies what it can without waiting for the writer or readers.
                    // Under constant load some reader is always inside the WAL, so it never
                    // starts over and would grow without bound: past WAL_RESTART_BYTES,
                    // RESTART waits (briefly: reads are short) until the next commit can
                    // rewind it. A failure (busy) is retried at the next round.
                    let big = std::fs::metadata(&wal).is_ok_and(|m| m.len() > WAL_RESTART_BYTES);
                    let mode = if big { "RESTART" } else { "PASSIVE" };
                    let sql = format!("PRAGMA wal_checkpoint({mode})");
                    // (busy, frames in the WAL, frames copied): unchanged means idle.
                    let now = conn
                        .query_row(&sql, [], |r| Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?)))
                        .unwrap_or(last);
                    every = if now == last {
                        CHECKPOINT_IDLE
                    } else {
                        CHECKPOINT_EVERY
                    };
                    last = now;
                }
                // Shutting down: one last full copy, so the WAL is small for the next start.
                let _ = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
            })
            .map_err(|source| CaError::Thread {
                name: "checkpoint",
                source,
            })?;
        Ok(Self { _stop: stop })
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

    /// Runs `f` while every read connection is held (tests: what must not wait on them).
    pub(super) fn hold_all<R>(&self, f: impl FnOnce() -> R) -> R {
        let held: Vec<_> = self.conns.iter().map(lock).collect();
        let r = f();
        drop(held);
        r
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

#[cfg(test)]
mod tests {
    use super::*;
    use jit_api::wire::ErrorCode;

    fn sqlite(store: &Arc<Mutex<Store>>, nonces: &Arc<Nonces>) -> Box<dyn BatchRunner> {
        Box::new(SqliteRunner {
            store: store.clone(),
            nonces: nonces.clone(),
        })
    }

    fn writer() -> (Writer, Arc<Mutex<Store>>) {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let nonces = Arc::new(Nonces::default());
        (Writer::start(sqlite(&store, &nonces)).unwrap(), store)
    }

    #[test]
    fn a_failing_or_panicking_change_is_rolled_back_alone() {
        let (w, store) = writer();
        let w = Arc::new(w);
        let mut threads = Vec::new();
        for k in 0..24u32 {
            let w = w.clone();
            threads.push(std::thread::spawn(move || {
                w.write(move |c| {
                    c.meta_set(&format!("k{k}"), "v")?;
                    match k % 3 {
                        0 => Ok(k),
                        1 => Err(ApiError::new(ErrorCode::InvalidInput, "refused")),
                        _ => panic!("job {k} panics"),
                    }
                })
            }));
        }
        let answers: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        let st = lock(&store);
        for (k, a) in answers.iter().enumerate() {
            let stored = st.conn().meta_get(&format!("k{k}")).unwrap();
            match k % 3 {
                0 => {
                    assert_eq!(a.as_ref().ok(), Some(&(k as u32)));
                    assert_eq!(stored.as_deref(), Some("v"), "k{k} committed");
                }
                _ => {
                    assert!(a.is_err(), "k{k} answers its error");
                    assert_eq!(stored, None, "k{k} rolled back");
                }
            }
        }
        drop(st);
        // The writer survived the panics.
        assert_eq!(w.write(|_| Ok(7)).unwrap(), 7);
        let (batches, jobs) = w.counts();
        assert!(batches >= 1 && jobs == 25, "{batches} {jobs}");
    }

    #[test]
    fn nonces_are_unique_and_written_with_the_next_batch() {
        let store = Arc::new(Mutex::new(Store::open_in_memory().unwrap()));
        let nonces = Arc::new(Nonces::default());
        let w = Writer::start(sqlite(&store, &nonces)).unwrap();
        let n = "0123456789abcdef0123456789abcdef";
        assert!(nonces.use_nonce(n, 100));
        assert!(!nonces.use_nonce(n, 101), "a nonce is accepted once");
        assert!(nonces.has_pending());
        w.write(|_| Ok(())).unwrap();
        assert!(!nonces.has_pending());
        let logged = lock(&store).conn().recent_nonces(0).unwrap();
        assert_eq!(logged, vec![(n.to_string(), 100)]);
        // Reloaded (a restart), it is still refused; expired, it is forgotten.
        let again = Nonces::load(lock(&store).conn(), 0).unwrap();
        assert!(!again.use_nonce(n, 102));
        // Forgotten in whole buckets: the one of second 100 is [90, 105).
        again.expire(101);
        assert_eq!(again.len(), 1, "kept to the end of its bucket");
        assert!(!again.use_nonce(n, 103));
        again.expire(105);
        assert_eq!(again.len(), 0);
    }

    fn hex(n: u128) -> String {
        nonce_text(n)
    }

    #[test]
    fn a_replay_is_refused_within_the_window_and_across_bucket_edges() {
        let nonces = Nonces::default();
        // Seconds 14 and 15 are on either side of the first bucket edge.
        assert!(nonces.use_nonce(&hex(1), 14));
        assert!(nonces.use_nonce(&hex(2), 15));
        assert!(nonces.remember(&hex(3), 29));
        for at in [14, 15, 16, 29, 30, 200] {
            for n in 1..=3 {
                assert!(!nonces.use_nonce(&hex(n), at), "nonce {n} replayed at {at}");
                assert!(!nonces.remember(&hex(n), at), "nonce {n} replayed at {at}");
            }
        }
        // A cutoff inside a bucket keeps all of it.
        nonces.expire(14);
        assert_eq!(nonces.len(), 3);
        // Bucket [0, 15) ends: nonce 1 is forgotten (its timestamp would be refused by
        // now), the others stay.
        nonces.expire(15);
        assert_eq!(nonces.len(), 2);
        assert!(!nonces.use_nonce(&hex(2), 300));
        assert!(!nonces.use_nonce(&hex(3), 300));
        nonces.expire(29);
        assert!(!nonces.use_nonce(&hex(2), 300), "[15, 30) is kept until 30");
        nonces.expire(30);
        assert_eq!(nonces.len(), 0);
        // After the window, the same nonce is new again.
        assert!(nonces.use_nonce(&hex(1), 400));
        assert!(nonces.use_nonce(&hex(2), 400));
        assert!(!nonces.use_nonce(&hex(2), 401));
    }

    #[test]
    fn nonces_seen_out_of_order_land_in_their_own_bucket() {
        let nonces = Nonces::default();
        assert!(nonces.use_nonce(&hex(1), 100));
        // A clock step back: second 40 is in an older bucket than 100's.
        assert!(nonces.use_nonce(&hex(2), 40));
        assert!(nonces.use_nonce(&hex(3), 70));
        assert!(!nonces.use_nonce(&hex(2), 100));
        nonces.expire(45);
        assert_eq!(nonces.len(), 2, "only [30, 45) ended");
        assert!(nonces.use_nonce(&hex(2), 101));
        nonces.expire(90);
        assert_eq!(nonces.len(), 2, "[60, 75) ended; [90, 105) holds 1 and 2");
        assert!(!nonces.use_nonce(&hex(1), 102));
        assert!(nonces.use_nonce(&hex(3), 102));
    }

    #[test]
    fn the_nonce_set_is_bounded_by_the_window_in_whole_buckets() {
        let nonces = Nonces::default();
        let window = 300;
        // 50 calls a second for 1,000 seconds, expired as the sweep does every 15 s.
        let mut n = 0u128;
        for now in 0..1000u64 {
            for _ in 0..50 {
                n += 1;
                assert!(nonces.use_nonce(&hex(n), now));
            }
            if now % 15 == 0 {
                nonces.expire(now.saturating_sub(window));
            }
            let max_buckets = (window / NONCE_BUCKET_SECS + 2) as usize;
            assert!(
                nonces.buckets() <= max_buckets,
                "{} at {now}",
                nonces.buckets()
            );
            assert!(
                nonces.len() <= max_buckets * 15 * 50,
                "{} at {now}",
                nonces.len()
            );
        }
        // Idle: everything goes, whole.
        nonces.expire(1000 + NONCE_BUCKET_SECS);
        assert_eq!((nonces.len(), nonces.buckets()), (0, 0));
    }
}

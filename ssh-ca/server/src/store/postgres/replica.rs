//! Replica plumbing: the listener of other replicas' changes, the leadership of background
//! jobs, and heartbeats.

use std::collections::VecDeque;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use super::conn::{PgConn, get};
use super::{Change, Inner, Job, ReplicaRow, i, u};
use crate::error::{CaError, Result};

/// Receives the changes other replicas commit (`LISTEN jit` on its own connection). After
/// a reconnection every kind is reported once (what was sent meanwhile is lost), so the
/// caller refreshes everything.
pub struct Listener {
    inner: Arc<Inner>,
    conn: Option<PgConn>,
    tx: mpsc::Sender<String>,
    rx: mpsc::Receiver<String>,
    pending: VecDeque<Change>,
}

impl std::fmt::Debug for Listener {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Listener")
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl Listener {
    pub(crate) fn new(inner: Arc<Inner>) -> Result<Self> {
        let (tx, rx) = mpsc::channel();
        let mut l = Self {
            inner,
            conn: None,
            tx,
            rx,
            pending: VecDeque::new(),
        };
        l.connect()?;
        l.pending.clear();
        Ok(l)
    }

    fn connect(&mut self) -> Result<()> {
        self.conn = None;
        let c = self
            .inner
            .target
            .connect(&self.inner.name("listen"), Some(self.tx.clone()))?;
        c.batch("LISTEN jit")?;
        self.conn = Some(c);
        self.pending
            .extend([Change::Revocation, Change::Grants, Change::External]);
        Ok(())
    }

    /// The next change, waiting at most `d`; None when none came. An error: the database
    /// cannot be reached (the next call tries again).
    pub fn recv_timeout(&mut self, d: Duration) -> Result<Option<Change>> {
        if let Some(c) = self.pending.pop_front() {
            return Ok(Some(c));
        }
        if self.conn.as_ref().is_none_or(PgConn::is_closed) {
            if let Err(e) = self.connect() {
                std::thread::sleep(d.min(Duration::from_secs(1)));
                return Err(e);
            }
            return Ok(self.pending.pop_front());
        }
        match self.rx.recv_timeout(d) {
            Ok(payload) => Ok(Some(Change::parse(&payload).unwrap_or(Change::External))),
            Err(_) => Ok(None),
        }
    }
}

/// Leadership of background jobs: session advisory locks on its own connection (a lost
/// connection loses them: PostgreSQL releases a dead session's locks).
pub struct Leader {
    inner: Arc<Inner>,
    conn: Option<PgConn>,
    held: [bool; 2],
}

impl std::fmt::Debug for Leader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leader")
            .field("held", &self.held)
            .finish_non_exhaustive()
    }
}

fn job_index(j: Job) -> usize {
    match j {
        Job::Sweep => 0,
        Job::Notify => 1,
    }
}

/// The advisory lock of a job.
pub(crate) fn job_lock(j: Job) -> i64 {
    0x6a69_7400_0010 + job_index(j) as i64
}

impl Leader {
    pub(crate) fn new(inner: Arc<Inner>) -> Self {
        Self {
            inner,
            conn: None,
            held: [false; 2],
        }
    }

    /// Whether this replica runs `job` now: takes its lock when free; false when another
    /// replica holds it or the database cannot be reached (locks held on a lost connection
    /// are gone).
    pub fn holds(&mut self, job: Job) -> bool {
        if self.conn.as_ref().is_none_or(PgConn::is_closed) {
            self.held = [false; 2];
            self.conn = self
                .inner
                .target
                .connect(&self.inner.name("leader"), None)
                .ok();
        }
        let Some(c) = &self.conn else {
            return false;
        };
        let k = job_index(job);
        let r = if self.held[k] {
            // Still ours while the session lives: one round trip proves it.
            c.one("SELECT 1", &[]).map(|_| true)
        } else {
            c.one("SELECT pg_try_advisory_lock($1)", &[&job_lock(job)])
                .and_then(|row| get::<bool>(&row, 0))
        };
        match r {
            Ok(b) => {
                self.held[k] = b;
                b
            }
            Err(_) => {
                self.conn = None;
                self.held = [false; 2];
                false
            }
        }
    }
}

pub(crate) fn heartbeat(c: &PgConn, r: &ReplicaRow) -> Result<()> {
    c.exec(
        "INSERT INTO replicas (name, host, version, started_at, last_seen, \
         served_revocation_sequence, loaded_audit_seq, policy_digest, keys_digest, jobs) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (name) DO UPDATE SET \
         host = excluded.host, version = excluded.version, started_at = excluded.started_at, \
         last_seen = excluded.last_seen, served_revocation_sequence = excluded.served_revocation_sequence, \
         loaded_audit_seq = excluded.loaded_audit_seq, policy_digest = excluded.policy_digest, \
         keys_digest = excluded.keys_digest, jobs = excluded.jobs",
        &[
            &r.name,
            &r.host,
            &r.version,
            &i(r.started_at),
            &i(r.last_seen),
            &i(r.served_revocation_sequence),
            &i(r.loaded_audit_seq),
            &r.policy_digest,
            &r.keys_digest,
            &r.jobs,
        ],
    )?;
    Ok(())
}

pub(crate) fn replicas(c: &PgConn, since: u64) -> Result<Vec<ReplicaRow>> {
    c.rows(
        "SELECT name, host, version, started_at, last_seen, served_revocation_sequence, \
         loaded_audit_seq, policy_digest, keys_digest, jobs FROM replicas \
         WHERE last_seen >= $1 ORDER BY name",
        &[&i(since)],
    )?
    .iter()
    .map(|r| {
        Ok(ReplicaRow {
            name: get(r, 0)?,
            host: get(r, 1)?,
            version: get(r, 2)?,
            started_at: u(get(r, 3)?),
            last_seen: u(get(r, 4)?),
            served_revocation_sequence: u(get(r, 5)?),
            loaded_audit_seq: u(get(r, 6)?),
            policy_digest: get(r, 7)?,
            keys_digest: get(r, 8)?,
            jobs: get(r, 9)?,
        })
    })
    .collect::<Result<Vec<_>>>()
    .map_err(|e: CaError| e)
}

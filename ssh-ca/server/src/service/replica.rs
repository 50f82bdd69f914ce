//! Several replicas of one CA on one PostgreSQL database (issue 17; docs/ha.md).
//!
//! **Peer changes.** Another replica's revocation or an operator command on any data
//! directory changes what this replica serves from memory (KRL, revocation list, grant
//! snapshot). The writing transaction sends `pg_notify` at commit; a listener thread
//! ([`ReplicaThreads`]) picks the change up at once: a revocation or operator change
//! republishes **without** a new sequence (the stored, already signed list is reused, so every
//! replica serves the same bytes and ETag) and rebuilds the grant snapshot; grants changes
//! mark the snapshot stale. Notifications sent while the listener was disconnected are lost,
//! so once a second [`Ca::poll_peers`] also compares the stored revocation sequence and the
//! audit head with what this replica serves and loaded (two indexed rows).
//!
//! **Background jobs.** Expiry, reminders, pruning and the periodic re-sign of the revocation
//! list ([`Job::Sweep`]) and notification fan-out and delivery ([`Job::Notify`]) run on the
//! replica that holds the job's session advisory lock ([`Ca::leads`]); the others skip them.
//! A leader that dies drops its session and so its locks; another takes the job at its next
//! tick. Correctness does not depend on it: every job's writes re-check under the audit lock.
//!
//! **Heartbeat.** Every 5 s each replica writes its row (`jit-ca db status`): version, served
//! revocation sequence, audit head loaded, digests of its policy and keys, jobs led.
//!
//! On SQLite none of this runs: [`Ca::leads`] is always true, no thread is started.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use sha2::{Digest as _, Sha256};

use super::{Ca, lock};
use crate::error::CaError;
use crate::store::postgres::{Change, Job, Leader, ReplicaRow};

/// How often the heartbeat row is written.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(5);
/// A replica whose heartbeat is older than this no longer counts in the host-document
/// budget's share ([`Ca::replicas_seen`]).
pub const REPLICAS_SEEN_SECS: u64 = 60;
/// How often the fallback poll runs.
pub const POLL_EVERY: Duration = Duration::from_secs(1);

/// This replica's view of its peers (kept in the `Ca`).
#[derive(Debug, Default)]
pub(super) struct State {
    /// The session that may hold the jobs' locks (made on first use, again after a loss).
    leader: Mutex<Option<Leader>>,
    /// Jobs held at the last look (bit per job), for the heartbeat.
    held: AtomicU64,
    /// The audit head (seq) this replica last loaded.
    audit_seen: AtomicU64,
    /// The stored revocation sequence at the last poll (for the lag metric).
    stored_sequence: AtomicU64,
    /// Replicas (this one included) whose heartbeat was seen in the last minute, at the
    /// last heartbeat (0 before the first; see `Ca::host_document_limit`).
    replicas_seen: AtomicU64,
    /// The stored revocation sequence last found not to verify with this replica's grant
    /// keys (alerted once per sequence; the poll does not retry it every second).
    unverified: AtomicU64,
    /// When this replica started (unix seconds; set at the first heartbeat).
    started_at: AtomicU64,
    /// SHA-256 of policy.toml as last loaded (empty: not known yet).
    policy_digest: Mutex<String>,
}

fn bit(job: Job) -> u64 {
    match job {
        Job::Sweep => 1,
        Job::Notify => 2,
    }
}

impl Ca {
    /// Whether this replica runs `job` now. SQLite: always. PostgreSQL: it holds the job's
    /// lock (taken now if free); false while the database is unreachable.
    pub fn leads(&self, job: Job) -> bool {
        let Some(pg) = self.backend.postgres() else {
            return true;
        };
        let state = &self.external.replica;
        let mut leader = lock(&state.leader);
        if leader.is_none() {
            match pg.leader() {
                Ok(l) => *leader = Some(l),
                Err(_) => {
                    state.held.fetch_and(!bit(job), Ordering::SeqCst);
                    return false;
                }
            }
        }
        let holds = leader.as_mut().is_some_and(|l| l.holds(job));
        if holds {
            state.held.fetch_or(bit(job), Ordering::SeqCst);
        } else {
            state.held.fetch_and(!bit(job), Ordering::SeqCst);
        }
        holds
    }

    /// Whether this replica's database answered its last round trip (`GET /v1/health`
    /// answers 503 otherwise). Always true on SQLite.
    pub fn database_healthy(&self) -> bool {
        self.backend.postgres().is_none_or(|pg| pg.healthy())
    }

    /// Stored minus served revocation sequence (0 on SQLite and when current).
    pub fn revocation_lag(&self) -> u64 {
        if self.backend.postgres().is_none() {
            return 0;
        }
        self.external
            .replica
            .stored_sequence
            .load(Ordering::SeqCst)
            .saturating_sub(self.published().revocation_sequence)
    }

    /// Reloads what another replica (or an operator command) changed: the published
    /// documents from the stored revocation list (no new sequence) and the grant snapshot.
    /// A stored list that does not verify with this replica's grant keys is never signed
    /// anew here (two replicas with different keys would re-sign each other's list without
    /// end): the one served so far stays, and an alert-level line says so.
    pub fn pick_up_peer_changes(&self) -> Result<(), CaError> {
        let now = self.now();
        self.pick_up_revocations(now)?;
        self.refresh_grants(now)?;
        Ok(())
    }

    /// Another replica issued, extended or ended grants: the snapshot is rebuilt on the next
    /// host read.
    pub fn note_peer_grants(&self) {
        self.after_issuance(None);
    }

    /// The fallback for lost notifications (once a second): picks up a stored revocation
    /// list newer than the one served, and marks the grant snapshot stale when the audit head
    /// moved. Returns whether it picked up a revocation list. A no-op on SQLite (the sweep and
    /// `pick_up_external_changes` cover the one process there).
    pub fn poll_peers(&self) -> Result<bool, CaError> {
        if self.backend.postgres().is_none() {
            return Ok(false);
        }
        let (stored, head) = self.read_db(|c| {
            Ok::<_, CaError>((
                crate::store::meta_counter(c, "revocation_sequence")?,
                c.audit_head()?.map_or(0, |h| h.0),
            ))
        })?;
        let state = &self.external.replica;
        state.stored_sequence.store(stored, Ordering::SeqCst);
        let mut picked = false;
        if stored > self.published().revocation_sequence && !self.known_unverified(stored) {
            self.pick_up_peer_changes()?;
            picked = true;
        }
        if state.audit_seen.swap(head, Ordering::SeqCst) != head {
            self.after_issuance(None);
        }
        Ok(picked)
    }

    /// Writes this replica's heartbeat row (PostgreSQL only).
    pub fn heartbeat(&self) -> Result<(), CaError> {
        let Some(pg) = self.backend.postgres() else {
            return Ok(());
        };
        let now = self.now();
        let state = &self.external.replica;
        let _ = state
            .started_at
            .compare_exchange(0, now, Ordering::SeqCst, Ordering::SeqCst);
        let held = state.held.load(Ordering::SeqCst);
        let jobs: Vec<&str> = [(Job::Sweep, "sweep"), (Job::Notify, "notify")]
            .into_iter()
            .filter(|(j, _)| held & bit(*j) != 0)
            .map(|(_, n)| n)
            .collect();
        let row = ReplicaRow {
            name: self
                .config
                .database
                .as_ref()
                .map_or_else(String::new, |d| d.replica.clone()),
            host: hostname(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            started_at: state.started_at.load(Ordering::SeqCst),
            last_seen: now,
            served_revocation_sequence: self.published().revocation_sequence,
            loaded_audit_seq: state.audit_seen.load(Ordering::SeqCst),
            policy_digest: self.policy_digest(),
            keys_digest: self.keys_digest(),
            jobs: jobs.join(","),
        };
        pg.heartbeat(&row)?;
        let seen = pg.replicas(now.saturating_sub(REPLICAS_SEEN_SECS))?;
        state.replicas_seen.store(
            u64::try_from(seen.len()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
        Ok(())
    }

    /// Whether the stored sequence `stored` is one this replica already found unverifiable
    /// (and alerted for): not picked up again every second.
    pub(super) fn known_unverified(&self, stored: u64) -> bool {
        stored != 0 && stored == self.external.replica.unverified.load(Ordering::SeqCst)
    }

    /// Notes that the stored list `stored` does not verify here; whether it is news (the
    /// alert is logged once per sequence).
    pub(super) fn note_unverified(&self, stored: u64) -> bool {
        self.external
            .replica
            .unverified
            .swap(stored, Ordering::SeqCst)
            != stored
    }

    /// Replicas whose heartbeat was seen in the last minute, this one included, at the last
    /// heartbeat: 1 on SQLite, 0 on PostgreSQL before the first heartbeat.
    pub fn replicas_seen(&self) -> u64 {
        if self.backend.postgres().is_none() {
            return 1;
        }
        self.external.replica.replicas_seen.load(Ordering::SeqCst)
    }

    /// Notes the digest of the policy file just loaded (SIGHUP).
    pub(super) fn note_policy_loaded(&self) {
        let d = file_digest(&self.config.policy_path());
        *lock(&self.external.replica.policy_digest) = d;
    }

    fn policy_digest(&self) -> String {
        let mut d = lock(&self.external.replica.policy_digest);
        if d.is_empty() {
            *d = file_digest(&self.config.policy_path());
        }
        d.clone()
    }

    /// SHA-256 over the fingerprints of the user-CA and grant public keys, in order.
    fn keys_digest(&self) -> String {
        let mut h = Sha256::new();
        for k in self.signer.ca_public_keys() {
            h.update(b"ca ");
            h.update(jit_common::keys::fingerprint(&k).as_bytes());
            h.update(b"\n");
        }
        for k in self.signer.grant_public_keys() {
            h.update(b"grant ");
            h.update(jit_common::keys::fingerprint(&k).as_bytes());
            h.update(b"\n");
        }
        hex::encode(h.finalize())
    }
}

fn file_digest(path: &std::path::Path) -> String {
    match std::fs::read(path) {
        Ok(bytes) => hex::encode(Sha256::digest(&bytes)),
        Err(_) => "unreadable".into(),
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// The replica threads of a running CA on PostgreSQL: the change listener, and the poll and
/// heartbeat. Stopped (and joined) when dropped.
#[derive(Debug, Default)]
pub struct ReplicaThreads {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for ReplicaThreads {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

impl ReplicaThreads {
    /// Starts the threads for `ca` (none on SQLite).
    pub fn start(ca: &Arc<Ca>) -> Result<Self, CaError> {
        let mut me = Self::default();
        if ca.backend.postgres().is_none() {
            return Ok(me);
        }
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.into())
                .spawn(f)
                .map_err(|source| CaError::Thread {
                    name: "replica",
                    source,
                })
        };
        {
            let (ca, stop) = (ca.clone(), me.stop.clone());
            me.threads.push(spawn(
                "jit-ca-listen",
                Box::new(move || listen_loop(&ca, &stop)),
            )?);
        }
        {
            let (ca, stop) = (ca.clone(), me.stop.clone());
            me.threads.push(spawn(
                "jit-ca-replica",
                Box::new(move || poll_loop(&ca, &stop)),
            )?);
        }
        Ok(me)
    }
}

fn listen_loop(ca: &Ca, stop: &AtomicBool) {
    let mut backoff = Duration::from_millis(200);
    let mut reported = false;
    while !stop.load(Ordering::SeqCst) {
        let Some(pg) = ca.backend.postgres() else {
            return;
        };
        let mut listener = match pg.listener() {
            Ok(l) => {
                if reported {
                    jit_common::errln!("jit-ca: listening for other replicas' changes again");
                    // What was sent while away: the poll would see it within a second anyway.
                    let _ = ca.pick_up_peer_changes();
                }
                backoff = Duration::from_millis(200);
                reported = false;
                l
            }
            Err(e) => {
                if !reported {
                    jit_common::errln!(
                        "jit-ca: cannot listen for other replicas' changes (retrying; polled once a second meanwhile): {e}"
                    );
                    reported = true;
                }
                sleep_unless(stop, backoff);
                backoff = (backoff * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        while !stop.load(Ordering::SeqCst) {
            match listener.recv_timeout(Duration::from_secs(1)) {
                Ok(None) => {}
                Ok(Some(Change::Revocation | Change::External)) => {
                    if let Err(e) = ca.pick_up_peer_changes() {
                        jit_common::errln!(
                            "jit-ca: picking up another replica's change failed (retried by the poll): {e}"
                        );
                    }
                }
                Ok(Some(Change::Grants)) => ca.note_peer_grants(),
                Err(e) => {
                    jit_common::errln!(
                        "jit-ca: the change listener lost its connection (reconnecting): {e}"
                    );
                    reported = true;
                    break;
                }
            }
        }
    }
}

fn poll_loop(ca: &Ca, stop: &AtomicBool) {
    let mut last_beat: Option<Instant> = None;
    let mut failing = false;
    while !stop.load(Ordering::SeqCst) {
        let r = ca.poll_peers().and_then(|_| {
            if last_beat.is_none_or(|t| t.elapsed() >= HEARTBEAT_EVERY) {
                last_beat = Some(Instant::now());
                ca.heartbeat()?;
            }
            Ok(())
        });
        match r {
            Ok(()) if failing => {
                jit_common::errln!("jit-ca: the database answers again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                jit_common::errln!("jit-ca: replica poll failed (retried every second): {e}");
                failing = true;
            }
            Err(_) => {}
        }
        sleep_unless(stop, POLL_EVERY);
    }
}

fn sleep_unless(stop: &AtomicBool, d: Duration) {
    let end = Instant::now() + d;
    while !stop.load(Ordering::SeqCst) {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return;
        }
        std::thread::sleep(left.min(Duration::from_millis(100)));
    }
}

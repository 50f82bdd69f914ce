//! The PostgreSQL backend (several jit-ca replicas on one database): the schema and its
//! migrations ([`schema`]), [`StoreOps`] in PostgreSQL's SQL (`tx`, `ops_*`), and the
//! runners: [`PgStore::transact`], the group commit's [`PgStore::batch_runner`],
//! [`PgStore::read`], [`PgStore::claim_nonce`], and the replica plumbing ([`Listener`],
//! [`Leader`], heartbeats).
//!
//! **One lock orders every write.** Each write transaction is READ COMMITTED and takes
//! `pg_advisory_xact_lock(AUDIT_LOCK)` as its first statement: the audit chain is appended
//! under it (head read inside), approvals, issuance and per-user bounds are decided under
//! it, and the outbox `seq` is allocated under it, so commit order is seq order across
//! replicas. One lock, always first: no deadlock, no retry loop. An expected conflict is
//! `ON CONFLICT`/`RETURNING`, never a caught error (PostgreSQL aborts the transaction).
//!
//! **Errors.** A connection lost, refused or shut down is [`CaError::Unavailable`] (nothing
//! stored: safe to retry elsewhere), except during `COMMIT`: then the outcome is unknown
//! and the error says so (never success, never "unavailable"). `lock_timeout` (5 s) is
//! [`CaError::Busy`]. The connections reconnect on their next use.

pub(crate) mod conn;
mod nonces;
mod ops_certs;
mod ops_log;
mod ops_outbox;
mod ops_requests;
mod ops_users;
mod ops_web;
mod replica;
mod runner;
pub(crate) mod schema;
mod tls;
mod tx;

#[cfg(test)]
mod conformance;
#[cfg(test)]
pub(crate) mod testdb;
#[cfg(test)]
mod tests;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use conn::{PgConn, Slot, Target};
use tx::PgTx;

use crate::error::{CaError, Result};
use crate::service::BatchRunner;
use crate::store::StoreOps;

pub use replica::{Leader, Listener};

/// Advisory lock taken first by every write transaction (the audit chain's order).
pub(crate) const AUDIT_LOCK: i64 = 0x6a69_7400_0001;

/// How to reach the database (`database`, `database_password_file`, `database_ca`,
/// `replica_name` in config.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// `postgres://user@host:port/db?sslmode=require` or libpq `key=value` pairs.
    pub conninfo: String,
    /// The password, in a file only its owner reads.
    pub password_file: Option<PathBuf>,
    /// The CA certificates to trust for TLS (else the system's).
    pub ca_file: Option<PathBuf>,
    /// This replica's name (`application_name`, heartbeats).
    pub replica: String,
}

/// A kind of change another replica made (a `pg_notify('jit', kind)` at its commit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Change {
    /// Certificates revoked or a revocation list published.
    Revocation,
    /// Certificates issued or requests changed (the host grants).
    Grants,
    /// An operator change (`external_generation`).
    External,
}

impl Change {
    /// As sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Revocation => "revocation",
            Self::Grants => "grants",
            Self::External => "external",
        }
    }

    /// From a notification's payload.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "revocation" => Some(Self::Revocation),
            "grants" => Some(Self::Grants),
            "external" => Some(Self::External),
            _ => None,
        }
    }
}

/// A background job only one replica runs at a time ([`Leader`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Job {
    /// Expiry, reminders, pruning, the periodic re-sign.
    Sweep,
    /// The notification worker's fan-out and deliveries.
    Notify,
}

/// A replica's heartbeat row (`replicas`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ReplicaRow {
    pub name: String,
    pub host: String,
    pub version: String,
    pub started_at: u64,
    pub last_seen: u64,
    pub served_revocation_sequence: u64,
    pub loaded_audit_seq: u64,
    pub policy_digest: String,
    pub keys_digest: String,
    pub jobs: String,
}

/// Readers in the pool.
const READERS: usize = 4;
/// Readers of the audit page and its exports only (long scans never hold up the others).
const AUDIT_READERS: usize = 2;

pub(crate) struct Inner {
    target: Target,
    role: &'static str,
    transact: Slot,
    nonces: Slot,
    claims: nonces::Claims,
    readers: Vec<Slot>,
    audit_readers: Vec<Slot>,
    next_reader: AtomicUsize,
}

impl Inner {
    fn name(&self, conn: &str) -> String {
        format!("{}/{conn}", self.role)
    }
}

/// A PostgreSQL database: cheap to clone (the connections are shared), callable from any
/// thread (inside tokio tasks too).
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("target", &self.inner.target)
            .field("role", &self.inner.role)
            .finish_non_exhaustive()
    }
}

pub(crate) fn u(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

pub(crate) fn i(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(crate) fn to_json(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

/// A stored JSON list of strings; one that does not parse is an error, never empty.
pub(crate) fn json_vec(what: &'static str, row: &str, s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s).map_err(|e| CaError::BadStoredValue {
        what,
        detail: format!("{row}: {e}"),
    })
}

/// BEGIN of a write transaction: the audit lock first (one round trip).
fn begin_write_sql() -> String {
    format!("BEGIN ISOLATION LEVEL READ COMMITTED; SELECT pg_advisory_xact_lock({AUDIT_LOCK})")
}

/// Sends the notifications of `changes` and commits. A connection lost during COMMIT is an
/// unknown outcome, said so.
fn commit_write(c: &PgConn, changes: tx::Changes) -> Result<()> {
    let kinds: Vec<&str> = changes.kinds().into_iter().map(Change::as_str).collect();
    if !kinds.is_empty() {
        c.exec(
            "SELECT pg_notify('jit', k) FROM unnest($1::text[]) AS k",
            &[&kinds],
        )?;
    }
    c.commit()
}

impl PgStore {
    /// Connects (`role` names the process in `application_name`: `serve`, `admin`, ...)
    /// and brings the schema up to date under the migration lock (`serve`, `db copy`).
    pub fn connect(s: &PgSettings, role: &'static str) -> Result<PgStore> {
        Self::connect_as(s, role, Some(schema::Migrate::Upgrade))
    }

    /// Connects for an operator command: creates the schema of an empty database, but
    /// refuses one older (or newer) than this build instead of migrating it under older
    /// replicas.
    pub fn connect_admin(s: &PgSettings, role: &'static str) -> Result<PgStore> {
        Self::connect_as(s, role, Some(schema::Migrate::CreateOnly))
    }

    /// Connects without touching or checking the schema (`db status`: it reports both
    /// versions).
    pub fn connect_unchecked(s: &PgSettings, role: &'static str) -> Result<PgStore> {
        Self::connect_as(s, role, None)
    }

    fn connect_as(
        s: &PgSettings,
        role: &'static str,
        how: Option<schema::Migrate>,
    ) -> Result<PgStore> {
        let target = Target::new(s)?;
        let first = target.connect(&format!("{role}/transact"), None)?;
        if let Some(how) = how {
            schema::migrate(&first, how)?;
        }
        let transact = Slot::default();
        transact.put(first);
        Ok(PgStore {
            inner: Arc::new(Inner {
                target,
                role,
                transact,
                nonces: Slot::default(),
                claims: nonces::Claims::default(),
                readers: (0..READERS).map(|_| Slot::default()).collect(),
                audit_readers: (0..AUDIT_READERS).map(|_| Slot::default()).collect(),
                next_reader: AtomicUsize::new(0),
            }),
        })
    }

    /// Runs `f` in one write transaction: BEGIN; the audit lock; `f`; a notification per
    /// kind of change; COMMIT (`f`'s error: ROLLBACK).
    pub fn transact<R, E: From<CaError>>(
        &self,
        f: impl FnOnce(&dyn StoreOps) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        let inner = &*self.inner;
        let mut g = inner.transact.lock();
        let c = Slot::begin(
            &mut g,
            &inner.target,
            &inner.name("transact"),
            &begin_write_sql(),
        )?;
        let tx = PgTx::new(c);
        match f(&tx) {
            Ok(v) => {
                commit_write(c, tx.changed.get())?;
                Ok(v)
            }
            Err(e) => {
                c.rollback();
                Err(e)
            }
        }
    }

    /// Runs `f` on a pooled reader in one REPEATABLE READ READ ONLY snapshot.
    pub fn read<R>(&self, f: impl FnOnce(&dyn StoreOps) -> R) -> Result<R> {
        self.read_on(&self.inner.readers, "read", f)
    }

    /// [`PgStore::read`] on the audit page's own readers (its scans and verification never
    /// wait for, nor hold, the general ones).
    pub fn read_audit<R>(&self, f: impl FnOnce(&dyn StoreOps) -> R) -> Result<R> {
        self.read_on(&self.inner.audit_readers, "audit", f)
    }

    fn read_on<R>(
        &self,
        pool: &[Slot],
        role: &str,
        f: impl FnOnce(&dyn StoreOps) -> R,
    ) -> Result<R> {
        let inner = &*self.inner;
        let n = pool.len();
        let start = inner.next_reader.fetch_add(1, Ordering::Relaxed);
        let mut guard = None;
        for k in 0..n {
            if let Some(g) = pool[(start + k) % n].try_lock() {
                guard = Some(g);
                break;
            }
        }
        let mut g = match guard {
            Some(g) => g,
            None => pool[start % n].lock(),
        };
        let c = Slot::begin(
            &mut g,
            &inner.target,
            &inner.name(role),
            "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        )?;
        let r = f(&PgTx::new(c));
        c.end_read()?;
        Ok(r)
    }

    /// A group-commit runner on its own connection (every batch: the audit lock first).
    pub(crate) fn batch_runner(&self) -> Result<Box<dyn BatchRunner>> {
        Ok(Box::new(runner::PgRunner::new(self.inner.clone())))
    }

    /// Claims a nonce durably (committed INSERT .. ON CONFLICT DO NOTHING, concurrent
    /// claims in one batch): false when some replica claimed it before (a replay).
    pub fn claim_nonce(&self, nonce: &str, now: u64) -> Result<bool> {
        self.inner.claims.claim(&self.inner, nonce, now)
    }

    /// A listener of other replicas' changes (its own connection).
    pub fn listener(&self) -> Result<Listener> {
        Listener::new(self.inner.clone())
    }

    /// The background jobs' leadership (its own connection).
    pub fn leader(&self) -> Result<Leader> {
        Ok(Leader::new(self.inner.clone()))
    }

    /// Stores this replica's heartbeat row.
    pub fn heartbeat(&self, r: &ReplicaRow) -> Result<()> {
        let inner = &*self.inner;
        let mut g = inner.nonces.lock();
        let c = Slot::ensure(&mut g, &inner.target, &inner.name("nonces"))?;
        replica::heartbeat(c, r)
    }

    /// The replicas seen at or after `since`, by name.
    pub fn replicas(&self, since: u64) -> Result<Vec<ReplicaRow>> {
        let inner = &*self.inner;
        let mut g = inner.nonces.lock();
        let c = Slot::ensure(&mut g, &inner.target, &inner.name("nonces"))?;
        replica::replicas(c, since)
    }

    /// The stored schema version.
    pub fn schema_version(&self) -> Result<u32> {
        let inner = &*self.inner;
        let mut g = inner.nonces.lock();
        let c = Slot::ensure(&mut g, &inner.target, &inner.name("nonces"))?;
        schema::version(c)
    }

    /// Runs `f` while every pooled reader is held (tests: reads wait meanwhile).
    pub fn hold_read_connections<R>(&self, f: impl FnOnce() -> R) -> R {
        let _held: Vec<_> = self.inner.readers.iter().map(Slot::lock).collect();
        f()
    }

    /// Whether the last round trip to the database (of any connection) succeeded.
    pub fn healthy(&self) -> bool {
        self.inner.target.health.load(Ordering::Relaxed)
    }
}

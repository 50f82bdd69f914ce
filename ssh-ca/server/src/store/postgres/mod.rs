//! The PostgreSQL backend (issue 17): several `jit-ca serve` replicas on one database.
//!
//! STUB: this file fixes the API the service is built against (the storage seam); every
//! operation answers [`CaError::Unavailable`] until the backend is built. `Config.database`
//! is parsed (see `config::database`) so the settings are validated today.

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{CaError, Result};
use crate::service::BatchRunner;
use crate::store::StoreOps;

const NOT_BUILT: &str = "PostgreSQL support is not built yet";

fn not_built() -> CaError {
    CaError::Unavailable(NOT_BUILT.into())
}

/// How to reach the database (`config.toml`: `database`, `database_password_file`,
/// `database_ca`, `replica_name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgSettings {
    /// libpq conninfo (a `postgres://` URL or key=value settings), never with a password.
    pub conninfo: String,
    /// The file holding the password (read with the secret-file rules at connect).
    pub password_file: Option<PathBuf>,
    /// PEM roots to verify the server's certificate with (default: the system's).
    pub ca_file: Option<PathBuf>,
    /// This replica's name (`application_name`, `jit-ca db status`, metrics).
    pub replica: String,
}

/// A connected, migrated database.
#[derive(Debug)]
pub struct PgStore {
    _private: (),
}

/// Notifications of changes made by other replicas.
#[derive(Debug)]
pub struct Listener {
    _private: (),
}

/// Leadership of the jobs only one replica may run at a time.
#[derive(Debug)]
pub struct Leader {
    _private: (),
}

/// What another replica changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// A revocation (the revocation list and KRL must be rebuilt).
    Revocation,
    /// Grants (issuance, extension, expiry): the grant snapshot is stale.
    Grants,
    /// An operator change (users, keys, operator revocations).
    External,
}

/// A job only one replica runs at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Job {
    /// Expiry, reminders, re-signing.
    Sweep,
    /// Notification fan-out and delivery.
    Notify,
}

/// One replica's row in `jit-ca db status`.
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

impl PgStore {
    /// Connects (as `role`, shown in `application_name`) and migrates under a lock.
    pub fn connect(s: &PgSettings, role: &'static str) -> Result<PgStore> {
        let _ = (s, role);
        Err(not_built())
    }

    /// One write transaction: `BEGIN`, the audit lock first, `f`, notifications, `COMMIT`.
    pub fn transact<R, E: From<CaError>>(
        &self,
        f: impl FnOnce(&dyn StoreOps) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E> {
        let _ = f;
        Err(not_built().into())
    }

    /// A read on a pooled connection (`REPEATABLE READ READ ONLY`).
    pub fn read<R>(&self, f: impl FnOnce(&dyn StoreOps) -> R) -> Result<R> {
        let _ = f;
        Err(not_built())
    }

    /// The group commit's runner, on its own connection (audit lock first in each batch).
    pub(crate) fn batch_runner(&self) -> Result<Box<dyn BatchRunner>> {
        Err(not_built())
    }

    /// Claims a nonce durably; false when another call (on any replica) claimed it.
    pub fn claim_nonce(&self, nonce: &str, now: u64) -> Result<bool> {
        let _ = (nonce, now);
        Err(not_built())
    }

    /// Listens for other replicas' changes.
    pub fn listener(&self) -> Result<Listener> {
        Err(not_built())
    }

    /// A session that may take the jobs' leadership.
    pub fn leader(&self) -> Result<Leader> {
        Err(not_built())
    }

    /// Writes this replica's row.
    pub fn heartbeat(&self, r: &ReplicaRow) -> Result<()> {
        let _ = r;
        Err(not_built())
    }

    /// The replicas seen since `since`.
    pub fn replicas(&self, since: u64) -> Result<Vec<ReplicaRow>> {
        let _ = since;
        Err(not_built())
    }

    /// The schema version (shared numbering with SQLite's migrations).
    pub fn schema_version(&self) -> Result<u32> {
        Err(not_built())
    }

    /// Whether the last round trip to the database succeeded.
    pub fn healthy(&self) -> bool {
        false
    }
}

impl Listener {
    /// The next change, or None after `timeout`.
    pub fn recv_timeout(&mut self, timeout: Duration) -> Result<Option<Change>> {
        let _ = timeout;
        Err(not_built())
    }
}

impl Leader {
    /// Whether this replica holds `job` (false when its connection is lost).
    pub fn holds(&mut self, job: Job) -> bool {
        let _ = job;
        false
    }
}

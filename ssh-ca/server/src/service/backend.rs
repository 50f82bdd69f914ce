//! Which database the service runs on, and how each kind of storage operation runs there.
//!
//! * SQLite (one `jit-ca serve` per data directory): the writer's connection under a lock
//!   (`transact`: `BEGIN IMMEDIATE`, accepted nonces written into the same transaction), the
//!   group commit's [`commit::SqliteRunner`], read connections (and the audit page's own),
//!   the WAL checkpointer. Unchanged from before the seam.
//! * PostgreSQL (several replicas): [`PgStore::transact`], a group commit over
//!   [`PgStore::batch_runner`], pooled reads; each nonce is claimed durably
//!   ([`PgStore::claim_nonce`]) after the local set, so a replay to another replica is refused.

use std::sync::{Arc, Mutex};

use super::commit::{self, Writer};
use super::{ApiResult, lock};
use crate::error::{CaError, Result};
use crate::store::postgres::PgStore;
use crate::store::{Db, Store, StoreOps};

/// Read connections to the database (signed calls authenticate on them).
const READERS: usize = 4;
/// Read connections of the audit page and its exports only (window scans, chain
/// verification), so those never hold the ones signed calls need.
const AUDIT_READERS: usize = 2;

/// The storage of a running CA.
#[derive(Debug)]
pub(super) enum Backend {
    Sqlite {
        store: Arc<Mutex<Store>>,
        /// Group commit of the hot write paths (see `commit`).
        writer: Writer,
        /// Nonces of signed calls within the replay window.
        nonces: Arc<commit::Nonces>,
        /// Read connections.
        readers: commit::Readers,
        /// The audit page's own read connections ([`AUDIT_READERS`]).
        audit_readers: commit::Readers,
        /// Copies the WAL into the database file in the background (file databases).
        _checkpointer: Option<commit::Checkpointer>,
    },
    Postgres {
        pg: PgStore,
        /// Group commit over its own connection.
        writer: Writer,
        /// Nonces seen by this replica (each also claimed in the database).
        nonces: commit::Nonces,
    },
}

impl Backend {
    /// Starts the storage of a CA on `db`; nonces seen since `nonces_since` are loaded.
    pub(super) fn start(db: Db, nonces_since: u64) -> Result<Self> {
        match db {
            Db::Sqlite(store) => {
                let nonces = Arc::new(commit::Nonces::load(store.conn(), nonces_since)?);
                let readers = commit::Readers::open(store.path(), READERS)?;
                let audit_readers = commit::Readers::open(store.path(), AUDIT_READERS)?;
                let checkpointer = match store.path() {
                    Some(p) => {
                        let c = commit::Checkpointer::start(p)?;
                        store.disable_auto_checkpoint()?;
                        Some(c)
                    }
                    None => None,
                };
                let store = Arc::new(Mutex::new(store));
                let writer = Writer::start(Box::new(commit::SqliteRunner {
                    store: store.clone(),
                    nonces: nonces.clone(),
                }))?;
                Ok(Self::Sqlite {
                    store,
                    writer,
                    nonces,
                    readers,
                    audit_readers,
                    _checkpointer: checkpointer,
                })
            }
            Db::Postgres(pg) => {
                let nonces = pg.read(|c| commit::Nonces::load(c, nonces_since))??;
                let writer = Writer::start(pg.batch_runner()?)?;
                Ok(Self::Postgres { pg, writer, nonces })
            }
        }
    }

    /// One write transaction around `f` (see `Ca::transact`).
    pub(super) fn transact<R, E>(
        &self,
        f: impl FnOnce(&dyn StoreOps) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<CaError>,
    {
        match self {
            Self::Sqlite { store, nonces, .. } => {
                let mut st = lock(store);
                let tx = st.tx()?;
                let flushed = nonces.flush_into(&*tx)?;
                let r = f(&*tx)?;
                tx.commit().map_err(CaError::from)?;
                flushed.done();
                Ok(r)
            }
            Self::Postgres { pg, .. } => pg.transact(f),
        }
    }

    /// A change through the group commit.
    pub(super) fn write<R, F>(&self, job: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StoreOps) -> ApiResult<R> + Send + 'static,
    {
        match self {
            Self::Sqlite { writer, .. } | Self::Postgres { writer, .. } => writer.write(job),
        }
    }

    /// A read on a read connection (SQLite: exactly as before, no error of its own).
    pub(super) fn read<R, E>(
        &self,
        f: impl FnOnce(&dyn StoreOps) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<CaError>,
    {
        match self {
            Self::Sqlite { store, readers, .. } => readers.with(store, |c| f(c)),
            Self::Postgres { pg, .. } => pg.read(f)?,
        }
    }

    /// A read on the audit page's own connections.
    pub(super) fn read_audit<R, E>(
        &self,
        f: impl FnOnce(&dyn StoreOps) -> std::result::Result<R, E>,
    ) -> std::result::Result<R, E>
    where
        E: From<CaError>,
    {
        match self {
            Self::Sqlite {
                store,
                audit_readers,
                ..
            } => audit_readers.with(store, |c| f(c)),
            Self::Postgres { pg, .. } => pg.read_audit(f)?,
        }
    }

    /// Runs `f` while every general read connection is held (tests).
    pub(super) fn hold_read_connections<R>(&self, f: impl FnOnce() -> R) -> R {
        match self {
            Self::Sqlite { readers, .. } => readers.hold_all(f),
            Self::Postgres { pg, .. } => pg.hold_read_connections(f),
        }
    }

    /// Accepts a signed call's nonce once: false when it was seen before (a replay). On
    /// PostgreSQL it is also claimed in the database (a replay to another replica), before
    /// the call does anything; a claim that cannot be made is an error (nothing done).
    pub(super) fn use_nonce(&self, nonce: &str, now: u64) -> Result<bool> {
        match self {
            Self::Sqlite { nonces, .. } => Ok(nonces.use_nonce(nonce, now)),
            Self::Postgres { pg, nonces, .. } => {
                if !nonces.remember(nonce, now) {
                    return Ok(false);
                }
                pg.claim_nonce(nonce, now)
            }
        }
    }

    /// Whether accepted nonces wait for a write to carry them (SQLite only).
    pub(super) fn nonces_pending(&self) -> bool {
        match self {
            Self::Sqlite { nonces, .. } => nonces.has_pending(),
            Self::Postgres { .. } => false,
        }
    }

    /// The cutoff before which the sweep deletes stored nonces at `now` (PostgreSQL: with
    /// the replica clock margin, as `seen_at` is another replica's clock).
    pub(super) fn stored_nonce_cutoff(&self, now: u64) -> u64 {
        stored_nonce_cutoff(now, matches!(self, Self::Postgres { .. }))
    }

    /// Forgets nonces seen before `cutoff` from memory.
    pub(super) fn expire_nonces(&self, cutoff: u64) {
        match self {
            Self::Sqlite { nonces, .. } => nonces.expire(cutoff),
            Self::Postgres { nonces, .. } => nonces.expire(cutoff),
        }
    }

    /// Nonces remembered in memory.
    pub(super) fn nonces_remembered(&self) -> usize {
        match self {
            Self::Sqlite { nonces, .. } => nonces.len(),
            Self::Postgres { nonces, .. } => nonces.len(),
        }
    }

    /// (group-commit batches, changes committed in them).
    pub(super) fn commit_counts(&self) -> (u64, u64) {
        match self {
            Self::Sqlite { writer, .. } | Self::Postgres { writer, .. } => writer.counts(),
        }
    }

    /// The PostgreSQL store (None on SQLite).
    pub(super) fn postgres(&self) -> Option<&PgStore> {
        match self {
            Self::Sqlite { .. } => None,
            Self::Postgres { pg, .. } => Some(pg),
        }
    }

    /// "sqlite" or "postgresql".
    pub(super) fn kind(&self) -> &'static str {
        match self {
            Self::Sqlite { .. } => "sqlite",
            Self::Postgres { .. } => "postgresql",
        }
    }
}

/// [`Backend::stored_nonce_cutoff`] (SQLite: exactly as before).
fn stored_nonce_cutoff(now: u64, postgres: bool) -> u64 {
    let keep = super::NONCE_KEEP_SECS;
    if postgres {
        now.saturating_sub(keep + super::REPLICA_CLOCK_MARGIN_SECS)
    } else {
        now.saturating_sub(keep)
    }
}

#[cfg(test)]
mod nonce_tests {
    use super::super::{NONCE_KEEP_SECS, REPLICA_CLOCK_MARGIN_SECS};
    use super::stored_nonce_cutoff;

    #[test]
    fn stored_nonces_outlive_replica_clock_differences_on_postgres_only() {
        let now = 1_000_000;
        assert_eq!(stored_nonce_cutoff(now, false), now - NONCE_KEEP_SECS);
        assert_eq!(
            stored_nonce_cutoff(now, true),
            now - NONCE_KEEP_SECS - REPLICA_CLOCK_MARGIN_SECS
        );
        // A nonce stored by a replica 5 minutes behind the sweep leader survives until every
        // replica's timestamp check would refuse its call.
        let seen_behind = now - NONCE_KEEP_SECS - 300;
        assert!(seen_behind >= stored_nonce_cutoff(now, true));
    }
}

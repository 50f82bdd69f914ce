//! The CA's decisions and their records: authentication of API calls, requests, approvals,
//! issuance, revocation, extension, expiry, and what hosts fetch.
//!
//! Everything here is synchronous and blocking (storage, signing); the HTTP layer
//! ([`crate::api`]) calls it from `spawn_blocking`. Each operation is one database
//! transaction that also appends its audit record, so an event is recorded exactly when it
//! takes effect; the syslog copy is sent after commit. No HTTP type appears here.
//!
//! By concern:
//! * `authn`: signed-call headers to a [`Caller`] (nonces live in `commit`);
//! * `lifecycle`: the request rules, pure (no storage, no clock): admit, approve, deny,
//!   revoke, extend, expire, and the one rule of who may decide;
//! * `requests`: the API's request operations, each reading the clock once and running
//!   one transaction around the lifecycle;
//! * `approve`: approvals by a person, signed (`jit approve`) or from a web session;
//! * `issue`: serials and signing (certificates and grants);
//! * `publish`: the KRL, the revocation list, the key documents and per-host grants;
//! * `sweep`: expiry, nonce forgetting, re-signing, policy reloads;
//! * `trail`: audit records and their syslog copy, refusal records;
//! * `commit`: the group commit, the nonce set, read connections (SQLite's runner);
//! * `external`: operator changes on the data directory, audit checkpoints;
//! * `web`: one-time login links and web sessions (issue 16), web approvals.
//!
//! Time: each public method reads the [`Clock`] once (its entry point) and passes `now`
//! down; nothing below reads the system clock.

mod alerting;
mod approve;
pub mod audit_view;
mod authn;
mod backend;
mod commit;
mod create;
mod doc;
mod evidence;
mod external;
mod gate;
mod grant_index;
mod host_docs;
mod issue;
pub(crate) mod lifecycle;
mod notify;
mod publish;
mod refusals;
mod replica;
mod requests;
mod sweep;
mod trail;
mod views;
pub mod web;

pub use crate::store::operator::OperatorRevocations;
pub use authn::{AuthHeaders, CallProof, Caller, CallerKey};
/// The group commit's seam: a backend's batch runner runs queued [`Entry`]s.
#[allow(unused_imports)] // Entry: for the PostgreSQL runner (store::postgres)
pub(crate) use commit::{BatchRunner, Entry};
pub use doc::Doc;
pub use external::{GrantRevocation, RequestProblem, UserRemoval};
pub use host_docs::{CacheStats, HostDoc, MAX_HOST_DOCUMENT};
pub use publish::Published;
pub use replica::{REPLICAS_SEEN_SECS, ReplicaThreads};
pub use sweep::load_policy;
pub use views::{AccessFilter, Permitted, RequestPage};
pub use web::{LoginPreview, WebSession, csrf_matches};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use jit_common::log::Syslog;

use crate::clock::Clock;
use crate::config::Config;
use crate::error::{ApiError, CaError};
use crate::policy::Policy;
use crate::signer::Signer;
use crate::store::{Db, StoreOps};
use jit_api::auth;
use jit_api::wire::ErrorCode as C;

type ApiResult<T> = std::result::Result<T, ApiError>;

/// Serials reserved per block by the issuance fast path.
const SERIAL_BLOCK: u64 = 1024;
/// Nonces older than this many seconds can no longer pass the timestamp check.
const NONCE_KEEP_SECS: u64 = 2 * auth::MAX_SKEW_SECS + 60;
/// On PostgreSQL a stored nonce's `seen_at` is the claiming replica's clock and the sweep
/// leader's clock deletes it: stored nonces are kept this much longer, so replicas whose
/// clocks agree within it (NTP; docs/ha.md) still catch every replay.
const REPLICA_CLOCK_MARGIN_SECS: u64 = 600;

/// The certificate authority.
#[derive(Debug)]
pub struct Ca {
    config: Config,
    policy: RwLock<Arc<Policy>>,
    signer: Signer,
    /// The database and how operations run on it (see `backend`).
    backend: backend::Backend,
    clock: Arc<dyn Clock>,
    syslog: Mutex<Syslog>,
    published: RwLock<Arc<Published>>,
    /// Set after a revocation, extension, expiry, approval, operator or peer change: the
    /// grant index is rebuilt from storage at the next host read or sweep (an auto-approved
    /// issuance updates it in place, see `Ca::after_issuance`).
    grants_dirty: AtomicBool,
    /// Host documents, cached by grant set (bounded by count and bytes, see `host_docs`).
    host_cache: Mutex<host_docs::HostCache>,
    /// The active grants without their documents: bounds every host's document (budget)
    /// and names each host's grants (see `grant_index`).
    index: Mutex<grant_index::GrantIndex>,
    /// Held while the grant index is rebuilt (`Ca::refresh_grants`): one rebuild at a time.
    refreshing: Mutex<()>,
    stats: Stats,
    /// Serials reserved for the issuance fast path: next, end (exclusive).
    serials: Mutex<(u64, u64)>,
    /// Operator changes picked up and the latest audit checkpoint (see `external`).
    external: external::Watch,
    /// This CA's identity in signed calls (scheme v2): see [`auth::audience_of`].
    audience: String,
    /// Which refusals are recorded in full, which only counted (see `refusals`).
    refusals: Mutex<refusals::Limiter>,
    /// Users whose legacy (v1) call was last audited, and when.
    legacy_audited: Mutex<HashMap<String, u64>>,
    /// The alert detectors (see `alerting`).
    alerts: Mutex<alerting::Alerts>,
    /// Notification delivery: sinks, counters, wake-ups (`notify::worker`).
    notify: crate::notify::worker::Hub,
    /// The audit chain as verified so far (the audit page, `audit_view`).
    audit_chain: Mutex<audit_view::ChainCache>,
}

/// Counters for `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Certificates issued (including extensions).
    pub issuances: AtomicU64,
    /// Failed authentications.
    pub auth_failures: AtomicU64,
    /// Revocations.
    pub revocations: AtomicU64,
    /// Refusals counted in a summary record instead of one record each.
    pub refusals_summarised: AtomicU64,
    /// Signed calls accepted with the legacy scheme v1 (no audience).
    pub legacy_signatures: AtomicU64,
    /// Transactions run by `Ca::transact` (the rare write paths; not the group commit's
    /// batches, see `Ca::commit_counts`).
    pub transactions: AtomicU64,
    /// Alerts raised by this process, by kind (the order of `notify::alerts::KINDS`).
    pub alerts: [AtomicU64; crate::notify::alerts::KINDS.len()],
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn read<T>(m: &RwLock<Arc<T>>) -> Arc<T> {
    m.read()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .clone()
}

fn write<T>(m: &RwLock<Arc<T>>, v: T) {
    *m.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Arc::new(v);
}

/// The service boundary: an internal fault is logged here (under a reference).
impl From<lifecycle::Refusal> for ApiError {
    fn from(r: lifecycle::Refusal) -> Self {
        match r {
            lifecycle::Refusal::Client(e) => e,
            lifecycle::Refusal::Internal(detail) => ApiError::internal(detail),
        }
    }
}

fn refuse(code: C, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

/// Checks one line of text shown to approvers (reasons): length, no control characters,
/// no invisible or bidi format characters (`jit_common::text::check_line`).
fn check_text(what: &str, s: &str) -> ApiResult<()> {
    jit_common::text::check_line(what, s, jit_common::grant::MAX_REASON_LEN)
        .map_err(|e| refuse(C::InvalidInput, e))
}

impl Ca {
    /// Builds the CA from loaded parts and publishes the host documents.
    pub fn new(
        config: Config,
        policy: Policy,
        signer: Signer,
        db: Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let now = clock.now();
        let ca = Self::unpublished(config, policy, signer, db, clock)?;
        ca.republish(now, false)?;
        ca.refresh_grants(now)?;
        Ok(ca)
    }

    /// The CA from loaded parts, nothing published yet.
    fn unpublished(
        config: Config,
        policy: Policy,
        signer: Signer,
        db: Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let now = clock.now();
        let backend = backend::Backend::start(db, now.saturating_sub(NONCE_KEEP_SECS))?;
        let audience = signer
            .ca_public_keys()
            .first()
            .map(auth::audience_of)
            .ok_or(CaError::NoUserCaKey)?;
        let alerts = Mutex::new(alerting::Alerts::new(config.alerts));
        let notify =
            crate::notify::worker::Hub::new(config.notify.clone(), config.notify_max_age_secs);
        let ca = Self {
            config,
            policy: RwLock::new(Arc::new(policy)),
            signer,
            backend,
            clock,
            syslog: Mutex::new(Syslog::new("jit-ca")),
            published: RwLock::new(Arc::new(Published::empty())),
            grants_dirty: AtomicBool::new(false),
            host_cache: Mutex::new(host_docs::HostCache::default()),
            index: Mutex::new(grant_index::GrantIndex::default()),
            refreshing: Mutex::new(()),
            stats: Stats::default(),
            serials: Mutex::new((0, 0)),
            external: external::Watch::default(),
            audience,
            refusals: Mutex::new(refusals::Limiter::default()),
            legacy_audited: Mutex::new(HashMap::new()),
            alerts,
            notify,
            audit_chain: Mutex::new(audit_view::ChainCache::default()),
        };
        Ok(ca)
    }

    /// The CA for an operator command that only revokes (`jit-ca user remove`,
    /// `revoke-grant`): like [`Ca::new`] but without the grant snapshot behind the host
    /// documents, which those commands never serve. Building that snapshot parses every
    /// active grant's hosts, so a damaged `certs.grant_hosts` (which stops `serve`, fail
    /// closed) must not also stop the commands that revoke it.
    pub fn for_revocation(
        config: Config,
        policy: Policy,
        signer: Signer,
        db: Db,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let now = clock.now();
        let ca = Self::unpublished(config, policy, signer, db, clock)?;
        ca.republish(now, false)?;
        Ok(ca)
    }

    /// Loads config, policy, keys and database from a data directory.
    pub fn open(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Self, CaError> {
        let mut config = Config::load(dir)?;
        config.load_notify_files()?;
        let policy = load_policy(&config)?;
        let signer = Signer::load(&config.user_ca_keys, &config.grant_keys)?;
        let db = Db::open_as(&config, "serve")?;
        Self::new(config, policy, signer, db, clock)
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The current policy.
    pub fn policy(&self) -> Arc<Policy> {
        read(&self.policy)
    }

    /// The signer (public keys).
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Now, from the CA's clock (an entry point's one read).
    pub fn now(&self) -> u64 {
        self.clock.now()
    }

    /// Counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// This CA's audience: the SHA-256 fingerprint of its first user-CA key, which signed
    /// calls (scheme v2) must name.
    pub fn audience(&self) -> &str {
        &self.audience
    }

    /// The host documents.
    pub fn published(&self) -> Arc<Published> {
        read(&self.published)
    }

    // ---- running storage operations ----

    /// The one transaction helper of the rare write paths (approvals, decisions,
    /// revocations, the sweeper, publication, operator commands). SQLite: takes the
    /// writer's connection, opens an IMMEDIATE transaction, writes the accepted nonces into
    /// it, runs `f`, and commits; the nonces count as written only once the commit
    /// succeeded. When `f` fails nothing is committed and the nonces stay pending.
    /// PostgreSQL: `PgStore::transact` (the audit lock first).
    fn transact<R, E>(&self, f: impl FnOnce(&dyn StoreOps) -> Result<R, E>) -> Result<R, E>
    where
        E: From<CaError>,
    {
        self.stats.transactions.fetch_add(1, Ordering::Relaxed);
        self.backend.transact(f)
    }

    /// Runs a change through the group commit (see `commit`): durable when this returns.
    fn write<R, F>(&self, job: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn StoreOps) -> ApiResult<R> + Send + 'static,
    {
        self.backend.write(job)
    }

    /// Runs a read on a read connection.
    fn read_db<R, E>(&self, f: impl FnOnce(&dyn StoreOps) -> Result<R, E>) -> Result<R, E>
    where
        E: From<CaError>,
    {
        self.backend.read(f)
    }

    /// A read on the audit page's own connections (never one signed calls need).
    fn read_audit<R, E>(&self, f: impl FnOnce(&dyn StoreOps) -> Result<R, E>) -> Result<R, E>
    where
        E: From<CaError>,
    {
        self.backend.read_audit(f)
    }

    /// Runs `f` while every general read connection is held: for tests of what must not
    /// wait on them (the audit page).
    #[doc(hidden)]
    pub fn hold_read_connections_for_test<R>(&self, f: impl FnOnce() -> R) -> R {
        self.backend.hold_read_connections(f)
    }

    /// Writes accepted nonces that no write has carried yet (the server calls this every
    /// second; a no-op when there are none).
    pub fn flush_nonces(&self) -> Result<(), CaError> {
        if self.backend.nonces_pending() {
            self.write(|_| Ok(()))
                .map_err(|source| CaError::NotWritten {
                    what: "nonces",
                    source,
                })?;
        }
        Ok(())
    }

    /// Nonces remembered for the replay window, for the metrics.
    pub fn nonces_remembered(&self) -> usize {
        self.backend.nonces_remembered()
    }

    /// (group-commit batches, changes committed in them), for the metrics.
    pub fn commit_counts(&self) -> (u64, u64) {
        self.backend.commit_counts()
    }

    /// Which database this CA runs on: "sqlite" or "postgresql".
    pub fn backend_kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// The PostgreSQL store, when this CA runs on one (replica jobs, health).
    pub fn postgres(&self) -> Option<&crate::store::postgres::PgStore> {
        self.backend.postgres()
    }
}

/// A new request id: `r-`, the Unix time `now` in seconds (8 hex digits) and 48 random
/// bits. The time prefix makes new ids sort last, so inserting one touches the right edge
/// of every index keyed by request id instead of a random page of each (which was most of
/// the pages each commit wrote); the random part keeps ids unguessable and unique (two ids
/// in one second collide with probability 2^-48, and a collision is refused by the primary
/// key).
pub fn new_id(now: u64) -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 6];
    rand_core::OsRng.fill_bytes(&mut b);
    format!("r-{:08x}{}", now & 0xffff_ffff, hex::encode(b))
}

#[cfg(test)]
mod tests {
    /// No import cycle between `publish` and `external` (issue 12): both use the leaf
    /// modules `doc` and `store::operator`, and publish never names external.
    #[test]
    fn publish_and_external_do_not_import_each_other() {
        let publish = include_str!("publish.rs");
        let external = include_str!("external.rs");
        let doc = include_str!("doc.rs");
        assert!(!publish.contains("external"), "publish names external");
        assert!(
            !external.contains("publish::"),
            "external imports from publish"
        );
        assert!(
            !doc.contains("use super::") && !doc.contains("crate::"),
            "doc is a leaf"
        );
        let operator = include_str!("../store/operator.rs");
        assert!(
            !operator.contains("use crate::service"),
            "store::operator is below the service"
        );
    }

    use super::*;

    #[test]
    fn new_id_carries_the_time_it_is_given() {
        let a = new_id(0x6543_2100);
        assert!(a.starts_with("r-65432100"), "{a}");
        assert_eq!(a.len(), 2 + 8 + 12);
        assert_ne!(a, new_id(0x6543_2100), "the random part differs");
        assert!(new_id(0x1_0000_0001).starts_with("r-00000001"));
    }
}

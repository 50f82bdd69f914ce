//! The CA's decisions and their records: authentication of API calls, requests, approvals,
//! issuance, revocation, extension, expiry, and what hosts fetch.
//!
//! Everything here is synchronous and blocking (SQLite, signing); the HTTP layer
//! ([`crate::api`]) calls it from `spawn_blocking`. Each operation is one database
//! transaction that also appends its audit record, so an event is recorded exactly when it
//! takes effect; the syslog copy is sent after commit.

mod commit;
mod external;

pub use external::{GrantRevocation, OperatorRevocations, UserRemoval};
mod host_docs;
mod refusals;

pub use host_docs::{CacheStats, HostDoc, MAX_HOST_DOCUMENT};

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use serde_json::json;
use sha2::{Digest, Sha256};
use ssh_key::{HashAlg, PublicKey};

use jit_common::log::{Severity, Syslog};
use jit_common::{Approval, Grant, KeyRing, RevocationList, SignedGrant, UnverifiedRevocationList};

use crate::audit::{Record, event};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::{ApiError, CaError};
use crate::policy::{Asked, Policy, Role};
use crate::signer::{CertSpec, Signer};
use crate::store::{self, CertRow, KeyPurpose, RequestRow, Store};
use jit_api::auth;
use jit_api::wire::{
    ApprovalView, CreateRequest, ErrorCode as C, IssuedView, KeysView, RequestList, RequestState,
    RequestView, WhoamiView,
};

type ApiResult<T> = std::result::Result<T, ApiError>;

/// Longest public key line accepted in a request.
const MAX_PUBLIC_KEY_LEN: usize = 8 * 1024;
/// Revoked certificates stay listed this long after their window ended.
const REVOCATION_TAIL_SECS: u64 = 24 * 3600;
/// Most requests returned by a list call.
const LIST_LIMIT: u32 = 500;

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// User name.
    pub user: String,
    /// Groups.
    pub groups: Vec<String>,
    /// The key that signed the call.
    pub key: CallerKey,
}

/// What signed a call: which registered key, and whether it is an approval key or a touched
/// FIDO key (a role's `approval_key` may require either).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallerKey {
    /// SHA-256 fingerprint.
    pub fingerprint: String,
    /// Registered as an approval key (may approve, deny, list, read; never request).
    pub approval: bool,
    /// A FIDO key (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`).
    pub sk: bool,
    /// The FIDO signature asserts user presence (the key was touched).
    pub touched: bool,
}

impl CallerKey {
    /// The `store::KEY_*` bits recorded with an approval.
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        if self.approval {
            f |= store::KEY_APPROVAL;
        }
        if self.sk {
            f |= store::KEY_SK;
        }
        if self.touched {
            f |= store::KEY_TOUCHED;
        }
        f
    }

    /// From recorded `store::KEY_*` bits.
    pub fn from_flags(flags: u32) -> Self {
        Self {
            fingerprint: String::new(),
            approval: flags & store::KEY_APPROVAL != 0,
            sk: flags & store::KEY_SK != 0,
            touched: flags & store::KEY_TOUCHED != 0,
        }
    }
}

/// Whether an SSH signature made by a FIDO key asserts user presence: its data ends with
/// flags (1 byte, bit 0 = user present) and a counter (4 bytes).
fn sk_touched(sig: &ssh_key::SshSig) -> bool {
    let data = sig.signature().as_bytes();
    data.len() > 5 && data[data.len() - 5] & 0x01 != 0
}

/// Checks one line of text shown to approvers (reasons): length, no control characters,
/// no invisible or bidi format characters (`jit_common::text::check_line`).
fn check_text(what: &str, s: &str) -> ApiResult<()> {
    jit_common::text::check_line(what, s, jit_common::grant::MAX_REASON_LEN)
        .map_err(|e| refuse(C::InvalidInput, e))
}

/// The signing headers of a request, as received.
#[derive(Debug, Clone, Default)]
pub struct AuthHeaders {
    pub key: Option<String>,
    pub timestamp: Option<String>,
    pub nonce: Option<String>,
    pub signature: Option<String>,
    /// `X-Jit-Audience` (scheme v2); absent for the legacy scheme v1.
    pub audience: Option<String>,
    /// The peer's address, when the transport knows it (for aggregating refusals).
    pub source: Option<std::net::IpAddr>,
}

/// A cached document with its ETag.
#[derive(Debug, Clone)]
pub struct Doc {
    /// Body bytes.
    pub body: axum::body::Bytes,
    /// Strong ETag, quoted.
    pub etag: String,
}

impl Doc {
    fn new(body: Vec<u8>) -> Self {
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&body))[..32]);
        Self {
            body: body.into(),
            etag,
        }
    }
}

/// What hosts fetch, rebuilt on change and served from memory.
#[derive(Debug, Clone)]
pub struct Published {
    /// `GET /v1/keys` JSON.
    pub keys: Doc,
    /// `GET /v1/ca.pub` text.
    pub ca_pub: Doc,
    /// `GET /v1/krl` binary.
    pub krl: Doc,
    /// `GET /v1/revocations` signed document.
    pub revocations: Doc,
    /// Sequence of the revocation list.
    pub revocation_sequence: u64,
    /// When the revocation list was signed.
    pub revocation_issued_at: u64,
}

#[derive(Debug, Clone)]
struct ActiveGrant {
    id: String,
    hosts: Vec<String>,
    doc: String,
    not_after: u64,
}

#[derive(Debug, Default)]
struct GrantSnapshot {
    generation: u64,
    grants: Vec<ActiveGrant>,
}

/// The certificate authority.
#[derive(Debug)]
pub struct Ca {
    config: Config,
    policy: RwLock<Arc<Policy>>,
    signer: Signer,
    store: Arc<Mutex<Store>>,
    clock: Arc<dyn Clock>,
    syslog: Mutex<Syslog>,
    published: RwLock<Arc<Published>>,
    grants: RwLock<Arc<GrantSnapshot>>,
    /// Set after every issuance, extension, revocation or expiry; the grant snapshot is
    /// rebuilt from SQLite at the next host read instead of after every certificate (which
    /// made issuance quadratic in the number of active grants).
    grants_dirty: AtomicBool,
    /// Host documents, cached by grant set (bounded by count and bytes, see `host_docs`).
    host_cache: Mutex<host_docs::HostCache>,
    /// Encoded sizes of active grants by host selectors: bounds every host's document.
    budget: Mutex<host_docs::Budget>,
    stats: Stats,
    /// Group commit of the hot write paths (see `commit`).
    writer: commit::Writer,
    /// Nonces of signed calls within the replay window.
    nonces: Arc<commit::Nonces>,
    /// Read connections.
    readers: commit::Readers,
    /// Copies the WAL into the database file in the background (file databases).
    _checkpointer: Option<commit::Checkpointer>,
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
}

/// Serials reserved per block by the issuance fast path.
const SERIAL_BLOCK: u64 = 1024;
/// Read connections to the database.
const READERS: usize = 4;
/// Nonces older than this many seconds can no longer pass the timestamp check.
const NONCE_KEEP_SECS: u64 = 2 * auth::MAX_SKEW_SECS + 60;

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

fn refuse(code: C, msg: impl Into<String>) -> ApiError {
    ApiError::new(code, msg)
}

impl Ca {
    /// Builds the CA from loaded parts and publishes the host documents.
    pub fn new(
        config: Config,
        policy: Policy,
        signer: Signer,
        store: Store,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, CaError> {
        let nonces = Arc::new(commit::Nonces::load(
            store.conn(),
            clock.now().saturating_sub(NONCE_KEEP_SECS),
        )?);
        let readers = commit::Readers::open(store.path(), READERS)?;
        let checkpointer = match store.path() {
            Some(p) => {
                let c = commit::Checkpointer::start(p)?;
                store.disable_auto_checkpoint()?;
                Some(c)
            }
            None => None,
        };
        let store = Arc::new(Mutex::new(store));
        let writer = commit::Writer::start(store.clone(), nonces.clone())?;
        let audience = signer
            .ca_public_keys()
            .first()
            .map(auth::audience_of)
            .ok_or_else(|| CaError::Other("no user-CA key loaded".into()))?;
        let ca = Self {
            config,
            policy: RwLock::new(Arc::new(policy)),
            signer,
            store,
            clock,
            syslog: Mutex::new(Syslog::new("jit-ca")),
            published: RwLock::new(Arc::new(Published {
                keys: Doc::new(Vec::new()),
                ca_pub: Doc::new(Vec::new()),
                krl: Doc::new(Vec::new()),
                revocations: Doc::new(Vec::new()),
                revocation_sequence: 0,
                revocation_issued_at: 0,
            })),
            grants: RwLock::new(Arc::new(GrantSnapshot::default())),
            grants_dirty: AtomicBool::new(false),
            host_cache: Mutex::new(host_docs::HostCache::default()),
            budget: Mutex::new(host_docs::Budget::default()),
            stats: Stats::default(),
            writer,
            nonces,
            readers,
            _checkpointer: checkpointer,
            serials: Mutex::new((0, 0)),
            external: external::Watch::default(),
            audience,
            refusals: Mutex::new(refusals::Limiter::default()),
            legacy_audited: Mutex::new(HashMap::new()),
        };
        ca.republish(false)?;
        ca.refresh_grants()?;
        Ok(ca)
    }

    /// Loads config, policy, keys and database from a data directory.
    pub fn open(dir: &std::path::Path, clock: Arc<dyn Clock>) -> Result<Self, CaError> {
        let config = Config::load(dir)?;
        let policy = load_policy(&config)?;
        let signer = Signer::load(&config.user_ca_keys, &config.grant_keys)?;
        let store = Store::open(&config.db_path())?;
        Self::new(config, policy, signer, store, clock)
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

    /// Now, from the CA's clock.
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

    // ---- audit ----

    fn log(&self, records: &[Record]) {
        let mut s = lock(&self.syslog);
        for r in records {
            let refused = r.event == event::AUTH_FAILURE
                || r.event == event::REJECTED
                || r.event == event::REFUSALS_SUMMARISED
                || r.event == event::LEGACY_SIGNATURE
                || r.event.ends_with("_refused");
            let severity = if refused {
                Severity::Warning
            } else {
                Severity::Notice
            };
            s.log(
                severity,
                &format!(
                    "audit seq={} event={} actor={} hash={} details={}",
                    r.seq, r.event, r.actor, r.hash, r.details
                ),
            );
        }
    }

    /// Appends one audit record in its own transaction (for events with no other change).
    pub fn audit(
        &self,
        actor: &str,
        ev: &str,
        details: serde_json::Value,
    ) -> Result<Record, CaError> {
        let now = self.now();
        let (actor, ev) = (actor.to_string(), ev.to_string());
        let rec = self
            .write(move |c| Ok(store::append_audit(c, now, &actor, &ev, &details)?))
            .map_err(|e| CaError::Other(format!("audit record not written: {}", e.message)))?;
        self.log(std::slice::from_ref(&rec));
        Ok(rec)
    }

    /// Records a refused call (event `ev`, the error's code and message added to `what`) and
    /// returns the error the client sees. The HTTP layer calls it once for every 4xx answer.
    /// Same as [`Ca::record_refusal_from`] with no known source address.
    pub fn record_refusal(
        &self,
        actor: &str,
        ev: &str,
        what: serde_json::Value,
        e: ApiError,
    ) -> ApiError {
        self.record_refusal_from(None, actor, ev, what, e)
    }

    /// Records a refused call from `source`. What a record holds is bounded (strings and
    /// lists truncated, see `refusals::bound`), and refusals are rate-limited per source
    /// address: the first few of a window are recorded in full, the rest are counted and
    /// recorded as one `refusals_summarised` record per source and event when the window
    /// ends (the metrics count every one), so a flood of bad calls cannot flood the trail.
    pub fn record_refusal_from(
        &self,
        source: Option<std::net::IpAddr>,
        actor: &str,
        ev: &str,
        what: serde_json::Value,
        e: ApiError,
    ) -> ApiError {
        let now = self.now();
        let (admit, due) = lock(&self.refusals).admit(now, source, actor, ev);
        if let Err(err) = self.write_summaries(due) {
            return ApiError::internal(err);
        }
        if !admit {
            self.stats
                .refusals_summarised
                .fetch_add(1, Ordering::Relaxed);
            return e;
        }
        let mut details = refusals::bound(what);
        if let Some(obj) = details.as_object_mut() {
            obj.insert("code".into(), json!(e.code.as_str()));
            obj.insert(
                "message".into(),
                json!(refusals::truncate(&e.message, refusals::MAX_TEXT)),
            );
            if let Some(src) = source {
                obj.insert("source".into(), json!(src.to_string()));
            }
        }
        let actor = refusals::truncate(actor, refusals::MAX_TEXT);
        if let Err(err) = self.audit(&actor, ev, details) {
            return ApiError::internal(err);
        }
        e
    }

    /// Writes the summary records of refusal windows that have ended (the server calls it
    /// every second; a no-op when none has).
    pub fn flush_refusals(&self) -> Result<(), CaError> {
        let due = lock(&self.refusals).due(self.now());
        self.write_summaries(due)
    }

    fn write_summaries(&self, due: Vec<refusals::Summary>) -> Result<(), CaError> {
        for s in due {
            self.audit("system", event::REFUSALS_SUMMARISED, s.details())?;
        }
        Ok(())
    }

    /// Runs a change through the group commit (see `commit`): durable when this returns.
    fn write<R, F>(&self, job: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> ApiResult<R> + Send + 'static,
    {
        self.writer.write(job)
    }

    /// Runs a read on a read connection.
    fn read_db<R>(&self, f: impl FnOnce(&rusqlite::Connection) -> R) -> R {
        self.readers.with(&self.store, f)
    }

    /// Writes accepted nonces that no write has carried yet (the server calls this every
    /// second; a no-op when there are none).
    pub fn flush_nonces(&self) -> Result<(), CaError> {
        if self.nonces.has_pending() {
            self.write(|_| Ok(()))
                .map_err(|e| CaError::Other(format!("nonces not written: {}", e.message)))?;
        }
        Ok(())
    }

    /// Nonces remembered for the replay window, for the metrics.
    pub fn nonces_remembered(&self) -> usize {
        self.nonces.len()
    }

    /// (group-commit batches, changes committed in them), for the metrics.
    pub fn commit_counts(&self) -> (u64, u64) {
        self.writer.counts()
    }

    // ---- authentication ----

    /// Checks a signed API call; returns the caller. Every failure is audited.
    pub fn authenticate(
        &self,
        method: &str,
        path_and_query: &str,
        h: &AuthHeaders,
        body: &[u8],
    ) -> ApiResult<Caller> {
        match self.authenticate_inner(method, path_and_query, h, body) {
            Ok(c) => Ok(c),
            // A server-side failure (database busy) is not the caller's fault: no audit row.
            Err((_, e)) if e.status >= 500 => Err(e),
            Err((actor, e)) => {
                self.stats.auth_failures.fetch_add(1, Ordering::Relaxed);
                let details = json!({
                    "method": method,
                    "path": path_and_query,
                });
                Err(self.record_refusal_from(h.source, &actor, event::AUTH_FAILURE, details, e))
            }
        }
    }

    fn authenticate_inner(
        &self,
        method: &str,
        path_and_query: &str,
        h: &AuthHeaders,
        body: &[u8],
    ) -> std::result::Result<Caller, (String, ApiError)> {
        let anon = || "unknown".to_string();
        let (Some(key), Some(ts), Some(nonce), Some(sig)) =
            (&h.key, &h.timestamp, &h.nonce, &h.signature)
        else {
            return Err((
                anon(),
                refuse(
                    C::Unauthenticated,
                    format!(
                        "this call must be signed: send the {}, {}, {} and {} headers (the jit client does this)",
                        auth::HDR_KEY,
                        auth::HDR_TIMESTAMP,
                        auth::HDR_NONCE,
                        auth::HDR_SIGNATURE
                    ),
                ),
            ));
        };
        let Ok(public) = PublicKey::from_openssh(key.trim()) else {
            return Err((
                anon(),
                refuse(C::UnknownKey, "the key header is not an OpenSSH public key"),
            ));
        };
        let fp = public.fingerprint(HashAlg::Sha256).to_string();
        let key_line =
            auth::key_header(&public).map_err(|e| (fp.clone(), ApiError::internal(e)))?;
        let found = self
            .read_db(|c| store::user_by_key(c, &key_line))
            .map_err(|e| (fp.clone(), ApiError::from(e)))?;
        let Some((user, groups, purpose)) = found else {
            return Err((
                fp.clone(),
                refuse(
                    C::UnknownKey,
                    format!(
                        "key {fp} is not registered; ask an operator to run `jit-ca user add NAME --key FILE`"
                    ),
                ),
            ));
        };
        let actor = format!("{user} ({fp})");
        let now = self.now();
        let ts: u64 = ts.trim().parse().map_err(|_| {
            (
                actor.clone(),
                refuse(
                    C::StaleTimestamp,
                    "the timestamp header is not a number of Unix seconds",
                ),
            )
        })?;
        if ts.abs_diff(now) > auth::MAX_SKEW_SECS {
            return Err((
                actor,
                refuse(
                    C::StaleTimestamp,
                    format!(
                        "request time {ts} is more than {}s from the server's {now}; check your clock (NTP)",
                        auth::MAX_SKEW_SECS
                    ),
                ),
            ));
        }
        if nonce.len() != auth::NONCE_HEX_LEN
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err((
                actor,
                refuse(
                    C::BadSignature,
                    format!(
                        "the nonce must be {} lowercase hex characters",
                        auth::NONCE_HEX_LEN
                    ),
                ),
            ));
        }
        let Some(sig) = auth::decode_signature(sig) else {
            return Err((
                actor,
                refuse(
                    C::BadSignature,
                    "the signature header is not a base64 SSH signature",
                ),
            ));
        };
        let msg = match &h.audience {
            Some(aud) => {
                if aud.len() > auth::MAX_AUDIENCE_LEN {
                    return Err((
                        actor,
                        refuse(C::WrongAudience, "the audience header is too long"),
                    ));
                }
                auth::message(aud, method, path_and_query, body, ts, nonce)
            }
            None if self.config.accept_v1_signatures => {
                auth::message_v1(method, path_and_query, body, ts, nonce)
            }
            None => {
                return Err((
                    actor,
                    refuse(
                        C::LegacySignature,
                        format!(
                            "this call is signed with the legacy scheme v1, which does not name the CA it is for; \
                             upgrade jit (it signs for audience {}), or an operator may set \
                             accept_v1_signatures = true in config.toml during a transition",
                            self.audience
                        ),
                    ),
                ));
            }
        };
        if !auth::verify(&public, &msg, &sig) {
            return Err((
                actor,
                refuse(
                    C::BadSignature,
                    "the signature does not match this request (method, path, body, timestamp and nonce are signed)",
                ),
            ));
        }
        match &h.audience {
            Some(aud) if *aud != self.audience => {
                return Err((
                    actor,
                    refuse(
                        C::WrongAudience,
                        format!(
                            "this call was signed for the CA {}, but this CA is {}: a call made for another CA \
                             (for example staging) is not accepted here; point jit at the right server, or fix \
                             ca_fingerprint in the jit config",
                            jit_common::log::sanitize(aud, auth::MAX_AUDIENCE_LEN),
                            self.audience
                        ),
                    ),
                ));
            }
            Some(_) => {}
            None => self.note_legacy(&user, &fp, now),
        }
        let fresh = self.nonces.use_nonce(nonce, now);
        if !fresh {
            return Err((
                actor,
                refuse(
                    C::ReplayedNonce,
                    "this nonce was already used: a replayed request",
                ),
            ));
        }
        let sk = matches!(
            public.algorithm(),
            ssh_key::Algorithm::SkEd25519 | ssh_key::Algorithm::SkEcdsaSha2NistP256
        );
        let touched = sk && sk_touched(&sig);
        Ok(Caller {
            user,
            groups,
            key: CallerKey {
                fingerprint: fp,
                approval: purpose == KeyPurpose::Approval,
                sk,
                touched,
            },
        })
    }

    /// Counts an accepted legacy (v1) call; audits it once per user and hour.
    fn note_legacy(&self, user: &str, fp: &str, now: u64) {
        self.stats.legacy_signatures.fetch_add(1, Ordering::Relaxed);
        let due = {
            let mut seen = lock(&self.legacy_audited);
            if seen.len() > 10_000 {
                seen.retain(|_, t| now.saturating_sub(*t) < 3600);
            }
            match seen.get(user) {
                Some(t) if now.saturating_sub(*t) < 3600 => false,
                _ => {
                    seen.insert(user.to_string(), now);
                    true
                }
            }
        };
        if due {
            let details = json!({"key": fp, "note": "accepted a legacy v1 signature (accept_v1_signatures = true); recorded once per user and hour"});
            if let Err(e) = self.audit(user, event::LEGACY_SIGNATURE, details) {
                eprintln!("jit-ca: audit of a legacy signature failed: {e}");
            }
        }
    }

    // ---- requests ----

    /// `GET /v1/whoami`.
    pub fn whoami(&self, caller: &Caller) -> WhoamiView {
        WhoamiView {
            user: caller.user.clone(),
            groups: caller.groups.clone(),
            approval_key: caller.key.approval,
        }
    }

    fn role_of(&self, name: &str) -> Option<Role> {
        self.policy().role(name).cloned()
    }

    /// Refuses a call signed with an approval key where only a login key may act.
    fn refuse_approval_key(caller: &Caller, what: &str) -> ApiResult<()> {
        if caller.key.approval {
            return Err(refuse(
                C::ApprovalKeyNotForRequests,
                format!(
                    "key {} is registered as an approval key, which may approve but not {what}; \
                     use your login key (jit --identity KEYFILE)",
                    caller.key.fingerprint
                ),
            ));
        }
        Ok(())
    }

    /// `POST /v1/requests`.
    pub fn create_request(&self, caller: &Caller, req: &CreateRequest) -> ApiResult<RequestView> {
        Self::refuse_approval_key(caller, "request access")?;
        let (role, hosts, reason, public_key) = self.check_request(caller, req)?;
        let now = self.now();
        let id = new_id();
        let principals = role.principals_for(&caller.user);
        let row = RequestRow {
            id: id.clone(),
            user: caller.user.clone(),
            role: role.name.clone(),
            reason,
            duration_secs: req.duration_secs,
            hosts,
            principals,
            sudo: role.sudo,
            public_key,
            created_at: now,
            pending_expires_at: now + self.config.pending_expiry_secs,
            approvals_required: role.approvals,
            state: RequestState::Pending,
            denied_by: None,
            denial_reason: None,
            approved_at: None,
            revoked_at: None,
            revoked_by: None,
            approval_basis: None,
            approved_until: None,
        };
        let auto = role.auto_approval(&caller.user, &caller.groups, req.duration_secs);
        let request_details = json!({"request_id": id, "role": row.role, "duration_secs": row.duration_secs,
                "hosts": row.hosts, "principals": row.principals, "reason": row.reason,
                "key": fingerprint_of(&row.public_key)});
        let requester = caller.user.clone();
        let max_grants = self.config.max_active_grants_per_user;
        let Some(auto) = auto else {
            self.check_grant_fits(&row, &role, now)?;
            let (view, records) = self.write(move |c| {
                check_active_grants(c, &row.user, now, max_grants)?;
                store::insert_request(c, &row)?;
                let rec =
                    store::append_audit(c, now, &requester, event::REQUEST, &request_details)?;
                Ok((view(c, &row, now)?, vec![rec]))
            })?;
            self.log(&records);
            return Ok(view);
        };
        // Approved at once: sign here, in parallel with other callers, under a serial
        // reserved in advance; only the inserts go through the group commit.
        let serial = self.next_serial()?;
        let mut row = row;
        row.state = RequestState::Approved;
        row.approved_at = Some(now);
        row.approved_until = Some(now.saturating_add(row.duration_secs));
        row.approval_basis = Some(json!({"auto_rule": auto}).to_string());
        let approvers = vec![Approval {
            user: auto.clone(),
            at: now.into(),
        }];
        let (cert, mut issue_details) =
            self.sign_issue(&row, &role, serial, approvers, now, None)?;
        add_details(&mut issue_details, approval_details(&row));
        let issued = IssuedView {
            request_id: row.id.clone(),
            certificate: cert.certificate.clone(),
            serial,
            valid_after: cert.valid_after,
            valid_before: cert.valid_before,
            grant: cert.grant_doc.clone(),
        };
        let reserved = cert.grant_id.clone();
        let written = self.write(move |c| {
            check_active_grants(c, &row.user, now, max_grants)?;
            store::insert_request(c, &row)?;
            let mut records = Vec::with_capacity(3);
            records.push(store::append_audit(
                c,
                now,
                &requester,
                event::REQUEST,
                &request_details,
            )?);
            store::add_approval(c, &row.id, &auto, now, 0)?;
            records.push(store::append_audit(
                c,
                now,
                &auto,
                event::APPROVAL,
                &json!({"request_id": row.id, "automatic": true}),
            )?);
            store::insert_cert(c, &cert)?;
            records.push(store::append_audit(
                c,
                now,
                &row.user,
                event::ISSUANCE,
                &issue_details,
            )?);
            // Everything the view shows was just written: no need to read it back.
            let approvals = vec![ApprovalView {
                user: auto,
                at: now,
            }];
            Ok((view_of(&row, approvals, Some(&cert), now), records))
        });
        let (mut view, records) = written.inspect_err(|_| {
            // Not stored (e.g. too_many_active_grants): the grant must not keep counting.
            self.release_in_host_documents(reserved.as_deref());
        })?;
        self.stats.issuances.fetch_add(1, Ordering::Relaxed);
        self.log(&records);
        self.after_issuance();
        view.issued = Some(issued);
        Ok(view)
    }

    /// The next serial of the issuance fast path (reserving a block when needed).
    fn next_serial(&self) -> ApiResult<u64> {
        let mut s = lock(&self.serials);
        if s.0 < s.1 {
            let v = s.0;
            s.0 += 1;
            return Ok(v);
        }
        let first = self.write(|c| Ok(store::reserve_serial_block(c, SERIAL_BLOCK)?))?;
        *s = (first + 1, first + SERIAL_BLOCK);
        Ok(first)
    }

    fn check_request(
        &self,
        caller: &Caller,
        req: &CreateRequest,
    ) -> ApiResult<(Role, Vec<String>, String, String)> {
        let Some(role) = self.role_of(&req.role) else {
            return Err(refuse(
                C::UnknownRole,
                format!(
                    "there is no role {:?}; ask an operator which roles exist",
                    req.role
                ),
            ));
        };
        if !role.may_request(&caller.user, &caller.groups) {
            return Err(refuse(
                C::NotARequester,
                format!("you ({}) may not request role {:?}", caller.user, role.name),
            ));
        }
        if req.duration_secs == 0 {
            return Err(refuse(C::InvalidInput, "duration must be at least 1s"));
        }
        if req.duration_secs > role.max_duration_secs {
            return Err(refuse(
                C::DurationTooLong,
                format!(
                    "{} is longer than role {:?} allows ({}); ask for less",
                    jit_common::time::format_duration(req.duration_secs),
                    role.name,
                    jit_common::time::format_duration(role.max_duration_secs)
                ),
            ));
        }
        let reason = req.reason.trim().to_string();
        if role.require_reason && reason.is_empty() {
            return Err(refuse(
                C::ReasonRequired,
                format!("role {:?} requires a reason (--reason TEXT)", role.name),
            ));
        }
        check_text("reason", &reason)?;
        let hosts = if req.hosts.is_empty() {
            role.hosts.clone()
        } else {
            if req.hosts.len() > jit_common::grant::MAX_HOSTS {
                return Err(refuse(
                    C::InvalidInput,
                    format!("at most {} hosts", jit_common::grant::MAX_HOSTS),
                ));
            }
            for h in &req.hosts {
                if !role.covers_host(h) {
                    return Err(refuse(
                        C::HostNotInRole,
                        format!(
                            "host {h:?} is not within role {:?} (hosts {})",
                            role.name,
                            role.hosts.join(", ")
                        ),
                    ));
                }
            }
            req.hosts.clone()
        };
        if req.public_key.len() > MAX_PUBLIC_KEY_LEN {
            return Err(refuse(C::MalformedPublicKey, "the public key is too long"));
        }
        let key = PublicKey::from_openssh(req.public_key.trim()).map_err(|e| {
            refuse(
                C::MalformedPublicKey,
                format!("public_key is not an OpenSSH public key line ({e})"),
            )
        })?;
        let key_line = auth::key_header(&key).map_err(ApiError::internal)?;
        Ok((role, hosts, reason, key_line))
    }

    /// Issues a certificate (and grant) for an approved request inside `tx`; sets the
    /// request approved. `extend_to` keeps the approval time and sets a new end. `approvers`
    /// go into the grant; `extra` into the audit record.
    #[allow(clippy::too_many_arguments)]
    fn issue(
        &self,
        tx: &rusqlite::Connection,
        row: &mut RequestRow,
        role: &Role,
        now: u64,
        extend_to: Option<u64>,
        approvers: Vec<Approval>,
        extra: serde_json::Value,
    ) -> ApiResult<Record> {
        row.approved_at.get_or_insert(now);
        row.state = RequestState::Approved;
        let serial = store::reserve_serial(tx, &row.id, &row.user, now)?;
        let (cert, mut details) = self.sign_issue(row, role, serial, approvers, now, extend_to)?;
        add_details(&mut details, approval_details(row));
        add_details(&mut details, extra);
        store::complete_cert(tx, &cert)?;
        store::update_request(tx, row)?;
        self.stats.issuances.fetch_add(1, Ordering::Relaxed);
        let ev = if extend_to.is_some() {
            event::EXTENSION
        } else {
            event::ISSUANCE
        };
        Ok(store::append_audit(tx, now, &row.user, ev, &details)?)
    }

    /// Refuses unless a stored request still fits its role as it is now (the requester's
    /// current groups, hosts, principals, sudo, a window of `window_secs`).
    fn check_still_fits(
        tx: &rusqlite::Connection,
        row: &RequestRow,
        role: &Role,
        window_secs: u64,
    ) -> ApiResult<()> {
        let Some(groups) = store::user_groups(tx, &row.user)? else {
            return Err(refuse(
                C::InvalidState,
                format!("the requester {:?} is no longer registered", row.user),
            ));
        };
        role.still_fits(&Asked {
            user: &row.user,
            groups: &groups,
            hosts: &row.hosts,
            principals: &row.principals,
            sudo: row.sudo,
            window_secs,
        })
        .map_err(|why| {
            refuse(
                C::PolicyChanged,
                format!(
                    "policy changed, request again: request {} no longer fits role {:?} ({why}); \
                     the requester can ask anew with jit request {}",
                    row.id, role.name, role.name
                ),
            )
        })
    }

    /// Signs the certificate (and grant) of an approved request under `serial`: the CPU part
    /// of an issuance, with no database access. Returns the row to store and the audit
    /// details.
    fn sign_issue(
        &self,
        row: &RequestRow,
        role: &Role,
        serial: u64,
        approvers: Vec<Approval>,
        now: u64,
        extend_to: Option<u64>,
    ) -> ApiResult<(CertRow, serde_json::Value)> {
        let approved_at = row.approved_at.unwrap_or(now);
        let valid_before = extend_to.unwrap_or(approved_at + row.duration_secs);
        let valid_after = now.saturating_sub(self.config.backdate_secs);
        let key_id = format!("jit:{}:{}", row.id, row.user);
        let public_key = PublicKey::from_openssh(&row.public_key)
            .map_err(|e| ApiError::internal(format!("stored public key: {e}")))?;
        // Every certificate carries its scope (hosts, sudo or not) as a CA-signed grant:
        // hosts refuse a certificate without one (issue 11, item 1).
        let (grant_id, grant) =
            self.sign_grant(row, serial, approvers, (valid_after, valid_before), now)?;
        self.reserve_in_host_documents(row, &grant_id, grant.doc(), valid_before, now)?;
        let certificate = self
            .signer
            .certify(&CertSpec {
                public_key: &public_key,
                serial,
                key_id: key_id.clone(),
                principals: &row.principals,
                valid_after,
                valid_before,
                extensions: &role.extensions,
                critical_options: &role.critical_options,
                grant: Some(&grant),
            })
            .map_err(ApiError::internal)?;
        let details = json!({"request_id": row.id, "serial": serial, "key_id": key_id, "principals": row.principals,
                "valid_after": valid_after, "valid_before": valid_before, "grant_id": grant_id,
                "extensions": role.extensions, "critical_options": role.critical_options,
                "ca_key": jit_common::keys::fingerprint(self.signer.ca_key().public_key()),
                "key": fingerprint_of(&row.public_key)});
        let cert = CertRow {
            serial,
            request_id: row.id.clone(),
            user: row.user.clone(),
            grant_id: Some(grant_id),
            valid_after,
            valid_before,
            issued_at: now,
            certificate,
            grant_doc: Some(grant.into_doc()),
            grant_hosts: row.hosts.clone(),
            revoked: false,
        };
        Ok((cert, details))
    }

    /// Signs the grant of `row` for the window `(not_before, not_after)` and checks the
    /// signed bytes with the parser hosts use: a grant a host would refuse (too large, too
    /// many host selectors, a field `Grant::validate` rejects) is refused here with
    /// `grant_not_acceptable` instead of being issued. Returns the grant id and the grant.
    fn sign_grant(
        &self,
        row: &RequestRow,
        serial: u64,
        approvers: Vec<Approval>,
        (not_before, not_after): (u64, u64),
        now: u64,
    ) -> ApiResult<(String, SignedGrant)> {
        let grant_id = format!("{}.{serial}", row.id);
        let grant = Grant {
            version: jit_common::grant::VERSION,
            id: grant_id.clone(),
            user: row.user.clone(),
            role: row.role.clone(),
            hosts: row.hosts.clone(),
            sudo: row.sudo,
            not_before: not_before.into(),
            not_after: not_after.into(),
            issued_at: now.into(),
            request_id: row.id.clone(),
            reason: row.reason.clone(),
            approvers,
            cert_serial: Some(serial),
            key_id: String::new(),
        };
        let unacceptable = |e: &dyn std::fmt::Display| {
            refuse(
                C::GrantNotAcceptable,
                format!(
                    "hosts would refuse the grant of this request ({e}); ask for fewer hosts or \
                     a shorter reason"
                ),
            )
        };
        grant.validate().map_err(|e| unacceptable(&e))?;
        let grant = self.signer.sign_grant(grant).map_err(|e| match e {
            jit_common::Error::Signing { .. } => ApiError::internal(format!("grant signing: {e}")),
            e => unacceptable(&e),
        })?;
        Ok((grant_id, grant))
    }

    /// Checks, before a request is stored pending, that the grant it will get once approved
    /// can be issued: signed with as many approvals as the role asks, each by a longest
    /// possible name, under the largest serial.
    fn check_grant_fits(&self, row: &RequestRow, role: &Role, now: u64) -> ApiResult<()> {
        let approvers = (0..role.approvals.max(1))
            .map(|_| Approval {
                user: "a".repeat(32),
                at: row.pending_expires_at.into(),
            })
            .collect();
        let end = now.saturating_add(row.duration_secs).saturating_add(1);
        self.sign_grant(row, u64::MAX, approvers, (now, end), now)
            .map(|_| ())
    }

    /// Counts the grant in the documents of the hosts it reaches; refuses it with
    /// `host_grants_full` if one of them could grow past [`MAX_HOST_DOCUMENT`].
    fn reserve_in_host_documents(
        &self,
        row: &RequestRow,
        grant_id: &str,
        doc: &str,
        not_after: u64,
        now: u64,
    ) -> ApiResult<()> {
        lock(&self.budget)
            .reserve(
                grant_id,
                &row.hosts,
                host_docs::encoded_len(doc),
                not_after,
                now,
            )
            .map_err(|over| {
                refuse(
                    C::HostGrantsFull,
                    format!(
                        "the grants document of a host matching {} would reach {} bytes, over the \
                         limit of {MAX_HOST_DOCUMENT} bytes per host (hosts fetch it with jit-host \
                         sync); ask for fewer or narrower hosts, or revoke or let end some \
                         active grants for these hosts first",
                        row.hosts.join(","),
                        over.would_be
                    ),
                )
            })
    }

    /// Stops counting grants `ids` in the host-document budget (see [`host_docs::Budget::release`]).
    fn release_in_host_documents<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        lock(&self.budget).release(ids);
    }

    fn load(&self, tx: &rusqlite::Connection, id: &str) -> ApiResult<RequestRow> {
        store::get_request(tx, id)?.ok_or_else(|| refuse(C::NotFound, format!("no request {id:?}")))
    }

    /// `POST /v1/requests/{id}/approve`.
    pub fn approve(&self, caller: &Caller, id: &str) -> ApiResult<RequestView> {
        let now = self.now();
        let mut records = Vec::new();
        let result = (|| {
            let mut st = lock(&self.store);
            let tx = st.tx()?;
            let flushed = self.nonces.flush_into(&tx)?;
            let mut row = self.load(&tx, id)?;
            if row.state == RequestState::Pending && now >= row.pending_expires_at {
                return Err(refuse(
                    C::InvalidState,
                    format!("request {id} expired before it was approved; ask for a new one"),
                ));
            }
            if row.state != RequestState::Pending {
                return Err(refuse(
                    C::InvalidState,
                    format!("request {id} is {}, not pending", state_name(row.state)),
                ));
            }
            if row.user == caller.user {
                return Err(refuse(
                    C::SelfApproval,
                    "you cannot approve your own request; ask another approver",
                ));
            }
            let Some(role) = self.role_of(&row.role) else {
                return Err(refuse(
                    C::InvalidState,
                    format!("role {:?} is no longer in the policy", row.role),
                ));
            };
            if !role.may_approve(&caller.user, &caller.groups) {
                return Err(refuse(
                    C::NotAnApprover,
                    format!("you ({}) may not approve role {:?}", caller.user, role.name),
                ));
            }
            role.approval_key
                .check(caller.key.approval, caller.key.sk, caller.key.touched)
                .map_err(|why| {
                    refuse(
                        C::ApprovalKeyRequired,
                        format!(
                            "role {:?} has approval_key = \"{}\" and key {} does not qualify: {why}",
                            role.name,
                            role.approval_key.as_str(),
                            caller.key.fingerprint
                        ),
                    )
                })?;
            Self::check_still_fits(&tx, &row, &role, row.duration_secs)?;
            if !store::add_approval(&tx, id, &caller.user, now, caller.key.flags())? {
                return Err(refuse(
                    C::AlreadyApproved,
                    format!("you already approved request {id}; another approver is needed"),
                ));
            }
            records.push(store::append_audit(
                &tx,
                now,
                &caller.user,
                event::APPROVAL,
                &json!({"request_id": id, "key": caller.key.fingerprint,
                        "approval_key": caller.key.approval, "sk": caller.key.sk,
                        "touched": caller.key.touched}),
            )?);
            // Only approvals by users who are registered approvers of the role now, made with
            // a key the role accepts now, count.
            let mut counted = Vec::new();
            for (a, flags) in store::approvals_with_keys(&tx, id)? {
                if a.user == row.user {
                    continue;
                }
                let Some(groups) = store::user_groups(&tx, &a.user)? else {
                    continue;
                };
                let k = CallerKey::from_flags(flags);
                if role.may_approve(&a.user, &groups)
                    && role.approval_key.check(k.approval, k.sk, k.touched).is_ok()
                {
                    counted.push(a);
                }
            }
            let need = row.approvals_required.max(role.approvals) as usize;
            if counted.len() >= need {
                check_active_grants(&tx, &row.user, now, self.config.max_active_grants_per_user)?;
                let names: Vec<&str> = counted.iter().map(|a| a.user.as_str()).collect();
                row.approved_at = Some(now);
                row.approved_until = Some(now.saturating_add(row.duration_secs));
                row.approval_basis = Some(json!({"approvers": names}).to_string());
                let approvers = counted
                    .iter()
                    .map(|a| Approval {
                        user: a.user.clone(),
                        at: a.at.into(),
                    })
                    .collect();
                records.push(self.issue(&tx, &mut row, &role, now, None, approvers, json!({}))?);
            }
            let v = view(&tx, &row, now)?;
            tx.commit()?;
            flushed.done();
            Ok(v)
        })();
        match result {
            Ok(v) => {
                self.log(&records);
                if v.state == RequestState::Approved {
                    self.after_issuance();
                }
                Ok(v)
            }
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/requests/{id}/deny`: an approver refuses, or the requester withdraws.
    pub fn deny(&self, caller: &Caller, id: &str, reason: &str) -> ApiResult<RequestView> {
        let now = self.now();
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(refuse(
                C::ReasonRequired,
                "a denial needs a one-line reason (--reason TEXT)",
            ));
        }
        check_text("denial reason", reason)?;
        let mut st = lock(&self.store);
        let tx = st.tx()?;
        let flushed = self.nonces.flush_into(&tx)?;
        let mut row = self.load(&tx, id)?;
        if row.state != RequestState::Pending || now >= row.pending_expires_at {
            return Err(refuse(
                C::InvalidState,
                format!("request {id} is not pending"),
            ));
        }
        let may = row.user == caller.user
            || self
                .role_of(&row.role)
                .is_some_and(|r| r.may_approve(&caller.user, &caller.groups));
        if !may {
            return Err(refuse(
                C::NotAnApprover,
                format!("you ({}) may not deny role {:?}", caller.user, row.role),
            ));
        }
        row.state = RequestState::Denied;
        row.denied_by = Some(caller.user.clone());
        row.denial_reason = Some(reason.to_string());
        store::update_request(&tx, &row)?;
        let rec = store::append_audit(
            &tx,
            now,
            &caller.user,
            event::DENIAL,
            &json!({"request_id": id, "reason": reason, "withdrawn": row.user == caller.user}),
        )?;
        let v = view(&tx, &row, now)?;
        tx.commit()?;
        flushed.done();
        drop(st);
        self.log(&[rec]);
        Ok(v)
    }

    fn may_see(&self, caller: &Caller, row: &RequestRow) -> bool {
        row.user == caller.user
            || self
                .role_of(&row.role)
                .is_some_and(|r| r.may_approve(&caller.user, &caller.groups))
    }

    /// `GET /v1/requests/{id}`.
    pub fn get(&self, caller: &Caller, id: &str) -> ApiResult<RequestView> {
        let now = self.now();
        self.read_db(|c| {
            let row = self.load(c, id)?;
            if !self.may_see(caller, &row) {
                return Err(refuse(
                    C::Forbidden,
                    format!("request {id} is neither yours nor one you may approve"),
                ));
            }
            view(c, &row, now)
        })
    }

    /// `GET /v1/requests?filter=pending|mine|all`.
    pub fn list(&self, caller: &Caller, filter: &str) -> ApiResult<RequestList> {
        let now = self.now();
        self.read_db(|c| {
            let rows = match filter {
                "pending" => store::list_requests(c, Some(RequestState::Pending), LIST_LIMIT)?
                    .into_iter()
                    .filter(|r| {
                        r.user != caller.user
                            && now < r.pending_expires_at
                            && self.may_see(caller, r)
                    })
                    .collect::<Vec<_>>(),
                "mine" => store::list_requests_of(c, &caller.user, LIST_LIMIT)?,
                "all" | "" => store::list_requests(c, None, LIST_LIMIT)?
                    .into_iter()
                    .filter(|r| self.may_see(caller, r))
                    .collect(),
                other => {
                    return Err(refuse(
                        C::InvalidInput,
                        format!("unknown filter {other:?}; use pending, mine or all"),
                    ));
                }
            };
            let requests = rows
                .iter()
                .map(|r| view(c, r, now))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok(RequestList { requests })
        })
    }

    /// `GET /v1/requests/{id}/certificate`.
    pub fn certificate(&self, caller: &Caller, id: &str) -> ApiResult<IssuedView> {
        self.read_db(|c| {
            Self::refuse_approval_key(caller, "fetch certificates")?;
            let row = self.load(c, id)?;
            if row.user != caller.user {
                return Err(refuse(
                    C::Forbidden,
                    "only the requester can fetch the certificate",
                ));
            }
            match row.state {
                RequestState::Approved | RequestState::Expired if row.approved_at.is_some() => {}
                s => {
                    return Err(refuse(
                        C::InvalidState,
                        format!(
                            "request {id} is {}; there is no certificate to fetch",
                            state_name(s)
                        ),
                    ));
                }
            }
            let cert = store::latest_cert(c, id)?.ok_or_else(|| {
                refuse(C::InvalidState, format!("request {id} has no certificate"))
            })?;
            Ok(IssuedView {
                request_id: row.id,
                certificate: cert.certificate,
                serial: cert.serial,
                valid_after: cert.valid_after,
                valid_before: cert.valid_before,
                grant: cert.grant_doc,
            })
        })
    }

    /// `POST /v1/requests/{id}/revoke`: the requester or anyone who may approve the role.
    pub fn revoke(&self, caller: &Caller, id: &str, reason: &str) -> ApiResult<RequestView> {
        self.revoke_as(&caller.user, Some(caller), id, reason)
    }

    /// Revocation by an operator (`jit-ca revoke`, on the data directory): no role check;
    /// `actor` is recorded. A running service picks the change up within a second or two
    /// (`Ca::pick_up_external_changes`).
    pub fn admin_revoke(&self, actor: &str, id: &str, reason: &str) -> ApiResult<RequestView> {
        self.revoke_as(actor, None, id, reason)
    }

    fn revoke_as(
        &self,
        actor: &str,
        caller: Option<&Caller>,
        id: &str,
        reason: &str,
    ) -> ApiResult<RequestView> {
        let now = self.now();
        let reason = reason.trim();
        check_text("revocation reason", reason)?;
        let mut st = lock(&self.store);
        let tx = st.tx()?;
        let flushed = self.nonces.flush_into(&tx)?;
        let mut row = self.load(&tx, id)?;
        let may = caller.is_none_or(|caller| {
            row.user == caller.user
                || self
                    .role_of(&row.role)
                    .is_some_and(|r| r.may_approve(&caller.user, &caller.groups))
        });
        if !may {
            return Err(refuse(
                C::Forbidden,
                "only the requester or an approver of the role may revoke",
            ));
        }
        if row.state != RequestState::Approved {
            return Err(refuse(
                C::InvalidState,
                format!(
                    "request {id} is {}; only approved requests can be revoked",
                    state_name(row.state)
                ),
            ));
        }
        row.state = RequestState::Revoked;
        row.revoked_at = Some(now);
        row.revoked_by = Some(actor.to_string());
        store::update_request(&tx, &row)?;
        let certs = store::revoke_certs(&tx, id)?;
        let serials: Vec<u64> = certs.iter().map(|c| c.serial).collect();
        let grants: Vec<&String> = certs.iter().filter_map(|c| c.grant_id.as_ref()).collect();
        let published = self.build_published(&tx, now, true)?;
        let rec = store::append_audit(
            &tx,
            now,
            actor,
            event::REVOCATION,
            &json!({"request_id": id, "reason": reason, "serials": serials, "grant_ids": grants,
                    "revocation_sequence": published.revocation_sequence}),
        )?;
        if caller.is_none() {
            // An operator on the data directory: a running service picks it up in a second.
            external::bump_generation(&tx)?;
        }
        let v = view(&tx, &row, now)?;
        tx.commit()?;
        flushed.done();
        drop(st);
        write(&self.published, published);
        self.release_in_host_documents(certs.iter().filter_map(|c| c.grant_id.as_deref()));
        self.stats.revocations.fetch_add(1, Ordering::Relaxed);
        self.log(&[rec]);
        self.after_issuance();
        Ok(v)
    }

    /// `POST /v1/requests/{id}/extend`: the requester adds time. Within the window the
    /// approval covered, as before; beyond it only when an auto-approval rule of the role (as
    /// it is now) would approve the whole new window, else `extension_not_approved` (request
    /// anew). The role as it is now must still fit the request (`policy_changed`). The new
    /// certificate and grant supersede the old ones: their serials and grant ids are revoked
    /// (KRL and revocation list re-published) in the same transaction.
    pub fn extend(&self, caller: &Caller, id: &str, secs: u64) -> ApiResult<RequestView> {
        Self::refuse_approval_key(caller, "extend requests")?;
        let now = self.now();
        let mut st = lock(&self.store);
        let tx = st.tx()?;
        let flushed = self.nonces.flush_into(&tx)?;
        let mut row = self.load(&tx, id)?;
        if row.user != caller.user {
            return Err(refuse(
                C::Forbidden,
                "only the requester may extend a request",
            ));
        }
        let latest = store::latest_cert(&tx, id)?;
        let (RequestState::Approved, Some(latest), Some(approved_at)) =
            (row.state, latest, row.approved_at)
        else {
            return Err(refuse(
                C::InvalidState,
                format!(
                    "request {id} is {}; only an active approved request can be extended",
                    state_name(row.state)
                ),
            ));
        };
        if latest.valid_before <= now {
            return Err(refuse(
                C::InvalidState,
                format!("request {id} has ended; ask for a new one"),
            ));
        }
        if secs == 0 {
            return Err(refuse(C::InvalidInput, "duration must be at least 1s"));
        }
        let Some(role) = self.role_of(&row.role) else {
            return Err(refuse(
                C::PolicyChanged,
                format!(
                    "policy changed, request again: role {:?} is no longer in the policy",
                    row.role
                ),
            ));
        };
        let new_end = latest.valid_before.saturating_add(secs);
        let window = new_end - approved_at;
        if window > role.max_duration_secs {
            return Err(refuse(
                C::DurationTooLong,
                format!(
                    "the window would be {} from approval; role {:?} allows {}",
                    jit_common::time::format_duration(window),
                    role.name,
                    jit_common::time::format_duration(role.max_duration_secs)
                ),
            ));
        }
        Self::check_still_fits(&tx, &row, &role, window)?;
        let until = approved_until(&row);
        let mut covered_by = json!("approval");
        if new_end > until {
            // Beyond what was approved: only an auto-approval rule that approves the whole
            // new window (for the requester as they are now) may cover it.
            let groups = store::user_groups(&tx, &row.user)?.unwrap_or_default();
            match role.auto_approval(&row.user, &groups, window) {
                Some(rule) => {
                    row.approved_until = Some(new_end);
                    row.approval_basis = Some(json!({"auto_rule": rule}).to_string());
                    covered_by = json!(rule);
                }
                None => {
                    let basis = row.approval_basis.as_deref().unwrap_or("{}");
                    return Err(refuse(
                        C::ExtensionNotApproved,
                        format!(
                            "request {id} was approved ({basis}) for a window until {}; extending \
                             to {} goes beyond it and needs the {} approval(s) role {:?} asks \
                             for: request again (jit request {} --duration {} --reason ...) and \
                             ask an approver",
                            jit_common::time::format_utc(until),
                            jit_common::time::format_utc(new_end),
                            role.approvals,
                            role.name,
                            role.name,
                            jit_common::time::format_duration(new_end.saturating_sub(now))
                        ),
                    ));
                }
            }
        }
        let superseded = store::revoke_live_certs(&tx, id)?;
        let serials: Vec<u64> = superseded.iter().map(|c| c.serial).collect();
        let grants: Vec<&String> = superseded
            .iter()
            .filter_map(|c| c.grant_id.as_ref())
            .collect();
        let published = self.build_published(&tx, now, true)?;
        row.duration_secs = window;
        let approvers = store::approvals(&tx, &row.id)?
            .into_iter()
            .map(|a| Approval {
                user: a.user,
                at: a.at.into(),
            })
            .collect();
        let extra = json!({"covered_by": covered_by, "superseded_serials": serials,
                           "superseded_grant_ids": grants,
                           "revocation_sequence": published.revocation_sequence});
        let rec = self.issue(&tx, &mut row, &role, now, Some(new_end), approvers, extra)?;
        let v = view(&tx, &row, now)?;
        tx.commit()?;
        flushed.done();
        drop(st);
        write(&self.published, published);
        self.release_in_host_documents(superseded.iter().filter_map(|c| c.grant_id.as_deref()));
        self.log(&[rec]);
        self.after_issuance();
        Ok(v)
    }

    /// Expires overdue pending requests and ended windows, forgets old nonces, and re-signs
    /// the revocation list when `revocation_refresh` has passed.
    pub fn sweep(&self) -> Result<usize, CaError> {
        let now = self.now();
        let mut records = Vec::new();
        let n = {
            let mut st = lock(&self.store);
            let tx = st.tx()?;
            let flushed = self.nonces.flush_into(&tx)?;
            let due = store::due_for_expiry(&tx, now)?;
            for mut row in due.iter().cloned() {
                let was = row.state;
                row.state = RequestState::Expired;
                store::update_request(&tx, &row)?;
                records.push(store::append_audit(
                    &tx,
                    now,
                    "system",
                    event::EXPIRY,
                    &json!({"request_id": row.id, "was": state_name(was)}),
                )?);
            }
            store::expire_nonces(&tx, now.saturating_sub(NONCE_KEEP_SECS))?;
            tx.commit()?;
            flushed.done();
            due.len()
        };
        self.nonces.expire(now.saturating_sub(NONCE_KEEP_SECS));
        self.log(&records);
        if n > 0 {
            self.after_issuance();
        }
        // Keeps the host-document budget close to the database (revoked and ended grants
        // stop counting) even when no host fetches its document.
        let _ = self.refresh_grants_if_dirty();
        let p = self.published();
        let stored_sequence: u64 = self
            .read_db(|c| store::meta_get(c, "revocation_sequence"))?
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        if stored_sequence > p.revocation_sequence {
            // Revoked by an operator on the data directory (`jit-ca revoke`).
            self.republish(false)?;
            self.refresh_grants()?;
        } else if now.saturating_sub(p.revocation_issued_at) >= self.config.revocation_refresh_secs
        {
            self.republish(true)?;
        }
        Ok(n)
    }

    /// Re-reads policy.toml. A bad file is rejected (and audited) and the old policy kept.
    pub fn reload_policy(&self) -> Result<(), CaError> {
        match load_policy(&self.config) {
            Ok(p) => {
                let roles: Vec<&String> = p.roles.keys().collect();
                let details = json!({"ok": true, "roles": roles});
                write(&self.policy, p);
                self.audit("system", event::POLICY_RELOAD, details)?;
                Ok(())
            }
            Err(e) => {
                self.audit(
                    "system",
                    event::POLICY_RELOAD,
                    json!({"ok": false, "error": e.to_string()}),
                )?;
                Err(e)
            }
        }
    }

    // ---- host documents ----

    fn after_issuance(&self) {
        // Called after the change is committed: the next host read rebuilds the snapshot
        // from SQLite and so sees it.
        self.grants_dirty.store(true, Ordering::SeqCst);
    }

    /// Rebuilds the grant snapshot if something changed since it was built.
    fn refresh_grants_if_dirty(&self) -> Result<(), CaError> {
        if self.grants_dirty.swap(false, Ordering::SeqCst)
            && let Err(e) = self.refresh_grants()
        {
            self.grants_dirty.store(true, Ordering::SeqCst);
            lock(&self.syslog).log(
                Severity::Warning,
                &format!("refreshing the grant cache failed: {e}"),
            );
            return Err(e);
        }
        Ok(())
    }

    fn refresh_grants(&self) -> Result<(), CaError> {
        let now = self.now();
        let read_start = std::time::Instant::now();
        let rows = self.read_db(|c| store::active_grants(c, now))?;
        let generation = read(&self.grants).generation + 1;
        let grants: Vec<ActiveGrant> = rows
            .into_iter()
            .filter_map(|c| {
                Some(ActiveGrant {
                    id: c.grant_id?,
                    hosts: c.grant_hosts,
                    doc: c.grant_doc?,
                    not_after: c.valid_before,
                })
            })
            .collect();
        lock(&self.budget).rebuild(
            grants.iter().map(|g| {
                (
                    g.id.as_str(),
                    g.hosts.as_slice(),
                    g.doc.as_str(),
                    g.not_after,
                )
            }),
            read_start,
        );
        write(&self.grants, GrantSnapshot { generation, grants });
        Ok(())
    }

    /// `GET /v1/hosts/{host}/grants`: cached by grant set until a grant is issued or
    /// revoked or an included grant ends. Memory is bounded by distinct grant sets and
    /// bytes, not by the host names asked for (see `host_docs`).
    pub fn host_grants(&self, host: &str) -> ApiResult<HostDoc> {
        if host.is_empty()
            || host.len() > jit_common::host::MAX_LEN
            || host.contains(['*', '?', '[', ']', '!'])
            || jit_common::host::validate_selector(host).is_err()
        {
            return Err(refuse(
                C::InvalidInput,
                format!("{host:?} is not a host name"),
            ));
        }
        let host = host.to_ascii_lowercase();
        self.refresh_grants_if_dirty()?;
        let now = self.now();
        let snap = read(&self.grants);
        if let Some(doc) = lock(&self.host_cache).get(&host, snap.generation, now) {
            return Ok(doc);
        }
        let mut until = u64::MAX;
        let mut grants = Vec::new();
        for g in &snap.grants {
            if g.not_after > now
                && g.hosts
                    .iter()
                    .any(|sel| jit_common::host::matches(sel, &host))
            {
                until = until.min(g.not_after);
                grants.push(g.doc.as_str());
            }
        }
        lock(&self.host_cache)
            .put(&host, snap.generation, &grants, until)
            .map_err(ApiError::internal)
    }

    /// Sizes of the host-document cache (for `/metrics` and tests).
    pub fn host_cache_stats(&self) -> CacheStats {
        lock(&self.host_cache).stats()
    }

    /// Builds the published documents. With `bump`, the revocation list gets a new sequence
    /// and is stored; without, the stored list is reused if it is signed by the current key.
    fn build_published(
        &self,
        c: &rusqlite::Connection,
        now: u64,
        bump: bool,
    ) -> Result<Published, CaError> {
        let ca_keys = self.signer.ca_public_keys();
        let grant_keys = self.signer.grant_public_keys();
        let line = |k: &PublicKey| k.to_openssh().map_err(|e| CaError::Other(e.to_string()));
        let ca_lines = ca_keys.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        let grant_lines = grant_keys.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        let keys = serde_json::to_vec(&KeysView {
            user_ca_keys: ca_lines.clone(),
            grant_keys: grant_lines,
        })
        .map_err(|e| CaError::Other(e.to_string()))?;
        let mut ca_pub = ca_lines.join("\n");
        ca_pub.push('\n');

        let mut ring = KeyRing::new();
        ring.push(self.signer.grant_key().public_key().clone());
        let stored = store::meta_get(c, "revocations")?;
        let stored_ok = stored.as_ref().and_then(|d| {
            UnverifiedRevocationList::parse(d.as_bytes())
                .ok()?
                .verify(&ring)
                .ok()
        });
        let (doc, sequence, issued_at) = match (bump, stored_ok, stored) {
            (false, Some(v), Some(d)) => (
                d.into_bytes(),
                v.list().sequence,
                v.list().issued_at.as_secs(),
            ),
            (_, prev, _) => {
                let last: u64 = store::meta_get(c, "revocation_sequence")?
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let sequence = last.max(prev.map_or(0, |v| v.list().sequence)) + 1;
                let mut list = RevocationList::new(sequence, now);
                for cert in store::revoked_certs(c, now.saturating_sub(REVOCATION_TAIL_SECS))? {
                    list.revoked_serials.insert(cert.serial);
                    if let Some(g) = cert.grant_id {
                        list.revoked_grants.insert(g);
                    }
                }
                // `jit-ca revoke-grant` of what no certificate row carries (break-glass).
                let ops = external::operator_revocations(c)?;
                list.revoked_serials.extend(ops.serials);
                list.revoked_grants.extend(ops.grants);
                let doc = list
                    .sign(self.signer.grant_key())
                    .map_err(|e| CaError::Other(format!("revocation list: {e}")))?;
                let text = String::from_utf8(doc.clone())
                    .map_err(|_| CaError::Other("revocation list is not UTF-8".into()))?;
                store::meta_set(c, "revocations", &text)?;
                store::meta_set(c, "revocation_sequence", &sequence.to_string())?;
                (doc, sequence, now)
            }
        };
        let mut serials: Vec<u64> =
            store::revoked_certs(c, now.saturating_sub(REVOCATION_TAIL_SECS))?
                .iter()
                .map(|c| c.serial)
                .collect();
        serials.extend(external::operator_revocations(c)?.serials);
        let krl = crate::krl::encode(&ca_keys, &serials, sequence, issued_at, "jit-ca")?;
        Ok(Published {
            keys: Doc::new(keys),
            ca_pub: Doc::new(ca_pub.into_bytes()),
            krl: Doc::new(krl),
            revocations: Doc::new(doc),
            revocation_sequence: sequence,
            revocation_issued_at: issued_at,
        })
    }

    fn republish(&self, bump: bool) -> Result<(), CaError> {
        let now = self.now();
        let p = {
            let mut st = lock(&self.store);
            let tx = st.tx()?;
            let flushed = self.nonces.flush_into(&tx)?;
            let p = self.build_published(&tx, now, bump)?;
            tx.commit()?;
            flushed.done();
            p
        };
        write(&self.published, p);
        Ok(())
    }
}

/// Refuses when `user` already has `max` active grants (`max_active_grants_per_user`).
fn check_active_grants(c: &rusqlite::Connection, user: &str, now: u64, max: u64) -> ApiResult<()> {
    let n = store::active_grant_count(c, user, now)?;
    if n >= max {
        return Err(refuse(
            C::TooManyActiveGrants,
            format!(
                "{user} already has {n} active grant(s), the most max_active_grants_per_user in \
                 the CA's config.toml allows ({max}); revoke one that is no longer needed \
                 (jit revoke ID) or wait until one ends"
            ),
        ));
    }
    Ok(())
}

/// What the audit record of an issuance or extension says about the approval it rests on.
fn approval_details(row: &RequestRow) -> serde_json::Value {
    let basis = row
        .approval_basis
        .as_deref()
        .and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok())
        .unwrap_or(serde_json::Value::Null);
    json!({"approval": {"basis": basis, "approved_at": row.approved_at, "approved_until": row.approved_until}})
}

/// Adds the fields of `extra` (an object) to `details` (an object).
fn add_details(details: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(d), serde_json::Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
}

/// The end of the window the request's approval covered (requests approved before this was
/// recorded: the window they were issued for).
fn approved_until(row: &RequestRow) -> u64 {
    row.approved_until.unwrap_or_else(|| {
        row.approved_at
            .unwrap_or(row.created_at)
            .saturating_add(row.duration_secs)
    })
}

/// Loads and validates the policy file.
pub fn load_policy(config: &Config) -> Result<Policy, CaError> {
    let path = config.policy_path();
    let text = crate::files::read_trusted(&path, crate::config::MAX_CONFIG_SIZE)?;
    Policy::parse(&text).map_err(|problems| CaError::Config { path, problems })
}

fn state_name(s: RequestState) -> &'static str {
    match s {
        RequestState::Pending => "pending",
        RequestState::Approved => "approved",
        RequestState::Denied => "denied",
        RequestState::Expired => "expired",
        RequestState::Revoked => "revoked",
    }
}

fn fingerprint_of(key_line: &str) -> String {
    PublicKey::from_openssh(key_line)
        .map(|k| k.fingerprint(HashAlg::Sha256).to_string())
        .unwrap_or_default()
}

/// A new request id: `r-` and 16 random hex digits.
/// A new request id: `r-`, the Unix time in seconds (8 hex digits) and 48 random bits. The
/// time prefix makes new ids sort last, so inserting one touches the right edge of every
/// index keyed by request id instead of a random page of each (which was most of the pages
/// each commit wrote); the random part keeps ids unguessable and unique (two ids in one
/// second collide with probability 2^-48, and a collision is refused by the primary key).
pub fn new_id() -> String {
    use rand_core::RngCore as _;
    let mut b = [0u8; 6];
    rand_core::OsRng.fill_bytes(&mut b);
    // Only an ordering prefix, not a reading the service decides on; issue 12 has new_id
    // take the time from the caller's clock instead.
    #[allow(clippy::disallowed_methods)]
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    format!("r-{:08x}{}", secs & 0xffff_ffff, hex::encode(b))
}

fn view(c: &rusqlite::Connection, row: &RequestRow, now: u64) -> ApiResult<RequestView> {
    let approvals = store::approvals(c, &row.id)?;
    let cert = if row.approved_at.is_some() {
        store::latest_cert(c, &row.id)?
    } else {
        None
    };
    Ok(view_of(row, approvals, cert.as_ref(), now))
}

/// The view of a request from its row, approvals and newest certificate.
fn view_of(
    row: &RequestRow,
    approvals: Vec<ApprovalView>,
    cert: Option<&CertRow>,
    now: u64,
) -> RequestView {
    let mut state = row.state;
    if state == RequestState::Pending && now >= row.pending_expires_at {
        state = RequestState::Expired;
    }
    if state == RequestState::Approved && cert.is_some_and(|c| c.valid_before <= now) {
        state = RequestState::Expired;
    }
    RequestView {
        id: row.id.clone(),
        user: row.user.clone(),
        role: row.role.clone(),
        reason: row.reason.clone(),
        state,
        duration_secs: row.duration_secs,
        hosts: row.hosts.clone(),
        principals: row.principals.clone(),
        sudo: row.sudo,
        created_at: row.created_at,
        pending_expires_at: row.pending_expires_at,
        approvals,
        approvals_required: row.approvals_required,
        denied_by: row.denied_by.clone(),
        denial_reason: row.denial_reason.clone(),
        valid_after: cert.map(|c| c.valid_after),
        valid_before: cert.map(|c| c.valid_before),
        serial: cert.map(|c| c.serial),
        grant_id: cert.and_then(|c| c.grant_id.clone()),
        issued: None,
    }
}

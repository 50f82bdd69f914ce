//! What hosts fetch: the key documents, the signed revocation list and the KRL (rebuilt on
//! change, served from memory), and the per-host grants documents (cached by grant set,
//! bounded, see `host_docs`). No HTTP type here: the API layer turns these into responses.

use std::sync::atomic::Ordering;
use std::time::Instant;

use ssh_key::PublicKey;

use jit_common::log::Severity;
use jit_common::{KeyRing, RevocationList, UnverifiedRevocationList};

use super::grant_index::{self, GrantIndex};
use super::host_docs::{self, CacheStats, HostDoc, MAX_HOST_DOCUMENT};
use super::{ApiResult, Ca, Doc, lock, refuse, write};
use crate::error::{ApiError, CaError};
use crate::store::{LeanGrant, RequestRow, StoreOps};
use jit_api::wire::{ErrorCode as C, KeysView};

/// Whether [`Ca::build_published`] signs a new revocation list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reissue {
    /// Always (a revocation, the periodic refresh).
    Bump,
    /// Only if the stored list does not verify with this replica's grant keys (at start).
    IfUnverified,
    /// Never (picking up another replica's list).
    Never,
}

/// Revoked certificates stay listed this long after their window ended.
const REVOCATION_TAIL_SECS: u64 = 24 * 3600;

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

impl Published {
    /// Nothing published yet (before the first build).
    pub(super) fn empty() -> Self {
        Self {
            keys: Doc::new(Vec::new()),
            ca_pub: Doc::new(Vec::new()),
            krl: Doc::new(Vec::new()),
            revocations: Doc::new(Vec::new()),
            revocation_sequence: 0,
            revocation_issued_at: 0,
        }
    }
}

/// A grant an issuance just committed (see [`Ca::after_issuance`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveGrantAdded {
    /// Its certificate's serial.
    pub serial: u64,
}

impl ActiveGrantAdded {
    /// The grant of `cert`, if it has one.
    pub fn of(cert: &crate::store::CertRow) -> Option<Self> {
        cert.grant_id.as_ref().map(|_| Self {
            serial: cert.serial,
        })
    }
}

/// Lean rows handled per lock of the old index while rebuilding.
const REBUILD_CHUNK: usize = 1024;
/// Serials per query when grant documents are read by serial.
const DOCS_PER_QUERY: usize = 1000;

impl Ca {
    /// Counts the grant in the documents of the hosts it reaches; refuses it with
    /// `host_grants_full` if one of them could grow past [`MAX_HOST_DOCUMENT`].
    pub(super) fn reserve_in_host_documents(
        &self,
        row: &RequestRow,
        grant_id: &str,
        doc: &str,
        not_after: u64,
        now: u64,
    ) -> ApiResult<()> {
        let limit = self.host_document_limit();
        let serial = grant_index::serial_of_grant_id(grant_id)
            .ok_or_else(|| ApiError::internal(format!("grant id {grant_id:?} without a serial")))?;
        lock(&self.index)
            .reserve_within(
                serial,
                &row.hosts,
                host_docs::encoded_len(doc),
                not_after,
                now,
                limit,
            )
            .map_err(|over| {
                refuse(
                    C::HostGrantsFull,
                    format!(
                        "the grants document of a host matching {} would reach {} bytes, over the \
                         limit of {limit} bytes per host (hosts fetch it with jit-host \
                         sync); ask for fewer or narrower hosts, or revoke or let end some \
                         active grants for these hosts first",
                        row.hosts.join(","),
                        over.would_be
                    ),
                )
            })
    }

    /// What this replica lets one host's grants document grow to: [`MAX_HOST_DOCUMENT`]
    /// divided by the replicas seen in the last minute (at least 1; always 1 on SQLite).
    /// Each replica reserves against its own index, which catches up with the others'
    /// grants only after a notification or a second: with this share, grants issued at the
    /// same moment through every replica still stay within [`MAX_HOST_DOCUMENT`] together.
    pub fn host_document_limit(&self) -> u64 {
        MAX_HOST_DOCUMENT / self.replicas_seen().max(1)
    }

    /// Stops counting grants `ids` in the host-document budget (revoked, superseded by an
    /// extension, or signed for an issuance that was not stored): without this a recent
    /// reservation would keep counting for `grant_index::RESERVATION_GRACE` even across a
    /// rebuild, and a requester revoking or extending in a loop could fill a host's budget
    /// for everyone.
    pub(super) fn release_in_host_documents<'a>(&self, ids: impl IntoIterator<Item = &'a str>) {
        lock(&self.index).release(ids.into_iter().filter_map(grant_index::serial_of_grant_id));
    }

    /// Called after a change is committed. `Some`: an issuance's new grant (already
    /// reserved in the index): the host documents it reaches are dropped from the cache, in
    /// O(1) for a grant of literal host names. `None` (revocation, extension, expiry,
    /// approval, operator or peer change): the index is rebuilt from the database at the
    /// next host read or sweep.
    pub(super) fn after_issuance(&self, added: Option<ActiveGrantAdded>) {
        let Some(added) = added else {
            self.grants_dirty.store(true, Ordering::SeqCst);
            return;
        };
        let mut index = lock(&self.index);
        match index.committed(added.serial) {
            Some(grant_index::Reach::Names(names)) => {
                let mut cache = lock(&self.host_cache);
                for n in names {
                    cache.forget(n);
                }
            }
            Some(grant_index::Reach::Any) => lock(&self.host_cache).forget_names(),
            None => self.grants_dirty.store(true, Ordering::SeqCst),
        }
    }

    /// Rebuilds the grant index if something changed since it was built.
    pub(super) fn refresh_grants_if_dirty(&self, now: u64) -> Result<(), CaError> {
        if self.grants_dirty.swap(false, Ordering::SeqCst)
            && let Err(e) = self.refresh_grants(now)
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

    /// Rebuilds the grant index from lean database rows (no certificate or grant texts),
    /// streamed: sizes come from the current index, and only grants it does not know (a
    /// peer's, or at start) have their documents read, by serial, to be measured. Grants
    /// an issuance reserved or committed while the read ran are kept.
    pub(super) fn refresh_grants(&self, now: u64) -> Result<(), CaError> {
        // One rebuild at a time (a host read and the sweep may both start one): with two
        // overlapping, the one finishing last could drop a grant committed during the
        // other's read (`keep_recent` keeps only what the index it replaces says was
        // touched). Carrying the tick (`insert_loaded_known`) closes that too; this lock
        // also saves the second rebuild's work.
        let _one = lock(&self.refreshing);
        let read_start = Instant::now();
        let mut fresh = lock(&self.index).empty_like();
        let mut chunk: Vec<LeanGrant> = Vec::with_capacity(REBUILD_CHUNK);
        let mut unknown: Vec<u64> = Vec::new();
        let mut add = |chunk: &mut Vec<LeanGrant>, fresh: &mut GrantIndex| {
            let known: Vec<grant_index::Known> = {
                let old = lock(&self.index);
                chunk.iter().map(|g| old.known(g.serial)).collect()
            };
            for (g, known) in chunk.drain(..).zip(known) {
                if known.bytes == 0 {
                    unknown.push(g.serial);
                }
                fresh.insert_loaded_known(g.serial, &g.grant_hosts, g.valid_before, known);
            }
        };
        self.read_db(|c| {
            c.active_grants_lean(now, &mut |g| {
                chunk.push(g);
                if chunk.len() >= REBUILD_CHUNK {
                    add(&mut chunk, &mut fresh);
                }
                Ok(())
            })
        })?;
        add(&mut chunk, &mut fresh);
        for part in unknown.chunks(DOCS_PER_QUERY) {
            self.read_db(|c| {
                c.grant_docs_by_serials(part, now, &mut |serial, _, doc| {
                    fresh.set_bytes(serial, host_docs::encoded_len(doc));
                    Ok(())
                })
            })?;
        }
        fresh.drop_unknown(&unknown);
        let old = {
            let mut index = lock(&self.index);
            fresh.keep_recent(&index, read_start);
            let old = std::mem::replace(&mut *index, fresh);
            lock(&self.host_cache).forget_names();
            old
        };
        drop(old);
        Ok(())
    }

    /// `GET /v1/hosts/{host}/grants`: cached by grant set until a grant for it is issued or
    /// revoked or an included grant ends. Memory is bounded by distinct grant sets and
    /// bytes, not by the host names asked for (see `host_docs`); on a miss the serials come
    /// from the grant index and the documents from the database.
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
        let now = self.now();
        let host = host.to_ascii_lowercase();
        self.refresh_grants_if_dirty(now)?;
        let epoch = {
            let mut cache = lock(&self.host_cache);
            if let Some(doc) = cache.get(&host, now) {
                return Ok(doc);
            }
            cache.epoch()
        };
        let mut serials = Vec::new();
        lock(&self.index).serials_for(&host, now, &mut serials);
        let mut until = u64::MAX;
        let mut docs: Vec<String> = Vec::with_capacity(serials.len());
        for part in serials.chunks(DOCS_PER_QUERY) {
            self.read_db(|c| {
                c.grant_docs_by_serials(part, now, &mut |_, end, doc| {
                    until = until.min(end);
                    docs.push(doc.to_string());
                    Ok(())
                })
            })?;
        }
        let grants: Vec<&str> = docs.iter().map(String::as_str).collect();
        lock(&self.host_cache)
            .put(&host, epoch, &grants, until)
            .map_err(ApiError::internal)
    }

    /// Sizes of the host-document cache (for `/metrics` and tests).
    pub fn host_cache_stats(&self) -> CacheStats {
        lock(&self.host_cache).stats()
    }

    /// Builds the published documents: with `bump` the revocation list gets a new sequence
    /// and is stored; without, the stored list is reused if it verifies with one of this
    /// replica's grant keys, else signed anew (at start, and on SQLite where no other
    /// process serves). Never used to pick up another replica's list (see
    /// [`Ca::pick_up_revocations`]).
    pub(super) fn build_published(
        &self,
        c: &dyn StoreOps,
        now: u64,
        bump: bool,
    ) -> Result<Published, CaError> {
        let mode = if bump {
            Reissue::Bump
        } else {
            Reissue::IfUnverified
        };
        self.build(c, now, mode)?
            .ok_or_else(|| CaError::BadStoredValue {
                what: "revocation list",
                detail: "not signed".into(),
            })
    }

    /// Builds the published documents. [`Reissue::Bump`]: the revocation list gets a new
    /// sequence and is stored. Otherwise the stored list is reused if it verifies with any
    /// of this replica's grant keys (the current one or one being rotated in or out);
    /// if it does not, [`Reissue::IfUnverified`] signs a new one and [`Reissue::Never`]
    /// returns `None` (the caller keeps what it serves: see [`Ca::pick_up_revocations`]).
    fn build(
        &self,
        c: &dyn StoreOps,
        now: u64,
        mode: Reissue,
    ) -> Result<Option<Published>, CaError> {
        let ca_keys = self.signer.ca_public_keys();
        let grant_keys = self.signer.grant_public_keys();
        let line = |k: &PublicKey| {
            k.to_openssh().map_err(|e| CaError::Publish {
                what: "public key line",
                source: Box::new(e),
            })
        };
        let ca_lines = ca_keys.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        let grant_lines = grant_keys.iter().map(line).collect::<Result<Vec<_>, _>>()?;
        let keys = serde_json::to_vec(&KeysView {
            user_ca_keys: ca_lines.clone(),
            grant_keys: grant_lines,
        })
        .map_err(|e| CaError::Publish {
            what: "keys document",
            source: Box::new(e),
        })?;
        let mut ca_pub = ca_lines.join("\n");
        ca_pub.push('\n');

        let mut ring = KeyRing::new();
        for k in grant_keys {
            ring.push(k);
        }
        let stored = c.meta_get("revocations")?;
        let stored_ok = stored.as_ref().and_then(|d| {
            UnverifiedRevocationList::parse(d.as_bytes())
                .ok()?
                .verify(&ring)
                .ok()
        });
        let (doc, sequence, issued_at) = match (mode, stored_ok, stored) {
            (Reissue::IfUnverified | Reissue::Never, Some(v), Some(d)) => (
                d.into_bytes(),
                v.list().sequence,
                v.list().issued_at.as_secs(),
            ),
            // A stored list this replica cannot verify (another replica's key, or none):
            // never signed over here, or two replicas with different keys would re-sign
            // each other's list without end.
            (Reissue::Never, _, _) => return Ok(None),
            (_, prev, _) => {
                let last = crate::store::meta_counter(c, "revocation_sequence")?;
                let sequence = last.max(prev.map_or(0, |v| v.list().sequence)) + 1;
                let mut list = RevocationList::new(sequence, now);
                for cert in c.revoked_certs(now.saturating_sub(REVOCATION_TAIL_SECS))? {
                    list.revoked_serials.insert(cert.serial);
                    if let Some(g) = cert.grant_id {
                        list.revoked_grants.insert(g);
                    }
                }
                // `jit-ca revoke-grant` of what no certificate row carries (break-glass).
                let ops = crate::store::operator::load(c)?;
                list.revoked_serials.extend(ops.serials);
                list.revoked_grants.extend(ops.grants);
                let doc = list
                    .sign(self.signer.grant_key())
                    .map_err(|e| CaError::Publish {
                        what: "revocation list",
                        source: Box::new(e),
                    })?;
                let text = String::from_utf8(doc.clone()).map_err(|e| CaError::Publish {
                    what: "revocation list",
                    source: Box::new(e),
                })?;
                c.meta_set("revocations", &text)?;
                c.meta_set("revocation_sequence", &sequence.to_string())?;
                (doc, sequence, now)
            }
        };
        let mut serials: Vec<u64> = c
            .revoked_certs(now.saturating_sub(REVOCATION_TAIL_SECS))?
            .iter()
            .map(|c| c.serial)
            .collect();
        serials.extend(crate::store::operator::load(c)?.serials);
        let krl = crate::krl::encode(&ca_keys, &serials, sequence, issued_at, "jit-ca")?;
        Ok(Some(Published {
            keys: Doc::new(keys),
            ca_pub: Doc::new(ca_pub.into_bytes()),
            krl: Doc::new(krl),
            revocations: Doc::new(doc),
            revocation_sequence: sequence,
            revocation_issued_at: issued_at,
        }))
    }

    /// Publishes anew (see [`Ca::build_published`]).
    pub(super) fn republish(&self, now: u64, bump: bool) -> Result<(), CaError> {
        let p = self.transact(|tx| self.build_published(tx, now, bump))?;
        write(&self.published, p);
        Ok(())
    }

    /// Reloads the stored revocation list after someone else stored one: on PostgreSQL as
    /// [`Ca::pick_up_revocations`] (never signed here); on SQLite, where no other process
    /// serves, as at start ([`Ca::republish`] without a new sequence).
    pub(super) fn pick_up_stored(&self, now: u64) -> Result<(), CaError> {
        if self.backend.postgres().is_some() {
            self.pick_up_revocations(now)?;
            Ok(())
        } else {
            self.republish(now, false)
        }
    }

    /// Picks up a revocation list another replica (or an operator command) stored: served
    /// if it verifies with one of this replica's grant keys. If it does not (the replicas'
    /// grant keys differ: a rotation done on one data directory only, or keys copied
    /// wrongly), nothing is signed here and the list served so far stays; an alert-level
    /// syslog line says so, once per stored sequence. Returns whether it was picked up.
    pub(super) fn pick_up_revocations(&self, now: u64) -> Result<bool, CaError> {
        match self.read_db(|c| self.build(c, now, Reissue::Never))? {
            Some(p) => {
                write(&self.published, p);
                Ok(true)
            }
            None => {
                let stored =
                    self.read_db(|c| crate::store::meta_counter(c, "revocation_sequence"))?;
                if self.note_unverified(stored) {
                    let line = format!(
                        "the stored revocation list #{stored} does not verify with this \
                         replica's grant keys; still serving #{} (check that every replica's \
                         grant_keys list the same keys: jit-ca db status shows their digests)",
                        self.published().revocation_sequence
                    );
                    lock(&self.syslog).log(Severity::Alert, &line);
                    jit_common::errln!("jit-ca: {line}");
                }
                Ok(false)
            }
        }
    }
}

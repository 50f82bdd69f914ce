//! Operator changes on the data directory, and how a running service picks them up.
//!
//! **Pick-up.** Operator commands (`jit-ca user remove`, `revoke`, `revoke-grant`) write
//! `jit.db` directly, in their own IMMEDIATE transaction, while `jit-ca serve` may be running
//! (SQLite serialises them with the service's writer thread). Each such transaction also
//! increments the meta counter [`GENERATION_KEY`]. The service reads that counter once a
//! second on a read connection (one indexed row, no lock taken) and, when it moved, reloads
//! what it keeps in memory: the published KRL, revocation list and key documents (the
//! revocation list the command signed and stored is reused as is) and the grant snapshot
//! behind the host documents. User keys are not cached (every call reads them), so a removed
//! user's key stops authenticating at once. Nothing here touches nonces or serials: the
//! commands neither accept signed calls nor issue certificates.
//!
//! **Checkpoints.** Once a second the service also looks at the newest audit record; when it
//! moved, a new signed checkpoint ([`crate::audit::checkpoint`]) is made once the trail has
//! been quiet for a tick, or at the latest [`CHECKPOINT_MAX_LAG`] seconds after the previous
//! one under constant traffic. The latest is served at `GET /v1/audit/checkpoint` and each is
//! sent to syslog.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use serde::Serialize;
use serde_json::json;

use jit_common::log::Severity;

use super::lifecycle::{self, Actor};
use super::{ApiResult, Ca, Doc, lock, refuse};
use crate::audit::checkpoint::Checkpoint;
use crate::audit::event;
use crate::error::{ApiError, CaError};
use crate::store::{CertKey, StoreOps, operator};
use jit_api::wire::{ErrorCode as C, RequestState};

/// Meta key of the counter operator commands increment.
pub const GENERATION_KEY: &str = "external_generation";
/// Longest a changing audit trail goes without a new checkpoint, in seconds.
pub const CHECKPOINT_MAX_LAG: u64 = 5;

/// What the service remembers between its once-a-second looks.
#[derive(Debug, Default)]
pub(super) struct Watch {
    /// The generation last picked up.
    seen: AtomicU64,
    /// The newest audit record at the previous look: (seq, hash).
    observed: Mutex<Option<(u64, String)>>,
    /// The latest signed checkpoint and its claims.
    checkpoint: RwLock<Option<Arc<(Doc, Checkpoint)>>>,
    /// Other replicas on the same database (see `replica`).
    pub(super) replica: super::replica::State,
}

/// Increments the operator-change counter inside `c`'s transaction.
pub fn bump_generation(c: &dyn StoreOps) -> crate::error::Result<u64> {
    let g = generation(c)?.saturating_add(1);
    c.meta_set(GENERATION_KEY, &g.to_string())?;
    Ok(g)
}

/// The operator-change counter.
pub fn generation(c: &dyn StoreOps) -> crate::error::Result<u64> {
    crate::store::meta_counter(c, GENERATION_KEY)
}

/// What `jit-ca user remove` did.
#[derive(Debug, Clone, Serialize)]
pub struct UserRemoval {
    /// The user removed.
    pub user: String,
    /// Pending requests denied.
    pub denied: Vec<String>,
    /// Approved requests revoked.
    pub revoked: Vec<String>,
    /// Certificate serials now on the KRL.
    pub serials: Vec<u64>,
    /// Grant ids now on the revocation list.
    pub grant_ids: Vec<String>,
    /// Sequence of the revocation list that carries them.
    pub revocation_sequence: u64,
    /// Pending requests of others this user had approved: those approvals were withdrawn, so
    /// they do not count again if a user of the same name is added later.
    pub approvals_withdrawn: Vec<String>,
    /// Live requests of the user whose stored row is damaged: left as they are (their
    /// certificates were revoked all the same), each with why it does not read.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub request_problems: Vec<RequestProblem>,
}

/// A request an operator command could not read, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RequestProblem {
    /// The request id.
    pub request: String,
    /// Why its stored row does not read (which value to repair).
    pub problem: String,
}

/// What `jit-ca revoke-grant` did.
#[derive(Debug, Clone, Serialize)]
pub struct GrantRevocation {
    /// What was asked for (a grant id or a serial).
    pub target: String,
    /// The certificate serial revoked, if known.
    pub serial: Option<u64>,
    /// The grant id revoked, if known.
    pub grant_id: Option<String>,
    /// The request it belongs to, when this CA issued it.
    pub request_id: Option<String>,
    /// Whether the request itself was revoked (the target was its current certificate).
    pub request_revoked: bool,
    /// Whether this CA issued it (false: a break-glass grant or another CA's).
    pub issued_here: bool,
    /// Sequence of the revocation list that carries it.
    pub revocation_sequence: u64,
    /// Why the request could not be read (its stored row is damaged): the certificate was
    /// revoked all the same, the request was left as it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_problem: Option<String>,
}

/// Whether `e` says a stored row is damaged (as opposed to the database failing).
fn damaged_row(e: &CaError) -> bool {
    matches!(
        e,
        CaError::UnknownRequestState { .. }
            | CaError::RequestKey { .. }
            | CaError::BadStoredValue { .. }
    )
}

fn parse_target(t: &str) -> ApiResult<CertKey> {
    let t = t.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        let serial: u64 = t.parse().map_err(|_| {
            refuse(
                C::InvalidInput,
                format!("{t:?} is too large for a certificate serial"),
            )
        })?;
        // A KRL cannot list serial 0 (OpenSSH reserves it), so "revoked" would be untrue.
        if serial == 0 {
            return Err(refuse(
                C::InvalidInput,
                "serial 0 cannot be revoked: no certificate has it and a KRL cannot list it; give the grant id instead",
            ));
        }
        return Ok(CertKey::Serial(serial));
    }
    jit_common::grant::check_id("grant id", t).map_err(|e| {
        refuse(
            C::InvalidInput,
            format!(
                "{t:?} is neither a certificate serial (digits) nor a grant id ({e}); `jit-host list` on a host or `jit status` shows grant ids"
            ),
        )
    })?;
    Ok(CertKey::Grant(t.to_string()))
}

/// The reason of `revoke-grant`: one line, as every reason the CA records (no control and no
/// invisible or bidi format characters, `jit_common::text::check_line`).
fn check_reason(reason: &str) -> ApiResult<String> {
    let reason = reason.trim();
    super::check_text("reason", reason)?;
    Ok(reason.to_string())
}

/// What one checkpoint refresh did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Refresh {
    /// Signed a checkpoint of the head.
    Signed,
    /// The checkpoint already covers the head (or the trail is empty).
    Current,
    /// The trail is moving and the checkpoint is not overdue: later.
    Postponed,
}

impl Ca {
    /// `jit-ca user remove`: in one audited transaction, denies the user's pending requests,
    /// revokes their approved ones (serials to the KRL, grant ids to the revocation list, a
    /// new list signed), deletes the user and their keys, and tells a running service.
    pub fn remove_user(&self, actor: &str, name: &str) -> ApiResult<UserRemoval> {
        let now = self.now();
        let (removal, rec, published) = self.transact(|tx| {
            if !tx.user_exists(name)? {
                return Err(refuse(
                    C::NotFound,
                    format!("there is no user {name:?} (jit-ca user list shows them)"),
                ));
            }
            let live = [RequestState::Pending, RequestState::Approved];
            let (mut denied, mut revoked, mut serials, mut grant_ids) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut request_problems = Vec::new();
            for id in tx.request_ids_of(name, &live)? {
                // A damaged row (a column that does not parse) does not stop the removal (an
                // emergency tool): it is left as it is and reported, and its certificates
                // are revoked below with the user's others.
                let row = match tx.get_request(&id) {
                    Ok(row) => row,
                    Err(e) if damaged_row(&e) => {
                        request_problems.push(RequestProblem {
                            request: id,
                            problem: e.to_string(),
                        });
                        continue;
                    }
                    Err(e) => return Err(e.into()),
                };
                let Some(mut row) = row else {
                    continue;
                };
                match row.state {
                    RequestState::Pending => {
                        let why = format!("user {name} was removed");
                        lifecycle::deny(&mut row, Actor::Operator, None, actor, &why, now)?;
                        tx.update_request(&row)?;
                        denied.push(id);
                    }
                    RequestState::Approved => {
                        lifecycle::revoke(&mut row, Actor::Operator, None, actor, now)?;
                        tx.update_request(&row)?;
                        for c in tx.revoke_certs(&id)? {
                            serials.push(c.serial);
                            grant_ids.extend(c.grant_id);
                        }
                        revoked.push(id);
                    }
                    _ => {}
                }
            }
            // Every other live certificate of the user too, whatever its request's stored
            // state says (a request whose state does not parse is not found above, one
            // whose row is otherwise damaged is skipped above).
            for c in tx.revoke_user_certs(name, now)? {
                if !serials.contains(&c.serial) {
                    serials.push(c.serial);
                    grant_ids.extend(c.grant_id);
                }
            }
            let approvals_withdrawn = tx.withdraw_pending_approvals(name)?;
            tx.remove_user(name)?;
            let published = self.build_published(tx, now, true)?;
            let removal = UserRemoval {
                user: name.to_string(),
                denied,
                revoked,
                serials,
                grant_ids,
                revocation_sequence: published.revocation_sequence,
                approvals_withdrawn,
                request_problems,
            };
            let details = serde_json::to_value(&removal).map_err(ApiError::internal)?;
            let mut rec = vec![tx.append_audit(now, actor, event::USER_REMOVE, &details)?];
            // Their web sessions end with them, idle ones too, and their unused login links
            // are withdrawn (the pages check the user on every view too).
            let why = serde_json::json!({"reason": "user removed"});
            rec.extend(super::web::end_sessions(tx, name, None, now, actor, why)?);
            bump_generation(tx)?;
            Ok::<_, ApiError>((removal, rec, published))
        })?;
        super::write(&self.published, published);
        self.release_in_host_documents(removal.grant_ids.iter().map(String::as_str));
        self.log(&rec);
        self.after_issuance(None);
        Ok(removal)
    }

    /// `jit-ca revoke-grant ID|SERIAL`: revokes one grant id or certificate serial, audited.
    /// A grant or certificate this CA issued is marked revoked (and its request too when it
    /// was the request's current one, so it cannot be extended); anything else (a break-glass
    /// grant) is listed on the revocation list and KRL from now on.
    pub fn revoke_grant(
        &self,
        actor: &str,
        target: &str,
        reason: &str,
    ) -> ApiResult<GrantRevocation> {
        let now = self.now();
        let parsed = parse_target(target)?;
        let reason = check_reason(reason)?;
        let (result, rec, published) = self.transact(|tx| {
            let found = tx.find_cert(&parsed)?;
            let mut result = GrantRevocation {
                target: target.trim().to_string(),
                serial: None,
                grant_id: None,
                request_id: None,
                request_revoked: false,
                issued_here: found.is_some(),
                revocation_sequence: 0,
                request_problem: None,
            };
            match found {
                Some(cert) => {
                    if cert.revoked {
                        return Err(refuse(
                            C::InvalidState,
                            format!(
                                "{} (serial {}) is already revoked; nothing to do",
                                result.target, cert.serial
                            ),
                        ));
                    }
                    tx.revoke_cert(cert.serial)?;
                    // A request row that does not read does not stop the revocation (an
                    // emergency tool): the certificate is revoked, the problem reported.
                    let row = match tx.get_request(&cert.request_id) {
                        Ok(row) => row,
                        Err(e) if damaged_row(&e) => {
                            result.request_problem = Some(e.to_string());
                            None
                        }
                        Err(e) => return Err(e.into()),
                    };
                    if let Some(mut row) = row
                        && row.state == RequestState::Approved
                        && tx.latest_serial(&cert.request_id)? == Some(cert.serial)
                    {
                        lifecycle::revoke(&mut row, Actor::Operator, None, actor, now)?;
                        tx.update_request(&row)?;
                        tx.revoke_certs(&cert.request_id)?;
                        result.request_revoked = true;
                    }
                    result.serial = Some(cert.serial);
                    result.grant_id = cert.grant_id;
                    result.request_id = Some(cert.request_id);
                }
                None => {
                    let mut ops = operator::load(tx)?;
                    let fresh = match &parsed {
                        CertKey::Serial(s) => {
                            result.serial = Some(*s);
                            ops.serials.insert(*s)
                        }
                        CertKey::Grant(g) => {
                            result.grant_id = Some(g.clone());
                            ops.grants.insert(g.clone())
                        }
                    };
                    if !fresh {
                        return Err(refuse(
                            C::InvalidState,
                            format!("{} is already revoked; nothing to do", result.target),
                        ));
                    }
                    operator::store(tx, &ops)?;
                }
            }
            let published = self.build_published(tx, now, true)?;
            result.revocation_sequence = published.revocation_sequence;
            let mut details = serde_json::to_value(&result).map_err(ApiError::internal)?;
            if let Some(o) = details.as_object_mut() {
                o.insert("reason".into(), json!(reason));
            }
            let rec = tx.append_audit(now, actor, event::GRANT_REVOCATION, &details)?;
            // Emergency tooling alerts, in the same transaction (the notification of a
            // revoke-grant is this record's, never the grant_revocation's).
            let alert =
                super::alerting::break_glass(actor, &result.target, result.request_id.as_deref());
            let alert = tx.append_audit(now, "system", event::ALERT, &alert)?;
            bump_generation(tx)?;
            Ok::<_, ApiError>((result, [rec, alert], published))
        })?;
        super::write(&self.published, published);
        self.release_in_host_documents(result.grant_id.as_deref());
        self.stats.revocations.fetch_add(1, Ordering::Relaxed);
        self.log(&rec);
        self.after_issuance(None);
        Ok(result)
    }

    /// Reloads what the service keeps in memory if an operator command changed the data
    /// directory since the last look (see the module docs). Returns whether it did. The
    /// server calls this every second.
    pub fn pick_up_external_changes(&self) -> Result<bool, CaError> {
        let now = self.now();
        let g = self.read_db(generation)?;
        if g == self.external.seen.load(Ordering::SeqCst) {
            return Ok(false);
        }
        self.pick_up_stored(now)?;
        self.refresh_grants(now)?;
        self.external.seen.store(g, Ordering::SeqCst);
        lock(&self.syslog).log(
            Severity::Info,
            &format!(
                "picked up an operator change (generation {g}); revocation list #{}",
                self.published().revocation_sequence
            ),
        );
        Ok(true)
    }

    /// Signs a new audit checkpoint when the trail moved (debounced; see the module docs).
    /// Returns whether it signed one. The server calls this every second. A failure is an
    /// `alert` (kind `checkpoint_failure`), at once and then once an hour while it lasts.
    pub fn refresh_checkpoint(&self) -> Result<bool, CaError> {
        let now = self.now();
        let r = self.try_refresh_checkpoint(now);
        // Only a signed checkpoint, or one that already covers the head, ends a failure: a
        // refresh postponed while the trail moves signed nothing.
        let outcome = match &r {
            Ok(Refresh::Signed | Refresh::Current) => Ok(true),
            Ok(Refresh::Postponed) => Ok(false),
            Err(e) => Err(e.to_string()),
        };
        self.checkpoint_outcome(now, outcome);
        r.map(|done| done == Refresh::Signed)
    }

    fn try_refresh_checkpoint(&self, now: u64) -> Result<Refresh, CaError> {
        let Some(head) = self.read_db(|c| c.audit_head())? else {
            return Ok(Refresh::Current);
        };
        let current = self.checkpoint();
        if current
            .as_ref()
            .is_some_and(|c| c.1.seq == head.0 && c.1.hash == head.1)
        {
            return Ok(Refresh::Current);
        }
        let quiet = {
            let mut observed = lock(&self.external.observed);
            let quiet = observed.as_ref() == Some(&head);
            *observed = Some(head.clone());
            quiet
        };
        let overdue = current
            .as_ref()
            .is_none_or(|c| now.saturating_sub(c.1.time) >= CHECKPOINT_MAX_LAG);
        if !quiet && !overdue {
            return Ok(Refresh::Postponed);
        }
        self.sign_checkpoint(head.0, &head.1, now)?;
        Ok(Refresh::Signed)
    }

    /// Signs and publishes a checkpoint of record `seq` with `hash` now.
    fn sign_checkpoint(&self, seq: u64, hash: &str, now: u64) -> Result<(), CaError> {
        let doc = Checkpoint::sign(seq, hash, now, self.signer.grant_key()).map_err(|e| {
            CaError::Publish {
                what: "audit checkpoint",
                source: e.into(),
            }
        })?;
        let claims = Checkpoint {
            version: crate::audit::checkpoint::VERSION,
            seq,
            hash: hash.to_string(),
            time: now,
            key_id: jit_common::keys::fingerprint(self.signer.grant_key().public_key()),
        };
        let (severity, line) = crate::audit::checkpoint_line(&claims, &doc);
        lock(&self.syslog).log(severity, &line);
        *self
            .external
            .checkpoint
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) =
            Some(Arc::new((Doc::new(doc), claims)));
        Ok(())
    }

    /// The latest signed audit checkpoint (document and claims), if one was made.
    pub fn checkpoint(&self) -> Option<Arc<(Doc, Checkpoint)>> {
        self.external
            .checkpoint
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// `GET /v1/audit/checkpoint`.
    pub fn checkpoint_doc(&self) -> ApiResult<Doc> {
        self.checkpoint().map(|c| c.0.clone()).ok_or_else(|| {
            ApiError::new(
                C::Unavailable,
                "no audit checkpoint has been signed yet (the service signs one within a few seconds of starting); retry shortly",
            )
        })
    }
}

//! Housekeeping the server runs on a timer: expiry of overdue requests and ended windows,
//! forgetting old nonces, re-signing the revocation list, and policy reloads.

use serde_json::json;

use super::{ApiResult, Ca, NONCE_KEEP_SECS, write};
use crate::audit::{Record, event};
use crate::config::Config;
use crate::error::CaError;
use crate::policy::Policy;
use crate::store::StoreOps;
use crate::store::postgres::Job;

/// Most requests one sweep job expires (or reminds): each job is one change in the group
/// commit, so a long run of expiries (tens of thousands ending in the same minute) holds
/// neither the writer nor memory for longer than one batch. Issuance queued behind a batch
/// waits for it: measured at about 0.3 ms per expiry (its audit record and outbox row) on a
/// loaded 2-core machine, 500 held the writer about 145 ms; 100 keeps that near 30 ms.
pub(crate) const SWEEP_BATCH: usize = 100;

/// Expires at most `limit` due requests and audits each: (expired, records, whether the
/// batch was full, so more may be due).
fn expire_batch(
    tx: &dyn StoreOps,
    now: u64,
    limit: usize,
) -> ApiResult<(usize, Vec<Record>, bool)> {
    let due = tx.due_ids_for_expiry(now, limit)?;
    let mut records = Vec::with_capacity(due.len());
    for (id, was) in &due {
        if tx.expire_request(id, *was)? {
            records.push(tx.append_audit(
                now,
                "system",
                event::EXPIRY,
                &json!({"request_id": id, "was": was.as_str()}),
            )?);
        }
    }
    Ok((records.len(), records, due.len() >= limit))
}

/// Reminds at most `limit` requests of their window's end: (how many, records).
fn remind_batch(
    tx: &dyn StoreOps,
    now: u64,
    within: u64,
    limit: usize,
) -> ApiResult<(usize, Vec<Record>)> {
    let due = tx.due_reminders(now, within, limit)?;
    let mut records = Vec::with_capacity(due.len());
    for (id, until) in &due {
        tx.set_reminded(id, *until)?;
        records.push(tx.append_audit(
            now,
            "system",
            event::EXPIRY_REMINDER,
            &json!({"request_id": id, "valid_before": until,
                    "ends_in_secs": until.saturating_sub(now)}),
        )?);
    }
    Ok((due.len(), records))
}

impl Ca {
    /// Expires overdue pending requests and ended windows, reminds active elevations that
    /// end within `expiry_reminder` (once per window end), forgets old nonces, prunes the
    /// notification outbox (`StoreOps::notify_prune`) and web login links and sessions
    /// ended a day ago (`StoreOps::web_prune`), and re-signs
    /// the revocation list when `revocation_refresh` has passed. Returns how many requests
    /// expired.
    ///
    /// With several replicas on PostgreSQL the transaction and the periodic re-sign run on
    /// the sweep's leader only ([`Ca::leads`]); every replica keeps its own caches current
    /// (nonces in memory, the grant snapshot, a revocation list stored by another).
    pub fn sweep(&self) -> Result<usize, CaError> {
        let now = self.now();
        let leader = self.leads(Job::Sweep);
        let n = if leader {
            self.sweep_as_leader(now)?
        } else {
            0
        };
        self.backend
            .expire_nonces(now.saturating_sub(NONCE_KEEP_SECS));
        if n > 0 {
            self.after_issuance(None);
        }
        // Keeps the host-document budget close to the database (revoked and ended grants
        // stop counting) even when no host fetches its document.
        let _ = self.refresh_grants_if_dirty(now);
        let p = self.published();
        let stored_sequence =
            self.read_db(|c| crate::store::meta_counter(c, "revocation_sequence"))?;
        if stored_sequence > p.revocation_sequence && !self.known_unverified(stored_sequence) {
            // Revoked by an operator on the data directory (`jit-ca revoke`), or by another
            // replica.
            self.pick_up_stored(now)?;
            self.refresh_grants(now)?;
        } else if leader
            && now.saturating_sub(p.revocation_issued_at) >= self.config.revocation_refresh_secs
        {
            self.republish(now, true)?;
        }
        Ok(n)
    }

    /// The sweep's changes: expiry, reminders, pruning, each in bounded jobs through the
    /// group commit (issuance interleaves with a long run of expiries, and no more than
    /// [`SWEEP_BATCH`] requests are loaded or audited at once). Returns how many expired.
    fn sweep_as_leader(&self, now: u64) -> Result<usize, CaError> {
        let started = std::time::Instant::now();
        let mut expired = 0usize;
        let mut batches = 0usize;
        loop {
            let (n, records, full) = self
                .write(move |tx| expire_batch(tx, now, SWEEP_BATCH))
                .map_err(|source| CaError::NotWritten {
                    what: "expiries",
                    source,
                })?;
            self.log(&records);
            expired += n;
            batches += 1;
            // A short batch was the last; a full one that expired nothing cannot make
            // progress (only a concurrent change could cause it): the next sweep retries.
            if !full || n == 0 {
                break;
            }
        }
        // One reminder per window end (an extension's new end gets its own).
        let reminder = self.config.expiry_reminder_secs;
        if reminder > 0 {
            loop {
                let (n, records) = self
                    .write(move |tx| remind_batch(tx, now, reminder, SWEEP_BATCH))
                    .map_err(|source| CaError::NotWritten {
                        what: "expiry reminders",
                        source,
                    })?;
                self.log(&records);
                if n < SWEEP_BATCH {
                    break;
                }
            }
        }
        let nonce_cutoff = self.backend.stored_nonce_cutoff(now);
        self.write(move |tx| {
            tx.expire_nonces(nonce_cutoff)?;
            tx.notify_prune(now)?;
            tx.web_prune(now.saturating_sub(super::web::PRUNE_AFTER_SECS))?;
            Ok(())
        })
        .map_err(|source| CaError::NotWritten {
            what: "the sweep's pruning",
            source,
        })?;
        if expired > 0 {
            jit_common::errln!(
                "jit-ca: sweep: expired {expired} requests in {batches} batches, {} ms",
                started.elapsed().as_millis()
            );
        }
        Ok(expired)
    }

    /// Re-reads policy.toml. A bad file is rejected (and audited) and the old policy kept.
    pub fn reload_policy(&self) -> Result<(), CaError> {
        let now = self.now();
        match load_policy(&self.config) {
            Ok(p) => {
                let roles: Vec<&String> = p.roles.keys().collect();
                let details = json!({"ok": true, "roles": roles});
                write(&self.policy, p);
                self.note_policy_loaded();
                self.audit_at(now, "system", event::POLICY_RELOAD, details)?;
                Ok(())
            }
            Err(e) => {
                self.audit_at(
                    now,
                    "system",
                    event::POLICY_RELOAD,
                    json!({"ok": false, "error": e.to_string()}),
                )?;
                Err(e)
            }
        }
    }
}

/// Loads and validates the policy file.
pub fn load_policy(config: &Config) -> Result<Policy, CaError> {
    let path = config.policy_path();
    let text = crate::files::read_trusted(&path, crate::config::MAX_CONFIG_SIZE)?;
    let mut policy = Policy::parse(&text).map_err(|problems| CaError::Config {
        path: path.clone(),
        problems,
    })?;
    policy
        .load_webhook_files(&config.dir)
        .map_err(|problems| CaError::Config { path, problems })?;
    Ok(policy)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::store::sqlite::Store;
    use jit_api::wire::RequestState;

    /// Stores `n` pending requests whose expiry (at 100 + k) has passed by 10,000.
    fn pending(c: &dyn StoreOps, n: usize) {
        for k in 0..n {
            let r = crate::store::RequestRow {
                id: format!("r-{k:05}"),
                user: "alice".into(),
                role: "db".into(),
                reason: "r".into(),
                duration_secs: 60,
                hosts: vec!["db-*".into()],
                principals: vec!["alice".into()],
                sudo: true,
                public_key: ssh_key::PublicKey::from(ssh_key::public::KeyData::from(
                    ssh_key::public::Ed25519PublicKey([3; 32]),
                )),
                created_at: 0,
                pending_expires_at: 100 + k as u64,
                approvals_required: 1,
                state: RequestState::Pending,
                denied_by: None,
                denial_reason: None,
                approved_at: None,
                revoked_at: None,
                revoked_by: None,
                approval_basis: None,
                approved_until: None,
                ticket: None,
                not_before: None,
                revocation_reason: None,
                cancelled_at: None,
                cancel_reason: None,
                denied_at: None,
                session_bound: false,
            };
            c.insert_request(&r).unwrap();
        }
    }

    #[test]
    fn one_batch_expires_and_audits_at_most_its_bound_and_the_loop_ends_on_a_short_one() {
        let s = Store::open_in_memory().unwrap();
        let c = s.conn();
        pending(c, 1_234);
        let mut order = Vec::new();
        let mut batches = Vec::new();
        loop {
            let (n, records, full) = expire_batch(c, 10_000, 500).unwrap();
            assert!(n <= 500);
            assert_eq!(records.len(), n, "one audit record per expiry");
            for r in &records {
                assert_eq!(r.event, "expiry");
                let d: serde_json::Value = serde_json::from_str(&r.details).unwrap();
                assert_eq!(d["was"], "pending");
                order.push(d["request_id"].as_str().unwrap().to_string());
            }
            batches.push(n);
            if !full {
                break;
            }
        }
        assert_eq!(batches, [500, 500, 234]);
        let want: Vec<String> = (0..1_234).map(|k| format!("r-{k:05}")).collect();
        assert_eq!(order, want, "each once, in the order they became due");
        assert_eq!(expire_batch(c, 10_000, 500).unwrap().0, 0);
        assert_eq!(
            c.get_request("r-00042").unwrap().unwrap().state,
            RequestState::Expired
        );
    }
}

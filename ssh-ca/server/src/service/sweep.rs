//! Housekeeping the server runs on a timer: expiry of overdue requests and ended windows,
//! forgetting old nonces, re-signing the revocation list, and policy reloads.

use serde_json::json;

use super::{Ca, NONCE_KEEP_SECS, lifecycle, write};
use crate::audit::event;
use crate::config::Config;
use crate::error::CaError;
use crate::policy::Policy;
use crate::store::postgres::Job;

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

    /// The sweep's transaction: expiry, reminders, pruning. Returns how many expired.
    fn sweep_as_leader(&self, now: u64) -> Result<usize, CaError> {
        let reminder = self.config.expiry_reminder_secs;
        let (n, records) = self.transact(|tx| {
            let due = tx.due_for_expiry(now)?;
            let mut records = Vec::with_capacity(due.len());
            for mut row in due.iter().cloned() {
                let was = lifecycle::expire(&mut row);
                tx.update_request(&row)?;
                records.push(tx.append_audit(
                    now,
                    "system",
                    event::EXPIRY,
                    &json!({"request_id": row.id, "was": was.as_str()}),
                )?);
            }
            // One reminder per window end (an extension's new end gets its own).
            if reminder > 0 {
                for (id, until) in tx.due_for_reminder(now, reminder)? {
                    tx.set_reminded(&id, until)?;
                    records.push(tx.append_audit(
                        now,
                        "system",
                        event::EXPIRY_REMINDER,
                        &json!({"request_id": id, "valid_before": until,
                                "ends_in_secs": until.saturating_sub(now)}),
                    )?);
                }
            }
            tx.expire_nonces(self.backend.stored_nonce_cutoff(now))?;
            tx.notify_prune(now)?;
            tx.web_prune(now.saturating_sub(super::web::PRUNE_AFTER_SECS))?;
            Ok::<_, CaError>((due.len(), records))
        })?;
        self.log(&records);
        Ok(n)
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

//! Housekeeping the server runs on a timer: expiry of overdue requests and ended windows,
//! forgetting old nonces, re-signing the revocation list, and policy reloads.

use serde_json::json;

use super::{Ca, NONCE_KEEP_SECS, lifecycle, write};
use crate::audit::event;
use crate::config::Config;
use crate::error::CaError;
use crate::policy::Policy;

impl Ca {
    /// Expires overdue pending requests and ended windows, forgets old nonces, and re-signs
    /// the revocation list when `revocation_refresh` has passed.
    pub fn sweep(&self) -> Result<usize, CaError> {
        let now = self.now();
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
            tx.expire_nonces(now.saturating_sub(NONCE_KEEP_SECS))?;
            Ok::<_, CaError>((due.len(), records))
        })?;
        self.nonces.expire(now.saturating_sub(NONCE_KEEP_SECS));
        self.log(&records);
        if n > 0 {
            self.after_issuance();
        }
        // Keeps the host-document budget close to the database (revoked and ended grants
        // stop counting) even when no host fetches its document.
        let _ = self.refresh_grants_if_dirty(now);
        let p = self.published();
        let stored_sequence =
            self.read_db(|c| crate::store::meta_counter(c, "revocation_sequence"))?;
        if stored_sequence > p.revocation_sequence {
            // Revoked by an operator on the data directory (`jit-ca revoke`).
            self.republish(now, false)?;
            self.refresh_grants(now)?;
        } else if now.saturating_sub(p.revocation_issued_at) >= self.config.revocation_refresh_secs
        {
            self.republish(now, true)?;
        }
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

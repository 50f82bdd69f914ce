//! Issuance: serials and signing. A certificate and its grant are signed here (the CPU
//! part, no storage), under a serial reserved in the request's transaction or from a block
//! reserved in advance (the auto-approval fast path).

use std::sync::atomic::Ordering;

use serde_json::json;

use jit_common::{Approval, Grant, SignedGrant};

use super::{ApiResult, Ca, SERIAL_BLOCK, lifecycle, lock, refuse};
use crate::audit::{Record, event};
use crate::error::ApiError;
use crate::policy::Role;
use crate::signer::CertSpec;
use crate::store::{CertRow, RequestRow, StoreOps};
use jit_api::wire::{ErrorCode as C, RequestState};

impl Ca {
    /// The next serial of the issuance fast path (reserving a block when needed).
    pub(super) fn next_serial(&self) -> ApiResult<u64> {
        let mut s = lock(&self.serials);
        if s.0 < s.1 {
            let v = s.0;
            s.0 += 1;
            return Ok(v);
        }
        let first = self.write(|c| Ok(c.reserve_serial_block(SERIAL_BLOCK)?))?;
        *s = (first + 1, first + SERIAL_BLOCK);
        Ok(first)
    }

    /// Issues a certificate (and grant) for an approved request inside `tx`; sets the
    /// request approved. `extend_to` keeps the approval time and sets a new end. `approvers`
    /// go into the grant; `extra` into the audit record.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn issue(
        &self,
        tx: &dyn StoreOps,
        row: &mut RequestRow,
        role: &Role,
        now: u64,
        extend_to: Option<u64>,
        approvers: Vec<Approval>,
        extra: serde_json::Value,
    ) -> ApiResult<Record> {
        row.approved_at.get_or_insert(now);
        row.state = RequestState::Approved;
        // Binding only narrows a grant: a role that binds its grants now binds this one
        // (also a request made before), and a request made bound stays bound (extensions).
        row.session_bound = binds(row, role);
        let serial = tx.reserve_serial(&row.id, &row.user, now)?;
        let key_fp = lifecycle::fingerprint(&row.public_key);
        let (cert, mut details) =
            self.sign_issue(row, role, serial, approvers, now, extend_to, key_fp)?;
        add_details(&mut details, lifecycle::approval_details(row));
        add_details(&mut details, extra);
        tx.complete_cert(&cert)?;
        tx.update_request(row)?;
        self.stats.issuances.fetch_add(1, Ordering::Relaxed);
        let ev = if extend_to.is_some() {
            event::EXTENSION
        } else {
            event::ISSUANCE
        };
        Ok(tx.append_audit(now, &row.user, ev, &details)?)
    }

    /// Signs the certificate (and grant) of an approved request under `serial`: the CPU part
    /// of an issuance, with no database access. Returns the row to store and the audit
    /// details. `key_fp` is `lifecycle::fingerprint(&row.public_key)` (the caller often has
    /// it already).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn sign_issue(
        &self,
        row: &RequestRow,
        role: &Role,
        serial: u64,
        approvers: Vec<Approval>,
        now: u64,
        extend_to: Option<u64>,
        key_fp: String,
    ) -> ApiResult<(CertRow, serde_json::Value)> {
        let approved_at = row.approved_at.unwrap_or(now);
        let start = lifecycle::window_start(row, approved_at);
        let valid_before = extend_to.unwrap_or(start.saturating_add(row.duration_secs));
        // A later window (`--start`) is valid from its start, not before; approved after
        // its start, from now (backdated for clock skew) but never before the start.
        let valid_after = match row.not_before {
            Some(s) => s.max(now.saturating_sub(self.config.backdate_secs)),
            None => now.saturating_sub(self.config.backdate_secs),
        };
        let key_id = format!("jit:{}:{}", row.id, row.user);
        // Every certificate carries its scope (hosts, sudo or not) as a CA-signed grant:
        // hosts refuse a certificate without one (issue 11, item 1).
        let (grant_id, grant) = self.sign_grant(
            row,
            binds(row, role),
            serial,
            approvers,
            (valid_after, valid_before),
            now,
        )?;
        self.reserve_in_host_documents(row, &grant_id, grant.doc(), valid_before, now)?;
        let certificate = self
            .signer
            .certify(&CertSpec {
                public_key: &row.public_key,
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
                "ca_key": self.signer.ca_key().fingerprint(),
                "key": key_fp});
        let mut details = details;
        if let Some(t) = &row.ticket {
            add_details(&mut details, json!({"ticket": t}));
        }
        if binds(row, role) {
            add_details(&mut details, json!({"session_bound": true}));
        }
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

    /// Signs the grant of `row` for the window `(not_before, not_after)` with the checks the
    /// hosts' parser makes (`Signed::sign_as`: the claims' `check`, the size cap and the
    /// signature marker on the signed bytes; a property test ties it to `parse`): a grant a
    /// host would refuse (too large, too many host selectors, a field `Grant::validate`
    /// rejects) is refused here with
    /// `grant_not_acceptable` instead of being issued. Returns the grant id and the grant.
    fn sign_grant(
        &self,
        row: &RequestRow,
        session_bound: bool,
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
            ticket: row.ticket.clone(),
            cert_serial: Some(serial),
            session_bound,
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
    pub(super) fn check_grant_fits(
        &self,
        row: &RequestRow,
        role: &Role,
        now: u64,
    ) -> ApiResult<()> {
        let approvers = (0..role.approvals.max(1))
            .map(|_| Approval {
                user: "a".repeat(32),
                at: row.pending_expires_at.into(),
            })
            .collect();
        let end = now.saturating_add(row.duration_secs).saturating_add(1);
        self.sign_grant(row, binds(row, role), u64::MAX, approvers, (now, end), now)
            .map(|_| ())
    }
}

/// Whether the grant of `row` issued under `role` (as it is now) is session-bound: a grant
/// with sudo whose request's snapshot or role's current `session_bound` says so. A policy
/// change can bind the grants of pending and approved requests, never unbind them. A grant
/// without sudo is never bound: a binding limits only sudo, and hosts older than session
/// binding refuse a grant that carries `"session_bound": true` (the login would fail there).
pub(super) fn binds(row: &RequestRow, role: &Role) -> bool {
    row.sudo && (row.session_bound || role.session_bound)
}

/// Whether `row` is session-bound by its own snapshot alone (its role left the policy, or
/// it can no longer be issued): the same rule as [`binds`] without the role.
pub(super) fn binds_snapshot(row: &RequestRow) -> bool {
    row.sudo && row.session_bound
}

/// Refuses when `user` already has `max` active grants (`max_active_grants_per_user`).
pub(super) fn check_active_grants(
    c: &dyn StoreOps,
    user: &str,
    now: u64,
    max: u64,
) -> ApiResult<()> {
    let n = c.active_grant_count(user, now)?;
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

/// Refuses a new pending request of `user` for `role` when one is already pending for that
/// role (naming its id), or when `user` already has `max` pending requests
/// (`max_pending_requests_per_user`). Expired ones the sweeper has not recorded yet do not
/// count.
pub(super) fn check_pending_requests(
    c: &dyn StoreOps,
    user: &str,
    role: &str,
    now: u64,
    max: u64,
) -> ApiResult<()> {
    let pending = c.pending_requests_of(user, now)?;
    if let Some((id, _)) = pending.iter().find(|(_, r)| r == role) {
        return Err(refuse(
            C::DuplicatePendingRequest,
            format!(
                "you already have request {id} pending for role {role:?}; wait for it (jit show \
                 {id}), or withdraw it first (jit cancel {id})"
            ),
        ));
    }
    let n = pending.len() as u64;
    if n >= max {
        let ids: Vec<&str> = pending.iter().map(|(id, _)| id.as_str()).collect();
        return Err(refuse(
            C::TooManyPendingRequests,
            format!(
                "{user} already has {n} pending request(s) ({}), the most \
                 max_pending_requests_per_user in the CA's config.toml allows ({max}); cancel \
                 one that is no longer needed (jit cancel ID) or wait until one is decided",
                ids.join(", ")
            ),
        ));
    }
    Ok(())
}

/// Adds the fields of `extra` (an object) to `details` (an object).
pub(super) fn add_details(details: &mut serde_json::Value, extra: serde_json::Value) {
    if let (Some(d), serde_json::Value::Object(e)) = (details.as_object_mut(), extra) {
        d.extend(e);
    }
}

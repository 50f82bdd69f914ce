//! `POST /v1/requests`: admission (pure, `lifecycle::admit`), the authorizing webhook of the
//! chosen auto-approval rule (outside any transaction, `gate`), then one group-commit write:
//! the request pending, or approved and issued at once.

use std::sync::atomic::Ordering;

use serde_json::json;

use jit_common::Approval;

use super::issue::{add_details, check_active_grants, check_pending_requests};
use super::lifecycle;
use super::requests::view;
use super::{ApiResult, Ca, Caller, new_id};
use crate::audit::event;
use crate::policy::{AutoApproval, Role};
use crate::store::RequestRow;
use jit_api::wire::{ApprovalView, CreateRequest, IssuedView, RequestView};

impl Ca {
    /// `POST /v1/requests`.
    pub fn create_request(&self, caller: &Caller, req: &CreateRequest) -> ApiResult<RequestView> {
        let now = self.now();
        // Every authenticated attempt counts toward a request burst, stored or refused: a
        // script or a stolen key looping on `jit request` is mostly refused (one pending
        // request per role, the per-user bounds, roles it may not request).
        self.alert_request(now, &caller.user);
        // One policy snapshot for admission and for the webhook its rule names.
        let policy = self.policy();
        let role = policy.role(&req.role).cloned();
        let near = if role.is_none() {
            policy.close_matches(&req.role, &caller.user, &caller.groups)
        } else {
            Vec::new()
        };
        let lifecycle::Admitted {
            mut row,
            role,
            mut auto,
            mut auto_misses,
        } = lifecycle::admit(
            caller,
            req,
            role,
            &near,
            new_id(now),
            self.config.pending_expiry_secs,
            self.config.max_start_ahead_secs,
            now,
        )?;
        if auto.as_ref().is_some_and(|a| a.webhook.is_some()) {
            self.check_before_asking(&row, &role, now)?;
        }
        let asked = self.ask_authorizing_webhook(caller, &policy, &role, &mut row, &mut auto);
        if let Some(a) = asked.as_ref().filter(|a| !a.approves()) {
            // The rule's conditions held but its webhook did not say yes: humans decide.
            auto_misses.push((a.rule.clone(), a.why_not()));
        }
        let webhook_record = asked.map(|a| super::gate::record_of(&a, &row.id));
        let kept = webhook_record.clone();
        self.store_new_request(caller, row, role, auto, auto_misses, webhook_record, now)
            .inspect_err(|_| self.audit_unstored_answer(now, kept))
    }

    /// Before a webhook is asked about `row`: the refusals that need no answer, on a read
    /// connection, so that a request refused anyway (a duplicate pending request, the
    /// per-user bounds, a grant hosts would refuse) never reaches the webhook (a call is up
    /// to 10 s of a blocking thread, an audit record, and maybe a page at the receiver). A
    /// request whose rule asks a webhook becomes pending on anything but a yes, so it must
    /// be acceptable as a pending request. The write checks again (races).
    fn check_before_asking(&self, row: &RequestRow, role: &Role, now: u64) -> ApiResult<()> {
        let max_grants = self.config.max_active_grants_per_user;
        let max_pending = self.config.max_pending_requests_per_user;
        self.read_db(|c| {
            check_active_grants(c, &row.user, now, max_grants)?;
            check_pending_requests(c, &row.user, &row.role, now, max_pending)
        })?;
        self.check_grant_fits(row, role, now)
    }

    /// The second half of `create_request`: signs at once when `auto` approved it, and
    /// stores the request with its records (the webhook's answer after the request's).
    #[allow(clippy::too_many_arguments)]
    fn store_new_request(
        &self,
        caller: &Caller,
        row: RequestRow,
        role: Role,
        auto: Option<AutoApproval>,
        auto_misses: Vec<(String, String)>,
        webhook_record: Option<super::gate::WebhookRecord>,
        now: u64,
    ) -> ApiResult<RequestView> {
        let key_fp = lifecycle::fingerprint(&row.public_key);
        let mut request_details = json!({"request_id": row.id, "role": row.role, "duration_secs": row.duration_secs,
                "hosts": row.hosts, "principals": row.principals, "reason": row.reason,
                "key": key_fp});
        if let Some(t) = &row.ticket {
            add_details(&mut request_details, json!({"ticket": t}));
        }
        if row.session_bound {
            add_details(&mut request_details, json!({"session_bound": true}));
        }
        if auto.is_none() && !auto_misses.is_empty() {
            // Why no auto-approval rule applied (each rule's first unmet condition).
            let misses: Vec<_> = auto_misses
                .iter()
                .map(|(rule, why)| json!({"rule": rule, "why": why}))
                .collect();
            add_details(
                &mut request_details,
                json!({"auto_rules_not_applied": misses}),
            );
        }
        if let Some(start) = row.not_before {
            add_details(
                &mut request_details,
                json!({"start": start, "pending_expires_at": row.pending_expires_at}),
            );
        }
        let requester = caller.user.clone();
        // The key that signed the call, checked again in the write: an operator may remove
        // the user or the key while an authorizing webhook is being asked (up to 10 s).
        let signer = caller.proof.as_ref().map(|p| p.key.clone());
        let max_grants = self.config.max_active_grants_per_user;
        let max_pending = self.config.max_pending_requests_per_user;
        let Some(auto) = auto else {
            self.check_grant_fits(&row, &role, now)?;
            let (view, records) = self.write(move |c| {
                check_still_registered(c, &row.user, signer.as_deref())?;
                check_active_grants(c, &row.user, now, max_grants)?;
                check_pending_requests(c, &row.user, &row.role, now, max_pending)?;
                c.insert_request(&row)?;
                let mut records =
                    vec![c.append_audit(now, &requester, event::REQUEST, &request_details)?];
                if let Some((actor, ev, details)) = &webhook_record {
                    records.push(c.append_audit(now, actor, ev, details)?);
                }
                Ok((view(c, Some(&role), &row, now)?, records))
            })?;
            self.log(&records);
            return Ok(view);
        };
        // Approved at once: sign here, in parallel with other callers, under a serial
        // reserved in advance; only the inserts go through the group commit.
        let serial = self.next_serial()?;
        let approvers = vec![Approval {
            user: auto.approver.clone(),
            at: now.into(),
        }];
        let (cert, mut issue_details) =
            self.sign_issue(&row, &role, serial, approvers, now, None, key_fp)?;
        add_details(&mut issue_details, lifecycle::approval_details(&row));
        let issued = IssuedView {
            request_id: row.id.clone(),
            certificate: cert.certificate.clone(),
            serial,
            valid_after: cert.valid_after,
            valid_before: cert.valid_before,
            grant: cert.grant_doc.clone(),
        };
        let reserved = cert.grant_id.clone();
        let added = super::publish::ActiveGrantAdded::of(&cert);
        let written = self.write(move |c| {
            check_still_registered(c, &row.user, signer.as_deref())?;
            check_active_grants(c, &row.user, now, max_grants)?;
            c.insert_request(&row)?;
            let mut records = Vec::with_capacity(3);
            records.push(c.append_audit(now, &requester, event::REQUEST, &request_details)?);
            let mut approval = json!({"request_id": row.id, "automatic": true, "rule": auto.rule,
                    "conditions": auto.conditions});
            if let Some((actor, ev, details)) = &webhook_record {
                records.push(c.append_audit(now, actor, ev, details)?);
                add_details(
                    &mut approval,
                    json!({"webhook": details["webhook"], "webhook_id": details["webhook_id"]}),
                );
            }
            c.add_approval(&row.id, &auto.approver, now, 0)?;
            records.push(c.append_audit(now, &auto.approver, event::APPROVAL, &approval)?);
            c.insert_cert(&cert)?;
            records.push(c.append_audit(now, &row.user, event::ISSUANCE, &issue_details)?);
            // Everything the view shows was just written: no need to read it back.
            let approvals = vec![ApprovalView {
                user: auto.approver,
                at: now,
            }];
            Ok((
                lifecycle::view_of(&row, Some(&role), approvals, Some(&cert), now),
                records,
            ))
        });
        let (mut view, records) = written.inspect_err(|_| {
            // Not stored (e.g. too_many_active_grants): the grant must not keep counting.
            self.release_in_host_documents(reserved.as_deref());
        })?;
        self.stats.issuances.fetch_add(1, Ordering::Relaxed);
        self.log(&records);
        self.after_issuance(added);
        view.issued = Some(issued);
        Ok(view)
    }
}

/// Refuses (`unknown_key`) when `user` or the key that signed the call (`signer`, when the
/// call was signed) is no longer registered: checked in the same write that stores the
/// request, so a removal that happened after authentication (while a webhook was asked)
/// wins.
fn check_still_registered(
    c: &dyn crate::store::StoreOps,
    user: &str,
    signer: Option<&str>,
) -> ApiResult<()> {
    let gone = || {
        super::refuse(
            jit_api::wire::ErrorCode::UnknownKey,
            format!(
                "{user} or the key that signed this request was removed while it was being \
                 decided; nothing was stored"
            ),
        )
    };
    // One query: a key's owner is read through a join with `users`, so a key found
    // registered to `user` means `user` exists too.
    let registered = match signer {
        Some(key) => c
            .user_by_key(key)?
            .is_some_and(|(owner, _, _)| owner == user),
        None => c.user_exists(user)?,
    };
    if !registered {
        return Err(gone());
    }
    Ok(())
}

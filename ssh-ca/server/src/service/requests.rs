//! The request operations of the API: each reads the clock once, loads what it decides
//! on, lets the pure `lifecycle` decide, and stores the outcome with its audit record in
//! one transaction (the group commit for new requests, [`Ca::transact`] for the rest).

use std::sync::atomic::Ordering;

use serde_json::json;

use jit_common::Approval;

use super::issue::add_details;
use super::lifecycle::{self, Action, Actor};
use super::{ApiResult, Ca, Caller, check_text, refuse, write};
use crate::audit::event;
use crate::error::ApiError;
use crate::policy::{Policy, Role};
use crate::store::{ListQuery, RequestRow, StoreOps};
use jit_api::wire::{
    AutoApprovalView, ErrorCode as C, IssuedView, RequestList, RequestView, RoleView, RolesView,
    WhoamiView,
};

/// Most requests returned by a list call.
const LIST_LIMIT: u32 = 500;

/// Loads a request or refuses with `not_found`.
pub(super) fn load(c: &dyn StoreOps, id: &str) -> ApiResult<RequestRow> {
    c.get_request(id)?
        .ok_or_else(|| refuse(C::NotFound, format!("no request {id:?}")))
}

/// The view of one request, with its approvals and newest certificate.
/// `role` is the request's role as the policy has it now (what a pending request will be
/// issued under).
pub(super) fn view(
    c: &dyn StoreOps,
    role: Option<&Role>,
    row: &RequestRow,
    now: u64,
) -> ApiResult<RequestView> {
    let approvals = c.approvals(&row.id)?;
    let cert = if row.approved_at.is_some() {
        c.latest_cert(&row.id)?
    } else {
        None
    };
    Ok(lifecycle::view_of(row, role, approvals, cert.as_ref(), now))
}

/// The views of a page of requests: their approvals and newest certificates in one query
/// each, not one per request.
fn views(
    c: &dyn StoreOps,
    policy: &Policy,
    rows: &[RequestRow],
    now: u64,
) -> ApiResult<Vec<RequestView>> {
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    let approved: Vec<&str> = rows
        .iter()
        .filter(|r| r.approved_at.is_some())
        .map(|r| r.id.as_str())
        .collect();
    let mut approvals = c.approvals_of(&ids)?;
    let certs = c.latest_certs_of(&approved)?;
    Ok(rows
        .iter()
        .map(|r| {
            let a = approvals.remove(&r.id).unwrap_or_default();
            lifecycle::view_of(r, policy.role(&r.role), a, certs.get(&r.id), now)
        })
        .collect())
}

/// The auto-approval rules of `role` that apply to `caller`, with their conditions;
/// `auto_approve = true` is one rule named after the role, up to `max_duration`.
fn auto_views(role: &Role, caller: &Caller) -> Vec<AutoApprovalView> {
    if role.auto_approve {
        return vec![AutoApprovalView {
            rule: format!("auto:{}", role.name),
            max_duration_secs: role.max_duration_secs,
            hosts: Vec::new(),
            schedule: Vec::new(),
            ticket_pattern: None,
            webhook: None,
        }];
    }
    role.auto_rules_for(&caller.user, &caller.groups)
        .map(|r| AutoApprovalView {
            rule: format!("auto:{}", r.name),
            max_duration_secs: r.max_duration_secs,
            hosts: r.hosts.clone(),
            schedule: r
                .schedule
                .as_ref()
                .map(|s| s.spellings())
                .unwrap_or_default(),
            ticket_pattern: r.ticket_pattern.as_ref().map(|p| p.as_str().to_string()),
            webhook: r.webhook.clone(),
        })
        .collect()
}

/// A decision's record details, with `"session": ID` and `"key": FINGERPRINT` (the key that
/// established the session) when it was made from a web session.
fn with_session(mut details: serde_json::Value, caller: &Caller) -> serde_json::Value {
    if let Some(s) = &caller.session {
        add_details(
            &mut details,
            json!({"session": s, "key": caller.key.fingerprint}),
        );
    }
    details
}

impl Ca {
    pub(super) fn role_of(&self, name: &str) -> Option<Role> {
        self.policy().role(name).cloned()
    }

    /// `GET /v1/whoami`.
    pub fn whoami(&self, caller: &Caller) -> WhoamiView {
        WhoamiView {
            user: caller.user.clone(),
            groups: caller.groups.clone(),
            approval_key: caller.key.approval,
        }
    }

    /// `GET /v1/roles`: the roles the caller may request, as they apply to the caller.
    pub fn roles(&self, caller: &Caller) -> RolesView {
        let policy = self.policy();
        let roles = policy
            .requestable(&caller.user, &caller.groups)
            .map(|r| RoleView {
                name: r.name.clone(),
                hosts: r.hosts.clone(),
                principals: r.principals_for(&caller.user),
                sudo: r.sudo,
                session_bound: r.binds_sessions(),
                max_duration_secs: r.max_duration_secs,
                approvers: r.approvers.iter().map(|s| s.spelling()).collect(),
                approvals_required: r.approvals,
                require_reason: r.require_reason,
                auto_approval: auto_views(r, caller),
                schedule: r
                    .schedule
                    .as_ref()
                    .map(|s| s.spellings())
                    .unwrap_or_default(),
                reason_pattern: r.reason_pattern.as_ref().map(|p| p.as_str().to_string()),
                reason_help: r.reason_help.clone(),
                pending_ttl_secs: r.pending_ttl_secs,
            })
            .collect();
        RolesView { roles }
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
        let (v, rec) = self.transact(|tx| {
            self.check_session_in(tx, caller, now)?;
            let mut row = load(tx, id)?;
            let role = self.role_of(&row.role);
            let actor = Actor::Caller(caller);
            lifecycle::deny(&mut row, actor, role.as_ref(), &caller.user, reason, now)?;
            tx.update_request(&row)?;
            let rec = tx.append_audit(
                now,
                &caller.user,
                event::DENIAL,
                &with_session(
                    json!({"request_id": id, "reason": reason, "withdrawn": row.user == caller.user}),
                    caller,
                ),
            )?;
            Ok::<_, ApiError>((view(tx, role.as_ref(), &row, now)?, rec))
        })?;
        self.log(&[rec]);
        Ok(v)
    }

    /// `POST /v1/requests/{id}/cancel`: the requester withdraws a pending request. Audited
    /// as `cancellation`, not as a denial.
    pub fn cancel(&self, caller: &Caller, id: &str, reason: &str) -> ApiResult<RequestView> {
        let now = self.now();
        let reason = reason.trim();
        check_text("cancellation reason", reason)?;
        let (v, rec) = self.transact(|tx| {
            self.check_session_in(tx, caller, now)?;
            let mut row = load(tx, id)?;
            let role = self.role_of(&row.role);
            lifecycle::cancel(&mut row, caller, role.as_ref(), now)?;
            row.cancel_reason = (!reason.is_empty()).then(|| reason.to_string());
            tx.update_request(&row)?;
            let rec = tx.append_audit(
                now,
                &caller.user,
                event::CANCELLATION,
                &with_session(
                    json!({"request_id": id, "role": row.role, "reason": reason}),
                    caller,
                ),
            )?;
            Ok::<_, ApiError>((view(tx, role.as_ref(), &row, now)?, rec))
        })?;
        self.log(&[rec]);
        Ok(v)
    }

    /// `GET /v1/requests/{id}`.
    pub fn get(&self, caller: &Caller, id: &str) -> ApiResult<RequestView> {
        let now = self.now();
        self.read_db(|c| {
            let row = load(c, id)?;
            let role = self.role_of(&row.role);
            lifecycle::authorize(Actor::Caller(caller), Action::See, &row, role.as_ref())?;
            view(c, role.as_ref(), &row, now)
        })
    }

    /// `GET /v1/requests?filter=pending|mine|all`. What the caller may see is filtered in
    /// SQL (the roles the caller may approve, and the caller's own) before `LIST_LIMIT`
    /// applies, so a flood of another role's requests cannot push out the caller's; the
    /// rule of [`lifecycle::authorize`] is applied again to each row.
    pub fn list(&self, caller: &Caller, filter: &str) -> ApiResult<RequestList> {
        let now = self.now();
        let policy = self.policy();
        let may_see = |r: &RequestRow| {
            let role = policy.role(&r.role);
            lifecycle::authorize(Actor::Caller(caller), Action::See, r, role).is_ok()
        };
        let approvable: Vec<&str> = policy
            .roles
            .values()
            .filter(|r| r.may_approve(&caller.user, &caller.groups))
            .map(|r| r.name.as_str())
            .collect();
        let query = |pending_at| ListQuery {
            user: &caller.user,
            roles: &approvable,
            pending_at,
            limit: LIST_LIMIT,
        };
        self.read_db(|c| {
            let rows = match filter {
                "pending" => c
                    .list_visible(&query(Some(now)))?
                    .into_iter()
                    .filter(|r| r.user != caller.user && now < r.pending_expires_at && may_see(r))
                    .collect::<Vec<_>>(),
                "mine" => c.list_requests_of(&caller.user, LIST_LIMIT)?,
                "all" | "" => c
                    .list_visible(&query(None))?
                    .into_iter()
                    .filter(|r| may_see(r))
                    .collect(),
                other => {
                    return Err(refuse(
                        C::InvalidInput,
                        format!("unknown filter {other:?}; use pending, mine or all"),
                    ));
                }
            };
            Ok(RequestList {
                requests: views(c, &policy, &rows, now)?,
            })
        })
    }

    /// `GET /v1/requests/{id}/certificate`.
    pub fn certificate(&self, caller: &Caller, id: &str) -> ApiResult<IssuedView> {
        self.read_db(|c| {
            lifecycle::refuse_approval_key(caller, "fetch certificates")?;
            let row = load(c, id)?;
            let role = self.role_of(&row.role);
            let actor = Actor::Caller(caller);
            lifecycle::authorize(actor, Action::FetchCertificate, &row, role.as_ref())?;
            lifecycle::check_has_certificate(&row)?;
            let cert = c.latest_cert(id)?.ok_or_else(|| {
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
        self.revoke_as(&caller.user, Actor::Caller(caller), id, reason, false)
    }

    /// `POST /v1/requests/{id}/drop`: the requester ends their own active elevation early,
    /// a revocation recorded with the reason "dropped by requester".
    pub fn drop_own(&self, caller: &Caller, id: &str) -> ApiResult<RequestView> {
        let reason = lifecycle::DROP_REASON;
        self.revoke_as(&caller.user, Actor::Caller(caller), id, reason, true)
    }

    /// Revocation by an operator (`jit-ca revoke`, on the data directory): no role check;
    /// `actor` is recorded. A running service picks the change up within a second or two
    /// (`Ca::pick_up_external_changes`).
    pub fn admin_revoke(&self, actor: &str, id: &str, reason: &str) -> ApiResult<RequestView> {
        self.revoke_as(actor, Actor::Operator, id, reason, false)
    }

    fn revoke_as(
        &self,
        by: &str,
        actor: Actor<'_>,
        id: &str,
        reason: &str,
        dropping: bool,
    ) -> ApiResult<RequestView> {
        let now = self.now();
        let reason = reason.trim();
        check_text("revocation reason", reason)?;
        let (v, rec, published, certs) = self.transact(|tx| {
            if let Actor::Caller(caller) = actor {
                self.check_session_in(tx, caller, now)?;
            }
            let mut row = load(tx, id)?;
            let role = self.role_of(&row.role);
            match actor {
                Actor::Caller(caller) if dropping => {
                    lifecycle::drop_own(&mut row, caller, role.as_ref(), now)?;
                }
                _ => lifecycle::revoke(&mut row, actor, role.as_ref(), by, now)?,
            }
            row.revocation_reason = Some(reason.to_string());
            tx.update_request(&row)?;
            let certs = tx.revoke_certs(id)?;
            let serials: Vec<u64> = certs.iter().map(|c| c.serial).collect();
            let grants: Vec<&String> = certs.iter().filter_map(|c| c.grant_id.as_ref()).collect();
            let published = self.build_published(tx, now, true)?;
            let mut details = json!({"request_id": id, "reason": reason, "serials": serials,
                "grant_ids": grants, "revocation_sequence": published.revocation_sequence});
            if dropping {
                add_details(&mut details, json!({"dropped": true}));
            }
            if let Actor::Caller(caller) = actor {
                details = with_session(details, caller);
            }
            let rec = tx.append_audit(now, by, event::REVOCATION, &details)?;
            if matches!(actor, Actor::Operator) {
                // An operator on the data directory: a running service picks it up in a second.
                super::external::bump_generation(tx)?;
            }
            Ok::<_, ApiError>((view(tx, role.as_ref(), &row, now)?, rec, published, certs))
        })?;
        write(&self.published, published);
        self.release_in_host_documents(certs.iter().filter_map(|c| c.grant_id.as_deref()));
        self.stats.revocations.fetch_add(1, Ordering::Relaxed);
        self.log(&[rec]);
        self.after_issuance(None);
        Ok(v)
    }

    /// `POST /v1/requests/{id}/extend`: the requester adds time. Within the window the
    /// approval covered, as before; beyond it only when an auto-approval rule of the role (as
    /// it is now) would approve the whole new window, else `extension_not_approved` (request
    /// anew). The role as it is now must still fit the request (`policy_changed`). The new
    /// certificate and grant supersede the old ones: their serials and grant ids are revoked
    /// (KRL and revocation list re-published) in the same transaction.
    pub fn extend(&self, caller: &Caller, id: &str, secs: u64) -> ApiResult<RequestView> {
        lifecycle::refuse_approval_key(caller, "extend requests")?;
        let now = self.now();
        let (v, rec, published, superseded) = self.transact(|tx| {
            let mut row = load(tx, id)?;
            let role = self.role_of(&row.role);
            let actor = Actor::Caller(caller);
            lifecycle::authorize(actor, Action::Extend, &row, role.as_ref())?;
            let latest = tx.latest_cert(id)?;
            let groups = tx.user_groups(&row.user)?;
            let ext = lifecycle::extend(
                &mut row,
                role.as_ref(),
                latest.as_ref(),
                groups.as_deref(),
                secs,
                now,
            )?;
            let Some(role) = role else {
                return Err(refuse(C::PolicyChanged, "the role left the policy"));
            };
            let superseded = tx.revoke_live_certs(id)?;
            let serials: Vec<u64> = superseded.iter().map(|c| c.serial).collect();
            let grants: Vec<&String> = superseded
                .iter()
                .filter_map(|c| c.grant_id.as_ref())
                .collect();
            let published = self.build_published(tx, now, true)?;
            let approvers = tx
                .approvals(&row.id)?
                .into_iter()
                .map(|a| Approval {
                    user: a.user,
                    at: a.at.into(),
                })
                .collect();
            let extra = json!({"covered_by": ext.covered_by, "superseded_serials": serials,
                               "superseded_grant_ids": grants,
                               "revocation_sequence": published.revocation_sequence});
            let mut rec = vec![self.issue(
                tx,
                &mut row,
                &role,
                now,
                Some(ext.new_end),
                approvers,
                extra,
            )?];
            // An auto-approval rule approving the part beyond the approved window while the
            // role's schedule is closed (a rule's own schedule may differ, or it has none):
            // not refused, but an alert in the extension's transaction, as for a human
            // approval.
            let rule = ext.covered_by.as_str().filter(|b| *b != "approval");
            if let Some(alert) = rule.and_then(|r| super::alerting::off_schedule(&role, r, id, now))
            {
                rec.push(tx.append_audit(now, "system", event::ALERT, &alert)?);
            }
            Ok::<_, ApiError>((
                view(tx, Some(&role), &row, now)?,
                rec,
                published,
                superseded,
            ))
        })?;
        write(&self.published, published);
        self.release_in_host_documents(superseded.iter().filter_map(|c| c.grant_id.as_deref()));
        self.log(&rec);
        self.after_issuance(None);
        Ok(v)
    }
}

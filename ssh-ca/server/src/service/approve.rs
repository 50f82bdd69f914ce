//! Approvals by a person: a signed call (`jit approve`, with its evidence) or a web
//! session's form ([`Ca::approve_web`]), one transaction each around the lifecycle's rules.

use serde_json::json;

use jit_common::Approval;

use super::issue::check_active_grants;
use super::lifecycle::{self, CastApproval};
use super::requests::{load, view};
use super::{ApiResult, Ca, Caller, CallerKey, refuse};
use crate::audit::event;
use crate::error::ApiError;
use jit_api::wire::{ApproveRequest, ErrorCode as C, RequestState, RequestView};

/// How an approval arrives.
#[derive(Debug, Clone, Copy)]
pub(super) enum Via<'a> {
    /// A signed call: the path and query as signed, and the body (kept as evidence).
    Signed { path: &'a str, body: &'a [u8] },
    /// A web session's form: the session id and the approver's reason (may be empty).
    Web { session: &'a str, reason: &'a str },
}

/// Largest approve body (it is kept in the approval's audit record).
const MAX_APPROVE_BODY: usize = 1024;

impl Ca {
    /// `POST /v1/requests/{id}/approve` with its `body` (kept as evidence): `req` may name
    /// the request's digest, which must then be the request's. `signed_path` is the path and
    /// query as sent (and signed): it must be exactly `/v1/requests/{id}/approve` with the id
    /// as stored, which is what the evidence recipe of docs/audit.md checks (a
    /// percent-encoded id or a query string would make a genuine approval fail it).
    pub fn approve(
        &self,
        caller: &Caller,
        id: &str,
        signed_path: &str,
        req: &ApproveRequest,
        body: &[u8],
    ) -> ApiResult<RequestView> {
        let named = req.request_digest.as_deref();
        if body.len() > MAX_APPROVE_BODY {
            // Kept whole in the audit record: bounded.
            return Err(refuse(
                C::InvalidInput,
                format!("an approval's body is at most {MAX_APPROVE_BODY} bytes"),
            ));
        }
        if let Some(d) = named.filter(|d| !jit_api::evidence::is_digest(d)) {
            return Err(refuse(
                C::InvalidInput,
                format!(
                    "request_digest {:?} is not a digest (sha256: and 64 lowercase hex characters)",
                    jit_common::log::sanitize(d, 80)
                ),
            ));
        }
        if named.is_none() && self.config.require_approval_digest {
            return Err(refuse(
                C::InvalidInput,
                "this CA requires an approval to name the request's digest \
                 (require_approval_digest = true): send {\"request_digest\": \"sha256:...\"} \
                 (the request's request_digest), or upgrade jit, whose approve sends it",
            ));
        }
        if caller.session.is_some() {
            // A session's approval is Ca::approve_web (no signed call to keep).
            return Err(ApiError::internal(
                "a web session's approval went to Ca::approve",
            ));
        }
        self.approve_via(
            caller,
            id,
            named,
            Via::Signed {
                path: signed_path,
                body,
            },
        )
    }

    /// An approval, signed (`jit approve`) or from a web session ([`Ca::approve_web`]):
    /// `named` is the digest the approver was shown, if any.
    pub(super) fn approve_via(
        &self,
        caller: &Caller,
        id: &str,
        named: Option<&str>,
        via: Via<'_>,
    ) -> ApiResult<RequestView> {
        let now = self.now();
        let max_grants = self.config.max_active_grants_per_user;
        let (v, records) = self.transact(|tx| {
            // A session's approval: the session must still be valid now (it may have ended
            // since the page checked it).
            self.check_session_in(tx, caller, now)?;
            let mut row = load(tx, id)?;
            // From here on the id as stored.
            let stored = row.id.clone();
            let id = stored.as_str();
            let exact = format!("/v1/requests/{id}/approve");
            if let Via::Signed { path: signed_path, .. } = via
                && signed_path != exact
            {
                return Err(refuse(
                    C::InvalidInput,
                    format!(
                        "an approval must be signed for the path {exact} exactly (its evidence \
                         names the request by it), not {:?}: send it without percent-encoding \
                         or a query string",
                        jit_common::log::sanitize(signed_path, 200)
                    ),
                ));
            }
            let role = self.role_of(&row.role);
            if let (Via::Web { .. }, Some(r)) = (via, role.as_ref())
                && lifecycle::may_approve(&row.user, r, &caller.user, &caller.groups)
                && r.needs_key_to_approve()
            {
                return Err(super::web::key_required(r, id));
            }
            let role = lifecycle::check_approval(&row, caller, role.as_ref(), now)?;
            let canonical = super::evidence::canonical(&row);
            let digest = jit_api::evidence::digest_of(&canonical);
            if let Some(named) = named.filter(|n| *n != digest) {
                return Err(refuse(
                    C::RequestDigestMismatch,
                    format!(
                        "request {id} is not the request you were shown: its digest is {digest}, your \
                         approval names {named}; look at it again (jit show {id}) and approve again"
                    ),
                ));
            }
            let groups = tx.user_groups(&row.user)?;
            lifecycle::still_fits(&row, role, groups.as_deref(), row.duration_secs)?;
            // A click on a web page is neither a dedicated-key signature nor a touch: it is
            // stored as KEY_WEB alone, so it counts only under approval_key = "any" and never
            // for a role whose approvals need the key (approve_with_key), whatever the
            // policy becomes.
            let flags = match via {
                Via::Signed { .. } => caller.key.flags(),
                Via::Web { .. } => crate::store::KEY_WEB,
            };
            if !tx.add_approval(id, &caller.user, now, flags)? {
                return Err(refuse(
                    C::AlreadyApproved,
                    format!("you already approved request {id}; another approver is needed"),
                ));
            }
            let details = match via {
                Via::Signed { body, .. } => {
                    json!({"request_id": id, "key": caller.key.fingerprint,
                        "approval_key": caller.key.approval, "sk": caller.key.sk,
                        "touched": caller.key.touched,
                        "evidence": super::evidence::details(caller, body, &canonical, named)})
                }
                Via::Web { session, reason } => {
                    json!({"request_id": id, "session": session, "key": caller.key.fingerprint,
                        "approval_key": false, "sk": false, "touched": false,
                        "evidence": super::evidence::web_details(session, &canonical, named, reason)})
                }
            };
            let mut records = vec![tx.append_audit(now, &caller.user, event::APPROVAL, &details)?];
            // Not refused, but an alert in the approval's own transaction.
            if let Some(alert) = super::alerting::off_schedule(role, &caller.user, id, now) {
                records.push(tx.append_audit(now, "system", event::ALERT, &alert)?);
            }
            let mut cast = Vec::new();
            for (approval, flags) in tx.approvals_with_keys(id)? {
                let groups = tx.user_groups(&approval.user)?;
                cast.push(CastApproval {
                    approval,
                    key: CallerKey::from_flags(flags),
                    web: flags & crate::store::KEY_WEB != 0,
                    groups,
                });
            }
            let counted = lifecycle::counted_approvals(&row, role, cast);
            if lifecycle::enough(&row, role, &counted) {
                check_active_grants(tx, &row.user, now, max_grants)?;
                lifecycle::apply_approvals(&mut row, role, &counted, now);
                let approvers = counted
                    .iter()
                    .map(|a| Approval {
                        user: a.user.clone(),
                        at: a.at.into(),
                    })
                    .collect();
                records.push(self.issue(tx, &mut row, role, now, None, approvers, json!({}))?);
            }
            Ok::<_, ApiError>((view(tx, Some(role), &row, now)?, records))
        })?;
        self.log(&records);
        if v.state == RequestState::Approved {
            self.after_issuance(
                v.serial
                    .map(|serial| super::publish::ActiveGrantAdded { serial }),
            );
        }
        Ok(v)
    }
}

//! The authorizing webhook at a request's creation: an auto-approval rule that names a
//! webhook approves only on its explicit yes; a no or any error leaves the request pending
//! for human approvers (fail closed). The answer is audited with the request.
//!
//! The call happens after admission and before anything is stored, outside any database
//! transaction or lock: a slow webhook delays only its own request (by at most the webhook's
//! `timeout`, 10s at most), never the group commit. Nobody can see, approve or cancel the
//! request meanwhile (it does not exist yet), and if the caller goes away the decision is
//! still recorded: the request is then found with `jit list`. The policy snapshot taken at
//! admission decides: a reload during the call applies to the next request.

use std::sync::Arc;

use serde_json::json;

use super::{Ca, Caller};
use crate::audit::event::{self, Event};
use crate::policy::{AutoApproval, Policy, Role};
use crate::store::RequestRow;
use crate::webhook::Webhook;
use crate::webhook::authorize::{self, Answer, Question};

/// An answer's audit record: actor (`webhook:NAME`), event, details.
pub(super) type WebhookRecord = (String, &'static Event, serde_json::Value);

/// The audit record of `answer` about request `id`.
pub(super) fn record_of(answer: &Answer, id: &str) -> WebhookRecord {
    let ev = if answer.failed() {
        event::WEBHOOK_FAILURE
    } else {
        event::WEBHOOK_ANSWER
    };
    (
        format!("webhook:{}", answer.webhook),
        ev,
        answer.details(id),
    )
}

impl Ca {
    /// Records a webhook's answer about a request that was then not stored (refused after
    /// the call, e.g. a duplicate pending request or too many active grants): the answer is
    /// audited either way, marked `"request_stored": false`.
    pub(super) fn audit_unstored_answer(&self, now: u64, record: Option<WebhookRecord>) {
        let Some((actor, ev, mut details)) = record else {
            return;
        };
        if let Some(d) = details.as_object_mut() {
            d.insert("request_stored".into(), false.into());
        }
        if let Err(e) = self.audit_at(now, &actor, ev, details) {
            jit_common::errln!("jit-ca: audit of a webhook answer failed: {e}");
        }
    }

    /// When `auto` (what admission chose under the policy snapshot `admitted`) names an
    /// authorizing webhook, asks exactly that webhook, as `admitted` defines it: on a yes
    /// the approval basis also names the webhook; otherwise `auto` becomes None and `row`
    /// pending again. Returns the answer to audit, None when no webhook was asked.
    ///
    /// A yes approves only if the policy in force when it arrives still has `role` (the
    /// role as admitted, its rules included) and the webhook as asked: a reload during the
    /// call that removed or changed the rule, the role or the webhook leaves the request to
    /// human approvers (fail closed), with the yes audited as overruled.
    pub(super) fn ask_authorizing_webhook(
        &self,
        caller: &Caller,
        admitted: &Arc<Policy>,
        role: &Role,
        row: &mut RequestRow,
        auto: &mut Option<AutoApproval>,
    ) -> Option<Answer> {
        let chosen = auto.as_ref()?;
        // The webhook of the very rule that matched (None for `auto_approve = true` and for
        // rules without one): never looked up again by the rule's name.
        let name = chosen.webhook.clone()?;
        let answer = match admitted.webhooks.get(&name) {
            Some(hook) => {
                let q = Question {
                    row,
                    groups: &caller.groups,
                    rule: &chosen.rule,
                    ca: self.audience(),
                };
                let mut answer = authorize::ask(hook, &q, row.created_at);
                if answer.approves() {
                    answer.overruled = still_in_force(&self.policy(), admitted, role, hook).err();
                }
                answer
            }
            // Parsing refuses a rule naming an undefined webhook; should one get here
            // anyway, it never approves.
            None => Answer {
                webhook: name,
                rule: chosen.rule.clone(),
                message_id: authorize::message_id(&row.id),
                outcome: authorize::Outcome::Error {
                    kind: "not_defined",
                    status: None,
                    detail: "the webhook is not in the policy".into(),
                },
                latency_ms: 0,
                overruled: None,
            },
        };
        if answer.approves() {
            row.approval_basis = Some(
                json!({"auto_rule": chosen.approver, "conditions": chosen.conditions,
                       "webhook": answer.webhook, "webhook_id": answer.message_id})
                .to_string(),
            );
        } else {
            *auto = None;
            row.state = jit_api::wire::RequestState::Pending;
            row.approved_at = None;
            row.approved_until = None;
            row.approval_basis = None;
        }
        Some(answer)
    }
}

/// Whether the policy in force (`current`) still has `role` exactly as admitted (under
/// `admitted`) and `hook` exactly as asked; else why not, for the audit record.
fn still_in_force(
    current: &Arc<Policy>,
    admitted: &Arc<Policy>,
    role: &Role,
    hook: &Webhook,
) -> Result<(), String> {
    if Arc::ptr_eq(current, admitted) {
        return Ok(());
    }
    if current.role(&role.name) != Some(role) {
        return Err(format!(
            "the policy was reloaded during the call and role {} changed or is gone; humans decide",
            role.name
        ));
    }
    if current.webhooks.get(&hook.name) != Some(hook) {
        return Err(format!(
            "the policy was reloaded during the call and webhook {} changed or is gone; humans decide",
            hook.name
        ));
    }
    Ok(())
}

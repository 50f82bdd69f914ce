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

use serde_json::json;

use super::{Ca, Caller};
use crate::audit::event::{self, Event};
use crate::policy::{AutoApproval, Role};
use crate::store::RequestRow;
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

    /// When `auto` (what admission chose) is a rule with a webhook, asks it: on a yes the
    /// approval basis also names the webhook; otherwise `auto` becomes None and `row`
    /// pending again. Returns the answer to audit, None when no webhook was asked.
    pub(super) fn ask_authorizing_webhook(
        &self,
        caller: &Caller,
        role: &Role,
        row: &mut RequestRow,
        auto: &mut Option<AutoApproval>,
    ) -> Option<Answer> {
        let chosen = auto.as_ref()?;
        if role.auto_approve {
            // `auto_approve = true` approves every request; rules (and webhooks) do not apply.
            return None;
        }
        // The rule admission chose (rule names are unique within a role).
        let rule = role
            .auto_approve_rules
            .iter()
            .find(|r| r.name == chosen.rule && r.webhook.is_some())?;
        let name = rule.webhook.as_deref()?;
        let policy = self.policy();
        let answer = match policy.webhooks.get(name) {
            Some(hook) => {
                let q = Question {
                    row,
                    groups: &caller.groups,
                    rule: &rule.name,
                    ca: self.audience(),
                };
                authorize::ask(hook, &q, row.created_at)
            }
            // The policy was reloaded without it since admission: fail closed.
            None => Answer {
                webhook: name.to_string(),
                rule: rule.name.clone(),
                message_id: authorize::message_id(&row.id),
                outcome: authorize::Outcome::Error {
                    kind: "not_defined",
                    status: None,
                    detail: "the webhook is no longer in the policy".into(),
                },
                latency_ms: 0,
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

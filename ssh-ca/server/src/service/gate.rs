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
use crate::policy::Role;
use crate::store::RequestRow;
use crate::webhook::authorize::{self, Answer, Question};

impl Ca {
    /// When `auto` (the approver `auto:<rule>` admission chose) is a rule with a webhook,
    /// asks it: on a yes the approval basis names the webhook; otherwise `auto` becomes None
    /// and `row` pending again. Returns the answer to audit, None when no webhook was asked.
    pub(super) fn ask_authorizing_webhook(
        &self,
        caller: &Caller,
        role: &Role,
        row: &mut RequestRow,
        auto: &mut Option<String>,
    ) -> Option<Answer> {
        let approver = auto.as_deref()?;
        let rule = role
            .auto_approve_rules
            .iter()
            .find(|r| format!("auto:{}", r.name) == approver)?;
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
                message_id: String::new(),
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
                json!({"auto_rule": approver, "webhook": answer.webhook,
                       "webhook_id": answer.message_id})
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

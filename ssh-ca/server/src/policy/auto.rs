//! Auto-approval, pure: whether a rule of a role approves a request at an instant. Each rule
//! decides fail closed: every condition it names must hold, else a human approves. The one
//! place the conditions are checked is [`AutoRule::check`]; [`Role::auto_decision`] tries
//! the rules in order and says why each one that did not apply did not.

use serde_json::{Value, json};

use super::role::{AutoRule, Role, selectors_cover};
use jit_common::time::format_duration;

/// What auto-approval decides on: the request as admitted and the instant.
#[derive(Debug, Clone, Copy)]
pub struct AutoInput<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    /// The window asked for (an extension: the whole window from approval), seconds.
    pub duration_secs: u64,
    /// The request's host selectors (the role's when it named none).
    pub hosts: &'a [String],
    /// The ticket its reason carries (`reason_pattern`), if any.
    pub ticket: Option<&'a str>,
    /// Unix seconds: when the decision is made.
    pub at: u64,
    /// Unix seconds: when the window it approves starts (`at`, or the start of a later
    /// window): a rule's schedule must contain both, so `--start` cannot carry an approval
    /// made inside the schedule to a window outside it.
    pub starts_at: u64,
    /// Whether a rule's authorizing webhook will be asked when the rule's other conditions
    /// hold (a new request). False for an extension: a rule with a webhook then does not
    /// apply (fail closed), since its webhook is asked only when a request is made.
    pub asks_webhooks: bool,
}

/// An automatic approval: who is recorded as approver and what held.
#[derive(Debug, Clone, PartialEq)]
pub struct AutoApproval {
    /// `auto:<rule>` (or `auto:<role>` for `auto_approve = true`).
    pub approver: String,
    /// The rule's name.
    pub rule: String,
    /// The conditions that held, as the audit record names them.
    pub conditions: Value,
    /// The rule's authorizing webhook, if it names one: the approval then stands only on
    /// that webhook's explicit yes (`service::gate` asks exactly this one).
    pub webhook: Option<String>,
}

/// What auto-approval says about a request.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AutoDecision {
    /// The first rule that approves, if any.
    pub approved: Option<AutoApproval>,
    /// Each rule that did not approve, with the first condition that did not hold.
    pub misses: Vec<(String, String)>,
}

impl AutoRule {
    /// Checks every condition of the rule, in order, for `input`: the conditions that held
    /// (for the audit record), or the first that did not (fail closed: a rule approves only
    /// when all hold).
    pub fn check(&self, input: &AutoInput<'_>) -> Result<Value, String> {
        let mut held = serde_json::Map::new();
        let matched: Vec<String> = self
            .subjects
            .iter()
            .filter(|s| s.includes(input.user, input.groups))
            .map(|s| s.spelling())
            .collect();
        if matched.is_empty() {
            let names: Vec<String> = self.subjects.iter().map(|s| s.spelling()).collect();
            return Err(format!(
                "{} is not among its users and groups ({})",
                input.user,
                names.join(", ")
            ));
        }
        held.insert("subjects".into(), json!(matched));
        if input.duration_secs > self.max_duration_secs {
            return Err(format!(
                "{} is longer than its max_duration {}",
                format_duration(input.duration_secs),
                format_duration(self.max_duration_secs)
            ));
        }
        held.insert("max_duration_secs".into(), json!(self.max_duration_secs));
        if !self.hosts.is_empty() {
            if let Some(h) = input
                .hosts
                .iter()
                .find(|h| !selectors_cover(&self.hosts, h))
            {
                return Err(format!(
                    "host {h:?} is not within its hosts ({})",
                    self.hosts.join(", ")
                ));
            }
            held.insert("hosts".into(), json!(self.hosts));
        }
        if let Some(schedule) = &self.schedule {
            if !schedule.contains(input.at) {
                return Err(format!("outside its schedule ({})", schedule.describe()));
            }
            if input.starts_at != input.at && !schedule.contains(input.starts_at) {
                return Err(format!(
                    "the window starts outside its schedule ({})",
                    schedule.describe()
                ));
            }
            held.insert("schedule".into(), json!(schedule.spellings()));
        }
        if let Some(p) = &self.ticket_pattern {
            match input.ticket {
                None => return Err("the request has no ticket".into()),
                Some(t) if !p.is_match(t) => {
                    return Err(format!(
                        "ticket {t:?} does not match its ticket_pattern {}",
                        p.as_str()
                    ));
                }
                Some(_) => {}
            }
            held.insert("ticket_pattern".into(), json!(p.as_str()));
        }
        if let Some(w) = &self.webhook {
            if !input.asks_webhooks {
                return Err(format!(
                    "its webhook {w} is asked only when a request is made, not for an extension"
                ));
            }
            // Held so far; the webhook's explicit yes is the last condition (service::gate).
            held.insert("webhook".into(), json!(w));
        }
        Ok(Value::Object(held))
    }
}

impl Role {
    /// Whether an auto-approval of this role approves `input`: `auto_approve = true`, or the
    /// first rule (in policy order) all of whose conditions hold.
    pub fn auto_decision(&self, input: &AutoInput<'_>) -> AutoDecision {
        if self.auto_approve {
            return AutoDecision {
                approved: Some(AutoApproval {
                    approver: format!("auto:{}", self.name),
                    rule: self.name.clone(),
                    conditions: json!({"auto_approve": true}),
                    webhook: None,
                }),
                misses: Vec::new(),
            };
        }
        let mut misses = Vec::new();
        for rule in &self.auto_approve_rules {
            match rule.check(input) {
                Ok(conditions) => {
                    return AutoDecision {
                        approved: Some(AutoApproval {
                            approver: format!("auto:{}", rule.name),
                            rule: rule.name.clone(),
                            conditions,
                            webhook: rule.webhook.clone(),
                        }),
                        misses,
                    };
                }
                Err(why) => misses.push((rule.name.clone(), why)),
            }
        }
        AutoDecision {
            approved: None,
            misses,
        }
    }
}

#[cfg(test)]
mod tests;

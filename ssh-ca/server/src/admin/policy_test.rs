//! `jit-ca policy test`: what a request would get under the policy and users of a data
//! directory, and why, like `visudo -c` answers for a file. Read only: the policy file and
//! the users table (a `query_only` connection); nothing is written or audited.
//!
//! It runs the service's own admission and auto-approval rules
//! ([`lifecycle::check_request`], [`lifecycle::unknown_role`]), so the answer is the one the
//! API would give for the policy. What depends on the database's state at the time (one
//! pending request per role, the per-user bounds, the size of host documents) and on the
//! caller's key (approval keys) is not evaluated, and no authorizing webhook is asked: a rule
//! that needs one is reported as `auto_approved_if_webhook_approves`, with who approves
//! when it does not say yes.

use std::path::Path;

use serde::Serialize;
use serde_json::Value;

use crate::config::Config;
use crate::error::{CaError, Result};
use crate::policy::{Role, Subject};
use crate::service::lifecycle::{self, Asking, Refusal};
use crate::store::StoreOps as _;
use crate::store::sqlite::open_reader;
use jit_common::time::{format_duration, format_utc};

/// What `policy test` is asked.
#[derive(Debug, Clone)]
pub struct PolicyTestInput {
    pub user: String,
    pub role: String,
    pub duration_secs: u64,
    /// Unix seconds.
    pub at: u64,
    pub hosts: Vec<String>,
    pub reason: String,
}

/// A rule that did not auto-approve, and why.
#[derive(Debug, Clone, Serialize)]
pub struct RuleMiss {
    pub rule: String,
    pub why: String,
}

/// The answer of `policy test` (its `--json` form).
#[derive(Debug, Clone, Serialize)]
pub struct PolicyTestReport {
    /// `refused`, `pending`, `auto_approved`, or `auto_approved_if_webhook_approves` (the
    /// rule that applies names an authorizing webhook: the service asks it when the
    /// request is made and approves only on its yes; `policy test` does not ask it, and says
    /// who approves otherwise).
    pub decision: &'static str,
    pub user: String,
    pub role: String,
    pub duration_secs: u64,
    pub at: u64,
    /// Refused: the API's error code and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Admitted: the host selectors of the grant, and the ticket.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub hosts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Admitted: whether the grant would be bound to the SSH connection that presents the
    /// certificate (the role's `session_bound`); absent when not.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub session_bound: bool,
    /// Pending (or the webhook does not say yes): the role's approvers (as written), the
    /// registered people they name other than the requester, and how many approvals are
    /// needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub eligible_approvers: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
    /// Admitted: each auto-approval rule that did not apply, with the first unmet condition.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules_not_applied: Vec<RuleMiss>,
    /// Auto-approved: the rule, the approver recorded, the conditions that held.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approver: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conditions: Option<Value>,
    /// `auto_approved_if_webhook_approves`: the webhook whose yes the rule needs.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub webhook: Option<String>,
}

/// Evaluates `input` against the policy and users of `dir`. Errors are bad input (no such
/// directory, an invalid policy, an unknown user).
pub fn policy_test(dir: &Path, input: &PolicyTestInput) -> Result<PolicyTestReport> {
    let cfg = Config::load(dir)?;
    let policy = crate::service::load_policy(&cfg)?;
    let users = match &cfg.database {
        // A read-only connection: never creates or migrates jit.db.
        None => open_reader(&cfg.db_path())?.list_users()?,
        Some(_) => crate::store::Db::open(&cfg)?.read(|c| c.list_users())??,
    };
    let Some(me) = users.iter().find(|u| u.name == input.user) else {
        return Err(CaError::Input(format!(
            "no user {:?} in {} (jit-ca user list --dir {} shows who is registered)",
            input.user,
            dir.display(),
            dir.display()
        )));
    };
    let mut report = PolicyTestReport {
        decision: "refused",
        user: input.user.clone(),
        role: input.role.clone(),
        duration_secs: input.duration_secs,
        at: input.at,
        code: None,
        message: None,
        hosts: Vec::new(),
        ticket: None,
        session_bound: false,
        approvers: None,
        eligible_approvers: None,
        approvals_required: None,
        rules_not_applied: Vec::new(),
        rule: None,
        approver: None,
        conditions: None,
        webhook: None,
    };
    let checked = match policy.role(&input.role) {
        None => Err(lifecycle::unknown_role(
            &input.role,
            &policy.close_matches(&input.role, &me.name, &me.groups),
        )),
        Some(role) => lifecycle::check_request(
            role,
            &Asking {
                user: &me.name,
                groups: &me.groups,
                duration_secs: input.duration_secs,
                reason: &input.reason,
                hosts: &input.hosts,
                start: None,
            },
            input.at,
        )
        .map(|c| (role, c)),
    };
    let (role, checked) = match checked {
        Ok(c) => c,
        Err(Refusal::Client(e)) => {
            report.code = Some(e.code.as_str().to_string());
            report.message = Some(e.message);
            return Ok(report);
        }
        Err(Refusal::Internal(d)) => return Err(CaError::Input(d)),
    };
    report.hosts = checked.hosts;
    report.ticket = checked.ticket;
    report.session_bound = role.binds_sessions();
    report.rules_not_applied = checked
        .auto
        .misses
        .into_iter()
        .map(|(rule, why)| RuleMiss { rule, why })
        .collect();
    match checked.auto.approved {
        Some(a) => {
            report.decision = if a.webhook.is_some() {
                "auto_approved_if_webhook_approves"
            } else {
                "auto_approved"
            };
            report.rule = Some(a.rule);
            report.approver = Some(a.approver);
            report.conditions = Some(a.conditions);
            report.webhook = a.webhook;
        }
        None => report.decision = "pending",
    }
    if report.decision != "auto_approved" {
        // Who approves: always for a pending request; for a rule with a webhook, when the
        // webhook says anything but yes.
        report.approvers = Some(role.approvers.iter().map(Subject::spelling).collect());
        report.eligible_approvers = Some(eligible(role, &me.name, &users));
        report.approvals_required = Some(role.approvals);
    }
    Ok(report)
}

/// The registered users who may approve `role`, other than the requester.
fn eligible(role: &Role, requester: &str, users: &[crate::store::User]) -> Vec<String> {
    users
        .iter()
        .filter(|u| u.name != requester && role.may_approve(&u.name, &u.groups))
        .map(|u| u.name.clone())
        .collect()
}

/// The human form: the decision on the first line, then what it rests on.
pub fn render(r: &PolicyTestReport) -> String {
    let mut out = format!(
        "{} asks for {} for {} at {}:\n",
        r.user,
        r.role,
        format_duration(r.duration_secs),
        format_utc(r.at)
    );
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    match r.decision {
        "refused" => {
            line(format!(
                "refused ({}): {}",
                r.code.as_deref().unwrap_or_default(),
                r.message.as_deref().unwrap_or_default()
            ));
            return out;
        }
        "auto_approved" => line(format!(
            "auto-approved by rule {:?} (recorded as approver {})",
            r.rule.as_deref().unwrap_or_default(),
            r.approver.as_deref().unwrap_or_default()
        )),
        "auto_approved_if_webhook_approves" => {
            line(format!(
                "auto-approved by rule {:?} only if its webhook {} answers yes when the request \
                 is made (recorded as approver {}; not asked here)",
                r.rule.as_deref().unwrap_or_default(),
                r.webhook.as_deref().unwrap_or_default(),
                r.approver.as_deref().unwrap_or_default()
            ));
            for (i, l) in who_approves(r).into_iter().enumerate() {
                line(if i == 0 {
                    format!("  otherwise {l}")
                } else {
                    l
                });
            }
        }
        _ => {
            for l in who_approves(r) {
                line(l);
            }
        }
    }
    line(format!("  hosts: {}", r.hosts.join(", ")));
    if let Some(t) = &r.ticket {
        line(format!("  ticket: {t}"));
    }
    if r.session_bound {
        line(
            "  session-bound: sudo only inside the SSH connection that presents the certificate, \
             while it lives"
                .to_string(),
        );
    }
    if let Some(Value::Object(c)) = &r.conditions {
        let list = |v: &Value, sep: &str| match v {
            Value::Array(a) => a
                .iter()
                .map(|x| x.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(sep),
            Value::String(s) => s.clone(),
            v => v.to_string(),
        };
        let mut held = Vec::new();
        for (key, shown) in [
            ("auto_approve", "auto_approve"),
            ("subjects", "subjects"),
            ("max_duration_secs", "max_duration"),
            ("hosts", "hosts"),
            ("schedule", "schedule"),
            ("ticket_pattern", "ticket_pattern"),
        ] {
            let Some(v) = c.get(key) else { continue };
            held.push(match key {
                "max_duration_secs" => {
                    format!(
                        "{shown} {}",
                        format_duration(v.as_u64().unwrap_or_default())
                    )
                }
                "schedule" => format!("{shown} {}", list(v, " or ")),
                _ => format!("{shown} {}", list(v, ", ")),
            });
        }
        line(format!("  conditions held: {}", held.join("; ")));
    }
    for m in &r.rules_not_applied {
        line(format!("  rule {:?} does not apply: {}", m.rule, m.why));
    }
    out
}

/// "pending: needs N approval(s) from ..." and, when too few registered people may
/// approve, a warning line.
fn who_approves(r: &PolicyTestReport) -> Vec<String> {
    let eligible = r.eligible_approvers.clone().unwrap_or_default();
    let needed = r.approvals_required.unwrap_or(1);
    let mut out = vec![format!(
        "pending: needs {needed} approval{} from {} ({})",
        if needed == 1 { "" } else { "s" },
        r.approvers.clone().unwrap_or_default().join(", "),
        if eligible.is_empty() {
            "nobody registered".to_string()
        } else {
            eligible.join(", ")
        }
    )];
    if (eligible.len() as u64) < u64::from(needed) {
        out.push(format!(
            "  warning: only {} registered user{} may approve it; it can never be approved",
            eligible.len(),
            if eligible.len() == 1 { "" } else { "s" }
        ));
    }
    out
}

//! Reading policy.toml: strict raw structs (unknown keys are errors), then validation into
//! [`Role`]s collecting every problem, each naming the role and field. A new key is a field of
//! [`RawRole`], checked in [`validate_role`] and carried on [`Role`] (see CONTRIBUTING.md,
//! "Adding a policy key").

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde::Deserialize;

use super::pattern::Pattern;
use crate::webhook::Webhook;

use super::role::{
    ApprovalKey, AutoRule, KNOWN_CRITICAL_OPTIONS, KNOWN_EXTENSIONS, MAX_ROLE_DURATION,
    PENDING_TTL_RANGE, Role, Subject, check_name,
};
use super::schedule::{self, RawWindow};

/// Longest `reason_help` accepted, in bytes.
const MAX_HELP_LEN: usize = 512;

/// The roles, webhooks and auditors of a policy.
pub(super) type Parsed = (
    BTreeMap<String, Role>,
    BTreeMap<String, Webhook>,
    Vec<Subject>,
);

/// Parses and validates the roles (and `[[webhook]]` tables) of a policy.toml, returning
/// every problem found.
pub(super) fn roles(text: &str) -> Result<Parsed, Vec<String>> {
    let raw: RawPolicy =
        toml::from_str(text).map_err(|e| vec![crate::config::toml_error(text, &e)])?;
    let mut errs = Vec::new();
    let webhooks = crate::webhook::validate(raw.webhook, &mut errs);
    let mut auditors = Vec::new();
    for a in &raw.auditors {
        match Subject::parse(a) {
            Ok(s) => auditors.push(s),
            Err(e) => errs.push(format!(
                "auditors: {a:?}: {e} (use user names or \"group:NAME\")"
            )),
        }
    }
    let mut roles = BTreeMap::new();
    for (name, r) in raw.roles {
        let before = errs.len();
        let role = validate_role(&name, r, &mut errs);
        check_rule_webhooks(&role, &webhooks, &mut errs);
        if errs.len() == before {
            roles.insert(name, role);
        }
    }
    if errs.is_empty() {
        Ok((roles, webhooks, auditors))
    } else {
        Err(errs)
    }
}

/// Every `webhook = "NAME"` of an auto-approval rule names a `[[webhook]]` table.
fn check_rule_webhooks(role: &Role, webhooks: &BTreeMap<String, Webhook>, errs: &mut Vec<String>) {
    for (i, rule) in role.auto_approve_rules.iter().enumerate() {
        let Some(w) = &rule.webhook else { continue };
        if role.auto_approve {
            errs.push(format!(
                "roles.{}.auto_approve_rules[{i}].webhook: auto_approve = true approves every request \
                 at once, so webhook {w:?} would never be asked; remove auto_approve to let rule {:?} \
                 decide with its webhook",
                role.name, rule.name
            ));
        } else if !webhooks.contains_key(w) {
            let defined: Vec<String> = webhooks.keys().map(|k| format!("{k:?}")).collect();
            let defined = if defined.is_empty() {
                "none is defined".to_string()
            } else {
                format!("defined: {}", defined.join(", "))
            };
            errs.push(format!(
                "roles.{}.auto_approve_rules[{i}].webhook: rule {:?} names webhook {w:?}, which is not defined; \
                 define it with a [[webhook]] table (name, url, secret_file) ({defined})",
                role.name, rule.name
            ));
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    roles: BTreeMap<String, RawRole>,
    /// `[[webhook]]` tables (see `crate::webhook`).
    #[serde(default)]
    webhook: Vec<crate::webhook::RawWebhook>,
    /// Who may see every request, who has access now, and the audit pages (issue 16).
    #[serde(default)]
    auditors: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRole {
    #[serde(default)]
    principals: Vec<String>,
    hosts: Option<Vec<String>>,
    #[serde(default)]
    sudo: bool,
    #[serde(default)]
    session_bound: bool,
    max_duration: Option<String>,
    #[serde(default)]
    requesters: Vec<String>,
    #[serde(default)]
    approvers: Vec<String>,
    approvals: Option<i64>,
    #[serde(default)]
    auto_approve: bool,
    #[serde(default)]
    auto_approve_rules: Vec<RawRule>,
    #[serde(default = "yes")]
    require_reason: bool,
    #[serde(default)]
    extensions: Vec<String>,
    #[serde(default)]
    critical_options: BTreeMap<String, String>,
    #[serde(default)]
    approval_key: Option<String>,
    #[serde(default)]
    approve_with_key: bool,
    #[serde(default)]
    schedule: Option<Vec<RawWindow>>,
    #[serde(default)]
    reason_pattern: Option<String>,
    #[serde(default)]
    reason_help: Option<String>,
    pending_ttl: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
    #[serde(default)]
    max_duration: Option<String>,
    #[serde(default)]
    hosts: Option<Vec<String>>,
    #[serde(default)]
    schedule: Option<Vec<RawWindow>>,
    #[serde(default)]
    ticket_pattern: Option<String>,
    /// The authorizing webhook: auto-approve only on its explicit yes.
    #[serde(default)]
    webhook: Option<String>,
}

fn validate_role(name: &str, r: RawRole, errs: &mut Vec<String>) -> Role {
    let mut err = |field: &str, msg: String| errs.push(format!("roles.{name}.{field}: {msg}"));
    if let Err(e) = jit_common::grant::check_id("role", name) {
        err("name", e.to_string());
    }
    for p in &r.principals {
        if let Err(e) = check_name(p) {
            err("principals", e);
        }
    }
    let hosts = r.hosts.unwrap_or_default();
    if hosts.is_empty() {
        err(
            "hosts",
            "at least one host selector is required (e.g. hosts = [\"db-*\"])".into(),
        );
    }
    if hosts.len() > jit_common::grant::MAX_HOSTS {
        err(
            "hosts",
            format!("at most {} selectors", jit_common::grant::MAX_HOSTS),
        );
    }
    for h in &hosts {
        if let Err(e) = jit_common::host::validate_selector(h) {
            err("hosts", e);
        }
    }
    let max_duration_secs = match r.max_duration.as_deref() {
        None => {
            err(
                "max_duration",
                "is required (e.g. max_duration = \"1h\")".into(),
            );
            0
        }
        Some(s) => match jit_common::time::parse_duration(s).map(u64::from) {
            Ok(0) => {
                err("max_duration", "must be longer than 0s".into());
                0
            }
            Ok(d) if d > MAX_ROLE_DURATION => {
                err("max_duration", format!("{s} is longer than the 7d limit"));
                d
            }
            Ok(d) => d,
            Err(e) => {
                err("max_duration", e);
                0
            }
        },
    };
    let subjects = |field: &str, v: &[String], err: &mut dyn FnMut(&str, String)| {
        let mut out = Vec::new();
        for s in v {
            match Subject::parse(s) {
                Ok(x) => out.push(x),
                Err(e) => err(field, format!("{s:?}: {e}")),
            }
        }
        out
    };
    let requesters = subjects("requesters", &r.requesters, &mut err);
    if r.requesters.is_empty() {
        err(
            "requesters",
            "nobody may request this role; name users or groups".into(),
        );
    }
    let approvers = subjects("approvers", &r.approvers, &mut err);
    let approvals = match r.approvals {
        None => 1,
        Some(k) if (1..=jit_common::grant::MAX_APPROVERS as i64).contains(&k) => k as u32,
        Some(k) => {
            err(
                "approvals",
                format!(
                    "{k} is out of range; use 1 to {}",
                    jit_common::grant::MAX_APPROVERS
                ),
            );
            1
        }
    };
    if r.approvers.is_empty() && !r.auto_approve {
        err(
            "approvers",
            "nobody may approve this role; name users or groups (or set auto_approve = true)"
                .into(),
        );
    }
    let mut auto_approve_rules = Vec::new();
    for (i, rule) in r.auto_approve_rules.iter().enumerate() {
        let field = format!("auto_approve_rules[{i}]");
        if let Err(e) = jit_common::grant::check_id("name", &rule.name) {
            err(&field, e.to_string());
        }
        // The approver `auto:<name>` names one rule: the audit trail, the approval basis and
        // the authorizing webhook asked all rely on it.
        if r.auto_approve_rules[..i]
            .iter()
            .any(|o| o.name == rule.name)
        {
            err(
                &format!("{field}.name"),
                format!(
                    "{:?} is the name of an earlier rule of this role; give each rule its own",
                    rule.name
                ),
            );
        }
        // `hosts = []` would read as "no hosts" but an empty list is no condition at all:
        // refuse it rather than approve every host of the role (leave the key out for that).
        if rule.hosts.as_ref().is_some_and(|h| h.is_empty()) {
            err(
                &format!("{field}.hosts"),
                "is empty; name the hosts the rule approves, or leave hosts out for all the \
                 role's hosts"
                    .into(),
            );
        }
        let rule_hosts = rule.hosts.clone().unwrap_or_default();
        if rule.groups.is_empty() && rule.users.is_empty() {
            err(
                &field,
                "names no groups or users; the rule would never apply".into(),
            );
        }
        let mut subs = Vec::new();
        for g in &rule.groups {
            match check_name(g) {
                Ok(()) => subs.push(Subject::Group(g.clone())),
                Err(e) => err(&field, e),
            }
        }
        for u in &rule.users {
            match check_name(u) {
                Ok(()) => subs.push(Subject::User(u.clone())),
                Err(e) => err(&field, e),
            }
        }
        let max = match rule.max_duration.as_deref() {
            None => max_duration_secs,
            Some(text) => match jit_common::time::parse_duration(text).map(u64::from) {
                Ok(d) if d > max_duration_secs && max_duration_secs > 0 => {
                    err(
                        &field,
                        format!("max_duration {text} exceeds the role's max_duration"),
                    );
                    d
                }
                Ok(d) => d,
                Err(e) => {
                    err(&field, e);
                    0
                }
            },
        };
        for h in &rule_hosts {
            if let Err(e) = jit_common::host::validate_selector(h) {
                err(&format!("{field}.hosts"), e);
            } else if !super::role::selectors_cover(&hosts, h) {
                err(
                    &format!("{field}.hosts"),
                    format!(
                        "{h:?} is not within the role's hosts ({}); a rule's hosts narrow the role's",
                        hosts.join(", ")
                    ),
                );
            }
        }
        let rule_schedule = rule.schedule.as_deref().and_then(|raw| {
            schedule::parse(raw, &format!("{field}.schedule"), &mut |f, m| err(f, m))
        });
        let ticket_pattern = rule.ticket_pattern.as_deref().and_then(|t| {
            if r.reason_pattern.is_none() {
                err(
                    &format!("{field}.ticket_pattern"),
                    "needs the role's reason_pattern (the ticket is what reason_pattern matched)"
                        .into(),
                );
            }
            Pattern::compile(t)
                .map_err(|e| err(&format!("{field}.ticket_pattern"), e))
                .ok()
        });
        auto_approve_rules.push(AutoRule {
            name: rule.name.clone(),
            subjects: subs,
            max_duration_secs: max,
            hosts: rule_hosts,
            schedule: rule_schedule,
            ticket_pattern,
            webhook: rule.webhook.clone(),
        });
    }
    let role_schedule = r
        .schedule
        .as_deref()
        .and_then(|raw| schedule::parse(raw, "schedule", &mut |f, m| err(f, m)));
    let reason_pattern = r.reason_pattern.as_deref().and_then(|t| {
        Pattern::compile(t)
            .map_err(|e| err("reason_pattern", e))
            .ok()
    });
    if let Some(help) = &r.reason_help {
        if r.reason_pattern.is_none() {
            err(
                "reason_help",
                "is shown when the reason does not match reason_pattern; set reason_pattern too"
                    .into(),
            );
        }
        if help.trim().is_empty() {
            err("reason_help", "is empty".into());
        } else if let Err(e) = jit_common::text::check_line("reason_help", help, MAX_HELP_LEN) {
            err("reason_help", e);
        }
    }
    let mut extensions = r.extensions.clone();
    extensions.sort();
    extensions.dedup();
    for e in &extensions {
        if !KNOWN_EXTENSIONS.contains(&e.as_str()) {
            err(
                "extensions",
                format!(
                    "{e:?} is not an OpenSSH extension; use {}",
                    KNOWN_EXTENSIONS.join(", ")
                ),
            );
        }
    }
    for (k, v) in &r.critical_options {
        match k.as_str() {
            "source-address" => {
                for a in v.split(',') {
                    if !valid_cidr(a.trim()) {
                        err(
                            "critical_options",
                            format!(
                                "source-address entry {a:?} is not an address or CIDR (e.g. 10.0.0.0/8)"
                            ),
                        );
                    }
                }
            }
            "force-command" => {
                if v.is_empty() || v.chars().any(|c| c.is_control()) {
                    err(
                        "critical_options",
                        "force-command must be a non-empty single-line command".into(),
                    );
                }
            }
            _ => err(
                "critical_options",
                format!(
                    "{k:?} is not supported; use {}",
                    KNOWN_CRITICAL_OPTIONS.join(" or ")
                ),
            ),
        }
    }
    let approval_key = match r.approval_key.as_deref() {
        None => ApprovalKey::Any,
        Some(v) => ApprovalKey::parse(v).unwrap_or_else(|| {
            err(
                "approval_key",
                format!("{v:?} is not a choice; use {}", ApprovalKey::NAMES),
            );
            ApprovalKey::Any
        }),
    };
    let pending_ttl_secs = r.pending_ttl.as_deref().and_then(|s| {
        let (lo, hi) = PENDING_TTL_RANGE;
        match jit_common::time::parse_duration(s).map(u64::from) {
            Ok(d) if (lo..=hi).contains(&d) => Some(d),
            Ok(_) => {
                err(
                    "pending_ttl",
                    format!("{s:?} is out of range; use 1m to 30d (e.g. pending_ttl = \"1h\")"),
                );
                None
            }
            Err(e) => {
                err("pending_ttl", e);
                None
            }
        }
    });
    Role {
        name: name.to_string(),
        principals: r.principals,
        hosts,
        sudo: r.sudo,
        session_bound: r.session_bound,
        max_duration_secs,
        requesters,
        approvers,
        approvals,
        auto_approve: r.auto_approve,
        auto_approve_rules,
        require_reason: r.require_reason,
        extensions,
        critical_options: r.critical_options,
        approval_key,
        approve_with_key: r.approve_with_key,
        schedule: role_schedule,
        reason_pattern,
        reason_help: r.reason_help.map(|h| h.trim().to_string()),
        pending_ttl_secs,
    }
}

fn valid_cidr(s: &str) -> bool {
    let (addr, prefix) = match s.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (s, None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        return false;
    };
    match prefix {
        None => true,
        Some(p) => {
            let max = if ip.is_ipv4() { 32 } else { 128 };
            p.parse::<u8>().is_ok_and(|n| n <= max)
        }
    }
}

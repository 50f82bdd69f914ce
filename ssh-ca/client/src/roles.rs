//! `jit roles`: the roles the caller may request, as the CA applies them to the caller.

use std::fmt::Write as _;

use jit_api::wire::RolesView;
use jit_common::time::format_duration;

/// The human form of `GET /v1/roles`: one block per role. Server strings are made safe for
/// a terminal (control characters escaped, long fields cut).
pub fn render(v: &RolesView) -> String {
    let c = |s: &str| jit_common::log::sanitize(s, 300);
    let list = |items: &[String]| items.iter().map(|s| c(s)).collect::<Vec<_>>().join(", ");
    if v.roles.is_empty() {
        return "You may not request any role (an operator adds you to a role's requesters in \
                policy.toml).\n"
            .to_string();
    }
    let mut out = String::new();
    for (i, r) in v.roles.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let auto = if r.auto_approval.is_empty() {
            "no".to_string()
        } else {
            r.auto_approval
                .iter()
                .map(|a| {
                    let mut when = vec![format!("up to {}", format_duration(a.max_duration_secs))];
                    if !a.hosts.is_empty() {
                        when.push(format!("hosts {}", list(&a.hosts)));
                    }
                    if !a.schedule.is_empty() {
                        when.push(format!(
                            "when {}",
                            a.schedule
                                .iter()
                                .map(|s| c(s))
                                .collect::<Vec<_>>()
                                .join(" or ")
                        ));
                    }
                    if let Some(p) = &a.ticket_pattern {
                        when.push(format!("ticket matching {}", c(p)));
                    }
                    if let Some(w) = &a.webhook {
                        when.push(format!("if webhook {} says yes", c(w)));
                    }
                    format!("{} ({})", c(&a.rule), when.join("; "))
                })
                .collect::<Vec<_>>()
                .join("\n                ")
        };
        let reason = match (&r.reason_pattern, &r.reason_help) {
            (Some(p), Some(h)) => format!("must match {} ({})", c(p), c(h)),
            (Some(p), None) => format!("must match {}", c(p)),
            (None, _) if r.require_reason => "required".to_string(),
            (None, _) => "optional".to_string(),
        };
        let schedule = if r.schedule.is_empty() {
            String::new()
        } else {
            format!(
                "  schedule:     {}\n",
                r.schedule
                    .iter()
                    .map(|s| c(s))
                    .collect::<Vec<_>>()
                    .join("\n                ")
            )
        };
        let pending = match r.pending_ttl_secs {
            Some(t) => format!(
                "  pending:      expires if not approved within {}\n",
                format_duration(t)
            ),
            None => String::new(),
        };
        let approvers = if r.approvers.is_empty() {
            "none".to_string()
        } else {
            list(&r.approvers)
        };
        let session = if r.session_bound {
            "  session:      bound: sudo only inside the SSH connection made with the \
             certificate, until it closes\n"
        } else {
            ""
        };
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{}\n  hosts:        {}\n  principals:   {}\n  sudo:         {}\n{session}  max duration: {}\n  \
             approvers:    {} ({} approval{} needed)\n{pending}{schedule}  reason:       {}\n  auto-approve: {}\n",
            c(&r.name),
            list(&r.hosts),
            list(&r.principals),
            if r.sudo { "yes" } else { "no" },
            format_duration(r.max_duration_secs),
            approvers,
            r.approvals_required,
            if r.approvals_required == 1 { "" } else { "s" },
            reason,
            auto,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_api::wire::{AutoApprovalView, RoleView};

    #[test]
    fn renders_each_role_and_escapes_server_strings() {
        let v = RolesView {
            roles: vec![
                RoleView {
                    name: "db-admin".into(),
                    hosts: vec!["db-*".into()],
                    principals: vec!["alice".into(), "dbadmin".into()],
                    sudo: true,
                    session_bound: false,
                    max_duration_secs: 3600,
                    approvers: vec!["group:dba".into()],
                    approvals_required: 1,
                    require_reason: true,
                    auto_approval: vec![],
                    schedule: vec![],
                    reason_pattern: None,
                    reason_help: None,
                    pending_ttl_secs: None,
                },
                RoleView {
                    name: "quick\u{1b}[2J".into(),
                    hosts: vec!["web-*".into()],
                    principals: vec!["alice".into()],
                    sudo: false,
                    session_bound: false,
                    max_duration_secs: 7200,
                    approvers: vec![],
                    approvals_required: 2,
                    require_reason: false,
                    auto_approval: vec![AutoApprovalView {
                        rule: "auto:oncall".into(),
                        max_duration_secs: 900,
                        hosts: vec![],
                        schedule: vec![],
                        ticket_pattern: None,
                        webhook: None,
                    }],
                    schedule: vec![],
                    reason_pattern: None,
                    reason_help: None,
                    pending_ttl_secs: None,
                },
            ],
        };
        assert_eq!(
            render(&v),
            "db-admin\n  hosts:        db-*\n  principals:   alice, dbadmin\n  sudo:         yes\n  \
             max duration: 1h\n  approvers:    group:dba (1 approval needed)\n  reason:       \
             required\n  auto-approve: no\n\nquick\\x1b[2J\n  hosts:        web-*\n  principals:   \
             alice\n  sudo:         no\n  max duration: 2h\n  approvers:    none (2 approvals \
             needed)\n  reason:       optional\n  auto-approve: auto:oncall (up to 15m)\n"
        );
        assert_eq!(
            render(&RolesView { roles: vec![] }),
            "You may not request any role (an operator adds you to a role's requesters in \
             policy.toml).\n"
        );
    }

    #[test]
    fn renders_schedules_reason_rules_and_each_auto_rules_conditions() {
        let rule = |name: &str| AutoApprovalView {
            rule: format!("auto:{name}"),
            max_duration_secs: 1800,
            hosts: vec![],
            schedule: vec![],
            ticket_pattern: None,
            webhook: None,
        };
        let v = RolesView {
            roles: vec![RoleView {
                name: "db-admin".into(),
                hosts: vec!["db-*".into()],
                principals: vec!["alice".into()],
                sudo: true,
                session_bound: false,
                max_duration_secs: 3600,
                approvers: vec!["group:dba".into()],
                approvals_required: 1,
                require_reason: true,
                auto_approval: vec![
                    AutoApprovalView {
                        hosts: vec!["db-1".into(), "db-2".into()],
                        schedule: vec![
                            "mon-fri 18:00-09:00 Europe/Berlin".into(),
                            "sat,sun all day Europe/Berlin".into(),
                        ],
                        ticket_pattern: Some("^INC-\u{7}".into()),
                        webhook: Some("pager".into()),
                        ..rule("oncall")
                    },
                    rule("lead"),
                ],
                schedule: vec![
                    "mon-fri 09:00-17:00 Europe/Berlin".into(),
                    "sat 10:00-12:00 UTC".into(),
                ],
                reason_pattern: Some("^(INC|CHG)-[0-9]+".into()),
                reason_help: Some("Start with the ticket, e.g. INC-123".into()),
                pending_ttl_secs: Some(1800),
            }],
        };
        assert_eq!(
            render(&v),
            "db-admin\n  hosts:        db-*\n  principals:   alice\n  sudo:         yes\n  \
             max duration: 1h\n  approvers:    group:dba (1 approval needed)\n  \
             pending:      expires if not approved within 30m\n  \
             schedule:     mon-fri 09:00-17:00 Europe/Berlin\n                \
             sat 10:00-12:00 UTC\n  \
             reason:       must match ^(INC|CHG)-[0-9]+ (Start with the ticket, e.g. INC-123)\n  \
             auto-approve: auto:oncall (up to 30m; hosts db-1, db-2; when mon-fri 18:00-09:00 \
             Europe/Berlin or sat,sun all day Europe/Berlin; ticket matching ^INC-\\x07; if webhook pager says yes)\n                \
             auto:lead (up to 30m)\n"
        );
    }
}

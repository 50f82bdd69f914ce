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
                    format!(
                        "{} (up to {})",
                        c(&a.rule),
                        format_duration(a.max_duration_secs)
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let approvers = if r.approvers.is_empty() {
            "none".to_string()
        } else {
            list(&r.approvers)
        };
        // Writing to a String cannot fail.
        let _ = write!(
            out,
            "{}\n  hosts:        {}\n  principals:   {}\n  sudo:         {}\n  max duration: {}\n  \
             approvers:    {} ({} approval{} needed)\n  reason:       {}\n  auto-approve: {}\n",
            c(&r.name),
            list(&r.hosts),
            list(&r.principals),
            if r.sudo { "yes" } else { "no" },
            format_duration(r.max_duration_secs),
            approvers,
            r.approvals_required,
            if r.approvals_required == 1 { "" } else { "s" },
            if r.require_reason {
                "required"
            } else {
                "optional"
            },
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
                    max_duration_secs: 3600,
                    approvers: vec!["group:dba".into()],
                    approvals_required: 1,
                    require_reason: true,
                    auto_approval: vec![],
                },
                RoleView {
                    name: "quick\u{1b}[2J".into(),
                    hosts: vec!["web-*".into()],
                    principals: vec!["alice".into()],
                    sudo: false,
                    max_duration_secs: 7200,
                    approvers: vec![],
                    approvals_required: 2,
                    require_reason: false,
                    auto_approval: vec![AutoApprovalView {
                        rule: "auto:oncall".into(),
                        max_duration_secs: 900,
                    }],
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
}

//! `policy.toml`: roles, who may request them, who approves, what gets issued.
//!
//! Parsed strictly (unknown keys are errors) into raw structs, then validated into [`Policy`]
//! collecting every problem (like `visudo -c`). Nothing here touches the clock, the database
//! or the network: decisions take users, groups and durations as plain values.

mod auto;
mod parse;
mod pattern;
mod role;
mod schedule;

use std::collections::BTreeMap;

pub use auto::{AutoApproval, AutoDecision, AutoInput};
pub use pattern::{MAX_TICKET_LEN, Pattern};
pub use role::{
    ApprovalKey, Asked, AutoRule, KNOWN_CRITICAL_OPTIONS, KNOWN_EXTENSIONS, MAX_ROLE_DURATION,
    Role, Subject, check_name, selectors_cover,
};
pub use schedule::{NextStart, Schedule};

/// The commented `policy.toml` that `jit-ca init` writes.
pub const TEMPLATE: &str = r#"# jit-ca policy: roles engineers can request. Check with `jit-ca policy check --dir DIR`;
# a running `jit-ca serve` re-reads it on SIGHUP (a bad file is rejected, the old one kept).
#
# Subjects in `requesters`/`approvers` are user names (`jit-ca user add NAME`) or groups
# written `group:NAME` (`jit-ca user add NAME --group NAME`).

# Auditors may see every request, who has access now for every role, and the audit pages of
# the web interface (docs/web.md); others see their own requests and those they may approve.
# auditors = ["group:security"]

[roles.db-admin]
principals = ["dbadmin"]        # extra SSH principals; the requester's own login is always included
hosts = ["db-*"]                # host selectors for the grant: exact names or globs (* ? [a-z])
sudo = true                     # issue a sudo grant with the certificate
max_duration = "1h"             # longest window; requests beyond it are refused
requesters = ["group:dev"]      # users or groups who may ask
approvers = ["group:dba"]       # users or groups who may approve
approvals = 1                   # k distinct approvers; the requester never counts, even if in the group
auto_approve = false            # true approves every request at once (use rules below instead)
require_reason = true
extensions = ["permit-pty"]     # OpenSSH extensions: permit-pty, permit-port-forwarding, ...
# approval_key = "dedicated"    # approvals must be signed with: "any" registered key (default),
#                               # "dedicated" an approval key (jit-ca user add-key NAME --key FILE
#                               # --approval), "sk" a FIDO key with a touch (sk-ssh-ed25519,
#                               # sk-ecdsa), or "dedicated-sk" both. Stops a forwarded agent alone
#                               # from approving.
# critical_options = { "source-address" = "10.0.0.0/8", "force-command" = "/usr/bin/psql" }
# schedule = [{ days = ["mon-fri"], hours = "08:00-20:00", tz = "Europe/Berlin" }]
#                               # when the role may be requested (IANA zone; several windows
#                               # are a union; "22:00-06:00" crosses midnight); default any time
# reason_pattern = '^(INC|CHG)-[0-9]+'   # the reason must match; what matched is the ticket
# reason_help = "Start the reason with the ticket, e.g. INC-123: disk full"
# approve_with_key = true       # approvals only with `jit approve ID` (the key itself): the web
#                               # page shows that command instead of a button (default false;
#                               # any approval_key but "any" implies it)
# session_bound = true          # sudo only inside the SSH connection that presented the
#                               # certificate, while it lives (hosts need `jit-host setup
#                               # --session`; docs/host.md, "Session-bound grants")

# Auto-approval for some people and short windows only (approver recorded as "auto:<name>");
# every condition a rule names must hold, else humans approve:
# [[roles.db-admin.auto_approve_rules]]
# name = "oncall"
# groups = ["oncall"]           # and/or users = ["alice"]
# max_duration = "15m"          # default: the role's
# hosts = ["db-1", "db-2"]      # the request's hosts must be within these
# schedule = [{ days = ["mon-fri"], hours = "18:00-08:00", tz = "Europe/Berlin" }]
# ticket_pattern = '^INC-'      # the ticket must match (needs reason_pattern)
# webhook = "oncall"            # optional: approve only on this webhook's explicit yes
#
# [[webhook]]                   # an authorizing webhook (docs/api.md, "Authorizing webhook")
# name = "oncall"
# url = "https://oncall.example.com/jit/authorize"
# secret_file = "webhooks/oncall.whsec"   # whsec_<base64>, mode 0600, in this directory
# timeout = "3s"

[roles.web-read]
principals = []
hosts = ["web-*"]
sudo = false
max_duration = "4h"
requesters = ["group:dev"]
approvers = ["group:ops"]
approvals = 1
require_reason = true
extensions = ["permit-pty", "permit-port-forwarding"]
"#;

/// A validated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
    /// `[[webhook]]` tables by name (auto-approval rules name them).
    pub webhooks: BTreeMap<String, crate::webhook::Webhook>,
    /// Who may see every request, every role's access and the audit pages (`auditors`).
    pub auditors: Vec<Subject>,
}

impl Policy {
    /// Parses and validates, returning every problem found (each names the role and field).
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        parse::roles(text).map(|(roles, webhooks, auditors)| Self {
            roles,
            webhooks,
            auditors,
        })
    }

    /// Reads the webhooks' secret and CA files (relative to the data directory `dir`);
    /// every problem, each naming its webhook and file. Parsing stays pure; the service
    /// calls this when it loads the policy.
    pub fn load_webhook_files(&mut self, dir: &std::path::Path) -> Result<(), Vec<String>> {
        let problems = crate::webhook::load_files(&mut self.webhooks, dir);
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems)
        }
    }

    /// Whether `user` with `groups` is one of the policy's `auditors`.
    pub fn is_auditor(&self, user: &str, groups: &[String]) -> bool {
        self.auditors.iter().any(|s| s.includes(user, groups))
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// The roles `user` with `groups` may request.
    pub fn requestable<'a>(
        &'a self,
        user: &'a str,
        groups: &'a [String],
    ) -> impl Iterator<Item = &'a Role> + 'a {
        self.roles
            .values()
            .filter(move |r| r.may_request(user, groups))
    }

    /// The names of roles `user` may request that are close to `name` (a typo: edit
    /// distance at most 2, or one name contains the other), closest first. Only requestable
    /// roles are named, so a refusal does not reveal the rest of the policy.
    pub fn close_matches(&self, name: &str, user: &str, groups: &[String]) -> Vec<String> {
        let wanted = name.to_ascii_lowercase();
        let mut near: Vec<(usize, &str)> = self
            .requestable(user, groups)
            .filter_map(|r| {
                let have = r.name.to_ascii_lowercase();
                let d = edit_distance(&wanted, &have);
                let contains =
                    wanted.len() >= 3 && (have.contains(&wanted) || wanted.contains(&have));
                (d <= 2 || contains).then_some((d, r.name.as_str()))
            })
            .collect();
        near.sort();
        near.into_iter()
            .take(3)
            .map(|(_, n)| n.to_string())
            .collect()
    }

    /// Warnings that need the user database: groups and users the policy names that do not
    /// exist. Not errors (users may be added later), but printed by `policy check`.
    pub fn warnings(&self, users: &[String], groups: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for s in &self.auditors {
            match s {
                Subject::User(u) if !users.contains(u) => out.push(format!(
                    "auditors: user {u:?} is not registered (jit-ca user add {u} ...)"
                )),
                Subject::Group(g) if !groups.contains(g) => out.push(format!(
                    "auditors: group {g:?} has no members (jit-ca user add NAME --group {g} ...)"
                )),
                _ => {}
            }
        }
        for role in self.roles.values() {
            if role.principals.iter().any(|p| p == "root") {
                out.push(format!(
                    "roles.{}.principals: \"root\" lets the certificate log in as root on every host of the role, where pam_jit cannot gate anything; grant a named account and sudo instead",
                    role.name
                ));
            }
            if role.session_bound && !role.sudo {
                out.push(format!(
                    "roles.{}.session_bound: session_bound has no effect on a role without sudo; remove it",
                    role.name
                ));
            }
            for (field, list) in [
                ("requesters", &role.requesters),
                ("approvers", &role.approvers),
            ] {
                if list
                    .iter()
                    .any(|s| matches!(s, Subject::User(u) if u == "root"))
                {
                    out.push(format!(
                        "roles.{}.{field}: user \"root\" is a CA user whose name becomes a certificate principal: its certificates log in as root; register people under their own names",
                        role.name
                    ));
                }
            }
            let subjects = role
                .requesters
                .iter()
                .map(|s| ("requesters", s))
                .chain(role.approvers.iter().map(|s| ("approvers", s)));
            for (field, s) in subjects {
                match s {
                    Subject::User(u) if !users.contains(u) => out.push(format!(
                        "roles.{}.{field}: user {u:?} is not registered (jit-ca user add {u} ...)",
                        role.name
                    )),
                    Subject::Group(g) if !groups.contains(g) => out.push(format!(
                        "roles.{}.{field}: group {g:?} has no members (jit-ca user add NAME --group {g} ...)",
                        role.name
                    )),
                    _ => {}
                }
            }
        }
        out
    }
}

/// Levenshtein distance between `a` and `b` (by characters); names are short.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = Vec::with_capacity(b.len() + 1);
        cur.push(i + 1);
        for (j, cb) in b.iter().enumerate() {
            let substitute = prev[j] + usize::from(ca != *cb);
            cur.push(substitute.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_bound_is_off_by_default_and_parses_when_set() {
        let role = |extra: &str| {
            let text = format!(
                "[roles.db]\nhosts = [\"db-*\"]\nmax_duration = \"1h\"\nrequesters = [\"alice\"]\n\
                 approvers = [\"bob\"]\n{extra}"
            );
            Policy::parse(&text).map(|p| p.role("db").unwrap().clone())
        };
        assert!(!role("").unwrap().session_bound);
        assert!(role("session_bound = true\n").unwrap().session_bound);
        assert!(!role("session_bound = false\n").unwrap().session_bound);
        let errs = role("session_bound = \"yes\"\n").unwrap_err();
        assert!(errs.join("\n").contains("session_bound"), "{errs:?}");
        // Without sudo it binds nothing (grants are issued unbound): policy check warns.
        let text = "[roles.db]\nhosts = [\"db-*\"]\nmax_duration = \"1h\"\nrequesters = [\"alice\"]\n\
                    approvers = [\"bob\"]\nsession_bound = true\n";
        let users = ["alice".to_string(), "bob".to_string()];
        assert_eq!(
            Policy::parse(text).unwrap().warnings(&users, &[]),
            vec![
                "roles.db.session_bound: session_bound has no effect on a role without sudo; \
                 remove it"
                    .to_string()
            ]
        );
        let sudo = text.replace("session_bound", "sudo = true\nsession_bound");
        assert!(
            Policy::parse(&sudo)
                .unwrap()
                .warnings(&users, &[])
                .is_empty()
        );
    }

    #[test]
    fn edit_distance_counts_single_character_edits() {
        assert_eq!(edit_distance("db-admin", "db-admin"), 0);
        assert_eq!(edit_distance("db-admn", "db-admin"), 1);
        assert_eq!(edit_distance("bd-admin", "db-admin"), 2);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("web", "db-admin"), 8);
    }

    #[test]
    fn close_matches_name_only_requestable_roles_closest_first() {
        let p = Policy::parse(
            r#"
[roles.db-admin]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
[roles.db-admins]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
[roles.db-root]
hosts = ["db-*"]
max_duration = "1h"
requesters = ["group:dba"]
approvers = ["group:dba"]
"#,
        )
        .unwrap();
        let dev = vec!["dev".to_string()];
        assert_eq!(
            p.close_matches("db-admn", "alice", &dev),
            vec!["db-admin", "db-admins"]
        );
        assert_eq!(p.close_matches("DB-ADMIN", "alice", &dev)[0], "db-admin");
        // db-root is one edit from db-roos but alice may not request it: not named.
        assert!(p.close_matches("db-roos", "alice", &dev).is_empty());
        assert_eq!(
            p.close_matches("db-roos", "bob", &["dba".to_string()]),
            vec!["db-root"]
        );
        assert!(p.close_matches("web", "alice", &dev).is_empty());
        // A fragment of a name: "admin" is contained in both.
        assert_eq!(
            p.close_matches("admin", "alice", &dev),
            vec!["db-admin", "db-admins"]
        );
    }

    /// CONTRIBUTING.md's "Adding a policy key" names the files and the re-check as they are.
    #[test]
    fn the_policy_key_recipe_names_what_exists() {
        let doc = include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../CONTRIBUTING.md"
        ));
        let recipe = doc
            .split("### Adding a policy key")
            .nth(1)
            .and_then(|s| s.split("\n### ").next())
            .unwrap();
        let role = include_str!("role.rs");
        for (named, defined) in [
            ("`Role` in `policy/role.rs`", "pub struct Role {"),
            ("`Role::still_fits`", "pub fn still_fits(&self"),
            ("`Asked`", "pub struct Asked<"),
        ] {
            assert!(recipe.contains(named), "the recipe names {named}");
            assert!(role.contains(defined), "policy/role.rs defines {defined}");
        }
        assert!(!recipe.contains("in `policy/mod.rs`."), "{recipe}");
        assert!(recipe.contains("`service::lifecycle::still_fits`"));
        let lifecycle = include_str!("../service/lifecycle/mod.rs");
        assert!(lifecycle.contains("pub fn still_fits("));
    }

    /// The commented examples of the template are valid when uncommented.
    #[test]
    fn template_examples_are_valid() {
        // The commented `[[webhook]]` example needs a secret file: it stays commented (its
        // parse is tested in webhook/), and so does everything after it.
        let mut in_webhook = false;
        let text: String = TEMPLATE
            .lines()
            .map(|l| {
                in_webhook |= l.starts_with("# [[webhook]]");
                if in_webhook {
                    return l;
                }
                let keys = [
                    "# schedule",
                    "# reason_pattern",
                    "# reason_help",
                    "# [[roles",
                    "# name",
                    "# groups",
                    "# max_duration",
                    "# hosts",
                    "# ticket_pattern",
                ];
                if keys.iter().any(|k| l.starts_with(k)) {
                    &l[2..]
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let p = Policy::parse(&text).unwrap();
        let r = p.role("db-admin").unwrap();
        assert!(r.schedule.is_some() && r.reason_pattern.is_some());
        let rule = &r.auto_approve_rules[0];
        assert!(rule.schedule.is_some() && rule.ticket_pattern.is_some());
        assert_eq!(rule.hosts, ["db-1", "db-2"]);
    }

    #[test]
    fn template_is_valid() {
        let p = Policy::parse(TEMPLATE).unwrap();
        let r = p.role("db-admin").unwrap();
        assert_eq!(r.max_duration_secs, 3600);
        assert_eq!(r.approvals, 1);
        assert!(r.sudo && r.require_reason);
        let dev = vec!["dev".to_string()];
        assert!(r.may_request("alice", &dev));
        assert!(!r.may_request("alice", &[]));
        assert!(r.may_approve("bob", &["dba".to_string()]));
        assert!(r.covers_host("db-1"));
        assert!(r.covers_host("db-*"));
        assert!(!r.covers_host("db-1*"));
        assert!(!r.covers_host("web-1"));
    }

    #[test]
    fn reports_every_problem() {
        let text = r#"
[roles.a]
hosts = ["db 1"]
max_duration = "forever"
requesters = ["group:Dev"]
approvers = []
approvals = 0
extensions = ["permit-everything"]
critical_options = { "source-address" = "10.0.0.0/33", "bogus" = "x" }
[roles.b]
hosts = ["x"]
requesters = ["u"]
approvers = ["v"]
"#;
        let errs = Policy::parse(text).unwrap_err();
        let joined = errs.join("\n");
        for needle in [
            "roles.a.hosts",
            "roles.a.max_duration",
            "roles.a.requesters",
            "roles.a.approvers",
            "roles.a.approvals",
            "roles.a.extensions",
            "source-address",
            "\"bogus\"",
            "roles.b.max_duration",
        ] {
            assert!(joined.contains(needle), "missing {needle} in:\n{joined}");
        }
        assert!(Policy::parse("[roles.a]\nhosts=[\"x\"]\nmax_duration=\"1h\"\nrequesters=[\"u\"]\napprovers=[\"v\"]\ncolour=1").is_err());
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(text in "\\PC{0,400}") {
            let _ = Policy::parse(&text);
        }

        #[test]
        fn parse_never_panics_on_role_like_input(
            hosts in proptest::collection::vec("[a-z*?\\[\\]!0-9.-]{0,12}", 0..4),
            dur in "[0-9a-z ]{0,8}",
            k in -3i64..40,
        ) {
            let text = format!(
                "[roles.r]\nhosts = {hosts:?}\nmax_duration = {dur:?}\nrequesters = [\"group:dev\"]\napprovers = [\"bob\"]\napprovals = {k}\n"
            );
            if let Ok(p) = Policy::parse(&text) {
                let r = p.role("r").unwrap();
                proptest::prop_assert!(r.approvals >= 1 && r.max_duration_secs >= 1);
                proptest::prop_assert!(!r.hosts.is_empty());
            }
        }
    }

    #[test]
    fn auditors_and_approve_with_key() {
        let base = "[roles.r]\nhosts = [\"h\"]\nmax_duration = \"1h\"\nrequesters = [\"a\"]\napprovers = [\"b\"]\n";
        let p = Policy::parse(base).unwrap();
        assert!(p.auditors.is_empty());
        assert!(!p.is_auditor("b", &[]));
        let r = p.role("r").unwrap();
        assert!(!r.approve_with_key && !r.needs_key_to_approve());
        let p = Policy::parse(&format!(
            "auditors = [\"group:sec\", \"zoe\"]\n{base}approve_with_key = true\n"
        ))
        .unwrap();
        assert!(p.is_auditor("x", &["sec".into()]));
        assert!(p.is_auditor("zoe", &[]));
        assert!(!p.is_auditor("b", &["dba".into()]));
        assert!(p.role("r").unwrap().needs_key_to_approve());
        let p = Policy::parse(&format!("{base}approval_key = \"sk\"\n")).unwrap();
        let r = p.role("r").unwrap();
        assert!(!r.approve_with_key && r.needs_key_to_approve());
        let e = Policy::parse(&format!("auditors = [\"group:\"]\n{base}")).unwrap_err();
        assert!(e[0].starts_with("auditors: \"group:\""), "{e:?}");
        assert!(Policy::parse(&format!("auditors = \"sec\"\n{base}")).is_err());
        let w = Policy::parse(&format!("auditors = [\"group:sec\", \"zoe\"]\n{base}"))
            .unwrap()
            .warnings(&["a".into(), "b".into()], &[]);
        assert!(
            w.iter().any(|x| x.starts_with("auditors: user \"zoe\"")),
            "{w:?}"
        );
        assert!(
            w.iter().any(|x| x.starts_with("auditors: group \"sec\"")),
            "{w:?}"
        );
        // The template's commented lines, uncommented, parse.
        let t = TEMPLATE
            .replace("# auditors = ", "auditors = ")
            .replace("# approve_with_key = true ", "approve_with_key = true #");
        let p = Policy::parse(&t).unwrap();
        assert!(p.is_auditor("x", &["security".into()]));
        assert!(p.role("db-admin").unwrap().approve_with_key);
    }

    #[test]
    fn approval_key_setting() {
        let base = "[roles.r]\nhosts = [\"h\"]\nmax_duration = \"1h\"\nrequesters = [\"u\"]\napprovers = [\"v\"]\n";
        assert_eq!(
            Policy::parse(base).unwrap().role("r").unwrap().approval_key,
            ApprovalKey::Any
        );
        for (v, want) in [
            ("any", ApprovalKey::Any),
            ("dedicated", ApprovalKey::Dedicated),
            ("sk", ApprovalKey::Sk),
            ("dedicated-sk", ApprovalKey::DedicatedSk),
        ] {
            let p = Policy::parse(&format!("{base}approval_key = \"{v}\"\n")).unwrap();
            assert_eq!(p.role("r").unwrap().approval_key, want);
            assert_eq!(want.as_str(), v);
        }
        let e = Policy::parse(&format!("{base}approval_key = \"fido\"\n")).unwrap_err();
        assert!(
            e[0].contains("roles.r.approval_key") && e[0].contains("dedicated-sk"),
            "{e:?}"
        );
        // The decision from the key's properties (approval key, sk, touched).
        assert!(ApprovalKey::Any.check(false, false, false).is_ok());
        assert!(ApprovalKey::Dedicated.check(false, true, true).is_err());
        assert!(ApprovalKey::Dedicated.check(true, false, false).is_ok());
        assert!(ApprovalKey::Sk.check(true, false, false).is_err());
        assert!(ApprovalKey::Sk.check(false, true, false).is_err());
        assert!(ApprovalKey::Sk.check(false, true, true).is_ok());
        assert!(ApprovalKey::DedicatedSk.check(false, true, true).is_err());
        assert!(ApprovalKey::DedicatedSk.check(true, true, true).is_ok());
    }

    #[test]
    fn auto_rules() {
        let text = r#"
[roles.r]
hosts = ["h"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:ops"]
[[roles.r.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
max_duration = "15m"
"#;
        let p = Policy::parse(text).unwrap();
        let r = p.role("r").unwrap();
        let g = vec!["dev".to_string(), "oncall".to_string()];
        let approver = |groups: &[String], duration_secs| {
            r.auto_decision(&AutoInput {
                user: "a",
                groups,
                duration_secs,
                hosts: &r.hosts,
                ticket: None,
                at: 0,
                starts_at: 0,
                asks_webhooks: true,
            })
            .approved
            .map(|a| a.approver)
        };
        assert_eq!(approver(&g, 900).as_deref(), Some("auto:oncall"));
        assert_eq!(approver(&g, 901), None);
        assert_eq!(approver(&["dev".to_string()], 60), None);
    }
}

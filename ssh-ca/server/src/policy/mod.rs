//! `policy.toml`: roles, who may request them, who approves, what gets issued.
//!
//! Parsed strictly (unknown keys are errors) into raw structs, then validated into [`Policy`]
//! collecting every problem (like `visudo -c`). Nothing here touches the clock, the database
//! or the network: decisions take users, groups and durations as plain values.

mod parse;

use std::collections::BTreeMap;

/// OpenSSH certificate extensions a role may grant.
pub const KNOWN_EXTENSIONS: &[&str] = &[
    "no-touch-required",
    "permit-X11-forwarding",
    "permit-agent-forwarding",
    "permit-port-forwarding",
    "permit-pty",
    "permit-user-rc",
];
/// Critical options a role may set.
pub const KNOWN_CRITICAL_OPTIONS: &[&str] = &["force-command", "source-address"];
/// Longest `max_duration` a role may have.
pub const MAX_ROLE_DURATION: u64 = 7 * 24 * 3600;

/// The commented `policy.toml` that `jit-ca init` writes.
pub const TEMPLATE: &str = r#"# jit-ca policy: roles engineers can request. Check with `jit-ca policy check --dir DIR`;
# a running `jit-ca serve` re-reads it on SIGHUP (a bad file is rejected, the old one kept).
#
# Subjects in `requesters`/`approvers` are user names (`jit-ca user add NAME`) or groups
# written `group:NAME` (`jit-ca user add NAME --group NAME`).

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

# Auto-approval for some people and short windows only (approver recorded as "auto:<name>"):
# [[roles.db-admin.auto_approve_rules]]
# name = "oncall"
# groups = ["oncall"]           # and/or users = ["alice"]
# max_duration = "15m"

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

/// `user` or `group:NAME` in requesters/approvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user by name.
    User(String),
    /// Every member of a group.
    Group(String),
}

impl Subject {
    fn parse(s: &str) -> Result<Self, String> {
        let (group, name) = match s.strip_prefix("group:") {
            Some(g) => (true, g),
            None => (false, s),
        };
        check_name(name)?;
        Ok(if group {
            Self::Group(name.to_string())
        } else {
            Self::User(name.to_string())
        })
    }

    /// Whether `user` with `groups` is this subject.
    pub fn includes(&self, user: &str, groups: &[String]) -> bool {
        match self {
            Self::User(u) => u == user,
            Self::Group(g) => groups.iter().any(|x| x == g),
        }
    }
}

/// Names of users and groups: the login-name rule of the grant format.
pub fn check_name(name: &str) -> Result<(), String> {
    jit_common::grant::check_user("name", name).map_err(|e| e.to_string())
}

/// An auto-approval rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AutoRule {
    /// Recorded as approver `auto:<name>`.
    pub name: String,
    /// Who it applies to.
    pub subjects: Vec<Subject>,
    /// Longest duration it approves.
    pub max_duration_secs: u64,
}

/// What key an approval of a role must be signed with (`approval_key` in policy.toml).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ApprovalKey {
    /// Any registered key of the approver (login or approval key).
    #[default]
    Any,
    /// A registered approval key (`jit-ca user add-key NAME --key FILE --approval`), never
    /// the approver's login key.
    Dedicated,
    /// A FIDO security key (`sk-ssh-ed25519@openssh.com`, `sk-ecdsa-sha2-nistp256@openssh.com`)
    /// whose signature asserts user presence (a touch).
    Sk,
    /// Both: a registered approval key that is a FIDO key, touched.
    DedicatedSk,
}

impl ApprovalKey {
    /// The accepted spellings, for messages.
    pub const NAMES: &'static str = "\"any\", \"dedicated\", \"sk\" or \"dedicated-sk\"";

    /// Parses the policy value.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "any" => Some(Self::Any),
            "dedicated" => Some(Self::Dedicated),
            "sk" => Some(Self::Sk),
            "dedicated-sk" => Some(Self::DedicatedSk),
            _ => None,
        }
    }

    /// The policy spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Any => "any",
            Self::Dedicated => "dedicated",
            Self::Sk => "sk",
            Self::DedicatedSk => "dedicated-sk",
        }
    }

    /// Whether an approval signed by a key with these properties is acceptable; else what is
    /// missing, for the refusal. `approval_key`: the key is registered as an approval key;
    /// `sk`: it is a FIDO key; `touched`: its signature carries the user-presence flag.
    pub fn check(self, approval_key: bool, sk: bool, touched: bool) -> Result<(), String> {
        let need_dedicated = matches!(self, Self::Dedicated | Self::DedicatedSk);
        let need_sk = matches!(self, Self::Sk | Self::DedicatedSk);
        if need_dedicated && !approval_key {
            return Err(
                "approvals of this role must be signed with a registered approval key, not a login key \
                 (an operator registers one: jit-ca user add-key NAME --key FILE --approval; then \
                 jit --identity APPROVAL_KEY approve ID)"
                    .into(),
            );
        }
        if need_sk && !sk {
            return Err(
                "approvals of this role must be signed with a FIDO security key (sk-ssh-ed25519 or \
                 sk-ecdsa; ssh-keygen -t ed25519-sk), which needs a touch for every signature"
                    .into(),
            );
        }
        if need_sk && !touched {
            return Err(
                "the security key's signature does not assert user presence (no touch); approvals \
                 of this role need a touch: do not use a key made with no-touch-required"
                    .into(),
            );
        }
        Ok(())
    }
}

/// What a stored request asked for, to compare with a role as it is now.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The requester.
    pub user: &'a str,
    /// The requester's groups now.
    pub groups: &'a [String],
    /// Host selectors stored with the request.
    pub hosts: &'a [String],
    /// Principals stored with the request.
    pub principals: &'a [String],
    /// Sudo as stored.
    pub sudo: bool,
    /// The whole window from approval, seconds.
    pub window_secs: u64,
}

/// A validated role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Role {
    /// Role name.
    pub name: String,
    /// Extra SSH principals.
    pub principals: Vec<String>,
    /// Host selectors.
    pub hosts: Vec<String>,
    /// Whether a sudo grant is issued.
    pub sudo: bool,
    /// Longest window, seconds.
    pub max_duration_secs: u64,
    /// Who may request.
    pub requesters: Vec<Subject>,
    /// Who may approve.
    pub approvers: Vec<Subject>,
    /// Distinct approvals needed.
    pub approvals: u32,
    /// Approve every request at once.
    pub auto_approve: bool,
    /// Approve matching requests at once.
    pub auto_approve_rules: Vec<AutoRule>,
    /// Whether a reason is mandatory.
    pub require_reason: bool,
    /// OpenSSH extensions (sorted, unique).
    pub extensions: Vec<String>,
    /// OpenSSH critical options.
    pub critical_options: BTreeMap<String, String>,
    /// What key approvals must be signed with.
    pub approval_key: ApprovalKey,
}

impl Role {
    /// The principals a certificate of this role carries for `user`: the user's own login,
    /// then the role's principals.
    pub fn principals_for(&self, user: &str) -> Vec<String> {
        let mut principals = vec![user.to_string()];
        for p in &self.principals {
            if !principals.contains(p) {
                principals.push(p.clone());
            }
        }
        principals
    }

    /// Whether a request stored earlier still fits this role as it is now: the requester may
    /// still request it, every stored host is still within it, the principals and the sudo
    /// flag are what the role gives now, and the window is within `max_duration`. Else what
    /// changed, for a "policy changed, request again" refusal.
    pub fn still_fits(&self, asked: &Asked<'_>) -> Result<(), String> {
        if !self.may_request(asked.user, asked.groups) {
            return Err(format!(
                "{} may no longer request role {:?}",
                asked.user, self.name
            ));
        }
        if let Some(h) = asked.hosts.iter().find(|h| !self.covers_host(h)) {
            return Err(format!(
                "host {h:?} is no longer within role {:?} (hosts {})",
                self.name,
                self.hosts.join(", ")
            ));
        }
        if self.principals_for(asked.user) != asked.principals {
            return Err(format!(
                "role {:?} now gives principals {} (the request has {})",
                self.name,
                self.principals_for(asked.user).join(", "),
                asked.principals.join(", ")
            ));
        }
        if self.sudo != asked.sudo {
            return Err(format!(
                "role {:?} now has sudo = {} (the request has {})",
                self.name, self.sudo, asked.sudo
            ));
        }
        if asked.window_secs > self.max_duration_secs {
            return Err(format!(
                "role {:?} now allows at most {} (the window would be {})",
                self.name,
                jit_common::time::format_duration(self.max_duration_secs),
                jit_common::time::format_duration(asked.window_secs)
            ));
        }
        Ok(())
    }

    /// Whether `user` may request this role.
    pub fn may_request(&self, user: &str, groups: &[String]) -> bool {
        self.requesters.iter().any(|s| s.includes(user, groups))
    }

    /// Whether `user` is in the approvers (self-approval is checked separately).
    pub fn may_approve(&self, user: &str, groups: &[String]) -> bool {
        self.approvers.iter().any(|s| s.includes(user, groups))
    }

    /// The auto-approval that applies, as the approver name to record.
    pub fn auto_approval(&self, user: &str, groups: &[String], duration: u64) -> Option<String> {
        if self.auto_approve {
            return Some(format!("auto:{}", self.name));
        }
        self.auto_approve_rules
            .iter()
            .find(|r| {
                duration <= r.max_duration_secs
                    && r.subjects.iter().any(|s| s.includes(user, groups))
            })
            .map(|r| format!("auto:{}", r.name))
    }

    /// Whether a requested host selector is within this role: equal to one of its selectors,
    /// or a plain host name (no glob characters) that one of them matches.
    pub fn covers_host(&self, requested: &str) -> bool {
        if jit_common::host::validate_selector(requested).is_err() {
            return false;
        }
        if self.hosts.iter().any(|h| h.eq_ignore_ascii_case(requested)) {
            return true;
        }
        let is_glob = requested.contains(['*', '?', '[', ']', '!']);
        !is_glob
            && self
                .hosts
                .iter()
                .any(|sel| jit_common::host::matches(sel, requested))
    }
}

/// A validated policy.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// Roles by name.
    pub roles: BTreeMap<String, Role>,
}

impl Policy {
    /// Parses and validates, returning every problem found (each names the role and field).
    pub fn parse(text: &str) -> Result<Self, Vec<String>> {
        parse::roles(text).map(|roles| Self { roles })
    }

    /// A role by name.
    pub fn role(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }

    /// Warnings that need the user database: groups and users the policy names that do not
    /// exist. Not errors (users may be added later), but printed by `policy check`.
    pub fn warnings(&self, users: &[String], groups: &[String]) -> Vec<String> {
        let mut out = Vec::new();
        for role in self.roles.values() {
            if role.principals.iter().any(|p| p == "root") {
                out.push(format!(
                    "roles.{}.principals: \"root\" lets the certificate log in as root on every host of the role, where pam_jit cannot gate anything; grant a named account and sudo instead",
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

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            r.auto_approval("a", &g, 900).as_deref(),
            Some("auto:oncall")
        );
        assert_eq!(r.auto_approval("a", &g, 901), None);
        assert_eq!(r.auto_approval("a", &["dev".to_string()], 60), None);
    }
}

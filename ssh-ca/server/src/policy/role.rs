//! A validated role and what it decides: who may request and approve, what a certificate
//! of the role carries, and whether a stored request still fits it.

use std::collections::BTreeMap;

use super::pattern::Pattern;
use super::schedule::Schedule;

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
/// Shortest and longest `pending_ttl` a role may have.
pub const PENDING_TTL_RANGE: (u64, u64) = (60, 30 * 24 * 3600);

/// `user` or `group:NAME` in requesters/approvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A user by name.
    User(String),
    /// Every member of a group.
    Group(String),
}

impl Subject {
    pub(super) fn parse(s: &str) -> Result<Self, String> {
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

    /// The policy spelling: a user name, or `group:NAME`.
    pub fn spelling(&self) -> String {
        match self {
            Self::User(u) => u.clone(),
            Self::Group(g) => format!("group:{g}"),
        }
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
    /// Longest duration it approves (the role's `max_duration` when the rule names none).
    pub max_duration_secs: u64,
    /// The request's hosts must be within these selectors (a subset of the role's); empty:
    /// no condition.
    pub hosts: Vec<String>,
    /// When the rule may approve (None: any time).
    pub schedule: Option<Schedule>,
    /// The request's ticket must match (a request without a ticket never does).
    pub ticket_pattern: Option<Pattern>,
    /// The `[[webhook]]` whose explicit yes it needs (`webhook = "NAME"`); without a yes in
    /// time the request goes to human approvers.
    pub webhook: Option<String>,
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
    /// The start of a later window (`--start`), if the request has one.
    pub start: Option<u64>,
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
    /// Whether its grants are bound to the SSH connection that presented the certificate
    /// (`session_bound`): hosts allow sudo only from inside that connection, while it lives.
    pub session_bound: bool,
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
    /// Approvals only with the key itself (`jit approve ID`), never a web page's button
    /// (`approve_with_key`; a role whose `approval_key` is not "any" is treated the same).
    pub approve_with_key: bool,
    /// When the role may be requested (None: any time).
    pub schedule: Option<Schedule>,
    /// The reason must match (checked before anything else); what it matched is the ticket.
    pub reason_pattern: Option<Pattern>,
    /// What to tell a requester whose reason does not match.
    pub reason_help: Option<String>,
    /// How long a request of this role stays pending (`pending_ttl`); None: the CA's
    /// `pending_expiry` (config.toml).
    pub pending_ttl_secs: Option<u64>,
}

impl Role {
    /// Whether an approval of this role must be a signed call of the approver's key: a web
    /// page's click is neither a dedicated-key signature nor a touch.
    pub fn needs_key_to_approve(&self) -> bool {
        self.approve_with_key || self.approval_key != ApprovalKey::Any
    }

    /// Whether the role's grants are session-bound: `session_bound` on a role with sudo (a
    /// binding limits only sudo; a grant without sudo is never bound, so hosts older than
    /// session binding keep accepting it at login).
    pub fn binds_sessions(&self) -> bool {
        self.session_bound && self.sudo
    }

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
        // A later window is judged where it starts (as at admission): a schedule narrowed
        // since must not let a human approve a window that now starts outside it.
        if let (Some(start), Some(schedule)) = (asked.start, &self.schedule)
            && !schedule.contains(start)
        {
            return Err(format!(
                "its start {} is now outside role {:?}'s schedule ({})",
                jit_common::time::format_utc(start),
                self.name,
                schedule.describe()
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

    /// The auto-approval rules that may apply to `user` with `groups` (their subjects
    /// include the caller; the other conditions are decided per request by
    /// [`Role::auto_decision`]); `auto_approve = true` is one rule, named after the role, up
    /// to `max_duration`.
    pub fn auto_rules_for<'a>(
        &'a self,
        user: &'a str,
        groups: &'a [String],
    ) -> impl Iterator<Item = &'a AutoRule> + 'a {
        self.auto_approve_rules
            .iter()
            .filter(move |r| r.subjects.iter().any(|s| s.includes(user, groups)))
    }

    /// Whether a requested host selector is within this role: equal to one of its selectors,
    /// or a plain host name (no glob characters) that one of them matches.
    pub fn covers_host(&self, requested: &str) -> bool {
        selectors_cover(&self.hosts, requested)
    }
}

/// Whether a requested host selector is within `selectors`: equal to one of them, or a
/// plain host name (no glob characters) that one of them matches.
pub fn selectors_cover(selectors: &[String], requested: &str) -> bool {
    if jit_common::host::validate_selector(requested).is_err() {
        return false;
    }
    if selectors.iter().any(|h| h.eq_ignore_ascii_case(requested)) {
        return true;
    }
    let is_glob = requested.contains(['*', '?', '[', ']', '!']);
    !is_glob
        && selectors
            .iter()
            .any(|sel| jit_common::host::matches(sel, requested))
}

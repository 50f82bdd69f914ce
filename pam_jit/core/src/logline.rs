//! The syslog lines of `pam_jit.so`, built here (pure: strings in, a string out) so that
//! their format is one contract with one test. The module only sends them (`pam_syslog`).
//!
//! Every line is `key=value` fields separated by one space, always the same keys in the same
//! order for its kind ([`ACCOUNT_KEYS`] for the sudo decision, [`SESSION_KEYS`] for sshd's
//! session hooks), `-` for a value that does not apply or is unknown, `reason` last. A value
//! that is empty or contains whitespace, `"` or `=` is written in double quotes, with `"`
//! turned into `'` (so a quoted value never contains `"`). Control characters and the
//! backslash are written `\xNN` (`\` is `\x5c`, so every `\` starts an escape and a value never
//! ends in one: logfmt parsers cannot misread `\"`) and Unicode format characters
//! `\u{NNNN}`, so a line is one line. Values other than
//! `reason` are cut at [`MAX_VALUE`] bytes, and `reason` at what is left of
//! [`jit_common::log::MAX_LINE`], so a line is never cut inside a quoted value; a cut value
//! ends in `...`. docs/host.md ("Log fields for pipelines") documents each key.

use jit_common::log::{MAX_LINE, escape_value, field_escaped};

use crate::decide::Decision;
use crate::session::Binding;

/// The keys of a sudo decision's line (`pam_jit(sudo:account)`), in order.
pub const ACCOUNT_KEYS: [&str; 9] = [
    "result", "user", "uid", "service", "tty", "grant", "session", "serial", "reason",
];

/// The keys of a session hook's line (`pam_jit(sshd:session)`), in order.
pub const SESSION_KEYS: [&str; 9] = [
    "result", "user", "service", "session", "serial", "grant", "client", "leader", "reason",
];

/// Longest value of a field other than `reason`, in bytes (after escaping).
pub const MAX_VALUE: usize = 96;

/// One line from `(key, value)` pairs, `reason` last (see the module doc).
fn build(fields: &[(&str, Option<String>)], reason: &str) -> String {
    let mut parts: Vec<String> = fields
        .iter()
        .map(|(k, v)| field_escaped(k, &escape_value(v.as_deref().unwrap_or("-"), MAX_VALUE)))
        .collect();
    let used: usize = parts.iter().map(|p| p.len() + 1).sum();
    // `reason=` and two quotes.
    let budget = MAX_LINE.saturating_sub(used + "reason=\"\"".len());
    parts.push(field_escaped("reason", &escape_value(reason, budget)));
    parts.join(" ")
}

/// The line of a sudo decision: `d`, with the PAM service and tty (as PAM gave them) and the
/// caller's real uid.
pub fn account_line(d: &Decision, service: Option<&str>, tty: Option<&str>, uid: u32) -> String {
    build(
        &[
            ("result", Some(d.result_word().to_string())),
            ("user", d.user.clone()),
            ("uid", Some(uid.to_string())),
            ("service", service.map(str::to_string)),
            ("tty", tty.map(str::to_string)),
            ("grant", d.grant_id.clone()),
            ("session", d.session.map(|s| s.to_string())),
            ("serial", d.serial.map(|s| s.to_string())),
        ],
        &d.reason,
    )
}

/// What a session hook logs, field by field ([`SESSION_KEYS`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    /// `bind`, `no-bind` or `end`.
    pub result: &'static str,
    /// `PAM_USER`.
    pub user: Option<String>,
    /// `PAM_SERVICE` (sshd's).
    pub service: Option<String>,
    /// The audit session id.
    pub session: Option<u32>,
    /// The certificate serial of the session-bound grant.
    pub serial: Option<u64>,
    /// The grant id.
    pub grant: Option<String>,
    /// The SSH client's address (`PAM_RHOST`).
    pub client: Option<String>,
    /// The sshd process that leads the connection.
    pub leader: Option<u32>,
    /// Why, for people.
    pub reason: String,
}

impl SessionEvent {
    /// The log line.
    pub fn line(&self) -> String {
        build(
            &[
                ("result", Some(self.result.to_string())),
                ("user", self.user.clone()),
                ("service", self.service.clone()),
                ("session", self.session.map(|s| s.to_string())),
                ("serial", self.serial.map(|s| s.to_string())),
                ("grant", self.grant.clone()),
                ("client", self.client.clone()),
                ("leader", self.leader.map(|l| l.to_string())),
            ],
            &self.reason,
        )
    }

    /// A `no-bind` line before any grant is known: the user, client, audit session (when
    /// set) and this process as the would-be leader.
    pub fn no_bind(
        user: Option<String>,
        client: Option<String>,
        session: Option<u32>,
        reason: String,
    ) -> Self {
        Self {
            result: "no-bind",
            user,
            session,
            client,
            leader: Some(std::process::id()),
            reason,
            ..Self::default()
        }
    }

    /// A line about binding `b`: every field from it (session, serial, grant, client,
    /// leader).
    pub fn of_binding(result: &'static str, b: &Binding, reason: String) -> Self {
        Self {
            result,
            user: Some(b.user.clone()),
            service: None,
            session: Some(b.session_id),
            serial: Some(b.serial),
            grant: Some(b.grant_id.clone()),
            client: Some(b.client.clone()),
            leader: Some(b.leader_pid),
            reason,
        }
    }
}

#[cfg(test)]
mod tests;

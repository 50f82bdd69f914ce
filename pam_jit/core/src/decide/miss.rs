//! Why one grant file did not allow the request, ranked by how useful it is to the user, and
//! how a denial explains it.

use jit_common::UnixTime;
use jit_common::time::{format_duration, format_utc};

/// The hint of a denial by a session-bound grant whose connection has ended or is gone.
const FRESH: &str = "log in again with a fresh certificate";

/// Why one grant file did not allow the request.
#[derive(Debug, Clone)]
pub(super) enum Miss {
    Revoked {
        id: String,
        role: String,
        detail: String,
    },
    Stale {
        id: String,
        detail: String,
    },
    BreakGlassTooLong {
        id: String,
        window: u64,
        cap: u64,
    },
    Expired {
        id: String,
        role: String,
        not_after: UnixTime,
    },
    NotYetValid {
        id: String,
        not_before: UnixTime,
    },
    OtherHost {
        id: String,
        role: String,
        selectors: Vec<String>,
    },
    NoSudo {
        id: String,
        role: String,
    },
    Invalid {
        file: String,
        detail: String,
    },
    OtherUser {
        file: String,
        grant_user: String,
    },
    /// Session-bound, and the caller is in no login session (no audit session id).
    NoSession {
        id: String,
    },
    /// Session-bound, and the caller's session has no binding.
    NoBinding {
        id: String,
        session: u32,
    },
    /// Session-bound, and the caller's session's binding may not be trusted.
    BindingUnusable {
        id: String,
        session: u32,
        detail: String,
    },
    /// Not bound to the caller's session, whose binding is for another user, grant or
    /// certificate (`bound`: the grant it binds): the grant was presented by another
    /// connection, or alongside the bound one in this connection (one connection binds
    /// one session-bound grant, the first).
    OtherConnection {
        id: String,
        serial: u64,
        session: u32,
        bound: String,
    },
    /// Session-bound to the caller's session, which ended (a tombstone).
    SessionEnded {
        id: String,
        session: u32,
        at: UnixTime,
    },
    /// Session-bound to the caller's session, whose privileged sshd process is gone (or its
    /// pid now belongs to another process), or which was bound before the host rebooted.
    /// `detail` completes "grant X is bound to SSH session N, ...".
    SessionGone {
        id: String,
        session: u32,
        detail: String,
    },
    /// Session-bound to the caller's session, whose liveness cannot be read.
    SessionUnknown {
        id: String,
        session: u32,
        detail: String,
    },
}

impl Miss {
    fn rank(&self) -> u32 {
        match self {
            // Session misses come only after every other check passed: the grant would allow
            // but for the connection, so they are what the user needs to hear. The end of the
            // caller's own connection beats "bound to another connection" (an older grant).
            Self::NoSession { .. } | Self::NoBinding { .. } | Self::BindingUnusable { .. } => 99,
            Self::SessionEnded { .. } | Self::SessionGone { .. } | Self::SessionUnknown { .. } => {
                98
            }
            Self::OtherConnection { .. } => 97,
            // A covering grant that only a stale or missing list blocks says so, even when
            // an older (superseded, revoked) grant is also stored: the list is what to fix.
            Self::Stale { .. } => 95,
            Self::Revoked { .. } => 90,
            Self::BreakGlassTooLong { .. } => 85,
            Self::Expired { .. } => 70,
            Self::NotYetValid { .. } => 60,
            Self::OtherHost { .. } => 50,
            Self::NoSudo { .. } => 45,
            Self::Invalid { .. } => 30,
            Self::OtherUser { .. } => 20,
        }
    }

    /// Whether `self` is a more useful reason to show than `than` (higher rank; among
    /// expired grants, the one that expired last).
    pub(super) fn better_than(&self, than: &Self) -> bool {
        match (than, self) {
            (b, m) if m.rank() > b.rank() => true,
            (Self::Expired { not_after: old, .. }, Self::Expired { not_after: new, .. }) => {
                new > old
            }
            _ => false,
        }
    }

    pub(super) fn grant_id(&self) -> Option<String> {
        match self {
            Self::Revoked { id, .. }
            | Self::Stale { id, .. }
            | Self::BreakGlassTooLong { id, .. }
            | Self::Expired { id, .. }
            | Self::NotYetValid { id, .. }
            | Self::OtherHost { id, .. }
            | Self::NoSudo { id, .. }
            | Self::NoSession { id }
            | Self::NoBinding { id, .. }
            | Self::BindingUnusable { id, .. }
            | Self::OtherConnection { id, .. }
            | Self::SessionEnded { id, .. }
            | Self::SessionGone { id, .. }
            | Self::SessionUnknown { id, .. } => Some(id.clone()),
            Self::Invalid { .. } | Self::OtherUser { .. } => None,
        }
    }

    /// The reason and the hint of the denial.
    pub(super) fn explain(&self) -> (String, String) {
        let request =
            |role: &str| format!("run: jit request {role} --duration 30m --reason \"...\"");
        match self {
            Self::Revoked { id, role, detail } => {
                (format!("grant {id} was revoked ({detail})"), request(role))
            }
            Self::Stale { id, detail } => (
                format!("grant {id} cannot be checked against revocations: {detail}"),
                "ask an administrator to run: jit-host sync".to_string(),
            ),
            Self::BreakGlassTooLong { id, window, cap } => (
                format!(
                    "break-glass grant {id} spans {}, more than break_glass_max_window_secs ({})",
                    format_duration(*window),
                    format_duration(*cap)
                ),
                format!(
                    "sign a break-glass grant of at most {}",
                    format_duration(*cap)
                ),
            ),
            Self::Expired {
                id,
                role,
                not_after,
            } => (
                format!("grant {id} expired at {}", format_utc(*not_after)),
                request(role),
            ),
            Self::NotYetValid { id, not_before } => (
                format!("grant {id} starts at {}", format_utc(*not_before)),
                "wait, or check this host's clock".to_string(),
            ),
            Self::OtherHost {
                id,
                role,
                selectors,
            } => (
                format!(
                    "grant {id} covers hosts {}, not this one",
                    selectors.join(",")
                ),
                request(role),
            ),
            Self::NoSudo { id, role } => (
                format!("grant {id} (role {role}) does not allow sudo"),
                request("ROLE"),
            ),
            Self::Invalid { file, detail } => (
                format!("grant file {file} is not valid: {detail}"),
                request("ROLE"),
            ),
            Self::OtherUser { file, grant_user } => (
                format!("grant file {file} is for user {grant_user}"),
                request("ROLE"),
            ),
            Self::NoSession { id } => (
                format!(
                    "grant {id} is bound to an SSH session, but this process is in no login session (no audit session id)"
                ),
                "run sudo from the SSH connection that presented the certificate; if you did, the host's /etc/pam.d/sshd needs `session required pam_loginuid.so` before pam_jit.so (jit-host setup --session)".to_string(),
            ),
            Self::NoBinding { id, session } => (
                format!("SSH session {session} has no binding"),
                format!(
                    "log in with the certificate that carries grant {id} (jit login), or if you did, add `session optional pam_jit.so` after pam_loginuid in /etc/pam.d/sshd (jit-host setup --session)"
                ),
            ),
            Self::BindingUnusable {
                id,
                session,
                detail,
            } => (
                format!("grant {id} is bound to SSH session {session}, whose binding may not be trusted: {detail}"),
                "ask an administrator to fix it (jit-host check shows the problem)".to_string(),
            ),
            Self::OtherConnection {
                id,
                serial,
                session,
                bound,
            } => (
                format!(
                    "grant {id} (certificate serial {serial}) is not bound to SSH session {session} (grant {bound} is): it is bound to another SSH connection, or was presented in this one alongside grant {bound}"
                ),
                "use sudo in the connection that bound it, or log in again with only its certificate (jit login)"
                    .to_string(),
            ),
            Self::SessionEnded { id, session, at } => (
                format!(
                    "grant {id} is bound to SSH session {session}, which ended at {}",
                    format_utc(*at)
                ),
                FRESH.to_string(),
            ),
            Self::SessionGone {
                id,
                session,
                detail,
            } => (
                format!("grant {id} is bound to SSH session {session}, {detail}"),
                FRESH.to_string(),
            ),
            Self::SessionUnknown {
                id,
                session,
                detail,
            } => (
                format!("grant {id} is bound to SSH session {session}, whose connection cannot be checked: {detail}"),
                "ask an administrator (jit-host sessions shows it)".to_string(),
            ),
        }
    }
}

//! Why one grant file did not allow the request, ranked by how useful it is to the user, and
//! how a denial explains it.

use jit_common::UnixTime;
use jit_common::time::{format_duration, format_utc};

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
}

impl Miss {
    fn rank(&self) -> u32 {
        match self {
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
            | Self::NoSudo { id, .. } => Some(id.clone()),
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
        }
    }
}

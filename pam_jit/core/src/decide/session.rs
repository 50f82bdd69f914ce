//! Session-bound grants at sudo: the caller's session's binding, as read by
//! [`crate::gather_binding`], against a grant that passed every other check.
//!
//! A session-bound grant allows only if the caller is in an audit session
//! ([`super::Facts::session_id`]), that session has a trusted binding, the binding is for this
//! user, this grant id and this certificate serial, and it is alive (not ended, this boot,
//! leader process alive with its recorded start time).

use jit_common::Grant;

use super::miss::Miss;
use crate::session::{Binding, Liveness};

/// The caller's session's binding, as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BindingEvidence {
    /// Not looked for: the caller has no audit session id, or none of their grants that
    /// could allow is session-bound (the common path reads nothing more).
    NotRead,
    /// `<session_dir>/<id>.binding` does not exist.
    Missing,
    /// It (or the session directory) may not be trusted, or does not parse: why.
    Unusable(String),
    /// The binding and whether its connection is alive now.
    Found(Box<Binding>, Liveness),
}

/// Whether the caller's session binds `g` (a verified grant with `session_bound`) for `user`.
pub(super) fn check(
    g: &Grant,
    user: &str,
    session_id: Option<u32>,
    evidence: &BindingEvidence,
) -> Result<(), Miss> {
    let id = g.id.clone();
    let serial = g.cert_serial.unwrap_or_default();
    let Some(session) = session_id else {
        return Err(Miss::NoSession { id });
    };
    let (b, live) = match evidence {
        BindingEvidence::Found(b, live) => (&**b, live),
        // Not read although a session-bound grant got this far: fail closed, as if there were
        // no binding (the reader looks whenever such a grant's claims could allow).
        BindingEvidence::NotRead | BindingEvidence::Missing => {
            return Err(Miss::NoBinding { id, session });
        }
        BindingEvidence::Unusable(detail) => {
            return Err(Miss::BindingUnusable {
                id,
                session,
                detail: detail.clone(),
            });
        }
    };
    // A binding that names another session, or this grant with another serial or user, is
    // not another connection's: the file does not say what it should (never an allow).
    let odd = if b.session_id != session {
        Some(format!("the file names SSH session {}", b.session_id))
    } else if b.grant_id == g.id && (b.user != user || Some(b.serial) != g.cert_serial) {
        Some(format!(
            "it names grant {} with certificate serial {} for user {}, not serial {serial} for {user}",
            b.grant_id, b.serial, b.user
        ))
    } else {
        None
    };
    if let Some(detail) = odd {
        return Err(Miss::BindingUnusable {
            id,
            session,
            detail,
        });
    }
    if b.user != user || b.grant_id != g.id || Some(b.serial) != g.cert_serial {
        return Err(Miss::OtherConnection {
            id,
            serial,
            session,
            bound: b.grant_id.clone(),
        });
    }
    match live {
        Liveness::Alive => Ok(()),
        Liveness::Ended { at, .. } => Err(Miss::SessionEnded {
            id,
            session,
            at: *at,
        }),
        Liveness::LeaderGone { pid } => Err(Miss::SessionGone {
            id,
            session,
            detail: format!(
                "whose privileged sshd process {pid} is gone (logout, dropped connection or killed)"
            ),
        }),
        Liveness::OtherBoot => Err(Miss::SessionGone {
            id,
            session,
            detail: "which was bound before the host rebooted".into(),
        }),
        Liveness::Unreadable(why) => Err(Miss::SessionUnknown {
            id,
            session,
            detail: why.clone(),
        }),
    }
}

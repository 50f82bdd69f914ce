//! Admission of a new request, pure: the checks of a role's conditions in the order the
//! requester meets them, then whether an auto-approval rule approves it at once. The service
//! (`admit`) and `jit-ca policy test` call the same [`check_request`].
//!
//! Order: the caller may request the role; the reason matches `reason_pattern` (before
//! anything else about the request); the instant (and the start of a later window) is
//! inside the role's `schedule`; the
//! duration; the reason's presence and text; the hosts. Then [`Role::auto_decision`].

use super::{Ruling, refuse};
use crate::policy::{AutoDecision, AutoInput, MAX_TICKET_LEN, Role};
use crate::service::check_text;
use jit_api::wire::ErrorCode as C;
use jit_common::time::format_duration;

/// What a requester asks, as admission decides on it (the request without its key).
#[derive(Debug, Clone, Copy)]
pub struct Asking<'a> {
    pub user: &'a str,
    pub groups: &'a [String],
    pub duration_secs: u64,
    pub reason: &'a str,
    /// Host selectors asked for (empty: the role's).
    pub hosts: &'a [String],
    /// The start of a later window (`--start`), if any.
    pub start: Option<u64>,
}

/// A request that passed admission.
#[derive(Debug, Clone)]
pub struct Checked {
    /// The reason, trimmed.
    pub reason: String,
    /// What `reason_pattern` matched (see `policy::Pattern::ticket`).
    pub ticket: Option<String>,
    /// The host selectors of the grant.
    pub hosts: Vec<String>,
    /// Whether an auto-approval rule approves it at `now`, and why the others did not.
    pub auto: AutoDecision,
}

/// Checks a request for `role` at `now` (see the module's order); the refusal is the one
/// the API answers.
pub fn check_request(role: &Role, asking: &Asking<'_>, now: u64) -> Ruling<Checked> {
    if !role.may_request(asking.user, asking.groups) {
        return Err(refuse(
            C::NotARequester,
            format!("you ({}) may not request role {:?}", asking.user, role.name),
        ));
    }
    let reason = asking.reason.trim().to_string();
    let ticket = match &role.reason_pattern {
        None => None,
        Some(p) => match p.ticket(&reason) {
            Some(t) => t,
            None => {
                let rule = format!(
                    "role {:?} needs a reason matching {} (--reason TEXT)",
                    role.name,
                    p.as_str()
                );
                return Err(refuse(
                    C::ReasonPatternMismatch,
                    match &role.reason_help {
                        Some(help) => format!("{help} ({rule})"),
                        None => rule,
                    },
                ));
            }
        },
    };
    if ticket.as_ref().is_some_and(|t| t.len() > MAX_TICKET_LEN) {
        return Err(refuse(
            C::InvalidInput,
            format!("the ticket in the reason is longer than {MAX_TICKET_LEN} bytes"),
        ));
    }
    // A later window is judged where it starts too: a schedule says when the role may be
    // used, and `--start` must not carry a request made inside it to a time outside.
    let starts_at = asking.start.filter(|s| *s > now).unwrap_or(now);
    if let Some(schedule) = &role.schedule
        && starts_at != now
        && !schedule.contains(starts_at)
    {
        return Err(refuse(
            C::OutsideSchedule,
            format!(
                "role {:?} may be used only {}; the requested start {} is outside it (ask \
                 for a start inside a window)",
                role.name,
                schedule.describe(),
                jit_common::time::format_utc(starts_at)
            ),
        ));
    }
    if let Some(schedule) = &role.schedule
        && !schedule.contains(now)
    {
        let next = schedule
            .next_start(now)
            .map(|n| format!("; the next window starts {}", n.local))
            .unwrap_or_default();
        return Err(refuse(
            C::OutsideSchedule,
            format!(
                "role {:?} may be requested only {}{next}",
                role.name,
                schedule.describe()
            ),
        ));
    }
    if asking.duration_secs == 0 {
        return Err(refuse(C::InvalidInput, "duration must be at least 1s"));
    }
    if asking.duration_secs > role.max_duration_secs {
        return Err(refuse(
            C::DurationTooLong,
            format!(
                "{} is longer than role {:?} allows ({}); ask for less",
                format_duration(asking.duration_secs),
                role.name,
                format_duration(role.max_duration_secs)
            ),
        ));
    }
    if role.require_reason && reason.is_empty() {
        return Err(refuse(
            C::ReasonRequired,
            format!("role {:?} requires a reason (--reason TEXT)", role.name),
        ));
    }
    check_text("reason", &reason)?;
    let hosts = if asking.hosts.is_empty() {
        role.hosts.clone()
    } else {
        if asking.hosts.len() > jit_common::grant::MAX_HOSTS {
            return Err(refuse(
                C::InvalidInput,
                format!("at most {} hosts", jit_common::grant::MAX_HOSTS),
            ));
        }
        if let Some(h) = asking.hosts.iter().find(|h| !role.covers_host(h)) {
            return Err(refuse(
                C::HostNotInRole,
                format!(
                    "host {h:?} is not within role {:?} (hosts {})",
                    role.name,
                    role.hosts.join(", ")
                ),
            ));
        }
        asking.hosts.to_vec()
    };
    let auto = role.auto_decision(&AutoInput {
        user: asking.user,
        groups: asking.groups,
        duration_secs: asking.duration_secs,
        hosts: &hosts,
        ticket: ticket.as_deref(),
        at: now,
        starts_at,
        asks_webhooks: true,
    });
    Ok(Checked {
        reason,
        ticket,
        hosts,
        auto,
    })
}

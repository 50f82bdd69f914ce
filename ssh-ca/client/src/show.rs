//! How `jit` shows requests to people: one request (`show`, and after each decision), the
//! tables of `list` and `status`, and an installed certificate. Pure: every function takes
//! `now` and returns the text, so tests compare it exactly.

use std::fmt::Write as _;

use super::login::LoginReport;
use jit_api::wire::{RequestState, RequestView};
use jit_common::time::{format_duration, format_utc};

/// What a session-bound request means, in `show` and `status`.
pub const SESSION_BOUND: &str =
    "bound: sudo only inside SSH connections made with its certificate, until they close";

/// The line `jit login` and `jit extend` print for a session-bound grant.
pub const SESSION_BOUND_LOGIN: &str = "Session-bound: sudo on these hosts works only inside SSH \
     connections made with this certificate, until they close.";

/// What `jit extend` says of a session-bound request: the extension is a new grant in a new
/// certificate, so sudo needs a new SSH connection made with it.
pub fn extended_session_bound(id: &str) -> String {
    format!(
        "{id} is session-bound: sudo on these hosts works only inside SSH connections made with \
         the new certificate, until they close; connections made with the previous one no \
         longer have sudo: log in again (ssh)"
    )
}

/// A copy of a server-supplied request safe to print on a terminal: control characters
/// (escape sequences) escaped, long fields cut.
pub fn for_terminal(r: &RequestView) -> RequestView {
    let c = |s: &str| jit_common::log::sanitize(s, 300);
    let mut r = r.clone();
    for s in [&mut r.id, &mut r.user, &mut r.role, &mut r.reason] {
        *s = c(s);
    }
    for v in [&mut r.hosts, &mut r.principals] {
        for s in v.iter_mut() {
            *s = c(s);
        }
    }
    for a in &mut r.approvals {
        a.user = c(&a.user);
    }
    for s in [
        &mut r.denied_by,
        &mut r.denial_reason,
        &mut r.grant_id,
        &mut r.revoked_by,
        &mut r.revocation_reason,
        &mut r.cancel_reason,
        &mut r.ticket,
    ]
    .into_iter()
    .flatten()
    {
        *s = c(s);
    }
    r
}

/// `at` relative to `now`: `in 2h`, `5m ago`, `now`.
fn relative(at: u64, now: u64) -> String {
    match at.cmp(&now) {
        std::cmp::Ordering::Greater => format!("in {}", format_duration(at - now)),
        std::cmp::Ordering::Less => format!("{} ago", format_duration(now - at)),
        std::cmp::Ordering::Equal => "now".to_string(),
    }
}

/// Why a request expired, for `show`: its window ended; or it was not approved within its
/// pending time, counted from its start for a later window; or, for a later window whose
/// pending time was cut at the window's end, not before that end. The view does not say
/// whether the pending time was the role's `pending_ttl` or the CA's `pending_expiry`, so
/// neither is named: "its pending expiry".
pub fn expiry(r: &RequestView) -> Option<String> {
    if r.state != RequestState::Expired {
        return None;
    }
    if let Some(end) = r.valid_before {
        return Some(format!("the window ended at {}", format_utc(end)));
    }
    let again = format!("ask again with jit request {}", r.role);
    let Some(start) = r.start else {
        let ttl = format_duration(r.pending_expires_at.saturating_sub(r.created_at));
        return Some(format!(
            "not approved within {ttl} (its pending expiry); {again}"
        ));
    };
    if r.pending_expires_at >= start.saturating_add(r.duration_secs) {
        return Some(format!(
            "not approved before its window ended at {}; {again}",
            format_utc(r.pending_expires_at)
        ));
    }
    let ttl = format_duration(r.pending_expires_at.saturating_sub(start));
    Some(format!(
        "not approved within {ttl} of its start (its pending expiry); {again}"
    ))
}

/// One request, `verb` (e.g. `Approved`) as a first line when not empty.
pub fn request(r: &RequestView, verb: &str, now: u64) -> String {
    let r = &for_terminal(r);
    let mut out = String::new();
    if !verb.is_empty() {
        let _ = writeln!(out, "{verb}: request {}", r.id);
    }
    let mut push = |k: &str, v: String| {
        let _ = writeln!(out, "{:<12}{v}", format!("{k}:"));
    };
    push("id", r.id.clone());
    push("state", r.state.as_str().to_string());
    push("user", r.user.clone());
    push("role", r.role.clone());
    push("reason", r.reason.clone());
    if let Some(t) = &r.ticket {
        push("ticket", t.clone());
    }
    push("duration", format_duration(r.duration_secs));
    if let Some(s) = r.start {
        push("start", format!("{} ({})", format_utc(s), relative(s, now)));
    }
    if !r.hosts.is_empty() {
        push("hosts", r.hosts.join(", "));
    }
    push("principals", r.principals.join(", "));
    push("sudo", if r.sudo { "yes" } else { "no" }.to_string());
    if r.session_bound {
        push("session", SESSION_BOUND.to_string());
    }
    push("created", format_utc(r.created_at));
    let approvers: Vec<_> = r.approvals.iter().map(|a| a.user.as_str()).collect();
    push(
        "approvals",
        format!(
            "{}/{}{}",
            r.approvals.len(),
            r.approvals_required,
            if approvers.is_empty() {
                String::new()
            } else {
                format!(" ({})", approvers.join(", "))
            }
        ),
    );
    if r.state == RequestState::Pending {
        push(
            "expires",
            format!("{} if not decided", format_utc(r.pending_expires_at)),
        );
    }
    if let Some(why) = expiry(r) {
        push("expired", why);
    }
    if let Some(by) = &r.denied_by {
        push("denied by", by.clone());
    }
    if let Some(at) = r.denied_at {
        push("denied at", format_utc(at));
    }
    if let Some(why) = &r.denial_reason {
        push("denial", why.clone());
    }
    if let Some(at) = r.cancelled_at {
        let why = match &r.cancel_reason {
            Some(w) => format!(": {w}"),
            None => String::new(),
        };
        push(
            "cancelled",
            format!("{} by {}{why}", format_utc(at), r.user),
        );
    }
    if r.state == RequestState::Revoked {
        let at = r.revoked_at.map_or("?".to_string(), format_utc);
        let by = r.revoked_by.as_deref().unwrap_or("?");
        let who = if by == r.user {
            format!("{by} (the requester)")
        } else {
            by.to_string()
        };
        let why = match r.revocation_reason.as_deref() {
            Some(w) if !w.is_empty() => format!(": {w}"),
            _ => String::new(),
        };
        push("revoked", format!("{at} by {who}{why}"));
    }
    if let (Some(a), Some(b)) = (r.valid_after, r.valid_before) {
        let when = match r.state {
            RequestState::Revoked => " (revoked)".to_string(),
            _ if b <= now => " (ended)".to_string(),
            _ if a > now => format!(" (starts in {})", format_duration(a - now)),
            _ => format!(" ({} left)", format_duration(b - now)),
        };
        push(
            "valid",
            format!("{} to {}{when}", format_utc(a), format_utc(b)),
        );
    }
    if let Some(s) = r.serial {
        push("serial", s.to_string());
    }
    if let Some(g) = &r.grant_id {
        push("grant", g.clone());
    }
    out
}

/// Columns laid out from the data: each as wide as its widest cell (header included);
/// `right` columns are right-aligned; the last column is not padded.
fn columns(header: &[&str], rows: &[Vec<String>], right: &[bool]) -> String {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let head: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&head).chain(rows) {
        let last = row.len() - 1;
        let mut l = String::new();
        for (i, cell) in row.iter().enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            if i == last {
                l.push_str(cell);
            } else if right[i] {
                let _ = write!(l, "{cell:>width$}", width = w[i]);
            } else {
                let _ = write!(l, "{cell:<width$}", width = w[i]);
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    }
    out
}

/// The table of `jit list` (and the pending part of `jit status`). A START column appears
/// when a request asks for a later window.
pub fn table(rs: &[RequestView]) -> String {
    if rs.is_empty() {
        return "No requests.\n".to_string();
    }
    let starts = rs.iter().any(|r| r.start.is_some());
    let mut header = vec!["ID", "STATE", "USER", "ROLE", "DURATION"];
    let mut right = vec![false, false, false, false, true];
    if starts {
        header.push("START");
        right.push(false);
    }
    header.extend(["APPROVALS", "REASON"]);
    right.extend([true, false]);
    let rows: Vec<Vec<String>> = rs
        .iter()
        .map(for_terminal)
        .map(|r| {
            let mut row = vec![
                r.id.clone(),
                r.state.as_str().to_string(),
                r.user.clone(),
                r.role.clone(),
                format_duration(r.duration_secs),
            ];
            if starts {
                row.push(r.start.map_or("-".to_string(), format_utc));
            }
            row.push(format!("{}/{}", r.approvals.len(), r.approvals_required));
            row.push(jit_common::log::sanitize(&r.reason, 60));
            row
        })
        .collect();
    columns(&header, &rows, &right)
}

/// The active elevations of `jit status`: each one's end and the time left (or when it
/// starts, for a later window). A SESSION column (`bound`) appears when one of them is
/// session-bound.
pub fn active(rs: &[RequestView], now: u64) -> String {
    let bound = rs.iter().any(|r| r.session_bound);
    let rows: Vec<Vec<String>> = rs
        .iter()
        .map(for_terminal)
        .map(|r| {
            let end = r.valid_before.unwrap_or(0);
            let left = match r.valid_after {
                Some(a) if a > now => format!(
                    "{} from {}",
                    format_duration(end.saturating_sub(a)),
                    format_utc(a)
                ),
                _ => format_duration(end.saturating_sub(now)),
            };
            let mut row = vec![r.id.clone(), r.role.clone(), r.hosts.join(",")];
            if bound {
                row.push(if r.session_bound { "bound" } else { "-" }.to_string());
            }
            row.extend([format_utc(end), left]);
            row
        })
        .collect();
    if bound {
        let header = ["ID", "ROLE", "HOSTS", "SESSION", "ENDS", "LEFT"];
        return columns(&header, &rows, &[false; 6]);
    }
    columns(&["ID", "ROLE", "HOSTS", "ENDS", "LEFT"], &rows, &[false; 5])
}

/// An installed certificate (`jit login`, and `jit request` once approved).
pub fn login(rep: &LoginReport, now: u64) -> String {
    let mut o = String::new();
    let r = &for_terminal(&rep.request);
    if let (Some(c), Some(f)) = (&rep.certificate, &rep.certificate_file) {
        let _ = writeln!(
            o,
            "Certificate for request {} written to {}",
            r.id,
            f.display()
        );
        let _ = writeln!(o, "  principals: {}", r.principals.join(", "));
        let when = if c.valid_after > now {
            format!("starts in {}", format_duration(c.valid_after - now))
        } else {
            format!(
                "{} left",
                format_duration(c.valid_before.saturating_sub(now))
            )
        };
        let _ = writeln!(
            o,
            "  valid:      {} to {} ({when})",
            format_utc(c.valid_after),
            format_utc(c.valid_before),
        );
        let _ = writeln!(o, "  serial:     {}", c.serial);
        if let Some(g) = &rep.grant_file {
            let _ = writeln!(o, "  grant:      {}", g.display());
        }
        if let Some(n) = &rep.agent_note {
            let _ = writeln!(o, "  ssh-agent:  {n}");
        }
        if let Some(h) = &rep.ssh_hint {
            let _ = writeln!(o, "Use it: {h}");
        }
        if r.session_bound {
            let _ = writeln!(o, "{SESSION_BOUND_LOGIN}");
        }
    }
    o
}

#[cfg(test)]
mod tests;

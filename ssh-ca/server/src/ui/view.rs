//! The templates (`ssh-ca/server/templates/`, askama: HTML-escaped, compiled in) and what
//! they are filled with: every value is text prepared here, so a template never decides.

use askama::Template;

use crate::audit::Record;
use crate::service::Permitted;
use crate::store::views::Elevation;
use jit_api::wire::{RequestState, RequestView};

/// What every page's frame (`base.html`) shows: who is logged in, the session, the CSRF
/// token of the logout form, the active navigation entry, a flash message.
#[derive(Debug, Clone, Default)]
pub(crate) struct Chrome {
    /// The user (None: no session; the navigation is hidden).
    pub user: Option<String>,
    /// The public session id (`ws-...`), in the footer.
    pub session: Option<String>,
    /// The session's CSRF token (hidden `csrf` field of every form).
    pub csrf: String,
    /// The navigation entry of this page: `pending`, `mine`, `access`, `audit` or empty.
    pub active: &'static str,
    /// Whether the "Audit" entry is shown (the user is an auditor).
    pub auditor: bool,
    /// A flash notice (`#notice`) or error (`#error`) from the POST before.
    pub notice: Option<String>,
    pub error: Option<String>,
    /// This build's version.
    pub version: &'static str,
}

impl Chrome {
    /// The frame of a page without a session.
    pub(crate) fn anonymous() -> Self {
        Self {
            version: env!("CARGO_PKG_VERSION"),
            ..Self::default()
        }
    }
}

/// A Unix time as `2026-11-23 12:00:00 UTC`.
pub(crate) fn when(t: u64) -> String {
    i64::try_from(t)
        .ok()
        .and_then(|s| jiff::Timestamp::from_second(s).ok())
        .map_or_else(
            || format!("@{t}"),
            |ts| ts.strftime("%Y-%m-%d %H:%M:%S UTC").to_string(),
        )
}

/// A duration in seconds as `1h 5m`, `45s`, `2d 3h`.
pub(crate) fn span(secs: u64) -> String {
    let (d, h, m, s) = (
        secs / 86_400,
        secs % 86_400 / 3600,
        secs % 3600 / 60,
        secs % 60,
    );
    match (d, h, m) {
        (0, 0, 0) => format!("{s}s"),
        (0, 0, _) if s == 0 => format!("{m}m"),
        (0, 0, _) => format!("{m}m {s}s"),
        (0, _, 0) => format!("{h}h"),
        (0, _, _) => format!("{h}h {m}m"),
        (_, 0, _) => format!("{d}d"),
        _ => format!("{d}d {h}h"),
    }
}

/// Time from `now` until `t`: `in 5m`, or `ended` when past.
pub(crate) fn until(now: u64, t: u64) -> String {
    if t > now {
        format!("{} left", span(t - now))
    } else {
        "ended".into()
    }
}

#[derive(Template)]
#[template(path = "login_required.html")]
pub(crate) struct LoginRequired {
    pub chrome: Chrome,
    pub why: Option<String>,
}

#[derive(Template)]
#[template(path = "login_confirm.html")]
pub(crate) struct LoginConfirm {
    pub chrome: Chrome,
    /// Another user this browser is logged in as now (the link would replace that session).
    pub current: Option<String>,
    pub user: String,
    pub key_fingerprint: String,
    pub expires: String,
    pub token: String,
    /// The `jit_login` cookie's nonce.
    pub nonce: String,
}

#[derive(Template)]
#[template(path = "error.html")]
pub(crate) struct ErrorPage {
    pub chrome: Chrome,
    pub title: String,
    pub message: String,
    pub hint: Option<String>,
    pub code: String,
}

/// A row of the pending page.
#[derive(Debug)]
pub(crate) struct PendingRow {
    pub id: String,
    pub user: String,
    pub role: String,
    pub hosts: Vec<String>,
    pub duration: String,
    pub reason: String,
    pub ticket: Option<String>,
    pub approvals: usize,
    pub required: u32,
    pub expires_in: String,
    pub created: String,
    pub digest: String,
    pub needs_key: bool,
    pub approved_by_me: bool,
    /// A later start (`jit request --start`): when the certificate's window opens.
    pub start: Option<String>,
    /// The fingerprint of the key the certificate would be for.
    pub key_fingerprint: String,
    pub principals: Vec<String>,
    pub sudo: bool,
}

#[derive(Template)]
#[template(path = "pending.html")]
pub(crate) struct Pending {
    pub chrome: Chrome,
    pub rows: Vec<PendingRow>,
}

/// The certificate line of a request page.
#[derive(Debug)]
pub(crate) struct CertLine {
    pub serial: u64,
    pub valid_after: String,
    pub valid_before: String,
    pub left: String,
    pub grant: Option<String>,
}

/// A request as its page shows it.
#[derive(Debug)]
pub(crate) struct RequestFields {
    pub id: String,
    pub user: String,
    pub role: String,
    pub reason: String,
    pub state: &'static str,
    pub ticket: Option<String>,
    pub hosts: Vec<String>,
    pub principals: Vec<String>,
    pub sudo: bool,
    pub duration: String,
    pub start: Option<String>,
    pub created: String,
    pub pending: bool,
    pub pending_expires: String,
    pub expires_in: String,
    pub required: u32,
    pub approvals: Vec<(String, String)>,
    pub digest: Option<String>,
    pub key_fingerprint: Option<String>,
    /// Denial, revocation, cancellation: label and text.
    pub outcome: Vec<(String, String)>,
    pub certificate: Option<CertLine>,
}

impl RequestFields {
    pub(crate) fn of(v: &RequestView, now: u64) -> Self {
        let mut outcome = Vec::new();
        if let Some(by) = &v.denied_by {
            outcome.push(("Denied by".into(), by.clone()));
        }
        if let Some(r) = &v.denial_reason {
            outcome.push(("Denial reason".into(), r.clone()));
        }
        if let Some(by) = &v.revoked_by {
            outcome.push(("Revoked by".into(), by.clone()));
        }
        if let Some(t) = v.revoked_at {
            outcome.push(("Revoked at".into(), when(t)));
        }
        if let Some(r) = &v.revocation_reason {
            outcome.push(("Revocation reason".into(), r.clone()));
        }
        if let Some(t) = v.cancelled_at {
            outcome.push(("Cancelled at".into(), when(t)));
        }
        let certificate = match (v.serial, v.valid_after, v.valid_before) {
            (Some(serial), Some(a), Some(b)) => Some(CertLine {
                serial,
                valid_after: when(a),
                valid_before: when(b),
                left: until(now, b),
                grant: v.grant_id.clone(),
            }),
            _ => None,
        };
        Self {
            id: v.id.clone(),
            user: v.user.clone(),
            role: v.role.clone(),
            reason: v.reason.clone(),
            state: v.state.as_str(),
            ticket: v.ticket.clone(),
            hosts: v.hosts.clone(),
            principals: v.principals.clone(),
            sudo: v.sudo,
            duration: span(v.duration_secs),
            start: v.start.map(when),
            created: when(v.created_at),
            pending: v.state == RequestState::Pending,
            pending_expires: when(v.pending_expires_at),
            expires_in: until(now, v.pending_expires_at),
            required: v.approvals_required,
            approvals: v
                .approvals
                .iter()
                .map(|a| (a.user.clone(), when(a.at)))
                .collect(),
            digest: v.request_digest.clone(),
            key_fingerprint: v.key_fingerprint.clone(),
            outcome,
            certificate,
        }
    }
}

/// An audit record as a row of `table#events`.
#[derive(Debug)]
pub(crate) struct EventRow {
    pub seq: u64,
    pub time: String,
    pub actor: String,
    pub event: String,
    pub details: String,
}

impl EventRow {
    pub(crate) fn of(r: &Record) -> Self {
        Self {
            seq: r.seq,
            time: when(r.time),
            actor: r.actor.clone(),
            event: r.event.clone(),
            details: r.details.clone(),
        }
    }
}

#[derive(Template)]
#[template(path = "request.html")]
pub(crate) struct RequestPage {
    pub chrome: Chrome,
    pub r: RequestFields,
    pub events: Vec<EventRow>,
    /// How many records name the request in all, and how many of the oldest are not shown.
    pub events_total: u64,
    pub events_omitted: u64,
    pub may: Permitted,
    pub needs_key: bool,
}

/// An elevation as a row of the access page.
#[derive(Debug, Clone)]
pub(crate) struct AccessRow {
    pub request_id: String,
    pub user: String,
    pub role: String,
    pub hosts: Vec<String>,
    pub sudo: bool,
    pub since: String,
    pub until: String,
    pub left: String,
}

impl AccessRow {
    pub(crate) fn of(e: &Elevation, now: u64) -> Self {
        Self {
            request_id: e.request_id.clone(),
            user: e.user.clone(),
            role: e.role.clone(),
            hosts: e.hosts.clone(),
            sudo: e.sudo,
            since: when(e.valid_after),
            until: when(e.valid_before),
            left: until(now, e.valid_before),
        }
    }
}

/// Rows under one heading (a role, a host selector).
#[derive(Debug)]
pub(crate) struct Group {
    pub name: String,
    pub rows: Vec<AccessRow>,
}

/// Groups `rows` by the keys `key` gives each (a row may be under several), sorted by key.
pub(crate) fn group_by(rows: &[AccessRow], key: impl Fn(&AccessRow) -> Vec<String>) -> Vec<Group> {
    let mut map: std::collections::BTreeMap<String, Vec<AccessRow>> = Default::default();
    for r in rows {
        for k in key(r) {
            map.entry(k).or_default().push(r.clone());
        }
    }
    map.into_iter()
        .map(|(name, rows)| Group { name, rows })
        .collect()
}

#[derive(Template)]
#[template(path = "access.html")]
pub(crate) struct Access {
    pub chrome: Chrome,
    pub auditor: bool,
    pub now: String,
    pub role: String,
    pub host: String,
    pub user: String,
    pub filtered: bool,
    pub by_role: Vec<Group>,
    pub by_host: Vec<Group>,
    /// "Showing A-B of N." (`#access-count`).
    pub count: String,
    /// Links to the previous and next pages, filters kept.
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// A row of the user's own requests.
#[derive(Debug)]
pub(crate) struct MineRow {
    pub id: String,
    pub role: String,
    pub hosts: Vec<String>,
    pub state: &'static str,
    pub left: String,
    pub reason: String,
    pub created: String,
    pub may_cancel: bool,
    pub may_drop: bool,
}

#[derive(Template)]
#[template(path = "mine.html")]
pub(crate) struct Mine {
    pub chrome: Chrome,
    pub rows: Vec<MineRow>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_and_times() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(45), "45s");
        assert_eq!(span(60), "1m");
        assert_eq!(span(61), "1m 1s");
        assert_eq!(span(3600), "1h");
        assert_eq!(span(3900), "1h 5m");
        assert_eq!(span(86_400), "1d");
        assert_eq!(span(86_400 + 7200), "1d 2h");
        assert_eq!(when(1_795_435_200), "2026-11-23 12:00:00 UTC");
        assert_eq!(until(10, 5), "ended");
        assert_eq!(until(0, 90), "1m 30s left");
    }

    #[test]
    fn text_is_escaped() {
        let page = ErrorPage {
            chrome: Chrome::anonymous(),
            title: "t".into(),
            message: "<script>alert(\"x\")</script> & 'q'".into(),
            hint: None,
            code: "c".into(),
        };
        let html = page.render().unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&#60;script&#62;"), "{html}");
        assert!(!html.contains("\"x\""), "{html}");
    }
}

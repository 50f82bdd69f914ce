//! Exact renderings of requests, tables and certificates.

use super::*;
use jit_api::wire::{ApprovalView, IssuedView};

/// 2026-11-23T12:00:00Z.
const NOW: u64 = 1_795_435_200;

fn view(id: &str, state: RequestState) -> RequestView {
    RequestView {
        id: id.into(),
        user: "alice".into(),
        role: "db-admin".into(),
        reason: "INC-1".into(),
        state,
        duration_secs: 1800,
        hosts: vec!["db-*".into()],
        principals: vec!["alice".into(), "dbadmin".into()],
        sudo: true,
        created_at: NOW - 3600,
        pending_expires_at: NOW,
        approvals: vec![],
        approvals_required: 1,
        denied_by: None,
        denial_reason: None,
        valid_after: None,
        valid_before: None,
        serial: None,
        grant_id: None,
        issued: None,
        key_fingerprint: None,
        request_digest: None,
        ticket: None,
        start: None,
        revoked_by: None,
        revoked_at: None,
        revocation_reason: None,
        cancelled_at: None,
        cancel_reason: None,
        denied_at: None,
        session_bound: false,
    }
}

fn approved(id: &str) -> RequestView {
    let mut r = view(id, RequestState::Approved);
    r.approvals = vec![ApprovalView {
        user: "bob".into(),
        at: NOW - 600,
    }];
    r.valid_after = Some(NOW - 660);
    r.valid_before = Some(NOW + 1200);
    r.serial = Some(7);
    r.grant_id = Some(format!("{id}.7"));
    r
}

const HEAD: &str = "id:         r-1\n\
state:      STATE\n\
user:       alice\n\
role:       db-admin\n\
reason:     INC-1\n\
duration:   30m\n";

fn head(state: &str) -> String {
    HEAD.replace("STATE", state)
}

#[test]
fn a_revoked_request_says_who_when_and_why_and_no_time_left() {
    let mut r = approved("r-1");
    r.state = RequestState::Revoked;
    r.revoked_by = Some("bob".into());
    r.revoked_at = Some(NOW - 60);
    r.revocation_reason = Some("done early".into());
    assert_eq!(
        request(&r, "", NOW),
        head("revoked")
            + "hosts:      db-*\n\
               principals: alice, dbadmin\n\
               sudo:       yes\n\
               created:    2026-11-23T11:00:00Z\n\
               approvals:  1/1 (bob)\n\
               revoked:    2026-11-23T11:59:00Z by bob: done early\n\
               valid:      2026-11-23T11:49:00Z to 2026-11-23T12:20:00Z (revoked)\n\
               serial:     7\n\
               grant:      r-1.7\n"
    );
    // Dropped: revoked by the requester.
    r.revoked_by = Some("alice".into());
    r.revocation_reason = Some("dropped by requester".into());
    let text = request(&r, "Dropped", NOW);
    assert!(
        text.starts_with("Dropped: request r-1\nid:         r-1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "revoked:    2026-11-23T11:59:00Z by alice (the requester): dropped by requester\n"
        ),
        "{text}"
    );
    assert!(!text.contains("left"), "{text}");
}

#[test]
fn an_active_request_shows_its_window_and_time_left() {
    let text = request(&approved("r-1"), "", NOW);
    assert!(
        text.contains("valid:      2026-11-23T11:49:00Z to 2026-11-23T12:20:00Z (20m left)\n"),
        "{text}"
    );
    let text = request(&approved("r-1"), "", NOW + 1200);
    assert!(text.contains("12:20:00Z (ended)\n"), "{text}");
}

#[test]
fn a_cancelled_request_says_when_and_why() {
    let mut r = view("r-1", RequestState::Cancelled);
    r.cancelled_at = Some(NOW - 1800);
    r.cancel_reason = Some("fixed it".into());
    let text = request(&r, "", NOW);
    assert!(
        text.ends_with("approvals:  0/1\ncancelled:  2026-11-23T11:30:00Z by alice: fixed it\n"),
        "{text}"
    );
    r.cancel_reason = None;
    assert!(request(&r, "", NOW).ends_with("cancelled:  2026-11-23T11:30:00Z by alice\n"));
}

#[test]
fn a_denied_request_says_by_whom_when_and_why() {
    let mut r = view("r-1", RequestState::Denied);
    r.denied_by = Some("bob".into());
    r.denied_at = Some(NOW - 60);
    r.denial_reason = Some("freeze".into());
    assert!(
        request(&r, "", NOW).ends_with(
            "approvals:  0/1\ndenied by:  bob\ndenied at:  2026-11-23T11:59:00Z\ndenial:     freeze\n"
        ),
        "{}",
        request(&r, "", NOW)
    );
}

#[test]
fn an_expired_request_says_why() {
    // Not approved within its pending time: the view does not say whether that was the
    // role's pending_ttl or the CA's pending_expiry, so the text names neither.
    let r = view("r-1", RequestState::Expired);
    assert!(
        request(&r, "", NOW).ends_with(
            "approvals:  0/1\nexpired:    not approved within 1h (its pending expiry); ask again \
             with jit request db-admin\n"
        ),
        "{}",
        request(&r, "", NOW)
    );
    // A later window: counted from its start.
    let mut r = view("r-1", RequestState::Expired);
    r.start = Some(NOW - 600);
    assert_eq!(
        expiry(&r).as_deref(),
        Some(
            "not approved within 10m of its start (its pending expiry); ask again with jit request db-admin"
        )
    );
    // A later window whose pending time was cut at the window's end (30m after its start).
    let mut r = view("r-1", RequestState::Expired);
    r.start = Some(NOW - 1800);
    assert_eq!(
        expiry(&r).as_deref(),
        Some(
            "not approved before its window ended at 2026-11-23T12:00:00Z; ask again with jit request db-admin"
        )
    );
    let mut r = approved("r-1");
    r.state = RequestState::Expired;
    assert!(
        request(&r, "", NOW + 1200)
            .contains("expired:    the window ended at 2026-11-23T12:20:00Z\n")
    );
}

#[test]
fn a_later_window_shows_its_start() {
    let mut r = view("r-1", RequestState::Pending);
    r.start = Some(NOW + 7200);
    r.pending_expires_at = NOW + 9000;
    let text = request(&r, "", NOW);
    assert!(
        text.starts_with(&(head("pending") + "start:      2026-11-23T14:00:00Z (in 2h)\nhosts:")),
        "{text}"
    );
    assert!(
        text.ends_with("expires:    2026-11-23T14:30:00Z if not decided\n"),
        "{text}"
    );
    let mut r = approved("r-1");
    r.start = Some(NOW + 7200);
    r.valid_after = Some(NOW + 7200);
    r.valid_before = Some(NOW + 9000);
    assert!(
        request(&r, "", NOW)
            .contains("valid:      2026-11-23T14:00:00Z to 2026-11-23T14:30:00Z (starts in 2h)\n")
    );
}

#[test]
fn list_columns_fit_real_ids() {
    let id = "r-6a1f0c3e9b2d4a7e8c1f0a"; // 24 characters, longer than the old 20
    let mut b = approved(id);
    b.user = "a-much-longer-user".into();
    b.role = "x".into();
    let rs = vec![view("r-1", RequestState::Pending), b];
    assert_eq!(
        table(&rs),
        "ID                        STATE     USER                ROLE      DURATION  APPROVALS  REASON\n\
         r-1                       pending   alice               db-admin       30m        0/1  INC-1\n\
         r-6a1f0c3e9b2d4a7e8c1f0a  approved  a-much-longer-user  x              30m        1/1  INC-1\n"
    );
    // A later window adds a START column.
    let mut c = view("r-2", RequestState::Pending);
    c.start = Some(NOW + 7200);
    assert_eq!(
        table(&[c]),
        "ID   STATE    USER   ROLE      DURATION  START                 APPROVALS  REASON\n\
         r-2  pending  alice  db-admin       30m  2026-11-23T14:00:00Z        0/1  INC-1\n"
    );
    assert_eq!(table(&[]), "No requests.\n");
}

#[test]
fn status_shows_each_active_elevations_end_and_time_left() {
    let mut later = approved("r-2");
    later.valid_after = Some(NOW + 3600);
    later.valid_before = Some(NOW + 5400);
    later.hosts = vec!["db-1".into(), "db-2".into()];
    assert_eq!(
        active(&[approved("r-1"), later], NOW),
        "ID   ROLE      HOSTS      ENDS                  LEFT\n\
         r-1  db-admin  db-*       2026-11-23T12:20:00Z  20m\n\
         r-2  db-admin  db-1,db-2  2026-11-23T13:30:00Z  30m from 2026-11-23T13:00:00Z\n"
    );
}

#[test]
fn an_installed_certificate_of_a_later_window_says_when_it_starts() {
    let r = approved("r-1");
    let rep = LoginReport {
        request: r,
        certificate: Some(IssuedView {
            request_id: "r-1".into(),
            certificate: String::new(),
            serial: 7,
            valid_after: NOW + 3600,
            valid_before: NOW + 5400,
            grant: None,
        }),
        certificate_file: Some("/h/.ssh/id_ed25519-cert.pub".into()),
        grant_file: None,
        agent_loaded: None,
        agent_note: None,
        ssh_hint: None,
    };
    assert_eq!(
        login(&rep, NOW),
        "Certificate for request r-1 written to /h/.ssh/id_ed25519-cert.pub\n  \
         principals: alice, dbadmin\n  \
         valid:      2026-11-23T13:00:00Z to 2026-11-23T13:30:00Z (starts in 1h)\n  \
         serial:     7\n"
    );
}

#[test]
fn a_session_bound_request_says_so_in_show_status_and_login() {
    let mut bound = approved("r-1");
    bound.session_bound = true;
    let text = request(&bound, "", NOW);
    assert!(
        text.contains(
            "sudo:       yes\n\
             session:    bound: sudo only inside SSH connections made with its certificate, \
             until they close\n"
        ),
        "{text}"
    );
    assert!(!request(&approved("r-1"), "", NOW).contains("session:"));
    assert_eq!(
        active(&[bound.clone(), approved("r-2")], NOW),
        "ID   ROLE      HOSTS  SESSION  ENDS                  LEFT\n\
         r-1  db-admin  db-*   bound    2026-11-23T12:20:00Z  20m\n\
         r-2  db-admin  db-*   -        2026-11-23T12:20:00Z  20m\n"
    );
    let rep = LoginReport {
        request: bound,
        certificate: Some(IssuedView {
            request_id: "r-1".into(),
            certificate: String::new(),
            serial: 7,
            valid_after: NOW - 660,
            valid_before: NOW + 1200,
            grant: None,
        }),
        certificate_file: Some("/h/.ssh/id_ed25519-cert.pub".into()),
        grant_file: None,
        agent_loaded: None,
        agent_note: None,
        ssh_hint: Some("ssh -i /h/.ssh/id_ed25519 alice@HOST".into()),
    };
    assert_eq!(
        login(&rep, NOW),
        "Certificate for request r-1 written to /h/.ssh/id_ed25519-cert.pub\n  \
         principals: alice, dbadmin\n  \
         valid:      2026-11-23T11:49:00Z to 2026-11-23T12:20:00Z (20m left)\n  \
         serial:     7\n\
         Use it: ssh -i /h/.ssh/id_ed25519 alice@HOST\n\
         Session-bound: sudo on these hosts works only inside SSH connections made with this \
         certificate, until they close.\n"
    );
    assert_eq!(
        extended_session_bound("r-1"),
        "r-1 is session-bound: sudo on these hosts works only inside SSH connections made with \
         the new certificate, until they close; connections made with the previous one no \
         longer have sudo: log in again (ssh)"
    );
}

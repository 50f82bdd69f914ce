//! Unit tests of the pure request lifecycle: no database, no clock.

use super::*;
use crate::policy::Policy;
use ssh_key::public::{Ed25519PublicKey, KeyData};

const POLICY: &str = r#"
[roles.db]
hosts = ["db-*"]
sudo = true
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 2
require_reason = true

[roles.quick]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "oncall"
groups = ["oncall"]
max_duration = "15m"
"#;

const NOW: u64 = 1_000_000;

fn role(name: &str) -> Role {
    Policy::parse(POLICY)
        .expect("test policy")
        .role(name)
        .cloned()
        .expect("role")
}

fn caller(user: &str, groups: &[&str]) -> Caller {
    Caller {
        user: user.into(),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        key: CallerKey {
            fingerprint: format!("SHA256:{user}"),
            ..CallerKey::default()
        },
        proof: None,
        session: None,
    }
}

fn key_line() -> String {
    PublicKey::from(KeyData::from(Ed25519PublicKey([7; 32])))
        .to_openssh()
        .expect("key line")
}

fn ask(role: &str, secs: u64) -> CreateRequest {
    CreateRequest {
        role: role.into(),
        duration_secs: secs,
        reason: "incident 42".into(),
        hosts: Vec::new(),
        public_key: format!("{} alice@laptop", key_line()),
        start: None,
    }
}

fn admitted(role_name: &str, who: &Caller, secs: u64) -> Ruling<Admitted> {
    admit(
        who,
        &ask(role_name, secs),
        Some(role(role_name)),
        &[],
        "r-1".into(),
        600,
        30 * 86_400,
        NOW,
    )
}

fn pending() -> RequestRow {
    admitted("db", &caller("alice", &["dev"]), 1800)
        .expect("admitted")
        .row
}

fn code(r: Ruling<impl std::fmt::Debug>) -> C {
    r.expect_err("refused").code()
}

#[test]
fn admission_checks_the_role_and_parses_the_key_once() {
    let alice = caller("alice", &["dev"]);
    let a = admitted("db", &alice, 1800).unwrap();
    assert_eq!(a.row.state, RequestState::Pending);
    assert_eq!(a.row.pending_expires_at, NOW + 600);
    assert_eq!(a.row.hosts, vec!["db-*".to_string()]);
    assert!(a.auto.is_none());
    // The row carries the parsed key, comment dropped (as stored).
    assert_eq!(a.row.public_key.to_openssh().unwrap(), key_line());

    assert_eq!(code(admitted("db", &alice, 7200)), C::DurationTooLong);
    assert_eq!(code(admitted("db", &alice, 0)), C::InvalidInput);
    assert_eq!(
        code(admitted("db", &caller("bob", &["dba"]), 60)),
        C::NotARequester
    );
    let none = admit(
        &alice,
        &ask("nope", 60),
        None,
        &[],
        "r-2".into(),
        600,
        86_400,
        NOW,
    );
    assert_eq!(code(none), C::UnknownRole);
    let msg = |r: Refusal| match r {
        Refusal::Client(e) => e.message,
        Refusal::Internal(d) => d,
    };
    assert_eq!(
        msg(unknown_role("nope", &[])),
        "there is no role \"nope\" (jit roles lists the roles you may request)"
    );
    assert_eq!(
        msg(unknown_role("db-admn", &["db-admin".into()])),
        "there is no role \"db-admn\"; did you mean \"db-admin\"? (jit roles lists the roles you may request)"
    );
    assert_eq!(
        msg(unknown_role(
            "db",
            &["db1".into(), "db2".into(), "dba".into()]
        )),
        "there is no role \"db\"; did you mean \"db1\", \"db2\" or \"dba\"? (jit roles lists the roles you may request)"
    );
    let mut bad = ask("db", 60);
    bad.public_key = "ssh-ed25519 not-base64".into();
    let r = admit(
        &alice,
        &bad,
        Some(role("db")),
        &[],
        "r-3".into(),
        600,
        86_400,
        NOW,
    );
    assert_eq!(code(r), C::MalformedPublicKey);
    let mut approval_key = alice.clone();
    approval_key.key.approval = true;
    assert_eq!(
        code(admitted("db", &approval_key, 60)),
        C::ApprovalKeyNotForRequests
    );
}

#[test]
fn an_auto_approval_rule_approves_at_admission() {
    let a = admitted("quick", &caller("alice", &["dev", "oncall"]), 600).unwrap();
    assert_eq!(
        a.auto.as_ref().map(|a| a.approver.as_str()),
        Some("auto:oncall")
    );
    assert_eq!(a.row.state, RequestState::Approved);
    assert_eq!(a.row.approved_at, Some(NOW));
    assert_eq!(a.row.approved_until, Some(NOW + 600));
    // Longer than the rule allows: pending.
    let b = admitted("quick", &caller("alice", &["dev", "oncall"]), 1800).unwrap();
    assert!(b.auto.is_none());
    assert_eq!(b.row.state, RequestState::Pending);
}

#[test]
fn one_rule_says_who_may_decide() {
    let row = pending();
    let db = role("db");
    let alice = caller("alice", &["dev"]);
    let bob = caller("bob", &["dba"]);
    let eve = caller("eve", &["dev"]);
    let may = |who: &Caller, a: Action, r: Option<&Role>| {
        authorize(Actor::Caller(who), a, &row, r).map_err(|e| e.code())
    };
    // The requester.
    for a in [
        Action::See,
        Action::Deny,
        Action::Revoke,
        Action::Extend,
        Action::FetchCertificate,
    ] {
        assert_eq!(may(&alice, a, Some(&db)), Ok(()), "{a:?}");
    }
    assert_eq!(
        may(&alice, Action::Approve, Some(&db)),
        Err(C::SelfApproval)
    );
    // An approver of the role.
    for a in [Action::See, Action::Deny, Action::Revoke, Action::Approve] {
        assert_eq!(may(&bob, a, Some(&db)), Ok(()), "{a:?}");
    }
    assert_eq!(may(&bob, Action::Extend, Some(&db)), Err(C::Forbidden));
    assert_eq!(
        may(&bob, Action::FetchCertificate, Some(&db)),
        Err(C::Forbidden)
    );
    // Nobody in particular.
    assert_eq!(may(&eve, Action::See, Some(&db)), Err(C::Forbidden));
    assert_eq!(may(&eve, Action::Deny, Some(&db)), Err(C::NotAnApprover));
    assert_eq!(may(&eve, Action::Revoke, Some(&db)), Err(C::Forbidden));
    assert_eq!(may(&eve, Action::Approve, Some(&db)), Err(C::NotAnApprover));
    // The role left the policy: approvers are gone, the requester keeps their rights.
    assert_eq!(may(&bob, Action::See, None), Err(C::Forbidden));
    assert_eq!(may(&bob, Action::Approve, None), Err(C::InvalidState));
    assert_eq!(may(&alice, Action::Revoke, None), Ok(()));
    // An operator may revoke and deny, nothing else.
    for a in [Action::See, Action::Deny, Action::Revoke] {
        assert!(authorize(Actor::Operator, a, &row, None).is_ok(), "{a:?}");
    }
    assert!(authorize(Actor::Operator, Action::Approve, &row, None).is_err());
}

#[test]
fn a_fault_of_the_service_is_a_value_not_a_logged_error() {
    // Pure: the rule returns the fault; nothing is logged and no reference drawn until the
    // service boundary converts it.
    let row = pending();
    let r = authorize(Actor::Operator, Action::Approve, &row, None);
    let Err(Refusal::Internal(detail)) = r else {
        panic!("an internal fault: {r:?}");
    };
    assert!(detail.contains("operator cannot Approve"), "{detail}");
    let e = ApiError::from(Refusal::Internal(detail.clone()));
    assert_eq!(e.code, C::Internal);
    assert!(
        !e.message.contains(&detail),
        "the detail stays in the log: {e}"
    );
    let client = refuse(C::Forbidden, "no");
    assert_eq!(client.code(), C::Forbidden);
    assert_eq!(ApiError::from(client).status, 403);
}

#[test]
fn an_approval_key_rule_is_part_of_who_may_approve() {
    let mut db = role("db");
    db.approval_key = crate::policy::ApprovalKey::parse("sk").expect("sk");
    let row = pending();
    let bob = caller("bob", &["dba"]);
    let r = authorize(Actor::Caller(&bob), Action::Approve, &row, Some(&db));
    assert_eq!(code(r), C::ApprovalKeyRequired);
}

#[test]
fn only_approvals_by_current_approvers_count_and_k_of_n_approves() {
    let mut row = pending();
    let db = role("db");
    let cast = |user: &str, groups: Option<&[&str]>| CastApproval {
        approval: ApprovalView {
            user: user.into(),
            at: NOW,
        },
        key: CallerKey::default(),
        web: false,
        groups: groups.map(|g| g.iter().map(|s| s.to_string()).collect()),
    };
    let counted = counted_approvals(
        &row,
        &db,
        vec![
            cast("bob", Some(&["dba"])),
            cast("alice", Some(&["dba"])), // the requester
            cast("carol", Some(&["dev"])), // no longer an approver
            cast("dave", None),            // removed
        ],
    );
    assert_eq!(counted.len(), 1);
    assert!(!apply_approvals(&mut row, &db, &counted, NOW + 5));
    assert_eq!(row.state, RequestState::Pending);
    let counted = counted_approvals(
        &row,
        &db,
        vec![cast("bob", Some(&["dba"])), cast("erin", Some(&["dba"]))],
    );
    assert!(apply_approvals(&mut row, &db, &counted, NOW + 5));
    assert_eq!(row.state, RequestState::Approved);
    assert_eq!(row.approved_at, Some(NOW + 5));
    assert_eq!(row.approved_until, Some(NOW + 5 + 1800));
    assert_eq!(
        row.approval_basis.as_deref(),
        Some(r#"{"approvers":["bob","erin"]}"#)
    );
}

#[test]
fn a_web_approval_never_counts_for_a_role_that_needs_the_key() {
    let row = pending();
    let mut db = role("db");
    let web = |user: &str| CastApproval {
        approval: ApprovalView {
            user: user.into(),
            at: NOW,
        },
        key: CallerKey::default(),
        web: true,
        groups: Some(vec!["dba".to_string()]),
    };
    assert_eq!(counted_approvals(&row, &db, vec![web("bob")]).len(), 1);
    db.approve_with_key = true;
    assert!(counted_approvals(&row, &db, vec![web("bob")]).is_empty());
}

#[test]
fn deny_revoke_and_expire_move_the_state() {
    let db = role("db");
    let bob = caller("bob", &["dba"]);
    let mut row = pending();
    assert_eq!(
        code(check_approval(&row, &bob, Some(&db), NOW + 600)),
        C::InvalidState,
        "expired before approval"
    );
    let r = deny(
        &mut row,
        Actor::Caller(&bob),
        Some(&db),
        "bob",
        "no",
        NOW + 600,
    );
    assert_eq!(
        code(r),
        C::InvalidState,
        "a caller cannot deny an expired request"
    );
    deny(&mut row, Actor::Caller(&bob), Some(&db), "bob", "no", NOW).unwrap();
    assert_eq!(row.state, RequestState::Denied);
    assert_eq!(row.denied_by.as_deref(), Some("bob"));
    assert_eq!(
        code(check_approval(&row, &bob, Some(&db), NOW)),
        C::InvalidState
    );
    let r = revoke(&mut row, Actor::Caller(&bob), Some(&db), "bob", NOW);
    assert_eq!(
        code(r),
        C::InvalidState,
        "only approved requests are revoked"
    );

    let mut row = pending();
    approve_row(&mut row, json!({"approvers": ["bob"]}), NOW);
    revoke(&mut row, Actor::Operator, None, "root", NOW + 1).unwrap();
    assert_eq!(row.state, RequestState::Revoked);
    assert_eq!(row.revoked_by.as_deref(), Some("root"));

    // Expiry (pending -> expired, approved -> expired) is one conditional update in the
    // store since issue 18 (`StoreOps::expire_request`), tested with the sweep's batches.
    // An operator removing the user denies even past expiry.
    let mut row = pending();
    deny(
        &mut row,
        Actor::Operator,
        None,
        "root",
        "user removed",
        NOW + 9999,
    )
    .unwrap();
    assert_eq!(row.state, RequestState::Denied);
}

#[test]
fn only_the_requester_cancels_and_only_while_pending() {
    let db = role("db");
    let alice = caller("alice", &["dev"]);
    let bob = caller("bob", &["dba"]);
    let mut row = pending();
    assert_eq!(code(cancel(&mut row, &bob, Some(&db), NOW)), C::Forbidden);
    assert_eq!(
        code(cancel(&mut row, &alice, Some(&db), NOW + 600)),
        C::InvalidState,
        "an expired request is not cancelled"
    );
    assert_eq!(row.state, RequestState::Pending);
    // The role left the policy: the requester may still withdraw.
    cancel(&mut row, &alice, None, NOW).unwrap();
    assert_eq!(row.state, RequestState::Cancelled);
    assert_eq!(row.denied_by, None);
    assert_eq!(
        code(cancel(&mut row, &alice, Some(&db), NOW)),
        C::InvalidState
    );
    let mut row = pending();
    approve_row(&mut row, json!({"approvers": ["bob"]}), NOW);
    assert_eq!(
        code(cancel(&mut row, &alice, Some(&db), NOW)),
        C::InvalidState
    );
    assert_eq!(row.state, RequestState::Approved);
}

#[test]
fn only_the_requester_drops_an_approved_request() {
    let db = role("db");
    let alice = caller("alice", &["dev"]);
    let bob = caller("bob", &["dba"]);
    let mut row = pending();
    assert_eq!(
        code(drop_own(&mut row, &alice, Some(&db), NOW)),
        C::InvalidState
    );
    approve_row(&mut row, json!({"approvers": ["bob"]}), NOW);
    assert_eq!(code(drop_own(&mut row, &bob, Some(&db), NOW)), C::Forbidden);
    assert_eq!(row.state, RequestState::Approved);
    drop_own(&mut row, &alice, None, NOW + 5).unwrap();
    assert_eq!(row.state, RequestState::Revoked);
    assert_eq!(row.revoked_by.as_deref(), Some("alice"));
    assert_eq!(row.revoked_at, Some(NOW + 5));
}

fn cert(valid_before: u64) -> CertRow {
    CertRow {
        serial: 1,
        request_id: "r-1".into(),
        user: "alice".into(),
        grant_id: None,
        valid_after: NOW,
        valid_before,
        issued_at: NOW,
        certificate: "c".into(),
        grant_doc: None,
        grant_hosts: Vec::new(),
        revoked: false,
    }
}

#[test]
fn an_extension_stays_within_the_approved_window_or_an_auto_rule() {
    let db = role("db");
    let groups = vec!["dev".to_string()];
    let mut row = pending();
    row.duration_secs = 600;
    approve_row(&mut row, json!({"approvers": ["bob", "erin"]}), NOW);
    row.approved_until = Some(NOW + 1800); // approved for more than issued so far
    let c = cert(NOW + 600);
    let e = extend(&mut row, Some(&db), Some(&c), Some(&groups), 600, NOW + 10).unwrap();
    assert_eq!(e.new_end, NOW + 1200);
    assert_eq!(e.window, 1200);
    assert_eq!(e.covered_by, json!("approval"));
    assert_eq!(row.duration_secs, 1200);
    // Beyond the approved window with no rule: refused, request unchanged.
    let before = row.clone();
    let r = extend(&mut row, Some(&db), Some(&c), Some(&groups), 1500, NOW + 10);
    assert_eq!(code(r), C::ExtensionNotApproved);
    assert_eq!(row, before);
    // Ended, removed requester, role gone, too long.
    assert_eq!(
        code(extend(
            &mut row,
            Some(&db),
            Some(&cert(NOW)),
            Some(&groups),
            60,
            NOW
        )),
        C::InvalidState
    );
    assert_eq!(
        code(extend(&mut row, Some(&db), Some(&c), None, 60, NOW)),
        C::InvalidState
    );
    assert_eq!(
        code(extend(&mut row, None, Some(&c), Some(&groups), 60, NOW)),
        C::PolicyChanged
    );
    assert_eq!(
        code(extend(
            &mut row,
            Some(&db),
            Some(&c),
            Some(&groups),
            7200,
            NOW
        )),
        C::DurationTooLong
    );
    // Not approved.
    let mut p = pending();
    assert_eq!(
        code(extend(&mut p, Some(&db), Some(&c), Some(&groups), 60, NOW)),
        C::InvalidState
    );
}

#[test]
fn the_view_shows_expiry_before_the_sweeper_records_it() {
    let row = pending();
    assert_eq!(
        view_of(&row, None, Vec::new(), None, NOW).state,
        RequestState::Pending
    );
    assert_eq!(
        view_of(&row, None, Vec::new(), None, NOW + 600).state,
        RequestState::Expired
    );
    let mut row = row;
    approve_row(&mut row, json!({}), NOW);
    let c = cert(NOW + 100);
    let v = view_of(&row, None, Vec::new(), Some(&c), NOW + 50);
    assert_eq!((v.state, v.serial), (RequestState::Approved, Some(1)));
    assert_eq!(
        view_of(&row, None, Vec::new(), Some(&c), NOW + 100).state,
        RequestState::Expired
    );
    assert!(check_has_certificate(&row).is_ok());
    assert_eq!(code(check_has_certificate(&pending())), C::InvalidState);
}

const SCHEDULED: &str = r#"
[roles.db]
hosts = ["db-*"]
max_duration = "2h"
requesters = ["group:dev"]
approvers = ["group:dba"]
reason_pattern = '^INC-[0-9]+'
[[roles.db.auto_approve_rules]]
name = "night"
groups = ["oncall"]
max_duration = "1h"
schedule = [{ hours = "20:00-06:00", tz = "UTC" }]
ticket_pattern = '^INC-'
"#;

/// 1970-01-12 22:00 UTC (a Monday night) and 12:00 the same day.
const NIGHT: u64 = 11 * 86_400 + 22 * 3600;
const NOON: u64 = 11 * 86_400 + 12 * 3600;

#[test]
fn admission_records_the_rule_and_conditions_and_extensions_are_judged_at_their_time() {
    let db = Policy::parse(SCHEDULED)
        .unwrap()
        .role("db")
        .cloned()
        .unwrap();
    let alice = caller("alice", &["dev", "oncall"]);
    let mut req = ask("db", 1200);
    req.reason = "INC-7 paged".into();
    let a = admit(
        &alice,
        &req,
        Some(db.clone()),
        &[],
        "r-1".into(),
        600,
        30 * 86_400,
        NIGHT,
    )
    .unwrap();
    let auto = a.auto.clone().unwrap();
    assert_eq!(auto.approver, "auto:night");
    assert_eq!(a.row.ticket.as_deref(), Some("INC-7"));
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(a.row.approval_basis.as_deref().unwrap())
            .unwrap(),
        json!({"auto_rule": "auto:night", "conditions": {"subjects": ["group:oncall"],
               "max_duration_secs": 3600, "schedule": ["every day 20:00-06:00 UTC"],
               "ticket_pattern": "^INC-"}})
    );
    // The same request at noon waits for humans.
    let b = admit(
        &alice,
        &req,
        Some(db.clone()),
        &[],
        "r-2".into(),
        600,
        30 * 86_400,
        NOON,
    )
    .unwrap();
    assert!(b.auto.is_none());
    assert_eq!(b.row.state, RequestState::Pending);

    // An extension beyond the approved window is covered by the rule only inside its
    // schedule, at the time of the extension: approved at 05:50 for 20m (until 06:10).
    let early = 11 * 86_400 + 5 * 3600 + 50 * 60;
    let mut row = admit(
        &alice,
        &req,
        Some(db.clone()),
        &[],
        "r-3".into(),
        600,
        30 * 86_400,
        early,
    )
    .unwrap()
    .row;
    let groups = alice.groups.clone();
    let c = cert(early + 1200);
    let before = row.clone();
    // 06:05: outside the rule's schedule; 10 more minutes go beyond the approved window.
    let r = extend(
        &mut row,
        Some(&db),
        Some(&c),
        Some(&groups),
        600,
        early + 900,
    );
    assert_eq!(code(r), C::ExtensionNotApproved);
    assert_eq!(row, before);
    // 05:55: inside.
    let e = extend(
        &mut row,
        Some(&db),
        Some(&c),
        Some(&groups),
        600,
        early + 300,
    )
    .unwrap();
    assert_eq!(e.covered_by, json!("auto:night"));
    assert_eq!(e.window, 1800);
}

#[test]
fn the_reason_pattern_is_checked_before_the_duration_and_the_schedule() {
    let text = SCHEDULED.replace(
        "reason_pattern = '^INC-[0-9]+'\n",
        "reason_pattern = '^INC-[0-9]+'\nschedule = [{ days = [\"sat\"], tz = \"UTC\" }]\n",
    );
    let db = Policy::parse(&text).unwrap().role("db").cloned().unwrap();
    let alice = caller("alice", &["dev"]);
    let mut req = ask("db", 99_999);
    req.reason = "no ticket".into();
    let r = admit(
        &alice,
        &req,
        Some(db.clone()),
        &[],
        "r-1".into(),
        600,
        30 * 86_400,
        NOON,
    );
    assert_eq!(code(r), C::ReasonPatternMismatch);
    req.reason = "INC-1".into();
    let r = admit(
        &alice,
        &req,
        Some(db.clone()),
        &[],
        "r-1".into(),
        600,
        30 * 86_400,
        NOON,
    );
    assert_eq!(code(r), C::OutsideSchedule);
    // A Saturday (1970-01-10): inside the role's schedule; the duration is next.
    let r = admit(
        &alice,
        &req,
        Some(db),
        &[],
        "r-1".into(),
        600,
        30 * 86_400,
        9 * 86_400 + 3600,
    );
    assert_eq!(code(r), C::DurationTooLong);
}

#[test]
fn extension_refusals_say_how_much_is_left() {
    let db = role("db"); // max_duration = "1h"
    let groups = vec!["dev".to_string()];
    let mut row = pending();
    row.duration_secs = 600;
    approve_row(&mut row, json!({"approvers": ["bob", "erin"]}), NOW);
    row.approved_until = Some(NOW + 1800);
    let c = cert(NOW + 600);
    // 10 minutes of certificate left at NOW; the approval covers 20 minutes more.
    let r = extend(&mut row, Some(&db), Some(&c), Some(&groups), 1500, NOW);
    assert_eq!(
        r.expect_err("refused").to_string(),
        "extension_not_approved (403): request r-1 was approved ({\"approvers\":[\"bob\",\"erin\"]}) for a window until \
         1970-01-12T14:16:40Z (10m left now; you may extend by at most 20m without a new \
         approval); extending to 1970-01-12T14:21:40Z goes beyond it and needs the 2 \
         approval(s) role \"db\" asks for: request again (jit request db --duration 35m \
         --reason ...) and ask an approver"
    );
    // Beyond the role's longest window: what is left and the most it may still grow.
    let r = extend(
        &mut row,
        Some(&db),
        Some(&c),
        Some(&groups),
        7200,
        NOW + 300,
    );
    assert_eq!(
        r.expect_err("refused").to_string(),
        "duration_too_long (403): the window would be 2h 10m from approval; role \"db\" allows 1h (5m left now; you \
         may extend by at most 50m)"
    );
}

#[test]
fn an_extension_of_a_later_window_is_counted_from_its_start() {
    let db = role("db"); // max_duration = "1h"
    let groups = vec!["dev".to_string()];
    let mut row = pending();
    row.duration_secs = 600;
    row.not_before = Some(NOW + 3600);
    // Approved now, an hour before its window starts.
    approve_row(&mut row, json!({"approvers": ["bob"]}), NOW);
    let mut c = cert(NOW + 3600 + 600);
    c.valid_after = NOW + 3600;
    // The window would be 1h 10m from its start (2h 10m from approval): the start counts.
    let r = extend(&mut row, Some(&db), Some(&c), Some(&groups), 3600, NOW);
    assert_eq!(
        r.expect_err("refused").to_string(),
        "duration_too_long (403): the window would be 1h 10m from its start; role \"db\" allows \
         1h (1h 10m left now; you may extend by at most 50m)"
    );
}

/// `may_approve` (who notifications name as the eligible approvers) is exactly the person
/// part of `authorize(Approve)`: for every caller, one passes iff the other does.
#[test]
fn the_eligible_approvers_are_whom_authorize_lets_approve() {
    let row = pending();
    let db = role("db");
    for (user, groups) in [
        ("alice", &["dev", "dba"][..]),
        ("alice", &["dev"][..]),
        ("bob", &["dba"][..]),
        ("eve", &["dev"][..]),
        ("mallory", &[][..]),
    ] {
        let who = caller(user, groups);
        let authorized = authorize(Actor::Caller(&who), Action::Approve, &row, Some(&db)).is_ok();
        assert_eq!(
            may_approve(&row.user, &db, &who.user, &who.groups),
            authorized,
            "{user} {groups:?}"
        );
    }
}

//! The approver's path through the page, end to end, with a screenshot of each page.

use super::*;
use jit::login::LoginReport;
use std::process::Stdio;

#[test]
fn approve_in_the_browser_and_the_requester_gets_the_certificate() {
    let (ca, alice, bob) = setup();

    // Before logging in: the login-required page (its screenshot is docs' "login").
    let mut b = Browser::launch();
    b.goto(&format!("{}/ui/pending", ca.url));
    assert_login_page(&mut b, &[]);
    shot(&mut b, "login");

    // alice asks and waits (the real client, polling until decided).
    let reason = "INC-4711: replica lag on db-1, need to restart the replication";
    let requester = Waiting::spawn(
        ca.jit(&alice)
            .args([
                "request",
                "db-admin",
                "--duration",
                "30m",
                "--reason",
                reason,
                "--host",
                "db-1",
                "--json",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped()),
    );
    let id = wait_for_pending(&ca, &bob);

    // bob logs in with the one-time URL and sees it on the pending page.
    login(&ca, &bob, &mut b, true);
    let row = format!("table#pending tr#req-{id}");
    assert!(
        b.exists(&row),
        "{id} not on the pending page: {}",
        b.describe()
    );
    let text = b.text(&row);
    assert!(
        text.contains("db-admin") && text.contains("alice") && text.contains(reason),
        "the row shows role, requester and reason: {text}"
    );
    shot(&mut b, "pending");

    // Its page: every field, pending, with the approve form.
    b.click_and_wait(&format!("{row} a.request-link"));
    assert_eq!(b.url(), format!("{}/ui/requests/{id}", ca.url));
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert!(
        b.text("#state").to_lowercase().contains("pending"),
        "{}",
        b.describe()
    );
    assert_eq!(b.text("#reason").trim(), reason);
    assert!(b.exists("form#approve-form") && b.exists("form#deny-form"));
    assert!(!b.exists("#certificate") || !b.text("#certificate").contains("serial"));
    let digest = b
        .attr("form#approve-form input[name=request_digest]", "value")
        .expect("the approve form names the request's digest");
    assert_eq!(
        Some(digest),
        show(&ca, &bob, &id).request_digest,
        "the form names the digest of the request it shows"
    );
    b.fill(
        "form#approve-form [name=reason]",
        "checked the replica, go ahead",
    );
    shot(&mut b, "request");

    // Approve with a click: Post/Redirect/Get back to the request's page.
    b.click_and_wait("#approve-submit");
    assert_eq!(
        b.url(),
        format!("{}/ui/requests/{id}", ca.url),
        "{}",
        b.describe()
    );
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert!(
        b.text("#state").to_lowercase().contains("approved"),
        "{}",
        b.describe()
    );
    assert!(b.text("table#approvals").contains("bob"));

    // alice's waiting `jit request` gets the certificate.
    let o = requester.wait(Duration::from_secs(60));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "jit request: {stderr}");
    let rep: LoginReport = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep.request.id, id);
    assert_eq!(rep.request.state, RequestState::Approved);
    let issued = rep.certificate.expect("a certificate");
    assert!(alice.cert().exists());
    let l = jit_test_kit::running::keygen_l(&alice.cert());
    assert!(l.contains(&format!("jit:{id}:alice")), "{l}");

    // The CA recorded bob's approval (made from the page) on the request.
    let v = show(&ca, &bob, &id);
    assert_eq!(v.state, RequestState::Approved);
    assert_eq!(v.approvals.len(), 1);
    assert_eq!(v.approvals[0].user, "bob");

    // The page shows the certificate issued: its serial.
    b.goto(&format!("{}/ui/requests/{id}", ca.url));
    let cert = b.text("#certificate");
    assert!(
        cert.contains(&format!("serial {}", issued.serial)) && cert.contains("until"),
        "#certificate shows serial {} and its end: {cert}",
        issued.serial
    );
    assert!(b.exists("table#events"));
    let events = b.text("table#events");
    assert!(
        events.contains("bob") && events.contains("alice"),
        "{events}"
    );
    assert!(
        !b.exists("form#approve-form"),
        "no approve form once approved"
    );
    shot(&mut b, "request-approved");

    // Nothing pending any more.
    b.goto(&format!("{}/ui/pending", ca.url));
    assert!(!b.exists(&row));

    // Who has access now: alice, db-admin.
    b.goto(&format!("{}/ui/access", ca.url));
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    let access = b.text("table#access");
    assert!(
        access.contains("alice") && access.contains("db-admin"),
        "{access}"
    );
    shot(&mut b, "access");

    // alice's own requests, in her own browser.
    let mut a = Browser::launch();
    login(&ca, &alice, &mut a, false);
    a.goto(&format!("{}/ui/mine", ca.url));
    assert_eq!(a.status(), Some(200), "{}", a.describe());
    let mine = a.text("table#mine");
    assert!(mine.contains("db-admin"), "{mine}");
    shot(&mut a, "mine");
}

#[test]
fn the_audit_page_shows_the_approval_made_in_the_page() {
    let (ca, alice, bob) = setup();
    let r = request(&ca, &alice, "db-admin", "INC-5: audit me");
    let mut b = Browser::launch();
    login(&ca, &bob, &mut b, false);
    let footer = b.text("footer");
    let session = footer
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .find(|w| w.starts_with("ws-") && w.len() == 19)
        .unwrap_or_else(|| panic!("the footer names the session: {footer}"))
        .to_string();
    b.goto(&format!("{}/ui/requests/{}", ca.url, r.id));
    b.click_and_wait("#approve-submit");
    assert!(b.text("#state").to_lowercase().contains("approved"));

    // bob is an auditor: the chain verifies and the approval is there with its session.
    b.goto(&format!("{}/ui/audit", ca.url));
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert!(
        b.text("#chain-status").starts_with("intact"),
        "{}",
        b.describe()
    );
    assert!(b.exists("#checkpoint"), "{}", b.describe());
    let audit = b.text("table#audit");
    assert!(audit.contains(&r.id), "{audit}");
    assert!(
        audit.contains("approval") && audit.contains(&session),
        "the approval names the web session {session}: {audit}"
    );
    assert!(audit.contains("web_login"), "{audit}");
    assert!(b.exists("a#export-csv") && b.exists("a#export-json"));
    shot(&mut b, "audit");

    // alice is not an auditor: refused, naming the policy key.
    let mut a = Browser::launch();
    login(&ca, &alice, &mut a, false);
    a.goto(&format!("{}/ui/audit", ca.url));
    assert_eq!(a.status(), Some(403), "{}", a.describe());
    assert!(a.describe().contains("auditors"), "{}", a.describe());
    assert!(!a.exists("table#audit"));
}

/// A running `jit` (the requester waiting for its decision), killed if the test ends before
/// it does (a failed assertion): std's `Child` does not kill on drop.
struct Waiting(Option<std::process::Child>);

impl Waiting {
    fn spawn(cmd: &mut std::process::Command) -> Waiting {
        Waiting(Some(cmd.spawn().unwrap()))
    }

    /// Its output once it exits; fails (killing it) if it has not within `limit`. Its
    /// output is a few lines, well within the pipes' buffers, so it never blocks on them.
    fn wait(mut self, limit: Duration) -> std::process::Output {
        let deadline = Instant::now() + limit;
        let mut child = self.0.take().unwrap();
        loop {
            if child.try_wait().unwrap().is_some() {
                return child.wait_with_output().unwrap();
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let o = child.wait_with_output().unwrap();
                panic!(
                    "jit request did not finish within {limit:?}: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

//! What the page refuses, in a real browser: no session, a used or expired one-time URL, a
//! cross-site form post, script in user text, a logged-out session.

use super::*;
use jit_test_kit::cdp::serve_html;

#[test]
fn a_used_one_time_url_is_refused() {
    let (ca, _alice, bob) = setup();
    // The browsers first, then the link: their start must not eat its 60 s.
    let mut one = Browser::launch();
    let mut two = Browser::launch();
    let mut three = Browser::launch();
    let url = login_url(&ca, &bob);
    // Two browsers hold the confirmation page of the same URL.
    for b in [&mut one, &mut two] {
        b.goto(&url);
        assert_eq!(b.status(), Some(200), "{}", b.describe());
        assert!(b.exists("form#login-form"));
    }
    one.click_and_wait("#login-submit");
    assert_eq!(
        one.url(),
        format!("{}/ui/pending", ca.url),
        "{}",
        one.describe()
    );
    assert!(one.text("#whoami").contains("bob"));
    // The second submission of the same token is refused: no session for browser two.
    two.click_and_wait("#login-submit");
    assert_eq!(two.status(), Some(403), "{}", two.describe());
    assert!(two.exists("main#error"), "{}", two.describe());
    assert!(two.cookies().iter().all(|c| c.name != COOKIE));
    // Opening the used URL again: refused, in a fresh browser and in the logged-in one.
    three.goto(&url);
    assert_eq!(three.status(), Some(403), "{}", three.describe());
    assert!(three.exists("main#error"));
    assert!(!three.exists("form#login-form"));
    assert!(
        three.text("main#error").contains("jit web"),
        "says what to do"
    );
    shot(&mut three, "login-refused");
    one.goto(&url);
    assert_eq!(one.status(), Some(403), "{}", one.describe());
    // The session made with it is unaffected.
    one.goto(&format!("{}/ui/pending", ca.url));
    assert_eq!(one.status(), Some(200), "{}", one.describe());
}

#[test]
fn a_browser_without_the_session_sees_only_the_login_page() {
    let (ca, alice, bob) = setup();
    let reason = "INC-31337: rotate the replication password";
    let r = request(&ca, &alice, "db-admin", reason);
    let mut b = Browser::launch();
    login(&ca, &bob, &mut b, false);
    b.goto(&format!("{}/ui/requests/{}", ca.url, r.id));
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert_eq!(b.text("#reason").trim(), reason);

    // Another browser (its own profile, no cookie) gets the login page for every page.
    let mut other = Browser::launch();
    for path in [
        "/ui/pending".to_string(),
        format!("/ui/requests/{}", r.id),
        "/ui/mine".to_string(),
        "/ui/access".to_string(),
        "/ui/audit".to_string(),
    ] {
        other.goto(&format!("{}{path}", ca.url));
        assert_login_page(&mut other, &[&r.id, reason, "alice", "bob"]);
    }
    assert!(other.cookies().is_empty(), "{:?}", other.cookies());
    // The logged-in browser still sees it.
    b.goto(&format!("{}/ui/pending", ca.url));
    assert!(b.exists(&format!("tr#req-{}", r.id)), "{}", b.describe());
}

#[test]
fn a_cross_site_form_post_is_refused() {
    let (ca, alice, bob) = setup();
    let r = request(&ca, &alice, "db-admin", "INC-2: cross-site target");
    let mut b = Browser::launch();
    login(&ca, &bob, &mut b, false);
    let page = format!("{}/ui/requests/{}", ca.url, r.id);
    b.goto(&page);
    // The attacker is given the real form fields (as if the CSRF token leaked): the origin
    // checks alone must stop the post.
    let csrf = b
        .attr("form#approve-form input[name=csrf]", "value")
        .expect("the approve form carries a csrf field");
    let digest = b
        .attr("form#approve-form input[name=request_digest]", "value")
        .expect("the approve form names the digest");
    let attack = format!(
        "<!doctype html><title>cute cats</title>\
         <form id=f method=post action='{page}/approve'>\
         <input type=hidden name=csrf value='{csrf}'>\
         <input type=hidden name=request_digest value='{digest}'>\
         <input type=hidden name=reason value='approved by a cat'></form>\
         <script>document.getElementById('f').submit()</script>"
    );
    // Same site, another origin (another port): the SameSite=Strict cookie IS sent, so the
    // Origin / Sec-Fetch-Site checks are what refuse it.
    let ca_url = ca.url.clone();
    let attack_from = |b: &mut Browser, ip: &str, html: &str, what: &str| {
        let site = serve_html(ip, 200, html);
        b.navigate_to(&format!("{site}/"), |u| u.starts_with(&ca_url));
        assert_eq!(
            b.url(),
            format!("{page}/approve"),
            "{what}: {}",
            b.describe()
        );
        assert_eq!(b.status(), Some(403), "{what}: {}", b.describe());
        assert!(b.exists("main#error"), "{what}: {}", b.describe());
        let error = b.text("main#error");
        assert!(error.contains("csrf_rejected"), "{what}: {error}");
        let v = show(&ca, &bob, &r.id);
        assert_eq!(v.state, RequestState::Pending, "{what}: {v:?}");
        assert!(v.approvals.is_empty(), "{what}: {v:?}");
        error
    };
    attack_from(&mut b, "127.0.0.1", &attack, "same site, leaked token");

    // Another site (127.0.0.2): the cookie is not even sent (SameSite=Strict; the origin
    // check refuses before the session is looked at, so the page cannot show it).
    attack_from(&mut b, "127.0.0.2", &attack, "cross site, leaked token");

    // Without the token, and with a wrong one: refused the same way.
    let without = attack.replace(&format!("<input type=hidden name=csrf value='{csrf}'>"), "");
    assert!(!without.contains(&csrf));
    let wrong = attack.replace(&csrf, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert!(!wrong.contains(&csrf));
    for (ip, html, what) in [
        ("127.0.0.1", &without, "same site, no token"),
        ("127.0.0.2", &without, "cross site, no token"),
        ("127.0.0.1", &wrong, "same site, wrong token"),
        ("127.0.0.2", &wrong, "cross site, wrong token"),
    ] {
        attack_from(&mut b, ip, html, what);
    }

    // The token check on its own, end to end: bob's own page (same origin, so the origin
    // checks pass and his cookie is sent) with the form's token taken out or changed.
    for (tamper, what) in [
        (
            "document.querySelector('form#approve-form input[name=csrf]').remove()",
            "no token",
        ),
        (
            "document.querySelector('form#approve-form input[name=csrf]').value = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'",
            "wrong token",
        ),
    ] {
        b.goto(&page);
        assert_eq!(b.status(), Some(200), "{}", b.describe());
        b.eval(tamper);
        b.click_and_wait("#approve-submit");
        assert_eq!(
            b.url(),
            format!("{page}/approve"),
            "{what}: {}",
            b.describe()
        );
        assert_eq!(b.status(), Some(403), "{what}: {}", b.describe());
        let error = b.text("main#error");
        assert!(
            error.contains("csrf_rejected") && error.contains("CSRF token"),
            "{what}: refused by the token check: {error}"
        );
        let v = show(&ca, &bob, &r.id);
        assert_eq!(v.state, RequestState::Pending, "{what}: {v:?}");
        assert!(v.approvals.is_empty(), "{what}: {v:?}");
    }

    // bob's session is still there and the request still approvable from the page.
    b.goto(&page);
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert!(b.text("#state").to_lowercase().contains("pending"));
    assert!(b.exists("form#approve-form"));
}

#[test]
fn a_page_framed_by_another_site_is_not_shown() {
    let (ca, alice, bob) = setup();
    let r = request(&ca, &alice, "db-admin", "INC-3: clickjacking target");
    let mut b = Browser::launch();
    login(&ca, &bob, &mut b, false);
    let page = format!("{}/ui/requests/{}", ca.url, r.id);
    // Same site (the session cookie would be sent into the frame): only the headers stop it.
    let frame = serve_html(
        "127.0.0.1",
        200,
        &format!(
            "<!doctype html><title>win a prize</title><iframe src='{page}' width=1000 height=600></iframe>"
        ),
    );
    b.goto(&format!("{frame}/"));
    let frames = b.child_frames();
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert!(
        !frames[0].starts_with(&ca.url),
        "the CA's page was shown inside another site's frame: {frames:?}"
    );
    assert_eq!(show(&ca, &bob, &r.id).state, RequestState::Pending);
}

#[test]
fn a_script_in_a_reason_renders_as_text() {
    let (ca, alice, bob) = setup();
    let reason = r#"<script>window.__pwned = 1; alert(1)</script><img src=x onerror="window.__pwned = 2"> & 'quoted'"#;
    let r = request(&ca, &alice, "db-admin", reason);
    assert_eq!(r.reason, reason);
    let mut b = Browser::launch();
    login(&ca, &bob, &mut b, false);
    let row = format!("table#pending tr#req-{}", r.id);
    assert!(b.text(&row).contains(reason), "{}", b.describe());
    assert_inert(&mut b);
    b.goto(&format!("{}/ui/requests/{}", ca.url, r.id));
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert_eq!(b.text("#reason").trim(), reason);
    assert_inert(&mut b);
    b.goto(&format!("{}/ui/audit", ca.url));
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    // The reason is there, as text (so "inert" is not just "left out").
    let audit = b.text("table#audit");
    assert!(
        audit.contains("<script>window.__pwned = 1; alert(1)</script>"),
        "the audit page shows the reason as text: {audit}"
    );
    assert_inert(&mut b);
}

/// No script ran and none is in the DOM: the page has no JavaScript at all.
fn assert_inert(b: &mut Browser) {
    assert_eq!(
        b.eval("typeof window.__pwned"),
        serde_json::json!("undefined")
    );
    assert_eq!(
        b.eval("document.querySelectorAll('script, [onerror], img[src=\"x\"]').length"),
        serde_json::json!(0),
        "{}",
        b.describe()
    );
    assert!(b.dialogs().is_empty(), "alert ran: {:?}", b.dialogs());
}

#[test]
fn logout_ends_the_session() {
    let (ca, _alice, bob) = setup();
    let mut b = Browser::launch();
    login(&ca, &bob, &mut b, false);
    let secret = b
        .cookies()
        .into_iter()
        .find(|c| c.name == COOKIE)
        .unwrap()
        .value;
    let pending = format!("{}/ui/pending", ca.url);
    // The copied cookie works in another browser while the session lives (so the check
    // after logout means something).
    let mut thief = Browser::launch();
    thief.set_cookie(&pending, COOKIE, &secret);
    thief.goto(&pending);
    assert_eq!(thief.status(), Some(200), "{}", thief.describe());

    // Log out in the page.
    assert!(b.exists("form#logout-form"));
    b.submit("form#logout-form");
    assert!(
        b.cookies().iter().all(|c| c.name != COOKIE),
        "logout clears the cookie: {:?}",
        b.cookies()
    );
    b.goto(&pending);
    assert_login_page(&mut b, &[]);
    // The server ended it: the old cookie no longer works anywhere.
    thief.goto(&pending);
    assert_login_page(&mut thief, &[]);

    // `jit web --logout` ends a session from the terminal.
    let mut c = Browser::launch();
    login(&ca, &bob, &mut c, false);
    let (code, stdout, stderr) = out(ca.jit(&bob).args(["web", "--logout"]));
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains('1'), "says one session ended: {stdout}");
    c.goto(&pending);
    assert_login_page(&mut c, &[]);
}

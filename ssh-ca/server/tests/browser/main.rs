//! The web page (issue 16) in a real browser: Debian's headless `chromium`, driven over the
//! DevTools protocol ([`jit_test_kit::cdp`]), against a real `jit-ca serve` and real `jit`
//! users ([`jit_test_kit::running`]). Nothing here is simulated: the one-time URL comes from
//! `jit web --print-url`, requests from `jit request`, and the browser clicks the page's own
//! buttons.
//!
//! * [`flow`]: log in through the one-time URL, see another user's pending request, approve
//!   it in the page, see it approved with its certificate while the requester's waiting `jit`
//!   gets the certificate; screenshots of every page (target/web-screenshots/, the copies in
//!   docs/img/web/ are shown by docs/web.md); the audit page shows that approval with the
//!   web session that made it (for an auditor; others are refused);
//! * [`expiry`]: a one-time URL is refused 60 s after `jit web` made it;
//! * [`refusals`]: a browser without the session sees only the login page; a used one-time
//!   URL is refused; a cross-site form post is refused; a `<script>` in a reason is
//!   text; logout (in the page, and `jit web --logout`) ends the session.
//!
//! Chromium missing fails these tests (never skips): `apt-get install chromium` or
//! `tests/install-deps.sh`. The expiry test waits 62 s of real time: it runs concurrently
//! with the others (its module sorts first, and it only sleeps).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod expiry;
mod flow;
mod refusals;

use jit_api::wire::{RequestList, RequestState, RequestView};
use jit_test_kit::cdp::Browser;
use jit_test_kit::running::{Ca, User, json, out};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The session cookie's name (the PREAMBLE's contract).
pub const COOKIE: &str = "jit_session";

/// A CA whose policy makes `group:security` auditors (for the audit page), with
/// alice (dev: requests) and bob (dba + security: approves, audits).
pub fn setup() -> (Ca, User, User) {
    let ca = Ca::start_with(|data| {
        let path = data.join("policy.toml");
        let policy = std::fs::read_to_string(&path).unwrap();
        // A top-level key must come before the first table.
        std::fs::write(&path, format!("auditors = [\"group:security\"]\n{policy}")).unwrap();
        String::new()
    });
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba", "security"]);
    (ca, alice, bob)
}

/// `jit web --print-url` as `user`: the one line it prints (checked to be the CA's
/// `/ui/login?token=` URL: no `public_url`, so `jit` joins the path to its own server URL).
pub fn login_url(ca: &Ca, user: &User) -> String {
    let (code, stdout, stderr) = out(ca.jit(user).args(["web", "--print-url"]));
    assert_eq!(code, 0, "jit web --print-url failed: {stderr}");
    assert_eq!(stdout.lines().count(), 1, "one line on stdout: {stdout:?}");
    let url = stdout.trim().to_string();
    assert!(
        url.starts_with(&format!("{}/ui/login?token=", ca.url)),
        "{url}"
    );
    url
}

/// Logs `user` in: `jit web --print-url`, open it, check the confirmation page, click
/// "log in", land on /ui/pending as the user with the session cookie set as the contract
/// says. Returns the one-time URL (used up now).
pub fn login(ca: &Ca, user: &User, b: &mut Browser, shots: bool) -> String {
    let url = login_url(ca, user);
    b.goto(&url);
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert!(b.exists("form#login-form"), "{}", b.describe());
    let confirm = b.text("main");
    assert!(
        confirm.contains(&format!("Log in as {}", user.name)),
        "the confirmation names the user: {confirm}"
    );
    assert!(
        b.cookies().iter().all(|c| c.name != COOKIE),
        "opening the link (a GET) must not log in"
    );
    if shots {
        shot(b, "login-confirm");
    }
    b.click_and_wait("#login-submit");
    assert_eq!(
        b.url(),
        format!("{}/ui/pending", ca.url),
        "{}",
        b.describe()
    );
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    let who = b.text("#whoami");
    assert!(who.contains(&user.name), "#whoami: {who}");
    let cookies = b.cookies();
    let c = cookies
        .iter()
        .find(|c| c.name == COOKIE)
        .unwrap_or_else(|| panic!("no {COOKIE} cookie after login: {cookies:?}"));
    assert!(c.http_only, "{c:?}");
    assert_eq!(c.same_site.as_deref(), Some("Strict"), "{c:?}");
    assert_eq!(c.path, "/ui", "{c:?}");
    assert!(!c.secure, "plain http: no Secure flag ({c:?})");
    assert!(c.expires > 0.0, "Max-Age set: {c:?}");
    url
}

/// `jit request ROLE --no-wait` as `user` with `reason`; returns the pending request.
pub fn request(ca: &Ca, user: &User, role: &str, reason: &str) -> RequestView {
    let r: RequestView = json(ca.jit(user).args([
        "request",
        role,
        "--duration",
        "30m",
        "--reason",
        reason,
        "--host",
        "db-1",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(r.state, RequestState::Pending);
    r
}

/// `jit show ID --json` as `user`.
pub fn show(ca: &Ca, user: &User, id: &str) -> RequestView {
    json(ca.jit(user).args(["show", id, "--json"]))
}

/// Waits (30 s at most) until `approver` sees a pending request; returns its id.
pub fn wait_for_pending(ca: &Ca, approver: &User) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l: RequestList = json(ca.jit(approver).args(["list", "--pending", "--json"]));
        if let Some(r) = l.requests.first() {
            return r.id.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the request never showed up as pending"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Asserts the page is the login-required page (401, `#login-required`, says to run
/// `jit web`) and that none of `secrets` (request ids, reasons, user names) is on it.
pub fn assert_login_page(b: &mut Browser, secrets: &[&str]) {
    assert_eq!(b.status(), Some(401), "{}", b.describe());
    assert!(b.exists("main#login-required"), "{}", b.describe());
    let html = b
        .eval("document.documentElement.outerHTML")
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        html.contains("jit web"),
        "the login page says to run jit web"
    );
    for s in secrets {
        assert!(!html.contains(s), "the login page leaks {s:?}:\n{html}");
    }
    assert!(!b.exists("table#pending") && !b.exists("#state"));
}

/// The headers every /ui response carries, as the browser received them.
pub fn assert_ui_headers(b: &mut Browser) {
    let want = [
        (
            "content-security-policy",
            "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ),
        ("referrer-policy", "no-referrer"),
        ("x-content-type-options", "nosniff"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ];
    for (name, value) in want {
        let got = b.header(name).map(str::to_string);
        assert_eq!(got.as_deref(), Some(value), "{name} on {}", b.describe());
    }
}

/// Where the screenshots go: target/web-screenshots/NAME.png (1280x800). Every page shot is
/// also checked for the /ui headers.
pub fn shot(b: &mut Browser, name: &str) {
    assert_ui_headers(b);
    let dir: PathBuf = jit_test_kit::bins::profile_dir()
        .parent()
        .expect("target/")
        .join("web-screenshots");
    b.screenshot(&dir.join(format!("{name}.png")));
}

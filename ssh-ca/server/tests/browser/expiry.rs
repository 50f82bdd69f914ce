//! An expired one-time URL, in real time. Its own module, named to sort first: libtest starts
//! tests in name order, so this one (62 s, nearly all asleep) runs beside the others
//! instead of after them.

use super::*;

#[test]
fn an_expired_one_time_url_is_refused() {
    let (ca, _alice, bob) = setup();
    // The browser first: its start (up to a minute on a loaded machine) must not eat the
    // link's 60 s.
    let mut b = Browser::launch();
    // Opened in time: the confirmation (a GET changes nothing). Should the machine be so
    // slow that even this took 60 s from before `jit web` ran, take a new link (a 403 any
    // sooner fails the test).
    let (url, got) = {
        let mut tries = 0;
        loop {
            tries += 1;
            let asked = Instant::now();
            let url = login_url(&ca, &bob);
            // Counted from when `jit web` returned: the link was made before that (the
            // first `jit` run may also have waited for cargo to build it).
            let got = Instant::now();
            b.goto(&url);
            if b.status() == Some(200) {
                break (url, got);
            }
            assert!(
                asked.elapsed() >= Duration::from_secs(60) && tries < 3,
                "a fresh link was refused after {:?}: {}",
                asked.elapsed(),
                b.describe()
            );
        }
    };
    assert_eq!(b.status(), Some(200), "{}", b.describe());
    assert!(b.exists("form#login-form"));
    // The URL is valid for 60 s: submitted after that, it is refused.
    let expired = got + Duration::from_secs(62);
    while Instant::now() < expired {
        std::thread::sleep(Duration::from_millis(500));
    }
    b.click_and_wait("#login-submit");
    assert_eq!(b.status(), Some(403), "{}", b.describe());
    assert!(b.exists("main#error"), "{}", b.describe());
    assert!(b.text("main#error").contains("jit web"), "says what to do");
    assert!(b.cookies().iter().all(|c| c.name != COOKIE));
    // Opening it again is refused too, and nothing is reachable.
    b.goto(&url);
    assert_eq!(b.status(), Some(403), "{}", b.describe());
    assert!(b.exists("main#error"));
    b.goto(&format!("{}/ui/pending", ca.url));
    assert_login_page(&mut b, &[]);
}

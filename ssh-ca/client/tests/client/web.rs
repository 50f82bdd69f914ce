//! `jit web` against a real `jit-ca serve`: the one-time URL (printed, opened with
//! `$BROWSER`, or printed when no browser opens) and `--logout`.

use std::os::unix::fs::PermissionsExt as _;

use jit_test_kit::running::*;

fn token_of(url: &str) -> String {
    url.split("/ui/login?token=").nth(1).unwrap().to_string()
}

#[test]
fn print_url_prints_one_login_url_and_logout_counts_the_sessions() {
    let ca = Ca::start();
    let bob = ca.user("bob", &["dba"]);
    let (code, stdout, stderr) = out(ca.jit(&bob).args(["web", "--print-url"]));
    assert_eq!(code, 0, "{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "one line on stdout: {stdout:?}");
    let url = lines[0];
    assert!(
        url.starts_with(&format!("{}/ui/login?token=", ca.url)),
        "{url}"
    );
    assert_eq!(token_of(url).len(), 43);
    // Two browsers logged in, one of them with this URL.
    ca.web_login(&token_of(url));
    let (_, second, _) = out(ca.jit(&bob).args(["web", "--print-url"]));
    let id = ca.web_login(&token_of(second.trim()));
    assert!(id.starts_with("ws-"), "{id}");
    let (code, stdout, stderr) = out(ca.jit(&bob).args(["web", "--logout"]));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "Ended 2 web sessions.\n");
    let (_, stdout, _) = out(ca.jit(&bob).args(["web", "--logout", "--json"]));
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v, serde_json::json!({"ended": 0}));
    // R1-16 F10: neither token is in what the serve wrote, nor in its database (the
    // WAL included, where fresh rows sit until a checkpoint).
    let mut stored = Vec::new();
    for f in ["jit.db", "jit.db-wal"] {
        if let Ok(b) = std::fs::read(ca.data().join(f)) {
            stored.extend(b);
        }
    }
    assert!(!stored.is_empty());
    let stored = String::from_utf8_lossy(&stored);
    let log = ca.serve_log();
    for t in [token_of(url), token_of(second.trim())] {
        assert!(!log.contains(&t), "a token in the serve's output");
        assert!(!stored.contains(&t), "a token in the database");
    }
    // --print-url and --logout together: a usage error.
    let (code, _, _) = out(ca.jit(&bob).args(["web", "--print-url", "--logout"]));
    assert_eq!(code, 2);
}

#[test]
fn jit_web_opens_the_url_with_browser_or_prints_it_and_why() {
    let ca = Ca::start();
    let bob = ca.user("bob", &["dba"]);
    let seen = ca.dir.path().join("opened");
    let script = ca.dir.path().join("browser.sh");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nprintf '%s\\n' \"$@\" > {}\n", seen.display()),
    )
    .unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    let (code, stdout, stderr) = out(ca.jit(&bob).arg("web").env("BROWSER", &script));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout, "", "nothing on stdout when the browser opened it");
    assert!(stderr.contains("opened the login page"), "{stderr}");
    let opened = std::fs::read_to_string(&seen).unwrap();
    assert!(
        opened.starts_with(&format!("{}/ui/login?token=", ca.url)),
        "{opened}"
    );
    assert_eq!(opened.lines().count(), 1, "the URL is one argument");
    // The opened URL logs in (once).
    ca.web_login(&token_of(opened.trim()));

    // A browser that fails: the URL on stdout, why on stderr.
    let (code, stdout, stderr) = out(ca.jit(&bob).arg("web").env("BROWSER", "false"));
    assert_eq!(code, 0, "{stderr}");
    assert!(
        stdout.starts_with(&format!("{}/ui/login?token=", ca.url)),
        "{stdout}"
    );
    assert!(
        stderr.contains("could not open a browser (false failed"),
        "{stderr}"
    );
    // No $BROWSER and no xdg-open on PATH: says so.
    let (code, stdout, stderr) = out(ca.jit(&bob).arg("web").env("PATH", "/nonexistent"));
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    assert!(stderr.contains("cannot run"), "{stderr}");
}

//! `jit web`: log a browser in to the CA's web pages with a one-time URL (`POST
//! /v1/web/login`, signed like every call), or end the web sessions (`--logout`).
//!
//! The URL is opened with `$BROWSER` (a `:`-separated list of commands, `%s` standing for the
//! URL, as in `sensible-browser`), else `xdg-open` (`open` on macOS). The URL is passed as one
//! argument, never through a shell. A URL the server sends is checked before anything runs it.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use jit_api::wire::WebLoginView;

use super::error::{Error, Result};

/// How long a browser command may run before it counts as having opened the page (a
/// browser started in the foreground may run until it is closed).
const OPEN_WAIT: Duration = Duration::from_secs(5);

/// The prefix of the login path the CA answers.
const LOGIN_PATH: &str = "/ui/login?token=";

/// The absolute login URL: the CA's `url` when it sent one (its `public_url`), else `path`
/// joined to the server `jit` talks to. Refuses anything that is not a login URL of the CA's
/// (a URL goes to a program: it must not be able to be anything else).
pub fn login_url(server: &str, view: &WebLoginView) -> Result<String> {
    let token = view.path.strip_prefix(LOGIN_PATH).unwrap_or("");
    if token.is_empty()
        || !token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(Error::Protocol(format!(
            "the CA answered a login path that is not {LOGIN_PATH}TOKEN: {}; are jit and jit-ca the same version?",
            jit_common::log::sanitize(&view.path, 200)
        )));
    }
    let url = match &view.url {
        Some(u) => u.clone(),
        None => format!("{}{}", server.trim_end_matches('/'), view.path),
    };
    let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
    let chars_ok = url.bytes().all(|b| b.is_ascii_graphic());
    if !scheme_ok || !chars_ok || !url.ends_with(&view.path) {
        return Err(Error::Protocol(format!(
            "the CA answered a login URL that is not an http(s) URL ending in its login path: {}",
            jit_common::log::sanitize(&url, 200)
        )));
    }
    Ok(url)
}

/// The commands to try, in order: each `$BROWSER` entry, else the platform's opener. Each is
/// (program, arguments) with `%s` replaced by the URL, or the URL appended.
pub fn openers(browser: Option<&str>, url: &str) -> Vec<(String, Vec<String>)> {
    let entries: Vec<String> = match browser.map(str::trim).filter(|b| !b.is_empty()) {
        Some(b) => b
            .split(':')
            .map(str::trim)
            .filter(|e| !e.is_empty())
            .map(str::to_string)
            .collect(),
        None if cfg!(target_os = "macos") => vec!["open".into()],
        None => vec!["xdg-open".into()],
    };
    entries
        .iter()
        .filter_map(|e| {
            let mut words = e.split_whitespace().map(str::to_string);
            let program = words.next()?;
            let mut args: Vec<String> = words.collect();
            if args.iter().any(|a| a.contains("%s")) {
                for a in &mut args {
                    *a = a.replace("%s", url);
                }
            } else {
                args.push(url.to_string());
            }
            Some((program, args))
        })
        .collect()
}

/// Runs one opener; Ok when it exited 0 or is still running after [`OPEN_WAIT`], else why.
fn run_opener(program: &str, args: &[String]) -> std::result::Result<(), String> {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let start = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{program} failed ({status})")),
            Ok(None) if start.elapsed() >= OPEN_WAIT => return Ok(()),
            Ok(None) => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => return Err(format!("waiting for {program}: {e}")),
        }
    }
}

/// Opens `url` in a browser: the first opener that works. Else why none did (one line).
pub fn open(url: &str) -> std::result::Result<String, String> {
    let browser = std::env::var("BROWSER").ok();
    let mut why = Vec::new();
    for (program, args) in openers(browser.as_deref(), url) {
        match run_opener(&program, &args) {
            Ok(()) => return Ok(program),
            Err(e) => why.push(e),
        }
    }
    if why.is_empty() {
        why.push("$BROWSER names no command".into());
    }
    Err(why.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn view(path: &str, url: Option<&str>) -> WebLoginView {
        WebLoginView {
            path: path.into(),
            url: url.map(str::to_string),
            expires_at: 0,
            expires_in_secs: 60,
        }
    }

    #[test]
    fn the_url_is_the_servers_or_the_public_one_and_nothing_else() {
        let v = view("/ui/login?token=abc-_9", None);
        assert_eq!(
            login_url("https://ca:8443/", &v).unwrap(),
            "https://ca:8443/ui/login?token=abc-_9"
        );
        let v = view(
            "/ui/login?token=abc",
            Some("https://ca.example.com/ui/login?token=abc"),
        );
        assert_eq!(
            login_url("http://10.0.0.1:8443", &v).unwrap(),
            "https://ca.example.com/ui/login?token=abc"
        );
        for (path, url) in [
            ("/ui/login?token=", None),
            ("/ui/login?token=a b", None),
            ("/elsewhere?token=abc", None),
            ("/ui/login?token=abc;rm", None),
            (
                "/ui/login?token=abc",
                Some("file:///etc/passwd#/ui/login?token=abc"),
            ),
            (
                "/ui/login?token=abc",
                Some("https://x/ y/ui/login?token=abc"),
            ),
            ("/ui/login?token=abc", Some("https://evil.example/")),
        ] {
            assert!(
                login_url("https://ca", &view(path, url)).is_err(),
                "{path} {url:?}"
            );
        }
    }

    #[test]
    fn browser_entries_substitute_or_append_the_url() {
        let u = "https://ca/ui/login?token=t";
        assert_eq!(
            openers(Some("firefox --new-window:chromium %s"), u),
            vec![
                ("firefox".into(), vec!["--new-window".into(), u.into()]),
                ("chromium".into(), vec![u.into()]),
            ]
        );
        let default = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        assert_eq!(openers(None, u), vec![(default.into(), vec![u.into()])]);
        assert_eq!(
            openers(Some("  "), u),
            vec![(default.into(), vec![u.into()])]
        );
        assert!(openers(Some(":"), u).is_empty());
    }

    #[test]
    fn a_failing_or_missing_opener_says_why() {
        let e = run_opener("/nonexistent/browser", &[]).unwrap_err();
        assert!(e.contains("cannot run /nonexistent/browser"), "{e}");
        let e = run_opener("false", &[]).unwrap_err();
        assert!(e.contains("false failed"), "{e}");
        run_opener("true", &[]).unwrap();
    }
}

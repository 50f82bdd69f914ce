//! The requester's workflow of issue 13 through the real binaries: Ctrl-C while waiting,
//! later windows (`--start`, `--in`), `status` with each elevation's end and time left,
//! `show` of a revoked request, `list` columns that fit real ids.

use std::io::{BufRead as _, BufReader};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use jit_api::wire::{RequestState, RequestView};
use jit_common::time::{format_duration, format_utc};
use jit_test_kit::running::*;

fn now() -> u64 {
    jit_common::now().as_secs()
}

#[test]
fn ctrl_c_while_waiting_says_how_to_cancel_or_resume_and_exits_130() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let mut child = ca
        .jit(&alice)
        .args(["request", "db-admin", "--duration", "5m", "--reason", "x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for l in BufReader::new(stderr).lines() {
            let l = l.unwrap();
            let _ = tx.send(l.clone());
            lines.push(l);
        }
        lines
    });
    // Wait until it is waiting for approval, then press Ctrl-C (SIGINT to the process).
    loop {
        let l = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("jit request did not start waiting");
        if l.starts_with("jit: waiting for approval of ") {
            break;
        }
    }
    run_ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "{status:?}");
    let lines = reader.join().unwrap();
    let mut stdout = String::new();
    std::io::Read::read_to_string(&mut child.stdout.take().unwrap(), &mut stdout).unwrap();
    assert_eq!(stdout, "");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    let id = lines[0]
        .strip_prefix("jit: request ")
        .and_then(|l| l.split(' ').next())
        .unwrap()
        .to_string();
    assert_eq!(
        lines[0],
        format!(
            "jit: request {id} is pending: an approver runs `jit approve {id}`; Ctrl-C stops \
             waiting (the request stays pending: `jit login {id} --wait` waits again, or `jit \
             cancel {id}` withdraws it)"
        )
    );
    let waiting = format!("jit: waiting for approval of {id} (0/1 approvals; pending expires in ");
    assert!(lines[1].starts_with(&waiting), "{lines:#?}");
    assert_eq!(
        lines[2],
        format!(
            "jit: stopped waiting; request {id} stays pending: `jit cancel {id}` withdraws it, \
             `jit login {id} --wait` waits again and installs the certificate once it is \
             approved (`jit show {id}` shows where it stands)"
        )
    );
    // It did stay pending, and what the message says works.
    let r: RequestView = json(ca.jit(&alice).args(["show", &id, "--json"]));
    assert_eq!(r.state, RequestState::Pending);
    let (code, _, err) = out(ca.jit(&alice).args(["cancel", &id]));
    assert_eq!(code, 0, "{err}");

    // With --json, the same message in the error shape on stdout.
    let mut child = ca
        .jit(&alice)
        .args([
            "request",
            "db-admin",
            "--duration",
            "5m",
            "--reason",
            "x",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    loop {
        let l = lines.next().unwrap().unwrap();
        if l.starts_with("jit: waiting for approval of ") {
            break;
        }
    }
    run_ok(std::process::Command::new("kill").args(["-INT", &child.id().to_string()]));
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(130));
    let body: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(body["error"]["code"], "interrupted");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("stopped waiting; request "),
        "{body}"
    );
}

/// A waiting `jit` (stdout and stderr piped): returns once it says it is waiting for
/// approval, with the stderr lines read so far and a reader for the rest.
struct Waiting {
    child: std::process::Child,
    lines: Vec<String>,
    rest: mpsc::Receiver<String>,
}

impl Waiting {
    fn start(cmd: &mut std::process::Command) -> Waiting {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for l in BufReader::new(stderr).lines() {
                let _ = tx.send(l.unwrap());
            }
        });
        let mut lines = Vec::new();
        loop {
            let l = rx
                .recv_timeout(Duration::from_secs(30))
                .unwrap_or_else(|_| panic!("jit did not start waiting: {lines:#?}"));
            let waiting = l.starts_with("jit: waiting for approval of ");
            lines.push(l);
            if waiting {
                break;
            }
        }
        Waiting {
            child,
            lines,
            rest: rx,
        }
    }

    /// Waits for the exit: (exit code, stdout, every stderr line).
    fn finish(mut self) -> (i32, String, Vec<String>) {
        let o = self.child.wait_with_output().unwrap();
        self.lines.extend(self.rest.iter());
        (
            o.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&o.stdout).into_owned(),
            self.lines,
        )
    }

    fn interrupt(self) -> (i32, String, Vec<String>) {
        run_ok(std::process::Command::new("kill").args(["-INT", &self.child.id().to_string()]));
        self.finish()
    }
}

fn pending_request(ca: &Ca, user: &User) -> String {
    let r: RequestView = json(ca.jit(user).args([
        "request",
        "db-admin",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(r.state, RequestState::Pending);
    r.id
}

#[test]
fn login_wait_resumes_waiting_and_installs_the_certificate_once_approved() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let id = pending_request(&ca, &alice);
    // Without --wait, as before: refused, and it names --wait.
    let (code, text, err) = out(ca.jit(&alice).args(["login", &id]));
    assert_eq!((code, text.as_str()), (1, ""), "{err}");
    assert_eq!(
        err,
        format!(
            "jit: request {id} is still pending (0/1 approvals); try again once it is approved, \
             or wait for it with `jit login {id} --wait`\n"
        )
    );
    // With --wait it waits as `jit request` does; bob approves meanwhile.
    let waiting = Waiting::start(ca.jit(&alice).args(["login", &id, "--wait"]));
    let (code, _, err) = out(ca.jit(&bob).args(["approve", &id]));
    assert_eq!(code, 0, "{err}");
    let (code, text, lines) = waiting.finish();
    assert_eq!(code, 0, "{lines:#?}");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        lines[0],
        format!(
            "jit: request {id} is pending: an approver runs `jit approve {id}`; Ctrl-C stops \
             waiting (the request stays pending: `jit login {id} --wait` waits again, or `jit \
             cancel {id}` withdraws it)"
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "jit: waiting for approval of {id} (0/1 approvals; pending expires in "
        )),
        "{lines:#?}"
    );
    assert_eq!(lines[2], format!("jit: request {id} approved"));
    assert_eq!(
        line(&text, "Certificate for request "),
        format!(
            "Certificate for request {id} written to {}",
            alice.cert().display()
        )
    );
    assert!(keygen_l(&alice.cert()).contains("Serial: "), "{text}");
    // On an approved request, --wait does not wait: it installs, as plain `jit login`.
    let (code, text, err) = out(ca.jit(&alice).args(["login", &id, "--wait"]));
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(text.starts_with(&format!("Certificate for request {id} written to ")));
}

#[test]
fn ctrl_c_during_a_resumed_wait_and_a_denial_while_waiting() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let id = pending_request(&ca, &alice);
    // Ctrl-C while `jit login --wait` waits: the same hint as `jit request`'s, exit 130.
    let (code, text, lines) =
        Waiting::start(ca.jit(&alice).args(["login", &id, "--wait"])).interrupt();
    assert_eq!((code, text.as_str()), (130, ""), "{lines:#?}");
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        lines[2],
        format!(
            "jit: stopped waiting; request {id} stays pending: `jit cancel {id}` withdraws it, \
             `jit login {id} --wait` waits again and installs the certificate once it is \
             approved (`jit show {id}` shows where it stands)"
        )
    );
    let r: RequestView = json(ca.jit(&alice).args(["show", &id, "--json"]));
    assert_eq!(r.state, RequestState::Pending);
    // Someone else's request (or another key): refused before waiting.
    let (code, text, err) = out(ca.jit(&bob).args(["login", &id, "--wait"]));
    assert_eq!((code, text.as_str()), (1, ""), "{err}");
    let want = format!("jit: request {id} is for another key than the one you are using (");
    assert!(err.starts_with(&want), "{err}");
    assert!(
        err.ends_with(
            "); wait for it with the identity that made the request (--identity KEYFILE)\n"
        ),
        "{err}"
    );
    // Waiting again, then denied: shown, exit 3, as `jit request`.
    let waiting = Waiting::start(ca.jit(&alice).args(["login", &id, "--wait"]));
    let (code, _, err) = out(ca.jit(&bob).args(["deny", &id, "--reason", "use web-read"]));
    assert_eq!(code, 0, "{err}");
    let (code, text, lines) = waiting.finish();
    assert_eq!(code, 3, "{lines:#?}");
    assert_eq!(
        lines[2..],
        [
            format!("jit: request {id} denied"),
            format!("jit: request {id} was denied by bob: use web-read"),
        ],
        "{lines:#?}"
    );
    assert!(
        text.starts_with(&format!("id:         {id}\nstate:      denied\n")),
        "{text}"
    );
    assert!(!alice.cert().exists());
}

/// The stdout line of `text` that starts with `prefix`.
fn line<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {text}"))
}

#[test]
fn a_later_window_with_in_or_start() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    // --in 2h: the start is two hours from now.
    let before = now();
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--in",
        "2h",
        "--no-wait",
        "--json",
    ]));
    let start = r.start.unwrap();
    assert!((before + 7200..=now() + 7200).contains(&start), "{r:?}");
    // Pending until the window would end (pending_expiry 1h > 30m).
    assert_eq!(r.pending_expires_at, start + 1800);
    let (code, text, _) = out(ca.jit(&alice).args(["show", &r.id]));
    assert_eq!(code, 0);
    assert!(
        line(&text, "start:").starts_with(&format!("start:      {} (in ", format_utc(start))),
        "{text}"
    );
    // jit status lists it with its start.
    let (_, text, _) = out(ca.jit(&alice).args(["status"]));
    let pending = &text[text.find("Pending:\n").unwrap()..];
    let id = &r.id;
    let w = id.len();
    assert_eq!(
        pending,
        format!(
            "Pending:\n{:<w$}  STATE    USER   ROLE      DURATION  START                 \
             APPROVALS  REASON\n{id}  pending  alice  db-admin       30m  {}        0/1  x\n",
            "ID",
            format_utc(start)
        )
    );
    // Approved now, before its start: the certificate is valid from the start.
    let a: RequestView = json(ca.jit(&bob).args(["approve", id, "--json"]));
    assert_eq!(a.valid_after, Some(start));
    assert_eq!(a.valid_before, Some(start + 1800));
    let (code, text, err) = out(ca.jit(&alice).args(["login", id]));
    assert_eq!(code, 0, "{err}");
    assert!(
        line(&text, "  valid:").starts_with(&format!(
            "  valid:      {} to {} (starts in ",
            format_utc(start),
            format_utc(start + 1800)
        )),
        "{text}"
    );
    assert!(
        keygen_l(&alice.cert()).contains(&format!(
            "Valid: from {}",
            jit_test_kit::harness::keygen_time(start)
        )),
        "{}",
        keygen_l(&alice.cert())
    );

    // --start in the local time zone (TZ): 10:00 in New York is 15:00 UTC in winter.
    let day = jiff::Timestamp::from_second(now() as i64 + 3 * 86_400)
        .unwrap()
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .date();
    let local = format!("{day} 10:00");
    let want = day
        .at(10, 0, 0, 0)
        .to_zoned(jiff::tz::TimeZone::get("America/New_York").unwrap())
        .unwrap()
        .timestamp()
        .as_second() as u64;
    let r: RequestView = json(ca.jit(&alice).env("TZ", "America/New_York").args([
        "request",
        "web-read",
        "--duration",
        "1h",
        "--reason",
        "x",
        "--start",
        &local,
        "--no-wait",
        "--json",
    ]));
    assert_eq!(r.start, Some(want));
    // RFC 3339 with an offset.
    let rfc = format_utc(want + 86_400).replace('Z', "+00:00");
    let (code, _, err) = out(ca.jit(&alice).args([
        "request",
        "self-serve",
        "--duration",
        "1h",
        "--reason",
        "x",
        "--start",
        &rfc,
        "--no-wait",
    ]));
    assert_eq!(code, 0, "{err}");
}

#[test]
fn a_bad_start_is_refused_clearly() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let base = [
        "request",
        "db-admin",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--no-wait",
    ];
    let (code, _, err) = out(ca.jit(&alice).args(base).args(["--start", "tomorrow"]));
    assert_eq!(code, 2, "{err}");
    assert_eq!(
        err.lines().next().unwrap(),
        "error: invalid value 'tomorrow' for '--start <TIME>': invalid start time \"tomorrow\": \
         use RFC 3339 (2026-12-01T09:00:00Z) or YYYY-MM-DD HH:MM in your local time zone (or \
         --in 2h)"
    );
    let (code, _, err) =
        out(ca
            .jit(&alice)
            .args(base)
            .args(["--start", "2026-12-01T09:00:00Z", "--in", "2h"]));
    assert_eq!(code, 2, "{err}");
    assert!(
        err.starts_with(
            "error: the argument '--start <TIME>' cannot be used with '--in <DURATION>'"
        ),
        "{err}"
    );
    // In the past: the CA refuses, saying by how much and what to do.
    let (code, _, err) = out(ca
        .jit(&alice)
        .args(base)
        .args(["--start", "2020-01-01T00:00:00Z"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.starts_with(
            "jit: server refused (invalid_input, HTTP 400): the start 2020-01-01T00:00:00Z is "
        ),
        "{err}"
    );
    assert!(
        err.ends_with("; give a later time, or leave out --start to begin at approval\n"),
        "{err}"
    );
    // Too far ahead (the default max_start_ahead is 30 days).
    let (code, _, err) = out(ca.jit(&alice).args(base).args(["--in", "31days"]));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.ends_with(
            " ahead; this CA accepts at most 30days (max_start_ahead in its config.toml): ask \
             again closer to the time\n"
        ),
        "{err}"
    );
}

#[test]
fn status_show_and_list_say_when_it_ends_who_revoked_it_and_fit_real_ids() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "web-read",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ]));
    let id = r.id.clone();
    let a: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    let end = a.valid_before.unwrap();

    // status: each active elevation's end and time left.
    let before = now();
    let (code, text, err) = out(ca.jit(&alice).args(["status"]));
    let after = now();
    assert_eq!(code, 0, "{err}");
    let active = &text[text.find("Active:\n").unwrap()..];
    let w = id.len();
    let ok = (before..=after).any(|t| {
        active
            == format!(
                "Active:\n{:<w$}  ROLE      HOSTS  ENDS                  LEFT\n\
                 {id}  web-read  web-*  {}  {}\n",
                "ID",
                format_utc(end),
                format_duration(end - t)
            )
    });
    assert!(ok, "{active}");

    // show of a revoked request: who, when, why; no time left.
    let (code, _, err) = out(ca.jit(&bob).args(["revoke", &id, "--reason", "done"]));
    assert_eq!(code, 0, "{err}");
    let v: RequestView = json(ca.jit(&alice).args(["show", &id, "--json"]));
    let (code, text, _) = out(ca.jit(&alice).args(["show", &id]));
    assert_eq!(code, 0);
    assert_eq!(
        text,
        format!(
            "id:         {id}\nstate:      revoked\nuser:       alice\nrole:       web-read\n\
             reason:     x\nduration:   30m\nhosts:      web-*\nprincipals: alice\nsudo:       no\n\
             created:    {}\napprovals:  1/1 (bob)\nrevoked:    {} by bob: done\n\
             valid:      {} to {} (revoked)\nserial:     {}\ngrant:      {}\n",
            format_utc(v.created_at),
            format_utc(v.revoked_at.unwrap()),
            format_utc(v.valid_after.unwrap()),
            format_utc(end),
            v.serial.unwrap(),
            v.grant_id.as_deref().unwrap(),
        )
    );
    // Dropped by the requester.
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "web-read",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ]));
    let _: RequestView = json(ca.jit(&bob).args(["approve", &r.id, "--json"]));
    let (code, text, _) = out(ca.jit(&alice).args(["drop", &r.id]));
    assert_eq!(code, 0);
    assert!(
        text.contains(" by alice (the requester): dropped by requester\n"),
        "{text}"
    );
    assert!(!text.contains("left)"), "{text}");

    // list: the columns are as wide as the ids (22 characters today).
    let list: jit_api::wire::RequestList = json(ca.jit(&bob).args(["list", "--json"]));
    let (one, two) = (&list.requests[0].id, &list.requests[1].id);
    assert_eq!(one.len(), 22, "{list:?}");
    let (code, text, _) = out(ca.jit(&bob).args(["list"]));
    assert_eq!(code, 0);
    assert_eq!(
        text,
        format!(
            "{:<w$}  STATE    USER   ROLE      DURATION  APPROVALS  REASON\n\
             {one}  revoked  alice  web-read       30m        1/1  x\n\
             {two}  revoked  alice  web-read       30m        1/1  x\n",
            "ID"
        )
    );
}

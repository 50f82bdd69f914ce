//! Issue 17: `jit` with several servers (the replicas of one CA). One real `jit-ca serve`
//! beside stand-ins for the other replicas: a dead address, a tiny local listener that
//! answers every call with a fixed status (503 `unavailable`, a 403, a gateway's 502), one
//! that reads the request and hangs up without answering, and a proxy to the real CA that
//! can be cut off mid-wait. Real PostgreSQL replicas are in the system tests.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::Stdio;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jit_api::wire::{ErrorBody, RequestList, RequestState, RequestView, WhoamiView};
use jit_test_kit::running::*;

/// One call a stand-in received.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    path: String,
    nonce: Option<String>,
    audience: Option<String>,
}

#[derive(Clone, Copy)]
enum Behaviour {
    /// Answer every call with this status and body.
    Reply(u16, &'static str),
    /// Read the whole request, then close the connection without a byte of answer.
    HangUp,
}

/// A local listener standing in for a replica.
struct Fake {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

/// Reads one HTTP request (head and Content-Length body); None at EOF.
fn read_request(reader: &mut BufReader<TcpStream>) -> Option<Seen> {
    let mut line = String::new();
    if reader.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut len = 0usize;
    let (mut nonce, mut audience) = (None, None);
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        let (k, v) = (k.trim().to_ascii_lowercase(), v.trim().to_string());
        match k.as_str() {
            "content-length" => len = v.parse().ok()?,
            "x-jit-nonce" => nonce = Some(v),
            "x-jit-audience" => audience = Some(v),
            _ => {}
        }
    }
    let mut body = vec![0; len];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        path,
        nonce,
        audience,
    })
}

impl Fake {
    fn start(behaviour: Behaviour) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut writer = conn.try_clone().unwrap();
                    let mut reader = BufReader::new(conn);
                    let Some(s) = read_request(&mut reader) else {
                        return;
                    };
                    log.lock().unwrap().push(s);
                    if let Behaviour::Reply(status, body) = behaviour {
                        let _ = write!(
                            writer,
                            "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    // Answered or not (HangUp): the connection ends here.
                    let _ = writer.shutdown(Shutdown::Both);
                });
            }
        });
        Fake { url, seen }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn posts(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == "POST")
            .collect()
    }
}

/// An address where nothing listens (bound, then closed).
fn dead() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

const UNAVAILABLE: &str =
    r#"{"error":{"code":"unavailable","message":"the CA's database is unreachable; retry"}}"#;
const FORBIDDEN: &str = r#"{"error":{"code":"forbidden","message":"not yours"}}"#;
const GATEWAY: &str = "<html>502 Bad Gateway</html>";

/// The CA's fingerprint, as `jit` pins it with JIT_CA_FINGERPRINT.
fn fingerprint(ca: &Ca) -> String {
    let text = ureq::get(&format!("{}/v1/ca.pub", ca.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    jit_api::auth::audience_from_ca_pub(&text).unwrap()
}

fn requests_on(ca: &Ca, user: &User) -> Vec<RequestView> {
    let l: RequestList = json(ca.jit(user).args(["list", "--mine", "--json"]));
    l.requests
}

fn self_serve(ca: &Ca, user: &User, servers: &[&str]) -> std::process::Command {
    let mut cmd = ca.jit(user);
    cmd.env_remove("JIT_SERVER");
    for s in servers {
        cmd.args(["--server", s]);
    }
    cmd.args([
        "request",
        "self-serve",
        "--duration",
        "10m",
        "--reason",
        "failover",
        "--json",
    ]);
    cmd
}

#[test]
fn the_first_server_down_the_second_answers_every_call() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let gone = dead();
    // A change (POST) whose connection was refused was never sent: the next server gets it.
    let (code, stdout, stderr) = out(&mut self_serve(&ca, &alice, &[&gone, &ca.url]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(requests_on(&ca, &alice).len(), 1);
    // The same list from the environment (comma-separated) and from the config file.
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_SERVER", format!("{gone},{}", ca.url))
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");
    let cfg = alice.home.join(".config/jit");
    std::fs::create_dir_all(&cfg).unwrap();
    std::fs::write(
        cfg.join("config.toml"),
        format!("server = [\"{gone}\", \"{}\"]\n", ca.url),
    )
    .unwrap();
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env_remove("JIT_SERVER")
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");
    // `status` names the server that answered, not the first configured.
    let (code, stdout, stderr) = out(ca
        .jit(&alice)
        .env_remove("JIT_SERVER")
        .args(["status", "--json"]));
    assert_eq!(code, 0, "{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(v["server"], ca.url.as_str(), "{stdout}");
    // Every server down: each is named.
    let other = dead();
    let (code, _, err) = out(ca
        .jit(&alice)
        .env("JIT_SERVER", format!("{gone},{other}"))
        .arg("whoami"));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!("{gone}: cannot reach"))
            && err.contains(&format!("{other}: cannot reach")),
        "{err}"
    );
}

#[test]
fn unavailable_goes_to_the_next_server_signed_anew() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let a = Fake::start(Behaviour::Reply(503, UNAVAILABLE));
    let b = Fake::start(Behaviour::Reply(503, UNAVAILABLE));
    let pinned = fingerprint(&ca);
    let (code, stdout, stderr) =
        out(self_serve(&ca, &alice, &[&a.url, &b.url, &ca.url]).env("JIT_CA_FINGERPRINT", &pinned));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mine = requests_on(&ca, &alice);
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].state, RequestState::Approved);
    // Each replica got the change once, each attempt with its own nonce, the same audience.
    let (pa, pb) = (a.posts(), b.posts());
    assert_eq!((pa.len(), pb.len()), (1, 1), "{pa:?} {pb:?}");
    assert_eq!(pa[0].path, "/v1/requests");
    assert!(pa[0].nonce.is_some());
    assert_ne!(pa[0].nonce, pb[0].nonce, "every attempt is signed anew");
    assert_eq!(pa[0].audience.as_deref(), Some(pinned.as_str()));
    assert_eq!(pb[0].audience.as_deref(), Some(pinned.as_str()));

    // Every server unavailable: the refusal is kept (code, exit status), each server named.
    let (code, stdout, _) = out(ca
        .jit(&alice)
        .env("JIT_SERVER", format!("{},{}", a.url, b.url))
        .env("JIT_CA_FINGERPRINT", &pinned)
        .args(["whoami", "--json"]));
    assert_eq!(code, 1);
    let e: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e.error.code, "unavailable");
    assert!(
        e.error.message.contains(&a.url) && e.error.message.contains(&b.url),
        "{}",
        e.error.message
    );
}

#[test]
fn the_cas_own_refusal_is_not_retried_elsewhere() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let pinned = fingerprint(&ca);
    let refusing = Fake::start(Behaviour::Reply(403, FORBIDDEN));
    let (code, stdout, stderr) =
        out(self_serve(&ca, &alice, &[&refusing.url, &ca.url]).env("JIT_CA_FINGERPRINT", &pinned));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let e: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e.error.code, "forbidden");
    assert!(
        requests_on(&ca, &alice).is_empty(),
        "not sent to the next server"
    );
    // A read refused by the CA is final too.
    let (code, stdout, _) = out(ca
        .jit(&alice)
        .env("JIT_SERVER", format!("{},{}", refusing.url, ca.url))
        .env("JIT_CA_FINGERPRINT", &pinned)
        .args(["list", "--json"]));
    assert_eq!(code, 1);
    let e: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e.error.code, "forbidden");
}

#[test]
fn reads_fail_over_on_a_gateway_error_and_changes_do_not() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let pinned = fingerprint(&ca);
    let gateway = Fake::start(Behaviour::Reply(502, GATEWAY));
    // GETs (the CA key without a pinned fingerprint, then whoami and list) go on.
    let (code, stdout, stderr) = out(ca
        .jit(&alice)
        .env("JIT_SERVER", format!("{},{}", gateway.url, ca.url))
        .args(["list", "--json"]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        gateway.seen().iter().any(|s| s.path == "/v1/ca.pub"),
        "{:?}",
        gateway.seen()
    );
    // A POST that a gateway answered 502 may have reached a replica: not resent.
    let (code, stdout, stderr) =
        out(self_serve(&ca, &alice, &[&gateway.url, &ca.url]).env("JIT_CA_FINGERPRINT", &pinned));
    assert_eq!(code, 1, "{stdout}{stderr}");
    let e: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e.error.code, "outcome_unknown");
    assert!(requests_on(&ca, &alice).is_empty());
    assert_eq!(gateway.posts().len(), 1);
}

#[test]
fn a_change_whose_answer_was_lost_is_not_resent() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let pinned = fingerprint(&ca);
    let mute = Fake::start(Behaviour::HangUp);
    let mut cmd = self_serve(&ca, &alice, &[&mute.url, &ca.url]);
    cmd.env("JIT_CA_FINGERPRINT", &pinned);
    // Without --json: the message for people.
    let args: Vec<_> = cmd
        .get_args()
        .filter(|a| *a != "--json")
        .map(|a| a.to_owned())
        .collect();
    let mut plain = ca.jit(&alice);
    plain
        .env_remove("JIT_SERVER")
        .env("JIT_CA_FINGERPRINT", &pinned)
        .args(args);
    let (code, _, err) = out(&mut plain);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains(&format!(
            "the CA at {} did not answer; it may have stored the request: run `jit list`",
            mute.url
        )),
        "{err}"
    );
    assert_eq!(mute.posts().len(), 1, "sent once");
    assert!(
        requests_on(&ca, &alice).is_empty(),
        "never resent to the next server"
    );
    let (code, stdout, _) = out(&mut cmd);
    assert_eq!(code, 1);
    let e: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(e.error.code, "outcome_unknown");
    // A read whose answer was lost goes to the next server.
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_SERVER", format!("{},{}", mute.url, ca.url))
            .env("JIT_CA_FINGERPRINT", &pinned)
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");
}

/// A TCP proxy to `target` that can be cut: then it closes every open connection and
/// answers each new one with 503 `unavailable`.
struct Proxy {
    url: String,
    cut: Arc<AtomicBool>,
    open: Arc<Mutex<Vec<TcpStream>>>,
}

impl Proxy {
    fn start(target: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let target = target.trim_start_matches("http://").to_string();
        let cut = Arc::new(AtomicBool::new(false));
        let open = Arc::new(Mutex::new(Vec::new()));
        let (c, o) = (cut.clone(), open.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(client) = conn else { continue };
                if c.load(Ordering::SeqCst) {
                    let mut w = client.try_clone().unwrap();
                    std::thread::spawn(move || {
                        let mut r = BufReader::new(client);
                        if read_request(&mut r).is_some() {
                            let _ = write!(
                                w,
                                "HTTP/1.1 503 X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{UNAVAILABLE}",
                                UNAVAILABLE.len()
                            );
                        }
                        let _ = w.shutdown(Shutdown::Both);
                    });
                    continue;
                }
                let Ok(upstream) = TcpStream::connect(&target) else {
                    continue;
                };
                o.lock().unwrap().push(client.try_clone().unwrap());
                let (mut c1, mut u1) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                let (mut c2, mut u2) = (client, upstream);
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c1, &mut u1);
                    let _ = u1.shutdown(Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut u2, &mut c2);
                    let _ = c2.shutdown(Shutdown::Both);
                });
            }
        });
        Proxy { url, cut, open }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for s in self.open.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}

#[test]
fn waiting_for_a_decision_fails_over_and_installs_the_certificate() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let proxy = Proxy::start(&ca.url);
    let mut child = ca
        .jit(&alice)
        .env("JIT_SERVER", format!("{},{}", proxy.url, ca.url))
        .args([
            "request",
            "db-admin",
            "--duration",
            "5m",
            "--reason",
            "INC-9",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Pending (made through the proxy, the first server).
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        if let Some(r) = requests_on(&ca, &alice).first() {
            break r.id.clone();
        }
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(100));
    };
    // The first replica goes away while jit polls; the decision is made on the other.
    proxy.cut();
    std::thread::sleep(Duration::from_millis(2500));
    let _: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("jit request did not finish after the approval");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(alice.cert().exists(), "certificate installed: {err}");
    assert!(!err.contains("cannot reach"), "failover is silent: {err}");
}

#[test]
fn waiting_outlasts_a_short_database_outage() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    // One server, whose database goes away for a few seconds (503 `unavailable`).
    let proxy = Proxy::start(&ca.url);
    let mut child = ca
        .jit(&alice)
        .env("JIT_SERVER", &proxy.url)
        .args([
            "request",
            "db-admin",
            "--duration",
            "5m",
            "--reason",
            "INC-10",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let id = loop {
        if let Some(r) = requests_on(&ca, &alice).first() {
            break r.id.clone();
        }
        assert!(Instant::now() < deadline, "the request never arrived");
        std::thread::sleep(Duration::from_millis(100));
    };
    proxy.cut();
    // Two polls (2 s apart) answered 503 `unavailable`.
    std::thread::sleep(Duration::from_millis(4500));
    let _: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    proxy.restore();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("jit request did not finish after the outage");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(status.success(), "{err}");
    assert!(alice.cert().exists(), "certificate installed: {err}");
}

//! Issue 17: `jit-host sync` with several CA servers (the replicas of one CA), against a
//! real `jit-ca serve` beside stand-ins for the other replicas: a dead address, a server
//! answering 503 `unavailable`, a replica lagging behind (serving an older, validly signed
//! revocation list), and a proxy to the real CA under another URL (ETags keyed by path:
//! failover keeps the 304s). Root only (host.toml and the state directory are root's).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt as _;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use jit_test_kit::running::{Ca, JIT_CA, User, json, out, run_ok};

const JIT_HOST: &str = env!("CARGO_BIN_EXE_jit-host");

/// A host (state directory, host.toml naming `dev-1`) for the CA; `server` as written.
struct Host {
    _dir: tempfile::TempDir,
    conf: PathBuf,
    state: PathBuf,
}

impl Host {
    fn new(ca: &Ca, server: &str) -> Host {
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let state = dir.path().join("state");
        let sessions = dir.path().join("sessions");
        let text = String::from_utf8(
            run_ok(
                Command::new(JIT_CA)
                    .args(["host-config", "--dir"])
                    .arg(ca.data()),
            )
            .stdout,
        )
        .unwrap();
        let mut conf_text = String::new();
        for line in text.lines() {
            let key = line.split('=').next().unwrap_or("").trim();
            match key {
                "server" | "state_dir" | "hostnames" | "grant_writer" => {}
                _ => {
                    conf_text.push_str(line);
                    conf_text.push('\n');
                }
            }
        }
        conf_text.push_str(&format!(
            "server = {server}\nstate_dir = {:?}\nsession_dir = {:?}\nhostnames = [\"dev-1\"]\ngrant_writer = \"nobody\"\n",
            state.to_str().unwrap(),
            sessions.to_str().unwrap()
        ));
        let conf = dir.path().join("host.toml");
        std::fs::write(&conf, conf_text).unwrap();
        Host {
            _dir: dir,
            conf,
            state,
        }
    }

    /// `jit-host sync ARGS`: (exit code, stdout, stderr).
    fn sync(&self, args: &[&str]) -> (i32, String, String) {
        out(Command::new(JIT_HOST)
            .arg("--config")
            .arg(&self.conf)
            .arg("sync")
            .args(args))
    }

    fn grants(&self) -> usize {
        std::fs::read_dir(self.state.join("grants/alice"))
            .map(|d| d.count())
            .unwrap_or(0)
    }

    fn revocation_sequence(&self) -> u64 {
        sequence(&std::fs::read(self.state.join("revocations")).unwrap())
    }
}

/// The sequence of a signed revocation list (its JSON part, before the signature).
fn sequence(doc: &[u8]) -> u64 {
    let text = String::from_utf8_lossy(doc);
    let json_part = text.split("-----BEGIN SSH SIGNATURE-----").next().unwrap();
    let v: serde_json::Value = serde_json::from_str(json_part.trim()).unwrap();
    v["sequence"].as_u64().unwrap()
}

fn toml_list(urls: &[&str]) -> String {
    let quoted: Vec<String> = urls.iter().map(|u| format!("{u:?}")).collect();
    format!("[{}]", quoted.join(", "))
}

/// An address where nothing listens (bound, then closed).
fn dead() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    format!("http://{}", l.local_addr().unwrap())
}

/// A local server answering every GET with `reply(path)`: (status, body).
fn fake(reply: impl Fn(&str) -> (u16, Vec<u8>) + Send + Sync + 'static) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let reply = std::sync::Arc::new(reply);
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(conn) = conn else { continue };
            let reply = reply.clone();
            std::thread::spawn(move || {
                let mut w = conn.try_clone().unwrap();
                let mut r = BufReader::new(conn);
                let mut line = String::new();
                if r.read_line(&mut line).unwrap_or(0) == 0 {
                    return;
                }
                let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
                loop {
                    let mut h = String::new();
                    if r.read_line(&mut h).unwrap_or(0) == 0 || h.trim().is_empty() {
                        break;
                    }
                }
                let (status, body) = reply(&path);
                let _ = write!(
                    w,
                    "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = w.write_all(&body);
                let _ = w.shutdown(Shutdown::Both);
            });
        }
    });
    url
}

/// A TCP proxy to `target` (the same CA under another URL).
fn proxy(target: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let target = target.trim_start_matches("http://").to_string();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(client) = conn else { continue };
            let Ok(upstream) = TcpStream::connect(&target) else {
                continue;
            };
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
    url
}

/// alice asks for the auto-approved role on dev-*: a grant for the host `dev-1`.
fn self_serve(ca: &Ca, alice: &User) -> String {
    let (code, stdout, stderr) = out(ca.jit(alice).args([
        "request",
        "self-serve",
        "--duration",
        "30m",
        "--reason",
        "sync",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(code, 0, "{stdout}{stderr}");
    let v: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    v["id"].as_str().unwrap().to_string()
}

fn revocations(ca: &Ca) -> Vec<u8> {
    let mut body = Vec::new();
    std::io::Read::read_to_end(
        &mut ureq::get(&format!("{}/v1/revocations", ca.url))
            .call()
            .unwrap()
            .into_reader(),
        &mut body,
    )
    .unwrap();
    body
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn sync_moves_past_a_dead_server_and_an_unavailable_one() {
    assert!(
        is_root(),
        "run as root (host.toml and the state directory are root's)"
    );
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    self_serve(&ca, &alice);
    let gone = dead();
    let unavailable = fake(|_| {
        (
            503,
            br#"{"error":{"code":"unavailable","message":"the CA's database is unreachable; retry"}}"#
                .to_vec(),
        )
    });
    let host = Host::new(&ca, &toml_list(&[&gone, &unavailable, &ca.url]));
    let (code, stdout, stderr) = host.sync(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("jit-host: {gone}: "))
            && stderr.contains(&format!("jit-host: {unavailable}: "))
            && stderr.contains("trying the next server"),
        "each server left is named: {stderr}"
    );
    assert!(stdout.contains("revocation list #"), "{stdout}");
    assert_eq!(host.grants(), 1, "{stdout}{stderr}");
    // --server, repeated (or a comma list), overrides host.toml the same way.
    let (code, stdout, stderr) = host.sync(&["--server", &gone, "--server", &ca.url]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, stdout, stderr) = host.sync(&["--server", &format!("{gone},{}", ca.url)]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let (code, _, stderr) = host.sync(&["--server", &ca.url, "--server", &ca.url]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("listed twice"), "{stderr}");
}

#[test]
fn sync_fails_only_when_every_server_fails_naming_each() {
    assert!(is_root(), "run as root");
    let ca = Ca::start();
    let (a, b) = (dead(), dead());
    let host = Host::new(&ca, &toml_list(&[&a, &b]));
    let (code, stdout, stderr) = host.sync(&[]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let tail = stderr
        .split("sync incomplete")
        .nth(1)
        .unwrap_or_else(|| panic!("{stderr}"));
    assert!(
        tail.contains(&format!("{a}: GET {a}/v1/revocations"))
            && tail.contains(&format!("GET {b}/v1/revocations")),
        "{stderr}"
    );
}

#[test]
fn a_lagging_replica_is_passed_over_and_a_gateway_error_too() {
    assert!(is_root(), "run as root");
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let id = self_serve(&ca, &alice);
    let old = revocations(&ca);
    let old_seq = sequence(&old);
    // A revocation: the CA publishes a newer list within a couple of seconds.
    let _: serde_json::Value = json(ca.jit(&alice).args(["drop", &id, "--json"]));
    let deadline = Instant::now() + Duration::from_secs(20);
    while sequence(&revocations(&ca)) <= old_seq {
        assert!(
            Instant::now() < deadline,
            "the CA never published the revocation"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let host = Host::new(&ca, &format!("{:?}", ca.url));
    let (code, stdout, stderr) = host.sync(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let installed = host.revocation_sequence();
    assert!(installed > old_seq);

    // A replica that has not caught up serves the older (validly signed) list.
    let lagging = fake(move |path| match path {
        "/v1/revocations" => (200, old.clone()),
        _ => (404, b"{}".to_vec()),
    });
    let (code, stdout, stderr) = host.sync(&["--server", &lagging, "--server", &ca.url]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!(
            "jit-host: {lagging}: refusing revocation list #{old_seq}: #{installed} was already installed"
        )),
        "{stderr}"
    );
    assert_eq!(host.revocation_sequence(), installed, "never rolled back");
    // Alone, the lagging replica fails the sync as before, and changes nothing.
    let (code, _, stderr) = host.sync(&["--server", &lagging]);
    assert_eq!(code, 1);
    assert!(stderr.contains("refusing revocation list"), "{stderr}");
    assert_eq!(host.revocation_sequence(), installed);

    // A load balancer's 502 for a read: the next server.
    let gateway = fake(|_| (502, b"<html>Bad Gateway</html>".to_vec()));
    let (code, stdout, stderr) = host.sync(&["--server", &gateway, "--server", &ca.url]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("jit-host: {gateway}: GET")),
        "{stderr}"
    );
}

#[test]
fn etags_are_kept_by_path_so_failover_keeps_the_304s() {
    assert!(is_root(), "run as root");
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    self_serve(&ca, &alice);
    let host = Host::new(&ca, &format!("{:?}", ca.url));
    let (code, stdout, stderr) = host.sync(&[]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("KRL updated"), "{stdout}");
    // The same CA under another URL (another replica): nothing fetched again.
    let other = proxy(&ca.url);
    let (code, stdout, stderr) = host.sync(&["--server", &dead(), "--server", &other]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("sync: up to date"), "{stdout}");
    let state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(host.state.join("sync-state.json")).unwrap())
            .unwrap();
    let keys: Vec<&String> = state["etags"].as_object().unwrap().keys().collect();
    assert!(
        keys.iter().all(|k| k.starts_with("/v1/")),
        "keyed by path: {keys:?}"
    );
}

#[test]
fn etags_written_by_url_are_dropped_once() {
    assert!(is_root(), "run as root");
    let ca = Ca::start();
    let host = Host::new(&ca, &format!("{:?}", ca.url));
    let (code, _, stderr) = host.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    // An older jit-host's state: ETags keyed by full URL.
    let path = host.state.join("sync-state.json");
    let mut state: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let etags = state["etags"].as_object().unwrap().clone();
    let mut by_url = serde_json::Map::new();
    for (k, v) in etags {
        by_url.insert(format!("{}{k}", ca.url), v);
    }
    state["etags"] = serde_json::Value::Object(by_url);
    std::fs::write(&path, serde_json::to_vec(&state).unwrap()).unwrap();
    let (code, stdout, stderr) = host.sync(&[]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("KRL updated"), "one full fetch: {stdout}");
    let (code, stdout, _) = host.sync(&[]);
    assert_eq!(code, 0);
    assert!(stdout.contains("sync: up to date"), "{stdout}");
}

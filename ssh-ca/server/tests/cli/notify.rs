//! Notifications through the real binary: an event committed while its receiver is down
//! survives `kill -9` of `jit-ca serve` and is delivered by the next one, with its original
//! id; `jit-ca notify status` and `notify retry` on the data directory.

use std::io::{BufRead as _, BufReader};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use jit::api::{Api, http_agent};
use jit::identity::Signer;
use jit_api::wire::{CreateRequest, RequestState};
use jit_ca::notify::event::{Event, event_id};
use jit_test_kit::harness::*;

use super::receiver::{SECRET, Say, openssl_signature, receiver_on};

/// Long enough for anything on a loaded machine (the first retry is due ~10 s after the
/// failed attempt); only a broken build waits this long.
const WAIT: Duration = Duration::from_secs(90);

struct Serve {
    child: std::process::Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve(dir: &Path) -> Serve {
    let mut child = Command::new(JIT_CA)
        .args([
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .env_remove("JIT_CA_DIR")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("jit-ca listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    std::thread::spawn(move || for _ in stdout.lines() {});
    Serve { child, url }
}

fn jit_ca(args: &[&str], dir: &Path) -> Output {
    Command::new(JIT_CA)
        .args(args)
        .arg("--dir")
        .arg(dir)
        .env_remove("JIT_CA_DIR")
        .output()
        .unwrap()
}

#[test]
fn an_event_committed_before_kill_9_is_delivered_after_restart_with_its_id() {
    let (tmp, keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let secret = dir.join("keys/ops.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    // The receiver's port, with nothing listening on it yet: the receiver is down.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{text}\n[[notify]]\nname = \"ops\"\nurl = \"http://127.0.0.1:{port}/jit\"\nformat = \"standard\"\nsecret_file = \"keys/ops.whsec\"\n"
        ),
    )
    .unwrap();

    let mut serve = start_serve(&dir);
    let mut alice = Api::new(
        &serve.url,
        http_agent(None).unwrap(),
        Signer::File {
            path: tmp.path().join("alice"),
            key: Box::new(keys["alice"].clone()),
        },
    );
    let created = alice
        .create(&CreateRequest {
            role: "db-admin".into(),
            duration_secs: 1800,
            reason: "INC-42 disk full".into(),
            hosts: Vec::new(),
            public_key: keys["alice"].public_key().to_openssh().unwrap(),
            start: None,
        })
        .unwrap();
    assert_eq!(created.state, RequestState::Pending);
    // Answered, so committed. The worker tries and fails (nothing listens): `notify status`
    // (on the data directory, while serve runs) shows the delivery pending with its error.
    let mut report = serde_json::Value::Null;
    for _ in 0..600 {
        let status = jit_ca(&["notify", "status", "--json"], &dir);
        assert!(status.status.success(), "{status:?}");
        report = serde_json::from_slice(&status.stdout).unwrap();
        if !report["sinks"][0]["last_error"].is_null() {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(report["sinks"][0]["name"], "ops");
    assert_eq!(report["sinks"][0]["pending"], 1, "{report}");
    let error = report["sinks"][0]["last_error"]["error"].as_str().unwrap();
    assert!(error.starts_with("connect"), "{report}");
    // SIGKILL: no shutdown path.
    serve.child.kill().unwrap();
    serve.child.wait().unwrap();
    drop(serve);

    // The receiver comes up; a new serve delivers the event, with the id it was given.
    let calls = receiver_on(
        TcpListener::bind(("127.0.0.1", port)).unwrap(),
        Say::Answer(200, String::new()),
    );
    let _serve = start_serve(&dir);
    let got = calls.recv_timeout(WAIT).unwrap();
    let e = Event::from_payload(&got.body).unwrap();
    assert_eq!(e.kind.to_string(), "request.created");
    assert_eq!(e.request_id(), Some(created.id.as_str()));
    let hash = jit_ca::admin::audit_export(&dir)
        .unwrap()
        .into_iter()
        .find(|r| r["event"] == "request" && r["details"]["request_id"] == created.id.as_str())
        .unwrap()["hash"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(e.id, event_id(&hash));
    assert_eq!(got.headers["webhook-id"], e.id);
    assert_eq!(
        got.headers["webhook-signature"],
        openssl_signature(SECRET, &got)
    );
    // Delivered once; status says so (human and JSON).
    let mut delivered = false;
    for _ in 0..100 {
        let out = jit_ca(&["notify", "status", "--json"], &dir);
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        if report["sinks"][0]["pending"] == 0 {
            delivered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(delivered, "the delivery was not recorded");
    let out = jit_ca(&["notify", "status"], &dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("sink ops (standard): nothing pending; 0 dead"),
        "{text}"
    );
    assert!(text.contains("no dead letters"), "{text}");
    // A retry of what is not dead is refused, on one line, with the way out.
    let out = jit_ca(&["notify", "retry", &e.id], &dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no dead delivery"), "{err}");
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    let out = jit_ca(&["notify", "retry", "evt_nope", "--json"], &dir);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("\"code\""));
}

//! The authorizing webhook of auto-approval rules, against a real HTTP receiver on
//! 127.0.0.1 that says yes, no, nothing in time, garbage, 500, or redirects. Each test checks
//! the request's state, the audit record, and that the receiver got a valid Standard
//! Webhooks signature (verified here with the HMAC computed by the test, not by the CA's
//! signer).

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt as _;
use std::sync::{Arc, mpsc};
use std::time::Duration;

use jit_ca::clock::FixedClock;
use jit_ca::service::Ca;
use jit_test_kit::harness::*;
use serde_json::{Value, json};

use super::receiver::*;

fn policy(url: &str) -> String {
    format!(
        r#"
[[webhook]]
name = "oncall"
url = "{url}"
secret_file = "webhooks/oncall.whsec"
timeout = "1s"

[roles.quick]
hosts = ["web-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
require_reason = false
[[roles.quick.auto_approve_rules]]
name = "pager"
groups = ["oncall"]
max_duration = "15m"
webhook = "oncall"
"#
    )
}

/// A harness whose policy has the webhook at `url`, its secret file written with `mode`.
fn harness_at(url: &str, mode: u32) -> Result<Harness, String> {
    let (dir, keys) = setup_dir(&policy(url));
    let data = data_dir(&dir);
    std::fs::create_dir(data.join("webhooks")).unwrap();
    let secret = data.join("webhooks/oncall.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(mode)).unwrap();
    let clock = Arc::new(FixedClock::new(T0));
    let ca = Arc::new(Ca::open(&data, clock.clone()).map_err(|e| e.to_string())?);
    let app = jit_ca::api::router(ca.clone());
    Ok(Harness {
        dir,
        clock,
        ca,
        app,
        keys,
    })
}

fn harness(url: &str) -> Harness {
    harness_at(url, 0o600).unwrap()
}

/// A harness with policy `text` (its webhooks' secret is the tests' one, mode 0600) and
/// the `key = value` lines of config.toml replaced by `config`'s.
fn harness_with(text: &str, config: &[(&str, &str)]) -> Harness {
    let (dir, keys) = setup_dir(text);
    let data = data_dir(&dir);
    std::fs::create_dir(data.join("webhooks")).unwrap();
    let secret = data.join("webhooks/oncall.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let path = data.join("config.toml");
    let mut lines: Vec<String> = std::fs::read_to_string(&path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    for (key, value) in config {
        let line = lines
            .iter_mut()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap();
        *line = format!("{key} = {value}");
    }
    std::fs::write(&path, lines.join("\n")).unwrap();
    let clock = Arc::new(FixedClock::new(T0));
    let ca = Arc::new(Ca::open(&data, clock.clone()).unwrap());
    let app = jit_ca::api::router(ca.clone());
    Harness {
        dir,
        clock,
        ca,
        app,
        keys,
    }
}

/// The audit records from `event` of request `id`, in order, as (event, actor, details).
fn records(h: &Harness, id: &str) -> Vec<(String, String, Value)> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["details"]["request_id"] == id)
        .map(|r| {
            (
                r["event"].as_str().unwrap().to_string(),
                r["actor"].as_str().unwrap().to_string(),
                r["details"].clone(),
            )
        })
        .collect()
}

/// alice (on call) asks for the quick role for 10 minutes; returns the request's view.
async fn ask(h: &Harness) -> Value {
    let (s, v) = h.request("alice", "quick", 600, "INC-7 web down").await;
    assert_eq!(s, 201, "{v}");
    v
}

/// The one webhook record of request `id`: its event and details (actor checked).
fn webhook_record(h: &Harness, id: &str) -> (String, Value) {
    let recs = records(h, id);
    let hooks: Vec<_> = recs
        .iter()
        .filter(|(e, _, _)| e.starts_with("webhook_"))
        .collect();
    assert_eq!(hooks.len(), 1, "{recs:?}");
    let (event, actor, details) = hooks[0].clone();
    assert_eq!(actor, "webhook:oncall");
    assert_eq!(details["webhook"], "oncall");
    assert_eq!(details["rule"], "pager");
    assert_eq!(details["webhook_id"], format!("msg_{id}"));
    assert!(details["latency_ms"].is_u64(), "{details}");
    (event, details)
}

/// A request left to humans by the webhook: pending, and a human approval still works.
async fn assert_left_to_humans(h: &Harness, v: &Value) {
    let id = v["id"].as_str().unwrap();
    assert_eq!(v["state"], "pending", "{v}");
    assert!(v.get("issued").is_none());
    let events: Vec<String> = records(h, id).into_iter().map(|r| r.0).collect();
    assert!(!events.contains(&"approval".to_string()), "{events:?}");
    let (s, v) = h.approve("bob", id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
}

#[tokio::test]
async fn an_explicit_yes_approves_at_once_and_is_audited() {
    let (url, calls) = receiver(Say::Answer(
        200,
        r#"{"approve": true, "reason": "alice is on call until 18:00"}"#.into(),
    ));
    let h = harness(&url);
    let v = ask(&h).await;
    let id = v["id"].as_str().unwrap();
    assert_eq!(v["state"], "approved", "{v}");
    assert!(v["issued"]["certificate"].is_string());
    assert_eq!(v["approvals"][0]["user"], "auto:pager");

    let got = calls.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_authorize_call(&got);
    assert_eq!(got.headers["webhook-id"], format!("msg_{id}"));
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    let key = h
        .key("alice")
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    assert_eq!(
        body,
        json!({"type": "authorize.request", "timestamp": "2026-11-23T12:00:00Z",
               "data": {"request_id": id, "user": "alice", "groups": ["dev", "oncall"],
                        "role": "quick", "hosts": ["web-*"], "principals": ["alice"],
                        "sudo": false, "session_bound": false, "duration_secs": 600,
                        "reason": "INC-7 web down",
                        "key": key, "rule": "pager", "created_at": T0,
                        "ca": h.ca.audience()}})
    );

    let recs = records(&h, id);
    let events: Vec<(&str, &str)> = recs
        .iter()
        .map(|(e, a, _)| (e.as_str(), a.as_str()))
        .collect();
    assert_eq!(
        events,
        [
            ("request", "alice"),
            ("webhook_answer", "webhook:oncall"),
            ("approval", "auto:pager"),
            ("issuance", "alice"),
        ]
    );
    let (_, d) = webhook_record(&h, id);
    assert_eq!(d["answer"], "approve");
    assert_eq!(d["reason"], "alice is on call until 18:00");
    assert_eq!(recs[2].2["webhook"], "oncall");
    assert_eq!(recs[2].2["webhook_id"], format!("msg_{id}"));
    assert_eq!(
        recs[3].2["approval"]["basis"],
        json!({"auto_rule": "auto:pager", "webhook": "oncall", "webhook_id": format!("msg_{id}"),
               "conditions": {"subjects": ["group:oncall"], "max_duration_secs": 900,
                              "webhook": "oncall"}})
    );
    assert!(jit_ca::admin::audit_verify(&h.path()).unwrap().ok);
}

#[tokio::test]
async fn a_no_leaves_the_request_to_human_approvers() {
    let (url, calls) = receiver(Say::Answer(
        200,
        r#"{"approve": false, "reason": "not on call"}"#.into(),
    ));
    let h = harness(&url);
    let v = ask(&h).await;
    assert_authorize_call(&calls.recv_timeout(Duration::from_secs(5)).unwrap());
    let (event, d) = webhook_record(&h, v["id"].as_str().unwrap());
    assert_eq!(event, "webhook_answer");
    assert_eq!(d["answer"], "deny");
    assert_eq!(d["reason"], "not on call");
    assert_left_to_humans(&h, &v).await;
}

/// Each way of not answering "yes" in time: pending, audited as `webhook_failure` with
/// its kind and status.
async fn assert_failure(say: Say, kind: &str, status: Option<u16>) {
    let (url, calls) = receiver(say);
    let h = harness(&url);
    let v = ask(&h).await;
    assert_authorize_call(&calls.recv_timeout(Duration::from_secs(5)).unwrap());
    let (event, d) = webhook_record(&h, v["id"].as_str().unwrap());
    assert_eq!(event, "webhook_failure", "{d}");
    assert_eq!(d["answer"], "error");
    assert_eq!(d["kind"], kind, "{d}");
    assert_eq!(d["status"], json!(status), "{d}");
    assert!(!d["detail"].as_str().unwrap().is_empty());
    assert_left_to_humans(&h, &v).await;
}

#[tokio::test]
async fn no_answer_within_the_timeout_fails_closed() {
    assert_failure(Say::Slow(Duration::from_secs(4)), "timeout", None).await;
}

#[tokio::test]
async fn a_server_error_fails_closed() {
    assert_failure(
        Say::Answer(500, r#"{"approve": true}"#.into()),
        "status",
        Some(500),
    )
    .await;
    // Only 200 decides, even with a yes in the body.
    assert_failure(
        Say::Answer(201, r#"{"approve": true}"#.into()),
        "status",
        Some(201),
    )
    .await;
}

#[tokio::test]
async fn garbage_and_unexpected_answers_fail_closed() {
    assert_failure(Say::Answer(200, "yes please".into()), "bad_json", Some(200)).await;
    for body in [
        r#"{"approve": "true"}"#,
        r#"{"approve": 1}"#,
        r#"{"approved": true}"#,
        r#"[true]"#,
        r#"true"#,
        r#"{"approve": true, "reason": 5}"#,
        // A key given twice: a JSON value keeps the last, another parser the first.
        r#"{"approve": false, "approve": true}"#,
        r#"{"approve": true, "reason": "a", "reason": "b"}"#,
    ] {
        assert_failure(Say::Answer(200, body.into()), "bad_answer", Some(200)).await;
    }
    let huge = format!(r#"{{"approve": true, "reason": "{}"}}"#, "x".repeat(10_000));
    assert_failure(Say::Answer(200, huge), "too_large", Some(200)).await;
}

#[tokio::test]
async fn a_redirect_is_not_followed() {
    let (yes, yes_calls) = receiver(Say::Answer(200, r#"{"approve": true}"#.into()));
    assert_failure(Say::Redirect(yes), "redirect", Some(302)).await;
    assert!(yes_calls.try_recv().is_err(), "the redirect was followed");
}

#[tokio::test]
async fn a_receiver_that_is_not_there_fails_closed() {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let h = harness(&format!("http://127.0.0.1:{port}/authorize"));
    let v = ask(&h).await;
    let (event, d) = webhook_record(&h, v["id"].as_str().unwrap());
    assert_eq!(event, "webhook_failure");
    assert_eq!(d["kind"], "connect", "{d}");
    // The URL is not copied into the record (it may carry a token).
    assert!(!d["detail"].as_str().unwrap().contains("127.0.0.1"), "{d}");
    assert_left_to_humans(&h, &v).await;
}

#[tokio::test]
async fn the_webhook_is_asked_only_when_its_rule_applies() {
    let (url, calls) = receiver(Say::Answer(200, r#"{"approve": true}"#.into()));
    let h = harness(&url);
    // Longer than the rule's 15 minutes: humans, and the webhook is not asked.
    let (s, v) = h.request("alice", "quick", 3600, "long").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "pending");
    // dave is not on call: the rule does not apply to him.
    let (s, v2) = h.request("dave", "quick", 600, "x").await;
    assert_eq!(s, 201, "{v2}");
    assert_eq!(v2["state"], "pending");
    assert!(calls.recv_timeout(Duration::from_millis(300)).is_err());
    for r in [&v, &v2] {
        let events: Vec<String> = records(&h, r["id"].as_str().unwrap())
            .into_iter()
            .map(|r| r.0)
            .collect();
        assert_eq!(events, ["request"]);
    }
}

#[test]
fn a_readable_secret_file_stops_the_ca_from_starting() {
    let e = harness_at("http://127.0.0.1:9/authorize", 0o640)
        .err()
        .expect("refused");
    assert!(e.contains("webhook.oncall.secret_file: "), "{e}");
    assert!(
        e.contains(
            "webhook secret has mode 0640; it must not be readable by group or others (chmod 600 "
        ),
        "{e}"
    );
}

#[tokio::test]
async fn a_request_refused_anyway_never_reaches_the_webhook() {
    let (url, calls) = receiver(Say::Answer(200, r#"{"approve": false}"#.into()));
    let h = harness(&url);
    let first = ask(&h).await;
    assert_eq!(first["state"], "pending");
    let first_id = first["id"].as_str().unwrap();
    // The same request again: refused as a duplicate before the webhook is asked (a call
    // is up to 10 s of a blocking thread, an audit record, a page at the receiver).
    let (s, v) = h.request("alice", "quick", 600, "INC-7 web down").await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "duplicate_pending_request");
    assert_eq!(
        v["error"]["message"],
        format!(
            "you already have request {first_id} pending for role \"quick\"; wait for it (jit show \
             {first_id}), or withdraw it first (jit cancel {first_id})"
        )
    );
    assert_eq!(
        calls.recv_timeout(Duration::from_secs(5)).unwrap().headers["webhook-id"],
        format!("msg_{first_id}")
    );
    assert!(
        calls.recv_timeout(Duration::from_millis(500)).is_err(),
        "the webhook was asked about a request refused anyway"
    );
    let all = jit_ca::admin::audit_export(&h.path()).unwrap();
    let events: Vec<&str> = all.iter().map(|r| r["event"].as_str().unwrap()).collect();
    assert_eq!(
        events.iter().filter(|e| e.starts_with("webhook_")).count(),
        1,
        "{events:?}"
    );
    assert_eq!(events.last(), Some(&"request_refused"));
}

#[tokio::test]
async fn a_request_over_the_users_bounds_never_reaches_the_webhook() {
    let (url, calls) = receiver(Say::Answer(200, r#"{"approve": true}"#.into()));
    let h = harness_with(&policy(&url), &[("max_active_grants_per_user", "1")]);
    let v = ask(&h).await;
    assert_eq!(v["state"], "approved", "{v}");
    calls.recv_timeout(Duration::from_secs(5)).unwrap();
    // alice holds her one active grant: a second request is refused before the webhook
    // is asked (a yes could not be used).
    let (s, v) = h.request("alice", "quick", 300, "again").await;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "too_many_active_grants");
    assert!(
        calls.recv_timeout(Duration::from_millis(500)).is_err(),
        "the webhook was asked about a request refused anyway"
    );
}

#[test]
fn a_secret_file_under_a_symlinked_directory_stops_the_ca_from_starting() {
    let (dir, _) = setup_dir(&policy("http://127.0.0.1:9/authorize"));
    let data = data_dir(&dir);
    // A valid secret, but webhooks/ is a symbolic link to a directory elsewhere.
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    let secret = elsewhere.join("oncall.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, data.join("webhooks")).unwrap();
    let Err(e) = Ca::open(&data, Arc::new(FixedClock::new(T0))) else {
        panic!("the CA started with a secret under a symbolic link");
    };
    let e = e.to_string();
    assert!(
        e.contains(&format!(
            "webhook.oncall.secret_file: {}: {} is a symbolic link; refusing to follow it",
            data.join("webhooks/oncall.whsec").display(),
            data.join("webhooks").display()
        )),
        "{e}"
    );
}

#[tokio::test]
async fn an_answer_about_a_request_then_refused_is_still_audited() {
    // The checks run again when the request is written: a duplicate that appeared while
    // the webhook was being asked is refused then, and the answer is recorded anyway.
    let (url, calls, go) = gated_receiver(r#"{"approve": false}"#);
    let h = harness(&url);
    let meanwhile = async {
        let calls = tokio::task::spawn_blocking(move || {
            calls.recv_timeout(Duration::from_secs(5)).unwrap();
            calls
        })
        .await
        .unwrap();
        // alice's other request for the role (longer than the rule allows: no webhook),
        // stored pending while the webhook is still thinking about the first.
        let (s, other) = h.request("alice", "quick", 3600, "other").await;
        assert_eq!(s, 201, "{other}");
        assert_eq!(other["state"], "pending");
        go.send(()).unwrap();
        (calls, other)
    };
    let (refused, (calls, other)) = tokio::join!(
        async {
            let (s, v) = h.request("alice", "quick", 600, "again").await;
            (s, v)
        },
        meanwhile
    );
    let (s, v) = refused;
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "duplicate_pending_request");
    assert!(calls.try_recv().is_err());
    let all = jit_ca::admin::audit_export(&h.path()).unwrap();
    let events: Vec<&str> = all.iter().map(|r| r["event"].as_str().unwrap()).collect();
    let tail = &events[events.len() - 2..];
    assert_eq!(tail, ["webhook_answer", "request_refused"]);
    let rec = &all[all.len() - 2];
    assert_eq!(rec["actor"], "webhook:oncall");
    assert_eq!(rec["details"]["answer"], "deny");
    assert_eq!(rec["details"]["request_stored"], false);
    assert_ne!(rec["details"]["request_id"], other["id"]);
}

/// The policy of [`policy`] with `[[webhook]]` "other" at `other_url` (the same secret).
fn policy_with_other(url: &str, other_url: &str) -> String {
    format!(
        "[[webhook]]\nname = \"other\"\nurl = \"{other_url}\"\nsecret_file = \"webhooks/oncall.whsec\"\n{}",
        policy(url)
    )
}

#[tokio::test]
async fn a_yes_stands_only_if_a_reload_during_the_call_left_role_and_webhook_as_asked() {
    let (other_url, other_calls) = receiver(Say::Answer(200, r#"{"approve": true}"#.into()));
    let role_gone =
        "the policy was reloaded during the call and role quick changed or is gone; humans decide";
    let hook_gone = "the policy was reloaded during the call and webhook oncall changed or is gone; humans decide";
    type Change = fn(&str, &str) -> String;
    let cases: [(&str, Change, Option<&str>); 5] = [
        (
            "the rule removed",
            |url, other| {
                policy_with_other(url, other).replace(
                    "[[roles.quick.auto_approve_rules]]\nname = \"pager\"\ngroups = [\"oncall\"]\nmax_duration = \"15m\"\nwebhook = \"oncall\"\n",
                    "",
                )
            },
            Some(role_gone),
        ),
        (
            "the rule now naming another webhook",
            |url, other| {
                policy_with_other(url, other).replace("webhook = \"oncall\"", "webhook = \"other\"")
            },
            Some(role_gone),
        ),
        (
            "the rule narrowed",
            |url, other| {
                policy_with_other(url, other)
                    .replace("max_duration = \"15m\"", "max_duration = \"5m\"")
            },
            Some(role_gone),
        ),
        (
            "the webhook moved",
            |url, other| {
                policy_with_other(url, other)
                    .replace(&format!("url = \"{url}\""), &format!("url = \"{other}\""))
            },
            Some(hook_gone),
        ),
        (
            "another role added (the rule and webhook unchanged)",
            |url, other| {
                format!(
                    "{}\n[roles.other]\nhosts = [\"x\"]\nmax_duration = \"1h\"\nrequesters = [\"bob\"]\napprovers = [\"carol\"]\n",
                    policy_with_other(url, other)
                )
            },
            None,
        ),
    ];
    for (what, change, overruled) in cases {
        let (url, calls, go) = gated_receiver(r#"{"approve": true}"#);
        // Start with "other" defined too, so that only the change below differs.
        let h = harness_with(&policy_with_other(&url, &other_url), &[]);
        // While the webhook is being asked, the operator changes the policy and reloads.
        let (ca, file, text) = (
            h.ca.clone(),
            h.path().join("policy.toml"),
            change(&url, &other_url),
        );
        let reloader = std::thread::spawn(move || {
            calls.recv_timeout(Duration::from_secs(5)).unwrap();
            std::fs::write(&file, text).unwrap();
            ca.reload_policy().unwrap();
            go.send(()).unwrap();
        });
        let v = ask(&h).await;
        reloader.join().unwrap();
        let id = v["id"].as_str().unwrap();
        let (event, d) = webhook_record(&h, id);
        assert_eq!(event, "webhook_answer", "{what}");
        assert_eq!(d["answer"], "approve", "{what}");
        match overruled {
            None => {
                assert_eq!(v["state"], "approved", "{what}: {v}");
                assert!(d.get("overruled").is_none(), "{what}: {d}");
            }
            Some(why) => {
                assert_eq!(d["overruled"], why, "{what}");
                let request = &records(&h, id)[0];
                assert_eq!(
                    request.2["auto_rules_not_applied"],
                    json!([{"rule": "pager", "why": format!("its webhook oncall answered yes, but {why}")}]),
                    "{what}"
                );
                assert_left_to_humans(&h, &v).await;
            }
        }
    }
    assert!(
        other_calls.try_recv().is_err(),
        "only the webhook the rule named when admitted is asked"
    );
}

#[tokio::test]
async fn a_token_in_the_url_never_reaches_the_audit_trail() {
    // Nothing listens on port 1. ureq writes the URL normalised (`http://127.0.0.1:1/?...`,
    // lower-case host), so cutting the URL as written out of its error text missed it.
    for url in [
        "http://127.0.0.1:1?token=SECRET",
        "http://LOCALHOST:1/hook?token=SECRET",
        "http://127.0.0.1:1/SECRET/authorize",
    ] {
        let h = harness(url);
        let v = ask(&h).await;
        let (event, d) = webhook_record(&h, v["id"].as_str().unwrap());
        assert_eq!(event, "webhook_failure", "{url}");
        assert_eq!(d["kind"], "connect", "{url}: {d}");
        assert_eq!(
            d["detail"], "Connection Failed: Connection refused (os error 111)",
            "{url}"
        );
        let trail =
            serde_json::to_string(&jit_ca::admin::audit_export(&h.path()).unwrap()).unwrap();
        assert!(!trail.contains("SECRET"), "{url}: {trail}");
        assert_left_to_humans(&h, &v).await;
    }
}

fn policy_check(dir: &std::path::Path) -> (bool, String) {
    let o = std::process::Command::new(JIT_CA)
        .args(["policy", "check", "--dir"])
        .arg(dir)
        .output()
        .unwrap();
    (
        o.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        ),
    )
}

#[test]
fn policy_check_reads_the_webhooks_secret_files() {
    let (tmp, _) = setup_dir(&policy("https://oncall.example.com/jit"));
    let dir = data_dir(&tmp);
    let secret = dir.join("webhooks/oncall.whsec");
    let p = dir.join("policy.toml");
    let (ok, out) = policy_check(&dir);
    assert!(!ok, "{out}");
    assert_eq!(
        out,
        format!(
            "error: {}: webhook.oncall.secret_file: {} does not exist\n{}: 1 error(s); the service would refuse this configuration\n",
            p.display(),
            secret.display(),
            dir.display()
        )
    );
    std::fs::create_dir(dir.join("webhooks")).unwrap();
    std::fs::write(&secret, "whsec_c2hvcnQ=\n").unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (ok, out) = policy_check(&dir);
    assert!(!ok, "{out}");
    assert!(
        out.starts_with(&format!(
            "error: {}: webhook.oncall.secret_file: {}: a webhook secret must be 24 to 64 bytes (this one is 5); generate one with: ",
            p.display(),
            secret.display()
        )),
        "{out}"
    );
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let (ok, out) = policy_check(&dir);
    assert!(ok, "{out}");
    assert_eq!(out, format!("{}: OK (1 roles: quick)\n", dir.display()));
}

#[tokio::test]
async fn a_reload_reads_a_rotated_secret_and_keeps_the_old_policy_on_a_bad_one() {
    let (url, calls) = receiver(Say::Answer(200, r#"{"approve": false}"#.into()));
    let h = harness(&url);
    let secret = h.path().join("webhooks/oncall.whsec");
    // A secret file that became readable by others: the reload is refused, the old policy
    // (and secret) stay in force.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = h.ca.reload_policy().unwrap_err().to_string();
    assert!(e.contains("webhook secret has mode 0644"), "{e}");
    let v = ask(&h).await;
    assert_authorize_call(&calls.recv_timeout(Duration::from_secs(5)).unwrap());
    let (s, _) = h
        .call(
            "alice",
            "POST",
            &format!("/v1/requests/{}/cancel", v["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(s, 200);
    // Rotated: the next call is signed with the new secret.
    let rotated = "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    std::fs::write(&secret, format!("{rotated}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    h.ca.reload_policy().unwrap();
    ask(&h).await;
    let got = calls.recv_timeout(Duration::from_secs(5)).unwrap();
    let want = jit_ca::webhook::Secret::parse(rotated).unwrap().sign(
        &got.headers["webhook-id"],
        T0,
        &got.body,
    );
    assert_eq!(got.headers["webhook-signature"], want);
}

/// A private CA (`ca.pem`) and a certificate for 127.0.0.1 signed by it (`cert.pem`,
/// `key.pem`), made by the `openssl` command.
pub(crate) fn make_pki(dir: &std::path::Path) {
    let sh = r#"set -e
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout ca.key \
  -out ca.pem -days 2 -subj /CN=jit-test-root \
  -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out tls.csr -subj /CN=127.0.0.1
printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' > ext
openssl x509 -req -in tls.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile ext
"#;
    let o = std::process::Command::new("sh")
        .arg("-c")
        .arg(sh)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// An HTTPS receiver with the certificate in `dir` (see [`make_pki`]).
pub(crate) fn tls_receiver(dir: &std::path::Path, say: Say) -> (String, mpsc::Receiver<Got>) {
    use rustls::pki_types::pem::PemObject as _;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("cert.pem"))
        .unwrap()
        .map(|c| c.unwrap())
        .collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).unwrap();
    let cfg = Arc::new(
        rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap(),
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("https://{}/authorize", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { return };
            let (tx, say, cfg) = (tx.clone(), say.clone(), cfg.clone());
            std::thread::spawn(move || {
                let conn = rustls::ServerConnection::new(cfg).unwrap();
                handle(rustls::StreamOwned::new(conn, stream), &say, &tx);
            });
        }
    });
    (url, rx)
}

/// A harness whose webhook is an HTTPS receiver with a private CA; `trust` adds
/// `ca_file` naming that CA.
fn tls_harness(trust: bool) -> (Harness, mpsc::Receiver<Got>) {
    let pki = tempfile::tempdir().unwrap();
    make_pki(pki.path());
    let (url, calls) = tls_receiver(pki.path(), Say::Answer(200, r#"{"approve": true}"#.into()));
    let mut text = policy(&url);
    if trust {
        text = text.replace(
            "timeout = \"1s\"\n",
            "timeout = \"1s\"\nca_file = \"webhooks/ca.pem\"\n",
        );
    }
    let (dir, keys) = setup_dir(&text);
    let data = data_dir(&dir);
    std::fs::create_dir(data.join("webhooks")).unwrap();
    std::fs::copy(pki.path().join("ca.pem"), data.join("webhooks/ca.pem")).unwrap();
    let secret = data.join("webhooks/oncall.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let clock = Arc::new(FixedClock::new(T0));
    let ca = Arc::new(Ca::open(&data, clock.clone()).unwrap());
    let app = jit_ca::api::router(ca.clone());
    let h = Harness {
        dir,
        clock,
        ca,
        app,
        keys,
    };
    (h, calls)
}

#[tokio::test]
async fn https_with_the_ca_file_of_a_private_ca() {
    let (h, calls) = tls_harness(true);
    let v = ask(&h).await;
    assert_eq!(v["state"], "approved", "{v}");
    assert_authorize_call(&calls.recv_timeout(Duration::from_secs(5)).unwrap());
    let (event, d) = webhook_record(&h, v["id"].as_str().unwrap());
    assert_eq!(
        (event.as_str(), &d["answer"]),
        ("webhook_answer", &json!("approve"))
    );
}

#[tokio::test]
async fn https_to_an_untrusted_certificate_fails_closed() {
    // Without ca_file only the web PKI's roots are trusted: the handshake fails.
    let (h, calls) = tls_harness(false);
    let v = ask(&h).await;
    let (event, d) = webhook_record(&h, v["id"].as_str().unwrap());
    assert_eq!(event, "webhook_failure", "{d}");
    assert_eq!(d["kind"], "tls", "{d}");
    assert!(
        d["detail"].as_str().unwrap().contains("UnknownIssuer"),
        "{d}"
    );
    assert!(calls.try_recv().is_err(), "nothing was sent");
    assert_left_to_humans(&h, &v).await;
}

#[tokio::test]
async fn jit_roles_names_the_webhook_a_rule_needs() {
    let (url, _calls) = receiver(Say::Answer(200, r#"{"approve": true}"#.into()));
    let h = harness(&url);
    let (s, v) = h.call("alice", "GET", "/v1/roles", Value::Null).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["roles"][0]["auto_approval"],
        json!([{"rule": "auto:pager", "max_duration_secs": 900, "webhook": "oncall"}])
    );
}

#[tokio::test]
async fn a_user_removed_while_the_webhook_is_asked_gets_nothing() {
    let (url, calls, go) = gated_receiver(r#"{"approve": true}"#);
    let h = harness(&url);
    // While the webhook is being asked, the operator removes alice.
    let (dir, now) = (h.path(), h.now());
    let remover = std::thread::spawn(move || {
        calls.recv_timeout(Duration::from_secs(5)).unwrap();
        jit_ca::admin::user_remove(&dir, "alice", now).unwrap();
        go.send(()).unwrap();
    });
    let got = h.request("alice", "quick", 600, "INC-7 web down").await;
    remover.join().unwrap();
    assert_error(&got, 401, "unknown_key");
    assert_eq!(
        got.1["error"]["message"],
        "alice or the key that signed this request was removed while it was being decided; \
         nothing was stored"
    );
    // Nothing was stored or issued; the webhook's yes is audited as about a request not
    // stored.
    let recs: Vec<Value> = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == "webhook_answer")
        .collect();
    assert_eq!(recs.len(), 1, "{recs:?}");
    let d = match &recs[0]["details"] {
        Value::String(s) => serde_json::from_str::<Value>(s).unwrap(),
        d => d.clone(),
    };
    assert_eq!(d["request_stored"], false, "{d}");
    assert!(
        !h.audit_events().iter().any(|(e, _)| e == "issuance"),
        "{:?}",
        h.audit_events()
    );
}

/// The question says whether the grant asked about will be session-bound, next to `sudo`:
/// a receiver that approves elevation may want to approve only bound elevation.
#[tokio::test]
async fn the_question_says_whether_the_grant_is_session_bound() {
    let (url, calls) = receiver(Say::Answer(200, r#"{"approve": false}"#.into()));
    let text = policy(&url).replace(
        "[roles.quick]\nhosts = [\"web-*\"]\n",
        "[roles.quick]\nhosts = [\"web-*\"]\nsudo = true\nsession_bound = true\n",
    );
    assert!(text.contains("session_bound = true"), "{text}");
    let h = harness_with(&text, &[]);
    let v = ask(&h).await;
    assert_eq!(v["state"], "pending", "{v}");
    let got = calls.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_authorize_call(&got);
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    assert_eq!(body["data"]["sudo"], true, "{body}");
    assert_eq!(body["data"]["session_bound"], true, "{body}");
    // The request's own audit record says so too.
    let id = v["id"].as_str().unwrap();
    let recs = records(&h, id);
    let (_, _, req) = recs.iter().find(|(e, _, _)| e == "request").unwrap();
    assert_eq!(req["session_bound"], true, "{req}");
}

/// A call of the authorizing webhook: to the configured `/authorize` path (the shared
/// receiver takes any path, since notification sinks have theirs), signed.
fn assert_authorize_call(got: &Got) {
    assert_eq!(got.path, "/authorize");
    assert_signed(got);
}

//! Notification delivery against real HTTP receivers on 127.0.0.1 (the shared
//! [`super::receiver`]): the worker's tick driven with the injected clock
//! (`Ca::notify_fan_out`, `Ca::notify_tick`), signatures recomputed by the `openssl` command
//! over the received bytes, outages, dead letters and `jit-ca notify retry`, Slack bodies,
//! and the worker's own threads with a receiver that hangs.

use std::os::unix::fs::PermissionsExt as _;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use jit_ca::clock::FixedClock;
use jit_ca::notify::event::{Event, event_id};
use jit_ca::service::Ca;
use jit_test_kit::harness::*;
use serde_json::Value;

use super::receiver::*;

/// Long enough for anything on a loaded machine; only a broken build waits this long.
const WAIT: Duration = Duration::from_secs(60);

/// A harness whose config.toml has `sinks` (TOML text of `[[notify]]` tables) and `extra`
/// top-level lines; the standard sinks' secret file `keys/ops.whsec` holds [`SECRET`].
fn harness_with_sinks(extra: &str, sinks: &str) -> Result<Harness, String> {
    harness_with_sinks_files(extra, sinks, &[])
}

/// [`harness_with_sinks`], with `files` (path relative to the data directory, content)
/// written first.
fn harness_with_sinks_files(
    extra: &str,
    sinks: &str,
    files: &[(&str, &[u8])],
) -> Result<Harness, String> {
    let (dir, keys) = setup_dir(POLICY);
    let data = data_dir(&dir);
    for (path, text) in files {
        std::fs::write(data.join(path), text).unwrap();
    }
    let secret = data.join("keys/ops.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let cfg = data.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{extra}\n{text}\n{sinks}")).unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
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

fn standard(name: &str, url: &str) -> String {
    format!(
        "[[notify]]\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"standard\"\nsecret_file = \"keys/ops.whsec\"\n"
    )
}

fn slack(name: &str, url: &str) -> String {
    format!("[[notify]]\nname = \"{name}\"\nurl = \"{url}\"\nformat = \"slack\"\n")
}

/// Fans out, then ticks `sink` until a tick does nothing (at most `max` ticks).
fn drain(h: &Harness, sink: &str) -> jit_ca::notify::worker::Tick {
    h.ca.notify_fan_out().unwrap();
    let mut total = jit_ca::notify::worker::Tick::default();
    for _ in 0..100 {
        let t = h.ca.notify_tick(sink).unwrap();
        total.delivered += t.delivered;
        total.failed += t.failed;
        total.dead += t.dead;
        if t.delivered == 0 || t.failed > 0 {
            return total;
        }
    }
    panic!("{sink}: still delivering after 100 ticks");
}

/// Every call received so far.
fn received(rx: &mpsc::Receiver<Got>) -> Vec<Got> {
    rx.try_iter().collect()
}

fn event_of(got: &Got) -> Event {
    Event::from_payload(&got.body).unwrap()
}

/// alice asks for db-admin (one approval), bob approves: created, approved, issued.
async fn request_and_approve(h: &Harness) -> String {
    let (s, v) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    id
}

async fn metrics(h: &Harness) -> String {
    let (s, body, _) = h.get("/metrics", None).await;
    assert_eq!(s, 200);
    String::from_utf8(body).unwrap()
}

/// The audit records of `event`, details only.
fn audited(h: &Harness, event: &str) -> Vec<Value> {
    jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["event"] == event)
        .collect()
}

#[tokio::test]
async fn a_standard_sink_gets_each_change_signed_over_the_exact_bytes() {
    let (url, calls) = receiver_at("/jit", Say::Answer(204, String::new()));
    let h = harness_with_sinks("", &standard("ops", &url)).unwrap();
    let id = request_and_approve(&h).await;
    // Nothing is sent from the request path: only the worker sends.
    assert!(received(&calls).is_empty());
    let t = drain(&h, "ops");
    assert_eq!((t.delivered, t.failed), (3, 0));
    let got = received(&calls);
    let kinds: Vec<String> = got.iter().map(|g| event_of(g).kind.to_string()).collect();
    assert_eq!(
        kinds,
        ["request.created", "request.approved", "request.issued"]
    );
    // Ids are the audit records' (request, approval, issuance), in the trail's order.
    let hashes: Vec<String> = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .filter(|r| r["details"]["request_id"] == id.as_str())
        .filter(|r| ["request", "approval", "issuance"].contains(&r["event"].as_str().unwrap()))
        .map(|r| r["hash"].as_str().unwrap().to_string())
        .collect();
    for (g, hash) in got.iter().zip(&hashes) {
        assert_eq!(g.path, "/jit");
        let e = event_of(g);
        assert_eq!(g.headers["webhook-id"], e.id);
        assert_eq!(e.id, event_id(hash));
        assert_eq!(e.request_id(), Some(id.as_str()));
        // The signature, recomputed by openssl and by the hmac crate over the bytes
        // received: neither shares code with the CA's signer.
        assert_eq!(g.headers["webhook-signature"], openssl_signature(SECRET, g));
        assert_signed(g);
        // The body is compact JSON, exactly what Event::payload makes.
        assert_eq!(e.payload(), g.body);
    }
    assert_eq!(event_of(&got[2]).data.request.unwrap().state, "approved");
    // Delivered: nothing more to send, and an idle worker writes nothing.
    let commits = h.ca.commit_counts();
    assert_eq!(drain(&h, "ops").delivered, 0);
    assert_eq!(h.ca.notify_fan_out().unwrap(), 0);
    assert_eq!(h.ca.commit_counts(), commits);
    assert!(received(&calls).is_empty());
    let m = metrics(&h).await;
    assert!(
        m.contains("jit_ca_notify_deliveries_total{sink=\"ops\",outcome=\"delivered\"} 3"),
        "{m}"
    );
    assert!(m.contains("jit_ca_notify_outbox_depth 0\n"), "{m}");
    assert!(
        m.contains("jit_ca_notify_oldest_undelivered_seconds 0\n"),
        "{m}"
    );
}

#[tokio::test]
async fn an_outage_is_followed_by_every_event_in_order_per_request() {
    let status = Arc::new(AtomicU16::new(500));
    let (url, calls) = receiver_at("/jit", Say::Switch(status.clone()));
    let h = harness_with_sinks("", &standard("ops", &url)).unwrap();
    // Two requests, interleaved: alice's (1 approval) and dave's two-man (2 approvals).
    let (s, a) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{a}");
    let (s, d) = h.request("dave", "two-man", 1800, "INC-43 deploy").await;
    assert_eq!(s, 201, "{d}");
    let (a, d) = (a["id"].as_str().unwrap(), d["id"].as_str().unwrap());
    assert_eq!(h.approve("bob", a).await.0, 200);
    assert_eq!(h.approve("alice", d).await.0, 200);
    assert_eq!(h.approve("bob", d).await.0, 200);
    // The receiver answers 500 for an hour: every attempt fails, nothing is lost.
    for _ in 0..12 {
        let t = drain(&h, "ops");
        assert_eq!((t.delivered, t.dead), (0, 0));
        h.clock.advance(300);
    }
    let failed = received(&calls);
    assert!(!failed.is_empty());
    let m = metrics(&h).await;
    assert!(m.contains("jit_ca_notify_outbox_depth 7\n"), "{m}");
    assert!(
        m.contains("jit_ca_notify_oldest_undelivered_seconds 3600\n"),
        "{m}"
    );
    let report = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(report.sinks[0].pending, 7);
    assert!(
        report.sinks[0]
            .last_error
            .as_ref()
            .unwrap()
            .error
            .contains("500")
    );
    // Back up: everything arrives, each request's events in the order they happened.
    status.store(200, Ordering::SeqCst);
    h.clock.advance(1000);
    let t = drain(&h, "ops");
    assert_eq!((t.delivered, t.failed, t.dead), (7, 0, 0));
    let got: Vec<Event> = received(&calls).iter().map(event_of).collect();
    let of = |id: &str| -> Vec<String> {
        got.iter()
            .filter(|e| e.request_id() == Some(id))
            .map(|e| e.kind.to_string())
            .collect()
    };
    assert_eq!(
        of(a),
        ["request.created", "request.approved", "request.issued"]
    );
    assert_eq!(
        of(d),
        [
            "request.created",
            "request.approved",
            "request.approved",
            "request.issued"
        ]
    );
    let mut ids: Vec<&str> = got.iter().map(|e| e.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), 7, "each event exactly once after the outage");
    // A failed attempt and the later success carry the same id and the same body.
    let first = &failed[0];
    let again = got
        .iter()
        .find(|e| e.id == first.headers["webhook-id"])
        .unwrap();
    assert_eq!(again.payload(), first.body);
    let report = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!((report.sinks[0].pending, report.sinks[0].dead), (0, 0));
}

#[tokio::test]
async fn dead_after_max_age_then_retry_resends_the_same_id() {
    let status = Arc::new(AtomicU16::new(503));
    let (url, calls) = receiver_at("/jit", Say::Switch(status.clone()));
    let h = harness_with_sinks("notify_max_age = \"1h\"", &standard("ops", &url)).unwrap();
    let (s, v) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    let rid = v["id"].as_str().unwrap().to_string();
    let mut dead = 0;
    for _ in 0..40 {
        dead += drain(&h, "ops").dead;
        if dead > 0 {
            break;
        }
        h.clock.advance(600);
    }
    assert_eq!(dead, 1, "given up once max age passed");
    assert!(h.now() <= T0 + 3600 + 1000);
    let attempts = received(&calls);
    let id = attempts[0].headers["webhook-id"].clone();
    assert!(attempts.iter().all(|g| g.headers["webhook-id"] == id));
    assert!(attempts.iter().all(|g| g.body == attempts[0].body));
    // Audited, listed, counted.
    let rec = audited(&h, "notify_dead");
    assert_eq!(rec.len(), 1);
    assert_eq!(rec[0]["details"]["id"], id.as_str());
    assert_eq!(rec[0]["details"]["sink"], "ops");
    assert_eq!(rec[0]["details"]["last_status"], 503);
    let report = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(report.dead_total, 1);
    assert_eq!(report.dead[0].id, id);
    assert_eq!(report.dead[0].request_id.as_deref(), Some(rid.as_str()));
    let text = jit_ca::admin::render_notify_status(&report);
    assert!(
        text.contains(&id) && text.contains("notify retry"),
        "{text}"
    );
    let m = metrics(&h).await;
    assert!(
        m.contains("jit_ca_notify_deliveries_total{sink=\"ops\",outcome=\"dead\"} 1"),
        "{m}"
    );
    // The receiver is back. A dead delivery does not hold the request's later events.
    status.store(200, Ordering::SeqCst);
    assert_eq!(h.approve("bob", &rid).await.0, 200);
    let t = drain(&h, "ops");
    assert_eq!(t.delivered, 2);
    let later: Vec<String> = received(&calls)
        .iter()
        .map(|g| event_of(g).kind.to_string())
        .collect();
    assert_eq!(later, ["request.approved", "request.issued"]);
    // Refusals of `notify retry`: a sink not configured, an unknown id.
    let e = jit_ca::admin::notify_retry(&h.path(), &id, Some("nope"), h.now()).unwrap_err();
    assert!(e.to_string().contains("no [[notify]] sink"), "{e}");
    let e = jit_ca::admin::notify_retry(&h.path(), "evt_00", None, h.now()).unwrap_err();
    assert!(e.to_string().contains("evt_00"), "{e}");
    // Resent with the same id and body; audited.
    let r = jit_ca::admin::notify_retry(&h.path(), &id, None, h.now()).unwrap();
    assert_eq!(r.sinks, ["ops"]);
    assert_eq!(audited(&h, "notify_retry").len(), 1);
    assert_eq!(drain(&h, "ops").delivered, 1);
    let resent = received(&calls);
    assert_eq!(resent.len(), 1);
    assert_eq!(resent[0].headers["webhook-id"], id);
    assert_eq!(resent[0].body, attempts[0].body);
    assert_eq!(resent[0].headers["webhook-timestamp"], h.now().to_string());
    assert_eq!(
        resent[0].headers["webhook-signature"],
        openssl_signature(SECRET, &resent[0])
    );
    // Not dead any more: a second retry is refused.
    let e = jit_ca::admin::notify_retry(&h.path(), &id, None, h.now()).unwrap_err();
    assert!(e.to_string().contains("no dead delivery"), "{e}");
    assert_eq!(
        jit_ca::admin::notify_status(&h.path(), h.now())
            .unwrap()
            .dead_total,
        0
    );
}

#[tokio::test]
async fn slack_messages_keep_their_shape_and_never_carry_user_markup() {
    let (url, calls) = receiver_at("/services/T/B/X", Say::Answer(200, "ok".into()));
    let h = harness_with_sinks("", &slack("chat", &url)).unwrap();
    // Contacts: bob's is a Slack member id (a mention), carol's a name (text), alice's
    // (the requester, no approver of her own request) is never listed as an approver.
    for (user, handle) in [("bob", "U0BOB1"), ("carol", "@carol"), ("alice", "U0ALICE")] {
        jit_ca::admin::user_set_contact(&h.path(), user, Some(handle), T0).unwrap();
    }
    let reason = "INC-42 <!channel> <https://evil.example|click> & more";
    let (s, v) = h.request("alice", "db-admin", 1800, reason).await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(drain(&h, "chat").delivered, 1);
    let got = received(&calls);
    assert_eq!(got.len(), 1);
    assert!(!got[0].headers.contains_key("webhook-signature"));
    let msg: Value = serde_json::from_slice(&got[0].body).unwrap();
    jit_ca::notify::slack::check_shape(&msg).unwrap();
    let text = String::from_utf8(got[0].body.clone()).unwrap();
    assert!(
        !text.contains("<!channel>") && !text.contains("<https://"),
        "{text}"
    );
    assert!(text.contains(&format!("`jit approve {id}`")), "{text}");
    // The eligible approvers as the policy is now (group dba: bob, carol, dave without a
    // contact), by their handles; the requester's own handle only as the requester's.
    assert!(text.contains("Approvers: <@U0BOB1> @carol"), "{text}");
    assert!(text.contains("`alice` (<@U0ALICE>)"), "{text}");
    // Every later event too.
    assert_eq!(h.approve("bob", &id).await.0, 200);
    assert_eq!(drain(&h, "chat").delivered, 2);
    for g in received(&calls) {
        let msg: Value = serde_json::from_slice(&g.body).unwrap();
        jit_ca::notify::slack::check_shape(&msg).unwrap();
        // Decided: no commands to decide any more.
        assert!(!String::from_utf8_lossy(&g.body).contains("jit approve"));
    }
}

#[test]
fn a_slack_url_in_a_world_readable_config_stops_the_ca() {
    let (dir, _) = setup_dir(POLICY);
    let data = data_dir(&dir);
    let cfg = data.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!(
            "{text}\n{}",
            slack("chat", "https://hooks.slack.com/services/T/B/SECRETX")
        ),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = Ca::open(&data, Arc::new(FixedClock::new(T0)))
        .unwrap_err()
        .to_string();
    assert!(e.contains(&format!("chmod o-r {}", cfg.display())), "{e}");
    assert!(!e.contains("SECRETX"), "{e}");
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o600)).unwrap();
    Ca::open(&data, Arc::new(FixedClock::new(T0))).unwrap();
}

/// The worker's own threads: a sink whose receiver never answers holds only its own
/// thread. While its first call is held open, requests are created, approved and issued,
/// and the other sink receives every event (before the hanging call ends).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_receiver_delays_neither_requests_nor_another_sink() {
    let (gave_up_tx, gave_up) = mpsc::channel();
    let (slow_url, slow_calls) = receiver_at("/slow", Say::Hang(gave_up_tx));
    let (fast_url, fast_calls) = receiver_at("/fast", Say::Answer(200, String::new()));
    let sinks = format!(
        "{}{}",
        standard("slow", &slow_url),
        standard("fast", &fast_url)
    );
    let h = harness_with_sinks("", &sinks).unwrap();
    let workers = jit_ca::notify::worker::start(h.ca.clone()).unwrap();
    assert_eq!(workers.threads(), 3, "the fan-out and one thread per sink");
    let (s, v) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    // The slow sink's call is open and unanswered.
    let held = slow_calls.recv_timeout(WAIT).unwrap();
    assert_eq!(event_of(&held).kind.to_string(), "request.created");
    // Meanwhile: approved and issued.
    let (s, v) = h.approve("bob", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved", "{v}");
    assert_eq!(v["serial"], 1, "{v}");
    // And the other sink gets all three events while that call is still held.
    let kinds: Vec<String> = (0..3)
        .map(|_| {
            event_of(&fast_calls.recv_timeout(WAIT).unwrap())
                .kind
                .to_string()
        })
        .collect();
    assert_eq!(
        kinds,
        ["request.created", "request.approved", "request.issued"]
    );
    assert_eq!(
        gave_up.try_recv(),
        Err(mpsc::TryRecvError::Empty),
        "the other sink waited for the hanging call to end"
    );
    drop(workers);
}

/// `jit-ca policy check` says what would stop `jit-ca serve`: a sink's secret file, a slack
/// URL in a config.toml others may read.
#[test]
fn policy_check_reads_the_sinks_secret_files() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let cfg = dir.join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        format!("{text}\n{}", standard("ops", "https://h.example.com/")),
    )
    .unwrap();
    let r = jit_ca::admin::policy_check(&dir);
    assert!(!r.ok);
    assert!(
        r.errors
            .iter()
            .any(|e| e.contains("notify.ops.secret_file: ")),
        "{:?}",
        r.errors
    );
    let secret = dir.join("keys/ops.whsec");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let r = jit_ca::admin::policy_check(&dir);
    assert!(r.ok, "{:?}", r.errors);
    std::fs::write(
        &cfg,
        format!("{text}\n{}", slack("chat", "https://hooks.slack.com/x")),
    )
    .unwrap();
    std::fs::set_permissions(&cfg, std::fs::Permissions::from_mode(0o644)).unwrap();
    let r = jit_ca::admin::policy_check(&dir);
    assert!(
        r.errors.iter().any(|e| e.contains("chmod o-r")),
        "{:?}",
        r.errors
    );
}

/// SIGHUP re-reads the sinks' secret files: a rotated secret signs the next delivery; a
/// file that cannot be read is reported and the previous secret kept.
#[tokio::test]
async fn a_reload_reads_a_rotated_secret_and_keeps_the_old_one_on_a_bad_file() {
    let (url, calls) = receiver_at("/jit", Say::Answer(200, String::new()));
    let h = harness_with_sinks("", &standard("ops", &url)).unwrap();
    let secret = h.path().join("keys/ops.whsec");
    let rotated = "whsec_ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
    std::fs::write(&secret, format!("{rotated}\n")).unwrap();
    assert!(h.ca.reload_notify_secrets().is_empty());
    let (s, _) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201);
    assert_eq!(drain(&h, "ops").delivered, 1);
    let got = calls.recv_timeout(WAIT).unwrap();
    assert_eq!(
        got.headers["webhook-signature"],
        openssl_signature(rotated, &got)
    );
    // Readable by others: refused, and the rotated secret stays in use.
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o644)).unwrap();
    let problems = h.ca.reload_notify_secrets();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].starts_with("notify.ops.secret_file: "),
        "{problems:?}"
    );
    let (s, v) = h
        .request("dave", "db-admin", 1800, "INC-43 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(drain(&h, "ops").delivered, 1);
    let got = calls.recv_timeout(WAIT).unwrap();
    assert_eq!(
        got.headers["webhook-signature"],
        openssl_signature(rotated, &got)
    );
}

/// Deliveries to a sink that config.toml no longer names wait (nothing sends them) and
/// `notify status` says so; the sinks configured are listed even with nothing pending.
#[tokio::test]
async fn status_names_sinks_no_longer_configured() {
    let (url, _calls) = receiver_at("/jit", Say::Answer(500, String::new()));
    let h = harness_with_sinks("", &standard("old", &url)).unwrap();
    let (s, _) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201);
    assert_eq!(h.ca.notify_fan_out().unwrap(), 1);
    let cfg = h.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("name = \"old\"", "name = \"new\"");
    std::fs::write(&cfg, text).unwrap();
    let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    let names: Vec<(&str, Option<&str>, u64)> = r
        .sinks
        .iter()
        .map(|s| (s.name.as_str(), s.format, s.pending))
        .collect();
    assert_eq!(names, [("new", Some("standard"), 0), ("old", None, 1)]);
    let text = jit_ca::admin::render_notify_status(&r);
    assert!(
        text.contains("sink old (not in config.toml: nothing sends these): 1 pending"),
        "{text}"
    );
    assert!(
        text.contains("sink new (standard): nothing pending"),
        "{text}"
    );
}

/// Appends `n` `alert` records (kind `request_burst`) in one transaction, as another process
/// writing the data directory would (the CA's own head moves only with them).
fn append_alerts(h: &Harness, n: usize) {
    h.store()
        .with_tx(|tx| {
            for k in 0..n {
                tx.append_audit(
                    h.now(),
                    "system",
                    jit_ca::audit::event::ALERT,
                    &serde_json::json!({"kind": "request_burst", "summary": format!("burst {k}"),
                        "check": "who", "user": "alice", "count": 10}),
                )?;
            }
            Ok::<_, jit_ca::error::CaError>(())
        })
        .unwrap();
}

/// R1 D1: more rows than one fan-out batch are all fanned out, with no later commit needed.
#[tokio::test]
async fn a_backlog_larger_than_one_batch_is_fanned_out_entirely() {
    let (url, _calls) = receiver_at("/jit", Say::Answer(500, String::new()));
    let h = harness_with_sinks("", &standard("ops", &url)).unwrap();
    let n = jit_ca::store::sqlite::outbox::FANOUT_BATCH + 1;
    append_alerts(&h, n);
    h.ca.notify_fan_out().unwrap();
    h.ca.notify_fan_out().unwrap();
    let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(r.sinks[0].pending, n as u64);
    assert_eq!(r.not_fanned_out, 0);
}

/// R1 D2: events written while no sink was configured are not sent to a sink configured
/// later (stale "decide with your own key" calls to action).
#[tokio::test]
async fn a_sink_configured_later_gets_no_backlog_of_stale_events() {
    let (url, calls) = receiver_at("/jit", Say::Answer(200, String::new()));
    let mut h = harness_with_sinks("", "").unwrap();
    let (s, v) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    // The running CA's worker fans out without sinks too: the cursor moves.
    h.ca.notify_fan_out().unwrap();
    h.clock.advance(2 * 86400);
    let cfg = h.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(&cfg, format!("{text}\n{}", standard("ops", &url))).unwrap();
    h.restart();
    let t = drain(&h, "ops");
    assert_eq!((t.delivered, t.failed, t.dead), (0, 0, 0));
    assert!(received(&calls).is_empty());
    // What happens from now on is sent.
    let (s, _) = h
        .request("dave", "db-admin", 1800, "INC-43 disk full")
        .await;
    assert_eq!(s, 201);
    assert_eq!(drain(&h, "ops").delivered, 1);
}

/// R2 #2, R1 N6: rows the fan-out has not made into deliveries count in the depth and the
/// oldest-undelivered age (a stuck fan-out can fire the outbox-stuck alert) and in
/// `notify status`.
#[tokio::test]
async fn rows_not_fanned_out_show_in_the_gauges_and_the_status() {
    let (url, _calls) = receiver_at("/jit", Say::Answer(200, String::new()));
    let h = harness_with_sinks("", &standard("ops", &url)).unwrap();
    let (s, _) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201);
    // No fan-out (as when its thread died or every fan-out fails).
    h.clock.advance(1000);
    let m = metrics(&h).await;
    assert!(m.contains("jit_ca_notify_outbox_depth 1\n"), "{m}");
    assert!(
        m.contains("jit_ca_notify_oldest_undelivered_seconds 1000\n"),
        "{m}"
    );
    let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(
        (r.not_fanned_out, r.not_fanned_out_oldest_secs),
        (1, Some(1000))
    );
    let text = jit_ca::admin::render_notify_status(&r);
    assert!(
        text.contains("1 event(s) not fanned out to the sinks yet, oldest 16m 40s old"),
        "{text}"
    );
    assert_eq!(drain(&h, "ops").delivered, 1);
    let m = metrics(&h).await;
    assert!(m.contains("jit_ca_notify_outbox_depth 0\n"), "{m}");
}

/// R1 D6: every command a Slack message shows runs as shown: the client's own parser (the
/// `jit` binary's clap definition) accepts each one, with nothing missing.
#[tokio::test]
async fn the_commands_in_a_slack_message_parse_as_the_client_defines_them() {
    use clap::Parser as _;
    let (url, calls) = receiver_at("/slack", Say::Answer(200, "ok".into()));
    let h = harness_with_sinks("", &slack("chat", &url)).unwrap();
    let (s, v) = h.request("dave", "two-man", 1800, "INC-43 deploy").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(drain(&h, "chat").delivered, 1);
    let got = calls.recv_timeout(WAIT).unwrap();
    let body: Value = serde_json::from_slice(&got.body).unwrap();
    let msg = body.to_string();
    let decide = msg
        .split("Decide with your own key: ")
        .nth(1)
        .expect("the commands are shown while pending");
    let decide = decide.split('"').next().unwrap();
    let commands: Vec<&str> = decide
        .split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.starts_with("jit "))
        .collect();
    assert_eq!(commands.len(), 3, "{decide}");
    for cmd in commands {
        // A tiny shell word split: spaces, and single quotes around a word.
        let mut words = Vec::new();
        let mut rest = cmd;
        while !rest.is_empty() {
            rest = rest.trim_start();
            if let Some(q) = rest.strip_prefix('\'') {
                let end = q.find('\'').unwrap();
                words.push(q[..end].to_string());
                rest = &q[end + 1..];
            } else {
                let end = rest.find(' ').unwrap_or(rest.len());
                words.push(rest[..end].to_string());
                rest = &rest[end..];
            }
        }
        if let Err(err) = jit::cli::Cli::try_parse_from(&words) {
            panic!("`{cmd}` does not run as shown: {err}");
        }
    }
}

/// R1 D5: a resent dead letter gets a fresh retry schedule (`notify_max_age` from the
/// resend), not one attempt: a receiver still flaky at the resend gets it later.
#[tokio::test]
async fn a_resend_is_retried_for_max_age_from_the_resend() {
    let status = Arc::new(AtomicU16::new(503));
    let (url, calls) = receiver_at("/jit", Say::Switch(status.clone()));
    let h = harness_with_sinks("notify_max_age = \"1h\"", &standard("ops", &url)).unwrap();
    let (s, _) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201);
    let mut dead = 0;
    for _ in 0..40 {
        dead += drain(&h, "ops").dead;
        if dead > 0 {
            break;
        }
        h.clock.advance(600);
    }
    assert_eq!(dead, 1);
    let id = received(&calls)[0].headers["webhook-id"].clone();
    h.clock.advance(3 * 3600);
    jit_ca::admin::notify_retry(&h.path(), &id, None, h.now()).unwrap();
    // Still 503 at the resend: a failure, retried, not dead again.
    let t = drain(&h, "ops");
    assert_eq!((t.delivered, t.failed, t.dead), (0, 1, 0));
    status.store(200, Ordering::SeqCst);
    h.clock.advance(11);
    assert_eq!(drain(&h, "ops").delivered, 1);
    assert_eq!(received(&calls).last().unwrap().headers["webhook-id"], id);
}

/// R1 N5: `notify retry ID` resends only to sinks config.toml names (nothing would send a
/// delivery to another, and "retried" would be untrue).
#[tokio::test]
async fn a_retry_skips_sinks_no_longer_configured() {
    let (url, _calls) = receiver_at("/jit", Say::Answer(500, String::new()));
    let h = harness_with_sinks("", &standard("old", &url)).unwrap();
    let (s, _) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201);
    assert_eq!(h.ca.notify_fan_out().unwrap(), 1);
    let st = h.db();
    st.exec("UPDATE notify_delivery SET state = 'dead'", &[]);
    let id: String = st.one("SELECT id FROM notify_outbox", &[]);
    let cfg = h.path().join("config.toml");
    let text = std::fs::read_to_string(&cfg)
        .unwrap()
        .replace("name = \"old\"", "name = \"new\"");
    std::fs::write(&cfg, text).unwrap();
    let e = jit_ca::admin::notify_retry(&h.path(), &id, None, h.now()).unwrap_err();
    assert!(
        e.to_string()
            .contains("only dead letters to sinks config.toml names"),
        "{e}"
    );
    let dead: String = st.one("SELECT state FROM notify_delivery", &[]);
    assert_eq!(dead, "dead");
}

/// R1 N9: a `[[notify]]` sink takes `ca_file` like a `[[webhook]]`: a receiver behind an
/// internal PKI is reached over https with only those roots trusted; without it, the web
/// PKI's roots refuse the handshake (nothing is sent).
#[tokio::test]
async fn a_sink_with_ca_file_reaches_a_receiver_of_a_private_ca() {
    let pki = tempfile::tempdir().unwrap();
    super::webhook::make_pki(pki.path());
    for trust in [false, true] {
        let (url, calls) =
            super::webhook::tls_receiver(pki.path(), Say::Answer(204, String::new()));
        let mut sink = standard("ops", &url);
        if trust {
            sink.push_str("ca_file = \"keys/ca.pem\"\n");
        }
        let pem = std::fs::read(pki.path().join("ca.pem")).unwrap();
        let h = harness_with_sinks_files("", &sink, &[("keys/ca.pem", &pem)]).unwrap();
        let (s, _) = h
            .request("alice", "db-admin", 1800, "INC-42 disk full")
            .await;
        assert_eq!(s, 201);
        let t = drain(&h, "ops");
        if trust {
            assert_eq!(t.delivered, 1, "{t:?}");
            assert_signed(&calls.recv_timeout(WAIT).unwrap());
        } else {
            assert_eq!((t.delivered, t.failed), (0, 1), "{t:?}");
            let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
            let e = r.sinks[0].last_error.as_ref().unwrap();
            assert!(e.error.contains("UnknownIssuer"), "{e:?}");
        }
    }
}

/// R1 D2: a delivery is never first sent after `notify_max_age` (a CA stopped longer than
/// that, a backlog): it is a dead letter, audited and listed, and a resend sends it.
#[tokio::test]
async fn an_event_older_than_max_age_is_dead_not_sent() {
    let (url, calls) = receiver_at("/jit", Say::Answer(200, String::new()));
    let h = harness_with_sinks("notify_max_age = \"1h\"", &standard("ops", &url)).unwrap();
    let (s, _) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201);
    h.ca.notify_fan_out().unwrap();
    h.clock.advance(3601);
    let t = drain(&h, "ops");
    assert_eq!((t.delivered, t.dead), (0, 1));
    assert!(received(&calls).is_empty());
    let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(r.dead_total, 1);
    assert!(
        r.dead[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("older than notify_max_age"),
        "{r:?}"
    );
    assert_eq!(audited(&h, "notify_dead").len(), 1);
    jit_ca::admin::notify_retry(&h.path(), &r.dead[0].id, None, h.now()).unwrap();
    assert_eq!(drain(&h, "ops").delivered, 1);
    assert_eq!(received(&calls).len(), 1);
}

/// R3 D3: a delivery past `notify_max_age` is dead without a call, and does not end the
/// sink's tick: after a long stop, a fresh event is not held behind the stale ones (one per
/// tick, one tick a second).
#[tokio::test]
async fn expired_deliveries_do_not_hold_fresh_events_behind_them() {
    let (url, calls) = receiver_at("/jit", Say::Answer(200, String::new()));
    let sink = format!("{}events = [\"request.created\"]\n", standard("ops", &url));
    let h = harness_with_sinks("notify_max_age = \"1h\"", &sink).unwrap();
    for _ in 0..100 {
        let (s, v) = h
            .request("alice", "db-admin", 1800, "INC-42 disk full")
            .await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap();
        let (s, v) = h
            .call(
                "alice",
                "POST",
                &format!("/v1/requests/{id}/cancel"),
                serde_json::json!({}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
    }
    assert_eq!(h.ca.notify_fan_out().unwrap(), 100);
    h.clock.advance(3601);
    let (s, v) = h.request("alice", "db-admin", 1800, "INC-43 fresh").await;
    assert_eq!(s, 201, "{v}");
    let fresh = v["id"].as_str().unwrap().to_string();
    h.ca.notify_fan_out().unwrap();
    let first = h.ca.notify_tick("ops").unwrap();
    assert_eq!(
        (first.dead, first.expired, first.failed),
        (64, 64, 0),
        "{first:?}"
    );
    let mut got = received(&calls);
    let mut ticks = 1;
    while got.is_empty() {
        assert!(
            ticks < 3,
            "the fresh event is still waiting after {ticks} ticks"
        );
        h.ca.notify_tick("ops").unwrap();
        ticks += 1;
        got = received(&calls);
    }
    assert_eq!(got.len(), 1);
    assert!(String::from_utf8_lossy(&got[0].body).contains(&fresh));
    let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(r.dead_total, 100);
    assert_eq!(audited(&h, "notify_dead").len(), 100);
    let m = metrics(&h).await;
    assert!(
        m.contains("jit_ca_notify_deliveries_total{sink=\"ops\",outcome=\"dead\"} 100"),
        "{m}"
    );
}

/// R3 D5: a row of a type this build does not know is dead at fan-out for each sink whose
/// filter could take it (not for one with `alert.*`), counted in
/// `jit_ca_notify_deliveries_total{outcome="dead"}` and audited as `notify_dead`.
#[tokio::test]
async fn an_unknown_type_dead_at_fan_out_is_counted_and_audited() {
    let (url, calls) = receiver_at("/jit", Say::Answer(200, String::new()));
    let sinks = format!(
        "{}{}events = [\"alert.*\"]\n",
        standard("ops", &url),
        standard("pager", &url)
    );
    let h = harness_with_sinks("", &sinks).unwrap();
    let (s, v) = h
        .request("alice", "db-admin", 1800, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(
        h.db()
            .exec("UPDATE notify_outbox SET type = 'request.nope'", &[]),
        1
    );
    h.ca.notify_fan_out().unwrap();
    let m = metrics(&h).await;
    assert!(
        m.contains("jit_ca_notify_deliveries_total{sink=\"ops\",outcome=\"dead\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("jit_ca_notify_deliveries_total{sink=\"pager\",outcome=\"dead\"} 0"),
        "{m}"
    );
    let dead = audited(&h, "notify_dead");
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["details"]["sink"], "ops");
    assert_eq!(dead[0]["details"]["type"], "request.nope");
    assert!(
        dead[0]["details"]["last_error"]
            .as_str()
            .unwrap()
            .starts_with("unknown event type"),
        "{dead:?}"
    );
    let r = jit_ca::admin::notify_status(&h.path(), h.now()).unwrap();
    assert_eq!(r.dead_total, 1);
    assert_eq!(r.dead[0].sink, "ops");
    assert_eq!(drain(&h, "ops").delivered, 0);
    assert!(received(&calls).is_empty());
}

/// Issue 16: with `public_url` set, request events link to the request's read-only page:
/// Standard Webhooks payloads as `"url"` (first member, inserted before the stored bytes,
/// signed with them), Slack messages as one explicit link (never a button). A GET of the
/// link changes nothing (a chat preview fetches it).
#[tokio::test]
async fn with_public_url_events_link_to_the_request_page() {
    let (ops_url, ops) = receiver_at("/jit", Say::Answer(204, String::new()));
    let (chat_url, chat) = receiver_at("/services/T/B/X", Say::Answer(200, "ok".into()));
    let sinks = format!(
        "{}\n{}",
        standard("ops", &ops_url),
        slack("chat", &chat_url)
    );
    let h = harness_with_sinks("public_url = \"https://ca.example.com:8443/\"", &sinks).unwrap();
    let id = request_and_approve(&h).await;
    let page = format!("https://ca.example.com:8443/ui/requests/{id}");
    assert_eq!(drain(&h, "ops").delivered, 3);
    for g in received(&ops) {
        let v: Value = serde_json::from_slice(&g.body).unwrap();
        assert_eq!(v["url"], page.as_str(), "{v}");
        // The stored payload follows the url member byte for byte, and the signature is
        // over what was received.
        let stored = event_of(&g).payload();
        let prefix = format!("{{\"url\":\"{page}\",");
        assert_eq!(
            g.body,
            [prefix.as_bytes(), &stored[1..]].concat(),
            "{}",
            String::from_utf8_lossy(&g.body)
        );
        assert_signed(&g);
    }
    assert_eq!(drain(&h, "chat").delivered, 3);
    for g in received(&chat) {
        let msg: Value = serde_json::from_slice(&g.body).unwrap();
        jit_ca::notify::slack::check_shape(&msg).unwrap();
        let text = String::from_utf8_lossy(&g.body);
        assert!(
            text.contains(&format!("<{page}|Open request {id} on the web page>")),
            "{text}"
        );
        assert_eq!(text.matches("https://").count(), 1, "{text}");
    }
    // Whatever the link leads to is a GET that changes nothing: the request is as it was,
    // and the trail did not grow.
    let before = jit_ca::admin::audit_export(&h.path()).unwrap().len();
    let (_, _, _) = h.get(&format!("/ui/requests/{id}"), None).await;
    assert_eq!(
        jit_ca::admin::audit_export(&h.path()).unwrap().len(),
        before
    );
}

/// Without `public_url` no message carries a link (the CA does not know how people reach
/// it): the payload is the stored bytes exactly, the Slack message has no URL.
#[tokio::test]
async fn without_public_url_no_event_links_anywhere() {
    let (ops_url, ops) = receiver_at("/jit", Say::Answer(204, String::new()));
    let (chat_url, chat) = receiver_at("/services/T/B/X", Say::Answer(200, "ok".into()));
    let sinks = format!(
        "{}\n{}",
        standard("ops", &ops_url),
        slack("chat", &chat_url)
    );
    let h = harness_with_sinks("", &sinks).unwrap();
    request_and_approve(&h).await;
    assert_eq!(drain(&h, "ops").delivered, 3);
    for g in received(&ops) {
        assert_eq!(event_of(&g).payload(), g.body);
        assert!(!String::from_utf8_lossy(&g.body).contains("\"url\""));
    }
    assert_eq!(drain(&h, "chat").delivered, 3);
    for g in received(&chat) {
        let text = String::from_utf8_lossy(&g.body);
        assert!(!text.contains("http") && !text.contains("/ui/"), "{text}");
    }
}

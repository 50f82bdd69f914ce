//! Issue 17: what must hold across two replicas of one CA on one PostgreSQL database (the
//! kit's `replicas::pair`: two data directories, two `Ca`s, one database, one clock).
//!
//! * k-of-n approvals made at the same moment through different replicas count once each,
//!   and the request is issued exactly once (one issuance record, one certificate);
//! * a signed call replayed to the other replica is refused (GET and POST);
//! * a revocation made on one replica is served by the other within 2 s (the same signed
//!   list, byte for byte), also after the other's listener connection was killed;
//! * the expiry sweep and a notification's delivery happen once, not once per replica.
//!
//! Each test needs `JIT_TEST_POSTGRES` (tests/pg-tests.sh) and fails without it.

/// PostgreSQL only: `--skip pg::` leaves them to tests/pg-tests.sh.
mod pg {
    use std::time::{Duration, Instant};

    use axum::http::StatusCode;
    use jit_api::auth;
    use jit_ca::store::postgres::Job;
    use jit_test_kit::harness::*;
    use jit_test_kit::replicas::{Pair, pair, pair_with};
    use serde_json::{Value, json};

    fn audit(p: &Pair) -> Vec<Value> {
        jit_ca::admin::audit_export(&p.b.path()).unwrap()
    }

    fn events_for(p: &Pair, event: &str, id: &str) -> usize {
        audit(p)
            .iter()
            .filter(|r| r["event"] == event && r["details"]["request_id"] == id)
            .count()
    }

    async fn get_as(h: &Harness, user: &str, path: &str) -> (StatusCode, Value) {
        h.call(user, "GET", path, Value::Null).await
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn concurrent_approvals_through_two_replicas_count_once_and_issue_once() {
        let p = pair(POLICY);
        for round in 0..6 {
            let (s, req) =
                p.a.request("alice", "two-man", 600, &format!("round {round}"))
                    .await;
            assert_eq!(s, 201, "{req}");
            let id = req["id"].as_str().unwrap().to_string();
            // bob on A and carol on B at the same moment: both count, one issuance.
            let (x, y) = tokio::join!(p.a.approve("bob", &id), p.b.approve("carol", &id));
            assert_eq!(x.0, 200, "{}", x.1);
            assert_eq!(y.0, 200, "{}", y.1);
            for h in [&p.a, &p.b] {
                let (s, v) = get_as(h, "alice", &format!("/v1/requests/{id}")).await;
                assert_eq!(s, 200, "{v}");
                assert_eq!(v["state"], "approved", "{v}");
                let mut who: Vec<&str> = v["approvals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["user"].as_str().unwrap())
                    .collect();
                who.sort_unstable();
                assert_eq!(who, ["bob", "carol"], "each approval once: {v}");
            }
            assert_eq!(events_for(&p, "issuance", &id), 1, "issued exactly once");
            let serials: Vec<String> = p
                .psql(&format!(
                    "SELECT serial FROM certs WHERE request_id = '{id}' AND certificate <> ''"
                ))
                .lines()
                .map(str::to_string)
                .collect();
            assert_eq!(serials.len(), 1, "one certificate: {serials:?}");
            let (_, ca) = get_as(&p.a, "alice", &format!("/v1/requests/{id}/certificate")).await;
            let (_, cb) = get_as(&p.b, "alice", &format!("/v1/requests/{id}/certificate")).await;
            assert_eq!(
                ca["certificate"], cb["certificate"],
                "both replicas serve the one certificate"
            );
        }
        // The same approver on both replicas at once: one approval, the other refused.
        let (_, req) = p.a.request("alice", "two-man", 600, "same approver").await;
        let id = req["id"].as_str().unwrap().to_string();
        let (x, y) = tokio::join!(p.a.approve("dave", &id), p.b.approve("dave", &id));
        let mut statuses = [x.0.as_u16(), y.0.as_u16()];
        statuses.sort_unstable();
        assert_eq!(statuses, [200, 409], "{} / {}", x.1, y.1);
        let refused = if x.0 == 409 { &x } else { &y };
        assert_eq!(
            refused.1["error"]["code"], "already_approved",
            "{}",
            refused.1
        );
        let (_, v) = get_as(&p.b, "alice", &format!("/v1/requests/{id}")).await;
        assert_eq!(v["state"], "pending", "one approver counts once: {v}");
        assert_eq!(v["approvals"].as_array().unwrap().len(), 1, "{v}");
        for (name, r) in [("a", "a"), ("b", "b")] {
            let out =
                jit_ca::admin::audit_verify(&if name == "a" { p.a.path() } else { p.b.path() });
            assert!(out.is_ok(), "audit verify on {r}: {out:?}");
        }
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn a_call_replayed_to_the_other_replica_is_refused() {
        let p = pair(POLICY);
        let now = p.a.now();
        // A read.
        let nonce = auth::new_nonce();
        let (s, _, _) =
            p.a.send(p.a.signed_request(p.a.key("alice"), "GET", "/v1/whoami", b"", now, &nonce))
                .await;
        assert_eq!(s, 200);
        let (s, body, _) =
            p.b.send(p.b.signed_request(p.b.key("alice"), "GET", "/v1/whoami", b"", now, &nonce))
                .await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_error(&(s, v), 401, "replayed_nonce");
        // A write: the same signed request to B is refused and creates nothing.
        let pk = p.a.key("alice").public_key().to_openssh().unwrap();
        let body = serde_json::to_vec(
            &json!({"role": "quick", "duration_secs": 600, "reason": "", "public_key": pk}),
        )
        .unwrap();
        let nonce = auth::new_nonce();
        let (s, out, _) = p
            .a
            .send(p.a.signed_request(p.a.key("alice"), "POST", "/v1/requests", &body, now, &nonce))
            .await;
        assert_eq!(s, 201, "{}", String::from_utf8_lossy(&out));
        let (s, out, _) = p
            .b
            .send(p.b.signed_request(p.b.key("alice"), "POST", "/v1/requests", &body, now, &nonce))
            .await;
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_error(&(s, v), 401, "replayed_nonce");
        let (_, mine) = get_as(&p.b, "alice", "/v1/requests?filter=mine").await;
        assert_eq!(mine["requests"].as_array().unwrap().len(), 1, "{mine}");
        // And the other way round.
        let nonce = auth::new_nonce();
        let (s, _, _) =
            p.b.send(p.b.signed_request(p.b.key("bob"), "GET", "/v1/whoami", b"", now, &nonce))
                .await;
        assert_eq!(s, 200);
        let (s, body, _) =
            p.a.send(p.a.signed_request(p.a.key("bob"), "GET", "/v1/whoami", b"", now, &nonce))
                .await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_error(&(s, v), 401, "replayed_nonce");
    }

    /// Waits up to `secs` for B to serve the revocation list A serves (byte for byte).
    async fn b_serves_what_a_serves(p: &Pair, secs: u64) -> Result<Vec<u8>, String> {
        let (_, want, _) = p.a.get("/v1/revocations", None).await;
        let start = Instant::now();
        loop {
            let (_, got, _) = p.b.get("/v1/revocations", None).await;
            if got == want {
                return Ok(got);
            }
            if start.elapsed() > Duration::from_secs(secs) {
                return Err(format!(
                    "after {secs} s B serves\n{}\nA serves\n{}",
                    String::from_utf8_lossy(&got),
                    String::from_utf8_lossy(&want)
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn issue_quick(p: &Pair) -> (String, String) {
        let (s, v) = p.a.request("alice", "quick", 600, "").await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["state"], "approved", "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let (s, c) = get_as(&p.a, "alice", &format!("/v1/requests/{id}/certificate")).await;
        assert_eq!(s, 200, "{c}");
        let grant = jit_common::UnverifiedGrant::parse(c["grant"].as_str().unwrap().as_bytes())
            .unwrap()
            .claims_unverified()
            .id
            .clone();
        (id, grant)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn a_revocation_on_one_replica_is_served_by_the_other_within_two_seconds() {
        let mut p = pair(POLICY);
        p.start_threads();
        let (id, grant) = issue_quick(&p).await;
        let (_, before, _) = p.b.get("/v1/revocations", None).await;
        let (_, krl_before, _) = p.b.get("/v1/krl", None).await;
        let (s, v) =
            p.a.call(
                "alice",
                "POST",
                &format!("/v1/requests/{id}/revoke"),
                json!({"reason": "done"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let served = b_serves_what_a_serves(&p, 2).await.unwrap();
        assert_ne!(served, before, "B serves a new list");
        assert!(
            String::from_utf8_lossy(&served).contains(&grant),
            "the revoked grant is on it"
        );
        let (_, krl_after, _) = p.b.get("/v1/krl", None).await;
        assert_ne!(krl_after, krl_before, "B's KRL changed too");
        // B's host documents no longer carry the grant.
        let (_, doc, _) = p.b.get("/v1/hosts/web-1/grants", None).await;
        assert!(!String::from_utf8_lossy(&doc).contains(&grant));

        // B's listener connection killed: the change still arrives within 2 s (reconnect, or the
        // once-a-second poll).
        let killed = p.psql(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name LIKE 'jit-ca/b/%listen%'",
        );
        assert_eq!(killed, "1", "B's listener connection was found and killed");
        let (id2, grant2) = issue_quick(&p).await;
        // Issued on A: B's host document shows it within 2 s too (grants change).
        let start = Instant::now();
        loop {
            let (_, doc, _) = p.b.get("/v1/hosts/web-1/grants", None).await;
            if String::from_utf8_lossy(&doc).contains(&grant2) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "B never served the new grant"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let (s, v) =
            p.a.call(
                "alice",
                "POST",
                &format!("/v1/requests/{id2}/revoke"),
                json!({"reason": "x"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let served = b_serves_what_a_serves(&p, 2).await.unwrap();
        assert!(String::from_utf8_lossy(&served).contains(&grant2));
        // And an operator revocation through B's data directory reaches A.
        let (id3, grant3) = issue_quick(&p).await;
        jit_ca::admin::revoke_grant(&p.b.path(), &grant3, "operator", p.a.now()).ok();
        let _ = id3;
        let start = Instant::now();
        loop {
            let (_, got, _) = p.a.get("/v1/revocations", None).await;
            if String::from_utf8_lossy(&got).contains(&grant3) {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(2),
                "A never served the operator's revocation"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn the_expiry_sweep_runs_once_with_two_replicas() {
        let p = pair(POLICY);
        let mut ids = Vec::new();
        for (user, role) in [
            ("alice", "db-admin"),
            ("dave", "db-admin"),
            ("alice", "two-man"),
            ("dave", "two-man"),
        ] {
            let (s, v) = p.a.request(user, role, 600, "pending").await;
            assert_eq!(s, 201, "{v}");
            ids.push(v["id"].as_str().unwrap().to_string());
        }
        p.a.clock.advance(2 * 3600);
        // Both replicas sweep at the same moment, several times.
        let mut expired = 0;
        for _ in 0..3 {
            let (a, b) = (p.a.ca.clone(), p.b.ca.clone());
            let (x, y) = tokio::join!(
                tokio::task::spawn_blocking(move || a.sweep()),
                tokio::task::spawn_blocking(move || b.sweep())
            );
            expired += x.unwrap().unwrap() + y.unwrap().unwrap();
        }
        assert_eq!(expired, ids.len(), "each request expired once");
        for id in &ids {
            assert_eq!(events_for(&p, "expiry", id), 1, "{id}: one expiry record");
        }
        // One of them leads the sweep; the other does not run it.
        let leaders = p.cas().iter().filter(|c| c.leads(Job::Sweep)).count();
        assert_eq!(leaders, 1, "one sweep leader");
        // The leader's session gone (its CA dropped): the other takes the job.
        let a_leads = p.a.ca.leads(Job::Sweep);
        let Pair { a, b, .. } = p;
        let (gone, stays) = if a_leads { (a, b) } else { (b, a) };
        drop(gone);
        let start = Instant::now();
        while !stays.ca.leads(Job::Sweep) {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the other replica never took the sweep"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn a_notification_is_delivered_once_with_two_replicas() {
        use crate::receiver::{SECRET, Say, receiver_at};
        let (url, got) = receiver_at("/hook", Say::Answer(200, String::new()));
        let sink = format!(
            "[[notify]]\nname = \"ops\"\nurl = \"{url}\"\nformat = \"standard\"\nsecret_file = \"keys/ops.whsec\"\n"
        );
        let p = pair_with(POLICY, &sink, &[("keys/ops.whsec", SECRET)]);
        let wa = jit_ca::notify::worker::start(p.a.ca.clone()).unwrap();
        let wb = jit_ca::notify::worker::start(p.b.ca.clone()).unwrap();
        // Events made on both replicas.
        let (s, v) = p.a.request("alice", "db-admin", 600, "through A").await;
        assert_eq!(s, 201, "{v}");
        let (s, w) = p.b.request("dave", "db-admin", 600, "through B").await;
        assert_eq!(s, 201, "{w}");
        let mut ids = std::collections::BTreeMap::<String, usize>::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(g) = got.recv_timeout(Duration::from_millis(200)) {
                *ids.entry(g.headers["webhook-id"].clone()).or_default() += 1;
            }
            // Both created events arrived, then 3 s more for a duplicate to show.
            if ids.len() >= 2 && deadline - Instant::now() > Duration::from_secs(3) {
                std::thread::sleep(Duration::from_secs(3));
                while let Ok(g) = got.try_recv() {
                    *ids.entry(g.headers["webhook-id"].clone()).or_default() += 1;
                }
                break;
            }
        }
        assert!(ids.len() >= 2, "both events delivered: {ids:?}");
        assert!(
            ids.values().all(|n| *n == 1),
            "each delivered once: {ids:?}"
        );
        drop((wa, wb));
    }

    #[tokio::test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn db_status_lists_both_replicas_with_their_lag_and_leaders() {
        let mut p = pair(POLICY);
        p.start_threads();
        assert!(p.a.ca.leads(Job::Sweep) || p.b.ca.leads(Job::Sweep));
        let start = Instant::now();
        loop {
            let s = jit_ca::admin::db_status(&p.a.path(), p.a.now()).unwrap();
            let names: Vec<&str> = s.replicas.iter().map(|r| r.name.as_str()).collect();
            let leaders = s
                .replicas
                .iter()
                .filter(|r| r.jobs.iter().any(|j| j == "sweep"))
                .count();
            // The heartbeat after the leads() above names the job (every 5 s).
            if names.contains(&"a") && names.contains(&"b") && leaders > 0 {
                assert_eq!(s.backend, "postgresql");
                assert_eq!(s.schema_version, s.binary_schema_version);
                assert!(s.replicas.iter().all(|r| !r.mismatch), "{s:?}");
                assert!(s.problems.is_empty(), "{:?}", s.problems);
                assert_eq!(
                    s.replicas
                        .iter()
                        .filter(|r| r.jobs.iter().any(|j| j == "sweep"))
                        .count(),
                    1,
                    "one sweep leader: {s:?}"
                );
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "replicas not listed: {names:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // A different policy on B: flagged, and --check would fail.
        let policy = p.b.path().join("policy.toml");
        let mut text = std::fs::read_to_string(&policy).unwrap();
        text.push_str("\n# changed on b only\n");
        std::fs::remove_file(&policy).unwrap();
        std::fs::write(&policy, text).unwrap();
        p.b.ca.reload_policy().unwrap();
        let start = Instant::now();
        loop {
            let s = jit_ca::admin::db_status(&p.a.path(), p.a.now()).unwrap();
            if s.replicas.iter().any(|r| r.mismatch) {
                assert!(!s.problems.is_empty());
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "mismatch not flagged: {s:?}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// A new grant key for B (`keys/grant_new`, mode 0600); `grant_keys` names it first,
    /// followed by `also` (the old key during a rotation, or nothing: keys copied wrongly).
    fn give_b_a_new_grant_key(p: &mut Pair, also: &[&str]) {
        let tmp = tempfile::tempdir().unwrap();
        jit_ca::admin::init(&tmp.path().join("ca")).unwrap();
        let dir = p.b.path();
        std::fs::copy(tmp.path().join("ca/keys/grant"), dir.join("keys/grant_new")).unwrap();
        let cfg = dir.join("config.toml");
        let mut keys = vec!["\"keys/grant_new\"".to_string()];
        keys.extend(also.iter().map(|k| format!("\"{k}\"")));
        let text: String = std::fs::read_to_string(&cfg)
            .unwrap()
            .lines()
            .map(|l| {
                if l.starts_with("grant_keys") {
                    format!("grant_keys = [{}]\n", keys.join(", "))
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        std::fs::write(&cfg, text).unwrap();
        p.b.restart();
    }

    fn stored_sequence(p: &Pair) -> u64 {
        p.psql("SELECT v FROM meta WHERE k = 'revocation_sequence'")
            .parse()
            .unwrap()
    }

    /// Every way a replica picks up its peer's list, on both, several times.
    fn pick_up_everything(p: &Pair) {
        for _ in 0..4 {
            for ca in p.cas() {
                ca.pick_up_peer_changes().unwrap();
                ca.poll_peers().unwrap();
                ca.pick_up_external_changes().unwrap();
                ca.sweep().unwrap();
            }
        }
    }

    /// Replicas whose grant keys differ (keys copied wrongly): a pick-up never signs the
    /// other's list anew, so the stored sequence does not climb (it used to, one re-sign
    /// per pick-up on each side: a NOTIFY ping-pong without end). Each keeps serving a list
    /// it signed itself.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn replicas_with_different_grant_keys_do_not_re_sign_each_others_list() {
        let mut p = pair(POLICY);
        give_b_a_new_grant_key(&mut p, &[]);
        let (id, _) = issue_quick(&p).await;
        let (s, v) =
            p.a.call(
                "alice",
                "POST",
                &format!("/v1/requests/{id}/revoke"),
                json!({"reason": "done"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let after_revoke = stored_sequence(&p);
        let (_, b_before, _) = p.b.get("/v1/revocations", None).await;
        pick_up_everything(&p);
        assert_eq!(
            stored_sequence(&p),
            after_revoke,
            "no replica re-signed the list on a pick-up"
        );
        let (_, a_serves, _) = p.a.get("/v1/revocations", None).await;
        assert_eq!(
            String::from_utf8(a_serves).unwrap().trim_end(),
            p.psql("SELECT v FROM meta WHERE k = 'revocations'"),
            "A serves the stored list it signed"
        );
        let (_, b_serves, _) = p.b.get("/v1/revocations", None).await;
        assert_eq!(b_serves, b_before, "B keeps serving the list it had");
        assert_eq!(
            p.b.ca.revocation_lag(),
            after_revoke - p.b.ca.published().revocation_sequence,
            "B's lag shows it is behind"
        );
    }

    /// A grant-key rotation done on B first (new key signs, old key still listed): B serves
    /// A's list as it is (it verifies with the old key) instead of signing it anew.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn during_a_grant_key_rotation_replicas_serve_the_same_list() {
        let mut p = pair(POLICY);
        let before = stored_sequence(&p);
        give_b_a_new_grant_key(&mut p, &["keys/grant"]);
        assert_eq!(stored_sequence(&p), before, "B's start reused A's list");
        let (id, grant) = issue_quick(&p).await;
        let (s, v) =
            p.a.call(
                "alice",
                "POST",
                &format!("/v1/requests/{id}/revoke"),
                json!({"reason": "done"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let after_revoke = stored_sequence(&p);
        pick_up_everything(&p);
        assert_eq!(stored_sequence(&p), after_revoke, "nothing re-signed");
        let (_, a_serves, _) = p.a.get("/v1/revocations", None).await;
        let (_, b_serves, _) = p.b.get("/v1/revocations", None).await;
        assert_eq!(a_serves, b_serves, "both serve A's list, byte for byte");
        assert!(String::from_utf8_lossy(&b_serves).contains(&grant));
    }

    /// Each replica admits grants for one host up to its share of the 4 MiB budget (the
    /// replicas seen in the last minute): N replicas issuing at the same moment, each
    /// against its own snapshot, stay within 4 MiB together (N × 4 MiB before).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn each_replica_admits_its_share_of_a_hosts_document_budget() {
        let p = pair(POLICY);
        let max = jit_ca::service::MAX_HOST_DOCUMENT;
        assert_eq!(p.a.ca.host_document_limit(), max, "before any heartbeat");
        p.a.ca.heartbeat().unwrap();
        assert_eq!(p.a.ca.host_document_limit(), max, "alone");
        p.b.ca.heartbeat().unwrap();
        p.a.ca.heartbeat().unwrap();
        assert_eq!(p.a.ca.host_document_limit(), max / 2);
        assert_eq!(p.b.ca.host_document_limit(), max / 2);
        // B's heartbeat older than a minute: A has the whole budget again.
        p.a.clock.advance(jit_ca::service::REPLICAS_SEEN_SECS + 1);
        p.a.ca.heartbeat().unwrap();
        assert_eq!(p.a.ca.host_document_limit(), max);
    }
}

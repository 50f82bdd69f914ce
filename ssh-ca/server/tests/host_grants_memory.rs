//! Issue 11, item 9: anonymous `GET /v1/hosts/{host}/grants` with distinct host names must
//! not grow the CA's memory with the number of names. Its own test binary (one test), so
//! the process's resident set measures this test alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jit_test_kit::harness::*;
use serde_json::{Value, json};

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn gauge(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in /metrics"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn twenty_thousand_distinct_host_names_share_a_few_documents() {
    let policy = format!(
        "{POLICY}
[roles.fleet]
hosts = [\"a-*\", \"b-*\", \"*\"]
sudo = true
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
require_reason = false
auto_approve = true
"
    );
    // 30 active grants per requester: above the default per-user bound (item 4).
    let h = Harness::with_policy_and_config(&policy, &[("max_active_grants_per_user", "100")]);
    // 60 grants, each with a long reason (about 1.6 KiB per grant): 20 for a-*, 20 for
    // b-*, 20 for every host; spread over the requesters.
    let reason = "r".repeat(1000);
    for i in 0..60 {
        let user = ["alice", "dave"][i % 2];
        let hosts = [json!(["a-*"]), json!(["b-*"]), json!(["*"])][i % 3].clone();
        let pk = h.key(user).public_key().to_openssh().unwrap();
        let (s, v) = h
            .call(
                user,
                "POST",
                "/v1/requests",
                json!({"role": "fleet", "duration_secs": 3000, "reason": reason, "hosts": hosts, "public_key": pk}),
            )
            .await;
        assert_eq!(s, 201, "{}", v["error"]);
    }
    let (_, body, _) = h.get("/v1/hosts/a-0/grants", None).await;
    let one_doc = body.len() as u64;
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap()["grants"]
            .as_array()
            .unwrap()
            .len(),
        40
    );

    let before = rss_kib();
    for i in 0..20_000 {
        let prefix = ["a", "b", "c"][i % 3];
        let (s, body, _) = h
            .get(&format!("/v1/hosts/{prefix}-host-{i}/grants"), None)
            .await;
        assert_eq!(s, 200);
        assert!(body.len() as u64 <= one_doc + 64);
        if i % 2000 == 1999 {
            // Fail fast (and before the machine swaps) if memory grows per name.
            let grown = rss_kib().saturating_sub(before);
            assert!(
                grown < 128 * 1024,
                "RSS grew {grown} KiB after {} GETs",
                i + 1
            );
        }
    }
    let grown_kib = rss_kib().saturating_sub(before);

    let (_, metrics, _) = h.get("/metrics", None).await;
    let metrics = String::from_utf8(metrics).unwrap();
    let documents = gauge(&metrics, "jit_ca_host_grants_cache_documents");
    let bytes = gauge(&metrics, "jit_ca_host_grants_cache_bytes");
    let names = gauge(&metrics, "jit_ca_host_grants_cache_names");
    // Three grant sets: {a-*, *}, {b-*, *}, {*}.
    assert_eq!(documents, 3, "{metrics}");
    assert!(bytes <= 3 * one_doc, "{bytes} bytes cached");
    assert!(names <= 20_000);
    let s = h.ca.host_cache_stats();
    assert_eq!(s.documents as u64, documents);
    // One copy per name (the old cache) would be 20,000 x ~65 KiB, over 1 GiB.
    assert!(
        grown_kib < 64 * 1024,
        "RSS grew {grown_kib} KiB over 20,000 distinct names"
    );
}

//! Issue 11, items 9 and 10: clients that ask for a large host grants document and never
//! read the answer must not each hold a copy of it in the CA (the connection stays open until
//! the idle timeout). Its own test binary (one test), so the process's resident set measures
//! this test alone.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unread_answers_share_the_cached_document() {
    let policy = format!(
        "{POLICY}
[roles.fleet]
hosts = [\"*\"]
sudo = true
max_duration = \"1h\"
requesters = [\"group:dev\"]
approvers = [\"group:dba\"]
require_reason = false
auto_approve = true
"
    );
    let h = Harness::with_policy_and_config(&policy, &[("max_active_grants_per_user", "400")]);
    // 300 grants of about 13 KB each (48 long host selectors): a 3.9 MB document for db-1,
    // more than loopback sockets take in (over a network they take in much less).
    for i in 0..300 {
        let mut hosts = vec![json!("*")];
        hosts.extend((0..48).map(|j| json!(format!("h{i}-{j}-{}", "x".repeat(240)))));
        let pk = h.key("alice").public_key().to_openssh().unwrap();
        let (s, v) = h
            .call(
                "alice",
                "POST",
                "/v1/requests",
                json!({"role": "fleet", "duration_secs": 3000, "reason": "r", "hosts": hosts, "public_key": pk}),
            )
            .await;
        assert_eq!(s, 201, "{}", v["error"]);
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = h.app.clone();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let request = b"GET /v1/hosts/db-1/grants HTTP/1.1\r\nHost: ca\r\n\r\n";
    // One client that reads: the whole document, with its length.
    let doc_len = tokio::task::spawn_blocking(move || {
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"GET /v1/hosts/db-1/grants HTTP/1.1\r\nHost: ca\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        s.read_to_end(&mut got).unwrap();
        let text = String::from_utf8(got).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let len: usize = head
            .lines()
            .find_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length: ")
                    .map(str::to_string)
            })
            .unwrap_or_else(|| panic!("no Content-Length: {head}"))
            .parse()
            .unwrap();
        assert_eq!(len, body.len());
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["host"], "db-1");
        assert_eq!(v["grants"].as_array().unwrap().len(), 300);
        len
    })
    .await
    .unwrap();
    assert!(doc_len > 3_500_000, "{doc_len}");

    // 100 clients that ask and never read.
    let before = rss_kib();
    let idle = tokio::task::spawn_blocking(move || {
        (0..100)
            .map(|_| {
                let mut s = std::net::TcpStream::connect(addr).unwrap();
                s.write_all(request).unwrap();
                s
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let grown_kib = rss_kib().saturating_sub(before);
    drop(idle);
    // A copy per connection would be 100 x (3.8 MB less what the sockets take), over 100 MiB.
    assert!(
        grown_kib < 48 * 1024,
        "RSS grew {grown_kib} KiB with 100 unread {doc_len}-byte answers"
    );
}

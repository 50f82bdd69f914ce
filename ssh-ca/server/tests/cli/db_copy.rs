//! Issue 17: `jit-ca db copy` moves an embedded store into PostgreSQL, verified.
//!
//! A store with a few thousand requests in every state (auto-approved, pending, denied,
//! revoked, extended), their certificates, nonces, the audit chain and notification outbox
//! rows is copied with the real binary; then:
//!   * the report says every table and the audit chain are the same on both sides, and
//!     `jit-ca audit verify` passes on both data directories with the same record count;
//!   * a second copy into the now non-empty database is refused, as is a copy while
//!     `jit-ca serve` runs on the directory;
//!   * a CA on PostgreSQL continues the serials above every serial SQLite handed out and
//!     the revocation sequence above the stored one, and refuses a call replayed from
//!     before the copy.
//!
//! Needs `JIT_TEST_POSTGRES` (tests/pg-tests.sh) and fails without it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use jit_api::auth;
use jit_ca::clock::FixedClock;
use jit_ca::service::Ca;
use jit_test_kit::harness::*;
use jit_test_kit::keys;
use serde_json::{Value, json};

fn jit_ca(args: &[&str]) -> Output {
    Command::new(JIT_CA)
        .args(args)
        .env_remove("JIT_CA_DIR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// Sets top-level `key = value` lines (replacing the template's) and appends `tables`.
fn set_config(dir: &Path, lines: &str) {
    set_config_tables(dir, lines, "");
}

fn set_config_tables(dir: &Path, lines: &str, tables: &str) {
    let cfg = dir.join("config.toml");
    let old = std::fs::read_to_string(&cfg).unwrap();
    let keys: Vec<String> = lines
        .lines()
        .filter_map(|l| l.split_once(" = ").map(|(k, _)| format!("{k} = ")))
        .collect();
    let kept: Vec<&str> = old
        .lines()
        .filter(|l| !keys.iter().any(|k| l.starts_with(k.as_str())))
        .collect();
    // Top-level keys first: the template ends with tables ([tls] examples are comments).
    let mut t = format!("{lines}\n{}\n", kept.join("\n"));
    t.push_str(tables);
    t.push('\n');
    std::fs::remove_file(&cfg).unwrap();
    jit_test_kit::fixtures::write_mode(&cfg, t.as_bytes(), 0o600);
}

/// An auto-approved role whose windows can be extended (up to 4 h without approvals).
const SELF_SERVE: &str = r#"
[roles.self-serve]
hosts = ["dev-*"]
sudo = true
max_duration = "4h"
requesters = ["group:dev"]
approvers = ["group:dba"]
auto_approve = true
require_reason = false
"#;

/// A SQLite data directory (whatever JIT_TEST_POSTGRES says: this is the copy's source).
fn sqlite_harness(tmp: tempfile::TempDir) -> Harness {
    let dir = data_dir(&tmp);
    jit_ca::admin::init(&dir).unwrap();
    std::fs::remove_file(dir.join("policy.toml")).unwrap();
    std::fs::write(dir.join("policy.toml"), format!("{POLICY}{SELF_SERVE}")).unwrap();
    set_config_tables(
        &dir,
        "max_active_grants_per_user = 10000\nmax_pending_requests_per_user = 100",
        "[[notify]]\nname = \"ops\"\nurl = \"http://127.0.0.1:9/hook\"\nformat = \"slack\"",
    );
    let mut users = HashMap::new();
    for (name, groups) in USERS {
        let key = keys::user(name);
        let (_, pub_path) = keys::write_pair(tmp.path(), name, &key);
        let groups: Vec<String> = groups.iter().map(|s| s.to_string()).collect();
        jit_ca::admin::user_add(&dir, name, &pub_path, &groups, T0).unwrap();
        users.insert(name.to_string(), key);
    }
    assert!(
        !std::fs::read_to_string(dir.join("config.toml"))
            .unwrap()
            .contains("\ndatabase ="),
        "the source must be SQLite"
    );
    let clock = Arc::new(FixedClock::new(T0));
    let ca = Arc::new(Ca::open(&dir, clock.clone()).unwrap());
    Harness {
        app: jit_ca::api::router(ca.clone()),
        ca,
        clock,
        keys: users,
        dir: tmp,
    }
}

/// The same CA on PostgreSQL: a copy of `from`'s keys, config and policy naming `database`.
fn postgres_dir(from: &Path, to: &Path, database: &str) {
    std::fs::create_dir_all(to.join("keys")).unwrap();
    for f in ["config.toml", "policy.toml"] {
        std::fs::copy(from.join(f), to.join(f)).unwrap();
    }
    for e in std::fs::read_dir(from.join("keys")).unwrap() {
        let e = e.unwrap();
        std::fs::copy(e.path(), to.join("keys").join(e.file_name())).unwrap();
    }
    set_config(to, &format!("database = {database:?}"));
}

async fn fill(h: &Harness, n: usize) -> (usize, usize) {
    let (mut approved, mut denied) = (0, 0);
    for i in 0..n {
        match i % 8 {
            // Denied: dave asks, bob refuses.
            0 | 1 => {
                let (s, v) = h
                    .request("dave", "db-admin", 600, &format!("deny {i}"))
                    .await;
                assert_eq!(s, 201, "{v}");
                let id = v["id"].as_str().unwrap();
                let (s, v) = h
                    .call(
                        "bob",
                        "POST",
                        &format!("/v1/requests/{id}/deny"),
                        json!({"reason": "no"}),
                    )
                    .await;
                assert_eq!(s, 200, "{v}");
                denied += 1;
            }
            // Auto-approved, some revoked, some extended.
            _ => {
                let (s, v) = h.request("alice", "self-serve", 600, "").await;
                assert_eq!(s, 201, "{v}");
                assert_eq!(v["state"], "approved", "{v}");
                let id = v["id"].as_str().unwrap();
                approved += 1;
                if i % 8 == 2 {
                    let (s, v) = h
                        .call(
                            "alice",
                            "POST",
                            &format!("/v1/requests/{id}/revoke"),
                            json!({"reason": "done"}),
                        )
                        .await;
                    assert_eq!(s, 200, "{v}");
                } else if i % 8 == 3 {
                    let (s, v) = h
                        .call(
                            "alice",
                            "POST",
                            &format!("/v1/requests/{id}/extend"),
                            json!({"duration_secs": 900}),
                        )
                        .await;
                    assert_eq!(s, 200, "{v}");
                }
            }
        }
    }
    (approved, denied)
}

fn revocation_sequence(body: &[u8]) -> u64 {
    jit_common::revocation::parse_claims_unverified(body)
        .unwrap()
        .sequence
}

#[test]
fn db_status_of_a_sqlite_directory_and_check() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ca");
    let d = dir.to_str().unwrap();
    assert!(jit_ca(&["init", "--dir", d]).status.success());
    let out = jit_ca(&["db", "status", "--dir", d]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backend: sqlite"), "{}", text(&out));
    let out = jit_ca(&["db", "status", "--dir", d, "--json", "--check"]);
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend"], "sqlite");
    assert_eq!(v["schema_version"], v["binary_schema_version"]);
    assert!(v["sqlite"]["path"].as_str().unwrap().ends_with("jit.db"));
}

/// PostgreSQL only: `--skip pg::` leaves them to tests/pg-tests.sh.
mod pg {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    async fn db_copy_moves_a_busy_store_into_postgresql_verified() {
        jit_test_kit::replicas::require_postgres();
        let h = sqlite_harness(tempfile::tempdir().unwrap());
        let (approved, denied) = fill(&h, 2400).await;
        // Pending ones (one per requester and role) and their approvals in progress.
        let (_, p1) = h.request("alice", "two-man", 600, "pending").await;
        let pending_id = p1["id"].as_str().unwrap().to_string();
        assert_eq!(h.approve("bob", &pending_id).await.0, 200);
        let (_, _) = h.request("dave", "db-admin", 600, "still pending").await;
        h.ca.notify_fan_out().unwrap();
        // A call made before the copy (its nonce is in the store once flushed).
        let now = h.now();
        let nonce = auth::new_nonce();
        let before = h.signed_request(h.key("alice"), "GET", "/v1/whoami", b"", now, &nonce);
        assert_eq!(h.send(before).await.0, 200);
        h.ca.flush_nonces().unwrap();
        let (_, served, _) = h.get("/v1/revocations", None).await;
        let sequence_before = revocation_sequence(&served);
        let dir = h.path();
        let db = dir.join("jit.db");
        let max_serial: i64 = rusqlite::Connection::open(&db)
            .unwrap()
            .query_row("SELECT MAX(serial) FROM certs", [], |r| r.get(0))
            .unwrap();
        let clock = h.clock.clone();
        let keys = h.keys.clone();
        let Harness {
            ca, app, dir: tmp, ..
        } = h;
        drop(app);
        drop(ca);

        let database = jit_test_kit::replicas::fresh_database();
        let d = dir.to_str().unwrap();
        let out = jit_ca(&["db", "copy", "--dir", d, "--to", &database, "--json"]);
        assert!(out.status.success(), "{}", text(&out));
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(report["ok"], true, "{report}");
        let tables = report["tables"].as_array().unwrap();
        assert_eq!(tables.len(), 12, "{report}");
        for t in tables {
            assert_eq!(t["same"], true, "{t}");
            assert_eq!(t["sqlite_rows"], t["postgres_rows"], "{t}");
        }
        let rows = |name: &str| {
            tables.iter().find(|t| t["table"] == name).unwrap()["postgres_rows"]
                .as_u64()
                .unwrap()
        };
        assert_eq!(rows("requests") as usize, approved + denied + 2);
        assert!(rows("certs") as usize >= approved, "{report}");
        assert!(rows("approvals") > 0 && rows("notify_outbox") > 0 && rows("notify_delivery") > 0);
        assert!(rows("nonce_log") > 0 && rows("audit") > 1000, "{report}");
        assert_eq!(
            report["audit_sqlite"]["records"],
            report["audit_postgres"]["records"]
        );
        assert_eq!(
            report["audit_sqlite"]["head"],
            report["audit_postgres"]["head"]
        );
        assert!(report["serials_above"].as_i64().unwrap() >= max_serial);

        // The text report, and the second copy refused: the target is not empty.
        let again = jit_ca(&["db", "copy", "--dir", d, "--to", &database]);
        assert!(!again.status.success());
        assert!(text(&again).contains("not empty"), "{}", text(&again));

        // Both sides verify, with the same number of records.
        let pg_tmp = tempfile::tempdir().unwrap();
        let pg_dir = pg_tmp.path().join("ca");
        postgres_dir(&dir, &pg_dir, &database);
        let verify = |dir: &Path| -> Value {
            let o = jit_ca(&["audit", "verify", "--dir", dir.to_str().unwrap(), "--json"]);
            assert!(o.status.success(), "{}", text(&o));
            serde_json::from_slice(&o.stdout).unwrap()
        };
        let (vs, vp) = (verify(&dir), verify(&pg_dir));
        assert_eq!(vs["records"], vp["records"], "{vs} {vp}");
        let status = jit_ca(&["db", "status", "--dir", pg_dir.to_str().unwrap(), "--json"]);
        assert!(status.status.success(), "{}", text(&status));
        let status: Value = serde_json::from_slice(&status.stdout).unwrap();
        assert_eq!(status["backend"], "postgresql");
        assert_eq!(
            status["revocation_sequence"].as_u64().unwrap(),
            sequence_before
        );

        // A CA on PostgreSQL continues where SQLite stopped.
        let ca = Arc::new(Ca::open(&pg_dir, clock.clone()).unwrap());
        let pg = Harness {
            app: jit_ca::api::router(ca.clone()),
            ca,
            clock,
            keys,
            dir: pg_tmp,
        };
        let replay = pg.signed_request(pg.key("alice"), "GET", "/v1/whoami", b"", now, &nonce);
        let (s, body, _) = pg.send(replay).await;
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_error(&(s, v), 401, "replayed_nonce");
        let (s, v) = pg.request("alice", "quick", 600, "").await;
        assert_eq!(s, 201, "{v}");
        let id = v["id"].as_str().unwrap().to_string();
        let (_, cert) = pg
            .call(
                "alice",
                "GET",
                &format!("/v1/requests/{id}/certificate"),
                Value::Null,
            )
            .await;
        let serial = cert["serial"].as_i64().unwrap();
        assert!(
            serial > max_serial,
            "serial {serial} after the copy, max before {max_serial}"
        );
        let (s, v) = pg
            .call(
                "alice",
                "POST",
                &format!("/v1/requests/{id}/revoke"),
                json!({"reason": "x"}),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let (_, served, _) = pg.get("/v1/revocations", None).await;
        assert!(revocation_sequence(&served) > sequence_before);
        // The pending two-man request keeps bob's approval: carol's completes it.
        let (s, v) = pg.approve("carol", &pending_id).await;
        assert_eq!(s, 200, "{v}");
        assert_eq!(v["state"], "approved", "{v}");
        drop(tmp);
    }

    #[test]
    #[ignore = "needs PostgreSQL (JIT_TEST_POSTGRES)"]
    fn db_copy_refuses_while_serve_runs_and_a_postgres_directory() {
        jit_test_kit::replicas::require_postgres();
        let tmp = tempfile::tempdir().unwrap();
        let dir: PathBuf = tmp.path().join("ca");
        let d = dir.to_str().unwrap();
        assert!(jit_ca(&["init", "--dir", d]).status.success());
        let database = jit_test_kit::replicas::fresh_database();
        // While serve holds the directory's lock.
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(dir.join("serve.lock"))
            .unwrap();
        lock.try_lock().unwrap();
        let out = jit_ca(&["db", "copy", "--dir", d, "--to", &database]);
        assert!(!out.status.success());
        assert!(text(&out).contains("serve"), "{}", text(&out));
        drop(lock);
        // A URL with a password is refused, naming the option to use.
        let out = jit_ca(&[
            "db",
            "copy",
            "--dir",
            d,
            "--to",
            "postgres://u:hunter2pw@db.example.com/jit?sslmode=require",
        ]);
        assert!(!out.status.success());
        assert!(text(&out).contains("password"), "{}", text(&out));
        assert!(
            !text(&out).contains("hunter2pw"),
            "the password is never printed: {}",
            text(&out)
        );
        // An empty store copies (and verifies) too.
        let out = jit_ca(&["db", "copy", "--dir", d, "--to", &database]);
        assert!(out.status.success(), "{}", text(&out));
        assert!(
            text(&out).contains("ok: both sides are the same"),
            "{}",
            text(&out)
        );
        // A directory already on PostgreSQL is not a source.
        set_config(&dir, &format!("database = {database:?}"));
        let out = jit_ca(&["db", "copy", "--dir", d, "--to", &database]);
        assert!(!out.status.success());
        assert!(
            text(&out).contains("already names a PostgreSQL database"),
            "{}",
            text(&out)
        );
    }
}

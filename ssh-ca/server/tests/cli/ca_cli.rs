//! CLI tests of `jit-ca`: the real binary on real directories and SQLite files.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use jit_test_kit::harness::*;
use jit_test_kit::pg::Sql;

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

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_creates_keys_and_never_overwrites() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("d");
    let d = dir.to_str().unwrap();
    let o = jit_ca(&["init", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    for f in ["keys/user_ca", "keys/grant"] {
        assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        let key = ssh_key::PrivateKey::read_openssh_file(&dir.join(f)).unwrap();
        assert_eq!(key.algorithm(), ssh_key::Algorithm::Ed25519);
        assert!(!key.is_encrypted());
    }
    assert_eq!(mode(&dir.join("keys")), 0o700);
    let policy = std::fs::read_to_string(dir.join("policy.toml")).unwrap();
    assert!(
        policy.contains("# ") && policy.contains("[roles.db-admin]"),
        "policy.toml has commented examples"
    );
    assert!(
        std::fs::read_to_string(dir.join("config.toml"))
            .unwrap()
            .contains("pending_expiry")
    );

    let before = std::fs::read(dir.join("keys/user_ca")).unwrap();
    let o = jit_ca(&["init", "--dir", d]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("already exists; refusing to overwrite"),
        "{}",
        text(&o)
    );
    assert_eq!(std::fs::read(dir.join("keys/user_ca")).unwrap(), before);

    // A single existing file is enough to refuse, and nothing else is created.
    let dir2 = tmp.path().join("e");
    std::fs::create_dir(&dir2).unwrap();
    std::fs::write(dir2.join("policy.toml"), "# mine\n").unwrap();
    let o = jit_ca(&["init", "--dir", dir2.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("policy.toml"), "{}", text(&o));
    assert!(!dir2.join("keys/user_ca").exists());
    assert_eq!(
        std::fs::read_to_string(dir2.join("policy.toml")).unwrap(),
        "# mine\n"
    );
}

#[test]
fn keys_with_loose_permissions_are_refused() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    std::fs::set_permissions(
        dir.join("keys/grant"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let o = jit_ca(&["host-config", "--dir", dir.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(text(&o).contains("chmod 600"), "{}", text(&o));
    let o = jit_ca(&["policy", "check", "--dir", dir.to_str().unwrap()]);
    assert!(!o.status.success(), "{}", text(&o));
}

#[test]
fn users_add_list_remove() {
    let (tmp, _) = setup_dir(POLICY);
    let d = data_dir(&tmp);
    let d = d.to_str().unwrap();
    let key =
        ssh_key::PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let pub_path = write(
        tmp.path(),
        "frank.pub",
        key.public_key().to_openssh().unwrap().as_bytes(),
    );
    let priv_path = write(
        tmp.path(),
        "frank",
        key.to_openssh(ssh_key::LineEnding::LF).unwrap().as_bytes(),
    );

    let o = jit_ca(&[
        "user",
        "add",
        "frank",
        "--key",
        priv_path.to_str().unwrap(),
        "--dir",
        d,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("private key"), "{}", text(&o));
    let o = jit_ca(&[
        "user",
        "add",
        "Frank!",
        "--key",
        pub_path.to_str().unwrap(),
        "--dir",
        d,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("not a valid login name"), "{}", text(&o));
    let o = jit_ca(&[
        "user",
        "add",
        "frank",
        "--key",
        pub_path.to_str().unwrap(),
        "--group",
        "ops",
        "--group",
        "dev",
        "--dir",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["user"], "frank");
    // Same name again, or the same key for another user: refused.
    let o = jit_ca(&[
        "user",
        "add",
        "frank",
        "--key",
        pub_path.to_str().unwrap(),
        "--dir",
        d,
    ]);
    assert!(
        !o.status.success() && text(&o).contains("already exists"),
        "{}",
        text(&o)
    );
    let o = jit_ca(&[
        "user",
        "add",
        "gina",
        "--key",
        pub_path.to_str().unwrap(),
        "--dir",
        d,
    ]);
    assert!(
        !o.status.success() && text(&o).contains("already registered to user \"frank\""),
        "{}",
        text(&o)
    );

    let o = jit_ca(&["user", "list", "--dir", d, "--json"]);
    let users: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let frank = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == "frank")
        .unwrap();
    assert_eq!(frank["groups"], serde_json::json!(["dev", "ops"]));
    assert_eq!(
        frank["fingerprints"][0],
        key.public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string()
    );
    assert!(
        !users
            .as_array()
            .unwrap()
            .iter()
            .any(|u| u["name"] == "gina")
    );
    let o = jit_ca(&["user", "list", "--dir", d]);
    assert!(String::from_utf8_lossy(&o.stdout).contains("frank"));

    let o = jit_ca(&["user", "remove", "frank", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    let o = jit_ca(&["user", "remove", "frank", "--dir", d]);
    assert!(
        !o.status.success() && text(&o).contains("no user"),
        "{}",
        text(&o)
    );

    let events: Vec<String> = jit_ca::admin::audit_export(&data_dir(&tmp))
        .unwrap()
        .iter()
        .map(|r| r["event"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        events.iter().filter(|e| *e == "user_add").count(),
        USERS.len() + 1
    );
    assert_eq!(events.iter().filter(|e| *e == "user_remove").count(), 1);
}

#[test]
fn policy_check_reports_every_problem() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let d = dir.to_str().unwrap();
    let o = jit_ca(&["policy", "check", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("OK (3 roles"), "{}", text(&o));
    assert!(!text(&o).contains("warning"), "{}", text(&o));
    // A role nobody can fully approve is a warning, not an error.
    let o = jit_ca(&["user", "remove", "dave", "--dir", d]);
    assert!(o.status.success());
    let o = jit_ca(&["user", "remove", "carol", "--dir", d]);
    assert!(o.status.success());
    let o = jit_ca(&["user", "remove", "bob", "--dir", d]);
    assert!(o.status.success());
    let o = jit_ca(&["policy", "check", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o)
            .contains("roles.two-man: needs 2 approvals but only 1 registered user(s) may approve"),
        "{}",
        text(&o)
    );

    std::fs::write(
        dir.join("policy.toml"),
        r#"
[roles.a]
hosts = ["db 1"]
max_duration = "forever"
requesters = ["group:dev"]
approvers = ["group:dba"]
extensions = ["permit-everything"]
[roles.b]
hosts = ["x"]
max_duration = "1h"
requesters = ["group:nobody"]
approvers = []
"#,
    )
    .unwrap();
    let o = jit_ca(&["policy", "check", "--dir", d, "--json"]);
    assert!(!o.status.success());
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let errors: Vec<&str> = r["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e.as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 4, "{errors:#?}");
    for needle in [
        "roles.a.hosts",
        "roles.a.max_duration",
        "roles.a.extensions",
        "roles.b.approvers",
    ] {
        assert!(
            errors.iter().any(|e| e.contains(needle)),
            "{needle} missing in {errors:#?}"
        );
    }
    let o = jit_ca(&["policy", "check", "--dir", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("4 error(s)"), "{}", text(&o));

    // Config problems are reported in the same run.
    std::fs::write(
        dir.join("config.toml"),
        "listen = \"nowhere\"\nbackdate = \"soon\"\n",
    )
    .unwrap();
    let o = jit_ca(&["policy", "check", "--dir", d, "--json"]);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["errors"].as_array().unwrap().len(), 6, "{r}");

    // Unknown keys are errors, not silently ignored.
    std::fs::write(dir.join("config.toml"), "").unwrap();
    std::fs::write(dir.join("policy.toml"), "[roles.a]\nhosts=[\"h\"]\nmax_duration=\"1h\"\nrequesters=[\"u\"]\napprovers=[\"v\"]\napprovers_needed=2\n").unwrap();
    let o = jit_ca(&["policy", "check", "--dir", d]);
    assert!(!o.status.success());
    assert!(text(&o).contains("approvers_needed"), "{}", text(&o));
}

#[test]
fn host_config_is_the_shared_schema() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let o = jit_ca(&["host-config", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("set public_url"),
        "{}",
        text(&o)
    );
    std::fs::write(
        dir.join("config.toml"),
        "public_url = \"https://ca.example.com:8443\"\n",
    )
    .unwrap();
    let o = jit_ca(&["host-config", "--dir", dir.to_str().unwrap()]);
    assert!(o.stderr.is_empty(), "{}", text(&o));
    assert!(o.status.success(), "{}", text(&o));
    let t: toml::Table = toml::from_str(&String::from_utf8(o.stdout).unwrap()).unwrap();
    let mut keys: Vec<&str> = t.keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        vec![
            "break_glass_keys",
            "break_glass_max_window_secs",
            "clock_skew_secs",
            "grant_keys",
            "grant_writer",
            "hostnames",
            "mode",
            "revocation_max_age_secs",
            "server",
            "services",
            "state_dir",
            "user_ca_keys"
        ]
    );
    assert_eq!(t["server"].as_str(), Some("https://ca.example.com:8443"));
    assert_eq!(t["mode"].as_str(), Some("enforce"));
    // A finite staleness bound (12 h) and the break-glass window cap (24 h), never 0.
    assert_eq!(t["revocation_max_age_secs"].as_integer(), Some(43200));
    assert_eq!(t["break_glass_max_window_secs"].as_integer(), Some(86400));
    let ca_pub = std::fs::read_to_string(dir.join("keys/user_ca.pub")).unwrap();
    assert_eq!(
        t["user_ca_keys"].as_array().unwrap()[0].as_str(),
        Some(ca_pub.trim())
    );
    let grant_pub = std::fs::read_to_string(dir.join("keys/grant.pub")).unwrap();
    assert_eq!(
        t["grant_keys"].as_array().unwrap()[0].as_str(),
        Some(grant_pub.trim())
    );
    // A revocation_refresh that conflicts with hosts' default staleness bound is warned
    // about by host-config and policy check (hosts would deny while the CA works).
    std::fs::write(
        dir.join("config.toml"),
        "public_url = \"https://ca.example.com:8443\"\nrevocation_refresh = \"7d\"\n",
    )
    .unwrap();
    let o = jit_ca(&["host-config", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("revocation_max_age_secs = 43200") && err.contains("revocation_refresh"),
        "{}",
        text(&o)
    );
    let o = jit_ca(&["policy", "check", "--dir", dir.to_str().unwrap()]);
    assert!(
        text(&o).contains("revocation_max_age_secs = 43200"),
        "{}",
        text(&o)
    );
}

/// Creates a directory with a few audit records (through the CLI), returns (tmp, its
/// database).
fn audited_dir() -> (tempfile::TempDir, Sql) {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let o = jit_ca(&["audit", "verify", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("intact: {} records", USERS.len())),
        "{}",
        text(&o)
    );
    let db = Sql::of_dir(&dir);
    (tmp, db)
}

fn tamper(db: &Sql, sql: &str) {
    // The triggers stop accidents; someone with the file (the database owner) can drop them.
    db.unguard_audit();
    db.batch(sql);
}

fn verify_fails_naming(dir: &Path, needle: &str, bad: u64) {
    let o = jit_ca(&["audit", "verify", "--dir", dir.to_str().unwrap()]);
    assert!(!o.status.success(), "tampering not detected: {}", text(&o));
    assert!(
        text(&o).contains(needle),
        "expected {needle:?} in {}",
        text(&o)
    );
    let o = jit_ca(&["audit", "verify", "--dir", dir.to_str().unwrap(), "--json"]);
    assert!(!o.status.success());
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["ok"], false);
    assert_eq!(r["bad_record"], bad, "{r}");
}

#[test]
fn audit_verify_catches_an_edited_record() {
    let (tmp, db) = audited_dir();
    tamper(
        &db,
        "UPDATE audit SET details = replace(details, 'dba', 'dev') WHERE seq = 2",
    );
    verify_fails_naming(&data_dir(&tmp), "record 2 was altered", 2);
}

#[test]
fn audit_verify_catches_an_edited_actor_even_with_rehash_attempt() {
    let (tmp, db) = audited_dir();
    // Changing a record and recomputing its hash breaks the next record's link.
    let row = db.run(
        "SELECT time, event, details, prev_hash FROM audit WHERE seq = 3",
        &[],
    );
    let row: Vec<String> = row[0].iter().map(|v| v.clone().unwrap()).collect();
    let (time, event, details, prev): (i64, String, String, String) = (
        row[0].parse().unwrap(),
        row[1].clone(),
        row[2].clone(),
        row[3].clone(),
    );
    let forged = jit_ca::audit::hash(&prev, 3, time as u64, "mallory", &event, &details);
    tamper(
        &db,
        &format!("UPDATE audit SET actor = 'mallory', hash = '{forged}' WHERE seq = 3"),
    );
    verify_fails_naming(&data_dir(&tmp), "record 4 does not follow", 4);
}

#[test]
fn audit_verify_catches_a_deleted_record() {
    let (tmp, db) = audited_dir();
    tamper(&db, "DELETE FROM audit WHERE seq = 2");
    verify_fails_naming(&data_dir(&tmp), "record 2 is missing", 2);
}

#[test]
fn audit_verify_catches_reordered_records() {
    let (tmp, db) = audited_dir();
    tamper(
        &db,
        "UPDATE audit SET seq = -1 WHERE seq = 2; UPDATE audit SET seq = 2 WHERE seq = 3; UPDATE audit SET seq = 3 WHERE seq = -1;",
    );
    verify_fails_naming(&data_dir(&tmp), "record 2 does not follow", 2);
}

#[test]
fn audit_table_refuses_updates_without_tampering() {
    let (_tmp, db) = audited_dir();
    let e = db
        .try_run("UPDATE audit SET actor = 'x' WHERE seq = 1", &[])
        .unwrap_err();
    assert!(e.contains("append-only"), "{e}");
    assert!(db.try_run("DELETE FROM audit", &[]).is_err());
}

#[test]
fn audit_export_json_lines() {
    let (tmp, _) = audited_dir();
    let o = jit_ca(&[
        "audit",
        "export",
        "--json",
        "--dir",
        data_dir(&tmp).to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let lines: Vec<serde_json::Value> = String::from_utf8(o.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), USERS.len());
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["event"], "user_add");
    assert_eq!(lines[0]["details"]["user"], "alice");
    assert_eq!(lines[1]["prev_hash"], lines[0]["hash"]);
}

#[test]
fn generate_docs_writes_man_pages_and_completions() {
    let tmp = tempfile::tempdir().unwrap();
    let o = jit_ca(&["generate-docs", "--out", tmp.path().to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    for f in [
        "man/jit-ca.1",
        "man/jit-ca-serve.1",
        "man/jit-ca-user-add.1",
        "man/jit-ca-audit-verify.1",
        "man/jit-ca-policy-check.1",
        "completions/jit-ca.bash",
        "completions/_jit-ca",
        "completions/jit-ca.fish",
    ] {
        let p = tmp.path().join(f);
        assert!(
            p.exists() && std::fs::metadata(&p).unwrap().len() > 100,
            "{f}"
        );
    }
    assert!(
        !tmp.path().join("man/jit-ca-generate-docs.1").exists(),
        "hidden command has no page"
    );
    let help = jit_ca(&["--help"]);
    assert!(!String::from_utf8_lossy(&help.stdout).contains("generate-docs"));
}

fn http_get(addr: &str, path: &str) -> String {
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out
}

#[test]
fn serve_from_a_fresh_dir_reloads_and_stops_gracefully() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("jit-data");
    let mut child = Command::new(JIT_CA)
        .args([
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let addr = first
        .trim()
        .strip_prefix("jit-ca listening on http://")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    let mut rest = String::new();
    for _ in 0..3 {
        stdout.read_line(&mut rest).unwrap();
    }
    assert!(rest.contains("Initialised a new CA"), "{rest}");
    assert!(
        rest.contains("jit-ca user add"),
        "prints next steps: {rest}"
    );
    assert_eq!(mode(&dir.join("keys/user_ca")), 0o600);

    let health = http_get(&addr, "/v1/health");
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("\"ok\""),
        "{health}"
    );
    let ca_pub = http_get(&addr, "/v1/ca.pub");
    let on_disk = std::fs::read_to_string(dir.join("keys/user_ca.pub")).unwrap();
    assert!(ca_pub.ends_with(&on_disk), "{ca_pub}");

    // A bad policy on SIGHUP is rejected and the old one kept; a good one is taken.
    std::fs::remove_file(dir.join("policy.toml")).unwrap();
    std::fs::write(dir.join("policy.toml"), "[roles.x]\n").unwrap();
    let kill = |sig: &str| {
        assert!(
            Command::new("kill")
                .args([sig, &pid])
                .status()
                .unwrap()
                .success()
        )
    };
    kill("-HUP");
    let deadline = Instant::now() + Duration::from_secs(10);
    let reloads = || {
        jit_ca::admin::audit_export(&dir)
            .unwrap()
            .into_iter()
            .filter(|r| r["event"] == "policy_reload")
            .map(|r| r["details"]["ok"].as_bool().unwrap())
            .collect::<Vec<_>>()
    };
    while reloads().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reloads(), vec![false]);
    assert!(
        http_get(&addr, "/v1/health").starts_with("HTTP/1.1 200"),
        "still serving"
    );
    std::fs::write(dir.join("policy.toml"), "").unwrap();
    kill("-HUP");
    while reloads().len() < 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(reloads(), vec![false, true]);

    kill("-TERM");
    let status = child.wait().unwrap();
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let mut out = String::new();
    stdout.read_to_string(&mut out).unwrap();
    assert!(out.contains("jit-ca stopped"), "{out}");
    let o = jit_ca(&["audit", "verify", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));

    // A second serve on an initialised dir does not re-initialise (the keys stay).
    let key_before = std::fs::read(dir.join("keys/user_ca")).unwrap();
    assert!(!jit_ca::admin::init_if_fresh(&dir).unwrap());
    assert_eq!(std::fs::read(dir.join("keys/user_ca")).unwrap(), key_before);
}

/// Starts `jit-ca serve` on 127.0.0.1:0; returns the child, its stdout and the URL.
fn start_serve(
    dir: &Path,
) -> (
    std::process::Child,
    BufReader<std::process::ChildStdout>,
    String,
) {
    let mut child = Command::new(JIT_CA)
        .args([
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
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
    (child, stdout, url)
}

#[test]
fn serve_with_tls_from_config() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    std::fs::create_dir(dir.join("tls")).unwrap();
    let o = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ed25519",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
        ])
        .arg("-keyout")
        .arg(dir.join("tls/key.pem"))
        .arg("-out")
        .arg(dir.join("tls/cert.pem"))
        .output()
        .expect("openssl must be installed (tests/install-deps.sh)");
    assert!(o.status.success(), "{}", text(&o));
    std::fs::set_permissions(
        dir.join("tls/key.pem"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    std::fs::write(
        dir.join("config.toml"),
        "[tls]\ncert = \"tls/cert.pem\"\nkey = \"tls/key.pem\"\n",
    )
    .unwrap();

    let (mut child, _stdout, url) = start_serve(&dir);
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    let curl = |extra: &[&str]| {
        Command::new("curl")
            .args(["-sS", "--max-time", "10"])
            .args(extra)
            .output()
            .expect("curl must be installed (tests/install-deps.sh)")
    };
    let ok = curl(&[
        "--cacert",
        dir.join("tls/cert.pem").to_str().unwrap(),
        &format!("{url}/v1/health"),
    ]);
    assert!(ok.status.success(), "{}", text(&ok));
    assert_eq!(String::from_utf8_lossy(&ok.stdout), "{\"status\":\"ok\"}");
    // Without trusting the certificate the client refuses; plain HTTP gets no answer.
    assert!(!curl(&[&format!("{url}/v1/health")]).status.success());
    let plain = url.replace("https://", "http://");
    let o = curl(&[&format!("{plain}/v1/health")]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains("\"ok\""));
    // host-config publishes the https URL.
    let o = jit_ca(&["host-config", "--dir", dir.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("server = \"https://127.0.0.1:8443\""),
        "{}",
        text(&o)
    );

    assert!(
        Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success()
    );
    assert!(child.wait().unwrap().success());
}

#[test]
fn serve_refuses_a_broken_tls_config() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    std::fs::write(
        dir.join("config.toml"),
        "[tls]\ncert = \"tls/missing.pem\"\nkey = \"tls/key.pem\"\n",
    )
    .unwrap();
    let o = Command::new(JIT_CA)
        .args([
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("missing.pem"), "{}", text(&o));
}

#[test]
fn audit_verify_with_an_anchor_catches_truncation() {
    let (tmp, db) = audited_dir();
    let dir = data_dir(&tmp);
    let last = jit_ca::admin::audit_export(&dir).unwrap().pop().unwrap();
    let anchor = format!("{}:{}", last["seq"], last["hash"].as_str().unwrap());
    let d = dir.to_str().unwrap();
    let o = jit_ca(&["audit", "verify", "--dir", d, "--anchor", &anchor]);
    assert!(o.status.success(), "{}", text(&o));
    tamper(
        &db,
        &format!("DELETE FROM audit WHERE seq = {}", last["seq"]),
    );
    // Without an anchor a cut tail looks like a shorter, intact trail (documented limit) ...
    assert!(jit_ca(&["audit", "verify", "--dir", d]).status.success());
    // ... with one, it is caught.
    let o = jit_ca(&["audit", "verify", "--dir", d, "--anchor", &anchor]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains(&format!(
            "record {} named by an anchor is missing",
            last["seq"]
        )),
        "{}",
        text(&o)
    );
    let o = jit_ca(&["audit", "verify", "--dir", d, "--anchor", "3:nothex"]);
    assert!(
        !o.status.success() && text(&o).contains("64 hex characters"),
        "{}",
        text(&o)
    );
}

#[test]
fn backup_is_a_consistent_private_copy() {
    if jit_test_kit::pg::sqlite_only(
        "SQLite's own file: jit-ca backup copies jit.db with VACUUM INTO (PostgreSQL: pg_dump)",
    ) {
        return;
    }
    let (tmp, _) = audited_dir();
    let dir = data_dir(&tmp);
    let out = tmp.path().join("backup.db");
    let o = jit_ca(&[
        "backup",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(mode(&out), 0o600);
    // Restore into a fresh directory (keys and config copied, database from the backup).
    let restored = tmp.path().join("restored");
    std::fs::create_dir(&restored).unwrap();
    for f in ["config.toml", "policy.toml"] {
        std::fs::copy(dir.join(f), restored.join(f)).unwrap();
    }
    std::fs::copy(&out, restored.join("jit.db")).unwrap();
    let o = jit_ca(&["audit", "verify", "--dir", restored.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains(&format!("intact: {} records", USERS.len())),
        "{}",
        text(&o)
    );
    let o = jit_ca(&[
        "user",
        "list",
        "--json",
        "--dir",
        restored.to_str().unwrap(),
    ]);
    let users: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(users.as_array().unwrap().len(), USERS.len());
    // Never overwrites.
    let o = jit_ca(&[
        "backup",
        "--dir",
        dir.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        !o.status.success() && text(&o).contains("already exists"),
        "{}",
        text(&o)
    );
}

#[test]
fn a_second_serve_on_the_same_data_directory_is_refused() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let (mut first, _stdout, _url) = start_serve(&dir);
    let o = jit_ca(&[
        "serve",
        "--dir",
        dir.to_str().unwrap(),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("another `jit-ca serve` is already running"),
        "{}",
        text(&o)
    );
    first.kill().unwrap();
    first.wait().unwrap();
    // The lock dies with its process: the next serve starts.
    let (mut again, _stdout, url) = start_serve(&dir);
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    again.kill().unwrap();
    again.wait().unwrap();
}

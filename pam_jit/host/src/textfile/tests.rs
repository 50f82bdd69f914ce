//! The metrics file: valid exposition format (parsed here, and by `promtool check metrics`
//! when it is installed, as `tests/install-deps.sh` does), the documented names, and the
//! values read from a real store (root-only: the store must be root-owned).

use super::*;
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;

use jit_common::{Approval, Grant};
use pam_jit_core::config::RawConfig;
use ssh_key::{Algorithm, PrivateKey};

/// A minimal parser of the text exposition format for unlabelled gauges: every sample must
/// follow its own `# HELP` and `# TYPE NAME gauge` lines, names are valid, each appears
/// once, values are numbers, and the text ends with a newline. Returns name -> value.
fn parse(text: &str) -> BTreeMap<String, f64> {
    assert!(text.ends_with('\n'), "the exposition ends with a newline");
    let mut out = BTreeMap::new();
    let mut help: Option<String> = None;
    let mut typed: Option<String> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, doc) = rest.split_once(' ').expect("HELP NAME TEXT");
            assert!(!doc.trim().is_empty(), "{name}: empty help");
            assert!(!doc.contains('\\'), "{name}: help needs no escapes");
            help = Some(name.to_string());
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE NAME KIND");
            assert_eq!(kind, "gauge", "{name}");
            assert_eq!(help.as_deref(), Some(name), "TYPE follows its HELP");
            typed = Some(name.to_string());
        } else {
            let (name, value) = line.split_once(' ').expect("NAME VALUE");
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && name.starts_with("jit_host_"),
                "{name}"
            );
            assert_eq!(typed.as_deref(), Some(name), "sample after its TYPE line");
            let v: f64 = value.parse().expect("a number");
            assert!(out.insert(name.to_string(), v).is_none(), "{name} twice");
            help = None;
            typed = None;
        }
    }
    out
}

/// `promtool check metrics` over `text`, when promtool is installed (CI installs it).
fn promtool_check(text: &str) {
    use std::io::Write as _;
    let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: only the built-in parser checked the format");
        return;
    };
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn renders_every_documented_metric_in_valid_exposition_format() {
    let m = Metrics {
        grants: Some((3, 1)),
        grant_store_readable: true,
        revocation_sequence: 42,
        revocation_issued: 1_800_000_000,
        last_sync_success: true,
        last_sync: 1_800_000_123,
    };
    let text = render(&m);
    let got = parse(&text);
    let want: BTreeMap<String, f64> = [
        ("jit_host_grants", 3.0),
        ("jit_host_break_glass_grants", 1.0),
        ("jit_host_grant_store_readable", 1.0),
        ("jit_host_revocation_sequence", 42.0),
        (
            "jit_host_revocation_issued_timestamp_seconds",
            1_800_000_000.0,
        ),
        ("jit_host_last_sync_success", 1.0),
        ("jit_host_last_sync_timestamp_seconds", 1_800_000_123.0),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    assert_eq!(got, want);
    assert_eq!(
        got.keys()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>(),
        NAMES.iter().map(|n| n.to_string()).collect(),
        "NAMES lists exactly what is written"
    );
    promtool_check(&text);
    // A failed sync: 0, the rest as read locally.
    let failed = parse(&render(&Metrics {
        last_sync_success: false,
        ..m
    }));
    assert_eq!(failed["jit_host_last_sync_success"], 0.0);
    assert_eq!(failed["jit_host_revocation_sequence"], 42.0);
}

#[test]
fn an_unlistable_store_leaves_the_grant_metrics_out_instead_of_reporting_zero() {
    let text = render(&Metrics {
        grants: None,
        last_sync: 5,
        ..Metrics::default()
    });
    let got = parse(&text);
    assert!(!got.contains_key("jit_host_grants"), "{text}");
    assert!(!got.contains_key("jit_host_break_glass_grants"), "{text}");
    // ... and says so: a firing break-glass alert does not just resolve (jit.rules.yml).
    assert_eq!(got["jit_host_grant_store_readable"], 0.0, "{text}");
    assert_eq!(got.len(), 5);
    assert_eq!(got["jit_host_revocation_issued_timestamp_seconds"], 0.0);
    promtool_check(&text);
}

#[test]
fn every_metric_is_documented_in_docs_host_md() {
    let doc = include_str!("../../../../docs/host.md");
    for name in NAMES {
        assert!(
            doc.contains(&format!("`{name}`")),
            "docs/host.md misses {name}"
        );
    }
    assert!(doc.contains("`textfile_dir`"));
}

#[test]
fn no_textfile_dir_writes_nothing() {
    let config = Config::parse(&format!(
        "grant_keys = [\"{}\"]\n",
        key().public_key().to_openssh().unwrap()
    ))
    .unwrap();
    assert_eq!(path(&config), None);
    after_sync(&config, true, 1).unwrap();
}

const NOW: u64 = 1_800_000_000;

fn key() -> PrivateKey {
    PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap()
}

fn fs_mode(p: &Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn grant(id: &str, not_after: u64, signer: &PrivateKey) -> Vec<u8> {
    Grant {
        version: 1,
        id: id.into(),
        user: "alice".into(),
        role: "dba".into(),
        hosts: vec!["*".into()],
        sudo: true,
        not_before: (not_after.min(NOW) - 60).into(),
        not_after: not_after.into(),
        issued_at: (not_after.min(NOW) - 60).into(),
        request_id: format!("r-{id}"),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "carol".into(),
            at: (NOW - 60).into(),
        }],
        ticket: None,
        cert_serial: None,
        session_bound: false,
        key_id: String::new(),
    }
    .sign(signer)
    .unwrap()
}

#[test]
#[ignore = "needs root"]
fn after_a_sync_the_file_reports_what_is_installed_and_the_outcome() {
    let dir = tempfile::tempdir().unwrap();
    fs_mode(dir.path(), 0o755);
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("grants")).unwrap();
    fs_mode(&state, 0o755);
    fs_mode(&state.join("grants"), 0o755);
    let textfiles = dir.path().join("node-exporter");
    std::fs::create_dir(&textfiles).unwrap();
    let (grant_key, glass_key) = (key(), key());
    let mut raw: RawConfig = toml::from_str("").unwrap();
    raw.state_dir = Some(state.clone());
    raw.grant_writer = Some("nobody".into());
    raw.grant_keys = vec![grant_key.public_key().to_openssh().unwrap()];
    raw.break_glass_keys = vec![glass_key.public_key().to_openssh().unwrap()];
    raw.textfile_dir = Some(textfiles.clone());
    let config = raw.validate().unwrap();
    let file = textfiles.join("jit_host.prom");

    // Nothing installed yet, and the sync failed: zeros, success 0 (and the staleness
    // alert's timestamp is 0, so it fires).
    after_sync(&config, false, NOW).unwrap();
    let got = parse(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(got["jit_host_grants"], 0.0);
    assert_eq!(got["jit_host_revocation_sequence"], 0.0);
    assert_eq!(got["jit_host_revocation_issued_timestamp_seconds"], 0.0);
    assert_eq!(got["jit_host_last_sync_success"], 0.0);
    assert_eq!(got["jit_host_last_sync_timestamp_seconds"], NOW as f64);
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o644, "node_exporter (another user) reads it");

    // A revocation list, a valid grant, a break-glass grant, an expired and a revoked one.
    let mut list = jit_common::RevocationList::new(9, NOW - 120);
    list.revoked_grants.insert("g-revoked".into());
    let rl = state.join("revocations");
    std::fs::write(&rl, list.sign(&grant_key).unwrap()).unwrap();
    fs_mode(&rl, 0o644);
    for (id, not_after, signer) in [
        ("g-ok", NOW + 600, &grant_key),
        ("g-glass", NOW + 600, &glass_key),
        ("g-old", NOW - 30 - 60 - 1, &grant_key),
        ("g-revoked", NOW + 600, &grant_key),
    ] {
        crate::store_write::store_grant(&config, "alice", id, &grant(id, not_after, signer))
            .unwrap();
    }
    after_sync(&config, true, NOW + 5).unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    let got = parse(&text);
    promtool_check(&text);
    assert_eq!(got["jit_host_grants"], 2.0, "g-ok and g-glass: {text}");
    assert_eq!(got["jit_host_break_glass_grants"], 1.0, "{text}");
    assert_eq!(got["jit_host_grant_store_readable"], 1.0, "{text}");
    assert_eq!(got["jit_host_revocation_sequence"], 9.0);
    assert_eq!(
        got["jit_host_revocation_issued_timestamp_seconds"],
        (NOW - 120) as f64
    );
    assert_eq!(got["jit_host_last_sync_success"], 1.0);
    assert_eq!(
        got["jit_host_last_sync_timestamp_seconds"],
        (NOW + 5) as f64
    );

    // A failed sync later: success 0, the local values unchanged.
    after_sync(&config, false, NOW + 300).unwrap();
    let later = parse(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(later["jit_host_last_sync_success"], 0.0);
    assert_eq!(later["jit_host_grants"], 2.0);
    assert_eq!(later["jit_host_revocation_sequence"], 9.0);
    assert_eq!(
        later["jit_host_last_sync_timestamp_seconds"],
        (NOW + 300) as f64
    );
    // A user's grant directory that cannot be opened (a symlink: never followed): the
    // count is a lower bound, the file says the store was not fully read, sync fails
    // naming the directory.
    std::os::unix::fs::symlink("/etc", state.join("grants/bob")).unwrap();
    let err = after_sync(&config, true, NOW + 400).unwrap_err().message;
    assert!(
        err.contains("grants/bob") && err.contains("jit_host_grant_store_readable"),
        "{err}"
    );
    let partial = parse(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(partial["jit_host_grant_store_readable"], 0.0);
    assert_eq!(partial["jit_host_break_glass_grants"], 1.0);
    std::fs::remove_file(state.join("grants/bob")).unwrap();
    after_sync(&config, true, NOW + 500).unwrap();
    let whole = parse(&std::fs::read_to_string(&file).unwrap());
    assert_eq!(whole["jit_host_grant_store_readable"], 1.0);

    // No temporary file left for node_exporter to trip on.
    let names: Vec<_> = std::fs::read_dir(&textfiles)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("jit_host.prom")]);

    // A missing directory: one clear error naming the file and the key.
    std::fs::remove_dir_all(&textfiles).unwrap();
    let err = after_sync(&config, true, NOW).unwrap_err().message;
    assert!(
        err.contains("jit_host.prom") && err.contains("textfile_dir") && !err.contains('\n'),
        "{err}"
    );
}

#[test]
fn the_packaged_alerting_rules_name_only_metrics_this_file_writes() {
    let rules = include_str!("../../../../packaging/prometheus/jit.rules.yml");
    let used: std::collections::BTreeSet<&str> = rules
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|w| w.starts_with("jit_host_") && w.len() > "jit_host_".len())
        .collect();
    assert!(used.contains("jit_host_break_glass_grants"), "{used:?}");
    for name in &used {
        assert!(
            NAMES.contains(name),
            "jit.rules.yml uses {name}, which jit-host never writes"
        );
    }
}

/// Every metric jit.rules.yml names exists somewhere: `jit_ca_*` in docs/api.md's
/// `GET /metrics` row (which the CA's own tests keep equal to what /metrics serves),
/// `jit_host_*` in this file's [`NAMES`], `pam_jit_*` declared in pam_jit.mtail. A rule on a
/// misspelt metric never fires, and promtool cannot tell.
#[test]
fn every_metric_the_packaged_rules_use_exists() {
    let rules = include_str!("../../../../packaging/prometheus/jit.rules.yml");
    let api = include_str!("../../../../docs/api.md");
    let metrics_row = api
        .lines()
        .find(|l| l.starts_with("| `GET /metrics`"))
        .expect("docs/api.md has a `GET /metrics` row");
    let mtail = include_str!("../../../../packaging/prometheus/pam_jit.mtail");
    let declared: Vec<&str> = mtail
        .lines()
        .filter_map(|l| l.strip_prefix("counter "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    // Only the expressions: descriptions may mention metrics in prose.
    let exprs: Vec<&str> = rules
        .split("\n        expr: ")
        .skip(1)
        .map(|e| e.split("\n        labels:").next().unwrap_or(e))
        .collect();
    assert_eq!(
        exprs.len(),
        rules.matches("- alert: ").count(),
        "one expr per alert"
    );
    let mut seen = std::collections::BTreeSet::new();
    for expr in &exprs {
        for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
            let known = if word.starts_with("jit_ca_") {
                metrics_row.contains(&format!("`{word}`"))
                    || metrics_row.contains(&format!("`{word}{{"))
            } else if word.starts_with("jit_host_") {
                NAMES.contains(&word)
            } else if word.starts_with("pam_jit_") {
                declared.contains(&word)
            } else {
                continue;
            };
            assert!(
                known,
                "jit.rules.yml uses {word}, which nothing exports: {expr}"
            );
            seen.insert(word);
        }
    }
    // The check sees every family (so it is not vacuous).
    for name in [
        "jit_ca_auth_failures_total",
        "jit_ca_notify_oldest_undelivered_seconds",
        "jit_host_grant_store_readable",
        "pam_jit_sudo_denials_total",
        "pam_jit_break_glass_uses_total",
    ] {
        assert!(seen.contains(name), "{name} not found in {seen:?}");
    }
}

#[test]
fn a_symlinked_textfile_dir_or_file_is_never_followed() {
    let t = tempfile::tempdir().unwrap();
    let elsewhere = t.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    // textfile_dir itself swapped for a link: refused, nothing written through it.
    let link = t.path().join("node-exporter");
    std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
    let err = write(&link, "x 1\n").unwrap_err().message;
    assert!(
        err.contains("not a symlink") && !err.contains('\n'),
        "{err}"
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    // jit_host.prom itself a link to another file: the link is replaced, its target untouched.
    let dir = t.path().join("real");
    std::fs::create_dir(&dir).unwrap();
    let target = elsewhere.join("victim");
    std::fs::write(&target, "keep").unwrap();
    std::os::unix::fs::symlink(&target, dir.join("jit_host.prom")).unwrap();
    write(&dir, "x 1\n").unwrap();
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "keep");
    let meta = std::fs::symlink_metadata(dir.join("jit_host.prom")).unwrap();
    assert!(meta.file_type().is_file());
    assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
    assert_eq!(
        std::fs::read_to_string(dir.join("jit_host.prom")).unwrap(),
        "x 1\n"
    );
    // A missing directory: the error says what textfile_dir must be.
    let err = write(&t.path().join("missing"), "x 1\n")
        .unwrap_err()
        .message;
    assert!(err.contains("must be an existing directory"), "{err}");
}

#[test]
fn another_user_cannot_block_the_write_by_guessing_the_temporary_name() {
    let t = tempfile::tempdir().unwrap();
    let dir = t.path().join("node-exporter");
    std::fs::create_dir(&dir).unwrap();
    // What the old names were: `.jit_host.prom.tmp.<pid>.<counter>`; all squatted.
    for n in 0..2000 {
        std::fs::write(
            dir.join(format!(".jit_host.prom.tmp.{}.{n}", std::process::id())),
            "",
        )
        .unwrap();
    }
    write(&dir, "jit_host_grants 1\n").unwrap();
    assert_eq!(
        std::fs::read_to_string(dir.join("jit_host.prom")).unwrap(),
        "jit_host_grants 1\n"
    );
    // The names carry 128 random bits, never repeat, and stay hidden and non-.prom.
    let a = crate::store_write::temp_name("jit_host.prom").unwrap();
    let b = crate::store_write::temp_name("jit_host.prom").unwrap();
    assert_ne!(a, b);
    let hex = a.strip_prefix(".jit_host.prom.tmp.").unwrap();
    assert!(
        hex.len() == 32 && hex.bytes().all(|c| c.is_ascii_hexdigit()),
        "{a}"
    );
}

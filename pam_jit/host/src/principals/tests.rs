//! `jit-host principals`: every refusal, and storing only what passed every check.
//!
//! Every test needs root: the state directory and the revocation list must be root-owned
//! (a list that is not is unusable, and every certificate is then refused before the checks
//! these tests are about). `tests/run.sh` runs them with `--include-ignored`.

use super::*;
use jit_common::{Approval, Grant};
use pam_jit_core::config::RawConfig;
use ssh_key::certificate::Builder;
use ssh_key::{Algorithm, PrivateKey};
use std::os::unix::fs::PermissionsExt;

const NOW: u64 = 1_800_000_000;

fn key() -> PrivateKey {
    PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap()
}

struct Env {
    _dir: tempfile::TempDir,
    config: Config,
    ca: PrivateKey,
    grant_key: PrivateKey,
    user_key: PrivateKey,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    fs_mode(dir.path(), 0o755);
    let state = dir.path().join("state");
    std::fs::create_dir_all(state.join("grants")).unwrap();
    fs_mode(&state, 0o755);
    fs_mode(&state.join("grants"), 0o755);
    let (ca, grant_key) = (key(), key());
    let mut raw: RawConfig = toml::from_str("").unwrap();
    write_list(&state, &grant_key, NOW - 60, &[]);
    raw.state_dir = Some(state);
    raw.grant_writer = Some("nobody".into());
    raw.user_ca_keys = vec![ca.public_key().to_openssh().unwrap()];
    raw.grant_keys = vec![grant_key.public_key().to_openssh().unwrap()];
    Env {
        _dir: dir,
        config: raw.validate().unwrap(),
        ca,
        grant_key,
        user_key: key(),
    }
}

/// A signed revocation list, as `jit-host sync` installs it.
fn write_list(state: &std::path::Path, key: &PrivateKey, issued_at: u64, serials: &[u64]) {
    let mut l = jit_common::RevocationList::new(3, issued_at);
    l.revoked_serials = serials.iter().copied().collect();
    let p = state.join("revocations");
    std::fs::write(&p, l.sign(key).unwrap()).unwrap();
    fs_mode(&p, 0o644);
}

fn fs_mode(p: &std::path::Path, m: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
}

fn grant_doc(e: &Env, user: &str, serial: Option<u64>) -> String {
    grant_with(e, |g| {
        g.user = user.into();
        g.cert_serial = serial;
    })
}

fn grant_with(e: &Env, edit: impl FnOnce(&mut Grant)) -> String {
    let mut g = Grant {
        version: 1,
        id: "g-7".into(),
        user: "alice".into(),
        role: "dba".into(),
        hosts: vec!["*".into()],
        sudo: true,
        not_before: (NOW - 60).into(),
        not_after: (NOW + 600).into(),
        issued_at: (NOW - 60).into(),
        request_id: "r-7".into(),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "carol".into(),
            at: (NOW - 60).into(),
        }],
        ticket: None,
        cert_serial: Some(7),
        session_bound: false,
        key_id: String::new(),
    };
    edit(&mut g);
    String::from_utf8(g.sign(&e.grant_key).unwrap()).unwrap()
}

fn cert(
    e: &Env,
    signer: &PrivateKey,
    principals: &[&str],
    kind: CertType,
    grant: Option<&str>,
) -> String {
    let mut b = Builder::new_with_random_nonce(
        &mut rand_core::OsRng,
        e.user_key.public_key().key_data().clone(),
        NOW - 60,
        NOW + 600,
    )
    .unwrap();
    b.serial(7).unwrap();
    b.key_id("jit:r-7:alice").unwrap();
    b.cert_type(kind).unwrap();
    for p in principals {
        b.valid_principal(*p).unwrap();
    }
    if principals.is_empty() {
        b.all_principals_valid().unwrap();
    }
    if let Some(g) = grant {
        b.extension(GRANT_EXTENSION, g).unwrap();
    }
    let c = b.sign(signer).unwrap();
    base64::engine::general_purpose::STANDARD.encode(c.to_bytes().unwrap())
}

#[test]
#[ignore = "needs root"]
fn accepts_a_good_certificate_and_stores_its_grant_idempotently() {
    let e = env();
    let g = grant_doc(&e, "alice", Some(7));
    let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&g));
    let a = verify_and_store(&e.config, "alice", &c, NOW).unwrap();
    assert_eq!(a.principal, "alice");
    assert!(matches!(
        a.grant,
        GrantOutcome::Stored { changed: true, .. }
    ));
    let path = e.config.state_dir.join("grants/alice/g-7.grant");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), g);
    let again = verify_and_store(&e.config, "alice", &c, NOW).unwrap();
    assert!(matches!(
        again.grant,
        GrantOutcome::Stored { changed: false, .. }
    ));
    // The shared account: login accepted, alice's grant not stored under dbadmin.
    let a = verify_and_store(&e.config, "dbadmin", &c, NOW).unwrap();
    assert!(matches!(a.grant, GrantOutcome::OtherUser { .. }));
    assert!(!e.config.state_dir.join("grants/dbadmin").exists());
}

#[test]
#[ignore = "needs root"]
fn refuses_everything_suspicious() {
    let e = env();
    let good_grant = grant_doc(&e, "alice", Some(7));
    let other = key();
    let cases: Vec<(&str, String, &str)> = vec![
        ("not base64", "!!!".into(), "not base64"),
        ("not a cert", "AAAA".into(), "not an OpenSSH certificate"),
        (
            "other CA",
            cert(&e, &other, &["alice"], CertType::User, None),
            "not signed by a trusted user CA",
        ),
        (
            "host cert",
            cert(&e, &e.ca, &["alice"], CertType::Host, None),
            "not a user certificate",
        ),
        (
            "wrong principal",
            cert(&e, &e.ca, &["bob"], CertType::User, None),
            "does not list principal",
        ),
        (
            "no principals",
            cert(&e, &e.ca, &[], CertType::User, None),
            "does not list principal",
        ),
        (
            "tampered grant",
            cert(
                &e,
                &e.ca,
                &["alice"],
                CertType::User,
                Some(&good_grant.replace("\"test\"", "\"tesT\"")),
            ),
            "grant is not valid",
        ),
        (
            "serial mismatch",
            cert(
                &e,
                &e.ca,
                &["alice"],
                CertType::User,
                Some(&grant_doc(&e, "alice", Some(8))),
            ),
            "names certificate serial 8",
        ),
    ];
    for (name, c, needle) in cases {
        let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
        assert!(err.contains(needle), "{name}: {err}");
    }
    let c = cert(&e, &e.ca, &["alice"], CertType::User, None);
    let err = verify_and_store(&e.config, "alice", &c, NOW + 3600).unwrap_err();
    assert!(err.contains("outside its window"), "{err}");
    let huge = "A".repeat(MAX_CERT_BASE64 + 1);
    assert!(verify_and_store(&e.config, "alice", &huge, NOW).is_err());
    assert!(!e.config.state_dir.join("grants/alice").exists());
}

fn db1() -> Vec<String> {
    vec!["db-1".to_string(), "db-1.example.com".to_string()]
}

/// Issue 11, item 1: a certificate works only on the hosts of its grant, as its user and
/// as every other principal in it, and a user-CA certificate without a grant is refused.
#[test]
#[ignore = "needs root"]
fn refuses_a_certificate_outside_its_host_scope_for_every_principal() {
    let e = env();
    let web = grant_with(&e, |g| g.hosts = vec!["web-*".into()]);
    let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&web));
    for user in ["alice", "dbadmin"] {
        let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
        assert!(
            err.contains("is scoped to hosts web-*") && err.contains("not to this host (db-1"),
            "{user}: {err}"
        );
    }
    // An auto-approved role's grant is no different.
    let lab = grant_with(&e, |g| {
        g.hosts = vec!["lab-*".into()];
        g.sudo = false;
        g.approvers[0].user = "auto:oncall".into();
    });
    let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&lab));
    for user in ["alice", "dbadmin"] {
        let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
        assert!(err.contains("not to this host"), "{user}: {err}");
    }
    // No names known at all: nothing matches, not even `*`.
    let any = grant_with(&e, |_| {});
    let c = cert(&e, &e.ca, &["alice"], CertType::User, Some(&any));
    let err = verify_and_store_on(&e.config, &[], "alice", &c, NOW).unwrap_err();
    assert!(err.contains("set hostnames in host.toml"), "{err}");
    // Signed by the user CA, but no scope: refused as every principal.
    let bare = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, None);
    for user in ["alice", "dbadmin"] {
        let err = verify_and_store_on(&e.config, &db1(), user, &bare, NOW).unwrap_err();
        assert!(err.contains("carries no scope"), "{user}: {err}");
    }
    assert!(!e.config.state_dir.join("grants/alice").exists());
}

#[test]
#[ignore = "needs root"]
fn refuses_a_grant_that_is_not_this_certificates_scope() {
    let e = env();
    let cases: Vec<(&str, String, &[&str], &str)> = vec![
        (
            "no serial in the grant",
            grant_with(&e, |g| g.cert_serial = None),
            &["alice"],
            "names no certificate serial",
        ),
        (
            "grant for a user who is not a principal",
            grant_with(&e, |g| g.user = "mallory".into()),
            &["alice", "dbadmin"],
            "not among certificate serial 7's principals",
        ),
    ];
    for (name, g, principals, needle) in cases {
        let c = cert(&e, &e.ca, principals, CertType::User, Some(&g));
        for user in principals {
            let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
            assert!(err.contains(needle), "{name} as {user}: {err}");
        }
    }
}

#[test]
#[ignore = "needs root"]
fn matches_host_toml_names_and_accepts_roles_without_sudo() {
    let e = env();
    // Matched through host.toml's `hostnames` only; a role without sudo still logs in
    // (pam_jit then denies sudo with "does not allow sudo").
    let g = grant_with(&e, |g| {
        g.hosts = vec!["db-*.example.com".into()];
        g.sudo = false;
    });
    let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&g));
    let a = verify_and_store_on(&e.config, &db1(), "alice", &c, NOW).unwrap();
    assert!(matches!(a.grant, GrantOutcome::Stored { .. }));
    let a = verify_and_store_on(&e.config, &db1(), "dbadmin", &c, NOW).unwrap();
    assert!(matches!(a.grant, GrantOutcome::OtherUser { .. }));
    let only_kernel = vec!["db-1".to_string()];
    let err = verify_and_store_on(&e.config, &only_kernel, "dbadmin", &c, NOW).unwrap_err();
    assert!(err.contains("not to this host"), "{err}");
}

#[test]
#[ignore = "needs root"]
fn refuses_a_revoked_grant_id_for_every_principal() {
    let e = env();
    let g = grant_with(&e, |_| {});
    let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&g));
    let mut list = jit_common::RevocationList::new(3, NOW - 10);
    list.revoked_grants.insert("g-7".into());
    std::fs::write(
        e.config.revocations_path(),
        list.sign(&e.grant_key).unwrap(),
    )
    .unwrap();
    for user in ["alice", "dbadmin"] {
        let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
        assert!(
            err.contains("grant g-7 of certificate serial 7 is revoked"),
            "{user}: {err}"
        );
    }
    assert!(!e.config.state_dir.join("grants/alice").exists());
}

/// Issue 11, item 6: the module's staleness rule applies to certificate logins too.
#[test]
#[ignore = "needs root"]
fn applies_the_modules_staleness_rule() {
    let e = env();
    let state = e.config.state_dir.clone();
    let g = grant_with(&e, |_| {});
    let c = cert(&e, &e.ca, &["alice"], CertType::User, Some(&g));
    verify_and_store(&e.config, "alice", &c, NOW).unwrap();
    // Never synced: refused, with what to run.
    std::fs::remove_file(state.join("revocations")).unwrap();
    let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
    assert!(err.contains("never synced"), "{err}");
    assert!(err.contains("jit-host sync"), "{err}");
    // Stale (older than the default 12 h): refused.
    write_list(&state, &e.grant_key, NOW - 13 * 3600, &[]);
    let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
    assert!(err.contains("stale"), "{err}");
    // Signed by another key: refused.
    write_list(&state, &key(), NOW - 60, &[]);
    let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
    assert!(err.contains("invalid"), "{err}");
    // Fresh and revoking the serial: refused as revoked.
    write_list(&state, &e.grant_key, NOW - 60, &[7]);
    let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
    assert!(err.contains("revoked"), "{err}");
    write_list(&state, &e.grant_key, NOW - 60, &[]);
    verify_and_store(&e.config, "alice", &c, NOW).unwrap();
}

/// The stderr line of a refusal (issue 13: run by hand it says why, even without syslog).
#[test]
fn a_refusal_prints_one_line_naming_the_user_and_reason() {
    assert_eq!(
        refusal_line("alice", "certificate is not base64: x", true),
        "jit-host: principals: refused \"alice\": certificate is not base64: x"
    );
    assert_eq!(
        refusal_line("alice", "not a user certificate", false),
        "jit-host: principals: refused \"alice\": not a user certificate \
         (not logged: no syslog daemon on /dev/log)"
    );
    // Attacker-chosen text cannot forge a second line or reorder the terminal's text.
    let line = refusal_line("bob", "grant g-1\nroot: allowed \u{202e}x", true);
    assert_eq!(
        line,
        "jit-host: principals: refused \"bob\": grant g-1\\x0aroot: allowed \\u{202e}x"
    );
    assert!(refusal_line("a", &"x".repeat(5000), false).len() <= MAX_LINE);
}

//! The full decision matrix, without PAM.

use super::*;
use crate::config::RawConfig;
use crate::store::{GrantFile, RecordLookup, RevocationFile, UserGrants};
use jit_common::{Approval, Grant, RevocationList};
use ssh_key::{Algorithm, PrivateKey};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

struct Keys {
    grant: PrivateKey,
    glass: PrivateKey,
    other: PrivateKey,
}

/// The grant key is fixed, so that [`evidence`] can carry a fresh list signed by it (a host
/// without a fresh revocation list denies every normal grant).
fn grant_key() -> PrivateKey {
    PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]))
}

fn keys() -> Keys {
    let k = || PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    Keys {
        grant: grant_key(),
        glass: k(),
        other: k(),
    }
}

fn config(k: &Keys, edit: impl FnOnce(&mut RawConfig)) -> Config {
    let mut raw: RawConfig = toml::from_str("").unwrap();
    raw.grant_keys = vec![k.grant.public_key().to_openssh().unwrap()];
    raw.break_glass_keys = vec![k.glass.public_key().to_openssh().unwrap()];
    raw.hostnames = vec!["db-1.example.com".into()];
    edit(&mut raw);
    raw.validate().unwrap()
}

fn grant(id: &str, user: &str) -> Grant {
    Grant {
        version: 1,
        id: id.into(),
        user: user.into(),
        role: "dba".into(),
        hosts: vec!["db-*".into()],
        sudo: true,
        not_before: NOW - 600,
        not_after: NOW + 1200,
        issued_at: NOW - 600,
        request_id: format!("r-{id}"),
        reason: "fix replication".into(),
        approvers: vec![Approval {
            user: "carol".into(),
            at: NOW - 600,
        }],
        ticket: None,
        cert_serial: Some(42),
        session_bound: false,
        key_id: String::new(),
    }
}

fn file(g: Grant, key: &PrivateKey) -> GrantFile {
    GrantFile {
        name: format!("{}.grant", g.id),
        bytes: g.sign(key).unwrap(),
    }
}

fn evidence(files: Vec<GrantFile>) -> Evidence {
    Evidence {
        grants: Ok(UserGrants {
            files,
            problems: vec![],
            truncated: false,
        }),
        revocations: revocation_file(&grant_key(), NOW - 60, &[], &[]),
        session: BindingEvidence::NotRead,
    }
}

fn revocation_file(
    key: &PrivateKey,
    issued_at: UnixTime,
    grants: &[&str],
    serials: &[u64],
) -> RevocationFile {
    let mut l = RevocationList::new(7, issued_at);
    l.revoked_grants = grants.iter().map(|s| s.to_string()).collect();
    l.revoked_serials = serials.iter().copied().collect();
    RevocationFile::Present(l.sign(key).unwrap())
}

fn hosts() -> Vec<String> {
    vec!["db-1".into(), "db-1.example.com".into()]
}

fn alice<'a>(h: &'a [String], service: &'a str) -> Facts<'a> {
    Facts {
        caller: Caller {
            ruser: Some("alice"),
            uid: 1000,
            ruser_uid: Some(1000),
        },
        service,
        host_names: h,
        now: NOW,
        session_id: None,
    }
}

/// The decision as the PAM path makes it (identify once, then decide), without records.
fn decide(c: &Config, f: &Facts<'_>, e: &Evidence) -> Decision {
    decide_with(c, f, e, &NoRecords)
}

/// The decision with `records` as the record source.
fn decide_with(c: &Config, f: &Facts<'_>, e: &Evidence, records: &dyn RecordSource) -> Decision {
    match identify(c, f) {
        Ok(invoker) => super::decide(c, f, invoker, e, records),
        Err(early) => early,
    }
}

/// The decision with root's records under `state` (as `pam_jit_core::decide_here` reads them).
fn decide_rec(c: &Config, f: &Facts<'_>, e: &Evidence, state: &std::path::Path) -> Decision {
    decide_with(c, f, e, &RecordLookup::in_state_dir(state))
}

#[track_caller]
fn denied(d: &Decision, needle: &str) {
    assert_eq!(d.verdict, Verdict::Deny, "{d:?}");
    let msg = d.user_message.as_deref().unwrap();
    assert!(msg.starts_with("jit: sudo denied for "), "{msg}");
    assert!(!msg.contains('\n'));
    assert!(msg.contains(needle), "{needle:?} not in {msg:?}");
    assert!(d.reason.len() <= msg.len());
}

#[test]
fn a_valid_grant_allows_silently() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let d = decide(
        &c,
        &alice(&h, "sudo"),
        &evidence(vec![file(grant("g-1", "alice"), &k.grant)]),
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d.grant_id.as_deref(), Some("g-1"));
    assert_eq!(d.user_message, None);
    assert!(!d.break_glass);
    // sudo -i uses its own service, gated too.
    let d = decide(
        &c,
        &alice(&h, "sudo-i"),
        &evidence(vec![file(grant("g-1", "alice"), &k.grant)]),
    );
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn window_is_enforced_with_skew() {
    let k = keys();
    let c = config(&k, |r| r.clock_skew_secs = Some(60));
    let h = hosts();
    let mut g = grant("g-old", "alice");
    g.not_before = NOW - 7200;
    g.not_after = NOW - 3600;
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(g, &k.grant)]));
    denied(
        &d,
        "grant g-old expired at 2027-01-15T07:00:00Z; run: jit request dba --duration 30m",
    );
    assert_eq!(d.grant_id.as_deref(), Some("g-old"));

    let mut g = grant("g-skew", "alice");
    g.not_after = NOW - 30;
    let d = decide(
        &c,
        &alice(&h, "sudo"),
        &evidence(vec![file(g.clone(), &k.grant)]),
    );
    assert_eq!(
        d.verdict,
        Verdict::Allow,
        "30 s late is inside 60 s of skew"
    );
    g.not_after = NOW - 60;
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(g, &k.grant)]));
    denied(&d, "expired");

    let mut g = grant("g-future", "alice");
    g.not_before = NOW + 3600;
    g.not_after = NOW + 7200;
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(g, &k.grant)]));
    denied(&d, "grant g-future starts at");
}

#[test]
fn user_host_and_sudo_must_match() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let d = decide(
        &c,
        &alice(&h, "sudo"),
        &evidence(vec![file(grant("g-bob", "bob"), &k.grant)]),
    );
    denied(&d, "is for user bob");

    let mut g = grant("g-web", "alice");
    g.hosts = vec!["web-*".into()];
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(g, &k.grant)]));
    denied(&d, "grant g-web covers hosts web-*, not this one");

    // A config host name counts.
    let mut g = grant("g-fqdn", "alice");
    g.hosts = vec!["db-1.example.com".into()];
    let only_kernel = vec!["localhost".to_string()];
    let c2 = config(&k, |r| r.hostnames = vec!["DB-1.example.com".into()]);
    let mut both = only_kernel.clone();
    both.extend(c2.hostnames.iter().cloned());
    assert_eq!(
        decide(
            &c2,
            &alice(&both, "sudo"),
            &evidence(vec![file(g.clone(), &k.grant)])
        )
        .verdict,
        Verdict::Allow
    );
    denied(
        &decide(
            &c,
            &alice(&only_kernel, "sudo"),
            &evidence(vec![file(g, &k.grant)]),
        ),
        "not this one",
    );

    let mut g = grant("g-nosudo", "alice");
    g.sudo = false;
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(g, &k.grant)]));
    denied(&d, "does not allow sudo");
}

#[test]
fn signatures_and_file_names_are_checked() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let mut f = file(grant("g-1", "alice"), &k.grant);
    let text = String::from_utf8(f.bytes.clone()).unwrap();
    f.bytes = text
        .replace("fix replication", "fix replicatiox")
        .into_bytes();
    denied(
        &decide(&c, &alice(&h, "sudo"), &evidence(vec![f])),
        "altered",
    );

    let f = file(grant("g-1", "alice"), &k.other);
    denied(
        &decide(&c, &alice(&h, "sudo"), &evidence(vec![f])),
        "not a trusted key",
    );

    let mut f = file(grant("g-1", "alice"), &k.grant);
    f.name = "g-2.grant".into();
    denied(
        &decide(&c, &alice(&h, "sudo"), &evidence(vec![f])),
        "does not match its id",
    );

    let f = GrantFile {
        name: "g-1.grant".into(),
        bytes: b"garbage".to_vec(),
    };
    denied(
        &decide(&c, &alice(&h, "sudo"), &evidence(vec![f])),
        "g-1.grant is not valid",
    );
}

#[test]
fn revocation_by_grant_id_or_serial() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let mut e = evidence(vec![file(grant("g-1", "alice"), &k.grant)]);
    e.revocations = revocation_file(&k.grant, NOW, &["g-1"], &[]);
    denied(&decide(&c, &alice(&h, "sudo"), &e), "grant g-1 was revoked");
    e.revocations = revocation_file(&k.grant, NOW, &[], &[42]);
    denied(&decide(&c, &alice(&h, "sudo"), &e), "serial 42");
    e.revocations = revocation_file(&k.grant, NOW, &["g-9"], &[41]);
    assert_eq!(decide(&c, &alice(&h, "sudo"), &e).verdict, Verdict::Allow);
    // A list signed by an untrusted key is never used, and denies (fail closed).
    e.revocations = revocation_file(&k.other, NOW, &[], &[]);
    denied(
        &decide(&c, &alice(&h, "sudo"), &e),
        "revocation list is invalid",
    );
    e.revocations = RevocationFile::Unusable("owned by uid 1000".into());
    denied(&decide(&c, &alice(&h, "sudo"), &e), "unusable");
}

#[test]
fn staleness_bound_and_break_glass() {
    let k = keys();
    let c = config(&k, |r| r.revocation_max_age_secs = Some(3600));
    let h = hosts();
    let mut e = evidence(vec![file(grant("g-1", "alice"), &k.grant)]);
    e.revocations = RevocationFile::Missing;
    denied(
        &decide(&c, &alice(&h, "sudo"), &e),
        "this host has no revocation list",
    );
    e.revocations = revocation_file(&k.grant, NOW - 7200, &[], &[]);
    let d = decide(&c, &alice(&h, "sudo"), &e);
    denied(&d, "older than 1h");
    assert!(d.user_message.unwrap().contains("jit-host sync"));
    e.revocations = revocation_file(&k.grant, NOW - 60, &[], &[]);
    assert_eq!(decide(&c, &alice(&h, "sudo"), &e).verdict, Verdict::Allow);

    // Break-glass grants bypass the bound, loudly, but not a revocation.
    let mut e = evidence(vec![file(grant("g-bg", "alice"), &k.glass)]);
    e.revocations = revocation_file(&k.grant, NOW - 7200, &[], &[]);
    let d = decide(&c, &alice(&h, "sudo"), &e);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(d.break_glass);
    assert!(
        d.reason.starts_with("BREAK-GLASS grant g-bg"),
        "{}",
        d.reason
    );
    e.revocations = revocation_file(&k.grant, NOW - 7200, &["g-bg"], &[]);
    denied(&decide(&c, &alice(&h, "sudo"), &e), "revoked");

    // The default configuration has a bound too (12 h): a host that never synced denies,
    // saying so and what to run; a list older than 12 h denies; break-glass still works.
    let c0 = config(&k, |_| {});
    assert_eq!(c0.revocation_max_age_secs, 12 * 3600);
    let mut e = evidence(vec![file(grant("g-1", "alice"), &k.grant)]);
    e.revocations = RevocationFile::Missing;
    let d = decide(&c0, &alice(&h, "sudo"), &e);
    denied(&d, "has never synced");
    assert!(d.user_message.unwrap().contains("jit-host sync"));
    e.revocations = revocation_file(&k.grant, NOW - 13 * 3600, &[], &[]);
    denied(&decide(&c0, &alice(&h, "sudo"), &e), "stale");
    e.revocations = revocation_file(&k.grant, NOW - 11 * 3600, &[], &[]);
    assert_eq!(decide(&c0, &alice(&h, "sudo"), &e).verdict, Verdict::Allow);
    let mut e = evidence(vec![file(grant("g-bg", "alice"), &k.glass)]);
    e.revocations = RevocationFile::Missing;
    assert!(decide(&c0, &alice(&h, "sudo"), &e).break_glass);
}

#[test]
fn a_list_from_the_future_is_not_fresh() {
    // A list issued (by the CA's clock) further ahead than clock_skew_secs would otherwise
    // stay "fresh" until issued_at + the bound, however long sync is then blocked.
    let k = keys();
    let c = config(&k, |r| r.revocation_max_age_secs = Some(3600));
    let h = hosts();
    let mut e = evidence(vec![file(grant("g-1", "alice"), &k.grant)]);
    e.revocations = revocation_file(&k.grant, NOW + 30 * 24 * 3600, &[], &[]);
    let d = decide(&c, &alice(&h, "sudo"), &e);
    denied(&d, "issued in the future");
    // Within the skew (60 s by default) it is fresh.
    e.revocations = revocation_file(&k.grant, NOW + 30, &[], &[]);
    assert_eq!(decide(&c, &alice(&h, "sudo"), &e).verdict, Verdict::Allow);
    // Its entries still deny; break-glass grants still work.
    let mut e = evidence(vec![file(grant("g-bg", "alice"), &k.glass)]);
    e.revocations = revocation_file(&k.grant, NOW + 30 * 24 * 3600, &[], &[]);
    assert!(decide(&c, &alice(&h, "sudo"), &e).break_glass);
}

#[test]
fn a_break_glass_grant_signed_long_before_its_window_is_capped() {
    // Pre-signing a stack of future 24 h grants would turn the cap into standing access:
    // the window counts from when the grant was signed.
    let k = keys();
    let h = hosts();
    let c = config(&k, |_| {});
    let mut g = grant("g-bg", "alice");
    g.issued_at = NOW - 30 * 24 * 3600;
    g.not_before = NOW - 600;
    g.not_after = NOW + 3600;
    let d = decide(
        &c,
        &alice(&h, "sudo"),
        &evidence(vec![file(g.clone(), &k.glass)]),
    );
    denied(&d, "break-glass grant g-bg spans");
    g.issued_at = NOW - 600;
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(g, &k.glass)]));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

#[test]
fn a_stale_list_is_named_when_it_blocks_a_covering_grant() {
    // An extension: the superseded grant is revoked, the new one covers; the list has since
    // gone stale. The reason is the stale list (what to fix), not the old revocation.
    let k = keys();
    let c = config(&k, |r| r.revocation_max_age_secs = Some(3600));
    let h = hosts();
    let mut old = grant("g-1", "alice");
    old.cert_serial = Some(41);
    let mut e = evidence(vec![
        file(old, &k.grant),
        file(grant("g-2", "alice"), &k.grant),
    ]);
    e.revocations = revocation_file(&k.grant, NOW - 7200, &["g-1"], &[]);
    let d = decide(&c, &alice(&h, "sudo"), &e);
    denied(&d, "grant g-2 cannot be checked against revocations");
    denied(&d, "stale");
    assert_eq!(d.grant_id.as_deref(), Some("g-2"));
    // Missing list: named too.
    e.revocations = RevocationFile::Missing;
    denied(
        &decide(&c, &alice(&h, "sudo"), &e),
        "has no revocation list",
    );
    // Fresh list: the covering grant allows.
    e.revocations = revocation_file(&k.grant, NOW - 60, &["g-1"], &[]);
    assert_eq!(decide(&c, &alice(&h, "sudo"), &e).verdict, Verdict::Allow);
}

#[test]
fn break_glass_window_is_capped() {
    let k = keys();
    let h = hosts();
    let mut long = grant("g-bg", "alice");
    long.not_before = NOW - 600;
    long.not_after = NOW - 600 + 24 * 3600 + 1;
    let e = evidence(vec![file(long.clone(), &k.glass)]);
    // Default cap: 24 h.
    let c = config(&k, |_| {});
    assert_eq!(c.break_glass_max_window_secs, 24 * 3600);
    let d = decide(&c, &alice(&h, "sudo"), &e);
    denied(&d, "break-glass grant g-bg spans");
    denied(&d, "break_glass_max_window_secs");
    // Exactly 24 h is fine.
    let mut ok = long.clone();
    ok.not_after = NOW - 600 + 24 * 3600;
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![file(ok, &k.glass)]));
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(d.break_glass);
    // A configured cap applies; the cap is about break-glass keys only.
    let c1 = config(&k, |r| r.break_glass_max_window_secs = Some(3600));
    denied(&decide(&c1, &alice(&h, "sudo"), &e), "more than");
    let mut normal = grant("g-n", "alice");
    normal.not_after = NOW + 48 * 3600;
    let d = decide(
        &c1,
        &alice(&h, "sudo"),
        &evidence(vec![file(normal, &k.grant)]),
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
}

#[test]
fn the_caller_must_be_who_sudo_says() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let e = evidence(vec![file(grant("g-1", "alice"), &k.grant)]);
    let mut f = alice(&h, "sudo");
    f.caller.ruser = None;
    denied(&decide(&c, &f, &e), "PAM_RUSER is not set");
    let mut f = alice(&h, "sudo");
    f.caller.uid = 1001;
    denied(
        &decide(&c, &f, &e),
        "uid 1000) is not the calling process's user (uid 1001)",
    );
    let mut f = alice(&h, "sudo");
    f.caller.ruser_uid = None;
    denied(&decide(&c, &f, &e), "has no passwd entry");
    let mut f = alice(&h, "sudo");
    f.caller.ruser = Some("../../etc");
    denied(&decide(&c, &f, &e), "not a valid login name");
    // Root needs no grant: it has nothing to gain.
    let f = Facts {
        caller: Caller {
            ruser: Some("root"),
            uid: 0,
            ruser_uid: Some(0),
        },
        ..alice(&h, "sudo")
    };
    assert_eq!(decide(&c, &f, &evidence(vec![])).verdict, Verdict::Allow);
}

#[test]
fn ungated_services_are_ignored_and_audit_mode_allows() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let d = decide(&c, &alice(&h, "login"), &evidence(vec![]));
    assert_eq!(d.verdict, Verdict::Ignore);
    assert_eq!(d.result_word(), "ignore");

    let a = config(&k, |r| r.mode = Mode::Audit);
    let d = decide(&a, &alice(&h, "sudo"), &evidence(vec![]));
    assert_eq!(d.verdict, Verdict::Allow);
    assert!(d.audit_would_deny);
    assert_eq!(d.user_message, None);
    assert_eq!(d.result_word(), "audit-allow");
    assert!(d.reason.contains("would deny: no grant"), "{}", d.reason);
}

#[test]
fn no_grant_and_unsafe_store() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    denied(
        &decide(&c, &alice(&h, "sudo"), &evidence(vec![])),
        "jit: sudo denied for alice on db-1: no grant for this user on this host; run: jit request ROLE",
    );
    let e = Evidence {
        grants: Ok(UserGrants {
            files: vec![],
            problems: vec!["/var/lib/jit/grants/alice/g.grant is a symbolic link".into()],
            truncated: false,
        }),
        revocations: RevocationFile::Missing,
        session: BindingEvidence::NotRead,
    };
    denied(&decide(&c, &alice(&h, "sudo"), &e), "symbolic link");
    let e = Evidence {
        grants: Err("/var/lib/jit/grants/alice has mode 0777".into()),
        revocations: RevocationFile::Missing,
        session: BindingEvidence::NotRead,
    };
    denied(&decide(&c, &alice(&h, "sudo"), &e), "not safe to read");
}

#[test]
fn the_most_useful_reason_wins_and_any_good_grant_allows() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let mut web = grant("g-a", "alice");
    web.hosts = vec!["web-1".into()];
    let mut old = grant("g-b", "alice");
    old.not_before = NOW - 9000;
    old.not_after = NOW - 8000;
    let mut older = grant("g-c", "alice");
    older.not_before = NOW - 99000;
    older.not_after = NOW - 98000;
    let files = vec![
        file(web, &k.grant),
        file(older, &k.grant),
        file(old, &k.grant),
    ];
    let d = decide(&c, &alice(&h, "sudo"), &evidence(files.clone()));
    denied(&d, "grant g-b expired");
    let mut with_good = files;
    with_good.push(file(grant("g-z", "alice"), &k.grant));
    let d = decide(&c, &alice(&h, "sudo"), &evidence(with_good));
    assert_eq!(d.grant_id.as_deref(), Some("g-z"));
    assert_eq!(d.verdict, Verdict::Allow);
}

#[test]
fn unusable_config_fails_closed_only_for_gated_defaults() {
    let d = config_unusable(
        "sudo",
        "db-1",
        Some("alice"),
        "host.toml is owned by uid 1000",
    );
    denied(&d, "host configuration is unusable");
    assert_eq!(
        config_unusable("login", "db-1", None, "x").verdict,
        Verdict::Ignore
    );
}

#[test]
fn messages_cannot_break_lines() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = vec!["db-1\nFAKE".to_string()];
    let d = decide(&c, &alice(&h, "sudo"), &evidence(vec![]));
    assert!(!d.user_message.unwrap().contains('\n'));
}

/// A state dir with root's record directory, in a fresh temp dir (root-owned when the tests
/// run as root, which the record tests need: records are trusted only when root owns them).
fn record_state() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let t = tempfile::tempdir().unwrap();
    let dir = crate::store::records_dir(t.path());
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    (t, dir)
}

/// Writes a record by hand, as if root had verified `doc` (whether it verifies or not).
fn hand_record(dir: &std::path::Path, doc: &[u8], config: &Config, ring: &str, signer: &str) {
    use jit_common::record::{DocDigest, KeyringDigest};
    let text = format!(
        "jit-verified v1\nkind grant\nsha256 {}\nkeyring {}\nring {ring}\nsigner {signer}\n",
        DocDigest::of(doc).hex(),
        KeyringDigest::of(&config.grant_keys, &config.break_glass_keys)
            .unwrap()
            .hex()
    );
    jit_common::secure_file::write_atomic(
        &jit_common::record::record_path(dir, &DocDigest::of(doc)),
        text.as_bytes(),
        0o644,
    )
    .unwrap();
}

#[test]
#[ignore = "needs root"]
fn root_records_replace_only_the_signature_check() {
    let (t, dir) = record_state();
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let sudo = alice(&h, "sudo");
    // A grant root recorded through the real writer allows, exactly as without a record.
    let good = file(grant("g-1", "alice"), &k.grant);
    jit_common::record::write_grant_record(&dir, &good.bytes, &c.grant_keys, &c.break_glass_keys)
        .unwrap();
    let d = decide_rec(&c, &sudo, &evidence(vec![good.clone()]), t.path());
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d.grant_id.as_deref(), Some("g-1"));

    // Proof that a hit skips the Ed25519 check: bytes signed by an untrusted key, with a
    // root-owned record claiming otherwise, allow (root is trusted like host.toml is)...
    let fp = jit_common::keys::fingerprint(k.other.public_key());
    let bad = file(grant("g-2", "alice"), &k.other);
    hand_record(&dir, &bad.bytes, &c, "grant", &fp);
    let e = evidence(vec![bad.clone()]);
    assert_eq!(decide_rec(&c, &sudo, &e, t.path()).verdict, Verdict::Allow);
    // ...and are denied as soon as the record is not root's, is group-writable, or the keys
    // in host.toml change.
    let rec = jit_common::record::record_path(&dir, &jit_common::record::DocDigest::of(&bad.bytes));
    std::os::unix::fs::chown(&rec, Some(4242), None).unwrap();
    denied(&decide_rec(&c, &sudo, &e, t.path()), "not a trusted key");
    std::os::unix::fs::chown(&rec, Some(0), None).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o666)).unwrap();
    denied(&decide_rec(&c, &sudo, &e, t.path()), "not a trusted key");
    std::fs::set_permissions(&rec, std::fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(decide_rec(&c, &sudo, &e, t.path()).verdict, Verdict::Allow);
    let rotated = config(&k, |r| r.break_glass_keys = vec![]);
    denied(
        &decide_rec(&rotated, &sudo, &e, t.path()),
        "not a trusted key",
    );
    // Without the record source, the same bytes are verified and refused.
    denied(&decide(&c, &sudo, &e), "not a trusted key");

    // Everything after the signature still applies on a hit: window, host, user, revocation.
    let mut late = alice(&h, "sudo");
    late.now = NOW + 100_000;
    denied(
        &decide_rec(&c, &late, &evidence(vec![good.clone()]), t.path()),
        "expired",
    );
    let other_host = vec!["web-1".to_string()];
    denied(
        &decide_rec(
            &c,
            &alice(&other_host, "sudo"),
            &evidence(vec![good.clone()]),
            t.path(),
        ),
        "covers hosts",
    );
    let mut revoked = evidence(vec![good.clone()]);
    revoked.revocations = revocation_file(&k.grant, NOW, &["g-1"], &[]);
    denied(&decide_rec(&c, &sudo, &revoked, t.path()), "revoked");
    // Staleness: a hit on a grant-key grant is still refused with a stale list.
    let stale_c = config(&k, |r| r.revocation_max_age_secs = Some(60));
    let mut stale = evidence(vec![good.clone()]);
    stale.revocations = revocation_file(&k.grant, NOW - 3600, &[], &[]);
    hand_record(
        &dir,
        &good.bytes,
        &stale_c,
        "grant",
        &jit_common::keys::fingerprint(k.grant.public_key()),
    );
    denied(
        &decide_rec(&stale_c, &sudo, &stale, t.path()),
        "revocations",
    );
    // A file renamed to another id is not taken on the record's word.
    let mut renamed = good;
    renamed.name = "g-other.grant".into();
    denied(
        &decide_rec(&c, &sudo, &evidence(vec![renamed]), t.path()),
        "does not match its id",
    );
}

#[test]
#[ignore = "needs root"]
fn break_glass_records_stay_break_glass() {
    let (t, dir) = record_state();
    let k = keys();
    let c = config(&k, |r| r.revocation_max_age_secs = Some(60));
    let h = hosts();
    let g = file(grant("g-bg", "alice"), &k.glass);
    jit_common::record::write_grant_record(&dir, &g.bytes, &c.grant_keys, &c.break_glass_keys)
        .unwrap();
    let d = decide_rec(&c, &alice(&h, "sudo"), &evidence(vec![g]), t.path());
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(d.break_glass, "{d:?}");
    assert!(d.reason.starts_with("BREAK-GLASS grant g-bg"), "{d:?}");
    assert!(d.reason.contains("per its record"), "{d:?}");
}

#[test]
#[ignore = "needs root"]
fn revocation_list_records_are_used_and_still_bind_the_keys() {
    let (t, dir) = record_state();
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let g = file(grant("g-1", "alice"), &k.grant);
    let RevocationFile::Present(list) = revocation_file(&k.grant, NOW, &["g-1"], &[]) else {
        unreachable!()
    };
    jit_common::record::write_revocations_record(&dir, &list, &c.grant_keys, &c.break_glass_keys)
        .unwrap();
    let mut e = evidence(vec![g]);
    e.revocations = RevocationFile::Present(list);
    denied(&decide_rec(&c, &alice(&h, "sudo"), &e, t.path()), "revoked");
}

/// A record source that has no records and counts how often it is asked.
#[derive(Default)]
struct Counting(std::cell::Cell<usize>);

impl RecordSource for Counting {
    fn find(&self, _doc: &[u8]) -> Option<jit_common::record::TrustedRecord> {
        self.0.set(self.0.get() + 1);
        None
    }
}

/// `decide` reads nothing itself: root's records are asked for through the caller's
/// source, only for grants whose claims could allow and for the revocation list, and never
/// before the caller is identified.
#[test]
fn records_are_looked_up_only_through_the_callers_source() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let mut files: Vec<GrantFile> = (0..5)
        .map(|i| {
            let mut g = grant(&format!("g-web-{i}"), "alice");
            g.hosts = vec!["web-*".into()];
            file(g, &k.grant)
        })
        .collect();
    files.push(file(grant("g-z", "alice"), &k.grant));
    let e = evidence(files);
    let source = Counting::default();
    let d = decide_with(&c, &alice(&h, "sudo"), &e, &source);
    assert_eq!(d.grant_id.as_deref(), Some("g-z"), "{d:?}");
    assert_eq!(
        source.0.get(),
        2,
        "the revocation list and the one covering grant"
    );
    // An unidentified caller or an ungated service: nothing is looked up.
    let source = Counting::default();
    let mut f = alice(&h, "sudo");
    f.caller.ruser = None;
    denied(&decide_with(&c, &f, &e, &source), "PAM_RUSER");
    let d = decide_with(&c, &alice(&h, "login"), &e, &source);
    assert_eq!(d.verdict, Verdict::Ignore);
    assert_eq!(source.0.get(), 0);
}

// ---- Session-bound grants (issue 14) ----

use crate::session::{self as sess, Binding, ENDED_BY_LOGOUT, Liveness};

/// A session-bound grant `id` carried by certificate serial 42.
fn bound_grant(id: &str, user: &str) -> Grant {
    let mut g = grant(id, user);
    g.session_bound = true;
    g.cert_serial = Some(42);
    g
}

/// Session 7's binding of `grant_id` for `user`, led by this (live) test process.
fn binding(user: &str, grant_id: &str, serial: u64) -> Binding {
    Binding {
        version: sess::BINDING_VERSION,
        session_id: 7,
        user: user.into(),
        grant_id: grant_id.into(),
        role: "dba".into(),
        serial,
        leader_pid: std::process::id(),
        leader_start: sess::proc::own_start_time().unwrap(),
        boot_id: sess::proc::boot_id().unwrap(),
        since: NOW - 60,
        client: "192.0.2.7".into(),
        tty: "ssh".into(),
        not_after: NOW + 1200,
        ended_at: None,
        ended_by: None,
    }
}

/// The evidence as `gather_binding` builds it: the binding and its liveness now.
fn with_binding(files: Vec<GrantFile>, b: Binding) -> Evidence {
    let live = sess::liveness(&b);
    Evidence {
        session: BindingEvidence::Found(Box::new(b), live),
        ..evidence(files)
    }
}

fn in_session<'a>(h: &'a [String], id: Option<u32>) -> Facts<'a> {
    Facts {
        session_id: id,
        ..alice(h, "sudo")
    }
}

#[test]
fn a_session_bound_grant_allows_in_its_live_session() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let files = || vec![file(bound_grant("g-1", "alice"), &k.grant)];
    let e = with_binding(files(), binding("alice", "g-1", 42));
    let d = decide(&c, &in_session(&h, Some(7)), &e);
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert_eq!(d.grant_id.as_deref(), Some("g-1"));
    assert_eq!((d.session, d.serial), (Some(7), Some(42)));
}

#[test]
#[ignore = "needs root"]
fn root_records_do_not_skip_the_session_check() {
    let (t, dir) = record_state();
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let f = file(bound_grant("g-1", "alice"), &k.grant);
    jit_common::record::write_grant_record(&dir, &f.bytes, &c.grant_keys, &c.break_glass_keys)
        .unwrap();
    let e = with_binding(vec![f], binding("alice", "g-1", 42));
    let d = decide_rec(&c, &in_session(&h, Some(7)), &e, t.path());
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    assert!(d.reason.contains("per its record"), "{}", d.reason);
    denied(
        &decide_rec(&c, &in_session(&h, None), &e, t.path()),
        "no audit session id",
    );
    let e = Evidence {
        session: BindingEvidence::Missing,
        ..e
    };
    denied(
        &decide_rec(&c, &in_session(&h, Some(7)), &e, t.path()),
        "SSH session 7 has no binding",
    );
}

#[test]
fn a_session_bound_grant_needs_an_audit_session() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let e = with_binding(
        vec![file(bound_grant("g-1", "alice"), &k.grant)],
        binding("alice", "g-1", 42),
    );
    let d = decide(&c, &in_session(&h, None), &e);
    denied(
        &d,
        "jit: sudo denied for alice on db-1: grant g-1 is bound to an SSH session, but this process is in no login session (no audit session id); run sudo from the SSH connection that presented the certificate; if you did, the host's /etc/pam.d/sshd needs `session required pam_loginuid.so` before pam_jit.so (jit-host setup --session)",
    );
    assert_eq!(d.grant_id.as_deref(), Some("g-1"));
    assert_eq!((d.session, d.serial), (None, Some(42)));
}

#[test]
fn a_session_without_a_binding_is_denied_with_the_fix() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    for missing in [BindingEvidence::Missing, BindingEvidence::NotRead] {
        let e = Evidence {
            session: missing,
            ..evidence(vec![file(bound_grant("g-1", "alice"), &k.grant)])
        };
        let d = decide(&c, &in_session(&h, Some(7)), &e);
        denied(
            &d,
            "jit: sudo denied for alice on db-1: SSH session 7 has no binding; log in with the certificate that carries grant g-1 (jit login), or if you did, add `session optional pam_jit.so` after pam_loginuid in /etc/pam.d/sshd (jit-host setup --session)",
        );
        assert_eq!((d.session, d.serial), (Some(7), Some(42)));
    }
    let e = Evidence {
        session: BindingEvidence::Unusable("/run/jit/sessions has mode 0777".into()),
        ..evidence(vec![file(bound_grant("g-1", "alice"), &k.grant)])
    };
    denied(
        &decide(&c, &in_session(&h, Some(7)), &e),
        "grant g-1 is bound to SSH session 7, whose binding may not be trusted: /run/jit/sessions has mode 0777; ask an administrator",
    );
}

#[test]
fn a_binding_of_another_grant_serial_or_user_is_another_connection() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let files = || vec![file(bound_grant("g-1", "alice"), &k.grant)];
    // The wording covers both cases, since the binding cannot tell them apart: the grant
    // was presented by another connection, or in this one alongside the bound grant
    // (AuthenticationMethods publickey,publickey: a connection binds one).
    let d = decide(
        &c,
        &in_session(&h, Some(7)),
        &with_binding(files(), binding("alice", "g-2", 42)),
    );
    denied(
        &d,
        "jit: sudo denied for alice on db-1: grant g-1 (certificate serial 42) is not bound to SSH session 7 (grant g-2 is): it is bound to another SSH connection, or was presented in this one alongside grant g-2; use sudo in the connection that bound it, or log in again with only its certificate (jit login)",
    );
    // The same grant with another serial or user, or a file naming another session, is not
    // another connection's binding: the file does not say what it should. (This text used
    // to say "grant g-1 ... is not bound to SSH session 7 (grant g-1 is)", a contradiction.)
    for (b, detail) in [
        (
            binding("alice", "g-1", 43),
            "it names grant g-1 with certificate serial 43 for user alice, not serial 42 for alice",
        ),
        (
            binding("bob", "g-1", 42),
            "it names grant g-1 with certificate serial 42 for user bob, not serial 42 for alice",
        ),
    ] {
        let d = decide(&c, &in_session(&h, Some(7)), &with_binding(files(), b));
        denied(
            &d,
            &format!(
                "grant g-1 is bound to SSH session 7, whose binding may not be trusted: {detail}"
            ),
        );
        assert!(!d.user_message.unwrap().contains("(grant g-1 is)"));
    }
    // A binding that claims another session id than the caller's is not the caller's.
    let mut b = binding("alice", "g-1", 42);
    b.session_id = 8;
    denied(
        &decide(&c, &in_session(&h, Some(7)), &with_binding(files(), b)),
        "grant g-1 is bound to SSH session 7, whose binding may not be trusted: the file names SSH session 8",
    );
}

#[test]
fn an_ended_session_denies_and_says_when() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let mut b = binding("alice", "g-1", 42);
    b.ended_at = Some(NOW - 30);
    b.ended_by = Some(ENDED_BY_LOGOUT.into());
    let e = with_binding(vec![file(bound_grant("g-1", "alice"), &k.grant)], b);
    let d = decide(&c, &in_session(&h, Some(7)), &e);
    denied(
        &d,
        "jit: sudo denied for alice on db-1: grant g-1 is bound to SSH session 7, which ended at 2027-01-15T07:59:30Z; log in again with a fresh certificate",
    );
    assert_eq!((d.session, d.serial), (Some(7), Some(42)));
}

#[test]
fn a_gone_leader_or_another_boot_denies() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let files = || vec![file(bound_grant("g-1", "alice"), &k.grant)];
    // A real leader process: alive, then with another start time, then reaped.
    let mut child = std::process::Command::new("sleep")
        .arg("30")
        .spawn()
        .unwrap();
    let mut b = binding("alice", "g-1", 42);
    b.leader_pid = child.id();
    b.leader_start = sess::proc::start_time(child.id()).unwrap().unwrap();
    let d = decide(
        &c,
        &in_session(&h, Some(7)),
        &with_binding(files(), b.clone()),
    );
    assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
    let mut reused = b.clone();
    reused.leader_start += 1;
    let d = decide(&c, &in_session(&h, Some(7)), &with_binding(files(), reused));
    denied(
        &d,
        &format!(
            "grant g-1 is bound to SSH session 7, whose privileged sshd process {} is gone (logout, dropped connection or killed); log in again with a fresh certificate",
            child.id()
        ),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let e = with_binding(files(), b.clone());
    assert_eq!(
        e.session,
        BindingEvidence::Found(
            Box::new(b.clone()),
            Liveness::LeaderGone { pid: b.leader_pid }
        )
    );
    denied(&decide(&c, &in_session(&h, Some(7)), &e), "is gone");

    let mut other_boot = binding("alice", "g-1", 42);
    other_boot.boot_id = "00000000-0000-4000-8000-000000000000".into();
    denied(
        &decide(
            &c,
            &in_session(&h, Some(7)),
            &with_binding(files(), other_boot),
        ),
        "grant g-1 is bound to SSH session 7, which was bound before the host rebooted; log in again with a fresh certificate",
    );
    let e = Evidence {
        session: BindingEvidence::Found(
            Box::new(binding("alice", "g-1", 42)),
            Liveness::Unreadable("/proc/1/stat: EIO".into()),
        ),
        ..evidence(files())
    };
    denied(
        &decide(&c, &in_session(&h, Some(7)), &e),
        "whose connection cannot be checked: /proc/1/stat: EIO",
    );
}

#[test]
fn session_checks_come_last_and_rank_first() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    // An expired session-bound grant is denied as expired (the binding does not matter), and
    // the log still carries its session and serial.
    let mut g = bound_grant("g-old", "alice");
    g.not_before = NOW - 7200;
    g.not_after = NOW - 3600;
    let d = decide(
        &c,
        &in_session(&h, Some(7)),
        &with_binding(vec![file(g, &k.grant)], binding("alice", "g-old", 42)),
    );
    denied(&d, "grant g-old expired at");
    assert_eq!((d.session, d.serial), (Some(7), Some(42)));
    // A revoked one is revoked.
    let e = Evidence {
        revocations: revocation_file(&k.grant, NOW - 60, &["g-1"], &[]),
        ..with_binding(
            vec![file(bound_grant("g-1", "alice"), &k.grant)],
            binding("alice", "g-1", 42),
        )
    };
    denied(
        &decide(&c, &in_session(&h, Some(7)), &e),
        "grant g-1 was revoked",
    );
    // The caller's own ended connection beats an older grant bound elsewhere.
    let mut b = binding("alice", "g-2", 42);
    b.ended_at = Some(NOW - 30);
    b.ended_by = Some(ENDED_BY_LOGOUT.into());
    let files = vec![
        file(bound_grant("g-1", "alice"), &k.grant),
        file(bound_grant("g-2", "alice"), &k.grant),
        file(bound_grant("g-3", "alice"), &k.grant),
    ];
    denied(
        &decide(&c, &in_session(&h, Some(7)), &with_binding(files, b)),
        "grant g-2 is bound to SSH session 7, which ended at",
    );
    // Any live binding among several grants allows.
    let files = vec![
        file(bound_grant("g-1", "alice"), &k.grant),
        file(bound_grant("g-2", "alice"), &k.grant),
    ];
    let d = decide(
        &c,
        &in_session(&h, Some(7)),
        &with_binding(files, binding("alice", "g-2", 42)),
    );
    assert_eq!(
        (d.verdict, d.grant_id.as_deref()),
        (Verdict::Allow, Some("g-2"))
    );
}

#[test]
fn grants_that_are_not_session_bound_ignore_sessions() {
    let k = keys();
    let c = config(&k, |_| {});
    let h = hosts();
    let mut ended = binding("alice", "g-1", 42);
    ended.ended_at = Some(NOW - 30);
    ended.ended_by = Some(ENDED_BY_LOGOUT.into());
    for (id, ev) in [
        (None, BindingEvidence::NotRead),
        (Some(7), BindingEvidence::Missing),
        (Some(7), BindingEvidence::Unusable("bad".into())),
        (
            Some(7),
            BindingEvidence::Found(Box::new(ended.clone()), Liveness::OtherBoot),
        ),
    ] {
        let e = Evidence {
            session: ev,
            ..evidence(vec![file(grant("g-1", "alice"), &k.grant)])
        };
        let d = decide(&c, &in_session(&h, id), &e);
        assert_eq!(d.verdict, Verdict::Allow, "{d:?}");
        assert_eq!((d.session, d.serial), (None, None));
    }
    // A session-bound grant that cannot allow does not hide a plain one that can.
    let e = Evidence {
        session: BindingEvidence::Missing,
        ..evidence(vec![
            file(bound_grant("g-1", "alice"), &k.grant),
            file(grant("g-2", "alice"), &k.grant),
        ])
    };
    let d = decide(&c, &in_session(&h, Some(7)), &e);
    assert_eq!(
        (d.verdict, d.grant_id.as_deref()),
        (Verdict::Allow, Some("g-2"))
    );
}

#[test]
fn session_denials_in_audit_mode_and_break_glass() {
    let k = keys();
    let h = hosts();
    let a = config(&k, |r| r.mode = Mode::Audit);
    let e = Evidence {
        session: BindingEvidence::Missing,
        ..evidence(vec![file(bound_grant("g-1", "alice"), &k.grant)])
    };
    let d = decide(&a, &in_session(&h, Some(7)), &e);
    assert_eq!(d.result_word(), "audit-allow");
    assert!(
        d.reason
            .contains("would deny: SSH session 7 has no binding"),
        "{}",
        d.reason
    );
    assert_eq!((d.session, d.serial), (Some(7), Some(42)));

    // A break-glass grant (not session-bound) still allows next to an unbound one.
    let c = config(&k, |_| {});
    let e = Evidence {
        session: BindingEvidence::Missing,
        ..evidence(vec![
            file(bound_grant("g-1", "alice"), &k.grant),
            file(grant("g-bg", "alice"), &k.glass),
        ])
    };
    let d = decide(&c, &in_session(&h, None), &e);
    assert_eq!((d.verdict, d.break_glass), (Verdict::Allow, true), "{d:?}");
    assert_eq!(d.grant_id.as_deref(), Some("g-bg"));
    assert_eq!((d.session, d.serial), (None, None));
}

use super::*;
use crate::grant::{Approval, Grant};
use crate::revocation::RevocationList;
use crate::{UnixTime, UnverifiedGrant, VerifiedGrant, VerifiedRevocationList};
use ssh_key::{Algorithm, PrivateKey, rand_core::OsRng};
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

const NOW: UnixTime = UnixTime::from_secs(1_800_000_000);

fn key() -> PrivateKey {
    PrivateKey::random(&mut OsRng, Algorithm::Ed25519).unwrap()
}

fn ring(keys: &[&PrivateKey]) -> KeyRing {
    let mut r = KeyRing::new();
    for k in keys {
        r.push(k.public_key().clone());
    }
    r
}

fn grant(id: &str) -> Grant {
    Grant {
        version: 1,
        id: id.into(),
        user: "alice".into(),
        role: "ops".into(),
        hosts: vec!["db-1".into()],
        sudo: true,
        not_before: NOW - 60,
        not_after: NOW + 600,
        issued_at: NOW - 60,
        request_id: "r-1".into(),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "bob".into(),
            at: NOW - 60,
        }],
        ticket: None,
        cert_serial: None,
        session_bound: false,
        key_id: String::new(),
    }
}

fn is_root() -> bool {
    fs::metadata("/proc/self").unwrap().uid() == 0
}

/// A records directory inside a fresh 0755 temp dir (root-owned when tests run as root).
fn records() -> (tempfile::TempDir, PathBuf) {
    let t = tempfile::tempdir().unwrap();
    fs::set_permissions(t.path(), fs::Permissions::from_mode(0o755)).unwrap();
    let d = t.path().join(DIR_NAME);
    fs::create_dir(&d).unwrap();
    fs::set_permissions(&d, fs::Permissions::from_mode(0o755)).unwrap();
    (t, d)
}

struct Setup {
    _t: tempfile::TempDir,
    dir: PathBuf,
    grant_keys: KeyRing,
    none: KeyRing,
    doc: Vec<u8>,
    digest: KeyringDigest,
}

fn setup() -> Setup {
    let (t, dir) = records();
    let k = key();
    let grant_keys = ring(&[&k]);
    let none = KeyRing::new();
    let doc = grant("g-1").sign(&k).unwrap();
    let digest = KeyringDigest::of(&grant_keys, &none).unwrap();
    Setup {
        _t: t,
        dir,
        grant_keys,
        none,
        doc,
        digest,
    }
}

#[test]
fn records_not_owned_by_root_are_never_trusted() {
    let s = setup();
    assert_eq!(
        write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap(),
        Ring::Grant
    );
    let path = record_path(&s.dir, &DocDigest::of(&s.doc));
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    // As root, hand the record to another user; as anyone else it already is not root's.
    if is_root() {
        std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
    }
    assert_ne!(fs::metadata(&path).unwrap().uid(), 0);
    assert!(matches!(
        read_trusted(&s.dir, &s.doc),
        Err(RecordError::File(FileError::BadOwner { .. }))
    ));
}

#[test]
#[ignore = "needs root"]
fn record_hit_gives_the_same_verified_grant() {
    let s = setup();
    assert_eq!(
        write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap(),
        Ring::Grant
    );
    let path = record_path(&s.dir, &DocDigest::of(&s.doc));
    assert_eq!(fs::metadata(&path).unwrap().mode() & 0o777, 0o644);
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let rec = read_trusted(&s.dir, &s.doc).unwrap();
    assert_eq!(rec.kind(), Kind::Grant);
    assert_eq!(rec.ring(), Ring::Grant);
    let by_record = VerifiedGrant::from_record(&s.doc, &rec, &s.digest, NOW, 60).unwrap();
    let by_sig = UnverifiedGrant::parse(&s.doc)
        .unwrap()
        .verify_at(NOW, &s.grant_keys, 60)
        .unwrap();
    assert_eq!(by_record.grant(), by_sig.grant());
    assert_eq!(by_record.signer(), by_sig.signer());
    // The window still applies on a hit.
    assert!(matches!(
        VerifiedGrant::from_record(&s.doc, &rec, &s.digest, NOW + 10_000, 60),
        Err(Error::Expired { .. })
    ));
    assert!(matches!(
        VerifiedGrant::from_record(&s.doc, &rec, &s.digest, NOW - 10_000, 60),
        Err(Error::NotYetValid { .. })
    ));
}

#[test]
fn miss_when_there_is_no_record() {
    let s = setup();
    assert!(matches!(
        read_trusted(&s.dir, &s.doc),
        Err(RecordError::File(FileError::NotFound { .. }))
    ));
}

#[test]
#[ignore = "needs root"]
fn other_keys_invalidate_every_record() {
    let s = setup();
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let rec = read_trusted(&s.dir, &s.doc).unwrap();
    // A key added to either list, or moved between them, is another keyring.
    let extra = key();
    let mut more = s.grant_keys.clone();
    more.push(extra.public_key().clone());
    for other in [
        KeyringDigest::of(&more, &s.none).unwrap(),
        KeyringDigest::of(&s.grant_keys, &ring(&[&extra])).unwrap(),
        KeyringDigest::of(&s.none, &s.grant_keys).unwrap(),
    ] {
        assert_ne!(other, s.digest);
        assert!(matches!(
            VerifiedGrant::from_record(&s.doc, &rec, &other, NOW, 60),
            Err(Error::Record { .. })
        ));
    }
    // Order and comments in host.toml do not matter.
    let a = key();
    let b = key();
    assert_eq!(
        KeyringDigest::of(&ring(&[&a, &b]), &s.none).unwrap(),
        KeyringDigest::of(&ring(&[&b, &a]), &s.none).unwrap()
    );
}

#[test]
#[ignore = "needs root"]
fn tampered_bytes_have_no_record() {
    let s = setup();
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let rec = read_trusted(&s.dir, &s.doc).unwrap();
    // The same claims with a different user: another document, no record of its own...
    let text = String::from_utf8(s.doc.clone()).unwrap();
    let forged = text.replace("\"alice\"", "\"mallory\"").into_bytes();
    assert!(matches!(
        read_trusted(&s.dir, &forged),
        Err(RecordError::File(FileError::NotFound { .. }))
    ));
    // ...and the genuine record does not apply to it.
    assert!(matches!(
        VerifiedGrant::from_record(&forged, &rec, &s.digest, NOW, 60),
        Err(Error::Record { .. })
    ));
    // A record file copied under the forged document's name still names the genuine bytes.
    let forged_path = record_path(&s.dir, &DocDigest::of(&forged));
    fs::copy(record_path(&s.dir, &DocDigest::of(&s.doc)), &forged_path).unwrap();
    assert!(matches!(
        read_trusted(&s.dir, &forged),
        Err(RecordError::Malformed { .. })
    ));
    // A record is not a revocation list's record.
    assert!(matches!(
        VerifiedRevocationList::from_record(&s.doc, &rec, &s.digest),
        Err(Error::Record { .. })
    ));
}

#[test]
fn forged_grants_get_no_record() {
    let s = setup();
    let forger = key();
    let forged = grant("g-2").sign(&forger).unwrap();
    assert!(matches!(
        write_grant_record(&s.dir, &forged, &s.grant_keys, &s.none),
        Err(RecordError::Document(Error::UntrustedKey { .. }))
    ));
    let text = String::from_utf8(s.doc.clone()).unwrap();
    let edited = text.replace("\"ops\"", "\"dba\"").into_bytes();
    assert!(matches!(
        write_grant_record(&s.dir, &edited, &s.grant_keys, &s.none),
        Err(RecordError::Document(Error::BadSignature))
    ));
    assert_eq!(fs::read_dir(&s.dir).unwrap().count(), 0);
}

#[test]
#[ignore = "needs root"]
fn untrusted_record_files_are_ignored() {
    let s = setup();
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let path = record_path(&s.dir, &DocDigest::of(&s.doc));
    // Group-writable file.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
    assert!(matches!(
        read_trusted(&s.dir, &s.doc),
        Err(RecordError::File(FileError::BadMode { .. }))
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    // Owned by another user (say, the grant writer).
    std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
    assert!(matches!(
        read_trusted(&s.dir, &s.doc),
        Err(RecordError::File(FileError::BadOwner { .. }))
    ));
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    assert!(read_trusted(&s.dir, &s.doc).is_ok());
    // A directory the grant writer owns (or anyone may write) is not root's.
    std::os::unix::fs::chown(&s.dir, Some(4242), None).unwrap();
    assert!(read_trusted(&s.dir, &s.doc).is_err());
    std::os::unix::fs::chown(&s.dir, Some(0), None).unwrap();
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(read_trusted(&s.dir, &s.doc).is_err());
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o755)).unwrap();
    // A symlink to a root-owned record elsewhere.
    let elsewhere = s.dir.parent().unwrap().join("elsewhere");
    fs::rename(&path, &elsewhere).unwrap();
    symlink(&elsewhere, &path).unwrap();
    assert!(matches!(
        read_trusted(&s.dir, &s.doc),
        Err(RecordError::File(FileError::Symlink { .. }))
    ));
    // Junk.
    fs::remove_file(&path).unwrap();
    secure_file::write_atomic(&path, b"jit-verified v1\nkind grant\n", 0o644).unwrap();
    assert!(matches!(
        read_trusted(&s.dir, &s.doc),
        Err(RecordError::Malformed { .. })
    ));
}

#[test]
#[ignore = "needs root"]
fn break_glass_records_say_so() {
    let (_t, dir) = records();
    let ca = key();
    let bg = key();
    let doc = grant("g-bg").sign(&bg).unwrap();
    let grant_keys = ring(&[&ca]);
    let bg_keys = ring(&[&bg]);
    assert_eq!(
        write_grant_record(&dir, &doc, &grant_keys, &bg_keys).unwrap(),
        Ring::BreakGlass
    );
    assert!(write_grant_record(&dir, &doc, &grant_keys, &KeyRing::new()).is_err());
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let rec = read_trusted(&dir, &doc).unwrap();
    assert_eq!(rec.ring(), Ring::BreakGlass);
    let digest = KeyringDigest::of(&grant_keys, &bg_keys).unwrap();
    assert!(VerifiedGrant::from_record(&doc, &rec, &digest, NOW, 60).is_ok());
}

#[test]
#[ignore = "needs root"]
fn revocation_list_records() {
    let s = setup();
    let k = key();
    let grant_keys = ring(&[&k]);
    let mut list = RevocationList::new(3, NOW);
    list.revoked_grants.insert("g-9".into());
    let doc = list.sign(&k).unwrap();
    write_revocations_record(&s.dir, &doc, &grant_keys, &s.none).unwrap();
    // Signed by an untrusted key: no record.
    assert!(write_revocations_record(&s.dir, &doc, &s.grant_keys, &s.none).is_err());
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let rec = read_trusted(&s.dir, &doc).unwrap();
    let digest = KeyringDigest::of(&grant_keys, &s.none).unwrap();
    let v = VerifiedRevocationList::from_record(&doc, &rec, &digest).unwrap();
    assert!(v.is_grant_revoked("g-9"));
    assert_eq!(v.list().sequence, 3);
    assert!(VerifiedGrant::from_record(&doc, &rec, &digest, NOW, 60).is_err());
}

#[test]
#[ignore = "needs root"]
fn prune_keeps_only_current_records() {
    let s = setup();
    // prune keeps root-owned records only; as another user every record is foreign.
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    let other = key();
    let other_ring = ring(&[&other]);
    let doc2 = grant("g-2").sign(&other).unwrap();
    // A record made under other keys (before a key change).
    write_grant_record(&s.dir, &doc2, &other_ring, &s.none).unwrap();
    fs::write(s.dir.join("junk"), b"x").unwrap();
    fs::write(s.dir.join(".tmp-in-progress"), b"x").unwrap();
    let keep: BTreeSet<DocDigest> = [DocDigest::of(&s.doc), DocDigest::of(&doc2)].into();
    let removed = prune(&s.dir, &keep, &s.digest).unwrap();
    assert_eq!(removed.len(), 2, "{removed:?}");
    assert!(removed.contains(&"junk".to_string()));
    assert!(removed.contains(&DocDigest::of(&doc2).hex()));
    assert!(record_path(&s.dir, &DocDigest::of(&s.doc)).exists());
    assert!(s.dir.join(".tmp-in-progress").exists());
    // A record root did not write (another owner) goes even if it looks current.
    let path = record_path(&s.dir, &DocDigest::of(&s.doc));
    std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
    assert_eq!(
        prune(&s.dir, &keep, &s.digest).unwrap(),
        vec![DocDigest::of(&s.doc).hex()]
    );
    // ...and the writer replaces an identical record it did not write itself.
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    assert_eq!(fs::metadata(&path).unwrap().uid(), 0);
    // A document no longer stored loses its record.
    let removed = prune(&s.dir, &BTreeSet::new(), &s.digest).unwrap();
    assert_eq!(removed, vec![DocDigest::of(&s.doc).hex()]);
}

#[test]
fn record_text_is_strict() {
    let s = setup();
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    let path = record_path(&s.dir, &DocDigest::of(&s.doc));
    let text = fs::read_to_string(&path).unwrap();
    assert!(TrustedRecord::parse(text.as_bytes()).is_ok());
    for bad in [
        text.replace("kind grant", "kind other"),
        text.replace("ring grant", "ring root"),
        text.replace("jit-verified v1", "jit-verified v2"),
        format!("{text}extra\n"),
        text.trim_end().to_string(),
        text.replace("signer SHA256:", "signer MD5:"),
        text.to_uppercase(),
    ] {
        assert!(TrustedRecord::parse(bad.as_bytes()).is_err(), "{bad}");
    }
}

#[test]
fn claims_only_readers_agree_with_the_full_parse() {
    let k = key();
    let doc = grant("g-7").sign(&k).unwrap();
    let full = UnverifiedGrant::parse(&doc).unwrap();
    assert_eq!(
        &crate::grant::parse_claims_unverified(&doc).unwrap(),
        full.claims_unverified()
    );
    let peek = crate::grant::peek_claims_unverified(&doc).unwrap();
    assert_eq!(peek.user, "alice");
    assert!(peek.sudo);
    assert_eq!(peek.not_after, NOW + 600);
    assert_eq!(peek.hosts, vec!["db-1"]);
    assert!(!peek.session_bound);
    // The peek sees session_bound as the full parse does.
    let mut bound = grant("g-8");
    bound.session_bound = true;
    bound.cert_serial = Some(42);
    let bound_doc = bound.sign(&k).unwrap();
    assert!(
        crate::grant::peek_claims_unverified(&bound_doc)
            .unwrap()
            .session_bound
    );
    assert!(
        crate::grant::parse_claims_unverified(&bound_doc)
            .unwrap()
            .session_bound
    );
    // Bodies the full parse refuses for their body are refused by the claims reader too.
    let text = String::from_utf8(doc.clone()).unwrap();
    let unknown = text.replacen("{\n", "{\n  \"extra\": 1,\n", 1);
    assert!(UnverifiedGrant::parse(unknown.as_bytes()).is_err());
    assert!(matches!(
        crate::grant::parse_claims_unverified(unknown.as_bytes()),
        Err(Error::UnknownField { .. })
    ));
    let v2 = text.replacen("\"version\": 1", "\"version\": 2", 1);
    assert!(matches!(
        crate::grant::parse_claims_unverified(v2.as_bytes()),
        Err(Error::UnknownVersion { found: 2 })
    ));
    assert!(crate::grant::parse_claims_unverified(b"{}").is_err());
    assert!(crate::grant::peek_claims_unverified(b"no signature").is_none());
}

/// A [`RecordDir`] (ancestors checked once) trusts exactly what [`read_trusted`] trusts: the
/// same file checks on every record, and an untrusted directory refuses them all.
#[test]
#[ignore = "needs root"]
fn a_checked_record_dir_trusts_what_read_trusted_trusts() {
    let s = setup();
    write_grant_record(&s.dir, &s.doc, &s.grant_keys, &s.none).unwrap();
    assert!(is_root(), "needs root (run with --include-ignored as root)");
    let via_dir = || RecordDir::open(&s.dir).and_then(|d| d.read_trusted(&s.doc));
    assert_eq!(via_dir().unwrap(), read_trusted(&s.dir, &s.doc).unwrap());
    let path = record_path(&s.dir, &DocDigest::of(&s.doc));
    let dir = RecordDir::open(&s.dir).unwrap();
    // The file's own checks still run on each read through an opened directory.
    fs::set_permissions(&path, fs::Permissions::from_mode(0o664)).unwrap();
    assert!(matches!(
        dir.read_trusted(&s.doc),
        Err(RecordError::File(FileError::BadMode { .. }))
    ));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    std::os::unix::fs::chown(&path, Some(4242), None).unwrap();
    assert!(matches!(
        dir.read_trusted(&s.doc),
        Err(RecordError::File(FileError::BadOwner { .. }))
    ));
    std::os::unix::fs::chown(&path, Some(0), None).unwrap();
    assert!(dir.read_trusted(&s.doc).is_ok());
    // Another document's bytes have no record there.
    assert!(dir.read_trusted(b"other bytes").is_err());
    // A directory (or an ancestor) that is not root's, or is writable by others: refused.
    std::os::unix::fs::chown(&s.dir, Some(4242), None).unwrap();
    assert!(via_dir().is_err());
    std::os::unix::fs::chown(&s.dir, Some(0), None).unwrap();
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o777)).unwrap();
    assert!(via_dir().is_err());
    fs::set_permissions(&s.dir, fs::Permissions::from_mode(0o755)).unwrap();
    let parent = s.dir.parent().unwrap();
    std::os::unix::fs::chown(parent, Some(4242), None).unwrap();
    assert!(via_dir().is_err());
    assert!(read_trusted(&s.dir, &s.doc).is_err());
    std::os::unix::fs::chown(parent, Some(0), None).unwrap();
    // A symlink in place of the directory.
    let moved = parent.join("moved");
    fs::rename(&s.dir, &moved).unwrap();
    symlink(&moved, &s.dir).unwrap();
    assert!(matches!(
        via_dir(),
        Err(RecordError::File(FileError::Symlink { .. }))
    ));
}

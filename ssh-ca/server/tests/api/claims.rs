//! Claims the code makes in comments and docs that had no test of their own:
//!
//! * the database connections are opened with `synchronous=FULL` (and WAL): a commit the
//!   service reported survives a power cut (store/mod.rs, service/commit.rs);
//! * the signer's `Debug` shows fingerprints only, never key material (signer/mod.rs), so a
//!   `{:?}` in a log line or a panic message cannot leak a CA key.

use jit_ca::signer::{ReadyKey, Signer};
use jit_ca::store::{self, Store};
use jit_test_kit::keys;
use ssh_key::{HashAlg, PrivateKey};

fn pragma(conn: &rusqlite::Connection, name: &str) -> String {
    conn.pragma_query_value(None, name, |r| {
        r.get::<_, i64>(0)
            .map(|v| v.to_string())
            .or_else(|_| r.get::<_, String>(0))
    })
    .unwrap()
}

#[test]
fn every_database_connection_is_synchronous_full_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("jit.db");
    // The writer (`Ca::open` opens the database with `Store::open`).
    let s = Store::open(&db).unwrap();
    // 2 = FULL (0 OFF, 1 NORMAL, 3 EXTRA).
    assert_eq!(pragma(s.conn(), "synchronous"), "2", "writer");
    assert_eq!(pragma(s.conn(), "journal_mode").to_lowercase(), "wal");
    // The background checkpointer.
    let ck = store::open_checkpointer(&db).unwrap();
    assert_eq!(pragma(&ck, "synchronous"), "2", "checkpointer");
    // Reopened (a restart): the setting is per connection, so it must be set again.
    drop(s);
    let s = Store::open(&db).unwrap();
    assert_eq!(
        pragma(s.conn(), "synchronous"),
        "2",
        "writer after a restart"
    );
}

/// Every spelling of `key`'s secret that a careless `Debug` could print.
fn secret_spellings(key: &PrivateKey) -> Vec<String> {
    let secret = key.key_data().ed25519().unwrap().private.to_bytes();
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    let pem = key.to_openssh(ssh_key::LineEnding::LF).unwrap();
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    vec![
        format!("{secret:?}"),
        format!("{:?}", &secret[..8]),
        hex[..16].to_string(),
        body[body.len() - 40..].to_string(),
    ]
}

#[test]
fn signer_debug_shows_fingerprints_only() {
    let (ca, ca2, grant) = (keys::user_ca(), keys::named("ca-next"), keys::grant());
    let signer = Signer::from_keys(vec![ca.clone(), ca2.clone()], vec![grant.clone()]).unwrap();
    let ready = ReadyKey::new(grant.clone()).unwrap();
    for text in [
        format!("{signer:?}"),
        format!("{signer:#?}"),
        format!("{ready:?}"),
        format!("{ready:#?}"),
    ] {
        for k in [&ca, &ca2, &grant] {
            for s in secret_spellings(k) {
                assert!(!text.contains(&s), "Debug leaks key material {s:?}: {text}");
            }
        }
        assert!(
            !text.contains("PrivateKey") && !text.contains("Keypair"),
            "Debug shows a private key type: {text}"
        );
    }
    let text = format!("{signer:?}");
    for k in [&ca, &ca2, &grant] {
        let fp = k.public_key().fingerprint(HashAlg::Sha256).to_string();
        assert!(text.contains(&fp), "no fingerprint {fp} in {text}");
    }
    assert!(
        format!("{ready:?}").contains(&grant.public_key().fingerprint(HashAlg::Sha256).to_string())
    );
}

//! Interoperability with the real OpenSSH `ssh-keygen -Y`: grants signed by common verify with
//! `ssh-keygen -Y verify`, and grants signed by `ssh-keygen -Y sign` verify in common. The
//! exact recipe tested here is the one documented in docs/grant-format.md.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use jit_common::grant::{Approval, Grant};
use jit_common::{KeyRing, UnixTime, UnverifiedGrant, now};
use ssh_key::PrivateKey;

fn grant(t: UnixTime) -> Grant {
    Grant {
        version: 1,
        id: "g-interop".into(),
        user: "alice".into(),
        role: "db-admin".into(),
        hosts: vec!["db-*".into()],
        sudo: true,
        not_before: t - 60,
        not_after: t + 600,
        issued_at: t - 60,
        request_id: "r-interop".into(),
        reason: "interop test".into(),
        approvers: vec![Approval {
            user: "bob".into(),
            at: t - 60,
        }],
        ticket: None,
        cert_serial: None,
        session_bound: false,
        key_id: String::new(),
    }
}

fn keygen(dir: &Path) -> (PrivateKey, std::path::PathBuf) {
    let path = dir.join("grant-key");
    let st = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", "jit-grant", "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen must be installed (openssh-client)");
    assert!(st.success());
    (
        PrivateKey::from_openssh(fs::read_to_string(&path).unwrap()).unwrap(),
        path,
    )
}

/// Splits a grant file as the documented recipe does (sed at the BEGIN line).
fn split(doc: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let s = std::str::from_utf8(doc).unwrap();
    let i = s.find("-----BEGIN SSH SIGNATURE-----").unwrap();
    (s.as_bytes()[..i].to_vec(), s.as_bytes()[i..].to_vec())
}

#[test]
fn common_signs_ssh_keygen_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (key, path) = keygen(dir.path());
    let doc = grant(now()).sign(&key).unwrap();
    let grant_file = dir.path().join("g.grant");
    fs::write(&grant_file, &doc).unwrap();
    let pubkey = fs::read_to_string(path.with_extension("pub")).unwrap();
    fs::write(
        dir.path().join("allowed_signers"),
        format!("jit-ca {pubkey}"),
    )
    .unwrap();

    // The recipe from docs/grant-format.md, run by a real shell.
    let recipe = r#"
        sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' g.grant > g.body
        sed -n '/^-----BEGIN SSH SIGNATURE-----$/,$p' g.grant > g.sig
        ssh-keygen -Y verify -f allowed_signers -I jit-ca -n jit-grant@jit -s g.sig < g.body
    "#;
    let out = Command::new("sh")
        .arg("-ec")
        .arg(recipe)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "ssh-keygen refused: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("Good \"jit-grant@jit\" signature"));

    // A changed body is refused by ssh-keygen too.
    let tampered = String::from_utf8(doc)
        .unwrap()
        .replacen("\"alice\"", "\"mallory\"", 1);
    fs::write(&grant_file, tampered).unwrap();
    let out = Command::new("sh")
        .arg("-ec")
        .arg(recipe)
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn ssh_keygen_signs_common_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let (key, path) = keygen(dir.path());
    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let t = now();
    let mut g = grant(t);
    g.key_id = jit_common::keys::fingerprint(key.public_key());
    let mut body = serde_json::to_vec_pretty(&g).unwrap();
    body.push(b'\n');
    let body_path = dir.path().join("g.body");
    fs::write(&body_path, &body).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "jit-grant@jit", "-f"])
        .arg(&path)
        .arg(&body_path)
        .stderr(Stdio::inherit())
        .status()
        .unwrap();
    assert!(st.success());
    let mut doc = body.clone();
    doc.extend(fs::read(dir.path().join("g.body.sig")).unwrap());
    let ring =
        KeyRing::from_openssh_lines(&fs::read_to_string(path.with_extension("pub")).unwrap())
            .unwrap();
    let verified = UnverifiedGrant::parse(&doc)
        .unwrap()
        .verify_at(t, &ring, 0)
        .unwrap();
    assert_eq!(verified.covers("alice", &["db-3"], t), Ok(()));
    let (b, _) = split(&doc);
    assert_eq!(b, body);

    // ssh-keygen with another namespace: refused by common.
    fs::remove_file(dir.path().join("g.body.sig")).unwrap();
    let st = Command::new("ssh-keygen")
        .args(["-q", "-Y", "sign", "-n", "file", "-f"])
        .arg(&path)
        .arg(&body_path)
        .status()
        .unwrap();
    assert!(st.success());
    let mut doc = body;
    doc.extend(fs::read(dir.path().join("g.body.sig")).unwrap());
    let err = UnverifiedGrant::parse(&doc)
        .unwrap()
        .verify_at(t, &ring, 0)
        .unwrap_err();
    assert!(
        matches!(err, jit_common::Error::WrongNamespace { .. }),
        "{err}"
    );
}

//! `jit` with a real `ssh-agent`: signing API calls with an agent-held key (SSHSIG made by
//! the agent), choosing the registered key among several, and loading certificates.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use jit::login::LoginReport;
use jit_api::wire::{RequestView, WhoamiView};
use jit_test_kit::running::*;

/// `request --no-wait` with `requester`, approved by `approver`; returns the id.
fn approved(ca: &Ca, mut requester: Command, approver: &User) -> String {
    let r: RequestView = json(requester.args([
        "request",
        "db-admin",
        "--duration",
        "20m",
        "--reason",
        "agent test",
        "--no-wait",
        "--json",
    ]));
    let _: RequestView = json(ca.jit(approver).args(["approve", &r.id, "--json"]));
    r.id
}

#[test]
fn agent_only_identity_signs_and_gets_a_certificate_file() {
    let ca = Ca::start();
    let bob = ca.user("bob", &["dba"]);
    let agent = SshAgent::start();

    // alice's key lives only in the agent; a second, unregistered key is loaded first.
    let keys = ca.dir.path().join("alice-keys");
    keygen(&keys.join("other"), "");
    keygen(&keys.join("alice"), "");
    ca.register("alice", &keys.join("alice.pub"), &["dev"]);
    agent.add(&keys.join("other"));
    agent.add(&keys.join("alice"));
    let alice = User {
        name: "alice".into(),
        home: ca.dir.path().join("home/alice"),
    };
    std::fs::create_dir_all(&alice.home).unwrap();
    let jit = || {
        let mut c = ca.jit(&alice);
        c.env("SSH_AUTH_SOCK", &agent.sock);
        c
    };

    let w: WhoamiView = json(jit().args(["whoami", "--json"]));
    assert_eq!(w.user, "alice");

    let id = approved(&ca, jit(), &bob);
    let rep: LoginReport = json(jit().args(["login", &id, "--json"]));
    let cert = alice.home.join(format!(".ssh/jit-{id}-cert.pub"));
    assert_eq!(rep.certificate_file.as_deref(), Some(cert.as_path()));
    assert!(keygen_l(&cert).contains(&format!("jit:{id}:alice")));
    assert!(alice.home.join(format!(".ssh/jit-{id}.grant")).exists());
    assert_eq!(rep.agent_loaded, Some(false));
    assert!(rep.ssh_hint.unwrap().contains("CertificateFile="));

    // --identity naming the public key selects that agent key; the cert goes next to it.
    let with_pub = || {
        let mut c = jit();
        c.arg("--identity").arg(keys.join("alice.pub"));
        c
    };
    let id2 = approved(&ca, with_pub(), &bob);
    let rep: LoginReport = json(with_pub().args(["login", &id2, "--json"]));
    assert_eq!(
        rep.certificate_file.as_deref(),
        Some(keys.join("alice-cert.pub").as_path())
    );
    // The private key file is next to it and unencrypted: key + cert go into the agent.
    assert_eq!(rep.agent_loaded, Some(true), "{:?}", rep.agent_note);
    assert!(
        agent.list().contains("ssh-ed25519-cert-v01@openssh.com"),
        "{}",
        agent.list()
    );
}

#[test]
fn encrypted_key_file_works_through_the_agent_and_file_keys_load_the_agent() {
    let ca = Ca::start();
    let bob = ca.user("bob", &["dba"]);
    let agent = SshAgent::start();

    // An encrypted key: refused without an agent, used through the agent once added.
    let home = ca.dir.path().join("home/alice");
    let key = home.join(".ssh/id_ed25519");
    keygen(&key, "correct horse");
    ca.register("alice", &home.join(".ssh/id_ed25519.pub"), &["dev"]);
    let alice = User {
        name: "alice".into(),
        home,
    };
    let (code, _, err) = out(ca.jit(&alice).arg("--identity").arg(&key).arg("whoami"));
    assert_eq!(code, 1);
    assert!(err.contains("encrypted"), "{err}");

    let add = Command::new("ssh-add")
        .env("SSH_AUTH_SOCK", &agent.sock)
        .env("SSH_ASKPASS_REQUIRE", "force")
        .env("SSH_ASKPASS", write_askpass(ca.dir.path(), "correct horse"))
        .env("DISPLAY", "none")
        .arg(&key)
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let mut jit = ca.jit(&alice);
    jit.env("SSH_AUTH_SOCK", &agent.sock)
        .arg("--identity")
        .arg(&key);
    let w: WhoamiView = json(jit.args(["whoami", "--json"]));
    assert_eq!(w.user, "alice");

    // The default key file with the agent: the certificate lands next to it (plain ssh
    // finds it); the agent cannot take it without the decrypted key, and says so.
    let jit = || {
        let mut c = ca.jit(&alice);
        c.env("SSH_AUTH_SOCK", &agent.sock);
        c
    };
    let id = approved(&ca, jit(), &bob);
    let rep: LoginReport = json(jit().args(["login", &id, "--json"]));
    assert_eq!(
        rep.certificate_file.as_deref(),
        Some(alice.cert().as_path())
    );
    assert_eq!(rep.agent_loaded, Some(false));
    assert!(rep.agent_note.unwrap().contains("ssh-add"));

    // An unencrypted key file plus a running agent: key and certificate are loaded.
    let carol = ca.user("carol", &["dev"]);
    let jit = || {
        let mut c = ca.jit(&carol);
        c.env("SSH_AUTH_SOCK", &agent.sock)
            .arg("--identity")
            .arg(carol.key());
        c
    };
    let id = approved(&ca, jit(), &bob);
    let rep: LoginReport = json(jit().args(["login", &id, "--json"]));
    assert_eq!(rep.agent_loaded, Some(true), "{:?}", rep.agent_note);
    let listed = agent.list();
    let cert_line = std::fs::read_to_string(carol.cert()).unwrap();
    let blob = cert_line.split_whitespace().nth(1).unwrap();
    assert!(
        listed.contains(blob),
        "agent lists the certificate: {listed}"
    );
}

fn write_askpass(dir: &std::path::Path, pass: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt as _;
    let p = dir.join("askpass.sh");
    std::fs::write(&p, format!("#!/bin/sh\necho '{pass}'\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
    p
}

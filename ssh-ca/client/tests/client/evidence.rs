//! `jit approve` names the digest of the request it approves, and the CA keeps the signed
//! call as the approval's evidence, which `ssh-keygen -Y verify` checks with the approver's
//! own public key file.

use std::process::Command;

use jit_api::evidence::RequestFacts;
use jit_api::wire::{RequestState, RequestView};
use jit_test_kit::running::*;

#[test]
fn jit_approve_signs_the_digest_of_the_request() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "15m",
        "--reason",
        "INC-42 disk full",
        "--no-wait",
        "--json",
    ]));
    let digest = RequestFacts::of_view(&r).unwrap().digest();
    assert_eq!(r.request_digest.as_deref(), Some(digest.as_str()));

    let approved: RequestView = json(ca.jit(&bob).args(["approve", &r.id, "--json"]));
    assert_eq!(approved.state, RequestState::Approved);

    let out = run_ok(
        Command::new(JIT_CA)
            .args(["audit", "export", "--json", "--dir"])
            .arg(ca.data()),
    );
    let approval: serde_json::Value = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["event"] == "approval")
        .unwrap();
    assert_eq!(approval["actor"], "bob");
    let ev = &approval["details"]["evidence"];
    assert_eq!(ev["named_digest"], digest.as_str());
    assert_eq!(ev["body"], format!("{{\"request_digest\":\"{digest}\"}}"));

    // bob's own public key file, not the record's copy.
    let dir = tempfile::tempdir().unwrap();
    let bob_pub = std::fs::read_to_string(bob.home.join(".ssh/id_ed25519.pub")).unwrap();
    let signers = dir.path().join("allowed_signers");
    std::fs::write(&signers, format!("bob {bob_pub}")).unwrap();
    let sig = dir.path().join("approval.sig");
    std::fs::write(&sig, ev["signature"].as_str().unwrap()).unwrap();
    let msg = dir.path().join("approval.msg");
    std::fs::write(&msg, ev["message"].as_str().unwrap()).unwrap();
    let verified = Command::new("ssh-keygen")
        .args(["-Y", "verify", "-f"])
        .arg(&signers)
        .args(["-I", "bob", "-n", "jit-api@jit", "-s"])
        .arg(&sig)
        .stdin(std::fs::File::open(&msg).unwrap())
        .output()
        .unwrap();
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stderr)
    );
    let line4 = ev["message"].as_str().unwrap().lines().nth(3).unwrap();
    assert_eq!(line4, format!("/v1/requests/{}/approve", r.id));
}

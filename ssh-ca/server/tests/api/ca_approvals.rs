//! Issue 11, items 2, 3, 4, 13 and 15: what an approval covers and who can make one.
//!
//! * extending never goes beyond the window that was approved (item 2);
//! * approval and extension use the policy in force at that moment (item 3);
//! * an extension supersedes (revokes) the previous certificate and grant, and the active
//!   grants per user are bounded (item 4);
//! * reasons refuse invisible and bidi format characters (item 13);
//! * a role can require approvals signed by a dedicated approval key and/or a touched FIDO
//!   key, so a forwarded agent alone cannot approve (item 15).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use axum::body::Body;
use axum::http::Request;
use jit_api::auth;
use jit_common::{KeyRing, UnverifiedGrant, UnverifiedRevocationList};
use jit_test_kit::harness::*;
use serde_json::{Value, json};
use ssh_key::{Algorithm, HashAlg, PrivateKey, PublicKey, SshSig};

/// Roles added to [`POLICY`] for these tests.
const EXTRA: &str = r#"
[roles.lab]
hosts = ["lab-*"]
sudo = true
max_duration = "8h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approvals = 2
require_reason = false
[[roles.lab.auto_approve_rules]]
name = "lab-oncall"
groups = ["oncall"]
max_duration = "5m"

[roles.self-serve]
hosts = ["dev-*"]
sudo = true
max_duration = "4h"
requesters = ["group:dev"]
approvers = ["group:dba"]
auto_approve = true
require_reason = false

[roles.vault]
hosts = ["vault-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approval_key = "dedicated"
require_reason = false

[roles.hsm]
hosts = ["hsm-*"]
max_duration = "1h"
requesters = ["group:dev"]
approvers = ["group:dba"]
approval_key = "sk"
require_reason = false
"#;

fn harness() -> Harness {
    Harness::with_policy(&format!("{POLICY}{EXTRA}"))
}

async fn extend(h: &Harness, user: &str, id: &str, secs: u64) -> (axum::http::StatusCode, Value) {
    h.call(
        user,
        "POST",
        &format!("/v1/requests/{id}/extend"),
        json!({"duration_secs": secs}),
    )
    .await
}

async fn cert_of(h: &Harness, user: &str, id: &str) -> Value {
    let (s, v) = h
        .call(
            user,
            "GET",
            &format!("/v1/requests/{id}/certificate"),
            Value::Null,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    v
}

fn set_policy(h: &Harness, text: &str) {
    std::fs::write(h.path().join("policy.toml"), text).unwrap();
    h.ca.reload_policy().unwrap();
}

// ---- item 2 ----

#[tokio::test]
async fn an_auto_approved_short_window_is_not_extended_past_what_the_rule_approved() {
    let h = harness();
    let start = h.now();
    let (s, v) = h.request("alice", "lab", 120, "").await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["state"], "approved", "auto-approved by lab-oncall");
    let id = v["id"].as_str().unwrap().to_string();
    let first = cert_of(&h, "alice", &id).await;

    // 8 hours on a 5-minute auto-approval of a 2-approval role: refused, nothing issued.
    let got = extend(&h, "alice", &id, 8 * 3600 - 120).await;
    assert_error(&got, 403, "extension_not_approved");
    let msg = got.1["error"]["message"].as_str().unwrap();
    assert!(msg.contains("request again"), "{msg}");
    let (_, shown) = h
        .call("alice", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(shown["valid_before"], start + 120, "{shown}");
    assert_eq!(cert_of(&h, "alice", &id).await["serial"], first["serial"]);

    // Within what the rule approves for the whole window (5 minutes): allowed.
    let (s, v) = extend(&h, "alice", &id, 180).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["valid_before"], start + 300);
    // One second more is beyond the rule.
    assert_error(
        &extend(&h, "alice", &id, 1).await,
        403,
        "extension_not_approved",
    );

    // The audit trail records how each certificate was approved.
    let recs = jit_ca::admin::audit_export(&h.path()).unwrap();
    let issuance = recs.iter().find(|r| r["event"] == "issuance").unwrap();
    assert_eq!(
        issuance["details"]["approval"]["basis"]["auto_rule"],
        "auto:lab-oncall"
    );
    assert_eq!(
        issuance["details"]["approval"]["approved_until"],
        start + 120
    );
    let ext = recs.iter().find(|r| r["event"] == "extension").unwrap();
    assert_eq!(ext["details"]["approval"]["approved_until"], start + 300);
    assert_eq!(ext["details"]["covered_by"], "auto:lab-oncall");
    assert!(
        recs.iter().any(|r| r["event"] == "extension_refused"
            && r["details"]["code"] == "extension_not_approved"),
        "the refusal is audited"
    );
}

#[tokio::test]
async fn a_human_approval_covers_only_the_window_it_approved() {
    let h = harness();
    let (_, v) = h.request("alice", "db-admin", 1800, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(h.approve("bob", &id).await.0, 200);
    h.clock.advance(60);
    // bob approved 30 minutes; more needs a new approval.
    assert_error(
        &extend(&h, "alice", &id, 600).await,
        403,
        "extension_not_approved",
    );
    let recs = jit_ca::admin::audit_export(&h.path()).unwrap();
    let issuance = recs.iter().find(|r| r["event"] == "issuance").unwrap();
    assert_eq!(
        issuance["details"]["approval"]["basis"]["approvers"],
        json!(["bob"])
    );
}

// ---- item 3 ----

#[tokio::test]
async fn approval_refuses_a_request_the_current_policy_no_longer_allows() {
    let h = harness();
    let base = format!("{POLICY}{EXTRA}");
    // Hosts narrowed between request and approval.
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    set_policy(
        &h,
        &base.replacen("hosts = [\"db-*\"]", "hosts = [\"db-1\"]", 1),
    );
    let got = h.approve("bob", &id).await;
    assert_error(&got, 409, "policy_changed");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("request again")
    );
    // A request made under the new policy is approved normally (once the old one, still
    // pending, is withdrawn: one pending request per user and role).
    cancel(&h, "alice", &id).await;
    let (_, v) = h.request("alice", "db-admin", 600, "x").await;
    assert_eq!(
        h.approve("bob", v["id"].as_str().unwrap()).await.1["state"],
        "approved"
    );

    // sudo taken away, a principal removed, the requester no longer eligible, max_duration
    // lowered: each refuses the approval.
    for (from, to) in [
        (
            "sudo = true\nmax_duration = \"1h\"",
            "sudo = false\nmax_duration = \"1h\"",
        ),
        ("principals = [\"dbadmin\"]", "principals = []"),
        ("max_duration = \"1h\"", "max_duration = \"5m\""),
        (
            "requesters = [\"group:dev\"]\napprovers = [\"group:dba\"]\napprovals = 1",
            "requesters = [\"carol\"]\napprovers = [\"group:dba\"]\napprovals = 1",
        ),
    ] {
        set_policy(&h, &base);
        let (_, v) = h.request("alice", "db-admin", 600, "x").await;
        let id = v["id"].as_str().unwrap().to_string();
        let changed = base.replacen(from, to, 1);
        assert_ne!(changed, base, "{from}");
        set_policy(&h, &changed);
        assert_error(&h.approve("bob", &id).await, 409, "policy_changed");
        cancel(&h, "alice", &id).await;
    }
}

/// `user` withdraws their pending request `id`.
async fn cancel(h: &Harness, user: &str, id: &str) {
    let got = h
        .call(
            user,
            "POST",
            &format!("/v1/requests/{id}/cancel"),
            json!({}),
        )
        .await;
    assert_eq!(got.1["state"], "cancelled", "{got:?}");
}

#[tokio::test]
async fn only_approvals_of_current_registered_approvers_count() {
    let h = harness();
    let base = format!("{POLICY}{EXTRA}");
    // bob approves; then bob is no longer an approver of two-man; carol's approval is the
    // only one that counts, so the request stays pending.
    let (_, v) = h.request("alice", "two-man", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(h.approve("bob", &id).await.1["state"], "pending");
    set_policy(
        &h,
        &base.replacen(
            "approvers = [\"group:dev\", \"group:dba\"]",
            "approvers = [\"carol\", \"dave\"]",
            1,
        ),
    );
    let (s, v) = h.approve("carol", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["state"], "pending",
        "bob's approval no longer counts: {v}"
    );
    let (s, v) = h.approve("dave", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    let grant = UnverifiedGrant::parse(
        cert_of(&h, "alice", &id).await["grant"]
            .as_str()
            .unwrap()
            .as_bytes(),
    )
    .unwrap();
    let names: Vec<&str> = grant
        .claims_unverified()
        .approvers
        .iter()
        .map(|a| a.user.as_str())
        .collect();
    assert_eq!(names, ["carol", "dave"], "the grant names who counted");

    // An approver removed from the CA: their approval no longer counts.
    set_policy(&h, &base);
    let (_, v) = h.request("alice", "two-man", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(h.approve("bob", &id).await.1["state"], "pending");
    jit_ca::admin::user_remove(&h.path(), "bob", h.now()).unwrap();
    assert_eq!(h.approve("carol", &id).await.1["state"], "pending");
}

/// Item 5 variant: the approvals a removed user had given on pending requests are withdrawn
/// with them; a user of the same name added later (a new person, or the same one with a new
/// key after a leak) does not bring them back.
#[tokio::test]
async fn a_removed_users_approvals_do_not_come_back_with_the_name() {
    let h = harness();
    let (_, v) = h.request("alice", "two-man", 600, "x").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(h.approve("bob", &id).await.1["state"], "pending");
    let removal = jit_ca::admin::user_remove(&h.path(), "bob", h.now()).unwrap();
    assert_eq!(removal.approvals_withdrawn, vec![id.clone()]);
    let key = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let pub_path = h.dir.path().join("bob-new.pub");
    std::fs::write(&pub_path, key.public_key().to_openssh().unwrap()).unwrap();
    jit_ca::admin::user_add(&h.path(), "bob", &pub_path, &["dba".to_string()], h.now()).unwrap();
    let (s, v) = h.approve("carol", &id).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        v["state"], "pending",
        "bob's old approval does not count: {v}"
    );
    let events = jit_ca::admin::audit_export(&h.path()).unwrap();
    let removal = events.iter().find(|r| r["event"] == "user_remove").unwrap();
    assert_eq!(removal["details"]["approvals_withdrawn"], json!([id]));
}

#[tokio::test]
async fn extension_uses_the_current_policy() {
    let h = harness();
    let base = format!("{POLICY}{EXTRA}");
    let (_, v) = h.request("alice", "self-serve", 600, "").await;
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(v["state"], "approved");
    // self-serve auto-approves any window up to 4 h: an extension is covered.
    assert_eq!(extend(&h, "alice", &id, 600).await.0, 200);
    // The role's hosts change: the extension is refused.
    set_policy(
        &h,
        &base.replacen("hosts = [\"dev-*\"]", "hosts = [\"dev-1\"]", 1),
    );
    assert_error(&extend(&h, "alice", &id, 600).await, 409, "policy_changed");
    // The role stops auto-approving: an extension beyond the window needs approvals.
    set_policy(
        &h,
        &base.replacen("auto_approve = true\n", "auto_approve = false\n", 1),
    );
    assert_error(
        &extend(&h, "alice", &id, 600).await,
        403,
        "extension_not_approved",
    );
}

// ---- item 4 ----

#[tokio::test]
async fn an_extension_revokes_the_superseded_certificate_and_grant() {
    let h = harness();
    let (_, v) = h.request("alice", "self-serve", 600, "").await;
    let id = v["id"].as_str().unwrap().to_string();
    let old = cert_of(&h, "alice", &id).await;
    let old_grant = UnverifiedGrant::parse(old["grant"].as_str().unwrap().as_bytes())
        .unwrap()
        .claims_unverified()
        .id
        .clone();
    let (_, _, hd) = h.get("/v1/krl", None).await;
    let krl_etag = hd["etag"].to_str().unwrap().to_string();
    h.clock.advance(30);
    let (s, v) = extend(&h, "alice", &id, 600).await;
    assert_eq!(s, 200, "{v}");
    let new = cert_of(&h, "alice", &id).await;
    assert_ne!(new["serial"], old["serial"]);

    // The KRL names the old serial (ssh-keygen -Q), not the new one.
    let (s, krl, _) = h.get("/v1/krl", Some(&krl_etag)).await;
    assert_eq!(s, 200, "the KRL changed");
    let krl_path = write(h.dir.path(), "krl", &krl);
    let old_path = write(
        h.dir.path(),
        "old-cert.pub",
        old["certificate"].as_str().unwrap().as_bytes(),
    );
    let new_path = write(
        h.dir.path(),
        "new-cert.pub",
        new["certificate"].as_str().unwrap().as_bytes(),
    );
    let (ok, text) = ssh_keygen(&[
        "-Q",
        "-f",
        krl_path.to_str().unwrap(),
        old_path.to_str().unwrap(),
    ]);
    assert!(!ok && text.contains("REVOKED"), "ssh-keygen -Q: {text}");
    let (ok, text) = ssh_keygen(&[
        "-Q",
        "-f",
        krl_path.to_str().unwrap(),
        new_path.to_str().unwrap(),
    ]);
    assert!(ok, "ssh-keygen -Q: {text}");

    // The signed revocation list names the old grant id and serial.
    let (_, doc, _) = h.get("/v1/revocations", None).await;
    let mut ring = KeyRing::new();
    ring.push(h.ca.signer().grant_key().public_key().clone());
    let list = UnverifiedRevocationList::parse(&doc)
        .unwrap()
        .verify(&ring)
        .unwrap();
    assert!(list.is_grant_revoked(&old_grant));
    assert!(list.is_serial_revoked(old["serial"].as_u64().unwrap()));
    assert!(!list.is_serial_revoked(new["serial"].as_u64().unwrap()));

    // Hosts are served only the new grant.
    let (_, body, _) = h.get("/v1/hosts/dev-1/grants", None).await;
    let grants: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(grants["grants"], json!([new["grant"]]));

    // The audit record of the extension names what it superseded.
    let ext = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .find(|r| r["event"] == "extension")
        .unwrap();
    assert_eq!(ext["details"]["superseded_serials"], json!([old["serial"]]));
    assert_eq!(ext["details"]["superseded_grant_ids"], json!([old_grant]));
}

#[tokio::test]
async fn active_grants_per_user_are_bounded() {
    let h = Harness::with_policy_and_config(
        &format!("{POLICY}{EXTRA}"),
        &[("max_active_grants_per_user", "2")],
    );
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (s, v) = h.request("alice", "self-serve", 600, "").await;
        assert_eq!(s, 201, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    // Extensions supersede, so they do not count as more grants.
    assert_eq!(extend(&h, "alice", &ids[0], 60).await.0, 200);
    let got = h.request("alice", "self-serve", 600, "").await;
    assert_error(&got, 409, "too_many_active_grants");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("max_active_grants_per_user"),
        "{}",
        got.1
    );
    // A human-approved request is refused at approval too.
    let (_, v) = h.request("dave", "db-admin", 600, "x").await;
    let pending = v["id"].as_str().unwrap().to_string();
    for _ in 0..2 {
        assert_eq!(h.request("dave", "self-serve", 600, "").await.0, 201);
    }
    assert_error(
        &h.approve("bob", &pending).await,
        409,
        "too_many_active_grants",
    );
    // Revoking one makes room; other users are not affected.
    assert_eq!(
        h.call(
            "alice",
            "POST",
            &format!("/v1/requests/{}/revoke", ids[1]),
            json!({"reason": "done"})
        )
        .await
        .0,
        200
    );
    assert_eq!(h.request("alice", "self-serve", 600, "").await.0, 201);
    // Ended windows do not count.
    h.clock.advance(3600);
    assert_eq!(h.request("alice", "self-serve", 600, "").await.0, 201);
}

// ---- item 13 ----

#[tokio::test]
async fn reasons_with_invisible_or_bidi_characters_are_refused() {
    let h = harness();
    for (c, name) in [
        ('\u{202E}', "U+202E"),
        ('\u{200B}', "U+200B"),
        ('\u{2066}', "U+2066"),
        ('\u{2069}', "U+2069"),
        ('\u{FEFF}', "U+FEFF"),
    ] {
        let reason = format!("INC-1 {c}gnp.evil");
        let got = h.request("alice", "db-admin", 600, &reason).await;
        assert_error(&got, 400, "invalid_input");
        assert!(
            got.1["error"]["message"].as_str().unwrap().contains(name),
            "{}",
            got.1
        );
    }
    // Denial and revocation reasons too.
    let (_, v) = h.request("alice", "db-admin", 600, "fine").await;
    let id = v["id"].as_str().unwrap().to_string();
    let got = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{id}/deny"),
            json!({"reason": "no \u{202E}kO"}),
        )
        .await;
    assert_error(&got, 400, "invalid_input");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("U+202E")
    );
    assert_eq!(h.approve("bob", &id).await.1["state"], "approved");
    let got = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{id}/revoke"),
            json!({"reason": "\u{200B}"}),
        )
        .await;
    assert_error(&got, 400, "invalid_input");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("U+200B")
    );
    // Ordinary non-ASCII text is fine.
    assert_eq!(
        h.request("alice", "db-admin", 600, "Störung: 数据库 überlastet")
            .await
            .0,
        201
    );
}

// ---- item 15 ----

/// Writes `key` as an OpenSSH public key file and returns its path.
fn pub_file(h: &Harness, name: &str, key: &PublicKey) -> std::path::PathBuf {
    write(h.dir.path(), name, key.to_openssh().unwrap().as_bytes())
}

async fn call_with(
    h: &Harness,
    key: &PrivateKey,
    method: &str,
    path: &str,
    body: Value,
) -> (axum::http::StatusCode, Value) {
    let body = if body.is_null() {
        Vec::new()
    } else {
        serde_json::to_vec(&body).unwrap()
    };
    let req = h.signed_request(key, method, path, &body, h.now(), &auth::new_nonce());
    let (s, b, _) = h.send(req).await;
    (s, serde_json::from_slice(&b).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_role_can_require_a_dedicated_approval_key_that_cannot_request() {
    let h = harness();
    let (_, v) = h.request("alice", "vault", 600, "").await;
    let id = v["id"].as_str().unwrap().to_string();
    // bob's login key (the one a forwarded agent would offer) is not enough.
    let got = h.approve("bob", &id).await;
    assert_error(&got, 403, "approval_key_required");
    assert!(
        got.1["error"]["message"]
            .as_str()
            .unwrap()
            .contains("add-key"),
        "{}",
        got.1
    );

    // An approval key registered with `jit-ca user add-key --approval` is.
    let approval = PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap();
    let path = pub_file(&h, "bob-approval.pub", approval.public_key());
    let out = std::process::Command::new(JIT_CA)
        .args(["user", "add-key", "bob", "--key"])
        .arg(&path)
        .args(["--approval", "--dir"])
        .arg(h.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // bob's login key cannot be registered again as his approval key.
    let login = pub_file(&h, "bob-login.pub", h.key("bob").public_key());
    assert!(jit_ca::admin::user_add_key(&h.path(), "bob", &login, true, h.now()).is_err());

    let (s, v) = call_with(
        &h,
        &approval,
        "POST",
        &format!("/v1/requests/{id}/approve"),
        json!({}),
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
    let (s, who) = call_with(&h, &approval, "GET", "/v1/whoami", Value::Null).await;
    assert_eq!(s, 200);
    assert_eq!(who["user"], "bob");
    assert_eq!(who["approval_key"], true);

    // The approval key cannot request, extend or fetch certificates.
    let pk = approval.public_key().to_openssh().unwrap();
    let got = call_with(
        &h,
        &approval,
        "POST",
        "/v1/requests",
        json!({"role": "vault", "duration_secs": 60, "reason": "", "public_key": pk}),
    )
    .await;
    assert_error(&got, 403, "approval_key_not_for_requests");

    // The audit record says which kind of key approved.
    let rec = jit_ca::admin::audit_export(&h.path())
        .unwrap()
        .into_iter()
        .find(|r| r["event"] == "approval")
        .unwrap();
    assert_eq!(rec["details"]["approval_key"], true);
}

/// A software stand-in for a FIDO key: an Ed25519 key presented as `sk-ssh-ed25519` and
/// signing as an authenticator does (flags byte and counter appended).
struct SoftSk {
    signing: ed25519_dalek::SigningKey,
    public: PublicKey,
}

impl SoftSk {
    fn new() -> Self {
        let mut seed = [0u8; 32];
        rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut seed);
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let ed = ssh_key::public::Ed25519PublicKey(signing.verifying_key().to_bytes());
        let sk = ssh_key::public::SkEd25519::new(ed, "ssh:");
        let public = PublicKey::new(ssh_key::public::KeyData::SkEd25519(sk), "");
        Self { signing, public }
    }

    fn sign(&self, msg: &[u8], flags: u8) -> SshSig {
        use ed25519_dalek::Signer as _;
        use sha2::{Digest as _, Sha256};
        let data = SshSig::signed_data(auth::NAMESPACE, HashAlg::Sha512, msg).unwrap();
        let mut signed = Vec::new();
        signed.extend(Sha256::digest(b"ssh:"));
        signed.push(flags);
        signed.extend(7u32.to_be_bytes());
        signed.extend(Sha256::digest(&data));
        let mut sig = self.signing.sign(&signed).to_bytes().to_vec();
        sig.push(flags);
        sig.extend(7u32.to_be_bytes());
        SshSig::new(
            self.public.key_data().clone(),
            auth::NAMESPACE,
            HashAlg::Sha512,
            ssh_key::Signature::new(Algorithm::SkEd25519, sig).unwrap(),
        )
        .unwrap()
    }

    async fn call(&self, h: &Harness, method: &str, path: &str, flags: u8) -> (u16, Value) {
        let body = b"{}".to_vec();
        let ts = h.now();
        let nonce = auth::new_nonce();
        let audience = h.ca.audience().to_string();
        let msg = auth::message(&audience, method, path, &body, ts, &nonce);
        let sig = self.sign(&msg, flags);
        assert!(
            auth::verify(&self.public, &msg, &sig),
            "the stand-in signs validly"
        );
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("content-type", "application/json")
            .header(auth::HDR_KEY, auth::key_header(&self.public).unwrap())
            .header(auth::HDR_AUDIENCE, audience)
            .header(auth::HDR_TIMESTAMP, ts.to_string())
            .header(auth::HDR_NONCE, nonce)
            .header(auth::HDR_SIGNATURE, auth::encode_signature(&sig).unwrap())
            .body(Body::from(body))
            .unwrap();
        let (s, b, _) = h.send(req).await;
        (
            s.as_u16(),
            serde_json::from_slice(&b).unwrap_or(Value::Null),
        )
    }
}

#[tokio::test]
async fn a_role_can_require_a_touched_fido_key_for_approvals() {
    let h = harness();
    let (_, v) = h.request("alice", "hsm", 600, "").await;
    let id = v["id"].as_str().unwrap().to_string();
    // An ordinary (agent-usable, no touch) key is refused with a clear code.
    let got = h.approve("bob", &id).await;
    assert_error(&got, 403, "approval_key_required");
    assert!(
        got.1["error"]["message"].as_str().unwrap().contains("FIDO"),
        "{}",
        got.1
    );

    // An sk-ssh-ed25519 key registered for carol: a signature without the user-presence
    // flag (no touch) is refused, a touched one approves.
    let sk = SoftSk::new();
    let path = pub_file(&h, "carol-sk.pub", &sk.public);
    assert!(
        std::fs::read_to_string(&path)
            .unwrap()
            .starts_with("sk-ssh-ed25519@openssh.com ")
    );
    jit_ca::admin::user_add_key(&h.path(), "carol", &path, false, h.now()).unwrap();
    let approve = format!("/v1/requests/{id}/approve");
    let (s, v) = sk.call(&h, "POST", &approve, 0x00).await;
    assert_eq!(s, 403, "{v}");
    assert_eq!(v["error"]["code"], "approval_key_required");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("touch"),
        "{v}"
    );
    let (s, v) = sk.call(&h, "POST", &approve, 0x01).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
}

#[tokio::test]
async fn policy_check_knows_approval_key() {
    let h = harness();
    let bad =
        format!("{POLICY}{EXTRA}").replacen("approval_key = \"sk\"", "approval_key = \"fido\"", 1);
    std::fs::write(h.path().join("policy.toml"), bad).unwrap();
    let report = jit_ca::admin::policy_check(&h.path());
    assert!(!report.ok);
    assert!(
        report
            .errors
            .iter()
            .any(|e| e.contains("roles.hsm.approval_key") && e.contains("dedicated-sk")),
        "{:?}",
        report.errors
    );
    std::fs::write(h.path().join("policy.toml"), format!("{POLICY}{EXTRA}")).unwrap();
    let report = jit_ca::admin::policy_check(&h.path());
    assert!(report.ok, "{:?}", report.errors);
    assert!(
        report
            .warnings
            .iter()
            .any(|w| w.contains("roles.vault") && w.contains("add-key")),
        "{:?}",
        report.warnings
    );
}

/// Issue 18: the active-grant count is `COUNT(*)` over a user's unrevoked certificates with
/// a window, which equals the number of requests with one only if a request never has two:
/// an extension revokes the certificate it supersedes (in its transaction), and an approval
/// or an auto-approval issues once.
#[tokio::test]
async fn one_live_certificate_per_request() {
    let h = harness();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (s, v) = h.request("alice", "lab", 60, "").await;
        assert_eq!(s, 201, "{v}");
        assert_eq!(v["state"], "approved", "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    for secs in [30, 30, 60] {
        let (s, v) = extend(&h, "alice", &ids[0], secs).await;
        assert_eq!(s, 200, "{v}");
    }
    let now = h.now() as i64;
    let per_request = h.sql(
        "SELECT request_id, COUNT(*) FROM certs WHERE revoked = 0 AND valid_before > ?1 \
         GROUP BY request_id HAVING COUNT(*) > 1",
        &[now.into()],
    );
    assert!(per_request.is_empty(), "{per_request:?}");
    let certs = h.sql(
        "SELECT COUNT(*) FROM certs WHERE request_id = ?1",
        &[ids[0].clone().into()],
    );
    assert_eq!(
        certs[0][0].as_deref(),
        Some("4"),
        "issued, then extended 3 times"
    );
    let live = h.sql(
        "SELECT COUNT(*), COUNT(DISTINCT request_id) FROM certs WHERE user = 'alice' \
         AND valid_before > ?1 AND revoked = 0",
        &[now.into()],
    );
    assert_eq!(live[0][0].as_deref(), Some("2"));
    assert_eq!(live[0][1].as_deref(), Some("2"));
}

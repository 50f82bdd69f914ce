//! Evidence of each approval: the approve call names the request's digest, the CA refuses
//! another, and the `approval` record keeps the signed call, which docs/audit.md's recipe
//! checks with the real `ssh-keygen`, `jq` and `sha256sum` on a real `jit-ca audit export`.

use std::path::Path;
use std::process::Command;

use jit_api::evidence::RequestFacts;
use jit_api::wire::RequestView;
use jit_test_kit::harness::*;
use serde_json::{Value, json};

/// The recipe block of docs/audit.md, verbatim.
fn recipe() -> String {
    let doc = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/audit.md"));
    let block = doc
        .split("<!-- recipe:start -->\n```sh\n")
        .nth(1)
        .and_then(|s| s.split("```\n<!-- recipe:end -->").next())
        .expect("docs/audit.md has the recipe block");
    block.to_string()
}

/// Runs the recipe in `dir` (holding trail.jsonl and allowed_signers) under `set -eu`.
fn run_recipe(dir: &Path, id: &str, approver: &str) -> (bool, String, String) {
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!("set -euo pipefail\n{}", recipe()))
        .current_dir(dir)
        .env("ID", id)
        .env("APPROVER", approver)
        .output()
        .expect("bash");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `jit-ca audit export --dir DIR --json` (the real binary), as lines of JSON.
fn export(h: &Harness) -> Vec<Value> {
    let out = Command::new(JIT_CA)
        .args(["audit", "export", "--json", "--dir"])
        .arg(h.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn write_trail(dir: &Path, records: &[Value]) {
    let text: String = records.iter().map(|r| format!("{r}\n")).collect();
    std::fs::write(dir.join("trail.jsonl"), text).unwrap();
}

/// alice asks for db-admin; returns the request as bob sees it.
async fn pending(h: &Harness) -> RequestView {
    let (s, v) = h
        .request("alice", "db-admin", 900, "INC-42 disk full")
        .await;
    assert_eq!(s, 201, "{v}");
    let id = v["id"].as_str().unwrap();
    let (s, v) = h
        .call("bob", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(s, 200, "{v}");
    serde_json::from_value(v).unwrap()
}

async fn approve_naming(h: &Harness, id: &str, digest: &str) -> (u16, Value) {
    let (s, v) = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{id}/approve"),
            json!({"request_digest": digest}),
        )
        .await;
    (s.as_u16(), v)
}

#[tokio::test]
async fn the_view_carries_the_digest_of_what_it_shows() {
    let h = Harness::new();
    let shown = pending(&h).await;
    let key = h
        .key("alice")
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    assert_eq!(shown.key_fingerprint.as_deref(), Some(key.as_str()));
    let facts = RequestFacts::of_view(&shown).unwrap();
    assert_eq!(
        facts.canonical(),
        format!(
            "jit-request-v2\nid: {}\nuser: alice\nrole: db-admin\nhosts: db-*\n\
             principals: alice dbadmin\nsudo: true\nduration_secs: 900\n\
             reason: INC-42 disk full\nkey: {key}\n",
            shown.id
        )
    );
    assert_eq!(shown.request_digest, Some(facts.digest()));
}

#[tokio::test]
async fn an_approval_naming_another_digest_is_refused() {
    let h = Harness::new();
    let shown = pending(&h).await;
    let id = shown.id.clone();
    // bob was shown 15 minutes; the digest of an hour is not this request's.
    let longer = RequestFacts {
        duration_secs: 3600,
        ..RequestFacts::of_view(&shown).unwrap()
    }
    .digest();
    let got = approve_naming(&h, &id, &longer).await;
    assert_eq!(got.0, 409, "{}", got.1);
    assert_eq!(got.1["error"]["code"], "request_digest_mismatch");
    assert_eq!(
        got.1["error"]["message"],
        format!(
            "request {id} is not the request you were shown: its digest is {}, your approval names \
             {longer}; look at it again (jit show {id}) and approve again",
            shown.request_digest.as_deref().unwrap()
        )
    );
    let events = h.audit_events();
    assert_eq!(
        events.last().unwrap(),
        &("approval_refused".into(), "bob".into())
    );
    // Not a digest at all.
    let got = approve_naming(&h, &id, "sha256:ABC").await;
    assert_eq!(got.0, 400, "{}", got.1);
    assert_eq!(got.1["error"]["code"], "invalid_input");
    assert_eq!(
        got.1["error"]["message"],
        "request_digest \"sha256:ABC\" is not a digest (sha256: and 64 lowercase hex characters)"
    );
    // The body is kept in the record: bounded.
    let padded = format!("{{\"request_digest\": \"{longer}\"{}}}", " ".repeat(1100));
    let req = h.signed_request(
        h.key("bob"),
        "POST",
        &format!("/v1/requests/{id}/approve"),
        padded.as_bytes(),
        h.now(),
        &jit_api::auth::new_nonce(),
    );
    let (s, b, _) = h.send(req).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_input");
    assert_eq!(
        v["error"]["message"],
        "an approval's body is at most 1024 bytes"
    );
    // Unknown fields are refused, not ignored.
    let (s, v) = h
        .call(
            "bob",
            "POST",
            &format!("/v1/requests/{id}/approve"),
            json!({"digest": "x"}),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert_eq!(v["error"]["code"], "invalid_json");
    let (_, v) = h
        .call("bob", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["approvals"], json!([]));
}

#[tokio::test]
async fn the_recipe_of_docs_audit_md_checks_an_approval_with_ssh_keygen() {
    let h = Harness::new();
    let shown = pending(&h).await;
    let id = shown.id.clone();
    let digest = shown.request_digest.clone().unwrap();
    let (s, v) = approve_naming(&h, &id, &digest).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");

    let records = export(&h);
    let approval = records
        .iter()
        .find(|r| r["event"] == "approval" && r["details"]["request_id"] == id.as_str())
        .unwrap();
    let ev = &approval["details"]["evidence"];
    assert_eq!(ev["scheme"], "jit-api-v2");
    assert_eq!(ev["namespace"], "jit-api@jit");
    assert_eq!(ev["named_digest"], digest.as_str());
    assert_eq!(ev["request_digest"], digest.as_str());
    assert_eq!(ev["body"], format!("{{\"request_digest\":\"{digest}\"}}"));
    assert_eq!(
        ev["request"].as_str().unwrap(),
        RequestFacts::of_view(&shown).unwrap().canonical()
    );
    let bob_key = jit_api::auth::key_header(h.key("bob").public_key()).unwrap();
    assert_eq!(ev["key"], bob_key.as_str());
    assert!(ev["message"].as_str().unwrap().starts_with(&format!(
        "jit-api-v2\n{}\nPOST\n/v1/requests/{id}/approve\n",
        h.ca.audience()
    )));

    // The auditor's own copy of bob's key.
    let work = tempfile::tempdir().unwrap();
    std::fs::write(
        work.path().join("allowed_signers"),
        format!("bob {bob_key}\n"),
    )
    .unwrap();
    write_trail(work.path(), &records);
    let (ok, out, err) = run_recipe(work.path(), &id, "bob");
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    let fp = h
        .key("bob")
        .public_key()
        .fingerprint(ssh_key::HashAlg::Sha256);
    assert!(
        format!("{out}{err}").contains(&format!(
            "Good \"jit-api@jit\" signature for bob with ED25519 key {fp}"
        )),
        "{out}{err}"
    );
    assert!(out.ends_with(ev["request"].as_str().unwrap()), "{out}");

    // Tampered copies fail, each at its step.
    let tamper = |edit: &dyn Fn(&mut Value)| {
        let mut copy = records.clone();
        for r in copy.iter_mut() {
            if r["event"] == "approval" && r["details"]["request_id"] == id.as_str() {
                edit(&mut r["details"]["evidence"]);
            }
        }
        write_trail(work.path(), &copy);
        run_recipe(work.path(), &id, "bob")
    };
    let replace = |field: &'static str, from: String, to: String| {
        move |ev: &mut Value| {
            let s = ev[field].as_str().unwrap().replace(&from, &to);
            ev[field] = Value::String(s);
        }
    };
    // Another duration in the canonical text: step 3.
    let (ok, out, err) = tamper(&replace(
        "request",
        "duration_secs: 900".into(),
        "duration_secs: 3600".into(),
    ));
    assert!(!ok, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("Good \"jit-api@jit\" signature"),
        "{out}{err}"
    );
    // Another path in the message: the signature no longer verifies (step 1).
    let (ok, out, err) = tamper(&replace(
        "message",
        format!("/v1/requests/{id}/approve"),
        "/v1/requests/r-other/approve".into(),
    ));
    assert!(!ok, "{out}{err}");
    assert!(!format!("{out}{err}").contains("Good"), "{out}{err}");
    // Another body (naming another digest): step 2.
    let (ok, out, err) = tamper(&replace(
        "body",
        digest.clone(),
        format!("sha256:{}", "0".repeat(64)),
    ));
    assert!(!ok, "{out}{err}");
    assert!(
        format!("{out}{err}").contains("Good \"jit-api@jit\" signature"),
        "{out}{err}"
    );
    // A signature by someone else (alice signs the same message): step 1.
    let msg = ev["message"].as_str().unwrap().to_string();
    let alice_sig = jit_api::auth::sign_with_key(h.key("alice"), msg.as_bytes())
        .unwrap()
        .to_pem(ssh_key::LineEnding::LF)
        .unwrap();
    let (ok, out, err) = tamper(&move |ev: &mut Value| {
        ev["signature"] = Value::String(alice_sig.clone());
    });
    assert!(!ok, "{out}{err}");
    assert!(!format!("{out}{err}").contains("Good"), "{out}{err}");
}

#[tokio::test]
async fn an_approval_without_a_digest_still_keeps_the_signed_call() {
    let h = Harness::new();
    let shown = pending(&h).await;
    let (s, v) = h.approve("bob", &shown.id).await;
    assert_eq!(s, 200, "{v}");
    let records = export(&h);
    let ev = &records.iter().find(|r| r["event"] == "approval").unwrap()["details"]["evidence"];
    assert_eq!(ev["named_digest"], Value::Null);
    assert_eq!(ev["body"], "{}");
    assert_eq!(ev["request_digest"], shown.request_digest.unwrap().as_str());
    // Steps 1 and 2 hold (the signed path names the request); step 3 has no digest to check.
    let work = tempfile::tempdir().unwrap();
    let bob_key = jit_api::auth::key_header(h.key("bob").public_key()).unwrap();
    std::fs::write(
        work.path().join("allowed_signers"),
        format!("bob {bob_key}\n"),
    )
    .unwrap();
    write_trail(work.path(), &records);
    let (ok, out, err) = run_recipe(work.path(), &shown.id, "bob");
    assert!(!ok);
    assert!(
        format!("{out}{err}").contains("Good \"jit-api@jit\" signature for bob"),
        "{out}{err}"
    );
}

#[tokio::test]
async fn a_ca_may_require_every_approval_to_name_the_digest() {
    let h = Harness::with_policy_and_config(POLICY, &[("require_approval_digest", "true")]);
    let shown = pending(&h).await;
    let got = h.approve("bob", &shown.id).await;
    assert_error(&got, 400, "invalid_input");
    assert_eq!(
        got.1["error"]["message"],
        "this CA requires an approval to name the request's digest (require_approval_digest = \
         true): send {\"request_digest\": \"sha256:...\"} (the request's request_digest), or \
         upgrade jit, whose approve sends it"
    );
    let (s, v) = approve_naming(&h, &shown.id, shown.request_digest.as_deref().unwrap()).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");
}

/// Review fix: what the certificate and grant give (principals, sudo) is in the digest, so an
/// approval of a request shown with other principals or without sudo names another digest.
#[tokio::test]
async fn the_digest_covers_principals_and_sudo() {
    let h = Harness::new();
    let shown = pending(&h).await;
    assert_eq!(shown.principals, vec!["alice", "dbadmin"]);
    assert!(shown.sudo);
    let facts = RequestFacts::of_view(&shown).unwrap();
    let root = vec!["alice".to_string(), "root".to_string()];
    for other in [
        RequestFacts {
            principals: &root,
            ..facts
        },
        RequestFacts {
            sudo: false,
            ..facts
        },
    ] {
        let got = approve_naming(&h, &shown.id, &other.digest()).await;
        assert_eq!(got.0, 409, "{}", got.1);
        assert_eq!(got.1["error"]["code"], "request_digest_mismatch");
    }
    let (s, v) = approve_naming(&h, &shown.id, &facts.digest()).await;
    assert_eq!(s, 200, "{v}");
}

/// A signed approve call for `path` (as sent and signed) naming `digest`.
async fn approve_at(h: &Harness, path: &str, digest: &str) -> (u16, Value) {
    let body = serde_json::to_vec(&json!({"request_digest": digest})).unwrap();
    let req = h.signed_request(
        h.key("bob"),
        "POST",
        path,
        &body,
        h.now(),
        &jit_api::auth::new_nonce(),
    );
    let (s, b, _) = h.send(req).await;
    (s.as_u16(), serde_json::from_slice(&b).unwrap_or_default())
}

/// Review fix: the API decodes the path and ignored the query, so an approver could sign
/// `/v1/requests/r%2D.../approve` or `.../approve?x`, have the approval counted, and later
/// disown it (the recipe's path check fails on it). Only the exact path is accepted now.
#[tokio::test]
async fn an_approval_is_accepted_only_for_the_exact_path() {
    let h = Harness::new();
    let shown = pending(&h).await;
    let id = shown.id.clone();
    let digest = shown.request_digest.clone().unwrap();
    let encoded = format!("/v1/requests/{}/approve", id.replacen('-', "%2D", 1));
    let exact = format!("/v1/requests/{id}/approve");
    for path in [
        encoded,
        format!("{exact}?x"),
        format!("{exact}?"),
        format!("/v1/requests/{id}%2Fx/approve"),
    ] {
        let got = approve_at(&h, &path, &digest).await;
        if path.contains("%2Fx") {
            // Another id altogether.
            assert_eq!(got.0, 404, "{path}: {}", got.1);
            continue;
        }
        assert_eq!(got.0, 400, "{path}: {}", got.1);
        assert_eq!(got.1["error"]["code"], "invalid_input", "{path}");
        assert_eq!(
            got.1["error"]["message"],
            format!(
                "an approval must be signed for the path {exact} exactly (its evidence names the \
                 request by it), not {path:?}: send it without percent-encoding or a query string"
            ),
            "{path}"
        );
        assert_eq!(
            h.audit_events().last().unwrap(),
            &("approval_refused".into(), "bob".into())
        );
    }
    let (_, v) = h
        .call("bob", "GET", &format!("/v1/requests/{id}"), Value::Null)
        .await;
    assert_eq!(v["state"], "pending");
    assert_eq!(v["approvals"], json!([]));
    let got = approve_at(&h, &exact, &digest).await;
    assert_eq!(got.0, 200, "{}", got.1);
    assert_eq!(got.1["state"], "approved");
}

/// Review fix: a legacy v1 call (accepted with `accept_v1_signatures = true`) was recorded as
/// scheme `jit-api-v2`, and the recipe failed on it (a v1 message has no CA line). Its real
/// scheme is recorded now, and the recipe checks it.
#[tokio::test]
async fn a_legacy_v1_approval_records_its_scheme_and_passes_the_recipe() {
    let h = Harness::with_policy_and_config(POLICY, &[("accept_v1_signatures", "true")]);
    let shown = pending(&h).await;
    let id = shown.id.clone();
    let digest = shown.request_digest.clone().unwrap();
    let path = format!("/v1/requests/{id}/approve");
    let body = serde_json::to_vec(&json!({"request_digest": digest})).unwrap();
    let key = h.key("bob");
    let (ts, nonce) = (h.now(), jit_api::auth::new_nonce());
    let msg = jit_api::auth::message_v1("POST", &path, &body, ts, &nonce);
    let sig = jit_api::auth::sign_with_key(key, &msg).unwrap();
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(&path)
        .header("content-type", "application/json")
        .header(
            jit_api::auth::HDR_KEY,
            jit_api::auth::key_header(key.public_key()).unwrap(),
        )
        .header(jit_api::auth::HDR_TIMESTAMP, ts.to_string())
        .header(jit_api::auth::HDR_NONCE, nonce)
        .header(
            jit_api::auth::HDR_SIGNATURE,
            jit_api::auth::encode_signature(&sig).unwrap(),
        )
        .body(axum::body::Body::from(body))
        .unwrap();
    let (s, b, _) = h.send(req).await;
    let v: Value = serde_json::from_slice(&b).unwrap();
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["state"], "approved");

    let records = export(&h);
    let ev = &records.iter().find(|r| r["event"] == "approval").unwrap()["details"]["evidence"];
    assert_eq!(ev["scheme"], "jit-api-v1");
    assert!(
        ev["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("jit-api-v1\nPOST\n{path}\n")),
        "{ev}"
    );
    let work = tempfile::tempdir().unwrap();
    let bob_key = jit_api::auth::key_header(h.key("bob").public_key()).unwrap();
    std::fs::write(
        work.path().join("allowed_signers"),
        format!("bob {bob_key}\n"),
    )
    .unwrap();
    write_trail(work.path(), &records);
    let (ok, out, err) = run_recipe(work.path(), &id, "bob");
    assert!(ok, "stdout:\n{out}\nstderr:\n{err}");
    assert!(out.ends_with(ev["request"].as_str().unwrap()), "{out}");
}

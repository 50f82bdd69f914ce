//! Evidence of each approval: the approver's signed API call, kept whole in the `approval`
//! audit record with the request's canonical text ([`jit_api::evidence`]), so that an
//! auditor checks with `ssh-keygen -Y verify` and the approver's public key that this
//! approver approved this exact request (docs/audit.md has the recipe).

use serde_json::{Value, json};

use super::Caller;
use crate::store::RequestRow;
use jit_api::evidence::RequestFacts;

/// The canonical text of a stored request.
pub fn canonical(row: &RequestRow) -> String {
    let key = super::lifecycle::fingerprint(&row.public_key);
    RequestFacts {
        id: &row.id,
        user: &row.user,
        role: &row.role,
        hosts: &row.hosts,
        principals: &row.principals,
        sudo: row.sudo,
        duration_secs: row.duration_secs,
        reason: &row.reason,
        ticket: row.ticket.as_deref(),
        start: row.not_before,
        key_fingerprint: &key,
    }
    .canonical()
}

/// What an `approval` record keeps under `evidence`: the signed call (message, armored
/// SSHSIG, the signing key, the body whose SHA-256 the message carries) and the request's
/// canonical text and digest. `named` is the digest the approval named (None: an older
/// client sent none; the signed call still names the request id in its path). `scheme` is
/// the signed message's own first line: `jit-api-v2`, or `jit-api-v1` for a legacy call
/// (accepted only with `accept_v1_signatures = true`), whose message has no CA line.
pub fn details(caller: &Caller, body: &[u8], canonical: &str, named: Option<&str>) -> Value {
    let proof = caller.proof.as_ref();
    json!({
        "scheme": proof.and_then(|p| p.message.split('\n').next()),
        "namespace": jit_api::auth::NAMESPACE,
        "message": proof.map(|p| p.message.as_str()),
        "signature": proof.map(|p| p.signature.as_str()),
        "key": proof.map(|p| p.key.as_str()),
        "body": String::from_utf8_lossy(body),
        "request": canonical,
        "request_digest": jit_api::evidence::digest_of(canonical),
        "named_digest": named,
    })
}

/// What a web approval's record keeps under `evidence`: no signature (a click signs
/// nothing); the session's `web_login_link` record keeps the signed call that established
/// it. The request's canonical text and digest, the digest the page showed, the reason.
pub fn web_details(session: &str, canonical: &str, named: Option<&str>, reason: &str) -> Value {
    json!({
        "via": "web",
        "session": session,
        "request": canonical,
        "request_digest": jit_api::evidence::digest_of(canonical),
        "named_digest": named,
        "reason": reason,
    })
}

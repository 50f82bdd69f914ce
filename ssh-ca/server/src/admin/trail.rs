//! `jit-ca audit verify` and `jit-ca audit export`: the hash chain checked against anchors
//! and signed checkpoints kept outside the database.

use std::fs;
use std::path::Path;

use serde::Serialize;
use ssh_key::PublicKey;

use super::dir::open_store;
use crate::audit;
use crate::config::Config;
use crate::error::{CaError, Result};
use crate::files;
use crate::signer::Signer;

/// Result of `audit verify`.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    pub records: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub head: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bad_record: Option<u64>,
}

/// `jit-ca audit verify`.
pub fn audit_verify(dir: &Path) -> Result<VerifyReport> {
    audit_verify_anchored(dir, &[])
}

/// Parses an anchor `SEQ:HASH` (a record's seq and hash noted earlier, e.g. from syslog).
pub fn parse_anchor(s: &str) -> std::result::Result<(u64, String), String> {
    let (seq, hash) = s
        .split_once(':')
        .ok_or_else(|| format!("anchor {s:?} must be SEQ:HASH (e.g. 42:ab12...)"))?;
    let seq = seq
        .parse::<u64>()
        .map_err(|_| format!("anchor {s:?}: {seq:?} is not a record number"))?;
    if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("anchor {s:?}: the hash must be 64 hex characters"));
    }
    Ok((seq, hash.to_ascii_lowercase()))
}

/// `jit-ca audit verify --anchor SEQ:HASH...`: the chain must be intact AND contain each
/// anchor, which detects truncation of the newest records when the anchors were kept
/// outside the database (syslog carries every record's seq and hash).
pub fn audit_verify_anchored(dir: &Path, anchors: &[(u64, String)]) -> Result<VerifyReport> {
    let records = open_store(dir)?.read(|c| c.audit_records())??;
    let head = records.last().map(|r| r.hash.clone());
    let total = records.len() as u64;
    for (seq, hash) in anchors {
        let problem = match records.iter().find(|r| r.seq == *seq) {
            None => Some(format!(
                "record {seq} named by an anchor is missing (the trail has {total} records): records were deleted or the trail truncated"
            )),
            Some(r) if &r.hash != hash => Some(format!(
                "record {seq} does not match its anchor: the trail was rewritten from there on"
            )),
            Some(_) => None,
        };
        if problem.is_some() {
            return Ok(VerifyReport {
                ok: false,
                records: total,
                head,
                problem,
                bad_record: Some(*seq),
            });
        }
    }
    Ok(match audit::verify(records) {
        Ok(n) => VerifyReport {
            ok: true,
            records: n,
            head,
            problem: None,
            bad_record: None,
        },
        Err(b) => {
            let seq = match b {
                audit::Broken::Edited { seq } | audit::Broken::Unlinked { seq } => seq,
                audit::Broken::Gap { expected, .. } => expected,
            };
            VerifyReport {
                ok: false,
                records: total,
                head,
                problem: Some(b.to_string()),
                bad_record: Some(seq),
            }
        }
    })
}

/// The keys a checkpoint may be signed by: the CA's grant keys (their `.pub` files, else
/// the public half of the private key), so a monitor needs no private key.
fn checkpoint_keys(dir: &Path) -> Result<jit_common::KeyRing> {
    let cfg = Config::load(dir)?;
    let mut ring = jit_common::KeyRing::new();
    for p in &cfg.grant_keys {
        let mut pub_path = p.as_os_str().to_owned();
        pub_path.push(".pub");
        let pub_path = std::path::PathBuf::from(pub_path);
        if let Ok(text) = files::read_trusted(&pub_path, 64 * 1024) {
            let key = PublicKey::from_openssh(text.trim()).map_err(|e| CaError::Key {
                path: pub_path.clone(),
                detail: format!("not an OpenSSH public key: {e}"),
            })?;
            ring.push(key);
        } else {
            let signer = Signer::load(std::slice::from_ref(p), std::slice::from_ref(p))?;
            for k in signer.grant_public_keys() {
                ring.push(k);
            }
        }
    }
    Ok(ring)
}

/// `jit-ca audit verify --checkpoint FILE [--anchor SEQ:HASH]...`: the checkpoint's signature
/// must verify against the CA's grant keys, and the chain must be intact and contain the
/// exact record it names (and every anchor). A checkpoint kept outside the database detects
/// a rewritten and re-chained trail and a cut tail, which the chain alone cannot.
pub fn audit_verify_checkpoint(
    dir: &Path,
    checkpoint: &Path,
    anchors: &[(u64, String)],
) -> Result<VerifyReport> {
    // A checkpoint is a few hundred bytes; read at most this much (a mistaken path such as
    // /dev/zero or a huge file must not make the command read without end).
    const MAX_CHECKPOINT: u64 = 64 * 1024;
    let mut doc = Vec::new();
    fs::File::open(checkpoint)
        .and_then(|f| {
            use std::io::Read as _;
            f.take(MAX_CHECKPOINT + 1).read_to_end(&mut doc)
        })
        .map_err(|e| CaError::File {
            path: checkpoint.to_path_buf(),
            detail: format!("cannot read the checkpoint: {e}"),
        })?;
    if doc.len() as u64 > MAX_CHECKPOINT {
        return Err(CaError::File {
            path: checkpoint.to_path_buf(),
            detail: format!(
                "larger than {MAX_CHECKPOINT} bytes: not a checkpoint (fetch one from GET /v1/audit/checkpoint)"
            ),
        });
    }
    let ring = checkpoint_keys(dir)?;
    let records = open_store(dir)?.read(|c| c.audit_records())??;
    let head = records.last().map(|r| r.hash.clone());
    let total = records.len() as u64;
    let fail = |problem: String, bad: Option<u64>| VerifyReport {
        ok: false,
        records: total,
        head: head.clone(),
        problem: Some(problem),
        bad_record: bad,
    };
    let cp = match audit::checkpoint::Checkpoint::verify(&doc, &ring) {
        Ok(cp) => cp,
        Err(e) => return Ok(fail(format!("{}: {e}", checkpoint.display()), None)),
    };
    match records.iter().find(|r| r.seq == cp.seq) {
        None => {
            return Ok(fail(
                format!(
                    "record {} named by the signed checkpoint (signed {}) is missing (the trail has {total} records): the trail was truncated",
                    cp.seq,
                    jit_common::time::format_utc(cp.time)
                ),
                Some(cp.seq),
            ));
        }
        Some(r) if r.hash != cp.hash => {
            return Ok(fail(
                format!(
                    "record {} does not match the signed checkpoint (signed {}): the trail was rewritten at or before it",
                    cp.seq,
                    jit_common::time::format_utc(cp.time)
                ),
                Some(cp.seq),
            ));
        }
        Some(_) => {}
    }
    audit_verify_anchored(dir, anchors)
}

/// `jit-ca audit export`: every record, details as JSON.
pub fn audit_export(dir: &Path) -> Result<Vec<serde_json::Value>> {
    // One shape for the CLI and the audit page's JSON export (audit::export).
    Ok(open_store(dir)?
        .read(|c| c.audit_records())??
        .iter()
        .map(audit::export::json_value)
        .collect())
}

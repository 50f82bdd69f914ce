//! `jit-host sync --server URL`: pull this host's grants, the revocation list and the KRL.
//!
//! Everything fetched is verified before it is written: grants against `grant_keys`
//! (and must cover one of this host's names), the revocation list against `grant_keys` and
//! against the highest sequence seen (a lower one is a replay or a CA rollback and is
//! refused), the KRL by its magic and size. The revocation list and the KRL are fetched and
//! installed first and independently of the grants: a grants document that is oversized,
//! invalid or fails to download never keeps revocations from this host (the command still
//! exits non-zero and names what failed). Writes are atomic, so a failed sync (full disk,
//! network) leaves the previous files intact. Conditional GETs
//! (`If-None-Match`) keep a polling fleet cheap; ETags live in `<state_dir>/sync-state.json`.
//! Last, run as root, sync indexes the store into root's verified-grant records
//! ([`crate::index`]) and, when host.toml sets `textfile_dir`, writes the node_exporter
//! metrics file ([`crate::textfile`]), also after a failed sync.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use jit_api::wire::HostGrantsView;
use jit_common::envelope::MAX_REVOCATION_LIST_SIZE;
use jit_common::secure_file::{self, Policy};
use jit_common::{UnverifiedGrant, UnverifiedRevocationList};
use pam_jit_core::config::Config;
use pam_jit_core::store::{RevocationFile, read_revocations};
use serde::{Deserialize, Serialize};

use crate::failure::{Failure, Result, host_names, load_config};
use crate::index;
use crate::store_write::{Stored, ensure_state_dirs, store_grant};

/// The sync contract's limits and the KRL magic, defined once in the API crate (the CA
/// builds against the same constants).
pub use jit_api::wire::{KRL_MAGIC, MAX_GRANTS_RESPONSE, MAX_KRL};

/// What sync remembers between runs.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SyncState {
    /// URL -> ETag of the last response applied.
    #[serde(default)]
    etags: BTreeMap<String, String>,
    /// Highest revocation-list sequence ever installed.
    #[serde(default)]
    revocation_sequence: u64,
}

enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

fn fetch(agent: &ureq::Agent, url: &str, etag: Option<&String>, max: usize) -> Result<Fetched> {
    let mut req = agent.get(url);
    if let Some(e) = etag {
        req = req.set("If-None-Match", e);
    }
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let mut body = String::new();
            let _ = r.into_reader().take(4096).read_to_string(&mut body);
            return Err(Failure::new(format!(
                "GET {url}: HTTP {code}: {}",
                body.trim()
            )));
        }
        Err(e) => {
            return Err(Failure::new(format!(
                "GET {url}: {e} (is the CA reachable? check `server` in host.toml)"
            )));
        }
    };
    if resp.status() == 304 {
        return Ok(Fetched::NotModified);
    }
    let etag = resp.header("ETag").map(str::to_string);
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new(format!("GET {url}: reading the body: {e}")))?;
    if bytes.len() > max {
        return Err(Failure::new(format!(
            "GET {url}: response larger than {max} bytes; refusing it"
        )));
    }
    Ok(Fetched::Body { bytes, etag })
}

/// Runs a sync, then (as root) indexes the whole store into verified-grant records
/// ([`crate::index`]) — also when the CA could not be reached, so that grants `principals`
/// stored at login get their records on the next timer run either way. Then the metrics
/// file ([`crate::textfile::after_sync`]: the sync's outcome and what is installed), whether
/// or not the sync succeeded; a failure to write it fails the command after the sync's own
/// report.
pub fn run(config_path: &Path, server: Option<&str>) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let now = jit_common::now().as_secs();
    let synced = fetch_and_store(&config, server);
    let indexed = index::index_store(&config);
    let success = matches!(&synced, Ok(c) if *c == ExitCode::SUCCESS);
    let exported = crate::textfile::after_sync(&config, success, now);
    let code = match synced {
        Ok(code) => code,
        Err(mut f) => {
            if let Err(e) = exported {
                f.message.push_str(&format!("\n{}", e.message));
            }
            return Err(f);
        }
    };
    match indexed? {
        Some(ix) => {
            for r in &ix.refused {
                jit_common::errln!("jit-host: no record (did not verify): {r}");
            }
            jit_common::outln!("sync: {}", ix.summary());
        }
        None => jit_common::errln!(
            "jit-host: not root: {} not updated (pam_jit.so verifies every signature meanwhile)",
            index::dir(&config).display()
        ),
    }
    exported?;
    Ok(code)
}

pub(crate) fn fetch_and_store(config: &Config, server: Option<&str>) -> Result<ExitCode> {
    let config = config.clone();
    let server = server
        .map(str::to_string)
        .or_else(|| config.server.clone())
        .ok_or_else(|| {
            Failure::config("no CA URL: pass --server URL or set `server` in host.toml")
        })?;
    if !(server.starts_with("http://") || server.starts_with("https://")) {
        return Err(Failure::config(format!(
            "--server {server:?} must be an http:// or https:// URL"
        )));
    }
    let base = server.trim_end_matches('/');
    ensure_state_dirs(&config, false)?;
    let state_path = config.state_dir.join("sync-state.json");
    let mut state: SyncState = match secure_file::read(&state_path, &Policy::root_only(1 << 20)) {
        Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
        Err(_) => SyncState::default(),
    };
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(Duration::from_secs(10))
        .timeout(Duration::from_secs(60))
        .build();
    let now = jit_common::now().as_secs();
    let names = host_names(&config);
    if names.is_empty() {
        return Err(Failure::new(
            "cannot tell this host's name (gethostname failed and host.toml has no hostnames)",
        ));
    }

    // Revocations first, on their own: the revocation list and the KRL are fetched,
    // verified and installed before the grants are even asked for, so that no grants
    // document (oversized, invalid, failing to download; a requester can inflate one) can
    // keep a revocation from reaching this host. Each failure is reported; any failure makes
    // the command exit non-zero.
    let mut report = Vec::new();
    let mut failures = Vec::new();
    let rev_url = format!("{base}/v1/revocations");
    match fetch_revocations(&config, &agent, &rev_url, &state) {
        Ok(None) => {}
        Ok(Some((bytes, etag, seq, changed))) => {
            let installed = if changed {
                write(&config.revocations_path(), &bytes).map(|()| {
                    report.push(format!("revocation list #{seq} installed"));
                })
            } else {
                Ok(())
            };
            match installed {
                Ok(()) => {
                    state.revocation_sequence = state.revocation_sequence.max(seq);
                    if let Some(e) = etag {
                        state.etags.insert(rev_url.clone(), e);
                    }
                }
                Err(f) => failures.push(f.message),
            }
        }
        Err(f) => failures.push(f.message),
    }
    let krl_url = format!("{base}/v1/krl");
    match fetch_krl(&agent, &krl_url, &state) {
        Ok(None) => {}
        Ok(Some((bytes, etag))) => match write(&config.state_dir.join("krl"), &bytes) {
            Ok(()) => {
                report.push(format!("KRL updated ({} bytes)", bytes.len()));
                if let Some(e) = etag {
                    state.etags.insert(krl_url.clone(), e);
                }
            }
            Err(f) => failures.push(f.message),
        },
        Err(f) => failures.push(f.message),
    }
    save_state(&state_path, &state)?;

    // Then the grants, one host name at a time; a failing document is reported and skipped.
    let mut added = 0;
    let mut skipped = Vec::new();
    for name in &names {
        let url = format!("{base}/v1/hosts/{name}/grants");
        let (bytes, etag) = match fetch(&agent, &url, state.etags.get(&url), MAX_GRANTS_RESPONSE) {
            Ok(Fetched::NotModified) => continue,
            Ok(Fetched::Body { bytes, etag }) => (bytes, etag),
            Err(f) => {
                failures.push(f.message);
                continue;
            }
        };
        let view: HostGrantsView = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{url}: not a grants list: {e}"));
                continue;
            }
        };
        let mut stored_all = true;
        for doc in view.grants {
            match check_grant(&config, &names, doc.as_bytes(), now) {
                Ok((user, id)) => match store_grant(&config, &user, &id, doc.as_bytes()) {
                    Ok((_, Stored::Written)) => added += 1,
                    Ok((_, Stored::Unchanged)) => {}
                    Err(f) => {
                        stored_all = false;
                        failures.push(f.message);
                    }
                },
                Err(why) => skipped.push(why),
            }
        }
        if stored_all && let Some(e) = etag {
            state.etags.insert(url, e);
        }
    }
    if added > 0 {
        report.push(format!("{added} grant(s) stored"));
    }
    save_state(&state_path, &state)?;
    for s in &skipped {
        jit_common::errln!("jit-host: skipped a grant from the CA: {s}");
    }
    if report.is_empty() && !failures.is_empty() {
        jit_common::outln!("sync: nothing new installed");
    } else if report.is_empty() {
        jit_common::outln!("sync: up to date");
    } else {
        jit_common::outln!("sync: {}", report.join("; "));
    }
    if failures.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::new(format!(
            "sync incomplete ({} failure(s); everything else above was installed):\n  {}",
            failures.len(),
            failures.join("\n  ")
        )))
    }
}

type NewRevocations = Option<(Vec<u8>, Option<String>, u64, bool)>;

/// Fetches and verifies the revocation list: `None` when unchanged (304); otherwise the
/// bytes, ETag, sequence and whether it differs from the installed one. Refuses a list that
/// does not verify, a lower sequence than ever installed, and a different list under the
/// installed sequence.
fn fetch_revocations(
    config: &Config,
    agent: &ureq::Agent,
    rev_url: &str,
    state: &SyncState,
) -> Result<NewRevocations> {
    let (bytes, etag) = match fetch(
        agent,
        rev_url,
        state.etags.get(rev_url),
        MAX_REVOCATION_LIST_SIZE,
    )? {
        Fetched::NotModified => return Ok(None),
        Fetched::Body { bytes, etag } => (bytes, etag),
    };
    let list = UnverifiedRevocationList::parse(&bytes)
        .and_then(|l| l.verify(&config.grant_keys))
        .map_err(|e| Failure::new(format!("{rev_url}: revocation list refused: {e}")))?;
    let installed = match read_revocations(&config.state_dir) {
        RevocationFile::Present(b) => UnverifiedRevocationList::parse(&b)
            .and_then(|l| l.verify(&config.grant_keys))
            .ok()
            .map(|l| (l.list().sequence, b)),
        _ => None,
    };
    let seq = list.list().sequence;
    let high = state
        .revocation_sequence
        .max(installed.as_ref().map_or(0, |(s, _)| *s));
    if seq < high {
        return Err(Failure::new(format!(
            "refusing revocation list #{seq}: #{high} was already installed (a replay, or the CA lost its state)"
        )));
    }
    match installed {
        Some((s, b)) if s == seq && b == bytes => Ok(Some((bytes, etag, seq, false))),
        Some((s, _)) if s == seq => Err(Failure::new(format!(
            "refusing revocation list #{seq}: it differs from the installed list with the same sequence"
        ))),
        _ => Ok(Some((bytes, etag, seq, true))),
    }
}

/// Fetches the KRL: `None` when unchanged; refused unless it has the OpenSSH KRL magic.
fn fetch_krl(
    agent: &ureq::Agent,
    krl_url: &str,
    state: &SyncState,
) -> Result<Option<(Vec<u8>, Option<String>)>> {
    match fetch(agent, krl_url, state.etags.get(krl_url), MAX_KRL)? {
        Fetched::NotModified => Ok(None),
        Fetched::Body { bytes, etag } => {
            if !bytes.starts_with(KRL_MAGIC) {
                return Err(Failure::new(format!(
                    "{krl_url}: not an OpenSSH KRL (bad magic); refusing it"
                )));
            }
            Ok(Some((bytes, etag)))
        }
    }
}

fn save_state(path: &Path, state: &SyncState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| Failure::new(e.to_string()))?;
    write(path, &bytes)
}

fn write(path: &Path, bytes: &[u8]) -> Result<()> {
    secure_file::write_atomic(path, bytes, 0o644).map_err(|e| {
        Failure::new(format!(
            "cannot write {}: {e}; the installed file is unchanged",
            path.display()
        ))
    })
}

/// A grant from the CA is stored only if it verifies now and covers this host.
fn check_grant(
    config: &Config,
    names: &[String],
    doc: &[u8],
    now: u64,
) -> std::result::Result<(String, String), String> {
    let v = UnverifiedGrant::parse(doc)
        .and_then(|g| g.verify_at(now, &config.grant_keys, config.clock_skew_secs))
        .map_err(|e| e.to_string())?;
    let g = v.grant();
    if !g
        .hosts
        .iter()
        .any(|s| names.iter().any(|h| jit_common::host::matches(s, h)))
    {
        return Err(format!("grant {} does not cover this host", g.id));
    }
    Ok((g.user.clone(), g.id.clone()))
}

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

use jit_api::servers::{self, Method, Next, Outcome};
use jit_api::wire::{ErrorBody, HostGrantsView};
use jit_common::envelope::MAX_REVOCATION_LIST_SIZE;
use jit_common::secure_file::{self, Policy};
use jit_common::{UnverifiedGrant, UnverifiedRevocationList};
use pam_jit_core::config::{Config, check_servers};
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
    /// API path (`/v1/krl`, ...) -> ETag of the last response applied. Keyed by path, not
    /// URL: the replicas of one CA serve byte-identical documents under the same ETags, so
    /// a sync that fails over to another replica still gets its 304s.
    #[serde(default)]
    etags: BTreeMap<String, String>,
    /// Highest revocation-list sequence ever installed.
    #[serde(default)]
    revocation_sequence: u64,
}

impl SyncState {
    fn load(path: &Path) -> Self {
        let mut state: SyncState = match secure_file::read(path, &Policy::root_only(1 << 20)) {
            Ok(b) => serde_json::from_slice(&b).unwrap_or_default(),
            Err(_) => SyncState::default(),
        };
        // Written by an older jit-host (keyed by full URL): dropped once (one full fetch).
        state.etags.retain(|k, _| k.starts_with('/'));
        state
    }
}

enum Fetched {
    NotModified,
    Body {
        bytes: Vec<u8>,
        etag: Option<String>,
    },
}

/// A failed fetch: the message, and whether another replica may serve it
/// ([`jit_api::servers::retry_policy`] for a GET: no connection, a lost answer, a gateway's
/// 502/503/504, 503 `unavailable`).
struct FetchError {
    message: String,
    other_server_may_help: bool,
}

impl From<FetchError> for Failure {
    fn from(e: FetchError) -> Self {
        Failure::new(e.message)
    }
}

impl FetchError {
    fn fatal(message: String) -> Self {
        Self {
            message,
            other_server_may_help: false,
        }
    }
}

fn fetch(
    agent: &ureq::Agent,
    url: &str,
    etag: Option<&String>,
    max: usize,
) -> std::result::Result<Fetched, FetchError> {
    let mut req = agent.get(url);
    if let Some(e) = etag {
        req = req.set("If-None-Match", e);
    }
    let lost = |message: String| FetchError {
        message,
        other_server_may_help: servers::retry_policy(Method::Get, Outcome::AnswerLost)
            == Next::Retry,
    };
    let resp = match req.call() {
        Ok(r) => r,
        Err(ureq::Error::Status(code, r)) => {
            let mut body = String::new();
            let _ = r.into_reader().take(4096).read_to_string(&mut body);
            let jit_code = serde_json::from_str::<ErrorBody>(&body)
                .ok()
                .map(|b| b.error.code);
            let outcome = Outcome::Status {
                status: code,
                jit_code: jit_code.as_deref(),
            };
            return Err(FetchError {
                message: format!("GET {url}: HTTP {code}: {}", body.trim()),
                other_server_may_help: servers::retry_policy(Method::Get, outcome) == Next::Retry,
            });
        }
        Err(e) => {
            let outcome = match e.kind() {
                ureq::ErrorKind::Dns | ureq::ErrorKind::ConnectionFailed => Outcome::NotConnected,
                _ => Outcome::AnswerLost,
            };
            return Err(FetchError {
                message: format!(
                    "GET {url}: {e} (is the CA reachable? check `server` in host.toml)"
                ),
                other_server_may_help: servers::retry_policy(Method::Get, outcome) == Next::Retry,
            });
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
        .map_err(|e| lost(format!("GET {url}: reading the body: {e}")))?;
    if bytes.len() > max {
        return Err(FetchError::fatal(format!(
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
pub fn run(config_path: &Path, servers: &[String]) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    let now = jit_common::now().as_secs();
    let synced = fetch_and_store(&config, servers);
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

/// The servers to sync from: `--server` (repeatable, each possibly a comma list), else
/// `server` in host.toml.
fn servers_to_use(config: &Config, flags: &[String]) -> Result<Vec<String>> {
    let flags: Vec<String> = flags
        .iter()
        .flat_map(|f| f.split(','))
        .map(|f| f.trim().to_string())
        .collect();
    if !flags.is_empty() {
        return check_servers(&flags).map_err(|e| Failure::config(format!("--server: {e}")));
    }
    if config.servers.is_empty() {
        return Err(Failure::config(
            "no CA URL: pass --server URL or set `server` in host.toml",
        ));
    }
    Ok(config.servers.clone())
}

/// What one server's sync did (it ran to the end, perhaps with failures).
#[derive(Default)]
struct Done {
    report: Vec<String>,
    failures: Vec<String>,
    added: usize,
    skipped: Vec<String>,
}

/// Why a sync left a server for the next one (a retryable failure, or a lagging replica).
struct MoveOn(String);

/// What every server's sync shares.
struct Ctx<'a> {
    config: &'a Config,
    agent: ureq::Agent,
    names: Vec<String>,
    now: u64,
    state_path: std::path::PathBuf,
}

/// Syncs from the first server that serves the whole sync: revocations, the KRL, then the
/// grants, all from one base. On a failure another replica may not have (no connection, a
/// gateway error, 503 `unavailable`) or a revocation list or KRL older than the installed
/// one (a replica lagging behind), the next server is asked for the whole sync again;
/// what was installed meanwhile stays (it was verified). The last server's sync runs to the
/// end as a single server's does, its failures reported with why each earlier one was left.
pub(crate) fn fetch_and_store(config: &Config, flags: &[String]) -> Result<ExitCode> {
    let servers = servers_to_use(config, flags)?;
    ensure_state_dirs(config, false)?;
    let state_path = config.state_dir.join("sync-state.json");
    let mut state = SyncState::load(&state_path);
    let names = host_names(config);
    if names.is_empty() {
        return Err(Failure::new(
            "cannot tell this host's name (gethostname failed and host.toml has no hostnames)",
        ));
    }
    let ctx = Ctx {
        config,
        agent: ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .build(),
        names,
        now: jit_common::now().as_secs(),
        state_path,
    };
    let mut left = Vec::new();
    let mut done = Done::default();
    for (i, base) in servers.iter().enumerate() {
        let last = i + 1 == servers.len();
        match sync_from(&ctx, base, &mut state, last) {
            Ok(d) => {
                done = d;
                break;
            }
            Err(MoveOn(why)) => {
                jit_common::errln!("jit-host: {base}: {why}; trying the next server");
                left.push(format!("{base}: {why}"));
            }
        }
    }
    for s in &done.skipped {
        jit_common::errln!("jit-host: skipped a grant from the CA: {s}");
    }
    let Done {
        mut report,
        failures,
        added,
        ..
    } = done;
    if added > 0 {
        report.push(format!("{added} grant(s) stored"));
    }
    if report.is_empty() && !failures.is_empty() {
        jit_common::outln!("sync: nothing new installed");
    } else if report.is_empty() {
        jit_common::outln!("sync: up to date");
    } else {
        jit_common::outln!("sync: {}", report.join("; "));
    }
    if failures.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    let mut all = left;
    all.extend(failures);
    Err(Failure::new(format!(
        "sync incomplete ({} failure(s); everything else above was installed):\n  {}",
        all.len(),
        all.join("\n  ")
    )))
}

/// One server's sync; `Err` when the next server should be asked instead (never for the
/// last one, whose failures are reported like a single server's).
fn sync_from(
    ctx: &Ctx<'_>,
    base: &str,
    state: &mut SyncState,
    last: bool,
) -> std::result::Result<Done, MoveOn> {
    let config = ctx.config;
    let mut done = Done::default();
    // A failure that another replica may not have: move on, unless this is the last one.
    let fail = |done: &mut Done, message: String, move_on: bool| {
        if move_on && !last {
            Err(MoveOn(message))
        } else {
            done.failures.push(message);
            Ok(())
        }
    };

    // Revocations first, on their own: the revocation list and the KRL are fetched,
    // verified and installed before the grants are even asked for, so that no grants
    // document (oversized, invalid, failing to download; a requester can inflate one) can
    // keep a revocation from reaching this host. Each failure is reported; any failure makes
    // the command exit non-zero.
    match fetch_revocations(config, &ctx.agent, base, state) {
        Ok(None) => {}
        Ok(Some((bytes, etag, seq, changed))) => {
            let installed = if changed {
                write(&config.revocations_path(), &bytes).map(|()| {
                    done.report
                        .push(format!("revocation list #{seq} installed"));
                })
            } else {
                Ok(())
            };
            match installed {
                Ok(()) => {
                    state.revocation_sequence = state.revocation_sequence.max(seq);
                    if let Some(e) = etag {
                        state.etags.insert(REVOCATIONS.to_string(), e);
                    }
                }
                Err(f) => done.failures.push(f.message),
            }
        }
        Err(e) => fail(&mut done, e.message, e.other_server_may_help)?,
    }
    match fetch_krl(config, &ctx.agent, base, state) {
        Ok(None) => {}
        Ok(Some((bytes, etag))) => match write(&config.state_dir.join("krl"), &bytes) {
            Ok(()) => {
                done.report
                    .push(format!("KRL updated ({} bytes)", bytes.len()));
                if let Some(e) = etag {
                    state.etags.insert(KRL.to_string(), e);
                }
            }
            Err(f) => done.failures.push(f.message),
        },
        Err(e) => {
            let _ = save_state(&ctx.state_path, state);
            fail(&mut done, e.message, e.other_server_may_help)?;
        }
    }
    if let Err(f) = save_state(&ctx.state_path, state) {
        done.failures.push(f.message);
        return Ok(done);
    }

    // Then the grants, one host name at a time; a failing document is reported and skipped.
    for name in &ctx.names {
        let path = format!("/v1/hosts/{name}/grants");
        let url = format!("{base}{path}");
        let (bytes, etag) = match fetch(
            &ctx.agent,
            &url,
            state.etags.get(&path),
            MAX_GRANTS_RESPONSE,
        ) {
            Ok(Fetched::NotModified) => continue,
            Ok(Fetched::Body { bytes, etag }) => (bytes, etag),
            Err(e) => {
                if e.other_server_may_help && !last {
                    let _ = save_state(&ctx.state_path, state);
                }
                fail(&mut done, e.message, e.other_server_may_help)?;
                continue;
            }
        };
        let view: HostGrantsView = match serde_json::from_slice(&bytes) {
            Ok(v) => v,
            Err(e) => {
                done.failures.push(format!("{url}: not a grants list: {e}"));
                continue;
            }
        };
        let mut stored_all = true;
        for doc in view.grants {
            match check_grant(config, &ctx.names, doc.as_bytes(), ctx.now) {
                Ok((user, id)) => match store_grant(config, &user, &id, doc.as_bytes()) {
                    Ok((_, Stored::Written)) => done.added += 1,
                    Ok((_, Stored::Unchanged)) => {}
                    Err(f) => {
                        stored_all = false;
                        done.failures.push(f.message);
                    }
                },
                Err(why) => done.skipped.push(why),
            }
        }
        if stored_all && let Some(e) = etag {
            state.etags.insert(path, e);
        }
    }
    if let Err(f) = save_state(&ctx.state_path, state) {
        done.failures.push(f.message);
    }
    Ok(done)
}

/// The API paths sync fetches besides the per-host grants.
const REVOCATIONS: &str = "/v1/revocations";
const KRL: &str = "/v1/krl";

type NewRevocations = Option<(Vec<u8>, Option<String>, u64, bool)>;

/// Fetches and verifies the revocation list from `base`: `None` when unchanged (304);
/// otherwise the bytes, ETag, sequence and whether it differs from the installed one.
/// Refuses a list that does not verify, a lower sequence than ever installed (a replay, a
/// CA that lost its state, or a replica lagging behind: another replica may help), and a
/// different list under the installed sequence.
fn fetch_revocations(
    config: &Config,
    agent: &ureq::Agent,
    base: &str,
    state: &SyncState,
) -> std::result::Result<NewRevocations, FetchError> {
    let rev_url = format!("{base}{REVOCATIONS}");
    let (bytes, etag) = match fetch(
        agent,
        &rev_url,
        state.etags.get(REVOCATIONS),
        MAX_REVOCATION_LIST_SIZE,
    )? {
        Fetched::NotModified => return Ok(None),
        Fetched::Body { bytes, etag } => (bytes, etag),
    };
    let list = UnverifiedRevocationList::parse(&bytes)
        .and_then(|l| l.verify(&config.grant_keys))
        .map_err(|e| FetchError::fatal(format!("{rev_url}: revocation list refused: {e}")))?;
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
        return Err(FetchError {
            message: format!(
                "refusing revocation list #{seq}: #{high} was already installed (a replay, the CA lost its state, or a replica lagging behind)"
            ),
            other_server_may_help: true,
        });
    }
    match installed {
        Some((s, b)) if s == seq && b == bytes => Ok(Some((bytes, etag, seq, false))),
        Some((s, _)) if s == seq => Err(FetchError::fatal(format!(
            "refusing revocation list #{seq}: it differs from the installed list with the same sequence"
        ))),
        _ => Ok(Some((bytes, etag, seq, true))),
    }
}

/// A fetched KRL: its bytes and ETag.
type NewKrl = (Vec<u8>, Option<String>);

/// The version of an OpenSSH KRL (the CA writes its revocation sequence there): the
/// big-endian u64 after the magic and the 4-byte format version.
fn krl_version(krl: &[u8]) -> Option<u64> {
    let v: [u8; 8] = krl.get(12..20)?.try_into().ok()?;
    Some(u64::from_be_bytes(v))
}

/// Fetches the KRL from `base`: `None` when unchanged; refused unless it has the OpenSSH
/// KRL magic, and when its version is below the installed KRL's (a replica lagging behind:
/// another replica may help).
fn fetch_krl(
    config: &Config,
    agent: &ureq::Agent,
    base: &str,
    state: &SyncState,
) -> std::result::Result<Option<NewKrl>, FetchError> {
    let krl_url = format!("{base}{KRL}");
    match fetch(agent, &krl_url, state.etags.get(KRL), MAX_KRL)? {
        Fetched::NotModified => Ok(None),
        Fetched::Body { bytes, etag } => {
            if !bytes.starts_with(KRL_MAGIC) {
                return Err(FetchError::fatal(format!(
                    "{krl_url}: not an OpenSSH KRL (bad magic); refusing it"
                )));
            }
            let installed = std::fs::read(config.state_dir.join("krl"))
                .ok()
                .filter(|b| b.starts_with(KRL_MAGIC))
                .and_then(|b| krl_version(&b));
            if let (Some(new), Some(old)) = (krl_version(&bytes), installed)
                && new < old
            {
                return Err(FetchError {
                    message: format!(
                        "{krl_url}: refusing KRL version {new}: version {old} is installed (a replica lagging behind, or the CA lost its state)"
                    ),
                    other_server_may_help: true,
                });
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

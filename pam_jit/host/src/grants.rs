//! `check`, `install`, `list`, `gc`: the grant store seen by people.

use std::fs;
use std::io::Read;
use std::path::Path;
use std::process::ExitCode;

use jit_common::envelope::MAX_GRANT_SIZE;
use jit_common::time::format_utc;
use jit_common::{Error, UnverifiedGrant, VerifiedRevocationList};
use pam_jit_core::config::{Config, Mode};
use pam_jit_core::decide::{Caller, Facts, Verdict, revocation_state};
use pam_jit_core::store::{MAX_FILES_PER_USER, read_revocations};
use pam_jit_core::{decide_here, sys};
use serde::Serialize;

use crate::failure::{Failure, Result, host_names, load_config};
use crate::store_write::{Stored, UserDir, store_grant};

/// `jit-host check USER`.
pub fn check(
    config_path: &Path,
    user: &str,
    service: &str,
    session: Option<u32>,
    json: bool,
) -> Result<ExitCode> {
    let now = jit_common::now();
    let config = load_config(config_path)?;
    if let Some(id) = session
        && !pam_jit_core::session::is_session_id(id)
    {
        return Err(Failure::config(format!(
            "--session {id} is not an audit session id (1 to 4294967294; jit-host sessions lists them)"
        )));
    }
    let names = host_names(&config);
    let uid = sys::user_by_name(user).map(|p| p.uid);
    let facts = Facts {
        caller: Caller {
            ruser: Some(user),
            // As if USER ran sudo: the process's real uid would be USER's.
            uid: uid.unwrap_or(u32::MAX),
            ruser_uid: uid,
        },
        service,
        host_names: &names,
        now,
        session_id: session,
    };
    // The module's path: identify once, read the user's grants, decide with root's records.
    let decision = decide_here(&config, &facts);
    let allowed = decision.verdict == Verdict::Allow;
    let warnings = config_warnings(&config);
    let readiness = crate::sessions::host_readiness(&config);
    if json {
        #[derive(Serialize)]
        struct Out<'a> {
            user: &'a str,
            service: &'a str,
            host_names: &'a [String],
            mode: String,
            result: &'a str,
            allowed: bool,
            grant_id: Option<&'a str>,
            reason: &'a str,
            message: Option<&'a str>,
            break_glass: bool,
            audit_would_deny: bool,
            now: u64,
            warnings: &'a [String],
            #[serde(skip_serializing_if = "Option::is_none")]
            session: Option<u32>,
            #[serde(skip_serializing_if = "Option::is_none")]
            serial: Option<u64>,
            session_binding: &'a crate::sessions::HostReadiness,
        }
        let out = Out {
            user,
            service,
            host_names: &names,
            mode: config.mode.to_string(),
            result: decision.result_word(),
            allowed,
            grant_id: decision.grant_id.as_deref(),
            reason: &decision.reason,
            message: decision.user_message.as_deref(),
            break_glass: decision.break_glass,
            audit_would_deny: decision.audit_would_deny,
            now: now.as_secs(),
            warnings: &warnings,
            session: decision.session.or(session),
            serial: decision.serial,
            session_binding: &readiness,
        };
        jit_common::outln!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| Failure::new(e.to_string()))?
        );
    } else {
        jit_common::outln!(
            "{}: sudo for {user} (service {service}) on {} at {}",
            decision.result_word(),
            names.join(", "),
            format_utc(now)
        );
        jit_common::outln!("  reason: {}", decision.reason);
        if let Some(id) = decision.session.or(session) {
            match decision.serial {
                Some(s) => jit_common::outln!("  session: {id} (certificate serial {s})"),
                None => jit_common::outln!("  session: {id}"),
            }
        }
        if let Some(m) = &decision.user_message {
            jit_common::outln!("  the user sees: {m}");
        }
        if config.mode == Mode::Audit {
            jit_common::outln!("  mode: audit (denials are logged, not enforced)");
        }
        for w in &warnings {
            jit_common::outln!("  warning: {w}");
        }
        jit_common::outln!("  {}", crate::sessions::describe_readiness(&readiness));
    }
    Ok(if allowed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Where systemd records that `jit-host-sync.timer` is enabled.
const TIMER_WANTS: &str = "/etc/systemd/system/timers.target.wants/jit-host-sync.timer";

/// Configuration problems `check` reports besides the decision: a staleness bound that
/// conflicts with the CA's default `revocation_refresh` and the sync timer period, and (on
/// a systemd host) a sync timer that is not enabled.
pub fn config_warnings(config: &Config) -> Vec<String> {
    let mut w = Vec::new();
    if let Some(c) = jit_common::revocation::max_age_conflict(
        config.revocation_max_age_secs,
        DEFAULT_CA_REVOCATION_REFRESH,
    ) {
        w.push(format!(
            "{c} (assuming the CA's default revocation_refresh, 10m)"
        ));
    }
    if Path::new("/run/systemd/system").is_dir() && !Path::new(TIMER_WANTS).exists() {
        w.push(format!(
            "jit-host-sync.timer is not enabled: no new revocation list will arrive, and every non-break-glass sudo and certificate login is refused once the list is older than {}s; run: systemctl enable --now jit-host-sync.timer",
            config.revocation_max_age_secs
        ));
    }
    w
}

/// The CA's default `revocation_refresh` (ssh-ca/server/src/config), in seconds.
const DEFAULT_CA_REVOCATION_REFRESH: u64 = 600;

/// `jit-host install FILE`.
pub fn install(config_path: &Path, file: &Path) -> Result<ExitCode> {
    let now = jit_common::now();
    let config = load_config(config_path)?;
    let mut doc = Vec::new();
    fs::File::open(file)
        .and_then(|f| f.take(MAX_GRANT_SIZE as u64 + 1).read_to_end(&mut doc))
        .map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?;
    let parsed = UnverifiedGrant::parse(&doc)
        .map_err(|e| Failure::new(format!("{} is not a grant: {e}", file.display())))?;
    let claims = parsed.claims_unverified().clone();
    let skew = config.clock_skew_secs;
    // Installing ahead of the window is allowed; after it, pointless.
    let check = |ring| match parsed.clone().verify_at(now, ring, skew) {
        Ok(_) | Err(Error::NotYetValid { .. }) => Ok(()),
        Err(e) => Err(e),
    };
    let break_glass = match check(&config.grant_keys) {
        Ok(()) => false,
        Err(Error::UntrustedKey { .. }) if !config.break_glass_keys.is_empty() => {
            check(&config.break_glass_keys)
                .map_err(|e| Failure::new(format!("{}: {e}", file.display())))?;
            true
        }
        Err(e) => return Err(Failure::new(format!("{}: {e}", file.display()))),
    };
    if sys::user_by_name(&claims.user).is_none() {
        jit_common::errln!(
            "jit-host: warning: user {} does not exist on this host",
            claims.user
        );
    }
    let names = host_names(&config);
    if !claims
        .hosts
        .iter()
        .any(|s| names.iter().any(|h| jit_common::host::matches(s, h)))
    {
        jit_common::errln!(
            "jit-host: warning: grant {} covers {}, not this host ({})",
            claims.id,
            claims.hosts.join(","),
            names.join(", ")
        );
    }
    let window = claims
        .not_after
        .saturating_since(claims.not_before.min(claims.issued_at))
        .as_secs();
    if break_glass && window > config.break_glass_max_window_secs {
        jit_common::errln!(
            "jit-host: warning: break-glass grant {} spans {window}s, more than break_glass_max_window_secs ({}s): pam_jit.so will deny it",
            claims.id,
            config.break_glass_max_window_secs
        );
    }
    let (path, stored) = store_grant(&config, &claims.user, &claims.id, &doc)?;
    // Root's record of these verified bytes lets pam_jit.so skip their signature check.
    crate::index::record_grant(&config, &doc)?;
    jit_common::outln!(
        "{} {}grant {} for {} ({} .. {}) at {}",
        if stored == Stored::Written {
            "installed"
        } else {
            "already installed:"
        },
        if break_glass { "BREAK-GLASS " } else { "" },
        claims.id,
        claims.user,
        format_utc(claims.not_before),
        format_utc(claims.not_after),
        path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One stored grant, for `list` and `gc`.
#[derive(Debug, Serialize)]
pub struct Listed {
    pub file: String,
    pub id: Option<String>,
    pub user: String,
    pub role: Option<String>,
    pub hosts: Vec<String>,
    pub not_before: Option<u64>,
    pub not_after: Option<u64>,
    pub status: &'static str,
    pub detail: String,
    pub break_glass: bool,
    /// The file name inside the user's directory (for `gc`'s fd-relative removal).
    #[serde(skip)]
    pub name: String,
}

fn status_of(
    config: &Config,
    revs: Option<&VerifiedRevocationList>,
    user: &str,
    dir: &UserDir,
    name: &str,
    now: u64,
) -> Listed {
    let file = dir.path().join(name).display().to_string();
    let mut l = Listed {
        file,
        id: None,
        user: user.to_string(),
        role: None,
        hosts: vec![],
        not_before: None,
        not_after: None,
        status: "invalid",
        detail: String::new(),
        break_glass: false,
        name: name.to_string(),
    };
    let bytes = match dir.read(name) {
        Ok(b) => b,
        Err(e) => {
            l.status = "refused";
            l.detail = e.to_string();
            return l;
        }
    };
    let parsed = match UnverifiedGrant::parse(&bytes) {
        Ok(p) => p,
        Err(e) => {
            l.detail = e.to_string();
            return l;
        }
    };
    let c = parsed.claims_unverified().clone();
    l.id = Some(c.id.clone());
    l.role = Some(c.role.clone());
    l.hosts = c.hosts.clone();
    l.not_before = Some(c.not_before.as_secs());
    l.not_after = Some(c.not_after.as_secs());
    let skew = config.clock_skew_secs;
    let verified = match parsed.clone().verify_at(now, &config.grant_keys, skew) {
        Err(Error::UntrustedKey { .. }) if !config.break_glass_keys.is_empty() => {
            l.break_glass = true;
            parsed.verify_at(now, &config.break_glass_keys, skew)
        }
        r => r,
    };
    match verified {
        Ok(_) => {}
        Err(Error::Expired { .. }) => {
            l.status = "expired";
            return l;
        }
        Err(Error::NotYetValid { .. }) => {
            l.status = "not-yet-valid";
            return l;
        }
        Err(e) => {
            l.detail = e.to_string();
            return l;
        }
    }
    if c.user != user {
        l.status = "invalid";
        l.detail = format!("stored under {user} but issued to {}", c.user);
        return l;
    }
    if let Some(r) = revs
        && (r.is_grant_revoked(&c.id) || c.cert_serial.is_some_and(|s| r.is_serial_revoked(s)))
    {
        l.status = "revoked";
        return l;
    }
    l.status = "valid";
    l
}

/// The verified revocation list (also when stale: its entries still revoke), read and
/// verified as the module does.
fn verified_revocations(config: &Config, now: u64) -> Option<VerifiedRevocationList> {
    revocation_state(config, &read_revocations(&config.state_dir), now.into()).list
}

/// The user directories under the grant store whose names are valid user names, sorted
/// (none when the store does not exist yet).
pub(crate) fn user_dirs(grants: &std::path::Path) -> Result<Vec<String>> {
    let mut users: Vec<String> = match fs::read_dir(grants) {
        Ok(rd) => rd
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .filter(|n| jit_common::grant::check_user("user", n).is_ok())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => vec![],
        Err(e) => return Err(Failure::new(format!("{}: {e}", grants.display()))),
    };
    users.sort();
    Ok(users)
}

/// Every stored grant (of one user or all), bounded per user like the module.
pub(crate) fn collect(config: &Config, only: Option<&str>, now: u64) -> Result<Vec<Listed>> {
    collect_counted(config, only, now).map(|(listed, _)| listed)
}

/// [`collect`], with the user directories it had to skip (each also reported on stderr):
/// the list is then incomplete (the metrics file says so).
pub(crate) fn collect_counted(
    config: &Config,
    only: Option<&str>,
    now: u64,
) -> Result<(Vec<Listed>, Vec<String>)> {
    let mut skipped = Vec::new();
    let revs = verified_revocations(config, now);
    let grants = config.grants_dir();
    let users: Vec<String> = match only {
        Some(u) => {
            jit_common::grant::check_user("user", u).map_err(|e| Failure::config(e.to_string()))?;
            vec![u.to_string()]
        }
        None => user_dirs(&grants)?,
    };
    let mut out = Vec::new();
    for user in users {
        // Opened without following links (the writer owns grants/ and may swap a symlink in).
        let dir = match UserDir::open(config, &user, false) {
            Ok(Some(d)) => d,
            Ok(None) => continue,
            Err(e) => {
                jit_common::errln!("jit-host: skipped {}: {e}", grants.join(&user).display());
                skipped.push(format!("{}: {e}", grants.join(&user).display()));
                continue;
            }
        };
        let names = match dir.grant_names(MAX_FILES_PER_USER * 4) {
            Ok(n) => n,
            Err(e) => {
                jit_common::errln!("jit-host: skipped {}: {e}", dir.path().display());
                skipped.push(format!("{}: {e}", dir.path().display()));
                continue;
            }
        };
        for n in names {
            out.push(status_of(config, revs.as_ref(), &user, &dir, &n, now));
        }
    }
    Ok((out, skipped))
}

/// `jit-host list [USER]`.
pub fn list(config_path: &Path, user: Option<&str>, json: bool) -> Result<ExitCode> {
    let now = jit_common::now().as_secs();
    let config = load_config(config_path)?;
    let items = collect(&config, user, now)?;
    if json {
        jit_common::outln!(
            "{}",
            serde_json::to_string_pretty(&items).map_err(|e| Failure::new(e.to_string()))?
        );
        return Ok(ExitCode::SUCCESS);
    }
    if items.is_empty() {
        jit_common::outln!("no grants stored under {}", config.grants_dir().display());
        return Ok(ExitCode::SUCCESS);
    }
    jit_common::outln!(
        "{:<24} {:<12} {:<12} {:<20} {:<21} STATUS",
        "GRANT",
        "USER",
        "ROLE",
        "HOSTS",
        "ENDS"
    );
    for l in &items {
        jit_common::outln!(
            "{:<24} {:<12} {:<12} {:<20} {:<21} {}{}{}",
            l.id.as_deref().unwrap_or("?"),
            l.user,
            l.role.as_deref().unwrap_or("?"),
            l.hosts.join(","),
            l.not_after.map(format_utc).unwrap_or_else(|| "?".into()),
            l.status,
            if l.break_glass { " (break-glass)" } else { "" },
            if l.detail.is_empty() {
                String::new()
            } else {
                format!(": {}", l.detail)
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// `jit-host gc`: removes expired and revoked grants. Invalid files are reported, not
/// removed (they may be evidence). Then, as root, re-indexes root's verified-grant records
/// (records of removed or changed files are pruned).
pub fn gc(config_path: &Path, dry_run: bool) -> Result<ExitCode> {
    let now = jit_common::now().as_secs();
    let config = load_config(config_path)?;
    let items = collect(&config, None, now)?;
    let mut removed = 0;
    let mut failed = false;
    for l in &items {
        match l.status {
            "expired" | "revoked" => {
                if dry_run {
                    jit_common::outln!("would remove {} ({})", l.file, l.status);
                    continue;
                }
                // Removed relative to the user's directory opened without following links,
                // and only if the name is (still) a regular file of a trusted owner.
                let dir = match UserDir::open(&config, &l.user, false) {
                    Ok(Some(d)) => d,
                    Ok(None) => continue,
                    Err(e) => {
                        failed = true;
                        jit_common::errln!("jit-host: cannot remove {}: {e}", l.file);
                        continue;
                    }
                };
                match dir.remove(&l.name) {
                    Ok(false) => {}
                    Ok(true) => {
                        removed += 1;
                        jit_common::outln!("removed {} ({})", l.file, l.status);
                    }
                    Err(e) => {
                        failed = true;
                        jit_common::errln!("jit-host: cannot remove {}: {e}", l.file);
                    }
                }
            }
            "invalid" | "refused" => {
                jit_common::errln!(
                    "jit-host: left in place: {} ({}: {})",
                    l.file,
                    l.status,
                    l.detail
                );
            }
            _ => {}
        }
    }
    // Session bindings: tombstones and bindings whose connection is gone.
    failed |= crate::sessions::gc(&config, dry_run);
    if !dry_run {
        jit_common::outln!("gc: removed {removed} grant(s)");
        // Records of removed grants go; grants stored since the last sync get theirs.
        if let Some(ix) = crate::index::index_store(&config)? {
            jit_common::outln!("gc: {}", ix.summary());
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

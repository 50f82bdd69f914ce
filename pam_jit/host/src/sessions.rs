//! Session bindings seen by people (issue 14): `jit-host sessions [--json]`,
//! `jit-host end-session ID`, the bindings part of `jit-host gc`, and whether this host can
//! bind SSH connections at all (the readiness block of `jit-host check`).
//!
//! The bindings are written by `pam_jit.so`'s session hook and read and marked ended
//! through `pam_jit_core::session` (the one format and writer).

use std::path::Path;
use std::process::ExitCode;

use jit_common::UnixTime;
use jit_common::log::{Severity, Syslog, field};
use jit_common::secure_file::{FileError, Policy, check_dir};
use jit_common::time::format_utc;
use pam_jit_core::config::Config;
use pam_jit_core::session::{
    self, Binding, ENDED_BY_TOOL, Liveness, is_session_id, list_bindings, liveness, read_binding,
};
use pam_jit_core::sys;
use serde::Serialize;

use crate::failure::{Failure, Result, load_config};
use crate::setup::pamfile::read_includes;
use crate::setup::session::{PAM_SSHD, Readiness, readiness_in};

/// One binding as `jit-host sessions` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SessionRow {
    /// The audit session id.
    pub session: u32,
    pub user: String,
    pub grant: String,
    pub role: String,
    /// The certificate serial.
    pub serial: u64,
    /// When the binding was written (Unix seconds).
    pub since: u64,
    /// Whether its connection is alive (only then can the grant allow sudo).
    pub alive: bool,
    /// `alive`, or why not: `ended at ... by logout`, `leader pid N is gone`, ...
    pub why: String,
    /// The leader: sshd's per-connection privileged process.
    pub leader: u32,
    /// The client address (`PAM_RHOST`).
    pub client: String,
    pub tty: String,
    /// The grant's end (Unix seconds).
    pub not_after: u64,
    pub ended_at: Option<u64>,
    pub ended_by: Option<String>,
}

/// The row of `b` whose connection is `l`.
pub fn row_of(b: &Binding, l: &Liveness) -> SessionRow {
    SessionRow {
        session: b.session_id,
        user: b.user.clone(),
        grant: b.grant_id.clone(),
        role: b.role.clone(),
        serial: b.serial,
        since: b.since.as_secs(),
        alive: l.is_alive(),
        why: l.describe(),
        leader: b.leader_pid,
        client: b.client.clone(),
        tty: b.tty.clone(),
        not_after: b.not_after.as_secs(),
        ended_at: b.ended_at.map(UnixTime::as_secs),
        ended_by: b.ended_by.clone(),
    }
}

/// The table of `jit-host sessions`.
pub fn render(rows: &[SessionRow], dir: &Path) -> String {
    if rows.is_empty() {
        return format!("no session bindings in {}\n", dir.display());
    }
    let cells: Vec<[String; 6]> = rows
        .iter()
        .map(|r| {
            [
                r.session.to_string(),
                r.user.clone(),
                r.grant.clone(),
                r.serial.to_string(),
                format_utc(r.since),
                if r.alive {
                    "yes".to_string()
                } else {
                    format!("no: {}", r.why)
                },
            ]
        })
        .collect();
    let head = ["SESSION", "USER", "GRANT", "SERIAL", "SINCE", "ALIVE"];
    let mut w: Vec<usize> = head.iter().map(|h| h.len()).collect();
    for c in &cells {
        for (i, cell) in c.iter().enumerate() {
            w[i] = w[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let line = |cells: &[&str], out: &mut String| {
        let mut l = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                l.push_str(cell);
            } else {
                l.push_str(&format!("{cell:<width$}  ", width = w[i]));
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&head, &mut out);
    for c in &cells {
        let refs: Vec<&str> = c.iter().map(String::as_str).collect();
        line(&refs, &mut out);
    }
    out
}

fn need_root(what: &str) -> Result<()> {
    if sys::effective_uid() != 0 {
        return Err(Failure::new(format!(
            "session bindings are root's (0700): run jit-host {what} as root"
        )));
    }
    Ok(())
}

/// `jit-host sessions [--json]`. Files that cannot be trusted are reported on stderr and
/// make the exit code 1 (after the list).
pub fn list(config_path: &Path, json: bool) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    need_root("sessions")?;
    let (bindings, problems) = list_bindings(&config.session_dir);
    let rows: Vec<SessionRow> = bindings.iter().map(|b| row_of(b, &liveness(b))).collect();
    if json {
        jit_common::outln!(
            "{}",
            serde_json::to_string_pretty(&rows).map_err(|e| Failure::new(e.to_string()))?
        );
    } else {
        jit_common::out!("{}", render(&rows, &config.session_dir));
    }
    for p in &problems {
        jit_common::errln!("jit-host: not listed: {p}");
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// What `end-session` says on stderr when no syslog daemon took its audit line.
pub const NOT_LOGGED: &str = "(not logged: no syslog daemon on /dev/log)";

/// An audit id (login uid, session id) for the log: `-` when unset or unreadable.
fn audit_id(id: Option<u32>) -> String {
    id.map_or_else(|| "-".into(), |id| id.to_string())
}

/// The syslog line of `end-session`: the binding, and who ended it: the real uid and, as
/// they survive sudo, the login uid and audit session of the caller (`-` when unset).
pub fn end_audit_line(
    b: &Binding,
    by_uid: u32,
    by_loginuid: Option<u32>,
    by_session: Option<u32>,
) -> String {
    [
        field("result", "end-session"),
        field("session", &b.session_id.to_string()),
        field("user", &b.user),
        field("grant", &b.grant_id),
        field("serial", &b.serial.to_string()),
        field("client", &b.client),
        field("leader", &b.leader_pid.to_string()),
        field("by_uid", &by_uid.to_string()),
        field("by_loginuid", &audit_id(by_loginuid)),
        field("by_session", &audit_id(by_session)),
    ]
    .join(" ")
}

/// `jit-host end-session ID`: marks the binding ended (`ended_by` "jit-host end-session"), so
/// its grant allows no more sudo in that session; audited to syslog.
pub fn end(config_path: &Path, id: u32) -> Result<ExitCode> {
    let config = load_config(config_path)?;
    if !is_session_id(id) {
        return Err(Failure::config(format!(
            "{id} is not an audit session id (1 to 4294967294); jit-host sessions lists them"
        )));
    }
    need_root("end-session")?;
    let dir = &config.session_dir;
    let unknown = || {
        Failure::new(format!(
            "there is no binding for session {id} in {}; jit-host sessions lists the bindings",
            dir.display()
        ))
    };
    let before = read_binding(dir, id)
        .map_err(|e| Failure::new(format!("cannot read session {id}'s binding: {e}")))?
        .ok_or_else(unknown)?;
    if before.ended_at.is_some() {
        jit_common::outln!(
            "session {id} has already ended ({})",
            liveness(&before).describe()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let now = jit_common::now();
    let after = session::write::mark_ended(dir, id, now, ENDED_BY_TOOL)
        .map_err(|e| Failure::new(format!("cannot end session {id}: {e}")))?;
    if after.ended_at != Some(now) || after.ended_by.as_deref() != Some(ENDED_BY_TOOL) {
        // Ended by its own logout between the read and the write: the first end is kept.
        jit_common::outln!(
            "session {id} has already ended ({})",
            liveness(&after).describe()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let mut log = Syslog::new("jit-host");
    log.log(
        Severity::Notice,
        &end_audit_line(
            &after,
            sys::real_uid(),
            session::proc::own_loginuid(),
            session::proc::own_session_id(),
        ),
    );
    if !log.is_connected() {
        jit_common::errln!("jit-host: end-session: {}", NOT_LOGGED);
    }
    jit_common::outln!(
        "ended session {id} of {} (grant {}, certificate serial {}, from {}): sudo with that \
         grant is denied in it from now on; the SSH connection itself stays open (its sshd \
         process is pid {})",
        after.user,
        after.grant_id,
        after.serial,
        after.client,
        after.leader_pid
    );
    Ok(ExitCode::SUCCESS)
}

/// How long a crashed writer's temporary file (`.<id>.binding.<pid>.tmp`) is left alone.
pub const TEMP_FILE_AGE_SECS: u64 = 600;

/// Which bindings `gc` removes at `now`: tombstones and those whose connection is gone
/// (leader gone, an earlier boot), but only once the grant has expired (`not_after` +
/// `skew`): until then the binding is what lets sudo's denial say that the session ended
/// (rather than that it has no binding, which points at the wrong fix). A gone leader
/// counts only when `proc_ok` (this process sees every process: no hidepid, no other pid
/// namespace). Alive ones stay, and so do those whose state cannot be read.
pub fn collectable(b: &Binding, l: &Liveness, now: UnixTime, skew: u64, proc_ok: bool) -> bool {
    let expired = now.as_secs() > b.not_after.as_secs().saturating_add(skew);
    expired
        && match l {
            Liveness::Ended { .. } | Liveness::OtherBoot => true,
            Liveness::LeaderGone { .. } => proc_ok,
            Liveness::Alive | Liveness::Unreadable(_) => false,
        }
}

/// A coarse check that this process sees processes at all: `/proc/1/stat` must be readable.
/// It does not detect every partial view (another pid namespace has its own pid 1; root reads
/// pid 1 under hidepid): that is safe because gc takes a binding only once its grant has
/// ended (plus skew), so a wrong view can only remove bindings that no longer allow anything.
pub fn sees_all_processes() -> bool {
    std::fs::read_to_string("/proc/1/stat").is_ok()
}

/// The bindings part of `jit-host gc`: returns whether a removal failed.
pub fn gc(config: &Config, dry_run: bool) -> bool {
    gc_at(config, dry_run, jit_common::now(), sees_all_processes())
}

/// [`gc`] at `now`, with `proc_ok` from [`sees_all_processes`].
pub fn gc_at(config: &Config, dry_run: bool, now: UnixTime, proc_ok: bool) -> bool {
    let dir = &config.session_dir;
    let (bindings, problems) = list_bindings(dir);
    for p in &problems {
        jit_common::errln!("jit-host: left in place: {p}");
    }
    if !proc_ok {
        jit_common::errln!(
            "jit-host: /proc/1/stat is not readable (/proc mounted with hidepid, or another \
             pid namespace): bindings whose leader looks gone are kept"
        );
    }
    let mut removed = 0;
    let mut failed = false;
    for b in &bindings {
        let l = liveness(b);
        if !collectable(b, &l, now, config.clock_skew_secs, proc_ok) {
            continue;
        }
        let path = session::binding_path(dir, b.session_id);
        if dry_run {
            jit_common::outln!("would remove {} ({})", path.display(), l.describe());
            continue;
        }
        // Re-read just before unlinking: a new login may have rebound this session id.
        match read_binding(dir, b.session_id) {
            Ok(Some(now_b)) if now_b == *b => {}
            _ => continue,
        }
        match session::write::remove_binding(dir, b.session_id) {
            Ok(true) => {
                removed += 1;
                jit_common::outln!("removed {} ({})", path.display(), l.describe());
            }
            Ok(false) => {}
            Err(e) => {
                failed = true;
                jit_common::errln!("jit-host: cannot remove {}: {e}", path.display());
            }
        }
    }
    failed |= gc_temp_files(dir, dry_run, now);
    if !dry_run {
        jit_common::outln!("gc: removed {removed} session binding(s)");
    }
    failed
}

/// Removes root-owned temporary files (`.<name>.tmp`) older than [`TEMP_FILE_AGE_SECS`]
/// left in the session directory by a writer that crashed; returns whether one failed.
fn gc_temp_files(dir: &Path, dry_run: bool, now: UnixTime) -> bool {
    use std::os::unix::fs::MetadataExt as _;
    if check_dir(dir, &Policy::root_only(0)).is_err() {
        return false;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut failed = false;
    for e in entries.flatten().take(session::MAX_BINDINGS_LISTED) {
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !(name.starts_with('.') && name.ends_with(".tmp")) {
            continue;
        }
        let Ok(m) = std::fs::symlink_metadata(e.path()) else {
            continue;
        };
        let age = now
            .as_secs()
            .saturating_sub(u64::try_from(m.mtime()).unwrap_or(0));
        if !m.is_file() || m.uid() != 0 || age < TEMP_FILE_AGE_SECS {
            continue;
        }
        if dry_run {
            jit_common::outln!(
                "would remove {} (left by a crashed writer)",
                e.path().display()
            );
            continue;
        }
        match std::fs::remove_file(e.path()) {
            Ok(()) => {
                jit_common::outln!("removed {} (left by a crashed writer)", e.path().display())
            }
            Err(err) => {
                failed = true;
                jit_common::errln!("jit-host: cannot remove {}: {err}", e.path().display());
            }
        }
    }
    failed
}

/// Whether this host can bind SSH connections (`jit-host check`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HostReadiness {
    /// No problem below.
    pub ready: bool,
    pub pam_file: String,
    /// What the PAM file says (all false when it cannot be read).
    pub session_line: bool,
    pub loginuid_before: bool,
    pub readenv_before: bool,
    pub session_dir: String,
    /// Each problem with what to do, one line each.
    pub problems: Vec<String>,
}

/// The readiness of a host whose sshd PAM file reads `pam` (Err: why it cannot be read),
/// with its included files `includes`, whose session directory check gave `dir_check`, and
/// whose sshd configuration check gave `sshd` (a problem, e.g. `UsePAM no`).
pub fn readiness_of(
    pam_file: &Path,
    pam: std::result::Result<&str, String>,
    includes: &[(String, String)],
    session_dir: &Path,
    dir_check: std::result::Result<(), String>,
    sshd: Option<String>,
) -> HostReadiness {
    let (r, mut problems) = match pam {
        Ok(text) => {
            let r = readiness_in(pam_file, text, includes, None);
            let p = r.problems(pam_file);
            (r, p)
        }
        Err(e) => (
            Readiness::default(),
            vec![format!("cannot read {}: {e}", pam_file.display())],
        ),
    };
    if let Err(e) = dir_check {
        problems.push(format!("session_dir {}: {e}", session_dir.display()));
    }
    problems.extend(sshd);
    HostReadiness {
        ready: problems.is_empty(),
        pam_file: pam_file.display().to_string(),
        session_line: r.session_line,
        loginuid_before: r.loginuid_before,
        readenv_before: r.readenv_before,
        session_dir: session_dir.display().to_string(),
        problems,
    }
}

/// What `sshd -T` (its effective configuration, `usepam`) says about binding: None when it
/// uses PAM or cannot be asked (no sshd here), else the problem.
pub fn sshd_problem(sshd_t: &str) -> Option<String> {
    let usepam = sshd_t
        .lines()
        .find_map(|l| l.strip_prefix("usepam "))
        .map(str::trim);
    (usepam == Some("no")).then(|| {
        "sshd runs with `UsePAM no` (sshd -T), so it never opens a PAM session and no SSH \
         connection is bound; set `UsePAM yes` in /etc/ssh/sshd_config"
            .to_string()
    })
}

/// Asks `sshd -T` (bounded: killed after 10 seconds) for its effective configuration:
/// Ok(None) when there is no sshd here, Err(why) when it could not say.
fn sshd_effective() -> std::result::Result<Option<String>, String> {
    use std::io::Read as _;
    use std::process::Stdio;
    let Some(sshd) = ["/usr/sbin/sshd", "/usr/bin/sshd", "/sbin/sshd"]
        .into_iter()
        .map(Path::new)
        .find(|p| p.exists())
    else {
        return Ok(None);
    };
    let mut child = std::process::Command::new(sshd)
        .arg("-T")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", sshd.display()))?;
    // Read its output while it runs (more than a pipe's worth would otherwise block it until
    // the deadline), at most 1 MiB of each stream.
    let drain = |r: Option<Box<dyn std::io::Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(r) = r {
                let _ = r.take(1 << 20).read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let err = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                let _ = (out.join(), err.join());
                return Err("sshd -T did not answer within 10 seconds".into());
            }
        }
    };
    let out = out.join().unwrap_or_default();
    let err = err.join().unwrap_or_default();
    if status.success() {
        return Ok(Some(String::from_utf8_lossy(&out).into_owned()));
    }
    let first = String::from_utf8_lossy(&err)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    Err(jit_common::log::sanitize(
        &format!("sshd -T failed ({status}): {first}"),
        300,
    ))
}

/// The readiness problem of `sshd -T`'s answer.
fn sshd_check() -> Option<String> {
    match sshd_effective() {
        Ok(Some(t)) => sshd_problem(&t),
        Ok(None) => None,
        Err(why) => Some(format!(
            "could not verify that sshd uses PAM ({why}); check by hand that `sshd -T | grep \
             usepam` says `usepam yes`"
        )),
    }
}

/// This host's readiness: `/etc/pam.d/sshd` (and the files it includes), host.toml's
/// `session_dir` (a directory that does not exist yet is fine: pam_jit creates it root 0700
/// at the first bound login), and sshd's `UsePAM`.
pub fn host_readiness(config: &Config) -> HostReadiness {
    let pam_file = Path::new(PAM_SSHD);
    let text = std::fs::read_to_string(pam_file).map_err(|e| e.to_string());
    let includes = match &text {
        Ok(t) => read_includes(Path::new("/etc/pam.d"), t),
        Err(_) => Vec::new(),
    };
    let dir_check = match check_dir(&config.session_dir, &Policy::root_only(0)) {
        Ok(()) | Err(FileError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.to_string()),
    };
    readiness_of(
        pam_file,
        text.as_deref().map_err(Clone::clone),
        &includes,
        &config.session_dir,
        dir_check,
        sshd_check(),
    )
}

/// The readiness line of `jit-host check`'s text.
pub fn describe_readiness(r: &HostReadiness) -> String {
    if r.ready {
        return format!(
            "session-bound grants: this host binds SSH connections (pam_jit.so after \
             pam_loginuid in {}; session_dir {})",
            r.pam_file, r.session_dir
        );
    }
    format!(
        "session-bound grants: this host cannot bind SSH connections, so it denies them: {}",
        r.problems.join("; ")
    )
}

#[cfg(test)]
mod tests;

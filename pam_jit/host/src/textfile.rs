//! node_exporter textfile-collector metrics: `<textfile_dir>/jit_host.prom`, written by
//! every `jit-host sync` (when host.toml sets `textfile_dir`), successful or not.
//!
//! The values come from what is installed on this host after the sync ran, never from
//! what the CA said: the grants valid now (verified, inside their window, not revoked; the
//! break-glass ones among them), and the installed revocation list's sequence and signing
//! time (0 when no verified list is installed, so a staleness alert fires). A failed sync
//! still writes the file, with `jit_host_last_sync_success 0` and those local values. The
//! file is written atomically (temporary file, `fsync`, rename: node_exporter never reads
//! half a file, and ignores the temporary name, which does not end in `.prom`), mode 0644,
//! relative to the directory opened without following a link ([`write`]).
//!
//! Only sync writes it: the sync timer runs every 5 minutes whether or not the CA answers,
//! so the file is refreshed at that pace (a break-glass grant `jit-host install`ed while
//! the CA is down shows within one timer period), and `list`/`check` stay read-only.

use std::fmt::Write as _;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use pam_jit_core::config::{Config, TEXTFILE_NAME};
use pam_jit_core::decide::revocation_state;
use pam_jit_core::store::read_revocations;
use rustix::fs::{Mode, OFlags};

use crate::failure::{Failure, Result};

/// What the file reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Metrics {
    /// Stored grants valid now (break-glass ones included) and, of those, the ones signed by
    /// a break-glass key; `None` when the grant store could not be listed (both metrics are
    /// then left out of the file rather than reported as 0).
    pub grants: Option<(u64, u64)>,
    /// Whether every grant was listed: false when the store or a user's directory could
    /// not be read (the grant metrics are then missing or too low). Reported as
    /// `jit_host_grant_store_readable`, which the rules alert on, so a break-glass alert
    /// never resolves just because its grant could no longer be counted.
    pub grant_store_readable: bool,
    /// The installed (verified) revocation list's sequence; 0 when none is installed.
    pub revocation_sequence: u64,
    /// When the CA signed that list (Unix seconds); 0 when none is installed.
    pub revocation_issued: u64,
    /// Whether the sync that wrote the file succeeded completely.
    pub last_sync_success: bool,
    /// When that sync ran (Unix seconds).
    pub last_sync: u64,
}

/// The metrics, in the order written: name, help, value (`None`: unknown, left out).
fn samples(m: &Metrics) -> [(&'static str, &'static str, Option<u64>); 7] {
    [
        (
            "jit_host_grants",
            "Grants stored on this host that are valid now (verified, inside their window, not revoked), break-glass grants included.",
            m.grants.map(|g| g.0),
        ),
        (
            "jit_host_break_glass_grants",
            "Grants valid now on this host that were signed by a break-glass key (jit-ca break-glass sign).",
            m.grants.map(|g| g.1),
        ),
        (
            "jit_host_grant_store_readable",
            "1 if every grant in the store could be listed, 0 if the store or a user's grant directory could not be read (the grant metrics are then missing or too low; see the sync's journal).",
            Some(u64::from(m.grant_store_readable)),
        ),
        (
            "jit_host_revocation_sequence",
            "Sequence number of the installed revocation list (0: no verified list installed).",
            Some(m.revocation_sequence),
        ),
        (
            "jit_host_revocation_issued_timestamp_seconds",
            "When the CA signed the installed revocation list, in Unix seconds (0: no verified list installed).",
            Some(m.revocation_issued),
        ),
        (
            "jit_host_last_sync_success",
            "1 if the last jit-host sync installed everything it fetched, 0 if it failed (see its journal).",
            Some(u64::from(m.last_sync_success)),
        ),
        (
            "jit_host_last_sync_timestamp_seconds",
            "When the last jit-host sync ran (successful or not), in Unix seconds.",
            Some(m.last_sync),
        ),
    ]
}

/// The metric names, as documented in docs/host.md.
pub const NAMES: [&str; 7] = [
    "jit_host_grants",
    "jit_host_break_glass_grants",
    "jit_host_grant_store_readable",
    "jit_host_revocation_sequence",
    "jit_host_revocation_issued_timestamp_seconds",
    "jit_host_last_sync_success",
    "jit_host_last_sync_timestamp_seconds",
];

/// The Prometheus text exposition of `m` (every metric a gauge, with HELP and TYPE lines).
pub fn render(m: &Metrics) -> String {
    let mut out = String::new();
    for (name, help, value) in samples(m) {
        let Some(value) = value else { continue };
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} gauge");
        let _ = writeln!(out, "{name} {value}");
    }
    out
}

/// What is installed now: valid grants (and break-glass ones) and the revocation list;
/// with why the grant store could not be listed, if it could not.
pub fn local(config: &Config, now: u64) -> (Metrics, Option<Failure>) {
    let mut m = Metrics::default();
    let mut problem = None;
    match crate::grants::collect_counted(config, None, now) {
        Ok((listed, skipped)) => {
            let valid = listed.iter().filter(|l| l.status == "valid");
            let all = valid.clone().count() as u64;
            let break_glass = valid.filter(|l| l.break_glass).count() as u64;
            m.grants = Some((all, break_glass));
            m.grant_store_readable = skipped.is_empty();
            if !skipped.is_empty() {
                problem = Some(Failure::new(format!(
                    "cannot list every grant: {}",
                    skipped.join("; ")
                )));
            }
        }
        Err(f) => problem = Some(f),
    }
    // Verified as the module does; a stale list still reports its sequence and time (the
    // age is what the staleness alert looks at).
    if let Some(list) = revocation_state(config, &read_revocations(&config.state_dir), now.into())
        .list
        .as_ref()
        .map(|l| l.list())
    {
        m.revocation_sequence = list.sequence;
        m.revocation_issued = list.issued_at.as_secs();
    }
    (m, problem)
}

/// `<textfile_dir>/jit_host.prom`, or `None` when host.toml has no `textfile_dir`.
pub fn path(config: &Config) -> Option<PathBuf> {
    config.textfile_dir.as_ref().map(|d| d.join(TEXTFILE_NAME))
}

/// Opens `dir` as a directory without following a symlink in its last component (its parent
/// by path), so that whoever owns the textfile directory's parent (node_exporter's user, on
/// some layouts) cannot swap it for a link that redirects root's write.
fn open_dir(dir: &Path) -> std::io::Result<OwnedFd> {
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    match (dir.parent(), dir.file_name()) {
        (Some(parent), Some(name)) => {
            let parent = rustix::fs::open(parent, flags, Mode::empty())?;
            Ok(rustix::fs::openat(
                &parent,
                name,
                flags | OFlags::NOFOLLOW,
                Mode::empty(),
            )?)
        }
        _ => Ok(rustix::fs::open(dir, flags, Mode::empty())?),
    }
}

/// Why a read-only file system, most often: the packaged sync unit runs with
/// `ProtectSystem=strict` and may write only the two usual textfile directories.
pub const READ_ONLY_HINT: &str = "under jit-host-sync.service (ProtectSystem=strict) only the usual node_exporter directories are writable: run `systemctl edit jit-host-sync.service` and add [Service] ReadWritePaths=<textfile_dir>";

/// Writes `text` as `<dir>/jit_host.prom` atomically, mode 0644, every step relative to the
/// directory opened by [`open_dir`] (a temporary file created exclusively, never following
/// a link; renamed over the old file, which may be a symlink: the link is replaced, never
/// followed).
pub fn write(dir: &Path, text: &str) -> Result<()> {
    let path = dir.join(TEXTFILE_NAME);
    let fail = |e: std::io::Error| {
        let kind = std::fs::symlink_metadata(dir).map(|m| m.file_type());
        let hint = match kind {
            _ if e.raw_os_error() == Some(libc::EROFS) => READ_ONLY_HINT,
            Ok(t) if t.is_symlink() => {
                "textfile_dir must be a real directory, not a symlink: point it at the directory itself"
            }
            Ok(t) if !t.is_dir() => "textfile_dir must be a directory",
            _ => {
                "textfile_dir in host.toml must be an existing directory root can write: node_exporter's --collector.textfile.directory"
            }
        };
        Failure::new(format!(
            "cannot write the metrics file {}: {e} ({hint})",
            path.display()
        ))
    };
    let fd = open_dir(dir).map_err(fail)?;
    crate::store_write::write_atomic_at(&fd, TEXTFILE_NAME, text.as_bytes(), 0o644).map_err(fail)
}

/// After a sync: the local values, the sync's outcome and time, written to the metrics file
/// (nothing when `textfile_dir` is unset). The file is written even when the grant store
/// could not be listed (without the two grant metrics); that failure is returned after.
pub fn after_sync(config: &Config, success: bool, now: u64) -> Result<()> {
    let Some(dir) = &config.textfile_dir else {
        return Ok(());
    };
    let path = dir.join(TEXTFILE_NAME);
    let (m, problem) = local(config, now);
    let m = Metrics {
        last_sync_success: success,
        last_sync: now,
        ..m
    };
    write(dir, &render(&m))?;
    problem.map_or(Ok(()), |f| {
        Err(Failure::new(format!(
            "{} (jit_host_grant_store_readable is 0 in {})",
            f.message,
            path.display()
        )))
    })
}

#[cfg(test)]
mod tests;

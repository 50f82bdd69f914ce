//! The only code in `pam_jit_core` that writes a file: session bindings.
//!
//! Called by `pam_jit.so`'s session hooks (`open_session`: [`write_binding`];
//! `close_session`: [`mark_ended`]) and by `jit-host` (`end-session`, `gc`); never by the
//! account (sudo) path, which only reads (`tests/system/01-invariants.sh` checks both).
//!
//! Every write is atomic, relative to the opened session directory, and follows no link:
//! a temporary file created with `O_CREAT|O_EXCL|O_NOFOLLOW`, 0600, written, `fsync`ed,
//! renamed over `<id>.binding`, then the directory is `fsync`ed. The directory is created
//! root 0700 (its missing parent root 0755); one that is not owned by root or is
//! group/world-writable (or has such an ancestor) is refused.

use std::io::Write;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Mode, OFlags};
use rustix::io::Errno;

use jit_common::UnixTime;
use jit_common::secure_file::{self, FileError, Policy};

use super::{BINDING_SUFFIX, Binding, binding_path, read_binding};
use crate::store::check_open;

/// Creates `dir` with `mode` (exactly, whatever the umask) if it does not exist.
fn make_dir(dir: &Path, mode: u32) -> Result<(), String> {
    match rustix::fs::mkdirat(CWD, dir, Mode::from_raw_mode(mode)) {
        Ok(()) => {
            let fd = open_dir(dir)?;
            rustix::fs::fchmod(&fd, Mode::from_raw_mode(mode))
                .map_err(|e| format!("{}: chmod: {e}", dir.display()))
        }
        Err(Errno::EXIST) => Ok(()),
        Err(e) => Err(format!("cannot create {}: {e}", dir.display())),
    }
}

fn open_dir(dir: &Path) -> Result<OwnedFd, String> {
    rustix::fs::openat(
        CWD,
        dir,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::LOOP | Errno::NOTDIR => format!(
            "{} is not a directory (or is a symbolic link)",
            dir.display()
        ),
        e => format!("{}: {e}", dir.display()),
    })
}

/// Opens the session directory after checking it and its ancestors (root-owned, no
/// group/world write), creating it (0700, and a missing parent 0755) when `create`.
fn session_dir_fd(session_dir: &Path, create: bool) -> Result<OwnedFd, String> {
    if !session_dir.is_absolute() {
        return Err(format!(
            "session_dir {} must be an absolute path",
            session_dir.display()
        ));
    }
    if create {
        if let Some(parent) = session_dir.parent() {
            make_dir(parent, 0o755)?;
        }
        make_dir(session_dir, 0o700)?;
    }
    secure_file::check_dir(session_dir, &Policy::root_only(0)).map_err(|e| match e {
        FileError::NotFound { .. } => format!("{} does not exist", session_dir.display()),
        e => e.to_string(),
    })?;
    let fd = open_dir(session_dir)?;
    check_open(&fd, session_dir, &[0], None).map_err(|e| e.to_string())?;
    Ok(fd)
}

/// Writes `bytes` as `name` in the opened directory, atomically.
fn replace(dir: &OwnedFd, session_dir: &Path, name: &str, bytes: &[u8]) -> Result<(), String> {
    let tmp = format!(".{name}.{}.tmp", std::process::id());
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mode = Mode::from_raw_mode(0o600);
    let fd = match rustix::fs::openat(dir, tmp.as_str(), flags, mode) {
        // Left behind by a crashed process that had this pid: remove it, once.
        Err(Errno::EXIST) => {
            let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
            rustix::fs::openat(dir, tmp.as_str(), flags, mode)
        }
        r => r,
    }
    .map_err(|e| format!("cannot create {}: {e}", session_dir.join(&tmp).display()))?;
    let written = (|| -> Result<(), String> {
        rustix::fs::fchmod(&fd, mode).map_err(|e| format!("chmod: {e}"))?;
        let mut f = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
        f.write_all(bytes).map_err(|e| format!("write: {e}"))?;
        f.sync_all().map_err(|e| format!("fsync: {e}"))?;
        rustix::fs::renameat(dir, tmp.as_str(), dir, name).map_err(|e| format!("rename: {e}"))
    })();
    if let Err(e) = written {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
        return Err(format!("{}: {e}", session_dir.join(name).display()));
    }
    rustix::fs::fsync(dir.as_fd()).map_err(|e| format!("{}: fsync: {e}", session_dir.display()))
}

/// Creates or replaces the binding of `b.session_id` (validated first), creating the
/// session directory if needed.
pub fn write_binding(session_dir: &Path, b: &Binding) -> Result<(), String> {
    b.validate()
        .map_err(|e| format!("refusing to write binding: {e}"))?;
    let bytes = b.to_bytes()?;
    let dir = session_dir_fd(session_dir, true)?;
    replace(
        &dir,
        session_dir,
        &format!("{}{BINDING_SUFFIX}", b.session_id),
        &bytes,
    )
}

/// Marks session `id`'s binding ended (`ended_at = at`, `ended_by = by`), rewriting it
/// atomically, and returns it as written. A binding that has already ended is returned as
/// it is (its first end is kept). `Err` names the problem: no binding for `id`, or one that
/// cannot be read or written.
pub fn mark_ended(session_dir: &Path, id: u32, at: UnixTime, by: &str) -> Result<Binding, String> {
    let dir = session_dir_fd(session_dir, false)?;
    let Some(mut b) = read_binding(session_dir, id)? else {
        return Err(format!(
            "there is no binding for session {id} ({} does not exist)",
            binding_path(session_dir, id).display()
        ));
    };
    if b.ended_at.is_some() {
        return Ok(b);
    }
    b.ended_at = Some(at);
    b.ended_by = Some(by.to_string());
    b.validate()
        .map_err(|e| format!("refusing to write binding: {e}"))?;
    replace(
        &dir,
        session_dir,
        &format!("{id}{BINDING_SUFFIX}"),
        &b.to_bytes()?,
    )?;
    Ok(b)
}

/// Deletes session `id`'s binding (for `jit-host gc`). `Ok(false)` if there was none.
pub fn remove_binding(session_dir: &Path, id: u32) -> Result<bool, String> {
    let dir = match session_dir_fd(session_dir, false) {
        Ok(d) => d,
        Err(_) if !session_dir.exists() => return Ok(false),
        Err(e) => return Err(e),
    };
    let name = format!("{id}{BINDING_SUFFIX}");
    match rustix::fs::unlinkat(&dir, name.as_str(), AtFlags::empty()) {
        Ok(()) => {}
        Err(Errno::NOENT) => return Ok(false),
        Err(e) => return Err(format!("{}: {e}", session_dir.join(&name).display())),
    }
    rustix::fs::fsync(dir.as_fd()).map_err(|e| format!("{}: fsync: {e}", session_dir.display()))?;
    Ok(true)
}

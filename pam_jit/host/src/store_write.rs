//! Writing the grant store (the module only reads it; see `pam_jit_core::store`).
//!
//! Directories: `<state_dir>` root 0755; `grants/` and `grants/<user>/` owned by the grant
//! writer (so that sshd's `principals` hook, running as that user, can add grants), 0755.
//! Files 0644, written atomically (temp file, fsync, rename, fsync dir). `<state_dir>/verified`
//! (root's verified-document records, see `crate::index`) is root's, 0755, never the writer's.

use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use rustix::fs::{AtFlags, Mode, OFlags};

use jit_common::envelope::MAX_GRANT_SIZE;
use jit_common::secure_file::{self, FileError, Policy};
use pam_jit_core::config::Config;
use pam_jit_core::store::{GRANT_SUFFIX, grant_owners, records_dir, user_dir};
use pam_jit_core::sys;

use crate::failure::{Failure, Result};

/// The grant writer's uid, if that user exists.
pub fn writer_uid(config: &Config) -> Option<u32> {
    sys::user_by_name(&config.grant_writer).map(|p| p.uid)
}

/// Creates (as root) `<state_dir>` and `<state_dir>/grants` with the right owners and modes;
/// with `fix`, also repairs owners and modes of existing ones (for `setup`).
pub fn ensure_state_dirs(config: &Config, fix: bool) -> Result<Vec<String>> {
    let mut done = Vec::new();
    let state = &config.state_dir;
    let writer = writer_uid(config);
    make_dir(state, 0, fix, &mut done)?;
    make_dir(&config.grants_dir(), writer.unwrap_or(0), fix, &mut done)?;
    if sys::effective_uid() == 0 {
        make_dir(&records_dir(state), 0, true, &mut done)?;
    }
    secure_file::check_dir(state, &Policy::root_only(0))
        .map_err(|e| Failure::new(format!("state directory unusable: {e}")))?;
    Ok(done)
}

/// `<state_dir>/verified`, root's verified-document records: created (or repaired to root,
/// 0755) and checked like the module checks it. Root only.
pub fn ensure_records_dir(config: &Config) -> Result<PathBuf> {
    let dir = records_dir(&config.state_dir);
    let mut done = Vec::new();
    make_dir(&dir, 0, true, &mut done)?;
    secure_file::check_dir(&dir, &Policy::root_only(0))
        .map_err(|e| Failure::new(format!("record directory unusable: {e}")))?;
    Ok(dir)
}

fn make_dir(path: &Path, owner: u32, fix: bool, done: &mut Vec<String>) -> Result<()> {
    match fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o755)
                .create(path)
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", path.display())))?;
            set_owner_mode(path, owner)?;
            done.push(format!("created {} (uid {owner}, 0755)", path.display()));
        }
        Err(e) => return Err(Failure::new(format!("{}: {e}", path.display()))),
        Ok(m) if m.file_type().is_symlink() || !m.is_dir() => {
            return Err(Failure::new(format!(
                "{} must be a real directory, not a symlink or file; remove it and run jit-host setup",
                path.display()
            )));
        }
        Ok(m) => {
            use std::os::unix::fs::MetadataExt;
            if fix && (m.uid() != owner || m.mode() & 0o7777 != 0o755) {
                set_owner_mode(path, owner)?;
                done.push(format!("fixed {} (uid {owner}, 0755)", path.display()));
            }
        }
    }
    Ok(())
}

fn set_owner_mode(path: &Path, owner: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(owner), None)
        .map_err(|e| Failure::new(format!("cannot chown {}: {e}", path.display())))?;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
        .map_err(|e| Failure::new(format!("cannot chmod {}: {e}", path.display())))
}

/// Whether a write changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// The file was written.
    Written,
    /// An identical file was already there.
    Unchanged,
}

/// One user's grant directory, opened without following a link at any step below the
/// root-owned state directory (`<state_dir>` by path, checked root-only; then `grants` and
/// `<user>` with `openat(O_NOFOLLOW | O_DIRECTORY)`). Every operation root does in it is
/// relative to this descriptor, so the grant writer (who owns `grants/` and may swap
/// `grants/<user>` for a symlink at any moment) can never redirect root's writes, chmods,
/// chowns or deletes to a directory outside the store.
#[derive(Debug)]
pub struct UserDir {
    fd: OwnedFd,
    path: PathBuf,
    owners: Vec<u32>,
}

fn nofollow_dir(parent: impl AsFd, name: &str) -> std::io::Result<OwnedFd> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(std::io::Error::from)
}

/// `ELOOP`/`ENOTDIR` from a no-follow open: the name is a symlink or not a directory.
fn dir_open_error(path: &Path, e: std::io::Error) -> FileError {
    match e.raw_os_error() {
        Some(libc::ELOOP) => FileError::Symlink {
            path: path.to_path_buf(),
        },
        // O_DIRECTORY | O_NOFOLLOW on a symlink gives ENOTDIR; look (for the message only).
        Some(libc::ENOTDIR)
            if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) =>
        {
            FileError::Symlink {
                path: path.to_path_buf(),
            }
        }
        Some(libc::ENOTDIR) => FileError::NotRegular {
            path: path.to_path_buf(),
        },
        _ if e.kind() == std::io::ErrorKind::NotFound => FileError::NotFound {
            path: path.to_path_buf(),
        },
        _ => FileError::Io {
            path: path.to_path_buf(),
            source: e,
        },
    }
}

/// The same owner and mode rules as `secure_file::check_dir`, on an open descriptor: the
/// module's own check (`pam_jit_core::store::check_open`), for a directory or a regular file.
fn check_fd(
    fd: &OwnedFd,
    path: &Path,
    owners: &[u32],
    dir: bool,
) -> std::result::Result<fs::Metadata, FileError> {
    pam_jit_core::store::check_open(fd, path, owners, if dir { None } else { Some(u64::MAX) })
}

impl UserDir {
    /// Opens `<state_dir>/grants/<user>` as described on [`UserDir`]. `Ok(None)` when it does
    /// not exist and `create` is false; with `create`, makes it (0755, then, as root, given
    /// to the grant writer through the descriptor, never by path).
    pub fn open(
        config: &Config,
        user: &str,
        create: bool,
    ) -> std::result::Result<Option<Self>, FileError> {
        let state = &config.state_dir;
        if jit_common::grant::check_user("user", user).is_err() {
            return Err(FileError::NotRegular {
                path: user_dir(state, user),
            });
        }
        let writer = writer_uid(config);
        let owners = grant_owners(writer);
        // The state directory is root's with root-owned ancestors: its path cannot be
        // redirected by the writer. Checked, then opened, then the open one re-checked.
        secure_file::check_dir(state, &Policy::root_only(0))?;
        let state_fd = rustix::fs::openat(
            rustix::fs::CWD,
            state.as_path(),
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| dir_open_error(state, e.into()))?;
        check_fd(&state_fd, state, &[0], true)?;
        let grants_path = state.join("grants");
        let grants_fd = match nofollow_dir(&state_fd, "grants") {
            Ok(fd) => fd,
            Err(e) => {
                let e = dir_open_error(&grants_path, e);
                return match e {
                    FileError::NotFound { .. } if !create => Ok(None),
                    e => Err(e),
                };
            }
        };
        check_fd(&grants_fd, &grants_path, &owners, true)?;
        let path = grants_path.join(user);
        let fd = match nofollow_dir(&grants_fd, user) {
            Ok(fd) => fd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if !create {
                    return Ok(None);
                }
                match rustix::fs::mkdirat(&grants_fd, user, Mode::from_raw_mode(0o755)) {
                    Ok(()) | Err(rustix::io::Errno::EXIST) => {}
                    Err(e) => {
                        return Err(FileError::Io {
                            path,
                            source: e.into(),
                        });
                    }
                }
                // Whatever is at the name now is opened without following it: a symlink
                // swapped in after mkdirat fails here (ELOOP), it is never followed.
                let fd = nofollow_dir(&grants_fd, user).map_err(|e| dir_open_error(&path, e))?;
                use std::os::unix::fs::MetadataExt;
                let meta = check_fd(&fd, &path, &owners, true).or_else(|e| match e {
                    // Just made with the umask: fixed below, through the descriptor.
                    FileError::BadMode { .. } => {
                        fs::File::from(fd.try_clone().map_err(|source| FileError::Io {
                            path: path.clone(),
                            source,
                        })?)
                        .metadata()
                        .map_err(|source| FileError::Io {
                            path: path.clone(),
                            source,
                        })
                    }
                    e => Err(e),
                })?;
                // Ours (made just now, by root or, for `principals`, by the writer): 0755
                // whatever the umask, and root hands it to the writer. Someone else's
                // directory swapped in meanwhile is left as it is (and checked below).
                let euid = sys::effective_uid();
                if meta.uid() == euid {
                    rustix::fs::fchmod(&fd, Mode::from_raw_mode(0o755)).map_err(|e| {
                        FileError::Io {
                            path: path.clone(),
                            source: e.into(),
                        }
                    })?;
                    if euid == 0
                        && let Some(w) = writer
                    {
                        rustix::fs::fchown(&fd, Some(rustix::fs::Uid::from_raw(w)), None).map_err(
                            |e| FileError::Io {
                                path: path.clone(),
                                source: e.into(),
                            },
                        )?;
                    }
                }
                fd
            }
            Err(e) => return Err(dir_open_error(&path, e)),
        };
        check_fd(&fd, &path, &owners, true)?;
        Ok(Some(Self { fd, path, owners }))
    }

    /// The directory's path, for messages only (never used to reach a file).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Names of grant files (`*.grant`, not hidden), at most `max`, sorted.
    pub fn grant_names(&self, max: usize) -> std::result::Result<Vec<String>, FileError> {
        let io = |source: std::io::Error| FileError::Io {
            path: self.path.clone(),
            source,
        };
        let dir = rustix::fs::Dir::read_from(&self.fd).map_err(|e| io(e.into()))?;
        let mut names = Vec::new();
        for entry in dir.take(max) {
            let entry = entry.map_err(|e| io(e.into()))?;
            let Ok(name) = entry.file_name().to_str() else {
                continue;
            };
            if name.ends_with(GRANT_SUFFIX) && !name.starts_with('.') {
                names.push(name.to_string());
            }
        }
        names.sort();
        Ok(names)
    }

    /// Reads one grant file by name: not a symlink, a regular file of a trusted owner, no
    /// group/world write, at most `MAX_GRANT_SIZE` bytes.
    pub fn read(&self, name: &str) -> std::result::Result<Vec<u8>, FileError> {
        use std::io::Read;
        let path = self.path.join(name);
        let fd = rustix::fs::openat(
            &self.fd,
            name,
            OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
            Mode::empty(),
        )
        .map_err(|e| match e {
            rustix::io::Errno::LOOP => FileError::Symlink { path: path.clone() },
            rustix::io::Errno::NOENT => FileError::NotFound { path: path.clone() },
            e => FileError::Io {
                path: path.clone(),
                source: e.into(),
            },
        })?;
        let meta = check_fd(&fd, &path, &self.owners, false)?;
        let max = MAX_GRANT_SIZE as u64;
        if meta.len() > max {
            return Err(FileError::TooLarge {
                path,
                size: meta.len(),
                max,
            });
        }
        let mut buf = Vec::new();
        fs::File::from(fd)
            .take(max + 1)
            .read_to_end(&mut buf)
            .map_err(|source| FileError::Io {
                path: path.clone(),
                source,
            })?;
        if buf.len() as u64 > max {
            return Err(FileError::TooLarge {
                path,
                size: buf.len() as u64,
                max,
            });
        }
        Ok(buf)
    }

    /// Writes `name` atomically inside this directory: the `secure_file::write_atomic`
    /// sequence (exclusive no-follow temp file, write, fchmod, fsync, rename, fsync the
    /// directory), every step relative to the directory's descriptor.
    pub fn write_atomic(&self, name: &str, data: &[u8], mode: u32) -> std::io::Result<()> {
        write_atomic_at(&self.fd, name, data, mode)
    }

    /// Removes `name` if it is (still) a regular file of a trusted owner, not following a
    /// symlink. `Ok(false)` when it is not there or is something else (left alone).
    pub fn remove(&self, name: &str) -> std::io::Result<bool> {
        let st = match rustix::fs::statat(&self.fd, name, AtFlags::SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(rustix::io::Errno::NOENT) => return Ok(false),
            Err(e) => return Err(e.into()),
        };
        let is_file =
            rustix::fs::FileType::from_raw_mode(st.st_mode) == rustix::fs::FileType::RegularFile;
        if !is_file || !self.owners.contains(&st.st_uid) {
            return Ok(false);
        }
        rustix::fs::unlinkat(&self.fd, name, AtFlags::empty())?;
        Ok(true)
    }
}

/// Writes `name` atomically inside the directory `dir` (a descriptor): the
/// `secure_file::write_atomic` sequence (exclusive no-follow temp file, write, fchmod,
/// fsync, rename, fsync the directory), every step relative to `dir`, so a symlink swapped
/// in anywhere is never followed. Used for the grant store and the metrics file. The
/// temporary name carries 128 random bits ([`temp_name`]), so another user who may write in
/// `dir` (a shared textfile directory) cannot pre-create it to make the write fail; a name
/// that exists anyway is skipped for a fresh one.
pub(crate) fn write_atomic_at(
    dir: impl AsFd,
    name: &str,
    data: &[u8],
    mode: u32,
) -> std::io::Result<()> {
    use std::io::Write;
    let dir = dir.as_fd();
    let mut attempt = 0;
    let (fd, tmp) = loop {
        let tmp = temp_name(name)?;
        match rustix::fs::openat(
            dir,
            tmp.as_str(),
            OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        ) {
            Ok(fd) => break (fd, tmp),
            Err(rustix::io::Errno::EXIST) if attempt < 8 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let result = (|| -> std::io::Result<()> {
        let mut f = fs::File::from(fd);
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        rustix::fs::renameat(dir, tmp.as_str(), dir, name)?;
        rustix::fs::fsync(dir)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = rustix::fs::unlinkat(dir, tmp.as_str(), AtFlags::empty());
    }
    result
}

/// `.<name>.tmp.<32 hex digits from the OS's random source>`: hidden, not ending in the
/// target's suffix (node_exporter reads only `*.prom`, the store only `*.grant`), and not
/// predictable by another user.
pub(crate) fn temp_name(name: &str) -> std::io::Result<String> {
    use rand_core::RngCore as _;
    use std::fmt::Write as _;
    let mut bytes = [0u8; 16];
    rand_core::OsRng
        .try_fill_bytes(&mut bytes)
        .map_err(|e| std::io::Error::other(format!("no random bytes for a temporary name: {e}")))?;
    let mut out = format!(".{name}.tmp.");
    for b in bytes {
        let _ = write!(out, "{b:02x}");
    }
    Ok(out)
}

/// Stores a grant document (already verified by the caller) as
/// `<state_dir>/grants/<user>/<id>.grant`. Idempotent. Creates the user's directory
/// (owned by the grant writer when run as root). Every step below `<state_dir>` is
/// fd-relative and follows no link ([`UserDir`]).
pub fn store_grant(config: &Config, user: &str, id: &str, doc: &[u8]) -> Result<(PathBuf, Stored)> {
    jit_common::grant::check_user("user", user).map_err(|e| Failure::new(e.to_string()))?;
    jit_common::grant::check_id("id", id).map_err(|e| Failure::new(e.to_string()))?;
    let dir = match UserDir::open(config, user, true) {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(Failure::new(format!(
                "grant directory unusable: {} could not be created (run jit-host setup)",
                user_dir(&config.state_dir, user).display()
            )));
        }
        Err(e) => {
            return Err(Failure::new(format!(
                "grant directory unusable: {e} (fix it or remove it and retry; jit-host setup repairs the store)"
            )));
        }
    };
    let name = format!("{id}{GRANT_SUFFIX}");
    let path = dir.path().join(&name);
    if let Ok(existing) = dir.read(&name)
        && existing == doc
    {
        return Ok((path, Stored::Unchanged));
    }
    dir.write_atomic(&name, doc, 0o644).map_err(|e| {
        Failure::new(format!(
            "cannot write {}: {e} (the store is unchanged)",
            path.display()
        ))
    })?;
    Ok((path, Stored::Written))
}

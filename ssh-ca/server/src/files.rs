//! Files in the data directory: trusted reads (owner root or the service user, not
//! group/world-writable; private keys also not group/world-readable) and exclusive creation.

use std::fs::OpenOptions;
use std::io::Write as _;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::Path;

use jit_common::secure_file::{self, FileError, Policy};

use crate::error::{CaError, Result};

/// The effective uid of this process, read without `unsafe`: `/proc/self` is owned by it.
pub fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0)
}

fn policy(max: u64) -> Policy {
    let mut owners = vec![0];
    let me = euid();
    if me != 0 {
        owners.push(me);
    }
    Policy {
        owners,
        max_size: max,
        check_ancestors: false,
    }
}

/// Whether the directories above a file are checked too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ancestors {
    /// Only the file itself.
    Unchecked,
    /// Every directory from `/` down to the file's parent: a real directory (no symbolic
    /// link), owned by root or this user, not writable by group or others unless sticky.
    Checked,
}

fn map(path: &Path, e: FileError) -> CaError {
    match e {
        FileError::NotFound { .. } => CaError::NotFound(path.to_path_buf()),
        other => CaError::File {
            path: path.to_path_buf(),
            detail: other.to_string(),
        },
    }
}

/// Reads a UTF-8 file owned by root or this user and not writable by group or others.
pub fn read_trusted(path: &Path, max: u64) -> Result<String> {
    read_text(path, max, Ancestors::Unchecked)
}

/// Reads a UTF-8 file as [`read_trusted`], with every directory above it checked too
/// ([`Ancestors::Checked`]): a symbolic link or a directory another user may write anywhere
/// on the way is refused, so nobody else can swap the file for theirs.
pub fn read_trusted_tree(path: &Path, max: u64) -> Result<String> {
    read_text(path, max, Ancestors::Checked)
}

fn read_text(path: &Path, max: u64, ancestors: Ancestors) -> Result<String> {
    let mut p = policy(max);
    let bytes = if ancestors == Ancestors::Checked {
        p.check_ancestors = true;
        // The check walks the path from `/`: a relative one (a relative --dir) is made
        // absolute lexically, without resolving links, so each step is checked as it is.
        let abs = std::path::absolute(path).map_err(|e| CaError::File {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?;
        secure_file::read(&abs, &p)
    } else {
        secure_file::read(path, &p)
    }
    .map_err(|e| map(path, e))?;
    String::from_utf8(bytes).map_err(|_| CaError::File {
        path: path.to_path_buf(),
        detail: "not UTF-8 text".into(),
    })
}

/// Reads a private key file: as [`read_trusted`], and also not readable by group or others.
pub fn read_secret(path: &Path) -> Result<zeroize::Zeroizing<String>> {
    read_secret_named(path, "private key", 64 * 1024, Ancestors::Unchecked)
}

/// Reads a secret (`what`, for the message: "private key", "webhook secret") of at most
/// `max` bytes: as [`read_trusted`] (with the directories above it checked when
/// `ancestors` says so), and also not readable by group or others.
pub fn read_secret_named(
    path: &Path,
    what: &str,
    max: u64,
    ancestors: Ancestors,
) -> Result<zeroize::Zeroizing<String>> {
    let text = zeroize::Zeroizing::new(read_text(path, max, ancestors)?);
    let mode = std::fs::symlink_metadata(path)
        .map_err(|e| CaError::File {
            path: path.to_path_buf(),
            detail: e.to_string(),
        })?
        .mode();
    if mode & 0o077 != 0 {
        return Err(CaError::File {
            path: path.to_path_buf(),
            detail: format!(
                "{what} has mode {:04o}; it must not be readable by group or others (chmod 600 {})",
                mode & 0o7777,
                path.display()
            ),
        });
    }
    Ok(text)
}

/// Creates `path` with `data` and `mode`, failing if it already exists (never overwrites).
pub fn create_new(path: &Path, data: &[u8], mode: u32) -> Result<()> {
    let io = |e: std::io::Error| CaError::File {
        path: path.to_path_buf(),
        detail: e.to_string(),
    };
    let mut f = match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(CaError::Exists(path.to_path_buf()));
        }
        Err(e) => return Err(io(e)),
    };
    f.write_all(data).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

//! Writing the grant store (the module only reads it; see `pam_jit::store`).
//!
//! Directories: `<state_dir>` root 0755; `grants/` and `grants/<user>/` owned by the grant
//! writer (so that sshd's `principals` hook, running as that user, can add grants), 0755.
//! Files 0644, written atomically (temp file, fsync, rename, fsync dir). `<state_dir>/verified`
//! (root's verified-document records, see `crate::index`) is root's, 0755, never the writer's.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

use jit_common::envelope::MAX_GRANT_SIZE;
use jit_common::secure_file::{self, FileError, Policy};
use pam_jit::config::Config;
use pam_jit::pam::sys;
use pam_jit::store::{GRANT_SUFFIX, grant_owners, records_dir, user_dir};

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

/// Stores a grant document (already verified by the caller) as
/// `<state_dir>/grants/<user>/<id>.grant`. Idempotent. Creates the user's directory
/// (owned by the grant writer when run as root).
pub fn store_grant(config: &Config, user: &str, id: &str, doc: &[u8]) -> Result<(PathBuf, Stored)> {
    jit_common::grant::check_user("user", user).map_err(|e| Failure::new(e.to_string()))?;
    jit_common::grant::check_id("id", id).map_err(|e| Failure::new(e.to_string()))?;
    let writer = writer_uid(config);
    let owners = grant_owners(writer);
    let dir_policy = Policy {
        owners: owners.clone(),
        max_size: 0,
        check_ancestors: false,
    };
    secure_file::check_dir(&config.state_dir, &Policy::root_only(0)).map_err(|e| {
        Failure::new(format!(
            "state directory unusable: {e} (run jit-host setup)"
        ))
    })?;
    secure_file::check_dir(&config.grants_dir(), &dir_policy).map_err(|e| {
        Failure::new(format!(
            "grant directory unusable: {e} (run jit-host setup)"
        ))
    })?;
    let dir = user_dir(&config.state_dir, user);
    match secure_file::check_dir(&dir, &dir_policy) {
        Ok(()) => {}
        Err(FileError::NotFound { .. }) => {
            fs::DirBuilder::new()
                .mode(0o755)
                .create(&dir)
                .or_else(|e| {
                    if e.kind() == std::io::ErrorKind::AlreadyExists {
                        Ok(())
                    } else {
                        Err(e)
                    }
                })
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
            fs::set_permissions(&dir, fs::Permissions::from_mode(0o755))
                .map_err(|e| Failure::new(format!("cannot chmod {}: {e}", dir.display())))?;
            if sys::effective_uid() == 0
                && let Some(w) = writer
            {
                std::os::unix::fs::chown(&dir, Some(w), None)
                    .map_err(|e| Failure::new(format!("cannot chown {}: {e}", dir.display())))?;
            }
            secure_file::check_dir(&dir, &dir_policy)
                .map_err(|e| Failure::new(format!("grant directory unusable: {e}")))?;
        }
        Err(e) => {
            return Err(Failure::new(format!(
                "grant directory unusable: {e} (fix it or remove it and retry)"
            )));
        }
    }
    let path = dir.join(format!("{id}{GRANT_SUFFIX}"));
    let file_policy = Policy {
        owners,
        max_size: MAX_GRANT_SIZE as u64,
        check_ancestors: false,
    };
    if let Ok(existing) = secure_file::read(&path, &file_policy)
        && existing == doc
    {
        return Ok((path, Stored::Unchanged));
    }
    secure_file::write_atomic(&path, doc, 0o644).map_err(|e| {
        Failure::new(format!(
            "cannot write {}: {e} (the store is unchanged)",
            path.display()
        ))
    })?;
    Ok((path, Stored::Written))
}

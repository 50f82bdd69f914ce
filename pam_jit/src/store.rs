//! Reading the grant store and the revocation list, with bounded work.
//!
//! ```text
//! <state_dir>/                    root, 0755, no group/world write, root-owned ancestors
//!   grants/                       root or grant_writer, 0755
//!     <user>/                     root or grant_writer, 0755
//!       <grant-id>.grant          root or grant_writer, 0644, at most 16 KiB
//!   revocations                   root only, 0644 (grant_writer must not roll it back)
//!   verified/                     root only, 0755: root's verified-document records
//!     <sha256 hex>                root only, 0644 (see jit_common::record)
//! ```
//!
//! Only the invoking user's directory is read, at most [`MAX_FILES_PER_USER`] entries.
//! Symlinks (files or directories), untrusted owners, group/world-writable modes and oversized
//! files are refused. Ownership is defence in depth: a grant is trusted only because of its
//! signature, which [`crate::decide`] checks. This module only reads; `jit-host` writes.

use std::fs;
use std::path::{Path, PathBuf};

use jit_common::envelope::{MAX_GRANT_SIZE, MAX_REVOCATION_LIST_SIZE};
use jit_common::record::{self, TrustedRecord};
use jit_common::secure_file::{self, FileError, Policy};

/// Most directory entries looked at per decision.
pub const MAX_FILES_PER_USER: usize = 256;
/// Grant file name suffix.
pub const GRANT_SUFFIX: &str = ".grant";

/// One grant file as read (not yet parsed or verified).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrantFile {
    /// File name (`<grant-id>.grant`).
    pub name: String,
    /// Contents.
    pub bytes: Vec<u8>,
}

/// What was read from one user's directory.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserGrants {
    /// Grant files that passed the file checks, sorted by name.
    pub files: Vec<GrantFile>,
    /// Files refused, one line each (`g-1.grant: ... is a symbolic link`).
    pub problems: Vec<String>,
    /// True when the directory had more than [`MAX_FILES_PER_USER`] entries.
    pub truncated: bool,
}

/// The local revocation list as found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RevocationFile {
    /// No file.
    Missing,
    /// A file that may not be used (wrong owner, mode, symlink, I/O error).
    Unusable(String),
    /// The bytes of a file that passed the checks (not yet verified).
    Present(Vec<u8>),
}

/// The uids trusted to own grant directories and files: root and the grant writer.
pub fn grant_owners(writer_uid: Option<u32>) -> Vec<u32> {
    let mut owners = vec![0];
    if let Some(uid) = writer_uid.filter(|u| *u != 0) {
        owners.push(uid);
    }
    owners
}

/// `<state_dir>/grants/<user>`. `user` must already be a valid login name.
pub fn user_dir(state_dir: &Path, user: &str) -> PathBuf {
    state_dir.join("grants").join(user)
}

/// Reads `user`'s grant files. Errors are about the store as a whole (the state, grants or
/// user directory cannot be trusted); problems with single files are in
/// [`UserGrants::problems`].
pub fn read_user_grants(
    state_dir: &Path,
    user: &str,
    writer_uid: Option<u32>,
) -> Result<UserGrants, FileError> {
    if jit_common::grant::check_user("user", user).is_err() {
        return Err(FileError::NotRegular {
            path: user_dir(state_dir, user),
        });
    }
    let owners = grant_owners(writer_uid);
    secure_file::check_dir(state_dir, &Policy::root_only(0))?;
    let dir_policy = Policy {
        owners: owners.clone(),
        max_size: 0,
        check_ancestors: false,
    };
    let grants = state_dir.join("grants");
    match secure_file::check_dir(&grants, &dir_policy) {
        Err(FileError::NotFound { .. }) => return Ok(UserGrants::default()),
        r => r?,
    }
    let dir = grants.join(user);
    match secure_file::check_dir(&dir, &dir_policy) {
        Err(FileError::NotFound { .. }) => return Ok(UserGrants::default()),
        r => r?,
    }
    let entries = fs::read_dir(&dir).map_err(|e| FileError::Io {
        path: dir.clone(),
        source: e,
    })?;
    let mut out = UserGrants::default();
    let mut names = Vec::new();
    for (seen, entry) in entries.enumerate() {
        if seen >= MAX_FILES_PER_USER {
            out.truncated = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().into_string() else {
            continue;
        };
        if name.ends_with(GRANT_SUFFIX) && !name.starts_with('.') {
            names.push(name);
        }
    }
    names.sort();
    let file_policy = Policy {
        owners,
        max_size: MAX_GRANT_SIZE as u64,
        check_ancestors: false,
    };
    for name in names {
        match secure_file::read(&dir.join(&name), &file_policy) {
            Ok(bytes) => out.files.push(GrantFile { name, bytes }),
            // Removed between listing and reading (gc, an update): not a problem.
            Err(FileError::NotFound { .. }) => {}
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    Ok(out)
}

/// `<state_dir>/verified`, root's verified-document records.
pub fn records_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(record::DIR_NAME)
}

/// Where to look for root's verified-document records (see [`jit_common::record`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RecordLookup {
    dir: Option<PathBuf>,
}

impl RecordLookup {
    /// No records: every signature is verified.
    pub fn none() -> Self {
        Self::default()
    }

    /// The records under `<state_dir>/verified`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            dir: Some(records_dir(state_dir)),
        }
    }

    /// The record root wrote for these exact bytes, if there is one that may be trusted
    /// (root-owned, not group/world-writable, root-owned ancestors, well-formed). Anything
    /// else is `None`: the signature is then verified as if there were no record.
    pub fn find(&self, doc: &[u8]) -> Option<TrustedRecord> {
        let dir = self.dir.as_deref()?;
        record::read_trusted(dir, doc).ok()
    }
}

/// Reads `<state_dir>/revocations`, which must be root-owned.
pub fn read_revocations(state_dir: &Path) -> RevocationFile {
    let path = state_dir.join("revocations");
    match secure_file::read(&path, &Policy::root_only(MAX_REVOCATION_LIST_SIZE as u64)) {
        Ok(b) => RevocationFile::Present(b),
        Err(FileError::NotFound { .. }) => RevocationFile::Missing,
        Err(e) => RevocationFile::Unusable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};

    fn mode(p: &Path, m: u32) {
        fs::set_permissions(p, fs::Permissions::from_mode(m)).unwrap();
    }

    fn me() -> u32 {
        fs::metadata("/proc/self").unwrap().uid()
    }

    /// A state dir inside a fresh 0755 temp dir. Tests run as root in CI; as another user
    /// the state dir is not root-owned, so only the refusal is checked.
    fn state() -> (tempfile::TempDir, PathBuf) {
        let t = tempfile::tempdir().unwrap();
        mode(t.path(), 0o755);
        let s = t.path().join("state");
        fs::create_dir_all(s.join("grants/alice")).unwrap();
        for d in ["", "grants", "grants/alice"] {
            mode(&s.join(d), 0o755);
        }
        (t, s)
    }

    fn put(s: &Path, rel: &str, body: &[u8]) {
        let p = s.join(rel);
        fs::write(&p, body).unwrap();
        mode(&p, 0o644);
    }

    #[test]
    fn reads_only_good_files_of_one_user() {
        let (_t, s) = state();
        if me() != 0 {
            assert!(read_user_grants(&s, "alice", None).is_err());
            return;
        }
        put(&s, "grants/alice/g-1.grant", b"one");
        put(&s, "grants/alice/notes.txt", b"ignored");
        put(&s, "grants/alice/g-2.grant", b"two");
        mode(&s.join("grants/alice/g-2.grant"), 0o666);
        symlink(
            s.join("grants/alice/g-1.grant"),
            s.join("grants/alice/g-3.grant"),
        )
        .unwrap();
        put(
            &s,
            "grants/alice/g-4.grant",
            &vec![b'x'; MAX_GRANT_SIZE + 1],
        );
        let got = read_user_grants(&s, "alice", None).unwrap();
        assert_eq!(got.files.len(), 1);
        assert_eq!(got.files[0].name, "g-1.grant");
        assert_eq!(got.problems.len(), 3, "{:?}", got.problems);
        assert!(got.problems.iter().any(|p| p.contains("symbolic link")));
        assert!(
            got.problems
                .iter()
                .any(|p| p.contains("writable by group or others"))
        );
        assert!(got.problems.iter().any(|p| p.contains("more than")));
        // Another user's directory is never read; a missing one is simply empty.
        assert_eq!(
            read_user_grants(&s, "bob", None).unwrap(),
            UserGrants::default()
        );
        // Invalid user names never become paths.
        assert!(read_user_grants(&s, "../alice", None).is_err());
    }

    #[test]
    fn refuses_unsafe_directories() {
        let (_t, s) = state();
        if me() != 0 {
            return;
        }
        mode(&s.join("grants/alice"), 0o777);
        assert!(matches!(
            read_user_grants(&s, "alice", None),
            Err(FileError::BadMode { .. })
        ));
        mode(&s.join("grants/alice"), 0o755);
        std::os::unix::fs::chown(s.join("grants/alice"), Some(4242), None).unwrap();
        assert!(matches!(
            read_user_grants(&s, "alice", None),
            Err(FileError::BadOwner { .. })
        ));
        // ...unless that uid is the grant writer.
        assert!(read_user_grants(&s, "alice", Some(4242)).is_ok());
        fs::remove_dir_all(s.join("grants/alice")).unwrap();
        let elsewhere = s.join("elsewhere");
        fs::create_dir(&elsewhere).unwrap();
        mode(&elsewhere, 0o755);
        symlink(&elsewhere, s.join("grants/alice")).unwrap();
        assert!(matches!(
            read_user_grants(&s, "alice", None),
            Err(FileError::Symlink { .. })
        ));
    }

    #[test]
    fn bounds_the_work() {
        let (_t, s) = state();
        if me() != 0 {
            return;
        }
        for i in 0..(MAX_FILES_PER_USER + 10) {
            put(&s, &format!("grants/alice/g-{i}.grant"), b"x");
        }
        let got = read_user_grants(&s, "alice", None).unwrap();
        assert!(got.truncated);
        assert!(got.files.len() <= MAX_FILES_PER_USER);
    }

    #[test]
    fn revocation_list_must_be_root_owned() {
        let (_t, s) = state();
        if me() != 0 {
            return;
        }
        assert_eq!(read_revocations(&s), RevocationFile::Missing);
        put(&s, "revocations", b"list");
        assert_eq!(
            read_revocations(&s),
            RevocationFile::Present(b"list".to_vec())
        );
        std::os::unix::fs::chown(s.join("revocations"), Some(4242), None).unwrap();
        assert!(matches!(read_revocations(&s), RevocationFile::Unusable(_)));
    }
}

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

use std::cell::OnceCell;
use std::fs;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{CWD, Mode, OFlags};
use rustix::io::Errno;

use jit_common::envelope::{MAX_GRANT_SIZE, MAX_REVOCATION_LIST_SIZE};
use jit_common::record::{self, TrustedRecord};
use jit_common::secure_file::{self, FileError, Policy};

use crate::decide::RecordSource;

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
    read_user_grants_with(state_dir, user, &|| writer_uid)
}

/// The trusted owners of grant directories and files (root and the grant writer), with the
/// grant writer's uid looked up (`lookup`, a passwd read) only when something is not
/// root-owned: at most once, and not at all in a store root wrote.
struct Owners<'a> {
    lookup: &'a dyn Fn() -> Option<u32>,
    writer: OnceCell<Option<u32>>,
}

impl Owners<'_> {
    fn allows(&self, uid: u32) -> bool {
        uid == 0
            || *self
                .writer
                .get_or_init(|| (self.lookup)().filter(|u| *u != 0))
                == Some(uid)
    }
}

/// [`read_user_grants`] with the grant writer's uid from `writer_uid`, called only if a
/// directory or file is not owned by root (see `Owners`).
pub fn read_user_grants_with(
    state_dir: &Path,
    user: &str,
    writer_uid: &dyn Fn() -> Option<u32>,
) -> Result<UserGrants, FileError> {
    if jit_common::grant::check_user("user", user).is_err() {
        return Err(FileError::NotRegular {
            path: user_dir(state_dir, user),
        });
    }
    let owners = Owners {
        lookup: writer_uid,
        writer: OnceCell::new(),
    };
    let owners = |uid: u32| owners.allows(uid);
    // Every step below the root-owned state directory is relative to an opened directory and
    // follows no link: the grant writer owns grants/ and may swap grants/<user> for a symlink
    // at any moment, after a check by path, so nothing is reached by path twice.
    secure_file::check_dir(state_dir, &Policy::root_only(0))?;
    let state_fd = open_dir(CWD, state_dir.as_os_str(), state_dir)?;
    check_stat(&state_fd, state_dir, &|uid| uid == 0, None)?;
    let grants = state_dir.join("grants");
    let grants_fd = match open_dir(&state_fd, "grants", &grants) {
        Err(FileError::NotFound { .. }) => return Ok(UserGrants::default()),
        r => r?,
    };
    check_stat(&grants_fd, &grants, &owners, None)?;
    let dir = grants.join(user);
    let dir_fd = match open_dir(&grants_fd, user, &dir) {
        Err(FileError::NotFound { .. }) => return Ok(UserGrants::default()),
        r => r?,
    };
    check_stat(&dir_fd, &dir, &owners, None)?;
    let io = |source: std::io::Error| FileError::Io {
        path: dir.clone(),
        source,
    };
    let entries = rustix::fs::Dir::read_from(&dir_fd).map_err(|e| io(e.into()))?;
    let mut out = UserGrants::default();
    let mut names = Vec::new();
    for (seen, entry) in entries.enumerate() {
        if seen >= MAX_FILES_PER_USER {
            out.truncated = true;
            break;
        }
        let Ok(entry) = entry else { continue };
        let Ok(name) = entry.file_name().to_str() else {
            continue;
        };
        if name.ends_with(GRANT_SUFFIX) && !name.starts_with('.') {
            names.push(name.to_string());
        }
    }
    names.sort();
    for name in names {
        match read_file(&dir_fd, &dir.join(&name), &name, &owners) {
            Ok(bytes) => out.files.push(GrantFile { name, bytes }),
            Err(FileError::NotFound { .. }) => {}
            Err(e) => out.problems.push(e.to_string()),
        }
    }
    Ok(out)
}

/// Opens directory `name` under `parent` without following a symlink.
fn open_dir<P: rustix::path::Arg>(
    parent: impl AsFd,
    name: P,
    path: &Path,
) -> Result<OwnedFd, FileError> {
    rustix::fs::openat(
        parent,
        name,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::LOOP => FileError::Symlink {
            path: path.to_path_buf(),
        },
        // O_DIRECTORY | O_NOFOLLOW on a symlink gives ENOTDIR; look (for the message only).
        Errno::NOTDIR if fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) => {
            FileError::Symlink {
                path: path.to_path_buf(),
            }
        }
        Errno::NOTDIR => FileError::NotRegular {
            path: path.to_path_buf(),
        },
        Errno::NOENT => FileError::NotFound {
            path: path.to_path_buf(),
        },
        e => FileError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        },
    })
}

/// The owner and mode rules of `secure_file` on an open descriptor: a directory when
/// `max_size` is `None`, else a regular file of at most `max_size` bytes. Also used by
/// `jit-host`'s fd-relative writes (`store_write::UserDir`).
pub fn check_open(
    fd: &OwnedFd,
    path: &Path,
    owners: &[u32],
    max_size: Option<u64>,
) -> Result<fs::Metadata, FileError> {
    use std::os::unix::fs::MetadataExt;
    let io = |source: std::io::Error| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::File::from(fd.try_clone().map_err(io)?)
        .metadata()
        .map_err(io)?;
    let kind_ok = match max_size {
        None => meta.is_dir(),
        Some(_) => meta.is_file(),
    };
    if !kind_ok {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if !owners.contains(&meta.uid()) {
        return Err(FileError::BadOwner {
            path: path.to_path_buf(),
            uid: meta.uid(),
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(FileError::BadMode {
            path: path.to_path_buf(),
            mode: meta.mode(),
        });
    }
    if let Some(max) = max_size
        && meta.len() > max
    {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max,
        });
    }
    Ok(meta)
}

/// [`check_open`]'s rules on the descriptor itself (one `fstat`, no duplicate descriptor):
/// the read path of a sudo decision, which needs only the owner, mode, kind and size.
fn check_stat(
    fd: &OwnedFd,
    path: &Path,
    owner_ok: &dyn Fn(u32) -> bool,
    max_size: Option<u64>,
) -> Result<rustix::fs::Stat, FileError> {
    let st = rustix::fs::fstat(fd).map_err(|e| FileError::Io {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    let kind = rustix::fs::FileType::from_raw_mode(st.st_mode);
    let kind_ok = match max_size {
        None => kind == rustix::fs::FileType::Directory,
        Some(_) => kind == rustix::fs::FileType::RegularFile,
    };
    if !kind_ok {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if !owner_ok(st.st_uid) {
        return Err(FileError::BadOwner {
            path: path.to_path_buf(),
            uid: st.st_uid,
        });
    }
    if st.st_mode & 0o022 != 0 {
        return Err(FileError::BadMode {
            path: path.to_path_buf(),
            mode: st.st_mode,
        });
    }
    let size = u64::try_from(st.st_size).unwrap_or(0);
    if let Some(max) = max_size
        && size > max
    {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size,
            max,
        });
    }
    Ok(st)
}

/// Reads grant file `name` in the opened directory: not a symlink, a regular file of a
/// trusted owner, no group/world write, at most `MAX_GRANT_SIZE` bytes. Four system calls
/// (`openat`, `fstat`, `read`, `close`): see [`secure_file::read_sized`].
fn read_file(
    dir: &OwnedFd,
    path: &Path,
    name: &str,
    owners: &dyn Fn(u32) -> bool,
) -> Result<Vec<u8>, FileError> {
    let fd = rustix::fs::openat(
        dir,
        name,
        OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NOCTTY | OFlags::NONBLOCK,
        Mode::empty(),
    )
    .map_err(|e| match e {
        Errno::LOOP => FileError::Symlink {
            path: path.to_path_buf(),
        },
        Errno::NOENT => FileError::NotFound {
            path: path.to_path_buf(),
        },
        e => FileError::Io {
            path: path.to_path_buf(),
            source: e.into(),
        },
    })?;
    let max = MAX_GRANT_SIZE as u64;
    let st = check_stat(&fd, path, owners, Some(max))?;
    secure_file::read_sized(
        fs::File::from(fd),
        u64::try_from(st.st_size).unwrap_or(0),
        max,
        path,
    )
}

/// `<state_dir>/verified`, root's verified-document records.
pub fn records_dir(state_dir: &Path) -> PathBuf {
    state_dir.join(record::DIR_NAME)
}

/// Root's verified-document records under `<state_dir>/verified` (see
/// [`jit_common::record`]): the [`RecordSource`] that `pam_jit.so` and `jit-host check` pass
/// to [`crate::decide::decide`]. The directory and its ancestors are checked once, at the
/// first look-up ([`record::RecordDir`]); each look-up then reads one file, with the file's
/// own checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordLookup {
    dir: PathBuf,
    checked: OnceCell<Option<record::RecordDir>>,
}

impl RecordLookup {
    /// The records under `<state_dir>/verified`.
    pub fn in_state_dir(state_dir: &Path) -> Self {
        Self {
            dir: records_dir(state_dir),
            checked: OnceCell::new(),
        }
    }
}

impl RecordSource for RecordLookup {
    /// The record root wrote for these exact bytes, if there is one that may be trusted
    /// (root-owned, not group/world-writable, root-owned ancestors, well-formed). Anything
    /// else is `None`: the signature is then verified as if there were no record.
    fn find(&self, doc: &[u8]) -> Option<TrustedRecord> {
        self.checked
            .get_or_init(|| record::RecordDir::open(&self.dir).ok())
            .as_ref()?
            .read_trusted(doc)
            .ok()
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

    /// A state dir inside a fresh 0755 temp dir (root-owned when the tests run as root, which
    /// most of them need: `tests/run.sh` runs them with `--include-ignored`).
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
    fn a_state_dir_not_owned_by_root_is_refused() {
        let (_t, s) = state();
        if me() != 0 {
            assert!(read_user_grants(&s, "alice", None).is_err());
        } else {
            std::os::unix::fs::chown(&s, Some(4242), None).unwrap();
            assert!(matches!(
                read_user_grants(&s, "alice", None),
                Err(FileError::BadOwner { .. })
            ));
        }
        // Invalid user names never become paths.
        assert!(read_user_grants(&s, "../alice", None).is_err());
    }

    #[test]
    #[ignore = "needs root"]
    fn reads_only_good_files_of_one_user() {
        let (_t, s) = state();
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
    #[ignore = "needs root"]
    fn refuses_unsafe_directories() {
        let (_t, s) = state();
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

    /// The grant writer's uid is looked up only when something is not root's, at most once,
    /// and then trusted exactly as `read_user_grants(.., Some(uid))` trusts it.
    #[test]
    #[ignore = "needs root"]
    fn the_grant_writer_is_looked_up_only_for_what_root_does_not_own() {
        use std::cell::Cell;
        let (_t, s) = state();
        put(&s, "grants/alice/g-1.grant", b"one");
        put(&s, "grants/alice/g-2.grant", b"two");
        let calls = Cell::new(0);
        let lookup = || {
            calls.set(calls.get() + 1);
            Some(4242)
        };
        let got = read_user_grants_with(&s, "alice", &lookup).unwrap();
        assert_eq!(got.files.len(), 2);
        assert_eq!(
            calls.get(),
            0,
            "looked up the grant writer in a root-owned store"
        );
        std::os::unix::fs::chown(s.join("grants/alice"), Some(4242), None).unwrap();
        std::os::unix::fs::chown(s.join("grants/alice/g-1.grant"), Some(4242), None).unwrap();
        std::os::unix::fs::chown(s.join("grants/alice/g-2.grant"), Some(4343), None).unwrap();
        let got = read_user_grants_with(&s, "alice", &lookup).unwrap();
        assert_eq!(calls.get(), 1, "looked up more than once");
        assert_eq!(got.files.len(), 1);
        assert_eq!(got.files[0].name, "g-1.grant");
        assert!(
            got.problems.iter().any(|p| p.contains("uid 4343")),
            "{got:?}"
        );
        assert_eq!(
            got,
            read_user_grants(&s, "alice", Some(4242)).unwrap(),
            "lazy and eager differ"
        );
        // No writer (unknown user): only root's.
        assert!(matches!(
            read_user_grants_with(&s, "alice", &|| None),
            Err(FileError::BadOwner { .. })
        ));
    }

    #[test]
    #[ignore = "needs root"]
    fn bounds_the_work() {
        let (_t, s) = state();
        for i in 0..(MAX_FILES_PER_USER + 10) {
            put(&s, &format!("grants/alice/g-{i}.grant"), b"x");
        }
        let got = read_user_grants(&s, "alice", None).unwrap();
        assert!(got.truncated);
        assert!(got.files.len() <= MAX_FILES_PER_USER);
    }

    #[test]
    #[ignore = "needs root"]
    fn revocation_list_must_be_root_owned() {
        let (_t, s) = state();
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

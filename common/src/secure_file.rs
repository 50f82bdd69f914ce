//! Reading files that grant power, and writing them atomically.
//!
//! A file is trusted only if it is a regular file (not a symlink, opened with `O_NOFOLLOW`),
//! owned by an allowed uid, not group- or world-writable, and no larger than a cap; and, when
//! asked, only if every directory above it is owned by root or an allowed uid and not
//! writable by others (sticky directories such as `/tmp` are accepted, as their entries
//! cannot be replaced by other users). The checks are made on the opened descriptor
//! (`fstat`), so the file cannot be swapped between check and read.

use std::fmt;
#[cfg(any(test, feature = "write"))]
use std::fs::File;
use std::fs::{self, OpenOptions};
#[cfg(any(test, feature = "write"))]
use std::io::Write;
use std::io::{self, Read};
#[cfg(any(test, feature = "write"))]
use std::os::unix::fs::PermissionsExt;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a file must satisfy to be read.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Uids that may own the file (and its directories). Root is not implied.
    pub owners: Vec<u32>,
    /// Largest file accepted, in bytes.
    pub max_size: u64,
    /// Whether to check every ancestor directory too.
    pub check_ancestors: bool,
}

impl Policy {
    /// Root-owned files up to `max_size` bytes, ancestors checked.
    pub fn root_only(max_size: u64) -> Self {
        Self {
            owners: vec![0],
            max_size,
            check_ancestors: true,
        }
    }
}

/// Why a file was not trusted.
#[derive(Debug)]
#[non_exhaustive]
pub enum FileError {
    /// The file does not exist.
    NotFound { path: PathBuf },
    /// It is a symbolic link.
    Symlink { path: PathBuf },
    /// It is not a regular file (or, for an ancestor, not a directory).
    NotRegular { path: PathBuf },
    /// Its owner is not allowed.
    BadOwner { path: PathBuf, uid: u32 },
    /// It is writable by group or others.
    BadMode { path: PathBuf, mode: u32 },
    /// It is larger than the cap.
    TooLarge { path: PathBuf, size: u64, max: u64 },
    /// Another I/O error.
    Io { path: PathBuf, source: io::Error },
}

impl FileError {
    fn io(path: &Path, source: io::Error) -> Self {
        match source.raw_os_error() {
            Some(libc::ENOENT) => Self::NotFound {
                path: path.to_path_buf(),
            },
            Some(libc::ELOOP) => Self::Symlink {
                path: path.to_path_buf(),
            },
            _ => Self::Io {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound { path } => write!(f, "{} does not exist", path.display()),
            Self::Symlink { path } => write!(
                f,
                "{} is a symbolic link; refusing to follow it",
                path.display()
            ),
            Self::NotRegular { path } => write!(
                f,
                "{} is not a regular file or directory as expected",
                path.display()
            ),
            Self::BadOwner { path, uid } => write!(
                f,
                "{} is owned by uid {uid}, which is not trusted (chown root {})",
                path.display(),
                path.display()
            ),
            Self::BadMode { path, mode } => write!(
                f,
                "{} has mode {:04o}: writable by group or others (chmod go-w {})",
                path.display(),
                mode & 0o7777,
                path.display()
            ),
            Self::TooLarge { path, size, max } => {
                write!(
                    f,
                    "{} is {size} bytes, more than the {max} allowed",
                    path.display()
                )
            }
            Self::Io { path, source } => write!(f, "{}: {source}", path.display()),
        }
    }
}

impl std::error::Error for FileError {}

/// Reads `path` if it satisfies `policy`.
pub fn read(path: &Path, policy: &Policy) -> Result<Vec<u8>, FileError> {
    if policy.check_ancestors {
        check_ancestors(path, policy)?;
    }
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| FileError::io(path, e))?;
    let meta = file.metadata().map_err(|e| FileError::io(path, e))?;
    check_meta(path, &meta, policy, false)?;
    if meta.len() > policy.max_size {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: meta.len(),
            max: policy.max_size,
        });
    }
    read_sized(file, meta.len(), policy.max_size, path)
}

/// Reads an opened regular file whose `fstat` said `size` bytes (at most `max`): normally one
/// `read` into a buffer of `size + 1` bytes. A read that returns less than `size` is followed
/// by more reads until `size` bytes or the end of the file (0), since some filesystems (FUSE,
/// NFS, 9p) return short reads before the end; a cut file must never parse as a shorter,
/// different one (host.toml is not signed). A full buffer means the file grew since the
/// `fstat`, and the rest is read up to `max + 1` bytes, so an oversized file is still
/// refused. Grant files are replaced by `rename`, never rewritten in place, and whatever is
/// read is only ever trusted through its signature (or root's record of its SHA-256).
pub fn read_sized(file: fs::File, size: u64, max: u64, path: &Path) -> Result<Vec<u8>, FileError> {
    read_sized_from(file, size, max, path)
}

fn read_sized_from<R: Read>(
    mut file: R,
    size: u64,
    max: u64,
    path: &Path,
) -> Result<Vec<u8>, FileError> {
    let io_err = |source: io::Error| FileError::Io {
        path: path.to_path_buf(),
        source,
    };
    let want = usize::try_from(size.min(max).saturating_add(1))
        .map_err(|e| io_err(io::Error::other(e)))?;
    // What fstat said: reached before the buffer fills unless the file is over the cap, and
    // then the buffer fills and the read goes on to prove it.
    let expected = usize::try_from(size).unwrap_or(usize::MAX);
    let mut buf = vec![0u8; want];
    let mut got = 0;
    while got < want {
        match file.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => {
                got += n;
                if got >= expected && got < want {
                    // What fstat said has arrived (one read on a local filesystem): stop,
                    // as growth is only told from the end by a read that fills the buffer.
                    break;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io_err(e)),
        }
    }
    buf.truncate(got);
    if got == want {
        // The file grew after the fstat: read on, bounded.
        (&mut file)
            .take(max.saturating_add(1).saturating_sub(got as u64))
            .read_to_end(&mut buf)
            .map_err(io_err)?;
    }
    if buf.len() as u64 > max {
        return Err(FileError::TooLarge {
            path: path.to_path_buf(),
            size: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// Checks a directory (not following a symlink) against `policy`'s owners and modes, and
/// optionally its ancestors.
pub fn check_dir(path: &Path, policy: &Policy) -> Result<(), FileError> {
    if policy.check_ancestors {
        check_ancestors(path, policy)?;
    }
    let meta = fs::symlink_metadata(path).map_err(|e| FileError::io(path, e))?;
    check_meta(path, &meta, policy, true)
}

fn check_meta(
    path: &Path,
    meta: &fs::Metadata,
    policy: &Policy,
    dir: bool,
) -> Result<(), FileError> {
    let ft = meta.file_type();
    if ft.is_symlink() {
        return Err(FileError::Symlink {
            path: path.to_path_buf(),
        });
    }
    if (dir && !ft.is_dir()) || (!dir && !ft.is_file()) {
        return Err(FileError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    if !policy.owners.contains(&meta.uid()) {
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
    Ok(())
}

/// Every directory from `/` down to `path`'s parent must be a real directory owned by root or
/// an allowed owner, and not writable by others unless sticky.
fn check_ancestors(path: &Path, policy: &Policy) -> Result<(), FileError> {
    if !path.is_absolute() {
        return Err(FileError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, "path must be absolute"),
        });
    }
    let mut ancestors: Vec<&Path> = path.ancestors().skip(1).collect();
    ancestors.reverse();
    for dir in ancestors {
        let meta = fs::symlink_metadata(dir).map_err(|e| FileError::io(dir, e))?;
        if meta.file_type().is_symlink() {
            return Err(FileError::Symlink {
                path: dir.to_path_buf(),
            });
        }
        if !meta.is_dir() {
            return Err(FileError::NotRegular {
                path: dir.to_path_buf(),
            });
        }
        let uid = meta.uid();
        if uid != 0 && !policy.owners.contains(&uid) {
            return Err(FileError::BadOwner {
                path: dir.to_path_buf(),
                uid,
            });
        }
        let sticky = meta.mode() & 0o1000 != 0;
        if meta.mode() & 0o022 != 0 && !sticky {
            return Err(FileError::BadMode {
                path: dir.to_path_buf(),
                mode: meta.mode(),
            });
        }
    }
    Ok(())
}

/// Writes `data` to `path` atomically: a new temporary file in the same directory (created
/// exclusively, never following links), written, `fsync`ed, given `mode`, renamed over
/// `path`, then the directory is `fsync`ed. Readers see the old file or the new one, never
/// a mix; a full disk leaves the old file intact.
///
/// Only with the `write` feature: pam_jit.so is built without it.
#[cfg(any(test, feature = "write"))]
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "path has no file name"))?;
    let mut tmp_name = std::ffi::OsString::from(".");
    tmp_name.push(name);
    tmp_name.push(format!(".tmp.{}.{}", std::process::id(), unique()));
    let tmp = dir.join(tmp_name);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(data)?;
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// A per-call number for temporary file names: a counter, hashed with the standard
/// library's randomly keyed hasher so that a stale file left by a dead process with the same
/// pid is not hit again (no clock read: time is for entry points only).
#[cfg(any(test, feature = "write"))]
fn unique() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    RandomState::new().hash_one(N.fetch_add(1, Ordering::Relaxed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn policy() -> Policy {
        let uid = fs::metadata("/proc/self").map(|m| m.uid()).unwrap_or(0);
        Policy {
            owners: vec![uid],
            max_size: 100,
            check_ancestors: false,
        }
    }

    #[test]
    fn reads_a_good_file_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good");
        write_atomic(&good, b"hello", 0o644).unwrap();
        assert_eq!(read(&good, &policy()).unwrap(), b"hello");

        let link = dir.path().join("link");
        symlink(&good, &link).unwrap();
        assert!(matches!(
            read(&link, &policy()),
            Err(FileError::Symlink { .. })
        ));

        let ww = dir.path().join("ww");
        write_atomic(&ww, b"x", 0o666).unwrap();
        assert!(matches!(
            read(&ww, &policy()),
            Err(FileError::BadMode { .. })
        ));

        let big = dir.path().join("big");
        write_atomic(&big, &[b'a'; 101], 0o644).unwrap();
        assert!(matches!(
            read(&big, &policy()),
            Err(FileError::TooLarge { .. })
        ));

        let mut other = policy();
        other.owners = vec![4_000_000];
        assert!(matches!(
            read(&good, &other),
            Err(FileError::BadOwner { .. })
        ));

        assert!(matches!(
            read(dir.path(), &policy()),
            Err(FileError::NotRegular { .. })
        ));
        assert!(matches!(
            read(&dir.path().join("none"), &policy()),
            Err(FileError::NotFound { .. })
        ));
    }

    /// The one-read path: a size that matches is read whole; a file that grew after the
    /// `fstat` is read on (bounded, an oversized one refused); a file that shrank is read to
    /// its end.
    #[test]
    fn read_sized_reads_whole_files_whatever_fstat_said() {
        let t = tempfile::tempdir().unwrap();
        let p = t.path().join("f");
        let open = || fs::File::open(&p).unwrap();
        fs::write(&p, b"0123456789").unwrap();
        assert_eq!(read_sized(open(), 10, 100, &p).unwrap(), b"0123456789");
        // Grew since the fstat (said 3): still read whole.
        assert_eq!(read_sized(open(), 3, 100, &p).unwrap(), b"0123456789");
        assert_eq!(read_sized(open(), 0, 100, &p).unwrap(), b"0123456789");
        // Shrank (said 50): the end of the file ends the read.
        assert_eq!(read_sized(open(), 50, 100, &p).unwrap(), b"0123456789");
        // Larger than the cap, whatever the fstat said: refused.
        for said in [0, 3, 9, 10] {
            assert!(matches!(
                read_sized(open(), said, 9, &p),
                Err(FileError::TooLarge {
                    size: 10,
                    max: 9,
                    ..
                })
            ));
        }
        assert_eq!(read_sized(open(), 10, 10, &p).unwrap(), b"0123456789");
        fs::write(&p, b"").unwrap();
        assert_eq!(read_sized(open(), 0, 10, &p).unwrap(), b"");
    }

    /// A filesystem that returns short reads (FUSE, NFS, 9p may) must not cut the file:
    /// host.toml is not signed, and a cut at a line end parses as another config.
    #[test]
    fn read_sized_reads_on_after_a_short_read() {
        struct OneByte<'a>(&'a [u8]);
        impl Read for OneByte<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = usize::from(!self.0.is_empty() && !buf.is_empty());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let p = Path::new("/x");
        let data = b"0123456789";
        assert_eq!(read_sized_from(OneByte(data), 10, 100, p).unwrap(), data);
        // Shrank since the fstat, read a byte at a time: read to the end.
        assert_eq!(read_sized_from(OneByte(data), 50, 100, p).unwrap(), data);
        // (Growth after the fstat is found when a read fills the buffer: the real-file test
        // above. Under short reads the file is read as large as fstat said.)
        assert!(matches!(
            read_sized_from(OneByte(data), 10, 9, p),
            Err(FileError::TooLarge { max: 9, .. })
        ));
    }

    #[test]
    fn write_atomic_replaces_and_leaves_no_temp() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        write_atomic(&p, b"one", 0o600).unwrap();
        write_atomic(&p, b"two", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"two");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}

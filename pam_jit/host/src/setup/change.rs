//! One file change of `setup`: old and new contents, an optional backup action, applied
//! atomically or shown as a diff.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use jit_common::secure_file::write_atomic;

use crate::failure::{Failure, Result};

const BACKUP_SUFFIX: &str = ".jit-orig";

/// One file change.
#[derive(Debug)]
pub(super) struct Change {
    pub(super) path: PathBuf,
    pub(super) old: Option<Vec<u8>>,
    pub(super) new: Option<Vec<u8>>,
    pub(super) mode: u32,
    /// Extra file actions: (path, Some(content)) writes, (path, None) removes.
    pub(super) backup: Option<(PathBuf, Option<Vec<u8>>)>,
}

/// A regular file's contents and permission bits (a symlink or anything else is refused).
pub(super) fn read(path: &Path) -> Result<(Vec<u8>, u32)> {
    let meta =
        fs::symlink_metadata(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    if !meta.is_file() {
        return Err(Failure::new(format!(
            "{} is not a regular file (a symlink?); edit it by hand",
            path.display()
        )));
    }
    let bytes = fs::read(path).map_err(|e| Failure::new(format!("{}: {e}", path.display())))?;
    Ok((bytes, meta.mode() & 0o7777))
}

/// `<path>.jit-orig`, where setup keeps what it changed.
pub(super) fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(BACKUP_SUFFIX);
    PathBuf::from(s)
}

/// Writes the change (and its backup action); prints what it did.
pub(super) fn apply(c: &Change) -> Result<()> {
    if c.old == c.new {
        if let Some((p, None)) = &c.backup {
            let _ = fs::remove_file(p);
        }
        return Ok(());
    }
    if let Some((p, Some(content))) = &c.backup {
        write_atomic(p, content, c.mode)
            .map_err(|e| Failure::new(format!("cannot write backup {}: {e}", p.display())))?;
    }
    match &c.new {
        Some(content) => {
            write_atomic(&c.path, content, c.mode)
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", c.path.display())))?;
            jit_common::outln!("updated {}", c.path.display());
        }
        None => {
            fs::remove_file(&c.path)
                .map_err(|e| Failure::new(format!("cannot remove {}: {e}", c.path.display())))?;
            jit_common::outln!("removed {}", c.path.display());
        }
    }
    if let Some((p, None)) = &c.backup {
        fs::remove_file(p)
            .map_err(|e| Failure::new(format!("cannot remove backup {}: {e}", p.display())))?;
    }
    Ok(())
}

/// A small unified diff: the changed middle with up to 3 lines of context.
pub(super) fn diff(c: &Change) -> String {
    let text = |b: &Option<Vec<u8>>| {
        b.as_deref()
            .map(|b| String::from_utf8_lossy(b).into_owned())
            .unwrap_or_default()
    };
    let (old, new) = (text(&c.old), text(&c.new));
    if old == new && c.old.is_some() == c.new.is_some() {
        return String::new();
    }
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let pre = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suf = a[pre..]
        .iter()
        .rev()
        .zip(b[pre..].iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let start = pre.saturating_sub(3);
    let a_end = (a.len() - suf + 3).min(a.len());
    let b_end = (b.len() - suf + 3).min(b.len());
    let label = |x: &Option<Vec<u8>>, p: &Path| {
        if x.is_some() {
            p.display().to_string()
        } else {
            "/dev/null".to_string()
        }
    };
    let mut out = format!(
        "--- {}\n+++ {}\n@@ -{},{} +{},{} @@\n",
        label(&c.old, &c.path),
        label(&c.new, &c.path),
        start + 1,
        a_end - start,
        start + 1,
        b_end - start
    );
    for l in &a[start..pre] {
        out.push_str(&format!(" {l}\n"));
    }
    for l in &a[pre..a.len() - suf] {
        out.push_str(&format!("-{l}\n"));
    }
    for l in &b[pre..b.len() - suf] {
        out.push_str(&format!("+{l}\n"));
    }
    for l in &a[a.len() - suf..a_end] {
        out.push_str(&format!(" {l}\n"));
    }
    out
}

/// The change that writes `out` (a file's text with setup's lines removed) over `old`, and
/// removes setup's backup when `out` is exactly what it holds (else keeps it, saying why).
/// Shared by the sudo and sshd session undos.
pub(super) fn undo_change(path: &Path, old: Vec<u8>, mode: u32, out: String) -> Change {
    let backup = backup_path(path);
    let remove_backup = match fs::read(&backup) {
        Ok(b) if b == out.as_bytes() => Some((backup, None)),
        Ok(_) => {
            jit_common::errln!(
                "jit-host: {} differs from {} (edited since setup); keeping the backup",
                path.display(),
                backup.display()
            );
            None
        }
        Err(_) => None,
    };
    Change {
        path: path.to_path_buf(),
        old: Some(old),
        new: Some(out.into_bytes()),
        mode,
        backup: remove_backup,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_the_insertion() {
        let c = Change {
            path: PathBuf::from("/etc/pam.d/sudo"),
            old: Some(b"a\nb\nc\n".to_vec()),
            new: Some(b"a\nX\nb\nc\n".to_vec()),
            mode: 0o644,
            backup: None,
        };
        let d = diff(&c);
        assert!(d.contains("\n a\n+X\n b\n c\n"), "{d}");
    }
}

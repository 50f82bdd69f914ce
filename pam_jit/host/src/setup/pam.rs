//! `--sudo`: the PAM line before the first account line of `/etc/pam.d/sudo` and `sudo-i`,
//! and its exact removal.

use std::path::Path;

use super::PAM_MARKER;
use super::change::{Change, backup_path, read, undo_change};
use crate::failure::{Failure, Result};

fn pam_line(module: &str, config: Option<&Path>) -> String {
    match config {
        Some(c) => format!("account requisite {module} config={}", c.display()),
        None => format!("account requisite {module}"),
    }
}

/// Whether `line` is what [`pam_insert`] writes after the marker: `account requisite
/// MODULE` with nothing else or `config=...`, whatever the module path (`--module` may
/// have named any, e.g. `/opt/x/jit.so`).
fn is_inserted_line(line: &str) -> bool {
    let t: Vec<&str> = line.split_whitespace().collect();
    // The module's file name must name jit (`pam_jit.so`, `/opt/x/jit.so`): a line the
    // administrator wrote after an orphaned marker (`account requisite pam_motd.so`) stays.
    let jit = |m: &str| m.rsplit('/').next().unwrap_or(m).contains("jit");
    match t.as_slice() {
        ["account", "requisite", m] => jit(m),
        ["account", "requisite", m, c] => jit(m) && c.starts_with("config="),
        _ => false,
    }
}

fn is_account_line(line: &str) -> bool {
    let t = line.trim_start();
    let first = t.split_whitespace().next().unwrap_or("");
    first == "account" || first == "-account" || t.starts_with("@include common-account")
}

pub(super) fn pam_insert(path: &Path, module: &str, config: Option<&Path>) -> Result<Change> {
    let (old, mode) = read(path)?;
    let text = String::from_utf8(old.clone())
        .map_err(|_| Failure::new(format!("{} is not UTF-8", path.display())))?;
    if text.lines().any(|l| l == PAM_MARKER) {
        return Ok(Change {
            path: path.to_path_buf(),
            new: Some(old.clone()),
            old: Some(old),
            mode,
            backup: None,
        });
    }
    let insert = format!("{PAM_MARKER}\n{}\n", pam_line(module, config));
    let mut out = String::with_capacity(text.len() + insert.len());
    let mut done = false;
    for piece in text.split_inclusive('\n') {
        if !done && is_account_line(piece) {
            out.push_str(&insert);
            done = true;
        }
        out.push_str(piece);
    }
    if !done {
        if !out.is_empty() && !out.ends_with('\n') {
            // Keep the original bytes intact: the inserted block goes after a newline we
            // must then also remove on undo. Refuse instead; such files are hand-made.
            return Err(Failure::new(format!(
                "{} has no account line and does not end with a newline; add `{}` by hand",
                path.display(),
                pam_line(module, config)
            )));
        }
        out.push_str(&insert);
    }
    let backup = backup_path(path);
    Ok(Change {
        path: path.to_path_buf(),
        old: Some(old.clone()),
        new: Some(out.into_bytes()),
        mode,
        backup: (!backup.exists()).then_some((backup, Some(old))),
    })
}

pub(super) fn pam_undo(path: &Path) -> Result<Change> {
    let (old, mode) = read(path)?;
    let text = String::from_utf8(old.clone())
        .map_err(|_| Failure::new(format!("{} is not UTF-8", path.display())))?;
    let mut out = String::with_capacity(text.len());
    let mut pieces = text.split_inclusive('\n').peekable();
    while let Some(piece) = pieces.next() {
        if piece.trim_end_matches('\n') == PAM_MARKER {
            if let Some(next) = pieces.peek()
                && is_inserted_line(next)
            {
                pieces.next();
            }
            continue;
        }
        out.push_str(piece);
    }
    Ok(undo_change(path, old, mode, out))
}

#[cfg(test)]
mod tests {
    use std::fs;

    use super::*;
    use crate::setup::change::apply;

    const DEBIAN_SUDO: &str = "#%PAM-1.0\n\n# Set up user limits from /etc/security/limits.conf.\nsession    required   pam_limits.so\n\n@include common-auth\n@include common-account\n@include common-session-noninteractive\n";

    #[test]
    fn inserts_before_account_and_undoes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sudo");
        fs::write(&p, DEBIAN_SUDO).unwrap();
        let c = pam_insert(&p, "pam_jit.so", None).unwrap();
        let new = String::from_utf8(c.new.clone().unwrap()).unwrap();
        assert!(new.contains(&format!(
            "{PAM_MARKER}\naccount requisite pam_jit.so\n@include common-account\n"
        )));
        apply(&c).unwrap();
        assert_eq!(fs::read(backup_path(&p)).unwrap(), DEBIAN_SUDO.as_bytes());
        // Idempotent.
        let again = pam_insert(&p, "pam_jit.so", None).unwrap();
        assert_eq!(again.old, again.new);
        let u = pam_undo(&p).unwrap();
        apply(&u).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), DEBIAN_SUDO);
        assert!(!backup_path(&p).exists());
    }

    #[test]
    fn rhel_style_and_config_argument() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sudo");
        let rhel =
            "#%PAM-1.0\nauth       include      system-auth\naccount    include      system-auth\n";
        fs::write(&p, rhel).unwrap();
        let c = pam_insert(&p, "/lib/pam_jit.so", Some(Path::new("/etc/jit/x.toml"))).unwrap();
        let new = String::from_utf8(c.new.unwrap()).unwrap();
        assert!(new.contains(
            "account requisite /lib/pam_jit.so config=/etc/jit/x.toml\naccount    include"
        ));
    }

    #[test]
    fn undo_removes_a_custom_module_line_and_keeps_a_foreign_one() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("sudo");
        fs::write(&p, DEBIAN_SUDO).unwrap();
        let c = pam_insert(&p, "/opt/x/jit.so", Some(Path::new("/etc/jit/h.toml"))).unwrap();
        apply(&c).unwrap();
        let u = pam_undo(&p).unwrap();
        apply(&u).unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), DEBIAN_SUDO);
        // The marker followed by a line setup does not write: only the marker goes.
        fs::write(
            &p,
            format!(
                "{PAM_MARKER}
account required pam_unix.so
"
            ),
        )
        .unwrap();
        let u = pam_undo(&p).unwrap();
        assert_eq!(u.new.unwrap(), b"account required pam_unix.so\n");
        // Even one with setup's shape, when its module is not jit's (the administrator
        // removed our line by hand and wrote theirs after the marker).
        fs::write(
            &p,
            format!(
                "{PAM_MARKER}
account requisite pam_access.so
"
            ),
        )
        .unwrap();
        let u = pam_undo(&p).unwrap();
        assert_eq!(u.new.unwrap(), b"account requisite pam_access.so\n");
    }
}

//! `--sshd`: the sshd drop-in (validated with `sshd -t` before it is written), `ca.pub`, an
//! empty KRL, and the drop-in's exact removal.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use jit_common::secure_file::write_atomic;
use pam_jit_core::config::Config;
use pam_jit_core::sys;

use super::change::{Change, backup_path, read};
use super::{SSHD_DROPIN, SSHD_MARKER};
use crate::failure::{Failure, Result};

const SSHD_MAIN: &str = "/etc/ssh/sshd_config";
const SSHD: &str = "/usr/sbin/sshd";

/// Files written alongside a change (path, content).
pub(super) type ExtraFiles = Vec<(PathBuf, Vec<u8>)>;

pub(super) fn sshd_write(
    config: &Config,
    config_arg: Option<&Path>,
) -> Result<(Change, ExtraFiles)> {
    let dropin = Path::new(SSHD_DROPIN);
    let dir = dropin.parent().unwrap_or(Path::new("/etc/ssh"));
    if !dir.is_dir() {
        return Err(Failure::new(format!(
            "{} does not exist; create it and add `Include {}/*.conf` at the top of {SSHD_MAIN}",
            dir.display(),
            dir.display()
        )));
    }
    match fs::read_to_string(SSHD_MAIN) {
        Ok(main)
            if main.lines().any(|l| {
                let t = l.trim_start();
                t.to_ascii_lowercase().starts_with("include") && t.contains("sshd_config.d")
            }) => {}
        _ => jit_common::errln!(
            "jit-host: warning: {SSHD_MAIN} does not seem to Include {}/*.conf; add it at the top",
            dir.display()
        ),
    }
    if sys::user_by_name(&config.grant_writer).is_none() {
        return Err(Failure::new(format!(
            "grant_writer {0:?} does not exist; create it: useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin {0}",
            config.grant_writer
        )));
    }
    if config.user_ca_keys.is_empty() {
        return Err(Failure::config(
            "host.toml has no user_ca_keys: sshd would trust no certificate (run `jit-ca host-config`)",
        ));
    }
    let exe = std::env::current_exe()
        .and_then(fs::canonicalize)
        .map_err(|e| Failure::new(format!("cannot find this program's path: {e}")))?;
    let exe_s = exe
        .to_str()
        .filter(|s| !s.contains(char::is_whitespace))
        .ok_or_else(|| {
            Failure::new(format!(
                "{} has spaces; install jit-host elsewhere",
                exe.display()
            ))
        })?;
    check_root_owned_path(&exe)?;
    let state = config.state_dir.display();
    let command = match config_arg {
        Some(c) => format!("{exe_s} --config {} principals %u %k", c.display()),
        None => format!("{exe_s} principals %u %k"),
    };
    let content = format!(
        "{SSHD_MARKER}\n\
         # Certificates from the jit CA log in; the principals hook verifies each one and\n\
         # stores the sudo grant it carries for pam_jit.so.\n\
         TrustedUserCAKeys {state}/ca.pub\n\
         AuthorizedPrincipalsCommand {command}\n\
         AuthorizedPrincipalsCommandUser {}\n\
         RevokedKeys {state}/krl\n",
        config.grant_writer
    );
    let (old, mode) = match fs::symlink_metadata(dropin) {
        Ok(_) => {
            let (b, m) = read(dropin)?;
            (Some(b), m)
        }
        Err(_) => (None, 0o644),
    };
    let ours = old
        .as_deref()
        .is_some_and(|b| b.starts_with(SSHD_MARKER.as_bytes()));
    let backup = backup_path(dropin);
    let backup = match &old {
        Some(b) if !ours && !backup.exists() => Some((backup, Some(b.clone()))),
        _ => None,
    };
    let mut ca_pub = String::new();
    for k in &config.user_ca_keys {
        ca_pub.push_str(
            &k.to_openssh()
                .map_err(|e| Failure::new(format!("user CA key: {e}")))?,
        );
        ca_pub.push('\n');
    }
    let mut extra = vec![(config.state_dir.join("ca.pub"), ca_pub.into_bytes())];
    let krl = config.state_dir.join("krl");
    if !krl.exists() {
        extra.push((krl, empty_krl()?));
    }
    Ok((
        Change {
            path: dropin.to_path_buf(),
            old,
            new: Some(content.into_bytes()),
            mode,
            backup,
        },
        extra,
    ))
}

/// An empty KRL, made by `ssh-keygen -k` (never hand-written).
fn empty_krl() -> Result<Vec<u8>> {
    let dir = std::env::temp_dir().join(format!("jit-host-krl.{}", std::process::id()));
    fs::create_dir(&dir).map_err(|e| Failure::new(format!("{}: {e}", dir.display())))?;
    let path = dir.join("krl");
    let out = Command::new("ssh-keygen")
        .arg("-q")
        .arg("-k")
        .arg("-f")
        .arg(&path)
        .output();
    let bytes = fs::read(&path);
    let _ = fs::remove_dir_all(&dir);
    match (out, bytes) {
        (Ok(o), Ok(b)) if o.status.success() => Ok(b),
        (Ok(o), _) => Err(Failure::new(format!(
            "ssh-keygen -k failed: {}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        (Err(e), _) => Err(Failure::new(format!(
            "cannot run ssh-keygen to create an empty KRL: {e} (install openssh-client)"
        ))),
    }
}

/// sshd runs the AuthorizedPrincipalsCommand only if it and every directory above it are
/// root-owned and not writable by others.
fn check_root_owned_path(path: &Path) -> Result<()> {
    for p in path.ancestors() {
        let Ok(m) = fs::metadata(p) else { continue };
        if m.uid() != 0 || m.mode() & 0o022 != 0 {
            return Err(Failure::new(format!(
                "{} is not root-owned or is group/world-writable, so sshd would refuse to run {}; install jit-host under /usr/sbin",
                p.display(),
                path.display()
            )));
        }
    }
    Ok(())
}

pub(super) fn sshd_undo() -> Result<Change> {
    let dropin = Path::new(SSHD_DROPIN);
    let backup = backup_path(dropin);
    let (old, mode) = match fs::symlink_metadata(dropin) {
        Ok(_) => {
            let (b, m) = read(dropin)?;
            (Some(b), m)
        }
        Err(_) => (None, 0o644),
    };
    let ours = old
        .as_deref()
        .is_some_and(|b| b.starts_with(SSHD_MARKER.as_bytes()));
    if !ours {
        return Ok(Change {
            path: dropin.to_path_buf(),
            new: old.clone(),
            old,
            mode,
            backup: None,
        });
    }
    let (new, backup_action) = match fs::read(&backup) {
        Ok(b) => (Some(b), Some((backup, None))),
        Err(_) => (None, None),
    };
    Ok(Change {
        path: dropin.to_path_buf(),
        old,
        new,
        mode,
        backup: backup_action,
    })
}

/// `sshd -t` on the configuration as it will be: the new drop-in first (sshd keeps the
/// first value of each keyword, and Debian's Include is at the top), then the main file.
pub(super) fn validate_sshd(changes: &[Change]) -> Result<()> {
    let Some(c) = changes.iter().find(|c| c.path == Path::new(SSHD_DROPIN)) else {
        return Ok(());
    };
    let Some(new) = &c.new else { return Ok(()) };
    let dir = Path::new(SSHD_MAIN)
        .parent()
        .unwrap_or(Path::new("/etc/ssh"));
    let candidate = dir.join(format!(".jit-setup-candidate.{}", std::process::id()));
    let mut text = new.clone();
    text.extend_from_slice(format!("Include {SSHD_MAIN}\n").as_bytes());
    write_atomic(&candidate, &text, 0o600)
        .map_err(|e| Failure::new(format!("cannot write {}: {e}", candidate.display())))?;
    let out = Command::new(SSHD)
        .arg("-t")
        .arg("-f")
        .arg(&candidate)
        .output();
    let _ = fs::remove_file(&candidate);
    match out {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(Failure::new(format!(
            "sshd -t rejected the configuration, nothing was changed:\n{}",
            String::from_utf8_lossy(&o.stderr).trim()
        ))),
        Err(e) => Err(Failure::new(format!(
            "cannot run {SSHD} -t to validate, nothing was changed: {e}"
        ))),
    }
}

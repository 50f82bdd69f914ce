//! `jit-host setup --sudo --sshd [--dry-run] [--undo]`: prepare a host, reversibly.
//!
//! * `--sudo`: in `/etc/pam.d/sudo` and `/etc/pam.d/sudo-i` (Debian's `sudo -i` uses its own
//!   service, which does not include `sudo`), inserts
//!   ```text
//!   # jit: added by jit-host setup; undo with: jit-host setup --sudo --undo
//!   account requisite pam_jit.so
//!   ```
//!   before the first account line (`@include common-account`, `account ...`), keeping a
//!   backup `<file>.jit-orig`. Idempotent (the marker is looked for first).
//! * `--sshd`: writes `/etc/ssh/sshd_config.d/jit.conf` (TrustedUserCAKeys,
//!   AuthorizedPrincipalsCommand + User, RevokedKeys), after `sshd -t` accepted the result;
//!   writes `<state_dir>/ca.pub` from host.toml and an empty KRL if there is none (sshd
//!   refuses every key login when the RevokedKeys file is unreadable).
//! * Always (unless `--undo`/`--dry-run`): creates the state directories with the right
//!   owners and modes, then runs the first `jit-host sync` from `server` in host.toml. In
//!   enforce mode, setup changes nothing unless a verified, fresh revocation list is
//!   installed afterwards (without one every sudo and certificate login would be denied).
//! * `--undo` removes exactly the lines/files setup added, so the files become byte-identical
//!   to what they were; `--dry-run` prints diffs and changes nothing.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use jit_common::secure_file::write_atomic;
use pam_jit_core::config::{Config, DEFAULT_PATH, Mode};
use pam_jit_core::decide::revocation_state;
use pam_jit_core::store::read_revocations;
use pam_jit_core::sys;

use crate::failure::{Failure, Result, load_config};
use crate::store_write::ensure_state_dirs;

/// The comment line that marks what setup added.
pub const PAM_MARKER: &str =
    "# jit: added by jit-host setup; undo with: jit-host setup --sudo --undo";
/// First line of the sshd drop-in.
pub const SSHD_MARKER: &str =
    "# jit: written by jit-host setup; undo with: jit-host setup --sshd --undo";
/// PAM service files changed by `--sudo`.
pub const PAM_FILES: &[&str] = &["/etc/pam.d/sudo", "/etc/pam.d/sudo-i"];
/// The sshd drop-in.
pub const SSHD_DROPIN: &str = "/etc/ssh/sshd_config.d/jit.conf";
const SSHD_MAIN: &str = "/etc/ssh/sshd_config";
const SSHD: &str = "/usr/sbin/sshd";
const BACKUP_SUFFIX: &str = ".jit-orig";

/// Parsed flags.
#[derive(Debug)]
pub struct Options {
    pub sudo: bool,
    pub sshd: bool,
    pub dry_run: bool,
    pub undo: bool,
    pub module: String,
}

/// One file change.
#[derive(Debug)]
struct Change {
    path: PathBuf,
    old: Option<Vec<u8>>,
    new: Option<Vec<u8>>,
    mode: u32,
    /// Extra file actions: (path, Some(content)) writes, (path, None) removes.
    backup: Option<(PathBuf, Option<Vec<u8>>)>,
}

/// Runs setup.
pub fn run(config_path: &Path, o: &Options) -> Result<ExitCode> {
    if !o.sudo && !o.sshd {
        return Err(Failure::config(
            "say what to set up: --sudo (PAM lines for sudo and sudo-i) and/or --sshd (sshd drop-in)",
        ));
    }
    if !o.dry_run && sys::effective_uid() != 0 {
        return Err(Failure::new(
            "setup changes /etc: run it as root (or try --dry-run)",
        ));
    }
    if o.module.is_empty() || o.module.contains(char::is_whitespace) {
        return Err(Failure::config(
            "--module must be a path or file name without spaces",
        ));
    }
    let config_arg = (config_path != Path::new(DEFAULT_PATH)).then(|| config_path.to_path_buf());
    if let Some(p) = &config_arg
        && (!p.is_absolute() || p.to_str().is_none_or(|s| s.contains(char::is_whitespace)))
    {
        return Err(Failure::config(format!(
            "--config {} must be an absolute path without spaces (it is written into PAM and sshd configuration)",
            p.display()
        )));
    }
    let config = if o.undo && o.sudo && !o.sshd {
        None
    } else {
        Some(load_config(config_path)?)
    };
    let mut changes = Vec::new();
    if o.sudo {
        for f in PAM_FILES {
            let path = Path::new(f);
            if !path.exists() {
                if *f == PAM_FILES[0] {
                    return Err(Failure::new(format!(
                        "{f} does not exist: is sudo installed?"
                    )));
                }
                eprintln!("jit-host: {f} does not exist; skipping it");
                continue;
            }
            changes.push(if o.undo {
                pam_undo(path)?
            } else {
                pam_insert(path, &o.module, config_arg.as_deref())?
            });
        }
    }
    let mut extra = Vec::new();
    if o.sshd {
        if o.undo {
            changes.push(sshd_undo()?);
        } else if let Some(c) = &config {
            let (change, files) = sshd_write(c, config_arg.as_deref())?;
            changes.push(change);
            extra = files;
        }
    }
    let changed: Vec<&Change> = changes.iter().filter(|c| c.old != c.new).collect();
    if o.dry_run {
        for c in &changes {
            print!("{}", diff(c));
        }
        for (p, _) in &extra {
            println!("would write {}", p.display());
        }
        if !o.undo
            && let Some(c) = &config
        {
            match &c.server {
                Some(server) => println!("would sync from {server} (the first sync)"),
                None => println!(
                    "would refuse: host.toml has no `server`, so setup cannot run the first sync"
                ),
            }
        }
        if changed.is_empty() {
            println!("setup: nothing to change");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if o.sshd && !o.undo {
        validate_sshd(&changes)?;
    }
    if !o.undo
        && let Some(c) = &config
    {
        for line in ensure_state_dirs(c, true)? {
            println!("{line}");
        }
        first_sync(c)?;
        for (p, content) in &extra {
            // The first sync installed the CA's KRL: keep it rather than the empty one.
            if *p == c.state_dir.join("krl") && p.exists() {
                continue;
            }
            write_atomic(p, content, 0o644)
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", p.display())))?;
            println!("wrote {}", p.display());
        }
    }
    for c in &changes {
        apply(c)?;
    }
    if changed.is_empty() {
        println!("setup: nothing to change");
    }
    Ok(ExitCode::SUCCESS)
}

/// The first sync (grants, revocation list, KRL from `server`), then the gate: without a
/// verified, fresh revocation list `pam_jit.so` denies every non-break-glass sudo and
/// `jit-host principals` every certificate, so in enforce mode setup refuses to change
/// anything and says what to do (in audit mode it warns).
fn first_sync(config: &Config) -> Result<()> {
    match &config.server {
        Some(server) => {
            println!("first sync from {server}");
            if let Err(f) = crate::sync::fetch_and_store(config, None) {
                eprintln!("jit-host: first sync: {}", f.message);
            }
            if let Err(f) = crate::index::index_store(config) {
                eprintln!("jit-host: first sync: {}", f.message);
            }
        }
        None => eprintln!("jit-host: host.toml has no `server`: no first sync"),
    }
    let revs = revocation_state(
        config,
        &read_revocations(&config.state_dir),
        jit_common::now(),
    );
    let Some(problem) = revs.problem else {
        return Ok(());
    };
    let fix = if config.server.is_some() {
        "fix the sync error above (jit-host sync shows it) and run setup again"
    } else {
        "set `server` in host.toml (jit-ca host-config writes it) and run setup again"
    };
    if config.mode == Mode::Audit {
        eprintln!(
            "jit-host: warning: {problem}; audit mode allows sudo anyway, enforce mode would deny it; {fix}"
        );
        return Ok(());
    }
    Err(Failure::new(format!(
        "refusing to set up enforcement: {problem}, so every sudo and certificate login would be denied; {fix}"
    )))
}

fn read(path: &Path) -> Result<(Vec<u8>, u32)> {
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

fn pam_line(module: &str, config: Option<&Path>) -> String {
    match config {
        Some(c) => format!("account requisite {module} config={}", c.display()),
        None => format!("account requisite {module}"),
    }
}

fn is_account_line(line: &str) -> bool {
    let t = line.trim_start();
    let first = t.split_whitespace().next().unwrap_or("");
    first == "account" || first == "-account" || t.starts_with("@include common-account")
}

fn pam_insert(path: &Path, module: &str, config: Option<&Path>) -> Result<Change> {
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

fn pam_undo(path: &Path) -> Result<Change> {
    let (old, mode) = read(path)?;
    let text = String::from_utf8(old.clone())
        .map_err(|_| Failure::new(format!("{} is not UTF-8", path.display())))?;
    let mut out = String::with_capacity(text.len());
    let mut pieces = text.split_inclusive('\n').peekable();
    while let Some(piece) = pieces.next() {
        if piece.trim_end_matches('\n') == PAM_MARKER {
            if let Some(next) = pieces.peek()
                && next.trim_start().starts_with("account requisite")
                && next.contains("pam_jit")
            {
                pieces.next();
            }
            continue;
        }
        out.push_str(piece);
    }
    let backup = backup_path(path);
    let remove_backup = match fs::read(&backup) {
        Ok(b) if b == out.as_bytes() => Some((backup, None)),
        Ok(_) => {
            eprintln!(
                "jit-host: {} differs from {} (edited since setup); keeping the backup",
                path.display(),
                backup.display()
            );
            None
        }
        Err(_) => None,
    };
    Ok(Change {
        path: path.to_path_buf(),
        old: Some(old),
        new: Some(out.into_bytes()),
        mode,
        backup: remove_backup,
    })
}

fn backup_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(BACKUP_SUFFIX);
    PathBuf::from(s)
}

/// Files written alongside a change (path, content).
type ExtraFiles = Vec<(PathBuf, Vec<u8>)>;

fn sshd_write(config: &Config, config_arg: Option<&Path>) -> Result<(Change, ExtraFiles)> {
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
        _ => eprintln!(
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

fn sshd_undo() -> Result<Change> {
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
fn validate_sshd(changes: &[Change]) -> Result<()> {
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

fn apply(c: &Change) -> Result<()> {
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
            println!("updated {}", c.path.display());
        }
        None => {
            fs::remove_file(&c.path)
                .map_err(|e| Failure::new(format!("cannot remove {}: {e}", c.path.display())))?;
            println!("removed {}", c.path.display());
        }
    }
    if let Some((p, None)) = &c.backup {
        fs::remove_file(p)
            .map_err(|e| Failure::new(format!("cannot remove backup {}: {e}", p.display())))?;
    }
    Ok(())
}

/// A small unified diff: the changed middle with up to 3 lines of context.
fn diff(c: &Change) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

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

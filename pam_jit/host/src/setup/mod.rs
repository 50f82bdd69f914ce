//! `jit-host setup --sudo --sshd --session [--dry-run] [--undo]`: prepare a host, reversibly.
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
//!   Also the session line below when `/etc/pam.d/sshd` exists and can take it (else it
//!   says that it skipped it, and why); `--sshd --undo` also removes it.
//! * `--session`: in `/etc/pam.d/sshd`, right after the first `session ... pam_loginuid.so`
//!   line, inserts
//!   ```text
//!   # jit: added by jit-host setup; undo with: jit-host setup --session --undo
//!   session optional pam_jit.so
//!   ```
//!   (session-bound grants: pam_jit binds the SSH connection that presented the certificate)
//!   and creates `session_dir` (root, 0700). Refuses, changing nothing, when there is no
//!   pam_loginuid line directly in the file (naming the line to add), a `pam_env ...
//!   user_readenv=1` runs first (also in an included file), an earlier `[...=N]` jump spans
//!   the insertion point, session_dir is unusable, or a pam_jit session line is already
//!   there but misplaced or doubled (saying what to move or remove).
//! * Always with `--sudo`/`--sshd` (unless `--undo`/`--dry-run`): creates the state directories with the right
//!   owners and modes, then runs the first `jit-host sync` from `server` in host.toml. In
//!   enforce mode, setup changes nothing unless a verified, fresh revocation list is
//!   installed afterwards (without one every sudo and certificate login would be denied).
//! * `--undo` removes exactly the lines/files setup added, so the files become byte-identical
//!   to what they were; `--dry-run` prints diffs and changes nothing.

mod change;
mod pam;
pub mod pamfile;
pub mod session;
mod sshd;

use std::path::Path;
use std::process::ExitCode;

use jit_common::secure_file::write_atomic;
use pam_jit_core::config::{Config, DEFAULT_PATH, Mode};
use pam_jit_core::decide::revocation_state;
use pam_jit_core::store::read_revocations;
use pam_jit_core::sys;

use crate::failure::{Failure, Result, load_config};
use crate::store_write::ensure_state_dirs;
use change::{Change, apply, diff};
use pam::{pam_insert, pam_undo};
use session::{PAM_SSHD, ensure_session_dir, session_dir_problem, session_insert, session_undo};
use sshd::{sshd_undo, sshd_write, validate_sshd};

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

/// Parsed flags.
#[derive(Debug)]
pub struct Options {
    pub sudo: bool,
    pub sshd: bool,
    pub session: bool,
    pub dry_run: bool,
    pub undo: bool,
    pub module: String,
}

/// Runs setup.
pub fn run(config_path: &Path, o: &Options) -> Result<ExitCode> {
    if !o.sudo && !o.sshd && !o.session {
        return Err(Failure::config(
            "say what to set up: --sudo (PAM lines for sudo and sudo-i), --sshd (sshd drop-in) \
             and/or --session (the sshd PAM session line for session-bound grants)",
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
    let config = if o.undo && !o.sshd {
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
                jit_common::errln!("jit-host: {f} does not exist; skipping it");
                continue;
            }
            changes.push(if o.undo {
                pam_undo(path)?
            } else {
                pam_insert(path, &o.module, config_arg.as_deref())?
            });
        }
    }
    let session_dir = config.as_ref().map(|c| c.session_dir.as_path());
    let session_line = session_change(o, config_arg.as_deref(), session_dir, &mut changes)?;
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
            jit_common::out!("{}", diff(c));
        }
        for (p, _) in &extra {
            jit_common::outln!("would write {}", p.display());
        }
        if session_line
            && let Some(c) = &config
            && !c.session_dir.is_dir()
        {
            jit_common::outln!("would create {} (root, 0700)", c.session_dir.display());
        }
        if !o.undo
            && (o.sudo || o.sshd)
            && let Some(c) = &config
        {
            match c.servers.as_slice() {
                [] => jit_common::outln!(
                    "would refuse: host.toml has no `server`, so setup cannot run the first sync"
                ),
                servers => {
                    jit_common::outln!("would sync from {} (the first sync)", servers.join(" or "))
                }
            }
        }
        if changed.is_empty() {
            jit_common::outln!("setup: nothing to change");
        }
        return Ok(ExitCode::SUCCESS);
    }
    if o.sshd && !o.undo {
        validate_sshd(&changes)?;
    }
    if !o.undo
        && (o.sudo || o.sshd)
        && let Some(c) = &config
    {
        for line in ensure_state_dirs(c, true)? {
            jit_common::outln!("{line}");
        }
        first_sync(c)?;
        for (p, content) in &extra {
            // The first sync installed the CA's KRL: keep it rather than the empty one.
            if *p == c.state_dir.join("krl") && p.exists() {
                continue;
            }
            write_atomic(p, content, 0o644)
                .map_err(|e| Failure::new(format!("cannot write {}: {e}", p.display())))?;
            jit_common::outln!("wrote {}", p.display());
        }
    }
    if session_line
        && let Some(c) = &config
        && let Some(line) = ensure_session_dir(&c.session_dir)?
    {
        jit_common::outln!("{line}");
    }
    for c in &changes {
        apply(c)?;
    }
    if changed.is_empty() {
        jit_common::outln!("setup: nothing to change");
    }
    Ok(ExitCode::SUCCESS)
}

/// The session line's change in `/etc/pam.d/sshd` (pushed on `changes`): with `--session`, a
/// file that cannot take it is refused (nothing is changed); with `--sshd` alone it is
/// skipped with a note. With `--undo` (of either) the line is removed. Returns whether the
/// line is to be in place (so `session_dir` is created).
fn session_change(
    o: &Options,
    config: Option<&Path>,
    session_dir: Option<&Path>,
    changes: &mut Vec<Change>,
) -> Result<bool> {
    if !o.session && !o.sshd {
        return Ok(false);
    }
    let path = Path::new(PAM_SSHD);
    if !path.exists() {
        if o.session {
            return Err(Failure::new(format!(
                "{PAM_SSHD} does not exist: is openssh-server installed?"
            )));
        }
        if !o.undo {
            jit_common::errln!(
                "jit-host: skipped the session line: {PAM_SSHD} does not exist (session-bound \
                 grants need it: jit-host setup --session)"
            );
        }
        return Ok(false);
    }
    if o.undo {
        changes.push(session_undo(path)?);
        return Ok(false);
    }
    // An unusable session_dir: refused before anything changes (--session), or skipped
    // like the other reasons (--sshd, where the session line is best effort).
    let insert = match session_dir.and_then(session_dir_problem) {
        Some(why) => Err(why),
        None => session_insert(path, &o.module, config)?,
    };
    match insert {
        Ok(c) => {
            changes.push(c);
            Ok(true)
        }
        Err(why) if o.session => Err(Failure::new(format!("{why}; nothing was changed"))),
        Err(why) => {
            jit_common::errln!(
                "jit-host: skipped the session line (session-bound grants will be denied here): {why}"
            );
            Ok(false)
        }
    }
}

/// The first sync (grants, revocation list, KRL from `server`), then the gate: without a
/// verified, fresh revocation list `pam_jit.so` denies every non-break-glass sudo and
/// `jit-host principals` every certificate, so in enforce mode setup refuses to change
/// anything and says what to do (in audit mode it warns).
fn first_sync(config: &Config) -> Result<()> {
    match config.servers.as_slice() {
        [] => jit_common::errln!("jit-host: host.toml has no `server`: no first sync"),
        servers => {
            jit_common::outln!("first sync from {}", servers.join(" or "));
            if let Err(f) = crate::sync::fetch_and_store(config, &[]) {
                jit_common::errln!("jit-host: first sync: {}", f.message);
            }
            if let Err(f) = crate::index::index_store(config) {
                jit_common::errln!("jit-host: first sync: {}", f.message);
            }
        }
    }
    let revs = revocation_state(
        config,
        &read_revocations(&config.state_dir),
        jit_common::now(),
    );
    let Some(problem) = revs.problem else {
        return Ok(());
    };
    let fix = if !config.servers.is_empty() {
        "fix the sync error above (jit-host sync shows it) and run setup again"
    } else {
        "set `server` in host.toml (jit-ca host-config writes it) and run setup again"
    };
    if config.mode == Mode::Audit {
        jit_common::errln!(
            "jit-host: warning: {problem}; audit mode allows sudo anyway, enforce mode would deny it; {fix}"
        );
        return Ok(());
    }
    Err(Failure::new(format!(
        "refusing to set up enforcement: {problem}, so every sudo and certificate login would be denied; {fix}"
    )))
}

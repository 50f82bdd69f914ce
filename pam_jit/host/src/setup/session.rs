//! `--session`: the `session optional pam_jit.so` line in `/etc/pam.d/sshd`, right after the
//! first `session ... pam_loginuid.so` line (so the session has its audit session id when
//! pam_jit binds it, and no `pam_env ... user_readenv=1` has run: a user's
//! `~/.pam_environment` must never feed `SSH_AUTH_INFO_0`), and its exact removal. Also the
//! reading of a PAM file that `jit-host check` reports on ([`readiness`]).

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use super::change::{Change, backup_path, read};
use crate::failure::{Failure, Result};

/// The comment line that marks the session line setup added.
pub const SESSION_MARKER: &str =
    "# jit: added by jit-host setup; undo with: jit-host setup --session --undo";
/// sshd's PAM service file.
pub const PAM_SSHD: &str = "/etc/pam.d/sshd";
/// The line a host without pam_loginuid needs (before the other session lines).
pub const LOGINUID_LINE: &str = "session required pam_loginuid.so";

/// The session line for `module` (and `config=`, as the sudo lines).
pub fn session_line(module: &str, config: Option<&Path>) -> String {
    match config {
        Some(c) => format!("session optional {module} config={}", c.display()),
        None => format!("session optional {module}"),
    }
}

/// One PAM rule: its type (without a leading `-`), module path and arguments.
#[derive(Debug, PartialEq, Eq)]
struct Rule<'a> {
    kind: &'a str,
    module: &'a str,
    args: Vec<&'a str>,
}

/// Parses one line of a PAM service file as Linux-PAM does: a `#` starts a comment anywhere;
/// a control in brackets may contain spaces. None: a comment, an empty line, an `@include`.
fn rule(line: &str) -> Option<Rule<'_>> {
    let line = line.split('#').next().unwrap_or("");
    let mut t = line.split_whitespace();
    let kind = t.next()?;
    if kind.starts_with('@') {
        return None;
    }
    let control = t.next()?;
    if control.starts_with('[') && !control.ends_with(']') {
        loop {
            if t.next()?.ends_with(']') {
                break;
            }
        }
    }
    let module = t.next()?;
    Some(Rule {
        kind: kind.trim_start_matches('-'),
        module,
        args: t.collect(),
    })
}

/// The file name of a module path.
fn module_name(module: &str) -> &str {
    module.rsplit('/').next().unwrap_or(module)
}

fn is_session(r: &Rule<'_>, name: &str) -> bool {
    r.kind == "session" && module_name(r.module) == name
}

/// A session rule of pam_jit: a module file named `pam_jit*.so` (or cargo's
/// `libpam_jit*.so`, which tests and hand installs may name).
fn is_jit_session(r: &Rule<'_>) -> bool {
    let m = module_name(r.module);
    let m = m.strip_prefix("lib").unwrap_or(m);
    r.kind == "session" && m.starts_with("pam_jit") && m.ends_with(".so")
}

fn is_readenv(r: &Rule<'_>) -> bool {
    r.kind == "session"
        && module_name(r.module) == "pam_env.so"
        && r.args.contains(&"user_readenv=1")
}

/// What a host's sshd PAM file says about binding (`jit-host check`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// A `session ... pam_jit.so` line is present.
    pub session_line: bool,
    /// A `session ... pam_loginuid.so` line comes before it (or, without one, exists at all).
    pub loginuid_before: bool,
    /// A `session ... pam_env.so ... user_readenv=1` line comes before it.
    pub readenv_before: bool,
}

/// Reads a PAM file's text for [`Readiness`].
pub fn readiness(text: &str) -> Readiness {
    let mut r = Readiness {
        session_line: false,
        loginuid_before: false,
        readenv_before: false,
    };
    let mut loginuid = false;
    let mut readenv = false;
    for line in text.lines() {
        let Some(rule) = rule(line) else { continue };
        if is_jit_session(&rule) {
            r.session_line = true;
            r.loginuid_before = loginuid;
            r.readenv_before = readenv;
            return r;
        }
        loginuid |= is_session(&rule, "pam_loginuid.so");
        readenv |= is_readenv(&rule);
    }
    r.loginuid_before = loginuid;
    r
}

/// What `--session` does to the text of `/etc/pam.d/sshd`: Ok(None) when there is nothing
/// to do (already set up), Ok(Some(new text)), or Err(why it cannot be placed) (no
/// pam_loginuid, or a `pam_env ... user_readenv=1` before it).
pub(super) fn insert_text(
    path: &Path,
    text: &str,
    module: &str,
    config: Option<&Path>,
) -> std::result::Result<Option<String>, String> {
    // Set up already, or a session line the administrator wrote: leave the file as it is.
    if text.lines().any(|l| l == SESSION_MARKER)
        || text.lines().filter_map(rule).any(|r| is_jit_session(&r))
    {
        return Ok(None);
    }
    let line = session_line(module, config);
    let mut out = String::with_capacity(text.len() + 128);
    let mut done = false;
    let mut readenv = None;
    for piece in text.split_inclusive('\n') {
        out.push_str(piece);
        if done {
            continue;
        }
        let Some(r) = rule(piece) else { continue };
        if is_readenv(&r) {
            readenv.get_or_insert_with(|| piece.trim_end().to_string());
        }
        if is_session(&r, "pam_loginuid.so") {
            if let Some(env) = &readenv {
                return Err(format!(
                    "{} runs `{env}` before pam_loginuid: a user's ~/.pam_environment could then \
                     set what pam_jit reads; move that line after `{}`, then run jit-host setup \
                     --session again",
                    path.display(),
                    piece.trim_end()
                ));
            }
            if !piece.ends_with('\n') {
                return Err(format!(
                    "{} does not end with a newline after its pam_loginuid line; add `{line}` \
                     after it by hand",
                    path.display()
                ));
            }
            out.push_str(SESSION_MARKER);
            out.push('\n');
            out.push_str(&line);
            out.push('\n');
            done = true;
        }
    }
    if !done {
        return Err(format!(
            "{} has no pam_loginuid session line, so SSH sessions get no audit session id and \
             session-bound grants cannot be bound; add `{LOGINUID_LINE}` before the other \
             session lines, then run jit-host setup --session again",
            path.display()
        ));
    }
    Ok(Some(out))
}

/// The change that adds the session line to `path`; Err(why) (inner) when it cannot be
/// placed, which `--session` refuses with and `--sshd` reports as skipped.
pub(super) fn session_insert(
    path: &Path,
    module: &str,
    config: Option<&Path>,
) -> Result<std::result::Result<Change, String>> {
    let (old, mode) = read(path)?;
    let text = String::from_utf8(old.clone())
        .map_err(|_| Failure::new(format!("{} is not UTF-8", path.display())))?;
    let new = match insert_text(path, &text, module, config) {
        Err(why) => return Ok(Err(why)),
        Ok(None) => old.clone(),
        Ok(Some(t)) => t.into_bytes(),
    };
    let backup = backup_path(path);
    let backup = (new != old && !backup.exists()).then(|| (backup, Some(old.clone())));
    Ok(Ok(Change {
        path: path.to_path_buf(),
        old: Some(old),
        new: Some(new),
        mode,
        backup,
    }))
}

/// The text without what [`insert_text`] added (the marker and the session line after it).
pub(super) fn undo_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pieces = text.split_inclusive('\n').peekable();
    while let Some(piece) = pieces.next() {
        if piece.trim_end_matches('\n') == SESSION_MARKER {
            if let Some(next) = pieces.peek()
                && rule(next).is_some_and(|r| is_jit_session(&r))
            {
                pieces.next();
            }
            continue;
        }
        out.push_str(piece);
    }
    out
}

/// The change that removes the session line from `path`, and the backup when the result is
/// what it holds.
pub(super) fn session_undo(path: &Path) -> Result<Change> {
    let (old, mode) = read(path)?;
    let text = String::from_utf8(old.clone())
        .map_err(|_| Failure::new(format!("{} is not UTF-8", path.display())))?;
    let out = undo_text(&text);
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
    Ok(Change {
        path: path.to_path_buf(),
        old: Some(old),
        new: Some(out.into_bytes()),
        mode,
        backup: remove_backup,
    })
}

/// Creates `dir` (the bindings' directory) root-owned 0700, and a missing parent 0755; an
/// existing one must be a root-owned directory, not a symlink, not group/world-writable
/// (a wider mode is narrowed to 0700). Returns what it did, for the output.
pub fn ensure_session_dir(dir: &Path) -> Result<Option<String>> {
    use std::os::unix::fs::DirBuilderExt as _;
    if let Some(parent) = dir.parent()
        && !parent.exists()
    {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(parent)
            .map_err(|e| Failure::new(format!("cannot create {}: {e}", parent.display())))?;
    }
    match fs::symlink_metadata(dir) {
        Err(_) => {
            fs::DirBuilder::new()
                .mode(0o700)
                .create(dir)
                .map_err(|e| Failure::new(format!("cannot create {}: {e}", dir.display())))?;
            std::os::unix::fs::chown(dir, Some(0), Some(0))
                .map_err(|e| Failure::new(format!("cannot chown {}: {e}", dir.display())))?;
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Failure::new(format!("cannot chmod {}: {e}", dir.display())))?;
            Ok(Some(format!("created {} (root, 0700)", dir.display())))
        }
        Ok(m) if !m.is_dir() => Err(Failure::new(format!(
            "{} (session_dir) is not a directory (a symlink?); remove it and run setup again",
            dir.display()
        ))),
        Ok(m) if m.uid() != 0 => Err(Failure::new(format!(
            "{} (session_dir) is owned by uid {}, not root: whoever owns it could forge \
             bindings; remove it and run setup again",
            dir.display(),
            m.uid()
        ))),
        Ok(m) if m.mode() & 0o7777 != 0o700 => {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| Failure::new(format!("cannot chmod {}: {e}", dir.display())))?;
            Ok(Some(format!(
                "{}: mode {:o} narrowed to 0700",
                dir.display(),
                m.mode() & 0o7777
            )))
        }
        Ok(_) => Ok(None),
    }
}

#[cfg(test)]
mod tests;

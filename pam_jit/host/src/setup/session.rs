//! `--session`: the `session optional pam_jit.so` line in `/etc/pam.d/sshd`, right after the
//! first `session ... pam_loginuid.so` line (so the session has its audit session id when
//! pam_jit binds it, and no `pam_env ... user_readenv=1` has run: a user's
//! `~/.pam_environment` must never feed `SSH_AUTH_INFO_0`), and its exact removal. Also the
//! reading of a PAM file that `jit-host check` reports on ([`readiness`]).

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use super::change::{Change, backup_path, read, undo_change};
use super::pamfile::{
    Rule, Step, is_unread, jumps, module_name, read_includes, rule, session_steps,
};
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

/// Where a step is, for messages: "line 7 `session ...`" (or "... (in included file X)").
fn place(s: &Step<'_>) -> String {
    match &s.via {
        None => format!("line {} `{}`", s.line, s.text),
        Some(x) => format!("`{}` (line {} includes {x})", s.text, s.line),
    }
}

/// What a host's sshd PAM file says about binding (`jit-host check`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Readiness {
    /// A `session ... pam_jit.so` line is present.
    pub session_line: bool,
    /// A `session ... pam_loginuid.so` line comes directly before every pam_jit line (or,
    /// without one, exists directly in the file at all).
    pub loginuid_before: bool,
    /// A `session ... pam_env.so ... user_readenv=1` rule (directly or in an included file)
    /// runs before a pam_jit line.
    pub readenv_before: bool,
    /// pam_loginuid is reached only through this included file.
    pub loginuid_via: Option<String>,
    /// Where that pam_env rule is.
    pub readenv_at: Option<String>,
    /// Other placement problems (a second pam_jit line, one not right after pam_loginuid,
    /// one in an included file), one line each with what to move or remove.
    pub placement: Vec<String>,
}

impl Readiness {
    /// Each problem with its fix, one line each (empty: this file binds).
    pub fn problems(&self, file: &Path) -> Vec<String> {
        let file = file.display();
        let mut p = Vec::new();
        if !self.session_line {
            p.push(format!(
                "{file} has no `session optional pam_jit.so` line, so no SSH connection is \
                 bound (jit-host setup --session)"
            ));
        }
        if !self.loginuid_before {
            p.push(match &self.loginuid_via {
                Some(x) => format!(
                    "{file} has no `{LOGINUID_LINE}` before pam_jit.so: it gets pam_loginuid \
                     only through {x}, but the line must be directly in {file} before \
                     pam_jit.so; add it there (a second pam_loginuid is harmless)"
                ),
                None => format!(
                    "{file} has no `{LOGINUID_LINE}` before pam_jit.so, so sessions have no \
                     audit session id of their own; add it before the other session lines"
                ),
            });
        }
        if self.readenv_before {
            p.push(format!(
                "{file} runs `pam_env.so user_readenv=1` before pam_jit.so{}: a user's \
                 ~/.pam_environment could feed what pam_jit reads; move pam_jit.so right after \
                 pam_loginuid",
                self.readenv_at
                    .as_deref()
                    .map(|a| format!(" ({a})"))
                    .unwrap_or_default()
            ));
        }
        p.extend(self.placement.iter().cloned());
        p
    }
}

/// Reads a PAM file's text for [`Readiness`], without following includes.
pub fn readiness(text: &str) -> Readiness {
    readiness_in(Path::new(PAM_SSHD), text, &[], None)
}

/// Reads a PAM file's text for [`Readiness`], with its included files' texts (`includes`,
/// see [`pamfile::read_includes`]); `module` also counts as pam_jit (setup's `--module`).
pub fn readiness_in(
    file: &Path,
    text: &str,
    includes: &[(String, String)],
    module: Option<&str>,
) -> Readiness {
    let steps = session_steps(text, includes);
    let is_jit =
        |s: &Step<'_>| is_jit_session(&s.rule) || module.is_some_and(|m| s.rule.module == m);
    let direct_loginuid = |s: &Step<'_>| s.via.is_none() && is_session(&s.rule, "pam_loginuid.so");
    let jits: Vec<usize> = (0..steps.len()).filter(|&i| is_jit(&steps[i])).collect();
    let mut r = Readiness::default();
    let before = |upto: usize| steps.iter().take(upto);
    let Some(&last) = jits.last() else {
        r.loginuid_before = steps.iter().any(direct_loginuid);
        if !r.loginuid_before {
            r.loginuid_via = loginuid_via(steps.iter());
        }
        return r;
    };
    r.session_line = true;
    r.loginuid_before = jits.iter().all(|&j| before(j).any(direct_loginuid));
    if !r.loginuid_before {
        r.loginuid_via = loginuid_via(before(last));
    }
    if let Some(env) = before(last).find(|s| is_readenv(&s.rule)) {
        r.readenv_before = true;
        r.readenv_at = Some(place(env));
    }
    let file = file.display();
    if let Some(u) = before(last).find(|s| is_unread(s)) {
        r.placement
            .push(unread_problem(&file.to_string(), u, "pam_jit.so"));
    }
    if jits.len() > 1 {
        let all: Vec<String> = jits.iter().map(|&j| place(&steps[j])).collect();
        r.placement.push(format!(
            "{file} runs pam_jit.so {} times ({}): keep only the one right after pam_loginuid \
             and remove the others",
            jits.len(),
            all.join(", ")
        ));
    }
    for &j in &jits {
        let s = &steps[j];
        if let Some(x) = &s.via {
            r.placement.push(format!(
                "{file} runs pam_jit.so from the included file {x} (line {}): remove it there \
                 and put it in {file} right after pam_loginuid",
                s.line
            ));
            continue;
        }
        let ordered = before(j).any(direct_loginuid) && !before(j).any(|s| is_readenv(&s.rule));
        let prev = j.checked_sub(1).and_then(|p| steps.get(p));
        if ordered && !prev.is_some_and(direct_loginuid) {
            r.placement.push(format!(
                "{file} {} is not right after pam_loginuid{}: move it right after \
                 `{LOGINUID_LINE}`",
                place(s),
                prev.map(|p| format!(" ({} runs between)", place(p)))
                    .unwrap_or_default()
            ));
        }
    }
    r
}

/// An include before `what` that jit-host did not follow: what it runs is unknown.
fn unread_problem(file: &str, u: &Step<'_>, what: &str) -> String {
    let at = match &u.via {
        None => format!("line {}", u.line),
        Some(x) => format!("{x} (included at line {})", u.line),
    };
    format!(
        "{file} {at} includes {} before {what}, which jit-host could not read (only plain \
         readable names under /etc/pam.d, up to 64 KiB, one level deep), so it cannot verify \
         that no `pam_env.so user_readenv=1` runs before pam_jit.so; put pam_jit.so right \
         after a pam_loginuid line above that include",
        u.rule.module
    )
}

fn loginuid_via<'a, 'b: 'a>(mut steps: impl Iterator<Item = &'a Step<'b>>) -> Option<String> {
    steps
        .find(|s| s.via.is_some() && is_session(&s.rule, "pam_loginuid.so"))
        .and_then(|s| s.via.clone())
}

/// What `--session` does to the text of `/etc/pam.d/sshd` (whose included files' texts are
/// `includes`): Ok(None) when there is nothing to do (set up, and in the right place),
/// Ok(Some(new text)), or Err(why it cannot be placed, or what to move or remove).
pub(super) fn insert_text(
    path: &Path,
    text: &str,
    includes: &[(String, String)],
    module: &str,
    config: Option<&Path>,
) -> std::result::Result<Option<String>, String> {
    let pieces: Vec<&str> = text.split_inclusive('\n').collect();
    for (i, piece) in pieces.iter().enumerate() {
        if piece.trim_end() == SESSION_MARKER
            && pieces.get(i + 1).and_then(|n| rule(n)).is_none_or(|r| {
                !(is_jit_session(&r) || (r.kind == "session" && r.module == module))
            })
        {
            return Err(format!(
                "{} has the line `{SESSION_MARKER}` (line {}) but no pam_jit session line \
                 after it: remove that line, then run jit-host setup --session again",
                path.display(),
                i + 1
            ));
        }
    }
    let r = readiness_in(path, text, includes, Some(module));
    if r.session_line {
        // Set up already, or a session line the administrator wrote: it must be in place.
        let problems = r.problems(path);
        return if problems.is_empty() {
            Ok(None)
        } else {
            Err(problems.join("; "))
        };
    }
    let line = session_line(module, config);
    let steps = session_steps(text, includes);
    let Some(p) = steps
        .iter()
        .position(|s| s.via.is_none() && is_session(&s.rule, "pam_loginuid.so"))
    else {
        return Err(match r.loginuid_via {
            Some(x) => format!(
                "{} gets pam_loginuid only through {x}, but pam_jit.so must come after a \
                 pam_loginuid line directly in {0}; add `{LOGINUID_LINE}` before the other \
                 session lines of {0} (a second pam_loginuid is harmless), then run jit-host \
                 setup --session again",
                path.display()
            ),
            None => format!(
                "{} has no pam_loginuid session line, so SSH sessions get no audit session id \
                 and session-bound grants cannot be bound; add `{LOGINUID_LINE}` before the \
                 other session lines, then run jit-host setup --session again",
                path.display()
            ),
        });
    };
    let loginuid = &steps[p];
    if let Some(u) = steps.iter().take(p).find(|s| is_unread(s)) {
        return Err(format!(
            "{}, then run jit-host setup --session again",
            unread_problem(&path.display().to_string(), u, "pam_loginuid")
        ));
    }
    if let Some(env) = steps.iter().take(p).find(|s| is_readenv(&s.rule)) {
        return Err(format!(
            "{} runs `{}` before pam_loginuid{}: a user's ~/.pam_environment could then set \
             what pam_jit reads; move that line after `{}`, then run jit-host setup --session \
             again",
            path.display(),
            env.text,
            env.via
                .as_ref()
                .map(|x| format!(" (in {x}, included on line {})", env.line))
                .unwrap_or_default(),
            loginuid.text
        ));
    }
    // Included rules count too: Linux-PAM inlines `@include`/`include` into one stack (a
    // `substack` confines its jumps, but it is counted the same way here, erring on refusal).
    for (i, s) in steps.iter().enumerate().take(p + 1) {
        if let Some(n) = jumps(&s.rule.control).find(|&n| n > 0 && i + n >= p) {
            return Err(format!(
                "{} line {} `{}`{} jumps over {n} rule(s), and a line inserted after \
                 pam_loginuid would change where it lands; add `{line}` right after \
                 pam_loginuid by hand and adjust that jump",
                path.display(),
                s.line,
                s.text,
                s.via
                    .as_ref()
                    .map(|x| format!(" (in {x}, included there)"))
                    .unwrap_or_default()
            ));
        }
    }
    let Some(after) = pieces.get(loginuid.line - 1) else {
        return Err(format!(
            "{}: line {} is missing",
            path.display(),
            loginuid.line
        ));
    };
    if !after.ends_with('\n') {
        return Err(format!(
            "{} does not end with a newline after its pam_loginuid line; add `{line}` after it \
             by hand",
            path.display()
        ));
    }
    let eol = if after.ends_with("\r\n") {
        "\r\n"
    } else {
        "\n"
    };
    let mut out = String::with_capacity(text.len() + 128);
    for (i, piece) in pieces.iter().enumerate() {
        out.push_str(piece);
        if i + 1 == loginuid.line {
            out.push_str(SESSION_MARKER);
            out.push_str(eol);
            out.push_str(&line);
            out.push_str(eol);
        }
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
    let includes = read_includes(path.parent().unwrap_or(Path::new("/etc/pam.d")), &text);
    let new = match insert_text(path, &text, &includes, module, config) {
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

/// Whether `line` is what [`insert_text`] writes: `session optional MODULE` with nothing
/// else or `config=...` (any module path: `--module` may have named any).
fn is_inserted_line(line: &str) -> bool {
    let t: Vec<&str> = line.split_whitespace().collect();
    // The module's file name must name jit (`pam_jit.so`, `/opt/x/jit.so`): a line the
    // administrator wrote after an orphaned marker (`session optional pam_motd.so`) stays.
    let jit = |m: &str| m.rsplit('/').next().unwrap_or(m).contains("jit");
    match t.as_slice() {
        ["session", "optional", m] => jit(m),
        ["session", "optional", m, c] => jit(m) && c.starts_with("config="),
        _ => false,
    }
}

/// The text without what [`insert_text`] added (the marker and the session line after it).
pub(super) fn undo_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pieces = text.split_inclusive('\n').peekable();
    while let Some(piece) = pieces.next() {
        if piece.trim_end() == SESSION_MARKER {
            if let Some(next) = pieces.peek()
                && (rule(next).is_some_and(|r| is_jit_session(&r)) || is_inserted_line(next))
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
    Ok(undo_change(path, old, mode, out))
}

/// Why `dir` (session_dir) cannot be used, checked before setup changes anything: the
/// refusals of [`ensure_session_dir`] (not a directory, a symlink, not owned by root).
/// None: it is fine, or it does not exist yet (created then).
pub fn session_dir_problem(dir: &Path) -> Option<String> {
    match fs::symlink_metadata(dir) {
        Err(_) => None,
        Ok(m) if !m.is_dir() => Some(format!(
            "{} (session_dir) is not a directory (a symlink?); remove it and run setup again",
            dir.display()
        )),
        Ok(m) if m.uid() != 0 => Some(format!(
            "{} (session_dir) is owned by uid {}, not root: whoever owns it could forge \
             bindings; remove it and run setup again",
            dir.display(),
            m.uid()
        )),
        Ok(_) => None,
    }
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

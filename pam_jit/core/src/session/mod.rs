//! Session bindings: which SSH connection a session-bound grant was delivered by.
//!
//! ```text
//! <session_dir>/                  root:root 0700 (default /run/jit/sessions)
//!   <SESSIONID>.binding           root:root 0600, JSON Binding, at most 4 KiB
//! ```
//!
//! `pam_jit.so`'s session hook (in sshd's per-connection privileged process, after
//! `pam_loginuid`) writes one binding per audit session id; `close_session` turns it into a
//! tombstone (`ended_at`, `ended_by`); `jit-host end-session` does the same and `jit-host gc`
//! deletes tombstones and dead bindings. At sudo, a session-bound grant allows only with the
//! caller's session's binding, for that user, grant and certificate serial, not ended, from
//! this boot, with its leader process still alive (pid and start time, as sudo's own
//! timestamp records check).
//!
//! * this module: the [`Binding`] format and the read side ([`read_binding`],
//!   [`list_bindings`], [`liveness`]); used by the sudo decision and `jit-host`.
//! * [`proc`]: audit session id, process start times, boot id (reads of `/proc`).
//! * [`write`]: the only writer (atomic create/replace/remove); called by the session hooks
//!   of `pam_jit.so` and by `jit-host`, never by the account (sudo) path.

pub mod bind;
pub mod proc;
pub mod write;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use jit_common::UnixTime;
use jit_common::secure_file::{self, FileError, Policy};

pub use proc::{UNSET_SESSION_ID, own_session_id};

/// The binding format version.
pub const BINDING_VERSION: u64 = 1;
/// Binding file name suffix.
pub const BINDING_SUFFIX: &str = ".binding";
/// Largest binding file read, in bytes.
pub const MAX_BINDING_SIZE: u64 = 4096;
/// Most directory entries [`list_bindings`] looks at.
pub const MAX_BINDINGS_LISTED: usize = 4096;
/// `ended_by` when the connection's `close_session` ran.
pub const ENDED_BY_LOGOUT: &str = "logout";
/// `ended_by` when an administrator ended it.
pub const ENDED_BY_TOOL: &str = "jit-host end-session";
/// Longest `client`, `tty` or `ended_by`, in bytes.
pub const MAX_TEXT: usize = 256;

/// One SSH connection's binding of a session-bound grant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Binding {
    /// [`BINDING_VERSION`].
    pub version: u64,
    /// The audit session id (`/proc/self/sessionid` of the session hook).
    pub session_id: u32,
    /// The login user (`PAM_USER`), the grant's user.
    pub user: String,
    /// The grant's id.
    pub grant_id: String,
    /// The grant's role.
    pub role: String,
    /// The serial of the certificate that carried the grant (the grant's `cert_serial`).
    pub serial: u64,
    /// The session leader: the process that ran the session hook (sshd's per-connection
    /// privileged process, alive at most as long as the connection: a `kill -9` of it
    /// leaves the connection and its shell running, and the binding dead).
    pub leader_pid: u32,
    /// The leader's start time: field 22 of `/proc/<leader_pid>/stat`.
    pub leader_start: u64,
    /// `/proc/sys/kernel/random/boot_id` when the binding was written.
    pub boot_id: String,
    /// When the binding was written.
    pub since: UnixTime,
    /// `PAM_RHOST`, or `-`.
    pub client: String,
    /// `PAM_TTY`, or `-`.
    pub tty: String,
    /// The grant's `not_after`.
    pub not_after: UnixTime,
    /// When the connection ended (a tombstone), if it did.
    #[serde(default)]
    pub ended_at: Option<UnixTime>,
    /// Who ended it: [`ENDED_BY_LOGOUT`] or [`ENDED_BY_TOOL`].
    #[serde(default)]
    pub ended_by: Option<String>,
}

fn check_text(name: &str, v: &str) -> Result<(), String> {
    if v.is_empty() || v.len() > MAX_TEXT {
        return Err(format!("{name} must be 1-{MAX_TEXT} bytes"));
    }
    if let Some(c) = v.chars().find(|&c| jit_common::text::is_hidden(c)) {
        return Err(format!(
            "{name} contains the control or format character U+{:04X}",
            u32::from(c)
        ));
    }
    Ok(())
}

/// Whether `id` can be an audit session id of a login session (not 0, not unset).
pub fn is_session_id(id: u32) -> bool {
    id != 0 && id != UNSET_SESSION_ID
}

impl Binding {
    /// Checks every field's shape.
    pub fn validate(&self) -> Result<(), String> {
        if self.version != BINDING_VERSION {
            return Err(format!(
                "binding version {} is not supported (expected {BINDING_VERSION})",
                self.version
            ));
        }
        if !is_session_id(self.session_id) {
            return Err(format!(
                "session_id {} is not a session id",
                self.session_id
            ));
        }
        jit_common::grant::check_user("user", &self.user).map_err(|e| e.to_string())?;
        jit_common::grant::check_id("grant_id", &self.grant_id).map_err(|e| e.to_string())?;
        jit_common::grant::check_id("role", &self.role).map_err(|e| e.to_string())?;
        if self.leader_pid <= 1 {
            return Err(format!("leader_pid {} is not a leader", self.leader_pid));
        }
        if !proc::is_boot_id(&self.boot_id) {
            return Err(format!("boot_id {:?} is not a boot id", self.boot_id));
        }
        check_text("client", &self.client)?;
        check_text("tty", &self.tty)?;
        match (&self.ended_at, &self.ended_by) {
            (None, None) => {}
            (Some(_), Some(by)) => check_text("ended_by", by)?,
            _ => return Err("ended_at and ended_by must be set together".into()),
        }
        Ok(())
    }

    /// The file's bytes (JSON, one line, newline-terminated).
    pub fn to_bytes(&self) -> Result<Vec<u8>, String> {
        let mut v = serde_json::to_vec(self).map_err(|e| format!("cannot encode binding: {e}"))?;
        v.push(b'\n');
        Ok(v)
    }

    /// Parses and validates a binding file's bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, String> {
        let b: Self =
            serde_json::from_slice(bytes).map_err(|e| format!("not a valid binding: {e}"))?;
        b.validate()
            .map_err(|e| format!("not a valid binding: {e}"))?;
        Ok(b)
    }
}

/// `<session_dir>/<id>.binding`.
pub fn binding_path(session_dir: &Path, id: u32) -> PathBuf {
    session_dir.join(format!("{id}{BINDING_SUFFIX}"))
}

/// The session id a binding file name stands for (`123.binding` -> 123): plain decimal,
/// no sign, no leading zero.
pub fn id_of_file_name(name: &str) -> Option<u32> {
    let digits = name.strip_suffix(BINDING_SUFFIX)?;
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok().filter(|id| is_session_id(*id))
}

/// Reads session `id`'s binding: `Ok(None)` if there is none (or no session directory);
/// `Err` naming the problem if the file (or a directory above it) is not root-owned, is
/// group/world-writable, is a symlink, is larger than [`MAX_BINDING_SIZE`], does not parse,
/// or is for another session id.
pub fn read_binding(session_dir: &Path, id: u32) -> Result<Option<Binding>, String> {
    let path = binding_path(session_dir, id);
    let bytes = match secure_file::read(&path, &Policy::root_only(MAX_BINDING_SIZE)) {
        Ok(b) => b,
        Err(FileError::NotFound { .. }) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let b = Binding::from_bytes(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    if b.session_id != id {
        return Err(format!(
            "{}: holds the binding of session {}, not {id}",
            path.display(),
            b.session_id
        ));
    }
    Ok(Some(b))
}

/// Every binding in `session_dir`, sorted by session id, and one line per file refused or
/// unreadable. Looks at most at [`MAX_BINDINGS_LISTED`] entries (a problem line says when
/// there were more). A missing directory has no bindings.
pub fn list_bindings(session_dir: &Path) -> (Vec<Binding>, Vec<String>) {
    let mut problems = Vec::new();
    match secure_file::check_dir(session_dir, &Policy::root_only(0)) {
        Ok(()) => {}
        Err(FileError::NotFound { .. }) => return (Vec::new(), problems),
        Err(e) => {
            problems.push(e.to_string());
            return (Vec::new(), problems);
        }
    }
    let entries = match std::fs::read_dir(session_dir) {
        Ok(e) => e,
        Err(e) => {
            problems.push(format!("{}: {e}", session_dir.display()));
            return (Vec::new(), problems);
        }
    };
    let mut ids = Vec::new();
    for (seen, entry) in entries.enumerate() {
        if seen >= MAX_BINDINGS_LISTED {
            problems.push(format!(
                "{}: more than {MAX_BINDINGS_LISTED} entries; only the first were read",
                session_dir.display()
            ));
            break;
        }
        let Ok(entry) = entry else { continue };
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        match id_of_file_name(name) {
            Some(id) => ids.push(id),
            // Temporary files of a writer at work start with '.'.
            None if name.starts_with('.') => {}
            None => problems.push(format!(
                "{}: not a binding file name (<session id>{BINDING_SUFFIX})",
                session_dir.join(name).display()
            )),
        }
    }
    ids.sort_unstable();
    let mut out = Vec::new();
    for id in ids {
        match read_binding(session_dir, id) {
            Ok(Some(b)) => out.push(b),
            Ok(None) => {}
            Err(e) => problems.push(e),
        }
    }
    (out, problems)
}

/// Whether a binding's connection is still there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Liveness {
    /// Not ended, this boot, its leader process alive with the recorded start time.
    Alive,
    /// A tombstone: the connection ended (`close_session` or `jit-host end-session`).
    Ended {
        /// `ended_at`.
        at: UnixTime,
        /// `ended_by`.
        by: String,
    },
    /// The leader process is gone (or its pid now belongs to another process): the
    /// connection died without `close_session` (kill -9, crash).
    LeaderGone {
        /// The recorded leader pid.
        pid: u32,
    },
    /// Written during an earlier boot.
    OtherBoot,
    /// The kernel's view could not be read (why).
    Unreadable(String),
}

impl Liveness {
    /// Only [`Liveness::Alive`] is alive.
    pub fn is_alive(&self) -> bool {
        matches!(self, Self::Alive)
    }

    /// A short human reason: `alive`, `ended at 2026-... by logout`, `leader pid 123 is
    /// gone`, `from an earlier boot`, `unreadable: ...`.
    pub fn describe(&self) -> String {
        match self {
            Self::Alive => "alive".into(),
            Self::Ended { at, by } => {
                format!("ended at {} by {by}", jit_common::time::format_utc(*at))
            }
            Self::LeaderGone { pid } => format!("leader pid {pid} is gone"),
            Self::OtherBoot => "from an earlier boot".into(),
            Self::Unreadable(why) => format!("unreadable: {why}"),
        }
    }
}

/// Whether `b`'s connection is alive now: checked in this order: ended (tombstone), boot id,
/// leader pid with the recorded start time.
pub fn liveness(b: &Binding) -> Liveness {
    liveness_with(b, proc::boot_id(), proc::start_time)
}

/// [`liveness`] with the kernel's answers passed in.
pub fn liveness_with(
    b: &Binding,
    boot_id: Result<String, String>,
    start_time: impl FnOnce(u32) -> Result<Option<u64>, String>,
) -> Liveness {
    if let (Some(at), by) = (b.ended_at, &b.ended_by) {
        return Liveness::Ended {
            at,
            by: by.clone().unwrap_or_else(|| "-".into()),
        };
    }
    match boot_id {
        Ok(now) if now == b.boot_id => {}
        Ok(_) => return Liveness::OtherBoot,
        Err(e) => return Liveness::Unreadable(e),
    }
    match start_time(b.leader_pid) {
        Ok(Some(start)) if start == b.leader_start => Liveness::Alive,
        Ok(_) => Liveness::LeaderGone { pid: b.leader_pid },
        Err(e) => Liveness::Unreadable(e),
    }
}

#[cfg(test)]
mod tests;

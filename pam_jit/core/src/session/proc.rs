//! What the kernel says about sessions and processes: the audit session id
//! (`/proc/<pid>/sessionid`), a process's start time (field 22 of `/proc/<pid>/stat`) and the
//! boot id (`/proc/sys/kernel/random/boot_id`). Reads only, each bounded.

use std::fs::File;
use std::io::Read;
use std::path::Path;

/// The audit session id of a process that is in no login session (`pam_loginuid` never set
/// it): `(u32)-1`.
pub const UNSET_SESSION_ID: u32 = u32::MAX;

/// Largest `/proc` file read here (a `stat` line is well under 1 KiB).
const MAX_PROC_READ: u64 = 4096;

fn read_small(path: &Path) -> Result<String, std::io::Error> {
    let mut s = String::new();
    File::open(path)?
        .take(MAX_PROC_READ)
        .read_to_string(&mut s)?;
    Ok(s)
}

/// Parses the contents of a `sessionid` file: `None` for the unset value or anything else
/// that is not a decimal `u32`.
pub fn parse_session_id(text: &str) -> Option<u32> {
    match text.trim().parse::<u32>() {
        Ok(UNSET_SESSION_ID) | Err(_) => None,
        Ok(id) => Some(id),
    }
}

/// This process's audit session id (`/proc/self/sessionid`), `None` when it is unset
/// (no `pam_loginuid` at login) or cannot be read (no audit support in the kernel).
/// Set by `pam_loginuid` at login, inherited by every descendant, and not changeable by
/// the user afterwards.
pub fn own_session_id() -> Option<u32> {
    read_small(Path::new("/proc/self/sessionid"))
        .ok()
        .as_deref()
        .and_then(parse_session_id)
}

/// The audit session id of process `pid` (`/proc/<pid>/sessionid`), `None` when unset or
/// unreadable.
pub fn session_id_of(pid: u32) -> Option<u32> {
    read_small(Path::new(&format!("/proc/{pid}/sessionid")))
        .ok()
        .as_deref()
        .and_then(parse_session_id)
}

/// This process's login uid (`/proc/self/loginuid`, set by `pam_loginuid` to the user's
/// uid), `None` when unset or unreadable.
pub fn own_loginuid() -> Option<u32> {
    read_small(Path::new("/proc/self/loginuid"))
        .ok()
        .as_deref()
        .and_then(parse_session_id)
}

/// What `/proc/<pid>/stat` says about a process's existence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcState {
    /// Running (or sleeping, stopped...), with this start time (clock ticks since boot).
    Running {
        /// Field 22, `starttime`.
        start: u64,
    },
    /// No such process, or a zombie (it has exited and only awaits its parent).
    Gone,
}

/// Parses a `/proc/<pid>/stat` line: the fields after the LAST `)` (the command name in
/// parentheses may itself contain `)` and spaces) are field 3 (`state`) onwards, so field 22
/// (`starttime`) is the 20th of them. A zombie (`Z`) or dead (`X`) process is [`ProcState::Gone`].
pub fn parse_stat(text: &str) -> Result<ProcState, String> {
    let close = text
        .rfind(')')
        .ok_or_else(|| "no ')' after the command name".to_string())?;
    let rest = text
        .get(close + 1..)
        .ok_or_else(|| "nothing after the command name".to_string())?;
    let mut fields = rest.split_ascii_whitespace();
    let state = fields.next().ok_or_else(|| "no state field".to_string())?;
    if matches!(state, "Z" | "X" | "x") {
        return Ok(ProcState::Gone);
    }
    // `state` was field 3; field 22 is 19 further on.
    let start = fields
        .nth(18)
        .ok_or_else(|| "fewer than 22 fields".to_string())?;
    start
        .parse::<u64>()
        .map(|start| ProcState::Running { start })
        .map_err(|_| format!("field 22 {start:?} is not a number"))
}

/// The state of process `pid` as `/proc/<pid>/stat` shows it now.
pub fn proc_state(pid: u32) -> Result<ProcState, String> {
    if pid == 0 {
        return Ok(ProcState::Gone);
    }
    let path = format!("/proc/{pid}/stat");
    match read_small(Path::new(&path)) {
        Ok(text) => parse_stat(&text).map_err(|e| format!("{path}: {e}")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(ProcState::Gone),
        // ESRCH: the process exited while being read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(ProcState::Gone),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

/// The start time (field 22 of `/proc/<pid>/stat`) of a live process, `None` if it is gone.
pub fn start_time(pid: u32) -> Result<Option<u64>, String> {
    Ok(match proc_state(pid)? {
        ProcState::Running { start } => Some(start),
        ProcState::Gone => None,
    })
}

/// The start time of this process (for the session leader, which runs the session hook).
pub fn own_start_time() -> Result<u64, String> {
    let text =
        read_small(Path::new("/proc/self/stat")).map_err(|e| format!("/proc/self/stat: {e}"))?;
    match parse_stat(&text).map_err(|e| format!("/proc/self/stat: {e}"))? {
        ProcState::Running { start } => Ok(start),
        ProcState::Gone => Err("/proc/self/stat says this process is a zombie".into()),
    }
}

/// Whether `s` has the shape of a boot id (a lower-case UUID).
pub fn is_boot_id(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// The current boot's id (`/proc/sys/kernel/random/boot_id`), new at every boot.
pub fn boot_id() -> Result<String, String> {
    let path = "/proc/sys/kernel/random/boot_id";
    let text = read_small(Path::new(path)).map_err(|e| format!("{path}: {e}"))?;
    let id = text.trim();
    if is_boot_id(id) {
        Ok(id.to_string())
    } else {
        Err(format!("{path}: {id:?} is not a boot id"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_ids() {
        assert_eq!(parse_session_id("7\n"), Some(7));
        assert_eq!(parse_session_id("4294967295"), None);
        assert_eq!(parse_session_id(""), None);
        assert_eq!(parse_session_id("-1"), None);
        assert_eq!(parse_session_id("12x"), None);
        // Whatever this test process has, it parses or is None without panicking.
        let _ = own_session_id();
        let _ = own_loginuid();
        assert_eq!(session_id_of(0), None);
        assert_eq!(session_id_of(std::process::id()), own_session_id());
    }

    #[test]
    fn stat_lines_are_parsed_after_the_last_paren() {
        let tail = "S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 424242 20 21";
        assert_eq!(
            parse_stat(&format!("123 (sshd) {tail}")),
            Ok(ProcState::Running { start: 424242 })
        );
        // A command name with ") " inside cannot shift the fields.
        assert_eq!(
            parse_stat(&format!(
                "123 (a) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 9 (x) {tail}"
            )),
            Ok(ProcState::Running { start: 424242 })
        );
        assert_eq!(
            parse_stat("123 (sshd) Z 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 5"),
            Ok(ProcState::Gone)
        );
        assert!(parse_stat("123 sshd S 1 2").is_err());
        assert!(parse_stat("123 (sshd) S 1 2 3").is_err());
        assert!(parse_stat("123 (sshd) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 x").is_err());
    }

    #[test]
    fn this_process_and_the_boot() {
        let me = own_start_time().unwrap();
        assert_eq!(start_time(std::process::id()).unwrap(), Some(me));
        assert_eq!(start_time(0).unwrap(), None);
        assert_eq!(start_time(u32::MAX - 1).unwrap(), None);
        let b = boot_id().unwrap();
        assert!(is_boot_id(&b), "{b}");
        assert!(!is_boot_id("not-a-boot-id"));
        assert!(!is_boot_id("ABCDEF01-0000-0000-0000-000000000000"));
    }
}

//! Safe wrappers around the few libc calls the host side needs: the real uid, passwd
//! look-ups and the kernel host name. Also used by `jit-host`, so that its crate can
//! `forbid(unsafe_code)`.
#![allow(unsafe_code)] // libc FFI: every block carries a `// SAFETY:` comment.

use std::ffi::{CStr, CString};

/// The real uid of this process (for sudo: the invoking user; the effective uid is 0).
pub fn real_uid() -> u32 {
    // SAFETY: getuid(2) takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::getuid() }
}

/// The effective uid of this process.
pub fn effective_uid() -> u32 {
    // SAFETY: geteuid(2) takes no arguments, cannot fail and touches no memory of ours.
    unsafe { libc::geteuid() }
}

/// The parent process id (`getppid(2)`): for sshd's per-connection privileged process, the
/// sshd listener.
pub fn parent_pid() -> u32 {
    // SAFETY: getppid(2) takes no arguments, cannot fail and touches no memory of ours.
    let pid = unsafe { libc::getppid() };
    u32::try_from(pid).unwrap_or(0)
}

/// A passwd entry's uid, gid and home, looked up by name with `getpwnam_r` (re-entrant,
/// caller-owned buffer, bounded growth). `None` if there is no such user or the look-up
/// fails.
pub fn user_by_name(name: &str) -> Option<Passwd> {
    let cname = CString::new(name).ok()?;
    let mut size = 4096usize;
    while size <= 1 << 20 {
        let mut buf = vec![0u8; size];
        // SAFETY: an all-zero `passwd` is a valid value (integers and null pointers).
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: `cname` is a valid NUL-terminated string; `pwd`, `buf` and `result` are
        // live, writable and correctly sized (`buf.len()` is passed); the strings written
        // into `pwd` point into `buf`, which outlives every use below.
        let rc = unsafe {
            libc::getpwnam_r(
                cname.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE {
            size *= 4;
            continue;
        }
        if rc != 0 || result.is_null() {
            return None;
        }
        let home = if pwd.pw_dir.is_null() {
            String::new()
        } else {
            // SAFETY: non-null `pw_dir` points to a NUL-terminated string inside `buf`,
            // which is still alive here.
            unsafe { CStr::from_ptr(pwd.pw_dir) }
                .to_string_lossy()
                .into_owned()
        };
        return Some(Passwd {
            uid: pwd.pw_uid,
            gid: pwd.pw_gid,
            home,
        });
    }
    None
}

/// What [`user_by_name`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Passwd {
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Home directory.
    pub home: String,
}

/// The kernel host name (`gethostname(2)`, the UTS namespace's name), lower-cased.
/// `None` if it cannot be read or is not valid UTF-8.
pub fn kernel_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: `buf` is writable for `buf.len() - 1` bytes; the last byte stays 0, so the
    // result is always NUL-terminated even if the name was truncated.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len() - 1) };
    if rc != 0 {
        return None;
    }
    let name = CStr::from_bytes_until_nul(&buf).ok()?.to_str().ok()?;
    if name.is_empty() {
        return None;
    }
    Some(name.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn looks_up_root_and_the_host_name() {
        let root = user_by_name("root").unwrap();
        assert_eq!(root.uid, 0);
        assert!(user_by_name("no-such-user-jit-test").is_none());
        assert!(user_by_name("nul\0byte").is_none());
        let h = kernel_hostname().unwrap();
        assert!(!h.is_empty());
        let _ = real_uid();
        assert!(parent_pid() > 0);
    }
}

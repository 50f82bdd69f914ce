//! The session hooks (sshd's PAM session stack, `session optional pam_jit.so` right after
//! `pam_loginuid.so` and before any `pam_env.so`): bind a session-bound grant to the SSH
//! connection that presented its certificate, and mark the binding ended at logout.
//!
//! * `open_session`: `SSH_AUTH_INFO_0` from the PAM environment (`pam_getenv`, never the
//!   process environment) -> [`bind::choose`] (certificate and grant verified) -> the
//!   binding written by [`write::write_binding`]. Nothing to bind -> `PAM_IGNORE`.
//! * `close_session`: the binding of this process's own audit session whose leader is this
//!   process becomes a tombstone ([`write::mark_ended`], `ended_by = "logout"`). It never
//!   reads `SSH_AUTH_INFO_0` (by then `pam_env` may have let the user's ~/.pam_environment
//!   override it).
//!
//! The open hook runs at most once per PAM handle: its first run sets the
//! [`OPENED_MARKER`] PAM data item (`pam_set_data`) before anything else, whatever its
//! outcome; a later run in the same handle (a second or misplaced `pam_jit.so` session line,
//! which after `pam_env user_readenv=1` would see a `SSH_AUTH_INFO_0` from the user's
//! ~/.pam_environment) does nothing and logs why.
//!
//! Both hooks always return `PAM_IGNORE` (a panic too), whatever they did: login never fails
//! because of pam_jit, and a `session sufficient pam_jit.so` or `[success=done]` line can
//! never skip the rest of sshd's session stack (pam_selinux, pam_namespace, pam_limits,
//! pam_systemd). A failed bind only means the grant's sudo is denied, with a message. Every
//! bind, refusal to bind and end is logged (authpriv) with `result=bind|no-bind|end`.

use std::ffi::{CStr, c_char};
use std::os::raw::c_int;

use pam::constants::PamResultCode;
use pam::items::{RHost, Service, Tty, User};
use pam::module::PamHandle;

use pam_jit_core::config::{Config, config_path_from_args};
use pam_jit_core::session::bind::{self, Outcome, Request};
use pam_jit_core::session::{self, ENDED_BY_LOGOUT, proc, write};
use pam_jit_core::sys;

use crate::{item_str, syslog};

#[link(name = "pam")]
unsafe extern "C" {
    /// `const char *pam_getenv(pam_handle_t *pamh, const char *name);`
    fn pam_getenv(pamh: *mut PamHandle, name: *const c_char) -> *const c_char;
}

/// What a session hook logs, field by field (the line is built in the core:
/// [`pam_jit_core::logline::SessionEvent::line`]).
pub(crate) use pam_jit_core::logline::SessionEvent as Event;

/// `SSH_AUTH_INFO_0` from the PAM environment: `None` if unset; `Err` if it is larger than
/// [`bind::MAX_AUTH_INFO`] or not UTF-8.
fn auth_info(pamh: &PamHandle) -> Option<Result<String, String>> {
    // SAFETY: `pamh` is the live handle PAM gave this hook (the C API takes it non-const,
    // but pam_getenv only reads the handle's environment); the name is a constant
    // NUL-terminated string.
    let ptr = unsafe {
        pam_getenv(
            std::ptr::from_ref(pamh).cast_mut(),
            c"SSH_AUTH_INFO_0".as_ptr(),
        )
    };
    if ptr.is_null() {
        return None;
    }
    // SAFETY: a non-null result points to a NUL-terminated string owned by the PAM handle,
    // unchanged until the environment is modified; it is copied below before anything else
    // runs on this handle.
    let value = unsafe { CStr::from_ptr(ptr) };
    let bytes = value.to_bytes();
    if bytes.len() > bind::MAX_AUTH_INFO {
        return Some(Err(format!(
            "SSH_AUTH_INFO_0 is {} bytes, more than {}",
            bytes.len(),
            bind::MAX_AUTH_INFO
        )));
    }
    Some(
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| "SSH_AUTH_INFO_0 is not UTF-8".to_string()),
    )
}

/// Loads host.toml from the module arguments.
fn config(args: &[&CStr]) -> Result<Config, String> {
    let arg_strs: Vec<&str> = args
        .iter()
        .map(|a| a.to_str())
        .collect::<Result<_, _>>()
        .map_err(|_| "a module argument is not UTF-8".to_string())?;
    let path = config_path_from_args(arg_strs)?;
    Config::load(&path).map_err(|e| e.to_string())
}

/// The PAM data item that marks this handle's open hook as run.
pub(crate) const OPENED_MARKER: &str = "pam_jit_session_opened";

/// `open_session` at most once per PAM handle: the first run sets [`OPENED_MARKER`] and runs
/// [`open`]; every later run in the same handle does nothing but say why ([`once`]). The
/// events to log, in order.
pub(crate) fn open_once(
    pamh: &mut PamHandle,
    args: &[&CStr],
) -> (PamResultCode, Vec<(c_int, Event)>) {
    // SAFETY: only this module sets OPENED_MARKER, always to a `Box<u8>` (below), so the
    // data, if present, is a `u8` owned by the handle.
    let already = unsafe { pamh.get_data::<u8>(OPENED_MARKER) }.is_ok();
    let marked = !already && pamh.set_data(OPENED_MARKER, Box::new(1_u8)).is_ok();
    let mut others = Vec::new();
    let (code, event) = once(already, marked, || open(pamh, args, &mut others));
    // Every line names the audit session when it is set, even one written before it was read.
    let sid = session::own_session_id();
    let events = event
        .into_iter()
        .chain(others)
        .map(|(p, mut e)| {
            e.session = e.session.or(sid);
            (p, e)
        })
        .collect();
    (code, events)
}

/// The once-per-handle rule: `already` (the marker was there) -> do nothing, say why; not
/// `marked` (`pam_set_data` failed, so a later run could not be told apart) -> bind nothing;
/// else run. Always `PAM_IGNORE`.
pub(crate) fn once(
    already: bool,
    marked: bool,
    run: impl FnOnce() -> (PamResultCode, Option<(c_int, Event)>),
) -> (PamResultCode, Option<(c_int, Event)>) {
    let refuse = |reason: &str| {
        let e = Event {
            result: "no-bind",
            leader: Some(std::process::id()),
            reason: reason.into(),
            ..Event::default()
        };
        (PamResultCode::PAM_IGNORE, Some((libc::LOG_WARNING, e)))
    };
    if already {
        return refuse(
            "pam_jit's session hook already ran for this login; this run does nothing (a second or misplaced `session ... pam_jit.so` line in the stack: keep one, right after pam_loginuid; jit-host check)",
        );
    }
    if !marked {
        return refuse("cannot mark the PAM handle (pam_set_data failed); nothing bound");
    }
    let (_, event) = run();
    (PamResultCode::PAM_IGNORE, event)
}

/// `open_session`: bind, or say why not. Returns the code and what to log (at which
/// priority); `None` when there is nothing to say (no `SSH_AUTH_INFO_0`: not an SSH login).
/// After a bind, `others` gets a `no-bind` event for each other session-bound certificate of
/// the connection ([`bind::unbound_others`]: one connection binds one).
pub(crate) fn open(
    pamh: &PamHandle,
    args: &[&CStr],
    others: &mut Vec<(c_int, Event)>,
) -> (PamResultCode, Option<(c_int, Event)>) {
    let info = match auth_info(pamh) {
        None => return (PamResultCode::PAM_IGNORE, None),
        Some(Ok(info)) => info,
        Some(Err(reason)) => {
            let e = Event {
                result: "no-bind",
                reason,
                ..Event::default()
            };
            return (PamResultCode::PAM_IGNORE, Some((libc::LOG_WARNING, e)));
        }
    };
    let user = item_str::<User>(pamh);
    let client = item_str::<RHost>(pamh);
    let tty = item_str::<Tty>(pamh);
    let session_id = session::own_session_id();
    let no_bind = |priority: c_int, reason: String| {
        let e = Event::no_bind(user.clone(), client.clone(), session_id, reason);
        (PamResultCode::PAM_IGNORE, Some((priority, e)))
    };
    let Some(user_name) = user.as_deref() else {
        return no_bind(libc::LOG_WARNING, "PAM_USER is not set".into());
    };
    if jit_common::grant::check_user("user", user_name).is_err() {
        return no_bind(libc::LOG_DEBUG, "PAM_USER is not a valid login name".into());
    }
    let config = match config(args) {
        Ok(c) => c,
        Err(e) => {
            return no_bind(
                libc::LOG_WARNING,
                format!("the host configuration is unusable: {e}"),
            );
        }
    };
    let (leader_start, boot_id) = match (proc::own_start_time(), proc::boot_id()) {
        (Ok(s), Ok(b)) => (s, b),
        (Err(e), _) | (_, Err(e)) => return no_bind(libc::LOG_ERR, e),
    };
    let req = Request {
        user: user_name,
        now: jit_common::now(),
        session_id,
        parent_session_id: proc::session_id_of(sys::parent_pid()),
        loginuid: proc::own_loginuid(),
        user_uid: sys::user_by_name(user_name).map(|p| p.uid),
        leader_pid: std::process::id(),
        leader_start,
        boot_id: &boot_id,
        client: client.as_deref(),
        tty: tty.as_deref(),
    };
    let b = match bind::choose(&config, &req, Some(&info)) {
        Outcome::Bind(b) => b,
        Outcome::Nothing(reason) => return no_bind(libc::LOG_DEBUG, reason),
        Outcome::Refused {
            reason,
            grant,
            serial,
        } => {
            let (code, mut e) = no_bind(libc::LOG_WARNING, reason);
            if let Some((_, ev)) = e.as_mut() {
                ev.grant = grant;
                ev.serial = serial;
            }
            return (code, e);
        }
    };
    // Never overwrite a live binding of another connection (see bind::may_replace).
    if let Ok(Some(old)) = session::read_binding(&config.session_dir, b.session_id) {
        let live = session::liveness(&old);
        if let Err(reason) = bind::may_replace(Some((&old, &live)), &b) {
            return (
                PamResultCode::PAM_IGNORE,
                Some((libc::LOG_ERR, Event::of_binding("no-bind", &b, reason))),
            );
        }
    }
    match write::write_binding(&config.session_dir, &b) {
        Ok(()) => {
            for (grant, serial) in bind::unbound_others(&config, &req, &info, b.serial) {
                let reason = format!(
                    "grant {grant} (certificate serial {serial}) was presented too but is not bound: one connection binds one session-bound grant (here grant {}); its sudo is denied in this connection: log in with only its certificate to use it",
                    b.grant_id
                );
                let mut e = Event::of_binding("no-bind", &b, reason);
                e.grant = Some(grant);
                e.serial = Some(serial);
                others.push((libc::LOG_WARNING, e));
            }
            let reason = format!(
                "grant {} (role {}) is bound to SSH session {} until the connection ends or {}",
                b.grant_id,
                b.role,
                b.session_id,
                jit_common::time::format_utc(b.not_after)
            );
            (
                PamResultCode::PAM_IGNORE,
                Some((libc::LOG_NOTICE, Event::of_binding("bind", &b, reason))),
            )
        }
        Err(e) => (
            PamResultCode::PAM_IGNORE,
            Some((
                libc::LOG_ERR,
                Event::of_binding("no-bind", &b, format!("cannot write the binding: {e}")),
            )),
        ),
    }
}

/// `close_session`: the binding of this process's audit session, if this process leads it,
/// becomes a tombstone. Nothing to do -> `PAM_IGNORE`, nothing logged.
pub(crate) fn close(args: &[&CStr]) -> (PamResultCode, Option<(c_int, Event)>) {
    let Some(id) = session::own_session_id() else {
        return (PamResultCode::PAM_IGNORE, None);
    };
    let Ok(config) = config(args) else {
        return (PamResultCode::PAM_IGNORE, None);
    };
    let Ok(Some(b)) = session::read_binding(&config.session_dir, id) else {
        return (PamResultCode::PAM_IGNORE, None);
    };
    let me = std::process::id();
    if b.leader_pid != me || b.ended_at.is_some() || proc::own_start_time() != Ok(b.leader_start) {
        return (PamResultCode::PAM_IGNORE, None);
    }
    match write::mark_ended(&config.session_dir, id, jit_common::now(), ENDED_BY_LOGOUT) {
        Ok(b) => (
            PamResultCode::PAM_IGNORE,
            Some((
                libc::LOG_NOTICE,
                Event::of_binding("end", &b, "the SSH connection ended (logout)".into()),
            )),
        ),
        Err(e) => (
            PamResultCode::PAM_IGNORE,
            Some((
                libc::LOG_ERR,
                Event::of_binding("end", &b, format!("cannot mark the binding ended: {e}")),
            )),
        ),
    }
}

/// Logs a session hook's events, if any (each with the PAM service), and returns its code.
pub(crate) fn report(
    pamh: &PamHandle,
    (code, events): (PamResultCode, impl IntoIterator<Item = (c_int, Event)>),
) -> PamResultCode {
    let service = item_str::<Service>(pamh);
    for (priority, mut e) in events {
        e.service = e.service.or_else(|| service.clone());
        syslog(pamh, priority, &e.line());
    }
    code
}

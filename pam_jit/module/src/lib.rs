//! `pam_jit.so`: the C boundary over [`pam_jit_core`]: the six `pam_sm_*` hooks and
//! `pam_syslog`. Everything it decides and reads is in the core crate. The account (sudo)
//! path never writes a file; the session hooks (`session` module) write session bindings
//! through `pam_jit_core::session::write`, the only writer in the module's tree (the grant
//! store's writer is `jit-host`).
//!
//! * `account` (`pam_sm_acct_mgmt`) is the gate: sudo runs it on every call, even for
//!   NOPASSWD rules and cached timestamps. Allow -> `PAM_SUCCESS`; deny (and every error
//!   path) -> `PAM_PERM_DENIED`; a service not in `services` -> `PAM_IGNORE`.
//! * `open_session` / `close_session` (sshd's session stack, after `pam_loginuid`): bind a
//!   session-bound grant to the SSH connection that presented its certificate, and mark the
//!   binding ended at logout. Always `PAM_IGNORE`, whatever happened (logged): never a
//!   failure (a login never fails because of pam_jit), never a success (which a
//!   `sufficient` or `[success=done]` line would turn into skipping the rest of the session
//!   stack). The open hook runs at most once per PAM handle.
//! * `auth`, `setcred` and `password` return `PAM_IGNORE`: the module never
//!   authenticates anyone (so `auth sufficient pam_jit.so` can never skip a password), and
//!   gating there would be bypassed by sudo anyway.
//!
//! The hook reads PAM items, the real uid, the passwd entry of `PAM_RUSER`, the kernel
//! host name and the configuration, then runs [`pam_jit_core::decide_here_lazy`] (identify the
//! caller once, read their grant files, the pure decision). It logs every decision with
//! `pam_syslog` (constant `"%s"` format, authpriv; break-glass at `LOG_ALERT`) and explains
//! a denial in one `PAM_ERROR_MSG` line. Its whole body runs under one guard ([`guarded`]):
//! a panic anywhere below it denies (`PAM_PERM_DENIED`; `PAM_IGNORE` in the session hooks)
//! and is logged. It opens no socket,
//! starts no thread, reads no environment variable and never prints.
#![allow(unsafe_code)] // The PAM FFI room: every block carries a `// SAFETY:` comment.

use std::ffi::{CStr, CString};
use std::os::raw::{c_char, c_int};
use std::panic::{AssertUnwindSafe, catch_unwind};

use pam::constants::{PAM_ERROR_MSG, PamFlag, PamResultCode};
use pam::conv::Conv;
use pam::items::{RUser, Service, Tty};
use pam::module::{PamHandle, PamHooks};

use pam_jit_core::config::{Config, config_path_from_args};
use pam_jit_core::decide::{self, Caller, Decision, Facts, Verdict};
use pam_jit_core::{decide_here_lazy, host_names_with, sys};

#[link(name = "pam")]
unsafe extern "C" {
    /// `void pam_syslog(const pam_handle_t *pamh, int priority, const char *fmt, ...);`
    fn pam_syslog(pamh: *const PamHandle, priority: c_int, fmt: *const c_char, ...);
}

/// The module's hook table.
#[derive(Debug)]
pub struct PamJit;

pam::pam_hooks!(PamJit);

impl PamHooks for PamJit {
    fn acct_mgmt(pamh: &mut PamHandle, args: Vec<&CStr>, _flags: PamFlag) -> PamResultCode {
        let pamh: &PamHandle = pamh;
        guarded(
            || gate(pamh, &args),
            || log(pamh, libc::LOG_ERR, &panicked(), &Items::of(pamh)),
        )
    }

    fn sm_authenticate(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }

    fn sm_setcred(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }

    fn sm_open_session(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        // The body needs the handle mutably (its once-per-handle marker), so the panic is
        // logged after the guard returns.
        let panicked = std::cell::Cell::new(false);
        let code = guarded_with(
            PamResultCode::PAM_IGNORE,
            || {
                let outcome = session::open_once(pamh, &args);
                session::report(pamh, outcome)
            },
            || panicked.set(true),
        );
        if panicked.get() {
            syslog(pamh, libc::LOG_ERR, &panicked_session(pamh));
        }
        code
    }

    fn sm_close_session(pamh: &mut PamHandle, args: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        let pamh: &PamHandle = pamh;
        guarded_with(
            PamResultCode::PAM_IGNORE,
            || session::report(pamh, session::close(&args)),
            || syslog(pamh, libc::LOG_ERR, &panicked_session(pamh)),
        )
    }

    fn sm_chauthtok(_: &mut PamHandle, _: Vec<&CStr>, _: PamFlag) -> PamResultCode {
        PamResultCode::PAM_IGNORE
    }
}

/// Runs a hook's body under one guard: a panic anywhere inside it (this crate, the core, a
/// dependency) becomes `PAM_PERM_DENIED`, after `on_panic` (which logs it). pam-bindings'
/// own guard around every hook stays the last resort (`PAM_ABORT`, also a failure), should
/// `on_panic` itself panic. Unwinding needs `panic = "unwind"` (the workspace's profiles).
fn guarded(body: impl FnOnce() -> PamResultCode, on_panic: impl FnOnce()) -> PamResultCode {
    guarded_with(PamResultCode::PAM_PERM_DENIED, body, on_panic)
}

/// [`guarded`] with the code a panic becomes: `PAM_PERM_DENIED` for the account gate,
/// `PAM_IGNORE` for the session hooks (a login never fails because of pam_jit).
fn guarded_with(
    panic_code: PamResultCode,
    body: impl FnOnce() -> PamResultCode,
    on_panic: impl FnOnce(),
) -> PamResultCode {
    match catch_unwind(AssertUnwindSafe(body)) {
        Ok(code) => code,
        Err(_payload) => {
            on_panic();
            panic_code
        }
    }
}

/// The reason logged (at `LOG_ERR`) when a session hook panicked.
const PANICKED_SESSION: &str = "internal error: pam_jit panicked in a session hook (a bug; please report it); nothing bound, login unaffected";

/// The line logged when a session hook panicked: every session key, the service if PAM
/// says it.
fn panicked_session(pamh: &PamHandle) -> String {
    session::Event {
        result: "no-bind",
        service: item_str::<Service>(pamh),
        reason: PANICKED_SESSION.into(),
        ..session::Event::default()
    }
    .line()
}

/// The decision logged (at `LOG_ERR`) when the hook panicked.
fn panicked() -> Decision {
    Decision {
        verdict: Verdict::Deny,
        user: None,
        grant_id: None,
        reason: "internal error: pam_jit panicked (a bug; please report it); denied".into(),
        user_message: None,
        audit_would_deny: false,
        break_glass: false,
        session: None,
        serial: None,
    }
}

/// `account`: decide, log, tell the user why on denial, return the PAM code.
fn gate(pamh: &PamHandle, args: &[&CStr]) -> PamResultCode {
    #[cfg(feature = "panic-probe")]
    panic_probe(args);
    let (decision, items) = account(pamh, args);
    log(pamh, priority(&decision), &decision, &items);
    if let Some(msg) = &decision.user_message {
        tell(pamh, msg);
    }
    code(decision.verdict)
}

/// TEST ONLY (feature `panic-probe`, never in the shipped module): with the module argument
/// `panic_probe`, panic a few frames below the guard, so that
/// tests/system/55-module-panic.sh can prove that a panic unwinds through the statically
/// linked unwinder to [`guarded`] and becomes a denial under real sudo and sudo-rs.
#[cfg(feature = "panic-probe")]
#[inline(never)]
fn panic_probe(args: &[&CStr]) {
    if args.iter().any(|a| a.to_bytes() == b"panic_probe") {
        probe_frame(std::hint::black_box(args.len()));
    }
}

/// A frame of its own to unwind through (see [`panic_probe`]).
#[cfg(feature = "panic-probe")]
#[inline(never)]
#[allow(clippy::panic, reason = "the test-only probe panics on purpose")]
fn probe_frame(n: usize) {
    panic!("pam_jit panic probe: a test-only build panicked on purpose ({n} arguments)");
}

/// What the module returns for a verdict.
fn code(verdict: Verdict) -> PamResultCode {
    match verdict {
        Verdict::Allow => PamResultCode::PAM_SUCCESS,
        Verdict::Deny => PamResultCode::PAM_PERM_DENIED,
        Verdict::Ignore => PamResultCode::PAM_IGNORE,
    }
}

/// A string PAM item, `None` if unset, unreadable or not UTF-8.
fn item_str<'a, T>(pamh: &'a PamHandle) -> Option<String>
where
    T: pam::items::Item<'a> + std::ops::Deref<Target = &'a CStr>,
{
    match pamh.get_item::<T>() {
        Ok(Some(v)) => v.to_str().ok().map(str::to_string),
        _ => None,
    }
}

/// PAM items kept for the log line.
#[derive(Debug, Default)]
struct Items {
    service: Option<String>,
    tty: Option<String>,
}

impl Items {
    /// The items of `pamh`.
    fn of(pamh: &PamHandle) -> Self {
        Self {
            service: item_str::<Service>(pamh),
            tty: item_str::<Tty>(pamh),
        }
    }
}

/// Gathers the facts and decides ([`decide_here_lazy`]: identify once, read, decide). Every
/// failure becomes a denial (or, for ungated services, `PAM_IGNORE`).
fn account(pamh: &PamHandle, args: &[&CStr]) -> (Decision, Items) {
    let now = jit_common::now();
    let items = Items::of(pamh);
    let ruser = item_str::<RUser>(pamh);
    // For the messages of denials before host.toml is read.
    let kernel_name = sys::kernel_hostname();
    let kernel_host = kernel_name.clone().unwrap_or_else(|| "this host".into());
    let Some(service) = items.service.clone() else {
        // No service name: the application is broken; fail closed.
        return (
            decide::config_unusable(
                "sudo",
                &kernel_host,
                ruser.as_deref(),
                "PAM_SERVICE is not set",
            ),
            items,
        );
    };
    let arg_strs: Result<Vec<&str>, _> = args.iter().map(|a| a.to_str()).collect();
    let path = match arg_strs
        .map_err(|_| "a module argument is not UTF-8".to_string())
        .and_then(config_path_from_args)
    {
        Ok(p) => p,
        Err(e) => {
            return (
                decide::config_unusable(&service, &kernel_host, ruser.as_deref(), &e),
                items,
            );
        }
    };
    let config = match Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            return (
                decide::config_unusable(&service, &kernel_host, ruser.as_deref(), &e.to_string()),
                items,
            );
        }
    };
    // The kernel host name read above (one uname per call).
    let host_names = host_names_with(kernel_name, &config);
    let ruser_uid = ruser
        .as_deref()
        .filter(|u| jit_common::grant::check_user("user", u).is_ok())
        .and_then(sys::user_by_name)
        .map(|p| p.uid);
    let facts = Facts {
        caller: Caller {
            ruser: ruser.as_deref(),
            uid: sys::real_uid(),
            ruser_uid,
        },
        service: &service,
        host_names: &host_names,
        now,
        // Read only if one of the caller's grant files may be session-bound (below).
        session_id: None,
    };
    let decision = decide_here_lazy(&config, &facts, pam_jit_core::session::own_session_id);
    (decision, items)
}

/// The syslog priority of a decision: break-glass at `LOG_ALERT` (someone used the
/// emergency keys), denials and audit-mode would-be denials at `LOG_WARNING`, allowances at
/// `LOG_NOTICE`, ignored services at `LOG_DEBUG`.
fn priority(d: &Decision) -> c_int {
    if d.break_glass {
        return libc::LOG_ALERT;
    }
    match (d.verdict, d.audit_would_deny) {
        (Verdict::Ignore, _) => libc::LOG_DEBUG,
        (Verdict::Deny, _) | (Verdict::Allow, true) => libc::LOG_WARNING,
        (Verdict::Allow, false) => libc::LOG_NOTICE,
    }
}

/// The log line of a decision ([`pam_jit_core::logline::account_line`]: every key of
/// `ACCOUNT_KEYS`, sanitized, at most `MAX_LINE` bytes).
fn line(d: &Decision, items: &Items, uid: u32) -> String {
    pam_jit_core::logline::account_line(d, items.service.as_deref(), items.tty.as_deref(), uid)
}

/// Sends one decision to syslog (authpriv) at `priority`.
fn log(pamh: &PamHandle, priority: c_int, d: &Decision, items: &Items) {
    syslog(pamh, priority, &line(d, items, sys::real_uid()));
}

/// Sends one (already sanitized) line to syslog (authpriv) at `priority`.
fn syslog(pamh: &PamHandle, priority: c_int, line: &str) {
    let Ok(c_line) = CString::new(line) else {
        return;
    };
    // SAFETY: `pamh` is the live handle PAM gave this hook; the format is the constant
    // NUL-terminated "%s" and its one argument is a valid NUL-terminated string that
    // outlives the call, so no user-controlled text is ever interpreted as a format.
    unsafe {
        pam_syslog(
            pamh,
            libc::LOG_AUTHPRIV | priority,
            c"%s".as_ptr(),
            c_line.as_ptr(),
        );
    }
}

/// Shows one line to the user through the conversation (`PAM_ERROR_MSG`, which sudo shows
/// even under `PAM_SILENT`). Failures are ignored: the decision stands either way.
fn tell(pamh: &PamHandle, msg: &str) {
    if let Ok(Some(conv)) = pamh.get_item::<Conv>() {
        let _ = conv.send(PAM_ERROR_MSG, msg);
    }
}

#[cfg(test)]
mod tests;

mod session;

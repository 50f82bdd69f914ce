//! The C boundary without a PAM application: the guard, the log priority, and the exported
//! hooks called on a real libpam handle (`pam_start`, no PAM stack is run).

use std::cell::{Cell, RefCell};
use std::ffi::{CStr, c_void};
use std::os::raw::{c_char, c_int};
use std::ptr;

use pam::constants::{PamFlag, PamResultCode};
use pam::items::Service;
use pam::module::PamHandle;

use super::*;

#[test]
fn a_panic_inside_the_hook_denies_and_is_logged() {
    let logged = Cell::new(false);
    let code = guarded(|| panic!("a bug deep in the decision"), || logged.set(true));
    assert_eq!(code, PamResultCode::PAM_PERM_DENIED);
    assert!(logged.get(), "the panic was not logged");
    // Any panic, not only explicit ones (here: an out-of-bounds index).
    let logged = Cell::new(false);
    let empty: Vec<u8> = Vec::new();
    let index = empty.len() + 1;
    let code = guarded(
        || match empty[index] {
            0 => PamResultCode::PAM_SUCCESS,
            _ => PamResultCode::PAM_IGNORE,
        },
        || logged.set(true),
    );
    assert_eq!(code, PamResultCode::PAM_PERM_DENIED);
    assert!(logged.get());
    // Without a panic the body's code stands and nothing extra is logged.
    let logged = Cell::new(false);
    let code = guarded(|| PamResultCode::PAM_SUCCESS, || logged.set(true));
    assert_eq!(code, PamResultCode::PAM_SUCCESS);
    assert!(!logged.get());
    // What is logged then.
    let l = line(&panicked(), &Items::default(), 1000);
    assert!(l.starts_with("result=deny user=- uid=1000 "), "{l}");
    assert!(l.contains("pam_jit panicked"), "{l}");
}

fn decision(verdict: Verdict, audit_would_deny: bool, break_glass: bool) -> Decision {
    Decision {
        verdict,
        user: Some("alice".into()),
        grant_id: Some("g-1".into()),
        reason: "test".into(),
        user_message: None,
        audit_would_deny,
        break_glass,
        session: None,
        serial: None,
    }
}

#[test]
fn break_glass_is_logged_at_alert_level() {
    assert_eq!(
        priority(&decision(Verdict::Allow, false, true)),
        libc::LOG_ALERT
    );
    // Nothing else is an alert.
    assert_eq!(
        priority(&decision(Verdict::Allow, false, false)),
        libc::LOG_NOTICE
    );
    assert_eq!(
        priority(&decision(Verdict::Allow, true, false)),
        libc::LOG_WARNING
    );
    assert_eq!(
        priority(&decision(Verdict::Deny, false, false)),
        libc::LOG_WARNING
    );
    assert_eq!(
        priority(&decision(Verdict::Ignore, false, false)),
        libc::LOG_DEBUG
    );
}

/// `struct pam_message`.
#[repr(C)]
struct PamMessage {
    msg_style: c_int,
    msg: *const c_char,
}

/// `struct pam_conv`.
#[repr(C)]
struct PamConv {
    conv: extern "C" fn(c_int, *mut *const PamMessage, *mut *mut c_void, *mut c_void) -> c_int,
    appdata: *mut c_void,
}

#[link(name = "pam")]
unsafe extern "C" {
    fn pam_start(
        service: *const c_char,
        user: *const c_char,
        conv: *const PamConv,
        pamh: *mut *mut PamHandle,
    ) -> c_int;
    fn pam_end(pamh: *mut PamHandle, status: c_int) -> c_int;
    fn pam_putenv(pamh: *mut PamHandle, name_value: *const c_char) -> c_int;
}

/// The conversation: records every message and answers nothing (`PAM_CONV_ERR`, which the
/// module ignores).
extern "C" fn record(
    n: c_int,
    msgs: *mut *const PamMessage,
    _resp: *mut *mut c_void,
    appdata: *mut c_void,
) -> c_int {
    // SAFETY: `appdata` is the `RefCell` a live `Handle` boxed and passed to pam_start.
    let seen = unsafe { &*appdata.cast::<RefCell<Vec<String>>>() };
    for i in 0..usize::try_from(n).unwrap_or(0) {
        // SAFETY: libpam's callers pass `n` valid message pointers, each to a message with
        // a NUL-terminated text, alive for the duration of this call.
        let text = unsafe { CStr::from_ptr((**msgs.add(i)).msg) };
        seen.borrow_mut().push(text.to_string_lossy().into_owned());
    }
    PamResultCode::PAM_CONV_ERR as c_int
}

/// A libpam handle for a service without a PAM stack of its own.
struct Handle {
    pamh: *mut PamHandle,
    seen: Box<RefCell<Vec<String>>>,
    _conv: Box<PamConv>,
}

impl Handle {
    /// A handle whose `PAM_SERVICE` is `service`.
    fn new(service: &CStr) -> Self {
        let seen = Box::new(RefCell::new(Vec::new()));
        let conv = Box::new(PamConv {
            conv: record,
            appdata: ptr::from_ref(&*seen).cast_mut().cast(),
        });
        let mut pamh = ptr::null_mut();
        // SAFETY: the strings are NUL-terminated constants; `conv` is boxed and outlives the
        // handle (pam_end runs in Drop, before the box is freed); `pamh` is a valid out
        // pointer. The service has no file under /etc/pam.d, so no module is loaded for it.
        let rc = unsafe {
            pam_start(
                c"jit-module-unit-test".as_ptr(),
                c"alice".as_ptr(),
                &*conv,
                &mut pamh,
            )
        };
        assert_eq!(rc, 0, "pam_start failed");
        assert!(!pamh.is_null());
        let mut h = Self {
            pamh,
            seen,
            _conv: conv,
        };
        h.handle().set_item_str(Service(service)).unwrap();
        h
    }

    fn handle(&mut self) -> &mut PamHandle {
        // SAFETY: `pamh` is the live handle from pam_start, used by one thread only.
        unsafe { &mut *self.pamh }
    }

    /// Calls an exported hook the way libpam does.
    fn call(
        &mut self,
        hook: unsafe extern "C" fn(
            *mut PamHandle,
            PamFlag,
            c_int,
            *const *const c_char,
        ) -> PamResultCode,
        args: &[&CStr],
    ) -> PamResultCode {
        let argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        let argc = c_int::try_from(argv.len()).unwrap();
        // SAFETY: a live handle, and `argc` valid NUL-terminated strings that outlive the call.
        unsafe { hook(self.pamh, 0, argc, argv.as_ptr()) }
    }

    fn messages(&self) -> Vec<String> {
        self.seen.borrow().clone()
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the live handle from pam_start, ended exactly once.
        unsafe { pam_end(self.pamh, 0) };
    }
}

type Hook =
    unsafe extern "C" fn(*mut PamHandle, PamFlag, c_int, *const *const c_char) -> PamResultCode;

const NO_CONFIG: &CStr = c"config=/nonexistent/jit-module-unit-test/host.toml";

#[test]
fn auth_setcred_session_and_password_hooks_return_ignore() {
    let hooks: [(&str, Hook); 5] = [
        ("auth", crate::pam_sm_authenticate),
        ("setcred", crate::pam_sm_setcred),
        ("open_session", crate::pam_sm_open_session),
        ("close_session", crate::pam_sm_close_session),
        ("password", crate::pam_sm_chauthtok),
    ];
    for service in [c"sudo", c"login"] {
        let mut h = Handle::new(service);
        for (name, hook) in hooks {
            for args in [&[][..], &[NO_CONFIG][..], &[c"config=relative"][..]] {
                assert_eq!(
                    h.call(hook, args),
                    PamResultCode::PAM_IGNORE,
                    "{name} for {service:?} with {args:?}"
                );
            }
        }
        assert_eq!(h.messages(), Vec::<String>::new(), "{service:?}");
    }
}

#[test]
fn account_fails_closed_for_sudo_when_the_configuration_is_unusable() {
    let mut h = Handle::new(c"sudo");
    assert_eq!(
        h.call(crate::pam_sm_acct_mgmt, &[NO_CONFIG]),
        PamResultCode::PAM_PERM_DENIED
    );
    let seen = h.messages();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].starts_with("jit: sudo denied for "), "{seen:?}");
    assert!(
        seen[0].contains("host configuration is unusable"),
        "{seen:?}"
    );
    // A module argument it does not know: the same.
    assert_eq!(
        h.call(crate::pam_sm_acct_mgmt, &[c"bogus"]),
        PamResultCode::PAM_PERM_DENIED
    );
    // Another service is not gated: PAM_IGNORE, nothing shown.
    let mut h = Handle::new(c"login");
    assert_eq!(
        h.call(crate::pam_sm_acct_mgmt, &[NO_CONFIG]),
        PamResultCode::PAM_IGNORE
    );
    assert_eq!(h.messages(), Vec::<String>::new());
}

impl Handle {
    /// Sets `NAME=value` in the handle's PAM environment (what sshd does for
    /// SSH_AUTH_INFO_0).
    fn putenv(&mut self, name_value: &CStr) {
        // SAFETY: a live handle and a NUL-terminated string (libpam copies it).
        let rc = unsafe { pam_putenv(self.pamh, name_value.as_ptr()) };
        assert_eq!(rc, 0, "pam_putenv failed");
    }
}

#[test]
fn session_hooks_never_fail_a_login_whatever_sshd_passes() {
    let big = std::ffi::CString::new(format!(
        "SSH_AUTH_INFO_0=publickey {}",
        "A".repeat(pam_jit_core::session::bind::MAX_AUTH_INFO + 1)
    ))
    .unwrap();
    let cases: Vec<&CStr> = vec![
        c"SSH_AUTH_INFO_0=",
        c"SSH_AUTH_INFO_0=password",
        c"SSH_AUTH_INFO_0=publickey ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOc",
        c"SSH_AUTH_INFO_0=publickey ssh-ed25519-cert-v01@openssh.com !!!garbage!!!",
        c"SSH_AUTH_INFO_0=publickey ssh-ed25519-cert-v01@openssh.com \xff\xfe",
        c"SSH_AUTH_INFO_0=\n\n\npublickey\npublickey \npublickey x-cert-v01@openssh.com",
        big.as_c_str(),
    ];
    for env in cases {
        let mut h = Handle::new(c"sshd");
        h.handle().set_item_str(pam::items::User(c"alice")).unwrap();
        h.putenv(env);
        for args in [&[][..], &[NO_CONFIG][..], &[c"bogus"][..]] {
            for hook in [
                crate::pam_sm_open_session as Hook,
                crate::pam_sm_close_session,
            ] {
                assert_eq!(
                    h.call(hook, args),
                    PamResultCode::PAM_IGNORE,
                    "{env:?} {args:?}"
                );
            }
        }
        // Nothing is ever said to the user from the session hooks.
        assert_eq!(h.messages(), Vec::<String>::new());
    }
    // Without PAM_USER either.
    let mut h = Handle::new(c"sshd");
    h.putenv(c"SSH_AUTH_INFO_0=publickey ssh-ed25519-cert-v01@openssh.com AAAA");
    assert_eq!(
        h.call(crate::pam_sm_open_session, &[]),
        PamResultCode::PAM_IGNORE
    );
}

#[test]
fn a_session_hook_panic_is_ignored_not_a_failure() {
    let logged = Cell::new(false);
    let code = guarded_with(
        PamResultCode::PAM_IGNORE,
        || panic!("a bug in the session hook"),
        || logged.set(true),
    );
    assert_eq!(code, PamResultCode::PAM_IGNORE);
    assert!(logged.get());
    // The line: every session key, the service from the handle, the reason last.
    let mut h = Handle::new(c"sshd");
    let l = panicked_session(h.handle());
    assert!(
        l.starts_with(
            "result=no-bind user=- service=sshd session=- serial=- grant=- client=- leader=- reason=\"internal error"
        ),
        "{l}"
    );
}

#[test]
fn session_lines_carry_session_serial_client_and_leader() {
    let e = session::Event {
        result: "bind",
        user: Some("alice".into()),
        service: Some("sshd".into()),
        session: Some(7),
        serial: Some(42),
        grant: Some("g-1".into()),
        client: Some("192.0.2.7".into()),
        leader: Some(4242),
        reason: "grant g-1 (role dba) is bound".into(),
    };
    assert_eq!(
        e.line(),
        "result=bind user=alice service=sshd session=7 serial=42 grant=g-1 client=192.0.2.7 leader=4242 reason=\"grant g-1 (role dba) is bound\""
    );
    let e = session::Event {
        result: "no-bind",
        reason: "line\nresult=bind".into(),
        ..session::Event::default()
    };
    assert_eq!(
        e.line(),
        "result=no-bind user=- service=- session=- serial=- grant=- client=- leader=- reason=\"line\\x0aresult=bind\""
    );
    // The sudo decision's line for a session-bound grant carries session and serial...
    let mut d = decision(Verdict::Allow, false, false);
    d.session = Some(7);
    d.serial = Some(42);
    let l = line(&d, &Items::default(), 1000);
    assert!(
        l.contains(" grant=g-1 session=7 serial=42 reason=test"),
        "{l}"
    );
    d.session = None;
    assert!(line(&d, &Items::default(), 1000).contains(" session=- serial=42 "));
    // ...and a plain grant's line has the same keys, with `-` (a fixed key set for log
    // pipelines, issue 15; the line builder's own tests are in pam_jit_core::logline).
    let l = line(
        &decision(Verdict::Allow, false, false),
        &Items::default(),
        1000,
    );
    assert!(
        l.contains(" grant=g-1 session=- serial=- reason=test"),
        "{l}"
    );
}

#[test]
fn the_open_hook_runs_once_per_handle_whatever_its_first_outcome() {
    // A second (or misplaced, after pam_env user_readenv=1) `session ... pam_jit.so` line:
    // the second run in the same handle does nothing and says why.
    let ran = Cell::new(0);
    let run = || {
        ran.set(ran.get() + 1);
        (PamResultCode::PAM_SUCCESS, None)
    };
    // The first run (marker set): runs, and even a success is returned as PAM_IGNORE.
    let (code, e) = session::once(false, true, run);
    assert_eq!((code, ran.get()), (PamResultCode::PAM_IGNORE, 1));
    assert!(e.is_none());
    // A later run in the same handle: nothing runs, a warning says why.
    let (code, e) = session::once(true, false, || {
        ran.set(ran.get() + 1);
        (PamResultCode::PAM_SUCCESS, None)
    });
    assert_eq!((code, ran.get()), (PamResultCode::PAM_IGNORE, 1));
    let (priority, e) = e.expect("the repeated run is logged");
    assert_eq!((priority, e.result), (libc::LOG_WARNING, "no-bind"));
    assert!(
        e.reason.starts_with(
            "pam_jit's session hook already ran for this login; this run does nothing"
        ),
        "{}",
        e.reason
    );
    // The marker could not be set: nothing runs either (a later run could not be told apart).
    let (code, e) = session::once(false, false, || {
        ran.set(ran.get() + 1);
        (PamResultCode::PAM_SUCCESS, None)
    });
    assert_eq!((code, ran.get()), (PamResultCode::PAM_IGNORE, 1));
    assert!(e.unwrap().1.reason.contains("pam_set_data failed"));
    // libpam refuses pam_set_data/pam_get_data outside a module call (a hook called straight
    // from the application, as here): the hook binds nothing and still returns PAM_IGNORE.
    let mut h = Handle::new(c"sshd");
    h.handle().set_item_str(pam::items::User(c"alice")).unwrap();
    h.putenv(c"SSH_AUTH_INFO_0=publickey ssh-ed25519-cert-v01@openssh.com AAAA");
    for _ in 0..2 {
        let (code, e) = session::open_once(h.handle(), &[NO_CONFIG]);
        assert_eq!(code, PamResultCode::PAM_IGNORE);
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].1.result, "no-bind");
    }
}

#[test]
fn bind_end_and_no_bind_lines_carry_session_serial_and_client() {
    let b = pam_jit_core::session::Binding {
        version: pam_jit_core::session::BINDING_VERSION,
        session_id: 7,
        user: "alice".into(),
        grant_id: "g-1".into(),
        role: "dba".into(),
        serial: 42,
        leader_pid: 4242,
        leader_start: 1,
        boot_id: "0f6c1d2e-3a4b-4c5d-8e9f-001122334455".into(),
        since: 1_800_000_000.into(),
        client: "192.0.2.7".into(),
        tty: "ssh".into(),
        not_after: 1_800_000_600.into(),
        ended_at: None,
        ended_by: None,
    };
    for result in ["bind", "end", "no-bind"] {
        let l = session::Event::of_binding(result, &b, "why".into()).line();
        assert_eq!(
            l,
            format!(
                "result={result} user=alice service=- session=7 serial=42 grant=g-1 client=192.0.2.7 leader=4242 reason=why"
            )
        );
    }
    // A no-bind before any grant is known still names the audit session when it is set.
    let l = session::Event::no_bind(
        Some("alice".into()),
        Some("192.0.2.7".into()),
        Some(9),
        "the host configuration is unusable: x".into(),
    )
    .line();
    assert!(
        l.starts_with(
            "result=no-bind user=alice service=- session=9 serial=- grant=- client=192.0.2.7 leader="
        ),
        "{l}"
    );
}

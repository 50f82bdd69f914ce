//! The session hook's pure part (`pam_jit_core::session::bind`): from `SSH_AUTH_INFO_0` text
//! to a binding or the reason there is none, with certificates made here.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use jit_common::{Approval, Grant, UnixTime};
use pam_jit_core::config::Config;
use pam_jit_core::session::bind::{
    CERT_EXTENSION, MAX_AUTH_INFO, MAX_AUTH_LINES, Outcome, Request, certificates, choose,
};
use ssh_key::certificate::{Builder, CertType};
use ssh_key::{Algorithm, PrivateKey};

const NOW: u64 = 1_800_000_000;
const BOOT: &str = "0f6c1d2e-3a4b-4c5d-8e9f-001122334455";

fn key() -> PrivateKey {
    PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap()
}

struct Env {
    config: Config,
    ca: PrivateKey,
    grant_key: PrivateKey,
    user_key: PrivateKey,
}

fn env() -> Env {
    let (ca, grant_key) = (key(), key());
    let config = Config::parse(&format!(
        "user_ca_keys = [\"{}\"]\ngrant_keys = [\"{}\"]\nclock_skew_secs = 60\n",
        ca.public_key().to_openssh().unwrap(),
        grant_key.public_key().to_openssh().unwrap()
    ))
    .unwrap();
    Env {
        config,
        ca,
        grant_key,
        user_key: key(),
    }
}

fn grant(edit: impl FnOnce(&mut Grant)) -> Grant {
    let mut g = Grant {
        version: jit_common::grant::VERSION,
        id: "g-7".into(),
        user: "alice".into(),
        role: "dba".into(),
        hosts: vec!["*".into()],
        sudo: true,
        not_before: (NOW - 60).into(),
        not_after: (NOW + 600).into(),
        issued_at: (NOW - 60).into(),
        request_id: "r-7".into(),
        reason: "test".into(),
        approvers: vec![Approval {
            user: "carol".into(),
            at: (NOW - 60).into(),
        }],
        ticket: None,
        cert_serial: Some(7),
        session_bound: true,
        key_id: String::new(),
    };
    edit(&mut g);
    g
}

struct Cert<'a> {
    signer: &'a PrivateKey,
    serial: u64,
    principals: Vec<&'a str>,
    kind: CertType,
    grant: Option<String>,
    after: u64,
    before: u64,
}

fn cert_with<'a>(e: &'a Env, grant_key: &PrivateKey, edit: impl FnOnce(&mut Cert<'a>)) -> String {
    let doc = String::from_utf8(grant(|_| {}).sign(grant_key).unwrap()).unwrap();
    let mut c = Cert {
        signer: &e.ca,
        serial: 7,
        principals: vec!["alice"],
        kind: CertType::User,
        grant: Some(doc),
        after: NOW - 60,
        before: NOW + 600,
    };
    edit(&mut c);
    let mut b = Builder::new_with_random_nonce(
        &mut rand_core::OsRng,
        e.user_key.public_key().key_data().clone(),
        c.after,
        c.before,
    )
    .unwrap();
    b.serial(c.serial).unwrap();
    b.key_id("jit:r-7:alice").unwrap();
    b.cert_type(c.kind).unwrap();
    for p in &c.principals {
        b.valid_principal(*p).unwrap();
    }
    if let Some(g) = &c.grant {
        b.extension(CERT_EXTENSION, g.as_str()).unwrap();
    }
    let cert = b.sign(c.signer).unwrap();
    format!("publickey {}", cert.to_openssh().unwrap())
}

fn cert<'a>(e: &'a Env, edit: impl FnOnce(&mut Cert<'a>)) -> String {
    cert_with(e, &e.grant_key, edit)
}

fn signed(e: &Env, g: Grant) -> Option<String> {
    Some(String::from_utf8(g.sign(&e.grant_key).unwrap()).unwrap())
}

fn req(session: Option<u32>) -> Request<'static> {
    Request {
        user: "alice",
        now: UnixTime::from_secs(NOW),
        session_id: session,
        parent_session_id: None,
        loginuid: Some(1000),
        user_uid: Some(1000),
        leader_pid: 4242,
        leader_start: 99,
        boot_id: BOOT,
        client: Some("192.0.2.7"),
        tty: None,
    }
}

#[track_caller]
fn refused(o: &Outcome, needle: &str) {
    match o {
        Outcome::Refused { reason, .. } => {
            assert!(reason.contains(needle), "{needle:?} not in {reason:?}")
        }
        other => panic!("expected a refusal with {needle:?}, got {other:?}"),
    }
}

#[test]
fn a_session_bound_certificate_binds() {
    let e = env();
    let info = format!("{}\n", cert(&e, |_| {}));
    let Outcome::Bind(b) = choose(&e.config, &req(Some(12)), Some(&info)) else {
        panic!("no binding")
    };
    b.validate().unwrap();
    assert_eq!(
        (
            b.session_id,
            b.user.as_str(),
            b.grant_id.as_str(),
            b.role.as_str(),
            b.serial
        ),
        (12, "alice", "g-7", "dba", 7)
    );
    assert_eq!(
        (b.leader_pid, b.leader_start, b.boot_id.as_str()),
        (4242, 99, BOOT)
    );
    assert_eq!((b.client.as_str(), b.tty.as_str()), ("192.0.2.7", "-"));
    assert_eq!((b.since, b.not_after), (NOW.into(), (NOW + 600).into()));
    assert_eq!((b.ended_at, b.ended_by), (None, None));
    // A hostile PAM_TTY is escaped, not written raw.
    let mut r = req(Some(12));
    r.tty = Some("pts/1\nresult=bind");
    let Outcome::Bind(b) = choose(&e.config, &r, Some(&info)) else {
        panic!()
    };
    assert!(!b.tty.contains('\n'));
    b.validate().unwrap();
}

#[test]
fn nothing_to_bind_is_not_a_refusal() {
    let e = env();
    assert!(matches!(
        choose(&e.config, &req(Some(1)), None),
        Outcome::Nothing(_)
    ));
    assert!(matches!(
        choose(&e.config, &req(Some(1)), Some("")),
        Outcome::Nothing(_)
    ));
    // A plain key, a password login, garbage.
    let plain = format!(
        "publickey {}",
        e.user_key.public_key().to_openssh().unwrap()
    );
    for info in [
        plain.as_str(),
        "password",
        "keyboard-interactive\n\n",
        "\u{0}\u{1}garbage",
    ] {
        assert!(
            matches!(
                choose(&e.config, &req(Some(1)), Some(info)),
                Outcome::Nothing(_)
            ),
            "{info:?}"
        );
    }
    // A certificate without a grant, or whose grant is not session-bound: nothing, even
    // without an audit session id (no fix-it line for logins that do not need one).
    let no_grant = cert(&e, |c| c.grant = None);
    let not_bound = cert(&e, |c| {
        c.grant = signed(&e, grant(|g| g.session_bound = false))
    });
    for info in [&no_grant, &not_bound] {
        assert!(matches!(
            choose(&e.config, &req(None), Some(info)),
            Outcome::Nothing(_)
        ));
        assert!(matches!(
            choose(&e.config, &req(Some(1)), Some(info)),
            Outcome::Nothing(_)
        ));
    }
}

#[test]
fn without_an_audit_session_the_fix_is_named() {
    let e = env();
    let info = cert(&e, |_| {});
    for id in [None, Some(u32::MAX), Some(0)] {
        let o = choose(&e.config, &req(id), Some(&info));
        refused(
            &o,
            "needs `session required pam_loginuid.so` before pam_jit.so (jit-host setup --session)",
        );
        assert!(
            matches!(o, Outcome::Refused { grant: Some(ref g), serial: Some(7), .. } if g == "g-7")
        );
    }
}

#[test]
fn every_check_refuses() {
    let e = env();
    let other = key();
    let r = req(Some(3));
    let cases: Vec<(String, &str)> = vec![
        (
            cert(&e, |c| c.signer = &other),
            "not signed by a user_ca_keys key",
        ),
        (
            cert(&e, |c| {
                c.after = NOW - 7200;
                c.before = NOW - 3600
            }),
            "outside its window",
        ),
        (
            cert(&e, |c| c.kind = CertType::Host),
            "not a user certificate",
        ),
        (
            cert(&e, |c| c.principals = vec!["bob"]),
            "does not list principal alice",
        ),
        (
            cert_with(&e, &other, |_| {}),
            "the certificate's grant is not valid",
        ),
        (
            cert(&e, |c| {
                c.principals = vec!["alice", "bob"];
                c.grant = signed(&e, grant(|g| g.user = "bob".into()))
            }),
            "grant g-7 is for user bob, not alice",
        ),
        (
            cert(&e, |c| c.serial = 8),
            "grant g-7 does not name certificate serial 8",
        ),
        (
            cert(&e, |c| {
                c.grant = signed(
                    &e,
                    grant(|g| {
                        g.not_before = (NOW - 7200).into();
                        g.not_after = (NOW - 3600).into()
                    }),
                )
            }),
            "the certificate's grant is not valid",
        ),
        (
            cert(&e, |c| c.grant = Some("{\"session_bound\": true".into())),
            "does not parse",
        ),
    ];
    for (info, needle) in &cases {
        refused(&choose(&e.config, &r, Some(info)), needle);
    }
    // No user CA configured: nothing can be trusted.
    let bare = Config::parse(&format!(
        "grant_keys = [\"{}\"]\n",
        e.grant_key.public_key().to_openssh().unwrap()
    ))
    .unwrap();
    refused(
        &choose(&bare, &r, Some(&cert(&e, |_| {}))),
        "no user_ca_keys",
    );
}

#[test]
fn the_first_good_certificate_binds_and_clock_skew_is_allowed() {
    let e = env();
    let other = key();
    let info = format!(
        "publickey {}\n{}\n{}\n",
        e.user_key.public_key().to_openssh().unwrap(),
        cert(&e, |c| c.signer = &other),
        cert(&e, |c| c.serial = 7)
    );
    assert!(matches!(
        choose(&e.config, &req(Some(3)), Some(&info)),
        Outcome::Bind(_)
    ));
    // sshd's clock a little ahead of this one: the certificate starts 30 s from now.
    let early = cert(&e, |c| c.after = NOW + 30);
    assert!(matches!(
        choose(&e.config, &req(Some(3)), Some(&early)),
        Outcome::Bind(_)
    ));
    let too_early = cert(&e, |c| c.after = NOW + 120);
    refused(
        &choose(&e.config, &req(Some(3)), Some(&too_early)),
        "outside its window",
    );
}

#[test]
fn the_text_is_bounded_and_garbage_is_named() {
    let e = env();
    let good = cert(&e, |_| {});
    let (certs, problems) = certificates(&format!("{good}\n"));
    assert_eq!((certs.len(), problems.len()), (1, 0));
    // A certificate type with a body that does not parse.
    let (certs, problems) = certificates(
        "publickey ssh-ed25519-cert-v01@openssh.com AAAA!!!\npublickey ssh-rsa-cert-v01@openssh.com\n",
    );
    assert_eq!(certs.len(), 0);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(
        problems[0].starts_with("line 1: a ssh-ed25519-cert-v01@openssh.com that does not parse")
    );
    // Lines past the cap are not looked at.
    let many = format!("{}{good}\n", "password\n".repeat(MAX_AUTH_LINES));
    let (certs, problems) = certificates(&many);
    assert_eq!(certs.len(), 0);
    assert!(problems[0].contains("more than 16 lines"), "{problems:?}");
    assert!(matches!(
        choose(&e.config, &req(Some(3)), Some(&many)),
        Outcome::Nothing(_)
    ));
    // Neither is an oversized text.
    let big = format!("{good}\n{}", "x".repeat(MAX_AUTH_INFO));
    let (certs, problems) = certificates(&big);
    assert_eq!(certs.len(), 0);
    assert!(problems[0].contains("more than 65536"), "{problems:?}");
    // Other methods before the certificate are fine (AuthenticationMethods with two steps).
    let two = format!("keyboard-interactive\n{good}\n");
    assert!(matches!(
        choose(&e.config, &req(Some(3)), Some(&two)),
        Outcome::Bind(_)
    ));
}

#[test]
fn a_live_binding_of_another_connection_is_never_replaced() {
    use pam_jit_core::session::Liveness;
    use pam_jit_core::session::bind::may_replace;
    let e = env();
    let Outcome::Bind(new) = choose(&e.config, &req(Some(3)), Some(&cert(&e, |_| {}))) else {
        panic!()
    };
    assert!(may_replace(None, &new).is_ok());
    assert!(may_replace(Some((&new, &Liveness::Alive)), &new).is_ok());
    let mut other = new.clone();
    other.leader_pid = 5151;
    let err = may_replace(Some((&other, &Liveness::Alive)), &new).unwrap_err();
    assert!(
        err.contains("already has a live binding of another connection (leader pid 5151"),
        "{err}"
    );
    for dead in [
        Liveness::LeaderGone { pid: 5151 },
        Liveness::OtherBoot,
        Liveness::Ended {
            at: NOW.into(),
            by: "logout".into(),
        },
    ] {
        assert!(may_replace(Some((&other, &dead)), &new).is_ok());
    }
}

#[test]
fn a_live_binding_is_never_replaced_by_another_grant_even_from_its_own_leader() {
    use pam_jit_core::session::Liveness;
    use pam_jit_core::session::bind::may_replace;
    let e = env();
    let Outcome::Bind(old) = choose(&e.config, &req(Some(3)), Some(&cert(&e, |_| {}))) else {
        panic!()
    };
    // Same leader (a second `pam_jit.so` session line after pam_env, fed a certificate from
    // ~/.pam_environment): another grant or another serial is refused while `old` lives.
    for edit in [
        (|b: &mut pam_jit_core::session::Binding| b.grant_id = "g-8".into())
            as fn(&mut pam_jit_core::session::Binding),
        |b| b.serial = 8,
    ] {
        let mut new = old.clone();
        edit(&mut new);
        let err = may_replace(Some((&old, &Liveness::Alive)), &new).unwrap_err();
        assert!(
            err.contains("session 3 is already bound to grant g-7 (certificate serial 7)")
                && err.contains("never replaced by another grant"),
            "{err}"
        );
        // A tombstone or a dead binding may still be replaced.
        assert!(may_replace(Some((&old, &Liveness::OtherBoot)), &new).is_ok());
    }
}

#[test]
fn a_second_session_bound_certificate_in_one_connection_is_named_not_bound() {
    use pam_jit_core::session::bind::unbound_others;
    let e = env();
    let second = cert(&e, |c| {
        c.serial = 8;
        c.grant = signed(
            &e,
            grant(|g| {
                g.id = "g-8".into();
                g.cert_serial = Some(8);
            }),
        );
    });
    // AuthenticationMethods publickey,publickey with two jit certificates.
    let info = format!("{}\n{second}\n", cert(&e, |_| {}));
    let Outcome::Bind(b) = choose(&e.config, &req(Some(3)), Some(&info)) else {
        panic!()
    };
    assert_eq!((b.grant_id.as_str(), b.serial), ("g-7", 7));
    assert_eq!(
        unbound_others(&e.config, &req(Some(3)), &info, b.serial),
        vec![("g-8".to_string(), 8)]
    );
    // Alone, or with a plain key or a certificate that fails its checks: nothing else.
    let bad = cert(&e, |c| {
        c.serial = 9;
        c.signer = &e.user_key;
    });
    let info = format!("{}\n{bad}\n", cert(&e, |_| {}));
    assert!(unbound_others(&e.config, &req(Some(3)), &info, 7).is_empty());
}

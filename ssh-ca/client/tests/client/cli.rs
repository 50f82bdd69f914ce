//! The `jit` client against a real `jit-ca serve`: the request/approve/login/extend/revoke
//! life cycle, waiting with progress, `--json` output, settings precedence and error display.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use jit::login::LoginReport;
use jit_api::wire::{ErrorBody, RequestList, RequestState, RequestView, WhoamiView};
use jit_test_kit::running::*;

#[test]
fn request_approve_login_extend_revoke() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);

    let w: WhoamiView = json(ca.jit(&alice).args(["whoami", "--json"]));
    assert_eq!(w.user, "alice");
    assert_eq!(w.groups, vec!["dev".to_string()]);

    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "30m",
        "--reason",
        "INC-1: disk full",
        "--host",
        "db-1",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(r.state, RequestState::Pending);
    assert_eq!(r.user, "alice");
    assert_eq!(r.duration_secs, 1800);
    assert_eq!(r.hosts, vec!["db-1".to_string()]);
    let id = r.id.clone();

    // Not approved yet: login refuses, and nothing is written.
    let (code, _, err) = out(ca.jit(&alice).args(["login", &id]));
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("still pending"), "{err}");
    assert!(!alice.cert().exists());

    // The requester cannot approve their own request.
    let (code, _, err) = out(ca.jit(&alice).args(["approve", &id]));
    assert_eq!(code, 1);
    assert!(err.starts_with("jit: server refused ("), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "one line: {err}");

    // The approver sees it as pending and approves.
    let pending: RequestList = json(ca.jit(&bob).args(["list", "--pending", "--json"]));
    assert!(pending.requests.iter().any(|p| p.id == id), "{pending:?}");
    let approved: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    assert_eq!(approved.state, RequestState::Approved);
    assert_eq!(approved.approvals[0].user, "bob");

    // login writes KEYFILE-cert.pub (0644) and the grant next to it.
    let rep: LoginReport = json(ca.jit(&alice).args(["login", &id, "--json"]));
    let issued = rep.certificate.clone().unwrap();
    assert_eq!(
        rep.certificate_file.as_deref(),
        Some(alice.cert().as_path())
    );
    let mode = std::fs::metadata(alice.cert())
        .unwrap()
        .permissions()
        .mode()
        & 0o777;
    assert_eq!(mode, 0o644);
    let text = std::fs::read_to_string(alice.cert()).unwrap();
    assert_eq!(text.trim(), issued.certificate.trim());
    let l = keygen_l(&alice.cert());
    assert!(l.contains(&format!("Key ID: \"jit:{id}:alice\"")), "{l}");
    assert!(l.contains("alice") && l.contains("dbadmin"), "{l}");
    let grant = rep.grant_file.clone().expect("db-admin is a sudo role");
    assert_eq!(
        std::fs::read_to_string(&grant).unwrap().trim(),
        issued.grant.as_deref().unwrap().trim()
    );
    assert_eq!(rep.agent_loaded, Some(false), "no agent in this test");

    // show and list --mine
    let shown: RequestView = json(ca.jit(&alice).args(["show", &id, "--json"]));
    assert_eq!(shown.serial, Some(issued.serial));
    let mine: RequestList = json(ca.jit(&alice).args(["list", "--mine", "--json"]));
    assert!(mine.requests.iter().all(|r| r.user == "alice"));
    let (code, human, _) = out(ca.jit(&alice).args(["show", &id]));
    assert_eq!(code, 0);
    assert!(human.contains("state:      approved"), "{human}");

    // Extending beyond the window bob approved is refused with a stable code and what to do
    // instead (issue 11, item 2); the certificate file is untouched.
    let before = shown.valid_before.unwrap();
    let (code, stdout, err) =
        out(ca
            .jit(&alice)
            .args(["extend", &id, "--duration", "15m", "--json"]));
    assert_eq!(code, 1, "{err}");
    let body: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body.error.code, "extension_not_approved");
    assert!(body.error.message.contains("request again"), "{stdout}");
    let (code, _, err) = out(ca.jit(&alice).args(["extend", &id, "--duration", "15m"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("extension_not_approved") && err.contains("jit request db-admin"),
        "{err}"
    );
    assert_eq!(
        ssh_key::Certificate::read_file(&alice.cert())
            .unwrap()
            .valid_before(),
        before
    );

    // A role that auto-approves the whole new window: extend moves the end of the window and
    // renews the certificate file (the previous certificate is revoked).
    let rep: LoginReport = json(ca.jit(&alice).args([
        "request",
        "self-serve",
        "--duration",
        "30m",
        "--reason",
        "x",
        "--json",
    ]));
    let self_id = rep.request.id.clone();
    let before = rep.certificate.unwrap().valid_before;
    let (code, ext, err) =
        out(ca
            .jit(&alice)
            .args(["extend", &self_id, "--duration", "15m", "--json"]));
    assert_eq!(code, 0, "{err}");
    let ext: RequestView = serde_json::from_str(&ext).unwrap();
    assert!(ext.valid_before.unwrap() > before, "{ext:?}");
    assert!(err.contains("the previous one is revoked"), "{err}");
    let renewed = ssh_key::Certificate::read_file(&alice.cert()).unwrap();
    assert_eq!(
        renewed.valid_before(),
        ext.valid_before.unwrap(),
        "renewed file"
    );
    assert_eq!(renewed.key_id(), format!("jit:{self_id}:alice"));

    // revoke, then the certificate is gone from the API's point of view.
    let rv: RequestView = json(
        ca.jit(&alice)
            .args(["revoke", &id, "--reason", "done", "--json"]),
    );
    assert_eq!(rv.state, RequestState::Revoked);
    let (code, stdout, err) = out(ca.jit(&alice).args(["login", &id, "--json"]));
    assert_eq!(code, 3, "{err}");
    let body: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body.error.code, "not_granted");

    // status shows nothing active any more.
    let (code, status, _) = out(ca.jit(&alice).arg("status"));
    assert_eq!(code, 0);
    assert!(status.contains("user:     alice"), "{status}");
}

#[test]
fn request_waits_for_approval_then_installs_the_certificate() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let child = ca
        .jit(&alice)
        .args([
            "request",
            "web-read",
            "--duration",
            "10m",
            "--reason",
            "look",
            "--json",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_pending(&ca, &bob);
    let _: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    // Not a terminal: plain progress lines on stderr, JSON alone on stdout.
    assert!(stderr.contains("waiting for approval of"), "{stderr}");
    let rep: LoginReport = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(rep.request.id, id);
    assert_eq!(rep.request.state, RequestState::Approved);
    // Issue 11, item 1: a role without sudo gets a grant too (its host scope, sudo = false);
    // it used to get none, so no grant file was written.
    let grant = rep
        .grant_file
        .clone()
        .expect("every role's certificate carries a grant");
    let doc = std::fs::read(&grant).unwrap();
    let g = jit_common::UnverifiedGrant::parse(&doc).unwrap();
    assert!(!g.claims_unverified().sudo, "web-read is not a sudo role");
    assert!(alice.cert().exists());
    assert!(keygen_l(&alice.cert()).contains(&format!("jit:{id}:alice")));
}

#[test]
fn a_denied_request_exits_3() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let child = ca
        .jit(&alice)
        .args([
            "request",
            "web-read",
            "--duration",
            "10m",
            "--reason",
            "look",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_pending(&ca, &bob);
    let d: RequestView = json(
        ca.jit(&bob)
            .args(["deny", &id, "--reason", "not today", "--json"]),
    );
    assert_eq!(d.state, RequestState::Denied);
    let o = child.wait_with_output().unwrap();
    assert_eq!(o.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        stderr.contains("denied") && stderr.contains("not today"),
        "{stderr}"
    );
    assert!(!alice.cert().exists());
}

fn wait_for_pending(ca: &Ca, approver: &User) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let l: RequestList = json(ca.jit(approver).args(["list", "--pending", "--json"]));
        if let Some(r) = l.requests.first() {
            return r.id.clone();
        }
        assert!(Instant::now() < deadline, "the request never showed up");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn server_errors_are_one_line_with_their_code() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let (code, stdout, err) = out(ca.jit(&alice).args([
        "request",
        "no-such-role",
        "--duration",
        "5m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ]));
    assert_eq!(code, 1);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("unknown_role"), "{err}");
    let body: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body.error.code, "unknown_role");

    let (code, _, err) = out(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "2h",
        "--reason",
        "x",
        "--no-wait",
    ]));
    assert_eq!(code, 1);
    assert!(err.contains("duration_too_long"), "{err}");

    // A key the CA does not know.
    let stranger = User {
        name: "mallory".into(),
        home: ca.dir.path().join("home/mallory"),
    };
    keygen(&stranger.key(), "");
    let (code, _, err) = out(ca.jit(&stranger).arg("whoami"));
    assert_eq!(code, 1);
    assert!(err.contains("unknown_key"), "{err}");

    // Bad ids and durations are usage errors (2), caught before any call.
    let (code, _, err) = out(ca.jit(&alice).args(["show", "../x"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid request id"), "{err}");
    let (code, _, err) =
        out(ca
            .jit(&alice)
            .args(["request", "db-admin", "--duration", "soon", "--reason", "x"]));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("invalid duration"), "{err}");

    // An encrypted key file gets a clear message pointing at the agent.
    let locked = ca.dir.path().join("locked/id_ed25519");
    keygen(&locked, "secret passphrase");
    let (code, _, err) = out(ca.jit(&alice).arg("--identity").arg(&locked).arg("whoami"));
    assert_eq!(code, 1);
    assert!(
        err.contains("encrypted") && err.contains("ssh-add"),
        "{err}"
    );

    // Nothing listening.
    let (code, _, err) = out(ca
        .jit(&alice)
        .args(["--server", "http://127.0.0.1:9", "whoami"]));
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot reach the CA at http://127.0.0.1:9"),
        "{err}"
    );
}

#[test]
fn server_and_identity_precedence() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let dead = "http://127.0.0.1:9";
    let cfg_dir = alice.home.join(".config/jit");
    std::fs::create_dir_all(&cfg_dir).unwrap();

    // Nothing configured: exit 2 and all three places named.
    let (code, _, err) = out(ca.jit(&alice).env_remove("JIT_SERVER").arg("whoami"));
    assert_eq!(code, 2);
    assert!(
        err.contains("--server") && err.contains("JIT_SERVER") && err.contains("config.toml"),
        "{err}"
    );

    // Config file alone works.
    std::fs::write(
        cfg_dir.join("config.toml"),
        format!("server = \"{}\"\n", ca.url),
    )
    .unwrap();
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env_remove("JIT_SERVER")
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");

    // The environment beats the file, the flag beats both.
    std::fs::write(
        cfg_dir.join("config.toml"),
        format!("server = \"{dead}\"\n"),
    )
    .unwrap();
    let w: WhoamiView = json(ca.jit(&alice).args(["whoami", "--json"]));
    assert_eq!(w.user, "alice");
    let (code, _, err) = out(ca.jit(&alice).args(["--server", dead, "whoami"]));
    assert_eq!(code, 1);
    assert!(err.contains(dead), "{err}");
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_SERVER", dead)
            .args(["--server", &ca.url, "whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");

    // identity: config file, then JIT_IDENTITY, then --identity.
    std::fs::write(
        cfg_dir.join("config.toml"),
        format!(
            "server = \"{}\"\nidentity = \"{}\"\n",
            ca.url,
            bob.key().display()
        ),
    )
    .unwrap();
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env_remove("JIT_SERVER")
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "bob", "config identity used");
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_IDENTITY", alice.key())
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice", "JIT_IDENTITY beats the file");
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_IDENTITY", alice.key())
            .arg("--identity")
            .arg(bob.key())
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "bob", "--identity beats JIT_IDENTITY");

    // A stale SSH_AUTH_SOCK does not get in the way of the default key file.
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("SSH_AUTH_SOCK", alice.home.join("gone.sock"))
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "bob", "config identity still applies");
    std::fs::write(
        cfg_dir.join("config.toml"),
        format!("server = \"{}\"\n", ca.url),
    )
    .unwrap();
    let w: WhoamiView = json(
        ca.jit(&alice)
            .env("SSH_AUTH_SOCK", alice.home.join("gone.sock"))
            .args(["whoami", "--json"]),
    );
    assert_eq!(
        w.user, "alice",
        "default ~/.ssh/id_ed25519 despite a dead agent socket"
    );

    // A typo in the config file is named.
    std::fs::write(cfg_dir.join("config.toml"), "servr = \"x\"\n").unwrap();
    let (code, _, err) = out(ca.jit(&alice).arg("whoami"));
    assert_eq!(code, 2);
    assert!(err.contains("servr"), "{err}");
}

#[test]
fn generate_docs_writes_man_pages_and_completions() {
    let dir = tempfile::tempdir().unwrap();
    run_ok(
        std::process::Command::new(JIT)
            .arg("generate-docs")
            .arg("--out")
            .arg(dir.path()),
    );
    for f in [
        "man/jit.1",
        "man/jit-request.1",
        "man/jit-login.1",
        "completions/jit.bash",
        "completions/_jit",
        "completions/jit.fish",
    ] {
        assert!(dir.path().join(f).is_file(), "{f} missing");
    }
    let page = std::fs::read_to_string(dir.path().join("man/jit-request.1")).unwrap();
    assert!(page.contains("no\\-wait"), "{page}");
}

#[test]
fn a_failed_install_after_approval_says_how_to_retry() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    // A directory where the certificate file should go: the rename fails.
    std::fs::create_dir_all(alice.cert()).unwrap();
    let child = ca
        .jit(&alice)
        .args(["request", "web-read", "--duration", "10m", "--reason", "x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let id = wait_for_pending(&ca, &bob);
    let _: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    let o = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("`jit login {id}` retries")),
        "{stderr}"
    );
    // Once the obstacle is gone, login finishes the job.
    std::fs::remove_dir(alice.cert()).unwrap();
    let rep: LoginReport = json(ca.jit(&alice).args(["login", &id, "--json"]));
    assert_eq!(
        rep.certificate_file.as_deref(),
        Some(alice.cert().as_path())
    );
}

/// Like ssh, jit refuses a private key file that group or others can read, and says how to
/// fix it (issue 11, "Also").
#[test]
fn a_private_key_readable_by_others_is_refused() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let key = alice.key();
    for loose in [0o644, 0o640, 0o604] {
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(loose)).unwrap();
        for args in [
            vec!["whoami".to_string()],
            vec![
                "--identity".to_string(),
                key.display().to_string(),
                "whoami".to_string(),
            ],
        ] {
            let (code, _, err) = out(ca.jit(&alice).args(&args));
            assert_ne!(code, 0, "a {loose:o} key was used ({args:?})");
            assert!(
                err.contains(&format!("chmod 600 {}", key.display()))
                    && err.contains(&format!("{:04o}", loose)),
                "{err}"
            );
        }
    }
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let w: WhoamiView = json(ca.jit(&alice).args(["whoami", "--json"]));
    assert_eq!(w.user, "alice");
}

#[test]
fn a_pinned_ca_fingerprint_binds_calls_to_that_ca() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    // The CA's identity: the fingerprint of the first key of GET /v1/ca.pub.
    let ca_pub = ureq::get(&format!("{}/v1/ca.pub", ca.url))
        .call()
        .unwrap()
        .into_string()
        .unwrap();
    let first = ca_pub.lines().next().unwrap();
    let own = ssh_key::PublicKey::from_openssh(first)
        .unwrap()
        .fingerprint(ssh_key::HashAlg::Sha256)
        .to_string();
    let w: jit_api::wire::WhoamiView = json(
        ca.jit(&alice)
            .env("JIT_CA_FINGERPRINT", &own)
            .args(["whoami", "--json"]),
    );
    assert_eq!(w.user, "alice");
    // Pinned to another CA (say production, while this is staging): refused, not signed for.
    let other = "SHA256:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    let (code, _, err) = out(ca
        .jit(&alice)
        .env("JIT_CA_FINGERPRINT", other)
        .arg("whoami"));
    assert_ne!(code, 0);
    assert!(
        err.contains("wrong_audience") || err.contains(&own),
        "{err}"
    );
    // Not a fingerprint: a usage error naming the setting.
    let (code, _, err) = out(ca
        .jit(&alice)
        .env("JIT_CA_FINGERPRINT", "prod")
        .arg("whoami"));
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("JIT_CA_FINGERPRINT"), "{err}");
}

#[test]
fn roles_lists_what_the_caller_may_request() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let v: jit_api::wire::RolesView = json(ca.jit(&alice).args(["roles", "--json"]));
    let names: Vec<&str> = v.roles.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["db-admin", "self-serve", "web-read"]);
    let (code, stdout, err) = out(ca.jit(&alice).arg("roles"));
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        stdout,
        "db-admin\n  hosts:        db-*\n  principals:   alice, dbadmin\n  sudo:         yes\n  \
         max duration: 1h\n  approvers:    group:dba (1 approval needed)\n  reason:       \
         required\n  auto-approve: no\n\n\
         self-serve\n  hosts:        dev-*\n  principals:   alice\n  sudo:         yes\n  \
         max duration: 2h\n  approvers:    none (1 approval needed)\n  reason:       \
         optional\n  auto-approve: auto:self-serve (up to 2h)\n\n\
         web-read\n  hosts:        web-*\n  principals:   alice\n  sudo:         no\n  \
         max duration: 4h\n  approvers:    group:dba (1 approval needed)\n  reason:       \
         optional\n  auto-approve: no\n"
    );
    let (code, stdout, _) = out(ca.jit(&bob).arg("roles"));
    assert_eq!(code, 0);
    assert_eq!(
        stdout,
        "You may not request any role (an operator adds you to a role's requesters in \
         policy.toml).\n"
    );
    // A mistyped role names the close match.
    let (code, _, err) = out(ca.jit(&alice).args([
        "request",
        "db-admn",
        "--duration",
        "5m",
        "--reason",
        "x",
        "--no-wait",
    ]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "jit: server refused (unknown_role, HTTP 404): there is no role \"db-admn\"; did you \
         mean \"db-admin\"? (jit roles lists the roles you may request)\n"
    );
}

#[test]
fn cancel_withdraws_a_pending_request_and_revoke_points_at_it() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "db-admin",
        "--duration",
        "5m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ]));
    let id = r.id;
    let (code, _, err) = out(ca.jit(&alice).args(["revoke", &id]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (invalid_state, HTTP 409): request {id} is pending, nothing \
             was issued to revoke; to withdraw it use jit cancel {id}\n"
        )
    );
    let (code, _, err) = out(ca.jit(&bob).args(["cancel", &id]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (forbidden, HTTP 403): only the requester may cancel request \
             {id}; an approver denies it (jit deny {id} --reason TEXT)\n"
        )
    );
    let (code, stdout, err) = out(ca
        .jit(&alice)
        .args(["cancel", &id, "--reason", "not needed"]));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.starts_with(&format!(
            "Cancelled: request {id}\nid:         {id}\nstate:      cancelled\n"
        )),
        "{stdout}"
    );
    let shown: RequestView = json(ca.jit(&alice).args(["show", &id, "--json"]));
    assert_eq!(shown.state, RequestState::Cancelled);
    let (code, _, err) = out(ca.jit(&alice).args(["cancel", "../x"]));
    assert_eq!(code, 2, "{err}");
}

#[test]
fn a_second_pending_request_for_a_role_names_the_first() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let args = [
        "request",
        "web-read",
        "--duration",
        "5m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ];
    let first: RequestView = json(ca.jit(&alice).args(args));
    let id = first.id;
    let (code, stdout, err) = out(ca.jit(&alice).args(args));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (duplicate_pending_request, HTTP 409): you already have \
             request {id} pending for role \"web-read\"; wait for it (jit show {id}), or \
             withdraw it first (jit cancel {id})\n"
        )
    );
    let body: ErrorBody = serde_json::from_str(&stdout).unwrap();
    assert_eq!(body.error.code, "duplicate_pending_request");
}

#[test]
fn drop_ends_the_requesters_own_active_elevation() {
    let ca = Ca::start();
    let alice = ca.user("alice", &["dev"]);
    let bob = ca.user("bob", &["dba"]);
    let r: RequestView = json(ca.jit(&alice).args([
        "request",
        "web-read",
        "--duration",
        "5m",
        "--reason",
        "x",
        "--no-wait",
        "--json",
    ]));
    let id = r.id;
    let (code, _, err) = out(ca.jit(&alice).args(["drop", &id]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (invalid_state, HTTP 409): request {id} is pending, nothing \
             was issued to revoke; to withdraw it use jit cancel {id}\n"
        )
    );
    let _: RequestView = json(ca.jit(&bob).args(["approve", &id, "--json"]));
    let (code, _, err) = out(ca.jit(&bob).args(["drop", &id]));
    assert_eq!(code, 1);
    assert_eq!(
        err,
        format!(
            "jit: server refused (forbidden, HTTP 403): only the requester may drop request \
             {id}; an approver revokes it (jit revoke {id})\n"
        )
    );
    let (code, stdout, err) = out(ca.jit(&alice).args(["drop", &id]));
    assert_eq!(code, 0, "{err}");
    assert!(
        stdout.starts_with(&format!(
            "Dropped: request {id}\nid:         {id}\nstate:      revoked\n"
        )),
        "{stdout}"
    );
    let shown: RequestView = json(ca.jit(&alice).args(["show", &id, "--json"]));
    assert_eq!(shown.state, RequestState::Revoked);
}

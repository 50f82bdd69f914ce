//! Operator commands against a RUNNING `jit-ca serve` (issue 11, items 5, 14 and 16): `user
//! remove` and `revoke-grant` reach the served KRL and revocation list within seconds, signed
//! audit checkpoints catch rewritten and truncated trails, and the break-glass tooling.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ssh_key::PrivateKey;

use jit::api::{Api, http_agent};
use jit::identity::Signer;
use jit_api::wire::{CreateRequest, RequestState};
use jit_test_kit::harness::*;

fn jit_ca(args: &[&str]) -> Output {
    Command::new(JIT_CA)
        .args(args)
        .env_remove("JIT_CA_DIR")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// A running `jit-ca serve`, killed (by its PID) on drop.
struct Serve {
    child: std::process::Child,
    url: String,
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_serve(dir: &Path) -> Serve {
    let mut child = Command::new(JIT_CA)
        .args([
            "serve",
            "--dir",
            dir.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    let url = first
        .trim()
        .strip_prefix("jit-ca listening on ")
        .and_then(|r| r.split(' ').next())
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    // Keep reading stdout so the service never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    Serve { child, url }
}

fn api(url: &str, path: PathBuf, key: &PrivateKey) -> Api {
    Api::new(
        url,
        http_agent(None).unwrap(),
        Signer::File {
            path,
            key: Box::new(key.clone()),
        },
    )
}

fn get(url: &str, path: &str) -> (u16, Vec<u8>) {
    match ureq::get(&format!("{url}{path}")).call() {
        Ok(r) => {
            let status = r.status();
            let mut body = Vec::new();
            std::io::Read::read_to_end(&mut r.into_reader(), &mut body).unwrap();
            (status, body)
        }
        Err(ureq::Error::Status(s, r)) => (s, r.into_string().unwrap_or_default().into_bytes()),
        Err(e) => panic!("GET {path}: {e}"),
    }
}

/// Polls `check` every 100 ms for up to `secs` seconds.
fn within(secs: u64, what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s of the change"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `ssh-keygen -Q -f KRL CERT`: true if the KRL revokes the certificate.
fn krl_revokes(dir: &Path, krl: &[u8], cert: &str) -> bool {
    let k = write(dir, "served.krl", krl);
    let c = write(dir, "cert.pub", format!("{cert}\n").as_bytes());
    let (ok, out) = ssh_keygen(&["-Q", "-f", k.to_str().unwrap(), c.to_str().unwrap()]);
    assert!(ok || out.contains("REVOKED"), "ssh-keygen -Q failed: {out}");
    !ok
}

fn served_revocations(url: &str) -> String {
    let (s, body) = get(url, "/v1/revocations");
    assert_eq!(s, 200);
    String::from_utf8(body).unwrap()
}

/// Item 5: `jit-ca user remove` while serve runs ends the user's access: pending requests
/// denied, approved ones revoked, and the served KRL and revocation list say so within
/// seconds. (Before: only the user row went; certificate and grant stayed valid.)
#[test]
fn user_remove_on_a_running_serve_revokes_and_denies_within_seconds() {
    let (tmp, keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let serve = start_serve(&dir);
    let pk = keys["alice"].public_key().to_openssh().unwrap();
    let mut alice = api(&serve.url, tmp.path().join("alice"), &keys["alice"]);
    let mut bob = api(&serve.url, tmp.path().join("bob"), &keys["bob"]);
    let create = |role: &str| CreateRequest {
        role: role.into(),
        duration_secs: 1800,
        reason: "incident 42".into(),
        hosts: Vec::new(),
        public_key: pk.clone(),
        start: None,
    };
    let active = alice.create(&create("db-admin")).unwrap();
    let approved = bob.approve(&active.id).unwrap();
    assert_eq!(approved.state, RequestState::Approved);
    let grant_id = approved.grant_id.clone().unwrap();
    let cert = alice.certificate(&active.id).unwrap().certificate;
    let pending = alice.create(&create("two-man")).unwrap();
    assert_eq!(pending.state, RequestState::Pending);

    let (_, krl) = get(&serve.url, "/v1/krl");
    assert!(!krl_revokes(tmp.path(), &krl, &cert), "not revoked yet");
    assert!(!served_revocations(&serve.url).contains(&grant_id));

    let o = jit_ca(&["user", "remove", "alice", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
    within(5, "the served KRL revokes alice's certificate", || {
        krl_revokes(tmp.path(), &get(&serve.url, "/v1/krl").1, &cert)
    });
    assert!(
        text(&o).contains("denied 1 pending and revoked 1 approved"),
        "{}",
        text(&o)
    );
    within(5, "the served revocation list names alice's grant", || {
        served_revocations(&serve.url).contains(&grant_id)
    });
    assert_eq!(bob.show(&active.id).unwrap().state, RequestState::Revoked);
    let denied = bob.show(&pending.id).unwrap();
    assert_eq!(denied.state, RequestState::Denied);
    assert!(
        denied
            .denial_reason
            .as_deref()
            .is_some_and(|r| r.contains("removed")),
        "{denied:?}"
    );
    assert!(alice.whoami().is_err(), "a removed user's key still works");

    let events = jit_ca::admin::audit_export(&dir).unwrap();
    let removal = events.iter().find(|r| r["event"] == "user_remove").unwrap();
    assert_eq!(removal["details"]["revoked"][0], active.id.as_str());
    assert_eq!(removal["details"]["denied"][0], pending.id.as_str());
    assert_eq!(removal["details"]["grant_ids"][0], grant_id.as_str());
    let o = jit_ca(&["audit", "verify", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Item 16 (CA side): `jit-ca revoke-grant` takes a CA grant id, a serial, or a grant this CA
/// never saw (break-glass), reaches a running serve within seconds, and errs clearly.
#[test]
fn revoke_grant_reaches_a_running_serve_within_seconds() {
    let (tmp, keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let d = dir.to_str().unwrap();
    let serve = start_serve(&dir);
    let pk = keys["alice"].public_key().to_openssh().unwrap();
    let mut alice = api(&serve.url, tmp.path().join("alice"), &keys["alice"]);
    let mut bob = api(&serve.url, tmp.path().join("bob"), &keys["bob"]);
    let mut issue = || {
        let r = alice
            .create(&CreateRequest {
                role: "db-admin".into(),
                duration_secs: 1800,
                reason: "x".into(),
                hosts: Vec::new(),
                public_key: pk.clone(),
                start: None,
            })
            .unwrap();
        let v = bob.approve(&r.id).unwrap();
        (r.id, v.grant_id.unwrap(), v.serial.unwrap())
    };
    let (req1, grant1, _) = issue();
    let (req2, _, serial2) = issue();
    let cert2 = alice.certificate(&req2).unwrap().certificate;

    // A CA grant id: the grant and its request are revoked.
    let o = jit_ca(&[
        "revoke-grant",
        &grant1,
        "--reason",
        "lost laptop",
        "--dir",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    within(5, "the served list names the grant", || {
        served_revocations(&serve.url).contains(&grant1)
    });
    assert_eq!(bob.show(&req1).unwrap().state, RequestState::Revoked);

    // A serial: on the served KRL.
    let o = jit_ca(&["revoke-grant", &serial2.to_string(), "--dir", d, "--json"]);
    assert!(o.status.success(), "{}", text(&o));
    within(5, "the served KRL revokes the serial", || {
        krl_revokes(tmp.path(), &get(&serve.url, "/v1/krl").1, &cert2)
    });

    // A grant id this CA never issued (a break-glass grant): listed from now on.
    let o = jit_ca(&[
        "revoke-grant",
        "bg-0001",
        "--reason",
        "outage over",
        "--dir",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not issued by this CA"), "{}", text(&o));
    within(5, "the served list names the break-glass grant", || {
        served_revocations(&serve.url).contains("\"bg-0001\"")
    });

    // Clear errors: twice, or not an id at all.
    let o = jit_ca(&["revoke-grant", "bg-0001", "--dir", d]);
    assert!(
        !o.status.success() && text(&o).contains("already revoked"),
        "{}",
        text(&o)
    );
    let o = jit_ca(&["revoke-grant", "../etc", "--dir", d]);
    assert!(
        !o.status.success() && text(&o).contains("neither a certificate serial"),
        "{}",
        text(&o)
    );
    let events = jit_ca::admin::audit_export(&dir).unwrap();
    let revs: Vec<_> = events
        .iter()
        .filter(|r| r["event"] == "grant_revocation")
        .collect();
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[0]["details"]["reason"], "lost laptop");
    assert_eq!(revs[2]["details"]["issued_here"], false);
    let o = jit_ca(&["audit", "verify", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
}

/// The allowed-signers recipe of docs/api.md: `ssh-keygen -Y verify` accepts a checkpoint in
/// its own namespace (and not as a grant).
fn keygen_verifies(dir: &Path, doc: &[u8], pubkey: &str, namespace: &str) -> (bool, String) {
    std::fs::write(dir.join("cp"), doc).unwrap();
    std::fs::write(dir.join("allowed"), format!("jit-ca {pubkey}")).unwrap();
    let recipe = format!(
        "sed '/^-----BEGIN SSH SIGNATURE-----$/,$d' cp > cp.body
         sed -n '/^-----BEGIN SSH SIGNATURE-----$/,$p' cp > cp.sig
         ssh-keygen -Y verify -f allowed -I jit-ca -n {namespace} -s cp.sig < cp.body"
    );
    let o = Command::new("sh")
        .arg("-ec")
        .arg(recipe)
        .current_dir(dir)
        .output()
        .unwrap();
    (o.status.success(), text(&o))
}

/// Item 14: the served checkpoint reaches the newest record within seconds of a change, and
/// `ssh-keygen -Y verify` accepts it in the checkpoint namespace only.
#[test]
fn served_checkpoint_is_current_and_ssh_keygen_verifies_it() {
    let (tmp, _keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let serve = start_serve(&dir);
    let checkpoint = || {
        let (s, body) = get(&serve.url, "/v1/audit/checkpoint");
        (s == 200).then_some(body)
    };
    let last = || jit_ca::admin::audit_export(&dir).unwrap().pop().unwrap();
    let seq_of = |doc: &[u8]| -> u64 {
        let body = String::from_utf8_lossy(doc);
        let line = body.lines().find(|l| l.contains("\"seq\"")).unwrap();
        line.trim()
            .trim_start_matches("\"seq\":")
            .trim()
            .trim_end_matches(',')
            .parse()
            .unwrap()
    };
    within(5, "a checkpoint of the startup record", || {
        checkpoint().is_some_and(|d| seq_of(&d) == last()["seq"].as_u64().unwrap())
    });
    // A change made by the CLI (user add), then one by the service (a refused call).
    let zed = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let zed_pub = write(
        tmp.path(),
        "zed.pub",
        zed.public_key().to_openssh().unwrap().as_bytes(),
    );
    let o = jit_ca(&[
        "user",
        "add",
        "zed",
        "--key",
        zed_pub.to_str().unwrap(),
        "--dir",
        dir.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let (s, _) = get(&serve.url, "/v1/whoami");
    assert_eq!(s, 401);
    let newest = last();
    within(5, "the checkpoint reaches the newest record", || {
        checkpoint().is_some_and(|d| {
            seq_of(&d) == newest["seq"].as_u64().unwrap()
                && String::from_utf8_lossy(&d).contains(newest["hash"].as_str().unwrap())
        })
    });
    let doc = checkpoint().unwrap();
    let grant_pub = std::fs::read_to_string(dir.join("keys/grant.pub")).unwrap();
    let (ok, out) = keygen_verifies(tmp.path(), &doc, &grant_pub, "jit-audit-checkpoint@jit");
    assert!(ok, "ssh-keygen refused the checkpoint: {out}");
    assert!(
        out.contains("Good \"jit-audit-checkpoint@jit\" signature"),
        "{out}"
    );
    let (ok, _) = keygen_verifies(tmp.path(), &doc, &grant_pub, "jit-grant@jit");
    assert!(!ok, "a checkpoint must not verify as a grant");
    // And the CLI accepts it for the untouched trail.
    let cp = write(tmp.path(), "latest.checkpoint", &doc);
    let o = jit_ca(&[
        "audit",
        "verify",
        "--dir",
        dir.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Signs a checkpoint of the current head with an in-process CA on `dir`.
fn checkpoint_now(dir: &Path) -> Vec<u8> {
    let ca = jit_ca::service::Ca::open(
        dir,
        std::sync::Arc::new(jit_ca::clock::FixedClock::new(T0 + 60)),
    )
    .unwrap();
    assert!(ca.refresh_checkpoint().unwrap());
    ca.checkpoint().unwrap().0.body.to_vec()
}

/// Rewrites record `seq`'s details, re-chains every later record and drops the newest: what
/// someone with write access to jit.db can do without any key.
fn rewrite_rechain_truncate(dir: &Path, seq: u64) {
    let c = jit_test_kit::pg::Sql::of_dir(dir);
    c.unguard_audit();
    c.run(
        "UPDATE audit SET details = replace(details, 'dba', 'dev') WHERE seq = ?1",
        jit_test_kit::sql_params![seq],
    );
    let max: i64 = c.one("SELECT max(seq) FROM audit", &[]);
    c.run(
        "DELETE FROM audit WHERE seq = ?1",
        jit_test_kit::sql_params![max],
    );
    let rows: Vec<(i64, i64, String, String, String)> = c
        .run(
            "SELECT seq, time, actor, event, details FROM audit ORDER BY seq",
            &[],
        )
        .into_iter()
        .map(|r| {
            let r: Vec<String> = r.into_iter().map(Option::unwrap).collect();
            (
                r[0].parse().unwrap(),
                r[1].parse().unwrap(),
                r[2].clone(),
                r[3].clone(),
                r[4].clone(),
            )
        })
        .collect();
    let mut prev = jit_ca::audit::GENESIS.to_string();
    for (s, t, a, e, d) in rows {
        let h = jit_ca::audit::hash(&prev, s as u64, t as u64, &a, &e, &d);
        c.run(
            "UPDATE audit SET prev_hash = ?1, hash = ?2 WHERE seq = ?3",
            jit_test_kit::sql_params![&prev, &h, s],
        );
        prev = h;
    }
}

fn verify_with(dir: &Path, cp: &Path) -> Output {
    jit_ca(&[
        "audit",
        "verify",
        "--dir",
        dir.to_str().unwrap(),
        "--checkpoint",
        cp.to_str().unwrap(),
    ])
}

/// Item 14: a rewritten, re-chained and truncated trail passes the plain chain check (the
/// weakness) but not `--checkpoint`; nor does truncation alone; nor a checkpoint signed by
/// another key.
#[test]
fn a_signed_checkpoint_catches_rewrite_rechain_and_truncation() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let d = dir.to_str().unwrap();
    let cp = write(tmp.path(), "cp", &checkpoint_now(&dir));
    let o = verify_with(&dir, &cp);
    assert!(o.status.success(), "{}", text(&o));

    // Rewrite + re-chain + truncate.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    let o = Command::new("cp")
        .arg("-a")
        .arg(&dir)
        .arg(&copy)
        .output()
        .unwrap();
    assert!(o.status.success());
    let copy = copy.join("ca");
    jit_test_kit::pg::copy_database_of(&copy);
    rewrite_rechain_truncate(&copy, 2);
    let o = jit_ca(&["audit", "verify", "--dir", copy.to_str().unwrap()]);
    assert!(
        o.status.success(),
        "the plain chain check cannot see it: {}",
        text(&o)
    );
    let o = verify_with(&copy, &cp);
    assert!(!o.status.success(), "rewrite not detected: {}", text(&o));
    assert!(text(&o).contains("truncated"), "{}", text(&o));

    // Rewrite + re-chain only (no truncation): the named record's hash changed.
    let copy2 = tmp.path().join("copy2");
    std::fs::create_dir(&copy2).unwrap();
    assert!(
        Command::new("cp")
            .arg("-a")
            .arg(&dir)
            .arg(&copy2)
            .status()
            .unwrap()
            .success()
    );
    let copy2 = copy2.join("ca");
    jit_test_kit::pg::copy_database_of(&copy2);
    {
        // Add a record so truncation of one leaves the checkpointed record in place.
        let zed = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
        let zed_pub = write(
            tmp.path(),
            "zed.pub",
            zed.public_key().to_openssh().unwrap().as_bytes(),
        );
        jit_ca::admin::user_add(&copy2, "zed", &zed_pub, &[], T0).unwrap();
    }
    rewrite_rechain_truncate(&copy2, 2);
    let o = verify_with(&copy2, &cp);
    assert!(!o.status.success(), "rewrite not detected: {}", text(&o));
    assert!(text(&o).contains("rewritten"), "{}", text(&o));

    // A checkpoint signed by a key that is not the CA's.
    let other = PrivateKey::random(&mut rand_core::OsRng, ssh_key::Algorithm::Ed25519).unwrap();
    let records = jit_ca::admin::audit_export(&dir).unwrap();
    let head = records.last().unwrap();
    let forged = jit_ca::audit::checkpoint::Checkpoint::sign(
        head["seq"].as_u64().unwrap(),
        head["hash"].as_str().unwrap(),
        T0,
        &other,
    )
    .unwrap();
    let fcp = write(tmp.path(), "forged", &forged);
    let o = verify_with(&dir, &fcp);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("does not verify against the CA's keys"),
        "{}",
        text(&o)
    );
    // A path that is not a checkpoint and has no end (a mistake, or a hostile monitor
    // config): refused after a bounded read, not read forever.
    let o = verify_with(&dir, Path::new("/dev/zero"));
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("not a checkpoint"), "{}", text(&o));
    let _ = d;
}

/// Item 16: the break-glass tooling works offline (no data directory), refuses windows
/// longer than hosts accept by default, and makes grants that verify against its key.
#[test]
fn break_glass_keygen_and_sign_offline() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("bg");
    let k = key.to_str().unwrap();
    let o = jit_ca(&["break-glass", "keygen", "--out", k]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&key).unwrap().permissions())
            & 0o777,
        0o600
    );
    let o = jit_ca(&["break-glass", "keygen", "--out", k]);
    assert!(!o.status.success(), "never overwrites: {}", text(&o));

    let sign = |out: &str, duration: &str, extra: &[&str]| {
        let mut args = vec![
            "break-glass",
            "sign",
            "--key",
            k,
            "--user",
            "bob",
            "--hosts",
            "db-1,db-2",
            "--duration",
            duration,
            "--reason",
            "CA down, INC-7",
            "--out",
            out,
        ];
        args.extend_from_slice(extra);
        jit_ca(&args)
    };
    let long = tmp.path().join("long.grant");
    let o = sign(long.to_str().unwrap(), "25h", &[]);
    assert!(!o.status.success());
    assert!(
        text(&o).contains("break_glass_max_window_secs")
            && text(&o).contains("--allow-long-window"),
        "{}",
        text(&o)
    );
    assert!(!long.exists());
    let o = sign(long.to_str().unwrap(), "25h", &["--allow-long-window"]);
    assert!(o.status.success(), "{}", text(&o));

    let g = tmp.path().join("bg.grant");
    let o = sign(g.to_str().unwrap(), "2h", &["--json"]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let doc = std::fs::read(&g).unwrap();
    let ring = jit_common::KeyRing::from_openssh_lines(
        &std::fs::read_to_string(tmp.path().join("bg.pub")).unwrap(),
    )
    .unwrap();
    let now = jit_common::now();
    let v = jit_common::UnverifiedGrant::parse(&doc)
        .unwrap()
        .verify_at(now, &ring, 60)
        .unwrap();
    let gr = v.grant();
    assert_eq!(gr.id, r["id"].as_str().unwrap());
    assert!(gr.id.starts_with("bg-"));
    assert_eq!((gr.user.as_str(), gr.sudo), ("bob", true));
    assert_eq!(gr.hosts, vec!["db-1", "db-2"]);
    assert_eq!(gr.not_after - gr.not_before, jit_common::Secs::new(7200));
    assert_eq!(gr.reason, "CA down, INC-7");
}

/// "Also": `policy check` warns when a role makes root a principal or a user.
#[test]
fn policy_check_warns_when_root_is_a_principal_or_user() {
    let policy = format!(
        "{POLICY}\n[roles.rooty]\nprincipals = [\"root\"]\nhosts = [\"db-*\"]\nmax_duration = \"1h\"\nrequesters = [\"root\", \"group:dev\"]\napprovers = [\"group:dba\"]\n"
    );
    let (tmp, _) = setup_dir(&policy);
    let dir = data_dir(&tmp);
    let o = jit_ca(&["policy", "check", "--dir", dir.to_str().unwrap()]);
    let t = text(&o);
    assert!(
        t.contains("warning: roles.rooty.principals: \"root\""),
        "{t}"
    );
    assert!(
        t.contains("warning: roles.rooty.requesters: user \"root\""),
        "{t}"
    );
    let o = jit_ca(&["policy", "check", "--dir", dir.to_str().unwrap()]);
    assert!(o.status.success(), "warnings only: {}", text(&o));
    // The default test policy has no such warning.
    let (tmp, _) = setup_dir(POLICY);
    let o = jit_ca(&["policy", "check", "--dir", data_dir(&tmp).to_str().unwrap()]);
    assert!(!text(&o).contains("\"root\""), "{}", text(&o));
}

/// Removing a user must work while policy.toml is broken (someone is fixing it).
#[test]
fn user_remove_works_with_a_broken_policy_file() {
    let (tmp, _) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    std::fs::write(dir.join("policy.toml"), "[roles.x]\nnot toml at all =\n").unwrap();
    let o = jit_ca(&[
        "user",
        "remove",
        "eve",
        "--dir",
        dir.to_str().unwrap(),
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(r["removed"], "eve");
    let o = jit_ca(&["user", "remove", "eve", "--dir", dir.to_str().unwrap()]);
    assert!(
        !o.status.success() && text(&o).contains("there is no user \"eve\""),
        "{}",
        text(&o)
    );
}

/// Issue 11 items 13 and 16: `revoke-grant` takes its reason through the same one-line check
/// as every other reason (no invisible or bidi format characters), and refuses without
/// revoking anything.
#[test]
fn revoke_grant_refuses_a_reason_with_bidi_characters() {
    let (tmp, _keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let d = dir.to_str().unwrap();
    for reason in [
        "done \u{202e}gnp.exe",
        "a\u{2066}b",
        "zero\u{200b}width",
        "x\u{feff}",
    ] {
        let o = jit_ca(&["revoke-grant", "bg-0001", "--reason", reason, "--dir", d]);
        assert!(!o.status.success(), "{reason:?}: {}", text(&o));
        assert!(text(&o).contains("U+"), "{}", text(&o));
    }
    let events = jit_ca::admin::audit_export(&dir).unwrap();
    assert!(!events.iter().any(|r| r["event"] == "grant_revocation"));
    let o = jit_ca(&[
        "revoke-grant",
        "bg-0001",
        "--reason",
        "outage over",
        "--dir",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

/// Issue 11 item 16: `break-glass sign` refuses a grant hosts would refuse (over the 16 KiB a
/// host parses), instead of writing one that fails on the host during the outage.
#[test]
fn break_glass_sign_refuses_a_grant_hosts_would_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let key = tmp.path().join("bg");
    let k = key.to_str().unwrap();
    assert!(
        jit_ca(&["break-glass", "keygen", "--out", k])
            .status
            .success()
    );
    let hosts: Vec<String> = (0..64)
        .map(|i| format!("h{i:03}{}", ".x".repeat(120)))
        .collect();
    let hosts = hosts.join(",");
    let out = tmp.path().join("big.grant");
    let o = jit_ca(&[
        "break-glass",
        "sign",
        "--key",
        k,
        "--user",
        "bob",
        "--hosts",
        &hosts,
        "--duration",
        "1h",
        "--reason",
        "CA down",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hosts would refuse"), "{}", text(&o));
    assert!(!out.exists());
}

/// Review fix (issue 13): `jit-ca user key remove` denies, in the same transaction, the
/// user's pending requests to certify a removed key, and names them (text, `--json`, audit
/// record `denied_requests`). Before, they stayed approvable: an approver who did not know
/// the key was lost or stolen could still have it certified.
#[test]
fn user_key_remove_denies_pending_requests_for_the_removed_key() {
    let (tmp, keys) = setup_dir(POLICY);
    let dir = data_dir(&tmp);
    let d = dir.to_str().unwrap();
    let serve = start_serve(&dir);
    let k1 = &keys["alice"];
    let k2 = jit_test_kit::keys::named("alice-laptop-2");
    let (_, k1_pub) = jit_test_kit::keys::write_pair(tmp.path(), "k1", k1);
    let (_, k2_pub) = jit_test_kit::keys::write_pair(tmp.path(), "k2", &k2);
    let fp = |k: &PrivateKey| {
        k.public_key()
            .fingerprint(ssh_key::HashAlg::Sha256)
            .to_string()
    };
    let (fp1, fp2) = (fp(k1), fp(&k2));
    let o = jit_ca(&[
        "user",
        "key",
        "add",
        "alice",
        "--key",
        k2_pub.to_str().unwrap(),
        "--dir",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut alice = api(&serve.url, tmp.path().join("k2"), &k2);
    let mut bob = api(&serve.url, tmp.path().join("bob"), &keys["bob"]);
    let create = |role: &str, key: &PrivateKey| CreateRequest {
        role: role.into(),
        duration_secs: 1800,
        reason: "incident 42".into(),
        hosts: Vec::new(),
        public_key: key.public_key().to_openssh().unwrap(),
        start: None,
    };
    let p1 = alice.create(&create("db-admin", k1)).unwrap();
    let p2 = alice.create(&create("two-man", &k2)).unwrap();
    assert_eq!(p1.state, RequestState::Pending);
    assert_eq!(p2.state, RequestState::Pending);

    // K1 goes: its pending request is denied at once, the other stays pending.
    let o = jit_ca(&["user", "key", "remove", "alice", "--key", &fp1, "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        String::from_utf8_lossy(&o.stdout),
        format!(
            "removed 1 key(s) from alice: {fp1} (login); alice has 1 login and 0 approval \
             key(s) left. Calls signed with a removed key are refused from now on; certificates \
             already issued stay valid until they expire (jit-ca revoke ID ends one)\n\
             denied pending request(s) {} to certify a removed key (an approver could have \
             certified it)\n",
            p1.id
        )
    );
    let denied = bob.show(&p1.id).unwrap();
    assert_eq!(denied.state, RequestState::Denied);
    assert_eq!(
        denied.denial_reason.as_deref(),
        Some(format!("key {fp1} was removed (jit-ca user key remove)").as_str())
    );
    assert!(
        denied
            .denied_by
            .as_deref()
            .unwrap()
            .starts_with("admin:uid="),
        "{denied:?}"
    );
    let err = bob.approve(&p1.id).unwrap_err().to_string();
    assert!(err.contains("not pending"), "{err}");
    assert_eq!(bob.show(&p2.id).unwrap().state, RequestState::Pending);
    let events = jit_ca::admin::audit_export(&dir).unwrap();
    let rec = events
        .iter()
        .rfind(|r| r["event"] == "user_remove_key")
        .unwrap();
    assert_eq!(
        rec["details"],
        serde_json::json!({"user": "alice", "keys": [{"fingerprint": fp1, "purpose": "login"}],
            "login_keys_left": 1, "approval_keys_left": 0, "live_requests": [],
            "denied_requests": [p1.id]})
    );

    // With --json: K1 back, a second pending request for K2, then K2 goes.
    let o = jit_ca(&[
        "user",
        "key",
        "add",
        "alice",
        "--key",
        k1_pub.to_str().unwrap(),
        "--dir",
        d,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let p3 = alice.create(&create("db-admin", &k2)).unwrap();
    let o = jit_ca(&[
        "user",
        "key",
        "remove",
        "alice",
        "--key",
        k2_pub.to_str().unwrap(),
        "--dir",
        d,
        "--json",
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let mut ids = vec![p2.id.clone(), p3.id.clone()];
    ids.sort();
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        r,
        serde_json::json!({"user": "alice", "removed": [{"fingerprint": fp2, "purpose": "login"}],
            "login_keys_left": 1, "approval_keys_left": 0, "live_requests": [],
            "denied_requests": ids})
    );
    assert_eq!(bob.show(&p2.id).unwrap().state, RequestState::Denied);
    assert_eq!(bob.show(&p3.id).unwrap().state, RequestState::Denied);
    let o = jit_ca(&["audit", "verify", "--dir", d]);
    assert!(o.status.success(), "{}", text(&o));
}

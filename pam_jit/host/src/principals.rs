//! `jit-host principals USER CERT_BASE64`: sshd's `AuthorizedPrincipalsCommand`.
//!
//! The input is attacker-controlled (any client can present any certificate), so every
//! step is checked before anything is stored, and nothing is printed unless every check
//! passed:
//!
//! 1. USER is a valid login name; the base64 is at most 64 KiB and decodes to an OpenSSH
//!    certificate wire blob.
//! 2. The certificate is signed by one of host.toml's `user_ca_keys`, is inside its window
//!    (`Certificate::validate_at`), is a user certificate, and lists USER among its
//!    principals (a certificate without principals is refused).
//! 3. Its serial is not in the local signed revocation list (sshd also checks the KRL), and
//!    that list exists, verifies and is not older than `revocation_max_age_secs` (the same
//!    staleness rule as `pam_jit.so`; a host that never synced refuses every certificate).
//! 4. Its scope ([`check_scope`]): it must carry the `jit-grant@jit` extension (the CA
//!    embeds a grant in every certificate, `sudo = false` for roles without sudo; a
//!    certificate of the user CA without one is refused), and the grant must parse, verify
//!    against `grant_keys` and its window, name this certificate's serial, be for one of
//!    the certificate's principals, not be revoked (by id), and have a host selector that
//!    matches one of this host's names (the kernel host name and host.toml's `hostnames`,
//!    as pam_jit uses them). This holds for every principal: logging into a shared account
//!    (`dbadmin`) with a certificate scoped to `web-*` is refused on `db-1` too.
//! 5. A grant for USER is stored atomically (idempotent: sshd calls this twice per login).
//!    A grant for another user (a certificate with extra principals, logging into a shared
//!    account) passed the same scope check but is not stored.
//!
//! Output: the single line `USER`. Every failure is logged to syslog (authpriv) and exits 1
//! without output.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use base64::Engine;
use jit_common::log::{Severity, Syslog, field};
use jit_common::{UnverifiedGrant, VerifiedGrant, VerifiedRevocationList};
use pam_jit_core::config::Config;
use pam_jit_core::decide::revocation_state;
use pam_jit_core::store::read_revocations;
use ssh_key::certificate::CertType;
use ssh_key::{Certificate, HashAlg};

use crate::failure::{Failure, Result, host_names};
use crate::store_write::{Stored, store_grant};

/// The certificate extension that carries a grant (shared contract with `jit-ca`).
pub use jit_common::grant::CERT_EXTENSION as GRANT_EXTENSION;
/// Longest base64 argument accepted.
pub const MAX_CERT_BASE64: usize = 64 * 1024;

/// What a successful check found.
#[derive(Debug)]
pub struct Accepted {
    /// The principal to print.
    pub principal: String,
    /// Certificate serial.
    pub serial: u64,
    /// Certificate key id.
    pub key_id: String,
    /// What happened to the grant the certificate carries (every accepted certificate
    /// carries one).
    pub grant: GrantOutcome,
}

/// What happened to the carried grant.
#[derive(Debug)]
pub enum GrantOutcome {
    /// Stored (or already there).
    Stored { id: String, changed: bool },
    /// Valid but for another user: not stored.
    OtherUser { id: String, grant_user: String },
}

/// Runs the hook.
pub fn run(config_path: &Path, user: &str, cert_b64: &str) -> Result<ExitCode> {
    let mut log = Syslog::new("jit-host");
    let now = jit_common::now().as_secs();
    let result = jit_common::grant::check_user("user", user)
        .map_err(|e| e.to_string())
        .and_then(|()| Config::load(config_path).map_err(|e| e.to_string()))
        .and_then(|config| verify_and_store(&config, user, cert_b64, now));
    match result {
        Ok(a) => {
            let grant = match &a.grant {
                GrantOutcome::Stored { id, changed: true } => format!("{id} (stored)"),
                GrantOutcome::Stored { id, changed: false } => format!("{id} (unchanged)"),
                GrantOutcome::OtherUser { id, grant_user } => {
                    format!("{id} (for {grant_user}, not stored)")
                }
            };
            log.log(
                Severity::Notice,
                &[
                    field("principals", "accept"),
                    field("user", user),
                    field("serial", &a.serial.to_string()),
                    field("key_id", &a.key_id),
                    field("grant", &grant),
                ]
                .join(" "),
            );
            let mut out = std::io::stdout().lock();
            if writeln!(out, "{}", a.principal)
                .and_then(|()| out.flush())
                .is_err()
            {
                return Err(silent("cannot write to stdout"));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(reason) => {
            log.log(
                Severity::Warning,
                &[
                    field("principals", "refuse"),
                    field("user", user),
                    field("reason", &reason),
                ]
                .join(" "),
            );
            Err(silent(&reason))
        }
    }
}

fn silent(reason: &str) -> Failure {
    Failure {
        message: reason.to_string(),
        code: 1,
        silent: true,
    }
}

/// Every check, then the store, on this host (its names: [`host_names`]). Pure except for
/// reading the host name and the revocation list and writing the grant.
pub fn verify_and_store(
    config: &Config,
    user: &str,
    cert_b64: &str,
    now: u64,
) -> std::result::Result<Accepted, String> {
    verify_and_store_on(config, &host_names(config), user, cert_b64, now)
}

/// [`verify_and_store`] on a host known by `host_names`.
pub fn verify_and_store_on(
    config: &Config,
    host_names: &[String],
    user: &str,
    cert_b64: &str,
    now: u64,
) -> std::result::Result<Accepted, String> {
    if cert_b64.len() > MAX_CERT_BASE64 {
        return Err(format!(
            "certificate argument is {} bytes, more than {MAX_CERT_BASE64}",
            cert_b64.len()
        ));
    }
    let blob = base64::engine::general_purpose::STANDARD
        .decode(cert_b64.trim())
        .map_err(|e| format!("certificate is not base64: {e}"))?;
    let cert =
        Certificate::from_bytes(&blob).map_err(|e| format!("not an OpenSSH certificate: {e}"))?;
    if config.user_ca_keys.is_empty() {
        return Err("host.toml has no user_ca_keys; no certificate can be trusted".into());
    }
    let fps: Vec<_> = config
        .user_ca_keys
        .iter()
        .map(|k| k.fingerprint(HashAlg::Sha256))
        .collect();
    cert.validate_at(now, &fps).map_err(|_| {
        format!(
            "certificate serial {} is not signed by a trusted user CA or is outside its window ({}..{})",
            cert.serial(),
            cert.valid_after(),
            cert.valid_before()
        )
    })?;
    if cert.cert_type() != CertType::User {
        return Err("not a user certificate".into());
    }
    if !cert.valid_principals().iter().any(|p| p == user) {
        return Err(format!(
            "certificate serial {} does not list principal {user:?}",
            cert.serial()
        ));
    }
    // The module's staleness rule: a missing, unusable, invalid or stale list refuses the
    // login (fail closed), because revocations could not be checked.
    let revs = revocation_state(config, &read_revocations(&config.state_dir), now.into());
    if let Some(list) = &revs.list
        && list.is_serial_revoked(cert.serial())
    {
        return Err(format!(
            "certificate serial {} is revoked (revocation list #{})",
            cert.serial(),
            list.list().sequence
        ));
    }
    if let Some(problem) = revs.problem {
        return Err(format!(
            "certificate serial {} cannot be checked against revocations: {problem}; run `jit-host sync` as root and enable jit-host-sync.timer",
            cert.serial()
        ));
    }
    let (grant, doc) = check_scope(config, host_names, &cert, revs.list.as_ref(), now)?;
    let grant = take_grant(config, user, &grant, doc)?;
    Ok(Accepted {
        principal: user.to_string(),
        serial: cert.serial(),
        key_id: cert.key_id().to_string(),
        grant,
    })
}

/// Step 4 (issue 11, item 1): the certificate's CA-signed scope. Returns the verified
/// grant and its bytes, or why the certificate must not log in here as anyone.
///
/// Refused: no `jit-grant@jit` extension (a jit certificate that carries no scope); a grant
/// that does not parse or verify or is outside its window; a grant that names another
/// certificate serial (or none); a grant for a user who is not among the certificate's
/// principals; a grant whose id is in the revocation list; a grant none of whose host
/// selectors matches one of `host_names`.
pub fn check_scope<'c>(
    config: &Config,
    host_names: &[String],
    cert: &'c Certificate,
    revocations: Option<&VerifiedRevocationList>,
    now: u64,
) -> std::result::Result<(VerifiedGrant, &'c [u8]), String> {
    let serial = cert.serial();
    let Some(doc) = cert.extensions().get(GRANT_EXTENSION) else {
        return Err(format!(
            "certificate serial {serial} carries no {GRANT_EXTENSION} extension: a jit certificate \
             that carries no scope is refused (request a new certificate from the CA)"
        ));
    };
    let verified = UnverifiedGrant::parse(doc.as_bytes())
        .and_then(|g| g.verify_at(now, &config.grant_keys, config.clock_skew_secs))
        .map_err(|e| format!("the certificate's grant is not valid: {e}"))?;
    let g = verified.grant();
    if g.cert_serial != Some(serial) {
        return Err(match g.cert_serial {
            Some(other) => format!(
                "grant {} names certificate serial {other}, but the certificate's serial is {serial}",
                g.id
            ),
            None => format!(
                "grant {} names no certificate serial; the certificate's serial is {serial}",
                g.id
            ),
        });
    }
    if !cert.valid_principals().contains(&g.user) {
        return Err(format!(
            "grant {} is for user {:?}, who is not among certificate serial {serial}'s principals",
            g.id, g.user
        ));
    }
    if let Some(list) = revocations
        && list.is_grant_revoked(&g.id)
    {
        return Err(format!(
            "grant {} of certificate serial {serial} is revoked (revocation list #{})",
            g.id,
            list.list().sequence
        ));
    }
    let here = g
        .hosts
        .iter()
        .any(|sel| host_names.iter().any(|h| jit_common::host::matches(sel, h)));
    if !here {
        return Err(format!(
            "certificate serial {serial} is scoped to hosts {} (grant {}, role {}), not to this host ({})",
            g.hosts.join(","),
            g.id,
            g.role,
            if host_names.is_empty() {
                "no name known: set hostnames in host.toml".to_string()
            } else {
                host_names.join(",")
            }
        ));
    }
    Ok((verified, doc.as_bytes()))
}

/// Step 5: stores a grant for USER; a grant for another principal is left alone.
fn take_grant(
    config: &Config,
    user: &str,
    verified: &VerifiedGrant,
    doc: &[u8],
) -> std::result::Result<GrantOutcome, String> {
    let g = verified.grant();
    if g.user != user {
        return Ok(GrantOutcome::OtherUser {
            id: g.id.clone(),
            grant_user: g.user.clone(),
        });
    }
    let (_, stored) = store_grant(config, user, &g.id, doc).map_err(|f| f.message)?;
    Ok(GrantOutcome::Stored {
        id: g.id.clone(),
        changed: stored == Stored::Written,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jit_common::{Approval, Grant};
    use pam_jit_core::config::RawConfig;
    use ssh_key::certificate::Builder;
    use ssh_key::{Algorithm, PrivateKey};
    use std::os::unix::fs::PermissionsExt;

    const NOW: u64 = 1_800_000_000;

    fn key() -> PrivateKey {
        PrivateKey::random(&mut rand_core::OsRng, Algorithm::Ed25519).unwrap()
    }

    struct Env {
        _dir: tempfile::TempDir,
        config: Config,
        ca: PrivateKey,
        grant_key: PrivateKey,
        user_key: PrivateKey,
    }

    fn env() -> Env {
        let dir = tempfile::tempdir().unwrap();
        fs_mode(dir.path(), 0o755);
        let state = dir.path().join("state");
        std::fs::create_dir_all(state.join("grants")).unwrap();
        fs_mode(&state, 0o755);
        fs_mode(&state.join("grants"), 0o755);
        let (ca, grant_key) = (key(), key());
        let mut raw: RawConfig = toml::from_str("").unwrap();
        write_list(&state, &grant_key, NOW - 60, &[]);
        raw.state_dir = Some(state);
        raw.grant_writer = Some("nobody".into());
        raw.user_ca_keys = vec![ca.public_key().to_openssh().unwrap()];
        raw.grant_keys = vec![grant_key.public_key().to_openssh().unwrap()];
        Env {
            _dir: dir,
            config: raw.validate().unwrap(),
            ca,
            grant_key,
            user_key: key(),
        }
    }

    /// A signed revocation list, as `jit-host sync` installs it.
    fn write_list(state: &std::path::Path, key: &PrivateKey, issued_at: u64, serials: &[u64]) {
        let mut l = jit_common::RevocationList::new(3, issued_at);
        l.revoked_serials = serials.iter().copied().collect();
        let p = state.join("revocations");
        std::fs::write(&p, l.sign(key).unwrap()).unwrap();
        fs_mode(&p, 0o644);
    }

    fn fs_mode(p: &std::path::Path, m: u32) {
        std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    }

    fn grant_doc(e: &Env, user: &str, serial: Option<u64>) -> String {
        grant_with(e, |g| {
            g.user = user.into();
            g.cert_serial = serial;
        })
    }

    fn grant_with(e: &Env, edit: impl FnOnce(&mut Grant)) -> String {
        let mut g = Grant {
            version: 1,
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
            cert_serial: Some(7),
            key_id: String::new(),
        };
        edit(&mut g);
        String::from_utf8(g.sign(&e.grant_key).unwrap()).unwrap()
    }

    fn cert(
        e: &Env,
        signer: &PrivateKey,
        principals: &[&str],
        kind: CertType,
        grant: Option<&str>,
    ) -> String {
        let mut b = Builder::new_with_random_nonce(
            &mut rand_core::OsRng,
            e.user_key.public_key().key_data().clone(),
            NOW - 60,
            NOW + 600,
        )
        .unwrap();
        b.serial(7).unwrap();
        b.key_id("jit:r-7:alice").unwrap();
        b.cert_type(kind).unwrap();
        for p in principals {
            b.valid_principal(*p).unwrap();
        }
        if principals.is_empty() {
            b.all_principals_valid().unwrap();
        }
        if let Some(g) = grant {
            b.extension(GRANT_EXTENSION, g).unwrap();
        }
        let c = b.sign(signer).unwrap();
        base64::engine::general_purpose::STANDARD.encode(c.to_bytes().unwrap())
    }

    fn is_root() -> bool {
        pam_jit_core::sys::effective_uid() == 0
    }

    #[test]
    fn accepts_a_good_certificate_and_stores_its_grant_idempotently() {
        let e = env();
        if !is_root() {
            return; // the store must be root-owned; CI runs as root
        }
        let g = grant_doc(&e, "alice", Some(7));
        let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&g));
        let a = verify_and_store(&e.config, "alice", &c, NOW).unwrap();
        assert_eq!(a.principal, "alice");
        assert!(matches!(
            a.grant,
            GrantOutcome::Stored { changed: true, .. }
        ));
        let path = e.config.state_dir.join("grants/alice/g-7.grant");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), g);
        let again = verify_and_store(&e.config, "alice", &c, NOW).unwrap();
        assert!(matches!(
            again.grant,
            GrantOutcome::Stored { changed: false, .. }
        ));
        // The shared account: login accepted, alice's grant not stored under dbadmin.
        let a = verify_and_store(&e.config, "dbadmin", &c, NOW).unwrap();
        assert!(matches!(a.grant, GrantOutcome::OtherUser { .. }));
        assert!(!e.config.state_dir.join("grants/dbadmin").exists());
    }

    #[test]
    fn refuses_everything_suspicious() {
        let e = env();
        let good_grant = grant_doc(&e, "alice", Some(7));
        let other = key();
        let cases: Vec<(&str, String, &str)> = vec![
            ("not base64", "!!!".into(), "not base64"),
            ("not a cert", "AAAA".into(), "not an OpenSSH certificate"),
            (
                "other CA",
                cert(&e, &other, &["alice"], CertType::User, None),
                "not signed by a trusted user CA",
            ),
            (
                "host cert",
                cert(&e, &e.ca, &["alice"], CertType::Host, None),
                "not a user certificate",
            ),
            (
                "wrong principal",
                cert(&e, &e.ca, &["bob"], CertType::User, None),
                "does not list principal",
            ),
            (
                "no principals",
                cert(&e, &e.ca, &[], CertType::User, None),
                "does not list principal",
            ),
            (
                "tampered grant",
                cert(
                    &e,
                    &e.ca,
                    &["alice"],
                    CertType::User,
                    Some(&good_grant.replace("\"test\"", "\"tesT\"")),
                ),
                "grant is not valid",
            ),
            (
                "serial mismatch",
                cert(
                    &e,
                    &e.ca,
                    &["alice"],
                    CertType::User,
                    Some(&grant_doc(&e, "alice", Some(8))),
                ),
                "names certificate serial 8",
            ),
        ];
        for (name, c, needle) in cases {
            let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
            assert!(err.contains(needle), "{name}: {err}");
        }
        let c = cert(&e, &e.ca, &["alice"], CertType::User, None);
        let err = verify_and_store(&e.config, "alice", &c, NOW + 3600).unwrap_err();
        assert!(err.contains("outside its window"), "{err}");
        let huge = "A".repeat(MAX_CERT_BASE64 + 1);
        assert!(verify_and_store(&e.config, "alice", &huge, NOW).is_err());
        assert!(!e.config.state_dir.join("grants/alice").exists());
    }

    fn db1() -> Vec<String> {
        vec!["db-1".to_string(), "db-1.example.com".to_string()]
    }

    /// Issue 11, item 1: a certificate works only on the hosts of its grant, as its user and
    /// as every other principal in it, and a user-CA certificate without a grant is refused.
    #[test]
    fn refuses_a_certificate_outside_its_host_scope_for_every_principal() {
        let e = env();
        let web = grant_with(&e, |g| g.hosts = vec!["web-*".into()]);
        let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&web));
        for user in ["alice", "dbadmin"] {
            let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
            assert!(
                err.contains("is scoped to hosts web-*") && err.contains("not to this host (db-1"),
                "{user}: {err}"
            );
        }
        // An auto-approved role's grant is no different.
        let lab = grant_with(&e, |g| {
            g.hosts = vec!["lab-*".into()];
            g.sudo = false;
            g.approvers[0].user = "auto:oncall".into();
        });
        let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&lab));
        for user in ["alice", "dbadmin"] {
            let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
            assert!(err.contains("not to this host"), "{user}: {err}");
        }
        // No names known at all: nothing matches, not even `*`.
        let any = grant_with(&e, |_| {});
        let c = cert(&e, &e.ca, &["alice"], CertType::User, Some(&any));
        let err = verify_and_store_on(&e.config, &[], "alice", &c, NOW).unwrap_err();
        assert!(err.contains("set hostnames in host.toml"), "{err}");
        // Signed by the user CA, but no scope: refused as every principal.
        let bare = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, None);
        for user in ["alice", "dbadmin"] {
            let err = verify_and_store_on(&e.config, &db1(), user, &bare, NOW).unwrap_err();
            assert!(err.contains("carries no scope"), "{user}: {err}");
        }
        assert!(!e.config.state_dir.join("grants/alice").exists());
    }

    #[test]
    fn refuses_a_grant_that_is_not_this_certificates_scope() {
        let e = env();
        let cases: Vec<(&str, String, &[&str], &str)> = vec![
            (
                "no serial in the grant",
                grant_with(&e, |g| g.cert_serial = None),
                &["alice"],
                "names no certificate serial",
            ),
            (
                "grant for a user who is not a principal",
                grant_with(&e, |g| g.user = "mallory".into()),
                &["alice", "dbadmin"],
                "not among certificate serial 7's principals",
            ),
        ];
        for (name, g, principals, needle) in cases {
            let c = cert(&e, &e.ca, principals, CertType::User, Some(&g));
            for user in principals {
                let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
                assert!(err.contains(needle), "{name} as {user}: {err}");
            }
        }
    }

    #[test]
    fn matches_host_toml_names_and_accepts_roles_without_sudo() {
        let e = env();
        if !is_root() {
            return; // the store must be root-owned; CI runs as root
        }
        // Matched through host.toml's `hostnames` only; a role without sudo still logs in
        // (pam_jit then denies sudo with "does not allow sudo").
        let g = grant_with(&e, |g| {
            g.hosts = vec!["db-*.example.com".into()];
            g.sudo = false;
        });
        let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&g));
        let a = verify_and_store_on(&e.config, &db1(), "alice", &c, NOW).unwrap();
        assert!(matches!(a.grant, GrantOutcome::Stored { .. }));
        let a = verify_and_store_on(&e.config, &db1(), "dbadmin", &c, NOW).unwrap();
        assert!(matches!(a.grant, GrantOutcome::OtherUser { .. }));
        let only_kernel = vec!["db-1".to_string()];
        let err = verify_and_store_on(&e.config, &only_kernel, "dbadmin", &c, NOW).unwrap_err();
        assert!(err.contains("not to this host"), "{err}");
    }

    #[test]
    fn refuses_a_revoked_grant_id_for_every_principal() {
        let e = env();
        if !is_root() {
            return; // the revocation list must be root-owned; CI runs as root
        }
        let g = grant_with(&e, |_| {});
        let c = cert(&e, &e.ca, &["alice", "dbadmin"], CertType::User, Some(&g));
        let mut list = jit_common::RevocationList::new(3, NOW - 10);
        list.revoked_grants.insert("g-7".into());
        std::fs::write(
            e.config.revocations_path(),
            list.sign(&e.grant_key).unwrap(),
        )
        .unwrap();
        for user in ["alice", "dbadmin"] {
            let err = verify_and_store_on(&e.config, &db1(), user, &c, NOW).unwrap_err();
            assert!(
                err.contains("grant g-7 of certificate serial 7 is revoked"),
                "{user}: {err}"
            );
        }
        assert!(!e.config.state_dir.join("grants/alice").exists());
    }
    /// Issue 11, item 6: the module's staleness rule applies to certificate logins too.
    #[test]
    fn applies_the_modules_staleness_rule() {
        let e = env();
        if !is_root() {
            return; // the revocation list must be root-owned; CI runs as root
        }
        let state = e.config.state_dir.clone();
        let g = grant_with(&e, |_| {});
        let c = cert(&e, &e.ca, &["alice"], CertType::User, Some(&g));
        verify_and_store(&e.config, "alice", &c, NOW).unwrap();
        // Never synced: refused, with what to run.
        std::fs::remove_file(state.join("revocations")).unwrap();
        let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
        assert!(err.contains("never synced"), "{err}");
        assert!(err.contains("jit-host sync"), "{err}");
        // Stale (older than the default 12 h): refused.
        write_list(&state, &e.grant_key, NOW - 13 * 3600, &[]);
        let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
        assert!(err.contains("stale"), "{err}");
        // Signed by another key: refused.
        write_list(&state, &key(), NOW - 60, &[]);
        let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
        assert!(err.contains("invalid"), "{err}");
        // Fresh and revoking the serial: refused as revoked.
        write_list(&state, &e.grant_key, NOW - 60, &[7]);
        let err = verify_and_store(&e.config, "alice", &c, NOW).unwrap_err();
        assert!(err.contains("revoked"), "{err}");
        write_list(&state, &e.grant_key, NOW - 60, &[]);
        verify_and_store(&e.config, "alice", &c, NOW).unwrap();
    }
}
